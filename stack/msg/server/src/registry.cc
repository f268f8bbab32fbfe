#include <weft/msg/server.h>

#include <weft/platform/error.h>

namespace weft::msg {

namespace {
// Ids are FNV-1a hashes: their low bits are well mixed, so a mask picks the home slot.
constexpr std::size_t home(std::uint32_t id, std::size_t slots) noexcept {
  return id & (slots - 1);
}
}  // namespace

Result<void> Registry::add(const Method& m) noexcept {
  static_assert((kSlots & (kSlots - 1)) == 0, "kSlots must be a power of two");
  if (m.id == 0 || m.fn == nullptr) {
    return fail(platform::platform_errc::invalid_argument);
  }
  if (n_ == kCapacity) {
    return fail(msg_errc::registry_full);
  }
  for (std::size_t i = home(m.id, kSlots);; i = (i + 1) & (kSlots - 1)) {
    if (slots_[i].id == m.id) {
      return fail(msg_errc::duplicate_method);
    }
    if (slots_[i].id == 0) {
      slots_[i] = m;
      ++n_;
      return {};
    }
  }
}

const Method* Registry::find(std::uint32_t id) const noexcept {
  if (id == 0) {
    return nullptr;
  }
  // At most half full, so every probe sequence reaches an empty slot.
  for (std::size_t i = home(id, kSlots);; i = (i + 1) & (kSlots - 1)) {
    if (slots_[i].id == id) {
      return &slots_[i];
    }
    if (slots_[i].id == 0) {
      return nullptr;
    }
  }
}

}  // namespace weft::msg

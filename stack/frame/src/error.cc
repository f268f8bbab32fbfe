#include <weft/frame/error.h>

#include <string>

namespace weft::frame {
namespace {

class FrameCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.frame"; }
  // std::error_category requires std::string here; it is only called for logs.
  std::string message(int ev) const override { return to_string(static_cast<frame_errc>(ev)); }
};

}  // namespace

const char* to_string(frame_errc e) noexcept {
  switch (e) {
    case frame_errc::oversize:
      return "frame larger than max_frame_size";
    case frame_errc::bad_varint:
      return "malformed varint length prefix";
    case frame_errc::truncated:
      return "stream ended inside a frame";
    case frame_errc::no_assembly:
      return "frame spans reads but no assembly storage is set";
    case frame_errc::buffer_too_small:
      return "caller-provided buffer too small";
  }
  return "unknown weft.frame error";
}

const std::error_category& frame_category() noexcept {
  // Constant-initialised (error_category's constructor is constexpr): safe to reach from
  // any thread, before or after main, and never allocates.
  static const FrameCategory category;
  return category;
}

}  // namespace weft::frame

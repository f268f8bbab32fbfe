#include <weft/frame/encode.h>

#include <cstring>
#include <limits>

namespace weft::frame {
namespace {

// Precondition: `out` has header_size(kind, len) bytes of room (callers checked).
std::size_t write_header(PrefixKind kind, std::uint32_t len, std::byte* out) noexcept {
  if (kind == PrefixKind::u32_be) {
    encode_u32_header(std::span<std::byte, kU32HeaderSize>(out, kU32HeaderSize), len);
    return kU32HeaderSize;
  }
  // The fixed-extent encoder wants 5 bytes of room; the caller may have only the 1..5 the
  // value needs, so encode into scratch and copy.
  std::byte tmp[kMaxVarintSize];
  const std::size_t n = encode_varint(tmp, len);
  std::memcpy(out, tmp, n);
  return n;
}

}  // namespace

Result<std::size_t> encode_header(PrefixKind kind, std::uint32_t len,
                                  std::span<std::byte> out) noexcept {
  if (out.size() < header_size(kind, len)) {
    return fail(frame_errc::buffer_too_small);
  }
  return write_header(kind, len, out.data());
}

Result<std::size_t> encode_frame(PrefixKind kind, std::span<const std::byte> payload,
                                 std::span<std::byte> out) noexcept {
  if (payload.size() > std::numeric_limits<std::uint32_t>::max()) {
    return fail(frame_errc::oversize);
  }
  const auto len = static_cast<std::uint32_t>(payload.size());
  const std::size_t head = header_size(kind, len);
  if (out.size() < head || out.size() - head < payload.size()) {
    return fail(frame_errc::buffer_too_small);
  }
  write_header(kind, len, out.data());
  if (!payload.empty()) {  // memcpy from a null pointer is undefined even for 0 bytes
    std::memcpy(out.data() + head, payload.data(), payload.size());
  }
  return head + payload.size();
}

}  // namespace weft::frame

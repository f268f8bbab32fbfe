#include <weft/frame/error.h>

#include <weft/base/error_category.h>

namespace weft::frame {

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
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe to reach from
  // any thread, before or after main, and never allocates.
  static const ErrorCategory<frame_errc> category("weft.frame", &to_string);
  return category;
}

}  // namespace weft::frame

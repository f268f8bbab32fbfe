#include <weft/base/error_category.h>
#include <weft/client/error.h>
#include <weft/msg/error.h>

namespace weft::client {

const char* to_string(client_errc e) noexcept {
  switch (e) {
    case client_errc::overloaded:
      return "client limit reached (calls, subscriptions, pings or pool waiters)";
    case client_errc::connection_lost:
      return "connection lost before the answer";
    case client_errc::not_connected:
      return "no ready connection";
    case client_errc::bad_hello:
      return "bad or unsupported HELLO_ACK";
    case client_errc::closed:
      return "client closed";
    case client_errc::unavailable:
      return "no upstream endpoint available";
  }
  return "unknown weft.client error";
}

const std::error_category& client_category() noexcept {
  static const ErrorCategory<client_errc> category("weft.client", &to_string);
  return category;
}

bool is_retryable(std::error_code e) noexcept {
  return e == msg::ProtocolError::overloaded || e == msg::ProtocolError::shutting_down ||
         e == client_errc::connection_lost || e == client_errc::overloaded;
}

}  // namespace weft::client

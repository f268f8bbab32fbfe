// ktls_probe(): does this kernel offer the "tls" upper-layer protocol (kTLS)? Backend-
// independent (weft_tls_common); weft/tls/ktls.h has the key export that goes with it.
//
// Threading: any thread. Memory: none (the reason is static text).
#pragma once

namespace weft::tls {

struct KtlsProbe {
  bool available = false;
  // Static text: why not (or "tls ULP available"). Never null.
  const char* reason = "";
};

// Reads /proc/sys/net/ipv4/tcp_available_ulp and tries setsockopt(TCP_ULP, "tls") on a
// connected 127.0.0.1 TCP pair (which also loads the tls module where the kernel has one as
// a module and the process may load it). Blocking, one-off (about a millisecond): call it
// once at start-up, not per connection. Never fails: a failure to probe is "unavailable"
// with the reason.
[[nodiscard]] KtlsProbe ktls_probe() noexcept;

}  // namespace weft::tls

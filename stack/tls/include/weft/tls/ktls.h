// Kernel TLS (kTLS) support for the wiring step: a probe that says whether this kernel offers
// the "tls" upper-layer protocol, and (OpenSSL backend) the negotiated AES-GCM keys in the
// structs of <linux/tls.h>, ready for setsockopt(SOL_TLS, TLS_TX / TLS_RX).
//
// This layer never touches a connection's socket: the caller, after the handshake and before
// any application record, does setsockopt(fd, SOL_TCP, TCP_ULP, "tls") and then hands
// KtlsKeys::data()/size() to TLS_TX and TLS_RX. From then on the kernel encrypts and decrypts
// and the Engine must no longer be used for records (docs/tls.md: what the wiring still does).
//
// Memory: KtlsKeys is a value (about 60 bytes) holding key material: the caller should wipe
// it (explicit_bzero) once the kernel has it. Threading: ktls_probe() may run on any thread;
// ktls_keys() on the Engine's thread.
#pragma once

#include <linux/tls.h>

#include <cstddef>

#include <weft/base/result.h>
#include <weft/tls/ktls_probe.h>
#include <weft/tls/tls.h>

namespace weft::tls {

inline namespace WEFT_TLS_NS {

enum class Direction : std::uint8_t { tx, rx };

struct KtlsKeys {
  union {
    tls_crypto_info info;
    tls12_crypto_info_aes_gcm_128 gcm128;
    tls12_crypto_info_aes_gcm_256 gcm256;
  };
  std::size_t size = 0;  // sizeof the struct in use (the setsockopt optlen)
  [[nodiscard]] const void* data() const noexcept { return &gcm256; }
  KtlsKeys() noexcept : gcm256{} {}
};

// The key material of one direction of an established Engine: tx = what this side encrypts,
// rx = what it decrypts, with the record sequence numbers as of now (so call it before any
// further record is written or read). TLS 1.2 and 1.3 with AES-128-GCM or AES-256-GCM.
// Call it with nothing pending (take() everything first): the kernel's records follow the
// Engine's. TLS 1.2 tx: iv is the next explicit nonce (OpenSSL's counter, seen in take()).
// Errors: not_ready (handshake not finished, the Engine failed/closed, or pending() != 0),
// unsupported (mbedTLS backend; ChaCha20-Poly1305 is negotiated — the kernel has a struct for it
// but this step leaves it out), internal (key derivation failed).
[[nodiscard]] Result<KtlsKeys> ktls_keys(const Engine& engine, Direction dir) noexcept;

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls

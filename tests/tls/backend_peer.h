// One backend's Engine behind a virtual interface, so a single test program can hold an
// OpenSSL Engine and an mbedTLS Engine at once: backend_peer.cc is compiled once against each
// backend library (WEFT_PEER_FACTORY names the factory), and this header needs neither.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/base/result.h>
#include <weft/tls/error.h>

namespace weft::tls::cross {

struct SideConfig {
  bool server = false;
  std::string cert{};  // PEM paths; empty = none
  std::string key{};
  std::string ca{};                 // server: verifies client certificates (require_client)
  bool require_client = false;      // server: ClientAuth::required
  std::vector<std::string> alpn{};  // preference order
  bool tls12_only = false;          // cap at TLS 1.2
};

class Peer {
 public:
  virtual ~Peer() = default;
  virtual std::size_t take(std::span<std::byte> out) = 0;
  virtual Result<std::size_t> feed(std::span<const std::byte> in) = 0;
  virtual Result<std::size_t> read(std::span<std::byte> out) = 0;
  virtual Result<std::size_t> write(std::span<const std::byte> in) = 0;
  [[nodiscard]] virtual bool established() const = 0;
  [[nodiscard]] virtual std::string alpn() const = 0;
  [[nodiscard]] virtual std::string server_name() const = 0;
  [[nodiscard]] virtual bool peer_verified() const = 0;
  [[nodiscard]] virtual bool resumed() const = 0;
  [[nodiscard]] virtual bool tls13() const = 0;
  [[nodiscard]] virtual std::error_code error() const = 0;
};

// A Context (kept for resumption) that makes Peers; a client's Peers use server_name.
class Side {
 public:
  virtual ~Side() = default;
  virtual std::unique_ptr<Peer> connect(const char* server_name) = 0;
  [[nodiscard]] virtual const char* backend() const = 0;
};

// nullptr when the Context could not be built.
std::unique_ptr<Side> make_openssl_side(const SideConfig& config);
std::unique_ptr<Side> make_mbedtls_side(const SideConfig& config);

}  // namespace weft::tls::cross

// backend_peer.h for the backend this object is compiled against (see tests/tls/CMakeLists).
#include "backend_peer.h"

#include <utility>

#include <weft/tls/tls.h>

namespace weft::tls::cross {
namespace {

class EnginePeer final : public Peer {
 public:
  explicit EnginePeer(Engine&& e) : e_(std::move(e)) {}
  std::size_t take(std::span<std::byte> out) override { return e_.take(out); }
  Result<std::size_t> feed(std::span<const std::byte> in) override { return e_.feed(in); }
  Result<std::size_t> read(std::span<std::byte> out) override { return e_.read(out); }
  Result<std::size_t> write(std::span<const std::byte> in) override { return e_.write(in); }
  [[nodiscard]] bool established() const override { return e_.state() == State::established; }
  [[nodiscard]] std::string alpn() const override { return std::string(e_.alpn()); }
  [[nodiscard]] std::string server_name() const override { return std::string(e_.server_name()); }
  [[nodiscard]] bool peer_verified() const override { return e_.peer_verified(); }
  [[nodiscard]] bool resumed() const override { return e_.resumed(); }
  [[nodiscard]] bool tls13() const override { return e_.version() == Version::tls13; }
  [[nodiscard]] std::error_code error() const override { return e_.error(); }

 private:
  Engine e_;
};

class ContextSide final : public Side {
 public:
  explicit ContextSide(Context&& c) : c_(std::move(c)) {}
  std::unique_ptr<Peer> connect(const char* server_name) override {
    Result<Engine> e = c_.engine(server_name);
    if (!e) {
      return nullptr;
    }
    return std::make_unique<EnginePeer>(std::move(e.value()));
  }
  [[nodiscard]] const char* backend() const override {
    return weft::tls::backend() == Backend::openssl ? "openssl" : "mbedtls";
  }

 private:
  Context c_;
};

}  // namespace

std::unique_ptr<Side> WEFT_PEER_FACTORY(const SideConfig& config) {
  std::vector<std::string_view> alpn(config.alpn.begin(), config.alpn.end());
  Config c;
  c.role = config.server ? Role::server : Role::client;
  c.cert_chain_file = config.cert.empty() ? nullptr : config.cert.c_str();
  c.key_file = config.key.empty() ? nullptr : config.key.c_str();
  c.ca_file = config.ca.empty() ? nullptr : config.ca.c_str();
  c.client_auth = config.require_client ? ClientAuth::required : ClientAuth::none;
  c.alpn = alpn;
  c.max_version = config.tls12_only ? Version::tls12 : Version::tls13;
  Result<Context> ctx = Context::create(c);
  if (!ctx) {
    return nullptr;
  }
  return std::make_unique<ContextSide>(std::move(ctx.value()));
}

}  // namespace weft::tls::cross

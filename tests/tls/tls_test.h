// Shared pieces of the weft::tls suites: test certificates (scripts/make-test-certs.sh, run
// once per process into a private temp dir), Context builders, and pump(), which moves
// ciphertext between two Engines in memory, optionally in chunks of at most `chunk` bytes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/tls/tls.h>

#include "pump.h"
#include "temp_dir.h"

namespace weft::tls::test {

// The certificates of scripts/make-test-certs.sh, made once per process.
class Certs {
 public:
  static const Certs& get() {
    static const Certs certs;
    return certs;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::string file(const char* name) const { return dir_.file(name); }

 private:
  Certs() {
    const std::string cmd =
        std::string(WEFT_MAKE_TEST_CERTS) + " " + dir_.path() + " >/dev/null 2>&1";
    ok_ = dir_.ok() && std::system(cmd.c_str()) == 0;
  }
  weft::test::TempDir dir_;
  bool ok_ = false;
};

// Keeps the strings a Config points at alive.
struct ConfigFiles {
  std::string chain;
  std::string key;
  std::string ca;
};

inline Context make_context(Config c) {
  Result<Context> ctx = Context::create(c);
  EXPECT_TRUE(ctx.ok()) << (ctx.ok() ? "" : ctx.error().message());
  if (!ctx.ok()) {
    std::abort();
  }
  return std::move(ctx.value());
}

struct ServerOptions {
  ClientAuth client_auth = ClientAuth::none;
  std::vector<std::string_view> alpn{};
  bool alpn_strict = true;
  Version max_version = Version::tls13;
  bool tickets = true;
};

inline Context server_context(const ServerOptions& o = {}) {
  const Certs& certs = Certs::get();
  static const std::string chain = certs.file("server.pem");
  static const std::string key = certs.file("server.key");
  static const std::string ca = certs.file("ca.pem");
  Config c;
  c.role = Role::server;
  c.cert_chain_file = chain.c_str();
  c.key_file = key.c_str();
  c.ca_file = ca.c_str();
  c.client_auth = o.client_auth;
  c.alpn = o.alpn;
  c.alpn_strict = o.alpn_strict;
  c.max_version = o.max_version;
  c.session_tickets = o.tickets;
  return make_context(c);
}

struct ClientOptions {
  const char* cert = nullptr;  // "client" or "rogue": a client certificate for mutual TLS
  const char* ca = "ca.pem";
  std::vector<std::string_view> alpn{};
  Version max_version = Version::tls13;
  bool tickets = true;
};

inline Context client_context(const ClientOptions& o = {}) {
  const Certs& certs = Certs::get();
  std::string chain;
  std::string key;
  if (o.cert != nullptr) {
    chain = certs.file((std::string(o.cert) + ".pem").c_str());
    key = certs.file((std::string(o.cert) + ".key").c_str());
  }
  const std::string ca = certs.file(o.ca);
  Config c;
  c.role = Role::client;
  c.cert_chain_file = o.cert != nullptr ? chain.c_str() : nullptr;
  c.key_file = o.cert != nullptr ? key.c_str() : nullptr;
  c.ca_file = ca.c_str();
  c.alpn = o.alpn;
  c.max_version = o.max_version;
  c.session_tickets = o.tickets;
  return make_context(c);
}

inline Engine make_engine(const Context& ctx, const char* name = nullptr) {
  Result<Engine> e = ctx.engine(name);
  if (!e.ok()) {
    ADD_FAILURE() << e.error().message();
    std::abort();
  }
  return std::move(e.value());
}

// A server Engine and a client Engine (SNI "localhost") over their own Contexts; tests bind
// them with `auto& [sctx, cctx, s, c] = p;`. Not movable: the Engines point into the Contexts.
struct Pair {
  Pair(Context&& server, Context&& client)
      : sctx(std::move(server)),
        cctx(std::move(client)),
        s(make_engine(sctx)),
        c(make_engine(cctx, "localhost")) {}
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  Context sctx;
  Context cctx;
  Engine s;
  Engine c;
};

}  // namespace weft::tls::test

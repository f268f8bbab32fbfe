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

#include "temp_dir.h"

namespace weft::tls::test {

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

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

// Moves ciphertext a -> b and b -> a until neither has anything to send, in chunks of at
// most `chunk` bytes. Returns the first error either side reported; bytes still move after
// it (a failed side's alert reaches the other, whose own error then shows in its error()).
// Plaintext that arrives is appended to a_got / b_got when given. A and B: Engine or
// RawPeer (same calls).
template <class A, class B>
std::error_code pump(A& a, B& b, std::size_t chunk = 1 << 20, std::string* a_got = nullptr,
                     std::string* b_got = nullptr) {
  std::vector<std::byte> buf(64 * 1024);
  std::vector<std::byte> plain(64 * 1024);
  std::error_code first;
  bool a_failed = false;
  bool b_failed = false;
  auto drain = [&](auto& e, std::string* got) -> std::error_code {
    for (;;) {
      Result<std::size_t> r = e.read(plain);
      if (!r) {
        return r.error();
      }
      if (r.value() == 0) {
        return {};
      }
      if (got != nullptr) {
        got->append(reinterpret_cast<const char*>(plain.data()), r.value());
      }
    }
  };
  auto note = [&](std::error_code ec, bool& failed) {
    if (ec) {
      failed = true;
      if (!first) {
        first = ec;
      }
    }
  };
  auto move = [&](auto& from, auto& to, std::string* got, bool& to_failed, bool& moved) {
    for (;;) {
      const std::size_t n = from.take(std::span<std::byte>(buf).first(std::min(chunk, buf.size())));
      if (n == 0) {
        break;
      }
      moved = true;
      std::size_t off = 0;
      while (off < n && !to_failed) {
        Result<std::size_t> f = to.feed(std::span<const std::byte>(buf).subspan(off, n - off));
        if (!f) {
          note(f.error(), to_failed);
          break;
        }
        off += f.value();
        note(drain(to, got), to_failed);
      }
    }
    if (!to_failed) {
      note(drain(to, got), to_failed);
    }
  };
  for (int round = 0; round < 10000; ++round) {
    bool moved = false;
    move(a, b, b_got, b_failed, moved);
    move(b, a, a_got, a_failed, moved);
    if (!moved) {
      return first;
    }
  }
  return make_error_code(tls_errc::internal);
}

// Writes all of `data` on `from`, pumping as back-pressure requires; returns what `to` read.
template <class A, class B>
std::string send_all(A& from, B& to, std::string_view data, std::size_t chunk = 1 << 20) {
  std::string got;
  std::string ignored;
  std::size_t off = 0;
  while (off < data.size()) {
    Result<std::size_t> w = from.write(bytes(data.substr(off)));
    EXPECT_TRUE(w.ok());
    if (!w.ok()) {
      return got;
    }
    off += w.value();
    std::error_code ec = pump(from, to, chunk, &ignored, &got);
    EXPECT_FALSE(ec) << ec.message();
    if (ec) {
      return got;
    }
  }
  return got;
}

}  // namespace weft::tls::test

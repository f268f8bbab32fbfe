// Allocations per connection, counted with weft::alloc_counter (STYLE point 8). Neither
// backend can be allocation-free here: OpenSSL allocates by design, and Debian's mbedTLS 2.28
// is built without MBEDTLS_MEMORY_BUFFER_ALLOC_C (and without MBEDTLS_PLATFORM_MEMORY), so its
// calloc cannot be pointed at a static pool. So this test measures and pins the figures
// (docs/tls.md): a change that adds allocations fails here.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>

#include <weft/base/alloc_counter.h>
#include <weft/tls/tls.h>

#include "tls_test.h"

namespace weft::tls::test {
namespace {

// Moves ciphertext both ways with fixed buffers (no allocation of its own); false on error.
std::array<std::byte, 64 * 1024> g_wire;
std::array<std::byte, 64 * 1024> g_plain;
std::uint64_t g_plain_bytes = 0;

bool move(Engine& from, Engine& to, bool& moved) {
  for (std::size_t n = from.take(g_wire); n > 0; n = from.take(g_wire)) {
    moved = true;
    std::size_t off = 0;
    while (off < n) {
      Result<std::size_t> f = to.feed(std::span<const std::byte>(g_wire).subspan(off, n - off));
      if (!f) {
        return false;
      }
      off += f.value();
      for (;;) {
        Result<std::size_t> r = to.read(g_plain);
        if (!r) {
          return false;
        }
        if (r.value() == 0) {
          break;
        }
        g_plain_bytes += r.value();
      }
    }
  }
  return true;
}

bool quiet_pump(Engine& a, Engine& b) {
  for (;;) {
    bool moved = false;
    if (!move(a, b, moved) || !move(b, a, moved)) {
      return false;
    }
    if (!moved) {
      return true;
    }
  }
}

struct Figures {
  std::uint64_t handshake = 0;      // both engines created + full handshake
  std::uint64_t resumed = 0;        // both engines created + resumed handshake
  std::uint64_t steady = 0;         // kRecords records each way, after a warm-up
  std::uint64_t teardown_free = 0;  // allocations while destroying (should be 0)
};

constexpr int kRecords = 1000;
constexpr std::size_t kRecordBytes = 1024;

Figures measure(Version v) {
  Figures f;
  Context sctx = server_context({.max_version = v});
  Context cctx = client_context();
  std::array<std::byte, kRecordBytes> payload{};
  {
    const std::uint64_t before = alloc::count();
    Result<Engine> s = sctx.engine();
    Result<Engine> c = cctx.engine("localhost");
    EXPECT_TRUE(s.ok() && c.ok());
    EXPECT_TRUE(quiet_pump(c.value(), s.value()));
    f.handshake = alloc::count() - before;
    // Warm-up: tickets, first records, buffer growth.
    for (int i = 0; i < 10; ++i) {
      EXPECT_TRUE(s->write(payload).ok());
      EXPECT_TRUE(c->write(payload).ok());
      EXPECT_TRUE(quiet_pump(c.value(), s.value()));
    }
    const std::uint64_t start = alloc::count();
    g_plain_bytes = 0;
    for (int i = 0; i < kRecords; ++i) {
      EXPECT_EQ(s->write(payload).value(), payload.size());
      EXPECT_EQ(c->write(payload).value(), payload.size());
      EXPECT_TRUE(quiet_pump(c.value(), s.value()));
    }
    f.steady = alloc::count() - start;
    EXPECT_EQ(g_plain_bytes, 2U * kRecords * kRecordBytes);
    const std::uint64_t end = alloc::count();
    s = fail(tls_errc::closed);  // destroys the engines
    c = fail(tls_errc::closed);
    f.teardown_free = alloc::count() - end;
  }
  {
    const std::uint64_t before = alloc::count();
    Result<Engine> s = sctx.engine();
    Result<Engine> c = cctx.engine("localhost");
    EXPECT_TRUE(quiet_pump(c.value(), s.value()));
    f.resumed = alloc::count() - before;
    EXPECT_TRUE(c->resumed());
  }
  return f;
}

TEST(TlsAlloc, PerConnectionFiguresHold) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "counting allocator not installed (sanitizer build or not glibc)";
  }
  if (!Certs::get().ok()) {
    GTEST_SKIP() << "scripts/make-test-certs.sh failed";
  }
  for (Version v : {Version::tls12, Version::tls13}) {
    if (v == Version::tls13 && backend() == Backend::mbedtls) {
      continue;
    }
    const Figures f = measure(v);
    std::printf(
        "tls alloc [%s, %s]: handshake pair %llu, resumed pair %llu, steady %llu "
        "per %d records each way, teardown %llu\n",
        backend() == Backend::openssl ? "openssl" : "mbedtls",
        v == Version::tls12 ? "TLS 1.2" : "TLS 1.3", static_cast<unsigned long long>(f.handshake),
        static_cast<unsigned long long>(f.resumed), static_cast<unsigned long long>(f.steady),
        kRecords, static_cast<unsigned long long>(f.teardown_free));
    // Bounds pinned from the measured figures (tests/tls/CMakeLists.txt, docs/tls.md): the
    // steady state exactly per record, the handshake with ~25% headroom for patch releases.
    const std::uint64_t records = 2U * kRecords;
    if (backend() == Backend::mbedtls) {
      EXPECT_EQ(f.steady, WEFT_TLS_ALLOC_PER_RECORD_MBEDTLS * records);
      EXPECT_LE(f.handshake, WEFT_TLS_ALLOC_HANDSHAKE_MBEDTLS);
    } else {
      EXPECT_LE(f.steady, WEFT_TLS_ALLOC_PER_RECORD_OPENSSL * records);
      EXPECT_LE(f.handshake, WEFT_TLS_ALLOC_HANDSHAKE_OPENSSL);
    }
    EXPECT_LT(f.resumed, f.handshake);
    EXPECT_EQ(f.teardown_free, 0U);
  }
}

}  // namespace
}  // namespace weft::tls::test

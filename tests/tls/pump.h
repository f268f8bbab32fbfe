// pump() and send_all(): move ciphertext between two TLS peers in memory. Any type with
// take/feed/read/write in the Engine's shapes works (Engine, RawPeer, cross::Peer), and this
// header needs no backend, so the cross-backend test can use it with both.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/base/result.h>
#include <weft/tls/error.h>

namespace weft::tls::test {

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
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

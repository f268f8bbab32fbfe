// Test driver for RequestParser: feeds a stream in given chunks, checks the decoder contract
// of parser.h on every call, and collects what came out (copied: views die). Every parser
// test goes through it so that every split point is attacked the same way.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/http/parser.h>

#include "../frame/guard_page.h"

namespace weft::http {
inline void PrintTo(DecodeState s, std::ostream* os) {
  static const char* const kNames[] = {"need_more", "head", "body", "complete", "error"};
  *os << kNames[static_cast<int>(s)];
}
}  // namespace weft::http

namespace weft::test {

// A copy of what a Request viewed, comparable across runs.
struct Got {
  std::string method, target, scheme, authority, path, query, host;
  http::Method m = http::Method::other;
  http::TargetForm form = http::TargetForm::origin;
  http::Version version = http::Version::http11;
  std::vector<std::pair<std::string, std::string>> headers;
  http::BodyKind body_kind = http::BodyKind::none;
  std::uint64_t content_length = 0;
  bool has_query = false, has_host = false, keep_alive = false, close = false, upgrade = false,
       expect_continue = false;
  std::string body;       // all body pieces, concatenated
  bool complete = false;  // `complete` was returned
  bool operator==(const Got&) const = default;
};

inline Got snapshot(const http::Request& r) {
  Got g;
  g.method = r.method_name;
  g.target = r.target;
  g.scheme = r.scheme;
  g.authority = r.authority;
  g.path = r.path;
  g.query = r.query;
  g.host = r.host;
  g.m = r.method;
  g.form = r.form;
  g.version = r.version;
  for (const http::Header& h : r.headers) {
    g.headers.emplace_back(h.name, h.value);
  }
  g.body_kind = r.body;
  g.content_length = r.content_length;
  g.has_query = r.has_query;
  g.has_host = r.has_host;
  g.keep_alive = r.keep_alive;
  g.close = r.connection_close;
  g.upgrade = r.upgrade;
  g.expect_continue = r.expect_continue;
  return g;
}

struct Outcome {
  std::vector<Got> requests;
  std::error_code error;
  std::size_t error_offset = 0;  // stream offset just past the offending byte
  std::error_code finish_error;
  std::size_t in_place = 0;   // heads viewed in the input they arrived in
  std::size_t assembled = 0;  // heads viewed in the assembly storage
};

class Driver {
 public:
  // stable: chunks stay alive for the whole run (not guard-page copies), so request() views
  // must still read the same bytes at `complete` as at `head`.
  Driver(http::RequestParser& p, std::span<const char> assembly, bool stable)
      : p_(p), assembly_(assembly), stable_(stable) {}

  void feed(std::string_view chunk) {
    std::string_view rest = chunk;
    while (true) {
      const http::Decoded r = p_.feed(rest);
      if (out_.error) {
        EXPECT_EQ(r.state, http::DecodeState::error);
        EXPECT_EQ(r.consumed, 0u);
        return;
      }
      ASSERT_LE(r.consumed, rest.size());
      if (r.state != http::DecodeState::body) {
        EXPECT_TRUE(p_.body().empty());
      }
      switch (r.state) {
        case http::DecodeState::need_more:
          EXPECT_EQ(r.consumed, rest.size()) << "need_more must absorb all input";
          EXPECT_FALSE(p_.error());
          offset_ += r.consumed;
          return;
        case http::DecodeState::head: {
          EXPECT_GE(r.consumed, 1u);
          EXPECT_FALSE(in_request_) << "head twice";
          in_request_ = true;
          const http::Request& q = p_.request();
          const bool inside = q.method_name.data() >= chunk.data() &&
                              q.method_name.data() < chunk.data() + chunk.size();
          const bool in_assembly = q.method_name.data() >= assembly_.data() &&
                                   q.method_name.data() < assembly_.data() + assembly_.size();
          EXPECT_TRUE(inside != in_assembly);
          EXPECT_EQ(in_assembly, p_.assembling());
          ++(inside ? out_.in_place : out_.assembled);
          out_.requests.push_back(snapshot(q));
          break;
        }
        case http::DecodeState::body: {
          EXPECT_TRUE(in_request_);
          const std::string_view b = p_.body();
          EXPECT_FALSE(b.empty());
          // Viewed in place, ending at the last byte consumed (chunk framing may precede it).
          EXPECT_TRUE(b.data() >= rest.data() && b.size() <= r.consumed &&
                      b.data() + b.size() == rest.data() + r.consumed)
              << "body pieces are viewed in place";
          out_.requests.back().body.append(b);
          break;
        }
        case http::DecodeState::complete: {
          EXPECT_TRUE(in_request_);
          EXPECT_FALSE(p_.mid_message());
          in_request_ = false;
          Got& g = out_.requests.back();
          if (stable_) {  // the head's views still hold the same bytes
            Got again = snapshot(p_.request());
            again.body = g.body;
            EXPECT_EQ(again, g);
          }
          g.complete = true;
          break;
        }
        case http::DecodeState::error:
          EXPECT_TRUE(p_.error());
          out_.error = p_.error();
          out_.error_offset = offset_ + r.consumed;
          return;
      }
      offset_ += r.consumed;
      rest.remove_prefix(r.consumed);
    }
  }

  Outcome finish() {
    const Result<void> fin = p_.finish();
    if (out_.error) {
      EXPECT_EQ(fin.error(), out_.error);
    } else {
      out_.finish_error = fin.error();
    }
    return out_;
  }

 private:
  http::RequestParser& p_;
  std::span<const char> assembly_;
  bool stable_;
  Outcome out_;
  std::size_t offset_ = 0;
  bool in_request_ = false;
};

// Owns a parser with its storage.
struct Fixture {
  explicit Fixture(http::Config c = {})
      : parser(c), headers(c.max_headers), assembly(http::assembly_size(c)) {
    EXPECT_TRUE(parser.set_storage(headers, assembly).ok());
  }
  http::RequestParser parser;
  std::vector<http::Header> headers;
  std::vector<char> assembly;
};

inline Outcome parse_split(const http::Config& c, std::string_view s,
                           const std::vector<std::size_t>& cuts, GuardPage* guard = nullptr) {
  Fixture f(c);
  Driver d(f.parser, f.assembly, guard == nullptr);
  std::size_t from = 0;
  auto feed = [&](std::size_t to) {
    std::string_view part = s.substr(from, to - from);
    if (guard != nullptr) {
      const auto placed = guard->place(std::as_bytes(std::span<const char>(part)));
      part = std::string_view(reinterpret_cast<const char*>(placed.data()), placed.size());
    }
    d.feed(part);
    from = to;
  };
  for (std::size_t cut : cuts) {
    feed(cut);
  }
  feed(s.size());
  return d.finish();
}

inline Outcome parse(const http::Config& c, std::string_view s) {
  return parse_split(c, s, {});
}

inline void expect_same(const Outcome& got, const Outcome& want, const std::string& where) {
  EXPECT_EQ(got.requests, want.requests) << where;
  EXPECT_EQ(got.error, want.error) << where;
  EXPECT_EQ(got.error_offset, want.error_offset) << where;
  EXPECT_EQ(got.finish_error, want.finish_error) << where;
}

// The outcome of `s` in one piece, checked against every single split point, byte by byte
// (each byte at a guard page), and every split point at a guard page. Returns the one-piece
// outcome.
inline Outcome parse_everywhere(const http::Config& c, std::string_view s) {
  const Outcome whole = parse(c, s);
  for (std::size_t k = 0; k <= s.size(); ++k) {
    expect_same(parse_split(c, s, {k}), whole, "split at " + std::to_string(k));
  }
  GuardPage guard(s.size() + 1);
  std::vector<std::size_t> every;
  for (std::size_t k = 1; k < s.size(); ++k) {
    every.push_back(k);
  }
  expect_same(parse_split(c, s, every, &guard), whole, "byte by byte at a guard page");
  expect_same(parse_split(c, s, {}, &guard), whole, "whole at a guard page");
  for (std::size_t k = 0; k <= s.size(); k += 7) {
    expect_same(parse_split(c, s, {k}, &guard), whole, "guard split at " + std::to_string(k));
  }
  return whole;
}

}  // namespace weft::test

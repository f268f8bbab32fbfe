// The peers of bench/http_bench.cc: llhttp and http_parser behind one small interface, each
// in its own translation unit (their headers declare the same enumerators).
//
// Both record what weft's Request holds — the target and every field name and value as
// pointer + length — through data callbacks, the least a server must do with them.
#pragma once

#include <cstddef>
#include <memory>

namespace weft::bench {

// What the callbacks record for the current request.
struct Pieces {
  struct Piece {
    const char* at = nullptr;
    std::size_t len = 0;
  };
  static constexpr std::size_t kMax = 64;
  Piece url;
  Piece fields[kMax];
  Piece values[kMax];
  std::size_t nfields = 0;
  std::size_t nvalues = 0;
  std::size_t done = 0;  // messages completed in this parse() call
};

// Parses `n` bytes of back-to-back requests with a parser kept across calls; returns the
// number of requests completed, or (std::size_t)-1 on a parse error.
class Llhttp {
 public:
  Llhttp();
  ~Llhttp();
  std::size_t parse(const char* data, std::size_t n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class HttpParser {
 public:
  HttpParser();
  ~HttpParser();
  std::size_t parse(const char* data, std::size_t n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Callbacks shared by both (P is llhttp_t or http_parser; both have a `void* data`).
template <class P>
Pieces& pieces(P* p) {
  return *static_cast<Pieces*>(p->data);
}
template <class P>
int on_begin(P* p) {
  Pieces& x = pieces(p);
  x.url = {};
  x.nfields = 0;
  x.nvalues = 0;
  return 0;
}
// A piece may arrive in several callbacks when the input is split (never here); appending
// keeps the callbacks honest.
template <class P>
int on_url(P* p, const char* at, std::size_t len) {
  Pieces& x = pieces(p);
  x.url = x.url.at == nullptr ? Pieces::Piece{at, len} : Pieces::Piece{x.url.at, x.url.len + len};
  return 0;
}
template <class P>
int on_field(P* p, const char* at, std::size_t len) {
  Pieces& x = pieces(p);
  if (x.nfields < Pieces::kMax) {
    x.fields[x.nfields++] = {at, len};
  }
  return 0;
}
template <class P>
int on_value(P* p, const char* at, std::size_t len) {
  Pieces& x = pieces(p);
  if (x.nvalues < Pieces::kMax) {
    x.values[x.nvalues++] = {at, len};
  }
  return 0;
}
template <class P>
int on_complete(P* p) {
  ++pieces(p).done;
  return 0;
}

}  // namespace weft::bench

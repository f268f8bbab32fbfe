// Fuzz target: weft::http::RequestParser (strict and lenient, small and default limits).
//
// Input layout (fuzz_common.h): byte 0 is the configuration — bit 0 accept_unknown_methods,
// bit 1 allow_te_with_content_length, bit 2 small limits (so that libFuzzer reaches every
// limit with short inputs) — byte 1 and the chunk sizes pick the read boundaries, the rest
// is the stream. Use the dictionary: -dict=tests/fuzz/http.dict.
//
// The oracle is the parser itself, fed twice: the stream in one piece and in the fuzzer's
// chunks (each a heap block of exactly its size, so ASan flags a read past it) must give the
// same transcript — every request's head fields, body bytes, completion, and the error with
// its stream offset. On top: the contract of parser.h on every call (consumed bounds,
// need_more absorbs all, body pieces in place, head views in the input or the assembly,
// sticky errors, finish()), heads moved between two assembly buffers mid-parse
// (set_assembly(), the old one poisoned), field names of tchar and values without CR/LF/NUL,
// status() of every error in its documented set, and limits never exceeded.
#include <weft/http/parser.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"

namespace {

using weft::http::Config;
using weft::http::Decoded;
using weft::http::DecodeState;
using weft::http::Header;
using weft::http::Request;
using weft::http::RequestParser;

bool inside(std::string_view part, const char* from, std::size_t size) {
  return part.empty() || (part.data() >= from && part.data() + part.size() <= from + size);
}

void record_head(const Request& r, const Config& c, std::string& t) {
  FUZZ_CHECK(r.headers.size() <= c.max_headers);
  FUZZ_CHECK(r.target.size() + r.method_name.size() + 10 <= c.max_request_line);
  t += "H|";
  t += r.method_name;
  t += '|';
  t += r.target;
  t += '|';
  t += r.path;
  t += '|';
  t += r.query;
  t += r.version == weft::http::Version::http11 ? "|1.1" : "|1.0";
  t += r.keep_alive ? "|ka" : "|close";
  t += r.expect_continue ? "|100" : "";
  t += std::to_string(static_cast<int>(r.body)) + "|" + std::to_string(r.content_length);
  for (const Header& h : r.headers) {
    FUZZ_CHECK(!h.name.empty());
    for (char ch : h.value) {
      FUZZ_CHECK(ch != '\r' && ch != '\n' && ch != '\0');
    }
    t += '|';
    t += h.name;
    t += ':';
    t += h.value;
  }
  t += '\n';
}

// Feeds the stream (whole, or in the input's chunk sizes) and returns the transcript.
std::string run(RequestParser& p, std::vector<char> (&assembly)[2], const weft::fuzz::Input& in,
                bool one_shot) {
  const std::span<const std::byte> stream = in.stream;
  const Config& c = p.config();
  std::string t;
  std::size_t offset = 0;
  std::size_t turn = 0;
  std::uint64_t body_bytes = 0;
  std::size_t cur = 0;  // the assembly buffer in use
  std::string head;     // the current head's record, when it was assembled
  FUZZ_CHECK(p.set_assembly(assembly[cur]).ok());
  // Body pieces come in read-sized slices: they are joined until the next event, so the
  // transcripts of different splits compare equal.
  std::string body;
  const auto flush = [&] {
    if (!body.empty()) {
      t += "B" + std::to_string(body.size()) + ":" + body + "\n";
      body.clear();
    }
  };
  bool last_empty = false;
  while (true) {
    std::size_t len = one_shot ? stream.size() : in.chunk_sizes[turn++ % in.chunk_sizes.size()];
    if (len == 0 && last_empty) {
      len = 1;
    }
    len = std::min(len, stream.size() - offset);
    last_empty = len == 0;
    const weft::fuzz::Chunk chunk(stream, offset, len);
    const auto* base = reinterpret_cast<const char*>(chunk.span().data());
    std::string_view rest(base, len);
    while (true) {
      const Decoded d = p.feed(rest);
      FUZZ_CHECK(d.consumed <= rest.size());
      if (d.state != DecodeState::body) {
        FUZZ_CHECK(p.body().empty());
      }
      if (d.state == DecodeState::need_more) {
        FUZZ_CHECK(d.consumed == rest.size());
        offset += d.consumed;
        // Split runs move a held head to the other buffer (what a server lending a scratch
        // buffer does) and poison the one it left: views must follow.
        if (!one_shot && p.assembling()) {
          cur ^= 1;
          FUZZ_CHECK(p.set_assembly(assembly[cur]).ok());
          std::fill(assembly[cur ^ 1].begin(), assembly[cur ^ 1].end(), '#');
        }
        break;
      }
      if (d.state == DecodeState::error) {
        const std::error_code ec = p.error();
        FUZZ_CHECK(ec && ec.category() == weft::http::http_category());
        const std::uint16_t s = weft::http::status(ec);
        FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 ||
                   s == 505);
        FUZZ_CHECK(ec != weft::http::http_errc::truncated);
        const Decoded again = p.feed(rest);
        FUZZ_CHECK(again.state == DecodeState::error && again.consumed == 0);
        FUZZ_CHECK(p.finish().error() == ec);
        flush();
        t += "E" + std::to_string(ec.value()) + "@" + std::to_string(offset + d.consumed);
        return t;
      }
      if (d.state == DecodeState::head) {
        FUZZ_CHECK(d.consumed >= 1);
        const Request& r = p.request();
        FUZZ_CHECK(inside(r.method_name, base, len) ||
                   inside(r.method_name, assembly[cur].data(), assembly[cur].size()));
        flush();
        body_bytes = 0;
        record_head(r, c, t);
        head.clear();
        if (p.assembling()) {
          record_head(r, c, head);
        }
      } else if (d.state == DecodeState::body) {
        const std::string_view b = p.body();
        FUZZ_CHECK(!b.empty() && inside(b, rest.data(), d.consumed));
        FUZZ_CHECK(b.data() + b.size() == rest.data() + d.consumed);
        body_bytes += b.size();
        FUZZ_CHECK(body_bytes <= c.max_body_size);
        body += b;
      } else {
        FUZZ_CHECK(!p.mid_message());
        if (!head.empty()) {  // an assembled head, maybe moved while the body streamed
          std::string again;
          record_head(p.request(), c, again);
          FUZZ_CHECK(again == head);
        }
        flush();
        t += "C\n";
      }
      offset += d.consumed;
      rest.remove_prefix(d.consumed);
    }
    if (offset == stream.size()) {
      break;
    }
  }
  flush();
  const weft::Result<void> fin = p.finish();
  FUZZ_CHECK(fin.ok() || fin.error() == weft::http::http_errc::truncated);
  t += fin.ok() ? "F" : "T";
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weft::fuzz::Input in;
  if (!weft::fuzz::parse_input(data, size, in)) {
    return 0;
  }
  Config c;
  c.accept_unknown_methods = (in.config & 1) != 0;
  c.allow_te_with_content_length = (in.config & 2) != 0;
  if ((in.config & 4) != 0) {
    c.max_request_line = 32;
    c.max_header_bytes = 48;
    c.max_headers = 3;
    c.max_body_size = 40;
    c.max_chunk_ext = 8;
  }
  std::vector<Header> headers(c.max_headers);
  std::vector<char> assembly[2] = {std::vector<char>(weft::http::assembly_size(c)),
                                   std::vector<char>(weft::http::assembly_size(c))};
  RequestParser p(c);
  FUZZ_CHECK(p.set_storage(headers, assembly[0]).ok());
  const std::string whole = run(p, assembly, in, true);
  p.reset();
  FUZZ_CHECK(!p.error() && !p.mid_message());
  const std::string split = run(p, assembly, in, false);
  FUZZ_CHECK(whole == split);
  return 0;
}

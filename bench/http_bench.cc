// HTTP/1.1 request parsing: weft::http::RequestParser against llhttp (8.1, Node's parser, C
// sources from Debian's node-llhttp) and http_parser (2.9, its predecessor, from
// libhttp-parser-dev), side by side in one binary on the same bytes.
//
//   BM_Weft/<req>        RequestParser::feed() over a buffer of pipelined requests
//   BM_Llhttp/<req>      llhttp_execute() over the same buffer
//   BM_HttpParser/<req>  http_parser_execute() over the same buffer
//
// <req>: 0 = a realistic browser navigation (Firefox, 13 fields, 586 bytes), 1 = the
// TechEmpower plaintext request (3 fields, 164 bytes). Each iteration parses about 64 KiB
// of back-to-back requests (pipelining: the parser's own per-request overhead shows). All
// three extract the same information: method, target, and every field name and value as
// pointer + length (weft into its header array; the C parsers through data callbacks that
// record the pieces, which is the least a server must do with them). Counters: items/s =
// requests per second, bytes/s = input throughput.
//
// Run: ./weft_http_bench --benchmark_counters_tabular=true   (a Release build)
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http/parser.h>

#include "../tests/http/sample_requests.h"
#include "http_peers.h"

namespace {

constexpr std::size_t kBufferBytes = 64 * 1024;

struct Stream {
  std::string bytes;
  std::size_t requests = 0;
};

Stream make_stream(std::int64_t which) {
  const std::string_view req = which == 0 ? weft::test::kBrowser : weft::test::kPlaintext;
  Stream s;
  while (s.bytes.size() + req.size() <= kBufferBytes) {
    s.bytes += req;
    ++s.requests;
  }
  return s;
}

void report(benchmark::State& state, const Stream& s) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(s.requests));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(s.bytes.size()));
}

void BM_Weft(benchmark::State& state) {
  const Stream s = make_stream(state.range(0));
  weft::http::Config config;
  std::vector<weft::http::Header> headers(config.max_headers);
  std::vector<char> assembly(weft::http::assembly_size(config));
  weft::http::RequestParser p(config);
  if (!p.set_storage(headers, assembly).ok()) {
    state.SkipWithError("set_storage");
    return;
  }
  for (auto _ : state) {
    std::string_view rest = s.bytes;
    std::size_t done = 0;
    while (true) {
      const weft::http::Decoded d = p.feed(rest);
      rest.remove_prefix(d.consumed);
      if (d.state == weft::http::DecodeState::complete) {
        ++done;
      } else if (d.state == weft::http::DecodeState::head) {
        benchmark::DoNotOptimize(p.request().headers.data());
      } else if (d.state != weft::http::DecodeState::body) {
        break;
      }
    }
    if (done != s.requests) {
      state.SkipWithError("weft: wrong request count");
      return;
    }
  }
  report(state, s);
}

// The C parsers live in their own translation units (http_peer_*.cc): llhttp.h and
// http_parser.h declare the same enumerators and cannot share one.
template <class Peer>
void run_peer(benchmark::State& state) {
  const Stream s = make_stream(state.range(0));
  Peer peer;
  for (auto _ : state) {
    if (peer.parse(s.bytes.data(), s.bytes.size()) != s.requests) {
      state.SkipWithError("peer parser failed");
      return;
    }
  }
  report(state, s);
}

void BM_Llhttp(benchmark::State& state) {
  run_peer<weft::bench::Llhttp>(state);
}
void BM_HttpParser(benchmark::State& state) {
  run_peer<weft::bench::HttpParser>(state);
}

}  // namespace

BENCHMARK(BM_Weft)->Arg(0)->Arg(1);
BENCHMARK(BM_Llhttp)->Arg(0)->Arg(1);
BENCHMARK(BM_HttpParser)->Arg(0)->Arg(1);

BENCHMARK_MAIN();

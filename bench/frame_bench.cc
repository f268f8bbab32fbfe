// Micro-benchmarks for weft::frame decoders.
//
//   BM_U32Decode/16           16-byte frames packed in one 1 MiB buffer: per-frame cost
//                             (frames/s) and bytes/s of the zero-copy path.
//   BM_U32Split1500/<size>    the same stream fed in 1500-byte reads (an Ethernet MTU), so
//                             frames straddle reads and are assembled by copy.
//   BM_Memcpy1500/<size>      memcpy of the same bytes in the same 1500-byte pieces into a
//                             frame-sized buffer: the ceiling for the split case's copy.
//   BM_VarintDecode/16        as BM_U32Decode with LEB128 prefixes.
//   BM_DelimiterDecode/<crlf> 32-byte lines, LF or CRLF.
//
// Run: ./weft_frame_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <weft/frame/delimiter.h>
#include <weft/frame/encode.h>
#include <weft/frame/length_prefix.h>

namespace {

using weft::frame::DecodeState;
using weft::frame::DelimiterConfig;
using weft::frame::DelimiterDecoder;
using weft::frame::LengthPrefixConfig;
using weft::frame::LengthPrefixDecoder;
using weft::frame::PrefixKind;

constexpr std::size_t kStreamBytes = 1 << 20;
constexpr std::size_t kReadSize = 1500;
constexpr std::uint32_t kMaxFrame = 1 << 20;

// Whole frames of `payload` bytes filling about kStreamBytes.
std::vector<std::byte> make_stream(PrefixKind kind, std::size_t payload, std::size_t* frames) {
  std::vector<std::byte> out;
  std::vector<std::byte> body(payload, std::byte{0x42});
  std::byte head[weft::frame::kMaxHeaderSize];
  *frames = 0;
  while (out.size() + payload + weft::frame::kMaxHeaderSize <= kStreamBytes || *frames == 0) {
    const std::size_t n =
        weft::frame::encode_header(kind, static_cast<std::uint32_t>(payload), head).value();
    out.insert(out.end(), head, head + n);
    out.insert(out.end(), body.begin(), body.end());
    ++*frames;
  }
  return out;
}

// Decodes all of `in`, one feed() per frame; returns payload bytes seen.
template <class D>
std::size_t drain(D& dec, std::span<const std::byte> in) {
  std::size_t seen = 0;
  while (!in.empty()) {
    const weft::frame::Decoded d = dec.feed(in);
    if (d.state == DecodeState::ready) {
      seen += dec.frame().size();
      benchmark::DoNotOptimize(dec.frame().data());
    } else if (d.state == DecodeState::error) {
      std::abort();
    }
    in = in.subspan(d.consumed);
  }
  return seen;
}

void length_prefix_one_buffer(benchmark::State& state, PrefixKind kind) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  std::size_t frames = 0;
  const std::vector<std::byte> stream = make_stream(kind, payload, &frames);
  LengthPrefixDecoder dec({kind, kMaxFrame});
  for (auto _ : state) {
    benchmark::DoNotOptimize(drain(dec, stream));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * frames));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(state.iterations() * frames),
                                                  benchmark::Counter::kIsRate);
}

void BM_U32Decode(benchmark::State& state) {
  length_prefix_one_buffer(state, PrefixKind::u32_be);
}
void BM_VarintDecode(benchmark::State& state) {
  length_prefix_one_buffer(state, PrefixKind::varint);
}
BENCHMARK(BM_U32Decode)->Arg(16)->Arg(256);
BENCHMARK(BM_VarintDecode)->Arg(16)->Arg(256);

void BM_U32Split1500(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  std::size_t frames = 0;
  const std::vector<std::byte> stream = make_stream(PrefixKind::u32_be, payload, &frames);
  std::vector<std::byte> assembly(kMaxFrame);
  LengthPrefixDecoder dec({PrefixKind::u32_be, kMaxFrame});
  if (!dec.set_assembly(assembly)) {
    std::abort();
  }
  const std::span<const std::byte> all(stream);
  for (auto _ : state) {
    std::size_t seen = 0;
    for (std::size_t at = 0; at < all.size(); at += kReadSize) {
      seen += drain(dec, all.subspan(at, std::min(kReadSize, all.size() - at)));
    }
    benchmark::DoNotOptimize(seen);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(state.iterations() * frames),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_U32Split1500)->Arg(16)->Arg(512)->Arg(4096)->Arg(65536);

void BM_Memcpy1500(benchmark::State& state) {
  // The same stream, the same 1500-byte pieces, copied into a destination the size of one
  // frame (as the assembly storage is): the split case's copy with no decoding around it.
  const auto payload = static_cast<std::size_t>(state.range(0));
  std::size_t frames = 0;
  const std::vector<std::byte> stream = make_stream(PrefixKind::u32_be, payload, &frames);
  std::vector<std::byte> dst(std::max(payload, kReadSize));
  for (auto _ : state) {
    std::size_t off = 0;
    for (std::size_t at = 0; at < stream.size(); at += kReadSize) {
      const std::size_t n = std::min(kReadSize, stream.size() - at);
      if (off + n > dst.size()) {
        off = 0;
      }
      std::memcpy(dst.data() + off, stream.data() + at, n);
      off += n;
    }
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_Memcpy1500)->Arg(16)->Arg(512)->Arg(4096)->Arg(65536);

void BM_DelimiterDecode(benchmark::State& state) {
  const bool crlf = state.range(0) != 0;
  std::vector<std::byte> stream;
  std::size_t lines = 0;
  while (stream.size() + 34 <= kStreamBytes) {
    for (int i = 0; i < 32; ++i) {
      stream.push_back(std::byte('a' + i % 26));
    }
    if (crlf) {
      stream.push_back(std::byte{'\r'});
    }
    stream.push_back(std::byte{'\n'});
    ++lines;
  }
  std::vector<std::byte> assembly(8192);
  DelimiterDecoder dec(DelimiterConfig{std::byte{'\n'}, crlf, 8192});
  if (!dec.set_assembly(assembly)) {
    std::abort();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(drain(dec, stream));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.counters["lines/s"] = benchmark::Counter(static_cast<double>(state.iterations() * lines),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DelimiterDecode)->ArgName("crlf")->Arg(0)->Arg(1);

void BM_DelimiterSplit1500(benchmark::State& state) {
  const auto line = static_cast<std::size_t>(state.range(0));
  std::vector<std::byte> stream;
  while (stream.size() + line + 1 <= kStreamBytes) {
    stream.insert(stream.end(), line, std::byte{'x'});
    stream.push_back(std::byte{'\n'});
  }
  std::vector<std::byte> assembly(kMaxFrame);
  DelimiterDecoder dec(DelimiterConfig{std::byte{'\n'}, false, kMaxFrame});
  if (!dec.set_assembly(assembly)) {
    std::abort();
  }
  const std::span<const std::byte> all(stream);
  for (auto _ : state) {
    std::size_t seen = 0;
    for (std::size_t at = 0; at < all.size(); at += kReadSize) {
      seen += drain(dec, all.subspan(at, std::min(kReadSize, all.size() - at)));
    }
    benchmark::DoNotOptimize(seen);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_DelimiterSplit1500)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();

// Fuzz target: weft::msg::parse() on one frame's bytes after the u32 prefix.
//
// The input is the frame as a LengthPrefixDecoder hands it over (type, flags, channel, id,
// body); libFuzzer passes it in a heap block of exactly its size, so ASan flags any read
// past it. Invariants on success: the spans lie inside the input and tile the body in wire
// order, the header fields obey their rules, and encode() writes back exactly the input
// (after its own u32 prefix), so parse and encode agree on every frame they accept.
#include <weft/msg/frame.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_common.h"

namespace {

bool inside(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = std::as_bytes(std::span<const std::uint8_t>(data, size));
  const weft::Result<weft::msg::Frame> r = weft::msg::parse(in);
  if (!r.ok()) {
    FUZZ_CHECK(r.error().category() == weft::msg::msg_category());
    FUZZ_CHECK(r.error() != weft::msg::msg_errc::buffer_too_small);
    return 0;
  }
  const weft::msg::Frame& f = r.value();
  FUZZ_CHECK(size >= weft::msg::kHeaderSize);
  FUZZ_CHECK(f.channel == 0);
  FUZZ_CHECK(inside(f.topic, in) && inside(f.detail, in) && inside(f.payload, in));
  FUZZ_CHECK(f.topic.size() <= weft::msg::kMaxTopicSize);
  FUZZ_CHECK(f.detail.size() <= weft::msg::kMaxDetailSize);
  // Whatever ends the frame ends the input: a payload always runs to the last byte.
  if (!f.payload.empty()) {
    FUZZ_CHECK(f.payload.data() + f.payload.size() == in.data() + in.size());
  }
  std::vector<std::byte> out(weft::msg::encoded_size(f));
  const weft::Result<std::size_t> n = weft::msg::encode(f, out);
  FUZZ_CHECK(n.ok());
  FUZZ_CHECK(n.value() == weft::msg::kPrefixSize + size);
  FUZZ_CHECK(std::memcmp(out.data() + weft::msg::kPrefixSize, data, size) == 0);
  // encode() refuses a buffer one byte short and writes nothing into it.
  std::vector<std::byte> small(out.size() - 1, std::byte{0x5a});
  FUZZ_CHECK(weft::msg::encode(f, small).error() == weft::msg::msg_errc::buffer_too_small);
  for (std::byte b : small) {
    FUZZ_CHECK(b == std::byte{0x5a});
  }
  return 0;
}

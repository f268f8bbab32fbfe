// The test vectors of docs/protocol.md are tests: this file parses the table between the
// "vectors:begin/end" markers and runs each row through the real decoders, whole, at every
// split point, and one byte at a time. A change to the wire format that is not reflected in
// the document (or the reverse) fails here.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <weft/frame/delimiter.h>
#include <weft/frame/error.h>
#include <weft/frame/length_prefix.h>

namespace weft::frame {
namespace {

using Bytes = std::vector<std::uint8_t>;

struct Vector {
  std::string decoder;
  std::uint32_t max = 0;
  Bytes input;
  std::vector<Bytes> frames;
  std::string end;
  int line = 0;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" `");
  const auto e = s.find_last_not_of(" `");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

Bytes parse_hex(const std::string& text) {
  Bytes out;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    if (tok != "-") {
      out.push_back(static_cast<std::uint8_t>(std::stoul(tok, nullptr, 16)));
    }
  }
  return out;
}

std::vector<Vector> load_vectors() {
  std::ifstream f(WEFT_PROTOCOL_MD);
  std::vector<Vector> out;
  std::string line;
  bool in_table = false;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.find("vectors:begin") != std::string::npos) {
      in_table = true;
      continue;
    }
    if (line.find("vectors:end") != std::string::npos) {
      break;
    }
    if (!in_table || line.rfind("| ", 0) != 0 || line.find("decoder") != std::string::npos) {
      continue;
    }
    std::vector<std::string> cols;
    std::stringstream ss(line.substr(1));
    std::string col;
    while (std::getline(ss, col, '|')) {
      cols.push_back(trim(col));
    }
    if (cols.size() < 5) {
      continue;
    }
    Vector v;
    v.decoder = cols[0];
    v.max = static_cast<std::uint32_t>(std::stoul(cols[1]));
    v.input = parse_hex(cols[2]);
    if (!cols[3].empty()) {
      std::stringstream fs(cols[3]);
      std::string fr;
      while (std::getline(fs, fr, ';')) {
        v.frames.push_back(parse_hex(fr));
      }
    }
    v.end = cols[4];
    v.line = n;
    out.push_back(v);
  }
  return out;
}

struct Outcome {
  std::vector<Bytes> frames;
  std::string end;
};

std::string errc_name(std::error_code ec) {
  if (ec == make_error_code(frame_errc::oversize)) {
    return "oversize";
  }
  if (ec == make_error_code(frame_errc::bad_varint)) {
    return "bad_varint";
  }
  if (ec == make_error_code(frame_errc::truncated)) {
    return "truncated";
  }
  return ec ? ec.message() : "ok";
}

// Feeds `chunks` (cut points) into decoder d, collecting frames and the final state.
template <class D>
Outcome run(D& d, const Bytes& input, const std::vector<std::size_t>& cuts) {
  Outcome o;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? cuts[i] : input.size();
    std::span<const std::byte> chunk(reinterpret_cast<const std::byte*>(input.data()) + start,
                                     end - start);
    while (true) {
      const Decoded r = d.feed(chunk);
      if (r.state == DecodeState::error) {
        o.end = errc_name(d.error());
        return o;
      }
      chunk = chunk.subspan(r.consumed);
      if (r.state == DecodeState::need_more) {
        break;
      }
      auto f = d.frame();
      o.frames.emplace_back(reinterpret_cast<const std::uint8_t*>(f.data()),
                            reinterpret_cast<const std::uint8_t*>(f.data()) + f.size());
      if (chunk.empty()) {
        break;
      }
    }
    start = end;
  }
  auto fin = d.finish();
  o.end = fin ? "ok" : errc_name(fin.error());
  return o;
}

Outcome decode(const Vector& v, const std::vector<std::size_t>& cuts) {
  std::vector<std::byte> storage(v.max + 1);
  if (v.decoder == "u32" || v.decoder == "varint") {
    LengthPrefixDecoder d({v.decoder == "u32" ? PrefixKind::u32_be : PrefixKind::varint, v.max});
    EXPECT_TRUE(d.set_assembly(storage).ok());
    return run(d, v.input, cuts);
  }
  DelimiterDecoder d({std::byte{'\n'}, v.decoder == "crlf", v.max});
  EXPECT_TRUE(d.set_assembly(storage).ok());
  return run(d, v.input, cuts);
}

TEST(SpecVectors, DocumentHasVectors) {
  EXPECT_GE(load_vectors().size(), 20u);
}

TEST(SpecVectors, EveryVectorAtEverySplit) {
  for (const Vector& v : load_vectors()) {
    SCOPED_TRACE("docs/protocol.md line " + std::to_string(v.line));
    std::vector<std::vector<std::size_t>> plans = {{}};
    for (std::size_t cut = 1; cut < v.input.size(); ++cut) {
      plans.push_back({cut});
    }
    std::vector<std::size_t> bytewise;
    for (std::size_t cut = 1; cut < v.input.size(); ++cut) {
      bytewise.push_back(cut);
    }
    plans.push_back(bytewise);
    for (const auto& cuts : plans) {
      const Outcome o = decode(v, cuts);
      EXPECT_EQ(o.end, v.end);
      if (v.end == "ok") {
        EXPECT_EQ(o.frames, v.frames);
      }
    }
  }
}

}  // namespace
}  // namespace weft::frame

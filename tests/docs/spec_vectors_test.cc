// The test vectors of docs/protocol.md are tests: this file parses the tables between the
// "vectors:begin/end" markers (stream framing) and the "msg-vectors:begin/end" markers
// (message frames) and runs each row through the real decoders and weft::msg::parse(),
// whole, at every split point, and one byte at a time. A change to the wire format that is
// not reflected in the document (or the reverse) fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <weft/frame/delimiter.h>
#include <weft/frame/error.h>
#include <weft/frame/length_prefix.h>
#include <weft/msg/error.h>
#include <weft/msg/frame.h>

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

// The rows of the table between "<!-- NAME:begin -->" and "<!-- NAME:end -->": the
// cells of each row (backticks and spaces trimmed) and its line number. The header row
// (the one naming a "(hex)" column) and the separator are skipped.
struct Row {
  std::vector<std::string> cols;
  int line = 0;
};

std::vector<Row> load_table(const std::string& name) {
  std::ifstream f(WEFT_PROTOCOL_MD);
  EXPECT_TRUE(f.is_open()) << WEFT_PROTOCOL_MD;
  std::vector<Row> out;
  std::string line;
  bool in_table = false;
  int n = 0;
  const std::string begin = "<!-- " + name + ":begin -->";
  const std::string end = "<!-- " + name + ":end -->";
  while (std::getline(f, line)) {
    ++n;
    if (line == begin) {
      in_table = true;
      continue;
    }
    if (line == end) {
      break;
    }
    if (!in_table || line.rfind("| ", 0) != 0 || line.find("(hex)") != std::string::npos) {
      continue;
    }
    Row r;
    std::stringstream ss(line.substr(1));
    std::string col;
    while (std::getline(ss, col, '|')) {
      r.cols.push_back(trim(col));
    }
    r.line = n;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Vector> load_vectors() {
  std::vector<Vector> out;
  for (const Row& r : load_table("vectors")) {
    const auto& cols = r.cols;
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
    v.line = r.line;
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

// ---- message frames (docs/protocol.md section 6) ----------------------------------------

struct MsgVector {
  Bytes input;
  std::string type;
  std::string id;
  std::string fields;
  std::string end;
  int line = 0;
};

std::vector<MsgVector> load_msg_vectors() {
  std::vector<MsgVector> out;
  for (const Row& r : load_table("msg-vectors")) {
    if (r.cols.size() < 5) {
      continue;
    }
    out.push_back({parse_hex(r.cols[0]), r.cols[1], r.cols[2], r.cols[3], r.cols[4], r.line});
  }
  return out;
}

std::string msg_errc_name(std::error_code ec) {
  static const char* const kNames[] = {
      "",       "bad_length",     "unknown_type", "reserved_flags", "bad_channel",
      "bad_id", "truncated_body", "bad_field"};
  if (ec.category() == msg::msg_category() && ec.value() >= 1 && ec.value() <= 7) {
    return kNames[ec.value()];
  }
  return ec.message();
}

const char* type_name(msg::FrameType t) {
  static const char* const kNames[] = {"?",     "HELLO",   "HELLO_ACK", "REQUEST",     "RESPONSE",
                                       "ERROR", "MESSAGE", "SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH",
                                       "EVENT", "PING",    "PONG",      "GOAWAY",      "CANCEL"};
  const auto i = static_cast<std::size_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

std::string hex(std::span<const std::byte> b) {
  if (b.empty()) {
    return "-";
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::byte x : b) {
    out += kDigits[std::to_integer<unsigned>(x) >> 4];
    out += kDigits[std::to_integer<unsigned>(x) & 15];
  }
  return out;
}

std::string hex_u64(std::uint64_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

// The "fields" column for a parsed frame: the fields its type carries, in wire order.
std::string describe(const msg::Frame& f) {
  using msg::FrameType;
  const std::string u = std::to_string(f.method);
  switch (f.type) {
    case FrameType::hello:
    case FrameType::hello_ack:
      return "version=" + std::to_string(f.hello.version) +
             " max_frame=" + std::to_string(f.hello.max_frame) +
             " max_inflight=" + std::to_string(f.hello.max_inflight) +
             " features=" + hex_u64(f.hello.features);
    case FrameType::request:
      return "method=" + u + " deadline_ms=" + std::to_string(f.deadline_ms) +
             ((f.flags & msg::kFlagIdempotent) != 0
                  ? " idempotency_key=" + hex_u64(f.idempotency_key)
                  : std::string()) +
             " payload=" + hex(f.payload);
    case FrameType::response:
    case FrameType::ping:
    case FrameType::pong:
      return "payload=" + hex(f.payload);
    case FrameType::error:
      return "code=" + std::to_string(f.code) + " detail=" + hex(f.detail);
    case FrameType::message:
      return "method=" + u + " payload=" + hex(f.payload);
    case FrameType::subscribe:
    case FrameType::unsubscribe:
      return "topic=" + hex(f.topic);
    case FrameType::publish:
    case FrameType::event:
      return "topic=" + hex(f.topic) + " payload=" + hex(f.payload);
    case FrameType::goaway:
      return "last_id=" + std::to_string(f.last_id) + " code=" + std::to_string(f.code) +
             " detail=" + hex(f.detail);
    case FrameType::cancel:
      return "-";
  }
  return "?";
}

constexpr std::uint32_t kMsgMaxFrame = 4096;  // the document's max_frame_size for the table

// Finds the frame with the u32 decoder (fed at the given cuts), parses it and checks the
// row: the outcome, the fields, and that encoding the parsed frame gives the input back.
void check_msg(const MsgVector& v, const std::vector<std::size_t>& cuts) {
  std::vector<std::byte> storage(kMsgMaxFrame);
  LengthPrefixDecoder d({PrefixKind::u32_be, kMsgMaxFrame});
  ASSERT_TRUE(d.set_assembly(storage).ok());
  std::size_t start = 0;
  int frames = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? cuts[i] : v.input.size();
    std::span<const std::byte> chunk(reinterpret_cast<const std::byte*>(v.input.data()) + start,
                                     end - start);
    start = end;
    while (!chunk.empty()) {
      const Decoded r = d.feed(chunk);
      if (r.state == DecodeState::error) {
        EXPECT_EQ(errc_name(d.error()), v.end);
        return;
      }
      chunk = chunk.subspan(r.consumed);
      if (r.state == DecodeState::need_more) {
        break;
      }
      ++frames;
      ASSERT_EQ(frames, 1) << "a vector is one frame";
      ASSERT_TRUE(chunk.empty()) << "bytes after the frame";
      const auto f = msg::parse(d.frame());
      if (!f.ok()) {
        EXPECT_EQ(msg_errc_name(f.error()), v.end);
        return;
      }
      EXPECT_EQ("ok", v.end);
      EXPECT_EQ(type_name(f->type), v.type);
      EXPECT_EQ(std::to_string(f->id), v.id);
      EXPECT_EQ(describe(f.value()), v.fields);
      std::vector<std::byte> again(msg::encoded_size(f.value()));
      const auto n = msg::encode(f.value(), again);
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(Bytes(reinterpret_cast<const std::uint8_t*>(again.data()),
                      reinterpret_cast<const std::uint8_t*>(again.data()) + again.size()),
                v.input);
    }
  }
  const auto fin = d.finish();
  if (!fin.ok()) {
    EXPECT_EQ(errc_name(fin.error()), v.end);
    return;
  }
  EXPECT_EQ(frames, 1) << "no frame and no error";
}

TEST(SpecVectors, DocumentHasMsgVectors) {
  const auto vs = load_msg_vectors();
  EXPECT_GE(vs.size(), 15u);
  // Every frame type appears in an ok row.
  for (unsigned t = 0x01; t <= 0x0e; ++t) {
    const std::string name = type_name(static_cast<msg::FrameType>(t));
    EXPECT_TRUE(std::any_of(vs.begin(), vs.end(), [&](const MsgVector& v) {
      return v.type == name && v.end == "ok";
    })) << name;
  }
}

TEST(SpecVectors, EveryMsgVectorAtEverySplit) {
  for (const MsgVector& v : load_msg_vectors()) {
    SCOPED_TRACE("docs/protocol.md line " + std::to_string(v.line));
    std::vector<std::vector<std::size_t>> plans = {{}};
    std::vector<std::size_t> bytewise;
    for (std::size_t cut = 1; cut < v.input.size(); ++cut) {
      plans.push_back({cut});
      bytewise.push_back(cut);
    }
    plans.push_back(bytewise);
    for (const auto& cuts : plans) {
      check_msg(v, cuts);
    }
  }
}

}  // namespace
}  // namespace weft::frame

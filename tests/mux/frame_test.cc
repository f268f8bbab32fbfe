// weft::mux frames: the test vectors of docs/protocol.md §7.10 (the "mux-vectors" table),
// parsed from the document itself, plus encode()'s refusals.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <weft/mux/error.h>
#include <weft/mux/frame.h>

namespace weft::mux {
namespace {

struct Row {
  std::vector<std::string> cols;
  int line = 0;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" `");
  const auto e = s.find_last_not_of(" `");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<Row> load_table(const std::string& name) {
  std::ifstream f(WEFT_PROTOCOL_MD);
  EXPECT_TRUE(f.is_open()) << WEFT_PROTOCOL_MD;
  std::vector<Row> out;
  std::string line;
  bool in = false;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line == "<!-- " + name + ":begin -->") {
      in = true;
      continue;
    }
    if (line == "<!-- " + name + ":end -->") {
      break;
    }
    if (!in || line.rfind("| ", 0) != 0 || line.find("(hex)") != std::string::npos) {
      continue;
    }
    Row r;
    r.line = n;
    std::string cell;
    std::istringstream cells(line.substr(1));
    while (std::getline(cells, cell, '|')) {
      r.cols.push_back(trim(cell));
    }
    out.push_back(r);
  }
  return out;
}

std::vector<std::byte> hex(const std::string& text) {
  std::vector<std::byte> out;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    out.push_back(static_cast<std::byte>(std::stoul(tok, nullptr, 16)));
  }
  return out;
}

std::string hexstr(std::span<const std::byte> b) {
  if (b.empty()) {
    return "-";
  }
  static const char* d = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    s += d[std::to_integer<int>(x) >> 4];
    s += d[std::to_integer<int>(x) & 15];
  }
  return s;
}

const char* type_name(FrameType t) {
  switch (t) {
    case FrameType::open:
      return "OPEN";
    case FrameType::open_ack:
      return "OPEN_ACK";
    case FrameType::refuse:
      return "REFUSE";
    case FrameType::data:
      return "DATA";
    case FrameType::window_update:
      return "WINDOW_UPDATE";
    case FrameType::reset:
      return "RESET";
    case FrameType::settings:
      return "MUX_SETTINGS";
  }
  return "?";
}

// The fields column of the table, from a parsed frame.
std::string describe(const Frame& f) {
  std::ostringstream o;
  switch (f.type) {
    case FrameType::open:
      o << "window=" << f.window << " name=" << hexstr(f.name);
      break;
    case FrameType::open_ack:
      o << "window=" << f.window;
      break;
    case FrameType::window_update:
      o << "increment=" << f.window;
      break;
    case FrameType::refuse:
    case FrameType::reset:
      o << "code=" << f.code;
      break;
    case FrameType::data:
      o << "fin=" << (f.fin() ? 1 : 0) << " payload=" << hexstr(f.payload);
      break;
    case FrameType::settings:
      o << "conn_window=" << f.settings.conn_window << " max_data=" << f.settings.max_data
        << " max_channels=" << f.settings.max_channels;
      break;
  }
  return o.str();
}

std::string errc_name(std::error_code ec) {
  static const char* names[] = {
      "",       "bad_length",     "unknown_type", "reserved_flags", "bad_channel",
      "bad_id", "truncated_body", "bad_field"};
  if (ec.category() == mux_category() && ec.value() >= 1 && ec.value() <= 7) {
    return names[ec.value()];
  }
  return ec.message();
}

TEST(MuxFrame, SpecVectors) {
  const auto rows = load_table("mux-vectors");
  ASSERT_GE(rows.size(), 20u);
  int types_seen = 0;
  for (const Row& r : rows) {
    ASSERT_EQ(r.cols.size(), 5u) << "protocol.md:" << r.line;
    const auto bytes = hex(r.cols[0]);
    ASSERT_GE(bytes.size(), 4u) << r.line;
    const std::uint32_t len = (std::to_integer<std::uint32_t>(bytes[0]) << 24) |
                              (std::to_integer<std::uint32_t>(bytes[1]) << 16) |
                              (std::to_integer<std::uint32_t>(bytes[2]) << 8) |
                              std::to_integer<std::uint32_t>(bytes[3]);
    ASSERT_EQ(len, bytes.size() - 4) << "protocol.md:" << r.line << ": prefix";
    const auto body = std::span<const std::byte>(bytes).subspan(4);
    Result<Frame> f = parse(body);
    if (r.cols[4] != "ok") {
      ASSERT_FALSE(f.ok()) << "protocol.md:" << r.line;
      EXPECT_EQ(errc_name(f.error()), r.cols[4]) << "protocol.md:" << r.line;
      continue;
    }
    ASSERT_TRUE(f.ok()) << "protocol.md:" << r.line << ": " << f.error().message();
    ++types_seen;
    EXPECT_EQ(type_name(f->type), r.cols[1]) << "protocol.md:" << r.line;
    EXPECT_EQ(std::to_string(f->channel), r.cols[2]) << "protocol.md:" << r.line;
    EXPECT_EQ(describe(f.value()), r.cols[3]) << "protocol.md:" << r.line;
    std::vector<std::byte> again(encoded_size(f.value()));
    Result<std::size_t> n = encode(f.value(), again);
    ASSERT_TRUE(n.ok()) << r.line;
    EXPECT_EQ(again, bytes) << "protocol.md:" << r.line << ": encode";
    // Every truncation of an accepted frame fails to parse (no frame is a prefix of another
    // in a way parse() could not notice), except DATA, whose payload is the rest.
    if (f->type != FrameType::data) {
      for (std::size_t cut = 0; cut < body.size(); ++cut) {
        EXPECT_FALSE(parse(body.first(cut)).ok()) << r.line << " cut " << cut;
      }
    }
  }
  EXPECT_GE(types_seen, 7);
}

TEST(MuxFrame, EncodeRefuses) {
  std::vector<std::byte> buf(512);
  const std::byte name[1] = {std::byte{'x'}};
  EXPECT_EQ(encode(make_open(0, 10, name), buf).error(), mux_errc::bad_channel);
  EXPECT_EQ(encode(make_open(1, 0, name), buf).error(), mux_errc::bad_field);
  EXPECT_EQ(encode(make_open(1, 10, {}), buf).error(), mux_errc::bad_field);
  EXPECT_EQ(encode(make_window_update(1, kMaxWindow + 1), buf).error(), mux_errc::bad_field);
  EXPECT_EQ(encode(make_data(1, {}), buf).error(), mux_errc::bad_length);
  EXPECT_EQ(encode(make_settings({0, 1, 1}), buf).error(), mux_errc::bad_field);
  Frame bad = make_reset(1, ChannelError::cancel);
  bad.flags = kFlagFin;
  EXPECT_EQ(encode(bad, buf).error(), mux_errc::reserved_flags);
  std::vector<std::byte> small(13, std::byte{0x5a});
  EXPECT_EQ(encode(make_reset(1, ChannelError::cancel), small).error(), mux_errc::buffer_too_small);
  for (std::byte b : small) {
    EXPECT_EQ(b, std::byte{0x5a});
  }
  EXPECT_EQ(encode(make_reset(1, ChannelError::cancel), std::span(buf).first(14)).value(), 14u);
  EXPECT_STREQ(to_string(mux_errc::flow_control), "DATA beyond the receive window");
  EXPECT_EQ(std::error_code(mux_errc::would_block).category().name(), std::string("weft.mux"));
  EXPECT_FALSE(is_connection_fatal(mux_errc::would_block));
  EXPECT_TRUE(is_connection_fatal(mux_errc::reset_flood));
  EXPECT_TRUE(is_mux_type(0x10) && is_mux_type(0x16) && !is_mux_type(0x0e) && !is_mux_type(0x17));
}

}  // namespace
}  // namespace weft::mux

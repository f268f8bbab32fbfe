// What parsing and serializing protobuf payloads allocates, counted by weft::alloc_counter
// (this binary replaces the process's allocator). The steady-state loop does what a call
// does — open a Workspace::Scope, parse the request, build the response, serialize it
// through a PayloadWriter into preallocated memory, close the Scope — and the counts are the
// claims of pb_codec.h and docs/design.md ("weft::msg_pb"):
//   - arena storage: zero for scalars, short strings, repeated scalars and nested messages;
//     one allocation per string/bytes field longer than the small-string buffer;
//   - reused storage: zero after the first call, long bytes included;
// and then through the real server: typed calls, a bad payload and a request refused for
// outgrowing the arena block, over loopback, with zero allocations in the whole process.
#include <weft/msg/pb_codec.h>
#include <weft/msg/pb_service.h>

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <weft/base/alloc_counter.h>

#include "msg_server_test.h"
#include "msg_wire.h"
#include "pb_server_test.h"
#include "test_service.weft.h"

namespace weft::msg::pb {
namespace {

using test::AddReply;
using test::AddRequest;
using test::EchoReply;
using test::EchoRequest;

constexpr int kRounds = 1000;

// Serializes into a fixed buffer in 64-byte pieces (as the server's pool buffers would).
class FixedWriter final : public PayloadWriter {
 public:
  std::span<std::byte> next() noexcept override {
    const std::size_t n = std::min<std::size_t>(64, sizeof buf_ - used_);
    last_ = std::span<std::byte>(buf_).subspan(used_, n);
    return last_;
  }
  void wrote(std::size_t n) noexcept override { used_ += n; }
  void clear() noexcept { used_ = 0; }
  std::size_t used_ = 0;

 private:
  std::byte buf_[4096] = {};
  std::span<std::byte> last_;
};

class PbAllocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!alloc::enabled()) {
      GTEST_SKIP() << "the counting allocator is not installed (sanitizer build or not glibc)";
    }
  }
};

// One call's work on the arena; returns false on any failure.
template <class Req, class Resp, class Fill>
bool arena_round(Workspace& ws, const std::string& wire, FixedWriter& w, Fill fill) {
  Workspace::Scope scope(ws);
  Result<Req*> rq = ws.parse<Req>(test::as_bytes(wire));
  if (!rq) {
    return false;
  }
  Resp* out = google::protobuf::Arena::CreateMessage<Resp>(&ws.arena());
  fill(**rq, *out);
  (void)out->ByteSizeLong();
  w.clear();
  return detail::write_message(out, w) && !ws.exceeded();
}

// Runs `round` kRounds times after a warm-up; returns the allocations counted.
template <class Round>
std::uint64_t count_rounds(Round round) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(round());
  }
  bool ok = true;
  const std::uint64_t before = alloc::count();
  for (int i = 0; i < kRounds; ++i) {
    ok = round() && ok;
  }
  const std::uint64_t n = alloc::count() - before;
  EXPECT_TRUE(ok);
  return n;
}

TEST_F(PbAllocTest, ArenaStorageOfScalarsShortStringsRepeatedAndNestedAllocatesNothing) {
  auto ws = Workspace::create({});
  ASSERT_TRUE(ws.ok());
  AddRequest rq;
  rq.set_a(1);
  rq.set_b(2);
  rq.set_tag("fifteen bytes!!");  // 15: libstdc++'s small-string buffer, exactly
  for (std::uint32_t i = 0; i < 32; ++i) {
    rq.add_extra(i * 7919);
  }
  rq.mutable_origin()->set_x(-1);
  const std::string wire = rq.SerializeAsString();
  FixedWriter w;
  const std::uint64_t n = count_rounds([&] {
    return arena_round<AddRequest, AddReply>(**ws, wire, w,
                                             [](const AddRequest& in, AddReply& out) {
                                               out.set_sum(in.a() + in.b());
                                               out.set_tag(in.tag());
                                               *out.mutable_origin() = in.origin();
                                             });
  });
  EXPECT_EQ(n, 0u) << "allocations in " << kRounds << " parse/serialize rounds";
  EXPECT_GT(w.used_, 0u);
}

TEST_F(PbAllocTest, ArenaStorageAllocatesOncePerLongBytesField) {
  // The measured cost protobuf 3.21 keeps on an arena: the characters of a long string live
  // in a std::string's own heap buffer. Request data and the reply's copy: two per round.
  auto ws = Workspace::create({});
  ASSERT_TRUE(ws.ok());
  EchoRequest rq;
  rq.set_data(std::string(100, 'x'));
  const std::string wire = rq.SerializeAsString();
  FixedWriter w;
  const std::uint64_t n = count_rounds([&] {
    return arena_round<EchoRequest, EchoReply>(
        **ws, wire, w, [](const EchoRequest& in, EchoReply& out) { out.set_data(in.data()); });
  });
  EXPECT_EQ(n, 2u * kRounds);
}

TEST_F(PbAllocTest, ReusedStorageAllocatesNothingAfterTheFirstCall) {
  // What MessageStorage::reused does per call: Clear() the method's response, parse into its
  // request (ParseFromArray clears it first), fill, serialize. Strings keep their capacity;
  // `optional` keeps the nested message alive across Clear().
  auto ws = Workspace::create({});
  ASSERT_TRUE(ws.ok());
  Messages<test::CalcRpc::Echo> echo;
  Messages<test::CalcRpc::Add> add;
  EchoRequest erq;
  erq.set_data(std::string(1000, 'x'));
  const std::string ewire = erq.SerializeAsString();
  AddRequest arq;
  arq.set_tag(std::string(40, 't'));
  arq.add_extra(5);
  arq.mutable_origin()->set_y(3);
  const std::string awire = arq.SerializeAsString();
  FixedWriter w;
  const std::uint64_t n = count_rounds([&] {
    Workspace::Scope scope(**ws);
    echo.response.Clear();
    add.response.Clear();
    if (!(*ws)->parse_into(echo.request, test::as_bytes(ewire)) ||
        !(*ws)->parse_into(add.request, test::as_bytes(awire))) {
      return false;
    }
    echo.response.set_data(echo.request.data());
    add.response.set_tag(add.request.tag());
    *add.response.mutable_origin() = add.request.origin();
    (void)echo.response.ByteSizeLong();
    (void)add.response.ByteSizeLong();
    w.clear();
    return detail::write_message(&echo.response, w) && detail::write_message(&add.response, w);
  });
  EXPECT_EQ(n, 0u) << "allocations in " << kRounds << " rounds";
}

// ---- through the server ----------------------------------------------------------------

class AllocCalc final : public test::CalcService {
 public:
  using CalcService::CalcService;
  void Add(const AddRequest& rq, Responder<AddReply>& r) noexcept override {
    AddReply& out = r.response();
    std::int64_t sum = rq.a() + rq.b();
    for (const std::uint32_t e : rq.extra()) {
      sum += e;
    }
    out.set_sum(sum);
    out.set_tag(rq.tag());
    *out.mutable_origin() = rq.origin();
    (void)r.reply();
  }
  void Echo(const EchoRequest&, Responder<EchoReply>& r) noexcept override { (void)r.reply(); }
};

using PbServerAllocTest = PbServerTest<AllocCalc>;

TEST_P(PbServerAllocTest, SteadyStateTypedCallsAndRefusalsAllocateNothing) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "the counting allocator is not installed (sanitizer build or not glibc)";
  }
  constexpr int kConns = 2;
  constexpr int kCalls = 16;  // typed Add calls per connection and round
  Options o;
  o.max_frame = 4096;
  o.max_inflight = 64;
  o.max_calls = 256;
  WorkspaceConfig wc;
  wc.arena_block = 2048;
  wc.spill = 64 * 1024;  // serves the refused request's blocks: no heap
  start(std::move(o), wc);

  std::vector<std::unique_ptr<test::WireClient>> conns;
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<test::WireClient>(addr_));
    ASSERT_TRUE(conns.back()->hello(4096, 64).has_value());
  }
  // One round per connection, pre-encoded: kCalls Adds (short tag, repeated, nested), one
  // payload that does not parse (id 100), one that outgrows the arena block (id 101).
  AddRequest rq;
  rq.set_a(1);
  rq.set_b(2);
  rq.set_tag("short");
  for (std::uint32_t i = 0; i < 8; ++i) {
    rq.add_extra(i * 1000);
  }
  rq.mutable_origin()->set_x(4);
  AddRequest big;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    big.add_extra(1);
  }
  std::vector<std::byte> round(64 * 1024);
  std::size_t used = 0;
  for (std::uint32_t id = 1; id <= kCalls; ++id) {
    Result<std::size_t> n =
        encode_request<test::CalcRpc::Add>(id, rq, std::span<std::byte>(round).subspan(used));
    ASSERT_TRUE(n.ok());
    used += *n;
  }
  const std::byte garbage[] = {std::byte{0x0a}, std::byte{0x64}, std::byte{0x01}};
  Result<std::size_t> bad = msg::encode(make_request(100, test::CalcRpc::Add::id, 0, garbage),
                                        std::span<std::byte>(round).subspan(used));
  ASSERT_TRUE(bad.ok());
  used += *bad;
  Result<std::size_t> huge =
      encode_request<test::CalcRpc::Add>(101, big, std::span<std::byte>(round).subspan(used));
  ASSERT_TRUE(huge.ok());
  used += *huge;
  round.resize(used);

  std::array<std::byte, 4096> buf{};
  auto run_round = [&]() -> bool {
    for (auto& c : conns) {
      if (!test::write_all(c->fd(), round.data(), round.size())) {
        return false;
      }
    }
    for (auto& c : conns) {
      for (int k = 0; k < kCalls + 2; ++k) {
        Frame f;
        if (!test::read_frame(c->fd(), buf, f)) {
          return false;
        }
        const bool ok = (f.type == FrameType::response && f.id >= 1 && f.id <= kCalls) ||
                        (f.type == FrameType::error && f.id == 100 &&
                         f.code == static_cast<std::uint16_t>(ProtocolError::bad_payload)) ||
                        (f.type == FrameType::error && f.id == 101 &&
                         f.code == static_cast<std::uint16_t>(ProtocolError::too_large));
        if (!ok) {
          ADD_FAILURE() << "unexpected frame type " << static_cast<int>(f.type) << " id " << f.id
                        << " code " << f.code;
          return false;
        }
      }
    }
    return true;
  };
  for (int r = 0; r < 20; ++r) {  // warm-up: pools touched, lazy state built
    ASSERT_TRUE(run_round());
  }
  const std::uint64_t before = alloc::count();
  constexpr int kRoundsMeasured = 200;
  for (int r = 0; r < kRoundsMeasured; ++r) {
    ASSERT_TRUE(run_round());
  }
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(after - before, 0u) << "allocations during " << kRoundsMeasured * kConns * (kCalls + 2)
                                << " calls";
  conns.clear();  // closed first: the runtime then stops without waiting out a drain
  const WorkspaceStats& st = stopped_stats();
  EXPECT_EQ(st.refused, 220u * kConns);
  EXPECT_EQ(st.heap_blocks, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, PbServerAllocTest,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::msg::pb

// What parsing and serializing protobuf payloads allocates, counted by weft::alloc_counter
// (this binary replaces the process's allocator). The steady-state loop does what a call
// does — open a Workspace::Scope, parse the request, build the response, serialize it
// through a PayloadWriter into preallocated memory, close the Scope — and the counts are the
// claims of pb_codec.h and docs/design.md ("weft::msg_pb"):
//   - arena storage: zero for scalars, short strings, repeated scalars and nested messages;
//     one allocation per string/bytes field longer than the small-string buffer;
//   - reused storage: zero after the first call, long bytes included.
#include <weft/msg/pb_codec.h>
#include <weft/msg/pb_service.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <weft/base/alloc_counter.h>

#include "msg_wire.h"
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

}  // namespace
}  // namespace weft::msg::pb

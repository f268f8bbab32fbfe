// Unit tests of detail::OutQueue and detail::SegmentPool without sockets: a BufferPool and
// a SegmentPool built by hand, sends completed by calling end_send with chosen byte counts.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <weft/platform/buffer_pool.h>
#include <weft/platform/detail/out_queue.h>
#include <weft/platform/error.h>

namespace weft::platform::detail {
namespace {

constexpr std::uint32_t kSize = 256;   // bytes per buffer
constexpr std::uint32_t kRecv = 4;     // receive buffers: ids 0..3
constexpr std::uint32_t kGeneral = 6;  // general buffers: ids 4..9
constexpr std::uint32_t kPerBlock = 4;
constexpr std::uint32_t kBlocks = 2;

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// What a send would put on the wire: the bytes of every iovec of the msghdr, in order.
std::string wire(const msghdr* m) {
  std::string out;
  for (std::size_t i = 0; i < m->msg_iovlen; ++i) {
    out.append(static_cast<const char*>(m->msg_iov[i].iov_base), m->msg_iov[i].iov_len);
  }
  return out;
}

class OutQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pool_.init(kRecv + kGeneral, kSize, kRecv).ok());
    ASSERT_TRUE(sp_.init(kBlocks, kPerBlock, /*max_pinned=*/2, &pool_, nullptr).ok());
  }

  // A general buffer filled with `fill`, owned by the test (refcount 1).
  BufId general(char fill) {
    const BufId id = pool_.acquire();
    EXPECT_NE(id, kNoBuf);
    std::memset(pool_.data(id), fill, kSize);
    return id;
  }
  BufId recv(char fill) {
    const BufId id = pool_.acquire_recv();
    EXPECT_NE(id, kNoBuf);
    std::memset(pool_.data(id), fill, kSize);
    return id;
  }
  Result<void> push(OutQueue& q, BufId id, std::size_t off, std::size_t len) {
    return q.push_ref(sp_, id, pool_.data(id) + off, len);
  }
  // Sends everything queued, in one completion.
  std::string drain(OutQueue& q) {
    std::string out;
    while (!q.empty()) {
      const msghdr* m = q.begin_send(sp_);
      out += wire(m);
      q.end_send(sp_, q.bytes());
    }
    return out;
  }

  BufferPool pool_;
  SegmentPool sp_;
};

TEST_F(OutQueueTest, ContiguousRefsOfOneBufferCoalesce) {
  const BufId g = general('a');
  OutQueue q;
  ASSERT_TRUE(push(q, g, 0, 10).ok());
  ASSERT_TRUE(push(q, g, 10, 20).ok());
  ASSERT_TRUE(push(q, g, 30, 5).ok());
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(q.bytes(), 35u);
  EXPECT_EQ(pool_.refcount(g), 2u);  // the test's and one for the single segment
  // A gap breaks the run: a second segment, with its own reference.
  ASSERT_TRUE(push(q, g, 40, 5).ok());
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(pool_.refcount(g), 3u);
  EXPECT_EQ(drain(q), std::string(40, 'a'));
  EXPECT_EQ(pool_.refcount(g), 1u);
  pool_.unref(g);
  EXPECT_EQ(pool_.free_general(), kGeneral);
}

TEST_F(OutQueueTest, AdjacentBytesOfDifferentBuffersDoNotCoalesce) {
  // Two buffers adjacent in the region: the end of one is the start of the next, but each
  // segment must hold a reference to its own buffer.
  const BufId g1 = general('x');
  const BufId g2 = general('y');
  const BufId lo = std::min(g1, g2);
  const BufId hi = std::max(g1, g2);
  ASSERT_EQ(hi, lo + 1);
  ASSERT_EQ(pool_.data(lo) + kSize, pool_.data(hi));
  OutQueue q;
  ASSERT_TRUE(push(q, lo, kSize - 8, 8).ok());
  ASSERT_TRUE(push(q, hi, 0, 8).ok());
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(pool_.refcount(lo), 2u);
  EXPECT_EQ(pool_.refcount(hi), 2u);
  const msghdr* m = q.begin_send(sp_);
  ASSERT_EQ(m->msg_iovlen, 2u);
  q.end_send(sp_, 8);  // only the first buffer's bytes left
  EXPECT_EQ(pool_.refcount(lo), 1u);
  EXPECT_EQ(pool_.refcount(hi), 2u);
  q.end_send(sp_, 0);  // (a zero-byte completion changes nothing)
  EXPECT_EQ(q.bytes(), 8u);
  EXPECT_EQ(drain(q), std::string(8, static_cast<char>(pool_.data(hi)[0])));
  EXPECT_EQ(pool_.refcount(hi), 1u);
  pool_.unref(g1);
  pool_.unref(g2);
}

TEST_F(OutQueueTest, NoCoalescingIntoASegmentInFlight) {
  const BufId g = general('s');
  OutQueue q;
  ASSERT_TRUE(push(q, g, 0, 10).ok());
  const msghdr* m = q.begin_send(sp_);
  ASSERT_EQ(m->msg_iovlen, 1u);
  EXPECT_TRUE(q.sending());
  // Contiguous, but the first segment is owned by the send in flight: its iovec must not
  // grow under the kernel.
  ASSERT_TRUE(push(q, g, 10, 10).ok());
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(m->msg_iov[0].iov_len, 10u);
  EXPECT_EQ(pool_.refcount(g), 3u);
  q.end_send(sp_, 10);
  EXPECT_FALSE(q.sending());
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(q.bytes(), 10u);
  EXPECT_EQ(pool_.refcount(g), 2u);
  // The rest is not in flight any more: contiguous bytes extend it again.
  ASSERT_TRUE(push(q, g, 20, 10).ok());
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(drain(q), std::string(20, 's'));
  EXPECT_EQ(pool_.refcount(g), 1u);
  pool_.unref(g);
}

TEST_F(OutQueueTest, CopyFillsTheTailOfTheLastOwnGeneralBuffer) {
  OutQueue q;
  const std::uint32_t free0 = pool_.free_general();
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("hello "), bytes_of("world")).ok());
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(pool_.free_general(), free0 - 1);
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("!!")).ok());
  EXPECT_EQ(q.segments(), 1u);  // appended into the same buffer
  EXPECT_EQ(pool_.free_general(), free0 - 1);
  // Exactly filling the rest of the buffer still needs no new one; one byte more does.
  const std::string fill(kSize - 13, 'f');
  ASSERT_TRUE(q.push_copy(sp_, bytes_of(fill)).ok());
  EXPECT_EQ(q.segments(), 1u);
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("Z")).ok());
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(pool_.free_general(), free0 - 2);
  // A copy larger than a buffer spans buffers.
  const std::string big(kSize + 10, 'b');
  ASSERT_TRUE(q.push_copy(sp_, bytes_of(big)).ok());
  EXPECT_EQ(q.segments(), 3u);  // kSize - 1 bytes into the tail of the second, 11 into a third
  EXPECT_EQ(q.bytes(), 13u + fill.size() + 1 + big.size());
  EXPECT_EQ(drain(q), "hello world!!" + fill + "Z" + big);
  EXPECT_EQ(pool_.free_general(), free0);
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
}

TEST_F(OutQueueTest, CopyDoesNotWriteIntoBuffersItDoesNotOwnAlone) {
  OutQueue q;
  // The last segment is a general buffer the caller still holds: appending there would
  // overwrite the caller's bytes after the segment.
  const BufId g = general('g');
  ASSERT_TRUE(push(q, g, 0, 4).ok());
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("c1")).ok());
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(static_cast<char>(pool_.data(g)[4]), 'g');
  // The last segment is a receive buffer: never a copy target.
  const BufId r = recv('r');
  ASSERT_TRUE(push(q, r, 0, 4).ok());
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("c2")).ok());
  EXPECT_EQ(q.segments(), 4u);
  EXPECT_EQ(static_cast<char>(pool_.data(r)[4]), 'r');
  // The last segment is in flight: the copy must not extend it.
  OutQueue q2;
  ASSERT_TRUE(q2.push_copy(sp_, bytes_of("abc")).ok());
  const msghdr* m = q2.begin_send(sp_);
  ASSERT_TRUE(q2.push_copy(sp_, bytes_of("def")).ok());
  EXPECT_EQ(q2.segments(), 2u);
  EXPECT_EQ(m->msg_iov[0].iov_len, 3u);
  q2.end_send(sp_, 3);
  EXPECT_EQ(drain(q2), "def");
  EXPECT_EQ(drain(q), "ggggc1rrrrc2");
  pool_.unref(g);
  pool_.unref(r);
  EXPECT_EQ(pool_.free_general(), kGeneral);
  EXPECT_EQ(pool_.free_recv(), kRecv);
}

TEST_F(OutQueueTest, QueueFullIsAllOrNothing) {
  static const char kStatic[] = "0123456789abcdef";
  OutQueue q;
  // Fill the block with non-contiguous static segments.
  for (std::uint32_t i = 0; i < kPerBlock; ++i) {
    ASSERT_TRUE(
        q.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kStatic) + 2 * i, 1).ok());
  }
  ASSERT_EQ(q.segments(), kPerBlock);
  const std::size_t bytes = q.bytes();
  const BufId g = general('g');
  auto r = push(q, g, 0, 8);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(platform_errc::queue_full));
  EXPECT_EQ(pool_.refcount(g), 1u);  // no reference taken
  const std::uint32_t free0 = pool_.free_general();
  auto c = q.push_copy(sp_, bytes_of("x"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(platform_errc::queue_full));
  EXPECT_EQ(pool_.free_general(), free0);  // no buffer taken
  EXPECT_EQ(q.segments(), kPerBlock);
  EXPECT_EQ(q.bytes(), bytes);
  EXPECT_FALSE(q.has_room(sp_));
  EXPECT_EQ(drain(q), "0246");
  EXPECT_TRUE(q.has_room(sp_));
  pool_.unref(g);
}

TEST_F(OutQueueTest, CopyNeedingMoreSegmentsThanLeftQueuesNothing) {
  OutQueue q;
  const BufId g = general('g');
  ASSERT_TRUE(push(q, g, 0, 1).ok());
  ASSERT_TRUE(push(q, g, 2, 1).ok());
  // Two segments left; a copy of 3 buffers' worth does not fit.
  const std::string big(3 * kSize, 'b');
  const std::uint32_t free0 = pool_.free_general();
  auto c = q.push_copy(sp_, bytes_of(big));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(platform_errc::queue_full));
  EXPECT_EQ(pool_.free_general(), free0);
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(q.bytes(), 2u);
  // Two buffers' worth does.
  ASSERT_TRUE(q.push_copy(sp_, bytes_of(big.substr(0, 2 * kSize))).ok());
  EXPECT_EQ(q.segments(), 4u);
  q.clear(sp_);
  EXPECT_EQ(pool_.refcount(g), 1u);
  pool_.unref(g);
  EXPECT_EQ(pool_.free_general(), kGeneral);
}

TEST_F(OutQueueTest, NoBuffersIsAllOrNothing) {
  OutQueue q;
  std::vector<BufId> held;
  // Leave one general buffer.
  while (pool_.free_general() > 1) {
    held.push_back(pool_.acquire());
  }
  // Two buffers' worth: nothing queued, the one free buffer is still free, and the block
  // borrowed for the attempt went back.
  const std::string two(kSize + 1, 't');
  auto c = q.push_copy(sp_, bytes_of(two));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(platform_errc::no_buffers));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(pool_.free_general(), 1u);
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
  // The head fits in the last buffer's tail but the body needs a buffer that is not there:
  // the tail is left as it was.
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("abc")).ok());
  ASSERT_EQ(pool_.free_general(), 0u);
  auto c2 = q.push_copy(sp_, bytes_of("head"), bytes_of(std::string(kSize, 'B')));
  ASSERT_FALSE(c2.ok());
  EXPECT_EQ(c2.error(), make_error_code(platform_errc::no_buffers));
  EXPECT_EQ(q.bytes(), 3u);
  EXPECT_EQ(q.segments(), 1u);
  // A copy that fits entirely in the tail needs no buffer at all.
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("de")).ok());
  EXPECT_EQ(drain(q), "abcde");
  for (BufId id : held) {
    pool_.unref(id);
  }
  EXPECT_EQ(pool_.free_general(), kGeneral);
}

TEST_F(OutQueueTest, PartialWritesKeepTheRestAndReleaseExactlyWhenSent) {
  static const char kStatic[] = "STATIC-BYTES";  // 12 bytes
  OutQueue q;
  const BufId g = general('g');
  ASSERT_TRUE(push(q, g, 0, 10).ok());
  ASSERT_TRUE(q.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kStatic), 12).ok());
  ASSERT_TRUE(q.push_copy(sp_, bytes_of(std::string(100, 'c'))).ok());
  const std::uint32_t free_after_copy = pool_.free_general();
  ASSERT_EQ(q.segments(), 3u);
  ASSERT_EQ(q.bytes(), 122u);

  const msghdr* m = q.begin_send(sp_);
  ASSERT_EQ(m->msg_iovlen, 3u);
  const BufId copied = pool_.id_of(m->msg_iov[2].iov_base);
  ASSERT_NE(copied, kNoBuf);
  EXPECT_EQ(pool_.refcount(copied), 1u);
  // 15 bytes: the ref segment (10) and 5 of the static one.
  q.end_send(sp_, 15);
  EXPECT_EQ(pool_.refcount(g), 1u);  // released exactly when fully sent
  EXPECT_EQ(q.segments(), 2u);
  EXPECT_EQ(q.bytes(), 107u);
  m = q.begin_send(sp_);
  ASSERT_EQ(m->msg_iovlen, 2u);
  EXPECT_EQ(m->msg_iov[0].iov_base, kStatic + 5);
  EXPECT_EQ(m->msg_iov[0].iov_len, 7u);
  // 7 + 99: the copy's last byte is still unsent, so its buffer stays out of the pool.
  q.end_send(sp_, 106);
  EXPECT_EQ(q.segments(), 1u);
  EXPECT_EQ(q.bytes(), 1u);
  EXPECT_EQ(pool_.refcount(copied), 1u);
  EXPECT_EQ(pool_.free_general(), free_after_copy);
  m = q.begin_send(sp_);
  EXPECT_EQ(wire(m), "c");
  q.end_send(sp_, 1);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(pool_.free_general(), free_after_copy + 1);
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
  pool_.unref(g);
}

TEST_F(OutQueueTest, BlocksAreBorrowedOnFirstPushAndReturnedLifo) {
  static const char kStatic[] = "abcdef";
  const auto* s = reinterpret_cast<const std::byte*>(kStatic);
  OutQueue q1, q2, q3;
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
  ASSERT_TRUE(q1.push_ref(sp_, kNoBuf, s, 1).ok());
  EXPECT_EQ(sp_.free_blocks(), kBlocks - 1);
  ASSERT_TRUE(q1.push_ref(sp_, kNoBuf, s + 1, 1).ok());  // (coalesced; same block)
  EXPECT_EQ(sp_.free_blocks(), kBlocks - 1);
  ASSERT_TRUE(q2.push_ref(sp_, kNoBuf, s + 3, 1).ok());
  EXPECT_EQ(sp_.free_blocks(), 0u);
  // Every block is lent: a third queue cannot queue anything.
  auto r = q3.push_ref(sp_, kNoBuf, s, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(platform_errc::queue_full));
  EXPECT_FALSE(q3.has_room(sp_));
  auto c = q3.push_copy(sp_, bytes_of("x"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(platform_errc::queue_full));
  EXPECT_EQ(pool_.free_general(), kGeneral);

  const msghdr* m1 = q1.begin_send(sp_);
  const msghdr* m2 = q2.begin_send(sp_);
  EXPECT_NE(m1, m2);
  q1.end_send(sp_, 1);  // partial: q1 keeps its block
  EXPECT_EQ(sp_.free_blocks(), 0u);
  EXPECT_EQ(drain(q1), "b");
  EXPECT_EQ(sp_.free_blocks(), 1u);
  q2.end_send(sp_, 1);  // q2 drains last: its block is on top of the stack
  EXPECT_EQ(sp_.free_blocks(), 2u);
  ASSERT_TRUE(q3.push_ref(sp_, kNoBuf, s, 1).ok());
  EXPECT_EQ(q3.begin_send(sp_), m2);  // LIFO: the block returned last is lent first
  q3.end_send(sp_, 1);
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
}

TEST_F(OutQueueTest, ReceivePinCapCopiesSmallRunsAndRefusesLargeOnes) {
  ASSERT_EQ(sp_.max_pinned(), 2u);
  const BufId r0 = recv('0');
  const BufId r1 = recv('1');
  const BufId r2 = recv('2');
  OutQueue q;
  ASSERT_TRUE(push(q, r0, 0, 8).ok());
  ASSERT_TRUE(push(q, r1, 0, 8).ok());
  EXPECT_EQ(q.pinned(), 2u);
  EXPECT_EQ(sp_.pinned_total(), 2u);
  EXPECT_EQ(pool_.refcount(r0), 2u);
  // Extending a run of an already pinned buffer pins nothing new.
  ASSERT_TRUE(push(q, r1, 8, 8).ok());
  EXPECT_EQ(q.pinned(), 2u);
  EXPECT_EQ(q.segments(), 2u);
  // The third receive buffer: a small run is copied, the buffer is not referenced.
  const std::uint32_t free0 = pool_.free_general();
  ASSERT_TRUE(push(q, r2, 0, 8).ok());
  EXPECT_EQ(sp_.pin_copies(), 1u);
  EXPECT_EQ(q.pinned(), 2u);
  EXPECT_EQ(sp_.pinned_total(), 2u);
  EXPECT_EQ(pool_.refcount(r2), 1u);
  EXPECT_EQ(pool_.free_general(), free0 - 1);
  // Exactly a quarter of a buffer is still copied; one byte more is refused.
  ASSERT_TRUE(push(q, r2, 8, kSize / 4).ok());
  EXPECT_EQ(sp_.pin_copies(), 2u);
  const std::size_t bytes = q.bytes();
  const std::uint32_t segs = q.segments();
  auto big = push(q, r2, 0, kSize / 4 + 1);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error(), make_error_code(platform_errc::queue_full));
  EXPECT_EQ(q.bytes(), bytes);
  EXPECT_EQ(q.segments(), segs);
  EXPECT_EQ(pool_.refcount(r2), 1u);
  EXPECT_EQ(sp_.pin_copies(), 2u);
  // The copies hold the bytes as they were when queued.
  std::memset(pool_.data(r2), 'X', kSize);
  EXPECT_EQ(drain(q), std::string(8, '0') + std::string(16, '1') + std::string(8 + kSize / 4, '2'));
  EXPECT_EQ(q.pinned(), 0u);
  EXPECT_EQ(sp_.pinned_total(), 0u);
  EXPECT_EQ(pool_.refcount(r0), 1u);
  EXPECT_EQ(pool_.refcount(r1), 1u);
  // Sent, the pins are gone: the third buffer can be pinned now.
  ASSERT_TRUE(push(q, r2, 0, kSize).ok());
  EXPECT_EQ(q.pinned(), 1u);
  EXPECT_EQ(pool_.refcount(r2), 2u);
  q.clear(sp_);
  pool_.unref(r0);
  pool_.unref(r1);
  pool_.unref(r2);
  EXPECT_EQ(pool_.free_recv(), kRecv);
  EXPECT_EQ(pool_.free_general(), kGeneral);
}

TEST_F(OutQueueTest, PinsCountReceiveBuffersNotSegments) {
  // Answers to three pipelined requests of one receive: a copied header, then a body by
  // reference, each. The queue pins one receive buffer, however many segments point into it.
  const BufId r0 = recv('0');
  const BufId r1 = recv('1');
  OutQueue q;
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("h1")).ok());
  ASSERT_TRUE(push(q, r0, 0, 8).ok());
  ASSERT_TRUE(push(q, r0, 16, 8).ok());  // not contiguous: a second segment of r0
  EXPECT_EQ(q.segments(), 3u);
  EXPECT_EQ(q.pinned(), 1u);
  EXPECT_EQ(sp_.pinned_total(), 1u);
  // A second receive buffer is within the cap of 2: a long run of it is pinned, not refused.
  ASSERT_TRUE(push(q, r1, 0, kSize / 2).ok());
  EXPECT_EQ(q.pinned(), 2u);
  EXPECT_EQ(sp_.pin_copies(), 0u);
  // The pin on r0 ends with its last segment, not its first.
  (void)q.begin_send(sp_);
  q.end_send(sp_, 2 + 8);
  EXPECT_EQ(q.pinned(), 2u);
  EXPECT_EQ(sp_.pinned_total(), 2u);
  (void)q.begin_send(sp_);
  q.end_send(sp_, 8);
  EXPECT_EQ(q.pinned(), 1u);
  EXPECT_EQ(sp_.pinned_total(), 1u);
  EXPECT_EQ(pool_.refcount(r0), 1u);
  q.clear(sp_);
  EXPECT_EQ(sp_.pinned_total(), 0u);
  pool_.unref(r0);
  pool_.unref(r1);
}

TEST_F(OutQueueTest, PinsAreCountedPerQueue) {
  const BufId r0 = recv('0');
  const BufId r1 = recv('1');
  const BufId r2 = recv('2');
  OutQueue a, b;
  ASSERT_TRUE(push(a, r0, 0, 8).ok());
  ASSERT_TRUE(push(a, r1, 0, 8).ok());
  // Another queue has its own share: it pins r2 (and r0 again) without copying.
  ASSERT_TRUE(push(b, r2, 0, 8).ok());
  ASSERT_TRUE(push(b, r0, 8, 8).ok());
  EXPECT_EQ(b.pinned(), 2u);
  EXPECT_EQ(sp_.pin_copies(), 0u);
  EXPECT_EQ(sp_.pinned_total(), 4u);
  EXPECT_EQ(pool_.refcount(r0), 3u);
  a.clear(sp_);
  b.clear(sp_);
  EXPECT_EQ(sp_.pinned_total(), 0u);
  EXPECT_EQ(pool_.refcount(r0), 1u);
  pool_.unref(r0);
  pool_.unref(r1);
  pool_.unref(r2);
}

TEST_F(OutQueueTest, ClearReleasesEverything) {
  static const char kStatic[] = "static";
  OutQueue q;
  const BufId g = general('g');
  const BufId r = recv('r');
  ASSERT_TRUE(push(q, g, 0, 16).ok());
  ASSERT_TRUE(push(q, r, 0, 16).ok());
  ASSERT_TRUE(q.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kStatic), 6).ok());
  ASSERT_TRUE(q.push_copy(sp_, bytes_of(std::string(kSize, 'c'))).ok());
  // A send that completed partially, then the connection died.
  (void)q.begin_send(sp_);
  q.end_send(sp_, 4);
  EXPECT_GT(pool_.refcount(g), 1u);
  EXPECT_EQ(sp_.pinned_total(), 1u);
  q.clear(sp_);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.pinned(), 0u);
  EXPECT_EQ(sp_.pinned_total(), 0u);
  EXPECT_EQ(pool_.refcount(g), 1u);
  EXPECT_EQ(pool_.refcount(r), 1u);
  EXPECT_EQ(pool_.free_general(), kGeneral - 1);  // only the test's own
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
  // The queue is usable again.
  ASSERT_TRUE(q.push_copy(sp_, bytes_of("again")).ok());
  EXPECT_EQ(drain(q), "again");
  pool_.unref(g);
  pool_.unref(r);
  EXPECT_EQ(pool_.free_general(), kGeneral);
  EXPECT_EQ(pool_.free_recv(), kRecv);
}

TEST_F(OutQueueTest, StaticBytesNeedNoReference) {
  // No pool buffer is involved: kNoBuf segments are never counted, so a queue of static
  // bytes sends and drains with every buffer free (a ref/unref here would trip the pool's
  // double-free check or corrupt refcount 0 of buffer 0xffffffff).
  static const char kA[] = "HTTP/1.1 200 OK\r\n";
  static const char kB[] = "\r\n";
  OutQueue q;
  ASSERT_TRUE(q.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kA), 17).ok());
  ASSERT_TRUE(q.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kB), 2).ok());
  EXPECT_EQ(pool_.free_general(), kGeneral);
  EXPECT_EQ(pool_.free_recv(), kRecv);
  for (BufId id = 0; id < kRecv + kGeneral; ++id) {
    EXPECT_EQ(pool_.refcount(id), 0u);
  }
  EXPECT_EQ(q.pinned(), 0u);
  // A zero-length push is a no-op that borrows nothing.
  OutQueue empty;
  ASSERT_TRUE(empty.push_ref(sp_, kNoBuf, reinterpret_cast<const std::byte*>(kA), 0).ok());
  ASSERT_TRUE(empty.push_copy(sp_, {}).ok());
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(sp_.free_blocks(), kBlocks - 1);
  EXPECT_EQ(drain(q), "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(sp_.free_blocks(), kBlocks);
}

TEST(SegmentPoolTest, InitRejectsBadArguments) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(4, 256, 2).ok());
  const auto invalid = make_error_code(platform_errc::invalid_argument);
  {
    SegmentPool sp;
    EXPECT_EQ(sp.init(0, 4, 1, &pool, nullptr).error(), invalid);
  }
  {
    SegmentPool sp;
    EXPECT_EQ(sp.init(1, 1, 1, &pool, nullptr).error(), invalid);
  }
  {
    SegmentPool sp;
    EXPECT_EQ(sp.init(1, kIovMax + 1, 1, &pool, nullptr).error(), invalid);
  }
  {
    SegmentPool sp;
    EXPECT_EQ(sp.init(1, 4, 0, &pool, nullptr).error(), invalid);
  }
  {
    SegmentPool sp;
    EXPECT_EQ(sp.init(1, 4, 1, nullptr, nullptr).error(), invalid);
  }
  SegmentPool sp;
  ASSERT_TRUE(sp.init(3, 8, 1, &pool, nullptr).ok());
  EXPECT_EQ(sp.blocks(), 3u);
  EXPECT_EQ(sp.free_blocks(), 3u);
  EXPECT_EQ(sp.per_block(), 8u);
}

}  // namespace
}  // namespace weft::platform::detail

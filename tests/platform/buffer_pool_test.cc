// BufferPool and BufRef: init limits, both partitions, exhaustion (kNoBuf, never growth),
// reference counting and sharing, the receive recycler, id_of, and the debug double-free
// check.
#include <weft/platform/buffer_pool.h>
#include <weft/platform/error.h>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace weft::platform {
namespace {

TEST(BufferPool, InitRejectsBadArguments) {
  const struct {
    std::uint32_t count, size, recv;
  } bad[] = {
      {0, 256, 0},         // no buffers
      {1u << 24, 256, 0},  // ids must fit 24 bits
      {4, 256, 5},         // more receive buffers than buffers
      {4, 128, 0},         // too small
      {4, 300, 0},         // not a multiple of 64
  };
  for (const auto& b : bad) {
    BufferPool pool;
    EXPECT_EQ(pool.init(b.count, b.size, b.recv).error(), platform_errc::invalid_argument)
        << b.count << " " << b.size << " " << b.recv;
    EXPECT_EQ(pool.count(), 0u);
  }
  BufferPool pool;
  ASSERT_TRUE(pool.init(4, 256, 2).ok());
  EXPECT_EQ(pool.init(4, 256, 2).error(), platform_errc::invalid_argument) << "init twice";
}

TEST(BufferPool, HugeRegionFailsCleanly) {
  // 2^24 - 1 buffers of ~4 GiB: far beyond any address space. Must be an error (ENOMEM,
  // or invalid_argument where size_t cannot even hold the product), never a short mapping.
  BufferPool pool;
  const Result<void> r = pool.init((1u << 24) - 1, 0xffffffc0u, 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(pool.region(), nullptr);
}

TEST(BufferPool, RegionLargerThanSizeTIsRefused) {
  // 65537 buffers of 64 KiB = 4 GiB + 64 KiB: wraps a 32-bit size_t (armhf), which once
  // produced a 64 KiB mapping with buffer 65536 aliasing buffer 0.
  BufferPool pool;
  const Result<void> r = pool.init(65537, 65536, 0);
  if constexpr (sizeof(std::size_t) == 4) {
    EXPECT_EQ(r.error(), std::errc::not_enough_memory);
  } else if (r.ok()) {  // 64-bit: a lazily backed 4 GiB mapping, or ENOMEM without overcommit
    EXPECT_EQ(pool.data(65536), pool.region() + std::size_t{65536} * 65536);
  }
}

TEST(BufferPool, GeneralPartitionExhaustsAndRefills) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(8, 512, 3).ok());
  EXPECT_EQ(pool.free_general(), 5u);
  EXPECT_EQ(pool.free_recv(), 3u);
  std::vector<BufId> ids;
  for (int i = 0; i < 5; ++i) {
    const BufId id = pool.acquire();
    ASSERT_NE(id, kNoBuf);
    EXPECT_FALSE(pool.is_recv(id));
    EXPECT_EQ(pool.refcount(id), 1u);
    ids.push_back(id);
  }
  EXPECT_EQ(ids, (std::vector<BufId>{3, 4, 5, 6, 7})) << "low ids first";
  EXPECT_EQ(pool.acquire(), kNoBuf) << "exhausted: no growth";
  EXPECT_EQ(pool.free_general(), 0u);
  EXPECT_EQ(pool.free_recv(), 3u) << "the general partition never takes receive buffers";
  pool.unref(ids[2]);
  EXPECT_EQ(pool.free_general(), 1u);
  EXPECT_EQ(pool.acquire(), ids[2]);
}

TEST(BufferPool, BuffersAreDisjointAndWritable) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(16, 256, 8).ok());
  for (BufId id = 0; id < pool.count(); ++id) {
    std::span<std::byte> s = pool.span(id);
    ASSERT_EQ(s.size(), 256u);
    EXPECT_EQ(s.data(), pool.region() + id * 256u);
    std::memset(s.data(), static_cast<int>(id), s.size());
  }
  for (BufId id = 0; id < pool.count(); ++id) {
    EXPECT_EQ(pool.data(id)[0], std::byte(id));
    EXPECT_EQ(pool.data(id)[255], std::byte(id));
    // Every buffer is 64-byte aligned (cache lines, O_DIRECT-style users).
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pool.data(id)) % 64, 0u);
  }
}

TEST(BufferPool, IdOf) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(4, 256, 0).ok());
  EXPECT_EQ(pool.id_of(pool.data(0)), 0u);
  EXPECT_EQ(pool.id_of(pool.data(2) + 255), 2u);
  EXPECT_EQ(pool.id_of(pool.data(3) + 256), kNoBuf) << "one past the last buffer";
  EXPECT_EQ(pool.id_of(pool.region() - 1), kNoBuf);
  int local = 0;
  EXPECT_EQ(pool.id_of(&local), kNoBuf);
  BufferPool empty;
  EXPECT_EQ(empty.id_of(&local), kNoBuf);
}

TEST(BufferPool, ReceivePartitionEpollStyle) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(6, 256, 2).ok());
  const BufId a = pool.acquire_recv();
  const BufId b = pool.acquire_recv();
  EXPECT_TRUE(pool.is_recv(a));
  EXPECT_TRUE(pool.is_recv(b));
  EXPECT_NE(a, b);
  EXPECT_EQ(pool.acquire_recv(), kNoBuf);
  EXPECT_EQ(pool.free_general(), 4u);
  pool.unref(a);
  EXPECT_EQ(pool.free_recv(), 1u);
  EXPECT_EQ(pool.acquire_recv(), a);
}

TEST(BufferPool, RefcountSharing) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(2, 256, 0).ok());
  const BufId id = pool.acquire();
  pool.ref(id);
  pool.ref(id);
  EXPECT_EQ(pool.refcount(id), 3u);
  pool.unref(id);
  pool.unref(id);
  EXPECT_EQ(pool.free_general(), 1u) << "still referenced";
  pool.unref(id);
  EXPECT_EQ(pool.free_general(), 2u);
  EXPECT_EQ(pool.refcount(id), 0u);
}

struct Recycled {
  std::vector<BufId> ids;
  static void fn(void* ctx, BufId id) { static_cast<Recycled*>(ctx)->ids.push_back(id); }
};

TEST(BufferPool, ReceiveRecyclerUringStyle) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(8, 256, 4).ok());
  Recycled rec;
  pool.set_recv_recycler(&Recycled::fn, &rec);
  pool.adopt_recv(2);  // the kernel picked buffer 2 from the ring
  pool.adopt_recv(0);
  EXPECT_EQ(pool.free_recv(), 2u);
  EXPECT_EQ(pool.refcount(2), 1u);
  pool.ref(2);
  pool.unref(2);
  EXPECT_TRUE(rec.ids.empty());
  pool.unref(2);
  pool.unref(0);
  EXPECT_EQ(rec.ids, (std::vector<BufId>{2, 0}));
  EXPECT_EQ(pool.free_recv(), 4u);
  // General buffers never go to the recycler.
  const BufId g = pool.acquire();
  pool.unref(g);
  EXPECT_EQ(rec.ids.size(), 2u);
}

TEST(BufRef, OwnsOneReference) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(2, 256, 0).ok());
  {
    BufRef a(&pool, pool.acquire());
    ASSERT_TRUE(a.valid());
    EXPECT_EQ(a.data(), pool.data(a.id()));
    EXPECT_EQ(a.pool(), &pool);
    BufRef b = a.share();
    EXPECT_EQ(b.id(), a.id());
    EXPECT_EQ(pool.refcount(a.id()), 2u);
    BufRef c(std::move(b));
    EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(pool.refcount(a.id()), 2u);
    c.reset();
    EXPECT_EQ(pool.refcount(a.id()), 1u);
    c.reset();  // idempotent
    EXPECT_EQ(pool.refcount(a.id()), 1u);
  }
  EXPECT_EQ(pool.free_general(), 2u) << "destructor dropped the last reference";
}

TEST(BufRef, MoveAssignReleasesTheOldBuffer) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(2, 256, 0).ok());
  BufRef a(&pool, pool.acquire());
  BufRef b(&pool, pool.acquire());
  const BufId bid = b.id();
  a = std::move(b);
  EXPECT_EQ(a.id(), bid);
  EXPECT_EQ(pool.free_general(), 1u);
  BufRef& self = a;
  a = std::move(self);  // self-move keeps the reference
  EXPECT_EQ(a.id(), bid);
  EXPECT_EQ(pool.refcount(bid), 1u);
  const BufId released = a.release();
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(pool.refcount(released), 1u);
  pool.unref(released);
  EXPECT_EQ(pool.free_general(), 2u);
  BufRef empty;
  EXPECT_FALSE(empty.share().valid());
}

#if !defined(NDEBUG) || defined(WEFT_SANITIZED)
TEST(BufferPoolDeathTest, DoubleFreeIsCaughtInDebugBuilds) {
  // Default "fast" style (fork, no re-exec), which also works under qemu-user.
  BufferPool pool;
  ASSERT_TRUE(pool.init(2, 256, 0).ok());
  const BufId id = pool.acquire();
  pool.unref(id);
  EXPECT_DEATH(pool.unref(id), "assert");
}
#endif

TEST(BufferPool, ChurnKeepsCountsConsistent) {
  BufferPool pool;
  ASSERT_TRUE(pool.init(64, 256, 16).ok());
  std::vector<BufId> held;
  std::set<BufId> live;
  unsigned x = 1;
  for (int i = 0; i < 100000; ++i) {
    x = x * 1103515245u + 12345u;
    if ((x >> 16) % 3 != 0 && held.size() < 48) {
      const BufId id = pool.acquire();
      if (id == kNoBuf) {
        EXPECT_EQ(live.size(), 48u);
        continue;
      }
      EXPECT_TRUE(live.insert(id).second) << "handed out twice: " << id;
      held.push_back(id);
    } else if (!held.empty()) {
      const std::size_t k = (x >> 8) % held.size();
      live.erase(held[k]);
      pool.unref(held[k]);
      held[k] = held.back();
      held.pop_back();
    }
    ASSERT_EQ(pool.free_general() + held.size(), 48u);
  }
}

}  // namespace
}  // namespace weft::platform

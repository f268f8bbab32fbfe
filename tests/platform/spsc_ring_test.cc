// SpscRing: capacity and wrap-around on one thread, then real producer/consumer threads
// (1M items, order verified; meant to run under TSan too), batched pops, and size() seen
// from a third thread.
#include <weft/platform/spsc_ring.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace weft::platform {
namespace {

TEST(SpscRing, FillsToCapacityThenRefuses) {
  SpscRing<int, 8> ring;
  EXPECT_TRUE(ring.empty());
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(ring.try_push(i));
  }
  EXPECT_FALSE(ring.try_push(99)) << "full";
  EXPECT_EQ(ring.size(), 8u);
  int v = -1;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(ring.try_pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(ring.try_pop(v)) << "empty";
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRing, WrapsAroundManyTimes) {
  SpscRing<std::uint64_t, 4> ring;
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  for (int round = 0; round < 10000; ++round) {
    const int pushes = round % 5;
    for (int i = 0; i < pushes; ++i) {
      if (ring.try_push(next_in)) {
        ++next_in;
      }
    }
    const int pops = (round * 7) % 5;
    for (int i = 0; i < pops; ++i) {
      std::uint64_t v = 0;
      if (ring.try_pop(v)) {
        ASSERT_EQ(v, next_out++);
      }
    }
    ASSERT_EQ(ring.size(), next_in - next_out);
    ASSERT_LE(ring.size(), 4u);
  }
}

TEST(SpscRing, PopBatch) {
  SpscRing<int, 16> ring;
  int out[16] = {};
  EXPECT_EQ(ring.pop_batch(out, 16), 0u);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ring.try_push(i));
  }
  EXPECT_EQ(ring.pop_batch(out, 4), 4u);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[3], 3);
  EXPECT_EQ(ring.pop_batch(out, 16), 6u);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(out[5], 9);
  EXPECT_EQ(ring.pop_batch(out, 0), 0u);
  // Wrapped batch: the slots run past the end of the array and back.
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(ring.try_push(100 + i));
  }
  EXPECT_EQ(ring.pop_batch(out, 16), 16u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[i], 100 + i);
  }
}

struct Item {
  std::uint64_t seq;
  std::uint64_t check;  // derived from seq: catches torn or stale slot reads
};

TEST(SpscRing, TwoThreadsMillionItemsInOrder) {
  constexpr std::uint64_t kItems = 1'000'000;
  static SpscRing<Item, 128> ring;  // static: 4 KiB of slots, cache-line aligned
  std::thread producer([] {
    for (std::uint64_t i = 0; i < kItems;) {
      if (ring.try_push(Item{i, ~i * 0x9e3779b97f4a7c15ull})) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::uint64_t expect = 0;
  bool ok = true;
  while (expect < kItems && ok) {
    Item it{};
    if (ring.try_pop(it)) {
      ok = it.seq == expect && it.check == ~expect * 0x9e3779b97f4a7c15ull;
      ++expect;
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  EXPECT_TRUE(ok) << "out of order or torn item at " << expect - 1;
  EXPECT_EQ(expect, kItems);
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRing, TwoThreadsBatchedConsumer) {
  constexpr std::uint64_t kItems = 1'000'000;
  static SpscRing<std::uint64_t, 64> ring;
  std::thread producer([] {
    for (std::uint64_t i = 0; i < kItems;) {
      if (ring.try_push(i)) {
        ++i;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::uint64_t expect = 0;
  std::uint64_t batch[16];
  bool ok = true;
  while (expect < kItems && ok) {
    const std::size_t n = ring.pop_batch(batch, 16);
    if (n == 0) {
      std::this_thread::yield();
    }
    for (std::size_t i = 0; i < n; ++i) {
      ok = ok && batch[i] == expect;
      ++expect;
    }
  }
  producer.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(expect, kItems);
}

TEST(SpscRing, SizeSeenFromAThirdThreadStaysInRange) {
  // size() is documented as approximate under concurrency; it must still be a count between
  // 0 and N, never an unsigned wrap-around.
  constexpr std::uint64_t kItems = 1'000'000;
  static SpscRing<std::uint64_t, 16> ring;
  std::atomic<bool> done{false};
  std::atomic<std::size_t> worst{0};
  std::thread observer([&] {
    while (!done.load(std::memory_order_relaxed)) {
      const std::size_t s = ring.size();
      if (s > worst.load(std::memory_order_relaxed)) {
        worst.store(s, std::memory_order_relaxed);
      }
    }
  });
  std::thread producer([] {
    for (std::uint64_t i = 0; i < kItems;) {
      if (ring.try_push(i)) {
        ++i;
      }
    }
  });
  std::uint64_t got = 0;
  while (got < kItems) {
    std::uint64_t v = 0;
    if (ring.try_pop(v)) {
      ++got;
    }
  }
  producer.join();
  done.store(true);
  observer.join();
  EXPECT_LE(worst.load(), 16u);
}

}  // namespace
}  // namespace weft::platform

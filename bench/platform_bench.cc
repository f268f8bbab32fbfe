// Micro-benchmarks for weft::platform containers.
//
//   BM_BufferPoolAcquireUnref     one acquire + unref (the per-send buffer cost)
//   BM_BufferPoolShare            ref + unref of a held buffer (one event queued on N conns)
//   BM_TimerWheelScheduleCancel   schedule at a random distance, then cancel (the common
//                                 fate of idle/read timeouts: re-armed long before expiry)
//   BM_TimerWheelScheduleExpire   steady state: each tick arms one timer and fires ~one
//   BM_SpscSameThread             push + pop on one thread (no contention: the floor)
//   BM_SpscTwoThreads             producer here, consumer on another thread
//
// Run: ./weft_platform_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include <weft/platform/buffer_pool.h>
#include <weft/platform/spsc_ring.h>
#include <weft/platform/timer_wheel.h>

namespace {

using weft::platform::BufferPool;
using weft::platform::BufId;
using weft::platform::kNoBuf;
using weft::platform::SpscRing;
using weft::platform::TimerNode;
using weft::platform::TimerWheel;

void BM_BufferPoolAcquireUnref(benchmark::State& state) {
  BufferPool pool;
  if (!pool.init(1024, 4096, 256)) {
    std::abort();
  }
  for (auto _ : state) {
    const BufId id = pool.acquire();
    benchmark::DoNotOptimize(id);
    pool.unref(id);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_BufferPoolAcquireUnref);

void BM_BufferPoolShare(benchmark::State& state) {
  BufferPool pool;
  if (!pool.init(64, 4096, 0)) {
    std::abort();
  }
  const BufId id = pool.acquire();
  for (auto _ : state) {
    pool.ref(id);
    pool.unref(id);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_BufferPoolShare);

void noop(TimerNode*) {}

void BM_TimerWheelScheduleCancel(benchmark::State& state) {
  TimerWheel wheel(0);
  std::vector<TimerNode> nodes(1024);
  std::vector<std::uint64_t> delays(1024);
  std::mt19937 rng(1);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].fn = &noop;
    delays[i] = 1 + rng() % 60'000;  // up to a minute at 1 ms ticks
  }
  std::size_t i = 0;
  for (auto _ : state) {
    TimerNode& n = nodes[i & 1023];
    wheel.schedule(n, delays[i & 1023]);
    wheel.cancel(n);
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_TimerWheelScheduleCancel);

struct Expiring {
  static inline std::size_t fired = 0;
  static void fn(TimerNode*) { ++fired; }
};

void BM_TimerWheelScheduleExpire(benchmark::State& state) {
  // 4096 nodes with delays 1..8191 ticks: a steady ~4096 timers pending across levels 0-2,
  // so expiries include cascades, as with real idle timeouts.
  TimerWheel wheel(0);
  std::vector<TimerNode> nodes(4096);
  std::vector<std::uint64_t> delays(4096);
  std::mt19937 rng(2);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].fn = &Expiring::fn;
    delays[i] = 1 + rng() % 8191;
  }
  Expiring::fired = 0;
  std::uint64_t now = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    TimerNode& n = nodes[i & 4095];
    if (!n.scheduled()) {
      wheel.schedule(n, now + delays[i & 4095]);
    }
    wheel.advance(++now);
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["fired/iter"] =
      static_cast<double>(Expiring::fired) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TimerWheelScheduleExpire);

void BM_SpscSameThread(benchmark::State& state) {
  static SpscRing<std::uint64_t, 1024> ring;
  std::uint64_t v = 0;
  for (auto _ : state) {
    if (!ring.try_push(v) || !ring.try_pop(v)) {
      std::abort();
    }
    ++v;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SpscSameThread);

void BM_SpscTwoThreads(benchmark::State& state) {
  static SpscRing<std::uint64_t, 1024> ring;
  const auto total = static_cast<std::uint64_t>(state.max_iterations);
  std::thread consumer([total] {
    std::uint64_t got = 0;
    std::uint64_t batch[64];
    int idle = 0;
    while (got < total) {
      const std::size_t n = ring.pop_batch(batch, 64);
      got += n;
      // Spin briefly, then yield: on an oversubscribed machine a pure spin can starve
      // the producer and measure the scheduler instead of the ring.
      idle = n != 0 ? 0 : idle + 1;
      if (idle > 256) {
        std::this_thread::yield();
        idle = 0;
      }
    }
    benchmark::DoNotOptimize(batch[0]);
  });
  std::uint64_t v = 0;
  for (auto _ : state) {
    for (int spins = 0; !ring.try_push(v); ++spins) {
      if (spins > 256) {
        std::this_thread::yield();
        spins = 0;
      }
    }
    ++v;
  }
  consumer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SpscTwoThreads)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

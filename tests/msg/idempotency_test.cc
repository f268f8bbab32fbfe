// weft::msg::IdempotencyTable (weft/msg/idempotency.h): the fresh / in_progress / done flow,
// scopes, LRU eviction, in-progress entries pinned, TTL, oversize responses, abandon, a
// randomized run against a std::map model, and no allocation after init().
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include <weft/base/alloc_counter.h>
#include <weft/msg/error.h>
#include <weft/msg/idempotency.h>

namespace {

using weft::msg::IdemComplete;
using weft::msg::IdempotencyTable;
using weft::msg::IdemState;
using weft::msg::ProtocolError;

constexpr std::uint16_t kTooLarge = static_cast<std::uint16_t>(ProtocolError::too_large);

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) {
    out.push_back(static_cast<std::byte>(b));
  }
  return out;
}

std::vector<std::byte> copy(std::span<const std::byte> s) {
  return {s.begin(), s.end()};
}

IdempotencyTable make(std::uint32_t cap, std::uint32_t max_resp, std::uint64_t ttl) {
  IdempotencyTable t;
  EXPECT_TRUE(t.init(cap, max_resp, ttl).ok());
  return t;
}

TEST(Idempotency, InitRejectsBadArguments) {
  IdempotencyTable t;
  EXPECT_EQ(t.init(0, 16, 100).error(), std::errc::invalid_argument);
  IdempotencyTable u;
  EXPECT_EQ(u.init(4, 16, 0).error(), std::errc::invalid_argument);
}

TEST(Idempotency, FreshInProgressDoneAndIdenticalBytes) {
  auto t = make(4, 64, 1000);
  EXPECT_EQ(t.begin(0, 42, 0).state, IdemState::fresh);
  EXPECT_EQ(t.begin(0, 42, 1).state, IdemState::in_progress);
  const auto payload = bytes({1, 2, 3, 0, 255});
  EXPECT_EQ(t.complete(0, 42, IdempotencyTable::kResponse, payload, 2), IdemComplete::stored);
  for (int retry = 0; retry < 3; ++retry) {
    const auto r = t.begin(0, 42, 3);
    ASSERT_EQ(r.state, IdemState::done);
    EXPECT_EQ(r.code, IdempotencyTable::kResponse);
    EXPECT_EQ(copy(r.response), payload);
  }
  EXPECT_EQ(t.stats().misses, 1u);
  EXPECT_EQ(t.stats().hits, 3u);
  EXPECT_EQ(t.stats().in_progress_rejections, 1u);
  // A second complete() of a done entry stores nothing.
  EXPECT_EQ(t.complete(0, 42, 0, bytes({9}), 4), IdemComplete::not_found);
  EXPECT_EQ(copy(t.begin(0, 42, 5).response), payload);
}

TEST(Idempotency, StoredErrorCode) {
  auto t = make(2, 8, 1000);
  ASSERT_EQ(t.begin(1, 1, 0).state, IdemState::fresh);
  const auto code = static_cast<std::uint16_t>(ProtocolError::unknown_method);
  EXPECT_EQ(t.complete(1, 1, code, bytes({1, 2}), 0), IdemComplete::stored);
  const auto r = t.begin(1, 1, 1);
  EXPECT_EQ(r.state, IdemState::done);
  EXPECT_EQ(r.code, code);
  EXPECT_TRUE(r.response.empty());
}

TEST(Idempotency, ScopesAreSeparate) {
  auto t = make(4, 8, 1000);
  ASSERT_EQ(t.begin(1, 7, 0).state, IdemState::fresh);
  ASSERT_EQ(t.begin(2, 7, 0).state, IdemState::fresh);
  ASSERT_EQ(t.complete(1, 7, 0, bytes({1}), 0), IdemComplete::stored);
  EXPECT_EQ(t.begin(2, 7, 0).state, IdemState::in_progress);
  ASSERT_EQ(t.complete(2, 7, 0, bytes({2}), 0), IdemComplete::stored);
  EXPECT_EQ(copy(t.begin(1, 7, 0).response), bytes({1}));
  EXPECT_EQ(copy(t.begin(2, 7, 0).response), bytes({2}));
}

TEST(Idempotency, EvictsLeastRecentlyUsedDone) {
  auto t = make(3, 8, 1000);
  for (std::uint64_t k = 1; k <= 3; ++k) {
    ASSERT_EQ(t.begin(0, k, 0).state, IdemState::fresh);
    ASSERT_EQ(t.complete(0, k, 0, bytes({static_cast<int>(k)}), 0), IdemComplete::stored);
  }
  ASSERT_EQ(t.begin(0, 1, 1).state, IdemState::done);   // 1 is now most recent; LRU is 2
  ASSERT_EQ(t.begin(0, 4, 2).state, IdemState::fresh);  // evicts 2
  EXPECT_EQ(t.stats().evictions, 1u);
  EXPECT_EQ(t.begin(0, 3, 3).state, IdemState::done);
  EXPECT_EQ(t.begin(0, 1, 3).state, IdemState::done);
  EXPECT_EQ(t.begin(0, 2, 3).state, IdemState::fresh);  // forgotten; evicts 3 (LRU done)
  EXPECT_EQ(t.begin(0, 3, 3).state, IdemState::fresh);  // evicts 1, the only done entry
  EXPECT_EQ(t.begin(0, 1, 3).state, IdemState::full);   // 4, 2, 3 all in progress
  EXPECT_EQ(t.stats().evictions, 3u);
}

TEST(Idempotency, InProgressNeverEvictedAndFull) {
  auto t = make(2, 8, 10);
  ASSERT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  ASSERT_EQ(t.begin(0, 2, 0).state, IdemState::fresh);
  EXPECT_EQ(t.begin(0, 3, 1000).state, IdemState::full);  // in progress: not expired either
  EXPECT_EQ(t.stats().full_rejections, 1u);
  EXPECT_EQ(t.begin(0, 1, 1000).state, IdemState::in_progress);
  ASSERT_EQ(t.complete(0, 2, 0, bytes({2}), 1000), IdemComplete::stored);
  EXPECT_EQ(t.begin(0, 3, 1001).state, IdemState::fresh);  // evicts 2, never 1
  EXPECT_EQ(t.begin(0, 1, 1001).state, IdemState::in_progress);
  EXPECT_EQ(t.size(), 2u);
}

TEST(Idempotency, TtlExpiry) {
  auto t = make(4, 8, 100);
  ASSERT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  ASSERT_EQ(t.complete(0, 1, 0, bytes({1}), 50), IdemComplete::stored);
  EXPECT_EQ(t.begin(0, 1, 149).state, IdemState::done);  // ttl counts from complete()
  EXPECT_EQ(t.begin(0, 1, 150).state, IdemState::fresh);
  EXPECT_EQ(t.stats().expirations, 1u);
}

TEST(Idempotency, OversizeStoresTooLarge) {
  auto t = make(2, 4, 1000);
  ASSERT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  EXPECT_EQ(t.complete(0, 1, 0, bytes({1, 2, 3, 4, 5}), 0), IdemComplete::too_large);
  const auto r = t.begin(0, 1, 1);
  EXPECT_EQ(r.state, IdemState::done);
  EXPECT_EQ(r.code, kTooLarge);
  EXPECT_TRUE(r.response.empty());
  ASSERT_EQ(t.begin(0, 2, 0).state, IdemState::fresh);
  EXPECT_EQ(t.complete(0, 2, 0, bytes({1, 2, 3, 4}), 0), IdemComplete::stored);  // exactly max
  EXPECT_EQ(t.begin(0, 2, 1).response.size(), 4u);
}

TEST(Idempotency, AbandonLetsRetryRun) {
  auto t = make(2, 8, 1000);
  ASSERT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  EXPECT_TRUE(t.abandon(0, 1));
  EXPECT_FALSE(t.abandon(0, 1));
  EXPECT_EQ(t.complete(0, 1, 0, {}, 0), IdemComplete::not_found);
  EXPECT_EQ(t.begin(0, 1, 1).state, IdemState::fresh);
  ASSERT_EQ(t.complete(0, 1, 0, {}, 1), IdemComplete::stored);
  EXPECT_FALSE(t.abandon(0, 1));  // done entries are not abandoned
  EXPECT_EQ(t.begin(0, 1, 2).state, IdemState::done);
}

TEST(Idempotency, CapacityOne) {
  auto t = make(1, 2, 1000);
  ASSERT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  EXPECT_EQ(t.begin(0, 2, 0).state, IdemState::full);
  ASSERT_EQ(t.complete(0, 1, 0, bytes({7, 8}), 0), IdemComplete::stored);
  EXPECT_EQ(t.begin(0, 2, 0).state, IdemState::fresh);  // evicts 1
  EXPECT_EQ(t.begin(0, 1, 0).state, IdemState::full);
  EXPECT_TRUE(t.abandon(0, 2));
  EXPECT_EQ(t.begin(0, 1, 0).state, IdemState::fresh);
  EXPECT_EQ(t.size(), 1u);
}

// Reference: a std::map of entries with a use counter for LRU order.
struct Model {
  struct E {
    bool done = false;
    std::uint64_t done_ms = 0;
    std::uint64_t used = 0;
    std::uint16_t code = 0;
    std::vector<std::byte> resp;
  };
  std::uint32_t cap;
  std::uint32_t max_resp;
  std::uint64_t ttl;
  std::uint64_t tick = 0;
  std::map<std::pair<std::uint64_t, std::uint64_t>, E> m;

  bool expired(const E& e, std::uint64_t now) const { return e.done && now - e.done_ms >= ttl; }
  IdemState begin(std::uint64_t s, std::uint64_t k, std::uint64_t now, E* out) {
    auto it = m.find({s, k});
    if (it != m.end() && expired(it->second, now)) {
      m.erase(it);
      it = m.end();
    }
    if (it != m.end()) {
      if (!it->second.done) {
        return IdemState::in_progress;
      }
      it->second.used = ++tick;
      *out = it->second;
      return IdemState::done;
    }
    if (m.size() == cap) {
      auto victim = m.end();
      for (auto j = m.begin(); j != m.end(); ++j) {
        if (j->second.done && (victim == m.end() || j->second.used < victim->second.used)) {
          victim = j;
        }
      }
      if (victim == m.end()) {
        return IdemState::full;
      }
      m.erase(victim);
    }
    m[{s, k}] = E{};
    return IdemState::fresh;
  }
  IdemComplete complete(std::uint64_t s, std::uint64_t k, std::uint16_t code,
                        const std::vector<std::byte>& r, std::uint64_t now) {
    auto it = m.find({s, k});
    if (it == m.end() || it->second.done) {
      return IdemComplete::not_found;
    }
    E& e = it->second;
    e.done = true;
    e.done_ms = now;
    e.used = ++tick;
    e.code = code;
    if (code == 0 && r.size() > max_resp) {
      e.code = kTooLarge;
      return IdemComplete::too_large;
    }
    if (code == 0) {
      e.resp = r;
    }
    return IdemComplete::stored;
  }
  bool abandon(std::uint64_t s, std::uint64_t k) {
    auto it = m.find({s, k});
    if (it == m.end() || it->second.done) {
      return false;
    }
    m.erase(it);
    return true;
  }
};

void run_model(std::uint32_t cap, std::uint32_t seed) {
  constexpr std::uint32_t kMaxResp = 6;
  constexpr std::uint64_t kTtl = 50;
  auto t = make(cap, kMaxResp, kTtl);
  Model model{cap, kMaxResp, kTtl, 0, {}};
  std::mt19937 rng(seed);
  // Pre-generate everything so the measured loop allocates nothing on the table's side.
  constexpr int kOps = 20000;
  struct Op {
    int kind;
    std::uint64_t scope, key, dt;
    std::uint16_t code;
    std::vector<std::byte> resp;
  };
  std::vector<Op> ops(kOps);
  for (auto& op : ops) {
    op.kind = static_cast<int>(rng() % 10);
    op.scope = rng() % 2;
    op.key = rng() % (cap * 3 + 2);
    op.dt = rng() % 4;
    op.code = rng() % 5 == 0 ? static_cast<std::uint16_t>(1 + rng() % 10) : 0;
    op.resp.resize(rng() % (kMaxResp + 2));
    for (auto& b : op.resp) {
      b = static_cast<std::byte>(rng());
    }
  }
  std::uint64_t now = 0;
  for (int n = 0; n < kOps; ++n) {
    const Op& op = ops[n];
    now += op.dt;
    if (op.kind < 5) {
      Model::E want;
      const IdemState ws = model.begin(op.scope, op.key, now, &want);
      const auto got = t.begin(op.scope, op.key, now);
      ASSERT_EQ(got.state, ws) << "op " << n;
      if (ws == IdemState::done) {
        ASSERT_EQ(got.code, want.code) << "op " << n;
        ASSERT_EQ(copy(got.response), want.resp) << "op " << n;
      }
    } else if (op.kind < 9) {
      ASSERT_EQ(t.complete(op.scope, op.key, op.code, op.resp, now),
                model.complete(op.scope, op.key, op.code, op.resp, now))
          << "op " << n;
    } else {
      ASSERT_EQ(t.abandon(op.scope, op.key), model.abandon(op.scope, op.key)) << "op " << n;
    }
    ASSERT_EQ(t.size(), model.m.size()) << "op " << n;
  }
}

TEST(Idempotency, RandomizedAgainstMapModel) {
  for (std::uint32_t cap : {1U, 2U, 3U, 8U, 33U}) {
    for (std::uint32_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(testing::Message() << "cap " << cap << " seed " << seed);
      run_model(cap, seed);
      if (HasFatalFailure()) {
        return;
      }
    }
  }
}

TEST(Idempotency, NoAllocationAfterInit) {
  if (!weft::alloc::enabled()) {
    GTEST_SKIP() << "counting allocator compiled out (sanitizer build or not glibc)";
  }
  auto t = make(64, 32, 100);
  const std::array<std::byte, 32> resp{};
  const std::uint64_t before = weft::alloc::count();
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const std::uint64_t key = (i * 0x9e3779b97f4a7c15ULL) % 200;
    const auto r = t.begin(i % 3, key, i);
    if (r.state == IdemState::fresh) {
      if (i % 7 == 0) {
        (void)t.abandon(i % 3, key);
      } else {
        (void)t.complete(i % 3, key, 0, std::span(resp).first(i % 33), i);
      }
    }
    sum += r.response.size();
  }
  const std::uint64_t after = weft::alloc::count();
  EXPECT_EQ(after - before, 0u);
  EXPECT_GT(t.stats().evictions + t.stats().expirations, 0u);
  EXPECT_GT(sum, 0u);
}

}  // namespace

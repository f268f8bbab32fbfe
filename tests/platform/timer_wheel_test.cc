// TimerWheel: targeted cases for every placement path (due list, each level, the parked
// far-future list, rotation boundaries), then a randomized run against a reference model
// (std::multimap) with large jumps, callbacks that schedule and cancel other timers and
// themselves, expiries in the past, and expiries far beyond the wheel's range.
#include <weft/platform/timer_wheel.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace weft::platform {
namespace {

constexpr std::uint64_t kRange = std::uint64_t{1} << (TimerWheel::kBits * TimerWheel::kLevels);
constexpr std::uint64_t kHourMs = 3'600'000;

// A timer that records every firing (wheel.now() at the time) in a shared log.
struct Probe {
  TimerNode node;
  TimerWheel* wheel = nullptr;
  std::vector<std::uint64_t> fired_at;
  void (*on_fire)(Probe&) = nullptr;  // optional extra action

  explicit Probe(TimerWheel& w) : wheel(&w) {
    node.ctx = this;
    node.fn = [](TimerNode* n) {
      auto* self = static_cast<Probe*>(n->ctx);
      EXPECT_FALSE(n->scheduled()) << "a node is unlinked before its callback";
      EXPECT_LE(n->expiry, self->wheel->now()) << "fired early";
      self->fired_at.push_back(self->wheel->now());
      if (self->on_fire != nullptr) {
        self->on_fire(*self);
      }
    };
  }
};

TEST(TimerWheel, FiresAtItsTickNotBefore) {
  TimerWheel wheel(1000);
  Probe p(wheel);
  wheel.schedule(p.node, 1010);
  EXPECT_TRUE(p.node.scheduled());
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(1009), 0u);
  EXPECT_TRUE(p.fired_at.empty());
  EXPECT_EQ(wheel.now(), 1009u);
  EXPECT_EQ(wheel.advance(1010), 1u);
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{1010}));
  EXPECT_FALSE(p.node.scheduled());
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next_tick(), TimerWheel::kNever);
}

TEST(TimerWheel, OneJumpFiresEverythingInOrderAtItsOwnTick) {
  TimerWheel wheel(0);
  std::vector<std::unique_ptr<Probe>> probes;
  // One expiry per level and then some, scheduled in reverse order.
  const std::uint64_t expiries[] = {kHourMs * 30, kHourMs, 5'000'000, 262'144, 4096,
                                    4095,         64,      63,        1};
  static std::vector<std::uint64_t> order;
  order.clear();
  for (std::uint64_t e : expiries) {
    probes.push_back(std::make_unique<Probe>(wheel));
    probes.back()->on_fire = [](Probe& self) { order.push_back(self.node.expiry); };
    wheel.schedule(probes.back()->node, e);
  }
  EXPECT_EQ(wheel.advance(kHourMs * 31), std::size(expiries));
  ASSERT_EQ(order.size(), std::size(expiries));
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_LT(order[i - 1], order[i]);
  }
  for (const auto& p : probes) {
    ASSERT_EQ(p->fired_at.size(), 1u);
    EXPECT_EQ(p->fired_at[0], p->node.expiry) << "fired at its own tick during the jump";
  }
  EXPECT_EQ(wheel.now(), kHourMs * 31);
}

TEST(TimerWheel, CancelAndReschedule) {
  TimerWheel wheel(0);
  Probe a(wheel);
  Probe b(wheel);
  wheel.schedule(a.node, 100);
  wheel.schedule(b.node, 200);
  wheel.cancel(a.node);
  wheel.cancel(a.node);  // twice: a no-op
  EXPECT_FALSE(a.node.scheduled());
  EXPECT_EQ(wheel.size(), 1u);
  wheel.schedule(b.node, 50);  // reschedule earlier
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.advance(1000), 1u);
  EXPECT_TRUE(a.fired_at.empty());
  EXPECT_EQ(b.fired_at, (std::vector<std::uint64_t>{50}));
}

TEST(TimerWheel, PastExpiryFiresOnNextAdvance) {
  TimerWheel wheel(5000);
  Probe p(wheel);
  wheel.schedule(p.node, 10);
  EXPECT_EQ(wheel.next_tick(), 5000u);
  EXPECT_EQ(wheel.advance(5000), 1u);
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{5000}));
}

TEST(TimerWheel, AdvanceNeverGoesBackwards) {
  TimerWheel wheel(100);
  Probe p(wheel);
  wheel.schedule(p.node, 150);
  EXPECT_EQ(wheel.advance(50), 0u);
  EXPECT_EQ(wheel.now(), 100u);
  EXPECT_EQ(wheel.advance(150), 1u);
}

TEST(TimerWheel, NextTickIsALowerBound) {
  TimerWheel wheel(0);
  Probe p(wheel);
  EXPECT_EQ(wheel.next_tick(), TimerWheel::kNever);
  wheel.schedule(p.node, 3 * kHourMs + 17);
  // Following next_tick() like a loop does reaches the expiry in a few wakeups.
  int wakeups = 0;
  while (p.fired_at.empty()) {
    const std::uint64_t t = wheel.next_tick();
    ASSERT_NE(t, TimerWheel::kNever);
    ASSERT_LE(t, p.node.expiry);
    ASSERT_GT(t, wheel.now()) << "nothing is due: next_tick() must be in the future";
    wheel.advance(t);
    ASSERT_LT(++wakeups, 2 * TimerWheel::kLevels);
  }
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{3 * kHourMs + 17}));
}

TEST(TimerWheel, PeriodicRearmFromCallback) {
  TimerWheel wheel(0);
  Probe p(wheel);
  p.on_fire = [](Probe& self) { self.wheel->schedule(self.node, self.node.expiry + 100); };
  wheel.schedule(p.node, 100);
  EXPECT_EQ(wheel.advance(10'000), 100u);
  ASSERT_EQ(p.fired_at.size(), 100u);
  for (std::size_t i = 0; i < p.fired_at.size(); ++i) {
    EXPECT_EQ(p.fired_at[i], 100 * (i + 1));
  }
}

TEST(TimerWheel, RearmAtNowDoesNotSpin) {
  TimerWheel wheel(0);
  Probe p(wheel);
  p.on_fire = [](Probe& self) { self.wheel->schedule(self.node, self.wheel->now()); };
  wheel.schedule(p.node, 10);
  const std::size_t fired = wheel.advance(10);
  EXPECT_GE(fired, 1u);
  EXPECT_LE(fired, 2u);
  EXPECT_TRUE(p.node.scheduled());
  EXPECT_EQ(wheel.next_tick(), wheel.now());
}

TEST(TimerWheel, CallbackCancelsAnotherDueAtTheSameTick) {
  TimerWheel wheel(0);
  static Probe* victim = nullptr;
  Probe a(wheel);
  Probe b(wheel);
  Probe c(wheel);
  victim = &b;
  a.on_fire = [](Probe& self) { self.wheel->cancel(victim->node); };
  c.on_fire = a.on_fire;
  wheel.schedule(a.node, 77);
  wheel.schedule(b.node, 77);
  wheel.schedule(c.node, 77);
  wheel.advance(100);
  // Firing order within a tick is unspecified: b fires only if it came before a and c.
  EXPECT_EQ(a.fired_at.size(), 1u);
  EXPECT_EQ(c.fired_at.size(), 1u);
  EXPECT_EQ(a.fired_at.size() + b.fired_at.size() + c.fired_at.size(),
            b.fired_at.empty() ? 2u : 3u);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, FarBeyondTheRangeFiresExactlyOnTime) {
  TimerWheel wheel(123);
  Probe p(wheel);
  const std::uint64_t at = 123 + 3 * kRange + 4567;
  wheel.schedule(p.node, at);
  // Walk in big uneven strides; it must not fire early, and must fire in the stride that
  // crosses its tick.
  std::uint64_t now = 123;
  while (p.fired_at.empty()) {
    now += kRange / 3 + 999;
    wheel.advance(now);
    if (now < at) {
      ASSERT_TRUE(p.fired_at.empty());
    }
  }
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{at}));
}

TEST(TimerWheel, ExpiryAtTheEndOfTime) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.schedule(p.node, TimerWheel::kNever - 1);
  EXPECT_EQ(wheel.advance(100 * kHourMs), 0u);
  EXPECT_TRUE(p.node.scheduled());
  EXPECT_LE(wheel.next_tick(), TimerWheel::kNever - 1);
  EXPECT_GT(wheel.next_tick(), wheel.now());
  wheel.cancel(p.node);
  EXPECT_EQ(wheel.next_tick(), TimerWheel::kNever);
}

// The wheel's current tick is the last tick of a top-level rotation (all digits 63): an
// expiry in the next rotation has no slot ahead of now in this rotation.
TEST(TimerWheel, ScheduleAcrossRotationBoundaryFromItsLastTick) {
  TimerWheel wheel(kRange - 1);
  Probe p(wheel);
  wheel.schedule(p.node, kRange + 5);
  EXPECT_GT(wheel.next_tick(), wheel.now()) << "nothing is due yet: a loop would spin";
  EXPECT_LE(wheel.next_tick(), kRange + 5);
  EXPECT_EQ(wheel.advance(kRange + 4), 0u);
  EXPECT_EQ(wheel.advance(kRange + 10), 1u);
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{kRange + 5}));
}

TEST(TimerWheel, ParkedTimerCrossingRotationInOneJump) {
  TimerWheel wheel(kRange - 1000);
  Probe p(wheel);
  wheel.schedule(p.node, kRange + 5);  // parked at the rotation's last tick
  EXPECT_EQ(wheel.advance(kRange + 10), 1u) << "expiry <= now must fire in this advance()";
  EXPECT_EQ(p.fired_at, (std::vector<std::uint64_t>{kRange + 5}));
}

// ---- randomized run against a reference model ------------------------------------------

class ModelRun {
 public:
  static constexpr int kTimers = 64;

  ModelRun(std::uint32_t seed, std::uint64_t start) : rng_(seed), wheel_(start) {
    timers_.resize(kTimers);
    for (int i = 0; i < kTimers; ++i) {
      Timer& t = timers_[static_cast<std::size_t>(i)];
      t.run = this;
      t.id = i;
      t.node.ctx = &t;
      t.node.fn = &ModelRun::on_fire;
      t.where = model_.end();
    }
  }

  void run(int steps) {
    for (int step = 0; step < steps && !::testing::Test::HasFatalFailure(); ++step) {
      const std::uint32_t op = rng_() % 100;
      if (op == 0) {
        // Empty the wheel now and then: advance() then jumps without stepping, leaving
        // stale occupancy bits behind the new now().
        for (Timer& t : timers_) {
          cancel(t);
        }
      } else if (op < 40) {
        schedule(pick(), random_expiry());
      } else if (op < 50) {
        cancel(pick());
      } else if (op < 80) {
        advance(wheel_.now() + random_jump());
      } else {
        const std::uint64_t t = wheel_.next_tick();
        if (t != TimerWheel::kNever) {
          advance(t);
        }
      }
      check_idle_state();
    }
    // Drain: following next_tick() must fire everything still pending.
    int wakeups = 0;
    while (!model_.empty() && !::testing::Test::HasFatalFailure()) {
      const std::uint64_t t = wheel_.next_tick();
      ASSERT_NE(t, TimerWheel::kNever);
      advance(t);
      check_idle_state();
      ASSERT_LT(++wakeups, 100000) << "next_tick() does not lead to the pending timers";
    }
  }

  std::size_t fired() const { return fired_; }

 private:
  struct Timer {
    TimerNode node;
    ModelRun* run = nullptr;
    int id = 0;
    std::multimap<std::uint64_t, int>::iterator where;
    // Scheduled from a callback at or before the tick being processed: may wait for the
    // next advance() (the wheel's documented guard against a callback that re-arms "now").
    bool lenient = false;
  };

  Timer& pick() { return timers_[rng_() % kTimers]; }

  std::uint64_t random_expiry() {
    const std::uint64_t now = wheel_.now();
    switch (rng_() % 10) {
      case 0:  // in the past
        return now - std::min<std::uint64_t>(now, rng_() % 5000);
      case 1:
        return now;
      case 2:
      case 3:
        return now + 1 + rng_() % 64;
      case 4:
        return now + 1 + rng_() % 5000;
      case 5:
        return now + 1 + rng_() % (1u << 20);
      case 6:
        return now + 1 + rng_() % (10 * kHourMs);
      case 7:  // around the wheel's range
        return now + kRange - 500 + rng_() % 1000;
      case 8: {  // far beyond it
        const std::uint64_t far = (std::uint64_t{rng_()} << 20 | rng_()) % (kRange * 8);
        return now + far;
      }
      default:  // next to a rotation boundary
        return ((now / kRange) + 1 + rng_() % 2) * kRange - 3 + rng_() % 6;
    }
  }

  std::uint64_t random_jump() {
    switch (rng_() % 8) {
      case 0:
        return 0;
      case 1:
      case 2:
        return rng_() % 64;
      case 3:
        return rng_() % 5000;
      case 4:
        return rng_() % (1u << 22);
      case 5:
        return rng_() % (5 * kHourMs);  // hours of ms in one call
      case 6: {                         // to just before / at / after the next rotation boundary
        const std::uint64_t now = wheel_.now();
        const std::uint64_t to_boundary = (now / kRange + 1) * kRange - now;  // >= 1
        return to_boundary >= 2 ? to_boundary - 2 + rng_() % 4 : rng_() % 4;
      }
      default:
        return kRange / 2 + rng_() % kRange;
    }
  }

  void schedule(Timer& t, std::uint64_t expiry) {
    if (t.where != model_.end()) {
      model_.erase(t.where);
    }
    t.where = model_.emplace(expiry, t.id);
    t.lenient = in_advance_ && expiry <= wheel_.now();
    wheel_.schedule(t.node, expiry);
  }

  void cancel(Timer& t) {
    if (t.where != model_.end()) {
      model_.erase(t.where);
      t.where = model_.end();
    }
    wheel_.cancel(t.node);
  }

  void advance(std::uint64_t target) {
    if (target < wheel_.now()) {
      target = wheel_.now();
    }
    start_ = wheel_.now();
    target_ = target;
    callbacks_ = 0;
    last_fire_ = start_;
    in_advance_ = true;
    const std::size_t n = wheel_.advance(target);
    in_advance_ = false;
    ASSERT_EQ(n, callbacks_) << "advance() must count its callbacks";
    ASSERT_EQ(wheel_.now(), target);
    // Everything due is gone, except timers a callback scheduled at or before the tick it
    // ran at; those must go on the very next advance(), at its first tick.
    for (auto it = model_.begin(); it != model_.end() && it->first <= target; ++it) {
      Timer& t = timers_[static_cast<std::size_t>(it->second)];
      ASSERT_TRUE(t.lenient) << "timer " << t.id << " due at " << it->first
                             << " still pending after advance(" << target << ") from " << start_;
      t.lenient = false;
    }
  }

  static void on_fire(TimerNode* node) {
    Timer& t = *static_cast<Timer*>(node->ctx);
    t.run->fire(t);
  }

  void fire(Timer& t) {
    const std::uint64_t now = wheel_.now();
    ++callbacks_;
    ++fired_;
    ASSERT_TRUE(in_advance_);
    ASSERT_NE(t.where, model_.end()) << "timer " << t.id << " fired but is not scheduled";
    const std::uint64_t expiry = t.where->first;
    ASSERT_EQ(t.node.expiry, expiry);
    ASSERT_FALSE(t.node.scheduled());
    ASSERT_LE(expiry, target_) << "fired past the advance() target";
    ASSERT_LE(now, target_);
    ASSERT_GE(now, last_fire_) << "callbacks must run in time order";
    last_fire_ = now;
    if (!t.lenient) {
      // Exactly at its tick, or at the start tick for expiries already in the past.
      ASSERT_EQ(now, std::max(expiry, start_)) << "timer " << t.id << " expiry " << expiry;
    } else {
      ASSERT_GE(now, expiry);
    }
    model_.erase(t.where);
    t.where = model_.end();
    t.lenient = false;
    // Callbacks act on the wheel: re-arm themselves, schedule or cancel others (possibly
    // ones due at this very tick).
    const std::uint32_t action = rng_() % 10;
    if (action < 3) {
      schedule(t, random_expiry());
    } else if (action < 5) {
      schedule(pick(), random_expiry());
    } else if (action < 7) {
      cancel(pick());
    } else if (action == 7) {
      schedule(pick(), now + rng_() % 3);
    }
  }

  void check_idle_state() {
    ASSERT_EQ(wheel_.size(), model_.size());
    for (const Timer& t : timers_) {
      ASSERT_EQ(t.node.scheduled(), t.where != model_.end()) << "timer " << t.id;
    }
    const std::uint64_t next = wheel_.next_tick();
    if (model_.empty()) {
      ASSERT_EQ(next, TimerWheel::kNever);
      return;
    }
    const std::uint64_t earliest = model_.begin()->first;
    ASSERT_NE(next, TimerWheel::kNever);
    ASSERT_LE(next, std::max(earliest, wheel_.now())) << "next_tick() must be a lower bound";
    if (earliest > wheel_.now()) {
      ASSERT_GT(next, wheel_.now()) << "nothing is due, yet next_tick() says now (busy loop)";
    }
  }

  std::mt19937 rng_;
  TimerWheel wheel_;
  std::vector<Timer> timers_;
  std::multimap<std::uint64_t, int> model_;
  bool in_advance_ = false;
  std::uint64_t start_ = 0;
  std::uint64_t target_ = 0;
  std::uint64_t last_fire_ = 0;
  std::size_t callbacks_ = 0;
  std::size_t fired_ = 0;
};

class TimerWheelModel : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(TimerWheelModel, AgreesWithReference) {
  const std::uint32_t seed = GetParam();
  // Start at zero, mid-range, and right before a rotation boundary.
  const std::uint64_t starts[] = {0, 987'654'321, kRange - 70, 5 * kRange - 1};
  ModelRun run(seed, starts[seed % std::size(starts)]);
  run.run(20'000);
  EXPECT_GT(run.fired(), 1000u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, TimerWheelModel, ::testing::Range(1u, 17u));

}  // namespace
}  // namespace weft::platform

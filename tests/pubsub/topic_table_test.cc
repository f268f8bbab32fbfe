// detail::TopicTable, the per-worker bookkeeping under Hub: topics, subscriber lists in
// subscription order, per-connection lists, limits, slot reuse, the interest counters that
// publishers read, and a randomized run against a std::map model with hashes forced to
// collide (so backward-shift deletion is exercised on long probe runs).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <weft/pubsub/error.h>

#include "topic_table.h"

namespace weft::pubsub::detail {
namespace {

std::span<const std::byte> b(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

class TopicTableTest : public ::testing::Test {
 protected:
  void init(std::uint32_t topics, std::uint32_t subs, std::uint32_t slots = 16) {
    ASSERT_TRUE(t_.init({topics, subs, 32, slots}).ok());
  }
  std::uint64_t h(const std::string& s) const { return topic_hash(7, b(s)); }
  Result<Subscribed> sub(platform::ConnId c, const std::string& s, std::uint8_t f = 0) {
    return t_.subscribe(c, b(s), h(s), f);
  }
  // Subscribers of topic s, in list order.
  std::vector<std::uint32_t> slots_of(const std::string& s) {
    std::vector<std::uint32_t> v;
    const std::uint32_t t = t_.find(h(s), b(s));
    if (t == kNil) {
      return v;
    }
    std::uint32_t prev = kNil;
    for (std::uint32_t i = t_.topic(t).head; i != kNil; i = t_.sub(i).next) {
      EXPECT_EQ(t_.sub(i).prev, prev);
      prev = i;
      v.push_back(t_.sub(i).conn.slot);
    }
    EXPECT_EQ(t_.topic(t).tail, prev);
    EXPECT_EQ(t_.topic(t).subs, v.size());
    return v;
  }
  TopicTable t_;
};

platform::ConnId conn(std::uint32_t slot, std::uint32_t gen = 1) {
  return {slot, gen, 0};
}

TEST_F(TopicTableTest, SubscribeIsIdempotentAndCountsInterest) {
  init(8, 8);
  auto r = sub(conn(1), "a");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->added);
  auto again = sub(conn(1), "a");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->added);
  EXPECT_EQ(again->sub, r->sub);
  EXPECT_EQ(t_.subscriptions(), 1u);
  EXPECT_EQ(t_.topics(), 1u);
  EXPECT_EQ(t_.interest(0, h("a")), 1u);
  // Another format switches the subscription and moves its interest count.
  ASSERT_TRUE(sub(conn(1), "a", 2).ok());
  EXPECT_EQ(t_.subscriptions(), 1u);
  EXPECT_EQ(t_.interest(0, h("a")), 0u);
  EXPECT_EQ(t_.interest(2, h("a")), 1u);
  EXPECT_EQ(t_.sub(r->sub).format, 2);
}

TEST_F(TopicTableTest, ListsKeepSubscriptionOrderAndUnlinkAnywhere) {
  init(8, 8);
  for (std::uint32_t s : {3u, 1u, 4u, 5u}) {
    ASSERT_TRUE(sub(conn(s), "t").ok());
  }
  EXPECT_EQ(slots_of("t"), (std::vector<std::uint32_t>{3, 1, 4, 5}));
  EXPECT_TRUE(t_.unsubscribe(conn(4), b("t"), h("t")));      // middle
  EXPECT_TRUE(t_.unsubscribe(conn(3), b("t"), h("t")));      // head
  EXPECT_FALSE(t_.unsubscribe(conn(3), b("t"), h("t")));     // already gone
  EXPECT_FALSE(t_.unsubscribe(conn(1, 2), b("t"), h("t")));  // another generation's
  EXPECT_EQ(slots_of("t"), (std::vector<std::uint32_t>{1, 5}));
  EXPECT_TRUE(t_.unsubscribe(conn(5), b("t"), h("t")));  // tail
  EXPECT_TRUE(t_.unsubscribe(conn(1), b("t"), h("t")));
  EXPECT_EQ(t_.topics(), 0u);  // the last subscriber took the topic with it
  EXPECT_EQ(t_.find(h("t"), b("t")), kNil);
  EXPECT_EQ(t_.interest(0, h("t")), 0u);
}

TEST_F(TopicTableTest, DropConnRemovesOnlyItsOwnSubscriptions) {
  init(8, 16);
  for (const char* topic : {"a", "b", "c"}) {
    ASSERT_TRUE(sub(conn(2), topic).ok());
  }
  ASSERT_TRUE(sub(conn(3), "b").ok());
  EXPECT_EQ(t_.drop_conn(conn(2)), 3u);
  EXPECT_EQ(t_.subscriptions(), 1u);
  EXPECT_EQ(t_.topics(), 1u);
  EXPECT_EQ(slots_of("b"), (std::vector<std::uint32_t>{3}));
  EXPECT_EQ(t_.drop_conn(conn(2)), 0u);
  EXPECT_EQ(t_.drop_conn(conn(99)), 0u);  // beyond the slots: nothing, no crash
}

TEST_F(TopicTableTest, LimitsRefuseCleanly) {
  init(2, 3);
  ASSERT_TRUE(sub(conn(1), "a").ok());
  ASSERT_TRUE(sub(conn(1), "b").ok());
  auto r = sub(conn(1), "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(pubsub_errc::topic_limit));
  ASSERT_TRUE(sub(conn(2), "a").ok());  // an existing topic still takes subscribers
  r = sub(conn(3), "b");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(pubsub_errc::subscription_limit));
  r = sub(conn(3), "z");  // both limits: nothing half-made (no empty topic left behind)
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(t_.topics(), 2u);
  EXPECT_EQ(t_.subscriptions(), 3u);
  r = sub(conn(16), "a");  // slot beyond conn_slots
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(pubsub_errc::invalid_argument));
  // Freed room is usable again.
  EXPECT_EQ(t_.drop_conn(conn(1)), 2u);
  EXPECT_TRUE(sub(conn(3), "c").ok());  // topics a, c
  EXPECT_TRUE(sub(conn(3), "a").ok());  // subscriptions 2:a, 3:c, 3:a
  EXPECT_EQ(t_.subscriptions(), 3u);
}

TEST_F(TopicTableTest, ReusedSlotDropsTheListOfAConnectionThatNeverReportedItsClose) {
  init(8, 8);
  ASSERT_TRUE(sub(conn(5, 1), "a").ok());
  ASSERT_TRUE(sub(conn(5, 1), "b").ok());
  // Generation 2 of slot 5 subscribes: generation 1's subscriptions are stale and go.
  ASSERT_TRUE(sub(conn(5, 2), "c").ok());
  EXPECT_EQ(t_.subscriptions(), 1u);
  EXPECT_EQ(t_.topics(), 1u);
  EXPECT_EQ(t_.find_sub(conn(5, 1), t_.find(h("c"), b("c"))), kNil);
  EXPECT_NE(t_.find_sub(conn(5, 2), t_.find(h("c"), b("c"))), kNil);
}

TEST_F(TopicTableTest, RandomizedAgainstModelWithCollidingHashes) {
  init(64, 256, 32);
  std::mt19937 rng(12345);
  // Hashes with 3 distinct values: every topic collides with a third of the others, so
  // probe runs are long and deletions shift entries across them.
  const auto weak = [](const std::string& s) { return topic_hash(1, b(s)) % 3; };
  std::map<std::pair<std::uint32_t, std::string>, std::uint8_t> model;
  std::map<std::string, int> per_topic;
  for (int step = 0; step < 20000; ++step) {
    const std::uint32_t slot = rng() % 32;
    std::string topic = std::to_string(rng() % 80);
    topic.insert(0, 1, 't');  // not "t" + ...: g++ 12 -O3 warns falsely (-Wrestrict) on that
    const int op = static_cast<int>(rng() % 10);
    if (op < 6) {
      const auto f = static_cast<std::uint8_t>(rng() % kMaxFormats);
      auto r = t_.subscribe(conn(slot), b(topic), weak(topic), f);
      const bool had = model.count({slot, topic}) != 0;
      const bool topic_room = per_topic.count(topic) != 0 || per_topic.size() < 64;
      const bool sub_room = had || model.size() < 256;
      ASSERT_EQ(r.ok(), had || (topic_room && sub_room)) << step;
      if (r.ok()) {
        ASSERT_EQ(r->added, !had);
        if (!had) {
          ++per_topic[topic];
        }
        model[{slot, topic}] = f;
      }
    } else if (op < 9) {
      const bool had = model.erase({slot, topic}) != 0;
      ASSERT_EQ(t_.unsubscribe(conn(slot), b(topic), weak(topic)), had) << step;
      if (had && --per_topic[topic] == 0) {
        per_topic.erase(topic);
      }
    } else {
      std::uint32_t n = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (it->first.first == slot) {
          if (--per_topic[it->first.second] == 0) {
            per_topic.erase(it->first.second);
          }
          it = model.erase(it);
          ++n;
        } else {
          ++it;
        }
      }
      ASSERT_EQ(t_.drop_conn(conn(slot)), n) << step;
    }
    ASSERT_EQ(t_.subscriptions(), model.size());
    ASSERT_EQ(t_.topics(), per_topic.size());
  }
  // Every topic is found with exactly its subscribers and formats; interest adds up.
  std::uint32_t interest[kMaxFormats][3] = {};
  for (const auto& [key, f] : model) {
    const std::uint32_t t = t_.find(weak(key.second), b(key.second));
    ASSERT_NE(t, kNil);
    const std::uint32_t i = t_.find_sub(conn(key.first), t);
    ASSERT_NE(i, kNil);
    EXPECT_EQ(t_.sub(i).format, f);
    ++interest[f][weak(key.second)];
  }
  for (std::uint8_t f = 0; f < kMaxFormats; ++f) {
    for (std::uint64_t hv = 0; hv < 3; ++hv) {
      EXPECT_EQ(t_.interest(f, hv), interest[f][hv]);
    }
  }
}

TEST(TopicHash, SeedChangesTheHash) {
  const std::string s = "sensors/temp";
  EXPECT_EQ(topic_hash(1, b(s)), topic_hash(1, b(s)));
  EXPECT_NE(topic_hash(1, b(s)), topic_hash(2, b(s)));
  EXPECT_NE(topic_hash(1, b("ab")), topic_hash(1, b("ba")));
}

}  // namespace
}  // namespace weft::pubsub::detail

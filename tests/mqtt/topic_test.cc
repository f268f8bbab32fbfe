// weft::mqtt topics: validation, matching (the specs' §4.7 examples, $SYS) and bridge rules.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include <weft/mqtt/topic.h>

namespace weft::mqtt {
namespace {

TEST(MqttTopic, FilterValidation) {
  for (std::string_view ok : {"#", "+", "sport/#", "sport/tennis/#", "sport/+/player1", "+/+", "/+",
                              "sport/", "$SYS/#", "a//b", "+/tennis/#"}) {
    EXPECT_TRUE(valid_topic_filter(ok)) << ok;
  }
  for (std::string_view bad :
       {"", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "#/", "a/#b", "a/+b", "++"}) {
    EXPECT_FALSE(valid_topic_filter(bad)) << bad;
  }
  EXPECT_TRUE(valid_topic_name("sport/tennis/player1"));
  EXPECT_TRUE(valid_topic_name("/"));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("a/+"));
  EXPECT_FALSE(valid_topic_name("a/#"));
}

TEST(MqttTopic, MatchingTable) {
  struct Case {
    std::string_view filter;
    std::string_view topic;
    bool want;
  };
  const Case cases[] = {
      // 5.0 §4.7.1.2: "sport/tennis/player1/#".
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"sport/#", "sports", false},
      {"#", "sport/tennis", true},
      {"#", "/", true},
      // §4.7.1.3: "+".
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+", "finance", true},
      {"+/tennis/#", "sport/tennis/player1", true},
      {"a/b", "a/b", true},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      // §4.7.2: wildcards at the first level do not match $-topics.
      {"#", "$SYS/broker/uptime", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"$SYS/+/Clients", "$SYS/monitor/Clients", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(matches(c.filter, c.topic), c.want) << c.filter << " vs " << c.topic;
  }
}

std::string map(const Rule& r, std::string_view topic, std::string_view dev = "d1") {
  std::array<char, 64> out{};
  auto n = map_topic(r, dev, topic, out);
  if (!n) {
    return "<" + n.error().message() + ">";
  }
  return std::string(out.data(), n.value());
}

TEST(MqttBridge, RulesOutAndBack) {
  const Rule out{"local/#", "fleet/{device}/local/#"};
  const Rule back{"fleet/{device}/cmd/#", "cmd/#"};
  EXPECT_EQ(map(out, "local/temp"), "fleet/d1/local/temp");
  EXPECT_EQ(map(out, "local/a/b/c"), "fleet/d1/local/a/b/c");
  EXPECT_EQ(map(out, "local"), "fleet/d1/local");  // "local/#" matches its parent
  EXPECT_EQ(map(out, "localx/temp"), "");          // no match: length 0
  EXPECT_EQ(map(out, "other/temp"), "");
  EXPECT_EQ(map(back, "fleet/d1/cmd/reboot"), "cmd/reboot");
  EXPECT_EQ(map(back, "fleet/d2/cmd/reboot"), "");  // another device's command
  EXPECT_EQ(map(back, "fleet/d1/cmd"), "cmd");
  const Rule exact{"status", "fleet/{device}/status"};
  EXPECT_EQ(map(exact, "status"), "fleet/d1/status");
  EXPECT_EQ(map(exact, "status/x"), "");
  // First match wins.
  const std::array<Rule, 2> rules = {{{"local/special/#", "fleet/{device}/sp/#"}, out}};
  std::array<char, 64> buf{};
  auto n = map_first(rules, "d1", "local/special/x", buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string_view(buf.data(), n.value()), "fleet/d1/sp/x");
  n = map_first(rules, "d1", "local/x", buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string_view(buf.data(), n.value()), "fleet/d1/local/x");
  // The broker filter a bridge subscribes to.
  n = expand(back.from, "d1", buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string_view(buf.data(), n.value()), "fleet/d1/cmd/#");
}

TEST(MqttBridge, Errors) {
  const Rule out{"local/#", "fleet/{device}/local/#"};
  std::array<char, 8> small{};
  EXPECT_EQ(map_topic(out, "d1", "local/temp", small).error(), mqtt_errc::buffer_too_small);
  std::array<char, 64> buf{};
  EXPECT_EQ(map_topic(out, "", "local/temp", buf).error(), mqtt_errc::bad_argument);
  EXPECT_EQ(map_topic(out, "a/b", "local/temp", buf).error(), mqtt_errc::bad_argument);
  EXPECT_EQ(map_topic(out, "a+", "local/temp", buf).error(), mqtt_errc::bad_argument);
  EXPECT_EQ(map_topic({"local/+", "x/+"}, "d1", "local/t", buf).error(), mqtt_errc::bad_argument);
  EXPECT_EQ(map_topic({"local/#", "x"}, "d1", "local/t", buf).error(), mqtt_errc::bad_argument);
  EXPECT_FALSE(valid_rule({"a/#/b", "c/#"}));
  EXPECT_TRUE(valid_rule(out));
}

}  // namespace
}  // namespace weft::mqtt

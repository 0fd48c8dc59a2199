// The stub host's metrics registry and its Prometheus text rendering (host_stub/src/metrics.*),
// without a running host: escaping, number formatting, the exact text of a small registry, that
// the output reads back through a strict parser, and what register and update refuse.
#include "metrics.hpp"
#include "prometheus_text.hpp"  // tests/support

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace {

using hdp::host::MetricSpec;
using hdp::host::MetricsRegistry;
using hdp::host::MetricType;

constexpr uint64_t kHost = MetricsRegistry::kHostOwner;
constexpr uint64_t kPluginA = 1;
constexpr uint64_t kPluginB = 2;

template <size_t N>
std::span<const std::string_view> labels(const std::array<std::string_view, N>& values) {
  return {values.data(), values.size()};
}

promtext::Exposition parse_ok(const std::string& text) {
  promtext::ParseResult result = promtext::parse(text);
  if (const auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "not Prometheus text: " << *error << "\n" << text;
    return {};
  }
  return std::get<promtext::Exposition>(result);
}

TEST(MetricsText, LabelValuesEscapeBackslashQuoteAndLineFeedOnly) {
  EXPECT_EQ(hdp::host::escape_label_value("plain"), "plain");
  EXPECT_EQ(hdp::host::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  // Tabs, braces, commas and UTF-8 stay as they are.
  EXPECT_EQ(hdp::host::escape_label_value("t\t{x,y} \xc3\xa9"), "t\t{x,y} \xc3\xa9");
}

TEST(MetricsText, HelpEscapesBackslashAndLineFeedButNotQuotes) {
  EXPECT_EQ(hdp::host::escape_help("say \"hi\"\\\nnext"), "say \"hi\"\\\\\\nnext");
}

TEST(MetricsText, ValuesAreWrittenAsGoReadsThem) {
  using hdp::host::format_metric_value;
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(1), "1");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(1e6), "1e+06");
  EXPECT_EQ(format_metric_value(-2.5), "-2.5");
  EXPECT_EQ(format_metric_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
  // Shortest text that reads back as the same double.
  EXPECT_EQ(format_metric_value(0.1 + 0.2), "0.30000000000000004");
}

TEST(MetricsText, NamesFollowThePrometheusGrammar) {
  EXPECT_TRUE(hdp::host::is_metric_name("wavoip_x_total"));
  EXPECT_TRUE(hdp::host::is_metric_name("_x9"));
  EXPECT_FALSE(hdp::host::is_metric_name("9x"));
  EXPECT_FALSE(hdp::host::is_metric_name("a-b"));
  EXPECT_FALSE(hdp::host::is_metric_name("a:b"));
  EXPECT_TRUE(hdp::host::is_metric_name("a:b", true));
  EXPECT_FALSE(hdp::host::is_label_name("a:b"));
  EXPECT_FALSE(hdp::host::is_label_name(""));
  EXPECT_TRUE(hdp::host::is_valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(hdp::host::is_valid_utf8("\xc3"));
  EXPECT_FALSE(hdp::host::is_valid_utf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(hdp::host::is_valid_utf8("\xed\xa0\x80"));  // surrogate
}

TEST(MetricsRegistry, RendersHelpTypeSeriesAndHistogramBucketsExactly) {
  MetricsRegistry registry;
  uint64_t requests = 0;
  ASSERT_EQ(registry.register_family(
                kHost, "host",
                MetricSpec{MetricType::counter, "hdp_requests_total", "Requests\\answered\nby route", {"route"}, {}},
                &requests),
            HDP_OK);
  uint64_t latency = 0;
  ASSERT_EQ(registry.register_family(kPluginA, "org.example.a",
                                     MetricSpec{MetricType::histogram, "a_latency_seconds", "Latency", {}, {0.5, 1}},
                                     &latency),
            HDP_OK);
  uint64_t depth = 0;
  ASSERT_EQ(registry.register_family(kPluginA, "org.example.a",
                                     MetricSpec{MetricType::gauge, "a_depth", "", {"queue"}, {}}, &depth),
            HDP_OK);

  ASSERT_EQ(registry.counter_add(kHost, requests, labels<1>({"/a\"b\\c\nd"}), 2), HDP_OK);
  ASSERT_EQ(registry.counter_add(kHost, requests, labels<1>({"/"}), 1), HDP_OK);
  for (double v : {0.25, 0.5, 0.75, 3.0}) ASSERT_EQ(registry.observe(kPluginA, latency, {}, v), HDP_OK);
  ASSERT_EQ(registry.gauge_set(kPluginA, depth, labels<1>({"x"}), 7), HDP_OK);
  ASSERT_EQ(registry.gauge_add(kPluginA, depth, labels<1>({"x"}), -2.5), HDP_OK);

  // Families by name; a plugin's series carry plugin="<id>" first; buckets are cumulative and
  // "le" is inclusive (0.5 falls in le="0.5"); a family without HELP text has no # HELP line.
  const std::string expected =
      "# TYPE a_depth gauge\n"
      "a_depth{plugin=\"org.example.a\",queue=\"x\"} 4.5\n"
      "# HELP a_latency_seconds Latency\n"
      "# TYPE a_latency_seconds histogram\n"
      "a_latency_seconds_bucket{plugin=\"org.example.a\",le=\"0.5\"} 2\n"
      "a_latency_seconds_bucket{plugin=\"org.example.a\",le=\"1\"} 3\n"
      "a_latency_seconds_bucket{plugin=\"org.example.a\",le=\"+Inf\"} 4\n"
      "a_latency_seconds_sum{plugin=\"org.example.a\"} 4.5\n"
      "a_latency_seconds_count{plugin=\"org.example.a\"} 4\n"
      "# HELP hdp_requests_total Requests\\\\answered\\nby route\n"
      "# TYPE hdp_requests_total counter\n"
      "hdp_requests_total{route=\"/\"} 1\n"
      "hdp_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 2\n";
  EXPECT_EQ(registry.render(), expected);

  // And it reads back: the escaped label value comes back as it was given.
  const promtext::Exposition parsed = parse_ok(registry.render());
  EXPECT_EQ(parsed.value("hdp_requests_total", {{"route", "/a\"b\\c\nd"}}), 2);
  ASSERT_NE(parsed.family("hdp_requests_total"), nullptr);
  EXPECT_EQ(parsed.family("hdp_requests_total")->help, "Requests\\answered\nby route");
  EXPECT_EQ(parsed.value("a_latency_seconds_count", {{"plugin", "org.example.a"}}), 4);
}

TEST(MetricsRegistry, AFamilyWithoutLabelsIsShownAtZeroFromRegistration) {
  MetricsRegistry registry;
  uint64_t id = 0;
  ASSERT_EQ(registry.register_family(kPluginA, "p", MetricSpec{MetricType::counter, "p_total", "P", {}, {}}, &id),
            HDP_OK);
  uint64_t h = 0;
  ASSERT_EQ(registry.register_family(kPluginA, "p", MetricSpec{MetricType::histogram, "p_seconds", "S", {}, {}}, &h),
            HDP_OK);
  const promtext::Exposition parsed = parse_ok(registry.render());
  EXPECT_EQ(parsed.value("p_total", {{"plugin", "p"}}), 0);
  EXPECT_EQ(parsed.value("p_seconds_count", {{"plugin", "p"}}), 0);
  // The default buckets, then +Inf.
  EXPECT_EQ(parsed.value("p_seconds_bucket", {{"plugin", "p"}, {"le", "0.005"}}), 0);
  EXPECT_EQ(parsed.value("p_seconds_bucket", {{"plugin", "p"}, {"le", "10"}}), 0);
  EXPECT_EQ(parsed.value("p_seconds_bucket", {{"plugin", "p"}, {"le", "+Inf"}}), 0);
}

TEST(MetricsRegistry, TwoPluginsShareAFamilyOfTheSameShapeInOneContiguousBlock) {
  MetricsRegistry registry;
  uint64_t a = 0;
  uint64_t b = 0;
  uint64_t other = 0;
  const MetricSpec spec{MetricType::counter, "shared_total", "Shared", {"kind"}, {}};
  ASSERT_EQ(registry.register_family(kPluginA, "a", spec, &a), HDP_OK);
  ASSERT_EQ(registry.register_family(kPluginB, "z", MetricSpec{MetricType::gauge, "other", "", {}, {}}, &other),
            HDP_OK);
  ASSERT_EQ(registry.register_family(kPluginB, "b", spec, &b), HDP_OK);
  EXPECT_NE(a, b);
  ASSERT_EQ(registry.counter_add(kPluginA, a, labels<1>({"x"}), 1), HDP_OK);
  ASSERT_EQ(registry.counter_add(kPluginB, b, labels<1>({"x"}), 5), HDP_OK);
  const promtext::Exposition parsed = parse_ok(registry.render());
  EXPECT_EQ(parsed.value("shared_total", {{"plugin", "a"}, {"kind", "x"}}), 1);
  EXPECT_EQ(parsed.value("shared_total", {{"plugin", "b"}, {"kind", "x"}}), 5);
  // Another shape under that name cannot be shown next to it.
  uint64_t clash = 0;
  EXPECT_EQ(registry.register_family(kPluginB + 1, "c", MetricSpec{MetricType::gauge, "shared_total", "", {"kind"}, {}},
                                     &clash),
            HDP_ERR_ALREADY_EXISTS);
  EXPECT_EQ(registry.register_family(kPluginB + 1, "c",
                                     MetricSpec{MetricType::counter, "shared_total", "", {"other"}, {}}, &clash),
            HDP_ERR_ALREADY_EXISTS);
}

TEST(MetricsRegistry, RegisterRefusesWhatCannotBeExposed) {
  MetricsRegistry registry;
  uint64_t id = 0;
  auto reg = [&](uint64_t owner, MetricSpec spec) { return registry.register_family(owner, "p", spec, &id); };
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "9bad", "", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "has:colon", "", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "hdp_is_the_hosts", "", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kHost, {MetricType::counter, "host_without_prefix", "", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, std::string(129, 'a'), "", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "x", "bad \xff help", {}, {}}), HDP_ERR_INVALID_ARGUMENT);
  for (const char* label : {"le", "plugin", "__reserved", "a-b", ""}) {
    EXPECT_EQ(reg(kPluginA, {MetricType::counter, "x", "", {label}, {}}), HDP_ERR_INVALID_ARGUMENT) << label;
  }
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "x", "", {"a", "a"}, {}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "x", "", {"a", "b", "c", "d", "e", "f", "g", "h", "i"}, {}}),
            HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::histogram, "h", "", {}, {1, 1}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::histogram, "h", "", {}, {2, 1}}), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reg(kPluginA, {MetricType::histogram, "h", "", {}, {1, std::numeric_limits<double>::infinity()}}),
            HDP_ERR_INVALID_ARGUMENT);

  ASSERT_EQ(reg(kPluginA, {MetricType::counter, "x", "", {}, {}}), HDP_OK);
  EXPECT_EQ(reg(kPluginA, {MetricType::counter, "x", "", {}, {}}), HDP_ERR_ALREADY_EXISTS);
  // A histogram's _bucket/_sum/_count names and another family's name may not meet.
  ASSERT_EQ(reg(kPluginA, {MetricType::histogram, "lat", "", {}, {}}), HDP_OK);
  EXPECT_EQ(reg(kPluginB, {MetricType::counter, "lat_count", "", {}, {}}), HDP_ERR_ALREADY_EXISTS);
  ASSERT_EQ(reg(kPluginA, {MetricType::gauge, "size_sum", "", {}, {}}), HDP_OK);
  EXPECT_EQ(reg(kPluginB, {MetricType::histogram, "size", "", {}, {}}), HDP_ERR_ALREADY_EXISTS);
}

TEST(MetricsRegistry, FamiliesPerPluginAreLimited) {
  MetricsRegistry::Limits limits;
  limits.max_families_per_owner = 2;
  MetricsRegistry registry(limits);
  uint64_t id = 0;
  EXPECT_EQ(registry.register_family(kPluginA, "a", {MetricType::counter, "one", "", {}, {}}, &id), HDP_OK);
  EXPECT_EQ(registry.register_family(kPluginA, "a", {MetricType::counter, "two", "", {}, {}}, &id), HDP_OK);
  EXPECT_EQ(registry.register_family(kPluginA, "a", {MetricType::counter, "three", "", {}, {}}, &id), HDP_ERR_LIMIT);
  EXPECT_EQ(registry.register_family(kPluginB, "b", {MetricType::counter, "three", "", {}, {}}, &id), HDP_OK);
}

TEST(MetricsRegistry, UpdatesRefuseWrongTypeLabelsValuesAndOwner) {
  MetricsRegistry::Limits limits;
  limits.max_series_per_family_per_owner = 2;
  MetricsRegistry registry(limits);
  uint64_t counter = 0;
  uint64_t gauge = 0;
  uint64_t histogram = 0;
  ASSERT_EQ(registry.register_family(kPluginA, "a", {MetricType::counter, "c_total", "", {"k"}, {}}, &counter), HDP_OK);
  ASSERT_EQ(registry.register_family(kPluginA, "a", {MetricType::gauge, "g", "", {}, {}}, &gauge), HDP_OK);
  ASSERT_EQ(registry.register_family(kPluginA, "a", {MetricType::histogram, "h", "", {}, {}}, &histogram), HDP_OK);

  EXPECT_EQ(registry.gauge_set(kPluginA, counter, labels<1>({"x"}), 1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, gauge, {}, 1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.observe(kPluginA, gauge, {}, 1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, {}, 1), HDP_ERR_INVALID_ARGUMENT);  // needs 1 label
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<2>({"x", "y"}), 1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"x"}), -1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"x"}), std::nan("")), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"\xff"}), 1), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({std::string_view(std::string(257, 'v'))}), 1),
            HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.gauge_set(kPluginA, gauge, {}, std::nan("")), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.gauge_add(kPluginA, gauge, {}, std::numeric_limits<double>::infinity()), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(registry.observe(kPluginA, histogram, {}, std::nan("")), HDP_ERR_INVALID_ARGUMENT);
  // Another plugin's id, and an id nobody has.
  EXPECT_EQ(registry.counter_add(kPluginB, counter, labels<1>({"x"}), 1), HDP_ERR_NOT_FOUND);
  EXPECT_EQ(registry.counter_add(kPluginA, 999, labels<1>({"x"}), 1), HDP_ERR_NOT_FOUND);
  // Gauges take +-Inf; histograms put +Inf in the +Inf bucket.
  EXPECT_EQ(registry.gauge_set(kPluginA, gauge, {}, -std::numeric_limits<double>::infinity()), HDP_OK);
  EXPECT_EQ(registry.observe(kPluginA, histogram, {}, std::numeric_limits<double>::infinity()), HDP_OK);

  // Series per family: the third label set is dropped with HDP_ERR_LIMIT; known ones still move.
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"1"}), 1), HDP_OK);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"2"}), 1), HDP_OK);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"3"}), 1), HDP_ERR_LIMIT);
  EXPECT_EQ(registry.counter_add(kPluginA, counter, labels<1>({"1"}), 1), HDP_OK);

  const promtext::Exposition parsed = parse_ok(registry.render());
  EXPECT_EQ(parsed.value("c_total", {{"plugin", "a"}, {"k", "1"}}), 2);
  EXPECT_FALSE(parsed.value("c_total", {{"plugin", "a"}, {"k", "3"}}).has_value());
  EXPECT_EQ(parsed.value("g", {{"plugin", "a"}}), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parsed.value("h_bucket", {{"plugin", "a"}, {"le", "10"}}), 0);
  EXPECT_EQ(parsed.value("h_bucket", {{"plugin", "a"}, {"le", "+Inf"}}), 1);
}

// The parser is what the end-to-end tests trust; it must say no to broken text.
TEST(PrometheusTextParser, RefusesWhatPrometheusWouldRefuse) {
  const std::vector<std::pair<std::string, std::string>> broken = {
      {"no final line feed", "a 1"},
      {"empty line", "a 1\n\nb 2\n"},
      {"no value", "a\n"},
      {"bad value", "a one\n"},
      {"bad name", "9a 1\n"},
      {"bad escape", "a{x=\"\\t\"} 1\n"},
      {"unterminated", "a{x=\"v} 1\n"},
      {"duplicate label", "a{x=\"1\",x=\"2\"} 1\n"},
      {"duplicate series", "a{x=\"1\"} 1\na{x=\"1\"} 2\n"},
      {"unknown type", "# TYPE a thing\n"},
      {"type after sample", "a 1\n# TYPE a gauge\n"},
      {"split family", "a 1\nb 1\na{x=\"y\"} 1\n"},
      {"negative counter", "# TYPE a counter\na -1\n"},
      {"histogram without +Inf", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
      {"histogram count mismatch", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"},
      {"histogram decreasing",
       "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
      {"histogram without sum", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"},
  };
  for (const auto& [what, text] : broken) {
    EXPECT_TRUE(std::holds_alternative<std::string>(promtext::parse(text))) << what;
  }
  EXPECT_TRUE(std::holds_alternative<promtext::Exposition>(
      promtext::parse("# HELP a A\n# TYPE a gauge\na{x=\"1\",} -Inf 1700000000000\n# a comment\nb NaN\n")));
}

}  // namespace

// The log line formats: text and JSON, one line per message whatever the message holds.
#include <gtest/gtest.h>

#include "log.hpp"

namespace hdp::host {
namespace {

constexpr int64_t kTime = 1'795'994'093'123'456;  // 2026-11-29T23:14:53.123456Z

TEST(LogFormat, TextLine) {
  EXPECT_EQ(format_log_line(LogFormat::text, kTime, LogLevel::info, "org.example", "started"),
            "2026-11-29T23:14:53.123Z INFO  [org.example] started");
  EXPECT_EQ(format_log_line(LogFormat::text, kTime, LogLevel::warning, "host", "x"),
            "2026-11-29T23:14:53.123Z WARN  [host] x");
  EXPECT_EQ(format_log_line(LogFormat::text, kTime, LogLevel::error, "host", "a\nb\x01"),
            "2026-11-29T23:14:53.123Z ERROR [host] a\\nb\\u0001");
}

TEST(LogFormat, JsonLine) {
  EXPECT_EQ(format_log_line(LogFormat::json, kTime, LogLevel::warning, "p", "say \"hi\"\n"),
            R"({"ts":"2026-11-29T23:14:53.123Z","level":"warning","source":"p","msg":"say \"hi\"\n"})");
}

TEST(LogFormat, LevelsFromPlugins) {
  EXPECT_EQ(clamp_log_level(-5), LogLevel::trace);
  EXPECT_EQ(clamp_log_level(2), LogLevel::info);
  EXPECT_EQ(clamp_log_level(99), LogLevel::error);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::warning);
  EXPECT_FALSE(parse_log_level("verbose"));
}

}  // namespace
}  // namespace hdp::host

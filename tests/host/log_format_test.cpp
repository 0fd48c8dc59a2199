// The log line formats: text and JSON, one line per message whatever the message holds.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

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

// Everything written to f so far.
std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string text(8192, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fseek(f, 0, SEEK_END);
  return text;
}

TEST(Logger, DeferredInfoLinesWaitForTheFlushAndAWarningTakesThemAlongInOrder) {
  std::FILE* f = std::tmpfile();
  {
    Logger log(LogLevel::info, LogFormat::text, f);
    int scheduled = 0;
    log.set_deferred_flush([&] { ++scheduled; });
    log.info("first");
    log.info("second");
    EXPECT_EQ(scheduled, 1) << "one flush per burst";
    EXPECT_EQ(contents(f), "");
    log.flush();
    std::string text = contents(f);
    EXPECT_LT(text.find("first"), text.find("second"));
    EXPECT_NE(text.find("second"), std::string::npos);

    log.info("third");
    EXPECT_EQ(scheduled, 2);
    log.warning("fourth");  // at once, with what waits before it
    text = contents(f);
    EXPECT_NE(text.find("third"), std::string::npos);
    EXPECT_LT(text.find("third"), text.find("fourth"));

    log.info("fifth");
    log.set_deferred_flush(nullptr);  // written now, and every line at once from here on
    EXPECT_NE(contents(f).find("fifth"), std::string::npos);
    log.info("sixth");
    EXPECT_NE(contents(f).find("sixth"), std::string::npos);
    log.set_deferred_flush([] {});
    log.info("seventh");
  }  // the logger's end writes what waits
  EXPECT_NE(contents(f).find("seventh"), std::string::npos);
  std::fclose(f);
}

}  // namespace
}  // namespace hdp::host

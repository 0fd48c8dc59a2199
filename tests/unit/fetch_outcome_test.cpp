// What the HTTP classification proves: only audio is ready; "not yet" answers keep polling;
// busy servers are retried; gone/refused requests stop.

#include "wavoip/fetch_outcome.hpp"

#include <gtest/gtest.h>

namespace wavoip {
namespace {

TEST(FetchOutcomeClassify, OnlyNonEmptyAudioIsReady) {
  EXPECT_EQ(classify_http_answer(200, "audio/mpeg", 1), FetchKind::ready_file);
  EXPECT_EQ(classify_http_answer(206, "Audio/OGG; codecs=opus", 10), FetchKind::ready_file);
  EXPECT_EQ(classify_http_answer(200, "audio/mpeg", 0), FetchKind::not_ready);
  EXPECT_EQ(classify_http_answer(200, "application/json", 22), FetchKind::not_ready);  // {"status":"RECORDING"}
  EXPECT_EQ(classify_http_answer(200, "text/html", 100), FetchKind::not_ready);
  EXPECT_EQ(classify_http_answer(200, "", 100), FetchKind::not_ready);
  EXPECT_EQ(classify_http_answer(200, "audio/", 100), FetchKind::not_ready);
}

TEST(FetchOutcomeClassify, NotYetAnswersKeepPolling) {
  EXPECT_EQ(classify_http_answer(404, "text/plain", 9), FetchKind::not_ready);
  EXPECT_EQ(classify_http_answer(403, "application/xml", 200), FetchKind::not_ready);
  EXPECT_EQ(classify_http_answer(401, "", 0), FetchKind::not_ready);
}

TEST(FetchOutcomeClassify, BusyServersAreRetried) {
  for (int status : {408, 425, 429, 500, 502, 503, 504, 100}) {
    EXPECT_EQ(classify_http_answer(status, "text/html", 10), FetchKind::transient_error) << status;
  }
}

TEST(FetchOutcomeClassify, GoneAndBadRequestsStop) {
  for (int status : {410, 400, 405, 414, 451, 301, 302}) {
    EXPECT_EQ(classify_http_answer(status, "text/html", 10), FetchKind::permanent_error) << status;
  }
}

TEST(FetchOutcomeDescribe, ShortTextForTheAgent) {
  EXPECT_EQ(describe(FetchOutcome{FetchKind::not_ready, 404, "", "", "", 0}), "HTTP 404");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::not_ready, 200, "application/json", "", "", 0}),
            "HTTP 200 (application/json)");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::transient_error, 0, "timeout", "", "", 0}), "timeout");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::transient_error, 0, "", "", "", 0}), "no answer");
}

}  // namespace
}  // namespace wavoip

// How a download's outcome reads for the agent. What each answer means (the classification) is
// tested with the fetcher, which decides it (tests/fetch/fetch_classification_test.cpp).

#include "wavoip/core/fetch_outcome.hpp"

#include <gtest/gtest.h>

namespace wavoip {
namespace {

TEST(FetchOutcomeDescribe, ShortTextForTheAgent) {
  EXPECT_EQ(describe(FetchOutcome{FetchKind::not_ready, 404, "", "", "", 0}), "HTTP 404");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::not_ready, 200, "application/json", "", "", 0}),
            "HTTP 200 (application/json)");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::transient_error, 0, "timeout", "", "", 0}), "timeout");
  EXPECT_EQ(describe(FetchOutcome{FetchKind::transient_error, 0, "", "", "", 0}), "no answer");
}

TEST(FetchOutcomePlainFailure, HttpRefusalsInPlainWords) {
  auto plain = [](int status) {
    return plain_failure(FetchOutcome{FetchKind::permanent_error, status, "", "", "", 0});
  };
  EXPECT_EQ(plain(410), "WaVoIP no longer has this recording");
  EXPECT_EQ(plain(404), "WaVoIP does not have this recording (yet)");
  EXPECT_EQ(plain(403), "WaVoIP did not allow this helpdesk to download the recording");
  EXPECT_EQ(plain(401), "WaVoIP did not allow this helpdesk to download the recording");
  EXPECT_EQ(plain(400), "WaVoIP did not understand the request for this recording");
  EXPECT_EQ(plain(429), "WaVoIP asked this helpdesk to slow down");
  EXPECT_EQ(plain(451), "WaVoIP refused to send this recording");
  EXPECT_EQ(plain(503), "WaVoIP's server had a problem");
  EXPECT_EQ(plain(0), "Could not download the recording");
  for (int status : {400, 401, 403, 404, 410, 429, 451, 500, 503}) {
    EXPECT_EQ(plain(status).find("HTTP"), std::string::npos) << "the code belongs on the technical line: " << status;
  }
}

}  // namespace
}  // namespace wavoip

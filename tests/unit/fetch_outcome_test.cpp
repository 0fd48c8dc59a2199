// How a download's outcome reads for the agent. What each answer means (the classification) is
// tested with the fetcher, which decides it (tests/fetch/fetch_classification_test.cpp).

#include "wavoip/fetch_outcome.hpp"

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

}  // namespace
}  // namespace wavoip

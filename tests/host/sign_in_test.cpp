// The pure pieces of signing in: the throttle of failed sign-ins, the sessions, agent names, and
// reading the session cookie.
#include <gtest/gtest.h>

#include "agent_auth.hpp"
#include "agent_sessions.hpp"
#include "agent_store.hpp"
#include "sign_in_throttle.hpp"

namespace hdp::host {
namespace {

TEST(SignInThrottle, EachFailureLocksTheNameLongerUpToTheCap) {
  SignInThrottle throttle;
  EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.1", 0), 0);
  throttle.failed("ana", "192.0.2.1", 0);
  EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.9", 0), 1000) << "the name is locked from anywhere";
  EXPECT_EQ(throttle.wait_ms("bia", "192.0.2.1", 400), 600) << "the address is locked for any name";
  EXPECT_EQ(throttle.wait_ms("bia", "192.0.2.9", 0), 0);
  EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.9", 1000), 0);
  int64_t now = 1000;
  for (const int64_t expected : {2000, 4000, 8000, 16000}) {
    throttle.failed("ana", "192.0.2.1", now);
    EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.9", now), expected);
    now += expected;
  }
  for (int i = 0; i < 20; ++i) throttle.failed("ana", "192.0.2.1", now);
  EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.9", now), 5 * 60 * 1000) << "never more than 5 min";
}

TEST(SignInThrottle, SuccessClearsTheNameAndQuietAddressesAreForgotten) {
  SignInThrottle throttle;
  throttle.failed("ana", "192.0.2.1", 0);
  throttle.succeeded("ana");
  EXPECT_EQ(throttle.wait_ms("ana", "192.0.2.9", 0), 0);
  EXPECT_EQ(throttle.wait_ms("x", "192.0.2.1", 0), 1000) << "the address keeps its failure";
  throttle.failed("x", "192.0.2.1", 1000);
  throttle.failed("x", "192.0.2.1", 3000);
  EXPECT_GT(throttle.wait_ms("y", "192.0.2.1", 3000), 0);
  // 15 min without a failure: a fresh start (1 s again, not 8 s).
  const int64_t later = 3000 + 15 * 60 * 1000;
  EXPECT_EQ(throttle.wait_ms("y", "192.0.2.1", later), 0);
  throttle.failed("y", "192.0.2.1", later);
  EXPECT_EQ(throttle.wait_ms("z", "192.0.2.1", later), 1000);
}

TEST(SignInThrottle, ManyNamesStayBoundedAndTheOldestAreForgotten) {
  ThrottleLimits limits;
  limits.max_entries = 3;
  SignInThrottle throttle(limits);
  for (int i = 0; i < 5; ++i) throttle.failed("n" + std::to_string(i), "a" + std::to_string(i), i);
  EXPECT_EQ(throttle.wait_ms("n0", "other", 5), 0) << "forgotten";
  EXPECT_GT(throttle.wait_ms("n4", "other", 5), 0);
}

TEST(AgentSessions, FoundByTokenUntilIdleOrEndedAndEachHasItsOwnCsrfToken) {
  SessionLimits limits;
  limits.idle_ms = 1000;
  limits.lifetime_ms = 5000;
  AgentSessions sessions(limits);
  const auto a = sessions.create(1, "ana", 0);
  const auto b = sessions.create(2, "bia", 0);
  EXPECT_EQ(a.token.size(), 64u);
  EXPECT_NE(a.token, b.token);
  EXPECT_NE(a.session.csrf_token, b.session.csrf_token);
  EXPECT_NE(a.token, a.session.csrf_token);
  ASSERT_TRUE(sessions.find(a.token, 900));
  EXPECT_EQ(sessions.find(a.token, 900)->agent_name, "ana");
  EXPECT_FALSE(sessions.find("", 0));
  EXPECT_FALSE(sessions.find(a.token + "0", 0));
  EXPECT_FALSE(sessions.find(b.token, 1000)) << "idle for 1 s";
  EXPECT_TRUE(sessions.find(a.token, 1800)) << "used at 900";
  EXPECT_TRUE(sessions.find(a.token, 2700));
  EXPECT_TRUE(sessions.find(a.token, 3600));
  EXPECT_TRUE(sessions.find(a.token, 4500));
  EXPECT_FALSE(sessions.find(a.token, 5000)) << "past its lifetime, however used";
  const auto c = sessions.create(3, "caio", 6000);
  EXPECT_TRUE(sessions.end(c.token));
  EXPECT_FALSE(sessions.end(c.token));
  EXPECT_FALSE(sessions.find(c.token, 6000));
}

TEST(AgentSessions, TheLeastRecentlyUsedEndsWhenFull) {
  SessionLimits limits;
  limits.max_sessions = 2;
  AgentSessions sessions(limits);
  const auto a = sessions.create(1, "a", 0);
  const auto b = sessions.create(2, "b", 1);
  ASSERT_TRUE(sessions.find(a.token, 2));
  const auto c = sessions.create(3, "c", 3);
  EXPECT_EQ(sessions.size(), 2u);
  EXPECT_TRUE(sessions.find(a.token, 4));
  EXPECT_FALSE(sessions.find(b.token, 4));
  EXPECT_TRUE(sessions.find(c.token, 4));
}

TEST(AgentNames, LettersDigitsAndAFewMarks) {
  EXPECT_TRUE(is_valid_agent_name("ana"));
  EXPECT_TRUE(is_valid_agent_name("ana.silva@example.com"));
  EXPECT_TRUE(is_valid_agent_name(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_agent_name(""));
  EXPECT_FALSE(is_valid_agent_name(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_agent_name("-ana"));
  EXPECT_FALSE(is_valid_agent_name("ana silva"));
  EXPECT_FALSE(is_valid_agent_name("ana\n"));
  EXPECT_FALSE(is_valid_agent_name("\"ana\""));
}

TEST(SessionCookie, FoundAmongOtherCookiesAndHeaders) {
  HttpRequest request;
  request.headers = {{"cookie", "a=1; hdp_session=abc ;b=2"}, {"Cookie", "hdp_session=second"}};
  EXPECT_EQ(cookie_value(request, "hdp_session"), "abc");
  EXPECT_EQ(cookie_value(request, "b"), "2");
  EXPECT_EQ(cookie_value(request, "hdp"), "");
  request.headers = {{"Cookie", "xhdp_session=1; hdp_session"}};
  EXPECT_EQ(cookie_value(request, "hdp_session"), "");
  EXPECT_EQ(header_value(request, "COOKIE"), "xhdp_session=1; hdp_session");
}

TEST(ConstantTimeEqual, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

}  // namespace
}  // namespace hdp::host

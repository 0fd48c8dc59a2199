// Several hdp-stub-host processes on one PostgreSQL database (--database) and one shared
// attachments directory (--attachments-dir), as nodes behind a load balancer: what one node
// writes the other serves through its JSON API, a sign-in through one node is valid on the other,
// and one attachment key sent through both nodes is attached once, with one stored file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "shared_postgres.hpp"  // tests/support
#include "test_support.hpp"

namespace hdp::test {
namespace {

class TwoNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(add_agent_to_database(uri, shared), 0) << testsupport::read_file(shared.path() / "agent-add.log");
    for (auto* node : {&a, &b}) {
      *node = std::make_unique<HostProcess>(
          stub_host({"--plugin", probe_plugin_path(), "--database", uri, "--attachments-dir", attachments.string()}));
      ASSERT_TRUE((*node)->started()) << (*node)->log();
    }
  }

  int64_t upsert(HostProcess& node, const std::string& query) {
    const auto v = http.post(node.url("/probe/message?" + query)).json();
    EXPECT_EQ(json_int(v, "status"), 0) << query << node.log();
    return json_int(v, "message_id");
  }
  boost::json::array attach_results(HostProcess& node) {
    return http.get(node.url("/probe/attach-results")).json().at("results").as_array();
  }

  std::string uri = testsupport::shared_postgres().uri(testsupport::new_postgres_database("host_nodes"));
  TempDir shared;
  std::filesystem::path attachments = shared.path() / "attachments";
  std::unique_ptr<HostProcess> a;
  std::unique_ptr<HostProcess> b;
  HttpClient http;
};

TEST_F(TwoNodes, ASignInThroughOneNodeIsValidOnTheOther) {
  const auto session = testsupport::sign_in(a->base_url(), testsupport::kTestAgent, testsupport::kTestAgentPassword);
  ASSERT_TRUE(session) << a->log();
  const auto on_b = testsupport::http_request("GET", b->url("/api/session"), {}, session->headers());
  ASSERT_EQ(on_b.status, 200) << b->log();
  EXPECT_EQ(on_b.json().at("agent").as_string(), testsupport::kTestAgent);
  EXPECT_EQ(on_b.json().at("csrf_token").as_string(), session->csrf_token);
  // Signing out through B ends the session on A too.
  auto json_headers = session->headers();
  json_headers.emplace_back("Content-Type: application/json");
  EXPECT_EQ(testsupport::http_request("POST", b->url("/logout"), {}, json_headers).status, 200);
  EXPECT_EQ(testsupport::http_request("GET", a->url("/api/conversations"), {}, session->headers()).status, 401);
}

TEST_F(TwoNodes, BothNodesServeTheSameConversationsAndMessages) {
  const int64_t id = upsert(*a, "key=wavoip:n1&direction=1&call_status=ACTIVE");
  // The same key through the other node is the same message; the contact moves it.
  EXPECT_EQ(upsert(*b, "key=wavoip:n1&contact=5511999990000&call_status=ENDED&duration_s=7"), id);
  // /2 writes go through B's writer thread.
  const auto ops = http.post(b->url("/probe/ops"), "upsert key=wavoip:n2&contact=5511999990000&recording=1\n");
  ASSERT_EQ(ops.status, 200) << b->log();
  ASSERT_TRUE(eventually(
      [&] { return http.get(b->url("/probe/message-results")).json().at("results").as_array().size() == 1; }));

  const auto session = testsupport::sign_in(b->base_url(), testsupport::kTestAgent, testsupport::kTestAgentPassword);
  ASSERT_TRUE(session);
  for (auto* node : {a.get(), b.get()}) {
    const auto list = testsupport::http_request("GET", node->url("/api/conversations"), {}, session->headers());
    ASSERT_EQ(list.status, 200) << node->log();
    const auto body = list.json();
    const auto& conversations = body.at("conversations").as_array();
    ASSERT_EQ(conversations.size(), 1U);
    EXPECT_EQ(conversations[0].at("contact").as_string(), "5511999990000");
    EXPECT_EQ(conversations[0].at("message_count").as_int64(), 2);
    const auto m =
        testsupport::http_request("GET", node->url("/api/messages/" + std::to_string(id)), {}, session->headers())
            .json();
    EXPECT_EQ(m.at("call_status").as_string(), "ENDED");
    EXPECT_EQ(m.at("duration_s").as_int64(), 7);
    EXPECT_EQ(m.at("direction").as_string(), "incoming");
    const auto n2 =
        testsupport::http_request("GET", node->url("/api/messages?external_key=wavoip%3An2"), {}, session->headers())
            .json();
    EXPECT_EQ(n2.at("recording_status").as_string(), "waiting");
  }
}

TEST_F(TwoNodes, OneIdempotencyKeyThroughBothNodesIsAttachedOnce) {
  const int64_t id = upsert(*a, "key=wavoip:att&contact=5511");
  std::string bytes;
  for (int i = 0; i < 30000; ++i) bytes += static_cast<char>(i * 13 % 256);
  const std::string attach = "/probe/attach?message_id=" + std::to_string(id) + "&key=call-att&name=call.mp3&times=1";
  ASSERT_EQ(http.post(a->url(attach), bytes).status, 200);
  ASSERT_EQ(http.post(b->url(attach), bytes).status, 200);
  ASSERT_TRUE(eventually([&] { return attach_results(*a).size() == 1 && attach_results(*b).size() == 1; }))
      << a->log() << b->log();
  const auto from_a = attach_results(*a)[0];
  const auto from_b = attach_results(*b)[0];
  EXPECT_EQ(from_a.at("status").as_int64(), 0);
  EXPECT_EQ(from_b.at("status").as_int64(), 0);
  EXPECT_EQ(from_a.at("attachment_id").as_int64(), from_b.at("attachment_id").as_int64());
  EXPECT_EQ(from_a.at("already_attached").as_int64() + from_b.at("already_attached").as_int64(), 1);

  const auto session = testsupport::sign_in(a->base_url(), testsupport::kTestAgent, testsupport::kTestAgentPassword);
  ASSERT_TRUE(session);
  const std::string file_path = "/api/attachments/" + std::to_string(from_a.at("attachment_id").as_int64()) + "/file";
  for (auto* node : {a.get(), b.get()}) {
    const auto m =
        testsupport::http_request("GET", node->url("/api/messages/" + std::to_string(id)), {}, session->headers())
            .json();
    EXPECT_EQ(m.at("attachments").as_array().size(), 1U);
    const auto file = testsupport::http_request("GET", node->url(file_path), {}, session->headers());
    EXPECT_EQ(file.status, 200);
    EXPECT_TRUE(file.body == bytes);
  }
  // One stored file in the shared directory, none in the nodes' own data directories.
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(attachments)) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1U);
  EXPECT_FALSE(std::filesystem::exists(a->data_dir() / "attachments" / "org.hdp.test.probe"));
}

}  // namespace
}  // namespace hdp::test

// The helpdesk side of the real hdp-stub-host, driven by the probe plugin: call messages
// (idempotent upserts, the contact arriving later, recording status) and attachments
// (asynchronous, idempotent by key, the stored bytes served back), as the JSON API shows them.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

class ProbeHelpdesk : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host.started()) << host.log();
    ASSERT_EQ(sign_in(http, host).status, 200) << host.log();
  }

  int64_t upsert(const std::string& query) {
    const auto v = http.post(host.url("/probe/message?" + query)).json();
    EXPECT_EQ(json_int(v, "status"), 0) << query;
    return json_int(v, "message_id");
  }
  boost::json::value message(int64_t id) {
    const auto r = http.get(host.url("/api/messages/" + std::to_string(id)));
    EXPECT_EQ(r.status, 200);
    return r.json();
  }
  boost::json::array attach_results() {
    return http.get(host.url("/probe/attach-results")).json().at("results").as_array();
  }

  HostProcess host{with_agent(probe_host())};
  HttpClient http;
};

TEST_F(ProbeHelpdesk, UpsertIsIdempotentAndTheContactMovesTheCall) {
  const int64_t id = upsert("key=wavoip:abc&direction=1&call_status=ACTIVE");
  EXPECT_GT(id, 0);
  EXPECT_EQ(upsert("key=wavoip:abc"), id);
  auto m = message(id);
  EXPECT_TRUE(m.at("contact").is_null());
  EXPECT_EQ(m.at("direction").as_string(), "incoming");
  const int64_t unknown_conversation = m.at("conversation_id").as_int64();

  EXPECT_EQ(upsert("key=wavoip:abc&contact=5511999990000&call_status=ENDED&duration_s=42"), id);
  m = message(id);
  EXPECT_EQ(m.at("contact").as_string(), "5511999990000");
  EXPECT_EQ(m.at("call_status").as_string(), "ENDED");
  EXPECT_EQ(m.at("duration_s").as_int64(), 42);
  EXPECT_EQ(m.at("direction").as_string(), "incoming");  // kept
  EXPECT_NE(m.at("conversation_id").as_int64(), unknown_conversation);

  const auto conversations = http.get(host.url("/api/conversations")).json().at("conversations").as_array();
  ASSERT_EQ(conversations.size(), 1U);  // the empty unknown-contact conversation is gone
  EXPECT_EQ(conversations[0].at("contact").as_string(), "5511999990000");
  const auto listed =
      http.get(host.url("/api/conversations/" + std::to_string(m.at("conversation_id").as_int64()) + "/messages"))
          .json();
  ASSERT_EQ(listed.at("messages").as_array().size(), 1U);
  EXPECT_EQ(listed.at("messages").as_array()[0].at("id").as_int64(), id);

  const auto by_key = http.get(host.url("/api/messages?external_key=wavoip%3Aabc"));
  EXPECT_EQ(by_key.status, 200);
  EXPECT_EQ(json_int(by_key.json(), "id"), id);
  EXPECT_EQ(http.get(host.url("/api/messages?external_key=wavoip:abc&plugin_id=org.hdp.test.probe")).status, 200);
  EXPECT_EQ(http.get(host.url("/api/messages?external_key=nope")).status, 404);
  EXPECT_EQ(http.get(host.url("/api/messages")).status, 400);
}

TEST_F(ProbeHelpdesk, BadMessagesAreRefused) {
  EXPECT_EQ(json_int(http.post(host.url("/probe/message?key=")).json(), "status"), -1);
  EXPECT_EQ(json_int(http.post(host.url("/probe/message?key=k&contact=not-digits")).json(), "status"), -1);
  EXPECT_EQ(json_int(http.post(host.url("/probe/message?key=" + std::string(256, 'k'))).json(), "status"), -1);
}

TEST_F(ProbeHelpdesk, RecordingStatusAndReasonReachTheAgent) {
  const int64_t id = upsert("key=wavoip:r&contact=551100");
  EXPECT_EQ(json_int(http.post(host.url("/probe/recording?message_id=" + std::to_string(id) +
                                        "&status=4&reason=No+recording+after+4+h"))
                         .json(),
                     "status"),
            0);
  const auto m = message(id);
  EXPECT_EQ(m.at("recording_status").as_string(), "failed");
  EXPECT_EQ(m.at("recording_reason").as_string(), "No recording after 4 h");
  EXPECT_EQ(json_int(http.post(host.url("/probe/recording?message_id=99999&status=3")).json(), "status"), -10);
}

TEST_F(ProbeHelpdesk, AttachmentsAreIdempotentAndTheBytesComeBack) {
  const int64_t id = upsert("key=wavoip:att&contact=5511");
  std::string bytes;
  for (int i = 0; i < 40000; ++i) bytes += static_cast<char>(i * 7 % 256);
  const auto started = http.post(host.url("/probe/attach?message_id=" + std::to_string(id) +
                                          "&key=call-att&name=call.mp3&mime=audio/mpeg&times=2"),
                                 bytes)
                           .json();
  const auto& jobs = started.at("jobs").as_array();
  ASSERT_EQ(jobs.size(), 2U);
  EXPECT_EQ(jobs[0].at("status").as_int64(), 0);
  EXPECT_EQ(jobs[1].at("status").as_int64(), 0);
  EXPECT_NE(jobs[0].at("job").as_int64(), jobs[1].at("job").as_int64());
  EXPECT_EQ(json_int(started, "results_during_call"), 0);  // never inside attach_file

  ASSERT_TRUE(eventually([&] { return attach_results().size() == 2; }));
  const auto results = attach_results();
  EXPECT_EQ(results[0].at("status").as_int64(), 0);
  EXPECT_EQ(results[1].at("status").as_int64(), 0);
  EXPECT_EQ(results[0].at("already_attached").as_int64() + results[1].at("already_attached").as_int64(), 1);
  const int64_t attachment = results[0].at("attachment_id").as_int64();
  EXPECT_EQ(results[1].at("attachment_id").as_int64(), attachment);

  const auto m = message(id);
  ASSERT_EQ(m.at("attachments").as_array().size(), 1U);
  const auto file = http.get(host.url("/api/attachments/" + std::to_string(attachment) + "/file"));
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.headers.at("content-type"), "audio/mpeg");
  EXPECT_EQ(file.headers.at("content-length"), std::to_string(bytes.size()));
  EXPECT_TRUE(file.body == bytes);

  // One stored file: the duplicate's copy was removed.
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(host.data_dir() / "attachments")) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1U);

  // Attaching the same key later completes at once with the same attachment.
  http.post(host.url("/probe/attach?message_id=" + std::to_string(id) + "&key=call-att&times=1"), "other");
  ASSERT_TRUE(eventually([&] { return attach_results().size() == 3; }));
  EXPECT_EQ(attach_results()[2].at("already_attached").as_int64(), 1);
  EXPECT_EQ(attach_results()[2].at("attachment_id").as_int64(), attachment);
}

TEST_F(ProbeHelpdesk, AttachingToAnUnknownMessageCompletesWithNotFound) {
  http.post(host.url("/probe/attach?message_id=4242&key=k1&times=1"), "x");
  ASSERT_TRUE(eventually([&] { return attach_results().size() == 1; }));
  EXPECT_EQ(attach_results()[0].at("status").as_int64(), -10);
}

TEST_F(ProbeHelpdesk, InvalidAttachmentsAreRefusedWithoutAJob) {
  const int64_t id = upsert("key=wavoip:inv");
  const auto bad_name =
      http.post(host.url("/probe/attach?message_id=" + std::to_string(id) + "&key=k&name=..%2Fescape.mp3&times=1"), "x")
          .json();
  EXPECT_EQ(bad_name.at("jobs").as_array()[0].at("status").as_int64(), -1);
  const auto no_key =
      http.post(host.url("/probe/attach?message_id=" + std::to_string(id) + "&key=&times=1"), "x").json();
  EXPECT_EQ(no_key.at("jobs").as_array()[0].at("status").as_int64(), -1);
  EXPECT_EQ(json_int(http.get(host.url("/probe/attach-results")).json(), "pending"), 0);
}

TEST_F(ProbeHelpdesk, InboxPageAndUnknownIds) {
  const auto page = http.get(host.url("/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<audio controls"), std::string::npos);
  EXPECT_EQ(http.get(host.url("/api/messages/999")).status, 404);
  EXPECT_EQ(http.get(host.url("/api/attachments/999/file")).status, 404);
  EXPECT_EQ(http.get(host.url("/api/conversations/999/messages")).status, 404);
}

}  // namespace
}  // namespace hdp::test

// The download guards as the plugin wires them, end to end: the real host, the built plugin, a
// real storage server on loopback (so these tests run in the development mode, which allows
// http to loopback and nothing else). The fetcher's own tests (tests/fetch) check each guard
// against every address form; these check that the plugin's configuration reaches them and what
// the agent sees when a guard stops a download.
#include "raw_http.hpp"  // tests/support
#include "security_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

namespace json = boost::json;
using wavoip::test::ScriptedResponse;

ScriptedResponse audio(size_t bytes, const std::string& type = "audio/mpeg") {
  ScriptedResponse r;
  r.status = 200;
  r.content_type = type;
  r.body = e2e::recording_bytes(bytes);
  return r;
}

ScriptedResponse redirect_to(const std::string& location) {
  ScriptedResponse r;
  r.status = 302;
  r.content_type = "text/plain";
  r.body = "moved";
  r.location = location;
  return r;
}

std::string ready(const std::string& call_id, const std::string& url) {
  return json::serialize(
      json::object{{"type", "RECORD"}, {"whatsapp_call_id", call_id}, {"record_status", "READY"}, {"record_url", url}});
}

// What the agent reads: the reason, then the technical detail on its own line.
std::string reason(const std::optional<json::object>& message) {
  if (!message) return "(no message)";
  return std::string(message->at("recording_reason").as_string()) + "\n" +
         std::string(message->at("recording_detail").as_string());
}

using DownloadGuards = e2e::PluginHost;

TEST_F(DownloadGuards, ARedirectFromTheAllowedStorageToAForbiddenAddressFailsTheCall) {
  // In the development mode loopback is allowed, so the canary would be reachable through
  // 0.0.0.0 (Linux routes it to the local host) if the guard did not stop it.
  wavoip::test::TestHttpServer canary;
  canary.set_response("/rec", audio(100));
  const std::vector<std::pair<std::string, std::string>> targets = {
      {"metadata", "http://169.254.169.254/latest/meta-data/"},
      {"private", "http://10.0.0.1/rec.mp3"},
      {"decimal", "http://167772161/rec.mp3"},
      {"mapped", "http://[::ffff:10.0.0.1]/rec.mp3"},
      {"unique-local", "http://[fd00::1]/rec.mp3"},
      {"zero", "http://0.0.0.0:" + std::to_string(canary.port()) + "/rec"},
      {"public-plain-http", "http://8.8.8.8/rec.mp3"},
      {"file", "file:///etc/passwd"},
  };
  for (const auto& [name, target] : targets) storage_->set_response("/to-" + name, redirect_to(target));
  start_host();
  for (const auto& [name, target] : targets) {
    ASSERT_EQ(post_webhook(ready("redir-" + name, storage_->url("/to-" + name))).status, 202);
  }
  for (const auto& [name, target] : targets) {
    SCOPED_TRACE(target);
    const std::string id = "redir-" + name;
    ASSERT_TRUE(wait_for_status(id, "failed")) << recording_status(id);
    EXPECT_EQ(storage_->hits("/to-" + name), 1u);
    EXPECT_NE(reason(message(id)).find("not allowed"), std::string::npos) << reason(message(id));
    EXPECT_EQ(count_in_log("[WaVoIP] Download of call " + id + ": permanent_error"), 1u);
    EXPECT_EQ(attachment_count(id), 0u);
  }
  EXPECT_EQ(canary.connections(), 0u);
}

TEST_F(DownloadGuards, AtMostThreeRedirectsAreFollowed) {
  storage_->set_response("/a1", redirect_to("/a2"));
  storage_->set_response("/a2", redirect_to(storage_->url("/a3")));
  storage_->set_response("/a3", redirect_to("/a-rec"));
  storage_->set_response("/a-rec", audio(3000));
  storage_->set_response("/b1", redirect_to("/b2"));
  storage_->set_response("/b2", redirect_to("/b3"));
  storage_->set_response("/b3", redirect_to("/b4"));
  storage_->set_response("/b4", redirect_to("/b-rec"));
  storage_->set_response("/b-rec", audio(3000));
  start_host();
  ASSERT_EQ(post_webhook(ready("three", storage_->url("/a1"))).status, 202);
  ASSERT_EQ(post_webhook(ready("four", storage_->url("/b1"))).status, 202);
  EXPECT_TRUE(wait_for_status("three", "attached")) << reason(message("three"));
  ASSERT_TRUE(wait_for_status("four", "failed")) << recording_status("four");
  EXPECT_NE(reason(message("four")).find("too many redirects (more than 3)"), std::string::npos)
      << reason(message("four"));
  // The fourth redirect (the answer of /b4) is the one not followed.
  EXPECT_EQ(storage_->hits("/b4"), 1u);
  EXPECT_EQ(storage_->hits("/b-rec"), 0u);
}

TEST_F(DownloadGuards, OnlyAudioIsAttachedAndUnderAFileNameThePluginBuilds) {
  storage_->set_response("/page", audio(2000, "text/html"));
  storage_->set_response("/odd", audio(4000, "audio/mpeg; name=\"../../evil.sh\""));
  start_host();
  ASSERT_EQ(post_webhook(ready("html-1", storage_->url("/page"))).status, 202);
  ASSERT_EQ(post_webhook(ready("odd-1", storage_->url("/odd"))).status, 202);
  ASSERT_TRUE(wait_for_status("odd-1", "attached"));
  auto attachments = message("odd-1")->at("attachments").as_array();
  ASSERT_EQ(attachments.size(), 1u);
  EXPECT_EQ(attachments[0].at("file_name"), "call-odd-1.mp3");
  // Not audio: not ready yet, nothing attached, the call keeps waiting for a later poll.
  ASSERT_TRUE(testsupport::eventually([&] { return storage_->hits("/page") == 1; }));
  ASSERT_TRUE(wait_for_status("html-1", "waiting"));
  EXPECT_EQ(attachment_count("html-1"), 0u);
}

TEST_F(DownloadGuards, ARecordingOverTheSizeCapIsNeverAttached) {
  ScriptedResponse announced = audio(200000);
  ScriptedResponse unannounced = audio(200000);
  unannounced.send_content_length = false;  // only the write callback can count it
  storage_->set_response("/big-announced", announced);
  storage_->set_response("/big-unannounced", unannounced);
  storage_->set_response("/fits", audio(60000));
  start_host({{"max_recording_bytes", 65536}});
  ASSERT_EQ(post_webhook(ready("cap-1", storage_->url("/big-announced"))).status, 202);
  ASSERT_EQ(post_webhook(ready("cap-2", storage_->url("/big-unannounced"))).status, 202);
  ASSERT_EQ(post_webhook(ready("cap-3", storage_->url("/fits"))).status, 202);
  for (const char* id : {"cap-1", "cap-2"}) {
    SCOPED_TRACE(id);
    ASSERT_TRUE(wait_for_status(id, "failed")) << recording_status(id);
    EXPECT_NE(reason(message(id)).find("larger than"), std::string::npos) << reason(message(id));
    EXPECT_EQ(attachment_count(id), 0u);
  }
  EXPECT_TRUE(wait_for_status("cap-3", "attached"));
  // No partial file is left behind.
  const auto downloads = dir_->path() / "host" / "plugins" / "com.wavoip.recordings" / "downloads";
  EXPECT_TRUE(std::filesystem::is_empty(downloads));
}

TEST_F(DownloadGuards, AStalledDownloadIsAbandonedAndRetriedLater) {
  ScriptedResponse trickle = audio(50000);
  trickle.chunk_bytes = 100;
  trickle.chunk_delay = std::chrono::milliseconds(400);
  storage_->set_response("/slow", trickle);
  start_host({{"low_speed_limit_bytes", 10000}, {"low_speed_time_s", 1}});
  ASSERT_EQ(post_webhook(ready("stall-1", storage_->url("/slow"))).status, 202);
  ASSERT_TRUE(testsupport::eventually([&] { return count_in_log("Download of call stall-1: transient_error") == 1; }))
      << host_->log();
  EXPECT_GE(count_in_log("download stalled"), 1u);
  EXPECT_TRUE(wait_for_status("stall-1", "waiting"));
  EXPECT_EQ(attachment_count("stall-1"), 0u);
}

// A loopback listener that never accepts and whose accept queue is full: Linux drops further
// SYNs, so a connect to it neither succeeds nor fails until the client gives up.
class UnansweredListener {
 public:
  UnansweredListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    ::listen(fd_, 0);
    socklen_t length = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    for (int i = 0; i < 4; ++i) {  // fill the queue
      int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      ::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address));
      fillers_.push_back(client);
    }
  }
  ~UnansweredListener() {
    for (int fd : fillers_) ::close(fd);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(DownloadGuards, AConnectionThatIsNeverAnsweredTimesOut) {
  UnansweredListener listener;
  start_host({{"connect_timeout_ms", 300}});
  ASSERT_EQ(post_webhook(ready("connect-1", "http://127.0.0.1:" + std::to_string(listener.port()) + "/rec")).status,
            202);
  ASSERT_TRUE(testsupport::eventually([&] { return count_in_log("Download of call connect-1: transient_error") == 1; }))
      << host_->log();
  EXPECT_GE(count_in_log("timed out"), 1u);
  EXPECT_TRUE(wait_for_status("connect-1", "waiting"));
}

TEST_F(DownloadGuards, TheDevelopmentModeSaysSoLoudlyAtStart) {
  start_host();  // the fixture's configuration turns it on for the loopback storage server
  EXPECT_EQ(count_in_log("DEVELOPMENT MODE: allow_insecure_loopback is on"), 1u);
}

TEST_F(DownloadGuards, WithoutTheDevelopmentModeALoopbackBaseUrlRefusesThePlugin) {
  testsupport::HostOptions options;
  options.host_binary = HDP_STUB_HOST_PATH;
  options.plugins = {WAVOIP_PLUGIN_PATH};
  options.plugin_config_json = json::serialize(json::object{{"base_url", storage_->url("/")}});
  options.data_dir = dir_->path() / "refused";
  testsupport::HostProcess refused(options);
  EXPECT_FALSE(refused.start(std::chrono::seconds(10)));
  EXPECT_NE(refused.log().find("config key 'base_url'"), std::string::npos) << refused.log();
}

}  // namespace

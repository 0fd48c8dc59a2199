// The stub host with the WaVoIP plugin and a local recording server, for end-to-end tests.
#pragma once

#include "eventually.hpp"    // tests/support
#include "host_process.hpp"  // tests/support
#include "http_client.hpp"   // tests/support
#include "temp_dir.hpp"      // tests/support
#include "test_http_server.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace e2e {

// The plugin's id, as the host names its data directory and its timers.
inline constexpr const char* kPluginId = "com.wavoip.recordings";

// A recording body of `size` bytes that is recognisable (not all zeros).
std::string recording_bytes(size_t size, char seed = 'a');

// What the local storage server answers for a recording: 200 with `body`.
wavoip::test::ScriptedResponse audio(const std::string& body, const std::string& content_type = "audio/mpeg");

// Webhook bodies as WaVoIP sends them (session 789). A RECORD update, with `record_url` when one
// is given.
std::string record_event(const std::string& call_id, const std::string& status, const std::string& record_url = "");
// A CALL event from 5511999990001 to 5511888880002, with `duration` (seconds) when >= 0.
std::string call_event(const std::string& call_id, const std::string& action, const std::string& status,
                       const std::string& direction = "INCOMING", long long duration = -1);
// The incoming call's UPDATE to ENDED after `duration` seconds.
std::string call_ended(const std::string& call_id, long long duration);

class PluginHost : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the host with the plugin. `config_overrides` is merged into the default test
  // configuration (base_url on the local storage server, loopback dev mode).
  void start_host(const boost::json::object& config_overrides = {}, bool virtual_clock = false,
                  long long virtual_start_ms = 0);
  void restart_host();

  testsupport::HttpResponse post_webhook(const std::string& json, const std::string& path = "/webhooks/wavoip",
                                         const std::vector<std::string>& headers = {"Content-Type: application/json"});

  // The host's view of the call's message (GET /api/messages?external_key=wavoip:<id>), or
  // nullopt when it does not exist.
  std::optional<boost::json::object> message(const std::string& call_id);
  std::string recording_status(const std::string& call_id);
  size_t attachment_count(const std::string& call_id);
  // The bytes of the call's first attachment, downloaded from the host.
  testsupport::HttpResponse attachment_file(const std::string& call_id);
  bool wait_for_status(const std::string& call_id, const std::string& status,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15));
  size_t count_in_log(const std::string& needle) const;

  // Under the virtual clock: the host's wall time, moving it forward to `wall`, and the timers
  // the plugin has armed right now (GET /__test/timers; -1 when the plugin is not listed).
  long long wall_ms();
  void advance_to(long long wall);
  long long plugin_timers();

  std::unique_ptr<testsupport::TempDir> dir_;
  std::unique_ptr<wavoip::test::TestHttpServer> storage_;
  std::unique_ptr<testsupport::HostProcess> host_;
  boost::json::object config_;
  bool virtual_clock_ = false;
  long long virtual_start_ms_ = 0;
};

}  // namespace e2e

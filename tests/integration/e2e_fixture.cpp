#include "e2e_fixture.hpp"

#include <thread>

namespace e2e {

namespace json = boost::json;

std::string recording_bytes(size_t size, char seed) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((seed + i * 7) % 256);
  return out;
}

wavoip::test::ScriptedResponse audio(const std::string& body, const std::string& content_type) {
  wavoip::test::ScriptedResponse r;
  r.status = 200;
  r.content_type = content_type;
  r.body = body;
  return r;
}

std::string record_event(const std::string& call_id, const std::string& status, const std::string& record_url) {
  json::object o{{"type", "RECORD"},
                 {"action", "UPDATE"},
                 {"whatsapp_call_id", call_id},
                 {"id_session", 789},
                 {"record_status", status}};
  if (!record_url.empty()) o["record_url"] = record_url;
  return json::serialize(o);
}

std::string call_event(const std::string& call_id, const std::string& action, const std::string& status,
                       const std::string& direction, long long duration) {
  json::object o{{"type", "CALL"},    {"action", action},          {"whatsapp_call_id", call_id},
                 {"id_session", 789}, {"caller", "5511999990001"}, {"receiver", "5511888880002"},
                 {"status", status},  {"direction", direction}};
  if (duration >= 0) o["duration"] = duration;
  return json::serialize(o);
}

std::string call_ended(const std::string& call_id, long long duration) {
  return call_event(call_id, "UPDATE", "ENDED", "INCOMING", duration);
}

void PluginHost::SetUp() {
  dir_ = std::make_unique<testsupport::TempDir>("wavoip-e2e");
  storage_ = std::make_unique<wavoip::test::TestHttpServer>();
}

void PluginHost::TearDown() {
  if (host_ && host_->running()) {
    int status = host_->stop();
    EXPECT_EQ(status, 0) << "the host did not stop cleanly; its log:\n" << host_->log();
  }
  if (HasFailure() && host_) std::cerr << "---- host log ----\n" << host_->log() << "\n";
  host_.reset();
  storage_.reset();
  dir_.reset();
}

void PluginHost::start_host(const json::object& config_overrides, bool virtual_clock, long long virtual_start_ms) {
  config_ = json::object{
      {"base_url", storage_->url("/")}, {"allow_insecure_loopback", true}, {"poll", json::object{{"seed", 7}}}};
  // Under the virtual clock the store's work must finish at the virtual instant that started it:
  // the plugin writes on the loop (the host runs what a timer hands to the main thread before
  // moving time on), where a writer thread would finish at some later, real time.
  if (virtual_clock) config_["store_writer"] = "loop";
  for (const auto& [key, value] : config_overrides) config_[key] = value;
  virtual_clock_ = virtual_clock;
  virtual_start_ms_ = virtual_start_ms;
  restart_host();
}

void PluginHost::restart_host() {
  testsupport::HostOptions options;
  options.host_binary = HDP_STUB_HOST_PATH;
  options.plugins = {WAVOIP_PLUGIN_PATH};
  options.plugin_config_json = json::serialize(config_);
  options.data_dir = dir_->path() / "host";
  options.virtual_clock = virtual_clock_;
  options.virtual_clock_start_ms = virtual_start_ms_;
  host_ = std::make_unique<testsupport::HostProcess>(options);
  ASSERT_TRUE(host_->start()) << "the host did not start; its log:\n" << host_->log();
}

testsupport::HttpResponse PluginHost::post_webhook(const std::string& body, const std::string& path,
                                                   const std::vector<std::string>& headers) {
  return testsupport::http_request("POST", host_->base_url() + path, body, headers);
}

std::optional<json::object> PluginHost::message(const std::string& call_id) {
  auto response = host_->agent_get("/api/messages?external_key=wavoip%3A" + call_id);
  if (response.status != 200) return std::nullopt;
  return json::parse(response.body).as_object();
}

std::string PluginHost::recording_status(const std::string& call_id) {
  auto m = message(call_id);
  if (!m) return "(no message)";
  return std::string(m->at("recording_status").as_string());
}

size_t PluginHost::attachment_count(const std::string& call_id) {
  auto m = message(call_id);
  return m ? m->at("attachments").as_array().size() : 0;
}

testsupport::HttpResponse PluginHost::attachment_file(const std::string& call_id) {
  auto m = message(call_id);
  if (!m || m->at("attachments").as_array().empty()) return {};
  std::string url(m->at("attachments").as_array()[0].as_object().at("url").as_string());
  return host_->agent_get(url);
}

bool PluginHost::wait_for_status(const std::string& call_id, const std::string& status,
                                 std::chrono::milliseconds timeout) {
  return testsupport::eventually([&] { return recording_status(call_id) == status; }, timeout);
}

long long PluginHost::wall_ms() {
  auto r = testsupport::http_get(host_->base_url() + "/__test/clock");
  return json::parse(r.body).at("wall_ms").as_int64();
}

void PluginHost::advance_to(long long wall) {
  const long long now = wall_ms();
  ASSERT_GE(wall, now);
  if (wall > now) {
    ASSERT_TRUE(host_->advance_ms(wall - now));
  }
}

long long PluginHost::plugin_timers() {
  auto r = testsupport::http_get(host_->base_url() + "/__test/timers");
  const json::value timers = json::parse(r.body);
  for (const auto& p : timers.at("plugins").as_array()) {
    if (p.at("id") == kPluginId) return p.at("armed").as_int64();
  }
  return -1;
}

size_t PluginHost::count_in_log(const std::string& needle) const {
  const std::string log = host_->log();
  size_t count = 0;
  for (size_t pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + needle.size())) ++count;
  return count;
}

}  // namespace e2e

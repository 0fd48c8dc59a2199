// libFuzzer target: the whole webhook path of the plugin, entered the way a host enters it. The
// plugin sources are linked in statically; the in-process FakeHost (tests/support) creates the plugin through
// hdp_plugin_entry_v1, runs init and start, and calls the registered route callbacks.
//
// Input (text, so that seeds are readable): five lines and the body.
//   line 1  selector: first byte; bit 0 = the keyed plugin (else the open one), bit 1 = the
//           operator's retry route (else the webhook route): "0" open webhook, "1" keyed
//           webhook, "2" open retry, "3" keyed retry
//   line 2  path after /webhooks/wavoip (webhook route only), e.g. "/fuzz-key-0123456789abcdef"
//   line 3  query string without '?'
//   line 4  Content-Type ("" = none)
//   line 5  X-Webhook-Token ("" = none)
//   rest    body
//
// Findings: any crash or sanitizer report, no answer or two answers, a 5xx, an answer that is not
// JSON, a 401 that says more than "unauthorized".
#include "fake_host.hpp"  // tests/support
#include "temp_dir.hpp"   // tests/support

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unistd.h>

extern "C" const hdp_plugin_entry_t hdp_plugin_entry_v1;

namespace {

// Downloads go to "localhost" only: libcurl answers that name itself, without a resolver thread or a
// DNS query, and the address policy refuses the loopback connection before a socket exists. A name
// that needs DNS would make each READY depend on the machine's resolver, and glibc's per-thread
// resolver state, still held by a lookup in flight, reads as a leak to LeakSanitizer.
constexpr const char* kKeyedConfig =
    R"({"webhook_keys":[{"key":"fuzz-key-0123456789abcdef","inbox":"sales"},{"key":"other.key_~-0123456789"}],)"
    R"("base_url":"https://localhost/","allowed_hosts":["localhost"],"max_body_bytes":16384,"store_writer":"loop"})";
constexpr const char* kOpenConfig =
    R"({"base_url":"https://localhost/","allowed_hosts":["localhost"],"max_json_depth":8,"store_writer":"loop"})";
// The store grows with every accepted delivery: start over now and then.
constexpr unsigned kRestartEvery = 4096;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

struct Instance {
  Instance(const char* config, const std::filesystem::path& dir) : data_dir(dir), host(config, dir.string()) {
    std::filesystem::create_directories(dir);
    host.clock_step_us = 1000;  // every wall clock read moves time on by 1 ms
    plugin = hdp_plugin_entry_v1.create_plugin(host.host());
    if (plugin == nullptr) finding("create_plugin failed");
    if (plugin->init(plugin) != HDP_OK) finding("init failed");
    if (plugin->start(plugin) != HDP_OK) finding("start failed");
  }
  ~Instance() {
    plugin->stop(plugin);
    plugin->destroy(plugin);
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  }
  std::filesystem::path data_dir;
  testsupport::FakeHost host;
  const hdp_plugin_t* plugin = nullptr;
};

struct State {
  State() {
    if (!hdp_plugin_entry_v1.init("")) finding("entry init failed");
    start();
  }
  ~State() {
    keyed.reset();
    open.reset();
  }
  void start() {
    keyed = std::make_unique<Instance>(kKeyedConfig, root.path() / ("keyed-" + std::to_string(generation)));
    open = std::make_unique<Instance>(kOpenConfig, root.path() / ("open-" + std::to_string(generation)));
    ++generation;
  }
  void restart() {
    keyed.reset();
    open.reset();
    start();
  }
  testsupport::TempDir root{"wavoip-fuzz"};  // declared first: removed last
  unsigned generation = 0;
  unsigned runs = 0;
  std::unique_ptr<Instance> keyed;
  std::unique_ptr<Instance> open;
};

std::string_view next_line(std::string_view& input) {
  const size_t end = input.find('\n');
  std::string_view line = input.substr(0, end);
  input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State state;
  if (++state.runs % kRestartEvery == 0) state.restart();

  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view selector = next_line(input);
  const std::string_view path_tail = next_line(input);
  const std::string_view query = next_line(input);
  const std::string_view content_type = next_line(input);
  const std::string_view token = next_line(input);
  const std::string body(input);
  const unsigned char choice = selector.empty() ? 0 : static_cast<unsigned char>(selector[0]);
  Instance& instance = (choice & 1) ? *state.keyed : *state.open;
  const bool retry = (choice & 2) != 0;

  std::string path;
  if (retry) {
    path = "/wavoip/recordings/retry";
  } else {
    path = "/webhooks/wavoip";
    if (!path_tail.empty() && path_tail.front() != '/') path += '/';
    path += path_tail;
  }
  // The host dispatches only what matches a route, and answers 413 itself above its limit.
  const testsupport::FakeRoute* route = instance.host.route_for("POST", path);
  if (route == nullptr || body.size() > route->max_body_bytes) return 0;

  std::vector<std::pair<std::string, std::string>> headers;
  if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  if (!token.empty()) headers.emplace_back("X-Webhook-Token", std::string(token));
  const std::vector<testsupport::FakeAnswer> answers =
      instance.host.dispatch(*route, path, std::string(query), headers, body, "127.0.0.1");

  if (answers.size() != 1) finding("expected exactly one answer, got " + std::to_string(answers.size()));
  const testsupport::FakeAnswer& answer = answers[0];
  // For seed maintenance: WAVOIP_FUZZ_VERBOSE=1 prints what each input got.
  static const bool verbose = std::getenv("WAVOIP_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "%s %u %s\n", path.c_str(), answer.status, answer.body.c_str());
  if (answer.status >= 500) finding("a 5xx for client input: " + answer.body);
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(answer.body, ec);
  if (ec || !parsed.is_object()) finding("the answer is not a JSON object: " + answer.body);
  if (answer.status == 401 && answer.body != R"({"error":"unauthorized"})")
    finding("a 401 with detail: " + answer.body);
  if (answer.status >= 400 && !parsed.as_object().contains("error"))
    finding("an error without \"error\": " + answer.body);
  return 0;
}

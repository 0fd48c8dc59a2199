// READY -> attached latency, one call at a time: post a RECORD READY webhook whose record_url
// points at the local storage, then ask the host's JSON API (keep-alive, every `--poll-us`)
// until the call's message shows `attached`. Two figures per call:
//   stamp: the message's updated_at_ms (set by the host when the plugin reported `attached`)
//          minus the wall time the webhook was sent (host clock resolution: 1 ms);
//   seen:  when this client saw `attached` minus the send time (adds up to one poll interval).
//
//   bench_ready_latency --host-port P --record-url-prefix URL --count N [--prefix X] [--poll-us U]
//                       [--cookie NAME=VALUE]   (a signed-in agent's session: the JSON API needs one)
//
// Prints `n=… stamp_p50_ms=… stamp_p99_ms=… seen_p50_ms=… seen_p99_ms=… failures=…`.
#include <curl/curl.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct Client {
  CURL* easy = curl_easy_init();
  std::string body;
  std::string cookie;
  ~Client() { curl_easy_cleanup(easy); }

  long request(const std::string& url, const std::string* post_body) {
    body.clear();
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_COOKIE, cookie.empty() ? nullptr : cookie.c_str());
    static curl_slist* json_header = curl_slist_append(nullptr, "Content-Type: application/json");
    if (post_body != nullptr) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post_body->c_str());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, json_header);
    } else {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
    }
    if (curl_easy_perform(easy) != CURLE_OK) return 0;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }
};

double percentile_ms(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t index =
      std::min(values.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size())));
  return static_cast<double>(values[index]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string url_prefix;
  int count = 100;
  std::string prefix = "lat";
  int poll_us = 1000;
  std::string cookie;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    if (name == "--host-port")
      port = std::atoi(value);
    else if (name == "--record-url-prefix")
      url_prefix = value;
    else if (name == "--count")
      count = std::atoi(value);
    else if (name == "--prefix")
      prefix = value;
    else if (name == "--poll-us")
      poll_us = std::atoi(value);
    else if (name == "--cookie")
      cookie = value;
  }
  if (port == 0 || url_prefix.empty()) {
    std::fprintf(stderr, "usage: bench_ready_latency --host-port P --record-url-prefix URL --count N\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Client webhook;
  Client api;
  api.cookie = cookie;
  std::vector<std::int64_t> stamp_us;
  std::vector<std::int64_t> seen_us;
  int failures = 0;
  for (int i = 0; i < count; ++i) {
    const std::string call_id = prefix + "-" + std::to_string(i);
    boost::json::object event{{"type", "RECORD"},  {"action", "UPDATE"},       {"whatsapp_call_id", call_id},
                              {"id_session", 789}, {"record_status", "READY"}, {"record_url", url_prefix + call_id}};
    const std::string body = boost::json::serialize(event);
    const std::string status_url = base + "/api/messages?external_key=wavoip%3A" + call_id;
    const std::int64_t sent = wall_us();
    if (webhook.request(base + "/webhooks/wavoip", &body) != 202) {
      ++failures;
      continue;
    }
    bool attached = false;
    while (wall_us() - sent < 10'000'000) {
      if (api.request(status_url, nullptr) == 200) {
        boost::json::error_code ec;
        const boost::json::value message = boost::json::parse(api.body, ec);
        if (!ec && message.at("recording_status") == "attached") {
          seen_us.push_back(wall_us() - sent);
          stamp_us.push_back(message.at("updated_at_ms").to_number<std::int64_t>() * 1000 - sent);
          attached = true;
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
    }
    if (!attached) ++failures;
  }
  std::printf(
      "n=%zu stamp_p50_ms=%.2f stamp_p99_ms=%.2f stamp_max_ms=%.2f seen_p50_ms=%.2f seen_p99_ms=%.2f "
      "seen_max_ms=%.2f failures=%d\n",
      seen_us.size(), percentile_ms(stamp_us, 50), percentile_ms(stamp_us, 99), percentile_ms(stamp_us, 100),
      percentile_ms(seen_us, 50), percentile_ms(seen_us, 99), percentile_ms(seen_us, 100), failures);
  return failures == 0 ? 0 : 1;
}

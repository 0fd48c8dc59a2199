// libFuzzer target: the plugin's configuration parser. An operator's file is trusted more than a
// webhook, but it must still never crash the host, and what it accepts must keep the promises the
// rest of the plugin relies on (the base URL passes the download policy, keys are long and
// URL-safe, limits are in range).
#include <wavoip/core/config.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = wavoip::parse_config(text);
  if (!parsed) {
    if (parsed.error().message.empty()) finding("an error without a message");
    return 0;
  }
  const wavoip::Config& config = *parsed;
  if (wavoip::url_refusal(config.base_url, config.url_policy())) finding("accepted a base_url its policy refuses");
  if (config.base_url.empty() || config.base_url.back() != '/') finding("base_url does not end with '/'");
  if (config.max_body_bytes < 1024 || config.max_body_bytes > 16u * 1024 * 1024) finding("max_body_bytes out of range");
  if (config.max_json_depth < 1 || config.max_json_depth > 512) finding("max_json_depth out of range");
  if (config.max_redirects < 0 || config.max_redirects > 20) finding("max_redirects out of range");
  for (const wavoip::WebhookKey& key : config.webhook_keys) {
    if (key.key.size() < 16) finding("accepted a short key");
    for (char c : key.key) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '~' || c == '-';
      if (!ok) finding("accepted a key with a character outside [A-Za-z0-9._~-]");
    }
  }
  return 0;
}

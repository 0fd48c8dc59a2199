// libFuzzer target: the record_url policy. Whatever the input, a URL the production policy lets
// through is https, on port 443, on exactly an allowed host, without credentials; and the URL the
// plugin would fetch is that URL or base_url + the encoded call id, never anything else.
#include <wavoip/core/recording_url.hpp>

#include <boost/url/parse.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

std::string lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  const wavoip::UrlPolicy production{{"storage.wavoip.com"}, false};
  const wavoip::UrlPolicy development{{"storage.wavoip.com"}, true};

  if (!wavoip::url_refusal(url, production)) {
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) finding("allowed an unparsable URL");
    if (lower(std::string(parsed->scheme())) != "https") finding("allowed a scheme other than https");
    if (lower(std::string(parsed->encoded_host())) != "storage.wavoip.com") finding("allowed another host");
    if (parsed->has_userinfo()) finding("allowed credentials");
    if (parsed->has_port() && parsed->port() != "443") finding("allowed another port");
  }
  if (!wavoip::url_refusal(url, development)) {
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) finding("development mode allowed an unparsable URL");
    const std::string host = lower(std::string(parsed->encoded_host()));
    if (host != "storage.wavoip.com" && !wavoip::is_loopback_host(host)) finding("development mode allowed " + host);
  }

  const std::string chosen = wavoip::choose_recording_url("https://storage.wavoip.com/", production, "CALL1", url);
  if (chosen != url && chosen != "https://storage.wavoip.com/CALL1") finding("fetch URL is neither: " + chosen);
  // The call id is always encoded into one path segment of base_url.
  const std::string built = wavoip::recording_url_for_call("https://storage.wavoip.com/", url);
  if (built.find_first_of("/?#", std::string("https://storage.wavoip.com/").size()) != std::string::npos) {
    finding("an id escaped its path segment: " + built);
  }
  return 0;
}

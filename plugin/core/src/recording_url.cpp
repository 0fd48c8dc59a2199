#include "wavoip/core/recording_url.hpp"

#include <algorithm>
#include <boost/url/decode_view.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <boost/url/url_view.hpp>

namespace wavoip {
namespace {

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c); });
  return out;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  std::string h = to_lower(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost") return true;
  auto v4 = boost::urls::parse_ipv4_address(h);
  if (v4) return v4->is_loopback();
  auto v6 = boost::urls::parse_ipv6_address(h);
  if (v6) {
    if (v6->is_loopback()) return true;
    // ::ffff:127.0.0.1 reaches the IPv4 loopback too.
    if (v6->is_v4_mapped()) return v6->to_bytes()[12] == 127;
  }
  return false;
}

std::optional<std::string> url_refusal(std::string_view url, const UrlPolicy& policy) {
  auto parsed = boost::urls::parse_absolute_uri(boost::urls::string_view(url.data(), url.size()));
  if (!parsed) return "not an absolute URL";
  const boost::urls::url_view& u = *parsed;
  const std::string scheme = to_lower(u.scheme());
  if (scheme != "https" && scheme != "http") return "scheme is not http(s)";
  if (u.has_userinfo()) return "URL carries credentials";
  if (u.host_type() == boost::urls::host_type::none || u.encoded_host().empty()) return "URL has no host";
  const std::string host = to_lower(u.encoded_host());
  if (host.find('%') != std::string::npos) return "host is percent-encoded";

  if (policy.allow_insecure_loopback && is_loopback_host(host)) return std::nullopt;

  if (scheme != "https") return "only https is allowed";
  if (std::find(policy.allowed_hosts.begin(), policy.allowed_hosts.end(), host) == policy.allowed_hosts.end()) {
    return "host not in allowed_hosts";
  }
  if (u.has_port() && u.port() != "443") return "only port 443 is allowed";
  return std::nullopt;
}

std::string percent_encode(std::string_view text) {
  // Upper-case hex digits, no '+' for spaces: Boost.URL's defaults.
  return boost::urls::encode(boost::urls::string_view(text.data(), text.size()), boost::urls::unreserved_chars);
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  // make_pct_string_view checks only the escapes: each '%' followed by two hex digits.
  const auto checked = boost::urls::make_pct_string_view(boost::urls::string_view(text.data(), text.size()));
  if (!checked) return std::nullopt;
  boost::urls::encoding_opts options;
  options.space_as_plus = plus_is_space;
  const boost::urls::decode_view decoded(*checked, options);
  return std::string(decoded.begin(), decoded.end());
}

std::string recording_url_for_call(std::string_view base_url, std::string_view call_id) {
  std::string url(base_url);
  if (url.empty() || url.back() != '/') url.push_back('/');
  return url + percent_encode(call_id);
}

std::string choose_recording_url(std::string_view base_url, const UrlPolicy& policy, std::string_view call_id,
                                 std::optional<std::string_view> record_url) {
  if (record_url && !record_url->empty() && !url_refusal(*record_url, policy)) return std::string(*record_url);
  return recording_url_for_call(base_url, call_id);
}

}  // namespace wavoip

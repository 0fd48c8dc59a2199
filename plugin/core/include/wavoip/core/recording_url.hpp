#pragma once
// Which URL the plugin may download a recording from.
//
// `record_url` arrives in an unsigned webhook body, so it is attacker-controlled: it is used
// only when it is https on an allow-listed host (OWASP SSRF cheat sheet, "allow list"). Anything
// else falls back to the documented `https://storage.wavoip.com/{whatsapp_call_id}`. The fetcher
// still checks every connected address and redirect hop; this is the first of those guards.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wavoip {

struct UrlPolicy {
  std::vector<std::string> allowed_hosts{"storage.wavoip.com"};  // exact host names, lower case
  bool allow_insecure_loopback = false;                          // dev mode: http(s) to localhost / 127.0.0.0/8 / ::1
};

// nullopt when `url` may be fetched under `policy`; otherwise a short reason for logs, e.g.
// "host not in allowed_hosts". Rules: absolute http(s) URL, no user:password@, host exactly in
// allowed_hosts with https on port 443 (or no port), or, only in the loopback dev mode, a
// loopback host with http or https on any port.
std::optional<std::string> url_refusal(std::string_view url, const UrlPolicy& policy);

// True for "localhost", any 127.0.0.0/8 address, "::1" and "::ffff:127.x.y.z".
bool is_loopback_host(std::string_view host);

// Percent-encodes everything outside RFC 3986 "unreserved" (A-Z a-z 0-9 - . _ ~).
std::string percent_encode(std::string_view text);

// Decodes %XX escapes (either case of hex digit; any byte, %00 included), and '+' as a space
// when plus_is_space (as in a query). nullopt when an escape is malformed ("%zz") or cut short
// ("%4", a trailing "%"). Every other character passes through as it is.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

// base_url (ending in '/') + percent-encoded call id.
std::string recording_url_for_call(std::string_view base_url, std::string_view call_id);

// The URL to download: `record_url` when present and allowed, else the one built from the call id.
std::string choose_recording_url(std::string_view base_url, const UrlPolicy& policy, std::string_view call_id,
                                 std::optional<std::string_view> record_url);

}  // namespace wavoip

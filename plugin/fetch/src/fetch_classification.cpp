#include "wavoip/fetch/fetch_classification.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace wavoip {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// What an HTTP status says beyond its number ("" when nothing): the number itself travels as
// http_status, so it is written once, where the outcome is shown.
std::string http_detail(long status) {
  switch (status) {
    case 401: return "not authorized";
    case 403: return "access denied";
    case 410: return "recording removed";
    case 429: return "too many requests";
    default: break;
  }
  if (status >= 500 && status <= 599) return "server error";
  return {};
}

// A download guard's refusal: permanent, and said so.
Classification blocked(std::string detail) {
  return {FetchKind::permanent_error, std::move(detail), true};
}

// `{"status":"RECORDING"}` -> "RECORDING". Only for the agent-facing detail; the flow gets the
// whole preview.
std::string json_status(std::string_view body) {
  const size_t key = body.find("\"status\"");
  if (key == std::string_view::npos) return {};
  size_t i = key + 8;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
  if (i >= body.size() || body[i] != ':') return {};
  ++i;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
  if (i >= body.size() || body[i] != '"') return {};
  ++i;
  std::string value;
  while (i < body.size() && body[i] != '"' && value.size() < 40) {
    const char c = body[i++];
    const bool plain =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!plain) return {};
    value += c;
  }
  return (i < body.size() && body[i] == '"') ? value : std::string{};
}

Classification classify_by_status(const TransferFacts& f) {
  const long s = f.http_status;
  if (s >= 200 && s <= 299) {
    if (is_audio_content_type(f.content_type)) {
      if (f.body_bytes > 0) return {FetchKind::ready_file, "downloaded " + format_size(f.body_bytes)};
      return {FetchKind::not_ready, "the recording file is still empty"};
    }
    if (const std::string status = json_status(f.body_preview); !status.empty()) {
      return {FetchKind::not_ready, "recording not ready yet (status " + status + ")"};
    }
    const std::string type = f.content_type.empty() ? "no content type" : f.content_type;
    return {FetchKind::not_ready, "recording not ready yet (server sent " + type + ", not audio)"};
  }
  if (s == 404) return {FetchKind::not_ready, http_detail(s)};
  // S3-style stores answer 401/403 for objects that do not exist yet, so these are polled again
  // (until the deadline) like a 404; only 410 says the recording is gone for good.
  if (s == 401 || s == 403) return {FetchKind::not_ready, http_detail(s)};
  if (s == 410) return {FetchKind::permanent_error, http_detail(s)};
  if (s == 408 || s == 425 || s == 429 || (s >= 500 && s <= 599)) {
    return {FetchKind::transient_error, http_detail(s)};
  }
  if (s >= 400 && s <= 499) return {FetchKind::permanent_error, http_detail(s)};
  return {FetchKind::transient_error, "unexpected answer"};
}

std::string connect_failure(long os_errno) {
  switch (os_errno) {
    case ECONNREFUSED: return "connection refused";
    case ENETUNREACH: return "network unreachable";
    case EHOSTUNREACH: return "server unreachable";
    case ETIMEDOUT: return "connection timed out";
    default: return "could not connect to the server";
  }
}

std::string timeout_detail(const TransferFacts& f, const FetchOptions& options, std::string_view curl_error) {
  if (starts_with(curl_error, "Operation too slow")) {
    return "download stalled (under " + format_size(static_cast<uint64_t>(options.low_speed_limit)) + "/s for " +
           format_duration(options.low_speed_time) + ")";
  }
  if (starts_with(curl_error, "Resolving timed out")) {
    return "looking up " + (f.host.empty() ? std::string("the server") : f.host) + " timed out";
  }
  if (starts_with(curl_error, "Connection timed out") || starts_with(curl_error, "Failed to connect")) {
    // libcurl bounds the connect phase by the smaller of the two limits.
    return "connection timed out after " + format_duration(std::min(options.connect_timeout, options.total_timeout));
  }
  return "timed out after " + format_duration(options.total_timeout);
}

}  // namespace

bool is_audio_content_type(std::string_view content_type) {
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t')) {
    content_type.remove_prefix(1);
  }
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) {
    content_type.remove_suffix(1);
  }
  constexpr std::string_view kAudio = "audio/";
  if (content_type.size() <= kAudio.size()) return false;
  for (size_t i = 0; i < kAudio.size(); ++i) {
    if (lower(content_type[i]) != kAudio[i]) return false;
  }
  return true;
}

std::string format_size(uint64_t bytes) {
  char text[48];
  if (bytes >= kMiB && bytes % kMiB == 0) {
    std::snprintf(text, sizeof text, "%llu MiB", static_cast<unsigned long long>(bytes / kMiB));
  } else if (bytes >= kMiB) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  } else if (bytes >= kKiB && bytes % kKiB == 0) {
    std::snprintf(text, sizeof text, "%llu KiB", static_cast<unsigned long long>(bytes / kKiB));
  } else if (bytes >= kKiB) {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / kKiB);
  } else {
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return text;
}

std::string format_duration(std::chrono::milliseconds duration) {
  const long long ms = duration.count();
  char text[48];
  if (ms % 1000 == 0) {
    std::snprintf(text, sizeof text, "%lld s", ms / 1000);
  } else if (ms % 100 == 0) {
    std::snprintf(text, sizeof text, "%lld.%lld s", ms / 1000, (ms % 1000) / 100);
  } else {
    std::snprintf(text, sizeof text, "%lld ms", ms);
  }
  return text;
}

Classification classify_transfer(const TransferFacts& f, const FetchOptions& options) {
  const auto code = static_cast<CURLcode>(f.curl_code);

  // Guards first: whatever else went wrong, the agent should learn that a guard stopped it.
  if (f.size_cap_hit || code == CURLE_FILESIZE_EXCEEDED) {
    return blocked("recording larger than " + format_size(options.max_bytes));
  }
  if (code == CURLE_TOO_MANY_REDIRECTS) {
    return blocked("too many redirects (more than " + std::to_string(options.max_redirects) + ")");
  }
  if (code == CURLE_UNSUPPORTED_PROTOCOL) {
    const std::string what =
        f.redirect_count > 0 ? "redirected to a URL scheme that is not allowed" : "URL scheme not allowed";
    return blocked(what + (options.allow_insecure_loopback ? " (http and https only)" : " (https only)"));
  }
  if (f.refused_connections > 0 && code == CURLE_COULDNT_CONNECT) {
    if (f.refused_plain_http) {
      return blocked("plain http to " + f.refused_address + " is not allowed (only to loopback in development mode)");
    }
    return blocked("address " + f.refused_address + " is not allowed (" + std::string(describe(f.refused_class)) + ")");
  }
  if (f.write_errno != 0) {
    return {FetchKind::transient_error,
            std::string("could not write the recording to disk: ") + std::strerror(f.write_errno)};
  }

  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && f.non_audio_body_cut)) return classify_by_status(f);

  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return {FetchKind::transient_error, timeout_detail(f, options, f.curl_error)};
    case CURLE_COULDNT_CONNECT: return {FetchKind::transient_error, connect_failure(f.os_errno)};
    case CURLE_COULDNT_RESOLVE_HOST:
      return {FetchKind::transient_error,
              "could not find the server " + (f.host.empty() ? std::string("name") : f.host)};
    case CURLE_PARTIAL_FILE:
      if (f.content_length > 0) {
        return {FetchKind::transient_error, "download interrupted (got " + format_size(f.body_bytes) + " of " +
                                                format_size(static_cast<uint64_t>(f.content_length)) + ")"};
      }
      return {FetchKind::transient_error, "download interrupted"};
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      if (f.os_errno == ECONNRESET || f.os_errno == EPIPE) return {FetchKind::transient_error, "connection reset"};
      return {FetchKind::transient_error, "connection lost"};
    case CURLE_GOT_NOTHING: return {FetchKind::transient_error, "server closed the connection without answering"};
    case CURLE_SSL_CONNECT_ERROR: return {FetchKind::transient_error, "secure connection (TLS) failed"};
    case CURLE_PEER_FAILED_VERIFICATION: return {FetchKind::transient_error, "server certificate not trusted"};
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING: return {FetchKind::transient_error, "invalid answer from the server"};
    case CURLE_URL_MALFORMAT: return {FetchKind::permanent_error, "invalid recording URL"};
    default: break;
  }
  return {FetchKind::transient_error, std::string("download failed (") + curl_easy_strerror(code) + ")"};
}

}  // namespace wavoip

#pragma once
// What one download attempt of a recording came to, in the flow's terms.
//
// The fetcher (I/O) fills a FetchOutcome; `classify_http_answer` is the one place that decides
// what an HTTP answer from WaVoIP's storage means, so the rule is tested without a network:
//
// | answer                                   | kind            | why |
// |------------------------------------------|-----------------|-----|
// | 2xx, `audio/*`, non-empty body           | ready_file      | the only proof a recording exists |
// | 2xx other type or empty (`{"status":"RECORDING"}`) | not_ready | an integration saw this before READY |
// | 404                                      | not_ready       | the file appears "after a few minutes" |
// | 401, 403                                 | not_ready       | storage needs no auth; S3-style stores answer 403 for objects that do not exist yet |
// | 408, 425, 429, 5xx, other 1xx            | transient_error | the server or the path is busy: retry with backoff |
// | 410                                      | permanent_error | the recording was removed on the customer's request |
// | 3xx (redirects exhausted), other 4xx     | permanent_error | repeating the same request will not help |
//
// Failures without an HTTP answer are chosen by the fetcher: timeouts, resets and DNS errors
// are transient_error; a refused URL or address (download guards), or a body over
// max_recording_bytes, are permanent_error. A permanent error still yields to a later READY
// webhook or a manual retry.

#include <cstdint>
#include <string>
#include <string_view>

namespace wavoip {

enum class FetchKind { ready_file, not_ready, transient_error, permanent_error };

struct FetchOutcome {
  FetchKind kind = FetchKind::transient_error;
  int http_status = 0;  // 0 when no HTTP answer arrived
  std::string detail;   // short and safe to show: "timeout", "application/json", ...
  // ready_file only: the downloaded file (in the plugin's data dir), its type and size.
  std::string file_path;
  std::string content_type;
  std::uint64_t bytes = 0;
};

FetchKind classify_http_answer(int http_status, std::string_view content_type, std::uint64_t body_bytes);

// "HTTP 404", "HTTP 200 (application/json)", or the detail when there was no answer.
std::string describe(const FetchOutcome& outcome);

std::string_view to_string(FetchKind kind);

}  // namespace wavoip

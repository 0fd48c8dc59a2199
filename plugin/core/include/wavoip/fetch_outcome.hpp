#pragma once
// What one download attempt of a recording came to, in the flow's terms. The fetcher
// (plugin/fetch, `classify_transfer` in wavoip/fetch_classification.hpp) decides the kind of an
// answer, with the table of what each HTTP status means; the flow only acts on the kind.

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

// "HTTP 404", "HTTP 200 (application/json)", or the detail when there was no answer.
std::string describe(const FetchOutcome& outcome);

// What an HTTP refusal (4xx, 5xx) means, in words for the agent: "WaVoIP no longer has this
// recording" for a 410. The code itself goes on the reason's technical part (describe()).
std::string plain_failure(const FetchOutcome& outcome);

std::string_view to_string(FetchKind kind);

}  // namespace wavoip

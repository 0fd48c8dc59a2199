#pragma once
// What one download attempt of a recording came to, in the flow's terms. FetchKind is the one
// word for a download's result in the whole plugin: the fetcher (plugin/fetch,
// `classify_transfer` in wavoip/fetch/fetch_classification.hpp) decides it with the table of what each
// storage answer means, the flow acts on it, the logs and metrics name it.

#include <cstdint>
#include <string>
#include <string_view>

namespace wavoip {

enum class FetchKind {
  ready_file,       // 2xx, audio/* content type, non-empty body: the file is complete
  not_ready,        // 404, 401/403, a 2xx non-audio body ({"status":"RECORDING"}), empty audio: poll again
  transient_error,  // network trouble, timeouts, truncated bodies, 5xx, 408, 429: retry later
  permanent_error,  // 410 and other 4xx, an unusable URL, a download guard: retrying won't help
};

struct FetchOutcome {
  FetchKind kind = FetchKind::transient_error;
  int http_status = 0;  // 0 when no HTTP answer arrived
  // Short and safe to show, without the HTTP status: "server error", "timed out after 30 s",
  // "" for a plain 404. describe() puts the two together.
  std::string detail;
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

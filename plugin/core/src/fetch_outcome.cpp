#include "wavoip/core/fetch_outcome.hpp"

namespace wavoip {

std::string describe(const FetchOutcome& outcome) {
  if (outcome.http_status == 0) return outcome.detail.empty() ? std::string("no answer") : outcome.detail;
  std::string text = "HTTP " + std::to_string(outcome.http_status);
  if (!outcome.detail.empty()) text += " (" + outcome.detail + ")";
  return text;
}

std::string plain_failure(const FetchOutcome& outcome) {
  const int s = outcome.http_status;
  switch (s) {
    case 400: return "WaVoIP did not understand the request for this recording";
    case 401:
    case 403: return "WaVoIP did not allow this helpdesk to download the recording";
    case 404: return "WaVoIP does not have this recording (yet)";
    case 408: return "WaVoIP took too long to answer";
    case 410: return "WaVoIP no longer has this recording";
    case 429: return "WaVoIP asked this helpdesk to slow down";
    default: break;
  }
  if (s >= 500 && s <= 599) return "WaVoIP's server had a problem";
  if (s >= 400 && s <= 499) return "WaVoIP refused to send this recording";
  return "Could not download the recording";
}

std::string_view to_string(FetchKind kind) {
  switch (kind) {
    case FetchKind::ready_file: return "ready_file";
    case FetchKind::not_ready: return "not_ready";
    case FetchKind::transient_error: return "transient_error";
    case FetchKind::permanent_error: return "permanent_error";
  }
  return "unknown";
}

}  // namespace wavoip

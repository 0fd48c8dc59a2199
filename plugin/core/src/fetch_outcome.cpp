#include "wavoip/fetch_outcome.hpp"

namespace wavoip {

std::string describe(const FetchOutcome& outcome) {
  if (outcome.http_status == 0) return outcome.detail.empty() ? std::string("no answer") : outcome.detail;
  std::string text = "HTTP " + std::to_string(outcome.http_status);
  if (!outcome.detail.empty()) text += " (" + outcome.detail + ")";
  return text;
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

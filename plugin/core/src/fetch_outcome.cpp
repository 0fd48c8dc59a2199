#include "wavoip/fetch_outcome.hpp"

namespace wavoip {
namespace {

// "Audio/MPEG; charset=x" -> true. Only the media type's top-level name matters.
bool is_audio(std::string_view content_type) {
  constexpr std::string_view kAudio = "audio/";
  if (content_type.size() <= kAudio.size()) return false;
  for (std::size_t i = 0; i < kAudio.size(); ++i) {
    char c = content_type[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kAudio[i]) return false;
  }
  return true;
}

}  // namespace

FetchKind classify_http_answer(int http_status, std::string_view content_type, std::uint64_t body_bytes) {
  if (http_status >= 200 && http_status < 300) {
    return (is_audio(content_type) && body_bytes > 0) ? FetchKind::ready_file : FetchKind::not_ready;
  }
  switch (http_status) {
    case 401:
    case 403:
    case 404: return FetchKind::not_ready;
    case 408:
    case 425:
    case 429: return FetchKind::transient_error;
    case 410: return FetchKind::permanent_error;
    default: break;
  }
  if (http_status >= 500 || http_status < 200) return FetchKind::transient_error;
  return FetchKind::permanent_error;  // 3xx after the redirect limit, other 4xx
}

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

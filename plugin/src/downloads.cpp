#include "recording_service.hpp"

#include <wavoip/core/fetch_outcome.hpp>
#include <wavoip/core/recording_url.hpp>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace wavoip {

namespace fs = std::filesystem;

namespace {

FetchOutcome to_outcome(const FetchResult& result) {
  FetchOutcome outcome;
  outcome.kind = result.kind;
  outcome.http_status = static_cast<int>(result.http_status);
  outcome.detail = result.detail;
  outcome.content_type = result.content_type;
  outcome.bytes = result.bytes;
  if (result.kind == FetchKind::ready_file) outcome.file_path = result.path;
  return outcome;
}

}  // namespace

// The file extension an agent's player expects for a content type.
std::string RecordingService::extension_for(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (type == "audio/mpeg" || type == "audio/mp3") return "mp3";
  if (type == "audio/wav" || type == "audio/x-wav" || type == "audio/wave") return "wav";
  if (type == "audio/ogg" || type == "audio/opus") return "ogg";
  if (type == "audio/mp4" || type == "audio/aac" || type == "audio/x-m4a") return "m4a";
  if (type == "audio/webm") return "webm";
  return "audio";
}

FetchOptions RecordingService::fetch_options(const Config& config) {
  FetchOptions options;
  options.allow_insecure_loopback = config.allow_insecure_loopback;
  options.max_redirects = config.max_redirects;
  options.max_bytes = config.max_recording_bytes;
  options.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  options.low_speed_limit = static_cast<long>(config.low_speed_limit_bytes);
  options.low_speed_time = std::chrono::seconds(config.low_speed_time_s);
  options.max_connections = config.max_concurrent_downloads;
  return options;
}

std::unique_ptr<Downloader> RecordingService::make_downloader() {
  if (config_.downloads == DownloadsMode::loop)
    return std::make_unique<RecordingFetcher>(loop_, fetch_options(config_));
  // Each wake-up hands back every download finished since the last one, in one main-thread turn.
  return std::make_unique<FetchThread>(fetch_options(config_), [this] {
    return host_.raw()->request_main_thread_callback(host_.raw(), &RecordingService::on_fetch_results, this) == HDP_OK;
  });
}

void RecordingService::on_fetch_results(void* user_data) {
  auto* self = static_cast<RecordingService*>(user_data);
  without_exceptions(self->host_, "download results", [&] {
    if (self->fetcher_) self->fetcher_->deliver();
  });
}

size_t RecordingService::downloads_in_flight() const {
  return fetcher_ ? fetcher_->in_flight() : 0;
}

std::string RecordingService::temp_path_for(const std::string& call_id) const {
  return (fs::path(data_dir_) / "downloads" / (percent_encode(call_id) + ".part")).string();
}

std::string RecordingService::recording_path_for(const std::string& call_id, const std::string& content_type) const {
  return (fs::path(data_dir_) / "recordings" / (percent_encode(call_id) + "." + extension_for(content_type))).string();
}

void RecordingService::start_fetch(const StartFetch& action, const CallRecord& record) {
  // This node took its own lapsed claim over (its writer could not renew in time): the download
  // it has in flight carries on, under the newer claim.
  if (!downloading_.emplace(action.call_id, record).second) {
    host_.log(HDP_LOG_DEBUG, "[WaVoIP] The recording of call " + action.call_id + " is already downloading here");
    return;
  }
  if (free_download_slots() == 0) {
    // The call stays `fetching` in the store (claimed); its download starts when a slot frees
    // (or, after a crash, from resume). Only the call id and URL wait here.
    deferred_fetches_.push_back(action);
    return;
  }
  begin_fetch(action);
}

void RecordingService::begin_fetch(const StartFetch& action) {
  host_.log(HDP_LOG_INFO, "[WaVoIP] Downloading the recording of call " + action.call_id);
  metrics_.fetch_started();
  FetchRequest request{action.call_id, action.url, temp_path_for(action.call_id)};
  fetcher_->fetch(std::move(request), [this](const FetchResult& result) { on_fetch_done(result); });
}

void RecordingService::start_deferred_fetches() {
  while (!deferred_fetches_.empty() && downloads_in_flight() < download_limit() && !stopping_) {
    StartFetch next = std::move(deferred_fetches_.front());
    deferred_fetches_.pop_front();
    begin_fetch(next);
  }
}

void RecordingService::on_fetch_done(const FetchResult& result) {
  std::optional<CallRecord> fetching;
  if (auto it = downloading_.find(result.call_id); it != downloading_.end()) {
    fetching = std::move(it->second);
    downloading_.erase(it);
  }
  FetchOutcome outcome = to_outcome(result);
  if (outcome.kind == FetchKind::ready_file) {
    // Out of downloads/ so that a restart's clean-up never takes a complete recording.
    std::string final_path = recording_path_for(result.call_id, result.content_type);
    std::error_code ec;
    fs::rename(result.path, final_path, ec);
    if (ec) {
      fs::remove(result.path, ec);
      outcome = FetchOutcome{};
      outcome.kind = FetchKind::transient_error;
      outcome.detail = "could not keep the downloaded file";
    } else {
      outcome.file_path = final_path;
    }
  }
  metrics_.fetch_outcome(to_string(outcome.kind));
  // A poll answered 404 is the normal wait for WaVoIP, not something for the operator to look at.
  const bool expected = outcome.kind == FetchKind::ready_file || outcome.kind == FetchKind::not_ready;
  host_.log(expected ? HDP_LOG_INFO : HDP_LOG_WARNING, "[WaVoIP] Download of call " + result.call_id + ": " +
                                                           std::string(to_string(outcome.kind)) + " (" +
                                                           describe(outcome) + ")");
  std::string kept_file = outcome.file_path;
  const std::string call_id = result.call_id;
  // On a store this node owns alone (SQLite), no other node can take its claim over, so the
  // recording goes to the host now, while the outcome is written: the attachment's key makes a
  // second attempt (after a crash in between) find the same attachment. The step it attaches
  // from is the pure one, run on the record the fetching step committed; while this node holds
  // the call's claim, nothing else moves a fetching call on. On a shared store the outcome is
  // written first: there the write checks the claim's fence, and a node that was paused past its
  // lease must not attach at all.
  bool early = false;
  if (outcome.kind == FetchKind::ready_file && !claims_.shared && fetching && held_claim(call_id) && !stopping_) {
    const FlowResult predicted = step(*fetching, outcome, host_.wall_ms(), config_);
    for (const Action& action : predicted.actions) {
      if (const auto* attach_action = std::get_if<Attach>(&action)) {
        attached_early_.insert(call_id);
        early = true;
        attach(*attach_action, predicted.record);
      }
    }
  }
  // Written only while this node's claim holds; otherwise the node that took the call over
  // downloads and attaches it, and this copy goes. So it does when the outcome could not be
  // written: the call is downloaded again once its claim lapsed. A copy already handed to the
  // host stays: the attachment's own completion removes it (or a restart's clean-up).
  const auto drop_file = [this, kept_file, call_id, early] {
    attached_early_.erase(call_id);  // the outcome's continuation did not take it
    std::error_code ec;
    if (!kept_file.empty() && !early) fs::remove(kept_file, ec);
  };
  apply(
      call_id, std::move(outcome),
      [this, drop_file, call_id](std::optional<FlowResult> step) {
        if (!step) drop_file();
        attached_early_.erase(call_id);  // a step that asked for no attachment
      },
      [drop_file](const std::string&) { drop_file(); }, true);
  // A download slot is free: downloads that waited for one first, then due polls.
  start_deferred_fetches();
  arm_poll_timer();
}

size_t RecordingService::download_limit() const {
  return static_cast<size_t>(std::max(config_.max_concurrent_downloads, 1));
}

size_t RecordingService::free_download_slots() const {
  // Deferred downloads count as busy: a new download or poll does not overtake them.
  const size_t busy = downloads_in_flight() + deferred_fetches_.size();
  return busy >= download_limit() ? 0 : download_limit() - busy;
}

}  // namespace wavoip

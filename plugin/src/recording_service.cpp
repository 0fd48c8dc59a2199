#include "recording_service.hpp"

#include <wavoip/fetch_outcome.hpp>
#include <wavoip/recording_url.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <system_error>

namespace wavoip {

namespace fs = std::filesystem;

namespace {

constexpr size_t kPollBatch = 256;
constexpr size_t kResumeBatch = 256;
// When due polls could not be consumed (the database failed), try again this much later instead
// of spinning on the loop.
constexpr TimeMs kStuckPollRetryMs = 1000;
constexpr int64_t kPendingGaugeEveryMs = 10000;
// A download or attachment still running after this long is shown to the agent as such.
constexpr int64_t kShowBusyAfterMs = 1000;

int32_t to_host_status(RecordingState state) {
   switch (state) {
      case RecordingState::none: return HDP_RECORDING_NONE;
      case RecordingState::waiting: return HDP_RECORDING_WAITING;
      case RecordingState::fetching:
      case RecordingState::attaching: return HDP_RECORDING_DOWNLOADING;
      case RecordingState::attached: return HDP_RECORDING_ATTACHED;
      case RecordingState::empty: return HDP_RECORDING_EMPTY;
      case RecordingState::disabled: return HDP_RECORDING_DISABLED;
      case RecordingState::failed: return HDP_RECORDING_FAILED;
   }
   return HDP_RECORDING_NONE;
}

int32_t to_host_direction(CallDirection direction) {
   switch (direction) {
      case CallDirection::incoming: return HDP_CALL_DIRECTION_INCOMING;
      case CallDirection::outgoing: return HDP_CALL_DIRECTION_OUTGOING;
      case CallDirection::unknown: break;
   }
   return HDP_CALL_DIRECTION_UNKNOWN;
}

int32_t to_host_level(LogLevel level) {
   switch (level) {
      case LogLevel::debug: return HDP_LOG_DEBUG;
      case LogLevel::info: return HDP_LOG_INFO;
      case LogLevel::warning: return HDP_LOG_WARNING;
      case LogLevel::error: return HDP_LOG_ERROR;
   }
   return HDP_LOG_INFO;
}

// The file extension an agent's player expects for a content type.
std::string extension_for(std::string_view content_type) {
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

std::string external_key(std::string_view call_id) { return "wavoip:" + std::string(call_id); }

// "" (not known yet) or what WaVoIP sends: digits, at most 32, an optional leading '+'.
bool is_phone_number(std::string_view contact) {
   if (contact.starts_with('+')) contact.remove_prefix(1);
   if (contact.size() > 32) return false;
   return std::all_of(contact.begin(), contact.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The fetcher's detail names the HTTP status itself ("HTTP 500 (server error)"); describe()
// prefixes it again, so only what follows it is kept: "HTTP 500 (server error)", not
// "HTTP 500 (HTTP 500 (server error))".
std::string detail_without_status(long http_status, const std::string &detail) {
   const std::string prefix = "HTTP " + std::to_string(http_status);
   if (http_status == 0 || !detail.starts_with(prefix)) return detail;
   std::string_view rest = std::string_view(detail).substr(prefix.size());
   if (rest.starts_with(" (") && rest.ends_with(")")) return std::string(rest.substr(2, rest.size() - 3));
   return std::string(rest);
}

// Inverse of percent_encode, for the names of downloaded files. nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view text) {
   std::string out;
   for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '%') {
         out += text[i];
         continue;
      }
      if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
         return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
   }
   return out;
}

bool shows_on_host(const Action &action) {
   return std::holds_alternative<UpsertMessage>(action) || std::holds_alternative<SetRecordingStatus>(action);
}

const std::string &call_of(const Action &action) {
   if (const auto *upsert = std::get_if<UpsertMessage>(&action)) return upsert->call_id;
   return std::get<SetRecordingStatus>(action).call_id;
}

FetchOutcome to_outcome(const FetchResult &result) {
   FetchOutcome outcome;
   outcome.http_status = static_cast<int>(result.http_status);
   outcome.detail = detail_without_status(result.http_status, result.detail);
   outcome.content_type = result.content_type;
   outcome.bytes = result.bytes;
   switch (result.kind) {
      case DownloadKind::kReady:
         outcome.kind = FetchKind::ready_file;
         outcome.file_path = result.path;
         break;
      case DownloadKind::kNotReady: outcome.kind = FetchKind::not_ready; break;
      case DownloadKind::kTransientError: outcome.kind = FetchKind::transient_error; break;
      case DownloadKind::kPermanentError:
      case DownloadKind::kBlocked: outcome.kind = FetchKind::permanent_error; break;
   }
   return outcome;
}

FetchOptions fetch_options(const Config &config) {
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

}  // namespace

RecordingService::RecordingService(const HostApi &host, EventLoop &loop, Store &store, const Config &config,
                                   std::string data_dir)
    : host_(host), loop_(loop), store_(store), config_(config), data_dir_(std::move(data_dir)),
      fetcher_(std::make_unique<RecordingFetcher>(loop, fetch_options(config))) {
   fs::create_directories(fs::path(data_dir_) / "downloads");
   fs::create_directories(fs::path(data_dir_) / "recordings");
}

RecordingService::~RecordingService() = default;

size_t RecordingService::downloads_in_flight() const { return fetcher_ ? fetcher_->in_flight() : 0; }

std::string RecordingService::temp_path_for(const std::string &call_id) const {
   return (fs::path(data_dir_) / "downloads" / (percent_encode(call_id) + ".part")).string();
}

std::string RecordingService::recording_path_for(const std::string &call_id,
                                                 const std::string &content_type) const {
   return (fs::path(data_dir_) / "recordings" / (percent_encode(call_id) + "." + extension_for(content_type)))
       .string();
}

void RecordingService::resume() {
   std::int64_t dropped = store_.release_all_fetch_claims();
   // No download runs yet, so every partial file is left over from an interrupted one.
   std::error_code ec;
   size_t removed = 0;
   for (const auto &entry : fs::directory_iterator(fs::path(data_dir_) / "downloads", ec)) {
      if (entry.path().extension() == ".part" && fs::remove(entry.path(), ec)) ++removed;
   }
   removed += remove_stale_recordings();
   size_t resumed = 0;
   std::string after;
   for (;;) {
      std::vector<CallRecord> page = store_.calls_needing_resume(kResumeBatch, after);
      if (page.empty()) break;
      for (const CallRecord &record : page) {
         apply_input(record.call_id, Resume{});
         ++resumed;
      }
      after = page.back().call_id;
   }
   const size_t shown = show_calls_behind_host();
   arm_poll_timer();
   const std::int64_t pending = store_.count_pending();
   metrics_.pending_polls(pending);
   host_.log(HDP_LOG_INFO, "[WaVoIP] Resumed: " + std::to_string(resumed) + " download(s) or attachment(s) restarted, " +
                               std::to_string(dropped) + " stale claim(s) voided, " + std::to_string(removed) +
                               " leftover file(s) removed, " + std::to_string(shown) +
                               " call(s) shown again on the host, " + std::to_string(pending) +
                               " call(s) still waiting for a recording");
}

void RecordingService::enqueue(std::vector<Action> actions) {
   if (actions.empty() || stopping_) return;
   for (Action &action : actions) queue_.push_back(std::move(action));
   if (drain_timer_ == 0) {
      drain_timer_ = loop_.start_timer(0, [this] {
         drain_timer_ = 0;
         drain();
      });
   }
}

void RecordingService::drain() {
   std::deque<Action> batch;
   batch.swap(queue_);
   // Every change these actions show was committed with a host_sync mark; once all of them ran,
   // the host shows the stored records (each push shows the latest record), so the marks go.
   std::vector<std::string> shown;
   std::vector<std::string> refused;
   for (const Action &action : batch) {
      const bool ok = run(action);
      if (shows_on_host(action)) (ok ? shown : refused).push_back(call_of(action));
   }
   std::erase_if(shown, [&](const std::string &id) {
      return std::find(refused.begin(), refused.end(), id) != refused.end();
   });
   try {
      store_.mark_host_synced(shown);
   } catch (const std::exception &e) {
      host_.log(HDP_LOG_WARNING, std::string("[WaVoIP] Could not clear host sync marks: ") + e.what());
   }
   arm_poll_timer();
}

bool RecordingService::run(const std::vector<Action> &actions) {
   bool schedule_changed = false;
   bool all_shown = true;
   for (const Action &action : actions) {
      all_shown = run(action) && all_shown;
      if (std::holds_alternative<SchedulePoll>(action) || std::holds_alternative<CancelPoll>(action)) {
         schedule_changed = true;
      }
   }
   if (schedule_changed) arm_poll_timer();
   return all_shown;
}

bool RecordingService::run(const Action &action) {
   if (stopping_) return false;
   return std::visit(
       [this](const auto &a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, UpsertMessage>) {
             return upsert_message(a);
          } else if constexpr (std::is_same_v<T, SetRecordingStatus>) {
             return set_recording_status(a);
          } else if constexpr (std::is_same_v<T, StartFetch>) {
             start_fetch(a);
          } else if constexpr (std::is_same_v<T, Attach>) {
             attach(a);
          } else if constexpr (std::is_same_v<T, LogLine>) {
             host_.log(to_host_level(a.level), a.text);
          } else {
             // SchedulePoll and CancelPoll: the due times are in the store; the caller re-arms
             // the one timer for the earliest.
          }
          return true;
       },
       action);
}

std::optional<FlowResult> RecordingService::apply_input(const std::string &call_id, const FlowInput &input) {
   const TimeMs now = host_.wall_ms();
   std::optional<FlowResult> result;
   try {
      result = store_.apply_to_call(call_id, [&](const CallRecord &current) {
         // The host's message id rides along in this transaction, so that after a restart the
         // message is found without an upsert.
         CallRecord record = current;
         if (auto it = shown_.find(call_id); it != shown_.end()) record.message_id = std::to_string(it->second.message_id);
         return step(record, input, now, config_);
      });
   } catch (const std::exception &e) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not update call " + call_id + ": " + e.what());
      return std::nullopt;
   }
   if (!result) {
      host_.log(HDP_LOG_WARNING, "[WaVoIP] No such call " + call_id);
      return std::nullopt;
   }
   const bool shown = run(result->actions);
   // Shown at once, so the host_sync mark the step left can go: cleared for all such calls in
   // one transaction at the end of the loop turn (a crash before that only shows them again).
   if (shown && std::any_of(result->actions.begin(), result->actions.end(), shows_on_host)) {
      synced_.push_back(call_id);
      if (sync_timer_ == 0 && !stopping_) {
         sync_timer_ = loop_.start_timer(0, [this] {
            sync_timer_ = 0;
            clear_sync_marks();
         });
      }
   }
   return result;
}

void RecordingService::clear_sync_marks() {
   std::vector<std::string> ids;
   ids.swap(synced_);
   // A call with a webhook's actions still queued keeps its mark: drain clears it once they ran.
   std::erase_if(ids, [&](const std::string &id) {
      return std::any_of(queue_.begin(), queue_.end(),
                         [&](const Action &a) { return shows_on_host(a) && call_of(a) == id; });
   });
   std::sort(ids.begin(), ids.end());
   ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
   if (ids.empty()) return;
   try {
      store_.mark_host_synced(ids);
   } catch (const std::exception &e) {
      host_.log(HDP_LOG_WARNING, std::string("[WaVoIP] Could not clear host sync marks: ") + e.what());
   }
}

std::optional<uint64_t> RecordingService::message_for(const CallRecord &record) {
   UpsertMessage upsert;
   upsert.call_id = record.call_id;
   upsert.inbox = record.inbox;
   upsert.contact = record.contact();
   if (!is_phone_number(upsert.contact)) {
      // The host takes digits only; a malformed number must not keep the call from its message.
      host_.log(HDP_LOG_WARNING, "[WaVoIP] Call " + record.call_id +
                                     ": the contact is not a phone number (digits); showing the call without it");
      upsert.contact.clear();
   }
   upsert.direction = record.direction;
   upsert.call_status = record.call_status;
   upsert.duration_s = record.duration_s;

   const std::string key = external_key(upsert.call_id);
   hdp_call_message_t message{};
   message.struct_size = sizeof(message);
   message.external_key = key.c_str();
   message.inbox = upsert.inbox.c_str();
   message.contact = upsert.contact.c_str();
   message.direction = to_host_direction(upsert.direction);
   message.call_status = upsert.call_status.empty() ? nullptr : upsert.call_status.c_str();
   message.duration_s = upsert.duration_s.value_or(-1);
   uint64_t id = 0;
   hdp_status_t status = host_.messages()->upsert_call_message(host_.raw(), &message, &id);
   if (status != HDP_OK) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not create the message for call " + record.call_id +
                                   " (status " + std::to_string(status) + ")");
      shown_.erase(record.call_id);
      return std::nullopt;
   }
   auto it = shown_.find(record.call_id);
   if (it == shown_.end()) {
      if (shown_.size() >= kMaxShown) shown_.clear();
      shown_.emplace(record.call_id, Shown{id, -1, {}});
   } else if (it->second.message_id != id) {
      it->second = Shown{id, -1, {}};
   }
   return id;
}

std::optional<uint64_t> RecordingService::known_message(const CallRecord &record) {
   auto it = shown_.find(record.call_id);
   if (it != shown_.end()) return it->second.message_id;
   // Kept in the call's record by an earlier step: no upsert needed after a restart either.
   uint64_t stored = 0;
   const std::string &text = record.message_id;
   if (!text.empty() && std::from_chars(text.data(), text.data() + text.size(), stored).ec == std::errc() &&
       stored != 0) {
      if (shown_.size() >= kMaxShown) shown_.clear();
      shown_.emplace(record.call_id, Shown{stored, -1, {}});
      return stored;
   }
   return message_for(record);
}

bool RecordingService::upsert_message(const UpsertMessage &action) {
   std::optional<CallRecord> record = store_.load_call(action.call_id);
   if (!record) return true;
   return message_for(*record).has_value();
}

bool RecordingService::set_recording_status(const SetRecordingStatus &action) {
   if (action.status == RecordingState::failed) metrics_.recording_failed(action.call_id);
   if (action.status == RecordingState::fetching || action.status == RecordingState::attaching) {
      // A poll answered 404, or a small recording fetched and attached, is over in milliseconds:
      // showing "downloading" for it would be host writes and a flicker on the agent's screen
      // for nothing. It is shown if the call is still busy kShowBusyAfterMs later.
      show_busy_later(action.call_id);
      return true;
   }
   not_busy(action.call_id);
   std::optional<CallRecord> record = store_.load_call(action.call_id);
   if (!record) return true;
   return show_on_host(*record);
}

bool RecordingService::show_on_host(const CallRecord &record, bool known_id) {
   std::optional<uint64_t> message = known_id ? known_message(record) : message_for(record);
   if (!message) return false;
   // The stored state, not the action's: a status queued by a webhook may run after a later
   // change was shown already, and must not put the older status back.
   const int32_t wanted = to_host_status(record.recording);
   Shown &shown = shown_[record.call_id];
   if (shown.message_id == *message && shown.status == wanted && shown.reason == record.reason) return true;
   hdp_status_t status =
       host_.messages()->set_recording_status(host_.raw(), *message, wanted, record.reason.c_str());
   if (status == HDP_ERR_NOT_FOUND && known_id) {
      // The remembered id is gone on the host's side: find or create the message again.
      shown_.erase(record.call_id);
      return show_on_host(record, false);
   }
   if (status != HDP_OK) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not show the recording status of call " + record.call_id +
                                   " (status " + std::to_string(status) + ")");
      shown_.erase(record.call_id);
      return false;
   }
   shown.message_id = *message;
   shown.status = wanted;
   shown.reason = record.reason;
   return true;
}

void RecordingService::show_busy_later(const std::string &call_id) {
   const int64_t show_at = host_.monotonic_ms() + kShowBusyAfterMs;
   // A call already waiting to be shown busy keeps its first time (fetching, then attaching).
   if (!busy_at_.emplace(call_id, show_at).second) return;
   busy_.push_back({call_id, show_at});
   arm_busy_timer();
}

void RecordingService::not_busy(const std::string &call_id) {
   if (busy_at_.erase(call_id) == 0 || !busy_at_.empty()) return;
   // Nothing left to show: no timer stays armed for the entries that were done in time.
   busy_.clear();
   if (busy_timer_ != 0) {
      loop_.cancel_timer(busy_timer_);
      busy_timer_ = 0;
   }
}

void RecordingService::arm_busy_timer() {
   if (busy_timer_ != 0 || busy_.empty() || stopping_) return;
   const int64_t delay = std::max<int64_t>(0, busy_.front().show_at - host_.monotonic_ms());
   busy_timer_ = loop_.start_timer(static_cast<uint64_t>(delay), [this] {
      busy_timer_ = 0;
      const int64_t now = host_.monotonic_ms();
      while (!busy_.empty() && busy_.front().show_at <= now) {
         BusyCall due = std::move(busy_.front());
         busy_.pop_front();
         auto it = busy_at_.find(due.call_id);
         // Done in time (or since queued again, later): nothing to show for this entry.
         if (it == busy_at_.end() || it->second != due.show_at) continue;
         busy_at_.erase(it);
         std::optional<CallRecord> record = store_.load_call(due.call_id);
         if (record && (record->recording == RecordingState::fetching ||
                        record->recording == RecordingState::attaching)) {
            show_on_host(*record);
         }
      }
      arm_busy_timer();
   });
}

size_t RecordingService::show_calls_behind_host() {
   size_t shown = 0;
   std::string after;
   for (;;) {
      std::vector<CallRecord> page = store_.calls_behind_host(kResumeBatch, after);
      if (page.empty()) break;
      std::vector<std::string> done;
      for (const CallRecord &record : page) {
         if (show_on_host(record)) done.push_back(record.call_id);
      }
      store_.mark_host_synced(done);
      shown += done.size();
      after = page.back().call_id;
   }
   return shown;
}

size_t RecordingService::remove_stale_recordings() {
   // A complete download is kept only while its call is attaching with exactly this file; any
   // other file is left over from a crash between the download and its attachment's end.
   size_t removed = 0;
   std::error_code ec;
   for (const auto &entry : fs::directory_iterator(fs::path(data_dir_) / "recordings", ec)) {
      const std::optional<std::string> call_id = percent_decode(entry.path().stem().string());
      std::optional<CallRecord> record = call_id ? store_.load_call(*call_id) : std::nullopt;
      const bool needed = record && record->recording == RecordingState::attaching &&
                          fs::path(record->recording_file).filename() == entry.path().filename();
      std::error_code remove_ec;
      if (!needed && fs::remove(entry.path(), remove_ec)) ++removed;
   }
   return removed;
}

void RecordingService::start_fetch(const StartFetch &action) {
   if (free_download_slots() == 0) {
      // The call stays `fetching` in the store; its download starts when a slot frees (or, after
      // a crash, from resume). Only the call id and URL wait here, not a file and a transfer.
      deferred_fetches_.push_back(action);
      return;
   }
   begin_fetch(action);
}

void RecordingService::begin_fetch(const StartFetch &action) {
   // The claim is a unique row: a second READY, a poll and a restart can never download twice.
   if (!store_.claim_fetch(action.call_id, host_.wall_ms())) {
      host_.log(HDP_LOG_DEBUG, "[WaVoIP] Download of call " + action.call_id + " already in flight or done");
      return;
   }
   host_.log(HDP_LOG_INFO, "[WaVoIP] Downloading the recording of call " + action.call_id);
   metrics_.fetch_started();
   FetchRequest request{action.call_id, action.url, temp_path_for(action.call_id)};
   fetcher_->fetch(std::move(request), [this](const FetchResult &result) { on_fetch_done(result); });
}

void RecordingService::on_fetch_done(const FetchResult &result) {
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
   host_.log(outcome.kind == FetchKind::ready_file ? HDP_LOG_INFO : HDP_LOG_WARNING,
             "[WaVoIP] Download of call " + result.call_id + ": " + std::string(to_string(outcome.kind)) + " (" +
                 describe(outcome) + ")");
   std::optional<FlowResult> applied = apply_input(result.call_id, outcome);
   if (!applied || applied->record.recording != RecordingState::attaching) {
      store_.release_fetch(result.call_id);
   }
   // A download slot is free: downloads that waited for one first, then due polls.
   while (!deferred_fetches_.empty() && downloads_in_flight() < download_limit() && !stopping_) {
      StartFetch next = std::move(deferred_fetches_.front());
      deferred_fetches_.pop_front();
      begin_fetch(next);
   }
   arm_poll_timer();
}

void RecordingService::attach(const Attach &action) {
   auto fail = [&](const std::string &detail) {
      metrics_.attachment(false);
      apply_input(action.call_id, AttachOutcome{false, {}, detail});
   };
   std::optional<CallRecord> record = store_.load_call(action.call_id);
   if (!record) return;
   std::optional<uint64_t> message = known_message(*record);
   if (!message) {
      fail("the host could not create the call's message");
      return;
   }
   const std::string key = external_key(action.call_id);
   const std::string file_name = "call-" + percent_encode(action.call_id) + "." + extension_for(action.content_type);
   hdp_attachment_t attachment{};
   attachment.struct_size = sizeof(attachment);
   attachment.message_id = *message;
   attachment.file_path = action.file_path.c_str();
   attachment.file_name = file_name.c_str();
   attachment.mime_type = action.content_type.c_str();
   attachment.idempotency_key = key.c_str();
   uint64_t job = 0;
   hdp_status_t status =
       host_.attachments()->attach_file(host_.raw(), &attachment, &RecordingService::on_attach_done, this, &job);
   if (status != HDP_OK) {
      fail("the host refused the attachment (status " + std::to_string(status) + ")");
      return;
   }
   attach_jobs_[job] = AttachJob{action.call_id, action.file_path};
}

void RecordingService::on_attach_done(void *user_data, const hdp_attachment_result_t *result) {
   auto *self = static_cast<RecordingService *>(user_data);
   without_exceptions(self->host_, "attachment callback", [&] { self->attach_done(result->job_id, *result); });
}

void RecordingService::attach_done(uint64_t job_id, const hdp_attachment_result_t &result) {
   auto it = attach_jobs_.find(job_id);
   if (it == attach_jobs_.end()) return;
   AttachJob job = std::move(it->second);
   attach_jobs_.erase(it);
   if (result.status == HDP_ERR_CANCELLED || stopping_) return;  // resumed after the restart
   if (result.status != HDP_OK) {
      metrics_.attachment(false);
      apply_input(job.call_id, AttachOutcome{false, {}, "host status " + std::to_string(result.status)});
      return;
   }
   metrics_.attachment(true);
   metrics_.attached(job.call_id);
   const std::string attachment_id = std::to_string(result.attachment_id);
   if (!store_.mark_attached(job.call_id, attachment_id, host_.wall_ms())) {
      host_.log(HDP_LOG_INFO, "[WaVoIP] Call " + job.call_id + " was already attached");
   }
   apply_input(job.call_id, AttachOutcome{true, attachment_id, {}});
   std::error_code ec;
   fs::remove(job.file_path, ec);
}

bool RecordingService::retry(const std::string &call_id) {
   return apply_input(call_id, ManualRetry{}).has_value();
}

size_t RecordingService::download_limit() const {
   return static_cast<size_t>(std::max(config_.max_concurrent_downloads, 1));
}

size_t RecordingService::free_download_slots() const {
   // Deferred downloads count as busy: a new download or poll does not overtake them.
   const size_t busy = downloads_in_flight() + deferred_fetches_.size();
   return busy >= download_limit() ? 0 : download_limit() - busy;
}

void RecordingService::arm_poll_timer(TimeMs min_delay_ms) {
   if (stopping_) return;
   std::optional<TimeMs> due = store_.earliest_due();
   const TimeMs now = host_.wall_ms();
   // Due now but no download slot: a finished download re-arms, so nothing spins meanwhile and
   // the due calls wait in the store, not in memory.
   if (due && *due <= now && free_download_slots() == 0) due.reset();
   if (poll_timer_ != 0 && poll_timer_due_ == due && min_delay_ms == 0) return;
   if (poll_timer_ != 0) {
      loop_.cancel_timer(poll_timer_);
      poll_timer_ = 0;
      poll_timer_due_.reset();
   }
   if (!due) return;
   const TimeMs delay = std::max<TimeMs>(min_delay_ms, *due - now);
   poll_timer_due_ = due;
   poll_timer_ = loop_.start_timer(static_cast<uint64_t>(delay), [this] {
      poll_timer_ = 0;
      poll_timer_due_.reset();
      on_poll_timer();
   });
}

void RecordingService::on_poll_timer() {
   // The count reads the whole pending index (about 6 ms per 100,000 calls), and a burst of due
   // polls runs this once per finished download: refreshed at most every kPendingGaugeEveryMs.
   const int64_t monotonic = host_.monotonic_ms();
   if (!pending_gauge_at_ || monotonic - *pending_gauge_at_ >= kPendingGaugeEveryMs) {
      pending_gauge_at_ = monotonic;
      metrics_.pending_polls(store_.count_pending());
   }
   const TimeMs now = host_.wall_ms();
   // No more polls at once than there are free download slots: the rest stay due in the store.
   std::vector<CallRecord> due = store_.due_calls(now, std::min(kPollBatch, free_download_slots()));
   size_t consumed = 0;
   for (const CallRecord &record : due) {
      std::optional<FlowResult> result = apply_input(record.call_id, PollDue{});
      if (result && result->record.next_attempt_at != record.next_attempt_at) ++consumed;
   }
   // A full batch may leave more due calls: the re-armed timer has no delay then, and other
   // work on the loop runs in between. A batch of which nothing could be consumed (the store
   // failed) is tried again a second later instead of at once, forever.
   arm_poll_timer(!due.empty() && consumed == 0 ? kStuckPollRetryMs : 0);
}

void RecordingService::shutdown() {
   stopping_ = true;
   queue_.clear();
   deferred_fetches_.clear();
   attach_jobs_.clear();
   fetcher_.reset();  // abandons transfers; their partial files are removed
   drain_timer_ = 0;
   busy_timer_ = 0;
   busy_.clear();
   busy_at_.clear();
   sync_timer_ = 0;
   synced_.clear();
   poll_timer_ = 0;
   poll_timer_due_.reset();
}

}  // namespace wavoip

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

// The host's message id kept in the call's record by an earlier step, if any.
std::optional<uint64_t> stored_message_id(const CallRecord &record) {
   uint64_t stored = 0;
   const std::string &text = record.message_id;
   if (text.empty() || std::from_chars(text.data(), text.data() + text.size(), stored).ec != std::errc() ||
       stored == 0) {
      return std::nullopt;
   }
   return stored;
}

// Runs on the writer, inside the batch: one step of a known call's flow, with the download claim
// and release folded into the same transaction. A StartFetch whose claim fails (a download of
// the call is in flight or it is attached) is dropped.
std::optional<FlowResult> step_in_store(Store &store, const std::string &call_id, const FlowInput &input, TimeMs now,
                                        const std::string &message_id, const Config &config) {
   std::optional<FlowResult> result = store.apply_to_call(call_id, [&](const CallRecord &current) {
      // The host's message id rides along, so that after a restart the message is found without
      // an upsert.
      CallRecord record = current;
      if (!message_id.empty()) record.message_id = message_id;
      return step(record, input, now, config);
   });
   if (!result) return result;
   claim_or_drop_fetches(store, call_id, result->actions, now);
   return result;
}

}  // namespace

// One hdp.messages/2 write in flight; owned by the host's callback (deleted there).
struct RecordingService::MessageOp {
   RecordingService *service = nullptr;
   std::string call_id;
};

RecordingService::RecordingService(const HostApi &host, EventLoop &loop, StoreWriter &writer, const Config &config,
                                   std::string data_dir)
    : host_(host), loop_(loop), writer_(writer), config_(config), data_dir_(std::move(data_dir)),
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

void claim_or_drop_fetches(Store &store, const std::string &call_id, std::vector<Action> &actions, TimeMs now) {
   const size_t dropped = std::erase_if(actions, [&](const Action &action) {
      return std::holds_alternative<StartFetch>(action) && !store.claim_fetch(call_id, now);
   });
   if (dropped > 0) {
      actions.emplace_back(LogLine{LogLevel::debug, "[WaVoIP] Download of call " + call_id + " already in flight or done"});
   }
}

// ---- restart -------------------------------------------------------------------------------

void RecordingService::resume() {
   struct Resumed {
      std::int64_t dropped = 0;
      size_t removed = 0;
      std::vector<FlowResult> restarted;
      std::vector<CallRecord> behind;
      std::int64_t pending = 0;
   };
   const TimeMs now = host_.wall_ms();
   anonymous_job_started();
   // Before the host serves anything: a plugin that reports ready has taken up its work again.
   writer_.run_now(
       [this, now, data_dir = data_dir_](Store &store) -> StoreWriter::Continuation {
          auto out = std::make_shared<Resumed>();
          out->dropped = store.release_all_fetch_claims();
          // No download runs yet, so every partial file is left over from an interrupted one.
          std::error_code ec;
          for (const auto &entry : fs::directory_iterator(fs::path(data_dir) / "downloads", ec)) {
             std::error_code remove_ec;
             if (entry.path().extension() == ".part" && fs::remove(entry.path(), remove_ec)) ++out->removed;
          }
          // A complete download is kept only while its call is attaching with exactly this file;
          // any other file is left over from a crash between the download and its attachment.
          for (const auto &entry : fs::directory_iterator(fs::path(data_dir) / "recordings", ec)) {
             const std::optional<std::string> call_id = percent_decode(entry.path().stem().string());
             std::optional<CallRecord> record = call_id ? store.load_call(*call_id) : std::nullopt;
             const bool needed = record && record->recording == RecordingState::attaching &&
                                 fs::path(record->recording_file).filename() == entry.path().filename();
             std::error_code remove_ec;
             if (!needed && fs::remove(entry.path(), remove_ec)) ++out->removed;
          }
          std::string after;
          for (;;) {
             std::vector<CallRecord> page = store.calls_needing_resume(kResumeBatch, after);
             if (page.empty()) break;
             for (const CallRecord &record : page) {
                if (auto result = step_in_store(store, record.call_id, Resume{}, now, record.message_id, config_)) {
                   out->restarted.push_back(std::move(*result));
                }
             }
             after = page.back().call_id;
          }
          after.clear();
          for (;;) {
             std::vector<CallRecord> page = store.calls_behind_host(kResumeBatch, after);
             if (page.empty()) break;
             after = page.back().call_id;
             for (CallRecord &record : page) out->behind.push_back(std::move(record));
          }
          out->pending = store.count_pending();
          return [this, out] {
             for (const FlowResult &result : out->restarted) carry_out(result);
             for (const CallRecord &record : out->behind) {
                // Shown whole: the crash may have kept the message itself from the host.
                show(record, true, to_host_status(record.recording));
             }
             metrics_.pending_polls(out->pending);
             host_.log(HDP_LOG_INFO, "[WaVoIP] Resumed: " + std::to_string(out->restarted.size()) +
                                         " download(s) or attachment(s) restarted, " + std::to_string(out->dropped) +
                                         " stale claim(s) voided, " + std::to_string(out->removed) +
                                         " leftover file(s) removed, " + std::to_string(out->behind.size()) +
                                         " call(s) shown again on the host, " + std::to_string(out->pending) +
                                         " call(s) still waiting for a recording");
             anonymous_job_finished();
          };
       },
       [this](const std::string &why) {
          host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not resume: " + why);
          anonymous_job_finished();
       });
}

// ---- steps and their actions -------------------------------------------------------------------

void RecordingService::job_started(const std::string &call_id) { unsettled(call_id); }

void RecordingService::job_finished(const std::string &call_id) { settled(call_id); }

void RecordingService::apply(const std::string &call_id, FlowInput input,
                             std::function<void(std::optional<FlowResult>)> then,
                             std::function<void(const std::string &)> failed) {
   if (stopping_) return;
   const TimeMs now = host_.wall_ms();
   std::string message_id;
   if (auto it = shown_.find(call_id); it != shown_.end() && it->second.message_id != 0) {
      message_id = std::to_string(it->second.message_id);
   }
   unsettled(call_id);
   writer_.submit(
       [this, call_id, input = std::move(input), now, message_id,
        then = std::move(then)](Store &store) mutable -> StoreWriter::Continuation {
          std::optional<FlowResult> result = step_in_store(store, call_id, input, now, message_id, config_);
          // A download that ended anywhere but in a file to attach gives its claim back.
          if (std::holds_alternative<FetchOutcome>(input) &&
              (!result || result->record.recording != RecordingState::attaching)) {
             store.release_fetch(call_id);
          }
          return [this, call_id, result = std::move(result), then = std::move(then)] {
             if (!result) host_.log(HDP_LOG_WARNING, "[WaVoIP] No such call " + call_id);
             if (result) carry_out(*result);
             if (then) then(result);
             settled(call_id);
          };
       },
       [this, call_id, failed = std::move(failed)](const std::string &why) {
          host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not update call " + call_id + ": " + why);
          if (failed) failed(why);
          settled(call_id);
       });
}

void RecordingService::carry_out(const FlowResult &result) {
   if (stopping_) return;
   const CallRecord &record = result.record;
   bool fields = false;
   bool status = false;
   bool busy = false;
   std::vector<const StartFetch *> fetches;
   std::vector<const Attach *> attaches;
   for (const Action &action : result.actions) {
      std::visit(
          [&](const auto &a) {
             using T = std::decay_t<decltype(a)>;
             if constexpr (std::is_same_v<T, UpsertMessage>) {
                fields = true;
             } else if constexpr (std::is_same_v<T, SetRecordingStatus>) {
                if (a.status == RecordingState::failed) metrics_.recording_failed(a.call_id);
                // A poll answered 404, or a small recording fetched and attached, is over in
                // milliseconds: showing "downloading" for it would be host writes and a flicker
                // on the agent's screen for nothing. It is shown if the call is still busy
                // kShowBusyAfterMs later.
                busy = a.status == RecordingState::fetching || a.status == RecordingState::attaching;
                status = !busy;
             } else if constexpr (std::is_same_v<T, StartFetch>) {
                fetches.push_back(&a);
             } else if constexpr (std::is_same_v<T, Attach>) {
                attaches.push_back(&a);
             } else if constexpr (std::is_same_v<T, LogLine>) {
                host_.log(to_host_level(a.level), a.text);
             } else {
                // SchedulePoll and CancelPoll: the due times are in the store; the batch's
                // earliest due time re-arms the one timer.
             }
          },
          action);
   }
   if (busy) show_busy_later(record);
   if (status) not_busy(record.call_id);
   // The stored state, not the action's: the record is the one this step committed.
   if (fields || status) show(record, fields, status ? std::optional<int32_t>(to_host_status(record.recording)) : std::nullopt);
   for (const StartFetch *fetch : fetches) start_fetch(*fetch);
   for (const Attach *attach_action : attaches) attach(*attach_action, record);
}

// ---- showing calls on the host -----------------------------------------------------------------

void RecordingService::remember_message(const std::string &call_id, uint64_t message_id) {
   auto it = shown_.find(call_id);
   if (it == shown_.end()) {
      if (shown_.size() >= kMaxShown) shown_.clear();
      shown_.emplace(call_id, Shown{message_id, -1, {}});
   } else if (it->second.message_id != message_id) {
      // A message the host made anew (or first learnt): what it shows is not known.
      if (it->second.message_id != 0) it->second = Shown{message_id, -1, {}};
      it->second.message_id = message_id;
   }
}

// The call's message as the host's messages tables take it, built from the record; owns the
// strings the view points into.
struct RecordingService::CallMessage {
   CallMessage(const RecordingService &service, const CallRecord &record)
       : key(external_key(record.call_id)), contact(record.contact()) {
      if (!is_phone_number(contact)) {
         // The host takes digits only; a malformed number must not keep the call from its message.
         service.host_.log(HDP_LOG_WARNING, "[WaVoIP] Call " + record.call_id +
                                                ": the contact is not a phone number (digits); showing the call "
                                                "without it");
         contact.clear();
      }
      view.struct_size = sizeof(view);
      view.external_key = key.c_str();
      view.inbox = record.inbox.c_str();
      view.contact = contact.c_str();
      view.direction = to_host_direction(record.direction);
      view.call_status = record.call_status.empty() ? nullptr : record.call_status.c_str();
      view.duration_s = record.duration_s.value_or(-1);
   }
   CallMessage(const CallMessage &) = delete;
   CallMessage &operator=(const CallMessage &) = delete;

   std::string key;
   std::string contact;
   hdp_call_message_t view{};
};

void RecordingService::show(const CallRecord &record, bool fields, std::optional<int32_t> status) {
   if (stopping_) return;
   if (host_.messages2() == nullptr) {
      show_v1(record, fields, status);
      return;
   }
   auto known = shown_.find(record.call_id);
   if (!fields && status && known != shown_.end() && known->second.message_id != 0 &&
       known->second.status == *status && known->second.reason == record.reason) {
      return;  // the host shows this already
   }
   const CallMessage call_message(*this, record);
   const hdp_call_message_t &message = call_message.view;
   auto op = std::make_unique<MessageOp>();
   op->service = this;
   op->call_id = record.call_id;
   uint64_t op_id = 0;
   const hdp_status_t started = host_.messages2()->upsert_call_message(
       host_.raw(), &message, status.value_or(HDP_RECORDING_UNCHANGED), status ? record.reason.c_str() : nullptr,
       &RecordingService::on_message_done, op.get(), &op_id);
   if (started != HDP_OK) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not show call " + record.call_id + " (status " +
                                   std::to_string(started) + ")");
      shown_.erase(record.call_id);
      shown_failed(record.call_id);
      return;
   }
   op.release();  // the callback owns it now
   unsettled(record.call_id);
   ++message_ops_[record.call_id];
   if (status) {
      // What the host will show once the write lands; a failed write forgets it again.
      Shown &shown = shown_[record.call_id];
      shown.status = *status;
      shown.reason = record.reason;
   }
}

void RecordingService::on_message_done(void *user_data, const hdp_message_result_t *result) {
   std::unique_ptr<MessageOp> op(static_cast<MessageOp *>(user_data));
   RecordingService *self = op->service;
   without_exceptions(self->host_, "message callback", [&] { self->message_done(*op, *result); });
}

void RecordingService::message_done(MessageOp &op, const hdp_message_result_t &result) {
   const std::string &call_id = op.call_id;
   if (auto it = message_ops_.find(call_id); it != message_ops_.end() && --it->second <= 0) message_ops_.erase(it);
   std::vector<MessageWaiter> waiters;
   const bool last = message_ops_.count(call_id) == 0;
   if (last) {
      if (auto it = message_waiters_.find(call_id); it != message_waiters_.end()) {
         waiters = std::move(it->second);
         message_waiters_.erase(it);
      }
   }
   if (result.status == HDP_OK && result.message_id != 0) {
      remember_message(call_id, result.message_id);
      shown_ok(call_id);
   } else {
      if (result.status != HDP_ERR_CANCELLED) {
         host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not show call " + call_id + " (status " +
                                      std::to_string(result.status) + ")");
      }
      shown_.erase(call_id);
      shown_failed(call_id);
   }
   settled(call_id);
   std::optional<uint64_t> id;
   if (auto it = shown_.find(call_id); it != shown_.end() && it->second.message_id != 0) id = it->second.message_id;
   for (MessageWaiter &waiter : waiters) waiter(id);
}

std::optional<uint64_t> RecordingService::upsert_v1(const CallRecord &record) {
   const CallMessage call_message(*this, record);
   const hdp_call_message_t &message = call_message.view;
   uint64_t id = 0;
   hdp_status_t status = host_.messages()->upsert_call_message(host_.raw(), &message, &id);
   if (status != HDP_OK) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not create the message for call " + record.call_id +
                                   " (status " + std::to_string(status) + ")");
      shown_.erase(record.call_id);
      return std::nullopt;
   }
   remember_message(record.call_id, id);
   return id;
}

void RecordingService::show_v1(const CallRecord &record, bool fields, std::optional<int32_t> status) {
   std::optional<uint64_t> message;
   if (!fields) {
      if (auto it = shown_.find(record.call_id); it != shown_.end() && it->second.message_id != 0) {
         message = it->second.message_id;
      } else if (std::optional<uint64_t> stored = stored_message_id(record)) {
         // Kept in the call's record by an earlier step: no upsert needed after a restart either.
         remember_message(record.call_id, *stored);
         message = stored;
      }
   }
   bool found_again = false;
   if (!message) {
      message = upsert_v1(record);
      found_again = true;
   }
   if (!message) {
      shown_failed(record.call_id);
      return;
   }
   if (!status) {
      shown_ok(record.call_id);
      return;
   }
   Shown &shown = shown_[record.call_id];
   if (shown.message_id == *message && shown.status == *status && shown.reason == record.reason) {
      shown_ok(record.call_id);
      return;
   }
   hdp_status_t result = host_.messages()->set_recording_status(host_.raw(), *message, *status, record.reason.c_str());
   if (result == HDP_ERR_NOT_FOUND && !found_again) {
      // The remembered id is gone on the host's side: find or create the message again.
      shown_.erase(record.call_id);
      show_v1(record, true, status);
      return;
   }
   if (result != HDP_OK) {
      host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not show the recording status of call " + record.call_id +
                                   " (status " + std::to_string(result) + ")");
      shown_.erase(record.call_id);
      shown_failed(record.call_id);
      return;
   }
   Shown &now_shown = shown_[record.call_id];
   now_shown.message_id = *message;
   now_shown.status = *status;
   now_shown.reason = record.reason;
   shown_ok(record.call_id);
}

void RecordingService::with_message(const CallRecord &record, MessageWaiter waiter) {
   if (auto it = shown_.find(record.call_id); it != shown_.end() && it->second.message_id != 0) {
      waiter(it->second.message_id);
      return;
   }
   if (host_.messages2() == nullptr) {
      std::optional<uint64_t> id = stored_message_id(record);
      if (id) {
         remember_message(record.call_id, *id);
      } else {
         id = upsert_v1(record);
      }
      waiter(id);
      return;
   }
   // The id comes with the next write of the call that lands; start one if none is in flight.
   message_waiters_[record.call_id].push_back(std::move(waiter));
   if (message_ops_.count(record.call_id) == 0) show(record, true, std::nullopt);
   // The write could not even start: its failure already ran nobody; answer the waiters now.
   if (message_ops_.count(record.call_id) == 0) {
      auto it = message_waiters_.find(record.call_id);
      if (it == message_waiters_.end()) return;
      std::vector<MessageWaiter> waiters = std::move(it->second);
      message_waiters_.erase(it);
      for (MessageWaiter &w : waiters) w(std::nullopt);
   }
}

// ---- host_sync marks ---------------------------------------------------------------------------

void RecordingService::unsettled(const std::string &call_id) { ++unsettled_[call_id]; }

void RecordingService::settled(const std::string &call_id) {
   auto it = unsettled_.find(call_id);
   if (it == unsettled_.end()) return;
   if (--it->second > 0) return;
   unsettled_.erase(it);
   if (needs_clear_.erase(call_id) == 0 || stopping_) return;
   // Nothing of this call is outstanding and the host shows its last committed change: its mark
   // goes, with the others of this turn, in one job at the turn's end.
   to_clear_.push_back(call_id);
   if (sync_timer_ == 0) {
      sync_timer_ = loop_.start_timer(0, [this] {
         sync_timer_ = 0;
         clear_sync_marks();
      });
   }
}

void RecordingService::shown_ok(const std::string &call_id) {
   needs_clear_.insert(call_id);
   // A host write that completed in the call (hdp.messages/1) settles at once.
   unsettled(call_id);
   settled(call_id);
}

void RecordingService::shown_failed(const std::string &call_id) { needs_clear_.erase(call_id); }

void RecordingService::anonymous_job_started() { ++anonymous_jobs_; }

void RecordingService::anonymous_job_finished() {
   if (anonymous_jobs_ > 0) --anonymous_jobs_;
   // At once: under a drain the next poll batch may be queued before a timer would fire.
   if (anonymous_jobs_ == 0 && !to_clear_.empty() && !stopping_) clear_sync_marks();
}

void RecordingService::clear_sync_marks() {
   // A job that may step any call (the poll batch, the resume) is queued before the clearing
   // would be: it may have marked one of these calls again. Cleared once it has run.
   if (anonymous_jobs_ > 0) return;
   std::vector<std::string> ids;
   ids.swap(to_clear_);
   // A call that became busy again since keeps its mark: its own settling clears it.
   std::erase_if(ids, [&](const std::string &id) { return unsettled_.count(id) != 0; });
   std::sort(ids.begin(), ids.end());
   ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
   if (ids.empty() || stopping_) return;
   writer_.submit(
       [ids = std::move(ids)](Store &store) -> StoreWriter::Continuation {
          store.mark_host_synced(ids);
          return {};
       },
       [this](const std::string &why) {
          host_.log(HDP_LOG_WARNING, "[WaVoIP] Could not clear host sync marks: " + why);
       });
}

// ---- "downloading" -----------------------------------------------------------------------------

void RecordingService::show_busy_later(const CallRecord &record) {
   const int64_t show_at = host_.monotonic_ms() + kShowBusyAfterMs;
   // A call already waiting to be shown busy keeps its first time (fetching, then attaching).
   if (!busy_at_.emplace(record.call_id, BusyEntry{show_at, record}).second) return;
   busy_.push_back({record.call_id, show_at});
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
         if (it == busy_at_.end() || it->second.show_at != due.show_at) continue;
         // Still fetching or attaching: any other state would have gone through not_busy.
         CallRecord record = std::move(it->second.record);
         busy_at_.erase(it);
         show(record, false, HDP_RECORDING_DOWNLOADING);
      }
      arm_busy_timer();
   });
}

// ---- downloads and attachments -----------------------------------------------------------------

void RecordingService::start_fetch(const StartFetch &action) {
   if (free_download_slots() == 0) {
      // The call stays `fetching` in the store (claimed); its download starts when a slot frees
      // (or, after a crash, from resume). Only the call id and URL wait here.
      deferred_fetches_.push_back(action);
      return;
   }
   begin_fetch(action);
}

void RecordingService::begin_fetch(const StartFetch &action) {
   host_.log(HDP_LOG_INFO, "[WaVoIP] Downloading the recording of call " + action.call_id);
   metrics_.fetch_started();
   FetchRequest request{action.call_id, action.url, temp_path_for(action.call_id)};
   fetcher_->fetch(std::move(request), [this](const FetchResult &result) { on_fetch_done(result); });
}

void RecordingService::start_deferred_fetches() {
   while (!deferred_fetches_.empty() && downloads_in_flight() < download_limit() && !stopping_) {
      StartFetch next = std::move(deferred_fetches_.front());
      deferred_fetches_.pop_front();
      begin_fetch(next);
   }
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
   apply(result.call_id, std::move(outcome), {});
   // A download slot is free: downloads that waited for one first, then due polls.
   start_deferred_fetches();
   arm_poll_timer();
}

void RecordingService::attach_failed(const std::string &call_id, const std::string &detail) {
   metrics_.attachment(false);
   apply(call_id, AttachOutcome{false, {}, detail}, {});
}

void RecordingService::attach(const Attach &action, const CallRecord &record) {
   with_message(record, [this, action](std::optional<uint64_t> message) {
      if (stopping_) return;
      if (!message) {
         attach_failed(action.call_id, "the host could not create the call's message");
         return;
      }
      const std::string key = external_key(action.call_id);
      const std::string file_name =
          "call-" + percent_encode(action.call_id) + "." + extension_for(action.content_type);
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
         attach_failed(action.call_id, "the host refused the attachment (status " + std::to_string(status) + ")");
         return;
      }
      attach_jobs_[job] = AttachJob{action.call_id, action.file_path};
   });
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
      attach_failed(job.call_id, "host status " + std::to_string(result.status));
      return;
   }
   metrics_.attachment(true);
   metrics_.attached(job.call_id);
   const std::string attachment_id = std::to_string(result.attachment_id);
   const TimeMs now = host_.wall_ms();
   unsettled(job.call_id);
   // The attachment's record and the step that follows from it: one transaction.
   writer_.submit(
       [this, job, attachment_id, now](Store &store) -> StoreWriter::Continuation {
          const bool first = store.mark_attached(job.call_id, attachment_id, now);
          std::optional<FlowResult> result =
              step_in_store(store, job.call_id, AttachOutcome{true, attachment_id, {}}, now, {}, config_);
          return [this, job, first, result = std::move(result)] {
             if (!first) host_.log(HDP_LOG_INFO, "[WaVoIP] Call " + job.call_id + " was already attached");
             if (result) carry_out(*result);
             std::error_code ec;
             fs::remove(job.file_path, ec);
             settled(job.call_id);
          };
       },
       [this, call_id = job.call_id](const std::string &why) {
          // Still attaching in the store: a restart attaches again (the key makes it safe).
          host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not record the attachment of call " + call_id + ": " + why);
          settled(call_id);
       });
}

void RecordingService::retry(const std::string &call_id, std::function<void(RetryAnswer)> answer) {
   auto answered = std::make_shared<std::function<void(RetryAnswer)>>(std::move(answer));
   apply(
       call_id, ManualRetry{},
       [answered](std::optional<FlowResult> result) {
          (*answered)(result ? RetryAnswer::retrying : RetryAnswer::unknown_call);
       },
       [answered](const std::string &) { (*answered)(RetryAnswer::store_failed); });
}

size_t RecordingService::download_limit() const {
   return static_cast<size_t>(std::max(config_.max_concurrent_downloads, 1));
}

size_t RecordingService::free_download_slots() const {
   // Deferred downloads count as busy: a new download or poll does not overtake them.
   const size_t busy = downloads_in_flight() + deferred_fetches_.size();
   return busy >= download_limit() ? 0 : download_limit() - busy;
}

// ---- the poll timer ----------------------------------------------------------------------------

void RecordingService::on_store_batch(const StoreWriter::BatchInfo &info) {
   if (info.deliveries > 0) metrics_.commit_batch(info.deliveries);
   if (!info.earliest_due_known) return;
   earliest_due_ = info.earliest_due;
   arm_poll_timer();
}

void RecordingService::arm_poll_timer(TimeMs min_delay_ms) {
   if (stopping_ || poll_job_pending_) return;
   std::optional<TimeMs> due = earliest_due_;
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
   // The count reads the whole pending index (about 6 ms per 100,000 calls): refreshed at most
   // every kPendingGaugeEveryMs, inside the poll batch.
   const int64_t monotonic = host_.monotonic_ms();
   const bool count = !pending_gauge_at_ || monotonic - *pending_gauge_at_ >= kPendingGaugeEveryMs;
   if (count) pending_gauge_at_ = monotonic;
   const TimeMs now = host_.wall_ms();
   // No more polls at once than there are free download slots: the rest stay due in the store.
   const size_t limit = std::min(kPollBatch, free_download_slots());
   if (limit == 0) return;  // a finished download re-arms
   struct Polled {
      std::vector<FlowResult> results;
      size_t due = 0;
      size_t consumed = 0;
      std::optional<std::int64_t> pending;
   };
   poll_job_pending_ = true;
   anonymous_job_started();
   // Every due poll of this timer run, with its claim: one transaction.
   writer_.submit(
       [this, now, limit, count](Store &store) -> StoreWriter::Continuation {
          auto out = std::make_shared<Polled>();
          if (count) out->pending = store.count_pending();
          std::vector<CallRecord> due = store.due_calls(now, limit);
          out->due = due.size();
          for (const CallRecord &record : due) {
             std::optional<FlowResult> result =
                 step_in_store(store, record.call_id, PollDue{}, now, record.message_id, config_);
             if (!result) continue;
             if (result->record.next_attempt_at != record.next_attempt_at) ++out->consumed;
             out->results.push_back(std::move(*result));
          }
          return [this, out] {
             poll_job_pending_ = false;
             if (out->pending) metrics_.pending_polls(*out->pending);
             for (const FlowResult &result : out->results) carry_out(result);
             // A full batch may leave more due calls: the re-armed timer has no delay then, and
             // other work on the loop runs in between. A batch of which nothing could be consumed
             // is tried again a second later instead of at once, forever.
             arm_poll_timer(out->due > 0 && out->consumed == 0 ? kStuckPollRetryMs : 0);
             anonymous_job_finished();
          };
       },
       [this](const std::string &why) {
          poll_job_pending_ = false;
          host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not take the due polls: " + why);
          arm_poll_timer(kStuckPollRetryMs);
          anonymous_job_finished();
       });
}

void RecordingService::shutdown() {
   stopping_ = true;
   deferred_fetches_.clear();
   attach_jobs_.clear();
   fetcher_.reset();  // abandons transfers; their partial files are removed
   busy_timer_ = 0;
   busy_.clear();
   busy_at_.clear();
   sync_timer_ = 0;
   to_clear_.clear();
   poll_timer_ = 0;
   poll_timer_due_.reset();
   message_waiters_.clear();
}

}  // namespace wavoip

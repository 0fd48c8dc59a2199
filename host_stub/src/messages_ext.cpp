// ext/messages.h on top of HelpdeskStore: /1 writes inside the call, /2 and /3 queue the write on
// BatchedWrites (one transaction per loop turn) and report through a callback; /3 keeps the
// technical detail apart from the reason (/1 and /2 leave it empty).
#include <algorithm>
#include <cstring>
#include <exception>
#include <string_view>

#include "batched_writes.hpp"
#include "extensions.hpp"
#include "helpdesk_store.hpp"
#include "metrics.hpp"
#include "plugin_host_table.hpp"

namespace hdp::host {
namespace {

constexpr size_t kMaxKeyBytes = 255;
constexpr size_t kMaxReasonBytes = 1024;

bool has_control_characters(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

// NULL-safe view.
std::string_view view(const char* s) {
  return s == nullptr ? std::string_view() : std::string_view(s);
}

// Digits only; a leading '+' is tolerated and dropped.
bool normalize_contact(std::string_view in, std::string& out) {
  if (in.starts_with('+')) in.remove_prefix(1);
  if (in.size() > 32) return false;
  if (!std::all_of(in.begin(), in.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  out = in;
  return true;
}

// The checks of /1 and /2: fills upsert from message, or logs and says no.
bool read_upsert(PluginContext* context, const hdp_call_message_t* message, CallMessageUpsert& upsert) {
  if (message == nullptr || message->struct_size < HDP_CALL_MESSAGE_V1_SIZE) return false;
  const std::string_view key = view(message->external_key);
  const std::string_view inbox = view(message->inbox);
  const std::string_view call_status = view(message->call_status);
  if (key.empty() || key.size() > kMaxKeyBytes || has_control_characters(key) || inbox.size() > kMaxKeyBytes ||
      has_control_characters(inbox) || call_status.size() > kMaxKeyBytes || has_control_characters(call_status) ||
      !normalize_contact(view(message->contact), upsert.contact)) {
    context->log(LogLevel::warning,
                 "upsert_call_message: invalid argument (key \"" + std::string(key.substr(0, 64)) + "\")");
    return false;
  }
  upsert.plugin_id = context->id();
  upsert.external_key = key;
  upsert.inbox = inbox;
  upsert.direction = message->direction;
  if (message->call_status != nullptr) upsert.call_status = std::string(call_status);
  if (message->duration_s >= 0) upsert.duration_s = message->duration_s;
  return true;
}

// NULL, "", or a path (and query) of the plugin's own: starts with one '/', no spaces or control
// characters.
bool valid_retry_path(std::string_view path) {
  if (path.empty()) return true;
  // Not "//host/..." nor "/\\host": a page would take either for another site.
  if (path.starts_with("//") || path.starts_with("/\\")) return false;
  return path.front() == '/' && path.size() <= kMaxReasonBytes && std::none_of(path.begin(), path.end(), [](char c) {
           const auto u = static_cast<unsigned char>(c);
           return u <= 0x20 || u == 0x7f;
         });
}

bool valid_status_target(std::string_view reason, uint64_t message_id) {
  return reason.size() <= kMaxReasonBytes && message_id <= static_cast<uint64_t>(INT64_MAX);
}

// ---- hdp.messages/1: written (and committed) inside the call, after every /2 operation queued
// before it.

hdp_status_t upsert_call_message(const hdp_host_t* host, const hdp_call_message_t* message, uint64_t* out_message_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("upsert_call_message"); s != HDP_OK) return s;
  CallMessageUpsert upsert;
  if (out_message_id == nullptr || !read_upsert(context, message, upsert)) return HDP_ERR_INVALID_ARGUMENT;
  try {
    const WriteResult written = context->services().writes.write_now([&upsert](HelpdeskStore& store) {
      return WriteResult{HDP_OK, store.upsert_call_message(upsert), false, true};
    });
    *out_message_id = static_cast<uint64_t>(written.row_id);
    if (HostMetrics* metrics = context->services().host_metrics) {
      metrics->count_message_write("upsert_call_message");
      metrics->observe_store_batch(1);
    }
    return HDP_OK;
  } catch (const std::exception& e) {
    context->log(LogLevel::error, std::string("upsert_call_message: ") + e.what());
    return HDP_ERR_IO;
  }
}

hdp_status_t set_recording_status(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                  const char* reason) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("set_recording_status"); s != HDP_OK) return s;
  const std::string_view text = view(reason);
  if (!valid_status_target(text, message_id)) return HDP_ERR_INVALID_ARGUMENT;
  try {
    const WriteResult written =
        context->services().writes.write_now([plugin_id = context->id(), id = static_cast<int64_t>(message_id),
                                              recording_status, text](HelpdeskStore& store) {
          const bool found = store.set_recording_status(plugin_id, id, recording_status, text);
          return WriteResult{found ? HDP_OK : HDP_ERR_NOT_FOUND, id, found, true};
        });
    if (written.status != HDP_OK) return HDP_ERR_NOT_FOUND;
    if (HostMetrics* metrics = context->services().host_metrics) {
      metrics->count_message_write("set_recording_status");
      metrics->observe_store_batch(1);
    }
    return HDP_OK;
  } catch (const std::exception& e) {
    context->log(LogLevel::error, std::string("set_recording_status: ") + e.what());
    return HDP_ERR_IO;
  }
}

// ---- hdp.messages/2: queued on BatchedWrites, committed with the rest of the loop turn.

BatchedWrites::Done report_to(hdp_message_callback_t callback, void* user_data) {
  return [callback, user_data](uint64_t op_id, const WriteResult& outcome) {
    hdp_message_result_t result{};
    result.struct_size = sizeof(hdp_message_result_t);
    result.status = outcome.status;
    result.op_id = op_id;
    result.message_id = outcome.status == HDP_OK ? static_cast<uint64_t>(outcome.row_id) : 0;
    callback(user_data, &result);
  };
}

hdp_status_t upsert_call_message_v3(const hdp_host_t* host, const hdp_call_message_t* message, int32_t recording_status,
                                    const char* reason, const char* detail, const char* retry_path,
                                    hdp_message_callback_t callback, void* user_data, uint64_t* out_op_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("upsert_call_message"); s != HDP_OK) return s;
  CallMessageUpsert upsert;
  const std::string_view text = view(reason);
  const std::string_view detail_text = view(detail);
  const std::string_view retry = view(retry_path);
  if (callback == nullptr || out_op_id == nullptr || text.size() > kMaxReasonBytes ||
      detail_text.size() > kMaxReasonBytes || !valid_retry_path(retry) || !read_upsert(context, message, upsert)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (recording_status != HDP_RECORDING_UNCHANGED) {
    upsert.recording_status = recording_status;
    upsert.recording_reason = text;
    upsert.recording_detail = detail_text;
    upsert.retry_path = retry;
  }
  *out_op_id = context->services().writes.start(
      context->owner(), "upsert_call_message_async",
      [upsert = std::move(upsert)](HelpdeskStore& store) {
        return WriteResult{HDP_OK, store.upsert_call_message(upsert), false, false};
      },
      report_to(callback, user_data));
  return HDP_OK;
}

hdp_status_t set_recording_status_v3(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                     const char* reason, const char* detail, const char* retry_path,
                                     hdp_message_callback_t callback, void* user_data, uint64_t* out_op_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("set_recording_status"); s != HDP_OK) return s;
  const std::string_view text = view(reason);
  const std::string_view detail_text = view(detail);
  const std::string_view retry = view(retry_path);
  if (callback == nullptr || out_op_id == nullptr || !valid_status_target(text, message_id) ||
      detail_text.size() > kMaxReasonBytes || !valid_retry_path(retry)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  *out_op_id = context->services().writes.start(
      context->owner(), "set_recording_status_async",
      [plugin_id = context->id(), id = static_cast<int64_t>(message_id), recording_status,
       reason_text = std::string(text), detail_text = std::string(detail_text),
       retry_text = std::string(retry)](HelpdeskStore& store) {
        if (!store.set_recording_status(plugin_id, id, recording_status, reason_text, detail_text, retry_text)) {
          return WriteResult{HDP_ERR_NOT_FOUND, 0, false, false};
        }
        return WriteResult{HDP_OK, id, true, false};
      },
      report_to(callback, user_data));
  return HDP_OK;
}

// /2 is /3 without a detail.
hdp_status_t upsert_call_message_v2(const hdp_host_t* host, const hdp_call_message_t* message, int32_t recording_status,
                                    const char* reason, hdp_message_callback_t callback, void* user_data,
                                    uint64_t* out_op_id) {
  return upsert_call_message_v3(host, message, recording_status, reason, nullptr, nullptr, callback, user_data,
                                out_op_id);
}

hdp_status_t set_recording_status_v2(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                     const char* reason, hdp_message_callback_t callback, void* user_data,
                                     uint64_t* out_op_id) {
  return set_recording_status_v3(host, message_id, recording_status, reason, nullptr, nullptr, callback, user_data,
                                 out_op_id);
}

const hdp_host_messages_t kMessages = {
    sizeof(hdp_host_messages_t),
    upsert_call_message,
    set_recording_status,
};

const hdp_host_messages2_t kMessages2 = {
    sizeof(hdp_host_messages2_t),
    upsert_call_message_v2,
    set_recording_status_v2,
};

const hdp_host_messages3_t kMessages3 = {
    sizeof(hdp_host_messages3_t),
    upsert_call_message_v3,
    set_recording_status_v3,
};

}  // namespace

const hdp_host_messages_t* messages_extension() {
  return &kMessages;
}
const hdp_host_messages2_t* messages2_extension() {
  return &kMessages2;
}
const hdp_host_messages3_t* messages3_extension() {
  return &kMessages3;
}

}  // namespace hdp::host

// ext/messages.h on top of HelpdeskStore.
#include <algorithm>
#include <cstring>
#include <string_view>

#include <SQLiteCpp/Exception.h>

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
std::string_view view(const char* s) { return s == nullptr ? std::string_view() : std::string_view(s); }

// Digits only; a leading '+' is tolerated and dropped.
bool normalize_contact(std::string_view in, std::string& out) {
  if (in.starts_with('+')) in.remove_prefix(1);
  if (in.size() > 32) return false;
  if (!std::all_of(in.begin(), in.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  out = in;
  return true;
}

hdp_status_t upsert_call_message(const hdp_host_t* host, const hdp_call_message_t* message,
                                 uint64_t* out_message_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("upsert_call_message"); s != HDP_OK) return s;
  if (message == nullptr || out_message_id == nullptr ||
      message->struct_size < HDP_CALL_MESSAGE_V1_SIZE) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  const std::string_view key = view(message->external_key);
  const std::string_view inbox = view(message->inbox);
  const std::string_view call_status = view(message->call_status);
  CallMessageUpsert upsert;
  if (key.empty() || key.size() > kMaxKeyBytes || has_control_characters(key) ||
      inbox.size() > kMaxKeyBytes || has_control_characters(inbox) ||
      call_status.size() > kMaxKeyBytes || has_control_characters(call_status) ||
      !normalize_contact(view(message->contact), upsert.contact)) {
    context->log(LogLevel::warning, "upsert_call_message: invalid argument (key \"" +
                                        std::string(key.substr(0, 64)) + "\")");
    return HDP_ERR_INVALID_ARGUMENT;
  }
  upsert.plugin_id = context->id();
  upsert.external_key = key;
  upsert.inbox = inbox;
  upsert.direction = message->direction;
  if (message->call_status != nullptr) upsert.call_status = std::string(call_status);
  if (message->duration_s >= 0) upsert.duration_s = message->duration_s;
  try {
    *out_message_id = static_cast<uint64_t>(context->services().store.upsert_call_message(upsert));
    if (HostMetrics* metrics = context->services().host_metrics) metrics->count_message_write("upsert_call_message");
    return HDP_OK;
  } catch (const SQLite::Exception& e) {
    context->log(LogLevel::error, std::string("upsert_call_message: ") + e.what());
    return HDP_ERR_IO;
  }
}

hdp_status_t set_recording_status(const hdp_host_t* host, uint64_t message_id,
                                  int32_t recording_status, const char* reason) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("set_recording_status"); s != HDP_OK) return s;
  const std::string_view text = view(reason);
  if (text.size() > kMaxReasonBytes || message_id > static_cast<uint64_t>(INT64_MAX)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  try {
    if (!context->services().store.set_recording_status(context->id(), static_cast<int64_t>(message_id),
                                                        recording_status, text)) {
      return HDP_ERR_NOT_FOUND;
    }
    if (HostMetrics* metrics = context->services().host_metrics) metrics->count_message_write("set_recording_status");
    return HDP_OK;
  } catch (const SQLite::Exception& e) {
    context->log(LogLevel::error, std::string("set_recording_status: ") + e.what());
    return HDP_ERR_IO;
  }
}

const hdp_host_messages_t kMessages = {
    sizeof(hdp_host_messages_t),
    upsert_call_message,
    set_recording_status,
};

}  // namespace

const hdp_host_messages_t* messages_extension() { return &kMessages; }

}  // namespace hdp::host

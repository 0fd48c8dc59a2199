// ext/attachments.h on top of AttachmentJobs.
#include <string_view>

#include "attachment_jobs.hpp"
#include "extensions.hpp"
#include "plugin_host_table.hpp"

namespace hdp::host {
namespace {

constexpr size_t kMaxKeyBytes = 255;

std::string_view view(const char* s) {
  return s == nullptr ? std::string_view() : std::string_view(s);
}

bool has_control_characters(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

bool valid_file_name(std::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\\') == std::string_view::npos &&
         !has_control_characters(name);
}

// type/subtype with optional parameters; nothing that could break a header.
bool valid_mime_type(std::string_view type) {
  return !type.empty() && type.size() <= 255 && type.find('/') != std::string_view::npos &&
         !has_control_characters(type);
}

hdp_status_t attach_file(const hdp_host_t* host, const hdp_attachment_t* attachment, hdp_attachment_callback_t callback,
                         void* user_data, uint64_t* out_job_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("attach_file"); s != HDP_OK) return s;
  if (attachment == nullptr || callback == nullptr || out_job_id == nullptr ||
      attachment->struct_size < HDP_ATTACHMENT_V1_SIZE) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  const std::string_view path = view(attachment->file_path);
  const std::string_view name = view(attachment->file_name);
  const std::string_view mime = view(attachment->mime_type);
  const std::string_view key = view(attachment->idempotency_key);
  if (path.empty() || path.front() != '/' || !valid_file_name(name) || !valid_mime_type(mime) || key.empty() ||
      key.size() > kMaxKeyBytes || has_control_characters(key) || attachment->message_id == 0 ||
      attachment->message_id > static_cast<uint64_t>(INT64_MAX)) {
    context->log(LogLevel::warning, "attach_file: invalid argument (file \"" + std::string(name) + "\", key \"" +
                                        std::string(key.substr(0, 64)) + "\")");
    return HDP_ERR_INVALID_ARGUMENT;
  }
  AttachmentJobRequest request;
  request.owner = context->owner();
  request.plugin_id = context->id();
  request.message_id = static_cast<int64_t>(attachment->message_id);
  request.source_path = path;
  request.file_name = name;
  request.mime_type = mime;
  request.idempotency_key = key;
  *out_job_id = context->services().attachments.start(std::move(request),
                                                      [callback, user_data](const AttachmentOutcome& outcome) {
                                                        hdp_attachment_result_t result{};
                                                        result.struct_size = sizeof(hdp_attachment_result_t);
                                                        result.job_id = outcome.job_id;
                                                        result.status = outcome.status;
                                                        result.attachment_id = outcome.attachment_id;
                                                        result.already_attached = outcome.already_attached ? 1 : 0;
                                                        callback(user_data, &result);
                                                      });
  return HDP_OK;
}

const hdp_host_attachments_t kAttachments = {
    sizeof(hdp_host_attachments_t),
    attach_file,
};

}  // namespace

const hdp_host_attachments_t* attachments_extension() {
  return &kAttachments;
}

}  // namespace hdp::host

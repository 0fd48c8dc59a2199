#include "fake_host.hpp"

#include <cstring>

namespace fuzzhost {

FakeHost::FakeHost(std::string config_json, std::string data_dir)
    : config_(std::move(config_json)), data_dir_(std::move(data_dir)) {
   host_.abi_version = HDP_VERSION_INIT;
   host_.struct_size = sizeof(hdp_host_t);
   host_.name = "fuzz-host";
   host_.vendor = "tests";
   host_.version = "1";
   host_.host_data = this;
   host_.get_extension = &FakeHost::get_extension;
   host_.log = &FakeHost::log;
   host_.log_enabled = &FakeHost::log_enabled;
   host_.wall_clock_us = &FakeHost::wall_clock_us;
   host_.monotonic_clock_us = &FakeHost::monotonic_clock_us;
   host_.request_main_thread_callback = &FakeHost::request_main_thread_callback;
   host_.get_config = &FakeHost::get_config;
   host_.get_data_dir = &FakeHost::get_data_dir;

   timers_table_ = {sizeof(hdp_host_timers_t), &FakeHost::register_timer, &FakeHost::cancel_timer};
   fds_table_ = {sizeof(hdp_host_posix_fd_t), &FakeHost::register_fd, &FakeHost::modify_fd, &FakeHost::unregister_fd};
   http_table_ = {sizeof(hdp_host_http_t), &FakeHost::register_route, &FakeHost::unregister_route, &FakeHost::respond};
   messages_table_ = {sizeof(hdp_host_messages_t), &FakeHost::upsert_call_message, &FakeHost::set_recording_status};
   attachments_table_ = {sizeof(hdp_host_attachments_t), &FakeHost::attach_file};
}

FakeHost &FakeHost::self(const hdp_host_t *host) { return *static_cast<FakeHost *>(host->host_data); }

const void *FakeHost::get_extension(const hdp_host_t *host, const char *id) {
   FakeHost &h = self(host);
   if (std::strcmp(id, HDP_EXT_TIMERS) == 0) return &h.timers_table_;
   if (std::strcmp(id, HDP_EXT_POSIX_FD) == 0) return &h.fds_table_;
   if (std::strcmp(id, HDP_EXT_HTTP) == 0) return &h.http_table_;
   if (std::strcmp(id, HDP_EXT_MESSAGES) == 0) return &h.messages_table_;
   if (std::strcmp(id, HDP_EXT_ATTACHMENTS) == 0) return &h.attachments_table_;
   return nullptr;  // optional extensions (metrics, ...) are absent, as the ABI allows
}

void FakeHost::log(const hdp_host_t *host, int32_t, const char *message) {
   // A real host reads the whole NUL-terminated string; so does this (ASan sees an overread).
   volatile size_t length = std::strlen(message);
   (void)length;
   ++self(host).log_lines_;
}

bool FakeHost::log_enabled(const hdp_host_t *, int32_t) { return true; }

int64_t FakeHost::wall_clock_us(const hdp_host_t *host) { return self(host).clock_us_ += 1000; }

int64_t FakeHost::monotonic_clock_us(const hdp_host_t *host) { return self(host).clock_us_ - 1'700'000'000'000'000; }

hdp_status_t FakeHost::request_main_thread_callback(const hdp_host_t *host, hdp_main_thread_callback_t callback,
                                                    void *user_data) {
   if (callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
   // Run at the end of the current dispatch, as a loop runs them after the current turn (the
   // webhook's group commit answers from there).
   self(host).main_thread_calls_.emplace_back(callback, user_data);
   return HDP_OK;
}

void FakeHost::get_config(const hdp_host_t *host, const uint8_t **data, size_t *size) {
   FakeHost &h = self(host);
   *data = reinterpret_cast<const uint8_t *>(h.config_.data());
   *size = h.config_.size();
}

const char *FakeHost::get_data_dir(const hdp_host_t *host) { return self(host).data_dir_.c_str(); }

hdp_status_t FakeHost::register_timer(const hdp_host_t *host, uint64_t, uint64_t, hdp_timer_callback_t callback,
                                      void *, uint64_t *out_id) {
   if (callback == nullptr || out_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
   FakeHost &h = self(host);
   *out_id = h.next_id_++;
   h.timers_[*out_id] = true;
   return HDP_OK;
}

hdp_status_t FakeHost::cancel_timer(const hdp_host_t *host, uint64_t timer_id) {
   return self(host).timers_.erase(timer_id) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::register_fd(const hdp_host_t *host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                                   void *) {
   if (fd < 0 || callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
   return self(host).fds_.emplace(fd, flags).second ? HDP_OK : HDP_ERR_ALREADY_EXISTS;
}

hdp_status_t FakeHost::modify_fd(const hdp_host_t *host, int fd, uint32_t flags) {
   auto it = self(host).fds_.find(fd);
   if (it == self(host).fds_.end()) return HDP_ERR_NOT_FOUND;
   it->second = flags;
   return HDP_OK;
}

hdp_status_t FakeHost::unregister_fd(const hdp_host_t *host, int fd) {
   return self(host).fds_.erase(fd) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::register_route(const hdp_host_t *host, const hdp_http_route_t *route, uint64_t *out_id) {
   if (route == nullptr || out_id == nullptr || route->method == nullptr || route->path == nullptr ||
       route->on_request == nullptr) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   FakeHost &h = self(host);
   Route r;
   r.method = route->method;
   r.path = route->path;
   r.match = route->match;
   r.max_body_bytes = route->max_body_bytes == 0 ? 1024 * 1024 : route->max_body_bytes;
   r.on_request = route->on_request;
   r.user_data = route->user_data;
   *out_id = h.next_id_++;
   h.routes_[*out_id] = r;
   return HDP_OK;
}

hdp_status_t FakeHost::unregister_route(const hdp_host_t *host, uint64_t route_id) {
   return self(host).routes_.erase(route_id) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::respond(const hdp_host_t *host, uint64_t request_id, const hdp_http_response_t *response) {
   FakeHost &h = self(host);
   if (response == nullptr || response->struct_size < HDP_HTTP_RESPONSE_V1_SIZE) return HDP_ERR_INVALID_ARGUMENT;
   if (request_id != h.current_request_ || request_id == 0) return HDP_ERR_NOT_FOUND;
   if (response->status < 200 || response->status > 599) return HDP_ERR_INVALID_ARGUMENT;
   Answer answer;
   answer.status = response->status;
   if (response->content_type != nullptr) answer.content_type = response->content_type;
   if (response->body_len > 0) answer.body.assign(reinterpret_cast<const char *>(response->body), response->body_len);
   h.answers_.push_back(std::move(answer));
   return HDP_OK;
}

hdp_status_t FakeHost::upsert_call_message(const hdp_host_t *host, const hdp_call_message_t *message,
                                           uint64_t *out_message_id) {
   if (message == nullptr || out_message_id == nullptr || message->external_key == nullptr) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   const std::string key = message->external_key;
   // The stub host's rules for the strings it stores.
   for (const char *text : {message->inbox, message->contact, message->call_status}) {
      if (text != nullptr && std::strlen(text) > 255) return HDP_ERR_INVALID_ARGUMENT;
   }
   if (key.empty() || key.size() > 255) return HDP_ERR_INVALID_ARGUMENT;
   FakeHost &h = self(host);
   auto [it, inserted] = h.messages_.emplace(key, 0);
   if (inserted) it->second = h.next_id_++;
   *out_message_id = it->second;
   return HDP_OK;
}

hdp_status_t FakeHost::set_recording_status(const hdp_host_t *, uint64_t message_id, int32_t, const char *reason) {
   if (reason != nullptr && std::strlen(reason) > 1024) return HDP_ERR_INVALID_ARGUMENT;
   return message_id == 0 ? HDP_ERR_NOT_FOUND : HDP_OK;
}

hdp_status_t FakeHost::attach_file(const hdp_host_t *host, const hdp_attachment_t *attachment,
                                   hdp_attachment_callback_t callback, void *, uint64_t *out_job_id) {
   if (attachment == nullptr || callback == nullptr || out_job_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
   *out_job_id = self(host).next_id_++;  // never completes: the fuzzer does not run the loop
   return HDP_OK;
}

const Route *FakeHost::route_for(const std::string &method, const std::string &path) const {
   const Route *best = nullptr;
   for (const auto &[id, r] : routes_) {
      if (r.method != method && r.method != "*") continue;
      const bool exact = path == r.path;
      const bool prefix = r.match == HDP_HTTP_MATCH_PREFIX && path.size() > r.path.size() &&
                          path.compare(0, r.path.size(), r.path) == 0 && path[r.path.size()] == '/';
      if (!exact && !prefix) continue;
      if (best == nullptr || r.path.size() > best->path.size()) best = &r;
   }
   return best;
}

std::vector<Answer> FakeHost::dispatch(const Route &route, const std::string &path, const std::string &query,
                                       const std::vector<std::pair<std::string, std::string>> &headers,
                                       const std::string &body, const std::string &peer) {
   std::vector<hdp_http_header_t> c_headers;
   for (const auto &[name, value] : headers) c_headers.push_back({name.data(), name.size(), value.data(), value.size()});
   hdp_http_request_t request{};
   request.struct_size = sizeof(request);
   request.request_id = current_request_ = next_id_++;
   request.method = route.method.data();
   request.method_len = route.method.size();
   request.path = path.data();
   request.path_len = path.size();
   request.query = query.data();
   request.query_len = query.size();
   request.headers = c_headers.data();
   request.header_count = c_headers.size();
   // A copy of exactly body.size() bytes, so that ASan sees any read past the end.
   std::vector<uint8_t> bytes(body.begin(), body.end());
   request.body = bytes.empty() ? nullptr : bytes.data();
   request.body_len = bytes.size();
   request.peer_address = peer.data();
   request.peer_address_len = peer.size();
   answers_.clear();
   route.on_request(route.user_data, &request);
   while (!main_thread_calls_.empty()) {
      auto [callback, user_data] = main_thread_calls_.front();
      main_thread_calls_.erase(main_thread_calls_.begin());
      callback(user_data);
   }
   current_request_ = 0;
   return std::move(answers_);
}

}  // namespace fuzzhost

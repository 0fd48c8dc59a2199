#include "fake_host.hpp"

#include <poll.h>

#include <algorithm>
#include <cstring>

namespace testsupport {

FakeHost::FakeHost(std::string config_json, std::string data_dir)
    : config_(std::move(config_json)), data_dir_(std::move(data_dir)) {
  host_.abi_version = HDP_VERSION_INIT;
  host_.struct_size = sizeof(hdp_host_t);
  host_.name = "fake-host";
  host_.vendor = "tests";
  host_.version = "1";
  host_.host_data = this;
  host_.get_extension = &FakeHost::get_extension;
  host_.log = &FakeHost::log_line;
  host_.log_enabled = &FakeHost::log_enabled;
  host_.wall_clock_us = &FakeHost::wall_clock;
  host_.monotonic_clock_us = &FakeHost::monotonic_clock;
  host_.request_main_thread_callback = &FakeHost::request_main_thread_callback;
  host_.get_config = &FakeHost::get_config;
  host_.get_data_dir = &FakeHost::get_data_dir;

  timers_table_ = {sizeof(hdp_host_timers_t), &FakeHost::register_timer, &FakeHost::cancel_timer};
  fds_table_ = {sizeof(hdp_host_posix_fd_t), &FakeHost::register_fd, &FakeHost::modify_fd, &FakeHost::unregister_fd};
  http_table_ = {sizeof(hdp_host_http_t), &FakeHost::register_route, &FakeHost::unregister_route, &FakeHost::respond};
  messages_table_ = {sizeof(hdp_host_messages_t), &FakeHost::upsert_call_message, &FakeHost::set_recording_status};
  attachments_table_ = {sizeof(hdp_host_attachments_t), &FakeHost::attach_file};

  metrics.struct_size = sizeof(hdp_host_metrics_t);
  metrics.register_metric = [](const hdp_host_t* h, const hdp_metric_family_t* f, uint64_t* out) {
    FakeHost& me = self(h);
    if (me.refuse_name == f->name) return HDP_ERR_ALREADY_EXISTS;
    const uint64_t id = me.family_names_.size() + 1;
    me.family_names_[id] = f->name;
    me.families_[id] = *f;
    std::string text = std::string(f->name) + " type=" + std::to_string(f->type) + " labels=";
    for (size_t i = 0; i < f->label_count; ++i) text += std::string(i ? "," : "") + f->label_names[i];
    text += " buckets=" + std::to_string(f->bucket_count);
    me.registered.push_back(text);
    *out = id;
    return HDP_OK;
  };
  metrics.counter_add = [](const hdp_host_t* h, uint64_t id, const char* const* v, size_t n, double d) {
    return self(h).record_metric("counter_add", id, v, n, d);
  };
  metrics.gauge_set = [](const hdp_host_t* h, uint64_t id, const char* const* v, size_t n, double d) {
    return self(h).record_metric("gauge_set", id, v, n, d);
  };
  metrics.gauge_add = [](const hdp_host_t* h, uint64_t id, const char* const* v, size_t n, double d) {
    return self(h).record_metric("gauge_add", id, v, n, d);
  };
  metrics.histogram_observe = [](const hdp_host_t* h, uint64_t id, const char* const* v, size_t n, double d) {
    return self(h).record_metric("histogram_observe", id, v, n, d);
  };
}

FakeHost& FakeHost::self(const hdp_host_t* host) {
  return *static_cast<FakeHost*>(host->host_data);
}

const void* FakeHost::get_extension(const hdp_host_t* host, const char* id) {
  FakeHost& h = self(host);
  if (h.offer_metrics && std::strcmp(id, HDP_EXT_METRICS) == 0) return &h.metrics;
  if (!h.offer_core_extensions) return nullptr;
  if (std::strcmp(id, HDP_EXT_TIMERS) == 0) return &h.timers_table_;
  if (std::strcmp(id, HDP_EXT_POSIX_FD) == 0) return &h.fds_table_;
  if (std::strcmp(id, HDP_EXT_HTTP) == 0) return &h.http_table_;
  if (std::strcmp(id, HDP_EXT_MESSAGES) == 0) return &h.messages_table_;
  if (std::strcmp(id, HDP_EXT_ATTACHMENTS) == 0) return &h.attachments_table_;
  return nullptr;  // optional extensions (messages/2, ...) are absent, as the ABI allows
}

void FakeHost::log_line(const hdp_host_t* host, int32_t, const char* message) {
  // A real host reads the whole NUL-terminated string; so does this (ASan sees an overread).
  FakeHost& h = self(host);
  std::lock_guard<std::mutex> lock(h.mutex_);
  h.log.emplace_back(message);
}

size_t FakeHost::log_lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return log.size();
}

bool FakeHost::log_enabled(const hdp_host_t*, int32_t) {
  return true;
}

int64_t FakeHost::wall_clock(const hdp_host_t* host) {
  FakeHost& h = self(host);
  const int64_t step = h.clock_step_us;
  h.monotonic_us += step;
  return h.wall_clock_us += step;
}

int64_t FakeHost::monotonic_clock(const hdp_host_t* host) {
  return self(host).monotonic_us;
}

hdp_status_t FakeHost::request_main_thread_callback(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                                    void* user_data) {
  if (callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  FakeHost& h = self(host);
  {
    std::lock_guard<std::mutex> lock(h.mutex_);
    if (h.refuse_main_thread_callbacks) return HDP_ERR_BAD_STATE;
    h.calls_.emplace_back(callback, user_data);
    h.requests_from_other_threads_ += std::this_thread::get_id() != h.main_ ? 1 : 0;
  }
  h.queued_.notify_all();
  return HDP_OK;
}

void FakeHost::get_config(const hdp_host_t* host, const uint8_t** data, size_t* size) {
  FakeHost& h = self(host);
  *data = reinterpret_cast<const uint8_t*>(h.config_.data());
  *size = h.config_.size();
}

const char* FakeHost::get_data_dir(const hdp_host_t* host) {
  return self(host).data_dir_.c_str();
}

hdp_status_t FakeHost::register_timer(const hdp_host_t* host, uint64_t delay_ms, uint64_t period_ms,
                                      hdp_timer_callback_t callback, void* user_data, uint64_t* out_id) {
  if (callback == nullptr || out_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  FakeHost& h = self(host);
  *out_id = h.next_id_++;
  h.timers_[*out_id] = Timer{h.monotonic_us + static_cast<int64_t>(delay_ms) * 1000, period_ms, callback, user_data};
  return HDP_OK;
}

hdp_status_t FakeHost::cancel_timer(const hdp_host_t* host, uint64_t timer_id) {
  return self(host).timers_.erase(timer_id) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::register_fd(const hdp_host_t* host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                                   void* user_data) {
  if (fd < 0 || callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  return self(host).fds_.emplace(fd, FdWatch{flags, callback, user_data}).second ? HDP_OK : HDP_ERR_ALREADY_EXISTS;
}

hdp_status_t FakeHost::modify_fd(const hdp_host_t* host, int fd, uint32_t flags) {
  auto it = self(host).fds_.find(fd);
  if (it == self(host).fds_.end()) return HDP_ERR_NOT_FOUND;
  it->second.flags = flags;
  return HDP_OK;
}

hdp_status_t FakeHost::unregister_fd(const hdp_host_t* host, int fd) {
  return self(host).fds_.erase(fd) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::register_route(const hdp_host_t* host, const hdp_http_route_t* route, uint64_t* out_id) {
  if (route == nullptr || out_id == nullptr || route->method == nullptr || route->path == nullptr ||
      route->on_request == nullptr) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  FakeHost& h = self(host);
  FakeRoute r;
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

hdp_status_t FakeHost::unregister_route(const hdp_host_t* host, uint64_t route_id) {
  return self(host).routes_.erase(route_id) == 1 ? HDP_OK : HDP_ERR_NOT_FOUND;
}

hdp_status_t FakeHost::respond(const hdp_host_t* host, uint64_t request_id, const hdp_http_response_t* response) {
  FakeHost& h = self(host);
  if (response == nullptr || response->struct_size < HDP_HTTP_RESPONSE_V1_SIZE) return HDP_ERR_INVALID_ARGUMENT;
  if (request_id != h.current_request_ || request_id == 0) return HDP_ERR_NOT_FOUND;
  if (response->status < 200 || response->status > 599) return HDP_ERR_INVALID_ARGUMENT;
  FakeAnswer answer;
  answer.status = response->status;
  if (response->content_type != nullptr) answer.content_type = response->content_type;
  if (response->body_len > 0) answer.body.assign(reinterpret_cast<const char*>(response->body), response->body_len);
  h.answers_.push_back(std::move(answer));
  return HDP_OK;
}

hdp_status_t FakeHost::upsert_call_message(const hdp_host_t* host, const hdp_call_message_t* message,
                                           uint64_t* out_message_id) {
  if (message == nullptr || out_message_id == nullptr || message->external_key == nullptr) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  const std::string key = message->external_key;
  // The stub host's rules for the strings it stores.
  for (const char* text : {message->inbox, message->contact, message->call_status}) {
    if (text != nullptr && std::strlen(text) > 255) return HDP_ERR_INVALID_ARGUMENT;
  }
  if (key.empty() || key.size() > 255) return HDP_ERR_INVALID_ARGUMENT;
  FakeHost& h = self(host);
  auto [it, inserted] = h.messages_.emplace(key, 0);
  if (inserted) it->second = h.next_id_++;
  *out_message_id = it->second;
  return HDP_OK;
}

hdp_status_t FakeHost::set_recording_status(const hdp_host_t* host, uint64_t message_id, int32_t status,
                                            const char* reason) {
  if (reason != nullptr && std::strlen(reason) > 1024) return HDP_ERR_INVALID_ARGUMENT;
  if (message_id == 0) return HDP_ERR_NOT_FOUND;
  self(host).statuses.push_back(FakeStatusUpdate{message_id, status, reason != nullptr ? reason : ""});
  return HDP_OK;
}

hdp_status_t FakeHost::attach_file(const hdp_host_t* host, const hdp_attachment_t* attachment,
                                   hdp_attachment_callback_t callback, void* user_data, uint64_t* out_job_id) {
  if (attachment == nullptr || callback == nullptr || out_job_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  FakeHost& h = self(host);
  *out_job_id = h.next_id_++;  // completes only through complete_attachment
  const auto text = [](const char* s) { return s != nullptr ? std::string(s) : std::string(); };
  h.attachments.push_back(FakeAttachment{*out_job_id, attachment->message_id, text(attachment->file_path),
                                         text(attachment->file_name), text(attachment->mime_type),
                                         text(attachment->idempotency_key), false});
  h.attach_jobs_[*out_job_id] = AttachJob{callback, user_data};
  return HDP_OK;
}

bool FakeHost::complete_attachment(uint64_t job_id, hdp_status_t status, uint64_t attachment_id) {
  auto it = attach_jobs_.find(job_id);
  if (it == attach_jobs_.end()) return false;
  const AttachJob job = it->second;
  attach_jobs_.erase(it);
  for (FakeAttachment& a : attachments) a.completed = a.completed || a.job_id == job_id;
  hdp_attachment_result_t result{};
  result.struct_size = sizeof(result);
  result.job_id = job_id;
  result.status = status;
  result.attachment_id = status == HDP_OK ? attachment_id : 0;
  job.callback(job.user_data, &result);
  return true;
}

uint64_t FakeHost::message_id(const std::string& external_key) const {
  auto it = messages_.find(external_key);
  return it == messages_.end() ? 0 : it->second;
}

std::map<uint64_t, int64_t> FakeHost::pending_timer_due_in_ms() const {
  std::map<uint64_t, int64_t> due_in;
  for (const auto& [id, timer] : timers_) due_in[id] = (timer.due_us - monotonic_us) / 1000;
  return due_in;
}

std::optional<uint64_t> FakeHost::next_due_timer(int64_t until_us) const {
  std::optional<uint64_t> best;
  for (const auto& [id, timer] : timers_) {
    if (timer.due_us > until_us) continue;
    if (!best || timer.due_us < timers_.at(*best).due_us) best = id;  // ties: the lower id (map order)
  }
  return best;
}

void FakeHost::fire_timer(uint64_t id) {
  const Timer timer = timers_.at(id);
  if (timer.period_ms == 0) {
    timers_.erase(id);
  } else {
    timers_[id].due_us += static_cast<int64_t>(timer.period_ms) * 1000;
  }
  timer.callback(timer.user_data, id);
  run_all();
}

size_t FakeHost::run_due_timers() {
  size_t ran = 0;
  while (std::optional<uint64_t> id = next_due_timer(monotonic_us)) {
    fire_timer(*id);
    ++ran;
  }
  return ran;
}

void FakeHost::advance_ms(int64_t ms) {
  const int64_t until = monotonic_us + ms * 1000;
  while (std::optional<uint64_t> id = next_due_timer(until)) {
    const int64_t step = std::max<int64_t>(timers_.at(*id).due_us - monotonic_us, 0);
    monotonic_us += step;
    wall_clock_us += step;
    fire_timer(*id);
  }
  wall_clock_us += until - monotonic_us;
  monotonic_us = until;
}

size_t FakeHost::poll_fds(std::chrono::milliseconds timeout) {
  std::vector<pollfd> polled;
  for (const auto& [fd, watch] : fds_) {
    short events = 0;
    if ((watch.flags & HDP_FD_READ) != 0) events |= POLLIN;
    if ((watch.flags & HDP_FD_WRITE) != 0) events |= POLLOUT;
    polled.push_back(pollfd{fd, events, 0});
  }
  if (::poll(polled.data(), polled.size(), static_cast<int>(timeout.count())) <= 0) return 0;
  size_t ran = 0;
  for (const pollfd& p : polled) {
    if (p.revents == 0) continue;
    auto it = fds_.find(p.fd);  // an earlier callback may have unwatched it
    if (it == fds_.end()) continue;
    uint32_t flags = 0;
    if ((p.revents & (POLLIN | POLLHUP)) != 0) flags |= HDP_FD_READ;
    if ((p.revents & POLLOUT) != 0) flags |= HDP_FD_WRITE;
    if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) flags |= HDP_FD_ERROR;
    flags &= it->second.flags | HDP_FD_ERROR;
    const FdWatch watch = it->second;
    watch.callback(watch.user_data, p.fd, flags);
    run_all();
    ++ran;
  }
  return ran;
}

bool FakeHost::drive_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    run_all();
    run_due_timers();
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // Waits for an fd; main-thread callbacks queued by another thread are run within 5 ms.
    poll_fds(std::chrono::milliseconds(5));
  }
}

hdp_status_t FakeHost::record_metric(const char* call, uint64_t id, const char* const* values, size_t count,
                                     double value) {
  if (!family_names_.contains(id)) return HDP_ERR_NOT_FOUND;
  if (count != families_.at(id).label_count) return HDP_ERR_INVALID_ARGUMENT;
  MetricUpdate u{call, family_names_.at(id), {}, value};
  for (size_t i = 0; i < count; ++i) u.labels.emplace_back(values[i]);
  updates.push_back(std::move(u));
  return HDP_OK;
}

const FakeRoute* FakeHost::route_for(const std::string& method, const std::string& path) const {
  const FakeRoute* best = nullptr;
  for (const auto& [id, r] : routes_) {
    if (r.method != method && r.method != "*") continue;
    const bool exact = path == r.path;
    const bool prefix = r.match == HDP_HTTP_MATCH_PREFIX && path.size() > r.path.size() &&
                        path.compare(0, r.path.size(), r.path) == 0 && path[r.path.size()] == '/';
    if (!exact && !prefix) continue;
    if (best == nullptr || r.path.size() > best->path.size()) best = &r;
  }
  return best;
}

std::vector<FakeAnswer> FakeHost::dispatch(const FakeRoute& route, const std::string& path, const std::string& query,
                                           const std::vector<std::pair<std::string, std::string>>& headers,
                                           const std::string& body, const std::string& peer) {
  std::vector<hdp_http_header_t> c_headers;
  for (const auto& [name, value] : headers) c_headers.push_back({name.data(), name.size(), value.data(), value.size()});
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
  // As a loop runs them after the current turn (the webhook's store batch answers from there).
  run_all();
  current_request_ = 0;
  return std::move(answers_);
}

bool FakeHost::pop_call(MainThreadCall& call) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (calls_.empty()) return false;
  call = calls_.front();
  calls_.pop_front();
  return true;
}

void FakeHost::run_all() {
  for (MainThreadCall call; pop_call(call);) call.first(call.second);
}

void FakeHost::run_queued() {
  std::deque<MainThreadCall> calls;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    calls.swap(calls_);
  }
  for (auto& [callback, user_data] : calls) callback(user_data);
}

bool FakeHost::run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    MainThreadCall call{};
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!queued_.wait_until(lock, deadline, [&] { return !calls_.empty(); })) return false;
      call = calls_.front();
      calls_.pop_front();
    }
    call.first(call.second);
  }
  return true;
}

int FakeHost::requests_from_other_threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_from_other_threads_;
}

}  // namespace testsupport

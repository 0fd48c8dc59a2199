// An in-process host for fuzzing the plugin through its C entry: a real hdp_host_t whose
// extensions keep everything in memory. It records routes and answers, hands out timer, fd,
// message and attachment ids, and never runs a timer or an fd callback, so nothing the plugin
// starts (downloads, polls) ever touches the network. Main-thread callbacks run at the end of
// each dispatch (the webhook answers from one). Main thread only.
#pragma once

#include <hdp/hdp.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fuzzhost {

struct Route {
   std::string method;
   std::string path;
   uint32_t match = HDP_HTTP_MATCH_EXACT;
   uint64_t max_body_bytes = 0;
   hdp_http_request_callback_t on_request = nullptr;
   void *user_data = nullptr;
};

struct Answer {
   uint16_t status = 0;
   std::string content_type;
   std::string body;
};

class FakeHost {
public:
   FakeHost(std::string config_json, std::string data_dir);
   FakeHost(const FakeHost &) = delete;
   FakeHost &operator=(const FakeHost &) = delete;

   const hdp_host_t *host() const { return &host_; }

   // The route whose path the request path matches, as the stub host would pick it.
   const Route *route_for(const std::string &method, const std::string &path) const;

   // Calls the route with a request and returns every answer it gave (exactly one is right).
   std::vector<Answer> dispatch(const Route &route, const std::string &path, const std::string &query,
                                const std::vector<std::pair<std::string, std::string>> &headers,
                                const std::string &body, const std::string &peer);

   size_t log_lines() const { return log_lines_; }
   size_t pending_timers() const { return timers_.size(); }

private:
   static FakeHost &self(const hdp_host_t *host);
   static const void *get_extension(const hdp_host_t *host, const char *id);
   static void log(const hdp_host_t *host, int32_t level, const char *message);
   static bool log_enabled(const hdp_host_t *host, int32_t level);
   static int64_t wall_clock_us(const hdp_host_t *host);
   static int64_t monotonic_clock_us(const hdp_host_t *host);
   static hdp_status_t request_main_thread_callback(const hdp_host_t *host, hdp_main_thread_callback_t callback,
                                                    void *user_data);
   static void get_config(const hdp_host_t *host, const uint8_t **data, size_t *size);
   static const char *get_data_dir(const hdp_host_t *host);

   static hdp_status_t register_timer(const hdp_host_t *host, uint64_t delay_ms, uint64_t period_ms,
                                      hdp_timer_callback_t callback, void *user_data, uint64_t *out_id);
   static hdp_status_t cancel_timer(const hdp_host_t *host, uint64_t timer_id);
   static hdp_status_t register_fd(const hdp_host_t *host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                                   void *user_data);
   static hdp_status_t modify_fd(const hdp_host_t *host, int fd, uint32_t flags);
   static hdp_status_t unregister_fd(const hdp_host_t *host, int fd);
   static hdp_status_t register_route(const hdp_host_t *host, const hdp_http_route_t *route, uint64_t *out_id);
   static hdp_status_t unregister_route(const hdp_host_t *host, uint64_t route_id);
   static hdp_status_t respond(const hdp_host_t *host, uint64_t request_id, const hdp_http_response_t *response);
   static hdp_status_t upsert_call_message(const hdp_host_t *host, const hdp_call_message_t *message,
                                           uint64_t *out_message_id);
   static hdp_status_t set_recording_status(const hdp_host_t *host, uint64_t message_id, int32_t status,
                                            const char *reason);
   static hdp_status_t attach_file(const hdp_host_t *host, const hdp_attachment_t *attachment,
                                   hdp_attachment_callback_t callback, void *user_data, uint64_t *out_job_id);

   hdp_host_t host_{};
   hdp_host_timers_t timers_table_{};
   hdp_host_posix_fd_t fds_table_{};
   hdp_host_http_t http_table_{};
   hdp_host_messages_t messages_table_{};
   hdp_host_attachments_t attachments_table_{};

   std::string config_;
   std::string data_dir_;
   int64_t clock_us_ = 1'700'000'000'000'000;
   uint64_t next_id_ = 1;
   size_t log_lines_ = 0;
   std::map<uint64_t, Route> routes_;
   std::map<uint64_t, bool> timers_;
   std::map<int, uint32_t> fds_;
   std::map<std::string, uint64_t> messages_;
   uint64_t current_request_ = 0;
   std::vector<Answer> answers_;
   std::vector<std::pair<hdp_main_thread_callback_t, void *>> main_thread_calls_;
};

}  // namespace fuzzhost

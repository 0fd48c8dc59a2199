// The in-process host of the tests: a real hdp_host_t whose extensions keep everything in memory,
// for driving plugin code without a host process. It records routes and answers, log lines,
// metric updates, message writes and attachment jobs, and hands out their ids. It runs a timer,
// an fd callback or an attachment's completion only when the test asks (run_due_timers,
// advance_ms, poll_fds, drive_until, complete_attachment), so by default nothing the plugin starts
// (downloads, polls) touches the network. Timers run on the virtual monotonic clock: a timer is
// due at that clock's value when it was armed plus its delay. Main-thread callbacks queue up
// (from any thread) until the test runs them: run_until(), run_queued(), or the end of each
// dispatch(). Everything else is for the test's thread.
#pragma once

#include <hdp/hdp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace testsupport {

// A route the plugin registered.
struct FakeRoute {
  std::string method;
  std::string path;
  uint32_t match = HDP_HTTP_MATCH_EXACT;
  uint64_t max_body_bytes = 0;
  hdp_http_request_callback_t on_request = nullptr;
  void* user_data = nullptr;
};

// One answer the plugin gave to a dispatched request.
struct FakeAnswer {
  uint16_t status = 0;
  std::string content_type;
  std::string body;
};

// One hdp.attachments/1 job the plugin started.
struct FakeAttachment {
  uint64_t job_id = 0;
  uint64_t message_id = 0;
  std::string file_path;
  std::string file_name;
  std::string mime_type;
  std::string idempotency_key;
  bool completed = false;  // complete_attachment ran for it
};

// One set_recording_status call (hdp.messages/1).
struct FakeStatusUpdate {
  uint64_t message_id = 0;
  int32_t status = 0;
  std::string reason;
};

// One call of hdp.metrics/1 on a registered family.
struct MetricUpdate {
  std::string call;  // "counter_add", "gauge_set", ...
  std::string family;
  std::vector<std::string> labels;
  double value = 0;
};

class FakeHost {
 public:
  explicit FakeHost(std::string config_json = {}, std::string data_dir = {});
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const hdp_host_t* host() const { return &host_; }

  // ---- what the host offers (set before the plugin looks) ----
  // The core extensions: timers, posix fds, http, messages, attachments (get_extension answers
  // nullptr for them when false).
  bool offer_core_extensions = true;
  // hdp.metrics/1, recorded in `registered` and `updates`.
  bool offer_metrics = false;
  hdp_host_metrics_t metrics{};               // the table handed out (a test may shrink struct_size)
  std::string refuse_name;                    // register_metric refuses this family (ALREADY_EXISTS)
  bool refuse_main_thread_callbacks = false;  // request_main_thread_callback: BAD_STATE

  // ---- the clocks ----
  std::atomic<int64_t> wall_clock_us{1'700'000'000'000'000};
  std::atomic<int64_t> monotonic_us{0};
  // Each read of the wall clock moves both clocks on by this much (0: they stand still).
  std::atomic<int64_t> clock_step_us{0};

  // ---- what the plugin did ----
  std::vector<std::string> log;  // every line (read it while no other thread logs)
  size_t log_lines() const;
  std::vector<std::string> registered;  // "name type=T labels=a,b buckets=N"
  std::vector<MetricUpdate> updates;
  size_t pending_timers() const { return timers_.size(); }
  // How long until each pending timer is due on the monotonic clock (ms), by timer id.
  std::map<uint64_t, int64_t> pending_timer_due_in_ms() const;
  std::vector<FakeAttachment> attachments;  // in the order the plugin started them
  std::vector<FakeStatusUpdate> statuses;   // set_recording_status calls, in order
  // The message id upsert_call_message gave `external_key`; 0 when none was made.
  uint64_t message_id(const std::string& external_key) const;
  // The route whose path the request path matches, as the stub host would pick it.
  const FakeRoute* route_for(const std::string& method, const std::string& path) const;

  // ---- driving it ----
  // Calls the route with a request, runs the main-thread callbacks that queue up meanwhile (a
  // loop's turn), and returns every answer given to it (exactly one is right).
  std::vector<FakeAnswer> dispatch(const FakeRoute& route, const std::string& path, const std::string& query,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   const std::string& body, const std::string& peer = "127.0.0.1");
  // Runs queued main-thread callbacks, waiting for more, until `done` holds; false after timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Runs what is queued now (one loop turn; what those callbacks queue waits for the next).
  void run_queued();
  // Runs queued callbacks, and what they queue, until none is left.
  void run_all();
  // request_main_thread_callback calls from threads other than the one that made the host.
  int requests_from_other_threads() const;

  // Runs the timers due at the monotonic clock now, earliest first (ties by id), each followed by
  // the main-thread callbacks it queued; timers they arm that are due now run too. Returns how
  // many timers ran.
  size_t run_due_timers();
  // Moves both clocks on by `ms`, running on the way every timer that falls due, each with the
  // clocks at its due time (and the main-thread callbacks it queues).
  void advance_ms(int64_t ms);
  // One poll(2) over the watched fds, waiting up to `timeout`; runs the callbacks of the ready
  // ones. Returns how many ran.
  size_t poll_fds(std::chrono::milliseconds timeout);
  // A loop whose clocks stand still: runs main-thread callbacks, due timers and ready fds until
  // `done` holds; false after `timeout` of real time (for I/O such as a download from a local
  // server; waits on poll(2), never on a sleep).
  bool drive_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Completes attachment job `job_id` (the plugin's callback runs now) with `status` and, when
  // HDP_OK, the host's `attachment_id`. False when there is no such job or it completed already.
  bool complete_attachment(uint64_t job_id, hdp_status_t status, uint64_t attachment_id = 0);

 private:
  static FakeHost& self(const hdp_host_t* host);
  static const void* get_extension(const hdp_host_t* host, const char* id);
  static void log_line(const hdp_host_t* host, int32_t level, const char* message);
  static bool log_enabled(const hdp_host_t* host, int32_t level);
  static int64_t wall_clock(const hdp_host_t* host);
  static int64_t monotonic_clock(const hdp_host_t* host);
  static hdp_status_t request_main_thread_callback(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                                   void* user_data);
  static void get_config(const hdp_host_t* host, const uint8_t** data, size_t* size);
  static const char* get_data_dir(const hdp_host_t* host);

  static hdp_status_t register_timer(const hdp_host_t* host, uint64_t delay_ms, uint64_t period_ms,
                                     hdp_timer_callback_t callback, void* user_data, uint64_t* out_id);
  static hdp_status_t cancel_timer(const hdp_host_t* host, uint64_t timer_id);
  static hdp_status_t register_fd(const hdp_host_t* host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                                  void* user_data);
  static hdp_status_t modify_fd(const hdp_host_t* host, int fd, uint32_t flags);
  static hdp_status_t unregister_fd(const hdp_host_t* host, int fd);
  static hdp_status_t register_route(const hdp_host_t* host, const hdp_http_route_t* route, uint64_t* out_id);
  static hdp_status_t unregister_route(const hdp_host_t* host, uint64_t route_id);
  static hdp_status_t respond(const hdp_host_t* host, uint64_t request_id, const hdp_http_response_t* response);
  static hdp_status_t upsert_call_message(const hdp_host_t* host, const hdp_call_message_t* message,
                                          uint64_t* out_message_id);
  static hdp_status_t set_recording_status(const hdp_host_t* host, uint64_t message_id, int32_t status,
                                           const char* reason);
  static hdp_status_t attach_file(const hdp_host_t* host, const hdp_attachment_t* attachment,
                                  hdp_attachment_callback_t callback, void* user_data, uint64_t* out_job_id);
  hdp_status_t record_metric(const char* call, uint64_t id, const char* const* values, size_t count, double value);

  using MainThreadCall = std::pair<hdp_main_thread_callback_t, void*>;
  bool pop_call(MainThreadCall& call);

  hdp_host_t host_{};
  hdp_host_timers_t timers_table_{};
  hdp_host_posix_fd_t fds_table_{};
  hdp_host_http_t http_table_{};
  hdp_host_messages_t messages_table_{};
  hdp_host_attachments_t attachments_table_{};

  std::string config_;
  std::string data_dir_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, FakeRoute> routes_;
  struct Timer {
    int64_t due_us = 0;  // monotonic
    uint64_t period_ms = 0;
    hdp_timer_callback_t callback = nullptr;
    void* user_data = nullptr;
  };
  struct FdWatch {
    uint32_t flags = 0;
    hdp_fd_callback_t callback = nullptr;
    void* user_data = nullptr;
  };
  struct AttachJob {
    hdp_attachment_callback_t callback = nullptr;
    void* user_data = nullptr;
  };
  // The earliest timer due at or before `until_us`, if any: its id.
  std::optional<uint64_t> next_due_timer(int64_t until_us) const;
  void fire_timer(uint64_t id);

  std::map<uint64_t, Timer> timers_;
  std::map<int, FdWatch> fds_;
  std::map<uint64_t, AttachJob> attach_jobs_;
  std::map<std::string, uint64_t> messages_;
  std::map<uint64_t, hdp_metric_family_t> families_;  // pointers inside are not kept
  std::map<uint64_t, std::string> family_names_;
  uint64_t current_request_ = 0;
  std::vector<FakeAnswer> answers_;

  mutable std::mutex mutex_;  // the log and the main-thread queue
  std::condition_variable queued_;
  std::deque<MainThreadCall> calls_;
  int requests_from_other_threads_ = 0;
  std::thread::id main_ = std::this_thread::get_id();
};

}  // namespace testsupport

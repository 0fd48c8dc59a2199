// Helpers for tests that run wavoip-sim: the simulator as a child process, and a small real
// HTTP receiver that keeps every webhook it is sent.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"  // tests/support
#include "eventually.hpp"     // tests/support

namespace simtest {

// wavoip-sim started with `args` (plus --listen 127.0.0.1:0 and --port-file), output to a file.
class SimProcess {
 public:
  SimProcess(std::vector<std::string> args, std::filesystem::path dir);
  ~SimProcess();  // SIGKILL if still running
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  // Starts it and waits until it serves. False when it exited or did not come up.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits for it to exit by itself: its exit status, or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM and wait: the exit status.
  int stop();
  // The exit status once it exited (seen by start(), wait_exit() or stop()); 128 + signal for a signal.
  std::optional<int> exit_status() const;

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int port() const { return port_; }
  std::string output() const;

  // POST /__sim/start {"webhook_url": url}: the HTTP status.
  long start_webhooks(const std::string& webhook_url);
  // POST /__sim/step (--manual): the answer.
  boost::json::object step();
  // GET /__sim/calls -> "calls".
  boost::json::array calls();

 private:
  std::vector<std::string> args_;
  std::filesystem::path dir_;
  std::filesystem::path port_file_;
  std::filesystem::path log_;
  std::optional<testsupport::ChildProcess> child_;
  int port_ = 0;
};

// One webhook as received.
struct Received {
  std::string method;
  std::string path;
  std::string content_type;
  std::string body;
};

// Listens on 127.0.0.1:0; answers every request with `status` and keeps it.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(int status = 202);
  ~WebhookReceiver();
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/webhooks/wavoip"; }
  std::vector<Received> received() const;

 private:
  void serve();
  void handle(int fd);

  int status_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  mutable std::mutex mutex_;
  std::vector<Received> received_;
  std::thread thread_;
};

}  // namespace simtest

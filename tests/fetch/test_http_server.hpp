// A small real HTTP/1.1 server for tests: a thread with a listening socket on 127.0.0.1:0 that
// answers each path with a scripted response. Bodies can be generated on the fly, so a 200 MB
// body never sits in memory. Every response closes its connection, unless set_keep_alive(true).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace wavoip::test {

struct ScriptedResponse {
  int status = 200;
  std::string content_type = "audio/mpeg";    // empty: no Content-Type header
  std::string body;                           // literal body, used when generated_bytes == 0
  uint64_t generated_bytes = 0;               // else N bytes of TestHttpServer::body_byte()
  std::string location;                       // adds a Location header (redirects)
  bool send_content_length = true;            // false: the body ends when the connection closes
  std::optional<uint64_t> reset_after_bytes;  // send this much body, then a TCP reset
  std::optional<uint64_t> close_after_bytes;  // send this much body, then close (truncation)
  size_t chunk_bytes = 64 * 1024;
  std::chrono::milliseconds chunk_delay{0};  // pause before each chunk (a slow body)
};

class TestHttpServer {
 public:
  TestHttpServer();   // listening once constructed
  ~TestHttpServer();  // stops serving, cuts open connections, joins every thread

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port><path>"
  std::string url(std::string_view path) const;

  // Paths without a script get a 404 text/plain "not found".
  void set_response(const std::string& path, ScriptedResponse response);
  // true: a connection stays open for the next request after each complete response that has a
  // Content-Length (HTTP/1.1 keep-alive), as a real storage does.
  void set_keep_alive(bool keep_alive) { keep_alive_ = keep_alive; }

  uint64_t connections() const { return connections_.load(); }  // accepted
  uint64_t hits() const { return hits_.load(); }                // requests parsed
  uint64_t hits(const std::string& path) const;
  std::string last_request() const;  // request line and headers of the latest request

  // The generated body: byte i of every generated body (period 251, so offsets show).
  static char body_byte(uint64_t index) { return static_cast<char>(index % 251); }

 private:
  void accept_loop();
  void serve(int fd);
  bool send_all(int fd, const char* data, size_t length);
  bool pause(std::chrono::milliseconds duration);  // false when stopping

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> keep_alive_{false};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> hits_{0};

  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  std::map<std::string, ScriptedResponse> responses_;
  std::map<std::string, uint64_t> path_hits_;
  std::string last_request_;
  std::set<int> open_fds_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// A loopback port with nothing listening (bound, then closed): connecting is refused.
uint16_t closed_loopback_port();

}  // namespace wavoip::test

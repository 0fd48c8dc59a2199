// A small HTTP/1.1 server on Boost.Beast for the simulator: one Asio thread, keep-alive, and
// answers that may come later from another thread (the manual-step control route).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace wavoip::sim {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::string body;
};

struct HttpAnswer {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using Respond = std::function<void(HttpAnswer)>;                   // callable once, from any thread
using Handler = std::function<void(const HttpRequest&, Respond)>;  // runs on the server thread

class HttpServer {
 public:
  // Binds and listens at once (throws std::system_error when it cannot). `port` 0 picks one.
  HttpServer(const std::string& address, std::uint16_t port, Handler handler);
  ~HttpServer();  // stops and joins the server thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  // Starts the server thread. `on_signal` runs (on that thread) for SIGINT and SIGTERM.
  void start(std::function<void(int)> on_signal);
  // Waits until every answer handed to respond() has been written to its socket (or failed), at
  // most `timeout`; false when some were still being written.
  bool wait_for_answers(std::chrono::milliseconds timeout);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wavoip::sim

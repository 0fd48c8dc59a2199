// The HTTP/1.1 server (Boost.Beast) on the main loop: one session per connection, keep-alive,
// a 16 KiB header limit, a read-header deadline (slowloris), an idle deadline between requests,
// per-route body limits (413 before any handler runs), a connection cap, and answers that may
// come later (deferred) while the connection is watched for the client going away. What a
// route does is not here: complete requests go to the dispatch function; how an answer is put on
// the wire (headers, files, ranges, HEAD) is in http_answers.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "http_types.hpp"

namespace hdp::host {

class Logger;

struct HttpServerLimits {
  size_t header_limit_bytes = 16 * 1024;
  // From the first byte of a request to its complete header.
  std::chrono::milliseconds header_timeout{10000};
  // Waiting for the next request on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{30000};
  // Reading a body, and writing an answer (a streamed file gets file_write_timeout).
  std::chrono::milliseconds body_timeout{60000};
  std::chrono::milliseconds write_timeout{60000};
  std::chrono::milliseconds file_write_timeout{15 * 60000};
  size_t max_connections = 512;
  // Threads of the server's own that read and write the connections (HTTP parsing, sockets,
  // answers on the wire), each with its connections; 0: the main loop does it all. Either way
  // requests are dispatched, and answered, on the main loop.
  size_t io_threads = 0;
};

// The body limit for a request, decided from its header; asked on the thread that reads the
// connection (an I/O thread when HttpServerLimits::io_threads > 0), so it must be thread-safe.
using BodyLimitFunction = std::function<uint64_t(std::string_view method, std::string_view path)>;
// Serves a complete request; the answer goes to the responder now or later.
using DispatchFunction = std::function<void(HttpRequest&& request, const std::shared_ptr<Responder>& responder)>;

// Why the HTTP layer refused a request before any route saw it.
enum class HttpRefusal {
  bad_request,       // 400: not HTTP/1.1 it can parse
  header_too_large,  // 431
  body_too_large,    // 413: over the route's body limit
  header_timeout,    // closed: the header was not complete in time
  body_timeout,      // closed: the body was not complete in time
};
// "bad_request", "header_too_large", ... (a metrics label).
std::string_view refusal_name(HttpRefusal refusal);
// Told of each refusal, on the main loop.
using RefusalFunction = std::function<void(HttpRefusal refusal)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, Logger& log, HttpServerLimits limits, BodyLimitFunction body_limit,
             DispatchFunction dispatch, RefusalFunction on_refused = {});
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Binds and listens on host:port (port 0 picks one) and starts accepting. Returns an error
  // text on failure.
  std::optional<std::string> listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // "127.0.0.1:8080" or "[::1]:8080"
  std::string local_address() const;

  // Stops accepting and closes idle connections; the others close once their pending answer
  // is written. on_drained runs (posted) when no connection is left.
  void stop(std::function<void()> on_drained);
  // Closes every connection now.
  void close_all();

  class Impl;

 private:
  struct IoThreads;
  std::shared_ptr<Impl> impl_;
  std::unique_ptr<IoThreads> io_threads_;  // destroyed first: its sessions still use impl_
};

}  // namespace hdp::host

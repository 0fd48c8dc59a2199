// The HTTP request and response as the host's routes see them, apart from the Beast plumbing
// (http_server) so that routing and route handlers compile without Beast.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hdp::host {

using HttpHeader = std::pair<std::string, std::string>;

struct HttpRequest {
  std::string method;  // "GET", ...
  std::string target;  // as sent: path and query
  std::string path;    // target without the query, still percent-encoded
  std::string query;   // without the '?', empty when absent
  std::vector<HttpHeader> headers;
  std::string body;
  std::string peer_address;      // "127.0.0.1", "::1"
  std::string agent_name;        // set by the access gate when a signed-in agent sent it
  std::string agent_csrf_token;  // and that agent's session's CSRF token
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type;  // empty: none (or application/octet-stream with a body)
  std::vector<HttpHeader> headers;
  std::string body;
  // When set, the body is this file, streamed (Content-Length from the file).
  std::optional<std::filesystem::path> file;

  static HttpResponse text(unsigned status, std::string body);
  static HttpResponse json(unsigned status, std::string body);
  // {"error": message}
  static HttpResponse error(unsigned status, std::string_view message);
  // 503 {"error": message} with Retry-After: 1: something the answer needs is unavailable for now.
  static HttpResponse try_again(std::string_view message);
};

// The answer channel of one request. The server makes one per request and keeps it while the
// request waits; the route answers once, now or later. [main-thread]
class Responder {
 public:
  using Deliver = std::function<void(HttpResponse&&)>;

  explicit Responder(Deliver deliver) : deliver_(std::move(deliver)) {}

  // Sends the answer if the connection is still there. True the first time only.
  bool respond(HttpResponse&& response);
  bool answered() const { return answered_; }
  // The client went away (or the server dropped the connection).
  bool gone() const { return gone_; }

  // Called once if the client goes away (or the server drops the connection) before an answer.
  void on_gone(std::function<void()> callback) { on_gone_ = std::move(callback); }
  // Used by the server: the connection is gone.
  void client_gone();

 private:
  Deliver deliver_;
  std::function<void()> on_gone_;
  bool answered_ = false;
  bool gone_ = false;
};

}  // namespace hdp::host

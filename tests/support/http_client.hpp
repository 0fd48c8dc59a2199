// The blocking HTTP client of the tests (libcurl easy interface): real requests over loopback.
// HttpClient keeps one connection alive between its requests and remembers cookies, as a browser
// would; http_request() makes one request on a client of its own. For bytes curl would not send
// (bad framing, slow clients, pipelining) see raw_http.hpp.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace testsupport {

struct HttpResponse {
  long status = 0;  // 0 when the request failed before an answer
  std::string body;
  std::string content_type;
  std::string error;                           // curl's error text when status == 0
  std::vector<std::string> set_cookies;        // the values of the Set-Cookie headers
  std::string location;                        // the Location header, when there is one
  std::string retry_after;                     // the Retry-After header, when there is one
  std::map<std::string, std::string> headers;  // every header, names lower-case (the last of repeats)
  long new_connections = -1;                   // connections this request opened (CURLINFO_NUM_CONNECTS)

  // The value of a header (any case of `name`), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // The body as JSON; null when it is not JSON.
  boost::json::value json() const;
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `headers` as "Name: value"; the body is sent for every method but GET and HEAD.
  HttpResponse request(const std::string& method, const std::string& url, const std::string& body = {},
                       const std::vector<std::string>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

  HttpResponse get(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return request("GET", url, {}, {}, timeout);
  }
  HttpResponse get(const std::string& url, const std::vector<std::string>& headers,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return request("GET", url, {}, headers, timeout);
  }
  HttpResponse post(const std::string& url, const std::string& body = {}, const std::vector<std::string>& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return request("POST", url, body, headers, timeout);
  }

 private:
  void* curl_;
};

// One request on a fresh HttpClient (a new connection, no cookies).
HttpResponse http_request(const std::string& method, const std::string& url, const std::string& body = {},
                          const std::vector<std::string>& headers = {"Content-Type: application/json"},
                          long timeout_ms = 10000);

inline HttpResponse http_get(const std::string& url) {
  return http_request("GET", url, {}, {});
}
inline HttpResponse http_post(const std::string& url, const std::string& body) {
  return http_request("POST", url, body);
}

}  // namespace testsupport

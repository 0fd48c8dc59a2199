// A blocking HTTP client for tests (libcurl easy interface): real requests over loopback.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace testsupport {

struct HttpResponse {
   long status = 0;            // 0 when the request failed before an answer
   std::string body;
   std::string content_type;
   std::string error;          // curl's error text when status == 0
   std::vector<std::string> set_cookies;  // the values of the Set-Cookie headers
   std::string location;                  // the Location header, when there is one
   std::string retry_after;               // the Retry-After header, when there is one
};

HttpResponse http_request(const std::string &method, const std::string &url,
                          const std::string &body = {},
                          const std::vector<std::string> &headers = {"Content-Type: application/json"},
                          long timeout_ms = 10000);

inline HttpResponse http_get(const std::string &url) { return http_request("GET", url, {}, {}); }
inline HttpResponse http_post(const std::string &url, const std::string &body) {
   return http_request("POST", url, body);
}

}  // namespace testsupport

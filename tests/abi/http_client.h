// http_client.h - a tiny blocking HTTP/1.0 client for the tests: one request per connection.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace hdp::test {

struct HttpResponse {
   int status = 0; // 0 when no response arrived; `error` says why
   std::string headers;
   std::string body;
   std::string error;

   // The value of a header (case-insensitive name), or nullopt.
   std::optional<std::string> Header(std::string_view name) const;
};

HttpResponse Http(int port, std::string_view method, std::string_view target,
                  std::string_view body = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The number after "\"name\":" in a flat JSON object, or nullopt.
std::optional<long long> JsonNumber(const std::string &json, std::string_view name);

} // namespace hdp::test

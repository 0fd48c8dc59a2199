// What goes on the wire for a route's answer: an HttpResponse made into a Beast message with the
// host's headers (Server, Date, Content-Type, Content-Length, keep-alive), a file sent whole or as
// the requested byte range (206, 416), and no body for HEAD, 204 and 304. The sessions that read
// requests and write these answers are in http_server.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/beast/http/message_generator.hpp>

#include "http_types.hpp"

namespace hdp::host {

// What of the request shapes its answer.
struct AnswerFraming {
  unsigned version = 11;  // the request's HTTP version, as Beast numbers it (11 = HTTP/1.1)
  bool head = false;      // HEAD: the headers of the answer, its Content-Length, no body
  // The request's Range field when a file answer may honour it (GET, one Range, no If-Range).
  std::optional<std::string> range_field;
};

// The message for answer; a file that cannot be opened becomes a 404. [main-thread]
boost::beast::http::message_generator build_answer(HttpResponse&& answer, const AnswerFraming& request,
                                                   bool keep_alive);

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::string http_date(int64_t unix_seconds);

}  // namespace hdp::host

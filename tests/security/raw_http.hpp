// A raw HTTP/1.1 client over a loopback socket for the security tests: it sends exactly the bytes
// it is given (paths are not normalised, headers are not added), keeps reading while it writes
// (a server may answer 413 before the body is sent), and parses one response.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace security {

struct RawResponse {
   int status = 0;                              // 0: no complete status line arrived
   std::map<std::string, std::string> headers;  // names lower-case
   std::string body;
   bool complete = false;                       // the whole announced body arrived
   std::string error;                           // why status is 0, for messages
};

// Sends `request` to 127.0.0.1:port and reads one response until it is complete, the server
// closes, or `timeout` passes (then error says so; the caller treats that as a hang).
RawResponse raw_exchange(uint16_t port, const std::string &request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

// "METHOD target HTTP/1.1" with Host, the given header lines ("Name: value"), Content-Length
// (unless a header already sets Content-Length or Transfer-Encoding) and Connection: close.
std::string build_request(const std::string &method, const std::string &target,
                          const std::vector<std::string> &headers, const std::string &body);

// A socket that stays open until destroyed, for slow-client tests.
class OpenConnection {
public:
   explicit OpenConnection(uint16_t port);
   ~OpenConnection();
   OpenConnection(const OpenConnection &) = delete;
   OpenConnection &operator=(const OpenConnection &) = delete;
   bool connected() const { return fd_ >= 0; }
   bool send(const std::string &bytes);

private:
   int fd_ = -1;
};

}  // namespace security

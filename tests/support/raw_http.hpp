// Raw HTTP/1.1 over a loopback socket, for what a real client (http_client.hpp) would not send:
// exactly the bytes given (paths not normalised, headers not added), slow or pipelined requests,
// bodies a server refuses before reading them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace testsupport {

struct RawResponse {
  int status = 0;                              // 0: no complete status line arrived
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  bool complete = false;  // the whole announced body arrived
  std::string error;      // why status is 0, for messages

  // The value of a header (any case of `name`), or nullopt.
  std::optional<std::string> header(const std::string& name) const;
};

// Sends `request` to 127.0.0.1:port and reads one response until it is complete, the server
// closes, or `timeout` passes (then error says so; the caller treats that as a hang). It keeps
// reading while it writes: a server may answer (413) before the body is sent and stop reading.
RawResponse raw_exchange(uint16_t port, const std::string& request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));

// "METHOD target HTTP/1.1" with Host, the given header lines ("Name: value"), Content-Length
// (unless a header already sets Content-Length or Transfer-Encoding) and Connection: close.
std::string build_request(const std::string& method, const std::string& target, const std::vector<std::string>& headers,
                          const std::string& body);

// One connection that stays open until closed or destroyed: keep-alive, pipelining, slow clients.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads the next response (framed by Content-Length, or by the close); nullopt on timeout or
  // when the server closed without one.
  std::optional<RawResponse> read_response(std::chrono::milliseconds timeout);
  // True when the server closed the connection (EOF or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  void close();

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace testsupport

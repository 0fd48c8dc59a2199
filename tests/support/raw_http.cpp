#include "raw_http.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace testsupport {

namespace {

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Parses the response at the start of `data`; true once a whole one (or what the close delimits)
// is there, with `used` the bytes it took.
bool parse_response(const std::string& data, bool closed, RawResponse& out, size_t& used) {
  const size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string::npos) return false;
  out.headers.clear();
  size_t line_end = data.find("\r\n");
  const std::string status_line = data.substr(0, line_end);
  if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0) return false;
  out.status = std::atoi(status_line.substr(9, 3).c_str());
  size_t pos = line_end + 2;
  while (pos < header_end) {
    size_t end = data.find("\r\n", pos);
    std::string line = data.substr(pos, end - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      out.headers[lower(line.substr(0, colon))] = value;
    }
    pos = end + 2;
  }
  const std::string body = data.substr(header_end + 4);
  auto length = out.headers.find("content-length");
  if (length != out.headers.end()) {
    const size_t expected = std::strtoull(length->second.c_str(), nullptr, 10);
    if (body.size() < expected) return false;
    out.body = body.substr(0, expected);
    out.complete = true;
    used = header_end + 4 + expected;
    return true;
  }
  if (out.status == 204 || out.status == 304 || (out.status >= 100 && out.status < 200)) {
    out.body.clear();
    out.complete = true;
    used = header_end + 4;
    return true;
  }
  if (!closed) return false;
  out.body = body;
  out.complete = true;
  used = data.size();
  return true;
}

}  // namespace

std::optional<std::string> RawResponse::header(const std::string& name) const {
  auto it = headers.find(lower(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

std::string build_request(const std::string& method, const std::string& target, const std::vector<std::string>& headers,
                          const std::string& body) {
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool framed = false;
  for (const std::string& h : headers) {
    const std::string name = lower(h.substr(0, h.find(':')));
    if (name == "content-length" || name == "transfer-encoding") framed = true;
    request += h + "\r\n";
  }
  if (!framed) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "Connection: close\r\n\r\n";
  request += body;
  return request;
}

RawResponse raw_exchange(uint16_t port, const std::string& request, std::chrono::milliseconds timeout) {
  RawResponse out;
  int fd = connect_loopback(port);
  if (fd < 0) {
    out.error = std::string("connect: ") + std::strerror(errno);
    return out;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t sent = 0;
  size_t used = 0;
  bool can_send = true;
  bool closed = false;
  std::string received;
  char buffer[65536];
  while (!closed) {
    if (parse_response(received, false, out, used)) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.error = "no complete answer in time";
      break;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (can_send && sent < request.size() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000))) < 0 && errno != EINTR) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        received.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        closed = true;
      }
    }
    if ((p.revents & POLLOUT) && can_send && sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        can_send = false;  // the server stopped reading; its answer may still be there
      }
    }
  }
  if (closed && !out.complete) parse_response(received, true, out, used);
  if (out.status == 0 && out.error.empty()) out.error = "connection closed without an answer";
  ::close(fd);
  return out;
}

RawConnection::RawConnection(uint16_t port) : fd_(connect_loopback(port)) {}

RawConnection::~RawConnection() {
  close();
}

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::send(const std::string& bytes) {
  if (fd_ < 0) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<RawResponse> RawConnection::read_response(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    RawResponse response;
    size_t used = 0;
    if (parse_response(buffer_, false, response, used)) {
      buffer_.erase(0, used);
      return response;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      if (parse_response(buffer_, true, response, used)) {
        buffer_.erase(0, used);
        return response;
      }
      return std::nullopt;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return false;  // never connected, or closed by this side
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return true;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace testsupport

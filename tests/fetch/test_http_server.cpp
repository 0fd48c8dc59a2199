#include "test_http_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace wavoip::test {
namespace {

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

}  // namespace

TestHttpServer::TestHttpServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address = loopback(0);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen failed");
  }
  socklen_t length = sizeof address;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("pipe failed");
  }
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestHttpServer::~TestHttpServer() {
  stopping_ = true;
  stop_cv_.notify_all();
  [[maybe_unused]] const ssize_t w = ::write(wake_pipe_[1], "x", 1);
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (std::thread& worker : workers_) worker.join();
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

std::string TestHttpServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void TestHttpServer::set_response(const std::string& path, ScriptedResponse response) {
  std::lock_guard lock(mutex_);
  responses_[path] = std::move(response);
}

uint64_t TestHttpServer::hits(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = path_hits_.find(path);
  return it == path_hits_.end() ? 0 : it->second;
}

std::string TestHttpServer::last_request() const {
  std::lock_guard lock(mutex_);
  return last_request_;
}

void TestHttpServer::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (stopping_ || (fds[1].revents & POLLIN)) return;
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard lock(mutex_);
    open_fds_.insert(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

bool TestHttpServer::pause(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !stop_cv_.wait_for(lock, duration, [this] { return stopping_.load(); });
}

bool TestHttpServer::send_all(int fd, const char* data, size_t length) {
  while (length > 0) {
    const ssize_t n = ::send(fd, data, length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || stopping_) return false;
    data += n;
    length -= static_cast<size_t>(n);
  }
  return true;
}

void TestHttpServer::serve(int fd) {
  timeval receive_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);

  auto finish = [&](bool reset) {
    if (reset) {
      linger hard{1, 0};  // close() now sends RST instead of FIN
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    } else {
      ::shutdown(fd, SHUT_WR);
    }
    std::lock_guard lock(mutex_);
    open_fds_.erase(fd);
    ::close(fd);
  };

  std::string request;
  char buffer[4096];
  for (;;) {
    size_t head_end = std::string::npos;
    while ((head_end = request.find("\r\n\r\n")) == std::string::npos && request.size() < 16384) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return finish(false);
      request.append(buffer, static_cast<size_t>(n));
    }
    const size_t path_start = request.find(' ');
    const size_t path_end = path_start == std::string::npos ? path_start : request.find(' ', path_start + 1);
    if (path_end == std::string::npos || head_end == std::string::npos) return finish(false);
    const std::string path = request.substr(path_start + 1, path_end - path_start - 1);

    ScriptedResponse response;
    {
      std::lock_guard lock(mutex_);
      ++path_hits_[path];
      last_request_ = request.substr(0, head_end);
      auto it = responses_.find(path);
      if (it != responses_.end()) {
        response = it->second;
      } else {
        response.status = 404;
        response.content_type = "text/plain";
        response.body = "not found";
      }
    }
    ++hits_;
    // The requests here have no body: the next one starts right after this head.
    request.erase(0, head_end + 4);

    const uint64_t body_length = response.generated_bytes > 0 ? response.generated_bytes : response.body.size();
    const bool keep =
        keep_alive_ && response.send_content_length && !response.reset_after_bytes && !response.close_after_bytes;
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) + "\r\n";
    if (!response.content_type.empty()) head += "Content-Type: " + response.content_type + "\r\n";
    if (!response.location.empty()) head += "Location: " + response.location + "\r\n";
    if (response.send_content_length) head += "Content-Length: " + std::to_string(body_length) + "\r\n";
    head += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!send_all(fd, head.data(), head.size())) return finish(true);

    const uint64_t stop_at = std::min({body_length, response.reset_after_bytes.value_or(body_length),
                                       response.close_after_bytes.value_or(body_length)});
    std::string chunk;
    for (uint64_t offset = 0; offset < stop_at;) {
      if (response.chunk_delay.count() > 0 && !pause(response.chunk_delay)) return finish(true);
      const size_t length = static_cast<size_t>(std::min<uint64_t>(response.chunk_bytes, stop_at - offset));
      if (response.generated_bytes > 0) {
        chunk.resize(length);
        for (size_t i = 0; i < length; ++i) chunk[i] = body_byte(offset + i);
      } else {
        chunk.assign(response.body, static_cast<size_t>(offset), length);
      }
      if (!send_all(fd, chunk.data(), chunk.size())) return finish(true);
      offset += length;
    }
    if (response.reset_after_bytes && *response.reset_after_bytes < body_length) {
      // Give the client a moment to read what was sent, so the reset comes mid-body.
      pause(std::chrono::milliseconds(50));
      return finish(true);
    }
    if (!keep) return finish(false);
  }
}

uint16_t closed_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace wavoip::test

// http_client.cpp - see http_client.h.
#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hdp::test {
namespace {

// Closes the socket on every path.
class Socket {
public:
   Socket() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
   ~Socket() {
      if (fd_ >= 0) {
         close(fd_);
      }
   }
   Socket(const Socket &) = delete;
   Socket &operator=(const Socket &) = delete;
   int fd() const { return fd_; }

private:
   int fd_;
};

bool IEquals(std::string_view a, std::string_view b) {
   return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
          });
}

} // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
   std::string_view rest = headers;
   while (!rest.empty()) {
      auto end = rest.find("\r\n");
      std::string_view line = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
      auto colon = line.find(':');
      if (colon != std::string_view::npos && IEquals(line.substr(0, colon), name)) {
         auto value = line.substr(colon + 1);
         while (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
         }
         return std::string(value);
      }
   }
   return std::nullopt;
}

HttpResponse Http(int port, std::string_view method, std::string_view target, std::string_view body,
                  std::chrono::milliseconds timeout) {
   HttpResponse response;
   const auto deadline = std::chrono::steady_clock::now() + timeout;
   auto remaining_ms = [&] {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      return static_cast<int>(std::max<long long>(0, left.count()));
   };

   Socket sock;
   sockaddr_in addr{};
   addr.sin_family = AF_INET;
   addr.sin_port = htons(static_cast<uint16_t>(port));
   addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
   if (sock.fd() < 0 ||
       connect(sock.fd(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
      response.error = std::string("connect: ") + std::strerror(errno);
      return response;
   }
   std::string request =
       std::string(method) + " " + std::string(target) +
       " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\n\r\n" + std::string(body);
   for (size_t sent = 0; sent < request.size();) {
      ssize_t n = send(sock.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
         response.error = std::string("send: ") + std::strerror(errno);
         break; // the server may answer early (413) and stop reading; read what it said
      }
      sent += static_cast<size_t>(n);
   }

   std::string raw;
   size_t head_end = std::string::npos;
   std::optional<size_t> content_length;
   for (;;) {
      if (head_end != std::string::npos && content_length &&
          raw.size() >= head_end + 4 + *content_length) {
         break; // a keep-alive server would not close; stop at the end of the body
      }
      pollfd pfd{sock.fd(), POLLIN, 0};
      int ready = poll(&pfd, 1, remaining_ms());
      if (ready <= 0) {
         response.error = "timed out waiting for the response";
         return response;
      }
      char buffer[16384];
      ssize_t n = recv(sock.fd(), buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) {
         continue;
      }
      if (n <= 0) {
         break;
      }
      raw.append(buffer, static_cast<size_t>(n));
      if (head_end == std::string::npos) {
         head_end = raw.find("\r\n\r\n");
         if (head_end != std::string::npos) {
            response.headers = raw.substr(0, head_end + 2);
            if (auto length = response.Header("Content-Length")) {
               content_length = std::stoul(*length);
            }
         }
      }
   }
   if (head_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
      response.error = "no complete response head (got " + std::to_string(raw.size()) + " bytes)";
      return response;
   }
   auto space = raw.find(' ');
   response.status = std::atoi(raw.c_str() + space + 1);
   response.body = raw.substr(head_end + 4);
   if (content_length && response.body.size() > *content_length) {
      response.body.resize(*content_length);
   }
   response.error.clear();
   return response;
}

std::optional<long long> JsonNumber(const std::string &json, std::string_view name) {
   std::string key = "\"" + std::string(name) + "\":";
   auto pos = json.find(key);
   if (pos == std::string::npos) {
      return std::nullopt;
   }
   pos += key.size();
   while (pos < json.size() && json[pos] == ' ') {
      ++pos;
   }
   size_t end = pos;
   if (end < json.size() && json[end] == '-') {
      ++end;
   }
   while (end < json.size() && std::isdigit(static_cast<unsigned char>(json[end]))) {
      ++end;
   }
   if (end == pos) {
      return std::nullopt;
   }
   return std::stoll(json.substr(pos, end - pos));
}

} // namespace hdp::test

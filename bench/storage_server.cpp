// A local stand-in for the recording storage, for the benchmarks. One thread, Asio C++20
// coroutines, HTTP/1.1 keep-alive (libcurl reuses connections, as it would with the real
// storage), and bodies generated on the fly so a 1 GB recording never sits in memory.
//
//   GET /bytes/<N>/<anything>              200 audio/mpeg, N bytes (byte i = i % 251)
//   GET /bytes/<N>/rate/<B>/<anything>     the same, sent at B bytes/s on this connection
//   GET /missing/<anything>                404 (the recording is not there yet: a poll's answer)
//   GET /__stats                           {"requests","ok","not_found","bytes_sent","active_bodies",
//                                           "max_active_bodies","completed_bodies","first_us","last_us"}
//   POST /__stats/reset                    zeroes the counters
//
//   bench_storage_server [--port-file FILE] [--port N]
//
// first_us/last_us: CLOCK_REALTIME microseconds of the first and the latest request counted
// since the last reset (the poll-drain benchmark divides by their difference).
#include "local_server.hpp"

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

struct Stats {
  std::uint64_t requests = 0;
  std::uint64_t ok = 0;
  std::uint64_t not_found = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t active_bodies = 0;
  std::uint64_t max_active_bodies = 0;
  std::uint64_t completed_bodies = 0;
  std::int64_t first_us = 0;
  std::int64_t last_us = 0;
} g_stats;

constexpr std::size_t kPatternBytes = 1 << 20;  // a multiple of nothing: offsets into it wrap by 251
std::array<char, kPatternBytes + 251> g_pattern;

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::uint64_t to_u64(std::string_view text) {
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') break;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

// The next path segment after `prefix` ("/bytes/123/..." -> "123").
std::string_view segment(std::string_view path, std::size_t from) {
  const std::size_t end = path.find('/', from);
  return path.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from);
}

awaitable<void> send_body(tcp::socket& socket, std::uint64_t size, std::uint64_t rate) {
  ++g_stats.active_bodies;
  g_stats.max_active_bodies = std::max(g_stats.max_active_bodies, g_stats.active_bodies);
  struct Done {
    ~Done() { --g_stats.active_bodies; }
  } done;
  asio::steady_timer timer(socket.get_executor());
  const auto start = std::chrono::steady_clock::now();
  // Throttled: ~50 writes a second; else 1 MiB per write.
  const std::uint64_t chunk = rate == 0 ? kPatternBytes : std::clamp<std::uint64_t>(rate / 50, 1024, 256 * 1024);
  std::uint64_t sent = 0;
  while (sent < size) {
    const std::size_t n = static_cast<std::size_t>(std::min(chunk, size - sent));
    const std::size_t offset = static_cast<std::size_t>(sent % 251);
    co_await asio::async_write(socket, asio::buffer(g_pattern.data() + offset, n), use_awaitable);
    sent += n;
    g_stats.bytes_sent += n;
    if (rate != 0 && sent < size) {
      timer.expires_at(start + std::chrono::microseconds(sent * 1000000 / rate));
      co_await timer.async_wait(use_awaitable);
    }
  }
  ++g_stats.completed_bodies;
}

awaitable<void> session(tcp::socket socket) {
  std::string buffer;
  try {
    for (;;) {
      const std::size_t head_length =
          co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n", use_awaitable);
      const std::string head = buffer.substr(0, head_length);
      buffer.erase(0, head_length);

      const std::size_t sp1 = head.find(' ');
      const std::size_t sp2 = head.find(' ', sp1 + 1);
      if (sp1 == std::string::npos || sp2 == std::string::npos) co_return;
      const std::string_view method(head.data(), sp1);
      std::string_view path(head.data() + sp1 + 1, sp2 - sp1 - 1);
      path = path.substr(0, path.find('?'));
      bool close = false;
      std::uint64_t content_length = 0;
      for (std::size_t pos = head.find("\r\n") + 2; pos < head.size();) {
        const std::size_t eol = head.find("\r\n", pos);
        const std::string_view line(head.data() + pos, eol - pos);
        if (iequals_prefix(line, "connection:") && line.find("close") != std::string_view::npos) close = true;
        if (iequals_prefix(line, "content-length:")) content_length = to_u64(line.substr(line.find(':') + 2));
        pos = eol + 2;
      }
      // Requests here have no body worth reading; skip one if sent.
      while (buffer.size() < content_length) {
        co_await asio::async_read(socket, asio::dynamic_buffer(buffer), asio::transfer_at_least(1), use_awaitable);
      }
      buffer.erase(0, static_cast<std::size_t>(content_length));

      const char* connection = close ? "Connection: close\r\n" : "";
      if (path == "/__stats") {
        char body[512];
        std::snprintf(body, sizeof body,
                      "{\"requests\":%llu,\"ok\":%llu,\"not_found\":%llu,\"bytes_sent\":%llu,\"active_bodies\":%llu,"
                      "\"max_active_bodies\":%llu,\"completed_bodies\":%llu,\"first_us\":%lld,\"last_us\":%lld}",
                      static_cast<unsigned long long>(g_stats.requests), static_cast<unsigned long long>(g_stats.ok),
                      static_cast<unsigned long long>(g_stats.not_found),
                      static_cast<unsigned long long>(g_stats.bytes_sent),
                      static_cast<unsigned long long>(g_stats.active_bodies),
                      static_cast<unsigned long long>(g_stats.max_active_bodies),
                      static_cast<unsigned long long>(g_stats.completed_bodies),
                      static_cast<long long>(g_stats.first_us), static_cast<long long>(g_stats.last_us));
        if (method == "POST") {
          Stats fresh;
          fresh.active_bodies = g_stats.active_bodies;  // still being sent
          g_stats = fresh;
        }
        const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(std::strlen(body)) + "\r\n" + connection + "\r\n" + body;
        co_await asio::async_write(socket, asio::buffer(response), use_awaitable);
      } else {
        ++g_stats.requests;
        g_stats.last_us = wall_us();
        if (g_stats.first_us == 0) g_stats.first_us = g_stats.last_us;
        if (path.starts_with("/bytes/")) {
          const std::uint64_t size = to_u64(segment(path, 7));
          std::uint64_t rate = 0;
          const std::size_t after_size = 7 + segment(path, 7).size() + 1;
          if (path.substr(after_size).starts_with("rate/")) rate = to_u64(segment(path, after_size + 5));
          ++g_stats.ok;
          const std::string header =
              "HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: " + std::to_string(size) + "\r\n" +
              connection + "\r\n";
          co_await asio::async_write(socket, asio::buffer(header), use_awaitable);
          co_await send_body(socket, size, rate);
        } else {
          ++g_stats.not_found;
          const std::string response =
              std::string("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n") + connection +
              "\r\nnot found";
          co_await asio::async_write(socket, asio::buffer(response), use_awaitable);
        }
      }
      if (close) break;
    }
  } catch (const std::exception&) {
    // The client went away (a cancelled download, the end of a run): nothing to report.
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<void> listener(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bench::ServerOptions options = bench::server_options(argc, argv);
  for (std::size_t i = 0; i < g_pattern.size(); ++i) g_pattern[i] = static_cast<char>(i % 251);

  asio::io_context io(1);
  tcp::acceptor acceptor = bench::listen_on_loopback(io, options);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  asio::co_spawn(io, listener(acceptor), asio::detached);
  io.run();
  return 0;
}

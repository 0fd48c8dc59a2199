// Fixed-rate webhook load (what wrk2 does and wrk does not): C keep-alive connections share a
// target rate R; request k of connection i is due at start + (k + i/C) * C/R, and its latency is
// measured from that due time, not from when it could finally be sent. A server that stalls for
// 50 ms therefore shows 50 ms of latency on every request that was due during the stall
// (no coordinated omission). Each request is a WaVoIP RECORD delivery with record_status
// RECORDING and a call id of its own, so no download ever starts.
//
//   bench_load --port P [--path /webhooks/wavoip] --rate R --duration S [--connections C]
//              [--warmup S] [--id-prefix X]
//
// A server more than a second behind schedule at the end gets no more requests: those are
// counted as `unsent` (the rate was not sustained, and the percentiles are then a lower bound).
//
// Prints one line: key=value pairs (sent, unsent, ok, errors, achieved_rps, p50_ms, p90_ms, p99_ms,
// p999_ms, max_ms), over the requests due after the warm-up.
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  unsigned short port = 0;
  std::string path = "/webhooks/wavoip";
  double rate = 1000;
  double duration_s = 10;
  double warmup_s = 1;
  int connections = 16;
  std::string id_prefix = "load";
};

struct Results {
  std::vector<std::uint32_t> latencies_us;  // requests due after the warm-up
  std::uint64_t sent = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::uint64_t broken_connections = 0;
  std::uint64_t unsent = 0;       // due but never sent: the server could not keep up
  Clock::time_point last_done{};  // when the latest answer arrived
};

std::string request_for(const Options& o, int connection, std::uint64_t k) {
  const std::string body = R"({"type":"RECORD","action":"UPDATE","whatsapp_call_id":")" + o.id_prefix + "-" +
                           std::to_string(connection) + "-" + std::to_string(k) +
                           R"(","id_session":789,"record_status":"RECORDING"})";
  return "POST " + o.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

awaitable<void> connection(const Options& o, int index, Clock::time_point start, Results& results) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  asio::steady_timer timer(executor);
  const double interval_us = 1e6 * o.connections / o.rate;
  const auto end = start + std::chrono::microseconds(static_cast<std::int64_t>(o.duration_s * 1e6));
  const auto measured_from = start + std::chrono::microseconds(static_cast<std::int64_t>(o.warmup_s * 1e6));
  std::string buffer;
  try {
    co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), o.port), use_awaitable);
    for (std::uint64_t k = 0;; ++k) {
      const auto due =
          start + std::chrono::microseconds(static_cast<std::int64_t>(
                      (static_cast<double>(k) + static_cast<double>(index) / o.connections) * interval_us));
      if (due >= end) break;
      if (Clock::now() >= end + std::chrono::seconds(1)) {
        // The server fell more than a second behind: what is still due is never sent, and
        // counted, so that a run always ends about on time.
        results.unsent += static_cast<std::uint64_t>(
                              (end - due) / std::chrono::microseconds(static_cast<std::int64_t>(interval_us))) +
                          1;
        break;
      }
      if (due > Clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(use_awaitable);
      }
      const std::string request = request_for(o, index, k);
      co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
      ++results.sent;
      const std::size_t head_length =
          co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n", use_awaitable);
      const int status = std::atoi(buffer.c_str() + 9);  // "HTTP/1.1 202"
      std::size_t content_length = 0;
      for (const char* key : {"Content-Length: ", "content-length: "}) {
        const std::size_t at = buffer.find(key);
        if (at != std::string::npos && at < head_length)
          content_length = std::strtoull(buffer.c_str() + at + 16, nullptr, 10);
      }
      while (buffer.size() < head_length + content_length) {
        co_await asio::async_read(socket, asio::dynamic_buffer(buffer), asio::transfer_at_least(1), use_awaitable);
      }
      buffer.erase(0, head_length + content_length);
      results.last_done = Clock::now();
      const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(results.last_done - due).count();
      if (status == 202) {
        ++results.ok;
      } else {
        ++results.errors;
      }
      if (due >= measured_from) results.latencies_us.push_back(static_cast<std::uint32_t>(latency));
    }
  } catch (const std::exception&) {
    ++results.broken_connections;
  }
}

double percentile_ms(std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t index =
      std::min(sorted.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[index] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    if (name == "--port")
      o.port = static_cast<unsigned short>(std::atoi(value));
    else if (name == "--path")
      o.path = value;
    else if (name == "--rate")
      o.rate = std::atof(value);
    else if (name == "--duration")
      o.duration_s = std::atof(value);
    else if (name == "--warmup")
      o.warmup_s = std::atof(value);
    else if (name == "--connections")
      o.connections = std::max(1, std::atoi(value));
    else if (name == "--id-prefix")
      o.id_prefix = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", name.c_str());
      return 2;
    }
  }
  if (o.port == 0 || o.rate <= 0) {
    std::fprintf(stderr, "usage: bench_load --port P --rate R --duration S [--connections C] [--warmup S]\n");
    return 2;
  }
  asio::io_context io(1);
  Results results;
  const auto start = Clock::now() + std::chrono::milliseconds(100);  // every connection is open by then
  for (int i = 0; i < o.connections; ++i) asio::co_spawn(io, connection(o, i, start, results), asio::detached);
  io.run();

  std::sort(results.latencies_us.begin(), results.latencies_us.end());
  // Over the time the measured requests really took (longer than planned if the server fell behind).
  const double measured_s = std::max(o.duration_s - o.warmup_s,
                                     std::chrono::duration<double>(results.last_done - start).count() - o.warmup_s);
  std::printf(
      "sent=%llu unsent=%llu ok=%llu errors=%llu broken=%llu target_rps=%.0f achieved_rps=%.0f p50_ms=%.3f p90_ms=%.3f "
      "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
      static_cast<unsigned long long>(results.sent), static_cast<unsigned long long>(results.unsent),
      static_cast<unsigned long long>(results.ok), static_cast<unsigned long long>(results.errors),
      static_cast<unsigned long long>(results.broken_connections), o.rate,
      static_cast<double>(results.latencies_us.size()) / measured_s, percentile_ms(results.latencies_us, 50),
      percentile_ms(results.latencies_us, 90), percentile_ms(results.latencies_us, 99),
      percentile_ms(results.latencies_us, 99.9),
      results.latencies_us.empty() ? 0.0 : results.latencies_us.back() / 1000.0);
  return results.errors == 0 && results.broken_connections == 0 ? 0 : 1;
}

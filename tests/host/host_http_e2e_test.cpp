// The HTTP side of the real hdp-stub-host: deferred answers and their timeout, keep-alive,
// body and header limits, slow clients, the connection cap, 404/405, HEAD on GET routes. Every
// test runs twice: with the main loop reading and writing the connections, and with two I/O
// threads of the host doing it (--http-threads 2) while requests are still served on the loop.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

// One request on its own connection, and everything the host sent until it closed.
struct Exchange {
  std::string status_line;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;                            // every byte after the header
};

// RawConnection::read_response would wait for the body a HEAD answer announces; this reads until
// the host closes the connection (send "Connection: close").
Exchange exchange(int port, const std::string& request, std::chrono::milliseconds timeout = 5s) {
  std::string received;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<size_t>(n));
    }
  }
  if (fd >= 0) ::close(fd);

  Exchange out;
  const size_t end = received.find("\r\n\r\n");
  if (end == std::string::npos) return out;
  out.body = received.substr(end + 4);
  size_t line_start = 0;
  while (line_start < end) {
    const size_t line_end = received.find("\r\n", line_start);
    const std::string line = received.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    if (out.status_line.empty()) {
      out.status_line = line;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t value = line.find_first_not_of(' ', colon + 1);
    out.headers[name] = value == std::string::npos ? std::string() : line.substr(value);
  }
  return out;
}

// The host's command line for one run of a test: its own arguments, and the I/O threads of the
// run (the test's parameter).
std::vector<std::string> with_http_threads(int threads, std::vector<std::string> args = {}) {
  args.push_back("--http-threads");
  args.push_back(std::to_string(threads));
  return args;
}

std::string threads_name(const ::testing::TestParamInfo<int>& info) {
  return info.param == 0 ? "OnTheMainLoop" : "On" + std::to_string(info.param) + "IoThreads";
}

class ProbeHttp : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(host.started()) << host.log(); }

  // Starts POST /probe/defer on its own connection; returns the future answer.
  std::future<HttpResponse> defer() {
    return std::async(std::launch::async, [url = host.url("/probe/defer")] {
      HttpClient client;
      return client.post(url, "", {}, 20s);
    });
  }
  std::vector<int64_t> pending() { return json_ints(http.get(host.url("/probe/deferred")).json(), "pending"); }
  std::vector<int64_t> cancelled() { return json_ints(http.get(host.url("/probe/deferred")).json(), "cancelled"); }
  int64_t wait_for_one_pending() {
    int64_t id = 0;
    EXPECT_TRUE(eventually([&] {
      const auto ids = pending();
      if (ids.size() != 1) return false;
      id = ids[0];
      return true;
    }));
    return id;
  }

  HostProcess host{probe_host(with_http_threads(GetParam()))};
  HttpClient http;
};

INSTANTIATE_TEST_SUITE_P(HttpServer, ProbeHttp, ::testing::Values(0, 2), threads_name);

// A host started for one test of HttpLimits, with the I/O threads of the run.
class HttpLimits : public ::testing::TestWithParam<int> {
 protected:
  HostOptions host_with(std::vector<std::string> args) {
    return probe_host(with_http_threads(GetParam(), std::move(args)));
  }
};

INSTANTIATE_TEST_SUITE_P(HttpServer, HttpLimits, ::testing::Values(0, 2), threads_name);

TEST_P(ProbeHttp, DeferredAnswerArrivesLaterAndASecondRespondIsNotFound) {
  auto answer = defer();
  const int64_t id = wait_for_one_pending();
  EXPECT_EQ(answer.wait_for(50ms), std::future_status::timeout);  // still waiting
  EXPECT_EQ(json_int(http.post(host.url("/probe/respond-late?id=" + std::to_string(id))).json(), "status"), 0);
  const HttpResponse result = answer.get();
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "late answer");
  EXPECT_EQ(json_int(http.post(host.url("/probe/respond-late?id=" + std::to_string(id))).json(), "status"), -10);
  EXPECT_TRUE(cancelled().empty());
}

TEST_P(ProbeHttp, DeferredTimeoutAnswers503AndCallsOnCancel) {
  auto answer = defer();
  const int64_t id = wait_for_one_pending();
  http.post(host.url("/__test/clock/advance?ms=4999"));  // the route's timeout is 5000 ms
  EXPECT_EQ(answer.wait_for(100ms), std::future_status::timeout);
  http.post(host.url("/__test/clock/advance?ms=1"));
  const HttpResponse result = answer.get();
  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(cancelled(), std::vector<int64_t>{id});
  EXPECT_TRUE(pending().empty());
  // A late answer is refused.
  EXPECT_EQ(json_int(http.post(host.url("/probe/respond-late?id=" + std::to_string(id))).json(), "status"), -10);
}

TEST_P(ProbeHttp, ClientLeavingWhileDeferredCallsOnCancel) {
  RawConnection raw(host.port());
  ASSERT_TRUE(raw.send("POST /probe/defer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  const int64_t id = wait_for_one_pending();
  raw.close();
  EXPECT_TRUE(eventually([&] { return cancelled() == std::vector<int64_t>{id}; }));
  EXPECT_EQ(json_int(http.post(host.url("/probe/respond-late?id=" + std::to_string(id))).json(), "status"), -10);
}

TEST_P(ProbeHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
  RawConnection raw(host.port());
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(raw.send(get));
  auto first = raw.read_response(5s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(first->body.find("org.hdp.test.probe"), std::string::npos);
  ASSERT_TRUE(raw.send(get));
  auto second = raw.read_response(5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  // Pipelined: two requests in one write, two answers in order.
  ASSERT_TRUE(raw.send(get + "GET /probe/fired HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto third = raw.read_response(5s);
  auto fourth = raw.read_response(5s);
  ASSERT_TRUE(third && fourth);
  EXPECT_NE(third->body.find("\"status\":\"ok\""), std::string::npos);
  EXPECT_NE(fourth->body.find("\"fired\""), std::string::npos);
  // And libcurl reuses its connection.
  EXPECT_EQ(http.get(host.url("/healthz")).status, 200);
  const HttpResponse again = http.get(host.url("/healthz"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.new_connections, 0);
}

TEST_P(ProbeHttp, BodyOverTheRouteLimitIs413AndNeverReachesThePlugin) {
  // /probe/echo accepts 1024 bytes.
  const HttpResponse fits = http.post(host.url("/probe/echo"), std::string(1024, 'a'));
  EXPECT_EQ(fits.status, 200);
  EXPECT_EQ(fits.body, std::string(1024, 'a'));
  EXPECT_EQ(http.post(host.url("/probe/echo"), std::string(1025, 'a')).status, 413);
  // Announced by Content-Length: refused before any body byte is sent.
  RawConnection raw(host.port());
  ASSERT_TRUE(raw.send("POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  auto refused = raw.read_response(5s);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 413);
  // Chunked: refused once the chunks pass the limit.
  RawConnection chunked(host.port());
  ASSERT_TRUE(
      chunked.send("POST /probe/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "800\r\n" +
                   std::string(0x800, 'b') + "\r\n0\r\n\r\n"));
  auto refused_chunked = chunked.read_response(5s);
  ASSERT_TRUE(refused_chunked);
  EXPECT_EQ(refused_chunked->status, 413);
}

TEST_P(ProbeHttp, ExpectContinueGetsAnInterimAnswer) {
  // Without "100 Continue" the client would wait (curl: 1 s) before sending the body.
  const auto before = std::chrono::steady_clock::now();
  const HttpResponse echoed = http.post(host.url("/probe/echo"), std::string(500, 'c'), {"Expect: 100-continue"});
  EXPECT_EQ(echoed.status, 200);
  EXPECT_EQ(echoed.body, std::string(500, 'c'));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 800ms);
}

TEST_P(ProbeHttp, HeaderOverTheLimitIs431OrClosed) {
  RawConnection raw(host.port());
  const bool sent = raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n");
  const auto answer = raw.read_response(5s);
  if (answer) {
    EXPECT_EQ(answer->status, 431);
  } else {
    EXPECT_TRUE(!sent || raw.wait_closed(5s));
  }
  EXPECT_EQ(http.get(host.url("/healthz")).status, 200);  // the server is fine
}

TEST_P(ProbeHttp, UnknownPathIs404AndWrongMethodIs405) {
  EXPECT_EQ(http.get(host.url("/nowhere")).status, 404);
  const HttpResponse wrong = http.post(host.url("/healthz"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers.at("allow"), "GET");
}

TEST_P(ProbeHttp, HeadOnAGetRouteAnswersLikeGetWithoutABody) {
  // A GET route of the host, and one of the plugin (answering {"agent":null}).
  ASSERT_EQ(json_int(http.post(host.url("/probe/route?path=/plugin-get&method=GET&whoami=1")).json(), "status"), 0);
  for (const std::string path : {"/healthz", "/plugin-get"}) {
    SCOPED_TRACE(path);
    const Exchange get = exchange(host.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(get.status_line, "HTTP/1.1 200 OK");
    ASSERT_FALSE(get.body.empty());
    ASSERT_EQ(get.headers.at("content-length"), std::to_string(get.body.size()));

    const Exchange head = exchange(host.port(), "HEAD " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(head.status_line, get.status_line);
    EXPECT_EQ(head.body, "") << "no body after a HEAD answer";
    auto without_date = [](std::map<std::string, std::string> headers) {
      headers.erase("date");
      return headers;
    };
    EXPECT_EQ(without_date(head.headers), without_date(get.headers)) << "Content-Length included";
  }
  // Routes of other methods do not take HEAD.
  ASSERT_EQ(json_int(http.post(host.url("/probe/route?path=/plugin-post&method=POST")).json(), "status"), 0);
  const Exchange refused = exchange(host.port(), "HEAD /plugin-post HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(refused.status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(refused.headers.at("allow"), "POST");
}

TEST_P(ProbeHttp, ManyConnectionsAtOnceAreAnsweredAndServedOnTheMainThread) {
  // Eight clients at once, each with its kept-alive connection and its own bodies: every answer
  // comes back whole on the connection that asked, whichever thread read it.
  std::vector<std::future<int>> clients;
  for (int c = 0; c < 8; ++c) {
    clients.push_back(std::async(std::launch::async, [url = host.url("/probe/echo"), c] {
      HttpClient client;
      int echoed = 0;
      for (int i = 0; i < 25; ++i) {
        const std::string body = "client " + std::to_string(c) + ", request " + std::to_string(i);
        const HttpResponse answer = client.post(url, body, {}, 10s);
        if (answer.status == 200 && answer.body == body) ++echoed;
      }
      return echoed;
    }));
  }
  for (auto& client : clients) EXPECT_EQ(client.get(), 25);
  // The plugin saw every request on the host's main thread, as the ABI promises.
  EXPECT_EQ(json_int(http.get(host.url("/probe/thread")).json(), "requests_off_main"), 0);
  const std::set<std::string> names = testsupport::thread_names(host.pid());
  const size_t io_threads = names.count("hdp-http-0") + names.count("hdp-http-1") + names.count("hdp-http-2");
  EXPECT_EQ(io_threads, static_cast<size_t>(GetParam())) << ::testing::PrintToString(names);
}

TEST_P(ProbeHttp, StopAnswersTheDeferredRequestAndExitsCleanly) {
  auto answer = defer();
  wait_for_one_pending();
  RawConnection idle(host.port());  // kept open, never sends: closed by the stop
  ASSERT_TRUE(eventually([&] { return host.log().find("probe: deferred request=") != std::string::npos; }));
  EXPECT_EQ(host.stop(), 0) << host.log();
  ASSERT_EQ(answer.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(answer.get().status, 503);
  EXPECT_TRUE(idle.wait_closed(5s));
}

TEST_P(ProbeHttp, PluginSeesThePeerAddressAndCannotTakeHostRoutes) {
  const auto info = http.get(host.url("/probe/info")).json();
  EXPECT_EQ(info.at("peer").as_string(), "127.0.0.1");
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/healthz&method=GET")).json(), "status"), -11);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/probe/defer&method=POST")).json(), "status"), -11);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/extra&method=PUT")).json(), "status"), 0);
}

TEST_P(HttpLimits, SlowClientDoesNotBlockOthersAndIsDropped) {
  HostProcess host(host_with({"--header-timeout-ms", "1000"}));
  ASSERT_TRUE(host.started()) << host.log();
  RawConnection slow(host.port());
  std::atomic<bool> stop{false};
  std::atomic<bool> send_failed{false};
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  std::thread trickle([&] {
    for (const char c : request) {  // one header byte every 150 ms: never complete in time
      if (stop || !slow.send(std::string(1, c))) {
        send_failed = true;
        return;
      }
      std::this_thread::sleep_for(150ms);
    }
  });
  HttpClient http;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(http.get(host.url("/healthz"), 2s).status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - before, 500ms);
  }
  // Dropped about a second after its first byte.
  EXPECT_TRUE(eventually([&] { return send_failed.load(); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  stop = true;
  trickle.join();
}

TEST_P(HttpLimits, RequestsRefusedBeforeRoutingAreCountedInMetrics) {
  HostProcess host(host_with({"--header-timeout-ms", "300"}));
  ASSERT_TRUE(host.started()) << host.log();
  // 413: announced over /probe/echo's 1024 bytes.
  RawConnection large_body(host.port());
  ASSERT_TRUE(large_body.send("POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  const auto body_refused = large_body.read_response(5s);
  ASSERT_TRUE(body_refused);
  EXPECT_EQ(body_refused->status, 413);
  // 431: a header over 16 KiB (counted even if the client only sees the connection close).
  RawConnection large_header(host.port());
  large_header.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n");
  large_header.read_response(5s);
  // 400: not HTTP.
  RawConnection garbage(host.port());
  ASSERT_TRUE(garbage.send("NOT HTTP AT ALL\r\n\r\n"));
  const auto bad = garbage.read_response(5s);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  // Header timeout: half a header, then nothing.
  RawConnection slow(host.port());
  ASSERT_TRUE(slow.send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_TRUE(slow.wait_closed(5s));

  HttpClient http;
  std::string metrics;
  const auto sample = [&](const std::string& reason) {
    return "\nhdp_host_http_refused_total{reason=\"" + reason + "\"} 1\n";
  };
  EXPECT_TRUE(eventually([&] {
    metrics = http.get(host.url("/metrics")).body;
    return metrics.find(sample("header_too_large")) != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find("\n# TYPE hdp_host_http_refused_total counter\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(sample("body_too_large")), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(sample("bad_request")), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(sample("header_timeout")), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("reason=\"body_timeout\""), std::string::npos) << metrics;
  // Not counted as answered requests of a route: no route saw them.
  EXPECT_EQ(metrics.find("status=\"413\""), std::string::npos) << metrics;
}

TEST_P(HttpLimits, IdleKeptAliveConnectionIsClosed) {
  HostProcess host(host_with({"--idle-timeout-ms", "300"}));
  ASSERT_TRUE(host.started()) << host.log();
  RawConnection raw(host.port());
  ASSERT_TRUE(raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(raw.read_response(5s));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.wait_closed(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 200ms);
}

TEST_P(HttpLimits, ConnectionsOverTheCapAreClosed) {
  HostProcess host(host_with({"--max-connections", "2"}));
  ASSERT_TRUE(host.started()) << host.log();
  RawConnection a(host.port());
  RawConnection b(host.port());
  ASSERT_TRUE(a.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(a.read_response(5s));
  ASSERT_TRUE(b.read_response(5s));
  RawConnection c(host.port());
  EXPECT_TRUE(c.wait_closed(5s));
  a.close();
  b.close();
  HttpClient http;
  EXPECT_TRUE(eventually([&] { return http.get(host.url("/healthz"), 1s).status == 200; }));
}

}  // namespace
}  // namespace hdp::test

// The HTTP side of the real hdp-stub-host: deferred answers and their timeout, keep-alive,
// body and header limits, slow clients, the connection cap, 404/405.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

class ProbeHttp : public ::testing::Test {
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

  HostProcess host{probe_host()};
  HttpClient http;
};

TEST_F(ProbeHttp, DeferredAnswerArrivesLaterAndASecondRespondIsNotFound) {
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

TEST_F(ProbeHttp, DeferredTimeoutAnswers503AndCallsOnCancel) {
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

TEST_F(ProbeHttp, ClientLeavingWhileDeferredCallsOnCancel) {
  RawConnection raw(host.port());
  ASSERT_TRUE(raw.send("POST /probe/defer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  const int64_t id = wait_for_one_pending();
  raw.close();
  EXPECT_TRUE(eventually([&] { return cancelled() == std::vector<int64_t>{id}; }));
  EXPECT_EQ(json_int(http.post(host.url("/probe/respond-late?id=" + std::to_string(id))).json(), "status"), -10);
}

TEST_F(ProbeHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
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

TEST_F(ProbeHttp, BodyOverTheRouteLimitIs413AndNeverReachesThePlugin) {
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
  ASSERT_TRUE(chunked.send("POST /probe/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "800\r\n" + std::string(0x800, 'b') + "\r\n0\r\n\r\n"));
  auto refused_chunked = chunked.read_response(5s);
  ASSERT_TRUE(refused_chunked);
  EXPECT_EQ(refused_chunked->status, 413);
}

TEST_F(ProbeHttp, ExpectContinueGetsAnInterimAnswer) {
  // Without "100 Continue" the client would wait (curl: 1 s) before sending the body.
  const auto before = std::chrono::steady_clock::now();
  const HttpResponse echoed = http.post(host.url("/probe/echo"), std::string(500, 'c'), {"Expect: 100-continue"});
  EXPECT_EQ(echoed.status, 200);
  EXPECT_EQ(echoed.body, std::string(500, 'c'));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 800ms);
}

TEST_F(ProbeHttp, HeaderOverTheLimitIs431OrClosed) {
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

TEST_F(ProbeHttp, UnknownPathIs404AndWrongMethodIs405) {
  EXPECT_EQ(http.get(host.url("/nowhere")).status, 404);
  const HttpResponse wrong = http.post(host.url("/healthz"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers.at("allow"), "GET");
}

TEST_F(ProbeHttp, PluginSeesThePeerAddressAndCannotTakeHostRoutes) {
  const auto info = http.get(host.url("/probe/info")).json();
  EXPECT_EQ(info.at("peer").as_string(), "127.0.0.1");
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/healthz&method=GET")).json(), "status"), -11);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/probe/defer&method=POST")).json(), "status"), -11);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?path=/extra&method=PUT")).json(), "status"), 0);
}

TEST(HttpLimits, SlowClientDoesNotBlockOthersAndIsDropped) {
  HostProcess host(probe_host({"--header-timeout-ms", "1000"}));
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

TEST(HttpLimits, IdleKeptAliveConnectionIsClosed) {
  HostProcess host(probe_host({"--idle-timeout-ms", "300"}));
  ASSERT_TRUE(host.started()) << host.log();
  RawConnection raw(host.port());
  ASSERT_TRUE(raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(raw.read_response(5s));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.wait_closed(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - before, 200ms);
}

TEST(HttpLimits, ConnectionsOverTheCapAreClosed) {
  HostProcess host(probe_host({"--max-connections", "2"}));
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

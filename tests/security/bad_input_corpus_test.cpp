// The bad-input corpus (tests/security/corpus/*.case) against the real stub host with the built
// plugin, over real HTTP, in production settings: webhook keys configured, development mode off,
// downloads only from an allow-listed https host. A canary HTTP server on 127.0.0.1 stands for
// everything a record_url must never reach.
#include "corpus_case.hpp"
#include "raw_http.hpp"  // tests/support
#include "security_fixture.hpp"

#include <algorithm>
#include <thread>

namespace {

namespace json = boost::json;
using security::CorpusCase;

std::string chunk_encode(const std::string& body) {
  constexpr size_t kChunk = 4096;
  std::string out;
  char size[32];
  for (size_t at = 0; at < body.size(); at += kChunk) {
    const size_t n = std::min(kChunk, body.size() - at);
    std::snprintf(size, sizeof(size), "%zx\r\n", n);
    out += size;
    out.append(body, at, n);
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

bool is_webhook_path(const std::string& path) {
  return path.rfind("/webhooks/wavoip", 0) == 0;
}

class BadInputCorpus : public e2e::PluginHost {
 protected:
  testsupport::RawResponse send(const CorpusCase& c, const std::map<std::string, std::string>& values,
                                std::string& body_sent) {
    std::vector<std::string> headers;
    if (c.content_type) headers.push_back("Content-Type: " + *c.content_type);
    for (const std::string& h : c.headers) headers.push_back(security::substitute(h, values));
    body_sent = security::substitute(c.body, values);
    std::string wire_body = body_sent;
    if (c.chunked) {
      headers.push_back("Transfer-Encoding: chunked");
      wire_body = chunk_encode(body_sent);
    }
    const std::string target = security::substitute(c.path, values);
    return testsupport::raw_exchange(static_cast<uint16_t>(host_->port()),
                                     testsupport::build_request(c.method, target, headers, wire_body));
  }
};

TEST_F(BadInputCorpus, EveryCaseGetsItsAnswerAndOnlyAcceptedDeliveriesAreStored) {
  const std::vector<CorpusCase> cases = security::load_corpus(HDP_SECURITY_CORPUS_DIR);
  ASSERT_GE(cases.size(), 150u);

  // Answers every path (404 for unknown ones); any hit at all would be a forbidden download.
  wavoip::test::TestHttpServer canary;
  start_host(security::production_config(security::both_keys()));

  std::map<std::string, std::string> values = security::key_placeholders();
  values["canary"] = "127.0.0.1:" + std::to_string(canary.port());
  values["canary_port"] = std::to_string(canary.port());
  values["pad_20k"] = std::string(20 * 1024, 'h');

  std::multiset<std::string> accepted;
  size_t refused = 0;
  for (const CorpusCase& c : cases) {
    SCOPED_TRACE(c.name + ": " + c.description);
    std::string body;
    const testsupport::RawResponse answer = send(c, values, body);
    ASSERT_NE(answer.status, 0) << "no answer (" << answer.error << "); the host hung or crashed";
    EXPECT_EQ(answer.status, c.expect) << answer.body;
    EXPECT_LT(answer.status, 500) << "bad input must never earn a 5xx: " << answer.body;
    if (c.error) {
      EXPECT_NE(answer.body.find(*c.error), std::string::npos) << answer.body;
    }

    // Every answer is JSON: {"status":"accepted",...} or {"error":"..."}.
    boost::system::error_code ec;
    const json::value parsed = json::parse(answer.body, ec);
    ASSERT_FALSE(ec) << "answer is not JSON: " << answer.body;
    ASSERT_TRUE(parsed.is_object()) << answer.body;
    const json::object& object = parsed.as_object();
    if (answer.status == 202 && is_webhook_path(c.path)) {
      EXPECT_EQ(object.at("status"), "accepted") << answer.body;
      accepted.insert(body);
    } else if (answer.status >= 400) {
      ASSERT_TRUE(object.contains("error") && object.at("error").is_string()) << answer.body;
      ++refused;
    }
    // 401 says nothing about what was wrong with the key.
    if (answer.status == 401) {
      EXPECT_EQ(answer.body, R"({"error":"unauthorized"})");
    }
  }
  EXPECT_GE(refused, 100u);
  EXPECT_GE(accepted.size(), 50u);
  EXPECT_EQ(testsupport::http_get(host_->base_url() + "/healthz").status, 200) << "the host survived the corpus";

  // The warnings the cases name (each refused record_url with its call id), once the downloads
  // the accepted deliveries started have run.
  for (const CorpusCase& c : cases) {
    for (const std::string& line : c.logs) {
      const std::string needle = security::substitute(line, values);
      EXPECT_TRUE(testsupport::eventually([&] { return count_in_log(needle) > 0; }))
          << c.name << ": no log line " << needle;
    }
  }
  // The host itself logged the bodies it refused before the plugin saw them.
  EXPECT_GE(count_in_log("over the route's limit"), 3u);
  EXPECT_GE(count_in_log("header larger than"), 1u);

  EXPECT_EQ(canary.connections(), 0u) << "a record_url reached a loopback address: " << canary.last_request();
  EXPECT_EQ(canary.hits(), 0u);

  ASSERT_EQ(host_->stop(), 0) << host_->log();
  const std::vector<std::string> stored =
      security::stored_delivery_bodies(security::plugin_database(dir_->path() / "host"));
  EXPECT_EQ(stored.size(), accepted.size());
  EXPECT_EQ(std::multiset<std::string>(stored.begin(), stored.end()), accepted)
      << "the store must hold exactly the accepted deliveries, byte for byte";
}

TEST_F(BadInputCorpus, ASlowBodyDoesNotHoldUpOtherDeliveries) {
  // The host's own slow-client tests (tests/host/host_http_e2e_test.cpp,
  // HttpLimits.SlowClientDoesNotBlockOthersAndIsDropped) cover a trickled header and its
  // timeout; here a delivery announces a body and sends it byte by byte on the webhook route.
  start_host(security::production_config(security::both_keys()));
  testsupport::RawConnection slow(static_cast<uint16_t>(host_->port()));
  ASSERT_TRUE(slow.connected());
  const std::string body = R"({"type":"RECORD","whatsapp_call_id":"slow-1","record_status":"MIXING"})";
  ASSERT_TRUE(slow.send("POST /webhooks/wavoip/" + security::kKey +
                        " HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n"));
  for (size_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(slow.send(body.substr(i, 1)));
    const std::string id = "fast-" + std::to_string(i);
    auto answer = post_webhook(R"({"type":"RECORD","whatsapp_call_id":")" + id + R"(","record_status":"MIXING"})",
                               "/webhooks/wavoip/" + security::kKey);
    EXPECT_EQ(answer.status, 202) << answer.body << answer.error;
  }
  ASSERT_TRUE(slow.send(body.substr(10)));
  // The slow one is accepted too once complete.
  EXPECT_TRUE(testsupport::eventually([&] { return count_in_log("Received event: RECORD (call slow-1)") == 1; }));
}

}  // namespace

// A sign-in's password check (the account's lookup and its Argon2id verification, tens of
// milliseconds of CPU each by design) runs on the host's sign-in thread, not on its loop: while
// agents sign in, /healthz and the WaVoIP webhook are answered at once, and each sign-in still
// gets a session whose cookie opens the agents' routes.
//
// No absolute timings (the machine is shared): what the probes wait is compared with how long
// the sign-ins took in all. Were the hashes on the loop, a probe sent behind them would wait for
// them, about as long as the sign-ins themselves.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "e2e_fixture.hpp"
#include "raw_http.hpp"  // tests/support

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testsupport::build_request;
using testsupport::RawConnection;
using testsupport::RawResponse;

class SignInOffTheLoop : public e2e::PluginHost {
 protected:
  // One request on a connection of its own; the answer and how long it took.
  std::pair<RawResponse, Clock::duration> timed(const std::string& method, const std::string& target,
                                                const std::string& body = "") {
    const auto start = Clock::now();
    RawResponse answer = testsupport::raw_exchange(
        static_cast<uint16_t>(host_->port()),
        build_request(
            method, target,
            body.empty() ? std::vector<std::string>{} : std::vector<std::string>{"Content-Type: application/json"},
            body),
        30s);
    return {std::move(answer), Clock::now() - start};
  }
};

TEST_F(SignInOffTheLoop, WhileSignInsAreCheckedHealthzAndWebhooksAnswerAtOnce) {
  start_host();
  constexpr int kSignIns = 8;
  const std::string login = std::string(R"({"name":")") + testsupport::kTestAgent + R"(","password":")" +
                            testsupport::kTestAgentPassword + R"("})";

  // Eight agents sign in at once, each on its connection; each answer is read by a thread of its
  // own, which notes when it came.
  std::vector<std::unique_ptr<RawConnection>> sign_ins;
  for (int i = 0; i < kSignIns; ++i) {
    sign_ins.push_back(std::make_unique<RawConnection>(static_cast<uint16_t>(host_->port())));
    ASSERT_TRUE(sign_ins.back()->connected());
  }
  const auto start = Clock::now();
  for (auto& conn : sign_ins) {
    ASSERT_TRUE(conn->send(build_request("POST", "/login", {"Content-Type: application/json"}, login)));
  }
  std::vector<std::optional<RawResponse>> answers(kSignIns);
  std::vector<Clock::time_point> answered(kSignIns);
  std::atomic<int> pending{kSignIns};
  std::vector<std::thread> readers;
  for (int i = 0; i < kSignIns; ++i) {
    readers.emplace_back([&, i] {
      answers[i] = sign_ins[i]->read_response(60s);
      answered[i] = Clock::now();
      --pending;
    });
  }

  // Meanwhile: /healthz and a webhook, one after the other, until the last sign-in is answered.
  struct Probe {
    Clock::duration took;
    Clock::time_point done;
  };
  std::vector<Probe> probes;
  int webhooks = 0;
  while (pending > 0) {
    const auto [health, took] = timed("GET", "/healthz");
    ASSERT_EQ(health.status, 200) << health.error;
    probes.push_back({took, Clock::now()});
    const auto [hook, hook_took] =
        timed("POST", "/webhooks/wavoip", e2e::record_event("busy-" + std::to_string(webhooks++), "RECORDING"));
    ASSERT_EQ(hook.status, 202) << hook.error << hook.body;
    probes.push_back({hook_took, Clock::now()});
  }
  for (auto& reader : readers) reader.join();

  const auto last = *std::max_element(answered.begin(), answered.end());
  const auto sign_ins_took = last - start;
  const auto during = std::count_if(probes.begin(), probes.end(), [&](const Probe& p) { return p.done < last; });
  std::vector<Clock::duration> took;
  for (const Probe& p : probes) took.push_back(p.took);
  std::sort(took.begin(), took.end());
  const auto median = took[took.size() / 2];
  const auto ms = [](Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  const std::string figures = "the sign-ins took " + std::to_string(ms(sign_ins_took)) + " ms; " +
                              std::to_string(during) + " probes answered meanwhile; the first waited " +
                              std::to_string(ms(probes.front().took)) + " ms, the median " +
                              std::to_string(ms(median)) + " ms";
  std::cout << figures << "\n";

  // The first probe went out right behind the eight sign-ins: on the loop it would wait for
  // (nearly) all their hashes.
  EXPECT_LT(probes.front().took, sign_ins_took / 4) << figures;
  // Probes answer in a fraction of one sign-in's hash (the eight took sign_ins_took in turn), and
  // many of them while the hashes run.
  EXPECT_LT(median, sign_ins_took / (2 * kSignIns)) << figures;
  EXPECT_GE(during, 2 * kSignIns) << figures;

  // Each sign-in worked, and its cookie opens the agents' routes.
  for (int i = 0; i < kSignIns; ++i) {
    ASSERT_TRUE(answers[i]) << host_->log();
    ASSERT_EQ(answers[i]->status, 200) << answers[i]->body;
    const std::string cookie = answers[i]->header("set-cookie").value_or("");
    ASSERT_NE(cookie.find("hdp_session="), std::string::npos);
    const auto session = testsupport::http_request("GET", host_->url("/api/session"), {},
                                                   {"Cookie: " + cookie.substr(0, cookie.find(';'))});
    ASSERT_EQ(session.status, 200) << session.body;
    EXPECT_EQ(session.json().at("agent").as_string(), testsupport::kTestAgent);
  }
  // The webhooks reached the plugin and the host's store.
  EXPECT_TRUE(wait_for_status("busy-0", "waiting")) << recording_status("busy-0");
}

}  // namespace

// The inbox page in a real headless Chromium: the stub host with the WaVoIP plugin (dev mode),
// webhooks from wavoip-sim, recordings from the simulator or a local storage server. Each test
// names what an agent sees. Screenshots land in <build>/tests/browser/artifacts/.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "cdp_browser.hpp"
#include "host_process.hpp"
#include "http_client.hpp"
#include "sim_support.hpp"
#include "test_http_server.hpp"
#include "wav.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using browsertest::Browser;
using testsupport::eventually;
// The simulator, the host and Chromium share two cores: a minute before a wait fails.
constexpr std::chrono::seconds kSlowWait{60};
using simtest::SimProcess;

std::string js_string(const std::string& text) {
  return json::serialize(json::string(text));
}

class InboxPage : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(artifacts_); }

  void TearDown() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (HasFailure()) {
      if (browser_) {
        try {
          browser_->screenshot(artifacts_ / ("failed-" + name + ".png"));
        } catch (const std::exception&) {
        }
      }
      if (host_) std::cerr << "---- host log ----\n" << host_->log() << "\n";
      if (sim_) std::cerr << "---- simulator ----\n" << sim_->output() << "\n";
    }
    browser_.reset();
    if (host_ && host_->running()) {
      EXPECT_EQ(host_->stop(), 0) << "the host did not stop cleanly";
    }
    if (sim_) sim_->stop();
  }

  void start_sim(const std::vector<std::string>& args) {
    sim_ = std::make_unique<SimProcess>(args, dir_.path() / "sim");
    ASSERT_TRUE(sim_->start()) << sim_->output();
  }

  void start_host(const json::object& plugin_config, bool public_listener = false) {
    testsupport::HostOptions options;
    options.host_binary = HDP_STUB_HOST_PATH;
    options.plugins = {WAVOIP_PLUGIN_PATH};
    options.plugin_config_json = json::serialize(plugin_config);
    options.data_dir = dir_.path() / "host";
    options.public_listener = public_listener;
    host_ = std::make_unique<testsupport::HostProcess>(options);
    ASSERT_TRUE(host_->start()) << host_->log();
  }

  // Polls expression across page loads (an evaluation can fail while a page is replaced).
  bool wait_across_loads(const std::string& expression, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        if (browser_->wait_for(expression, std::chrono::milliseconds(500))) return true;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    return false;
  }

  std::string page_path() { return std::string(browser_->evaluate("location.pathname + location.search").as_string()); }

  // Types name and password into the sign-in page and sends the form, as an agent does; waits
  // for the next page to load.
  void submit_sign_in(const std::string& name, const std::string& password) {
    ASSERT_TRUE(wait_across_loads("location.pathname === '/login' && document.querySelector('#sign-in')"))
        << "not on the sign-in page";
    browser_->evaluate("window.__signInPage = true; document.querySelector('#name').value = " + js_string(name) +
                       "; document.querySelector('#password').value = " + js_string(password) +
                       "; setTimeout(() => document.querySelector('#sign-in').submit(), 0); true");
    ASSERT_TRUE(wait_across_loads("!window.__signInPage && document.readyState === 'complete'"))
        << "the form was not sent";
  }

  // Opens the inbox (which sends a signed-out browser to sign in), signs in as the test agent and
  // leaves a marker in the page's window: while it is there, the page was never reloaded.
  void open_inbox() {
    browser_ = std::make_unique<Browser>(dir_.path() / "browser");
    try {
      browser_->start();
      browser_->navigate(host_->base_url() + "/");
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    ASSERT_NO_FATAL_FAILURE(submit_sign_in(testsupport::kTestAgent, testsupport::kTestAgentPassword));
    ASSERT_TRUE(wait_across_loads("document.querySelector('#live-text').textContent.startsWith('Live')"))
        << "the page never reached the API: " << page_path();
    marker_ = std::string(browser_->evaluate("window.__inboxMarker = 'm' + Math.random()").as_string());
  }

  bool same_page() { return browser_->evaluate("window.__inboxMarker === " + js_string(marker_)).as_bool(); }

  // The page's last update went through: no error in its script, the API answered.
  std::string live_text() {
    return std::string(browser_->evaluate("document.querySelector('#live-text').textContent").as_string());
  }

  std::string card(const std::string& call_id) {
    return "document.querySelector('article.call[data-external-key=\"wavoip:" + call_id + "\"]')";
  }

  // What the agent sees of one call.
  json::object seen(const std::string& call_id) {
    return browser_
        ->evaluate(
            "(() => { const c = " + card(call_id) +
            "; if (!c) return {exists: false};"
            " const a = c.querySelector('audio'); const q = (s) => c.querySelector(s);"
            " return {exists: true, status: c.dataset.recordingStatus, text: c.innerText,"
            " badge: q('.badge') ? q('.badge').innerText : '', reason: q('.reason') ? q('.reason').innerText : '',"
            " audio: a ? a.src : null, retry: !!q('button.retry')}; })()")
        .as_object();
  }

  std::string text_of(const std::string& call_id, const char* key) {
    const json::object s = seen(call_id);
    return s.contains(key) && s.at(key).is_string() ? std::string(s.at(key).as_string()) : "";
  }

  // The conversation a call is in, from the JSON API.
  std::int64_t conversation_of(const std::string& call_id) {
    auto r = host_->agent_get("/api/messages?external_key=wavoip%3A" + call_id);
    return r.status == 200 ? json::parse(r.body).at("conversation_id").as_int64() : -1;
  }

  testsupport::TempDir dir_{"inbox-browser"};
  fs::path artifacts_ = BROWSER_ARTIFACTS_DIR;
  std::unique_ptr<SimProcess> sim_;
  std::unique_ptr<testsupport::HostProcess> host_;
  std::unique_ptr<Browser> browser_;
  std::string marker_;
};

TEST_F(InboxPage, CallAppearsThenThePlayerAppearsWithoutReloadAfterReady) {
  ASSERT_NO_FATAL_FAILURE(start_sim({"--manual", "--scenario", "happy", "--seed", "11"}));
  // No polling (first poll after an hour): only the simulator's READY can bring the recording.
  ASSERT_NO_FATAL_FAILURE(start_host(
      {{"base_url", sim_->url("/")}, {"allow_insecure_loopback", true}, {"poll", {{"first_delay_s", 3600}}}}));
  ASSERT_EQ(sim_->start_webhooks(host_->base_url() + "/webhooks/wavoip"), 202);
  ASSERT_NO_FATAL_FAILURE(open_inbox());
  const json::object call = sim_->calls().at(0).as_object();
  const std::string id(call.at("call_id").as_string());
  const std::int64_t seconds = call.at("duration_s").as_int64();

  // The phone rings: the call is on the page at once, without a reload.
  json::object step = sim_->step();
  ASSERT_EQ(step.at("label"), "CALL INCOMING_RING");
  ASSERT_EQ(step.at("status"), 202);
  ASSERT_TRUE(eventually([&] { return seen(id).at("exists").as_bool(); }, kSlowWait)) << "the call never appeared";
  ASSERT_TRUE(eventually([&] { return text_of(id, "text").find("Ringing") != std::string::npos; }, kSlowWait))
      << json::serialize(seen(id));
  EXPECT_EQ(text_of(id, "badge"), "Call in progress");
  EXPECT_TRUE(same_page());

  // Answer, hang up, RECORDING, MIXING, the file appears: everything but READY.
  do {
    step = sim_->step();
    if (step.at("kind") == "webhook") {
      ASSERT_EQ(step.at("status"), 202) << json::serialize(step);
    }
  } while (step.at("next") != "RECORD READY");

  // Waiting, and the last status WaVoIP sent (MIXING) in words.
  ASSERT_TRUE(eventually([&] { return text_of(id, "reason") == "WaVoIP is processing the recording"; }, kSlowWait))
      << json::serialize(seen(id));
  json::object before = seen(id);
  const std::string text(before.at("text").as_string());
  EXPECT_NE(text.find("Incoming call"), std::string::npos) << text;
  EXPECT_NE(text.find("Ended"), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(seconds) + " s"), std::string::npos) << text;
  EXPECT_EQ(before.at("status"), "waiting");
  EXPECT_EQ(before.at("badge"), "Waiting for recording");
  EXPECT_TRUE(before.at("audio").is_null()) << "no player before the recording is attached";
  EXPECT_TRUE(same_page());
  browser_->screenshot(artifacts_ / "inbox-waiting.png");

  step = sim_->step();
  ASSERT_EQ(step.at("label"), "RECORD READY");
  ASSERT_EQ(step.at("status"), 202);

  ASSERT_TRUE(eventually(
      [&] {
        const json::object s = seen(id);
        return s.at("audio").is_string() && s.at("status") == "attached";
      },
      kSlowWait))
      << json::serialize(seen(id));
  EXPECT_TRUE(same_page()) << "the player came without a reload";
  const json::object after = seen(id);
  EXPECT_EQ(after.at("status"), "attached");
  EXPECT_EQ(after.at("badge"), "Recording attached");

  // The player's source: audio, and the very bytes the simulator served.
  const std::string src(after.at("audio").as_string());
  auto file = testsupport::http_request("GET", src, {}, host_->agent().headers());
  EXPECT_EQ(file.status, 200) << src;
  EXPECT_EQ(file.content_type.rfind("audio/", 0), 0u) << file.content_type;
  EXPECT_EQ(file.body, testsupport::http_get(sim_->url("/" + id)).body);
  EXPECT_EQ(sim_->calls().at(0).at("downloads").as_int64(), 2) << "the plugin's download and ours";

  // The browser itself decodes it: the player knows how long the recording is.
  const json::value duration = browser_->evaluate("new Promise((resolve) => { const a = " + card(id) +
                                                  ".querySelector('audio');"
                                                  " if (a.readyState >= 1) return resolve(a.duration);"
                                                  " a.addEventListener('loadedmetadata', () => resolve(a.duration));"
                                                  " a.addEventListener('error', () => resolve(-1)); a.load(); })");
  EXPECT_NEAR(duration.to_number<double>(), static_cast<double>(seconds), 0.05);
  EXPECT_EQ(live_text().rfind("Live", 0), 0u) << live_text();
  browser_->screenshot(artifacts_ / "inbox.png");
}

// As in production: webhook_keys set, WaVoIP's webhooks on the public listener, the agent
// signed in on the other one.
TEST_F(InboxPage, FailedRecordingShowsWhyAndTryAgainBringsThePlayer) {
  wavoip::test::TestHttpServer storage;  // answers 404 until the test gives it the file
  const std::string key = "a-webhook-key-for-this-test-0123456789";
  // Poll at once, every second, give up after 2 s.
  ASSERT_NO_FATAL_FAILURE(start_host(
      {{"base_url", storage.url("/")},
       {"allow_insecure_loopback", true},
       {"webhook_keys", json::array{json::object{{"key", key}}}},
       {"poll",
        {{"first_delay_s", 0}, {"initial_backoff_s", 1}, {"max_backoff_s", 1}, {"deadline_s", 2}, {"jitter", 0}}}},
      true));
  ASSERT_NO_FATAL_FAILURE(open_inbox());
  ASSERT_NO_FATAL_FAILURE(
      start_sim({"--scenario", "never-ready", "--time-scale", "0.01", "--download-timeout", "0", "--seed", "12"}));
  const std::string id(sim_->calls().at(0).at("call_id").as_string());
  ASSERT_EQ(sim_->start_webhooks(host_->public_url() + "/webhooks/wavoip/" + key), 202);
  ASSERT_EQ(sim_->wait_exit(), 0) << sim_->output();

  ASSERT_TRUE(eventually([&] { return text_of(id, "status") == "failed"; }, std::chrono::seconds(30)))
      << json::serialize(seen(id));
  // The conversation list says this caller's conversation needs attention.
  ASSERT_TRUE(browser_->wait_for("document.querySelector('.conv[data-attention=\"1\"] .attention')"));
  EXPECT_EQ(browser_->evaluate("document.querySelector('.conv .attention').textContent").as_string(),
            "· 1 needs attention");
  json::object failed = seen(id);
  EXPECT_EQ(failed.at("badge"), "Recording failed");
  EXPECT_EQ(failed.at("reason").as_string().subview().substr(0, 22), "No recording after 2 s") << failed.at("reason");
  EXPECT_NE(failed.at("text").as_string().subview().find("Last answer from the recording server: HTTP 404"),
            std::string::npos)
      << failed.at("text");
  EXPECT_TRUE(failed.at("retry").as_bool()) << "a failed recording offers Try again";
  EXPECT_TRUE(failed.at("audio").is_null());
  browser_->screenshot(artifacts_ / "inbox-failed.png");

  // The file turns up late; the agent clicks Try again.
  wavoip::test::ScriptedResponse wav;
  wav.content_type = "audio/wav";
  wav.body = wavoip::sim::make_wav(id, 3);
  storage.set_response("/" + id, wav);
  const auto hits_before = storage.hits("/" + id);
  browser_->evaluate(card(id) + ".querySelector('button.retry').click()");

  ASSERT_TRUE(eventually(
      [&] {
        const json::object s = seen(id);
        return s.at("audio").is_string() && s.at("status") == "attached";
      },
      kSlowWait))
      << json::serialize(seen(id));
  EXPECT_TRUE(same_page());
  EXPECT_EQ(text_of(id, "status"), "attached");
  EXPECT_EQ(storage.hits("/" + id), hits_before + 1) << "one download, asked for by the button";
  const std::string log = host_->log();
  EXPECT_NE(log.find("Manual retry requested for call " + id + " by agent tester"), std::string::npos)
      << "the plugin's retry route ran, for the signed-in agent";
  EXPECT_TRUE(browser_->wait_for("!document.querySelector('.conv .attention')")) << "nothing needs attention any more";
  auto file =
      testsupport::http_request("GET", std::string(seen(id).at("audio").as_string()), {}, host_->agent().headers());
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, wav.body);
  EXPECT_EQ(live_text().rfind("Live", 0), 0u) << live_text();
  browser_->screenshot(artifacts_ / "inbox-retried.png");
}

TEST_F(InboxPage, CallsWithoutRecordingSayWhyInPlainWords) {
  wavoip::test::TestHttpServer storage;
  ASSERT_NO_FATAL_FAILURE(start_host(
      {{"base_url", storage.url("/")}, {"allow_insecure_loopback", true}, {"poll", {{"first_delay_s", 3600}}}}));
  ASSERT_NO_FATAL_FAILURE(open_inbox());
  ASSERT_NO_FATAL_FAILURE(start_sim(
      {"--scenario", "empty,disabled,missed", "--time-scale", "0.01", "--download-timeout", "0", "--seed", "13"}));
  std::map<std::string, std::string> ids;  // scenario -> call id
  for (const auto& c : sim_->calls()) ids[std::string(c.at("scenario").as_string())] = c.at("call_id").as_string();
  ASSERT_EQ(sim_->start_webhooks(host_->base_url() + "/webhooks/wavoip"), 202);
  ASSERT_EQ(sim_->wait_exit(), 0) << sim_->output();

  struct Expect {
    const char* scenario;
    const char* status;
    const char* badge;
    const char* reason;
    const char* title;
  };
  const Expect expected[] = {
      {"empty", "empty", "No audio recorded", "Call too short: WaVoIP made no recording", "Incoming call"},
      {"disabled", "disabled", "Recording off", "Recording is disabled for this WaVoIP device", "Incoming call"},
      {"missed", "none", "No recording", "The call was not answered", "Missed call"},
  };
  for (const Expect& e : expected) {
    SCOPED_TRACE(e.scenario);
    const std::string id = ids.at(e.scenario);
    // Each caller has a conversation of their own: open it as an agent would, with a click.
    std::int64_t conversation = -1;
    ASSERT_TRUE(eventually([&] { return (conversation = conversation_of(id)) > 0; }, kSlowWait));
    ASSERT_TRUE(
        browser_->wait_for("document.querySelector('.conv[data-id=\"" + std::to_string(conversation) + "\"]')"));
    browser_->evaluate("document.querySelector('.conv[data-id=\"" + std::to_string(conversation) + "\"]').click()");
    ASSERT_TRUE(
        eventually([&] { return text_of(id, "status") == e.status && text_of(id, "reason") == e.reason; }, kSlowWait))
        << json::serialize(seen(id));
    const json::object s = seen(id);
    EXPECT_EQ(s.at("badge"), e.badge);
    EXPECT_EQ(s.at("reason"), e.reason);
    EXPECT_NE(s.at("text").as_string().subview().find(e.title), std::string::npos) << s.at("text");
    EXPECT_FALSE(s.at("retry").as_bool()) << "nothing to retry";
    EXPECT_TRUE(s.at("audio").is_null());
  }
  EXPECT_TRUE(same_page());
  EXPECT_EQ(live_text().rfind("Live", 0), 0u) << live_text();
  browser_->screenshot(artifacts_ / "inbox-no-recording.png");
}

// Signed out, the inbox sends the browser to sign in; a wrong password is refused, and the next
// try at once is slowed down even with the right password; then the agent gets in.
TEST_F(InboxPage, SignedOutTheInboxSendsToSignInAndWrongPasswordsAreRefusedAndSlowed) {
  ASSERT_NO_FATAL_FAILURE(start_host({{"allow_insecure_loopback", true}}));
  browser_ = std::make_unique<Browser>(dir_.path() / "browser");
  try {
    browser_->start();
    browser_->navigate(host_->base_url() + "/");
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  EXPECT_EQ(page_path(), "/login");
  EXPECT_EQ(testsupport::http_get(host_->base_url() + "/api/conversations").status, 401);

  ASSERT_NO_FATAL_FAILURE(submit_sign_in(testsupport::kTestAgent, "not the password"));
  EXPECT_EQ(page_path(), "/login?error=wrong");
  EXPECT_EQ(browser_->evaluate("document.querySelector('#message').textContent").as_string(),
            "Wrong name or password.");
  ASSERT_NO_FATAL_FAILURE(submit_sign_in(testsupport::kTestAgent, testsupport::kTestAgentPassword));
  EXPECT_EQ(page_path(), "/login?error=slow") << "right after a failure even the right password waits";
  EXPECT_EQ(browser_->evaluate("document.querySelector('#message').textContent").as_string(),
            "Too many failed sign-ins. Wait a little and try again.");
  const std::string log = host_->log();
  EXPECT_NE(log.find("failed sign-in for \"tester\""), std::string::npos) << log;
  EXPECT_EQ(log.find("not the password"), std::string::npos) << "no password in the log";
  EXPECT_EQ(log.find(testsupport::kTestAgentPassword), std::string::npos) << "no password in the log";

  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the first lock lasts 1 s
  ASSERT_NO_FATAL_FAILURE(submit_sign_in(testsupport::kTestAgent, testsupport::kTestAgentPassword));
  EXPECT_EQ(page_path(), "/");
  ASSERT_TRUE(browser_->wait_for("document.querySelector('#live-text').textContent.startsWith('Live')"));
  EXPECT_EQ(browser_->evaluate("document.querySelector('#agent').textContent").as_string(), "tester");
  browser_->screenshot(artifacts_ / "inbox-signed-in.png");
}

// A state-changing request from the page without its CSRF token is refused, and signing out
// ends the session: the API refuses the browser's cookie and the inbox sends it to sign in.
TEST_F(InboxPage, RequestsWithoutTheCsrfTokenAreRefusedAndSignOutEndsTheSession) {
  ASSERT_NO_FATAL_FAILURE(start_host({{"allow_insecure_loopback", true}}));
  ASSERT_NO_FATAL_FAILURE(open_inbox());
  EXPECT_EQ(browser_->evaluate("fetch('/api/conversations').then((r) => r.status)").as_int64(), 200);
  // The session cookie goes with the request, the token does not.
  EXPECT_EQ(browser_->evaluate("fetch('/wavoip/recordings/retry?call_id=X1', {method: 'POST'}).then((r) => r.status)")
                .as_int64(),
            403);
  EXPECT_EQ(browser_
                ->evaluate("fetch('/wavoip/recordings/retry?call_id=X1', {method: 'POST',"
                           " headers: {'X-CSRF-Token': 'f'.repeat(64)}}).then((r) => r.status)")
                .as_int64(),
            403);
  EXPECT_EQ(browser_->evaluate("fetch('/logout', {method: 'POST'}).then((r) => r.status)").as_int64(), 403);
  EXPECT_NE(host_->log().find("refused POST /wavoip/recordings/retry of agent \"tester\""), std::string::npos);
  EXPECT_EQ(browser_->evaluate("document.cookie").as_string(), "") << "the session cookie is HttpOnly";

  browser_->evaluate("window.__inboxPage = true; document.querySelector('#sign-out').click(); true");
  ASSERT_TRUE(wait_across_loads("!window.__inboxPage && location.pathname === '/login'"));
  EXPECT_EQ(page_path(), "/login?error=out");
  browser_->navigate(host_->base_url() + "/");
  EXPECT_EQ(page_path(), "/login");
  EXPECT_NE(host_->log().find("agent \"tester\" signed out"), std::string::npos);
}

}  // namespace

// Who may use what, through the real hdp-stub-host: the agent command line, sign-in and its
// slowing, the session cookie and its CSRF token, sign-out, the internet-facing listener, the
// operator's /metrics, and routes of plugins built before ABI 1.2. The probe plugin registers
// routes with each access (POST /probe/route?...&access=A&whoami=1).
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;
using testsupport::kTestAgent;
using testsupport::kTestAgentPassword;

std::string login_json(const std::string& name, const std::string& password) {
  return R"({"name":")" + name + R"(","password":")" + password + R"("})";
}

// What a command prints and its exit status.
struct CommandResult {
  int status = -1;
  std::string out;
};

CommandResult agent_command(const std::vector<std::string>& args, const std::string& input,
                            const std::filesystem::path& work) {
  std::filesystem::create_directories(work);
  const auto in = work / "stdin";
  std::ofstream(in, std::ios::trunc) << input;
  std::vector<std::string> argv{stub_host_path(), "agent"};
  argv.insert(argv.end(), args.begin(), args.end());
  testsupport::ChildProcess::Options options;
  options.stdin_file = in;
  testsupport::ChildProcess child(argv, work / "output", options);
  CommandResult result;
  result.status = child.wait_for_exit(30s).value_or(-1);
  result.out = child.log();
  return result;
}

int read_port(const std::filesystem::path& file) {
  int port = 0;
  eventually([&] {
    std::ifstream in(file);
    return static_cast<bool>(in >> port) && port > 0;
  });
  return port;
}

class AgentAccess : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(host.started()) << host.log(); }

  // Registers a probe route that answers {"agent": name or null}; returns the register status.
  int64_t probe_route(const std::string& method, const std::string& path, const std::string& extra) {
    HttpClient client;
    return json_int(client.post(host.url("/probe/route?whoami=1&method=" + method + "&path=" + path + extra)).json(),
                    "status");
  }

  // Signs http in; returns its CSRF token.
  std::string sign_in_token(HttpClient& http) {
    const HttpResponse r = sign_in(http, host);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? std::string(r.json().at("csrf_token").as_string()) : "";
  }

  std::string session_cookie(const HttpResponse& r) {
    const auto it = r.headers.find("set-cookie");
    if (it == r.headers.end()) return "";
    return it->second.substr(0, it->second.find(';'));
  }

  TempDir work;
  HostProcess host{with_agent(probe_host())};
  HttpClient http;
};

TEST(AgentCommand, AddsListsAndRemovesWithThePasswordFromStandardInput) {
  TempDir dir;
  const std::string data = (dir.path() / "data").string();
  const auto w = dir.path() / "cmd";
  auto added = agent_command({"add", "ana", "--data-dir", data}, "correct horse battery\n", w);
  EXPECT_EQ(added.status, 0) << added.out;
  EXPECT_NE(added.out.find("added agent \"ana\""), std::string::npos) << added.out;
  EXPECT_EQ(agent_command({"add", "bia", "--data-dir=" + data}, "another password", w).status, 0);
  auto list = agent_command({"list", "--data-dir", data}, "", w);
  EXPECT_EQ(list.status, 0);
  EXPECT_EQ(list.out, "ana\nbia\n");

  // Refusals: each a non-zero status and a reason, the accounts unchanged.
  struct Refused {
    std::vector<std::string> args;
    std::string input;
    std::string says;
  };
  const Refused refused[] = {
      {{"add", "ana", "--data-dir", data}, "yet another one\n", "exists already"},
      {{"add", "carla", "--data-dir", data}, "short\n", "8 to 1024 bytes"},
      {{"add", "carla", "--data-dir", data}, "", "expected the password on standard input"},
      {{"add", "carla", "--data-dir", data}, std::string(2000, 'p') + "\n", "expected the password"},
      {{"add", "bad name", "--data-dir", data}, "long enough password\n", "the name must have"},
      {{"add", "carla"}, "long enough password\n", "usage:"},
      {{"add", "--data-dir", data}, "long enough password\n", "usage:"},
      {{"add", "carla", "extra", "--data-dir", data}, "long enough password\n", "usage:"},
      {{"rename", "ana", "--data-dir", data}, "", "usage:"},
      {{"list", "--password", "x", "--data-dir", data}, "", "unknown or incomplete option"},
      {{"remove", "nobody", "--data-dir", data}, "", "no agent \"nobody\""},
  };
  for (const Refused& r : refused) {
    const auto result = agent_command(r.args, r.input, w);
    EXPECT_EQ(result.status, 1) << r.says;
    EXPECT_NE(result.out.find(r.says), std::string::npos) << result.out;
  }
  EXPECT_EQ(agent_command({"list", "--data-dir", data}, "", w).out, "ana\nbia\n");

  EXPECT_EQ(agent_command({"remove", "ana", "--data-dir", data}, "", w).status, 0);
  EXPECT_EQ(agent_command({"list", "--data-dir", data}, "", w).out, "bia\n");
  // Only a hash is stored.
  std::ifstream db(dir.path() / "data" / "helpdesk.sqlite3", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find("another password"), std::string::npos);
}

TEST_F(AgentAccess, SignedOutEveryAgentRouteIsRefusedAndThePageSendsToSignIn) {
  ASSERT_EQ(probe_route("GET", "/agents-only", "&access=1"), 0);
  const HttpResponse page = http.get(host.url("/"));
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(page.headers.at("location"), "/login");
  for (const char* path : {"/api/conversations", "/api/conversations/1/messages", "/api/messages/1",
                           "/api/messages?external_key=k", "/api/attachments/1/file", "/api/session", "/agents-only"}) {
    const HttpResponse r = http.get(host.url(path));
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(r.json().at("error"), "sign in first") << path;
  }
  EXPECT_EQ(http.post(host.url("/logout")).status, 401);
  EXPECT_EQ(http.get(host.url("/healthz")).status, 200);
  const HttpResponse login = http.get(host.url("/login"));
  EXPECT_EQ(login.status, 200);
  EXPECT_NE(login.body.find("<form method=\"post\" action=\"/login\""), std::string::npos);
  EXPECT_EQ(login.headers.at("x-frame-options"), "DENY");
  EXPECT_TRUE(host.wait_for_log("refused GET /api/attachments from 127.0.0.1: not signed in", 5s)) << host.log();
  // A forged session cookie is no session.
  EXPECT_EQ(http.get(host.url("/api/conversations"), {"Cookie: hdp_session=" + std::string(64, 'a')}).status, 401);
}

TEST_F(AgentAccess, SignedInTheAgentReachesItsRoutesWithTheCsrfTokenOnChanges) {
  ASSERT_EQ(probe_route("GET", "/whoami", "&access=1"), 0);
  ASSERT_EQ(probe_route("POST", "/change", "&access=1"), 0);
  const HttpResponse r = sign_in(http, host);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string cookie = r.headers.at("set-cookie");
  EXPECT_EQ(cookie.find("hdp_session="), 0u) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Path=/"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "not told it is served over HTTPS";
  EXPECT_EQ(r.json().at("agent"), kTestAgent);
  const std::string csrf(r.json().at("csrf_token").as_string());

  EXPECT_EQ(http.get(host.url("/")).status, 200);
  EXPECT_EQ(http.get(host.url("/api/conversations")).status, 200);
  const HttpResponse session = http.get(host.url("/api/session"));
  EXPECT_EQ(session.json().at("agent"), kTestAgent);
  EXPECT_EQ(session.json().at("csrf_token").as_string(), csrf);
  EXPECT_EQ(http.get(host.url("/whoami")).json().at("agent"), kTestAgent) << "the plugin learns who asks";

  const HttpResponse no_token = http.post(host.url("/change"));
  EXPECT_EQ(no_token.status, 403);
  EXPECT_EQ(no_token.json().at("error"), "missing or wrong CSRF token");
  EXPECT_EQ(http.post(host.url("/change"), "", {"X-CSRF-Token: " + std::string(64, '0')}).status, 403);
  EXPECT_EQ(
      http.post(host.url("/change"), "csrf_token=wrong", {"Content-Type: application/x-www-form-urlencoded"}).status,
      403);
  EXPECT_TRUE(host.wait_for_log("refused POST /change of agent \"tester\" from 127.0.0.1: no CSRF token", 5s));
  EXPECT_TRUE(host.wait_for_log("refused POST /change of agent \"tester\" from 127.0.0.1: wrong CSRF token", 5s));
  EXPECT_EQ(http.post(host.url("/change"), "", {"X-CSRF-Token: " + csrf}).json().at("agent"), kTestAgent);
  EXPECT_EQ(http.post(host.url("/change"), "csrf_token=" + csrf, {"Content-Type: application/x-www-form-urlencoded"})
                .json()
                .at("agent"),
            kTestAgent)
      << "a form sends the token as a field";
  EXPECT_TRUE(host.wait_for_log("agent \"tester\" signed in from 127.0.0.1", 5s));
}

TEST_F(AgentAccess, WrongPasswordsAreRefusedAndSlowedOnTheHostsClockAndNeverLogged) {
  const HttpResponse wrong =
      http.post(host.url("/login"), login_json(kTestAgent, "guess-number-one"), {"Content-Type: application/json"});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.json().at("error"), "wrong name or password");
  EXPECT_EQ(wrong.headers.count("set-cookie"), 0u);
  // Even the right password waits now: 1 s after the first failure (the virtual clock stands).
  HttpResponse slowed = sign_in(http, host);
  EXPECT_EQ(slowed.status, 429);
  EXPECT_EQ(slowed.headers.at("retry-after"), "1");
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=999")).status, 200);
  EXPECT_EQ(sign_in(http, host).status, 429);
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=1")).status, 200);
  // The second failure in a row doubles the wait.
  EXPECT_EQ(
      http.post(host.url("/login"), login_json(kTestAgent, "guess-number-two"), {"Content-Type: application/json"})
          .status,
      401);
  slowed = sign_in(http, host);
  EXPECT_EQ(slowed.status, 429);
  EXPECT_EQ(slowed.headers.at("retry-after"), "2");
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=2000")).status, 200);
  EXPECT_EQ(sign_in(http, host).status, 200);

  // The address is slowed too, whatever name it tries next.
  HttpClient other;
  EXPECT_EQ(
      other.post(host.url("/login"), login_json("nobody", "guess-number-three"), {"Content-Type: application/json"})
          .status,
      401);
  EXPECT_EQ(
      other.post(host.url("/login"), login_json("someone", "guess-number-four"), {"Content-Type: application/json"})
          .status,
      429);

  const std::string log = host.log();
  EXPECT_NE(log.find("failed sign-in for \"tester\" from 127.0.0.1: wrong name or password"), std::string::npos) << log;
  EXPECT_NE(log.find("refused a sign-in for \"tester\" from 127.0.0.1: too many failures, 1 s to wait"),
            std::string::npos)
      << log;
  for (const char* secret : {"guess-number-one", "guess-number-two", "guess-number-three", kTestAgentPassword}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "a password in the log: " << secret;
  }
}

// The password check runs off the loop, but the throttle is asked about each sign-in only once
// every sign-in before it has counted: wrong passwords sent in parallel are slowed exactly as if
// they had come one after the other (one tried, the rest refused), not all tried at once.
TEST_F(AgentAccess, ParallelWrongPasswordsAreSlowedAsIfOneAfterTheOther) {
  constexpr int kAttempts = 8;
  std::vector<std::unique_ptr<RawConnection>> attempts;
  for (int i = 0; i < kAttempts; ++i) {
    attempts.push_back(std::make_unique<RawConnection>(static_cast<uint16_t>(host.port())));
    ASSERT_TRUE(attempts.back()->connected());
  }
  // Each on its own connection, all sent before any answer can come.
  for (int i = 0; i < kAttempts; ++i) {
    ASSERT_TRUE(
        attempts[i]->send(testsupport::build_request("POST", "/login", {"Content-Type: application/json"},
                                                     login_json(kTestAgent, "parallel-guess-" + std::to_string(i)))));
  }
  int wrong = 0;
  int slowed = 0;
  for (auto& attempt : attempts) {
    const auto answer = attempt->read_response(20s);
    ASSERT_TRUE(answer) << host.log();
    if (answer->status == 401) ++wrong;
    if (answer->status == 429) {
      ++slowed;
      EXPECT_EQ(answer->header("retry-after").value_or(""), "1");
    }
  }
  EXPECT_EQ(wrong, 1) << "only the first of the parallel guesses may be tried\n" << host.log();
  EXPECT_EQ(slowed, kAttempts - 1) << host.log();
  EXPECT_EQ(host.log_lines("wrong name or password").size(), 1U) << host.log();
  // One failure counted, not eight: the lock is 1 s (the virtual clock stands), not 2^7 s.
  EXPECT_EQ(sign_in(http, host).status, 429);
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=1000")).status, 200);
  EXPECT_EQ(sign_in(http, host).status, 200) << host.log();
}

// Sign-ins still being checked when SIGTERM comes: the host answers or drops them, joins the
// checking thread and exits 0, with nothing of theirs used after it is freed (the sanitizers'
// build would say so in the log and the exit status).
TEST_F(AgentAccess, AHostStoppedWhileSignInsAreCheckedExitsCleanly) {
  std::vector<std::unique_ptr<RawConnection>> attempts;
  for (int i = 0; i < 8; ++i) {
    attempts.push_back(std::make_unique<RawConnection>(static_cast<uint16_t>(host.port())));
    ASSERT_TRUE(attempts.back()->send(testsupport::build_request("POST", "/login", {"Content-Type: application/json"},
                                                                 login_json(kTestAgent, kTestAgentPassword))));
  }
  ASSERT_TRUE(host.wait_for_log("agent \"tester\" signed in", 10s)) << host.log();
  attempts[7]->close();  // one client leaves while its sign-in waits
  host.signal(SIGTERM);
  EXPECT_EQ(host.wait_exit(10s), 0) << host.log();
  EXPECT_TRUE(host.log_lines("runtime error:").empty()) << host.log();
  EXPECT_TRUE(host.log_lines("ERROR").empty()) << host.log();
}

TEST_F(AgentAccess, MalformedSignInsGetADefinedAnswerAndALogLine) {
  struct Case {
    std::string body;
    std::string type;
    long status;
    std::string location;
  };
  const Case cases[] = {
      {"{not json", "application/json", 400, ""},
      {R"(["name","password"])", "application/json", 400, ""},
      {R"({"name":"tester"})", "application/json", 400, ""},
      {R"({"name":1,"password":2})", "application/json", 400, ""},
      {R"({"name":"","password":"x"})", "application/json", 400, ""},
      {"name=tester", "application/x-www-form-urlencoded", 303, "/login?error=bad"},
      {"%zz", "application/x-www-form-urlencoded", 303, "/login?error=bad"},
  };
  for (const Case& c : cases) {
    const HttpResponse r = http.post(host.url("/login"), c.body, {"Content-Type: " + c.type});
    EXPECT_EQ(r.status, c.status) << c.body;
    if (!c.location.empty()) {
      EXPECT_EQ(r.headers.at("location"), c.location) << c.body;
    }
  }
  EXPECT_TRUE(host.wait_for_log("refused a sign-in from 127.0.0.1: not a name and a password", 5s));
  // A name that is no agent name, and a password longer than any: wrong, not a crash.
  EXPECT_EQ(http.post(host.url("/login"), login_json("bad\\nname", "x"), {"Content-Type: application/json"}).status,
            401);
  EXPECT_TRUE(host.wait_for_log("failed sign-in for (not a valid name) from 127.0.0.1", 5s));
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=600000")).status, 200);
  EXPECT_EQ(
      http.post(host.url("/login"), login_json(kTestAgent, std::string(5000, 'p')), {"Content-Type: application/json"})
          .status,
      401);
  EXPECT_EQ(http.post(host.url("/login"), std::string(20000, 'x'), {"Content-Type: application/json"}).status, 413)
      << "a sign-in body is small";
  // The form: a wrong password sends back to the page with a message.
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=600000")).status, 200);
  const HttpResponse form = http.post(host.url("/login"), std::string("name=tester&password=nope"),
                                      {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(form.status, 303);
  EXPECT_EQ(form.headers.at("location"), "/login?error=wrong");
  EXPECT_NE(http.get(host.url("/login?error=wrong")).body.find("Wrong name or password."), std::string::npos);
  EXPECT_EQ(http.get(host.url("/login?error=%3Cscript%3E")).body.find("<script"), std::string::npos)
      << "nothing of the request is put in the page";
}

TEST_F(AgentAccess, SignOutEndsTheSessionForGood) {
  HttpResponse signed_in = sign_in(http, host);
  ASSERT_EQ(signed_in.status, 200);
  const std::string cookie = session_cookie(signed_in);
  const std::string csrf(signed_in.json().at("csrf_token").as_string());
  HttpClient copy;  // someone holding a copy of the cookie
  EXPECT_EQ(copy.get(host.url("/api/conversations"), {"Cookie: " + cookie}).status, 200);

  const HttpResponse out =
      http.post(host.url("/logout"), "", {"X-CSRF-Token: " + csrf, "Content-Type: application/json"});
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(out.headers.at("set-cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(copy.get(host.url("/api/conversations"), {"Cookie: " + cookie}).status, 401) << "ended on the host";
  EXPECT_EQ(http.get(host.url("/api/conversations")).status, 401);
  EXPECT_TRUE(host.wait_for_log("agent \"tester\" signed out", 5s));
}

TEST_F(AgentAccess, ARemovedAgentIsSignedOutAtTheNextRequest) {
  ASSERT_EQ(sign_in(http, host).status, 200);
  EXPECT_EQ(http.get(host.url("/api/conversations")).status, 200);
  const auto removed = agent_command({"remove", kTestAgent, "--data-dir", host.data_dir().string()}, "", work.path());
  ASSERT_EQ(removed.status, 0) << removed.out;
  EXPECT_EQ(http.get(host.url("/api/conversations")).status, 401);
  EXPECT_TRUE(host.wait_for_log("session of agent \"tester\" ended: the account was removed", 5s));
}

TEST_F(AgentAccess, RoutesOfPluginsBuiltBeforeAbi12AreOpenAsBefore) {
  // v1=1: the 1.0 struct_size; access lies beyond it and must not be read.
  ASSERT_EQ(probe_route("GET", "/old-style", "&v1=1&access=1"), 0);
  const HttpResponse r = http.get(host.url("/old-style"));
  EXPECT_EQ(r.status, 200) << "served to anyone, as every route was before 1.2";
  EXPECT_TRUE(r.json().at("agent").is_null());
  ASSERT_EQ(sign_in(http, host).status, 200);
  EXPECT_TRUE(http.get(host.url("/old-style")).json().at("agent").is_null()) << "a public route never names an agent";
  // The plugin's own 1.2 routes registered without access are public too.
  EXPECT_EQ(HttpClient().post(host.url("/probe/echo"), "hi").body, "hi");
}

TEST_F(AgentAccess, AnAccessFromANewerMinorIsServedToAgentsOnly) {
  ASSERT_EQ(probe_route("GET", "/future", "&access=77"), 0);
  EXPECT_TRUE(host.wait_for_log("unknown access 77, served to signed-in agents only", 5s)) << host.log();
  EXPECT_EQ(HttpClient().get(host.url("/future")).status, 401);
  ASSERT_EQ(sign_in(http, host).status, 200);
  EXPECT_EQ(http.get(host.url("/future")).json().at("agent"), kTestAgent);
}

TEST_F(AgentAccess, AgentOrPluginRoutesLetThePluginDecideForCallersWithoutASession) {
  ASSERT_EQ(probe_route("POST", "/either", "&access=2"), 0);
  EXPECT_TRUE(HttpClient().post(host.url("/either")).json().at("agent").is_null());
  const std::string csrf = sign_in_token(http);
  EXPECT_EQ(http.post(host.url("/either")).status, 403) << "a session without its token is refused";
  EXPECT_EQ(http.post(host.url("/either"), "", {"X-CSRF-Token: " + csrf}).json().at("agent"), kTestAgent);
}

TEST(AgentAccessHttps, TheCookieIsSecureWhenServedOverHttps) {
  HostProcess host(with_agent(probe_host({"--served-over-https"})));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  const HttpResponse r =
      http.post(host.url("/login"), login_json(kTestAgent, kTestAgentPassword), {"Content-Type: application/json"});
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.at("set-cookie").find("; Secure"), std::string::npos) << r.headers.at("set-cookie");
}

TEST(PublicListener, ServesOnlyPublicPluginRoutesAndHealthz) {
  TempDir dir;
  const auto port_file = dir.path() / "public.port";
  HostProcess host(
      with_agent(probe_host({"--public-listen", "127.0.0.1:0", "--public-port-file", port_file.string()})));
  ASSERT_TRUE(host.started()) << host.log();
  const int port = read_port(port_file);
  ASSERT_GT(port, 0);
  ASSERT_NE(port, host.port());
  const std::string pub = "http://127.0.0.1:" + std::to_string(port);
  HttpClient http;
  EXPECT_EQ(
      json_int(http.post(host.url("/probe/route?whoami=1&method=GET&path=/agent-route&access=1")).json(), "status"), 0);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?whoami=1&method=GET&path=/either&access=2")).json(), "status"),
            0);
  EXPECT_EQ(json_int(http.post(host.url("/probe/route?whoami=1&method=GET&path=/old&v1=1")).json(), "status"), 0);
  ASSERT_EQ(sign_in(http, host).status, 200);  // a session changes nothing there

  for (const char* path : {"/", "/api/conversations", "/api/messages/1", "/api/attachments/1/file", "/api/session",
                           "/login", "/metrics", "/agent-route", "/either", "/__test/clock"}) {
    const HttpResponse r = http.get(pub + path);
    EXPECT_EQ(r.status, 404) << path;
  }
  EXPECT_EQ(
      http.post(pub + "/login", login_json(kTestAgent, kTestAgentPassword), {"Content-Type: application/json"}).status,
      404);
  EXPECT_EQ(http.post(pub + "/logout").status, 404);
  EXPECT_EQ(http.get(pub + "/healthz").status, 200);
  EXPECT_EQ(http.post(pub + "/probe/echo", "webhook").body, "webhook") << "a public plugin route";
  EXPECT_TRUE(http.get(pub + "/old").json().at("agent").is_null()) << "a 1.1 plugin's route is public";
  // The agents' side still serves everything.
  EXPECT_EQ(http.get(host.url("/api/conversations")).status, 200);
  EXPECT_EQ(http.get(host.url("/agent-route")).json().at("agent"), kTestAgent);
  EXPECT_NE(host.log().find("(public: webhooks and /healthz only)"), std::string::npos);
}

TEST(OperatorMetrics, OpenOnLoopbackOtherwiseOnlyWithTheBearerToken) {
  {
    HostProcess host(probe_host());
    ASSERT_TRUE(host.started()) << host.log();
    HttpClient http;
    EXPECT_EQ(http.get(host.url("/metrics")).status, 200);
    const HttpResponse forwarded = http.get(host.url("/metrics"), {"X-Forwarded-For: 203.0.113.7"});
    EXPECT_EQ(forwarded.status, 401) << "a proxy on this machine forwards what is not local";
    EXPECT_EQ(forwarded.headers.at("www-authenticate"), "Bearer");
    EXPECT_EQ(http.get(host.url("/metrics"), {"Forwarded: for=203.0.113.7"}).status, 401);
    EXPECT_TRUE(host.wait_for_log("refused GET /metrics from 127.0.0.1: only served to loopback", 5s));
  }
  TempDir dir;
  const auto token_file = dir.path() / "metrics-token";
  std::ofstream(token_file) << "a-token-for-the-scraper-0123456789\n";
  HostProcess host(probe_host({"--metrics-token-file", token_file.string()}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  const std::vector<std::string> proxied{"X-Forwarded-For: 203.0.113.7"};
  auto with = [&](const std::string& authorization) {
    std::vector<std::string> headers = proxied;
    headers.push_back("Authorization: " + authorization);
    return http.get(host.url("/metrics"), headers).status;
  };
  EXPECT_EQ(with("Bearer a-token-for-the-scraper-0123456789"), 200);
  EXPECT_EQ(with("Bearer a-token-for-the-scraper-012345678"), 401);
  EXPECT_EQ(with("Basic a-token-for-the-scraper-0123456789"), 401);
  EXPECT_EQ(http.get(host.url("/metrics"), proxied).status, 401);
  EXPECT_TRUE(host.wait_for_log("refused GET /metrics from 127.0.0.1: missing or wrong bearer token", 5s));
  EXPECT_EQ(host.log().find("a-token-for-the-scraper"), std::string::npos) << "no token in the log";

  // A token file that cannot be used stops the host at start.
  HostProcess missing(probe_host({"--metrics-token-file", (dir.path() / "none").string()}));
  EXPECT_EQ(missing.wait_exit(10s), 1);
  EXPECT_NE(missing.log().find("cannot read the metrics token file"), std::string::npos);
  std::ofstream(dir.path() / "empty") << " \n";
  HostProcess empty(probe_host({"--metrics-token-file", (dir.path() / "empty").string()}));
  EXPECT_EQ(empty.wait_exit(10s), 1);
}

}  // namespace
}  // namespace hdp::test

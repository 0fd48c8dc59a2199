// On PostgreSQL the agents' reads (the JSON API, and the session check of every agent request)
// run on the host's reader thread, not on its loop: while a read waits for the database (here: a
// table lock held by the test), /healthz and plugin routes are answered at once, and the read
// completes with the right data once the lock goes. A read that fails, or one during an outage,
// is answered 503 with a JSON error (never a hang), and the next read reconnects.
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>

#include "shared_postgres.hpp"  // tests/support
#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;
using testsupport::build_request;
using testsupport::RawResponse;

// The host's reader shows in pg_stat_activity under this name (store_reader.cpp).
constexpr const char* kReaderApplication = "hdp-stub-host reader";

// A libpq connection of the test's own: it holds locks while the host reads.
class Sql {
 public:
  explicit Sql(const std::string& uri) : conn_(PQconnectdb(uri.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("cannot connect: " + why);
    }
  }
  ~Sql() { PQfinish(conn_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  // Runs sql; the first column of the first row ("" when none). Throws on failure.
  std::string run(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(r);
    std::string value;
    if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
    const std::string error = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw std::runtime_error(sql + ": " + error);
    return value;
  }

 private:
  PGconn* conn_;
};

class AgentReadsOnPostgres : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(add_agent_to_database(uri, dir), 0) << testsupport::read_file(dir.path() / "agent-add.log");
    host = std::make_unique<HostProcess>(stub_host({"--plugin", probe_plugin_path(), "--database", uri}));
    ASSERT_TRUE(host->started()) << host->log();
    session = testsupport::sign_in(host->base_url(), testsupport::kTestAgent, testsupport::kTestAgentPassword);
    ASSERT_TRUE(session) << host->log();
    // One conversation with one call, written through the plugin (and the host's writer).
    const auto written = http.post(host->url("/probe/message?key=wavoip:r1&contact=5511988887777&call_status=ENDED"));
    ASSERT_EQ(json_int(written.json(), "status"), 0) << host->log();
  }

  // A clean shutdown (the reader's thread joined, nothing of it left): under the sanitizers a
  // memory error or a leak in the host makes the exit status other than 0.
  void TearDown() override {
    if (!host || !host->running()) return;
    EXPECT_EQ(host->stop(), 0) << host->log();
    EXPECT_TRUE(host->log_lines("runtime error:").empty()) << host->log();
  }

  // Sends an agent's GET on a connection of its own, without waiting for the answer.
  std::unique_ptr<RawConnection> send_agent_get(const std::string& target) {
    auto conn = std::make_unique<RawConnection>(static_cast<uint16_t>(host->port()));
    EXPECT_TRUE(conn->connected());
    EXPECT_TRUE(conn->send(build_request("GET", target, session->headers(), "")));
    return conn;
  }

  // True once the host's reader waits for a lock in PostgreSQL.
  bool reader_waits_for_a_lock() {
    return observer.run(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
               "application_name = '" +
               std::string(kReaderApplication) + "' AND wait_event_type = 'Lock'") == "1";
  }

  // GET target on a connection of its own; the answer and how long it took (nullopt: none within
  // timeout).
  std::pair<std::optional<RawResponse>, std::chrono::milliseconds> timed_get(const std::string& target,
                                                                             std::chrono::milliseconds timeout) {
    const auto start = std::chrono::steady_clock::now();
    RawConnection conn(static_cast<uint16_t>(host->port()));
    conn.send(build_request("GET", target, {}, ""));
    auto answer = conn.read_response(timeout);
    return {std::move(answer),
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
  }

  // While the reader waits: the loop answers /healthz and a plugin's route at once.
  void expect_loop_free() {
    for (int i = 0; i < 3; ++i) {
      const auto [health, took] = timed_get("/healthz", 3s);
      ASSERT_TRUE(health) << "GET /healthz had no answer while an agent's read waited\n" << host->log();
      EXPECT_EQ(health->status, 200);
      EXPECT_LT(took, 1000ms) << "GET /healthz waited for the agent's read";
      const auto [plugin, plugin_took] = timed_get("/probe/info", 3s);
      ASSERT_TRUE(plugin) << "a plugin route had no answer while an agent's read waited";
      EXPECT_EQ(plugin->status, 200);
      EXPECT_LT(plugin_took, 1000ms);
    }
  }

  // The test agent's JSON sign-in.
  static std::string sign_in_request() {
    return build_request("POST", "/login", {"Content-Type: application/json"},
                         std::string(R"({"name":")") + testsupport::kTestAgent + R"(","password":")" +
                             testsupport::kTestAgentPassword + R"("})");
  }

  // The session cookie a sign-in answered with lets its agent in.
  void expect_cookie_admits(const RawResponse& answer) {
    const std::string cookie = answer.header("set-cookie").value_or("");
    const auto who = testsupport::http_request("GET", host->url("/api/session"), {},
                                               {"Cookie: " + cookie.substr(0, cookie.find(';'))});
    EXPECT_EQ(who.status, 200) << who.body;
  }

  // From now on each INSERT or DELETE (event) of a session row waits for the advisory lock key,
  // which the test takes and gives back on a connection of its own. The reads of the sessions
  // (a SELECT and an UPDATE) do not wait.
  void hold_sessions_on(const std::string& event, int key) {
    const std::string name = "hold_session_" + event;
    observer.run("CREATE FUNCTION public." + name + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM " +
                 "pg_advisory_xact_lock(" + std::to_string(key) + "); RETURN " + (event == "DELETE" ? "OLD" : "NEW") +
                 "; END $$");
    observer.run("CREATE TRIGGER " + name + " BEFORE " + event +
                 " ON helpdesk.agent_sessions FOR EACH ROW EXECUTE FUNCTION public." + name + "()");
  }

  // Sends `request` while each `event` of a session row waits for the advisory lock `key`, which
  // the test holds (hold_sessions_on): the reader waits, the loop serves meanwhile, and `request`
  // has no answer (`early` says what one would mean). Then the lock goes: returns the answer.
  std::optional<RawResponse> answer_after_sessions_wait(const std::string& event, int key, const std::string& request,
                                                        const char* early) {
    hold_sessions_on(event, key);
    Sql locker(uri);
    locker.run("SELECT pg_advisory_lock(" + std::to_string(key) + ")");
    RawConnection conn(static_cast<uint16_t>(host->port()));
    EXPECT_TRUE(conn.send(request));
    EXPECT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 10s)) << host->log();

    expect_loop_free();
    EXPECT_FALSE(conn.read_response(200ms)) << early;

    locker.run("SELECT pg_advisory_unlock(" + std::to_string(key) + ")");
    return conn.read_response(5s);
  }

  std::string uri = testsupport::shared_postgres().uri(testsupport::new_postgres_database("host_reads"));
  TempDir dir;
  Sql observer{uri};
  std::unique_ptr<HostProcess> host;
  std::optional<testsupport::AgentSession> session;
  HttpClient http;
};

TEST_F(AgentReadsOnPostgres, AnApiReadWaitingForTheDatabaseDoesNotHoldTheLoop) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.conversations IN ACCESS EXCLUSIVE MODE");
  const auto list = send_agent_get("/api/conversations");
  ASSERT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 5s)) << host->log();

  expect_loop_free();
  EXPECT_FALSE(list->read_response(200ms)) << "the read answered while its table was locked";
  EXPECT_TRUE(reader_waits_for_a_lock());

  locker.run("ROLLBACK");
  const auto answer = list->read_response(5s);
  ASSERT_TRUE(answer) << host->log();
  ASSERT_EQ(answer->status, 200) << answer->body;
  const auto body = boost::json::parse(answer->body);
  const auto& conversations = body.at("conversations").as_array();
  ASSERT_EQ(conversations.size(), 1U);
  EXPECT_EQ(conversations[0].at("contact").as_string(), "5511988887777");
  EXPECT_EQ(conversations[0].at("message_count").as_int64(), 1);
}

TEST_F(AgentReadsOnPostgres, TheSessionCheckWaitingForTheDatabaseDoesNotHoldTheLoop) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.agent_sessions IN ACCESS EXCLUSIVE MODE");
  // GET /api/session reads nothing but the session: the gate is what waits.
  const auto who = send_agent_get("/api/session");
  const auto page = send_agent_get("/");
  ASSERT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 5s)) << host->log();

  expect_loop_free();
  EXPECT_FALSE(who->read_response(200ms)) << "admitted while the sessions were locked";

  locker.run("ROLLBACK");
  const auto answer = who->read_response(5s);
  ASSERT_TRUE(answer) << host->log();
  ASSERT_EQ(answer->status, 200) << answer->body;
  const auto body = boost::json::parse(answer->body);
  EXPECT_EQ(body.at("agent").as_string(), testsupport::kTestAgent);
  EXPECT_EQ(body.at("csrf_token").as_string(), session->csrf_token);
  const auto inbox = page->read_response(5s);
  ASSERT_TRUE(inbox);
  EXPECT_EQ(inbox->status, 200);
  EXPECT_NE(inbox->body.find("<!doctype html>"), std::string::npos);
}

// A sign-in's lookup runs on the host's sign-in thread, with its connection: while it waits for
// the accounts, the loop serves; the sign-in completes once the lock goes.
TEST_F(AgentReadsOnPostgres, ASignInWaitingForTheDatabaseDoesNotHoldTheLoop) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.agents IN ACCESS EXCLUSIVE MODE");
  RawConnection conn(static_cast<uint16_t>(host->port()));
  ASSERT_TRUE(conn.send(sign_in_request()));
  ASSERT_TRUE(eventually(
      [&] {
        return observer.run(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                   "application_name = 'hdp-stub-host sign-in' AND wait_event_type = 'Lock'") == "1";
      },
      5s))
      << host->log();

  expect_loop_free();
  EXPECT_FALSE(conn.read_response(200ms)) << "signed in while the accounts were locked";

  locker.run("ROLLBACK");
  const auto answer = conn.read_response(10s);
  ASSERT_TRUE(answer) << host->log();
  ASSERT_EQ(answer->status, 200) << answer->body;
  expect_cookie_admits(*answer);
}

// The session a sign-in makes is inserted on the reader's thread. Here the INSERT waits for an
// advisory lock the test holds (a trigger takes it): the loop serves meanwhile, and the agent is
// signed in once the lock goes.
TEST_F(AgentReadsOnPostgres, TheSessionOfASignInWaitingForTheDatabaseDoesNotHoldTheLoop) {
  const auto answer =
      answer_after_sessions_wait("INSERT", 4243, sign_in_request(), "signed in before the session was stored");
  ASSERT_TRUE(answer) << host->log();
  ASSERT_EQ(answer->status, 200) << answer->body;
  expect_cookie_admits(*answer);
  EXPECT_EQ(observer.run("SELECT count(*) FROM helpdesk.agent_sessions"), "2");
}

// A sign-out's DELETE runs on the reader's thread too. Here it waits for an advisory lock the
// test holds (a trigger on DELETE takes it), while the session check before it does not: the
// loop serves meanwhile, and the session is gone once the lock goes.
TEST_F(AgentReadsOnPostgres, ASignOutWaitingForTheDatabaseDoesNotHoldTheLoop) {
  std::vector<std::string> headers = session->headers();
  headers.emplace_back("Content-Type: application/json");
  const auto answer = answer_after_sessions_wait("DELETE", 4242, build_request("POST", "/logout", headers, "{}"),
                                                 "signed out while the session's DELETE waited");
  ASSERT_TRUE(answer) << host->log();
  ASSERT_EQ(answer->status, 200) << answer->body;
  EXPECT_EQ(boost::json::parse(answer->body).at("status").as_string(), "signed out");
  EXPECT_EQ(observer.run("SELECT count(*) FROM helpdesk.agent_sessions"), "0");
  const auto who = testsupport::http_request("GET", host->url("/api/session"), {}, session->headers());
  EXPECT_EQ(who.status, 401) << who.body;
}

TEST_F(AgentReadsOnPostgres, AClientThatLeavesWhileItsSessionIsCheckedIsNotServed) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.agent_sessions IN ACCESS EXCLUSIVE MODE");
  auto gone = send_agent_get("/api/conversations");
  ASSERT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 5s)) << host->log();
  gone->close();
  // The host notices the client leaving before the check ends.
  std::this_thread::sleep_for(200ms);
  locker.run("ROLLBACK");
  ASSERT_TRUE(host->wait_for_log("the client went away while its session was checked", 5s)) << host->log();
  // And goes on serving.
  const auto after = testsupport::http_request("GET", host->url("/api/conversations"), {}, session->headers());
  EXPECT_EQ(after.status, 200) << host->log();
  EXPECT_TRUE(host->running());
}

TEST_F(AgentReadsOnPostgres, AReadThatFailsIsAnswered503AndTheNextOneReconnects) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.messages IN ACCESS EXCLUSIVE MODE");
  const auto list = send_agent_get("/api/conversations");
  ASSERT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 5s)) << host->log();
  // The reader's connection is cut in the middle of its read.
  observer.run(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
      "application_name = '" +
      std::string(kReaderApplication) + "'");
  const auto answer = list->read_response(5s);
  ASSERT_TRUE(answer) << "no answer after the reader's connection was cut\n" << host->log();
  EXPECT_EQ(answer->status, 503);
  EXPECT_EQ(boost::json::parse(answer->body).at("error").as_string(),
            "the helpdesk database is unavailable; try again");
  EXPECT_EQ(answer->header("retry-after").value_or(""), "1");
  EXPECT_FALSE(host->log_lines("cannot read GET /api/conversations from the helpdesk database").empty()) << host->log();
  locker.run("ROLLBACK");

  const auto again = testsupport::http_request("GET", host->url("/api/conversations"), {}, session->headers());
  EXPECT_EQ(again.status, 200) << host->log();
}

TEST_F(AgentReadsOnPostgres, AHostStoppedWhileAReadWaitsExitsCleanly) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.conversations IN ACCESS EXCLUSIVE MODE");
  const auto list = send_agent_get("/api/conversations");
  ASSERT_TRUE(eventually([&] { return reader_waits_for_a_lock(); }, 5s)) << host->log();
  host->signal(SIGTERM);
  // The loop gives the waiting answer its 2 s to drain, closes it and ends; the reader's statement
  // is cancelled (not left to its 10 s timeout) and its completion, after the loop, dropped.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(host->wait_exit(8s), 0) << host->log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s) << "the shutdown waited for the read's timeout";
  EXPECT_TRUE(host->log_lines("connections still open after the drain deadline").size() == 1) << host->log();
  EXPECT_TRUE(host->log_lines("runtime error:").empty()) << host->log();
  EXPECT_FALSE(reader_waits_for_a_lock());
  locker.run("ROLLBACK");
}

TEST_F(AgentReadsOnPostgres, AHostStoppedWhileASignInWaitsExitsCleanly) {
  Sql locker(uri);
  locker.run("BEGIN");
  locker.run("LOCK TABLE helpdesk.agents IN ACCESS EXCLUSIVE MODE");
  RawConnection conn(static_cast<uint16_t>(host->port()));
  ASSERT_TRUE(conn.send(sign_in_request()));
  ASSERT_TRUE(eventually(
      [&] {
        return observer.run(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                   "application_name = 'hdp-stub-host sign-in' AND wait_event_type = 'Lock'") == "1";
      },
      5s))
      << host->log();
  host->signal(SIGTERM);
  // The waiting sign-in's connection is closed at the drain deadline; its lookup is cancelled (not
  // left to its 10 s timeout), the sign-in thread joined, and its completion dropped.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(host->wait_exit(8s), 0) << host->log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 6s) << "the shutdown waited for the lookup's timeout";
  EXPECT_TRUE(host->log_lines("runtime error:").empty()) << host->log();
  locker.run("ROLLBACK");
}

TEST_F(AgentReadsOnPostgres, DuringAnOutageAgentRequestsAreAnswered503AndServedAgainAfter) {
  auto& server = testsupport::shared_postgres();
  server.stop();
  struct Restart {
    testsupport::PostgresServer& server;
    ~Restart() {
      if (!server.running()) server.start();
    }
  } restart{server};

  for (const char* target : {"/api/conversations", "/api/messages/1", "/api/session"}) {
    const auto start = std::chrono::steady_clock::now();
    const auto conn = send_agent_get(target);
    const auto answer = conn->read_response(15s);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(answer) << target << " had no answer during the outage\n" << host->log();
    EXPECT_EQ(answer->status, 503) << target;
    EXPECT_FALSE(boost::json::parse(answer->body).at("error").as_string().empty());
    EXPECT_LT(took, 5s) << target;
  }
  const auto [health, took] = timed_get("/healthz", 3s);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_FALSE(host->log_lines("cannot check the session of GET /api/conversations").empty()) << host->log();
  // A sign-in whose account cannot be read: 503, and no failure counted against the agent.
  const std::string login = std::string(R"({"name":")") + testsupport::kTestAgent + R"(","password":")" +
                            testsupport::kTestAgentPassword + R"("})";
  const auto refused = testsupport::http_request("POST", host->url("/login"), login);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.retry_after, "1");
  EXPECT_EQ(refused.json().at("error").as_string(), "sign-in is unavailable; try again");
  EXPECT_FALSE(host->log_lines("cannot check the sign-in of \"tester\"").empty()) << host->log();

  server.start();
  ASSERT_TRUE(eventually(
      [&] {
        return testsupport::http_request("GET", host->url("/api/conversations"), {}, session->headers()).status == 200;
      },
      10s))
      << host->log();
  EXPECT_EQ(testsupport::http_request("GET", host->url("/api/session"), {}, session->headers()).status, 200)
      << "signed in still: the session outlived the outage";
  // Sign-in connects again (a first attempt may still find a connection the restart cut: 503),
  // and the 503s were not counted as wrong passwords (those would be 401, then 429).
  long status = 0;
  EXPECT_TRUE(eventually(
      [&] {
        status = testsupport::http_request("POST", host->url("/login"), login).status;
        return status != 503;
      },
      10s));
  EXPECT_EQ(status, 200) << host->log();
}

}  // namespace
}  // namespace hdp::test

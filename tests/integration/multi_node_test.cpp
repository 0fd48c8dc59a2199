// Several stub hosts, each with the plugin, on one PostgreSQL database: the work of a call is
// done by one node at a time under a claim with a lease, a node that dies leaves its work to the
// others once the lease ends, a node paused past its lease writes nothing when it wakes up, and
// a database that goes away costs 503s, never a 202 for a delivery that was not stored.
//
// Real parts: a throwaway PostgreSQL server, the hdp-stub-host binary loading the built plugin,
// a local recording server, HTTP between them. The hosts share one helpdesk too (--database on
// the same PostgreSQL database, schema `helpdesk`, and one --attachments-dir), so exactly-once
// is checked where the agent sees it, through any node, as well as in the plugin's tables.
#include "e2e_fixture.hpp"
#include "shared_postgres.hpp"  // tests/support

#include "child_process.hpp"  // tests/support

#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace {

namespace json = boost::json;
using e2e::audio;
using e2e::call_ended;
using e2e::record_event;
using e2e::recording_bytes;
using testsupport::eventually;
using wavoip::test::ScriptedResponse;

testsupport::PostgresServer& postgres() {
  return testsupport::shared_postgres();
}

// A body that takes about `seconds` to arrive: small chunks with pauses.
ScriptedResponse slow_audio(const std::string& body, std::chrono::milliseconds per_chunk) {
  ScriptedResponse r = audio(body);
  r.chunk_bytes = 1024;
  r.chunk_delay = per_chunk;
  return r;
}

class MultiNode : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testsupport::TempDir>("wavoip-nodes");
    storage_ = std::make_unique<wavoip::test::TestHttpServer>();
    database_ = testsupport::new_postgres_database("nodes");
    // The agent, once, in the shared helpdesk (the hosts create its schema; the command too).
    const auto password = dir_->path() / "password";
    std::ofstream(password) << testsupport::kTestAgentPassword << '\n';
    testsupport::ChildProcess::Options options;
    options.stdin_file = password;
    testsupport::ChildProcess add(
        {HDP_STUB_HOST_PATH, "agent", "add", testsupport::kTestAgent, "--database", postgres().uri(database_)},
        dir_->path() / "agent-add.log", options);
    ASSERT_EQ(add.wait_for_exit(std::chrono::seconds(30)).value_or(-1), 0)
        << testsupport::read_file(dir_->path() / "agent-add.log");
  }

  void TearDown() override {
    for (auto& node : nodes_) {
      if (node && node->running()) {
        node->signal(SIGCONT);
        node->stop();
      }
    }
    if (HasFailure()) {
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]) std::cerr << "---- node " << i << " log ----\n" << nodes_[i]->log() << "\n";
      }
    }
    nodes_.clear();
    storage_.reset();
    dir_.reset();
  }

  // Starts `count` nodes on the database, with leases of `lease_ms`.
  void start_nodes(int count, long long lease_ms, const json::object& overrides = {}) {
    for (int i = 0; i < count; ++i) {
      json::object config{{"base_url", storage_->url("/")},
                          {"allow_insecure_loopback", true},
                          {"database", postgres().uri(database_)},
                          {"node_id", "node-" + std::to_string(i)},
                          {"claim_lease_ms", lease_ms},
                          {"poll", json::object{{"seed", 7 + i}, {"first_delay_s", 1}, {"initial_backoff_s", 1}}}};
      for (const auto& [key, value] : overrides) config[key] = value;
      testsupport::HostOptions options;
      options.host_binary = HDP_STUB_HOST_PATH;
      options.plugins = {WAVOIP_PLUGIN_PATH};
      options.plugin_config_json = json::serialize(config);
      options.data_dir = dir_->path() / ("node-" + std::to_string(i));
      options.sign_in = false;  // the agent is in the shared database: signed in below, once
      options.extra_args = {"--database", postgres().uri(database_), "--attachments-dir",
                            (dir_->path() / "attachments").string()};
      nodes_.push_back(std::make_unique<testsupport::HostProcess>(options));
      ASSERT_TRUE(nodes_.back()->start()) << nodes_.back()->log();
    }
    const auto session =
        testsupport::sign_in(nodes_[0]->base_url(), testsupport::kTestAgent, testsupport::kTestAgentPassword);
    ASSERT_TRUE(session);
    session_ = *session;
  }

  testsupport::HttpResponse post(size_t node, const std::string& body) {
    return testsupport::http_request("POST", nodes_[node]->base_url() + "/webhooks/wavoip", body,
                                     {"Content-Type: application/json"});
  }

  std::string sql(const std::string& query) { return postgres().query_value(database_, query); }
  long long sql_int(const std::string& query) { return std::stoll(sql(query)); }

  // Attachments of the call's message as the agent sees it through `node` (one session is good
  // on every node), 0 when there is no message.
  size_t host_attachments(size_t node, const std::string& call_id) {
    auto r = testsupport::http_request("GET", nodes_[node]->url("/api/messages?external_key=wavoip%3A" + call_id), "",
                                       session_.headers());
    if (r.status != 200) return 0;
    return json::parse(r.body).at("attachments").as_array().size();
  }
  // Files in the shared attachments directory.
  size_t attachment_files() {
    size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir_->path() / "attachments", ec);
         it != std::filesystem::recursive_directory_iterator(); ++it) {
      if (it->is_regular_file()) ++n;
    }
    return n;
  }

  std::unique_ptr<testsupport::TempDir> dir_;
  std::unique_ptr<wavoip::test::TestHttpServer> storage_;
  std::vector<std::unique_ptr<testsupport::HostProcess>> nodes_;
  std::string database_;
  testsupport::AgentSession session_;
};

// Webhooks spread round-robin over three nodes, each call's deliveries duplicated and some out of
// order (READY before the call's end): every recording is downloaded once and attached once; a
// recording the storage no longer has fails once; a call with no READY is found by the polls.
TEST_F(MultiNode, ThreeNodesRoundRobinAttachEveryRecordingOnce) {
  ASSERT_NO_FATAL_FAILURE(start_nodes(3, 30'000));
  constexpr int kCalls = 120;
  std::vector<std::string> ids;
  for (int i = 0; i < kCalls; ++i) {
    const std::string id = "RR" + std::to_string(1000 + i);
    ids.push_back(id);
    if (i % 10 == 9) {
      ScriptedResponse gone;
      gone.status = 410;
      gone.content_type = "text/plain";
      gone.body = "gone";
      storage_->set_response("/" + id, gone);
    } else {
      storage_->set_response("/" + id, audio(recording_bytes(4000 + i, static_cast<char>('a' + i % 20))));
    }
  }
  size_t next = 0;
  for (int i = 0; i < kCalls; ++i) {
    const std::string& id = ids[static_cast<size_t>(i)];
    std::vector<std::string> deliveries = {call_ended(id, 45), record_event(id, "MIXING"), record_event(id, "READY")};
    if (i % 3 == 1) std::swap(deliveries[0], deliveries[2]);       // READY first
    if (i % 7 == 3) deliveries.pop_back(), deliveries.pop_back();  // only the end: the polls find it
    deliveries.push_back(deliveries.back());                       // a duplicate
    for (const std::string& body : deliveries) {
      ASSERT_EQ(post(next++ % 3, body).status, 202) << id;
    }
  }
  ASSERT_TRUE(eventually(
      [&] { return sql_int("SELECT COUNT(*) FROM wavoip.calls WHERE recording IN ('attached', 'failed')") == kCalls; },
      std::chrono::seconds(60)))
      << sql("SELECT string_agg(call_id || '=' || recording, ' ') FROM wavoip.calls WHERE recording NOT IN "
             "('attached', 'failed')");
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'failed'"), kCalls / 10);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM wavoip.attachments"), kCalls - kCalls / 10);
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM wavoip.calls WHERE owner IS NOT NULL OR lease_until IS NOT NULL"), 0)
      << "every claim was given back";
  std::map<size_t, int> attached_by_node;
  for (int i = 0; i < kCalls; ++i) {
    const std::string& id = ids[static_cast<size_t>(i)];
    // A recording that is there is asked for by one node, once (READY or poll). (A gone one is
    // asked for again by a duplicate READY: READY after a failure is a new chance, by design.)
    if (i % 10 != 9) {
      EXPECT_EQ(storage_->hits("/" + id), 1u) << id;
    }
    for (size_t n = 0; n < nodes_.size(); ++n) {
      EXPECT_EQ(host_attachments(n, id), i % 10 == 9 ? 0u : 1u) << id << " through node " << n;
      if (!nodes_[n]->log_lines("attached successfully (call " + id + ")").empty()) ++attached_by_node[n];
    }
  }
  EXPECT_EQ(attachment_files(), static_cast<size_t>(kCalls - kCalls / 10));
  EXPECT_EQ(attached_by_node.size(), 3u) << "the work was spread over the nodes";
}

// kill -9 of a node in the middle of its downloads: once its leases end the other nodes take its
// calls over and finish them; nothing lost, nothing attached twice in the shared tables.
TEST_F(MultiNode, AKilledNodesCallsFinishOnTheOthersAfterItsLease) {
  ASSERT_NO_FATAL_FAILURE(start_nodes(3, 2'000));
  constexpr int kCalls = 12;
  std::vector<std::string> ids;
  for (int i = 0; i < kCalls; ++i) {
    ids.push_back("KILL" + std::to_string(100 + i));
    // About 10 s per download at first: node 0 is still downloading when it dies.
    storage_->set_response("/" + ids.back(), slow_audio(recording_bytes(10 * 1024, 'k'), std::chrono::seconds(1)));
  }
  for (const std::string& id : ids) ASSERT_EQ(post(0, record_event(id, "READY")).status, 202);
  ASSERT_TRUE(eventually([&] { return nodes_[0]->log_lines("Downloading the recording of call KILL").size() >= 12; }));
  nodes_[0]->kill_hard();
  for (const std::string& id : ids) storage_->set_response("/" + id, audio(recording_bytes(10 * 1024, 'k')));
  ASSERT_TRUE(
      eventually([&] { return sql_int("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'attached'") == kCalls; },
                 std::chrono::seconds(30)))
      << sql("SELECT string_agg(call_id || '=' || recording || '/' || COALESCE(owner, '-'), ' ') FROM wavoip.calls");
  EXPECT_EQ(sql_int("SELECT COUNT(*) FROM wavoip.attachments"), kCalls);
  for (const std::string& id : ids) {
    EXPECT_EQ(host_attachments(1, id), 1u) << id;
    EXPECT_EQ(host_attachments(2, id), 1u) << id;
  }
  EXPECT_EQ(attachment_files(), static_cast<size_t>(kCalls));
}

// A node stopped (SIGSTOP) past its lease while downloading, then continued: the others have taken
// its calls over and attached them; it attaches nothing and overwrites nothing.
TEST_F(MultiNode, ANodePausedPastItsLeaseWritesNothingWhenItWakes) {
  ASSERT_NO_FATAL_FAILURE(start_nodes(2, 2'000));
  constexpr int kCalls = 6;
  std::vector<std::string> ids;
  for (int i = 0; i < kCalls; ++i) {
    ids.push_back("PAUSE" + std::to_string(100 + i));
    storage_->set_response("/" + ids.back(),
                           slow_audio(recording_bytes(8 * 1024, 'p'), std::chrono::milliseconds(700)));
  }
  for (const std::string& id : ids) ASSERT_EQ(post(0, record_event(id, "READY")).status, 202);
  ASSERT_TRUE(eventually([&] { return nodes_[0]->log_lines("Downloading the recording of call PAUSE").size() >= 6; }));
  nodes_[0]->signal(SIGSTOP);
  // Node 1 takes the calls over once node 0's leases end, and finishes them (its downloads are
  // served at once).
  for (const std::string& id : ids) storage_->set_response("/" + id, audio(recording_bytes(8 * 1024, 'p')));
  ASSERT_TRUE(
      eventually([&] { return sql_int("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'attached'") == kCalls; },
                 std::chrono::seconds(30)));
  const std::string before =
      sql("SELECT string_agg(call_id || ':' || attachment_id, ',' ORDER BY call_id) FROM "
          "wavoip.attachments");
  const std::string calls_before = sql(
      "SELECT string_agg(call_id || ':' || recording || ':' || updated_at, ',' ORDER BY call_id) FROM wavoip.calls");
  nodes_[0]->signal(SIGCONT);
  // Its slow downloads finish (a few seconds) and find their claims gone; their files go.
  const std::filesystem::path kept = dir_->path() / "node-0" / "plugins" / e2e::kPluginId / "recordings";
  ASSERT_TRUE(eventually(
      [&] {
        return nodes_[0]->log_lines("Download of call PAUSE").size() >= kCalls &&
               nodes_[0]->log_lines("another node took over").size() >= kCalls && std::filesystem::is_empty(kept);
      },
      std::chrono::seconds(30)))
      << nodes_[0]->log();
  EXPECT_TRUE(nodes_[0]->log_lines("attached successfully").empty()) << "the paused node attached nothing";
  for (const std::string& id : ids) EXPECT_EQ(host_attachments(0, id), 1u) << id;
  EXPECT_EQ(attachment_files(), static_cast<size_t>(kCalls));
  EXPECT_EQ(sql("SELECT string_agg(call_id || ':' || attachment_id, ',' ORDER BY call_id) FROM wavoip.attachments"),
            before);
  EXPECT_EQ(sql("SELECT string_agg(call_id || ':' || recording || ':' || updated_at, ',' ORDER BY call_id) FROM "
                "wavoip.calls"),
            calls_before)
      << "the paused node overwrote nothing";
}

// PostgreSQL restarted while webhooks keep coming: the deliveries it could not store get 503,
// every 202 is in the database, and the nodes reconnect by themselves.
TEST_F(MultiNode, ADatabaseRestartCosts503sButNeverAFalse202) {
  ASSERT_NO_FATAL_FAILURE(start_nodes(2, 30'000));
  std::mutex mutex;
  std::vector<std::pair<std::string, int>> answers;  // guarded by mutex
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    for (int i = 0; !stop.load(); ++i) {
      const std::string id = "PGR" + std::to_string(100000 + i);
      const int status = post(static_cast<size_t>(i % 2), call_ended(id, 45)).status;
      std::lock_guard<std::mutex> lock(mutex);
      answers.emplace_back(id, status);
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  postgres().stop();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  postgres().start();
  // Reconnecting waits for the store's backoff (up to 10 s between attempts).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const bool recovered = eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        const size_t n = answers.size();
        return n > 20 && answers[n - 1].second == 202 && answers[n - 2].second == 202 && answers[n - 3].second == 202 &&
               answers[n - 4].second == 202;
      },
      std::chrono::seconds(30));
  stop = true;
  sender.join();
  ASSERT_TRUE(recovered);
  std::set<std::string> stored;
  {
    const std::string all = sql("SELECT string_agg(call_id, ',') FROM wavoip.deliveries");
    size_t pos = 0;
    while (pos < all.size()) {
      size_t end = all.find(',', pos);
      if (end == std::string::npos) end = all.size();
      stored.insert(all.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  size_t accepted = 0;
  size_t refused = 0;
  for (const auto& [id, status] : answers) {
    if (status == 202) {
      ++accepted;
      EXPECT_TRUE(stored.count(id)) << id << " was answered 202 but is not stored";
    } else {
      ++refused;
      EXPECT_EQ(status, 503) << id;
    }
  }
  EXPECT_GT(refused, 0u) << "the outage was seen";
  EXPECT_GT(accepted, 0u);
  for (auto& node : nodes_) EXPECT_TRUE(node->running());
}

}  // namespace

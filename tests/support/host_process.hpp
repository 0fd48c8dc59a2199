// Runs a host binary (hdp-stub-host, or the C host of tests/c_host) as a child process on a free
// loopback port: the one host runner of the tests.
#pragma once

#include "child_process.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace testsupport {

// The agent account end-to-end tests sign in with (hdp-stub-host agent add).
inline constexpr const char* kTestAgent = "tester";
inline constexpr const char* kTestAgentPassword = "a password only tests use";

// Runs `host_binary agent add name --data-dir data_dir` with password on its standard input:
// the exit status (-1 when it could not run).
int add_agent(const std::string& host_binary, const std::filesystem::path& data_dir, const std::string& name,
              const std::string& password);

// A signed-in agent: its session cookie and CSRF token.
struct AgentSession {
  std::string cookie;  // "hdp_session=..."
  std::string csrf_token;
  // "Cookie: ..." and "X-CSRF-Token: ..." for http_request.
  std::vector<std::string> headers() const;
};

// POST /login with JSON; nullopt unless answered 200 with a session cookie.
std::optional<AgentSession> sign_in(const std::string& base_url, const std::string& name, const std::string& password);

struct HostOptions {
  std::string host_binary;
  std::vector<std::string> plugins;  // .so paths
  std::string plugin_config_json;    // config of the last plugin
  // Empty: "data" in a temporary directory the HostProcess owns.
  std::filesystem::path data_dir;
  // Where the log and port files go; empty: data_dir (or the owned temporary directory).
  std::filesystem::path run_dir;
  // --listen 127.0.0.1:0 --port-file <run_dir>/host.port --data-dir <data_dir> before anything else.
  bool add_defaults = true;
  bool virtual_clock = false;
  long long virtual_clock_start_ms = 0;  // 0 = real now
  std::vector<std::string> extra_args;   // last on the command line
  // Adds kTestAgent to the data directory before the first start and signs in after each.
  bool sign_in = true;
  // Adds kTestAgent without signing in (the test signs in itself); the host is not started when
  // that fails.
  bool add_agent = false;
  // Also serves the internet-facing listener (--public-listen) on a free loopback port.
  bool public_listener = false;
  // stdout in a file of its own (stdout_text()); log() is then stderr alone.
  bool stdout_apart = false;
  // start() also waits until GET /healthz answers 200 (a host without that route: false).
  bool wait_for_healthz = true;
  // The constructor launches the host, and waits for its port file when wait_for_port: for tests
  // that look at started() (or at the exit of a host that refuses to start).
  bool start_now = false;
  bool wait_for_port = true;
};

class HostProcess {
 public:
  explicit HostProcess(HostOptions options);
  ~HostProcess();  // SIGKILL if still running
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;

  // Starts the host and waits until it serves (/healthz unless options say otherwise), signed in
  // when options ask for it. False with log() telling why.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Only starts the process (after adding the agent when options ask for it); false when it
  // could not be started.
  bool launch();
  // Waits for the port file(s) of a launched host: false when it exited first or time ran out.
  bool wait_until_serving(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // SIGTERM and wait; returns the exit status (or -signal); -1 when not running, -2000 when it
  // had to be killed.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGTERM, then the exit status; SIGKILL and nullopt when it does not exit within `timeout`.
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The exit status (or -signal), or nullopt when it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGKILL and reap, as a crash would.
  void kill_hard();
  void signal(int signal_number) const;
  // Started and not reaped by start(), stop() or kill_hard(): a host that died by itself still counts.
  bool running() const { return child_ && !child_->exit_status(); }
  // The port is known (the host got as far as serving).
  bool started() const { return port_ > 0; }
  pid_t pid() const { return running() ? child_->pid() : -1; }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path_and_query) const { return base_url() + path_and_query; }
  int port() const { return port_; }
  // The internet-facing listener (HostOptions::public_listener).
  std::string public_url() const { return "http://127.0.0.1:" + std::to_string(public_port_); }
  std::string log() const { return read_file(log_path_); }  // all the host wrote, in every run
  const std::filesystem::path& log_path() const { return log_path_; }
  std::string stdout_text() const { return read_file(stdout_path_); }  // HostOptions::stdout_apart
  std::vector<std::string> log_lines(const std::string& needle) const { return lines_containing(log(), needle); }
  // Waits until the log contains needle.
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const;
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& port_file() const { return port_file_; }

  // Virtual clock: move time forward (fires due timers in the host).
  bool advance_ms(long long ms);

  // The session of kTestAgent since the last start (empty without HostOptions::sign_in).
  const AgentSession& agent() const { return agent_; }
  // GET base_url() + path_and_query as the signed-in agent (signing in again when the host
  // ended the session, as an agent would).
  HttpResponse agent_get(const std::string& path_and_query) const;

 private:
  HostOptions options_;
  std::unique_ptr<TempDir> own_dir_;  // when no data_dir was given
  std::filesystem::path data_dir_;
  std::filesystem::path run_dir_;
  std::optional<ChildProcess> child_;
  int port_ = 0;
  int public_port_ = 0;
  bool agent_added_ = false;
  mutable AgentSession agent_;  // renewed by agent_get when the host ended it
  std::filesystem::path log_path_;
  std::filesystem::path stdout_path_;
  std::filesystem::path port_file_;
  std::filesystem::path public_port_file_;
};

}  // namespace testsupport

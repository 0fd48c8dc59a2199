// Runs the real stub host binary as a child process on a free loopback port, for end-to-end tests.
#pragma once

#include "child_process.hpp"
#include "http_client.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace testsupport {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
public:
   explicit TempDir(const std::string &prefix = "hdp-test");
   ~TempDir();
   TempDir(const TempDir &) = delete;
   TempDir &operator=(const TempDir &) = delete;
   const std::filesystem::path &path() const { return path_; }

private:
   std::filesystem::path path_;
};

// The agent account end-to-end tests sign in with (hdp-stub-host agent add).
inline constexpr const char *kTestAgent = "tester";
inline constexpr const char *kTestAgentPassword = "a password only tests use";

// Runs `host_binary agent add name --data-dir data_dir` with password on its standard input:
// the exit status (-1 when it could not run).
int add_agent(const std::string &host_binary, const std::filesystem::path &data_dir, const std::string &name,
              const std::string &password);

// A signed-in agent: its session cookie and CSRF token.
struct AgentSession {
   std::string cookie;      // "hdp_session=..."
   std::string csrf_token;
   // "Cookie: ..." and "X-CSRF-Token: ..." for http_request.
   std::vector<std::string> headers() const;
};

// POST /login with JSON; nullopt unless answered 200 with a session cookie.
std::optional<AgentSession> sign_in(const std::string &base_url, const std::string &name, const std::string &password);

struct HostOptions {
   std::string host_binary;
   std::vector<std::string> plugins;          // .so paths
   std::string plugin_config_json;            // config of the last plugin
   std::filesystem::path data_dir;
   bool virtual_clock = false;
   long long virtual_clock_start_ms = 0;      // 0 = real now
   std::vector<std::string> extra_args;
   // Adds kTestAgent to the data directory before the first start and signs in after each.
   bool sign_in = true;
   // Also serves the internet-facing listener (--public-listen) on a free loopback port.
   bool public_listener = false;
};

class HostProcess {
public:
   explicit HostProcess(HostOptions options);
   ~HostProcess();  // SIGKILL if still running
   HostProcess(const HostProcess &) = delete;
   HostProcess &operator=(const HostProcess &) = delete;

   // Starts the host and waits until it serves /healthz. False with log() telling why.
   bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
   // SIGTERM and wait; returns the exit status (or -signal).
   int stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
   // SIGKILL and reap, as a crash would.
   void kill_hard();
   // Started and not reaped by start(), stop() or kill_hard(): a host that died by itself still counts.
   bool running() const { return child_ && !child_->exit_status(); }
   pid_t pid() const { return running() ? child_->pid() : -1; }

   std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
   int port() const { return port_; }
   // The internet-facing listener (HostOptions::public_listener).
   std::string public_url() const { return "http://127.0.0.1:" + std::to_string(public_port_); }
   std::string log() const { return read_file(log_path_); }  // all the host wrote, in every run
   const std::filesystem::path &log_path() const { return log_path_; }

   // Virtual clock: move time forward (fires due timers in the host).
   bool advance_ms(long long ms);

   // The session of kTestAgent since the last start (empty without HostOptions::sign_in).
   const AgentSession &agent() const { return agent_; }
   // GET base_url() + path_and_query as the signed-in agent (signing in again when the host
   // ended the session, as an agent would).
   HttpResponse agent_get(const std::string &path_and_query) const;

private:
   HostOptions options_;
   std::optional<ChildProcess> child_;
   int port_ = 0;
   int public_port_ = 0;
   bool agent_added_ = false;
   mutable AgentSession agent_;  // renewed by agent_get when the host ended it
   std::filesystem::path log_path_;
   std::filesystem::path port_file_;
};

}  // namespace testsupport

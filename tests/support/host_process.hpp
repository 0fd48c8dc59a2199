// Runs the real stub host binary as a child process on a free loopback port, for end-to-end tests.
#pragma once

#include "child_process.hpp"

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

struct HostOptions {
   std::string host_binary;
   std::vector<std::string> plugins;          // .so paths
   std::string plugin_config_json;            // config of the last plugin
   std::filesystem::path data_dir;
   bool virtual_clock = false;
   long long virtual_clock_start_ms = 0;      // 0 = real now
   std::vector<std::string> extra_args;
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
   std::string log() const { return read_file(log_path_); }  // all the host wrote, in every run
   const std::filesystem::path &log_path() const { return log_path_; }

   // Virtual clock: move time forward (fires due timers in the host).
   bool advance_ms(long long ms);

private:
   HostOptions options_;
   std::optional<ChildProcess> child_;
   int port_ = 0;
   std::filesystem::path log_path_;
   std::filesystem::path port_file_;
};

}  // namespace testsupport

// One child process for the tests (a host, the simulator, Chromium): started with fork+exec, its
// output in a log file, waited for or killed, and always reaped. The child gets PR_SET_PDEATHSIG
// (SIGKILL), so a test that crashes leaves nothing running; note that the signal follows the
// *thread* that started the child, so start children from the test's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace testsupport {

// The whole content of a file; empty when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// The lines of `text` that contain `needle` (a log, a tool's output).
std::vector<std::string> lines_containing(const std::string& text, const std::string& needle);

// The names of the threads of process pid (0: this process), as top -H, ps -L and perf show them.
std::set<std::string> thread_names(pid_t pid = 0);

class ChildProcess {
 public:
  struct Options {
    std::filesystem::path stdout_log;  // stdout alone, when set (stderr stays in the log)
    bool append = false;               // keep what earlier runs wrote to the log files
    bool own_process_group = false;    // signals then go to the whole group (the child's helpers)
    std::vector<std::string> env;      // extra "NAME=value", replacing inherited ones of that name
    std::string user;                  // run as this user (its uid, gid, no supplementary groups);
                                       // "" = as the test. Changing user needs root.
    std::filesystem::path stdin_file;  // the child's standard input (empty: /dev/null)
  };

  // Starts argv[0] (a path: no PATH search) with stdout and stderr in `log` (empty: the test's
  // own), stdin on /dev/null (or options.stdin_file) and no other descriptor of the test's. Throws std::system_error
  // when it cannot be started (exec failed, for one).
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log, const Options& options);
  ~ChildProcess();  // kill9() unless it was reaped already
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False once it exited (it is then reaped and exit_status() is set).
  bool running();
  // Once reaped: the exit code, or -signal when a signal ended it.
  std::optional<int> exit_status() const { return status_; }

  // The exit status, or nullopt when it is still running after `timeout`.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
  // SIGTERM and wait: the exit status; nullopt when it needed SIGKILL after `timeout`.
  std::optional<int> terminate(std::chrono::milliseconds timeout);
  // SIGKILL and reap, as a crash would.
  void kill9();
  // Sends `signal_number` unless it was reaped.
  void signal(int signal_number) const;

  // Polls until `file` starts with a positive number (the port the child listens on): that
  // number, or 0 when the child exited first or `timeout` passed.
  int wait_for_port_file(const std::filesystem::path& file, std::chrono::milliseconds timeout);

  std::string log() const { return read_file(log_); }

 private:
  pid_t pid_ = -1;
  bool own_group_ = false;
  std::optional<int> status_;
  std::filesystem::path log_;
};

}  // namespace testsupport

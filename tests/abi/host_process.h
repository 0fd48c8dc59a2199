// host_process.h - runs a host executable (the C host or the stub host) as a child process.
//
// Both hosts take the same options (--listen, --port-file, --data-dir, --plugin); their stdout
// and stderr go to one log file the tests read. The destructor kills a host still running.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "child_process.hpp" // tests/support
#include "host_process.hpp"  // tests/support: TempDir

namespace hdp::test {

// A directory under the system temp dir, removed with everything in it.
class TempDir : public testsupport::TempDir {
public:
   TempDir() : testsupport::TempDir("hdp-abi") {}
};

// One host binary the tests can drive.
struct HostKind {
   std::string name; // "c_host", "stub_host"
   std::string path;
};

inline void PrintTo(const HostKind &host, std::ostream *out) {
   *out << host.name;
}

// The hosts this build has: always the C host, the stub host when it was built.
std::vector<HostKind> AvailableHosts();

class HostProcess {
public:
   // Starts `host` with --listen 127.0.0.1:0 --port-file --data-dir under `dir`, then --plugin for
   // each of `plugins`, then `extra_args`.
   HostProcess(const HostKind &host, const std::filesystem::path &dir,
               const std::vector<std::string> &plugins,
               const std::vector<std::string> &extra_args = {});

   // Waits until the port file appears. Returns false if the host exited first or time ran out.
   bool WaitUntilServing(std::chrono::milliseconds timeout = std::chrono::seconds(10));
   int port() const { return port_; }

   // Waits for the exit status (or -signal); nullopt when it is still running after `timeout`.
   std::optional<int> WaitForExit(std::chrono::milliseconds timeout);
   // SIGTERM, then the exit status; SIGKILL and nullopt when it does not exit within `timeout`.
   std::optional<int> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));

   std::string Log() const { return child_.log(); }
   const std::filesystem::path &data_dir() const { return data_dir_; }
   const std::filesystem::path &port_file() const { return port_file_; }

private:
   int port_ = 0;
   std::filesystem::path data_dir_;
   std::filesystem::path port_file_;
   testsupport::ChildProcess child_; // killed and reaped on destruction
};

// Lines of `text` that contain `needle`.
std::vector<std::string> LinesContaining(const std::string &text, const std::string &needle);

} // namespace hdp::test

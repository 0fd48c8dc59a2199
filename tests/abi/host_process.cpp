// host_process.cpp - see host_process.h.
#include "host_process.h"

#include <sstream>

#include "test_paths.h"

namespace hdp::test {
namespace {

std::vector<std::string> HostArgs(const HostKind &host, const std::filesystem::path &dir,
                                  const std::vector<std::string> &plugins,
                                  const std::vector<std::string> &extra_args) {
   std::vector<std::string> args{host.path, "--listen", "127.0.0.1:0", "--port-file",
                                 (dir / "port").string(), "--data-dir", (dir / "data").string()};
   for (const auto &plugin : plugins) {
      args.push_back("--plugin");
      args.push_back(plugin);
   }
   args.insert(args.end(), extra_args.begin(), extra_args.end());
   return args;
}

} // namespace

std::vector<HostKind> AvailableHosts() {
   std::vector<HostKind> hosts{{"c_host", HDP_TEST_C_HOST}};
#ifdef HDP_TEST_STUB_HOST
   hosts.push_back({"stub_host", HDP_TEST_STUB_HOST});
#endif
   return hosts;
}

HostProcess::HostProcess(const HostKind &host, const std::filesystem::path &dir,
                         const std::vector<std::string> &plugins,
                         const std::vector<std::string> &extra_args)
    : data_dir_(dir / "data"), port_file_(dir / "port"),
      child_(HostArgs(host, dir, plugins, extra_args), dir / "host.log", {}) {}

bool HostProcess::WaitUntilServing(std::chrono::milliseconds timeout) {
   port_ = child_.wait_for_port_file(port_file_, timeout);
   return port_ > 0;
}

std::optional<int> HostProcess::WaitForExit(std::chrono::milliseconds timeout) {
   return child_.wait_for_exit(timeout);
}

std::optional<int> HostProcess::Terminate(std::chrono::milliseconds timeout) {
   return child_.terminate(timeout);
}

std::vector<std::string> LinesContaining(const std::string &text, const std::string &needle) {
   std::vector<std::string> lines;
   std::istringstream in(text);
   for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) {
         lines.push_back(line);
      }
   }
   return lines;
}

} // namespace hdp::test

#include "host_process.hpp"

#include "http_client.hpp"

#include <cstdlib>
#include <random>
#include <system_error>
#include <thread>

namespace testsupport {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string &prefix) {
   std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
   std::vector<char> buf(pattern.begin(), pattern.end());
   buf.push_back('\0');
   if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
   path_ = buf.data();
}

TempDir::~TempDir() {
   std::error_code ec;
   fs::remove_all(path_, ec);
}

HostProcess::HostProcess(HostOptions options) : options_(std::move(options)) {
   fs::create_directories(options_.data_dir);
   log_path_ = options_.data_dir / "host.log";
   port_file_ = options_.data_dir / "host.port";
}

HostProcess::~HostProcess() = default;  // the child's destructor kills it

bool HostProcess::start(std::chrono::milliseconds timeout) {
   std::error_code ec;
   fs::remove(port_file_, ec);
   std::vector<std::string> args = {options_.host_binary, "--listen", "127.0.0.1:0", "--port-file",
                                    port_file_.string(), "--data-dir", options_.data_dir.string()};
   for (size_t i = 0; i < options_.plugins.size(); ++i) {
      args.push_back("--plugin");
      args.push_back(options_.plugins[i]);
      if (i + 1 == options_.plugins.size() && !options_.plugin_config_json.empty()) {
         args.push_back("--plugin-config-json");
         args.push_back(options_.plugin_config_json);
      }
   }
   if (options_.virtual_clock) {
      args.push_back("--virtual-clock");
      if (options_.virtual_clock_start_ms != 0) {
         args.push_back("--virtual-clock-start-ms");
         args.push_back(std::to_string(options_.virtual_clock_start_ms));
      }
   }
   for (const auto &a : options_.extra_args) args.push_back(a);

   try {
      ChildProcess::Options keep_earlier_runs;
      keep_earlier_runs.append = true;
      child_.emplace(std::move(args), log_path_, keep_earlier_runs);
   } catch (const std::system_error &) {
      return false;
   }
   auto deadline = std::chrono::steady_clock::now() + timeout;
   port_ = child_->wait_for_port_file(port_file_, timeout);
   while (port_ > 0 && child_->running() && std::chrono::steady_clock::now() < deadline) {
      if (http_get(base_url() + "/healthz").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
   }
   return false;
}

int HostProcess::stop(std::chrono::milliseconds timeout) {
   if (!running()) return -1;
   return child_->terminate(timeout).value_or(-2000);  // -2000: did not stop in time, killed
}

void HostProcess::kill_hard() {
   if (running()) child_->kill9();
}

bool HostProcess::advance_ms(long long ms) {
   return http_request("POST", base_url() + "/__test/clock/advance?ms=" + std::to_string(ms), {}, {})
              .status == 200;
}

}  // namespace testsupport

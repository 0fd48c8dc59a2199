#include "host_process.hpp"

#include "http_client.hpp"

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

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

HostProcess::~HostProcess() {
   if (pid_ > 0) kill_hard();
}

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

   pid_t pid = fork();
   if (pid < 0) return false;
   if (pid == 0) {
      int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
         dup2(fd, STDOUT_FILENO);
         dup2(fd, STDERR_FILENO);
         close(fd);
      }
      std::vector<char *> argv;
      for (auto &a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
   }
   pid_ = pid;

   auto deadline = std::chrono::steady_clock::now() + timeout;
   while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
         pid_ = -1;
         return false;
      }
      std::ifstream pf(port_file_);
      int port = 0;
      if (pf >> port && port > 0) {
         port_ = port;
         if (http_get(base_url() + "/healthz").status == 200) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
   }
   return false;
}

int HostProcess::stop(std::chrono::milliseconds timeout) {
   if (pid_ <= 0) return -1;
   ::kill(pid_, SIGTERM);
   auto deadline = std::chrono::steady_clock::now() + timeout;
   while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
         pid_ = -1;
         if (WIFEXITED(status)) return WEXITSTATUS(status);
         if (WIFSIGNALED(status)) return -WTERMSIG(status);
         return -1000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
   }
   kill_hard();
   return -2000;  // did not stop in time
}

void HostProcess::kill_hard() {
   if (pid_ <= 0) return;
   ::kill(pid_, SIGKILL);
   int status = 0;
   waitpid(pid_, &status, 0);
   pid_ = -1;
}

std::string HostProcess::log() const {
   std::ifstream in(log_path_);
   std::stringstream ss;
   ss << in.rdbuf();
   return ss.str();
}

bool HostProcess::advance_ms(long long ms) {
   return http_request("POST", base_url() + "/__test/clock/advance?ms=" + std::to_string(ms), {}, {})
              .status == 200;
}

}  // namespace testsupport

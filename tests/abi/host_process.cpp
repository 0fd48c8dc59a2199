// host_process.cpp - see host_process.h.
#include "host_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "test_paths.h"

extern char **environ;

namespace hdp::test {

TempDir::TempDir() {
   std::string pattern = (std::filesystem::temp_directory_path() / "hdp-abi-XXXXXX").string();
   if (mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
   }
   path_ = pattern;
}

TempDir::~TempDir() {
   std::error_code ignored;
   std::filesystem::remove_all(path_, ignored);
}

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
    : data_dir_(dir / "data"), port_file_(dir / "port"), log_file_(dir / "host.log") {
   std::vector<std::string> args{host.path,         "--listen",          "127.0.0.1:0",
                                 "--port-file",     port_file_.string(), "--data-dir",
                                 data_dir_.string()};
   for (const auto &plugin : plugins) {
      args.push_back("--plugin");
      args.push_back(plugin);
   }
   args.insert(args.end(), extra_args.begin(), extra_args.end());
   std::vector<char *> argv;
   for (auto &arg : args) {
      argv.push_back(arg.data());
   }
   argv.push_back(nullptr);

   posix_spawn_file_actions_t actions;
   posix_spawn_file_actions_init(&actions);
   posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(),
                                    O_WRONLY | O_CREAT | O_TRUNC, 0600);
   posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
   posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
   int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
   posix_spawn_file_actions_destroy(&actions);
   if (error != 0) {
      pid_ = -1;
      throw std::system_error(error, std::generic_category(), "posix_spawn " + host.path);
   }
}

HostProcess::~HostProcess() {
   if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
   }
}

bool HostProcess::WaitUntilServing(std::chrono::milliseconds timeout) {
   const auto deadline = std::chrono::steady_clock::now() + timeout;
   while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) {
         port_ = port;
         return true;
      }
      int status = 0;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
         pid_ = -1; // exited before serving
         return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
   }
   return false;
}

std::optional<int> HostProcess::WaitForExit(std::chrono::milliseconds timeout) {
   if (pid_ <= 0) {
      return std::nullopt;
   }
   const auto deadline = std::chrono::steady_clock::now() + timeout;
   do {
      int status = 0;
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
         pid_ = -1;
         return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
   } while (std::chrono::steady_clock::now() < deadline);
   return std::nullopt;
}

std::optional<int> HostProcess::Terminate(std::chrono::milliseconds timeout) {
   if (pid_ <= 0) {
      return std::nullopt;
   }
   kill(pid_, SIGTERM);
   auto status = WaitForExit(timeout);
   if (!status) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
   }
   return status;
}

std::string HostProcess::Log() const {
   std::ifstream in(log_file_);
   std::stringstream text;
   text << in.rdbuf();
   return text.str();
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

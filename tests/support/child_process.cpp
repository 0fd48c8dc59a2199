#include "child_process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace testsupport {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

// A descriptor of the parent's, closed on every path.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

int open_or_throw(const std::filesystem::path& path, int flags) {
  int fd;
  do fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  return fd;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The test's environment with `extra` ("NAME=value") replacing entries of the same name.
std::vector<std::string> environment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view entry_view(*entry);
    const std::string name_eq(entry_view.substr(0, entry_view.find('=') + 1));
    bool replaced = false;
    for (const auto& e : extra) replaced = replaced || e.starts_with(name_eq);
    if (!replaced) out.emplace_back(entry_view);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// waitpid() that retries on EINTR.
pid_t wait_pid(pid_t pid, int* status, int flags) {
  pid_t r;
  do r = ::waitpid(pid, status, flags);
  while (r < 0 && errno == EINTR);
  return r;
}

// In the child, between fork and exec: system calls only (the test may have other threads, whose
// locks fork copied in whatever state). On failure the errno goes to the parent through `report`.
// `as` is the user to become, if any: set before PR_SET_PDEATHSIG, which a change of credentials
// clears.
[[noreturn]] void exec_child(char* const argv[], char* const envp[], pid_t parent, bool own_group,
                             const std::optional<std::pair<uid_t, gid_t>>& as, int in, int out, int err, int report) {
  bool ok = !own_group || ::setpgid(0, 0) == 0;
  if (ok && as) ok = ::setgroups(0, nullptr) == 0 && ::setgid(as->second) == 0 && ::setuid(as->first) == 0;
  ok = ok && ::prctl(PR_SET_PDEATHSIG, SIGKILL) == 0;
  if (ok && ::getppid() != parent) _exit(127);  // the test died before prctl: nobody to serve
  sigset_t none;
  sigemptyset(&none);
  ok = ok && ::sigprocmask(SIG_SETMASK, &none, nullptr) == 0;
  ok = ok && ::dup2(in, STDIN_FILENO) >= 0;
  ok = ok && (out < 0 || ::dup2(out, STDOUT_FILENO) >= 0);
  ok = ok && (err < 0 || ::dup2(err, STDERR_FILENO) >= 0);
  if (ok) {
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);  // nothing else of the test's leaks into the child
    ::execve(argv[0], argv, envp);
  }
  const int error = errno;
  [[maybe_unused]] auto n = ::write(report, &error, sizeof error);
  _exit(127);
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::set<std::string> thread_names(pid_t pid) {
  const std::string tasks = pid == 0 ? "/proc/self/task" : "/proc/" + std::to_string(pid) + "/task";
  std::set<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);
  }
  return names;
}

std::vector<std::string> lines_containing(const std::string& text, const std::string& needle) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) lines.push_back(line);
  }
  return lines;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path log_path, const Options& options)
    : own_group_(options.own_process_group), log_(std::move(log_path)) {
  // Everything the child needs is prepared before fork.
  std::vector<char*> args = pointers(argv);
  std::vector<std::string> env = options.env.empty() ? std::vector<std::string>{} : environment(options.env);
  std::vector<char*> envp = pointers(env);
  const int flags = O_WRONLY | O_CREAT | (options.append ? O_APPEND : O_TRUNC);
  const Fd in(
      open_or_throw(options.stdin_file.empty() ? std::filesystem::path("/dev/null") : options.stdin_file, O_RDONLY));
  const Fd log(log_.empty() ? -1 : open_or_throw(log_, flags));
  const Fd out(options.stdout_log.empty() ? -1 : open_or_throw(options.stdout_log, flags));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  const Fd report_read(pipe_fds[0]);
  Fd report_write(pipe_fds[1]);

  std::optional<std::pair<uid_t, gid_t>> as;
  if (!options.user.empty()) {
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    const int error = ::getpwnam_r(options.user.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr) {
      throw std::system_error(error != 0 ? error : ENOENT, std::generic_category(), "no user " + options.user);
    }
    as.emplace(entry.pw_uid, entry.pw_gid);
  }

  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    exec_child(args.data(), options.env.empty() ? environ : envp.data(), parent, own_group_, as, in.get(),
               out.get() >= 0 ? out.get() : log.get(), log.get(), report_write.get());
  }
  report_write.reset();
  // The write end closes on exec: EOF means the program runs, an errno means it never did.
  int error = 0;
  ssize_t n;
  do n = ::read(report_read.get(), &error, sizeof error);
  while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status = 0;
    wait_pid(pid_, &status, 0);
    status_ = decode(status);
    throw std::system_error(error, std::generic_category(), "cannot start " + argv[0]);
  }
}

ChildProcess::~ChildProcess() {
  kill9();
}

bool ChildProcess::running() {
  if (status_) return false;
  int status = 0;
  if (wait_pid(pid_, &status, WNOHANG) != pid_) return true;
  status_ = decode(status);
  return false;
}

std::optional<int> ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
  return status_;
}

std::optional<int> ChildProcess::terminate(std::chrono::milliseconds timeout) {
  if (status_) return status_;  // reaped already: its group may be gone, nothing to signal
  signal(SIGTERM);
  const auto status = wait_for_exit(timeout);
  if (!status)
    kill9();
  else if (own_group_)
    ::kill(-pid_, SIGKILL);  // helpers that outlived the leader
  return status;
}

void ChildProcess::kill9() {
  if (status_) return;
  signal(SIGKILL);
  int status = 0;
  status_ = wait_pid(pid_, &status, 0) == pid_ ? decode(status) : -SIGKILL;
}

void ChildProcess::signal(int signal_number) const {
  if (!status_) ::kill(own_group_ ? -pid_ : pid_, signal_number);
}

int ChildProcess::wait_for_port_file(const std::filesystem::path& file, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool alive = running();  // before reading: a port written just before exiting counts
    std::ifstream in(file);
    int port = 0;
    if (in >> port && port > 0) return port;
    if (!alive || std::chrono::steady_clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace testsupport

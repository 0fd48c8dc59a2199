#include "sim_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http_client.hpp"

namespace simtest {

namespace fs = std::filesystem;
namespace json = boost::json;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return condition();
}

// ---- SimProcess ----

SimProcess::SimProcess(std::vector<std::string> args, fs::path dir) : args_(std::move(args)), dir_(std::move(dir)) {
  fs::create_directories(dir_);
  port_file_ = dir_ / "sim.port";
  log_ = dir_ / "sim.log";
}

SimProcess::~SimProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

bool SimProcess::start(std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {WAVOIP_SIM_PATH, "--listen", "127.0.0.1:0", "--port-file", port_file_.string()};
  args.insert(args.end(), args_.begin(), args_.end());
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no simulator behind
    const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    std::ifstream in(port_file_);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = port;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::optional<int> SimProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int SimProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  if (auto status = wait_exit(std::chrono::seconds(20))) return *status;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::string SimProcess::output() const {
  std::ifstream in(log_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

long SimProcess::start_webhooks(const std::string& webhook_url) {
  return testsupport::http_post(url("/__sim/start"), json::serialize(json::object{{"webhook_url", webhook_url}}))
      .status;
}

json::object SimProcess::step() {
  auto answer = testsupport::http_request("POST", url("/__sim/step"), {}, {}, 30000);
  if (answer.status != 200) {
    throw std::runtime_error("POST /__sim/step answered " + std::to_string(answer.status) + ": " + answer.body +
                             answer.error);
  }
  return json::parse(answer.body).as_object();
}

json::array SimProcess::calls() {
  auto answer = testsupport::http_get(url("/__sim/calls"));
  if (answer.status != 200) throw std::runtime_error("GET /__sim/calls answered " + std::to_string(answer.status));
  return json::parse(answer.body).as_object().at("calls").as_array();
}

// ---- WebhookReceiver ----

WebhookReceiver::WebhookReceiver(int status) : status_(status) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 || pipe2(wake_, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("WebhookReceiver: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

WebhookReceiver::~WebhookReceiver() {
  const char byte = 'x';
  [[maybe_unused]] auto n = write(wake_[1], &byte, 1);
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

std::vector<Received> WebhookReceiver::received() const {
  std::lock_guard lock(mutex_);
  return received_;
}

void WebhookReceiver::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      handle(fd);
      close(fd);
    }
  }
}

// One request per connection (the answer says Connection: close); a stuck client is dropped
// after 5 s so the receiver never hangs a test.
void WebhookReceiver::handle(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string data;
  char buf[8192];
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      std::string lower = data.substr(0, header_end);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
        content_length = std::stoul(lower.substr(p + 17));
      }
    }
    if (data.size() >= header_end + 4 + content_length) break;
  }
  Received r;
  const std::string head = data.substr(0, header_end);
  std::istringstream request_line(head.substr(0, head.find("\r\n")));
  request_line >> r.method >> r.path;
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto p = lower.find("\r\ncontent-type:"); p != std::string::npos) {
    const auto end = head.find("\r\n", p + 2);
    r.content_type = head.substr(p + 15, end - p - 15);
    while (!r.content_type.empty() && r.content_type.front() == ' ') r.content_type.erase(0, 1);
  }
  r.body = data.substr(header_end + 4, content_length);
  {
    std::lock_guard lock(mutex_);
    received_.push_back(std::move(r));
  }
  const std::string body = R"({"status":"accepted"})";
  const std::string answer = "HTTP/1.1 " + std::to_string(status_) + " Whatever\r\nContent-Type: application/json\r\n" +
                             "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  [[maybe_unused]] auto n = send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
}

}  // namespace simtest

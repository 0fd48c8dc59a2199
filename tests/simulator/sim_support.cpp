#include "sim_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "http_client.hpp"

namespace simtest {

namespace fs = std::filesystem;
namespace json = boost::json;

// ---- SimProcess ----

SimProcess::SimProcess(std::vector<std::string> args, fs::path dir) : args_(std::move(args)), dir_(std::move(dir)) {
  fs::create_directories(dir_);
  port_file_ = dir_ / "sim.port";
  log_ = dir_ / "sim.log";
}

SimProcess::~SimProcess() = default;  // the child's destructor kills it

bool SimProcess::start(std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {WAVOIP_SIM_PATH, "--listen", "127.0.0.1:0", "--port-file", port_file_.string()};
  args.insert(args.end(), args_.begin(), args_.end());
  try {
    child_.emplace(std::move(args), log_, testsupport::ChildProcess::Options{});
  } catch (const std::system_error&) {
    return false;
  }
  port_ = child_->wait_for_port_file(port_file_, timeout);
  return port_ > 0;
}

std::optional<int> SimProcess::exit_status() const {
  const auto status = child_ ? child_->exit_status() : std::nullopt;
  return status && *status < 0 ? 128 - *status : status;  // -signal as a shell shows it
}

std::optional<int> SimProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (!child_) return std::nullopt;
  child_->wait_for_exit(timeout);
  return exit_status();
}

int SimProcess::stop() {
  if (!child_ || exit_status()) return -1;
  return child_->terminate(std::chrono::seconds(20)) ? *exit_status() : -1;
}

std::string SimProcess::output() const {
  return testsupport::read_file(log_);
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

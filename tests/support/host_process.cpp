#include "host_process.hpp"

#include "eventually.hpp"
#include "http_client.hpp"

#include <fstream>
#include <optional>
#include <system_error>
#include <thread>

namespace testsupport {

namespace fs = std::filesystem;

int add_agent(const std::string& host_binary, const fs::path& data_dir, const std::string& name,
              const std::string& password) {
  fs::create_directories(data_dir);
  const fs::path input = data_dir / ("agent-" + name + ".password");
  {
    std::ofstream out(input, std::ios::trunc);
    out << password << '\n';
  }
  ChildProcess::Options options;
  options.stdin_file = input;
  std::optional<int> status;
  try {
    ChildProcess child({host_binary, "agent", "add", name, "--data-dir", data_dir.string()},
                       data_dir / ("agent-" + name + ".log"), options);
    status = child.wait_for_exit(std::chrono::seconds(30));
  } catch (const std::system_error&) {
  }
  std::error_code ec;
  fs::remove(input, ec);
  return status.value_or(-1);
}

std::vector<std::string> AgentSession::headers() const {
  return {"Cookie: " + cookie, "X-CSRF-Token: " + csrf_token};
}

std::optional<AgentSession> sign_in(const std::string& base_url, const std::string& name, const std::string& password) {
  const std::string body = "{\"name\":\"" + name + "\",\"password\":\"" + password + "\"}";
  const HttpResponse r = http_request("POST", base_url + "/login", body);
  if (r.status != 200 || r.set_cookies.empty()) return std::nullopt;
  AgentSession session;
  session.cookie = r.set_cookies.front().substr(0, r.set_cookies.front().find(';'));
  const std::string key = "\"csrf_token\":\"";
  const size_t at = r.body.find(key);
  if (at == std::string::npos) return std::nullopt;
  session.csrf_token = r.body.substr(at + key.size(), r.body.find('"', at + key.size()) - at - key.size());
  return session;
}

HostProcess::HostProcess(HostOptions options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) {
    own_dir_ = std::make_unique<TempDir>("hdp-host");
    data_dir_ = own_dir_->path() / "data";
    run_dir_ = own_dir_->path();
  } else {
    data_dir_ = options_.data_dir;
    run_dir_ = options_.data_dir;
  }
  if (!options_.run_dir.empty()) run_dir_ = options_.run_dir;
  fs::create_directories(run_dir_);  // the data directory itself only when the files go there
  log_path_ = run_dir_ / "host.log";
  stdout_path_ = options_.stdout_apart ? run_dir_ / "host.stdout" : log_path_;
  port_file_ = run_dir_ / "host.port";
  public_port_file_ = run_dir_ / "host.public-port";
  if (options_.start_now && launch() && options_.wait_for_port) wait_until_serving();
}

HostProcess::~HostProcess() = default;  // the child's destructor kills it

bool HostProcess::launch() {
  std::error_code ec;
  fs::remove(port_file_, ec);
  port_ = 0;
  public_port_ = 0;
  std::vector<std::string> args = {options_.host_binary};
  if (options_.add_defaults) {
    for (const std::string a : {"--listen", "127.0.0.1:0", "--port-file"}) args.push_back(a);
    args.push_back(port_file_.string());
    args.push_back("--data-dir");
    args.push_back(data_dir_.string());
  }
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
  if (options_.public_listener) {
    fs::remove(public_port_file_, ec);
    for (const std::string a : {"--public-listen", "127.0.0.1:0", "--public-port-file"}) args.push_back(a);
    args.push_back(public_port_file_.string());
  }
  for (const auto& a : options_.extra_args) args.push_back(a);

  if ((options_.sign_in || options_.add_agent) && !agent_added_) {
    // With sign_in this fails harmlessly when an earlier HostProcess on this data directory
    // added the agent already: signing in after the start tells whether the account is there.
    const int status = add_agent(options_.host_binary, data_dir_, kTestAgent, kTestAgentPassword);
    if (status != 0 && !options_.sign_in) return false;
    agent_added_ = true;
  }
  agent_ = AgentSession{};
  try {
    ChildProcess::Options child_options;
    child_options.append = true;  // keep what earlier runs wrote
    if (options_.stdout_apart) child_options.stdout_log = stdout_path_;
    child_.emplace(std::move(args), log_path_, child_options);
  } catch (const std::system_error&) {
    return false;
  }
  return true;
}

bool HostProcess::wait_until_serving(std::chrono::milliseconds timeout) {
  if (!child_) return false;
  port_ = child_->wait_for_port_file(port_file_, timeout);
  if (options_.public_listener && port_ > 0) {
    public_port_ = child_->wait_for_port_file(public_port_file_, timeout);
    if (public_port_ <= 0) return false;
  }
  return port_ > 0;
}

bool HostProcess::start(std::chrono::milliseconds timeout) {
  if (!launch()) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!wait_until_serving(timeout)) return false;
  if (!options_.wait_for_healthz) return true;
  while (child_->running() && std::chrono::steady_clock::now() < deadline) {
    if (http_get(base_url() + "/healthz").status == 200) {
      if (!options_.sign_in) return true;
      auto session = sign_in(base_url(), kTestAgent, kTestAgentPassword);
      if (!session) return false;
      agent_ = std::move(*session);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int HostProcess::stop(std::chrono::milliseconds timeout) {
  if (!running()) return -1;
  return child_->terminate(timeout).value_or(-2000);  // -2000: did not stop in time, killed
}

std::optional<int> HostProcess::terminate(std::chrono::milliseconds timeout) {
  return child_ ? child_->terminate(timeout) : std::nullopt;
}

std::optional<int> HostProcess::wait_exit(std::chrono::milliseconds timeout) {
  return child_ ? child_->wait_for_exit(timeout) : std::nullopt;
}

void HostProcess::kill_hard() {
  if (running()) child_->kill9();
}

void HostProcess::signal(int signal_number) const {
  if (child_) child_->signal(signal_number);
}

bool HostProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const {
  return eventually([&] { return log().find(needle) != std::string::npos; }, timeout);
}

HttpResponse HostProcess::agent_get(const std::string& path_and_query) const {
  HttpResponse r = http_request("GET", base_url() + path_and_query, {}, agent_.headers());
  if (r.status == 401 && options_.sign_in) {
    // Sessions end after 12 h unused on the host's clock, which a test may have moved on.
    if (auto session = sign_in(base_url(), kTestAgent, kTestAgentPassword)) {
      agent_ = std::move(*session);
      r = http_request("GET", base_url() + path_and_query, {}, agent_.headers());
    }
  }
  return r;
}

bool HostProcess::advance_ms(long long ms) {
  return http_request("POST", base_url() + "/__test/clock/advance?ms=" + std::to_string(ms), {}, {}).status == 200;
}

}  // namespace testsupport

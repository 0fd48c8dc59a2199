#include "host_process.hpp"

#include "http_client.hpp"

#include <cstdlib>
#include <fstream>
#include <optional>
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

int add_agent(const std::string &host_binary, const fs::path &data_dir, const std::string &name,
              const std::string &password) {
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
   } catch (const std::system_error &) {
   }
   std::error_code ec;
   fs::remove(input, ec);
   return status.value_or(-1);
}

std::vector<std::string> AgentSession::headers() const {
   return {"Cookie: " + cookie, "X-CSRF-Token: " + csrf_token};
}

std::optional<AgentSession> sign_in(const std::string &base_url, const std::string &name, const std::string &password) {
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
   const fs::path public_port_file = options_.data_dir / "host.public-port";
   if (options_.public_listener) {
      fs::remove(public_port_file, ec);
      for (const std::string a : {"--public-listen", "127.0.0.1:0", "--public-port-file"}) args.push_back(a);
      args.push_back(public_port_file.string());
   }
   for (const auto &a : options_.extra_args) args.push_back(a);

   if (options_.sign_in && !agent_added_) {
      // Fails harmlessly when an earlier HostProcess on this data directory added it already;
      // signing in below tells whether the account is there.
      add_agent(options_.host_binary, options_.data_dir, kTestAgent, kTestAgentPassword);
      agent_added_ = true;
   }
   agent_ = AgentSession{};
   try {
      ChildProcess::Options keep_earlier_runs;
      keep_earlier_runs.append = true;
      child_.emplace(std::move(args), log_path_, keep_earlier_runs);
   } catch (const std::system_error &) {
      return false;
   }
   auto deadline = std::chrono::steady_clock::now() + timeout;
   port_ = child_->wait_for_port_file(port_file_, timeout);
   if (options_.public_listener && port_ > 0) {
      public_port_ = child_->wait_for_port_file(public_port_file, timeout);
      if (public_port_ <= 0) return false;
   }
   while (port_ > 0 && child_->running() && std::chrono::steady_clock::now() < deadline) {
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

void HostProcess::kill_hard() {
   if (running()) child_->kill9();
}

HttpResponse HostProcess::agent_get(const std::string &path_and_query) const {
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
   return http_request("POST", base_url() + "/__test/clock/advance?ms=" + std::to_string(ms), {}, {})
              .status == 200;
}

}  // namespace testsupport

// Helpers for the host tests: temporary directories, the real hdp-stub-host as a child
// process, and small HTTP clients (libcurl, and a raw socket for what curl will not do).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "child_process.hpp"  // tests/support
#include "host_process.hpp"   // tests/support: TempDir

namespace hdp::test {

// Paths of the built artefacts, from the build system.
std::string stub_host_path();
std::string probe_plugin_path();
std::string bad_plugin_path(const std::string& variant);  // "no_symbol", ...

class TempDir : public testsupport::TempDir {
 public:
  TempDir() : testsupport::TempDir("hdp-host-test") {}
};

// Runs hdp-stub-host with stdout and stderr captured to files.
class HostProcess {
 public:
  // Starts the host with args and waits for its port file (when wait_for_port); the data dir,
  // --listen 127.0.0.1:0 and --port-file are added unless add_defaults is false.
  struct Options {
    std::vector<std::string> args;
    bool add_defaults = true;
    bool wait_for_port = true;
    // Adds the agent testsupport::kTestAgent to the data directory before starting.
    bool add_agent = false;
  };
  explicit HostProcess(Options options);
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;
  ~HostProcess();  // SIGKILL if still running

  bool started() const { return port_ != 0; }
  int port() const { return port_; }
  std::string url(const std::string& path_and_query) const;
  const std::filesystem::path& data_dir() const { return data_dir_; }

  void signal(int signal_number) const;
  // The exit status, or nullopt if still running after timeout (or killed by a signal: -signal).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  std::string stderr_text() const;
  std::string stdout_text() const;
  // Lines of stderr that contain needle.
  std::vector<std::string> log_lines(const std::string& needle) const;
  // Waits until stderr contains needle.
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const;

 private:
  TempDir dir_;
  std::filesystem::path data_dir_;
  std::optional<testsupport::ChildProcess> child_;  // empty when it could not be started
  int port_ = 0;
};

struct HttpResult {
  long status = 0;  // 0 when there was no HTTP answer
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string error;                           // libcurl's, when status is 0
  long new_connections = -1;                   // CURLINFO_NUM_CONNECTS

  boost::json::value json() const;
};

// One libcurl easy handle: connections are reused between calls (keep-alive).
class HttpClient {
 public:
  HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  ~HttpClient();

  HttpResult get(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  HttpResult get(const std::string& url, const std::vector<std::string>& headers,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  HttpResult post(const std::string& url, const std::string& body = {},
                  const std::vector<std::string>& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  HttpResult perform(const std::string& method, const std::string& url, const std::string* body,
                     const std::vector<std::string>& headers, std::chrono::milliseconds timeout);
  void* curl_;
};

// A plain TCP connection to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(int port);
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection();

  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads one HTTP/1.1 response with a Content-Length body; nullopt on close or timeout.
  std::optional<HttpResult> read_response(std::chrono::milliseconds timeout);
  // True when the server closed the connection (EOF or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout);
  void close();

 private:
  int fd_ = -1;
  std::string buffer_;
};

// A host with the probe plugin and the virtual clock, plus extra arguments.
HostProcess::Options probe_host(std::vector<std::string> extra = {});
// The same options with the test agent added (HostProcess::Options::add_agent).
HostProcess::Options with_agent(HostProcess::Options options);
// Signs http in as the test agent (POST /login with JSON); its cookie engine keeps the session
// for the next requests. The answer: 200 with {"agent","csrf_token"} when it worked.
HttpResult sign_in(HttpClient& http, const HostProcess& host);

// Small JSON accessors for test assertions.
int64_t json_int(const boost::json::value& v, std::string_view key);
std::vector<int64_t> json_ints(const boost::json::value& v, std::string_view key);

// Polls check every 10 ms until it is true or timeout passes.
bool eventually(const std::function<bool()>& check,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace hdp::test

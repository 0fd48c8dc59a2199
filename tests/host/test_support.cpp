#include "test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <climits>
#include <system_error>
#include <thread>

#include <boost/json/parse.hpp>
#include <curl/curl.h>

namespace hdp::test {

std::string stub_host_path() { return HDP_STUB_HOST_PATH; }
std::string probe_plugin_path() { return HDP_PROBE_PLUGIN_PATH; }
std::string bad_plugin_path(const std::string& variant) {
  return std::string(HDP_BAD_PLUGIN_DIR) + "/bad_" + variant + ".so";
}

HostProcess::Options with_agent(HostProcess::Options options) {
  options.add_agent = true;
  return options;
}

HttpResult sign_in(HttpClient& http, const HostProcess& host) {
  return http.post(host.url("/login"),
                   std::string(R"({"name":")") + testsupport::kTestAgent + R"(","password":")" +
                       testsupport::kTestAgentPassword + R"("})",
                   {"Content-Type: application/json"});
}

HostProcess::Options probe_host(std::vector<std::string> extra) {
  HostProcess::Options options;
  options.args = {"--virtual-clock", "--plugin", probe_plugin_path()};
  options.args.insert(options.args.end(), extra.begin(), extra.end());
  return options;
}

int64_t json_int(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return INT64_MIN;
  const auto* member = v.as_object().if_contains(key);
  if (member == nullptr || !member->is_number()) return INT64_MIN;
  boost::json::error_code ec;
  return member->to_number<int64_t>(ec);
}

std::vector<int64_t> json_ints(const boost::json::value& v, std::string_view key) {
  std::vector<int64_t> out;
  if (!v.is_object()) return out;
  const auto* member = v.as_object().if_contains(key);
  if (member == nullptr || !member->is_array()) return out;
  for (const auto& item : member->as_array()) {
    boost::json::error_code ec;
    out.push_back(item.to_number<int64_t>(ec));
  }
  return out;
}

bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (check()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// --- HostProcess -----------------------------------------------------------------------------

HostProcess::HostProcess(Options options) : data_dir_(dir_.path() / "data") {
  const std::filesystem::path port_file = dir_.path() / "port";
  if (options.add_agent &&
      testsupport::add_agent(stub_host_path(), data_dir_, testsupport::kTestAgent, testsupport::kTestAgentPassword) != 0) {
    return;  // started() stays false
  }
  std::vector<std::string> args{stub_host_path()};
  if (options.add_defaults) {
    args.insert(args.end(), {"--listen", "127.0.0.1:0", "--port-file", port_file.string(),
                             "--data-dir", data_dir_.string()});
  }
  args.insert(args.end(), options.args.begin(), options.args.end());
  testsupport::ChildProcess::Options stdout_apart;
  stdout_apart.stdout_log = dir_.path() / "stdout";
  try {
    child_.emplace(std::move(args), dir_.path() / "stderr", stdout_apart);
  } catch (const std::system_error&) {
    return;
  }
  if (options.wait_for_port) port_ = child_->wait_for_port_file(port_file, std::chrono::seconds(20));
}

HostProcess::~HostProcess() = default;  // the child's destructor kills it

std::string HostProcess::url(const std::string& path_and_query) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path_and_query;
}

void HostProcess::signal(int signal_number) const {
  if (child_) child_->signal(signal_number);
}

std::optional<int> HostProcess::wait_exit(std::chrono::milliseconds timeout) {
  return child_ ? child_->wait_for_exit(timeout) : std::nullopt;
}

std::string HostProcess::stderr_text() const { return testsupport::read_file(dir_.path() / "stderr"); }
std::string HostProcess::stdout_text() const { return testsupport::read_file(dir_.path() / "stdout"); }

std::vector<std::string> HostProcess::log_lines(const std::string& needle) const {
  std::vector<std::string> lines;
  std::istringstream in(stderr_text());
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) lines.push_back(line);
  }
  return lines;
}

bool HostProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const {
  return eventually([&] { return stderr_text().find(needle) != std::string::npos; }, timeout);
}

// --- HttpResult / HttpClient -------------------------------------------------------------------

boost::json::value HttpResult::json() const {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  return ec ? boost::json::value() : v;
}

namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(value.begin());
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*headers)[name] = value;
  }
  return size * count;
}

}  // namespace

HttpClient::HttpClient() {
  static CurlGlobal global;
  curl_ = curl_easy_init();
  // The cookie engine, in memory: a session cookie from POST /login goes with later requests.
  curl_easy_setopt(static_cast<CURL*>(curl_), CURLOPT_COOKIEFILE, "");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResult HttpClient::get(const std::string& url, std::chrono::milliseconds timeout) {
  return perform("GET", url, nullptr, {}, timeout);
}

HttpResult HttpClient::get(const std::string& url, const std::vector<std::string>& headers,
                           std::chrono::milliseconds timeout) {
  return perform("GET", url, nullptr, headers, timeout);
}

HttpResult HttpClient::post(const std::string& url, const std::string& body,
                            const std::vector<std::string>& headers, std::chrono::milliseconds timeout) {
  return perform("POST", url, &body, headers, timeout);
}

HttpResult HttpClient::perform(const std::string& method, const std::string& url,
                               const std::string* body, const std::vector<std::string>& headers,
                               std::chrono::milliseconds timeout) {
  CURL* curl = static_cast<CURL*>(curl_);
  HttpResult result;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
  if (method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);
  if (code != CURLE_OK) {
    result.error = curl_easy_strerror(code);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &result.new_connections);
  return result;
}

// --- RawConnection ---------------------------------------------------------------------------

RawConnection::RawConnection(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) close();
}

RawConnection::~RawConnection() { close(); }

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::send(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<HttpResult> RawConnection::read_response(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const size_t end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) {
      HttpResult result;
      std::istringstream head(buffer_.substr(0, end));
      std::string line;
      std::getline(head, line);
      if (line.size() >= 12) result.status = std::atol(line.substr(9, 3).c_str());
      while (std::getline(head, line)) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(value.begin());
        while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
        result.headers[name] = value;
      }
      const size_t length = result.headers.contains("content-length")
                                ? static_cast<size_t>(std::atol(result.headers["content-length"].c_str()))
                                : 0;
      if (buffer_.size() >= end + 4 + length) {
        result.body = buffer_.substr(end + 4, length);
        buffer_.erase(0, end + 4 + length);
        return result;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return true;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace hdp::test

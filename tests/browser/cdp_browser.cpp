#include "cdp_browser.hpp"

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "http_client.hpp"

namespace browsertest {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

constexpr auto kOperationTimeout = std::chrono::seconds(30);

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding and line breaks
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

}  // namespace

std::string chromium_path() {
  const char* env = std::getenv("HDP_CHROMIUM");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/chromium";
}

// One WebSocket to the page target. Every operation runs asynchronously on its own io_context
// with a deadline, so a browser that stops answering fails the test instead of hanging it.
struct Browser::Connection {
  net::io_context io;
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buffer;

  template <class Start>
  void run(const char* what, Start start) {
    beast::error_code result = net::error::would_block;
    start([&](beast::error_code ec, std::size_t = 0) { result = ec; });
    io.restart();
    io.run_for(kOperationTimeout);
    if (result == net::error::would_block) {
      beast::error_code ignored;
      ws.next_layer().close(ignored);
      io.restart();
      io.run();
      throw std::runtime_error(std::string("DevTools ") + what + " timed out");
    }
    if (result) throw std::runtime_error(std::string("DevTools ") + what + ": " + result.message());
  }
};

Browser::Browser(fs::path work_dir) : work_dir_(std::move(work_dir)) {
  profile_ = work_dir_ / "profile";
  log_ = work_dir_ / "chromium.log";
}

Browser::~Browser() {
  if (connection_) {
    beast::error_code ignored;
    connection_->ws.next_layer().close(ignored);
    connection_.reset();
  }
  // The browser leads its own process group: end it and its helpers (renderer, GPU, zygote).
  if (chromium_) chromium_->terminate(std::chrono::seconds(5));
  std::error_code ec;
  fs::remove_all(profile_, ec);
}

void Browser::start() {
  const std::string exe = chromium_path();
  if (access(exe.c_str(), X_OK) != 0) {
    throw std::runtime_error("Chromium is not installed at " + exe +
                             " (scripts/setup.sh --tests installs it; HDP_CHROMIUM names another one)");
  }
  fs::create_directories(work_dir_);
  std::error_code ec;
  fs::remove_all(profile_, ec);
  fs::create_directories(profile_);
  std::vector<std::string> args = {exe,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-breakpad",
                                   "--disable-crash-reporter",
                                   "--disable-extensions",
                                   "--disable-dev-shm-usage",
                                   "--mute-audio",
                                   "--hide-scrollbars",
                                   "--window-size=1280,800",
                                   "--user-data-dir=" + profile_.string(),
                                   "--remote-debugging-address=127.0.0.1",
                                   "--remote-debugging-port=0",
                                   "about:blank"};
  testsupport::ChildProcess::Options with_helpers;
  with_helpers.own_process_group = true;
  chromium_.emplace(std::move(args), log_, with_helpers);

  // Chromium writes the port it bound (and the browser target's path) to DevToolsActivePort.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const int port = chromium_->wait_for_port_file(profile_ / "DevToolsActivePort", std::chrono::seconds(30));
  if (port == 0 && !chromium_->running()) throw std::runtime_error("Chromium exited at start; its log:\n" + log());
  if (port == 0) throw std::runtime_error("Chromium did not open its DevTools port in 30 s; its log:\n" + log());

  // The page target's WebSocket.
  std::string ws_url;
  while (ws_url.empty()) {
    auto list = testsupport::http_get("http://127.0.0.1:" + std::to_string(port) + "/json/list");
    if (list.status == 200) {
      const json::value targets = json::parse(list.body);
      for (const auto& t : targets.as_array()) {
        if (t.at("type") == "page" && t.as_object().contains("webSocketDebuggerUrl")) {
          ws_url = std::string(t.at("webSocketDebuggerUrl").as_string());
          break;
        }
      }
    }
    if (ws_url.empty()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("Chromium shows no page target");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const std::string prefix = "ws://127.0.0.1:" + std::to_string(port);
  if (ws_url.rfind(prefix, 0) != 0) throw std::runtime_error("unexpected DevTools URL " + ws_url);
  const std::string path = ws_url.substr(prefix.size());

  connection_ = std::make_unique<Connection>();
  Connection& c = *connection_;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  c.run("connect",
        [&](auto done) { c.ws.next_layer().async_connect(endpoint, [done](beast::error_code ec) { done(ec); }); });
  c.ws.read_message_max(64 * 1024 * 1024);
  c.run("handshake", [&](auto done) {
    c.ws.async_handshake("127.0.0.1:" + std::to_string(port), path, [done](beast::error_code ec) { done(ec); });
  });
  call("Page.enable");
  call("Runtime.enable");
}

json::value Browser::call(const std::string& method, json::object params) {
  if (!connection_) throw std::runtime_error("the browser is not started");
  Connection& c = *connection_;
  const long id = ++next_id_;
  const std::string text = json::serialize(json::object{{"id", id}, {"method", method}, {"params", std::move(params)}});
  c.run("write", [&](auto done) { c.ws.async_write(net::buffer(text), done); });
  for (;;) {
    c.buffer.clear();
    c.run("read", [&](auto done) { c.ws.async_read(c.buffer, done); });
    json::value message = json::parse(beast::buffers_to_string(c.buffer.data()));
    const json::object& o = message.as_object();
    if (!o.contains("id") || o.at("id").to_number<long>() != id) continue;  // an event, or another answer
    if (o.contains("error")) throw std::runtime_error(method + " failed: " + json::serialize(o.at("error")));
    return o.contains("result") ? o.at("result") : json::value(json::object{});
  }
}

void Browser::navigate(const std::string& url) {
  const json::value result = call("Page.navigate", {{"url", url}});
  if (result.as_object().contains("errorText")) {
    throw std::runtime_error("cannot load " + url + ": " + std::string(result.at("errorText").as_string()));
  }
  if (!wait_for("document.readyState === 'complete' && location.href.startsWith(" + json::serialize(json::string(url)) +
                ")")) {
    throw std::runtime_error("the page " + url + " did not finish loading");
  }
}

json::value Browser::evaluate(const std::string& expression) {
  const json::value result =
      call("Runtime.evaluate",
           {{"expression", expression}, {"awaitPromise", true}, {"returnByValue", true}, {"userGesture", true}});
  const json::object& o = result.as_object();
  if (o.contains("exceptionDetails")) {
    const json::object& details = o.at("exceptionDetails").as_object();
    std::string what = details.contains("exception") && details.at("exception").as_object().contains("description")
                           ? std::string(details.at("exception").at("description").as_string())
                           : json::serialize(details);
    throw std::runtime_error("page exception in `" + expression + "`: " + what);
  }
  const json::object& value = o.at("result").as_object();
  return value.contains("value") ? value.at("value") : json::value(nullptr);
}

bool Browser::wait_for(const std::string& expression, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const json::value v = evaluate("Boolean(" + expression + ")");
    if (v.is_bool() && v.as_bool()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Browser::screenshot(const fs::path& png) {
  const json::value result = call("Page.captureScreenshot", {{"format", "png"}});
  fs::create_directories(png.parent_path());
  std::ofstream(png, std::ios::binary) << base64_decode(result.at("data").as_string());
}

std::string Browser::log() const {
  return testsupport::read_file(log_);
}

}  // namespace browsertest

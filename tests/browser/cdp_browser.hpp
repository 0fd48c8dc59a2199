// A real headless Chromium driven over the DevTools protocol (a WebSocket, with Boost.Beast):
// load a page, run JavaScript in it, take a screenshot. Small on purpose: what the page tests need.
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "child_process.hpp"

namespace browsertest {

// The browser to run: $HDP_CHROMIUM if set, else /usr/bin/chromium (scripts/setup.sh --tests
// installs it).
std::string chromium_path();

class Browser {
 public:
  // `work_dir` gets a fresh profile (user-data-dir) and the browser's own log.
  explicit Browser(std::filesystem::path work_dir);
  ~Browser();  // ends the browser and every process it started
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Starts Chromium and attaches to its page. Throws std::runtime_error saying why not
  // (not installed, did not start, no page) so that a test fails with the reason.
  void start();

  // Loads `url` and waits until the document is complete.
  void navigate(const std::string& url);

  // Evaluates `expression` in the page (promises are awaited) and returns its value as JSON.
  // Throws std::runtime_error with the page's exception text.
  boost::json::value evaluate(const std::string& expression);

  // Writes a PNG of the viewport.
  void screenshot(const std::filesystem::path& png);

  // Polls `expression` until it is truthy (true) or `timeout` passes (false).
  bool wait_for(const std::string& expression, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  std::string log() const;  // what Chromium wrote to stderr

 private:
  boost::json::value call(const std::string& method, boost::json::object params = {});

  struct Connection;
  std::filesystem::path work_dir_;
  std::filesystem::path profile_;
  std::filesystem::path log_;
  std::optional<testsupport::ChildProcess> chromium_;  // leads its own process group
  std::unique_ptr<Connection> connection_;
  long next_id_ = 0;
};

}  // namespace browsertest

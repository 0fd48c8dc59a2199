#include "simulator.hpp"

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <random>
#include <sstream>

#include "http_server.hpp"
#include "wav.hpp"
#include "webhook_sender.hpp"

namespace wavoip::sim {

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct CallState {
  bool ready = false;
  std::uint64_t downloads = 0;
  std::uint64_t requests = 0;
  std::string wav;  // built when the recording becomes available
};

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

class Simulator {
 public:
  explicit Simulator(const SimOptions& options, std::ostream& out) : options_(options), out_(out) {}

  int run() {
    try {
      server_ = std::make_unique<HttpServer>(options_.listen_address, options_.port,
                                             [this](const HttpRequest& r, Respond respond) { handle(r, respond); });
    } catch (const std::exception& e) {
      print("wavoip-sim: cannot listen on " + options_.listen_address + ":" + std::to_string(options_.port) + ": " +
            e.what());
      return kExitStartup;
    }
    const std::string base = "http://" + options_.listen_address + ":" + std::to_string(server_->port()) + "/";
    PlanOptions plan_options;
    plan_options.seed = options_.seed.value_or(std::random_device{}());
    plan_options.storage_base_url = base;
    plan_options.pending_override = options_.pending;
    plan_ = build_plan(options_.scenarios, plan_options);
    calls_.resize(plan_.calls.size());
    webhook_url_ = options_.webhook_url;

    print("wavoip-sim: recordings on " + base + "<call id>  (seed " + std::to_string(plan_options.seed) + ")");
    for (const Call& c : plan_.calls) {
      print("wavoip-sim: call " + c.id + "  " + pad(c.scenario, 12) +
            (c.outgoing ? " outgoing to " : " incoming from ") + c.customer + ", " + std::to_string(c.duration_s) +
            " s");
    }
    server_->start([this](int signal) {
      std::lock_guard lock(mutex_);
      stop_signal_ = signal;
      cv_.notify_all();
    });
    if (!options_.port_file.empty()) {
      // Written only once the server answers, so a script that waits for it can go on.
      std::ofstream(options_.port_file + ".tmp") << server_->port() << "\n";
      std::rename((options_.port_file + ".tmp").c_str(), options_.port_file.c_str());
    }
    if (webhook_url_.empty()) {
      print("wavoip-sim: waiting for POST " + base + "__sim/start {\"webhook_url\": ...}");
    }
    const int status = options_.manual ? run_manual() : run_timed();
    server_->stop();
    step_requests_.clear();  // their sessions are gone with the server thread
    return status;
  }

 private:
  // ---- the main thread ----

  bool wait_for_start() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stop_signal_ != 0 || !webhook_url_.empty(); });
    if (stop_signal_ != 0) return false;
    started_ = true;
    start_ = Clock::now();
    print_locked("wavoip-sim: webhooks go to " + webhook_url_ +
                 (options_.manual ? "  (manual: one step per POST /__sim/step)" : ""));
    return true;
  }

  int run_timed() {
    if (!wait_for_start()) return kExitInterrupted;
    for (const Step& step : plan_.steps) {
      const auto due = start_ + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(step.at_ms) *
                                                                                    1000.0 * options_.time_scale));
      {
        std::unique_lock lock(mutex_);
        if (cv_.wait_until(lock, due, [&] { return stop_signal_ != 0; })) return kExitInterrupted;
      }
      perform(step);
    }
    wait_for_downloads();
    // A download is counted when its answer starts: the answers still being written reach
    // their clients before the process (and its sockets) goes away.
    if (!server_->wait_for_answers(std::chrono::seconds(30))) {
      print("wavoip-sim: some answers were still being written after 30 s; stopping anyway");
    }
    const int status = summary(options_.download_timeout_s > 0);
    if (options_.serve_forever) {
      print("wavoip-sim: scenario done; still serving recordings until Ctrl-C (--serve-forever)");
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stop_signal_ != 0; });
    }
    return status;
  }

  int run_manual() {
    if (!wait_for_start()) return kExitInterrupted;
    for (;;) {
      Respond respond;
      std::size_t index = 0;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stop_signal_ != 0 || !step_requests_.empty(); });
        if (stop_signal_ != 0) break;
        respond = std::move(step_requests_.front());
        step_requests_.pop_front();
        index = next_step_;
        if (index < plan_.steps.size()) ++next_step_;
      }
      if (index >= plan_.steps.size()) {
        respond({409, "application/json", R"({"error":"no more steps"})"});
        continue;
      }
      const Step& step = plan_.steps[index];
      Delivery delivery = perform(step);
      json::object answer;
      answer["index"] = index;
      answer["total"] = plan_.steps.size();
      answer["label"] = step.label;
      answer["kind"] = step.kind == StepKind::webhook ? "webhook" : "recording_ready";
      answer["call_id"] = plan_.calls[step.call].id;
      answer["scenario"] = plan_.calls[step.call].scenario;
      if (step.kind == StepKind::webhook) {
        answer["status"] = delivery.status;
        if (!delivery.error.empty()) answer["error"] = delivery.error;
      }
      if (index + 1 < plan_.steps.size()) {
        answer["next"] = plan_.steps[index + 1].label;
      } else {
        answer["next"] = nullptr;
      }
      respond({200, "application/json", json::serialize(answer)});
    }
    summary(false);
    return kExitOk;
  }

  Delivery perform(const Step& step) {
    const Call& call = plan_.calls[step.call];
    const std::string head = stamp() + pad(call.scenario, 13) + call.id + "  ";
    if (step.kind == StepKind::recording_ready) {
      std::string wav = make_wav(call.id, call.recording_s);
      const std::size_t size = wav.size();
      {
        std::lock_guard lock(mutex_);
        calls_[step.call].wav = std::move(wav);
        calls_[step.call].ready = true;
      }
      print(head + "recording available (" + std::to_string(size) + " bytes of audio/wav)");
      return {};
    }
    std::string url;
    {
      std::lock_guard lock(mutex_);
      url = webhook_url_;
    }
    Delivery delivery = sender_.post(url, step.body);
    std::string result = delivery.status != 0 ? std::to_string(delivery.status) : "no answer (" + delivery.error + ")";
    if (!delivery.ok() && delivery.status != 0 && !delivery.answer.empty()) result += " " + delivery.answer;
    {
      std::lock_guard lock(mutex_);
      ++sent_;
      if (!delivery.ok()) ++failed_;
    }
    print(head + pad(step.label, 24) + " -> " + result + (options_.quiet ? "" : "\n           " + step.body));
    return delivery;
  }

  void wait_for_downloads() {
    if (options_.download_timeout_s <= 0) return;
    auto missing = [&] {
      std::size_t n = 0;
      for (std::size_t i = 0; i < plan_.calls.size(); ++i) {
        if (plan_.calls[i].expect_download && calls_[i].downloads == 0) ++n;
      }
      return n;
    };
    std::unique_lock lock(mutex_);
    if (missing() == 0) return;
    std::ostringstream text;
    text << "wavoip-sim: all webhooks sent; waiting up to " << options_.download_timeout_s
         << " s for the plugin to download " << missing() << " recording(s)";
    print_locked(text.str());
    cv_.wait_for(lock, std::chrono::duration<double>(options_.download_timeout_s),
                 [&] { return stop_signal_ != 0 || missing() == 0; });
  }

  // judge_downloads: a recording that should have been downloaded and was not fails the run.
  int summary(bool judge_downloads) {
    std::lock_guard lock(mutex_);
    std::size_t expected = 0, downloaded = 0;
    std::ostringstream text;
    text << "wavoip-sim: " << sent_ << " webhook(s) sent, " << (sent_ - failed_) << " answered 2xx\n";
    for (std::size_t i = 0; i < plan_.calls.size(); ++i) {
      const Call& c = plan_.calls[i];
      const CallState& s = calls_[i];
      if (c.expect_download) {
        ++expected;
        if (s.downloads > 0) ++downloaded;
      }
      text << "  " << pad(c.scenario, 13) << c.id << "  downloads " << s.downloads << "  ("
           << (!c.expect_download ? "none expected"
               : s.downloads > 0  ? "expected: ok"
               : judge_downloads  ? "expected: MISSING"
                                  : "expected, not waited for")
           << "; inbox should show " << c.expected_status << ")\n";
    }
    text << "wavoip-sim: " << downloaded << "/" << expected << " expected recording(s) downloaded";
    print_locked(text.str());
    return failed_ == 0 && (!judge_downloads || downloaded == expected) ? kExitOk : kExitNotAsPlanned;
  }

  // ---- the server thread ----

  void handle(const HttpRequest& request, const Respond& respond) {
    std::string path = request.target.substr(0, request.target.find('?'));
    if (path == "/__sim/calls" && request.method == "GET") return respond(calls_json());
    if (path == "/__sim/start" && request.method == "POST") return respond(start(request.body));
    if (path == "/__sim/step" && request.method == "POST") {
      std::lock_guard lock(mutex_);
      if (!options_.manual) return respond({409, "application/json", R"({"error":"not in --manual mode"})"});
      if (webhook_url_.empty()) return respond({409, "application/json", R"({"error":"not started"})"});
      step_requests_.push_back(respond);
      cv_.notify_all();
      return;
    }
    if (request.method != "GET") {
      return respond({405, "application/json", R"({"error":"method not allowed"})"});
    }
    respond(recording(path.substr(1)));
  }

  HttpAnswer recording(const std::string& id) {
    std::unique_lock lock(mutex_);
    for (std::size_t i = 0; i < plan_.calls.size(); ++i) {
      if (plan_.calls[i].id != id) continue;
      CallState& state = calls_[i];
      ++state.requests;
      if (state.ready) {
        ++state.downloads;
        cv_.notify_all();
        print_locked(stamp() + pad(plan_.calls[i].scenario, 13) + id + "  GET recording -> 200 audio/wav, " +
                     std::to_string(state.wav.size()) + " bytes (download " + std::to_string(state.downloads) + ")");
        return {200, "audio/wav", state.wav};
      }
      if (plan_.calls[i].pending == PendingAnswer::json_status) {
        print_locked(stamp() + pad(plan_.calls[i].scenario, 13) + id +
                     "  GET recording -> 200 {\"status\":\"RECORDING\"}");
        return {200, "application/json", R"({"status":"RECORDING"})"};
      }
      print_locked(stamp() + pad(plan_.calls[i].scenario, 13) + id + "  GET recording -> 404 (not ready)");
      return {404, "application/json", R"({"error":"recording not found"})"};
    }
    return {404, "application/json", R"({"error":"recording not found"})"};
  }

  HttpAnswer start(const std::string& body) {
    std::string url;
    if (!body.empty()) {
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      if (ec || !v.is_object()) return {400, "application/json", R"({"error":"body must be a JSON object"})"};
      if (const json::value* u = v.as_object().if_contains("webhook_url"); u != nullptr && u->is_string()) {
        url = std::string(u->as_string());
      }
    }
    std::lock_guard lock(mutex_);
    if (started_ || !webhook_url_.empty()) return {409, "application/json", R"({"error":"already started"})"};
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return {400, "application/json", R"({"error":"webhook_url (http or https) is required"})"};
    }
    webhook_url_ = url;
    cv_.notify_all();
    return {202, "application/json", R"({"status":"started"})"};
  }

  HttpAnswer calls_json() {
    std::lock_guard lock(mutex_);
    json::array calls;
    for (std::size_t i = 0; i < plan_.calls.size(); ++i) {
      const Call& c = plan_.calls[i];
      calls.push_back(json::object{{"call_id", c.id},
                                   {"scenario", c.scenario},
                                   {"direction", c.outgoing ? "outgoing" : "incoming"},
                                   {"customer", c.customer},
                                   {"duration_s", c.duration_s},
                                   {"ready", calls_[i].ready},
                                   {"requests", calls_[i].requests},
                                   {"downloads", calls_[i].downloads},
                                   {"expect_download", c.expect_download},
                                   {"expected_status", c.expected_status}});
    }
    json::object out{{"started", !webhook_url_.empty()},
                     {"steps_total", plan_.steps.size()},
                     {"webhooks_sent", sent_},
                     {"webhooks_failed", failed_},
                     {"calls", std::move(calls)}};
    return {200, "application/json", json::serialize(out)};
  }

  // ---- output ----

  std::string stamp() const {
    if (!started_) return "[   --  ] ";
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "[%7.2fs] ", s);
    return buf;
  }

  void print(const std::string& line) {
    std::lock_guard lock(mutex_);
    print_locked(line);
  }

  void print_locked(const std::string& line) { out_ << line << std::endl; }

  const SimOptions& options_;
  std::ostream& out_;
  Plan plan_;
  WebhookSender sender_;

  std::mutex mutex_;  // guards everything below, and the output
  std::condition_variable cv_;
  int stop_signal_ = 0;
  std::string webhook_url_;
  bool started_ = false;
  Clock::time_point start_{};
  std::vector<CallState> calls_;
  std::deque<Respond> step_requests_;
  std::size_t next_step_ = 0;
  std::size_t sent_ = 0;
  std::size_t failed_ = 0;

  std::unique_ptr<HttpServer> server_;  // last: stopped before the state above goes
};

}  // namespace

int run_simulator(const SimOptions& options, std::ostream& out) {
  Simulator simulator(options, out);
  return simulator.run();
}

}  // namespace wavoip::sim

// The stub host as a whole: builds the parts from the options, loads and starts the plugins,
// serves until SIGINT/SIGTERM, then shuts down in the ABI's order.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "event_loop.hpp"
#include "options.hpp"

namespace hdp::host {

class AgentAuth;
class AgentStore;
class AttachmentJobs;
class BatchedWrites;
class Clock;
class FdWatches;
class HelpdeskStore;
class HostMetrics;
class HttpServer;
class Logger;
class LoopLagProbe;
class MetricsRegistry;
class PluginContext;
class Router;
class StoreReader;
class TimerService;
struct HostServices;

// Exit statuses (also in --help).
constexpr int kExitOk = 0;
constexpr int kExitCannotStart = 1;
constexpr int kExitPluginRefused = 2;

class StubHost {
 public:
  StubHost(Logger& log, HostOptions options);
  StubHost(const StubHost&) = delete;
  StubHost& operator=(const StubHost&) = delete;
  ~StubHost();

  // Runs until shut down; returns the exit status. [main-thread]
  int run();

 private:
  // Loads, creates and initializes every plugin, then starts them. False after a refusal (the
  // reason is logged, the plugins already loaded are shut down).
  bool load_plugins();
  bool start_plugins();
  bool start_serving();
  static void write_port_file(Logger& log, const std::filesystem::path& file, uint16_t port);
  // SIGINT/SIGTERM: stop accepting, shut the plugins down, let the answers drain, then return
  // from run().
  void begin_shutdown(const char* why);
  // drain main-thread callbacks, cancel everything of each plugin, stop, destroy, deinit.
  void shut_down_plugins();

  Logger& log_;
  HostOptions options_;
  std::unique_ptr<Clock> clock_;
  EventLoop loop_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_deadline_;
  std::unique_ptr<HelpdeskStore> store_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<HostMetrics> host_metrics_;
  std::unique_ptr<LoopLagProbe> lag_probe_;
  std::unique_ptr<AgentStore> agents_;
  std::unique_ptr<AgentAuth> auth_;
  std::unique_ptr<TimerService> timers_;
  std::unique_ptr<FdWatches> fds_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<BatchedWrites> writes_;
  std::unique_ptr<AttachmentJobs> attachments_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpServer> public_server_;  // --public-listen
  std::unique_ptr<HostServices> services_;
  std::vector<std::unique_ptr<PluginContext>> plugins_;
  // Last: destroyed first (its thread joined, no completion after) while what its completions
  // reach (the router, the gate, the metrics, the stores it reads inline) is still there.
  std::unique_ptr<StoreReader> reader_;
  bool shutting_down_ = false;
  bool plugins_shut_down_ = false;
};

}  // namespace hdp::host

// hdp_loop_lag_seconds: a probe timer on the real steady clock (also under --virtual-clock: lag is
// real time) that measures, each time it fires, how long after its due time the loop got to it.
// A plugin callback or a store commit that holds the loop shows up as lag.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace hdp::host {

class HostMetrics;

class LoopLagProbe {
 public:
  LoopLagProbe(boost::asio::io_context& io, HostMetrics& metrics, std::chrono::milliseconds interval);
  LoopLagProbe(const LoopLagProbe&) = delete;
  LoopLagProbe& operator=(const LoopLagProbe&) = delete;
  ~LoopLagProbe();

  // Arms the probe; it re-arms itself interval after each firing until stop(). [main-thread]
  void start();
  // Cancels the probe, so that it keeps the loop alive no longer. [main-thread]
  void stop();

 private:
  void arm();

  boost::asio::steady_timer timer_;
  HostMetrics& metrics_;
  const std::chrono::milliseconds interval_;
  bool running_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host

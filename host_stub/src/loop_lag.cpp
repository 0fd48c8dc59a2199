#include "loop_lag.hpp"

#include "metrics.hpp"

namespace hdp::host {

LoopLagProbe::LoopLagProbe(boost::asio::io_context& io, HostMetrics& metrics, std::chrono::milliseconds interval)
    : timer_(io), metrics_(metrics), interval_(interval) {}

LoopLagProbe::~LoopLagProbe() {
  *alive_ = false;
}

void LoopLagProbe::start() {
  if (running_) return;
  running_ = true;
  arm();
}

void LoopLagProbe::stop() {
  running_ = false;
  timer_.cancel();
}

void LoopLagProbe::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired() || !running_) return;
    const auto late = std::chrono::steady_clock::now() - timer_.expiry();
    metrics_.observe_loop_lag(std::chrono::duration<double>(late).count());
    arm();
  });
}

}  // namespace hdp::host

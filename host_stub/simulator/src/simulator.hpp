// The simulator's run: serves the recordings of its calls and plays the plan's webhooks,
// on a clock (time-scaled) or one step per POST /__sim/step (--manual).
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "scenario.hpp"

namespace wavoip::sim {

struct SimOptions {
  std::vector<std::string> scenarios{"happy"};
  std::string webhook_url;  // empty: wait for POST /__sim/start {"webhook_url": ...}
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;
  std::string port_file;
  double time_scale = 1.0;
  bool serve_forever = false;
  bool manual = false;
  std::optional<std::uint64_t> seed;
  std::optional<PendingAnswer> pending;
  double download_timeout_s = 120;
  bool quiet = false;  // do not print the webhook bodies
};

// Exit statuses of wavoip-sim.
inline constexpr int kExitOk = 0;             // every webhook answered 2xx, every expected download happened
inline constexpr int kExitStartup = 1;        // bad command line, or cannot listen
inline constexpr int kExitNotAsPlanned = 3;   // a delivery failed or a recording was never downloaded
inline constexpr int kExitInterrupted = 130;  // SIGINT/SIGTERM before the scenario was done

int run_simulator(const SimOptions& options, std::ostream& out);

}  // namespace wavoip::sim

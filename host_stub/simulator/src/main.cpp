// wavoip-sim: a local stand-in for WaVoIP. See ../README.md.
#include <curl/curl.h>

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "scenario.hpp"
#include "simulator.hpp"

namespace {

using namespace wavoip::sim;

constexpr std::string_view kUsage =
    R"(wavoip-sim: a local WaVoIP stand-in. It serves call recordings (real WAV audio) at
http://ADDR:PORT/<call id> and sends the webhooks of realistic calls to a URL.

Usage: wavoip-sim [options]
  --webhook-url URL      where to POST the webhooks, e.g. http://127.0.0.1:8080/webhooks/wavoip;
                         without it the simulator waits for
                         POST /__sim/start {"webhook_url": "..."} (handy when ports are picked at run time)
  --scenario NAME        which calls to play (repeatable, or comma-separated; default happy)
  --listen ADDR:PORT     where recordings are served (default 127.0.0.1:0 = a free port)
  --port-file FILE       write the port actually bound to FILE once serving
  --time-scale X         multiply every delay by X (default 1; 0.1 runs ten times faster)
  --seed N               call ids and numbers from this seed (the run can be repeated)
  --pending-answer A     how a recording that is not ready answers: 404 or json
                         ({"status":"RECORDING"} with 200); default: json for long-mixing, else 404
  --download-timeout S   after the last webhook, wait up to S seconds for the plugin to download
                         the recordings it should (default 120; 0 = do not wait, do not judge)
  --serve-forever        keep serving recordings after the scenario, until Ctrl-C
  --manual               tests: play one step per POST /__sim/step instead of on a clock
  --quiet                do not print the webhook bodies
  --help                 this text

Scenarios:
)";

constexpr std::string_view kUsageTail = R"(
Control routes (on the recordings port):
  GET  /__sim/calls      the calls, their ids, and how often each recording was downloaded
  POST /__sim/start      {"webhook_url": "..."}: start when --webhook-url was not given
  POST /__sim/step       --manual only: play the next step, answer what was done and what is next

Every webhook is printed with the answer's status. Exit status: 0 when every webhook was answered
2xx and every recording that should be downloaded was; 1 for a bad command line or when it cannot
listen; 3 when a delivery failed or a recording was not downloaded in time; 130 when interrupted
before the scenario was done.
)";

bool parse_double(std::string_view text, double& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

int usage_error(const std::string& message) {
  std::cerr << "wavoip-sim: " << message << "\n(see wavoip-sim --help)\n";
  return kExitStartup;
}

}  // namespace

int main(int argc, char** argv) {
  SimOptions options;
  bool scenario_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take = [&](std::string& out) {
      if (has_value) {
        out = value;
        return true;
      }
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    auto flag = [&] { return !has_value; };

    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << describe_scenarios() << kUsageTail;
      return kExitOk;
    } else if (arg == "--webhook-url") {
      if (!take(options.webhook_url)) return usage_error("--webhook-url needs a URL");
      if (options.webhook_url.rfind("http://", 0) != 0 && options.webhook_url.rfind("https://", 0) != 0) {
        return usage_error("--webhook-url must start with http:// or https://");
      }
    } else if (arg == "--scenario") {
      std::string list;
      if (!take(list)) return usage_error("--scenario needs a name");
      if (!scenario_given) options.scenarios.clear();
      scenario_given = true;
      std::string_view rest = list;
      while (!rest.empty()) {
        const std::string name(rest.substr(0, rest.find(',')));
        rest.remove_prefix(std::min(rest.size(), name.size() + 1));
        if (!is_scenario(name)) return usage_error("unknown scenario '" + name + "'");
        options.scenarios.push_back(name);
      }
      if (options.scenarios.empty()) return usage_error("--scenario needs a name");
    } else if (arg == "--listen") {
      std::string listen;
      if (!take(listen)) return usage_error("--listen needs ADDR:PORT");
      const auto colon = listen.rfind(':');
      std::uint64_t port = 0;
      if (colon == std::string::npos || !parse_u64(std::string_view(listen).substr(colon + 1), port) || port > 65535) {
        return usage_error("--listen needs ADDR:PORT, e.g. 127.0.0.1:0");
      }
      options.listen_address = listen.substr(0, colon);
      options.port = static_cast<std::uint16_t>(port);
    } else if (arg == "--port-file") {
      if (!take(options.port_file)) return usage_error("--port-file needs a file name");
    } else if (arg == "--time-scale") {
      std::string text;
      if (!take(text) || !parse_double(text, options.time_scale) || !(options.time_scale >= 0) ||
          options.time_scale > 1000) {
        return usage_error("--time-scale needs a number between 0 and 1000");
      }
    } else if (arg == "--seed") {
      std::string text;
      std::uint64_t seed = 0;
      if (!take(text) || !parse_u64(text, seed)) return usage_error("--seed needs a non-negative integer");
      options.seed = seed;
    } else if (arg == "--pending-answer") {
      std::string text;
      if (!take(text) || (text != "404" && text != "json")) return usage_error("--pending-answer is 404 or json");
      options.pending = text == "404" ? PendingAnswer::not_found : PendingAnswer::json_status;
    } else if (arg == "--download-timeout") {
      std::string text;
      if (!take(text) || !parse_double(text, options.download_timeout_s) || !(options.download_timeout_s >= 0) ||
          options.download_timeout_s > 86400) {
        return usage_error("--download-timeout needs seconds between 0 and 86400");
      }
    } else if (arg == "--serve-forever" && flag()) {
      options.serve_forever = true;
    } else if (arg == "--manual" && flag()) {
      options.manual = true;
    } else if (arg == "--quiet" && flag()) {
      options.quiet = true;
    } else {
      return usage_error("unknown option '" + std::string(argv[i]) + "'");
    }
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  const int status = run_simulator(options, std::cout);
  curl_global_cleanup();
  return status;
}

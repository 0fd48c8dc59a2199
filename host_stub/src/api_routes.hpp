// The host's own HTTP API: health, the helpdesk JSON API, attachment files, the inbox page,
// and the virtual-clock controls of test mode. Handlers are plain functions of the request; those
// that read the helpdesk's data run on the store reader (store_reader.hpp) and answer later.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hdp::host {

class Clock;
class Logger;
class Router;
class StoreReader;
class TimerService;

struct PluginInfo {
  std::string id;
  std::string name;
  std::string vendor;
  std::string version;
  uint64_t owner = 0;  // the owner id of its timers (GET /__test/timers)
};

struct ApiContext {
  // The reads of conversations, messages and attachment rows; a read that fails is answered 503.
  StoreReader& reader;
  Logger& log;
  Clock& clock;
  TimerService& timers;
  std::function<std::vector<PluginInfo>()> plugins;
  // Adds GET /__test/clock, POST /__test/clock/advance and GET /__test/timers (the clock must be
  // virtual).
  bool test_clock_routes = false;
};

// Registers every host route on router. context's references must outlive the router.
void register_api_routes(Router& router, ApiContext context);

// Decodes "a=1&b=x%20y" (also '+' as space); nullopt when malformed. A repeated key keeps the
// first value.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

// "/api/messages/42" with prefix "/api/messages/" -> the id; nullopt unless digits.
std::optional<int64_t> parse_id(std::string_view digits);

}  // namespace hdp::host

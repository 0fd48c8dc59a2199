#include "scenario.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <random>
#include <stdexcept>

namespace wavoip::sim {

namespace {

namespace json = boost::json;

struct ScenarioInfo {
  std::string_view name;
  std::string_view what;
};

constexpr ScenarioInfo kScenarios[] = {
    {"happy", "incoming call, then RECORDING, MIXING and READY with record_url"},
    {"outgoing", "the same for an outgoing call (direction OUTCOMING)"},
    {"webhook-lost", "READY is never sent: the plugin must poll and find the file"},
    {"long-mixing", "MIXING lasts long; the storage answers {\"status\":\"RECORDING\"} meanwhile"},
    {"empty", "a very short call: EMPTY_RECORDING, no file ever"},
    {"disabled", "recording switched off on the device: DISABLED, no file ever"},
    {"duplicates", "every webhook delivered twice, READY three times: one download only"},
    {"reordered", "READY arrives before the CALL events"},
    {"never-ready", "RECORDING and MIXING, then nothing: the file never arrives"},
    {"missed", "an incoming call nobody answered: NOT_ANSWERED, nothing to record"},
};

// Gap between the starts of two calls in a multi-scenario run.
constexpr std::int64_t kStaggerMs = 1500;

std::string hex_id(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string id;
  for (int i = 0; i < 32; ++i) id.push_back(kHex[rng() % 16]);
  return id;
}

std::string customer_number(std::mt19937_64& rng) {
  // Brazilian mobile: 55, a two-digit area code, 9 and eight digits.
  static constexpr int kAreas[] = {11, 21, 31, 41, 51, 61, 71, 81};
  std::string number = "55" + std::to_string(kAreas[rng() % 8]) + "9";
  for (int i = 0; i < 8; ++i) number.push_back(static_cast<char>('0' + rng() % 10));
  return number;
}

class Builder {
 public:
  Builder(Plan& plan, const PlanOptions& options) : plan_(plan), options_(options) {}

  void call_event(std::size_t call, std::int64_t at, std::string_view action, std::string_view status,
                  int duration_s = 0, int copies = 1) {
    const Call& c = plan_.calls[call];
    for (int i = 0; i < copies; ++i) {
      add(Step{at + i * 150, StepKind::webhook, call, "CALL " + std::string(status),
               call_event_json(c, options_, action, status, duration_s)});
    }
  }

  void record_event(std::size_t call, std::int64_t at, std::string_view status, int copies = 1) {
    const Call& c = plan_.calls[call];
    for (int i = 0; i < copies; ++i) {
      add(Step{at + i * 150, StepKind::webhook, call, "RECORD " + std::string(status),
               record_event_json(c, options_, status, status == "READY")});
    }
  }

  void ready(std::size_t call, std::int64_t at) {
    add(Step{at, StepKind::recording_ready, call, "recording available", {}});
  }

  // Ring, answer, talk, hang up. Returns when the call ended.
  std::int64_t talk(std::size_t call, std::int64_t at, int copies = 1) {
    const Call& c = plan_.calls[call];
    if (c.outgoing) {
      call_event(call, at, "CREATE", "OUTGOING_RING", 0, copies);
      call_event(call, at + 1000, "UPDATE", "CALLING", 0, copies);
    } else {
      call_event(call, at, "CREATE", "INCOMING_RING", 0, copies);
    }
    const std::int64_t answered = at + 2000;
    call_event(call, answered, "UPDATE", "ACTIVE", 0, copies);
    const std::int64_t ended = answered + c.duration_s * 1000LL;
    call_event(call, ended, "UPDATE", "ENDED", c.duration_s, copies);
    return ended;
  }

 private:
  void add(Step step) { plan_.steps.push_back(std::move(step)); }

  Plan& plan_;
  const PlanOptions& options_;
};

void play(Builder& b, const Call& c, std::size_t i, std::int64_t t0) {
  const std::string& s = c.scenario;
  if (s == "happy" || s == "outgoing" || s == "webhook-lost") {
    const std::int64_t ended = b.talk(i, t0);
    b.record_event(i, ended + 500, "RECORDING");
    b.record_event(i, ended + 2500, "MIXING");
    b.ready(i, ended + 4500);
    if (s != "webhook-lost") b.record_event(i, ended + 4500, "READY");
  } else if (s == "long-mixing") {
    const std::int64_t ended = b.talk(i, t0);
    b.record_event(i, ended + 500, "RECORDING");
    b.record_event(i, ended + 1500, "MIXING");
    b.ready(i, ended + 30000);
    b.record_event(i, ended + 30000, "READY");
  } else if (s == "empty") {
    const std::int64_t ended = b.talk(i, t0);
    b.record_event(i, ended + 500, "EMPTY_RECORDING");
  } else if (s == "disabled") {
    const std::int64_t ended = b.talk(i, t0);
    b.record_event(i, ended + 500, "DISABLED");
  } else if (s == "duplicates") {
    const std::int64_t ended = b.talk(i, t0, 2);
    b.record_event(i, ended + 500, "RECORDING", 2);
    b.record_event(i, ended + 2500, "MIXING", 2);
    b.ready(i, ended + 4500);
    b.record_event(i, ended + 4500, "READY", 3);
  } else if (s == "reordered") {
    b.ready(i, t0);
    b.record_event(i, t0, "READY");
    b.record_event(i, t0 + 400, "MIXING");  // a stale status after READY
    b.call_event(i, t0 + 800, "CREATE", "INCOMING_RING");
    b.call_event(i, t0 + 1200, "UPDATE", "ACTIVE");
    b.call_event(i, t0 + 1600, "UPDATE", "ENDED", c.duration_s);
  } else if (s == "never-ready") {
    const std::int64_t ended = b.talk(i, t0);
    b.record_event(i, ended + 500, "RECORDING");
    b.record_event(i, ended + 2500, "MIXING");
  } else if (s == "missed") {
    b.call_event(i, t0, "CREATE", "INCOMING_RING");
    b.call_event(i, t0 + 6000, "UPDATE", "NOT_ANSWERED");
  }
}

Call make_call(std::string_view scenario, std::mt19937_64& rng, const PlanOptions& options) {
  Call c;
  c.id = hex_id(rng);
  c.scenario = std::string(scenario);
  c.customer = customer_number(rng);
  c.outgoing = scenario == "outgoing";
  c.duration_s = 4 + static_cast<int>(rng() % 3);
  c.recording_s = c.duration_s;
  c.pending = scenario == "long-mixing" ? PendingAnswer::json_status : PendingAnswer::not_found;
  if (options.pending_override) c.pending = *options.pending_override;
  c.expect_download = scenario == "happy" || scenario == "outgoing" || scenario == "webhook-lost" ||
                      scenario == "long-mixing" || scenario == "duplicates" || scenario == "reordered";
  c.expected_status = c.expect_download ? "attached" : "waiting";
  if (scenario == "empty") {
    c.duration_s = 1;
    c.expected_status = "empty";
  } else if (scenario == "disabled") {
    c.expected_status = "disabled";
  } else if (scenario == "missed") {
    c.duration_s = 0;
    c.expected_status = "none";
  }
  if (!c.expect_download) c.recording_s = 0;
  return c;
}

}  // namespace

const std::vector<std::string_view>& scenario_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const auto& s : kScenarios) out.push_back(s.name);
    return out;
  }();
  return names;
}

std::string describe_scenarios() {
  std::string out;
  for (const auto& s : kScenarios) {
    out += "  " + std::string(s.name);
    out.append(16 - std::min<std::size_t>(15, s.name.size()), ' ');
    out += std::string(s.what) + "\n";
  }
  out += "  all             every scenario above, one call each, started 1.5 s apart\n";
  return out;
}

bool is_scenario(std::string_view name) {
  return name == "all" || std::ranges::find(scenario_names(), name) != scenario_names().end();
}

Plan build_plan(const std::vector<std::string>& scenarios, const PlanOptions& options) {
  std::vector<std::string> names;
  for (const std::string& s : scenarios) {
    if (!is_scenario(s)) throw std::invalid_argument("unknown scenario '" + s + "'");
    if (s == "all") {
      for (std::string_view n : scenario_names()) names.emplace_back(n);
    } else {
      names.push_back(s);
    }
  }
  Plan plan;
  std::mt19937_64 rng(options.seed);
  for (const std::string& name : names) plan.calls.push_back(make_call(name, rng, options));
  Builder builder(plan, options);
  for (std::size_t i = 0; i < plan.calls.size(); ++i) {
    play(builder, plan.calls[i], i, static_cast<std::int64_t>(i) * kStaggerMs);
  }
  std::ranges::stable_sort(plan.steps, {}, &Step::at_ms);
  return plan;
}

std::string call_event_json(const Call& call, const PlanOptions& options, std::string_view action,
                            std::string_view status, int duration_s) {
  json::object o;
  o["type"] = "CALL";
  o["action"] = action;
  o["whatsapp_call_id"] = call.id;
  o["id_session"] = options.id_session;
  o["caller"] = call.outgoing ? options.device_number : call.customer;
  o["receiver"] = call.outgoing ? call.customer : options.device_number;
  o["status"] = status;
  o["direction"] = call.outgoing ? "OUTCOMING" : "INCOMING";
  o["duration"] = duration_s;
  o["is_contact"] = false;
  o["transport"] = "relay";
  std::string text = json::serialize(o);
  text.pop_back();  // the closing brace: live traffic repeats `type` in the same object
  text += R"(,"type":"HUMANIZED"})";
  return text;
}

std::string record_event_json(const Call& call, const PlanOptions& options, std::string_view record_status,
                              bool with_url) {
  json::object o;
  o["type"] = "RECORD";
  o["action"] = "UPDATE";
  o["whatsapp_call_id"] = call.id;
  o["id_session"] = options.id_session;
  o["record_status"] = record_status;
  if (with_url) o["record_url"] = options.storage_base_url + call.id;
  return json::serialize(o);
}

}  // namespace wavoip::sim

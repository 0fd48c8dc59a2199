// What the simulator does: a plan of calls and the timed steps that play them. Pure data,
// built from scenario names and a seed, so that a run can be repeated exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wavoip::sim {

// How the storage answers for a recording that exists but is not ready yet. Integrations
// disagree: some see a 404, one sees a 2xx JSON body {"status":"RECORDING"}.
enum class PendingAnswer { not_found, json_status };

struct Call {
  std::string id;        // 32 uppercase hex digits, like live traffic
  std::string scenario;  // the scenario that made it
  std::string customer;  // the other party's number (digits)
  bool outgoing = false;
  int duration_s = 0;      // talk time reported in CALL ENDED
  double recording_s = 0;  // length of the audio served (0: no recording ever)
  PendingAnswer pending = PendingAnswer::not_found;
  bool expect_download = false;  // the plugin should download this recording
  std::string expected_status;   // the inbox's recording_status once it has settled
};

enum class StepKind {
  webhook,          // POST `body` to the webhook URL
  recording_ready,  // the storage starts serving the call's audio
};

struct Step {
  std::int64_t at_ms = 0;  // unscaled, from the start of the run
  StepKind kind = StepKind::webhook;
  std::size_t call = 0;  // index into Plan::calls
  std::string label;     // "CALL INCOMING_RING", "RECORD READY", "recording available"
  std::string body;      // the JSON sent (webhook steps)
};

struct Plan {
  std::vector<Call> calls;
  std::vector<Step> steps;  // in the order they run (stable by at_ms)
};

struct PlanOptions {
  std::uint64_t seed = 1;
  std::string storage_base_url;  // "http://127.0.0.1:PORT/": record_url = base + call id
  std::string device_number = "5511940028922";
  std::int64_t id_session = 4821;
  std::optional<PendingAnswer> pending_override;
};

// Every scenario name, in the order `all` runs them.
const std::vector<std::string_view>& scenario_names();
// One line per scenario, for --help.
std::string describe_scenarios();
bool is_scenario(std::string_view name);

// Builds the plan for the named scenarios ("all" expands to every scenario). Throws
// std::invalid_argument for an unknown name.
Plan build_plan(const std::vector<std::string>& scenarios, const PlanOptions& options);

// The webhook bodies, as WaVoIP writes them. CALL events carry the second `type` key
// (HUMANIZED) that live traffic has, so the text is assembled by hand.
std::string call_event_json(const Call& call, const PlanOptions& options, std::string_view action,
                            std::string_view status, int duration_s);
std::string record_event_json(const Call& call, const PlanOptions& options, std::string_view record_status,
                              bool with_url);

}  // namespace wavoip::sim

// Parser micro-benchmark: wavoip::parse_event on realistic bodies of each event type.
// items_per_second in the output is events parsed per second (one thread).
#include <wavoip/core/payload.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

// Shapes as WaVoIP sends them (see tests/unit/payload_test.cpp for the seed document's examples).
const std::string kCall =
    R"({"type":"CALL","action":"UPDATE","whatsapp_call_id":"wacid.HBgNNTUxMTk5OTk5MDAwMRUCABEYIDNBQjc4","id_session":789,)"
    R"("caller":"5511999990001","receiver":"5511888880002","status":"ENDED","direction":"OUTCOMING",)"
    R"("duration":45,"record_status":"RECORDING"})";
const std::string kCallDuplicateType =
    R"({"type":"CALL","action":"CREATE","whatsapp_call_id":"wacid.HBgNNTUxMTk5OTk5MDAwMRUCABEYIDNBQjc4","id_session":789,)"
    R"("caller":"5511999990001","receiver":"5511888880002","status":"INCOMING_RING","direction":"INCOMING",)"
    R"("type":"HUMANIZED"})";
const std::string kRecord =
    R"({"type":"RECORD","action":"UPDATE","whatsapp_call_id":123456,"id_session":789,"record_status":"READY",)"
    R"("record_url":"https://storage.wavoip.com/123456"})";
const std::string kDevice =
    R"({"type":"DEVICE","action":"UPDATE","id_session":789,"phone":"5511999990000","status":"open"})";
const std::string kUnknown =
    R"({"type":"MESSAGE","action":"CREATE","id_session":789,"payload":{"from":"5511999990001","text":"hello"}})";

void parse(benchmark::State& state, const std::string& body, std::string_view expected_type) {
  const wavoip::ParseLimits limits;
  for (auto _ : state) {
    wavoip::ParseResult result = wavoip::parse_event(body, limits);
    benchmark::DoNotOptimize(result);
    if (!result || wavoip::event_type_name(*result) != expected_type) {
      state.SkipWithError("unexpected parse result");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}

void BM_Call(benchmark::State& state) {
  parse(state, kCall, "CALL");
}
void BM_CallDuplicateTypeKey(benchmark::State& state) {
  parse(state, kCallDuplicateType, "CALL");
}
void BM_Record(benchmark::State& state) {
  parse(state, kRecord, "RECORD");
}
void BM_Device(benchmark::State& state) {
  parse(state, kDevice, "DEVICE");
}
void BM_Unknown(benchmark::State& state) {
  parse(state, kUnknown, "MESSAGE");
}

BENCHMARK(BM_Call);
BENCHMARK(BM_CallDuplicateTypeKey);
BENCHMARK(BM_Record);
BENCHMARK(BM_Device);
BENCHMARK(BM_Unknown);

}  // namespace

BENCHMARK_MAIN();

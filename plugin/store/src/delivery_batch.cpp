// Store::record_deliveries_and_apply for every engine: one run_batch job per delivery, so the
// batch's error handling (a savepoint per job, the whole-transaction failure, PostgreSQL's retry
// of a batch after a deadlock) is each engine's run_batch, written once there.
#include "wavoip/store/store.hpp"

#include <functional>

namespace wavoip {

std::vector<Store::BatchEntry> Store::record_deliveries_and_apply(const std::vector<DeliveryInput>& inputs) {
  std::vector<BatchEntry> entries(inputs.size());
  if (inputs.empty()) return entries;
  std::vector<std::function<void()>> jobs;
  jobs.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    // A retried batch runs every job again: each assigns its own entry afresh.
    jobs.emplace_back([this, &inputs, &entries, i] {
      const DeliveryInput& input = inputs[i];
      entries[i].result = record_delivery_and_apply(input.raw_body, *input.event, input.inbox, input.now, input.fn);
    });
  }
  const std::vector<std::string> errors = run_batch(jobs);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (errors[i].empty()) continue;
    entries[i].result.reset();
    entries[i].error = errors[i];
  }
  return entries;
}

}  // namespace wavoip

// The webhook route: authenticate, limit, parse, persist, answer. Nothing slow happens here:
// the delivery is written in one transaction and answered 202; the work it starts runs later
// on the host loop (RecordingService).
//
// Group commit: a delivery that passes every check waits, unanswered (a deferred answer), for
// the end of the host loop's current turn; then every delivery read in that turn is written in
// one transaction and each is answered 202 after that commit (or 503 if its write failed). A
// lone delivery waits microseconds; under load one commit (and under synchronous=FULL one
// fsync) serves up to kMaxBatch deliveries. Refusals (401, 413, 415, 400) are answered at once.
#pragma once

#include "host_api.hpp"

#include <wavoip/config.hpp>

#include <wavoip/payload.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wavoip {

class RecordingService;
class Store;

// What the handler answers; kept apart from the C response struct so it is easy to test.
struct WebhookAnswer {
   uint16_t status = 202;
   std::string body;  // JSON
   std::string type;  // the event's type once parsed, "" before (for metrics)
};

// The parts of a request the handler looks at.
struct WebhookRequest {
   std::string_view path;           // still percent-encoded, without the query
   std::string_view query;
   std::string_view content_type;   // "" when absent
   std::string_view token_header;   // X-Webhook-Token, "" when absent
   std::string_view body;
};

// A delivery that passed every check and waits for the next group commit. Owns its body: the
// host's request view is only borrowed during the callback.
struct PendingDelivery {
   uint64_t request_id = 0;
   std::string body;
   Event event;
   std::string inbox;  // of the key that authenticated it ("" = default)
   std::string type;
   std::optional<std::string> call_id;
};

class WebhookHandler {
public:
   static constexpr std::string_view kPath = "/webhooks/wavoip";
   // Deliveries written by one commit at most; a full batch is written at once.
   static constexpr size_t kMaxBatch = 256;

   // schedule_flush asks the host to call flush() once the loop's current turn ends; it returns
   // false when it cannot (the host is stopping), and the deliveries are then written at once.
   WebhookHandler(const HostApi &host, const Config &config, Store &store, RecordingService &service,
                  std::function<bool()> schedule_flush = {});

   // The answer for a request that fails a check, or the delivery to store.
   std::variant<WebhookAnswer, PendingDelivery> check(const WebhookRequest &request) const;
   // Stores the deliveries in one transaction, hands their actions to the service and returns
   // their answers, in order.
   std::vector<WebhookAnswer> store(std::vector<PendingDelivery> &batch);

   // Writes and answers the deliveries waiting for the group commit.
   void flush();

   // True when the request carries a valid key (or none is configured).
   bool authorized(const WebhookRequest &request) const { return authenticate(request).has_value(); }
   bool open_mode() const { return config_.webhook_keys.empty(); }

   // For the host's C callback: builds a WebhookRequest from the borrowed view and responds.
   void on_http_request(const hdp_http_request_t *request);

private:
   // The inbox of the key that authenticated the request ("" = default), or nullopt: refused.
   std::optional<std::string> authenticate(const WebhookRequest &request) const;

   void respond(uint64_t request_id, const WebhookAnswer &answer);

   const HostApi &host_;
   const Config &config_;
   Store &store_;
   RecordingService &service_;
   std::function<bool()> schedule_flush_;
   std::vector<PendingDelivery> waiting_;
   bool flush_scheduled_ = false;
};

// Compares without leaking where the first difference is (timing-safe for equal lengths; the
// length itself is not secret).
bool constant_time_equal(std::string_view a, std::string_view b);

// Decodes %XX escapes (and '+' as a space when plus_is_space, as in a query); nullopt when an
// escape is malformed.
std::optional<std::string> percent_decode(std::string_view raw, bool plus_is_space);

// The value of `name` in a raw query string, percent-decoded; nullopt when absent or malformed.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace wavoip

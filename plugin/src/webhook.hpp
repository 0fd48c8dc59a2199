// The webhook route: authenticate, limit, parse on the loop; then hand the delivery to the store
// writer and answer 202 once it is committed. Nothing slow happens on the loop: the delivery and
// the call state it causes are written in the writer's next batch (one transaction for whatever
// arrived meanwhile, off the loop in thread mode), and the work it starts runs after the answer
// (RecordingService). Refusals (401, 413, 415, 400) are answered at once; a delivery that could
// not be stored gets 503, never a 202.
#pragma once

#include "host_api.hpp"

#include <wavoip/core/config.hpp>

#include <wavoip/core/payload.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wavoip {

class RecordingService;
class StoreWriter;

// What the handler answers; kept apart from the C response struct so it is easy to test.
struct WebhookAnswer {
  uint16_t status = 202;
  std::string body;  // JSON
  std::string type;  // the event's type once parsed, "" before (for metrics)
};

// The parts of a request the handler looks at.
struct WebhookRequest {
  std::string_view path;  // still percent-encoded, without the query
  std::string_view query;
  std::string_view content_type;  // "" when absent
  std::string_view token_header;  // X-Webhook-Token, "" when absent
  std::string_view body;
};

// A delivery that passed every check and waits for its commit. Owns its body: the host's request
// view is only borrowed during the callback.
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

  WebhookHandler(const HostApi& host, const Config& config, StoreWriter& writer, RecordingService& service);

  // The answer for a request that fails a check, or the delivery to store.
  std::variant<WebhookAnswer, PendingDelivery> check(const WebhookRequest& request) const;
  // Hands a checked delivery to the store writer; it is answered after its commit.
  void submit(PendingDelivery delivery);

  // True when the request carries a valid key (or none is configured).
  bool authorized(const WebhookRequest& request) const { return authenticate(request).has_value(); }
  bool open_mode() const { return config_.webhook_keys.empty(); }

  // For the host's C callback: builds a WebhookRequest from the borrowed view and responds.
  void on_http_request(const hdp_http_request_t* request);

 private:
  // The inbox of the key that authenticated the request ("" = default), or nullopt: refused.
  std::optional<std::string> authenticate(const WebhookRequest& request) const;

  void respond(uint64_t request_id, const WebhookAnswer& answer);

  const HostApi& host_;
  const Config& config_;
  StoreWriter& writer_;
  RecordingService& service_;
};

// Compares without leaking where the first difference is (timing-safe for equal lengths; the
// length itself is not secret).
bool constant_time_equal(std::string_view a, std::string_view b);

// The value of `name` in a raw query string, percent-decoded; nullopt when absent or malformed.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace wavoip

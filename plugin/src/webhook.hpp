// The webhook route: authenticate, limit, parse, persist, answer. Nothing slow happens here:
// the delivery is written in one transaction and answered 202; the work it starts runs later
// on the host loop (RecordingService).
#pragma once

#include "host_api.hpp"

#include <wavoip/config.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

class WebhookHandler {
public:
   static constexpr std::string_view kPath = "/webhooks/wavoip";

   WebhookHandler(const HostApi &host, const Config &config, Store &store, RecordingService &service);

   WebhookAnswer handle(const WebhookRequest &request);

   // True when the request carries a valid key (or none is configured).
   bool authorized(const WebhookRequest &request) const { return authenticate(request).has_value(); }
   bool open_mode() const { return config_.webhook_keys.empty(); }

   // For the host's C callback: builds a WebhookRequest from the borrowed view and responds.
   void on_http_request(const hdp_http_request_t *request);

private:
   // The inbox of the key that authenticated the request ("" = default), or nullopt: refused.
   std::optional<std::string> authenticate(const WebhookRequest &request) const;

   const HostApi &host_;
   const Config &config_;
   Store &store_;
   RecordingService &service_;
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

#include "webhook.hpp"

#include "recording_service.hpp"
#include "store_writer.hpp"

#include <wavoip/core/flow.hpp>
#include <wavoip/core/payload.hpp>
#include <wavoip/core/recording_url.hpp>
#include <wavoip/store/store.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>

namespace wavoip {

namespace {

WebhookAnswer error_answer(uint16_t status, std::string_view message) {
  boost::json::object body;
  body["error"] = message;
  return {status, boost::json::serialize(body), {}};
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// JSON is what WaVoIP sends; a missing type is tolerated (some senders omit it), anything that
// names another format is refused so that form posts do not reach the parser.
bool acceptable_content_type(std::string_view content_type) {
  if (content_type.empty()) return true;
  std::string type = lower(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return type == "application/json" || type == "text/json" ||
         (type.starts_with("application/") && type.ends_with("+json"));
}

// The value of `name` in a raw query string, still percent-encoded ("" when absent).
std::string_view query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string_view header_value(const hdp_http_request_t* request, std::string_view name) {
  for (size_t i = 0; i < request->header_count; ++i) {
    const hdp_http_header_t& h = request->headers[i];
    std::string_view hn(h.name, h.name_len);
    if (hn.size() == name.size() && std::equal(hn.begin(), hn.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return {h.value, h.value_len};
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::string_view raw = query_value(query, name);
  if (raw.data() == nullptr) return std::nullopt;
  return percent_decode(raw, true);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

WebhookHandler::WebhookHandler(const HostApi& host, const Config& config, StoreWriter& writer,
                               RecordingService& service)
    : host_(host), config_(config), writer_(writer), service_(service) {}

std::optional<std::string> WebhookHandler::authenticate(const WebhookRequest& request) const {
  // The key may come as the path segment after /webhooks/wavoip, a header, or ?token=. Path
  // and query arrive percent-encoded as sent; a client may encode even unreserved characters.
  std::string_view raw_path_key;
  if (request.path.size() > kPath.size() + 1) raw_path_key = request.path.substr(kPath.size() + 1);
  if (config_.webhook_keys.empty()) {
    // Open mode (the seed document's URL): only the plain path exists.
    if (!raw_path_key.empty()) return std::nullopt;
    return std::string();
  }
  // Malformed encodings match no key.
  const std::string path_key = percent_decode(raw_path_key, false).value_or(std::string());
  const std::string query_key = query_param(request.query, "token").value_or(std::string());
  const std::string_view candidates[] = {path_key, request.token_header, query_key};
  std::optional<std::string> inbox;
  for (const WebhookKey& key : config_.webhook_keys) {
    for (std::string_view candidate : candidates) {
      // Every key is compared against every candidate so the time spent does not say which
      // one came close.
      if (constant_time_equal(candidate, key.key) && !inbox) inbox = key.inbox;
    }
  }
  return inbox;
}

std::variant<WebhookAnswer, PendingDelivery> WebhookHandler::check(const WebhookRequest& request) const {
  std::optional<std::string> inbox = authenticate(request);
  if (!inbox) {
    host_.log(HDP_LOG_WARNING, "[WaVoIP Webhook] Refused a delivery: missing or wrong webhook key");
    if (config_.webhook_keys.empty()) return error_answer(404, "not found");
    return error_answer(401, "unauthorized");
  }
  if (!acceptable_content_type(request.content_type)) {
    host_.log(HDP_LOG_WARNING, "[WaVoIP Webhook] Refused a delivery: content type is not JSON");
    return error_answer(415, "content type must be application/json");
  }
  if (request.body.size() > config_.max_body_bytes) {
    host_.log(HDP_LOG_WARNING, "[WaVoIP Webhook] Refused a delivery: body larger than max_body_bytes");
    return error_answer(413, "body too large");
  }

  ParseResult parsed = parse_event(request.body, config_.parse_limits());
  if (!parsed) {
    const ParseError& error = parsed.error();
    host_.log(HDP_LOG_WARNING,
              "[WaVoIP Webhook] Refused a delivery: " + std::string(to_string(error.code)) + ": " + error.message);
    return error_answer(400, std::string(to_string(error.code)) + ": " + error.message);
  }
  PendingDelivery delivery;
  delivery.body.assign(request.body);
  delivery.event = std::move(*parsed);
  delivery.inbox = std::move(*inbox);
  delivery.type = std::string(event_type_name(delivery.event));
  if (std::optional<std::string_view> id = event_call_id(delivery.event)) delivery.call_id = std::string(*id);
  host_.log(HDP_LOG_INFO, "[WaVoIP Webhook] Received event: " + delivery.type +
                              (delivery.call_id ? " (call " + *delivery.call_id + ")" : std::string()));
  return delivery;
}

void WebhookHandler::submit(PendingDelivery delivery) {
  auto pending = std::make_shared<const PendingDelivery>(std::move(delivery));
  const TimeMs now = host_.wall_ms();
  if (pending->call_id) service_.job_started(*pending->call_id);
  auto finished = [this, pending] {
    if (pending->call_id) service_.job_finished(*pending->call_id);
  };
  writer_.submit(
      // On the writer, inside its batch: the delivery, the call's step and the download claim.
      [this, pending, now, finished](Store& store) -> StoreWriter::Continuation {
        const PendingDelivery& d = *pending;
        Store::DeliveryResult result = store.record_delivery_and_apply(
            d.body, d.event, d.inbox, now,
            [&](const CallRecord& current) { return step_delivery(current, d.event, d.inbox, now, config_); });
        std::optional<std::int64_t> fence;
        if (result.record) {
          fence = settle_claim(store, service_.claim_settings(), *result.record, result.actions, now);
        }
        return [this, pending, finished, fence, result = std::move(result)] {
          const PendingDelivery& d = *pending;
          if (std::holds_alternative<UnknownEvent>(d.event)) {
            host_.log(HDP_LOG_INFO,
                      "[WaVoIP Webhook] Stored an event of unknown type " + d.type + " without acting on it");
          }
          // Only READY starts a download from a webhook: the start of the READY-to-attached time.
          if (d.call_id && std::any_of(result.actions.begin(), result.actions.end(),
                                       [](const Action& a) { return std::holds_alternative<StartFetch>(a); })) {
            service_.metrics().ready_received(*d.call_id);
          }
          boost::json::object body;
          body["status"] = "accepted";
          body["delivery_id"] = result.delivery_id;
          body["type"] = d.type;
          respond(d.request_id, {202, boost::json::serialize(body), d.type});
          if (result.record) service_.carry_out(FlowResult{*result.record, result.actions}, fence);
          finished();
        };
      },
      [this, pending, finished](const std::string& why) {
        // Nothing of it was written: answering 2xx would lose the event. The sender retries on
        // the 503, the poll fallback still covers the recording, and the operator sees why.
        const PendingDelivery& d = *pending;
        const std::string about = d.call_id ? " (call " + *d.call_id + ")" : std::string();
        host_.log(HDP_LOG_ERROR, "[WaVoIP Webhook] Could not store a " + d.type + " delivery" + about + ": " + why);
        WebhookAnswer answer = error_answer(503, "could not store the event, try again");
        answer.type = d.type;
        respond(d.request_id, answer);
        finished();
      },
      /*delivery=*/true);
}

void WebhookHandler::respond(uint64_t request_id, const WebhookAnswer& answer) {
  service_.metrics().delivery(answer.type, answer.status);
  hdp_http_response_t response{};
  response.struct_size = sizeof(response);
  response.status = answer.status;
  response.content_type = "application/json";
  response.body = reinterpret_cast<const uint8_t*>(answer.body.data());
  response.body_len = answer.body.size();
  hdp_status_t status = host_.http()->respond(host_.raw(), request_id, &response);
  if (status != HDP_OK) {
    // NOT_FOUND: the client left or the host gave up waiting; what was stored stays stored.
    host_.log(HDP_LOG_WARNING, "[WaVoIP Webhook] The host refused the answer (status " + std::to_string(status) + ")");
  }
}

void WebhookHandler::on_http_request(const hdp_http_request_t* request) {
  WebhookRequest view;
  view.path = {request->path, request->path_len};
  view.query = {request->query, request->query_len};
  view.content_type = header_value(request, "content-type");
  view.token_header = header_value(request, "x-webhook-token");
  view.body = {reinterpret_cast<const char*>(request->body), request->body_len};

  std::variant<WebhookAnswer, PendingDelivery> checked = check(view);
  if (auto* answer = std::get_if<WebhookAnswer>(&checked)) {
    respond(request->request_id, *answer);
    return;
  }
  PendingDelivery& delivery = std::get<PendingDelivery>(checked);
  delivery.request_id = request->request_id;
  submit(std::move(delivery));
}

}  // namespace wavoip

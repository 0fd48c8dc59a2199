#include "recordings_plugin.hpp"

#include "host_event_loop.hpp"
#include "recording_service.hpp"
#include "store_writer.hpp"
#include "webhook.hpp"

#include <wavoip/store/open_store.hpp>
#include <wavoip/core/payload.hpp>
#include <wavoip/store/pg_store.hpp>
#include <wavoip/store/store.hpp>

#include <boost/json.hpp>

#include <filesystem>
#include <strings.h>
#include <unistd.h>

#include <cstdio>
#include <random>

namespace wavoip {

namespace {

constexpr const char* kRetryPath = RecordingService::kRetryPath;

void respond_json(const HostApi& host, uint64_t request_id, uint16_t status, const std::string& body) {
  hdp_http_response_t response{};
  response.struct_size = sizeof(response);
  response.status = status;
  response.content_type = "application/json";
  response.body = reinterpret_cast<const uint8_t*>(body.data());
  response.body_len = body.size();
  host.http()->respond(host.raw(), request_id, &response);
}

}  // namespace

RecordingsPlugin::RecordingsPlugin(const hdp_host_t* host) : host_(host) {}

RecordingsPlugin::~RecordingsPlugin() {
  if (writer_) writer_->stop();
}

// This process's name on its claims when the operator names none: the host name and a random
// part, so that two runs (or two nodes on one machine) never share one.
std::string RecordingsPlugin::random_node_id() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof(host), "node");
  std::random_device random;
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%08x%08x", random(), random());
  std::string id = std::string(host).substr(0, 100) + "-" + suffix;
  for (char& ch : id) {
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '_';
  }
  return id;
}

hdp_status_t RecordingsPlugin::init() {
  std::string missing = host_.missing_extensions();
  if (!missing.empty()) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] Cannot run: the host lacks " + missing);
    return HDP_ERR_UNSUPPORTED;
  }
  auto parsed = parse_config(host_.config());
  if (!parsed) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] Invalid configuration: " + parsed.error().message);
    return HDP_ERR_INVALID_ARGUMENT;
  }
  config_ = std::move(parsed.value());
  data_dir_ = host_.data_dir();
  const std::string database = describe_database(config_, data_dir_);
  try {
    store_ = open_store(config_, data_dir_);
  } catch (const std::exception& e) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] Cannot open the database " + database + ": " + e.what());
    return HDP_ERR_IO;
  }
  if (is_postgresql_uri(config_.database) && config_.store_writer == StoreWriterMode::loop) {
    // A database server is never waited for on the host's loop.
    host_.log(HDP_LOG_WARNING,
              "[WaVoIP] store_writer \"loop\" is for SQLite; PostgreSQL is written from the "
              "store writer's thread");
    config_.store_writer = StoreWriterMode::thread;
  }
  if (config_.node_id.empty()) config_.node_id = random_node_id();
  host_.log(HDP_LOG_INFO, "[WaVoIP] Store: " + database + " (node " + config_.node_id + ")");
  return HDP_OK;
}

hdp_status_t RecordingsPlugin::start() {
  loop_ = std::make_unique<HostEventLoop>(host_);
  writer_ = std::make_unique<StoreWriter>(
      host_, *store_,
      config_.store_writer == StoreWriterMode::thread ? StoreWriter::Mode::thread : StoreWriter::Mode::loop);
  ClaimSettings claims;
  claims.owner = config_.node_id;
  claims.lease_ms = config_.claim_lease_ms;
  claims.shared = is_postgresql_uri(config_.database);
  service_ = std::make_unique<RecordingService>(host_, *loop_, *writer_, config_, data_dir_, std::move(claims));
  writer_->set_batch_observer([this](const StoreWriter::BatchInfo& info) {
    if (service_) service_->on_store_batch(info);
  });
  webhook_ = std::make_unique<WebhookHandler>(host_, config_, *writer_, *service_);

  hdp_http_route_t route{};
  route.struct_size = sizeof(route);
  route.method = "POST";
  route.path = WebhookHandler::kPath.data();
  route.match = HDP_HTTP_MATCH_PREFIX;  // /webhooks/wavoip and /webhooks/wavoip/<key>
  route.max_body_bytes = config_.max_body_bytes;
  route.on_request = &RecordingsPlugin::on_webhook;
  route.user_data = this;
  hdp_status_t status = host_.http()->register_route(host_.raw(), &route, &webhook_route_);
  if (status != HDP_OK) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] Cannot register POST /webhooks/wavoip (status " + std::to_string(status) + ")");
    return status;
  }
  route.path = kRetryPath;
  route.match = HDP_HTTP_MATCH_EXACT;
  route.max_body_bytes = 4096;
  route.on_request = &RecordingsPlugin::on_retry;
  // Signed-in agents ("Try again" on the inbox page), or scripts with the webhook key. A host
  // older than ABI 1.2 ignores this and serves the route to anyone, as before.
  route.access = HDP_HTTP_ACCESS_AGENT_OR_PLUGIN;
  status = host_.http()->register_route(host_.raw(), &route, &retry_route_);
  if (status != HDP_OK) {
    host_.log(HDP_LOG_ERROR, std::string("[WaVoIP] Cannot register POST ") + kRetryPath);
    return status;
  }

  if (config_.webhook_keys.empty()) {
    host_.log(HDP_LOG_WARNING,
              "[WaVoIP] No webhook_keys configured: POST /webhooks/wavoip accepts deliveries from anyone. "
              "Configure a key for production.");
  }
  if (config_.allow_insecure_loopback) {
    host_.log(HDP_LOG_WARNING,
              "[WaVoIP] DEVELOPMENT MODE: allow_insecure_loopback is on; recordings may be fetched over plain "
              "http from loopback addresses. Never use this in production.");
  }
  // The resume job goes first; from here on the store belongs to the writer.
  service_->resume();
  writer_->start();
  host_.log(HDP_LOG_INFO, "[WaVoIP] Ready: webhooks on POST /webhooks/wavoip (store writer: " +
                              std::string(writer_->mode() == StoreWriter::Mode::thread ? "thread" : "loop") +
                              (host_.messages3() != nullptr   ? ", host messages: hdp.messages/3"
                               : host_.messages2() != nullptr ? ", host messages: hdp.messages/2"
                                                              : ", host messages: hdp.messages/1") +
                              ")");
  return HDP_OK;
}

void RecordingsPlugin::stop() {
  // The host has already cancelled our timers, fd watches, pending attachments and message
  // writes, and failed the webhooks still waiting for their answer.
  if (service_) service_->shutdown();
  // Deliveries read but not yet committed are written now (and the writer joined): whether or
  // not the host still takes their answers, what was received is kept.
  if (writer_) without_exceptions(host_, "store writer stop", [&] { writer_->stop(); });
  if (loop_) loop_->forget_all();
  webhook_.reset();
  service_.reset();
  loop_.reset();
  // The store stays open until destroy, with the stopped writer that refers to it.
}

void RecordingsPlugin::on_webhook(void* user_data, const hdp_http_request_t* request) {
  auto* self = static_cast<RecordingsPlugin*>(user_data);
  bool ok = without_exceptions(self->host_, "webhook", [&] { self->webhook_->on_http_request(request); });
  // Bad input never earns a 5xx; only an internal fault lands here.
  if (!ok) respond_json(self->host_, request->request_id, 500, R"({"error":"internal error"})");
}

void RecordingsPlugin::on_retry(void* user_data, const hdp_http_request_t* request) {
  auto* self = static_cast<RecordingsPlugin*>(user_data);
  bool ok = without_exceptions(self->host_, "retry", [&] { self->handle_retry(request); });
  if (!ok) respond_json(self->host_, request->request_id, 500, R"({"error":"internal error"})");
}

void RecordingsPlugin::handle_retry(const hdp_http_request_t* request) {
  // POST /wavoip/recordings/retry?call_id=ID[&token=KEY] (or X-Webhook-Token).
  WebhookRequest view;
  view.path = WebhookHandler::kPath;
  view.query = {request->query, request->query_len};
  for (size_t i = 0; i < request->header_count; ++i) {
    std::string_view name(request->headers[i].name, request->headers[i].name_len);
    if (name.size() == 15 && strncasecmp(name.data(), "x-webhook-token", 15) == 0) {
      view.token_header = {request->headers[i].value, request->headers[i].value_len};
    }
  }
  std::string_view peer(request->peer_address, request->peer_address_len);
  // An agent the host signed in (ABI 1.2) may always ask. Otherwise: without configured keys
  // nobody can prove to be the operator, so only the machine itself may ask for a retry.
  const std::string_view agent = request->struct_size >= HDP_HTTP_REQUEST_V1_2_SIZE && request->agent_name != nullptr
                                     ? std::string_view(request->agent_name, request->agent_name_len)
                                     : std::string_view();
  bool allowed =
      !agent.empty() || (webhook_->open_mode() ? (peer == "127.0.0.1" || peer == "::1") : webhook_->authorized(view));
  if (!allowed) {
    host_.log(HDP_LOG_WARNING, "[WaVoIP] Refused a retry request: missing or wrong key");
    respond_json(host_, request->request_id, 401, R"({"error":"unauthorized"})");
    return;
  }
  std::optional<std::string> call_id = query_param(view.query, "call_id");
  if (!call_id || call_id->empty()) {
    respond_json(host_, request->request_id, 400, R"({"error":"call_id is required"})");
    return;
  }
  if (!is_valid_call_id(*call_id, config_.parse_limits())) {
    respond_json(host_, request->request_id, 400,
                 R"({"error":"call_id must have 1 to 128 characters of [A-Za-z0-9_.:-]"})");
    return;
  }
  const std::string id = *call_id;
  const uint64_t request_id = request->request_id;
  // Answered once the retry step is committed (a deferred answer).
  service_->retry(id, [this, id, by_agent = std::string(agent), request_id](RecordingService::RetryAnswer answer) {
    switch (answer) {
      case RecordingService::RetryAnswer::unknown_call:
        respond_json(host_, request_id, 404, R"({"error":"unknown call"})");
        return;
      case RecordingService::RetryAnswer::store_failed:
        respond_json(host_, request_id, 503, R"({"error":"could not store the retry, try again"})");
        return;
      case RecordingService::RetryAnswer::retrying: break;
    }
    host_.log(HDP_LOG_INFO, "[WaVoIP] Manual retry requested for call " + id +
                                (by_agent.empty() ? std::string() : " by agent " + by_agent));
    boost::json::object body;
    body["status"] = "retrying";
    body["call_id"] = id;
    respond_json(host_, request_id, 202, boost::json::serialize(body));
  });
}

}  // namespace wavoip

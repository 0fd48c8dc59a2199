#include "api_routes.hpp"

#include <charconv>
#include <limits>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>

#include <hdp/ext/messages.h>

#include "clock.hpp"
#include "helpdesk_store.hpp"
#include "http_types.hpp"
#include "inbox_page.hpp"
#include "log.hpp"
#include "router.hpp"
#include "store_reader.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace json = boost::json;

std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  const auto parsed = boost::urls::parse_query(query);
  if (!parsed) return std::nullopt;
  boost::urls::encoding_opts options;
  options.space_as_plus = true;
  for (const auto& param : *parsed) {
    out.emplace(param.key.decode(options), param.has_value ? param.value.decode(options) : "");
  }
  return out;
}

std::optional<int64_t> parse_id(std::string_view digits) {
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value <= 0) return std::nullopt;
  return value;
}

namespace {

const char* direction_name(int32_t direction) {
  switch (direction) {
    case HDP_CALL_DIRECTION_INCOMING: return "incoming";
    case HDP_CALL_DIRECTION_OUTGOING: return "outgoing";
    default: return "unknown";
  }
}

// ext/messages.h: hosts show an unknown value like "none" plus the reason.
const char* recording_status_name(int32_t status) {
  switch (status) {
    case HDP_RECORDING_WAITING: return "waiting";
    case HDP_RECORDING_DOWNLOADING: return "downloading";
    case HDP_RECORDING_ATTACHED: return "attached";
    case HDP_RECORDING_FAILED: return "failed";
    case HDP_RECORDING_DISABLED: return "disabled";
    case HDP_RECORDING_EMPTY: return "empty";
    default: return "none";
  }
}

json::object attachment_json(const AttachmentRow& row) {
  json::object o;
  o["id"] = row.id;
  o["message_id"] = row.message_id;
  o["file_name"] = row.file_name;
  o["mime_type"] = row.mime_type;
  o["size"] = row.size_bytes;
  o["idempotency_key"] = row.idempotency_key;
  o["created_at_ms"] = row.created_at_ms;
  o["url"] = "/api/attachments/" + std::to_string(row.id) + "/file";
  return o;
}

json::object message_json(HelpdeskStore& store, const MessageRow& row) {
  json::object o;
  o["id"] = row.id;
  o["conversation_id"] = row.conversation_id;
  o["inbox"] = row.inbox;
  if (row.contact.empty()) {
    o["contact"] = nullptr;
  } else {
    o["contact"] = row.contact;
  }
  o["plugin_id"] = row.plugin_id;
  o["external_key"] = row.external_key;
  o["direction"] = direction_name(row.direction);
  if (row.call_status) {
    o["call_status"] = *row.call_status;
  } else {
    o["call_status"] = nullptr;
  }
  if (row.duration_s) {
    o["duration_s"] = *row.duration_s;
  } else {
    o["duration_s"] = nullptr;
  }
  o["recording_status"] = recording_status_name(row.recording_status);
  o["recording_status_code"] = row.recording_status;
  o["recording_reason"] = row.recording_reason;
  o["recording_detail"] = row.recording_detail;
  // Where the page's "Try again" posts, as the plugin said (hdp.messages/3); null for none.
  if (row.retry_path.empty()) {
    o["retry_url"] = nullptr;
  } else {
    o["retry_url"] = row.retry_path;
  }
  o["created_at_ms"] = row.created_at_ms;
  o["updated_at_ms"] = row.updated_at_ms;
  json::array attachments;
  for (const AttachmentRow& a : store.message_attachments(row.id)) attachments.push_back(attachment_json(a));
  o["attachments"] = std::move(attachments);
  return o;
}

json::object conversation_json(const ConversationRow& row) {
  json::object o;
  o["id"] = row.id;
  o["inbox"] = row.inbox;
  if (row.contact.empty()) {
    o["contact"] = nullptr;
  } else {
    o["contact"] = row.contact;
  }
  o["unknown_contact"] = row.contact.empty();
  o["created_at_ms"] = row.created_at_ms;
  o["last_activity_ms"] = row.last_activity_ms;
  o["message_count"] = row.message_count;
  return o;
}

HttpResponse json_response(unsigned status, const json::value& value) {
  return HttpResponse::json(status, json::serialize(value));
}

// Splits "/12/messages" into {"12", "messages"}.
std::vector<std::string_view> segments(std::string_view rest) {
  std::vector<std::string_view> out;
  while (!rest.empty()) {
    if (rest.front() == '/') {
      rest.remove_prefix(1);
      continue;
    }
    const size_t slash = rest.find('/');
    out.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash);
  }
  return out;
}

HttpResponse healthz(const ApiContext& context) {
  json::array plugins;
  for (const PluginInfo& p : context.plugins()) {
    json::object o;
    o["id"] = p.id;
    o["name"] = p.name;
    o["version"] = p.version;
    plugins.push_back(std::move(o));
  }
  json::object body;
  body["status"] = "ok";
  body["plugins"] = std::move(plugins);
  return json_response(200, body);
}

// GET /api/conversations and /api/conversations/{id}/messages [reader]
HttpResponse conversations(HelpdeskStore& store, const HttpRequest& request) {
  const auto parts = segments(std::string_view(request.path).substr(std::string_view("/api/conversations").size()));
  if (parts.empty()) {
    json::array list;
    for (const ConversationRow& row : store.conversations()) list.push_back(conversation_json(row));
    json::object body;
    body["conversations"] = std::move(list);
    return json_response(200, body);
  }
  const auto id = parse_id(parts[0]);
  if (!id || parts.size() != 2 || parts[1] != "messages") return HttpResponse::error(404, "not found");
  const auto conversation = store.conversation(*id);
  if (!conversation) return HttpResponse::error(404, "no such conversation");
  json::array messages;
  for (const MessageRow& row : store.conversation_messages(*id)) messages.push_back(message_json(store, row));
  json::object body;
  body["conversation"] = conversation_json(*conversation);
  body["messages"] = std::move(messages);
  return json_response(200, body);
}

// GET /api/messages/{id} and /api/messages?external_key=K[&plugin_id=P] [reader]
HttpResponse messages(HelpdeskStore& store, const HttpRequest& request) {
  const auto parts = segments(std::string_view(request.path).substr(std::string_view("/api/messages").size()));
  if (parts.size() == 1) {
    const auto id = parse_id(parts[0]);
    if (!id) return HttpResponse::error(404, "not found");
    const auto row = store.message(*id);
    if (!row) return HttpResponse::error(404, "no such message");
    return json_response(200, message_json(store, *row));
  }
  if (!parts.empty()) return HttpResponse::error(404, "not found");
  const auto params = parse_query(request.query);
  if (!params) return HttpResponse::error(400, "malformed query");
  const auto key = params->find("external_key");
  if (key == params->end() || key->second.empty()) {
    return HttpResponse::error(400, "external_key is required");
  }
  const auto plugin = params->find("plugin_id");
  const auto rows = store.messages_by_key(key->second, plugin == params->end() ? "" : plugin->second);
  if (rows.empty()) return HttpResponse::error(404, "no such message");
  if (rows.size() > 1) return HttpResponse::error(409, "several plugins use this key; add plugin_id");
  return json_response(200, message_json(store, rows.front()));
}

// GET /api/attachments/{id}/file [reader]: the row; the loop streams the file.
HttpResponse attachment_file(HelpdeskStore& store, const HttpRequest& request) {
  const auto parts = segments(std::string_view(request.path).substr(std::string_view("/api/attachments").size()));
  const auto id = parts.empty() ? std::nullopt : parse_id(parts[0]);
  if (!id || parts.size() != 2 || parts[1] != "file") return HttpResponse::error(404, "not found");
  const auto row = store.attachment(*id);
  if (!row) return HttpResponse::error(404, "no such attachment");
  HttpResponse response;
  response.content_type = row->mime_type;
  response.file = row->stored_path;
  std::string name;
  for (const char c : row->file_name) name += (c == '"' || c == '\\') ? '_' : c;
  response.headers.emplace_back("Content-Disposition", "inline; filename=\"" + name + "\"");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

json::object clock_json(const Clock& clock) {
  json::object o;
  o["monotonic_us"] = clock.monotonic_us();
  o["monotonic_ms"] = clock.monotonic_us() / 1000;
  o["wall_ms"] = clock.wall_us() / 1000;
  return o;
}

HttpResponse clock_advance(const ApiContext& context, const HttpRequest& request) {
  const auto params = parse_query(request.query);
  const auto ms = params ? params->find("ms") : std::map<std::string, std::string>::const_iterator{};
  if (!params || ms == params->end()) return HttpResponse::error(400, "ms is required");
  uint64_t value = 0;
  const std::string& text = ms->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  constexpr uint64_t kMaxAdvanceMs = 1000ULL * 3600 * 24 * 366 * 10;
  if (ec != std::errc() || end != text.data() + text.size() || value > kMaxAdvanceMs) {
    return HttpResponse::error(400, "ms must be a whole number of milliseconds, at most ten years");
  }
  context.timers.advance(value);
  return json_response(200, clock_json(context.clock));
}

// GET /__test/timers: how many timers each plugin has armed (tests prove "one timer, not one per
// call" without reaching into a plugin).
HttpResponse armed_timers(const ApiContext& context) {
  json::array plugins;
  for (const PluginInfo& p : context.plugins()) {
    json::object o;
    o["id"] = p.id;
    o["armed"] = context.timers.armed_count(p.owner);
    plugins.push_back(std::move(o));
  }
  json::object body;
  body["armed"] = context.timers.armed_count();
  body["plugins"] = std::move(plugins);
  return json_response(200, body);
}

// A route whose answer read computes from the store, on the reader: the request waits there (off
// the loop on PostgreSQL) and is answered when the read is done; a read that fails is 503.
AsyncHostHandler reading(const std::shared_ptr<const ApiContext>& context,
                         HttpResponse (*read)(HelpdeskStore&, const HttpRequest&)) {
  return [context, read](HttpRequest&& request, HostReply reply) {
    // Shared by the job (the reader's thread, while it runs) and the completion (the loop, after).
    auto held = std::make_shared<const HttpRequest>(std::move(request));
    auto answer = std::make_shared<HttpResponse>();
    context->reader.submit([held, answer, read](ReadStores& stores) { *answer = read(stores.store, *held); },
                           [context, held, answer, reply = std::move(reply)](const std::string& error) {
                             if (error.empty()) {
                               reply(std::move(*answer));
                               return;
                             }
                             context->log.error("cannot read " + held->method + " " + held->path +
                                                " from the helpdesk database: " + error);
                             reply(HttpResponse::try_again("the helpdesk database is unavailable; try again"));
                           });
  };
}

}  // namespace

void register_api_routes(Router& router, ApiContext context) {
  auto shared = std::make_shared<const ApiContext>(std::move(context));
  // Every route is for signed-in agents unless said otherwise (AgentAuth decides).
  auto add = [&router](std::string method, std::string path, RouteMatch match, HostHandler handler,
                       RouteAccess access = RouteAccess::agent) {
    RouteSpec spec{std::move(method), std::move(path), match, 0};
    spec.access = access;
    spec.on_internet_listener = spec.path == "/healthz";
    spec.sign_in_redirect = spec.path == "/";
    router.add_host_route(std::move(spec), std::move(handler));
  };
  add(
      "GET", "/healthz", RouteMatch::exact, [shared](const HttpRequest&) { return healthz(*shared); },
      RouteAccess::open);
  add("GET", "/", RouteMatch::exact, [](const HttpRequest&) {
    HttpResponse page;
    page.content_type = "text/html; charset=utf-8";
    page.body = inbox_page_html();
    page.headers.emplace_back("Cache-Control", "no-store");
    page.headers.emplace_back("X-Frame-Options", "DENY");
    return page;
  });
  auto add_read = [&router, &shared](std::string path, HttpResponse (*read)(HelpdeskStore&, const HttpRequest&)) {
    RouteSpec spec{"GET", std::move(path), RouteMatch::prefix, 0};
    spec.access = RouteAccess::agent;
    router.add_async_host_route(std::move(spec), reading(shared, read));
  };
  add_read("/api/conversations", conversations);
  add_read("/api/messages", messages);
  add_read("/api/attachments", attachment_file);
  if (shared->test_clock_routes) {
    // Test mode only, never on the internet listener: tests drive time without signing in.
    add(
        "GET", "/__test/clock", RouteMatch::exact,
        [shared](const HttpRequest&) { return json_response(200, clock_json(shared->clock)); }, RouteAccess::open);
    add(
        "POST", "/__test/clock/advance", RouteMatch::exact,
        [shared](const HttpRequest& r) { return clock_advance(*shared, r); }, RouteAccess::open);
    add(
        "GET", "/__test/timers", RouteMatch::exact, [shared](const HttpRequest&) { return armed_timers(*shared); },
        RouteAccess::open);
  }
}

}  // namespace hdp::host

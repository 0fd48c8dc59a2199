#include "agent_auth.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "agent_store.hpp"
#include "api_routes.hpp"
#include "clock.hpp"
#include "log.hpp"
#include "password_checker.hpp"
#include "store_reader.hpp"

namespace hdp::host {
namespace json = boost::json;
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_form(const HttpRequest& request) {
  const std::string_view type = header_value(request, "Content-Type");
  return iequals(trim(type.substr(0, type.find(';'))), "application/x-www-form-urlencoded");
}

bool is_json(const HttpRequest& request) {
  const std::string_view type = header_value(request, "Content-Type");
  return iequals(trim(type.substr(0, type.find(';'))), "application/json");
}

bool is_loopback(std::string_view address) {
  return address.starts_with("127.") || address == "::1" || address.starts_with("::ffff:127.");
}

// A name for log lines: the name itself when it is a valid agent name (no control characters,
// bounded), otherwise only that it was not.
std::string loggable_name(std::string_view name) {
  return is_valid_agent_name(name) ? "\"" + std::string(name) + "\"" : std::string("(not a valid name)");
}

HttpResponse json_answer(unsigned status, const json::object& body) {
  return HttpResponse::json(status, json::serialize(body));
}

HttpResponse redirect(std::string location) {
  HttpResponse r;
  r.status = 303;
  r.headers.emplace_back("Location", std::move(location));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

std::string session_cookie(std::string_view token, bool secure) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(token) + "; Path=/; HttpOnly; SameSite=Strict";
  if (secure) c += "; Secure";
  return c;
}

std::string expired_cookie(bool secure) {
  std::string c = std::string(kSessionCookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
  if (secure) c += "; Secure";
  return c;
}

// Only fixed texts, chosen by code: nothing of the request is reflected into the page.
std::string sign_in_page_html(std::string_view error_code) {
  std::string message;
  if (error_code == "wrong")
    message = "Wrong name or password.";
  else if (error_code == "slow")
    message = "Too many failed sign-ins. Wait a little and try again.";
  else if (error_code == "bad")
    message = "Enter your name and your password.";
  else if (error_code == "out")
    message = "You are signed out.";
  std::string page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Helpdesk inbox</title>
<style>
  body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f6fa; color: #1d2433;
         margin: 0; display: flex; min-height: 100vh; align-items: center; justify-content: center; }
  form { background: #fff; border: 1px solid #dfe3ea; border-radius: 10px; padding: 28px 32px; width: 300px; }
  h1 { font-size: 1.2rem; margin: 0 0 18px; }
  label { display: block; font-size: .85rem; font-weight: 600; margin: 12px 0 4px; }
  input { font: inherit; width: 100%; box-sizing: border-box; padding: 7px 9px; border: 1px solid #c4cbd8; border-radius: 6px; }
  button { font: inherit; font-weight: 600; margin-top: 20px; width: 100%; padding: 8px; color: #fff; background: #2f6fed;
           border: 0; border-radius: 6px; cursor: pointer; }
  p.message { color: #b42318; font-size: .9rem; margin: 0 0 8px; }
</style>
</head>
<body>
<form method="post" action="/login" id="sign-in">
  <h1>Helpdesk inbox</h1>
)html";
  if (!message.empty()) page += "  <p class=\"message\" id=\"message\">" + message + "</p>\n";
  page += R"html(  <label for="name">Name</label>
  <input id="name" name="name" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
</body>
</html>
)html";
  return page;
}

}  // namespace

std::string_view header_value(const HttpRequest& request, std::string_view name) {
  for (const auto& [n, v] : request.headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

std::string_view cookie_value(const HttpRequest& request, std::string_view name) {
  for (const auto& [n, v] : request.headers) {
    if (!iequals(n, "Cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      const std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    }
  }
  return {};
}

AgentAuth::AgentAuth(AgentStore& agents, const Clock& clock, Logger& log, AgentAuthOptions options,
                     SessionLimits sessions, ThrottleLimits throttle, std::unique_ptr<SessionStore> session_store)
    : agents_(agents),
      clock_(clock),
      log_(log),
      options_(std::move(options)),
      sessions_(session_store ? std::move(session_store) : std::make_unique<AgentSessions>(sessions)),
      throttle_(throttle) {}

int64_t AgentAuth::now_ms() const {
  return clock_.wall_us() / 1000;
}

AgentAuth::SessionCheck AgentAuth::check_session(SessionStore& sessions, AgentStore& agents, std::string_view token,
                                                 int64_t now_ms) {
  SessionCheck check;
  if (token.empty()) return check;
  check.session = sessions.find(token, now_ms);
  if (check.session && !agents.still_exists(check.session->agent_id, check.session->agent_name)) {
    sessions.end(token);
    check.account_removed = true;
  }
  return check;
}

std::optional<HttpResponse> AgentAuth::admit_operator(const RouteSpec& route, const HttpRequest& request) {
  // A reverse proxy on this machine connects from loopback: what it forwards is not local.
  const bool forwarded =
      !header_value(request, "Forwarded").empty() || !header_value(request, "X-Forwarded-For").empty();
  if (is_loopback(request.peer_address) && !forwarded) return std::nullopt;
  const std::string_view authorization = header_value(request, "Authorization");
  if (options_.metrics_token && authorization.starts_with("Bearer ") &&
      constant_time_equal(trim(authorization.substr(7)), *options_.metrics_token)) {
    return std::nullopt;
  }
  log_.warning("refused " + request.method + " " + route.path + " from " + request.peer_address +
               (options_.metrics_token ? ": missing or wrong bearer token" : ": only served to loopback"));
  HttpResponse refusal =
      HttpResponse::error(401, options_.metrics_token ? "a bearer token is required" : "served to this machine only");
  refusal.headers.emplace_back("WWW-Authenticate", "Bearer");
  return refusal;
}

std::optional<HttpResponse> AgentAuth::sessions_unavailable(const RouteSpec& route, const HttpRequest& request,
                                                            const std::string& why) {
  // The shared database of sessions is unreachable (or too slow).
  log_.error("cannot check the session of " + request.method + " " + route.path + ": " + why);
  return HttpResponse::try_again("sessions are unavailable; try again");
}

std::optional<HttpResponse> AgentAuth::admit(const RouteSpec& route, HttpRequest& request) {
  if (route.access == RouteAccess::open) return std::nullopt;
  if (route.access == RouteAccess::operator_only) return admit_operator(route, request);
  SessionCheck check;
  try {
    check = check_session(*sessions_, agents_, cookie_value(request, kSessionCookie), now_ms());
  } catch (const std::exception& e) {
    return sessions_unavailable(route, request, e.what());
  }
  return decide(route, request, check);
}

void AgentAuth::admit_later(const RouteSpec& route, HttpRequest& request, Decide decide_now) {
  const std::string_view token = cookie_value(request, kSessionCookie);
  // Nothing to look up: decided here.
  if (reader_ == nullptr || route.access == RouteAccess::open || route.access == RouteAccess::operator_only ||
      token.empty()) {
    decide_now(admit(route, request));
    return;
  }
  // The clock is read here, when the request came: expiry is measured as on the loop.
  auto check = std::make_shared<SessionCheck>();
  reader_->submit([check, token = std::string(token), now = now_ms()](
                      ReadStores& stores) { *check = check_session(stores.sessions, stores.agents, token, now); },
                  [this, check, route, &request, decide_now = std::move(decide_now)](const std::string& error) {
                    if (!error.empty()) {
                      decide_now(sessions_unavailable(route, request, error));
                      return;
                    }
                    decide_now(decide(route, request, *check));
                  });
}

std::optional<HttpResponse> AgentAuth::decide(const RouteSpec& route, HttpRequest& request, const SessionCheck& check) {
  if (check.account_removed) {
    log_.info("session of agent \"" + check.session->agent_name + "\" ended: the account was removed");
  }
  const std::optional<AgentSession> session = check.account_removed ? std::nullopt : check.session;
  if (!session) {
    if (route.access == RouteAccess::agent_or_plugin) return std::nullopt;  // the plugin decides
    log_.info("refused " + request.method + " " + route.path + " from " + request.peer_address + ": not signed in");
    if (route.sign_in_redirect && (request.method == "GET" || request.method == "HEAD")) return redirect("/login");
    return HttpResponse::error(401, "sign in first");
  }
  if (request.method != "GET" && request.method != "HEAD") {
    std::string_view token = header_value(request, kCsrfHeader);
    std::optional<std::map<std::string, std::string>> form;
    if (token.empty() && is_form(request)) {
      form = parse_query(request.body);
      if (form && form->contains("csrf_token")) token = form->at("csrf_token");
    }
    if (!constant_time_equal(token, session->csrf_token)) {
      log_.warning("refused " + request.method + " " + route.path + " of agent \"" + session->agent_name + "\" from " +
                   request.peer_address + ": " + (token.empty() ? "no" : "wrong") + " CSRF token");
      return HttpResponse::error(403, "missing or wrong CSRF token");
    }
  }
  request.agent_name = session->agent_name;
  request.agent_csrf_token = session->csrf_token;
  return std::nullopt;
}

void AgentAuth::set_password_checker(std::unique_ptr<PasswordChecker> checker) {
  checker_ = std::move(checker);
}

AgentAuth::~AgentAuth() {
  checker_.reset();  // first: its thread joined, no completion from then on
}

void AgentAuth::sign_in(HttpRequest&& request, HostReply reply) {
  SignIn s;
  s.form = !is_json(request);
  bool complete = false;
  if (s.form) {
    const auto fields = parse_query(request.body);
    if (fields && fields->contains("name") && fields->contains("password")) {
      s.name = fields->at("name");
      s.password = fields->at("password");
      complete = true;
    }
  } else {
    boost::system::error_code ec;
    const json::value body = json::parse(request.body, ec);
    if (!ec && body.is_object() && body.as_object().contains("name") && body.at("name").is_string() &&
        body.as_object().contains("password") && body.at("password").is_string()) {
      s.name = body.at("name").as_string();
      s.password = body.at("password").as_string();
      complete = true;
    }
  }
  if (!complete || s.name.empty() || s.password.empty()) {
    log_.warning("refused a sign-in from " + request.peer_address + ": not a name and a password");
    reply(s.form ? redirect("/login?error=bad")
                 : HttpResponse::error(400, "expected {\"name\": string, \"password\": string}"));
    return;
  }
  s.name_key = is_valid_agent_name(s.name) ? s.name : std::string();
  s.peer_address = std::move(request.peer_address);
  s.reply = std::move(reply);
  sign_ins_.push_back(std::move(s));
  next_sign_ins();
}

void AgentAuth::next_sign_ins() {
  while (!checking_ && !sign_ins_.empty()) {
    SignIn s = std::move(sign_ins_.front());
    sign_ins_.pop_front();
    // Asked now, after every sign-in before this one has counted its failure or success: as if
    // they had come one after the other.
    if (auto refusal = throttled(s)) {
      s.reply(std::move(*refusal));
      continue;
    }
    if (!checker_) {  // on the loop
      std::optional<AgentRow> agent;
      std::string error;
      try {
        agent = agents_.verify(s.name, s.password);
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "the accounts cannot be read";
      }
      checked(s, agent, error);
      continue;
    }
    checking_ = true;
    std::string password = std::move(s.password);
    std::string name = s.name;
    auto waiting = std::make_shared<SignIn>(std::move(s));
    checker_->check(std::move(name), std::move(password),
                    [this, waiting](std::optional<AgentRow> agent, const std::string& error) {
                      checking_ = false;
                      checked(*waiting, agent, error);
                      next_sign_ins();
                    });
  }
}

void AgentAuth::checked(const SignIn& s, const std::optional<AgentRow>& agent, const std::string& error) {
  std::string why = error;
  if (why.empty() && agent && reader_ != nullptr && reader_->on_thread()) {
    // On PostgreSQL the session's INSERT is a round trip to the server: on the reader's thread,
    // never the loop; the answer follows it.
    throttle_.succeeded(s.name_key);
    auto created = std::make_shared<SessionStore::Created>();
    reader_->submit([created, id = agent->id, agent_name = agent->name,
                     now = now_ms()](ReadStores& stores) { *created = stores.sessions.create(id, agent_name, now); },
                    [this, created, agent_name = agent->name, name = s.name, form = s.form, peer = s.peer_address,
                     reply = s.reply](const std::string& failure) {
                      if (failure.empty()) {
                        reply(session_made(form, agent_name, peer, *created));
                      } else {
                        reply(sign_in_unavailable(name, peer, failure));
                      }
                    });
    return;
  }
  if (why.empty()) {
    try {
      s.reply(signed_in(s, agent));
      return;
    } catch (const std::exception& e) {
      why = e.what();  // the session could not be stored (PostgreSQL unreachable)
    }
  }
  s.reply(sign_in_unavailable(s.name, s.peer_address, why));
}

HttpResponse AgentAuth::sign_in_unavailable(const std::string& name, const std::string& peer_address,
                                            const std::string& why) {
  // Not the agent's failure: nothing counted.
  log_.error("cannot check the sign-in of " + loggable_name(name) + " from " + peer_address + ": " + why);
  return HttpResponse::try_again("sign-in is unavailable; try again");
}

std::optional<HttpResponse> AgentAuth::throttled(const SignIn& s) {
  const int64_t wait = throttle_.wait_ms(s.name_key, s.peer_address, now_ms());
  if (wait <= 0) return std::nullopt;
  const int64_t seconds = (wait + 999) / 1000;
  log_.warning("refused a sign-in for " + loggable_name(s.name) + " from " + s.peer_address + ": too many failures, " +
               std::to_string(seconds) + " s to wait");
  HttpResponse slow =
      s.form ? redirect("/login?error=slow")
             : HttpResponse::error(429, "too many failed sign-ins; try again in " + std::to_string(seconds) + " s");
  slow.headers.emplace_back("Retry-After", std::to_string(seconds));
  return slow;
}

HttpResponse AgentAuth::signed_in(const SignIn& s, const std::optional<AgentRow>& agent) {
  if (!agent) {
    throttle_.failed(s.name_key, s.peer_address, now_ms());
    log_.warning("failed sign-in for " + loggable_name(s.name) + " from " + s.peer_address +
                 ": wrong name or password");
    if (s.form) return redirect("/login?error=wrong");
    return HttpResponse::error(401, "wrong name or password");
  }
  throttle_.succeeded(s.name_key);
  return session_made(s.form, agent->name, s.peer_address, sessions_->create(agent->id, agent->name, now_ms()));
}

HttpResponse AgentAuth::session_made(bool form, const std::string& agent_name, const std::string& peer_address,
                                     const SessionStore::Created& created) {
  log_.info("agent \"" + agent_name + "\" signed in from " + peer_address);
  HttpResponse answer;
  if (form) {
    answer = redirect("/");
  } else {
    json::object body;
    body["agent"] = agent_name;
    body["csrf_token"] = created.session.csrf_token;
    answer = json_answer(200, body);
  }
  answer.headers.emplace_back("Set-Cookie", session_cookie(created.token, options_.secure_cookie));
  return answer;
}

void AgentAuth::sign_out(HttpRequest&& request, HostReply reply) {
  // The gate has checked the session and its CSRF token.
  const std::string token(cookie_value(request, kSessionCookie));
  if (reader_ == nullptr || !reader_->on_thread()) {
    sessions_->end(token);
    reply(signed_out(request));
    return;
  }
  // On PostgreSQL the DELETE is a round trip to the server: on the reader's thread, never the loop.
  auto held = std::make_shared<HttpRequest>(std::move(request));
  reader_->submit([token](ReadStores& stores) { stores.sessions.end(token); },
                  [this, held, reply = std::move(reply)](const std::string& error) {
                    if (error.empty()) {
                      reply(signed_out(*held));
                      return;
                    }
                    log_.error("cannot sign out agent \"" + held->agent_name + "\": " + error);
                    reply(HttpResponse::try_again("sign-out is unavailable; try again"));
                  });
}

HttpResponse AgentAuth::signed_out(const HttpRequest& request) {
  log_.info("agent \"" + request.agent_name + "\" signed out");
  HttpResponse answer;
  if (is_form(request)) {
    answer = redirect("/login?error=out");
  } else {
    json::object body;
    body["status"] = "signed out";
    answer = json_answer(200, body);
  }
  answer.headers.emplace_back("Set-Cookie", expired_cookie(options_.secure_cookie));
  return answer;
}

HttpResponse AgentAuth::session_info(const HttpRequest& request) {
  // The gate has found the session (and named its agent and token): no second lookup.
  if (request.agent_name.empty()) return HttpResponse::error(401, "sign in first");
  json::object body;
  body["agent"] = request.agent_name;
  body["csrf_token"] = request.agent_csrf_token;
  HttpResponse answer = json_answer(200, body);
  answer.headers.emplace_back("Cache-Control", "no-store");
  return answer;
}

void AgentAuth::register_routes(Router& router) {
  RouteSpec page{"GET", "/login", RouteMatch::exact, 0};
  page.access = RouteAccess::open;
  router.add_host_route(page, [](const HttpRequest& request) {
    const auto params = parse_query(request.query);
    std::string error;
    if (params && params->contains("error")) error = params->at("error");
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = sign_in_page_html(error);
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'");
    return r;
  });
  RouteSpec post{"POST", "/login", RouteMatch::exact, 16 * 1024};
  post.access = RouteAccess::open;
  router.add_async_host_route(
      post, [this](HttpRequest&& request, HostReply reply) { sign_in(std::move(request), std::move(reply)); });
  RouteSpec logout{"POST", "/logout", RouteMatch::exact, 16 * 1024};
  logout.access = RouteAccess::agent;
  router.add_async_host_route(
      logout, [this](HttpRequest&& request, HostReply reply) { sign_out(std::move(request), std::move(reply)); });
  RouteSpec info{"GET", "/api/session", RouteMatch::exact, 0};
  info.access = RouteAccess::agent;
  router.add_host_route(info, [this](const HttpRequest& request) { return session_info(request); });
}

}  // namespace hdp::host

// Who may use the host's agent-facing side: sign-in and sign-out (GET/POST /login, POST /logout,
// GET /api/session), the session cookie, the CSRF check on state-changing requests, the slowing of
// failed sign-ins, and the operator check of GET /metrics. The router asks it before serving any
// route that is not open (AccessGate).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent_sessions.hpp"
#include "http_types.hpp"
#include "router.hpp"
#include "sign_in_throttle.hpp"

namespace hdp::host {

class AgentStore;
class Clock;
class Logger;
class StoreReader;

struct AgentAuthOptions {
  // The host is served over HTTPS (by a reverse proxy): the cookie gets Secure.
  bool secure_cookie = false;
  // GET /metrics from elsewhere than loopback needs "Authorization: Bearer <token>"; nullopt:
  // loopback only.
  std::optional<std::string> metrics_token;
};

constexpr const char* kSessionCookie = "hdp_session";
constexpr const char* kCsrfHeader = "X-CSRF-Token";

class AgentAuth final : public AccessGate {
 public:
  // agents, clock and log must outlive this. Sessions are kept in session_store, or in memory
  // (AgentSessions with the limits given) when it is null.
  AgentAuth(AgentStore& agents, const Clock& clock, Logger& log, AgentAuthOptions options, SessionLimits sessions = {},
            ThrottleLimits throttle = {}, std::unique_ptr<SessionStore> session_store = nullptr);

  // On the loop, whatever the store (tests, and hosts without a reader).
  std::optional<HttpResponse> admit(const RouteSpec& route, HttpRequest& request) override;
  // Through the reader when one is set: the session (and its account) is looked up there, and the
  // request waits for it; the decision itself (expiry, CSRF, log lines) is the same as admit's.
  void admit_later(const RouteSpec& route, HttpRequest& request, Decide decide) override;

  // Session checks go through reader (which must outlive this) from now on; null: on the loop.
  // On PostgreSQL the reader has its own connection and session store: sign-in and sign-out keep
  // using this object's, on the loop. [main-thread]
  void set_reader(StoreReader* reader) { reader_ = reader; }
  // The sessions that sign-in creates and sign-out ends.
  SessionStore& sessions() { return *sessions_; }

  // GET /login, POST /login, POST /logout and GET /api/session. This object must outlive router.
  void register_routes(Router& router);

 private:
  HttpResponse sign_in(const HttpRequest& request);
  HttpResponse sign_out(const HttpRequest& request);
  HttpResponse session_info(const HttpRequest& request);
  // What the cookie's session is: none, an agent's, or one whose account was removed (ended
  // here). Runs wherever sessions and agents may be used (the loop, or the reader's thread).
  struct SessionCheck {
    std::optional<AgentSession> session;
    bool account_removed = false;
  };
  static SessionCheck check_session(SessionStore& sessions, AgentStore& agents, std::string_view token, int64_t now_ms);
  // The gate's decision once the session is known. [main-thread]
  std::optional<HttpResponse> decide(const RouteSpec& route, HttpRequest& request, const SessionCheck& check);
  std::optional<HttpResponse> sessions_unavailable(const RouteSpec& route, const HttpRequest& request,
                                                   const std::string& why);
  std::optional<HttpResponse> admit_operator(const RouteSpec& route, const HttpRequest& request);
  int64_t now_ms() const;

  AgentStore& agents_;
  const Clock& clock_;
  Logger& log_;
  AgentAuthOptions options_;
  std::unique_ptr<SessionStore> sessions_;
  SignInThrottle throttle_;
  StoreReader* reader_ = nullptr;
};

// The value of the first header called name (case-insensitive), or "" when absent.
std::string_view header_value(const HttpRequest& request, std::string_view name);
// The value of cookie name in the request's Cookie headers, or "" when absent.
std::string_view cookie_value(const HttpRequest& request, std::string_view name);

}  // namespace hdp::host

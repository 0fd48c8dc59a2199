// Who may use the host's agent-facing side: sign-in and sign-out (GET/POST /login, POST /logout,
// GET /api/session), the session cookie, the CSRF check on state-changing requests, the slowing of
// failed sign-ins, and the operator check of GET /metrics. The router asks it before serving any
// route that is not open (AccessGate).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "agent_sessions.hpp"
#include "agent_store.hpp"
#include "http_types.hpp"
#include "router.hpp"
#include "sign_in_throttle.hpp"

namespace hdp::host {

class Clock;
class Logger;
class PasswordChecker;
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
  // Ends the password check running (PasswordChecker's destructor): no sign-in completes after.
  ~AgentAuth() override;

  // On the loop, whatever the store (tests, and hosts without a reader).
  std::optional<HttpResponse> admit(const RouteSpec& route, HttpRequest& request) override;
  // Through the reader when one is set: the session (and its account) is looked up there, and the
  // request waits for it; the decision itself (expiry, CSRF, log lines) is the same as admit's.
  void admit_later(const RouteSpec& route, HttpRequest& request, Decide decide) override;

  // Session checks, the sessions sign-ins make and sign-outs go through reader (which must outlive
  // this) from now on when it has a thread (PostgreSQL: its own connection and session store);
  // null or inline: this object's, on the loop. [main-thread]
  void set_reader(StoreReader* reader) { reader_ = reader; }
  // Passwords are checked through checker from now on (a thread of its own); none: on the loop,
  // inside the request. [main-thread]
  void set_password_checker(std::unique_ptr<PasswordChecker> checker);
  // The sessions that sign-in creates and sign-out ends.
  SessionStore& sessions() { return *sessions_; }

  // GET /login, POST /login, POST /logout and GET /api/session. This object must outlive router.
  void register_routes(Router& router);

 private:
  // A sign-in whose name and password were read; it waits its turn (one at a time, in order).
  struct SignIn {
    bool form = false;
    std::string name;
    std::string name_key;  // the name for the throttle: "" for a name that is not valid
    std::string password;
    std::string peer_address;
    HostReply reply;
  };
  void sign_in(HttpRequest&& request, HostReply reply);
  // Starts the next sign-ins in turn, while none is being checked: each is first asked of the
  // throttle, then its password is checked. [main-thread]
  void next_sign_ins();
  // The throttle's refusal of s now, or nullopt when it may be tried.
  std::optional<HttpResponse> throttled(const SignIn& s);
  // Answers s once its password was checked (error: it could not be).
  void checked(const SignIn& s, const std::optional<AgentRow>& agent, const std::string& error);
  // Once its password was checked: counts a failure or makes the session (on the loop).
  HttpResponse signed_in(const SignIn& s, const std::optional<AgentRow>& agent);
  // The answer to a sign-in whose session was made: its cookie and CSRF token.
  HttpResponse session_made(bool form, const std::string& agent_name, const std::string& peer_address,
                            const SessionStore::Created& created);
  // 503: the sign-in could not be checked or its session not stored (not the agent's failure).
  HttpResponse sign_in_unavailable(const std::string& name, const std::string& peer_address, const std::string& why);
  // Ends the session through the reader when it has a thread (PostgreSQL: the DELETE is a round
  // trip), else at once; answers once it is ended.
  void sign_out(HttpRequest&& request, HostReply reply);
  HttpResponse signed_out(const HttpRequest& request);
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
  // Sign-ins wait here while another is checked: the throttle is asked about each only once every
  // sign-in before it has counted, so parallel attempts are slowed exactly as sequential ones.
  std::deque<SignIn> sign_ins_;
  bool checking_ = false;
  // Last: destroyed first (its thread joined, no completion after) while what its completions
  // reach is still here.
  std::unique_ptr<PasswordChecker> checker_;
};

// The value of the first header called name (case-insensitive), or "" when absent.
std::string_view header_value(const HttpRequest& request, std::string_view name);
// The value of cookie name in the request's Cookie headers, or "" when absent.
std::string_view cookie_value(const HttpRequest& request, std::string_view name);

}  // namespace hdp::host

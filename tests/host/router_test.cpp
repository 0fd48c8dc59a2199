// Router: path matching, route precedence, 404/405, duplicates, the borrowed request view, and
// deferred answers (later respond, timeout with 503 + on_cancel, client gone, second respond), host
// routes that answer later, and a gate that decides later.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "clock.hpp"
#include "log.hpp"
#include "router.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace {

TEST(RoutePathMatches, ExactAndPrefix) {
  EXPECT_TRUE(route_path_matches("/a/b", RouteMatch::exact, "/a/b"));
  EXPECT_FALSE(route_path_matches("/a/b", RouteMatch::exact, "/a/b/c"));
  EXPECT_TRUE(route_path_matches("/a", RouteMatch::prefix, "/a"));
  EXPECT_TRUE(route_path_matches("/a", RouteMatch::prefix, "/a/b"));
  EXPECT_FALSE(route_path_matches("/a", RouteMatch::prefix, "/ab"));  // only after a '/'
  EXPECT_TRUE(route_path_matches("/a/", RouteMatch::prefix, "/a/b"));
  EXPECT_FALSE(route_path_matches("/a/b", RouteMatch::prefix, "/a"));
  EXPECT_TRUE(route_path_matches("/", RouteMatch::prefix, "/anything"));
}

// What a plugin route saw.
struct Seen {
  std::vector<uint64_t> requests;
  std::vector<uint64_t> cancels;
  std::string method, path, query, body, peer, agent;
  std::vector<std::pair<std::string, std::string>> headers;
  Router* router = nullptr;
  bool answer_now = false;
};

void on_request(void* user_data, const hdp_http_request_t* r) {
  auto* seen = static_cast<Seen*>(user_data);
  ASSERT_GE(r->struct_size, HDP_HTTP_REQUEST_V1_SIZE);
  seen->requests.push_back(r->request_id);
  seen->method.assign(r->method, r->method_len);
  seen->path.assign(r->path, r->path_len);
  seen->query.assign(r->query, r->query_len);
  seen->body.assign(reinterpret_cast<const char*>(r->body), r->body_len);
  seen->peer.assign(r->peer_address, r->peer_address_len);
  seen->headers.clear();
  for (size_t i = 0; i < r->header_count; ++i) {
    seen->headers.emplace_back(std::string(r->headers[i].name, r->headers[i].name_len),
                               std::string(r->headers[i].value, r->headers[i].value_len));
  }
  if (seen->answer_now) {
    hdp_http_response_t response{};
    response.struct_size = sizeof response;
    response.status = 201;
    response.body = reinterpret_cast<const uint8_t*>("now");
    response.body_len = 3;
    EXPECT_EQ(seen->router->respond(7, r->request_id, &response), HDP_OK);
  }
}

void on_cancel(void* user_data, uint64_t request_id) {
  static_cast<Seen*>(user_data)->cancels.push_back(request_id);
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() { seen.router = &router; }

  boost::asio::io_context io;
  VirtualClock clock{0};
  TimerService timers{io, clock};
  Logger log{LogLevel::error};
  Router router{timers, log, RouterLimits{4096, 1000}};
  Seen seen;

  uint64_t add_plugin_route(const std::string& method, const std::string& path, RouteMatch match, uint64_t owner = 7) {
    PluginRouteTarget target;
    target.owner = owner;
    target.owner_name = "test.plugin";
    target.on_request = on_request;
    target.on_cancel = on_cancel;
    target.user_data = &seen;
    uint64_t id = 0;
    EXPECT_EQ(router.add_plugin_route(RouteSpec{method, path, match, 0, RouteAccess::open}, target, &id), HDP_OK);
    return id;
  }

  // Dispatches and returns the responder with what it delivered.
  struct Exchange {
    std::shared_ptr<Responder> responder;
    std::shared_ptr<std::optional<HttpResponse>> delivered = std::make_shared<std::optional<HttpResponse>>();
  };
  Exchange dispatch(const std::string& method, const std::string& path, const std::string& query = {}) {
    Exchange exchange;
    exchange.responder =
        std::make_shared<Responder>([delivered = exchange.delivered](HttpResponse&& r) { *delivered = std::move(r); });
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.query = query;
    request.target = query.empty() ? path : path + "?" + query;
    request.headers = {{"Host", "x"}, {"X-Token", "secret"}};
    request.body = std::string("a\0b", 3);
    request.peer_address = "127.0.0.1";
    router.dispatch(std::move(request), exchange.responder);
    return exchange;
  }

  static hdp_http_response_t ok_response() {
    hdp_http_response_t response{};
    response.struct_size = sizeof response;
    response.status = 200;
    return response;
  }
};

TEST_F(RouterTest, ExactBeatsPrefixAndLongerPrefixBeatsShorter) {
  router.add_host_route({"GET", "/a", RouteMatch::prefix, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "a*"); });
  router.add_host_route({"GET", "/a/b", RouteMatch::prefix, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "ab*"); });
  router.add_host_route({"GET", "/a/b/c", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "abc"); });
  EXPECT_EQ(dispatch("GET", "/a/b/c").delivered->value().body, "abc");
  EXPECT_EQ(dispatch("GET", "/a/b/c/d").delivered->value().body, "ab*");
  EXPECT_EQ(dispatch("GET", "/a/x").delivered->value().body, "a*");
}

TEST_F(RouterTest, NamedMethodBeatsStarAndStarCatchesTheRest) {
  router.add_host_route({"*", "/r", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "star"); });
  router.add_host_route({"POST", "/r", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "post"); });
  EXPECT_EQ(dispatch("POST", "/r").delivered->value().body, "post");
  EXPECT_EQ(dispatch("DELETE", "/r").delivered->value().body, "star");
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  router.add_host_route({"GET", "/only-get", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, ""); });
  router.add_host_route({"PUT", "/only-get", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, ""); });
  EXPECT_EQ(dispatch("GET", "/nowhere").delivered->value().status, 404U);
  const auto exchange = dispatch("POST", "/only-get");
  EXPECT_EQ(exchange.delivered->value().status, 405U);
  ASSERT_EQ(exchange.delivered->value().headers.size(), 1U);
  EXPECT_EQ(exchange.delivered->value().headers[0], (HttpHeader{"Allow", "GET, PUT"}));
  // A less specific route that takes the method wins over 405.
  router.add_host_route({"*", "/", RouteMatch::prefix, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "fallback"); });
  EXPECT_EQ(dispatch("POST", "/only-get").delivered->value().body, "fallback");
}

TEST_F(RouterTest, HeadIsServedByTheGetRouteUnlessAHeadRouteExists) {
  router.add_host_route({"GET", "/page", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest& r) { return HttpResponse::text(200, "get saw " + r.method); });
  router.add_host_route({"*", "/page", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "star"); });
  router.add_host_route({"POST", "/form", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "post"); });
  // The handler sees the request as sent; the HTTP layer leaves the body out.
  EXPECT_EQ(dispatch("HEAD", "/page").delivered->value().body, "get saw HEAD");
  router.add_host_route({"HEAD", "/page", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "head"); });
  EXPECT_EQ(dispatch("HEAD", "/page").delivered->value().body, "head");
  EXPECT_EQ(dispatch("HEAD", "/form").delivered->value().status, 405U);
}

TEST_F(RouterTest, DuplicatesAndInvalidRoutesAreRefused) {
  add_plugin_route("POST", "/hook", RouteMatch::exact);
  PluginRouteTarget target;
  target.owner = 8;
  target.on_request = on_request;
  uint64_t id = 0;
  EXPECT_EQ(router.add_plugin_route({"POST", "/hook", RouteMatch::prefix, 0, RouteAccess::open}, target, &id),
            HDP_ERR_ALREADY_EXISTS);
  EXPECT_EQ(router.add_plugin_route({"GET", "/hook", RouteMatch::exact, 0, RouteAccess::open}, target, &id), HDP_OK);
  EXPECT_EQ(router.add_plugin_route({"GET", "no-slash", RouteMatch::exact, 0, RouteAccess::open}, target, &id),
            HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(router.add_plugin_route({"G ET", "/x", RouteMatch::exact, 0, RouteAccess::open}, target, &id),
            HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(router.add_plugin_route({"GET", "/x", static_cast<RouteMatch>(9), 0}, target, &id),
            HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(router.remove_route(7, id), HDP_ERR_NOT_FOUND);  // owner 8's route
  EXPECT_EQ(router.remove_route(8, id), HDP_OK);
  EXPECT_EQ(router.remove_route(8, id), HDP_ERR_NOT_FOUND);
}

TEST_F(RouterTest, PluginSeesTheBorrowedRequestView) {
  seen.answer_now = true;
  add_plugin_route("*", "/p", RouteMatch::prefix);
  const auto exchange = dispatch("PATCH", "/p/x%20y", "a=1&b=%20");
  ASSERT_EQ(seen.requests.size(), 1U);
  EXPECT_NE(seen.requests[0], 0U);
  EXPECT_EQ(seen.method, "PATCH");
  EXPECT_EQ(seen.path, "/p/x%20y");  // still percent-encoded
  EXPECT_EQ(seen.query, "a=1&b=%20");
  EXPECT_EQ(seen.body, std::string("a\0b", 3));
  EXPECT_EQ(seen.peer, "127.0.0.1");
  EXPECT_EQ(seen.headers[1], (std::pair<std::string, std::string>{"X-Token", "secret"}));
  ASSERT_TRUE(exchange.delivered->has_value());
  EXPECT_EQ(exchange.delivered->value().status, 201U);
  EXPECT_EQ(exchange.delivered->value().content_type, "application/octet-stream");
  EXPECT_EQ(router.deferred_count(7), 0U);
}

TEST_F(RouterTest, DeferredAnswerLaterThenSecondRespondIsNotFound) {
  add_plugin_route("POST", "/d", RouteMatch::exact);
  const auto exchange = dispatch("POST", "/d");
  EXPECT_FALSE(exchange.delivered->has_value());
  ASSERT_EQ(router.deferred_count(7), 1U);
  const uint64_t id = seen.requests.at(0);
  const hdp_http_response_t response = ok_response();
  EXPECT_EQ(router.respond(8, id, &response), HDP_ERR_NOT_FOUND);  // another plugin
  EXPECT_EQ(router.respond(7, id, &response), HDP_OK);
  EXPECT_EQ(exchange.delivered->value().status, 200U);
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_NOT_FOUND);
  timers.advance(5000);
  EXPECT_TRUE(seen.cancels.empty());  // the timeout was cancelled with the answer
}

TEST_F(RouterTest, DeferredTimeoutAnswers503AndCallsOnCancel) {
  add_plugin_route("POST", "/d", RouteMatch::exact);
  const auto exchange = dispatch("POST", "/d");
  const uint64_t id = seen.requests.at(0);
  timers.advance(999);
  EXPECT_FALSE(exchange.delivered->has_value());
  timers.advance(1);  // the router's default deferred timeout here is 1000 ms
  ASSERT_TRUE(exchange.delivered->has_value());
  EXPECT_EQ(exchange.delivered->value().status, 503U);
  EXPECT_EQ(seen.cancels, std::vector<uint64_t>{id});
  const hdp_http_response_t response = ok_response();
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_NOT_FOUND);
}

TEST_F(RouterTest, ClientGoneCallsOnCancel) {
  add_plugin_route("POST", "/d", RouteMatch::exact);
  const auto exchange = dispatch("POST", "/d");
  const uint64_t id = seen.requests.at(0);
  exchange.responder->client_gone();
  EXPECT_EQ(seen.cancels, std::vector<uint64_t>{id});
  EXPECT_FALSE(exchange.delivered->has_value());
  const hdp_http_response_t response = ok_response();
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_NOT_FOUND);
}

TEST_F(RouterTest, FailDeferredAnswers503ForOneOwner) {
  add_plugin_route("POST", "/d", RouteMatch::exact);
  const auto first = dispatch("POST", "/d");
  const auto second = dispatch("POST", "/d");
  router.fail_deferred(7);
  EXPECT_EQ(first.delivered->value().status, 503U);
  EXPECT_EQ(second.delivered->value().status, 503U);
  EXPECT_EQ(seen.cancels, seen.requests);
}

TEST_F(RouterTest, RespondValidatesTheResponse) {
  add_plugin_route("POST", "/d", RouteMatch::exact);
  dispatch("POST", "/d");
  const uint64_t id = seen.requests.at(0);
  hdp_http_response_t response = ok_response();
  EXPECT_EQ(router.respond(7, id, nullptr), HDP_ERR_INVALID_ARGUMENT);
  response.struct_size = 4;
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_INVALID_ARGUMENT);
  response = ok_response();
  response.status = 100;  // interim, cannot be the answer
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_INVALID_ARGUMENT);
  response.status = 600;
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_INVALID_ARGUMENT);
  response = ok_response();
  const hdp_http_header_t bad{"X-Bad", 5, "a\r\nb", 4};
  response.headers = &bad;
  response.header_count = 1;
  EXPECT_EQ(router.respond(7, id, &response), HDP_ERR_INVALID_ARGUMENT);
  // Still answerable after refused attempts.
  response = ok_response();
  EXPECT_EQ(router.respond(7, id, &response), HDP_OK);
}

TEST_F(RouterTest, BodyLimitComesFromTheRoute) {
  router.add_host_route({"POST", "/small", RouteMatch::exact, 10},
                        [](const HttpRequest&) { return HttpResponse::text(200, ""); });
  EXPECT_EQ(router.body_limit("POST", "/small"), 10U);
  EXPECT_EQ(router.body_limit("POST", "/unknown"), 4096U);
}

// A gate that lets in requests carrying "X-Agent: name" (as that agent) and refuses others.
class HeaderGate final : public AccessGate {
 public:
  std::optional<HttpResponse> admit(const RouteSpec& route, HttpRequest& request) override {
    ++asked;
    for (const auto& [name, value] : request.headers) {
      if (name == "X-Agent") {
        request.agent_name = value;
        return std::nullopt;
      }
    }
    if (route.access == RouteAccess::agent_or_plugin) return std::nullopt;
    return HttpResponse::error(401, "sign in first");
  }
  int asked = 0;
};

TEST_F(RouterTest, RoutesThatAreNotOpenRefuseEveryoneWithoutAGate) {
  router.add_host_route({"GET", "/agents", RouteMatch::exact, 0},
                        [](const HttpRequest&) { return HttpResponse::text(200, "in"); });
  EXPECT_EQ(dispatch("GET", "/agents").delivered->value().status, 401U) << "the default access is for agents";
}

TEST_F(RouterTest, TheGateDecidesOnAgentRoutesAndNamesTheAgentToThePlugin) {
  HeaderGate gate;
  router.set_access_gate(&gate);
  PluginRouteTarget target;
  target.owner = 7;
  target.owner_name = "test.plugin";
  target.on_request = [](void* user_data, const hdp_http_request_t* r) {
    auto* seen = static_cast<Seen*>(user_data);
    seen->requests.push_back(r->request_id);
    seen->agent = r->agent_name == nullptr ? "(null)" : std::string(r->agent_name, r->agent_name_len);
    hdp_http_response_t response{};
    response.struct_size = sizeof response;
    response.status = 200;
    EXPECT_EQ(seen->router->respond(7, r->request_id, &response), HDP_OK);
  };
  target.user_data = &seen;
  uint64_t id = 0;
  ASSERT_EQ(router.add_plugin_route(RouteSpec{"POST", "/agent", RouteMatch::exact, 0, RouteAccess::agent}, target, &id),
            HDP_OK);
  ASSERT_EQ(router.add_plugin_route(RouteSpec{"POST", "/either", RouteMatch::exact, 0, RouteAccess::agent_or_plugin},
                                    target, &id),
            HDP_OK);
  ASSERT_EQ(router.add_plugin_route(RouteSpec{"POST", "/open", RouteMatch::exact, 0, RouteAccess::open}, target, &id),
            HDP_OK);

  EXPECT_EQ(dispatch("POST", "/agent").delivered->value().status, 401U);
  EXPECT_TRUE(seen.requests.empty()) << "refused before dispatch";

  auto as_agent = [&](const std::string& path) {
    Exchange exchange;
    exchange.responder = std::make_shared<Responder>([d = exchange.delivered](HttpResponse&& r) { *d = std::move(r); });
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    request.target = path;
    request.headers = {{"X-Agent", "ana"}};
    request.agent_name = "forged";  // whatever came in, only the gate sets it
    request.peer_address = "127.0.0.1";
    router.dispatch(std::move(request), exchange.responder);
    return exchange;
  };
  EXPECT_EQ(as_agent("/agent").delivered->value().status, 200U);
  EXPECT_EQ(seen.agent, "ana");
  EXPECT_EQ(dispatch("POST", "/either").delivered->value().status, 200U) << "the plugin decides";
  EXPECT_EQ(seen.agent, "(null)");
  const int asked = gate.asked;
  EXPECT_EQ(as_agent("/open").delivered->value().status, 200U);
  EXPECT_EQ(seen.agent, "(null)") << "an open route never carries an agent";
  EXPECT_EQ(gate.asked, asked) << "open routes do not ask the gate";
}

TEST_F(RouterTest, TheInternetListenerServesOnlyRoutesMarkedForIt) {
  RouteSpec health{"GET", "/healthz", RouteMatch::exact, 0, RouteAccess::open};
  health.on_internet_listener = true;
  router.add_host_route(health, [](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
  router.add_host_route({"GET", "/", RouteMatch::prefix, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "inside"); });
  router.add_host_route({"POST", "/healthz", RouteMatch::exact, 0, RouteAccess::open},
                        [](const HttpRequest&) { return HttpResponse::text(200, "post"); });
  auto on_internet = [&](const std::string& method, const std::string& path) {
    Exchange exchange;
    exchange.responder = std::make_shared<Responder>([d = exchange.delivered](HttpResponse&& r) { *d = std::move(r); });
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.target = path;
    request.peer_address = "192.0.2.1";
    router.dispatch(std::move(request), exchange.responder, Listener::internet);
    return exchange;
  };
  EXPECT_EQ(on_internet("GET", "/healthz").delivered->value().body, "ok");
  EXPECT_EQ(on_internet("GET", "/anything").delivered->value().status, 404U);
  EXPECT_EQ(on_internet("POST", "/healthz").delivered->value().status, 405U) << "only GET /healthz faces the internet";
  EXPECT_EQ(dispatch("GET", "/anything").delivered->value().body, "inside");
  EXPECT_EQ(router.body_limit("GET", "/anything", Listener::internet), 4096U);
}

// A gate that decides later, when the test says: what the reader does for a session in the
// database.
class LaterGate final : public AccessGate {
 public:
  std::optional<HttpResponse> admit(const RouteSpec&, HttpRequest&) override {
    ADD_FAILURE() << "the router asks admit_later";
    return std::nullopt;
  }
  void admit_later(const RouteSpec&, HttpRequest& request, Decide decide) override {
    waiting.push_back({&request, std::move(decide)});
  }
  // Lets the oldest waiting request in as agent (or refuses it).
  void decide_oldest(std::optional<HttpResponse> refusal, const std::string& agent = "ana") {
    ASSERT_FALSE(waiting.empty());
    auto [request, decide] = std::move(waiting.front());
    waiting.erase(waiting.begin());
    if (!refusal) request->agent_name = agent;
    decide(std::move(refusal));
  }
  std::vector<std::pair<HttpRequest*, Decide>> waiting;
};

TEST_F(RouterTest, AnAsyncHostRouteAnswersWhenItsReplyIsCalled) {
  HostReply kept;
  std::string seen_body;
  ASSERT_EQ(router.add_async_host_route({"GET", "/later", RouteMatch::exact, 0, RouteAccess::open},
                                        [&](HttpRequest&& request, HostReply reply) {
                                          seen_body = request.body;
                                          kept = std::move(reply);
                                        }),
            HDP_OK);
  const auto exchange = dispatch("GET", "/later");
  EXPECT_FALSE(exchange.delivered->has_value()) << "not answered before the reply";
  EXPECT_EQ(seen_body, std::string("a\0b", 3)) << "the handler owns the request";
  kept(HttpResponse::text(200, "done"));
  ASSERT_TRUE(exchange.delivered->has_value());
  EXPECT_EQ(exchange.delivered->value().body, "done");
  kept(HttpResponse::text(500, "twice"));
  EXPECT_EQ(exchange.delivered->value().body, "done") << "a second reply is dropped";

  // A handler that throws before replying is answered 500.
  router.add_async_host_route({"GET", "/throws", RouteMatch::exact, 0, RouteAccess::open},
                              [](HttpRequest&&, HostReply) { throw std::runtime_error("boom"); });
  EXPECT_EQ(dispatch("GET", "/throws").delivered->value().status, 500U);
  EXPECT_EQ(router.add_async_host_route({"GET", "/x", RouteMatch::exact, 0}, AsyncHostHandler{}),
            HDP_ERR_INVALID_ARGUMENT);
}

TEST_F(RouterTest, ARequestWaitsForTheGateThenReachesItsRoute) {
  LaterGate gate;
  router.set_access_gate(&gate);
  std::string agent;
  router.add_host_route({"GET", "/mine", RouteMatch::exact, 0, RouteAccess::agent}, [&](const HttpRequest& r) {
    agent = r.agent_name;
    return HttpResponse::text(200, "yours");
  });
  const auto admitted = dispatch("GET", "/mine");
  const auto refused = dispatch("GET", "/mine");
  ASSERT_EQ(gate.waiting.size(), 2U);
  EXPECT_FALSE(admitted.delivered->has_value());
  gate.decide_oldest(std::nullopt, "ana");
  ASSERT_TRUE(admitted.delivered->has_value());
  EXPECT_EQ(admitted.delivered->value().body, "yours");
  EXPECT_EQ(agent, "ana") << "the route sees what the gate set";
  gate.decide_oldest(HttpResponse::error(401, "sign in first"));
  EXPECT_EQ(refused.delivered->value().status, 401U);
}

TEST_F(RouterTest, ARouteRemovedOrAClientGoneWhileTheGateDecidesIsNotServed) {
  LaterGate gate;
  router.set_access_gate(&gate);
  int served = 0;
  uint64_t id = 0;
  router.add_host_route(
      {"GET", "/going", RouteMatch::exact, 0, RouteAccess::agent},
      [&](const HttpRequest&) {
        ++served;
        return HttpResponse::text(200, "");
      },
      &id);
  const auto removed = dispatch("GET", "/going");
  const auto gone = dispatch("GET", "/going");
  ASSERT_EQ(gate.waiting.size(), 2U);
  gone.responder->client_gone();
  gate.decide_oldest(std::nullopt);  // removed: its route is still there...
  EXPECT_EQ(served, 1);
  EXPECT_EQ(removed.delivered->value().status, 200U);
  gate.decide_oldest(std::nullopt);  // ...gone: its client left
  EXPECT_EQ(served, 1) << "a client that left is not served";
  EXPECT_FALSE(gone.delivered->has_value());

  const auto late = dispatch("GET", "/going");
  ASSERT_EQ(router.remove_route(Router::kHostOwner, id), HDP_OK);
  gate.decide_oldest(std::nullopt);
  EXPECT_EQ(served, 1);
  EXPECT_EQ(late.delivered->value().status, 404U) << "the route was removed while the gate decided";
}

TEST_F(RouterTest, AGateDecisionAfterTheRouterIsGoneIsDropped) {
  LaterGate gate;
  std::shared_ptr<std::optional<HttpResponse>> delivered;
  {
    Router short_lived{timers, log, RouterLimits{4096, 1000}};
    short_lived.set_access_gate(&gate);
    short_lived.add_host_route({"GET", "/a", RouteMatch::exact, 0, RouteAccess::agent},
                               [](const HttpRequest&) { return HttpResponse::text(200, ""); });
    delivered = std::make_shared<std::optional<HttpResponse>>();
    auto responder = std::make_shared<Responder>([d = delivered](HttpResponse&& r) { *d = std::move(r); });
    HttpRequest request;
    request.method = "GET";
    request.path = "/a";
    short_lived.dispatch(std::move(request), responder);
  }
  gate.decide_oldest(std::nullopt);  // no router to continue in: nothing happens (ASan would see)
  EXPECT_FALSE(delivered->has_value());
}

}  // namespace
}  // namespace hdp::host

#include "stub_host.hpp"

#include <csignal>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include <boost/asio/post.hpp>

#include "agent_auth.hpp"
#include "agent_store.hpp"
#include "api_routes.hpp"
#include "attachment_jobs.hpp"
#include "batched_writes.hpp"
#include "clock.hpp"
#include "fd_watches.hpp"
#include "helpdesk_store.hpp"
#include "http_server.hpp"
#include "log.hpp"
#include "loop_lag.hpp"
#include "metrics.hpp"
#include "password_checker.hpp"
#include "pg_agent_sessions.hpp"
#include "pg_connection.hpp"
#include "plugin_host_table.hpp"
#include "plugin_loader.hpp"
#include "router.hpp"
#include "store_reader.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace {

// How long answers already on their way (the 503s of shutdown) may take to leave.
constexpr std::chrono::milliseconds kDrainDeadline{2000};

// The operator's bearer token for GET /metrics: the file's text without surrounding whitespace.
std::optional<std::string> read_token(const std::filesystem::path& file, std::string& error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot read the metrics token file " + file.string();
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  if (first == std::string::npos || token.size() > 4096) {
    error = "the metrics token file " + file.string() + " must hold one token (1 to 4096 bytes)";
    return std::nullopt;
  }
  return token.substr(first, last - first + 1);
}

std::unique_ptr<Clock> make_clock(const HostOptions& options) {
  if (!options.virtual_clock) return std::make_unique<RealClock>();
  const int64_t start_us =
      options.virtual_clock_start_ms ? *options.virtual_clock_start_ms * 1000 : RealClock().wall_us();
  return std::make_unique<VirtualClock>(start_us);
}

}  // namespace

StubHost::StubHost(Logger& log, HostOptions options)
    : log_(log),
      options_(std::move(options)),
      clock_(make_clock(options_)),
      signals_(loop_.io(), SIGINT, SIGTERM),
      drain_deadline_(loop_.io()) {
  // Caught from now on; handled once the loop runs (a signal during start still shuts down).
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    begin_shutdown(signal == SIGINT ? "SIGINT" : "SIGTERM");
  });
}

StubHost::~StubHost() {
  log_.set_deferred_flush(nullptr);  // from here on every line is written at once
  shut_down_plugins();
  public_server_.reset();
  server_.reset();
}

int StubHost::run() {
  const StoreLocation location{options_.data_dir / "helpdesk.sqlite3", options_.database};
  const std::string where = location.is_postgresql()
                                ? "the database (" + describe_postgresql_uri(location.postgresql_uri) + ")"
                                : "the data directory " + options_.data_dir.string();
  const std::filesystem::path attachments_dir =
      std::filesystem::absolute(options_.attachments_dir.value_or(options_.data_dir / "attachments"));
  auto now_ms = [clock = clock_.get()] { return clock->wall_us() / 1000; };
  std::unique_ptr<SessionStore> sessions;
  try {
    std::filesystem::create_directories(options_.data_dir);
    std::filesystem::create_directories(attachments_dir);
    store_ = open_helpdesk_store(location, now_ms);
    agents_ = std::make_unique<AgentStore>(location);
    // Several hosts on one database: a session made by one is valid on all.
    if (location.is_postgresql()) sessions = std::make_unique<PgAgentSessions>(location.postgresql_uri);
  } catch (const std::exception& e) {
    log_.error("cannot open " + where + ": " + e.what());
    return kExitCannotStart;
  }
  log_.info("helpdesk data in " + where + ", attachment files in " + attachments_dir.string());
  AgentAuthOptions auth_options;
  auth_options.secure_cookie = options_.served_over_https;
  if (options_.metrics_token_file) {
    std::string error;
    auth_options.metrics_token = read_token(*options_.metrics_token_file, error);
    if (!auth_options.metrics_token) {
      log_.error(error);
      return kExitCannotStart;
    }
  }
  metrics_ = std::make_unique<MetricsRegistry>();
  host_metrics_ = std::make_unique<HostMetrics>(*metrics_);
  lag_probe_ = std::make_unique<LoopLagProbe>(loop_.io(), *host_metrics_,
                                              std::chrono::milliseconds(options_.loop_lag_interval_ms));
  timers_ = std::make_unique<TimerService>(loop_.io(), *clock_);
  // Under the virtual clock, what a timer hands to the main thread runs at the timer's instant.
  if (timers_->is_virtual()) timers_->set_settle([this] { loop_.run_queued_now(); });
  fds_ = std::make_unique<FdWatches>(loop_.io());
  router_ = std::make_unique<Router>(*timers_, log_);
  auth_ = std::make_unique<AgentAuth>(*agents_, *clock_, log_, std::move(auth_options), SessionLimits{},
                                      ThrottleLimits{}, std::move(sessions));
  router_->set_access_gate(auth_.get());
  auth_->register_routes(*router_);
  // The agents' reads: the session check of every agent request and the JSON API. On PostgreSQL
  // each is a round trip to the server, which would hold the loop (and every webhook behind it)
  // for as long as the server takes: they run on a reader thread with a connection of its own.
  // On SQLite they stay on the loop (a local read in WAL mode takes microseconds, less than the
  // hop to a thread and back) and use the loop's connection and the in-memory sessions.
  if (location.is_postgresql()) {
    try {
      reader_ = std::make_unique<StoreReader>(loop_.io(), open_pg_read_stores(location.postgresql_uri));
    } catch (const std::exception& e) {
      log_.error("cannot open " + where + ": " + e.what());
      return kExitCannotStart;
    }
  } else {
    reader_ = std::make_unique<StoreReader>(ReadStores{*store_, auth_->sessions(), *agents_});
  }
  auth_->set_reader(reader_.get());
  // A sign-in's Argon2id check takes tens of milliseconds of CPU by design: on a thread of its
  // own, with a connection of its own for the account's lookup, never on the loop.
  try {
    auth_->set_password_checker(std::make_unique<PasswordChecker>(loop_.io(), location));
  } catch (const std::exception& e) {
    log_.error("cannot open " + where + ": " + e.what());
    return kExitCannotStart;
  }
  // The message and attachment writes of the plugins commit on a thread of their own, with a
  // connection of their own, so the loop never waits for the disk or the database server. Under
  // the virtual clock they stay on the loop: a timer's instant must end with their completions run.
  std::unique_ptr<HelpdeskStore> writer_store;
  if (!options_.virtual_clock) {
    try {
      writer_store = open_helpdesk_store(location, now_ms);
      writer_store->checkpoint_off_the_writer();
    } catch (const std::exception& e) {
      log_.error("cannot open " + where + ": " + e.what());
      return kExitCannotStart;
    }
  }
  writes_ = std::make_unique<BatchedWrites>(loop_.io(), *store_, log_, host_metrics_.get(), std::move(writer_store));
  attachments_ = std::make_unique<AttachmentJobs>(loop_.io(), *store_, *writes_, log_, attachments_dir,
                                                  std::chrono::milliseconds(options_.test_attach_delay_ms));
  services_ = std::make_unique<HostServices>(HostServices{log_, *clock_, loop_, *timers_, *fds_, *router_, *store_,
                                                          *attachments_, *writes_, metrics_.get(), host_metrics_.get(),
                                                          options_.disabled_extensions});
  register_metrics_route(*router_, *metrics_);

  register_api_routes(*router_, ApiContext{*reader_, log_, *clock_, *timers_,
                                           [this] {
                                             std::vector<PluginInfo> out;
                                             for (const auto& p : plugins_) {
                                               const LoadedPlugin& l = p->loaded();
                                               out.push_back(PluginInfo{l.id, l.name, l.vendor, l.version, p->owner()});
                                             }
                                             return out;
                                           },
                                           options_.virtual_clock});
  if (agents_->list().empty()) {
    log_.warning(
        "no agent accounts: nobody can sign in to the inbox; add one with "
        "hdp-stub-host agent add NAME " +
        (location.is_postgresql() ? std::string("--database URI") : "--data-dir " + options_.data_dir.string()));
  }
  if (options_.virtual_clock) {
    log_.warning("virtual clock: time stands still until POST /__test/clock/advance (tests only)");
  }

  if (!load_plugins() || !start_plugins()) {
    shut_down_plugins();
    return kExitPluginRefused;
  }
  host_metrics_->set_plugins_loaded(plugins_.size());
  if (options_.check) {
    shut_down_plugins();
    log_.info("check passed: " + std::to_string(plugins_.size()) +
              " plugin(s) loaded, initialized, started and stopped");
    return kExitOk;
  }
  if (!start_serving()) {
    shut_down_plugins();
    return kExitCannotStart;
  }
  lag_probe_->start();
  // While serving, the info lines of one loop turn leave in one write at its end; warnings and
  // errors at once. Not while plugins start or stop (a plugin may write to stderr itself, and
  // its lines must stay in order with ours), nor under the virtual clock (a test reads the log
  // as soon as the clock request is answered).
  if (!options_.virtual_clock) {
    log_.set_deferred_flush([this] { boost::asio::post(loop_.io(), [this] { log_.flush(); }); });
  }
  loop_.run();
  shut_down_plugins();  // no-op after a signal; covers the loop running out of work
  log_.info("stopped");
  return kExitOk;
}

bool StubHost::load_plugins() {
  std::vector<std::string> ids;
  for (const PluginOptions& plugin : options_.plugins) {
    LoadResult result = load_plugin(plugin.path, ids);
    if (const auto* refusal = std::get_if<LoadRefusal>(&result)) {
      log_.error("refusing plugin " + plugin.path + ": " + refusal->reason);
      return false;
    }
    LoadedPlugin loaded = std::get<LoadedPlugin>(std::move(result));
    std::filesystem::path data_dir;
    try {
      data_dir = prepare_data_dir(options_.data_dir, loaded.id);
    } catch (const std::exception& e) {
      log_.error("refusing plugin " + plugin.path + ": cannot create its data directory: " + e.what());
      return false;
    }
    ids.push_back(loaded.id);
    const std::string description = loaded.id + " " + loaded.version;
    auto context = std::make_unique<PluginContext>(*services_, plugins_.size() + 1, std::move(loaded), plugin.config,
                                                   std::move(data_dir));
    if (auto reason = context->create_and_init()) {
      log_.error("refusing plugin " + plugin.path + ": " + *reason);
      return false;
    }
    log_.info("loaded plugin " + description + " from " + plugin.path);
    plugins_.push_back(std::move(context));
  }
  return true;
}

bool StubHost::start_plugins() {
  for (auto& context : plugins_) {
    if (auto reason = context->start()) {
      log_.error("refusing plugin " + context->loaded().path + ": " + *reason);
      return false;
    }
  }
  return true;
}

bool StubHost::start_serving() {
  HttpServerLimits limits;
  limits.header_timeout = std::chrono::milliseconds(options_.header_timeout_ms);
  limits.idle_timeout = std::chrono::milliseconds(options_.idle_timeout_ms);
  limits.max_connections = options_.max_connections;
  limits.io_threads = options_.http_threads;
  auto make_server = [&](Listener listener) {
    return std::make_unique<HttpServer>(
        loop_.io(), log_, limits,
        [this, listener](std::string_view method, std::string_view path) {
          return router_->body_limit(method, path, listener);
        },
        [this, listener](HttpRequest&& request, const std::shared_ptr<Responder>& responder) {
          const auto counted = counting_responder(*host_metrics_, *router_, request, responder);
          router_->dispatch(std::move(request), counted, listener);
        },
        [this](HttpRefusal refusal) { host_metrics_->count_refused(refusal_name(refusal)); });
  };
  server_ = make_server(Listener::agents);
  if (auto error = server_->listen(options_.listen_host, options_.listen_port)) {
    log_.error(*error);
    return false;
  }
  log_.info("listening on http://" + server_->local_address() + " (agents: inbox, API, sign-in)");
  if (options_.public_listen_host) {
    public_server_ = make_server(Listener::internet);
    if (auto error = public_server_->listen(*options_.public_listen_host, options_.public_listen_port)) {
      log_.error(*error);
      return false;
    }
    log_.info("listening on http://" + public_server_->local_address() + " (public: webhooks and /healthz only)");
  }
  if (options_.port_file) write_port_file(log_, *options_.port_file, server_->port());
  if (options_.public_port_file) write_port_file(log_, *options_.public_port_file, public_server_->port());
  return true;
}

void StubHost::write_port_file(Logger& log, const std::filesystem::path& final_path, uint16_t port) {
  // Written whole and renamed, so a script never reads half a number.
  std::filesystem::path temp = final_path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << '\n';
  }
  std::error_code ec;
  std::filesystem::rename(temp, final_path, ec);
  if (ec) log.error("cannot write the port file " + final_path.string() + ": " + ec.message());
}

void StubHost::begin_shutdown(const char* why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  log_.set_deferred_flush(nullptr);
  log_.info(std::string("shutting down (") + why + ")");
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  drain_deadline_.expires_after(kDrainDeadline);
  drain_deadline_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    log_.warning("connections still open after the drain deadline; closing them");
    if (server_) server_->close_all();
    if (public_server_) public_server_->close_all();
    loop_.stop();
  });
  // 1. no new requests, on either listener; drained once both are.
  auto remaining = std::make_shared<int>(1 + (server_ ? 1 : 0) + (public_server_ ? 1 : 0));
  auto drained = [this, remaining] {
    if (--*remaining == 0) drain_deadline_.cancel();
  };
  if (server_) server_->stop(drained);
  if (public_server_) public_server_->stop(drained);
  drained();
  shut_down_plugins();  // 2..5.
  timers_->cancel_all();
  lag_probe_->stop();
}

void StubHost::shut_down_plugins() {
  if (plugins_shut_down_ || !services_) return;
  plugins_shut_down_ = true;
  log_.set_deferred_flush(nullptr);  // every line at once again, in order with the plugins' own
  // Callbacks accepted before stopping still run, before their plugin stops.
  loop_.begin_stopping();
  loop_.run_queued_now();
  attachments_->stop_worker();
  for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) {
    (*it)->cancel_everything();
    (*it)->stop();
  }
  for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) (*it)->destroy_and_deinit();
}

}  // namespace hdp::host

#include "http_server.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/none.hpp>
#include <boost/beast/core/buffers_generator.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "http_answers.hpp"
#include "log.hpp"

namespace hdp::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string_view refusal_name(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::bad_request: return "bad_request";
    case HttpRefusal::header_too_large: return "header_too_large";
    case HttpRefusal::body_too_large: return "body_too_large";
    case HttpRefusal::header_timeout: return "header_timeout";
    case HttpRefusal::body_timeout: return "body_timeout";
  }
  return "unknown";
}

namespace {

class Session;

// While a deferred answer is awaited, the connection is read to notice the client leaving;
// pipelined bytes are kept up to this much.
constexpr size_t kMaxBufferedWhileWaiting = 64 * 1024;
// After the last answer on a connection, unread input is drained (so the close is not a reset
// that could destroy the answer in flight) for at most this long and this much.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kMaxLingerBytes = 1024 * 1024;

std::string peer_text(const tcp::endpoint& endpoint) {
  asio::ip::address address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

}  // namespace

// State shared by the listener and its sessions; sessions keep it alive.
class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, Logger& log, HttpServerLimits limits, BodyLimitFunction body_limit,
       DispatchFunction dispatch, RefusalFunction on_refused)
      : io(io),
        log(log),
        limits(limits),
        body_limit(std::move(body_limit)),
        dispatch(std::move(dispatch)),
        on_refused(std::move(on_refused)),
        acceptor(io) {}

  void do_accept();
  void on_accept(const beast::error_code& ec, tcp::socket socket);
  void add(Session* session, const std::shared_ptr<Session>& shared);
  void remove(Session* session);
  // The sessions alive now (taken under the lock, used outside it), and how many there are.
  std::vector<std::shared_ptr<Session>> live_sessions();
  size_t session_count() {
    const std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }
  // Sets what runs (posted to the main loop) once no connection is left, and runs it at once
  // when none is.
  void when_drained(std::function<void()> fn);

  // Whether connections are read and written on I/O threads rather than on the main loop.
  bool threaded() const { return !io_loops.empty(); }
  // Runs fn on the main loop: now when this is it, posted from an I/O thread.
  template <class Fn>
  void on_main(Fn&& fn) {
    if (threaded()) {
      asio::post(io, std::forward<Fn>(fn));
    } else {
      fn();
    }
  }

  asio::io_context& io;  // the main loop: the acceptor, dispatch, answers
  Logger& log;
  const HttpServerLimits limits;
  const BodyLimitFunction body_limit;
  const DispatchFunction dispatch;
  const RefusalFunction on_refused;
  tcp::acceptor acceptor;
  // The I/O threads' loops, owned by HttpServer (empty: the main loop serves the connections).
  std::vector<asio::io_context*> io_loops;
  size_t next_loop = 0;
  std::atomic<bool> stopping{false};
  uint64_t refused_connections = 0;

 private:
  std::mutex sessions_mutex;  // sessions come and go on the I/O threads
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::function<void()> on_drained;  // guarded by sessions_mutex
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    beast::error_code ec;
    const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? std::string("unknown") : peer_text(remote);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  ~Session() { server_->remove(this); }

  // The loop that reads and writes this connection.
  asio::any_io_executor executor() { return stream_.get_executor(); }
  // Runs fn on that loop: now when it is the main loop (the caller's), posted to the
  // connection's I/O thread otherwise.
  template <class Fn>
  void on_own_loop(Fn&& fn) {
    if (server_->threaded()) {
      asio::post(executor(), std::forward<Fn>(fn));
    } else {
      fn();
    }
  }

  // Starts reading, on the connection's loop (the server counted the session when it accepted it).
  void run() {
    if (server_->stopping) return close_now();  // accepted as the server began to stop
    do_read();
  }

  // The server is stopping: close now unless an answer is on its way.
  void on_server_stop() {
    if (phase_ == Phase::reading) close_now();
  }

  void close_now() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  enum class Phase { reading, dispatching, awaiting, writing, lingering, closed };

  // --- reading a request ------------------------------------------------------------------

  void do_read() {
    phase_ = Phase::reading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_limit_bytes));
    // The route decides the body limit once the header is known.
    parser_->body_limit(boost::none);
    if (buffer_.size() > 0) {  // a pipelined request is already here
      do_read_header();
      return;
    }
    stream_.expires_after(server_->limits.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, std::size_t bytes) {
    if (ec) return close_now();  // idle timeout, client closed, server stopping
    buffer_.commit(bytes);
    do_read_header();
  }

  void do_read_header() {
    // One deadline for the whole header: a client trickling bytes does not extend it.
    stream_.expires_after(server_->limits.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::header_limit) {
      server_->log.warning("refused a request from " + peer_ + ": header larger than " +
                           std::to_string(server_->limits.header_limit_bytes) + " bytes (431)");
      refused(HttpRefusal::header_too_large);
      return answer_error(431, "request header too large");
    }
    if (ec == beast::error::timeout) {
      server_->log.debug("dropping " + peer_ + ": no complete request header in time");
      refused(HttpRefusal::header_timeout);
      return close_now();
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset) {
      return close_now();
    }
    if (ec) {
      refused(HttpRefusal::bad_request);
      return answer_error(400, "bad request");
    }

    const auto& header = parser_->get();
    const std::string_view target = header.target();
    const std::string_view path = target.substr(0, target.find('?'));
    const uint64_t limit = server_->body_limit(header.method_string(), path);
    if (const auto length = parser_->content_length(); length && *length > limit) {
      // Not the path: it may carry a plugin's secret.
      server_->log.warning("refused a request from " + peer_ + ": body of " + std::to_string(*length) +
                           " bytes over the route's limit of " + std::to_string(limit) + " (413)");
      refused(HttpRefusal::body_too_large);
      return answer_error(413, "request body too large");
    }
    body_limit_ = limit;
    parser_->body_limit(limit);
    if (parser_->is_done()) return on_request();
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      // The client waits for this before it sends the body.
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, header.version());
      stream_.expires_after(server_->limits.write_timeout);
      http::async_write(stream_, *interim, [self = shared_from_this(), interim](beast::error_code wec, std::size_t) {
        if (wec) return self->close_now();
        self->do_read_body();
      });
      return;
    }
    do_read_body();
  }

  void do_read_body() {
    stream_.expires_after(server_->limits.body_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::body_limit) {
      server_->log.warning("refused a request from " + peer_ + ": body over the route's limit of " +
                           std::to_string(body_limit_) + " bytes (413)");
      refused(HttpRefusal::body_too_large);
      return answer_error(413, "request body too large");
    }
    if (ec == beast::error::timeout) {
      refused(HttpRefusal::body_timeout);
      return close_now();
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close_now();
    }
    if (ec) {
      refused(HttpRefusal::bad_request);
      return answer_error(400, "bad request");
    }
    on_request();
  }

  // --- handing the request over ----------------------------------------------------------

  void on_request() {
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    framing_.version = message.version();
    keep_alive_ = message.keep_alive();
    framing_.head = message.method() == http::verb::head;
    // Range handling is defined for GET only (RFC 9110, 14.2). Several Range fields are as
    // several ranges: ignored. With If-Range (no validators here) the whole file is sent.
    framing_.range_field.reset();
    if (message.method() == http::verb::get && message.count(http::field::range) == 1 &&
        message.count(http::field::if_range) == 0) {
      framing_.range_field = std::string(message[http::field::range]);
    }
    if (server_->stopping) {
      keep_alive_ = false;
      return answer(HttpResponse::error(503, "the host is shutting down"));
    }

    HttpRequest request;
    request.method = message.method_string();
    request.target = message.target();
    const size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.headers.reserve(static_cast<size_t>(std::distance(message.begin(), message.end())));
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.peer_address = peer_;

    const uint64_t serial = ++request_serial_;
    // The answer is given on the main loop and taken on this connection's loop.
    responder_ = std::make_shared<Responder>([weak = weak_from_this(), serial](HttpResponse&& response) {
      // A connection still there has its loop too (the loops outlive their sessions).
      auto self = weak.lock();
      if (!self) return;
      self->on_own_loop(
          [self, serial, response = std::move(response)]() mutable { self->on_answer(serial, std::move(response)); });
    });
    if (server_->threaded()) {
      // Served on the main loop; meanwhile the connection is watched for the client leaving, as
      // for any deferred answer.
      asio::post(server_->io, [server = server_, request = std::move(request), responder = responder_]() mutable {
        server->dispatch(std::move(request), responder);
      });
    } else {
      phase_ = Phase::dispatching;
      const auto responder = responder_;  // the handler may answer and drop responder_
      server_->dispatch(std::move(request), responder);
      if (phase_ != Phase::dispatching) return;  // closed meanwhile
      if (answer_) return do_write();
    }
    // Deferred: wait for the answer, and notice the client leaving.
    phase_ = Phase::awaiting;
    stream_.expires_never();
    do_watch_read();
  }

  void on_answer(uint64_t serial, HttpResponse&& response) {
    if (serial != request_serial_ || answer_ || phase_ == Phase::closed) return;
    answer_ = std::move(response);
    if (phase_ == Phase::dispatching) return;  // written when dispatch returns
    if (phase_ != Phase::awaiting) return;
    if (watch_read_pending_) {
      // The watch read completes with operation_aborted and then writes.
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      return;
    }
    do_write();
  }

  void do_watch_read() {
    watch_read_pending_ = true;
    stream_.async_read_some(buffer_.prepare(4096),
                            beast::bind_front_handler(&Session::on_watch_read, shared_from_this()));
  }

  void on_watch_read(beast::error_code ec, std::size_t bytes) {
    watch_read_pending_ = false;
    if (!ec) buffer_.commit(bytes);
    if (phase_ == Phase::closed) return;
    if (answer_) return do_write();
    if (ec) {
      // The client went away before the answer.
      auto responder = std::move(responder_);
      if (responder) server_->on_main([responder] { responder->client_gone(); });
      close_now();
      return;
    }
    if (buffer_.size() < kMaxBufferedWhileWaiting) do_watch_read();
  }

  // --- answering -------------------------------------------------------------------------

  void refused(HttpRefusal refusal) {
    if (!server_->on_refused) return;
    server_->on_main([server = server_, refusal] { server->on_refused(refusal); });
  }

  void answer_error(unsigned status, std::string_view message) {
    framing_ = AnswerFraming{};  // HTTP/1.1, a body, no range
    keep_alive_ = false;
    answer(HttpResponse::error(status, message));
  }

  void answer(HttpResponse&& response) {
    answer_ = std::move(response);
    do_write();
  }

  void do_write() {
    phase_ = Phase::writing;
    responder_.reset();
    const bool keep_alive = keep_alive_ && !server_->stopping;
    HttpResponse answer = std::move(*answer_);
    answer_.reset();
    stream_.expires_after(answer.file ? server_->limits.file_write_timeout : server_->limits.write_timeout);
    beast::async_write(stream_, build_answer(std::move(answer), framing_, keep_alive),
                       beast::bind_front_handler(&Session::on_write, shared_from_this(), keep_alive));
  }

  void on_write(bool keep_alive, beast::error_code ec, std::size_t /*bytes*/) {
    if (ec) return close_now();
    if (!keep_alive || server_->stopping) return do_linger();
    do_read();
  }

  // --- closing ---------------------------------------------------------------------------

  void do_linger() {
    phase_ = Phase::lingering;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            beast::bind_front_handler(&Session::on_linger, shared_from_this()));
  }

  void on_linger(beast::error_code ec, std::size_t bytes) {
    lingered_ += bytes;
    if (ec || lingered_ > kMaxLingerBytes || phase_ != Phase::lingering) return close_now();
    stream_.async_read_some(buffer_.prepare(16 * 1024),
                            beast::bind_front_handler(&Session::on_linger, shared_from_this()));
  }

  beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string peer_;
  uint64_t body_limit_ = 0;  // of the request being read, for the log
  Phase phase_ = Phase::reading;
  std::shared_ptr<Responder> responder_;
  std::optional<HttpResponse> answer_;
  uint64_t request_serial_ = 0;
  bool keep_alive_ = false;
  // What of the request shapes its answer (see on_request).
  AnswerFraming framing_;
  bool watch_read_pending_ = false;
  size_t lingered_ = 0;
};

}  // namespace

void HttpServer::Impl::do_accept() {
  auto accepted = [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  };
  if (threaded()) {
    // The new connection belongs to the next I/O thread's loop, in turn.
    const asio::any_io_executor executor = io_loops[next_loop++ % io_loops.size()]->get_executor();
    acceptor.async_accept(executor, std::move(accepted));
  } else {
    acceptor.async_accept(std::move(accepted));
  }
}

void HttpServer::Impl::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (stopping || !acceptor.is_open()) return;
  if (ec) {
    if (ec != asio::error::operation_aborted) log.warning("accept: " + ec.message());
  } else if (session_count() >= limits.max_connections) {
    // Over the cap: close at once; a busy host must not run out of descriptors.
    if (refused_connections++ % 100 == 0) {
      log.warning("connection cap of " + std::to_string(limits.max_connections) + " reached; closing new connections");
    }
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    auto session = std::make_shared<Session>(std::move(socket), shared_from_this());
    add(session.get(), session);  // here, so that the cap counts it before its loop runs it
    session->on_own_loop([session] { session->run(); });
  }
  do_accept();
}

void HttpServer::Impl::add(Session* session, const std::shared_ptr<Session>& shared) {
  const std::lock_guard lock(sessions_mutex);
  sessions.emplace(session, shared);
}

void HttpServer::Impl::remove(Session* session) {
  const std::lock_guard lock(sessions_mutex);
  sessions.erase(session);
  if (stopping && sessions.empty() && on_drained) {
    asio::post(io, std::exchange(on_drained, nullptr));
  }
}

std::vector<std::shared_ptr<Session>> HttpServer::Impl::live_sessions() {
  std::vector<std::shared_ptr<Session>> live;
  const std::lock_guard lock(sessions_mutex);
  live.reserve(sessions.size());
  for (const auto& [raw, weak] : sessions) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

void HttpServer::Impl::when_drained(std::function<void()> fn) {
  const std::lock_guard lock(sessions_mutex);
  on_drained = std::move(fn);
  if (sessions.empty() && on_drained) asio::post(io, std::exchange(on_drained, nullptr));
}

// The I/O threads and their loops. Each connection stays on the loop it was accepted for, so
// a session needs no lock of its own.
struct HttpServer::IoThreads {
  explicit IoThreads(size_t count) {
    for (size_t i = 0; i < count; ++i) {
      loops.push_back(std::make_unique<asio::io_context>(1));
      guards.emplace_back(loops.back()->get_executor());
    }
    for (size_t i = 0; i < count; ++i) {
      threads.emplace_back([loop = loops[i].get(), i] {
        const std::string name = "hdp-http-" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());  // what top -H and perf show
        loop->run();
      });
    }
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  // The loops stop at once: what a closing connection still had queued is dropped with its
  // loop (the sockets close as their sessions go).
  ~IoThreads() {
    guards.clear();
    for (auto& loop : loops) loop->stop();
    for (std::thread& thread : threads) thread.join();
  }

  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
};

HttpServer::HttpServer(asio::io_context& io, Logger& log, HttpServerLimits limits, BodyLimitFunction body_limit,
                       DispatchFunction dispatch, RefusalFunction on_refused)
    : impl_(
          std::make_shared<Impl>(io, log, limits, std::move(body_limit), std::move(dispatch), std::move(on_refused))) {
  if (limits.io_threads > 0) {
    io_threads_ = std::make_unique<IoThreads>(limits.io_threads);
    for (const auto& loop : io_threads_->loops) impl_->io_loops.push_back(loop.get());
  }
}

HttpServer::~HttpServer() {
  impl_->stopping = true;
  impl_->when_drained(nullptr);
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  close_all();
  io_threads_.reset();  // joins them; their loops, and the sessions left on them, go with them
}

std::optional<std::string> HttpServer::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto results =
      resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) return "cannot resolve " + host + ": " + ec.message();
  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return "cannot listen on " + endpoint_text(endpoint) + ": " + ec.message();
  }
  impl_->do_accept();
  return std::nullopt;
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  const tcp::endpoint endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::string HttpServer::local_address() const {
  beast::error_code ec;
  const tcp::endpoint endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? std::string() : endpoint_text(endpoint);
}

void HttpServer::stop(std::function<void()> on_drained) {
  impl_->stopping = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  for (const auto& session : impl_->live_sessions()) {
    session->on_own_loop([session] { session->on_server_stop(); });
  }
  impl_->when_drained(std::move(on_drained));
}

void HttpServer::close_all() {
  for (const auto& session : impl_->live_sessions()) {
    session->on_own_loop([session] { session->close_now(); });
  }
}

}  // namespace hdp::host

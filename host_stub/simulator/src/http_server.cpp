#include "http_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace wavoip::sim {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// Answers handed to a session and not yet written out, so that the owner can wait for them.
struct AnswersInFlight {
  std::mutex mutex;
  std::condition_variable idle;
  std::size_t count = 0;

  void add() {
    std::lock_guard lock(mutex);
    ++count;
  }
  void done() {
    std::lock_guard lock(mutex);
    if (--count == 0) idle.notify_all();
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Handler& handler, AnswersInFlight& in_flight)
      : stream_(std::move(socket)), handler_(handler), in_flight_(in_flight) {}

  void run() { read(); }

 private:
  void read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(1 << 20);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return;  // closed, timed out or garbage: drop the connection
    request_ = parser_->release();
    HttpRequest req{std::string(request_.method_string()), std::string(request_.target()), request_.body()};
    auto self = shared_from_this();
    handler_(req, [self](HttpAnswer answer) {
      self->in_flight_.add();
      net::post(self->stream_.get_executor(),
                [self, answer = std::move(answer)]() mutable { self->write(std::move(answer)); });
    });
  }

  void write(HttpAnswer answer) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(answer.status),
                                                                   request_.version());
    res->set(http::field::server, "wavoip-sim");
    if (!answer.content_type.empty()) res->set(http::field::content_type, answer.content_type);
    res->keep_alive(request_.keep_alive());
    res->body() = std::move(answer.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(60));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->in_flight_.done();  // written to the socket, or failed: nothing left to wait for
      if (ec || !res->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  const Handler& handler_;
  AnswersInFlight& in_flight_;
};

}  // namespace

struct HttpServer::Impl {
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  net::signal_set signals{io, SIGINT, SIGTERM};
  Handler handler;
  std::function<void(int)> on_signal;
  std::thread thread;
  AnswersInFlight in_flight;

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), handler, in_flight)->run();
      accept();
    });
  }

  void wait_signal() {
    signals.async_wait([this](beast::error_code ec, int signal) {
      if (ec) return;
      if (on_signal) on_signal(signal);
      wait_signal();
    });
  }
};

HttpServer::HttpServer(const std::string& address, std::uint16_t port, Handler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  tcp::endpoint endpoint(net::ip::make_address(address), port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
}

HttpServer::~HttpServer() {
  stop();
}

std::uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void HttpServer::start(std::function<void(int)> on_signal) {
  impl_->on_signal = std::move(on_signal);
  impl_->accept();
  impl_->wait_signal();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

bool HttpServer::wait_for_answers(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->in_flight.mutex);
  return impl_->in_flight.idle.wait_for(lock, timeout, [&] { return impl_->in_flight.count == 0; });
}

void HttpServer::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace wavoip::sim

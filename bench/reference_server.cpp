// The reference for the webhook ingest benchmark: the least a Boost.Beast server on one
// thread can do for the same requests. It reads each request (headers and body), answers
// 202 with a JSON body of the same shape as the plugin's, keeps the connection alive, and does
// nothing else: no parsing, no storage, no logging. Same model as the stub host (one
// io_context on one thread, one session per connection, Beast parser and serializer), so the
// ratio plugin/reference is what parsing, persisting and the host's plumbing cost.
//
//   bench_reference_server [--port-file FILE] [--port N]
#include "local_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::uint64_t g_delivery = 0;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : stream_(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(1024 * 1024);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->answer();
    });
  }

  void answer() {
    http::request<http::string_body> request = parser_->release();
    auto response = std::make_shared<http::response<http::string_body>>(http::status::accepted, request.version());
    response->set(http::field::server, "bench-reference");
    response->set(http::field::content_type, "application/json");
    response->keep_alive(request.keep_alive());
    response->body() = R"({"status":"accepted","delivery_id":)" + std::to_string(++g_delivery) + R"(,"type":"RECORD"})";
    response->prepare_payload();
    http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
      if (ec || !response->keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    // Socket options as the stub host leaves them (no TCP_NODELAY there either).
    if (!ec) std::make_shared<Session>(std::move(socket))->start();
    accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  const bench::ServerOptions options = bench::server_options(argc, argv);
  asio::io_context io(1);
  tcp::acceptor acceptor = bench::listen_on_loopback(io, options);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });
  accept(acceptor);
  io.run();
  return 0;
}

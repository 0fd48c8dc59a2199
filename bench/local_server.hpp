// What the bench's local servers (reference_server, storage_server) share: their command line
// (--port-file FILE, --port N) and their listening socket on 127.0.0.1.
#pragma once

#include <boost/asio.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace bench {

struct ServerOptions {
  std::string port_file;    // "" for none
  unsigned short port = 0;  // 0 for any free port
};

inline ServerOptions server_options(int argc, char** argv) {
  ServerOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port-file") == 0) options.port_file = argv[i + 1];
    if (std::strcmp(argv[i], "--port") == 0) options.port = static_cast<unsigned short>(std::stoi(argv[i + 1]));
  }
  return options;
}

// Listening on 127.0.0.1; the port it got is written to the port file aside and renamed into
// place, so that whoever waits for the file never reads half of it.
inline boost::asio::ip::tcp::acceptor listen_on_loopback(boost::asio::io_context& io, const ServerOptions& options) {
  namespace asio = boost::asio;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), options.port));
  acceptor.listen(asio::socket_base::max_listen_connections);
  if (!options.port_file.empty()) {
    std::ofstream(options.port_file + ".tmp") << acceptor.local_endpoint().port() << "\n";
    std::rename((options.port_file + ".tmp").c_str(), options.port_file.c_str());
  }
  return acceptor;
}

}  // namespace bench

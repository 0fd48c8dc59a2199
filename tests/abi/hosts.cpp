// hosts.cpp - see hosts.hpp.
#include "hosts.hpp"

#include <cctype>

#include "test_paths.h"

namespace hdp::test {

std::vector<HostKind> AvailableHosts() {
  std::vector<HostKind> hosts{{"c_host", HDP_TEST_C_HOST}};
#ifdef HDP_TEST_STUB_HOST
  hosts.push_back({"stub_host", HDP_TEST_STUB_HOST});
#endif
  return hosts;
}

testsupport::HostOptions HostOptionsFor(const HostKind& host, const std::filesystem::path& dir,
                                        const std::vector<std::string>& plugins,
                                        const std::vector<std::string>& extra_args) {
  testsupport::HostOptions options;
  options.host_binary = host.path;
  options.plugins = plugins;
  options.data_dir = dir / "data";
  options.run_dir = dir;
  options.extra_args = extra_args;
  options.sign_in = false;
  options.wait_for_healthz = false;
  options.start_now = true;
  options.wait_for_port = false;
  return options;
}

RawResponse Http(int port, std::string_view method, std::string_view target, std::string_view body,
                 std::chrono::milliseconds timeout) {
  return testsupport::raw_exchange(
      static_cast<uint16_t>(port),
      testsupport::build_request(std::string(method), std::string(target), {}, std::string(body)), timeout);
}

std::optional<long long> JsonNumber(const std::string& json, std::string_view name) {
  std::string key = "\"" + std::string(name) + "\":";
  auto pos = json.find(key);
  if (pos == std::string::npos) {
    return std::nullopt;
  }
  pos += key.size();
  while (pos < json.size() && json[pos] == ' ') {
    ++pos;
  }
  size_t end = pos;
  if (end < json.size() && json[end] == '-') {
    ++end;
  }
  while (end < json.size() && std::isdigit(static_cast<unsigned char>(json[end]))) {
    ++end;
  }
  if (end == pos) {
    return std::nullopt;
  }
  return std::stoll(json.substr(pos, end - pos));
}

}  // namespace hdp::test

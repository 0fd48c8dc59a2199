#include "test_support.hpp"

#include <chrono>
#include <climits>
#include <fstream>

namespace hdp::test {

std::string stub_host_path() {
  return HDP_STUB_HOST_PATH;
}
std::string probe_plugin_path() {
  return HDP_PROBE_PLUGIN_PATH;
}
std::string bad_plugin_path(const std::string& variant) {
  return std::string(HDP_BAD_PLUGIN_DIR) + "/bad_" + variant + ".so";
}

HostOptions stub_host(std::vector<std::string> args) {
  HostOptions options;
  options.host_binary = stub_host_path();
  options.extra_args = std::move(args);
  options.sign_in = false;
  options.stdout_apart = true;
  options.wait_for_healthz = false;
  options.start_now = true;
  return options;
}

HostOptions probe_host(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--virtual-clock", "--plugin", probe_plugin_path()};
  args.insert(args.end(), extra.begin(), extra.end());
  return stub_host(std::move(args));
}

HostOptions with_agent(HostOptions options) {
  options.add_agent = true;
  return options;
}

HttpResponse sign_in(HttpClient& http, const HostProcess& host) {
  return http.post(host.url("/login"),
                   std::string(R"({"name":")") + testsupport::kTestAgent + R"(","password":")" +
                       testsupport::kTestAgentPassword + R"("})",
                   {"Content-Type: application/json"});
}

int add_agent_to_database(const std::string& uri, const TempDir& dir) {
  const auto input = dir.path() / "password";
  {
    std::ofstream out(input, std::ios::trunc);
    out << testsupport::kTestAgentPassword << '\n';
  }
  testsupport::ChildProcess::Options options;
  options.stdin_file = input;
  testsupport::ChildProcess child({stub_host_path(), "agent", "add", testsupport::kTestAgent, "--database", uri},
                                  dir.path() / "agent-add.log", options);
  return child.wait_for_exit(std::chrono::seconds(30)).value_or(-1);
}

int64_t json_int(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return INT64_MIN;
  const auto* member = v.as_object().if_contains(key);
  if (member == nullptr || !member->is_number()) return INT64_MIN;
  boost::json::error_code ec;
  return member->to_number<int64_t>(ec);
}

std::vector<int64_t> json_ints(const boost::json::value& v, std::string_view key) {
  std::vector<int64_t> out;
  if (!v.is_object()) return out;
  const auto* member = v.as_object().if_contains(key);
  if (member == nullptr || !member->is_array()) return out;
  for (const auto& item : member->as_array()) {
    boost::json::error_code ec;
    out.push_back(item.to_number<int64_t>(ec));
  }
  return out;
}

}  // namespace hdp::test

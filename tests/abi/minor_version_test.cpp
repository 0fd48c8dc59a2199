// minor_version_test.cpp - plugins built against an older and a newer minor load and work.
//
// hdp_example_plugin_v1_0_small claims ABI 1.0.0 with exactly the version-1 struct sizes (the
// smallest a host accepts); hdp_example_plugin_v1_7 claims 1.7.0 with larger entry and plugin
// structs, as a plugin built against a future header would. Both must run in today's hosts.
#include <memory>
#include <ostream>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "hosts.hpp"
#include "test_paths.h"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

struct Build {
  std::string name;
  std::string path;
  std::string created_line;    // what the plugin logs about itself
  std::string messages_table;  // the message table it uses in a host that offers both
};

void PrintTo(const Build& build, std::ostream* out) {
  *out << build.name;
}

using MinorParam = std::tuple<HostKind, Build>;

std::string ParamName(const testing::TestParamInfo<MinorParam>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
}

class MinorVersionTest : public testing::TestWithParam<MinorParam> {};

TEST_P(MinorVersionTest, LoadsAndServesRoutesAndTimers) {
  const auto& [host_kind, build] = GetParam();
  TempDir dir;
  HostProcess host(HostOptionsFor(host_kind, dir.path(), {build.path}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();

  auto hello = Http(host.port(), "GET", "/example/hello");
  EXPECT_EQ(hello.status, 200) << hello.error;
  EXPECT_EQ(hello.body, "hello from example");
  auto tick = Http(host.port(), "POST", "/example/tick?ms=30");
  EXPECT_EQ(tick.status, 200) << tick.error;
  EXPECT_GE(JsonNumber(tick.body, "fired_after_ms").value_or(-1), 30);

  EXPECT_EQ(host.terminate(), 0);
  EXPECT_NE(host.log().find(build.created_line), std::string::npos) << host.log();
}

// A 1.0 plugin knows only hdp.messages/1 and keeps working in a host that also serves /2 and /3; a
// newer one uses /3. Either way the message and its attachment are written.
TEST_P(MinorVersionTest, WritesMessagesThroughTheTableItKnows) {
  const auto& [host_kind, build] = GetParam();
  TempDir dir;
  HostProcess host(HostOptionsFor(host_kind, dir.path(), {build.path}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  auto attach = Http(host.port(), "POST", "/example/attach", "call-minor");
  ASSERT_EQ(attach.status, 200) << attach.error << attach.body;
  EXPECT_EQ(JsonNumber(attach.body, "status"), 0);
  EXPECT_GT(JsonNumber(attach.body, "attachment_id").value_or(0), 0);
  EXPECT_EQ(lines_containing(host.log(), "writes messages through " + build.messages_table).size(), 1u) << host.log();
  EXPECT_EQ(host.terminate(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Hosts, MinorVersionTest,
    testing::Combine(testing::ValuesIn(AvailableHosts()),
                     testing::Values(Build{"v1_0_small", HDP_TEST_EXAMPLE_PLUGIN_V1_0,
                                           "created (ABI 1.0 (version-1 sizes), entry 80 bytes, plugin 56 bytes)",
                                           "hdp.messages/1"},
                                     Build{"v1_7_larger", HDP_TEST_EXAMPLE_PLUGIN_V1_7,
                                           "created (ABI 1.7 (larger structs), entry 96 bytes, plugin 72 bytes)",
                                           "hdp.messages/3"})),
    ParamName);

}  // namespace
}  // namespace hdp::test

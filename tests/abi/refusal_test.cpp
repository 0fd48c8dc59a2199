// refusal_test.cpp - every host refuses each broken plugin the same way: exit status 2 before
// serving anything, exactly one log line naming the file as refused (with the exact reason for the
// C host), and no plugin code run that the ABI says must not run and all that it says must run
// (the test plugins print a marker line for every lifecycle call).
#include <algorithm>
#include <filesystem>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "hosts.hpp"
#include "test_paths.h"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

struct Refusal {
  std::string name;
  std::vector<std::string> files;  // loaded in this order; the last one is refused
  std::string reason;              // in the C host's refusal line
  std::vector<std::string> must_run;
  std::vector<std::string> must_not_run;
};

// Markers are "test_plugin <id>: <call>"; matching on the call is enough.
const std::vector<Refusal>& Refusals() {
  static const std::vector<Refusal> refusals = {
      {"not_a_shared_object", {"bad_not_elf.so"}, "not a loadable shared object", {}, {"test_plugin"}},
      {"no_entry_symbol", {"bad_no_entry.so"}, "no symbol hdp_plugin_entry_v1", {}, {"test_plugin"}},
      {"major_2", {"bad_major2.so"}, "ABI major 2", {}, {"test_plugin"}},
      {"entry_below_v1_size",
       {"bad_small_entry.so"},
       "entry struct_size 72 is below the version-1 size 80",
       {},
       {"test_plugin"}},
      {"null_id", {"bad_null_id.so"}, "entry id is missing", {}, {"test_plugin"}},
      {"duplicate_id",
       {"dup_a.so", "dup_b.so"},
       "duplicate plugin id org.hdp.test.duplicate",
       {"entry init", "plugin destroy", "entry deinit"},
       {}},
      {"entry_init_false",
       {"bad_entry_init_false.so"},
       "entry init returned false",
       {"entry init"},
       {"create_plugin", "entry deinit"}},
      {"plugin_init_error",
       {"bad_plugin_init_error.so"},
       "plugin init failed with status -50",
       {"plugin init", "plugin destroy", "entry deinit"},
       {"plugin start"}},
      {"start_error",
       {"bad_start_error.so"},
       "plugin start failed with status -30",
       {"plugin start", "plugin destroy", "entry deinit"},
       {"plugin stop"}},
      {"create_plugin_returns_null",
       {"bad_create_null.so"},
       "create_plugin returned NULL",
       {"create_plugin"},
       {"plugin init"}},
      {"create_plugin_is_null", {"bad_null_create.so"}, "entry create_plugin is NULL", {}, {}},
  };
  return refusals;
}

void PrintTo(const Refusal& refusal, std::ostream* out) {
  *out << refusal.name;
}

using RefusalParam = std::tuple<HostKind, Refusal>;

std::string ParamName(const testing::TestParamInfo<RefusalParam>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
}

class RefusalTest : public testing::TestWithParam<RefusalParam> {};

TEST_P(RefusalTest, ExitsTwoWithOneLineNamingFileAndReason) {
  const auto& [host_kind, refusal] = GetParam();
  std::vector<std::string> plugins;
  for (const auto& file : refusal.files) {
    plugins.push_back(TestPlugin(file));
  }
  const std::string refused = plugins.back();

  TempDir dir;
  HostProcess host(HostOptionsFor(host_kind, dir.path(), plugins));
  EXPECT_EQ(host.wait_exit(10s), 2);
  EXPECT_FALSE(std::filesystem::exists(host.port_file())) << "served before refusing";
  const std::string log = host.log();

  // Exactly one line names the file as refused ("refused plugin <path>: <reason>" in the C host,
  // the stub host words it its own way).
  std::vector<std::string> lines;
  for (const auto& line : lines_containing(log, refused)) {
    if (line.find("refus") != std::string::npos || line.find("Refus") != std::string::npos) {
      lines.push_back(line);
    }
  }
  ASSERT_EQ(lines.size(), 1u) << log;
  if (host_kind.name == "c_host") {
    EXPECT_NE(lines[0].find("refused plugin " + refused + ": " + refusal.reason), std::string::npos) << lines[0];
    EXPECT_EQ(lines_containing(log, "refused plugin").size(), 1u) << log;
  }
  for (const auto& marker : refusal.must_run) {
    EXPECT_NE(log.find(": " + marker), std::string::npos) << marker << " did not run\n" << log;
  }
  for (const auto& marker : refusal.must_not_run) {
    EXPECT_EQ(log.find(marker), std::string::npos) << marker << " ran\n" << log;
  }
}

INSTANTIATE_TEST_SUITE_P(Hosts, RefusalTest,
                         testing::Combine(testing::ValuesIn(AvailableHosts()), testing::ValuesIn(Refusals())),
                         ParamName);

// Duplicate ids: the first plugin loaded fine and must be torn down in order, exactly once.
TEST(CHostRefusal, DuplicateIdRunsOnlyTheFirstPluginsCode) {
  TempDir dir;
  HostProcess host(
      HostOptionsFor({"c_host", HDP_TEST_C_HOST}, dir.path(), {TestPlugin("dup_a.so"), TestPlugin("dup_b.so")}));
  EXPECT_EQ(host.wait_exit(10s), 2);
  const std::string log = host.log();
  EXPECT_EQ(lines_containing(log, ": entry init").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, ": plugin destroy").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, ": entry deinit").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, ": plugin start").size(), 0u) << log;
}

// A refusal after other plugins started stops them in the ABI order before exiting.
TEST(CHostRefusal, StartFailureStopsThePluginsAlreadyStarted) {
  TempDir dir;
  HostProcess host(HostOptionsFor({"c_host", HDP_TEST_C_HOST}, dir.path(),
                                  {TestPlugin("dup_a.so"), HDP_TEST_EXAMPLE_PLUGIN, TestPlugin("bad_start_error.so")}));
  EXPECT_EQ(host.wait_exit(10s), 2);
  const std::string log = host.log();
  ASSERT_EQ(lines_containing(log, "refused plugin").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "org.hdp.test.duplicate: plugin stop").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "[org.hdp.example] stop:").size(), 1u) << log;
  EXPECT_LT(log.find("[org.hdp.example] stop:"), log.find("org.hdp.test.duplicate: plugin stop"))
      << "reverse load order\n"
      << log;
}

}  // namespace
}  // namespace hdp::test

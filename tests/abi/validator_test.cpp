// validator_test.cpp - hdp-validate passes every example build and fails each broken plugin with
// the check that names its defect.
#include <stdio.h>
#include <sys/wait.h>

#include <array>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hosts.hpp"
#include "test_paths.h"

namespace hdp::test {
namespace {

struct Run {
  int exit_status = -1;
  std::string output;
};

Run Validate(const std::vector<std::string>& args) {
  std::string command = HDP_TEST_VALIDATOR;
  for (const auto& arg : args) {
    command += " '" + arg + "'";
  }
  command += " 2>&1";
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return run;
  }
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    run.output.append(buffer.data(), n);
  }
  int status = pclose(pipe);
  run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class ValidatorPasses : public testing::TestWithParam<std::string> {};

TEST_P(ValidatorPasses, EveryCheck) {
  auto run = Validate({GetParam()});
  EXPECT_EQ(run.exit_status, 0) << run.output;
  EXPECT_EQ(lines_containing(run.output, "FAIL").size(), 0u) << run.output;
  EXPECT_EQ(lines_containing(run.output, "PASS  exactly one exported dynamic symbol, hdp_plugin_entry_v1").size(), 1u)
      << run.output;
  EXPECT_EQ(lines_containing(run.output, "PASS  the lifecycle ran without crashing").size(), 1u) << run.output;
  EXPECT_NE(run.output.find("OK: 0 failed checks"), std::string::npos) << run.output;
}

INSTANTIATE_TEST_SUITE_P(Plugins, ValidatorPasses,
                         testing::Values(HDP_TEST_EXAMPLE_PLUGIN, HDP_TEST_EXAMPLE_PLUGIN_V1_0,
                                         HDP_TEST_EXAMPLE_PLUGIN_V1_7, TestPlugin("dup_a.so")),
                         [](const testing::TestParamInfo<std::string>& info) { return std::to_string(info.index); });

struct Failure {
  std::string name;
  std::vector<std::string> files;
  std::string failed_check;  // the start of the FAIL line
};

void PrintTo(const Failure& failure, std::ostream* out) {
  *out << failure.name;
}

class ValidatorFails : public testing::TestWithParam<Failure> {};

TEST_P(ValidatorFails, WithTheCheckThatNamesTheDefect) {
  std::vector<std::string> paths;
  for (const auto& file : GetParam().files) {
    paths.push_back(TestPlugin(file));
  }
  auto run = Validate(paths);
  EXPECT_EQ(run.exit_status, 1) << run.output;
  EXPECT_GE(lines_containing(run.output, "FAIL  " + GetParam().failed_check).size(), 1u) << run.output;
  EXPECT_NE(run.output.find("FAILED: "), std::string::npos) << run.output;
}

INSTANTIATE_TEST_SUITE_P(
    BadPlugins, ValidatorFails,
    testing::Values(Failure{"not_elf", {"bad_not_elf.so"}, "the file is an ELF64 shared object"},
                    Failure{"no_entry", {"bad_no_entry.so"}, "exactly one exported dynamic symbol"},
                    Failure{"major_2", {"bad_major2.so"}, "ABI major 2"},
                    Failure{"small_entry", {"bad_small_entry.so"}, "entry struct_size 72 >= version-1 size 80"},
                    Failure{"null_id", {"bad_null_id.so"}, "entry id is non-NULL"},
                    Failure{"null_create", {"bad_null_create.so"}, "entry init, deinit and create_plugin"},
                    Failure{"entry_init_false", {"bad_entry_init_false.so"}, "entry init("},
                    Failure{"plugin_init_error", {"bad_plugin_init_error.so"}, "plugin init returns HDP_OK"},
                    Failure{"start_error", {"bad_start_error.so"}, "plugin start returns HDP_OK"},
                    Failure{"create_null", {"bad_create_null.so"}, "create_plugin returns an object"},
                    Failure{"crash", {"bad_crash.so"}, "the lifecycle ran without crashing"},
                    Failure{"duplicate_id", {"dup_a.so", "dup_b.so"}, "plugin ids are unique"}),
    [](const testing::TestParamInfo<Failure>& info) { return info.param.name; });

TEST(Validator, AllowRefusalAcceptsACleanRefusal) {
  auto run = Validate({"--allow-refusal", TestPlugin("bad_plugin_init_error.so")});
  EXPECT_EQ(run.exit_status, 0) << run.output;
  EXPECT_EQ(lines_containing(run.output, "WARN  plugin init refused").size(), 1u) << run.output;
  EXPECT_EQ(lines_containing(run.output, "PASS  plugin destroy returns").size(), 1u) << run.output;
}

TEST(Validator, ListsTheExtensionsAskedForWithTheMinorThatIntroducedThem) {
  auto run = Validate({HDP_TEST_EXAMPLE_PLUGIN});
  EXPECT_EQ(run.exit_status, 0) << run.output;
  EXPECT_EQ(lines_containing(run.output, "asked for extension \"hdp.messages/3\" (ABI 1.3)").size(), 1u) << run.output;
  EXPECT_EQ(lines_containing(run.output, "asked for extension \"hdp.messages/2\" (ABI 1.2)").size(), 1u) << run.output;
  EXPECT_EQ(lines_containing(run.output, "asked for extension \"hdp.messages/1\" (ABI 1.0)").size(), 1u) << run.output;
  // The example falls back to /2 and /1, so no warning.
  EXPECT_EQ(lines_containing(run.output, "WARN").size(), 0u) << run.output;
}

TEST(Validator, WarnsAboutAMessages2PluginWithoutTheV1Fallback) {
  auto run = Validate({TestPlugin("messages2_only.so")});
  EXPECT_EQ(run.exit_status, 0) << run.output;  // a warning, not a failure
  EXPECT_EQ(lines_containing(run.output, "WARN  plugin asked for hdp.messages/2 but never for hdp.messages/1").size(),
            1u)
      << run.output;
}

TEST(Validator, UsageErrorsExitTwo) {
  EXPECT_EQ(Validate({}).exit_status, 2);
  EXPECT_EQ(Validate({"--bogus"}).exit_status, 2);
}

}  // namespace
}  // namespace hdp::test

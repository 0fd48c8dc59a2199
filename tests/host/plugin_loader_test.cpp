// check_entry on hand-made entries: what entry.h says a host refuses, and what it accepts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plugin_loader.hpp"

namespace hdp::host {
namespace {

bool entry_init(const char*) {
  return true;
}
void entry_deinit() {}
const hdp_plugin_t* create(const hdp_host_t*) {
  return nullptr;
}

hdp_plugin_entry_t good_entry() {
  return hdp_plugin_entry_t{HDP_VERSION_INIT,
                            sizeof(hdp_plugin_entry_t),
                            "org.example.good",
                            "Good",
                            "",
                            "1",
                            "",
                            entry_init,
                            entry_deinit,
                            create};
}

std::string refusal(const hdp_plugin_entry_t& entry, std::vector<std::string> loaded = {}) {
  const LoadResult result = check_entry(&entry, "/x.so", loaded);
  const auto* refused = std::get_if<LoadRefusal>(&result);
  return refused == nullptr ? std::string() : refused->reason;
}

TEST(PluginLoader, AcceptsAGoodEntryAndAnyMinor) {
  hdp_plugin_entry_t entry = good_entry();
  EXPECT_EQ(refusal(entry), "");
  entry.abi_version.minor = 99;
  entry.struct_size = sizeof(hdp_plugin_entry_t) + 64;  // a newer minor's longer struct
  EXPECT_EQ(refusal(entry), "");
  entry.struct_size = HDP_PLUGIN_ENTRY_V1_SIZE;  // exactly version 1.0
  EXPECT_EQ(refusal(entry), "");
}

TEST(PluginLoader, RefusesWhatEntryHSays) {
  hdp_plugin_entry_t entry = good_entry();
  entry.abi_version.major = 2;
  entry.abi_version.minor = 0;
  EXPECT_NE(refusal(entry).find("ABI 2.0"), std::string::npos);
  entry = good_entry();
  entry.struct_size = HDP_PLUGIN_ENTRY_V1_SIZE - 1;
  EXPECT_NE(refusal(entry).find("struct_size"), std::string::npos);
  entry = good_entry();
  entry.id = nullptr;
  EXPECT_NE(refusal(entry).find("no plugin id"), std::string::npos);
  entry.id = "";
  EXPECT_NE(refusal(entry).find("no plugin id"), std::string::npos);
  entry.id = "../escape";
  EXPECT_NE(refusal(entry).find("not valid"), std::string::npos);
  entry = good_entry();
  entry.vendor = nullptr;
  EXPECT_NE(refusal(entry).find("NULL"), std::string::npos);
  entry = good_entry();
  entry.create_plugin = nullptr;
  EXPECT_NE(refusal(entry).find("NULL"), std::string::npos);
  entry = good_entry();
  EXPECT_NE(refusal(entry, {"org.example.good"}).find("duplicate plugin id"), std::string::npos);
}

TEST(PluginLoader, RefusesFilesThatAreNotPlugins) {
  const LoadResult missing = load_plugin("/nonexistent/plugin.so", {});
  ASSERT_TRUE(std::holds_alternative<LoadRefusal>(missing));
  const LoadResult directory = load_plugin("/tmp", {});
  ASSERT_TRUE(std::holds_alternative<LoadRefusal>(directory));
  EXPECT_EQ(std::get<LoadRefusal>(directory).reason, "not a regular file");
}

}  // namespace
}  // namespace hdp::host

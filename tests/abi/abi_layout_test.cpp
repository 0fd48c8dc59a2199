// abi_layout_test.cpp - the version-1 layout pinned by a C++20 compiler, plus the version rule.
//
// The static_asserts come from the same table as abi_layout_c.c, so C and C++ agree on every
// size, offset and value; a mismatch fails the build, not a test run.
#include <cstddef>
#include <cstring>
#include <string_view>
#include <type_traits>

#include <gtest/gtest.h>

#include <hdp/hdp.h>

#include "abi_layout_expectations.h"

namespace {

#define CHECK_SIZE(type, size) static_assert(sizeof(type) == (size), "sizeof(" #type ")");
#define CHECK_OFFSET(type, member, offset) \
  static_assert(offsetof(type, member) == (offset), "offsetof(" #type ", " #member ")");
#define CHECK_CONSTANT(name, value) static_assert(static_cast<long long>(name) == (value), "value of " #name);
#define CHECK_LAYOUT(type, size) \
  static_assert(std::is_standard_layout_v<type> && std::is_trivially_copyable_v<type>, #type);

HDP_ABI_SIZES(CHECK_SIZE)
HDP_ABI_OFFSETS(CHECK_OFFSET)
HDP_ABI_CONSTANTS(CHECK_CONSTANT)
HDP_ABI_SCALARS(CHECK_SIZE)
HDP_ABI_SIZES(CHECK_LAYOUT)

// Enumerations and statuses cross as fixed-width integers.
static_assert(std::is_same_v<hdp_status_t, std::int32_t>);
static_assert(std::is_same_v<decltype(hdp_version_t{}.major), std::uint32_t>);

// Extension ids are versioned strings and never change for a released version.
static_assert(std::string_view{HDP_ENTRY_SYMBOL} == "hdp_plugin_entry_v1");
static_assert(std::string_view{HDP_EXT_TIMERS} == "hdp.timers/1");
static_assert(std::string_view{HDP_EXT_POSIX_FD} == "hdp.posix-fd/1");
static_assert(std::string_view{HDP_EXT_HTTP} == "hdp.http/1");
static_assert(std::string_view{HDP_EXT_MESSAGES} == "hdp.messages/1");
static_assert(std::string_view{HDP_EXT_MESSAGES_V2} == "hdp.messages/2");
static_assert(std::string_view{HDP_EXT_ATTACHMENTS} == "hdp.attachments/1");

// Every struct passed by pointer starts with its struct_size (the entry and host table right
// after abi_version).
static_assert(offsetof(hdp_plugin_entry_t, struct_size) == sizeof(hdp_version_t));
static_assert(offsetof(hdp_host_t, struct_size) == sizeof(hdp_version_t));

TEST(AbiVersion, SameMajorIsCompatibleWhateverTheMinors) {
  EXPECT_TRUE(hdp_version_is_compatible(hdp_version_t{HDP_VERSION_MAJOR, 0, 0}));
  EXPECT_TRUE(hdp_version_is_compatible(hdp_version_t{HDP_VERSION_MAJOR, 7, 3}));
  EXPECT_TRUE(hdp_version_is_compatible(hdp_version_t HDP_VERSION_INIT));
}

TEST(AbiVersion, OtherMajorsAreNot) {
  EXPECT_FALSE(hdp_version_is_compatible(hdp_version_t{HDP_VERSION_MAJOR + 1, 0, 0}));
  EXPECT_FALSE(hdp_version_is_compatible(hdp_version_t{0, HDP_VERSION_MINOR, 0}));
}

TEST(AbiVersion, VersionOneSizesEndAtTheLastVersionOneMember) {
  // The minimum sizes never include tail padding, so they are the same whichever minor built
  // the struct; no 1.0 struct ends in padding (hdp_attachment_result_t fills it with reserved).
  EXPECT_EQ(HDP_ATTACHMENT_RESULT_V1_SIZE, sizeof(hdp_attachment_result_t));
  EXPECT_EQ(HDP_PLUGIN_ENTRY_V1_SIZE, sizeof(hdp_plugin_entry_t));
  EXPECT_EQ(HDP_HOST_V1_SIZE, sizeof(hdp_host_t));
  // The 1.2 structs of hdp.messages/2 have no tail padding either.
  EXPECT_EQ(HDP_MESSAGE_RESULT_V1_SIZE, sizeof(hdp_message_result_t));
  EXPECT_EQ(HDP_HOST_MESSAGES2_V1_SIZE, sizeof(hdp_host_messages2_t));
  EXPECT_EQ(HDP_HOST_MESSAGES3_V1_SIZE, sizeof(hdp_host_messages3_t));
}

}  // namespace

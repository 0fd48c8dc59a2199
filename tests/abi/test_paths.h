// test_paths.h - where the binaries under test are. tests/abi/CMakeLists.txt passes each path as a
// compile definition ($<TARGET_FILE:...>), so the tests always run what this build produced.
#pragma once

#include <string>
#include <string_view>

#if !defined(HDP_TEST_C_HOST) || !defined(HDP_TEST_VALIDATOR) || !defined(HDP_TEST_EXAMPLE_PLUGIN) || \
    !defined(HDP_TEST_EXAMPLE_PLUGIN_V1_0) || !defined(HDP_TEST_EXAMPLE_PLUGIN_V1_7) || !defined(HDP_TEST_PLUGIN_DIR)
#error "tests/abi/CMakeLists.txt defines the HDP_TEST_* paths"
#endif
// HDP_TEST_STUB_HOST is defined only when the stub host target exists.

namespace hdp::test {

// A plugin built by tests/abi (the refusal and duplicate-id plugins).
inline std::string TestPlugin(std::string_view file_name) {
  return std::string(HDP_TEST_PLUGIN_DIR) + "/" + std::string(file_name);
}

}  // namespace hdp::test

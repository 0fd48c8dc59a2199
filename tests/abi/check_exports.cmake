# check_exports.cmake - `nm -D --defined-only PLUGIN` must list exactly one symbol: the data object
# hdp_plugin_entry_v1. Run: cmake -DNM=<nm> -DPLUGIN=<file.so> -P check_exports.cmake
if(NOT NM OR NOT PLUGIN)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DPLUGIN=<file.so> -P check_exports.cmake")
endif()
execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN}
                OUTPUT_VARIABLE symbols ERROR_VARIABLE errors RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${PLUGIN} failed (${result}): ${errors}")
endif()
string(STRIP "${symbols}" symbols)
string(REPLACE "\n" ";" lines "${symbols}")
list(LENGTH lines count)
if(NOT count EQUAL 1 OR NOT symbols MATCHES "^[0-9a-fA-F]+ [DR] hdp_plugin_entry_v1$")
  message(FATAL_ERROR "${PLUGIN} must export exactly the data symbol hdp_plugin_entry_v1; "
                      "nm -D --defined-only lists ${count}:\n${symbols}")
endif()
message(STATUS "${PLUGIN}: ${symbols}")

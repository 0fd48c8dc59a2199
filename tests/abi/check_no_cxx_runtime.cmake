# check_no_cxx_runtime.cmake - BINARY's dynamic section must not name a C++ runtime.
# Run: cmake -DREADELF=<readelf> -DBINARY=<file> -P check_no_cxx_runtime.cmake
include(${CMAKE_CURRENT_LIST_DIR}/../needed_libraries.cmake)
hdp_needed_libraries(needed "${READELF}" "${BINARY}")
foreach(line IN LISTS needed)
  if(line MATCHES "libstdc\\+\\+|libc\\+\\+|libc\\+\\+abi")
    message(FATAL_ERROR "${BINARY} needs a C++ runtime: ${line}")
  endif()
endforeach()
message(STATUS "${BINARY}: ${needed}")

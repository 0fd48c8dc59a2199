# needed_libraries.cmake - for the script tests (cmake -P) that check what a shipped binary loads.
# hdp_needed_libraries(<out> <readelf> <binary>): the binary's DT_NEEDED entries, in load order,
# as readelf prints them ("(NEEDED) Shared library: [libc.so.6]").
function(hdp_needed_libraries out readelf binary)
  if(NOT readelf OR NOT binary)
    message(FATAL_ERROR "usage: cmake -DREADELF=<readelf> -DBINARY=<file> -P ${CMAKE_SCRIPT_MODE_FILE}")
  endif()
  execute_process(COMMAND ${readelf} -d ${binary} OUTPUT_VARIABLE dynamic RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${readelf} -d ${binary} failed (${result})")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" needed "${dynamic}")
  set(${out} "${needed}" PARENT_SCOPE)
endfunction()

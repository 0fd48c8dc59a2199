# wavoip_layer(<target>): what the plugin's static layers (core, store, fetch) share, so that
# they are built alike. Call it from the layer's folder, after add_library(<target> STATIC ...).
#   - its include/ folder is public (include paths name the layer: <wavoip/core/...>);
#   - C++20 without extensions;
#   - PIC and hidden visibility: the library ends up inside the plugin's .so, which exports
#     exactly one symbol, so nothing from a layer may leak into its dynamic symbol table;
#   - the project's warning set (hdp_warnings: -Wall -Wextra -Wpedantic, -Werror unless
#     HDP_WERROR is OFF); the same flags when the folder is built on its own.
include_guard(GLOBAL)

function(wavoip_layer target)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES
    CXX_EXTENSIONS OFF
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET hdp_warnings)
    target_link_libraries(${target} PRIVATE hdp_warnings)
  else()
    target_compile_options(${target} PRIVATE
      $<$<CXX_COMPILER_ID:GNU,Clang,AppleClang>:-Wall -Wextra -Wpedantic -Werror>)
  endif()
endfunction()

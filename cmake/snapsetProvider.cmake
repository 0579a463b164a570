# snapset_add_provider(NAME SOURCES...): builds a provider plugin the way every
# provider must be built: a MODULE library against snapset::sdk only, hidden
# visibility, so the single exported symbol is snapset_provider_entry.
# snapset_add_array_driver(NAME SOURCES...): the same for an array driver
# (include/snapset/array.h), whose one symbol is snapset_array_driver_entry.
function(_snapset_add_plugin name entry)
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE snapset::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # An unresolved symbol must fail the build, not the dlopen() on a user's
  # machine. (Not in snapset's own clang sanitizer builds: there the
  # sanitizer runtime comes from the executable that loads the plugin.)
  if(NOT (SNAPSET_SANITIZE AND CMAKE_CXX_COMPILER_ID MATCHES "Clang"))
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
  # Hidden visibility does not reach template code instantiated from the
  # standard library headers (their namespace is explicitly "default"), so a
  # version script keeps every symbol but the entry point local.
  set(map ${CMAKE_CURRENT_BINARY_DIR}/${name}.exports.map)
  file(WRITE ${map} "{ global: ${entry}; local: *; };\n")
  target_link_options(${name} PRIVATE -Wl,--version-script=${map})
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${map})
endfunction()

function(snapset_add_provider name)
  _snapset_add_plugin(${name} snapset_provider_entry ${ARGN})
endfunction()

function(snapset_add_array_driver name)
  _snapset_add_plugin(${name} snapset_array_driver_entry ${ARGN})
endfunction()

# Compiler cache for weft's own presets (CMakePresets.json passes this file as
# CMAKE_PROJECT_INCLUDE_BEFORE, so embedding projects and plain `cmake -B` are unaffected).
# Uses ccache when it is installed and no launcher was chosen; WEFT_CCACHE=OFF turns it off.
option(WEFT_CCACHE "Use ccache as the compiler launcher when it is installed" ON)
if(WEFT_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER AND NOT CMAKE_C_COMPILER_LAUNCHER)
  find_program(WEFT_CCACHE_PROGRAM ccache)
  if(WEFT_CCACHE_PROGRAM)
    set(CMAKE_C_COMPILER_LAUNCHER "${WEFT_CCACHE_PROGRAM}")
    set(CMAKE_CXX_COMPILER_LAUNCHER "${WEFT_CCACHE_PROGRAM}")
  endif()
endif()

# Load tools (include()d from bench/CMakeLists.txt). Paths are relative to this file.
#   weft-load           closed-loop framed-echo load generator on weft's own client side
#                       (platform::Loop; weft::frame encodes and decodes the frames)
#   weft-baseline-echo  plain single-threaded edge-triggered epoll echo server (no weft code):
#                       the baseline weft-echo is compared against (bench/run_echo_compare.sh)
# Build Release for numbers worth quoting.
add_executable(weft-load ${CMAKE_CURRENT_LIST_DIR}/weft_load.cc)
target_link_libraries(weft-load PRIVATE weft::frame weft::platform weft_internal_options)
set_target_properties(weft-load PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(weft-baseline-echo ${CMAKE_CURRENT_LIST_DIR}/baseline/echo_epoll.cc)
target_link_libraries(weft-baseline-echo PRIVATE weft_internal_options)
set_target_properties(weft-baseline-echo PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

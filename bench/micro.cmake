# Google Benchmark micro-benchmarks (include()d from bench/CMakeLists.txt). Paths are
# relative to this file. Build RelWithDebInfo or Release for numbers worth quoting.
if(NOT TARGET benchmark::benchmark)
  find_package(benchmark REQUIRED)
endif()

add_executable(weft_frame_bench ${CMAKE_CURRENT_LIST_DIR}/frame_bench.cc)
target_link_libraries(weft_frame_bench PRIVATE
  weft::frame benchmark::benchmark weft_internal_options)

add_executable(weft_platform_bench ${CMAKE_CURRENT_LIST_DIR}/platform_bench.cc)
target_link_libraries(weft_platform_bench PRIVATE
  weft::platform benchmark::benchmark weft_internal_options)

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

# weft_http_bench: RequestParser against llhttp and http_parser in one binary. Built only
# when both are installed (`scripts/deps.sh bench`: node-llhttp ships llhttp's C sources under
# /usr/share/llhttp, libhttp-parser-dev a static libhttp_parser.a); otherwise skipped with a
# status line — never a configure error, and never in cross builds (host paths only).
find_path(WEFT_LLHTTP_SOURCE_DIR llhttp.c PATHS /usr/share/llhttp NO_DEFAULT_PATH)
find_path(WEFT_LLHTTP_INCLUDE_DIR llhttp.h PATHS /usr/share/include/llhttp /usr/include
          NO_DEFAULT_PATH)
find_path(WEFT_HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(WEFT_HTTP_PARSER_LIBRARY NAMES libhttp_parser.a http_parser)
if(WEFT_LLHTTP_SOURCE_DIR AND WEFT_LLHTTP_INCLUDE_DIR AND WEFT_HTTP_PARSER_INCLUDE_DIR
   AND WEFT_HTTP_PARSER_LIBRARY AND NOT CMAKE_CROSSCOMPILING)
  # llhttp is C built with its own defaults (third-party code: none of weft's warnings).
  add_library(weft_bench_llhttp STATIC ${WEFT_LLHTTP_SOURCE_DIR}/llhttp.c
              ${WEFT_LLHTTP_SOURCE_DIR}/api.c ${WEFT_LLHTTP_SOURCE_DIR}/http.c)
  target_include_directories(weft_bench_llhttp SYSTEM PUBLIC ${WEFT_LLHTTP_INCLUDE_DIR})
  target_compile_options(weft_bench_llhttp PRIVATE -O2)
  # One translation unit per C parser: their headers declare the same enumerators.
  add_executable(weft_http_bench ${CMAKE_CURRENT_LIST_DIR}/http_bench.cc
                 ${CMAKE_CURRENT_LIST_DIR}/http_peer_llhttp.cc
                 ${CMAKE_CURRENT_LIST_DIR}/http_peer_http_parser.cc)
  target_include_directories(weft_http_bench SYSTEM PRIVATE ${WEFT_HTTP_PARSER_INCLUDE_DIR})
  target_link_libraries(weft_http_bench PRIVATE
    weft::http weft_bench_llhttp ${WEFT_HTTP_PARSER_LIBRARY} benchmark::benchmark
    weft_internal_options)
else()
  message(STATUS "weft_http_bench: skipped (needs node-llhttp and libhttp-parser-dev: "
                 "scripts/deps.sh bench)")
endif()

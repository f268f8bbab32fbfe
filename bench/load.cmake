# Load tools (include()d from bench/CMakeLists.txt). Paths are relative to this file.
#   weft-load              closed-loop load generator on weft's own client side
#                          (platform::Loop): framed echo (weft::frame encodes and decodes the
#                          frames) or, with --proto msg, unary calls of the message protocol
#   weft-baseline-echo     plain single-threaded edge-triggered epoll echo server (no weft
#                          code): the baseline weft-echo is compared against
#                          (bench/run_echo_compare.sh)
#   weft-msg-bench-server  weft::msg::Server with one method answering the request's payload
#                          (bench/run_unary_compare.sh, bench/run_grpc_compare.sh)
#   weft-pubsub-bench      pub/sub fan-out over the binary protocol (issue #14): one process,
#                          a msg::Server with a pubsub::Hub and N subscriber connections
# Build Release for numbers worth quoting.
add_executable(weft-load ${CMAKE_CURRENT_LIST_DIR}/weft_load.cc)
target_link_libraries(weft-load PRIVATE weft::frame weft::msg weft::msg_server weft::platform
                      weft_internal_options)
set_target_properties(weft-load PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(weft-baseline-echo ${CMAKE_CURRENT_LIST_DIR}/baseline/echo_epoll.cc)
target_link_libraries(weft-baseline-echo PRIVATE weft_internal_options)
set_target_properties(weft-baseline-echo PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(weft-msg-bench-server ${CMAKE_CURRENT_LIST_DIR}/msg_server.cc)
target_link_libraries(weft-msg-bench-server PRIVATE weft::msg_server weft_internal_options)
set_target_properties(weft-msg-bench-server PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(weft-pubsub-bench ${CMAKE_CURRENT_LIST_DIR}/pubsub_fanout.cc)
target_link_libraries(weft-pubsub-bench PRIVATE weft::msg_server weft::pubsub weft::platform
                      weft_internal_options)
set_target_properties(weft-pubsub-bench PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

# weft-http-bench-server: weft::http::Server as the peers harness's http and sse candidate
# (bench/run_http_compare.sh).
add_executable(weft-http-bench-server ${CMAKE_CURRENT_LIST_DIR}/http_server.cc)
target_link_libraries(weft-http-bench-server PRIVATE weft::http_server weft::msg_server
                      weft_internal_options)
set_target_properties(weft-http-bench-server PROPERTIES
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

# weft-tls-terminator-<backend>: weft::tls_proxy's terminator as its own process, one per
# TLS backend built, in front of weft-http-bench-server (bench/run_https_compare.sh).
foreach(_backend openssl mbedtls)
  if(TARGET weft_tls_proxy_${_backend})
    add_executable(weft-tls-terminator-${_backend} ${CMAKE_CURRENT_LIST_DIR}/tls_terminator.cc)
    target_link_libraries(weft-tls-terminator-${_backend} PRIVATE weft::tls_proxy_${_backend}
                          weft_internal_options)
    target_include_directories(weft-tls-terminator-${_backend} PRIVATE
                               ${PROJECT_SOURCE_DIR}/examples/common)
    set_target_properties(weft-tls-terminator-${_backend} PROPERTIES
                          RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  endif()
endforeach()

# weft-mux-bench: weft::mux channels on loopback (bench/run_mux_compare.sh): one channel's
# bulk rate beside raw u32-framed TCP, fairness under K bulk channels, open/close cost.
add_executable(weft-mux-bench ${CMAKE_CURRENT_LIST_DIR}/mux_bench.cc)
target_link_libraries(weft-mux-bench PRIVATE weft::mux_conn weft::frame weft_internal_options)
set_target_properties(weft-mux-bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

# weft-mux-nghttp2: one HTTP/2 stream of nghttp2 uploading on loopback, the peer of
# weft-mux-bench bulk (bench/run_mux_compare.sh). Only where libnghttp2-dev is installed
# (scripts/deps.sh bench); CI builds without it.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(WEFT_NGHTTP2 QUIET IMPORTED_TARGET libnghttp2)
endif()
if(WEFT_NGHTTP2_FOUND AND NOT CMAKE_CROSSCOMPILING)
  add_executable(weft-mux-nghttp2 ${CMAKE_CURRENT_LIST_DIR}/mux_nghttp2.cc)
  find_package(Threads REQUIRED)
  target_link_libraries(weft-mux-nghttp2 PRIVATE PkgConfig::WEFT_NGHTTP2 Threads::Threads)
  set_target_properties(weft-mux-nghttp2 PROPERTIES
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endif()

# weft-mqtt-bench: the loop MQTT Client through a broker and back (bench/run_mqtt_bench.sh
# starts mosquitto on loopback): QoS 0 and QoS 1 messages per second.
add_executable(weft-mqtt-bench ${CMAKE_CURRENT_LIST_DIR}/mqtt_bench.cc)
target_link_libraries(weft-mqtt-bench PRIVATE weft::mqtt_client weft_internal_options)
set_target_properties(weft-mqtt-bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

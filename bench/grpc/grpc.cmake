# gRPC C++ peer for the unary-call comparison (include()d from bench/CMakeLists.txt):
#   weft-grpc-bench-server  async (CompletionQueue) unary server, one thread polling one queue
#   weft-grpc-load          async closed-loop client: N channels x K calls in flight
# WEFT_BENCH_GRPC: AUTO (default) builds them when pkg-config finds grpc++ and protobuf and
# protoc and grpc_cpp_plugin are on the PATH, and says so either way; ON makes a missing
# piece a configure error; OFF skips them. CI installs no gRPC, so AUTO skips them there.
# Debian: apt-get install libgrpc++-dev protobuf-compiler-grpc (scripts/deps.sh bench).
set(WEFT_BENCH_GRPC AUTO CACHE STRING "Build the gRPC benchmark peer: AUTO, ON or OFF")
set_property(CACHE WEFT_BENCH_GRPC PROPERTY STRINGS AUTO ON OFF)

if(WEFT_BENCH_GRPC STREQUAL "OFF")
  return()
endif()

set(_weft_grpc_missing "")
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(WEFT_GRPCPP QUIET IMPORTED_TARGET grpc++ protobuf)
endif()
if(NOT WEFT_GRPCPP_FOUND)
  list(APPEND _weft_grpc_missing "grpc++/protobuf (pkg-config)")
endif()
find_program(WEFT_PROTOC protoc)
find_program(WEFT_GRPC_CPP_PLUGIN grpc_cpp_plugin)
foreach(_p WEFT_PROTOC WEFT_GRPC_CPP_PLUGIN)
  if(NOT ${_p})
    list(APPEND _weft_grpc_missing ${_p})
  endif()
endforeach()
if(_weft_grpc_missing)
  if(WEFT_BENCH_GRPC STREQUAL "ON")
    message(FATAL_ERROR "WEFT_BENCH_GRPC=ON but missing: ${_weft_grpc_missing} "
                        "(scripts/deps.sh bench)")
  endif()
  message(STATUS "weft: gRPC benchmark peer not built (missing: ${_weft_grpc_missing})")
  return()
endif()
message(STATUS "weft: gRPC benchmark peer enabled (grpc++ ${WEFT_GRPCPP_grpc++_VERSION})")

set(_weft_grpc_gen ${CMAKE_CURRENT_BINARY_DIR}/grpc)
set(_weft_grpc_proto ${CMAKE_CURRENT_LIST_DIR}/bench.proto)
set(_weft_grpc_srcs ${_weft_grpc_gen}/bench.pb.cc ${_weft_grpc_gen}/bench.grpc.pb.cc)
add_custom_command(
  OUTPUT ${_weft_grpc_srcs} ${_weft_grpc_gen}/bench.pb.h ${_weft_grpc_gen}/bench.grpc.pb.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${_weft_grpc_gen}
  COMMAND ${WEFT_PROTOC} --proto_path=${CMAKE_CURRENT_LIST_DIR} --cpp_out=${_weft_grpc_gen}
          --grpc_out=${_weft_grpc_gen} --plugin=protoc-gen-grpc=${WEFT_GRPC_CPP_PLUGIN}
          ${_weft_grpc_proto}
  DEPENDS ${_weft_grpc_proto}
  COMMENT "protoc + grpc_cpp_plugin: bench/grpc/bench.proto"
  VERBATIM)
# Generated code is not held to weft's warnings: its own library, its headers SYSTEM.
add_library(weft_grpc_bench_proto STATIC ${_weft_grpc_srcs})
target_include_directories(weft_grpc_bench_proto SYSTEM PUBLIC ${_weft_grpc_gen})
target_link_libraries(weft_grpc_bench_proto PUBLIC PkgConfig::WEFT_GRPCPP)

add_executable(weft-grpc-bench-server ${CMAKE_CURRENT_LIST_DIR}/grpc_server.cc)
add_executable(weft-grpc-load ${CMAKE_CURRENT_LIST_DIR}/grpc_load.cc)
foreach(_t weft-grpc-bench-server weft-grpc-load)
  target_link_libraries(${_t} PRIVATE weft_grpc_bench_proto weft_internal_options)
  set_target_properties(${_t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endforeach()

# weft_protobuf_generate — C++ code and weft services from .proto files.
#
#   weft_protobuf_generate(<target>
#     PROTOS a.proto [b.proto ...]      # the files to compile (absolute or relative to the
#                                       #   current source dir)
#     [IMPORT_DIRS dir ...]             # protoc -I roots; default: each proto's own directory
#     [OUT_DIR dir])                    # default: ${CMAKE_CURRENT_BINARY_DIR}/weft_pb/<target>
#
# For each x.proto (path p relative to its import root) it runs, at build time, the host's
# protoc with --cpp_out and the protoc-gen-weft plugin, giving OUT_DIR/p.pb.{h,cc} and
# OUT_DIR/p.weft.h; adds the .pb.cc to <target>'s sources and OUT_DIR to its include
# directories (PUBLIC, build interface). <target> must link weft::msg_pb.
#
# Cross builds: protoc and python3 are host programs (the toolchain files search programs
# on the host only, CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER); what they write is target
# code, compiled with the target's compiler. Nothing built here runs on the build host.
#
# Generated .pb.cc files compile under the library's flags (-fno-exceptions -fno-rtti) and
# the target's warnings; only -Werror is lifted for them, per generated file (see below).
include_guard(GLOBAL)

# The plugin: WEFT_PROTOC_GEN_WEFT when the caller sets it (an installed weft's config does),
# else the one next to this file in the source tree. Kept as a global property: the function
# runs in other directories' scopes.
if(DEFINED WEFT_PROTOC_GEN_WEFT)
  get_filename_component(_weft_plugin "${WEFT_PROTOC_GEN_WEFT}" ABSOLUTE)
else()
  get_filename_component(_weft_plugin "${CMAKE_CURRENT_LIST_DIR}/../tools/protoc-gen-weft" ABSOLUTE)
endif()
set_property(GLOBAL PROPERTY WEFT_PROTOC_GEN_WEFT "${_weft_plugin}")
unset(_weft_plugin)

function(weft_protobuf_generate target)
  cmake_parse_arguments(PARSE_ARGV 1 _wpg "" "OUT_DIR" "PROTOS;IMPORT_DIRS")
  if(NOT TARGET ${target})
    message(FATAL_ERROR "weft_protobuf_generate: ${target} is not a target")
  endif()
  if(NOT _wpg_PROTOS)
    message(FATAL_ERROR "weft_protobuf_generate(${target}): PROTOS is empty")
  endif()
  if(NOT Protobuf_PROTOC_EXECUTABLE)
    message(FATAL_ERROR "weft_protobuf_generate: protoc not found (protobuf-compiler)")
  endif()
  # The plugin is a python3 script run by protoc through its #! line.
  find_program(WEFT_PYTHON3 python3 REQUIRED)
  get_property(_plugin GLOBAL PROPERTY WEFT_PROTOC_GEN_WEFT)
  if(NOT _wpg_OUT_DIR)
    set(_wpg_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/weft_pb/${target}")
  endif()

  set(_import_args "")
  foreach(_dir IN LISTS _wpg_IMPORT_DIRS)
    get_filename_component(_dir "${_dir}" ABSOLUTE)
    list(APPEND _import_args "-I${_dir}")
  endforeach()

  set(_sources "")
  set(_headers "")
  foreach(_proto IN LISTS _wpg_PROTOS)
    get_filename_component(_abs "${_proto}" ABSOLUTE)
    # The proto's path under its import root names the outputs, as protoc does.
    set(_rel "")
    foreach(_dir IN LISTS _wpg_IMPORT_DIRS)
      get_filename_component(_dir "${_dir}" ABSOLUTE)
      file(RELATIVE_PATH _try "${_dir}" "${_abs}")
      if(NOT _try MATCHES "^\\.\\./")
        set(_rel "${_try}")
        break()
      endif()
    endforeach()
    set(_args ${_import_args})
    if(_rel STREQUAL "")
      get_filename_component(_own "${_abs}" DIRECTORY)
      get_filename_component(_rel "${_abs}" NAME)
      list(APPEND _args "-I${_own}")
    endif()
    string(REGEX REPLACE "\\.proto$" "" _base "${_rel}")
    set(_out "${_wpg_OUT_DIR}/${_base}.pb.cc" "${_wpg_OUT_DIR}/${_base}.pb.h"
             "${_wpg_OUT_DIR}/${_base}.weft.h")
    add_custom_command(
      OUTPUT ${_out}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${_wpg_OUT_DIR}"
      COMMAND "${Protobuf_PROTOC_EXECUTABLE}" ${_args}
              "--cpp_out=${_wpg_OUT_DIR}"
              "--plugin=protoc-gen-weft=${_plugin}"
              "--weft_out=${_wpg_OUT_DIR}"
              "${_abs}"
      DEPENDS "${_abs}" "${_plugin}" "${Protobuf_PROTOC_EXECUTABLE}"
      COMMENT "protoc + protoc-gen-weft: ${_rel}"
      VERBATIM)
    list(APPEND _sources "${_wpg_OUT_DIR}/${_base}.pb.cc")
    list(APPEND _headers "${_wpg_OUT_DIR}/${_base}.pb.h" "${_wpg_OUT_DIR}/${_base}.weft.h")
  endforeach()

  target_sources(${target} PRIVATE ${_sources} ${_headers})
  # protoc 3.21's output compiles warning-free under weft's flags (-Wall -Wextra -Wpedantic
  # -Wshadow, -fno-exceptions -fno-rtti); another protoc (an SDK's) may not, and -Werror
  # must not fail a build on code nobody edits. Warnings still show. The .weft.h files are
  # weft's own and stay under -Werror where they are included.
  set_source_files_properties(${_sources} PROPERTIES COMPILE_OPTIONS "-Wno-error")
  # SYSTEM: the generated headers are protoc's style, not ours; clang-tidy (whose header
  # filter matches any path with examples/ or tests/ in it, build trees included) and the
  # compiler's warnings leave them alone where applications include them.
  target_include_directories(${target} SYSTEM PUBLIC "$<BUILD_INTERFACE:${_wpg_OUT_DIR}>")
endfunction()

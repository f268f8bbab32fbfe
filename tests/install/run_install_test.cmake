# cmake -DPARAMS=<build>/tests/install/install_test_params.cmake -P run_install_test.cmake
# See CMakeLists.txt next to this file.
cmake_minimum_required(VERSION 3.22)
include("${PARAMS}")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n${out}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

set(work "${WEFT_IT_WORK_DIR}")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

set(consumer_args -G "${WEFT_IT_GENERATOR}")
if(WEFT_IT_MAKE_PROGRAM)
  list(APPEND consumer_args "-DCMAKE_MAKE_PROGRAM=${WEFT_IT_MAKE_PROGRAM}")
endif()
if(WEFT_IT_BUILD_TYPE)
  list(APPEND consumer_args "-DCMAKE_BUILD_TYPE=${WEFT_IT_BUILD_TYPE}")
endif()

if(WEFT_IT_CROSSCOMPILING AND WEFT_IT_SYSROOT AND NOT WEFT_IT_SYSROOT STREQUAL "/")
  # Stage into a copy of the sysroot (real directories, files symlinked to the original),
  # the way Yocto and Buildroot stage a library for the packages that use it.
  set(sysroot "${work}/sysroot")
  run("copying the sysroot" cp -as "${WEFT_IT_SYSROOT}" "${sysroot}")
  run("cmake --install (DESTDIR=${sysroot}, prefix /usr)"
      "${CMAKE_COMMAND}" -E env "DESTDIR=${sysroot}"
      "${CMAKE_COMMAND}" --install "${WEFT_IT_BINARY_DIR}" --prefix /usr)
  set(prefix "${sysroot}/usr")
  list(APPEND consumer_args
       "-DCMAKE_TOOLCHAIN_FILE=${WEFT_IT_TOOLCHAIN}" "-DWEFT_SYSROOT=${sysroot}")
  if(WEFT_IT_CROSS_PREFIX)
    list(APPEND consumer_args "-DWEFT_CROSS_PREFIX=${WEFT_IT_CROSS_PREFIX}")
  endif()
else()
  set(prefix "${work}/prefix")
  run("cmake --install (prefix ${prefix})"
      "${CMAKE_COMMAND}" --install "${WEFT_IT_BINARY_DIR}" --prefix "${prefix}")
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${prefix}")
  set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
  if(WEFT_IT_TOOLCHAIN)
    list(APPEND consumer_args "-DCMAKE_TOOLCHAIN_FILE=${WEFT_IT_TOOLCHAIN}")
    if(WEFT_IT_SYSROOT)
      list(APPEND consumer_args "-DWEFT_SYSROOT=${WEFT_IT_SYSROOT}")
    endif()
  else()
    list(APPEND consumer_args "-DCMAKE_CXX_COMPILER=${WEFT_IT_CXX_COMPILER}")
  endif()
endif()

# The package must not carry weft's private build targets or flags.
file(GLOB targets_files "${prefix}/lib*/cmake/weft/weftTargets*.cmake"
                        "${prefix}/lib/*/cmake/weft/weftTargets*.cmake")
if(NOT targets_files)
  message(FATAL_ERROR "install test: no weftTargets.cmake under ${prefix}")
endif()
foreach(f IN LISTS targets_files)
  file(READ "${f}" text)
  if(text MATCHES "weft_internal_options|weft_library_options|[^:]weft_uring|-Werror|-fno-exceptions|-fno-rtti")
    message(FATAL_ERROR "install test: ${f} exports private targets or flags (${CMAKE_MATCH_0})")
  endif()
endforeach()
# weft/platform/result.h is the forwarding header left where weft/base/result.h used to be.
foreach(h weft/platform/buffer_pool.h weft/platform/result.h weft/base/result.h
          weft/frame/length_prefix.h weft/msg/frame.h weft/msg/error.h)
  if(NOT EXISTS "${prefix}/include/${h}")
    message(FATAL_ERROR "install test: ${prefix}/include/${h} not installed")
  endif()
endforeach()

# weft.pc must not link the counting allocator: on a link line its archive would replace
# malloc in every program (weft/base/alloc_counter.h).
file(GLOB pc_files "${prefix}/lib*/pkgconfig/weft.pc" "${prefix}/lib/*/pkgconfig/weft.pc")
if(NOT pc_files)
  message(FATAL_ERROR "install test: no weft.pc under ${prefix}")
endif()
foreach(f IN LISTS pc_files)
  file(READ "${f}" text)
  if(text MATCHES "alloc_counter")
    message(FATAL_ERROR "install test: ${f} links weft_alloc_counter")
  endif()
endforeach()
if(NOT EXISTS "${prefix}/include/weft/base/alloc_counter.h")
  message(FATAL_ERROR "install test: weft/base/alloc_counter.h not installed")
endif()

foreach(mode cmake pkg-config)
  set(bin "${work}/consumer-${mode}")
  run("configuring the consumer (${mode})"
      "${CMAKE_COMMAND}" -S "${WEFT_IT_CONSUMER_DIR}" -B "${bin}" ${consumer_args}
      "-DWEFT_CONSUMER_MODE=${mode}")
  run("building the consumer (${mode})" "${CMAKE_COMMAND}" --build "${bin}")
  # weft_consumer always; weft_consumer_pb where the package has weft::msg_pb (cmake mode).
  foreach(prog weft_consumer weft_consumer_pb)
    if(prog STREQUAL "weft_consumer_pb" AND NOT EXISTS "${bin}/${prog}")
      continue()
    endif()
    run("running ${prog} (${mode})" ${WEFT_IT_EMULATOR} "${bin}/${prog}")
    string(STRIP "${run_output}" run_output)
    string(REPLACE "_" " " want "${prog}")
    if(NOT run_output MATCHES "^${want} ok")
      message(FATAL_ERROR "install test: unexpected ${prog} output (${mode}): ${run_output}")
    endif()
    message(STATUS "${mode}: ${run_output}")
  endforeach()
endforeach()

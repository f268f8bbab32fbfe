# Install rules: headers, static libraries, the CMake package (find_package(weft)) and weft.pc.
#
#   <prefix>/include/weft/<layer>/*.h
#   <prefix>/lib/libweft_<layer>.a, libweft_alloc_counter.a
#   <prefix>/lib/cmake/weft/{weftConfig,weftConfigVersion,weftTargets*}.cmake
#   <prefix>/lib/pkgconfig/weft.pc
#
# Include directories come from each target's $<INSTALL_INTERFACE:include>.
# Consumers link weft::stack (everything) or single layers (weft::platform, weft::frame, ...).
# weft::base is header-only; weft::alloc_counter (tests and benchmarks only) is opt-in.
# Only the public library targets are exported: the private option targets
# (weft_internal_options, weft_library_options, weft_uring) reach them through
# $<BUILD_INTERFACE:...> and so never appear in weftTargets.cmake, and consumers never
# inherit -Werror, -fno-exceptions or -fno-rtti.
include(CMakePackageConfigHelpers)

set(WEFT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/weft" CACHE STRING
    "Where weftConfig.cmake is installed, relative to the prefix")

# Layers in link order (dependents first), so weft.pc's -l flags resolve for static linking.
# Layers that do not exist yet are skipped; a new layer only needs adding here. base is
# header-only (INTERFACE): exported and its headers installed, but no -l flag.
set(_weft_layers client mux_conn msg_pb msg_server http_server mqtt_client pubsub http mqtt mux msg frame platform base)
set(_weft_export_targets "")
set(_weft_pc_libs "")
foreach(_layer IN LISTS _weft_layers)
  if(TARGET weft_${_layer})
    list(APPEND _weft_export_targets weft_${_layer})
    get_target_property(_type weft_${_layer} TYPE)
    if(_type STREQUAL "STATIC_LIBRARY")
      string(APPEND _weft_pc_libs " -lweft_${_layer}")
    endif()
    # Public headers: <layer dir>/include/weft/<layer>/*.h.
    get_target_property(_src weft_${_layer} SOURCE_DIR)
    if(EXISTS "${_src}/include/weft")
      install(DIRECTORY "${_src}/include/weft" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
              COMPONENT weft_development FILES_MATCHING PATTERN "*.h")
    endif()
  endif()
endforeach()
if(TARGET weft_stack)
  list(APPEND _weft_export_targets weft_stack)
endif()
# The opt-in counting allocator (weft/base/alloc_counter.h, installed with base's headers).
# Exported as weft::alloc_counter but kept out of weft.pc's Libs: once its archive is on a
# link line the linker pulls it in to resolve malloc, which replaces the allocator of every
# program linked that way. pkg-config users who want it add -lweft_alloc_counter themselves.
if(TARGET weft_alloc_counter)
  list(APPEND _weft_export_targets weft_alloc_counter)
endif()

install(TARGETS ${_weft_export_targets}
  EXPORT weftTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT weft_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT weft_development)
install(EXPORT weftTargets
  NAMESPACE weft::
  DESTINATION "${WEFT_INSTALL_CMAKEDIR}"
  COMPONENT weft_development)

# weft::msg_pb's code generator: protoc-gen-weft (a python3 script, run on the build host
# also when the package is a cross sysroot's) and weft_protobuf_generate(), which
# weftConfig.cmake includes.
if(TARGET weft_msg_pb)
  get_target_property(_src weft_msg_pb SOURCE_DIR)
  install(PROGRAMS "${_src}/tools/protoc-gen-weft"
          DESTINATION "${CMAKE_INSTALL_LIBEXECDIR}/weft" COMPONENT weft_development)
  install(FILES "${_src}/cmake/WeftProtobuf.cmake"
          DESTINATION "${WEFT_INSTALL_CMAKEDIR}" COMPONENT weft_development)
endif()
set(WEFT_PACKAGE_LIBEXECDIR "${CMAKE_INSTALL_LIBEXECDIR}")

# What the installed package needs to find again on the consumer's side.
set(WEFT_PACKAGE_WITH_URING ${WEFT_WITH_URING})
# protobuf-lite is a dependency of the package only once a layer links it: weft::msg's wire
# layer (parse/encode of frames) does not, so its presence alone must not make every
# consumer (and every cross sysroot) find Protobuf.
set(WEFT_PACKAGE_WITH_PROTOBUF OFF)
foreach(_layer IN LISTS _weft_layers)
  if(TARGET weft_${_layer})
    get_target_property(_links weft_${_layer} LINK_LIBRARIES)
    if(_links MATCHES "protobuf")
      set(WEFT_PACKAGE_WITH_PROTOBUF ON)
    endif()
  endif()
endforeach()
set(WEFT_PACKAGE_URING_HINT "")
if(WEFT_WITH_URING AND WEFT_URING_LIBRARY)
  get_filename_component(WEFT_PACKAGE_URING_HINT "${WEFT_URING_LIBRARY}" DIRECTORY)
endif()

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/weftConfig.cmake.in"
  "${CMAKE_CURRENT_BINARY_DIR}/weftConfig.cmake"
  INSTALL_DESTINATION "${WEFT_INSTALL_CMAKEDIR}")
# 0.x: any change of minor version may break the API, so only the same minor matches.
write_basic_package_version_file(
  "${CMAKE_CURRENT_BINARY_DIR}/weftConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${CMAKE_CURRENT_BINARY_DIR}/weftConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/weftConfigVersion.cmake"
  DESTINATION "${WEFT_INSTALL_CMAKEDIR}"
  COMPONENT weft_development)

# weft.pc. liburing comes in through `Requires: liburing` when its .pc file is visible (it
# carries the right -L, also inside a cross sysroot); otherwise -luring goes on Libs.
set(WEFT_PC_REQUIRES "")
set(WEFT_PC_URING "")
if(WEFT_WITH_URING)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(_weft_pc_uring QUIET liburing)
  endif()
  if(_weft_pc_uring_FOUND)
    list(APPEND WEFT_PC_REQUIRES liburing)
  else()
    set(WEFT_PC_URING " -luring")
    if(WEFT_PACKAGE_URING_HINT AND NOT WEFT_PACKAGE_URING_HINT IN_LIST
       CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      set(WEFT_PC_URING " -L${WEFT_PACKAGE_URING_HINT} -luring")
    endif()
  endif()
endif()
if(WEFT_PACKAGE_WITH_PROTOBUF)
  list(APPEND WEFT_PC_REQUIRES protobuf-lite)
endif()
list(JOIN WEFT_PC_REQUIRES ", " WEFT_PC_REQUIRES)
set(WEFT_PC_LIBS "${_weft_pc_libs}${WEFT_PC_URING} -pthread")
# Absolute include/lib dirs: GNUInstallDirs values may already be absolute.
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(WEFT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(WEFT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(WEFT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(WEFT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
# The prefix is written at install time (cmake --install --prefix may differ from the
# configure-time CMAKE_INSTALL_PREFIX), so the template is configured in two steps.
set(WEFT_PC_PREFIX "@prefix@")
configure_file("${CMAKE_CURRENT_LIST_DIR}/weft.pc.in" "${CMAKE_CURRENT_BINARY_DIR}/weft.pc.tmpl" @ONLY)
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/weft.pc.tmpl\"
                 \"${CMAKE_CURRENT_BINARY_DIR}/weft.pc.install\" @ONLY)
" COMPONENT weft_development)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/weft.pc.install"
  RENAME weft.pc
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT weft_development)

unset(_weft_layers)
unset(_weft_export_targets)
unset(_weft_pc_libs)
unset(_src)
unset(_type)
unset(_links)

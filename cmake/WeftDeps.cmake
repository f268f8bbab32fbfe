# Third-party dependencies, all from Debian packages (scripts/deps.sh installs them, and
# builds cross sysroots the toolchain files point CMAKE_FIND_ROOT_PATH at).
find_package(Threads REQUIRED)

# liburing: prefer the static archive so cross builds and firmware images carry no
# extra shared object.
find_path(WEFT_URING_INCLUDE_DIR liburing.h)
find_library(WEFT_URING_LIBRARY NAMES liburing.a uring)
if(WEFT_URING_INCLUDE_DIR AND WEFT_URING_LIBRARY)
  set(_weft_uring_found ON)
else()
  set(_weft_uring_found OFF)
endif()
option(WEFT_WITH_URING "Build the io_uring backend (needs liburing)" ${_weft_uring_found})
if(WEFT_WITH_URING AND NOT _weft_uring_found)
  message(FATAL_ERROR "WEFT_WITH_URING=ON but liburing was not found "
                      "(install liburing-dev, or configure with -DWEFT_WITH_URING=OFF)")
endif()
if(WEFT_WITH_URING AND NOT TARGET weft_uring)
  add_library(weft_uring INTERFACE)
  target_include_directories(weft_uring SYSTEM INTERFACE ${WEFT_URING_INCLUDE_DIR})
  target_link_libraries(weft_uring INTERFACE ${WEFT_URING_LIBRARY})
endif()
message(STATUS "weft: io_uring backend ${WEFT_WITH_URING} (${WEFT_URING_LIBRARY})")

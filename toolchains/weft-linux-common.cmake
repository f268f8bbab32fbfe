# Shared tail of weft's toolchain files; include it after setting, in the toolchain file:
#   CMAKE_SYSTEM_NAME, CMAKE_SYSTEM_PROCESSOR, the compilers and CMAKE_<LANG>_FLAGS_INIT,
#   WEFT_TRIPLET       GNU triplet (aarch64-linux-gnu), the Debian cross toolchain's /usr/<triplet>
#   WEFT_SYSROOT_ARCH  Debian arch name of the default sysroot (.sysroots/<arch>)
#   WEFT_QEMU          qemu-user binary that runs target executables ("" = run natively)
#
# WEFT_SYSROOT (cache variable, or environment variable) names the target's libraries:
#   - a dependency overlay, as scripts/deps.sh cross builds in .sysroots/<arch>: third-party
#     -dev packages only, with libc and libstdc++ taken from the Debian cross toolchain's
#     /usr/<triplet>. Recognised by having no usr/include/stdio.h.
#   - a full target sysroot (Yocto SDK $SDKTARGETSYSROOT, Buildroot staging): it then becomes
#     CMAKE_SYSROOT (--sysroot) and the emulator's -L prefix.
# Nothing here reads the host's environment beyond WEFT_SYSROOT, so try_compile sees the same.

# Cache and try_compile plumbing: pass our knobs into CMake's internal test projects.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES WEFT_SYSROOT WEFT_CROSS_PREFIX)

if(NOT WEFT_SYSROOT)
  if(NOT "$ENV{WEFT_SYSROOT}" STREQUAL "")
    set(_weft_sysroot "$ENV{WEFT_SYSROOT}")
  elseif(WEFT_SYSROOT_ARCH AND EXISTS "${CMAKE_CURRENT_LIST_DIR}/../.sysroots/${WEFT_SYSROOT_ARCH}")
    set(_weft_sysroot "${CMAKE_CURRENT_LIST_DIR}/../.sysroots/${WEFT_SYSROOT_ARCH}")
  elseif(WEFT_SYSROOT_ARCH STREQUAL "amd64" AND CMAKE_HOST_SYSTEM_PROCESSOR STREQUAL "x86_64")
    # x86_64 on an x86_64 Debian host: the host's own /usr is the target's.
    set(_weft_sysroot "/")
  else()
    message(FATAL_ERROR
      "weft toolchain: no sysroot for ${WEFT_TRIPLET}. Run `scripts/deps.sh cross` "
      "(builds .sysroots/${WEFT_SYSROOT_ARCH}) or pass -DWEFT_SYSROOT=/path/to/sysroot.")
  endif()
  get_filename_component(_weft_sysroot "${_weft_sysroot}" ABSOLUTE)
  set(WEFT_SYSROOT "${_weft_sysroot}" CACHE PATH "Target sysroot: dependency overlay or full SDK sysroot")
  unset(_weft_sysroot)
endif()
if(NOT IS_ABSOLUTE "${WEFT_SYSROOT}")
  message(FATAL_ERROR "weft toolchain: WEFT_SYSROOT must be an absolute path (got '${WEFT_SYSROOT}')")
endif()
if(NOT IS_DIRECTORY "${WEFT_SYSROOT}")
  message(FATAL_ERROR "weft toolchain: WEFT_SYSROOT '${WEFT_SYSROOT}' is not a directory")
endif()

if(WEFT_SYSROOT STREQUAL "/")
  set(_weft_full_sysroot OFF)
  set(CMAKE_FIND_ROOT_PATH "/")
elseif(EXISTS "${WEFT_SYSROOT}/usr/include/stdio.h")
  set(_weft_full_sysroot ON)
  set(CMAKE_SYSROOT "${WEFT_SYSROOT}")
  set(CMAKE_FIND_ROOT_PATH "${WEFT_SYSROOT}")
else()
  set(_weft_full_sysroot OFF)
  set(CMAKE_FIND_ROOT_PATH "${WEFT_SYSROOT}" "/usr/${WEFT_TRIPLET}")
endif()
# Extra roots (a staging directory holding an installed weft, say): -DWEFT_FIND_ROOTS=a;b
list(APPEND CMAKE_FIND_ROOT_PATH ${WEFT_FIND_ROOTS})
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES WEFT_FIND_ROOTS)

# Debian multiarch layout: libraries in <root>/usr/lib/<triplet>, CMake package files in
# <root>/usr/lib/<triplet>/cmake. CMake infers this only for multiarch-aware compilers.
set(CMAKE_LIBRARY_ARCHITECTURE "${WEFT_TRIPLET}")

# Host programs (protoc, python3, ccache); target libraries, headers and packages only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (FindPkgConfig runs it at configure time, in this environment): only the
# target's .pc files, with their paths re-rooted into the sysroot.
if(NOT WEFT_SYSROOT STREQUAL "/")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${WEFT_SYSROOT}")
  set(ENV{PKG_CONFIG_LIBDIR}
      "${WEFT_SYSROOT}/usr/lib/${WEFT_TRIPLET}/pkgconfig:${WEFT_SYSROOT}/usr/lib/pkgconfig:${WEFT_SYSROOT}/usr/share/pkgconfig")
endif()

# ctest (and add_custom_command on built tools) runs target binaries through qemu-user.
# -L gives qemu the target's dynamic loader and libc: the full sysroot's, or the Debian
# cross toolchain's /usr/<triplet> next to a dependency overlay.
if(WEFT_QEMU AND NOT CMAKE_HOST_SYSTEM_PROCESSOR STREQUAL CMAKE_SYSTEM_PROCESSOR)
  if(_weft_full_sysroot)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${WEFT_QEMU};-L;${WEFT_SYSROOT}")
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR "${WEFT_QEMU};-L;/usr/${WEFT_TRIPLET}")
  endif()
endif()
unset(_weft_full_sysroot)

# 64-bit x86 Linux, GNU toolchain, as an explicit target: the same x86-64-v1 baseline from
# any build machine. On an x86_64 Debian host it uses the host's own libraries (WEFT_SYSROOT
# defaults to /) and runs tests natively; elsewhere it needs g++-x86-64-linux-gnu, the
# .sysroots/amd64 overlay (scripts/deps.sh cross) and qemu-x86_64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(WEFT_TRIPLET x86_64-linux-gnu)
set(WEFT_SYSROOT_ARCH amd64)
set(WEFT_QEMU qemu-x86_64)

if(NOT WEFT_CROSS_PREFIX)
  set(WEFT_CROSS_PREFIX "${WEFT_TRIPLET}-" CACHE STRING "Cross compiler prefix (path and triplet-)")
endif()
set(CMAKE_C_COMPILER "${WEFT_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${WEFT_CROSS_PREFIX}g++")

set(CMAKE_C_FLAGS_INIT "-march=x86-64")
set(CMAKE_CXX_FLAGS_INIT "-march=x86-64")

include("${CMAKE_CURRENT_LIST_DIR}/weft-linux-common.cmake")

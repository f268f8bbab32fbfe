# 64-bit ARM (ARMv8-A) Linux, GNU toolchain. Debian: g++-aarch64-linux-gnu, qemu-user.
#   cmake --preset aarch64          (uses this file and .sysroots/arm64 from scripts/deps.sh)
#   cmake -B b -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake \
#         -DWEFT_SYSROOT=/path/to/sdk/sysroot -DWEFT_CROSS_PREFIX=/path/to/bin/aarch64-poky-linux-
# See docs/cross-compiling.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WEFT_TRIPLET aarch64-linux-gnu)
set(WEFT_SYSROOT_ARCH arm64)
set(WEFT_QEMU qemu-aarch64)

if(NOT WEFT_CROSS_PREFIX)
  set(WEFT_CROSS_PREFIX "${WEFT_TRIPLET}-" CACHE STRING "Cross compiler prefix (path and triplet-)")
endif()
set(CMAKE_C_COMPILER "${WEFT_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${WEFT_CROSS_PREFIX}g++")

# Baseline ARMv8-A: runs on every 64-bit ARM board (Cortex-A53 up). Boards add -mcpu=... .
set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")

include("${CMAKE_CURRENT_LIST_DIR}/weft-linux-common.cmake")

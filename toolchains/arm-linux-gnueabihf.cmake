# 32-bit ARM (ARMv7-A, hard float) Linux, GNU toolchain. Debian: g++-arm-linux-gnueabihf.
#   cmake --preset armhf            (uses this file and .sysroots/armhf from scripts/deps.sh)
# See docs/cross-compiling.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(WEFT_TRIPLET arm-linux-gnueabihf)
set(WEFT_SYSROOT_ARCH armhf)
set(WEFT_QEMU qemu-arm)

if(NOT WEFT_CROSS_PREFIX)
  set(WEFT_CROSS_PREFIX "${WEFT_TRIPLET}-" CACHE STRING "Cross compiler prefix (path and triplet-)")
endif()
set(CMAKE_C_COMPILER "${WEFT_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${WEFT_CROSS_PREFIX}g++")

# The Debian armhf ABI (what the sysroot's libraries are built for): ARMv7-A, VFPv3-D16,
# hard-float calling convention, Thumb-2.
set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard -mthumb")
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard -mthumb")

include("${CMAKE_CURRENT_LIST_DIR}/weft-linux-common.cmake")

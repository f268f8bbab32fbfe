# 64-bit ARM Linux built with clang + lld instead of GCC: the same sysroot and libstdc++
# (from g++-aarch64-linux-gnu) as aarch64-linux-gnu.cmake, a second compiler's diagnostics.
#   cmake -B build/clang-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/clang-aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WEFT_TRIPLET aarch64-linux-gnu)
set(WEFT_SYSROOT_ARCH arm64)
set(WEFT_QEMU qemu-aarch64)

set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_C_COMPILER_TARGET "${WEFT_TRIPLET}")
set(CMAKE_CXX_COMPILER_TARGET "${WEFT_TRIPLET}")

set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-fuse-ld=lld")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-fuse-ld=lld")

include("${CMAKE_CURRENT_LIST_DIR}/weft-linux-common.cmake")

# Private build options for weft's own targets. Consumers never inherit these:
# weft_internal_options is linked PRIVATE (and exported only as a build-time no-op).
add_library(weft_internal_options INTERFACE)
target_compile_options(weft_internal_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough
  $<$<BOOL:${WEFT_WERROR}>:-Werror>)
# g++ 12 at -O3 reports -Wrestrict on std::string concatenation ("t" + std::to_string(n)) in
# libstdc++'s own char_traits (GCC bug 105329, fixed in 13): a false positive that -Werror
# turns into a failed release build of tests and tools. Kept as a warning, not an error.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(weft_internal_options INTERFACE -Wno-error=restrict)
endif()

# The library itself is built the way firmware builds it: no exceptions, no RTTI.
add_library(weft_library_options INTERFACE)
target_compile_options(weft_library_options INTERFACE -fno-exceptions -fno-rtti)
target_link_libraries(weft_library_options INTERFACE weft_internal_options)

if(WEFT_SANITIZE)
  if(WEFT_SANITIZE STREQUAL "address,undefined" OR WEFT_SANITIZE STREQUAL "undefined,address")
    # vptr checks need RTTI, which the library is built without (-fno-rtti).
    set(_weft_san -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all
                  -fno-omit-frame-pointer)
  elseif(WEFT_SANITIZE STREQUAL "thread")
    set(_weft_san -fsanitize=thread -fno-omit-frame-pointer)
  elseif(WEFT_SANITIZE STREQUAL "address" OR WEFT_SANITIZE STREQUAL "undefined")
    set(_weft_san -fsanitize=${WEFT_SANITIZE} -fno-sanitize=vptr -fno-sanitize-recover=all
                  -fno-omit-frame-pointer)
  else()
    message(FATAL_ERROR "WEFT_SANITIZE='${WEFT_SANITIZE}': use 'address,undefined' or 'thread'")
  endif()
  # Sanitizers must cover the library, the tests and the runtime they link, so they are a
  # directory-wide option here (never written into CMAKE_CXX_FLAGS).
  add_compile_options(${_weft_san})
  add_link_options(${_weft_san})
  add_compile_definitions(WEFT_SANITIZED=1)
endif()

if(WEFT_FUZZ)
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_cxx_source_compiles(
    "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }"
    WEFT_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(NOT WEFT_HAVE_LIBFUZZER)
    message(FATAL_ERROR "WEFT_FUZZ=ON needs a compiler with libFuzzer (clang with -fsanitize=fuzzer)")
  endif()
endif()

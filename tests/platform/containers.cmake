# Unit tests for weft::platform's containers and value types. include()d from
# tests/platform/CMakeLists.txt; paths are relative to this file, not to the includer.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(weft_containers_test
  ${CMAKE_CURRENT_LIST_DIR}/buffer_pool_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/cpu_list_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/result_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/spsc_ring_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/timer_wheel_test.cc
)
target_link_libraries(weft_containers_test PRIVATE
  weft::platform GTest::gtest_main weft_internal_options)
# PRE_TEST discovery: works under CMAKE_CROSSCOMPILING_EMULATOR and keeps configure fast.
gtest_discover_tests(weft_containers_test
  TEST_PREFIX "platform."
  DISCOVERY_MODE PRE_TEST
  PROPERTIES LABELS "platform;unit")

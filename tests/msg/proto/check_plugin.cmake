# Runs protoc with protoc-gen-weft on one .proto that the plugin must refuse, and checks that
# protoc fails with the plugin's message (ctest: weft_protoc_gen_weft.<case>).
#   cmake -DPROTOC=... -DPLUGIN=... -DPROTO=... -DEXPECT=<regex> -DOUT=<dir> -P check_plugin.cmake
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
get_filename_component(_dir "${PROTO}" DIRECTORY)
execute_process(
  COMMAND "${PROTOC}" "-I${_dir}" "--plugin=protoc-gen-weft=${PLUGIN}" "--weft_out=${OUT}"
          "${PROTO}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _err)
if(_rc EQUAL 0)
  message(FATAL_ERROR "protoc-gen-weft accepted ${PROTO}; expected an error matching '${EXPECT}'")
endif()
if(NOT _err MATCHES "${EXPECT}")
  message(FATAL_ERROR "protoc failed as expected, but not with '${EXPECT}':\n${_err}")
endif()
file(GLOB _left "${OUT}/*")
if(_left)
  message(FATAL_ERROR "protoc-gen-weft wrote ${_left} for a refused file")
endif()
message(STATUS "refused as expected: ${_err}")

# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(test_util "/work/main/build/tests/test_util")
set_tests_properties(test_util PROPERTIES  ENVIRONMENT "FM_SHARED=/work/main/../shared;FM_BIN=/work/main/build" SKIP_RETURN_CODE "77" TIMEOUT "600" WORKING_DIRECTORY "/work/main" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;11;add_test;/work/main/tests/CMakeLists.txt;0;")

# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_lru]=] "/work/main/build/tests/test_lru")
set_tests_properties([=[test_lru]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")

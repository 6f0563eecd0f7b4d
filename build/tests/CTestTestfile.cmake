# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_admission]=] "/work/main/build/tests/test_admission")
set_tests_properties([=[test_admission]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_iiif_parse]=] "/work/main/build/tests/test_iiif_parse")
set_tests_properties([=[test_iiif_parse]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_lru]=] "/work/main/build/tests/test_lru")
set_tests_properties([=[test_lru]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_reader_jpeg]=] "/work/main/build/tests/test_reader_jpeg")
set_tests_properties([=[test_reader_jpeg]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_reader_png]=] "/work/main/build/tests/test_reader_png")
set_tests_properties([=[test_reader_png]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_reader_tiff]=] "/work/main/build/tests/test_reader_tiff")
set_tests_properties([=[test_reader_tiff]=] PROPERTIES  LABELS "unit" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;29;add_test;/work/main/tests/CMakeLists.txt;34;tessera_add_tests;/work/main/tests/CMakeLists.txt;0;")
add_test([=[replay_iiif_url]=] "/work/main/build/tests/replay_iiif_url" "/work/main/tests/fuzz/corpus/iiif_url")
set_tests_properties([=[replay_iiif_url]=] PROPERTIES  LABELS "fuzz" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;42;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[replay_reader]=] "/work/main/build/tests/replay_reader" "/work/main/tests/fuzz/corpus/reader")
set_tests_properties([=[replay_reader]=] PROPERTIES  LABELS "fuzz" TIMEOUT "300" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;42;add_test;/work/main/tests/CMakeLists.txt;0;")

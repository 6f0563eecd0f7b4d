#!/bin/sh
# Installs what is missing, builds Tessera with AddressSanitizer and UndefinedBehaviorSanitizer,
# and runs the whole test suite (unit and HTTP tests) with ctest.
set -eu
cd "$(dirname "$0")/.."

sh scripts/deps.sh --test
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DTESSERA_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd build-test
# ctest.log keeps the output for callers (CI repeats the summary at the very end of its run);
# sh has no pipefail, so ctest's status travels through a file.
rm -f ctest.rc
{ ctest --output-on-failure --timeout 600 -j2 "$@" 2>&1 || echo $? > ctest.rc; } | tee ctest.log
if [ -f ctest.rc ]; then
    exit "$(cat ctest.rc)"
fi

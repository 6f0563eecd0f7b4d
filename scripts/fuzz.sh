#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 30 s each).
# Any crash input is left in build-fuzz/findings/ and the script fails.
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-30}"

command -v clang >/dev/null || {
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTESSERA_FUZZ=ON -DTESSERA_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_iiif_url fuzz_reader fuzz_compat

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p build-fuzz/findings
status=0
for target in iiif_url reader compat; do
    work="build-fuzz/corpus-$target"
    mkdir -p "$work"
    echo "fuzz: $target for ${SECONDS_EACH}s"
    if ! build-fuzz/tests/fuzz/fuzz_$target -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/findings/$target-" \
        "$work" "tests/fuzz/corpus/$target" 2>"build-fuzz/$target.log"; then
        echo "fuzz: $target FOUND A CRASH (see build-fuzz/$target.log, build-fuzz/findings/)"
        tail -40 "build-fuzz/$target.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "build-fuzz/$target.log" || true
    fi
done
exit $status

#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and run
# each for SECONDS (default 20) on a scratch copy of its seed corpus, so
# nothing is written into the repository. Exits non-zero when any target
# reports a crash, a sanitizer error, a leak, a timeout or running out of
# memory; the reproducer is kept in build-fuzz/fuzz-artifacts/.
#
# Usage: tests/fuzz/run.sh [SECONDS [TARGET...]]
#   AW_FUZZ_BUILD  build folder (default <repo>/build-fuzz)
#   AW_FUZZ_ARGS   extra libFuzzer options, e.g. "-jobs=4 -workers=4"
# Longer runs and keeping what they find: tests/fuzz/README.md.
set -euo pipefail

secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_config fuzz_mtl fuzz_mtd)
case $secs in
'' | *[!0-9]*)
    echo "run.sh: SECONDS must be a whole number, got '$secs'" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${AW_FUZZ_BUILD:-$root/build-fuzz}
artifacts=$build/fuzz-artifacts

# clang 14 reports -Wdouble-promotion for glibc's float NAN where gcc does
# not, so this build is not -Werror; -O1 -g without NDEBUG keeps asserts.
log=$build/fuzz-build.log
mkdir -p "$build"
if ! { cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DAW_FUZZ=ON \
    -DAW_BUILD_TESTS=OFF -DAW_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g" &&
    cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "run.sh: building the fuzz targets failed" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/aw_fuzz_run.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t/tmp"
    cp -r "$here/corpus/$t" "$work/$t/corpus"
    dict=()
    [ -f "$here/$t.dict" ] && dict=("-dict=$here/$t.dict")
    echo "== fuzz $t for ${secs}s" >&2
    # Targets keep their scratch files under TMPDIR; -jobs logs go to cwd.
    # shellcheck disable=SC2086 # AW_FUZZ_ARGS is a list of options
    if (cd "$work/$t" && TMPDIR="$work/$t/tmp" \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
        "${dict[@]}" ${AW_FUZZ_ARGS:-} corpus >"$work/$t/log" 2>&1); then
        grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
            "$work/$t/log" >&2 || true
    else
        # With -jobs the reports are in the jobs' fuzz-<n>.log files.
        cat "$work/$t"/fuzz-*.log >>"$work/$t/log" 2>/dev/null || true
        # The report, from its first line on (a short tail otherwise).
        first=$(grep -n -m1 -E 'ERROR: |runtime error:|==ERROR|Test unit written' \
            "$work/$t/log" | cut -d: -f1 || true)
        if [ -n "$first" ]; then
            tail -n "+$first" "$work/$t/log" | head -n 200 >&2 || true
        else
            tail -n 100 "$work/$t/log" >&2
        fi
        echo "run.sh: $t FAILED; reproducer(s):" >&2
        for a in "$artifacts/$t-"*; do
            [ -e "$a" ] && echo "  $a" >&2
        done
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "run.sh: fuzz failures: ${failed[*]}" >&2
    echo "run.sh: reproduce with $build/tests/fuzz/<target> <artifact>" >&2
    exit 1
fi
echo "run.sh: all fuzz targets ran ${secs}s without a finding" >&2

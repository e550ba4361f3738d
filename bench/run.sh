#!/usr/bin/env bash
# The benchmark, one command:  bench/run.sh [--large] [--repeats N] [--level Z]
#
#   1. installs the Debian packages that are missing (aralwatch's build
#      dependencies, gdal-bin, python3-gdal, python3-numpy, otb-bin, time);
#   2. builds aralwatch in Release into build-bench/ and bench/io_floor.c
#      into build-bench/bench/io_floor;
#   3. generates the 5490² scene into bench/data/s5490 (and with --large the
#      10980² one into bench/data/s10980), unless its stamp matches;
#   4. runs bench/bench.py: alternating timed rounds, correctness gate,
#      bench/RESULTS.md.
#
# --level Z: every tool at DEFLATE level Z (GDAL's ZLEVEL, 1..12) instead
# of its default; the table goes to bench/RESULTS-level<Z>.md and the runs
# to bench/data/work-level<Z>/, so bench/RESULTS.md stays the default's.
#
# Exit status: 0 when every tool that ran passed the correctness gate, 1
# otherwise. A tool that fails to run (aralwatch included) is reported in
# RESULTS.md, not fatal. See bench/README.md.
set -euo pipefail

started=$(date +%s.%N)
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD="$ROOT/build-bench"
DATA="$BENCH/data"
PY=/usr/bin/python3 # Debian's: python3-gdal and numpy live there

large=0
level=""
bench_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --large) large=1; bench_args+=(--large) ;;
    --repeats) bench_args+=(--repeats "$2"); shift ;;
    --repeats-1t) bench_args+=(--repeats-1t "$2"); shift ;;
    --level) level="$2"; bench_args+=(--level "$2"); shift ;;
    -h | --help)
        sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'bench: %s\n' "$*" >&2; }

# --- 1. packages -----------------------------------------------------------
# aralwatch's build dependencies come from scripts/common.sh (kept current
# by the project); the test-only ones (cmocka, clang, valgrind) are dropped,
# the benchmark's peers added.
AW_PACKAGES=()
if [ -f "$ROOT/scripts/common.sh" ]; then
    # shellcheck source=../scripts/common.sh
    source "$ROOT/scripts/common.sh"
fi
pkgs=()
for p in "${AW_PACKAGES[@]}"; do
    case "$p" in
    libcmocka-dev | clang | libclang-rt-* | libomp-*-dev | valgrind | python3-yaml) ;;
    *) pkgs+=("$p") ;;
    esac
done
pkgs+=(build-essential cmake pkg-config libgdal-dev gdal-bin python3-gdal
    python3-numpy otb-bin time)
missing=()
for p in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. build ----------------------------------------------------------------
mkdir -p "$BUILD/bench"
t0=$(date +%s)
if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DAW_BUILD_TESTS=OFF >"$BUILD/bench/cmake.log" 2>&1 &&
    cmake --build "$BUILD" -j "$(nproc)" --target aralwatch \
        >>"$BUILD/bench/cmake.log" 2>&1; then
    say "built aralwatch (Release) in $(($(date +%s) - t0)) s: $("$BUILD/aralwatch" --version)"
else
    # Not fatal: the peers are still measured, aralwatch's rows say why.
    say "aralwatch build FAILED (tail of $BUILD/bench/cmake.log):"
    tail -n 15 "$BUILD/bench/cmake.log" >&2
    rm -f "$BUILD/aralwatch"
fi
# shellcheck disable=SC2046
cc -O2 -std=c17 -Wall -Wextra -o "$BUILD/bench/io_floor" "$BENCH/io_floor.c" \
    $(gdal-config --cflags) $(gdal-config --libs)

# --- 3. scenes -----------------------------------------------------------------
mkdir -p "$DATA"
t0=$(date +%s)
"$PY" "$BENCH/make_scene.py" --size 5490 --out "$DATA/s5490" 2>/dev/null
if [ "$large" = 1 ]; then
    "$PY" "$BENCH/make_scene.py" --size 10980 --out "$DATA/s10980" 2>/dev/null
fi
say "scenes ready in $(($(date +%s) - t0)) s"

# --- 4. timings, gate, RESULTS.md ----------------------------------------------
rc=0
results="RESULTS${level:+-level$level}.md"
"$PY" "$BENCH/bench.py" --data "$DATA" --work "$DATA/work${level:+-level$level}" \
    --aralwatch "$BUILD/aralwatch" --floor "$BUILD/bench/io_floor" \
    --results "$BENCH/$results" --started "$started" \
    ${bench_args[@]+"${bench_args[@]}"} || rc=$?
say "done in $(($(date +%s) - ${started%.*})) s; results in bench/$results"
exit $rc

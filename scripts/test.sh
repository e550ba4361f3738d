#!/usr/bin/env bash
# Set up, build with -Werror and run every test: cmocka unit tests and
# end-to-end tests on the sample, then all of them again with the binary and
# tests built with AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer; then the MPI build's tests under mpirun (1, 2
# and 4 ranks against the single-process run); then a short libFuzzer run of the config and
# metadata parsers (tests/fuzz) and the unit tests under valgrind memcheck.
# Usage: scripts/test.sh
source "$(dirname "$0")/common.sh"
aw_install_deps
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

echo "== build (Release, -Werror) and all tests" >&2
aw_build "$AW_ROOT/build-test" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAW_WERROR=ON
(cd "$AW_ROOT/build-test" && ctest --output-on-failure -j 2)

echo "== build with ASan + UBSan, all tests again" >&2
aw_build "$AW_ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DAW_WERROR=ON -DAW_SANITIZE=ON
(cd "$AW_ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2)

echo "== MPI build (-DAW_MPI=ON, -Werror): mpirun -n 1, 2, 4 against the single-process run" >&2
aw_build "$AW_ROOT/build-mpi" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAW_WERROR=ON -DAW_MPI=ON
(cd "$AW_ROOT/build-mpi" && AW_REF_BIN="$AW_ROOT/build-test/aralwatch" AW_REQUIRE_MPI=1 \
    ctest -R '^e2e[.]test_mpi$' --output-on-failure)

echo "== fuzz the config loader and the MTL / MTD_MSIL2A.xml parsers (20 s each)" >&2
"$AW_ROOT/tests/fuzz/run.sh" 20

echo "== valgrind memcheck of the unit tests" >&2
# Debug, no sanitizers (valgrind and ASan do not mix). Any invalid access,
# use of uninitialised memory or definitely lost block makes valgrind exit 1,
# which fails the test. Suppressions (third-party frames only) are in
# tests/valgrind.supp. The e2e tests are not run here: they drive the whole
# binary over the sample scenes (GDAL warps, JPEG 2000 decoding, OpenMP),
# and memcheck slows them ~30x (e2e.test_cli: 3 s -> 85 s; all of them,
# ~47 s of test time in Debug, would take ~25 min); the ASan + LSan + UBSan
# pass above covers them.
aw_build "$AW_ROOT/build-vg" -DCMAKE_BUILD_TYPE=Debug -DAW_WERROR=ON
rm -rf "$AW_ROOT/build-vg/Testing/Temporary"
if ! (cd "$AW_ROOT/build-vg" && ctest -L unit -T memcheck -j 2 --output-on-failure \
    --overwrite MemoryCheckCommand="$(command -v valgrind)" \
    --overwrite "MemoryCheckCommandOptions=--error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30 --suppressions=$AW_ROOT/tests/valgrind.supp"); then
    # valgrind's report is in the per-test log, not the test output.
    grep -l -E "ERROR SUMMARY: [1-9]" "$AW_ROOT"/build-vg/Testing/Temporary/MemoryChecker.*.log |
        xargs -r cat >&2 || true
    echo "unit tests failed under valgrind memcheck (valgrind logs above, if any)" >&2
    exit 1
fi

# One closing line for CI: every ctest test of the three builds (a failure
# above has already stopped the script) and the three fuzz targets.
count() { (cd "$1" && ctest -N "${@:2}" | sed -n 's/^Total Tests: //p'); }
n=$(( $(count "$AW_ROOT/build-test") + $(count "$AW_ROOT/build-asan") + $(count "$AW_ROOT/build-mpi" -R '^e2e[.]test_mpi$') + $(count "$AW_ROOT/build-vg" -L unit) + 3 ))
echo "summary: $n passed, 0 failed"

#!/usr/bin/env bash
# Set up, build with -Werror and run every test: cmocka unit tests and
# end-to-end tests on the sample, then all of them again with the binary and
# tests built with AddressSanitizer (+ LeakSanitizer) and
# UndefinedBehaviorSanitizer.
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

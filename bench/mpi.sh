#!/usr/bin/env bash
# MPI scaling, one command:  bench/mpi.sh [--dates N] [--repeats N]
#
# Installs what is missing (aralwatch's build dependencies, Open MPI),
# builds the default build (build-bench/) and the MPI build
# (build-bench-mpi/, -DAW_MPI=ON) in Release, generates the 5490² scene of
# bench/make_scene.py unless it is there, then runs bench/mpi.py: 1 process
# against mpirun -n 1, 2, 4, checks the rasters are identical, and writes
# bench/MPI_RESULTS.md (the table, then bench/mpi_design.md: what is
# communicated, rank 0's part, and the node estimate for Central Asia).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
PY=/usr/bin/python3
source "$ROOT/scripts/common.sh"
aw_install_deps
for b in build-bench:OFF build-bench-mpi:ON; do
    dir=${b%%:*}
    cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=Release \
        -DAW_BUILD_TESTS=OFF -DAW_MPI="${b##*:}" >/dev/null
    cmake --build "$ROOT/$dir" -j "$(nproc)" --target aralwatch >/dev/null
done
"$PY" "$BENCH/make_scene.py" --size 5490 --out "$BENCH/data/s5490" 2>/dev/null
exec "$PY" "$BENCH/mpi.py" --serial "$ROOT/build-bench/aralwatch" \
    --mpi "$ROOT/build-bench-mpi/aralwatch" "$@"

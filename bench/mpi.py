#!/usr/bin/python3
"""MPI scaling of aralwatch on this machine: bench/mpi.sh runs it.

The workload is a night of DATES dates over the 5490 x 5490 Sentinel-2-like
scene of bench/make_scene.py (the same files under each date: 30 Mpx of
region grid per date), the full product (NDWI, MNDWI, NDVI, water class,
validity, zone statistics) in aralwatch's default encoding (COG). It runs,
alternating, REPEATS times each:

  1 process x T threads (the default, non-MPI build: the reference);
  mpirun -n R of the MPI build with 1 thread per rank, R = 1, 2, 4
  (4 oversubscribes a 2-core machine), and on 4 cores or more R = 2 with
  T/2 threads each;

checks that every run's rasters are byte-identical to the reference's,
and writes bench/MPI_RESULTS.md: median wall time, throughput (Mpx of
region grid per second, all dates), speed-up over 1 rank x 1 thread and
efficiency (speed-up / cores used)."""
import argparse
import hashlib
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

# The estimate's assumptions (bench/mpi_design.md says where each comes
# from).
AREA_KM2 = 5.4e6       # Central Asia, "twice Kazakhstan" (issue 7)
OVERLAP = 1.25         # Sentinel-2 tiles overlap ~10 km; adjacent orbits
JP2_S_PER_MPX = 0.97   # 4.75 band-Mpx of JPEG 2000 per grid Mpx at 4.9
                       # Mpx/s per core (measured with GDAL 3.6 OpenJPEG)
IN_BYTES_PER_PX = 3.0  # L2A JPEG 2000: 7 bands, ~2:1 lossless on 12-bit
NODE_CORES = 32
NIGHT_S = 6 * 3600
BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)

CONFIG = """version: 1
region: {{name: night}}
indices: [ndwi, mndwi, ndvi]
water: {{index: mndwi, method: threshold, threshold: 0}}
zones: {{file: {zones}, id_field: zone_id, name_field: name, kind_field: kind}}
outputs: {{dir: out}}
scenes:
{scenes}"""
SCENE = """  - id: S2_NIGHT_{k}
    date: 2023-07-{day:02d}
    sensor: generic
    path: {scene}
    scale: 0.0001
    offset: -0.1
    nodata: 0
    bands: {{blue: B02.tif, green: B03.tif, red: B04.tif, nir: B08.tif,
            swir1: B11.tif, swir2: B12.tif, qa: SCL.tif}}
    qa_mask: {{values: [0, 3, 8, 9, 10], cloud: [8, 9, 10], shadow: [3]}}
"""


def digest_tree(top):
    h = {}
    for root, _, names in os.walk(top):
        for n in names:
            if n.endswith(".tif"):
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    h[os.path.relpath(p, top)] = hashlib.sha256(
                        f.read()).hexdigest()
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serial", required=True, help="non-MPI aralwatch")
    ap.add_argument("--mpi", required=True, help="MPI aralwatch")
    ap.add_argument("--scene", default=os.path.join(BENCH, "data", "s5490"))
    ap.add_argument("--work", default=os.path.join(BENCH, "data", "mpi"))
    ap.add_argument("--dates", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--results", default=os.path.join(BENCH,
                                                      "MPI_RESULTS.md"))
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    os.makedirs(a.work, exist_ok=True)
    cfg = os.path.join(a.work, "night.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(
            zones=os.path.join(a.scene, "zones.geojson"),
            scenes="".join(SCENE.format(k=k, day=10 + k, scene=a.scene)
                           for k in range(a.dates))))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none"]
    # (label, ranks, threads per rank, command prefix)
    runs = [("1 process (non-MPI build)", 1, cores, [a.serial]),
            ("mpirun -n 1", 1, 1, mpirun + ["-n", "1", a.mpi]),
            ("mpirun -n 2", 2, 1, mpirun + ["-n", "2", a.mpi]),
            ("mpirun -n 4", 4, 1, mpirun + ["-n", "4", a.mpi])]
    if cores >= 4:
        runs.append(("mpirun -n 2, %d threads each" % (cores // 2), 2,
                     cores // 2, mpirun + ["-n", "2", a.mpi]))
    times = {r[0]: [] for r in runs}
    digests = {}
    for rep in range(a.repeats):
        for label, ranks, thr, cmd in runs:
            out = os.path.join(a.work, "out")
            shutil.rmtree(out, ignore_errors=True)
            e = dict(env, OMP_NUM_THREADS=str(thr))
            t0 = time.monotonic()
            p = subprocess.run(cmd + ["run", "-c", cfg, "-o", out, "-q",
                                      "--threads", str(thr)],
                               capture_output=True, text=True, env=e)
            dt = time.monotonic() - t0
            if p.returncode not in (0, 10):
                sys.exit("bench/mpi.py: %s failed (%d): %s"
                         % (label, p.returncode, p.stderr[-2000:]))
            d = digest_tree(out)
            if not d:
                sys.exit("bench/mpi.py: %s wrote no raster" % label)
            digests.setdefault(label, d)
            times[label].append(dt)
            print("bench/mpi: round %d %-32s %6.2f s" % (rep + 1, label, dt),
                  file=sys.stderr)
    ref = digests[runs[0][0]]
    same = {label: digests[label] == ref for label in digests}
    mpx = a.dates * 5490 * 5490 / 1e6
    base = statistics.median(times["mpirun -n 1"])
    lines = [
        "# MPI scaling (bench/mpi.sh)", "",
        "Generated by `bench/mpi.sh` on %s: %s, %d cores, %s." % (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            platform.node(), cores, platform.platform()),
        "", "Workload: %d dates x 30.1 Mpx (the 5490 x 5490 scene of "
        "bench/make_scene.py under each date), full product, default "
        "encoding (COG, ZSTD level 1), zone statistics: %.1f Mpx of region "
        "grid. "
        "Median of %d alternating runs each." % (a.dates, mpx, a.repeats),
        "", "| run | ranks x threads | wall s (median; all) | Mpx/s | "
        "speed-up vs 1 x 1 | efficiency | rasters identical to 1 process |",
        "|---|---|---|---|---|---|---|"]
    for label, ranks, thr, _ in runs:
        m = statistics.median(times[label])
        used = min(ranks * thr, cores)
        lines.append("| %s | %d x %d | %.2f (%s) | %.1f | %.2f | %.0f %% | "
                     "%s |" % (label, ranks, thr, m,
                               ", ".join("%.2f" % t for t in times[label]),
                               mpx / m, base / m, 100 * base / m / used,
                               "yes" if same[label] else "**NO**"))
    lines += ["", "Efficiency = speed-up / min(ranks x threads, cores): "
              "on a %d-core machine more than %d workers only share the "
              "same cores (the 4-rank row is oversubscribed)." % (cores,
                                                                 cores), ""]
    # Back-of-the-envelope: Central Asia at Sentinel-2 resolution in a
    # 6-hour night, from this run's single-core cost (see mpi_design.md).
    t11 = statistics.median(times["mpirun -n 1"])
    eff2 = base / statistics.median(times["mpirun -n 2"]) / min(2, cores)
    cost = t11 / mpx                   # core-seconds per Mpx, DEFLATE inputs
    cost_jp2 = cost + JP2_S_PER_MPX    # + JPEG 2000 decoding of L2A bands
    work = AREA_KM2 * 1e4 / 1e6 * OVERLAP * cost_jp2  # core-seconds
    eff = min(eff2, 1.0)
    nodes = work / (NODE_CORES * eff * NIGHT_S)
    lines += [
        "## Estimate: Central Asia at Sentinel-2 resolution in a 6-hour night",
        "",
        "| quantity | value |", "|---|---|",
        "| area | %.1f million km2 (issue 7: twice Kazakhstan) = %.0f Mpx "
        "at 10 m |" % (AREA_KM2 / 1e6, AREA_KM2 * 1e4 / 1e6),
        "| scenes per grid pixel (tile and orbit overlap) | %.2f |" % OVERLAP,
        "| cost per grid Mpx, 1 core, this run (1 x 1) | %.3f s |" % cost,
        "| + JPEG 2000 decoding of 4 bands at 10 m and 3 at 20 m | %.3f s |"
        % JP2_S_PER_MPX,
        "| = work per night | %.0f core-hours |" % (work / 3600),
        "| parallel efficiency (this run, 2 ranks) | %.0f %% |" % (100 * eff),
        "| nodes of %d cores for a %d-hour night | **%.2f -> %d** |" % (
            NODE_CORES, NIGHT_S // 3600, nodes, max(1, math.ceil(nodes))),
        "| input read per night (JPEG 2000, ~%.1f B per grid px) | %.0f GB |"
        % (IN_BYTES_PER_PX, AREA_KM2 * 1e4 * OVERLAP * IN_BYTES_PER_PX / 1e9),
        ""]
    with open(os.path.join(BENCH, "mpi_design.md")) as f:
        lines.append(f.read())
    with open(a.results, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:len(lines) - 1]))
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

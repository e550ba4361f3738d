"""MPI runs (issue 7): the MPI build under mpirun -n 1, 2 and 4 gives the
same products as the single-process run.

The reference is AW_REF_BIN (scripts/test.sh points it at the default,
non-MPI build) or, without it, the MPI binary started without mpirun (one
rank: the single-process code path). Each MPI run shares every date's rows
between its ranks, adds up their zone accumulators, histograms and counts,
and lets each rank encode some of the rasters; the tests assert that none
of that shows in the results:

- every raster of every date (indices, water, validity, source, change
  rasters) and every baseline raster is byte-identical, so are the zone
  tables, and the alerts, CAP messages, manifests' scene records, report
  and catalog tables are identical up to their creation times;
- on the sample (one real Landsat 5 scene) and on a synthetic region of
  two years of 16-day scenes (tools/make_archive.py) whose second year has
  two overlapping scenes per date, mosaicked by least cloud, with a
  baseline built first (`aralwatch baseline` under mpirun too);
- a scene whose corrupt tile only one rank reads fails on every rank with
  that rank's reason, the date goes on without it (exit 6), as in one
  process;
- a rank killed in the middle of a date ends the job (no hang) with a
  non-zero exit, nothing half-written in place, and the next run completes.

Skipped when the binary is not an MPI build or mpirun is missing."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import yaml
from osgeo import gdal

import awtest

gdal.UseExceptions()
BIN = awtest.BIN
SRC = awtest.SRC
REF = os.environ.get("AW_REF_BIN") or BIN
MPIRUN = shutil.which("mpirun")
VERSION = subprocess.run([BIN, "--version"], capture_output=True,
                         text=True).stdout
# scripts/test.sh sets AW_REQUIRE_MPI for the MPI build: there a missing
# mpirun or a non-MPI binary is a failure, not a skip.
if os.environ.get("AW_REQUIRE_MPI") and not (MPIRUN and "MPI" in VERSION):
    raise SystemExit("AW_REQUIRE_MPI: %s is not an MPI build or there is no "
                     "mpirun (%s)" % (BIN, MPIRUN))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
STAMP = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def ref(args):
    p = subprocess.run([REF] + args, capture_output=True, text=True,
                       timeout=600, env=ENV)
    return p.returncode, p.stderr


def mpirun(n, args, env=None, timeout=600):
    cmd = [MPIRUN, "-n", str(n), "--oversubscribe", "--bind-to", "none", BIN]
    p = subprocess.run(cmd + args, capture_output=True, text=True,
                       timeout=timeout, env=env or ENV)
    return p.returncode, p.stderr


def text_of(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return STAMP.sub("<time>", f.read())


def manifest_view(path):
    """A manifest without what differs by design between runs: creation
    time, threads, ranks, timings, and the checksums of files that carry
    a creation time."""
    with open(path) as f:
        m = json.loads(STAMP.sub("<time>", f.read()))
    for k in ("threads", "mpi_ranks", "timings_s"):
        m.pop(k, None)
    for o in m.get("outputs", []):
        if not (o["file"].endswith(".tif") or o["file"].endswith(".aux.xml")
                or o["file"].startswith("zones.")):
            o.pop("sha256", None)
            o.pop("bytes", None)
    return m


def catalog_view(db_path):
    """The catalog's results, without run ids and times."""
    db = sqlite3.connect(db_path)
    q = {
        "dates": "SELECT date, status, fingerprint FROM dates ORDER BY date",
        "scenes": "SELECT id, date, status, reason, valid_fraction, "
                  "cloud_pct FROM scenes ORDER BY id",
        "metrics": "SELECT date, zone_id, metric, value FROM metrics "
                   "ORDER BY date, zone_id, metric",
        "alerts": "SELECT alert_id, date, zone_id, rule_id, level, record "
                  "FROM alerts ORDER BY alert_id",
        "zone_baseline": "SELECT * FROM zone_baseline ORDER BY 1, 2, 3",
    }
    out = {}
    for k, sql in q.items():
        try:
            rows = db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            continue
        out[k] = [tuple(STAMP.sub("<time>", c) if isinstance(c, str) else c
                        for c in r) for r in rows]
    db.close()
    return out


class Compare:
    def assert_same_products(self, a, b):
        """Region folders a (single process) and b (MPI): same files, the
        rasters byte for byte."""
        skip = {"catalog.sqlite", "last_run.json", "lock"}
        files_a, files_b = [], []
        for top, files in ((a, files_a), (b, files_b)):
            for root, _, names in os.walk(top):
                for n in names:
                    rel = os.path.relpath(os.path.join(root, n), top)
                    if n not in skip and not n.startswith(".") and \
                            not rel.startswith("quicklooks"):
                        files.append(rel)
        self.assertEqual(sorted(files_a), sorted(files_b))
        self.assertTrue(any(f.endswith(".tif") for f in files_a))
        n_tif = 0
        for rel in sorted(files_a):
            pa, pb = os.path.join(a, rel), os.path.join(b, rel)
            if rel.endswith(".tif") or rel.endswith(".aux.xml") or \
                    os.path.basename(rel).startswith("zones."):
                with open(pa, "rb") as fa, open(pb, "rb") as fb:
                    self.assertTrue(fa.read() == fb.read(),
                                    "%s differs" % rel)
                n_tif += rel.endswith(".tif")
            elif rel.endswith("manifest.json"):
                self.assertEqual(manifest_view(pa), manifest_view(pb), rel)
            elif rel.endswith("item.json"):
                with open(pa) as fa, open(pb) as fb:
                    ia, ib = json.load(fa), json.load(fb)
                self.assertEqual(sorted(ia["assets"]), sorted(ib["assets"]))
                self.assertEqual(ia["bbox"], ib["bbox"])
            else:
                self.assertEqual(text_of(pa), text_of(pb), rel)
        self.assertEqual(catalog_view(os.path.join(a, "catalog.sqlite")),
                         catalog_view(os.path.join(b, "catalog.sqlite")))
        return n_tif


@unittest.skipUnless(MPIRUN and "MPI" in VERSION,
                     "not an MPI build (cmake -DAW_MPI=ON) or no mpirun")
class Sample(unittest.TestCase, Compare):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aw-mpi-")
        cls.cfg = os.path.join(SRC, "configs", "sample.yaml")
        cls.ref = os.path.join(cls.tmp, "ref")
        cls.rc_ref, cls.err_ref = ref(["run", "-c", cls.cfg, "-o", cls.ref,
                                       "-q"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_n1_n2_n4_equal_the_single_process_run(self):
        self.assertEqual(self.rc_ref, 10, self.err_ref)
        for n in (1, 2, 4):
            with self.subTest(ranks=n):
                out = os.path.join(self.tmp, "n%d" % n)
                rc, err = mpirun(n, ["run", "-c", self.cfg, "-o", out, "-q"])
                self.assertEqual(rc, 10, err)
                k = self.assert_same_products(
                    os.path.join(self.ref, "para_reservoir"),
                    os.path.join(out, "para_reservoir"))
                self.assertGreaterEqual(k, 10)
                with open(os.path.join(out, "para_reservoir", "1988-08-14",
                                       "manifest.json")) as f:
                    self.assertEqual(json.load(f)["mpi_ranks"], n)

    def test_the_slurm_script_runs_the_sample_outside_slurm(self):
        out = os.path.join(self.tmp, "slurm")
        env = dict(ENV, ARALWATCH_BIN=BIN, ARALWATCH_OUT=out,
                   ARALWATCH_RANKS="2")
        env.pop("SLURM_JOB_ID", None)
        p = subprocess.run([os.path.join(SRC, "examples", "slurm",
                                         "nightly.sbatch")],
                           capture_output=True, text=True, env=env,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)  # 10 (alert) -> 0
        lines = [json.loads(x) for x in p.stderr.splitlines()
                 if x.startswith("{")]
        self.assertEqual({x.get("rank") for x in lines if "rank" in x},
                         {0, 1})
        self.assert_same_products(os.path.join(self.ref, "para_reservoir"),
                                  os.path.join(out, "para_reservoir"))

    def test_a_killed_rank_ends_the_job_and_the_next_run_completes(self):
        out = os.path.join(self.tmp, "killed")
        env = dict(ENV, AW_MPI_TEST_DIE_RANK="1", AW_STRIP_ROWS="64")
        t0 = time.time()
        rc, err = mpirun(2, ["run", "-c", self.cfg, "-o", out, "-q"], env=env,
                         timeout=180)
        self.assertNotEqual(rc, 0)
        self.assertLess(time.time() - t0, 120, "the job hung")
        self.assertRegex(err, r"signal 9|Killed")
        region = os.path.join(out, "para_reservoir")
        self.assertFalse(os.path.exists(os.path.join(region, "1988-08-14")),
                         "a date folder from a killed job")
        rc, err = mpirun(2, ["run", "-c", self.cfg, "-o", out, "-q"])
        self.assertEqual(rc, 10, err)
        self.assertEqual([n for n in os.listdir(region) if ".partial-" in n],
                         [])
        self.assert_same_products(os.path.join(self.ref, "para_reservoir"),
                                  region)


def split_scene(src_dir, dst_dir, row0, rows, size):
    """Rows row0..row0+rows of a make_archive scene, as a scene of its own
    (tiled 64 x 64, so that one tile can be corrupted)."""
    os.makedirs(dst_dir, exist_ok=True)
    for f in sorted(os.listdir(src_dir)):
        gdal.Translate(os.path.join(dst_dir, f), os.path.join(src_dir, f),
                       srcWin=[0, row0, size, rows],
                       creationOptions=["TILED=YES", "BLOCKXSIZE=64",
                                        "BLOCKYSIZE=64", "COMPRESS=DEFLATE"])


def corrupt_last_tile(path):
    ds = gdal.Open(path)
    b = ds.GetRasterBand(1)
    ty = (ds.RasterYSize + 63) // 64 - 1
    off = int(b.GetMetadataItem("BLOCK_OFFSET_0_%d" % ty, "TIFF"))
    size = int(b.GetMetadataItem("BLOCK_SIZE_0_%d" % ty, "TIFF"))
    ds = None
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(b"\xff" * size)


@unittest.skipUnless(MPIRUN and "MPI" in VERSION,
                     "not an MPI build (cmake -DAW_MPI=ON) or no mpirun")
class Synthetic(unittest.TestCase, Compare):
    """Two years of a synthetic region; 2020 has two overlapping scenes per
    date (rows 0-129 and 70-199 of 200, so the ranks' shares are uneven)."""

    SIZE = 200

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aw-mpi-syn-")
        arch = os.path.join(cls.tmp, "archive")
        subprocess.run([sys.executable,
                        os.path.join(SRC, "tools", "make_archive.py"), arch,
                        "--years", "2", "--size", str(cls.SIZE)],
                       check=True, capture_output=True)
        with open(os.path.join(arch, "archive.yaml")) as f:
            cfg = yaml.safe_load(f)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "monitoring_sections.yaml")) as f:
            cfg.update(yaml.safe_load(f))
        cfg["baseline"].update({"from": "2019-01-01", "to": "2019-12-31",
                                "min_years": 1})
        cfg["alerts"]["persistence"] = 1
        cfg["mosaic"] = {"order": "least_cloud"}
        # 64-pixel blocks: the COGs get overviews (2 and 4), which must be
        # the same bytes too.
        cfg["outputs"] = {"dir": "out", "cap": True, "blocksize": 64,
                          "rasters": ["ndwi", "mndwi", "ndvi", "water",
                                      "valid", "source"]}
        scenes = []
        for sc in cfg["scenes"]:
            if not str(sc["date"]).startswith("2020"):
                scenes.append(sc)
                continue
            for part, r0 in (("N", 0), ("S", 70)):
                s = dict(sc)
                s["id"] = "%s_%s" % (sc["id"], part)
                s["path"] = "split/%s" % s["id"]
                split_scene(os.path.join(arch, sc["path"]),
                            os.path.join(arch, s["path"]), r0, 130, cls.SIZE)
                scenes.append(s)
        cfg["scenes"] = scenes
        cls.arch, cls.cfg_doc = arch, cfg
        cls.cfg = os.path.join(arch, "mpi.yaml")
        with open(cls.cfg, "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
        cls.ref = os.path.join(cls.tmp, "ref")
        cls.rc_ref = [ref([cmd, "-c", cls.cfg, "-o", cls.ref, "-q"])
                      for cmd in ("baseline", "run")]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_n1_n2_n4_equal_the_single_process_run(self):
        self.assertEqual(self.rc_ref[0][0], 0, self.rc_ref[0][1])
        self.assertEqual(self.rc_ref[1][0], 10, self.rc_ref[1][1])
        region = os.path.join(self.ref, "synthetic")
        db = sqlite3.connect(os.path.join(region, "catalog.sqlite"))
        n_alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
        two = db.execute("SELECT count(*) FROM scenes WHERE status = 'used' "
                         "AND id LIKE '%_S'").fetchone()[0]
        db.close()
        self.assertGreater(n_alerts, 0)
        self.assertGreater(two, 10)
        for n in (1, 2, 4):
            with self.subTest(ranks=n):
                out = os.path.join(self.tmp, "n%d" % n)
                rc, err = mpirun(n, ["baseline", "-c", self.cfg, "-o", out,
                                     "-q"])
                self.assertEqual(rc, 0, err)
                rc, err = mpirun(n, ["run", "-c", self.cfg, "-o", out, "-q"])
                self.assertEqual(rc, 10, err)
                k = self.assert_same_products(
                    region, os.path.join(out, "synthetic"))
                self.assertGreater(k, 46 * 5)
        ds = gdal.Open(os.path.join(region, "2020-05-15", "mndwi.tif"))
        self.assertEqual(ds.GetRasterBand(1).GetOverviewCount(), 2)

    def test_a_scene_failing_on_one_rank_fails_on_all(self):
        cfg = dict(self.cfg_doc)
        dates = sorted({str(s["date"]) for s in cfg["scenes"]
                        if str(s["date"]).startswith("2020")})[10:12]
        # The first scene (a whole one of 2019) sets the grid: 200 x 200.
        # One more date has only a northern scene (rows 0-129).
        north = [s for s in cfg["scenes"] if s["id"].endswith("_N")][-1]
        cfg["scenes"] = cfg["scenes"][:1] + [
            s for s in cfg["scenes"] if str(s["date"]) in dates] + [north]
        self.assertEqual(len(cfg["scenes"]), 6)
        cfg.pop("baseline")
        # Tiled GeoTIFFs rather than COGs: the other way out of the
        # shared strip files.
        cfg["outputs"] = dict(cfg["outputs"], cog=False)
        bad = [s for s in cfg["scenes"] if s["id"].endswith("_S")][0]
        corrupt_last_tile(os.path.join(self.arch, bad["path"], "B3.tif"))
        try:
            path = os.path.join(self.arch, "bad.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(cfg, f, sort_keys=False)
            a = os.path.join(self.tmp, "bad_ref")
            rc, err = ref(["run", "-c", path, "-o", a, "-q"])
            self.assertEqual(rc, 6, err)
            b = os.path.join(self.tmp, "bad_n2")
            rc, err = mpirun(2, ["run", "-c", path, "-o", b])
            self.assertEqual(rc, 6, err)
            # Row shares by work weight (1/4 per row, +1 per scene over
            # it): two scenes over rows 0-129 and 70-199 cut at 100; one
            # scene over rows 0-129 gives 130 * 1.25 + 70 * 0.25 = 180,
            # half of it by row 72.
            for date, cut in ((dates[0], 100), (str(north["date"]), 72)):
                self.assertIn("[rank 0 ingest %s] %s: rows 0-%d of 200 are "
                              "this rank's" % (date, date, cut), err)
                self.assertIn("[rank 1 ingest %s] %s: rows %d-200 of 200 "
                              "are this rank's" % (date, date, cut), err)
            # Only rank 1 reads the corrupt tile (rows 134-199).
            self.assertRegex(err, r"\[rank 1 [^\]]*\] scene %s failed"
                             % bad["id"])
            self.assertNotRegex(err, r"\[rank 0 [^\]]*\] scene %s failed"
                                % bad["id"])
            self.assert_same_products(os.path.join(a, "synthetic"),
                                      os.path.join(b, "synthetic"))
            db = sqlite3.connect(os.path.join(b, "synthetic",
                                              "catalog.sqlite"))
            st, reason = db.execute(
                "SELECT status, reason FROM scenes WHERE id = ?",
                (bad["id"],)).fetchone()
            db.close()
            self.assertEqual(st, "failed")
            self.assertIn("B3.tif", reason)
        finally:
            split_scene(os.path.join(self.arch, "scenes",
                                     bad["id"][:-2]),
                        os.path.join(self.arch, bad["path"]), 70, 130,
                        self.SIZE)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""Nightly operations: the catalog makes reruns idempotent, the lock keeps
runs of one region apart, and a run killed at any instant leaves either the
old or a complete new product folder, never a partial one; the next run
finishes the work."""
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import awtest
from awtest import BIN, SRC, run

SCENE = os.path.join(SRC, "sample_rasters", "landsat5_para")
DATE = "1988-08-14"


def digest(folder):
    """SHA-256 of every file in a folder, by name."""
    out = {}
    for n in sorted(os.listdir(folder)):
        with open(os.path.join(folder, n), "rb") as f:
            out[n] = hashlib.sha256(f.read()).hexdigest()
    return out


def complete(folder):
    """A date folder is complete when its manifest lists every other file
    with the right checksum."""
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    files = digest(folder)
    listed = {o["file"]: o["sha256"] for o in m["outputs"]}
    # item.json (STAC) holds the manifest's checksum, so the manifest
    # cannot list it.
    return set(files) - {"manifest.json", "item.json"} == set(listed) and all(
        files[k] == v for k, v in listed.items())


class Operations(awtest.TempDirTest):
    def setUp(self):
        super().setUp()
        # A private copy of the scene, so the tests may touch its files.
        self.scene = os.path.join(self.tmp, "scene")
        shutil.copytree(SCENE, self.scene)
        self.cfg = os.path.join(self.tmp, "c.yaml")
        self.write_config("threshold")
        self.out = os.path.join(self.tmp, "out")
        self.region = os.path.join(self.out, "ops")
        self.date_dir = os.path.join(self.region, DATE)

    def write_config(self, method):
        with open(self.cfg, "w") as f:
            f.write("version: 1\nregion: {name: ops}\nscenes:\n"
                    "  - {id: L5, date: %s, path: %s, nodata: 255,\n"
                    "     bands: {green: LT52240631988227CUB02_B2.TIF,"
                    " nir: LT52240631988227CUB02_B4.TIF,"
                    " swir1: LT52240631988227CUB02_B5.TIF,"
                    " red: LT52240631988227CUB02_B3.TIF}}\n"
                    "water: {method: %s}\n" % (DATE, self.scene, method))

    def run_ok(self, *extra):
        rc, _, err = run(["run", "--config", self.cfg, "--out", self.out] +
                         list(extra))
        self.assertEqual(rc, 0, err)
        return err

    def test_a_second_run_does_no_work_and_leaves_outputs_byte_identical(self):
        self.run_ok()
        before = digest(self.date_dir)
        mtimes = {n: os.stat(os.path.join(self.date_dir, n)).st_mtime_ns
                  for n in before}
        err = self.run_ok()
        self.assertIn("up to date", err)
        self.assertIn("1 unchanged", err)
        self.assertEqual(digest(self.date_dir), before)
        for n, t in mtimes.items():
            self.assertEqual(os.stat(os.path.join(self.date_dir, n)).st_mtime_ns, t)
        db = sqlite3.connect(os.path.join(self.region, "catalog.sqlite"))
        runs = db.execute("SELECT exit_status FROM runs ORDER BY id").fetchall()
        self.assertEqual(runs, [(0,), (0,)])
        self.assertEqual(db.execute("SELECT date, status FROM dates").fetchall(),
                         [(DATE, "done")])
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)
        metrics = dict(db.execute(
            "SELECT metric, value FROM zone_metrics").fetchall())
        self.assertEqual(metrics, {})  # no zones in this config
        # The scene's row holds its input checksums (against hashlib) and
        # its footprint (against the raster's corners transformed by OSR).
        fp, sums = db.execute(
            "SELECT footprint, checksums FROM scenes WHERE id = 'L5'").fetchone()
        sums = json.loads(sums)
        self.assertEqual(sorted(s["role"] for s in sums),
                         ["green", "nir", "red", "swir1"])
        for s in sums:
            with open(s["path"], "rb") as f:
                data = f.read()
            self.assertEqual(s["sha256"], hashlib.sha256(data).hexdigest())
            self.assertEqual(s["bytes"], len(data))
        from osgeo import gdal, osr
        ds = gdal.Open(os.path.join(self.scene, "LT52240631988227CUB02_B2.TIF"))
        gt = ds.GetGeoTransform()
        src = osr.SpatialReference(wkt=ds.GetProjection())
        dst = osr.SpatialReference()
        dst.ImportFromEPSG(4326)
        for s_ in (src, dst):
            s_.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(src, dst)
        ring = json.loads(fp)["coordinates"][0]
        self.assertEqual(json.loads(fp)["type"], "Polygon")
        self.assertEqual(ring[0], ring[-1])
        for c, r in ((0, 0), (ds.RasterXSize, 0), (ds.RasterXSize, ds.RasterYSize),
                     (0, ds.RasterYSize)):
            lon, lat, _ = ct.TransformPoint(gt[0] + c * gt[1], gt[3] + r * gt[5])
            self.assertLess(min(abs(lon - p[0]) + abs(lat - p[1]) for p in ring),
                            2e-6, (c, r))

    def test_a_changed_input_or_config_is_processed_again(self):
        self.run_ok()
        band = os.path.join(self.scene, "LT52240631988227CUB02_B5.TIF")
        db = sqlite3.connect(os.path.join(self.region, "catalog.sqlite"))
        sha0 = db.execute("SELECT sha256 FROM files WHERE path = ?",
                          (band,)).fetchone()[0]
        # Only touched (newer time, same content): the checksum is worked
        # out again, finds the same content, and nothing is redone.
        os.utime(band, (time.time() + 10, time.time() + 10))
        err = self.run_ok()
        self.assertIn("up to date", err)
        self.assertEqual(db.execute(
            "SELECT sha256, mtime_ns FROM files WHERE path = ?",
            (band,)).fetchone(), (sha0, os.stat(band).st_mtime_ns))
        # Rewritten with the same size: one byte of the last pixel row
        # changes (and so does the time).
        with open(band, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            b = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([b[0] ^ 1]))
        os.utime(band, (time.time() + 20, time.time() + 20))
        err = self.run_ok()
        self.assertNotIn("up to date", err)
        self.assertIn("1 used", err)
        sha1 = db.execute("SELECT sha256 FROM files WHERE path = ?",
                          (band,)).fetchone()[0]
        with open(band, "rb") as f:
            self.assertEqual(sha1, hashlib.sha256(f.read()).hexdigest())
        self.assertNotEqual(sha1, sha0)
        # The config changed.
        self.write_config("otsu")
        err = self.run_ok()
        self.assertIn("1 used", err)
        with open(os.path.join(self.date_dir, "manifest.json")) as f:
            self.assertEqual(json.load(f)["water"]["method"], "otsu")

    def test_a_schema_1_catalog_is_migrated_keeping_its_rows(self):
        # A catalog as aralwatch 0.x with schema 1 left it (its DDL as
        # released), holding one old run and one alert.
        os.makedirs(self.region)
        db = sqlite3.connect(os.path.join(self.region, "catalog.sqlite"))
        db.executescript("""
            CREATE TABLE runs (id INTEGER PRIMARY KEY, started TEXT NOT NULL,
              finished TEXT, exit_status INTEGER, software TEXT NOT NULL,
              config_path TEXT, config_sha256 TEXT, host TEXT, pid INTEGER);
            CREATE TABLE dates (date TEXT PRIMARY KEY,
              fingerprint TEXT NOT NULL, status TEXT NOT NULL,
              run_id INTEGER REFERENCES runs(id), updated TEXT NOT NULL);
            CREATE TABLE scenes (id TEXT PRIMARY KEY, sensor TEXT, date TEXT,
              product TEXT, status TEXT NOT NULL, reason TEXT,
              valid_fraction REAL, cloud_pct REAL,
              run_id INTEGER REFERENCES runs(id), updated TEXT NOT NULL);
            CREATE TABLE zone_metrics (date TEXT NOT NULL,
              zone_id TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
              run_id INTEGER REFERENCES runs(id),
              PRIMARY KEY (date, zone_id, metric));
            CREATE TABLE alerts (alert_id TEXT PRIMARY KEY,
              date TEXT NOT NULL, zone_id TEXT NOT NULL, rule_id TEXT NOT NULL,
              level TEXT NOT NULL, record TEXT NOT NULL,
              run_id INTEGER REFERENCES runs(id));
            CREATE INDEX alerts_zone ON alerts (zone_id, date);
            INSERT INTO runs VALUES (1, '2026-01-01T00:00:00Z',
              '2026-01-01T00:01:00Z', 10, 'aralwatch 0.1.0', 'c.yaml', 'x',
              'h', 1);
            INSERT INTO alerts VALUES ('a1', '1987-01-01', 'z', 'r',
              'warning', '{}', 1);
            PRAGMA user_version = 1;
            """)
        db.close()
        self.run_ok()
        db = sqlite3.connect(os.path.join(self.region, "catalog.sqlite"))
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)
        self.assertEqual(db.execute(
            "SELECT id, exit_status FROM runs ORDER BY id").fetchall(),
            [(1, 10), (2, 0)])
        self.assertEqual(db.execute("SELECT alert_id FROM alerts").fetchall(),
                         [("a1",)])
        self.assertIsNotNone(db.execute(
            "SELECT footprint FROM scenes WHERE id = 'L5'").fetchone()[0])
        # A catalog from a newer aralwatch is refused, not damaged.
        db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
        rc, _, err = run(["run", "--config", self.cfg, "--out", self.out])
        self.assertNotEqual(rc, 0)
        self.assertIn("catalog schema 99 is newer", err)

    def test_reprocess_and_status(self):
        self.run_ok()
        rc, out, err = run(["status", "--config", self.cfg, "--out", self.out])
        self.assertEqual(rc, 0, err)
        self.assertIn("%s  done" % DATE, out)
        self.assertIn("pending dates (not done with the current inputs):\n"
                      "  (none)", out)
        rc, _, err = run(["reprocess", "--config", self.cfg, "--out", self.out,
                          "--scene", "L5"])
        self.assertEqual(rc, 0, err)
        self.assertIn("1 used", err)
        rc, _, err = run(["reprocess", "--config", self.cfg, "--out", self.out])
        self.assertEqual(rc, 2, err)
        rc, _, err = run(["reprocess", "--config", self.cfg, "--out", self.out,
                          "--scene", "nope"])
        self.assertEqual(rc, 2, err)
        self.assertIn("--scene nope", err)

    def test_reprocessing_removes_the_previous_folder_with_its_subfolders(self):
        # The previous products are swapped out and removed, also a folder
        # inside them (cap/ with outputs.cap): it was left behind as a
        # hidden .<date>.partial-<pid> folder at every reprocess, and the
        # next run's sweep said "removed" while it stayed.
        self.run_ok()
        os.makedirs(os.path.join(self.date_dir, "cap", "deeper"))
        with open(os.path.join(self.date_dir, "cap", "deeper", "x.xml"), "w") as f:
            f.write("<x/>")
        for _ in range(2):
            rc, _, err = run(["reprocess", "--config", self.cfg, "--out",
                              self.out, "--scene", "L5"])
            self.assertEqual(rc, 0, err)
            self.assertEqual([d for d in os.listdir(self.region)
                              if d.startswith(".") and d != ".aralwatch.lock"],
                             [])
            self.assertNotIn("cannot remove", err)
        self.assertFalse(os.path.exists(os.path.join(self.date_dir, "cap")))
        self.assertTrue(complete(self.date_dir))

    def test_a_second_run_of_the_region_is_refused_while_the_first_holds_it(self):
        os.makedirs(self.region)
        with open(os.path.join(self.region, ".aralwatch.lock"), "w") as f:
            f.write("pid 4242 on testhost since 2026-01-01T00:00:00Z\n")
            f.flush()
            fcntl.flock(f, fcntl.LOCK_EX)
            rc, _, err = run(["run", "--config", self.cfg, "--out", self.out])
            self.assertEqual(rc, 7, err)
            self.assertIn("pid 4242 on testhost", err)
            self.assertFalse(os.path.exists(self.date_dir))
        # Released (as when its holder dies): the next run goes ahead.
        self.run_ok()
        self.assertTrue(complete(self.date_dir))

    def test_a_run_killed_at_any_instant_leaves_no_partial_output(self):
        # Reference products of an undisturbed run, elsewhere.
        ref_out = os.path.join(self.tmp, "ref")
        rc, _, err = run(["run", "--config", self.cfg, "--out", ref_out, "-q"])
        self.assertEqual(rc, 0, err)
        ref = digest(os.path.join(ref_out, "ops", DATE))
        # Kill with SIGKILL at many instants of a run (a first run, then
        # reprocessing over existing products), checking after each kill.
        delays = [0.02 * k for k in range(1, 16)]
        for i, delay in enumerate(delays):
            args = ["run", "--config", self.cfg, "--out", self.out, "-q"]
            if i % 2 and os.path.exists(self.date_dir):
                args[0] = "reprocess"
                args += ["--scene", "L5"]
            p = subprocess.Popen([BIN] + args, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            if os.path.exists(self.date_dir):
                self.assertTrue(complete(self.date_dir), "after %.2f s" % delay)
        # The next run finishes whatever was left, and cleans up after the
        # killed ones.
        self.run_ok()
        self.assertTrue(complete(self.date_dir))
        leftovers = [n for n in os.listdir(self.region)
                     if ".partial-" in n or ".old-" in n]
        self.assertEqual(leftovers, [])
        got = digest(self.date_dir)
        # Rasters and tables equal the undisturbed run's; the manifest and
        # alerts carry their own creation time.
        for n in got:
            if n not in ("manifest.json", "alerts.json", "item.json"):
                self.assertEqual(got[n], ref[n], n)


class BadInput(awtest.TempDirTest):
    def test_a_one_pixel_raster_runs_and_gives_its_hand_computed_index(self):
        import numpy as np
        from osgeo import gdal
        path = os.path.join(self.tmp, "one.tif")
        d = gdal.GetDriverByName("GTiff").Create(path, 1, 1, 4, gdal.GDT_UInt16)
        d.SetGeoTransform((500000, 30, 0, 4000000, 0, -30))
        d.SetProjection(awtest.srs(32640).ExportToWkt())
        for b, v in zip(range(1, 5), (300, 600, 400, 3000)):
            d.GetRasterBand(b).WriteArray(np.array([[v]], dtype=np.uint16))
        d = None
        cfg = os.path.join(self.tmp, "one.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: one}\n"
                    "scenes: [{path: %s, date: 2020-01-01}]\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n" % path)
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", cfg, "--out", out, "-q"])
        self.assertEqual(rc, 0, err)
        ds, ndwi = awtest.read(os.path.join(out, "one", "2020-01-01",
                                            "ndwi.tif"))
        self.assertEqual((ds.RasterXSize, ds.RasterYSize), (1, 1))
        # The generic 4-band map: band 2 green, band 4 NIR, DN as delivered:
        # (600 - 3000) / (600 + 3000) = -2400 / 3600.
        self.assertAlmostEqual(float(ndwi[0, 0]), -2400 / 3600, places=6)

    def test_nan_inf_and_negative_reflectance_follow_the_nodata_policy(self):
        # A float32 scene, 1 x 5 pixels: green, NIR per pixel. NaN and +Inf
        # are invalid (quality class 2, NDWI NaN); negative reflectance is
        # computed as it is: (-0.01 - 0.05) / (-0.01 + 0.05) = -1.5; a sum
        # <= 0 gives NaN.
        import numpy as np
        from osgeo import gdal
        path = os.path.join(self.tmp, "scène avec espaces", "refl.tif")
        os.makedirs(os.path.dirname(path))
        g = [0.08, np.nan, np.inf, -0.01, -0.06]
        n = [0.02, 0.05, 0.05, 0.05, 0.05]
        d = gdal.GetDriverByName("GTiff").Create(path, 5, 1, 2, gdal.GDT_Float32)
        d.SetGeoTransform((500000, 30, 0, 4000000, 0, -30))
        d.SetProjection(awtest.srs(32640).ExportToWkt())
        d.GetRasterBand(1).WriteArray(np.array([g], dtype=np.float32))
        d.GetRasterBand(2).WriteArray(np.array([n], dtype=np.float32))
        d = None
        cfg = os.path.join(self.tmp, "nan.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("version: 1\nregion: {name: nan}\nscenes:\n"
                    "  - {date: 2020-01-01, path: '%s', bands: {green: "
                    "{file: refl.tif, band: 1}, nir: {file: refl.tif, band: "
                    "2}}}\nindices: [ndwi]\nwater: {index: ndwi}\n"
                    % os.path.dirname(path))
        out = os.path.join(self.tmp, "sortie é")
        rc, _, err = run(["run", "--config", cfg, "--out", out, "-q"])
        self.assertEqual(rc, 0, err)
        d = os.path.join(out, "nan", "2020-01-01")
        _, ndwi = awtest.read(os.path.join(d, "ndwi.tif"))
        _, q = awtest.read(os.path.join(d, "valid.tif"))
        np.testing.assert_array_equal(q[0], [1, 2, 2, 1, 1])
        self.assertAlmostEqual(float(ndwi[0, 0]), 0.06 / 0.10, places=6)
        self.assertTrue(np.isnan(ndwi[0, 1]) and np.isnan(ndwi[0, 2]))
        self.assertAlmostEqual(float(ndwi[0, 3]), -1.5, places=5)
        self.assertTrue(np.isnan(ndwi[0, 4]))

    def test_no_crs_and_no_overlap_fail_before_any_warp(self):
        import numpy as np
        from osgeo import gdal
        bare = os.path.join(self.tmp, "bare.tif")
        d = gdal.GetDriverByName("GTiff").Create(bare, 4, 4, 2, gdal.GDT_Float32)
        d.GetRasterBand(1).WriteArray(np.full((4, 4), 0.1, np.float32))
        d.GetRasterBand(2).WriteArray(np.full((4, 4), 0.2, np.float32))
        d = None
        cases = {
            # A raster without georeferencing, on a region given in full.
            "nocrs": ("region: {name: a, crs: 'EPSG:32640', resolution: 30, "
                      "bbox: [59.9, 44.9, 60.0, 45.0]}", self.tmp,
                      "bare.tif", "bare.tif", "no geotransform or no CRS"),
            # The Para scene against a region in Central Asia.
            "away": ("region: {name: b, bbox: [59.9, 44.9, 60.0, 45.0], "
                     "crs: 'EPSG:32640', resolution: 30}", SCENE,
                     "LT52240631988227CUB02_B2.TIF",
                     "LT52240631988227CUB02_B4.TIF",
                     "does not overlap the region"),
        }
        for name, (region, folder, g, n, why) in cases.items():
            cfg = os.path.join(self.tmp, name + ".yaml")
            with open(cfg, "w") as f:
                f.write("version: 1\n%s\nscenes:\n  - {date: 2020-01-01, "
                        "path: %s, bands: {green: {file: %s, band: %d}, nir: "
                        "{file: %s, band: %d}}}\nindices: [ndwi]\n"
                        "water: {index: ndwi}\n"
                        % (region, folder, g, 1, n,
                           2 if name == "nocrs" else 1))
            rc, _, err = run(["run", "--config", cfg, "--out",
                              os.path.join(self.tmp, "out"), "-q"])
            self.assertEqual(rc, 4, (name, err))
            self.assertIn(why, err)
            self.assertIn(g if name == "nocrs" else "_B2.TIF", err)

    def test_empty_and_invalid_zone_geometries_are_handled(self):
        # One zone with an empty geometry, one self-intersecting "bowtie"
        # (repaired with MakeValid into two triangles), one normal square,
        # all in the scene's own CRS (EPSG:32622).
        x0, y0 = 619395.0 + 30 * 100, -410205.0 - 30 * 100
        sq = [[x0, y0], [x0 + 600, y0], [x0 + 600, y0 - 600], [x0, y0 - 600],
              [x0, y0]]
        bow = [[x0, y0], [x0 + 600, y0 - 600], [x0 + 600, y0],
               [x0, y0 - 600], [x0, y0]]
        feats = [
            {"type": "Feature", "properties": {"id": "empty"},
             "geometry": None},
            {"type": "Feature", "properties": {"id": "bowtie"},
             "geometry": {"type": "Polygon", "coordinates": [bow]}},
            {"type": "Feature", "properties": {"id": "square"},
             "geometry": {"type": "Polygon", "coordinates": [sq]}}]
        zones = os.path.join(self.tmp, "z.geojson")
        with open(zones, "w") as f:
            json.dump({"type": "FeatureCollection",
                       "crs": {"type": "name", "properties":
                               {"name": "urn:ogc:def:crs:EPSG::32622"}},
                       "features": feats}, f)
        cfg = os.path.join(self.tmp, "z.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: z}\nscenes:\n"
                    "  - {date: 1988-08-14, path: %s, nodata: 255, bands: {"
                    "green: LT52240631988227CUB02_B2.TIF, nir: "
                    "LT52240631988227CUB02_B4.TIF}}\nindices: [ndwi]\n"
                    "water: {index: ndwi}\nzones: {file: %s, id_field: id}\n"
                    "alerts:\n  persistence: 1\n  rules:\n"
                    "    - {id: low, type: custom, metric:"
                    " water_fraction, when: below, watch: 2}\n"
                    % (SCENE, zones))
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", cfg, "--out", out])
        self.assertEqual(rc, 10, err)
        self.assertIn("zone 'empty' has an empty geometry", err)
        self.assertIn("zone 'bowtie' has an invalid geometry", err)
        d = os.path.join(out, "z", DATE)
        with open(os.path.join(d, "zones.json")) as f:
            z = {x["zone_id"]: x for x in json.load(f)["zones"]}
        self.assertEqual(z["empty"]["n_pixels"], 0)
        # 600 m squares of 30 m pixels: 20 x 20 = 400 centres; the bowtie's
        # two triangles hold about half of them.
        self.assertEqual(z["square"]["n_pixels"], 400)
        self.assertLess(abs(z["bowtie"]["n_pixels"] - 200), 25)
        with open(os.path.join(d, "alerts.json")) as f:
            a = json.load(f)
        # The empty zone gets an "insufficient data" notice, not an alert.
        self.assertEqual([n["zone_id"] for n in a["notices"]], ["empty"])
        self.assertEqual(sorted(x["zone_id"] for x in a["alerts"]),
                         ["bowtie", "square"])

    def test_an_unwritable_output_folder_exits_5_naming_it(self):
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: r}\nscenes:\n"
                    "  - {date: 1988-08-14, path: %s, bands: {green:"
                    " LT52240631988227CUB02_B2.TIF, nir:"
                    " LT52240631988227CUB02_B4.TIF}}\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n" % SCENE)
        blocker = os.path.join(self.tmp, "file")
        with open(blocker, "w") as f:
            f.write("not a folder\n")
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(blocker, "out")])
        self.assertEqual(rc, 5, err)
        self.assertIn("file/out", err)
        self.assertIn("Not a directory", err)


    def test_a_zero_by_zero_raster_is_named_and_exits_4(self):
        # GDAL cannot write a 0 x 0 raster, so the TIFF is built by hand:
        # a little-endian header and one IFD with ImageWidth = ImageLength
        # = 0, one 8-bit grey strip of no bytes.
        import struct
        tags = [(256, 3, 1, 0), (257, 3, 1, 0), (258, 3, 1, 8),
                (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8),
                (277, 3, 1, 1), (278, 3, 1, 0), (279, 4, 1, 0)]
        ifd = struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            ifd += struct.pack("<HHII", tag, typ, count, value)
        ifd += struct.pack("<I", 0)
        path = os.path.join(self.tmp, "empty.tif")
        with open(path, "wb") as f:
            f.write(b"II*\x00" + struct.pack("<I", 8) + ifd)
        cfg = os.path.join(self.tmp, "z.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: z, crs: 'EPSG:32640',"
                    " resolution: 30, bbox: [57, 36, 57.01, 36.01]}\n"
                    "scenes: [{date: 2020-01-01, bands: {green: %s, nir: %s}}]\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n" % (path, path))
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", cfg, "--out", out])
        self.assertEqual(rc, 4, err)
        self.assertIn("empty.tif", err)
        self.assertFalse(os.path.exists(os.path.join(out, "z", "2020-01-01")))

    def test_names_from_metadata_cannot_leave_the_output_folder(self):
        # A Landsat product whose MTL claims the date "../../escape": the
        # profile accepts only a real YYYY-MM-DD, so the product fails with
        # the reason and nothing is written outside OUT/<region>/.
        prod = os.path.join(self.tmp, "inbox", "LC08_bad")
        shutil.copytree(os.path.join(SRC, "sample_rasters", "landsat8_c2l2"),
                        prod)
        for mtl in [n for n in os.listdir(prod) if n.endswith("_MTL.txt")]:
            with open(os.path.join(prod, mtl)) as f:
                text = f.read()
            import re
            text = re.sub(r"DATE_ACQUIRED = .*", 'DATE_ACQUIRED = "../../escape"',
                          text)
            with open(os.path.join(prod, mtl), "w") as f:
                f.write(text)
        for xml in [n for n in os.listdir(prod) if n.endswith("_MTL.xml")]:
            os.remove(os.path.join(prod, xml))
        cfg = os.path.join(self.tmp, "e.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: e, grid: per_date}\n"
                    "inbox: [inbox]\nindices: [ndwi]\nwater: {index: ndwi}\n")
        out = os.path.join(self.tmp, "o1", "o2", "out")
        rc, _, err = run(["run", "--config", cfg, "--out", out])
        self.assertIn(rc, (3, 4, 6), err)
        self.assertIn("LC08_bad", err)
        self.assertEqual(os.listdir(self.tmp).count("escape"), 0)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "o1", "escape")))
        # And a region name with a path in it is a config error.
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: ../up}\n"
                    "inbox: [inbox]\nindices: [ndwi]\nwater: {index: ndwi}\n")
        rc, _, err = run(["run", "--config", cfg, "--out", out])
        self.assertEqual(rc, 3, err)
        self.assertIn("region.name", err)

    def test_a_full_disk_exits_5_and_the_next_run_finishes(self):
        # A 600 KiB tmpfs: room for the catalog, not for the products.
        disk = self.small_disk("600k")
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: r}\nscenes:\n"
                    "  - {date: 1988-08-14, path: %s, nodata: 255, bands:"
                    " {green: LT52240631988227CUB02_B2.TIF, nir:"
                    " LT52240631988227CUB02_B4.TIF, red:"
                    " LT52240631988227CUB02_B3.TIF, swir1:"
                    " LT52240631988227CUB02_B5.TIF}}\n" % SCENE)
        rc, _, err = run(["run", "--config", cfg, "--out", disk])
        self.assertEqual(rc, 5, err)
        self.assertIn("No space left on device", err)
        region = os.path.join(disk, "r")
        self.assertEqual(sorted(n for n in os.listdir(region)
                                if not n.startswith("catalog.sqlite")),
                         [".aralwatch.lock", "last_run.json"])
        with open(os.path.join(region, "last_run.json")) as f:
            self.assertEqual([x["status"] for x in json.load(f)["scenes"]],
                             ["failed"])
        db = sqlite3.connect(os.path.join(region, "catalog.sqlite"))
        # Never "done": the date is recorded failed, so the next run
        # does it again.
        self.assertEqual(db.execute("SELECT date, status FROM dates").fetchall(),
                         [(DATE, "failed")])
        self.assertEqual(db.execute("SELECT exit_status FROM runs").fetchall(),
                         [(5,)])
        db.close()
        # Room again: the next run does the date.
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        rc, _, err = run(["run", "--config", cfg, "--out", disk])
        self.assertEqual(rc, 0, err)
        self.assertTrue(complete(os.path.join(region, DATE)))


    def test_all_nodata_unreadable_crs_and_mismatched_ungeoreferenced_bands(self):
        import numpy as np
        from osgeo import gdal

        def tif(name, arr, wkt=None, gt=(500000, 30, 0, 4000000, 0, -30),
                nodata=None):
            path = os.path.join(self.tmp, name)
            d = gdal.GetDriverByName("GTiff").Create(
                path, arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
            if gt:
                d.SetGeoTransform(gt)
            if wkt:
                d.SetProjection(wkt)
            for i in range(arr.shape[0]):
                d.GetRasterBand(i + 1).WriteArray(arr[i])
                if nodata is not None:
                    d.GetRasterBand(i + 1).SetNoDataValue(nodata)
            return path

        cases = {
            # Every pixel is the file's nodata value.
            "allnd": ("region: {name: allnd}\nscenes: [{path: %s, date: 2020-01-01}]\n"
                      % tif("allnd.tif", np.zeros((4, 20, 20), np.uint16),
                            awtest.srs(32640).ExportToWkt(), nodata=0),
                      ["allnd", "no pixel of the scene falls inside the region"]),
            # An engineering CRS PROJ cannot relate to any map projection.
            "local": ("region: {name: local, crs: 'EPSG:32640', resolution: 30}\n"
                      "scenes: [{path: %s, date: 2020-01-01}]\n"
                      % tif("local.tif", np.full((4, 20, 20), 500, np.uint16),
                            'LOCAL_CS["site grid",UNIT["metre",1]]'),
                      ["local.tif", "Cannot find coordinate operations"]),
            # Two bands of different sizes and nothing to warp them by.
            "sizes": ("region: {name: sizes}\nscenes: [{date: 2020-01-01, bands:"
                      " {green: %s, nir: %s}}]\n"
                      % (tif("a10.tif", np.full((1, 10, 10), 500, np.uint16), gt=None),
                         tif("a20.tif", np.full((1, 20, 20), 900, np.uint16), gt=None)),
                      ["a10.tif", "has no geotransform or no CRS"]),
        }
        for name, (body, says) in cases.items():
            cfg = os.path.join(self.tmp, name + ".yaml")
            with open(cfg, "w") as f:
                f.write("version: 1\n" + body +
                        "indices: [ndwi]\nwater: {index: ndwi}\n")
            out = os.path.join(self.tmp, "out")
            rc, _, err = run(["run", "--config", cfg, "--out", out])
            self.assertEqual(rc, 4, (name, err))
            for text in says:
                self.assertIn(text, err, name)
            self.assertFalse(os.path.exists(os.path.join(out, name, "2020-01-01")),
                             name)

    def test_a_product_without_a_needed_band_fails_naming_the_band(self):
        # PlanetScope has no SWIR: MNDWI cannot be computed from it.
        inbox = os.path.join(self.tmp, "inbox")
        os.makedirs(inbox)
        os.symlink(os.path.join(SRC, "sample_rasters", "planetscope_harvey"),
                   os.path.join(inbox, "ps"))
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: ps, grid: per_date}\n"
                    "inbox: [inbox]\nindices: [mndwi]\n")
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out")])
        self.assertEqual(rc, 4, err)
        self.assertIn("band 'swir1' is needed but the product has none", err)


class NetworkOff(awtest.TempDirTest):
    """GDAL's network access is off unless the config allows it, also for
    paths hidden inside an input (a VRT whose sources are URLs): proved by
    a local HTTP server that counts the requests it gets."""

    def setUp(self):
        super().setUp()
        import http.server
        import threading
        served = os.path.join(self.tmp, "served")
        shutil.copytree(SCENE, served)
        self.requests = []
        test = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=served, **kw)

            def log_message(self, *a):
                test.requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        # Local VRT files whose pixels live on the server.
        from osgeo import gdal
        self.bands = {}
        for role, n in (("green", 2), ("nir", 4)):
            url = "/vsicurl/http://127.0.0.1:%d/LT52240631988227CUB02_B%d.TIF" % (
                self.port, n)
            local = os.path.join(SCENE, "LT52240631988227CUB02_B%d.TIF" % n)
            vrt = os.path.join(self.tmp, "%s.vrt" % role)
            gdal.Translate(vrt, local, format="VRT")
            with open(vrt) as f:
                text = f.read()
            with open(vrt, "w") as f:
                f.write(text.replace(local, url).replace(
                    'relativeToVRT="1"', 'relativeToVRT="0"'))
            self.bands[role] = vrt
        self.env = {k: v for k, v in os.environ.items()
                    if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        self.env["NO_PROXY"] = "127.0.0.1"

    def tearDown(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        super().tearDown()

    def config(self, allow):
        cfg = os.path.join(self.tmp, "net.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: net}\n%s"
                    "scenes:\n  - {id: N, date: %s, nodata: 255,\n"
                    "     bands: {green: %s, nir: %s}}\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n"
                    % ("allow_network: true\n" if allow else "", DATE,
                       self.bands["green"], self.bands["nir"]))
        return cfg

    def test_a_vrt_pointing_at_a_url_is_refused_without_allow_network(self):
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", self.config(False), "--out", out],
                         env=self.env)
        self.assertEqual(rc, 4, err)
        self.assertIn("green.vrt", err)
        self.assertIn("GDAL network access is off", err)
        self.assertEqual(self.requests, [])
        self.assertFalse(os.path.exists(os.path.join(out, "net", DATE)))
        # Allowed: the same run reads the pixels over HTTP.
        rc, _, err = run(["run", "--config", self.config(True), "--out", out],
                         env=self.env)
        self.assertEqual(rc, 0, err)
        self.assertGreater(len(self.requests), 0)
        self.assertTrue(os.path.exists(os.path.join(out, "net", DATE,
                                                    "ndwi.tif")))


if __name__ == "__main__":
    awtest.main()

#!/usr/bin/python3
"""End to end on the bundled sample (real Landsat 5 TM, Tucurui reservoir).

Every expected number is computed here independently of aralwatch: band DNs
read with GDAL's Python bindings, scale/offset read from the YAML with
PyYAML, zones and AOI rasterised with gdal.Rasterize, Otsu redone in numpy,
MNDWI also computed by gdal_calc.py, COG checked by GDAL's validator."""
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess

import numpy as np
import yaml
from osgeo import gdal

import awtest
from awtest import SRC, read, rasterize, run

CONFIG = os.path.join(SRC, "configs", "sample.yaml")
SCENE = os.path.join(SRC, "sample_rasters", "landsat5_para")
AOI = os.path.join(SRC, "sample_rasters", "aoi.geojson")
ZONES = os.path.join(SRC, "sample_rasters", "zones.geojson")
DATE = "1988-08-14"
INDICES = ["ndwi", "mndwi", "ndvi", "ndmi", "evi", "savi", "awei_nsh", "awei_sh"]


def otsu_numpy(values, nbins=256, lo=-1.0, hi=1.0):
    """Otsu on a fixed-bin histogram, written from the definition: maximise
    w0 w1 (mu0 - mu1)^2 over splits, bin centres as values; threshold is the
    upper edge of the last bin of class 0."""
    w = (hi - lo) / nbins
    idx = np.clip(np.floor((values - lo) / w).astype(np.int64), 0, nbins - 1)
    hist = np.bincount(idx, minlength=nbins).astype(np.float64)
    centres = lo + (np.arange(nbins) + 0.5) * w
    best, best_k = -1.0, -1
    n = hist.sum()
    for k in range(nbins - 1):
        n0 = hist[: k + 1].sum()
        n1 = n - n0
        if n0 == 0 or n1 == 0:
            continue
        mu0 = (hist[: k + 1] * centres[: k + 1]).sum() / n0
        mu1 = (hist[k + 1:] * centres[k + 1:]).sum() / n1
        v = (n0 / n) * (n1 / n) * (mu0 - mu1) ** 2
        if v > best:
            best, best_k = v, k
    return lo + (best_k + 1) * w


class SampleRun(awtest.TempDirTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.out = tempfile.mkdtemp(prefix="aw-sample-")
        cls.rc, cls.stdout, cls.stderr = run(
            ["run", "--config", CONFIG, "--out", cls.out, "--threads", "2"])
        cls.dir = os.path.join(cls.out, "para_reservoir", DATE)
        cls.addClassCleanup(shutil.rmtree, cls.out, True)
        with open(CONFIG) as f:
            cls.cfg = yaml.safe_load(f)
        # Expected grid: the AOI envelope in EPSG:32622, snapped outwards to
        # the scene's own 30 m pixel edges (origin 619395, -410205).
        ds = gdal.OpenEx(AOI)
        lyr = ds.GetLayer(0)
        feat = lyr.GetNextFeature()
        geom = feat.GetGeometryRef().Clone()
        geom.TransformTo(awtest.srs(32622))
        minx, maxx, miny, maxy = geom.GetEnvelope()
        sx, sy = 619395.0, -410205.0
        c0 = math.floor((minx - sx) / 30 + 1e-9)
        c1 = math.ceil((maxx - sx) / 30 - 1e-9)
        r0 = math.floor((sy - maxy) / 30 + 1e-9)
        r1 = math.ceil((sy - miny) / 30 - 1e-9)
        cls.win = (c0, r0, c1 - c0, r1 - r0)
        cls.gt = (sx + c0 * 30, 30.0, 0.0, sy - r0 * 30, 0.0, -30.0)

    def band(self, role):
        """Reflectance of a role on the output window, float32 like the
        pipeline, NaN where the DN is the file's nodata."""
        spec = self.cfg["scenes"][0]["bands"][role]
        ds = gdal.Open(os.path.join(SCENE, spec["file"]))
        c0, r0, w, h = self.win
        dn = ds.GetRasterBand(1).ReadAsArray(c0, r0, w, h).astype(np.float32)
        refl = dn * np.float32(spec["scale"]) + np.float32(spec["offset"])
        refl[dn == 255] = np.nan
        return refl

    def aoi_mask(self):
        ds, _ = read(os.path.join(self.dir, "mndwi.tif"))
        return rasterize(AOI, ds)

    def test_exit_code_says_alerts_were_raised(self):
        self.assertEqual(self.rc, 10, self.stderr)

    def test_every_output_exists(self):
        names = [i + ".tif" for i in INDICES] + [
            "water.tif", "valid.tif", "zones.csv", "zones.json", "alerts.json",
            "manifest.json"]
        for n in names:
            self.assertTrue(os.path.isfile(os.path.join(self.dir, n)), n)
        leftovers = [n for n in os.listdir(os.path.dirname(self.dir))
                     if n.startswith(".") and n != ".aralwatch.lock"]
        self.assertEqual(leftovers, [])

    def test_every_raster_is_a_valid_cog_with_georeferencing(self):
        for n in INDICES + ["water", "valid"]:
            path = os.path.join(self.dir, n + ".tif")
            self.assertEqual(awtest.cog_errors(path), [], path)
            ds = gdal.Open(path)
            self.assertEqual((ds.RasterXSize, ds.RasterYSize), self.win[2:])
            for a, b in zip(ds.GetGeoTransform(), self.gt):
                self.assertAlmostEqual(a, b, places=6)
            s = ds.GetSpatialRef()
            self.assertEqual(s.GetAuthorityCode(None), "32622")
            b1 = ds.GetRasterBand(1)
            self.assertGreater(b1.GetOverviewCount(), 0, path)
            # The default encoding: ZSTD, predictor 3 for float32 and 2
            # for classes, as libtiff reads them back.
            self.assertEqual(
                ds.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE"), "ZSTD")
            self.assertEqual(
                ds.GetMetadataItem("PREDICTOR", "IMAGE_STRUCTURE"),
                "3" if n in INDICES else "2")
            if n in INDICES:
                self.assertEqual(b1.DataType, gdal.GDT_Float32)
                self.assertTrue(math.isnan(b1.GetNoDataValue()))
                self.assertIn("=", b1.GetDescription())
                self.assertIn(n.upper(), b1.GetDescription())
        wds = gdal.Open(os.path.join(self.dir, "water.tif"))
        water = wds.GetRasterBand(1)
        self.assertEqual(water.GetNoDataValue(), 255)
        self.assertIsNotNone(water.GetColorTable())
        self.assertEqual(water.GetCategoryNames()[:2], ["not water", "water"])

    def test_band_descriptions_name_the_formula(self):
        ds = gdal.Open(os.path.join(self.dir, "mndwi.tif"))
        self.assertIn("(green - swir1) / (green + swir1)",
                      ds.GetRasterBand(1).GetDescription())
        ds = gdal.Open(os.path.join(self.dir, "ndwi.tif"))
        self.assertIn("(green - nir) / (green + nir)",
                      ds.GetRasterBand(1).GetDescription())

    def test_mndwi_matches_an_independent_computation(self):
        g, s = self.band("green"), self.band("swir1")
        with np.errstate(invalid="ignore", divide="ignore"):
            expect = (g - s) / (g + s)
        expect[~((g + s) > 0)] = np.nan
        expect[~self.aoi_mask()] = np.nan
        _, got = read(os.path.join(self.dir, "mndwi.tif"))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
        ok = ~np.isnan(expect)
        self.assertGreater(ok.sum(), 80000)
        self.assertLessEqual(np.abs(got[ok] - expect[ok]).max(), 1e-6)

    def test_mndwi_matches_gdal_calc(self):
        spec = self.cfg["scenes"][0]["bands"]
        out = os.path.join(self.tmp, "calc.tif")
        expr = ("((A*{gs}+({go}))-(B*{ss}+({so})))/"
                "((A*{gs}+({go}))+(B*{ss}+({so})))").format(
            gs=spec["green"]["scale"], go=spec["green"]["offset"],
            ss=spec["swir1"]["scale"], so=spec["swir1"]["offset"])
        subprocess.run(
            ["/usr/bin/python3", "/usr/bin/gdal_calc.py", "--quiet",
             "-A", os.path.join(SCENE, spec["green"]["file"]),
             "-B", os.path.join(SCENE, spec["swir1"]["file"]),
             "--type", "Float32", "--calc", expr, "--outfile", out],
            check=True, capture_output=True)
        c0, r0, w, h = self.win
        cds = gdal.Open(out)
        calc = cds.GetRasterBand(1).ReadAsArray(c0, r0, w, h)
        _, got = read(os.path.join(self.dir, "mndwi.tif"))
        # gdal_calc marks the files' nodata (255) as its own nodata; inside
        # the AOI the NaNs of both must coincide.
        nd = cds.GetRasterBand(1).GetNoDataValue()
        calc_nan = np.isnan(calc) | (calc == nd)
        aoi = self.aoi_mask()
        np.testing.assert_array_equal(np.isnan(got)[aoi], calc_nan[aoi])
        ok = ~np.isnan(got)
        self.assertLessEqual(np.abs(got[ok] - calc[ok]).max(), 1e-6)

    def test_otsu_threshold_equals_a_numpy_otsu(self):
        _, mndwi = read(os.path.join(self.dir, "mndwi.tif"))
        vals = mndwi[~np.isnan(mndwi)].astype(np.float64)
        expect = otsu_numpy(vals)
        ds = gdal.Open(os.path.join(self.dir, "water.tif"))
        got = float(ds.GetMetadataItem("AW_WATER_THRESHOLD"))
        self.assertAlmostEqual(got, expect, places=6)

    def test_reservoir_water_area_matches_an_independent_count(self):
        ds, mndwi = read(os.path.join(self.dir, "mndwi.tif"))
        thr = float(gdal.Open(os.path.join(self.dir, "water.tif"))
                    .GetMetadataItem("AW_WATER_THRESHOLD"))
        where = "zone_id = 'tucurui_arm'"
        zone = rasterize(ZONES, ds, where=where)
        # The zone reaches beyond the AOI's grid: its pixels outside count
        # in its size but are never valid.
        whole = awtest.rasterize_extended(ZONES, ds, 20, where=where)
        wet = zone & ~np.isnan(mndwi) & (mndwi > thr)
        expect_km2 = wet.sum() * 30 * 30 / 1e6
        with open(os.path.join(self.dir, "zones.csv")) as f:
            rows = {r["zone_id"]: r for r in csv.DictReader(f)}
        r = rows["tucurui_arm"]
        self.assertEqual(int(r["n_pixels"]), int(whole.sum()))
        self.assertGreater(int(whole.sum()), int(zone.sum()))
        n_valid = int((zone & ~np.isnan(mndwi)).sum())
        self.assertEqual(int(r["n_valid"]), n_valid)
        self.assertAlmostEqual(float(r["valid_fraction"]),
                               n_valid / whole.sum(), places=8)
        self.assertAlmostEqual(float(r["zone_area_km2"]),
                               whole.sum() * 900 / 1e6, places=6)
        self.assertEqual(int(r["n_water"]), int(wet.sum()))
        # No QA band: every pixel of the zone that is not valid is outside
        # the region or the AOI, i.e. not observed.
        self.assertAlmostEqual(float(r["nodata_pct"]),
                               100.0 * (whole.sum() - n_valid) / whole.sum(),
                               places=6)
        for k in ("cloud_pct", "shadow_pct", "snow_pct"):
            self.assertEqual(float(r[k]), 0.0)
        self.assertAlmostEqual(float(r["water_area_km2"]), expect_km2, places=6)
        # The reservoir arm is mostly water: a sanity bound on the scene.
        self.assertGreater(expect_km2, 5.0)
        self.assertLess(expect_km2, 15.0)
        # water.tif agrees pixel by pixel with the threshold.
        _, water = read(os.path.join(self.dir, "water.tif"))
        np.testing.assert_array_equal(water[wet], 1)

    def test_zone_index_statistics_match_numpy(self):
        ds, ndvi = read(os.path.join(self.dir, "ndvi.tif"))
        zone = rasterize(ZONES, ds, where="zone_id = 'sw_clearing'")
        v = ndvi[zone & ~np.isnan(ndvi)].astype(np.float64)
        with open(os.path.join(self.dir, "zones.json")) as f:
            z = {x["zone_id"]: x for x in json.load(f)["zones"]}["sw_clearing"]
        st = z["indices"]["ndvi"]
        self.assertAlmostEqual(st["mean"], v.mean(), places=6)
        self.assertAlmostEqual(st["min"], v.min(), places=6)
        self.assertAlmostEqual(st["max"], v.max(), places=6)
        binw = 2.0 / 2000
        for p in (10, 50, 90):
            self.assertLessEqual(abs(st["p%d" % p] - np.percentile(v, p)), binw)
        self.assertAlmostEqual(z["crop_mean_ndvi"], v.mean(), places=6)
        self.assertEqual(z["kind"], "cropland")

    def test_alert_level_follows_the_rule_thresholds(self):
        with open(os.path.join(self.dir, "zones.csv")) as f:
            rows = {r["zone_id"]: r for r in csv.DictReader(f)}
        area = float(rows["tucurui_arm"]["water_area_km2"])
        ndvi = float(rows["sw_clearing"]["ndvi_mean"])
        rules = {r["id"]: r for r in self.cfg["alerts"]["rules"]}

        def level(rule, v):
            lv = None
            for name in ("watch", "warning", "alert"):
                if v < rule[name]:
                    lv = name
            return lv

        expect = {("tucurui_arm", "reservoir_low"): level(rules["reservoir_low"], area),
                  ("sw_clearing", "cropland_stress"): level(rules["cropland_stress"], ndvi)}
        with open(os.path.join(self.dir, "alerts.json")) as f:
            alerts = json.load(f)["alerts"]
        got = {(a["zone_id"], a["rule_id"]): a["level"] for a in alerts}
        self.assertEqual(got, {k: v for k, v in expect.items() if v})
        for a in alerts:
            for k in ("alert_id", "type", "level", "region_id", "zone_id",
                      "geometry_bbox", "period_start", "period_end", "metric",
                      "valid_fraction", "thresholds", "inputs", "software",
                      "created", "supersedes", "certainty"):
                self.assertIn(k, a)
            self.assertAlmostEqual(a["metric"]["value"], area if
                                   a["zone_id"] == "tucurui_arm" else ndvi, places=6)

    def test_manifest_records_inputs_config_and_timings(self):
        with open(os.path.join(self.dir, "manifest.json")) as f:
            m = json.load(f)
        with open(CONFIG, "rb") as f:
            self.assertEqual(m["config"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(len(m["scenes"]), 1)
        scene = m["scenes"][0]
        self.assertEqual(scene["status"], "used")
        self.assertEqual(scene["sensor"], "generic")
        self.assertEqual(len(scene["inputs"]), 6)
        for i in scene["inputs"]:
            with open(i["path"], "rb") as f:
                self.assertEqual(i["sha256"], hashlib.sha256(f.read()).hexdigest())
        aux = {a["role"]: a for a in m["aux_inputs"]}
        for role, path in (("aoi", AOI), ("zones", ZONES)):
            with open(path, "rb") as f:
                self.assertEqual(aux[role]["sha256"],
                                 hashlib.sha256(f.read()).hexdigest())
        stages = ("ingest", "mask", "mosaic", "indices", "classify", "zones",
                  "alerts", "write")
        for stage in stages:
            self.assertGreaterEqual(m["timings_s"][stage], 0.0)
        # Reading and writing rasters takes time: those stages are measured.
        for stage in ("ingest", "write"):
            self.assertGreater(m["timings_s"][stage], 0.0)
        self.assertAlmostEqual(m["timings_s"]["total"],
                               sum(m["timings_s"][s] for s in stages), places=9)
        for o in m["outputs"]:
            with open(os.path.join(self.dir, o["file"]), "rb") as f:
                self.assertEqual(o["sha256"], hashlib.sha256(f.read()).hexdigest())

    def test_results_do_not_depend_on_the_thread_count(self):
        with open(os.path.join(self.dir, "zones.csv"), "rb") as f:
            ref_csv = f.read()
        _, ref_mndwi = read(os.path.join(self.dir, "mndwi.tif"))
        for threads in ("1", "3"):
            out = os.path.join(self.tmp, "t" + threads)
            rc, _, err = run(["run", "--config", CONFIG, "--out", out,
                              "--threads", threads, "-q"])
            self.assertEqual(rc, 10, err)
            d = os.path.join(out, "para_reservoir", DATE)
            with open(os.path.join(d, "zones.csv"), "rb") as f:
                self.assertEqual(f.read(), ref_csv, threads)
            _, mndwi = read(os.path.join(d, "mndwi.tif"))
            np.testing.assert_array_equal(mndwi, ref_mndwi)

    def test_valid_codes_count_like_the_manifest(self):
        _, code = read(os.path.join(self.dir, "valid.tif"))
        with open(os.path.join(self.dir, "manifest.json")) as f:
            px = json.load(f)["pixels"]
        self.assertEqual(int((code == 1).sum()), px["valid"])
        self.assertEqual(int((code == 0).sum()), px["outside"])
        np.testing.assert_array_equal(code == 0, ~self.aoi_mask())


if __name__ == "__main__":
    awtest.main()

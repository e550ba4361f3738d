#!/usr/bin/python3
"""aralwatch's own tile reader (pipeline/tileread.c) in the pipeline: real
scenes whose GeoTIFFs it decodes (Landsat 8 C2 L2: uncompressed strips of
8 rows; the Sentinel-2 29RKH COG tile: DEFLATE tiles of 512) and one it
leaves to GDAL (PlanetScope: four bands interleaved), processed once with
it and once with GDAL decoding every input (AW_GDAL_DECODE=1, the
reference). Strips of 7 rows (AW_STRIP_ROWS) make every input tile serve
several strips, so the row of tiles the reader keeps between strips is
used. Every output raster must be pixel for pixel the same, and so must
the zone tables; the debug log says which reader decoded each file.
tests/unit/test_tileread.c compares the reader with GDAL window by window
on synthetic files of every layout it takes."""
import csv
import glob
import os

import numpy as np
from osgeo import gdal

import awtest
from awtest import SRC, run

SR = os.path.join(SRC, "sample_rasters")
LANDSAT = os.path.join(SR, "landsat8_c2l2")
DESERT = os.path.join(SR, "S2A_29RKH_20200219_0_L2A")
PLANET = os.path.join(SR, "planetscope_harvey")


class TileReader(awtest.TempDirTest):
    def produce(self, name, gdal_decode):
        cfg = os.path.join(self.tmp, "inbox.yaml")
        if not os.path.exists(cfg):
            awtest.inbox_config(self.tmp, (LANDSAT, DESERT, PLANET),
                                "indices: [ndwi, ndvi]\n"
                                "water: {index: ndwi, method: threshold}\n")
        env = dict(os.environ, AW_STRIP_ROWS="7")
        env.pop("AW_GDAL_DECODE", None)
        if gdal_decode:
            env["AW_GDAL_DECODE"] = "1"
        out = os.path.join(self.tmp, name)
        rc, _, err = run(["run", "--config", cfg, "--out", out, "--verbose"],
                         env=env)
        self.assertIn(rc, (0, 10), err)
        return os.path.join(out, "inbox"), err

    def test_products_equal_with_gdal_decoding(self):
        own, own_log = self.produce("own", False)
        ref, ref_log = self.produce("ref", True)
        # Which reader decoded what (paths as found in the inbox).
        inbox = os.path.join(self.tmp, "inbox")
        for band in ("SR_B3", "SR_B5", "QA_PIXEL"):
            path = glob.glob(os.path.join(LANDSAT, "*_%s.TIF" % band))[0]
            path = os.path.join(inbox, "landsat8_c2l2", os.path.basename(path))
            self.assertIn("%s: tiles decoded by aralwatch's threads" % path,
                          own_log)
        # (its 100 m bands; SCL is at 200 m, so GDAL's warper reads it)
        for band in ("B03", "B04", "B08"):
            self.assertIn("%s: tiles decoded by aralwatch's threads"
                          % os.path.join(inbox, os.path.basename(DESERT),
                                         band + ".tif"), own_log)
        planet = glob.glob(os.path.join(PLANET, "*_AnalyticMS.tif"))[0]
        planet = os.path.join(inbox, "planetscope_harvey",
                              os.path.basename(planet))
        self.assertIn("%s: decoded by GDAL (4 samples per pixel, interleaved)"
                      % planet, own_log)
        self.assertNotIn("tiles decoded by aralwatch's threads", ref_log)
        self.assertIn("decoded by GDAL (AW_GDAL_DECODE=1)", ref_log)
        self.assertNotIn("read by GDAL (", own_log)  # no window fell back
        # The same products.
        dates = sorted(os.path.basename(d) for d in
                       glob.glob(os.path.join(ref, "20??-??-??")))
        self.assertEqual(dates, ["2017-08-31", "2019-12-01", "2020-02-19"])
        n = 0
        for date in dates:
            names = sorted(os.path.basename(p) for p in
                           glob.glob(os.path.join(ref, date, "*.tif")))
            self.assertEqual(names, sorted(
                os.path.basename(p) for p in
                glob.glob(os.path.join(own, date, "*.tif"))))
            self.assertIn("ndwi.tif", names)
            for name in names:
                a = gdal.Open(os.path.join(own, date, name)).ReadAsArray()
                b = gdal.Open(os.path.join(ref, date, name)).ReadAsArray()
                self.assertEqual(a.shape, b.shape, (date, name))
                same = (a == b) | (np.isnan(a) & np.isnan(b)) \
                    if a.dtype.kind == "f" else a == b
                self.assertTrue(same.all(), "%s %s: %d pixels differ"
                                % (date, name, (~same).sum()))
                n += 1
            with open(os.path.join(own, date, "zones.csv")) as f:
                zo = list(csv.reader(f))
            with open(os.path.join(ref, date, "zones.csv")) as f:
                zr = list(csv.reader(f))
            self.assertEqual(zo, zr, date)
        print("%d rasters of %d dates equal with either reader" %
              (n, len(dates)))
        # Something was measured: water and valid pixels in the Landsat
        # date (a product of nothing but NaN would also compare equal).
        m = gdal.Open(os.path.join(own, "2019-12-01", "ndwi.tif"))
        v = m.GetRasterBand(1).ReadAsArray()
        self.assertGreater(np.isfinite(v).sum(), 10000)


if __name__ == "__main__":
    awtest.main()

#!/usr/bin/python3
"""The streaming engine: a date is processed in strips of rows, and the
strip height must not change a single output pixel or zone statistic.
The sample (Otsu: a histogram pass, zones, AOI) and a two-scene date
(survey pass, mosaic ranking, cloud dilation halo) run with the default
strips (the whole grid here) and with strips of 7 rows (AW_STRIP_ROWS), and
every raster is compared pixel for pixel."""
import json
import os
import shutil
import subprocess

import numpy as np

import awtest
from awtest import SRC, run

SAMPLE = os.path.join(SRC, "configs", "sample.yaml")


def rasters(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tif"))


class Streaming(awtest.TempDirTest):
    def run_with(self, cfg, out, rows=None):
        env = dict(os.environ)
        env.pop("AW_STRIP_ROWS", None)
        if rows:
            env["AW_STRIP_ROWS"] = str(rows)
        rc, _, err = run(["run", "--config", cfg, "--out", out, "-q"], env=env)
        self.assertIn(rc, (0, 10), err)

    def compare(self, a, b):
        names = rasters(a)
        self.assertEqual(names, rasters(b))
        self.assertGreater(len(names), 3)
        for n in names:
            _, x = awtest.read(os.path.join(a, n))
            _, y = awtest.read(os.path.join(b, n))
            np.testing.assert_array_equal(x, y, err_msg=n)
        with open(os.path.join(a, "zones.json")) as f:
            za = json.load(f)
        with open(os.path.join(b, "zones.json")) as f:
            zb = json.load(f)
        self.assertEqual(za, zb)

    def test_strip_height_changes_nothing_on_the_sample(self):
        whole = os.path.join(self.tmp, "whole")
        strips = os.path.join(self.tmp, "strips")
        self.run_with(SAMPLE, whole)
        self.run_with(SAMPLE, strips, rows=7)
        date = os.path.join("para_reservoir", "1988-08-14")
        self.compare(os.path.join(whole, date), os.path.join(strips, date))

    def test_strip_height_changes_nothing_with_two_scenes_and_dilation(self):
        # The Landsat C2 scene twice on one date: a survey pass ranks them
        # by cloud before the mosaic; cloud dilated by 3 pixels and shadow
        # by 2 across strip borders (the halo rows).
        ls = os.path.join(SRC, "sample_rasters", "landsat8_c2l2")
        cfg = os.path.join(self.tmp, "two.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: two}\n"
                    "scenes:\n  - {id: a, path: %s}\n  - {id: b, path: %s}\n"
                    "quality: {dilate_cloud_px: 3, dilate_shadow_px: 2}\n"
                    "mosaic: {order: least_cloud}\n"
                    "indices: [ndwi, mndwi, ndvi]\n" % (ls, ls))
        whole = os.path.join(self.tmp, "whole")
        strips = os.path.join(self.tmp, "strips")
        self.run_with(cfg, whole)
        self.run_with(cfg, strips, rows=7)
        d = [n for n in os.listdir(os.path.join(whole, "two"))
             if n[:2] in ("19", "20")][0]
        self.compare(os.path.join(whole, "two", d),
                     os.path.join(strips, "two", d))
        # The strips were really used: 7-row strips, several of them.
        _, valid = awtest.read(os.path.join(strips, "two", d, "valid.tif"))
        self.assertGreater(valid.shape[0], 3 * 7)


class Encoding(awtest.TempDirTest):
    def test_int16_encoding_and_a_chosen_set_of_rasters(self):
        # The sample once in float32 (default), once in int16 writing only
        # MNDWI, NDVI, EVI, AWEI_sh and valid.tif. Scale 1e-4, 1e-3 for EVI
        # (unbounded where its denominator nears 0) and AWEI (+-4).
        with open(SAMPLE) as f:
            text = f.read()
        cfg = os.path.join(self.tmp, "int16.yaml")
        with open(cfg, "w") as f:
            f.write(text.replace("../", SRC + "/").replace(
                "outputs:", "outputs:\n  encoding: int16\n"
                "  rasters: [mndwi, ndvi, evi, awei_sh, valid]", 1))
        f32 = os.path.join(self.tmp, "f32")
        i16 = os.path.join(self.tmp, "i16")
        for c, o in ((SAMPLE, f32), (cfg, i16)):
            rc, _, err = run(["run", "--config", c, "--out", o, "-q"])
            self.assertIn(rc, (0, 10), err)
        d = os.path.join("para_reservoir", "1988-08-14")
        self.assertEqual(rasters(os.path.join(i16, d)),
                         ["awei_sh.tif", "evi.tif", "mndwi.tif", "ndvi.tif",
                          "valid.tif"])
        scales = {"mndwi.tif": 1e-4, "ndvi.tif": 1e-4, "evi.tif": 1e-3,
                  "awei_sh.tif": 1e-3}
        for name, scale in scales.items():
            ds, x = awtest.read(os.path.join(f32, d, name))
            dq, q = awtest.read(os.path.join(i16, d, name))
            b = dq.GetRasterBand(1)
            self.assertEqual(q.dtype, np.int16)
            self.assertEqual(b.GetScale(), scale, name)
            self.assertEqual(b.GetOffset(), 0.0)
            self.assertEqual(b.GetNoDataValue(), -32768)
            np.testing.assert_array_equal(np.isnan(x), q == -32768)
            ok = ~np.isnan(x)
            self.assertGreater(ok.sum(), 1000)
            # physical = DN * scale: within half a step of the float value
            err = np.abs(q[ok] * scale - x[ok].astype(np.float64))
            self.assertLessEqual(err.max(), 0.5 * scale + 1e-7, name)
            self.assertEqual(awtest.cog_errors(os.path.join(i16, d, name)), [])
        # The zone statistics come from the float values, not the DNs.
        with open(os.path.join(f32, d, "zones.json")) as f:
            za = json.load(f)
        with open(os.path.join(i16, d, "zones.json")) as f:
            zb = json.load(f)
        self.assertEqual(za, zb)


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)

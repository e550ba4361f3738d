#!/usr/bin/python3
"""A same-date mosaic of two synthetic scenes in different UTM zones
(tools/make_synthetic.py make_mosaic): west in UTM 40N at 20 m with a
600 m cloud inside the overlap, east in UTM 41N at 30 m with a 300 m cloud
outside the west scene. The expected source of every pixel follows from
the footprints and clouds the generator drew; the reflectance field is the
same in both, so the mosaic must show it without a seam."""
import math
import os
import shutil
import sys
import tempfile

import numpy as np
from osgeo import gdal, osr

import awtest
from awtest import SRC, read, run

sys.path.insert(0, os.path.join(SRC, "tools"))
import make_synthetic as syn  # noqa: E402

CONFIG = """version: 1
region:
  name: mosaic
  crs: EPSG:32640
  resolution: 20
  bbox: [59.93, 44.95, 60.07, 45.05]
scenes:
  - id: west
    date: 2024-07-01
    path: west
    bands: {green: green.tif, nir: nir.tif, swir1: swir1.tif, qa: qa.tif}
    qa_mask: {values: [1]}
  - id: east
    date: 2024-07-01
    path: east
    bands: {green: green.tif, nir: nir.tif, swir1: swir1.tif, qa: qa.tif}
    qa_mask: {values: [1]}
indices: [ndwi, mndwi]
mosaic: {order: %s}
"""


def footprint_distance(epsg, res, box, lon, lat):
    """Signed distance in metres from each point to the edge of the scene
    the generator wrote for `box` (positive inside)."""
    gt, w, h = syn.grid_for(epsg, res, box)
    ct = osr.CoordinateTransformation(syn.srs(4326), syn.srs(epsg))
    pts = np.array(ct.TransformPoints(
        np.column_stack([lon.ravel(), lat.ravel()]).tolist()))
    x, y = pts[:, 0].reshape(lon.shape), pts[:, 1].reshape(lon.shape)
    x0, x1 = gt[0], gt[0] + w * gt[1]
    y1, y0 = gt[3], gt[3] + h * gt[5]
    return np.minimum.reduce([x - x0, x1 - x, y - y0, y1 - y])


def disc_distance(lon, lat, centre, r):
    dx = (lon - centre[0]) * syn.M_PER_DEG_LON
    dy = (lat - centre[1]) * syn.M_PER_DEG_LAT
    return np.hypot(dx, dy) - r


class Mosaic(awtest.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="aw-mosaic-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        syn.make_mosaic(cls.dir)
        cls.rc = {}
        for order in ("first", "least_cloud"):
            path = os.path.join(cls.dir, order + ".yaml")
            with open(path, "w") as f:
                f.write(CONFIG % order)
            cls.rc[order] = run(["run", "--config", path, "--out",
                                 os.path.join(cls.dir, "out_" + order), "-q"])

    def out(self, order, name):
        return os.path.join(self.dir, "out_" + order, "mosaic", "2024-07-01",
                            name)

    def expected(self, order):
        """Expected source (1 west, 2 east, 0 none), quality class and a mask
        of pixels far enough (> 2 source pixels) from every edge to be
        certain."""
        ds, _ = read(self.out(order, "source.tif"))
        lon, lat = syn.lonlat_of_centres(32640, ds.GetGeoTransform(),
                                         ds.RasterXSize, ds.RasterYSize)
        dw = footprint_distance(32640, 20.0, syn.MOSAIC_W, lon, lat)
        de = footprint_distance(32641, 30.0, syn.MOSAIC_E, lon, lat)
        cw = disc_distance(lon, lat, syn.CLOUD_W, syn.CLOUD_R_M["west"])
        ce = disc_distance(lon, lat, syn.CLOUD_E, syn.CLOUD_R_M["east"])
        in_w, in_e = dw > 0, de > 0
        clear_w, clear_e = in_w & (cw > 0), in_e & (ce > 0)
        first, second = (1, 2) if order == "first" else (2, 1)
        clear = {1: clear_w, 2: clear_e}
        inside = {1: in_w, 2: in_e}
        src = np.zeros(lon.shape, np.uint8)
        # Clearest wins; ties go to the scene first in the mosaic order.
        src[inside[second]] = second
        src[inside[first]] = first
        src[clear[second]] = second
        src[clear[first]] = first
        quality = np.where(clear_w | clear_e, 1, np.where(in_w | in_e, 6, 2))
        certain = ((np.abs(dw) > 60) & (np.abs(de) > 90) & (np.abs(cw) > 60) &
                   (np.abs(ce) > 90))
        return src, quality, certain, lon, lat

    def test_both_orders_run(self):
        for order, (rc, _, err) in self.rc.items():
            self.assertEqual(rc, 0, (order, err))

    def test_every_pixel_comes_from_the_right_scene(self):
        for order in ("first", "least_cloud"):
            src, quality, certain, _, _ = self.expected(order)
            _, got = read(self.out(order, "source.tif"))
            _, q = read(self.out(order, "valid.tif"))
            self.assertGreater(certain.sum(), 0.9 * certain.size)
            bad = (got != src) & certain
            self.assertEqual(int(bad.sum()), 0, order)
            np.testing.assert_array_equal(q[certain], quality[certain])
            # No valid pixel lacks a source, and no uncovered pixel has one.
            self.assertEqual(int(((q == 1) & (got == 0)).sum()), 0)
            self.assertGreater(int((q == 2).sum()), 1000)
            self.assertEqual(int(((q == 2) & (got != 0)).sum()), 0)

    def test_the_overlap_follows_the_mosaic_order(self):
        # Clear in both scenes: west when "first" (config order), east when
        # "least_cloud" (east has the smaller cloud).
        for order, want in (("first", 1), ("least_cloud", 2)):
            src, quality, certain, lon, lat = self.expected(order)
            _, got = read(self.out(order, "source.tif"))
            overlap = certain & (lon > 59.995) & (lon < 60.005) & \
                (np.abs(lat - 45.0) > 0.01) & (np.abs(lat - 45.0) < 0.035)
            self.assertGreater(overlap.sum(), 100)
            np.testing.assert_array_equal(got[overlap], want, order)

    def test_the_mosaic_is_seamless(self):
        # ndwi = (g - 0.05) / (g + 0.05): green recovered from it must follow
        # the generator's field on every valid pixel, across the join.
        for order in ("first", "least_cloud"):
            _, _, certain, lon, lat = self.expected(order)
            _, ndwi = read(self.out(order, "ndwi.tif"))
            _, q = read(self.out(order, "valid.tif"))
            # Far south-west the generator's green goes negative and NDWI's
            # denominator with it: NaN by the nodata policy, not a seam. At
            # the outer edges of the union, where no other scene can stand
            # in, resampling keeps its partial kernels: those are excluded
            # with the other uncertain pixels.
            ok = (q == 1) & np.isfinite(ndwi) & certain
            self.assertGreater(ok.sum(), 0.9 * (q == 1).sum())
            g = 0.05 * (1 + ndwi[ok].astype(np.float64)) / (1 - ndwi[ok])
            err = np.abs(g - syn.green(lon[ok], lat[ok]))
            self.assertLess(err.max(), 2e-5, order)

    def test_a_per_date_grid_covers_every_scene_of_the_date(self):
        path = os.path.join(self.dir, "union.yaml")
        cfg = CONFIG % "first"
        cfg = cfg[:cfg.index("region:")] + "region: {name: union, grid: per_date}\n" + \
            cfg[cfg.index("scenes:"):]
        with open(path, "w") as f:
            f.write(cfg)
        rc, _, err = run(["run", "--config", path, "--out",
                          os.path.join(self.dir, "out_union"), "-q"])
        self.assertEqual(rc, 0, err)
        d = os.path.join(self.dir, "out_union", "union", "2024-07-01")
        ds, src = read(os.path.join(d, "source.tif"))
        # The grid is the west scene's (CRS, 20 m), widened to the east
        # scene's footprint: its far corner lies inside the grid.
        gt = ds.GetGeoTransform()
        ct = osr.CoordinateTransformation(syn.srs(4326), syn.srs(32640))
        x, y, _ = ct.TransformPoint(syn.MOSAIC_E[2] - 0.001, syn.MOSAIC_E[1] + 0.001)
        col = (x - gt[0]) / gt[1]
        row = (y - gt[3]) / gt[5]
        self.assertTrue(0 <= col < ds.RasterXSize and 0 <= row < ds.RasterYSize)
        self.assertEqual(int(src[int(row), int(col)]), 2)
        self.assertGreater(int((src == 2).sum()), 50000)

    def test_the_manifest_records_each_scenes_share(self):
        import json
        with open(self.out("first", "manifest.json")) as f:
            m = json.load(f)
        scenes = {s["id"]: s for s in m["scenes"]}
        _, got = read(self.out("first", "source.tif"))
        self.assertEqual(scenes["west"]["mosaic_pixels"], int((got == 1).sum()))
        self.assertEqual(scenes["east"]["mosaic_pixels"], int((got == 2).sum()))
        self.assertEqual(scenes["west"]["mosaic_rank"], 0)
        ds = gdal.Open(self.out("first", "source.tif"))
        ds.GetFileList()  # GDAL 3.6 loads the .aux.xml lazily
        names = ds.GetRasterBand(1).GetCategoryNames()
        self.assertEqual(names[1:3], ["west", "east"])


if __name__ == "__main__":
    awtest.main()

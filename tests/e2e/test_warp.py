#!/usr/bin/python3
"""The warp onto the region grid, on synthetic scenes with known truth
(tools/make_synthetic.py): a round lake of radius 1500 m on the boundary of
UTM zones 40N and 41N, seen by scene A (UTM 40N, 20 m, float32) and scene B
(UTM 41N, 30 m green/nir and 60 m swir1, uint16 DN scaled by 1e-4). The
region grid is UTM 40N at 20 m, so scene B is warped across zones and
resolutions. Truth comes from the generator's formulas, not from aralwatch."""
import csv
import math
import os
import sys

import numpy as np
from osgeo import gdal, osr

import awtest
from awtest import SRC, read, run

sys.path.insert(0, os.path.join(SRC, "tools"))
import make_synthetic as syn  # noqa: E402

TRUE_AREA_KM2 = math.pi * syn.RADIUS_M ** 2 / 1e6  # 7.0686


class Warp(awtest.TempDirTest):
    @classmethod
    def setUpClass(cls):
        import shutil
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="aw-warp-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        syn.make(cls.dir)
        cfg = """version: 1
region:
  name: lake
  crs: EPSG:32640
  resolution: 20
  bbox: [59.97, 44.975, 60.03, 45.025]
scenes:
  - id: scene_a
    date: 2024-06-01
    path: scene_a
    bands: {green: green.tif, nir: nir.tif, swir1: swir1.tif}
  - id: scene_b
    date: 2024-06-11
    path: scene_b
    scale: 0.0001
    bands: {green: green.tif, nir: nir.tif, swir1: swir1.tif}
indices: [ndwi, mndwi]
water: {index: mndwi, method: threshold, threshold: 0.0}
zones: {file: zones.geojson, id_field: zone_id, kind_field: kind}
"""
        path = os.path.join(cls.dir, "lake.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        cls.rc, _, cls.err = run(["run", "--config", path, "--out",
                                  os.path.join(cls.dir, "out"), "-q"])

    def run_variant(self, crs, resolution, name):
        """The scene-A lake on another grid; returns its zones.csv row."""
        with open(os.path.join(self.dir, "lake.yaml")) as f:
            text = f.read()
        text = text.replace("crs: EPSG:32640", "crs: " + crs).replace(
            "resolution: 20", "resolution: " + resolution).replace(
            "name: lake", "name: " + name)
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        rc, _, err = run(["run", "--config", path, "--out",
                          os.path.join(self.dir, "out"), "-q"])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.dir, "out", name, "2024-06-01",
                               "zones.csv")) as f:
            return next(csv.DictReader(f))

    def test_geographic_grid_measures_true_area(self):
        # The same lake on a lon/lat grid: pixels are not squares of fixed
        # size, so the area must come from the geodesic cell area per row.
        row = self.run_variant("EPSG:4326", "0.0002", "lake_geo")
        # 0.0002 deg is about 22 m x 16 m here: 1.5 % as for 20 m pixels.
        self.assertLess(abs(float(row["water_area_km2"]) / TRUE_AREA_KM2 - 1),
                        0.015)
        # The zone is a 0.06 x 0.06 degree square at 45 N (its part outside
        # the region bbox counts too): on the ellipsoid about
        # 0.06 * 78846.81 m x 0.06 * 111131.75 m (the cosine of latitude
        # varies by < 0.1 % over the box).
        expect = 0.06 * syn.M_PER_DEG_LON * 0.06 * syn.M_PER_DEG_LAT / 1e6
        self.assertLess(abs(float(row["zone_area_km2"]) / expect - 1), 0.002)

    def test_web_mercator_grid_measures_true_area(self):
        # EPSG:3857 cells of 28 m cover only about (28 cos 45)^2 m^2 of
        # ground at 45 N: the nominal cell area would double the lake.
        row = self.run_variant("EPSG:3857", "28", "lake_merc")
        self.assertLess(abs(float(row["water_area_km2"]) / TRUE_AREA_KM2 - 1),
                        0.02)

    def out(self, date, name):
        return os.path.join(self.dir, "out", "lake", date, name)

    def test_run_succeeds(self):
        self.assertEqual(self.rc, 0, self.err)

    def test_lake_area_matches_the_truth_in_both_scenes(self):
        for date, tol in (("2024-06-01", 0.015), ("2024-06-11", 0.03)):
            with open(self.out(date, "zones.csv")) as f:
                row = next(csv.DictReader(f))
            area = float(row["water_area_km2"])
            self.assertLess(abs(area / TRUE_AREA_KM2 - 1), tol, (date, area))
            # The zone square sticks out of the region bbox: the part
            # outside is not observed. Expected share from gdal.Rasterize on
            # the output grid and on the same lattice extended outwards.
            ds, _ = read(self.out(date, "water.tif"))
            inside = awtest.rasterize(os.path.join(self.dir, "zones.geojson"), ds)
            whole = awtest.rasterize_extended(
                os.path.join(self.dir, "zones.geojson"), ds, 200)
            self.assertEqual(int(row["n_pixels"]), int(whole.sum()))
            self.assertAlmostEqual(float(row["valid_fraction"]),
                                   inside.sum() / whole.sum(), places=8)

    def test_lake_centre_lands_on_the_true_position(self):
        ct = osr.CoordinateTransformation(syn.srs(4326), syn.srs(32640))
        tx, ty, _ = ct.TransformPoint(syn.LON0, syn.LAT0)
        # The water edge is where green = swir1 on the resampled SWIR ramp;
        # green grows to the east and north, so the edge moves outwards there
        # by a fraction of the SWIR pixel (measured: 0.7 m at 20 m, 17.6 m for
        # scene B's 60 m SWIR). A half-pixel misregistration (10 m, 30 m)
        # would exceed these bounds.
        for date, tol in (("2024-06-01", 5.0), ("2024-06-11", 22.0)):
            ds, water = read(self.out(date, "water.tif"))
            gt = ds.GetGeoTransform()
            rows, cols = np.nonzero(water == 1)
            cx = gt[0] + (cols.mean() + 0.5) * gt[1]
            cy = gt[3] + (rows.mean() + 0.5) * gt[5]
            d = math.hypot(cx - tx, cy - ty)
            print("%s: lake centre off by %.1f m" % (date, d))
            self.assertLess(d, tol, date)

    def test_green_recovered_from_ndwi_follows_the_field(self):
        # ndwi = (g - n) / (g + n) with n = 0.05 => g = n (1 + ndwi) / (1 - ndwi)
        for date, tol in (("2024-06-01", 5e-6), ("2024-06-11", 1.2e-4)):
            ds, ndwi = read(self.out(date, "ndwi.tif"))
            gt = ds.GetGeoTransform()
            lon, lat = syn.lonlat_of_centres(32640, gt, ds.RasterXSize,
                                             ds.RasterYSize)
            g = 0.05 * (1 + ndwi.astype(np.float64)) / (1 - ndwi)
            err = np.abs(g - syn.green(lon, lat))
            # Green moves 2.5e-5 per metre: a half-pixel (10 m) shift would
            # give 2.5e-4, far above these tolerances (uint16 DNs of scene B
            # carry 5e-5 of rounding).
            self.assertLess(np.nanmax(err), tol, date)
            self.assertEqual(int(np.isnan(ndwi).sum()), 0)


if __name__ == "__main__":
    awtest.main()

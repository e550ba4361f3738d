"""Shared helpers of the end-to-end tests: where the binary and the sources
are, running the CLI, reading rasters with GDAL's Python bindings (the
independent reference), and the COG validator that ships with GDAL.

Runs under Debian's python3 with python3-gdal and python3-numpy."""
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()

SRC = os.environ.get("AW_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("AW_BIN", os.path.join(SRC, "build", "aralwatch"))


def run(args, **kw):
    """Run aralwatch; return (exit code, stdout, stderr)."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True,
                       timeout=300, **kw)
    return p.returncode, p.stdout, p.stderr


def read(path, band=1):
    ds = gdal.Open(path)
    a = ds.GetRasterBand(band).ReadAsArray()
    return ds, a


def cog_errors(path):
    """Errors of GDAL's own validate_cloud_optimized_geotiff."""
    from osgeo_utils.samples import validate_cloud_optimized_geotiff as v
    _, errors, _ = v.validate(path, full_check=True)
    return errors


def srs(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def rasterize(vector_path, like_ds, where=None):
    """Pixel-centre mask (0/1) of the polygons of a layer on the grid of
    like_ds, by gdal.Rasterize (reprojects the layer on the fly)."""
    mem = gdal.GetDriverByName("MEM").Create("", like_ds.RasterXSize,
                                             like_ds.RasterYSize, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(like_ds.GetGeoTransform())
    mem.SetProjection(like_ds.GetProjection())
    opts = gdal.RasterizeOptions(burnValues=[1], where=where)
    gdal.Rasterize(mem, vector_path, options=opts)
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)


def rasterize_extended(vector_path, like_ds, margin, where=None):
    """Like rasterize(), on like_ds's pixel lattice extended by `margin`
    pixels on every side: counts the pixels of a zone that lie outside the
    region grid too."""
    gt = list(like_ds.GetGeoTransform())
    w, h = like_ds.RasterXSize + 2 * margin, like_ds.RasterYSize + 2 * margin
    gt[0] -= margin * gt[1]
    gt[3] -= margin * gt[5]
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    mem.SetProjection(like_ds.GetProjection())
    opts = gdal.RasterizeOptions(burnValues=[1], where=where)
    gdal.Rasterize(mem, vector_path, options=opts)
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)


def inbox_config(folder, products, body):
    """folder/inbox holding links to the product folders, and
    folder/inbox.yaml: a per-date-grid region 'inbox' reading it, with
    `body` (indices, water...) after; returns the config's path."""
    inbox = os.path.join(folder, "inbox")
    os.makedirs(inbox)
    for p in products:
        os.symlink(p, os.path.join(inbox, os.path.basename(p)))
    cfg = os.path.join(folder, "inbox.yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nregion: {name: inbox, grid: per_date}\n"
                "inbox: [inbox]\n" + body)
    return cfg


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aw-e2e-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def small_disk(self, size):
        """A tmpfs of `size` (mount's syntax: "600k") in the test's folder,
        unmounted at the end; the test is skipped where mounting is not
        allowed (it needs root, as in CI)."""
        disk = os.path.join(self.tmp, "disk")
        os.makedirs(disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                           "tmpfs", disk], capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs here (not root)")
        self.addCleanup(subprocess.run, ["umount", disk])
        return disk


def main():
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""aralwatch's own tile encoder (pipeline/tilewrite.c): a DEFLATE or ZSTD
GeoTIFF or COG whose tiles aralwatch's threads predict and compress, in a
file GDAL made. The reference is GDAL's own writer (AW_GDAL_ENCODE=1, same
config): GDAL must read every raster back pixel for pixel the same, with
the same tags (georeferencing, nodata, scale, metadata, colour table),
the same compression and predictor, and the tile size asked for.
Tiles of 48 and 64 pixels on the 278 x 301 sample grid leave partial
tiles on the right and bottom edges, and strips of 7 rows (AW_STRIP_ROWS)
fill each row of tiles over several writes.

A COG's overviews are made by aralwatch from the rows (cascading, GDAL's
AVERAGE for float32 with NaN nodata and int16 with -32768, its NEAREST for
classes); GDAL's
reference builds them with GDALBuildOverviews on the whole raster. Tiles
of 128 (the COG driver's smallest) give two overviews, 139 x 151 and
70 x 76: the second's source windows are fractional: every level must be pixel for pixel
GDAL's, and the file a COG by GDAL's own validator, with the layout its
COG driver writes (directories first, smallest overview first, each tile
between its size and its last 4 bytes repeated)."""
import struct
import hashlib
import json
import os
import re
import resource

import numpy as np
import yaml
from osgeo import gdal

import awtest
from awtest import SRC, run

SAMPLE = os.path.join(SRC, "configs", "sample.yaml")
DATE = "1988-08-14"


def config(tmp, outputs, bbox=None):
    """The sample config with absolute paths and the given outputs (and
    a bbox region in the grid's CRS instead of the AOI)."""
    with open(SAMPLE) as f:
        cfg = yaml.safe_load(f)
    base = os.path.dirname(SAMPLE)

    def absolute(p):
        return os.path.normpath(os.path.join(base, p))
    cfg["region"]["aoi"] = absolute(cfg["region"]["aoi"])
    if bbox:
        del cfg["region"]["aoi"]
        cfg["region"]["bbox"] = list(bbox)
        cfg["region"]["bbox_crs"] = "EPSG:32622"
    for s in cfg["scenes"]:
        s["path"] = absolute(s["path"])
    cfg["zones"]["file"] = absolute(cfg["zones"]["file"])
    cfg["outputs"] = dict(outputs)
    path = os.path.join(tmp, "cfg-%s.yaml" % tag(outputs, bbox))
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def tag(outputs, bbox=None):
    """A name for these outputs' config and folders."""
    return "%s-%s-%d-L%s%s%s" % (outputs["encoding"], outputs["compress"],
                                 outputs["blocksize"],
                                 outputs.get("level", "d"),
                              "-cog" if outputs["cog"] else "",
                              "-bbox" if bbox else "")


def tile_sizes(path):
    """Every tile's compressed size, overviews after the full resolution
    (GDAL's BLOCK_SIZE_x_y)."""
    ds = gdal.Open(path)
    b0, sizes = ds.GetRasterBand(1), []
    for k in range(-1, b0.GetOverviewCount()):
        b = b0 if k < 0 else b0.GetOverview(k)
        bx, by = b.GetBlockSize()
        for ty in range((b.YSize + by - 1) // by):
            for tx in range((b.XSize + bx - 1) // bx):
                sizes.append(int(b.GetMetadataItem("BLOCK_SIZE_%d_%d"
                                                   % (tx, ty), "TIFF")))
    return sizes


def info(path):
    """gdalinfo as JSON, without what names the file."""
    j = gdal.Info(path, format="json", reportProj4=False)
    for k in ("description", "files"):
        j.pop(k, None)
    return j


class TileWriter(awtest.TempDirTest):
    def setUp(self):
        super().setUp()
        self.logs = {}

    def produce(self, outputs, gdal_encode, rows=None, bbox=None):
        out = os.path.join(self.tmp, "gdal" if gdal_encode else "own",
                           tag(outputs, bbox))
        env = dict(os.environ)
        env.pop("AW_GDAL_ENCODE", None)
        env.pop("AW_STRIP_ROWS", None)
        if gdal_encode:
            env["AW_GDAL_ENCODE"] = "1"
        if rows:
            env["AW_STRIP_ROWS"] = str(rows)
        rc, _, err = run(["run", "--config", config(self.tmp, outputs, bbox),
                          "--out", out, "--threads", "2", "--verbose"],
                         env=env)
        self.assertIn(rc, (0, 10), err)
        folder = os.path.join(out, "para_reservoir", DATE)
        # Written into the staging folder, published under the date.
        self.logs[folder] = re.sub(r"/\.%s\.partial-[0-9]+/" % DATE,
                                   "/%s/" % DATE, err)
        return folder

    def check(self, outputs, predictors, own_types=None, rows=7):
        own = self.produce(outputs, False, rows=rows)
        ref = self.produce(outputs, True)
        names = sorted(n for n in os.listdir(ref) if n.endswith(".tif"))
        self.assertEqual(names, sorted(n for n in os.listdir(own)
                                       if n.endswith(".tif")))
        self.assertGreaterEqual(len(names), 10)
        bs = outputs["blocksize"]
        for n in names:
            a, b = os.path.join(own, n), os.path.join(ref, n)
            ds = gdal.Open(a)
            band = ds.GetRasterBand(1)
            self.assertEqual(band.GetBlockSize(), [bs, bs], n)
            st = ds.GetMetadata("IMAGE_STRUCTURE")
            self.assertEqual(st.get("COMPRESSION"),
                             outputs["compress"].upper(), n)
            dt = gdal.GetDataTypeName(band.DataType)
            self.assertEqual(st.get("PREDICTOR"), predictors[dt], n)
            dr = gdal.Open(b)
            self.assertEqual(band.GetOverviewCount(),
                             dr.GetRasterBand(1).GetOverviewCount(), n)
            if outputs["cog"]:
                self.assertEqual(band.GetOverviewCount(), 2, n)
            for k in range(-1, band.GetOverviewCount()):
                bo = band if k < 0 else band.GetOverview(k)
                br = dr.GetRasterBand(1)
                br = br if k < 0 else br.GetOverview(k)
                x, y = bo.ReadAsArray(), br.ReadAsArray()
                self.assertTrue(np.array_equal(x, y, equal_nan=True), (n, k))
                self.assertGreater(np.count_nonzero(x == x), 0, (n, k))
                if x.dtype.kind == "f" and k < 0:
                    # Nodata to skip in the averages.
                    self.assertGreater(np.count_nonzero(x != x), 0, n)
            # The same bytes compressed at the same level: libtiff's
            # libdeflate level for GDAL's ZLEVEL is not the ZLEVEL (7 for
            # the default 6), and libzstd is driven as libtiff's codec
            # drives it, so every tile of every level is as large as
            # GDAL's.
            self.assertEqual(tile_sizes(a), tile_sizes(b), n)
            ia, ib = info(a), info(b)
            # Same tags; gdalinfo's block offsets are not compared (the
            # files lay out their tiles differently).
            self.assertEqual(ia, ib, n)
            # Every tile is there (edge tiles too).
            for ty in range(0, ds.RasterYSize, bs):
                for tx in range(0, ds.RasterXSize, bs):
                    off = band.GetMetadataItem("BLOCK_OFFSET_%d_%d"
                                               % (tx // bs, ty // bs), "TIFF")
                    self.assertTrue(off and int(off) > 0, (n, tx, ty))
            # Each file was made by the writer it is meant to test.
            line = "%s: tiles compressed by aralwatch's threads" % a
            mine = own_types is None or dt in own_types
            self.assertEqual(self.logs[own].count(line), 1 if mine else 0, n)
            self.assertNotIn("tiles compressed by", self.logs[ref], n)
            if outputs["cog"]:
                self.assertEqual(st.get("LAYOUT"), "COG", n)
                self.assertEqual(awtest.cog_errors(a), [], n)
                if mine:
                    self.check_cog_layout(a, band)
        # The manifest's checksums are those of the files as left.
        with open(os.path.join(own, "manifest.json")) as f:
            m = json.load(f)
        listed = {o["file"]: o for o in m["outputs"]}
        for n in names:
            with open(os.path.join(own, n), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                                 listed[n]["sha256"], n)
        return own

    def check_cog_layout(self, path, band):
        """The layout GDAL's COG driver writes and its header announces:
        every tile of a smaller overview before those of the next larger
        level, the full resolution last, in row order, each tile between
        its size (uint32, little endian) and its last 4 bytes again."""
        with open(path, "rb") as f:
            data = f.read()
        head = data[:400].decode("latin-1")
        for item in ("LAYOUT=IFDS_BEFORE_DATA", "BLOCK_ORDER=ROW_MAJOR",
                     "BLOCK_LEADER=SIZE_AS_UINT4",
                     "BLOCK_TRAILER=LAST_4_BYTES_REPEATED",
                     "KNOWN_INCOMPATIBLE_EDITION=NO"):
            self.assertIn(item, head, path)
        levels = [band.GetOverview(k)
                  for k in reversed(range(band.GetOverviewCount()))] + [band]
        end = 0
        for b in levels:
            bx, by = b.GetBlockSize()
            for ty in range((b.YSize + by - 1) // by):
                for tx in range((b.XSize + bx - 1) // bx):
                    off = int(b.GetMetadataItem("BLOCK_OFFSET_%d_%d"
                                                % (tx, ty), "TIFF"))
                    size = int(b.GetMetadataItem("BLOCK_SIZE_%d_%d"
                                                 % (tx, ty), "TIFF"))
                    # Right after the previous tile's trailer (the first
                    # one after the directories).
                    if end:
                        self.assertEqual(off, end + 4, (path, tx, ty))
                    self.assertEqual(struct.unpack("<I",
                                                   data[off - 4:off])[0],
                                     size, (path, tx, ty))
                    self.assertEqual(data[off + size:off + size + 4],
                                     data[off + size - 4:off + size],
                                     (path, tx, ty))
                    end = off + size + 4
        self.assertEqual(end, len(data), path)

    def test_float32_tiles_of_64(self):
        # Strips of 150 rows: rows of tiles whole in a strip (read where
        # they are) and split between strips (gathered), in turn.
        self.check({"encoding": "float32", "compress": "deflate", "cog": False,
                    "blocksize": 64},
                   {"Float32": "3", "Byte": "2"}, rows=150)

    def test_int16_tiles_of_48(self):
        self.check({"encoding": "int16", "compress": "deflate", "cog": False,
                    "blocksize": 48},
                   {"Int16": "2", "Byte": "2"})

    def test_cog_float32_tiles_of_128(self):
        # Strips of 300 rows, as above.
        self.check({"encoding": "float32", "compress": "deflate", "cog": True,
                    "blocksize": 128},
                   {"Float32": "3", "Byte": "2"}, rows=300)

    def test_cog_int16_tiles_of_128(self):
        # GDAL averages int16 in float32 and rounds half away from zero.
        self.check({"encoding": "int16", "compress": "deflate", "cog": True,
                    "blocksize": 128},
                   {"Int16": "2", "Byte": "2"})

    def test_compression_levels_are_gdals_zlevels(self):
        # outputs.level is GDAL's ZLEVEL (the COG driver's LEVEL): each
        # tile as large as GDAL's at that level, and a higher level makes
        # smaller files.
        total = {}
        for level in (1, 6, 9):
            for cog in (False, True):
                outputs = {"encoding": "float32", "compress": "deflate",
                           "cog": cog, "blocksize": 128, "level": level}
                own = self.check(outputs, {"Float32": "3", "Byte": "2"})
                if not cog:
                    total[level] = sum(tile_sizes(os.path.join(own,
                                                               "ndwi.tif")))
                    self.assertIn("(DEFLATE level %d, predictor 3)" % level,
                                  self.logs[own])
        self.assertLess(total[9], total[1] * 0.995, total)

    def test_zstd_float32_tiles_of_64(self):
        self.check({"encoding": "float32", "compress": "zstd", "cog": False,
                    "blocksize": 64},
                   {"Float32": "3", "Byte": "2"})

    def test_cog_zstd_int16_tiles_of_128(self):
        self.check({"encoding": "int16", "compress": "zstd", "cog": True,
                    "blocksize": 128, "level": 3},
                   {"Int16": "2", "Byte": "2"})

    def test_zstd_levels_are_gdals_zstd_levels(self):
        # outputs.level is GDAL's ZSTD_LEVEL (the COG driver's LEVEL), 1
        # when none is given (GDAL's would be 9). Reference: GDAL writing
        # the same pixels with that option, tile for tile the same size.
        for cog in (False, True):
            sizes = {}
            for level in (None, 1, 15):
                outputs = {"encoding": "float32", "compress": "zstd",
                           "cog": cog, "blocksize": 128}
                if level:
                    outputs["level"] = level
                own = self.check(outputs, {"Float32": "3", "Byte": "2"})
                self.assertIn("(ZSTD level %d, predictor 3" % (level or 1),
                              self.logs[own])
                own = os.path.join(own, "ndwi.tif")
                level = level or 1
                ref = os.path.join(self.tmp, "ref-%s.tif" % tag(outputs))
                if cog:
                    # The overviews are the output's own (OVERVIEWS=AUTO
                    # takes them).
                    co = ["BLOCKSIZE=128", "COMPRESS=ZSTD", "PREDICTOR=YES",
                          "LEVEL=%d" % level]
                    gdal.Translate(ref, own, format="COG", creationOptions=co)
                else:
                    co = ["TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128",
                          "COMPRESS=ZSTD", "PREDICTOR=3",
                          "ZSTD_LEVEL=%d" % level]
                    gdal.Translate(ref, own, creationOptions=co)
                a, b = tile_sizes(own), tile_sizes(ref)
                self.assertEqual(a, b, (cog, level))
                sizes[level] = sum(a)
            self.assertLess(sizes[15], sizes[1], (cog, sizes))

    def check_gdal_made(self, outputs, bbox=None, levels=None):
        """COGs the own encoder must leave to GDAL: no raster says it was
        encoded by aralwatch, and each is GDAL's (AW_GDAL_ENCODE=1) at
        every level, and a valid COG."""
        own = self.produce(outputs, False, bbox=bbox)
        ref = self.produce(outputs, True, bbox=bbox)
        names = sorted(n for n in os.listdir(ref) if n.endswith(".tif"))
        self.assertGreaterEqual(len(names), 10)
        for n in names:
            a, b = gdal.Open(os.path.join(own, n)), gdal.Open(os.path.join(ref, n))
            ba, bb = a.GetRasterBand(1), b.GetRasterBand(1)
            if levels is not None:
                self.assertEqual(ba.GetOverviewCount(), levels, n)
            self.assertEqual(ba.GetOverviewCount(), bb.GetOverviewCount(), n)
            for k in range(-1, ba.GetOverviewCount()):
                x = (ba if k < 0 else ba.GetOverview(k)).ReadAsArray()
                y = (bb if k < 0 else bb.GetOverview(k)).ReadAsArray()
                self.assertTrue(np.array_equal(x, y, equal_nan=True), (n, k))
            self.assertEqual(awtest.cog_errors(os.path.join(own, n)), [], n)
        self.assertNotIn("tiles compressed by", self.logs[own])
        return own

    def test_cog_with_blocks_under_128_is_gdals(self):
        # The COG driver's minimum block size.
        self.check_gdal_made({"encoding": "float32", "compress": "deflate",
                              "cog": True, "blocksize": 64})

    def test_cog_of_a_grid_two_pixels_wide_is_gdals(self):
        # 2 x 301 pixels, blocks of 128: overviews of 1 x 151 and 1 x 76.
        # GDAL makes the second from the full resolution, not by
        # cascading; the own encoder would cascade.
        x0, y1 = 619515.0 + 30 * 100, -410355.0
        own = self.check_gdal_made(
            {"encoding": "float32", "compress": "deflate", "cog": True,
             "blocksize": 128},
            bbox=(x0, y1 - 30 * 301, x0 + 60, y1), levels=2)
        ds = gdal.Open(os.path.join(own, "ndwi.tif"))
        self.assertEqual((ds.RasterXSize, ds.RasterYSize), (2, 301))

    def test_a_tile_that_fails_to_compress_fails_the_date(self):
        # ZSTD level 22 takes some 700 MB a thread: under a 900 MB limit
        # of address space every tile's compression fails. GDAL's writer
        # fails on its worker threads, where the closing thread sees no
        # error: the date was published with empty rasters (all nodata,
        # exit 10). Both writers must fail the date, naming the file.
        with open(awtest.BIN, "rb") as f:
            exe = f.read()
        if b"__asan_init" in exe or b"libasan.so" in exe:
            self.skipTest("an ASan build reserves terabytes of address "
                          "space: no limit can be set")

        def limit():
            resource.setrlimit(resource.RLIMIT_AS,
                               (900 * 1024 * 1024, 900 * 1024 * 1024))
        outputs = {"encoding": "float32", "compress": "zstd", "cog": False,
                   "blocksize": 64, "level": 22}
        for gdal_encode, why in (
                (True, r"ndwi\.tif: tile 0 of level 0 was not written: "
                       r"GDAL's last error, on one of its threads: [^\n]*"
                       r"compress"),
                (False, r"ndwi\.tif: cannot compress a tile \(ZSTD level "
                        r"22\): [^\n]*memory")):
            env = dict(os.environ)
            env.pop("AW_GDAL_ENCODE", None)
            if gdal_encode:
                env["AW_GDAL_ENCODE"] = "1"
            out = os.path.join(self.tmp, "z22-%d" % gdal_encode)
            rc, _, err = run(["run", "--config", config(self.tmp, outputs),
                              "--out", out, "-q"], env=env, preexec_fn=limit)
            self.assertEqual(rc, 5, err)
            self.assertRegex(err, why)
            region = os.path.join(out, "para_reservoir")
            self.assertEqual([n for n in os.listdir(region)
                              if n.startswith("1988") or ".partial-" in n],
                             [])

    def test_a_full_disk_fails_a_cog_date_with_the_file_named(self):
        disk = self.small_disk("700k")
        cfg = config(self.tmp, {"encoding": "float32", "compress": "deflate",
                                "cog": True, "blocksize": 128})
        rc, _, err = run(["run", "--config", cfg, "--out", disk, "-q"])
        self.assertEqual(rc, 5, err)
        self.assertRegex(err, r"\.tif(\.tiles)?: cannot (write|create)"
                              r"[^\n]*: No space left on device")
        region = os.path.join(disk, "para_reservoir")
        self.assertFalse(os.path.exists(os.path.join(region, DATE)))
        self.assertEqual([n for n in os.listdir(region) if ".partial-" in n],
                         [])

    def test_a_full_disk_fails_the_date_with_the_file_named(self):
        # A 700 KiB tmpfs: room for the catalog and the first rasters, not
        # for all of them.
        disk = self.small_disk("700k")
        cfg = config(self.tmp, {"encoding": "float32", "compress": "deflate",
                                "cog": False, "blocksize": 64})
        rc, _, err = run(["run", "--config", cfg, "--out", disk, "-q"])
        self.assertEqual(rc, 5, err)
        # The failing write names its raster, from the tile encoder.
        self.assertRegex(err, r"\.tif: (cannot write tile [0-9]+|cannot "
                              r"write its directory): No space left on "
                              r"device")
        region = os.path.join(disk, "para_reservoir")
        self.assertFalse(os.path.exists(os.path.join(region, DATE)))
        self.assertEqual([n for n in os.listdir(region) if ".partial-" in n],
                         [])


if __name__ == "__main__":
    import unittest
    unittest.main()

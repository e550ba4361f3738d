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


def tiled_l5_scene(tmp):
    """The Landsat 5 sample with its bands in 256-pixel DEFLATE tiles
    (predictor 2), which aralwatch's reader decodes; returns the folder."""
    import shutil
    scene = os.path.join(tmp, "scene")
    os.mkdir(scene)
    src = os.path.join(SR, "landsat5_para")
    for f in os.listdir(src):
        if f.endswith(".TIF"):
            gdal.Translate(os.path.join(scene, f), os.path.join(src, f),
                           creationOptions=["TILED=YES", "COMPRESS=DEFLATE",
                                            "PREDICTOR=2"])
        else:
            shutil.copy(os.path.join(src, f), scene)
    return scene


def l5_config(tmp, scene, region, indices):
    """A config of the tiled sample scene, region given as YAML."""
    cfg = os.path.join(tmp, "c.yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nregion: %s\nscenes:\n"
                "  - {id: L5, date: 1988-08-14, path: %s, nodata: 255,\n"
                "     bands: {green: LT52240631988227CUB02_B2.TIF,"
                " nir: LT52240631988227CUB02_B4.TIF,"
                " swir1: LT52240631988227CUB02_B5.TIF,"
                " red: LT52240631988227CUB02_B3.TIF}}\n"
                "indices: %s\n" % (region, scene, indices))
    return cfg


def run_both_readers(tmp, cfg, **env_extra):
    """The config run with aralwatch's reader, then with GDAL decoding
    every input: [(gdal_decode, rc, stderr, out folder)]."""
    runs = []
    for gdal_decode in (False, True):
        env = dict(os.environ, **env_extra)
        env.pop("AW_GDAL_DECODE", None)
        if gdal_decode:
            env["AW_GDAL_DECODE"] = "1"
        out = os.path.join(tmp, "out%d" % gdal_decode)
        rc, _, err = run(["run", "--config", cfg, "--out", out, "--verbose"],
                         env=env)
        runs.append((gdal_decode, rc, err, out))
    return runs


class DamagedTile(awtest.TempDirTest):
    def test_a_tile_the_region_ends_inside_is_checked(self):
        # The Landsat 5 sample in 256-pixel DEFLATE tiles, one byte of
        # B4's first tile changed where the stream still inflates (only
        # its adler32 at the end tells). The region (scene rows 10-109)
        # ends inside that row of tiles, so no window reaches the end of
        # the stream: the pixels were used, exit 0. GDAL refuses the tile.
        import zlib
        scene = tiled_l5_scene(self.tmp)
        b4 = os.path.join(scene, "LT52240631988227CUB02_B4.TIF")
        ds = gdal.Open(b4)
        band = ds.GetRasterBand(1)
        off = int(band.GetMetadataItem("BLOCK_OFFSET_0_0", "TIFF"))
        size = int(band.GetMetadataItem("BLOCK_SIZE_0_0", "TIFF"))
        gt = ds.GetGeoTransform()  # 30 m, EPSG:32622
        band = ds = None
        with open(b4, "rb") as f:
            f.seek(off)
            tile = bytearray(f.read(size))
        # The first byte, from an eighth of the stream on, whose change
        # leaves a stream that inflates whole with a wrong checksum.
        for at in range(size // 8, size // 3):
            bad = bytearray(tile)
            bad[at] ^= 0x10
            try:
                zlib.decompress(bytes(bad))
            except zlib.error as e:
                if "incorrect data check" in str(e):
                    break
        else:
            self.fail("no such byte")
        with open(b4, "r+b") as f:
            f.seek(off)
            f.write(bad)
        x0, y0 = gt[0], gt[3]
        cfg = l5_config(self.tmp, scene,
                        "{name: d, crs: 'EPSG:32622', resolution: 30, "
                        "bbox_crs: 'EPSG:32622', bbox: [%r, %r, %r, %r]}"
                        % (x0 + 300, y0 - 3300, x0 + 6300, y0 - 300), "[ndvi]")
        for gdal_decode, rc, err, out in run_both_readers(self.tmp, cfg):
            self.assertEqual(rc, 4, err)
            self.assertFalse(os.path.exists(os.path.join(out, "d", "1988-08-14")))
            if not gdal_decode:
                self.assertIn("B4.TIF: tiles decoded by aralwatch's threads", err)
                self.assertIn("B4.TIF: tile 0: checksum (adler32) does not match",
                              err)


def stop_last_row_at_image_end(path):
    """Re-compress the last row of tiles of a tiled little-endian DEFLATE
    GeoTIFF with only the rows inside the image, appended, and patch the
    tile offsets and byte counts: a legal file GDAL reads as before."""
    import struct
    import zlib
    with open(path, "r+b") as f:
        d = f.read()
        assert d[:4] == b"II*\0"
        ifd = struct.unpack("<I", d[4:8])[0]
        tags = {}
        for i in range(struct.unpack("<H", d[ifd:ifd + 2])[0]):
            e = ifd + 2 + 12 * i
            tag, typ, cnt, val = struct.unpack("<HHII", d[e:e + 12])
            tags[tag] = (typ, cnt, val, e + 8)

        def arr(tag):
            typ, cnt, val, vpos = tags[tag]
            sz, fmt = {3: (2, "H"), 4: (4, "I")}[typ]
            pos = val if cnt * sz > 4 else vpos
            return pos, fmt, list(struct.unpack("<%d%s" % (cnt, fmt),
                                                d[pos:pos + cnt * sz]))
        w, h = tags[256][2], tags[257][2]
        tw, th, bps = tags[322][2], tags[323][2], tags[258][2] // 8
        opos, ofmt, offs = arr(324)
        cpos, cfmt, cnts = arr(325)
        nx, ny = (w + tw - 1) // tw, (h + th - 1) // th
        keep = h - (ny - 1) * th
        f.seek(0, 2)
        for tc in range(nx):
            i = (ny - 1) * nx + tc
            raw = zlib.decompress(d[offs[i]:offs[i] + cnts[i]])
            new = zlib.compress(raw[:keep * tw * bps], 6)
            offs[i], cnts[i] = f.tell(), len(new)
            f.write(new)
        f.seek(opos)
        f.write(struct.pack("<%d%s" % (len(offs), ofmt), *offs))
        f.seek(cpos)
        f.write(struct.pack("<%d%s" % (len(cnts), cfmt), *cnts))
    return keep


class ShortLastTile(awtest.TempDirTest):
    def test_a_last_row_of_tiles_ending_at_the_image_is_read(self):
        # The image's last row of tiles is checked to its end (its
        # checksum); a writer may stop those streams at the image's last
        # row, and GDAL reads them: so must aralwatch, with the same
        # pixels (it failed such a scene: "DEFLATE stream ends early").
        scene = tiled_l5_scene(self.tmp)
        for f in os.listdir(scene):
            if f.endswith(".TIF"):
                # 310 rows in 256-row tiles: 54 rows kept in the last row
                self.assertEqual(stop_last_row_at_image_end(
                    os.path.join(scene, f)), 54)
        cfg = l5_config(self.tmp, scene, "{name: s}", "[ndvi, mndwi]")
        outs = []
        for gdal_decode, rc, err, out in run_both_readers(self.tmp, cfg,
                                                          AW_STRIP_ROWS="50"):
            self.assertEqual(rc, 0, err)
            if not gdal_decode:
                self.assertIn("B4.TIF: tiles decoded by aralwatch's threads", err)
            outs.append(os.path.join(out, "s", "1988-08-14"))
        for name in ("ndvi.tif", "mndwi.tif", "valid.tif"):
            a = gdal.Open(os.path.join(outs[0], name)).ReadAsArray()
            b = gdal.Open(os.path.join(outs[1], name)).ReadAsArray()
            np.testing.assert_array_equal(a, b)


if __name__ == "__main__":
    awtest.main()

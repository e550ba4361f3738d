#!/usr/bin/python3
"""DEFLATE and ZSTD levels on real scenes: what outputs.compress and
outputs.level trade.

For index rasters (float32, predictor 3) and a water class raster (byte,
predictor 2) made from the real scenes in sample_rasters/, in 256-pixel
tiles (aralwatch's default), this compresses every tile's predicted bytes
with libdeflate at the level libtiff uses for each GDAL ZLEVEL, and with
libzstd at ZSTD levels 1 (aralwatch's default), 3 and 9 (GDAL's), as
aralwatch's tile encoder does (pipeline/tilewrite.c), and reports the size
and the CPU time of each relative to DEFLATE at GDAL's default (ZLEVEL 6,
libdeflate 7). The predicted bytes are GDAL's own: the rasters are
written by GDAL and the tiles read back raw and inflated.

    /usr/bin/python3 bench/levels.py          (Debian's python3: osgeo)

Prints a Markdown table; about 30 s on 2 cores. The scenes are small
(0.3 to 1.2 Mpx), so each is compressed several times for the timing."""
import ctypes
import ctypes.util
import os
import sys
import time
import zlib

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "sample_rasters")
TILE = 256
ZLEVELS = (1, 3, 6, 9)
DEFAULT = 6
ZSTD_LEVELS = (1, 3, 9)  # 9: GDAL's ZSTD_LEVEL default


def libdeflate_level(z):
    """libtiff's mapping (tif_zip.c), as pipeline/tilewrite.c has it."""
    return z + 1 if 6 <= z <= 9 else z


class Deflate:
    def __init__(self):
        name = ctypes.util.find_library("deflate") or "libdeflate.so.0"
        lib = ctypes.CDLL(name)
        lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
        lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
        lib.libdeflate_zlib_compress.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.c_void_p, ctypes.c_size_t]
        self.lib = lib

    def run(self, tiles, level, repeats):
        """(compressed bytes, CPU seconds per pass)."""
        c = self.lib.libdeflate_alloc_compressor(level)
        out = ctypes.create_string_buffer(2 * max(map(len, tiles)) + 4096)
        total, t0 = 0, time.process_time()
        for _ in range(repeats):
            total = 0
            for t in tiles:
                n = self.lib.libdeflate_zlib_compress(c, t, len(t), out,
                                                      len(out))
                if n == 0:
                    raise SystemExit("levels.py: libdeflate failed")
                total += n
        dt = (time.process_time() - t0) / repeats
        self.lib.libdeflate_free_compressor(c)
        return total, dt


class Zstd:
    """libzstd driven as libtiff's ZSTD codec and aralwatch's encoder drive
    it (tif_zstd.c, pipeline/tilewrite.c): a stream started at the level
    with no size given, the whole tile, its end; one frame per tile. (A
    one-shot ZSTD_compressCCtx knows the size and picks other parameters:
    it would not measure what the files are.)"""

    class InBuf(ctypes.Structure):
        _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t),
                    ("pos", ctypes.c_size_t)]

    class OutBuf(ctypes.Structure):
        _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t),
                    ("pos", ctypes.c_size_t)]

    def __init__(self):
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        lib = ctypes.CDLL(name)
        lib.ZSTD_createCStream.restype = ctypes.c_void_p
        lib.ZSTD_freeCStream.argtypes = [ctypes.c_void_p]
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_initCStream.restype = ctypes.c_size_t
        lib.ZSTD_initCStream.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.ZSTD_compressStream.restype = ctypes.c_size_t
        lib.ZSTD_compressStream.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(self.OutBuf),
            ctypes.POINTER(self.InBuf)]
        lib.ZSTD_endStream.restype = ctypes.c_size_t
        lib.ZSTD_endStream.argtypes = [ctypes.c_void_p,
                                       ctypes.POINTER(self.OutBuf)]
        self.lib = lib

    def run(self, tiles, level, repeats):
        """(compressed bytes, CPU seconds per pass)."""
        lib = self.lib
        c = lib.ZSTD_createCStream()
        cap = lib.ZSTD_compressBound(max(map(len, tiles)))
        out = ctypes.create_string_buffer(cap)
        bufs = [ctypes.create_string_buffer(t, len(t)) for t in tiles]
        total, t0 = 0, time.process_time()
        for _ in range(repeats):
            total = 0
            for b in bufs:
                ib = self.InBuf(ctypes.addressof(b), len(b), 0)
                ob = self.OutBuf(ctypes.addressof(out), cap, 0)
                if lib.ZSTD_isError(lib.ZSTD_initCStream(c, level)):
                    raise SystemExit("levels.py: libzstd failed")
                while ib.pos < ib.size:
                    if lib.ZSTD_isError(lib.ZSTD_compressStream(
                            c, ctypes.byref(ob), ctypes.byref(ib))):
                        raise SystemExit("levels.py: libzstd failed")
                left = lib.ZSTD_endStream(c, ctypes.byref(ob))
                if lib.ZSTD_isError(left) or left != 0:
                    raise SystemExit("levels.py: libzstd failed")
                total += ob.pos
        dt = (time.process_time() - t0) / repeats
        lib.ZSTD_freeCStream(c)
        return total, dt


def read(path, size=None, scale=1.0, offset=0.0):
    """Reflectance (DN * scale + offset; DN 0 stays 0, nodata)."""
    ds = gdal.Open(path)
    if size and (ds.RasterXSize, ds.RasterYSize) != size:
        ds = gdal.Warp("", ds, format="MEM", width=size[0], height=size[1],
                       resampleAlg="near")
    dn = ds.GetRasterBand(1).ReadAsArray().astype(np.float32)
    return np.where(dn > 0, dn * np.float32(scale) + np.float32(offset),
                    0).astype(np.float32)


def scenes():
    """name, green, swir1, red, nir: reflectance as aralwatch computes it
    (configs/sample.yaml's scale and offset for the Landsat 5 scene)."""
    s2 = os.path.join(SAMPLE, "S2A_29RKH_20200219_0_L2A")
    g = gdal.Open(os.path.join(s2, "B03.tif"))
    size = (g.RasterXSize, g.RasterYSize)
    # Processing baseline 02.14: no offset.
    yield ("Sentinel-2 29RKH (desert, clouds)",
           read(os.path.join(s2, "B03.tif"), None, 1e-4),
           read(os.path.join(s2, "B11.tif"), size, 1e-4),
           read(os.path.join(s2, "B04.tif"), None, 1e-4),
           read(os.path.join(s2, "B08.tif"), None, 1e-4))
    l8 = os.path.join(SAMPLE, "landsat8_c2l2")
    pre = "LC08_L2SP_008059_20191201_20200825_02_T1_SR_"
    yield ("Landsat 8 C2 L2 (Colombia, rivers)",
           *(read(os.path.join(l8, pre + b + ".TIF"), None, 2.75e-5, -0.2)
             for b in ("B3", "B6", "B4", "B5")))
    l5 = os.path.join(SAMPLE, "landsat5_para")
    pre = "LT52240631988227CUB02_"
    cal = {"B2": (0.00310791223, -0.00978498659),
           "B5": (0.00230304375, -0.00941081251),
           "B3": (0.00286980842, -0.00608591805),
           "B4": (0.00358747649, -0.00977145051)}
    yield ("Landsat 5 TM (Para reservoir)",
           *(read(os.path.join(l5, pre + b + ".TIF"), None, *cal[b])
             for b in ("B2", "B5", "B3", "B4")))


def predicted_tiles(arr, pred):
    """Every tile's bytes after GDAL's predictor, via a GDAL-written
    DEFLATE GeoTIFF whose tiles are read back raw and inflated."""
    path = "/vsimem/levels.tif"
    t = gdal.GDT_Float32 if arr.dtype == np.float32 else gdal.GDT_Byte
    ds = gdal.GetDriverByName("GTiff").Create(
        path, arr.shape[1], arr.shape[0], 1, t,
        ["TILED=YES", f"BLOCKXSIZE={TILE}", f"BLOCKYSIZE={TILE}",
         "COMPRESS=DEFLATE", f"PREDICTOR={pred}"])
    ds.GetRasterBand(1).WriteArray(arr)
    ds = None
    ds = gdal.Open(path)
    b = ds.GetRasterBand(1)
    f = gdal.VSIFOpenL(path, "rb")
    tiles = []
    for ty in range((ds.RasterYSize + TILE - 1) // TILE):
        for tx in range((ds.RasterXSize + TILE - 1) // TILE):
            off = int(b.GetMetadataItem(f"BLOCK_OFFSET_{tx}_{ty}", "TIFF"))
            n = int(b.GetMetadataItem(f"BLOCK_SIZE_{tx}_{ty}", "TIFF"))
            gdal.VSIFSeekL(f, off, 0)
            tiles.append(zlib.decompress(gdal.VSIFReadL(1, n, f)))
    gdal.VSIFCloseL(f)
    gdal.Unlink(path)
    return tiles


def main():
    d = Deflate()
    zs = Zstd()
    rows = []
    for name, green, swir, red, nir in scenes():
        with np.errstate(all="ignore"):
            valid = (green > 0) & (swir > 0) & (red > 0) & (nir > 0)
            mndwi = ((green - swir) / (green + swir)).astype(np.float32)
            ndvi = ((nir - red) / (nir + red)).astype(np.float32)
        mndwi[~valid] = np.nan
        ndvi[~valid] = np.nan
        water = np.where(valid, (mndwi > 0).astype(np.uint8), 255)
        for what, arr, pred in (("MNDWI float32", mndwi, 3),
                                ("NDVI float32", ndvi, 3),
                                ("water class byte", water.astype(np.uint8),
                                 2)):
            tiles = predicted_tiles(arr, pred)
            raw = sum(map(len, tiles))
            repeats = max(3, int(40e6 / raw))
            res = {z: d.run(tiles, libdeflate_level(z), repeats)
                   for z in ZLEVELS}
            base_n, base_t = res[DEFAULT]
            zres = [zs.run(tiles, z, repeats) for z in ZSTD_LEVELS]
            rows.append((name, what, arr.shape, raw / base_n,
                         [(res[z][0] / base_n, res[z][1] / base_t)
                          for z in ZLEVELS]
                         + [(n / base_n, t / base_t) for n, t in zres]))
            print(f"levels.py: {name}, {what} done", file=sys.stderr)
    heads = ([f"DEFLATE {z}" for z in ZLEVELS]
             + [f"ZSTD {z}" for z in ZSTD_LEVELS])
    print("| scene | raster | pixels | ratio at DEFLATE 6 | "
          + " | ".join(f"{h}: size, CPU" for h in heads) + " |")
    print("|---|---|---|---|" + "---|" * len(heads))
    for name, what, shape, ratio, cells in rows:
        print(f"| {name} | {what} | {shape[1]} × {shape[0]} | {ratio:.1f} | "
              + " | ".join(f"{s:.3f}, {t:.2f}" for s, t in cells) + " |")
    print("\nsize and CPU relative to DEFLATE level 6 (GDAL's default); CPU "
          "is libdeflate's or libzstd's, compressing the predicted tiles "
          "(the same bytes for both); ratio: raw bytes / compressed at "
          "DEFLATE level 6")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Generate a reproducible Sentinel-2-L2A-like scene for the benchmark.

One folder of cloud-archive style GeoTIFFs on one grid:

    B02.tif B03.tif B04.tif B08.tif B11.tif B12.tif   uint16 DN, nodata 0
    SCL.tif                                           uint8 scene classes
    zones.geojson                                     lake and field polygons

DN follow the processing baseline >= 04.00 convention:
reflectance = (DN - 1000) / 10000, i.e. scale 1e-4, offset -0.1; DN 0 is
nodata (a swath-edge corner of the tile). SCL classes: 0 nodata, 3 cloud
shadow, 4 vegetation, 5 bare soil, 6 water, 8 cloud medium probability,
9 cloud high probability, 10 thin cirrus.

The grid has the size and alignment of a Sentinel-2 MGRS tile, placed over
the former Aral Sea (EPSG:32641, UTM 41N, about 60.4-61.8 E, 44.1-45.1 N):
109 800 m square, 5490 px of 20 m or 10980 px of 10 m. Every feature is a function of the map coordinates, so
both sizes show the same landscape.

Structure: a shrunken lake with a turbid margin, smaller lakes and ponds,
a meandering river with an irrigation canal, a patchwork of irrigated
fields (each field its own vigour), bare soil and salt flats, cumulus
clouds with thin cirrus edges and their shadows offset by the sun
geometry, and sensor noise. Everything comes from one seeded RNG; the
pixel noise of a row chunk comes from a generator seeded by (seed, first
row, size), so the chunks can be computed in parallel worker processes and
the pixels depend only on the seed, the size and the tile size. The files
are identical from run to run with the same GDAL and NumPy (the stamp
records both).

Written in row chunks of one tile height (1024 by default), as tiled
DEFLATE GeoTIFFs with predictor 2 (as the AWS Sentinel-2 COGs are).
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

EPSG = 32641
X0, Y0 = 300000.0, 5000040.0      # upper-left corner (UTM 41N, ~60.4 E 45.1 N)
EXTENT = 109800.0                 # metres
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
NOISE_ROWS, NOISE_COLS = 1024, 4099  # noise bank (cols: a prime)
COARSE = 1025                     # control grid for smooth fields (cells)

# Surface reflectance spectra, in the order of BANDS.
WATER_CLEAR = np.array([0.055, 0.070, 0.045, 0.025, 0.010, 0.006])
WATER_TURBID = np.array([0.090, 0.120, 0.110, 0.060, 0.020, 0.012])
VEG_LOW = np.array([0.070, 0.100, 0.140, 0.220, 0.280, 0.220])   # sparse
VEG_HIGH = np.array([0.030, 0.070, 0.035, 0.460, 0.200, 0.100])  # dense
SOIL = np.array([0.120, 0.170, 0.230, 0.290, 0.360, 0.310])
SALT = np.array([0.400, 0.440, 0.470, 0.480, 0.420, 0.360])
CLOUD = np.array([0.520, 0.530, 0.540, 0.560, 0.330, 0.220])
CIRRUS = np.array([0.080, 0.075, 0.070, 0.075, 0.060, 0.040])   # additive


def bilinear(grid, ys, xs):
    """Sample a (G, G) grid spanning [0, 1]^2 at fractional coordinates
    ys (rows, 1-D) x xs (cols, 1-D); returns float32 (len(ys), len(xs))."""
    g = grid.shape[0] - 1
    fy = np.clip(ys, 0.0, 1.0) * g
    fx = np.clip(xs, 0.0, 1.0) * g
    iy = np.minimum(fy.astype(np.int64), g - 1)
    ix = np.minimum(fx.astype(np.int64), g - 1)
    wy = (fy - iy).astype(np.float32)[:, None]
    wx = (fx - ix).astype(np.float32)[None, :]
    lines = grid[iy] * (1 - wy) + grid[iy + 1] * wy     # (rows, G), small
    out = lines[:, ix]
    out *= 1 - wx
    out += lines[:, ix + 1] * wx
    return out


def fractal(rng, octaves, persistence=0.55):
    """Multi-octave value noise on the COARSE control grid, in ~[-1, 1]."""
    lin = np.linspace(0.0, 1.0, COARSE)
    out = np.zeros((COARSE, COARSE), np.float32)
    amp, total = 1.0, 0.0
    for cells in octaves:
        g = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
        out += amp * bilinear(g, lin, lin)
        total += amp
        amp *= persistence
    out /= total * 0.6
    return out


class Landscape:
    """Every map-space field the scene is made of, built from one seed."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.seed = seed
        # Smooth fields on the control grid.
        self.lake_noise = fractal(rng, [4, 8, 16, 32, 64, 128])
        self.pond_noise = fractal(rng, [24, 48, 96, 192])
        self.turbidity = fractal(rng, [6, 12, 24])
        self.soil_noise = fractal(rng, [8, 16, 32, 64, 128, 256])
        self.irrig_noise = fractal(rng, [3, 6, 12])
        self.cloud_noise = fractal(rng, [6, 12, 24, 48, 96, 192], 0.6)
        self.cirrus_noise = fractal(rng, [3, 6, 12, 24], 0.5)
        self.warp_x = fractal(rng, [10, 20])
        self.warp_y = fractal(rng, [10, 20])
        # Field parcels: ~ 400 m x 250 m, 10 % of them fallow.
        self.field_w, self.field_h = 420.0, 260.0
        vig = rng.random((int(EXTENT / self.field_h) + 5,
                          int(EXTENT / self.field_w) + 5)).astype(np.float32)
        self.vigour = np.where(vig < 0.12, vig * 0.6, 0.15 + 0.85 * vig)
        # Sensor noise bank (per band, N(0, 1)): a chunk takes a randomly
        # shifted window of it, which is much cheaper than fresh normals.
        self.noise = rng.standard_normal((6, NOISE_ROWS, NOISE_COLS),
                                         dtype=np.float32)
        # River: a meander across the scene, a canal branching off it.
        self.river_phase = rng.uniform(0, 2 * np.pi, 3)
        # Sun: shadows fall 1.2 km north-west of the cloud (map metres).
        self.shadow_dx, self.shadow_dy = -900.0, 800.0

    def fields(self, ys, xs):
        """Parcel vigour in [0, 1] (fallow parcels get < 0.1) per pixel,
        and the parcel-boundary mask."""
        f32 = np.float32
        mx = bilinear(self.warp_x, ys, xs)
        mx *= f32(60.0 / self.field_w)
        mx += (xs * f32(EXTENT / self.field_w))[None, :]
        my = bilinear(self.warp_y, ys, xs)
        my *= f32(60.0 / self.field_h)
        my += (ys * f32(EXTENT / self.field_h))[:, None]
        col = np.floor(mx)
        row = np.floor(my)
        # Field boundaries (roads, dykes) are bare.
        mx -= col
        my -= row
        edge = (mx < 0.03) | (my < 0.05)
        ci = col.astype(np.int32) + 2
        ri = row.astype(np.int32) + 2
        vig = self.vigour[ri, ci]
        return vig, edge

    def river(self, ys, xs):
        """Distance-like river and canal masks (bool)."""
        x = xs[None, :]
        y = ys[:, None]
        p = self.river_phase
        cy = (0.62 + 0.06 * np.sin(2 * np.pi * 1.7 * x + p[0])
              + 0.025 * np.sin(2 * np.pi * 5.3 * x + p[1]))
        river = np.abs(y - cy) < 0.0022 + 0.0008 * np.sin(2 * np.pi * 9 * x + p[2])
        cx = 0.30 + 0.15 * y + 0.01 * np.sin(2 * np.pi * 4 * y)
        canal = (np.abs(x - cx) < 0.0006) & (y > 0.62)
        return river | canal

    def noise_rows(self, b, rows, n, rng):
        """(rows, n) N(0, 1) noise: the bank of band b, rolled by a random
        row and column offset, tiled across the width."""
        oy = int(rng.integers(NOISE_ROWS))
        ox = int(rng.integers(NOISE_COLS))
        ri = (np.arange(rows) + oy) % NOISE_ROWS
        cidx = (np.arange(n) + ox) % NOISE_COLS
        return self.noise[b][ri][:, cidx]

    def chunk(self, n, y0, rows, rng):
        """Bands (6, rows, n) uint16 and SCL (rows, n) uint8 for pixel rows
        y0 .. y0 + rows of an n x n grid."""
        f32 = np.float32
        ys = ((np.arange(y0, y0 + rows) + 0.5) / n).astype(f32)
        xs = ((np.arange(n) + 0.5) / n).astype(f32)

        # --- land cover ------------------------------------------------
        lake = bilinear(self.lake_noise, ys, xs)
        # A basin deepening towards the west and south: the residual lake.
        depth = lake * f32(0.35)
        depth += (f32(0.81) - f32(1.44) * xs)[None, :]
        depth += (f32(0.45) * ys)[:, None]
        water = depth > 0.55
        ponds = bilinear(self.pond_noise, ys, xs) > 1.35
        irrig = bilinear(self.irrig_noise, ys, xs)
        water |= ponds & (irrig > -0.2)
        water |= self.river(ys, xs)
        shore = (depth > 0.45) & ~water               # salt flats, old bed
        cropland = (irrig > 0.05) & ~water & ~shore
        del ponds, irrig
        vig, edge = self.fields(ys, xs)
        cropland &= ~edge
        del edge

        soil_b = bilinear(self.soil_noise, ys, xs)
        soil_b *= f32(0.18)
        soil_b += f32(1.0)                             # soil brightness
        turb = bilinear(self.turbidity, ys, xs)
        turb = f32(0.5) + f32(0.5) * turb
        # Turbid near the shore, clear offshore.
        turb += np.clip(f32(0.75) - depth, 0, 1) * f32(1.5)
        np.clip(turb, 0, 1, out=turb)
        salt_w = np.clip((depth - f32(0.45)) * f32(10.0), 0, 1)
        salt_w *= shore
        del depth, shore

        # --- clouds, cirrus, shadows -----------------------------------
        opacity = bilinear(self.cloud_noise, ys, xs)
        opacity -= f32(0.62)
        opacity *= f32(1 / 0.35)
        np.clip(opacity, 0, 1, out=opacity)
        sx = xs - f32(self.shadow_dx / EXTENT)
        sy = ys - f32(self.shadow_dy / EXTENT)
        shadow_op = bilinear(self.cloud_noise, sy, sx)
        shadow_op -= f32(0.62)
        shadow_op *= f32(1 / 0.35)
        np.clip(shadow_op, 0, 1, out=shadow_op)
        shadow_op *= opacity < 0.05
        cir = bilinear(self.cirrus_noise, ys, xs)
        cir -= f32(1.1)
        cir *= f32(1 / 0.6)
        np.clip(cir, 0, 1, out=cir)
        shade = f32(1) - f32(0.6) * shadow_op
        shade *= f32(1) - opacity                      # cloud-free share

        sigma = [0.004, 0.004, 0.004, 0.006, 0.004, 0.004]
        dn = np.empty((6, rows, n), np.uint16)
        for b in range(6):
            r = soil_b * f32(SOIL[b])
            r += (f32(SALT[b]) - r) * salt_w
            v = f32(VEG_LOW[b]) + f32(VEG_HIGH[b] - VEG_LOW[b]) * vig
            np.copyto(r, v, where=cropland)
            w = f32(WATER_CLEAR[b]) + f32(WATER_TURBID[b] - WATER_CLEAR[b]) * turb
            np.copyto(r, w, where=water)
            del v, w
            r *= shade
            r += f32(CIRRUS[b]) * cir * (f32(1) - opacity)
            r += f32(CLOUD[b]) * opacity
            # --- noise and DN ------------------------------------------
            r += self.noise_rows(b, rows, n, rng) * f32(sigma[b])
            r *= f32(10000.0)
            r += f32(1000.0)
            np.rint(r, out=r)
            # Keep green + SWIR1 > 0 in reflectance: real water pixels reach
            # slightly negative reflectance (DN < 1000), never both bands.
            np.clip(r, 1250 if b == 1 else 1, 65535, out=r)
            dn[b] = r
            del r

        # Swath edge: a no-data triangle in the south-west corner.
        px = np.arange(n, dtype=f32)[None, :]
        py = np.arange(y0, y0 + rows, dtype=f32)[:, None]
        nodata = (px + (f32(n - 1) - py) * f32(1.6)) < f32(n * 0.47)
        dn *= ~nodata

        # --- SCL ---------------------------------------------------------
        scl = np.full((rows, n), 5, np.uint8)
        scl[cropland & (vig > 0.3)] = 4
        scl[water] = 6
        scl[shadow_op > 0.3] = 3
        scl[cir > 0.35] = 10
        scl[opacity > 0.25] = 8
        scl[opacity > 0.6] = 9
        scl[nodata] = 0
        return dn, scl


_LAND = None


def _work(job):
    """Pool worker: one row chunk (seed, size, first row, rows)."""
    global _LAND
    seed, n, y0, rows = job
    if _LAND is None or _LAND.seed != seed:
        _LAND = Landscape(seed)
    # Per-chunk RNG seeded by (seed, first row, size): reproducible.
    rng = np.random.default_rng([seed, y0, n])
    return y0, _LAND.chunk(n, y0, rows, rng)


def create(path, n, gt, srs, dtype, tile, threads, nodata):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, n, n, 1, dtype,
                    ["TILED=YES", f"BLOCKXSIZE={tile}", f"BLOCKYSIZE={tile}",
                     "COMPRESS=DEFLATE", "PREDICTOR=2",
                     f"NUM_THREADS={threads}", "BIGTIFF=IF_SAFER"])
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).SetNoDataValue(nodata)
    return ds


def write_zones(path):
    """A few lake and field zones (polygons in the scene CRS)."""
    def rect(x0, y0, x1, y1):
        return [[[X0 + x0 * EXTENT, Y0 - y0 * EXTENT],
                 [X0 + x1 * EXTENT, Y0 - y0 * EXTENT],
                 [X0 + x1 * EXTENT, Y0 - y1 * EXTENT],
                 [X0 + x0 * EXTENT, Y0 - y1 * EXTENT],
                 [X0 + x0 * EXTENT, Y0 - y0 * EXTENT]]]

    def ngon(cx, cy, r, k=24):
        a = np.linspace(0, 2 * np.pi, k, endpoint=False)
        ring = [[X0 + (cx + r * np.cos(t)) * EXTENT,
                 Y0 - (cy + r * 0.8 * np.sin(t)) * EXTENT] for t in a]
        return [ring + [ring[0]]]

    zones = [
        ("west_basin", "Residual lake, western basin", "waterbody",
         ngon(0.18, 0.40, 0.14)),
        ("south_bay", "Southern bay", "waterbody", ngon(0.25, 0.80, 0.12)),
        ("river_reach", "River reach and canal head", "waterbody",
         rect(0.28, 0.55, 0.60, 0.70)),
        ("fields_east", "Irrigated fields, east", "cropland",
         rect(0.60, 0.10, 0.95, 0.45)),
        ("fields_north", "Irrigated fields, north", "cropland",
         rect(0.30, 0.05, 0.60, 0.30)),
        ("old_bed", "Former sea bed", "other", rect(0.45, 0.35, 0.70, 0.55)),
    ]
    feats = [{"type": "Feature",
              "properties": {"zone_id": z, "name": nm, "kind": kd},
              "geometry": {"type": "Polygon", "coordinates": g}}
             for z, nm, kd, g in zones]
    fc = {"type": "FeatureCollection", "name": "zones",
          "crs": {"type": "name",
                  "properties": {"name": f"urn:ogc:def:crs:EPSG::{EPSG}"}},
          "features": feats}
    with open(path, "w") as f:
        json.dump(fc, f, indent=1)


def generator_hash(args):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(f"size={args.size} seed={args.seed} tile={args.tile}".encode())
    h.update(f"gdal={gdal.__version__} numpy={np.__version__}".encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=5490,
                    help="pixels per side: 5490 (20 m) or 10980 (10 m)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=20240615)
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--force", action="store_true",
                    help="regenerate even if the stamp matches")
    args = ap.parse_args()

    stamp_path = os.path.join(args.out, ".stamp")
    want = generator_hash(args)
    if not args.force and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read().strip() == want:
                print(f"make_scene: {args.out} is up to date (stamp matches)")
                return 0
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)

    t0 = time.time()
    n = args.size
    res = EXTENT / n
    gt = (X0, res, 0.0, Y0, 0.0, -res)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    gdal.SetCacheMax(256 * 1024 * 1024)

    tmp = {b: os.path.join(args.out, f".{b}.tif.tmp") for b in BANDS + ["SCL"]}
    dss = {b: create(tmp[b], n, gt, srs, gdal.GDT_UInt16, args.tile,
                     args.threads, 0) for b in BANDS}
    dss["SCL"] = create(tmp["SCL"], n, gt, srs, gdal.GDT_Byte, args.tile,
                        args.threads, 0)
    counts = np.zeros(256, np.int64)
    jobs = [(args.seed, n, y0, min(args.tile, n - y0))
            for y0 in range(0, n, args.tile)]
    # Chunks are independent (the landscape is a function of map
    # coordinates, the noise is seeded per chunk): compute them in worker
    # processes, write them here in order.
    with multiprocessing.get_context("fork").Pool(max(1, args.threads)) as pool:
        for y0, (dn, scl) in pool.imap(_work, jobs):
            for i, b in enumerate(BANDS):
                dss[b].GetRasterBand(1).WriteArray(dn[i], 0, y0)
            dss["SCL"].GetRasterBand(1).WriteArray(scl, 0, y0)
            counts += np.bincount(scl.ravel(), minlength=256)
            print(f"make_scene: rows {y0 + scl.shape[0]}/{n}", file=sys.stderr)
    for b in list(dss):
        dss[b].GetRasterBand(1).SetDescription(b)
        dss[b].SetMetadataItem("AREA_OR_POINT", "Area")
        dss[b] = None
        os.replace(tmp[b], os.path.join(args.out, f"{b}.tif"))
    write_zones(os.path.join(args.out, "zones.geojson"))

    total = n * n
    share = {int(c): round(100.0 * counts[c] / total, 2)
             for c in np.nonzero(counts)[0]}
    info = {"size": n, "resolution_m": res, "epsg": EPSG, "seed": args.seed,
            "tile": args.tile, "scl_percent": share,
            "seconds": round(time.time() - t0, 1)}
    with open(os.path.join(args.out, "scene.json"), "w") as f:
        json.dump(info, f, indent=1)
    with open(stamp_path, "w") as f:
        f.write(want + "\n")
    print(f"make_scene: wrote {args.out} ({n} x {n}, {res:g} m) in "
          f"{info['seconds']} s; SCL % {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

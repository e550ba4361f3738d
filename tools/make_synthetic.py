#!/usr/bin/python3
"""Synthetic scenes with known truth, to prove the warp onto the region grid.

A round lake of radius 1500 m centred on 60.0 E, 45.0 N (exactly on the
boundary of UTM zones 40N and 41N), in a landscape whose green reflectance is
a linear function of longitude and latitude:

    green(lon, lat) = 0.10 + 2.0 * (lon - 60.0) + 1.0 * (lat - 45.0)
    nir = 0.05 everywhere
    swir1 = 0.04 in the lake, 0.20 on land

Two scenes of the same place, written as GeoTIFFs:
  scene_a/  EPSG:32640 (UTM 40N), 20 m, float32 reflectance (scale 1)
  scene_b/  EPSG:32641 (UTM 41N), green and nir at 30 m, swir1 at 60 m,
            uint16 DN = round(reflectance * 10000), nodata 0
and zones.geojson with one square waterbody zone around the lake (WGS 84).
Every value is a pure function of the pixel centre's lon/lat (computed with
GDAL/OSR), so the outputs are reproducible bit for bit.

Run: tools/make_synthetic.py OUT_DIR   (Debian python3 with python3-gdal)
"""
import json
import math
import os
import sys

import numpy as np
from osgeo import gdal, osr

LON0, LAT0, RADIUS_M = 60.0, 45.0, 1500.0
# Degrees per metre at 45 N (WGS 84 ellipsoid, to 1e-6 relative).
M_PER_DEG_LAT = 111131.75
M_PER_DEG_LON = 78846.81
HALF_SIZE_DEG = 0.05  # scenes cover lon/lat +- this around the centre


def green(lon, lat):
    return 0.10 + 2.0 * (lon - LON0) + 1.0 * (lat - LAT0)


def in_lake(lon, lat):
    dx = (lon - LON0) * M_PER_DEG_LON
    dy = (lat - LAT0) * M_PER_DEG_LAT
    return dx * dx + dy * dy < RADIUS_M * RADIUS_M


def srs(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def lonlat_of_centres(epsg, gt, w, h):
    ct = osr.CoordinateTransformation(srs(epsg), srs(4326))
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = gt[0] + cols * gt[1]
    y = gt[3] + rows * gt[5]
    pts = ct.TransformPoints(np.column_stack([x.ravel(), y.ravel()]).tolist())
    a = np.array(pts)
    return a[:, 0].reshape(h, w), a[:, 1].reshape(h, w)


def grid_for(epsg, res, box=None):
    """A grid in `epsg` at `res` covering the lon/lat box (lon0, lat0, lon1,
    lat1; default the centre +- HALF_SIZE_DEG), edges on multiples of res."""
    if box is None:
        box = (LON0 - HALF_SIZE_DEG, LAT0 - HALF_SIZE_DEG,
               LON0 + HALF_SIZE_DEG, LAT0 + HALF_SIZE_DEG)
    ct = osr.CoordinateTransformation(srs(4326), srs(epsg))
    xs, ys = [], []
    for lon in (box[0], box[2]):
        for lat in (box[1], box[3]):
            x, y, _ = ct.TransformPoint(lon, lat)
            xs.append(x)
            ys.append(y)
    x0 = math.floor(min(xs) / res) * res
    y1 = math.ceil(max(ys) / res) * res
    w = int(math.ceil((max(xs) - x0) / res))
    h = int(math.ceil((y1 - min(ys)) / res))
    return (x0, res, 0.0, y1, 0.0, -res), w, h


def write(path, epsg, gt, arr, dtype, nodata=None):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, arr.shape[1], arr.shape[0], 1, dtype,
                    ["COMPRESS=DEFLATE", "TILED=YES"])
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs(epsg).ExportToWkt())
    b = ds.GetRasterBand(1)
    if nodata is not None:
        b.SetNoDataValue(nodata)
    b.WriteArray(arr)
    ds = None


def band_values(role, lon, lat):
    if role == "green":
        return green(lon, lat)
    if role == "nir":
        return np.full(lon.shape, 0.05)
    return np.where(in_lake(lon, lat), 0.04, 0.20)


def make(out):
    os.makedirs(os.path.join(out, "scene_a"), exist_ok=True)
    os.makedirs(os.path.join(out, "scene_b"), exist_ok=True)
    gt, w, h = grid_for(32640, 20.0)
    lon, lat = lonlat_of_centres(32640, gt, w, h)
    for role in ("green", "nir", "swir1"):
        write(os.path.join(out, "scene_a", role + ".tif"), 32640, gt,
              band_values(role, lon, lat).astype(np.float32), gdal.GDT_Float32)
    for role, res in (("green", 30.0), ("nir", 30.0), ("swir1", 60.0)):
        gt, w, h = grid_for(32641, res)
        lon, lat = lonlat_of_centres(32641, gt, w, h)
        dn = np.round(band_values(role, lon, lat) * 10000).astype(np.uint16)
        write(os.path.join(out, "scene_b", role + ".tif"), 32641, gt, dn,
              gdal.GDT_UInt16, nodata=0)
    d = 0.03
    ring = [[LON0 - d, LAT0 - d], [LON0 + d, LAT0 - d], [LON0 + d, LAT0 + d],
            [LON0 - d, LAT0 + d], [LON0 - d, LAT0 - d]]
    zones = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"zone_id": "lake", "kind": "waterbody"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    with open(os.path.join(out, "zones.geojson"), "w") as f:
        json.dump(zones, f)


# ---- Same-date mosaic of two scenes in two UTM zones ----
# West scene: UTM 40N, 20 m, lon 59.94..60.01, a cloud (QA = 1) disc of
# radius 600 m at CLOUD_W inside the overlap. East scene: UTM 41N, 30 m,
# lon 59.99..60.06, clear but for a smaller cloud disc (radius 300 m) at
# CLOUD_E outside the west scene, so it is the less cloudy scene. Both carry the same reflectance field, so a seamless mosaic shows
# the same field everywhere.
MOSAIC_W = (59.94, 44.96, 60.01, 45.04)
MOSAIC_E = (59.99, 44.96, 60.06, 45.04)
CLOUD_W = (60.0, 45.0)
CLOUD_E = (60.03, 45.01)
CLOUD_R_M = {"west": 600.0, "east": 300.0}


def in_disc(lon, lat, centre, r):
    dx = (lon - centre[0]) * M_PER_DEG_LON
    dy = (lat - centre[1]) * M_PER_DEG_LAT
    return dx * dx + dy * dy < r * r


def make_mosaic(out):
    for name, epsg, res, box, cloud in (("west", 32640, 20.0, MOSAIC_W, CLOUD_W),
                                        ("east", 32641, 30.0, MOSAIC_E, CLOUD_E)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        gt, w, h = grid_for(epsg, res, box)
        lon, lat = lonlat_of_centres(epsg, gt, w, h)
        for role in ("green", "nir", "swir1"):
            write(os.path.join(d, role + ".tif"), epsg, gt,
                  band_values(role, lon, lat).astype(np.float32),
                  gdal.GDT_Float32)
        qa = in_disc(lon, lat, cloud, CLOUD_R_M[name]).astype(np.uint8)
        write(os.path.join(d, "qa.tif"), epsg, gt, qa, gdal.GDT_Byte)


if __name__ == "__main__":
    make(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "mosaic":
        make_mosaic(sys.argv[1])

#!/usr/bin/python3
"""Write the sample region's vector files, reproducibly:

  sample_rasters/zones.geojson  two zones drawn on the Landsat 5 crop
      tucurui_arm   (waterbody) the main arm of the reservoir with its shore
      sw_clearing   (cropland)  forest and clearings south-west of it
  sample_rasters/aoi.geojson    the region of interest: the crop less a
                                5-pixel margin

Vertices are drawn in pixel coordinates of the crop (col, row; 30 m pixels,
origin 619395 E, -410205 N in EPSG:32622) and stored in WGS 84 lon/lat
(RFC 7946), so the pipeline has to reproject them. Needs Debian's python3
with python3-gdal.
"""
import json
import os
import sys

from osgeo import osr

X0, Y0, RES = 619395.0, -410205.0, 30.0

ZONES = [
    ("tucurui_arm", "Tucurui reservoir, main arm", "waterbody",
     [(0, 35), (40, 45), (100, 60), (160, 90), (220, 110), (287, 120),
      (287, 200), (230, 200), (170, 190), (120, 150), (60, 110), (0, 95)]),
    ("sw_clearing", "Forest and clearings south-west", "cropland",
     [(10, 220), (120, 220), (120, 300), (10, 300)]),
]
AOI = [(5, 5), (282, 5), (282, 305), (5, 305)]


def to_lonlat(pixels):
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32622)
    wgs = osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    for s in (utm, wgs):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(utm, wgs)
    ring = []
    for c, r in list(pixels) + [pixels[0]]:
        lon, lat, _ = ct.TransformPoint(X0 + c * RES, Y0 - r * RES)
        ring.append([round(lon, 8), round(lat, 8)])
    return ring


def feature(props, pixels):
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [to_lonlat(pixels)]}}


def main(outdir):
    zones = {"type": "FeatureCollection", "name": "zones", "features": [
        feature({"zone_id": zid, "name": name, "kind": kind}, px)
        for zid, name, kind, px in ZONES]}
    aoi = {"type": "FeatureCollection", "name": "aoi",
           "features": [feature({"name": "sample AOI"}, AOI)]}
    for name, obj in (("zones.geojson", zones), ("aoi.geojson", aoi)):
        with open(os.path.join(outdir, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sample_rasters")

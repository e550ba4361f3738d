#!/usr/bin/python3
"""STAC Item and Collection written next to the products.

Runs the bundled sample (COG outputs, 30 m, AOI) and a second date of the same
region from a generated config (60 m bbox grid, plain GeoTIFF), both into one
output folder, then checks item.json and collection.json independently of
aralwatch: grid and CRS against gdal.Open of every raster asset, the bbox
against osr's transform of the raster bounds, the geometry against an OGR
footprint, checksums with hashlib, and the hrefs against the file system.
If python3-jsonschema is installed, both documents are also validated
against a minimal STAC 1.1 schema written here (no network)."""
import hashlib
import json
import math
import os
import shutil
import tempfile
import urllib.parse

from osgeo import gdal, ogr, osr

import awtest
from awtest import SRC, run

CONFIG = os.path.join(SRC, "configs", "sample.yaml")
SCENE = os.path.join(SRC, "sample_rasters", "landsat5_para")
REGION = "para_reservoir"
DATE = "1988-08-14"
DATE2 = "1988-08-15"

EXTENSIONS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "proj",
    "https://stac-extensions.github.io/raster/v2.0.0/schema.json": "raster",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json": "processing",
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json": "eo",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json": "file",
}

GDAL_TYPES = {gdal.GDT_Byte: "uint8", gdal.GDT_UInt16: "uint16",
              gdal.GDT_Int16: "int16", gdal.GDT_UInt32: "uint32",
              gdal.GDT_Int32: "int32", gdal.GDT_Float32: "float32",
              gdal.GDT_Float64: "float64"}

# A second date of the same region: the sample scene relabelled, on a 60 m
# grid clipped to a lon/lat box, fixed threshold, plain (not COG) GeoTIFF.
CONFIG2 = """version: 1
region:
  name: {region}
  crs: EPSG:32622
  resolution: 60
  bbox: [-49.92, -3.77, -49.87, -3.72]
scenes:
  - id: relabelled_scene
    date: {date}
    path: {scene}
    nodata: 255
    bands:
      green: {{file: LT52240631988227CUB02_B2.TIF, scale: 0.00310791223, offset: -0.00978498659}}
      swir1: {{file: LT52240631988227CUB02_B5.TIF, scale: 0.00230304375, offset: -0.00941081251}}
indices: [mndwi]
water:
  index: mndwi
  method: threshold
  threshold: 0.1
outputs:
  cog: false
"""

# Just what STAC 1.1.0 requires of an Item and a Collection (item-spec,
# collection-spec), for the optional jsonschema check.
ITEM_SCHEMA = {
    "type": "object",
    "required": ["type", "stac_version", "id", "geometry", "bbox",
                 "properties", "links", "assets"],
    "properties": {
        "type": {"const": "Feature"},
        "stac_version": {"const": "1.1.0"},
        "stac_extensions": {"type": "array", "items": {"type": "string",
                                                       "format": "uri"},
                            "uniqueItems": True},
        "id": {"type": "string", "minLength": 1},
        "collection": {"type": "string"},
        "geometry": {
            "type": "object", "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "Polygon"},
                "coordinates": {"type": "array", "minItems": 1, "items": {
                    "type": "array", "minItems": 4, "items": {
                        "type": "array", "minItems": 2, "maxItems": 2,
                        "items": {"type": "number"}}}}}},
        "bbox": {"type": "array", "minItems": 4, "maxItems": 4,
                 "items": {"type": "number"}},
        "properties": {
            "type": "object", "required": ["datetime"],
            "properties": {
                "datetime": {"type": ["string", "null"]},
                "start_datetime": {"type": "string"},
                "end_datetime": {"type": "string"},
                "proj:code": {"type": ["string", "null"]},
                "proj:shape": {"type": "array", "minItems": 2, "maxItems": 2,
                               "items": {"type": "integer", "minimum": 1}},
                "proj:transform": {"type": "array", "minItems": 6,
                                   "maxItems": 9,
                                   "items": {"type": "number"}},
                "eo:cloud_cover": {"type": "number", "minimum": 0,
                                   "maximum": 100},
                "processing:software": {"type": "object",
                                        "additionalProperties": {
                                            "type": "string"}},
                "processing:expression": {
                    "type": "object", "required": ["format", "expression"]},
            },
            "if": {"properties": {"datetime": {"type": "null"}}},
            "then": {"required": ["start_datetime", "end_datetime"]},
        },
        "links": {"type": "array", "items": {
            "type": "object", "required": ["rel", "href"],
            "properties": {"rel": {"type": "string"},
                           "href": {"type": "string"}}}},
        "assets": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["href"],
            "properties": {
                "href": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}},
                "file:checksum": {"type": "string",
                                  "pattern": "^1220[0-9a-f]{64}$"},
                "file:size": {"type": "integer", "minimum": 0},
                "bands": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "properties": {"nodata": {
                        "oneOf": [{"type": "number"},
                                  {"enum": ["nan", "inf", "-inf"]}]}}}}}}},
    },
}

COLLECTION_SCHEMA = {
    "type": "object",
    "required": ["type", "stac_version", "id", "description", "license",
                 "extent", "links"],
    "properties": {
        "type": {"const": "Collection"},
        "stac_version": {"const": "1.1.0"},
        "extent": {
            "type": "object", "required": ["spatial", "temporal"],
            "properties": {
                "spatial": {"type": "object", "required": ["bbox"],
                            "properties": {"bbox": {
                                "type": "array", "minItems": 1, "items": {
                                    "type": "array", "minItems": 4,
                                    "maxItems": 4}}}},
                "temporal": {"type": "object", "required": ["interval"],
                             "properties": {"interval": {
                                 "type": "array", "minItems": 1, "items": {
                                     "type": "array", "minItems": 2,
                                     "maxItems": 2}}}}}},
    },
}


def wgs84():
    s = osr.SpatialReference()
    s.ImportFromEPSG(4326)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def raster_bounds(ds):
    gt = ds.GetGeoTransform()
    xs = [gt[0] + c * gt[1] + r * gt[2]
          for c in (0, ds.RasterXSize) for r in (0, ds.RasterYSize)]
    ys = [gt[3] + c * gt[4] + r * gt[5]
          for c in (0, ds.RasterXSize) for r in (0, ds.RasterYSize)]
    return min(xs), min(ys), max(xs), max(ys)


def raster_footprint_wgs84(ds):
    """The raster's outline (100 points per edge) as an OGR polygon in
    lon/lat."""
    gt = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    ring = ogr.Geometry(ogr.wkbLinearRing)
    corners = [(0, 0), (0, h), (w, h), (w, 0)]
    for i in range(4):
        (c0, r0), (c1, r1) = corners[i], corners[(i + 1) % 4]
        for k in range(100):
            t = k / 100
            c, r = c0 + (c1 - c0) * t, r0 + (r1 - r0) * t
            ring.AddPoint_2D(gt[0] + c * gt[1] + r * gt[2],
                             gt[3] + c * gt[4] + r * gt[5])
    ring.CloseRings()
    poly = ogr.Geometry(ogr.wkbPolygon)
    poly.AddGeometry(ring)
    src = ds.GetSpatialRef().Clone()
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    poly.Transform(osr.CoordinateTransformation(src, wgs84()))
    return poly


def href_path(base_dir, href):
    """Local path of an href: a relative one against base_dir, a file://
    URI or an absolute path as they are."""
    u = urllib.parse.urlparse(href)
    if u.scheme == "file":
        return urllib.parse.unquote(u.path)
    if u.scheme:
        return None
    return os.path.normpath(os.path.join(base_dir, urllib.parse.unquote(href)))


def keys_under(j):
    """Every object key anywhere under j."""
    if isinstance(j, dict):
        for k, v in j.items():
            yield k
            yield from keys_under(v)
    elif isinstance(j, list):
        for v in j:
            yield from keys_under(v)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


class StacRun(awtest.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="aw-stac-")
        cls.addClassCleanup(shutil.rmtree, cls.out, True)
        cls.runs = [run(["run", "--config", CONFIG, "--out", cls.out,
                         "--threads", "2"])]
        cfg2 = os.path.join(cls.out, "second_date.yaml")
        with open(cfg2, "w") as f:
            f.write(CONFIG2.format(region=REGION, date=DATE2, scene=SCENE))
        cls.runs.append(run(["run", "--config", cfg2, "--out", cls.out,
                             "--threads", "2"]))
        cls.region_dir = os.path.join(cls.out, REGION)

    def test_runs_succeed(self):
        for rc, _, err in self.runs:
            self.assertIn(rc, (0, 10), err)

    def load(self, date):
        d = os.path.join(self.region_dir, date)
        with open(os.path.join(d, "item.json")) as f:
            item = json.load(f)
        with open(os.path.join(d, "manifest.json")) as f:
            manifest = json.load(f)
        return d, item, manifest

    def test_required_item_fields(self):
        for date in (DATE, DATE2):
            _, item, _ = self.load(date)
            for k in ("type", "stac_version", "id", "geometry", "bbox",
                      "properties", "links", "assets"):
                self.assertIn(k, item, k)
            self.assertEqual(item["type"], "Feature")
            self.assertEqual(item["stac_version"], "1.1.0")
            self.assertEqual(item["id"], f"{REGION}_{date}")
            self.assertEqual(item["collection"], REGION)
            p = item["properties"]
            self.assertIn("datetime", p)
            # The sample's scenes carry no acquisition time: null datetime,
            # so the day's range must be there.
            self.assertIsNone(p["datetime"])
            self.assertEqual(p["start_datetime"], f"{date}T00:00:00Z")
            self.assertEqual(p["end_datetime"], f"{date}T23:59:59Z")
            self.assertEqual(p["processing:level"], "L3")
            self.assertIn("aralwatch", p["processing:software"])
            self.assertEqual(p["processing:expression"]["format"], "text")
            self.assertEqual(p["eo:cloud_cover"], 0.0)
            self.assertNotIn("self", [l["rel"] for l in item["links"]])

    def test_water_expression_names_method_and_threshold(self):
        _, item, m = self.load(DATE)
        expr = item["properties"]["processing:expression"]["expression"]
        self.assertIn("mndwi > %g" % m["water"]["threshold"], expr)
        self.assertIn("Otsu", expr)
        _, item, _ = self.load(DATE2)
        expr = item["properties"]["processing:expression"]["expression"]
        self.assertIn("mndwi > 0.1", expr)
        self.assertIn("fixed threshold", expr)

    def test_extensions_declared_iff_used(self):
        for date in (DATE, DATE2):
            _, item, _ = self.load(date)
            exts = item["stac_extensions"]
            self.assertEqual(len(exts), len(set(exts)))
            body = {"properties": item["properties"], "assets": item["assets"]}
            prefixes = {k.split(":", 1)[0] for k in keys_under(body) if ":" in k}
            for url in exts:
                self.assertIn(url, EXTENSIONS, url)
                self.assertIn(EXTENSIONS[url], prefixes,
                              f"{url} declared, no {EXTENSIONS[url]}: field")
            declared = {EXTENSIONS[u] for u in exts}
            for pre in prefixes:
                self.assertIn(pre, declared, f"{pre}: field without its extension")

    def test_projection_matches_every_raster(self):
        for date, cog in ((DATE, True), (DATE2, False)):
            d, item, _ = self.load(date)
            p = item["properties"]
            rasters = {k: a for k, a in item["assets"].items()
                       if a["href"].endswith(".tif")}
            self.assertIn("water", rasters)
            self.assertIn("valid", rasters)
            self.assertIn("mndwi", rasters)
            for key, a in rasters.items():
                path = href_path(d, a["href"])
                ds = gdal.Open(path)
                shape = a.get("proj:shape", p["proj:shape"])
                self.assertEqual(shape, [ds.RasterYSize, ds.RasterXSize], key)
                gt = ds.GetGeoTransform()
                want = [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]]
                got = a.get("proj:transform", p["proj:transform"])
                for g, w in zip(got, want):
                    self.assertTrue(math.isclose(g, w, rel_tol=1e-12,
                                                 abs_tol=1e-9), (key, got, want))
                srs = ds.GetSpatialRef()
                if srs.GetAuthorityName(None) == "EPSG":
                    self.assertEqual(p["proj:code"],
                                     "EPSG:" + srs.GetAuthorityCode(None))
                else:
                    self.assertIsNone(p["proj:code"])
                    self.assertIn("proj:wkt2", p)
                self.assertEqual(p["gsd"], abs(gt[1]))
                # Media type follows the file's layout.
                layout = ds.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE")
                self.assertEqual(layout == "COG", cog)
                self.assertEqual(
                    a["type"], "image/tiff; application=geotiff" +
                    ("; profile=cloud-optimized" if cog else ""))
                # Bands: data type, nodata, names.
                self.assertEqual(len(a["bands"]), ds.RasterCount)
                b = ds.GetRasterBand(1)
                band = a["bands"][0]
                self.assertEqual(band["name"], key)
                self.assertEqual(band["data_type"], GDAL_TYPES[b.DataType])
                nd = b.GetNoDataValue()
                if nd is None:
                    self.assertNotIn("nodata", band)
                elif math.isnan(nd):
                    self.assertEqual(band["nodata"], "nan")
                else:
                    self.assertEqual(band["nodata"], nd)
                self.assertIn("data", a["roles"])

    def test_bbox_and_geometry_hold_the_rasters(self):
        for date in (DATE, DATE2):
            d, item, _ = self.load(date)
            ds = gdal.Open(os.path.join(d, "water.tif"))
            src = ds.GetSpatialRef().Clone()
            src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            ct = osr.CoordinateTransformation(src, wgs84())
            lo_x, lo_y, hi_x, hi_y = ct.TransformBounds(*raster_bounds(ds), 21)
            bx0, by0, bx1, by1 = item["bbox"]
            eps = 1e-9
            self.assertLessEqual(bx0, lo_x + eps)
            self.assertLessEqual(by0, lo_y + eps)
            self.assertGreaterEqual(bx1, hi_x - eps)
            self.assertGreaterEqual(by1, hi_y - eps)
            # Not much larger either: within 1e-6 degrees.
            self.assertLess(max(lo_x - bx0, lo_y - by0, bx1 - hi_x,
                                by1 - hi_y), 1e-6)
            # Geometry: closed, counter-clockwise, inside the bbox, and the
            # same area as an independent footprint.
            ring = item["geometry"]["coordinates"][0]
            self.assertEqual(ring[0], ring[-1])
            area2 = sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1]
                        for i in range(len(ring) - 1))
            self.assertGreater(area2, 0, "ring is not counter-clockwise")
            for x, y in ring:
                self.assertTrue(bx0 <= x <= bx1 and by0 <= y <= by1)
            geom = ogr.CreateGeometryFromJson(json.dumps(item["geometry"]))
            ref = raster_footprint_wgs84(ds)
            self.assertLess(geom.SymDifference(ref).GetArea() / ref.GetArea(),
                            1e-4)

    def test_assets_exist_and_checksums_match(self):
        for date in (DATE, DATE2):
            d, item, _ = self.load(date)
            hrefs = set()
            for key, a in item["assets"].items():
                path = href_path(d, a["href"])
                self.assertTrue(a["href"].startswith("./"), a["href"])
                self.assertTrue(os.path.isfile(path), path)
                self.assertEqual(a["file:checksum"], "1220" + sha256(path), key)
                self.assertEqual(a["file:size"], os.path.getsize(path), key)
                hrefs.add(os.path.basename(path))
            # Every file of the folder but the item itself is an asset.
            self.assertEqual(hrefs, set(os.listdir(d)) - {"item.json"})
            self.assertIn("metadata", item["assets"]["manifest_json"]["roles"])
            self.assertEqual(item["assets"]["zones_csv"]["type"], "text/csv")

    def test_derived_from_every_used_scene(self):
        for date in (DATE, DATE2):
            d, item, m = self.load(date)
            used = [s["id"] for s in m["scenes"] if s["status"] == "used"]
            links = [l for l in item["links"] if l["rel"] == "derived_from"]
            self.assertEqual(sorted(l["title"] for l in links), sorted(used))
            for l in links:
                path = href_path(d, l["href"])
                self.assertTrue(l["href"].startswith("file://"), l["href"])
                self.assertTrue(os.path.exists(path), path)
                self.assertEqual(os.path.realpath(path),
                                 os.path.realpath(SCENE))

    def test_collection_lists_items_and_holds_their_extent(self):
        path = os.path.join(self.region_dir, "collection.json")
        with open(path) as f:
            c = json.load(f)
        self.assertEqual(c["type"], "Collection")
        self.assertEqual(c["stac_version"], "1.1.0")
        self.assertEqual(c["id"], REGION)
        for k in ("description", "license", "extent", "links"):
            self.assertIn(k, c)
        items = [l["href"] for l in c["links"] if l["rel"] == "item"]
        self.assertEqual(items, [f"./{DATE}/item.json", f"./{DATE2}/item.json"])
        (bx0, by0, bx1, by1), = c["extent"]["spatial"]["bbox"]
        (t0, t1), = c["extent"]["temporal"]["interval"]
        boxes = []
        for date in (DATE, DATE2):
            d, item, _ = self.load(date)
            ix0, iy0, ix1, iy1 = item["bbox"]
            boxes.append(item["bbox"])
            self.assertTrue(bx0 <= ix0 and by0 <= iy0 and bx1 >= ix1 and
                            by1 >= iy1, (c["extent"], item["bbox"]))
            self.assertLessEqual(t0, item["properties"]["start_datetime"])
            self.assertGreaterEqual(t1, item["properties"]["end_datetime"])
            # The item's links up lead to this file.
            for rel in ("collection", "parent", "root"):
                up = [l for l in item["links"] if l["rel"] == rel]
                self.assertEqual(len(up), 1, rel)
                self.assertEqual(os.path.realpath(href_path(d, up[0]["href"])),
                                 os.path.realpath(path))
        # The extent is the union, not larger.
        self.assertEqual([bx0, by0, bx1, by1],
                         [min(b[0] for b in boxes), min(b[1] for b in boxes),
                          max(b[2] for b in boxes), max(b[3] for b in boxes)])
        self.assertEqual((t0, t1), (f"{DATE}T00:00:00Z", f"{DATE2}T23:59:59Z"))
        self.assertNotEqual(boxes[0], boxes[1])
        # No temporary files left next to it.
        self.assertEqual([n for n in os.listdir(self.region_dir) if ".tmp" in n],
                         [])

    def test_json_schema_if_available(self):
        try:
            import jsonschema
        except ImportError:
            self.skipTest("python3-jsonschema not installed")
        for date in (DATE, DATE2):
            _, item, _ = self.load(date)
            jsonschema.validate(item, ITEM_SCHEMA)
        with open(os.path.join(self.region_dir, "collection.json")) as f:
            jsonschema.validate(json.load(f), COLLECTION_SCHEMA)


if __name__ == "__main__":
    awtest.main()

#!/usr/bin/python3
"""Real products as they are delivered (issue: sensor profiles, masks,
operational water classes). Every expected number is computed here from
the raw files: QA_PIXEL bits and SCL classes counted with numpy, reflectance
from the DNs with the scale/offset this test reads from the MTL/MTD itself,
DSWE and WOfS re-implemented from DOMAIN.md §3.2/§3.3 in numpy."""
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import sqlite3
import tempfile

import numpy as np
from osgeo import gdal

import awtest
from awtest import SRC, read, run

SR = os.path.join(SRC, "sample_rasters")
LANDSAT = os.path.join(SR, "landsat8_c2l2")
SAFE = glob.glob(os.path.join(SR, "S2B_MSIL2A_*.SAFE"))[0]
S2_IMG = glob.glob(os.path.join(SAFE, "GRANULE", "*", "IMG_DATA"))[0]
PLANET = os.path.join(SR, "planetscope_harvey")


def ls_band(name):
    return glob.glob(os.path.join(LANDSAT, "*_%s.TIF" % name))[0]


def mtl_value(key):
    with open(glob.glob(os.path.join(LANDSAT, "*_MTL.txt"))[0]) as f:
        text = f.read()
    return float(re.search(r"\b%s = \"?([-0-9.eE]+)" % key, text).group(1))


def s2_band(name):
    return glob.glob(os.path.join(S2_IMG, "R*m", "*_%s_*.jp2" % name))[0]


def raw(path):
    ds = gdal.Open(path)
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float64)


def landsat_refl(dtype=np.float64):
    """Reflectance of the six bands, from the MTL's coefficients, NaN on
    fill (DN 0); in float32 (dtype), as the pipeline makes it."""
    out = {}
    for role, b in (("blue", 2), ("green", 3), ("red", 4), ("nir", 5),
                    ("swir1", 6), ("swir2", 7)):
        dn = raw(ls_band("SR_B%d" % b)).astype(dtype)
        r = dn * dtype(mtl_value("REFLECTANCE_MULT_BAND_%d" % b)) + \
            dtype(mtl_value("REFLECTANCE_ADD_BAND_%d" % b))
        r[dn == 0] = np.nan
        out[role] = r
    return out


def s2_refl():
    """Baseline 02.14: reflectance = DN / 10000 (BOA_QUANTIFICATION_VALUE in
    MTD_MSIL2A.xml, no offset before 04.00), NaN on DN 0."""
    with open(os.path.join(SAFE, "MTD_MSIL2A.xml")) as f:
        text = f.read()
    quant = float(re.search(r"<BOA_QUANTIFICATION_VALUE[^>]*>([0-9.]+)<",
                            text).group(1))
    assert "BOA_ADD_OFFSET" not in text.split("BOA_QUANTIFICATION_VALUE")[0]
    out = {}
    for role, b in (("blue", "B02"), ("green", "B03"), ("red", "B04"),
                    ("nir", "B08"), ("swir1", "B11"), ("swir2", "B12")):
        dn = raw(s2_band(b))
        r = dn / quant
        r[dn == 0] = np.nan
        out[role] = r
    return out


def landsat_classes(refl):
    """Quality class per pixel from QA_PIXEL bits (DOMAIN.md §2.2), in the
    pipeline's precedence: nodata (fill or a band missing), cloud (dilated
    cloud, cirrus, cloud), shadow, snow, valid."""
    qa = raw(ls_band("QA_PIXEL")).astype(np.uint16)
    bit = lambda k: (qa >> k) & 1 == 1
    cls = np.full(qa.shape, 1, np.uint8)
    cls[bit(5)] = 5
    cls[bit(4)] = 4
    cls[bit(1) | bit(2) | bit(3)] = 3
    nodata = bit(0) | np.any([np.isnan(v) for v in refl.values()], axis=0)
    cls[nodata] = 2
    return cls


def s2_classes(refl):
    scl = raw(s2_band("SCL"))
    cls = np.full(scl.shape, 1, np.uint8)
    cls[np.isin(scl, [1, 2])] = 6
    cls[scl == 3] = 4
    cls[np.isin(scl, [8, 9, 10])] = 3
    cls[scl == 11] = 5
    nodata = (scl == 0) | np.any([np.isnan(v) for v in refl.values()], axis=0)
    cls[nodata] = 2
    return cls


def dswe_numpy(r):
    """DSWE from DOMAIN.md §3.2: five tests in whole SR x 10000 (ESPA's
    integer surface reflectance), the recode table written out as the
    published 5-digit lists."""
    b, g, red, n, s1, s2 = (np.rint(r[k] * r[k].dtype.type(10000)).astype(
        np.float64) for k in
                            ("blue", "green", "red", "nir", "swir1", "swir2"))
    with np.errstate(invalid="ignore", divide="ignore"):
        mndwi = (g - s1) / (g + s1)
        ndvi = (n - red) / (n + red)
    awesh = b + 2.5 * g - 1.5 * (n + s1) - 0.25 * s2
    t1 = mndwi > 0.0124
    t2 = (g + red) > (n + s1)
    t3 = awesh > 0
    t4 = (mndwi > -0.44) & (s1 < 900) & (n < 1500) & (ndvi < 0.7)
    t5 = (mndwi > -0.5) & (b < 1000) & (s1 < 3000) & (s2 < 1000) & (n < 2500)
    classes = {
        0: ["00000", "00001", "00010", "00100", "01000"],
        1: ["01111", "10111", "11011", "11101", "11110", "11111"],
        2: ["00111", "01011", "01101", "01110", "10011", "10101", "10110",
            "11001", "11010", "11100"],
        3: ["11000"],
        4: ["00011", "00101", "00110", "01001", "01010", "01100", "10000",
            "10001", "10010", "10100"]}
    code = np.char.add(np.char.add(np.char.add(np.char.add(
        t5.astype(int).astype(str), t4.astype(int).astype(str)),
        t3.astype(int).astype(str)), t2.astype(int).astype(str)),
        t1.astype(int).astype(str))
    out = np.zeros(g.shape, np.uint8)
    for c, codes in classes.items():
        out[np.isin(code, codes)] = c
    return out


def wofs_numpy(r):
    """The WOfS tree of DOMAIN.md §3.3 on x10000 reflectance, pixel by
    pixel, written as the nested ifs of the source."""
    b1, b2, b3, b4, b5, b7 = (r[k] * 10000 for k in
                              ("blue", "green", "red", "nir", "swir1", "swir2"))

    def ndi(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return (a - b) / (a + b)

    n52, n43, n72 = ndi(b5, b2), ndi(b4, b3), ndi(b7, b2)
    out = np.zeros(b1.shape, np.uint8)
    for i in np.ndindex(b1.shape):
        B1, B3, B7 = b1[i], b3[i], b7[i]
        N52, N43, N72 = n52[i], n43[i], n72[i]
        if N52 <= -0.01:
            if B1 > 2083.5:
                wet = False
            elif B7 <= 323.5:
                wet = N43 <= 0.61
            elif B1 > 1400.5:
                wet = N43 <= -0.01
            elif N72 > -0.23:
                wet = B1 <= 379
            elif N43 <= 0.22:
                wet = True
            else:
                wet = B1 <= 473
        else:
            if N52 <= 0.23:
                if B1 > 334.5:
                    wet = False
                elif N43 > 0.54:
                    wet = False
                elif N52 <= 0.12:
                    wet = True
                elif B3 <= 364.5:
                    wet = B1 <= 129.5
                else:
                    wet = B1 <= 300.5
            else:
                if N52 > 0.34 or B1 > 249.5 or N43 > 0.45 or B3 > 364.5:
                    wet = False
                else:
                    wet = B1 <= 129.5
        out[i] = 1 if wet else 0
    return out


def run_one(tmp, name, product, water, indices="[ndwi, mndwi, ndvi]"):
    cfg = os.path.join(tmp, name + ".yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nregion: {name: %s}\nscenes: [{path: %s}]\n"
                "indices: %s\nwater: %s\n" % (name, product, indices, water))
    out = os.path.join(tmp, "out")
    rc, _, err = run(["run", "--config", cfg, "--out", out, "-q"])
    return rc, err, os.path.join(out, name)


class Inbox(awtest.TempDirTest):
    """One run over a folder holding a Landsat C2 L2 scene, a Sentinel-2
    L2A SAFE and a PlanetScope scene (generic profile), no band map."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="aw-inbox-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cfg = awtest.inbox_config(cls.dir, (LANDSAT, SAFE, PLANET),
                                  "indices: [ndwi, ndvi]\n"
                                  "water: {index: ndwi, method: threshold}\n")
        cls.rc, _, cls.err = run(["run", "--config", cfg, "--out",
                                  os.path.join(cls.dir, "out")])
        cls.out = os.path.join(cls.dir, "out", "inbox")

    def manifest(self, date):
        with open(os.path.join(self.out, date, "manifest.json")) as f:
            return json.load(f)

    def test_every_product_is_recognised_and_used(self):
        self.assertEqual(self.rc, 0, self.err)
        with open(os.path.join(self.out, "last_run.json")) as f:
            scenes = {s["date"]: s for s in json.load(f)["scenes"]}
        self.assertEqual(sorted(scenes), ["2017-08-31", "2019-12-01",
                                          "2021-01-22"])
        self.assertEqual(scenes["2017-08-31"]["sensor"], "generic")
        self.assertEqual(scenes["2019-12-01"]["sensor"], "landsat_c2_l2")
        self.assertEqual(scenes["2021-01-22"]["sensor"], "sentinel2_l2a")
        for s in scenes.values():
            self.assertEqual(s["status"], "used")

    def test_manifests_record_bands_scale_offset_and_provenance(self):
        # date -> (number of input files, scale, offset of reflectance bands)
        # The inputs are the files the products are made from: NDWI and
        # NDVI read green, red and NIR, and the mask reads the quality
        # band; the products' other bands (blue, SWIR) are not read, so
        # neither checksummed nor listed.
        expect = {"2019-12-01": (4, mtl_value("REFLECTANCE_MULT_BAND_3"),
                                 mtl_value("REFLECTANCE_ADD_BAND_3")),
                  "2021-01-22": (4, 1e-4, 0.0),
                  # PlanetScope: each band's reflectanceCoefficient; the
                  # 4-band file and its unusable data mask
                  "2017-08-31": (2, {"green": 1.92266681265e-05,
                                     "red": 2.14155262585e-05,
                                     "nir": 3.22221688359e-05}, 0.0)}
        for date, (n_files, scale, offset) in expect.items():
            scene = self.manifest(date)["scenes"][0]
            files = {i["path"] for i in scene["inputs"]}
            self.assertEqual(len(files), n_files, date)
            roles = {"green", "red", "nir", "qa"}
            self.assertEqual({i["role"] for i in scene["inputs"]}, roles, date)
            for i in scene["inputs"]:
                if i["role"] != "qa":
                    want = scale[i["role"]] if isinstance(scale, dict) else scale
                    self.assertAlmostEqual(i["scale"], want, places=12)
                    self.assertAlmostEqual(i["offset"], offset, places=12)
            self.assertIn("scale_offset", scene)
            # The catalog's checksum cache and the manifest hold each input
            # file's SHA-256 as hashlib computes it, also for a file of
            # several bands (the PlanetScope file holds four).
            db = sqlite3.connect(os.path.join(self.out, "catalog.sqlite"))
            for path in files:
                with open(path, "rb") as f:
                    want = hashlib.sha256(f.read()).hexdigest()
                rows = db.execute("SELECT sha256 FROM files WHERE path = ?",
                                  (path,)).fetchall()
                self.assertEqual(rows, [(want,)], path)
                self.assertEqual({i["sha256"] for i in scene["inputs"]
                                  if i["path"] == path}, {want}, path)
            db.close()
        s2 = self.manifest("2021-01-22")["scenes"][0]
        self.assertEqual(s2["processing_baseline"], "02.14")
        self.assertEqual(s2["tile_id"], "22HBD")
        self.assertEqual(s2["platform"], "Sentinel-2B")
        ls = self.manifest("2019-12-01")["scenes"][0]
        self.assertEqual((ls["wrs_path"], ls["wrs_row"]), (8, 59))
        self.assertEqual(ls["platform"], "LANDSAT_8")
        self.assertAlmostEqual(ls["provider_cloud_cover_pct"], 81.02)

    def test_landsat_quality_classes_match_the_qa_pixel_bits(self):
        refl = landsat_refl()
        refl = {k: refl[k] for k in ("green", "red", "nir")}  # bands used
        expect = landsat_classes(refl)
        _, got = read(os.path.join(self.out, "2019-12-01", "valid.tif"))
        np.testing.assert_array_equal(got, expect)
        px = self.manifest("2019-12-01")["scenes"][0]["pixels"]
        for name, c in (("valid", 1), ("nodata", 2), ("cloud", 3),
                        ("shadow", 4), ("snow", 5)):
            self.assertEqual(px[name], int((expect == c).sum()), name)

    def test_landsat_cloud_fraction_is_the_qa_pixel_bit_count(self):
        refl = landsat_refl()
        refl = {k: refl[k] for k in ("green", "red", "nir")}
        cls = landsat_classes(refl)
        observed = (cls != 2).sum()
        expect = 100.0 * (cls == 3).sum() / observed
        scene = self.manifest("2019-12-01")["scenes"][0]
        # The counts are equal exactly; the percentage to the 10 digits the
        # JSON carries.
        self.assertEqual(scene["pixels"]["cloud"], int((cls == 3).sum()))
        self.assertAlmostEqual(scene["cloud_pct"], expect, places=7)
        print("Landsat C2: cloud %.4f %% of observed pixels (QA_PIXEL bits)"
              % expect)

    def test_planetscope_quality_classes_match_its_unusable_data_mask(self):
        # The UDM beside the 4-band file: any bit masks, bit 1 is cloud
        # (1101 such pixels were classed valid before), DN 0 is nodata.
        ps = glob.glob(os.path.join(PLANET, "*_AnalyticMS.tif"))[0]
        udm = gdal.Open(ps[:-4] + "_DN_udm.tif").ReadAsArray()
        dn = gdal.Open(ps).ReadAsArray()
        expect = np.full(udm.shape, 1, np.uint8)
        expect[udm != 0] = 6
        expect[(udm & 2) != 0] = 3
        expect[(dn == 0).any(axis=0)] = 2
        _, got = read(os.path.join(self.out, "2017-08-31", "valid.tif"))
        self.assertGreater(int((got == 3).sum()), 1000)
        np.testing.assert_array_equal(got, expect)

    def test_sentinel2_quality_classes_match_the_scl(self):
        refl = s2_refl()
        refl = {k: refl[k] for k in ("green", "red", "nir")}
        expect = s2_classes(refl)
        _, got = read(os.path.join(self.out, "2021-01-22", "valid.tif"))
        np.testing.assert_array_equal(got, expect)

    def test_ndwi_matches_an_independent_computation(self):
        cases = {"2019-12-01": landsat_refl(), "2021-01-22": s2_refl()}
        # PlanetScope: bands 2 (green) and 4 (NIR) of the 4-band file, TOA
        # reflectance = DN * the band's reflectanceCoefficient in the
        # metadata XML (NDWI is not scale-invariant per band: on DN it was
        # 0.245 higher on average).
        ps = glob.glob(os.path.join(PLANET, "*_AnalyticMS.tif"))[0]
        ds = gdal.Open(ps)
        g = ds.GetRasterBand(2).ReadAsArray().astype(np.float64)
        n = ds.GetRasterBand(4).ReadAsArray().astype(np.float64)
        nd = ds.GetRasterBand(1).GetNoDataValue()
        g[g == nd] = np.nan
        n[n == nd] = np.nan
        g *= 1.92266681265e-05  # ps:bandNumber 2
        n *= 3.22221688359e-05  # ps:bandNumber 4
        cases["2017-08-31"] = {"green": g, "nir": n,
                               "red": ds.GetRasterBand(3).ReadAsArray()}
        for date, r in cases.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                expect = (r["green"] - r["nir"]) / (r["green"] + r["nir"])
            _, got = read(os.path.join(self.out, date, "ndwi.tif"))
            _, valid = read(os.path.join(self.out, date, "valid.tif"))
            ok = valid == 1
            self.assertGreater(ok.sum(), 1000, date)
            self.assertLessEqual(np.abs(got[ok] - expect[ok]).max(), 1e-6,
                                 date)
            np.testing.assert_array_equal(np.isnan(got), ~ok)


class InboxTroubles(awtest.TempDirTest):
    def test_damaged_products_fail_duplicates_count_once_and_notes_are_ignored(self):
        import zipfile
        inbox = os.path.join(self.tmp, "inbox")
        os.makedirs(inbox)
        os.symlink(LANDSAT, os.path.join(inbox, "a_landsat"))
        os.symlink(SAFE, os.path.join(inbox, os.path.basename(SAFE)))
        # The same SAFE again, zipped next to it.
        z = os.path.join(inbox, os.path.basename(SAFE) + ".zip")
        with zipfile.ZipFile(z, "w") as zf:
            for root, _, files in os.walk(SAFE):
                for name in files:
                    full = os.path.join(root, name)
                    zf.write(full, os.path.relpath(full, os.path.dirname(SAFE)))
        # A Landsat folder whose MTL was cut short in transfer.
        broken = os.path.join(inbox, "b_broken")
        shutil.copytree(LANDSAT, broken)
        mtl = glob.glob(os.path.join(broken, "*_MTL.txt"))[0]
        with open(mtl, "r+b") as f:
            f.truncate(3000)
        with open(os.path.join(inbox, "README.txt"), "w") as f:
            f.write("delivery note\n")
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: t, grid: per_date}\n"
                    "inbox: [inbox]\nindices: [ndwi]\nwater: {index: ndwi}\n")
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out")])
        self.assertEqual(rc, 6, err)
        with open(os.path.join(self.tmp, "out", "t", "last_run.json")) as f:
            scenes = json.load(f)["scenes"]
        failed = [x for x in scenes if x["status"] == "failed"]
        used = [x for x in scenes if x["status"] == "used"]
        self.assertEqual(len(failed), 1)
        self.assertIn("b_broken", failed[0]["path"])
        self.assertIn("_MTL.txt", failed[0]["reason"])
        self.assertEqual(sorted(x["sensor"] for x in used),
                         ["landsat_c2_l2", "sentinel2_l2a"])
        self.assertIn("again; not used twice", err)
        self.assertNotIn("README", json.dumps(scenes))


class InboxGlobs(awtest.TempDirTest):
    def test_glob_patterns_pick_products_across_folders(self):
        # Two delivery folders per day; the pattern picks the Landsat
        # products in all of them and leaves everything else alone.
        for day, target in (("2019-12-01", LANDSAT), ("2021-01-22", SAFE)):
            d = os.path.join(self.tmp, "deliveries", day)
            os.makedirs(d)
            os.symlink(target, os.path.join(d, "LC08_" + day))
            os.symlink(SAFE, os.path.join(d, os.path.basename(SAFE)))
        cfg = os.path.join(self.tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: g, grid: per_date}\n"
                    "inbox: ['deliveries/*/LC08_*', 'nothing/here*']\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n")
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out")])
        self.assertEqual(rc, 0, err)
        self.assertIn("nothing/here* matches nothing", err)
        with open(os.path.join(self.tmp, "out", "g", "last_run.json")) as f:
            scenes = json.load(f)["scenes"]
        # LC08_2019-12-01 is the Landsat scene; LC08_2021-01-22 is the S2
        # SAFE under a Landsat-like name: detected by content, not name.
        self.assertEqual(sorted((x["sensor"], x["status"]) for x in scenes),
                         [("landsat_c2_l2", "used"), ("sentinel2_l2a", "used")])
        self.assertEqual(len(scenes), 2)


class MtlXml(awtest.TempDirTest):
    def test_a_landsat_folder_with_only_mtl_xml_reads_like_the_txt(self):
        # Build the _MTL.xml USGS ships beside the _MTL.txt: the same
        # GROUP/KEY tree as elements (written here from the text).
        d = os.path.join(self.tmp, "ls_xml")
        os.makedirs(d)
        for f in glob.glob(os.path.join(LANDSAT, "*.TIF")):
            os.symlink(f, os.path.join(d, os.path.basename(f)))
        mtl = glob.glob(os.path.join(LANDSAT, "*_MTL.txt"))[0]
        xml = []
        with open(mtl) as f:
            for line in f:
                line = line.strip()
                if not line or line == "END" or "=" not in line:
                    continue
                k, v = (x.strip() for x in line.split("=", 1))
                v = v.strip('"')
                if k == "GROUP":
                    xml.append("<%s>" % v)
                elif k == "END_GROUP":
                    xml.append("</%s>" % v)
                else:
                    xml.append("<%s>%s</%s>" % (k, v, k))
        with open(os.path.join(d, os.path.basename(mtl)[:-4] + ".xml"), "w") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(xml))
        rc_a, err_a, out_a = run_one(self.tmp, "txt", LANDSAT, "{method: wofs}")
        rc_b, err_b, out_b = run_one(self.tmp, "xml", d, "{method: wofs}")
        self.assertEqual(rc_a, 0, err_a)
        self.assertEqual(rc_b, 0, err_b)
        for name in ("water.tif", "valid.tif", "mndwi.tif"):
            _, a = read(os.path.join(out_a, "2019-12-01", name))
            _, b = read(os.path.join(out_b, "2019-12-01", name))
            np.testing.assert_array_equal(a, b)


class PlanetScopeSurfaceReflectance(awtest.TempDirTest):
    def test_an_sr_file_is_read_as_reflectance_x_10000(self):
        # <stem>_SR.tif beside <stem>_metadata.xml (Planet's SR bundle):
        # the XML's reflectanceCoefficient values are for the analytic
        # radiance file, not for it. DN / 10000, the date from the XML, the
        # quality from <stem>_DN_udm.tif.
        d = os.path.join(self.tmp, "ps")
        os.mkdir(d)
        for f in os.listdir(PLANET):
            name = f.replace("_AnalyticMS.tif", "_AnalyticMS_SR.tif")
            os.symlink(os.path.join(PLANET, f), os.path.join(d, name))
        sr = glob.glob(os.path.join(d, "*_SR.tif"))[0]
        rc, out, err = run(["inspect", sr])
        self.assertEqual(rc, 0, err)
        self.assertIn("surface reflectance = DN / 10000", out)
        self.assertNotIn("reflectanceCoefficient of each band", out)
        self.assertIn("date:        2017-08-31", out)
        self.assertEqual(out.count("reflectance = DN * 0.0001 + 0"), 4, out)
        self.assertRegex(out, r"qa +\S+_AnalyticMS_DN_udm\.tif")
        # Planet's clipped bundle: <stem>_SR_clip.tif (or the analytic
        # <stem>_clip.tif) with <stem>_metadata_clip.xml and
        # <stem>_DN_udm_clip.tif.
        c = os.path.join(self.tmp, "clip")
        os.mkdir(c)
        for f in os.listdir(PLANET):
            stem, ext = os.path.splitext(f)
            if ext in (".tif", ".xml"):
                os.symlink(os.path.join(PLANET, f),
                           os.path.join(c, stem + "_clip" + ext))
        analytic = glob.glob(os.path.join(c, "*_AnalyticMS_clip.tif"))[0]
        clip_sr = analytic.replace("_AnalyticMS_clip.tif", "_AnalyticMS_SR_clip.tif")
        os.rename(analytic, clip_sr)
        rc, out, err = run(["inspect", clip_sr])
        self.assertEqual(rc, 0, err)
        self.assertIn("date from %s" % os.path.basename(
            glob.glob(os.path.join(c, "*_metadata_clip.xml"))[0]), out)
        self.assertEqual(out.count("reflectance = DN * 0.0001 + 0"), 4, out)
        self.assertRegex(out, r"qa +\S+_AnalyticMS_DN_udm_clip\.tif")
        os.rename(clip_sr, analytic)
        rc, out, err = run(["inspect", analytic])
        self.assertEqual(rc, 0, err)
        self.assertIn("reflectanceCoefficient of each band", out)
        self.assertRegex(out, r"qa +\S+_AnalyticMS_DN_udm_clip\.tif")
        # Both bundles in one folder: the clip file takes the clip XML and
        # mask, whatever the order the folder lists them in.
        for f in os.listdir(PLANET):
            os.symlink(os.path.join(PLANET, f), os.path.join(c, f))
        rc, out, err = run(["inspect", analytic])
        self.assertEqual(rc, 0, err)
        self.assertIn("_metadata_clip.xml", out)
        self.assertRegex(out, r"qa +\S+_AnalyticMS_DN_udm_clip\.tif")
        # "_metadata" inside the name itself; an SR file without an XML
        # still finds <stem>_DN_udm.tif.
        odd = os.path.join(self.tmp, "odd")
        os.mkdir(odd)
        for f in os.listdir(PLANET):
            os.symlink(os.path.join(PLANET, f),
                       os.path.join(odd, "site_metadata_x_" + f))
        rc, out, err = run(["inspect", glob.glob(os.path.join(odd, "*_AnalyticMS.tif"))[0]])
        self.assertEqual(rc, 0, err)
        self.assertIn("reflectanceCoefficient of each band", out)
        noxml = os.path.join(self.tmp, "noxml")
        os.mkdir(noxml)
        os.symlink(glob.glob(os.path.join(PLANET, "*_AnalyticMS.tif"))[0],
                   os.path.join(noxml, "X_SR.tif"))
        os.symlink(glob.glob(os.path.join(PLANET, "*_DN_udm.tif"))[0],
                   os.path.join(noxml, "X_DN_udm.tif"))
        rc, out, err = run(["inspect", os.path.join(noxml, "X_SR.tif")])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"qa +\S+/X_DN_udm\.tif")
        # Any other 4-band file named *_SR (no Planet XML beside it, float
        # reflectance already): as delivered.
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        gdal.Translate(os.path.join(other, "x_SR.tif"), sr, outputType=gdal.GDT_Float32,
                       scaleParams=[[0, 65535, 0, 1]])
        rc, out, err = run(["inspect", os.path.join(other, "x_SR.tif")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("reflectance = DN * 1 + 0"), 4, out)


class ZippedSafe(awtest.TempDirTest):
    def test_a_zipped_safe_reads_like_the_safe_folder(self):
        import zipfile
        z = os.path.join(self.tmp, os.path.basename(SAFE) + ".zip")
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            for root, _, files in os.walk(SAFE):
                for name in files:
                    full = os.path.join(root, name)
                    zf.write(full, os.path.relpath(full, os.path.dirname(SAFE)))
        rc_a, err_a, out_a = run_one(self.tmp, "folder", SAFE,
                                     "{method: threshold}")
        rc_b, err_b, out_b = run_one(self.tmp, "zipped", z,
                                     "{method: threshold}")
        self.assertEqual(rc_a, 0, err_a)
        self.assertEqual(rc_b, 0, err_b)
        for name in ("ndwi.tif", "mndwi.tif", "valid.tif"):
            _, a = read(os.path.join(out_a, "2021-01-22", name))
            _, b = read(os.path.join(out_b, "2021-01-22", name))
            np.testing.assert_array_equal(a, b)
        with open(os.path.join(out_b, "2021-01-22", "manifest.json")) as f:
            scene = json.load(f)["scenes"][0]
        self.assertEqual(scene["sensor"], "sentinel2_l2a")
        self.assertTrue(all(i["path"].startswith("/vsizip/")
                            for i in scene["inputs"]))
        b03 = [i for i in scene["inputs"] if i["role"] == "green"][0]
        with open(s2_band("B03"), "rb") as f:
            import hashlib
            self.assertEqual(b03["sha256"], hashlib.sha256(f.read()).hexdigest())
        # A member damaged in the middle (its CRC fails): GDAL reports it
        # while reading but its JPEG 2000 driver decoded the bytes without
        # an error, and the scene was used. Now it fails, naming the member.
        with zipfile.ZipFile(z) as zf:
            info = [i for i in zf.infolist() if i.filename.endswith("_B03_10m.jp2")][0]
        with open(z, "r+b") as f:
            f.seek(info.header_offset + 26)
            n, m = struct.unpack("<HH", f.read(4))
            f.seek(info.header_offset + 30 + n + m + info.compress_size // 2)
            f.write(bytes(500))
        rc_c, err_c, out_c = run_one(self.tmp, "damaged", z,
                                     "{method: threshold}")
        self.assertEqual(rc_c, 4, err_c)
        self.assertRegex(err_c, r"_B03_10m\.jp2: damaged: .*(CRC|decompression)")
        self.assertFalse(os.path.exists(os.path.join(out_c, "2021-01-22")))


class QualitySettings(awtest.TempDirTest):
    def test_a_scene_under_the_minimum_valid_fraction_is_skipped(self):
        # 8.1 % of the Landsat scene is valid (the rest cloud, shadow, fill).
        cfg = os.path.join(self.tmp, "min.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: q}\nscenes: [{path: %s}]\n"
                    "quality: {min_valid_fraction: 0.2}\n" % LANDSAT)
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out")])
        self.assertEqual(rc, 0, err)
        self.assertIn("skipped", err)
        out = os.path.join(self.tmp, "out", "q")
        self.assertEqual(sorted(os.listdir(out)),
                         [".aralwatch.lock", "catalog.sqlite", "last_run.json"])
        with open(os.path.join(out, "last_run.json")) as f:
            s = json.load(f)["scenes"][0]
        self.assertEqual(s["status"], "skipped")
        self.assertIn("below quality.min_valid_fraction 0.2000", s["reason"])
        cls = landsat_classes({k: v for k, v in landsat_refl().items()
                               if k in ("green", "swir1", "red", "nir")})
        self.assertAlmostEqual(s["valid_fraction"], (cls == 1).mean(),
                               places=8)

    def test_the_landsat_mask_can_keep_flags(self):
        # Mask only the cloud bit (3): dilated cloud (1) and cirrus (2)
        # pixels without bit 3 become valid, shadow and snow too.
        cfg = os.path.join(self.tmp, "flags.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: f}\nscenes: [{path: %s}]\n"
                    "indices: [ndwi]\nwater: {index: ndwi}\n"
                    "quality: {landsat_mask: [cloud]}\n" % LANDSAT)
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out"), "-q"])
        self.assertEqual(rc, 0, err)
        refl = landsat_refl()
        qa = raw(ls_band("QA_PIXEL")).astype(np.uint16)
        nodata = ((qa & 1) == 1) | np.isnan(refl["green"]) | \
            np.isnan(refl["nir"])
        expect = np.where(nodata, 2, np.where((qa >> 3) & 1 == 1, 3, 1))
        _, got = read(os.path.join(self.tmp, "out", "f", "2019-12-01",
                                   "valid.tif"))
        np.testing.assert_array_equal(got, expect)


class ZoneQuality(awtest.TempDirTest):
    def test_zone_cloud_shadow_and_valid_shares_match_the_qa_bits(self):
        # A zone over the middle of the Landsat scene, in its own CRS.
        src = gdal.Open(ls_band("SR_B3"))
        gt = src.GetGeoTransform()
        x0, x1 = gt[0] + 128 * gt[1], gt[0] + 384 * gt[1]
        y0, y1 = gt[3] + 128 * gt[5], gt[3] + 384 * gt[5]
        zones = os.path.join(self.tmp, "zones.geojson")
        with open(zones, "w") as f:
            json.dump({"type": "FeatureCollection",
                       "crs": {"type": "name", "properties":
                               {"name": "urn:ogc:def:crs:EPSG::32618"}},
                       "features": [{"type": "Feature",
                                     "properties": {"id": "mid"},
                                     "geometry": {"type": "Polygon",
                                                  "coordinates": [[
                                                      [x0, y0], [x1, y0], [x1, y1],
                                                      [x0, y1], [x0, y0]]]}}]}, f)
        cfg = os.path.join(self.tmp, "z.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: z}\nscenes: [{path: %s}]\n"
                    "zones: {file: %s, id_field: id}\n" % (LANDSAT, zones))
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out"), "-q"])
        self.assertEqual(rc, 0, err)
        d = os.path.join(self.tmp, "out", "z", "2019-12-01")
        ds, _ = read(os.path.join(d, "valid.tif"))
        zone = awtest.rasterize(zones, ds)
        refl = {k: v for k, v in landsat_refl().items()
                if k in ("green", "red", "nir", "swir1")}
        cls = landsat_classes(refl)[zone]
        with open(os.path.join(d, "zones.json")) as f:
            z = json.load(f)["zones"][0]
        n = zone.sum()
        observed = (cls != 2).sum()  # shares of the observed part
        self.assertEqual(z["n_pixels"], int(n))
        self.assertAlmostEqual(z["cloud_pct"], 100 * (cls == 3).sum() / observed,
                               places=6)
        self.assertAlmostEqual(z["shadow_pct"],
                               100 * (cls == 4).sum() / observed, places=6)
        self.assertAlmostEqual(z["nodata_pct"], 100 * (cls == 2).sum() / n,
                               places=6)
        self.assertAlmostEqual(z["valid_fraction"], (cls == 1).sum() / n, places=8)
        print("Landsat C2 zone: cloud %.2f %%, shadow %.2f %%, valid %.2f %%"
              % (z["cloud_pct"], z["shadow_pct"], 100 * z["valid_fraction"]))


class WaterClasses(awtest.TempDirTest):
    def test_sentinel2_dswe_water_agrees_with_scl_water(self):
        rc, err, out = run_one(self.tmp, "s2", SAFE, "{method: dswe}")
        self.assertEqual(rc, 0, err)
        refl = s2_refl()
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (refl["green"] - refl["swir1"]) / (refl["green"] + refl["swir1"])
        _, got_m = read(os.path.join(out, "2021-01-22", "mndwi.tif"))
        _, q = read(os.path.join(out, "2021-01-22", "valid.tif"))
        self.assertLessEqual(np.abs(got_m[q == 1] - m[q == 1]).max(), 1e-6)
        _, water = read(os.path.join(out, "2021-01-22", "water.tif"))
        _, valid = read(os.path.join(out, "2021-01-22", "valid.tif"))
        scl = raw(s2_band("SCL"))
        ok = valid == 1
        agree = np.mean(np.isin(water[ok], [1, 2]) == (scl[ok] == 6))
        print("Sentinel-2 coast: DSWE water vs SCL=6 agree on %.4f of %d "
              "valid pixels" % (agree, ok.sum()))
        self.assertGreaterEqual(agree, 0.95)

    def test_desert_is_a_negative_control(self):
        # The 29RKH COG tile (100 m and 200 m bands, no metadata file) is
        # desert: SCL has no water class. The coast scene above is almost
        # all water, so it cannot catch false water; this one can.
        desert = os.path.join(SR, "S2A_29RKH_20200219_0_L2A")
        rc, err, out = run_one(self.tmp, "desert", desert,
                               "{index: mndwi, method: threshold}")
        self.assertEqual(rc, 0, err)
        d = os.path.join(out, "2020-02-19")
        ds, water = read(os.path.join(d, "water.tif"))
        _, valid = read(os.path.join(d, "valid.tif"))
        gt = ds.GetGeoTransform()
        scl = gdal.Warp("", os.path.join(desert, "SCL.tif"), format="MEM",
                        width=ds.RasterXSize, height=ds.RasterYSize,
                        resampleAlg="near",
                        outputBounds=(gt[0], gt[3] + gt[5] * ds.RasterYSize,
                                      gt[0] + gt[1] * ds.RasterXSize, gt[3]))
        scl = scl.ReadAsArray()
        ok = valid == 1
        self.assertEqual(int((scl[ok] == 6).sum()), 0)
        false_water = (water[ok] == 1).mean()
        print("Sentinel-2 desert: MNDWI > 0 water on %.6f of %d valid pixels "
              "(SCL: none)" % (false_water, ok.sum()))
        self.assertLess(false_water, 1e-4)
        # MNDWI from B03 (100 m) and B11 (200 m, bilinear to 100 m by the
        # warp) is not checked pixel by pixel here; the scale is: DN / 1e4
        # with no offset before baseline 04.00 (2020 acquisition).
        with open(os.path.join(d, "manifest.json")) as f:
            scene = json.load(f)["scenes"][0]
        for i in scene["inputs"]:
            if i["role"] != "qa":
                self.assertAlmostEqual(i["scale"], 1e-4, places=12)
                self.assertEqual(i["offset"], 0.0)

    def test_landsat_dswe_equals_a_numpy_dswe(self):
        rc, err, out = run_one(self.tmp, "ls", LANDSAT, "{method: dswe}")
        self.assertEqual(rc, 0, err)
        refl = landsat_refl()
        # MNDWI of the same run against reflectance from the MTL.
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (refl["green"] - refl["swir1"]) / (refl["green"] + refl["swir1"])
        _, got_m = read(os.path.join(out, "2019-12-01", "mndwi.tif"))
        _, q = read(os.path.join(out, "2019-12-01", "valid.tif"))
        ok = q == 1
        self.assertLessEqual(np.abs(got_m[ok] - m[ok]).max(), 1e-6)
        cls = landsat_classes(refl)
        # Whole SR x 10000 from float32 reflectance, as the pipeline has
        # it: DN * 0.275 - 2000 ends in .5 for DN = 20 (mod 40), which
        # float32 puts on either side.
        expect = dswe_numpy(landsat_refl(np.float32))
        expect[np.isin(cls, [3, 4, 5, 6])] = 9
        expect[cls == 2] = 255
        _, got = read(os.path.join(out, "2019-12-01", "water.tif"))
        np.testing.assert_array_equal(got, expect)
        ds = gdal.Open(os.path.join(out, "2019-12-01", "water.tif"))
        # GDAL 3.6's GTiff driver loads the .aux.xml lazily: GetCategoryNames
        # alone does not trigger it, listing the files does (gdalinfo too).
        self.assertIn(".aux.xml", " ".join(ds.GetFileList()))
        band = ds.GetRasterBand(1)
        names = band.GetCategoryNames()
        self.assertEqual(names[1], "water, high confidence")
        self.assertEqual(names[9], "masked: cloud, cloud shadow, snow or other")
        self.assertIsNotNone(band.GetColorTable())
        counts = {c: int((got == c).sum()) for c in (0, 1, 2, 3, 4, 9, 255)}
        print("Landsat C2 DSWE classes:", counts)

    def test_a_dem_filters_dswe_water_on_steep_slopes(self):
        # A DEM on the Landsat grid: a plane rising 0.5 m per m eastwards
        # (50 % slope, facing west) in the west half, flat in the east half.
        # DOMAIN.md §3.2: slope >= 30 % zeroes classes 1-2, >= 20 % class 3,
        # >= 10 % class 4; hillshade <= 110 zeroes any water class. With the
        # scene's sun (azimuth and elevation from the MTL) the plane's
        # hillshade is 255 (cos z cos s + sin z sin s cos(az - 270)), far
        # from 110 either way, so only the slope rule acts.
        src = gdal.Open(ls_band("SR_B3"))
        gt = src.GetGeoTransform()
        w, h = src.RasterXSize, src.RasterYSize
        x = gt[0] + (np.arange(w) + 0.5) * gt[1]
        kink = gt[0] + (w // 2) * gt[1]
        z = np.where(x < kink, 0.5 * (x - kink), 0.0)
        dem = os.path.join(self.tmp, "dem.tif")
        d = gdal.GetDriverByName("GTiff").Create(dem, w, h, 1, gdal.GDT_Float32)
        d.SetGeoTransform(gt)
        d.SetProjection(src.GetProjection())
        d.GetRasterBand(1).WriteArray(np.tile(z, (h, 1)).astype(np.float32))
        d = None
        az, el = mtl_value("SUN_AZIMUTH"), mtl_value("SUN_ELEVATION")
        s, zen = np.arctan(0.5), np.radians(90 - el)
        hill = 255 * (np.cos(zen) * np.cos(s) +
                      np.sin(zen) * np.sin(s) * np.cos(np.radians(az - 270)))
        self.assertGreater(abs(hill - 110), 10)

        rc, err, out0 = run_one(self.tmp, "plain", LANDSAT, "{method: dswe}")
        self.assertEqual(rc, 0, err)
        cfg = os.path.join(self.tmp, "dem.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nregion: {name: dem}\nscenes: [{path: %s}]\n"
                    "water: {method: dswe}\ndem: %s\n" % (LANDSAT, dem))
        rc, _, err = run(["run", "--config", cfg, "--out",
                          os.path.join(self.tmp, "out"), "-q"])
        self.assertEqual(rc, 0, err)
        _, plain = read(os.path.join(out0, "2019-12-01", "water.tif"))
        _, got = read(os.path.join(self.tmp, "out", "dem", "2019-12-01",
                                   "water.tif"))
        expect = plain.copy()
        west = np.zeros(plain.shape, bool)
        west[:, : w // 2 - 2] = True
        steep_water = west & np.isin(plain, [1, 2, 3, 4])
        expect[steep_water] = 0
        if hill < 110:
            expect[np.isin(plain, [1, 2, 3, 4])] = 0
        east = np.zeros(plain.shape, bool)
        east[:, w // 2 + 2:] = True
        certain = west | east
        self.assertGreater(int(steep_water.sum()), 0)
        np.testing.assert_array_equal(got[certain], expect[certain])
        with open(os.path.join(self.tmp, "out", "dem", "2019-12-01",
                               "manifest.json")) as f:
            wa = json.load(f)["water"]
        self.assertTrue(wa["terrain_filter"])
        self.assertAlmostEqual(wa["hillshade_sun_azimuth"], az, places=6)

    def test_landsat_wofs_equals_a_numpy_wofs(self):
        rc, err, out = run_one(self.tmp, "lw", LANDSAT, "{method: wofs}")
        self.assertEqual(rc, 0, err)
        refl = landsat_refl()
        cls = landsat_classes(refl)
        expect = wofs_numpy(refl)
        valid = cls == 1
        _, got = read(os.path.join(out, "2019-12-01", "water.tif"))
        np.testing.assert_array_equal(got[valid], expect[valid])
        np.testing.assert_array_equal(got[~valid], 255)
        _, wofl = read(os.path.join(out, "2019-12-01", "wofl.tif"))
        np.testing.assert_array_equal(wofl[valid], expect[valid] * 128)
        np.testing.assert_array_equal(wofl[cls == 3], 64)
        np.testing.assert_array_equal(wofl[cls == 4], 32)
        np.testing.assert_array_equal(wofl[cls == 2], 1)

    def test_wofs_masks_a_band_outside_0_to_1(self):
        # The Landsat 5 sample's top-of-atmosphere SWIR goes below 0 in
        # places: no observation for WOfS (GA's Collection 2 scaling makes
        # the band nodata). Those pixels passed the tree as WET; now they
        # are masked (valid.tif 6), so the zone counts them as not valid.
        with open(os.path.join(SRC, "configs", "sample.yaml")) as f:
            text = f.read().replace("../", SRC + "/")
        text = text.replace("method: otsu", "method: wofs", 1)
        cfg = os.path.join(self.tmp, "l5w.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", cfg, "--out", out, "-q"])
        self.assertIn(rc, (0, 10), err)
        d = os.path.join(out, "para_reservoir", "1988-08-14")
        import yaml
        scene = yaml.safe_load(text)["scenes"][0]
        ds, valid = read(os.path.join(d, "valid.tif"))
        bad = np.zeros(valid.shape, bool)
        for role, band in scene["bands"].items():
            path = os.path.join(scene["path"], band["file"])
            # The region grid is a window of the scene's (same lattice).
            sgt, ogt = gdal.Open(path).GetGeoTransform(), ds.GetGeoTransform()
            c0 = int(round((ogt[0] - sgt[0]) / sgt[1]))
            r0 = int(round((ogt[3] - sgt[3]) / sgt[5]))
            dn = raw(path)[r0:r0 + valid.shape[0], c0:c0 + valid.shape[1]]
            x = (dn.astype(np.float32) * np.float32(band["scale"]) +
                 np.float32(band["offset"])) * np.float32(10000)
            bad |= ((x < 0) | (x > 10000)) & (dn != 255)
        inside = valid != 0  # in the AOI
        self.assertGreater(int((bad & inside).sum()), 2000)
        np.testing.assert_array_equal(valid[bad & inside], 6)
        _, water = read(os.path.join(d, "water.tif"))
        _, wofl = read(os.path.join(d, "wofl.tif"))
        np.testing.assert_array_equal(water[valid == 1] != 255, True)
        np.testing.assert_array_equal(water[bad & inside], 255)
        np.testing.assert_array_equal(wofl[bad & inside], 2)
        arm = awtest.rasterize(os.path.join(SRC, "sample_rasters", "zones.geojson"),
                               ds, where="zone_id = 'tucurui_arm'")
        with open(os.path.join(d, "zones.json")) as f:
            z = {x["zone_id"]: x for x in json.load(f)["zones"]}
        self.assertEqual(z["tucurui_arm"]["n_valid"], int((valid[arm] == 1).sum()))
        self.assertEqual(z["tucurui_arm"]["n_water"], int((water[arm] == 1).sum()))


if __name__ == "__main__":
    awtest.main()

#!/usr/bin/python3
"""The command line: help, version, exit codes, validate, inspect, bad input
and batch behaviour (one bad scene does not stop the others)."""
import json
import os
import re
import shutil

import awtest
from awtest import SRC, run

SCENE = os.path.join(SRC, "sample_rasters", "landsat5_para")
SAMPLE = os.path.join(SRC, "configs", "sample.yaml")


def scene_yaml(sid, date, folder, extra=""):
    bands = "\n".join(
        "      %s: {file: LT52240631988227CUB02_B%d.TIF, scale: 0.003, offset: -0.01}"
        % (role, b) for role, b in (("green", 2), ("red", 3), ("nir", 4),
                                    ("swir1", 5)))
    return ("  - id: %s\n    date: %s\n    path: %s\n    nodata: 255\n%s"
            "    bands:\n%s\n" % (sid, date, folder, extra, bands))


class Cli(awtest.TempDirTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_help_on_every_command_exits_0(self):
        for args in (["--help"], ["run", "--help"], ["validate", "--help"],
                     ["inspect", "--help"]):
            rc, out, _ = run(args)
            self.assertEqual(rc, 0, args)
            self.assertIn("usage: aralwatch", out)

    def test_version_prints_the_version(self):
        rc, out, _ = run(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^aralwatch \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        for args in ([], ["frobnicate"], ["run"], ["run", "--threads", "x",
                                                  "--config", SAMPLE],
                     ["inspect"], ["validate", "--bogus"]):
            rc, _, err = run(args)
            self.assertEqual(rc, 2, args)
            self.assertIn("usage", err)

    def test_validate_accepts_the_sample(self):
        rc, out, err = run(["validate", "--config", SAMPLE])
        self.assertEqual(rc, 0, err)
        self.assertIn("valid", out)

    def test_bad_config_exits_3_names_file_line_key_and_writes_nothing(self):
        with open(SAMPLE) as f:
            text = f.read()
        text = text.replace(
            "  name: para_reservoir\n", "  name: para_reservoir\n  resolutoin: 30\n")
        text = text.replace("../sample_rasters", SRC + "/sample_rasters")
        line = text.split("\n").index("  resolutoin: 30") + 1
        path = self.write("bad.yaml", text)
        out = os.path.join(self.tmp, "out")
        for cmd in (["validate", "--config", path],
                    ["run", "--config", path, "--out", out]):
            rc, _, err = run(cmd)
            self.assertEqual(rc, 3, err)
            self.assertIn("bad.yaml:%d:" % line, err)
            self.assertIn("region.resolutoin", err)
            self.assertIn("resolution", err)  # did you mean
        self.assertFalse(os.path.exists(out))

    def test_validate_checks_the_zones_and_grid_as_run_does(self):
        # These passed validate and failed run (exit 4 or 3) after it had
        # made the lock and the catalog.
        with open(os.path.join(SRC, "sample_rasters", "zones.geojson")) as f:
            zones = json.load(f)
        zones["features"][1]["properties"]["zone_id"] = \
            zones["features"][0]["properties"]["zone_id"]
        zpath = self.write("zones.geojson", json.dumps(zones))
        zcfg = ("version: 1\nregion: {name: v}\nscenes:\n" +
                scene_yaml("s", "1988-08-14", SCENE) +
                "indices: [mndwi]\nzones: {file: %s, id_field: zone_id}\n" % zpath)
        rc, _, err = run(["validate", "--config", self.write("z.yaml", zcfg)])
        self.assertEqual(rc, 4, err)
        self.assertIn("zone id 'tucurui_arm' appears twice", err)
        tiny = ("version: 1\nregion: {name: v, crs: 'EPSG:32622', "
                "resolution: 0.0001}\nscenes:\n" +
                scene_yaml("s", "1988-08-14", SCENE) + "indices: [mndwi]\n")
        rc, _, err = run(["validate", "--config", self.write("t.yaml", tiny)])
        self.assertEqual(rc, 3, err)
        self.assertIn("region grid would be", err)

    def test_inspect_describes_every_band_of_the_scene_folder(self):
        rc, out, err = run(["inspect", SCENE])
        self.assertEqual(rc, 0, err)
        # The six band files the profile maps (B6, thermal, has no role).
        self.assertEqual(out.count("driver:      GTiff"), 6)
        self.assertIn("EPSG:32622", out)
        self.assertIn("287 x 310 pixels, 1 band(s)", out)
        self.assertIn("resolution:  30 x 30 metre", out)
        self.assertIn("nodata 255", out)
        # Footprint of the crop's upper-left corner: gdalinfo gives
        # 49d55'29.46"W 3d42'37.96"S (to 0.01", i.e. 3e-6 degrees).
        m = re.search(r"UL\((-?[0-9.]+), (-?[0-9.]+)\)", out)
        self.assertAlmostEqual(float(m.group(1)), -(49 + 55 / 60 + 29.46 / 3600), delta=5e-6)
        self.assertAlmostEqual(float(m.group(2)), -(3 + 42 / 60 + 37.96 / 3600), delta=5e-6)
        # The MTL is metadata, not a raster; the folder is recognised as a
        # Landsat 5 Level-1 product of the generic profile.
        self.assertNotIn("_MTL.txt\n  driver", out)
        self.assertIn("sensor:      generic", out)
        self.assertIn("platform:    LANDSAT_5", out)
        self.assertIn("date:        1988-08-14", out)

    def test_inspect_of_a_missing_path_exits_4(self):
        rc, _, err = run(["inspect", os.path.join(self.tmp, "nope.tif")])
        self.assertEqual(rc, 4)
        self.assertIn("nope.tif", err)

    def test_one_corrupt_scene_does_not_stop_the_others(self):
        bad = os.path.join(self.tmp, "bad scene")
        shutil.copytree(SCENE, bad)
        # Truncate one band file: GDAL cannot read it any more.
        b5 = os.path.join(bad, "LT52240631988227CUB02_B5.TIF")
        with open(b5, "r+b") as f:
            f.truncate(200)
        cfg = ("version: 1\nregion: {name: two}\nscenes:\n" +
               scene_yaml("good", "1988-08-14", SCENE) +
               scene_yaml("bad", "1988-08-30", bad) +
               "indices: [mndwi, ndvi]\n")
        path = self.write("two.yaml", cfg)
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", path, "--out", out, "-q"])
        self.assertEqual(rc, 6, err)
        self.assertIn("B5.TIF", err)
        self.assertIn("scene bad failed", err)
        self.assertTrue(os.path.isfile(os.path.join(out, "two", "1988-08-14", "mndwi.tif")))
        self.assertEqual(sorted(os.listdir(os.path.join(out, "two"))),
                         [".aralwatch.lock", "1988-08-14", "catalog.sqlite",
                          "collection.json", "last_run.json"])
        with open(os.path.join(out, "two", "last_run.json")) as f:
            scenes = {s["id"]: s for s in json.load(f)["scenes"]}
        self.assertEqual(scenes["good"]["status"], "used")
        self.assertEqual(scenes["bad"]["status"], "failed")
        self.assertIn("B5.TIF", scenes["bad"]["reason"])

    def test_a_scene_failing_alone_on_its_date_fails_that_date_only(self):
        # B5's header is intact, its pixels cut off: the scene opens and
        # fails in the read pass, the only scene of its date. With zones,
        # this crashed the run (a finished date was assumed); without, the
        # date was marked done and never tried again.
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(SCENE, bad)
        with open(os.path.join(bad, "LT52240631988227CUB02_B5.TIF"), "r+b") as f:
            f.truncate(18000)
        zones = ("zones: {file: %s, id_field: zone_id, name_field: name, "
                 "kind_field: kind}\n"
                 % os.path.join(SRC, "sample_rasters", "zones.geojson"))
        for with_zones in (True, False):
            name = "z" if with_zones else "n"
            cfg = ("version: 1\nregion: {name: %s}\nscenes:\n" % name +
                   scene_yaml("good", "1988-08-14", SCENE) +
                   scene_yaml("bad", "1988-08-30", bad) +
                   scene_yaml("later", "1988-09-15", SCENE) +
                   "indices: [mndwi]\n" + (zones if with_zones else ""))
            path = self.write(name + ".yaml", cfg)
            out = os.path.join(self.tmp, "out")
            rc, _, err = run(["run", "--config", path, "--out", out, "-q"])
            self.assertEqual(rc, 6, err)
            # GDAL's reason, though it failed on one of its decoding
            # threads (its message was lost there).
            self.assertRegex(err, r"B5\.TIF band 1: read failed: \S")
            region = os.path.join(out, name)
            self.assertEqual(sorted(d for d in os.listdir(region)
                                    if d.startswith("1988")),
                             ["1988-08-14", "1988-09-15"])
            with open(os.path.join(region, "last_run.json")) as f:
                scenes = {s["id"]: s["status"] for s in json.load(f)["scenes"]}
            self.assertEqual(scenes, {"good": "used", "bad": "failed",
                                      "later": "used"})
            # Not done: the next run tries the date again (and only it).
            rc, _, err = run(["run", "--config", path, "--out", out, "-q"])
            self.assertEqual(rc, 6, err)
            self.assertIn("B5.TIF", err)
            with open(os.path.join(region, "last_run.json")) as f:
                scenes = {s["id"]: s["status"] for s in json.load(f)["scenes"]}
            self.assertEqual(scenes["bad"], "failed")
            self.assertEqual(set(scenes.values()) - {"failed"}, {"unchanged"})
        # Alone in the run: exit 4 (every scene failed), no date folder.
        path = self.write("alone.yaml", "version: 1\nregion: {name: a}\n"
                          "scenes:\n" + scene_yaml("bad", "1988-08-30", bad) +
                          "indices: [mndwi]\n" + zones)
        rc, _, err = run(["run", "--config", path, "--out", out, "-q"])
        self.assertEqual(rc, 4, err)
        self.assertFalse(os.path.exists(os.path.join(out, "a", "1988-08-30")))

    def test_an_empty_inbox_is_a_night_without_deliveries(self):
        # Exit 0 and a warning, nothing written; it was a config error
        # (exit 3), which would page the operator every quiet night.
        inbox = os.path.join(self.tmp, "inbox")
        os.mkdir(inbox)
        path = self.write("e.yaml", "version: 1\nregion: {name: e}\n"
                          "inbox: [%s]\nindices: [ndwi]\n" % inbox)
        out = os.path.join(self.tmp, "out")
        for junk in (False, True):
            if junk:  # not a product: logged, still nothing to do
                self.write("inbox/readme.txt", "deliveries land here\n")
            rc, _, err = run(["run", "--config", path, "--out", out])
            self.assertEqual(rc, 0, err)
            self.assertIn("no scene in the inbox (%s): nothing to do" % inbox,
                          err)
            self.assertFalse(os.path.exists(out))
        rc, text, err = run(["validate", "--config", path])
        self.assertEqual(rc, 0, err)
        self.assertIn("0 scene(s)", text + err)
        # A baseline from no scene is a mistake, said (it failed on the
        # lock of a region folder never made).
        rc, _, err = run(["baseline", "--config", path, "--out", out,
                          "--from", "2020-01-01", "--to", "2020-12-31"])
        self.assertEqual(rc, 4, err)
        self.assertIn("no scene (the inbox is empty): nothing to build a "
                      "baseline from", err)
        self.assertFalse(os.path.exists(out))
        # Nothing readable in it: said, with the first product's reason.
        self.write("inbox/broken.tif", "not a raster")
        rc, _, err = run(["baseline", "--config", path, "--out", out,
                          "--from", "2020-01-01", "--to", "2020-12-31"])
        self.assertEqual(rc, 4, err)
        self.assertRegex(err, r"no scene to build a baseline from: the inbox "
                         r"holds 1 product\(s\) that cannot be read; the "
                         r"first: .*broken\.tif: cannot open as a raster")
        self.assertFalse(os.path.exists(out))

    def test_all_scenes_bad_exits_4(self):
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(SCENE, bad)
        with open(os.path.join(bad, "LT52240631988227CUB02_B2.TIF"), "wb") as f:
            f.write(b"not a tiff at all")
        path = self.write("one.yaml", "version: 1\nregion: {name: r, crs: 'EPSG:32622', resolution: 30, bbox: [-49.9, -3.75, -49.88, -3.73]}\nscenes:\n" +
                          scene_yaml("bad", "1988-08-14", bad) + "indices: [mndwi]\n")
        out = os.path.join(self.tmp, "out")
        rc, _, err = run(["run", "--config", path, "--out", out, "-q"])
        self.assertEqual(rc, 4, err)
        self.assertIn("B2.TIF", err)
        self.assertFalse(os.path.exists(os.path.join(out, "r", "1988-08-14")))


    def test_log_lines_carry_time_level_stage_and_scene(self):
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(SCENE, bad)
        with open(os.path.join(bad, "LT52240631988227CUB02_B5.TIF"), "r+b") as f:
            f.truncate(200)
        path = self.write("two.yaml", "version: 1\nregion: {name: two}\nscenes:\n" +
                          scene_yaml("good", "1988-08-14", SCENE) +
                          scene_yaml("bad", "1988-08-30", bad) +
                          "indices: [mndwi]\n")
        out = os.path.join(self.tmp, "out")
        # JSON: every line is one object; the scene's lines name it, the
        # last line is the summary with the counts and the time per stage.
        rc, _, err = run(["run", "--config", path, "--out", out,
                          "--log-format", "json"])
        self.assertEqual(rc, 6, err)
        events = [json.loads(line) for line in err.splitlines()]
        for e in events:
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertIn(e["level"], ("error", "warn", "info", "debug"))
            self.assertTrue(e["stage"])
        failed = [e for e in events if e["level"] == "error"
                  and e.get("scene") == "bad"]
        self.assertEqual(len(failed), 1, events)
        self.assertEqual(failed[0]["date"], "1988-08-30")
        self.assertEqual(failed[0]["stage"], "ingest")
        self.assertIn("B5.TIF", failed[0]["message"])
        good = [e for e in events if e.get("scene") == "good"]
        self.assertTrue(good and all(e["date"] == "1988-08-14" for e in good))
        summary = events[-1]
        self.assertEqual(summary["stage"], "summary")
        self.assertEqual((summary["scenes"], summary["used"], summary["failed"],
                          summary["exit_code"]), (2, 1, 1, 6))
        self.assertEqual(list(summary["stage_seconds"]),
                         ["ingest", "mask", "mosaic", "indices", "classify",
                          "zones", "alerts", "write"])
        self.assertGreater(summary["stage_seconds"]["write"], 0)
        self.assertLessEqual(sum(summary["stage_seconds"].values()),
                             summary["seconds"] + 0.01)
        # Text: the same events as "TIME LEVEL [stage date scene] message";
        # the second run finds the good date unchanged.
        rc, _, err = run(["run", "--config", path, "--out", out])
        self.assertEqual(rc, 6, err)
        lines = err.splitlines()
        line_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                             r"(ERROR|WARN |INFO |DEBUG) \[(\w+)( \S+)?( \S+)?\] ")
        for line in lines[:-2]:
            self.assertRegex(line, line_re)
        self.assertTrue(any(re.match(line_re, l) and
                            "[ingest 1988-08-30 bad] " in l for l in lines))
        self.assertIn("1 unchanged", lines[-2])
        self.assertRegex(lines[-1], r"^aralwatch: [\d.]+ s: ingest [\d.]+, mask "
                         r"[\d.]+, mosaic [\d.]+, indices [\d.]+, classify [\d.]+,"
                         r" zones [\d.]+, alerts [\d.]+, write [\d.]+$")
        # A config error in JSON mode is a JSON error event too.
        bad_cfg = self.write("bad.yaml", "version: 1\nregion: {name: x}\n"
                             "scenes: []\nindices: [nope]\n")
        rc, _, err = run(["run", "--config", bad_cfg, "--log-format", "json"])
        self.assertEqual(rc, 3, err)
        events = [json.loads(line) for line in err.splitlines()]
        self.assertTrue(any("bad.yaml:4: indices" in e["message"] for e in events),
                        events)


if __name__ == "__main__":
    awtest.main()

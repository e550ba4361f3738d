"""Monitoring over time on a synthetic archive with known truth.

tools/make_archive.py makes five years (2019-2023) of 16-day scenes of a
small region: a reservoir that shrinks steadily in 2023, a floodplain lake
that floods in May-June 2023, an irrigated district that suffers a drought
in June-August 2023, a control reservoir and a control cropland that only
follow their seasonal cycle, and clouds on some dates (some fully cloudy).
Its truth.json holds the true areas and the dates of the events.

`aralwatch baseline` is built over 2019-2022, then `aralwatch run` does
2023. The tests check:
- the baseline rasters against an independent NumPy computation from the
  per-date products (per-year monthly mean NDVI, then min/max/median/mean/
  std/years; water frequency = wet/clear);
- the zone baselines against the generator's true medians;
- every alert at the right level on the right date (the truth's first
  observation past the threshold, or the next one: persistence is 2), a
  cancel after the flood, nothing at all for the controls, supersedes
  chains;
- forecasts issued before a crossing bracket the true crossing date, and
  the controls get none;
- the change rasters: new water on the flood's date is the flood's area.
"""
import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

import awtest

BIN = awtest.BIN
EPOCH = datetime.date(1970, 1, 1)
SRC = awtest.SRC

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "monitoring_sections.yaml")) as f:
    SECTIONS = "\n" + f.read()


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="aw-mon-")
        arch = os.path.join(cls.tmp, "archive")
        subprocess.run([sys.executable,
                        os.path.join(SRC, "tools", "make_archive.py"), arch],
                       check=True, capture_output=True)
        with open(os.path.join(arch, "truth.json")) as f:
            cls.truth = json.load(f)
        cls.cfg = os.path.join(arch, "monitor.yaml")
        with open(os.path.join(arch, "archive.yaml")) as f:
            text = f.read()
        # CAP 1.2 messages too (outputs.cap), and the mosaic's reflectance
        # for the report's true colour quicklook.
        assert "outputs: {dir: out}" in text
        text = text.replace(
            "outputs: {dir: out}",
            "outputs: {dir: out, cap: true, rasters: [ndwi, mndwi, ndvi, "
            "water, valid, source, rgb]}")
        with open(cls.cfg, "w") as f:
            f.write(text + SECTIONS)
        cls.out = os.path.join(cls.tmp, "out")
        cls.rc_base = run(["baseline", "--config", cls.cfg, "--out", cls.out,
                           "-q"])
        cls.rc_run = run(["run", "--config", cls.cfg, "--out", cls.out, "-q"])
        cls.region = os.path.join(cls.out, "synthetic")
        cls.db = sqlite3.connect(os.path.join(cls.region, "catalog.sqlite"))
        cls.dates = [d["date"] for d in cls.truth["dates"]]

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def next_obs(self, date):
        """The observation date after `date` (persistence 2 confirms
        there)."""
        i = self.dates.index(date)
        # skip fully cloudy dates: they cannot confirm anything
        for d in self.truth["dates"][i + 1:]:
            if d["clear_fraction"] > 0.5:
                return d["date"]
        return None

    def records(self, zone=None, rule=None):
        q = "SELECT date, zone_id, rule_id, level, record FROM alerts"
        rows = [(d, z, r, lv, json.loads(rec))
                for d, z, r, lv, rec in self.db.execute(q + " ORDER BY date")]
        return [x for x in rows if (zone is None or x[1] == zone) and
                (rule is None or x[2] == rule)]

    def test_commands_succeed(self):
        self.assertEqual(self.rc_base[0], 0, self.rc_base[2])
        self.assertEqual(self.rc_run[0], 10, self.rc_run[2])

    def ndvi_at(self, centre):
        """Independent NDVI at a day number: linear in time between the
        last clear observation before it and the first after (each within
        32 days), or the only one within 16 days (README "Baseline")."""
        import numpy as np
        tb = vb = ta = va = None
        for d in self.truth["dates"]:
            t = (datetime.date.fromisoformat(d["date"]) - EPOCH).days - centre
            if abs(t) > 32 or d["date"] > "2022-12-31":
                continue
            ddir = os.path.join(self.region, d["date"])
            _, w = awtest.read(os.path.join(ddir, "water.tif"))
            _, v = awtest.read(os.path.join(ddir, "ndvi.tif"))
            good = np.isin(w, (0, 1)) & np.isfinite(v)
            if tb is None:
                tb, vb, ta, va = (np.full(v.shape, np.nan) for _ in range(4))
            if t <= 0:
                tb = np.where(good, t, tb)
                vb = np.where(good, v, vb)
            if t >= 0:
                first = good & np.isnan(ta)
                ta = np.where(first, t, ta)
                va = np.where(first, v, va)
        with np.errstate(invalid="ignore", divide="ignore"):
            both = np.isfinite(tb) & np.isfinite(ta)
            span = np.where(ta > tb, ta - tb, 1.0)
            inter = np.where(ta > tb, vb + (va - vb) * (-tb) / span, vb)
            out = np.where(both, inter, np.nan)
            out = np.where(~both & np.isfinite(tb) & (-tb <= 16), vb, out)
            out = np.where(~both & np.isfinite(ta) & (ta <= 16), va, out)
        return out

    def test_baseline_pixels_equal_an_independent_computation(self):
        import numpy as np
        for month in ("05", "07"):
            per_year = {}
            clear = wet = None
            for d in self.truth["dates"]:
                if not d["baseline"] or d["date"][5:7] != month:
                    continue
                ddir = os.path.join(self.region, d["date"])
                _, w = awtest.read(os.path.join(ddir, "water.tif"))
                w = w.astype(np.float64)
                ok = np.isin(w, (0, 1))
                c = ok.astype(np.float64)
                clear = c if clear is None else clear + c
                wt = (w == 1).astype(np.float64)
                wet = wt if wet is None else wet + wt
                if d["year"] not in per_year:
                    # the centre of the month: (first day + last day) / 2
                    y, m = d["year"], int(month)
                    first = datetime.date(y, m, 1)
                    last = (datetime.date(y + (m == 12), m % 12 + 1, 1) -
                            datetime.timedelta(days=1))
                    centre = ((first - EPOCH).days + (last - EPOCH).days) / 2
                    per_year[d["year"]] = self.ndvi_at(centre)
            with np.errstate(invalid="ignore", divide="ignore"):
                stack = np.stack(list(per_year.values()))
                nyears = np.isfinite(stack).sum(axis=0)
                enough = nyears >= 3
                ref = {
                    "ndvi_min": np.nanmin(stack, axis=0),
                    "ndvi_max": np.nanmax(stack, axis=0),
                    "ndvi_median": np.nanmedian(stack, axis=0),
                    "ndvi_mean": np.nanmean(stack, axis=0),
                    "ndvi_std": np.nanstd(stack, axis=0, ddof=1),
                }
                freq = np.where(clear > 0, wet / clear, np.nan)
            bdir = os.path.join(self.region, "baseline", "m" + month)
            _, got = awtest.read(os.path.join(bdir, "ndvi_years.tif"))
            np.testing.assert_array_equal(got, nyears)
            for name, r in ref.items():
                _, got = awtest.read(os.path.join(bdir, name + ".tif"))
                r = np.where(enough, r, np.nan)
                np.testing.assert_allclose(got, r, rtol=1e-5, atol=2e-6,
                                           equal_nan=True, err_msg=name)
            _, got = awtest.read(os.path.join(bdir, "frequency.tif"))
            np.testing.assert_allclose(got, freq, rtol=1e-6, atol=1e-7,
                                       equal_nan=True)
            _, got = awtest.read(os.path.join(bdir, "clear_count.tif"))
            np.testing.assert_array_equal(got, clear)

    def test_zone_baseline_medians_match_the_truth(self):
        for zone in ("shrinking_res", "control_res", "flood_lake"):
            for month, true in self.truth["baseline_median_km2"][zone].items():
                row = self.db.execute(
                    "SELECT median FROM zone_baseline WHERE period = ? AND "
                    "zone_id = ? AND metric = 'water_filled_km2'",
                    ("m" + month, zone)).fetchone()
                self.assertIsNotNone(row, (zone, month))
                self.assertAlmostEqual(row[0], true, delta=0.03 * true,
                                       msg=(zone, month))

    def test_controls_raise_nothing(self):
        for zone in ("control_res", "control_crop"):
            self.assertEqual(self.records(zone), [], zone)
            n = self.db.execute("SELECT count(*) FROM forecasts WHERE "
                                "zone_id = ?", (zone,)).fetchone()[0]
            self.assertEqual(n, 0, zone)

    def assert_on(self, date, truth_date, what):
        ok = (truth_date, self.next_obs(truth_date))
        self.assertIn(date, ok, "%s on %s, truth %s" % (what, date, ok))

    def test_the_shrinking_reservoir_escalates_on_the_right_dates(self):
        recs = self.records("shrinking_res", "reservoir_low")
        ev = self.truth["events"]
        levels = [(d, a["status"], lv) for d, _, _, lv, a in recs]
        self.assertEqual([x[1:] for x in levels],
                         [("new", "watch"), ("update", "warning"),
                          ("update", "alert")], levels)
        for (d, _, _), key in zip(levels, ("80", "65", "50")):
            self.assert_on(d, ev["shrinking_res_below_" + key]
                           ["first_observation"], "below " + key)
        # One episode: each record supersedes the one before.
        ids = [a["alert_id"] for *_, a in recs]
        self.assertIsNone(recs[0][4]["supersedes"])
        for prev, (_, _, _, _, a) in zip(ids, recs[1:]):
            self.assertEqual(a["supersedes"], prev)
        for *_, a in recs:
            self.assertEqual(a["tendency"]["direction"], "worsening")
            self.assertEqual(a["onset"], recs[0][0])

    def test_the_flood_raises_an_alert_then_an_all_clear(self):
        ev = self.truth["events"]["flood"]
        recs = self.records("flood_lake", "flood")
        self.assertEqual([(a["status"], lv) for *_, lv, a in recs],
                         [("new", "alert"), ("cancel", "none")], recs)
        self.assert_on(recs[0][0], ev["first_observation"], "flood")
        self.assert_on(recs[1][0], ev["first_after"], "all clear")
        self.assertEqual(recs[1][4]["supersedes"], recs[0][4]["alert_id"])
        # New water on the alert's date is the flood minus the lake.
        area = recs[0][4]["metric"]["value"]
        true = ev["area_km2"] - ev["normal_area_km2"]
        self.assertAlmostEqual(area, true, delta=0.05 * true)
        # The lake's own pct-of-median rule stays quiet: a flood is more
        # water, not less.
        self.assertEqual(self.records("flood_lake", "reservoir_low"), [])

    def test_the_drought_raises_crop_stress(self):
        ev = self.truth["events"]["drought"]
        recs = self.records("crop_district", "crop_stress")
        self.assertTrue(recs, "no crop stress record")
        d, _, _, lv, a = recs[0]
        self.assertEqual(a["status"], "new")
        self.assert_on(d, ev["first_observation"], "drought")
        self.assertEqual(lv, "alert")
        # The episode ends with the growing season (no cropland in season
        # is no stressed cropland), after the drought, before the year's
        # end; nothing else in between.
        self.assertEqual([x[4]["status"] for x in recs], ["new", "cancel"])
        self.assertGreater(recs[1][0], ev["last_observation"])
        self.assertEqual(recs[1][4]["supersedes"], a["alert_id"])

    def test_water_change_raster_shows_the_flood(self):
        import numpy as np
        d = self.truth["events"]["flood"]["first_observation"]
        ds, ch = awtest.read(os.path.join(self.region, d,
                                          "water_change.tif"))
        px = abs(ds.GetGeoTransform()[1] * ds.GetGeoTransform()[5]) * 1e-6
        ev = self.truth["events"]["flood"]
        new_km2 = float((ch == 2).sum()) * px
        true = ev["area_km2"] - ev["normal_area_km2"]
        self.assertAlmostEqual(new_km2, true, delta=0.05 * true)
        for name in ("vci.tif", "ndvi_anomaly.tif", "ndvi_diff.tif"):
            self.assertTrue(os.path.exists(os.path.join(self.region, d,
                                                        name)), name)

    def test_forecasts_bracket_the_true_crossings(self):
        ev = self.truth["events"]
        checked = 0
        for level, key in (("warning", "65"), ("alert", "50")):
            cross = ev["shrinking_res_below_" + key]["crossing_date"]
            rows = self.db.execute(
                "SELECT date, record FROM forecasts WHERE zone_id = "
                "'shrinking_res' AND rule_id = 'reservoir_low' AND level = ?"
                " AND date < ? ORDER BY date", (level, cross)).fetchall()
            self.assertTrue(rows, "no %s forecast before %s" % (level, cross))
            for d, rec in rows:
                f = json.loads(rec)
                lo = f["earliest"] or "0000-00-00"
                hi = f["latest"] or "9999-99-99"
                self.assertLessEqual(lo, cross, (d, f))
                self.assertGreaterEqual(hi, cross, (d, f))
                checked += 1
        self.assertGreater(checked, 3)

    def test_the_report_shows_the_alerts_in_force_and_every_zone(self):
        with open(os.path.join(self.region, "report.json")) as f:
            rep = json.load(f)
        # The run did all of 2023: the report holds every record it
        # issued (the catalog's), and the alert still in force at its end:
        # the reservoir at alert level (the drought's ended with the
        # season).
        ids = sorted(a["alert_id"] for a in rep["alerts"])
        self.assertEqual(ids, sorted(a["alert_id"] for *_, a in
                                     self.records()))
        self.assertEqual(rep["zones"][0]["zone_id"], "shrinking_res")
        levels = {z["zone_id"]: z["level"] for z in rep["zones"]}
        self.assertEqual(levels, {"shrinking_res": "alert",
                                  "control_res": "none",
                                  "flood_lake": "none",
                                  "crop_district": "none",
                                  "control_crop": "none"})
        self.assertEqual(sorted(z["zone_id"] for z in rep["zones"]),
                         sorted(self.truth["zones"]))
        res = [z for z in rep["zones"] if z["zone_id"] == "shrinking_res"][0]
        pct = [s for s in res["series"]
               if s["metric"] == "water_area_pct_median"][0]
        self.assertEqual(pct["levels"], {"watch": 80, "warning": 65,
                                         "alert": 50})
        # The chart starts where the baseline does: 2023.
        self.assertTrue(pct["points"][0][0].startswith("2023"))
        self.assertTrue(all(b[2] == 100.0 for b in pct["baseline"]))
        for q in rep["quicklooks"]:
            self.assertTrue(os.path.exists(os.path.join(self.region,
                                                        q["path"])), q)
        self.assertEqual([q["path"] for q in rep["quicklooks"]],
                         ["quicklooks/rgb.png", "quicklooks/water.png",
                          "quicklooks/water_change.png",
                          "quicklooks/vci.png"])
        with open(os.path.join(self.region, "report.html"),
                  encoding="utf-8") as f:
            html = f.read()
        for z in self.truth["zones"].values():
            self.assertIn(z["name"], html)
        self.assertNotIn('src="http', html)
        self.assertEqual(html.count("<img"), html.count('src="data:image/'))

    def test_cap_messages_and_geojson_follow_the_records(self):
        import xml.etree.ElementTree as ET
        ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
        recs = self.records("shrinking_res", "reservoir_low")
        for d, _, _, lv, a in recs:
            path = os.path.join(self.region, d, "cap", a["alert_id"] + ".xml")
            root = ET.parse(path).getroot()
            self.assertEqual(root.tag, "{%s}alert" % ns["c"])
            get = lambda k: root.find("c:" + k, ns).text  # noqa: E731
            self.assertEqual(get("identifier"), a["alert_id"])
            self.assertEqual(get("msgType"), {"new": "Alert", "update":
                                              "Update"}[a["status"]])
            self.assertEqual(get("status"), "Actual")
            info = root.find("c:info", ns)
            self.assertEqual(info.find("c:severity", ns).text, a["severity"])
            self.assertEqual(info.find("c:event", ns).text, "water_shrinkage")
            poly = info.find("c:area/c:polygon", ns).text.split()
            self.assertEqual(poly[0], poly[-1])  # closed, lat,lon pairs
            lat, lon = (float(x) for x in poly[0].split(","))
            self.assertTrue(44 < lat < 46 and 57 < lon < 60, poly[0])
            if a["supersedes"]:
                ref = root.find("c:references", ns).text.split(",")
                self.assertEqual(ref[:2], ["aralwatch@synthetic",
                                           a["supersedes"]])
            else:
                self.assertIsNone(root.find("c:references", ns))
            with open(os.path.join(self.region, d, "alerts.geojson")) as f:
                fc = json.load(f)
            ids = [f["properties"]["alert_id"] for f in fc["features"]]
            self.assertIn(a["alert_id"], ids)
            feat = fc["features"][ids.index(a["alert_id"])]
            self.assertEqual(feat["geometry"]["type"], "Polygon")
            xs = [c[0] for c in feat["geometry"]["coordinates"][0]]
            bb = a["geometry_bbox"]
            self.assertTrue(bb[0] - 1e-6 <= min(xs) and max(xs) <= bb[2] +
                            1e-6, (bb, min(xs), max(xs)))

    def test_zz_the_baseline_is_updated_incrementally(self):
        # Runs last (alphabetical order): it changes the baseline.
        # The same range again: nothing to summarise.
        rc, _, err = run(["baseline", "--config", self.cfg, "--out",
                          self.out])
        self.assertEqual(rc, 0, err)
        self.assertIn("0 yearly summaries built, 48 unchanged", err)
        # One more year: its 12 months, and December 2022, whose NDVI
        # window now reaches January 2023's dates; nothing else.
        rc, _, err = run(["baseline", "--config", self.cfg, "--out",
                          self.out, "--to", "2023-12-31"])
        self.assertEqual(rc, 0, err)
        self.assertIn("13 yearly summaries built, 47 unchanged", err)
        _, years = awtest.read(os.path.join(self.region, "baseline", "m07",
                                            "ndvi_years.tif"))
        self.assertEqual(int(years.max()), 5)

    def test_an_all_cloud_date_gives_insufficient_data(self):
        cloudy = [d["date"] for d in self.truth["dates"]
                  if d["year"] == 2023 and d["clear_fraction"] == 0]
        self.assertTrue(cloudy)
        with open(os.path.join(self.region, cloudy[0], "alerts.json")) as f:
            doc = json.load(f)
        # Every rule in every zone it applies to says so; nothing is
        # issued, and the levels held are kept (listed as active).
        self.assertEqual(doc["alerts"], [])
        got = {(n["zone_id"], n["rule_id"]) for n in doc["notices"]}
        self.assertEqual(len(got), 3 * 2 + 1 * 2, got)
        self.assertTrue(all(n["status"] == "insufficient_data"
                            for n in doc["notices"]))
        # qa_mask's cloud list: the zones are reported 100 % cloud, not
        # "masked (other)".
        import csv
        with open(os.path.join(self.region, cloudy[0], "zones.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 5)
        for r in rows:
            self.assertEqual(float(r["cloud_pct"]), 100.0, r)
            self.assertEqual(float(r["valid_fraction"]), 0.0, r)


class Config(unittest.TestCase):
    """The baseline, forecast and history keys are checked like the rest."""

    def test_bad_baseline_and_forecast_keys_are_named(self):
        tmp = tempfile.mkdtemp(prefix="aw-mon-cfg-")
        try:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write(
                    "version: 1\nregion: {name: r}\n"
                    "scenes: [{date: 2020-01-01, path: %s}]\n"
                    "baseline: {period: week, from: 2022-01-01, "
                    "to: 2021-01-01, min_years: 0, stress_vci: 120}\n"
                    "forecast: {alpha: 0.7, observations: 5, "
                    "min_observations: 9}\n"
                    "alerts:\n  persistence: 0\n  rules:\n"
                    "    - {id: r1, type: custom, metric: mean_vci, "
                    "when: below, watch: 35}\n"
                    % os.path.join(SRC, "sample_rasters", "landsat5_para"))
            rc, _, err = run(["validate", "--config", cfg])
            self.assertEqual(rc, 3, err)
            for key, what in (("baseline.period", "week"),
                              ("baseline.to", "before baseline.from"),
                              ("baseline.min_years", "between 1 and 64"),
                              ("baseline.stress_vci", "between 0 and 100"),
                              ("forecast.alpha", "between 0 and 0.5"),
                              ("forecast", "min_observations (9) is more"),
                              ("alerts.persistence", "between 1 and 100")):
                self.assertRegex(err, r"c\.yaml:\d+: %s: .*%s" %
                                 (re.escape(key), re.escape(what)), err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class BaselineBadInput(unittest.TestCase):
    """`aralwatch baseline` refuses what it cannot do, naming why."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="aw-mon-bad-")
        with open(os.path.join(SRC, "configs", "sample.yaml")) as f:
            self.text = f.read().replace("../", SRC + "/")
        self.out = os.path.join(self.tmp, "out")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cfg(self, extra="", text=None):
        path = os.path.join(self.tmp, "c.yaml")
        with open(path, "w") as f:
            f.write((text or self.text) + extra)
        return path

    def test_a_missing_or_reversed_range_is_a_usage_error(self):
        rc, _, err = run(["baseline", "--config", self.cfg(), "-q"])
        self.assertEqual(rc, 2, err)
        self.assertIn("needs a date range", err)
        rc, _, err = run(["baseline", "--config", self.cfg(), "--from",
                          "2001-01-01", "--to", "2000-01-01", "-q"])
        self.assertEqual(rc, 2, err)
        self.assertIn("after --to", err)
        rc, _, err = run(["baseline", "--config", self.cfg(), "--from",
                          "2001/01/01", "--to", "2002-01-01", "-q"])
        self.assertEqual(rc, 2, err)
        self.assertIn("--from takes YYYY-MM-DD", err)

    def test_a_range_without_any_date_says_so(self):
        rc, _, err = run(["baseline", "--config", self.cfg(), "--from",
                          "2000-01-01", "--to", "2001-01-01", "--out",
                          self.out, "-q"])
        self.assertEqual(rc, 4, err)
        self.assertIn("no date between 2000-01-01 and 2001-01-01", err)

    def test_per_date_grids_cannot_have_a_baseline(self):
        text = self.text.replace("  aoi: ", "  grid: per_date\n  aoi: ")
        # per_date does not go with an AOI: drop it, keep the scene's grid.
        text = "\n".join(l for l in text.splitlines()
                         if not l.startswith("  aoi: "))
        rc, _, err = run(["baseline", "--config", self.cfg(text=text),
                          "--from", "1988-01-01", "--to", "1988-12-31",
                          "--out", self.out, "-q"])
        self.assertEqual(rc, 3, err)
        self.assertIn("region.grid: per_date", err)

    def test_a_baseline_of_another_grid_is_named_not_used(self):
        # Built on the AOI's grid, then the region changes (a bbox): the
        # date fails naming the baseline raster and what to do.
        extra = "\nbaseline: {from: 1988-01-01, to: 1988-12-31, min_years: 1}\n"
        rc, _, err = run(["baseline", "--config", self.cfg(extra), "--out",
                          self.out, "-q"])
        self.assertIn(rc, (0, 10), err)  # the sample's alert: 10
        text = self.text.replace(
            "  aoi: " + SRC + "/sample_rasters/aoi.geojson",
            "  bbox: [620000, -418000, 626000, -412000]\n"
            "  bbox_crs: EPSG:32622")
        self.assertNotEqual(text, self.text)
        rc, _, err = run(["reprocess", "--config", self.cfg(extra, text),
                          "--since", "1988-01-01", "--out", self.out, "-q"])
        self.assertEqual(rc, 4, err)
        self.assertRegex(err, r"baseline/m08/frequency\.tif: not on the "
                         r"region grid .*rebuild it")


if __name__ == "__main__":
    unittest.main(verbosity=2)

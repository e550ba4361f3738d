#!/usr/bin/python3
"""report.html: `aralwatch report --data FILE.json --out FILE.html`.

Runs the command on tests/data/report/fixture.json (three zones, four
alerts in shuffled order, a notice, a forecast, series with gaps and a
baseline band, quicklooks drawn here with GDAL) and checks the page with
Python's own HTML parser, independently of aralwatch: alerts in severity
order, a section and a chart per zone, nothing fetched from the network,
images embedded as data: URIs, balanced tags, escaping, and a chart point
at the pixel its axis says. Then renders the page with headless Chromium
and checks the screenshot is not blank (skipped when chromium is not
installed). Also: an empty document gives a valid page; nulls everywhere
are tolerated; a malformed document exits 4 naming the file and writes
nothing."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from html.parser import HTMLParser

import numpy as np
from osgeo import gdal

import awtest
from awtest import SRC, run

FIXTURE = os.path.join(SRC, "tests", "data", "report", "fixture.json")
RANK = {"alert": 3, "warning": 2, "watch": 1}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects what the tests look at; records tag-nesting errors."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []       # open elements: [tag, attrs, text parts]
        self.errors = []
        self.cards = []       # data-level of alert cards, in page order
        self.zones = {}       # data-zone-id -> number of <svg> inside
        self.imgs = []        # src of every <img>
        self.charts = []      # {attrs, circles, polylines, yticks}
        self.text = []        # all text
        self.titles = []
        self.counts = {}

    def _attr(self, attrs):
        return {k: (v if v is not None else "") for k, v in attrs}

    def _inside(self, tag):
        return next((e for e in reversed(self.stack) if e[0] == tag), None)

    def handle_starttag(self, tag, attrs):
        a = self._attr(attrs)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "article" and "card" in a.get("class", "").split() \
                and "c-forecast" not in a.get("class", ""):
            self.cards.append(a.get("data-level"))
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "svg" and "chart" in a.get("class", "").split():
            self.charts.append({"attrs": a, "circles": [], "polylines": [],
                                "yticks": [], "zone": None})
            sec = self._inside("section")
            if sec is not None and "data-zone-id" in sec[1]:
                zid = sec[1]["data-zone-id"]
                self.zones[zid] = self.zones.get(zid, 0) + 1
                self.charts[-1]["zone"] = zid
        if tag == "section" and "data-zone-id" in a:
            self.zones.setdefault(a["data-zone-id"], 0)
        if self.charts and self._inside("svg") is not None:
            chart = self.charts[-1]
            if tag == "circle":
                chart["circles"].append(a)
            elif tag == "text" and "data-value" in a:
                chart["yticks"].append(a)
        if tag not in VOID:
            self.stack.append([tag, a, []])

    def handle_startendtag(self, tag, attrs):
        a = self._attr(attrs)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if self.charts and self._inside("svg") is not None:
            if tag == "polyline":
                self.charts[-1]["polylines"].append(a)
            elif tag == "circle":
                self.charts[-1]["circles"].append(a)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append("</%s> closes <%s>" % (
                tag, self.stack[-1][0] if self.stack else "nothing"))
            # recover: pop up to the matching tag if there is one
            for i in range(len(self.stack) - 1, -1, -1):
                if self.stack[i][0] == tag:
                    del self.stack[i:]
                    break
            return
        el = self.stack.pop()
        if tag == "title":
            self.titles.append("".join(el[2]))

    def handle_data(self, data):
        self.text.append(data)
        if self.stack:
            self.stack[-1][2].append(data)


def parse(path):
    with open(path, encoding="utf-8") as f:
        html = f.read()
    p = Page()
    p.feed(html)
    p.close()
    return html, p


def make_png(path, bands):
    """A PNG from a list of 2-D uint8 arrays (1, 3 or 4 bands)."""
    h, w = bands[0].shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, len(bands), gdal.GDT_Byte)
    for i, b in enumerate(bands):
        mem.GetRasterBand(i + 1).WriteArray(b)
    gdal.GetDriverByName("PNG").CreateCopy(path, mem)
    mem = None


def make_quicklooks(folder):
    os.makedirs(folder, exist_ok=True)
    y, x = np.mgrid[0:48, 0:64]
    r = (x * 4).astype(np.uint8)
    g = (y * 5).astype(np.uint8)
    b = ((x + y) * 2).astype(np.uint8)
    make_png(os.path.join(folder, "rgb.png"), [r, g, b])
    a = np.full((48, 64), 255, np.uint8)
    a[:8, :8] = 0
    make_png(os.path.join(folder, "vci.png"),
             [(140 - x).astype(np.uint8), (81 + x).astype(np.uint8),
              np.full((48, 64), 40, np.uint8), a])
    make_png(os.path.join(folder, "water.png"),
             [np.where(x < 32, 30, 230).astype(np.uint8),
              np.where(x < 32, 90, 220).astype(np.uint8),
              np.where(x < 32, 200, 190).astype(np.uint8)])


def find_chromium():
    for c in ("/usr/bin/chromium", shutil.which("chromium") or "",
              shutil.which("chromium-browser") or ""):
        if c and os.access(c, os.X_OK):
            return c
    return None


class ReportTest(awtest.TempDirTest):
    @classmethod
    def setUpClass(cls):
        """One rendering of the fixture with its quicklooks, shared by the
        read-only checks."""
        cls.work = tempfile.mkdtemp(prefix="aw-report-")
        shutil.copy(FIXTURE, os.path.join(cls.work, "fixture.json"))
        make_quicklooks(os.path.join(cls.work, "quicklooks"))
        cls.out = os.path.join(cls.work, "out", "report.html")
        os.makedirs(os.path.dirname(cls.out))
        cls.rc, _, cls.err = run(["report", "--data",
                                  os.path.join(cls.work, "fixture.json"),
                                  "--out", cls.out])
        with open(FIXTURE, encoding="utf-8") as f:
            cls.doc = json.load(f)
        cls.html, cls.page = (parse(cls.out) if os.path.exists(cls.out)
                              else ("", None))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_command_succeeds_and_leaves_only_the_page(self):
        self.assertEqual(self.rc, 0, self.err)
        self.assertEqual(os.listdir(os.path.dirname(self.out)), ["report.html"])

    def test_alerts_come_in_severity_order(self):
        levels = self.page.cards
        self.assertEqual(len(levels), len(self.doc["alerts"]))
        self.assertEqual(sorted(levels), sorted(a["level"] for a in self.doc["alerts"]))
        ranks = [RANK[lv] for lv in levels]
        self.assertEqual(ranks, sorted(ranks, reverse=True), levels)
        # the fixture has them shuffled, so this is not a coincidence
        fixture_ranks = [RANK[a["level"]] for a in self.doc["alerts"]]
        self.assertNotEqual(fixture_ranks, sorted(fixture_ranks, reverse=True))
        # alerts first: before notices, forecasts and zones
        order = [self.html.index('id="%s"' % s)
                 for s in ("alerts", "notices", "forecasts", "zones")]
        self.assertEqual(order, sorted(order))
        self.assertIn("Forecast, not an alert", self.html)
        self.assertIn("2023-11-30", self.html)
        self.assertIn("between 2023-11-10 and 2024-01-20", self.html)

    def test_every_zone_has_a_section_with_a_chart(self):
        for z in self.doc["zones"]:
            zid = z["zone_id"]
            self.assertIn(zid, self.page.zones, zid)
            self.assertEqual(self.page.zones[zid], len(z["series"]), zid)

    def test_nothing_is_fetched_from_the_network(self):
        for m in re.finditer(r"https?://[^\s\"'<>)]*", self.html):
            self.assertEqual(m.group(0), "http://www.w3.org/2000/svg",
                             "network reference: " + m.group(0))
            before = self.html[max(0, m.start() - 7):m.start()]
            self.assertEqual(before, 'xmlns="', before)
        self.assertNotRegex(self.html, r"(?i)(src|href)\s*=\s*[\"']?\s*(//|https?:)")
        self.assertNotRegex(self.html, r"(?i)url\(\s*[\"']?\s*(//|https?:)")
        self.assertNotIn("@import", self.html)
        self.assertNotIn("<script", self.html)
        self.assertNotIn("<link", self.html)

    def test_images_are_embedded_pngs(self):
        self.assertEqual(len(self.page.imgs), 3)
        for src in self.page.imgs:
            self.assertTrue(src.startswith("data:image/png;base64,"), src[:40])
            raw = base64.b64decode(src.split(",", 1)[1], validate=True)
            self.assertEqual(raw[:8], b"\x89PNG\r\n\x1a\n")
        # the VCI legend is an inline SVG gradient with tick labels
        m = re.search(r'<svg class="ramp".*?</svg>', self.html, re.S)
        self.assertIsNotNone(m)
        legend = m.group(0)
        self.assertIn('<linearGradient id="ramp-1"', legend)
        self.assertIn('fill="url(#ramp-1)"', legend)
        self.assertEqual(legend.count("<stop "), 5)
        ticks = re.findall(r"<text [^>]*>([-0-9.]+)</text>", legend)
        self.assertGreaterEqual(len(ticks), 3)
        self.assertEqual((ticks[0], ticks[-1]), ("0", "100"))

    def test_page_is_well_formed(self):
        self.assertTrue(self.html.startswith("<!DOCTYPE html>"))
        self.assertEqual(self.page.errors, [])
        self.assertEqual(self.page.stack, [])
        for tag in ("html", "head", "body", "header", "main", "footer"):
            self.assertEqual(self.page.counts.get(tag), 1, tag)

    def test_strings_are_escaped(self):
        evil = self.doc["zones"][2]["zone_name"]
        self.assertIn("<script>", evil)
        text = "".join(self.page.text)
        self.assertIn(evil, text)  # shown as text
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
                      "&amp; &quot;Lake&quot; &#39;B&#39;", self.html)
        # the headline with "&" too
        self.assertIn("below 2000 km² &amp; falling", self.html)

    def test_chart_points_land_on_their_axis(self):
        charts = [c for c in self.page.charts if c["zone"] == "aral_north"]
        self.assertEqual(len(charts), 2)
        c = charts[0]
        left, top, right, bottom = map(float, c["attrs"]["data-plot"].split())
        ymin, ymax = map(float, c["attrs"]["data-y-domain"].split())
        d0, d1 = c["attrs"]["data-x-domain"].split()
        x0, x1 = map(float, c["attrs"]["data-x-px"].split())
        series = self.doc["zones"][0]["series"][0]
        values = [v for _, v in series["points"] if v is not None]
        values += [x for row in series["baseline"] for x in row[1:]]
        values += list(series["levels"].values())
        self.assertLessEqual(ymin, min(values))
        self.assertGreaterEqual(ymax, max(values))

        def day(s):
            return np.datetime64(s, "D").astype(int)

        def ypx(v):
            return bottom - (v - ymin) / (ymax - ymin) * (bottom - top)

        def xpx(d):
            return x0 + (day(d) - day(d0)) / (day(d1) - day(d0)) * (x1 - x0)

        pts = {a["data-date"]: a for a in c["circles"] if a.get("class") == "pt"}
        gaps = {a["data-date"] for a in c["circles"] if a.get("class") == "gap"}
        self.assertEqual(gaps, {d for d, v in series["points"] if v is None})
        self.assertEqual(set(pts), {d for d, v in series["points"] if v is not None})
        lines = [pl["points"].split() for pl in c["polylines"]
                 if pl.get("class") == "obs"]
        # the gaps break the line: one polyline per run of two or more
        # values, in date order; a lone value is a marker only
        runs, run_ = [], []
        for d, v in series["points"] + [(None, None)]:
            if v is None:
                if run_:
                    runs.append(run_)
                run_ = []
            else:
                run_.append(d)
        runs = [r for r in runs if len(r) >= 2]
        self.assertEqual(len(lines), len(runs))
        for line, r in zip(lines, runs):
            self.assertEqual(line, ["%s,%s" % (pts[d]["cx"], pts[d]["cy"]) for d in r])
        for d, v in series["points"]:
            if v is None:
                continue
            cx, cy = float(pts[d]["cx"]), float(pts[d]["cy"])
            self.assertAlmostEqual(cy, ypx(v), delta=0.051, msg=d)
            self.assertAlmostEqual(cx, xpx(d), delta=0.051, msg=d)
        # a known value by hand: 90.5 % on 2023-03-10
        self.assertAlmostEqual(float(pts["2023-03-10"]["cy"]), ypx(90.5), delta=0.051)
        # the axis labels sit where their values are (text baseline + 4)
        self.assertGreaterEqual(len(c["yticks"]), 3)
        for t in c["yticks"]:
            self.assertAlmostEqual(float(t["y"]) - 4, ypx(float(t["data-value"])),
                                   delta=0.051)
        self.assertEqual(float(c["yticks"][0]["data-value"]), ymin)
        self.assertEqual(float(c["yticks"][-1]["data-value"]), ymax)
        # the gaps are drawn on the axis
        for a in c["circles"]:
            if a.get("class") == "gap":
                self.assertAlmostEqual(float(a["cy"]), bottom, delta=0.051)

    def test_zone_table_lists_the_latest_metrics(self):
        table = self.html[self.html.index('<table class="zones">'):
                          self.html.index("</table>")]
        for z in self.doc["zones"]:
            self.assertIn('href="#zone-%d"' % self.doc["zones"].index(z), table)
        self.assertIn("1933.4", table)    # aral water area
        self.assertIn("98\u00a0%", table)  # valid fraction 0.98
        self.assertIn("12\u00a0%", table)  # the cloudy fields

    def test_rendered_by_chromium_is_not_blank(self):
        chromium = find_chromium()
        if not chromium:
            print("SKIP: chromium is not installed (apt-get install chromium)")
            self.skipTest("chromium is not installed")
        shot = os.path.join(self.tmp, "report.png")
        profile = os.path.join(self.tmp, "profile")
        env = dict(os.environ, HOME=self.tmp)
        p = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
             "--user-data-dir=" + profile, "--screenshot=" + shot,
             "--window-size=1280,2400", "file://" + self.out],
            capture_output=True, text=True, timeout=180, env=env)
        self.assertTrue(os.path.exists(shot), p.stderr[-2000:])
        ds = gdal.Open(shot)
        self.assertGreaterEqual(ds.RasterXSize, 800)
        self.assertGreaterEqual(ds.RasterYSize, 800)
        rgb = ds.ReadAsArray()[:3].astype(np.float64)
        self.assertGreater(rgb.std(), 20.0)
        grey = rgb.mean(axis=0)
        not_white = (grey < 240).mean()
        self.assertGreater(not_white, 0.03)
        # the red of the alert badges and cards is there
        r, g, b = rgb
        red = ((r > 170) & (g < 80) & (b < 80)).sum()
        self.assertGreater(red, 100)


class EdgeCaseTest(awtest.TempDirTest):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_in_place_without_quicklooks_shows_notes(self):
        out = os.path.join(self.tmp, "report.html")
        rc, _, err = run(["report", "--data", FIXTURE, "--out", out])
        self.assertEqual(rc, 0, err)
        html, page = parse(out)
        self.assertEqual(page.imgs, [])
        self.assertEqual(html.count("Image not available"), 3)
        self.assertIn("quicklooks/rgb.png", err)  # logged as a warning
        self.assertEqual(page.errors, [])

    def test_empty_document_gives_a_valid_page(self):
        data = self.write("empty.json", "{}\n")
        out = os.path.join(self.tmp, "empty.html")
        rc, _, err = run(["report", "--data", data, "--out", out])
        self.assertEqual(rc, 0, err)
        html, page = parse(out)
        self.assertEqual(page.errors, [])
        self.assertEqual(page.stack, [])
        self.assertIn("No alerts were raised", html)
        self.assertIn("This report holds no zones", html)
        self.assertEqual(page.counts.get("svg", 0), 0)
        self.assertEqual(page.counts.get("main"), 1)

    def test_nulls_and_wrong_types_are_tolerated(self):
        doc = {"title": None, "region": 5, "run": {"dates": [None, 3]},
               "software": [], "alerts": [None, 7, {"level": None},
                                          {"level": "bogus<b>", "metric": None,
                                           "tendency": {"change": "x"}}],
               "notices": {}, "forecasts": [{}],
               "zones": [None, {"zone_id": None, "series": [
                   None, {}, {"points": None},
                   {"points": [["2023-01-01", None], ["not a date", 1],
                               [None], "x", ["2023-02-30", 4]],
                    "baseline": [[None, 1, 2, 3], ["2023-01-01", None, 2, None]],
                    "levels": {"alert": "high"}},
                   {"points": [["2023-01-01", 5]], "levels": {"alert": 5}}]}],
               "quicklooks": [None, {"path": "/etc/passwd"},
                              {"path": "http://example.com/x.png"},
                              {"path": "../nope.png", "legend": {"ramp": "vci", "min": 5, "max": 5}},
                              {"path": "x.png", "legend": {"ramp": "other"}}]}
        data = self.write("nulls.json", json.dumps(doc))
        out = os.path.join(self.tmp, "nulls.html")
        rc, _, err = run(["report", "--data", data, "--out", out])
        self.assertEqual(rc, 0, err)
        html, page = parse(out)
        self.assertEqual(page.errors, [])
        self.assertEqual(page.stack, [])
        self.assertIn("bogus&lt;b&gt;", html)
        self.assertEqual(page.imgs, [])
        self.assertNotIn("root:", html)
        for m in re.finditer(r"https?://[^\s\"'<>)]*", html):
            # only the SVG namespace, and the rejected path shown as text
            self.assertIn(m.group(0).rstrip(":.,"), ("http://www.w3.org/2000/svg",
                                       "http://example.com/x.png"))
        self.assertNotRegex(html, r"(?i)(src|href)\s*=\s*[\"']?\s*https?:")

    def test_malformed_document_is_an_input_error(self):
        data = self.write("broken.json", '{"zones": [\n  {"zone_id": "a",}\n')
        out = os.path.join(self.tmp, "out.html")
        rc, _, err = run(["report", "--data", data, "--out", out])
        self.assertEqual(rc, 4, err)
        self.assertIn("broken.json", err)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(sorted(os.listdir(self.tmp)), ["broken.json"])
        rc, _, err = run(["report", "--data", os.path.join(self.tmp, "none.json"),
                          "--out", out])
        self.assertEqual(rc, 4, err)
        self.assertIn("none.json", err)
        data = self.write("array.json", "[1, 2]")
        rc, _, err = run(["report", "--data", data, "--out", out])
        self.assertEqual(rc, 4, err)
        self.assertIn("array.json", err)
        self.assertFalse(os.path.exists(out))

    def test_usage_errors(self):
        rc, _, err = run(["report"])
        self.assertEqual(rc, 2)
        self.assertIn("--data", err)
        rc, out, _ = run(["report", "--help"])
        self.assertEqual(rc, 0)
        self.assertIn("exit codes", out)


if __name__ == "__main__":
    awtest.main()

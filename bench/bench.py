#!/usr/bin/python3
"""Time aralwatch against gdal_calc.py, Orfeo ToolBox and the GDAL I/O floor.

Run by bench/run.sh (which installs, builds and generates the scenes);
see bench/README.md. Writes bench/RESULTS.md and, next to the runs,
results.json with every raw measurement.

Sequence:
  1. warm-up: every input file is read once, so every tool reads from the
     page cache (dropping the caches needs root and a quiet machine; a warm
     cache is the reproducible choice);
  2. N rounds; in each round every variant runs once, the order rotating
     from round to round. Round 1 keeps its outputs (the floors re-encode
     aralwatch's round-1 outputs, so the floors come last in round 1);
  3. the correctness gate on the round-1 outputs: every tool's MNDWI must
     agree with gdal_calc.py's on the pixels valid in all of them;
  4. only then are times printed and RESULTS.md written. A variant that
     failed to run or failed the gate shows why instead of a time.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATE = "2023-07-15"
MASKED_SCL = [0, 3, 8, 9, 10]      # what aralwatch's qa_mask masks
MNDWI_CALC = "((A*1e-4-0.1)-(B*1e-4-0.1))/((A*1e-4-0.1)+(B*1e-4-0.1))"
TOL_F32 = 1e-6
OTB_RAM_MB = 256                   # OTB_MAX_RAM_HINT (OTB's default)

# ---------------------------------------------------------------- helpers


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def cpu_busy_jiffies():
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def tail(path, n=12):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
        return "\n".join(lines[-n:])
    except OSError:
        return ""


def run_measured(cmd, env, cwd, log_prefix, timeout):
    """Run cmd, measure wall (monotonic), user+sys CPU and peak RSS of the
    child and its waited-for descendants (wait4). Also the CPU time other
    processes used meanwhile (from /proc/stat)."""
    out, err = log_prefix + ".stdout", log_prefix + ".stderr"
    hz = os.sysconf("SC_CLK_TCK")
    with open(out, "w") as fo, open(err, "w") as fe:
        b0, _ = cpu_busy_jiffies()
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fo, stderr=fe,
                                 start_new_session=True)
        except OSError as e:
            return {"ok": False, "exit": None, "error": str(e),
                    "cmd": cmd}
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        b1, _ = cpu_busy_jiffies()
        p.returncode = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    foreign = max(0.0, (b1 - b0) / hz - cpu)
    return {"ok": not killed, "exit": p.returncode, "wall": wall, "cpu": cpu,
            "user": ru.ru_utime, "sys": ru.ru_stime,
            "rss_mib": ru.ru_maxrss / 1024.0,
            "foreign_cpu_share": foreign / (wall * (os.cpu_count() or 1)),
            "timed_out": bool(killed), "stdout": out, "stderr": err,
            "cmd": cmd}


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


def cmd_out(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------- variants


class Variant:
    """One thing to time: a command line per run, the output to verify."""

    def __init__(self, key, tool, what, threads=2, family="peer"):
        self.key, self.tool, self.what = key, tool, what
        self.threads = threads
        self.family = family
        self.runs = []          # measured runs (dicts)
        self.first_out = None   # round-1 output folder (kept)
        self.mndwi = None       # path of its MNDWI raster (round 1)
        self.failure = None     # text when a run failed
        self.gate = None        # correctness result (dict) or None
        self.note = ""

    def env(self, base):
        e = dict(base)
        t = str(self.threads)
        e["GDAL_NUM_THREADS"] = t
        e["OMP_NUM_THREADS"] = t
        e["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = t
        return e


LEGACY_KEYS = ("method_none", "rasters", "encoding")


def parse_legacy(text):
    """BENCH_AW_LEGACY_KEYS: "1"/"all" or a comma list of LEGACY_KEYS; the
    config keys to leave out for an aralwatch build that does not know them
    yet (a testing aid while the engine is rewritten)."""
    text = (text or "").strip()
    if text in ("", "0"):
        return set()
    if text in ("1", "all"):
        return set(LEGACY_KEYS)
    keys = {k.strip() for k in text.split(",") if k.strip()}
    bad = keys - set(LEGACY_KEYS)
    if bad:
        raise SystemExit(f"bench: BENCH_AW_LEGACY_KEYS: unknown {sorted(bad)}"
                         f" (known: {', '.join(LEGACY_KEYS)}, all)")
    return keys


def write_aw_config(path, scene_dir, size, variant, legacy, zones,
                    level=None):
    """One aralwatch config from aralwatch.template.yaml. legacy: set of
    LEGACY_KEYS to leave out. level: outputs.level (--level), or None for
    the default."""
    with open(os.path.join(BENCH, "aralwatch.template.yaml")) as f:
        text = f.read()
    enc = "" if "encoding" in legacy else "encoding: float32, "
    if variant == "mndwi":
        indices = "[mndwi]"
        # aralwatch has no "no water class" method: it classifies water
        # with the fixed threshold (a few ms per strip) and writes only
        # mndwi.tif (outputs.rasters).
        water = "{index: mndwi, method: threshold, threshold: 0}"
        zone_block = ""
        outputs = ("{" + ("" if "rasters" in legacy else "rasters: [mndwi], ")
                   + enc + "compress: deflate, cog: false, blocksize: 512}")
    else:
        indices = "[ndwi, mndwi, ndvi]"
        water = "{index: mndwi, method: threshold, threshold: 0}"
        zone_block = ("\nzones:\n  file: " + zones + "\n  id_field: zone_id\n"
                      "  name_field: name\n  kind_field: kind\n")
        if variant == "full_f32":
            outputs = ("{" + enc
                       + "compress: deflate, cog: false, blocksize: 512}")
        else:  # aralwatch's default encoding: only the folder
            outputs = "{dir: out-default}"
    if level is not None and "deflate" in outputs:
        # --level is a DEFLATE level: the default encoding (ZSTD) keeps
        # its own.
        outputs = outputs[:-1] + f", level: {level}}}"
    for k, v in {"@SIZE@": str(size), "@SCENE_DIR@": scene_dir,
                 "@INDICES@": indices, "@WATER@": water,
                 "@ZONES@": zone_block, "@OUTPUTS@": outputs}.items():
        text = text.replace(k, v)
    with open(path, "w") as f:
        f.write(text)


def otb_vrt(path, scene_dir):
    """A 2-band Float32 VRT (green = B03, MIR = B11) in reflectance:
    DN * 1e-4 - 0.1, DN 0 -> NaN, so OTB's MNDWI sees what the others do."""
    ds = gdal.Open(os.path.join(scene_dir, "B03.tif"))
    n = ds.RasterXSize
    gt = ds.GetGeoTransform()
    wkt = ds.GetProjection()
    ds = None
    bands = ""
    for i, b in enumerate(["B03", "B11"], 1):
        bands += f"""  <VRTRasterBand dataType="Float32" band="{i}">
    <NoDataValue>nan</NoDataValue>
    <ComplexSource>
      <SourceFilename relativeToVRT="0">{os.path.join(scene_dir, b + '.tif')}</SourceFilename>
      <SourceBand>1</SourceBand>
      <NODATA>0</NODATA>
      <ScaleOffset>-0.1</ScaleOffset>
      <ScaleRatio>0.0001</ScaleRatio>
    </ComplexSource>
  </VRTRasterBand>
"""
    from xml.sax.saxutils import escape
    with open(path, "w") as f:
        f.write(f'<VRTDataset rasterXSize="{n}" rasterYSize="{n}">\n'
                f"  <SRS>{escape(wkt)}</SRS>\n"
                f"  <GeoTransform>{', '.join(repr(x) for x in gt)}"
                f"</GeoTransform>\n{bands}</VRTDataset>\n")


class Bench:
    def __init__(self, a):
        self.a = a
        self.threads = a.threads
        self.work = os.path.abspath(a.work)
        os.makedirs(self.work, exist_ok=True)
        self.scene = os.path.abspath(os.path.join(a.data, "s5490"))
        self.scene_large = os.path.abspath(os.path.join(a.data, "s10980"))
        self.n = gdal.Open(os.path.join(self.scene, "B03.tif")).RasterXSize
        self.mpx = self.n * self.n / 1e6
        self.base_env = dict(os.environ)
        self.base_env.pop("PYTHONPATH", None)
        self.aw = a.aralwatch
        self.aw_ok = bool(self.aw) and os.access(self.aw, os.X_OK)
        self.cfg = {}
        for v in ("mndwi", "full_f32", "full_default"):
            p = os.path.join(self.work, f"aw_{v}.yaml")
            write_aw_config(p, self.scene, self.n, v, a.aw_legacy_keys,
                            os.path.join(self.scene, "zones.geojson"),
                            a.level)
            self.cfg[v] = p
        self.vrt = os.path.join(self.work, "otb_in.vrt")
        otb_vrt(self.vrt, self.scene)
        t = self.threads
        V = Variant
        self.variants = [
            V("gdal_calc", "gdal_calc.py", "MNDWI", t, "peer"),
            V("otb", "otbcli_RadiometricIndices", "MNDWI", t, "peer"),
            V("aw_mndwi", "aralwatch", "MNDWI only, float32 DEFLATE", t, "aw"),
            V("aw_full_f32", "aralwatch",
              "full product, float32 DEFLATE", t, "aw"),
            V("aw_full_default", "aralwatch",
              "full product, default encoding", t, "aw"),
            V("aw_full_f32_1t", "aralwatch",
              "full product, float32 DEFLATE, 1 thread", 1, "aw"),
            V("floor_mndwi", "GDAL I/O floor",
              "decode B03 B11 SCL, encode aralwatch's MNDWI-only outputs",
              t, "floor"),
            V("floor_full", "GDAL I/O floor",
              "decode B03 B04 B08 B11 SCL, encode aralwatch's full float32 "
              "outputs", t, "floor"),
        ]
        self.by_key = {v.key: v for v in self.variants}
        self.large = None
        self.warnings = []
        self.quiet_waited = 0.0
        self.rounds_done = 0

    # ------------------------------------------------------------ commands

    def command(self, v, out):
        t = str(v.threads)
        s = self.scene
        if v.key == "gdal_calc":
            os.makedirs(out, exist_ok=True)
            v.mndwi_name = os.path.join(out, "mndwi.tif")
            return [sys.executable, shutil.which("gdal_calc.py") or
                    "/usr/bin/gdal_calc.py",
                    "-A", os.path.join(s, "B03.tif"),
                    "-B", os.path.join(s, "B11.tif"),
                    f"--outfile={v.mndwi_name}", "--type=Float32",
                    "--NoDataValue=-9999", "--overwrite", "--quiet",
                    f"--calc={MNDWI_CALC}",
                    "--co", "TILED=YES", "--co", "BLOCKXSIZE=512",
                    "--co", "BLOCKYSIZE=512", "--co", "COMPRESS=DEFLATE",
                    "--co", "PREDICTOR=3", "--co", f"NUM_THREADS={t}"] + \
                (["--co", f"ZLEVEL={self.a.level}"]
                 if self.a.level is not None else [])
        if v.key == "otb":
            os.makedirs(out, exist_ok=True)
            v.mndwi_name = os.path.join(out, "mndwi.tif")
            ext = ("?&gdal:co:TILED=YES&gdal:co:BLOCKXSIZE=512"
                   "&gdal:co:BLOCKYSIZE=512&gdal:co:COMPRESS=DEFLATE"
                   f"&gdal:co:PREDICTOR=3&gdal:co:NUM_THREADS={t}")
            if self.a.level is not None:
                ext += f"&gdal:co:ZLEVEL={self.a.level}"
            return [shutil.which("otbcli_RadiometricIndices") or
                    "otbcli_RadiometricIndices",
                    "-in", self.vrt, "-channels.green", "1",
                    "-channels.mir", "2", "-list", "Water:MNDWI",
                    "-out", v.mndwi_name + ext, "float"]
        if v.family == "aw":
            cfg = {"aw_mndwi": "mndwi", "aw_full_f32": "full_f32",
                   "aw_full_f32_1t": "full_f32",
                   "aw_full_default": "full_default"}[v.key]
            v.mndwi_name = os.path.join(out, "bench", DATE, "mndwi.tif")
            return [self.aw, "run", "--config", self.cfg[cfg], "--out", out,
                    "--threads", t, "--quiet"]
        if v.family == "floor":
            if v.key == "floor_full":
                ins = ["B03", "B04", "B08", "B11", "SCL"]
                src = self.by_key["aw_full_f32"]
            else:
                ins = ["B03", "B11", "SCL"]
                src = self.by_key["aw_mndwi"]
            refs = []
            if src.first_out and not src.failure:
                d = os.path.join(src.first_out, "bench", DATE)
                refs = sorted(os.path.join(d, f) for f in os.listdir(d)
                              if f.endswith(".tif"))
            elif v.key == "floor_mndwi" and \
                    self.by_key["gdal_calc"].first_out:
                # aralwatch did not run: gdal_calc's output stands in.
                refs = [os.path.join(self.by_key["gdal_calc"].first_out,
                                     "mndwi.tif")]
                v.note = "references: gdal_calc.py's MNDWI (aralwatch failed)"
            if not refs:
                return None
            os.makedirs(out, exist_ok=True)
            v.mndwi_name = os.path.join(out, "mndwi.tif")
            cmd = [self.a.floor, "--threads", t,
                   "--json", os.path.join(out, "floor.json"),
                   "--outdir", out]
            if self.a.level is not None:
                cmd += ["--zlevel", str(self.a.level)]
            for b in ins:
                cmd += ["--in", os.path.join(s, b + ".tif")]
            for r in refs:
                cmd += ["--ref", r]
            v.refs = refs
            return cmd
        raise ValueError(v.key)

    def wait_quiet(self):
        """Wait (at most --quiet-wait s) until other processes use less than
        15 % of the cores over half a second; returns the seconds waited."""
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        t0 = time.time()
        while True:
            b0, _ = cpu_busy_jiffies()
            time.sleep(0.5)
            b1, _ = cpu_busy_jiffies()
            share = (b1 - b0) / hz / (0.5 * ncpu)
            waited = time.time() - t0
            if share < 0.15 or waited >= self.a.quiet_wait:
                self.quiet_waited += waited
                return waited

    def run_one(self, v, rnd):
        out = os.path.join(self.work, "runs", f"{v.key}-r{rnd}")
        rmtree(out)
        if v.family != "aw":
            os.makedirs(out, exist_ok=True)
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        if v.family == "aw" and not self.aw_ok:
            v.failure = v.failure or "aralwatch was not built (see run.sh log)"
            return
        cmd = self.command(v, out)
        if cmd is None:
            v.failure = v.failure or "no reference outputs (aralwatch failed)"
            return
        self.wait_quiet()
        r = run_measured(cmd, v.env(self.base_env), self.work,
                         os.path.join(self.work, "logs", f"{v.key}-r{rnd}"),
                         self.a.timeout)
        ok_codes = (0, 10) if v.family == "aw" else (0,)
        if not r["ok"] or r["exit"] not in ok_codes or \
                not os.path.exists(v.mndwi_name if v.family != "floor"
                                   else os.path.join(out, "floor.json")):
            why = ("timed out" if r.get("timed_out") else
                   f"exit {r.get('exit')}" if r.get("exit") is not None else
                   r.get("error", "did not start"))
            v.failure = f"{why}: {tail(r.get('stderr', '')) or '(no stderr)'}"
            log(f"  {v.key}: FAILED ({why})")
            if rnd > 1:
                rmtree(out)
            elif v.first_out is None:
                v.first_out = out
            return
        if v.family == "floor":
            with open(os.path.join(out, "floor.json")) as f:
                fj = json.load(f)
            r["process_wall"] = r["wall"]
            r["process_rss_note"] = fj["preload_bytes"] / 2**20
            r["wall"] = fj["wall_s"]
            r["cpu"] = fj["cpu_s"]
            r["floor"] = fj
        v.runs.append(r)
        log(f"  {v.key}: ok")
        if rnd == 1:
            v.first_out = out
            v.mndwi = v.mndwi_name
        else:
            rmtree(out)

    # ------------------------------------------------------------ phases

    def warm_up(self):
        """Read every input once so all tools read from the page cache."""
        t0 = time.time()
        for d in (self.scene,):
            for f in sorted(os.listdir(d)):
                with open(os.path.join(d, f), "rb") as fh:
                    while fh.read(1 << 24):
                        pass
        log(f"warm-up read of the inputs: {time.time() - t0:.1f} s")

    def rounds(self):
        main = [v for v in self.variants if v.family != "floor"]
        floors = [v for v in self.variants if v.family == "floor"]
        round_s = None
        for rnd in range(1, self.a.repeats + 1):
            t_round = time.time()
            if rnd > 1:
                # Keep the whole command within the budget: skip the
                # remaining rounds when one more (and the 120 Mpx run)
                # would not fit.
                reserve = 0.0
                if self.a.large:
                    s = self.summary(self.by_key["aw_full_default"])
                    reserve = 4.5 * s["wall_max"] if s else 60.0
                if time.time() + round_s + reserve + 15 > \
                        self.a.started + self.a.budget:
                    self.rounds_done = rnd - 1
                    self.note_once(
                        f"only {rnd - 1} of {self.a.repeats} rounds: another "
                        f"round ({round_s:.0f} s) would have overrun the "
                        f"{self.a.budget / 60:.1f} min budget of the whole "
                        "command (--budget)")
                    log(f"stopping after round {rnd - 1} (time budget)")
                    return
            if rnd == 1:
                order = main + floors  # floors need round-1 references
            else:
                allv = main + floors
                k = (rnd - 1) % len(allv)
                order = allv[k:] + allv[:k]
                if rnd % 2 == 0:
                    order = order[::-1]
            log(f"round {rnd}/{self.a.repeats}: "
                + " ".join(v.key for v in order))
            for v in order:
                if v.key == "aw_full_f32_1t" and rnd > self.a.repeats_1t:
                    continue
                if v.failure and v.family != "floor":
                    continue          # a failed tool is not retried
                if v.failure and v.family == "floor" and not v.runs:
                    continue
                self.run_one(v, rnd)
            round_s = time.time() - t_round
            self.rounds_done = rnd

    def measure_large(self):
        """aralwatch's full product (default encoding) at 120 Mpx, once:
        peak RSS (and wall) against the same variant at 30 Mpx."""
        if not os.path.exists(os.path.join(self.scene_large, "B03.tif")):
            return
        v30 = self.by_key["aw_full_default"]
        res = {"variant": v30.what, "mpx": 0}
        n = gdal.Open(os.path.join(self.scene_large, "B03.tif")).RasterXSize
        res["mpx"] = n * n / 1e6
        if not self.aw_ok:
            res["failure"] = "aralwatch was not built"
            self.large = res
            return
        cfg = os.path.join(self.work, "aw_full_default_large.yaml")
        write_aw_config(cfg, self.scene_large, n, "full_default",
                        self.a.aw_legacy_keys,
                        os.path.join(self.scene_large, "zones.geojson"),
                        self.a.level)
        out = os.path.join(self.work, "runs", "large")
        rmtree(out)
        log(f"120 Mpx: aralwatch full product, default encoding ({n} x {n})")
        # warm the large inputs too
        for f in sorted(os.listdir(self.scene_large)):
            with open(os.path.join(self.scene_large, f), "rb") as fh:
                while fh.read(1 << 24):
                    pass
        r = run_measured([self.aw, "run", "--config", cfg, "--out", out,
                          "--threads", str(self.threads), "--quiet"],
                         v30.env(self.base_env), self.work,
                         os.path.join(self.work, "logs", "large"),
                         self.a.timeout * 4)
        if not r["ok"] or r["exit"] not in (0, 10):
            why = "timed out" if r.get("timed_out") else f"exit {r.get('exit')}"
            res["failure"] = f"{why}: {tail(r.get('stderr', ''))}"
        res.update({k: r.get(k) for k in ("wall", "cpu", "rss_mib",
                                          "foreign_cpu_share")})
        rmtree(out)
        self.large = res

    def note_once(self, text):
        if text not in self.warnings:
            self.warnings.append(text)

    # ------------------------------------------------------------ gate

    def read_mndwi(self, path, y0, rows):
        """Float64 MNDWI strip and its validity mask, nodata and scale
        applied. Returns (values, valid, is_integer, scale)."""
        ds = gdal.Open(path)
        b = ds.GetRasterBand(1)
        raw = b.ReadAsArray(0, y0, ds.RasterXSize, rows)
        nd = b.GetNoDataValue()
        scale = b.GetScale() or 1.0
        off = b.GetOffset() or 0.0
        is_int = np.issubdtype(raw.dtype, np.integer)
        if is_int and scale == 1.0:
            # No scale tag: the documented default encoding, DN * 1e-4.
            scale = 1e-4
            self.note_once(f"{os.path.basename(os.path.dirname(path))}: "
                           "integer MNDWI without a scale tag; read as "
                           "DN × 1e-4")
        if is_int and nd is None:
            nd = float(np.iinfo(raw.dtype).min)
        val = raw.astype(np.float64)
        valid = np.isfinite(val)
        if nd is not None:
            valid &= ~(val == nd) if not np.isnan(nd) else valid
        val = val * scale + off
        return val, valid, is_int, scale

    def gate(self):
        """Compare every tool's MNDWI with gdal_calc.py's (float64
        arithmetic, the reference) on pixels valid in all of them."""
        ref = self.by_key["gdal_calc"]
        tools = [v for v in self.variants
                 if v.family in ("peer", "aw") and v.mndwi and not v.failure
                 and os.path.exists(v.mndwi)]
        if ref not in tools:
            for v in tools:
                v.gate = {"pass": False,
                          "why": "no reference (gdal_calc.py failed)"}
            return
        n = self.n
        stats = {v.key: {"max_diff": 0.0, "n_valid": 0, "ref_only": 0,
                         "ref_only_scl": 0, "tool_only": 0, "int": False,
                         "scale": 1.0} for v in tools}
        n_common = 0
        scl_ds = gdal.Open(os.path.join(self.scene, "SCL.tif"))
        step = 512
        for y0 in range(0, n, step):
            rows = min(step, n - y0)
            scl = scl_ds.GetRasterBand(1).ReadAsArray(0, y0, n, rows)
            masked = np.isin(scl, MASKED_SCL)
            data = {v.key: self.read_mndwi(v.mndwi, y0, rows) for v in tools}
            common = np.ones((rows, n), bool)
            for k, (_, valid, _, _) in data.items():
                common &= valid
            n_common += int(common.sum())
            rv, rvalid, _, _ = data[ref.key]
            for v in tools:
                val, valid, is_int, scale = data[v.key]
                s = stats[v.key]
                s["int"], s["scale"] = is_int, scale
                s["n_valid"] += int(valid.sum())
                if common.any():
                    d = np.abs(val[common] - rv[common])
                    s["max_diff"] = max(s["max_diff"], float(d.max()))
                ro = rvalid & ~valid
                s["ref_only"] += int(ro.sum())
                s["ref_only_scl"] += int((ro & masked).sum())
                s["tool_only"] += int((valid & ~rvalid).sum())
        for v in tools:
            s = stats[v.key]
            tol = TOL_F32 + (0.5 * s["scale"] if s["int"] else 0.0)
            s["tol"] = tol
            s["n_common"] = n_common
            s["unexplained_mask"] = (s["ref_only"] - s["ref_only_scl"]
                                     + s["tool_only"])
            s["pass"] = n_common > 0.25 * n * n and s["max_diff"] <= tol
            if not s["pass"]:
                s["why"] = (f"max |diff| {s['max_diff']:.3g} > {tol:.3g}"
                            if s["max_diff"] > tol else
                            f"only {n_common} pixels valid in all tools")
            v.gate = s
        # Floors: their MNDWI must be the reference bytes, decoded.
        for fv in (self.by_key["floor_mndwi"], self.by_key["floor_full"]):
            if not fv.first_out or fv.failure or not fv.runs:
                continue
            out = os.path.join(fv.first_out, "mndwi.tif")
            src = [r for r in getattr(fv, "refs", [])
                   if os.path.basename(r) == "mndwi.tif"]
            if not src or not os.path.exists(out):
                continue
            a = gdal.Open(out).ReadAsArray()
            b = gdal.Open(src[0]).ReadAsArray()
            same = np.array_equal(a, b, equal_nan=True)
            fv.gate = {"pass": bool(same), "identical": bool(same)}
            if not same:
                fv.gate["why"] = "re-encoded MNDWI differs from the reference"

    # ------------------------------------------------------------ report

    def summary(self, v):
        if not v.runs:
            return None
        w = [r["wall"] for r in v.runs]
        return {"n": len(w), "wall_med": statistics.median(w),
                "wall_min": min(w), "wall_max": max(w),
                "cpu_med": statistics.median(r["cpu"] for r in v.runs),
                "rss_max": max(r["rss_mib"] for r in v.runs),
                "foreign_max": max(r["foreign_cpu_share"] for r in v.runs),
                "mpx_s": self.mpx / statistics.median(w)}

    def machine(self):
        lscpu = cmd_out(["lscpu"])
        model = re.search(r"Model name:\s*(.+)", lscpu)
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) / 2**20
        deb = ""
        if os.path.exists("/etc/debian_version"):
            deb = open("/etc/debian_version").read().strip()
        otb = cmd_out(["dpkg-query", "-W", "-f=${Version}", "otb-bin"])
        fs = cmd_out(["df", "-T", self.work]).splitlines()
        return {
            "cpu": model.group(1).strip() if model else platform.processor(),
            "cores": os.cpu_count(), "ram_gib": mem,
            "kernel": platform.release(), "debian": deb,
            "fs": fs[-1].split()[1] if len(fs) > 1 else "?",
            "gdal": gdal.__version__,
            "otb": otb or "?",
            "aralwatch": (cmd_out([self.aw, "--version"]) if self.aw_ok
                          else "not built"),
            "cc": cmd_out(["cc", "--version"]).splitlines()[0]
            if cmd_out(["cc", "--version"]) else "?",
            "python": platform.python_version(), "numpy": np.__version__,
        }

    def write(self, started, t_bench0):
        a = self.a
        S = {v.key: self.summary(v) for v in self.variants}
        # A variant that failed the gate shows no time.
        for v in self.variants:
            if v.gate is not None and not v.gate.get("pass", True):
                S[v.key] = None
        m = self.machine()
        with open(os.path.join(self.scene, "scene.json")) as f:
            scene = json.load(f)
        elapsed = time.time() - started
        L = []
        A = L.append
        A("# aralwatch benchmark results\n")
        cmdline = "bench/run.sh" + (" --large" if a.large else "") + \
            (f" --level {a.level}" if a.level is not None else "")
        A(f"Generated by `{cmdline}` on "
          f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} "
          f"(whole command: {elapsed / 60:.1f} min, of which timing "
          f"{(time.time() - t_bench0) / 60:.1f} min). Regenerated by every "
          "run; see `bench/README.md` for what each row means.\n")
        if a.level is not None:
            A(f"> **DEFLATE level {a.level} for every tool** (`--level`): "
              f"gdal_calc.py, OTB and the floor with `ZLEVEL={a.level}`, "
              f"every aralwatch DEFLATE config with `outputs.level: "
              f"{a.level}`; the default-encoding rows keep aralwatch's "
              "default (ZSTD level 1). The issue's table is "
              "`bench/RESULTS.md`, at GDAL's default level (6).\n")
        if a.aw_legacy_keys:
            dropped = {
                "method_none": "water `method: none` (threshold 0 instead, "
                               "so the MNDWI-only run also classifies water)",
                "rasters": "`outputs.rasters: [mndwi]` (the MNDWI-only run "
                           "also wrote water/valid/source rasters)",
                "encoding": "`outputs.encoding: float32` (float32 was the "
                            "build's only encoding)",
            }
            A("> **Legacy keys (testing aid).** This run had "
              "`BENCH_AW_LEGACY_KEYS` set: the aralwatch configs left out "
              + "; ".join(dropped[k] for k in LEGACY_KEYS
                          if k in a.aw_legacy_keys)
              + ", because the build did not know them yet. The aralwatch "
              "rows affected do not measure what the issue specifies.\n")
        A("## Machine and versions\n")
        A(f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']:.1f} "
          f"GiB; Debian {m['debian']}, Linux {m['kernel']}; work folder on "
          f"{m['fs']}")
        A(f"- GDAL {m['gdal']}, Orfeo ToolBox {m['otb']}, {m['aralwatch']}, "
          f"{m['cc']}, Python {m['python']}, NumPy {m['numpy']}")
        A(f"- threads: {self.threads} (GDAL_NUM_THREADS, OMP_NUM_THREADS, "
          "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS, aralwatch `--threads`, "
          "NUM_THREADS creation option); OTB_MAX_RAM_HINT "
          f"{OTB_RAM_MB} MB\n")
        A("## Scene\n")
        A(f"`bench/make_scene.py`: {self.n} × {self.n} px "
          f"({self.mpx:.1f} Mpx) of {scene['resolution_m']:g} m, "
          f"EPSG:{scene['epsg']}, seed {scene['seed']}; B02 B03 B04 B08 B11 "
          f"B12 uint16 (reflectance = DN × 1e-4 − 0.1, nodata 0) and SCL, "
          f"tiled {scene['tile']}², DEFLATE, predictor 2. SCL shares (%): "
          + ", ".join(f"{k}: {v}" for k, v in scene["scl_percent"].items())
          + ". Inputs are read once before timing (page cache warm).\n")

        A("## Correctness gate (before any time)\n")
        A("MNDWI of every tool against gdal_calc.py's (float64 arithmetic), "
          "on the pixels valid in all tools. Masks: \"ref only\" = valid in "
          "gdal_calc.py, invalid in the tool (of which masked by the SCL "
          f"classes {MASKED_SCL} aralwatch masks and the peers do not); "
          "\"tool only\" = the reverse. Unexplained = mask differences not "
          "due to SCL masking.\n")
        A("| tool | output | valid pixels | valid in all | max abs diff | "
          "tolerance | ref only (SCL) | tool only | unexplained | result |")
        A("|---|---|---|---|---|---|---|---|---|---|")
        for v in self.variants:
            if v.family == "floor":
                continue
            g = v.gate
            if g is None:
                A(f"| {v.tool} | {v.what} | | | | | | | | not run: "
                  f"{self.short_fail(v)} |")
                continue
            if "max_diff" not in g:
                A(f"| {v.tool} | {v.what} | | | | | | | | FAIL: {g['why']} |")
                continue
            A(f"| {v.tool} | {v.what}"
              f"{' (int16 × ' + format(g['scale'], 'g') + ')' if g['int'] else ''}"
              f" | {g['n_valid']:,} | {g['n_common']:,} | "
              f"{g['max_diff']:.2e} | {g['tol']:.2e} | {g['ref_only']:,} "
              f"({g['ref_only_scl']:,}) | {g['tool_only']:,} | "
              f"{g['unexplained_mask']:,} | "
              f"{'pass' if g['pass'] else 'FAIL: ' + g['why']} |")
        for v in self.variants:
            if v.family == "floor" and v.gate:
                A(f"\nI/O floor ({v.key}): its re-encoded MNDWI is pixel "
                  f"for pixel the reference it was given: "
                  f"{'yes' if v.gate['identical'] else 'NO'}.")
        A("")

        A(f"## Timings ({self.mpx:.1f} Mpx, {self.threads} threads, "
          f"{self.rounds_done} alternating rounds; 1-thread row: "
          f"{min(self.rounds_done, a.repeats_1t)})\n")
        A("Wall = median [min–max] over the rounds; CPU = user + system "
          "(median); RSS = peak over the rounds; ratio = aralwatch wall / "
          "other wall (below 1: aralwatch is faster; speed-up = 1 / ratio). "
          "Floor rows: wall and CPU of the timed decode + encode + fsync "
          "phases only; their RSS includes the preloaded output pixels.\n")
        A("| # | tool | what | wall s | CPU s | peak RSS MiB | Mpx/s | "
          "ratio: aralwatch wall / wall of |")
        A("|---|---|---|---|---|---|---|---|")

        def ratio(k1, k2):
            if S.get(k1) and S.get(k2):
                return S[k1]["wall_med"] / S[k2]["wall_med"]
            return None

        ratios = {
            "aw_mndwi": [("gdal_calc", "gdal_calc.py"), ("otb", "OTB"),
                         ("floor_mndwi", "its floor")],
            "aw_full_f32": [("floor_full", "floor"),
                            ("gdal_calc", "gdal_calc.py MNDWI")],
            "aw_full_default": [("gdal_calc", "gdal_calc.py MNDWI"),
                                ("floor_full", "float32 floor")],
            "aw_full_f32_1t": [("aw_full_f32", "1 thread / 2 threads")],
        }
        rownum = {"gdal_calc": "1", "otb": "2", "aw_mndwi": "3",
                  "aw_full_f32": "4a", "aw_full_default": "4b",
                  "aw_full_f32_1t": "4c", "floor_mndwi": "5a",
                  "floor_full": "5b"}
        for v in self.variants:
            s = S[v.key]
            what = v.what + (f" ({v.note})" if v.note else "")
            if s is None:
                A(f"| {rownum[v.key]} | {v.tool} | {what} | "
                  f"{self.short_fail(v)} | | | | |")
                continue
            rs = []
            for k, name in ratios.get(v.key, []):
                r = ratio(v.key, k)
                if r is not None:
                    rs.append(f"{r:.2f} ({name})")
            A(f"| {rownum[v.key]} | {v.tool} | {what} | "
              f"{s['wall_med']:.2f} [{s['wall_min']:.2f}–{s['wall_max']:.2f}]"
              f" | {s['cpu_med']:.2f} | {s['rss_max']:.0f} | "
              f"{s['mpx_s']:.1f} | {'; '.join(rs)} |")
        A("")
        for v in self.variants:
            if v.family == "floor" and v.runs:
                fj = v.runs[0]["floor"]
                dec = statistics.median(r["floor"]["decode_wall_s"]
                                        for r in v.runs)
                enc = statistics.median(r["floor"]["encode_wall_s"]
                                        for r in v.runs)
                fsy = statistics.median(r["floor"]["fsync_wall_s"]
                                        for r in v.runs)
                A(f"- {v.key}: decode {dec:.2f} s, encode {enc:.2f} s, "
                  f"fsync {fsy:.2f} s (medians); outputs re-encoded: "
                  + ", ".join(f"{os.path.basename(o['ref'])} ({o['type']}, "
                              f"{o['compress']}/pred {o['predictor']}, "
                              f"{o['block'][0]}²)" for o in fj["outputs"])
                  + f"; preloaded {fj['preload_bytes'] / 2**20:.0f} MiB.")
        A("")

        A("## Targets\n")
        A("| target | measured | result |")
        A("|---|---|---|")

        def row(name, value, ok):
            res = "not measured" if ok is None else ("met" if ok else
                                                      "NOT met")
            A(f"| {name} | {value} | {res} |")

        r = ratio("gdal_calc", "aw_mndwi")
        row("MNDWI alone ≥ 2.5× faster than gdal_calc.py",
            f"speed-up {r:.2f}× (aralwatch / gdal_calc.py = {1 / r:.2f})"
            if r else "–", None if r is None else r >= 2.5)
        r = ratio("otb", "aw_mndwi")
        row("MNDWI alone ≥ 3× faster than Orfeo ToolBox",
            f"speed-up {r:.2f}× (aralwatch / OTB = {1 / r:.2f})"
            if r else "–", None if r is None else r >= 3.0)
        r = ratio("aw_full_f32", "floor_full")
        row("full product (float32 DEFLATE) ≤ 1.15× the I/O floor",
            f"aralwatch / floor = {r:.2f}" if r else "–",
            None if r is None else r <= 1.15)
        r = ratio("aw_full_default", "gdal_calc")
        row("full product (default encoding) faster than gdal_calc.py "
            "MNDWI alone", f"aralwatch / gdal_calc.py = {r:.2f}" if r else "–",
            None if r is None else r < 1.0)
        lg = self.large
        s30 = S.get("aw_full_default")
        if lg and not lg.get("failure") and s30:
            q = lg["rss_mib"] / s30["rss_max"]
            row("peak RSS at 120 Mpx ≤ 1.3× the peak at 30 Mpx",
                f"{lg['rss_mib']:.0f} / {s30['rss_max']:.0f} MiB = {q:.2f}×",
                q <= 1.3)
            row("peak RSS at 120 Mpx < 512 MiB", f"{lg['rss_mib']:.0f} MiB",
                lg["rss_mib"] < 512)
        else:
            why = ("run without --large" if not lg else
                   lg.get("failure", "30 Mpx run failed")[:120])
            row("peak RSS at 120 Mpx ≤ 1.3× the peak at 30 Mpx, < 512 MiB",
                f"– ({why})", None)
        r = ratio("aw_full_f32_1t", "aw_full_f32")
        row("1 → 2 threads ≥ 1.7× on the full product",
            f"speed-up {r:.2f}×" if r else "–",
            None if r is None else r >= 1.7)
        A("")

        A("## Thread scaling (full product, float32 DEFLATE)\n")
        s1, s2 = S.get("aw_full_f32_1t"), S.get("aw_full_f32")
        if s1 and s2:
            A(f"| threads | wall s | CPU s | speed-up |\n|---|---|---|---|\n"
              f"| 1 | {s1['wall_med']:.2f} | {s1['cpu_med']:.2f} | 1.00 |\n"
              f"| {self.threads} | {s2['wall_med']:.2f} | "
              f"{s2['cpu_med']:.2f} | {s1['wall_med'] / s2['wall_med']:.2f} |"
              "\n")
        else:
            A("Not measured (a run failed; see the table above).\n")

        A("## Peak memory, 30 Mpx vs 120 Mpx (aralwatch full product, "
          "default encoding)\n")
        if lg is None:
            A("Not measured: run `bench/run.sh --large`.\n")
        elif lg.get("failure"):
            A(f"The {lg['mpx']:.0f} Mpx run failed: "
              f"`{lg['failure'][:400]}`\n")
        else:
            A(f"| scene | wall s | CPU s | peak RSS MiB |\n|---|---|---|---|")
            if s30:
                A(f"| {self.mpx:.1f} Mpx | {s30['wall_med']:.2f} | "
                  f"{s30['cpu_med']:.2f} | {s30['rss_max']:.0f} |")
            A(f"| {lg['mpx']:.1f} Mpx | {lg['wall']:.2f} | {lg['cpu']:.2f} | "
              f"{lg['rss_mib']:.0f} |\n")
            A("Only aralwatch is run at 120 Mpx (one run), to keep the "
              "whole command under 10 minutes.\n")

        A("## Background load\n")
        fm = [s["foreign_max"] for s in S.values() if s]
        if fm:
            A(f"CPU time used by other processes while a timed run ran, as a "
              f"share of all cores: max {max(fm) * 100:.0f} % over the "
              f"variants (per-variant maxima: "
              + ", ".join(f"{k} {s['foreign_max'] * 100:.0f} %"
                          for k, s in S.items() if s)
              + f"). Before each timed run the harness waited up to "
              f"{a.quiet_wait:g} s for the other processes to use less than "
              f"15 % of the cores ({self.quiet_waited:.0f} s waited in "
              "all). Above a few percent, times are disturbed (and thread "
              "scaling most of all): rerun on a quiet machine.\n")
        A("## Notes\n")
        for w in self.warnings:
            A(f"- {w}")
        A("- gdal_calc.py: `--calc \"" + MNDWI_CALC + "\"` on the uint16 "
          "bands (NumPy promotes to float64), `--type=Float32`, "
          "`--NoDataValue=-9999`: GDAL 3.6's gdal_calc.py cannot use NaN as "
          "output nodata (it computes `result * (mask == 0) + nodata * "
          "mask`, which is NaN everywhere), so its nodata is −9999; the "
          "gate reads each file's own nodata. It only masks DN 0.")
        A("- Orfeo ToolBox: `otbcli_RadiometricIndices -list Water:MNDWI` "
          "on a 2-band Float32 VRT (B03, B11) with `ScaleRatio` 1e-4, "
          "`ScaleOffset` −0.1 and source nodata 0 → NaN, so OTB computes "
          "on reflectance; OTB's MNDWI is (green − MIR) / (green + MIR) "
          "(Xu 2006), 0 where the sum is 0, and it reads the VRT as "
          "float32 (reflectance rounded to float32 before the ratio). It "
          "writes no nodata tag; NaN marks nodata.")
        A("- aralwatch masks SCL 0, 3, 8, 9, 10 (qa_mask) and input DN 0; "
          "the peers only DN 0, hence the \"ref only (SCL)\" counts.")
        A("- All float32 outputs: tiled 512², DEFLATE, predictor 3 "
          f"(floating point), NUM_THREADS={self.threads}. aralwatch's "
          "default encoding is its own: COG, 256² tiles with overviews, "
          "ZSTD level 1, predictor 3 for float32 and 2 for bytes (see "
          "its README, \"Output encoding\").")
        A("- Times are from a warm page cache; outputs go to the work "
          "folder on the same disk, and each timed output folder is "
          "deleted after its run (untimed).")
        wrel = os.path.relpath(self.work, ROOT)
        A(f"- Raw numbers: `{wrel}/results.json`; logs of every "
          f"run: `{wrel}/logs/`.")
        with open(a.results, "w") as f:
            f.write("\n".join(L) + "\n")
        raw = {"machine": m, "scene": scene, "summary": S,
               "large": self.large,
               "variants": {v.key: {"runs": v.runs, "gate": v.gate,
                                    "failure": v.failure, "note": v.note}
                            for v in self.variants}}
        with open(os.path.join(self.work, "results.json"), "w") as f:
            json.dump(raw, f, indent=1, default=str)
        return S

    @staticmethod
    def short_fail(v):
        if v.gate is not None and not v.gate.get("pass", True):
            return "verification FAILED: " + v.gate.get("why", "")
        f = (v.failure or "not run").replace("|", "/").replace("\n", " ⏎ ")
        return "failed: " + (f if len(f) < 300 else f[:150] + " … " + f[-150:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(BENCH, "data"))
    ap.add_argument("--work", default=os.path.join(BENCH, "data", "work"))
    ap.add_argument("--aralwatch", default=os.path.join(ROOT, "build-bench",
                                                        "aralwatch"))
    ap.add_argument("--floor", default=os.path.join(ROOT, "build-bench",
                                                    "bench", "io_floor"))
    ap.add_argument("--results", default=os.path.join(BENCH, "RESULTS.md"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeats-1t", type=int, default=3)
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--level", type=int, choices=range(1, 13),
                    metavar="1..12",
                    help="DEFLATE level (GDAL's ZLEVEL) for every tool; "
                         "default: each tool's default, GDAL's 6")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds per run before it is killed")
    ap.add_argument("--budget", type=float, default=570.0,
                    help="seconds the whole command may take; later rounds "
                         "are skipped when they would not fit")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="seconds to wait, before each timed run, for other "
                         "processes to leave the CPUs")
    ap.add_argument("--started", type=float, default=time.time(),
                    help="epoch seconds the whole command started")
    a = ap.parse_args()
    a.aw_legacy_keys = parse_legacy(os.environ.get("BENCH_AW_LEGACY_KEYS"))

    t0 = time.time()
    b = Bench(a)
    rmtree(os.path.join(b.work, "runs"))
    rmtree(os.path.join(b.work, "logs"))
    b.warm_up()
    b.rounds()
    if a.large:
        b.measure_large()
    log("correctness gate")
    b.gate()
    failed = [v.key for v in b.variants
              if v.gate is not None and not v.gate.get("pass", True)]
    S = b.write(a.started, t0)
    # Only now, after the gate, are times printed.
    with open(a.results) as f:
        print(f.read())
    if failed:
        log("verification FAILED for: " + ", ".join(failed))
    log(f"wrote {a.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

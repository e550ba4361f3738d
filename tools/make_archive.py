#!/usr/bin/python3
"""A reproducible multi-year synthetic archive with known truth.

Usage (Debian's python3, which has numpy and python3-gdal):

    /usr/bin/python3 tools/make_archive.py OUT_DIR [--seed N] [--size PX]
                                           [--start-year 2019] [--years 5]

The archive is a Landsat-like time series over a made-up corner of the Aral
Sea basin: a SIZE x SIZE grid of 30 m pixels in EPSG:32640 (UTM 40N), origin
(620000 E, 5010000 N), north up, one scene every 16 days from 5 January of
the start year to 31 December of the last year. All years but the last are
the baseline; the last year is the "monitoring" year in which the events
happen. Every value is a deterministic function of the date and of fields
drawn from one seeded numpy Generator, and the GeoTIFF creation options are
fixed, so the same arguments give the same bytes (with the same GDAL and
numpy builds).

What it writes into OUT_DIR:

    scenes/SYN_YYYYMMDD/B2.tif .. B7.tif  blue, green, red, nir, swir1, swir2:
                        uint16 DN, reflectance = DN * 0.0001 (offset 0),
                        DN 0 = nodata (real pixels are >= 1); tiled 256,
                        DEFLATE with predictor 2
    scenes/SYN_YYYYMMDD/QA.tif  uint8: 0 clear, 1 cloud, 2 cloud shadow
                        (no nodata value: 0 is a real class)
    zones.geojson       the five zones (EPSG:32640, with a "crs" member):
                        zone_id, name, kind (waterbody | cropland); every
                        zone is an axis-aligned rectangle on pixel edges,
                        so the pixels whose centres it holds are exact
    archive.yaml        an aralwatch config listing every scene (the
                        non-scene part is CONFIG_TEMPLATE below)
    truth.json          the noise-free truth, fields described below

Landscape (positions are fractions of the grid, so --size scales it):

    shrinking_res  reservoir in an elliptical bowl. Its water is the N
                   deepest pixels of a smooth depth field (bowl plus a
                   little relief), so it shrinks from the shore inward.
                   N = mean * (1 + 0.10 cos(2 pi (t - t_Apr25))) with t the
                   fraction of the year: maximum 25 April, minimum about 25
                   October. In the last year N is also scaled by a factor
                   falling linearly from 1.0 on 1 January to 0.4 on 31
                   December.
    control_res    the same seasonal cycle every year, no trend.
    flood_lake     a small permanent round lake in a floodplain zone. In the
                   last year, on every date from 1 May to 30 June, the lowest
                   4 * N_lake pixels of the floodplain (never water
                   otherwise) are flooded too: 5x the normal area.
    crop_district  irrigated parcels (rectangles, each its own vigour). NDVI
                   per pixel = bare + (peak * vigour - bare) * g(date), g 0
                   before 1 April and after 30 September, rising as sin^2
                   to 0.97 on 10 June, a flat dome with its top 1 on 15
                   July, 0.97 again on 1 September, falling as cos^2 to 0
                   on 30 September (harvest). bare = 0.15 and peak = 0.75
                   plus per-year offsets, and the season shifted by a
                   per-year number of days: the baseline years spread over
                   +-0.01, +-0.05 and +-8 days in a seeded order; the last
                   year is a normal one in the middle of the baseline
                   (offsets 0, peak +0.01).
                   In the last year, from 1 June to 31 August, 85 % of the
                   parcels (seeded) are in drought: bare + 0.05 * g.
    control_crop   parcels with the normal curve every year.
    background     dry steppe mixed with salt flats (static, MNDWI < 0,
                   NDVI ~0.02-0.1); the bed of a reservoir that is not under
                   water is moist mud (MNDWI < 0).

    A caveat of per-date VCI against monthly baselines, visible in the
    truth: on the steep limbs of the season (April-May, September) a date
    early in its month (green-up) or late in it (senescence) lies outside
    the envelope of the baseline years' monthly means even in a normal
    year, because the 16-day cadence drifts by 3 days a year and the last
    year's dates sit at the ends of their months. control_crop's
    vci_lt35_share is therefore high on a few such dates. The flat summer
    top keeps the drought window (June-August) free of this effect.

Water is green 0.06, swir1 0.01 (MNDWI ~0.7); flood water is turbid (green
0.09, swir1 0.02); every land cover has swir1 > green (MNDWI < 0). Crop red
and nir are red = 0.215 (1 - NDVI), nir = 0.215 (1 + NDVI), which gives the
target NDVI exactly. Every band gets N(0, 12 DN) noise per pixel and date.

Clouds: about 25 % of the dates carry one or two irregular cloud blobs (QA
1, bright in every band) and their shadows offset towards the south-east (QA
2, surface reflectance x 0.45). One date per year (so at least one in the
last year) is entirely cloud (QA 1 everywhere). Every calendar season of
every year has at least one cloudy date. The dates of the events below are
cloud-free (not a pixel of cloud), so the alerts they trigger are observable.

truth.json (every number is noise-free; areas are pixel counts x 0.0009 km2):

    generator               seed, size, start_year, years, epsg, origin_x,
                            origin_y, pixel_size_m, pixel_area_km2,
                            numpy_version, gdal_version
    baseline_years          the years the baseline statistics come from
    monitoring_year         the last year
    zones.<id>              name, kind, n_pixels, area_km2, window_px (the
                            pixel window [col0, row0, col1, row1) on the
                            grid);
                            waterbodies: mean_water_km2 (seasonal mean) and,
                            for flood_lake, lake_km2 and flood_km2 (the extra
                            area when flooded); croplands: n_parcels,
                            n_parcel_pixels, drought_parcels
    baseline_median_km2     <waterbody id> -> {"01".."12": median over the
                            baseline years' dates of that calendar month of
                            water_area_km2} (numpy median: the mean of the
                            two middle values for an even count)
    dates[]                 one per scene, in date order:
      date, scene_id, year, month, baseline (bool)
      cloud                 "clear" | "partial" | "full"
      clear_fraction        share of the whole grid with QA 0
      zones.<waterbody id>:
        water_pixels        true water pixels in the zone
        water_area_km2      water_pixels x 0.0009
        seasonal_norm_km2   the area without the trend and the flood (the
                            pixel count of the seasonal cycle alone)
        pct_of_baseline_median  100 * water_area_km2 / baseline median of
                            the date's calendar month
        clear_fraction      share of the zone's pixels with QA 0
        water_area_clear_km2  true water on QA-0 pixels only: what a
                            pipeline that masks QA 1 and 2 must report
      zones.<cropland id>:
        mean_ndvi           mean NDVI of every pixel of the zone (parcels and
                            the tracks/steppe between them), cloud-free
        mean_ndvi_clear     the same over the zone's QA-0 pixels only (what
                            the pipeline reports; null when none is clear)
        parcel_mean_ndvi    mean NDVI of the parcel pixels
        vci_lt35_share      share of parcel pixels whose VCI < 35, VCI =
                            100 (NDVI - min) / (max - min) with min/max per
                            pixel and calendar month over the baseline
                            years' monthly-mean NDVI (the mean of the
                            year's dates in that month); pixels whose
                            min == max are left out (null if all are)
        parcel_mean_vci     mean VCI of the parcel pixels (not clamped)
        clear_fraction      share of the zone's pixels with QA 0
    events
      shrinking_res_below_<P>  for P = 80, 65, 50: crossing_date, the first
                            day of the last year on which the continuous
                            model (seasonal mean x trend, not rounded to
                            pixels) divided by the month's baseline median
                            is below P %; first_observation, the first scene
                            date at or after it whose pct_of_baseline_median
                            in this file is below P; its pct
      flood                 start 1 May, end 30 June of the last year;
                            first_observation / last_observation (first and
                            last scene in the flood), first_after (first
                            scene after it), area_km2 / normal_area_km2
      drought               start 1 June, end 31 August of the last year;
                            first_observation, last_observation,
                            first_after, vci_lt35_share_at_first
                            (crop_district on first_observation)
      protected_dates       the cloud-free event dates

Run time: the default archive (200 px, 5 years, 114 scenes) takes a few
seconds; nearly all of it is GeoTIFF encoding.
"""

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import sys
import time

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()

# ---------------------------------------------------------------------------
# aralwatch config: everything but the scene list. Add sections (baseline,
# alerts) here; @...@ placeholders are filled in by write_config(), the scene
# list is appended at @SCENES@. Paths are relative to the YAML's folder.
# ---------------------------------------------------------------------------
CONFIG_TEMPLATE = """\
# aralwatch config for a synthetic archive written by tools/make_archive.py
# (seed @SEED@, @SIZE@ x @SIZE@ pixels of 30 m, EPSG:32640, @FIRST@ .. @LAST@,
# @NSCENES@ scenes). truth.json next to this file holds the true values.
# Relative paths are relative to this file's folder.
version: 1

region:
  name: synthetic
  # No crs, resolution, aoi or bbox: the grid is the first scene's native
  # grid (every scene has the same one).

indices: [ndwi, mndwi, ndvi]

water: {index: mndwi, method: threshold, threshold: 0.0}

zones:
  file: zones.geojson
  id_field: zone_id
  name_field: name
  kind_field: kind

outputs: {dir: out}

# --- baseline / alerts sections go here ---

# Every scene of the archive (generated): uint16 DN, reflectance = DN *
# 0.0001, DN 0 nodata; QA 1 cloud, 2 cloud shadow.
scenes:
@SCENES@"""

SCENE_TEMPLATE = """\
  - id: @ID@
    date: @DATE@
    sensor: generic
    path: scenes/@ID@
    scale: 0.0001
    offset: 0
    nodata: 0
    bands:
      blue: B2.tif
      green: B3.tif
      red: B4.tif
      nir: B5.tif
      swir1: B6.tif
      swir2: B7.tif
      qa: QA.tif
    qa_mask: {values: [1, 2], cloud: [1], shadow: [2]}
"""

# ---------------------------------------------------------------------------
# Grid and cadence
# ---------------------------------------------------------------------------
EPSG = 32640
ORIGIN_X, ORIGIN_Y = 620000.0, 5010000.0   # upper-left corner
PIXEL_M = 30.0
PIXEL_KM2 = PIXEL_M * PIXEL_M / 1e6          # 0.0009
CADENCE_DAYS = 16
BAND_FILES = ["B2", "B3", "B4", "B5", "B6", "B7"]   # blue .. swir2
GTIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256",
                 "COMPRESS=DEFLATE", "PREDICTOR=2", "ZLEVEL=6"]
NOISE_DN = 12.0                               # sensor noise, 1 sigma

# ---------------------------------------------------------------------------
# Spectra: reflectance of blue, green, red, nir, swir1, swir2
# ---------------------------------------------------------------------------
WATER = np.array([0.070, 0.060, 0.040, 0.025, 0.010, 0.006])
FLOOD_WATER = np.array([0.085, 0.090, 0.075, 0.045, 0.020, 0.012])  # turbid
STEPPE = np.array([0.100, 0.130, 0.170, 0.210, 0.300, 0.250])
SALT = np.array([0.360, 0.380, 0.400, 0.420, 0.470, 0.400])
MUD = np.array([0.090, 0.110, 0.130, 0.160, 0.220, 0.180])      # dry bed
TRACK = np.array([0.110, 0.140, 0.180, 0.220, 0.310, 0.260])    # field edges
CLOUD = np.array([0.480, 0.500, 0.520, 0.550, 0.380, 0.260])
SHADOW_FACTOR = 0.45
CROP_RED_NIR_SUM = 0.43     # red + nir of a crop pixel, any NDVI

# ---------------------------------------------------------------------------
# Truth parameters
# ---------------------------------------------------------------------------
SEASON_AMP = 0.10           # +-10 % seasonal cycle of the reservoirs
SEASON_PEAK = (4, 25)       # month, day of the maximum
TREND_END = 0.40            # last year: area factor on 31 December
FLOOD_FACTOR = 5            # flooded area / normal area
FLOOD_WINDOW = ((5, 1), (6, 30))
DROUGHT_WINDOW = ((6, 1), (8, 31))
DROUGHT_SHARE = 0.85        # share of crop_district parcels in drought
DROUGHT_AMP = 0.05          # NDVI above bare soil at the peak, in drought
CROP_BARE, CROP_PEAK = 0.15, 0.75
# Green-up, top reached, peak, top left, end of senescence; dome depth.
CROP_DATES = ((4, 1), (6, 10), (7, 15), (9, 1), (9, 30))
CROP_DOME = 0.03
PEAK_SPREAD, BARE_SPREAD = 0.05, 0.01     # inter-annual offsets (+-)
SHIFT_SPREAD = 8.0                        # inter-annual timing (+- days)
LAST_PEAK_OFFSET = 0.01                   # the last year: a normal year
VCI_STRESS = 35.0
SHRINK_THRESHOLDS = (80, 65, 50)
CLOUDY_SHARE = 0.25

# Zones, in fractions of the grid. Reservoirs: centre, semi-axes, rotation
# (degrees), share of the bowl under water at the seasonal mean.
RESERVOIRS = {
    "shrinking_res": dict(name="Shrinking reservoir", centre=(0.25, 0.20),
                          axes=(0.19, 0.14), angle=12.0, fill=0.60),
    "control_res": dict(name="Control reservoir", centre=(0.765, 0.20),
                        axes=(0.15, 0.12), angle=-20.0, fill=0.60),
}
FLOOD_ZONE = dict(zone_id="flood_lake", name="Floodplain lake",
                  rect=(0.04, 0.44, 0.46, 0.96), lake_centre=(0.16, 0.56),
                  lake_radius=0.045, valley_angle=55.0)
CROPLANDS = {
    "crop_district": dict(name="Irrigated crop district",
                          rect=(0.52, 0.56, 0.96, 0.96), cells=(5, 6),
                          drought=True),
    "control_crop": dict(name="Control cropland",
                         rect=(0.52, 0.40, 0.96, 0.51), cells=(5, 2),
                         drought=False),
}
ZONE_ORDER = ["shrinking_res", "control_res", "flood_lake", "crop_district",
              "control_crop"]


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def year_fraction(d, month_day):
    """Fraction of d's year at which the calendar day month_day falls."""
    y0 = dt.date(d.year, 1, 1)
    length = (dt.date(d.year + 1, 1, 1) - y0).days
    return (dt.date(d.year, *month_day) - y0).days / length


def season_factor(d):
    """Reservoir seasonal cycle: 1 + 10 % cos, maximum on 25 April."""
    y0 = dt.date(d.year, 1, 1)
    t = (d - y0).days / (dt.date(d.year + 1, 1, 1) - y0).days
    return 1.0 + SEASON_AMP * math.cos(2.0 * math.pi
                                       * (t - year_fraction(d, SEASON_PEAK)))


def trend_factor(d, last_year):
    """shrinking_res in the last year: 1.0 on 1 January, linearly down to
    TREND_END on 31 December; 1.0 in every other year."""
    if d.year != last_year:
        return 1.0
    y0, y1 = dt.date(d.year, 1, 1), dt.date(d.year, 12, 31)
    return 1.0 - (1.0 - TREND_END) * (d - y0).days / (y1 - y0).days


def in_window(d, window, year):
    return dt.date(year, *window[0]) <= d <= dt.date(year, *window[1])


def crop_curve(d, shift=0.0):
    """Growing-season shape in [0, 1]: 0 before 1 April and after 30
    September; sin^2 up to 1 - CROP_DOME on 10 June, a parabolic dome
    peaking at 1 on 15 July and back to 1 - CROP_DOME on 20 August, cos^2
    down to 0. The whole season is moved later by `shift` days."""
    a, ts, p, te, e = ((dt.date(d.year, *md) - dt.date(d.year, *CROP_DATES[0]))
                       .days for md in CROP_DATES)
    t = (d - dt.date(d.year, *CROP_DATES[0])).days - shift
    top = 1.0 - CROP_DOME
    if t <= a or t >= e:
        return 0.0
    if t < ts:
        return top * math.sin(0.5 * math.pi * (t - a) / (ts - a)) ** 2
    if t <= te:
        u = (t - p) / ((p - ts) if t < p else (te - p))
        return 1.0 - CROP_DOME * u * u
    return top * math.cos(0.5 * math.pi * (t - te) / (e - te)) ** 2


def smooth_field(rng, size, waves, period):
    """A smooth static field on the grid, ~N(0, 1): a sum of plane waves of
    random direction and phase with periods in `period` (grid fractions)."""
    u = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(u, u)
    out = np.zeros((size, size))
    for _ in range(waves):
        lam = rng.uniform(*period)
        th = rng.uniform(0.0, 2.0 * math.pi)
        ph = rng.uniform(0.0, 2.0 * math.pi)
        out += np.sin(2.0 * math.pi / lam
                      * (xx * math.cos(th) + yy * math.sin(th)) + ph)
    return out / math.sqrt(waves / 2.0)


def frac_rect(rect, size):
    """Fractions (x0, y0, x1, y1) -> pixel window [c0, r0, c1, r1)."""
    return tuple(int(round(v * size)) for v in rect)


def rnd(x, nd=6):
    """Round for JSON (None for NaN), so truth.json is stable and short."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), nd)


# ---------------------------------------------------------------------------
# The static landscape
# ---------------------------------------------------------------------------
class Landscape:
    """Every static field of the archive, drawn from the seed in a fixed
    order: zone windows, reservoir depth ranks, lake and flood masks,
    parcels and their vigour, background spectra, per-year crop offsets."""

    def __init__(self, seed, size, years):
        self.size = size
        rng = np.random.default_rng([seed, 0])
        n = size
        cc, rr = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
        self.zones = {}       # zone id -> dict(name, kind, win, ...)

        # Background: steppe / salt flat mixture (static).
        salt = np.clip(0.5 + 0.35 * smooth_field(rng, n, 8, (0.2, 0.9)),
                       0.0, 1.0)
        self.background = ((1.0 - salt)[None] * STEPPE[:, None, None]
                           + salt[None] * SALT[:, None, None])

        # Reservoirs: water = the N deepest pixels of the bowl.
        for zid in ("shrinking_res", "control_res"):
            p = RESERVOIRS[zid]
            cx, cy = (v * n for v in p["centre"])
            ax, ay = (v * n for v in p["axes"])
            th = math.radians(p["angle"])
            u = ((cc - cx) * math.cos(th) + (rr - cy) * math.sin(th)) / ax
            v = (-(cc - cx) * math.sin(th) + (rr - cy) * math.cos(th)) / ay
            bowl = 1.0 - u * u - v * v
            relief = 0.05 * smooth_field(rng, n, 10, (0.04, 0.15))
            inside = bowl > 0.0
            depth = np.where(inside, bowl + relief, -np.inf).ravel()
            order = np.argsort(-depth, kind="stable")[:int(inside.sum())]
            rows, cols = np.nonzero(inside)
            m = 3                                  # zone margin, pixels
            win = (max(int(cols.min()) - m, 0), max(int(rows.min()) - m, 0),
                   min(int(cols.max()) + 1 + m, n),
                   min(int(rows.max()) + 1 + m, n))
            mean_px = p["fill"] * inside.sum()
            assert mean_px * (1 + SEASON_AMP) < inside.sum()
            self.background[:, inside] = MUD[:, None]
            self.zones[zid] = dict(name=p["name"], kind="waterbody", win=win,
                                   order=order, mean_px=mean_px)

        # Flood lake: a permanent disc, and a floodplain valley running from
        # it; the flood is the 4 x N_lake lowest floodplain pixels.
        p = FLOOD_ZONE
        win = frac_rect(p["rect"], n)
        lx, ly = (v * n for v in p["lake_centre"])
        lake = (cc - lx) ** 2 + (rr - ly) ** 2 < (p["lake_radius"] * n) ** 2
        th = math.radians(p["valley_angle"])
        along = (cc - lx) * math.cos(th) + (rr - ly) * math.sin(th)
        cross = -(cc - lx) * math.sin(th) + (rr - ly) * math.cos(th)
        length = 0.35 * n
        elev = (np.abs(cross) / (0.06 * n) + np.maximum(along, 0.0) / length
                + np.maximum(-along, 0.0) / (0.3 * length)
                + 0.15 * smooth_field(rng, n, 8, (0.05, 0.2)))
        plain = np.zeros((n, n), bool)
        plain[win[1] + 2:win[3] - 2, win[0] + 2:win[2] - 2] = True
        plain &= ~lake
        n_flood = (FLOOD_FACTOR - 1) * int(lake.sum())
        cand = np.flatnonzero(plain.ravel())
        assert n_flood < len(cand), "floodplain too small"
        low = cand[np.argsort(elev.ravel()[cand], kind="stable")[:n_flood]]
        flood = np.zeros(n * n, bool)
        flood[low] = True
        self.zones["flood_lake"] = dict(
            name=p["name"], kind="waterbody", win=win, lake=lake,
            flood=flood.reshape(n, n))

        # Croplands: a lattice of parcels with a one-pixel track between
        # them, each parcel its own vigour, each pixel a little texture.
        for zid in ("crop_district", "control_crop"):
            p = CROPLANDS[zid]
            win = frac_rect(p["rect"], n)
            parcel = np.full((n, n), -1, np.int32)
            nx, ny = p["cells"]
            xs = np.rint(np.linspace(win[0] + 1, win[2] - 1, nx + 1))
            ys = np.rint(np.linspace(win[1] + 1, win[3] - 1, ny + 1))
            xs, ys = xs.astype(int), ys.astype(int)
            k = 0
            for j in range(ny):
                for i in range(nx):
                    parcel[ys[j]:ys[j + 1] - 1, xs[i]:xs[i + 1] - 1] = k
                    k += 1
            self.background[:, win[1]:win[3], win[0]:win[2]] = \
                TRACK[:, None, None]
            pix = np.flatnonzero(parcel.ravel() >= 0)
            vigour = rng.uniform(0.92, 1.06, k)
            texture = 1.0 + 0.02 * smooth_field(rng, n, 6, (0.02, 0.08))
            drought = np.zeros(k, bool)
            if p["drought"]:
                drought[rng.permutation(k)[:int(round(DROUGHT_SHARE * k))]] \
                    = True
            pid = parcel.ravel()[pix]
            # Per-year offsets of peak and bare NDVI and of the season's
            # timing: the baseline years take evenly spread values in a
            # seeded order, the last year sits in the middle (its peak a
            # little above: a normal year keeps its VCI clear of 35).
            nb = len(years) - 1
            spread = np.linspace(-1.0, 1.0, nb) if nb > 1 else np.zeros(1)
            peak_off = np.append(PEAK_SPREAD * spread[rng.permutation(nb)]
                                 + rng.uniform(-0.004, 0.004, nb),
                                 LAST_PEAK_OFFSET)
            bare_off = np.append(BARE_SPREAD * spread[rng.permutation(nb)]
                                 + rng.uniform(-0.001, 0.001, nb), 0.0)
            shift = np.append(SHIFT_SPREAD * spread[rng.permutation(nb)],
                              0.0)
            self.zones[zid] = dict(
                name=p["name"], kind="cropland", win=win, pix=pix,
                amp=(vigour[pid] * texture.ravel()[pix]),
                drought_px=drought[pid], n_parcels=k,
                n_drought=int(drought.sum()), has_drought=p["drought"],
                peak={y: CROP_PEAK + o for y, o in zip(years, peak_off)},
                bare={y: CROP_BARE + o for y, o in zip(years, bare_off)},
                shift={y: float(o) for y, o in zip(years, shift)})

        # Zone masks (the rectangles) must not overlap and must fit.
        used = np.zeros((n, n), np.int8)
        for z in self.zones.values():
            c0, r0, c1, r1 = z["win"]
            assert 0 <= c0 < c1 <= n and 0 <= r0 < r1 <= n
            used[r0:r1, c0:c1] += 1
        assert used.max() == 1, "zones overlap"

    # -- per-date truth ----------------------------------------------------
    def water_count(self, zid, d, last_year, flooded):
        """Water pixels of a waterbody zone on date d, and its seasonal
        norm (the count without trend and flood)."""
        z = self.zones[zid]
        if zid == "flood_lake":
            lake = int(z["lake"].sum())
            return lake + (int(z["flood"].sum()) if flooded else 0), lake
        norm = int(round(z["mean_px"] * season_factor(d)))
        trend = trend_factor(d, last_year) if zid == "shrinking_res" else 1.0
        return int(round(z["mean_px"] * season_factor(d) * trend)), norm

    def water_mask(self, zid, count, flooded):
        z = self.zones[zid]
        if zid == "flood_lake":
            return z["lake"] | z["flood"] if flooded else z["lake"]
        m = np.zeros(self.size * self.size, bool)
        m[z["order"][:count]] = True
        return m.reshape(self.size, self.size)

    def parcel_ndvi(self, zid, d, last_year):
        """Noise-free NDVI of every parcel pixel of a cropland zone."""
        z = self.zones[zid]
        g = crop_curve(d, z["shift"][d.year])
        bare, peak = z["bare"][d.year], z["peak"][d.year]
        ndvi = bare + (peak * z["amp"] - bare) * g
        if (z["has_drought"] and d.year == last_year
                and in_window(d, DROUGHT_WINDOW, last_year)):
            ndvi = np.where(z["drought_px"], bare + DROUGHT_AMP * g, ndvi)
        return ndvi


def crop_spectrum(ndvi):
    """Reflectance (6, n) of crop pixels with the given NDVI: red and nir
    share a constant sum so (nir - red) / (nir + red) is exactly ndvi."""
    s = CROP_RED_NIR_SUM
    return np.stack([0.09 - 0.05 * ndvi, 0.12 - 0.04 * ndvi,
                     0.5 * s * (1.0 - ndvi), 0.5 * s * (1.0 + ndvi),
                     0.30 - 0.15 * ndvi, 0.25 - 0.17 * ndvi])


# ---------------------------------------------------------------------------
# Truth that does not depend on clouds: areas, medians, VCI, events
# ---------------------------------------------------------------------------
def scene_dates(start_year, years):
    d, end = dt.date(start_year, 1, 5), dt.date(start_year + years - 1, 12, 31)
    out = []
    while d <= end:
        out.append(d)
        d += dt.timedelta(days=CADENCE_DAYS)
    return out


def water_truth(land, dates, last_year):
    """Per waterbody zone: water and norm pixel counts per date, the
    baseline month medians (km2) and the percent of them per date."""
    out = {}
    for zid in ("shrinking_res", "control_res", "flood_lake"):
        counts, norms = [], []
        for d in dates:
            fl = zid == "flood_lake" and d.year == last_year and \
                in_window(d, FLOOD_WINDOW, last_year)
            c, nm = land.water_count(zid, d, last_year, fl)
            counts.append(c)
            norms.append(nm)
        area = np.array(counts) * PIXEL_KM2
        median = {}
        for m in range(1, 13):
            vals = [a for a, d in zip(area, dates)
                    if d.year != last_year and d.month == m]
            median[m] = float(np.median(vals))
        pct = [100.0 * a / median[d.month] for a, d in zip(area, dates)]
        out[zid] = dict(counts=counts, norms=norms, area=area,
                        median=median, pct=pct)
    return out


def crop_truth(land, dates, last_year):
    """Per cropland zone: parcel NDVI per date, and the share of parcel
    pixels with VCI < 35 against the baseline monthly-mean min/max."""
    out = {}
    for zid in ("crop_district", "control_crop"):
        nd = np.array([land.parcel_ndvi(zid, d, last_year) for d in dates])
        base_years = sorted({d.year for d in dates if d.year != last_year})
        lo, hi = {}, {}
        for m in range(1, 13):
            monthly = [nd[[i for i, d in enumerate(dates)
                           if d.year == y and d.month == m]].mean(axis=0)
                       for y in base_years]
            lo[m], hi[m] = np.min(monthly, axis=0), np.max(monthly, axis=0)
        share, mean_vci = [], []
        for i, d in enumerate(dates):
            rng_ = hi[d.month] - lo[d.month]
            ok = rng_ > 1e-9
            if not ok.any():
                share.append(None)
                mean_vci.append(None)
                continue
            vci = 100.0 * (nd[i][ok] - lo[d.month][ok]) / rng_[ok]
            share.append(float(np.mean(vci < VCI_STRESS)))
            mean_vci.append(float(vci.mean()))
        out[zid] = dict(ndvi=nd, share=share, mean_vci=mean_vci)
    return out


def events(land, dates, wt, ct, last_year):
    """Event dates of the monitoring year, derived from the model."""
    ev = {}
    z = land.zones["shrinking_res"]
    med = wt["shrinking_res"]["median"]
    y = last_year
    days = [dt.date(y, 1, 1) + dt.timedelta(days=k)
            for k in range((dt.date(y, 12, 31) - dt.date(y, 1, 1)).days + 1)]
    for p in SHRINK_THRESHOLDS:
        cross = next((d for d in days
                      if 100.0 * z["mean_px"] * season_factor(d)
                      * trend_factor(d, y) * PIXEL_KM2 / med[d.month] < p),
                     None)
        first = next((i for i, d in enumerate(dates)
                      if d.year == y and wt["shrinking_res"]["pct"][i] < p),
                     None)
        if cross is not None and first is not None and dates[first] < cross:
            print(f"warning: below {p} %: observation {dates[first]} before "
                  f"the continuous crossing {cross} (pixel rounding)",
                  file=sys.stderr)
        ev[f"shrinking_res_below_{p}"] = dict(
            threshold_pct=p, crossing_date=cross and cross.isoformat(),
            first_observation=None if first is None
            else dates[first].isoformat(),
            pct=None if first is None
            else rnd(wt["shrinking_res"]["pct"][first], 3),
            _index=first)

    def window_event(window):
        lo, hi = (dt.date(y, *md) for md in window)
        idx = [i for i, d in enumerate(dates) if lo <= d <= hi]
        after = next((i for i, d in enumerate(dates) if d > hi), None)
        return lo, hi, idx, after

    lo, hi, idx, after = window_event(FLOOD_WINDOW)
    fl = wt["flood_lake"]
    ev["flood"] = dict(
        zone_id="flood_lake", start=lo.isoformat(), end=hi.isoformat(),
        first_observation=dates[idx[0]].isoformat(),
        last_observation=dates[idx[-1]].isoformat(),
        first_after=None if after is None else dates[after].isoformat(),
        area_km2=rnd(fl["area"][idx[0]]),
        normal_area_km2=rnd(fl["norms"][idx[0]] * PIXEL_KM2),
        _index=[idx[0], idx[-1]] + ([after] if after is not None else []))
    lo, hi, idx, after = window_event(DROUGHT_WINDOW)
    ev["drought"] = dict(
        zone_id="crop_district", start=lo.isoformat(), end=hi.isoformat(),
        first_observation=dates[idx[0]].isoformat(),
        last_observation=dates[idx[-1]].isoformat(),
        first_after=None if after is None else dates[after].isoformat(),
        vci_lt35_share_at_first=rnd(ct["crop_district"]["share"][idx[0]], 4),
        _index=[idx[0], idx[-1]] + ([after] if after is not None else []))
    return ev


# ---------------------------------------------------------------------------
# Clouds
# ---------------------------------------------------------------------------
def cloud_plan(seed, dates, protected):
    """'clear' | 'partial' | 'full' per date, drawn from its own generator
    (so the landscape does not shift when the plan changes): ~25 % partial,
    one full date per year, at least one cloudy date per season of each
    year, never on a protected (event) date."""
    rng = np.random.default_rng([seed, 1])
    draws = rng.random(len(dates))
    plan = ["partial" if u < CLOUDY_SHARE and i not in protected else "clear"
            for i, u in enumerate(draws)]
    for y in sorted({d.year for d in dates}):
        pool = [i for i, d in enumerate(dates)
                if d.year == y and i not in protected and i > 0]
        plan[pool[int(rng.integers(len(pool)))]] = "full"
    for y in sorted({d.year for d in dates}):
        for months in ((12, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)):
            group = [i for i, d in enumerate(dates)
                     if d.year == y and d.month in months]
            if group and all(plan[i] == "clear" for i in group):
                free = [i for i in group if i not in protected]
                if free:
                    plan[free[0]] = "partial"
    return plan


def cloud_qa(seed, index, kind, size):
    """QA raster of one date: 1 or 2 irregular blobs (cloud 1) and their
    shadows (2), offset to the south-east; all 1 for a full date."""
    qa = np.zeros((size, size), np.uint8)
    if kind == "full":
        qa[:] = 1
        return qa
    if kind == "clear":
        return qa
    rng = np.random.default_rng([seed, 2, index])
    cc, rr = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    cloud = np.zeros((size, size), bool)
    shadow = np.zeros((size, size), bool)
    shift = (int(round(0.07 * size)), int(round(0.05 * size)))  # dx, dy
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = rng.uniform(0.0, size, 2)
        radius = rng.uniform(0.07, 0.20) * size
        harm = rng.uniform(0.0, 2.0 * math.pi, 3)
        ang = np.arctan2(rr - cy, cc - cx)
        edge = radius * (1.0 + 0.12 * np.sin(2 * ang + harm[0])
                         + 0.08 * np.sin(3 * ang + harm[1])
                         + 0.05 * np.sin(5 * ang + harm[2]))
        blob = np.hypot(cc - cx, rr - cy) < edge
        cloud |= blob
        sh = np.zeros_like(blob)
        sh[shift[1]:, shift[0]:] = blob[:size - shift[1], :size - shift[0]]
        shadow |= sh
    qa[shadow] = 2
    qa[cloud] = 1
    return qa


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------
def srs_utm():
    s = osr.SpatialReference()
    s.ImportFromEPSG(EPSG)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


def write_tif(path, arr, dtype, wkt, gt, nodata=None):
    ds = gdal.GetDriverByName("GTiff").Create(
        path, arr.shape[1], arr.shape[0], 1, dtype, GTIFF_OPTIONS)
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(arr)
    ds = None


def write_zones(path, land):
    """zones.geojson in EPSG:32640 (GDAL writes the "crs" member)."""
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GeoJSON").CreateDataSource(path)
    lyr = ds.CreateLayer("zones", srs_utm(), ogr.wkbPolygon)
    for f in ("zone_id", "name", "kind"):
        lyr.CreateField(ogr.FieldDefn(f, ogr.OFTString))
    for zid in ZONE_ORDER:
        z = land.zones[zid]
        c0, r0, c1, r1 = z["win"]
        x0, x1 = ORIGIN_X + c0 * PIXEL_M, ORIGIN_X + c1 * PIXEL_M
        y0, y1 = ORIGIN_Y - r0 * PIXEL_M, ORIGIN_Y - r1 * PIXEL_M
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        feat = ogr.Feature(lyr.GetLayerDefn())
        feat.SetField("zone_id", zid)
        feat.SetField("name", z["name"])
        feat.SetField("kind", z["kind"])
        feat.SetGeometry(poly)
        lyr.CreateFeature(feat)
    ds = None


def write_config(path, args, dates):
    scenes = "".join(SCENE_TEMPLATE.replace("@ID@", scene_id(d))
                     .replace("@DATE@", d.isoformat()) for d in dates)
    text = CONFIG_TEMPLATE
    for key, val in (("@SEED@", args.seed), ("@SIZE@", args.size),
                     ("@FIRST@", dates[0]), ("@LAST@", dates[-1]),
                     ("@NSCENES@", len(dates)), ("@SCENES@", scenes)):
        text = text.replace(key, str(val))
    with open(path, "w") as f:
        f.write(text)


def scene_id(d):
    return "SYN_" + d.strftime("%Y%m%d")


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=200,
                    help="grid width and height in 30 m pixels (>= 60)")
    ap.add_argument("--start-year", type=int, default=2019)
    ap.add_argument("--years", type=int, default=5,
                    help="years in all, >= 2; the last is the monitoring "
                    "year")
    args = ap.parse_args(argv)
    if args.size < 60 or args.years < 2 or args.seed < 0:
        ap.error("--size must be >= 60, --years >= 2, --seed >= 0")
    t0 = time.monotonic()

    years = list(range(args.start_year, args.start_year + args.years))
    last_year = years[-1]
    n = args.size
    dates = scene_dates(args.start_year, args.years)
    land = Landscape(args.seed, n, years)

    wt = water_truth(land, dates, last_year)
    ct = crop_truth(land, dates, last_year)
    ev = events(land, dates, wt, ct, last_year)
    protected = set()
    for e in ev.values():
        idx = e.pop("_index")
        protected.update(idx if isinstance(idx, list) else
                         [] if idx is None else [idx])
    ev["protected_dates"] = [dates[i].isoformat() for i in sorted(protected)]
    plan = cloud_plan(args.seed, dates, protected)

    # Output folders: stale SYN_* scene folders of an earlier run go.
    out = args.out_dir
    scenes_dir = os.path.join(out, "scenes")
    os.makedirs(scenes_dir, exist_ok=True)
    for name in os.listdir(scenes_dir):
        if re.fullmatch(r"SYN_\d{8}", name):
            shutil.rmtree(os.path.join(scenes_dir, name))

    wkt = srs_utm().ExportToWkt()
    gt = (ORIGIN_X, PIXEL_M, 0.0, ORIGIN_Y, 0.0, -PIXEL_M)
    zone_masks = {}
    for zid, z in land.zones.items():
        m = np.zeros((n, n), bool)
        c0, r0, c1, r1 = z["win"]
        m[r0:r1, c0:c1] = True
        zone_masks[zid] = m

    records = []
    for i, d in enumerate(dates):
        # Noise-free surface reflectance of the date.
        refl = land.background.copy()
        rec_zones = {}
        for zid in ("shrinking_res", "control_res", "flood_lake"):
            fl = zid == "flood_lake" and d.year == last_year and \
                in_window(d, FLOOD_WINDOW, last_year)
            wmask = land.water_mask(zid, wt[zid]["counts"][i], fl)
            refl[:, wmask] = WATER[:, None]
            if zid == "flood_lake" and fl:
                refl[:, land.zones[zid]["flood"]] = FLOOD_WATER[:, None]
            rec_zones[zid] = dict(wmask=wmask)
        for zid in ("crop_district", "control_crop"):
            pix = land.zones[zid]["pix"]
            r2 = refl.reshape(6, -1)
            r2[:, pix] = crop_spectrum(ct[zid]["ndvi"][i])
        ndvi_true = (refl[3] - refl[2]) / (refl[3] + refl[2])

        # Clouds and shadows, then noise and DN.
        qa = cloud_qa(args.seed, i, plan[i], n)
        obs = refl.copy()
        obs[:, qa == 2] *= SHADOW_FACTOR
        obs[:, qa == 1] = CLOUD[:, None]
        rng = np.random.default_rng([args.seed, 3, i])
        dn = obs.astype(np.float32) * np.float32(10000.0)
        dn += np.float32(NOISE_DN) * rng.standard_normal(dn.shape,
                                                        dtype=np.float32)
        np.rint(dn, out=dn)
        np.clip(dn, 1, 65535, out=dn)
        dn = dn.astype(np.uint16)

        sdir = os.path.join(scenes_dir, scene_id(d))
        os.makedirs(sdir)
        for b, name in enumerate(BAND_FILES):
            write_tif(os.path.join(sdir, name + ".tif"), dn[b],
                      gdal.GDT_UInt16, wkt, gt, nodata=0)
        write_tif(os.path.join(sdir, "QA.tif"), qa, gdal.GDT_Byte, wkt, gt)

        # Truth record of the date.
        clear = qa == 0
        zrec = {}
        for zid in ZONE_ORDER:
            zm = zone_masks[zid]
            cf = float(clear[zm].mean())
            if land.zones[zid]["kind"] == "waterbody":
                w = wt[zid]
                wmask = rec_zones[zid]["wmask"]
                zrec[zid] = dict(
                    water_pixels=int(w["counts"][i]),
                    water_area_km2=rnd(w["area"][i]),
                    seasonal_norm_km2=rnd(w["norms"][i] * PIXEL_KM2),
                    pct_of_baseline_median=rnd(w["pct"][i], 4),
                    clear_fraction=rnd(cf),
                    water_area_clear_km2=rnd(
                        int((wmask & clear & zm).sum()) * PIXEL_KM2))
            else:
                c = ct[zid]
                zc = zm & clear
                zrec[zid] = dict(
                    mean_ndvi=rnd(ndvi_true[zm].mean()),
                    mean_ndvi_clear=rnd(ndvi_true[zc].mean())
                    if zc.any() else None,
                    parcel_mean_ndvi=rnd(c["ndvi"][i].mean()),
                    vci_lt35_share=rnd(c["share"][i], 4),
                    parcel_mean_vci=rnd(c["mean_vci"][i], 2),
                    clear_fraction=rnd(cf))
        records.append(dict(
            date=d.isoformat(), scene_id=scene_id(d), year=d.year,
            month=d.month, baseline=d.year != last_year, cloud=plan[i],
            clear_fraction=rnd(clear.mean()), zones=zrec))

    # Zone summaries and the truth file.
    zones_out = {}
    for zid in ZONE_ORDER:
        z = land.zones[zid]
        c0, r0, c1, r1 = z["win"]
        npx = (c1 - c0) * (r1 - r0)
        zo = dict(name=z["name"], kind=z["kind"], n_pixels=npx,
                  area_km2=rnd(npx * PIXEL_KM2),
                  window_px=[int(c0), int(r0), int(c1), int(r1)])
        if zid in RESERVOIRS:
            zo["mean_water_km2"] = rnd(z["mean_px"] * PIXEL_KM2)
        elif zid == "flood_lake":
            zo["lake_km2"] = rnd(int(z["lake"].sum()) * PIXEL_KM2)
            zo["flood_km2"] = rnd(int(z["flood"].sum()) * PIXEL_KM2)
        else:
            zo.update(n_parcels=z["n_parcels"],
                      n_parcel_pixels=int(len(z["pix"])),
                      drought_parcels=z["n_drought"])
        zones_out[zid] = zo
    truth = dict(
        generator=dict(seed=args.seed, size=n, start_year=args.start_year,
                       years=args.years, epsg=EPSG, origin_x=ORIGIN_X,
                       origin_y=ORIGIN_Y, pixel_size_m=PIXEL_M,
                       pixel_area_km2=PIXEL_KM2,
                       numpy_version=np.__version__,
                       gdal_version=gdal.__version__),
        baseline_years=years[:-1], monitoring_year=last_year,
        zones=zones_out,
        baseline_median_km2={zid: {f"{m:02d}": rnd(v) for m, v in
                                   wt[zid]["median"].items()}
                             for zid in wt},
        dates=records, events=ev)
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    write_zones(os.path.join(out, "zones.geojson"), land)
    write_config(os.path.join(out, "archive.yaml"), args, dates)

    n_cloud = sum(p != "clear" for p in plan)
    print(f"{out}: {len(dates)} scenes {dates[0]} .. {dates[-1]}, "
          f"{n_cloud} cloudy ({plan.count('full')} full), "
          f"{time.monotonic() - t0:.1f} s")
    for k, e in ev.items():
        if k != "protected_dates":
            print(f"  {k}: {e.get('first_observation')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

/* The run's report: OUT/<region>/report.json (the report document of
 * include/aralwatch/report.h) and report.html with quicklooks of the latest
 * date, built from the catalog at the end of a run.
 *
 * - alerts: every record the run issued, plus the last record of every
 *   alert still in force (from alert_state), most severe first (the page
 *   sorts them);
 * - notices and forecasts: those of the latest date the run processed;
 * - zones: each zone's level (the highest over its rules), its latest
 *   metrics, and per rule its metric's series over every date in the
 *   catalog, with the baseline band (p10, median, p90 of the period) where
 *   there is one and the rule's levels;
 * - quicklooks of the latest date: water class, water change and VCI. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include "aralwatch/catalog.h"
#include "aralwatch/report.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"
#include "baseline.h"
#include "internal.h"
#include "runwork.h"

static int level_rank(const char *l)
{
    if (!l)
        return -1;
    return strcmp(l, "alert") == 0     ? 2
           : strcmp(l, "warning") == 0 ? 1
           : strcmp(l, "watch") == 0   ? 0
                                       : -1;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The zone baseline of `metric` for the period of `date`: p10, median,
 * p90 (NaN when none). */
static void zone_band(sqlite3 *db, aw_period per, const char *zone,
                      const char *metric, const char *date, double out[3])
{
    out[0] = out[1] = out[2] = NAN;
    char pname[AW_PERIOD_NAME_MAX];
    aw_period_name(per, aw_period_of(per, date), pname);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT p10, median, p90 FROM zone_baseline WHERE "
                           "period = ?1 AND zone_id = ?2 AND metric = ?3",
                           -1, &q, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(q, 1, pname, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, zone, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, metric, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        for (int k = 0; k < 3; k++)
            if (sqlite3_column_type(q, k) != SQLITE_NULL)
                out[k] = sqlite3_column_double(q, k);
    sqlite3_finalize(q);
}

static const char *metric_label(aw_metric m)
{
    switch (m) {
    case AW_METRIC_WATER_AREA_KM2:
        return "Water area, km\xc2\xb2";
    case AW_METRIC_WATER_FRACTION:
        return "Water share of the valid area";
    case AW_METRIC_VALID_FRACTION:
        return "Valid (cloud-free) share of the zone";
    case AW_METRIC_MEAN_NDVI:
        return "Mean NDVI";
    case AW_METRIC_MEAN_NDWI:
        return "Mean NDWI";
    case AW_METRIC_MEAN_MNDWI:
        return "Mean MNDWI";
    case AW_METRIC_WATER_AREA_PCT_MEDIAN:
        return "Water area, % of the baseline median";
    case AW_METRIC_LOST_WATER_KM2:
        return "Lost water, km\xc2\xb2";
    case AW_METRIC_NEW_WATER_KM2:
        return "New water, km\xc2\xb2";
    case AW_METRIC_STRESSED_PCT:
        return "Stressed cropland (VCI < 35), %";
    case AW_METRIC_MEAN_VCI:
        return "Mean VCI";
    case AW_METRIC_NDVI_ANOMALY:
        return "NDVI anomaly (z)";
    case AW_METRIC_COUNT:
        break;
    }
    return "";
}

/* One chart: the zone's series of metric m over every date, with the
 * baseline band and the rule's levels (rule may be NULL). */
static json_t *series(sqlite3 *db, const aw_config *cfg, const aw_zone *z,
                      aw_metric m, const aw_rule_cfg *rule)
{
    json_t *s = json_object();
    json_object_set_new(s, "metric", json_string(aw_metric_name(m)));
    json_object_set_new(s, "label", json_string(metric_label(m)));
    json_object_set_new(s, "unit",
                        json_string(m == AW_METRIC_WATER_AREA_PCT_MEDIAN ||
                                            m == AW_METRIC_STRESSED_PCT
                                        ? "%"
                                    : m == AW_METRIC_WATER_AREA_KM2 ||
                                            m == AW_METRIC_LOST_WATER_KM2 ||
                                            m == AW_METRIC_NEW_WATER_KM2
                                        ? "km\xc2\xb2"
                                        : ""));
    json_t *pts = json_array(), *band = json_array();
    sqlite3_stmt *q = NULL;
    /* Every date done, with the value or null (a gap: insufficient data
     * or no product). */
    if (sqlite3_prepare_v2(
            db,
            "SELECT d.date, m.value, v.value FROM dates d LEFT JOIN "
            "zone_metrics m ON m.date = d.date AND m.zone_id = ?1 AND "
            "m.metric = ?2 LEFT JOIN zone_metrics v ON v.date = d.date AND "
            "v.zone_id = ?1 AND v.metric = 'valid_fraction' WHERE d.status = "
            "'done' ORDER BY d.date",
            -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, z->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, aw_metric_name(m), -1, SQLITE_STATIC);
        double min_valid =
            rule ? rule->min_valid_fraction : cfg->alerts_min_valid_fraction;
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(q, 0);
            if (!d || strlen(d) != 10)
                continue;
            int ok = sqlite3_column_type(q, 1) != SQLITE_NULL &&
                     sqlite3_column_type(q, 2) != SQLITE_NULL &&
                     sqlite3_column_double(q, 2) >= min_valid;
            /* The chart starts at the metric's first value (metrics
             * against the baseline have none before it exists). */
            if (!ok && json_array_size(pts) == 0)
                continue;
            json_t *p = json_array();
            json_array_append_new(p, json_string(d));
            json_array_append_new(p, ok ? json_real(sqlite3_column_double(q, 1))
                                        : json_null());
            json_array_append_new(pts, p);
            double b[3] = {NAN, NAN, NAN};
            if (m == AW_METRIC_WATER_AREA_PCT_MEDIAN) {
                zone_band(db, cfg->baseline_period, z->id, "water_filled_km2",
                          d, b);
                if (b[1] > 0) {
                    b[0] = 100.0 * b[0] / b[1];
                    b[2] = 100.0 * b[2] / b[1];
                    b[1] = 100.0;
                }
                else
                    b[0] = b[1] = b[2] = NAN;
            }
            else if (m == AW_METRIC_WATER_AREA_KM2)
                zone_band(db, cfg->baseline_period, z->id, "water_filled_km2",
                          d, b);
            else if (m == AW_METRIC_MEAN_NDVI)
                zone_band(db, cfg->baseline_period, z->id, "mean_ndvi", d, b);
            if (isfinite(b[1])) {
                json_t *r = json_array();
                json_array_append_new(r, json_string(d));
                for (int k = 0; k < 3; k++)
                    json_array_append_new(r, num(b[k]));
                json_array_append_new(band, r);
            }
        }
    }
    sqlite3_finalize(q);
    json_object_set_new(s, "points", pts);
    json_object_set_new(s, "baseline", band);
    if (rule) {
        static const char *const names[3] = {"watch", "warning", "alert"};
        json_t *lv = json_object();
        for (int l = 0; l < 3; l++)
            if (rule->has_level[l])
                json_object_set_new(lv, names[l], json_real(rule->level[l]));
        json_object_set_new(s, "levels", lv);
        json_object_set_new(
            s, "direction",
            json_string(rule->cmp == AW_CMP_BELOW ? "below" : "above"));
    }
    return s;
}

/* The record of an alert id from the catalog (new reference), or NULL. */
static json_t *record_of(sqlite3 *db, const char *id)
{
    sqlite3_stmt *q = NULL;
    json_t *rec = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT date, record FROM alerts WHERE "
                           "alert_id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(q, 1);
        rec = text ? json_loads(text, 0, NULL) : NULL;
        if (rec && !json_object_get(rec, "date"))
            json_object_set_new(
                rec, "date",
                json_string((const char *)sqlite3_column_text(q, 0)));
    }
    sqlite3_finalize(q);
    return rec;
}

static int has_id(json_t *arr, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a)
    {
        const char *x = json_string_value(json_object_get(a, "alert_id"));
        if (x && strcmp(x, id) == 0)
            return 1;
    }
    return 0;
}

static void add_quicklook(aw_ctx *ctx, json_t *qls, const char *region_dir,
                          const char *date, const char *src_name,
                          const char *png_name, const char *title, int kind)
{
    char rel_src[64], rel_png[64];
    snprintf(rel_src, sizeof rel_src, "%s/%s", date, src_name);
    snprintf(rel_png, sizeof rel_png, "quicklooks/%s", png_name);
    char *src = aw_path_join(region_dir, rel_src);
    char *png = aw_path_join(region_dir, rel_png);
    struct stat sb;
    aw_status st = AW_ERR_INPUT;
    if (src && png && stat(src, &sb) == 0) {
        if (kind == 0)
            st = aw_quicklook_classes(ctx, src, 800, png);
        else
            st = aw_quicklook_ramp(ctx, src, aw_ramp_vci, aw_ramp_vci_n, 800,
                                   png);
        if (st != AW_OK)
            aw_log(ctx, AW_LOG_WARN, "quicklook %s: %s", png_name,
                   aw_ctx_errmsg(ctx));
    }
    if (st == AW_OK) {
        json_t *q = json_object();
        char t[128];
        snprintf(t, sizeof t, "%s %s", title, date);
        json_object_set_new(q, "title", json_string(t));
        json_object_set_new(q, "path", json_string(rel_png));
        if (kind == 1) {
            json_t *lg = json_object();
            json_object_set_new(lg, "ramp", json_string("vci"));
            json_object_set_new(lg, "min", json_integer(0));
            json_object_set_new(lg, "max", json_integer(100));
            json_object_set_new(lg, "label", json_string("VCI"));
            json_object_set_new(q, "legend", lg);
        }
        else
            json_object_set_new(q, "legend", json_null());
        json_array_append_new(qls, q);
    }
    free(src);
    free(png);
}

/* True colour, when the date has its reflectance (outputs.rasters: rgb). */
static void add_rgb(aw_ctx *ctx, json_t *qls, const char *region_dir,
                    const char *date)
{
    static const char *const band[3] = {"red.tif", "green.tif", "blue.tif"};
    char *p[3] = {NULL, NULL, NULL};
    int have = 1;
    for (int k = 0; k < 3; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "%s/%s", date, band[k]);
        p[k] = aw_path_join(region_dir, rel);
        struct stat sb;
        have = have && p[k] && stat(p[k], &sb) == 0;
    }
    char *png = aw_path_join(region_dir, "quicklooks/rgb.png");
    if (have && png) {
        /* Reflectance 0 to 0.3: a usual stretch for land and water. */
        if (aw_quicklook_rgb(ctx, p[0], p[1], p[2], 0.0, 0.3, 800, png) ==
            AW_OK) {
            json_t *q = json_object();
            char t[64];
            snprintf(t, sizeof t, "True colour %s", date);
            json_object_set_new(q, "title", json_string(t));
            json_object_set_new(q, "path", json_string("quicklooks/rgb.png"));
            json_object_set_new(q, "legend", json_null());
            json_array_append_new(qls, q);
        }
        else
            aw_log(ctx, AW_LOG_WARN, "quicklook rgb.png: %s",
                   aw_ctx_errmsg(ctx));
    }
    for (int k = 0; k < 3; k++)
        free(p[k]);
    free(png);
}

aw_status aw_run_report(aw_ctx *ctx, const run_state *rs,
                        const aw_run_report_in *in)
{
    const aw_config *cfg = rs->cfg;
    sqlite3 *db = aw_catalog_db(rs->catalog);
    char now[21];
    aw_utc_now(now);
    json_t *doc = json_object();
    char title[256];
    snprintf(title, sizeof title, "aralwatch report \xe2\x80\x94 %s",
             cfg->region_name);
    json_object_set_new(doc, "title", json_string(title));
    json_object_set_new(doc, "region", json_string(cfg->region_name));
    json_object_set_new(doc, "generated", json_string(now));
    json_t *sw = json_object();
    json_object_set_new(sw, "name", json_string("aralwatch"));
    json_object_set_new(sw, "version", json_string(AW_VERSION));
    json_object_set_new(sw, "git_sha", json_string(AW_GIT_SHA));
    json_object_set_new(doc, "software", sw);
    json_t *run = json_object();
    json_object_set(run, "dates", in->dates);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT from_date, to_date, min_years FROM "
                           "baseline_periods LIMIT 1",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        json_t *b = json_object();
        json_object_set_new(
            b, "from", json_string((const char *)sqlite3_column_text(q, 0)));
        json_object_set_new(
            b, "to", json_string((const char *)sqlite3_column_text(q, 1)));
        json_object_set_new(b, "period",
                            json_string(cfg->baseline_period == AW_PERIOD_DEKAD
                                            ? "dekad"
                                            : "month"));
        json_object_set_new(b, "min_years",
                            json_integer(sqlite3_column_int(q, 2)));
        json_object_set_new(run, "baseline", b);
    }
    sqlite3_finalize(q);
    json_object_set_new(doc, "run", run);

    /* Alerts: issued by this run, and the last record of every alert in
     * force. */
    json_t *alerts = json_deep_copy(in->alerts);
    json_t *zlevel = json_object();
    if (sqlite3_prepare_v2(db,
                           "SELECT rule_id, zone_id, level, last_record FROM "
                           "alert_state",
                           -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *zone = (const char *)sqlite3_column_text(q, 1);
            const char *level = (const char *)sqlite3_column_text(q, 2);
            const char *last = (const char *)sqlite3_column_text(q, 3);
            if (!zone || level_rank(level) < 0)
                continue;
            const char *cur = json_string_value(json_object_get(zlevel, zone));
            if (level_rank(level) > level_rank(cur))
                json_object_set_new(zlevel, zone, json_string(level));
            if (last && !has_id(alerts, last)) {
                json_t *rec = record_of(db, last);
                if (rec)
                    json_array_append_new(alerts, rec);
            }
        }
    }
    sqlite3_finalize(q);
    json_object_set_new(doc, "alerts", alerts);
    json_object_set(doc, "notices", in->notices);
    json_object_set(doc, "forecasts", in->forecasts);

    json_t *zones = json_array();
    for (size_t zi = 0; zi < rs->zones.n; zi++) {
        const aw_zone *z = &rs->zones.z[zi];
        json_t *zj = json_object();
        json_object_set_new(zj, "zone_id", json_string(z->id));
        json_object_set_new(zj, "zone_name", json_string(z->name));
        json_object_set_new(zj, "kind",
                            json_string(aw_zone_kind_name(z->kind)));
        json_object_set_new(zj, "area_km2", json_real(z->area_km2));
        const char *lv = json_string_value(json_object_get(zlevel, z->id));
        json_object_set_new(zj, "level", json_string(lv ? lv : "none"));
        json_t *latest = json_object();
        json_t *mets = json_object();
        if (in->latest_date) {
            json_object_set_new(latest, "date", json_string(in->latest_date));
            if (sqlite3_prepare_v2(db,
                                   "SELECT metric, value FROM zone_metrics "
                                   "WHERE date = ?1 AND zone_id = ?2 ORDER BY "
                                   "metric",
                                   -1, &q, NULL) == SQLITE_OK) {
                sqlite3_bind_text(q, 1, in->latest_date, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, z->id, -1, SQLITE_STATIC);
                while (sqlite3_step(q) == SQLITE_ROW)
                    json_object_set_new(mets,
                                        (const char *)sqlite3_column_text(q, 0),
                                        json_real(sqlite3_column_double(q, 1)));
            }
            sqlite3_finalize(q);
        }
        json_object_set_new(latest, "metrics", mets);
        json_object_set_new(zj, "latest", latest);
        json_t *charts = json_array();
        unsigned shown = 0;
        for (size_t ri = 0; ri < cfg->n_rules; ri++) {
            const aw_rule_cfg *r = &cfg->rules[ri];
            if (!aw_rule_applies(r, z) || (shown >> r->metric & 1u))
                continue;
            shown |= 1u << r->metric;
            json_array_append_new(charts, series(db, cfg, z, r->metric, r));
        }
        /* Without a rule, the zone's main quantity. */
        if (!shown)
            json_array_append_new(charts, series(db, cfg, z,
                                                 z->kind == AW_ZONE_CROPLAND
                                                     ? AW_METRIC_MEAN_NDVI
                                                     : AW_METRIC_WATER_AREA_KM2,
                                                 NULL));
        json_object_set_new(zj, "series", charts);
        json_array_append_new(zones, zj);
    }
    json_decref(zlevel);
    json_object_set_new(doc, "zones", zones);

    json_t *qls = json_array();
    char *qdir = aw_path_join(rs->region_dir, "quicklooks");
    if (in->latest_date && qdir && aw_mkdirs(ctx, qdir) == AW_OK) {
        add_rgb(ctx, qls, rs->region_dir, in->latest_date);
        add_quicklook(ctx, qls, rs->region_dir, in->latest_date, "water.tif",
                      "water.png", "Water", 0);
        add_quicklook(ctx, qls, rs->region_dir, in->latest_date,
                      "water_change.tif", "water_change.png",
                      "Water change against the baseline", 0);
        add_quicklook(ctx, qls, rs->region_dir, in->latest_date, "vci.tif",
                      "vci.png", "VCI", 1);
    }
    free(qdir);
    json_object_set_new(doc, "quicklooks", qls);

    char *jpath = aw_path_join(rs->region_dir, "report.json");
    char *hpath = aw_path_join(rs->region_dir, "report.html");
    aw_status st = jpath && hpath ? aw_write_json_file(ctx, jpath, doc)
                                  : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK)
        st = aw_report_write(ctx, doc, rs->region_dir, hpath);
    free(jpath);
    free(hpath);
    json_decref(doc);
    return st;
}

/* Alert rules with history (README "Alerts").
 *
 * A rule compares a zone metric with thresholds per level (watch / warning
 * / alert). The level of a rule in a zone is not the level of one
 * observation: it is the state of a machine replayed over the zone's
 * series in the catalog, oldest first, up to the date being processed:
 * - an observation counts when the zone's valid fraction reaches the
 *   rule's min_valid_fraction and the metric exists (else it is
 *   "insufficient data" and neither confirms nor breaks anything);
 * - escalation: the level rises to L when the last `persistence` valid
 *   observations are all at L or above;
 * - de-escalation and all-clear, with hysteresis: the level falls to L'
 *   when the last `persistence` valid observations are all below the
 *   thresholds above L' by the hysteresis margin (hysteresis x |threshold|);
 * - a record is issued only on a change (new, update, cancel); while the
 *   level holds nothing is issued again (repeats suppressed), the alert is
 *   listed as active.
 * Record ids hash the region, zone, rule, date, status and level, so a
 * replay gives the same ids and `supersedes` chains link an episode's
 * records. Because the state is replayed from the catalog, it does not
 * depend on the order dates were processed in, and a rerun gives the same
 * records.
 *
 * Forecasts: a Theil-Sen trend over the last forecast.observations valid
 * observations; where Mann-Kendall's p < forecast.alpha and the trend goes
 * towards levels not reached yet, the projected date of crossing each with
 * the bracket from the slope's confidence interval. Forecasts are never
 * alerts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "aralwatch/timeseries.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"

static const char *const level_names[3] = {"watch", "warning", "alert"};
/* CAP 1.2 severity for each level. */
static const char *const level_severity[3] = {"Minor", "Moderate", "Severe"};

const char *aw_level_name(int level)
{
    return level >= 0 && level < 3 ? level_names[level] : "none";
}

int aw_rule_level(const aw_rule_cfg *rule, double value)
{
    if (!isfinite(value))
        return -1;
    int level = -1;
    for (int l = 0; l < 3; l++) {
        if (!rule->has_level[l])
            continue;
        int hit = rule->cmp == AW_CMP_BELOW ? value < rule->level[l]
                                            : value > rule->level[l];
        if (hit)
            level = l;
    }
    return level;
}

int aw_rule_applies(const aw_rule_cfg *rule, const aw_zone *z)
{
    if (rule->kind_set && rule->kind != z->kind)
        return 0;
    if (rule->n_zone_ids == 0)
        return 1;
    for (size_t i = 0; i < rule->n_zone_ids; i++)
        if (strcmp(rule->zone_ids[i], z->id) == 0)
            return 1;
    return 0;
}

static const char *kind_name(aw_zone_kind k)
{
    switch (k) {
    case AW_ZONE_WATERBODY:
        return "waterbody";
    case AW_ZONE_CROPLAND:
        return "cropland";
    case AW_ZONE_OTHER:
        return "other";
    }
    return "other";
}

const char *aw_zone_kind_name(aw_zone_kind k)
{
    return kind_name(k);
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *thresholds_json(const aw_rule_cfg *r, double min_valid)
{
    json_t *t = json_object();
    char text[256];
    size_t used =
        (size_t)snprintf(text, sizeof text, "%s %s", aw_metric_name(r->metric),
                         r->cmp == AW_CMP_BELOW ? "below" : "above");
    for (int l = 0; l < 3; l++) {
        if (!r->has_level[l])
            continue;
        json_object_set_new(t, level_names[l], json_real(r->level[l]));
        if (used < sizeof text)
            used += (size_t)snprintf(text + used, sizeof text - used, " %s %g",
                                     level_names[l], r->level[l]);
    }
    json_object_set_new(t, "rule", json_string(text));
    json_object_set_new(t, "min_valid_fraction", json_real(min_valid));
    return t;
}

/* ---- Dates ----------------------------------------------------------------
 */

/* ---- History
 * ------------------------------------------------------------------ */

typedef struct obs {
    char date[11];
    double v, vf;
} obs;

/* The zone's series of `metric` and valid fraction over the dates done
 * before `before`, oldest first. */
static aw_status load_series(aw_ctx *ctx, sqlite3 *db, const char *zone,
                             const char *metric, const char *before, obs **out,
                             size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!db)
        return AW_OK;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT d.date, m.value, v.value FROM dates d "
            "LEFT JOIN zone_metrics m ON m.date = d.date AND m.zone_id = ?1 "
            "AND m.metric = ?2 "
            "LEFT JOIN zone_metrics v ON v.date = d.date AND v.zone_id = ?1 "
            "AND v.metric = 'valid_fraction' "
            "WHERE d.status = 'done' AND d.date < ?3 ORDER BY d.date",
            -1, &q, NULL) != SQLITE_OK)
        return aw_fail(ctx, AW_ERR_IO, "catalog: zone series: %s",
                       sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, zone, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, before, -1, SQLITE_STATIC);
    obs *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(q, 0);
        if (!d || strlen(d) != 10)
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            obs *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                sqlite3_finalize(q);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n].date, d, 11);
        v[n].v = sqlite3_column_type(q, 1) == SQLITE_NULL
                     ? (double)NAN
                     : sqlite3_column_double(q, 1);
        v[n].vf = sqlite3_column_type(q, 2) == SQLITE_NULL
                      ? (double)NAN
                      : sqlite3_column_double(q, 2);
        n++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        free(v);
        return aw_fail(ctx, AW_ERR_IO, "catalog: zone series: %s",
                       sqlite3_errmsg(db));
    }
    *out = v;
    *n_out = n;
    return AW_OK;
}

/* The level a value still holds with the hysteresis margin (for
 * de-escalation): below rules stay at L while v < threshold + margin. */
static int level_held(const aw_rule_cfg *r, double v)
{
    if (!isfinite(v))
        return -1;
    int level = -1;
    for (int l = 0; l < 3; l++) {
        if (!r->has_level[l])
            continue;
        double m = r->hysteresis * fabs(r->level[l]);
        int hit =
            r->cmp == AW_CMP_BELOW ? v < r->level[l] + m : v > r->level[l] - m;
        if (hit)
            level = l;
    }
    return level;
}

enum { ISSUE_NONE, ISSUE_NEW, ISSUE_UPDATE, ISSUE_CANCEL };
static const char *const issue_names[] = {"", "new", "update", "cancel"};

typedef struct replay_state {
    int level;           /* after the last observation, -1 none */
    char onset[11];      /* first date of the episode */
    char last_id[33];    /* last record issued in the episode */
    char last_date[11];  /* date of that record */
    int issued;          /* what the last observation issued */
    int prev_level;      /* level before the last observation */
    char supersedes[33]; /* of the record issued at the last observation */
    int prev_valid;      /* a valid observation before the last one */
    double prev_v;       /* its value */
    char prev_date[11];
} replay_state;

static void record_id(const aw_config *cfg, const char *zone,
                      const aw_rule_cfg *r, const char *date, int issue,
                      int level, char id[33])
{
    char key[1024], hex[65];
    snprintf(key, sizeof key, "%s|%s|%s|%s|%s|%s|%s|%s", cfg->region_name, zone,
             r->id, date, r->type, issue_names[issue], aw_level_name(level),
             AW_VERSION);
    aw_sha256_buf(key, strlen(key), hex);
    memcpy(id, hex, 32);
    id[32] = '\0';
}

static int obs_valid(const aw_rule_cfg *r, const obs *o)
{
    return isfinite(o->v) && o->vf >= r->min_valid_fraction;
}

/* Replay the machine over s[0..n) (the last one is the date processed). */
static void replay(const aw_config *cfg, const char *zone, const aw_rule_cfg *r,
                   const obs *s, size_t n, replay_state *st)
{
    memset(st, 0, sizeof *st);
    st->level = -1;
    int K = r->persistence > 0 ? r->persistence : 1;
    size_t *last = aw_calloc2((size_t)K, sizeof *last);
    size_t nvalid = 0;
    for (size_t i = 0; i < n; i++) {
        int current = i + 1 == n;
        if (current) {
            st->issued = ISSUE_NONE;
            st->prev_level = st->level;
        }
        if (!obs_valid(r, &s[i]))
            continue;
        if (current) {
            st->prev_valid = nvalid > 0;
            if (nvalid > 0 && last) {
                const obs *p = &s[last[(nvalid - 1) % (size_t)K]];
                st->prev_v = p->v;
                memcpy(st->prev_date, p->date, 11);
            }
        }
        if (!last) /* out of memory: no persistence */
            continue;
        last[nvalid % (size_t)K] = i;
        nvalid++;
        if (nvalid < (size_t)K)
            continue;
        int up = 3, down = -1;
        for (int k = 0; k < K; k++) {
            const obs *o = &s[last[((nvalid - 1) - (size_t)k) % (size_t)K]];
            int raw = aw_rule_level(r, o->v), held = level_held(r, o->v);
            if (raw < up)
                up = raw;
            if (held > down)
                down = held;
        }
        int next = st->level;
        if (up > st->level)
            next = up;
        else if (down < st->level)
            next = down;
        if (next == st->level)
            continue;
        int issue = st->level < 0 ? ISSUE_NEW
                    : next < 0    ? ISSUE_CANCEL
                                  : ISSUE_UPDATE;
        char id[33];
        record_id(cfg, zone, r, s[i].date, issue, next, id);
        if (current) {
            st->issued = issue;
            snprintf(st->supersedes, sizeof st->supersedes, "%s",
                     issue == ISSUE_NEW ? "" : st->last_id);
        }
        if (issue == ISSUE_NEW)
            memcpy(st->onset, s[i].date, 11);
        memcpy(st->last_id, id, 33);
        memcpy(st->last_date, s[i].date, 11);
        st->level = next;
    }
    free(last);
}

/* ---- Records
 * ------------------------------------------------------------------- */

static json_t *baseline_json(const aw_config *cfg, const aw_zone_stats *s,
                             const char *date)
{
    if (!s->has_baseline)
        return json_null();
    json_t *b = json_object();
    json_object_set_new(b, "source", json_string("aralwatch baseline"));
    char range[32];
    snprintf(range, sizeof range, "%s/%s", cfg->baseline_from,
             cfg->baseline_to);
    json_object_set_new(b, "period_of_year",
                        json_string(cfg->baseline_period == AW_PERIOD_DEKAD
                                        ? "dekad"
                                        : "month"));
    json_object_set_new(b, "date", json_string(date));
    if (cfg->baseline_from[0])
        json_object_set_new(b, "years", json_string(range));
    json_object_set_new(b, "statistic", json_string("median"));
    json_object_set_new(b, "water_area_median_km2",
                        num_or_null(s->baseline_median_km2));
    return b;
}

/* The area a record concerns, by rule type. */
static double affected_km2(const aw_rule_cfg *r, const aw_zone_stats *s)
{
    if (strcmp(r->type, "flood_expansion") == 0)
        return s->has_baseline ? s->new_km2 : s->water_area_km2;
    if (strcmp(r->type, "water_shrinkage") == 0)
        return s->has_baseline ? s->lost_km2 : (double)NAN;
    if (strcmp(r->type, "crop_stress") == 0 && s->has_baseline &&
        isfinite(s->stressed_pct))
        return s->stressed_pct / 100.0 * s->valid_area_km2;
    return NAN;
}

static json_t *tendency_json(const aw_rule_cfg *r, const replay_state *st,
                             double v)
{
    json_t *t = json_object();
    if (!st->prev_valid || !isfinite(v)) {
        json_object_set_new(t, "direction", json_string("unknown"));
        return t;
    }
    double ch = v - st->prev_v;
    /* Steady within 2 % of the previous value (or 1e-9 absolute). */
    double tol = fmax(0.02 * fabs(st->prev_v), 1e-9);
    const char *dir = "steady";
    if (fabs(ch) > tol) {
        int worse = r->cmp == AW_CMP_BELOW ? ch < 0 : ch > 0;
        dir = worse ? "worsening" : "improving";
    }
    json_object_set_new(t, "direction", json_string(dir));
    json_object_set_new(t, "previous_date", json_string(st->prev_date));
    json_object_set_new(t, "previous_value", json_real(st->prev_v));
    json_object_set_new(t, "change", json_real(ch));
    return t;
}

static json_t *make_record(const aw_config *cfg, const aw_zone *z,
                           const aw_zone_stats *s, const aw_rule_cfg *r,
                           const aw_alert_input *in, const replay_state *st,
                           double v, const char *created)
{
    int level = st->level;
    int shown = st->issued == ISSUE_CANCEL ? st->prev_level : level;
    json_t *a = json_object();
    json_object_set_new(a, "alert_id", json_string(st->last_id));
    json_object_set_new(a, "supersedes",
                        st->supersedes[0] ? json_string(st->supersedes)
                                          : json_null());
    json_object_set_new(a, "status", json_string(issue_names[st->issued]));
    json_object_set_new(a, "type", json_string(r->type));
    json_object_set_new(a, "rule_id", json_string(r->id));
    json_object_set_new(a, "level", json_string(aw_level_name(level)));
    json_object_set_new(a, "previous_level",
                        json_string(aw_level_name(st->prev_level)));
    json_object_set_new(
        a, "severity",
        json_string(level >= 0 ? level_severity[level] : "Unknown"));
    json_object_set_new(
        a, "certainty",
        json_string(s->valid_fraction >= 0.9 ? "Observed" : "Likely"));
    json_object_set_new(a, "date", json_string(in->date));
    json_object_set_new(a, "onset", json_string(st->onset));
    char head[512];
    if (st->issued == ISSUE_CANCEL)
        snprintf(head, sizeof head, "%s: %s %s ended (all clear)", z->name,
                 r->type, aw_level_name(shown));
    else
        snprintf(head, sizeof head, "%s: %s %s (%s %.4g, threshold %.4g)",
                 z->name, r->type, aw_level_name(level),
                 aw_metric_name(r->metric), v, r->level[level]);
    json_object_set_new(a, "headline", json_string(head));
    json_object_set_new(a, "region_id", json_string(cfg->region_name));
    json_object_set_new(a, "region_name", json_string(cfg->region_name));
    json_object_set_new(a, "zone_id", json_string(z->id));
    json_object_set_new(a, "zone_name", json_string(z->name));
    json_object_set_new(a, "zone_kind", json_string(kind_name(z->kind)));
    json_t *bb = json_array();
    for (int k = 0; k < 4; k++)
        json_array_append_new(bb, num_or_null(z->bbox_lonlat[k]));
    json_object_set_new(a, "geometry_bbox", bb);
    char ps[32], pe[32];
    snprintf(ps, sizeof ps, "%sT00:00:00Z", in->date);
    snprintf(pe, sizeof pe, "%sT23:59:59Z", in->date);
    json_object_set_new(a, "period_start", json_string(ps));
    json_object_set_new(a, "period_end", json_string(pe));
    json_object_set_new(a, "baseline", baseline_json(cfg, s, in->date));
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(aw_metric_name(r->metric)));
    json_object_set_new(m, "value", num_or_null(v));
    if (r->metric == AW_METRIC_WATER_AREA_PCT_MEDIAN && s->has_baseline) {
        json_object_set_new(m, "unit", json_string("%"));
        json_object_set_new(m, "baseline_value", json_real(100.0));
        json_object_set_new(m, "water_area_km2",
                            num_or_null(s->water_filled_km2));
        json_object_set_new(m, "baseline_median_km2",
                            num_or_null(s->baseline_median_km2));
        json_object_set_new(
            m, "abs_change",
            num_or_null(s->water_filled_km2 - s->baseline_median_km2));
        json_object_set_new(m, "pct_change", num_or_null(v - 100.0));
    }
    if (level >= 0)
        json_object_set_new(m, "threshold", json_real(r->level[level]));
    json_object_set_new(
        m, "comparison",
        json_string(r->cmp == AW_CMP_BELOW ? "below" : "above"));
    json_object_set_new(a, "metric", m);
    double aff = affected_km2(r, s);
    json_object_set_new(a, "area_affected_km2", num_or_null(aff));
    json_object_set_new(a, "pct_region_affected",
                        num_or_null(z->area_km2 > 0 && isfinite(aff)
                                        ? 100.0 * aff / z->area_km2
                                        : (double)NAN));
    json_object_set_new(a, "valid_fraction", json_real(s->valid_fraction));
    json_object_set_new(a, "zone_area_km2", json_real(z->area_km2));
    json_object_set_new(a, "n_scenes", json_integer((json_int_t)in->n_scenes));
    json_object_set_new(a, "tendency", tendency_json(r, st, v));
    json_t *thr = thresholds_json(r, r->min_valid_fraction);
    json_object_set_new(thr, "persistence", json_integer(r->persistence));
    json_object_set_new(thr, "hysteresis", json_real(r->hysteresis));
    json_object_set_new(a, "thresholds", thr);
    json_t *inputs = json_array();
    for (size_t k = 0; k < in->n_scenes; k++)
        json_array_append_new(inputs, json_string(in->scene_ids[k]));
    json_object_set_new(a, "inputs", inputs);
    json_t *sw = json_object();
    json_object_set_new(sw, "name", json_string("aralwatch"));
    json_object_set_new(sw, "version", json_string(AW_VERSION));
    json_object_set_new(sw, "git_sha", json_string(AW_GIT_SHA));
    json_object_set_new(a, "software", sw);
    json_t *outs = json_array();
    json_array_append_new(outs, json_string("zones.json"));
    json_array_append_new(outs, json_string("water.tif"));
    if (s->has_baseline)
        json_array_append_new(outs, json_string("water_change.tif"));
    json_object_set_new(a, "outputs", outs);
    json_object_set_new(a, "created", json_string(created));
    return a;
}

/* Forecast records of one rule in one zone: where the trend of the last
 * valid observations is significant and heads for levels not reached. */
static void forecast(const aw_config *cfg, const aw_zone *z,
                     const aw_rule_cfg *r, const obs *s, size_t n, int level,
                     const char *date, json_t *out)
{
    size_t N = (size_t)cfg->forecast_observations;
    double *t = aw_calloc2(N, sizeof *t), *y = aw_calloc2(N, sizeof *y);
    double *work = aw_calloc2(N * (N - 1) / 2 + 1, sizeof *work);
    size_t c = 0;
    for (size_t i = n; i-- > 0 && c < N && t && y;) {
        if (!obs_valid(r, &s[i]))
            continue;
        t[N - 1 - c] = (double)aw_days_from_date(s[i].date);
        y[N - 1 - c] = s[i].v;
        c++;
    }
    aw_trend tr;
    if (!t || !y || !work || c < (size_t)cfg->forecast_min_observations ||
        aw_theil_sen(t + (N - c), y + (N - c), c, cfg->forecast_alpha, work,
                     &tr) != 0 ||
        !(tr.p < cfg->forecast_alpha)) {
        free(t);
        free(y);
        free(work);
        return;
    }
    /* The trend must still hold at the end of the window: the Theil-Sen
     * slope of its most recent half has the same sign and at least half
     * the size (a flood that receded gives a significant fall over the
     * window, but a flat recent half). */
    size_t h = c / 2;
    aw_trend recent;
    if (h < 3 ||
        aw_theil_sen(t + (N - h), y + (N - h), h, cfg->forecast_alpha, work,
                     &recent) != 0 ||
        !(recent.slope * tr.slope > 0) ||
        fabs(recent.slope) < 0.5 * fabs(tr.slope)) {
        free(t);
        free(y);
        free(work);
        return;
    }
    /* The scatter of the observations about the line (1.4826 MAD of the
     * residuals): the level of the series is uncertain by that much too,
     * not only its slope. The bracket is where the line, with the slope's
     * confidence interval, reaches the threshold +- z sigma. */
    for (size_t i = 0; i < c; i++)
        work[i] = fabs(y[N - c + i] - (tr.intercept + tr.slope * t[N - c + i]));
    qsort(work, c, sizeof *work, aw_cmp_double);
    double mad = c % 2 ? work[c / 2] : 0.5 * (work[c / 2 - 1] + work[c / 2]);
    double shift =
        aw_norm_quantile(1.0 - cfg->forecast_alpha / 2.0) * 1.4826 * mad;
    double now = (double)aw_days_from_date(date);
    for (int l = level + 1; l < 3; l++) {
        if (!r->has_level[l])
            continue;
        int below = r->cmp == AW_CMP_BELOW;
        int heading = below ? tr.slope < 0 : tr.slope > 0;
        double tc, te, tl, x1, x2, te2, tl2;
        if (!heading ||
            aw_trend_crossing(&tr, now, r->level[l], &tc, &te, &tl) != 1 ||
            tc - now > (double)cfg->forecast_horizon_days)
            continue;
        /* The near side of the threshold band gives the earliest date
         * (now if the series is already inside it), the far side the
         * latest. */
        double near = r->level[l] + (below ? shift : -shift);
        double far = r->level[l] + (below ? -shift : shift);
        if (aw_trend_crossing(&tr, now, near, &x1, &te2, &x2) == 1)
            te = fmin(te, te2);
        else
            te = now;
        if (aw_trend_crossing(&tr, now, far, &x1, &x2, &tl2) == 1)
            tl = fmax(tl, tl2);
        json_t *f = json_object();
        char d1[11], d2[11], d3[11];
        aw_date_from_days((long)floor(tc + 0.5), d1);
        json_object_set_new(f, "date", json_string(date));
        json_object_set_new(f, "zone_id", json_string(z->id));
        json_object_set_new(f, "zone_name", json_string(z->name));
        json_object_set_new(f, "rule_id", json_string(r->id));
        json_object_set_new(f, "type", json_string(r->type));
        json_object_set_new(f, "metric",
                            json_string(aw_metric_name(r->metric)));
        json_object_set_new(f, "level", json_string(aw_level_name(l)));
        json_object_set_new(f, "threshold", json_real(r->level[l]));
        json_object_set_new(f, "slope_per_day", json_real(tr.slope));
        json_object_set_new(f, "slope_low", num_or_null(tr.slope_lo));
        json_object_set_new(f, "slope_high", num_or_null(tr.slope_hi));
        json_object_set_new(f, "p_value", json_real(tr.p));
        json_object_set_new(f, "n_obs", json_integer((json_int_t)c));
        json_object_set_new(f, "projected_date", json_string(d1));
        if (isfinite(te)) {
            aw_date_from_days((long)floor(te + 0.5), d2);
            json_object_set_new(f, "earliest", json_string(d2));
        }
        else
            json_object_set_new(f, "earliest", json_null());
        if (isfinite(tl)) {
            aw_date_from_days((long)floor(tl + 0.5), d3);
            json_object_set_new(f, "latest", json_string(d3));
        }
        else
            json_object_set_new(f, "latest", json_null());
        json_object_set_new(
            f, "method",
            json_string("Theil-Sen slope, Mann-Kendall test, crossing of the "
                        "threshold by the trend line; bracket from the "
                        "slope's confidence interval"));
        json_object_set_new(f, "note", json_string("forecast, not an alert"));
        json_array_append_new(out, f);
    }
    free(t);
    free(y);
    free(work);
}

static int baseline_metric(aw_metric m)
{
    return m >= AW_METRIC_WATER_AREA_PCT_MEDIAN && m < AW_METRIC_COUNT;
}

aw_status aw_alerts_eval(aw_ctx *ctx, const aw_config *cfg,
                         const aw_zones *zones, const aw_zone_stats *stats,
                         const aw_alert_input *in, aw_alert_out *out)
{
    char created[21];
    aw_utc_now(created);
    out->n_alerts = 0;
    for (size_t ri = 0; ri < cfg->n_rules; ri++) {
        const aw_rule_cfg *r = &cfg->rules[ri];
        double min_valid = r->min_valid_fraction;
        for (size_t zi = 0; zi < zones->n; zi++) {
            const aw_zone *z = &zones->z[zi];
            const aw_zone_stats *s = &stats[zi];
            if (!aw_rule_applies(r, z))
                continue;
            double v = aw_metric_value(s, r->metric);
            obs *series = NULL;
            size_t n = 0;
            aw_status st =
                load_series(ctx, in->db, z->id, aw_metric_name(r->metric),
                            in->date, &series, &n);
            if (st != AW_OK)
                return st;
            obs *grown = realloc(series, (n + 1) * sizeof *grown);
            if (!grown) {
                free(series);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
            series = grown;
            snprintf(series[n].date, sizeof series[n].date, "%s", in->date);
            series[n].v = v;
            series[n].vf = s->valid_fraction;
            n++;
            replay_state rst;
            replay(cfg, z->id, r, series, n, &rst);

            if (s->valid_fraction < min_valid || !isfinite(v)) {
                json_t *no = json_object();
                json_object_set_new(no, "status",
                                    json_string("insufficient_data"));
                json_object_set_new(no, "rule_id", json_string(r->id));
                json_object_set_new(no, "type", json_string(r->type));
                json_object_set_new(no, "zone_id", json_string(z->id));
                json_object_set_new(no, "zone_name", json_string(z->name));
                json_object_set_new(no, "valid_fraction",
                                    json_real(s->valid_fraction));
                json_object_set_new(no, "min_valid_fraction",
                                    json_real(min_valid));
                json_object_set_new(no, "level_held",
                                    json_string(aw_level_name(rst.level)));
                const char *why =
                    s->valid_fraction < min_valid
                        ? "too little valid (cloud-free, covered) area in the "
                          "zone to judge this rule"
                    : baseline_metric(r->metric) && !s->has_baseline
                        ? "no baseline for this period of the year (run "
                          "aralwatch baseline)"
                    : baseline_metric(r->metric) && s->n_vci == 0 &&
                            r->metric >= AW_METRIC_STRESSED_PCT
                        ? "no pixel of the zone is in its growing season "
                          "(baseline median NDVI below baseline.season_ndvi): "
                          "VCI is not judged"
                        : "the metric could not be computed for this zone";
                json_object_set_new(no, "message", json_string(why));
                json_array_append_new(out->notices, no);
            }
            if (rst.issued != ISSUE_NONE) {
                json_array_append_new(
                    out->alerts,
                    make_record(cfg, z, s, r, in, &rst, v, created));
                if (rst.issued != ISSUE_CANCEL && rst.level >= 0)
                    out->n_alerts++;
            }
            else if (rst.level >= 0) {
                json_t *a = json_object();
                json_object_set_new(a, "alert_id", json_string(rst.last_id));
                json_object_set_new(a, "rule_id", json_string(r->id));
                json_object_set_new(a, "type", json_string(r->type));
                json_object_set_new(a, "zone_id", json_string(z->id));
                json_object_set_new(a, "zone_name", json_string(z->name));
                json_object_set_new(a, "level",
                                    json_string(aw_level_name(rst.level)));
                json_object_set_new(a, "onset", json_string(rst.onset));
                json_object_set_new(a, "since", json_string(rst.last_date));
                json_object_set_new(a, "value", num_or_null(v));
                json_array_append_new(out->active, a);
            }
            json_t *sj = json_object();
            json_object_set_new(sj, "rule_id", json_string(r->id));
            json_object_set_new(sj, "zone_id", json_string(z->id));
            json_object_set_new(sj, "level",
                                json_string(aw_level_name(rst.level)));
            json_object_set_new(sj, "onset",
                                rst.level >= 0 ? json_string(rst.onset)
                                               : json_null());
            json_object_set_new(sj, "last_record",
                                rst.last_id[0] ? json_string(rst.last_id)
                                               : json_null());
            json_array_append_new(out->states, sj);
            forecast(cfg, z, r, series, n, rst.level, in->date, out->forecasts);
            free(series);
        }
    }
    return AW_OK;
}

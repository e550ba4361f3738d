/* `aralwatch run`: the pipeline for every date of the config.
 *
 *   plan (grid + AOI, zones, scenes grouped by date)
 *   -> per date: per scene ingest (warp every band onto the grid, scale and
 *      offset to reflectance) and mask (nodata, QA_PIXEL / SCL / generic QA,
 *      dilation, AOI) -> mosaic of the date's scenes (per pixel the clearest
 *      observation, ties broken by the mosaic order) -> indices -> water
 *      classification (threshold, Otsu, DSWE or WOfS) -> zone statistics ->
 *      alerts -> write (pipeline/output.c)
 *
 * A scene that fails is recorded with its reason and the date goes on with
 * its other scenes; a scene with too little valid area is skipped (recorded,
 * not used). A summary of every scene is written to
 * OUT/<region>/last_run.json. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <cpl_conv.h>
#include <sys/stat.h>
#include "aralwatch/catalog.h"
#include "aralwatch/profile.h"
#include "aralwatch/quality.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"
#include "internal.h"
#include "lock.h"
#include "runwork.h"

const char *const aw_stage_names[ST_COUNT] = {"ingest",  "mask",     "mosaic",
                                              "indices", "classify", "zones",
                                              "alerts",  "write"};
_Static_assert(ST_COUNT == AW_RUN_STAGES, "stage lists differ");

const char *aw_run_stage_name(int k)
{
    return k >= 0 && k < ST_COUNT ? aw_stage_names[k] : "?";
}

static void scene_free(scene_buf *s)
{
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        free(s->refl[b]);
        s->refl[b] = NULL;
    }
    free(s->qcls);
    s->qcls = NULL;
    free(s->edge);
    s->edge = NULL;
}

static void date_free(date_work *w)
{
    for (size_t i = 0; i < w->n_sb; i++) {
        scene_free(&w->sb[i]);
        free(w->sb[i].reason);
    }
    free(w->sb);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        free(w->refl[b]);
    for (int i = 0; i < AW_IDX_COUNT; i++)
        free(w->index[i]);
    free(w->qcls);
    free(w->valid);
    free(w->source);
    free(w->water);
    free(w->dswe);
    free(w->wofl);
    free(w->stats);
    json_decref(w->alerts);
    json_decref(w->notices);
    memset(w, 0, sizeof *w);
}

static void progress(const run_state *rs, int stage, const char *what)
{
    if (!rs->opts->progress_bar)
        return;
    double n = (double)rs->n_dates;
    double f = ((double)rs->date_i + (double)stage / ST_COUNT) / n;
    GDALTermProgress(f, what, NULL);
}

static size_t npix(const run_state *rs)
{
    return (size_t)rs->grid.width * (size_t)rs->grid.height;
}

/* ---- Per scene: ingest and mask ---- */

static aw_status ingest_scene(aw_ctx *ctx, run_state *rs, scene_buf *s)
{
    const aw_scene_cfg *sc = s->sc;
    unsigned need = aw_config_needed_bands(rs->cfg);
    /* Fail fast, before warping, when the scene misses the region. */
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if ((need & (1u << b)) && sc->bands[b].present) {
            aw_status st = aw_check_overlap(ctx, &sc->bands[b], &rs->grid);
            if (st != AW_OK)
                return st;
            break;
        }
    }
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (!(need & (1u << b)))
            continue;
        if (!sc->bands[b].present)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "scene %s: band '%s' is needed but the product "
                           "has none",
                           sc->id, aw_band_name((aw_band)b));
        aw_status st = aw_warp_band_f32(ctx, &sc->bands[b], &rs->grid,
                                        rs->cfg->resample_reflectance,
                                        rs->threads, &s->refl[b]);
        if (st != AW_OK)
            return st;
    }
    return AW_OK;
}

/* Generic QA: masked when the value is listed or has a listed bit set.
 * Bit tests only apply to whole numbers in [0, 2^63). */
static int generic_masked(const aw_scene_cfg *sc, double q)
{
    for (size_t i = 0; i < sc->n_qa_mask_values; i++)
        if (sc->qa_mask_values[i] == q)
            return 1;
    if (sc->qa_mask_bits && q >= 0.0 && q < 9.2e18 && q == floor(q) &&
        (sc->qa_mask_bits & (uint64_t)q))
        return 1;
    return 0;
}

/* Quality classes of one scene: OUTSIDE from the AOI, NODATA where a band
 * is not finite, then the quality band, then dilation. */
static aw_status mask_scene(aw_ctx *ctx, run_state *rs, scene_buf *s)
{
    const aw_config *cfg = rs->cfg;
    const aw_scene_cfg *sc = s->sc;
    size_t n = npix(rs);
    s->qcls = aw_calloc2(n, 1);
    if (!s->qcls)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%zu pixels)", n);
    const float *refl[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        refl[b] = s->refl[b];
    const uint8_t *aoi = rs->aoi;
    uint8_t *q = s->qcls;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint8_t c = aoi[i] ? AW_Q_VALID : AW_Q_OUTSIDE;
        for (int b = 0; b < AW_BAND_COUNT; b++)
            if (c == AW_Q_VALID && refl[b] && !isfinite(refl[b][i]))
                c = AW_Q_NODATA;
        q[i] = c;
    }
    if (sc->qa.present && sc->qa_kind != AW_QA_NONE) {
        double *qa = NULL;
        aw_status st = aw_warp_band_f64(ctx, &sc->qa, &rs->grid,
                                        cfg->resample_qa, rs->threads, &qa);
        if (st != AW_OK)
            return st;
        switch (sc->qa_kind) {
        case AW_QA_LANDSAT_C2:
            aw_qa_landsat_c2(qa, q, n, &cfg->qa_policy);
            break;
        case AW_QA_S2_SCL:
            aw_qa_s2_scl(qa, q, n, &cfg->qa_policy);
            break;
        case AW_QA_GENERIC:
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) {
                if (q[i] != AW_Q_VALID)
                    continue;
                if (isnan(qa[i]))
                    q[i] = AW_Q_NODATA;
                else if (generic_masked(sc, qa[i]))
                    q[i] = AW_Q_MASKED;
            }
            break;
        case AW_QA_NONE:
            break;
        }
        free(qa);
    }
    if (cfg->dilate_cloud_px > 0 || cfg->dilate_shadow_px > 0) {
        uint8_t *tmp = aw_calloc2(n, 1);
        if (!tmp)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        size_t rows = (size_t)rs->grid.height, cols = (size_t)rs->grid.width;
        aw_dilate_class(q, tmp, rows, cols, AW_Q_CLOUD, cfg->dilate_cloud_px);
        aw_dilate_class(q, tmp, rows, cols, AW_Q_SHADOW, cfg->dilate_shadow_px);
        free(tmp);
    }
    /* Coverage edge: valid pixels within half a source pixel of the
     * scene's nodata, whose resampling kernel was partly empty. A mosaic
     * prefers another scene's interior there (no seams). */
    {
        double ratio = 1.0;
        for (int b = 0; b < AW_BAND_COUNT; b++)
            if (s->refl[b])
                ratio =
                    fmax(ratio, aw_src_pixel_in_grid(&sc->bands[b], &rs->grid));
        int r = (int)ceil(ratio / 2.0);
        uint8_t *cp = aw_calloc2(n, 1), *tmp = aw_calloc2(n, 1);
        s->edge = aw_calloc2(n, 1);
        if (!cp || !tmp || !s->edge) {
            free(cp);
            free(tmp);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        memcpy(cp, q, n);
        aw_dilate_class(cp, tmp, (size_t)rs->grid.height,
                        (size_t)rs->grid.width, AW_Q_NODATA, r);
        for (size_t i = 0; i < n; i++)
            s->edge[i] = q[i] == AW_Q_VALID && cp[i] == AW_Q_NODATA;
        free(cp);
        free(tmp);
    }
    for (size_t i = 0; i < n; i++)
        s->count[q[i] < AW_Q_COUNT ? q[i] : AW_Q_MASKED]++;
    int64_t inside = (int64_t)n - s->count[AW_Q_OUTSIDE];
    int64_t observed = inside - s->count[AW_Q_NODATA];
    if (observed <= 0)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "scene %s: no pixel of the scene falls inside the "
                       "region%s (every pixel is nodata or outside)",
                       sc->id, cfg->aoi_path ? " AOI" : "");
    s->valid_fraction =
        inside ? (double)s->count[AW_Q_VALID] / (double)inside : 0.0;
    s->cloud_pct = 100.0 * (double)s->count[AW_Q_CLOUD] / (double)observed;
    s->shadow_pct = 100.0 * (double)s->count[AW_Q_SHADOW] / (double)observed;
    s->snow_pct = 100.0 * (double)s->count[AW_Q_SNOW] / (double)observed;
    return AW_OK;
}

/* ---- Mosaic ---- */

/* How clear a quality class is: valid > valid at a coverage edge > masked
 * (cloud, shadow, snow, other) > nodata > outside. */
static int clearness(uint8_t q, uint8_t edge)
{
    switch (q) {
    case AW_Q_VALID:
        return edge ? 3 : 4;
    case AW_Q_CLOUD:
    case AW_Q_SHADOW:
    case AW_Q_SNOW:
    case AW_Q_MASKED:
        return 2;
    case AW_Q_NODATA:
        return 1;
    default:
        return 0;
    }
}

static double masked_share(const scene_buf *s)
{
    int64_t masked = s->count[AW_Q_CLOUD] + s->count[AW_Q_SHADOW] +
                     s->count[AW_Q_SNOW] + s->count[AW_Q_MASKED];
    int64_t observed = masked + s->count[AW_Q_VALID];
    return observed ? (double)masked / (double)observed : 1.0;
}

static const aw_mosaic_order *sort_order; /* for qsort only, main thread */
static const scene_buf *sort_sb;

static int cmp_scene(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    const scene_buf *x = &sort_sb[a], *y = &sort_sb[b];
    if (*sort_order == AW_MOSAIC_LEAST_CLOUD) {
        /* Least masked (cloud, shadow, snow, other) share of the pixels the
         * scene observes in the region. */
        double cx = masked_share(x), cy = masked_share(y);
        if (cx != cy)
            return cx < cy ? -1 : 1;
    }
    else if (*sort_order == AW_MOSAIC_LATEST) {
        int c = strcmp(y->sc->datetime, x->sc->datetime);
        if (c)
            return c;
    }
    return a < b ? -1 : a > b; /* then config / inbox order */
}

static aw_status build_mosaic(aw_ctx *ctx, run_state *rs, date_work *w)
{
    size_t n = npix(rs);
    size_t *order = aw_calloc2(w->n_sb, sizeof *order);
    size_t k = 0;
    if (!order)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n_sb; i++)
        if (w->sb[i].status == SCENE_USED)
            order[k++] = i;
    if (w->n_sb > 254) {
        free(order);
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: %zu scenes on one date; source.tif names at most "
                       "254",
                       w->date, w->n_sb);
    }
    sort_order = &rs->cfg->mosaic_order;
    sort_sb = w->sb;
    qsort(order, k, sizeof *order, cmp_scene);
    w->n_used = k;

    w->qcls = aw_calloc2(n, 1);
    w->valid = aw_calloc2(n, 1);
    w->source = aw_calloc2(n, 1);
    uint8_t *edge = aw_calloc2(n, 1); /* edge flag of the chosen pixel */
    if (!w->qcls || !w->valid || !w->source || !edge) {
        free(order);
        free(edge);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (!w->sb[order[0]].refl[b])
            continue;
        w->refl[b] = aw_calloc2(n, sizeof(float));
        if (!w->refl[b]) {
            free(order);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            w->refl[b][i] = NAN;
    }
    /* Scenes in mosaic order: a later scene only replaces a pixel when it
     * is strictly clearer there, so ties go to the earlier scene. */
    for (size_t r = 0; r < k; r++) {
        scene_buf *s = &w->sb[order[r]];
        s->order = (int)r;
        uint8_t src = (uint8_t)(order[r] + 1);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            if (r > 0 && clearness(s->qcls[i], s->edge[i]) <=
                             clearness(w->qcls[i], edge[i]))
                continue;
            w->qcls[i] = s->qcls[i];
            edge[i] = s->edge[i];
            /* Only an observation has a source: a pixel no scene covers
             * (nodata, outside) keeps 0. */
            w->source[i] =
                s->qcls[i] == AW_Q_OUTSIDE || s->qcls[i] == AW_Q_NODATA ? 0
                                                                        : src;
            for (int b = 0; b < AW_BAND_COUNT; b++)
                if (w->refl[b])
                    w->refl[b][i] = s->refl[b][i];
        }
        scene_free(s);
    }
    free(order);
    free(edge);
    memset(w->count, 0, sizeof w->count);
    for (size_t i = 0; i < n; i++) {
        w->valid[i] = w->qcls[i] == AW_Q_VALID ? 255 : 0;
        w->count[w->qcls[i] < AW_Q_COUNT ? w->qcls[i] : AW_Q_MASKED]++;
        if (w->source[i])
            w->sb[w->source[i] - 1].n_mosaic++;
    }
    if (w->count[AW_Q_VALID] == 0)
        aw_log(ctx, AW_LOG_WARN,
               "%s: no valid pixel in the region (all cloud, shadow, snow or "
               "nodata)",
               w->date);
    return AW_OK;
}

/* ---- Indices, water, zones, alerts ---- */

static aw_status stage_indices(aw_ctx *ctx, run_state *rs, date_work *w)
{
    size_t rows = (size_t)rs->grid.height, cols = (size_t)rs->grid.width;
    const float *bands[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        bands[b] = w->refl[b];
    int classic = rs->cfg->water_method == AW_WATER_THRESHOLD ||
                  rs->cfg->water_method == AW_WATER_OTSU;
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        if (!rs->cfg->indices[i] &&
            !(classic && i == (int)rs->cfg->water_index))
            continue;
        w->index[i] = aw_calloc2(rows * cols, sizeof(float));
        if (!w->index[i])
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_index_image((aw_index)i, bands, w->valid, w->index[i], rows, cols,
                       &rs->cfg->index_params);
    }
    return AW_OK;
}

/* DSWE and WOfS thresholds are absolute reflectances: bands still in DN
 * (scale 1, offset 0) make them meaningless. */
static void warn_if_dn(aw_ctx *ctx, date_work *w)
{
    for (size_t i = 0; i < w->n_sb; i++) {
        const scene_buf *s = &w->sb[i];
        if (s->status != SCENE_USED)
            continue;
        for (int b = 0; b < AW_BAND_COUNT; b++) {
            const aw_band_src *bs = &s->sc->bands[b];
            if (bs->present && bs->scale == 1.0 && bs->offset == 0.0) {
                w->dn_warning = 1;
                aw_log(ctx, AW_LOG_WARN,
                       "scene %s: band '%s' is in DN (scale 1, offset 0); "
                       "the absolute reflectance thresholds of %s do not "
                       "apply to DN; give the band's scale and offset",
                       s->sc->id, aw_band_name((aw_band)b), w->method_name);
                break;
            }
        }
    }
}

static aw_status stage_classify(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    size_t n = npix(rs);
    if (cfg->water_method == AW_WATER_DSWE ||
        cfg->water_method == AW_WATER_WOFS) {
        w->method_name = cfg->water_method == AW_WATER_DSWE ? "DSWE" : "WOfS";
        warn_if_dn(ctx, w);
    }
    w->water = aw_calloc2(n, 1);
    if (!w->water)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const float *bands[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        bands[b] = w->refl[b];
    w->water_threshold = NAN;
    switch (cfg->water_method) {
    case AW_WATER_DSWE:
        w->dswe = aw_calloc2(n, 1);
        if (!w->dswe)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_dswe(bands, w->qcls, w->dswe, n);
        if (cfg->dem_path) {
            /* Terrain filter with the sun of the first scene used. */
            const aw_scene_cfg *sc = NULL;
            for (size_t i = 0; i < w->n_sb && !sc; i++)
                if (w->sb[i].status == SCENE_USED)
                    sc = w->sb[i].sc;
            double az = sc ? sc->sun_azimuth : (double)NAN;
            double el = sc ? sc->sun_elevation : (double)NAN;
            if (!isfinite(az) || !isfinite(el)) {
                aw_log(ctx, AW_LOG_WARN,
                       "%s: no sun angles in the metadata; DSWE hillshade "
                       "uses azimuth 315, elevation 45",
                       w->date);
                az = 315.0;
                el = 45.0;
            }
            float *slope = NULL, *hill = NULL;
            aw_status st = aw_dem_terrain(ctx, cfg->dem_path, &rs->grid, az, el,
                                          rs->threads, &slope, &hill);
            if (st != AW_OK)
                return st;
            aw_dswe_terrain(w->dswe, slope, hill, n);
            w->sun_azimuth = az;
            w->sun_elevation = el;
            free(slope);
            free(hill);
        }
        /* Water for areas and rules: high and moderate confidence. */
        for (size_t i = 0; i < n; i++) {
            uint8_t c = w->dswe[i];
            w->water[i] = c == AW_DSWE_HIGH || c == AW_DSWE_MODERATE
                              ? AW_WATER_YES
                          : c <= AW_DSWE_LOW ? AW_WATER_NO
                                             : (uint8_t)AW_CLASS_NODATA;
        }
        return AW_OK;
    case AW_WATER_WOFS:
        w->wofl = aw_calloc2(n, 1);
        if (!w->wofl)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_wofs(bands, w->qcls, w->wofl, n);
        for (size_t i = 0; i < n; i++)
            w->water[i] = w->wofl[i] == AW_WOFS_WET ? AW_WATER_YES
                          : w->wofl[i] == 0         ? AW_WATER_NO
                                                    : (uint8_t)AW_CLASS_NODATA;
        return AW_OK;
    case AW_WATER_THRESHOLD:
    case AW_WATER_OTSU:
        break;
    }
    const float *idx = w->index[cfg->water_index];
    float thr = (float)cfg->water_threshold;
    w->otsu_fallback = 0;
    if (cfg->water_method == AW_WATER_OTSU) {
        const aw_index_info *info = aw_index_get(cfg->water_index);
        uint64_t *hist = aw_calloc2((size_t)cfg->otsu_bins, sizeof *hist);
        if (!hist)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_hist_add(hist, cfg->otsu_bins, info->hist_lo, info->hist_hi, idx,
                    w->valid, n);
        float t = thr;
        if (aw_otsu_threshold(hist, cfg->otsu_bins, info->hist_lo,
                              info->hist_hi, cfg->otsu_min_class_fraction,
                              &t) == 0) {
            thr = t;
        }
        else {
            w->otsu_fallback = 1;
            aw_log(ctx, AW_LOG_WARN,
                   "%s: Otsu found no two-class split of %s (a class under "
                   "%.1f %% of valid pixels); using the fixed threshold %g",
                   w->date, info->name, 100.0 * cfg->otsu_min_class_fraction,
                   cfg->water_threshold);
        }
        free(hist);
    }
    w->water_threshold = thr;
    aw_classify_threshold(idx, w->valid, w->water, n, thr);
    return AW_OK;
}

static aw_status stage_zones(aw_ctx *ctx, run_state *rs, date_work *w)
{
    if (rs->zones.n == 0)
        return AW_OK;
    w->stats = aw_calloc2(rs->zones.n, sizeof *w->stats);
    if (!w->stats)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const float *idx[AW_IDX_COUNT];
    for (int i = 0; i < AW_IDX_COUNT; i++)
        idx[i] = rs->cfg->indices[i] ? w->index[i] : NULL;
    return aw_zones_stats(ctx, &rs->zones, &rs->grid, idx, w->water, w->qcls,
                          w->stats);
}

static aw_status stage_alerts(aw_ctx *ctx, run_state *rs, date_work *w)
{
    w->alerts = json_array();
    w->notices = json_array();
    if (!w->alerts || !w->notices)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (rs->zones.n == 0)
        return AW_OK;
    const char **ids = aw_calloc2(w->n_sb, sizeof *ids);
    if (!ids)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < w->n_sb; i++)
        if (w->sb[i].status == SCENE_USED)
            ids[k++] = w->sb[i].sc->id;
    aw_alert_input in = {w->date, ids, k};
    aw_status st = aw_alerts_eval(ctx, rs->cfg, &rs->zones, w->stats, &in,
                                  w->alerts, w->notices, &w->n_alerts);
    free(ids);
    return st;
}

/* ---- One date ---- */

static void scene_failed(aw_ctx *ctx, scene_buf *s, aw_status st)
{
    s->status = SCENE_FAILED;
    s->failure = st;
    s->reason = aw_strdup(aw_ctx_errmsg(ctx));
    scene_free(s);
    aw_log(ctx, AW_LOG_ERROR, "scene %s failed (%s): %s", s->sc->id,
           aw_status_str(st), aw_ctx_errmsg(ctx));
}

static aw_status run_date(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    char what[160];
    /* Ingest and mask every scene of the date. */
    for (size_t i = 0; i < w->n_sb; i++) {
        scene_buf *s = &w->sb[i];
        if (aw_cancel_requested())
            return aw_fail(ctx, AW_ERR_CANCELLED, "cancelled");
        snprintf(what, sizeof what, "%s: %s", w->date, s->sc->id);
        progress(rs, ST_INGEST, what);
        aw_ctx_clear_error(ctx);
        aw_ctx_set_scope(ctx, w->date, s->sc->id, aw_stage_names[ST_INGEST]);
        double t0 = aw_now();
        aw_status st = ingest_scene(ctx, rs, s);
        w->t[ST_INGEST] += aw_now() - t0;
        if (st == AW_ERR_CANCELLED || st == AW_ERR_NOMEM)
            return st;
        t0 = aw_now();
        if (st == AW_OK) {
            aw_ctx_set_scope(ctx, w->date, s->sc->id, aw_stage_names[ST_MASK]);
            st = mask_scene(ctx, rs, s);
        }
        w->t[ST_MASK] += aw_now() - t0;
        if (st == AW_ERR_CANCELLED || st == AW_ERR_NOMEM)
            return st;
        if (st != AW_OK) {
            scene_failed(ctx, s, st);
            continue;
        }
        if (s->valid_fraction < cfg->min_valid_fraction) {
            s->status = SCENE_SKIPPED;
            s->reason = aw_asprintf(
                "valid fraction %.4f of the region is below "
                "quality.min_valid_fraction %.4f (cloud %.1f %%, shadow %.1f "
                "%%, snow %.1f %%)",
                s->valid_fraction, cfg->min_valid_fraction, s->cloud_pct,
                s->shadow_pct, s->snow_pct);
            aw_log(ctx, AW_LOG_WARN, "scene %s skipped: %s", s->sc->id,
                   s->reason ? s->reason : "");
            scene_free(s);
            continue;
        }
        aw_log(ctx, AW_LOG_INFO,
               "scene %s (%s, %s): valid %.1f %%, cloud %.1f %%, shadow %.1f "
               "%%, snow %.1f %%",
               s->sc->id, aw_sensor_name(s->sc->sensor), w->date,
               100.0 * s->valid_fraction, s->cloud_pct, s->shadow_pct,
               s->snow_pct);
    }
    size_t used = 0;
    for (size_t i = 0; i < w->n_sb; i++)
        used += w->sb[i].status == SCENE_USED;
    if (used == 0)
        return AW_OK; /* nothing to write; every scene is recorded */

    typedef aw_status (*stage_fn)(aw_ctx *, run_state *, date_work *);
    static const struct {
        int id;
        stage_fn fn;
    } stages[] = {{ST_MOSAIC, build_mosaic},     {ST_INDICES, stage_indices},
                  {ST_CLASSIFY, stage_classify}, {ST_ZONES, stage_zones},
                  {ST_ALERTS, stage_alerts},     {ST_WRITE, aw_write_date}};
    for (size_t k = 0; k < sizeof stages / sizeof stages[0]; k++) {
        if (aw_cancel_requested())
            return aw_fail(ctx, AW_ERR_CANCELLED, "cancelled");
        snprintf(what, sizeof what, "%s: %s", w->date,
                 aw_stage_names[stages[k].id]);
        progress(rs, stages[k].id, what);
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[stages[k].id]);
        double t0 = aw_now();
        aw_status st = stages[k].fn(ctx, rs, w);
        w->t[stages[k].id] = aw_now() - t0;
        if (st != AW_OK)
            return st;
        aw_log(ctx, AW_LOG_DEBUG, "%s: %s took %.3f s", w->date,
               aw_stage_names[stages[k].id], w->t[stages[k].id]);
    }
    return AW_OK;
}

static int cmp_date_idx(const void *pa, const void *pb, void *arg)
{
    const aw_config *cfg = arg;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = strcmp(cfg->scenes[a].date, cfg->scenes[b].date);
    return c ? c : (a < b ? -1 : a > b);
}

/* Stable order of scene indices by date (insertion sort: few scenes). */
static void sort_by_date(const aw_config *cfg, size_t *idx, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 &&
               cmp_date_idx(&idx[j - 1], &v, (void *)(uintptr_t)cfg) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* What a date's outputs depend on: the config and the content of every
 * input file of its scenes. A file's SHA-256 comes from the catalog's
 * cache while its size and modification time stay as they were, and is
 * computed again when either changed: a file that was only touched is not
 * processed again, and one whose content changed always is. Equal
 * fingerprints mean the date's outputs would come out the same. */
static aw_status date_fingerprint(aw_ctx *ctx, run_state *rs, date_work *w,
                                  char hex[65])
{
    char *buf = NULL;
    size_t len = 0;
    hex[0] = '\0';
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = AW_OK;
    fprintf(f, "aralwatch %s\nconfig %s\n", AW_VERSION, rs->cfg->sha256);
    for (size_t k = 0; k < w->n_sb && st == AW_OK; k++) {
        scene_buf *s = &w->sb[k];
        const aw_scene_cfg *sc = s->sc;
        fprintf(f, "scene %s\n", sc->id);
        for (int b = 0; b <= AW_BAND_COUNT && st == AW_OK; b++) {
            const aw_band_src *src =
                b < AW_BAND_COUNT ? &sc->bands[b] : &sc->qa;
            long long size = -1, mtime = -1;
            if (!src->present)
                continue;
            s->bytes[b] = -1;
            if (aw_file_signature(src->path, &size, &mtime) == 0) {
                int found = 0;
                st = aw_catalog_get_file(ctx, rs->catalog, src->path, size,
                                         mtime, s->sha256[b], &found);
                if (st == AW_OK && !found) {
                    /* Unreadable files fail their scene later, by name. */
                    aw_status hs =
                        aw_sha256_vsi(ctx, src->path, s->sha256[b], NULL);
                    if (hs == AW_OK)
                        st = aw_catalog_put_file(ctx, rs->catalog, src->path,
                                                 size, mtime, s->sha256[b]);
                    else if (hs == AW_ERR_NOMEM)
                        st = hs;
                    else
                        s->sha256[b][0] = '\0';
                    aw_ctx_clear_error(ctx);
                }
                s->bytes[b] = size;
            }
            fprintf(f, "%d %s %d %s %.17g %.17g\n", b, src->path, src->band,
                    s->sha256[b][0] ? s->sha256[b] : "unreadable", src->scale,
                    src->offset);
        }
    }
    fclose(f);
    if (st == AW_OK)
        aw_sha256_buf(buf, len, hex);
    free(buf);
    return st;
}

/* The inputs of a scene with their checksums, as JSON text for the
 * catalog (caller frees). */
static char *scene_checksums(const scene_buf *s)
{
    json_t *arr = json_array();
    for (int b = 0; b <= AW_BAND_COUNT; b++) {
        const aw_band_src *src =
            b < AW_BAND_COUNT ? &s->sc->bands[b] : &s->sc->qa;
        if (!src->present)
            continue;
        json_t *o = json_object();
        json_object_set_new(
            o, "role",
            json_string(b < AW_BAND_COUNT ? aw_band_name((aw_band)b) : "qa"));
        json_object_set_new(o, "path", json_string(src->path));
        json_object_set_new(o, "sha256",
                            s->sha256[b][0] ? json_string(s->sha256[b])
                                            : json_null());
        json_object_set_new(o, "bytes", json_integer(s->bytes[b]));
        json_array_append_new(arr, o);
    }
    char *t = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return t;
}

static const char *const scene_status_names[] = {"used", "skipped", "failed"};

/* Record a date's outcome in the catalog, in one transaction: done (with
 * its fingerprint, metrics and alerts) only when its outputs were written;
 * otherwise the scenes' reasons, and the next run tries the date again. */
static aw_status record_date(aw_ctx *ctx, run_state *rs, date_work *w,
                             const char *fingerprint, int written)
{
    aw_catalog *cat = rs->catalog;
    aw_status st = aw_catalog_begin(ctx, cat);
    if (st != AW_OK)
        return st;
    st = aw_catalog_put_date(ctx, cat, rs->run_id, w->date, fingerprint,
                             written ? "done" : "failed");
    for (size_t k = 0; k < w->n_sb && st == AW_OK; k++) {
        const scene_buf *s = &w->sb[k];
        char *sums = scene_checksums(s);
        char *fp = aw_scene_footprint(s->sc);
        st = aw_catalog_put_scene(
            ctx, cat, rs->run_id, s->sc->id, aw_sensor_name(s->sc->sensor),
            s->sc->date, s->sc->product_id, scene_status_names[s->status],
            s->reason, s->valid_fraction, s->cloud_pct, fp, sums);
        free(fp);
        free(sums);
    }
    for (size_t z = 0; written && z < rs->zones.n && st == AW_OK; z++) {
        const aw_zone_stats *zs = &w->stats[z];
        for (int m = 0; m < AW_METRIC_COUNT && st == AW_OK; m++) {
            double v = aw_metric_value(zs, (aw_metric)m);
            if (isfinite(v))
                st = aw_catalog_put_metric(ctx, cat, rs->run_id, w->date,
                                           rs->zones.z[z].id,
                                           aw_metric_name((aw_metric)m), v);
        }
    }
    size_t ai;
    json_t *a;
    if (written && w->alerts)
        json_array_foreach(w->alerts, ai, a)
        {
            if (st != AW_OK)
                break;
            char *rec = json_dumps(a, JSON_COMPACT);
            st = aw_catalog_put_alert(
                ctx, cat, rs->run_id,
                json_string_value(json_object_get(a, "alert_id")), w->date,
                json_string_value(json_object_get(a, "zone_id")),
                json_string_value(json_object_get(a, "rule_id")),
                json_string_value(json_object_get(a, "level")),
                rec ? rec : "{}");
            free(rec);
        }
    if (st == AW_OK)
        st = aw_catalog_commit(ctx, cat);
    else
        aw_catalog_rollback(cat);
    return st;
}

static void release_grid(run_state *rs)
{
    aw_zones_free(&rs->zones);
    aw_grid_free(&rs->grid);
    free(rs->aoi);
    rs->aoi = NULL;
}

/* Region grid, AOI mask and zones for the scenes of `cfg`. */
static aw_status prepare_grid(aw_ctx *ctx, run_state *rs, const aw_config *cfg)
{
    aw_ctx_set_scope(ctx, NULL, NULL, "grid");
    aw_status st = aw_grid_build(ctx, cfg, &rs->grid, &rs->aoi);
    if (st != AW_OK)
        return st;
    aw_log(ctx, AW_LOG_INFO,
           "region %s: grid %d x %d pixels of %g, origin (%.3f, %.3f)",
           cfg->region_name, rs->grid.width, rs->grid.height, rs->grid.gt[1],
           rs->grid.gt[0], rs->grid.gt[3]);
    st = aw_zones_load(ctx, cfg, &rs->grid, &rs->zones);
    if (st != AW_OK)
        return st;
    if (cfg->zones_path)
        aw_log(ctx, AW_LOG_INFO, "zones: %zu from %s", rs->zones.n,
               cfg->zones_path);
    return AW_OK;
}

aw_status aw_run(aw_ctx *ctx, const aw_config *cfg, const aw_run_opts *opts,
                 aw_run_result *result)
{
    memset(result, 0, sizeof *result);
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.cfg = cfg;
    rs.opts = opts;
    rs.threads = opts->threads > 0 ? opts->threads : omp_get_num_procs();
    omp_set_num_threads(rs.threads);

    const char *out = opts->out_dir ? opts->out_dir : cfg->out_dir;
    rs.region_dir = aw_path_join(out, cfg->region_name);
    size_t *idx = aw_calloc2(cfg->n_scenes, sizeof *idx);
    json_t *summary = json_array();
    char started[21];
    aw_utc_now(started);
    if (!rs.region_dir || !idx || !summary) {
        free(rs.region_dir);
        free(idx);
        json_decref(summary);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    /* The region folder holds the lock, the catalog and the products. */
    aw_status st = aw_mkdirs(ctx, rs.region_dir);
    int lock_fd = -1;
    char *cat_path = aw_path_join(rs.region_dir, "catalog.sqlite");
    if (st == AW_OK && !cat_path)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK)
        st = aw_lock_acquire(ctx, rs.region_dir, &lock_fd);
    if (st != AW_OK) {
        free(cat_path);
        free(rs.region_dir);
        free(idx);
        json_decref(summary);
        return st;
    }
    aw_sweep_stale(ctx, rs.region_dir);
    st = aw_catalog_open(ctx, cat_path, &rs.catalog);
    free(cat_path);
    if (st == AW_OK)
        st = aw_catalog_run_begin(ctx, rs.catalog, cfg->path, cfg->sha256,
                                  &rs.run_id);
    if (st == AW_OK && opts->reprocess_since)
        st = aw_catalog_forget(ctx, rs.catalog, NULL, opts->reprocess_since);
    if (st == AW_OK && opts->reprocess_scene) {
        const char *date = NULL;
        for (size_t i = 0; i < cfg->n_scenes && !date; i++)
            if (strcmp(cfg->scenes[i].id, opts->reprocess_scene) == 0)
                date = cfg->scenes[i].date;
        if (!date)
            st = aw_fail(ctx, AW_ERR_USAGE,
                         "--scene %s: no such scene in the config or inbox",
                         opts->reprocess_scene);
        else
            st = aw_catalog_forget(ctx, rs.catalog, date, NULL);
    }
    if (st != AW_OK)
        goto done;
    /* Inbox entries no profile could read are failed scenes of the run. */
    for (size_t i = 0; i < cfg->n_inbox_rejects; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(cfg->inbox_rejects[i]));
        json_object_set_new(o, "status", json_string("failed"));
        json_object_set_new(o, "reason",
                            json_string(cfg->inbox_reject_reasons[i]));
        json_array_append_new(summary, o);
        if (result->n_failed == 0)
            result->first_failure = AW_ERR_INPUT;
        result->n_failed++;
        aw_log(ctx, AW_LOG_ERROR, "inbox product failed: %s",
               cfg->inbox_reject_reasons[i]);
    }
    if (!cfg->grid_per_date && cfg->n_scenes > 0) {
        st = prepare_grid(ctx, &rs, cfg);
        if (st != AW_OK)
            goto done;
    }

    for (size_t i = 0; i < cfg->n_scenes; i++)
        idx[i] = i;
    sort_by_date(cfg, idx, cfg->n_scenes);
    rs.n_dates = 0;
    for (size_t i = 0; i < cfg->n_scenes; i++)
        if (i == 0 ||
            strcmp(cfg->scenes[idx[i]].date, cfg->scenes[idx[i - 1]].date))
            rs.n_dates++;

    result->n_scenes = cfg->n_scenes + cfg->n_inbox_rejects;
    for (size_t i = 0; i < cfg->n_scenes;) {
        size_t j = i;
        while (j < cfg->n_scenes &&
               strcmp(cfg->scenes[idx[j]].date, cfg->scenes[idx[i]].date) == 0)
            j++;
        date_work w;
        memset(&w, 0, sizeof w);
        w.date = cfg->scenes[idx[i]].date;
        w.n_sb = j - i;
        w.sb = aw_calloc2(w.n_sb, sizeof *w.sb);
        if (!w.sb) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t k = 0; k < w.n_sb; k++)
            w.sb[k].sc = &cfg->scenes[idx[i + k]];
        aw_ctx_clear_error(ctx);
        /* Nothing changed since this date was done: no work, and its
         * outputs stay byte for byte as they are. */
        char fp[65], done_fp[65];
        int done = 0;
        aw_ctx_set_scope(ctx, w.date, NULL, "catalog");
        st = date_fingerprint(ctx, &rs, &w, fp);
        if (st == AW_OK)
            st = aw_catalog_date_done(ctx, rs.catalog, w.date, done_fp, &done);
        if (st != AW_OK) {
            date_free(&w);
            goto done;
        }
        char *date_dir = aw_path_join(rs.region_dir, w.date);
        struct stat dsb;
        int present = date_dir && stat(date_dir, &dsb) == 0;
        free(date_dir);
        if (done && present && strcmp(fp, done_fp) == 0) {
            aw_log(ctx, AW_LOG_INFO,
                   "%s: up to date (same inputs and config); not processed "
                   "again",
                   w.date);
            for (size_t k = 0; k < w.n_sb; k++) {
                json_t *o = json_object();
                json_object_set_new(o, "id", json_string(w.sb[k].sc->id));
                json_object_set_new(o, "date", json_string(w.date));
                json_object_set_new(o, "status", json_string("unchanged"));
                json_array_append_new(summary, o);
            }
            result->n_unchanged += w.n_sb;
            date_free(&w);
            rs.date_i++;
            i = j;
            continue;
        }
        aw_status dst = AW_OK;
        if (cfg->grid_per_date) {
            /* This date's own grid: the config seen with only its scenes. */
            release_grid(&rs);
            aw_config view = *cfg;
            aw_scene_cfg *scenes = aw_calloc2(w.n_sb, sizeof *scenes);
            if (!scenes) {
                date_free(&w);
                st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (size_t k = 0; k < w.n_sb; k++)
                scenes[k] = *w.sb[k].sc;
            view.scenes = scenes;
            view.n_scenes = w.n_sb;
            dst = prepare_grid(ctx, &rs, &view);
            free(scenes);
            if (dst != AW_OK) {
                for (size_t k = 0; k < w.n_sb; k++) {
                    w.sb[k].status = SCENE_FAILED;
                    w.sb[k].failure = dst;
                    w.sb[k].reason = aw_strdup(aw_ctx_errmsg(ctx));
                }
                aw_log(ctx, AW_LOG_ERROR, "%s: no grid (%s): %s", w.date,
                       aw_status_str(dst), aw_ctx_errmsg(ctx));
            }
        }
        if (dst == AW_OK)
            dst = run_date(ctx, &rs, &w);
        for (int k = 0; k < ST_COUNT; k++)
            result->stage_seconds[k] += w.t[k];
        aw_ctx_set_scope(ctx, w.date, NULL, "record");
        if (dst != AW_OK && cfg->grid_per_date && !rs.grid.wkt)
            dst = AW_OK; /* already recorded per scene above */
        if (dst == AW_ERR_CANCELLED || dst == AW_ERR_NOMEM) {
            date_free(&w);
            st = dst;
            goto done;
        }
        if (dst != AW_OK) {
            /* The date's mosaic or outputs failed: every scene that was to
             * be used fails with it. */
            aw_log(ctx, AW_LOG_ERROR, "%s failed (%s): %s", w.date,
                   aw_status_str(dst), aw_ctx_errmsg(ctx));
            for (size_t k = 0; k < w.n_sb; k++) {
                if (w.sb[k].status != SCENE_USED)
                    continue;
                w.sb[k].status = SCENE_FAILED;
                w.sb[k].failure = dst;
                w.sb[k].reason = aw_strdup(aw_ctx_errmsg(ctx));
            }
        }
        else if (w.n_used > 0) {
            result->n_alerts += w.n_alerts;
            result->n_notices += json_array_size(w.notices);
            aw_log(ctx, AW_LOG_INFO,
                   "%s: %zu scene(s) mosaicked; %zu alert(s), %zu notice(s)",
                   w.date, w.n_used, w.n_alerts, json_array_size(w.notices));
        }
        {
            int written = dst == AW_OK && w.n_used > 0;
            aw_status cst = record_date(ctx, &rs, &w, fp, written);
            if (cst != AW_OK) {
                /* The products are on disk; the next run redoes the date
                 * and swaps in identical ones. */
                aw_log(ctx, AW_LOG_ERROR, "%s: not recorded in the catalog: %s",
                       w.date, aw_ctx_errmsg(ctx));
                st = cst;
                date_free(&w);
                goto done;
            }
        }
        for (size_t k = 0; k < w.n_sb; k++) {
            scene_buf *s = &w.sb[k];
            if (s->status == SCENE_USED)
                result->n_ok++;
            else if (s->status == SCENE_SKIPPED)
                result->n_skipped++;
            else {
                if (result->n_failed == 0)
                    result->first_failure = s->failure;
                result->n_failed++;
            }
            json_array_append_new(summary, aw_scene_json(s));
        }
        date_free(&w);
        rs.date_i++;
        i = j;
    }
    if (opts->progress_bar)
        GDALTermProgress(1.0, "done", NULL);

    /* Run summary: what happened to every scene, for the operator. */
    {
        char finished[21];
        aw_utc_now(finished);
        json_t *sum = json_object();
        json_object_set_new(sum, "started", json_string(started));
        json_object_set_new(sum, "finished", json_string(finished));
        json_object_set_new(sum, "software",
                            json_string("aralwatch " AW_VERSION));
        json_object_set_new(sum, "config", json_string(cfg->path));
        json_object_set_new(sum, "config_sha256", json_string(cfg->sha256));
        json_object_set(sum, "scenes", summary);
        char *path = aw_path_join(rs.region_dir, "last_run.json");
        aw_status sst = path ? aw_mkdirs(ctx, rs.region_dir) : AW_ERR_NOMEM;
        if (sst == AW_OK)
            sst = aw_write_json_file(ctx, path, sum);
        if (sst != AW_OK)
            aw_log(ctx, AW_LOG_WARN, "cannot write the run summary: %s",
                   aw_ctx_errmsg(ctx));
        free(path);
        json_decref(sum);
    }
done:
    aw_ctx_set_scope(ctx, NULL, NULL, "run");
    if (rs.catalog) {
        if (aw_catalog_run_end(ctx, rs.catalog, rs.run_id,
                               aw_run_exit_code(st, result)) != AW_OK)
            aw_log(ctx, AW_LOG_WARN, "%s", aw_ctx_errmsg(ctx));
        aw_catalog_close(rs.catalog);
    }
    aw_lock_release(lock_fd);
    json_decref(summary);
    free(idx);
    release_grid(&rs);
    free(rs.region_dir);
    return st;
}

int aw_run_exit_code(aw_status st, const aw_run_result *r)
{
    if (st != AW_OK)
        return aw_exit_code(st);
    if (r->n_failed > 0 && (r->n_ok > 0 || r->n_unchanged > 0))
        return AW_EXIT_PARTIAL;
    if (r->n_failed > 0)
        return aw_exit_code(r->first_failure);
    return r->n_alerts > 0 ? AW_EXIT_ALERTS : AW_EXIT_OK;
}

aw_status aw_status_report(aw_ctx *ctx, const aw_config *cfg,
                           const char *out_dir, FILE *out)
{
    char *region =
        aw_path_join(out_dir ? out_dir : cfg->out_dir, cfg->region_name);
    char *path = region ? aw_path_join(region, "catalog.sqlite") : NULL;
    free(region);
    if (!path)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        aw_status st = aw_fail(ctx, AW_ERR_INPUT,
                               "%s: no catalog yet (no run of region %s)", path,
                               cfg->region_name);
        free(path);
        return st;
    }
    aw_catalog *cat = NULL;
    aw_status st = aw_catalog_open(ctx, path, &cat);
    free(path);
    if (st != AW_OK)
        return st;
    st = aw_catalog_print_status(ctx, cat, out);
    /* Scenes of the config the catalog has never seen. */
    if (st == AW_OK) {
        fputs("pending dates (not done with the current inputs):\n", out);
        size_t pending = 0;
        for (size_t i = 0; i < cfg->n_scenes; i++) {
            char fp[65];
            int done = 0;
            if (aw_catalog_date_done(ctx, cat, cfg->scenes[i].date, fp,
                                     &done) == AW_OK &&
                !done) {
                fprintf(out, "  %s  %s\n", cfg->scenes[i].date,
                        cfg->scenes[i].id);
                pending++;
            }
        }
        if (!pending)
            fputs("  (none)\n", out);
    }
    aw_catalog_close(cat);
    return st;
}

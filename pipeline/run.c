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
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <cpl_conv.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include "aralwatch/catalog.h"
#include "aralwatch/profile.h"
#include "aralwatch/quality.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"
#include "baseline.h"
#include "internal.h"
#include "lock.h"
#include "par.h"
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
        free(w->sb[i].damaged);
        free(w->sb[i].qa_lut);
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
    free(w->order);
    free(w->hist);
    aw_zones_run_free(w->zr);
    aw_date_abort(w);
    json_decref(w->alerts);
    json_decref(w->notices);
    json_decref(w->active);
    json_decref(w->forecasts);
    json_decref(w->states);
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

/* ---- Strips ----
 *
 * A date is processed in strips of whole rows of the region grid, so
 * memory holds one strip of every band, never a whole band. A strip's
 * buffers carry `top` halo rows above its core rows and some below, so that
 * what looks at neighbours (cloud dilation, the coverage edge, DSWE's
 * slope and hillshade) sees the same pixels as on the whole grid; only the
 * core rows are counted, accumulated and written. */
typedef struct strip {
    int row0, nrows; /* core rows of the grid */
    int top;         /* halo rows above the core in the buffers */
    int rows;        /* buffer rows */
} strip;

enum { PASS_SURVEY, PASS_HIST, PASS_MAIN };

/* rs seen through one strip: the grid shrunk to the strip's buffer rows,
 * the AOI mask from its first row. */
static void strip_view(const run_state *rs, const strip *sp, run_state *v)
{
    *v = *rs;
    int first = sp->row0 - sp->top;
    v->grid.gt[3] = rs->grid.gt[3] + rs->grid.gt[5] * (double)first;
    v->grid.height = sp->rows;
    if (rs->grid.row_area_m2)
        v->grid.row_area_m2 = rs->grid.row_area_m2 + first;
    v->aoi = NULL; /* run_strip rasterises the strip's AOI rows */
}

/* ---- Per scene: checks, ingest and mask ---- */

/* Once per date, before any pixel: the bands the run needs exist and the
 * scene overlaps the region; the radius of its coverage edge. */
static aw_status check_scene(aw_ctx *ctx, run_state *rs, scene_buf *s)
{
    const aw_scene_cfg *sc = s->sc;
    unsigned need = aw_config_needed_bands(rs->cfg);
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if ((need & (1u << b)) && sc->bands[b].present) {
            aw_status st =
                aw_check_overlap(ctx, &sc->bands[b], &rs->grid, s->rows);
            if (st != AW_OK)
                return st;
            break;
        }
    }
    double ratio = 1.0;
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (!(need & (1u << b)))
            continue;
        if (!sc->bands[b].present)
            return aw_fail(ctx, AW_ERR_INPUT,
                           "scene %s: band '%s' is needed but the product "
                           "has none",
                           sc->id, aw_band_name((aw_band)b));
        ratio = fmax(ratio, aw_src_pixel_in_grid(&sc->bands[b], &rs->grid));
    }
    s->edge_r = (int)ceil(ratio / 2.0);
    return AW_OK;
}

/* The bands of a scene on a strip. Bands in different files are read by
 * different threads at once (decoding is most of the cost); bands that
 * share a file are read one after the other, as a GDAL dataset serves one
 * thread at a time. */
static aw_status ingest_scene(aw_ctx *ctx, run_state *v, scene_buf *s)
{
    const aw_scene_cfg *sc = s->sc;
    unsigned need = aw_config_needed_bands(v->cfg);
    int list[AW_BAND_COUNT], n = 0, distinct = 1;
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (!(need & (1u << b)))
            continue;
        for (int k = 0; k < n; k++)
            if (strcmp(sc->bands[list[k]].path, sc->bands[b].path) == 0)
                distinct = 0;
        list[n++] = b;
    }
    aw_status sts[AW_BAND_COUNT];
    char *why[AW_BAND_COUNT];
    for (int k = 0; k < n; k++) {
        sts[k] = AW_OK;
        why[k] = NULL;
        aw_gdal_prime_input(ctx, sc->bands[list[k]].path);
    }
    int nth = distinct ? (n < v->threads ? n : v->threads) : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth > 0 ? nth : 1)
    for (int k = 0; k < n; k++) {
        int b = list[k];
        aw_ctx *tc = nth > 1 ? aw_ctx_create() : ctx;
        if (!tc) {
            sts[k] = AW_ERR_NOMEM;
            continue;
        }
        sts[k] = aw_warp_band_f32(tc, &sc->bands[b], &v->grid,
                                  v->cfg->resample_reflectance,
                                  nth > 1 ? 1 : v->threads, &s->refl[b]);
        if (sts[k] != AW_OK && tc != ctx)
            why[k] = aw_strdup(aw_ctx_errmsg(tc));
        if (tc != ctx)
            aw_ctx_destroy(tc);
    }
    aw_status st = AW_OK;
    for (int k = 0; k < n; k++) {
        if (st == AW_OK && sts[k] != AW_OK)
            st = why[k] ? aw_fail(ctx, sts[k], "%s", why[k])
                 : sts[k] == AW_ERR_NOMEM && nth > 1
                     ? aw_fail(ctx, sts[k], "out of memory")
                     : sts[k];
        free(why[k]);
    }
    return st;
}

/* Generic QA: masked when the value is listed or has a listed bit set.
 * Bit tests only apply to whole numbers in [0, 2^63). */
static int listed(const double *v, size_t n, double q)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == q)
            return 1;
    return 0;
}

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

#define QCLASS(v) ((v) < AW_Q_COUNT ? (v) : AW_Q_MASKED)

/* Pixels per quality class of q[a..b) into cnt (added). Four histograms
 * for four pixels at a time: classes come in runs, and one histogram
 * would wait on the increment of the same counter pixel after pixel. */
static void count_classes(const uint8_t *q, size_t a, size_t b,
                          int64_t cnt[AW_Q_COUNT])
{
    int64_t c[AW_Q_COUNT] = {0};
    size_t n4 = (b - a) / 4;
    const uint8_t *p = q + a;
#pragma omp parallel reduction(+ : c[:AW_Q_COUNT])
    {
        int64_t h[4][AW_Q_COUNT] = {{0}};
#pragma omp for schedule(static)
        for (size_t j = 0; j < n4; j++) {
            const uint8_t *v = p + 4 * j;
            h[0][QCLASS(v[0])]++;
            h[1][QCLASS(v[1])]++;
            h[2][QCLASS(v[2])]++;
            h[3][QCLASS(v[3])]++;
        }
        for (int k = 0; k < AW_Q_COUNT; k++)
            c[k] += h[0][k] + h[1][k] + h[2][k] + h[3][k];
    }
    for (size_t i = a + 4 * n4; i < b; i++)
        c[QCLASS(q[i])]++;
    for (int k = 0; k < AW_Q_COUNT; k++)
        cnt[k] += c[k];
}

/* The class a generic QA value gives a valid pixel. */
static uint8_t generic_class(const aw_scene_cfg *sc, double q)
{
    if (isnan(q))
        return AW_Q_NODATA;
    if (listed(sc->qa_cloud_values, sc->n_qa_cloud_values, q))
        return AW_Q_CLOUD;
    if (listed(sc->qa_shadow_values, sc->n_qa_shadow_values, q))
        return AW_Q_SHADOW;
    if (generic_masked(sc, q))
        return AW_Q_MASKED;
    return AW_Q_VALID;
}

/* Quality classes of one scene on a strip: OUTSIDE from the AOI, NODATA
 * where a band is not finite, then the quality band, then dilation; the
 * class counts of the core rows when `count`; the coverage edge when
 * `edge` (only a mosaic of several scenes looks at it). */
static aw_status mask_scene(aw_ctx *ctx, run_state *v, scene_buf *s,
                            const strip *sp, int count, int edge)
{
    const aw_config *cfg = v->cfg;
    const aw_scene_cfg *sc = s->sc;
    size_t n = npix(v);
    s->qcls = aw_malloc2(n, 1);
    if (!s->qcls)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%zu pixels)", n);
    const float *refl[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        refl[b] = s->refl[b];
    const uint8_t *aoi = v->aoi;
    uint8_t *q = s->qcls;
    /* Band by band, so each loop is a vector one (a pixel's six band
     * pointers tested per pixel were not). A band that is not finite
     * (NaN: nodata or not covered) makes a pixel of the AOI nodata. */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++)
        q[i] = aoi[i] ? (uint8_t)AW_Q_VALID : (uint8_t)AW_Q_OUTSIDE;
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        const float *x = refl[b];
        if (!x)
            continue;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            int bad = (q[i] == AW_Q_VALID) & !(fabsf(x[i]) <= FLT_MAX);
            q[i] = bad ? (uint8_t)AW_Q_NODATA : q[i];
        }
    }
    if (sc->qa.present && sc->qa_kind != AW_QA_NONE) {
        double *qa = NULL;
        aw_status st = aw_warp_band_f64(ctx, &sc->qa, &v->grid,
                                        cfg->resample_qa, v->threads, &qa);
        if (st != AW_OK)
            return st;
        switch (sc->qa_kind) {
        case AW_QA_LANDSAT_C2:
            aw_qa_landsat_c2(qa, q, n, &cfg->qa_policy);
            break;
        case AW_QA_S2_SCL:
            aw_qa_s2_scl(qa, q, n, &cfg->qa_policy);
            break;
        case AW_QA_GENERIC: {
            /* The class of each whole QA value 0..65535 looked up (the
             * common case: 8- and 16-bit quality bands), others worked
             * out per pixel. The table is the scene's, for all strips. */
            uint8_t *lut = s->qa_lut;
            if (!lut) {
                lut = s->qa_lut = malloc(65536);
                if (!lut) {
                    free(qa);
                    return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                }
#pragma omp parallel for schedule(static)
                for (int k = 0; k < 65536; k++)
                    lut[k] = generic_class(sc, (double)k);
            }
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) {
                if (q[i] != AW_Q_VALID)
                    continue;
                double x = qa[i];
                if (x >= 0.0 && x <= 65535.0 && x == (double)(int)x)
                    q[i] = lut[(int)x];
                else
                    q[i] = generic_class(sc, x);
            }
            break;
        }
        case AW_QA_NONE:
            break;
        }
        free(qa);
    }
    if (cfg->water_method == AW_WATER_WOFS) {
        /* WOfS takes reflectance x 10000 in 0..10000; a band outside is
         * nodata in Geoscience Australia's Collection 2 scaling, so the
         * pixel is no observation: masked here, so the mosaic, valid.tif,
         * the counts and the zones agree (the WOfS kernel says
         * non-contiguous). */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            if (q[i] != AW_Q_VALID)
                continue;
            for (int b = 0; b < AW_BAND_COUNT; b++) {
                float x = refl[b] ? refl[b][i] * 10000.0f : 0.0f;
                if (!(x >= 0.0f && x <= 10000.0f))
                    q[i] = AW_Q_MASKED;
            }
        }
    }
    size_t rows = (size_t)v->grid.height, cols = (size_t)v->grid.width;
    if (cfg->dilate_cloud_px > 0 || cfg->dilate_shadow_px > 0) {
        uint8_t *tmp = aw_malloc2(n, 1);
        if (!tmp)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_dilate_class(q, tmp, rows, cols, AW_Q_CLOUD, cfg->dilate_cloud_px);
        aw_dilate_class(q, tmp, rows, cols, AW_Q_SHADOW, cfg->dilate_shadow_px);
        free(tmp);
    }
    /* Coverage edge: valid pixels within half a source pixel of the
     * scene's nodata, whose resampling kernel was partly empty. A mosaic
     * prefers another scene's interior there (no seams). */
    if (edge) {
        uint8_t *cp = aw_malloc2(n, 1), *tmp = aw_malloc2(n, 1);
        s->edge = aw_malloc2(n, 1);
        if (!cp || !tmp || !s->edge) {
            free(cp);
            free(tmp);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        memcpy(cp, q, n);
        aw_dilate_class(cp, tmp, rows, cols, AW_Q_NODATA, s->edge_r);
        uint8_t *e = s->edge;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            e[i] = q[i] == AW_Q_VALID && cp[i] == AW_Q_NODATA;
        free(cp);
        free(tmp);
    }
    if (count)
        count_classes(q, (size_t)sp->top * cols,
                      ((size_t)sp->top + (size_t)sp->nrows) * cols, s->count);
    return AW_OK;
}

/* A scene's shares once all its strips are counted: failed when it
 * observes nothing of the region, skipped under min_valid_fraction. */
static void finish_scene_counts(aw_ctx *ctx, run_state *rs, scene_buf *s)
{
    const aw_config *cfg = rs->cfg;
    aw_ctx_set_scope(ctx, s->sc->date, s->sc->id, aw_stage_names[ST_MASK]);
    int64_t n = (int64_t)npix(rs);
    int64_t inside = n - s->count[AW_Q_OUTSIDE];
    int64_t observed = inside - s->count[AW_Q_NODATA];
    if (observed <= 0) {
        aw_fail(ctx, AW_ERR_INPUT,
                "scene %s: no pixel of the scene falls inside the region%s "
                "(every pixel is nodata or outside)",
                s->sc->id, cfg->aoi_path ? " AOI" : "");
        s->status = SCENE_FAILED;
        s->failure = AW_ERR_INPUT;
        s->reason = aw_strdup(aw_ctx_errmsg(ctx));
        aw_log(ctx, AW_LOG_ERROR, "scene %s failed (%s): %s", s->sc->id,
               aw_status_str(AW_ERR_INPUT), aw_ctx_errmsg(ctx));
        return;
    }
    s->valid_fraction =
        inside ? (double)s->count[AW_Q_VALID] / (double)inside : 0.0;
    s->cloud_pct = 100.0 * (double)s->count[AW_Q_CLOUD] / (double)observed;
    s->shadow_pct = 100.0 * (double)s->count[AW_Q_SHADOW] / (double)observed;
    s->snow_pct = 100.0 * (double)s->count[AW_Q_SNOW] / (double)observed;
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
        return;
    }
    aw_log(ctx, AW_LOG_INFO,
           "scene %s (%s, %s): valid %.1f %%, cloud %.1f %%, shadow %.1f "
           "%%, snow %.1f %%",
           s->sc->id, aw_sensor_name(s->sc->sensor), s->sc->date,
           100.0 * s->valid_fraction, s->cloud_pct, s->shadow_pct, s->snow_pct);
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

/* The mosaic order of the date's used scenes (w->order, w->n_used). */
static aw_status order_scenes(aw_ctx *ctx, run_state *rs, date_work *w)
{
    free(w->order);
    w->order = aw_calloc2(w->n_sb ? w->n_sb : 1, sizeof *w->order);
    if (!w->order)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < w->n_sb; i++)
        if (w->sb[i].status == SCENE_USED)
            w->order[k++] = i;
    sort_order = &rs->cfg->mosaic_order;
    sort_sb = w->sb;
    qsort(w->order, k, sizeof *w->order, cmp_scene);
    w->n_used = k;
    for (size_t r = 0; r < k; r++)
        w->sb[w->order[r]].order = (int)r;
    return AW_OK;
}

static aw_status build_mosaic(aw_ctx *ctx, run_state *v, date_work *w,
                              const strip *sp, int count)
{
    size_t n = npix(v), k = w->n_used;
    const size_t *order = w->order;
    if (k == 0)
        return aw_fail(ctx, AW_ERR_INTERNAL, "%s: a mosaic of no scene",
                       w->date);
    w->valid = aw_malloc2(n, 1);
    w->source = aw_malloc2(n, 1);
    if (!w->valid || !w->source)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (k == 1) {
        /* One scene: the mosaic is the scene; its buffers change hands. */
        scene_buf *s = &w->sb[order[0]];
        w->qcls = s->qcls;
        s->qcls = NULL;
        for (int b = 0; b < AW_BAND_COUNT; b++) {
            w->refl[b] = s->refl[b];
            s->refl[b] = NULL;
        }
        uint8_t src = (uint8_t)(order[0] + 1);
        const uint8_t *q = w->qcls;
        uint8_t *so = w->source;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            so[i] = q[i] == AW_Q_OUTSIDE || q[i] == AW_Q_NODATA ? 0 : src;
        scene_free(s);
    }
    else {
        w->qcls = aw_malloc2(n, 1);
        uint8_t *edge = aw_malloc2(n, 1); /* edge flag of the chosen pixel */
        if (!w->qcls || !edge) {
            free(edge);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        for (int b = 0; b < AW_BAND_COUNT; b++) {
            if (!w->sb[order[0]].refl[b])
                continue;
            w->refl[b] = aw_malloc2(n, sizeof(float));
            if (!w->refl[b]) {
                free(edge);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
        }
        /* Scenes in mosaic order: the first gives every pixel; a later
         * scene only replaces a pixel when it is strictly clearer there,
         * so ties go to the earlier scene. */
        for (size_t r = 0; r < k; r++) {
            scene_buf *s = &w->sb[order[r]];
            uint8_t src = (uint8_t)(order[r] + 1);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) {
                if (r > 0 && clearness(s->qcls[i], s->edge[i]) <=
                                 clearness(w->qcls[i], edge[i]))
                    continue;
                w->qcls[i] = s->qcls[i];
                edge[i] = s->edge[i];
                /* Only an observation has a source: a pixel no scene
                 * covers (nodata, outside) keeps 0. */
                w->source[i] =
                    s->qcls[i] == AW_Q_OUTSIDE || s->qcls[i] == AW_Q_NODATA
                        ? 0
                        : src;
                for (int b = 0; b < AW_BAND_COUNT; b++)
                    if (w->refl[b])
                        w->refl[b][i] = s->refl[b][i];
            }
            scene_free(s);
        }
        free(edge);
    }
    const uint8_t *q = w->qcls;
    uint8_t *va = w->valid;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        va[i] = q[i] == AW_Q_VALID ? 255 : 0;
    if (count) {
        size_t a = (size_t)sp->top * (size_t)v->grid.width;
        size_t b = a + (size_t)sp->nrows * (size_t)v->grid.width;
        count_classes(q, a, b, w->count);
        /* Pixels each scene gave (source is the scene's index + 1). */
        int64_t given[256] = {0};
        const uint8_t *so = w->source;
#pragma omp parallel for schedule(static) reduction(+ : given[:256])
        for (size_t i = a; i < b; i++)
            given[so[i]]++;
        for (size_t i = 1; i < 256 && i <= w->n_sb; i++)
            w->sb[i - 1].n_mosaic += given[i];
    }
    return AW_OK;
}

/* ---- Indices, water, zones, alerts ---- */

static aw_status stage_indices(aw_ctx *ctx, run_state *v, date_work *w)
{
    size_t rows = (size_t)v->grid.height, cols = (size_t)v->grid.width;
    const float *bands[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        bands[b] = w->refl[b];
    int classic = v->cfg->water_method == AW_WATER_THRESHOLD ||
                  v->cfg->water_method == AW_WATER_OTSU;
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        if (!v->cfg->indices[i] && !(classic && i == (int)v->cfg->water_index))
            continue;
        w->index[i] = aw_calloc2(rows * cols, sizeof(float));
        if (!w->index[i])
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_index_image((aw_index)i, bands, w->valid, w->index[i], rows, cols,
                       &v->cfg->index_params);
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

/* Once per date: the DSWE/WOfS checks and the sun of the DSWE hillshade
 * (the first scene used). */
static void prepare_classify(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    w->sun_azimuth = w->sun_elevation = NAN;
    if (cfg->water_method != AW_WATER_DSWE &&
        cfg->water_method != AW_WATER_WOFS)
        return;
    w->method_name = cfg->water_method == AW_WATER_DSWE ? "DSWE" : "WOfS";
    warn_if_dn(ctx, w);
    if (cfg->water_method != AW_WATER_DSWE || !cfg->dem_path)
        return;
    const aw_scene_cfg *sc = NULL;
    for (size_t i = 0; i < w->n_used && !sc; i++)
        sc = w->sb[w->order[i]].sc;
    double az = sc ? sc->sun_azimuth : (double)NAN;
    double el = sc ? sc->sun_elevation : (double)NAN;
    if (!isfinite(az) || !isfinite(el)) {
        aw_log(ctx, AW_LOG_WARN,
               "%s: no sun angles in the metadata; DSWE hillshade uses "
               "azimuth 315, elevation 45",
               w->date);
        az = 315.0;
        el = 45.0;
    }
    w->sun_azimuth = az;
    w->sun_elevation = el;
}

static aw_status stage_classify(aw_ctx *ctx, run_state *v, date_work *w)
{
    const aw_config *cfg = v->cfg;
    size_t n = npix(v);
    w->water = aw_calloc2(n, 1);
    if (!w->water)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const float *bands[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        bands[b] = w->refl[b];
    switch (cfg->water_method) {
    case AW_WATER_DSWE:
        w->dswe = aw_calloc2(n, 1);
        if (!w->dswe)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_dswe(bands, w->qcls, w->dswe, n);
        if (cfg->dem_path) {
            float *slope = NULL, *hill = NULL;
            aw_status st =
                aw_dem_terrain(ctx, cfg->dem_path, &v->grid, w->sun_azimuth,
                               w->sun_elevation, v->threads, &slope, &hill);
            if (st != AW_OK)
                return st;
            aw_dswe_terrain(w->dswe, slope, hill, n);
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
    aw_classify_threshold(w->index[cfg->water_index], w->valid, w->water, n,
                          w->water_threshold);
    return AW_OK;
}

/* Otsu's threshold from the histogram of the whole date (w->hist). */
static void otsu_threshold(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    const aw_index_info *info = aw_index_get(cfg->water_index);
    float t = (float)cfg->water_threshold;
    w->otsu_fallback = 0;
    if (aw_otsu_threshold(w->hist, cfg->otsu_bins, info->hist_lo, info->hist_hi,
                          cfg->otsu_min_class_fraction, &t) == 0) {
        w->water_threshold = t;
        return;
    }
    w->otsu_fallback = 1;
    w->water_threshold = (float)cfg->water_threshold;
    aw_log(ctx, AW_LOG_WARN,
           "%s: Otsu found no two-class split of %s (a class under %.1f %% "
           "of valid pixels); using the fixed threshold %g",
           w->date, info->name, 100.0 * cfg->otsu_min_class_fraction,
           cfg->water_threshold);
}

static aw_status stage_alerts(aw_ctx *ctx, run_state *rs, date_work *w)
{
    w->alerts = json_array();
    w->notices = json_array();
    w->active = json_array();
    w->forecasts = json_array();
    w->states = json_array();
    if (!w->alerts || !w->notices || !w->active || !w->forecasts || !w->states)
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
    aw_alert_input in = {w->date, ids, k, aw_catalog_db(rs->catalog)};
    aw_alert_out out = {w->alerts,    w->notices, w->active,
                        w->forecasts, w->states,  0};
    aw_status st =
        aw_alerts_eval(ctx, rs->cfg, &rs->zones, w->stats, &in, &out);
    w->n_alerts = out.n_alerts;
    free(ids);
    return st;
}

/* ---- One date ---- */

static void scene_failed(aw_ctx *ctx, scene_buf *s, aw_status st)
{
    s->status = SCENE_FAILED;
    s->failure = st;
    free(s->reason);
    s->reason = aw_strdup(aw_ctx_errmsg(ctx));
    aw_log(ctx, AW_LOG_ERROR, "scene %s failed (%s): %s", s->sc->id,
           aw_status_str(st), aw_ctx_errmsg(ctx));
    scene_free(s);
}

/* Free the date's strip buffers. */
static void strip_free(date_work *w)
{
    for (size_t i = 0; i < w->n_sb; i++)
        scene_free(&w->sb[i]);
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        free(w->refl[b]);
        w->refl[b] = NULL;
    }
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        free(w->index[i]);
        w->index[i] = NULL;
    }
    uint8_t **bufs[] = {&w->qcls,  &w->valid, &w->source,
                        &w->water, &w->dswe,  &w->wofl};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

static aw_status run_strip_view(aw_ctx *ctx, run_state *rs, run_state *vp,
                                date_work *w, const strip *sp, int pass,
                                int count, int *failed);

/* One strip of one pass. A scene that fails here is marked failed and
 * *failed set: the caller runs the date again without it. */
static aw_status run_strip(aw_ctx *ctx, run_state *rs, date_work *w,
                           const strip *sp, int pass, int count, int *failed)
{
    run_state v;
    strip_view(rs, sp, &v);
    aw_ctx_set_scope(ctx, w->date, NULL, NULL);
    v.aoi = malloc((size_t)v.grid.width * (size_t)v.grid.height);
    if (!v.aoi)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status ast = aw_aoi_mask(ctx, &rs->aoi_geoms, &v.grid, v.aoi);
    if (ast != AW_OK) {
        free(v.aoi);
        return ast;
    }
    aw_status st = run_strip_view(ctx, rs, &v, w, sp, pass, count, failed);
    free(v.aoi);
    return st;
}

static aw_status run_strip_view(aw_ctx *ctx, run_state *rs, run_state *vp,
                                date_work *w, const strip *sp, int pass,
                                int count, int *failed)
{
    run_state v = *vp;
    /* The coverage edge matters only where scenes overlap in a mosaic. */
    size_t n_using = 0;
    for (size_t i = 0; i < w->n_sb; i++)
        n_using += w->sb[i].status == SCENE_USED;
    int edge = pass != PASS_SURVEY && n_using > 1;
    for (size_t i = 0; i < w->n_sb; i++) {
        scene_buf *s = &w->sb[i];
        if (s->status != SCENE_USED)
            continue;
        if (aw_cancel_requested())
            return aw_fail(ctx, AW_ERR_CANCELLED, "cancelled");
        aw_ctx_clear_error(ctx);
        aw_ctx_set_scope(ctx, w->date, s->sc->id, aw_stage_names[ST_INGEST]);
        double t0 = aw_now();
        aw_status st = ingest_scene(ctx, &v, s);
        w->t[ST_INGEST] += aw_now() - t0;
        if (st == AW_OK) {
            aw_ctx_set_scope(ctx, w->date, s->sc->id, aw_stage_names[ST_MASK]);
            t0 = aw_now();
            st = mask_scene(ctx, &v, s, sp, count, edge);
            w->t[ST_MASK] += aw_now() - t0;
        }
        if (st == AW_ERR_CANCELLED || st == AW_ERR_NOMEM)
            return st;
        if (st != AW_OK) {
            scene_failed(ctx, s, st);
            *failed = 1;
        }
    }
    if (pass == PASS_SURVEY || *failed) {
        strip_free(w);
        return AW_OK;
    }
    typedef aw_status (*stage_fn)(aw_ctx *, run_state *, date_work *);
    static const struct {
        int id;
        stage_fn fn;
    } stages[] = {{ST_INDICES, stage_indices}, {ST_CLASSIFY, stage_classify}};
    aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_MOSAIC]);
    double t0 = aw_now();
    aw_status st = build_mosaic(ctx, &v, w, sp, pass == PASS_MAIN);
    w->t[ST_MOSAIC] += aw_now() - t0;
    size_t off = (size_t)sp->top * (size_t)rs->grid.width;
    for (size_t k = 0; k < 2 && st == AW_OK; k++) {
        if (pass == PASS_HIST && stages[k].id == ST_CLASSIFY)
            break;
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[stages[k].id]);
        t0 = aw_now();
        st = stages[k].fn(ctx, &v, w);
        w->t[stages[k].id] += aw_now() - t0;
    }
    if (st == AW_OK && pass == PASS_HIST) {
        /* Otsu: the water index histogram of the core rows. */
        const aw_index_info *info = aw_index_get(rs->cfg->water_index);
        aw_hist_add(w->hist, rs->cfg->otsu_bins, info->hist_lo, info->hist_hi,
                    w->index[rs->cfg->water_index] + off, w->valid + off,
                    (size_t)sp->nrows * (size_t)rs->grid.width);
    }
    if (st == AW_OK && pass == PASS_MAIN && w->zr) {
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_ZONES]);
        t0 = aw_now();
        const float *idx[AW_IDX_COUNT];
        for (int i = 0; i < AW_IDX_COUNT; i++)
            idx[i] = rs->cfg->indices[i] ? w->index[i] + off : NULL;
        st = aw_zones_run_rows(ctx, &rs->zones, w->zr, &rs->grid, sp->row0,
                               sp->nrows, idx, w->water + off, w->qcls + off);
        w->t[ST_ZONES] += aw_now() - t0;
    }
    if (st == AW_OK && pass == PASS_MAIN && rs->bl_have) {
        /* Change against the baseline of the date's period. */
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_ZONES]);
        t0 = aw_now();
        st = aw_bl_rows(ctx, rs->bl, rs, w, sp->row0, sp->nrows, off);
        w->t[ST_ZONES] += aw_now() - t0;
    }
    if (st == AW_OK && pass == PASS_MAIN) {
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_WRITE]);
        st = aw_date_rows(ctx, rs, w, sp->row0, sp->nrows, off);
    }
    strip_free(w);
    return st;
}

/* Rows per strip: what fits the memory budget (AW_STRIP_MB, 128 MiB by
 * default) for this date's scenes and outputs, a multiple of the output
 * block height when it can be; AW_STRIP_ROWS forces a height (tests). */
static int strip_rows(const run_state *rs, const date_work *w, int halo)
{
    const aw_config *cfg = rs->cfg;
    const char *force = getenv("AW_STRIP_ROWS");
    long forced = force ? strtol(force, NULL, 10) : 0;
    if (forced > 0)
        return forced > rs->grid.height ? rs->grid.height : (int)forced;
    const char *mb = getenv("AW_STRIP_MB");
    long budget_mb = mb ? strtol(mb, NULL, 10) : 0;
    double budget = (budget_mb > 0 ? (double)budget_mb : 48.0) * 1048576.0;
    int nb = 0, ni = 0;
    unsigned need = aw_config_needed_bands(cfg);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        nb += (int)((need >> (unsigned)b) & 1u);
    for (int i = 0; i < AW_IDX_COUNT; i++)
        ni += cfg->indices[i] != 0;
    ni += 1; /* the water index */
    size_t ns = 0;
    for (size_t i = 0; i < w->n_sb; i++)
        ns += w->sb[i].status == SCENE_USED;
    /* per pixel: each scene's bands, QA (float64), classes, edge and the
     * dilation scratch; the mosaic's bands, indices and class rasters */
    double per_px = (double)ns * (4.0 * nb + 8.0 + 4.0) + 4.0 * nb + 4.0 * ni +
                    8.0 + (cfg->dem_path ? 8.0 : 0.0);
    double per_row = per_px * (double)rs->grid.width;
    long rows = (long)(budget / per_row) - 2L * halo;
    if (rows > cfg->blocksize)
        rows -= rows % cfg->blocksize;
    if (rows < 16)
        rows = 16;
    if (rows > rs->grid.height)
        rows = rs->grid.height;
    return (int)rows;
}

/* One pass over every strip of the grid. */
static const aw_band_src *scene_src(const scene_buf *s, int b);

/* After a pass: the input tiles its windows read only down to some row
 * (the region, or this rank's rows, ends inside them) are inflated to
 * their end, for their checksums; a scene whose tile fails fails, as one
 * whose read failed. */
static aw_status verify_pass(aw_ctx *ctx, run_state *rs, date_work *w,
                             int *failed)
{
    for (size_t i = 0; i < w->n_sb; i++) {
        scene_buf *s = &w->sb[i];
        for (int b = 0; b <= AW_BAND_COUNT && s->status == SCENE_USED; b++) {
            const aw_band_src *src = scene_src(s, b);
            if (!src->present || !aw_input_read(rs->cfg, b))
                continue;
            aw_ctx_set_scope(ctx, w->date, s->sc->id,
                             aw_stage_names[ST_INGEST]);
            aw_ctx_clear_error(ctx);
            aw_status st = aw_gdal_verify_input(ctx, src->path);
            if (st == AW_ERR_NOMEM)
                return st;
            if (st != AW_OK) {
                scene_failed(ctx, s, st);
                *failed = 1;
            }
        }
    }
    return AW_OK;
}

static aw_status run_pass(aw_ctx *ctx, run_state *rs, date_work *w, int pass,
                          int count, int rows, int halo, int *failed)
{
    int height = rs->grid.height;
    for (int r0 = w->row_lo; r0 < w->row_hi; r0 += rows) {
        strip sp;
        sp.row0 = r0;
        sp.nrows = r0 + rows > w->row_hi ? w->row_hi - r0 : rows;
        sp.top = r0 < halo ? r0 : halo;
        int bottom = height - (r0 + sp.nrows);
        sp.rows = sp.top + sp.nrows + (bottom < halo ? bottom : halo);
        if (pass == PASS_MAIN) {
            char what[160];
            snprintf(what, sizeof what, "%s: rows %d-%d", w->date, r0,
                     r0 + sp.nrows);
            progress(rs, (int)((double)r0 / height * (ST_COUNT - 1)), what);
        }
        if (pass == PASS_MAIN)
            aw_par_test_die("strip");
        aw_status st = run_strip(ctx, rs, w, &sp, pass, count, failed);
        if (st != AW_OK || *failed)
            return st;
    }
    return verify_pass(ctx, rs, w, failed);
}

/* ---- MPI: the ranks' shares of a date ----
 *
 * Every rank runs every date, on its own band of rows of the grid; after
 * each pass the ranks agree on errors and failed scenes and add up their
 * counts, histograms and zone accumulators (exact integer sums), so each
 * holds what one process would have. In a single process these do
 * nothing. */

/* The rows of the grid this rank works on: contiguous bands cut so that
 * each has the same weight, a row weighing a quarter (mosaic, indices,
 * zones, write) plus one per scene whose footprint spans it (reading and
 * masking it). */
static void share_rows(aw_ctx *ctx, const run_state *rs, date_work *w)
{
    int height = rs->grid.height, size = aw_par_size();
    w->row_lo = 0;
    w->row_hi = height;
    if (size < 2 || height <= 0)
        return;
    double *cum = aw_calloc2((size_t)height + 1, sizeof *cum);
    if (!cum)
        aw_par_abort("out of memory", AW_EXIT_PROCESS);
    for (int r = 0; r < height; r++) {
        double wt = 0.25;
        for (size_t i = 0; i < w->n_sb; i++)
            if (w->sb[i].status == SCENE_USED && r >= w->sb[i].rows[0] &&
                r < w->sb[i].rows[1])
                wt += 1.0;
        cum[r + 1] = cum[r] + wt;
    }
    int rank = aw_par_rank();
    int cut[2];
    for (int k = 0; k < 2; k++) {
        double target = cum[height] * (double)(rank + k) / (double)size;
        int r = 0;
        while (r < height && cum[r] < target)
            r++;
        cut[k] = rank + k == size ? height : r;
    }
    double total = cum[height], mine = cum[cut[1]] - cum[cut[0]];
    free(cum);
    w->row_lo = cut[0];
    w->row_hi = cut[1];
    aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_INGEST]);
    aw_log(ctx, AW_LOG_INFO,
           "%s: rows %d-%d of %d are this rank's (work weight %.2f of %.2f)",
           w->date, w->row_lo, w->row_hi, height, mine, total);
}

/* Collective: 1 when a scene failed on any rank in the step just done;
 * then every rank has the same scenes failed, with the reason of the
 * (lowest) rank that saw each fail. */
static int share_failures(date_work *w, int failed)
{
    int size = aw_par_size(), rank = aw_par_rank();
    if (size < 2)
        return failed;
    int any = failed;
    aw_par_max_int(&any, 1);
    if (!any)
        return 0;
    int *who = aw_calloc2(w->n_sb + 1, sizeof *who);
    if (!who)
        aw_par_abort("out of memory", AW_EXIT_PROCESS);
    for (size_t i = 0; i < w->n_sb; i++)
        who[i] = w->sb[i].status == SCENE_FAILED ? size - rank : 0;
    aw_par_max_int(who, w->n_sb);
    for (size_t i = 0; i < w->n_sb; i++) {
        if (!who[i])
            continue;
        scene_buf *s = &w->sb[i];
        int root = size - who[i];
        int code = (int)s->failure;
        aw_par_bcast(&code, sizeof code, root);
        char *reason = rank == root ? aw_strdup(s->reason) : NULL;
        aw_par_bcast_str(&reason, root);
        if (s->status != SCENE_FAILED) {
            s->status = SCENE_FAILED;
            s->failure = (aw_status)code;
            free(s->reason);
            s->reason = reason;
            scene_free(s);
        }
        else
            free(reason);
    }
    free(who);
    return 1;
}

/* Collective: add up the ranks' pixel counts of the date and its scenes
 * (scenes = 1: their quality counts too). */
static void share_counts(date_work *w, int scenes)
{
    if (aw_par_size() < 2)
        return;
    size_t per = AW_Q_COUNT + 1, n = AW_Q_COUNT + w->n_sb * per;
    int64_t *v = aw_calloc2(n, sizeof *v);
    if (!v)
        aw_par_abort("out of memory", AW_EXIT_PROCESS);
    memcpy(v, w->count, sizeof w->count);
    for (size_t i = 0; i < w->n_sb; i++) {
        memcpy(v + AW_Q_COUNT + i * per, w->sb[i].count, sizeof w->sb[i].count);
        v[AW_Q_COUNT + i * per + AW_Q_COUNT] = w->sb[i].n_mosaic;
    }
    aw_par_sum_i64(v, n);
    memcpy(w->count, v, sizeof w->count);
    for (size_t i = 0; i < w->n_sb; i++) {
        if (scenes)
            memcpy(w->sb[i].count, v + AW_Q_COUNT + i * per,
                   sizeof w->sb[i].count);
        w->sb[i].n_mosaic = v[AW_Q_COUNT + i * per + AW_Q_COUNT];
    }
    free(v);
}

/* Collective: a pass is over on every rank; its status (the first failing
 * rank's) and whether a scene failed anywhere. */
static aw_status pass_done(aw_ctx *ctx, date_work *w, aw_status st, int *failed)
{
    st = aw_par_agree(ctx, st);
    if (st == AW_OK)
        *failed = share_failures(w, *failed);
    return st;
}

static aw_status run_date_inner(aw_ctx *ctx, run_state *rs, date_work *w);

static aw_status run_date(aw_ctx *ctx, run_state *rs, date_work *w)
{
    aw_status st = run_date_inner(ctx, rs, w);
    aw_gdal_close_inputs();
    return st;
}

static aw_status local_failure(aw_ctx *ctx, aw_status st, const char *msg);

static aw_status run_date_inner(aw_ctx *ctx, run_state *rs, date_work *w)
{
    const aw_config *cfg = rs->cfg;
    /* Before any pixel: every scene has its bands and meets the region. */
    aw_status stop = AW_OK;
    for (size_t i = 0; i < w->n_sb && stop == AW_OK; i++) {
        scene_buf *s = &w->sb[i];
        aw_ctx_set_scope(ctx, w->date, s->sc->id, aw_stage_names[ST_INGEST]);
        aw_ctx_clear_error(ctx);
        aw_status st = s->damaged ? aw_fail(ctx, AW_ERR_INPUT, "%s", s->damaged)
                                  : check_scene(ctx, rs, s);
        if (st == AW_ERR_CANCELLED || st == AW_ERR_NOMEM)
            stop = st;
        else if (st != AW_OK)
            scene_failed(ctx, s, st);
    }
    /* Every rank stops, or none (a cancel may reach them at different
     * moments). */
    stop = aw_par_agree(ctx, stop);
    if (stop != AW_OK)
        return stop;
    share_failures(w, 1);
    int halo = 1;
    for (size_t i = 0; i < w->n_sb; i++)
        if (w->sb[i].edge_r > halo)
            halo = w->sb[i].edge_r;
    if (cfg->dilate_cloud_px > halo)
        halo = cfg->dilate_cloud_px;
    if (cfg->dilate_shadow_px > halo)
        halo = cfg->dilate_shadow_px;

    /* A scene failing in a pass is dropped and the date done again, at
     * most once per scene. */
    for (size_t attempt = 0; attempt <= w->n_sb; attempt++) {
        size_t n_cand = 0;
        for (size_t i = 0; i < w->n_sb; i++) {
            scene_buf *s = &w->sb[i];
            if (s->status != SCENE_USED)
                continue;
            n_cand++;
            memset(s->count, 0, sizeof s->count);
            s->n_mosaic = 0;
        }
        memset(w->count, 0, sizeof w->count);
        if (n_cand == 0) {
            /* Every scene failed (or was dropped) in a pass: nothing to
             * write; each is recorded. Not "used" any more, so the date
             * is neither finished nor marked done. */
            w->n_used = 0;
            return AW_OK;
        }
        int rows = strip_rows(rs, w, halo);
        int failed = 0;
        share_rows(ctx, rs, w);
        /* Ranking scenes by cloud, or dropping those under
         * min_valid_fraction, needs every scene's counts before the
         * mosaic: a survey pass (reads the bands once more). */
        int survey =
            n_cand > 1 && (cfg->mosaic_order == AW_MOSAIC_LEAST_CLOUD ||
                           cfg->min_valid_fraction > 0);
        if (survey) {
            aw_status st =
                run_pass(ctx, rs, w, PASS_SURVEY, 1, rows, halo, &failed);
            st = pass_done(ctx, w, st, &failed);
            if (st != AW_OK)
                return st;
            if (failed)
                continue;
            share_counts(w, 1);
            for (size_t i = 0; i < w->n_sb; i++)
                if (w->sb[i].status == SCENE_USED)
                    finish_scene_counts(ctx, rs, &w->sb[i]);
        }
        aw_status st = order_scenes(ctx, rs, w);
        if (st != AW_OK)
            return local_failure(ctx, st, "out of memory");
        if (w->n_used == 0)
            return AW_OK;
        rows = strip_rows(rs, w, halo);
        prepare_classify(ctx, rs, w);
        w->water_threshold = (float)cfg->water_threshold;
        w->otsu_fallback = 0;
        if (cfg->water_method == AW_WATER_OTSU) {
            /* Otsu needs the histogram of the whole date first. */
            free(w->hist);
            w->hist = aw_calloc2((size_t)cfg->otsu_bins, sizeof *w->hist);
            if (!w->hist)
                return local_failure(ctx, AW_ERR_NOMEM, "out of memory");
            st = run_pass(ctx, rs, w, PASS_HIST, 0, rows, halo, &failed);
            st = pass_done(ctx, w, st, &failed);
            if (st != AW_OK)
                return st;
            if (failed)
                continue;
            aw_par_sum_u64(w->hist, (size_t)cfg->otsu_bins);
            otsu_threshold(ctx, rs, w);
        }
        if (!(cfg->water_method == AW_WATER_THRESHOLD ||
              cfg->water_method == AW_WATER_OTSU))
            w->water_threshold = NAN;
        if (rs->zones.n) {
            int has[AW_IDX_COUNT];
            for (int i = 0; i < AW_IDX_COUNT; i++)
                has[i] = cfg->indices[i] != 0;
            aw_zones_run_free(w->zr);
            w->zr = NULL;
            st = aw_zones_run_begin(ctx, &rs->zones, has, &w->zr);
            if (st != AW_OK)
                return local_failure(ctx, st, "out of memory (zones)");
        }
        rs->bl_have = 0;
        if (rs->bl) {
            st = aw_bl_date_begin(ctx, rs->bl, rs, w->date, &rs->bl_have);
            st = aw_par_agree(ctx, st);
            if (st != AW_OK)
                return st;
        }
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_WRITE]);
        st = aw_date_open(ctx, rs, w);
        if (st != AW_OK)
            return st;
        st = run_pass(ctx, rs, w, PASS_MAIN, !survey, rows, halo, &failed);
        st = pass_done(ctx, w, st, &failed);
        if (st != AW_OK || failed) {
            aw_date_abort(w);
            if (st != AW_OK)
                return st;
            continue;
        }
        share_counts(w, !survey);
        if (w->zr)
            aw_zones_run_reduce(w->zr);
        if (rs->bl_have)
            aw_bl_reduce(rs->bl);
        if (!survey) {
            for (size_t i = 0; i < w->n_sb; i++)
                if (w->sb[i].status == SCENE_USED)
                    finish_scene_counts(ctx, rs, &w->sb[i]);
            size_t used = 0;
            for (size_t i = 0; i < w->n_sb; i++)
                used += w->sb[i].status == SCENE_USED;
            if (used == 0) {
                /* Its only scene turned out empty or too cloudy. */
                aw_date_abort(w);
                w->n_used = 0;
                return AW_OK;
            }
            w->n_used = used;
        }
        if (aw_par_size() > 1) {
            /* Every rank's rows are written: encode the rasters (spread
             * over the ranks); rank 0 finishes the date alone. */
            st = aw_date_close_rasters(ctx, rs, w);
            if (st != AW_OK || !aw_par_root()) {
                aw_date_abort(w);
                return st;
            }
        }
        if (w->count[AW_Q_VALID] == 0)
            aw_log(ctx, AW_LOG_WARN,
                   "%s: no valid pixel in the region (all cloud, shadow, snow "
                   "or nodata)",
                   w->date);
        if (rs->zones.n) {
            w->stats = aw_calloc2(rs->zones.n, sizeof *w->stats);
            if (!w->stats) {
                aw_date_abort(w);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
            aw_zones_run_end(&rs->zones, w->zr, &rs->grid, w->stats);
            if (rs->bl_have)
                aw_bl_date_end(rs->bl, rs, w->stats);
        }
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_ALERTS]);
        double t0 = aw_now();
        st = stage_alerts(ctx, rs, w);
        w->t[ST_ALERTS] += aw_now() - t0;
        if (st != AW_OK) {
            aw_date_abort(w);
            return st;
        }
        aw_ctx_set_scope(ctx, w->date, NULL, aw_stage_names[ST_WRITE]);
        progress(rs, ST_WRITE, w->date);
        return aw_date_finish(ctx, rs, w);
    }
    return aw_fail(ctx, AW_ERR_INTERNAL, "%s: scenes kept failing", w->date);
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
/* Input b of a scene: a band, or its quality band at AW_BAND_COUNT. */
static const aw_band_src *scene_src(const scene_buf *s, int b)
{
    return b < AW_BAND_COUNT ? &s->sc->bands[b] : &s->sc->qa;
}

static aw_status date_fingerprint(aw_ctx *ctx, run_state *rs, date_work *w,
                                  char hex[65])
{
    hex[0] = '\0';
    /* Checksums the catalog does not have (new or changed files) are
     * worked out in parallel, a file per thread: they are the inputs'
     * whole bytes, the longest part of a run's start. */
    enum { NB = AW_BAND_COUNT + 1 };
    size_t nj = 0, cap = w->n_sb * NB;
    struct hash_job {
        scene_buf *s;
        int b;
        long long size, mtime;
        aw_status st;
        long same; /* an earlier job of the same file (bands of one
                      multi-band file), or -1 */
        int damaged;
        char *why; /* when damaged */
    } *job = aw_calloc2(cap ? cap : 1, sizeof *job);
    if (!job)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = AW_OK;
    for (size_t k = 0; k < w->n_sb && st == AW_OK; k++) {
        scene_buf *s = &w->sb[k];
        for (int b = 0; b < NB && st == AW_OK; b++) {
            const aw_band_src *src = scene_src(s, b);
            long long size = -1, mtime = -1;
            s->sha256[b][0] = '\0';
            if (!src->present || !aw_input_read(rs->cfg, b))
                continue;
            s->bytes[b] = -1;
            if (aw_file_signature(src->path, &size, &mtime) != 0)
                continue;
            s->bytes[b] = size;
            int found = 0;
            st = aw_catalog_get_file(ctx, rs->catalog, src->path, size, mtime,
                                     s->sha256[b], &found);
            if (st == AW_OK && !found) {
                long same = -1;
                for (size_t j = 0; j < nj && same < 0; j++) {
                    if (strcmp(scene_src(job[j].s, job[j].b)->path,
                               src->path) == 0)
                        same = (long)j;
                }
                job[nj++] =
                    (struct hash_job){s, b, size, mtime, AW_OK, same, 0, NULL};
            }
        }
    }
    if (st != AW_OK) {
        free(job);
        return st;
    }
#pragma omp parallel for schedule(dynamic, 1) if (nj > 1)
    for (size_t j = 0; j < nj; j++) {
        if (job[j].same >= 0)
            continue; /* hashed once, for its first band */
        const aw_band_src *src = scene_src(job[j].s, job[j].b);
        aw_ctx *tc = aw_ctx_create();
        job[j].st =
            tc ? aw_sha256_vsi(tc, src->path, job[j].s->sha256[job[j].b], NULL,
                               &job[j].damaged)
               : AW_ERR_NOMEM;
        if (job[j].damaged)
            job[j].why = aw_strdup(aw_ctx_errmsg(tc));
        if (tc)
            aw_ctx_destroy(tc);
    }
    for (size_t j = 0; j < nj && st == AW_OK; j++) {
        const aw_band_src *src = scene_src(job[j].s, job[j].b);
        if (job[j].same >= 0) {
            const struct hash_job *f = &job[job[j].same];
            job[j].st = f->st;
            job[j].damaged = f->damaged;
            job[j].why = f->why ? aw_strdup(f->why) : NULL;
            memcpy(job[j].s->sha256[job[j].b], f->s->sha256[f->b], 65);
            if (f->st == AW_OK)
                continue; /* in the catalog already, from its first band */
        }
        if (job[j].st == AW_OK)
            st = aw_catalog_put_file(ctx, rs->catalog, src->path, job[j].size,
                                     job[j].mtime, job[j].s->sha256[job[j].b]);
        else if (job[j].st == AW_ERR_NOMEM)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        else /* Unreadable files fail their scene later, by name. */
            job[j].s->sha256[job[j].b][0] = '\0';
        if (job[j].damaged && !job[j].s->damaged) {
            job[j].s->damaged = job[j].why;
            job[j].why = NULL;
        }
    }
    for (size_t j = 0; j < nj; j++)
        free(job[j].why);
    free(job);
    if (st != AW_OK)
        return st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    fprintf(f, "aralwatch %s\nconfig %s\n", AW_VERSION, rs->cfg->sha256);
    for (size_t k = 0; k < w->n_sb; k++) {
        scene_buf *s = &w->sb[k];
        fprintf(f, "scene %s\n", s->sc->id);
        for (int b = 0; b < NB; b++) {
            const aw_band_src *src = scene_src(s, b);
            if (!src->present || !aw_input_read(rs->cfg, b))
                continue;
            fprintf(f, "%d %s %d %s %.17g %.17g\n", b, src->path, src->band,
                    s->sha256[b][0] ? s->sha256[b] : "unreadable", src->scale,
                    src->offset);
        }
    }
    fclose(f);
    aw_sha256_buf(buf, len, hex);
    free(buf);
    return AW_OK;
}

/* The inputs of a scene with their checksums, as JSON text for the
 * catalog (caller frees). */
static char *scene_checksums(const aw_config *cfg, const scene_buf *s)
{
    json_t *arr = json_array();
    for (int b = 0; b <= AW_BAND_COUNT; b++) {
        const aw_band_src *src =
            b < AW_BAND_COUNT ? &s->sc->bands[b] : &s->sc->qa;
        if (!src->present || !aw_input_read(cfg, b))
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
/* The level of every rule in every zone, and the date's forecasts. */
static aw_status record_states(aw_ctx *ctx, run_state *rs, date_work *w)
{
    sqlite3 *db = aw_catalog_db(rs->catalog);
    sqlite3_stmt *q = NULL;
    size_t i;
    json_t *a;
    aw_status st = AW_OK;
    if (w->states && json_array_size(w->states)) {
        if (sqlite3_prepare_v2(
                db,
                "INSERT OR REPLACE INTO alert_state (rule_id, zone_id, level, "
                "onset, last_record, date, run_id) VALUES (?1, ?2, ?3, ?4, "
                "?5, ?6, ?7)",
                -1, &q, NULL) != SQLITE_OK)
            return aw_fail(ctx, AW_ERR_IO, "catalog: alert state: %s",
                           sqlite3_errmsg(db));
        json_array_foreach(w->states, i, a)
        {
            sqlite3_reset(q);
            const char *keys[5] = {"rule_id", "zone_id", "level", "onset",
                                   "last_record"};
            for (int k = 0; k < 5; k++) {
                const char *v = json_string_value(json_object_get(a, keys[k]));
                if (v)
                    sqlite3_bind_text(q, k + 1, v, -1, SQLITE_TRANSIENT);
                else
                    sqlite3_bind_null(q, k + 1);
            }
            sqlite3_bind_text(q, 6, w->date, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 7, rs->run_id);
            if (sqlite3_step(q) != SQLITE_DONE) {
                st = aw_fail(ctx, AW_ERR_IO, "catalog: alert state: %s",
                             sqlite3_errmsg(db));
                break;
            }
        }
        sqlite3_finalize(q);
    }
    if (st != AW_OK || !w->forecasts)
        return st;
    if (sqlite3_prepare_v2(db, "DELETE FROM forecasts WHERE date = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return aw_fail(ctx, AW_ERR_IO, "catalog: forecasts: %s",
                       sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, w->date, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return aw_fail(ctx, AW_ERR_IO, "catalog: forecasts: %s",
                       sqlite3_errmsg(db));
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO forecasts (date, zone_id, "
                           "rule_id, level, projected, record, run_id) VALUES "
                           "(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &q, NULL) != SQLITE_OK)
        return aw_fail(ctx, AW_ERR_IO, "catalog: forecasts: %s",
                       sqlite3_errmsg(db));
    json_array_foreach(w->forecasts, i, a)
    {
        sqlite3_reset(q);
        char *rec = json_dumps(a, JSON_COMPACT);
        sqlite3_bind_text(q, 1, w->date, -1, SQLITE_STATIC);
        const char *keys[4] = {"zone_id", "rule_id", "level", "projected_date"};
        for (int k = 0; k < 4; k++) {
            const char *v = json_string_value(json_object_get(a, keys[k]));
            if (v)
                sqlite3_bind_text(q, k + 2, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(q, k + 2);
        }
        sqlite3_bind_text(q, 6, rec ? rec : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 7, rs->run_id);
        free(rec);
        if (sqlite3_step(q) != SQLITE_DONE) {
            st = aw_fail(ctx, AW_ERR_IO, "catalog: forecasts: %s",
                         sqlite3_errmsg(db));
            break;
        }
    }
    sqlite3_finalize(q);
    return st;
}

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
        char *sums = scene_checksums(rs->cfg, s);
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
    if (written && st == AW_OK)
        st = record_states(ctx, rs, w);
    if (st == AW_OK)
        st = aw_catalog_commit(ctx, cat);
    else
        aw_catalog_rollback(cat);
    return st;
}

/* A failure on this rank alone, where the others cannot be told in step:
 * in an MPI run the job ends (rather than the others waiting forever). */
static aw_status local_failure(aw_ctx *ctx, aw_status st, const char *msg)
{
    if (aw_par_size() > 1)
        aw_par_abort(msg, aw_exit_code(st));
    return aw_fail(ctx, st, "%s", msg);
}

/* Collective: every rank has the same dates and scenes as rank 0. */
static aw_status same_scenes(aw_ctx *ctx, const aw_config *cfg)
{
    if (aw_par_size() < 2)
        return AW_OK;
    uint64_t h = 1469598103934665603ULL, h0; /* FNV-1a */
    for (size_t i = 0; i < cfg->n_scenes; i++) {
        const aw_scene_cfg *sc = &cfg->scenes[i];
        const char *parts[] = {sc->id, sc->date, sc->bands[0].path, "\n"};
        for (size_t k = 0; k < 4; k++)
            for (const char *c = parts[k] ? parts[k] : ""; *c; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    }
    h0 = h;
    aw_par_bcast(&h0, sizeof h0, 0);
    aw_status st = AW_OK;
    if (h0 != h)
        st = aw_fail(ctx, AW_ERR_CONFIG,
                     "rank %d sees other scenes (%zu) than rank 0: the inbox "
                     "changed while the ranks were listing it; run again",
                     aw_par_rank(), cfg->n_scenes);
    return aw_par_agree(ctx, st);
}

static void release_grid(run_state *rs)
{
    aw_zones_free(&rs->zones);
    aw_grid_free(&rs->grid);
    aw_aoi_free(&rs->aoi_geoms);
}

/* Region grid, AOI mask and zones for the scenes of `cfg`. */
static aw_status prepare_grid(aw_ctx *ctx, run_state *rs, const aw_config *cfg)
{
    aw_ctx_set_scope(ctx, NULL, NULL, "grid");
    aw_status st = aw_grid_build(ctx, cfg, &rs->grid, &rs->aoi_geoms);
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
    /* GDAL decodes several blocks of one read in parallel (GeoTIFF), and
     * its block cache holds a row of input tiles and the output tiles of a
     * strip: bounded, not 5 % of the RAM, unless the user says otherwise. */
    char nthr[16];
    snprintf(nthr, sizeof nthr, "%d", rs.threads);
    /* Not with network inputs: GDAL 3.6's parallel decoding of a GeoTIFF
     * read through /vsicurl/ fails (seen with a VRT over HTTP). */
    if (!CPLGetConfigOption("GDAL_NUM_THREADS", NULL) && !cfg->allow_network)
        CPLSetConfigOption("GDAL_NUM_THREADS", nthr);
    if (!CPLGetConfigOption("GDAL_CACHEMAX", NULL))
        GDALSetCacheMax64((GIntBig)200 * 1024 * 1024);

    const char *out = opts->out_dir ? opts->out_dir : cfg->out_dir;
    rs.region_dir = aw_path_join(out, cfg->region_name);
    size_t *idx = aw_calloc2(cfg->n_scenes, sizeof *idx);
    json_t *summary = json_array();
    /* What the report needs of the dates processed. */
    json_t *rep_dates = json_array(), *rep_alerts = json_array();
    json_t *rep_notices = json_array(), *rep_forecasts = json_array();
    char rep_latest[11] = "";
    aw_status st = AW_OK;
    char started[21];
    aw_utc_now(started);
    if (!rs.region_dir || !idx || !summary || !rep_dates || !rep_alerts ||
        !rep_notices || !rep_forecasts) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto early;
    }
    /* Every rank must see the same scenes (an inbox listed while a file
     * arrived could differ). */
    st = same_scenes(ctx, cfg);
    if (st != AW_OK)
        goto early;
    if (cfg->n_scenes == 0 && cfg->n_inbox_rejects == 0) {
        /* An inbox with nothing delivered: a quiet night, not an error. */
        char *dirs = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&dirs, &len);
        for (size_t i = 0; f && i < cfg->n_inbox; i++)
            fprintf(f, "%s%s", i ? ", " : "", cfg->inbox[i]);
        if (f)
            fclose(f);
        aw_log(ctx, AW_LOG_WARN, "no scene in the inbox (%s): nothing to do",
               dirs ? dirs : "?");
        free(dirs);
        goto early;
    }
    /* The region folder holds the lock, the catalog and the products; in
     * an MPI run rank 0 alone touches them. */
    int root = aw_par_root();
    st = root ? aw_mkdirs(ctx, rs.region_dir) : AW_OK;
    int lock_fd = -1;
    char *cat_path = aw_path_join(rs.region_dir, "catalog.sqlite");
    if (st == AW_OK && !cat_path)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK && root)
        st = aw_lock_acquire(ctx, rs.region_dir, &lock_fd);
    st = aw_par_agree(ctx, st);
    if (st != AW_OK) {
        free(cat_path);
        aw_lock_release(lock_fd);
        goto early;
    }
    if (root) {
        aw_sweep_stale(ctx, rs.region_dir);
        st = aw_catalog_open(ctx, cat_path, &rs.catalog);
    }
    free(cat_path);
    if (st == AW_OK && root)
        st = aw_catalog_run_begin(ctx, rs.catalog, cfg->path, cfg->sha256,
                                  &rs.run_id);
    if (st == AW_OK && root && opts->reprocess_since)
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
        else if (root)
            st = aw_catalog_forget(ctx, rs.catalog, date, NULL);
    }
    st = aw_par_agree(ctx, st);
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
        st = aw_par_agree(ctx, prepare_grid(ctx, &rs, cfg));
        if (st == AW_OK)
            st = aw_bl_open(ctx, &rs, &rs.bl);
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
        const char *date = cfg->scenes[idx[i]].date;
        if ((opts->date_from && strcmp(date, opts->date_from) < 0) ||
            (opts->date_to && strcmp(date, opts->date_to) > 0)) {
            /* Outside the dates asked for (aralwatch baseline). */
            result->n_scenes -= j - i;
            i = j;
            continue;
        }
        date_work w;
        memset(&w, 0, sizeof w);
        w.date = cfg->scenes[idx[i]].date;
        w.n_sb = j - i;
        w.sb = aw_calloc2(w.n_sb, sizeof *w.sb);
        if (!w.sb) {
            st = local_failure(ctx, AW_ERR_NOMEM, "out of memory");
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
        int up_to_date = 0;
        if (root) {
            st = date_fingerprint(ctx, &rs, &w, fp);
            if (st == AW_OK)
                st = aw_catalog_date_done(ctx, rs.catalog, w.date, done_fp,
                                          &done);
            char *date_dir = aw_path_join(rs.region_dir, w.date);
            struct stat dsb;
            int present = date_dir && stat(date_dir, &dsb) == 0;
            free(date_dir);
            up_to_date =
                st == AW_OK && done && present && strcmp(fp, done_fp) == 0;
        }
        st = aw_par_agree(ctx, st);
        if (st != AW_OK) {
            date_free(&w);
            goto done;
        }
        aw_par_bcast(&up_to_date, sizeof up_to_date, 0);
        if (up_to_date) {
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
        int grid_failed = 0;
        if (cfg->grid_per_date) {
            /* This date's own grid: the config seen with only its scenes. */
            release_grid(&rs);
            aw_config view = *cfg;
            aw_scene_cfg *scenes = aw_calloc2(w.n_sb, sizeof *scenes);
            if (!scenes) {
                date_free(&w);
                st = local_failure(ctx, AW_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (size_t k = 0; k < w.n_sb; k++)
                scenes[k] = *w.sb[k].sc;
            view.scenes = scenes;
            view.n_scenes = w.n_sb;
            dst = aw_par_agree(ctx, prepare_grid(ctx, &rs, &view));
            grid_failed = dst != AW_OK; /* the same on every rank */
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
        /* Rank 0 finishes the date alone (alerts, tables, the swap into
         * place): every rank learns how that went. */
        dst = aw_par_agree(ctx, dst);
        for (int k = 0; k < ST_COUNT; k++)
            result->stage_seconds[k] += w.t[k];
        aw_ctx_set_scope(ctx, w.date, NULL, "record");
        if (grid_failed)
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
            json_array_append_new(rep_dates, json_string(w.date));
            if (w.alerts)
                json_array_extend(rep_alerts, w.alerts);
            if (w.notices) {
                json_array_clear(rep_notices);
                json_array_extend(rep_notices, w.notices);
            }
            if (w.forecasts) {
                json_array_clear(rep_forecasts);
                json_array_extend(rep_forecasts, w.forecasts);
            }
            snprintf(rep_latest, sizeof rep_latest, "%s", w.date);
            result->n_alerts += w.n_alerts;
            result->n_notices += json_array_size(w.notices);
            if (root) /* the others have no alerts: rank 0 finished */
                aw_log(ctx, AW_LOG_INFO,
                       "%s: %zu scene(s) mosaicked; %zu alert(s), %zu "
                       "notice(s)",
                       w.date, w.n_used, w.n_alerts,
                       json_array_size(w.notices));
        }
        {
            int written = dst == AW_OK && w.n_used > 0;
            aw_status cst =
                root ? record_date(ctx, &rs, &w, fp, written) : AW_OK;
            cst = aw_par_agree(ctx, cst);
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
    /* The report, when the run did something and there are zones (a
     * run that did nothing leaves it as it was). */
    if (root && rep_latest[0] && rs.zones.n && rs.catalog) {
        aw_ctx_set_scope(ctx, NULL, NULL, "report");
        aw_run_report_in rin = {rep_dates, rep_alerts, rep_notices,
                                rep_forecasts, rep_latest};
        if (aw_run_report(ctx, &rs, &rin) != AW_OK)
            aw_log(ctx, AW_LOG_WARN, "no report: %s", aw_ctx_errmsg(ctx));
    }

    /* Run summary: what happened to every scene, for the operator. */
    if (root) {
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
    aw_bl_close(rs.bl);
    release_grid(&rs);
early:
    json_decref(summary);
    json_decref(rep_dates);
    json_decref(rep_alerts);
    json_decref(rep_notices);
    json_decref(rep_forecasts);
    free(idx);
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

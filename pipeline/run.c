/* `aralwatch run`: the pipeline for every scene of the config.
 *
 *   plan -> grid + AOI -> zones -> per scene: ingest (warp every band onto
 *   the grid, scale/offset to reflectance) -> mask (nodata, QA, AOI) ->
 *   indices -> water classification -> zone statistics -> alerts -> write
 *
 * Outputs of one scene and date are written into a staging folder
 * OUT/<region>/.<date>.partial-<pid>/ and the folder is renamed to
 * OUT/<region>/<date>/ only when every file is complete, so a reader never
 * sees a half-written product set. One failing scene is logged and recorded;
 * the others still run. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <omp.h>
#include <proj.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "alerts.h"
#include "internal.h"

enum {
    ST_INGEST = 0,
    ST_MASK,
    ST_INDICES,
    ST_CLASSIFY,
    ST_ZONES,
    ST_ALERTS,
    ST_WRITE,
    ST_COUNT
};
static const char *const stage_names[ST_COUNT] = {
    "ingest", "mask", "indices", "classify", "zones", "alerts", "write"};

typedef struct scene_work {
    const aw_scene_cfg *sc;
    float *refl[AW_BAND_COUNT];
    double *qa;
    uint8_t *code;  /* valid.tif codes */
    uint8_t *valid; /* 0 / 255 for the kernels */
    float *index[AW_IDX_COUNT];
    uint8_t *water;
    aw_zone_stats *stats;
    double t[ST_COUNT];
    float water_threshold;
    int otsu_fallback;
    int64_t n_ok, n_nodata, n_masked, n_outside;
    json_t *alerts, *notices;
    size_t n_alerts;
} scene_work;

typedef struct run_state {
    const aw_config *cfg;
    const aw_run_opts *opts;
    aw_grid grid;
    uint8_t *aoi;
    aw_zones zones;
    char *region_dir;
    int threads;
    size_t scene_i;
} run_state;

static void work_free(scene_work *w)
{
    for (int b = 0; b < AW_BAND_COUNT; b++)
        free(w->refl[b]);
    for (int i = 0; i < AW_IDX_COUNT; i++)
        free(w->index[i]);
    free(w->qa);
    free(w->code);
    free(w->valid);
    free(w->water);
    free(w->stats);
    json_decref(w->alerts);
    json_decref(w->notices);
    memset(w, 0, sizeof *w);
}

static void progress(const run_state *rs, int stage, const char *what)
{
    if (!rs->opts->progress_bar)
        return;
    double n = (double)rs->cfg->n_scenes;
    double f = ((double)rs->scene_i + (double)stage / ST_COUNT) / n;
    GDALTermProgress(f, what, NULL);
}

/* Bands needed: the selected indices plus the water index. */
static unsigned needed_bands(const aw_config *cfg)
{
    return aw_config_needed_bands(cfg);
}

static aw_status stage_ingest(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    const aw_scene_cfg *sc = w->sc;
    unsigned need = needed_bands(rs->cfg);
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (!(need & (1u << b)))
            continue;
        if (!sc->bands[b].present)
            return aw_fail(ctx, AW_ERR_CONFIG,
                           "scene %s: band '%s' is needed but not mapped",
                           sc->id, aw_band_name((aw_band)b));
        aw_status st = aw_warp_band_f32(ctx, &sc->bands[b], &rs->grid,
                                        rs->cfg->resample_reflectance,
                                        rs->threads, &w->refl[b]);
        if (st != AW_OK)
            return st;
    }
    if (sc->qa.present)
        return aw_warp_band_f64(ctx, &sc->qa, &rs->grid, rs->cfg->resample_qa,
                                rs->threads, &w->qa);
    return AW_OK;
}

static int qa_masked(const aw_scene_cfg *sc, double q)
{
    uint64_t v = (uint64_t)q;
    if (sc->qa_mask_bits & v)
        return 1;
    for (size_t i = 0; i < sc->n_qa_mask_values; i++)
        if (sc->qa_mask_values[i] == q)
            return 1;
    return 0;
}

static aw_status stage_mask(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    size_t n = (size_t)rs->grid.width * (size_t)rs->grid.height;
    w->code = aw_calloc2(n, 1);
    w->valid = aw_calloc2(n, 1);
    if (!w->code || !w->valid)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%zu pixels)", n);
    const float *refl[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        refl[b] = w->refl[b];
    const double *qa = w->qa;
    const uint8_t *aoi = rs->aoi;
    const aw_scene_cfg *sc = w->sc;
    int64_t n_ok = 0, n_nd = 0, n_mk = 0, n_out = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_ok, n_nd, n_mk, n_out)
    for (size_t i = 0; i < n; i++) {
        uint8_t c = AW_VALID_OK;
        if (!aoi[i]) {
            c = AW_VALID_OUTSIDE;
        }
        else {
            for (int b = 0; b < AW_BAND_COUNT; b++)
                if (refl[b] && !isfinite(refl[b][i]))
                    c = AW_VALID_NODATA;
            if (c == AW_VALID_OK && qa) {
                if (isnan(qa[i]))
                    c = AW_VALID_NODATA;
                else if (qa_masked(sc, qa[i]))
                    c = AW_VALID_MASKED;
            }
        }
        w->code[i] = c;
        w->valid[i] = c == AW_VALID_OK ? 255 : 0;
        n_ok += c == AW_VALID_OK;
        n_nd += c == AW_VALID_NODATA;
        n_mk += c == AW_VALID_MASKED;
        n_out += c == AW_VALID_OUTSIDE;
    }
    w->n_ok = n_ok;
    w->n_nodata = n_nd;
    w->n_masked = n_mk;
    w->n_outside = n_out;
    if (n_ok + n_mk == 0)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "scene %s (%s): no pixel of the scene falls inside the "
                       "region%s (every pixel is nodata or outside)",
                       sc->id,
                       sc->bands[AW_BAND_GREEN].present
                           ? sc->bands[AW_BAND_GREEN].path
                           : "",
                       rs->cfg->aoi_path ? " AOI" : "");
    if (n_ok == 0)
        aw_log(ctx, AW_LOG_WARN,
               "scene %s: every pixel in the region is masked by the quality "
               "band",
               sc->id);
    return AW_OK;
}

static aw_status stage_indices(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    size_t rows = (size_t)rs->grid.height, cols = (size_t)rs->grid.width;
    const float *bands[AW_BAND_COUNT];
    for (int b = 0; b < AW_BAND_COUNT; b++)
        bands[b] = w->refl[b];
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        if (!rs->cfg->indices[i] && i != (int)rs->cfg->water_index)
            continue;
        w->index[i] = aw_calloc2(rows * cols, sizeof(float));
        if (!w->index[i])
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        aw_index_image((aw_index)i, bands, w->valid, w->index[i], rows, cols,
                       &rs->cfg->index_params);
    }
    return AW_OK;
}

static aw_status stage_classify(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    const aw_config *cfg = rs->cfg;
    size_t n = (size_t)rs->grid.width * (size_t)rs->grid.height;
    const float *idx = w->index[cfg->water_index];
    w->water = aw_calloc2(n, 1);
    if (!w->water)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
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
                   "scene %s: Otsu found no two-class split of %s (a class "
                   "under %.1f %% of valid pixels); using the fixed "
                   "threshold %g",
                   w->sc->id, info->name, 100.0 * cfg->otsu_min_class_fraction,
                   cfg->water_threshold);
        }
        free(hist);
    }
    w->water_threshold = thr;
    aw_classify_threshold(idx, w->valid, w->water, n, thr);
    return AW_OK;
}

static aw_status stage_zones(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    if (rs->zones.n == 0)
        return AW_OK;
    w->stats = aw_calloc2(rs->zones.n, sizeof *w->stats);
    if (!w->stats)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const float *idx[AW_IDX_COUNT];
    for (int i = 0; i < AW_IDX_COUNT; i++)
        idx[i] = rs->cfg->indices[i] ? w->index[i] : NULL;
    return aw_zones_stats(ctx, &rs->zones, &rs->grid, idx, w->water, w->valid,
                          w->stats);
}

static aw_status stage_alerts(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    w->alerts = json_array();
    w->notices = json_array();
    if (!w->alerts || !w->notices)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (rs->zones.n == 0)
        return AW_OK;
    aw_alert_input in = {w->sc->date, w->sc->id};
    return aw_alerts_eval(ctx, rs->cfg, &rs->zones, w->stats, &in, w->alerts,
                          w->notices, &w->n_alerts);
}

/* ---- Writing ---- */

static char **provenance(const run_state *rs, const scene_work *w)
{
    char **md = NULL;
    md = CSLSetNameValue(md, "AW_SOFTWARE", "aralwatch " AW_VERSION);
    md = CSLSetNameValue(md, "AW_GIT_SHA", AW_GIT_SHA);
    md = CSLSetNameValue(md, "AW_REGION", rs->cfg->region_name);
    md = CSLSetNameValue(md, "AW_SCENE_ID", w->sc->id);
    md = CSLSetNameValue(md, "AW_DATE", w->sc->date);
    md = CSLSetNameValue(md, "AW_CONFIG_SHA256", rs->cfg->sha256);
    return md;
}

static void json_num(json_t *o, const char *k, double v)
{
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.9g", v);
    else
        fputs(",", f);
}

static void csv_text(FILE *f, const char *s)
{
    fputc(',', f);
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static aw_status write_text(aw_ctx *ctx, const char *dir, const char *name,
                            const char *text)
{
    char *path = aw_path_join(dir, name);
    if (!path)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = aw_write_file_atomic(ctx, path, text, strlen(text));
    free(path);
    return st;
}

static aw_status write_json(aw_ctx *ctx, const char *dir, const char *name,
                            json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!text)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    size_t n = strlen(text);
    char *withnl = malloc(n + 2);
    if (!withnl) {
        free(text);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    free(text);
    aw_status st = write_text(ctx, dir, name, withnl);
    free(withnl);
    return st;
}

static aw_status write_zones(aw_ctx *ctx, run_state *rs, scene_work *w,
                             const char *dir)
{
    const aw_config *cfg = rs->cfg;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    fputs("date,scene_id,zone_id,zone_name,kind,zone_area_km2,n_pixels,"
          "n_valid,valid_fraction,n_water,water_area_km2,water_fraction",
          f);
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        if (!cfg->indices[i])
            continue;
        const char *nm = aw_index_get((aw_index)i)->name;
        fprintf(f, ",%s_mean,%s_min,%s_max,%s_p10,%s_p50,%s_p90", nm, nm, nm,
                nm, nm, nm);
    }
    fputs(",crop_mean_ndvi\n", f);

    json_t *root = json_object();
    json_object_set_new(root, "region", json_string(cfg->region_name));
    json_object_set_new(root, "date", json_string(w->sc->date));
    json_object_set_new(root, "scene_id", json_string(w->sc->id));
    json_object_set_new(root, "water_index",
                        json_string(aw_index_get(cfg->water_index)->name));
    json_object_set_new(root, "water_threshold",
                        json_real((double)w->water_threshold));
    json_t *arr = json_array();
    for (size_t zi = 0; zi < rs->zones.n; zi++) {
        const aw_zone *z = &rs->zones.z[zi];
        const aw_zone_stats *s = &w->stats[zi];
        fputs(w->sc->date, f);
        csv_text(f, w->sc->id);
        csv_text(f, z->id);
        csv_text(f, z->name);
        csv_text(f, aw_zone_kind_name(z->kind));
        csv_num(f, z->area_km2);
        fprintf(f, ",%lld,%lld", (long long)s->n_pixels, (long long)s->n_valid);
        csv_num(f, s->valid_fraction);
        fprintf(f, ",%lld", (long long)s->n_water);
        csv_num(f, s->water_area_km2);
        csv_num(f, s->water_fraction);

        json_t *o = json_object();
        json_object_set_new(o, "zone_id", json_string(z->id));
        json_object_set_new(o, "zone_name", json_string(z->name));
        json_object_set_new(o, "kind", json_string(aw_zone_kind_name(z->kind)));
        json_num(o, "zone_area_km2", z->area_km2);
        json_object_set_new(o, "n_pixels", json_integer(s->n_pixels));
        json_object_set_new(o, "n_valid", json_integer(s->n_valid));
        json_num(o, "valid_fraction", s->valid_fraction);
        json_object_set_new(o, "n_water", json_integer(s->n_water));
        json_num(o, "water_area_km2", s->water_area_km2);
        json_num(o, "water_fraction", s->water_fraction);
        json_t *ix = json_object();
        for (int i = 0; i < AW_IDX_COUNT; i++) {
            if (!cfg->indices[i])
                continue;
            csv_num(f, s->mean[i]);
            csv_num(f, s->min[i]);
            csv_num(f, s->max[i]);
            csv_num(f, s->p10[i]);
            csv_num(f, s->p50[i]);
            csv_num(f, s->p90[i]);
            json_t *io = json_object();
            json_num(io, "mean", s->mean[i]);
            json_num(io, "min", s->min[i]);
            json_num(io, "max", s->max[i]);
            json_num(io, "p10", s->p10[i]);
            json_num(io, "p50", s->p50[i]);
            json_num(io, "p90", s->p90[i]);
            json_object_set_new(ix, aw_index_get((aw_index)i)->name, io);
        }
        json_object_set_new(o, "indices", ix);
        double crop = z->kind == AW_ZONE_CROPLAND && cfg->indices[AW_IDX_NDVI]
                          ? s->mean[AW_IDX_NDVI]
                          : (double)NAN;
        csv_num(f, crop);
        fputc('\n', f);
        json_num(o, "crop_mean_ndvi", crop);
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "zones", arr);
    fclose(f);
    aw_status st = write_text(ctx, dir, "zones.csv", buf);
    free(buf);
    if (st == AW_OK)
        st = write_json(ctx, dir, "zones.json", root);
    json_decref(root);
    return st;
}

static aw_status write_alerts(aw_ctx *ctx, run_state *rs, scene_work *w,
                              const char *dir)
{
    json_t *root = json_object();
    json_object_set_new(root, "region", json_string(rs->cfg->region_name));
    json_object_set_new(root, "date", json_string(w->sc->date));
    json_object_set_new(root, "scene_id", json_string(w->sc->id));
    json_object_set(root, "alerts", w->alerts);
    json_object_set(root, "notices", w->notices);
    aw_status st = write_json(ctx, dir, "alerts.json", root);
    json_decref(root);
    return st;
}

static const aw_class_def water_classes[] = {
    {AW_WATER_NO, "not water", 230, 220, 190, 255},
    {AW_WATER_YES, "water", 30, 90, 200, 255},
    {AW_CLASS_NODATA, "nodata", 0, 0, 0, 0},
};
static const aw_class_def valid_classes[] = {
    {AW_VALID_OUTSIDE, "outside region", 0, 0, 0, 0},
    {AW_VALID_OK, "valid", 40, 160, 60, 255},
    {AW_VALID_NODATA, "input nodata", 120, 120, 120, 255},
    {AW_VALID_MASKED, "masked by quality band", 250, 250, 250, 255},
};

/* "0:not water;1:water;255:nodata": the classes inside the TIFF itself
 * (GDAL_METADATA tag); GDAL keeps the category names in a .aux.xml side-car,
 * which QGIS reads too. */
static char **class_metadata(char **md, const aw_class_def *c, size_t n)
{
    char buf[512];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%d:%s",
                                 i ? ";" : "", c[i].value, c[i].name);
    return CSLSetNameValue(md, "AW_CLASSES", buf);
}

/* List a GDAL side-car (.aux.xml) among the outputs when one was written. */
static void add_sidecar(json_t *outs, const char *dir, const char *name)
{
    char *p = aw_asprintf("%s/%s.aux.xml", dir, name);
    struct stat sb;
    if (p && stat(p, &sb) == 0) {
        char *n = aw_asprintf("%s.aux.xml", name);
        if (n)
            json_array_append_new(outs, json_string(n));
        free(n);
    }
    free(p);
}

static aw_status write_rasters(aw_ctx *ctx, run_state *rs, scene_work *w,
                               const char *dir, json_t *outs)
{
    const aw_config *cfg = rs->cfg;
    aw_write_opts wo = {cfg->cog, cfg->compress, cfg->blocksize, rs->threads};
    aw_status st = AW_OK;
    for (int i = 0; i < AW_IDX_COUNT && st == AW_OK; i++) {
        if (!cfg->indices[i])
            continue;
        const aw_index_info *info = aw_index_get((aw_index)i);
        char name[64], desc[512];
        snprintf(name, sizeof name, "%s.tif", info->name);
        char upper[32];
        size_t k = 0;
        for (; info->name[k] && k < sizeof upper - 1; k++)
            upper[k] = (char)(info->name[k] >= 'a' && info->name[k] <= 'z'
                                  ? info->name[k] - 32
                                  : info->name[k]);
        upper[k] = '\0';
        snprintf(desc, sizeof desc, "%s = %s (%s)", upper, info->formula,
                 info->long_name);
        char *path = aw_path_join(dir, name);
        char **md = provenance(rs, w);
        md = CSLSetNameValue(md, "AW_INDEX", info->name);
        md = CSLSetNameValue(md, "AW_FORMULA", info->formula);
        st = path ? aw_write_f32(ctx, path, &rs->grid, w->index[i], desc, md,
                                 &wo)
                  : AW_ERR_NOMEM;
        CSLDestroy(md);
        free(path);
        json_array_append_new(outs, json_string(name));
    }
    if (st == AW_OK) {
        char *path = aw_path_join(dir, "water.tif");
        char desc[256], thr[64];
        snprintf(desc, sizeof desc, "water class: %s > %g (%s)",
                 aw_index_get(cfg->water_index)->name,
                 (double)w->water_threshold,
                 cfg->water_method == AW_WATER_OTSU
                     ? (w->otsu_fallback ? "Otsu failed, fixed threshold"
                                         : "Otsu threshold")
                     : "fixed threshold");
        snprintf(thr, sizeof thr, "%.9g", (double)w->water_threshold);
        char **md = provenance(rs, w);
        md = CSLSetNameValue(md, "AW_WATER_INDEX",
                             aw_index_get(cfg->water_index)->name);
        md = CSLSetNameValue(md, "AW_WATER_THRESHOLD", thr);
        md = CSLSetNameValue(md, "AW_WATER_METHOD",
                             cfg->water_method == AW_WATER_OTSU ? "otsu"
                                                                : "threshold");
        md = class_metadata(md, water_classes, 3);
        st = aw_write_classes(ctx, path, &rs->grid, w->water, desc, md,
                              water_classes, 3, 1, AW_CLASS_NODATA, &wo);
        CSLDestroy(md);
        free(path);
        json_array_append_new(outs, json_string("water.tif"));
        add_sidecar(outs, dir, "water.tif");
    }
    if (st == AW_OK) {
        char *path = aw_path_join(dir, "valid.tif");
        char **md = class_metadata(provenance(rs, w), valid_classes, 4);
        st = aw_write_classes(
            ctx, path, &rs->grid, w->code,
            "validity: 0 outside region, 1 valid, 2 input nodata, 3 masked by "
            "quality band",
            md, valid_classes, 4, 0, 0, &wo);
        CSLDestroy(md);
        free(path);
        json_array_append_new(outs, json_string("valid.tif"));
        add_sidecar(outs, dir, "valid.tif");
    }
    return st;
}

static json_t *manifest(run_state *rs, scene_work *w, json_t *inputs,
                        json_t *outs)
{
    const aw_config *cfg = rs->cfg;
    json_t *m = json_object();
    char now[21];
    aw_utc_now(now);
    json_t *sw = json_object();
    json_object_set_new(sw, "name", json_string("aralwatch"));
    json_object_set_new(sw, "version", json_string(AW_VERSION));
    json_object_set_new(sw, "git_sha", json_string(AW_GIT_SHA));
    json_object_set_new(sw, "gdal",
                        json_string(GDALVersionInfo("RELEASE_NAME")));
    json_object_set_new(sw, "proj", json_string(proj_info().version));
    json_object_set_new(m, "software", sw);
    json_object_set_new(m, "created", json_string(now));
    json_t *c = json_object();
    json_object_set_new(c, "path", json_string(cfg->path));
    json_object_set_new(c, "sha256", json_string(cfg->sha256));
    json_object_set_new(m, "config", c);
    json_t *g = json_object();
    json_object_set_new(g, "name", json_string(cfg->region_name));
    json_object_set_new(g, "crs_wkt", json_string(rs->grid.wkt));
    json_t *gt = json_array();
    for (int i = 0; i < 6; i++)
        json_array_append_new(gt, json_real(rs->grid.gt[i]));
    json_object_set_new(g, "geotransform", gt);
    json_object_set_new(g, "width", json_integer(rs->grid.width));
    json_object_set_new(g, "height", json_integer(rs->grid.height));
    json_object_set_new(m, "region", g);
    json_t *s = json_object();
    json_object_set_new(s, "id", json_string(w->sc->id));
    json_object_set_new(s, "date", json_string(w->sc->date));
    json_object_set_new(s, "inputs", inputs);
    json_object_set_new(m, "scene", s);
    json_t *px = json_object();
    json_object_set_new(px, "valid", json_integer(w->n_ok));
    json_object_set_new(px, "nodata", json_integer(w->n_nodata));
    json_object_set_new(px, "masked", json_integer(w->n_masked));
    json_object_set_new(px, "outside", json_integer(w->n_outside));
    json_object_set_new(m, "pixels", px);
    json_t *wa = json_object();
    json_object_set_new(wa, "index",
                        json_string(aw_index_get(cfg->water_index)->name));
    json_object_set_new(
        wa, "method",
        json_string(cfg->water_method == AW_WATER_OTSU ? "otsu" : "threshold"));
    json_object_set_new(wa, "threshold", json_real((double)w->water_threshold));
    json_object_set_new(wa, "otsu_fallback", json_boolean(w->otsu_fallback));
    json_object_set_new(m, "water", wa);
    json_object_set_new(m, "threads", json_integer(rs->threads));
    json_t *t = json_object();
    double total = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        json_object_set_new(t, stage_names[i], json_real(w->t[i]));
        total += w->t[i];
    }
    json_object_set_new(t, "total", json_real(total));
    json_object_set_new(m, "timings_s", t);
    json_object_set_new(m, "outputs", outs);
    return m;
}

static json_t *input_list(aw_ctx *ctx, const aw_scene_cfg *sc, aw_status *st)
{
    json_t *arr = json_array();
    for (int b = 0; b <= AW_BAND_COUNT && *st == AW_OK; b++) {
        const aw_band_src *src = b < AW_BAND_COUNT ? &sc->bands[b] : &sc->qa;
        if (!src->present)
            continue;
        char hex[65];
        *st = aw_sha256_file(ctx, src->path, hex);
        if (*st != AW_OK)
            break;
        struct stat sb;
        json_t *o = json_object();
        json_object_set_new(
            o, "role",
            json_string(b < AW_BAND_COUNT ? aw_band_name((aw_band)b) : "qa"));
        json_object_set_new(o, "path", json_string(src->path));
        json_object_set_new(o, "band", json_integer(src->band));
        json_object_set_new(o, "sha256", json_string(hex));
        json_object_set_new(o, "bytes",
                            json_integer(stat(src->path, &sb) == 0
                                             ? (json_int_t)sb.st_size
                                             : -1));
        json_object_set_new(o, "scale", json_real(src->scale));
        json_object_set_new(o, "offset", json_real(src->offset));
        if (src->has_nodata)
            json_object_set_new(o, "nodata", json_real(src->nodata));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Remove the plain files in dir, then dir. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = aw_path_join(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static aw_status stage_write(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    aw_status st = AW_OK;
    char *final = aw_asprintf("%s/%s", rs->region_dir, w->sc->date);
    char *stage = aw_asprintf("%s/.%s.partial-%ld", rs->region_dir, w->sc->date,
                              (long)getpid());
    char *old = aw_asprintf("%s/.%s.old-%ld", rs->region_dir, w->sc->date,
                            (long)getpid());
    json_t *outs = json_array();
    json_t *inputs = NULL;
    if (!final || !stage || !old || !outs) {
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat sb;
    if (!rs->cfg->overwrite && stat(final, &sb) == 0) {
        st = aw_fail(ctx, AW_ERR_IO, "%s exists and outputs.overwrite is false",
                     final);
        goto done;
    }
    st = aw_mkdirs(ctx, rs->region_dir);
    if (st != AW_OK)
        goto done;
    remove_tree(stage); /* a leftover from a killed run with our pid */
    if (mkdir(stage, 0777) != 0) {
        st = aw_fail(ctx, AW_ERR_IO, "cannot create %s: %s", stage,
                     strerror(errno));
        goto done;
    }
    st = write_rasters(ctx, rs, w, stage, outs);
    if (st == AW_OK) {
        st = write_zones(ctx, rs, w, stage);
        json_array_append_new(outs, json_string("zones.csv"));
        json_array_append_new(outs, json_string("zones.json"));
    }
    if (st == AW_OK) {
        st = write_alerts(ctx, rs, w, stage);
        json_array_append_new(outs, json_string("alerts.json"));
    }
    if (st == AW_OK)
        inputs = input_list(ctx, w->sc, &st);
    if (st == AW_OK) {
        /* Checksums of every output, for the manifest. */
        json_t *listed = json_array();
        size_t k;
        json_t *v;
        json_array_foreach(outs, k, v)
        {
            char *p = aw_path_join(stage, json_string_value(v));
            char hex[65] = "";
            struct stat ob;
            json_t *o = json_object();
            json_object_set_new(o, "file", json_string(json_string_value(v)));
            if (p && aw_sha256_file(ctx, p, hex) == AW_OK &&
                stat(p, &ob) == 0) {
                json_object_set_new(o, "sha256", json_string(hex));
                json_object_set_new(o, "bytes", json_integer(ob.st_size));
            }
            free(p);
            json_array_append_new(listed, o);
        }
        json_t *m = manifest(rs, w, inputs, listed);
        inputs = NULL;
        st = write_json(ctx, stage, "manifest.json", m);
        json_decref(m);
    }
    if (st != AW_OK)
        goto done;
    /* Swap the complete folder in. */
    int had_old = 0;
    if (stat(final, &sb) == 0) {
        remove_tree(old);
        if (rename(final, old) != 0) {
            st = aw_fail(ctx, AW_ERR_IO, "cannot move %s aside: %s", final,
                         strerror(errno));
            goto done;
        }
        had_old = 1;
    }
    if (rename(stage, final) != 0) {
        st = aw_fail(ctx, AW_ERR_IO, "cannot rename %s to %s: %s", stage, final,
                     strerror(errno));
        if (had_old)
            rename(old, final);
        goto done;
    }
    if (had_old)
        remove_tree(old);
    aw_log(ctx, AW_LOG_INFO, "scene %s: wrote %s", w->sc->id, final);
done:
    if (st != AW_OK && stage)
        remove_tree(stage);
    json_decref(outs);
    json_decref(inputs);
    free(final);
    free(stage);
    free(old);
    return st;
}

typedef aw_status (*stage_fn)(aw_ctx *, run_state *, scene_work *);
static const stage_fn stages[ST_COUNT] = {
    stage_ingest, stage_mask,   stage_indices, stage_classify,
    stage_zones,  stage_alerts, stage_write};

static aw_status run_scene(aw_ctx *ctx, run_state *rs, scene_work *w)
{
    for (int s = 0; s < ST_COUNT; s++) {
        char what[160];
        snprintf(what, sizeof what, "%s: %s", w->sc->id, stage_names[s]);
        progress(rs, s, what);
        double t0 = aw_now();
        aw_status st = stages[s](ctx, rs, w);
        w->t[s] = aw_now() - t0;
        if (st != AW_OK)
            return st;
        aw_log(ctx, AW_LOG_DEBUG, "scene %s: %s took %.3f s", w->sc->id,
               stage_names[s], w->t[s]);
    }
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
    CPLSetConfigOption("GDAL_NUM_THREADS", NULL);

    const char *out = opts->out_dir ? opts->out_dir : cfg->out_dir;
    rs.region_dir = aw_path_join(out, cfg->region_name);
    if (!rs.region_dir)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = AW_OK;

    double t0 = aw_now();
    st = aw_grid_build(ctx, cfg, &rs.grid, &rs.aoi);
    if (st != AW_OK)
        goto done;
    aw_log(ctx, AW_LOG_INFO,
           "region %s: grid %d x %d pixels of %g, origin (%.3f, %.3f)",
           cfg->region_name, rs.grid.width, rs.grid.height, rs.grid.gt[1],
           rs.grid.gt[0], rs.grid.gt[3]);
    st = aw_zones_load(ctx, cfg, &rs.grid, &rs.zones);
    if (st != AW_OK)
        goto done;
    if (cfg->zones_path)
        aw_log(ctx, AW_LOG_INFO, "zones: %zu from %s", rs.zones.n,
               cfg->zones_path);
    aw_log(ctx, AW_LOG_DEBUG, "plan took %.3f s", aw_now() - t0);

    result->n_scenes = cfg->n_scenes;
    for (size_t i = 0; i < cfg->n_scenes; i++) {
        rs.scene_i = i;
        scene_work w;
        memset(&w, 0, sizeof w);
        w.sc = &cfg->scenes[i];
        aw_log(ctx, AW_LOG_INFO, "scene %s (%s): start", w.sc->id, w.sc->date);
        aw_ctx_clear_error(ctx);
        aw_status sst = run_scene(ctx, &rs, &w);
        if (sst == AW_OK) {
            result->n_ok++;
            result->n_alerts += w.n_alerts;
            result->n_notices += json_array_size(w.notices);
            double total = 0;
            for (int s = 0; s < ST_COUNT; s++)
                total += w.t[s];
            aw_log(ctx, AW_LOG_INFO,
                   "scene %s: done in %.2f s; %zu alert(s), %zu notice(s)",
                   w.sc->id, total, w.n_alerts, json_array_size(w.notices));
        }
        else {
            if (result->n_failed == 0)
                result->first_failure = sst;
            result->n_failed++;
            aw_log(ctx, AW_LOG_ERROR, "scene %s failed (%s): %s", w.sc->id,
                   aw_status_str(sst), aw_ctx_errmsg(ctx));
            if (sst == AW_ERR_CANCELLED) {
                work_free(&w);
                st = sst;
                goto done;
            }
        }
        work_free(&w);
    }
    if (opts->progress_bar)
        GDALTermProgress(1.0, "done", NULL);
done:
    aw_zones_free(&rs.zones);
    aw_grid_free(&rs.grid);
    free(rs.aoi);
    free(rs.region_dir);
    return st;
}

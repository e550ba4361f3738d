/* Multi-year baselines (`aralwatch baseline`) and the change of a date
 * against them (used by the run). See baseline.h for the file layout and
 * README "Baseline" for the definitions.
 *
 * Building is incremental. The unit is one year's summary of one period
 * of the year (per pixel: clear observations, wet observations, mean NDVI
 * of the clear observations). It is made again only when the set of that
 * year-period's dates or their fingerprints changed (catalog table
 * baseline_years). A period's baseline is then reduced from its yearly
 * summaries: WOfS frequency = sum(wet) / sum(clear) over every observation,
 * NDVI min/max/median/mean/std over the yearly means with the number of
 * years (fewer than baseline.min_years: nodata), so adding a year reads
 * that year's scenes' products once and every yearly summary once.
 *
 * Zone baselines use the gap-filled water area of each observation: water
 * seen plus, for the zone's pixels not seen (cloud, nodata), the
 * period's water frequency times the pixel area: the expected water under
 * the cloud (the occurrence-based filling of Zhao and Gao 2018, "Towards
 * global reservoir surface area time series", with our own frequency). A
 * date's observation counts when its valid fraction is at least
 * baseline.min_valid_fraction. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <omp.h>
#include <sqlite3.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include "aralwatch/catalog.h"
#include "par.h"
#include "aralwatch/kernels.h"
#include "aralwatch/quality.h"
#include "aralwatch/timeseries.h"
#include "aralwatch/util.h"
#include "aralwatch/version.h"
#include "baseline.h"
#include "internal.h"
#include "lock.h"
#include "runwork.h"

/* ---- Periods ---------------------------------------------------------- */

int aw_period_count(aw_period p)
{
    return p == AW_PERIOD_DEKAD ? 36 : 12;
}

int aw_period_of(aw_period p, const char *date)
{
    int m = (date[5] - '0') * 10 + (date[6] - '0');
    int d = (date[8] - '0') * 10 + (date[9] - '0');
    if (p == AW_PERIOD_MONTH)
        return m - 1;
    return (m - 1) * 3 + (d <= 10 ? 0 : d <= 20 ? 1 : 2);
}

void aw_period_name(aw_period p, int k, char out[AW_PERIOD_NAME_MAX])
{
    unsigned v = (unsigned)(k + 1) % 100u;
    out[0] = p == AW_PERIOD_DEKAD ? 'd' : 'm';
    out[1] = (char)('0' + v / 10u);
    out[2] = (char)('0' + v % 10u);
    out[3] = '\0';
}

/* ---- Reading rasters of the region grid -------------------------------- */

/* Open path and check it lies on grid (same size and geotransform). */
static aw_status open_on_grid(aw_ctx *ctx, const char *path,
                              const aw_grid *grid, GDALDatasetH *out)
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, path, &ds);
    if (st != AW_OK)
        return st;
    double gt[6];
    int same = GDALGetRasterXSize(ds) == grid->width &&
               GDALGetRasterYSize(ds) == grid->height &&
               GDALGetGeoTransform(ds, gt) == CE_None;
    for (int k = 0; same && k < 6; k++)
        same = fabs(gt[k] - grid->gt[k]) <=
               1e-6 * (fabs(grid->gt[1]) + fabs(grid->gt[5]));
    if (!same) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: not on the region grid (%d x %d); a baseline "
                       "needs one fixed grid (region.grid: fixed) for every "
                       "date, so rebuild it after changing the region",
                       path, grid->width, grid->height);
    }
    *out = ds;
    return AW_OK;
}

/* Rows row0..row0+nrows of band 1 as float: nodata -> NaN, scale/offset
 * applied (int16 products). */
static aw_status read_rows(aw_ctx *ctx, GDALDatasetH ds, const char *path,
                           int row0, int nrows, float *out)
{
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    int width = GDALGetRasterXSize(ds);
    if (GDALRasterIO(b, GF_Read, 0, row0, width, nrows, out, width, nrows,
                     GDT_Float32, 0, 0) != CE_None)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot read rows %d-%d: %s",
                       path, row0, row0 + nrows, aw_gdal_last_error());
    int has_nd = 0, has_sc = 0, has_of = 0;
    double nd = GDALGetRasterNoDataValue(b, &has_nd);
    double sc = GDALGetRasterScale(b, &has_sc);
    double of = GDALGetRasterOffset(b, &has_of);
    if (!has_sc)
        sc = 1.0;
    if (!has_of)
        of = 0.0;
    int scaled = sc != 1.0 || of != 0.0;
    float ndf = (float)nd;
    size_t n = (size_t)width * (size_t)nrows;
    for (size_t i = 0; i < n; i++) {
        float v = out[i];
        if (has_nd && (v == ndf || (isnan(nd) && isnan(v))))
            out[i] = AW_NODATA_F32;
        else if (scaled)
            out[i] = (float)((double)v * sc + of);
    }
    return AW_OK;
}

/* Rows that fit a strip budget of about 32 MiB for `layers` float rows. */
static int strip_rows_for(const aw_grid *grid, size_t layers)
{
    size_t per_row =
        (size_t)grid->width * sizeof(float) * (layers ? layers : 1);
    size_t rows = ((size_t)32 << 20) / (per_row ? per_row : 1);
    if (rows < 1)
        rows = 1;
    if (rows > (size_t)grid->height)
        rows = (size_t)grid->height;
    return (int)rows;
}

/* ---- Writing ------------------------------------------------------------ */

typedef struct fwriter {
    char *final, *tmp;
    aw_rwriter *w;
} fwriter;

static aw_status fw_open(aw_ctx *ctx, const aw_config *cfg, int threads,
                         const aw_grid *grid, const char *dir, const char *name,
                         const char *desc, char **md, fwriter *fw)
{
    memset(fw, 0, sizeof *fw);
    fw->final = aw_path_join(dir, name);
    fw->tmp = fw->final ? aw_tmp_name(fw->final) : NULL;
    if (!fw->tmp) {
        free(fw->final);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    aw_write_opts wo = {.cog = cfg->cog,
                        .compress = cfg->compress,
                        .level = cfg->level,
                        .blocksize = cfg->blocksize,
                        .threads = threads};
    aw_status st = aw_rwriter_open(ctx, fw->tmp, grid, GDT_Float32, 1.0, desc,
                                   md, NULL, 0, 1, (double)NAN, &wo, &fw->w);
    if (st != AW_OK) {
        free(fw->final);
        free(fw->tmp);
        memset(fw, 0, sizeof *fw);
    }
    return st;
}

static void fw_abort(fwriter *fw)
{
    if (fw->w)
        aw_rwriter_abort(fw->w);
    if (fw->tmp)
        unlink(fw->tmp);
    free(fw->final);
    free(fw->tmp);
    memset(fw, 0, sizeof *fw);
}

static aw_status fw_close(aw_ctx *ctx, fwriter *fw)
{
    aw_status st = aw_rwriter_close(ctx, fw->w);
    fw->w = NULL;
    if (st == AW_OK)
        st = aw_commit_file(ctx, fw->tmp, fw->final);
    if (st != AW_OK)
        unlink(fw->tmp);
    free(fw->final);
    free(fw->tmp);
    memset(fw, 0, sizeof *fw);
    return st;
}

/* ---- Catalog helpers ----------------------------------------------------- */

static aw_status sql_fail(aw_ctx *ctx, sqlite3 *db, const char *what)
{
    return aw_fail(ctx, AW_ERR_IO, "catalog: %s: %s", what, sqlite3_errmsg(db));
}

/* One observation date of the baseline range. */
typedef struct obs_date {
    char date[11];
    char fp[65];
    int year, period;
} obs_date;

static aw_status list_dates(aw_ctx *ctx, sqlite3 *db, const char *from,
                            const char *to, aw_period per, obs_date **out,
                            size_t *n_out)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT date, fingerprint FROM dates WHERE status "
                           "= 'done' AND date >= ?1 AND date <= ?2 ORDER BY "
                           "date",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(ctx, db, "list dates");
    sqlite3_bind_text(q, 1, from, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, to, -1, SQLITE_STATIC);
    obs_date *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(q, 0);
        const char *f = (const char *)sqlite3_column_text(q, 1);
        if (!d || strlen(d) != 10)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            obs_date *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(v);
                sqlite3_finalize(q);
                return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            }
            v = nv;
            cap = nc;
        }
        memcpy(v[n].date, d, 11);
        snprintf(v[n].fp, sizeof v[n].fp, "%s", f ? f : "");
        v[n].year = (d[0] - '0') * 1000 + (d[1] - '0') * 100 +
                    (d[2] - '0') * 10 + (d[3] - '0');
        v[n].period = aw_period_of(per, d);
        n++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        free(v);
        return sql_fail(ctx, db, "list dates");
    }
    *out = v;
    *n_out = n;
    return AW_OK;
}

/* A zone metric of a date (NaN when absent). */
static double date_metric(sqlite3 *db, const char *date, const char *zone,
                          const char *metric)
{
    sqlite3_stmt *q = NULL;
    double v = NAN;
    if (sqlite3_prepare_v2(db,
                           "SELECT value FROM zone_metrics WHERE date = ?1 "
                           "AND zone_id = ?2 AND metric = ?3",
                           -1, &q, NULL) != SQLITE_OK)
        return v;
    sqlite3_bind_text(q, 1, date, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, zone, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, metric, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW &&
        sqlite3_column_type(q, 0) != SQLITE_NULL)
        v = sqlite3_column_double(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* ---- Yearly summaries ------------------------------------------------------
 */

static const char *const year_layers[3] = {"clear", "wet", "ndvi"};

static char *date_file(const char *region_dir, const char *date,
                       const char *name)
{
    char *d = aw_path_join(region_dir, date);
    char *p = d ? aw_path_join(d, name) : NULL;
    free(d);
    return p;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Day of the year (0-based) of month m (1-12), day d. */
static int doy_of(int y, int m, int d)
{
    static const int cum[12] = {0,   31,  59,  90,  120, 151,
                                181, 212, 243, 273, 304, 334};
    return cum[m - 1] + d - 1 + (m > 2 && is_leap(y));
}

/* Centre (day of the year, fractional) of period k in year y. */
static double period_centre(aw_period p, int y, int k)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int m = p == AW_PERIOD_DEKAD ? k / 3 + 1 : k + 1;
    int len = mdays[m - 1] + (m == 2 && is_leap(y));
    double first = doy_of(y, m, 1), last = doy_of(y, m, len);
    if (p == AW_PERIOD_DEKAD) {
        int part = k % 3;
        first = doy_of(y, m, 1 + 10 * part);
        last = part < 2 ? doy_of(y, m, 10 + 10 * part) : last;
    }
    return (first + last) / 2.0;
}

/* NDVI of a year at a period's centre: interpolated linearly in time
 * between the last clear observation before the centre and the first
 * after it (each at most AW_NDVI_WINDOW days away), or the one of them
 * within AW_NDVI_ONE_SIDE days when there is only one. A value at the
 * same point of the season every year, whatever days the satellite
 * passed: a monthly mean of 16-day observations would mix early and late
 * phases of a fast-changing season and turn the phase into a false
 * anomaly. */
#define AW_NDVI_WINDOW   32.0
#define AW_NDVI_ONE_SIDE 16.0

/* Build years/<YYYY>-<PP>/: clear and wet counts from the period's dates
 * d[0..n), NDVI at the period's centre (day number `centre`) from the
 * dates nd[0..m) around it. */
static aw_status build_year(aw_ctx *ctx, const aw_config *cfg, int threads,
                            const aw_grid *grid, const char *region_dir,
                            const char *dir, const obs_date *d, size_t n,
                            const obs_date *const *nd, size_t m, double centre)
{
    size_t width = (size_t)grid->width;
    int rows = strip_rows_for(grid, 8);
    size_t cap = width * (size_t)rows;
    float *acc[3] = {NULL, NULL, NULL};
    float *tb = aw_calloc2(cap, sizeof *tb), *vb = aw_calloc2(cap, sizeof *vb);
    float *ta = aw_calloc2(cap, sizeof *ta), *va = aw_calloc2(cap, sizeof *va);
    float *wbuf = aw_calloc2(cap, sizeof *wbuf);
    float *vbuf = aw_calloc2(cap, sizeof *vbuf);
    GDALDatasetH *wds = aw_calloc2(n, sizeof *wds);
    GDALDatasetH *vds = aw_calloc2(m + 1, sizeof *vds);
    GDALDatasetH *mds = aw_calloc2(m + 1, sizeof *mds); /* water of nd */
    char **wpath = aw_calloc2(n, sizeof *wpath);
    char **vpath = aw_calloc2(m + 1, sizeof *vpath);
    char **mpath = aw_calloc2(m + 1, sizeof *mpath);
    fwriter fw[3];
    memset(fw, 0, sizeof fw);
    aw_status st = AW_OK;
    for (int k = 0; k < 3; k++)
        if (!(acc[k] = aw_calloc2(cap, sizeof *acc[k])))
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (!tb || !vb || !ta || !va || !wbuf || !vbuf || !wds || !vds || !mds ||
        !wpath || !vpath || !mpath)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == AW_OK; i++) {
        wpath[i] = date_file(region_dir, d[i].date, "water.tif");
        st = wpath[i] ? open_on_grid(ctx, wpath[i], grid, &wds[i])
                      : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    int use_ndvi = cfg->indices[AW_IDX_NDVI];
    for (size_t i = 0; use_ndvi && i < m && st == AW_OK; i++) {
        vpath[i] = date_file(region_dir, nd[i]->date, "ndvi.tif");
        mpath[i] = date_file(region_dir, nd[i]->date, "water.tif");
        if (!vpath[i] || !mpath[i]) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            break;
        }
        if (!file_exists(vpath[i]))
            continue;
        st = open_on_grid(ctx, vpath[i], grid, &vds[i]);
        if (st == AW_OK)
            st = open_on_grid(ctx, mpath[i], grid, &mds[i]);
    }
    if (st == AW_OK)
        st = aw_mkdirs(ctx, dir);
    static const char *const desc[3] = {
        "clear (valid) observations of the year in the period",
        "wet (water) observations of the year in the period",
        "NDVI of the year at the period's centre (linear in time between "
        "the clear observations around it)"};
    char **md = NULL;
    md = CSLSetNameValue(md, "AW_SOFTWARE", "aralwatch " AW_VERSION);
    char num[32];
    snprintf(num, sizeof num, "%zu", n);
    md = CSLSetNameValue(md, "AW_N_DATES", num);
    snprintf(num, sizeof num, "%.1f", centre);
    md = CSLSetNameValue(md, "AW_NDVI_CENTRE_DAY", num);
    for (int k = 0; k < 3 && st == AW_OK; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s.tif", year_layers[k]);
        st = fw_open(ctx, cfg, threads, grid, dir, name, desc[k], md, &fw[k]);
    }
    CSLDestroy(md);
    int dswe = cfg->water_method == AW_WATER_DSWE;
    for (int r0 = 0; r0 < grid->height && st == AW_OK; r0 += rows) {
        int nr = r0 + rows > grid->height ? grid->height - r0 : rows;
        size_t np = width * (size_t)nr;
        memset(acc[0], 0, np * sizeof(float));
        memset(acc[1], 0, np * sizeof(float));
        for (size_t i = 0; i < n && st == AW_OK; i++) {
            st = read_rows(ctx, wds[i], wpath[i], r0, nr, wbuf);
            if (st != AW_OK)
                break;
            /* water.tif: 0 dry, 1 wet, nodata (NaN here) not seen. DSWE
             * classes 1-2 are water, 3-4 (wetland, low confidence) are
             * not counted as wet, 9 masked is not clear. */
            for (size_t p = 0; p < np; p++) {
                float wv = wbuf[p];
                int clear = !isnan(wv) && (!dswe || wv < 9.0f);
                int wet = clear && (dswe ? (wv == 1.0f || wv == 2.0f)
                                         : wv == (float)AW_WATER_YES);
                acc[0][p] += (float)clear;
                acc[1][p] += (float)wet;
            }
        }
        for (size_t p = 0; p < np; p++) {
            tb[p] = ta[p] = AW_NODATA_F32;
            vb[p] = va[p] = AW_NODATA_F32;
        }
        /* nd is in date order: the last one before the centre wins, the
         * first one after it stays. */
        for (size_t i = 0; i < m && st == AW_OK; i++) {
            if (!vds[i])
                continue;
            st = read_rows(ctx, vds[i], vpath[i], r0, nr, vbuf);
            if (st == AW_OK)
                st = read_rows(ctx, mds[i], mpath[i], r0, nr, wbuf);
            if (st != AW_OK)
                break;
            float t = (float)((double)aw_days_from_date(nd[i]->date) - centre);
            for (size_t p = 0; p < np; p++) {
                float wv = wbuf[p];
                int clear = !isnan(wv) && (!dswe || wv < 9.0f);
                if (!clear || !isfinite(vbuf[p]))
                    continue;
                if (t <= 0) {
                    tb[p] = t;
                    vb[p] = vbuf[p];
                }
                if (t >= 0 && isnan(ta[p])) {
                    ta[p] = t;
                    va[p] = vbuf[p];
                }
            }
        }
        if (st != AW_OK)
            break;
        for (size_t p = 0; p < np; p++) {
            float v = AW_NODATA_F32;
            int b = isfinite(tb[p]), a = isfinite(ta[p]);
            if (b && a)
                v = ta[p] > tb[p]
                        ? vb[p] + (va[p] - vb[p]) * (-tb[p]) / (ta[p] - tb[p])
                        : vb[p];
            else if (b && -tb[p] <= (float)AW_NDVI_ONE_SIDE)
                v = vb[p];
            else if (a && ta[p] <= (float)AW_NDVI_ONE_SIDE)
                v = va[p];
            acc[2][p] = v;
        }
        for (int k = 0; k < 3 && st == AW_OK; k++)
            st = aw_rwriter_rows(ctx, fw[k].w, r0, nr, acc[k]);
    }
    for (int k = 0; k < 3; k++) {
        if (st == AW_OK)
            st = fw_close(ctx, &fw[k]);
        else
            fw_abort(&fw[k]);
    }
    for (size_t i = 0; wds && wpath && i < n; i++) {
        if (wds[i])
            GDALClose(wds[i]);
        free(wpath[i]);
    }
    for (size_t i = 0; vds && mds && vpath && mpath && i < m; i++) {
        if (vds[i])
            GDALClose(vds[i]);
        if (mds[i])
            GDALClose(mds[i]);
        free(vpath[i]);
        free(mpath[i]);
    }
    free(wds);
    free(vds);
    free(mds);
    free(wpath);
    free(vpath);
    free(mpath);
    for (int k = 0; k < 3; k++)
        free(acc[k]);
    free(tb);
    free(vb);
    free(ta);
    free(va);
    free(wbuf);
    free(vbuf);
    return st;
}

/* ---- Period baselines
 * -------------------------------------------------------- */

enum {
    PB_CLEAR,
    PB_WET,
    PB_FREQ,
    PB_NMIN,
    PB_NMAX,
    PB_NMEDIAN,
    PB_NMEAN,
    PB_NSTD,
    PB_NYEARS,
    PB_COUNT
};
static const char *const pb_names[PB_COUNT] = {
    "clear_count", "wet_count", "frequency", "ndvi_min",  "ndvi_max",
    "ndvi_median", "ndvi_mean", "ndvi_std",  "ndvi_years"};
static const char *const pb_desc[PB_COUNT] = {
    "clear observations over the baseline years",
    "wet observations over the baseline years",
    "WOfS water frequency: wet / clear observations (0-1)",
    "minimum over the baseline years of the yearly NDVI at the period centre",
    "maximum over the baseline years of the yearly NDVI at the period centre",
    "median over the baseline years of the yearly NDVI at the period centre",
    "mean over the baseline years of the yearly NDVI at the period centre",
    "sample standard deviation over the baseline years of the yearly mean "
    "NDVI",
    "baseline years with a valid NDVI"};

static aw_status build_period(aw_ctx *ctx, const aw_config *cfg, int threads,
                              const aw_grid *grid, const char *bl_dir,
                              const char *pname, const int *years,
                              size_t n_years, const char *from, const char *to)
{
    size_t width = (size_t)grid->width;
    size_t T = n_years;
    int rows = strip_rows_for(grid, 3 * T + PB_COUNT + 2);
    size_t cap = width * (size_t)rows;
    aw_status st = AW_OK;
    GDALDatasetH(*ds)[3] = aw_calloc2(T, sizeof *ds);
    char *(*paths)[3] = aw_calloc2(T, sizeof *paths);
    float **lay = aw_calloc2(3 * T, sizeof *lay);
    float *out[PB_COUNT];
    uint16_t *nval = aw_calloc2(cap, sizeof *nval);
    memset(out, 0, sizeof out);
    fwriter fw[PB_COUNT];
    memset(fw, 0, sizeof fw);
    if (!ds || !paths || !lay || !nval)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (int k = 0; k < PB_COUNT && st == AW_OK; k++)
        if (!(out[k] = aw_calloc2(cap, sizeof *out[k])))
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < 3 * T && st == AW_OK; i++)
        if (!(lay[i] = aw_calloc2(cap, sizeof *lay[i])))
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (size_t y = 0; y < T && st == AW_OK; y++) {
        char sub[64];
        snprintf(sub, sizeof sub, "years/%04d-%s", years[y], pname);
        char *ydir = aw_path_join(bl_dir, sub);
        for (int k = 0; k < 3 && st == AW_OK; k++) {
            char name[32];
            snprintf(name, sizeof name, "%s.tif", year_layers[k]);
            paths[y][k] = ydir ? aw_path_join(ydir, name) : NULL;
            st = paths[y][k] ? open_on_grid(ctx, paths[y][k], grid, &ds[y][k])
                             : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        free(ydir);
    }
    char *pdir = aw_path_join(bl_dir, pname);
    if (st == AW_OK)
        st = pdir ? aw_mkdirs(ctx, pdir)
                  : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    char **md = NULL;
    md = CSLSetNameValue(md, "AW_SOFTWARE", "aralwatch " AW_VERSION);
    md = CSLSetNameValue(md, "AW_BASELINE_PERIOD", pname);
    md = CSLSetNameValue(md, "AW_BASELINE_FROM", from);
    md = CSLSetNameValue(md, "AW_BASELINE_TO", to);
    char num[32];
    snprintf(num, sizeof num, "%d", cfg->baseline_min_years);
    md = CSLSetNameValue(md, "AW_BASELINE_MIN_YEARS", num);
    char ylist[512] = "";
    size_t yl = 0;
    for (size_t y = 0; y < T && yl < sizeof ylist - 8; y++)
        yl += (size_t)snprintf(ylist + yl, sizeof ylist - yl, "%s%d",
                               y ? "," : "", years[y]);
    md = CSLSetNameValue(md, "AW_BASELINE_YEARS", ylist);
    for (int k = 0; k < PB_COUNT && st == AW_OK; k++) {
        char name[40];
        snprintf(name, sizeof name, "%s.tif", pb_names[k]);
        st = fw_open(ctx, cfg, threads, grid, pdir, name, pb_desc[k], md,
                     &fw[k]);
    }
    CSLDestroy(md);
    free(pdir);
    const float *const *ndvi = (const float *const *)(lay + 2 * T);
    for (int r0 = 0; r0 < grid->height && st == AW_OK; r0 += rows) {
        int nr = r0 + rows > grid->height ? grid->height - r0 : rows;
        size_t np = width * (size_t)nr;
        for (size_t y = 0; y < T && st == AW_OK; y++)
            for (int k = 0; k < 3 && st == AW_OK; k++)
                st = read_rows(ctx, ds[y][k], paths[y][k], r0, nr,
                               lay[(size_t)k * T + y]);
        if (st != AW_OK)
            break;
        for (size_t p = 0; p < np; p++) {
            double c = 0, w = 0;
            for (size_t y = 0; y < T; y++) {
                float cv = lay[y][p], wv = lay[T + y][p];
                if (isfinite(cv))
                    c += (double)cv;
                if (isfinite(wv))
                    w += (double)wv;
            }
            out[PB_CLEAR][p] = (float)c;
            out[PB_WET][p] = (float)w;
        }
        aw_wofs_frequency(out[PB_CLEAR], out[PB_WET], np, out[PB_FREQ]);
        aw_stack_stats(ndvi, T, np, cfg->baseline_min_years, out[PB_NMIN],
                       out[PB_NMAX], out[PB_NMEDIAN], out[PB_NMEAN],
                       out[PB_NSTD], nval);
        for (size_t p = 0; p < np; p++)
            out[PB_NYEARS][p] = (float)nval[p];
        for (int k = 0; k < PB_COUNT && st == AW_OK; k++)
            st = aw_rwriter_rows(ctx, fw[k].w, r0, nr, out[k]);
    }
    for (int k = 0; k < PB_COUNT; k++) {
        if (st == AW_OK)
            st = fw_close(ctx, &fw[k]);
        else
            fw_abort(&fw[k]);
    }
    for (size_t y = 0; ds && paths && y < T; y++)
        for (int k = 0; k < 3; k++) {
            if (ds[y][k])
                GDALClose(ds[y][k]);
            free(paths[y][k]);
        }
    free(ds);
    free(paths);
    for (size_t i = 0; lay && i < 3 * T; i++)
        free(lay[i]);
    free(lay);
    for (int k = 0; k < PB_COUNT; k++)
        free(out[k]);
    free(nval);
    return st;
}

/* occurrence.tif: the mean over the periods of their frequency (Pekel et
 * al. 2016's month normalisation), in %. */
static aw_status build_occurrence(aw_ctx *ctx, const aw_config *cfg,
                                  int threads, const aw_grid *grid,
                                  const char *bl_dir, const int *have)
{
    int np_ = aw_period_count(cfg->baseline_period);
    size_t width = (size_t)grid->width;
    int rows = strip_rows_for(grid, (size_t)np_ + 2);
    size_t cap = width * (size_t)rows;
    GDALDatasetH ds[36];
    char *paths[36];
    float *lay[36];
    memset(ds, 0, sizeof ds);
    memset(paths, 0, sizeof paths);
    memset(lay, 0, sizeof lay);
    size_t n = 0;
    aw_status st = AW_OK;
    for (int k = 0; k < np_ && st == AW_OK; k++) {
        if (!have[k])
            continue;
        char pname[AW_PERIOD_NAME_MAX], rel[32];
        aw_period_name(cfg->baseline_period, k, pname);
        snprintf(rel, sizeof rel, "%s/frequency.tif", pname);
        paths[n] = aw_path_join(bl_dir, rel);
        lay[n] = aw_calloc2(cap, sizeof(float));
        if (!paths[n] || !lay[n]) {
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            n++;
            break;
        }
        st = open_on_grid(ctx, paths[n], grid, &ds[n]);
        n++;
    }
    float *occ = aw_calloc2(cap, sizeof *occ);
    if (!occ && st == AW_OK)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    fwriter fw;
    memset(&fw, 0, sizeof fw);
    char **md = CSLSetNameValue(NULL, "AW_SOFTWARE", "aralwatch " AW_VERSION);
    if (st == AW_OK)
        st = fw_open(ctx, cfg, threads, grid, bl_dir, "occurrence.tif",
                     "water occurrence, %: mean over the periods of the "
                     "year of their water frequency (Pekel et al. 2016)",
                     md, &fw);
    CSLDestroy(md);
    for (int r0 = 0; r0 < grid->height && st == AW_OK; r0 += rows) {
        int nr = r0 + rows > grid->height ? grid->height - r0 : rows;
        size_t npx = width * (size_t)nr;
        for (size_t i = 0; i < n && st == AW_OK; i++)
            st = read_rows(ctx, ds[i], paths[i], r0, nr, lay[i]);
        if (st != AW_OK)
            break;
        aw_occurrence_month_normalised((const float *const *)lay, n, npx, occ);
        for (size_t p = 0; p < npx; p++)
            occ[p] = occ[p] * 100.0f;
        st = aw_rwriter_rows(ctx, fw.w, r0, nr, occ);
    }
    if (st == AW_OK)
        st = fw_close(ctx, &fw);
    else
        fw_abort(&fw);
    for (size_t i = 0; i < n; i++) {
        if (ds[i])
            GDALClose(ds[i]);
        free(paths[i]);
        free(lay[i]);
    }
    free(occ);
    return st;
}

/* ---- Zone baselines
 * ----------------------------------------------------------- */

/* Gap-filled water area (km2) of every zone on one date: water seen plus
 * frequency x area where not seen. Reads only the rows the zones cover. */
static aw_status filled_areas(aw_ctx *ctx, const aw_grid *grid,
                              const aw_zones *zones, GDALDatasetH wds,
                              const char *wpath, GDALDatasetH fds,
                              const char *fpath, int dswe, double *km2)
{
    int y0 = grid->height, y1 = 0;
    for (size_t z = 0; z < zones->n; z++) {
        const aw_zone *zn = &zones->z[z];
        km2[z] = 0;
        if (zn->w <= 0 || zn->h <= 0)
            continue;
        int a = zn->y0 < 0 ? 0 : zn->y0;
        int b = zn->y0 + zn->h > grid->height ? grid->height : zn->y0 + zn->h;
        if (a < y0)
            y0 = a;
        if (b > y1)
            y1 = b;
    }
    if (y1 <= y0)
        return AW_OK;
    size_t width = (size_t)grid->width;
    int rows = strip_rows_for(grid, 2);
    float *wb = aw_calloc2(width * (size_t)rows, sizeof *wb);
    float *fb = aw_calloc2(width * (size_t)rows, sizeof *fb);
    aw_status st =
        wb && fb ? AW_OK : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (int r0 = y0; r0 < y1 && st == AW_OK; r0 += rows) {
        int nr = r0 + rows > y1 ? y1 - r0 : rows;
        st = read_rows(ctx, wds, wpath, r0, nr, wb);
        if (st == AW_OK)
            st = read_rows(ctx, fds, fpath, r0, nr, fb);
        for (size_t z = 0; z < zones->n && st == AW_OK; z++) {
            const aw_zone *zn = &zones->z[z];
            for (int r = 0; r < nr; r++) {
                int gy = r0 + r, zy = gy - zn->y0;
                if (zy < 0 || zy >= zn->h)
                    continue;
                double a = aw_grid_cell_area(grid, gy) * 1e-6;
                int64_t seen = 0;
                double expect = 0;
                for (size_t kr = zn->run_at[zy]; kr < zn->run_at[zy + 1]; kr++)
                    for (int zx = zn->runs[2 * kr]; zx < zn->runs[2 * kr + 1];
                         zx++) {
                        int gx = zn->x0 + zx;
                        if (gx < 0 || gx >= grid->width)
                            continue;
                        size_t p = (size_t)r * width + (size_t)gx;
                        float wv = wb[p];
                        int clear = !isnan(wv) && (!dswe || wv < 9.0f);
                        if (clear)
                            seen += dswe ? (wv == 1.0f || wv == 2.0f)
                                         : wv == (float)AW_WATER_YES;
                        else if (isfinite(fb[p]))
                            expect += (double)fb[p];
                    }
                km2[z] += ((double)seen + expect) * a;
            }
        }
    }
    free(wb);
    free(fb);
    return st;
}

/* Percentile (linear between order statistics, Hyndman-Fan type 7) of
 * sorted v[0..n). */
static double pctl(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (h - (double)lo) * (v[hi] - v[lo]);
}

static aw_status put_zone_baseline(aw_ctx *ctx, sqlite3 *db, const char *pname,
                                   const char *zone, const char *metric,
                                   double *v, const int *yr, size_t n,
                                   json_t *zj)
{
    /* distinct years */
    int years = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = yr[j] == yr[i];
        years += !seen;
    }
    qsort(v, n, sizeof *v, aw_cmp_double);
    double mean = 0, sd = NAN;
    for (size_t i = 0; i < n; i++)
        mean += v[i];
    mean = n ? mean / (double)n : (double)NAN;
    if (n > 1) {
        double s2 = 0;
        for (size_t i = 0; i < n; i++)
            s2 += (v[i] - mean) * (v[i] - mean);
        sd = sqrt(s2 / (double)(n - 1));
    }
    double st[5] = {pctl(v, n, 0.5), pctl(v, n, 0.1), pctl(v, n, 0.25),
                    pctl(v, n, 0.75), pctl(v, n, 0.9)};
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(
            db,
            "INSERT OR REPLACE INTO zone_baseline (period, zone_id, metric, "
            "n_obs, n_years, median, p10, p25, p75, p90, mean, std) VALUES "
            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            -1, &q, NULL) != SQLITE_OK)
        return sql_fail(ctx, db, "zone baseline");
    sqlite3_bind_text(q, 1, pname, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, zone, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, metric, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)n);
    sqlite3_bind_int(q, 5, years);
    double all[7] = {st[0], st[1], st[2], st[3], st[4], mean, sd};
    for (int k = 0; k < 7; k++) {
        if (isfinite(all[k]))
            sqlite3_bind_double(q, 6 + k, all[k]);
        else
            sqlite3_bind_null(q, 6 + k);
    }
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return sql_fail(ctx, db, "zone baseline");
    json_t *o = json_object();
    json_object_set_new(o, "n_obs", json_integer((json_int_t)n));
    json_object_set_new(o, "n_years", json_integer(years));
    static const char *const keys[7] = {"median", "p10",  "p25", "p75",
                                        "p90",    "mean", "std"};
    for (int k = 0; k < 7; k++)
        json_object_set_new(o, keys[k],
                            isfinite(all[k]) ? json_real(all[k]) : json_null());
    json_t *pz = json_object_get(zj, pname);
    if (!pz) {
        pz = json_object();
        json_object_set_new(zj, pname, pz);
    }
    json_object_set_new(pz, metric, o);
    return AW_OK;
}

/* ---- aralwatch baseline
 * ---------------------------------------------------------- */

static aw_status exec_sql(aw_ctx *ctx, sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
        return AW_OK;
    aw_status st = aw_fail(ctx, AW_ERR_IO, "catalog: %s", err ? err : "error");
    sqlite3_free(err);
    return st;
}

static aw_status build_all(aw_ctx *ctx, const aw_config *cfg, int threads,
                           const char *region_dir, aw_catalog *cat,
                           const char *from, const char *to)
{
    sqlite3 *db = aw_catalog_db(cat);
    aw_grid grid;
    aw_aoi aoi;
    aw_zones zones;
    memset(&grid, 0, sizeof grid);
    memset(&aoi, 0, sizeof aoi);
    memset(&zones, 0, sizeof zones);
    obs_date *d = NULL;
    size_t n = 0;
    char *bl_dir = aw_path_join(region_dir, "baseline");
    json_t *zdoc = json_object();
    aw_status st =
        bl_dir && zdoc ? AW_OK : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK)
        st = aw_grid_build(ctx, cfg, &grid, &aoi);
    if (st == AW_OK && cfg->zones_path)
        st = aw_zones_load(ctx, cfg, &grid, &zones);
    if (st == AW_OK)
        st = list_dates(ctx, db, from, to, cfg->baseline_period, &d, &n);
    if (st == AW_OK && n == 0)
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "no date between %s and %s was processed; nothing to "
                     "build a baseline from",
                     from, to);
    if (st == AW_OK)
        st = aw_mkdirs(ctx, bl_dir);
    int P = aw_period_count(cfg->baseline_period);
    int have[36];
    memset(have, 0, sizeof have);
    int n_rebuilt = 0, n_kept = 0;
    /* 1. Yearly summaries whose dates changed. */
    for (size_t i = 0; i < n && st == AW_OK;) {
        size_t j = i;
        while (j < n && d[j].year == d[i].year && d[j].period == d[i].period)
            j++;
        /* d is sorted by date, so a (year, period) is one run of dates. */
        char pname[AW_PERIOD_NAME_MAX], sub[64];
        aw_period_name(cfg->baseline_period, d[i].period, pname);
        snprintf(sub, sizeof sub, "years/%04d-%s", d[i].year, pname);
        /* The NDVI at the period's centre needs the dates around it. */
        char jan1[11];
        snprintf(jan1, sizeof jan1, "%04u-01-01", (unsigned)d[i].year % 10000u);
        double centre =
            (double)aw_days_from_date(jan1) +
            period_centre(cfg->baseline_period, d[i].year, d[i].period);
        const obs_date **nd = aw_calloc2(n, sizeof *nd);
        size_t m = 0;
        for (size_t k = 0; nd && k < n; k++)
            if (fabs((double)aw_days_from_date(d[k].date) - centre) <=
                AW_NDVI_WINDOW)
                nd[m++] = &d[k];
        char *text = aw_calloc2(j - i + m, 80);
        if (!text || !nd) {
            free(text);
            free(nd);
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            break;
        }
        size_t tl = 0;
        for (size_t k = i; k < j; k++)
            tl += (size_t)snprintf(text + tl, 80, "%s:%s;", d[k].date, d[k].fp);
        for (size_t k = 0; k < m; k++)
            tl += (size_t)snprintf(text + tl, 80, "n%s:%s;", nd[k]->date,
                                   nd[k]->fp);
        char fp[65];
        aw_sha256_buf(text, tl, fp);
        free(text);
        sqlite3_stmt *q = NULL;
        int same = 0;
        if (sqlite3_prepare_v2(db,
                               "SELECT fingerprint FROM baseline_years WHERE "
                               "year = ?1 AND period = ?2",
                               -1, &q, NULL) == SQLITE_OK) {
            sqlite3_bind_int(q, 1, d[i].year);
            sqlite3_bind_text(q, 2, pname, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW) {
                const char *old = (const char *)sqlite3_column_text(q, 0);
                same = old && strcmp(old, fp) == 0;
            }
        }
        sqlite3_finalize(q);
        char *ydir = aw_path_join(bl_dir, sub);
        char *probe = ydir ? aw_path_join(ydir, "ndvi.tif") : NULL;
        if (same && file_exists(probe)) {
            n_kept++;
        }
        else {
            aw_log(ctx, AW_LOG_INFO, "baseline: %04d %s from %zu date(s)",
                   d[i].year, pname, j - i);
            st = ydir ? build_year(ctx, cfg, threads, &grid, region_dir, ydir,
                                   d + i, j - i, nd, m, centre)
                      : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
            if (st == AW_OK) {
                char now[21];
                aw_utc_now(now);
                if (sqlite3_prepare_v2(
                        db,
                        "INSERT OR REPLACE INTO baseline_years (year, period, "
                        "fingerprint, n_dates, built) VALUES (?1, ?2, ?3, ?4, "
                        "?5)",
                        -1, &q, NULL) != SQLITE_OK)
                    st = sql_fail(ctx, db, "baseline years");
                else {
                    sqlite3_bind_int(q, 1, d[i].year);
                    sqlite3_bind_text(q, 2, pname, -1, SQLITE_STATIC);
                    sqlite3_bind_text(q, 3, fp, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(q, 4, (sqlite3_int64)(j - i));
                    sqlite3_bind_text(q, 5, now, -1, SQLITE_STATIC);
                    if (sqlite3_step(q) != SQLITE_DONE)
                        st = sql_fail(ctx, db, "baseline years");
                    sqlite3_finalize(q);
                }
            }
            n_rebuilt++;
        }
        free(probe);
        free(ydir);
        free(nd);
        i = j;
    }
    if (st == AW_OK)
        aw_log(ctx, AW_LOG_INFO,
               "baseline: %d yearly summar%s built, %d unchanged", n_rebuilt,
               n_rebuilt == 1 ? "y" : "ies", n_kept);
    /* 2. Period baselines from the yearly summaries in [from, to]. */
    int fy = (from[0] - '0') * 1000 + (from[1] - '0') * 100 +
             (from[2] - '0') * 10 + (from[3] - '0');
    int ty = (to[0] - '0') * 1000 + (to[1] - '0') * 100 + (to[2] - '0') * 10 +
             (to[3] - '0');
    for (int k = 0; k < P && st == AW_OK; k++) {
        int years[64];
        size_t ny = 0;
        for (size_t i = 0; i < n && ny < 64; i++)
            if (d[i].period == k && (ny == 0 || years[ny - 1] != d[i].year) &&
                d[i].year >= fy && d[i].year <= ty)
                years[ny++] = d[i].year;
        if (ny == 0)
            continue;
        char pname[AW_PERIOD_NAME_MAX];
        aw_period_name(cfg->baseline_period, k, pname);
        st = build_period(ctx, cfg, threads, &grid, bl_dir, pname, years, ny,
                          from, to);
        if (st != AW_OK)
            break;
        have[k] = 1;
        char ylist[512] = "[";
        size_t yl = 1;
        for (size_t y = 0; y < ny && yl < sizeof ylist - 8; y++)
            yl += (size_t)snprintf(ylist + yl, sizeof ylist - yl, "%s%d",
                                   y ? "," : "", years[y]);
        snprintf(ylist + yl, sizeof ylist - yl, "]");
        char now[21];
        aw_utc_now(now);
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(
                db,
                "INSERT OR REPLACE INTO baseline_periods (period, from_date, "
                "to_date, years, n_years, min_years, built) VALUES (?1, ?2, "
                "?3, ?4, ?5, ?6, ?7)",
                -1, &q, NULL) != SQLITE_OK) {
            st = sql_fail(ctx, db, "baseline periods");
            break;
        }
        sqlite3_bind_text(q, 1, pname, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, from, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, to, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, ylist, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)ny);
        sqlite3_bind_int(q, 6, cfg->baseline_min_years);
        sqlite3_bind_text(q, 7, now, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            st = sql_fail(ctx, db, "baseline periods");
        sqlite3_finalize(q);
    }
    if (st == AW_OK)
        st = build_occurrence(ctx, cfg, threads, &grid, bl_dir, have);
    /* 3. Zone baselines: gap-filled water area and mean NDVI of every
     * observation clear enough, per period. */
    double *filled = zones.n ? aw_calloc2(n * zones.n, sizeof *filled) : NULL;
    if (zones.n && !filled && st == AW_OK)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    int dswe = cfg->water_method == AW_WATER_DSWE;
    if (st == AW_OK && zones.n)
        st = exec_sql(ctx, db, "BEGIN IMMEDIATE;");
    for (size_t i = 0; i < n && st == AW_OK && zones.n; i++) {
        char pname[AW_PERIOD_NAME_MAX], rel[32];
        aw_period_name(cfg->baseline_period, d[i].period, pname);
        snprintf(rel, sizeof rel, "%s/frequency.tif", pname);
        char *fpath = aw_path_join(bl_dir, rel);
        char *wpath = date_file(region_dir, d[i].date, "water.tif");
        GDALDatasetH wds = NULL, fds = NULL;
        st = fpath && wpath ? open_on_grid(ctx, wpath, &grid, &wds)
                            : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        if (st == AW_OK)
            st = open_on_grid(ctx, fpath, &grid, &fds);
        if (st == AW_OK)
            st = filled_areas(ctx, &grid, &zones, wds, wpath, fds, fpath, dswe,
                              filled + i * zones.n);
        for (size_t z = 0; z < zones.n && st == AW_OK; z++) {
            sqlite3_stmt *q = NULL;
            if (sqlite3_prepare_v2(db,
                                   "INSERT OR REPLACE INTO zone_metrics "
                                   "(date, zone_id, metric, value) VALUES "
                                   "(?1, ?2, 'water_filled_km2', ?3)",
                                   -1, &q, NULL) != SQLITE_OK) {
                st = sql_fail(ctx, db, "zone metrics");
                break;
            }
            sqlite3_bind_text(q, 1, d[i].date, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, zones.z[z].id, -1, SQLITE_STATIC);
            sqlite3_bind_double(q, 3, filled[i * zones.n + z]);
            if (sqlite3_step(q) != SQLITE_DONE)
                st = sql_fail(ctx, db, "zone metrics");
            sqlite3_finalize(q);
        }
        if (wds)
            GDALClose(wds);
        if (fds)
            GDALClose(fds);
        free(fpath);
        free(wpath);
    }
    double *v = n ? aw_calloc2(n, sizeof *v) : NULL;
    int *yr = n ? aw_calloc2(n, sizeof *yr) : NULL;
    /* A zone's valid fraction and mean NDVI on every date, read once. */
    double *vfs = n ? aw_calloc2(n, sizeof *vfs) : NULL;
    double *ndvis = n ? aw_calloc2(n, sizeof *ndvis) : NULL;
    if (n && (!v || !yr || !vfs || !ndvis) && st == AW_OK)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (size_t z = 0; z < zones.n && st == AW_OK; z++) {
        json_t *zj = json_object();
        json_object_set_new(zdoc, zones.z[z].id, zj);
        for (size_t i = 0; i < n; i++) {
            vfs[i] =
                date_metric(db, d[i].date, zones.z[z].id, "valid_fraction");
            ndvis[i] = date_metric(db, d[i].date, zones.z[z].id, "mean_ndvi");
        }
        for (int k = 0; k < P && st == AW_OK; k++) {
            if (!have[k])
                continue;
            char pname[AW_PERIOD_NAME_MAX];
            aw_period_name(cfg->baseline_period, k, pname);
            for (int m = 0; m < 2 && st == AW_OK; m++) {
                size_t c = 0;
                for (size_t i = 0; i < n; i++) {
                    if (d[i].period != k || d[i].year < fy || d[i].year > ty)
                        continue;
                    if (!(vfs[i] >= cfg->baseline_min_valid_fraction))
                        continue;
                    double x = m == 0 ? filled[i * zones.n + z] : ndvis[i];
                    if (!isfinite(x))
                        continue;
                    v[c] = x;
                    yr[c] = d[i].year;
                    c++;
                }
                if (c == 0)
                    continue;
                st = put_zone_baseline(
                    ctx, db, pname, zones.z[z].id,
                    m == 0 ? "water_filled_km2" : "mean_ndvi", v, yr, c, zj);
            }
        }
    }
    if (zones.n) {
        if (st == AW_OK)
            st = exec_sql(ctx, db, "COMMIT;");
        else
            (void)sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
    }
    if (st == AW_OK) {
        json_t *doc = json_object();
        json_object_set_new(doc, "from", json_string(from));
        json_object_set_new(doc, "to", json_string(to));
        json_object_set_new(doc, "period",
                            json_string(cfg->baseline_period == AW_PERIOD_DEKAD
                                            ? "dekad"
                                            : "month"));
        json_object_set_new(doc, "min_valid_fraction",
                            json_real(cfg->baseline_min_valid_fraction));
        json_object_set_new(doc, "zones", json_incref(zdoc));
        char *zpath = aw_path_join(bl_dir, "zones.json");
        st = zpath ? aw_write_json_file(ctx, zpath, doc)
                   : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        free(zpath);
        json_decref(doc);
    }
    free(v);
    free(yr);
    free(vfs);
    free(ndvis);
    free(filled);
    json_decref(zdoc);
    free(d);
    free(bl_dir);
    aw_zones_free(&zones);
    aw_aoi_free(&aoi);
    aw_grid_free(&grid);
    return st;
}

static aw_status build_root(aw_ctx *ctx, const aw_config *cfg,
                            const aw_baseline_opts *o, const char *from,
                            const char *to);

aw_status aw_baseline_build(aw_ctx *ctx, const aw_config *cfg,
                            const aw_baseline_opts *o, aw_run_result *rr)
{
    const char *from = o->from ? o->from : cfg->baseline_from;
    const char *to = o->to ? o->to : cfg->baseline_to;
    if (!from || !from[0] || !to || !to[0])
        return aw_fail(ctx, AW_ERR_USAGE,
                       "the baseline needs a date range: --from and --to, or "
                       "baseline.from and baseline.to in %s",
                       cfg->path);
    if (strcmp(from, to) > 0)
        return aw_fail(ctx, AW_ERR_USAGE, "--from %s is after --to %s", from,
                       to);
    if (cfg->grid_per_date)
        return aw_fail(ctx, AW_ERR_CONFIG,
                       "%s: region.grid: per_date: a baseline needs one "
                       "fixed grid for every date",
                       cfg->path);
    /* An empty inbox is a quiet night for `run`; a baseline from no
     * scene is a mistake to say. */
    if (cfg->n_scenes == 0 && cfg->n_inbox_rejects == 0)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: no scene (the inbox is empty): nothing to build "
                       "a baseline from",
                       cfg->path);
    if (cfg->n_scenes == 0)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: no scene to build a baseline from: the inbox "
                       "holds %zu product(s) that cannot be read; the first: "
                       "%s",
                       cfg->path, cfg->n_inbox_rejects,
                       cfg->inbox_reject_reasons[0]);
    aw_run_opts ro = o->run;
    ro.date_from = from;
    ro.date_to = to;
    ro.force_rasters = 1u << AW_RASTER_WATER | 1u << AW_IDX_NDVI;
    ro.no_baseline = 1;
    aw_status st = aw_run(ctx, cfg, &ro, rr);
    /* In an MPI run the dates are done by every rank; the summaries are
     * built by rank 0 (the other ranks wait for its status). */
    if (st != AW_OK || aw_par_size() > 1) {
        if (st == AW_OK && aw_par_root())
            st = build_root(ctx, cfg, o, from, to);
        return aw_par_size() > 1 ? aw_par_agree(ctx, st) : st;
    }
    return build_root(ctx, cfg, o, from, to);
}

static aw_status build_root(aw_ctx *ctx, const aw_config *cfg,
                            const aw_baseline_opts *o, const char *from,
                            const char *to)
{
    aw_status st = AW_OK;
    const char *out = o->run.out_dir ? o->run.out_dir : cfg->out_dir;
    char *region_dir = aw_path_join(out, cfg->region_name);
    char *cat_path =
        region_dir ? aw_path_join(region_dir, "catalog.sqlite") : NULL;
    if (!cat_path) {
        free(region_dir);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    int lock_fd = -1;
    aw_catalog *cat = NULL;
    aw_ctx_set_scope(ctx, NULL, NULL, "baseline");
    st = aw_lock_acquire(ctx, region_dir, &lock_fd);
    if (st == AW_OK)
        st = aw_catalog_open(ctx, cat_path, &cat);
    if (st == AW_OK) {
        /* As the run: --threads, or every core. */
        int threads = o->run.threads > 0 ? o->run.threads : omp_get_num_procs();
        double t0 = aw_now();
        st = build_all(ctx, cfg, threads, region_dir, cat, from, to);
        if (st == AW_OK)
            aw_log(ctx, AW_LOG_INFO, "baseline %s..%s built in %.2f s", from,
                   to, aw_now() - t0);
    }
    aw_catalog_close(cat);
    if (lock_fd >= 0)
        aw_lock_release(lock_fd);
    free(cat_path);
    free(region_dir);
    return st;
}

/* ---- Change of a date against the baseline (the run) --------------------- */

enum { BL_FREQ, BL_NMIN, BL_NMAX, BL_NMEDIAN, BL_NMEAN, BL_NSTD, BL_N };
static const int bl_src[BL_N] = {PB_FREQ,    PB_NMIN,  PB_NMAX,
                                 PB_NMEDIAN, PB_NMEAN, PB_NSTD};

/* Per zone, over the date's strips. Only integers, so that partial sums
 * (strips, MPI ranks) add up to the same bits in any order: areas and
 * sums are each row's value in fixed point (value * 2^24, rounded). */
typedef struct zone_acc {
    int64_t seen_fx, expect_fx, lost_fx, new_fx; /* km2 */
    int64_t n_vci, n_stress, n_z;
    int64_t n_off_season; /* valid, with a baseline, not in season */
    int64_t sum_vci_fx, sum_z_fx;
} zone_acc;
#define ACC_WORDS (sizeof(zone_acc) / sizeof(int64_t))

#define FX_SCALE 16777216.0 /* 2^24 */
static int64_t fx_add(int64_t acc, double v)
{
    double x = v * FX_SCALE;
    x = x > 4.6e18 ? 4.6e18 : x < -4.6e18 ? -4.6e18 : x;
    return (int64_t)((uint64_t)acc + (uint64_t)(int64_t)llrint(x));
}

static double fx_value(int64_t v)
{
    return (double)v / FX_SCALE;
}

struct aw_bl {
    char *dir;
    aw_period period;
    int n_periods;
    int have[36];
    size_t n_zones;
    double *median; /* [period * n_zones + zone]: water_filled_km2 median */
    int cur;        /* period of the date being processed, -1 none */
    GDALDatasetH ds[BL_N];
    char *path[BL_N];
    float *in[BL_N];
    /* The neighbouring period the NDVI statistics are interpolated with
     * (by day of the year between the periods' centres), and its weight. */
    GDALDatasetH ds2[BL_N];
    char *path2[BL_N];
    float *in2[BL_N];
    double w2;
    uint8_t *wchange;
    float *vci, *z, *diff;
    size_t cap;
    zone_acc *acc;
    double lost_occ, new_occ, stress;
    float season_ndvi;
    float vci_min_range;
};

static void bl_close_date(aw_bl *bl)
{
    for (int k = 0; k < BL_N; k++) {
        if (bl->ds[k])
            GDALClose(bl->ds[k]);
        if (bl->ds2[k])
            GDALClose(bl->ds2[k]);
        bl->ds[k] = bl->ds2[k] = NULL;
        free(bl->path[k]);
        free(bl->path2[k]);
        bl->path[k] = bl->path2[k] = NULL;
    }
    bl->w2 = 0;
    bl->cur = -1;
}

void aw_bl_close(aw_bl *bl)
{
    if (!bl)
        return;
    bl_close_date(bl);
    for (int k = 0; k < BL_N; k++) {
        free(bl->in[k]);
        free(bl->in2[k]);
    }
    free(bl->wchange);
    free(bl->vci);
    free(bl->z);
    free(bl->diff);
    free(bl->acc);
    free(bl->median);
    free(bl->dir);
    free(bl);
}

static aw_status bl_open_root(aw_ctx *ctx, const run_state *rs, aw_bl **out);
static aw_bl *bl_new(const run_state *rs);

/* Collective in an MPI run: rank 0 reads the catalog; every rank gets
 * which periods have a baseline (its rasters are read by each rank for
 * its rows; the zone medians are only needed on rank 0). */
aw_status aw_bl_open(aw_ctx *ctx, const run_state *rs, aw_bl **out)
{
    *out = NULL;
    if (rs->opts->no_baseline || rs->cfg->grid_per_date)
        return AW_OK;
    aw_status st = aw_par_root() ? bl_open_root(ctx, rs, out) : AW_OK;
    st = aw_par_agree(ctx, st);
    if (st != AW_OK || aw_par_size() < 2)
        return st;
    int have[37] = {0};
    if (aw_par_root() && *out) {
        have[36] = 1;
        memcpy(have, (*out)->have, sizeof(*out)->have);
    }
    aw_par_bcast(have, sizeof have, 0);
    if (!aw_par_root() && have[36]) {
        aw_bl *bl = bl_new(rs);
        if (bl)
            memcpy(bl->have, have, sizeof bl->have);
        else
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        *out = bl;
    }
    st = aw_par_agree(ctx, st);
    if (st != AW_OK) {
        aw_bl_close(*out);
        *out = NULL;
    }
    return st;
}

static aw_bl *bl_new(const run_state *rs)
{
    const aw_config *cfg = rs->cfg;
    aw_bl *bl = calloc(1, sizeof *bl);
    if (!bl)
        return NULL;
    bl->cur = -1;
    bl->period = cfg->baseline_period;
    bl->n_periods = aw_period_count(bl->period);
    bl->n_zones = rs->zones.n;
    bl->lost_occ = cfg->lost_water_occurrence;
    bl->new_occ = cfg->new_water_occurrence;
    bl->stress = cfg->stress_vci;
    bl->season_ndvi = (float)cfg->season_ndvi;
    bl->vci_min_range = (float)cfg->vci_min_range;
    bl->dir = aw_path_join(rs->region_dir, "baseline");
    bl->median = aw_calloc2((size_t)bl->n_periods * (bl->n_zones + 1),
                            sizeof *bl->median);
    bl->acc = aw_calloc2(bl->n_zones + 1, sizeof *bl->acc);
    if (!bl->dir || !bl->median || !bl->acc) {
        aw_bl_close(bl);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)bl->n_periods * (bl->n_zones + 1); i++)
        bl->median[i] = NAN;
    return bl;
}

static aw_status bl_open_root(aw_ctx *ctx, const run_state *rs, aw_bl **out)
{
    if (!rs->catalog)
        return AW_OK;
    sqlite3 *db = aw_catalog_db(rs->catalog);
    aw_bl *bl = bl_new(rs);
    if (!bl)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    int any = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT period FROM baseline_periods", -1, &q,
                           NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(q, 0);
            for (int k = 0; p && k < bl->n_periods; k++) {
                char name[AW_PERIOD_NAME_MAX];
                aw_period_name(bl->period, k, name);
                if (strcmp(name, p) == 0) {
                    bl->have[k] = 1;
                    any = 1;
                }
            }
        }
    }
    sqlite3_finalize(q);
    if (!any) {
        aw_bl_close(bl);
        return AW_OK;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT period, median FROM zone_baseline WHERE "
                           "zone_id = ?1 AND metric = 'water_filled_km2'",
                           -1, &q, NULL) == SQLITE_OK) {
        for (size_t z = 0; z < bl->n_zones; z++) {
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, rs->zones.z[z].id, -1, SQLITE_STATIC);
            while (sqlite3_step(q) == SQLITE_ROW) {
                const char *p = (const char *)sqlite3_column_text(q, 0);
                for (int k = 0; p && k < bl->n_periods; k++) {
                    char name[AW_PERIOD_NAME_MAX];
                    aw_period_name(bl->period, k, name);
                    if (strcmp(name, p) == 0 &&
                        sqlite3_column_type(q, 1) != SQLITE_NULL)
                        bl->median[(size_t)k * bl->n_zones + z] =
                            sqlite3_column_double(q, 1);
                }
            }
        }
    }
    sqlite3_finalize(q);
    *out = bl;
    return AW_OK;
}

/* The period next to the date's on its side of the period's centre, and
 * the weight of that neighbour (0 at the centre, 0.5 half way). */
static void period_neighbour(aw_period p, const char *date, int *nb, double *w2)
{
    int y = (date[0] - '0') * 1000 + (date[1] - '0') * 100 +
            (date[2] - '0') * 10 + (date[3] - '0');
    int m = (date[5] - '0') * 10 + (date[6] - '0');
    int d = (date[8] - '0') * 10 + (date[9] - '0');
    int P = aw_period_count(p), k = aw_period_of(p, date);
    double ylen = is_leap(y) ? 366.0 : 365.0;
    double t = doy_of(y, m, d), c = period_centre(p, y, k);
    int after = t >= c;
    int j = after ? (k + 1) % P : (k + P - 1) % P;
    double cj = period_centre(p, y, j);
    if (after && j < k)
        cj += ylen; /* December -> next January */
    if (!after && j > k)
        cj -= ylen;
    *nb = j;
    *w2 = fabs(cj - c) > 0 ? fabs(t - c) / fabs(cj - c) : 0.0;
}

aw_status aw_bl_date_begin(aw_ctx *ctx, aw_bl *bl, const run_state *rs,
                           const char *date, int *have)
{
    *have = 0;
    bl_close_date(bl);
    memset(bl->acc, 0, (bl->n_zones + 1) * sizeof *bl->acc);
    int k = aw_period_of(bl->period, date);
    if (!bl->have[k])
        return AW_OK;
    char pname[AW_PERIOD_NAME_MAX];
    aw_period_name(bl->period, k, pname);
    aw_status st = AW_OK;
    for (int b = 0; b < BL_N && st == AW_OK; b++) {
        char rel[48];
        snprintf(rel, sizeof rel, "%s/%s.tif", pname, pb_names[bl_src[b]]);
        bl->path[b] = aw_path_join(bl->dir, rel);
        st = bl->path[b] ? open_on_grid(ctx, bl->path[b], &rs->grid, &bl->ds[b])
                         : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    /* NDVI changes fast within a month in the growing season: the
     * statistics are interpolated linearly by day of the year between the
     * centre of the date's period and that of the neighbouring period on
     * its side, when that one has a baseline. */
    int nb = -1;
    double w2 = 0;
    period_neighbour(bl->period, date, &nb, &w2);
    if (st == AW_OK && nb >= 0 && bl->have[nb] && w2 > 0) {
        char nname[AW_PERIOD_NAME_MAX];
        aw_period_name(bl->period, nb, nname);
        for (int b = BL_NMIN; b < BL_N && st == AW_OK; b++) {
            char rel[48];
            snprintf(rel, sizeof rel, "%s/%s.tif", nname, pb_names[bl_src[b]]);
            bl->path2[b] = aw_path_join(bl->dir, rel);
            st = bl->path2[b]
                     ? open_on_grid(ctx, bl->path2[b], &rs->grid, &bl->ds2[b])
                     : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        bl->w2 = w2;
    }
    if (st != AW_OK) {
        bl_close_date(bl);
        return st;
    }
    bl->cur = k;
    *have = 1;
    return AW_OK;
}

const void *aw_bl_strip(const aw_bl *bl, int which)
{
    switch (which) {
    case AW_BL_WCHANGE:
        return bl->wchange;
    case AW_BL_VCI:
        return bl->vci;
    case AW_BL_NDVI_Z:
        return bl->z;
    case AW_BL_NDVI_DIFF:
        return bl->diff;
    default:
        return NULL;
    }
}

aw_status aw_bl_rows(aw_ctx *ctx, aw_bl *bl, const run_state *rs, date_work *w,
                     int row0, int nrows, size_t off)
{
    if (bl->cur < 0)
        return AW_OK;
    size_t width = (size_t)rs->grid.width;
    size_t np = width * (size_t)nrows;
    if (np > bl->cap) {
        for (int b = 0; b < BL_N; b++) {
            free(bl->in[b]);
            free(bl->in2[b]);
            bl->in[b] = aw_calloc2(np, sizeof(float));
            bl->in2[b] = aw_calloc2(np, sizeof(float));
        }
        free(bl->wchange);
        free(bl->vci);
        free(bl->z);
        free(bl->diff);
        bl->wchange = aw_calloc2(np, 1);
        bl->vci = aw_calloc2(np, sizeof(float));
        bl->z = aw_calloc2(np, sizeof(float));
        bl->diff = aw_calloc2(np, sizeof(float));
        bl->cap = np;
        int ok = bl->wchange && bl->vci && bl->z && bl->diff;
        for (int b = 0; b < BL_N; b++)
            ok = ok && bl->in[b] && bl->in2[b];
        if (!ok) {
            bl->cap = 0;
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
    }
    for (int b = 0; b < BL_N; b++) {
        aw_status st =
            read_rows(ctx, bl->ds[b], bl->path[b], row0, nrows, bl->in[b]);
        if (st == AW_OK && bl->ds2[b])
            st = read_rows(ctx, bl->ds2[b], bl->path2[b], row0, nrows,
                           bl->in2[b]);
        if (st != AW_OK)
            return st;
        if (!bl->ds2[b])
            continue;
        /* Where the neighbour has no value, the period's own stands. */
        float wt = (float)bl->w2;
        float *a = bl->in[b];
        const float *c = bl->in2[b];
        for (size_t p = 0; p < np; p++)
            if (isfinite(c[p]))
                a[p] = a[p] + wt * (c[p] - a[p]);
    }
    const uint8_t *q = w->qcls + off;
    const uint8_t *wat = w->water + off;
    const float *ndvi =
        w->index[AW_IDX_NDVI] ? w->index[AW_IDX_NDVI] + off : NULL;
    const float *freq = bl->in[BL_FREQ];
    float lost = (float)bl->lost_occ, newo = (float)bl->new_occ;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < np; p++) {
        uint8_t c = 255;
        if (q[p] == AW_Q_VALID && isfinite(freq[p]) && wat[p] != 255) {
            c = 0;
            if (wat[p] == AW_WATER_YES && freq[p] <= newo)
                c = 2;
            else if (wat[p] == AW_WATER_NO && freq[p] >= lost)
                c = 1;
        }
        bl->wchange[p] = c;
    }
    if (ndvi) {
        aw_vci(ndvi, bl->in[BL_NMIN], bl->in[BL_NMAX], np, bl->vci);
        aw_zscore(ndvi, bl->in[BL_NMEAN], bl->in[BL_NSTD], np, bl->z);
        for (size_t p = 0; p < np; p++)
            bl->diff[p] = ndvi[p] - bl->in[BL_NMEDIAN][p];
    }
    else {
        for (size_t p = 0; p < np; p++)
            bl->vci[p] = bl->z[p] = bl->diff[p] = AW_NODATA_F32;
    }
    /* Zones: rows in order, so the sums are the same for any strip
     * height. */
    for (size_t zi = 0; zi < rs->zones.n; zi++) {
        const aw_zone *zn = &rs->zones.z[zi];
        zone_acc *a = &bl->acc[zi];
        for (int r = 0; r < nrows; r++) {
            int gy = row0 + r, zy = gy - zn->y0;
            if (zy < 0 || zy >= zn->h || zn->w <= 0)
                continue;
            double px = aw_grid_cell_area(&rs->grid, gy) * 1e-6;
            int64_t seen = 0, nlost = 0, nnew = 0;
            double expect = 0, row_vci = 0, row_z = 0;
            for (size_t kr = zn->run_at[zy]; kr < zn->run_at[zy + 1]; kr++)
                for (int zx = zn->runs[2 * kr]; zx < zn->runs[2 * kr + 1];
                     zx++) {
                    int gx = zn->x0 + zx;
                    if (gx < 0 || gx >= rs->grid.width)
                        continue;
                    size_t p = (size_t)r * width + (size_t)gx;
                    if (q[p] == AW_Q_VALID && wat[p] != 255) {
                        seen += wat[p] == AW_WATER_YES;
                        nlost += bl->wchange[p] == 1;
                        nnew += bl->wchange[p] == 2;
                        float v = bl->vci[p], zz = bl->z[p];
                        /* VCI only in the growing season (baseline median
                         * NDVI >= baseline.season_ndvi; FAO ASIS too only
                         * averages from the start to the end of the season)
                         * and where the baseline range is wide enough to
                         * mean something: not bare soil, winter or water,
                         * where max - min is noise. */
                        if (isfinite(v) &&
                            bl->in[BL_NMEDIAN][p] >= bl->season_ndvi &&
                            bl->in[BL_NMAX][p] - bl->in[BL_NMIN][p] >=
                                bl->vci_min_range) {
                            a->n_vci++;
                            a->n_stress += v < (float)bl->stress;
                            row_vci += (double)v;
                        }
                        else if (isfinite(bl->in[BL_NMEDIAN][p]) &&
                                 bl->in[BL_NMEDIAN][p] < bl->season_ndvi)
                            a->n_off_season++;
                        if (isfinite(zz)) {
                            a->n_z++;
                            row_z += (double)zz;
                        }
                    }
                    else if (isfinite(freq[p])) {
                        expect += (double)freq[p];
                    }
                }
            a->seen_fx = fx_add(a->seen_fx, (double)seen * px);
            a->expect_fx = fx_add(a->expect_fx, expect * px);
            a->lost_fx = fx_add(a->lost_fx, (double)nlost * px);
            a->new_fx = fx_add(a->new_fx, (double)nnew * px);
            a->sum_vci_fx = fx_add(a->sum_vci_fx, row_vci);
            a->sum_z_fx = fx_add(a->sum_z_fx, row_z);
        }
    }
    return AW_OK;
}

void aw_bl_reduce(aw_bl *bl)
{
    if (bl->cur >= 0)
        aw_par_sum_i64((int64_t *)(void *)bl->acc, bl->n_zones * ACC_WORDS);
}

void aw_bl_date_end(aw_bl *bl, const run_state *rs, aw_zone_stats *stats)
{
    if (bl->cur < 0 || !stats)
        return;
    for (size_t z = 0; z < rs->zones.n; z++) {
        const zone_acc *a = &bl->acc[z];
        aw_zone_stats *s = &stats[z];
        s->has_baseline = 1;
        s->water_filled_km2 = fx_value(a->seen_fx) + fx_value(a->expect_fx);
        s->baseline_median_km2 = bl->median[(size_t)bl->cur * bl->n_zones + z];
        s->water_pct_median =
            s->baseline_median_km2 > 0
                ? 100.0 * s->water_filled_km2 / s->baseline_median_km2
                : (double)NAN;
        s->lost_km2 = fx_value(a->lost_fx);
        s->new_km2 = fx_value(a->new_fx);
        s->n_vci = a->n_vci;
        /* Seen, but none of it in its growing season: no cropland to be
         * stressed, 0 % (as FAO ASIS maps no stress outside the season),
         * so a crop stress episode ends with its season. Not seen: NaN
         * (insufficient data). */
        s->stressed_pct = a->n_vci
                              ? 100.0 * (double)a->n_stress / (double)a->n_vci
                          : a->n_off_season ? 0.0
                                            : (double)NAN;
        s->mean_vci =
            a->n_vci ? fx_value(a->sum_vci_fx) / (double)a->n_vci : (double)NAN;
        s->mean_ndvi_z =
            a->n_z ? fx_value(a->sum_z_fx) / (double)a->n_z : (double)NAN;
    }
}

#define _LARGEFILE64_SOURCE         /* VSIStatBufL is a struct stat64 */
#define _POSIX_C_SOURCE     200809L /* struct stat st_mtim */
/* Every raster read and write of the pipeline: GDAL set-up and error
 * routing, opening inputs, warping a band onto the region grid (GDAL's
 * warper, PROJ underneath), and writing Cloud-Optimized GeoTIFFs (built in
 * memory, then CreateCopy, because the COG driver cannot update in place). */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_http.h>
#include <cpl_string.h>
#include <gdal_utils.h>
#include <cpl_vsi.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include "aralwatch/util.h"
#include "internal.h"
#include "tileread.h"
#include "tilewrite.h"

/* GDAL's last failure on any thread. A read whose failure happened on
 * one of GDAL's decoding threads (GDAL_NUM_THREADS) finds its own thread's
 * last error empty; aw_gdal_error_since quotes this one instead. */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long fail_seq;
static char fail_msg[512];

static void CPL_STDCALL gdal_error_handler(CPLErr cls, CPLErrorNum num,
                                           const char *msg)
{
    aw_ctx *ctx = CPLGetErrorHandlerUserData();
    (void)num;
    if (cls == CE_Failure || cls == CE_Fatal) {
        pthread_mutex_lock(&fail_mu);
        snprintf(fail_msg, sizeof fail_msg, "%s", msg ? msg : "");
        fail_seq++;
        pthread_mutex_unlock(&fail_mu);
    }
    if (!ctx)
        return;
    /* Failures are quoted in our own messages (aw_gdal_last_error), so they
     * are logged at debug level here; warnings are worth seeing. */
    switch (cls) {
    case CE_Warning:
        aw_log(ctx, AW_LOG_WARN, "gdal: %s", msg);
        break;
    case CE_Failure:
    case CE_Fatal:
        aw_log(ctx, AW_LOG_DEBUG, "gdal error: %s", msg);
        break;
    case CE_Debug:
    case CE_None:
        aw_log(ctx, AW_LOG_DEBUG, "gdal: %s", msg);
        break;
    }
}

/* Set by aw_gdal_allow_network, read by aw_gdal_last_error. */
static int network_allowed;

void aw_gdal_init(aw_ctx *ctx)
{
    GDALAllRegister();
    CPLSetErrorHandlerEx(gdal_error_handler, ctx);
    aw_gdal_allow_network(0);
}

/* What any HTTP fetch gets while network access is off. */
static CPLHTTPResult *refuse_fetch(const char *url, CSLConstList options,
                                   GDALProgressFunc progress,
                                   void *progress_arg,
                                   CPLHTTPFetchWriteFunc write, void *write_arg,
                                   void *user)
{
    (void)options;
    (void)progress;
    (void)progress_arg;
    (void)write;
    (void)write_arg;
    (void)user;
    CPLHTTPResult *r = CPLCalloc(1, sizeof *r);
    r->nStatus = 1;
    r->pszErrBuf = CPLStrdup(
        CPLSPrintf("%s: network access is off (allow_network: false)", url));
    CPLError(CE_Failure, CPLE_AppDefined, "%s", r->pszErrBuf);
    return r;
}

/* A name no URL can have: with CPL_VSIL_CURL_ALLOWED_FILENAME set to it,
 * every network file system of GDAL (/vsicurl/ and those built on it:
 * /vsis3/, /vsigs/, /vsiaz/, /vsioss/, /vsiswift/, /vsiwebhdfs/,
 * /vsiadls/) refuses every file before any connection is made. */
#define AW_NO_NETWORK_FILE "/aralwatch: network access is off"

void aw_gdal_allow_network(int allow)
{
    network_allowed = allow;
    if (allow) {
        CPLSetConfigOption("CPL_VSIL_CURL_ALLOWED_FILENAME", NULL);
        CPLHTTPSetFetchCallback(NULL, NULL);
    }
    else {
        CPLSetConfigOption("CPL_VSIL_CURL_ALLOWED_FILENAME",
                           AW_NO_NETWORK_FILE);
        CPLHTTPSetFetchCallback(refuse_fetch, NULL);
    }
}

void aw_gdal_cleanup(void)
{
    CPLSetErrorHandlerEx(CPLDefaultErrorHandler, NULL);
    GDALDestroyDriverManager();
}

/* GDAL's failure count on any thread, without clearing this thread's. */
static unsigned long fail_count(void)
{
    pthread_mutex_lock(&fail_mu);
    unsigned long seq = fail_seq;
    pthread_mutex_unlock(&fail_mu);
    return seq;
}

unsigned long aw_gdal_error_mark(void)
{
    CPLErrorReset();
    return fail_count();
}

const char *aw_gdal_error_since(unsigned long mark)
{
    const char *m = aw_gdal_last_error();
    if (*m)
        return m;
    /* Said as what it is: with several reads at once (bands of a scene
     * in parallel) it may be another file's. */
    static _Thread_local char buf[sizeof fail_msg + 64];
    pthread_mutex_lock(&fail_mu);
    if (fail_seq != mark)
        snprintf(buf, sizeof buf,
                 "GDAL's last error, on one of its threads: %s", fail_msg);
    else
        buf[0] = '\0';
    pthread_mutex_unlock(&fail_mu);
    return buf;
}

const char *aw_gdal_last_error(void)
{
    const char *m = CPLGetLastErrorMsg();
    if (!m)
        return "";
    /* A path that needed the network failed because it is off: say so. */
    static const char *const net[] = {"/vsicurl",    "/vsis3",   "/vsigs",
                                      "/vsiaz",      "/vsioss",  "/vsiswift",
                                      "/vsiwebhdfs", "/vsiadls", "http://",
                                      "https://",    "ftp://"};
    if (!network_allowed) {
        for (size_t i = 0; i < sizeof net / sizeof net[0]; i++) {
            if (strstr(m, net[i])) {
                static _Thread_local char buf[1024];
                snprintf(buf, sizeof buf,
                         "%s (GDAL network access is off; the config's "
                         "allow_network: true turns it on)",
                         m);
                return buf;
            }
        }
    }
    return m;
}

/* GDAL progress callback that only answers "stop" once a cancel was
 * requested (SIGINT/SIGTERM). */
static int CPL_STDCALL cancel_progress(double done, const char *msg, void *arg)
{
    (void)done;
    (void)msg;
    (void)arg;
    return !aw_cancel_requested();
}

aw_status aw_open_raster(aw_ctx *ctx, const char *path, GDALDatasetH *ds)
{
    CPLErrorReset();
    GDALDatasetH h =
        GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!h) {
        const char *why = aw_gdal_last_error();
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot open as a raster%s%s",
                       path, why[0] ? ": " : "", why);
    }
    if (GDALGetRasterCount(h) < 1 || GDALGetRasterXSize(h) < 1 ||
        GDALGetRasterYSize(h) < 1) {
        GDALClose(h);
        return aw_fail(ctx, AW_ERR_INPUT, "%s: raster has no pixels or bands",
                       path);
    }
    *ds = h;
    return AW_OK;
}

OGRSpatialReferenceH aw_srs_from_user(aw_ctx *ctx, const char *text,
                                      const char *what)
{
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (!srs) {
        aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        return NULL;
    }
    CPLErrorReset();
    if (OSRSetFromUserInput(srs, text) != OGRERR_NONE) {
        aw_fail(ctx, AW_ERR_PROJ, "%s: cannot interpret CRS '%s'%s%s", what,
                text, aw_gdal_last_error()[0] ? ": " : "",
                aw_gdal_last_error());
        OSRDestroySpatialReference(srs);
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    return srs;
}

aw_status aw_transform_bounds(aw_ctx *ctx, OGRSpatialReferenceH src,
                              OGRSpatialReferenceH dst, const double in[4],
                              double out[4])
{
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(src, dst);
    if (!ct)
        return aw_fail(ctx, AW_ERR_PROJ,
                       "no coordinate transformation between the CRSs: %s",
                       aw_gdal_last_error());
    int ok = OCTTransformBounds(ct, in[0], in[1], in[2], in[3], &out[0],
                                &out[1], &out[2], &out[3], 21);
    OCTDestroyCoordinateTransformation(ct);
    if (!ok || !isfinite(out[0]) || !isfinite(out[1]) || !isfinite(out[2]) ||
        !isfinite(out[3]))
        return aw_fail(ctx, AW_ERR_PROJ, "cannot transform bounds: %s",
                       aw_gdal_last_error());
    return AW_OK;
}

static const char *resampling_name(aw_resampling rs)
{
    switch (rs) {
    case AW_RESAMPLE_NEAREST:
        return "near";
    case AW_RESAMPLE_BILINEAR:
        return "bilinear";
    case AW_RESAMPLE_CUBIC:
        return "cubic";
    case AW_RESAMPLE_AVERAGE:
        return "average";
    }
    return "near";
}

/* Warp one band of src onto the grid into a MEM dataset of type `type`,
 * nodata and uncovered pixels NaN. */
static aw_status warp_to_mem(aw_ctx *ctx, const aw_band_src *src,
                             const aw_grid *grid, aw_resampling rs, int threads,
                             GDALDataType type, GDALDatasetH *out)
{
    GDALDatasetH in = NULL;
    aw_status st = aw_open_raster(ctx, src->path, &in);
    if (st != AW_OK)
        return st;
    if (src->band < 1 || src->band > GDALGetRasterCount(in)) {
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: has %d band(s), band %d asked",
                     src->path, GDALGetRasterCount(in), src->band);
        GDALClose(in);
        return st;
    }
    if (GDALGetProjectionRef(in) == NULL || GDALGetProjectionRef(in)[0] == 0) {
        st = aw_fail(ctx, AW_ERR_INPUT,
                     "%s: has no CRS, so it cannot be placed on the region "
                     "grid",
                     src->path);
        GDALClose(in);
        return st;
    }

    /* Select the band (and override nodata) through an in-memory VRT. */
    char bandbuf[32], ndbuf[64];
    snprintf(bandbuf, sizeof bandbuf, "%d", src->band);
    char **targv = NULL;
    targv = CSLAddString(targv, "-of");
    targv = CSLAddString(targv, "VRT");
    targv = CSLAddString(targv, "-b");
    targv = CSLAddString(targv, bandbuf);
    if (src->has_nodata) {
        snprintf(ndbuf, sizeof ndbuf, "%.17g", src->nodata);
        targv = CSLAddString(targv, "-a_nodata");
        targv = CSLAddString(targv, ndbuf);
    }
    GDALTranslateOptions *topt = GDALTranslateOptionsNew(targv, NULL);
    CSLDestroy(targv);
    int usage_err = 0;
    CPLErrorReset();
    GDALDatasetH vrt = GDALTranslate("", in, topt, &usage_err);
    GDALTranslateOptionsFree(topt);
    if (!vrt) {
        st = aw_fail(ctx, AW_ERR_INPUT, "%s: cannot select band %d: %s",
                     src->path, src->band, aw_gdal_last_error());
        GDALClose(in);
        return st;
    }

    char te[4][40], ts[2][24], thr[40];
    double xmin = grid->gt[0], ymax = grid->gt[3];
    double xmax = xmin + grid->gt[1] * grid->width;
    double ymin = ymax + grid->gt[5] * grid->height;
    snprintf(te[0], sizeof te[0], "%.17g", xmin);
    snprintf(te[1], sizeof te[1], "%.17g", ymin);
    snprintf(te[2], sizeof te[2], "%.17g", xmax);
    snprintf(te[3], sizeof te[3], "%.17g", ymax);
    snprintf(ts[0], sizeof ts[0], "%d", grid->width);
    snprintf(ts[1], sizeof ts[1], "%d", grid->height);
    if (threads > 0)
        snprintf(thr, sizeof thr, "NUM_THREADS=%d", threads);
    else
        snprintf(thr, sizeof thr, "NUM_THREADS=ALL_CPUS");
    const char *wargv[] = {
        "-of",        "MEM",
        "-t_srs",     grid->wkt,
        "-te",        te[0],
        te[1],        te[2],
        te[3],        "-ts",
        ts[0],        ts[1],
        "-r",         resampling_name(rs),
        "-ot",        type == GDT_Float64 ? "Float64" : "Float32",
        "-dstnodata", "nan",
        "-wo",        "INIT_DEST=NO_DATA",
        "-wo",        thr,
        "-multi",     NULL};
    char **wl = NULL;
    for (size_t i = 0; wargv[i]; i++)
        wl = CSLAddString(wl, wargv[i]);
    GDALWarpAppOptions *wopt = GDALWarpAppOptionsNew(wl, NULL);
    CSLDestroy(wl);
    GDALWarpAppOptionsSetProgress(wopt, cancel_progress, NULL);
    unsigned long mark = aw_gdal_error_mark();
    GDALDatasetH mem = GDALWarp("", NULL, 1, &vrt, wopt, &usage_err);
    GDALWarpAppOptionsFree(wopt);
    GDALClose(vrt);
    GDALClose(in);
    if (!mem && aw_cancel_requested())
        return aw_fail(ctx, AW_ERR_CANCELLED, "cancelled");
    if (!mem)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s band %d: warping onto the region grid failed: %s",
                       src->path, src->band, aw_gdal_error_since(mark));
    *out = mem;
    return AW_OK;
}

/* Input datasets stay open for the whole date, so a block decoded for
 * one strip is still there for the next (input tiles are usually taller
 * than a strip): in GDAL's block cache, or in the tile reader's row of
 * tiles (tileread.c) for the GeoTIFFs aralwatch decodes itself. The main
 * thread fills the cache; a slot is then used by one thread at a time
 * (the bands of one file are read one after the other). */
#define AW_OPEN_CACHE 64
static struct {
    char *path;
    GDALDatasetH ds;
    aw_tileread *tr; /* NULL: GDAL decodes it */
    char why[200];   /* why GDAL decodes it */
    int logged;      /* which reader: said in the debug log */
} open_cache[AW_OPEN_CACHE];
static GIntBig held;       /* what the tile readers may hold, bytes */
static GIntBig cache_base; /* GDAL's cache size before they were opened */

/* The tile reader for a GeoTIFF whose bands all have one of the types it
 * decodes; AW_GDAL_DECODE=1 leaves every input to GDAL (the tests compare
 * the two). */
static aw_tileread *direct_reader(const char *path, GDALDatasetH ds, char *why,
                                  size_t whylen)
{
    const char *off = getenv("AW_GDAL_DECODE");
    if (off && strcmp(off, "1") == 0) {
        snprintf(why, whylen, "AW_GDAL_DECODE=1");
        return NULL;
    }
    GDALDriverH drv = GDALGetDatasetDriver(ds);
    int n = GDALGetRasterCount(ds);
    if (!drv || strcmp(GDALGetDriverShortName(drv), "GTiff") != 0 ||
        strncmp(path, "/vsi", 4) == 0 || n < 1) {
        snprintf(why, whylen, "not a GeoTIFF file on disk");
        return NULL;
    }
    GDALDataType t = GDALGetRasterDataType(GDALGetRasterBand(ds, 1));
    for (int b = 2; b <= n; b++)
        if (GDALGetRasterDataType(GDALGetRasterBand(ds, b)) != t) {
            snprintf(why, whylen, "bands of several types");
            return NULL;
        }
    aw_tr_type type = t == GDT_Byte     ? AW_TR_U8
                      : t == GDT_UInt16 ? AW_TR_U16
                      : t == GDT_Int16  ? AW_TR_I16
                                        : AW_TR_F32;
    if (t != GDT_Byte && t != GDT_UInt16 && t != GDT_Int16 &&
        t != GDT_Float32) {
        snprintf(why, whylen, "%s samples", GDALGetDataTypeName(t));
        return NULL;
    }
    return aw_tileread_open(path, GDALGetRasterXSize(ds),
                            GDALGetRasterYSize(ds), n, type, why, whylen);
}

aw_status aw_gdal_verify_input(aw_ctx *ctx, const char *path)
{
    for (size_t i = 0; i < AW_OPEN_CACHE; i++) {
        if (!open_cache[i].path || !open_cache[i].tr ||
            strcmp(open_cache[i].path, path) != 0)
            continue;
        char why[200];
        int rc = aw_tileread_verify(open_cache[i].tr, why, sizeof why);
        if (rc < 0)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%s)", path);
        if (rc > 0)
            return aw_fail(ctx, AW_ERR_INPUT, "%s: %s", path, why);
    }
    return AW_OK;
}

/* The slot of `path`, opened if need be; -1 when it cannot be. */
static int open_slot(const char *path)
{
    size_t free_slot = AW_OPEN_CACHE;
    for (size_t i = 0; i < AW_OPEN_CACHE; i++) {
        if (open_cache[i].path && strcmp(open_cache[i].path, path) == 0)
            return (int)i;
        if (!open_cache[i].path && free_slot == AW_OPEN_CACHE)
            free_slot = i;
    }
    if (omp_in_parallel() || free_slot == AW_OPEN_CACHE)
        return -1; /* only the main thread fills the cache */
    GDALDatasetH ds =
        GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return -1;
    open_cache[free_slot].path = aw_strdup(path);
    if (!open_cache[free_slot].path) {
        GDALClose(ds);
        return -1;
    }
    open_cache[free_slot].ds = ds;
    open_cache[free_slot].why[0] = '\0';
    open_cache[free_slot].logged = 0;
    open_cache[free_slot].tr = direct_reader(
        path, ds, open_cache[free_slot].why, sizeof open_cache[free_slot].why);
    if (open_cache[free_slot].tr) {
        /* The rows of tiles the readers keep take the place of the input
         * blocks GDAL's cache would hold: one budget for both, at most
         * half of it for the readers (a region across many scenes keeps
         * a row of each band of each). */
        if (!held)
            cache_base = GDALGetCacheMax64();
        held += (GIntBig)aw_tileread_held_max(open_cache[free_slot].tr);
        GIntBig mine = held < cache_base / 2 ? held : cache_base / 2;
        aw_tileread_set_budget((size_t)mine);
        GDALSetCacheMax64(cache_base - mine);
    }
    return (int)free_slot;
}

/* Which reader decodes the input in `slot`, once, in the debug log. */
static void say_reader(aw_ctx *ctx, int slot)
{
    if (open_cache[slot].logged)
        return;
    open_cache[slot].logged = 1;
    if (open_cache[slot].tr)
        aw_log(ctx, AW_LOG_DEBUG, "%s: tiles decoded by aralwatch's threads",
               open_cache[slot].path);
    else
        aw_log(ctx, AW_LOG_DEBUG, "%s: decoded by GDAL (%s)",
               open_cache[slot].path, open_cache[slot].why);
}

void aw_gdal_prime_input(aw_ctx *ctx, const char *path)
{
    if (strncmp(path, "/vsi", 4) == 0 && strncmp(path, "/vsizip/", 8) != 0)
        return;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    int slot = open_slot(path);
    CPLPopErrorHandler();
    if (slot >= 0)
        say_reader(ctx, slot);
}

void aw_gdal_close_inputs(void)
{
    for (size_t i = 0; i < AW_OPEN_CACHE; i++) {
        if (open_cache[i].path) {
            GDALClose(open_cache[i].ds);
            aw_tileread_close(open_cache[i].tr);
            free(open_cache[i].path);
            open_cache[i].path = NULL;
            open_cache[i].ds = NULL;
            open_cache[i].tr = NULL;
        }
    }
    if (held) {
        GDALSetCacheMax64(cache_base);
        aw_tileread_set_budget(SIZE_MAX);
        held = 0;
    }
}

/* Whether one pixel of x lies at offset `off` (in pixels) of a whole
 * number, to a millionth of a pixel. */
static int whole(double x, long *out)
{
    double r = floor(x + 0.5);
    if (fabs(x - r) > 1e-6 || fabs(r) > 1e9)
        return 0;
    *out = (long)r;
    return 1;
}

/* The fast path: a source already on the grid's lattice (same CRS, same
 * pixel size, whole-pixel offset) is read as a window, no warper: every
 * resampling method gives the source pixel itself at pixel centres.
 * Float32 comes out in reflectance: the source's scale and offset are
 * applied in the pass that turns nodata into NaN. Returns 1 when it read,
 * 0 when
 * the source is not aligned (warp it), -1 on a read error and -2 out of
 * memory (both reported in ctx). */
static int read_aligned(aw_ctx *ctx, const aw_band_src *src,
                        const aw_grid *grid, GDALDataType type, int threads,
                        void **out)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    int slot = open_slot(src->path);
    CPLPopErrorHandler();
    if (slot < 0)
        return 0; /* the warp path reports why */
    GDALDatasetH in = open_cache[slot].ds;
    double gt[6];
    const char *wkt = GDALGetProjectionRef(in);
    long x0 = 0, y0 = 0;
    int ok = src->band >= 1 && src->band <= GDALGetRasterCount(in) && wkt &&
             wkt[0] && GDALGetGeoTransform(in, gt) == CE_None && gt[2] == 0.0 &&
             gt[4] == 0.0 && grid->gt[2] == 0.0 && grid->gt[4] == 0.0 &&
             fabs(gt[1] - grid->gt[1]) <= 1e-9 * fabs(grid->gt[1]) &&
             fabs(gt[5] - grid->gt[5]) <= 1e-9 * fabs(grid->gt[5]) &&
             whole((grid->gt[0] - gt[0]) / gt[1], &x0) &&
             whole((grid->gt[3] - gt[3]) / gt[5], &y0);
    if (ok) {
        OGRSpatialReferenceH a = OSRNewSpatialReference(wkt);
        OGRSpatialReferenceH b = OSRNewSpatialReference(grid->wkt);
        ok = a && b && OSRIsSame(a, b);
        OSRDestroySpatialReference(a);
        OSRDestroySpatialReference(b);
    }
    if (!ok) {
        return 0;
    }
    GDALRasterBandH band = GDALGetRasterBand(in, src->band);
    int has_nd = 0;
    double nd = GDALGetRasterNoDataValue(band, &has_nd);
    if (src->has_nodata) {
        has_nd = 1;
        nd = src->nodata;
    }
    size_t W = (size_t)grid->width, H = (size_t)grid->height;
    size_t esz = (size_t)GDALGetDataTypeSizeBytes(type);
    void *buf = aw_malloc2(W * H, esz);
    if (!buf) {
        aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%zu pixels)", W * H);
        return -2;
    }
    int sw = GDALGetRasterXSize(in), sh = GDALGetRasterYSize(in);
    /* The part of the grid window inside the source; NaN elsewhere. */
    long ax = x0 < 0 ? 0 : x0, ay = y0 < 0 ? 0 : y0;
    long bx = x0 + (long)W > sw ? sw : x0 + (long)W;
    long by = y0 + (long)H > sh ? sh : y0 + (long)H;
    int inside = ax < bx && ay < by;
    if (!inside || ax != x0 || ay != y0 || bx != x0 + (long)W ||
        by != y0 + (long)H) {
        /* Partly outside the source (rare: a strip over a scene's edge). */
        size_t n = W * H;
        if (type == GDT_Float64) {
            double *d = buf;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++)
                d[i] = NAN;
        }
        else {
            float *f = buf;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++)
                f[i] = NAN;
        }
    }
    aw_tileread *tr = open_cache[slot].tr;
    if (!omp_in_parallel())
        say_reader(ctx, slot);
    if (inside && tr) {
        size_t off = ((size_t)(ay - y0) * W + (size_t)(ax - x0)) * esz;
        aw_tr_conv conv = {type == GDT_Float64, has_nd, nd, (float)src->scale,
                           (float)src->offset};
        char why[200];
        int rc = aw_tileread_window(
            tr, src->band, (int)ax, (int)ay, (int)(bx - ax), (int)(by - ay),
            &conv, (char *)buf + off, W, threads, why, sizeof why);
        if (rc == 0) {
            *out = buf;
            return 1;
        }
        if (rc < 0) {
            free(buf);
            aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%s)", src->path);
            return -2;
        }
        /* GDAL reads it, or says what is wrong with it. */
        aw_log(ctx, AW_LOG_DEBUG, "%s band %d rows %ld-%ld: read by GDAL (%s)",
               src->path, src->band, ay, by, why);
    }
    if (inside) {
        size_t off = ((size_t)(ay - y0) * W + (size_t)(ax - x0)) * esz;
        unsigned long mark = aw_gdal_error_mark();
        CPLErr e =
            GDALRasterIO(band, GF_Read, (int)ax, (int)ay, (int)(bx - ax),
                         (int)(by - ay), (char *)buf + off, (int)(bx - ax),
                         (int)(by - ay), type, (int)esz, (int)(W * esz));
        if (e != CE_None) {
            aw_fail(ctx, AW_ERR_INPUT, "%s band %d: read failed: %s", src->path,
                    src->band, aw_gdal_error_since(mark));
            free(buf);
            return -1;
        }
        /* Nodata compared in the source's value space, as the warper
         * does; NaN stays NaN through the affine map. */
        size_t n = W * H;
        if (type == GDT_Float64) {
            double *d = buf;
            if (has_nd) {
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < n; i++)
                    if (d[i] == nd)
                        d[i] = NAN;
            }
        }
        else {
            float *f = buf;
            const float ndf = (float)nd;
            const float scale = (float)src->scale, offset = (float)src->offset;
            if (has_nd) {
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < n; i++)
                    f[i] = f[i] == ndf ? NAN : f[i] * scale + offset;
            }
            else {
#pragma omp parallel for schedule(static)
                for (size_t i = 0; i < n; i++)
                    f[i] = f[i] * scale + offset;
            }
        }
    }
    *out = buf;
    return 1;
}

/* Warp and read one band into a new buffer of `type`: Float32 in
 * reflectance (the source's scale and offset applied), Float64 as stored
 * (quality bands). */
static aw_status warp_read(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, aw_resampling rs, int threads,
                           GDALDataType type, void **out)
{
    int fast = read_aligned(ctx, src, grid, type, threads, out);
    if (fast == 1)
        return AW_OK;
    if (fast < 0) /* -2: out of memory; -1: the read failed */
        return fast == -2 ? AW_ERR_NOMEM : AW_ERR_INPUT;
    GDALDatasetH mem = NULL;
    aw_status st = warp_to_mem(ctx, src, grid, rs, threads, type, &mem);
    if (st != AW_OK)
        return st;
    size_t n = (size_t)grid->width * (size_t)grid->height;
    void *buf = aw_malloc2(n, (size_t)GDALGetDataTypeSizeBytes(type));
    if (!buf) {
        GDALClose(mem);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory (%zu pixels)", n);
    }
    CPLErr e =
        GDALRasterIO(GDALGetRasterBand(mem, 1), GF_Read, 0, 0, grid->width,
                     grid->height, buf, grid->width, grid->height, type, 0, 0);
    GDALClose(mem);
    if (e != CE_None) {
        free(buf);
        return aw_fail(ctx, AW_ERR_INPUT, "%s band %d: read failed: %s",
                       src->path, src->band, aw_gdal_last_error());
    }
    if (type == GDT_Float32) {
        /* NaN stays NaN through the affine map. */
        float *f = buf;
        const float scale = (float)src->scale, offset = (float)src->offset;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            f[i] = f[i] * scale + offset;
    }
    *out = buf;
    return AW_OK;
}

aw_status aw_warp_band_f32(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, aw_resampling rs, int threads,
                           float **out)
{
    void *raw = NULL;
    aw_status st = warp_read(ctx, src, grid, rs, threads, GDT_Float32, &raw);
    if (st == AW_OK)
        *out = raw;
    return st;
}

aw_status aw_warp_band_f64(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, aw_resampling rs, int threads,
                           double **out)
{
    void *raw = NULL;
    aw_status st = warp_read(ctx, src, grid, rs, threads, GDT_Float64, &raw);
    if (st == AW_OK)
        *out = raw;
    return st;
}

aw_status aw_check_overlap(aw_ctx *ctx, const aw_band_src *src,
                           const aw_grid *grid, int rows[2])
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, src->path, &ds);
    if (st != AW_OK)
        return st;
    double gt[6];
    const char *wkt = GDALGetProjectionRef(ds);
    if (GDALGetGeoTransform(ds, gt) != CE_None || !wkt || !wkt[0]) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: has no geotransform or no CRS, so it cannot be "
                       "placed on the region grid",
                       src->path);
    }
    int w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
    double xs[4] = {gt[0], gt[0] + gt[1] * w, gt[0] + gt[2] * h,
                    gt[0] + gt[1] * w + gt[2] * h};
    double ys[4] = {gt[3], gt[3] + gt[4] * w, gt[3] + gt[5] * h,
                    gt[3] + gt[4] * w + gt[5] * h};
    double in[4] = {fmin(fmin(xs[0], xs[1]), fmin(xs[2], xs[3])),
                    fmin(fmin(ys[0], ys[1]), fmin(ys[2], ys[3])),
                    fmax(fmax(xs[0], xs[1]), fmax(xs[2], xs[3])),
                    fmax(fmax(ys[0], ys[1]), fmax(ys[2], ys[3]))};
    OGRSpatialReferenceH s = OSRNewSpatialReference(wkt);
    OGRSpatialReferenceH t = OSRNewSpatialReference(grid->wkt);
    OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(t, OAMS_TRADITIONAL_GIS_ORDER);
    double out[4];
    st = aw_transform_bounds(ctx, s, t, in, out);
    OSRDestroySpatialReference(s);
    OSRDestroySpatialReference(t);
    GDALClose(ds);
    if (st != AW_OK)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: its footprint cannot be expressed in the region "
                       "CRS: %s",
                       src->path, aw_ctx_errmsg(ctx));
    double gx0 = grid->gt[0], gx1 = grid->gt[0] + grid->gt[1] * grid->width;
    double gy1 = grid->gt[3], gy0 = grid->gt[3] + grid->gt[5] * grid->height;
    if (out[2] <= gx0 || out[0] >= gx1 || out[3] <= gy0 || out[1] >= gy1)
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: does not overlap the region (its footprint "
                       "%.3f..%.3f x %.3f..%.3f, the region %.3f..%.3f x "
                       "%.3f..%.3f in the region CRS)",
                       src->path, out[0], out[2], out[1], out[3], gx0, gx1, gy0,
                       gy1);
    if (rows) {
        /* The grid rows its footprint's bounding box spans. */
        double r0 = floor((out[3] - grid->gt[3]) / grid->gt[5]);
        double r1 = ceil((out[1] - grid->gt[3]) / grid->gt[5]);
        rows[0] = (int)fmax(0.0, fmin(r0, (double)grid->height));
        rows[1] = (int)fmax(0.0, fmin(r1, (double)grid->height));
    }
    return AW_OK;
}

double aw_src_pixel_in_grid(const aw_band_src *src, const aw_grid *grid)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpen(src->path, GA_ReadOnly);
    CPLPopErrorHandler();
    double gt[6], ratio = 1.0;
    const char *wkt = ds ? GDALGetProjectionRef(ds) : NULL;
    if (ds && wkt && wkt[0] && GDALGetGeoTransform(ds, gt) == CE_None) {
        OGRSpatialReferenceH s = OSRNewSpatialReference(wkt);
        OGRSpatialReferenceH t = OSRNewSpatialReference(grid->wkt);
        OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
        OSRSetAxisMappingStrategy(t, OAMS_TRADITIONAL_GIS_ORDER);
        OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(s, t);
        /* One source pixel at the raster's centre, in grid pixels. */
        double cx = GDALGetRasterXSize(ds) / 2.0,
               cy = GDALGetRasterYSize(ds) / 2.0;
        double x[3] = {gt[0] + cx * gt[1] + cy * gt[2],
                       gt[0] + (cx + 1) * gt[1] + cy * gt[2],
                       gt[0] + cx * gt[1] + (cy + 1) * gt[2]};
        double y[3] = {gt[3] + cx * gt[4] + cy * gt[5],
                       gt[3] + (cx + 1) * gt[4] + cy * gt[5],
                       gt[3] + cx * gt[4] + (cy + 1) * gt[5]};
        int ok[3] = {0, 0, 0};
        if (ct && OCTTransformEx(ct, 3, x, y, NULL, ok) && ok[0] && ok[1] &&
            ok[2]) {
            double dx = hypot(x[1] - x[0], y[1] - y[0]) / fabs(grid->gt[1]);
            double dy = hypot(x[2] - x[0], y[2] - y[0]) / fabs(grid->gt[5]);
            ratio = fmax(dx, dy);
        }
        if (ct)
            OCTDestroyCoordinateTransformation(ct);
        OSRDestroySpatialReference(s);
        OSRDestroySpatialReference(t);
    }
    if (ds)
        GDALClose(ds);
    return isfinite(ratio) && ratio > 0 ? ratio : 1.0;
}

/* One DEM derivative ("slope" or "hillshade") of the warped DEM into a new
 * float buffer, NaN where GDAL gives its nodata. */
static aw_status dem_product(aw_ctx *ctx, GDALDatasetH dem, const char *what,
                             char **argv, const aw_grid *grid, float **out)
{
    GDALDEMProcessingOptions *o = GDALDEMProcessingOptionsNew(argv, NULL);
    int usage = 0;
    CPLErrorReset();
    GDALDatasetH ds =
        o ? GDALDEMProcessing("", dem, what, NULL, o, &usage) : NULL;
    GDALDEMProcessingOptionsFree(o);
    if (!ds)
        return aw_fail(ctx, AW_ERR_INPUT, "DEM %s failed: %s", what,
                       aw_gdal_last_error());
    size_t n = (size_t)grid->width * (size_t)grid->height;
    float *buf = aw_calloc2(n, sizeof *buf);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    CPLErr e =
        buf ? GDALRasterIO(b, GF_Read, 0, 0, grid->width, grid->height, buf,
                           grid->width, grid->height, GDT_Float32, 0, 0)
            : CE_Failure;
    int has_nd = 0;
    double nd = GDALGetRasterNoDataValue(b, &has_nd);
    GDALClose(ds);
    if (e != CE_None) {
        free(buf);
        return aw_fail(ctx, AW_ERR_NOMEM, "DEM %s: cannot read", what);
    }
    if (has_nd)
        for (size_t i = 0; i < n; i++)
            if ((double)buf[i] == nd)
                buf[i] = NAN;
    *out = buf;
    return AW_OK;
}

aw_status aw_dem_terrain(aw_ctx *ctx, const char *dem_path, const aw_grid *grid,
                         double sun_azimuth, double sun_elevation, int threads,
                         float **slope_pct, float **hillshade)
{
    aw_band_src src;
    memset(&src, 0, sizeof src);
    src.present = 1;
    src.path = (char *)(uintptr_t)dem_path;
    src.band = 1;
    src.scale = 1.0;
    GDALDatasetH dem = NULL;
    aw_status st = warp_to_mem(ctx, &src, grid, AW_RESAMPLE_BILINEAR, threads,
                               GDT_Float32, &dem);
    if (st != AW_OK)
        return st;
    /* Degrees of a geographic grid to metres of elevation units. */
    const char *scale = grid->geographic ? "111120" : "1";
    char az[32], alt[32];
    snprintf(az, sizeof az, "%.6f", sun_azimuth);
    snprintf(alt, sizeof alt, "%.6f", sun_elevation);
    char *slope_argv[] = {
        "-of", "MEM", "-p", "-compute_edges", "-s", (char *)(uintptr_t)scale,
        NULL};
    char *hill_argv[] = {"-of",
                         "MEM",
                         "-az",
                         az,
                         "-alt",
                         alt,
                         "-compute_edges",
                         "-s",
                         (char *)(uintptr_t)scale,
                         NULL};
    st = dem_product(ctx, dem, "slope", slope_argv, grid, slope_pct);
    if (st == AW_OK)
        st = dem_product(ctx, dem, "hillshade", hill_argv, grid, hillshade);
    if (st != AW_OK) {
        free(*slope_pct);
        *slope_pct = NULL;
    }
    GDALClose(dem);
    return st;
}

aw_status aw_sha256_vsi(aw_ctx *ctx, const char *path, char hex[65],
                        long long *bytes, int *damaged)
{
    if (damaged)
        *damaged = 0;
    if (strncmp(path, "/vsi", 4) != 0) {
        struct stat sb;
        if (bytes)
            *bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
        return aw_sha256_file(ctx, path, hex);
    }
    VSILFILE *f = VSIFOpenL(path, "rb");
    if (!f)
        return aw_fail(ctx, AW_ERR_INPUT, "%s: cannot open", path);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) {
        VSIFCloseL(f);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[1 << 16];
    size_t got;
    long long total = 0;
    /* A zip member that fails its CRC or does not inflate is reported by
     * GDAL (CE_Failure on this thread) while the read goes on: GDAL's
     * raster drivers may then decode its bytes without an error. */
    CPLErrorReset();
    while ((got = VSIFReadL(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, got);
        total += (long long)got;
    }
    VSIFCloseL(f);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned outlen = 0;
    EVP_DigestFinal_ex(md, out, &outlen);
    EVP_MD_CTX_free(md);
    VSIStatBufL sb;
    int failed = CPLGetLastErrorType() == CE_Failure;
    int short_read =
        !failed && VSIStatL(path, &sb) == 0 && (long long)sb.st_size != total;
    if (failed || short_read) {
        if (damaged)
            *damaged = 1;
        if (failed)
            return aw_fail(ctx, AW_ERR_INPUT, "%s: damaged: %s", path,
                           aw_gdal_last_error());
        return aw_fail(ctx, AW_ERR_INPUT,
                       "%s: damaged: %lld bytes read of %lld", path, total,
                       (long long)sb.st_size);
    }
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < outlen; i++) {
        hex[2 * i] = digits[out[i] >> 4];
        hex[2 * i + 1] = digits[out[i] & 15];
    }
    hex[2 * outlen] = '\0';
    if (bytes)
        *bytes = total;
    return AW_OK;
}

int aw_file_signature(const char *path, long long *size, long long *mtime_ns)
{
    if (strncmp(path, "/vsi", 4) != 0) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return -1;
        *size = (long long)sb.st_size;
        *mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL +
                    (long long)sb.st_mtim.tv_nsec;
        return 0;
    }
    VSIStatBufL sb;
    if (VSIStatL(path, &sb) != 0)
        return -1;
    *size = (long long)sb.st_size;
    *mtime_ns = (long long)sb.st_mtime * 1000000000LL;
    return 0;
}

/* ---- Writing ---- */

static char **creation_options(const aw_write_opts *wo, int is_class,
                               int for_cog)
{
    char **o = NULL;
    char buf[64];
    const char *compress = wo->compress ? wo->compress : "DEFLATE";
    o = CSLSetNameValue(o, "COMPRESS", compress);
    if (strcmp(compress, "NONE") != 0) {
        /* COG: YES picks the floating-point predictor for float data.
         * GTiff needs the number: 3 (floating point) for float32, 2
         * (horizontal differencing) for integers. */
        if (for_cog)
            o = CSLSetNameValue(o, "PREDICTOR", "YES");
        else
            o = CSLSetNameValue(o, "PREDICTOR", is_class ? "2" : "3");
    }
    if (wo->level > 0) {
        /* The COG driver has one LEVEL; GTiff one per codec. */
        const char *key = for_cog                            ? "LEVEL"
                          : strcmp(compress, "ZSTD") == 0    ? "ZSTD_LEVEL"
                          : strcmp(compress, "DEFLATE") == 0 ? "ZLEVEL"
                                                             : NULL;
        snprintf(buf, sizeof buf, "%d", wo->level);
        if (key)
            o = CSLSetNameValue(o, key, buf);
    }
    snprintf(buf, sizeof buf, "%d", wo->blocksize);
    if (for_cog) {
        o = CSLSetNameValue(o, "BLOCKSIZE", buf);
        o = CSLSetNameValue(o, "OVERVIEW_RESAMPLING",
                            is_class ? "NEAREST" : "AVERAGE");
        o = CSLSetNameValue(o, "BIGTIFF", "IF_SAFER");
    }
    else {
        o = CSLSetNameValue(o, "TILED", "YES");
        o = CSLSetNameValue(o, "BLOCKXSIZE", buf);
        o = CSLSetNameValue(o, "BLOCKYSIZE", buf);
        o = CSLSetNameValue(o, "BIGTIFF", "IF_SAFER");
    }
    if (wo->threads > 0) {
        snprintf(buf, sizeof buf, "%d", wo->threads);
        o = CSLSetNameValue(o, "NUM_THREADS", buf);
    }
    else {
        o = CSLSetNameValue(o, "NUM_THREADS", "ALL_CPUS");
    }
    return o;
}

/* A raster written strip by strip. DEFLATE and ZSTD outputs go to
 * aralwatch's tile encoder (tilewrite.c), which also makes a COG's
 * overviews as the rows stream. Otherwise the strips go straight into the
 * final tiled GeoTIFF (GDAL compresses finished tiles on its worker
 * threads), or, for a COG that GDAL encodes (LZW, none, AW_GDAL_ENCODE=1),
 * into an
 * uncompressed tiled GeoTIFF next to the output, from which close() builds
 * the overviews and makes the COG, and which it then removes. Memory
 * stays at one row of tiles (per level) either way. */
struct aw_rwriter {
    char *path, *tmp;
    GDALDatasetH ds;
    GDALDataType type; /* of the file */
    int width, height;
    int is_class;
    double scale; /* int16: stored = round(value / scale) */
    aw_write_opts wo;
    /* Shared (MPI runs, wo.shared): the strip file is made by one rank
     * with every tile in place (uncompressed, so each tile has a fixed
     * offset and size); every rank then writes its rows straight into the
     * tiles (pwrite), and one rank makes the output from it exactly as a
     * single process does from its own strip file. */
    int fd;
    int bx, by, ntx, nty;
    size_t px;
    unsigned long long *offs; /* [ty * ntx + tx]: byte offset of a tile */
    /* A DEFLATE or ZSTD GeoTIFF or COG (not shared): GDAL makes it empty,
     * the tiles are compressed by our threads (pipeline/tilewrite.c). */
    aw_tilewriter *tw;
    int pending; /* own encoder, file not made yet (wo.defer) */
    /* Shared and deferred writers keep the output's tags: the rank that
     * encodes it makes the same file a single process does. */
    double gt[6];
    char *wkt, *description;
    char **metadata;
    aw_class_def *classes;
    size_t n_classes;
    int has_nodata;
    double nodata;
    unsigned long fail_mark; /* GDAL's failures on any thread at open */
};

/* The overview factors of a COG of this size: 2, 4, ... down to one
 * block. */
static int overview_levels(int width, int height, int blocksize, int *levels)
{
    int nl = 0;
    int big = width > height ? width : height;
    for (int f = 2; nl < 16 && big / (f / 2) > blocksize; f *= 2)
        levels[nl++] = f;
    return nl;
}

/* Whether the output's tiles are compressed by aralwatch's threads
 * (tilewrite.c) rather than GDAL's writer: DEFLATE and ZSTD GeoTIFFs of
 * the pixel types and predictors it knows, and such COGs whose overviews
 * it makes as GDAL does (float32 with NaN nodata and int16 with -32768,
 * averaged; byte classes, nearest). AW_GDAL_ENCODE=1 turns it off (the tests
 * compare the two). */
static int own_encoder(const aw_write_opts *wo, GDALDataType type, int width,
                       int height, int is_class, int has_nodata, double nodata)
{
    const char *off = getenv("AW_GDAL_ENCODE");
    if (off && strcmp(off, "1") == 0)
        return 0;
    const char *c = wo->compress ? wo->compress : "DEFLATE";
    if (wo->shared || (strcmp(c, "DEFLATE") != 0 && strcmp(c, "ZSTD") != 0))
        return 0;
    /* GDAL's COG driver asks for blocks of 128 and more (it warns
     * below): smaller ones stay its own. So do rasters so thin that an
     * overview level is a pixel wide or high: GDAL stops cascading there
     * and makes the next levels from a larger one. */
    if (wo->cog) {
        int levels[16];
        int nl = overview_levels(width, height, wo->blocksize, levels);
        int thin =
            nl >= 2 && (width <= (1 << (nl - 1)) || height <= (1 << (nl - 1)));
        return wo->blocksize >= 128 && !thin &&
               ((type == GDT_Float32 && !is_class && has_nodata &&
                 isnan(nodata)) ||
                (type == GDT_Int16 && !is_class && has_nodata &&
                 nodata == AW_INT16_NODATA) ||
                (type == GDT_Byte && is_class));
    }
    return type == GDT_Byte || type == GDT_Int16 || type == GDT_Float32;
}

static void remove_gtiff(const char *path);

/* GDAL's block cache while empty COGs are made: GDAL reads every (empty)
 * block of the source to find it empty, through a small cache, or it
 * would fill the cache and the process would keep that memory. Not when
 * the cache holds blocks already (inputs GDAL decodes, such as JPEG 2000
 * read by a survey pass): lowering it would evict them, and they cost more
 * than the memory. Returns the size to restore, or 0. */
static GIntBig lower_cache(void)
{
    GIntBig cache = GDALGetCacheMax64();
    GIntBig small = (GIntBig)8 * 1024 * 1024;
    if (cache > small && GDALGetCacheUsed64() < 2 * small) {
        GDALSetCacheMax64(small);
        return cache;
    }
    return 0;
}

static void set_raster_meta(GDALDatasetH ds, const double gt[6],
                            const char *wkt, GDALDataType type, double scale,
                            const char *description, char **metadata,
                            const aw_class_def *classes, size_t n_classes,
                            int has_nodata, double nodata);

/* The output made empty by GDAL, with every tag (georeferencing, nodata,
 * scale, metadata, colour table), and the tile encoder on it. A COG is
 * made by GDAL's COG driver from an empty GeoTIFF with empty overviews
 * (SPARSE_OK: only the header, its layout note and the directories), so
 * its tags and layout are GDAL's; the encoder adds the tiles. */
static aw_status make_encoded(aw_ctx *ctx, const char *path, int width,
                              int height, GDALDataType type, const double gt[6],
                              const char *wkt, double scale,
                              const char *description, char **metadata,
                              const aw_class_def *classes, size_t n_classes,
                              int has_nodata, double nodata,
                              const aw_write_opts *wo, int cache_set,
                              aw_tilewriter **tw)
{
    *tw = NULL;
    char note[256];
    int pred = type == GDT_Float32 ? 3 : 2;
    char *skel = wo->cog ? aw_asprintf("%s.empty.tif", path) : NULL;
    if (wo->cog && !skel)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    const char *file = wo->cog ? skel : path;
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **opts = NULL;
    if (wo->cog) {
        char bs[32];
        snprintf(bs, sizeof bs, "%d", wo->blocksize);
        opts = CSLSetNameValue(opts, "TILED", "YES");
        opts = CSLSetNameValue(opts, "BLOCKXSIZE", bs);
        opts = CSLSetNameValue(opts, "BLOCKYSIZE", bs);
    }
    else {
        opts = creation_options(wo, type != GDT_Float32, 0);
    }
    opts = CSLSetNameValue(opts, "SPARSE_OK", "TRUE");
    CPLErrorReset();
    GDALDatasetH ds =
        drv ? GDALCreate(drv, file, width, height, 1, type, opts) : NULL;
    CSLDestroy(opts);
    if (!ds) {
        aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: cannot create: %s%s", file,
                               aw_gdal_last_error(),
                               aw_disk_full_note(file, note, sizeof note));
        free(skel);
        return st;
    }
    set_raster_meta(ds, gt, wkt, type, scale, description, metadata, classes,
                    n_classes, has_nodata, nodata);
    CPLErrorReset();
    GDALClose(ds);
    aw_status st = AW_OK;
    if (CPLGetLastErrorType() == CE_Failure)
        st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s", file,
                     aw_gdal_last_error());
    if (st != AW_OK && wo->cog)
        remove_gtiff(skel);
    if (st == AW_OK && wo->cog) {
        int levels[16];
        int nl = overview_levels(width, height, wo->blocksize, levels);
        if (nl > 0) {
            GDALDatasetH up = GDALOpen(skel, GA_Update);
            CPLErr e = up ? GDALBuildOverviews(up, "NONE", nl, levels, 0, NULL,
                                               NULL, NULL)
                          : CE_Failure;
            if (up)
                GDALClose(up);
            if (e != CE_None)
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot add overviews: %s%s",
                             skel, aw_gdal_last_error(),
                             aw_disk_full_note(skel, note, sizeof note));
        }
        GDALDatasetH src = NULL;
        if (st == AW_OK)
            st = aw_open_raster(ctx, skel, &src);
        GDALDriverH cog = GDALGetDriverByName("COG");
        if (st == AW_OK && !cog)
            st = aw_fail(ctx, AW_ERR_INTERNAL, "GDAL has no COG driver");
        if (st == AW_OK) {
            opts = creation_options(wo, type != GDT_Float32, 1);
            opts = CSLSetNameValue(opts, "SPARSE_OK", "TRUE");
            opts = CSLSetNameValue(opts, "OVERVIEWS",
                                   nl > 0 ? "FORCE_USE_EXISTING" : "NONE");
            GIntBig restore = cache_set ? 0 : lower_cache();
            CPLErrorReset();
            GDALDatasetH out = GDALCreateCopy(cog, path, src, FALSE, opts,
                                              cancel_progress, NULL);
            if (restore)
                GDALSetCacheMax64(restore);
            CSLDestroy(opts);
            if (out) {
                CPLErrorReset();
                GDALClose(out);
            }
            if (!out && aw_cancel_requested())
                st = aw_fail(ctx, AW_ERR_CANCELLED, "%s: cancelled", path);
            else if (!out || CPLGetLastErrorType() == CE_Failure)
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s", path,
                             aw_gdal_last_error(),
                             aw_disk_full_note(path, note, sizeof note));
        }
        if (src)
            GDALClose(src);
        remove_gtiff(skel);
    }
    free(skel);
    if (st == AW_OK && wo->cog)
        st = aw_tilewriter_open_cog(
            ctx, path, width, height, wo->blocksize, wo->blocksize,
            (size_t)GDALGetDataTypeSizeBytes(type), pred, wo->level,
            wo->threads, classes != NULL, tw);
    else if (st == AW_OK)
        st = aw_tilewriter_open(ctx, path, width, height, wo->blocksize,
                                wo->blocksize,
                                (size_t)GDALGetDataTypeSizeBytes(type), pred,
                                wo->level, wo->threads, tw);
    return st;
}

static void say_encoder(aw_ctx *ctx, const aw_rwriter *w)
{
    int zstd = w->wo.compress && strcmp(w->wo.compress, "ZSTD") == 0;
    aw_log(ctx, AW_LOG_DEBUG,
           "%s: tiles compressed by aralwatch's threads (%s level %d, "
           "predictor %d%s)",
           w->path, zstd ? "ZSTD" : "DEFLATE",
           w->wo.level > 0 ? w->wo.level
           : zstd          ? 9
                           : 6,
           w->type == GDT_Float32 ? 3 : 2,
           w->wo.cog ? ", COG with its overviews" : "");
}

static aw_status create_pending(aw_ctx *ctx, aw_rwriter *w, int cache_set)
{
    w->pending = 0;
    return make_encoded(ctx, w->path, w->width, w->height, w->type, w->gt,
                        w->wkt, w->scale, w->description, w->metadata,
                        w->classes, w->n_classes, w->has_nodata, w->nodata,
                        &w->wo, cache_set, &w->tw);
}

aw_status aw_rwriters_create(aw_ctx *ctx, aw_rwriter *const *wr, size_t n)
{
    size_t np = 0, idx[64];
    for (size_t k = 0; k < n && np < 64; k++)
        if (wr[k] && wr[k]->pending)
            idx[np++] = k;
    if (np == 0)
        return AW_OK;
    aw_ctx *tc[64] = {0};
    aw_status st[64];
    GIntBig restore = lower_cache();
    int nth = omp_get_max_threads();
    if (nth > (int)np)
        nth = (int)np;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (size_t j = 0; j < np; j++) {
        tc[j] = aw_ctx_create();
        st[j] = tc[j] ? create_pending(tc[j], wr[idx[j]], 1) : AW_ERR_NOMEM;
    }
    if (restore)
        GDALSetCacheMax64(restore);
    aw_status first = AW_OK;
    for (size_t j = 0; j < np; j++) {
        if (first == AW_OK && st[j] != AW_OK)
            first = tc[j] ? aw_fail(ctx, st[j], "%s", aw_ctx_errmsg(tc[j]))
                          : aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        else if (st[j] == AW_OK)
            say_encoder(ctx, wr[idx[j]]);
        aw_ctx_destroy(tc[j]);
    }
    return first;
}

/* Georeferencing, nodata, scale, description, metadata and classes of an
 * output raster, on the dataset that becomes it. */
static void set_raster_meta(GDALDatasetH ds, const double gt[6],
                            const char *wkt, GDALDataType type, double scale,
                            const char *description, char **metadata,
                            const aw_class_def *classes, size_t n_classes,
                            int has_nodata, double nodata)
{
    GDALSetGeoTransform(ds, (double *)(uintptr_t)gt);
    GDALSetProjection(ds, wkt);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    if (has_nodata)
        GDALSetRasterNoDataValue(b, nodata);
    if (type == GDT_Int16) {
        GDALSetRasterScale(b, scale);
        GDALSetRasterOffset(b, 0.0);
    }
    GDALSetDescription(b, description);
    GDALSetMetadata(ds, metadata, NULL);
    if (!classes)
        return;
    /* Colour table and category names over 0..max class value. */
    int maxv = 0;
    for (size_t i = 0; i < n_classes; i++)
        if (classes[i].value > maxv)
            maxv = classes[i].value;
    GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
    char **names = NULL;
    for (int v = 0; v <= maxv; v++) {
        GDALColorEntry ce = {0, 0, 0, 0};
        const char *name = "";
        for (size_t i = 0; i < n_classes; i++) {
            if (classes[i].value == v) {
                ce.c1 = classes[i].r;
                ce.c2 = classes[i].g;
                ce.c3 = classes[i].b;
                ce.c4 = classes[i].a;
                name = classes[i].name;
            }
        }
        GDALSetColorEntry(ct, v, &ce);
        names = CSLAddString(names, name);
    }
    GDALSetRasterColorTable(b, ct);
    GDALDestroyColorTable(ct);
    GDALSetRasterCategoryNames(b, names);
    CSLDestroy(names);
}

/* Where each tile of a shared strip file is (the file must be complete:
 * uncompressed, every tile written, as GDAL leaves it with SPARSE_OK off),
 * and the file opened for this rank's writes. */
static aw_status attach_shared(aw_ctx *ctx, aw_rwriter *w)
{
    GDALDatasetH ds = NULL;
    aw_status st = aw_open_raster(ctx, w->tmp, &ds);
    if (st != AW_OK)
        return st;
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    GDALGetBlockSize(b, &w->bx, &w->by);
    w->ntx = (w->width + w->bx - 1) / w->bx;
    w->nty = (w->height + w->by - 1) / w->by;
    w->offs = aw_calloc2((size_t)w->ntx * (size_t)w->nty, sizeof *w->offs);
    if (!w->offs) {
        GDALClose(ds);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    unsigned long long tile =
        (unsigned long long)w->bx * (unsigned long long)w->by * w->px;
    for (int ty = 0; ty < w->nty && st == AW_OK; ty++)
        for (int tx = 0; tx < w->ntx && st == AW_OK; tx++) {
            char key[64];
            snprintf(key, sizeof key, "BLOCK_OFFSET_%d_%d", tx, ty);
            const char *o = GDALGetMetadataItem(b, key, "TIFF");
            snprintf(key, sizeof key, "BLOCK_SIZE_%d_%d", tx, ty);
            const char *n = GDALGetMetadataItem(b, key, "TIFF");
            unsigned long long off = o ? strtoull(o, NULL, 10) : 0;
            if (!off || !n || strtoull(n, NULL, 10) != tile)
                st = aw_fail(ctx, AW_ERR_INTERNAL,
                             "%s: tile %d,%d is not in place (offset %s, "
                             "size %s)",
                             w->tmp, tx, ty, o ? o : "none", n ? n : "none");
            else
                w->offs[(size_t)ty * (size_t)w->ntx + (size_t)tx] = off;
        }
    GDALClose(ds);
    if (st == AW_OK && (w->fd = open(w->tmp, O_WRONLY | O_CLOEXEC)) < 0)
        st = aw_fail(ctx, AW_ERR_IO, "%s: cannot open: %s", w->tmp,
                     strerror(errno));
    return st;
}

aw_status aw_rwriter_open(aw_ctx *ctx, const char *path, const aw_grid *grid,
                          GDALDataType type, double scale,
                          const char *description, char **metadata,
                          const aw_class_def *classes, size_t n_classes,
                          int has_nodata, double nodata,
                          const aw_write_opts *wo, aw_rwriter **out)
{
    aw_rwriter *w = calloc(1, sizeof *w);
    if (!w)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    w->path = aw_strdup(path);
    w->fd = -1;
    w->type = type;
    w->width = grid->width;
    w->height = grid->height;
    w->is_class = classes != NULL;
    w->scale = scale;
    w->wo = *wo;
    w->fail_mark = fail_count();
    /* Without the own encoder, a COG goes through a strip file; so does
     * any output of an MPI run. */
    int own = own_encoder(wo, type, grid->width, grid->height, classes != NULL,
                          has_nodata, nodata);
    int strips = (wo->cog && !own) || wo->shared;
    w->px = (size_t)GDALGetDataTypeSizeBytes(type);
    w->tmp = strips ? aw_asprintf("%s.strips.tif", path) : NULL;
    if (!w->path || (strips && !w->tmp)) {
        aw_rwriter_abort(w);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    int defer = own && wo->defer && !wo->shared;
    if (wo->shared || defer) {
        memcpy(w->gt, grid->gt, sizeof w->gt);
        w->wkt = aw_strdup(grid->wkt);
        w->description = aw_strdup(description);
        w->metadata = CSLDuplicate(metadata);
        w->has_nodata = has_nodata;
        w->nodata = nodata;
        if (classes && n_classes) {
            w->classes = aw_calloc2(n_classes, sizeof *w->classes);
            for (size_t i = 0; w->classes && i < n_classes; i++) {
                w->classes[i] = classes[i];
                w->classes[i].name = aw_strdup(classes[i].name);
            }
            w->n_classes = w->classes ? n_classes : 0;
        }
        int names_ok = 1;
        for (size_t i = 0; i < w->n_classes; i++)
            names_ok &= classes[i].name == NULL || w->classes[i].name != NULL;
        if (!w->wkt || (description && !w->description) ||
            (metadata && !w->metadata) ||
            (classes && n_classes && !w->classes) || !names_ok) {
            aw_rwriter_abort(w);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
    }
    if (wo->shared == AW_SHARED_ATTACH) {
        /* The creating rank has made the strip file. */
        aw_status st = attach_shared(ctx, w);
        if (st != AW_OK) {
            aw_rwriter_abort(w);
            return st;
        }
        *out = w;
        return AW_OK;
    }
    if (defer) {
        w->pending = 1; /* aw_rwriters_create makes it */
        *out = w;
        return AW_OK;
    }
    if (own) {
        aw_status st =
            make_encoded(ctx, w->path, grid->width, grid->height, type,
                         grid->gt, grid->wkt, scale, description, metadata,
                         classes, n_classes, has_nodata, nodata, wo, 0, &w->tw);
        if (st != AW_OK) {
            aw_rwriter_abort(w);
            return st;
        }
        say_encoder(ctx, w);
        *out = w;
        return AW_OK;
    }
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **opts = NULL;
    if (strips) {
        char bs[32];
        snprintf(bs, sizeof bs, "%d", wo->blocksize);
        opts = CSLSetNameValue(opts, "TILED", "YES");
        opts = CSLSetNameValue(opts, "BLOCKXSIZE", bs);
        opts = CSLSetNameValue(opts, "BLOCKYSIZE", bs);
        opts = CSLSetNameValue(opts, "BIGTIFF", "IF_SAFER");
    }
    else {
        opts = creation_options(wo, type != GDT_Float32, 0);
    }
    const char *file = strips ? w->tmp : w->path;
    CPLErrorReset();
    w->ds =
        drv ? GDALCreate(drv, file, grid->width, grid->height, 1, type, opts)
            : NULL;
    CSLDestroy(opts);
    if (!w->ds) {
        char note[256];
        aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: cannot create: %s%s", file,
                               aw_gdal_last_error(),
                               aw_disk_full_note(file, note, sizeof note));
        aw_rwriter_abort(w);
        return st;
    }
    set_raster_meta(w->ds, grid->gt, grid->wkt, type, scale, description,
                    metadata, classes, n_classes, has_nodata, nodata);
    if (wo->shared == AW_SHARED_CREATE) {
        /* Closing writes every (empty) tile, so each has its place; then
         * this rank writes into it like the others. */
        CPLErrorReset();
        GDALClose(w->ds);
        w->ds = NULL;
        aw_status st = CPLGetLastErrorType() == CE_Failure
                           ? aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s",
                                     w->tmp, aw_gdal_last_error())
                           : attach_shared(ctx, w);
        if (st != AW_OK) {
            aw_rwriter_abort(w);
            return st;
        }
    }
    *out = w;
    return AW_OK;
}

/* Rows row0..row0+nrows into the tiles of a shared strip file: per tile,
 * the rows it holds of them are one contiguous range of it. */
static aw_status shared_rows(aw_ctx *ctx, aw_rwriter *w, int row0, int nrows,
                             const void *data)
{
    size_t trow = (size_t)w->bx * w->px; /* bytes of a tile row */
    char *buf = malloc(trow * (size_t)w->by);
    if (!buf)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    aw_status st = AW_OK;
    for (int r = row0; r < row0 + nrows && st == AW_OK;) {
        int ty = r / w->by;
        int end =
            (ty + 1) * w->by < row0 + nrows ? (ty + 1) * w->by : row0 + nrows;
        for (int tx = 0; tx < w->ntx && st == AW_OK; tx++) {
            int c0 = tx * w->bx;
            int nc = c0 + w->bx <= w->width ? w->bx : w->width - c0;
            memset(buf, 0, trow * (size_t)(end - r));
            for (int y = r; y < end; y++)
                memcpy(
                    buf + (size_t)(y - r) * trow,
                    (const char *)data +
                        ((size_t)(y - row0) * (size_t)w->width + (size_t)c0) *
                            w->px,
                    (size_t)nc * w->px);
            size_t len = trow * (size_t)(end - r);
            uint64_t at = w->offs[(size_t)ty * (size_t)w->ntx + (size_t)tx] +
                          (uint64_t)(r - ty * w->by) * trow;
            if (aw_pwrite_full(w->fd, buf, len, at) != 0) {
                char note[256];
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s", w->tmp,
                             strerror(errno),
                             aw_disk_full_note(w->tmp, note, sizeof note));
            }
        }
        r = end;
    }
    free(buf);
    return st;
}

aw_status aw_rwriter_rows(aw_ctx *ctx, aw_rwriter *w, int row0, int nrows,
                          const void *data)
{
    if (nrows <= 0)
        return AW_OK;
    if (w->pending) {
        aw_status st = create_pending(ctx, w, 0);
        if (st != AW_OK)
            return st;
        say_encoder(ctx, w);
    }
    size_t n = (size_t)w->width * (size_t)nrows;
    const void *buf = data;
    int16_t *q = NULL;
    if (w->type == GDT_Int16) {
        /* float -> int16 DN: round(v / scale), NaN -> nodata, clamped. */
        q = malloc(n * sizeof *q);
        if (!q)
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        const float *f = data;
        const float inv = (float)(1.0 / w->scale);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float v = f[i] * inv;
            v = v < -32767.0f ? -32767.0f : v > 32767.0f ? 32767.0f : v;
            q[i] = f[i] == f[i] ? (int16_t)lrintf(v) : (int16_t)AW_INT16_NODATA;
        }
        buf = q;
    }
    if (w->wo.shared || w->tw) {
        aw_status st = w->tw ? aw_tilewriter_rows(ctx, w->tw, row0, nrows, buf)
                             : shared_rows(ctx, w, row0, nrows, buf);
        free(q);
        return st;
    }
    CPLErrorReset();
    CPLErr e =
        GDALRasterIO(GDALGetRasterBand(w->ds, 1), GF_Write, 0, row0, w->width,
                     nrows, (void *)(uintptr_t)buf, w->width, nrows,
                     w->type == GDT_Int16 ? GDT_Int16 : w->type, 0, 0);
    free(q);
    if (e != CE_None) {
        char note[256];
        return aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s",
                       w->tmp ? w->tmp : w->path, aw_gdal_last_error(),
                       aw_disk_full_note(w->path, note, sizeof note));
    }
    return AW_OK;
}

static void remove_gtiff(const char *path)
{
    unlink(path);
    char *aux = aw_asprintf("%s.aux.xml", path);
    if (aux)
        unlink(aux);
    free(aux);
}

void aw_rwriter_abort(aw_rwriter *w)
{
    if (!w)
        return;
    aw_tilewriter_abort(w->tw);
    if (w->ds) {
        CPLPushErrorHandler(CPLQuietErrorHandler);
        GDALClose(w->ds);
        CPLPopErrorHandler();
    }
    if (w->fd >= 0)
        close(w->fd);
    /* A shared strip file is removed by the rank that created it (abort)
     * or encoded it (close), not by the others writing into it. */
    if (w->tmp && w->wo.shared != AW_SHARED_ATTACH)
        remove_gtiff(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w->offs);
    free(w->wkt);
    free(w->description);
    CSLDestroy(w->metadata);
    for (size_t i = 0; i < w->n_classes; i++)
        free((char *)(uintptr_t)w->classes[i].name);
    free(w->classes);
    free(w);
}

int aw_rwriter_pixel_bytes(const aw_rwriter *w)
{
    return (int)w->px;
}

void aw_rwriter_forget(aw_rwriter *w)
{
    if (!w)
        return;
    if (w->wo.shared)
        w->wo.shared = AW_SHARED_ATTACH; /* its files are not ours */
    aw_rwriter_abort(w);
}

aw_status aw_rwriter_detach(aw_ctx *ctx, aw_rwriter *w)
{
    if (!w->wo.shared || w->fd < 0)
        return AW_OK;
    /* close() is enough for the rank that encodes to see the rows, on a
     * local disk and on cluster filesystems (NFS close-to-open, Lustre and
     * GPFS are coherent); its errors are the late write errors. */
    int bad = close(w->fd) != 0;
    int err = errno;
    w->fd = -1;
    if (bad) {
        char note[256];
        return aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s", w->tmp,
                       strerror(err),
                       aw_disk_full_note(w->tmp, note, sizeof note));
    }
    return AW_OK;
}

/* A shared writer's GeoTIFF made from its strip file as a single process
 * makes it: GDAL creates the file with the same tags, empty, and the tile
 * encoder fills it, a row of tiles at a time. */
static aw_status encode_from_strips(aw_ctx *ctx, aw_rwriter *w,
                                    const aw_write_opts *wo)
{
    GDALDatasetH src = NULL;
    aw_status st = aw_open_raster(ctx, w->tmp, &src);
    if (st != AW_OK)
        return st;
    aw_tilewriter *tw = NULL;
    st = make_encoded(ctx, w->path, w->width, w->height, w->type, w->gt, w->wkt,
                      w->scale, w->description, w->metadata, w->classes,
                      w->n_classes, w->has_nodata, w->nodata, wo, 0, &tw);
    int rows = wo->blocksize;
    void *buf =
        st == AW_OK ? aw_malloc2((size_t)rows * (size_t)w->width, w->px) : NULL;
    if (st == AW_OK && !buf)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    for (int r = 0; r < w->height && st == AW_OK; r += rows) {
        int n = r + rows <= w->height ? rows : w->height - r;
        if (aw_cancel_requested())
            st = aw_fail(ctx, AW_ERR_CANCELLED, "%s: cancelled", w->path);
        else if (GDALRasterIO(GDALGetRasterBand(src, 1), GF_Read, 0, r,
                              w->width, n, buf, w->width, n, w->type, 0,
                              0) != CE_None)
            st = aw_fail(ctx, AW_ERR_IO, "%s: cannot read: %s", w->tmp,
                         aw_gdal_last_error());
        else
            st = aw_tilewriter_rows(ctx, tw, r, n, buf);
    }
    free(buf);
    GDALClose(src);
    if (tw && st == AW_OK)
        st = aw_tilewriter_close(ctx, tw);
    else
        aw_tilewriter_abort(tw);
    return st;
}

/* A raster GDAL's writer made (not sparse): every tile of every level
 * must be there. GDAL compresses tiles on its worker threads, and a tile
 * that fails there (out of memory: ZSTD at levels 20 to 22 takes some
 * 700 MB a thread) is left out of the file with no error on the thread
 * that closes it: the file reads as nodata. */
static aw_status check_all_tiles(aw_ctx *ctx, const aw_rwriter *w)
{
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    TIFFOpenOptionsSetWarningHandlerExtR(o, aw_tiff_no_warning, NULL);
    TIFF *tif = TIFFOpenExt(w->path, "r", o);
    TIFFOpenOptionsFree(o);
    if (!tif)
        return aw_fail(ctx, AW_ERR_IO, "%s: cannot read back", w->path);
    aw_status st = AW_OK;
    int level = 0;
    do {
        uint32_t n =
            TIFFIsTiled(tif) ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
        for (uint32_t k = 0; k < n && st == AW_OK; k++)
            if (TIFFGetStrileByteCount(tif, k) == 0)
                st = aw_fail(ctx, AW_ERR_IO,
                             "%s: tile %u of level %d was not written: %s",
                             w->path, (unsigned)k, level,
                             fail_count() != w->fail_mark
                                 ? aw_gdal_error_since(w->fail_mark)
                                 : "GDAL's writer gave no reason");
        level++;
    } while (st == AW_OK && TIFFReadDirectory(tif));
    TIFFClose(tif);
    return st;
}

aw_status aw_rwriter_close(aw_ctx *ctx, aw_rwriter *w)
{
    char note[256];
    aw_status st = AW_OK;
    int own = 0; /* tiles compressed by tilewrite.c, not by GDAL */
    if (w->pending) {
        /* Never made nor given rows (not the pipeline's way): an error,
         * not a success without a file (and no empty file made). */
        st = aw_fail(ctx, AW_ERR_INTERNAL, "%s: closed before any rows",
                     w->path);
        aw_rwriter_abort(w);
        return st;
    }
    if (w->wo.shared) {
        /* Every rank has written its rows and detached: this rank (the
         * one given the raster) makes the output from the strip file as a
         * single process does. */
        st = aw_rwriter_detach(ctx, w);
        w->wo.shared = AW_SHARED_CREATE; /* it removes the strip file */
        aw_write_opts one = w->wo;
        one.shared = 0;
        if (st == AW_OK && own_encoder(&one, w->type, w->width, w->height,
                                       w->is_class, w->has_nodata, w->nodata)) {
            st = encode_from_strips(ctx, w, &one);
            aw_rwriter_abort(w);
            return st;
        }
        if (st == AW_OK && !w->wo.cog) {
            GDALDatasetH src = NULL;
            st = aw_open_raster(ctx, w->tmp, &src);
            GDALDriverH drv = GDALGetDriverByName("GTiff");
            char **opts = creation_options(&w->wo, w->type != GDT_Float32, 0);
            CPLErrorReset();
            GDALDatasetH out = st == AW_OK && drv
                                   ? GDALCreateCopy(drv, w->path, src, FALSE,
                                                    opts, cancel_progress, NULL)
                                   : NULL;
            CSLDestroy(opts);
            if (out) {
                CPLErrorReset();
                GDALClose(out);
            }
            if (st == AW_OK && !out && aw_cancel_requested())
                st = aw_fail(ctx, AW_ERR_CANCELLED, "%s: cancelled", w->path);
            else if (st == AW_OK &&
                     (!out || CPLGetLastErrorType() == CE_Failure))
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s", w->path,
                             aw_gdal_last_error(),
                             aw_disk_full_note(w->path, note, sizeof note));
            if (src)
                GDALClose(src);
            if (st == AW_OK)
                st = check_all_tiles(ctx, w);
            aw_rwriter_abort(w);
            return st;
        }
    }
    else if (w->tw) {
        own = 1;
        st = aw_tilewriter_close(ctx, w->tw);
        w->tw = NULL;
    }
    else {
        const char *file = w->tmp ? w->tmp : w->path;
        /* GDAL 3.6's GDALClose returns void: a failure at close (disk full
         * while flushing the last tiles) is seen through the error state. */
        CPLErrorReset();
        GDALClose(w->ds);
        w->ds = NULL;
        if (CPLGetLastErrorType() == CE_Failure ||
            CPLGetLastErrorType() == CE_Fatal)
            st = aw_fail(ctx, AW_ERR_IO, "%s: write failed on close: %s%s",
                         file, aw_gdal_last_error(),
                         aw_disk_full_note(file, note, sizeof note));
    }
    if (st == AW_OK && w->tmp) {
        /* Overviews first, into the uncompressed strip file (a quick read
         * of it), so the COG driver only compresses and lays out: its own
         * overview pass would add some 80 % to the write, this 30 %. */
        /* Both steps read the strip file in order: a small block cache
         * does, and keeps the peak memory of this phase down. */
        GIntBig cache = GDALGetCacheMax64();
        if (cache > (GIntBig)64 * 1024 * 1024)
            GDALSetCacheMax64((GIntBig)64 * 1024 * 1024);
        int levels[16];
        int nl = overview_levels(w->width, w->height, w->wo.blocksize, levels);
        GDALDatasetH src = NULL;
        CPLErrorReset();
        if (nl > 0) {
            GDALDatasetH up = GDALOpen(w->tmp, GA_Update);
            CPLErr e =
                up ? GDALBuildOverviews(up, w->is_class ? "NEAREST" : "AVERAGE",
                                        nl, levels, 0, NULL, NULL, NULL)
                   : CE_Failure;
            if (up)
                GDALClose(up);
            if (e != CE_None)
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot build overviews: %s%s",
                             w->tmp, aw_gdal_last_error(),
                             aw_disk_full_note(w->tmp, note, sizeof note));
        }
        GDALDriverH drv = GDALGetDriverByName("COG");
        if (st == AW_OK && !drv)
            st = aw_fail(ctx, AW_ERR_INTERNAL, "GDAL has no COG driver");
        else if (st == AW_OK)
            st = aw_open_raster(ctx, w->tmp, &src);
        if (st == AW_OK) {
            char **opts = creation_options(&w->wo, w->type != GDT_Float32, 1);
            opts = CSLSetNameValue(opts, "OVERVIEWS",
                                   nl > 0 ? "FORCE_USE_EXISTING" : "NONE");
            CPLErrorReset();
            GDALDatasetH out = GDALCreateCopy(drv, w->path, src, FALSE, opts,
                                              cancel_progress, NULL);
            CSLDestroy(opts);
            if (!out && aw_cancel_requested())
                st = aw_fail(ctx, AW_ERR_CANCELLED, "%s: cancelled", w->path);
            else if (!out)
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write: %s%s", w->path,
                             aw_gdal_last_error(),
                             aw_disk_full_note(w->path, note, sizeof note));
            if (out) {
                CPLErrorReset();
                GDALClose(out);
                if (CPLGetLastErrorType() == CE_Failure ||
                    CPLGetLastErrorType() == CE_Fatal)
                    st = aw_fail(ctx, AW_ERR_IO,
                                 "%s: write failed on close: %s%s", w->path,
                                 aw_gdal_last_error(),
                                 aw_disk_full_note(w->path, note, sizeof note));
            }
            GDALClose(src);
        }
        GDALSetCacheMax64(cache);
    }
    if (st == AW_OK && !own)
        st = check_all_tiles(ctx, w);
    aw_rwriter_abort(w);
    return st;
}

char *aw_scene_footprint(const aw_scene_cfg *sc)
{
    const aw_band_src *src = NULL;
    for (int b = 0; b < AW_BAND_COUNT && !src; b++)
        if (sc->bands[b].present)
            src = &sc->bands[b];
    if (!src)
        return NULL;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH ds = GDALOpen(src->path, GA_ReadOnly);
    double gt[6];
    const char *wkt = ds ? GDALGetProjectionRef(ds) : NULL;
    char *out = NULL;
    if (ds && wkt && wkt[0] && GDALGetGeoTransform(ds, gt) == CE_None) {
        double w = GDALGetRasterXSize(ds), h = GDALGetRasterYSize(ds);
        /* The raster's outline, 20 points per edge, so that a UTM scene's
         * curved edges in longitude/latitude stay within a few metres. */
        const double px[4] = {0, w, w, 0}, py[4] = {0, 0, h, h};
        OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
        for (int e = 0; e < 4; e++) {
            for (int k = 0; k < 20; k++) {
                double t = k / 20.0;
                double c = px[e] + (px[(e + 1) % 4] - px[e]) * t;
                double r = py[e] + (py[(e + 1) % 4] - py[e]) * t;
                OGR_G_AddPoint_2D(ring, gt[0] + c * gt[1] + r * gt[2],
                                  gt[3] + c * gt[4] + r * gt[5]);
            }
        }
        OGR_G_AddPoint_2D(ring, gt[0], gt[3]);
        OGRGeometryH poly = OGR_G_CreateGeometry(wkbPolygon);
        OGR_G_AddGeometryDirectly(poly, ring);
        OGRSpatialReferenceH s = OSRNewSpatialReference(wkt);
        OGRSpatialReferenceH t = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(t, 4326);
        OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
        OSRSetAxisMappingStrategy(t, OAMS_TRADITIONAL_GIS_ORDER);
        OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(s, t);
        if (ct && OGR_G_Transform(poly, ct) == OGRERR_NONE) {
            char *opts[] = {"COORDINATE_PRECISION=6", NULL};
            char *js = OGR_G_ExportToJsonEx(poly, opts);
            if (js)
                out = aw_strdup(js);
            CPLFree(js);
        }
        if (ct)
            OCTDestroyCoordinateTransformation(ct);
        OSRDestroySpatialReference(s);
        OSRDestroySpatialReference(t);
        OGR_G_DestroyGeometry(poly);
    }
    if (ds)
        GDALClose(ds);
    CPLPopErrorHandler();
    return out;
}

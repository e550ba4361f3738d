/* Tiled DEFLATE or ZSTD GeoTIFF written a tile per thread.
 *
 * GDAL's GeoTIFF writer compresses tiles on worker threads, but its own
 * part of each write (copying into its block cache, queueing, writing in
 * order) is serial: on 2 cores it keeps 1.66 of them busy (bench/). Here
 * GDAL still makes the file, with every tag it would write (georeferencing,
 * nodata, scale, metadata, colour table), but empty (SPARSE_OK); the rows
 * are gathered into whole rows of tiles, and each tile is predicted and
 * compressed by one OpenMP thread, exactly as libtiff would: DEFLATE with
 * libdeflate at the level libtiff uses for the ZLEVEL asked for
 * (tw_libdeflate_level), ZSTD with libzstd driven as libtiff's codec drives
 * it (tw_compress). The codec is the one of the file GDAL made. libtiff then
 * writes the compressed tiles (TIFFWriteRawTile) and the directory. Readers
 * see an ordinary tiled GeoTIFF (COMPRESSION=DEFLATE or ZSTD, PREDICTOR 2
 * or 3), pixel for pixel and tile for tile what GDAL's writer makes
 * (tests/e2e/test_tilewrite.py).
 *
 * A COG is made the same way in one pass. GDAL's COG driver makes it empty
 * (header, layout note, every directory, no tile); each finished row of
 * tiles of a level is also reduced into the next level as GDAL's overview
 * code does it (cascading, fractional source windows: AVERAGE over the
 * pixels that are not NaN, or NEAREST for classes), so the overviews are
 * made while the rows stream instead of from a second read of the whole
 * raster. Compressed tiles wait in a spool file, and at close they are
 * laid out as the COG driver lays them out: smallest overview first, each
 * tile between its size and its last 4 bytes. The overviews' rows of
 * tiles wait in the spool too (uncompressed, each row written into its
 * tile's place, TW_CHUNK rows at a time) until they are complete: in
 * memory, all levels' rows would take as much as the full resolution's,
 * and grow with the raster's width like it. Before this, a COG was an
 * uncompressed strip file, GDALBuildOverviews on it and a CreateCopy: the
 * write stage took twice as long as a plain GeoTIFF's (bench/). */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libdeflate.h>
#include <tiffio.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "aralwatch/util.h"
#include "tilewrite.h"

/* Rows of a COG overview held in memory before they go to the spool. */
#define TW_CHUNK 32

/* One resolution level: the full resolution, or one overview of a COG. */
typedef struct tw_level {
    int width, height, ntx, nty;
    /* The current row of tiles (by x width pixels), or for a COG's
     * overview its last rows received (up to TW_CHUNK: the others wait
     * in the spool, see spool_chunk). */
    unsigned char *rows;
    /* The rows flush_row and make_child_rows read: `rows`, or, when the
     * caller's rows hold this whole row of tiles, the caller's (no copy). */
    const unsigned char *cur;
    int row0, have; /* the row of tiles' first row, rows received */
    int next_row;   /* rows must come in order */
    /* COG overviews: the row of tiles waits in the spool file at
     * `region`, a tile after another (ntx tiles of by x bx pixels);
     * `rows` holds the last chunk_n rows, not yet there. */
    int spooled, chunk_n;
    unsigned long long region;
    /* COG: where each compressed tile is in the spool file. */
    unsigned long long *zoff;
    uint32_t *zlen;
    /* Making the next level from this one: the last two rows of the
     * previous row of tiles (a destination row's source rows can reach
     * back two rows), and the next destination row to make. */
    unsigned char *carry;
    int carry_n, child_next;
} tw_level;

struct aw_tilewriter {
    char *path;
    TIFF *tif;
    int bx, by;
    size_t px;   /* bytes per pixel: 1, 2 or 4 */
    int pred;    /* 2: horizontal differencing, 3: floating point */
    int zstd;    /* the file's codec: ZSTD (1) or DEFLATE (0) */
    int level;   /* libdeflate's level (1..12) or libzstd's (1..22) */
    int threads; /* 0: OpenMP's default */
    int nlev;    /* 1 + overviews */
    tw_level *lv;
    /* COG: the tiles are compressed into a spool file (unlinked: nothing
     * is left behind) and laid out at close, smallest overview first. */
    int cog, nearest;
    int spool;
    unsigned long long spool_end;
    char *spool_path;
    unsigned char *zeros; /* a tile row of zeros: edge tiles' padding */
    char err[512];        /* libtiff's last error */
};

static int tiff_error(TIFF *tif, void *user, const char *module,
                      const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    aw_tilewriter *t = user;
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    return 1;
}

int aw_tiff_no_warning(TIFF *tif, void *user, const char *module,
                       const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* GeoTIFF tags are unknown to libtiff: not ours to show */
}

/* libtiff's predictors, one row of a tile in place (tiff's tif_predict.c:
 * horDiff8, horDiff16, fpDiff). */
static void pred2_u8(uint8_t *p, size_t n)
{
    for (size_t i = n - 1; i > 0; i--)
        p[i] = (uint8_t)(p[i] - p[i - 1]);
}

static void pred2_u16(uint16_t *p, size_t n)
{
    for (size_t i = n - 1; i > 0; i--)
        p[i] = (uint16_t)(p[i] - p[i - 1]);
}

/* Floating point: the row's bytes regrouped into planes, most significant
 * byte first, then byte-wise differencing along the whole row. */
static void pred3_f32(uint8_t *p, size_t n, uint8_t *tmp)
{
    size_t cc = n * 4;
    memcpy(tmp, p, cc);
    for (size_t c = 0; c < n; c++)
        for (size_t b = 0; b < 4; b++)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            p[b * n + c] = tmp[4 * c + b];
#else
            p[(3 - b) * n + c] = tmp[4 * c + b];
#endif
    for (size_t i = cc - 1; i > 0; i--)
        p[i] = (uint8_t)(p[i] - p[i - 1]);
}

static void free_levels(aw_tilewriter *t)
{
    for (int l = 0; t->lv && l < t->nlev; l++) {
        free(t->lv[l].rows);
        free(t->lv[l].zoff);
        free(t->lv[l].zlen);
        free(t->lv[l].carry);
    }
    free(t->lv);
    t->lv = NULL;
}

void aw_tilewriter_abort(aw_tilewriter *t)
{
    if (!t)
        return;
    if (t->tif)
        TIFFClose(t->tif);
    if (t->spool >= 0)
        close(t->spool);
    free_levels(t);
    free(t->zeros);
    free(t->spool_path);
    free(t->path);
    free(t);
}

/* Whether the directory libtiff has current is a tiled image that these
 * tiles fit (DEFLATE or ZSTD, the predictor, one sample of px bytes): its
 * codec, TW_DEFLATE or TW_ZSTD, or 0. */
enum { TW_DEFLATE = 1, TW_ZSTD = 2 };

static int dir_fits(aw_tilewriter *t, uint32_t *w, uint32_t *h)
{
    uint32_t tw = 0, th = 0;
    uint16_t comp = 0, pr = 0, bits = 0, spp = 0, planar = 0;
    int fits = TIFFGetField(t->tif, TIFFTAG_IMAGEWIDTH, w) &&
               TIFFGetField(t->tif, TIFFTAG_IMAGELENGTH, h) &&
               TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw) &&
               TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th) &&
               (int)tw == t->bx && (int)th == t->by &&
               TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &comp) &&
               TIFFGetFieldDefaulted(t->tif, TIFFTAG_PREDICTOR, &pr) &&
               pr == t->pred &&
               TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits) &&
               bits == t->px * 8 &&
               TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp) &&
               spp == 1 &&
               TIFFGetFieldDefaulted(t->tif, TIFFTAG_PLANARCONFIG, &planar) &&
               planar == PLANARCONFIG_CONTIG;
    if (!fits)
        return 0;
    return comp == COMPRESSION_ADOBE_DEFLATE || comp == COMPRESSION_DEFLATE
               ? TW_DEFLATE
           : comp == COMPRESSION_ZSTD ? TW_ZSTD
                                      : 0;
}

/* The libdeflate level libtiff (4.x, tif_zip.c) compresses a DEFLATE
 * tile at for GDAL's ZLEVEL (the COG driver's LEVEL): 7 by default, zlib's
 * levels 6..9 one higher (libdeflate's 6 compresses less than zlib's 6),
 * the others as they are. Found by compressing GDAL's tiles again with
 * libdeflate at every level (tests/e2e/test_tilewrite.py compares every
 * tile's size with GDAL's). */
static int tw_libdeflate_level(int zlevel)
{
    if (zlevel <= 0)
        return 7;
    if (zlevel >= 6 && zlevel <= 9)
        return zlevel + 1;
    return zlevel > 12 ? 12 : zlevel;
}

static aw_status open_any(aw_ctx *ctx, const char *path, int width, int height,
                          int bx, int by, size_t px, int pred, int level,
                          int threads, int cog, int nearest,
                          aw_tilewriter **out)
{
    *out = NULL;
    if (!((px == 1 && pred == 2) || (px == 2 && pred == 2) ||
          (px == 4 && pred == 3)))
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "%s: no tile encoder for %zu-byte pixels, predictor %d",
                       path, px, pred);
    aw_tilewriter *t = calloc(1, sizeof *t);
    if (!t)
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    t->spool = -1;
    t->path = aw_strdup(path);
    t->bx = bx;
    t->by = by;
    t->px = px;
    t->pred = pred;
    t->threads = threads;
    t->cog = cog;
    t->nearest = nearest;
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!t->path || !o) {
        TIFFOpenOptionsFree(o);
        aw_tilewriter_abort(t);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_error, t);
    TIFFOpenOptionsSetWarningHandlerExtR(o, aw_tiff_no_warning, NULL);
    t->tif = TIFFOpenExt(path, "r+", o);
    TIFFOpenOptionsFree(o);
    /* The file must say what the tiles will be: DEFLATE or ZSTD, this
     * predictor, one sample of px bytes per pixel, these tiles; a COG's
     * overviews (its next directories) the same, each half the size of
     * the one before. */
    uint32_t w = 0, h = 0;
    int codec = t->tif ? dir_fits(t, &w, &h) : 0;
    int ok = codec && (int)w == width && (int)h == height;
    /* GDAL's ZLEVEL as libtiff hands it to libdeflate; libtiff's (and
     * GDAL's) ZSTD_LEVEL 9 when none is given. */
    t->zstd = codec == TW_ZSTD;
    t->level = !t->zstd     ? tw_libdeflate_level(level)
               : level <= 0 ? 9
               : level > 22 ? 22
                            : level;
    int n = 1;
    uint32_t pw = w, ph = h;
    while (ok && cog && TIFFReadDirectory(t->tif)) {
        ok = n < 30 && dir_fits(t, &w, &h) == codec && w == (pw + 1) / 2 &&
             h == (ph + 1) / 2;
        pw = w;
        ph = h;
        n++;
    }
    t->nlev = n;
    t->lv = ok ? calloc((size_t)n, sizeof *t->lv) : NULL;
    if (!ok || !t->lv) {
        aw_status st =
            ok ? aw_fail(ctx, AW_ERR_NOMEM, "out of memory")
               : aw_fail(ctx, AW_ERR_IO, "%s: cannot reopen for its tiles: %s",
                         path, t->err[0] ? t->err : "not the tiled file made");
        aw_tilewriter_abort(t);
        return st;
    }
    size_t tile_bytes = (size_t)bx * (size_t)by * px;
    for (int l = 0; l < n; l++) {
        tw_level *v = &t->lv[l];
        v->width = l ? (t->lv[l - 1].width + 1) / 2 : width;
        v->height = l ? (t->lv[l - 1].height + 1) / 2 : height;
        v->ntx = (v->width + bx - 1) / bx;
        v->nty = (v->height + by - 1) / by;
        /* A COG's overview rows wait in the spool: the rows of tiles of
         * all overviews would otherwise take as much memory as the full
         * resolution's, and grow with the raster's width. */
        v->spooled = cog && l > 0 && by > TW_CHUNK;
        if (v->spooled) {
            v->region = t->spool_end;
            t->spool_end += (unsigned long long)v->ntx * tile_bytes;
        }
        v->rows = aw_malloc2(
            (size_t)(v->spooled ? TW_CHUNK : by) * (size_t)v->width, px);
        v->cur = v->rows;
        size_t nt = (size_t)v->ntx * (size_t)v->nty;
        if (cog) {
            v->zoff = aw_calloc2(nt, sizeof *v->zoff);
            v->zlen = aw_calloc2(nt, sizeof *v->zlen);
        }
        if (l + 1 < n)
            v->carry = aw_malloc2(2 * (size_t)v->width, px);
        if (!v->rows || (cog && (!v->zoff || !v->zlen)) ||
            (l + 1 < n && !v->carry)) {
            aw_tilewriter_abort(t);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
    }
    if (cog) {
        t->spool_path = aw_asprintf("%s.tiles", path);
        t->zeros = calloc((size_t)bx, px);
        if (!t->spool_path || !t->zeros) {
            aw_tilewriter_abort(t);
            return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        }
        t->spool = open(t->spool_path,
                        O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_EXCL, 0600);
        if (t->spool < 0) {
            aw_status st = aw_fail(ctx, AW_ERR_IO, "%s: cannot create: %s",
                                   t->spool_path, strerror(errno));
            aw_tilewriter_abort(t);
            return st;
        }
        unlink(t->spool_path); /* it lives as long as the descriptor */
    }
    *out = t;
    return AW_OK;
}

aw_status aw_tilewriter_open(aw_ctx *ctx, const char *path, int width,
                             int height, int bx, int by, size_t px, int pred,
                             int level, int threads, aw_tilewriter **out)
{
    return open_any(ctx, path, width, height, bx, by, px, pred, level, threads,
                    0, 0, out);
}

aw_status aw_tilewriter_open_cog(aw_ctx *ctx, const char *path, int width,
                                 int height, int bx, int by, size_t px,
                                 int pred, int level, int threads, int nearest,
                                 aw_tilewriter **out)
{
    if (nearest ? px != 1 : px != 4 && px != 2)
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "%s: COG overviews are made of float32 or int16 "
                       "(average) or byte classes (nearest) only",
                       path);
    return open_any(ctx, path, width, height, bx, by, px, pred, level, threads,
                    1, nearest, out);
}

static aw_status write_error(aw_ctx *ctx, aw_tilewriter *t, const char *file,
                             const char *what, int e)
{
    char note[256];
    return aw_fail(ctx, AW_ERR_IO, "%s: cannot write %s: %s%s", file, what,
                   e           ? strerror(e)
                   : t->err[0] ? t->err
                               : "write error",
                   aw_disk_full_note(file, note, sizeof note));
}

/* One thread's compressor for the file's codec. */
typedef struct tw_codec {
    struct libdeflate_compressor *deflate;
    ZSTD_CStream *zstd;
} tw_codec;

static int tw_codec_init(const aw_tilewriter *t, tw_codec *c)
{
    c->deflate = t->zstd ? NULL : libdeflate_alloc_compressor(t->level);
    c->zstd = t->zstd ? ZSTD_createCStream() : NULL;
    return c->deflate || c->zstd;
}

static void tw_codec_free(tw_codec *c)
{
    libdeflate_free_compressor(c->deflate);
    ZSTD_freeCStream(c->zstd);
}

static size_t tw_bound(const aw_tilewriter *t, tw_codec *c, size_t n)
{
    return t->zstd ? ZSTD_compressBound(n)
                   : libdeflate_zlib_compress_bound(c->deflate, n);
}

/* A predicted tile compressed into out (cap bytes, tw_bound's): its
 * length, 0 on failure (*why: the reason; *nomem: it was memory). ZSTD is
 * driven as libtiff's codec drives it (tif_zstd.c: ZSTD_initCStream at the
 * level, the tile through ZSTD_compressStream, ZSTD_endStream), so the frame is
 * the same: no content size in its header, no checksum. */
static size_t tw_compress(const aw_tilewriter *t, tw_codec *c, const void *in,
                          size_t n, void *out, size_t cap, const char **why,
                          int *nomem)
{
    if (!t->zstd) {
        size_t len = libdeflate_zlib_compress(c->deflate, in, n, out, cap);
        if (len == 0)
            *why = "libdeflate: no room for the tile";
        return len;
    }
    size_t r = ZSTD_initCStream(c->zstd, t->level);
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    while (!ZSTD_isError(r) && ib.pos < ib.size && ob.pos < ob.size)
        r = ZSTD_compressStream(c->zstd, &ob, &ib);
    if (!ZSTD_isError(r) && ib.pos == ib.size)
        r = ZSTD_endStream(c->zstd, &ob);
    if (!ZSTD_isError(r) && r == 0 && ib.pos == ib.size)
        return ob.pos;
    *why = ZSTD_isError(r) ? ZSTD_getErrorName(r) : "no room for the tile";
    *nomem =
        ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation;
    return 0;
}

/* Predict, compress and write (or spool) level l's buffered row of tiles
 * (`n` rows). A COG's tiles go to the spool as each thread compresses
 * them (in any order: the spool is laid out by tile at close); a plain
 * GeoTIFF's are appended in order once the row is done, so the file is
 * the same whatever the threads did. */
static aw_status flush_row(aw_ctx *ctx, aw_tilewriter *t, int l, int n)
{
    tw_level *v = &t->lv[l];
    int ntx = v->ntx;
    size_t tile_bytes = (size_t)t->bx * (size_t)t->by * t->px;
    uint32_t ty = (uint32_t)(v->row0 / t->by);
    unsigned char **z = t->cog ? NULL : calloc((size_t)ntx, sizeof *z);
    size_t *zlen = t->cog ? NULL : calloc((size_t)ntx, sizeof *zlen);
    int failed = 0, spool_errno = 0;
    const char *zerr = NULL; /* a tile's compression failed: why */
    if (!t->cog && (!z || !zlen)) {
        free(z);
        free(zlen);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    int nth = t->threads > 0 ? t->threads : omp_get_max_threads();
    if (nth > ntx)
        nth = ntx;
#pragma omp parallel num_threads(nth > 0 ? nth : 1) reduction(| : failed)
    {
        tw_codec c;
        int have_c = tw_codec_init(t, &c);
        unsigned char *tile = malloc(tile_bytes);
        unsigned char *tmp = malloc((size_t)t->bx * t->px);
        size_t bound = have_c ? tw_bound(t, &c, tile_bytes) : 0;
        unsigned char *mine = t->cog ? malloc(bound) : NULL;
        if (!have_c || !tile || !tmp || (t->cog && !mine))
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int tx = 0; tx < ntx; tx++) {
            if (failed)
                continue;
            size_t c0 = (size_t)tx * (size_t)t->bx;
            size_t nc = c0 + (size_t)t->bx <= (size_t)v->width
                            ? (size_t)t->bx
                            : (size_t)v->width - c0;
            size_t trow = (size_t)t->bx * t->px;
            /* Pixels past the raster's edge are zeros. */
            if (v->spooled) {
                if (n < t->by)
                    memset(tile + (size_t)n * trow, 0,
                           (size_t)(t->by - n) * trow);
                errno = 0;
                if (aw_pread_full(t->spool, tile, (size_t)n * trow,
                                  v->region + (size_t)tx * tile_bytes) != 0) {
                    __atomic_store_n(&spool_errno, errno ? errno : EIO,
                                     __ATOMIC_RELAXED);
                    failed = 4;
                    continue;
                }
            }
            else {
                if (nc < (size_t)t->bx || n < t->by)
                    memset(tile, 0, tile_bytes);
                for (int y = 0; y < n; y++)
                    memcpy(tile + (size_t)y * trow,
                           v->cur + ((size_t)y * (size_t)v->width + c0) * t->px,
                           nc * t->px);
            }
            for (int y = 0; y < t->by; y++) {
                unsigned char *r = tile + (size_t)y * trow;
                if (t->pred == 3)
                    pred3_f32(r, (size_t)t->bx, tmp);
                else if (t->px == 2)
                    pred2_u16((uint16_t *)(void *)r, (size_t)t->bx);
                else
                    pred2_u8(r, (size_t)t->bx);
            }
            unsigned char *out = t->cog ? mine : malloc(bound);
            const char *why = NULL;
            int nomem = 0;
            size_t len = out ? tw_compress(t, &c, tile, tile_bytes, out, bound,
                                           &why, &nomem)
                             : 0;
            if (len == 0) {
                if (why) {
                    __atomic_store_n(&zerr, why, __ATOMIC_RELAXED);
                    failed = nomem ? 16 : 8;
                }
                else {
                    failed = 1;
                }
                free(t->cog ? NULL : out);
                continue;
            }
            if (!t->cog) {
                z[tx] = out;
                zlen[tx] = len;
                continue;
            }
            /* Its place in the spool, then the bytes. */
            uint32_t k = ty * (uint32_t)ntx + (uint32_t)tx;
            unsigned long long at = __atomic_fetch_add(
                &t->spool_end, (unsigned long long)len, __ATOMIC_RELAXED);
            v->zoff[k] = at;
            v->zlen[k] = (uint32_t)len;
            errno = 0;
            if (aw_pwrite_full(t->spool, out, len, at) != 0) {
                __atomic_store_n(&spool_errno, errno ? errno : EIO,
                                 __ATOMIC_RELAXED);
                failed = 2;
            }
        }
        tw_codec_free(&c);
        free(tile);
        free(tmp);
        free(mine);
    }
    aw_status st = AW_OK;
    if (failed & 4)
        st = aw_fail(ctx, AW_ERR_IO, "%s: cannot read back overview rows: %s",
                     t->spool_path, strerror(spool_errno));
    else if (failed & 2)
        st = write_error(ctx, t, t->spool_path, "tiles", spool_errno);
    else if (failed & (8 | 16))
        st = aw_fail(ctx, failed & 16 ? AW_ERR_NOMEM : AW_ERR_INTERNAL,
                     "%s: cannot compress a tile (%s level %d): %s", t->path,
                     t->zstd ? "ZSTD" : "libdeflate", t->level, zerr);
    else if (failed)
        st = aw_fail(ctx, AW_ERR_NOMEM, "%s: out of memory (tile encoder)",
                     t->path);
    for (int tx = 0; !t->cog && tx < ntx && st == AW_OK; tx++) {
        uint32_t k = ty * (uint32_t)ntx + (uint32_t)tx;
        t->err[0] = '\0';
        errno = 0;
        if (TIFFWriteRawTile(t->tif, k, z[tx], (tmsize_t)zlen[tx]) !=
            (tmsize_t)zlen[tx]) {
            /* The system's reason (ENOSPC...) says more than libtiff's. */
            char what[64];
            snprintf(what, sizeof what, "tile %u", (unsigned)k);
            st = write_error(ctx, t, t->path, what, errno);
        }
    }
    for (int tx = 0; !t->cog && tx < ntx; tx++)
        free(z[tx]);
    free(z);
    free(zlen);
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writing this row of tiles to disk now (no wait), so that the
     * fsync before the date is published finds little left to do. */
    if (st == AW_OK && !t->cog)
        (void)sync_file_range(TIFFFileno(t->tif), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    return st;
}

/* The source window of destination pixel i along an axis of n source and
 * m destination pixels, as GDAL's AVERAGE overviews weigh it
 * (gcore/overview.cpp, GDALResampleChunk_AverageOrRMS_T): pixels s..e-1,
 * the first weighted ws, the last we, those between 1. */
static void avg_window(int i, int n, int m, int *s, int *e, double *ws,
                       double *we)
{
    double r = (double)n / m;
    double a = i * r, b = (i + 1) * r;
    int s0 = (int)(a + 1e-8);
    int e0 = (int)ceil(b - 1e-8);
    if (e0 == s0)
        e0++;
    if (e0 > n)
        e0 = n;
    *s = s0;
    *e = e0;
    *ws = e0 == s0 + 1 ? 1.0 : 1.0 - (a - s0);
    *we = 1.0 - (e0 - b);
}

/* GDAL's NEAREST overviews: the source pixel of destination pixel i. */
static int near_index(int i, int n, int m)
{
    int k = (int)(0.5 + i * ((double)n / m));
    return k < n ? k : n - 1;
}

/* One destination row of GDAL's AVERAGE from the n (1 to 3) source rows
 * of its window, with that code's arithmetic and order (per source row:
 * left pixel weighted, middle ones, right one weighted; rows weighted;
 * sums in double over the valid pixels only). float32: NaN is nodata, the
 * result is the double quotient as float. int16 (GDAL works in float32
 * for it): -32768 is nodata, a float result equal to it becomes -32767,
 * and the result is rounded half away from zero as GDALCopyWords does
 * (its scalar path; GDAL 3.6's 8-at-a-time path rounds 0.49999997 to 0,
 * a value an average of integers practically never takes). */
#define AVG_ROW(NAME, T, VALID, STORE, EMPTY)                                  \
    static void NAME(const unsigned char *const *rows, int n, double wb,       \
                     double wt, const int *xs, const int *xe,                  \
                     const double *wl, const double *wr, int cw, T *out)       \
    {                                                                          \
        for (int i = 0; i < cw; i++) {                                         \
            double tot = 0, totw = 0;                                          \
            int count = 0;                                                     \
            for (int k = 0; k < n; k++) {                                      \
                const T *src = (const T *)(const void *)rows[k];               \
                double line = 0, linew = 0;                                    \
                int x = xs[i];                                                 \
                if (VALID(src[x])) {                                           \
                    count++;                                                   \
                    linew = wl[i];                                             \
                    line = (double)src[x] * wl[i];                             \
                }                                                              \
                if (xs[i] + 1 < xe[i]) {                                       \
                    for (x = xs[i] + 1; x + 1 < xe[i]; x++)                    \
                        if (VALID(src[x])) {                                   \
                            count++;                                           \
                            linew += 1;                                        \
                            line += (double)src[x];                            \
                        }                                                      \
                    x = xe[i] - 1;                                             \
                    if (VALID(src[x])) {                                       \
                        count++;                                               \
                        linew += wr[i];                                        \
                        line += (double)src[x] * wr[i];                        \
                    }                                                          \
                }                                                              \
                double wy = k == 0 ? wb : k + 1 == n ? wt : 1.0;               \
                tot += line * wy;                                              \
                totw += linew * wy;                                            \
            }                                                                  \
            out[i] = count ? STORE((float)(tot / totw)) : (EMPTY);             \
        }                                                                      \
    }

#define F32_VALID(v)       (!isnan(v))
#define F32_STORE(f)       (f)
#define I16_VALID(v)       ((v) != AW_TW_INT16_NODATA)
#define I16_STORE(f)       round_i16(f)
#define AW_TW_INT16_NODATA (-32768)

static int16_t round_i16(float f)
{
    if (f == (float)AW_TW_INT16_NODATA)
        f = (float)(AW_TW_INT16_NODATA + 1); /* GDAL's replacement */
    if (f >= 32767.0f)
        return 32767;
    if (f <= -32768.0f)
        return -32768;
    return (int16_t)(f >= 0 ? f + 0.5f : f - 0.5f);
}

AVG_ROW(avg_row_f32, float, F32_VALID, F32_STORE, NAN)
AVG_ROW(avg_row_i16, int16_t, I16_VALID, I16_STORE, AW_TW_INT16_NODATA)

static aw_status level_rows(aw_ctx *ctx, aw_tilewriter *t, int l, int row0,
                            int nrows, const void *data);

/* Level l's row of tiles (rows a..b-1) is complete: make every row of
 * level l+1 whose source rows are now all here, and pass them on. */
static aw_status make_child_rows(aw_ctx *ctx, aw_tilewriter *t, int l, int a,
                                 int b)
{
    tw_level *v = &t->lv[l], *c = &t->lv[l + 1];
    int H = v->height, W = v->width, cw = c->width, ch = c->height;
    /* Rows of level l available: a - carry_n .. b - 1. */
    int first = c->child_next, last = first;
    while (last < ch) {
        int s, e;
        double ws, we;
        avg_window(last, H, ch, &s, &e, &ws, &we);
        if (e > b && b < H)
            break;
        last++;
    }
    aw_status st = AW_OK;
    if (last > first) {
        size_t rb = (size_t)cw * t->px;
        unsigned char *out = aw_malloc2((size_t)(last - first), rb);
        int *xs = aw_calloc2((size_t)cw, sizeof *xs);
        int *xe = aw_calloc2((size_t)cw, sizeof *xe);
        double *wl = aw_calloc2((size_t)cw, sizeof *wl);
        double *wr = aw_calloc2((size_t)cw, sizeof *wr);
        if (!out || !xs || !xe || !wl || !wr)
            st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
        for (int i = 0; st == AW_OK && i < cw; i++) {
            if (t->nearest)
                xs[i] = near_index(i, W, cw);
            else
                avg_window(i, W, cw, &xs[i], &xe[i], &wl[i], &wr[i]);
        }
        size_t srb = (size_t)W * t->px;
        int carry_n = v->carry_n;
        const unsigned char *carry = v->carry, *rows = v->cur;
#define SRC_ROW(y)                                                             \
    ((y) >= a ? rows + (size_t)((y)-a) * srb                                   \
              : carry + (size_t)((y) - (a - carry_n)) * srb)
        if (st == AW_OK) {
#pragma omp parallel for schedule(static) if (last - first > 1)
            for (int j = first; j < last; j++) {
                unsigned char *o = out + (size_t)(j - first) * rb;
                if (t->nearest) {
                    const uint8_t *src = SRC_ROW(near_index(j, H, ch));
                    for (int i = 0; i < cw; i++)
                        o[i] = src[xs[i]];
                    continue;
                }
                int ys, ye;
                double wb, wt;
                avg_window(j, H, ch, &ys, &ye, &wb, &wt);
                const unsigned char *src[3];
                for (int y = ys; y < ye; y++)
                    src[y - ys] = SRC_ROW(y);
                if (t->px == 4)
                    avg_row_f32(src, ye - ys, wb, wt, xs, xe, wl, wr, cw,
                                (float *)(void *)o);
                else
                    avg_row_i16(src, ye - ys, wb, wt, xs, xe, wl, wr, cw,
                                (int16_t *)(void *)o);
            }
        }
#undef SRC_ROW
        if (st == AW_OK)
            st = level_rows(ctx, t, l + 1, first, last - first, out);
        free(out);
        free(xs);
        free(xe);
        free(wl);
        free(wr);
        c->child_next = last;
    }
    /* Keep the last two rows of a..b-1 (with the carry before them). */
    if (st == AW_OK && b < H) {
        size_t srb = (size_t)W * t->px;
        int n = b - a;
        if (n >= 2) {
            memcpy(v->carry, v->cur + (size_t)(n - 2) * srb, 2 * srb);
            v->carry_n = 2;
        }
        else if (n == 1) {
            if (v->carry_n >= 1)
                memmove(v->carry, v->carry + (size_t)(v->carry_n - 1) * srb,
                        srb);
            int k = v->carry_n >= 1 ? 1 : 0;
            memcpy(v->carry + (size_t)k * srb, v->cur, srb);
            v->carry_n = k + 1;
        }
    }
    return st;
}

/* Level l's rows in memory (the last chunk_n received) to their tiles'
 * places in the spool, each tile's part of each row in one write. Then
 * the next level's rows those make. */
static aw_status spool_chunk(aw_ctx *ctx, aw_tilewriter *t, int l)
{
    tw_level *v = &t->lv[l];
    int n = v->chunk_n, y0 = v->have - n; /* rows y0.. of the row of tiles */
    size_t trow = (size_t)t->bx * t->px;
    size_t tile_bytes = trow * (size_t)t->by;
    struct iovec iov[2 * TW_CHUNK];
    for (int tx = 0; tx < v->ntx; tx++) {
        size_t c0 = (size_t)tx * (size_t)t->bx;
        size_t nc = c0 + (size_t)t->bx <= (size_t)v->width
                        ? (size_t)t->bx
                        : (size_t)v->width - c0;
        int k = 0;
        for (int y = 0; y < n; y++) {
            iov[k].iov_base =
                v->rows + ((size_t)y * (size_t)v->width + c0) * t->px;
            iov[k++].iov_len = nc * t->px;
            if (nc < (size_t)t->bx) {
                iov[k].iov_base = t->zeros;
                iov[k++].iov_len = ((size_t)t->bx - nc) * t->px;
            }
        }
        errno = 0;
        if (aw_pwritev_full(t->spool, iov, k,
                            v->region + (size_t)tx * tile_bytes +
                                (size_t)y0 * trow) != 0)
            return write_error(ctx, t, t->spool_path, "overview rows", errno);
    }
    v->chunk_n = 0;
    if (l + 1 < t->nlev)
        return make_child_rows(ctx, t, l, v->row0 + y0, v->row0 + y0 + n);
    return AW_OK;
}

static aw_status level_rows(aw_ctx *ctx, aw_tilewriter *t, int l, int row0,
                            int nrows, const void *data)
{
    tw_level *v = &t->lv[l];
    if (row0 != v->next_row || row0 + nrows > v->height)
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "%s: rows %d-%d out of order (next is %d of %d)",
                       t->path, row0, row0 + nrows, v->next_row, v->height);
    const unsigned char *src = data;
    size_t row_bytes = (size_t)v->width * t->px;
    int done = 0;
    while (v->spooled && done < nrows) {
        int want = t->by < v->height - v->row0 ? t->by : v->height - v->row0;
        int k = nrows - done;
        if (k > want - v->have)
            k = want - v->have;
        if (k > TW_CHUNK - v->chunk_n)
            k = TW_CHUNK - v->chunk_n;
        memcpy(v->rows + (size_t)v->chunk_n * row_bytes,
               src + (size_t)done * row_bytes, (size_t)k * row_bytes);
        v->have += k;
        v->chunk_n += k;
        done += k;
        aw_status st = AW_OK;
        if (v->chunk_n == TW_CHUNK || v->have == want)
            st = spool_chunk(ctx, t, l);
        if (st == AW_OK && v->have == want) {
            st = flush_row(ctx, t, l, want);
            v->row0 += want;
            v->have = 0;
        }
        if (st != AW_OK)
            return st;
    }
    while (!v->spooled && done < nrows) {
        int want = t->by < v->height - v->row0 ? t->by : v->height - v->row0;
        int k = nrows - done < want - v->have ? nrows - done : want - v->have;
        /* A whole row of tiles in the caller's rows (strips are sized in
         * rows of tiles) is read where it is: copying it first was a
         * tenth of a second of one core, the other one waiting, in the
         * bench's default product. */
        v->cur = v->rows;
        if (v->have == 0 && k == want)
            v->cur = src + (size_t)done * row_bytes;
        else
            memcpy(v->rows + (size_t)v->have * row_bytes,
                   src + (size_t)done * row_bytes, (size_t)k * row_bytes);
        v->have += k;
        done += k;
        if (v->have == want) {
            aw_status st = flush_row(ctx, t, l, want);
            if (st == AW_OK && l + 1 < t->nlev)
                st = make_child_rows(ctx, t, l, v->row0, v->row0 + want);
            v->cur = v->rows;
            if (st != AW_OK)
                return st;
            v->row0 += want;
            v->have = 0;
        }
    }
    v->next_row = row0 + nrows;
    return AW_OK;
}

aw_status aw_tilewriter_rows(aw_ctx *ctx, aw_tilewriter *t, int row0, int nrows,
                             const void *data)
{
    return level_rows(ctx, t, 0, row0, nrows, data);
}

/* A COG's tiles from the spool into the file, as GDAL's COG driver lays
 * them out (its "ghost" header says so): after every directory, the
 * smallest overview first and the full resolution last, row by row, each
 * tile preceded by its size (4 bytes, little endian) and followed by its
 * last 4 bytes again. libtiff appends each tile and, at TIFFFlush,
 * rewrites the directory's tile offsets and sizes where they are, so the
 * directories stay at the start of the file. */
static aw_status lay_out(aw_ctx *ctx, aw_tilewriter *t)
{
    int fd = TIFFFileno(t->tif);
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return write_error(ctx, t, t->path, "tiles", errno);
    unsigned long long eof = (unsigned long long)sb.st_size;
    unsigned char *buf = NULL;
    size_t cap = 0;
    aw_status st = AW_OK;
    for (int l = t->nlev - 1; l >= 0 && st == AW_OK; l--) {
        tw_level *v = &t->lv[l];
        if (!TIFFSetDirectory(t->tif, (tdir_t)l)) {
            st = aw_fail(ctx, AW_ERR_IO, "%s: cannot read directory %d: %s",
                         t->path, l, t->err);
            break;
        }
        uint64_t diroff = TIFFCurrentDirOffset(t->tif);
        size_t nt = (size_t)v->ntx * (size_t)v->nty;
        for (size_t k = 0; k < nt && st == AW_OK; k++) {
            size_t len = v->zlen[k];
            if (len + 4 > cap) {
                free(buf);
                cap = len + 4 + (len >> 2);
                buf = malloc(cap);
                if (!buf) {
                    st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            uint32_t n32 = (uint32_t)len;
            unsigned char lead[4] = {
                (unsigned char)n32, (unsigned char)(n32 >> 8),
                (unsigned char)(n32 >> 16), (unsigned char)(n32 >> 24)};
            t->err[0] = '\0';
            errno = 0;
            if (aw_pread_full(t->spool, buf, len, v->zoff[k]) != 0) {
                st = aw_fail(ctx, AW_ERR_IO, "%s: cannot read: %s",
                             t->spool_path, strerror(errno));
                break;
            }
            memcpy(buf + len, buf + len - 4, 4); /* the trailer */
            if (aw_pwrite_full(fd, lead, 4, eof) != 0 ||
                TIFFWriteRawTile(t->tif, (uint32_t)k, buf, (tmsize_t)len) !=
                    (tmsize_t)len ||
                aw_pwrite_full(fd, buf + len, 4, eof + 4 + len) != 0) {
                st = write_error(ctx, t, t->path, "tiles", errno);
                break;
            }
            if (TIFFGetStrileOffset(t->tif, (uint32_t)k) != eof + 4) {
                st = aw_fail(ctx, AW_ERR_INTERNAL,
                             "%s: tile %zu of level %d went to %llu, not %llu",
                             t->path, k, l,
                             (unsigned long long)TIFFGetStrileOffset(
                                 t->tif, (uint32_t)k),
                             eof + 4);
                break;
            }
            eof += 4 + len + 4;
        }
        if (st == AW_OK && !TIFFFlush(t->tif))
            st = write_error(ctx, t, t->path, "its directory", errno);
        if (st == AW_OK && TIFFCurrentDirOffset(t->tif) != diroff)
            st = aw_fail(ctx, AW_ERR_INTERNAL,
                         "%s: libtiff moved directory %d: not a COG", t->path,
                         l);
    }
    free(buf);
    if (st == AW_OK &&
        (fstat(fd, &sb) != 0 || (unsigned long long)sb.st_size != eof))
        st = aw_fail(ctx, AW_ERR_INTERNAL,
                     "%s: %llu bytes, %llu expected: libtiff moved the tile "
                     "offsets (not a COG)",
                     t->path, (unsigned long long)sb.st_size, eof);
    return st;
}

aw_status aw_tilewriter_close(aw_ctx *ctx, aw_tilewriter *t)
{
    aw_status st = AW_OK;
    for (int l = 0; l < t->nlev && st == AW_OK; l++)
        if (t->lv[l].next_row != t->lv[l].height)
            st = aw_fail(ctx, AW_ERR_INTERNAL,
                         "%s: level %d closed at row %d of %d", t->path, l,
                         t->lv[l].next_row, t->lv[l].height);
    if (st == AW_OK && t->cog)
        st = lay_out(ctx, t);
    t->err[0] = '\0';
    errno = 0;
    if (st == AW_OK && !t->cog && !TIFFFlush(t->tif))
        st = write_error(ctx, t, t->path, "its directory", errno);
    TIFFClose(t->tif);
    t->tif = NULL;
    aw_tilewriter_abort(t);
    return st;
}

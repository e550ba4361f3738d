/* Windows of a tiled or stripped GeoTIFF decoded a tile per thread.
 *
 * Through GDAL, a window of a DEFLATE GeoTIFF costs a block-cache lookup,
 * a copy and a type conversion per block on top of the decompression,
 * and GDAL's decoding threads only help within one RasterIO call: on the
 * bench scene GDAL decodes 125 MB/s per core where libdeflate alone does
 * several times that. Here libtiff reads the file's layout (sizes, tile
 * offsets and byte counts), each thread preads and inflates whole tiles
 * with libdeflate, undoes libtiff's predictor (tif_predict.c: horAcc8,
 * horAcc16, fpAcc) and converts its part of the window straight into the
 * caller's float pixels. The row of tiles a window ends inside stays
 * decoded, as strips are usually shorter than input tiles.
 *
 * Anything unusual (another compression, byte-swapped files, several
 * samples per pixel interleaved, a sparse or corrupt tile, a short read)
 * is left to GDAL: the caller reads that window through GDAL, which reads
 * or reports it as it always has. tests/unit/test_tileread.c compares
 * the two readers window for window. */
#define _GNU_SOURCE
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
#include <unistd.h>
#include <libdeflate.h>
#include <tiffio.h>
#include "aralwatch/util.h"
#include "tileread.h"
#include "tilewrite.h" /* aw_tiff_no_warning */

typedef struct {
    int tr;       /* the row of tiles held; -1: none */
    int tc0, tc1; /* its columns of tiles */
    uint8_t *raw; /* (tc1 - tc0 + 1) tiles of tw x th samples */
    size_t cap;   /* bytes allocated */
} tr_cache;

/* Bytes held by every reader's kept rows, and the most they may hold
 * (aw_tileread_set_budget): atomics, as readers of different files work
 * on different threads. */
static size_t held_total;
static size_t held_budget = SIZE_MAX;

void aw_tileread_set_budget(size_t bytes)
{
    __atomic_store_n(&held_budget, bytes, __ATOMIC_RELAXED);
}

struct aw_tileread {
    int fd;
    int width, height;
    int tw, th; /* tile (or strip: width x rows per strip) */
    int tiled;
    int ntx, nty; /* tiles across and down, per plane */
    int planes;   /* 1, or one per band (PLANARCONFIG_SEPARATE) */
    int deflate;  /* 0: uncompressed */
    int pred;     /* 1, 2 or 3 */
    aw_tr_type type;
    size_t bps; /* bytes per sample */
    uint64_t *off, *cnt;
    uint64_t size;   /* of the file, bytes */
    tr_cache *cache; /* one per plane */
};

/* Tiles (or strips) bigger than this are left to GDAL: each thread would
 * hold one, and a window would decode a whole one (a file in one strip). */
#define TR_MAX_TILE_BYTES ((size_t)16 << 20)

static int quiet(TIFF *tif, void *user, const char *module, const char *fmt,
                 va_list ap)
{
    (void)tif;
    (void)module;
    char *why = user;
    if (why)
        vsnprintf(why, 200, fmt, ap);
    return 1;
}

#define NOT(...)                                                               \
    do {                                                                       \
        snprintf(why, whylen, __VA_ARGS__);                                    \
        goto fail;                                                             \
    } while (0)

aw_tileread *aw_tileread_open(const char *path, int width, int height,
                              int nbands, aw_tr_type type, char *why,
                              size_t whylen)
{
    char terr[200] = "";
    aw_tileread *r = calloc(1, sizeof *r);
    TIFF *tif = NULL;
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!r || !o) {
        snprintf(why, whylen, "out of memory");
        TIFFOpenOptionsFree(o);
        free(r);
        return NULL;
    }
    r->fd = -1;
    TIFFOpenOptionsSetErrorHandlerExtR(o, quiet, terr);
    TIFFOpenOptionsSetWarningHandlerExtR(o, aw_tiff_no_warning, NULL);
    tif = TIFFOpenExt(path, "r", o);
    TIFFOpenOptionsFree(o);
    if (!tif)
        NOT("libtiff cannot open it: %s", terr);
    if (TIFFIsByteSwapped(tif))
        NOT("byte order other than this machine's");
    uint32_t w = 0, h = 0;
    uint16_t comp = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    uint16_t pred = 1, bits = 0, fmt = 0, spp = 0, planar = 0, photo = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    /* libtiff applies a predictor only within a codec: none when
     * uncompressed, whatever the tag says. */
    if (comp == COMPRESSION_NONE ||
        !TIFFGetFieldDefaulted(tif, TIFFTAG_PREDICTOR, &pred))
        pred = 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = PHOTOMETRIC_MINISBLACK;
    if ((int)w != width || (int)h != height)
        NOT("its first image is %ux%u, not the %dx%d GDAL reads", w, h, width,
            height);
    if (comp != COMPRESSION_NONE && comp != COMPRESSION_ADOBE_DEFLATE &&
        comp != COMPRESSION_DEFLATE)
        NOT("compression %u (only DEFLATE and none are decoded here)", comp);
    /* Photometric interpretations whose samples GDAL returns as stored. */
    if (photo != PHOTOMETRIC_MINISBLACK && photo != PHOTOMETRIC_MINISWHITE &&
        photo != PHOTOMETRIC_RGB && photo != PHOTOMETRIC_PALETTE &&
        photo != PHOTOMETRIC_SEPARATED)
        NOT("photometric interpretation %u", photo);
    /* libtiff reverses the bits of each byte of FillOrder 2 files. */
    uint16_t fill = FILLORDER_MSB2LSB;
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill);
    if (fill != FILLORDER_MSB2LSB)
        NOT("fill order %u", fill);
    static const struct {
        aw_tr_type type;
        uint16_t bits, fmt, pred;
    } kinds[] = {{AW_TR_U8, 8, SAMPLEFORMAT_UINT, 2},
                 {AW_TR_U16, 16, SAMPLEFORMAT_UINT, 2},
                 {AW_TR_I16, 16, SAMPLEFORMAT_INT, 2},
                 {AW_TR_F32, 32, SAMPLEFORMAT_IEEEFP, 3}};
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if (kinds[k].type == type && kinds[k].bits == bits &&
            kinds[k].fmt == fmt)
            kind = k;
    if (kind < 0)
        NOT("%u-bit samples of format %u", bits, fmt);
    if (pred != 1 && pred != kinds[kind].pred)
        NOT("predictor %u on %u-bit samples", pred, bits);
    if (!(spp == 1 && nbands == 1) &&
        !(spp == nbands && planar == PLANARCONFIG_SEPARATE))
        NOT("%u samples per pixel, interleaved", spp);
    r->width = width;
    r->height = height;
    r->tiled = TIFFIsTiled(tif);
    if (r->tiled) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        if (tw == 0 || th == 0 || tw > 65536 || th > 65536)
            NOT("tiles of %ux%u", tw, th);
        r->tw = (int)tw;
        r->th = (int)th;
    }
    else {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        r->tw = width;
        r->th = rps == 0 || rps > h ? (int)h : (int)rps;
    }
    r->ntx = (width + r->tw - 1) / r->tw;
    r->nty = (height + r->th - 1) / r->th;
    r->planes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
    r->deflate = comp != COMPRESSION_NONE;
    r->pred = pred;
    r->type = type;
    r->bps = bits / 8u;
    if ((size_t)r->tw * (size_t)r->th * r->bps > TR_MAX_TILE_BYTES)
        NOT("blocks of %d x %d pixels", r->tw, r->th);
    uint64_t n = (uint64_t)r->planes * (uint64_t)r->ntx * (uint64_t)r->nty;
    uint32_t have = r->tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (n != have)
        NOT("%u tiles where %llu were expected", have, (unsigned long long)n);
    r->off = malloc(n * sizeof *r->off);
    r->cnt = malloc(n * sizeof *r->cnt);
    r->cache = calloc((size_t)r->planes, sizeof *r->cache);
    if (!r->off || !r->cnt || !r->cache)
        NOT("out of memory");
    for (uint32_t i = 0; i < have; i++) {
        int e1 = 0, e2 = 0;
        r->off[i] = TIFFGetStrileOffsetWithErr(tif, i, &e1);
        r->cnt[i] = TIFFGetStrileByteCountWithErr(tif, i, &e2);
        if (e1 || e2)
            NOT("its tile offsets cannot be read: %s", terr);
    }
    for (int p = 0; p < r->planes; p++)
        r->cache[p].tr = -1;
    TIFFClose(tif);
    tif = NULL;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (r->fd < 0 || fstat(r->fd, &sb) != 0)
        NOT("%s", strerror(errno));
    r->size = (uint64_t)sb.st_size;
    return r;
fail:
    if (tif)
        TIFFClose(tif);
    aw_tileread_close(r);
    return NULL;
}

size_t aw_tileread_held_max(const aw_tileread *r)
{
    return (size_t)r->planes * (size_t)r->ntx * (size_t)r->tw * (size_t)r->th *
           r->bps;
}

void aw_tileread_close(aw_tileread *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->cache)
        for (int p = 0; p < r->planes; p++) {
            free(r->cache[p].raw);
            __atomic_sub_fetch(&held_total, r->cache[p].cap, __ATOMIC_RELAXED);
        }
    free(r->cache);
    free(r->off);
    free(r->cnt);
    free(r);
}

/* Per-thread scratch. */
typedef struct {
    struct libdeflate_decompressor *d;
    uint8_t *tile; /* one decoded tile */
    uint8_t *z;    /* its compressed bytes */
    size_t zcap;
    uint8_t *tmp; /* one row of a float tile (predictor 3) */
} scratch;

/* libtiff's predictors undone on one row of n samples, in place. */
static void acc_u8(uint8_t *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        p[i] = (uint8_t)(p[i] + p[i - 1]);
}

static void acc_u16(uint16_t *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        p[i] = (uint16_t)(p[i] + p[i - 1]);
}

/* Floating point: byte-wise sums along the row, then the byte planes
 * (most significant first) put back together. */
static void acc_f32(uint8_t *p, size_t n, uint8_t *tmp)
{
    size_t cc = n * 4;
    for (size_t i = 1; i < cc; i++)
        p[i] = (uint8_t)(p[i] + p[i - 1]);
    memcpy(tmp, p, cc);
    for (size_t c = 0; c < n; c++)
        for (size_t b = 0; b < 4; b++)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            p[4 * c + b] = tmp[b * n + c];
#else
            p[4 * c + b] = tmp[(3 - b) * n + c];
#endif
}

/* Decode tile (tr, tc) of `plane` into dst: rows x tw samples. 0 or 1
 * (why filled). */
static int decode_tile(const aw_tileread *r, int plane, int tr, int tc,
                       uint8_t *dst, scratch *s, char *why, size_t whylen)
{
    size_t idx =
        ((size_t)plane * (size_t)r->nty + (size_t)tr) * (size_t)r->ntx +
        (size_t)tc;
    int rows = r->th;
    if (!r->tiled && (tr + 1) * r->th > r->height)
        rows = r->height - tr * r->th; /* the last strip is short */
    size_t need = (size_t)rows * (size_t)r->tw * r->bps;
    uint64_t off = r->off[idx], cnt = r->cnt[idx];
    if (off == 0 || cnt == 0) {
        snprintf(why, whylen, "tile %zu is missing (sparse file)", idx);
        return 1;
    }
    /* A byte count past the file's end, or far more than the tile's
     * pixels could need, is a broken file: GDAL says what is wrong. */
    if (off > r->size || cnt > r->size - off ||
        (r->deflate && cnt > need + need / 2 + 4096)) {
        snprintf(why, whylen, "tile %zu: %llu bytes at %llu, not as expected",
                 idx, (unsigned long long)cnt, (unsigned long long)off);
        return 1;
    }
    if (!r->deflate) {
        if (cnt < need || aw_pread_full(r->fd, dst, need, off) != 0) {
            snprintf(why, whylen, "tile %zu: short or failed read", idx);
            return 1;
        }
    }
    else {
        if (cnt > s->zcap) {
            uint8_t *z = realloc(s->z, (size_t)cnt);
            if (!z) {
                snprintf(why, whylen, "out of memory");
                return -1;
            }
            s->z = z;
            s->zcap = (size_t)cnt;
        }
        if (aw_pread_full(r->fd, s->z, (size_t)cnt, off) != 0) {
            snprintf(why, whylen, "tile %zu: short or failed read", idx);
            return 1;
        }
        if (libdeflate_zlib_decompress(s->d, s->z, (size_t)cnt, dst, need,
                                       NULL) != LIBDEFLATE_SUCCESS) {
            snprintf(why, whylen, "tile %zu: DEFLATE stream not as expected",
                     idx);
            return 1;
        }
    }
    if (r->pred == 1)
        return 0;
    size_t tw = (size_t)r->tw;
    for (int y = 0; y < rows; y++) {
        uint8_t *row = dst + (size_t)y * tw * r->bps;
        if (r->pred == 3)
            acc_f32(row, tw, s->tmp);
        else if (r->bps == 2)
            acc_u16((uint16_t *)(void *)row, tw);
        else
            acc_u8(row, tw);
    }
    return 0;
}

/* n samples at src into pixels at dst, as aw_tr_conv says. */
#define CONVERT(T)                                                             \
    do {                                                                       \
        const T *v = (const T *)src;                                           \
        if (c->f64) {                                                          \
            double *o = dst;                                                   \
            const double nd = c->nd;                                           \
            if (c->has_nd)                                                     \
                for (size_t i = 0; i < n; i++)                                 \
                    o[i] = (double)v[i] == nd ? (double)NAN : (double)v[i];    \
            else                                                               \
                for (size_t i = 0; i < n; i++)                                 \
                    o[i] = (double)v[i];                                       \
        }                                                                      \
        else {                                                                 \
            float *o = dst;                                                    \
            const float nd = (float)c->nd, sc = c->scale, of = c->offset;      \
            if (c->has_nd)                                                     \
                for (size_t i = 0; i < n; i++) {                               \
                    float f = (float)v[i];                                     \
                    o[i] = f == nd ? NAN : f * sc + of;                        \
                }                                                              \
            else                                                               \
                for (size_t i = 0; i < n; i++)                                 \
                    o[i] = (float)v[i] * sc + of;                              \
        }                                                                      \
    } while (0)

static void convert(aw_tr_type type, const void *src, void *dst, size_t n,
                    const aw_tr_conv *c)
{
    switch (type) {
    case AW_TR_U8:
        CONVERT(uint8_t);
        break;
    case AW_TR_U16:
        CONVERT(uint16_t);
        break;
    case AW_TR_I16:
        CONVERT(int16_t);
        break;
    case AW_TR_F32:
        CONVERT(float);
        break;
    }
}

/* The part of the window in tile (tr, tc), whose samples are at `tile`. */
static void convert_tile(const aw_tileread *r, int tr, int tc,
                         const uint8_t *tile, int x0, int y0, int w, int h,
                         const aw_tr_conv *conv, void *out, size_t stride)
{
    int tx0 = tc * r->tw, ty0 = tr * r->th;
    int xa = x0 > tx0 ? x0 : tx0, ya = y0 > ty0 ? y0 : ty0;
    int xb = x0 + w < tx0 + r->tw ? x0 + w : tx0 + r->tw;
    int yb = y0 + h < ty0 + r->th ? y0 + h : ty0 + r->th;
    size_t osz = conv->f64 ? sizeof(double) : sizeof(float);
    for (int y = ya; y < yb; y++) {
        const uint8_t *s =
            tile +
            ((size_t)(y - ty0) * (size_t)r->tw + (size_t)(xa - tx0)) * r->bps;
        uint8_t *d = (uint8_t *)out +
                     ((size_t)(y - y0) * stride + (size_t)(xa - x0)) * osz;
        convert(r->type, s, d, (size_t)(xb - xa), conv);
    }
}

int aw_tileread_window(aw_tileread *r, int band, int x0, int y0, int w, int h,
                       const aw_tr_conv *conv, void *out, size_t stride,
                       int threads, char *why, size_t whylen)
{
    if (band < 1 || (r->planes > 1 && band > r->planes) ||
        (r->planes == 1 && band != 1) || w <= 0 || h <= 0 || x0 < 0 || y0 < 0 ||
        x0 + w > r->width || y0 + h > r->height) {
        snprintf(why, whylen, "band %d window %d,%d %dx%d not in the image",
                 band, x0, y0, w, h);
        return 1;
    }
    int plane = r->planes > 1 ? band - 1 : 0;
    tr_cache *c = &r->cache[plane];
    int tr0 = y0 / r->th, tr1 = (y0 + h - 1) / r->th;
    int tc0 = x0 / r->tw, tc1 = (x0 + w - 1) / r->tw, ncol = tc1 - tc0 + 1;
    size_t tile_bytes = (size_t)r->tw * (size_t)r->th * r->bps;
    int cached = c->tr >= tr0 && c->tr <= tr1 && c->tc0 == tc0 && c->tc1 == tc1;
    /* The row of tiles the window ends inside is kept for the next one. */
    int row_end = (tr1 + 1) * r->th < r->height ? (tr1 + 1) * r->th : r->height;
    int keep = y0 + h < row_end && !(cached && c->tr == tr1) ? tr1 : -1;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    if (omp_in_parallel() || nth < 1)
        nth = 1;
    /* First what is held (a new row kept may take its place). */
    int ct = cached ? c->tr : -1;
    if (cached) {
#pragma omp parallel for schedule(static) num_threads(nth)
        for (int k = 0; k < ncol; k++)
            convert_tile(r, ct, tc0 + k, c->raw + (size_t)k * tile_bytes, x0,
                         y0, w, h, conv, out, stride);
    }
    size_t need = (size_t)ncol * tile_bytes;
    if (keep >= 0 && need > c->cap) {
        /* Within the budget, or not kept (the next window decodes these
         * tiles again). */
        size_t extra = need - c->cap;
        if (__atomic_add_fetch(&held_total, extra, __ATOMIC_RELAXED) >
            __atomic_load_n(&held_budget, __ATOMIC_RELAXED)) {
            __atomic_sub_fetch(&held_total, extra, __ATOMIC_RELAXED);
            keep = -1;
        }
        else {
            free(c->raw);
            c->raw = malloc(need);
            if (!c->raw) {
                __atomic_sub_fetch(&held_total, need, __ATOMIC_RELAXED);
                c->cap = 0;
                c->tr = -1;
                snprintf(why, whylen, "out of memory");
                return -1;
            }
            c->cap = need;
        }
    }
    if (keep >= 0)
        c->tr = -1; /* until the row is in */
    int njobs = (tr1 - tr0 + 1) * ncol, failed = 0;
    char msg[200] = "";
#pragma omp parallel num_threads(nth)
    {
        scratch s = {libdeflate_alloc_decompressor(), malloc(tile_bytes), NULL,
                     0, malloc((size_t)r->tw * 4)};
        if (!s.d || !s.tile || !s.tmp) {
#pragma omp atomic write
            failed = -1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < njobs; j++) {
            int tr = tr0 + j / ncol, tc = tc0 + j % ncol, stop;
#pragma omp atomic read
            stop = failed;
            if (stop || tr == ct)
                continue;
            uint8_t *dst =
                tr == keep ? c->raw + (size_t)(tc - tc0) * tile_bytes : s.tile;
            char e[200];
            int rc = decode_tile(r, plane, tr, tc, dst, &s, e, sizeof e);
            if (rc != 0) {
#pragma omp critical(aw_tileread_msg)
                {
                    int cur;
#pragma omp atomic read
                    cur = failed;
                    if (!cur || rc < 0) {
#pragma omp atomic write
                        failed = rc;
                    }
                    if (!msg[0])
                        snprintf(msg, sizeof msg, "%s", e);
                }
                continue;
            }
            convert_tile(r, tr, tc, dst, x0, y0, w, h, conv, out, stride);
        }
        libdeflate_free_decompressor(s.d);
        free(s.tile);
        free(s.z);
        free(s.tmp);
    }
    if (failed) {
        c->tr = -1;
        snprintf(why, whylen, "%s", msg[0] ? msg : "out of memory");
        return failed < 0 ? -1 : 1;
    }
    if (keep >= 0) {
        c->tr = keep;
        c->tc0 = tc0;
        c->tc1 = tc1;
    }
    return 0;
}

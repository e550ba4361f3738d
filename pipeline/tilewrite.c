/* Tiled DEFLATE GeoTIFF written a tile per thread.
 *
 * GDAL's GeoTIFF writer compresses tiles on worker threads, but its own
 * part of each write (copying into its block cache, queueing, writing in
 * order) is serial: on 2 cores it keeps 1.66 of them busy (bench/). Here
 * GDAL still makes the file, with every tag it would write (georeferencing,
 * nodata, scale, metadata, colour table), but empty (SPARSE_OK); the rows
 * are gathered into whole rows of tiles, and each tile is predicted and
 * compressed by one OpenMP thread with libdeflate at GDAL's default level
 * (6), exactly as libtiff would; libtiff then writes the compressed tiles
 * (TIFFWriteRawTile) and the directory. Readers see an ordinary tiled
 * GeoTIFF (COMPRESSION=DEFLATE, PREDICTOR 2 or 3), pixel for pixel what
 * GDAL's writer makes (tests/e2e/test_tilewrite.py). */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <tiffio.h>
#include "aralwatch/util.h"
#include "tilewrite.h"

#define TW_LEVEL 6 /* GDAL's default ZLEVEL */

struct aw_tilewriter {
    char *path;
    TIFF *tif;
    int width, height, bx, by, ntx, nty;
    size_t px;           /* bytes per pixel: 1, 2 or 4 */
    int pred;            /* 2: horizontal differencing, 3: floating point */
    int threads;         /* 0: OpenMP's default */
    unsigned char *rows; /* the current row of tiles: by x width pixels */
    int row0, have;      /* its first grid row, rows received */
    int next_row;        /* rows must come in order */
    char err[512];       /* libtiff's last error */
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

aw_status aw_tilewriter_open(aw_ctx *ctx, const char *path, int width,
                             int height, int bx, int by, size_t px, int pred,
                             int threads, aw_tilewriter **out)
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
    t->path = aw_strdup(path);
    t->width = width;
    t->height = height;
    t->bx = bx;
    t->by = by;
    t->ntx = (width + bx - 1) / bx;
    t->nty = (height + by - 1) / by;
    t->px = px;
    t->pred = pred;
    t->threads = threads;
    t->rows = aw_malloc2((size_t)by * (size_t)width, px);
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!t->path || !t->rows || !o) {
        TIFFOpenOptionsFree(o);
        aw_tilewriter_abort(t);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_error, t);
    TIFFOpenOptionsSetWarningHandlerExtR(o, aw_tiff_no_warning, NULL);
    t->tif = TIFFOpenExt(path, "r+", o);
    TIFFOpenOptionsFree(o);
    /* The file must say what the tiles will be: DEFLATE, this predictor,
     * one sample of px bytes per pixel, these tiles. */
    uint32_t tw = 0, th = 0;
    uint16_t comp = 0, pr = 0, bits = 0, spp = 0, planar = 0;
    if (!t->tif || !TIFFGetField(t->tif, TIFFTAG_TILEWIDTH, &tw) ||
        !TIFFGetField(t->tif, TIFFTAG_TILELENGTH, &th) || (int)tw != bx ||
        (int)th != by ||
        TIFFNumberOfTiles(t->tif) != (uint32_t)t->ntx * (uint32_t)t->nty ||
        !TIFFGetFieldDefaulted(t->tif, TIFFTAG_COMPRESSION, &comp) ||
        (comp != COMPRESSION_ADOBE_DEFLATE && comp != COMPRESSION_DEFLATE) ||
        !TIFFGetFieldDefaulted(t->tif, TIFFTAG_PREDICTOR, &pr) || pr != pred ||
        !TIFFGetFieldDefaulted(t->tif, TIFFTAG_BITSPERSAMPLE, &bits) ||
        bits != px * 8 ||
        !TIFFGetFieldDefaulted(t->tif, TIFFTAG_SAMPLESPERPIXEL, &spp) ||
        spp != 1 ||
        !TIFFGetFieldDefaulted(t->tif, TIFFTAG_PLANARCONFIG, &planar) ||
        planar != PLANARCONFIG_CONTIG) {
        aw_status st =
            aw_fail(ctx, AW_ERR_IO, "%s: cannot reopen for its tiles: %s", path,
                    t->err[0] ? t->err : "not the tiled file made");
        aw_tilewriter_abort(t);
        return st;
    }
    *out = t;
    return AW_OK;
}

/* Predict, compress and write the buffered row of tiles (`n` rows). */
static aw_status flush_row(aw_ctx *ctx, aw_tilewriter *t, int n)
{
    int ntx = t->ntx;
    size_t tile_bytes = (size_t)t->bx * (size_t)t->by * t->px;
    unsigned char **z = calloc((size_t)ntx, sizeof *z);
    size_t *zlen = calloc((size_t)ntx, sizeof *zlen);
    int failed = 0;
    if (!z || !zlen) {
        free(z);
        free(zlen);
        return aw_fail(ctx, AW_ERR_NOMEM, "out of memory");
    }
    int nth = t->threads > 0 ? t->threads : omp_get_max_threads();
    if (nth > ntx)
        nth = ntx;
#pragma omp parallel num_threads(nth > 0 ? nth : 1) reduction(| : failed)
    {
        struct libdeflate_compressor *c = libdeflate_alloc_compressor(TW_LEVEL);
        unsigned char *tile = malloc(tile_bytes);
        unsigned char *tmp = malloc((size_t)t->bx * t->px);
        size_t bound = c ? libdeflate_zlib_compress_bound(c, tile_bytes) : 0;
        if (!c || !tile || !tmp)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int tx = 0; tx < ntx; tx++) {
            if (failed)
                continue;
            size_t c0 = (size_t)tx * (size_t)t->bx;
            size_t nc = c0 + (size_t)t->bx <= (size_t)t->width
                            ? (size_t)t->bx
                            : (size_t)t->width - c0;
            size_t trow = (size_t)t->bx * t->px;
            /* Pixels past the raster's edge are zeros. */
            if (nc < (size_t)t->bx || n < t->by)
                memset(tile, 0, tile_bytes);
            for (int y = 0; y < n; y++)
                memcpy(tile + (size_t)y * trow,
                       t->rows + ((size_t)y * (size_t)t->width + c0) * t->px,
                       nc * t->px);
            for (int y = 0; y < t->by; y++) {
                unsigned char *r = tile + (size_t)y * trow;
                if (t->pred == 3)
                    pred3_f32(r, (size_t)t->bx, tmp);
                else if (t->px == 2)
                    pred2_u16((uint16_t *)(void *)r, (size_t)t->bx);
                else
                    pred2_u8(r, (size_t)t->bx);
            }
            z[tx] = malloc(bound);
            zlen[tx] = z[tx] ? libdeflate_zlib_compress(c, tile, tile_bytes,
                                                        z[tx], bound)
                             : 0;
            if (zlen[tx] == 0)
                failed = 1;
        }
        libdeflate_free_compressor(c);
        free(tile);
        free(tmp);
    }
    aw_status st = AW_OK;
    if (failed)
        st = aw_fail(ctx, AW_ERR_NOMEM, "out of memory (tile encoder)");
    uint32_t ty = (uint32_t)(t->row0 / t->by);
    for (int tx = 0; tx < ntx && st == AW_OK; tx++) {
        uint32_t k = ty * (uint32_t)ntx + (uint32_t)tx;
        t->err[0] = '\0';
        errno = 0;
        if (TIFFWriteRawTile(t->tif, k, z[tx], (tmsize_t)zlen[tx]) !=
            (tmsize_t)zlen[tx]) {
            /* The system's reason (ENOSPC...) says more than libtiff's. */
            int e = errno;
            char note[256];
            st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write tile %u: %s%s",
                         t->path, (unsigned)k,
                         e           ? strerror(e)
                         : t->err[0] ? t->err
                                     : "write error",
                         aw_disk_full_note(t->path, note, sizeof note));
        }
    }
    for (int tx = 0; tx < ntx; tx++)
        free(z[tx]);
    free(z);
    free(zlen);
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writing this row of tiles to disk now (no wait), so that the
     * fsync before the date is published finds little left to do. */
    if (st == AW_OK)
        (void)sync_file_range(TIFFFileno(t->tif), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    return st;
}

aw_status aw_tilewriter_rows(aw_ctx *ctx, aw_tilewriter *t, int row0, int nrows,
                             const void *data)
{
    if (row0 != t->next_row || row0 + nrows > t->height)
        return aw_fail(ctx, AW_ERR_INTERNAL,
                       "%s: rows %d-%d out of order (next is %d of %d)",
                       t->path, row0, row0 + nrows, t->next_row, t->height);
    const unsigned char *src = data;
    size_t row_bytes = (size_t)t->width * t->px;
    int done = 0;
    while (done < nrows) {
        int want = t->by < t->height - t->row0 ? t->by : t->height - t->row0;
        int k = nrows - done < want - t->have ? nrows - done : want - t->have;
        memcpy(t->rows + (size_t)t->have * row_bytes,
               src + (size_t)done * row_bytes, (size_t)k * row_bytes);
        t->have += k;
        done += k;
        if (t->have == want) {
            aw_status st = flush_row(ctx, t, want);
            if (st != AW_OK)
                return st;
            t->row0 += want;
            t->have = 0;
        }
    }
    t->next_row = row0 + nrows;
    return AW_OK;
}

aw_status aw_tilewriter_close(aw_ctx *ctx, aw_tilewriter *t)
{
    aw_status st = AW_OK;
    if (t->next_row != t->height)
        st = aw_fail(ctx, AW_ERR_INTERNAL, "%s: closed at row %d of %d",
                     t->path, t->next_row, t->height);
    t->err[0] = '\0';
    errno = 0;
    if (st == AW_OK && !TIFFFlush(t->tif)) {
        int e = errno;
        char note[256];
        st = aw_fail(ctx, AW_ERR_IO, "%s: cannot write its directory: %s%s",
                     t->path,
                     e           ? strerror(e)
                     : t->err[0] ? t->err
                                 : "write error",
                     aw_disk_full_note(t->path, note, sizeof note));
    }
    TIFFClose(t->tif);
    t->tif = NULL;
    free(t->rows);
    free(t->path);
    free(t);
    return st;
}

void aw_tilewriter_abort(aw_tilewriter *t)
{
    if (!t)
        return;
    if (t->tif)
        TIFFClose(t->tif);
    free(t->rows);
    free(t->path);
    free(t);
}

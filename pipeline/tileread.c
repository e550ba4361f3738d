/* Windows of a tiled or stripped GeoTIFF decoded a tile per thread.
 *
 * Through GDAL, a window of a DEFLATE GeoTIFF costs a block-cache lookup,
 * a copy and a type conversion per block on top of the decompression,
 * and GDAL's decoding threads only help within one RasterIO call: on the
 * bench scene GDAL decodes 125 MB/s per core where an inflater alone does
 * several times that. Here libtiff reads the file's layout (sizes, tile
 * offsets and byte counts), each thread preads and inflates tiles with
 * ISA-L (igzip), undoes libtiff's predictor (tif_predict.c: horAcc8,
 * horAcc16, fpAcc) and converts its part of the window straight into the
 * caller's float pixels.
 *
 * Strips are usually much shorter than input tiles (67 rows of a 10980
 * pixel wide grid against Sentinel-2's 1024-row tiles), and the next
 * strip needs the rest of the tiles a window ends inside. Those tiles are
 * not kept decoded (a row of 1024-row tiles across 10980 pixels is 22 MB
 * a band, and it grows with the width): their inflate streams are kept,
 * suspended where the window ended (85 KB each, about what 40 rows of
 * one tile take), and the next window inflates on from there. ISA-L's
 * inflater keeps its history in its state, so a stream resumes with any
 * output buffer and input read again from the first byte it has not
 * consumed; it inflates in pieces as fast as libdeflate does whole tiles
 * (550 MB/s on the bench's uint16 tiles, where zlib does 210).
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
#include <isa-l/igzip_lib.h>
#include <tiffio.h>
#include "aralwatch/util.h"
#include "tileread.h"
#include "tilewrite.h" /* aw_tiff_no_warning */

/* A tile's inflate stream, suspended between windows, with the last
 * rows it gave (predictor undone) for a window that starts above where
 * the stream is. */
typedef struct {
    struct inflate_state st;
    uint64_t used; /* compressed bytes consumed */
    int row;       /* the next row it gives; 0: not started */
    uint8_t *tail; /* rows row - tail_have .. row - 1 */
    int tail_cap, tail_have;
} tr_stream;

/* The kept streams of a band: those of two rows of tiles at most (a
 * window ending just below a row of tiles' top is followed by one that
 * starts in the row above), each row's in the set of its parity. */
typedef struct {
    int tr[2];        /* the row of tiles each set is of; -1: none */
    tr_stream **s[2]; /* each: one slot per column of tiles */
    /* Rows the next window goes back over (the pipeline's strips overlap
     * by twice their halo): learnt from windows that moved down but
     * started above where the previous one ended, at most a tile's
     * height; each kept stream keeps that many rows. */
    int back;
    int last_y0, last_end; /* the last window's rows */
    /* The tiles the last window ended inside (row of tiles part_tr, -1 if
     * none; columns part_c0..part_c1): the end of their streams, where
     * the checksum is, not reached yet (aw_tileread_verify). */
    int part_tr, part_c0, part_c1;
} tr_cache;

/* Bytes held by every reader's kept streams, and the most they may hold
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
    uint64_t size;    /* of the file, bytes */
    tr_cache *cache;  /* one per plane */
    size_t inflated;  /* rows inflated, tile by tile */
    uint8_t *checked; /* per tile: its checksum checked by aw_tileread_verify */
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
    r->checked = calloc(n, 1);
    if (!r->off || !r->cnt || !r->cache || !r->checked)
        NOT("out of memory");
    for (uint32_t i = 0; i < have; i++) {
        int e1 = 0, e2 = 0;
        r->off[i] = TIFFGetStrileOffsetWithErr(tif, i, &e1);
        r->cnt[i] = TIFFGetStrileByteCountWithErr(tif, i, &e2);
        if (e1 || e2)
            NOT("its tile offsets cannot be read: %s", terr);
    }
    for (int p = 0; p < r->planes; p++)
        for (int q = 0; q < 2; q++) {
            r->cache[p].tr[q] = -1;
            r->cache[p].last_y0 = -1;
            r->cache[p].last_end = -1;
            r->cache[p].part_tr = -1;
            if (r->deflate && !(r->cache[p].s[q] = calloc(
                                    (size_t)r->ntx, sizeof *r->cache[p].s[q])))
                NOT("out of memory");
        }
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

size_t aw_tileread_held(void)
{
    return __atomic_load_n(&held_total, __ATOMIC_RELAXED);
}

size_t aw_tileread_rows_inflated(const aw_tileread *r)
{
    return __atomic_load_n(&r->inflated, __ATOMIC_RELAXED);
}

size_t aw_tileread_held_max(const aw_tileread *r)
{
    /* Two rows of tiles' streams, with tails of 64 rows (a halo of 32). */
    size_t tail = (size_t)64 * (size_t)r->tw * r->bps;
    return r->deflate ? 2 * (size_t)r->planes * (size_t)r->ntx *
                            (sizeof(tr_stream) + tail)
                      : 0;
}

/* What stream st holds, bytes. */
static size_t stream_bytes(const aw_tileread *r, const tr_stream *st)
{
    return sizeof(tr_stream) + (size_t)st->tail_cap * (size_t)r->tw * r->bps;
}

static void free_stream(tr_stream *st)
{
    if (st)
        free(st->tail);
    free(st);
}

/* The streams of set q of c freed. */
static void drop_set(const aw_tileread *r, tr_cache *c, int q)
{
    size_t n = 0;
    for (int k = 0; c->s[q] && k < r->ntx; k++)
        if (c->s[q][k]) {
            n += stream_bytes(r, c->s[q][k]);
            free_stream(c->s[q][k]);
            c->s[q][k] = NULL;
        }
    __atomic_sub_fetch(&held_total, n, __ATOMIC_RELAXED);
    c->tr[q] = -1;
}

void aw_tileread_close(aw_tileread *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->cache)
        for (int p = 0; p < r->planes; p++)
            for (int q = 0; q < 2; q++) {
                drop_set(r, &r->cache[p], q);
                free(r->cache[p].s[q]);
            }
    free(r->cache);
    free(r->checked);
    free(r->off);
    free(r->cnt);
    free(r);
}

/* Per-thread scratch. */
typedef struct {
    tr_stream *own; /* the stream of a tile no window comes back to */
    uint8_t *tile;  /* the window's rows of one tile */
    uint8_t *z;     /* compressed bytes */
    size_t zcap;
    uint8_t *tmp;    /* one row of a float tile (predictor 3) */
    size_t inflated; /* rows this thread inflated */
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

/* Rows in tile row tr (the last strip of a stripped file is short). */
static int tile_rows(const aw_tileread *r, int tr)
{
    if (!r->tiled && (tr + 1) * r->th > r->height)
        return r->height - tr * r->th;
    return r->th;
}

/* One isal_inflate call on a tile's stream; the input it took counts as
 * used. 1 (why filled) when its checksum does not match or it is not the
 * zlib stream expected, else 0. */
static int inflate_step(tr_stream *st, size_t idx, char *why, size_t whylen)
{
    uint32_t in0 = st->st.avail_in;
    int rc = isal_inflate(&st->st);
    st->used += in0 - st->st.avail_in;
    if (rc == ISAL_INCORRECT_CHECKSUM) {
        snprintf(why, whylen, "tile %zu: checksum (adler32) does not match",
                 idx);
        return 1;
    }
    if (rc < 0 || rc == ISAL_NEED_DICT) {
        snprintf(why, whylen, "tile %zu: DEFLATE stream not as expected", idx);
        return 1;
    }
    return 0;
}

/* The stream's next `len` compressed bytes (from the first not consumed)
 * read into the thread's buffer as its input. 0, 1 or -1 (why filled). */
static int feed(const aw_tileread *r, tr_stream *st, uint64_t off, size_t len,
                scratch *s, size_t idx, char *why, size_t whylen)
{
    if (len > s->zcap) {
        uint8_t *z = realloc(s->z, len);
        if (!z) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        s->z = z;
        s->zcap = len;
    }
    if (aw_pread_full(r->fd, s->z, len, off + st->used) != 0) {
        snprintf(why, whylen, "tile %zu: short or failed read", idx);
        return 1;
    }
    st->st.next_in = s->z;
    st->st.avail_in = (uint32_t)len;
    return 0;
}

/* `n` bytes of output from stream st into dst, reading its input from
 * the file (`want`: about how many compressed bytes that takes). 0, or 1
 * with why filled (2: the stream ended, whole, before n bytes). */
static int inflate_into(const aw_tileread *r, tr_stream *st, uint64_t off,
                        uint64_t cnt, uint8_t *dst, size_t n, size_t want,
                        scratch *s, size_t idx, char *why, size_t whylen)
{
    st->st.next_out = dst;
    st->st.avail_out = (uint32_t)n;
    /* Input left from an earlier call was in another thread's buffer:
     * read again from the first byte not consumed. */
    st->st.avail_in = 0;
    while (st->st.avail_out > 0) {
        if (st->st.avail_in == 0 && st->used < cnt) {
            uint64_t left = cnt - st->used;
            size_t len = want + 4096 < left ? want + 4096 : (size_t)left;
            int rc = feed(r, st, off, len, s, idx, why, whylen);
            if (rc != 0)
                return rc;
            want = len; /* if more is needed, as much again */
        }
        /* The inflater may hold output it has not given yet: it is
         * called even with no input left. */
        uint32_t in0 = st->st.avail_in, out0 = st->st.avail_out;
        if (inflate_step(st, idx, why, whylen))
            return 1;
        if (st->st.avail_out > 0 &&
            (st->st.block_state == ISAL_BLOCK_FINISH ||
             (in0 == st->st.avail_in && out0 == st->st.avail_out))) {
            snprintf(why, whylen, "tile %zu: DEFLATE stream ends early", idx);
            /* 2: it ended whole (its checksum good), only too soon */
            return st->st.block_state == ISAL_BLOCK_FINISH ? 2 : 1;
        }
    }
    return 0;
}

static void stream_start(tr_stream *st)
{
    isal_inflate_init(&st->st);
    st->st.crc_flag = ISAL_ZLIB;
    st->used = 0;
    st->row = 0;
    st->tail_have = 0;
}

/* Rows ya..yb-1 of tile (tr, tc) of `plane` into s->tile, predictor
 * undone. st: the tile's stream (at row 0 or further; NULL when the tile
 * is not compressed); it keeps the last `tail` rows it gave for the next
 * window (within the budget). 0, 1 (why filled) or -1. */
static int decode_rows(const aw_tileread *r, int plane, int tr, int tc, int ya,
                       int yb, tr_stream *st, int tail, scratch *s, char *why,
                       size_t whylen)
{
    size_t idx =
        ((size_t)plane * (size_t)r->nty + (size_t)tr) * (size_t)r->ntx +
        (size_t)tc;
    int rows = tile_rows(r, tr);
    size_t rowb = (size_t)r->tw * r->bps;
    size_t need = (size_t)rows * rowb;
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
    int from = ya; /* the first row inflated (the ones above: the tail) */
    if (!r->deflate) {
        if (cnt < need ||
            aw_pread_full(r->fd, s->tile, (size_t)(yb - ya) * rowb,
                          off + (uint64_t)ya * rowb) != 0) {
            snprintf(why, whylen, "tile %zu: short or failed read", idx);
            return 1;
        }
    }
    else {
        if (st->row > ya && st->row - ya <= st->tail_have && yb >= st->row) {
            /* The window starts in the rows the stream kept. */
            memcpy(s->tile,
                   st->tail + (size_t)(st->tail_have - (st->row - ya)) * rowb,
                   (size_t)(st->row - ya) * rowb);
            from = st->row;
        }
        else if (st->row > ya || st->row <= 0) {
            /* Not started, or past the window's first row: from the top. */
            stream_start(st);
        }
        s->inflated += (size_t)(yb - st->row);
        /* About the compressed bytes the rows take. */
        size_t want = (size_t)((double)cnt * (yb - st->row) / rows);
        int rc = 0;
        if (st->row < from) /* rows above the window: skipped */
            rc = inflate_into(r, st, off, cnt, s->tile,
                              (size_t)(from - st->row) * rowb, want, s, idx,
                              why, whylen);
        if (rc == 0 && from < yb)
            rc = inflate_into(
                r, st, off, cnt, s->tile + (size_t)(from - ya) * rowb,
                (size_t)(yb - from) * rowb, want, s, idx, why, whylen);
        st->row = rc == 0 ? yb : -1;
        st->tail_have = 0;
        if (rc != 0)
            return rc > 0 ? 1 : rc;
    }
    if (r->pred != 1) {
        size_t tw = (size_t)r->tw;
        for (int y = from - ya; y < yb - ya; y++) {
            uint8_t *row = s->tile + (size_t)y * rowb;
            if (r->pred == 3)
                acc_f32(row, tw, s->tmp);
            else if (r->bps == 2)
                acc_u16((uint16_t *)(void *)row, tw);
            else
                acc_u8(row, tw);
        }
    }
    if (st && tail > 0) {
        if (st->tail_cap < tail) {
            /* Within the budget, or no tail: the next window inflates the
             * tile from its top. */
            size_t more = (size_t)(tail - st->tail_cap) * rowb;
            if (__atomic_add_fetch(&held_total, more, __ATOMIC_RELAXED) >
                __atomic_load_n(&held_budget, __ATOMIC_RELAXED)) {
                __atomic_sub_fetch(&held_total, more, __ATOMIC_RELAXED);
                return 0;
            }
            uint8_t *t = realloc(st->tail, (size_t)tail * rowb);
            if (!t) {
                __atomic_sub_fetch(&held_total, more, __ATOMIC_RELAXED);
                return 0;
            }
            st->tail = t;
            st->tail_cap = tail;
        }
        int n = yb - ya < tail ? yb - ya : tail;
        memcpy(st->tail, s->tile + (size_t)(yb - ya - n) * rowb,
               (size_t)n * rowb);
        st->tail_have = n;
    }
    return 0;
}

/* The rest of a kept stream's tile inflated and its zlib trailer read:
 * the tile's checksum (adler32), which ISA-L checks only at the end of the
 * stream. 0, or 1 with why filled, or -1. The stream is spent. */
static int finish_stream(const aw_tileread *r, int plane, int tr, int tc,
                         tr_stream *st, scratch *s, char *why, size_t whylen)
{
    size_t idx =
        ((size_t)plane * (size_t)r->nty + (size_t)tr) * (size_t)r->ntx +
        (size_t)tc;
    uint64_t off = r->off[idx], cnt = r->cnt[idx];
    size_t rowb = (size_t)r->tw * r->bps;
    int rows = tile_rows(r, tr);
    /* The rows inside the image: in the last row of tiles, a stream may
     * end after them (GDAL reads such a tile; its writer pads it). */
    int inside = r->height - tr * r->th < rows ? r->height - tr * r->th : rows;
    while (st->row < rows) {
        int stop = st->row < inside ? inside : rows;
        int n = stop - st->row < 64 ? stop - st->row : 64;
        size_t want = (size_t)((double)cnt * n / rows);
        int from = st->row;
        int rc = inflate_into(r, st, off, cnt, s->tile, (size_t)n * rowb, want,
                              s, idx, why, whylen);
        st->row = rc == 0 ? st->row + n : -1;
        if (rc == 2 && from >= inside) {
            st->row = -1; /* ended (its checksum checked) after the image */
            return 0;
        }
        if (rc != 0)
            return rc;
    }
    st->row = -1; /* spent: a later window inflates the tile from its top */
    st->st.avail_in = 0;
    while (st->st.block_state != ISAL_BLOCK_FINISH) {
        if (st->st.avail_in == 0) {
            if (st->used >= cnt) {
                snprintf(why, whylen, "tile %zu: DEFLATE stream ends early",
                         idx);
                return 1;
            }
            size_t len =
                cnt - st->used < 4096 ? (size_t)(cnt - st->used) : 4096;
            int rc = feed(r, st, off, len, s, idx, why, whylen);
            if (rc != 0)
                return rc;
        }
        uint8_t extra;
        st->st.next_out = &extra;
        st->st.avail_out = 1;
        uint32_t in0 = st->st.avail_in;
        if (inflate_step(st, idx, why, whylen))
            return 1;
        if (st->st.avail_out == 0 ||
            (in0 == st->st.avail_in &&
             st->st.block_state != ISAL_BLOCK_FINISH)) {
            snprintf(why, whylen, "tile %zu: DEFLATE stream not as expected",
                     idx);
            return 1;
        }
    }
    return 0;
}

int aw_tileread_verify(aw_tileread *r, char *why, size_t whylen)
{
    if (!r->deflate)
        return 0;
    /* The tiles the last window of each plane ended inside, not checked
     * yet: from their kept stream if there is one, else (over the budget)
     * from their top. */
    size_t nj = 0;
    for (int p = 0; p < r->planes; p++)
        if (r->cache[p].part_tr >= 0)
            nj += (size_t)(r->cache[p].part_c1 - r->cache[p].part_c0 + 1);
    struct job {
        int plane, tr, tc;
        tr_stream *st; /* kept, or NULL */
    } *job = nj ? calloc(nj, sizeof *job) : NULL;
    if (nj && !job) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (int p = 0; p < r->planes; p++) {
        tr_cache *c = &r->cache[p];
        if (c->part_tr < 0)
            continue;
        int q = c->part_tr & 1;
        for (int tc = c->part_c0; tc <= c->part_c1; tc++) {
            size_t idx = ((size_t)p * (size_t)r->nty + (size_t)c->part_tr) *
                             (size_t)r->ntx +
                         (size_t)tc;
            if (r->checked[idx])
                continue;
            tr_stream *st = c->tr[q] == c->part_tr ? c->s[q][tc] : NULL;
            job[k++] =
                (struct job){p, c->part_tr, tc, st && st->row > 0 ? st : NULL};
        }
    }
    nj = k;
    int rc = 0;
    char msg[200] = "";
    size_t tile_rows_bytes = (size_t)64 * (size_t)r->tw * r->bps;
#pragma omp parallel if (nj > 1)
    {
        scratch s = {calloc(1, sizeof *s.own),
                     malloc(tile_rows_bytes),
                     NULL,
                     0,
                     NULL,
                     0};
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < nj; j++) {
            int e = -1;
            char w[200] = "out of memory";
            if (s.own && s.tile) {
                tr_stream *st = job[j].st;
                if (!st) {
                    st = s.own;
                    stream_start(st);
                }
                e = finish_stream(r, job[j].plane, job[j].tr, job[j].tc, st, &s,
                                  w, sizeof w);
            }
            if (e == 0) {
                size_t idx = ((size_t)job[j].plane * (size_t)r->nty +
                              (size_t)job[j].tr) *
                                 (size_t)r->ntx +
                             (size_t)job[j].tc;
                r->checked[idx] = 1;
            }
            else {
#pragma omp critical(aw_tileread_verify)
                {
                    if (rc == 0 || e < 0)
                        rc = e;
                    if (!msg[0])
                        snprintf(msg, sizeof msg, "%s", w);
                }
            }
        }
        free_stream(s.own);
        free(s.tile);
        free(s.z);
    }
    free(job);
    /* The kept streams are spent (or in an unknown state). */
    for (int p = 0; p < r->planes; p++) {
        for (int q = 0; q < 2; q++)
            if (r->cache[p].tr[q] >= 0)
                drop_set(r, &r->cache[p], q);
        r->cache[p].part_tr = -1;
    }
    if (rc)
        snprintf(why, whylen, "%s", msg);
    return rc;
}

/* n samples of the file's type at src as float32 (exact for every type
 * the reader takes: 8- and 16-bit integers and float32). */
static void load_f32(aw_tr_type type, const void *src, float *restrict o,
                     size_t n)
{
    switch (type) {
    case AW_TR_U8: {
        const uint8_t *restrict v = src;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            o[i] = (float)v[i];
        break;
    }
    case AW_TR_U16: {
        const uint16_t *restrict v = src;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            o[i] = (float)v[i];
        break;
    }
    case AW_TR_I16: {
        const int16_t *restrict v = src;
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            o[i] = (float)v[i];
        break;
    }
    case AW_TR_F32:
        memcpy(o, src, n * sizeof(float));
        break;
    }
}

/* n samples at src into pixels at dst, as aw_tr_conv says: loaded as
 * float32, then (in place, or from a block on the stack for float64)
 * nodata to NaN, scale and offset. The loops are split so each one
 * vectorises (tests/check_vectorised.py). */
static void convert(aw_tr_type type, const void *src, void *dst, size_t n,
                    const aw_tr_conv *c)
{
    if (!c->f64) {
        float *restrict o = dst;
        const float nd = (float)c->nd, sc = c->scale, of = c->offset;
        load_f32(type, src, o, n);
        if (c->has_nd) {
#pragma omp simd
            for (size_t i = 0; i < n; i++) {
                /* A select (tileread.c is built with -fno-trapping-math,
                 * see CMakeLists.txt): both sides are computed. */
                float f = o[i], v = f * sc + of;
                o[i] = f == nd ? NAN : v;
            }
        }
        else {
#pragma omp simd
            for (size_t i = 0; i < n; i++)
                o[i] = o[i] * sc + of;
        }
        return;
    }
    enum { BLOCK = 1024 };
    float t[BLOCK];
    double *restrict o = dst;
    const double nd = c->nd;
    const size_t bytes = type == AW_TR_U8 ? 1 : type == AW_TR_F32 ? 4 : 2;
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        size_t k = n - i0 < BLOCK ? n - i0 : BLOCK;
        load_f32(type, (const uint8_t *)src + i0 * bytes, t, k);
        if (c->has_nd) {
#pragma omp simd
            for (size_t i = 0; i < k; i++)
                o[i0 + i] = (double)t[i] == nd ? (double)NAN : (double)t[i];
        }
        else {
#pragma omp simd
            for (size_t i = 0; i < k; i++)
                o[i0 + i] = (double)t[i];
        }
    }
}

/* The part of the window in tile (tr, tc): image rows ya..yb-1, whose
 * samples are at `rows`. */
static void convert_rows(const aw_tileread *r, int tc, const uint8_t *rows,
                         int ya, int yb, int x0, int y0, int w,
                         const aw_tr_conv *conv, void *out, size_t stride)
{
    int tx0 = tc * r->tw;
    int xa = x0 > tx0 ? x0 : tx0;
    int xb = x0 + w < tx0 + r->tw ? x0 + w : tx0 + r->tw;
    size_t osz = conv->f64 ? sizeof(double) : sizeof(float);
    for (int y = ya; y < yb; y++) {
        const uint8_t *s =
            rows +
            ((size_t)(y - ya) * (size_t)r->tw + (size_t)(xa - tx0)) * r->bps;
        uint8_t *d = (uint8_t *)out +
                     ((size_t)(y - y0) * stride + (size_t)(xa - x0)) * osz;
        convert(r->type, s, d, (size_t)(xb - xa), conv);
    }
}

/* Whether a stream may be kept (counted against the budget). */
static int admit(size_t n)
{
    size_t extra = n * sizeof(tr_stream);
    if (n == 0)
        return 1;
    if (__atomic_add_fetch(&held_total, extra, __ATOMIC_RELAXED) >
        __atomic_load_n(&held_budget, __ATOMIC_RELAXED)) {
        __atomic_sub_fetch(&held_total, extra, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
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
    int njobs = (tr1 - tr0 + 1) * ncol;
    /* A window that goes down the image but starts above where the last
     * one ended overlaps it by the strips' halo: how far it goes back is
     * learnt from it (not from a window going back up, such as the next
     * pass's first), up to a tile's height. */
    if (y0 > c->last_y0 && y0 < c->last_end && c->last_end - y0 > c->back)
        c->back = c->last_end - y0 < r->th ? c->last_end - y0 : r->th;
    c->last_y0 = y0;
    c->last_end = y0 + h;
    /* The streams kept after this window: those of the rows of tiles the
     * next window may start in, `back` rows above this one's end. */
    int end = y0 + h, back = c->back;
    int row_end = tr1 * r->th + tile_rows(r, tr1);
    /* Also at the image's end inside a padded tile: its stream goes on
     * to the end for the checksum (aw_tileread_verify). */
    int keep1 = r->deflate && (end < row_end ||
                               (end < r->height && end - back < row_end))
                    ? tr1
                    : -1;
    int keep0 =
        r->deflate && tr1 > tr0 && end < r->height && end - back < tr1 * r->th
            ? tr1 - 1
            : -1;
    /* Streams of other rows of tiles than this window's are of no more
     * use (windows come down the image). */
    for (int q = 0; r->deflate && q < 2; q++)
        if (c->tr[q] >= 0 && (c->tr[q] < tr0 || c->tr[q] > tr1))
            drop_set(r, c, q);
    /* Each tile's stream: the one kept for it, a new one for a row to
     * keep (within the budget: else the next window inflates the tile
     * from its top), or (NULL) a thread's own for this window only. */
    tr_stream **use = r->deflate ? calloc((size_t)njobs, sizeof *use) : NULL;
    char *made = r->deflate ? calloc((size_t)njobs, 1) : NULL;
    if (r->deflate && (!use || !made)) {
        free(use);
        free(made);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    int keeps[2] = {keep0, keep1};
    for (int i = 0; r->deflate && i < 2; i++) {
        int kr = keeps[i];
        if (kr < 0)
            continue;
        int q = kr & 1, kept = c->tr[q] == kr;
        size_t fresh = 0;
        for (int k = tc0; k <= tc1; k++)
            fresh += !kept || !c->s[q][k];
        if (!admit(fresh))
            keeps[i] = -1;
    }
    keep0 = keeps[0];
    keep1 = keeps[1];
    int oom = 0;
    for (int j = 0; r->deflate && j < njobs; j++) {
        int tr = tr0 + j / ncol, tc = tc0 + j % ncol, q = tr & 1;
        if (c->tr[q] == tr && c->s[q][tc])
            use[j] = c->s[q][tc];
        else if (tr == keep0 || tr == keep1) {
            use[j] = calloc(1, sizeof(tr_stream));
            made[j] = 1;
            if (!use[j]) {
                /* Counted at admission: given back below. */
                __atomic_sub_fetch(&held_total, sizeof(tr_stream),
                                   __ATOMIC_RELAXED);
                made[j] = 0;
                oom = 1;
            }
        }
    }
    int nth = threads > 0 ? threads : omp_get_max_threads();
    if (omp_in_parallel() || nth < 1)
        nth = 1;
    size_t tile_bytes = (size_t)r->tw * (size_t)r->th * r->bps;
    int failed = oom ? -1 : 0;
    char msg[200] = "";
#pragma omp parallel num_threads(nth) if (!oom)
    {
        scratch s = {r->deflate ? calloc(1, sizeof *s.own) : NULL,
                     malloc(tile_bytes),
                     NULL,
                     0,
                     malloc((size_t)r->tw * 4),
                     0};
        if ((r->deflate && !s.own) || !s.tile || !s.tmp) {
#pragma omp atomic write
            failed = -1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < njobs; j++) {
            int tr = tr0 + j / ncol, tc = tc0 + j % ncol, stop;
#pragma omp atomic read
            stop = failed;
            if (stop)
                continue;
            int ty0 = tr * r->th, rows = tile_rows(r, tr);
            int ya = y0 > ty0 ? y0 : ty0;
            int yb = y0 + h < ty0 + rows ? y0 + h : ty0 + rows;
            tr_stream *st = NULL;
            if (r->deflate) {
                st = use[j] ? use[j] : s.own;
                if (!use[j])
                    st->row = 0;
            }
            /* A stream the next window may need keeps a tail. */
            int keeps_tail = use && use[j] && (tr == keep0 || tr == keep1);
            char e[200];
            int rc = decode_rows(r, plane, tr, tc, ya - ty0, yb - ty0, st,
                                 keeps_tail ? back : 0, &s, e, sizeof e);
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
            convert_rows(r, tc, s.tile, ya, yb, x0, y0, w, conv, out, stride);
        }
        __atomic_add_fetch(&r->inflated, s.inflated, __ATOMIC_RELAXED);
        free_stream(s.own);
        free(s.tile);
        free(s.z);
        free(s.tmp);
    }
    /* The new streams into their rows' sets (a set of another row of the
     * same parity, one this window finished, goes); then every set not
     * kept, or all of them after a failure (streams in unknown states). */
    for (int i = 0; r->deflate && i < 2; i++) {
        int kr = keeps[i];
        if (kr < 0)
            continue;
        int q = kr & 1;
        if (c->tr[q] != kr)
            drop_set(r, c, q);
        c->tr[q] = kr;
        for (int k = tc0; k <= tc1; k++) {
            int j = (kr - tr0) * ncol + (k - tc0);
            if (made[j]) {
                c->s[q][k] = use[j];
                made[j] = 0;
            }
        }
    }
    for (int j = 0; made && j < njobs; j++)
        if (made[j]) { /* not installed (cannot happen; to be safe) */
            __atomic_sub_fetch(&held_total, stream_bytes(r, use[j]),
                               __ATOMIC_RELAXED);
            free_stream(use[j]);
        }
    free(use);
    free(made);
    for (int q = 0; r->deflate && q < 2; q++)
        if (c->tr[q] >= 0 &&
            (failed || (c->tr[q] != keep0 && c->tr[q] != keep1)))
            drop_set(r, c, q);
    if (failed) {
        snprintf(why, whylen, "%s", msg[0] ? msg : "out of memory");
        return failed < 0 ? -1 : 1;
    }
    /* The tiles this window ended inside: the end of their streams, with
     * the checksum, is for a next window, or aw_tileread_verify. */
    c->part_tr = r->deflate && end < row_end ? tr1 : -1;
    c->part_c0 = tc0;
    c->part_c1 = tc1;
    return 0;
}

/* The tile reader (pipeline/tileread.c) against GDAL's own reader.
 *
 * GeoTIFFs of every layout the reader takes (DEFLATE with predictor 1, 2
 * and 3, uncompressed, tiles with partial edge tiles, strips with a short
 * last strip, one plane per band) are written here by GDAL from
 * pseudo-random pixels. Each is read window by window, as the pipeline's
 * strips read it (top to bottom, rows of 7, 50 and the whole height, over
 * the whole width and over a part of it) and at random windows, and every
 * pixel must be GDALRasterIO's value put through the same conversion
 * (nodata -> NaN, then scale and offset), bit for bit. Files the reader
 * must leave to GDAL (LZW, big-endian, interleaved bands) are refused at
 * open; a sparse tile and a tile with a broken DEFLATE header make the
 * window refused (1), without spoiling the windows after it. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cpl_string.h>
#include <gdal.h>
#include <tiffio.h>
#include <unistd.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/util.h"
#include "tileread.h"

#define W 203
#define H 157

static char *tmp;

static int setup(void **state)
{
    (void)state;
    GDALAllRegister();
    tmp = aw_test_mkdtemp("tileread");
    return tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    aw_test_rmtree(tmp);
    free(tmp);
    return 0;
}

/* Pixels with some structure (so DEFLATE has work) and noise. */
static double pixel(int band, int x, int y, uint32_t *s, GDALDataType t)
{
    uint32_t r = aw_lcg_next(s) >> 20;
    double v = (double)((x * 7 + y * 3 + band * 100) % 900) + (double)(r % 50);
    if (t == GDT_Int16)
        v -= 600.0;
    if (t == GDT_Float32)
        v = v / 1000.0 - 0.3;
    if ((x + 2 * y) % 37 == 0)
        v = t == GDT_Float32 ? -9999.0 : 0.0; /* nodata */
    if (t == GDT_Float32 && (x * y) % 101 == 5)
        v = NAN;
    return v;
}

/* A GeoTIFF of `bands` bands of type t written by GDAL with `opts`
 * (NULL-terminated). */
static char *make(const char *name, GDALDataType t, int bands,
                  const char *const *opts)
{
    char *path = aw_path_join(tmp, name);
    assert_non_null(path);
    GDALDatasetH mem =
        GDALCreate(GDALGetDriverByName("MEM"), "", W, H, bands, t, NULL);
    double *buf = malloc(sizeof(double) * W * H);
    uint32_t s = 12345u + (uint32_t)t;
    for (int b = 1; b <= bands; b++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                buf[(size_t)y * W + (size_t)x] = pixel(b, x, y, &s, t);
        assert_int_equal(GDALRasterIO(GDALGetRasterBand(mem, b), GF_Write, 0, 0,
                                      W, H, buf, W, H, GDT_Float64, 0, 0),
                         CE_None);
    }
    free(buf);
    GDALDatasetH ds =
        GDALCreateCopy(GDALGetDriverByName("GTiff"), path, mem, FALSE,
                       (char **)(uintptr_t)opts, NULL, NULL);
    assert_non_null(ds);
    GDALClose(ds);
    GDALClose(mem);
    return path;
}

static aw_tileread *open_it(const char *path, GDALDataType t, int bands)
{
    aw_tr_type tt = t == GDT_Byte     ? AW_TR_U8
                    : t == GDT_UInt16 ? AW_TR_U16
                    : t == GDT_Int16  ? AW_TR_I16
                                      : AW_TR_F32;
    char why[200] = "";
    aw_tileread *r = aw_tileread_open(path, W, H, bands, tt, why, sizeof why);
    if (!r)
        print_error("%s: refused: %s\n", path, why);
    return r;
}

/* Whether it opens as W x H uint16 (closed again). */
static int opens_as_u16(const char *path)
{
    char why[200];
    aw_tileread *r =
        aw_tileread_open(path, W, H, 1, AW_TR_U16, why, sizeof why);
    aw_tileread_close(r);
    return r != NULL;
}

static int same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* One window read both ways, compared; returns the reader's code. */
static int check_window(aw_tileread *r, GDALDatasetH ds, int band, int x0,
                        int y0, int w, int h, const aw_tr_conv *c)
{
    size_t stride = (size_t)w + 3; /* rows further apart than the window */
    size_t n = stride * (size_t)h;
    void *got = calloc(n, 8), *ref = calloc(n, 8);
    char why[200] = "";
    int rc = aw_tileread_window(r, band, x0, y0, w, h, c, got, stride, 2, why,
                                sizeof why);
    if (rc != 0)
        print_message("band %d window %d,%d %dx%d not served: %s\n", band, x0,
                      y0, w, h, why);
    if (rc == 0) {
        GDALRasterBandH b = GDALGetRasterBand(ds, band);
        GDALDataType ot = c->f64 ? GDT_Float64 : GDT_Float32;
        int osz = c->f64 ? 8 : 4;
        assert_int_equal(GDALRasterIO(b, GF_Read, x0, y0, w, h, ref, w, h, ot,
                                      osz, (int)(stride * (size_t)osz)),
                         CE_None);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * stride + (size_t)x;
                double g, e;
                if (c->f64) {
                    double v = ((double *)ref)[i];
                    e = c->has_nd && v == c->nd ? (double)NAN : v;
                    g = ((double *)got)[i];
                }
                else {
                    float v = ((float *)ref)[i];
                    float f = c->has_nd && v == (float)c->nd
                                  ? NAN
                                  : v * c->scale + c->offset;
                    e = (double)f;
                    g = (double)((float *)got)[i];
                }
                if (!same_value(g, e)) {
                    print_error("band %d window %d,%d %dx%d: pixel %d,%d is "
                                "%.9g, GDAL gives %.9g\n",
                                band, x0, y0, w, h, x0 + x, y0 + y, g, e);
                    fail();
                }
            }
    }
    free(got);
    free(ref);
    return rc;
}

/* Strips top to bottom (rows of 7, 50, H; whole width and columns
 * 13-179), then 60 random windows; every one served and equal. */
static void check_file(const char *path, GDALDataType t, int bands)
{
    aw_tileread *r = open_it(path, t, bands);
    assert_non_null(r);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    assert_non_null(ds);
    int has_nd = 0;
    double nd = GDALGetRasterNoDataValue(GDALGetRasterBand(ds, 1), &has_nd);
    aw_tr_conv convs[3] = {{0, 1, has_nd ? nd : 0.0, 1e-4f, -0.1f},
                           {1, has_nd, nd, 1.0f, 0.0f},
                           {0, 0, 0.0, 2.0f, 0.5f}};
    static const int heights[] = {7, 50, H};
    for (int band = 1; band <= bands; band++)
        for (int k = 0; k < 3; k++)
            for (int hh = 0; hh < 3; hh++)
                for (int part = 0; part < 2; part++) {
                    int x0 = part ? 13 : 0, w = part ? 167 : W;
                    for (int y0 = 0; y0 < H; y0 += heights[hh]) {
                        int h = y0 + heights[hh] > H ? H - y0 : heights[hh];
                        assert_int_equal(
                            check_window(r, ds, band, x0, y0, w, h, &convs[k]),
                            0);
                    }
                }
    uint32_t s = 99u;
    for (int i = 0; i < 60; i++) {
        int x0 = (int)(aw_lcg_next(&s) % W), y0 = (int)(aw_lcg_next(&s) % H);
        int w = 1 + (int)(aw_lcg_next(&s) % (uint32_t)(W - x0));
        int h = 1 + (int)(aw_lcg_next(&s) % (uint32_t)(H - y0));
        int band = 1 + (int)(aw_lcg_next(&s) % (uint32_t)bands);
        assert_int_equal(check_window(r, ds, band, x0, y0, w, h, &convs[i % 3]),
                         0);
    }
    GDALClose(ds);
    aw_tileread_close(r);
}

static void test_uint16_deflate_predictor2_tiles(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=48",
                       "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *p = make("u16.tif", GDT_UInt16, 1, o);
    GDALDatasetH ds = GDALOpen(p, GA_Update);
    GDALSetRasterNoDataValue(GDALGetRasterBand(ds, 1), 0.0);
    GDALClose(ds);
    check_file(p, GDT_UInt16, 1);
    free(p);
}

/* With no room to keep rows, every window decodes its tiles afresh. */
static void test_no_budget_for_kept_rows(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=48",
                       "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *p = make("u16nb.tif", GDT_UInt16, 1, o);
    aw_tileread_set_budget(0);
    check_file(p, GDT_UInt16, 1);
    aw_tileread_set_budget(SIZE_MAX);
    free(p);
}

/* Windows as the pipeline's strips read them: 10 core rows with 3 rows
 * of halo above and below, so each starts 6 rows above where the last
 * one ended. Every window equal to GDAL's; each row of each tile is
 * inflated once, but when the first window goes back: after that the
 * streams keep 6 rows, also those of the row of tiles
 * above when a window ends less than 6 rows into the next (tiles of 48
 * rows: windows end at rows 53 and 103). Nothing is held after the last
 * window. */
static void test_strips_with_a_halo_go_on_from_kept_rows(void **state)
{
    (void)state;
    static const char *const heights[] = {"BLOCKYSIZE=96", "BLOCKYSIZE=48"};
    for (int t = 0; t < 2; t++) {
        const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", heights[t],
                           "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
        char *p = make(t ? "halo48.tif" : "halo96.tif", GDT_UInt16, 1, o);
        aw_tileread *r = open_it(p, GDT_UInt16, 1);
        assert_non_null(r);
        GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
        aw_tr_conv conv = {0, 0, 0.0, 1e-4f, -0.1f};
        int windows = 0;
        for (int r0 = 0; r0 < H; r0 += 10) {
            int n = r0 + 10 > H ? H - r0 : 10;
            int top = r0 < 3 ? r0 : 3;
            int bottom = H - (r0 + n) < 3 ? H - (r0 + n) : 3;
            assert_int_equal(
                check_window(r, ds, 1, 0, r0 - top, W, top + n + bottom, &conv),
                0);
            windows++;
            /* At most two rows of tiles' streams with their tails. */
            assert_true(aw_tileread_held() <
                        2 * 4 * (100000 + 6 * 64 * sizeof(uint16_t)));
        }
        assert_int_equal(windows, 16);
        /* 4 tiles across of 157 rows each, and rows 0-12 again when the
         * second window first went back to row 7. */
        assert_int_equal(aw_tileread_rows_inflated(r), 4 * 157 + 4 * 13);
        /* The last row of tiles' streams stay for their padding's end
         * (the checksum): spent by the check, which finds them good. */
        char why[200];
        assert_int_equal(aw_tileread_verify(r, why, sizeof why), 0);
        assert_int_equal(aw_tileread_held(), 0);
        GDALClose(ds);
        aw_tileread_close(r);
        free(p);
    }
}

/* Whole-width windows rows[k][0]..rows[k][1]-1 over a file of tiles
 * `th` rows tall: each equal to GDAL's, then the rows inflated counted
 * (4 tiles across) and nothing held once the reader is closed. With
 * tail > 0, the first window keeps one row of tiles' streams (without
 * rows): after every window, at most two rows of them are held, with
 * `tail` rows each. */
static void windows_inflate(const char *name, int th, const int (*rows)[2],
                            int n, size_t expect, int tail)
{
    char bh[32];
    snprintf(bh, sizeof bh, "BLOCKYSIZE=%d", th);
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", bh,
                       "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *p = make(name, GDT_UInt16, 1, o);
    aw_tileread *r = open_it(p, GDT_UInt16, 1);
    assert_non_null(r);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    aw_tr_conv conv = {0, 0, 0.0, 1e-4f, -0.1f};
    size_t one = 0; /* a row of tiles' streams */
    for (int k = 0; k < n; k++) {
        assert_int_equal(check_window(r, ds, 1, 0, rows[k][0], W,
                                      rows[k][1] - rows[k][0], &conv),
                         0);
        if (tail > 0 && k == 0)
            one = aw_tileread_held();
        if (tail > 0)
            assert_true(aw_tileread_held() <=
                        2 * one + 2 * 4 * (size_t)tail * 64 * 2);
    }
    if (tail > 0)
        assert_true(one > 0);
    assert_int_equal(aw_tileread_rows_inflated(r), expect);
    GDALClose(ds);
    aw_tileread_close(r);
    assert_int_equal(aw_tileread_held(), 0);
    free(p);
}

/* Strips whose windows end exactly at a row of tiles' bottom (tiles of
 * 48 rows, halo 3 rows wide at 45-48): the streams of that row are kept
 * for the next window, which starts 3 rows up in it. Per column: rows
 * 0-47 twice (the first window, before the overlap is known, kept
 * nothing), every other row once: 157 + 48. */
static void test_windows_ending_on_a_tile_boundary(void **state)
{
    (void)state;
    static const int rows[][2] = {{0, 48}, {45, 96}, {93, 144}, {141, 157}};
    windows_inflate("edge48.tif", 48, rows, 4, 4 * (157 + 48), 0);
}

/* Windows over three rows of tiles (16 rows tall; windows of 44 rows
 * overlapping by 4): the streams the window goes on from and the ones it
 * keeps can be of rows of the same parity. Per column: every row once,
 * and rows 32-41 again when the second window first goes back. */
static void test_windows_over_three_rows_of_tiles(void **state)
{
    (void)state;
    static const int rows[][2] = {{0, 42}, {38, 82}, {78, 122}, {118, 157}};
    windows_inflate("three16.tif", 16, rows, 4, 4 * (157 + 10), 0);
}

/* Two passes over rows 18-101 (a region above the image's bottom): the
 * second pass's first window starts far above where the first pass
 * ended, which is not a strip's overlap (learning it would make every
 * stream keep most of a tile). Per column, first pass: 42 + 48 + 14 +
 * 20 + 14 + 6 rows; second: 42 + 6 + 14 + 20 + 14 + 6 (the overlap is
 * known: no row is inflated twice). */
static void test_a_second_pass_does_not_count_as_an_overlap(void **state)
{
    (void)state;
    static const int rows[][2] = {{18, 42}, {38, 62}, {58, 82}, {78, 102},
                                  {18, 42}, {38, 62}, {58, 82}, {78, 102}};
    windows_inflate("passes48.tif", 48, rows, 8, 4 * (144 + 102), 4);
}

/* Tiles over 32 KB: ISA-L's inflater keeps its 32 KB history in its
 * state between the windows' calls, each with another output buffer. */
static void test_tiles_bigger_than_the_inflate_history(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=208", "BLOCKYSIZE=160",
                       "COMPRESS=DEFLATE", "PREDICTOR=2",    NULL};
    char *p = make("big16.tif", GDT_UInt16, 1, o); /* 66 KB a tile */
    check_file(p, GDT_UInt16, 1);
    free(p);
    const char *o3[] = {"TILED=YES",        "BLOCKXSIZE=208", "BLOCKYSIZE=160",
                        "COMPRESS=DEFLATE", "PREDICTOR=3",    NULL};
    p = make("big32.tif", GDT_Float32, 1, o3); /* 133 KB */
    check_file(p, GDT_Float32, 1);
    free(p);
    assert_int_equal(aw_tileread_held(), 0);
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

/* The classic TIFF file offset of entry `idx` of p's TileByteCounts
 * (tag 325), and its size (2 or 4 bytes). */
static long byte_count_entry(const char *p, int idx, int *size)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    unsigned char b[12];
    assert_int_equal(fread(b, 1, 8, f), 8);
    assert_true(b[0] == 'I' && b[2] == 42); /* little-endian classic */
    long ifd = (long)le32(b + 4);
    assert_int_equal(fseek(f, ifd, SEEK_SET), 0);
    assert_int_equal(fread(b, 1, 2, f), 2);
    int n = b[0] | b[1] << 8;
    long at = -1;
    for (int i = 0; i < n && at < 0; i++) {
        assert_int_equal(fread(b, 1, 12, f), 12);
        int tag = b[0] | b[1] << 8, type = b[2] | b[3] << 8;
        if (tag != 325)
            continue;
        *size = type == 3 ? 2 : 4;
        assert_true(type == 3 || type == 4);
        at = (long)le32(b + 8) + (long)idx * *size;
    }
    fclose(f);
    assert_true(at > 0);
    return at;
}

/* Tile (1, 1)'s byte count halved: its DEFLATE stream stops halfway.
 * Read in windows of 8 rows, its first rows are served (equal to the
 * whole file's), then the windows that need the rest are refused with
 * the tile named (GDAL reports it), and the rows below are served. */
static void test_a_stream_cut_short_is_refused_where_it_ends(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                       "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *whole = make("whole.tif", GDT_UInt16, 1, o);
    char *cut = aw_path_join(tmp, "cut_stream.tif");
    assert_non_null(cut);
    GDALDatasetH ds = GDALOpen(whole, GA_ReadOnly);
    assert_non_null(ds);
    GDALDatasetH cp = GDALCreateCopy(GDALGetDriverByName("GTiff"), cut, ds,
                                     FALSE, (char **)(uintptr_t)o, NULL, NULL);
    assert_non_null(cp);
    GDALClose(cp);
    int size = 0;
    long at = byte_count_entry(cut, 5, &size); /* (1, 1) of 4 across */
    FILE *f = fopen(cut, "r+b");
    assert_non_null(f);
    unsigned char v[4] = {0};
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fread(v, 1, (size_t)size, f), (size_t)size);
    unsigned long cnt = le32(v); /* v[2], v[3] are 0 for a SHORT */
    assert_true(cnt > 1000);
    cnt /= 2;
    for (int i = 0; i < size; i++)
        v[i] = (unsigned char)(cnt >> (8 * i));
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fwrite(v, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    aw_tileread *r = open_it(cut, GDT_UInt16, 1);
    assert_non_null(r);
    aw_tr_conv conv = {0, 1, 0.0, 1e-4f, -0.1f};
    int served_in = 0, refused = 0;
    for (int y0 = 0; y0 < H; y0 += 8) {
        int h = y0 + 8 > H ? H - y0 : 8;
        char why[200] = "";
        float out[W * 8];
        /* The cut tile's rows, read alone first to see whether they are
         * served; every served window must equal the whole file's. */
        int rc = check_window(r, ds, 1, 0, y0, W, h, &conv);
        if (y0 < 64 || y0 >= 128) {
            assert_int_equal(rc, 0);
            continue;
        }
        if (rc == 0) {
            served_in++;
            continue;
        }
        refused++;
        assert_int_equal(rc, 1);
        assert_int_equal(aw_tileread_window(r, 1, 64, y0, 64, h, &conv, out, 64,
                                            2, why, sizeof why),
                         1);
        assert_non_null(strstr(why, "tile 5"));
        assert_non_null(strstr(why, "ends early"));
    }
    /* Half the bytes hold about half the rows. */
    assert_in_range(served_in, 2, 6);
    assert_int_equal(served_in + refused, 8);
    GDALClose(ds);
    aw_tileread_close(r);
    free(whole);
    free(cut);
}

static void test_int16_strips_short_last(void **state)
{
    (void)state;
    /* 157 rows in strips of 5: the last strip has 2. */
    const char *o[] = {"BLOCKYSIZE=5", "COMPRESS=DEFLATE", "PREDICTOR=2", NULL};
    char *p = make("i16.tif", GDT_Int16, 1, o);
    check_file(p, GDT_Int16, 1);
    free(p);
}

static void test_byte_uncompressed_tiles_and_strips(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32", NULL};
    char *p = make("u8.tif", GDT_Byte, 1, o);
    check_file(p, GDT_Byte, 1);
    free(p);
    const char *o2[] = {"BLOCKYSIZE=8", NULL}; /* like Landsat's files */
    p = make("u8s.tif", GDT_Byte, 1, o2);
    check_file(p, GDT_Byte, 1);
    free(p);
}

static void test_float32_predictor3_with_nan_and_nodata(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                       "COMPRESS=DEFLATE", "PREDICTOR=3",   NULL};
    char *p = make("f32.tif", GDT_Float32, 1, o);
    GDALDatasetH ds = GDALOpen(p, GA_Update);
    GDALSetRasterNoDataValue(GDALGetRasterBand(ds, 1), -9999.0);
    GDALClose(ds);
    check_file(p, GDT_Float32, 1);
    free(p);
    const char *o1[] = {"TILED=YES", "COMPRESS=DEFLATE", NULL}; /* pred 1 */
    p = make("f32p1.tif", GDT_Float32, 1, o1);
    check_file(p, GDT_Float32, 1);
    free(p);
}

static void test_band_planes(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",
                       "BLOCKXSIZE=48",
                       "BLOCKYSIZE=32",
                       "COMPRESS=DEFLATE",
                       "PREDICTOR=2",
                       "INTERLEAVE=BAND",
                       NULL};
    char *p = make("planes.tif", GDT_UInt16, 3, o);
    check_file(p, GDT_UInt16, 3);
    free(p);
}

static void test_left_to_gdal(void **state)
{
    (void)state;
    char why[200];
    const char *lzw[] = {"TILED=YES", "COMPRESS=LZW", NULL};
    const char *big[] = {"TILED=YES", "COMPRESS=DEFLATE", "ENDIANNESS=BIG",
                         NULL};
    const char *pix[] = {"TILED=YES", "COMPRESS=DEFLATE", "INTERLEAVE=PIXEL",
                         NULL};
    char *a = make("lzw.tif", GDT_UInt16, 1, lzw);
    char *b = make("big.tif", GDT_UInt16, 1, big);
    char *c = make("pix.tif", GDT_UInt16, 2, pix);
    assert_null(aw_tileread_open(a, W, H, 1, AW_TR_U16, why, sizeof why));
    assert_non_null(strstr(why, "compression 5"));
    assert_null(aw_tileread_open(b, W, H, 1, AW_TR_U16, why, sizeof why));
    assert_non_null(strstr(why, "byte order"));
    assert_null(aw_tileread_open(c, W, H, 2, AW_TR_U16, why, sizeof why));
    assert_non_null(strstr(why, "interleaved"));
    /* The type GDAL reports must be the file's. */
    const char *plain[] = {"COMPRESS=DEFLATE", NULL};
    char *d = make("u16b.tif", GDT_UInt16, 1, plain);
    assert_null(aw_tileread_open(d, W, H, 1, AW_TR_I16, why, sizeof why));
    assert_non_null(strstr(why, "16-bit samples of format 1"));
    assert_null(aw_tileread_open(d, W + 1, H, 1, AW_TR_U16, why, sizeof why));
    assert_true(opens_as_u16(d));
    free(a);
    free(b);
    free(c);
    free(d);
}

/* FillOrder 2 (libtiff reverses each byte's bits), a photometric
 * interpretation GDAL converts, strips too big to hold one per thread:
 * left to GDAL. */
static void test_fill_order_and_huge_strips_left_to_gdal(void **state)
{
    (void)state;
    char path[512], why[200] = "";
    snprintf(path, sizeof path, "%s/fill2.tif", tmp);
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 16);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 4);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 4);
    uint8_t px[64];
    for (int i = 0; i < 64; i++)
        px[i] = (uint8_t)(i * 3);
    assert_int_equal(TIFFWriteEncodedStrip(t, 0, px, sizeof px), 64);
    TIFFClose(t);
    assert_null(aw_tileread_open(path, 16, 4, 1, AW_TR_U8, why, sizeof why));
    assert_non_null(strstr(why, "fill order 2"));

    /* CIE L*a*b*: GDAL does not return its samples as stored. */
    snprintf(path, sizeof path, "%s/lab.tif", tmp);
    t = TIFFOpen(path, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 16);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 4);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_CIELAB);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 4);
    assert_int_equal(TIFFWriteEncodedStrip(t, 0, px, sizeof px), 64);
    TIFFClose(t);
    assert_null(aw_tileread_open(path, 16, 4, 1, AW_TR_U8, why, sizeof why));
    assert_non_null(strstr(why, "photometric interpretation 8"));

    /* One strip of 4100 x 2100 uint16: 17 MB. */
    snprintf(path, sizeof path, "%s/onestrip.tif", tmp);
    const char *o[] = {"COMPRESS=DEFLATE", "BLOCKYSIZE=2100", NULL};
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, 4100, 2100,
                                 1, GDT_UInt16, (char **)(uintptr_t)o);
    assert_non_null(ds);
    GDALClose(ds);
    assert_null(
        aw_tileread_open(path, 4100, 2100, 1, AW_TR_U16, why, sizeof why));
    assert_non_null(strstr(why, "blocks of 4100 x 2100"));
}

/* A file cut short: the tiles past its end are refused (GDAL reports
 * them), the others served. */
static void test_truncated_file(void **state)
{
    (void)state;
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                       "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *p = make("cut.tif", GDT_UInt16, 1, o);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    const char *off = GDALGetMetadataItem(GDALGetRasterBand(ds, 1),
                                          "BLOCK_OFFSET_3_2", "TIFF");
    assert_non_null(off);
    GDALClose(ds);
    /* GDAL writes tiles in order and its directory first: cutting at the
     * last tile leaves every other tile whole. */
    assert_int_equal(truncate(p, atol(off) + 10), 0);
    aw_tileread *r = open_it(p, GDT_UInt16, 1);
    assert_non_null(r);
    aw_tr_conv conv = {0, 1, 0.0, 1e-4f, -0.1f};
    char why[200] = "";
    float out[W * 29];
    assert_int_equal(aw_tileread_window(r, 1, 0, 128, W, 29, &conv, out, W, 2,
                                        why, sizeof why),
                     1);
    assert_non_null(strstr(why, "not as expected"));
    ds = GDALOpen(p, GA_ReadOnly);
    assert_int_equal(check_window(r, ds, 1, 0, 0, W, 128, &conv), 0);
    assert_int_equal(check_window(r, ds, 1, 0, 128, 150, 29, &conv), 0);
    GDALClose(ds);
    aw_tileread_close(r);
    free(p);
}

static void test_sparse_and_corrupt_tiles_refused(void **state)
{
    (void)state;
    aw_tr_conv conv = {0, 1, 0.0, 1e-4f, -0.1f};
    /* Sparse: only the top-left 64 x 64 tile written. */
    char path[512];
    snprintf(path, sizeof path, "%s/sparse.tif", tmp);
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64",  "BLOCKYSIZE=64",
                       "COMPRESS=DEFLATE", "SPARSE_OK=TRUE", NULL};
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, W, H, 1,
                                 GDT_UInt16, (char **)(uintptr_t)o);
    uint16_t block[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        block[i] = (uint16_t)(1000 + i % 300);
    assert_int_equal(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, 64,
                                  64, block, 64, 64, GDT_UInt16, 0, 0),
                     CE_None);
    GDALClose(ds);
    aw_tileread *r = open_it(path, GDT_UInt16, 1);
    assert_non_null(r);
    ds = GDALOpen(path, GA_ReadOnly);
    assert_int_equal(check_window(r, ds, 1, 0, 0, 64, 40, &conv), 0);
    assert_int_equal(check_window(r, ds, 1, 0, 40, 70, 10, &conv), 1);
    assert_int_equal(check_window(r, ds, 1, 3, 41, 60, 23, &conv), 0);
    GDALClose(ds);
    aw_tileread_close(r);

    /* Corrupt: the zlib header of tile (1, 1) zeroed. */
    const char *oc[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                        "COMPRESS=DEFLATE", "PREDICTOR=2",   NULL};
    char *p = make("corrupt.tif", GDT_UInt16, 1, oc);
    ds = GDALOpen(p, GA_ReadOnly);
    const char *off = GDALGetMetadataItem(GDALGetRasterBand(ds, 1),
                                          "BLOCK_OFFSET_1_1", "TIFF");
    assert_non_null(off);
    long at = atol(off);
    GDALClose(ds);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fwrite("\0\0", 1, 2, f), 2);
    fclose(f);
    r = open_it(p, GDT_UInt16, 1);
    assert_non_null(r);
    ds = GDALOpen(p, GA_ReadOnly);
    /* Rows 0-59 (tiles of row 0, row 0 kept), then 60-99 (takes tile
     * (1, 1)): refused; then rows 128-156, after it: served. */
    assert_int_equal(check_window(r, ds, 1, 0, 0, W, 60, &conv), 0);
    char why[200] = "";
    float out[W * 40];
    assert_int_equal(aw_tileread_window(r, 1, 0, 60, W, 40, &conv, out, W, 2,
                                        why, sizeof why),
                     1);
    assert_non_null(strstr(why, "tile 5")); /* (1, 1) of 4 tiles across */
    assert_int_equal(check_window(r, ds, 1, 0, 60, 60, 40, &conv), 0);
    assert_int_equal(check_window(r, ds, 1, 0, 128, W, H - 128, &conv), 0);
    GDALClose(ds);
    aw_tileread_close(r);
    free(p);
}

/* Random uint16 tiles (DEFLATE keeps them as stored blocks, so a changed
 * byte is a changed pixel, seen only by the stream's adler32 at its end). */
static char *make_random(const char *name)
{
    char *path = aw_path_join(tmp, name);
    assert_non_null(path);
    GDALDatasetH mem =
        GDALCreate(GDALGetDriverByName("MEM"), "", W, H, 1, GDT_UInt16, NULL);
    uint16_t *buf = malloc(sizeof *buf * W * H);
    uint32_t s = 99u;
    for (size_t i = 0; i < (size_t)W * H; i++)
        buf[i] = (uint16_t)(aw_lcg_next(&s) >> 16);
    assert_int_equal(GDALRasterIO(GDALGetRasterBand(mem, 1), GF_Write, 0, 0, W,
                                  H, buf, W, H, GDT_UInt16, 0, 0),
                     CE_None);
    free(buf);
    const char *o[] = {"TILED=YES",        "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                       "COMPRESS=DEFLATE", "ZLEVEL=1",      NULL};
    GDALDatasetH ds = GDALCreateCopy(GDALGetDriverByName("GTiff"), path, mem,
                                     FALSE, (char **)(uintptr_t)o, NULL, NULL);
    assert_non_null(ds);
    GDALClose(ds);
    GDALClose(mem);
    return path;
}

/* One byte of a make_random tile's stored data changed: pixel `x` of its
 * row `y` (after 2 bytes of zlib header and 5 of the stored block's). */
static void change_stored_pixel(const char *p, const char *block, int y, int x)
{
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    long at =
        atol(GDALGetMetadataItem(GDALGetRasterBand(ds, 1), block, "TIFF"));
    GDALClose(ds);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    long pos = at + 2 + 5 + ((long)y * 64 + x) * 2;
    assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, pos, SEEK_SET), 0);
    assert_int_not_equal(fputc(c ^ 0x55, f), EOF);
    fclose(f);
}

static void
test_a_tile_read_in_part_is_checked_at_the_end_of_the_pass(void **state)
{
    (void)state;
    aw_tr_conv conv = {0, 0, 0.0, 1.0f, 0.0f};
    char why[200] = "";
    float out[W * 20];
    /* With streams kept, and with no budget for them (the tiles are then
     * inflated from their top for the check). */
    for (int case_ = 0; case_ < 4; case_++) {
        int damaged = case_ & 1;
        aw_tileread_set_budget(case_ >= 2 ? 0 : SIZE_MAX);
        char *p = make_random(damaged ? "adler_bad.tif" : "adler_good.tif");
        if (damaged) {
            /* Pixel 4 of tile 0's row 7 changed. */
            change_stored_pixel(p, "BLOCK_OFFSET_0_0", 7, 4);
            /* GDAL refuses the tile (its checksum). */
            GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
            CPLPushErrorHandler(CPLQuietErrorHandler);
            assert_int_equal(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0,
                                          0, W, 20, out, W, 20, GDT_Float32, 0,
                                          0),
                             CE_Failure);
            CPLPopErrorHandler();
            GDALClose(ds);
        }
        aw_tileread *r = open_it(p, GDT_UInt16, 1);
        assert_non_null(r);
        /* Rows 0-19, inside the first row of tiles: the window is served
         * (the damage is not reached), the streams kept for a next one. */
        assert_int_equal(aw_tileread_window(r, 1, 0, 0, W, 20, &conv, out, W, 2,
                                            why, sizeof why),
                         0);
        /* No next window: the pass is over. */
        int rc = aw_tileread_verify(r, why, sizeof why);
        if (damaged) {
            assert_int_equal(rc, 1);
            assert_non_null(strstr(why, "tile 0: checksum"));
        }
        else {
            assert_int_equal(rc, 0);
        }
        /* Nothing left to check (a tile checked once is not again). */
        assert_int_equal(aw_tileread_verify(r, why, sizeof why), 0);
        /* A next pass: the same again (a damaged tile is never "checked"). */
        assert_int_equal(aw_tileread_window(r, 1, 0, 40, W, 20, &conv, out, W,
                                            2, why, sizeof why),
                         0);
        assert_int_equal(aw_tileread_verify(r, why, sizeof why), damaged);
        aw_tileread_close(r);
        free(p);
    }
    aw_tileread_set_budget(SIZE_MAX);
}

static void test_the_last_row_of_tiles_is_checked_to_its_padding(void **state)
{
    (void)state;
    /* H = 157 rows in 64-row tiles: the last row of tiles (rows 128-191)
     * ends in 35 rows of padding no window reads, where its checksum is.
     * One byte of tile (2, 0) changed; strips of 50 rows down to H. */
    aw_tr_conv conv = {0, 0, 0.0, 1.0f, 0.0f};
    char why[200] = "";
    float out[W * 50];
    for (int budget = 0; budget < 2; budget++) {
        aw_tileread_set_budget(budget ? SIZE_MAX : 0);
        char *p = make_random("adler_last.tif");
        change_stored_pixel(p, "BLOCK_OFFSET_0_2", 10, 0); /* row 138 */
        aw_tileread *r = open_it(p, GDT_UInt16, 1);
        assert_non_null(r);
        for (int y = 0; y < H; y += 50) {
            int h = y + 50 <= H ? 50 : H - y;
            assert_int_equal(aw_tileread_window(r, 1, 0, y, W, h, &conv, out, W,
                                                2, why, sizeof why),
                             0);
        }
        assert_int_equal(aw_tileread_verify(r, why, sizeof why), 1);
        assert_non_null(strstr(why, "checksum"));
        aw_tileread_close(r);
        free(p);
    }
    aw_tileread_set_budget(SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint16_deflate_predictor2_tiles),
        cmocka_unit_test(
            test_a_tile_read_in_part_is_checked_at_the_end_of_the_pass),
        cmocka_unit_test(test_the_last_row_of_tiles_is_checked_to_its_padding),
        cmocka_unit_test(test_no_budget_for_kept_rows),
        cmocka_unit_test(test_strips_with_a_halo_go_on_from_kept_rows),
        cmocka_unit_test(test_tiles_bigger_than_the_inflate_history),
        cmocka_unit_test(test_windows_ending_on_a_tile_boundary),
        cmocka_unit_test(test_windows_over_three_rows_of_tiles),
        cmocka_unit_test(test_a_second_pass_does_not_count_as_an_overlap),
        cmocka_unit_test(test_a_stream_cut_short_is_refused_where_it_ends),
        cmocka_unit_test(test_int16_strips_short_last),
        cmocka_unit_test(test_byte_uncompressed_tiles_and_strips),
        cmocka_unit_test(test_float32_predictor3_with_nan_and_nodata),
        cmocka_unit_test(test_band_planes),
        cmocka_unit_test(test_left_to_gdal),
        cmocka_unit_test(test_sparse_and_corrupt_tiles_refused),
        cmocka_unit_test(test_fill_order_and_huge_strips_left_to_gdal),
        cmocka_unit_test(test_truncated_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

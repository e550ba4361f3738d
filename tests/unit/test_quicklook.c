/* Quicklook PNGs (pipeline/report.c): small GeoTIFFs written here with
 * GDAL, rendered, and the PNG read back with GDAL pixel by pixel.
 *
 * Expected values are worked out by hand: the class raster keeps its colour
 * table entries; a ramp value on a stop gets that stop's colour exactly;
 * the true-colour stretch maps lo -> 1, hi -> 255, (lo + hi) / 2 -> 1 +
 * 127 = 128; no data -> 0, 0, 0 with alpha 0. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <gdal.h>
#include <gdal_utils.h>
#include <omp.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/report.h"
#include "aralwatch/util.h"

typedef struct fx {
    aw_ctx *ctx;
    char *tmp;
} fx;

static int setup(void **state)
{
    GDALAllRegister();
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->ctx = aw_ctx_create();
    f->tmp = aw_test_mkdtemp("quicklook");
    if (!f->ctx || !f->tmp)
        return -1;
    aw_ctx_set_log_level(f->ctx, AW_LOG_ERROR);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    aw_test_rmtree(f->tmp);
    free(f->tmp);
    aw_ctx_destroy(f->ctx);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

static char *path_in(const fx *f, const char *name)
{
    char *p = aw_path_join(f->tmp, name);
    assert_non_null(p);
    return p;
}

static void set_georef(GDALDatasetH ds)
{
    double gt[6] = {500000.0, 30.0, 0.0, 4800000.0, 0.0, -30.0};
    GDALSetGeoTransform(ds, gt);
}

/* A one-band float32 GeoTIFF; nodata NaN when nan_nodata, else `nodata`
 * when has_nodata. */
static char *float_tif(const fx *f, const char *name, int w, int h, float *v,
                       int has_nodata, double nodata)
{
    char *path = path_in(f, name);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, w, h, 1,
                                 GDT_Float32, NULL);
    assert_non_null(ds);
    set_georef(ds);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    if (has_nodata)
        GDALSetRasterNoDataValue(b, nodata);
    assert_int_equal(
        GDALRasterIO(b, GF_Write, 0, 0, w, h, v, w, h, GDT_Float32, 0, 0),
        CE_None);
    GDALClose(ds);
    return path;
}

/* A water.tif-like class raster: 0 not water, 1 water, 255 nodata (alpha
 * 0), the colours output.c gives them. */
static char *class_tif(const fx *f, const char *name, int w, int h,
                       unsigned char *v)
{
    char *path = path_in(f, name);
    GDALDatasetH ds =
        GDALCreate(GDALGetDriverByName("GTiff"), path, w, h, 1, GDT_Byte, NULL);
    assert_non_null(ds);
    set_georef(ds);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
    GDALColorEntry not_water = {230, 220, 190, 255};
    GDALColorEntry water = {30, 90, 200, 255};
    GDALColorEntry nodata = {0, 0, 0, 0};
    GDALSetColorEntry(ct, 0, &not_water);
    GDALSetColorEntry(ct, 1, &water);
    GDALSetColorEntry(ct, 255, &nodata);
    GDALSetRasterColorTable(b, ct);
    GDALDestroyColorTable(ct);
    GDALSetRasterNoDataValue(b, 255);
    assert_int_equal(
        GDALRasterIO(b, GF_Write, 0, 0, w, h, v, w, h, GDT_Byte, 0, 0),
        CE_None);
    GDALClose(ds);
    return path;
}

/* Pixel (x, y) of every band of an image (up to 4). */
static void pixel(GDALDatasetH ds, int x, int y, int out[4])
{
    for (int k = 0; k < 4; k++) {
        out[k] = -1;
        if (k >= GDALGetRasterCount(ds))
            continue;
        unsigned char v = 0;
        assert_int_equal(GDALRasterIO(GDALGetRasterBand(ds, k + 1), GF_Read, x,
                                      y, 1, 1, &v, 1, 1, GDT_Byte, 0, 0),
                         CE_None);
        out[k] = v;
    }
}

static GDALDatasetH open_png(const char *path)
{
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    assert_non_null(ds);
    assert_string_equal(GDALGetDriverShortName(GDALGetDatasetDriver(ds)),
                        "PNG");
    return ds;
}

/* Number of entries in dir (without . and ..). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- Class rasters ---- */

static void classes_keep_the_colour_table(void **state)
{
    fx *f = *state;
    unsigned char v[12] = {0, 1, 1, 255, 1, 0, 0, 1, 255, 255, 0, 1};
    char *tif = class_tif(f, "water.tif", 4, 3, v);
    char *png = path_in(f, "water.png");
    assert_int_equal(aw_quicklook_classes(f->ctx, tif, 512, png), AW_OK);
    /* Only the two inputs' files and the PNG: no temporary, no .aux.xml. */
    assert_int_equal(count_files(f->tmp), 2);

    GDALDatasetH ds = open_png(png);
    assert_int_equal(GDALGetRasterXSize(ds), 4);
    assert_int_equal(GDALGetRasterYSize(ds), 3);
    assert_int_equal(GDALGetRasterCount(ds), 1);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    GDALColorTableH ct = GDALGetRasterColorTable(b);
    assert_non_null(ct);
    int px[4];
    pixel(ds, 1, 0, px); /* class 1 */
    assert_int_equal(px[0], 1);
    const GDALColorEntry *e = GDALGetColorEntry(ct, px[0]);
    assert_non_null(e);
    assert_int_equal(e->c1, 30);
    assert_int_equal(e->c2, 90);
    assert_int_equal(e->c3, 200);
    assert_int_equal(e->c4, 255);
    pixel(ds, 0, 0, px); /* class 0 */
    e = GDALGetColorEntry(ct, px[0]);
    assert_int_equal(px[0], 0);
    assert_int_equal(e->c1, 230);
    assert_int_equal(e->c2, 220);
    assert_int_equal(e->c3, 190);
    pixel(ds, 3, 0, px); /* nodata: transparent through tRNS */
    assert_int_equal(px[0], 255);
    e = GDALGetColorEntry(ct, 255);
    assert_non_null(e);
    assert_int_equal(e->c4, 0);
    GDALClose(ds);
    free(tif);
    free(png);
}

static void classes_downsample_the_long_side(void **state)
{
    fx *f = *state;
    const int w = 200, h = 100;
    unsigned char *v = calloc((size_t)w * (size_t)h, 1);
    assert_non_null(v);
    for (int i = 0; i < w * h; i++)
        v[i] = (unsigned char)((i % w) < w / 2 ? 1 : 0);
    char *tif = class_tif(f, "big.tif", w, h, v);
    char *png = path_in(f, "big.png");
    assert_int_equal(aw_quicklook_classes(f->ctx, tif, 50, png), AW_OK);
    GDALDatasetH ds = open_png(png);
    assert_int_equal(GDALGetRasterXSize(ds), 50);
    assert_int_equal(GDALGetRasterYSize(ds), 25);
    int px[4];
    pixel(ds, 5, 10, px); /* left half: water, still a class (mode) */
    assert_int_equal(px[0], 1);
    pixel(ds, 45, 10, px);
    assert_int_equal(px[0], 0);
    GDALClose(ds);
    free(v);
    free(tif);
    free(png);
}

/* All bands of an image, as bytes (up to 4 bands of w x h). */
static unsigned char *png_pixels(const char *png, int *w, int *h, int *nb)
{
    GDALDatasetH ds = open_png(png);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    *nb = GDALGetRasterCount(ds);
    size_t plane = (size_t)*w * (size_t)*h;
    unsigned char *v = malloc(plane * (size_t)*nb);
    assert_non_null(v);
    for (int k = 0; k < *nb; k++)
        assert_int_equal(GDALRasterIO(GDALGetRasterBand(ds, k + 1), GF_Read, 0,
                                      0, *w, *h, v + (size_t)k * plane, *w, *h,
                                      GDT_Byte, 0, 0),
                         CE_None);
    GDALClose(ds);
    return v;
}

static void same_png(const char *a, const char *b)
{
    int wa, ha, na, wb, hb, nb;
    unsigned char *va = png_pixels(a, &wa, &ha, &na);
    unsigned char *vb = png_pixels(b, &wb, &hb, &nb);
    assert_int_equal(wa, wb);
    assert_int_equal(ha, hb);
    assert_int_equal(na, nb);
    assert_memory_equal(va, vb, (size_t)wa * (size_t)ha * (size_t)na);
    free(va);
    free(vb);
}

/* gdal_translate -outsize ow oh -r mode of `tif` into `png`: GDAL's own
 * whole-raster downsampling, the reference. */
static void translate_mode(const char *tif, int ow, int oh, const char *png)
{
    char sw[16], sh[16];
    snprintf(sw, sizeof sw, "%d", ow);
    snprintf(sh, sizeof sh, "%d", oh);
    const char *argv[] = {"-of", "PNG", "-b", "1",    "-outsize",
                          sw,    sh,    "-r", "mode", NULL};
    GDALTranslateOptions *o =
        GDALTranslateOptionsNew((char **)(uintptr_t)argv, NULL);
    GDALDatasetH src = GDALOpen(tif, GA_ReadOnly);
    GDALDatasetH out = GDALTranslate(png, src, o, NULL);
    assert_non_null(out);
    GDALClose(out);
    GDALClose(src);
    GDALTranslateOptionsFree(o);
}

/* The quicklook of a raster without overviews is read in parts of output
 * rows, on several threads: for 1, 2, 3 and 5 threads it is the same
 * image, and the same as gdal_translate -outsize -r mode of the whole file
 * (GDAL's own reference), on a scale that is not a whole number (1010 x
 * 1010 to 200 x 200: 5.05) with random classes and nodata; the ramp
 * (average) is the same image for every thread count. With overviews
 * (where GDAL reads an overview, and parts are not used) the same holds;
 * and on 1003 x 997 (no output row but the first starts at a whole
 * source row, so one read) too. */
static void parts_read_by_threads_equal_the_whole_read(void **state)
{
    fx *f = *state;
    static const int sizes[][3] = {
        {1010, 1010, 0}, {1010, 1010, 1}, {1003, 997, 0}};
    int saved = omp_get_max_threads();
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        const int w = sizes[c][0], h = sizes[c][1];
        unsigned char *v = malloc((size_t)w * (size_t)h);
        float *fv = malloc(sizeof(float) * (size_t)w * (size_t)h);
        assert_non_null(v);
        assert_non_null(fv);
        uint32_t s = 7u;
        for (int i = 0; i < w * h; i++) {
            uint32_t r = aw_lcg_next(&s) >> 24;
            /* patches of a class, with noise and nodata */
            int x = i % w, y = i / w;
            unsigned cls = r < 20   ? 255u
                           : r < 60 ? r & 1u
                                    : (unsigned)((x / 9) + (y / 7)) & 1u;
            v[i] = (unsigned char)cls;
            fv[i] = r < 10 ? NAN : (float)((x * 3 + y) % 200) / 200.0f;
        }
        char name[64];
        snprintf(name, sizeof name, "c%zu.tif", c);
        char *tif = class_tif(f, name, w, h, v);
        snprintf(name, sizeof name, "c%zu_f.tif", c);
        char *ftif = float_tif(f, name, w, h, fv, 0, 0);
        if (sizes[c][2]) {
            int levels[] = {2, 4};
            GDALDatasetH up = GDALOpen(tif, GA_Update);
            assert_int_equal(GDALBuildOverviews(up, "NEAREST", 2, levels, 0,
                                                NULL, NULL, NULL),
                             CE_None);
            GDALClose(up);
            up = GDALOpen(ftif, GA_Update);
            assert_int_equal(GDALBuildOverviews(up, "AVERAGE", 2, levels, 0,
                                                NULL, NULL, NULL),
                             CE_None);
            GDALClose(up);
        }
        int ow = 200, oh = (int)lround(200.0 * h / w);
        snprintf(name, sizeof name, "c%zu_ref.png", c);
        char *ref = path_in(f, name);
        translate_mode(tif, ow, oh, ref);
        char *r1 = NULL;
        static const int threads[] = {1, 2, 3, 5};
        for (size_t k = 0; k < 4; k++) {
            omp_set_num_threads(threads[k]);
            snprintf(name, sizeof name, "c%zu_t%d.png", c, threads[k]);
            char *png = path_in(f, name);
            assert_int_equal(aw_quicklook_classes(f->ctx, tif, 200, png),
                             AW_OK);
            same_png(png, ref);
            free(png);
            snprintf(name, sizeof name, "c%zu_ramp%d.png", c, threads[k]);
            png = path_in(f, name);
            assert_int_equal(aw_quicklook_ramp(f->ctx, ftif, aw_ramp_vci,
                                               aw_ramp_vci_n, 200, png),
                             AW_OK);
            if (r1) {
                same_png(png, r1);
                free(png);
            }
            else {
                r1 = png;
            }
        }
        free(v);
        free(fv);
        free(tif);
        free(ftif);
        free(ref);
        free(r1);
    }
    omp_set_num_threads(saved);
}

static void classes_reject_a_float_raster(void **state)
{
    fx *f = *state;
    float v[4] = {0, 1, 2, 3};
    char *tif = float_tif(f, "float.tif", 2, 2, v, 0, 0);
    char *png = path_in(f, "float.png");
    assert_int_equal(aw_quicklook_classes(f->ctx, tif, 0, png), AW_ERR_INPUT);
    assert_non_null(strstr(aw_ctx_errmsg(f->ctx), "float.tif"));
    assert_false(exists(png));
    free(tif);
    free(png);
}

/* ---- Ramps ---- */

static void assert_stop(const int px[4], const aw_ramp_stop *s)
{
    assert_int_equal(px[0], s->r);
    assert_int_equal(px[1], s->g);
    assert_int_equal(px[2], s->b);
    assert_int_equal(px[3], 255);
}

static void ramp_maps_vci_stops_to_their_colours(void **state)
{
    fx *f = *state;
    const aw_ramp_stop *r = aw_ramp_vci;
    const size_t last = aw_ramp_vci_n - 1;
    assert_true(aw_ramp_vci_n >= 3);
    assert_close(r[0].value, 0, 0);
    assert_close(r[last].value, 100, 0);
    float v[10] = {
        0.0f,  (float)r[1].value, (float)r[2].value,        100.0f, NAN, 120.0f,
        -5.0f, INFINITY,          0.5f * (float)r[1].value, 0.0f};
    char *tif = float_tif(f, "vci.tif", 5, 2, v, 1, (double)NAN);
    char *png = path_in(f, "vci.png");
    assert_int_equal(
        aw_quicklook_ramp(f->ctx, tif, aw_ramp_vci, aw_ramp_vci_n, 256, png),
        AW_OK);
    assert_int_equal(count_files(f->tmp), 2);
    GDALDatasetH ds = open_png(png);
    assert_int_equal(GDALGetRasterCount(ds), 4);
    assert_int_equal(GDALGetRasterXSize(ds), 5);
    int px[4];
    pixel(ds, 0, 0, px); /* VCI 0: the first colour */
    assert_stop(px, &r[0]);
    pixel(ds, 1, 0, px);
    assert_stop(px, &r[1]);
    pixel(ds, 2, 0, px);
    assert_stop(px, &r[2]);
    pixel(ds, 3, 0, px); /* VCI 100: the last colour */
    assert_stop(px, &r[last]);
    pixel(ds, 4, 0, px); /* NaN: transparent */
    assert_int_equal(px[3], 0);
    assert_int_equal(px[0], 0);
    pixel(ds, 0, 1, px); /* beyond the ends: the end colours */
    assert_stop(px, &r[last]);
    pixel(ds, 1, 1, px);
    assert_stop(px, &r[0]);
    pixel(ds, 2, 1, px); /* +inf is no data too */
    assert_int_equal(px[3], 0);
    pixel(ds, 3, 1, px); /* half-way between stops 0 and 1 */
    assert_close(px[0], 0.5 * (r[0].r + r[1].r), 1);
    assert_close(px[1], 0.5 * (r[0].g + r[1].g), 1);
    assert_close(px[2], 0.5 * (r[0].b + r[1].b), 1);
    assert_int_equal(px[3], 255);
    GDALClose(ds);
    free(tif);
    free(png);
}

static void ramp_honours_a_nodata_value(void **state)
{
    fx *f = *state;
    float v[4] = {-9999.0f, 50.0f, 50.0f, -9999.0f};
    char *tif = float_tif(f, "nd.tif", 2, 2, v, 1, -9999.0);
    char *png = path_in(f, "nd.png");
    assert_int_equal(
        aw_quicklook_ramp(f->ctx, tif, aw_ramp_vci, aw_ramp_vci_n, 0, png),
        AW_OK);
    GDALDatasetH ds = open_png(png);
    int px[4];
    pixel(ds, 0, 0, px);
    assert_int_equal(px[3], 0);
    pixel(ds, 1, 0, px);
    assert_int_equal(px[3], 255);
    GDALClose(ds);
    free(tif);
    free(png);
}

static void ramp_downsamples_and_rejects_bad_stops(void **state)
{
    fx *f = *state;
    const int w = 100, h = 300;
    float *v = calloc((size_t)w * (size_t)h, sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < w * h; i++)
        v[i] = 50.0f;
    char *tif = float_tif(f, "tall.tif", w, h, v, 1, (double)NAN);
    char *png = path_in(f, "tall.png");
    assert_int_equal(
        aw_quicklook_ramp(f->ctx, tif, aw_ramp_vci, aw_ramp_vci_n, 60, png),
        AW_OK);
    GDALDatasetH ds = open_png(png);
    assert_int_equal(GDALGetRasterXSize(ds), 20);
    assert_int_equal(GDALGetRasterYSize(ds), 60);
    int px[4];
    pixel(ds, 10, 30, px);
    assert_stop(px, &aw_ramp_vci[2]); /* the 50 stop */
    GDALClose(ds);

    const aw_ramp_stop bad[2] = {{10, 0, 0, 0}, {5, 255, 255, 255}};
    char *png2 = path_in(f, "bad.png");
    assert_int_equal(aw_quicklook_ramp(f->ctx, tif, bad, 2, 0, png2),
                     AW_ERR_USAGE);
    assert_false(exists(png2));
    free(v);
    free(tif);
    free(png);
    free(png2);
}

/* ---- True colour ---- */

static void rgb_stretches_lo_to_1_and_hi_to_255(void **state)
{
    fx *f = *state;
    /* x:      0     1     2      3     4     5 */
    float r[6] = {0.3f, 0.0f, 0.15f, NAN, 0.6f, -0.1f};
    float g[6] = {0.3f, 0.0f, 0.15f, 0.1f, 0.6f, -0.1f};
    float b[6] = {0.3f, 0.0f, 0.15f, 0.1f, 0.6f, -0.1f};
    char *rt = float_tif(f, "red.tif", 6, 1, r, 1, (double)NAN);
    char *gt = float_tif(f, "green.tif", 6, 1, g, 1, (double)NAN);
    char *bt = float_tif(f, "blue.tif", 6, 1, b, 0, 0);
    char *png = path_in(f, "rgb.png");
    assert_int_equal(aw_quicklook_rgb(f->ctx, rt, gt, bt, 0.0, 0.3, 512, png),
                     AW_OK);
    assert_int_equal(count_files(f->tmp), 4);
    GDALDatasetH ds = open_png(png);
    assert_int_equal(GDALGetRasterCount(ds), 4);
    int px[4];
    pixel(ds, 0, 0, px); /* hi */
    assert_int_equal(px[0], 255);
    assert_int_equal(px[1], 255);
    assert_int_equal(px[2], 255);
    assert_int_equal(px[3], 255);
    pixel(ds, 1, 0, px); /* lo: 1, not 0 (0 is kept for no data) */
    assert_int_equal(px[0], 1);
    assert_int_equal(px[3], 255);
    pixel(ds, 2, 0, px); /* middle: 1 + 127 */
    assert_int_equal(px[0], 128);
    assert_int_equal(px[2], 128);
    pixel(ds, 3, 0, px); /* NaN in one band: no data */
    assert_int_equal(px[0], 0);
    assert_int_equal(px[1], 0);
    assert_int_equal(px[2], 0);
    assert_int_equal(px[3], 0);
    pixel(ds, 4, 0, px); /* clipped */
    assert_int_equal(px[1], 255);
    pixel(ds, 5, 0, px);
    assert_int_equal(px[1], 1);
    assert_int_equal(px[3], 255);
    GDALClose(ds);
    free(rt);
    free(gt);
    free(bt);
    free(png);
}

static void rgb_rejects_bands_of_different_sizes(void **state)
{
    fx *f = *state;
    float a[4] = {0, 0, 0, 0};
    float c[6] = {0, 0, 0, 0, 0, 0};
    char *r = float_tif(f, "r.tif", 2, 2, a, 0, 0);
    char *g = float_tif(f, "g.tif", 3, 2, c, 0, 0);
    char *png = path_in(f, "mismatch.png");
    assert_int_equal(aw_quicklook_rgb(f->ctx, r, g, r, 0, 0.3, 0, png),
                     AW_ERR_INPUT);
    assert_non_null(strstr(aw_ctx_errmsg(f->ctx), "g.tif"));
    assert_false(exists(png));
    assert_int_equal(aw_quicklook_rgb(f->ctx, r, r, r, 0.3, 0.3, 0, png),
                     AW_ERR_USAGE);
    free(r);
    free(g);
    free(png);
}

static void missing_input_is_an_input_error_and_writes_nothing(void **state)
{
    fx *f = *state;
    char *tif = path_in(f, "missing.tif");
    char *png = path_in(f, "missing.png");
    assert_int_equal(aw_quicklook_classes(f->ctx, tif, 0, png), AW_ERR_INPUT);
    assert_non_null(strstr(aw_ctx_errmsg(f->ctx), "missing.tif"));
    assert_int_equal(
        aw_quicklook_ramp(f->ctx, tif, aw_ramp_vci, aw_ramp_vci_n, 0, png),
        AW_ERR_INPUT);
    assert_int_equal(aw_quicklook_rgb(f->ctx, tif, tif, tif, 0, 1, 0, png),
                     AW_ERR_INPUT);
    assert_int_equal(count_files(f->tmp), 0);
    free(tif);
    free(png);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(classes_keep_the_colour_table),
        T(classes_downsample_the_long_side),
        T(parts_read_by_threads_equal_the_whole_read),
        T(classes_reject_a_float_raster),
        T(ramp_maps_vci_stops_to_their_colours),
        T(ramp_honours_a_nodata_value),
        T(ramp_downsamples_and_rejects_bad_stops),
        T(rgb_stretches_lo_to_1_and_hi_to_255),
        T(rgb_rejects_bands_of_different_sizes),
        T(missing_input_is_an_input_error_and_writes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

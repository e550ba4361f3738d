/* The COG tile encoder (pipeline/tilewrite.c) when its spool file cannot
 * be read back.
 *
 * A COG's overview rows wait in the unlinked spool file beside the output
 * (`path`.tiles) until their row of tiles is complete, and its compressed
 * tiles wait there until close lays them out. Both are read back with
 * aw_pread_full, which this program wraps (-Wl,--wrap=aw_pread_full in
 * tests/CMakeLists.txt) to fail with EIO from the n-th call on: the
 * raster must fail with AW_ERR_IO and a message naming the spool file and
 * the error. (What is left of the file is the pipeline's to drop: it
 * writes into a staging folder that a failed date never publishes; see
 * tests/e2e/test_tilewrite.py's full-disk tests.)
 *
 * Without a fault the same raster is read back by GDAL: the full
 * resolution as written, and the first overview's pixels the mean of
 * their 2 x 2 source pixels (the raster is 600 x 600, so no fractional
 * windows), computed here. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include <unistd.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/ctx.h"
#include "aralwatch/pipeline.h"
#include "aralwatch/util.h"
#include "internal.h"

#define N     600 /* raster width and height */
#define STRIP 50  /* rows per aw_rwriter_rows call */
#define BLOCK 128 /* tiles; overviews 300, 150, 75 */

int __real_aw_pread_full(int fd, void *buf, size_t n, uint64_t off);
int __wrap_aw_pread_full(int fd, void *buf, size_t n, uint64_t off);

static int fail_from = -1; /* the call that fails first; -1: none */
static int calls;

int __wrap_aw_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    int k = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    if (fail_from >= 0 && k >= fail_from) {
        errno = EIO;
        return -1;
    }
    return __real_aw_pread_full(fd, buf, n, off);
}

static char *tmp;
static float *pixels; /* N x N, some NaN (nodata) */
static aw_grid grid;
static int calls_in_rows = -1; /* preads while the rows are written */

static int setup(void **state)
{
    (void)state;
    GDALAllRegister();
    tmp = aw_test_mkdtemp("tilewrite");
    pixels = malloc(sizeof(float) * N * N);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    char *wkt = NULL;
    if (!tmp || !pixels || OSRImportFromEPSG(srs, 32633) != OGRERR_NONE ||
        OSRExportToWkt(srs, &wkt) != OGRERR_NONE)
        return -1;
    OSRDestroySpatialReference(srs);
    grid.wkt = aw_strdup(wkt);
    CPLFree(wkt);
    double gt[6] = {500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0};
    memcpy(grid.gt, gt, sizeof gt);
    grid.width = grid.height = N;
    uint32_t s = 2024u;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            uint32_t r = aw_lcg_next(&s) >> 16;
            float v = (float)((x + 2 * y) % 400) / 400.0f - 0.5f +
                      (float)(r % 100) / 1000.0f;
            pixels[(size_t)y * N + (size_t)x] = (x * 7 + y) % 29 == 0 ? NAN : v;
        }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    aw_test_rmtree(tmp);
    free(tmp);
    free(pixels);
    free(grid.wkt);
    return 0;
}

/* Write the raster as a float32 DEFLATE COG at `name`; the status of the
 * first call that fails (the writer is then aborted) or of the close. */
static aw_status write_cog(aw_ctx *ctx, const char *name, char **path)
{
    *path = aw_path_join(tmp, name);
    assert_non_null(*path);
    aw_write_opts wo = {
        .cog = 1, .compress = "DEFLATE", .blocksize = BLOCK, .threads = 2};
    aw_rwriter *w = NULL;
    aw_status st = aw_rwriter_open(ctx, *path, &grid, GDT_Float32, 1.0, "test",
                                   NULL, NULL, 0, 1, (double)NAN, &wo, &w);
    assert_int_equal(st, AW_OK);
    for (int y = 0; y < N && st == AW_OK; y += STRIP)
        st = aw_rwriter_rows(ctx, w, y, STRIP, pixels + (size_t)y * N);
    if (st != AW_OK) {
        aw_rwriter_abort(w);
        return st;
    }
    calls_in_rows = calls;
    return aw_rwriter_close(ctx, w);
}

static void without_a_fault_the_cog_is_what_was_written(void **state)
{
    (void)state;
    aw_ctx *ctx = aw_ctx_create();
    char *path = NULL;
    calls = 0;
    fail_from = -1;
    aw_status st = write_cog(ctx, "ok.tif", &path);
    if (st != AW_OK)
        print_error("%s\n", aw_ctx_errmsg(ctx));
    assert_int_equal(st, AW_OK);
    /* Overview rows were read back while the rows came, and compressed
     * tiles at close: both paths the fault tests break. */
    assert_true(calls_in_rows > 0);
    assert_true(calls > calls_in_rows);

    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    assert_non_null(ds);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    assert_int_equal(GDALGetOverviewCount(b), 3);
    float *back = malloc(sizeof(float) * N * N);
    assert_non_null(back);
    assert_int_equal(
        GDALRasterIO(b, GF_Read, 0, 0, N, N, back, N, N, GDT_Float32, 0, 0),
        CE_None);
    for (size_t i = 0; i < (size_t)N * N; i++) {
        if (isnan(pixels[i]))
            assert_nan(back[i]);
        else
            assert_true(back[i] == pixels[i]);
    }
    /* Level 1: the mean of the 2 x 2 pixels that are not NaN. */
    GDALRasterBandH o = GDALGetOverview(b, 0);
    assert_int_equal(GDALGetRasterBandXSize(o), N / 2);
    assert_int_equal(GDALRasterIO(o, GF_Read, 0, 0, N / 2, N / 2, back, N / 2,
                                  N / 2, GDT_Float32, 0, 0),
                     CE_None);
    int checked = 0;
    for (int y = 0; y < N / 2; y++)
        for (int x = 0; x < N / 2; x++) {
            double sum = 0;
            int n = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    float v =
                        pixels[(size_t)(2 * y + dy) * N + (size_t)(2 * x + dx)];
                    if (!isnan(v)) {
                        sum += (double)v;
                        n++;
                    }
                }
            float got = back[(size_t)y * (N / 2) + (size_t)x];
            if (n == 0) {
                assert_nan(got);
                continue;
            }
            assert_close(got, sum / n, 1e-6);
            checked++;
        }
    assert_true(checked > (N / 2) * (N / 2) * 9 / 10);
    free(back);
    GDALClose(ds);
    free(path);
    aw_ctx_destroy(ctx);
}

/* Write `name` with the reads failing from call `from` on: AW_ERR_IO,
 * and the message names the spool (`name`.tiles) and says `what`. */
static void expect_spool_failure(const char *name, int from, const char *what)
{
    aw_ctx *ctx = aw_ctx_create();
    char *path = NULL;
    calls = 0;
    fail_from = from;
    aw_status st = write_cog(ctx, name, &path);
    fail_from = -1;
    assert_int_equal(st, AW_ERR_IO);
    char *want = aw_asprintf("%s.tiles: %s: %s", path, what, strerror(EIO));
    assert_non_null(want);
    assert_non_null(strstr(aw_ctx_errmsg(ctx), want));
    free(want);
    free(path);
    aw_ctx_destroy(ctx);
}

static void
a_failed_read_back_of_overview_rows_fails_naming_the_spool(void **state)
{
    (void)state;
    expect_spool_failure("rows.tif", 0, "cannot read back overview rows");
}

static void
a_failed_read_of_compressed_tiles_at_close_fails_naming_the_spool(void **state)
{
    (void)state;
    /* How many reads the rows take, from a run without a fault. */
    aw_ctx *ctx = aw_ctx_create();
    char *path = NULL;
    calls = 0;
    fail_from = -1;
    assert_int_equal(write_cog(ctx, "count.tif", &path), AW_OK);
    assert_true(calls_in_rows > 0);
    free(path);
    aw_ctx_destroy(ctx);
    /* The first read at close fails. */
    expect_spool_failure("close.tif", calls_in_rows, "cannot read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_a_fault_the_cog_is_what_was_written),
        cmocka_unit_test(
            a_failed_read_back_of_overview_rows_fails_naming_the_spool),
        cmocka_unit_test(
            a_failed_read_of_compressed_tiles_at_close_fails_naming_the_spool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

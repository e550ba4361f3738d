/* Unit tests for pipeline/zones.c: a zone rasterised band by band (512
 * rows at a time) and kept as runs per row must be exactly the zone GDAL
 * rasterises in one pass over a raster on the same lattice.
 *
 * Oracle: GDALRasterizeGeometries with GDAL's default transformer on one
 * MEM raster covering the grid and a margin around it (whole pixels of
 * the grid's lattice), pixel centres inside. From it: n_pixels (the whole
 * zone, also outside the grid), n_in_grid, the window, and every pixel of
 * the window. The zones are 1300 rows tall (three bands), with vertices on
 * pixel centres and pixel edges (where one pass and a shifted one could
 * disagree if the shift were not exact), a hole, two parts sharing rows,
 * and one sticking out of the grid on the top and left. */
#define _GNU_SOURCE
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
#include <gdal_alg.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/config.h"
#include "aralwatch/pipeline.h"
#include "aralwatch/util.h"

#define W   400
#define H   1300
#define RES 30.0
#define X0  600000.0
#define Y0  5000000.0
#define PAD 200 /* margin of the oracle raster, pixels */

/* Map x (column) and y (row) of the grid, possibly fractional, to WKT
 * coordinates. */
static void xy(double col, double row, char *buf, size_t n)
{
    snprintf(buf, n, "%.6f %.6f", X0 + col * RES, Y0 - row * RES);
}

/* A star polygon around (cx, cy) with k vertices of radius between rmin
 * and rmax (pixels), each snapped to a pixel centre (mode 1), a pixel
 * corner (mode 2) or left alone (0), as WKT ring text. */
static char *star(double cx, double cy, double rmin, double rmax, int k,
                  uint32_t *seed)
{
    size_t cap = 64 * (size_t)(k + 2);
    char *s = malloc(cap);
    size_t len = 0;
    char first[64] = "";
    s[0] = '\0';
    for (int i = 0; i < k; i++) {
        double a = 2 * M_PI * i / k;
        double r =
            rmin + (rmax - rmin) * (double)aw_lcg_uniform(seed, 0.0f, 1.0f);
        double col = cx + cos(a) * r, row = cy + sin(a) * r * 3.0;
        int mode = (int)(aw_lcg_next(seed) % 3);
        if (mode == 1) {
            col = floor(col) + 0.5;
            row = floor(row) + 0.5;
        }
        else if (mode == 2) {
            col = floor(col);
            row = floor(row);
        }
        char p[64];
        xy(col, row, p, sizeof p);
        if (i == 0)
            snprintf(first, sizeof first, "%s", p);
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? ", " : "", p);
    }
    snprintf(s + len, cap - len, ", %s", first);
    return s;
}

typedef struct fixture {
    char *tmp, *geojson;
    aw_grid grid;
    char *wkt;
} fixture;

static int setup(void **state)
{
    GDALAllRegister();
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->tmp = aw_test_mkdtemp("zones");
    assert_non_null(f->tmp);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(srs, 32641);
    OSRExportToWkt(srs, &f->wkt);
    OSRDestroySpatialReference(srs);
    f->grid.wkt = f->wkt;
    double gt[6] = {X0, RES, 0, Y0, 0, -RES};
    memcpy(f->grid.gt, gt, sizeof gt);
    f->grid.width = W;
    f->grid.height = H;
    f->grid.row_area_m2 = calloc(H, sizeof(double));
    for (int r = 0; r < H; r++)
        f->grid.row_area_m2[r] = RES * RES;

    uint32_t seed = 20261129u;
    char *a = star(200, 650, 60, 200, 37, &seed);   /* tall: 3 bands */
    char *hole = star(200, 650, 10, 40, 11, &seed); /* inside a */
    char *b1 = star(80, 900, 20, 60, 17, &seed);    /* two parts ... */
    char *b2 = star(320, 900, 20, 60, 23, &seed);   /* ... in one row */
    char *c = star(10, 60, 40, 90, 29, &seed);      /* out, top-left */
    f->geojson = aw_path_join(f->tmp, "zones.gpkg");
    char *wkts[3];
    wkts[0] = aw_asprintf("POLYGON ((%s), (%s))", a, hole);
    wkts[1] = aw_asprintf("MULTIPOLYGON (((%s)), ((%s)))", b1, b2);
    wkts[2] = aw_asprintf("POLYGON ((%s))", c);
    const char *ids[3] = {"lake", "pair", "edge"};
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GPKG"), f->geojson, 0, 0,
                                 0, GDT_Unknown, NULL);
    assert_non_null(ds);
    OGRSpatialReferenceH lsrs = OSRNewSpatialReference(f->wkt);
    OGRLayerH lyr = GDALDatasetCreateLayer(ds, "zones", lsrs, wkbUnknown, NULL);
    OSRDestroySpatialReference(lsrs);
    OGRFieldDefnH fd = OGR_Fld_Create("id", OFTString);
    OGR_L_CreateField(lyr, fd, TRUE);
    OGR_Fld_Destroy(fd);
    for (int i = 0; i < 3; i++) {
        OGRFeatureH ft = OGR_F_Create(OGR_L_GetLayerDefn(lyr));
        OGRGeometryH g = NULL;
        char *w = wkts[i];
        assert_int_equal(OGR_G_CreateFromWkt(&w, NULL, &g), OGRERR_NONE);
        OGR_F_SetFieldString(ft, 0, ids[i]);
        OGR_F_SetGeometryDirectly(ft, g);
        assert_int_equal(OGR_L_CreateFeature(lyr, ft), OGRERR_NONE);
        OGR_F_Destroy(ft);
        free(wkts[i]);
    }
    GDALClose(ds);
    free(a);
    free(hole);
    free(b1);
    free(b2);
    free(c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aw_test_rmtree(f->tmp);
    free(f->tmp);
    free(f->geojson);
    free(f->grid.row_area_m2);
    CPLFree(f->wkt);
    free(f);
    return 0;
}

/* The oracle: one pass over the grid plus PAD pixels on every side. */
static uint8_t *oracle(const fixture *f, OGRGeometryH g)
{
    int ow = W + 2 * PAD, oh = H + 2 * PAD;
    GDALDatasetH m =
        GDALCreate(GDALGetDriverByName("MEM"), "", ow, oh, 1, GDT_Byte, NULL);
    double gt[6] = {X0 - PAD * RES, RES, 0, Y0 + PAD * RES, 0, -RES};
    GDALSetGeoTransform(m, gt);
    GDALSetProjection(m, f->wkt);
    int band = 1;
    double burn = 1;
    assert_int_equal(GDALRasterizeGeometries(m, 1, &band, 1, &g, NULL, NULL,
                                             &burn, NULL, NULL, NULL),
                     CE_None);
    uint8_t *px = malloc((size_t)ow * (size_t)oh);
    assert_int_equal(GDALRasterIO(GDALGetRasterBand(m, 1), GF_Read, 0, 0, ow,
                                  oh, px, ow, oh, GDT_Byte, 0, 0),
                     CE_None);
    GDALClose(m);
    return px;
}

static void zones_should_equal_one_pass_rasterisation(void **state)
{
    fixture *f = *state;
    aw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.zones_path = f->geojson;
    cfg.zones_id_field = "id";
    aw_ctx *ctx = aw_ctx_create();
    aw_zones zones;
    aw_status st = aw_zones_load(ctx, &cfg, &f->grid, &zones);
    assert_int_equal(st, AW_OK);
    assert_int_equal(zones.n, 3);

    GDALDatasetH ds = GDALOpenEx(f->geojson, GDAL_OF_VECTOR, NULL, NULL, NULL);
    assert_non_null(ds);
    OGRLayerH lyr = GDALDatasetGetLayer(ds, 0);
    OGR_L_ResetReading(lyr);
    int ow = W + 2 * PAD;
    int64_t runs_total = 0;
    for (size_t k = 0; k < zones.n; k++) {
        OGRFeatureH ft = OGR_L_GetNextFeature(lyr);
        assert_non_null(ft);
        const aw_zone *z = &zones.z[k];
        uint8_t *px = oracle(f, OGR_F_GetGeometryRef(ft));
        int64_t n_all = 0, n_grid = 0;
        int gx0 = W, gy0 = H, gx1 = -1, gy1 = -1;
        for (int r = 0; r < H + 2 * PAD; r++)
            for (int c = 0; c < ow; c++) {
                if (!px[(size_t)r * (size_t)ow + (size_t)c])
                    continue;
                n_all++;
                int gx = c - PAD, gy = r - PAD;
                if (gx < 0 || gx >= W || gy < 0 || gy >= H)
                    continue;
                n_grid++;
                gx0 = gx < gx0 ? gx : gx0;
                gx1 = gx > gx1 ? gx : gx1;
                gy0 = gy < gy0 ? gy : gy0;
                gy1 = gy > gy1 ? gy : gy1;
            }
        assert_true(n_grid > 1000);
        assert_int_equal(z->n_pixels, n_all);
        assert_int_equal(z->n_in_grid, n_grid);
        assert_close(z->area_km2, (double)n_all * RES * RES * 1e-6, 1e-9);
        /* The window holds every pixel (it may be larger: the envelope). */
        assert_true(z->x0 <= gx0 && z->x0 + z->w > gx1);
        assert_true(z->y0 <= gy0 && z->y0 + z->h > gy1);
        /* Every pixel of the window, from the runs, as the oracle has it. */
        for (int r = 0; r < z->h; r++) {
            uint8_t row[W];
            memset(row, 0, sizeof row);
            for (size_t q = z->run_at[r]; q < z->run_at[r + 1]; q++) {
                assert_true(z->runs[2 * q] < z->runs[2 * q + 1]);
                assert_true(z->runs[2 * q + 1] <= z->w);
                if (q > z->run_at[r])
                    assert_true(z->runs[2 * q] > z->runs[2 * q - 1]);
                for (int c = z->runs[2 * q]; c < z->runs[2 * q + 1]; c++)
                    row[c] = 1;
                runs_total++;
            }
            for (int c = 0; c < z->w; c++) {
                size_t o = (size_t)(z->y0 + r + PAD) * (size_t)ow +
                           (size_t)(z->x0 + c + PAD);
                if (row[c] != (px[o] != 0))
                    fail_msg("zone %zu, grid pixel (%d, %d): runs %d, "
                             "oracle %d",
                             k, z->x0 + c, z->y0 + r, row[c], px[o]);
            }
        }
        free(px);
        OGR_F_Destroy(ft);
    }
    /* Several runs per row somewhere (the hole, the two parts). */
    assert_true(runs_total > (int64_t)zones.z[0].h + zones.z[1].h);
    assert_true(zones.z[0].h > 1024); /* three bands of 512 rows */
    assert_true(zones.z[2].x0 == 0 && zones.z[2].y0 == 0);
    assert_true(zones.z[2].n_pixels > zones.z[2].n_in_grid);
    GDALClose(ds);
    aw_zones_free(&zones);
    aw_ctx_destroy(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            zones_should_equal_one_pass_rasterisation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

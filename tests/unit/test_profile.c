/* Sensor profiles and the MTL reader, on the real sample products in
 * sample_rasters/ (found through AW_SOURCE_DIR, set by ctest) and on small
 * synthetic variants written to a temporary folder.
 *
 * Expected values are literals read by hand from the products' metadata:
 * the MTL text, MTD_MSIL2A.xml, the PlanetScope metadata XML and the
 * SOURCE.txt notes; each is commented with where it comes from. */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <gdal.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/profile.h"
#include "aralwatch/util.h"

#define PI_180 (3.14159265358979323846 / 180.0)

#define L8C2      "sample_rasters/landsat8_c2l2"
#define L8C2_P    "LC08_L2SP_008059_20191201_20200825_02_T1"
#define L8L1      "sample_rasters/landsat8_l1_cloudy"
#define L5        "sample_rasters/landsat5_para"
#define L5_P      "LT52240631988227CUB02"
#define SAFE_NAME "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500"
#define SAFE      "sample_rasters/" SAFE_NAME ".SAFE"
#define SAFE_IMG  SAFE "/GRANULE/L2A_T22HBD_A020270_20210122T133224/IMG_DATA"
#define S2_STEM   "T22HBD_20210122T133229_"
#define COG       "sample_rasters/S2A_29RKH_20200219_0_L2A"
#define PS        "sample_rasters/planetscope_harvey"
#define PS_STEM   "20170831_172754_101c_3B_AnalyticMS"
#define L7        "sample_rasters/landsat7_olinda"

typedef struct fx {
    aw_ctx *ctx;
    char *src; /* AW_SOURCE_DIR */
    char *tmp; /* a fresh temporary folder */
    aw_scene_cfg sc;
} fx;

static int setup(void **state)
{
    GDALAllRegister();
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *src = getenv("AW_SOURCE_DIR");
    f->src = aw_strdup(src && src[0] ? src : ".");
    f->ctx = aw_ctx_create();
    f->tmp = aw_test_mkdtemp("profile");
    if (!f->src || !f->ctx || !f->tmp)
        return -1;
    *state = f;
    return 0;
}

static void scene_free(aw_scene_cfg *sc)
{
    aw_scene_free(sc);
    memset(sc, 0, sizeof *sc);
}

static int teardown(void **state)
{
    fx *f = *state;
    scene_free(&f->sc);
    aw_test_rmtree(f->tmp);
    free(f->tmp);
    free(f->src);
    aw_ctx_destroy(f->ctx);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

/* A path under the source tree (heap). */
static char *src(fx *f, const char *rel)
{
    char *p = aw_path_join(f->src, rel);
    assert_non_null(p);
    return p;
}

static aw_status detect(fx *f, const char *path, aw_sensor sensor)
{
    aw_ctx_clear_error(f->ctx);
    return aw_profile_detect(f->ctx, path, sensor, &f->sc);
}

static aw_status detect_src(fx *f, const char *rel, aw_sensor sensor)
{
    char *p = src(f, rel);
    aw_status st = detect(f, p, sensor);
    free(p);
    return st;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Copy src/<from_dir>/<name> to tmp/<to_rel>/<name>. */
static void copy_in(fx *f, const char *from_dir, const char *name,
                    const char *to_rel)
{
    char *d = src(f, from_dir);
    char *from = aw_path_join(d, name);
    char *to_dir = aw_path_join(f->tmp, to_rel);
    assert_int_equal(aw_test_mkdirs(to_dir, ""), 0);
    char *to = aw_path_join(to_dir, name);
    copy_file(from, to);
    free(d);
    free(from);
    free(to_dir);
    free(to);
}

/* A small GeoTIFF of n bands at tmp/rel. */
static char *make_tif(fx *f, const char *rel, int n)
{
    char *p = aw_path_join(f->tmp, rel);
    char *dir = aw_path_dirname(p);
    assert_int_equal(aw_test_mkdirs(dir, ""), 0);
    free(dir);
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    assert_non_null(drv);
    GDALDatasetH ds = GDALCreate(drv, p, 4, 4, n, GDT_UInt16, NULL);
    assert_non_null(ds);
    GDALClose(ds);
    return p;
}

/* Band b is the file dir/name, band `band`, with this scale/offset. */
static void check_band(const aw_band_src *b, const char *dir, const char *name,
                       int band, double scale, double offset, int has_nodata)
{
    assert_true(b->present);
    char *want = aw_path_join(dir, name);
    assert_string_equal(b->path, want);
    free(want);
    assert_int_equal(b->band, band);
    assert_close(b->scale, scale, fabs(scale) * 1e-12);
    assert_close(b->offset, offset, fabs(offset) * 1e-12 + 1e-15);
    assert_int_equal(b->has_nodata, has_nodata);
    if (has_nodata)
        assert_close(b->nodata, 0.0, 0.0);
}

static void check_msg(fx *f, const char *part)
{
    const char *msg = aw_ctx_errmsg(f->ctx);
    if (!strstr(msg, part))
        fail_msg("message '%s' lacks '%s'", msg, part);
}

static void check_note(fx *f, const char *part)
{
    const char *n = f->sc.offset_note ? f->sc.offset_note : "";
    if (!strstr(n, part))
        fail_msg("offset_note '%s' lacks '%s'", n, part);
}

/* A failed detection leaves no band, quality or metadata behind. */
static void check_cleared(fx *f)
{
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        assert_false(f->sc.bands[b].present);
        assert_null(f->sc.bands[b].path);
    }
    assert_null(f->sc.qa.path);
    assert_null(f->sc.id);
    assert_null(f->sc.platform);
    assert_null(f->sc.product_id);
    assert_null(f->sc.offset_note);
    assert_string_equal(f->sc.date, "");
    assert_string_equal(f->sc.datetime, "");
}

/* ---- Sensor names ---- */

static void sensor_names_round_trip(void **state)
{
    (void)state;
    assert_string_equal(aw_sensor_name(AW_SENSOR_AUTO), "auto");
    assert_string_equal(aw_sensor_name(AW_SENSOR_GENERIC), "generic");
    assert_string_equal(aw_sensor_name(AW_SENSOR_LANDSAT_C2_L2),
                        "landsat_c2_l2");
    assert_string_equal(aw_sensor_name(AW_SENSOR_SENTINEL2_L2A),
                        "sentinel2_l2a");
    for (int s = AW_SENSOR_AUTO; s <= AW_SENSOR_SENTINEL2_L2A; s++)
        assert_int_equal(aw_sensor_from_name(aw_sensor_name((aw_sensor)s)), s);
    assert_int_equal(aw_sensor_from_name("landsat"), -1);
    assert_int_equal(aw_sensor_from_name(NULL), -1);
    assert_string_equal(aw_sensor_name((aw_sensor)99), "?");
}

/* ---- MTL reader ---- */

static char *write_tmp(fx *f, const char *rel, const char *text)
{
    char *p = aw_test_write(f->tmp, rel, text);
    assert_non_null(p);
    return p;
}

static void mtl_reads_keys_groups_and_quotes(void **state)
{
    fx *f = *state;
    char *p = write_tmp(f, "a_MTL.txt",
                        "GROUP = L1_METADATA_FILE\n"
                        "  GROUP = INNER\r\n"
                        "    NAME = \"quoted value\"\n"
                        "    NUMBER = 42\n"
                        "    EMPTY = \"\"\n"
                        "  END_GROUP = INNER\n"
                        "  GROUP = OTHER\n"
                        "    NUMBER = 7\n"
                        "  END_GROUP = OTHER\n"
                        "\n"
                        "END_GROUP = L1_METADATA_FILE\n"
                        "END\n");
    aw_mtl *m = NULL;
    assert_int_equal(aw_mtl_load(f->ctx, p, &m), AW_OK);
    assert_string_equal(aw_mtl_get(m, "NAME"), "quoted value");
    assert_string_equal(aw_mtl_get(m, "NUMBER"), "42"); /* the first one */
    assert_string_equal(aw_mtl_get(m, "EMPTY"), "");
    assert_string_equal(aw_mtl_get(m, "GROUP"), "L1_METADATA_FILE");
    assert_null(aw_mtl_get(m, "MISSING"));
    assert_null(aw_mtl_get(NULL, "NAME"));
    aw_mtl_free(m);
    aw_mtl_free(NULL);
    free(p);
}

static void mtl_ignores_nul_padding_after_end(void **state)
{
    fx *f = *state;
    /* The sample Landsat 5 MTL is 5368 bytes of text NUL-padded to 65535
     * (SOURCE.txt: 65535 bytes). */
    char *p = src(f, L5 "/" L5_P "_MTL.txt");
    aw_mtl *m = NULL;
    assert_int_equal(aw_mtl_load(f->ctx, p, &m), AW_OK);
    assert_string_equal(aw_mtl_get(m, "LANDSAT_SCENE_ID"), L5_P);
    assert_string_equal(aw_mtl_get(m, "WRS_ROW"), "063");
    assert_string_equal(aw_mtl_get(m, "SCENE_CENTER_TIME"),
                        "13:00:47.3750190Z"); /* unquoted in this MTL */
    aw_mtl_free(m);
    free(p);
}

/* Load text as an MTL; expect AW_ERR_INPUT with "<file>:<line>: <part>". */
static void mtl_fails(fx *f, const char *text, size_t len, int line,
                      const char *part)
{
    char *p = aw_path_join(f->tmp, "bad_MTL.txt");
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    aw_mtl *m = NULL;
    aw_ctx_clear_error(f->ctx);
    assert_int_equal(aw_mtl_load(f->ctx, p, &m), AW_ERR_INPUT);
    assert_null(m);
    char *where = aw_asprintf("%s:%d: ", p, line);
    check_msg(f, where);
    check_msg(f, part);
    free(where);
    free(p);
}

#define MTL_FAILS(f, text, line, part)                                         \
    mtl_fails(f, text, sizeof(text) - 1, line, part)

static void mtl_rejects_an_unbalanced_group(void **state)
{
    fx *f = *state;
    MTL_FAILS(f,
              "GROUP = A\n"
              "  GROUP = B\n"
              "  X = 1\n"
              "END_GROUP = A\n"
              "END\n",
              4, "END_GROUP = A does not close GROUP = B (line 2)");
    MTL_FAILS(f,
              "GROUP = A\n"
              "  X = 1\n"
              "END\n",
              3, "END while GROUP A (line 1) is open");
    MTL_FAILS(f, "X = 1\nEND_GROUP = A\nEND\n", 2,
              "END_GROUP = A without an open GROUP");
    MTL_FAILS(f, "GROUP = A\n  X = 1\n", 2,
              "end of file while GROUP A (line 1) is open");
}

static void mtl_rejects_a_garbage_line(void **state)
{
    fx *f = *state;
    MTL_FAILS(f, "GROUP = A\n  this is not odl\nEND_GROUP = A\nEND\n", 2,
              "expected 'KEY = VALUE', got 'this is not odl'");
    MTL_FAILS(f, "GROUP = A\n  X =\nEND_GROUP = A\nEND\n", 2,
              "missing value after '='");
    MTL_FAILS(f, "GROUP = A\n  X = \"open\nEND_GROUP = A\nEND\n", 2,
              "unterminated quoted value");
    MTL_FAILS(f, "X = 1\n= 2\nEND\n", 2, "expected 'KEY = VALUE'");
    MTL_FAILS(f, "X = 1\nEND\nY = 2\n", 3, "text after END: 'Y = 2'");
    MTL_FAILS(f, "X = 1\n", 1, "missing END line");
    MTL_FAILS(f, "", 1, "missing END line");
    MTL_FAILS(f, "X = a\0b\nEND\n", 1, "control or NUL byte");
}

static void mtl_rejects_an_overlong_line(void **state)
{
    fx *f = *state;
    size_t n = 5000;
    char *text = malloc(n + 32);
    assert_non_null(text);
    memcpy(text, "A = 1\nB = ", 10);
    memset(text + 10, 'x', n);
    memcpy(text + 10 + n, "\nEND\n", 6);
    mtl_fails(f, text, strlen(text), 2, "line longer than 4096 bytes");
    free(text);
}

static void mtl_load_of_a_missing_file_names_it(void **state)
{
    fx *f = *state;
    char *p = aw_path_join(f->tmp, "none_MTL.txt");
    aw_mtl *m = NULL;
    assert_int_equal(aw_mtl_load(f->ctx, p, &m), AW_ERR_INPUT);
    check_msg(f, p);
    free(p);
}

/* ---- Landsat Collection 2 Level-2 ---- */

static void check_landsat8_c2l2(fx *f)
{
    aw_scene_cfg *sc = &f->sc;
    char *dir = src(f, L8C2);
    assert_int_equal(sc->sensor, AW_SENSOR_LANDSAT_C2_L2);
    /* FILE_NAME_BAND_2..7; REFLECTANCE_MULT_BAND_n = 2.75e-05,
     * REFLECTANCE_ADD_BAND_n = -0.2 (LEVEL2_SURFACE_REFLECTANCE_PARAMETERS);
     * SOURCE.txt: NoData 0. */
    static const char *const files[AW_BAND_COUNT] = {
        L8C2_P "_SR_B2.TIF", L8C2_P "_SR_B3.TIF", L8C2_P "_SR_B4.TIF",
        L8C2_P "_SR_B5.TIF", L8C2_P "_SR_B6.TIF", L8C2_P "_SR_B7.TIF"};
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, files[b], 1, 2.75e-05, -0.2, 1);
    /* FILE_NAME_QUALITY_L1_PIXEL */
    check_band(&sc->qa, dir, L8C2_P "_QA_PIXEL.TIF", 1, 1.0, 0.0, 0);
    assert_int_equal(sc->qa_kind, AW_QA_LANDSAT_C2);
    /* DATE_ACQUIRED = 2019-12-01, SCENE_CENTER_TIME = "15:13:51.8610990Z" */
    assert_string_equal(sc->date, "2019-12-01");
    assert_string_equal(sc->datetime, "2019-12-01T15:13:51Z");
    assert_string_equal(sc->platform, "LANDSAT_8");     /* SPACECRAFT_ID */
    assert_string_equal(sc->product_id, L8C2_P);        /* LANDSAT_PRODUCT_ID */
    assert_close(sc->cloud_cover, 81.02, 1e-9);         /* CLOUD_COVER */
    assert_close(sc->sun_elevation, 57.08727307, 1e-9); /* SUN_ELEVATION */
    assert_int_equal(sc->wrs_path, 8);                  /* WRS_PATH = 8 */
    assert_int_equal(sc->wrs_row, 59);                  /* WRS_ROW = 59 */
    assert_null(sc->tile_id);
    assert_null(sc->processing_baseline);
    assert_string_equal(sc->id, L8C2_P);
    check_note(f, "2.75e-05");
    free(dir);
}

static void landsat8_c2l2_folder_is_detected_from_its_mtl(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L8C2, AW_SENSOR_AUTO), AW_OK);
    check_landsat8_c2l2(f);
}

static void
landsat8_c2l2_mtl_file_or_forced_sensor_give_the_same_scene(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L8C2 "/" L8C2_P "_MTL.txt", AW_SENSOR_AUTO),
                     AW_OK);
    check_landsat8_c2l2(f);
    scene_free(&f->sc);
    assert_int_equal(detect_src(f, L8C2, AW_SENSOR_LANDSAT_C2_L2), AW_OK);
    check_landsat8_c2l2(f);
}

static void
landsat_c2l2_missing_band_file_names_the_file_and_the_key(void **state)
{
    fx *f = *state;
    copy_in(f, L8C2, L8C2_P "_MTL.txt", "l8");
    char *dir = aw_path_join(f->tmp, "l8");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_ERR_INPUT);
    check_msg(f, L8C2_P "_SR_B2.TIF: missing (FILE_NAME_BAND_2 in ");
    check_cleared(f);
    free(dir);
}

static void landsat_c2l2_keeps_a_date_and_id_given_by_the_config(void **state)
{
    fx *f = *state;
    memcpy(f->sc.date, "2019-12-02", 11);
    f->sc.id = aw_strdup("my_scene");
    assert_int_equal(detect_src(f, L8C2, AW_SENSOR_AUTO), AW_OK);
    assert_string_equal(f->sc.date, "2019-12-02");
    assert_string_equal(f->sc.id, "my_scene");
    assert_string_equal(f->sc.datetime, "2019-12-01T15:13:51Z");
}

static void landsat_c2l2_of_landsat5_uses_tm_band_numbers(void **state)
{
    fx *f = *state;
    /* A trimmed Collection 2 Level-2 MTL of a Landsat 5 TM scene. */
    char *mtl =
        write_tmp(f, "lt5/LT05_L2SP_224063_19880814_20200917_02_T1_MTL.txt",
                  "GROUP = LANDSAT_METADATA_FILE\n"
                  "  GROUP = PRODUCT_CONTENTS\n"
                  "    LANDSAT_PRODUCT_ID = "
                  "\"LT05_L2SP_224063_19880814_20200917_02_T1\"\n"
                  "    PROCESSING_LEVEL = \"L2SP\"\n"
                  "    FILE_NAME_BAND_1 = \"LT05_SR_B1.TIF\"\n"
                  "    FILE_NAME_BAND_2 = \"LT05_SR_B2.TIF\"\n"
                  "    FILE_NAME_BAND_3 = \"LT05_SR_B3.TIF\"\n"
                  "    FILE_NAME_BAND_4 = \"LT05_SR_B4.TIF\"\n"
                  "    FILE_NAME_BAND_5 = \"LT05_SR_B5.TIF\"\n"
                  "    FILE_NAME_BAND_7 = \"LT05_SR_B7.TIF\"\n"
                  "    FILE_NAME_QUALITY_L1_PIXEL = \"LT05_QA_PIXEL.TIF\"\n"
                  "  END_GROUP = PRODUCT_CONTENTS\n"
                  "  GROUP = IMAGE_ATTRIBUTES\n"
                  "    SPACECRAFT_ID = \"LANDSAT_5\"\n"
                  "    WRS_PATH = 224\n"
                  "    WRS_ROW = 63\n"
                  "    DATE_ACQUIRED = 1988-08-14\n"
                  "    SCENE_CENTER_TIME = \"13:00:47.3750190Z\"\n"
                  "  END_GROUP = IMAGE_ATTRIBUTES\n"
                  "END_GROUP = LANDSAT_METADATA_FILE\n"
                  "END\n");
    static const char *const files[] = {"LT05_SR_B1.TIF",    "LT05_SR_B2.TIF",
                                        "LT05_SR_B3.TIF",    "LT05_SR_B4.TIF",
                                        "LT05_SR_B5.TIF",    "LT05_SR_B7.TIF",
                                        "LT05_QA_PIXEL.TIF", "LT05_SR_B6.TIF"};
    char *dir = aw_path_join(f->tmp, "lt5");
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *rel = aw_asprintf("lt5/%s", files[i]);
        assert_int_equal(aw_test_touch(f->tmp, rel), 0);
        free(rel);
    }
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    assert_int_equal(f->sc.sensor, AW_SENSOR_LANDSAT_C2_L2);
    /* No REFLECTANCE_MULT/ADD in this MTL: the Collection 2 constants. */
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&f->sc.bands[b], dir, files[b], 1, 2.75e-05, -0.2, 1);
    check_band(&f->sc.qa, dir, "LT05_QA_PIXEL.TIF", 1, 1.0, 0.0, 0);
    assert_string_equal(f->sc.platform, "LANDSAT_5");
    assert_string_equal(f->sc.date, "1988-08-14");
    check_note(f, "REFLECTANCE_MULT/ADD_BAND_n missing");
    free(dir);
    free(mtl);
}

static void forced_landsat_c2l2_rejects_a_level1_product(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L5, AW_SENSOR_LANDSAT_C2_L2), AW_ERR_INPUT);
    check_msg(f, L5_P "_MTL.txt: not a Collection 2 Level-2 product");
    check_cleared(f);
}

/* ---- Landsat Level-1 (generic) ---- */

static void landsat8_level1_reads_toa_coefficients(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L8L1, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    char *dir = src(f, L8L1);
    assert_int_equal(sc->sensor, AW_SENSOR_GENERIC);
    /* l8_MTL.txt: REFLECTANCE_MULT_BAND_n = 2.0000E-05, REFLECTANCE_ADD_BAND_n
     * = -0.100000, SUN_ELEVATION = 64.74360932; TOA = (M DN + A) / sin(e).
     * Its FILE_NAME_BAND_n name LC80200392015216LGN00_B<n>.TIF, which are
     * not there, so the files come from the _B<n> suffix. UInt16, fill 0. */
    double s = sin(64.74360932 * PI_180);
    static const char *const files[AW_BAND_COUNT] = {"l8_B2.tif", "l8_B3.tif",
                                                     "l8_B4.tif", "l8_B5.tif",
                                                     "l8_B6.tif", "l8_B7.tif"};
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, files[b], 1, 2.0e-05 / s, -0.1 / s, 1);
    /* Pre-collection BQA: not used. */
    assert_false(sc->qa.present);
    assert_int_equal(sc->qa_kind, AW_QA_NONE);
    /* DATE_ACQUIRED = 2015-08-04, SCENE_CENTER_TIME = "16:19:21.7917421Z" */
    assert_string_equal(sc->date, "2015-08-04");
    assert_string_equal(sc->datetime, "2015-08-04T16:19:21Z");
    assert_string_equal(sc->platform, "LANDSAT_8");
    assert_string_equal(sc->product_id, "LC80200392015216LGN00");
    assert_close(sc->cloud_cover, 11.08, 1e-9);
    assert_close(sc->sun_elevation, 64.74360932, 1e-9);
    assert_int_equal(sc->wrs_path, 20);
    assert_int_equal(sc->wrs_row, 39);
    assert_string_equal(sc->id, "LC80200392015216LGN00");
    check_note(f, "sin(SUN_ELEVATION");
    check_note(f, "_B<n> suffix");
    check_note(f, "no quality band");
    free(dir);
}

static void landsat5_level1_is_generic_tm_with_dn_scale(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L5, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    char *dir = src(f, L5);
    assert_int_equal(sc->sensor, AW_SENSOR_GENERIC);
    /* TM bands 1 2 3 4 5 7 (FILE_NAME_BAND_n); the MTL has only
     * RADIANCE_MULT/ADD, so DN; Level-1 fill is DN 0 (USGS), whatever the
     * file's own tag says (255 here, which is saturation in TM DN). */
    static const char *const files[AW_BAND_COUNT] = {
        L5_P "_B1.TIF", L5_P "_B2.TIF", L5_P "_B3.TIF",
        L5_P "_B4.TIF", L5_P "_B5.TIF", L5_P "_B7.TIF"};
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, files[b], 1, 1.0, 0.0, 1);
    assert_false(sc->qa.present);
    /* DATE_ACQUIRED = 1988-08-14, SCENE_CENTER_TIME = 13:00:47.3750190Z */
    assert_string_equal(sc->date, "1988-08-14");
    assert_string_equal(sc->datetime, "1988-08-14T13:00:47Z");
    assert_string_equal(sc->platform, "LANDSAT_5");
    assert_string_equal(sc->product_id, L5_P); /* LANDSAT_SCENE_ID */
    assert_close(sc->cloud_cover, 0.0, 1e-12);
    assert_close(sc->sun_elevation, 49.75588889, 1e-9);
    assert_int_equal(sc->wrs_path, 224); /* WRS_PATH = 224 */
    assert_int_equal(sc->wrs_row, 63);   /* WRS_ROW = 063 */
    check_note(f, "DN as delivered (no reflectance coefficients in the MTL)");
    free(dir);
}

/* ---- Sentinel-2 L2A ---- */

static const char *const s2_files[AW_BAND_COUNT] = {
    S2_STEM "B02_10m.jp2", S2_STEM "B03_10m.jp2", S2_STEM "B04_10m.jp2",
    S2_STEM "B08_10m.jp2", S2_STEM "B11_20m.jp2", S2_STEM "B12_20m.jp2"};

static void check_s2_coast_metadata(fx *f)
{
    aw_scene_cfg *sc = &f->sc;
    assert_int_equal(sc->sensor, AW_SENSOR_SENTINEL2_L2A);
    assert_int_equal(sc->qa_kind, AW_QA_S2_SCL);
    /* MTD_MSIL2A.xml: PRODUCT_START_TIME 2021-01-22T13:32:29.024Z,
     * SPACECRAFT_NAME Sentinel-2B, PRODUCT_URI <name>.SAFE,
     * PROCESSING_BASELINE 02.14, Cloud_Coverage_Assessment 0.447807. */
    assert_string_equal(sc->date, "2021-01-22");
    assert_string_equal(sc->datetime, "2021-01-22T13:32:29Z");
    assert_string_equal(sc->platform, "Sentinel-2B");
    assert_string_equal(sc->product_id, SAFE_NAME);
    assert_string_equal(sc->processing_baseline, "02.14");
    assert_close(sc->cloud_cover, 0.447807, 1e-12);
    assert_string_equal(sc->tile_id, "22HBD"); /* T22HBD in the names */
    assert_true(isnan(sc->sun_elevation));
    assert_int_equal(sc->wrs_path, 0);
    assert_string_equal(sc->id, SAFE_NAME);
}

static void sentinel2_safe_folder_uses_mtd_values(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, SAFE, AW_SENSOR_AUTO), AW_OK);
    char *r10 = src(f, SAFE_IMG "/R10m");
    char *r20 = src(f, SAFE_IMG "/R20m");
    /* BOA_QUANTIFICATION_VALUE 10000, no BOA_ADD_OFFSET, baseline 02.14 ->
     * offset 0; SOURCE.txt: 0 = no data. */
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&f->sc.bands[b], b < 4 ? r10 : r20, s2_files[b], 1, 1e-4,
                   0.0, 1);
    check_band(&f->sc.qa, r20, S2_STEM "SCL_20m.jp2", 1, 1.0, 0.0, 0);
    check_s2_coast_metadata(f);
    check_note(f, "processing baseline 02.14");
    free(r10);
    free(r20);
}

static void sentinel2_mtd_file_or_forced_sensor_detect_the_safe(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, SAFE "/MTD_MSIL2A.xml", AW_SENSOR_AUTO),
                     AW_OK);
    check_s2_coast_metadata(f);
    scene_free(&f->sc);
    assert_int_equal(detect_src(f, SAFE, AW_SENSOR_SENTINEL2_L2A), AW_OK);
    check_s2_coast_metadata(f);
}

/* Copy the coast JP2s (R10m and R20m) loose into tmp/<rel>. */
static char *loose_jp2(fx *f, const char *rel)
{
    static const char *const r20[] = {"B8A", "B11", "B12", "SCL"};
    for (int b = 0; b < 4; b++)
        copy_in(f, SAFE_IMG "/R10m", s2_files[b], rel);
    for (int b = 0; b < 4; b++) {
        char *name = aw_asprintf(S2_STEM "%s_20m.jp2", r20[b]);
        copy_in(f, SAFE_IMG "/R20m", name, rel);
        free(name);
    }
    return aw_path_join(f->tmp, rel);
}

static void sentinel2_loose_jp2_without_mtd_use_the_date_rule(void **state)
{
    fx *f = *state;
    char *dir = loose_jp2(f, "coast");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    assert_int_equal(sc->sensor, AW_SENSOR_SENTINEL2_L2A);
    /* 2021-01-22 (from T22HBD_20210122T133229) is before 2022-01-25. */
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, s2_files[b], 1, 1e-4, 0.0, 1);
    check_band(&sc->qa, dir, S2_STEM "SCL_20m.jp2", 1, 1.0, 0.0, 0);
    assert_string_equal(sc->date, "2021-01-22");
    assert_string_equal(sc->datetime, "2021-01-22T13:32:29Z");
    assert_string_equal(sc->tile_id, "22HBD");
    assert_null(sc->processing_baseline);
    assert_null(sc->product_id);
    assert_string_equal(sc->id, "coast");
    check_note(f, "no MTD_MSIL2A.xml; processing baseline assumed from the "
                  "date");
    free(dir);
}

static void sentinel2_loose_jp2_with_mtd_read_it(void **state)
{
    fx *f = *state;
    char *dir = loose_jp2(f, "coast");
    copy_in(f, SAFE, "MTD_MSIL2A.xml", "coast");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&f->sc.bands[b], dir, s2_files[b], 1, 1e-4, 0.0, 1);
    check_s2_coast_metadata(f);
    free(dir);
}

/* A trimmed copy of the coast scene's MTD_MSIL2A.xml with processing
 * baseline 04.00 (and N0400 in the product name) instead of 02.14;
 * `offsets` is the BOA_ADD_OFFSET_VALUES_LIST element or "". */
#define SAFE_NAME_04                                                           \
    "S2B_MSIL2A_20210122T133229_N0400_R081_T22HBD_20210122T155500"
static void write_mtd_04(fx *f, const char *rel, const char *offsets)
{
    char *xml = aw_asprintf(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        "<n1:Level-2A_User_Product "
        "xmlns:n1=\"https://psd-14.sentinel2.eo.esa.int/PSD/"
        "User_Product_Level-2A.xsd\">\n"
        "  <n1:General_Info>\n"
        "    <Product_Info>\n"
        "      <PRODUCT_START_TIME>2021-01-22T13:32:29.024Z"
        "</PRODUCT_START_TIME>\n"
        "      <PRODUCT_URI>" SAFE_NAME_04 ".SAFE</PRODUCT_URI>\n"
        "      <PROCESSING_BASELINE>04.00</PROCESSING_BASELINE>\n"
        "      <Datatake datatakeIdentifier=\"GS2B_20210122T133229_020270_"
        "N04.00\">\n"
        "        <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>\n"
        "      </Datatake>\n"
        "    </Product_Info>\n"
        "    <Product_Image_Characteristics>\n"
        "      <QUANTIFICATION_VALUES_LIST>\n"
        "        <BOA_QUANTIFICATION_VALUE unit=\"none\">10000"
        "</BOA_QUANTIFICATION_VALUE>\n"
        "      </QUANTIFICATION_VALUES_LIST>\n"
        "%s"
        "    </Product_Image_Characteristics>\n"
        "  </n1:General_Info>\n"
        "  <n1:Quality_Indicators_Info>\n"
        "    <Cloud_Coverage_Assessment>0.447807</Cloud_Coverage_Assessment>\n"
        "  </n1:Quality_Indicators_Info>\n"
        "</n1:Level-2A_User_Product>\n",
        offsets);
    assert_non_null(xml);
    char *p = write_tmp(f, rel, xml);
    free(p);
    free(xml);
}

static char *boa_offsets(int value)
{
    char *s = aw_strdup("      <BOA_ADD_OFFSET_VALUES_LIST>\n");
    for (int id = 0; id < 13; id++) {
        char *n = aw_asprintf("%s        <BOA_ADD_OFFSET band_id=\"%d\">%d"
                              "</BOA_ADD_OFFSET>\n",
                              s, id, value);
        free(s);
        s = n;
    }
    char *n = aw_asprintf("%s      </BOA_ADD_OFFSET_VALUES_LIST>\n", s);
    free(s);
    return n;
}

static void sentinel2_baseline_04_mtd_gives_offset_minus_0_1(void **state)
{
    fx *f = *state;
    char *dir = loose_jp2(f, "pb04");
    char *list = boa_offsets(-1000);
    write_mtd_04(f, "pb04/MTD_MSIL2A.xml", list);
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    /* (DN + BOA_ADD_OFFSET -1000) / 10000 */
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, s2_files[b], 1, 1e-4, -0.1, 1);
    assert_string_equal(sc->processing_baseline, "04.00");
    assert_string_equal(sc->product_id, SAFE_NAME_04);
    assert_string_equal(sc->datetime, "2021-01-22T13:32:29Z");
    assert_string_equal(sc->date, "2021-01-22");
    assert_close(sc->cloud_cover, 0.447807, 1e-12);
    check_note(f, "BOA_ADD_OFFSET -1000");
    free(list);
    free(dir);
}

static void
sentinel2_baseline_04_mtd_without_offset_list_assumes_1000(void **state)
{
    fx *f = *state;
    char *dir = loose_jp2(f, "pb04");
    write_mtd_04(f, "pb04/MTD_MSIL2A.xml", "");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&f->sc.bands[b], dir, s2_files[b], 1, 1e-4, -0.1, 1);
    check_note(f, "processing baseline 04.00");
    free(dir);
}

static void sentinel2_bad_boa_offset_names_the_mtd(void **state)
{
    fx *f = *state;
    char *dir = loose_jp2(f, "bad");
    write_mtd_04(f, "bad/MTD_MSIL2A.xml",
                 "<BOA_ADD_OFFSET_VALUES_LIST><BOA_ADD_OFFSET band_id=\"1\">"
                 "minus</BOA_ADD_OFFSET></BOA_ADD_OFFSET_VALUES_LIST>\n");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_ERR_INPUT);
    check_msg(f, "MTD_MSIL2A.xml: BOA_ADD_OFFSET of band_id 1: 'minus'");
    check_cleared(f);
    free(dir);
}

static void
sentinel2_loose_files_after_2022_01_25_get_offset_minus_0_1(void **state)
{
    fx *f = *state;
    /* Detection does not open the files, so empty ones will do. */
    static const char *const names[] = {
        "T22HBD_20220301T133229_B02_10m.jp2",
        "T22HBD_20220301T133229_B03_10m.jp2",
        "T22HBD_20220301T133229_B04_10m.jp2",
        "T22HBD_20220301T133229_B08_10m.jp2",
        "T22HBD_20220301T133229_B11_20m.jp2",
        "T22HBD_20220301T133229_B12_20m.jp2",
        "T22HBD_20220301T133229_B11_60m.jp2", /* 20 m preferred */
        "T22HBD_20220301T133229_B02_20m.jp2", /* 10 m preferred */
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *rel = aw_asprintf("late/%s", names[i]);
        assert_int_equal(aw_test_touch(f->tmp, rel), 0);
        free(rel);
    }
    char *dir = aw_path_join(f->tmp, "late");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_OK);
    for (int b = 0; b < AW_BAND_COUNT; b++)
        check_band(&f->sc.bands[b], dir, names[b], 1, 1e-4, -0.1, 1);
    assert_false(f->sc.qa.present); /* no SCL */
    assert_int_equal(f->sc.qa_kind, AW_QA_NONE);
    assert_string_equal(f->sc.date, "2022-03-01");
    check_note(f, "on or after 2022-01-25");
    check_note(f, "no SCL");
    free(dir);
}

static void
sentinel2_cog_folder_without_blue_takes_the_date_from_its_name(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, COG, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    char *dir = src(f, COG);
    assert_int_equal(sc->sensor, AW_SENSOR_SENTINEL2_L2A);
    /* SOURCE.txt: B03 B04 B08 B11 B12 SCL, no B02; UInt16 reflectance*10000,
     * NoData 0, pre-2022 baseline (no offset). */
    assert_false(sc->bands[AW_BAND_BLUE].present);
    assert_null(sc->bands[AW_BAND_BLUE].path);
    static const char *const files[AW_BAND_COUNT] = {
        NULL, "B03.tif", "B04.tif", "B08.tif", "B11.tif", "B12.tif"};
    for (int b = 1; b < AW_BAND_COUNT; b++)
        check_band(&sc->bands[b], dir, files[b], 1, 1e-4, 0.0, 1);
    check_band(&sc->qa, dir, "SCL.tif", 1, 1.0, 0.0, 0);
    assert_int_equal(sc->qa_kind, AW_QA_S2_SCL);
    /* Folder name S2A_29RKH_20200219_0_L2A. */
    assert_string_equal(sc->date, "2020-02-19");
    assert_string_equal(sc->datetime, "");
    assert_string_equal(sc->platform, "Sentinel-2A");
    assert_string_equal(sc->product_id, "S2A_29RKH_20200219_0_L2A");
    assert_string_equal(sc->tile_id, "29RKH");
    assert_null(sc->processing_baseline);
    assert_true(isnan(sc->cloud_cover));
    assert_string_equal(sc->id, "S2A_29RKH_20200219_0_L2A");
    check_note(f, "no MTD_MSIL2A.xml; processing baseline assumed from the "
                  "date (2020-02-19 is before 2022-01-25)");
    check_note(f, "no B02 band file");
    free(dir);
}

static void forced_sentinel2_rejects_a_landsat_folder(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, L5, AW_SENSOR_SENTINEL2_L2A), AW_ERR_INPUT);
    check_msg(f, "landsat5_para: no Sentinel-2 L2A product here");
}

/* ---- Generic rasters ---- */

static void planetscope_folder_is_a_generic_bgrn_raster(void **state)
{
    fx *f = *state;
    assert_int_equal(detect_src(f, PS, AW_SENSOR_AUTO), AW_OK);
    aw_scene_cfg *sc = &f->sc;
    char *dir = src(f, PS);
    assert_int_equal(sc->sensor, AW_SENSOR_GENERIC);
    /* SOURCE.txt: bands B, G, R, NIR (the ColorInterp tags say otherwise);
     * the 1-band UDM is ignored. Scale: the reflectanceCoefficient of each
     * ps:bandNumber in _metadata.xml; offset 0, the file's nodata. */
    static const double coef[4] = {1.81512636125e-05, 1.92266681265e-05,
                                   2.14155262585e-05, 3.22221688359e-05};
    for (int b = 0; b < 4; b++)
        check_band(&sc->bands[b], dir, PS_STEM ".tif", b + 1, coef[b], 0.0, 0);
    assert_false(sc->bands[AW_BAND_SWIR1].present);
    assert_false(sc->bands[AW_BAND_SWIR2].present);
    /* The unusable data mask beside it is the quality band: any of its
     * 8 bits masks, and every value with bit 1 (cloud) set is cloud. */
    check_band(&sc->qa, dir, PS_STEM "_DN_udm.tif", 1, 1.0, 0.0, 0);
    assert_int_equal(sc->qa_kind, AW_QA_GENERIC);
    assert_int_equal(sc->qa_mask_bits, 0xFF);
    assert_int_equal(sc->n_qa_cloud_values, 128);
    for (size_t i = 0; i < sc->n_qa_cloud_values; i++)
        assert_true((int)sc->qa_cloud_values[i] & 2);
    /* _metadata.xml: ps:acquisitionDateTime 2017-08-31T17:27:54+00:00,
     * eop:shortName PlanetScope, eop:identifier, opt:cloudCoverPercentage
     * 0.02, opt:illuminationElevationAngle 6.512005e+01. */
    assert_string_equal(sc->date, "2017-08-31");
    assert_string_equal(sc->datetime, "2017-08-31T17:27:54Z");
    assert_string_equal(sc->platform, "PlanetScope");
    assert_string_equal(sc->product_id, PS_STEM);
    assert_close(sc->cloud_cover, 0.02, 1e-12);
    assert_close(sc->sun_elevation, 65.12005, 1e-9);
    assert_string_equal(sc->id, PS_STEM);
    check_note(f, "PlanetScope order");
    check_note(f, "DN * reflectanceCoefficient of each band");
    free(dir);
}

static void landsat7_six_band_file_has_no_date(void **state)
{
    fx *f = *state;
    char *dir = src(f, L7);
    for (int form = 0; form < 2; form++) {
        /* The file itself, then its folder. */
        assert_int_equal(
            detect_src(f, form ? L7 : L7 "/L7_ETMs.tif", AW_SENSOR_AUTO),
            AW_OK);
        aw_scene_cfg *sc = &f->sc;
        assert_int_equal(sc->sensor, AW_SENSOR_GENERIC);
        /* SOURCE.txt: ETM+ 1 2 3 4 5 7 in bands 1-6, no NoData, no date. */
        for (int b = 0; b < AW_BAND_COUNT; b++)
            check_band(&sc->bands[b], dir, "L7_ETMs.tif", b + 1, 1.0, 0.0, 0);
        assert_string_equal(sc->date, "");
        assert_string_equal(sc->datetime, "");
        assert_null(sc->platform);
        assert_string_equal(sc->id, "L7_ETMs");
        check_note(f, "Landsat TM/ETM+ bands 1 2 3 4 5 7");
        scene_free(sc);
    }
    free(dir);
}

static void generic_raster_takes_the_date_from_its_name(void **state)
{
    fx *f = *state;
    char *p = make_tif(f, "rgbn/scene_20230415_x.tif", 4);
    assert_int_equal(detect(f, p, AW_SENSOR_AUTO), AW_OK);
    assert_string_equal(f->sc.date, "2023-04-15");
    assert_string_equal(f->sc.id, "scene_20230415_x");
    check_note(f, "date 2023-04-15 from the file or folder name");
    free(p);
}

static void generic_raster_of_three_bands_asks_for_a_band_map(void **state)
{
    fx *f = *state;
    char *p = make_tif(f, "rgb.tif", 3);
    assert_int_equal(detect(f, p, AW_SENSOR_AUTO), AW_ERR_INPUT);
    check_msg(f, "rgb.tif: cannot guess the band map of 3 bands; map them in "
                 "the config (scenes[].bands)");
    check_cleared(f);
    free(p);
}

static void folder_of_two_multiband_rasters_is_ambiguous(void **state)
{
    fx *f = *state;
    free(make_tif(f, "two/a.tif", 4));
    free(make_tif(f, "two/b.tif", 6));
    char *dir = aw_path_join(f->tmp, "two");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_ERR_INPUT);
    check_msg(f, "several rasters of 4 or more bands (a.tif, b.tif)");
    free(dir);
}

static void unrecognised_folder_is_an_input_error_naming_it(void **state)
{
    fx *f = *state;
    char *p = write_tmp(f, "junk/readme.txt", "nothing here\n");
    free(make_tif(f, "junk/one_band.tif", 1));
    char *dir = aw_path_join(f->tmp, "junk");
    assert_int_equal(detect(f, dir, AW_SENSOR_AUTO), AW_ERR_INPUT);
    char *want = aw_asprintf("%s: no recognised product in this folder", dir);
    check_msg(f, want);
    check_cleared(f);
    free(want);
    free(dir);
    free(p);
}

static void missing_path_is_an_input_error_naming_it(void **state)
{
    fx *f = *state;
    char *p = aw_path_join(f->tmp, "nowhere");
    assert_int_equal(detect(f, p, AW_SENSOR_AUTO), AW_ERR_INPUT);
    check_msg(f, p);
    check_msg(f, "no such file or folder");
    free(p);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sensor_names_round_trip),
        T(mtl_reads_keys_groups_and_quotes),
        T(mtl_ignores_nul_padding_after_end),
        T(mtl_rejects_an_unbalanced_group),
        T(mtl_rejects_a_garbage_line),
        T(mtl_rejects_an_overlong_line),
        T(mtl_load_of_a_missing_file_names_it),
        T(landsat8_c2l2_folder_is_detected_from_its_mtl),
        T(landsat8_c2l2_mtl_file_or_forced_sensor_give_the_same_scene),
        T(landsat_c2l2_missing_band_file_names_the_file_and_the_key),
        T(landsat_c2l2_keeps_a_date_and_id_given_by_the_config),
        T(landsat_c2l2_of_landsat5_uses_tm_band_numbers),
        T(forced_landsat_c2l2_rejects_a_level1_product),
        T(landsat8_level1_reads_toa_coefficients),
        T(landsat5_level1_is_generic_tm_with_dn_scale),
        T(sentinel2_safe_folder_uses_mtd_values),
        T(sentinel2_mtd_file_or_forced_sensor_detect_the_safe),
        T(sentinel2_loose_jp2_without_mtd_use_the_date_rule),
        T(sentinel2_loose_jp2_with_mtd_read_it),
        T(sentinel2_baseline_04_mtd_gives_offset_minus_0_1),
        T(sentinel2_baseline_04_mtd_without_offset_list_assumes_1000),
        T(sentinel2_bad_boa_offset_names_the_mtd),
        T(sentinel2_loose_files_after_2022_01_25_get_offset_minus_0_1),
        T(sentinel2_cog_folder_without_blue_takes_the_date_from_its_name),
        T(forced_sentinel2_rejects_a_landsat_folder),
        T(planetscope_folder_is_a_generic_bgrn_raster),
        T(landsat7_six_band_file_has_no_date),
        T(generic_raster_takes_the_date_from_its_name),
        T(generic_raster_of_three_bands_asks_for_a_band_map),
        T(folder_of_two_multiband_rasters_is_ambiguous),
        T(unrecognised_folder_is_an_input_error_naming_it),
        T(missing_path_is_an_input_error_naming_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

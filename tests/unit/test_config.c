/* Config loading: parsed values, defaults, path resolution, and one test
 * per class of error, each checking the status, the file name, the exact
 * line, the key path and the reason in the message.
 *
 * Every test gets a fresh temporary folder laid out like the repository:
 *   configs/test.yaml                  (the config under test)
 *   sample_rasters/landsat5/LT5_B*.TIF (empty: the loader only checks that
 *   sample_rasters/landsat5/qa.tif      referenced files exist)
 *   sample_rasters/landsat5_2011/...
 *   sample_rasters/aoi.geojson, zones.geojson */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "aw_test.h"
#include "config_test_util.h"
#include "aralwatch/config.h"
#include "aralwatch/util.h"

typedef struct fx {
    char *dir;      /* the temporary tree */
    char *cfg_path; /* dir/configs/test.yaml once written */
    aw_ctx *ctx;
} fx;

static const char *const dummy_files[] = {
    "sample_rasters/landsat5/LT5_B1.TIF",
    "sample_rasters/landsat5/LT5_B2.TIF",
    "sample_rasters/landsat5/LT5_B3.TIF",
    "sample_rasters/landsat5/LT5_B4.TIF",
    "sample_rasters/landsat5/LT5_B5.TIF",
    "sample_rasters/landsat5/LT5_B7.TIF",
    "sample_rasters/landsat5/qa.tif",
    "sample_rasters/landsat5_2011/LT5_B1.TIF",
    "sample_rasters/landsat5_2011/LT5_B2.TIF",
    "sample_rasters/landsat5_2011/LT5_B3.TIF",
    "sample_rasters/landsat5_2011/LT5_B4.TIF",
    "sample_rasters/landsat5_2011/LT5_B5.TIF",
    "sample_rasters/landsat5_2011/LT5_B7.TIF",
    "sample_rasters/landsat5_2011/qa.tif",
    "sample_rasters/aoi.geojson",
    "sample_rasters/zones.geojson",
};

/* An AOI layer named "aoi", and a zone layer "zones" with fields zone_id,
 * name, kind and the zones "tucurui" and "42" the rules name. */
static const char aoi_json[] =
    "{\"type\": \"FeatureCollection\", \"name\": \"aoi\", \"features\": "
    "[{\"type\": \"Feature\", \"properties\": {}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[-49.9, -3.8], [-49.8, "
    "-3.8], [-49.8, -3.7], [-49.9, -3.8]]]}}]}\n";
static const char zones_json[] =
    "{\"type\": \"FeatureCollection\", \"name\": \"zones\", "
    "\"features\": ["
    "{\"type\": \"Feature\", \"properties\": {\"zone_id\": \"tucurui\", "
    "\"name\": \"Tucurui\", \"kind\": \"waterbody\"}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[-49.9, -3.8], [-49.8, "
    "-3.8], [-49.8, -3.7], [-49.9, -3.8]]]}},"
    "{\"type\": \"Feature\", \"properties\": {\"zone_id\": \"42\", "
    "\"name\": \"Field 42\", \"kind\": \"cropland\"}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[-49.9, -3.8], [-49.85, "
    "-3.8], [-49.85, -3.75], [-49.9, -3.8]]]}}]}\n";

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = aw_test_mkdtemp("cfg");
    f->ctx = aw_ctx_create();
    if (!f->dir || !f->ctx || aw_test_mkdirs(f->dir, "configs") != 0)
        return -1;
    for (size_t i = 0; i < sizeof dummy_files / sizeof *dummy_files; i++)
        if (aw_test_touch(f->dir, dummy_files[i]) != 0)
            return -1;
    /* The vector files are opened by the loader: real (tiny) GeoJSON. */
    char *a = aw_test_write(f->dir, "sample_rasters/aoi.geojson", aoi_json);
    char *z = aw_test_write(f->dir, "sample_rasters/zones.geojson", zones_json);
    int ok = a && z;
    free(a);
    free(z);
    if (!ok)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f->cfg_path);
    aw_ctx_destroy(f->ctx);
    free(f);
    return 0;
}

/* Stands in for "*out untouched" checks. */
static aw_config untouched;

/* Write text as configs/<name> and load it. On failure, checks that *out
 * was left alone. */
static aw_status load_named(fx *f, const char *name, const char *text,
                            aw_config **out)
{
    char rel[128];
    snprintf(rel, sizeof rel, "configs/%s", name);
    free(f->cfg_path);
    f->cfg_path = aw_test_write(f->dir, rel, text);
    assert_non_null(f->cfg_path);
    aw_ctx_clear_error(f->ctx);
    *out = &untouched;
    aw_status st = aw_config_load(f->ctx, f->cfg_path, out);
    if (st != AW_OK)
        assert_ptr_equal(*out, &untouched);
    return st;
}

static aw_config *load_ok(fx *f, const char *text)
{
    aw_config *cfg = NULL;
    aw_status st = load_named(f, "test.yaml", text, &cfg);
    if (st != AW_OK)
        print_error("unexpected error:\n%s\n", aw_ctx_errmsg(f->ctx));
    assert_int_equal(st, AW_OK);
    assert_non_null(cfg);
    return cfg;
}

static void assert_has_(const char *msg, const char *needle, const char *file,
                        int line)
{
    if (!strstr(msg, needle)) {
        print_error("message:\n%s\n--- does not contain:\n%s\n", msg, needle);
        _fail(file, line);
    }
}
#define assert_has(msg, needle) assert_has_(msg, needle, __FILE__, __LINE__)

/* Load text as configs/test.yaml, expect AW_ERR_CONFIG and each of the
 * NULL-terminated needles in the message. Returns the message. */
static const char *expect_errors(fx *f, const char *text, ...)
{
    aw_config *cfg = NULL;
    aw_status st = load_named(f, "test.yaml", text, &cfg);
    assert_int_equal(st, AW_ERR_CONFIG);
    const char *msg = aw_ctx_errmsg(f->ctx);
    va_list ap;
    va_start(ap, text);
    const char *needle;
    while ((needle = va_arg(ap, const char *)) != NULL)
        assert_has_(msg, needle, __FILE__, __LINE__);
    va_end(ap);
    return msg;
}

static size_t count_lines(const char *msg)
{
    size_t n = msg[0] ? 1 : 0;
    for (const char *s = msg; *s; s++)
        n += *s == '\n';
    return n;
}

/* dir + "/" + rel, for expected resolved paths. */
static char *in_dir(const fx *f, const char *rel)
{
    char *p = aw_path_join(f->dir, rel);
    assert_non_null(p);
    return p;
}

/* A valid config, 11 lines: HEAD is lines 1-3 and SCENES lines 4-11 when
 * written right after it. */
#define HEAD                                                                   \
    "version: 1\n"                                                             \
    "region:\n"                                                                \
    "  name: para\n"
#define SCENES                                                                 \
    "scenes:\n"                                                                \
    "  - date: 1988-08-14\n"                                                   \
    "    path: ../sample_rasters/landsat5\n"                                   \
    "    bands:\n"                                                             \
    "      green: LT5_B2.TIF\n"                                                \
    "      red: LT5_B3.TIF\n"                                                  \
    "      nir: LT5_B4.TIF\n"                                                  \
    "      swir1: LT5_B5.TIF\n"
#define MINIMAL HEAD SCENES

/* Lines 4-11 of a config whose scene has no 'path'. */
#define SCENE_NO_PATH                                                          \
    "scenes:\n"                                                                \
    "  - date: 1988-08-14\n"                                                   \
    "    bands:\n"                                                             \
    "      green: ../sample_rasters/landsat5/LT5_B2.TIF\n"                     \
    "      red: ../sample_rasters/landsat5/LT5_B3.TIF\n"                       \
    "      nir: ../sample_rasters/landsat5/LT5_B4.TIF\n"                       \
    "      swir1: ../sample_rasters/landsat5/LT5_B5.TIF\n"

/* ---- Valid configs ---- */

static const char full_config_fmt[] =
    "version: 1\n"
    "region:\n"
    "  name: para_reservoir\n"
    "  crs: EPSG:32622\n"
    "  resolution: 30\n"
    "  aoi: ../sample_rasters/aoi.geojson\n"
    "  aoi_layer: aoi\n"
    "scenes:\n"
    "  - id: LT52240631988227CUB02\n"
    "    date: 1988-08-14\n"
    "    path: ../sample_rasters/landsat5\n"
    "    scale: 0.0000275\n"
    "    offset: -0.2\n"
    "    nodata: 0\n"
    "    bands:\n"
    "      blue: LT5_B1.TIF\n"
    "      green: LT5_B2.TIF\n"
    "      red: {file: LT5_B3.TIF, band: 2, scale: 0.0012, offset: -0.004, "
    "nodata: -9999}\n"
    "      nir: LT5_B4.TIF\n"
    "      swir1: LT5_B5.TIF\n"
    "      swir2: LT5_B7.TIF\n"
    "      qa: {file: qa.tif}\n"
    "    qa_mask: {bits: [0, 1, 3, 4], values: [1, 255]}\n"
    "  - date: 2011-09-01\n"
    "    bands:\n"
    "      green: ../sample_rasters/landsat5_2011/LT5_B2.TIF\n"
    "      blue: ../sample_rasters/landsat5_2011/LT5_B1.TIF\n"
    "      red: ../sample_rasters/landsat5_2011/LT5_B3.TIF\n"
    "      nir: %s/sample_rasters/landsat5_2011/LT5_B4.TIF\n"
    "      swir1: {file: ../sample_rasters/landsat5_2011/LT5_B5.TIF, nodata: "
    "nan}\n"
    "      swir2: ../sample_rasters/landsat5_2011/LT5_B7.TIF\n"
    "indices: [ndwi, mndwi, ndvi, evi, savi]\n"
    "index_params: {savi_l: 0.25, evi_g: 2.4}\n"
    "resampling: {reflectance: cubic, qa: nearest}\n"
    "water:\n"
    "  index: ndwi\n"
    "  method: otsu\n"
    "  threshold: 0.1\n"
    "  otsu_bins: 512\n"
    "  otsu_min_class_fraction: 0.05\n"
    "zones:\n"
    "  file: ../sample_rasters/zones.geojson\n"
    "  layer: zones\n"
    "  id_field: zone_id\n"
    "  name_field: name\n"
    "  kind: waterbody\n"
    "alerts:\n"
    "  rules:\n"
    "    - id: reservoir_low\n"
    "      type: water_shrinkage\n"
    "      metric: water_area_km2\n"
    "      when: below\n"
    "      watch: 120\n"
    "      warning: 100\n"
    "      alert: 80\n"
    "      zones: [tucurui, 42]\n"
    "    - id: crops_dry\n"
    "      type: crop_stress\n"
    "      metric: mean_ndvi\n"
    "      when: above\n"
    "      warning: 0.4\n"
    "      kind: cropland\n"
    "      min_valid_fraction: 0.7\n"
    "  min_valid_fraction: 0.4\n"
    "outputs:\n"
    "  dir: ../out\n"
    "  cog: no\n"
    "  compress: zstd\n"
    "  level: 15\n"
    "  blocksize: 512\n"
    "  overwrite: false\n";

static void
a_complete_config_is_parsed_with_paths_resolved_against_its_folder(void **state)
{
    fx *f = *state;
    char *text = aw_asprintf(full_config_fmt, f->dir);
    assert_non_null(text);
    aw_config *cfg = load_ok(f, text);
    char *cfgdir = in_dir(f, "configs");
    char *p;

    assert_string_equal(cfg->path, f->cfg_path);
    assert_string_equal(cfg->dir, cfgdir);
    assert_int_equal(cfg->version, 1);
    assert_string_equal(cfg->region_name, "para_reservoir");
    assert_string_equal(cfg->crs, "EPSG:32622");
    assert_int_equal(cfg->has_resolution, 1);
    assert_close(cfg->resolution, 30.0, 0.0);
    p = in_dir(f, "configs/../sample_rasters/aoi.geojson");
    assert_string_equal(cfg->aoi_path, p);
    free(p);
    assert_string_equal(cfg->aoi_layer, "aoi");
    assert_int_equal(cfg->has_bbox, 0);

    assert_int_equal(cfg->n_scenes, 2);
    const aw_scene_cfg *s0 = &cfg->scenes[0];
    assert_string_equal(s0->id, "LT52240631988227CUB02");
    assert_string_equal(s0->date, "1988-08-14");
    assert_int_equal(s0->line, 9);
    p = in_dir(f, "configs/../sample_rasters/landsat5");
    assert_string_equal(s0->dir, p);
    free(p);
    p = in_dir(f, "configs/../sample_rasters/landsat5/LT5_B2.TIF");
    assert_int_equal(s0->bands[AW_BAND_GREEN].present, 1);
    assert_string_equal(s0->bands[AW_BAND_GREEN].path, p);
    free(p);
    /* Scene defaults apply to short-form bands... */
    assert_int_equal(s0->bands[AW_BAND_GREEN].band, 1);
    assert_close(s0->bands[AW_BAND_GREEN].scale, 0.0000275, 0.0);
    assert_close(s0->bands[AW_BAND_GREEN].offset, -0.2, 0.0);
    assert_int_equal(s0->bands[AW_BAND_GREEN].has_nodata, 1);
    assert_close(s0->bands[AW_BAND_GREEN].nodata, 0.0, 0.0);
    assert_int_equal(s0->bands[AW_BAND_GREEN].line, 17);
    /* ...and the long form overrides them. */
    assert_int_equal(s0->bands[AW_BAND_RED].band, 2);
    assert_close(s0->bands[AW_BAND_RED].scale, 0.0012, 0.0);
    assert_close(s0->bands[AW_BAND_RED].offset, -0.004, 0.0);
    assert_close(s0->bands[AW_BAND_RED].nodata, -9999.0, 0.0);
    assert_int_equal(s0->bands[AW_BAND_RED].line, 18);
    assert_int_equal(s0->qa.present, 1);
    p = in_dir(f, "configs/../sample_rasters/landsat5/qa.tif");
    assert_string_equal(s0->qa.path, p);
    free(p);
    /* A QA band holds flags: the scene's scale does not apply to it. */
    assert_close(s0->qa.scale, 1.0, 0.0);
    assert_int_equal(s0->qa.has_nodata, 0);
    assert_true(s0->qa_mask_bits ==
                ((1u << 0) | (1u << 1) | (1u << 3) | (1u << 4)));
    assert_int_equal(s0->n_qa_mask_values, 2);
    assert_close(s0->qa_mask_values[0], 1.0, 0.0);
    assert_close(s0->qa_mask_values[1], 255.0, 0.0);

    const aw_scene_cfg *s1 = &cfg->scenes[1];
    /* No id and no path: the first band file's base name. */
    assert_string_equal(s1->id, "LT5_B2.TIF");
    assert_null(s1->dir);
    p = in_dir(f, "configs/../sample_rasters/landsat5_2011/LT5_B1.TIF");
    assert_string_equal(s1->bands[AW_BAND_BLUE].path, p);
    free(p);
    /* An absolute band path stays as it is. */
    p = in_dir(f, "sample_rasters/landsat5_2011/LT5_B4.TIF");
    assert_string_equal(s1->bands[AW_BAND_NIR].path, p);
    free(p);
    assert_int_equal(s1->bands[AW_BAND_SWIR1].has_nodata, 1);
    assert_nan(s1->bands[AW_BAND_SWIR1].nodata);
    assert_close(s1->bands[AW_BAND_SWIR1].scale, 1.0, 0.0);
    assert_int_equal(s1->qa.present, 0);

    int want_idx[AW_IDX_COUNT] = {0};
    want_idx[AW_IDX_NDWI] = want_idx[AW_IDX_MNDWI] = want_idx[AW_IDX_NDVI] = 1;
    want_idx[AW_IDX_EVI] = want_idx[AW_IDX_SAVI] = 1;
    for (int i = 0; i < AW_IDX_COUNT; i++)
        assert_int_equal(cfg->indices[i], want_idx[i]);
    assert_close(cfg->index_params.savi_l, 0.25f, 0.0);
    assert_close(cfg->index_params.evi_g, 2.4f, 0.0);
    assert_close(cfg->index_params.evi_c1, 6.0, 0.0);
    assert_int_equal(cfg->resample_reflectance, AW_RESAMPLE_CUBIC);
    assert_int_equal(cfg->resample_qa, AW_RESAMPLE_NEAREST);

    assert_int_equal(cfg->water_index, AW_IDX_NDWI);
    assert_int_equal(cfg->water_method, AW_WATER_OTSU);
    assert_close(cfg->water_threshold, 0.1, 0.0);
    assert_int_equal(cfg->otsu_bins, 512);
    assert_close(cfg->otsu_min_class_fraction, 0.05, 0.0);

    p = in_dir(f, "configs/../sample_rasters/zones.geojson");
    assert_string_equal(cfg->zones_path, p);
    free(p);
    assert_string_equal(cfg->zones_layer, "zones");
    assert_string_equal(cfg->zones_id_field, "zone_id");
    assert_string_equal(cfg->zones_name_field, "name");
    assert_null(cfg->zones_kind_field);
    assert_int_equal(cfg->zones_kind, AW_ZONE_WATERBODY);

    assert_close(cfg->alerts_min_valid_fraction, 0.4, 0.0);
    assert_int_equal(cfg->n_rules, 2);
    const aw_rule_cfg *r0 = &cfg->rules[0];
    assert_string_equal(r0->id, "reservoir_low");
    assert_string_equal(r0->type, "water_shrinkage");
    assert_int_equal(r0->metric, AW_METRIC_WATER_AREA_KM2);
    assert_int_equal(r0->cmp, AW_CMP_BELOW);
    assert_true(r0->has_level[0] && r0->has_level[1] && r0->has_level[2]);
    assert_close(r0->level[0], 120.0, 0.0);
    assert_close(r0->level[1], 100.0, 0.0);
    assert_close(r0->level[2], 80.0, 0.0);
    assert_int_equal(r0->kind_set, 0);
    assert_int_equal(r0->n_zone_ids, 2);
    assert_string_equal(r0->zone_ids[0], "tucurui");
    assert_string_equal(r0->zone_ids[1], "42");
    /* The section default applies although it comes after the rules. */
    assert_close(r0->min_valid_fraction, 0.4, 0.0);
    assert_int_equal(r0->line, 49);
    const aw_rule_cfg *r1 = &cfg->rules[1];
    assert_int_equal(r1->metric, AW_METRIC_MEAN_NDVI);
    assert_int_equal(r1->cmp, AW_CMP_ABOVE);
    assert_true(!r1->has_level[0] && r1->has_level[1] && !r1->has_level[2]);
    assert_int_equal(r1->kind_set, 1);
    assert_int_equal(r1->kind, AW_ZONE_CROPLAND);
    assert_int_equal(r1->n_zone_ids, 0);
    assert_close(r1->min_valid_fraction, 0.7, 0.0);

    p = in_dir(f, "configs/../out");
    assert_string_equal(cfg->out_dir, p);
    free(p);
    assert_int_equal(cfg->cog, 0);
    assert_string_equal(cfg->compress, "ZSTD");
    assert_int_equal(cfg->level, 15);
    assert_int_equal(cfg->blocksize, 512);
    assert_int_equal(cfg->overwrite, 0);

    char hex[65];
    aw_sha256_buf(text, strlen(text), hex);
    assert_string_equal(cfg->sha256, hex);

    free(cfgdir);
    free(text);
    aw_config_destroy(cfg);
}

static void omitted_keys_take_their_documented_defaults(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, MINIMAL);
    char *p;

    assert_null(cfg->crs);
    assert_int_equal(cfg->has_resolution, 0);
    assert_null(cfg->aoi_path);
    assert_null(cfg->aoi_layer);
    assert_int_equal(cfg->has_bbox, 0);
    assert_string_equal(cfg->bbox_crs, "EPSG:4326");
    for (int i = 0; i < AW_IDX_COUNT; i++)
        assert_int_equal(cfg->indices[i], i == AW_IDX_NDWI ||
                                              i == AW_IDX_MNDWI ||
                                              i == AW_IDX_NDVI);
    aw_index_params def;
    aw_index_params_default(&def);
    assert_close(cfg->index_params.evi_g, def.evi_g, 0.0);
    assert_close(cfg->index_params.savi_l, def.savi_l, 0.0);
    assert_int_equal(cfg->resample_reflectance, AW_RESAMPLE_BILINEAR);
    assert_int_equal(cfg->resample_qa, AW_RESAMPLE_NEAREST);
    assert_int_equal(cfg->water_index, AW_IDX_MNDWI);
    assert_int_equal(cfg->water_method, AW_WATER_THRESHOLD);
    assert_close(cfg->water_threshold, 0.0, 0.0);
    assert_int_equal(cfg->otsu_bins, 256);
    assert_close(cfg->otsu_min_class_fraction, 0.01, 0.0);
    assert_null(cfg->zones_path);
    assert_int_equal(cfg->zones_kind, AW_ZONE_OTHER);
    assert_close(cfg->alerts_min_valid_fraction, 0.5, 0.0);
    assert_int_equal(cfg->n_rules, 0);
    p = in_dir(f, "configs/out");
    assert_string_equal(cfg->out_dir, p);
    free(p);
    assert_int_equal(cfg->cog, 1);
    assert_string_equal(cfg->compress, "ZSTD");
    assert_int_equal(cfg->level, 1); /* not GDAL's 9 */
    assert_int_equal(cfg->blocksize, 256);
    assert_int_equal(cfg->overwrite, 1);

    assert_int_equal(cfg->n_scenes, 1);
    const aw_scene_cfg *s = &cfg->scenes[0];
    assert_string_equal(s->id, "landsat5"); /* base name of the path */
    assert_int_equal(s->line, 5);
    const aw_band_src *red = &s->bands[AW_BAND_RED];
    assert_int_equal(red->present, 1);
    assert_int_equal(red->band, 1);
    assert_close(red->scale, 1.0, 0.0);
    assert_close(red->offset, 0.0, 0.0);
    assert_int_equal(red->has_nodata, 0);
    assert_int_equal(red->line, 9);
    assert_int_equal(s->bands[AW_BAND_BLUE].present, 0);
    assert_int_equal(s->qa.present, 0);
    assert_true(s->qa_mask_bits == 0);
    assert_int_equal(s->n_qa_mask_values, 0);
    aw_config_destroy(cfg);
}

static void a_null_value_counts_as_an_absent_key(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, HEAD "  crs:\n"
                                     "  resolution: ~\n" SCENES "zones:\n"
                                     "outputs:\n"
                                     "  dir: null\n");
    assert_null(cfg->crs);
    assert_int_equal(cfg->has_resolution, 0);
    assert_null(cfg->zones_path);
    assert_non_null(strstr(cfg->out_dir, "configs/out"));
    aw_config_destroy(cfg);
}

static void a_bbox_is_read_with_its_crs(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, HEAD "  bbox: [-49.9, -4.2, -49.1, -3.6]\n"
                                     "  bbox_crs: EPSG:4674\n" SCENES);
    assert_int_equal(cfg->has_bbox, 1);
    assert_close(cfg->bbox[0], -49.9, 0.0);
    assert_close(cfg->bbox[1], -4.2, 0.0);
    assert_close(cfg->bbox[2], -49.1, 0.0);
    assert_close(cfg->bbox[3], -3.6, 0.0);
    assert_string_equal(cfg->bbox_crs, "EPSG:4674");
    aw_config_destroy(cfg);
}

static void yes_no_and_upper_case_compression_are_accepted(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, MINIMAL "outputs:\n"
                                        "  cog: yes\n"
                                        "  overwrite: no\n"
                                        "  compress: LZW\n");
    assert_int_equal(cfg->cog, 1);
    assert_int_equal(cfg->overwrite, 0);
    assert_string_equal(cfg->compress, "LZW");
    aw_config_destroy(cfg);
}

static void an_absolute_output_folder_stays_absolute(void **state)
{
    fx *f = *state;
    char *text = aw_asprintf(MINIMAL "outputs: {dir: %s/results}\n", f->dir);
    assert_non_null(text);
    aw_config *cfg = load_ok(f, text);
    char *p = in_dir(f, "results");
    assert_string_equal(cfg->out_dir, p);
    free(p);
    free(text);
    aw_config_destroy(cfg);
}

static void gdal_virtual_paths_are_not_checked_for_existence(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, HEAD "scenes:\n"
                                     "  - date: 1988-08-14\n"
                                     "    bands:\n"
                                     "      green: /vsizip/scene.zip/B2.TIF\n"
                                     "      red: /vsizip/scene.zip/B3.TIF\n"
                                     "      nir: /vsizip/scene.zip/B4.TIF\n"
                                     "      swir1: /vsizip/scene.zip/B5.TIF\n");
    assert_string_equal(cfg->scenes[0].bands[AW_BAND_RED].path,
                        "/vsizip/scene.zip/B3.TIF");
    assert_string_equal(cfg->scenes[0].id, "B2.TIF");
    aw_config_destroy(cfg);
}

static void
needed_bands_are_the_union_of_the_indices_and_the_water_index(void **state)
{
    fx *f = *state;
    aw_config *cfg = load_ok(f, MINIMAL "indices: [ndvi]\n");
    assert_int_equal(aw_config_needed_bands(cfg),
                     (1u << AW_BAND_GREEN) | (1u << AW_BAND_RED) |
                         (1u << AW_BAND_NIR) | (1u << AW_BAND_SWIR1));
    aw_config_destroy(cfg);

    cfg = load_ok(f, MINIMAL "indices: []\n"
                             "water: {index: ndwi}\n");
    for (int i = 0; i < AW_IDX_COUNT; i++)
        assert_int_equal(cfg->indices[i], 0);
    assert_int_equal(aw_config_needed_bands(cfg),
                     (1u << AW_BAND_GREEN) | (1u << AW_BAND_NIR));
    aw_config_destroy(cfg);
    assert_int_equal(aw_config_needed_bands(NULL), 0);
}

static void metric_names_round_trip(void **state)
{
    (void)state;
    for (int m = 0; m < AW_METRIC_COUNT; m++)
        assert_int_equal(aw_metric_from_name(aw_metric_name((aw_metric)m)), m);
    assert_string_equal(aw_metric_name(AW_METRIC_WATER_AREA_KM2),
                        "water_area_km2");
    assert_string_equal(aw_metric_name(AW_METRIC_MEAN_MNDWI), "mean_mndwi");
    assert_int_equal(aw_metric_from_name("mean_evi"), -1);
    assert_int_equal(aw_metric_from_name(NULL), -1);
    aw_config_destroy(NULL);
}

/* ---- Errors ---- */

static void an_unknown_key_is_reported_with_a_close_suggestion(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "  resolutoin: 30\n" SCENES "outputs:\n"
                       "  blocksiz: 512\n",
                  "configs/test.yaml:4: region.resolutoin: unknown key "
                  "'resolutoin'; did you mean 'resolution'?",
                  "configs/test.yaml:14: outputs.blocksiz: unknown key "
                  "'blocksiz'; did you mean 'blocksize'?",
                  NULL);
}

static void
an_unknown_key_without_a_close_match_lists_the_known_keys(void **state)
{
    fx *f = *state;
    const char *msg =
        expect_errors(f, MINIMAL "foo: 1\n",
                      "configs/test.yaml:12: foo: unknown key 'foo' (known "
                      "keys: version, region, scenes, indices,",
                      NULL);
    assert_null(strstr(msg, "did you mean"));
}

static void a_duplicate_key_is_reported_with_the_first_line(void **state)
{
    fx *f = *state;
    expect_errors(f, HEAD "  name: again\n" SCENES,
                  "configs/test.yaml:4: region.name: duplicate key 'name' "
                  "(first given at line 3)",
                  NULL);
}

static void a_wrong_type_is_reported_with_the_value_and_key_path(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "scenes:\n"
                       "  - date: 1988-08-14\n"
                       "    path: ../sample_rasters/landsat5\n"
                       "    bands:\n"
                       "      green: LT5_B2.TIF\n"
                       "      red: {file: LT5_B3.TIF, scale: abc}\n"
                       "      nir: {file: LT5_B4.TIF, band: 1.5}\n"
                       "      swir1: [LT5_B5.TIF]\n"
                       "indices: ndwi\n"
                       "water: mndwi\n"
                       "outputs: {cog: maybe}\n",
                  "configs/test.yaml:9: scenes[0].bands.red.scale: expected "
                  "a number, got 'abc'",
                  "configs/test.yaml:10: scenes[0].bands.nir.band: expected "
                  "an integer, got '1.5'",
                  "configs/test.yaml:11: scenes[0].bands.swir1: expected a "
                  "file name or a mapping, got a list",
                  "configs/test.yaml:12: indices: expected a list of index "
                  "names, got 'ndwi'",
                  "configs/test.yaml:13: water: expected a mapping, got "
                  "'mndwi'",
                  "configs/test.yaml:14: outputs.cog: expected true or false, "
                  "got 'maybe'",
                  NULL);
}

static void a_date_in_another_format_is_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "scenes:\n"
                       "  - date: 1988-8-14\n"
                       "    path: ../sample_rasters/landsat5\n"
                       "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                       "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
                       "  - date: 14/08/1988\n"
                       "    path: ../sample_rasters/landsat5\n"
                       "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                       "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
                       "  - date: 1988-08-14T10:00:00\n"
                       "    path: ../sample_rasters/landsat5\n"
                       "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                       "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n",
                  "configs/test.yaml:5: scenes[0].date: expected a date "
                  "YYYY-MM-DD, got '1988-8-14'",
                  "configs/test.yaml:8: scenes[1].date: expected a date "
                  "YYYY-MM-DD, got '14/08/1988'",
                  "configs/test.yaml:11: scenes[2].date: expected a date "
                  "YYYY-MM-DD, got '1988-08-14T10:00:00'",
                  NULL);
}

static void an_impossible_calendar_date_is_rejected(void **state)
{
    fx *f = *state;
    const char *msg = expect_errors(
        f,
        HEAD "scenes:\n"
             "  - date: 1988-02-30\n"
             "    path: ../sample_rasters/landsat5\n"
             "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
             "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
             "  - date: 1900-02-29\n"
             "    id: b\n"
             "    path: ../sample_rasters/landsat5\n"
             "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
             "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
             "  - date: 2000-02-29\n"
             "    id: c\n"
             "    path: ../sample_rasters/landsat5\n"
             "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
             "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
             "  - date: 1988-13-01\n"
             "    id: d\n"
             "    path: ../sample_rasters/landsat5\n"
             "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
             "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n",
        "configs/test.yaml:5: scenes[0].date: '1988-02-30' is not a real "
        "calendar date",
        "configs/test.yaml:8: scenes[1].date: '1900-02-29' is not a real "
        "calendar date",
        "configs/test.yaml:16: scenes[3].date: '1988-13-01' is not a real "
        "calendar date",
        NULL);
    /* 2000 is a leap year. */
    assert_null(strstr(msg, "2000-02-29"));
    assert_int_equal(count_lines(msg), 3);
}

static void a_missing_required_key_is_reported_at_its_mapping(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  "version: 1\n"
                  "region:\n"
                  "  crs: EPSG:32622\n"
                  "scenes:\n"
                  "  - path: ../sample_rasters/landsat5\n"
                  "    bands:\n"
                  "      green: {band: 2}\n"
                  "alerts:\n"
                  "  rules:\n"
                  "    - id: r\n"
                  "      metric: water_fraction\n"
                  "      when: below\n",
                  "configs/test.yaml:3: region.name: required key 'name' is "
                  "missing",
                  "configs/test.yaml:5: scenes[0].date: required key 'date' "
                  "is missing",
                  "configs/test.yaml:7: scenes[0].bands.green.file: required "
                  "key 'file' is missing",
                  "configs/test.yaml:10: alerts.rules[0].type: required key "
                  "'type' is missing",
                  "configs/test.yaml:10: alerts.rules[0]: needs at least one "
                  "of 'watch', 'warning', 'alert'",
                  NULL);
    expect_errors(f, "version: 1\nregion:\n  name:\n",
                  "configs/test.yaml:3: region.name: required key 'name' has "
                  "no value",
                  "configs/test.yaml:1: scenes: required key 'scenes' is "
                  "missing",
                  NULL);
}

static void a_missing_file_is_reported_with_its_resolved_path(void **state)
{
    fx *f = *state;
    const char *msg = expect_errors(
        f,
        HEAD "  aoi: ../sample_rasters/nowhere.geojson\n"
             "scenes:\n"
             "  - date: 1988-08-14\n"
             "    path: ../sample_rasters/landsat5\n"
             "    bands:\n"
             "      green: LT5_B2.TIF\n"
             "      red: LT5_B9.TIF\n"
             "      nir: {file: LT5_B8.TIF}\n"
             "      swir1: LT5_B5.TIF\n"
             "  - date: 1990-01-01\n"
             "    path: ../sample_rasters/landsat4\n"
             "    bands: {green: a.tif, red: b.tif, nir: c.tif, swir1: "
             "d.tif}\n"
             "zones: {file: zones.geojson, id_field: id}\n",
        NULL);
    char *p, *needle;

    p = in_dir(f, "configs/../sample_rasters/nowhere.geojson");
    needle =
        aw_asprintf("configs/test.yaml:4: region.aoi: file not found: %s", p);
    assert_has(msg, needle);
    free(needle);
    free(p);

    p = in_dir(f, "configs/../sample_rasters/landsat5/LT5_B9.TIF");
    needle = aw_asprintf("configs/test.yaml:10: scenes[0].bands.red: file not "
                         "found: %s",
                         p);
    assert_has(msg, needle);
    free(needle);
    free(p);

    p = in_dir(f, "configs/../sample_rasters/landsat5/LT5_B8.TIF");
    needle = aw_asprintf("configs/test.yaml:11: scenes[0].bands.nir.file: "
                         "file not found: %s",
                         p);
    assert_has(msg, needle);
    free(needle);
    free(p);

    p = in_dir(f, "configs/../sample_rasters/landsat4");
    needle = aw_asprintf("configs/test.yaml:14: scenes[1].path: folder not "
                         "found: %s",
                         p);
    assert_has(msg, needle);
    free(needle);
    free(p);

    /* The band files of a missing scene folder are not reported again. */
    assert_null(strstr(msg, "scenes[1].bands"));

    p = in_dir(f, "configs/zones.geojson");
    needle =
        aw_asprintf("configs/test.yaml:16: zones.file: file not found: %s", p);
    assert_has(msg, needle);
    free(needle);
    free(p);
}

static void a_crs_proj_does_not_know_is_a_config_error(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  "version: 1\n"
                  "region:\n"
                  "  name: r\n"
                  "  crs: EPSG:999999\n" SCENES,
                  "configs/test.yaml:4: region.crs: not a CRS GDAL/PROJ knows: "
                  "'EPSG:999999'",
                  NULL);
}

static void a_zone_field_not_in_the_layer_is_a_config_error(void **state)
{
    fx *f = *state;
    expect_errors(
        f,
        MINIMAL "zones:\n"
                "  file: ../sample_rasters/zones.geojson\n"
                "  id_field: nope\n",
        "configs/test.yaml:14: zones.id_field: field 'nope' is not in",
        "(fields: zone_id, name, kind)", NULL);
}

static void a_rule_naming_an_unknown_zone_is_a_config_error(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  MINIMAL "zones:\n"
                          "  file: ../sample_rasters/zones.geojson\n"
                          "  id_field: zone_id\n"
                          "alerts:\n"
                          "  rules:\n"
                          "    - id: low\n"
                          "      type: water_shrinkage\n"
                          "      metric: water_area_km2\n"
                          "      when: below\n"
                          "      watch: 10\n"
                          "      zones: [tucurui, tucurai]\n",
                  "configs/test.yaml:22: alerts.rules[0].zones[1]: no zone "
                  "'tucurai' in",
                  "did you mean 'tucurui'?", NULL);
}

static void an_unreadable_zone_file_is_a_config_error(void **state)
{
    fx *f = *state;
    char *p = aw_test_write(f->dir, "configs/broken.geojson", "{not json");
    free(p);
    expect_errors(
        f, MINIMAL "zones: {file: broken.geojson, id_field: zone_id}\n",
        "configs/test.yaml:12: zones.file:",
        "broken.geojson is not a vector layer GDAL/OGR can read", NULL);
}

static void a_network_path_needs_allow_network(void **state)
{
    fx *f = *state;
    const char *text =
        HEAD "scenes:\n"
             "  - date: 2020-01-01\n"
             "    bands: {green: /vsicurl/https://h.invalid/g.tif,"
             " nir: n.tif}\n"
             "indices: [ndwi]\n"
             "water: {index: ndwi}\n";
    char *p = aw_test_write(f->dir, "configs/n.tif", "");
    free(p);
    expect_errors(f, text,
                  "configs/test.yaml:6: scenes[0].bands.green: a network path",
                  "set 'allow_network: true'", NULL);
    char *allowed = aw_asprintf("%sallow_network: true\n", text);
    assert_non_null(allowed);
    aw_config *cfg = load_ok(f, allowed);
    assert_string_equal(cfg->scenes[0].bands[AW_BAND_GREEN].path,
                        "/vsicurl/https://h.invalid/g.tif");
    aw_config_destroy(cfg);
    free(allowed);
}

static void a_scene_path_that_is_a_file_is_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "scenes:\n"
                       "  - date: 1988-08-14\n"
                       "    path: ../sample_rasters/aoi.geojson\n"
                       "    bands: {green: LT5_B2.TIF}\n",
                  "configs/test.yaml:6: scenes[0].path: not a folder: ", NULL);
}

static void an_unknown_index_name_lists_the_valid_names(void **state)
{
    fx *f = *state;
    expect_errors(f, MINIMAL "indices: [ndwi, ndwii, foo, ndwi]\n",
                  "configs/test.yaml:12: indices[1]: unknown index 'ndwii'; "
                  "did you mean 'ndwi'? (valid: ndwi, mndwi, ndvi, ndmi, evi, "
                  "savi, awei_nsh, awei_sh)",
                  "configs/test.yaml:12: indices[2]: unknown index 'foo' "
                  "(valid: ndwi, mndwi, ndvi, ndmi, evi, savi, awei_nsh, "
                  "awei_sh)",
                  "configs/test.yaml:12: indices[3]: index 'ndwi' is listed "
                  "twice (first at line 12)",
                  NULL);
    expect_errors(f, MINIMAL "water:\n  index: mdnwi\n",
                  "configs/test.yaml:13: water.index: unknown index 'mdnwi'; "
                  "did you mean 'mndwi'?",
                  NULL);
}

static void aoi_and_bbox_together_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "  aoi: ../sample_rasters/aoi.geojson\n"
                       "  bbox: [-50, -4, -49, -3]\n" SCENES,
                  "configs/test.yaml:5: region.bbox: 'aoi' and 'bbox' cannot "
                  "both be given (aoi at line 4); choose one",
                  NULL);
}

static void
a_bad_bbox_and_options_without_their_partner_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  HEAD "  bbox: [-49, -4, -50, -3]\n"
                       "  aoi_layer: lakes\n" SCENES,
                  "configs/test.yaml:4: region.bbox: xmin (-49) must be less "
                  "than xmax (-50)",
                  "configs/test.yaml:5: region.aoi_layer: 'aoi_layer' is only "
                  "allowed together with 'aoi'",
                  NULL);
    expect_errors(f,
                  HEAD "  bbox: [1, 2, 3]\n"
                       "  bbox_crs: EPSG:4326\n",
                  "configs/test.yaml:4: region.bbox: expected 4 numbers "
                  "[xmin, ymin, xmax, ymax], got 3",
                  NULL);
    expect_errors(f, HEAD "  bbox_crs: EPSG:4326\n" SCENES,
                  "configs/test.yaml:4: region.bbox_crs: 'bbox_crs' is only "
                  "allowed together with 'bbox'",
                  NULL);
}

static void
thresholds_out_of_order_for_the_comparison_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  MINIMAL "alerts:\n"
                          "  rules:\n"
                          "    - id: low\n"
                          "      type: water_shrinkage\n"
                          "      metric: water_area_km2\n"
                          "      when: below\n"
                          "      watch: 120\n"
                          "      warning: 130\n"
                          "      alert: 80\n"
                          "    - id: flood\n"
                          "      type: flood_expansion\n"
                          "      metric: water_fraction\n"
                          "      when: above\n"
                          "      watch: 0.5\n"
                          "      alert: 0.4\n"
                          "    - id: flat\n"
                          "      type: custom\n"
                          "      metric: valid_fraction\n"
                          "      when: below\n"
                          "      watch: 0.3\n"
                          "      warning: 0.3\n",
                  "configs/test.yaml:19: alerts.rules[0].warning: with 'when: "
                  "below' the levels must strictly decrease (watch > warning "
                  "> alert), but watch is 120 and warning is 130",
                  "configs/test.yaml:26: alerts.rules[1].alert: with 'when: "
                  "above' the levels must strictly increase (watch < warning "
                  "< alert), but watch is 0.5 and alert is 0.4",
                  "configs/test.yaml:32: alerts.rules[2].warning: with 'when: "
                  "below' the levels must strictly decrease",
                  NULL);
}

static void bad_rule_fields_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  MINIMAL "alerts:\n"
                          "  min_valid_fraction: 1.5\n"
                          "  rules:\n"
                          "    - id: a\n"
                          "      type: drought\n"
                          "      metric: area\n"
                          "      when: under\n"
                          "      alert: 1\n"
                          "      kind: lake\n"
                          "      zones: tucurui\n"
                          "    - type: custom\n"
                          "      id: a\n"
                          "      metric: water_fraction\n"
                          "      when: above\n"
                          "      alert: 0.9\n"
                          "      min_valid_fraction: -1\n",
                  "configs/test.yaml:13: alerts.min_valid_fraction: must be "
                  "between 0 and 1, got 1.5",
                  "configs/test.yaml:16: alerts.rules[0].type: unknown alert "
                  "type 'drought' (valid: water_shrinkage, flood_expansion, "
                  "crop_stress, custom)",
                  "configs/test.yaml:17: alerts.rules[0].metric: unknown "
                  "metric 'area'",
                  "configs/test.yaml:18: alerts.rules[0].when: unknown "
                  "comparison 'under' (valid: below, above)",
                  "configs/test.yaml:20: alerts.rules[0].kind: unknown zone "
                  "kind 'lake'",
                  "configs/test.yaml:21: alerts.rules[0].zones: expected a "
                  "list of zone ids, got 'tucurui'",
                  "configs/test.yaml:23: alerts.rules[1].id: duplicate rule "
                  "id 'a' (also alerts.rules[0], line 15)",
                  "configs/test.yaml:27: alerts.rules[1].min_valid_fraction: "
                  "must be between 0 and 1, got -1",
                  NULL);
}

static void a_rule_metric_needs_its_index_in_indices(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  MINIMAL "indices: [mndwi]\n"
                          "alerts:\n"
                          "  rules:\n"
                          "    - id: dry\n"
                          "      type: crop_stress\n"
                          "      metric: mean_ndvi\n"
                          "      when: below\n"
                          "      alert: 0.2\n",
                  "configs/test.yaml:17: alerts.rules[0].metric: mean_ndvi "
                  "needs 'ndvi' in indices",
                  NULL);
}

static void a_scene_without_a_band_needed_by_an_index_is_rejected(void **state)
{
    fx *f = *state;
    const char *msg = expect_errors(
        f,
        MINIMAL "indices: [ndwi, ndmi]\n"
                "water:\n"
                "  index: awei_sh\n",
        "configs/test.yaml:7: scenes[0].bands: scene 'landsat5' has no "
        "'blue' band, needed by awei_sh (water index)",
        "configs/test.yaml:7: scenes[0].bands: scene 'landsat5' has no "
        "'swir2' band, needed by awei_sh (water index)",
        NULL);
    assert_int_equal(count_lines(msg), 2);
    expect_errors(f, HEAD SCENES "indices: [evi]\n",
                  "configs/test.yaml:7: scenes[0].bands: scene 'landsat5' has "
                  "no 'blue' band, needed by evi",
                  NULL);
}

static void two_scenes_on_the_same_date_are_kept_for_one_mosaic(void **state)
{
    fx *f = *state;
    aw_config *cfg =
        load_ok(f, MINIMAL "  - date: 1988-08-14\n"
                           "    id: other\n"
                           "    path: ../sample_rasters/landsat5_2011\n"
                           "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                           "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n");
    assert_int_equal(cfg->n_scenes, 2);
    assert_string_equal(cfg->scenes[0].date, cfg->scenes[1].date);
    assert_int_equal(cfg->scenes[1].sensor, AW_SENSOR_GENERIC);
    assert_int_equal(cfg->mosaic_order, AW_MOSAIC_LEAST_CLOUD);
    aw_config_destroy(cfg);
}

static void two_scenes_with_the_same_id_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  MINIMAL "  - date: 1990-01-01\n"
                          "    path: ../sample_rasters/landsat5\n"
                          "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                          "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n"
                          "  - date: 1991-01-01\n"
                          "    id: landsat5\n"
                          "    path: ../sample_rasters/landsat5\n"
                          "    bands: {green: LT5_B2.TIF, red: LT5_B3.TIF, "
                          "nir: LT5_B4.TIF, swir1: LT5_B5.TIF}\n",
                  "configs/test.yaml:12: scenes[1]: default scene id "
                  "'landsat5' is already used by scenes[0] (line 5); give "
                  "each scene an 'id'",
                  "configs/test.yaml:16: scenes[2].id: duplicate scene id "
                  "'landsat5' (also scenes[0], line 5)",
                  NULL);
}

static void a_yaml_syntax_error_names_the_file_and_line(void **state)
{
    fx *f = *state;
    expect_errors(f, HEAD "\tcrs: EPSG:4326\n" SCENES,
                  "configs/test.yaml:4: YAML syntax error: found a tab "
                  "character that violates indentation",
                  NULL);
    expect_errors(f, MINIMAL "indices: [ndwi, mndwi\n",
                  "configs/test.yaml:13: YAML syntax error: did not find "
                  "expected ',' or ']' (while parsing a flow sequence at line "
                  "12)",
                  NULL);
    expect_errors(f, MINIMAL "water: *nowhere\n",
                  "configs/test.yaml:12: YAML syntax error: found undefined "
                  "alias",
                  NULL);
    expect_errors(f, MINIMAL "---\nversion: 1\n",
                  "configs/test.yaml:13: only one YAML document is allowed",
                  NULL);
}

static void a_nonexistent_config_file_is_a_config_error_naming_it(void **state)
{
    fx *f = *state;
    char *path = in_dir(f, "configs/nope.yaml");
    aw_config *cfg = &untouched;
    assert_int_equal(aw_config_load(f->ctx, path, &cfg), AW_ERR_CONFIG);
    assert_ptr_equal(cfg, &untouched);
    char *needle =
        aw_asprintf("%s: cannot open config file: No such file", path);
    assert_has(aw_ctx_errmsg(f->ctx), needle);
    free(needle);
    free(path);

    path = in_dir(f, "configs");
    assert_int_equal(aw_config_load(f->ctx, path, &cfg), AW_ERR_CONFIG);
    assert_has(aw_ctx_errmsg(f->ctx), "not a regular file");
    free(path);
}

static void an_empty_config_or_a_top_level_list_is_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f, "",
                  "configs/test.yaml:1: (top level): the config file is empty",
                  NULL);
    expect_errors(f, "# only a comment\n",
                  "configs/test.yaml:1: (top level): the config file is empty",
                  NULL);
    expect_errors(f, "- version: 1\n",
                  "configs/test.yaml:1: (top level): expected a mapping, got "
                  "a list",
                  NULL);
}

static void a_version_other_than_1_is_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f, "version: 2\nregion:\n  name: para\n" SCENES,
                  "configs/test.yaml:1: version: unsupported config version 2 "
                  "(this build reads version 1)",
                  NULL);
    expect_errors(f, "version: one\nregion:\n  name: para\n" SCENES,
                  "configs/test.yaml:1: version: expected an integer, got "
                  "'one'",
                  NULL);
    expect_errors(f, "region:\n  name: para\n" SCENES,
                  "configs/test.yaml:1: version: required key 'version' is "
                  "missing",
                  NULL);
}

static void out_of_range_values_are_rejected(void **state)
{
    fx *f = *state;
    expect_errors(f,
                  "version: 1\n"
                  "region:\n"
                  "  name: para reservoir\n"
                  "  resolution: 0\n"
                  "scenes:\n"
                  "  - date: 1988-08-14\n"
                  "    path: ../sample_rasters/landsat5\n"
                  "    scale: 0\n"
                  "    bands:\n"
                  "      green: {file: LT5_B2.TIF, band: 0}\n"
                  "      red: LT5_B3.TIF\n"
                  "      nir: LT5_B4.TIF\n"
                  "      swir1: LT5_B5.TIF\n"
                  "    qa_mask: {bits: [64]}\n"
                  "water:\n"
                  "  method: kmeans\n"
                  "  otsu_bins: 8\n"
                  "  otsu_min_class_fraction: 0.5\n"
                  "resampling: {reflectance: lanczos}\n"
                  "index_params: {savi_l: 1e39}\n"
                  "zones:\n"
                  "  file: ../sample_rasters/zones.geojson\n"
                  "  id_field: zone_id\n"
                  "  kind_field: kind\n"
                  "  kind: desert\n"
                  "outputs:\n"
                  "  compress: gzip\n"
                  "  blocksize: 100\n",
                  "configs/test.yaml:3: region.name: 'para reservoir' is not "
                  "a valid folder name",
                  "configs/test.yaml:4: region.resolution: must be greater "
                  "than 0, got 0",
                  "configs/test.yaml:8: scenes[0].scale: must not be 0",
                  "configs/test.yaml:10: scenes[0].bands.green.band: must be "
                  "between 1 and 65535, got 0",
                  "configs/test.yaml:14: scenes[0].qa_mask.bits[0]: must be "
                  "between 0 and 63, got 64",
                  "configs/test.yaml:14: scenes[0].qa_mask: 'qa_mask' needs a "
                  "'qa' band in scenes[0].bands",
                  "configs/test.yaml:16: water.method: unknown method "
                  "'kmeans' (valid: threshold, otsu, dswe, wofs)",
                  "configs/test.yaml:17: water.otsu_bins: must be between 16 "
                  "and 4096, got 8",
                  "configs/test.yaml:18: water.otsu_min_class_fraction: must "
                  "be greater than 0 and less than 0.5, got 0.5",
                  "configs/test.yaml:19: resampling.reflectance: unknown "
                  "resampling 'lanczos' (valid: nearest, bilinear, cubic, "
                  "average)",
                  "configs/test.yaml:20: index_params.savi_l: 1e39 is out of "
                  "range",
                  "configs/test.yaml:25: zones.kind: unknown zone kind "
                  "'desert'",
                  "configs/test.yaml:25: zones.kind: give either 'kind' or "
                  "'kind_field' (line 24), not both",
                  "configs/test.yaml:27: outputs.compress: unknown "
                  "compression 'gzip' (valid: deflate, zstd, lzw, none)",
                  "configs/test.yaml:28: outputs.blocksize: must be a "
                  "multiple of 16, got 100",
                  NULL);
}

/* outputs.level: GDAL's ZLEVEL for deflate (1..12 with libdeflate),
 * ZSTD_LEVEL for zstd (1..22, and the default compression); LZW and no
 * compression have none. The check uses the compression given in the same
 * mapping, wherever it is. */
static void compression_levels_are_checked_against_the_codec(void **state)
{
    fx *f = *state;
    expect_errors(f, MINIMAL "outputs:\n  level: 23\n",
                  "configs/test.yaml:13: outputs.level: must be between 1 "
                  "and 22, got 23",
                  NULL);
    expect_errors(f, MINIMAL "outputs:\n  level: 0\n  compress: zstd\n",
                  "configs/test.yaml:13: outputs.level: must be between 1 "
                  "and 22, got 0",
                  NULL);
    expect_errors(f, MINIMAL "outputs:\n  level: 6\n  compress: lzw\n",
                  "configs/test.yaml:13: outputs.level: compression 'lzw' "
                  "has no level (only deflate and zstd do)",
                  NULL);
    expect_errors(f, MINIMAL "outputs:\n  compress: none\n  level: 1\n",
                  "configs/test.yaml:14: outputs.level: compression 'none' "
                  "has no level",
                  NULL);
    /* A level after a compression that is itself wrong: one error. */
    const char *msg =
        expect_errors(f, MINIMAL "outputs:\n  compress: brotli\n  level: 15\n",
                      "configs/test.yaml:13: outputs.compress: unknown "
                      "compression 'brotli'",
                      NULL);
    assert_null(strstr(msg, "outputs.level"));
    expect_errors(f, MINIMAL "outputs:\n  level: fast\n",
                  "configs/test.yaml:13: outputs.level: expected an integer, "
                  "got 'fast'",
                  NULL);
    aw_config *cfg =
        load_ok(f, MINIMAL "outputs:\n  level: 22\n  compress: zstd\n");
    assert_int_equal(cfg->level, 22);
    aw_config_destroy(cfg);
    cfg = load_ok(f, MINIMAL "outputs:\n  level: 3\n");
    assert_int_equal(cfg->level, 3);
    assert_string_equal(cfg->compress, "ZSTD");
    aw_config_destroy(cfg);
    /* Without a level: ZSTD 1, DEFLATE GDAL's (0: 6). */
    cfg = load_ok(f, MINIMAL "outputs:\n  compress: zstd\n");
    assert_int_equal(cfg->level, 1);
    aw_config_destroy(cfg);
    cfg = load_ok(f, MINIMAL "outputs:\n  compress: deflate\n");
    assert_string_equal(cfg->compress, "DEFLATE");
    assert_int_equal(cfg->level, 0);
    aw_config_destroy(cfg);
    /* The default (zstd) goes to 22, deflate to 12. */
    cfg = load_ok(f, MINIMAL "outputs:\n  level: 15\n");
    assert_int_equal(cfg->level, 15);
    aw_config_destroy(cfg);
    expect_errors(f, MINIMAL "outputs:\n  compress: deflate\n  level: 15\n",
                  "configs/test.yaml:14: outputs.level: must be between 1 "
                  "and 12, got 15",
                  NULL);
}

static void every_error_is_reported_together_in_line_order(void **state)
{
    fx *f = *state;
    const char *msg = expect_errors(
        f,
        "version: 3\n"
        "region:\n"
        "  name: para\n"
        "  resolution: fine\n"
        "scenes:\n"
        "  - date: 1988-02-30\n"
        "    path: ../sample_rasters/landsat5\n"
        "    bands:\n"
        "      green: LT5_B2.TIF\n"
        "      red: {file: LT5_B3.TIF, scale: abc}\n"
        "      nir: LT5_B4.TIF\n"
        "      swir1: LT5_B5.TIF\n"
        "indices: [ndwi, bogus]\n"
        "outputs:\n"
        "  compres: zstd\n",
        "configs/test.yaml:1: version: unsupported config version 3",
        "configs/test.yaml:4: region.resolution: expected a number, got "
        "'fine'",
        "configs/test.yaml:6: scenes[0].date: '1988-02-30' is not a real "
        "calendar date",
        "configs/test.yaml:10: scenes[0].bands.red.scale: expected a number, "
        "got 'abc'",
        "configs/test.yaml:13: indices[1]: unknown index 'bogus'",
        "configs/test.yaml:15: outputs.compres: unknown key 'compres'; did "
        "you mean 'compress'?",
        NULL);
    assert_int_equal(count_lines(msg), 6);
    /* Sorted by line. */
    assert_true(strstr(msg, ":1: version") < strstr(msg, ":4: region"));
    assert_true(strstr(msg, ":4: region") < strstr(msg, ":6: scenes"));
    assert_true(strstr(msg, ":10: scenes") < strstr(msg, ":13: indices"));
    assert_true(strstr(msg, ":13: indices") < strstr(msg, ":15: outputs"));
}

static void errors_beyond_the_cap_are_counted_not_listed(void **state)
{
    fx *f = *state;
    char *text = aw_strdup(MINIMAL "outputs:\n");
    assert_non_null(text);
    for (int i = 0; i < 60; i++) {
        char *t = aw_asprintf("%s  x%02d: 1\n", text, i);
        assert_non_null(t);
        free(text);
        text = t;
    }
    const char *msg = expect_errors(f, text,
                                    "configs/test.yaml:13: outputs.x00: "
                                    "unknown key 'x00'",
                                    "10 more errors not shown", NULL);
    assert_int_equal(count_lines(msg), 51);
    assert_null(strstr(msg, "'x50'"));
    free(text);
}

/* ---- Fixture files and example configs ---- */

/* Load each YAML file of tests/data/configs, copied into the temporary tree's
 * configs/ folder. A fixture with "# expect: TEXT" lines must fail with
 * each TEXT in the message; one without must load. */
static void the_fixture_files_load_or_fail_as_they_say(void **state)
{
    fx *f = *state;
    const char *src = getenv("AW_SOURCE_DIR");
    if (!src)
        skip();
    char *fixdir = aw_asprintf("%s/tests/data/configs", src);
    assert_non_null(fixdir);
    DIR *d = opendir(fixdir);
    assert_non_null(d);
    int n_fixtures = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        char *path = aw_path_join(fixdir, e->d_name);
        char *text = aw_test_read(path);
        assert_non_null(text);
        aw_config *cfg = NULL;
        aw_status st = load_named(f, e->d_name, text, &cfg);
        const char *msg = aw_ctx_errmsg(f->ctx);
        int expects = 0;
        for (const char *l = strstr(text, "# expect: "); l;
             l = strstr(l + 1, "# expect: ")) {
            const char *b = l + strlen("# expect: ");
            const char *eol = strchr(b, '\n');
            size_t n = eol ? (size_t)(eol - b) : strlen(b);
            char *want = aw_asprintf("%s%.*s", e->d_name, (int)n, b);
            assert_non_null(want);
            if (st == AW_OK || !strstr(msg, want))
                print_error("%s: expected an error containing:\n%s\ngot "
                            "(status %d):\n%s\n",
                            e->d_name, want, (int)st, msg);
            assert_int_equal(st, AW_ERR_CONFIG);
            assert_has(msg, want);
            free(want);
            expects++;
        }
        if (!expects) {
            if (st != AW_OK)
                print_error("%s: %s\n", e->d_name, msg);
            assert_int_equal(st, AW_OK);
            aw_config_destroy(cfg);
        }
        free(text);
        free(path);
        n_fixtures++;
    }
    closedir(d);
    free(fixdir);
    assert_true(n_fixtures >= 4);
}

/* Load configs/<name> of the source tree in place: the examples point at
 * the real sample data in sample_rasters/. */
static aw_config *load_example(fx *f, const char *name)
{
    char *path = aw_asprintf("%s/configs/%s", getenv("AW_SOURCE_DIR"), name);
    assert_non_null(path);
    aw_config *cfg = &untouched;
    aw_status st = aw_config_load(f->ctx, path, &cfg);
    if (st != AW_OK)
        print_error("%s:\n%s\n", name, aw_ctx_errmsg(f->ctx));
    assert_int_equal(st, AW_OK);
    free(path);
    return cfg;
}

static void the_example_and_sample_configs_are_valid(void **state)
{
    fx *f = *state;
    if (!getenv("AW_SOURCE_DIR"))
        skip();
    aw_config *cfg = load_example(f, "example_full.yaml");
    assert_int_equal(cfg->n_scenes, 1);
    assert_string_equal(cfg->scenes[0].id, "LT52240631988227CUB02");
    assert_close(cfg->scenes[0].bands[AW_BAND_GREEN].scale, 0.00310791223, 0.0);
    assert_close(cfg->scenes[0].bands[AW_BAND_GREEN].nodata, 255.0, 0.0);
    assert_int_equal(cfg->scenes[0].qa.present, 0);
    assert_non_null(cfg->aoi_path);
    assert_string_equal(cfg->zones_kind_field, "kind");
    assert_int_equal(cfg->n_rules, 3);
    for (int i = 0; i < AW_IDX_COUNT; i++)
        assert_int_equal(cfg->indices[i], 1);
    assert_int_equal(aw_config_needed_bands(cfg), (1u << AW_BAND_COUNT) - 1);
    aw_config_destroy(cfg);

    cfg = load_example(f, "example_otsu_bbox.yaml");
    assert_int_equal(cfg->has_bbox, 1);
    assert_null(cfg->aoi_path);
    assert_int_equal(cfg->water_method, AW_WATER_OTSU);
    assert_int_equal(cfg->water_index, AW_IDX_NDWI);
    assert_string_equal(cfg->scenes[0].id, "landsat5_para");
    assert_int_equal(aw_config_needed_bands(cfg),
                     (1u << AW_BAND_GREEN) | (1u << AW_BAND_NIR));
    aw_config_destroy(cfg);

    cfg = load_example(f, "sample.yaml");
    assert_string_equal(cfg->region_name, "para_reservoir");
    aw_config_destroy(cfg);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(a_complete_config_is_parsed_with_paths_resolved_against_its_folder),
        T(omitted_keys_take_their_documented_defaults),
        T(a_null_value_counts_as_an_absent_key),
        T(a_bbox_is_read_with_its_crs),
        T(yes_no_and_upper_case_compression_are_accepted),
        T(an_absolute_output_folder_stays_absolute),
        T(gdal_virtual_paths_are_not_checked_for_existence),
        T(needed_bands_are_the_union_of_the_indices_and_the_water_index),
        T(metric_names_round_trip),
        T(an_unknown_key_is_reported_with_a_close_suggestion),
        T(an_unknown_key_without_a_close_match_lists_the_known_keys),
        T(a_duplicate_key_is_reported_with_the_first_line),
        T(a_wrong_type_is_reported_with_the_value_and_key_path),
        T(a_date_in_another_format_is_rejected),
        T(an_impossible_calendar_date_is_rejected),
        T(a_missing_required_key_is_reported_at_its_mapping),
        T(a_missing_file_is_reported_with_its_resolved_path),
        T(a_scene_path_that_is_a_file_is_rejected),
        T(an_unknown_index_name_lists_the_valid_names),
        T(aoi_and_bbox_together_are_rejected),
        T(a_bad_bbox_and_options_without_their_partner_are_rejected),
        T(thresholds_out_of_order_for_the_comparison_are_rejected),
        T(bad_rule_fields_are_rejected),
        T(a_rule_metric_needs_its_index_in_indices),
        T(a_scene_without_a_band_needed_by_an_index_is_rejected),
        T(two_scenes_on_the_same_date_are_kept_for_one_mosaic),
        T(two_scenes_with_the_same_id_are_rejected),
        T(a_crs_proj_does_not_know_is_a_config_error),
        T(a_network_path_needs_allow_network),
        T(a_zone_field_not_in_the_layer_is_a_config_error),
        T(a_rule_naming_an_unknown_zone_is_a_config_error),
        T(an_unreadable_zone_file_is_a_config_error),
        T(a_yaml_syntax_error_names_the_file_and_line),
        T(a_nonexistent_config_file_is_a_config_error_naming_it),
        T(an_empty_config_or_a_top_level_list_is_rejected),
        T(a_version_other_than_1_is_rejected),
        T(out_of_range_values_are_rejected),
        T(compression_levels_are_checked_against_the_codec),
        T(every_error_is_reported_together_in_line_order),
        T(errors_beyond_the_cap_are_counted_not_listed),
        T(the_fixture_files_load_or_fail_as_they_say),
        T(the_example_and_sample_configs_are_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

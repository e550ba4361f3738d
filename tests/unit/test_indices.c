/* Unit tests for kernels/indices.c: the index table, hand-computed rows for
 * every index, the DOMAIN.md §3.1 AWEI test vectors (and the two published
 * wrong forms), a gie-style edge-case table per index, and serial equals
 * parallel for aw_index_image.
 *
 * Band order in every pixel literal: {blue, green, red, nir, swir1, swir2}.
 * Expected values are computed by hand in double; the kernels compute in
 * float32, hence tolerances of about 1e-6 relative. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/kernels.h"

#define TOL 1e-6
#define NB  AW_BAND_COUNT

/* Landsat C2 L2 saturated reflectance: DN 65535 * 2.75e-5 - 0.2. */
#define SAT 1.6022125f

/* One pixel through aw_index_row; valid is the mask byte. */
static float one_pixel(aw_index idx, const float px[NB], uint8_t valid)
{
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = &px[b];
    float out = 0.0f;
    aw_index_row(idx, bands, &valid, &out, 1, NULL);
    return out;
}

/* Checks out[i] against want[i] (NaN in want means nodata). */
static void check_row(const float *out, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]))
            assert_nan(out[i]);
        else
            assert_close(out[i], want[i], TOL * (1.0 + fabs(want[i])));
    }
}

/* Runs a row with a NULL mask and with an all-valid mask; both must give
 * want. Unused bands are passed as NULL. */
static void run_row(aw_index idx, const float *const bands[NB],
                    const double *want, size_t n)
{
    float out[8];
    uint8_t valid[8];
    memset(valid, 255, sizeof valid);
    assert_true(n <= 8);
    aw_index_params p;
    aw_index_params_default(&p);
    aw_index_row(idx, bands, NULL, out, n, &p);
    check_row(out, want, n);
    aw_index_row(idx, bands, valid, out, n, &p);
    check_row(out, want, n);
}

/* ---- Table ---- */

static void index_table_should_list_every_index_in_enum_order(void **state)
{
    (void)state;
    static const char *const names[AW_IDX_COUNT] = {
        "ndwi", "mndwi", "ndvi", "ndmi", "evi", "savi", "awei_nsh", "awei_sh"};
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        const aw_index_info *info = aw_index_get((aw_index)i);
        assert_non_null(info);
        assert_string_equal(info->name, names[i]);
        assert_non_null(info->long_name);
        assert_non_null(info->formula);
        /* Every long name cites an author and a year (19xx or 20xx). */
        assert_true(strstr(info->long_name, "(") != NULL);
        assert_true(strstr(info->long_name, " 19") != NULL ||
                    strstr(info->long_name, " 20") != NULL);
    }
}

static void index_from_name_should_find_every_index_by_name(void **state)
{
    (void)state;
    assert_int_equal(aw_index_from_name("ndwi"), AW_IDX_NDWI);
    assert_int_equal(aw_index_from_name("mndwi"), AW_IDX_MNDWI);
    assert_int_equal(aw_index_from_name("ndvi"), AW_IDX_NDVI);
    assert_int_equal(aw_index_from_name("ndmi"), AW_IDX_NDMI);
    assert_int_equal(aw_index_from_name("evi"), AW_IDX_EVI);
    assert_int_equal(aw_index_from_name("savi"), AW_IDX_SAVI);
    assert_int_equal(aw_index_from_name("awei_nsh"), AW_IDX_AWEI_NSH);
    assert_int_equal(aw_index_from_name("awei_sh"), AW_IDX_AWEI_SH);
    for (int i = 0; i < AW_IDX_COUNT; i++)
        assert_int_equal(aw_index_from_name(aw_index_get((aw_index)i)->name),
                         i);
}

static void
index_from_name_should_return_minus_one_for_unknown_names(void **state)
{
    (void)state;
    assert_int_equal(aw_index_from_name("ndsi"), -1);
    assert_int_equal(aw_index_from_name(""), -1);
    assert_int_equal(aw_index_from_name("NDWI"), -1); /* case-sensitive */
    assert_int_equal(aw_index_from_name("ndwi "), -1);
    assert_int_equal(aw_index_from_name("awei"), -1);
}

static void index_table_should_give_the_bands_each_formula_uses(void **state)
{
    (void)state;
    const unsigned B = 1u << AW_BAND_BLUE, G = 1u << AW_BAND_GREEN,
                   R = 1u << AW_BAND_RED, N = 1u << AW_BAND_NIR,
                   S1 = 1u << AW_BAND_SWIR1, S2 = 1u << AW_BAND_SWIR2;
    assert_int_equal(aw_index_get(AW_IDX_NDWI)->bands, G | N);
    assert_int_equal(aw_index_get(AW_IDX_MNDWI)->bands, G | S1);
    assert_int_equal(aw_index_get(AW_IDX_NDVI)->bands, N | R);
    assert_int_equal(aw_index_get(AW_IDX_NDMI)->bands, N | S1);
    assert_int_equal(aw_index_get(AW_IDX_EVI)->bands, N | R | B);
    assert_int_equal(aw_index_get(AW_IDX_SAVI)->bands, N | R);
    assert_int_equal(aw_index_get(AW_IDX_AWEI_NSH)->bands, G | N | S1 | S2);
    assert_int_equal(aw_index_get(AW_IDX_AWEI_SH)->bands, B | G | N | S1 | S2);
}

static void index_table_should_give_the_histogram_ranges(void **state)
{
    (void)state;
    static const float lo[AW_IDX_COUNT] = {-1, -1, -1, -1, -2, -1.5f, -4, -4};
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        const aw_index_info *info = aw_index_get((aw_index)i);
        assert_close(info->hist_lo, lo[i], 0.0);
        assert_close(info->hist_hi, -lo[i], 0.0);
    }
}

static void index_table_should_write_formulas_with_band_role_names(void **state)
{
    (void)state;
    assert_string_equal(aw_index_get(AW_IDX_NDWI)->formula,
                        "(green - nir) / (green + nir)");
    assert_string_equal(aw_index_get(AW_IDX_MNDWI)->formula,
                        "(green - swir1) / (green + swir1)");
    assert_string_equal(aw_index_get(AW_IDX_NDVI)->formula,
                        "(nir - red) / (nir + red)");
    assert_string_equal(aw_index_get(AW_IDX_NDMI)->formula,
                        "(nir - swir1) / (nir + swir1)");
    assert_string_equal(aw_index_get(AW_IDX_AWEI_NSH)->formula,
                        "4 * (green - swir1) - (0.25 * nir + 2.75 * swir2)");
    assert_string_equal(
        aw_index_get(AW_IDX_AWEI_SH)->formula,
        "blue + 2.5 * green - 1.5 * (nir + swir1) - 0.25 * swir2");
    /* Each band in the mask is named in the formula. */
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        const aw_index_info *info = aw_index_get((aw_index)i);
        for (int b = 0; b < NB; b++)
            if (info->bands & (1u << b))
                assert_non_null(
                    strstr(info->formula, aw_band_name((aw_band)b)));
    }
}

static void
index_params_default_should_give_the_published_constants(void **state)
{
    (void)state;
    aw_index_params p;
    aw_index_params_default(&p);
    assert_close(p.evi_g, 2.5, 0.0);
    assert_close(p.evi_c1, 6.0, 0.0);
    assert_close(p.evi_c2, 7.5, 0.0);
    assert_close(p.evi_l, 1.0, 0.0);
    assert_close(p.savi_l, 0.5, 0.0);
}

/* ---- Hand-computed rows ---- */

static void ndwi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float g[] = {0.08f, 0.3f, 0.1f, 0.2f, 0.05f};
    const float n[] = {0.05f, 0.1f, 0.3f, 0.2f, 0.45f};
    const float *bands[NB] = {NULL, g, NULL, n, NULL, NULL};
    const double want[] = {
        0.03 / 0.13, /* (0.08 - 0.05) / 0.13 = 0.230769 */
        0.5,         /* 0.2 / 0.4 */
        -0.5,        /* -0.2 / 0.4 */
        0.0,         /* 0 / 0.4 */
        -0.8,        /* -0.4 / 0.5 */
    };
    run_row(AW_IDX_NDWI, bands, want, 5);
}

static void mndwi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float g[] = {0.08f, 0.25f, 0.1f, 0.12f};
    const float s1[] = {0.03f, 0.05f, 0.3f, 0.04f};
    const float *bands[NB] = {NULL, g, NULL, NULL, s1, NULL};
    const double want[] = {
        0.05 / 0.11, /* (0.08 - 0.03) / 0.11 = 0.454545 */
        0.2 / 0.3,   /* 0.666667 */
        -0.5,        /* -0.2 / 0.4 */
        0.5,         /* 0.08 / 0.16 */
    };
    run_row(AW_IDX_MNDWI, bands, want, 4);
}

static void ndvi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float r[] = {0.1f, 0.06f, 0.3f, 0.02f};
    const float n[] = {0.4f, 0.05f, 0.3f, 0.5f};
    const float *bands[NB] = {NULL, NULL, r, n, NULL, NULL};
    const double want[] = {
        0.6,          /* 0.3 / 0.5 */
        -0.01 / 0.11, /* -0.090909 */
        0.0,          /* 0 / 0.6 */
        0.48 / 0.52,  /* 0.923077 */
    };
    run_row(AW_IDX_NDVI, bands, want, 4);
}

static void ndmi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float n[] = {0.3f, 0.05f, 0.2f};
    const float s1[] = {0.1f, 0.03f, 0.3f};
    const float *bands[NB] = {NULL, NULL, NULL, n, s1, NULL};
    const double want[] = {
        0.5,  /* 0.2 / 0.4 */
        0.25, /* 0.02 / 0.08 */
        -0.2, /* -0.1 / 0.5 */
    };
    run_row(AW_IDX_NDMI, bands, want, 3);
}

static void evi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float b[] = {0.05f, 0.02f, 0.09f};
    const float r[] = {0.1f, 0.05f, 0.06f};
    const float n[] = {0.4f, 0.3f, 0.05f};
    const float *bands[NB] = {b, NULL, r, n, NULL, NULL};
    const double want[] = {
        /* 2.5 * 0.3 / (0.4 + 0.6 - 0.375 + 1) = 0.75 / 1.625 = 0.461538 */
        0.75 / 1.625,
        /* 2.5 * 0.25 / (0.3 + 0.3 - 0.15 + 1) = 0.625 / 1.45 = 0.431034 */
        0.625 / 1.45,
        /* 2.5 * -0.01 / (0.05 + 0.36 - 0.675 + 1) = -0.025 / 0.735 */
        -0.025 / 0.735,
    };
    run_row(AW_IDX_EVI, bands, want, 3);
}

static void savi_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float r[] = {0.1f, 0.06f, 0.2f, 0.1f};
    const float n[] = {0.4f, 0.05f, 0.3f, 0.6f};
    const float *bands[NB] = {NULL, NULL, r, n, NULL, NULL};
    const double want[] = {
        0.45,          /* 1.5 * 0.3 / (0.4 + 0.1 + 0.5) */
        -0.015 / 0.61, /* 1.5 * -0.01 / 0.61 = -0.024590 */
        0.15,          /* 1.5 * 0.1 / 1.0 */
        0.625,         /* 1.5 * 0.5 / 1.2 */
    };
    run_row(AW_IDX_SAVI, bands, want, 4);
}

static void awei_nsh_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float g[] = {0.08f, 0.1f, 0.2f};
    const float n[] = {0.05f, 0.3f, 0.1f};
    const float s1[] = {0.03f, 0.2f, 0.05f};
    const float s2[] = {0.02f, 0.1f, 0.02f};
    const float *bands[NB] = {NULL, g, NULL, n, s1, s2};
    const double want[] = {
        0.1325, /* 4 * 0.05 - (0.0125 + 0.055) */
        -0.75,  /* 4 * -0.1 - (0.075 + 0.275) */
        0.52,   /* 4 * 0.15 - (0.025 + 0.055) */
    };
    run_row(AW_IDX_AWEI_NSH, bands, want, 3);
}

static void awei_sh_should_match_a_hand_computed_row(void **state)
{
    (void)state;
    const float b[] = {0.09f, 0.1f, 0.06f};
    const float g[] = {0.08f, 0.1f, 0.2f};
    const float n[] = {0.05f, 0.3f, 0.1f};
    const float s1[] = {0.03f, 0.2f, 0.05f};
    const float s2[] = {0.02f, 0.1f, 0.02f};
    const float *bands[NB] = {b, g, NULL, n, s1, s2};
    const double want[] = {
        0.165,  /* 0.09 + 0.2 - 1.5 * 0.08 - 0.005 */
        -0.425, /* 0.1 + 0.25 - 1.5 * 0.5 - 0.025 */
        0.33,   /* 0.06 + 0.5 - 1.5 * 0.15 - 0.005 */
    };
    run_row(AW_IDX_AWEI_SH, bands, want, 3);
}

/* ---- DOMAIN.md §3.1 test vectors ---- */

static void
awei_nsh_should_match_the_domain_vector_and_not_the_wrong_forms(void **state)
{
    (void)state;
    /* G 0.08, NIR 0.05, SWIR1 0.03, SWIR2 0.02:
     * Feyisa eq. 2: 4 * 0.05 - (0.25 * 0.05 + 2.75 * 0.02)
     *             = 0.2 - (0.0125 + 0.055) = 0.1325
     * ASI form 4 (G - S1) - 0.25 N + 2.75 S2 = 0.2 - 0.0125 + 0.055 = 0.2425
     * DEA form 4 (G - S1) - (0.25 N * 2.75 S2) = 0.2 - 0.6875 * 0.001
     *                                          = 0.2 - 0.0006875 = 0.1993125
     * (DOMAIN.md quotes 0.19725 for the DEA form; both are far from 0.1325) */
    const float px[NB] = {0.09f, 0.08f, 0.06f, 0.05f, 0.03f, 0.02f};
    float v = one_pixel(AW_IDX_AWEI_NSH, px, 255);
    assert_close(v, 0.1325, TOL);
    assert_not_close(v, 0.2425, 0.01);
    assert_not_close(v, 0.19725, 0.01);
    assert_not_close(v, 0.1993125, 0.01);
}

static void awei_sh_should_match_the_domain_vector(void **state)
{
    (void)state;
    /* B 0.09: 0.09 + 2.5 * 0.08 - 1.5 * (0.05 + 0.03) - 0.25 * 0.02
     *       = 0.09 + 0.2 - 0.12 - 0.005 = 0.165 */
    const float px[NB] = {0.09f, 0.08f, 0.06f, 0.05f, 0.03f, 0.02f};
    assert_close(one_pixel(AW_IDX_AWEI_SH, px, 255), 0.165, TOL);
}

/* ---- Edge-case table (gie style) ----
 * base = {0.09, 0.08, 0.06, 0.05, 0.03, 0.02}; NaN in `want` = nodata. */

#define BASE 0.09f, 0.08f, 0.06f, 0.05f, 0.03f, 0.02f

struct edge_case {
    aw_index idx;
    const char *what;
    float px[NB];
    uint8_t valid;
    double want;
};

static const struct edge_case edge_cases[] = {
    /* NDWI = (G - N) / (G + N); base 0.03 / 0.13 */
    {AW_IDX_NDWI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_NDWI, "green NaN", {0.09f, NAN, 0.06f, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_NDWI, "nir +Inf", {0.09f, 0.08f, 0, INFINITY, 0, 0}, 255, NAN},
    {AW_IDX_NDWI, "green -Inf", {0, -INFINITY, 0, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_NDWI,
     "NaN in unused red",
     {0, 0.08f, NAN, 0.05f, 0, 0},
     255,
     0.03 / 0.13},
    {AW_IDX_NDWI, "G + N == 0", {0, 0.1f, 0, -0.1f, 0, 0}, 255, NAN},
    {AW_IDX_NDWI, "G = N = 0", {0, 0, 0, 0, 0, 0}, 255, NAN},
    {AW_IDX_NDWI, "G + N < 0", {0, -0.1f, 0, 0.05f, 0, 0}, 255, NAN},
    /* -0.12 / 0.08 = -1.5: negative green computed as is */
    {AW_IDX_NDWI, "negative green", {0, -0.02f, 0, 0.1f, 0, 0}, 255, -1.5},
    /* SAT / SAT = 1 */
    {AW_IDX_NDWI, "saturated green", {0, SAT, 0, 0, 0, 0}, 255, 1.0},
    {AW_IDX_NDWI, "saturated both", {0, SAT, 0, SAT, 0, 0}, 255, 0.0},
    /* (3e38 + 2.9e38) / 1e37 overflows to +Inf */
    {AW_IDX_NDWI, "result overflow", {0, 3e38f, 0, -2.9e38f, 0, 0}, 255, NAN},

    /* MNDWI = (G - S1) / (G + S1); base 0.05 / 0.11 */
    {AW_IDX_MNDWI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_MNDWI, "swir1 NaN", {0, 0.08f, 0, 0, NAN, 0}, 255, NAN},
    {AW_IDX_MNDWI, "swir1 +Inf", {0, 0.08f, 0, 0, INFINITY, 0}, 255, NAN},
    {AW_IDX_MNDWI, "green -Inf", {0, -INFINITY, 0, 0, 0.03f, 0}, 255, NAN},
    {AW_IDX_MNDWI,
     "NaN in unused nir",
     {0, 0.08f, 0, NAN, 0.03f, 0},
     255,
     0.05 / 0.11},
    {AW_IDX_MNDWI, "G + S1 == 0", {0, 0.25f, 0, 0, -0.25f, 0}, 255, NAN},
    /* 0.06 / 0.04 = 1.5 */
    {AW_IDX_MNDWI, "negative swir1", {0, 0.05f, 0, 0, -0.01f, 0}, 255, 1.5},
    {AW_IDX_MNDWI, "saturated swir1", {0, 0, 0, 0, SAT, 0}, 255, -1.0},

    /* NDVI = (N - R) / (N + R); base -0.01 / 0.11 */
    {AW_IDX_NDVI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_NDVI, "red NaN", {0, 0, NAN, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_NDVI, "nir +Inf", {0, 0, 0.06f, INFINITY, 0, 0}, 255, NAN},
    {AW_IDX_NDVI, "red -Inf", {0, 0, -INFINITY, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_NDVI,
     "NaN in unused blue",
     {NAN, 0, 0.06f, 0.05f, 0, 0},
     255,
     -0.01 / 0.11},
    {AW_IDX_NDVI, "N + R == 0", {0, 0, -0.3f, 0.3f, 0, 0}, 255, NAN},
    /* 0.12 / 0.08 = 1.5 */
    {AW_IDX_NDVI, "negative red", {0, 0, -0.02f, 0.1f, 0, 0}, 255, 1.5},
    {AW_IDX_NDVI, "saturated nir", {0, 0, 0, SAT, 0, 0}, 255, 1.0},

    /* NDMI = (N - S1) / (N + S1); base 0.02 / 0.08 */
    {AW_IDX_NDMI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_NDMI, "nir NaN", {0, 0, 0, NAN, 0.03f, 0}, 255, NAN},
    {AW_IDX_NDMI, "swir1 +Inf", {0, 0, 0, 0.05f, INFINITY, 0}, 255, NAN},
    {AW_IDX_NDMI, "swir1 -Inf", {0, 0, 0, 0.05f, -INFINITY, 0}, 255, NAN},
    {AW_IDX_NDMI,
     "NaN in unused swir2",
     {0, 0, 0, 0.05f, 0.03f, NAN},
     255,
     0.25},
    {AW_IDX_NDMI, "N + S1 == 0", {0, 0, 0, -0.5f, 0.5f, 0}, 255, NAN},
    /* -0.06 / 0.04 = -1.5 */
    {AW_IDX_NDMI, "negative nir", {0, 0, 0, -0.01f, 0.05f, 0}, 255, -1.5},
    {AW_IDX_NDMI, "saturated swir1", {0, 0, 0, 0, SAT, 0}, 255, -1.0},

    /* EVI = 2.5 (N - R) / (N + 6 R - 7.5 B + 1); base -0.025 / 0.735 */
    {AW_IDX_EVI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_EVI, "red NaN", {0.09f, 0, NAN, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_EVI, "nir +Inf", {0.09f, 0, 0.06f, INFINITY, 0, 0}, 255, NAN},
    /* 2.5 * (N - R) / -Inf = -0 is finite: the input check must catch it */
    {AW_IDX_EVI, "blue +Inf", {INFINITY, 0, 0.06f, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_EVI, "blue -Inf", {-INFINITY, 0, 0.06f, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_EVI,
     "NaN in unused green",
     {0.09f, NAN, 0.06f, 0.05f, 0, 0},
     255,
     -0.025 / 0.735},
    /* 0.5 + 6 * 0.375 - 7.5 * 0.5 + 1 = 0.5 + 2.25 - 3.75 + 1 = 0 (exact) */
    {AW_IDX_EVI, "denominator == 0", {0.5f, 0, 0.375f, 0.5f, 0, 0}, 255, NAN},
    /* 2.5 * 0.21 / (0.2 - 0.06 - 0.15 + 1) = 0.525 / 0.99 = 0.530303 */
    {AW_IDX_EVI,
     "negative red",
     {0.02f, 0, -0.01f, 0.2f, 0, 0},
     255,
     0.525 / 0.99},
    /* 2.5 * SAT / (SAT + 1) = 4.00553125 / 2.6022125 = 1.539279 */
    {AW_IDX_EVI,
     "saturated nir",
     {0, 0, 0, SAT, 0, 0},
     255,
     2.5 * 1.6022125 / 2.6022125},
    /* all SAT: 0 / (SAT * (1 + 6 - 7.5) + 1) = 0 / 0.19889375 = 0 */
    {AW_IDX_EVI,
     "all bands saturated",
     {SAT, SAT, SAT, SAT, SAT, SAT},
     255,
     0.0},

    /* SAVI = 1.5 (N - R) / (N + R + 0.5); base -0.015 / 0.61 */
    {AW_IDX_SAVI, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_SAVI, "nir NaN", {0, 0, 0.06f, NAN, 0, 0}, 255, NAN},
    {AW_IDX_SAVI, "red +Inf", {0, 0, INFINITY, 0.05f, 0, 0}, 255, NAN},
    {AW_IDX_SAVI, "nir -Inf", {0, 0, 0.06f, -INFINITY, 0, 0}, 255, NAN},
    {AW_IDX_SAVI,
     "NaN in unused blue",
     {NAN, 0, 0.06f, 0.05f, 0, 0},
     255,
     -0.015 / 0.61},
    /* -0.125 + -0.375 + 0.5 = 0 (exact) */
    {AW_IDX_SAVI, "denominator == 0", {0, 0, -0.375f, -0.125f, 0, 0}, 255, NAN},
    /* 1.5 * 0.15 / (0.1 - 0.05 + 0.5) = 0.225 / 0.55 = 0.409091 */
    {AW_IDX_SAVI,
     "negative red",
     {0, 0, -0.05f, 0.1f, 0, 0},
     255,
     0.225 / 0.55},
    /* 1.5 * SAT / (SAT + 0.5) = 2.40331875 / 2.1022125 = 1.143233 */
    {AW_IDX_SAVI,
     "saturated nir",
     {0, 0, 0, SAT, 0, 0},
     255,
     1.5 * 1.6022125 / 2.1022125},

    /* AWEI_nsh = 4 (G - S1) - (0.25 N + 2.75 S2); base 0.1325 */
    {AW_IDX_AWEI_NSH, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_AWEI_NSH, "green NaN", {0, NAN, 0, 0.05f, 0.03f, 0.02f}, 255, NAN},
    {AW_IDX_AWEI_NSH,
     "green +Inf",
     {0, INFINITY, 0, 0.05f, 0.03f, 0.02f},
     255,
     NAN},
    {AW_IDX_AWEI_NSH,
     "swir2 -Inf",
     {0, 0.08f, 0, 0.05f, 0.03f, -INFINITY},
     255,
     NAN},
    {AW_IDX_AWEI_NSH,
     "NaN in unused blue and red",
     {NAN, 0.08f, NAN, 0.05f, 0.03f, 0.02f},
     255,
     0.1325},
    /* 4 * 6e38 overflows float */
    {AW_IDX_AWEI_NSH, "result overflow", {0, 3e38f, 0, 0, -3e38f, 0}, 255, NAN},
    /* 4 * (-0.01 - 0.03) - (0.0125 + 0.055) = -0.16 - 0.0675 = -0.2275 */
    {AW_IDX_AWEI_NSH,
     "negative green",
     {0, -0.01f, 0, 0.05f, 0.03f, 0.02f},
     255,
     -0.2275},
    /* all SAT: 0 - (0.25 + 2.75) SAT = -3 * 1.6022125 = -4.8066375 */
    {AW_IDX_AWEI_NSH,
     "all bands saturated",
     {SAT, SAT, SAT, SAT, SAT, SAT},
     255,
     -4.8066375},

    /* AWEI_sh = B + 2.5 G - 1.5 (N + S1) - 0.25 S2; base 0.165 */
    {AW_IDX_AWEI_SH, "valid == 0", {BASE}, 0, NAN},
    {AW_IDX_AWEI_SH,
     "blue NaN",
     {NAN, 0.08f, 0, 0.05f, 0.03f, 0.02f},
     255,
     NAN},
    {AW_IDX_AWEI_SH,
     "nir +Inf",
     {0.09f, 0.08f, 0, INFINITY, 0.03f, 0.02f},
     255,
     NAN},
    {AW_IDX_AWEI_SH,
     "swir1 -Inf",
     {0.09f, 0.08f, 0, 0.05f, -INFINITY, 0.02f},
     255,
     NAN},
    {AW_IDX_AWEI_SH,
     "NaN in unused red",
     {0.09f, 0.08f, NAN, 0.05f, 0.03f, 0.02f},
     255,
     0.165},
    {AW_IDX_AWEI_SH, "result overflow", {3e38f, 3e38f, 0, 0, 0, 0}, 255, NAN},
    /* -0.02 + 0.2 - 0.12 - 0.005 = 0.055 */
    {AW_IDX_AWEI_SH,
     "negative blue",
     {-0.02f, 0.08f, 0, 0.05f, 0.03f, 0.02f},
     255,
     0.055},
    /* all SAT: (1 + 2.5 - 3 - 0.25) SAT = 0.25 * 1.6022125 = 0.400553125 */
    {AW_IDX_AWEI_SH,
     "all bands saturated",
     {SAT, SAT, SAT, SAT, SAT, SAT},
     255,
     0.400553125},
};

static void run_edge_cases(aw_index idx)
{
    int seen = 0;
    for (size_t c = 0; c < sizeof edge_cases / sizeof edge_cases[0]; c++) {
        const struct edge_case *e = &edge_cases[c];
        if (e->idx != idx)
            continue;
        seen++;
        float v = one_pixel(idx, e->px, e->valid);
        int ok = isnan(e->want)
                     ? isnan(v)
                     : fabs((double)v - e->want) <= TOL * (1 + fabs(e->want));
        if (!ok)
            fail_msg("%s, case \"%s\": got %.9g, want %.9g",
                     aw_index_get(idx)->name, e->what, (double)v, e->want);
    }
    assert_true(seen >= 8);
}

static void ndwi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_NDWI);
}

static void mndwi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_MNDWI);
}

static void ndvi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_NDVI);
}

static void ndmi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_NDMI);
}

static void evi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_EVI);
}

static void savi_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_SAVI);
}

static void awei_nsh_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_AWEI_NSH);
}

static void awei_sh_should_follow_the_edge_case_table(void **state)
{
    (void)state;
    run_edge_cases(AW_IDX_AWEI_SH);
}

/* ---- Row-level behaviour ---- */

static void ndwi_should_write_nodata_when_denominator_is_zero(void **state)
{
    (void)state;
    /* G + N: 0 + 0 = 0, 0.1 - 0.1 = 0, -0.2 + 0.1 < 0, then a valid pixel
     * (0.3 - 0.1) / 0.4 = 0.5 to show the row goes on. */
    const float g[] = {0.0f, 0.1f, -0.2f, 0.3f};
    const float n[] = {0.0f, -0.1f, 0.1f, 0.1f};
    const float *bands[NB] = {NULL, g, NULL, n, NULL, NULL};
    const double want[] = {NAN, NAN, NAN, 0.5};
    run_row(AW_IDX_NDWI, bands, want, 4);
}

static void index_row_should_mask_only_the_invalid_pixels(void **state)
{
    (void)state;
    const float g[] = {0.3f, 0.3f, 0.3f, 0.3f};
    const float n[] = {0.1f, 0.1f, 0.1f, 0.1f};
    const uint8_t valid[] = {255, 0, 1, 0}; /* any non-zero is valid */
    const float *bands[NB] = {NULL, g, NULL, n, NULL, NULL};
    float out[4];
    aw_index_row(AW_IDX_NDWI, bands, valid, out, 4, NULL);
    const double want[] = {0.5, NAN, 0.5, NAN};
    check_row(out, want, 4);
}

static void
index_row_should_write_nodata_when_a_needed_band_is_missing(void **state)
{
    (void)state;
    const float g[] = {0.3f, 0.2f};
    const float *bands[NB] = {NULL, g, NULL, NULL, NULL, NULL}; /* no nir */
    float out[2] = {0.0f, 0.0f};
    aw_index_row(AW_IDX_NDWI, bands, NULL, out, 2, NULL);
    assert_nan(out[0]);
    assert_nan(out[1]);
}

static void index_row_should_use_the_given_evi_and_savi_constants(void **state)
{
    (void)state;
    const float b[] = {0.05f};
    const float r[] = {0.1f};
    const float n[] = {0.4f};
    const float *bands[NB] = {b, NULL, r, n, NULL, NULL};
    aw_index_params p;
    aw_index_params_default(&p);
    p.savi_l = 1.0f;
    p.evi_g = 1.0f;
    p.evi_c1 = 0.0f;
    p.evi_c2 = 0.0f;
    p.evi_l = 0.0f;
    float out;
    /* SAVI with L = 1: 2 * 0.3 / (0.4 + 0.1 + 1) = 0.6 / 1.5 = 0.4 */
    aw_index_row(AW_IDX_SAVI, bands, NULL, &out, 1, &p);
    assert_close(out, 0.4, TOL);
    /* EVI with g 1, C1 0, C2 0, L 0: (0.4 - 0.1) / 0.4 = 0.75 */
    aw_index_row(AW_IDX_EVI, bands, NULL, &out, 1, &p);
    assert_close(out, 0.75, TOL);
    /* NULL params mean the defaults: SAVI 1.5 * 0.3 / 1.0 = 0.45 */
    aw_index_row(AW_IDX_SAVI, bands, NULL, &out, 1, NULL);
    assert_close(out, 0.45, TOL);
}

/* ---- Serial equals parallel ---- */

#define IMG_ROWS 131
#define IMG_COLS 257

struct image {
    float *band[NB];
    uint8_t *valid;
};

static void make_image(struct image *im)
{
    const size_t n = (size_t)IMG_ROWS * IMG_COLS;
    uint32_t s = 12345u;
    for (int b = 0; b < NB; b++) {
        im->band[b] = malloc(n * sizeof(float));
        assert_non_null(im->band[b]);
        for (size_t i = 0; i < n; i++) {
            uint32_t k = aw_lcg_next(&s) >> 24;
            /* ~1/64 NaN, ~1/128 +Inf, else reflectance in [-0.05, 0.7) */
            im->band[b][i] = k < 4    ? NAN
                             : k == 4 ? INFINITY
                                      : aw_lcg_uniform(&s, -0.05f, 0.7f);
        }
    }
    im->valid = malloc(n);
    assert_non_null(im->valid);
    for (size_t i = 0; i < n; i++)
        im->valid[i] = (aw_lcg_next(&s) >> 28) == 0 ? 0 : 255; /* 1/16 off */
}

static void free_image(struct image *im)
{
    for (int b = 0; b < NB; b++)
        free(im->band[b]);
    free(im->valid);
}

static void
index_image_should_give_the_same_bits_with_one_and_four_threads(void **state)
{
    (void)state;
    const size_t n = (size_t)IMG_ROWS * IMG_COLS;
    struct image im;
    make_image(&im);
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = im.band[b];
    float *one = malloc(n * sizeof(float));
    float *four = malloc(n * sizeof(float));
    assert_non_null(one);
    assert_non_null(four);
    const int saved = omp_get_max_threads();
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        for (int masked = 0; masked < 2; masked++) {
            const uint8_t *valid = masked ? im.valid : NULL;
            omp_set_num_threads(1);
            aw_index_image((aw_index)i, bands, valid, one, IMG_ROWS, IMG_COLS,
                           NULL);
            omp_set_num_threads(4);
            aw_index_image((aw_index)i, bands, valid, four, IMG_ROWS, IMG_COLS,
                           NULL);
            assert_memory_equal(one, four, n * sizeof(float));
        }
    }
    omp_set_num_threads(saved);
    free(one);
    free(four);
    free_image(&im);
}

static void index_image_should_equal_index_row_for_every_row(void **state)
{
    (void)state;
    const size_t n = (size_t)IMG_ROWS * IMG_COLS;
    struct image im;
    make_image(&im);
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = im.band[b];
    float *img = malloc(n * sizeof(float));
    float row[IMG_COLS];
    assert_non_null(img);
    size_t finite = 0;
    for (int i = 0; i < AW_IDX_COUNT; i++) {
        aw_index_image((aw_index)i, bands, im.valid, img, IMG_ROWS, IMG_COLS,
                       NULL);
        for (size_t r = 0; r < IMG_ROWS; r++) {
            const float *rb[NB];
            for (int b = 0; b < NB; b++)
                rb[b] = bands[b] + r * IMG_COLS;
            aw_index_row((aw_index)i, rb, im.valid + r * IMG_COLS, row,
                         IMG_COLS, NULL);
            assert_memory_equal(row, img + r * IMG_COLS, sizeof row);
        }
        for (size_t k = 0; k < n; k++)
            finite += isfinite(img[k]) != 0;
    }
    /* The data really exercises both values and nodata. */
    assert_true(finite > n * AW_IDX_COUNT / 2);
    assert_true(finite < n * AW_IDX_COUNT);
    free(img);
    free_image(&im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(index_table_should_list_every_index_in_enum_order),
        cmocka_unit_test(index_from_name_should_find_every_index_by_name),
        cmocka_unit_test(
            index_from_name_should_return_minus_one_for_unknown_names),
        cmocka_unit_test(index_table_should_give_the_bands_each_formula_uses),
        cmocka_unit_test(index_table_should_give_the_histogram_ranges),
        cmocka_unit_test(
            index_table_should_write_formulas_with_band_role_names),
        cmocka_unit_test(
            index_params_default_should_give_the_published_constants),
        cmocka_unit_test(ndwi_should_match_a_hand_computed_row),
        cmocka_unit_test(mndwi_should_match_a_hand_computed_row),
        cmocka_unit_test(ndvi_should_match_a_hand_computed_row),
        cmocka_unit_test(ndmi_should_match_a_hand_computed_row),
        cmocka_unit_test(evi_should_match_a_hand_computed_row),
        cmocka_unit_test(savi_should_match_a_hand_computed_row),
        cmocka_unit_test(awei_nsh_should_match_a_hand_computed_row),
        cmocka_unit_test(awei_sh_should_match_a_hand_computed_row),
        cmocka_unit_test(
            awei_nsh_should_match_the_domain_vector_and_not_the_wrong_forms),
        cmocka_unit_test(awei_sh_should_match_the_domain_vector),
        cmocka_unit_test(ndwi_should_follow_the_edge_case_table),
        cmocka_unit_test(mndwi_should_follow_the_edge_case_table),
        cmocka_unit_test(ndvi_should_follow_the_edge_case_table),
        cmocka_unit_test(ndmi_should_follow_the_edge_case_table),
        cmocka_unit_test(evi_should_follow_the_edge_case_table),
        cmocka_unit_test(savi_should_follow_the_edge_case_table),
        cmocka_unit_test(awei_nsh_should_follow_the_edge_case_table),
        cmocka_unit_test(awei_sh_should_follow_the_edge_case_table),
        cmocka_unit_test(ndwi_should_write_nodata_when_denominator_is_zero),
        cmocka_unit_test(index_row_should_mask_only_the_invalid_pixels),
        cmocka_unit_test(
            index_row_should_write_nodata_when_a_needed_band_is_missing),
        cmocka_unit_test(index_row_should_use_the_given_evi_and_savi_constants),
        cmocka_unit_test(
            index_image_should_give_the_same_bits_with_one_and_four_threads),
        cmocka_unit_test(index_image_should_equal_index_row_for_every_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for kernels/wofs.c: the DOMAIN.md §3.3 test vectors, one
 * hand-traced pixel for each of the 23 terminal nodes of the WOfS tree,
 * undefined ratios, the flag byte of aw_wofs, and serial equals parallel.
 *
 * Pixels for aw_wofs_tree are in reflectance x 10000, in the order
 * (b1 blue, b2 green, b3 red, b4 nir, b5 swir1, b7 swir2);
 * ndi_52 = (b5 - b2) / (b5 + b2), ndi_43 = (b4 - b3) / (b4 + b3),
 * ndi_72 = (b7 - b2) / (b7 + b2). Node numbers are those of
 * GeoscienceAustralia/wofs classifier.py. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/quality.h"

#define NB  AW_BAND_COUNT
#define WET 128
#define DRY 0

static uint8_t tree(const float p[6])
{
    return aw_wofs_tree(p[0], p[1], p[2], p[3], p[4], p[5]);
}

static void wofs_tree_should_match_the_domain_test_vectors(void **state)
{
    (void)state;
    /* (500,700,400,300,200,100): ndi_52 = (200-700)/900 = -0.556 <= -0.01;
     * b1 500 <= 2083.5; b7 100 <= 323.5; ndi_43 = (300-400)/700 = -0.143
     * <= 0.61 -> WET (N6). */
    const float wet[6] = {500, 700, 400, 300, 200, 100};
    assert_int_equal(tree(wet), WET);
    /* (300,600,400,3000,1800,900): ndi_52 = (1800-600)/2400 = 0.5 > 0.23
     * and > 0.34 -> DRY (N36). */
    const float dry[6] = {300, 600, 400, 3000, 1800, 900};
    assert_int_equal(tree(dry), DRY);
}

/* One pixel per terminal node; path in the comment of each. */
static const struct leaf {
    int node;
    float px[6];
    uint8_t want;
} leaves[] = {
    /* N3: ndi_52 = (1000-3000)/4000 = -0.5 <= -0.01; b1 2500 > 2083.5. */
    {3, {2500, 3000, 2000, 1000, 1000, 500}, DRY},
    /* N6: ndi_52 = -500/900 = -0.556; b1 500 <= 2083.5; b7 100 <= 323.5;
     * ndi_43 = -100/700 = -0.143 <= 0.61. */
    {6, {500, 700, 400, 300, 200, 100}, WET},
    /* N7: as N6 but b3 100, b4 900: ndi_43 = 800/1000 = 0.8 > 0.61. */
    {7, {500, 700, 100, 900, 200, 100}, DRY},
    /* N10: ndi_52 = (1000-2000)/3000 = -0.333; b1 1600 <= 2083.5;
     * b7 400 > 323.5; b1 1600 > 1400.5; ndi_43 = (1000-1500)/2500 = -0.2
     * <= -0.01. */
    {10, {1600, 2000, 1500, 1000, 1000, 400}, WET},
    /* N11: as N10 but b3 1000, b4 1500: ndi_43 = 500/2500 = 0.2 > -0.01. */
    {11, {1600, 2000, 1000, 1500, 1000, 400}, DRY},
    /* N14: ndi_52 = (500-1000)/1500 = -0.333; b1 300 <= 2083.5; b7 800 >
     * 323.5; b1 300 <= 1400.5; ndi_72 = (800-1000)/1800 = -0.111 > -0.23;
     * b1 300 <= 379. */
    {14, {300, 1000, 500, 500, 500, 800}, WET},
    /* N15: as N14 but b1 400 > 379. */
    {15, {400, 1000, 500, 500, 500, 800}, DRY},
    /* N17: ndi_52 = -0.333; b1 1000 <= 2083.5; b7 400 > 323.5; b1 1000 <=
     * 1400.5; ndi_72 = (400-1000)/1400 = -0.429 <= -0.23; ndi_43 = 0/1000 =
     * 0 <= 0.22. */
    {17, {1000, 1000, 500, 500, 500, 400}, WET},
    /* N19: ndi_52 = -0.333; b7 400 > 323.5; b1 400 <= 1400.5; ndi_72 =
     * -0.429; ndi_43 = (900-300)/1200 = 0.5 > 0.22; b1 400 <= 473. */
    {19, {400, 1000, 300, 900, 500, 400}, WET},
    /* N20: as N19 but b1 500 > 473. */
    {20, {500, 1000, 300, 900, 500, 400}, DRY},
    /* N23: ndi_52 = 0/2000 = 0 > -0.01 and <= 0.23; b1 400 > 334.5. */
    {23, {400, 1000, 500, 1000, 1000, 500}, DRY},
    /* N25: ndi_52 = 0; b1 300 <= 334.5; ndi_43 = (1000-200)/1200 = 0.667
     * > 0.54. */
    {25, {300, 1000, 200, 1000, 1000, 500}, DRY},
    /* N27: ndi_52 = 0; b1 300 <= 334.5; ndi_43 = 500/1500 = 0.333 <= 0.54;
     * ndi_52 0 <= 0.12. */
    {27, {300, 1000, 500, 1000, 1000, 500}, WET},
    /* N31: ndi_52 = (1400-1000)/2400 = 0.167 (> 0.12, <= 0.23); b1 100 <=
     * 334.5; ndi_43 = (500-300)/800 = 0.25 <= 0.54; b3 300 <= 364.5;
     * b1 100 <= 129.5. */
    {31, {100, 1000, 300, 500, 1400, 500}, WET},
    /* N32: as N31 but b1 200 > 129.5. */
    {32, {200, 1000, 300, 500, 1400, 500}, DRY},
    /* N33: ndi_52 = 0.167; b1 250 <= 334.5; ndi_43 = (600-400)/1000 = 0.2;
     * b3 400 > 364.5; b1 250 <= 300.5. */
    {33, {250, 1000, 400, 600, 1400, 500}, WET},
    /* N34: as N33 but b1 320 (<= 334.5) > 300.5. */
    {34, {320, 1000, 400, 600, 1400, 500}, DRY},
    /* N36: ndi_52 = (1800-600)/2400 = 0.5 > 0.23, > 0.34. */
    {36, {300, 600, 400, 3000, 1800, 900}, DRY},
    /* N38: ndi_52 = (1800-1000)/2800 = 0.286 (> 0.23, <= 0.34); b1 300 >
     * 249.5. */
    {38, {300, 1000, 300, 500, 1800, 500}, DRY},
    /* N40: ndi_52 = 0.286; b1 200 <= 249.5; ndi_43 = (500-100)/600 = 0.667
     * > 0.45. */
    {40, {200, 1000, 100, 500, 1800, 500}, DRY},
    /* N42: ndi_52 = 0.286; b1 200; ndi_43 = (500-400)/900 = 0.111 <= 0.45;
     * b3 400 > 364.5. */
    {42, {200, 1000, 400, 500, 1800, 500}, DRY},
    /* N44: ndi_52 = 0.286; b1 100; ndi_43 = (400-300)/700 = 0.143; b3 300
     * <= 364.5; b1 100 <= 129.5. */
    {44, {100, 1000, 300, 400, 1800, 500}, WET},
    /* N45: as N44 but b1 200 > 129.5 (and <= 249.5). */
    {45, {200, 1000, 300, 400, 1800, 500}, DRY},
};

static void wofs_tree_should_reach_every_terminal_node(void **state)
{
    (void)state;
    const size_t n = sizeof leaves / sizeof leaves[0];
    /* 10 terminal nodes on the left branch, 13 on the right. */
    assert_int_equal(n, 23);
    size_t wet = 0;
    for (size_t k = 0; k < n; k++) {
        if (tree(leaves[k].px) != leaves[k].want)
            print_error("node N%d\n", leaves[k].node);
        assert_int_equal(tree(leaves[k].px), leaves[k].want);
        wet += leaves[k].want == WET;
    }
    /* N6 10 14 17 19 27 31 33 44 are WET. */
    assert_int_equal(wet, 9);
}

static void wofs_tree_should_follow_numpy_for_undefined_ratios(void **state)
{
    (void)state;
    /* b2 = b5 = 0: ndi_52 = 0/0 = NaN. In classifier.py every split is
     * `x <= t` and NaN <= t is false, so the pixel goes right at N1, right
     * at N21 (ndi_52 <= 0.23 false) and to N36 (ndi_52 <= 0.34 false):
     * DRY, whatever the other bands. */
    const float nan52[6] = {100, 0, 300, 400, 0, 0};
    assert_int_equal(tree(nan52), DRY);
    /* b3 = 500, b4 = -500: ndi_43 = -1000/0 = -Inf in numpy, not NaN.
     * ndi_52 = (200-700)/900 = -0.556; b1 500 <= 2083.5; b7 100 <= 323.5;
     * ndi_43 -Inf <= 0.61 -> WET (N6); a NaN would give DRY (N7). */
    const float inf43[6] = {500, 700, 500, -500, 200, 100};
    assert_int_equal(tree(inf43), WET);
    /* b3 = b4 = 0: ndi_43 = NaN. Left branch, b7 400 > 323.5, b1 1600 >
     * 1400.5, then ndi_43 <= -0.01 is false -> DRY (N11). */
    const float nan43[6] = {1600, 2000, 0, 0, 1000, 400};
    assert_int_equal(tree(nan43), DRY);
}

/* ---- Flag byte ---- */

static void wofs_should_write_the_flag_byte_for_each_quality_class(void **state)
{
    (void)state;
    enum { N = 15 };
    /* Reflectance (0..1) of the two DOMAIN vectors: x 10000 gives
     * (500,700,400,300,200,100) WET and (300,600,400,3000,1800,900) DRY. */
    static const float wet[NB] = {0.05f, 0.07f, 0.04f, 0.03f, 0.02f, 0.01f};
    static const float dry[NB] = {0.03f, 0.06f, 0.04f, 0.3f, 0.18f, 0.09f};
    float band[NB][N];
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < N; i++)
            band[b][i] = i == 7 ? dry[b] : wet[b];
    band[AW_BAND_RED][8] = NAN;
    band[AW_BAND_SWIR1][9] = INFINITY;
    band[AW_BAND_BLUE][10] = NAN;
    band[AW_BAND_SWIR2][12] = -0.0001f; /* x 10000 outside 0..10000 */
    band[AW_BAND_BLUE][13] = 1.0001f;
    band[AW_BAND_SWIR2][14] = 0.0f; /* on the edge: b7 0, still WET */
    const uint8_t q[N] = {
        AW_Q_OUTSIDE, AW_Q_NODATA, AW_Q_CLOUD,  AW_Q_SHADOW,
        AW_Q_SNOW,    AW_Q_MASKED, AW_Q_VALID,  AW_Q_VALID, /* 7: dry */
        AW_Q_VALID,   AW_Q_CLOUD,  AW_Q_NODATA, AW_Q_COUNT, /* not a class */
        AW_Q_VALID,   AW_Q_VALID,  AW_Q_VALID,
    };
    const uint8_t want[N] = {
        1,   1,  /* outside, nodata: exactly 1 */
        64,  32, /* cloud, cloud shadow */
        2,   2,  /* snow, masked: non-contiguous */
        128, 0,  /* clear wet, clear dry */
        2,       /* valid with a NaN band */
        2,       /* a non-finite band comes before cloud */
        1,       /* nodata comes before a non-finite band */
        1,       /* unknown class: nodata */
        2,   2,  /* a band out of 0..10000 (GA's C2 nodata): non-contiguous */
        128,
    };
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = band[b];
    uint8_t flags[N];
    aw_wofs(bands, q, flags, N);
    assert_memory_equal(flags, want, N);

    /* qcls NULL: all VALID. */
    aw_wofs(bands, NULL, flags, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(flags[i], i == 7 ? 0 : 128);

    /* A missing band acts as a non-finite band. */
    bands[AW_BAND_NIR] = NULL;
    aw_wofs(bands, q, flags, N);
    assert_int_equal(flags[0], 1);
    assert_int_equal(flags[2], 2);
    assert_int_equal(flags[6], 2);
}

static void wofs_should_not_depend_on_the_thread_count(void **state)
{
    (void)state;
    const size_t n = 200000; /* more than three 65536-pixel chunks */
    float *band[NB];
    uint8_t *q = malloc(n), *one = malloc(n), *four = malloc(n);
    assert_non_null(q);
    assert_non_null(one);
    assert_non_null(four);
    uint32_t s = 2024;
    for (int b = 0; b < NB; b++) {
        band[b] = malloc(n * sizeof(float));
        assert_non_null(band[b]);
        for (size_t i = 0; i < n; i++)
            band[b][i] = aw_lcg_uniform(&s, 0.0f, 0.25f);
    }
    for (size_t i = 0; i < n; i++)
        q[i] = (uint8_t)((aw_lcg_next(&s) >> 8) % 9 == 0 ? AW_Q_SHADOW
                                                         : AW_Q_VALID);
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = band[b];
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_wofs(bands, q, one, n);
    omp_set_num_threads(4);
    aw_wofs(bands, q, four, n);
    omp_set_num_threads(saved);
    assert_memory_equal(one, four, n);
    size_t nwet = 0, ndry = 0;
    for (size_t i = 0; i < n; i++) {
        nwet += one[i] == 128;
        ndry += one[i] == 0;
        if (q[i] == AW_Q_VALID && i % 101 == 0) {
            uint8_t t =
                aw_wofs_tree(band[0][i] * 10000.0f, band[1][i] * 10000.0f,
                             band[2][i] * 10000.0f, band[3][i] * 10000.0f,
                             band[4][i] * 10000.0f, band[5][i] * 10000.0f);
            assert_int_equal(one[i], t);
        }
    }
    assert_true(nwet > 0);
    assert_true(ndry > 0);
    for (int b = 0; b < NB; b++)
        free(band[b]);
    free(q);
    free(one);
    free(four);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wofs_tree_should_match_the_domain_test_vectors),
        cmocka_unit_test(wofs_tree_should_reach_every_terminal_node),
        cmocka_unit_test(wofs_tree_should_follow_numpy_for_undefined_ratios),
        cmocka_unit_test(
            wofs_should_write_the_flag_byte_for_each_quality_class),
        cmocka_unit_test(wofs_should_not_depend_on_the_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

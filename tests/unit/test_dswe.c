/* Unit tests for kernels/dswe.c: the 32-entry recode table against the
 * DOMAIN.md §3.2 recode lists and the "tests passed" rule, hand-built
 * pixels for chosen subsets of the five tests, undefined ratios, QA
 * masking, the terrain filter, and serial equals parallel.
 *
 * Band order in every pixel literal: {blue, green, red, nir, swir1, swir2},
 * reflectance on a 0..1 scale; the arithmetic in the comments is in
 * reflectance x 10000 (B G R N S1 S2), as the thresholds are.
 * Test digits: t1 MNDWI > 0.0124; t2 MBSRV (G + R) > MBSRN (N + S1);
 * t3 AWEsh = B + 2.5 G - 1.5 (N + S1) - 0.25 S2 > 0; t4 (PSWT-1) MNDWI >
 * -0.44, S1 < 900, N < 1500, NDVI < 0.7; t5 (PSWT-2) MNDWI > -0.5, B < 1000,
 * S1 < 3000, S2 < 1000, N < 2500. Index = t1 | t2<<1 | t3<<2 | t4<<3 |
 * t5<<4. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/quality.h"

#define NB AW_BAND_COUNT

/* ---- The recode table ---- */

/* Digits t5 t4 t3 t2 t1 from the left -> index. */
static unsigned index_of_digits(const char *d)
{
    assert_int_equal(strlen(d), 5);
    unsigned idx = 0;
    for (int k = 0; k < 5; k++) {
        assert_true(d[k] == '0' || d[k] == '1');
        if (d[k] == '1')
            idx |= 1u << (4 - k); /* d[0] is t5 (bit 4), d[4] is t1 */
    }
    return idx;
}

static void
dswe_lut_should_match_the_recode_lists_of_the_domain_notes(void **state)
{
    (void)state;
    /* DOMAIN.md §3.2, "Recode of the 5-digit diagnostic". */
    static const char *const not_water[] = {"00000", "00001", "00010", "00100",
                                            "01000"};
    static const char *const high[] = {"01111", "10111", "11011",
                                       "11101", "11110", "11111"};
    static const char *const moderate[] = {"00111", "01011", "01101", "01110",
                                           "10011", "10101", "10110", "11001",
                                           "11010", "11100"};
    static const char *const wetland[] = {"11000"};
    static const char *const low[] = {"00011", "00101", "00110", "01001",
                                      "01010", "01100", "10000", "10001",
                                      "10010", "10100"};
    static const struct {
        const char *const *codes;
        size_t n;
        uint8_t cls;
    } groups[] = {
        {not_water, 5, AW_DSWE_NOT_WATER},
        {high, 6, AW_DSWE_HIGH},
        {moderate, 10, AW_DSWE_MODERATE},
        {wetland, 1, AW_DSWE_WETLAND},
        {low, 10, AW_DSWE_LOW},
    };
    int seen[32] = {0};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        for (size_t k = 0; k < groups[g].n; k++) {
            unsigned idx = index_of_digits(groups[g].codes[k]);
            seen[idx]++;
            assert_int_equal(aw_dswe_lut[idx], groups[g].cls);
        }
    }
    /* The five lists cover each of the 32 combinations exactly once. */
    for (int i = 0; i < 32; i++)
        assert_int_equal(seen[i], 1);
}

static void dswe_lut_should_follow_the_tests_passed_rule(void **state)
{
    (void)state;
    for (unsigned idx = 0; idx < 32; idx++) {
        unsigned t4 = (idx >> 3) & 1u, t5 = (idx >> 4) & 1u;
        unsigned n = 0;
        for (unsigned k = 0; k < 5; k++)
            n += (idx >> k) & 1u;
        unsigned want;
        if (n >= 4)
            want = 1;
        else if (n == 3)
            want = 2;
        else if (n == 2)
            want = t4 && t5 ? 3 : 4;
        else if (n == 1)
            want = t5 ? 4 : 0;
        else
            want = 0;
        assert_int_equal(aw_dswe_lut[idx], want);
    }
}

/* ---- Hand-built pixels ---- */

struct dswe_case {
    float px[NB];
    unsigned tests; /* expected index */
    uint8_t cls;    /* expected class */
};

/* Each pixel is built to pass one subset of the tests. */
static const struct dswe_case cases[] = {
    /* A, clear water: B 500 G 600 R 400 N 300 S1 200 S2 100.
     * MNDWI = 400/800 = 0.5 > 0.0124 (t1). G+R 1000 > N+S1 500 (t2).
     * AWEsh = 500 + 1500 - 750 - 25 = 1225 > 0 (t3). NDVI = -100/700 =
     * -0.143; S1 200 < 900, N 300 < 1500 (t4). B 500, S1 200, S2 100,
     * N 300 all under (t5). 11111 = 31 -> 1 high. */
    {{0.05f, 0.06f, 0.04f, 0.03f, 0.02f, 0.01f}, 31, AW_DSWE_HIGH},
    /* B, bright dry soil: B 1500 G 1800 R 2200 N 2800 S1 3500 S2 2800.
     * MNDWI = -1700/5300 = -0.321 (no t1). 4000 < 6300 (no t2). AWEsh =
     * 1500 + 4500 - 9450 - 700 = -4150 (no t3). S1 3500 >= 900 (no t4).
     * B 1500 >= 1000 (no t5). 00000 = 0 -> 0. */
    {{0.15f, 0.18f, 0.22f, 0.28f, 0.35f, 0.28f}, 0, AW_DSWE_NOT_WATER},
    /* C, only PSWT-2: B 800 G 700 R 500 N 2000 S1 1200 S2 600.
     * MNDWI = -500/1900 = -0.263 (no t1, but > -0.5). 1200 < 3200 (no t2).
     * AWEsh = 800 + 1750 - 4800 - 150 = -2400 (no t3). S1 1200 >= 900
     * (no t4). B 800 < 1000, S1 < 3000, S2 600 < 1000, N 2000 < 2500 (t5).
     * 10000 = 16 -> 4 low. */
    {{0.08f, 0.07f, 0.05f, 0.2f, 0.12f, 0.06f}, 16, AW_DSWE_LOW},
    /* D, PSWT-1 and PSWT-2 only: B 400 G 600 R 400 N 1200 S1 800 S2 500.
     * MNDWI = -200/1400 = -0.143 (no t1; > -0.44 and > -0.5). 1000 < 2000
     * (no t2). AWEsh = 400 + 1500 - 3000 - 125 = -1225 (no t3). NDVI =
     * 800/1600 = 0.5 < 0.7, S1 800 < 900, N 1200 < 1500 (t4). B 400,
     * S1 800, S2 500, N 1200 (t5). 11000 = 24 -> 3 wetland. */
    {{0.04f, 0.06f, 0.04f, 0.12f, 0.08f, 0.05f}, 24, AW_DSWE_WETLAND},
    /* E, turbid water, the three index tests only: B 1200 G 2000 R 1500
     * N 1000 S1 950 S2 400. MNDWI = 1050/2950 = 0.356 (t1). 3500 > 1950
     * (t2). AWEsh = 1200 + 5000 - 2925 - 100 = 3175 (t3). S1 950 >= 900
     * (no t4). B 1200 >= 1000 (no t5). 00111 = 7 -> 2 moderate. */
    {{0.12f, 0.2f, 0.15f, 0.1f, 0.095f, 0.04f}, 7, AW_DSWE_MODERATE},
    /* F, MNDWI only: B 1200 G 1500 R 300 N 2400 S1 1000 S2 1200.
     * MNDWI = 500/2500 = 0.2 (t1). 1800 < 3400 (no t2). AWEsh = 1200 +
     * 3750 - 5100 - 300 = -450 (no t3). S1 1000 >= 900 (no t4). B 1200
     * (no t5). 00001 = 1 -> 0. */
    {{0.12f, 0.15f, 0.03f, 0.24f, 0.1f, 0.12f}, 1, AW_DSWE_NOT_WATER},
    /* G, MBSRV and AWEsh only: B 2000 G 1000 R 2000 N 500 S1 1000 S2 1000.
     * MNDWI = 0/2000 = 0 <= 0.0124 (no t1). 3000 > 1500 (t2). AWEsh =
     * 2000 + 2500 - 2250 - 250 = 2000 (t3). S1 1000 >= 900 (no t4).
     * B 2000 (no t5). 00110 = 6 -> 4 low. */
    {{0.2f, 0.1f, 0.2f, 0.05f, 0.1f, 0.1f}, 6, AW_DSWE_LOW},
    /* H, all but PSWT-2: B 1100 G 1200 R 600 N 400 S1 300 S2 200.
     * MNDWI = 900/1500 = 0.6 (t1). 1800 > 700 (t2). AWEsh = 1100 + 3000 -
     * 1050 - 50 = 3000 (t3). NDVI = -200/1000 = -0.2, S1 300, N 400 (t4).
     * B 1100 >= 1000 (no t5). 01111 = 15 -> 1 high. */
    {{0.11f, 0.12f, 0.06f, 0.04f, 0.03f, 0.02f}, 15, AW_DSWE_HIGH},
    /* I, PSWT-2 with MNDWI only: B 600 G 900 R 200 N 2200 S1 800 S2 300.
     * MNDWI = 100/1700 = 0.0588 (t1). 1100 < 3000 (no t2). AWEsh = 600 +
     * 2250 - 4500 - 75 = -1725 (no t3). N 2200 >= 1500 (no t4). B 600,
     * S1 800, S2 300, N 2200 < 2500 (t5). 10001 = 17 -> 4 low. */
    {{0.06f, 0.09f, 0.02f, 0.22f, 0.08f, 0.03f}, 17, AW_DSWE_LOW},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void dswe_tests_should_pass_the_designed_subsets(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCASES; k++) {
        const float *p = cases[k].px;
        unsigned t = aw_dswe_tests(p[0], p[1], p[2], p[3], p[4], p[5]);
        assert_int_equal(t, cases[k].tests);
        assert_int_equal(aw_dswe_lut[t], cases[k].cls);
    }
}

static void dswe_should_classify_the_designed_pixels(void **state)
{
    (void)state;
    float band[NB][NCASES];
    uint8_t q[NCASES], out[NCASES];
    for (size_t k = 0; k < NCASES; k++) {
        for (int b = 0; b < NB; b++)
            band[b][k] = cases[k].px[b];
        q[k] = AW_Q_VALID;
    }
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = band[b];
    aw_dswe(bands, q, out, NCASES);
    for (size_t k = 0; k < NCASES; k++)
        assert_int_equal(out[k], cases[k].cls);
    /* qcls NULL means every pixel is VALID. */
    memset(out, 0xEE, sizeof out);
    aw_dswe(bands, NULL, out, NCASES);
    for (size_t k = 0; k < NCASES; k++)
        assert_int_equal(out[k], cases[k].cls);
}

static void dswe_tests_should_treat_an_undefined_ratio_as_failed(void **state)
{
    (void)state;
    /* G 100, S1 -100: G + S1 = 0, MNDWI undefined, so t1, t4, t5 fail.
     * B 500 R 400 N 300 S2 100: G+R 500 > N+S1 200 (t2); AWEsh = 500 + 250
     * - 300 - 25 = 425 (t3). 00110 = 6. (Dividing would give +Inf and pass
     * t1, t4 and t5: 31.) */
    assert_int_equal(aw_dswe_tests(0.05f, 0.01f, 0.04f, 0.03f, -0.01f, 0.01f),
                     6);
    /* N -100, R 100: N + R = 0, NDVI undefined, so t4 fails.
     * B 500 G 600 S1 200 S2 100: MNDWI = 400/800 = 0.5 (t1); G+R 700 >
     * N+S1 100 (t2); AWEsh = 500 + 1500 - 150 - 25 = 1825 (t3); t5: B 500,
     * S1 200, S2 100, N -100 all under. 10111 = 23. (Dividing would give
     * NDVI = -Inf < 0.7 and pass t4: 31.) */
    assert_int_equal(aw_dswe_tests(0.05f, 0.06f, 0.01f, -0.01f, 0.02f, 0.01f),
                     23);
    /* G + S1 < 0 is undefined too: G -200, S1 100 (sum -100).
     * B 300 R 500 N 100 S2 50: G+R 300 > N+S1 200 (t2); AWEsh = 300 - 500
     * - 300 - 12.5 = -512.5 (no t3). 00010 = 2. */
    assert_int_equal(aw_dswe_tests(0.03f, -0.02f, 0.05f, 0.01f, 0.01f, 0.005f),
                     2);
    /* All zero: G+R = N+S1 = 0 (no t2), AWEsh 0 (no t3), ratios undefined:
     * 00000. */
    assert_int_equal(aw_dswe_tests(0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f), 0);
}

/* Reflectance as the pipeline makes it from a Sentinel-2 DN (DN * 1e-4 in
 * float32): not a whole number of 1e-4. */
static float s2_refl(int dn)
{
    volatile float scale = 1e-4f;
    return (float)dn * scale;
}

static void dswe_tests_should_run_on_whole_reflectance_x_10000(void **state)
{
    (void)state;
    /* ESPA's DSWE compares integer SR x 10000, so a value on a threshold
     * is on it. DN B 500 G 500 R 500 N 1000 S1 500 S2 1000: MNDWI 0 (no
     * t1); G+R 1000 < N+S1 1500 (no t2); AWEsh = 500 + 1250 - 2250 - 250
     * < 0 (no t3); t4: MNDWI 0 > -0.44, S1 500 < 900, N 1000 < 1500,
     * NDVI 500/1500 < 0.7; t5 fails on S2 1000 < 1000. 01000 = 8. In
     * float32, 1000 * 1e-4f * 10000 is 999.99994 and passed t5: 11000. */
    assert_true(s2_refl(1000) * 10000.0f < 1000.0f); /* the premise */
    assert_int_equal(aw_dswe_tests(s2_refl(500), s2_refl(500), s2_refl(500),
                                   s2_refl(1000), s2_refl(500), s2_refl(1000)),
                     8);
    /* G+R == N+S1 exactly (no t2): G 700 R 300, N 600 S1 400. B 100 S2
     * 100: MNDWI 300/1100 = 0.27 (t1); AWEsh = 100 + 1750 - 1500 - 25 =
     * 325 (t3); t4: S1 400 < 900, N 600 < 1500, NDVI 300/900 < 0.7; t5: B,
     * S1, S2, N under. 11101 = 29. */
    assert_int_equal(aw_dswe_tests(s2_refl(100), s2_refl(700), s2_refl(300),
                                   s2_refl(600), s2_refl(400), s2_refl(100)),
                     29);
}

static void dswe_should_mask_by_quality_class_and_non_finite_bands(void **state)
{
    (void)state;
    enum { N = 12 };
    /* Every pixel has pixel A's bands (class 1) unless noted. */
    float band[NB][N];
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < N; i++)
            band[b][i] = cases[0].px[b];
    band[AW_BAND_BLUE][6] = NAN;
    band[AW_BAND_SWIR2][7] = INFINITY;
    band[AW_BAND_NIR][8] = -INFINITY;
    band[AW_BAND_GREEN][10] = NAN; /* cloud with a NaN band */
    const uint8_t q[N] = {
        AW_Q_CLOUD,         AW_Q_SHADOW, AW_Q_SNOW,
        AW_Q_MASKED,        AW_Q_NODATA, AW_Q_OUTSIDE,
        /* 6 */ AW_Q_VALID, AW_Q_VALID,  AW_Q_VALID,
        /* 9 */ AW_Q_VALID, AW_Q_CLOUD,  /* not a class */ 7,
    };
    const uint8_t want[N] = {
        9,   9,   9,   9, /* cloud, shadow, snow, masked */
        255, 255,         /* nodata, outside */
        255, 255, 255,    /* NaN blue, +Inf swir2, -Inf nir */
        1,                /* valid, pixel A */
        9,                /* masked wins over a NaN band */
        255,              /* unknown class */
    };
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = band[b];
    uint8_t out[N];
    aw_dswe(bands, q, out, N);
    assert_memory_equal(out, want, N);

    /* A missing band: VALID pixels are fill, masked ones still 9. */
    bands[AW_BAND_SWIR2] = NULL;
    memset(out, 0xEE, N);
    aw_dswe(bands, q, out, N);
    assert_int_equal(out[0], 9);
    assert_int_equal(out[4], 255);
    assert_int_equal(out[9], 255);
}

/* ---- Terrain filter ---- */

static void dswe_terrain_should_zero_water_classes_on_steep_slopes(void **state)
{
    (void)state;
    enum { N = 14 };
    uint8_t cls[N] = {1, 1, 2, 2, 3, 3, 4, 4, 1, 3, 0, 9, 255, 2};
    const float slope[N] = {
        29.9f, 30.0f,        /* class 1: < 30 keeps, >= 30 zeroes */
        29.9f, 30.0f,        /* class 2: the same */
        19.9f, 20.0f,        /* class 3: < 20 keeps, >= 20 zeroes */
        9.9f,  10.0f,        /* class 4: < 10 keeps, >= 10 zeroes */
        25.0f,               /* class 1 at 25 %: kept (only >= 30 counts) */
        15.0f,               /* class 3 at 15 %: kept */
        90.0f, 90.0f, 90.0f, /* 0, 9, 255 never change */
        NAN,                 /* NaN slope leaves class 2 */
    };
    const float hs[N] = {200, 200, 200, 200, 200, 200, 200,
                         200, 200, 200, 200, 200, 200, 200};
    const uint8_t want[N] = {1, 0, 2, 0, 3, 0, 4, 0, 1, 3, 0, 9, 255, 2};
    aw_dswe_terrain(cls, slope, hs, N);
    assert_memory_equal(cls, want, N);
}

static void
dswe_terrain_should_zero_water_in_hillshade_110_or_darker(void **state)
{
    (void)state;
    enum { N = 10 };
    uint8_t cls[N] = {1, 2, 3, 4, 1, 4, 0, 9, 255, 3};
    const float slope[N] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const float hs[N] = {
        110.0f, 110.0f, 110.0f, 0.0f, /* <= 110: every water class -> 0 */
        111.0f, 110.5f,               /* brighter: kept */
        0.0f,   0.0f,   0.0f,         /* 0, 9, 255 never change */
        NAN,                          /* NaN hillshade leaves class 3 */
    };
    const uint8_t want[N] = {0, 0, 0, 0, 1, 4, 0, 9, 255, 3};
    aw_dswe_terrain(cls, slope, hs, N);
    assert_memory_equal(cls, want, N);
}

static void dswe_terrain_should_skip_a_missing_slope_or_hillshade(void **state)
{
    (void)state;
    uint8_t a[3] = {1, 3, 4};
    const float steep[3] = {45.0f, 45.0f, 45.0f};
    const float dark[3] = {50.0f, 50.0f, 50.0f};
    aw_dswe_terrain(a, NULL, dark, 3); /* hillshade only */
    assert_int_equal(a[0], 0);
    assert_int_equal(a[1], 0);
    assert_int_equal(a[2], 0);
    uint8_t b[3] = {1, 3, 4};
    aw_dswe_terrain(b, steep, NULL, 3); /* slope only */
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 0);
    assert_int_equal(b[2], 0);
    uint8_t c[3] = {1, 3, 4};
    aw_dswe_terrain(c, NULL, NULL, 3); /* nothing to filter with */
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 3);
    assert_int_equal(c[2], 4);
}

/* ---- Threads ---- */

static void dswe_should_not_depend_on_the_thread_count(void **state)
{
    (void)state;
    const size_t n = 200000; /* more than three 65536-pixel chunks */
    float *band[NB];
    uint8_t *q = malloc(n), *one = malloc(n), *four = malloc(n);
    assert_non_null(q);
    assert_non_null(one);
    assert_non_null(four);
    uint32_t s = 99;
    for (int b = 0; b < NB; b++) {
        band[b] = malloc(n * sizeof(float));
        assert_non_null(band[b]);
        for (size_t i = 0; i < n; i++)
            band[b][i] = aw_lcg_uniform(&s, -0.02f, 0.4f);
    }
    for (size_t i = 0; i < n; i++)
        q[i] = (uint8_t)((aw_lcg_next(&s) >> 8) % 8 == 0 ? AW_Q_CLOUD
                                                         : AW_Q_VALID);
    const float *bands[NB];
    for (int b = 0; b < NB; b++)
        bands[b] = band[b];
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_dswe(bands, q, one, n);
    omp_set_num_threads(4);
    aw_dswe(bands, q, four, n);
    omp_set_num_threads(saved);
    assert_memory_equal(one, four, n);
    int seen[256] = {0};
    for (size_t i = 0; i < n; i++) {
        seen[one[i]] = 1;
        if (q[i] == AW_Q_VALID && i % 101 == 0) {
            unsigned t = aw_dswe_tests(band[0][i], band[1][i], band[2][i],
                                       band[3][i], band[4][i], band[5][i]);
            assert_int_equal(one[i], aw_dswe_lut[t]);
        }
    }
    /* The random data reaches every class and the mask. */
    for (int c = 0; c <= 4; c++)
        assert_true(seen[c]);
    assert_true(seen[9]);
    for (int b = 0; b < NB; b++)
        free(band[b]);
    free(q);
    free(one);
    free(four);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            dswe_lut_should_match_the_recode_lists_of_the_domain_notes),
        cmocka_unit_test(dswe_lut_should_follow_the_tests_passed_rule),
        cmocka_unit_test(dswe_tests_should_pass_the_designed_subsets),
        cmocka_unit_test(dswe_should_classify_the_designed_pixels),
        cmocka_unit_test(dswe_tests_should_treat_an_undefined_ratio_as_failed),
        cmocka_unit_test(dswe_tests_should_run_on_whole_reflectance_x_10000),
        cmocka_unit_test(
            dswe_should_mask_by_quality_class_and_non_finite_bands),
        cmocka_unit_test(
            dswe_terrain_should_zero_water_classes_on_steep_slopes),
        cmocka_unit_test(
            dswe_terrain_should_zero_water_in_hillshade_110_or_darker),
        cmocka_unit_test(dswe_terrain_should_skip_a_missing_slope_or_hillshade),
        cmocka_unit_test(dswe_should_not_depend_on_the_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

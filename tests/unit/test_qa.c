/* Unit tests for kernels/qa.c: the default policy, Landsat C2 QA_PIXEL codes
 * taken from a real scene (shared/real_scenes/landsat8_c2l2_qapixel_colombia,
 * SOURCE.txt) decoded by hand, policy variants, every Sentinel-2 SCL class,
 * and dilation of a class by a disk (hand-drawn grids, a direct reference
 * and serial equals parallel).
 *
 * QA_PIXEL bits (DOMAIN.md §2.2): 0 fill, 1 dilated cloud, 2 cirrus,
 * 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water; confidences (0 none,
 * 1 low, 2 medium, 3 high) in 8-9 cloud, 10-11 shadow, 12-13 snow, 14-15
 * cirrus. Each code below is written out in binary, bit 15 on the left. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "aw_test.h"
#include "aralwatch/quality.h"

/* Real codes of the Colombia scene, decoded by hand.
 * 21824 = 0x5540 = 0101 0101 0100 0000: bit 6 clear; cloud conf 01 (bits
 *         9-8), shadow conf 01, snow conf 01, cirrus conf 01 (all low).
 *         Clear land.
 * 21952 = 0x55C0 = 0101 0101 1100 0000: bits 6 clear and 7 water; all four
 *         confidences low. Clear water.
 * 22280 = 0x5708 = 0101 0111 0000 1000: bit 3 cloud; cloud conf 11 (high),
 *         shadow, snow, cirrus conf low.
 * 55052 = 0xD70C = 1101 0111 0000 1100: bits 2 cirrus and 3 cloud; cloud
 *         conf 11, shadow conf 01, snow conf 01, cirrus conf 11.
 * 23888 = 0x5D50 = 0101 1101 0101 0000: bits 4 shadow and 6 clear; cloud
 *         conf 01, shadow conf 11, snow conf 01, cirrus conf 01.
 * 24082 = 0x5E12 = 0101 1110 0001 0010: bits 1 dilated cloud and 4 shadow;
 *         cloud conf 10 (medium), shadow conf 11, snow 01, cirrus 01.
 * 23826 = 0x5D12 = 0101 1101 0001 0010: bits 1 dilated cloud and 4 shadow;
 *         cloud conf 01, shadow conf 11, snow 01, cirrus 01.
 * 1     = 0x0001: bit 0 fill.
 * Not in that scene, a snow code built from the same layout:
 * 30048 = 0x7560 = 0111 0101 0110 0000: bits 5 snow and 6 clear; cloud
 *         conf 01, shadow conf 01, snow conf 11, cirrus conf 01. */
#define QA_CLEAR_LAND   21824.0
#define QA_CLEAR_WATER  21952.0
#define QA_CLOUD_HIGH   22280.0
#define QA_CLOUD_CIRRUS 55052.0
#define QA_SHADOW       23888.0
#define QA_DIL_SHADOW_A 24082.0
#define QA_DIL_SHADOW_B 23826.0
#define QA_FILL         1.0
#define QA_SNOW         30048.0

/* One QA value through aw_qa_landsat_c2 from a VALID start. */
static uint8_t landsat1(double qa, const aw_qa_policy *p)
{
    uint8_t c = AW_Q_VALID;
    aw_qa_landsat_c2(&qa, &c, 1, p);
    return c;
}

static uint8_t scl1(double v, const aw_qa_policy *p)
{
    uint8_t c = AW_Q_VALID;
    aw_qa_s2_scl(&v, &c, 1, p);
    return c;
}

/* ---- Policy ---- */

static void
qa_policy_default_should_mask_all_flags_and_no_confidence(void **state)
{
    (void)state;
    aw_qa_policy p;
    memset(&p, 0xAB, sizeof p);
    aw_qa_policy_default(&p);
    assert_int_equal(p.landsat_flags, AW_QF_DEFAULT);
    /* bits 0..4 = dilated, cirrus, cloud, shadow, snow -> 0x1F */
    assert_int_equal(p.landsat_flags, 0x1Fu);
    assert_int_equal(p.cloud_conf, 0);
    assert_int_equal(p.shadow_conf, 0);
    assert_int_equal(p.snow_conf, 0);
    assert_int_equal(p.cirrus_conf, 0);
    /* {0,1,2,3,8,9,10,11}: 0x00F + 0xF00 = 0xF0F */
    assert_int_equal(p.scl_mask, 0xF0Fu);
}

/* ---- Landsat C2 QA_PIXEL ---- */

static void landsat_qa_should_classify_the_real_scene_codes(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    /* No fill/dilated/cirrus/cloud/shadow/snow bit: VALID. */
    assert_int_equal(landsat1(QA_CLEAR_LAND, &p), AW_Q_VALID);
    assert_int_equal(landsat1(QA_CLEAR_WATER, &p), AW_Q_VALID);
    /* Bit 3 cloud. */
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_CLOUD);
    /* Bits 2 cirrus and 3 cloud. */
    assert_int_equal(landsat1(QA_CLOUD_CIRRUS, &p), AW_Q_CLOUD);
    /* Bit 4 shadow only. */
    assert_int_equal(landsat1(QA_SHADOW, &p), AW_Q_SHADOW);
    /* Bits 1 and 4: the dilated-cloud rule comes before shadow. */
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, &p), AW_Q_CLOUD);
    assert_int_equal(landsat1(QA_DIL_SHADOW_B, &p), AW_Q_CLOUD);
    /* Bit 0 fill. */
    assert_int_equal(landsat1(QA_FILL, &p), AW_Q_NODATA);
    /* Bit 5 snow. */
    assert_int_equal(landsat1(QA_SNOW, &p), AW_Q_SNOW);
}

static void
landsat_qa_should_give_nodata_for_values_that_are_not_codes(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    assert_int_equal(landsat1(NAN, &p), AW_Q_NODATA);
    assert_int_equal(landsat1(INFINITY, &p), AW_Q_NODATA);
    assert_int_equal(landsat1(-1.0, &p), AW_Q_NODATA);
    assert_int_equal(landsat1(65536.0, &p), AW_Q_NODATA);
    assert_int_equal(landsat1(21824.5, &p), AW_Q_NODATA);
    /* 0: no bit at all (not even clear) is still a code: VALID. */
    assert_int_equal(landsat1(0.0, &p), AW_Q_VALID);
    /* Fill with every other bit set is still NODATA (fill comes first). */
    assert_int_equal(landsat1(65535.0, &p), AW_Q_NODATA);
}

static void
landsat_qa_should_use_the_default_policy_when_given_null(void **state)
{
    (void)state;
    assert_int_equal(landsat1(QA_CLEAR_LAND, NULL), AW_Q_VALID);
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, NULL), AW_Q_CLOUD);
    assert_int_equal(landsat1(QA_SHADOW, NULL), AW_Q_SHADOW);
    assert_int_equal(landsat1(QA_SNOW, NULL), AW_Q_SNOW);
}

static void landsat_qa_should_leave_pixels_that_are_not_valid(void **state)
{
    (void)state;
    const double qa[5] = {QA_CLEAR_LAND, QA_CLEAR_WATER, QA_CLOUD_HIGH, QA_FILL,
                          QA_CLEAR_LAND};
    uint8_t cls[5] = {AW_Q_OUTSIDE, AW_Q_NODATA, AW_Q_OUTSIDE, AW_Q_OUTSIDE,
                      AW_Q_VALID};
    aw_qa_landsat_c2(qa, cls, 5, NULL);
    assert_int_equal(cls[0], AW_Q_OUTSIDE); /* clear code, still outside */
    assert_int_equal(cls[1], AW_Q_NODATA);  /* clear code, still nodata */
    assert_int_equal(cls[2], AW_Q_OUTSIDE); /* cloud code, still outside */
    assert_int_equal(cls[3], AW_Q_OUTSIDE); /* fill code, still outside */
    assert_int_equal(cls[4], AW_Q_VALID);
}

static void
landsat_qa_should_keep_snow_when_the_snow_flag_is_not_masked(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    p.landsat_flags = AW_QF_DEFAULT & ~(unsigned)AW_QF_SNOW;
    /* 30048: bit 5 snow set but not masked, no other flag -> VALID. */
    assert_int_equal(landsat1(QA_SNOW, &p), AW_Q_VALID);
    /* Other flags still apply. */
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_CLOUD);
    assert_int_equal(landsat1(QA_SHADOW, &p), AW_Q_SHADOW);
    /* Snow confidence 3 (bits 13-12 = 11) >= 3 masks it again. */
    p.snow_conf = 3;
    assert_int_equal(landsat1(QA_SNOW, &p), AW_Q_SNOW);
    /* 21824 has snow confidence 1 < 3. */
    assert_int_equal(landsat1(QA_CLEAR_LAND, &p), AW_Q_VALID);
}

static void landsat_qa_should_unmask_the_dilated_cloud_when_asked(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    p.landsat_flags = AW_QF_DEFAULT & ~(unsigned)AW_QF_DILATED_CLOUD;
    /* 24082 / 23826: bit 1 no longer masks, bit 4 shadow does. */
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, &p), AW_Q_SHADOW);
    assert_int_equal(landsat1(QA_DIL_SHADOW_B, &p), AW_Q_SHADOW);
    /* Cirrus alone: 55052 without the cloud flag still has bit 2. */
    p.landsat_flags = AW_QF_CIRRUS;
    assert_int_equal(landsat1(QA_CLOUD_CIRRUS, &p), AW_Q_CLOUD);
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_VALID); /* no bit 2 */
}

static void landsat_qa_should_apply_confidence_thresholds(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    p.landsat_flags = 0; /* flags off: only confidences decide */
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_VALID);
    assert_int_equal(landsat1(QA_SHADOW, &p), AW_Q_VALID);
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, &p), AW_Q_VALID);

    p.cloud_conf = 2; /* medium or high cloud confidence */
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_CLOUD);   /* 11 */
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, &p), AW_Q_CLOUD); /* 10 */
    assert_int_equal(landsat1(QA_DIL_SHADOW_B, &p), AW_Q_VALID); /* 01 */
    assert_int_equal(landsat1(QA_CLEAR_LAND, &p), AW_Q_VALID);   /* 01 */

    p.cloud_conf = 1; /* low confidence is set on almost every pixel */
    assert_int_equal(landsat1(QA_CLEAR_LAND, &p), AW_Q_CLOUD);
    assert_int_equal(landsat1(0.0, &p), AW_Q_VALID); /* confidence 00 */

    aw_qa_policy_default(&p);
    p.landsat_flags = 0;
    p.cirrus_conf = 3;
    assert_int_equal(landsat1(QA_CLOUD_CIRRUS, &p), AW_Q_CLOUD); /* 11 */
    assert_int_equal(landsat1(QA_CLOUD_HIGH, &p), AW_Q_VALID);   /* 01 */

    aw_qa_policy_default(&p);
    p.landsat_flags = 0;
    p.shadow_conf = 3;
    assert_int_equal(landsat1(QA_SHADOW, &p), AW_Q_SHADOW);       /* 11 */
    assert_int_equal(landsat1(QA_DIL_SHADOW_B, &p), AW_Q_SHADOW); /* 11 */
    assert_int_equal(landsat1(QA_CLEAR_LAND, &p), AW_Q_VALID);    /* 01 */

    /* Cloud (by confidence) comes before shadow (by confidence):
     * 24082 has cloud conf 10 and shadow conf 11. */
    p.cloud_conf = 2;
    assert_int_equal(landsat1(QA_DIL_SHADOW_A, &p), AW_Q_CLOUD);
}

/* Large runs are split into chunks: many pixels with one and four threads
 * give the same bytes, and each equals the one-pixel call. */
static void landsat_qa_should_not_depend_on_the_thread_count(void **state)
{
    (void)state;
    const size_t n = 200000; /* more than three 65536-pixel chunks */
    static const double codes[] = {
        QA_CLEAR_LAND, QA_CLEAR_WATER,  QA_CLOUD_HIGH, QA_CLOUD_CIRRUS,
        QA_SHADOW,     QA_DIL_SHADOW_A, QA_FILL,       QA_SNOW};
    double *qa = malloc(n * sizeof *qa);
    uint8_t *one = malloc(n), *four = malloc(n);
    assert_non_null(qa);
    assert_non_null(one);
    assert_non_null(four);
    uint32_t s = 7;
    for (size_t i = 0; i < n; i++)
        qa[i] = (aw_lcg_next(&s) >> 8) % 11 == 0 ? (double)NAN
                                                 : codes[aw_lcg_next(&s) % 8];
    memset(one, AW_Q_VALID, n);
    memset(four, AW_Q_VALID, n);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    aw_qa_landsat_c2(qa, one, n, NULL);
    omp_set_num_threads(4);
    aw_qa_landsat_c2(qa, four, n, NULL);
    omp_set_num_threads(saved);
    assert_memory_equal(one, four, n);
    for (size_t i = 0; i < n; i += 997)
        assert_int_equal(one[i], landsat1(qa[i], NULL));
    free(qa);
    free(one);
    free(four);
}

/* ---- Sentinel-2 SCL ---- */

static void
scl_should_classify_every_class_with_the_default_policy(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    static const uint8_t want[12] = {
        AW_Q_NODATA, /* 0 no data */
        AW_Q_MASKED, /* 1 saturated or defective */
        AW_Q_MASKED, /* 2 dark area / topographic shadow */
        AW_Q_SHADOW, /* 3 cloud shadow */
        AW_Q_VALID,  /* 4 vegetation */
        AW_Q_VALID,  /* 5 bare soil */
        AW_Q_VALID,  /* 6 water */
        AW_Q_VALID,  /* 7 unclassified */
        AW_Q_CLOUD,  /* 8 cloud medium probability */
        AW_Q_CLOUD,  /* 9 cloud high probability */
        AW_Q_CLOUD,  /* 10 thin cirrus */
        AW_Q_SNOW,   /* 11 snow / ice */
    };
    for (int k = 0; k < 12; k++)
        assert_int_equal(scl1((double)k, &p), want[k]);
    /* The same through one call over a row, and with p == NULL. */
    double row[12];
    uint8_t cls[12];
    for (int k = 0; k < 12; k++)
        row[k] = (double)k;
    memset(cls, AW_Q_VALID, sizeof cls);
    aw_qa_s2_scl(row, cls, 12, NULL);
    assert_memory_equal(cls, want, sizeof want);
}

static void scl_should_mask_seven_and_keep_eleven_when_asked(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    /* 0xF0F | 0x080 (class 7) & ~0x800 (class 11) = 0x78F */
    p.scl_mask = (p.scl_mask | (1u << 7)) & ~(1u << 11);
    assert_int_equal(p.scl_mask, 0x78Fu);
    static const uint8_t want[12] = {
        AW_Q_NODATA, AW_Q_MASKED, AW_Q_MASKED, AW_Q_SHADOW,
        AW_Q_VALID,  AW_Q_VALID,  AW_Q_VALID,  AW_Q_MASKED, /* 7 masked */
        AW_Q_CLOUD,  AW_Q_CLOUD,  AW_Q_CLOUD,  AW_Q_VALID,  /* 11 kept */
    };
    for (int k = 0; k < 12; k++)
        assert_int_equal(scl1((double)k, &p), want[k]);
}

static void
scl_should_give_nodata_for_class_zero_and_for_non_classes(void **state)
{
    (void)state;
    aw_qa_policy p;
    aw_qa_policy_default(&p);
    p.scl_mask = 0; /* nothing masked: class 0 is still no data */
    assert_int_equal(scl1(0.0, &p), AW_Q_NODATA);
    assert_int_equal(scl1(3.0, &p), AW_Q_VALID);
    assert_int_equal(scl1(9.0, &p), AW_Q_VALID);
    aw_qa_policy_default(&p);
    assert_int_equal(scl1(NAN, &p), AW_Q_NODATA);
    assert_int_equal(scl1(12.0, &p), AW_Q_NODATA);
    assert_int_equal(scl1(255.0, &p), AW_Q_NODATA);
    assert_int_equal(scl1(-1.0, &p), AW_Q_NODATA);
    assert_int_equal(scl1(4.5, &p), AW_Q_NODATA);
    /* Vegetation, soil and water masked on request -> MASKED. */
    p.scl_mask = (1u << 4) | (1u << 5) | (1u << 6);
    assert_int_equal(scl1(4.0, &p), AW_Q_MASKED);
    assert_int_equal(scl1(5.0, &p), AW_Q_MASKED);
    assert_int_equal(scl1(6.0, &p), AW_Q_MASKED);
    assert_int_equal(scl1(8.0, &p), AW_Q_VALID);
}

static void scl_should_leave_pixels_that_are_not_valid(void **state)
{
    (void)state;
    const double scl[4] = {4.0, 9.0, 0.0, 6.0};
    uint8_t cls[4] = {AW_Q_OUTSIDE, AW_Q_OUTSIDE, AW_Q_NODATA, AW_Q_VALID};
    aw_qa_s2_scl(scl, cls, 4, NULL);
    assert_int_equal(cls[0], AW_Q_OUTSIDE);
    assert_int_equal(cls[1], AW_Q_OUTSIDE);
    assert_int_equal(cls[2], AW_Q_NODATA);
    assert_int_equal(cls[3], AW_Q_VALID);
}

/* ---- Dilation ----
 * Grids are drawn with one character per pixel: '.' VALID, 'C' CLOUD,
 * 'S' SHADOW, 'N' NODATA, 'O' OUTSIDE. */

static uint8_t class_of(char ch)
{
    switch (ch) {
    case 'C':
        return AW_Q_CLOUD;
    case 'S':
        return AW_Q_SHADOW;
    case 'N':
        return AW_Q_NODATA;
    case 'O':
        return AW_Q_OUTSIDE;
    default:
        return AW_Q_VALID;
    }
}

static void parse_grid(const char *const *lines, size_t rows, size_t cols,
                       uint8_t *cls)
{
    for (size_t y = 0; y < rows; y++) {
        assert_int_equal(strlen(lines[y]), cols);
        for (size_t x = 0; x < cols; x++)
            cls[y * cols + x] = class_of(lines[y][x]);
    }
}

/* Dilates `before` and compares with `after`, both drawn. */
static void check_dilation(const char *const *before, const char *const *after,
                           size_t rows, size_t cols, uint8_t what, int r)
{
    uint8_t cls[9 * 9], want[9 * 9], tmp[9 * 9];
    assert_true(rows * cols <= sizeof cls);
    parse_grid(before, rows, cols, cls);
    parse_grid(after, rows, cols, want);
    aw_dilate_class(cls, tmp, rows, cols, what, r);
    assert_memory_equal(cls, want, rows * cols);
}

static void
dilate_should_grow_one_pixel_into_the_13_pixel_disk_of_radius_2(void **state)
{
    (void)state;
    /* x^2 + y^2 <= 4: rows dy = -2..2 have |dx| <= 0, 1, 2, 1, 0, i.e.
     * 1 + 3 + 5 + 3 + 1 = 13 pixels. */
    static const char *const before[9] = {
        ".........", ".........", ".........", ".........", "....C....",
        ".........", ".........", ".........", ".........",
    };
    static const char *const after[9] = {
        ".........", ".........", "....C....", "...CCC...", "..CCCCC..",
        "...CCC...", "....C....", ".........", ".........",
    };
    check_dilation(before, after, 9, 9, AW_Q_CLOUD, 2);
    uint8_t cls[81], tmp[81];
    parse_grid(before, 9, 9, cls);
    aw_dilate_class(cls, tmp, 9, 9, AW_Q_CLOUD, 2);
    size_t count = 0;
    for (size_t i = 0; i < 81; i++)
        count += cls[i] == AW_Q_CLOUD;
    assert_int_equal(count, 13);
}

static void dilate_should_give_the_29_pixel_disk_of_radius_3(void **state)
{
    (void)state;
    /* x^2 + y^2 <= 9: dy = 0 -> |dx| <= 3 (7), |dy| = 1 -> x^2 <= 8,
     * |dx| <= 2 (5), |dy| = 2 -> x^2 <= 5, |dx| <= 2 (5), |dy| = 3 -> dx = 0
     * (1): 7 + 2 * (5 + 5 + 1) = 29. A shadow pixel grows the same way. */
    static const char *const before[9] = {
        ".........", ".........", ".........", ".........", "....S....",
        ".........", ".........", ".........", ".........",
    };
    static const char *const after[9] = {
        ".........", "....S....", "..SSSSS..", "..SSSSS..", ".SSSSSSS.",
        "..SSSSS..", "..SSSSS..", "....S....", ".........",
    };
    check_dilation(before, after, 9, 9, AW_Q_SHADOW, 3);
}

static void dilate_should_not_overwrite_other_classes(void **state)
{
    (void)state;
    /* Same disk as above; N, O and S pixels inside it stay as they are,
     * and they do not stop the growth behind them. */
    static const char *const before[9] = {
        ".........", ".........", "....N....", "...O.S...", "..N.C....",
        "...N.....", ".........", ".........", ".........",
    };
    static const char *const after[9] = {
        ".........", ".........", "....N....", "...OCS...", "..NCCCC..",
        "...NCC...", "....C....", ".........", ".........",
    };
    check_dilation(before, after, 9, 9, AW_Q_CLOUD, 2);
}

static void dilate_should_clip_the_disk_at_the_edges(void **state)
{
    (void)state;
    /* Corner pixel, r = 1: (0,1) and (1,0) join; (1,1) has 1 + 1 > 1. */
    static const char *const before[4] = {"C...", "....", "....", "...C"};
    static const char *const after[4] = {"CC..", "C...", "...C", "..CC"};
    uint8_t cls[16], want[16], tmp[16];
    parse_grid(before, 4, 4, cls);
    parse_grid(after, 4, 4, want);
    aw_dilate_class(cls, tmp, 4, 4, AW_Q_CLOUD, 1);
    assert_memory_equal(cls, want, 16);
}

static void dilate_should_grow_from_the_original_pixels_only(void **state)
{
    (void)state;
    /* r = 1 from a single pixel gives the 5-pixel cross, not a chain. */
    static const char *const before[5] = {".....", ".....", "..C..", ".....",
                                          "....."};
    static const char *const after[5] = {".....", "..C..", ".CCC.", "..C..",
                                         "....."};
    uint8_t cls[25], want[25], tmp[25];
    parse_grid(before, 5, 5, cls);
    parse_grid(after, 5, 5, want);
    aw_dilate_class(cls, tmp, 5, 5, AW_Q_CLOUD, 1);
    assert_memory_equal(cls, want, 25);
}

static void dilate_should_do_nothing_for_a_radius_of_zero_or_less(void **state)
{
    (void)state;
    static const char *const grid[5] = {".....", ".N...", "..C..", "...S.",
                                        "....."};
    uint8_t cls[25], want[25], tmp[25];
    parse_grid(grid, 5, 5, want);
    for (int r = -2; r <= 0; r++) {
        parse_grid(grid, 5, 5, cls);
        aw_dilate_class(cls, tmp, 5, 5, AW_Q_CLOUD, r);
        assert_memory_equal(cls, want, 25);
    }
    /* Empty grids are fine too. */
    aw_dilate_class(cls, tmp, 0, 5, AW_Q_CLOUD, 2);
    aw_dilate_class(cls, tmp, 5, 0, AW_Q_CLOUD, 2);
}

/* Reference straight from the definition: VALID (x, y) becomes `what` when
 * some original `what` pixel is at dx^2 + dy^2 <= r^2. */
static void dilate_reference(const uint8_t *src, uint8_t *dst, size_t rows,
                             size_t cols, uint8_t what, long r)
{
    for (size_t y = 0; y < rows; y++) {
        for (size_t x = 0; x < cols; x++) {
            uint8_t c = src[y * cols + x];
            if (c == AW_Q_VALID) {
                for (size_t yy = 0; yy < rows; yy++) {
                    for (size_t xx = 0; xx < cols; xx++) {
                        long dy = (long)yy - (long)y;
                        long dx = (long)xx - (long)x;
                        if (src[yy * cols + xx] == what &&
                            dx * dx + dy * dy <= r * r)
                            c = what;
                    }
                }
            }
            dst[y * cols + x] = c;
        }
    }
}

static void random_classes(uint8_t *cls, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (aw_lcg_next(&seed) >> 8) % 100;
        cls[i] = u < 3    ? AW_Q_CLOUD
                 : u < 6  ? AW_Q_NODATA
                 : u < 8  ? AW_Q_SHADOW
                 : u < 10 ? AW_Q_OUTSIDE
                          : AW_Q_VALID;
    }
}

static void
dilate_should_match_the_definition_with_one_and_four_threads(void **state)
{
    (void)state;
    enum { ROWS = 37, COLS = 53 };
    static const int radii[] = {1, 2, 3, 4, 7, 40};
    uint8_t src[ROWS * COLS], want[ROWS * COLS];
    uint8_t one[ROWS * COLS], four[ROWS * COLS], tmp[ROWS * COLS];
    random_classes(src, ROWS * COLS, 12345);
    const int saved = omp_get_max_threads();
    for (size_t k = 0; k < sizeof radii / sizeof radii[0]; k++) {
        dilate_reference(src, want, ROWS, COLS, AW_Q_CLOUD, radii[k]);
        memcpy(one, src, sizeof src);
        memcpy(four, src, sizeof src);
        omp_set_num_threads(1);
        aw_dilate_class(one, tmp, ROWS, COLS, AW_Q_CLOUD, radii[k]);
        omp_set_num_threads(4);
        aw_dilate_class(four, tmp, ROWS, COLS, AW_Q_CLOUD, radii[k]);
        assert_memory_equal(one, want, sizeof want);
        assert_memory_equal(four, want, sizeof want);
    }
    omp_set_num_threads(saved);
}

static void dilate_should_handle_radii_beyond_the_8_bit_distance(void **state)
{
    (void)state;
    /* One row of 600, cloud at x = 0, r = 300: x = 1..300 join (dx <= 300),
     * x = 301..599 stay VALID. */
    uint8_t row[600], tmp[600];
    memset(row, AW_Q_VALID, sizeof row);
    row[0] = AW_Q_CLOUD;
    aw_dilate_class(row, tmp, 1, 600, AW_Q_CLOUD, 300);
    for (size_t x = 0; x < 600; x++)
        assert_int_equal(row[x], x <= 300 ? AW_Q_CLOUD : AW_Q_VALID);

    /* 2-D against the definition, radii around the 254/255 switch. */
    enum { ROWS = 9, COLS = 700 };
    static uint8_t src[ROWS * COLS], want[ROWS * COLS];
    static uint8_t got[ROWS * COLS], tmp2[ROWS * COLS];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = AW_Q_VALID;
    src[4 * COLS + 10] = AW_Q_CLOUD;
    src[1 * COLS + 690] = AW_Q_CLOUD;
    src[4 * COLS + 200] = AW_Q_NODATA;
    static const int radii[] = {254, 255, 256, 340};
    for (size_t k = 0; k < sizeof radii / sizeof radii[0]; k++) {
        dilate_reference(src, want, ROWS, COLS, AW_Q_CLOUD, radii[k]);
        memcpy(got, src, sizeof src);
        aw_dilate_class(got, tmp2, ROWS, COLS, AW_Q_CLOUD, radii[k]);
        assert_memory_equal(got, want, sizeof want);
    }
    /* A radius far beyond the grid covers all of it. */
    memcpy(got, src, sizeof src);
    aw_dilate_class(got, tmp2, ROWS, COLS, AW_Q_CLOUD, 2000000000);
    for (size_t i = 0; i < sizeof got; i++)
        assert_int_equal(got[i],
                         i == 4 * COLS + 200 ? AW_Q_NODATA : AW_Q_CLOUD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            qa_policy_default_should_mask_all_flags_and_no_confidence),
        cmocka_unit_test(landsat_qa_should_classify_the_real_scene_codes),
        cmocka_unit_test(
            landsat_qa_should_give_nodata_for_values_that_are_not_codes),
        cmocka_unit_test(
            landsat_qa_should_use_the_default_policy_when_given_null),
        cmocka_unit_test(landsat_qa_should_leave_pixels_that_are_not_valid),
        cmocka_unit_test(
            landsat_qa_should_keep_snow_when_the_snow_flag_is_not_masked),
        cmocka_unit_test(landsat_qa_should_unmask_the_dilated_cloud_when_asked),
        cmocka_unit_test(landsat_qa_should_apply_confidence_thresholds),
        cmocka_unit_test(landsat_qa_should_not_depend_on_the_thread_count),
        cmocka_unit_test(
            scl_should_classify_every_class_with_the_default_policy),
        cmocka_unit_test(scl_should_mask_seven_and_keep_eleven_when_asked),
        cmocka_unit_test(
            scl_should_give_nodata_for_class_zero_and_for_non_classes),
        cmocka_unit_test(scl_should_leave_pixels_that_are_not_valid),
        cmocka_unit_test(
            dilate_should_grow_one_pixel_into_the_13_pixel_disk_of_radius_2),
        cmocka_unit_test(dilate_should_give_the_29_pixel_disk_of_radius_3),
        cmocka_unit_test(dilate_should_not_overwrite_other_classes),
        cmocka_unit_test(dilate_should_clip_the_disk_at_the_edges),
        cmocka_unit_test(dilate_should_grow_from_the_original_pixels_only),
        cmocka_unit_test(dilate_should_do_nothing_for_a_radius_of_zero_or_less),
        cmocka_unit_test(
            dilate_should_match_the_definition_with_one_and_four_threads),
        cmocka_unit_test(dilate_should_handle_radii_beyond_the_8_bit_distance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

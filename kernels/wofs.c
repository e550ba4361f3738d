/* Water Observations from Space (WOfS): N. Mueller's CART decision tree and
 * the per-observation flag byte (DOMAIN.md §3.3).
 *
 * References: Mueller et al. 2016, Remote Sensing of Environment 174,
 * 341-352; GeoscienceAustralia/wofs wofs/classifier.py (the tree, as
 * transcribed by J. Sixsmith), wofs/constants.py (flag bits), wofs/wofls.py
 * (nodata forced to exactly 1).
 *
 * Bands in reflectance x 10000, TM-ordered: b1 blue, b2 green, b3 red,
 * b4 nir, b5 swir1, b7 swir2; ratios ndi_ab = (b_a - b_b) / (b_a + b_b):
 *   ndi_52 = (b5 - b2) / (b5 + b2)   (= -MNDWI)
 *   ndi_43 = (b4 - b3) / (b4 + b3)   (= NDVI)
 *   ndi_72 = (b7 - b2) / (b7 + b2)
 * Tree (node numbers of classifier.py; WET 128, DRY 0):
 *   ndi_52 <= -0.01:
 *     b1 > 2083.5                          N3  DRY
 *     b7 <= 323.5:  ndi_43 <= 0.61         N6  WET  else N7  DRY
 *     b1 > 1400.5:  ndi_43 <= -0.01        N10 WET  else N11 DRY
 *     ndi_72 > -0.23: b1 <= 379            N14 WET  else N15 DRY
 *     ndi_43 <= 0.22                       N17 WET
 *     b1 <= 473                            N19 WET  else N20 DRY
 *   -0.01 < ndi_52 <= 0.23:
 *     b1 > 334.5                           N23 DRY
 *     ndi_43 > 0.54                        N25 DRY
 *     ndi_52 <= 0.12                       N27 WET
 *     b3 <= 364.5:  b1 <= 129.5            N31 WET  else N32 DRY
 *     b1 <= 300.5                          N33 WET  else N34 DRY
 *   ndi_52 > 0.23:
 *     ndi_52 > 0.34                        N36 DRY
 *     b1 > 249.5                           N38 DRY
 *     ndi_43 > 0.45                        N40 DRY
 *     b3 > 364.5                           N42 DRY
 *     b1 <= 129.5                          N44 WET  else N45 DRY
 * Like classifier.py (numpy float32), everything is float32 and every split
 * is the test `x <= t` with the "greater" branch taken when it is false, so
 * a NaN ratio (0 / 0) follows the same branches as in numpy, and x / 0
 * gives +-Inf as numpy does (written out, not left to a division by zero).
 *
 * Flag byte (wofs/constants.py): 1 nodata, 2 non-contiguous, 4 low solar
 * angle, 8 terrain shadow, 16 high slope, 32 cloud shadow, 64 cloud,
 * 128 water. aw_wofs writes, first that applies: OUTSIDE/NODATA (or a
 * value that is no quality class) -> 1; a band not finite -> 2; CLOUD -> 64;
 * SHADOW -> 32; SNOW/MASKED -> 2; VALID -> the tree on bands x 10000.
 * OpenMP-parallel over fixed chunks of pixels; each pixel is independent,
 * so the result does not depend on the thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "aralwatch/quality.h"

#define WOFS_CHUNK ((size_t)65536)
#define WET        ((uint8_t)AW_WOFS_WET)
#define DRY        ((uint8_t)0)

/* (a - b) / (a + b) with IEEE semantics spelled out for a zero sum:
 * +Inf, -Inf, or NaN for 0 / 0. */
static inline float ndi(float a, float b)
{
    float num = a - b, den = a + b;
    if (den != 0.0f)
        return num / den;
    return num > 0.0f ? INFINITY : num < 0.0f ? -INFINITY : NAN;
}

uint8_t aw_wofs_tree(float b1, float b2, float b3, float b4, float b5, float b7)
{
    const float ndi_52 = ndi(b5, b2);
    const float ndi_43 = ndi(b4, b3);
    const float ndi_72 = ndi(b7, b2);

    if (ndi_52 <= -0.01f) { /* N2 */
        if (!(b1 <= 2083.5f))
            return DRY; /* N3 */
        if (b7 <= 323.5f)
            return ndi_43 <= 0.61f ? WET : DRY; /* N6 / N7 */
        if (!(b1 <= 1400.5f))
            return ndi_43 <= -0.01f ? WET : DRY; /* N10 / N11 */
        if (!(ndi_72 <= -0.23f))
            return b1 <= 379.0f ? WET : DRY; /* N14 / N15 */
        if (ndi_43 <= 0.22f)
            return WET;                  /* N17 */
        return b1 <= 473.0f ? WET : DRY; /* N19 / N20 */
    }
    if (ndi_52 <= 0.23f) { /* N22 */
        if (!(b1 <= 334.5f))
            return DRY; /* N23 */
        if (!(ndi_43 <= 0.54f))
            return DRY; /* N25 */
        if (ndi_52 <= 0.12f)
            return WET; /* N27 */
        if (b3 <= 364.5f)
            return b1 <= 129.5f ? WET : DRY; /* N31 / N32 */
        return b1 <= 300.5f ? WET : DRY;     /* N33 / N34 */
    }
    /* N35 */
    if (!(ndi_52 <= 0.34f))
        return DRY; /* N36 */
    if (!(b1 <= 249.5f))
        return DRY; /* N38 */
    if (!(ndi_43 <= 0.45f))
        return DRY; /* N40 */
    if (!(b3 <= 364.5f))
        return DRY;                  /* N42 */
    return b1 <= 129.5f ? WET : DRY; /* N44 / N45 */
}

static inline int fin(float x)
{
    return isfinite(x) != 0;
}

static inline uint8_t wofs_px(float b, float g, float r, float n, float s1,
                              float s2, unsigned q)
{
    if (q == AW_Q_OUTSIDE || q == AW_Q_NODATA || q >= AW_Q_COUNT)
        return AW_WOFS_NODATA;
    if (!(fin(b) && fin(g) && fin(r) && fin(n) && fin(s1) && fin(s2)))
        return AW_WOFS_NONCONTIGUOUS;
    switch (q) {
    case AW_Q_CLOUD:
        return AW_WOFS_CLOUD;
    case AW_Q_SHADOW:
        return AW_WOFS_CLOUD_SHADOW;
    case AW_Q_VALID: {
        /* Outside 0..10000 a band is no observation: GA's Collection 2
         * scaling makes it nodata (DOMAIN.md §2.1), so the pixel is
         * non-contiguous; negative SWIR passed as WET. */
        const float v[6] = {b * 10000.0f, g * 10000.0f,  r * 10000.0f,
                            n * 10000.0f, s1 * 10000.0f, s2 * 10000.0f};
        for (int k = 0; k < 6; k++)
            if (!(v[k] >= 0.0f && v[k] <= 10000.0f))
                return AW_WOFS_NONCONTIGUOUS;
        return aw_wofs_tree(v[0], v[1], v[2], v[3], v[4], v[5]);
    }
    default: /* SNOW, MASKED */
        return AW_WOFS_NONCONTIGUOUS;
    }
}

static void wofs_run(const float *const bands[AW_BAND_COUNT],
                     const uint8_t *qcls, uint8_t *flags, size_t i0, size_t n)
{
    const float *blue = bands[AW_BAND_BLUE], *green = bands[AW_BAND_GREEN];
    const float *red = bands[AW_BAND_RED], *nir = bands[AW_BAND_NIR];
    const float *swir1 = bands[AW_BAND_SWIR1], *swir2 = bands[AW_BAND_SWIR2];
    for (size_t i = i0; i < i0 + n; i++) {
        unsigned q = qcls != NULL ? qcls[i] : (unsigned)AW_Q_VALID;
        flags[i] =
            wofs_px(blue[i], green[i], red[i], nir[i], swir1[i], swir2[i], q);
    }
}

void aw_wofs(const float *const bands[AW_BAND_COUNT], const uint8_t *qcls,
             uint8_t *flags, size_t n)
{
    for (int b = 0; b < AW_BAND_COUNT; b++) {
        if (bands[b] == NULL) {
            /* A missing band is a band that is not finite everywhere. */
            for (size_t i = 0; i < n; i++) {
                unsigned q = qcls != NULL ? qcls[i] : (unsigned)AW_Q_VALID;
                flags[i] = wofs_px(NAN, NAN, NAN, NAN, NAN, NAN, q);
            }
            return;
        }
    }
    size_t nchunks = (n + WOFS_CHUNK - 1) / WOFS_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * WOFS_CHUNK;
        size_t len = n - i0 < WOFS_CHUNK ? n - i0 : WOFS_CHUNK;
        wofs_run(bands, qcls, flags, i0, len);
    }
}

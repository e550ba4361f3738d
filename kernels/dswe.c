/* USGS Dynamic Surface Water Extent (DSWE): five spectral tests, the
 * 32-entry recode table, QA masking and the terrain filter (DOMAIN.md §3.2).
 *
 * References: Jones 2015 / 2019 (DSWE), USGS LSDS-2084 Landsat C2 L3 DSWE
 * ADD; ESPA C implementation (klange77/espa-surface-water-extent dswe/src,
 * J.W. Jones & M.J. Starbuck); thresholds identical in NASA/JPL OPERA
 * DSWx-HLS (nasa/PROTEUS dswx_hls_constants.py).
 *
 * With B G R N S1 S2 the reflectance x 10000 (blue, green, red, nir,
 * swir1, swir2):
 *   MNDWI = (G - S1) / (G + S1)        NDVI  = (N - R) / (N + R)
 *   MBSRV = G + R                      MBSRN = N + S1
 *   AWEsh = B + 2.5 G - 1.5 MBSRN - 0.25 S2
 *   t1 (ones)      MNDWI > 0.0124                             (wigt)
 *   t2 (tens)      MBSRV > MBSRN
 *   t3 (hundreds)  AWEsh > 0                                  (awgt)
 *   t4 (thousands) MNDWI > -0.44 and S1 < 900 and N < 1500
 *                  and NDVI < 0.7                             (PSWT-1)
 *   t5 (ten-thousands) MNDWI > -0.5 and B < 1000 and S1 < 3000
 *                  and S2 < 1000 and N < 2500                 (PSWT-2)
 * index = t1 | t2 << 1 | t3 << 2 | t4 << 3 | t5 << 4, class =
 * aw_dswe_lut[index]; equivalently with n tests passed: n >= 4 -> 1,
 * n = 3 -> 2, n = 2 -> (t4 and t5 ? 3 : 4), n = 1 -> (t5 ? 4 : 0),
 * n = 0 -> 0.
 *
 * A ratio whose denominator is <= 0 (zero, or negative reflectance) is
 * undefined, and every test that uses it is false: MNDWI for t1, t4, t5 and
 * NDVI for t4. This is the nodata rule of the index kernels (kernels.h); the
 * ESPA code would divide and compare an Inf or NaN instead.
 *
 * Arithmetic is float32; the absolute thresholds are compared with the
 * reflectance multiplied by 10000.0f, so a value within a float rounding of
 * a threshold (e.g. swir1 0.09 against 900) may land on either side.
 *
 * Terrain filter (band "dswe_pshsccss"): percent slope >= 30 zeroes classes
 * 1 and 2, >= 20 zeroes 3, >= 10 zeroes 4; then hillshade <= 110 (0..255)
 * zeroes any water class 1-4 (ESPA: water needs hillshade > 110). Classes
 * 0, 9 and 255 are never changed; NaN slope or hillshade leaves the class.
 *
 * aw_dswe and aw_dswe_terrain are OpenMP-parallel over fixed chunks of
 * pixels; each pixel is independent, so the result does not depend on the
 * thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "aralwatch/quality.h"

#define DSWE_CHUNK ((size_t)65536)

const uint8_t aw_dswe_lut[32] = {
    0, 0, 0, 4, 0, 4, 4, 2, /* t5 = 0, t4 = 0 */
    0, 4, 4, 2, 4, 2, 2, 1, /* t5 = 0, t4 = 1 */
    4, 4, 4, 2, 4, 2, 2, 1, /* t5 = 1, t4 = 0 */
    3, 2, 2, 1, 2, 1, 1, 1  /* t5 = 1, t4 = 1 */
};

static inline unsigned dswe_bits(float blue, float green, float red, float nir,
                                 float swir1, float swir2)
{
    /* Whole reflectance x 10000, as ESPA's integer SR: a band on a
     * threshold is on it (1000 * 1e-4f * 10000 is 999.99994 in float32). */
    const float b = rintf(blue * 10000.0f), g = rintf(green * 10000.0f);
    const float r = rintf(red * 10000.0f), n = rintf(nir * 10000.0f);
    const float s1 = rintf(swir1 * 10000.0f), s2 = rintf(swir2 * 10000.0f);

    const float dm = g + s1, dv = n + r;
    const int mok = dm > 0.0f, vok = dv > 0.0f;
    /* Divide by 1 where undefined: the value is then ignored, and no
     * division by zero happens. */
    const float mndwi = (g - s1) / (mok ? dm : 1.0f);
    const float ndvi = (n - r) / (vok ? dv : 1.0f);
    const float mbsrv = g + r, mbsrn = n + s1;
    const float awesh = b + 2.5f * g - 1.5f * mbsrn - 0.25f * s2;

    unsigned t1 = (unsigned)(mok && mndwi > 0.0124f);
    unsigned t2 = (unsigned)(mbsrv > mbsrn);
    unsigned t3 = (unsigned)(awesh > 0.0f);
    unsigned t4 = (unsigned)(mok && vok && mndwi > -0.44f && s1 < 900.0f &&
                             n < 1500.0f && ndvi < 0.7f);
    unsigned t5 = (unsigned)(mok && mndwi > -0.5f && b < 1000.0f &&
                             s1 < 3000.0f && s2 < 1000.0f && n < 2500.0f);
    return t1 | t2 << 1 | t3 << 2 | t4 << 3 | t5 << 4;
}

unsigned aw_dswe_tests(float blue, float green, float red, float nir,
                       float swir1, float swir2)
{
    return dswe_bits(blue, green, red, nir, swir1, swir2);
}

static inline int fin(float x)
{
    return isfinite(x) != 0;
}

/* One pixel; q is the quality class (AW_Q_VALID when qcls is NULL). */
static inline uint8_t dswe_px(float b, float g, float r, float n, float s1,
                              float s2, unsigned q)
{
    switch (q) {
    case AW_Q_VALID:
        if (!(fin(b) && fin(g) && fin(r) && fin(n) && fin(s1) && fin(s2)))
            return AW_DSWE_FILL;
        return aw_dswe_lut[dswe_bits(b, g, r, n, s1, s2)];
    case AW_Q_CLOUD:
    case AW_Q_SHADOW:
    case AW_Q_SNOW:
    case AW_Q_MASKED:
        return AW_DSWE_MASKED;
    default: /* OUTSIDE, NODATA, or not a quality class */
        return AW_DSWE_FILL;
    }
}

static void dswe_run(const float *const bands[AW_BAND_COUNT],
                     const uint8_t *qcls, uint8_t *out, size_t i0, size_t n)
{
    const float *blue = bands[AW_BAND_BLUE], *green = bands[AW_BAND_GREEN];
    const float *red = bands[AW_BAND_RED], *nir = bands[AW_BAND_NIR];
    const float *swir1 = bands[AW_BAND_SWIR1], *swir2 = bands[AW_BAND_SWIR2];
    for (size_t i = i0; i < i0 + n; i++) {
        unsigned q = qcls != NULL ? qcls[i] : (unsigned)AW_Q_VALID;
        out[i] =
            dswe_px(blue[i], green[i], red[i], nir[i], swir1[i], swir2[i], q);
    }
}

/* Band pointers all present? Without a band nothing can be tested. */
static int have_all_bands(const float *const bands[AW_BAND_COUNT])
{
    for (int b = 0; b < AW_BAND_COUNT; b++)
        if (bands[b] == NULL)
            return 0;
    return 1;
}

void aw_dswe(const float *const bands[AW_BAND_COUNT], const uint8_t *qcls,
             uint8_t *out, size_t n)
{
    if (!have_all_bands(bands)) {
        /* As if every band were NaN: VALID -> 255, masked -> 9. */
        for (size_t i = 0; i < n; i++) {
            unsigned q = qcls != NULL ? qcls[i] : (unsigned)AW_Q_VALID;
            out[i] = dswe_px(NAN, NAN, NAN, NAN, NAN, NAN, q);
        }
        return;
    }
    size_t nchunks = (n + DSWE_CHUNK - 1) / DSWE_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * DSWE_CHUNK;
        size_t len = n - i0 < DSWE_CHUNK ? n - i0 : DSWE_CHUNK;
        dswe_run(bands, qcls, out, i0, len);
    }
}

/* ---- Terrain filter ---- */

static inline uint8_t terrain_px(uint8_t c, float slope, float hs)
{
    /* NaN compares false everywhere below, leaving the class. */
    switch (c) {
    case AW_DSWE_HIGH:
    case AW_DSWE_MODERATE:
        if (slope >= 30.0f)
            return AW_DSWE_NOT_WATER;
        break;
    case AW_DSWE_WETLAND:
        if (slope >= 20.0f)
            return AW_DSWE_NOT_WATER;
        break;
    case AW_DSWE_LOW:
        if (slope >= 10.0f)
            return AW_DSWE_NOT_WATER;
        break;
    default: /* 0 not water, 9 masked, 255 fill: never changed */
        return c;
    }
    return hs <= 110.0f ? (uint8_t)AW_DSWE_NOT_WATER : c;
}

static void terrain_run(uint8_t *cls, const float *slope, const float *hs,
                        size_t i0, size_t n)
{
    for (size_t i = i0; i < i0 + n; i++) {
        float s = slope != NULL ? slope[i] : NAN;
        float h = hs != NULL ? hs[i] : NAN;
        cls[i] = terrain_px(cls[i], s, h);
    }
}

void aw_dswe_terrain(uint8_t *cls, const float *slope_pct,
                     const float *hillshade, size_t n)
{
    size_t nchunks = (n + DSWE_CHUNK - 1) / DSWE_CHUNK;
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * DSWE_CHUNK;
        size_t len = n - i0 < DSWE_CHUNK ? n - i0 : DSWE_CHUNK;
        terrain_run(cls, slope_pct, hillshade, i0, len);
    }
}

/* Spectral indices over rows and images of float32 reflectance (0..1 scale).
 *
 * Formulas (G green, R red, N nir, B blue, S1 swir1, S2 swir2):
 *   NDWI     = (G - N) / (G + N)                      McFeeters 1996
 *   MNDWI    = (G - S1) / (G + S1)                    Xu 2006
 *   NDVI     = (N - R) / (N + R)                      Rouse et al. 1974
 *   NDMI     = (N - S1) / (N + S1)                    Gao 1996; Wilson & Sader
 *                                                     2002
 *   EVI      = g (N - R) / (N + C1 R - C2 B + L)      Huete et al. 2002;
 *              g 2.5, C1 6.0, C2 7.5, L 1.0
 *   SAVI     = (1 + L) (N - R) / (N + R + L), L 0.5   Huete 1988
 *   AWEI_nsh = 4 (G - S1) - (0.25 N + 2.75 S2)        Feyisa et al. 2014 eq. 2
 *   AWEI_sh  = B + 2.5 G - 1.5 (N + S1) - 0.25 S2     Feyisa et al. 2014 eq. 3
 * Two published AWEI_nsh forms are wrong and must not be copied (DOMAIN.md
 * §3.1): Awesome Spectral Indices has 4 (G - S1) - 0.25 N + 2.75 S2 and DEA
 * bandindices.py has 4 (G - S1) - (0.25 N * 2.75 S2). With G 0.08, N 0.05,
 * S1 0.03, S2 0.02 the correct value is 0.1325 (ASI gives 0.2425, DEA
 * 0.19725); tests/unit/test_indices.c pins this.
 *
 * Nodata policy: out[i] = NaN where
 *   - valid != NULL and valid[i] == 0,
 *   - any band the index uses is not finite (NaN, +Inf, -Inf),
 *   - a normalised-difference denominator a + b <= 0 (only possible with
 *     negative reflectance),
 *   - an EVI or SAVI denominator is exactly 0,
 *   - the result is not finite (overflow, division by a tiny denominator).
 * Otherwise negative reflectance is computed as is (no clamping).
 * If a band the index needs is NULL the whole row is NaN.
 *
 * Arithmetic is float32 throughout, evaluated left to right as written here
 * (C17 without -ffast-math: no reassociation, no FMA contraction in ISO
 * mode), so the vectorised loop and its scalar remainder give identical bits
 * and aw_index_image equals aw_index_row row by row for any thread count.
 * The switch on the index is outside the pixel loop; each pixel loop is
 * branch-free (a select) and marked `omp simd` so GCC vectorises it at -O2. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "aralwatch/kernels.h"

#define BIT(b) (1u << (b))

/* One row per aw_index, in enum order (designated initialisers keep the
 * table and the enum in step). EVI and SAVI formulas show the defaults of
 * aw_index_params_default(). */
static const aw_index_info index_table[AW_IDX_COUNT] = {
    [AW_IDX_NDWI] = {"ndwi",
                     "Normalized Difference Water Index (McFeeters 1996)",
                     "(green - nir) / (green + nir)",
                     BIT(AW_BAND_GREEN) | BIT(AW_BAND_NIR), -1.0f, 1.0f},
    [AW_IDX_MNDWI] = {"mndwi",
                      "Modified Normalized Difference Water Index (Xu 2006)",
                      "(green - swir1) / (green + swir1)",
                      BIT(AW_BAND_GREEN) | BIT(AW_BAND_SWIR1), -1.0f, 1.0f},
    [AW_IDX_NDVI] = {"ndvi",
                     "Normalized Difference Vegetation Index (Rouse et al. "
                     "1974)",
                     "(nir - red) / (nir + red)",
                     BIT(AW_BAND_NIR) | BIT(AW_BAND_RED), -1.0f, 1.0f},
    [AW_IDX_NDMI] = {"ndmi",
                     "Normalized Difference Moisture Index (Gao 1996; Wilson "
                     "& Sader 2002)",
                     "(nir - swir1) / (nir + swir1)",
                     BIT(AW_BAND_NIR) | BIT(AW_BAND_SWIR1), -1.0f, 1.0f},
    [AW_IDX_EVI] = {"evi", "Enhanced Vegetation Index (Huete et al. 2002)",
                    "2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)",
                    BIT(AW_BAND_NIR) | BIT(AW_BAND_RED) | BIT(AW_BAND_BLUE),
                    -2.0f, 2.0f},
    [AW_IDX_SAVI] = {"savi", "Soil Adjusted Vegetation Index (Huete 1988)",
                     "1.5 * (nir - red) / (nir + red + 0.5)",
                     BIT(AW_BAND_NIR) | BIT(AW_BAND_RED), -1.5f, 1.5f},
    [AW_IDX_AWEI_NSH] = {"awei_nsh",
                         "Automated Water Extraction Index, no shadow "
                         "(Feyisa et al. 2014)",
                         "4 * (green - swir1) - (0.25 * nir + 2.75 * swir2)",
                         BIT(AW_BAND_GREEN) | BIT(AW_BAND_NIR) |
                             BIT(AW_BAND_SWIR1) | BIT(AW_BAND_SWIR2),
                         -4.0f, 4.0f},
    [AW_IDX_AWEI_SH] = {"awei_sh",
                        "Automated Water Extraction Index, shadow (Feyisa et "
                        "al. 2014)",
                        "blue + 2.5 * green - 1.5 * (nir + swir1) - 0.25 * "
                        "swir2",
                        BIT(AW_BAND_BLUE) | BIT(AW_BAND_GREEN) |
                            BIT(AW_BAND_NIR) | BIT(AW_BAND_SWIR1) |
                            BIT(AW_BAND_SWIR2),
                        -4.0f, 4.0f},
};

const aw_index_info *aw_index_get(aw_index idx)
{
    /* Out of range is a caller error; NULL rather than reading past the
     * table. */
    return (unsigned)idx < AW_IDX_COUNT ? &index_table[idx] : NULL;
}

int aw_index_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < AW_IDX_COUNT; i++)
        if (strcmp(name, index_table[i].name) == 0)
            return i;
    return -1;
}

void aw_index_params_default(aw_index_params *p)
{
    p->evi_g = 2.5f;
    p->evi_c1 = 6.0f;
    p->evi_c2 = 7.5f;
    p->evi_l = 1.0f;
    p->savi_l = 0.5f;
}

/* ---- Per-pixel formulas: return the value or NaN, without branches ---- */

static inline int fin(float x)
{
    return isfinite(x) != 0;
}

/* (a - b) / (a + b); NaN where a + b <= 0. */
static inline float nd_px(float a, float b)
{
    float s = a + b;
    float r = (a - b) / s;
    int ok = fin(a) & fin(b) & (s > 0.0f) & fin(r);
    return ok ? r : NAN;
}

static inline float evi_px(float nir, float red, float blue, float g, float c1,
                           float c2, float l)
{
    float d = nir + c1 * red - c2 * blue + l;
    float r = g * (nir - red) / d;
    int ok = fin(nir) & fin(red) & fin(blue) & (d != 0.0f) & fin(r);
    return ok ? r : NAN;
}

static inline float savi_px(float nir, float red, float l)
{
    float d = nir + red + l;
    float r = (1.0f + l) * (nir - red) / d;
    int ok = fin(nir) & fin(red) & (d != 0.0f) & fin(r);
    return ok ? r : NAN;
}

static inline float awei_nsh_px(float g, float nir, float s1, float s2)
{
    float r = 4.0f * (g - s1) - (0.25f * nir + 2.75f * s2);
    int ok = fin(g) & fin(nir) & fin(s1) & fin(s2) & fin(r);
    return ok ? r : NAN;
}

static inline float awei_sh_px(float b, float g, float nir, float s1, float s2)
{
    float r = b + 2.5f * g - 1.5f * (nir + s1) - 0.25f * s2;
    int ok = fin(b) & fin(g) & fin(nir) & fin(s1) & fin(s2) & fin(r);
    return ok ? r : NAN;
}

/* ---- Row loops: one per formula family, valid == NULL split outside ---- */

static void nd_row(const float *restrict a, const float *restrict b,
                   const uint8_t *restrict valid, float *restrict out, size_t n)
{
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = nd_px(a[i], b[i]);
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float r = nd_px(a[i], b[i]);
            out[i] = valid[i] ? r : NAN;
        }
    }
}

static void evi_row(const float *restrict nir, const float *restrict red,
                    const float *restrict blue, const uint8_t *restrict valid,
                    float *restrict out, size_t n, const aw_index_params *p)
{
    const float g = p->evi_g, c1 = p->evi_c1, c2 = p->evi_c2, l = p->evi_l;
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = evi_px(nir[i], red[i], blue[i], g, c1, c2, l);
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float r = evi_px(nir[i], red[i], blue[i], g, c1, c2, l);
            out[i] = valid[i] ? r : NAN;
        }
    }
}

static void savi_row(const float *restrict nir, const float *restrict red,
                     const uint8_t *restrict valid, float *restrict out,
                     size_t n, float l)
{
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = savi_px(nir[i], red[i], l);
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float r = savi_px(nir[i], red[i], l);
            out[i] = valid[i] ? r : NAN;
        }
    }
}

static void awei_nsh_row(const float *restrict g, const float *restrict nir,
                         const float *restrict s1, const float *restrict s2,
                         const uint8_t *restrict valid, float *restrict out,
                         size_t n)
{
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = awei_nsh_px(g[i], nir[i], s1[i], s2[i]);
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float r = awei_nsh_px(g[i], nir[i], s1[i], s2[i]);
            out[i] = valid[i] ? r : NAN;
        }
    }
}

static void awei_sh_row(const float *restrict b, const float *restrict g,
                        const float *restrict nir, const float *restrict s1,
                        const float *restrict s2, const uint8_t *restrict valid,
                        float *restrict out, size_t n)
{
    if (valid == NULL) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = awei_sh_px(b[i], g[i], nir[i], s1[i], s2[i]);
    }
    else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float r = awei_sh_px(b[i], g[i], nir[i], s1[i], s2[i]);
            out[i] = valid[i] ? r : NAN;
        }
    }
}

static void fill_nan(float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NAN;
}

/* 1 when every band in the index's mask has a row pointer. */
static int have_bands(aw_index idx, const float *const bands[AW_BAND_COUNT])
{
    unsigned need = index_table[idx].bands;
    for (int b = 0; b < AW_BAND_COUNT; b++)
        if ((need & BIT(b)) && bands[b] == NULL)
            return 0;
    return 1;
}

void aw_index_row(aw_index idx, const float *const bands[AW_BAND_COUNT],
                  const uint8_t *valid, float *out, size_t n,
                  const aw_index_params *p)
{
    aw_index_params defaults;
    if (p == NULL) {
        aw_index_params_default(&defaults);
        p = &defaults;
    }
    if ((unsigned)idx >= AW_IDX_COUNT || !have_bands(idx, bands)) {
        fill_nan(out, n);
        return;
    }
    const float *blue = bands[AW_BAND_BLUE];
    const float *green = bands[AW_BAND_GREEN];
    const float *red = bands[AW_BAND_RED];
    const float *nir = bands[AW_BAND_NIR];
    const float *swir1 = bands[AW_BAND_SWIR1];
    const float *swir2 = bands[AW_BAND_SWIR2];

    switch (idx) {
    case AW_IDX_NDWI:
        nd_row(green, nir, valid, out, n);
        break;
    case AW_IDX_MNDWI:
        nd_row(green, swir1, valid, out, n);
        break;
    case AW_IDX_NDVI:
        nd_row(nir, red, valid, out, n);
        break;
    case AW_IDX_NDMI:
        nd_row(nir, swir1, valid, out, n);
        break;
    case AW_IDX_EVI:
        evi_row(nir, red, blue, valid, out, n, p);
        break;
    case AW_IDX_SAVI:
        savi_row(nir, red, valid, out, n, p->savi_l);
        break;
    case AW_IDX_AWEI_NSH:
        awei_nsh_row(green, nir, swir1, swir2, valid, out, n);
        break;
    case AW_IDX_AWEI_SH:
        awei_sh_row(blue, green, nir, swir1, swir2, valid, out, n);
        break;
    case AW_IDX_COUNT:
        fill_nan(out, n);
        break;
    }
}

void aw_index_image(aw_index idx, const float *const bands[AW_BAND_COUNT],
                    const uint8_t *valid, float *out, size_t rows, size_t cols,
                    const aw_index_params *p)
{
    /* Rows are independent and each is computed by aw_index_row, so the
     * output does not depend on the thread count or the schedule. */
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        size_t off = r * cols;
        const float *row_bands[AW_BAND_COUNT];
        for (int b = 0; b < AW_BAND_COUNT; b++)
            row_bands[b] = bands[b] != NULL ? bands[b] + off : NULL;
        aw_index_row(idx, row_bands, valid != NULL ? valid + off : NULL,
                     out + off, cols, p);
    }
}

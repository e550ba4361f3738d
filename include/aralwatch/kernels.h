/* Pixel kernels: pure functions over row or image buffers.
 *
 * Everything here depends on libc, libm and OpenMP only (STYLE.md §8): no
 * GDAL, no I/O, no allocation, no logging, no globals that change.
 *
 * Conventions shared by every kernel:
 * - Reflectance is float32 on a 0..1 scale (after the sensor's scale/offset).
 * - valid[i] is the validity mask: 0 = invalid, any non-zero = valid
 *   (the pipeline writes 255, GDAL RFC 15 style). valid may be NULL, meaning
 *   every pixel is valid.
 * - Float outputs use NaN as nodata (AW_NODATA_F32). An output pixel is NaN
 *   where valid[i] == 0, where any input band it needs is not finite, or
 *   where its denominator is zero (normalised differences: <= 0, see
 *   aw_index_row). Negative reflectance is not clamped: it is computed as is.
 * - Class outputs are uint8 with AW_CLASS_NODATA (255) as nodata. */
#ifndef ARALWATCH_KERNELS_H
#define ARALWATCH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define AW_NODATA_F32   (__builtin_nanf(""))
#define AW_CLASS_NODATA 255u

/* Water class values written by the classification kernels. */
enum { AW_WATER_NO = 0, AW_WATER_YES = 1 };

/* Reflectance band roles, in a fixed order. */
typedef enum aw_band {
    AW_BAND_BLUE = 0,
    AW_BAND_GREEN,
    AW_BAND_RED,
    AW_BAND_NIR,
    AW_BAND_SWIR1,
    AW_BAND_SWIR2,
    AW_BAND_COUNT
} aw_band;

/* Name of a band role ("blue", "green", "red", "nir", "swir1", "swir2"). */
const char *aw_band_name(aw_band b);
/* Role for a name, or -1 if the name is not a reflectance role. */
int aw_band_from_name(const char *name);

/* Spectral indices, in a fixed order (the order of outputs and of columns). */
typedef enum aw_index {
    AW_IDX_NDWI = 0, /* McFeeters 1996: (G - NIR) / (G + NIR) */
    AW_IDX_MNDWI,    /* Xu 2006: (G - SWIR1) / (G + SWIR1) */
    AW_IDX_NDVI,     /* (NIR - R) / (NIR + R) */
    AW_IDX_NDMI,     /* Gao 1996 / Wilson & Sader 2002: (NIR - SWIR1) / (NIR +
                        SWIR1) */
    AW_IDX_EVI,      /* g (N - R) / (N + C1 R - C2 B + L); 2.5, 6, 7.5, 1 */
    AW_IDX_SAVI,     /* (1 + L)(N - R) / (N + R + L); L = 0.5 */
    AW_IDX_AWEI_NSH, /* Feyisa 2014 eq. 2: 4 (G - S1) - (0.25 N + 2.75 S2) */
    AW_IDX_AWEI_SH,  /* Feyisa 2014 eq. 3: B + 2.5 G - 1.5 (N + S1) - 0.25 S2 */
    AW_IDX_COUNT
} aw_index;

/* Static description of an index: one row of the kernel table. */
typedef struct aw_index_info {
    const char *name;      /* lower-case key used in configs and file names */
    const char *long_name; /* e.g. "Modified Normalized Difference Water
                              Index (Xu 2006)" */
    const char *formula;   /* e.g. "(green - swir1) / (green + swir1)" */
    unsigned bands;        /* bit (1u << aw_band) for each band needed */
    float hist_lo;         /* histogram range for zone percentiles */
    float hist_hi;
} aw_index_info;

/* Table row for idx (idx must be < AW_IDX_COUNT). */
const aw_index_info *aw_index_get(aw_index idx);
/* Index for a name ("mndwi"), or -1 if unknown. Case-sensitive. */
int aw_index_from_name(const char *name);

/* Constants of the coefficient indices. */
typedef struct aw_index_params {
    float evi_g, evi_c1, evi_c2, evi_l; /* 2.5, 6.0, 7.5, 1.0 */
    float savi_l;                       /* 0.5 */
} aw_index_params;
void aw_index_params_default(aw_index_params *p);

/* Compute one index over one row of n pixels.
 * bands[b] points at the row of band b (may be NULL for bands the index does
 * not use). The switch on idx happens once, outside the pixel loop.
 * Normalised differences (NDWI, MNDWI, NDVI, NDMI) give NaN where a + b <= 0
 * (only possible with negative reflectance); EVI and SAVI give NaN where the
 * denominator is exactly 0; every index gives NaN where the result is not
 * finite. */
void aw_index_row(aw_index idx, const float *const bands[AW_BAND_COUNT],
                  const uint8_t *valid, float *out, size_t n,
                  const aw_index_params *p);

/* Same over an image of `rows` rows of `cols` pixels, contiguous row-major
 * buffers, OpenMP-parallel over rows. Result equals aw_index_row per row. */
void aw_index_image(aw_index idx, const float *const bands[AW_BAND_COUNT],
                    const uint8_t *valid, float *out, size_t rows, size_t cols,
                    const aw_index_params *p);

/* Threshold classification: cls[i] = AW_WATER_YES where index[i] > thr,
 * AW_WATER_NO where index[i] <= thr, AW_CLASS_NODATA where valid[i] == 0 or
 * index[i] is not finite. OpenMP-parallel over n in fixed chunks. */
void aw_classify_threshold(const float *index, const uint8_t *valid,
                           uint8_t *cls, size_t n, float thr);

/* ---- Histograms and Otsu (DOMAIN.md §3.4) ---- */

/* Fixed-bin histogram over [lo, hi]: bin k covers
 * [lo + k w, lo + (k + 1) w) with w = (hi - lo) / nbins; values < lo go to
 * bin 0 and values >= hi to bin nbins - 1. NaN/Inf and invalid pixels are
 * skipped. Counts are added to hist (not cleared). OpenMP-parallel with
 * per-thread integer histograms, so the result does not depend on the thread
 * count. */
void aw_hist_add(uint64_t *hist, int nbins, float lo, float hi, const float *v,
                 const uint8_t *valid, size_t n);

/* Otsu's threshold on a histogram: the t maximising the between-class
 * variance w0 w1 (mu0 - mu1)^2, with bin centres as values. Class 0 is bins
 * 0..k and class 1 bins k+1..nbins-1; the returned threshold is the upper
 * edge of bin k, lo + (k + 1) w. Returns 0 and sets *thr on success; returns
 * 1 (and leaves *thr alone) when the histogram is empty, or when the best
 * split leaves a class with less than min_class_frac of the pixels (the
 * caller then falls back to a fixed threshold and flags it). */
int aw_otsu_threshold(const uint64_t *hist, int nbins, float lo, float hi,
                      double min_class_frac, float *thr);

/* ---- Zone accumulators ----
 * Mergeable statistics of one variable within one zone. Sums are kept in
 * fixed point (value * 2^24, rounded, in int64) so that adding partial
 * accumulators is exact integer arithmetic: the result is bit-identical
 * whatever the number of threads, the order of merging, or (later) the MPI
 * rank layout. Quantisation error of the mean is below 3e-8. */
#define AW_ZACC_BINS     2000
#define AW_ZACC_FX_SCALE 16777216.0 /* 2^24 */

typedef struct aw_zacc {
    uint64_t n;     /* finite values added */
    int64_t sum_fx; /* sum of llrint(v * 2^24) */
    float min, max; /* +inf / -inf when n == 0 */
    float lo, hi;   /* histogram range */
    uint64_t hist[AW_ZACC_BINS];
} aw_zacc;

void aw_zacc_init(aw_zacc *a, float lo, float hi);
/* Add v[i] for every i with (mask == NULL || mask[i]) and v[i] finite.
 * Serial (callers parallelise over rows with one accumulator per thread). */
void aw_zacc_add(aw_zacc *a, const float *v, const uint8_t *mask, size_t n);
/* dst += src (same lo/hi). */
void aw_zacc_merge(aw_zacc *dst, const aw_zacc *src);
/* Mean (NaN when n == 0). */
double aw_zacc_mean(const aw_zacc *a);
/* p-th percentile, p in [0, 100], from the histogram with linear
 * interpolation inside the bin, clamped to [min, max] (NaN when n == 0).
 * Accurate to one bin width, (hi - lo) / AW_ZACC_BINS. */
double aw_zacc_percentile(const aw_zacc *a, double p);

#endif

/* Time-series kernels: multi-year baselines, water frequency and occurrence,
 * vegetation condition, standardised anomalies, and robust trends.
 *
 * Same rules as kernels.h (STYLE.md §8): libc, libm and OpenMP only; no
 * GDAL, no I/O, no allocation (callers pass work buffers), no logging, no
 * globals that change. Float outputs use NaN as nodata (AW_NODATA_F32), and
 * a float input that is NaN (or +-Inf) counts as missing.
 *
 * Per-pixel kernels (aw_stack_stats ... aw_zscore) are OpenMP-parallel over
 * fixed blocks of pixels; every pixel is computed by the same sequence of
 * operations whatever thread runs it, so results are bit-identical for any
 * thread count. aw_theil_sen and aw_trend_crossing are serial (one series per
 * call; callers parallelise over series with one work buffer per thread). */
#ifndef ARALWATCH_TIMESERIES_H
#define ARALWATCH_TIMESERIES_H

#include <stddef.h>
#include <stdint.h>

/* ---- Per-pixel statistics over a time stack (the baseline) ---- */

/* Maximum number of layers of aw_stack_stats: one layer per year of a
 * baseline period (e.g. July 1984..2047). The median needs every finite
 * value of a pixel at once, and the kernel keeps them in a fixed array of
 * AW_STACK_MAX floats on the thread's stack (no allocation). */
#define AW_STACK_MAX 64

/* Per-pixel statistics over n_layers layers of n_px pixels each.
 *
 * layers[k] points at layer k (e.g. the July mean NDVI of year k); NaN and
 * +-Inf are missing values. For each pixel i:
 *   n_valid[i] = number of finite values (0..n_layers)
 *   min, max   = smallest and largest finite value
 *   median     = middle value; for an even count the mean of the two middle
 *                values (computed in double, rounded once to float)
 *   mean       = sum / n_valid, summed in double
 *   std        = sample standard deviation, sqrt(sum (x - mean)^2 /
 *                (n_valid - 1)), two-pass in double; NaN when n_valid < 2
 * When n_valid[i] < max(min_valid, 1) every float output of the pixel is NaN
 * (n_valid[i] is still set): DOMAIN.md §4.4, "minimum valid years per pixel
 * ... else emit nodata".
 *
 * Any output pointer may be NULL: that statistic is not computed (the median
 * is the expensive one; std needs a second pass over the layers).
 * n_layers must be <= AW_STACK_MAX; with more layers (a caller error) the
 * kernel does not read the layers: n_valid is 0 and every float output NaN.
 * n_layers == 0 gives the same. OpenMP-parallel over blocks of pixels; the
 * result does not depend on the thread count. */
void aw_stack_stats(const float *const *layers, size_t n_layers, size_t n_px,
                    int min_valid, float *min, float *max, float *median,
                    float *mean, float *std, uint16_t *n_valid);

/* ---- Water frequency and occurrence (DOMAIN.md §3.3, §3.5) ---- */

/* WOfS summary frequency (odc-stats wofs plugin): freq[i] = wet[i] /
 * clear[i], a fraction 0..1, where wet and clear are counts of clear wet
 * and clear (wet + dry) observations (as float; sums over years are exact
 * below 2^24). NaN where clear[i] == 0, where either input is NaN or +-Inf,
 * and where clear[i] < 0 (not a count). wet > clear is not checked. */
void aw_wofs_frequency(const float *clear, const float *wet, size_t n,
                       float *freq);

/* Month-normalised water occurrence of the JRC Global Surface Water dataset
 * (Pekel et al. 2016, Nature 540, 418-422; DOMAIN.md §3.5): the frequency
 * of each calendar month (or other period of the year) over all years,
 * freq_by_month[m][i] = sum wet / sum clear, is averaged over the months
 * whose frequency is finite:
 *   occ[i] = (1 / M_i) sum_{m: freq_m[i] finite} freq_m[i]
 * M_i = number of such months; NaN where M_i == 0. This removes the bias of
 * dry seasons having more clear observations. occ is in the units of the
 * input (fractions 0..1 give 0..1; JRC publishes percent, x 100). Summed in
 * double in month order. n_months is any count (12 months, 36 dekads). */
void aw_occurrence_month_normalised(const float *const *freq_by_month,
                                    size_t n_months, size_t n, float *occ);

/* ---- Vegetation condition and anomalies (DOMAIN.md §4.2, §4.4) ---- */

/* Vegetation Condition Index (Kogan 1995):
 *   vci[i] = 100 (ndvi[i] - nmin[i]) / (nmax[i] - nmin[i])
 * with nmin/nmax the per-pixel minimum and maximum NDVI of the same period
 * over the baseline years (aw_stack_stats). Computed in double. NaN where
 * any input is NaN or +-Inf, or where nmax - nmin <= 1e-6 (no range, or
 * max < min).
 * NOT clamped to 0..100: a value below 0 (or above 100) means the current
 * NDVI is below the baseline minimum (above the maximum), i.e. a record;
 * that is real information for alerts, and clamping would hide it. Clamp
 * for display only. */
void aw_vci(const float *ndvi, const float *nmin, const float *nmax, size_t n,
            float *vci);

/* Standardised anomaly: z[i] = (x[i] - mean[i]) / std[i], computed in
 * double (DE Africa's monthly NDVI anomaly, DOMAIN.md §4.4). NaN where any
 * input is NaN or +-Inf, or where std[i] <= 0. */
void aw_zscore(const float *x, const float *mean, const float *std, size_t n,
               float *z);

/* ---- Robust trend: Theil-Sen slope and Mann-Kendall test ----
 *
 * References: P. K. Sen 1968, "Estimates of the regression coefficient
 * based on Kendall's tau", JASA 63, 1379-1389; R. O. Gilbert 1987,
 * "Statistical Methods for Environmental Pollution Monitoring", §16.4
 * (Mann-Kendall, ties) and §16.5 (Sen's slope and its confidence interval);
 * M. G. Kendall 1970, "Rank Correlation Methods", 4th ed., ch. 4 (Var S
 * with ties in both rankings). */

typedef struct aw_trend {
    size_t n;                  /* observations used (finite t and y) */
    double slope;              /* median of pairwise slopes (y units per t
                                  unit) */
    double intercept;          /* median of y_i - slope * t_i */
    double slope_lo, slope_hi; /* (1 - alpha) confidence interval of the
                                  slope */
    double s;                  /* Mann-Kendall S */
    double var_s;              /* Var(S) with the tie correction */
    double z;                  /* continuity-corrected Z */
    double p;                  /* two-sided p-value (normal approximation) */
    double t_centre;           /* median of the t used: the pivot of the CI
                                  lines in aw_trend_crossing */
} aw_trend;

/* Inverse of the standard normal CDF: x with Phi(x) = p. P. J. Acklam's
 * rational approximation ("An algorithm for computing the inverse normal
 * cumulative distribution function", relative error < 1.15e-9) refined by
 * one Halley step on erfc, which brings it to about 1e-15. Returns -Inf for
 * p == 0, +Inf for p == 1, NaN outside [0, 1]. */
double aw_norm_quantile(double p);

/* Theil-Sen slope with Mann-Kendall significance of the series (t_i, y_i),
 * i < n, in any order.
 *
 * Points whose t or y is NaN or +-Inf are skipped; out->n = the m points
 * used. Over the pairs i < j of used points:
 *   slopes  d_ij = (y_j - y_i) / (t_j - t_i) for the N' pairs with t_i !=
 *           t_j (pairs with equal t are skipped); slope = their median
 *           (mean of the two middle ones for even N'); intercept = median of
 *           y_i - slope t_i (the line passes through the median residual,
 *           scipy's theilslopes(method="joint")).
 *   S       = sum sgn(t_j - t_i) sgn(y_j - y_i); for distinct, increasing t
 *           this is Mann-Kendall's S = sum_{i<j} sgn(y_j - y_i), and pairs
 *           with equal t add 0.
 *   Var S   = [m(m-1)(2m+5) - sum_u u(u-1)(2u+5) - sum_v v(v-1)(2v+5)] / 18
 *             + [sum_u u(u-1)(u-2)] [sum_v v(v-1)(v-2)] / (9 m(m-1)(m-2))
 *             + [sum_u u(u-1)] [sum_v v(v-1)] / (2 m(m-1))
 *           with u the sizes of the groups of tied y and v those of tied t
 *           (Kendall 1970 ch. 4). With distinct t this is Gilbert's §16.4
 *           tie-corrected variance; the last two terms vanish.
 *   Z       = (S - 1) / sqrt(Var S) if S > 0, 0 if S == 0, (S + 1) /
 *           sqrt(Var S) if S < 0 (continuity correction); Z = 0 when Var S
 *           is 0 (all y tied).
 *   p       = erfc(|Z| / sqrt 2), two-sided.
 *   CI      (Gilbert §16.5): C = z_{1-alpha/2} sqrt(Var S),
 *           M1 = (N' - C) / 2, M2 = (N' + C) / 2; slope_lo is the M1-th and
 *           slope_hi the (M2 + 1)-th smallest of the N' slopes (1-based
 *           ranks; a fractional rank interpolates linearly between the two
 *           order statistics around it; ranks are clamped to [1, N']).
 *           NaN when alpha is not in (0, 1). scipy's theilslopes rounds the
 *           ranks instead, and leaves the t-y tie cross terms out of Var S.
 *   t_centre = median of the used t.
 *
 * work: at least n (n - 1) / 2 doubles, overwritten.
 * Returns 0 on success; -1 when fewer than 3 points are usable or no pair
 * has distinct t (out->n is set, every double field is NaN). O(n^2) time,
 * no allocation. */
int aw_theil_sen(const double *t, const double *y, size_t n, double alpha,
                 double *work, aw_trend *out);

/* When does the trend line reach a threshold (early warning)?
 *
 * Central line: y(t) = intercept + slope t. It crosses `threshold` at
 * t_cross = (threshold - intercept) / slope. Returns 1 and sets *t_cross
 * when slope != 0 and t_cross > t_from: a crossing lies ahead. Returns 0
 * ("no crossing ahead") when the slope is 0 or not finite, or t_cross <=
 * t_from (the line is already at or beyond the threshold at t_from, or it
 * is moving away from it); then *t_cross, *t_early and *t_late are NaN.
 *
 * Bounds: the confidence-interval slopes s in {slope_lo, slope_hi} pivot the
 * line at the data's centre, t_centre (median t) and y_c = intercept +
 * slope t_centre:  y_s(t) = y_c + s (t - t_centre), crossing at
 *   t_s = t_centre + (threshold - y_c) / s
 * when s points towards the threshold (s (threshold - y_c) > 0), and +Inf
 * when s is 0 or points away. *t_early = min(t_lo, t_hi), *t_late =
 * max(t_lo, t_hi): e.g. for a falling lake level, the steeper CI slope gives
 * t_early, and a CI slope >= 0 (a fall that is not significant) makes
 * t_late +Inf. t_early is not clamped to t_from: t_early <= t_from means the
 * interval admits that the threshold has already been crossed. Meant for
 * t_from >= t_centre (now, after the data's centre). *t_early and *t_late
 * are NaN when a CI slope is NaN (aw_theil_sen with alpha outside (0, 1)).
 * Any of the three output pointers may be NULL. */
int aw_trend_crossing(const aw_trend *tr, double t_from, double threshold,
                      double *t_cross, double *t_early, double *t_late);

#endif

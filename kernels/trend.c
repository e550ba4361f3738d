/* Robust trends for early warning: Theil-Sen slope, Mann-Kendall test,
 * the slope's confidence interval, and the time a trend line reaches a
 * threshold (include/aralwatch/timeseries.h has the formulas).
 *
 * References: H. Theil 1950, "A rank-invariant method of linear and
 * polynomial regression analysis", Indag. Math. 12; P. K. Sen 1968,
 * "Estimates of the regression coefficient based on Kendall's tau", JASA
 * 63(324), 1379-1389; R. O. Gilbert 1987, "Statistical Methods for
 * Environmental Pollution Monitoring", Van Nostrand Reinhold, §16.4
 * (Mann-Kendall test, tie correction) and §16.5 (Sen's estimator and its
 * nonparametric confidence interval); M. G. Kendall 1970, "Rank
 * Correlation Methods", ch. 4 (Var S with ties in both rankings; the same
 * formula as scipy.stats.kendalltau's asymptotic variance).
 *
 * Implementation: O(m^2) over the pairs of the m usable points. Slopes go
 * into the caller's work buffer and are heap-sorted (in place, no
 * allocation, O(N' log N'), deterministic); libc's qsort is avoided because
 * glibc's may call malloc. Tie groups are counted without a buffer: a point
 * opens a group when no earlier usable point has the same value. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include "aralwatch/timeseries.h"

#define SQRT_2PI 2.50662827463100050242 /* sqrt(2 pi) */
#define SQRT1_2  0.70710678118654752440 /* 1 / sqrt 2 */
#define NAN_D    ((double)NAN)
#define INF_D    ((double)INFINITY)

static int finite_d(double x)
{
    return fabs(x) <= DBL_MAX;
}

/* ---- Normal quantile (P. J. Acklam) ---- */

double aw_norm_quantile(double p)
{
    /* Coefficients of Acklam's rational approximations: the central region
     * P_LOW <= p <= 1 - P_LOW in r = (p - 0.5)^2, the lower tail in
     * q = sqrt(-2 log p). Relative error of x below 1.15e-9. */
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    const double p_low = 0.02425;

    if (!(p >= 0.0 && p <= 1.0))
        return NAN_D;
    if (p == 0.0)
        return -INF_D;
    if (p == 1.0)
        return INF_D;

    /* Work in the lower half, x <= 0, and mirror: 1 - p is exact for
     * p >= 0.5 (Sterbenz), and Phi(x) for x <= 0 has no cancellation, so
     * the refinement below stays accurate in the upper tail too. */
    const double pl = p < 0.5 ? p : 1.0 - p;
    double x;
    if (pl < p_low) {
        const double q = sqrt(-2.0 * log(pl));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q +
             c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    else {
        const double q = pl - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r +
             a[5]) *
            q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r +
             1.0);
    }

    /* One Halley step on f(x) = Phi(x) - pl (Acklam's refinement), with
     * Phi(x) = erfc(-x / sqrt 2) / 2:
     *   e = Phi(x) - pl, u = e sqrt(2 pi) exp(x^2 / 2),
     *   x <- x - u / (1 + x u / 2). */
    const double e = 0.5 * erfc(-x * SQRT1_2) - pl;
    const double u = e * SQRT_2PI * exp(0.5 * x * x);
    x = x - u / (1.0 + 0.5 * x * u);
    return p < 0.5 ? x : -x;
}

/* ---- Sorting and order statistics ---- */

static void sift_down(double *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (!(a[child] > a[root]))
            return;
        const double tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

/* Ascending heap sort (values are finite). */
static void sort_doubles(double *a, size_t n)
{
    if (n < 2)
        return;
    for (size_t s = n / 2; s-- > 0;)
        sift_down(a, s, n);
    for (size_t end = n - 1; end > 0; end--) {
        const double tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift_down(a, 0, end);
    }
}

/* Median of sorted a[0..n), n >= 1. */
static double median_sorted(const double *a, size_t n)
{
    if (n % 2 == 1)
        return a[n / 2];
    return 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

/* Value at 1-based rank r of sorted a[0..n): ranks are clamped to [1, n]
 * and a fractional rank interpolates linearly between its neighbours. */
static double order_stat(const double *a, size_t n, double r)
{
    if (isnan(r))
        return NAN_D;
    if (r <= 1.0)
        return a[0];
    if (r >= (double)n)
        return a[n - 1];
    const double fl = floor(r);
    const size_t k = (size_t)fl; /* 1 <= k < n */
    const double f = r - fl;
    if (f == 0.0)
        return a[k - 1];
    return a[k - 1] + f * (a[k] - a[k - 1]);
}

/* ---- Theil-Sen and Mann-Kendall ---- */

static int usable(const double *t, const double *y, size_t i)
{
    return finite_d(t[i]) && finite_d(y[i]);
}

static int sgn(double x)
{
    return (x > 0.0) - (x < 0.0);
}

/* Tie sums of v over the usable points, for groups of g equal values:
 * sums[0] += g (g - 1) (2 g + 5), sums[1] += g (g - 1) (g - 2),
 * sums[2] += g (g - 1). Untied values (g = 1) add 0. */
static void tie_sums(const double *v, const double *t, const double *y,
                     size_t n, double sums[3])
{
    sums[0] = sums[1] = sums[2] = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!usable(t, y, i))
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = usable(t, y, j) && v[j] == v[i];
        if (seen)
            continue; /* the group was counted at its first point */
        double g = 0.0;
        for (size_t j = i; j < n; j++)
            g += (double)(usable(t, y, j) && v[j] == v[i]);
        sums[0] += g * (g - 1.0) * (2.0 * g + 5.0);
        sums[1] += g * (g - 1.0) * (g - 2.0);
        sums[2] += g * (g - 1.0);
    }
}

int aw_theil_sen(const double *t, const double *y, size_t n, double alpha,
                 double *work, aw_trend *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += (size_t)usable(t, y, i);
    out->n = m;
    out->slope = out->intercept = NAN_D;
    out->slope_lo = out->slope_hi = NAN_D;
    out->s = out->var_s = out->z = out->p = NAN_D;
    out->t_centre = NAN_D;
    if (m < 3)
        return -1;

    /* Pairwise slopes (distinct t only) and S. */
    size_t np = 0;
    long long s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!usable(t, y, i))
            continue;
        for (size_t j = i + 1; j < n; j++) {
            if (!usable(t, y, j))
                continue;
            const double dt = t[j] - t[i], dy = y[j] - y[i];
            s += sgn(dt) * sgn(dy);
            if (dt != 0.0)
                work[np++] = dy / dt;
        }
    }
    if (np == 0)
        return -1; /* every t equal: no slope */

    /* Var S with ties in y (u) and t (v); Kendall 1970 ch. 4. */
    double ty[3], tt[3];
    tie_sums(y, t, y, n, ty);
    tie_sums(t, t, y, n, tt);
    const double md = (double)m;
    const double var_s =
        (md * (md - 1.0) * (2.0 * md + 5.0) - ty[0] - tt[0]) / 18.0 +
        ty[1] * tt[1] / (9.0 * md * (md - 1.0) * (md - 2.0)) +
        ty[2] * tt[2] / (2.0 * md * (md - 1.0));

    const double sd = (double)s;
    double z = 0.0;
    if (var_s > 0.0) {
        if (s > 0)
            z = (sd - 1.0) / sqrt(var_s);
        else if (s < 0)
            z = (sd + 1.0) / sqrt(var_s);
    }
    out->s = sd;
    out->var_s = var_s;
    out->z = z;
    out->p = erfc(fabs(z) * SQRT1_2);

    /* Slope and its confidence interval (Gilbert §16.5). */
    sort_doubles(work, np);
    out->slope = median_sorted(work, np);
    if (alpha > 0.0 && alpha < 1.0) {
        const double c = aw_norm_quantile(1.0 - 0.5 * alpha) * sqrt(var_s);
        const double nd = (double)np;
        const double m1 = 0.5 * (nd - c), m2 = 0.5 * (nd + c);
        out->slope_lo = order_stat(work, np, m1);
        out->slope_hi = order_stat(work, np, m2 + 1.0);
    }

    /* Intercept: median residual; then the median t. work holds
     * n (n - 1) / 2 >= n >= m doubles (n >= 3). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (usable(t, y, i))
            work[k++] = y[i] - out->slope * t[i];
    }
    sort_doubles(work, k);
    out->intercept = median_sorted(work, k);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (usable(t, y, i))
            work[k++] = t[i];
    }
    sort_doubles(work, k);
    out->t_centre = median_sorted(work, k);
    return 0;
}

/* ---- Threshold crossing ---- */

/* Crossing time of the line through (tm, yc) with slope s, or +Inf when s
 * is 0 or points away from the threshold; NaN when s is NaN. */
static double pivot_crossing(double s, double tm, double yc, double thr)
{
    if (isnan(s))
        return NAN_D;
    const double gap = thr - yc;
    if (!(s * gap > 0.0))
        return INF_D;
    return tm + gap / s;
}

int aw_trend_crossing(const aw_trend *tr, double t_from, double threshold,
                      double *t_cross, double *t_early, double *t_late)
{
    double tc = NAN_D, te = NAN_D, tl = NAN_D;
    int ahead = 0;
    const double b = tr->slope, a = tr->intercept;
    if (finite_d(b) && b != 0.0 && finite_d(a) && finite_d(threshold)) {
        const double c = (threshold - a) / b;
        if (c > t_from) {
            ahead = 1;
            tc = c;
            const double tm = tr->t_centre;
            const double yc = a + b * tm;
            const double t1 = pivot_crossing(tr->slope_lo, tm, yc, threshold);
            const double t2 = pivot_crossing(tr->slope_hi, tm, yc, threshold);
            if (!isnan(t1) && !isnan(t2)) {
                te = t1 < t2 ? t1 : t2;
                tl = t1 < t2 ? t2 : t1;
            }
        }
    }
    if (t_cross != NULL)
        *t_cross = tc;
    if (t_early != NULL)
        *t_early = te;
    if (t_late != NULL)
        *t_late = tl;
    return ahead;
}

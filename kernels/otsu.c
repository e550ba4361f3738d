/* Fixed-bin histograms and Otsu's threshold (DOMAIN.md §3.4).
 *
 * Histogram: bin k covers [lo + k w, lo + (k + 1) w), w = (hi - lo) / nbins;
 * values < lo go to bin 0 and values >= hi to bin nbins - 1 (hist_bin.h).
 * NaN, +-Inf and invalid pixels are skipped; counts are added to hist.
 *
 * Otsu (Otsu 1979, "A threshold selection method from gray-level
 * histograms", IEEE SMC-9(1)): with bin centres x_i = lo + (i + 1/2) w and
 * counts c_i, N = sum c_i, split after bin k (class 0 = bins 0..k, class 1 =
 * bins k+1..nbins-1):
 *   w0 = sum_{i<=k} c_i / N,          w1 = 1 - w0
 *   mu0 = sum_{i<=k} c_i x_i / (w0 N), mu1 = sum_{i>k} c_i x_i / (w1 N)
 *   sigma_b^2(k) = w0 w1 (mu0 - mu1)^2
 * The threshold is the upper edge of the best bin k, lo + (k + 1) w.
 * Everything is computed in double from integer cumulative counts.
 *
 * Ties: the first (lowest) k reaching the maximum wins (strict > while
 * scanning up). Across a run of empty bins the cumulative sums do not
 * change, so every k in the run has bit-identical sigma_b^2 and the split
 * goes right after the last occupied bin of class 0, i.e. at the lower side
 * of the gap, not its middle.
 *
 * Failure (returns 1, *thr untouched): nbins < 2, an empty histogram, no
 * split with two non-empty classes (all pixels in one bin; sigma_b^2 = 0 for
 * every k), or a best split whose smaller class holds less than
 * min_class_frac of the pixels (the caller then uses a fixed threshold and
 * flags it). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "aralwatch/kernels.h"
#include "hist_bin.h"

/* aw_hist_add gives each thread a private histogram on its own stack and
 * merges them with integer additions (exact, so the result does not depend
 * on the thread count or merge order). The private array is fixed-size:
 * HIST_MAX_LOCAL_BINS uint64 = 32 KiB of stack per thread. Histograms with
 * more bins take the serial path, as do inputs of at most one chunk. */
#define HIST_MAX_LOCAL_BINS 4096
#define HIST_CHUNK          ((size_t)16384)

static void hist_range(uint64_t *restrict hist, int nbins, float lo, float hi,
                       double scale, const float *restrict v,
                       const uint8_t *restrict valid, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if ((valid != NULL && valid[i] == 0) || !isfinite(x))
            continue;
        hist[hist_bin(x, lo, hi, scale, nbins)]++;
    }
}

void aw_hist_add(uint64_t *hist, int nbins, float lo, float hi, const float *v,
                 const uint8_t *valid, size_t n)
{
    if (nbins <= 0 || n == 0)
        return;
    const double scale = hist_scale(nbins, lo, hi);
    if (nbins > HIST_MAX_LOCAL_BINS || n <= HIST_CHUNK) {
        hist_range(hist, nbins, lo, hi, scale, v, valid, n);
        return;
    }
    const size_t nchunks = (n + HIST_CHUNK - 1) / HIST_CHUNK;
#pragma omp parallel
    {
        uint64_t local[HIST_MAX_LOCAL_BINS];
        memset(local, 0, (size_t)nbins * sizeof local[0]);
#pragma omp for schedule(static)
        for (size_t c = 0; c < nchunks; c++) {
            size_t i0 = c * HIST_CHUNK;
            size_t len = n - i0 < HIST_CHUNK ? n - i0 : HIST_CHUNK;
            hist_range(local, nbins, lo, hi, scale, v + i0,
                       valid != NULL ? valid + i0 : NULL, len);
        }
#pragma omp critical(aw_hist_merge)
        for (int k = 0; k < nbins; k++)
            hist[k] += local[k];
    }
}

int aw_otsu_threshold(const uint64_t *hist, int nbins, float lo, float hi,
                      double min_class_frac, float *thr)
{
    if (nbins < 2)
        return 1;
    const double w = ((double)hi - (double)lo) / (double)nbins;

    uint64_t total = 0;
    double sum_total = 0.0; /* sum c_i x_i */
    for (int i = 0; i < nbins; i++) {
        total += hist[i];
        sum_total += (double)hist[i] * ((double)lo + ((double)i + 0.5) * w);
    }
    if (total == 0)
        return 1;

    const double nt = (double)total;
    uint64_t n0 = 0;
    double sum0 = 0.0;
    double best = 0.0;
    int best_k = -1;
    uint64_t best_n0 = 0;
    for (int k = 0; k < nbins - 1; k++) {
        n0 += hist[k];
        sum0 += (double)hist[k] * ((double)lo + ((double)k + 0.5) * w);
        uint64_t n1 = total - n0;
        if (n0 == 0 || n1 == 0)
            continue; /* sigma_b^2 = 0 */
        double w0 = (double)n0 / nt;
        double w1 = (double)n1 / nt;
        double mu0 = sum0 / (double)n0;
        double mu1 = (sum_total - sum0) / (double)n1;
        double d = mu0 - mu1;
        double s = w0 * w1 * d * d;
        if (s > best) {
            best = s;
            best_k = k;
            best_n0 = n0;
        }
    }
    if (best_k < 0)
        return 1; /* all pixels in one bin: no split */

    uint64_t smaller = best_n0 < total - best_n0 ? best_n0 : total - best_n0;
    if ((double)smaller < min_class_frac * nt)
        return 1;
    *thr = (float)((double)lo + (double)(best_k + 1) * w);
    return 0;
}

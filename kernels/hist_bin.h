/* Internal to kernels/: the one bin rule shared by aw_hist_add (otsu.c) and
 * the zone accumulators (zacc.c), so both put a value in the same bin.
 *
 * Bin k covers [lo + k w, lo + (k + 1) w) with w = (hi - lo) / nbins.
 * Values < lo go to bin 0, values >= hi to bin nbins - 1. The position is
 * computed in double as t = (v - lo) * scale with scale = nbins / (hi - lo)
 * (see hist_scale), and k = floor(t) clamped to [0, nbins - 1]. A value that
 * lies within rounding of an inner edge may land in either neighbour, always
 * the same one for the same (v, lo, hi, nbins).
 *
 * The caller skips non-finite values. Every input gives a bin in range, even
 * a degenerate range (hi <= lo, non-finite lo/hi): no undefined conversion
 * of NaN or huge doubles to int. */
#ifndef ARALWATCH_KERNELS_HIST_BIN_H
#define ARALWATCH_KERNELS_HIST_BIN_H

static inline double hist_scale(int nbins, float lo, float hi)
{
    return (double)nbins / ((double)hi - (double)lo);
}

static inline int hist_bin(float v, float lo, float hi, double scale, int nbins)
{
    if (v < lo)
        return 0;
    if (v >= hi)
        return nbins - 1;
    double t = ((double)v - (double)lo) * scale;
    if (!(t >= 0.0)) /* NaN from a degenerate range */
        return 0;
    if (t >= (double)nbins) /* rounding just below hi */
        return nbins - 1;
    return (int)t;
}

#endif

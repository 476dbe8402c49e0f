/*
 * pool.c -- the 2x2, stride-2 max pooling that every small CNN uses,
 * without branches on the data (random data makes branches mispredict).
 *
 * The forward pass keeps no indices: the backward pass finds each window's
 * maximum again by comparing the input with the output, which costs less
 * than writing and reading an index per output, and leaves loops that
 * vectorise.  Ties go to the first maximum in row-major order, NaNs as
 * torch's scan treats them (`v > best || isnan(v)`: the last NaN wins).
 */
#include "kernels.h"

#include <math.h>

/* One output row: the maxima of the 2x2 windows over rows r0 and r1. */
static inline void max_row(float *restrict y, const float *restrict r0, const float *restrict r1, int64_t Wo)
{
    for (int64_t ow = 0; ow < Wo; ow++) {
        float m = r0[2 * ow], c1 = r0[2 * ow + 1], c2 = r1[2 * ow], c3 = r1[2 * ow + 1];
        m = c1 > m ? c1 : m;
        m = c2 > m ? c2 : m;
        y[ow] = c3 > m ? c3 : m;
    }
}

/* Nonzero when x[0..n) holds a NaN; a loop without an early exit, so it vectorises. */
static inline int any_nan(const float *restrict x, int64_t n)
{
    int nan_seen = 0;
    for (int64_t i = 0; i < n; i++)
        nan_seen |= x[i] != x[i];
    return nan_seen;
}

/* The window (oh, ow) of plane xp: where its 4 elements lie, in scan order. */
static void window(int64_t at[4], int64_t W, int64_t oh, int64_t ow)
{
    at[0] = 2 * oh * W + 2 * ow;
    at[1] = at[0] + 1;
    at[2] = at[0] + W;
    at[3] = at[2] + 1;
}

/* The element torch's scan picks in a window holding a NaN: the last NaN. */
static int64_t last_nan(const float *xp, const int64_t at[4])
{
    for (int j = 3; j > 0; j--)
        if (isnan(xp[at[j]]))
            return at[j];
    return at[0];
}

/* x (planes, H, W) -> y (planes, H / 2, W / 2); an odd last row or column is in no window. */
HLR_KERNEL void hlrk_maxpool2x2(float *y, const float *x, int64_t planes, int64_t H, int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++)
            max_row(yp + oh * Wo, xp + 2 * oh * W, xp + (2 * oh + 1) * W, Wo);
        if (!any_nan(xp, H * W))
            continue;
        for (int64_t o = 0; o < Ho * Wo; o++) { /* NaNs are rare: fix their windows afterwards */
            int64_t at[4];
            window(at, W, o / Wo, o % Wo);
            if (isnan(xp[at[0]]) || isnan(xp[at[1]]) || isnan(xp[at[2]]) || isnan(xp[at[3]]))
                yp[o] = xp[last_nan(xp, at)];
        }
    }
}

/* One output row's adjoint: dy goes to the first element equal to the window's maximum. */
static inline void max_row_backward(float *restrict d0, float *restrict d1, const float *restrict r0,
                                    const float *restrict r1, const float *restrict y, const float *restrict g,
                                    int64_t Wo)
{
    for (int64_t ow = 0; ow < Wo; ow++) {
        float m = y[ow], gv = g[ow];
        int k0 = r0[2 * ow] == m;
        int k1 = !k0 & (r0[2 * ow + 1] == m);
        int k2 = !(k0 | k1) & (r1[2 * ow] == m);
        int k3 = !(k0 | k1 | k2);
        d0[2 * ow] = k0 ? gv : 0.0f;
        d0[2 * ow + 1] = k1 ? gv : 0.0f;
        d1[2 * ow] = k2 ? gv : 0.0f;
        d1[2 * ow + 1] = k3 ? gv : 0.0f;
    }
}

/*
 * The adjoint for 2x2 stride 2, given the forward's input x and output y:
 * every input belongs to at most one window, so dx is written once,
 * without clearing it first.
 */
HLR_KERNEL void hlrk_maxpool2x2_backward(float *dx, const float *x, const float *y, const float *dy, int64_t planes,
                                         int64_t H, int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W, *yp = y + pl * Ho * Wo, *gp = dy + pl * Ho * Wo;
        float *dp = dx + pl * H * W;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *d0 = dp + 2 * oh * W, *d1 = d0 + W;
            max_row_backward(d0, d1, xp + 2 * oh * W, xp + (2 * oh + 1) * W, yp + oh * Wo, gp + oh * Wo, Wo);
            if (W & 1)
                d0[W - 1] = d1[W - 1] = 0.0f;
        }
        for (int64_t h = 2 * Ho; h < H; h++) /* an odd last row is in no window */
            for (int64_t w = 0; w < W; w++)
                dp[h * W + w] = 0.0f;
        if (!any_nan(yp, Ho * Wo))
            continue;
        for (int64_t o = 0; o < Ho * Wo; o++) { /* a NaN maximum: the gradient goes to the last NaN */
            if (!isnan(yp[o]))
                continue;
            int64_t at[4];
            window(at, W, o / Wo, o % Wo);
            for (int j = 0; j < 4; j++)
                dp[at[j]] = 0.0f;
            dp[last_nan(xp, at)] = gp[o];
        }
    }
}

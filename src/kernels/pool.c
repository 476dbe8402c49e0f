/*
 * pool.c -- the 2x2, stride-2 max pooling that every small CNN uses,
 * without branches on the data (random data makes branches mispredict).
 */
#include "kernels.h"

#include <math.h>

/*
 * x (planes, H, W) -> y (planes, Ho, Wo), Ho = H / 2, Wo = W / 2; idx gets
 * the index of the chosen element in its H x W plane.  The first maximum
 * in row-major order wins ties, as torch's scan does; a window holding
 * NaNs yields its last NaN (torch's scan replaces on `v > best || isnan(v)`).
 */
HLR_KERNEL void hlrk_maxpool2x2(float *y, int32_t *idx, const float *x, int64_t planes, int64_t H, int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2;
    int nan_seen = 0;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
            float *yr = y + (pl * Ho + oh) * Wo;
            int32_t *ir = idx + (pl * Ho + oh) * Wo;
            const int32_t base = (int32_t)(2 * oh * W);
            for (int64_t ow = 0; ow < Wo; ow++) {
                float c0 = r0[2 * ow], c1 = r0[2 * ow + 1], c2 = r1[2 * ow], c3 = r1[2 * ow + 1];
                int32_t i0 = base + (int32_t)(2 * ow);
                float m01 = c1 > c0 ? c1 : c0, m23 = c3 > c2 ? c3 : c2;
                int32_t j01 = c1 > c0 ? i0 + 1 : i0, j23 = c3 > c2 ? i0 + (int32_t)W + 1 : i0 + (int32_t)W;
                yr[ow] = m23 > m01 ? m23 : m01;
                ir[ow] = m23 > m01 ? j23 : j01;
                nan_seen |= (c0 != c0) | (c1 != c1) | (c2 != c2) | (c3 != c3);
            }
        }
    }
    if (!nan_seen)
        return;
    /* NaNs are rare: fix their windows afterwards. */
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t o = 0; o < Ho * Wo; o++) {
            const float *xp = x + pl * H * W;
            int64_t oh = o / Wo, ow = o % Wo;
            int64_t at[4] = {2 * oh * W + 2 * ow, 2 * oh * W + 2 * ow + 1, (2 * oh + 1) * W + 2 * ow,
                             (2 * oh + 1) * W + 2 * ow + 1};
            if (!isnan(xp[at[0]] + xp[at[1]] + xp[at[2]] + xp[at[3]]))
                continue;
            for (int j = 3; j >= 0; j--) /* the last NaN in scan order */
                if (isnan(xp[at[j]])) {
                    y[pl * Ho * Wo + o] = xp[at[j]];
                    idx[pl * Ho * Wo + o] = (int32_t)at[j];
                    break;
                }
        }
}

/* The adjoint for 2x2 stride 2: every input belongs to at most one window,
 * so dx is written once, without clearing it first. */
HLR_KERNEL void hlrk_maxpool2x2_backward(float *dx, const int32_t *idx, const float *dy, int64_t planes, int64_t H,
                                         int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2;
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dp = dx + pl * H * W;
        for (int64_t oh = 0; oh < Ho; oh++) {
            float *r0 = dp + 2 * oh * W, *r1 = r0 + W;
            const float *g = dy + (pl * Ho + oh) * Wo;
            const int32_t *ir = idx + (pl * Ho + oh) * Wo;
            const int32_t base = (int32_t)(2 * oh * W);
            for (int64_t ow = 0; ow < Wo; ow++) {
                int32_t i0 = base + (int32_t)(2 * ow), k = ir[ow];
                r0[2 * ow] = k == i0 ? g[ow] : 0.0f;
                r0[2 * ow + 1] = k == i0 + 1 ? g[ow] : 0.0f;
                r1[2 * ow] = k == i0 + (int32_t)W ? g[ow] : 0.0f;
                r1[2 * ow + 1] = k == i0 + (int32_t)W + 1 ? g[ow] : 0.0f;
            }
            if (W & 1)
                r0[W - 1] = r1[W - 1] = 0.0f;
        }
        for (int64_t h = 2 * Ho; h < H; h++) /* an odd last row is in no window */
            for (int64_t w = 0; w < W; w++)
                dp[h * W + w] = 0.0f;
    }
}

/*
 * conv_direct.c -- a convolution with few input taps (K = C kh kw small,
 * e.g. the first layer of an image model: one channel, 3x3), computed
 * directly.  A GEMM with K = 9 spends more time packing than multiplying;
 * here each tap is one long vectorised loop over the whole output plane.
 *
 * Stride 1, dilation 1, one group.  The input is copied into a zero-padded
 * plane of width Wp = W + 2 pad; the output is computed over "wide" rows of
 * Wp columns (the last 2 pad columns of each are garbage and dropped), so
 * the tap (c, ki, kj) adds w * xpad[c][i + ki Wp + kj] to ywide[i] for
 * every i: one contiguous loop.  Taps are added in im2col's (c, ki, kj)
 * order, then the bias, then the optional ReLU.
 */
#include "kernels.h"

#include <string.h>

int64_t hlrk_conv_direct_scratch(const hlrk_conv_geom *g)
{
    int64_t Hp = g->H + 2 * g->pad, Wp = g->W + 2 * g->pad;
    return g->C * Hp * Wp + g->kw + g->Ho * Wp;
}

/* See kernels.h. */
typedef hlrk_v16 v16;
#define NACC 8 /* independent sums: enough to hide the adds' latency */

/*
 * ywide[0, n) of one output channel: every tap's weighted, shifted input
 * summed in tap order.  A block of NACC x 16 outputs stays in registers
 * while the taps stream past; the rest goes 16, then 1 at a time.
 */
static inline __attribute__((always_inline)) void taps(float *restrict yw, const float *restrict xpad,
                                                       const float *restrict wc, const int64_t *restrict off,
                                                       int64_t ntaps, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 * NACC <= n; i += 16 * NACC) {
        v16 acc[NACC] = {0};
        for (int64_t t = 0; t < ntaps; t++) {
            const float *xs = xpad + off[t] + i;
            const float w = wc[t];
#pragma GCC unroll 8
            for (int a = 0; a < NACC; a++)
                acc[a] += w * *(const v16 *)(xs + 16 * a);
        }
#pragma GCC unroll 8
        for (int a = 0; a < NACC; a++)
            *(v16 *)(yw + i + 16 * a) = acc[a];
    }
    for (; i + 16 <= n; i += 16) {
        v16 acc = {0};
        for (int64_t t = 0; t < ntaps; t++)
            acc += wc[t] * *(const v16 *)(xpad + off[t] + i);
        *(v16 *)(yw + i) = acc;
    }
    for (; i < n; i++) {
        float acc = 0.0f;
        for (int64_t t = 0; t < ntaps; t++)
            acc += wc[t] * xpad[off[t] + i];
        yw[i] = acc;
    }
}

/* Output row oh of the plane goes to row `to` (split rows: the even rows, then the odd ones). */
static inline __attribute__((always_inline)) void crop_bias(float *restrict y, const float *restrict yw, float b,
                                                            int relu, int split, int64_t Ho, int64_t Wo, int64_t Wp)
{
    for (int64_t oh = 0; oh < Ho; oh++) {
        const int64_t to = split ? (oh & 1) * (Ho / 2) + (oh >> 1) : oh;
        for (int64_t ow = 0; ow < Wo; ow++) {
            float v = yw[oh * Wp + ow] + b;
            y[to * Wo + ow] = relu && v < 0.0f ? 0.0f : v; /* NaN stays NaN, as hlrk_relu */
        }
    }
}

HLR_KERNEL void hlrk_conv_direct(float *y, const float *x, const float *w, const float *bias, int64_t cout, int relu,
                                 int split_rows, const hlrk_conv_geom *g, float *scratch)
{
    const int64_t C = g->C, H = g->H, W = g->W, pad = g->pad, kh = g->kh, kw = g->kw;
    const int64_t Hp = H + 2 * pad, Wp = W + 2 * pad, Ho = g->Ho, Wo = g->Wo, n = Ho * Wp;
    float *xpad = scratch, *yw = scratch + C * Hp * Wp + kw;
    memset(xpad, 0, (size_t)(C * Hp * Wp + kw) * sizeof *xpad); /* + kw: the last wide row reads past the plane */
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
            memcpy(xpad + (c * Hp + h + pad) * Wp + pad, x + (c * H + h) * W, (size_t)W * sizeof *x);
    int64_t off[HLRK_DIRECT_MAX_TAPS], ntaps = 0;
    for (int64_t c = 0; c < C; c++)
        for (int64_t ki = 0; ki < kh; ki++)
            for (int64_t kj = 0; kj < kw; kj++)
                off[ntaps++] = (c * Hp + ki) * Wp + kj;
    for (int64_t co = 0; co < cout; co++) {
        taps(yw, xpad, w + co * ntaps, off, ntaps, n);
        crop_bias(y + co * Ho * Wo, yw, bias ? bias[co] : 0.0f, relu, split_rows, Ho, Wo, Wp);
    }
}

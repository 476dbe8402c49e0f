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

/* Output channels computed in one pass over the input (AVX-512; AVX2 takes 2, its 16 registers
 * holding fewer sums): each input vector a tap loads feeds COB channels' sums, where one channel at a
 * time loaded it for a single multiply-add and the loop was bound by loads. */
#define COB 4

int64_t hlrk_conv_direct_scratch(const hlrk_conv_geom *g)
{
    int64_t Hp = g->H + 2 * g->pad, Wp = g->W + 2 * g->pad;
    return g->C * Hp * Wp + g->kw + COB * g->Ho * Wp;
}

/* See kernels.h. */
typedef hlrk_v16 v16;
/* 8 floats: one AVX2 register (kernels.h: the AVX2 clone sums in these; docs/design.md, Convolution,
 * says what v16 cost there). */
typedef hlrk_v8 v8;
#define NACC 8 /* independent sums: enough to hide the adds' latency */
#define NV 4   /* vectors of outputs per channel when COB channels share the pass: COB NV sums */

/*
 * ywide[0, n) of cob output channels (planes n apart, weights ntaps apart):
 * every tap's weighted, shifted input summed in tap order.  Groups of CB
 * channels take blocks of NV vectors of outputs together, each input vector
 * loaded once for all CB; the rest goes a channel at a time, a block of
 * NACC vectors staying in registers while the taps stream past, then a
 * vector, then 1 at a time.  V is the vector type (v16 for AVX-512, v8 for
 * AVX2) and L its floats; each output's sum is the same in every case (zero,
 * then w x added tap by tap), so every ISA and every grouping gives the same
 * bits.
 */
#define TAPS(name, V, L, CB)                                                                                          \
    static inline __attribute__((always_inline)) void name(float *restrict yw, const float *restrict xpad,          \
                                                           const float *restrict wc, int64_t cob,                   \
                                                           const int64_t *restrict off, int64_t ntaps, int64_t n)   \
    {                                                                                                                \
        int64_t i0 = 0;                                                                                              \
        if (cob == CB)                                                                                               \
            for (; i0 + L * NV <= n; i0 += L * NV) {                                                                 \
                V acc[CB][NV];                                                                                       \
                _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++)                                                 \
                    _Pragma("GCC unroll 4") for (int a = 0; a < NV; a++) acc[c][a] = (V){0};                         \
                for (int64_t t = 0; t < ntaps; t++) {                                                                \
                    V xv[NV];                                                                                        \
                    _Pragma("GCC unroll 4") for (int a = 0; a < NV; a++) xv[a] = *(const V *)(xpad + off[t] + i0 + L * a); \
                    _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++) {                                           \
                        const float w = wc[c * ntaps + t];                                                           \
                        _Pragma("GCC unroll 4") for (int a = 0; a < NV; a++) acc[c][a] += w * xv[a];                 \
                    }                                                                                                \
                }                                                                                                    \
                _Pragma("GCC unroll 4") for (int c = 0; c < CB; c++)                                                 \
                    _Pragma("GCC unroll 4") for (int a = 0; a < NV; a++) *(V *)(yw + c * n + i0 + L * a) = acc[c][a]; \
            }                                                                                                        \
        for (int64_t c = 0; c < cob; c++) {                                                                          \
            float *restrict y1 = yw + c * n;                                                                         \
            const float *restrict w1 = wc + c * ntaps;                                                               \
            int64_t i = i0;                                                                                          \
            for (; i + L * NACC <= n; i += L * NACC) {                                                               \
                V acc[NACC] = {0};                                                                                   \
                for (int64_t t = 0; t < ntaps; t++) {                                                                \
                    const float *xs = xpad + off[t] + i;                                                             \
                    const float w = w1[t];                                                                           \
                    _Pragma("GCC unroll 8") for (int a = 0; a < NACC; a++) acc[a] += w * *(const V *)(xs + L * a);   \
                }                                                                                                    \
                _Pragma("GCC unroll 8") for (int a = 0; a < NACC; a++) *(V *)(y1 + i + L * a) = acc[a];              \
            }                                                                                                        \
            for (;;) {                                                                                               \
                if (i + L > n && i < n && n >= L)                                                                    \
                    i = n - L; /* the last vector overlaps the one before: the same sums again */                    \
                if (i + L > n)                                                                                       \
                    break;                                                                                           \
                V acc = {0};                                                                                         \
                for (int64_t t = 0; t < ntaps; t++)                                                                  \
                    acc += w1[t] * *(const V *)(xpad + off[t] + i);                                                  \
                *(V *)(y1 + i) = acc;                                                                                \
                i += L;                                                                                              \
            }                                                                                                        \
            for (; i < n; i++) {                                                                                     \
                float acc = 0.0f;                                                                                    \
                for (int64_t t = 0; t < ntaps; t++)                                                                  \
                    acc += w1[t] * xpad[off[t] + i];                                                                 \
                y1[i] = acc;                                                                                         \
            }                                                                                                        \
        }                                                                                                            \
    }
TAPS(taps16, v16, 16, COB)
TAPS(taps8, v8, 8, 2)

typedef hlrk_v8i v8i;

/* Output row oh of the plane goes to row `to` (split rows: the even rows, then the odd ones), + b and
 * the ReLU (as hlrk_relu: a NaN stays NaN).  Rows as wide as a vector go in vectors, the last one
 * overlapping the one before it (the same values again); narrower rows one at a time. */
#define CROP(name, V, VI, L)                                                                                          \
    static inline __attribute__((always_inline)) void name(float *restrict y, const float *restrict yw, float b,     \
                                                           int relu, int split, int64_t Ho, int64_t Wo, int64_t Wp) \
    {                                                                                                                \
        for (int64_t oh = 0; oh < Ho; oh++) {                                                                        \
            const int64_t to = split ? (oh & 1) * (Ho / 2) + (oh >> 1) : oh;                                         \
            const float *restrict src = yw + oh * Wp;                                                                \
            float *restrict dst = y + to * Wo;                                                                       \
            if (Wo < L) {                                                                                            \
                for (int64_t ow = 0; ow < Wo; ow++) {                                                                \
                    float v = src[ow] + b;                                                                           \
                    dst[ow] = relu && v < 0.0f ? 0.0f : v;                                                           \
                }                                                                                                    \
                continue;                                                                                            \
            }                                                                                                        \
            for (int64_t ow = 0;; ow += L) {                                                                         \
                if (ow + L > Wo)                                                                                     \
                    ow = Wo - L;                                                                                     \
                V v = *(const V *)(src + ow) + b;                                                                    \
                if (relu)                                                                                            \
                    v = (V)((VI)v & ~(VI)(v < 0.0f));                                                                \
                *(V *)(dst + ow) = v;                                                                                \
                if (ow + L >= Wo)                                                                                    \
                    break;                                                                                           \
            }                                                                                                        \
        }                                                                                                            \
    }
CROP(crop16, v16, hlrk_v16i, 16)
CROP(crop8, v8, v8i, 8)

HLR_FMA_KERNEL void hlrk_conv_direct(float *y, const float *x, const float *w, const float *bias, int64_t cout, int relu,
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
    /* Which clone runs (kernels.h picks the widest the CPU has; the AVX2-capped build has none wider):
     * AVX-512 sums in v16, the others in v8. */
    const int v16_fits = hlrk_v16_fits();
    const int64_t cb = v16_fits ? COB : 2;
    for (int64_t co = 0; co < cout; co += cb) {
        const int64_t nc = cout - co < cb ? cout - co : cb;
        if (v16_fits)
            taps16(yw, xpad, w + co * ntaps, nc, off, ntaps, n);
        else
            taps8(yw, xpad, w + co * ntaps, nc, off, ntaps, n);
        for (int64_t c = 0; c < nc; c++) {
            float *yc = y + (co + c) * Ho * Wo;
            const float b = bias ? bias[co + c] : 0.0f;
            if (v16_fits)
                crop16(yc, yw + c * n, b, relu, split_rows, Ho, Wo, Wp);
            else
                crop8(yc, yw + c * n, b, relu, split_rows, Ho, Wo, Wp);
        }
    }
}

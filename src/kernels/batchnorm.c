/*
 * batchnorm.c -- batch normalisation's passes over one channel's planes.
 *
 * A channel's statistics run over N planes of S floats (a batch of maps).
 * Each plane's sum is taken in 16 float lanes, added in a fixed order at the
 * end, and the planes' sums are added in double: the loops vectorise (a
 * single float accumulator would chain every add), the result does not
 * depend on the instruction set, and 16 lanes of at most S / 16 terms each
 * lose less than one long float sum would.
 */
#include "kernels.h"

#include <stddef.h>

typedef hlrk_v16 v16;

/* The 16 lanes added in a fixed order (pairwise), then the tail's sum. */
static inline float lanes_sum(v16 a, float tail)
{
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++)
        s8[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++)
        s4[i] = s8[i] + s8[i + 4];
    return ((s4[0] + s4[2]) + (s4[1] + s4[3])) + tail;
}

/* The same for 16 lanes held as two halves, lanes 0-7 and 8-15 (kernels.h, hlrk_v8): the same bits. */
static inline float halves_sum(hlrk_v8 lo, hlrk_v8 hi, float tail)
{
    float s4[4];
    const hlrk_v8 s8 = lo + hi;
    for (int i = 0; i < 4; i++)
        s4[i] = s8[i] + s8[i + 4];
    return ((s4[0] + s4[2]) + (s4[1] + s4[3])) + tail;
}

/* sum of x[0..S); without AVX-512 each 16 lanes in two halves (kernels.h, hlrk_v8), the same sums */
static inline __attribute__((always_inline)) float plane_sum(const float *x, int64_t S)
{
    int64_t i = 0;
    float tail = 0.0f;
    if (!hlrk_v16_fits()) {
        hlrk_v8 lo = {0}, hi = {0};
        for (; i + 16 <= S; i += 16) {
            lo += *(const hlrk_v8 *)(x + i);
            hi += *(const hlrk_v8 *)(x + i + 8);
        }
        for (; i < S; i++)
            tail += x[i];
        return halves_sum(lo, hi, tail);
    }
    v16 acc = {0};
    for (; i + 16 <= S; i += 16)
        acc += *(const v16 *)(x + i);
    for (; i < S; i++)
        tail += x[i];
    return lanes_sum(acc, tail);
}

/* sum of (x[i] - mean)^2, the same way */
static inline __attribute__((always_inline)) float plane_sqdev(const float *x, int64_t S, float mean)
{
    int64_t i = 0;
    float tail = 0.0f;
    if (!hlrk_v16_fits()) {
        hlrk_v8 lo = {0}, hi = {0};
        for (; i + 16 <= S; i += 16) {
            const hlrk_v8 dl = *(const hlrk_v8 *)(x + i) - mean, dh = *(const hlrk_v8 *)(x + i + 8) - mean;
            lo += dl * dl;
            hi += dh * dh;
        }
        for (; i < S; i++)
            tail += (x[i] - mean) * (x[i] - mean);
        return halves_sum(lo, hi, tail);
    }
    v16 acc = {0};
    for (; i + 16 <= S; i += 16) {
        v16 d = *(const v16 *)(x + i) - mean;
        acc += d * d;
    }
    for (; i < S; i++)
        tail += (x[i] - mean) * (x[i] - mean);
    return lanes_sum(acc, tail);
}

HLR_KERNEL double hlrk_bn_sum(const float *x, int64_t planes, int64_t stride, int64_t S)
{
    double s = 0.0;
    for (int64_t p = 0; p < planes; p++)
        s += plane_sum(x + p * stride, S);
    return s;
}

HLR_KERNEL double hlrk_bn_sqdev(const float *x, int64_t planes, int64_t stride, int64_t S, float mean)
{
    double s = 0.0;
    for (int64_t p = 0; p < planes; p++)
        s += plane_sqdev(x + p * stride, S, mean);
    return s;
}

/* y = x a + b, then (relu) as hlrk_relu: a NaN stays NaN. */
static inline void apply_row(float *restrict y, const float *restrict x, int64_t n, float a, float b, int relu)
{
    if (relu)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * a + b;
            y[i] = v < 0.0f ? 0.0f : v;
        }
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * a + b;
}

HLR_KERNEL void hlrk_bn_apply(float *y, const float *x, int64_t S, float a, float b, int relu)
{
    apply_row(y, x, S, a, b, relu);
}

HLR_KERNEL void hlrk_bn_apply_split(float *y, const float *x, int64_t H, int64_t W, float a, float b)
{
    for (int64_t h = 0; h < H; h++)
        apply_row(y + (h & 1 ? H / 2 * W : 0) + h / 2 * W, x + h * W, W, a, b, 1);
}

/* g = dy, or 0 where y <= 0 when y is given (a fused ReLU's mask, as hlrk_relu_backward).  Always inlined:
 * left to itself GCC kept it out of line, compiled for the x86-64 baseline, so every clone of
 * hlrk_bn_grad_sums ran it four SSE operations to a vector (7.8 % of the cnn-bn's training step; inlined,
 * its training at batch 64 went from 2,790-2,804 to 2,842-2,905 img/s, two threads, AVX-512). */
static inline __attribute__((always_inline)) void grad_sums(const float *restrict dy, const float *restrict y,
                                                            const float *restrict x, int64_t S, float mean,
                                                            float *sg, float *sgx)
{
    v16 a1 = {0}, a2 = {0};
    float t1 = 0.0f, t2 = 0.0f;
    int64_t i = 0;
    if (!hlrk_v16_fits()) { /* each 16 lanes as two halves, the same sums (kernels.h, hlrk_v8) */
        hlrk_v8 l1 = {0}, h1 = {0}, l2 = {0}, h2 = {0};
        const hlrk_v8i all = ~(hlrk_v8i){0};
        for (; i + 16 <= S; i += 16) {
            const hlrk_v8i ml = y ? (hlrk_v8i)(*(const hlrk_v8 *)(y + i) > 0.0f) : all,
                           mh = y ? (hlrk_v8i)(*(const hlrk_v8 *)(y + i + 8) > 0.0f) : all;
            const hlrk_v8 gl = (hlrk_v8)(*(const hlrk_v8i *)(dy + i) & ml),
                          gh = (hlrk_v8)(*(const hlrk_v8i *)(dy + i + 8) & mh);
            l1 += gl;
            h1 += gh;
            l2 += gl * (*(const hlrk_v8 *)(x + i) - mean);
            h2 += gh * (*(const hlrk_v8 *)(x + i + 8) - mean);
        }
        for (; i < S; i++) {
            const float g = !y || y[i] > 0.0f ? dy[i] : 0.0f;
            t1 += g;
            t2 += g * (x[i] - mean);
        }
        *sg = halves_sum(l1, h1, t1);
        *sgx = halves_sum(l2, h2, t2);
        return;
    }
    if (y) {
        for (; i + 16 <= S; i += 16) {
            const v16 g = (v16)(*(const hlrk_v16i *)(dy + i) & (*(const v16 *)(y + i) > 0.0f));
            a1 += g;
            a2 += g * (*(const v16 *)(x + i) - mean);
        }
        for (; i < S; i++) {
            const float g = y[i] > 0.0f ? dy[i] : 0.0f;
            t1 += g;
            t2 += g * (x[i] - mean);
        }
    } else {
        for (; i + 16 <= S; i += 16) {
            const v16 g = *(const v16 *)(dy + i);
            a1 += g;
            a2 += g * (*(const v16 *)(x + i) - mean);
        }
        for (; i < S; i++) {
            t1 += dy[i];
            t2 += dy[i] * (x[i] - mean);
        }
    }
    *sg = lanes_sum(a1, t1);
    *sgx = lanes_sum(a2, t2);
}

HLR_KERNEL void hlrk_bn_grad_sums(const float *dy, const float *y, const float *x, int64_t planes, int64_t stride,
                                  int64_t S, float mean, double *sg, double *sgx)
{
    double s1 = 0.0, s2 = 0.0;
    for (int64_t p = 0; p < planes; p++) {
        float a, b;
        grad_sums(dy + p * stride, y ? y + p * stride : NULL, x + p * stride, S, mean, &a, &b);
        s1 += a;
        s2 += b;
    }
    *sg = s1;
    *sgx = s2;
}

HLR_KERNEL void hlrk_bn_dx(float *dx, const float *dy, const float *y, const float *x, int64_t S, float mean, float a,
                           float b, float c)
{
    if (y)
        for (int64_t i = 0; i < S; i++) {
            const float g = y[i] > 0.0f ? dy[i] : 0.0f;
            dx[i] = a * g + (b * (x[i] - mean) + c);
        }
    else
        for (int64_t i = 0; i < S; i++)
            dx[i] = a * dy[i] + (b * (x[i] - mean) + c);
}

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
#include <stddef.h>

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

/*
 * The fused pooling's kernels run in cache, on one sample of a convolution,
 * so instructions, not memory, bound them, and they must vectorise for
 * rows of 7, 14 or 28 windows.  Forward, the convolution writes each plane
 * with its even rows first, then its odd rows ("split rows"): window i of
 * the plane (row-major) is then at 2i, 2i + 1 of both halves, one loop
 * over the whole plane, which GCC vectorises (stride-2 loads).  Backward
 * writes dx in the usual order (its sums must add in the usual order): 16
 * windows at a time, the even and odd columns put back together by
 * shuffles; vectors may run past a row into the next (written afterwards),
 * and the last rows, where that would leave the sample, go one window at
 * a time.
 */
typedef hlrk_v16 v16;
typedef hlrk_v16i v16i;
typedef uint8_t v16b __attribute__((vector_size(16), aligned(1), may_alias));

/* Interleave a's and b's lower (upper) eight lanes: GCC's and clang's spelling
 * (clang builds the library for `make tsan` and `make fuzz`). */
#if defined(__clang__)
#define ZIP_LOWER(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_UPPER(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#else
#define ZIP_LOWER(a, b) __builtin_shuffle(a, b, ((v16i){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23}))
#define ZIP_UPPER(a, b) __builtin_shuffle(a, b, ((v16i){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31}))
#endif
/* The same for 8-float vectors (kernels.h, hlrk_v8). */
typedef hlrk_v8 v8;
typedef hlrk_v8i v8i;
typedef uint8_t v8b __attribute__((vector_size(8), aligned(1), may_alias));
#if defined(__clang__)
#define ZIP8_LOWER(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIP8_UPPER(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#else
#define ZIP8_LOWER(a, b) __builtin_shuffle(a, b, ((v8i){0, 8, 1, 9, 2, 10, 3, 11}))
#define ZIP8_UPPER(a, b) __builtin_shuffle(a, b, ((v8i){4, 12, 5, 13, 6, 14, 7, 15}))
#endif

/* x (planes, H, W), each plane in split rows -> y as hlrk_maxpool2x2 for even H and W, and the winners. */

HLR_KERNEL void hlrk_maxpool2x2_win(float *y, uint8_t *win, const float *x, int64_t planes, int64_t H, int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2, n = Ho * Wo;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *restrict e = x + pl * H * W, *restrict o = e + Ho * W;
        float *restrict yp = y + pl * n;
        uint8_t *restrict wp = win ? win + pl * n : NULL;
        if (wp)
            for (int64_t i = 0; i < n; i++) {
                const float c0 = e[2 * i], c1 = e[2 * i + 1], c2 = o[2 * i], c3 = o[2 * i + 1];
                const float m = hlrk_window_max(c0, c1, c2, c3);
                yp[i] = m;
                /* The winner: the first element equal to the maximum, which is the
                 * one the scan kept (a later one equal to it never beats it).
                 * Integer arithmetic on the comparisons, so the loop vectorises. */
                const int e0 = c0 == m, e1 = !e0 & (c1 == m), e2 = !(e0 | e1) & (c2 == m), e3 = !(e0 | e1 | e2);
                wp[i] = (uint8_t)(e1 + 2 * e2 + 3 * e3);
            }
        else /* inference: the maxima alone */
            for (int64_t i = 0; i < n; i++)
                yp[i] = hlrk_window_max(e[2 * i], e[2 * i + 1], o[2 * i], o[2 * i + 1]);
        if (!any_nan(e, H * W))
            continue;
        for (int64_t i = 0; i < n; i++) { /* as hlrk_maxpool2x2 */
            int64_t at[4] = {2 * i, 2 * i + 1, Ho * W + 2 * i, Ho * W + 2 * i + 1};
            if (!(isnan(e[at[0]]) || isnan(e[at[1]]) || isnan(e[at[2]]) || isnan(e[at[3]])))
                continue;
            int64_t last = last_nan(e, at);
            yp[i] = e[last];
            if (wp)
                wp[i] = (uint8_t)(last == at[0] ? 0 : last == at[1] ? 1 : last == at[2] ? 2 : 3);
        }
    }
}

/* One output row of hlrk_maxpool2x2_relu_backward, a window at a time. */
static inline void relu_row_backward(float *restrict d0, float *restrict d1, const float *restrict y,
                                     const uint8_t *restrict win, const float *restrict dy, int64_t Wo)
{
    for (int64_t ow = 0; ow < Wo; ow++) {
        float g = y[ow] > 0.0f ? dy[ow] : 0.0f; /* the ReLU's mask, as hlrk_relu_backward */
        int k = win[ow];
        d0[2 * ow] = k == 0 ? g : 0.0f;
        d0[2 * ow + 1] = k == 1 ? g : 0.0f;
        d1[2 * ow] = k == 2 ? g : 0.0f;
        d1[2 * ow + 1] = k == 3 ? g : 0.0f;
    }
}

/* The same for 16 windows: d0, d1 [0, 32) written, d0 first. */
static inline __attribute__((always_inline)) void relu_16_backward(float *d0, float *d1, const float *y,
                                                                   const uint8_t *win, const float *dy)
{
    const v16i g = *(const v16i *)dy & (*(const v16 *)y > 0.0f);
    const v16i k = __builtin_convertvector(*(const v16b *)win, v16i);
    const v16 e0 = (v16)(g & (k == 0)), o0 = (v16)(g & (k == 1)), e1 = (v16)(g & (k == 2)), o1 = (v16)(g & (k == 3));
    *(v16 *)d0 = ZIP_LOWER(e0, o0);
    *(v16 *)(d0 + 16) = ZIP_UPPER(e0, o0);
    *(v16 *)d1 = ZIP_LOWER(e1, o1);
    *(v16 *)(d1 + 16) = ZIP_UPPER(e1, o1);
}

/* The same in two halves of 8 windows, for clones without AVX-512 (kernels.h, hlrk_v8); d0 still
 * first, whole, since its last floats may run into d1. */
static inline __attribute__((always_inline)) void relu_16_backward8(float *d0, float *d1, const float *y,
                                                                    const uint8_t *win, const float *dy)
{
    v8 e0[2], o0[2], e1[2], o1[2];
    for (int h = 0; h < 2; h++) {
        const v8i g = *(const v8i *)(dy + 8 * h) & (*(const v8 *)(y + 8 * h) > 0.0f);
        const v8i k = __builtin_convertvector(*(const v8b *)(win + 8 * h), v8i);
        e0[h] = (v8)(g & (k == 0));
        o0[h] = (v8)(g & (k == 1));
        e1[h] = (v8)(g & (k == 2));
        o1[h] = (v8)(g & (k == 3));
    }
    for (int h = 0; h < 2; h++) {
        *(v8 *)(d0 + 16 * h) = ZIP8_LOWER(e0[h], o0[h]);
        *(v8 *)(d0 + 16 * h + 8) = ZIP8_UPPER(e0[h], o0[h]);
    }
    for (int h = 0; h < 2; h++) {
        *(v8 *)(d1 + 16 * h) = ZIP8_LOWER(e1[h], o1[h]);
        *(v8 *)(d1 + 16 * h + 8) = ZIP8_UPPER(e1[h], o1[h]);
    }
}

/* dx has room for HLRK_POOL_SLACK floats past its end. */
HLR_KERNEL void hlrk_maxpool2x2_relu_backward(float *dx, const float *y, const uint8_t *win, const float *dy,
                                              int64_t planes, int64_t H, int64_t W)
{
    const int64_t Ho = H / 2, Wo = W / 2, total = planes * Ho * Wo;
    const int wide = hlrk_v16_fits();
    for (int64_t r = 0; r < planes * Ho; r++) { /* output row r: input rows 2r, 2r + 1 */
        float *d0 = dx + 2 * r * W, *d1 = d0 + W;
        const int64_t o = r * Wo;
        /* The last group of 16 first: it runs past d0 into d1, which the
         * groups before it then write (and past d1 into the next row pair). */
        int64_t ow = (Wo - 1) / 16 * 16;
        if (Wo > 0 && o + ow + 16 > total) {
            relu_row_backward(d0 + 2 * ow, d1 + 2 * ow, y + o + ow, win + o + ow, dy + o + ow, Wo - ow);
            ow -= 16;
        }
        for (; ow >= 0 && Wo > 0; ow -= 16)
            if (wide)
                relu_16_backward(d0 + 2 * ow, d1 + 2 * ow, y + o + ow, win + o + ow, dy + o + ow);
            else
                relu_16_backward8(d0 + 2 * ow, d1 + 2 * ow, y + o + ow, win + o + ow, dy + o + ow);
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

/*
 * im2col.c -- unfold image patches into columns (and fold them back), so a
 * convolution becomes one matrix product.
 *
 * For a batch chunk of nb images x (nb, C, H, W) the column matrix has
 * K = C * kh * kw rows, ordered (c, ki, kj), and nb * Ho * Wo columns,
 * ordered (n, oh, ow):
 *   cols[(c kh + ki) kw + kj][n Ho Wo + oh Wo + ow]
 *     = x[n][c][oh stride - pad + ki dil][ow stride - pad + kj dil]  (0 outside).
 * Samples are C_stride channels apart, so one group's channels of a grouped
 * convolution can be unfolded in place (x points at the group's first one).
 */
#include "../internal.h"
#include "kernels.h"

#include <string.h>

/* The range of ow for which iw = ow*stride + off lies in [0, W). */
static void valid_range(int64_t off, int64_t stride, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = W - off <= 0 ? 0 : (W - off + stride - 1) / stride; /* first ow with iw >= W */
    *lo = a < Wo ? a : Wo;
    *hi = b < Wo ? b : Wo;
    if (*hi < *lo)
        *hi = *lo;
}

typedef struct im2col_job {
    float *cols;
    const float *x;
    const hlrk_conv_geom *g;
    int64_t nb;
} im2col_job;

/* Short rows (a few dozen floats): inline loops beat calls to memcpy and
 * memset (measured), so GCC must not turn them back into such calls. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LIBCALLS
#endif

NO_LIBCALLS static inline void copy_row(float *restrict out, const float *restrict in, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = in[i];
}

NO_LIBCALLS static inline void zero_row(float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = 0.0f;
}

/*
 * One column row of one sample when stride and dilation are 1 and the output
 * is as wide as the input ("same" padding): the valid output rows are the
 * input plane shifted by (ki - pad) rows and off = kj - pad columns, one flat
 * copy, after which the |off| columns that wrapped into the neighbouring row
 * are zeroed.  The copy never reads outside the plane.
 */
NO_LIBCALLS static void im2col_row_same(float *restrict out, const float *restrict xc, const hlrk_conv_geom *g,
                                        int64_t ki, int64_t kj)
{
    const int64_t H = g->H, W = g->W, Ho = g->Ho, off = kj - g->pad, dh = ki - g->pad;
    int64_t lo = dh < 0 ? -dh : 0, hi = H - dh < Ho ? H - dh : Ho; /* output rows with an input row */
    if (hi < lo)
        hi = lo;
    zero_row(out, lo * W);
    int64_t a = lo * W, b = hi * W; /* out[a, b) = x[(dh) W + off + a ...] */
    int64_t src = dh * W + off;
    int64_t a1 = a + src < 0 ? -src : a, b1 = b + src > H * W ? H * W - src : b;
    if (b1 > a1)
        copy_row(out + a1, xc + a1 + src, b1 - a1);
    zero_row(out + a, a1 - a);
    if (b1 > a1)
        zero_row(out + b1, b - b1);
    if (off != 0)
        for (int64_t oh = lo; oh < hi; oh++) /* the columns past the left or right edge */
            zero_row(out + oh * W + (off < 0 ? 0 : W - off), off < 0 ? -off : off);
    zero_row(out + hi * W, (Ho - hi) * W);
}

/* Rows [r0, r1) of the column matrix: row r = (c kh + ki) kw + kj. */
NO_LIBCALLS static void im2col_rows(void *ctx, int64_t r0, int64_t r1)
{
    const im2col_job *j = ctx;
    const hlrk_conv_geom *g = j->g;
    const int64_t P = g->Ho * g->Wo, ld = j->nb * P, HW = g->H * g->W;
    const int same = g->stride == 1 && g->dil == 1 && g->Wo == g->W && g->pad < g->W;
    for (int64_t r = r0; r < r1 && same; r++) {
        const int64_t c = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
        for (int64_t n = 0; n < j->nb; n++)
            im2col_row_same(j->cols + r * ld + n * P, j->x + (n * g->C_stride + c) * HW, g, ki, kj);
    }
    for (int64_t r = r0; r < r1 && !same; r++) {
        const int64_t c = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
        float *row = j->cols + r * ld;
        int64_t woff = kj * g->dil - g->pad, lo, hi;
        valid_range(woff, g->stride, g->W, g->Wo, &lo, &hi);
        for (int64_t n = 0; n < j->nb; n++) {
            const float *xc = j->x + (n * g->C_stride + c) * HW;
            float *out = row + n * P;
            for (int64_t oh = 0; oh < g->Ho; oh++, out += g->Wo) {
                int64_t ih = oh * g->stride - g->pad + ki * g->dil;
                if (ih < 0 || ih >= g->H) {
                    zero_row(out, g->Wo);
                    continue;
                }
                const float *xr = xc + ih * g->W + woff;
                zero_row(out, lo);
                if (g->stride == 1)
                    copy_row(out + lo, xr + lo, hi - lo);
                else
                    for (int64_t ow = lo; ow < hi; ow++)
                        out[ow] = xr[ow * g->stride];
                zero_row(out + hi, g->Wo - hi);
            }
        }
    }
}

void hlrk_im2col(float *cols, const float *x, const hlrk_conv_geom *g, int64_t nb)
{
    im2col_job j = {cols, x, g, nb};
    hlr__parallel_for(g->C * g->kh * g->kw, 1, im2col_rows, &j);
}

typedef struct col2im_job {
    float *dx;
    const float *cols;
    const hlrk_conv_geom *g;
    int64_t nb;
} col2im_job;

/* Channels [c0, c1): each input channel gathers from its own rows only. */
static void col2im_channels(void *ctx, int64_t c0, int64_t c1)
{
    const col2im_job *j = ctx;
    const hlrk_conv_geom *g = j->g;
    const int64_t P = g->Ho * g->Wo, ld = j->nb * P, HW = g->H * g->W;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *row = j->cols + ((c * g->kh + ki) * g->kw + kj) * ld;
                int64_t woff = kj * g->dil - g->pad, lo, hi;
                valid_range(woff, g->stride, g->W, g->Wo, &lo, &hi);
                for (int64_t n = 0; n < j->nb; n++) {
                    float *xc = j->dx + (n * g->C_stride + c) * HW;
                    const float *in = row + n * P;
                    for (int64_t oh = 0; oh < g->Ho; oh++, in += g->Wo) {
                        int64_t ih = oh * g->stride - g->pad + ki * g->dil;
                        if (ih < 0 || ih >= g->H)
                            continue;
                        float *xr = xc + ih * g->W + woff;
                        for (int64_t ow = lo; ow < hi; ow++)
                            xr[ow * g->stride] += in[ow];
                    }
                }
            }
}

void hlrk_col2im(float *dx, const float *cols, const hlrk_conv_geom *g, int64_t nb)
{
    col2im_job j = {dx, cols, g, nb};
    hlr__parallel_for(g->C, 1, col2im_channels, &j);
}

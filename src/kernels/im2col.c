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

/* Rows [r0, r1) of the column matrix: row r = (c kh + ki) kw + kj. */
NO_LIBCALLS static void im2col_rows(void *ctx, int64_t r0, int64_t r1)
{
    const im2col_job *j = ctx;
    const hlrk_conv_geom *g = j->g;
    const int64_t P = g->Ho * g->Wo, ld = j->nb * P, HW = g->H * g->W;
    for (int64_t r = r0; r < r1; r++) {
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

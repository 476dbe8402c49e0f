/*
 * recurrent.c -- the element-wise halves of one LSTM or GRU time step,
 * forward and backward, and the (A, B, C) -> (B, A, C) transpose that
 * moves sequences between batch-first and time-major order.
 *
 * The gate non-linearities are tanh_gate() and sigmoid_gate()
 * (exp_approx.h): a rational function in plain float arithmetic that the
 * compiler vectorises (a call to tanhf or expf would keep every loop
 * scalar), within 6.3 ulp of tanh, with the same bits in every clone: no
 * reassociation, no contraction into FMA.
 */
#include "kernels.h"
#include "exp_approx.h"

#include <string.h>

/* The row loops below must be inlined into each clone of their caller, so
 * that they are compiled for its instruction set. */
#if defined(__GNUC__)
#define ROW_LOOP static inline __attribute__((always_inline))
#else
#define ROW_LOOP static inline
#endif

void hlrk_transpose_01(float *dst, const float *src, int64_t A, int64_t B, int64_t C)
{
    for (int64_t a = 0; a < A; a++)
        for (int64_t b = 0; b < B; b++)
            memcpy(dst + (b * A + a) * C, src + (a * B + b) * C, (size_t)C * sizeof *dst);
}

/*
 * LSTM step, rows n < N, columns j < H; gate blocks of g (N, 4H) in torch's
 * order i, f, g, o, each a = x W_i^T + h W_h^T (on entry) + b (bias, b_ih + b_hh):
 *   i = sig(a_i)  f = sig(a_f)  g = tanh(a_g)  o = sig(a_o)
 *   c = f c_prev + i g        h = o tanh(c)
 */
ROW_LOOP void lstm_row(float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go,
                       const float *restrict bi, const float *restrict bf, const float *restrict bg,
                       const float *restrict bo, const float *restrict cp, float *restrict cn, float *restrict hn,
                       float *restrict tc, int64_t len)
{
    for (int64_t j = 0; j < len; j++) {
        float i = sigmoid_gate(gi[j] + bi[j]), f = sigmoid_gate(gf[j] + bf[j]);
        float g = tanh_gate(gg[j] + bg[j]), o = sigmoid_gate(go[j] + bo[j]);
        float cv = f * cp[j] + i * g;
        float t = tanh_gate(cv);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        cn[j] = cv;
        tc[j] = t;
        hn[j] = o * t;
    }
}

HLR_KERNEL void hlrk_lstm_step(float *gates, const float *bias, const float *h_prev, const float *c_prev, float *h,
                               float *c, float *tanh_c, const unsigned char *active, int64_t N, int64_t H, int64_t j0,
                               int64_t j1)
{
    const int64_t len = j1 - j0;
    const float *b = bias + j0;
    for (int64_t n = 0; n < N; n++) {
        float *g = gates + n * 4 * H + j0;
        const int64_t o = n * H + j0;
        if (active && !active[n]) {
            memcpy(c + o, c_prev + o, (size_t)len * sizeof *c);
            memcpy(h + o, h_prev + o, (size_t)len * sizeof *h);
            continue;
        }
        lstm_row(g, g + H, g + 2 * H, g + 3 * H, b, b + H, b + 2 * H, b + 3 * H, c_prev + o, c + o, h + o, tanh_c + o,
                 len);
    }
}

/* dh += dout, row by row, for the active rows (inlined into each clone, as the row loops). */
ROW_LOOP void add_dout(float *dh, const float *dout, int64_t dout_stride, const unsigned char *active, int64_t N,
                     int64_t H)
{
    if (!dout)
        return;
    for (int64_t n = 0; n < N; n++)
        if (!active || active[n]) {
            float *restrict d = dh + n * H;
            const float *restrict y = dout + n * dout_stride;
            for (int64_t j = 0; j < H; j++)
                d[j] += y[j];
        }
}

/*
 * Backward of hlrk_lstm_step.  With dh = dL/dh_t (dout added) and
 * dc = dL/dc_t from the later steps:
 *   d_o = dh tanh(c)          dc += dh o (1 - tanh^2 c)
 *   d_i = dc g   d_g = dc i   d_f = dc c_prev      dc_prev = dc f
 * and each through its activation: sig' = s (1 - s), tanh' = 1 - t^2.
 */
ROW_LOOP void lstm_row_backward(float *restrict di, float *restrict df, float *restrict dg, float *restrict dgo,
                                float *restrict dh, float *restrict dc, const float *restrict gi,
                                const float *restrict gf, const float *restrict gg, const float *restrict go,
                                const float *restrict cp, const float *restrict tc, int64_t H)
{
    for (int64_t j = 0; j < H; j++) {
        float d = dh[j];
        float i = gi[j], f = gf[j], g = gg[j], o = go[j], t = tc[j];
        float dct = dc[j] + d * o * (1.0f - t * t);
        di[j] = dct * g * (i * (1.0f - i));
        df[j] = dct * cp[j] * (f * (1.0f - f));
        dg[j] = dct * i * (1.0f - g * g);
        dgo[j] = d * t * (o * (1.0f - o));
        dc[j] = dct * f;
        dh[j] = 0.0f; /* the caller adds dgates W_hh */
    }
}

HLR_KERNEL void hlrk_lstm_step_backward(float *dgates, float *dh, float *dc, const float *dout, int64_t dout_stride,
                                        const float *gates, const float *c_prev, const float *tanh_c,
                                        const unsigned char *active, int64_t N, int64_t H)
{
    add_dout(dh, dout, dout_stride, active, N, H);
    for (int64_t n = 0; n < N; n++) {
        float *d = dgates + n * 4 * H;
        if (active && !active[n]) {
            memset(d, 0, (size_t)(4 * H) * sizeof *d);
            continue; /* the state passed through unchanged, and so do its gradients */
        }
        const float *g = gates + n * 4 * H;
        lstm_row_backward(d, d + H, d + 2 * H, d + 3 * H, dh + n * H, dc + n * H, g, g + H, g + 2 * H, g + 3 * H,
                          c_prev + n * H, tanh_c + n * H, H);
    }
}

/*
 * GRU step (torch's r, z, n order): gates (N, 3H) holds x W_ih^T on entry,
 * bias (3H) is b_ih with b_hr and b_hz added, hg (N, 3H) holds h_prev W_hh^T:
 *   a = x W_ih^T + bias
 *   r = sig(a_r + hg_r)   z = sig(a_z + hg_z)   hn = hg_n + b_hn
 *   n = tanh(a_n + r hn)  h = (1 - z) n + z h_prev
 * gates receives r, z, n and hn_out the hn the backward needs.
 */
ROW_LOOP void gru_row(float *restrict gr, float *restrict gz, float *restrict gn, const float *restrict br,
                      const float *restrict bz, const float *restrict bn, const float *restrict hr,
                      const float *restrict hz, const float *restrict hh, const float *restrict b_hn,
                      float *restrict hn, const float *restrict hp, float *restrict hv, int64_t len)
{
    for (int64_t j = 0; j < len; j++) {
        float r = sigmoid_gate(gr[j] + br[j] + hr[j]);
        float z = sigmoid_gate(gz[j] + bz[j] + hz[j]);
        float q = hh[j] + b_hn[j];
        float nv = tanh_gate(gn[j] + bn[j] + r * q);
        gr[j] = r;
        gz[j] = z;
        gn[j] = nv;
        hn[j] = q;
        hv[j] = (1.0f - z) * nv + z * hp[j];
    }
}

HLR_KERNEL void hlrk_gru_step(float *gates, const float *bias, const float *hg, const float *b_hn, float *hn_out,
                              const float *h_prev, float *h, const unsigned char *active, int64_t N, int64_t H,
                              int64_t j0, int64_t j1)
{
    const int64_t len = j1 - j0;
    const float *b = bias + j0;
    for (int64_t n = 0; n < N; n++) {
        const int64_t o = n * H + j0;
        if (active && !active[n]) {
            memcpy(h + o, h_prev + o, (size_t)len * sizeof *h);
            continue;
        }
        float *g = gates + n * 3 * H + j0;
        const float *q = hg + n * 3 * H + j0;
        gru_row(g, g + H, g + 2 * H, b, b + H, b + 2 * H, q, q + H, q + 2 * H, b_hn + j0, hn_out + o, h_prev + o, h + o,
                len);
    }
}

/*
 * Backward of hlrk_gru_step.  With dh = dL/dh_t (dout added):
 *   d(a_n) = dh (1 - z) (1 - n^2)          d(hn) = d(a_n) r
 *   d(a_z) = dh (h_prev - n) z (1 - z)     d(a_r) = d(a_n) hn r (1 - r)
 *   dh_prev = dh z + [d(a_r), d(a_z), d(hn)] W_hh   (the caller adds the product)
 * dgi receives [d(a_r), d(a_z), d(a_n)] (for W_ih, b_ih), dgh
 * [d(a_r), d(a_z), d(hn)] (for W_hh, b_hh).
 */
ROW_LOOP void gru_row_backward(float *restrict dir, float *restrict diz, float *restrict din, float *restrict dhr,
                               float *restrict dhz, float *restrict dhn, float *restrict dh, const float *restrict gr,
                               const float *restrict gz, const float *restrict gn, const float *restrict hn,
                               const float *restrict hp, int64_t H)
{
    for (int64_t j = 0; j < H; j++) {
        float d = dh[j];
        float r = gr[j], z = gz[j], nv = gn[j];
        float dan = d * (1.0f - z) * (1.0f - nv * nv);
        float daz = d * (hp[j] - nv) * (z * (1.0f - z));
        float dar = dan * hn[j] * (r * (1.0f - r));
        dir[j] = dar;
        diz[j] = daz;
        din[j] = dan;
        dhr[j] = dar;
        dhz[j] = daz;
        dhn[j] = dan * r;
        dh[j] = d * z;
    }
}

HLR_KERNEL void hlrk_gru_step_backward(float *dgi, float *dgh, float *dh, const float *dout, int64_t dout_stride,
                                       const float *gates, const float *hn, const float *h_prev,
                                       const unsigned char *active, int64_t N, int64_t H)
{
    add_dout(dh, dout, dout_stride, active, N, H);
    for (int64_t n = 0; n < N; n++) {
        float *a = dgi + n * 3 * H, *b = dgh + n * 3 * H;
        if (active && !active[n]) {
            memset(a, 0, (size_t)(3 * H) * sizeof *a);
            memset(b, 0, (size_t)(3 * H) * sizeof *b);
            continue;
        }
        const float *g = gates + n * 3 * H;
        gru_row_backward(a, a + H, a + 2 * H, b, b + H, b + 2 * H, dh + n * H, g, g + H, g + 2 * H, hn + n * H,
                         h_prev + n * H, H);
    }
}

/* Rows of C floats: dst row n = src row n where active (NULL: all), else 0. */
void hlrk_copy_rows_masked(float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                           const unsigned char *active, int64_t rows, int64_t C)
{
    for (int64_t n = 0; n < rows; n++) {
        if (active && !active[n])
            memset(dst + n * dst_stride, 0, (size_t)C * sizeof *dst);
        else
            memcpy(dst + n * dst_stride, src + n * src_stride, (size_t)C * sizeof *dst);
    }
}

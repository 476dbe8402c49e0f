/*
 * attention.c -- scaled dot-product attention, forward and backward, as
 * batched GEMMs through hlrk_gemm and a stable row softmax.
 *
 * One problem per (sequence n, head h): Q, K, V are (T, d) blocks of wider
 * rows (a fused projection keeps q | k | v of every head side by side in a
 * row of ld_qkv floats), so no head is ever copied out:
 *
 *   S = scale Q K^T            (T, T)
 *   P = softmax(S) over keys j < c_i, zero beyond (the mask: c_i = T, or
 *       i + 1 when causal, or the sequence's length when shorter)
 *   D = P * M                  M: the dropout multipliers (0 or 1/(1-p)), or D = P
 *   O = D V                    (T, d)
 *
 * Both masks leave each query a prefix of the keys, never an empty one
 * (key 0 is always there), so the softmax needs no -inf.
 *
 * Backward, from dO:
 *   dV = D^T dO,   dD = dO V^T,   dP = dD * M,
 *   dS = P * (dP - rowsum(dP * P)) scale   (softmax's Jacobian; masked P are 0),
 *   dQ = dS K,     dK = dS^T Q.
 *
 * The (n, h) problems run in parallel on the pool; each writes only its own
 * blocks, in a fixed order, so results do not depend on the thread count.
 */
#include "../internal.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

typedef struct attn_job {
    const hlrk_attention *a;
    const float *q, *k, *v, *keep, *dout, *probs, *dropped;
    float *out, *probs_w, *dropped_w, *scratch, *dq, *dk, *dv;
} attn_job;

/* The number of keys query i sees in sequence n. */
static int64_t visible(const hlrk_attention *a, int64_t n, int64_t i)
{
    int64_t c = a->causal ? i + 1 : a->T;
    if (a->lengths && a->lengths[n] < c)
        c = a->lengths[n];
    return c;
}

/* Softmax of row s[0..c) in place, stable for any finite input; s[c..T) = 0. */
static void masked_softmax_row(float *s, int64_t c, int64_t T)
{
    hlrk_softmax_rows(s, s, 1, c);
    memset(s + c, 0, (size_t)(T - c) * sizeof *s);
}

static void forward_part(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *job = ctx;
    const hlrk_attention *a = job->a;
    const int64_t T = a->T, d = a->d, H = a->H, TT = T * T;
    for (int64_t b = begin; b < end; b++) {
        int64_t n = b / H, h = b % H;
        const float *Q = job->q + n * T * a->ld_qkv + h * d, *K = job->k + n * T * a->ld_qkv + h * d,
                    *V = job->v + n * T * a->ld_qkv + h * d;
        float *P = job->probs_w + b * TT, *O = job->out + n * T * a->ld_o + h * d;
        hlrk_gemm(0, 1, T, T, d, a->scale, Q, a->ld_qkv, K, a->ld_qkv, 0.0f, P, T);
        for (int64_t i = 0; i < T; i++)
            masked_softmax_row(P + i * T, visible(a, n, i), T);
        const float *D = P;
        if (job->keep) {
            float *Dw = job->dropped_w + b * TT;
            const float *M = job->keep + b * TT;
            for (int64_t e = 0; e < TT; e++)
                Dw[e] = P[e] * M[e];
            D = Dw;
        }
        hlrk_gemm(0, 0, T, d, T, 1.0f, D, T, V, a->ld_qkv, 0.0f, O, a->ld_o);
    }
}

void hlrk_attention_forward(const hlrk_attention *a, const float *q, const float *k, const float *v,
                            const float *keep, float *probs, float *dropped, float *out)
{
    attn_job job = {.a = a, .q = q, .k = k, .v = v, .keep = keep, .out = out, .probs_w = probs, .dropped_w = dropped};
    hlr__parallel_for(a->N * a->H, 1, forward_part, &job);
}

static void backward_part(void *ctx, int64_t begin, int64_t end)
{
    const attn_job *job = ctx;
    const hlrk_attention *a = job->a;
    const int64_t T = a->T, d = a->d, H = a->H, TT = T * T, ld = a->ld_qkv;
    for (int64_t b = begin; b < end; b++) {
        int64_t n = b / H, h = b % H, off = n * T * ld + h * d;
        const float *Q = job->q + off, *K = job->k + off, *V = job->v + off;
        const float *dO = job->dout + n * T * a->ld_o + h * d;
        const float *P = job->probs + b * TT, *D = job->keep ? job->dropped + b * TT : P;
        float *dS = job->scratch + b * TT;
        hlrk_gemm(1, 0, T, d, T, 1.0f, D, T, dO, a->ld_o, 0.0f, job->dv + off, ld);
        hlrk_gemm(0, 1, T, T, d, 1.0f, dO, a->ld_o, V, ld, 0.0f, dS, T);
        for (int64_t i = 0; i < T; i++) {
            float *r = dS + i * T;
            const float *p = P + i * T, *m = job->keep ? job->keep + b * TT + i * T : NULL;
            int64_t c = visible(a, n, i);
            if (m)
                for (int64_t j = 0; j < c; j++)
                    r[j] *= m[j];
            float dot = 0.0f;
            for (int64_t j = 0; j < c; j++)
                dot += r[j] * p[j];
            for (int64_t j = 0; j < c; j++)
                r[j] = p[j] * (r[j] - dot) * a->scale;
            for (int64_t j = c; j < T; j++)
                r[j] = 0.0f;
        }
        hlrk_gemm(0, 0, T, d, T, 1.0f, dS, T, K, ld, 0.0f, job->dq + off, ld);
        hlrk_gemm(1, 0, T, d, T, 1.0f, dS, T, Q, ld, 0.0f, job->dk + off, ld);
    }
}

void hlrk_attention_backward(const hlrk_attention *a, const float *q, const float *k, const float *v,
                             const float *keep, const float *probs, const float *dropped, const float *dout,
                             float *scratch, float *dq, float *dk, float *dv)
{
    attn_job job = {.a = a, .q = q, .k = k, .v = v, .keep = keep, .probs = probs, .dropped = dropped,
                    .dout = dout, .scratch = scratch, .dq = dq, .dk = dk, .dv = dv};
    hlr__parallel_for(a->N * a->H, 1, backward_part, &job);
}

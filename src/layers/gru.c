/*
 * gru.c -- the GRU layer, torch.nn.GRU's equations and gate order:
 *   r = sig(W_ir x + b_ir + W_hr h + b_hr)   z = sig(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r (W_hn h + b_hn))
 *   h' = (1 - z) n + z h
 * This file holds the time loop of one direction; rnn.c the rest.
 *
 * Per direction: one GEMM projects every step's input (rnn_project), one
 * GEMM per step gives h W_hh^T, the step kernel adds b_ih, b_hr and b_hz (b_hn stays
 * inside r (...)), and the backward pass does one GEMM per step for dh and
 * one each for dW_ih, dW_hh and dX.  A step's GEMM and kernel run together
 * on each thread's rows of the batch, or, for 1 to 8 sequences, on each
 * thread's hidden units (rnn.h, rnn_by_units).
 */
#include "../kernels/kernels.h"
#include "rnn.h"

#include <string.h>

/* One time step on rows [a, b) of the batch, one part per pool thread (as lstm.c). */
typedef struct gru_step_job {
    rnn *r;
    const float *W_hh, *W_hhT, *b_hn, *h_prev, *dout, *gates, *hn; /* W_hhT: rnn_rows_whh_t */
    const float *PW;                                               /* W_hh packed, made with W_hhT */
    float *G, *HN, *h, *dG, *dGh;
    const unsigned char *active;
    int64_t dout_stride, n;
    int gemm; /* forward: hg = h_prev W_hh^T (else 0); backward: add dGh W_hh to dh */
} gru_step_job;

static void gru_step_part(void *ctx, int64_t a, int64_t b)
{
    const gru_step_job *j = ctx;
    rnn *r = j->r;
    const int64_t H = r->hidden, GH = 3 * H;
    if (j->gemm)
        rnn_step_product(j->h_prev + a * H, b - a, j->W_hhT, j->PW, H, GH, 0, r->hg + a * GH);
    else
        memset(r->hg + a * GH, 0, (size_t)((b - a) * GH) * sizeof(float));
    hlrk_gru_step(j->G + a * GH, r->bias, r->hg + a * GH, j->b_hn, j->HN + a * H, j->h_prev + a * H, j->h + a * H,
                  j->active ? j->active + a : NULL, b - a, H, 0, H);
}

/* The job of the s-th step processed (backwards in time for the reverse direction). */
static gru_step_job gru_step_at(const rnn_steps *u, int64_t s)
{
    const int64_t H = u->r->hidden, GH = 3 * H, n = u->n;
    int64_t t, prev, next;
    rnn_step_times(u->r->T, u->rev, s, &t, &prev, &next);
    const rnn_dir *w = u->w;
    return (gru_step_job){.r = u->r,
                          .W_hh = u->W_hh,
                          .W_hhT = u->W_hhT,
                          .PW = u->w->PW,
                          .b_hn = u->b_hn,
                          .h_prev = w->S + prev * n * H,
                          .G = w->G + t * n * GH,
                          .HN = w->HN + t * n * H,
                          .h = w->S + next * n * H,
                          .active = u->active ? u->active + t * n : NULL,
                          .n = n,
                          .gemm = s > 0 || u->h0};
}

/* Step s on hidden units [j0, j1) of every row, in a forward by units (rnn.h, rnn_by_units). */
static void gru_units_step(const rnn_steps *u, int64_t s, int64_t j0, int64_t j1)
{
    rnn *r = u->r;
    const gru_step_job j = gru_step_at(u, s);
    const int64_t H = r->hidden, GH = 3 * H;
    if (j.gemm)
        rnn_units_product(j.h_prev, j.n, j.W_hh, H, 3, j0, j1, 0, r->hg);
    else
        for (int64_t i = 0; i < j.n; i++)
            for (int64_t g = 0; g < 3; g++)
                memset(r->hg + i * GH + g * H + j0, 0, (size_t)(j1 - j0) * sizeof(float));
    hlrk_gru_step(j.G, r->bias, r->hg, j.b_hn, j.HN, j.h_prev, j.h, j.active, j.n, H, j0, j1);
}

static void gru_step_backward_part(void *ctx, int64_t a, int64_t b)
{
    const gru_step_job *j = ctx;
    rnn *r = j->r;
    const int64_t H = r->hidden, GH = 3 * H;
    hlrk_gru_step_backward(j->dG + a * GH, j->dGh + a * GH, r->dh + a * H,
                           j->dout ? j->dout + a * j->dout_stride : NULL, j->dout_stride, j->gates + a * GH,
                           j->hn + a * H, j->h_prev + a * H, j->active ? j->active + a : NULL, b - a, H);
    if (j->gemm)
        hlrk_gemm1(0, 0, b - a, H, GH, 1.0f, j->dGh + a * GH, GH, j->W_hh, H, 1.0f, r->dh + a * H, H);
}

/* X (T n, in) -> G, S, HN of direction d (see rnn.h for the layout). */
static void gru_forward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                        const float *h0, const float *c0)
{
    (void)c0;
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 3 * H, rev = d == 1;
    const float *W_hh = rnn_param(r, k, d, 1);
    const float *b_ih = rnn_param(r, k, d, 2), *b_hh = rnn_param(r, k, d, 3);
    const int units = rnn_by_units(n);
    const float *W_hhT = rnn_rows_whh_t(r, k, d, units, h0);
    for (int64_t j = 0; j < GH; j++)
        r->bias[j] = j < 2 * H ? b_ih[j] + b_hh[j] : b_ih[j];
    rnn_project(r, k, d, X, in, T * n, GH, w->G);

    int64_t first = rev ? T : 0;
    if (h0)
        memcpy(w->S + first * n * H, h0, (size_t)(n * H) * sizeof(float));
    else
        memset(w->S + first * n * H, 0, (size_t)(n * H) * sizeof(float));
    rnn_steps u = {.r = r, .w = w, .W_hh = W_hh, .W_hhT = W_hhT, .b_hn = b_hh + 2 * H, .active = active, .n = n,
                   .rev = (int)rev, .h0 = h0 != NULL};
    if (units) {
        hlr__rnn_by_units(&u, 3, gru_units_step);
        return;
    }
    for (int64_t s = 0; s < T; s++) {
        gru_step_job j = gru_step_at(&u, s);
        hlr__parallel_for(n, RNN_STEP_GRAIN, gru_step_part, &j);
    }
}

/*
 * Backward through time, last processed step first.  dG holds the
 * gradients of the input-side pre-activations [a_r, a_z, a_n], dGh those
 * of the hidden side [a_r, a_z, W_hn h + b_hn]; afterwards
 *   dW_ih = dG^T X,  dW_hh = dGh^T S_prev,  db_ih, db_hh = their row sums,
 *   dX += dG W_ih.
 */
static void gru_backward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                         const float *dO, float *dX, int overwrite_dx, int want_dh0)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 3 * H, DH = r->dirs * H;
    const float *W_hh = rnn_param(r, k, d, 1);
    for (int64_t s = 0; s < T; s++) {
        int64_t t, prev;
        rnn_back_times(T, d == 1, s, &t, &prev);
        gru_step_job j = {.r = r,
                          .W_hh = W_hh,
                          .dout = dO ? dO + t * n * DH : NULL,
                          .dout_stride = DH,
                          .dG = w->dG + t * n * GH,
                          .dGh = w->dGh + t * n * GH,
                          .gates = w->G + t * n * GH,
                          .hn = w->HN + t * n * H,
                          .h_prev = w->S + prev * n * H,
                          .active = active ? active + t * n : NULL,
                          .gemm = s < T - 1 || want_dh0};
        hlr__parallel_for(n, RNN_STEP_GRAIN, gru_step_backward_part, &j);
    }
    hlr__rnn_weight_grads(r, k, d, GH, w->dG, w->dGh, X, in, n, dX, overwrite_dx);
}

static const rnn_cell gru_cell = {
    .kind = RNN_GRU, .type = "gru", .fn = "hlr_gru", .gates = 3, .forward = gru_forward, .backward = gru_backward};

extern const hlr_layer_ops hlr__gru_ops;

static hlr_layer *gru_from_config(const hlr_config *c) { return hlr__rnn_from_config(c, &hlr__gru_ops, &gru_cell); }

const hlr_layer_ops hlr__gru_ops = HLR__RNN_OPS("gru", gru_from_config);

hlr_layer *hlr_gru(int input_size, int hidden_size, int num_layers, int flags, float dropout)
{
    return hlr__rnn_new(&hlr__gru_ops, &gru_cell, input_size, hidden_size, num_layers, flags, dropout);
}

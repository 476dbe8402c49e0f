/*
 * gru.c -- the GRU layer, torch.nn.GRU's equations and gate order:
 *   r = sig(W_ir x + b_ir + W_hr h + b_hr)   z = sig(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r (W_hn h + b_hn))
 *   h' = (1 - z) n + z h
 * This file holds the time loop of one direction; rnn.c the rest.
 *
 * Per direction: one GEMM projects every step's input, one GEMM per step
 * gives h W_hh^T, the step kernel adds b_ih, b_hr and b_hz (b_hn stays
 * inside r (...)), and the backward pass does one GEMM per step for dh and
 * one each for dW_ih, dW_hh and dX.
 */
#include "../kernels/kernels.h"
#include "rnn.h"

#include <string.h>

/* X (T n, in) -> G, S, HN of direction d (see rnn.h for the layout). */
static void gru_forward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                        const float *h0, const float *c0)
{
    (void)c0;
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 3 * H, rev = d == 1;
    const float *W_ih = rnn_param(r, k, d, 0), *W_hh = rnn_param(r, k, d, 1);
    const float *b_ih = rnn_param(r, k, d, 2), *b_hh = rnn_param(r, k, d, 3);
    for (int64_t j = 0; j < GH; j++)
        r->bias[j] = j < 2 * H ? b_ih[j] + b_hh[j] : b_ih[j];
    hlrk_gemm(0, 1, T * n, GH, in, 1.0f, X, in, W_ih, in, 0.0f, w->G, GH);

    int64_t first = rev ? T : 0;
    if (h0)
        memcpy(w->S + first * n * H, h0, (size_t)(n * H) * sizeof(float));
    else
        memset(w->S + first * n * H, 0, (size_t)(n * H) * sizeof(float));
    for (int64_t s = 0; s < T; s++) {
        int64_t t = rev ? T - 1 - s : s, prev = rev ? t + 1 : t, next = rev ? t : t + 1;
        const float *h_prev = w->S + prev * n * H;
        if (s > 0 || h0)
            hlrk_gemm(0, 1, n, GH, H, 1.0f, h_prev, H, W_hh, H, 0.0f, r->hg, GH);
        else
            memset(r->hg, 0, (size_t)(n * GH) * sizeof(float));
        hlrk_gru_step(w->G + t * n * GH, r->bias, r->hg, b_hh + 2 * H, w->HN + t * n * H, h_prev, w->S + next * n * H,
                      active ? active + t * n : NULL, n, H);
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
    const int64_t T = r->T, H = r->hidden, GH = 3 * H, DH = r->dirs * H, rev = d == 1;
    const float *W_hh = rnn_param(r, k, d, 1);
    for (int64_t s = 0; s < T; s++) {
        int64_t t = rev ? s : T - 1 - s, prev = rev ? t + 1 : t;
        float *dGh = w->dGh + t * n * GH;
        hlrk_gru_step_backward(w->dG + t * n * GH, dGh, r->dh, dO ? dO + t * n * DH : NULL, DH, w->G + t * n * GH,
                               w->HN + t * n * H, w->S + prev * n * H, active ? active + t * n : NULL, n, H);
        if (s < T - 1 || want_dh0)
            hlrk_gemm(0, 0, n, H, GH, 1.0f, dGh, GH, W_hh, H, 1.0f, r->dh, H);
    }
    hlr__rnn_weight_grads(r, k, d, GH, w->dG, w->dGh, X, in, n, dX, overwrite_dx);
}

static const rnn_cell gru_cell = {.gates = 3, .forward = gru_forward, .backward = gru_backward};

static hlr_layer *gru_from_config(const hlr_config *c)
{
    int in, hidden, layers, flags;
    float dropout;
    if (hlr__rnn_config(c, "gru", &in, &hidden, &layers, &flags, &dropout))
        return NULL;
    return hlr_gru(in, hidden, layers, flags, dropout);
}

const hlr_layer_ops hlr__gru_ops = {
    .type = "gru",
    .build = hlr__rnn_build,
    .plan = hlr__rnn_plan,
    .forward = hlr__rnn_forward,
    .backward = hlr__rnn_backward,
    .destroy = hlr__rnn_destroy,
    .check_pass = hlr__rnn_check_pass,
    .get_config = hlr__rnn_get_config,
    .from_config = gru_from_config,
};

hlr_layer *hlr_gru(int input_size, int hidden_size, int num_layers, int flags, float dropout)
{
    return hlr__rnn_new(&hlr__gru_ops, &gru_cell, RNN_GRU, input_size, hidden_size, num_layers, flags, dropout,
                        "hlr_gru");
}

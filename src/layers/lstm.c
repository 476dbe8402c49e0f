/*
 * lstm.c -- the LSTM layer, torch.nn.LSTM's equations and gate order:
 *   i = sig(W_ii x + b_ii + W_hi h + b_hi)   f = sig(W_if x + b_if + W_hf h + b_hf)
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = sig(W_io x + b_io + W_ho h + b_ho)
 *   c' = f c + i g                           h' = o tanh(c')
 * This file holds the time loop of one direction; rnn.c the rest.
 *
 * Per direction, with T steps of n sequences: one GEMM projects every
 * step's input, one GEMM per step adds h W_hh^T (none for the first step
 * when the initial state is zero), the step kernel adds both biases, and
 * the backward pass does one GEMM per step for dh and one each for dW_ih,
 * dW_hh and dX.
 */
#include "../kernels/kernels.h"
#include "rnn.h"

#include <string.h>

/* X (T n, in) -> G, S, C, TC of direction d (see rnn.h for the layout). */
static void lstm_forward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                         const float *h0, const float *c0)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 4 * H, rev = d == 1;
    const float *W_ih = rnn_param(r, k, d, 0), *W_hh = rnn_param(r, k, d, 1);
    const float *b_ih = rnn_param(r, k, d, 2), *b_hh = rnn_param(r, k, d, 3);
    for (int64_t j = 0; j < GH; j++)
        r->bias[j] = b_ih[j] + b_hh[j];
    hlrk_gemm(0, 1, T * n, GH, in, 1.0f, X, in, W_ih, in, 0.0f, w->G, GH);

    int64_t first = rev ? T : 0;
    size_t state_bytes = (size_t)(n * H) * sizeof(float);
    if (h0)
        memcpy(w->S + first * n * H, h0, state_bytes);
    else
        memset(w->S + first * n * H, 0, state_bytes);
    if (c0)
        memcpy(w->C + first * n * H, c0, state_bytes);
    else
        memset(w->C + first * n * H, 0, state_bytes);
    for (int64_t s = 0; s < T; s++) {
        int64_t t = rev ? T - 1 - s : s, prev = rev ? t + 1 : t, next = rev ? t : t + 1;
        float *G = w->G + t * n * GH;
        const float *h_prev = w->S + prev * n * H;
        if (s > 0 || h0)
            hlrk_gemm(0, 1, n, GH, H, 1.0f, h_prev, H, W_hh, H, 1.0f, G, GH);
        hlrk_lstm_step(G, r->bias, h_prev, w->C + prev * n * H, w->S + next * n * H, w->C + next * n * H,
                       w->TC + t * n * H, active ? active + t * n : NULL, n, H);
    }
}

/*
 * Backward through time, last processed step first.  dG holds every step's
 * gate gradients, so afterwards
 *   dW_ih = dG^T X,  dW_hh = dG^T S_prev,  db_ih = db_hh = sum of dG rows,
 *   dX += dG W_ih,
 * where S_prev is the T blocks of states that entered the steps.
 */
static void lstm_backward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                          const float *dO, float *dX, int overwrite_dx, int want_dh0)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 4 * H, DH = r->dirs * H, rev = d == 1;
    const float *W_hh = rnn_param(r, k, d, 1);
    for (int64_t s = 0; s < T; s++) {
        int64_t t = rev ? s : T - 1 - s, prev = rev ? t + 1 : t;
        float *dG = w->dG + t * n * GH;
        hlrk_lstm_step_backward(dG, r->dh, r->dc, dO ? dO + t * n * DH : NULL, DH, w->G + t * n * GH,
                                w->C + prev * n * H, w->TC + t * n * H, active ? active + t * n : NULL, n, H);
        if (s < T - 1 || want_dh0)
            hlrk_gemm(0, 0, n, H, GH, 1.0f, dG, GH, W_hh, H, 1.0f, r->dh, H);
    }
    hlr__rnn_weight_grads(r, k, d, GH, w->dG, w->dG, X, in, n, dX, overwrite_dx);
}

static const rnn_cell lstm_cell = {.gates = 4, .forward = lstm_forward, .backward = lstm_backward};

static hlr_layer *lstm_from_config(const hlr_config *c)
{
    int in, hidden, layers, flags;
    float dropout;
    if (hlr__rnn_config(c, "lstm", &in, &hidden, &layers, &flags, &dropout))
        return NULL;
    return hlr_lstm(in, hidden, layers, flags, dropout);
}

const hlr_layer_ops hlr__lstm_ops = {
    .type = "lstm",
    .build = hlr__rnn_build,
    .plan = hlr__rnn_plan,
    .forward = hlr__rnn_forward,
    .backward = hlr__rnn_backward,
    .destroy = hlr__rnn_destroy,
    .check_pass = hlr__rnn_check_pass,
    .get_config = hlr__rnn_get_config,
    .from_config = lstm_from_config,
};

hlr_layer *hlr_lstm(int input_size, int hidden_size, int num_layers, int flags, float dropout)
{
    return hlr__rnn_new(&hlr__lstm_ops, &lstm_cell, RNN_LSTM, input_size, hidden_size, num_layers, flags, dropout,
                        "hlr_lstm");
}

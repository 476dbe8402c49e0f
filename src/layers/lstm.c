/*
 * lstm.c -- the LSTM layer, torch.nn.LSTM's equations and gate order:
 *   i = sig(W_ii x + b_ii + W_hi h + b_hi)   f = sig(W_if x + b_if + W_hf h + b_hf)
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = sig(W_io x + b_io + W_ho h + b_ho)
 *   c' = f c + i g                           h' = o tanh(c')
 * This file holds the time loop of one direction; rnn.c the rest.
 *
 * Per direction, with T steps of n sequences, by rows on a CPU with FMA:
 * each step projects its own input through W_ih packed and adds h W_hh^T
 * through W_hh packed (hlrk_gemm_packed, none for the first step when the
 * initial state is zero).  Otherwise one GEMM projects every step's input
 * (rnn_project), one GEMM per step adds h W_hh^T -- or, without FMA, for
 * 9 to 16 sequences whose input is no wider than the state, one GEMM per
 * step takes [x_t h_{t-1}] by [W_ih; W_hh]^T (rnn.h, RNN_JOINT_MAX) --, the
 * step kernel adds both biases, and
 * the backward pass does one GEMM per step for dh and one each for dW_ih,
 * dW_hh and dX.  A step's GEMM and kernel run together on each thread's
 * rows of the batch, each thread taking its rows through every step, or,
 * for 1 to 8 sequences, on each thread's hidden units (rnn.h, rnn_by_units).
 */
#include "../kernels/kernels.h"
#include "rnn.h"

#include <string.h>

/*
 * One time step on rows [a, b) of the batch: each pool thread takes its own
 * rows through the step's GEMM and the step kernel, so that no thread waits
 * while another runs an element-wise pass (the rows' results do not depend
 * on the split: each row's products run over the whole of K in order).
 */
typedef struct lstm_step_job {
    rnn *r;
    const float *W_hh, *W_hhT, *h_prev, *c_prev, *dout; /* W_hhT: rnn_rows_whh_t, [W_ih; W_hh]^T */
    const float *PW;                                    /* W_hh packed, made with W_hhT */
    const float *PWI; /* each step projecting its input x itself through W_ih packed (else x: [x h] by rows) */
    const float *x;   /* by rows: the step's input (n, in) */
    int64_t in;
    float *G, *h, *c, *tanh_c, *dG;
    const float *gates, *tc;
    const unsigned char *active;
    int64_t dout_stride, n;
    int gemm; /* forward: add h_prev W_hh^T; backward: add dG W_hh to dh */
} lstm_step_job;

static void lstm_step_part(void *ctx, int64_t a, int64_t b)
{
    const lstm_step_job *j = ctx;
    const int64_t H = j->r->hidden, GH = 4 * H, in = j->in, K = in + H;
    if (j->x && !j->PWI) { /* by rows: the gates' input side and state side in one product, [x h] [W_ih; W_hh]^T */
        float *cat = j->r->cat;
        for (int64_t i = a; i < b; i++) {
            memcpy(cat + i * K, j->x + i * in, (size_t)in * sizeof *cat);
            memcpy(cat + i * K + in, j->h_prev + i * H, (size_t)H * sizeof *cat);
        }
        hlrk_gemm1(0, 0, b - a, GH, K, 1.0f, cat + a * K, K, j->W_hhT, GH, 0.0f, j->G + a * GH, GH);
    } else {
        if (j->PWI) { /* x W_ih^T, then h W_hh^T added in place: one chain over [x h] for each gate */
            hlrk_gemm_count(b - a, GH, in);
            hlrk_gemm_packed(b - a, GH, in, j->x + a * in, in, j->PWI, j->G + a * GH, GH, NULL, 0, 0);
        }
        if (j->gemm)
            rnn_step_product(j->h_prev + a * H, b - a, j->W_hhT, j->PW, H, GH, 1, j->G + a * GH);
    }
    hlrk_lstm_step(j->G + a * GH, j->r->bias, j->h_prev + a * H, j->c_prev + a * H, j->h + a * H, j->c + a * H,
                   j->tanh_c + a * H, j->active ? j->active + a : NULL, b - a, H, 0, H);
}

/* The job of the s-th step processed (backwards in time for the reverse direction). */
static lstm_step_job lstm_step_at(const rnn_steps *u, int64_t s)
{
    const int64_t H = u->r->hidden, GH = 4 * H, n = u->n;
    int64_t t, prev, next;
    rnn_step_times(u->r->T, u->rev, s, &t, &prev, &next);
    const rnn_dir *w = u->w;
    const int64_t gt = u->reuse ? 0 : t; /* the block of G and TC the step writes */
    return (lstm_step_job){.r = u->r,
                           .W_hh = u->W_hh,
                           .W_hhT = u->W_hhT,
                           .PW = u->w->PW,
                           .h_prev = w->S + prev * n * H,
                           .c_prev = w->C + prev * n * H,
                           .G = w->G + gt * n * GH,
                           .h = w->S + next * n * H,
                           .c = w->C + next * n * H,
                           .tanh_c = w->TC + gt * n * H,
                           .x = u->X ? u->X + t * n * u->in : NULL,
                           .PWI = u->PWI,
                           .in = u->in,
                           .active = u->active ? u->active + t * n : NULL,
                           .n = n,
                           .gemm = s > 0 || u->h0};
}

/* Every step on rows [a, b) of the batch: a row's steps read only that row's earlier state, so each
 * thread takes its rows through the whole sequence, and a direction's forward is one hand-out, not one
 * a step (rnn.h: the threads no longer meet after each step). */
static void lstm_rows_part(void *ctx, int64_t a, int64_t b)
{
    const rnn_steps *u = ctx;
    for (int64_t s = 0; s < u->r->T; s++) {
        lstm_step_job j = lstm_step_at(u, s);
        lstm_step_part(&j, a, b);
    }
}

/* Step s on hidden units [j0, j1) of every row, in a forward by units (rnn.h, rnn_by_units). */
static void lstm_units_step(const rnn_steps *u, int64_t s, int64_t j0, int64_t j1)
{
    const lstm_step_job j = lstm_step_at(u, s);
    const int64_t H = u->r->hidden;
    if (j.gemm)
        rnn_units_product(j.h_prev, j.n, j.W_hh, H, 4, j0, j1, 1, j.G);
    hlrk_lstm_step(j.G, u->r->bias, j.h_prev, j.c_prev, j.h, j.c, j.tanh_c, j.active, j.n, H, j0, j1);
}

static void lstm_step_backward_part(void *ctx, int64_t a, int64_t b)
{
    const lstm_step_job *j = ctx;
    rnn *r = j->r;
    const int64_t H = r->hidden, GH = 4 * H;
    hlrk_lstm_step_backward(j->dG + a * GH, r->dh + a * H, r->dc + a * H, j->dout ? j->dout + a * j->dout_stride : NULL,
                            j->dout_stride, j->gates + a * GH, j->c_prev + a * H, j->tc + a * H,
                            j->active ? j->active + a : NULL, b - a, H);
    if (j->gemm)
        hlrk_gemm1(0, 0, b - a, H, GH, 1.0f, j->dG + a * GH, GH, j->W_hh, H, 1.0f, r->dh + a * H, H);
}

/* What a direction's backward steps are made from. */
typedef struct lstm_back {
    rnn *r;
    const rnn_dir *w;
    const float *W_hh, *dO;
    const unsigned char *active;
    int64_t n;
    int rev, want_dh0;
} lstm_back;

/* The job of the s-th step processed backward (the last in time first for the forward direction). */
static lstm_step_job lstm_back_at(const lstm_back *u, int64_t s)
{
    const int64_t T = u->r->T, H = u->r->hidden, GH = 4 * H, DH = u->r->dirs * H, n = u->n;
    int64_t t, prev;
    rnn_back_times(T, u->rev, s, &t, &prev);
    return (lstm_step_job){.r = u->r,
                           .W_hh = u->W_hh,
                           .dout = u->dO ? u->dO + t * n * DH : NULL,
                           .dout_stride = DH,
                           .dG = u->w->dG + t * n * GH,
                           .gates = u->w->G + t * n * GH,
                           .c_prev = u->w->C + prev * n * H,
                           .tc = u->w->TC + t * n * H,
                           .active = u->active ? u->active + t * n : NULL,
                           .gemm = s < T - 1 || u->want_dh0};
}

/* Every step backward on rows [a, b), one hand-out per direction (as lstm_rows_part). */
static void lstm_back_rows_part(void *ctx, int64_t a, int64_t b)
{
    const lstm_back *u = ctx;
    for (int64_t s = 0; s < u->r->T; s++) {
        lstm_step_job j = lstm_back_at(u, s);
        lstm_step_backward_part(&j, a, b);
    }
}

/* X (T n, in) -> G, S, C, TC of direction d (see rnn.h for the layout). */
static void lstm_forward(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                         const float *h0, const float *c0)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t T = r->T, H = r->hidden, GH = 4 * H, rev = d == 1;
    const float *W_hh = rnn_param(r, k, d, 1);
    const float *b_ih = rnn_param(r, k, d, 2), *b_hh = rnn_param(r, k, d, 3);
    const int units = rnn_by_units(n);
    const int joint =
        !units && n > RNN_UNITS_MAX && n <= RNN_JOINT_MAX && rnn_joint_in(r, k) > 0 && !hlrk_fma_runs();
    const float *W_hhT = joint ? hlr__rnn_whh_t(r, k, d, 1) : rnn_rows_whh_t(r, k, d, units, h0);
    for (int64_t j = 0; j < GH; j++)
        r->bias[j] = b_ih[j] + b_hh[j];
    /* By rows where the CPU has FMA, each step projects its own input too (lstm_step_part), its gates then
     * made in cache: projected first, all steps' gates (T n 4H floats, 14.7 MB for the lstm model at 256)
     * went to memory and came back a step at a time. */
    const int per_step = !units && !joint && hlrk_fma_runs();
    if (!joint && !per_step) /* otherwise each step projects its own input, in its product with the state */
        rnn_project(r, k, d, X, in, T * n, GH, w->G);

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
    rnn_steps u = {.r = r,
                   .w = w,
                   .W_hh = W_hh,
                   .W_hhT = W_hhT,
                   .X = joint || per_step ? X : NULL,
                   .PWI = per_step ? hlr__rnn_wih_packed(r, k, d) : NULL,
                   .active = active,
                   .n = n,
                   .in = in,
                   .rev = (int)rev,
                   .h0 = h0 != NULL,
                   .reuse = r->infer && (per_step || joint)};
    if (units) {
        hlr__rnn_by_units(&u, 4, lstm_units_step);
        return;
    }
    hlr__parallel_for(n, RNN_STEP_GRAIN, lstm_rows_part, &u);
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
    const int64_t GH = 4 * r->hidden;
    lstm_back u = {.r = r, .w = w, .W_hh = rnn_param(r, k, d, 1), .dO = dO, .active = active, .n = n,
                   .rev = d == 1, .want_dh0 = want_dh0};
    hlr__parallel_for(n, RNN_STEP_GRAIN, lstm_back_rows_part, &u);
    hlr__rnn_weight_grads(r, k, d, GH, w->dG, w->dG, X, in, n, dX, overwrite_dx);
}

static const rnn_cell lstm_cell = {
    .kind = RNN_LSTM, .type = "lstm", .fn = "hlr_lstm", .gates = 4, .forward = lstm_forward, .backward = lstm_backward};

extern const hlr_layer_ops hlr__lstm_ops;

static hlr_layer *lstm_from_config(const hlr_config *c) { return hlr__rnn_from_config(c, &hlr__lstm_ops, &lstm_cell); }

const hlr_layer_ops hlr__lstm_ops = HLR__RNN_OPS("lstm", lstm_from_config);

hlr_layer *hlr_lstm(int input_size, int hidden_size, int num_layers, int flags, float dropout)
{
    return hlr__rnn_new(&hlr__lstm_ops, &lstm_cell, input_size, hidden_size, num_layers, flags, dropout);
}

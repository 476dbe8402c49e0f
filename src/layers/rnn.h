/*
 * rnn.h -- what lstm.c, gru.c and rnn.c share: the recurrent layer's state,
 * its planned workspace, and the cell-specific time loops.
 *
 * rnn.c does everything the two cells have in common: parameters, shapes,
 * the workspace, stacking with dropout between layers, both directions,
 * sequence lengths, the caller's initial state and the final state.  A cell
 * (lstm.c, gru.c) supplies only the time loop of one direction of one
 * layer, forward and backward.
 *
 * Layout.  Inside the layer every sequence is time-major, (T, n, features)
 * for a batch of n, so that one time step is a contiguous (n, features)
 * block and all steps of a direction are one (T n, features) matrix: the
 * input projection of every step is a single GEMM, and so is each weight
 * gradient.  The states of direction d live in S (T+1, n, H): forward,
 * S[0] is the initial state and S[t+1] the state after step t; reverse,
 * S[T] is the initial state and S[t] the state after step t.  Either way
 * the states that enter steps 0..T-1 are T consecutive blocks (S or S + 1
 * block), which is what makes dW_hh one GEMM.
 */
#ifndef HLR_LAYERS_RNN_H
#define HLR_LAYERS_RNN_H

#include "../internal.h"
#include "../kernels/kernels.h"

#define RNN_MAX_LAYERS 8 /* num_layers * directions * 4 parameters <= HLR_MAX_PARAMS */

enum { RNN_LSTM = 0, RNN_GRU = 1 };

/* Workspace of one direction of one layer, for the planned batch. */
typedef struct rnn_dir {
    float *G;   /* (T, n, G H) gate activations (LSTM i f g o; GRU r z n) */
    float *dG;  /* (T, n, G H) gradients of the gates' input-side pre-activations */
    float *dGh; /* GRU: (T, n, 3H) gradients of the hidden-side pre-activations */
    float *S;   /* (T+1, n, H) hidden states, see above */
    float *C;   /* LSTM: (T+1, n, H) cell states, same layout */
    float *TC;  /* LSTM: (T, n, H) tanh of the cell state after each step */
    float *HN;  /* GRU: (T, n, H) W_hn h + b_hn of each step */
    float *WT;  /* (H, G H) W_hh transposed, for a forward by rows (hlr__rnn_whh_t); LSTM: (in + H, 4H),
                 * W_ih^T above W_hh^T, in the layer's input size */
    float *PW;     /* W_hh packed for hlrk_gemm_packed (hlrk_packed_floats(G H, H)), made with WT's W_hh part */
    float *PWI, *PWI_seen; /* W_ih packed for the input projection (rnn_project), and the W_ih it was made from */
    hlr_weights_seen pwi_seen;
    float *W_seen; /* (G H, H) the W_hh that WT was made from; LSTM: W_ih (4H, in), then W_hh */
    hlr_weights_seen wt_seen, wi_seen; /* W_hh's and (LSTM) W_ih's part of WT (not valid after a plan) */
} rnn_dir;

typedef struct rnn rnn;

/* A cell's time loops for direction d of layer k (see lstm.c, gru.c). */
typedef struct rnn_cell {
    int kind;          /* RNN_LSTM or RNN_GRU */
    const char *type;  /* the layer type: "lstm" */
    const char *fn;    /* its constructor, for messages: "hlr_lstm" */
    int gates;         /* 4 for the LSTM, 3 for the GRU */
    /* X (T n, in): the layer's input.  h0, c0 (n, H): the initial state,
     * NULL for zeros.  Fills the direction's G, S (and C, TC or HN). */
    void (*forward)(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                    const float *h0, const float *c0);
    /* dO (rows of T n, stride DH, already offset to the direction's columns)
     * is the output gradient, NULL for none; r->dh and r->dc hold the
     * gradient of the final state on entry.  Writes the weight and bias
     * gradients, adds dX (T n, in) when dX is not NULL (overwrites when
     * overwrite_dx), and leaves dL/dh0, dL/dc0 in r->dh, r->dc when
     * want_dh0 (otherwise their contents are undefined). */
    void (*backward)(rnn *r, int k, int d, const float *X, int64_t in, int64_t n, const unsigned char *active,
                     const float *dO, float *dX, int overwrite_dx, int want_dh0);
} rnn_cell;

struct rnn {
    hlr_layer base;
    const rnn_cell *cell;
    int kind; /* RNN_LSTM or RNN_GRU */
    int input_size, hidden, num_layers, flags, dirs;
    float dropout;
    int64_t T; /* time steps, from the input shape */

    /* Workspace for up to `planned` samples, one allocation. */
    int64_t planned;
    float *arena;
    unsigned char *active; /* (T, n): step t of sample i is inside its length */
    rnn_dir dir[RNN_MAX_LAYERS][2];
    float *O[RNN_MAX_LAYERS];    /* (T, n, D H) each layer's output, zero past a sequence's end */
    float *mask[RNN_MAX_LAYERS]; /* (T, n, D H) dropout scale on O[k] (k < layers - 1) */
    float *XD[RNN_MAX_LAYERS];   /* (T, n, D H) O[k] after dropout: layer k+1's input in training */
    float *X0;                   /* (T, n, F) the layer's input, time-major, zero past a sequence's end */
    float *dA, *dB;              /* (T, n, max(F, D H)) gradients between layers, ping-pong */
    float *dh, *dc;              /* (n, H) running gradients of the state */
    float *hg;                   /* GRU: (n, 3H) h W_hh^T of one step */
    float *bias;                 /* (G H) the biases folded into the input projection */
    float *cat;                  /* LSTM by rows: (n <= RNN_JOINT_MAX, in + H) each row's step input and state */

    /* What the last forward did, for backward and hlr_rnn_final_state. */
    int64_t last_batch; /* 0 before the first forward */
    int infer;          /* the forward under way is an inference no backward follows (hlr_pass.no_backward) */
    int used_lengths, used_dropout, used_state;

    /* The caller's initial state (hlr_rnn_set_initial_state): (layers D, state_n, H). */
    float *h0, *c0, *dh0, *dc0;
    int64_t state_n, state_cap;
    int have_dh0; /* dh0, dc0 hold the gradients of the last backward */
};

/* The rows of W_ih^T kept above W_hh^T for layer k: its input's width where the layer, an LSTM's, may
 * take a step's input and state in one product (an input no wider than the state: RNN_JOINT_MAX below),
 * else 0. */
static inline int64_t rnn_joint_in(const rnn *r, int k)
{
    const int64_t in = k == 0 ? r->input_size : (int64_t)r->dirs * r->hidden;
    return r->kind == RNN_LSTM && in <= r->hidden ? in : 0;
}

/* Parameter i (0 w_ih, 1 w_hh, 2 b_ih, 3 b_hh) of direction d of layer k, and its gradient. */
static inline float *rnn_param(rnn *r, int k, int d, int i)
{
    return hlr__param(&r->base, (k * r->dirs + d) * 4 + i);
}
static inline float *rnn_grad(rnn *r, int k, int d, int i)
{
    return hlr__grad(&r->base, (k * r->dirs + d) * 4 + i);
}

/*
 * The end of one direction's backward pass, the same for both cells: with
 * G = gates wide, dG (T n, G) the input-side and dGh the hidden-side
 * pre-activation gradients of all steps (the same buffer for the LSTM),
 *   dW_ih = dG^T X,  dW_hh = dGh^T S_prev,  db_ih, db_hh = row sums,
 *   dX (+)= dG W_ih  (overwritten when overwrite_dx, skipped when dX is NULL).
 */
void hlr__rnn_weight_grads(rnn *r, int k, int d, int64_t G, const float *dG, const float *dGh, const float *X,
                           int64_t in, int64_t n, float *dX, int overwrite_dx);

/*
 * A step's product h W_hh^T on a few rows: OpenBLAS's NT path packs all of W_hh for every step, which
 * on up to 16 rows costs more than the product itself.
 *
 * Up to RNN_UNITS_MAX sequences, where the few-rows kernel takes that many rows (hlrk_gemm_rows_max:
 * AVX-512 or AVX2 with FMA), a forward goes by units (rnn_by_units): the hidden units, in blocks of
 * RNN_UNIT_BLOCK, are shared among a team of threads (hlr__parallel_team) that stays together for the
 * whole sequence, each taking the same units at every step: their gate columns' products through
 * hlrk_gemm_rows on W_hh in place, then their state; the team meets at a barrier after each step.  The
 * kernel's sums do not depend on how the columns are split, so the bits do not depend on the thread
 * count; each thread reads only its rows of W_hh, which stay in its core's cache from step to step; a
 * batch of one, which rows cannot share, is shared; and no copy of W_hh^T is made or compared with W_hh
 * on each call.  A step of fewer than RNN_UNIT_SPLIT_MIN multiply-adds is one thread's.  The cut, from
 * a loop of hlr_model_forward (docs/design.md, "Recurrent layers and sequences", has hlr-bench's
 * figures): by units against W_hh^T below, two threads, the lstm model, AVX-512 and OpenBLAS's SkylakeX
 * kernel: batch 1 7,426-7,730 -> 10,053-10,060 img/s, 2
 * 10,572 -> 12,046, 3 9,310 -> 13,676, 4 15,279 -> 14,858, 8 15,685 -> 15,528, 16 22,928 -> 17,453 (and
 * so 16 stays below); the AVX2 build on OpenBLAS's Haswell kernel: batch 1 7,045 -> 7,157, 2 3,177 ->
 * 8,611, 4 5,753 -> 9,048, 8 8,130 -> 10,515.  (A fork and join per step instead of the team's barrier
 * gave batch 1 only 8,571-8,871.)
 *
 * Every other batch multiplies by W_hh^T (hlr__rnn_whh_t, remade when W_hh changed): on up to 16 rows
 * OpenBLAS's NN path on it does not pack, and one row goes to sgemv on it (hlrk_gemm); on more, its NN
 * product packs W_hh^T faster than the NT one packs W_hh (two threads, AVX-512, SkylakeX kernel,
 * alternating: lstm inference at batch 64 23,626-24,363 -> 27,074-27,256 img/s, at 256 31,955-33,216 ->
 * 33,092-34,940; gru 30,642-31,767 -> 34,417-35,391 and 41,333-44,219 -> 44,565-46,089; lstm training
 * at batch 64 9,168-9,795 -> 9,797-10,070; the AVX2 build on the Haswell kernel: lstm 64 19,876-21,219
 * -> 21,568-22,343, 256 level).  Where the CPU has FMA, a step by rows now multiplies by W_hh packed
 * (the direction's PW, made with W_hh^T; hlrk_gemm_packed adding each product to the gates in place, in
 * training too), and the input projection goes through W_ih packed (rnn_project): no per-call copy of a
 * weight, no zeroing of G (alternating, 2 threads, Intel Xeon, 2026-12-06, img/s: lstm inference at
 * 256 46,631-47,236 -> 54,135-54,693 on AVX-512, level on the AVX2 path, whose kernel and OpenBLAS's
 * both run at its peak; at 64, the step alone, 37,446-38,662 -> 47,313-49,934 and 27,901-28,429 ->
 * 32,658-32,774; gru
 * at 256 +4-8 %; lstm training at 256 +8 % on AVX-512).  A step's rows are shared out in parts of at least RNN_STEP_GRAIN: below
 * it a part costs more to hand out than it saves (measured with a hand-out per step, as the GRU still
 * does; the LSTM hands its parts out once for the whole sequence).  A batch of 16 on two threads is two
 * parts of 8.
 *
 * The LSTM hands each thread its rows once for all T steps, forward and backward (a row's step reads
 * only its own earlier state), where the GRU hands them out at each step: alternating, 2 threads,
 * AVX-512, SkylakeX kernel, one hand-out per direction against one a step, img/s: lstm inference at
 * batch 32 22,133-22,644 -> 26,440-27,790, 64 28,011-28,228 -> 30,609-30,645, 256 level, training at 64
 * 10,707-11,106 -> 11,396-11,699; the AVX2 build on the Haswell kernel level to 3 % faster; but the gru
 * at 64 36,278-37,622 -> 35,478-36,627 and its training 13,794-14,032 -> 13,165-13,561, so it kept
 * meeting after each step.
 */
#define RNN_STEP_GRAIN 8
#define RNN_UNITS_MAX 8
/*
 * On a CPU without FMA (with FMA every batch by rows projects each step's input in the step through W_ih
 * packed, lstm.c), an LSTM batch of RNN_UNITS_MAX + 1 to RNN_JOINT_MAX sequences by rows (also where the
 * CPU has no few-rows kernel and smaller batches go by rows too), whose input is no wider than its state
 * (rnn_joint_in), takes each step's input and state side by side, [x_t h_{t-1}] (rows, in + H), through one
 * product with [W_ih; W_hh]^T (hlr__rnn_whh_t with_input) that writes the step's gates, instead of
 * projecting every step's input first (one product over all T n rows, whose K = in is mostly packing)
 * and then adding each step's h W_hh^T to it.  Measured (hlr-bench --infer-batch N, 2 threads,
 * alternating with the projection first, Intel Xeon, 2026-12-05), img/s: AVX-512 lstm at 12
 * 19,931-20,784 -> 21,047-21,653, 16 28,476-29,713 -> 38,261-38,297 (a second run, three rounds: 12
 * 18,691-19,288 -> 19,893-21,864, 16 28,213-28,296 -> 33,406-34,710), 24 level, 32 32,474-33,356 ->
 * 28,236-28,492, 64 8-13 % slower, 256 level; AVX2 build on OpenBLAS's Haswell kernel: 12
 * 11,612-12,055 -> 13,677-13,732, 16 17,517-18,065 -> 19,643-20,084, 24 level to +8 %, 32 and 256 level.
 * The hybrid model's LSTM (input 448 wide, state 128) at 16: 17,444-17,556 -> 12,757-13,146 (AVX2
 * 11,239-11,275 -> 10,025-10,067): each step then reads all of W_ih again, so a wide input keeps the
 * projection.  The step's sums run in another order than projection-then-add: other bits than a batch
 * of more rows or of fewer (as by units already), the same on any thread count.
 */
#define RNN_JOINT_MAX 16
#define RNN_UNIT_BLOCK 16
#define RNN_UNIT_SPLIT_MIN ((int64_t)1 << 15)
static inline int rnn_by_units(int64_t n)
{
    return n <= RNN_UNITS_MAX && n <= hlrk_gemm_rows_max();
}
/* The unit blocks of a step by units, and the threads to share them: one when the step is small. */
static inline int64_t rnn_unit_blocks(int64_t H)
{
    return (H + RNN_UNIT_BLOCK - 1) / RNN_UNIT_BLOCK;
}
static inline int rnn_unit_team(int64_t n, int64_t G, int64_t H)
{
    if (n * G * H * H < RNN_UNIT_SPLIT_MIN)
        return 1;
    const int threads = hlr__pool_threads();
    return rnn_unit_blocks(H) < threads ? (int)rnn_unit_blocks(H) : threads;
}
/* Units [j0, j1) of unit blocks [a, b). */
static inline void rnn_unit_range(int64_t a, int64_t b, int64_t H, int64_t *j0, int64_t *j1)
{
    *j0 = a * RNN_UNIT_BLOCK;
    *j1 = b * RNN_UNIT_BLOCK < H ? b * RNN_UNIT_BLOCK : H;
}
/* Step s of a direction's loop (the s-th processed; the reverse direction runs backwards in time): its
 * time t, and the blocks of S holding the state it reads (prev) and the one it writes (next). */
static inline void rnn_step_times(int64_t T, int rev, int64_t s, int64_t *t, int64_t *prev, int64_t *next)
{
    *t = rev ? T - 1 - s : s;
    *prev = rev ? *t + 1 : *t;
    *next = rev ? *t : *t + 1;
}
/* Step s of a direction's backward pass, which runs the forward's steps in reverse (the forward's step
 * T - 1 - s): its time t and the block of S holding the state that entered it (prev). */
static inline void rnn_back_times(int64_t T, int rev, int64_t s, int64_t *t, int64_t *prev)
{
    int64_t next;
    rnn_step_times(T, rev, T - 1 - s, t, prev, &next);
}
/* What a direction's forward steps are made from (each cell's step_at gives step s's job; b_hn: GRU). */
typedef struct rnn_steps {
    rnn *r;
    rnn_dir *w;
    const float *W_hh, *W_hhT, *b_hn;
    const float *X; /* LSTM by rows: the layer's input (T n, in), time-major */
    const float *PWI; /* LSTM by rows with FMA: W_ih packed, each step projecting its own input (lstm.c) */
    const unsigned char *active;
    int64_t n, in;
    int rev, h0;
    int reuse; /* LSTM: every step's gates (and tanh c) in the first step's block: an inference whose steps
                * make their own gates (nothing reads them after the step) */
} rnn_steps;
/* A forward by units of a cell with G gates: step(u, s, j0, j1) runs step s on hidden units [j0, j1) of
 * every row, and hlr__rnn_by_units runs the team (rnn_unit_team's threads) through the layer's T steps
 * (and counts the steps' products in the benchmarks' tally). */
typedef void (*rnn_units_step)(const rnn_steps *u, int64_t s, int64_t j0, int64_t j1);
void hlr__rnn_by_units(const rnn_steps *u, int64_t G, rnn_units_step step);
/* Gate columns g H + j0 .. g H + j1 of out (rows, G H) (+)= h (rows, H) W_hh^T, for each of the G gates. */
static inline void rnn_units_product(const float *h, int64_t rows, const float *W_hh, int64_t H, int64_t G, int64_t j0,
                                     int64_t j1, int add, float *out)
{
    for (int64_t g = 0; g < G; g++)
        hlrk_gemm_rows(rows, j1 - j0, H, h, H, W_hh + (g * H + j0) * H, H, out + g * H + j0, G * H, add);
}
/* W_hh of direction d of layer k transposed, (H, G H), remade when W_hh changed since the last call
 * (hlr__weights_changed), and with it W_hh packed (the direction's PW); with_input (LSTM): W_ih^T above
 * it, (in + H, 4H), for the steps that take their input's and their state's products in one (lstm.c,
 * RNN_JOINT_MAX).  Called before a forward's time loop, never inside it. */
const float *hlr__rnn_whh_t(rnn *r, int k, int d, int with_input);
/* W_ih of direction d of layer k packed for hlrk_gemm_packed, remade when W_ih changed since the last call. */
const float *hlr__rnn_wih_packed(rnn *r, int k, int d);
/* The W_hh^T a forward by rows multiplies by, or NULL where no step multiplies: a forward by units (which
 * reads W_hh in place), or one step from a zero state. */
static inline const float *rnn_rows_whh_t(rnn *r, int k, int d, int units, const float *h0)
{
    return units || (r->T == 1 && !h0) ? NULL : hlr__rnn_whh_t(r, k, d, 0);
}
/* A step's out (rows, G H) = h (rows, H) W_hh^T, added to out with add: where the CPU has FMA through PW,
 * W_hh packed (hlrk_gemm_packed), else through W_hhT (H, G H); both made by hlr__rnn_whh_t. */
static inline void rnn_step_product(const float *h, int64_t rows, const float *W_hhT, const float *PW, int64_t H,
                                    int64_t GH, int add, float *out)
{
    if (hlrk_fma_runs()) {
        hlrk_gemm_count(rows, GH, H);
        hlrk_gemm_packed(rows, GH, H, h, H, PW, out, GH, NULL, 0, add);
    } else
        hlrk_gemm1(0, 0, rows, GH, H, 1.0f, h, H, W_hhT, GH, add ? 1.0f : 0.0f, out, GH);
}

/*
 * The input projection of all T steps of direction d of layer k, G (T n, G H) = X (T n, in) W_ih^T, one
 * product: a few rows (a short sequence at a small batch: the hybrid model's 7 rows at batch 1) through
 * hlrk_gemm_rows_split, whose kernel reads W_ih in place where sgemm would copy all of it; more, where the
 * CPU has FMA, through W_ih packed (hlr__rnn_wih_packed; OpenBLAS had zeroed G and packed W_ih on every
 * call and thread, a fifth of the lstm's time at 256 on AVX-512), else through sgemm.  (Projecting a few
 * steps at a time, so that each step found its gates in cache, was 3-5 % faster on one thread and 10-25 %
 * slower on two: each step's product was split among the threads by columns and its gates then read by
 * rows; docs/design.md, "Recurrent layers and sequences".)
 */
static inline void rnn_project(rnn *r, int k, int d, const float *X, int64_t in, int64_t rows, int64_t GH, float *G)
{
    if (rows > hlrk_gemm_rows_max() && hlrk_fma_runs())
        hlrk_gemm_packed_split(rows, GH, in, X, in, hlr__rnn_wih_packed(r, k, d), G, GH, NULL, 0, 0);
    else
        hlrk_gemm_rows_split(rows, GH, in, X, in, rnn_param(r, k, d, 0), in, G, GH);
}

/* The layer behind hlr_lstm / hlr_gru (rnn.c). */
hlr_layer *hlr__rnn_new(const hlr_layer_ops *ops, const rnn_cell *cell, int input_size, int hidden, int num_layers,
                        int flags, float dropout);
/* The same from the configuration hlr__rnn_get_config wrote (NULL, error set, when it is bad). */
hlr_layer *hlr__rnn_from_config(const hlr_config *c, const hlr_layer_ops *ops, const rnn_cell *cell);
/* The ops table of a recurrent layer type: rnn.c's functions, its name and from_config. */
#define HLR__RNN_OPS(name, from_config_fn)                                                                             \
    {                                                                                                                  \
        .type = (name), .build = hlr__rnn_build, .plan = hlr__rnn_plan, .forward = hlr__rnn_forward,                   \
        .backward = hlr__rnn_backward, .destroy = hlr__rnn_destroy, .check_pass = hlr__rnn_check_pass,                 \
        .get_config = hlr__rnn_get_config, .from_config = (from_config_fn)                                             \
    }
hlr_status hlr__rnn_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng);
hlr_status hlr__rnn_plan(hlr_layer *l, int64_t max_batch);
void hlr__rnn_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y);
void hlr__rnn_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx);
void hlr__rnn_destroy(hlr_layer *l);
hlr_status hlr__rnn_check_pass(const hlr_layer *l, int64_t batch, const void *input);
void hlr__rnn_get_config(const hlr_layer *l, hlr_config *c);

#endif

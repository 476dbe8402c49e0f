/*
 * rnn.c -- what the LSTM and GRU layers share: parameters with torch's
 * names, shapes, the workspace planned once, stacking with dropout between
 * layers, both directions, sequence lengths, and the caller's initial and
 * final states.  The time loops are the cells' (lstm.c, gru.c); rnn.h
 * describes the layout.
 *
 * Input (N, T, F) batch-first; output (N, T, D H) with
 * HLR_RETURN_SEQUENCES, else (N, D H): the last layer's final states,
 * forward then reverse (for one direction, the output at each sequence's
 * last step).
 */
#include "rnn.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>


#define KNOWN_FLAGS (HLR_RETURN_SEQUENCES | HLR_BIDIRECTIONAL)

hlr_layer *hlr__rnn_new(const hlr_layer_ops *ops, const rnn_cell *cell, int input_size, int hidden, int num_layers,
                        int flags, float dropout)
{
    const char *fn = cell->fn;
    int dirs = flags & HLR_BIDIRECTIONAL ? 2 : 1;
    if (input_size < 1 || hidden < 1) {
        hlr__fail(HLR_EINVAL, "%s: input_size %d and hidden_size %d must both be >= 1", fn, input_size, hidden);
        return NULL;
    }
    if (num_layers < 1 || num_layers * dirs * 4 > HLR_MAX_PARAMS) {
        hlr__fail(HLR_EINVAL, "%s: num_layers %d outside 1..%d%s", fn, num_layers, HLR_MAX_PARAMS / (4 * dirs),
                  dirs == 2 ? " (bidirectional)" : "");
        return NULL;
    }
    if (hlr__check_flags_dropout(fn, flags, KNOWN_FLAGS, "HLR_RETURN_SEQUENCES and HLR_BIDIRECTIONAL", dropout) !=
        HLR_OK)
        return NULL;
    rnn *r = (rnn *)hlr__layer_alloc(ops, sizeof *r);
    if (!r)
        return NULL;
    r->cell = cell;
    r->kind = cell->kind;
    r->input_size = input_size;
    r->hidden = hidden;
    r->num_layers = num_layers;
    r->flags = flags;
    r->dirs = dirs;
    r->dropout = dropout;
    return &r->base;
}

/* weight_ih_l0 (G H, F), weight_hh_l0 (G H, H), bias_ih_l0, bias_hh_l0 (G H),
 * then _reverse for the other direction, then l1 ..., all U(-1/sqrt(H), 1/sqrt(H)). */
hlr_status hlr__rnn_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    rnn *r = (rnn *)l;
    if (in->ndim != 2 || in->d[1] != r->input_size) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, %d)", hlr__shape_str(in, s, sizeof s),
                               r->input_size);
    }
    r->T = in->d[0];
    int64_t GH = (int64_t)r->cell->gates * r->hidden, H = r->hidden;
    static const char *const kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    float bound = 1.0f / sqrtf((float)r->hidden);
    for (int k = 0; k < r->num_layers; k++)
        for (int d = 0; d < r->dirs; d++)
            for (int i = 0; i < 4; i++) {
                char name[HLR_PARAM_NAME_MAX];
                snprintf(name, sizeof name, "%s_l%d%s", kinds[i], k, d ? "_reverse" : "");
                int64_t cols = i == 0 ? (k == 0 ? r->input_size : r->dirs * H) : H;
                hlr_status st = i < 2 ? hlr__layer_add_param(l, name, 2, (int64_t[]){GH, cols})
                                      : hlr__layer_add_param(l, name, 1, (int64_t[]){GH});
                if (st != HLR_OK)
                    return st;
                hlr_param *p = &l->params[l->nparams - 1];
                hlr__init_uniform(p->value.data, p->value.numel, bound, rng);
            }
    *out = (hlr_shape){.ndim = r->flags & HLR_RETURN_SEQUENCES ? 2 : 1};
    if (r->flags & HLR_RETURN_SEQUENCES) {
        out->d[0] = r->T;
        out->d[1] = r->dirs * H;
    } else {
        out->d[0] = r->dirs * H;
    }
    return HLR_OK;
}

/* Carve the arena for n samples; with arena NULL only count the floats. */
static int64_t layout(rnn *r, float *arena, int64_t n)
{
    int64_t T = r->T, H = r->hidden, D = r->dirs, F = r->input_size, GH = (int64_t)r->cell->gates * H;
    int64_t TN = T * n, DH = D * H, wide = F > DH ? F : DH;
    hlr__carve c = {arena, 0};
    for (int k = 0; k < r->num_layers; k++) {
        const int64_t wk = rnn_joint_in(r, k) + H; /* WT's rows */
        for (int d = 0; d < D; d++) {
            rnn_dir *w = &r->dir[k][d];
            hlr__take(&c, &w->G, TN * GH);
            hlr__take(&c, &w->dG, TN * GH);
            hlr__take(&c, &w->S, (T + 1) * n * H);
            if (r->kind == RNN_LSTM) {
                hlr__take(&c, &w->C, (T + 1) * n * H);
                hlr__take(&c, &w->TC, TN * H);
            } else {
                hlr__take(&c, &w->dGh, TN * GH);
                hlr__take(&c, &w->HN, TN * H);
            }
            hlr__take(&c, &w->WT, GH * wk);
            hlr__take(&c, &w->PW, hlrk_packed_floats(GH, H));
            const int64_t in_k = k == 0 ? F : DH; /* layer k's input width */
            hlr__take(&c, &w->PWI, hlrk_packed_floats(GH, in_k));
            hlr__take(&c, &w->PWI_seen, GH * in_k);
            w->pwi_seen.valid = 0;
            hlr__take(&c, &w->W_seen, GH * wk);
            w->wt_seen.valid = w->wi_seen.valid = 0;
        }
        hlr__take(&c, &r->O[k], TN * DH);
        if (k < r->num_layers - 1 && r->dropout > 0.0f) {
            hlr__take(&c, &r->mask[k], TN * DH);
            hlr__take(&c, &r->XD[k], TN * DH);
        }
    }
    hlr__take(&c, &r->X0, TN * F);
    hlr__take(&c, &r->dA, TN * wide);
    hlr__take(&c, &r->dB, TN * wide);
    hlr__take(&c, &r->dh, n * H);
    hlr__take(&c, &r->dc, n * H);
    hlr__take(&c, &r->hg, n * GH);
    hlr__take(&c, &r->bias, GH);
    if (r->kind == RNN_LSTM) /* rows of at most 2H: rnn_joint_in(r, k) <= H */
        hlr__take(&c, &r->cat, (n < RNN_JOINT_MAX ? n : RNN_JOINT_MAX) * 2 * H);
    return c.used;
}

hlr_status hlr__rnn_plan(hlr_layer *l, int64_t max_batch)
{
    rnn *r = (rnn *)l;
    if (max_batch <= r->planned)
        return HLR_OK;
    int64_t floats = layout(r, NULL, max_batch), steps;
    if (floats > INT64_MAX / 8 || hlr__mul_overflows(r->T, max_batch, &steps))
        return hlr__layer_fail(l, HLR_ENOMEM, "a batch of %lld sequences is too large", (long long)max_batch);
    float *arena = hlr__alloc_or_fail((size_t)floats, sizeof(float), "recurrent workspace");
    unsigned char *active = hlr__alloc_or_fail((size_t)steps, 1, "recurrent workspace");
    if (!arena || !active) {
        hlr__free(arena);
        hlr__free(active);
        return HLR_ENOMEM;
    }
    hlr__free(r->arena);
    hlr__free(r->active);
    r->arena = arena;
    r->active = active;
    r->planned = max_batch;
    r->last_batch = 0;
    layout(r, arena, max_batch);
    return HLR_OK;
}

/* WT (cols, GH) = W^T for W (GH, cols), in tiles, so that the writes, GH apart, stay in cache (remade at
 * every training step). */
static void transpose_into(float *WT, const float *W, int64_t GH, int64_t cols)
{
    enum { TILE = 32 };
    for (int64_t g0 = 0; g0 < GH; g0 += TILE)
        for (int64_t h0 = 0; h0 < cols; h0 += TILE)
            for (int64_t g = g0; g < g0 + TILE && g < GH; g++)
                for (int64_t h = h0; h < h0 + TILE && h < cols; h++)
                    WT[h * GH + g] = W[g * cols + h];
}

const float *hlr__rnn_whh_t(rnn *r, int k, int d, int with_input)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t H = r->hidden, GH = (int64_t)r->cell->gates * H;
    const int64_t in = rnn_joint_in(r, k); /* W_ih^T's rows above W_hh^T */
    if (with_input && in > 0 &&
        hlr__weights_changed(&r->base, &w->wi_seen, w->W_seen, rnn_param(r, k, d, 0), GH * in))
        transpose_into(w->WT, rnn_param(r, k, d, 0), GH, in);
    if (hlr__weights_changed(&r->base, &w->wt_seen, w->W_seen + GH * in, rnn_param(r, k, d, 1), GH * H)) {
        transpose_into(w->WT + in * GH, rnn_param(r, k, d, 1), GH, H);
        hlrk_pack_weights(w->PW, rnn_param(r, k, d, 1), GH, H);
    }
    return with_input ? w->WT : w->WT + in * GH;
}

const float *hlr__rnn_wih_packed(rnn *r, int k, int d)
{
    rnn_dir *w = &r->dir[k][d];
    const int64_t GH = (int64_t)r->cell->gates * r->hidden, in = k == 0 ? r->input_size : (int64_t)r->dirs * r->hidden;
    if (hlr__weights_changed(&r->base, &w->pwi_seen, w->PWI_seen, rnn_param(r, k, d, 0), GH * in))
        hlrk_pack_weights(w->PWI, rnn_param(r, k, d, 0), GH, in);
    return w->PWI;
}

/* One thread's part of a forward by units: its unit blocks through every step, the team meeting at a
 * barrier between steps (rnn.h). */
typedef struct units_team {
    const rnn_steps *u;
    rnn_units_step step;
    hlr_barrier bar;
} units_team;

static void units_part(void *ctx, int part, int parts)
{
    units_team *team = ctx;
    const rnn *r = team->u->r;
    const int64_t H = r->hidden, blocks = rnn_unit_blocks(H);
    int64_t j0, j1;
    rnn_unit_range(blocks * part / parts, blocks * (part + 1) / parts, H, &j0, &j1);
    for (int64_t s = 0; s < r->T; s++) {
        if (s > 0)
            hlr__barrier_wait(&team->bar, parts);
        team->step(team->u, s, j0, j1);
    }
}

void hlr__rnn_by_units(const rnn_steps *u, int64_t G, rnn_units_step step)
{
    const int64_t H = u->r->hidden, T = u->r->T;
    hlrk_gemm_count(u->n * (u->h0 ? T : T - 1), G * H, H); /* every step's product but a zero state's */
    units_team team = {.u = u, .step = step};
    hlr__parallel_team(rnn_unit_team(u->n, G, H), units_part, &team);
}

static void free_state(rnn *r);

void hlr__rnn_destroy(hlr_layer *l)
{
    rnn *r = (rnn *)l;
    hlr__free(r->arena);
    hlr__free(r->active);
    free_state(r);
}

hlr_status hlr__rnn_check_pass(const hlr_layer *l, int64_t batch, const void *input)
{
    (void)input;
    const rnn *r = (const rnn *)l;
    if (r->state_n && r->state_n != batch)
        return hlr__layer_fail(l, HLR_ESHAPE, "the initial state was given for %lld sequences, the batch has %lld",
                               (long long)r->state_n, (long long)batch);
    return HLR_OK;
}

/* Where the final state of direction d of layer k lies (n rows of H). */
static float *final_state(rnn *r, int k, int d, int cell, int64_t n)
{
    const rnn_dir *w = &r->dir[k][d];
    float *base = cell ? w->C : w->S;
    return d == 0 ? base + r->T * n * r->hidden : base;
}

/* x (n, T, F) -> y: see the top of the file. */
void hlr__rnn_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    rnn *r = (rnn *)l;
    const int64_t n = p->batch, T = r->T, F = r->input_size, H = r->hidden, D = r->dirs, DH = D * H, TN = T * n;
    const unsigned char *act = NULL;
    r->infer = p->no_backward;
    if (p->lengths) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < n; i++)
                r->active[t * n + i] = t < p->lengths[i];
        act = r->active;
    }
    /* The input, time-major; steps past a sequence's end read as zeros. */
    for (int64_t t = 0; t < T; t++)
        hlrk_copy_rows_masked(r->X0 + t * n * F, F, x + t * F, T * F, act ? act + t * n : NULL, n, F);

    int use_state = r->state_n == n;
    int drop = p->training && r->dropout > 0.0f && r->num_layers > 1;
    const float keep = 1.0f / (1.0f - r->dropout);
    const float *in = r->X0;
    int64_t in_size = F;
    for (int k = 0; k < r->num_layers; k++) {
        for (int d = 0; d < D; d++) {
            int64_t slot = (int64_t)(k * D + d) * n * H;
            r->cell->forward(r, k, d, in, in_size, n, act, use_state ? r->h0 + slot : NULL,
                             use_state && r->c0 ? r->c0 + slot : NULL);
            /* the direction's outputs: h after each step, zero past the end
             * (not needed when the top layer only gives its final state) */
            const float *S = r->dir[k][d].S + (d == 0 ? n * H : 0);
            int need = k < r->num_layers - 1 || (r->flags & HLR_RETURN_SEQUENCES);
            for (int64_t t = 0; t < T && need; t++)
                hlrk_copy_rows_masked(r->O[k] + t * n * DH + d * H, DH, S + t * n * H, H, act ? act + t * n : NULL, n,
                                      H);
        }
        in = r->O[k];
        if (drop && k < r->num_layers - 1) {
            float *m = r->mask[k], *xd = r->XD[k];
            for (int64_t i = 0; i < TN * DH; i++) {
                m[i] = hlr__rng_uniform(p->rng) < r->dropout ? 0.0f : keep;
                xd[i] = in[i] * m[i];
            }
            in = xd;
        }
        in_size = DH;
    }
    if (r->flags & HLR_RETURN_SEQUENCES) {
        hlrk_transpose_01(y, r->O[r->num_layers - 1], T, n, DH);
    } else {
        for (int d = 0; d < D; d++)
            hlrk_copy_rows_masked(y + d * H, DH, final_state(r, r->num_layers - 1, d, 0, n), H, NULL, n, H);
    }
    r->last_batch = n;
    r->used_lengths = act != NULL;
    r->used_dropout = drop;
    r->used_state = use_state;
    r->have_dh0 = 0;
}

void hlr__rnn_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    rnn *r = (rnn *)l;
    const int64_t n = p->batch, T = r->T, F = r->input_size, H = r->hidden, D = r->dirs, DH = D * H, TN = T * n;
    const unsigned char *act = r->used_lengths ? r->active : NULL;
    const int top = r->num_layers - 1, seq = (r->flags & HLR_RETURN_SEQUENCES) != 0;
    /* dO of the layer being processed, (T, n, D H); NULL when the top layer's output is its final state. */
    float *dO = NULL;
    if (seq) {
        hlrk_transpose_01(r->dA, dy, n, T, DH);
        dO = r->dA;
    }
    int want_dh0 = r->used_state && r->state_n == n;
    for (int k = top; k >= 0; k--) {
        const float *X = k == 0 ? r->X0 : r->used_dropout ? r->XD[k - 1] : r->O[k - 1];
        int64_t in = k == 0 ? F : DH;
        float *dX = k > 0 || dx ? (dO == r->dA ? r->dB : r->dA) : NULL;
        for (int d = 0; d < D; d++) {
            /* gradient of the final state: from dy when it is the output */
            if (k == top && !seq)
                hlrk_copy_rows_masked(r->dh, H, dy + d * H, DH, NULL, n, H);
            else
                memset(r->dh, 0, (size_t)(n * H) * sizeof *r->dh);
            memset(r->dc, 0, (size_t)(n * H) * sizeof *r->dc);
            r->cell->backward(r, k, d, X, in, n, act, dO ? dO + d * H : NULL, dX, d == 0, want_dh0);
            if (want_dh0) {
                int64_t slot = (int64_t)(k * D + d) * n * H;
                memcpy(r->dh0 + slot, r->dh, (size_t)(n * H) * sizeof *r->dh);
                if (r->dc0)
                    memcpy(r->dc0 + slot, r->dc, (size_t)(n * H) * sizeof *r->dc);
            }
        }
        if (k > 0) {
            if (r->used_dropout) {
                const float *m = r->mask[k - 1];
                for (int64_t i = 0; i < TN * DH; i++)
                    dX[i] *= m[i];
            }
            dO = dX;
        } else if (dx) {
            hlrk_transpose_01(dx, dX, T, n, F);
        }
    }
    r->have_dh0 = want_dh0;
}

/* ---- configuration ---- */

void hlr__rnn_get_config(const hlr_layer *l, hlr_config *c)
{
    const rnn *r = (const rnn *)l;
    hlr__config_int(c, "input_size", r->input_size);
    hlr__config_int(c, "hidden_size", r->hidden);
    hlr__config_int(c, "num_layers", r->num_layers);
    hlr__config_int(c, "return_sequences", (r->flags & HLR_RETURN_SEQUENCES) != 0);
    hlr__config_int(c, "bidirectional", (r->flags & HLR_BIDIRECTIONAL) != 0);
    hlr__config_float(c, "dropout", r->dropout);
}

hlr_layer *hlr__rnn_from_config(const hlr_config *c, const hlr_layer_ops *ops, const rnn_cell *cell)
{
    const char *type = cell->type;
    int in, hidden, layers, seq, bi;
    float dropout;
    if (hlr__config_int_in(c, type, "input_size", 1, INT32_MAX, &in) ||
        hlr__config_int_in(c, type, "hidden_size", 1, INT32_MAX, &hidden) ||
        hlr__config_int_in(c, type, "num_layers", 1, RNN_MAX_LAYERS, &layers) ||
        hlr__config_int_in(c, type, "return_sequences", 0, 1, &seq) ||
        hlr__config_int_in(c, type, "bidirectional", 0, 1, &bi) || hlr__config_float_of(c, type, "dropout", &dropout))
        return NULL;
    return hlr__rnn_new(ops, cell, in, hidden, layers, (seq ? HLR_RETURN_SEQUENCES : 0) | (bi ? HLR_BIDIRECTIONAL : 0),
                        dropout);
}

/* ---- the public state API ---- */

static rnn *as_rnn(hlr_layer *l, const char *fn)
{
    if (!l) {
        hlr__fail(HLR_EINVAL, "%s: layer is NULL", fn);
        return NULL;
    }
    if (l->ops->forward != hlr__rnn_forward) { /* not a layer this file runs (lstm, gru) */
        hlr__fail(HLR_EINVAL, "%s: a %s layer has no recurrent state (lstm or gru only)", fn, l->ops->type);
        return NULL;
    }
    return (rnn *)l;
}

/* t must be float32 (layers D, n, H); n < 0 takes any n >= 1.  Returns n or a negative status. */
static int64_t check_state(const rnn *r, const hlr_tensor *t, int64_t n, const char *fn, const char *what)
{
    hlr_status st = hlr__check_tensor(t, HLR_F32, fn);
    if (st != HLR_OK)
        return st;
    int64_t LD = (int64_t)r->num_layers * r->dirs;
    if (t->ndim != 3 || t->shape[0] != LD || t->shape[2] != r->hidden || (n >= 0 && t->shape[1] != n)) {
        char want[64];
        if (n >= 0)
            snprintf(want, sizeof want, "(%lld, %lld, %d)", (long long)LD, (long long)n, r->hidden);
        else
            snprintf(want, sizeof want, "(%lld, N, %d)", (long long)LD, r->hidden);
        return hlr__fail(HLR_ESHAPE, "%s: %s must be %s (layers x directions, batch, hidden)", fn, what, want);
    }
    return t->shape[1];
}

static void free_state(rnn *r)
{
    hlr__free(r->h0);
    hlr__free(r->c0);
    hlr__free(r->dh0);
    hlr__free(r->dc0);
    r->h0 = r->c0 = r->dh0 = r->dc0 = NULL;
    r->state_n = r->state_cap = 0;
    r->have_dh0 = 0;
}

/* h0, dh0 and, for the LSTM, c0, dc0 all exist while a state is set; a
 * state the caller leaves out is zeros. */
hlr_status hlr_rnn_set_initial_state(hlr_layer *l, const hlr_tensor *h0, const hlr_tensor *c0)
{
    const char *fn = "hlr_rnn_set_initial_state";
    rnn *r = as_rnn(l, fn);
    if (!r)
        return HLR_EINVAL;
    int lstm = r->kind == RNN_LSTM;
    if (c0 && !lstm)
        return hlr__fail(HLR_EINVAL, "%s: a GRU has no cell state; pass c0 NULL", fn);
    if (!h0 && !c0) {
        free_state(r);
        return HLR_OK;
    }
    int64_t n = check_state(r, h0 ? h0 : c0, -1, fn, h0 ? "h0" : "c0");
    if (n < 0)
        return (hlr_status)n;
    if (h0 && c0 && (n = check_state(r, c0, n, fn, "c0")) < 0)
        return (hlr_status)n;
    int64_t count = (h0 ? h0 : c0)->numel;
    if (count > r->state_cap) {
        float *b[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < (lstm ? 4 : 2); i++)
            if (!(b[i] = hlr__alloc_or_fail((size_t)count, sizeof(float), fn))) {
                for (int j = 0; j < i; j++)
                    hlr__free(b[j]);
                return HLR_ENOMEM;
            }
        free_state(r);
        r->h0 = b[0];
        r->dh0 = b[1];
        r->c0 = b[2];
        r->dc0 = b[3];
        r->state_cap = count;
    }
    size_t bytes = (size_t)count * sizeof(float);
    if (h0)
        memcpy(r->h0, h0->data, bytes);
    else
        memset(r->h0, 0, bytes);
    if (c0)
        memcpy(r->c0, c0->data, bytes);
    else if (lstm)
        memset(r->c0, 0, bytes);
    r->state_n = n;
    r->have_dh0 = 0;
    return HLR_OK;
}

hlr_status hlr_rnn_final_state(hlr_layer *l, hlr_tensor *h_n, hlr_tensor *c_n)
{
    const char *fn = "hlr_rnn_final_state";
    rnn *r = as_rnn(l, fn);
    if (!r)
        return HLR_EINVAL;
    if (c_n && r->kind != RNN_LSTM)
        return hlr__fail(HLR_EINVAL, "%s: a GRU has no cell state; pass c_n NULL", fn);
    int64_t n = r->last_batch;
    if (!n)
        return hlr__fail(HLR_ESTATE, "%s: the layer has not run a forward pass since its buffers were planned", fn);
    int64_t got;
    if ((h_n && (got = check_state(r, h_n, n, fn, "h_n")) < 0) ||
        (c_n && (got = check_state(r, c_n, n, fn, "c_n")) < 0))
        return (hlr_status)got;
    int64_t H = r->hidden;
    for (int k = 0; k < r->num_layers; k++)
        for (int d = 0; d < r->dirs; d++) {
            int64_t slot = (int64_t)(k * r->dirs + d) * n * H;
            if (h_n)
                memcpy((float *)h_n->data + slot, final_state(r, k, d, 0, n), (size_t)(n * H) * sizeof(float));
            if (c_n)
                memcpy((float *)c_n->data + slot, final_state(r, k, d, 1, n), (size_t)(n * H) * sizeof(float));
        }
    return HLR_OK;
}

hlr_status hlr_rnn_initial_state_grad(hlr_layer *l, hlr_tensor *dh0, hlr_tensor *dc0)
{
    const char *fn = "hlr_rnn_initial_state_grad";
    rnn *r = as_rnn(l, fn);
    if (!r)
        return HLR_EINVAL;
    if (dc0 && r->kind != RNN_LSTM)
        return hlr__fail(HLR_EINVAL, "%s: a GRU has no cell state; pass dc0 NULL", fn);
    if (!r->have_dh0)
        return hlr__fail(HLR_ESTATE, "%s: no backward pass has run since an initial state was set and used", fn);
    int64_t n = r->state_n, got;
    if ((dh0 && (got = check_state(r, dh0, n, fn, "dh0")) < 0) ||
        (dc0 && (got = check_state(r, dc0, n, fn, "dc0")) < 0))
        return (hlr_status)got;
    size_t bytes = (size_t)(r->num_layers * r->dirs * n * r->hidden) * sizeof(float);
    if (dh0)
        memcpy(dh0->data, r->dh0, bytes);
    if (dc0)
        memcpy(dc0->data, r->dc0, bytes);
    return HLR_OK;
}

void hlr__rnn_weight_grads(rnn *r, int k, int d, int64_t G, const float *dG, const float *dGh, const float *X,
                           int64_t in, int64_t n, float *dX, int overwrite_dx)
{
    const int64_t T = r->T, H = r->hidden, rev = d == 1;
    const float *S_prev = r->dir[k][d].S + (rev ? n * H : 0);
    hlrk_gemm(1, 0, G, in, T * n, 1.0f, dG, G, X, in, 0.0f, rnn_grad(r, k, d, 0), in);
    hlrk_gemm(1, 0, G, H, T * n, 1.0f, dGh, G, S_prev, H, 0.0f, rnn_grad(r, k, d, 1), H);
    hlrk_sum_rows(rnn_grad(r, k, d, 2), dG, T * n, G);
    if (dGh == dG) /* both biases enter the same pre-activation */
        memcpy(rnn_grad(r, k, d, 3), rnn_grad(r, k, d, 2), (size_t)G * sizeof(float));
    else
        hlrk_sum_rows(rnn_grad(r, k, d, 3), dGh, T * n, G);
    if (dX)
        hlrk_gemm(0, 0, T * n, in, G, 1.0f, dG, G, rnn_param(r, k, d, 0), in, overwrite_dx ? 0.0f : 1.0f, dX, in);
}

/*
 * test_recurrent.c -- the recurrent layers (LSTM, GRU), the embedding and
 * the sequence layers: values and gradients against PyTorch
 * (fixtures/rnn_ref.h, written by fixtures/gen_rnn_ref.py), gradients
 * against finite differences for every layer and option, sequence lengths,
 * initial and final states, token-id models end to end, and the errors.
 */
#include "testutil.h"

#include "fixtures/rnn_ref.h"
#include "kernels/kernels.h" /* hlrk_no_fma_for_tests */
#include "testutil_internal.h" /* the model's generator, to replay a dropout mask; configurations */

#include <stdatomic.h>
#include <stdlib.h>

Suite *suite_recurrent(void);

/* ------------------------------------------------------------------------ */
/* Against PyTorch                                                           */
/* ------------------------------------------------------------------------ */

static hlr_tensor *tensor3(int64_t a, int64_t b, int64_t c, const float *data)
{
    int64_t shape[] = {a, b, c};
    hlr_tensor *t = data ? hlr_tensor_from(HLR_F32, 3, shape, data) : hlr_tensor_new(HLR_F32, 3, shape);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(test_rnn_matches_torch)
{
    const rnn_ref_case *c = &rnn_ref_cases[_i];
    const int D = c->bidirectional ? 2 : 1,
              flags = (c->sequences ? HLR_RETURN_SEQUENCES : 0) | (c->bidirectional ? HLR_BIDIRECTIONAL : 0);
    const int64_t N = c->N, T = c->T, F = c->input_size, H = c->hidden, LD = (int64_t)c->layers * D;
    hlr_model *m = hlr_model_new(1);
    hlr_layer *l = c->gru ? hlr_gru(c->input_size, c->hidden, c->layers, flags, 0.0f)
                          : hlr_lstm(c->input_size, c->hidden, c->layers, flags, 0.0f);
    ck_assert_ok(hlr_model_add(m, l));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
    ck_assert_int_eq(hlr_layer_param_count(l), c->nparams);
    for (int i = 0; i < c->nparams; i++) {
        ck_assert_str_eq(hlr_layer_param_name(l, i), c->names[i]);
        hlr_tensor *p = hlr_layer_param(l, c->names[i]);
        ck_assert_msg(p != NULL, "%s: no parameter %s: %s", c->name, c->names[i], hlr_last_error());
        memcpy(hlr_tensor_data(p), c->params[i], (size_t)hlr_tensor_numel(p) * sizeof(float));
    }
    if (c->lengths)
        ck_assert_ok(hlr_model_set_lengths(m, c->lengths, N));
    hlr_tensor *h0 = NULL, *c0 = NULL;
    if (c->h0) {
        h0 = tensor3(LD, N, H, c->h0);
        c0 = c->c0 ? tensor3(LD, N, H, c->c0) : NULL;
        ck_assert_ok(hlr_rnn_set_initial_state(l, h0, c0));
    }
    int64_t ys[3] = {N, c->sequences ? T : D * H, D * H};
    hlr_tensor *x = tensor3(N, T, F, c->x), *dx = tensor3(N, T, F, NULL);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, c->sequences ? 3 : 2, ys);
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, c->sequences ? 3 : 2, ys, c->dy);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_torch_close(c->name, "y", hlr_tensor_f32(y), c->y, hlr_tensor_numel(y));

    hlr_tensor *h_n = tensor3(LD, N, H, NULL), *c_n = c->gru ? NULL : tensor3(LD, N, H, NULL);
    ck_assert_ok(hlr_rnn_final_state(l, h_n, c_n));
    expect_torch_close(c->name, "h_n", hlr_tensor_f32(h_n), c->h_n, LD * N * H);
    if (c_n)
        expect_torch_close(c->name, "c_n", hlr_tensor_f32(c_n), c->c_n, LD * N * H);

    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_torch_close(c->name, "dx", hlr_tensor_f32(dx), c->dx, N * T * F);
    for (int i = 0; i < c->nparams; i++) {
        hlr_tensor *g = hlr_layer_grad(l, c->names[i]);
        char what[64];
        snprintf(what, sizeof what, "grad %s", c->names[i]);
        expect_torch_close(c->name, what, hlr_tensor_f32(g), c->grads[i], hlr_tensor_numel(g));
    }
    if (c->h0) {
        hlr_tensor *dh0 = tensor3(LD, N, H, NULL), *dc0 = c->c0 ? tensor3(LD, N, H, NULL) : NULL;
        ck_assert_ok(hlr_rnn_initial_state_grad(l, dh0, dc0));
        expect_torch_close(c->name, "dh0", hlr_tensor_f32(dh0), c->dh0, LD * N * H);
        if (dc0)
            expect_torch_close(c->name, "dc0", hlr_tensor_f32(dc0), c->dc0, LD * N * H);
        hlr_tensor_free(dh0);
        hlr_tensor_free(dc0);
    }
    hlr_tensor_free(h0);
    hlr_tensor_free(c0);
    hlr_tensor_free(h_n);
    hlr_tensor_free(c_n);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Finite differences                                                        */
/* ------------------------------------------------------------------------ */

/*
 * The scalar checked is L = sum(y * r) for a fixed random r, so dL/dy = r.
 * Before every forward the model's generator is put back where it was, so
 * dropout draws the same mask each time and finite differences apply.
 */
#define FD_EPS 1e-2
#define FD_RTOL 2e-2
#define FD_ATOL 2e-3
#define FD_POSITIONS 40 /* per tensor, spread over it, the last included */

typedef struct fd {
    hlr_model *m;
    hlr_tensor *x, *y, *r;
    hlr_rng rng; /* the generator's state at the first forward */
    hlr_layer *state_layer;
    hlr_tensor *h0, *c0; /* the initial state set on state_layer, or NULL */
    double eps;
} fd;

static double fd_loss(fd *g)
{
    g->m->rng = g->rng;
    ck_assert_ok(hlr_model_forward(g->m, g->x, g->y, 1));
    const float *y = hlr_tensor_f32(g->y), *r = hlr_tensor_f32(g->r);
    double l = 0;
    for (int64_t i = 0; i < hlr_tensor_numel(g->y); i++)
        l += (double)y[i] * r[i];
    return l;
}

/* dL/dv by central differences; v may be an element of the initial state. */
static double fd_numeric(fd *g, float *v)
{
    float keep = *v;
    double l[2];
    for (int k = 0; k < 2; k++) {
        *v = keep + (k ? -1.0f : 1.0f) * (float)g->eps;
        if (g->state_layer)
            ck_assert_ok(hlr_rnn_set_initial_state(g->state_layer, g->h0, g->c0));
        l[k] = fd_loss(g);
    }
    *v = keep;
    if (g->state_layer)
        ck_assert_ok(hlr_rnn_set_initial_state(g->state_layer, g->h0, g->c0));
    return (l[0] - l[1]) / (2 * g->eps);
}

static void fd_compare(const char *what, int64_t i, double analytic, double num)
{
    double scale = fabs(analytic) > fabs(num) ? fabs(analytic) : fabs(num);
    ck_assert_msg(fabs(analytic - num) <= FD_ATOL + FD_RTOL * scale,
                  "%s[%lld]: backward gives %.6g, finite differences %.6g", what, (long long)i, analytic, num);
}

/* Check `analytic` (a copy) against finite differences over the n values at v. */
static void fd_check_tensor(fd *g, const char *what, const float *analytic, float *v, int64_t n)
{
    int64_t step = n / FD_POSITIONS + 1;
    for (int64_t i = 0; i < n; i += step)
        fd_compare(what, i, analytic[i], fd_numeric(g, &v[i]));
    fd_compare(what, n - 1, analytic[n - 1], fd_numeric(g, &v[n - 1]));
}

static float *copy_of(const hlr_tensor *t)
{
    float *c = malloc((size_t)hlr_tensor_numel(t) * sizeof *c);
    ck_assert_ptr_nonnull(c);
    memcpy(c, hlr_tensor_data(t), (size_t)hlr_tensor_numel(t) * sizeof *c);
    return c;
}

/* What a gradient check may add to the plain case. */
typedef struct fd_options {
    const int32_t *lengths; /* per sample, NULL: none */
    hlr_layer *state_layer; /* set a random initial state on it and check its gradient */
    double eps;             /* the finite-difference step; 0: FD_EPS */
} fd_options;

/*
 * Build m for samples of `shape`, batch n, fill the input (values of
 * magnitude 0.1..1, or token ids 1.. when the first layer is an embedding),
 * then check dL/dx (float input), every parameter of every layer and, if
 * asked, the initial state's gradient.
 */
static void gradcheck(hlr_model *m, int ndim, const int64_t *shape, int64_t n, unsigned long long seed,
                      const fd_options *o)
{
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    fd g = {.m = m, .eps = o && o->eps > 0 ? o->eps : FD_EPS};
    int64_t xs[HLR_MAX_DIMS + 1] = {n}, ys[HLR_MAX_DIMS + 1] = {n};
    memcpy(xs + 1, shape, (size_t)ndim * sizeof *shape);
    int yd;
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys + 1));
    hlr_layer *first = hlr_model_layer(m, 0);
    int tokens = strcmp(hlr_layer_type(first), "embedding") == 0;
    g.x = hlr_tensor_new(tokens ? HLR_I32 : HLR_F32, ndim + 1, xs);
    g.y = hlr_tensor_new(HLR_F32, yd + 1, ys);
    g.r = hlr_tensor_new(HLR_F32, yd + 1, ys);
    hlr_tensor *dx = tokens ? NULL : hlr_tensor_new(HLR_F32, ndim + 1, xs);
    int64_t nx = hlr_tensor_numel(g.x);
    unsigned long long s = seed * 7 + 1;
    if (tokens) {
        int64_t vocab = hlr_tensor_dim(hlr_layer_param(first, "weight"), 0);
        for (int64_t i = 0; i < nx; i++)
            hlr_tensor_i32(g.x)[i] = 1 + (int32_t)(test_rand(&s) * (float)(vocab - 1)); /* 0 may pad */
    } else {
        float *x = hlr_tensor_f32(g.x);
        test_fill(x, (long)nx, seed, 0.1f, 1.0f);
        for (int64_t i = 0; i < nx; i++)
            if (test_rand(&s) < 0.5f)
                x[i] = -x[i];
    }
    test_fill(hlr_tensor_f32(g.r), (long)hlr_tensor_numel(g.r), seed + 99, -1.0f, 1.0f);
    if (o && o->lengths)
        ck_assert_ok(hlr_model_set_lengths(m, o->lengths, n));
    if (o && o->state_layer) {
        g.state_layer = o->state_layer;
        int lstm = strcmp(hlr_layer_type(g.state_layer), "lstm") == 0;
        int64_t ld = 0, hidden = 0;
        for (int p = 0; p < hlr_layer_param_count(g.state_layer); p++)
            ld += strncmp(hlr_layer_param_name(g.state_layer, p), "weight_hh", 9) == 0;
        hidden = hlr_tensor_dim(hlr_layer_param(g.state_layer, "weight_hh_l0"), 1);
        g.h0 = tensor3(ld, n, hidden, NULL);
        test_fill(hlr_tensor_f32(g.h0), (long)hlr_tensor_numel(g.h0), seed + 5, -0.8f, 0.8f);
        if (lstm) {
            g.c0 = tensor3(ld, n, hidden, NULL);
            test_fill(hlr_tensor_f32(g.c0), (long)hlr_tensor_numel(g.c0), seed + 6, -0.8f, 0.8f);
        }
        ck_assert_ok(hlr_rnn_set_initial_state(g.state_layer, g.h0, g.c0));
    }

    /* Analytic gradients, kept before the finite differences disturb the buffers. */
    g.rng = m->rng;
    fd_loss(&g);
    hlr_tensor *r = hlr_tensor_from(HLR_F32, yd + 1, ys, hlr_tensor_f32(g.r));
    ck_assert_ok(hlr_model_backward(m, r, dx));
    hlr_tensor_free(r);
    float *adx = dx ? copy_of(dx) : NULL, *adh0 = NULL, *adc0 = NULL;
    if (g.state_layer) {
        hlr_tensor *t = tensor3(hlr_tensor_dim(g.h0, 0), n, hlr_tensor_dim(g.h0, 2), NULL);
        hlr_tensor *u = g.c0 ? tensor3(hlr_tensor_dim(g.h0, 0), n, hlr_tensor_dim(g.h0, 2), NULL) : NULL;
        ck_assert_ok(hlr_rnn_initial_state_grad(g.state_layer, t, u));
        adh0 = copy_of(t);
        adc0 = u ? copy_of(u) : NULL;
        hlr_tensor_free(t);
        hlr_tensor_free(u);
    }
    int nl = hlr_model_num_layers(m);
    float *saved[16][HLR_MAX_PARAMS] = {{0}};
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++)
            saved[li][p] = copy_of(hlr_layer_grad(l, hlr_layer_param_name(l, p)));
    }

    if (adx)
        fd_check_tensor(&g, "dx", adx, hlr_tensor_f32(g.x), nx);
    if (adh0)
        fd_check_tensor(&g, "dh0", adh0, hlr_tensor_f32(g.h0), hlr_tensor_numel(g.h0));
    if (adc0)
        fd_check_tensor(&g, "dc0", adc0, hlr_tensor_f32(g.c0), hlr_tensor_numel(g.c0));
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            const char *name = hlr_layer_param_name(l, p);
            hlr_tensor *pt = hlr_layer_param(l, name);
            char what[96];
            snprintf(what, sizeof what, "layer %d (%s) d%s", li, hlr_layer_type(l), name);
            fd_check_tensor(&g, what, saved[li][p], hlr_tensor_f32(pt), hlr_tensor_numel(pt));
            free(saved[li][p]);
        }
    }
    free(adx);
    free(adh0);
    free(adc0);
    hlr_tensor_free(g.x);
    hlr_tensor_free(dx);
    hlr_tensor_free(g.y);
    hlr_tensor_free(g.r);
    hlr_tensor_free(g.h0);
    hlr_tensor_free(g.c0);
    hlr_model_free(m);
}

/* A model of the listed layers (testutil.h). */
#define MODEL(...) TEST_MODEL(4321, __VA_ARGS__)

/* The loop tests below run once for the LSTM (_i = 0) and once for the GRU (_i = 1). */
static hlr_layer *rnn(int gru, int in, int hidden, int layers, int flags, float dropout)
{
    hlr_layer *l = gru ? hlr_gru(in, hidden, layers, flags, dropout) : hlr_lstm(in, hidden, layers, flags, dropout);
    ck_assert_ptr_nonnull(l);
    return l;
}

START_TEST(test_rnn_sequences_match_finite_differences)
{
    gradcheck(MODEL(rnn(_i, 4, 5, 1, HLR_RETURN_SEQUENCES, 0)), 2, (int64_t[]){6, 4}, 3, 1, NULL);
}
END_TEST

START_TEST(test_rnn_two_bidirectional_layers_match_finite_differences)
{
    gradcheck(MODEL(rnn(_i, 3, 4, 2, HLR_RETURN_SEQUENCES | HLR_BIDIRECTIONAL, 0)), 2, (int64_t[]){5, 3}, 2, 2, NULL);
}
END_TEST

START_TEST(test_rnn_last_step_matches_finite_differences)
{
    gradcheck(MODEL(rnn(_i, 4, 5, 2, HLR_BIDIRECTIONAL, 0), hlr_dense(10, 3, 1)), 2, (int64_t[]){5, 4}, 3, 3, NULL);
}
END_TEST

START_TEST(test_rnn_initial_state_matches_finite_differences)
{
    hlr_layer *l = rnn(_i, 3, 4, 2, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0);
    gradcheck(MODEL(l), 2, (int64_t[]){4, 3}, 2, 4, &(fd_options){.state_layer = l});
}
END_TEST

START_TEST(test_rnn_lengths_match_finite_differences)
{
    static const int32_t lengths[] = {5, 2, 1, 4};
    hlr_layer *l = rnn(_i, 3, 4, 2, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0);
    gradcheck(MODEL(l), 2, (int64_t[]){5, 3}, 4, 5, &(fd_options){.lengths = lengths, .state_layer = l});
}
END_TEST

START_TEST(test_rnn_lengths_last_step_match_finite_differences)
{
    static const int32_t lengths[] = {1, 6, 3};
    gradcheck(MODEL(rnn(_i, 3, 4, 1, HLR_BIDIRECTIONAL, 0), hlr_dense(8, 2, 1)), 2, (int64_t[]){6, 3}, 3, 6,
              &(fd_options){.lengths = lengths});
}
END_TEST

START_TEST(test_rnn_dropout_between_layers_matches_finite_differences)
{
    gradcheck(MODEL(rnn(_i, 3, 4, 3, HLR_RETURN_SEQUENCES, 0.4f)), 2, (int64_t[]){4, 3}, 3, 7, NULL);
}
END_TEST

START_TEST(test_rnn_batch_of_one_and_one_step_match_finite_differences)
{
    gradcheck(MODEL(rnn(_i, 4, 3, 2, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0)), 2, (int64_t[]){7, 4}, 1, 8, NULL);
    gradcheck(MODEL(rnn(_i, 4, 3, 2, HLR_BIDIRECTIONAL, 0)), 2, (int64_t[]){1, 4}, 3, 9, NULL);
}
END_TEST

START_TEST(test_rnn_wide_hidden_matches_finite_differences)
{
    /* 37 = two 16-wide vectors and a tail: every path of the vectorised gate loops */
    gradcheck(MODEL(rnn(_i, 5, 37, 1, 0, 0)), 2, (int64_t[]){3, 5}, 2, 10, NULL);
}
END_TEST

START_TEST(test_image_rows_then_rnn_matches_finite_differences)
{
    gradcheck(MODEL(hlr_image_rows(), rnn(_i, 4, 6, 1, 0, 0), hlr_dense(6, 3, 1)), 3, (int64_t[]){1, 5, 4}, 2, 11,
              NULL);
}
END_TEST

START_TEST(test_embedding_matches_finite_differences)
{
    /* (T) ids -> (T, 4) -> dense on each step */
    gradcheck(MODEL(hlr_embedding(11, 4, -1), hlr_dense(4, 3, 1)), 1, (int64_t[]){6}, 3, 12, NULL);
}
END_TEST

START_TEST(test_embedding_rnn_mean_with_lengths_matches_finite_differences)
{
    static const int32_t lengths[] = {3, 7, 1};
    gradcheck(MODEL(hlr_embedding(9, 4, 0), rnn(_i, 4, 5, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0),
                    hlr_seq_mean(), hlr_dense(10, 3, 1)),
              1, (int64_t[]){7}, 3, 13, &(fd_options){.lengths = lengths});
}
END_TEST

START_TEST(test_feature_map_rows_matches_finite_differences)
{
    gradcheck(MODEL(hlr_feature_map_rows(), hlr_dense(15, 2, 1)), 3, (int64_t[]){3, 4, 5}, 2, 14, NULL);
}
END_TEST

/* Columns as steps: exactly torch's x.permute(0, 3, 1, 2).reshape(N, W, C * H), and its gradient. */
START_TEST(test_feature_map_columns_is_the_permutation_and_matches_finite_differences)
{
    enum { N = 2, C = 3, H = 4, W = 5 };
    hlr_model *m = MODEL(hlr_feature_map_columns());
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){C, H, W}));
    float xv[N * C * H * W];
    test_fill(xv, N * C * H * W, 6, -1, 1);
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){N, C, H, W}, xv);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, W, C * H});
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    const float *yd = hlr_tensor_f32(y);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    ck_assert(yd[((n * W + w) * C + c) * H + h] == xv[((n * C + c) * H + h) * W + w]);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
    gradcheck(MODEL(hlr_feature_map_columns(), hlr_dense(12, 2, 1)), 3, (int64_t[]){3, 4, 5}, 2, 15, NULL);
}
END_TEST

/* _i: 0 seq_last, 1 seq_mean; each after a dense layer, without and with lengths. */
START_TEST(test_sequence_reductions_match_finite_differences)
{
    static const int32_t lengths[] = {2, 5, 1};
    gradcheck(MODEL(hlr_dense(6, 5, 1), _i ? hlr_seq_mean() : hlr_seq_last()), 2, (int64_t[]){5, 6}, 3, 15, NULL);
    gradcheck(MODEL(hlr_dense(6, 5, 1), _i ? hlr_seq_mean() : hlr_seq_last()), 2, (int64_t[]){5, 6}, 3, 16,
              &(fd_options){.lengths = lengths});
    gradcheck(MODEL(hlr_dense(4, 3, 1), _i ? hlr_seq_mean() : hlr_seq_last()), 3, (int64_t[]){4, 2, 4}, 2, 17, NULL);
}
END_TEST

/* The maximum has a kink wherever two steps tie; a small step keeps the
 * differences away from it (the input's values are spread over 0.1..1). */
START_TEST(test_seq_max_matches_finite_differences)
{
    static const int32_t lengths[] = {2, 5, 1};
    fd_options small = {.eps = 1e-4};
    gradcheck(MODEL(hlr_seq_max()), 2, (int64_t[]){5, 6}, 3, 18, &small);
    gradcheck(MODEL(hlr_seq_max()), 2, (int64_t[]){5, 6}, 3, 19, &(fd_options){.lengths = lengths, .eps = 1e-4});
    gradcheck(MODEL(hlr_seq_max()), 3, (int64_t[]){4, 2, 3}, 2, 20, &small);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Parameters, configurations                                                */
/* ------------------------------------------------------------------------ */

START_TEST(test_rnn_parameters_have_torch_names_shapes_and_init)
{
    static const char *const names[] = {
        "weight_ih_l0",         "weight_hh_l0",         "bias_ih_l0",         "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        "weight_ih_l1",         "weight_hh_l1",         "bias_ih_l1",         "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
    const int G = _i ? 3 : 4, H = 25, F = 7;
    hlr_layer *l = rnn(_i, F, H, 2, HLR_BIDIRECTIONAL, 0);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, F}));
    ck_assert_int_eq(hlr_layer_param_count(l), 16);
    const float bound = 1.0f / sqrtf((float)H);
    for (int p = 0; p < 16; p++) {
        ck_assert_str_eq(hlr_layer_param_name(l, p), names[p]);
        hlr_tensor *t = hlr_layer_param(l, names[p]);
        int kind = p % 4, layer = p / 8;
        ck_assert_int_eq(hlr_tensor_ndim(t), kind < 2 ? 2 : 1);
        ck_assert_int_eq(hlr_tensor_dim(t, 0), G * H);
        if (kind < 2)
            ck_assert_int_eq(hlr_tensor_dim(t, 1), kind == 1 ? H : layer == 0 ? F : 2 * H);
        float lo = 1, hi = -1;
        for (int64_t k = 0; k < hlr_tensor_numel(t); k++) {
            float v = hlr_tensor_f32(t)[k];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        ck_assert_msg(lo >= -bound && hi <= bound && lo < -0.8f * bound && hi > 0.8f * bound,
                      "%s spans [%g, %g]; torch draws U(-%g, %g)", names[p], (double)lo, (double)hi, (double)bound,
                      (double)bound);
    }
    hlr_model_free(m);
}
END_TEST

START_TEST(test_embedding_is_standard_normal_with_a_zero_padding_row)
{
    hlr_layer *e = hlr_embedding(500, 40, 7);
    hlr_model *m = MODEL(e);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){3}));
    const float *w = hlr_tensor_f32(hlr_layer_param(e, "weight"));
    double sum = 0, sq = 0;
    for (int i = 0; i < 500 * 40; i++) {
        if (i / 40 == 7) {
            ck_assert_msg(w[i] == 0.0f, "padding row element %d is %g", i % 40, (double)w[i]);
            continue;
        }
        sum += w[i];
        sq += (double)w[i] * w[i];
    }
    double n = 499 * 40, mean = sum / n, sd = sqrt(sq / n - mean * mean);
    ck_assert_msg(fabs(mean) < 0.03 && fabs(sd - 1.0) < 0.03, "weights have mean %g, sd %g; torch draws N(0, 1)", mean,
                  sd);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_embedding_padding_row_gets_no_gradient)
{
    hlr_layer *e = hlr_embedding(5, 3, 2);
    hlr_model *m = MODEL(e);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    hlr_tensor *x = hlr_tensor_from(HLR_I32, 2, (int64_t[]){2, 4}, (int32_t[]){2, 1, 2, 4, 0, 2, 1, 1});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 4, 3});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 4, 3});
    for (int i = 0; i < 24; i++)
        hlr_tensor_f32(dy)[i] = (float)(i + 1);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_ok(hlr_model_backward(m, dy, NULL));
    const float *g = hlr_tensor_f32(hlr_layer_grad(e, "weight")), *w = hlr_tensor_f32(hlr_layer_param(e, "weight"));
    /* id 1 at positions 1, 6, 7: rows 2, 7, 8 of dy summed */
    for (int c = 0; c < 3; c++) {
        ck_assert_float_eq(g[2 * 3 + c], 0.0f);
        ck_assert_float_eq(g[1 * 3 + c], (float)(4 + c) + (float)(19 + c) + (float)(22 + c));
        ck_assert_float_eq(g[3 * 3 + c], 0.0f);
        ck_assert_float_eq(hlr_tensor_f32(y)[3 * 3 + c], w[4 * 3 + c]);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* get_config -> from_config -> get_config gives the same configuration. */
START_TEST(test_sequence_layers_configurations_round_trip)
{
    hlr_layer *ls[] = {hlr_lstm(3, 8, 2, HLR_BIDIRECTIONAL, 0.25f),
                       hlr_gru(5, 4, 3, HLR_RETURN_SEQUENCES, 0.0f),
                       hlr_embedding(100, 16, 0),
                       hlr_embedding(7, 2, -1),
                       hlr_image_rows(),
                       hlr_feature_map_rows(),
                       hlr_seq_last(),
                       hlr_seq_mean(),
                       hlr_seq_max()};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        assert_config_round_trips(ls[i]);
    hlr_config bad = {0};
    hlr__config_int(&bad, "input_size", 3);
    hlr__config_int(&bad, "hidden_size", 4);
    hlr__config_int(&bad, "num_layers", 99);
    hlr__config_int(&bad, "return_sequences", 0);
    hlr__config_int(&bad, "bidirectional", 0);
    hlr__config_float(&bad, "dropout", 0.0);
    ck_assert_ptr_null(hlr__layer_ops_find("gru")->from_config(&bad));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Lengths, states, dropout                                                  */
/* ------------------------------------------------------------------------ */

/* Copy every parameter of layer 0 of `from` into layer 0 of `to`. */
static void copy_params(hlr_model *to, hlr_model *from)
{
    hlr_layer *a = hlr_model_layer(to, 0), *b = hlr_model_layer(from, 0);
    for (int p = 0; p < hlr_layer_param_count(b); p++) {
        const char *name = hlr_layer_param_name(b, p);
        hlr_tensor *dst = hlr_layer_param(a, name), *src = hlr_layer_param(b, name);
        memcpy(hlr_tensor_data(dst), hlr_tensor_data(src), (size_t)hlr_tensor_numel(src) * sizeof(float));
    }
}

/*
 * A padded batch with lengths gives, for each sequence, what the same
 * layer gives that sequence alone, unpadded: outputs, zeros past the end,
 * final states, and input gradients.
 */
START_TEST(test_rnn_lengths_equal_running_each_sequence_alone)
{
    enum { N = 3, T = 5, F = 3, H = 4 };
    static const int32_t lengths[N] = {5, 2, 1};
    const int flags = HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, LD = 4;
    hlr_model *m = MODEL(rnn(_i, F, H, 2, flags, 0));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, F}),
               *dx = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, F});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, 2 * H});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, 2 * H});
    test_fill(hlr_tensor_f32(x), N * T * F, 3, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), N * T * 2 * H, 4, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) /* padding: garbage that must not matter */
        for (int t = lengths[i]; t < T; t++)
            for (int f = 0; f < F; f++)
                hlr_tensor_f32(x)[(i * T + t) * F + f] = 1e30f;
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    hlr_tensor *h_n = tensor3(LD, N, H, NULL);
    ck_assert_ok(hlr_rnn_final_state(hlr_model_layer(m, 0), h_n, NULL));

    for (int i = 0; i < N; i++) {
        int L = lengths[i];
        hlr_model *one = MODEL(rnn(_i, F, H, 2, flags, 0));
        ck_assert_ok(hlr_model_build(one, 2, (int64_t[]){L, F}));
        copy_params(one, m);
        hlr_tensor *x1 = hlr_tensor_from(HLR_F32, 3, (int64_t[]){1, L, F}, hlr_tensor_f32(x) + i * T * F);
        hlr_tensor *dy1 = hlr_tensor_from(HLR_F32, 3, (int64_t[]){1, L, 2 * H}, hlr_tensor_f32(dy) + i * T * 2 * H);
        hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, L, 2 * H});
        hlr_tensor *dx1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, L, F}), *h1 = tensor3(LD, 1, H, NULL);
        ck_assert_ok(hlr_model_forward(one, x1, y1, 1));
        ck_assert_ok(hlr_model_backward(one, dy1, dx1));
        ck_assert_ok(hlr_rnn_final_state(hlr_model_layer(one, 0), h1, NULL));
        for (int t = 0; t < T; t++)
            for (int k = 0; k < 2 * H; k++) {
                float got = hlr_tensor_f32(y)[(i * T + t) * 2 * H + k];
                ck_assert_msg(t < L ? fabsf(got - hlr_tensor_f32(y1)[t * 2 * H + k]) < 1e-6f : got == 0.0f,
                              "sequence %d step %d output %d: %g", i, t, k, (double)got);
            }
        for (int t = 0; t < T; t++)
            for (int f = 0; f < F; f++) {
                float got = hlr_tensor_f32(dx)[(i * T + t) * F + f];
                ck_assert_msg(t < L ? fabsf(got - hlr_tensor_f32(dx1)[t * F + f]) < 1e-6f : got == 0.0f,
                              "sequence %d step %d dx %d: %g", i, t, f, (double)got);
            }
        for (int s = 0; s < LD; s++)
            for (int k = 0; k < H; k++)
                ck_assert_float_eq_tol(hlr_tensor_f32(h_n)[(s * N + i) * H + k], hlr_tensor_f32(h1)[s * H + k], 1e-6f);
        hlr_tensor_free(x1);
        hlr_tensor_free(dy1);
        hlr_tensor_free(y1);
        hlr_tensor_free(dx1);
        hlr_tensor_free(h1);
        hlr_model_free(one);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(h_n);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_sequence_reductions_read_only_valid_steps)
{
    /* x (2, 3, 2): sample 0 steps {1,2} {3,-4} {5,6}, sample 1 {-1,7} {2,2} {9,9}; lengths 2 and 3 */
    static const float xv[] = {1, 2, 3, -4, 5, 6, -1, 7, 2, 2, 9, 9};
    static const int32_t lengths[] = {2, 3};
    static const float want[3][4] = {{3, -4, 9, 9}, {2, -1, 10.0f / 3, 6}, {3, 2, 9, 9}};
    for (int r = 0; r < 3; r++) {
        hlr_model *m = MODEL(r == 0 ? hlr_seq_last() : r == 1 ? hlr_seq_mean() : hlr_seq_max());
        ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, 2}));
        hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, (int64_t[]){2, 3, 2}, xv);
        hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 2});
        ck_assert_ok(hlr_model_set_lengths(m, lengths, 2));
        ck_assert_ok(hlr_model_forward(m, x, y, 0));
        for (int k = 0; k < 4; k++)
            ck_assert_float_eq_tol(hlr_tensor_f32(y)[k], want[r][k], 1e-6f);
        hlr_tensor *x3 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){3, 3, 2}),
                   *y3 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){3, 2});
        ck_assert_status(hlr_model_forward(m, x3, y3, 0), HLR_ESHAPE); /* lengths were for 2 */
        ck_assert_error_mentions("lengths were set for 2 sequences, the batch has 3");
        hlr_tensor_free(x3);
        hlr_tensor_free(y3);
        hlr_tensor_free(x);
        hlr_tensor_free(y);
        hlr_model_free(m);
    }
}
END_TEST

START_TEST(test_feature_map_rows_is_torch_permute_and_image_rows_a_view)
{
    enum { N = 2, C = 3, H = 4, W = 5 };
    hlr_model *m = MODEL(hlr_feature_map_rows());
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){C, H, W}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, C, H, W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, H, C * W});
    for (int i = 0; i < N * C * H * W; i++)
        hlr_tensor_f32(x)[i] = (float)i;
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    /* x.permute(0, 2, 1, 3).reshape(N, H, C * W): y[n, h, c W + w] = x[n, c, h, w] */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    ck_assert_float_eq(hlr_tensor_f32(y)[(n * H + h) * C * W + c * W + w],
                                       hlr_tensor_f32(x)[((n * C + c) * H + h) * W + w]);
    hlr_model_free(m);
    hlr_tensor_free(y);
    m = MODEL(hlr_image_rows());
    ck_assert_status(hlr_model_build(m, 3, (int64_t[]){2, 4, 5}), HLR_ESHAPE);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 4, 5}));
    int nd;
    int64_t shape[HLR_MAX_DIMS];
    ck_assert_ok(hlr_model_output_shape(m, &nd, shape));
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(shape[0], 4);
    ck_assert_int_eq(shape[1], 5);
    hlr_model_free(m);
    hlr_tensor_free(x);
}
END_TEST

static void forward_seq(hlr_model *m, const hlr_tensor *x, hlr_tensor *y, int training)
{
    ck_assert_ok(hlr_model_forward(m, x, y, training));
}

START_TEST(test_rnn_initial_state_stays_until_cleared)
{
    enum { N = 2, T = 3, F = 2, H = 3 };
    hlr_layer *l = rnn(_i, F, H, 1, 0, 0);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, F}),
               *y0 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, H});
    hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, H});
    test_fill(hlr_tensor_f32(x), N * T * F, 9, -1.0f, 1.0f);
    forward_seq(m, x, y0, 0);
    hlr_tensor *zero = tensor3(1, N, H, NULL), *h0 = tensor3(1, N, H, NULL);
    test_fill(hlr_tensor_f32(h0), N * H, 10, -1.0f, 1.0f);
    ck_assert_ok(hlr_rnn_set_initial_state(l, zero, NULL)); /* zeros given = none given */
    forward_seq(m, x, y1, 0);
    for (int k = 0; k < N * H; k++)
        ck_assert_float_eq(hlr_tensor_f32(y0)[k], hlr_tensor_f32(y1)[k]);
    ck_assert_ok(hlr_rnn_set_initial_state(l, h0, NULL));
    forward_seq(m, x, y1, 0);
    ck_assert_msg(memcmp(hlr_tensor_data(y0), hlr_tensor_data(y1), sizeof(float) * N * H) != 0,
                  "the initial state changed nothing");
    forward_seq(m, x, y0, 0); /* still in force */
    ck_assert_int_eq(memcmp(hlr_tensor_data(y0), hlr_tensor_data(y1), sizeof(float) * N * H), 0);
    hlr_tensor *x3 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){3, T, F}),
               *y3 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){3, H});
    ck_assert_status(hlr_model_forward(m, x3, y3, 0), HLR_ESHAPE);
    ck_assert_error_mentions("initial state was given for 2 sequences, the batch has 3");
    ck_assert_ok(hlr_rnn_set_initial_state(l, NULL, NULL));
    forward_seq(m, x3, y3, 0);
    ck_assert_status(hlr_rnn_initial_state_grad(l, h0, NULL), HLR_ESTATE);
    hlr_tensor_free(x);
    hlr_tensor_free(x3);
    hlr_tensor_free(y0);
    hlr_tensor_free(y1);
    hlr_tensor_free(y3);
    hlr_tensor_free(zero);
    hlr_tensor_free(h0);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_rnn_dropout_only_in_training)
{
    enum { N = 2, T = 4, F = 3, H = 5 };
    hlr_model *a = MODEL(rnn(_i, F, H, 3, HLR_RETURN_SEQUENCES, 0.5f));
    hlr_model *b = MODEL(rnn(_i, F, H, 3, HLR_RETURN_SEQUENCES, 0.0f));
    ck_assert_ok(hlr_model_build(a, 2, (int64_t[]){T, F}));
    ck_assert_ok(hlr_model_build(b, 2, (int64_t[]){T, F}));
    copy_params(b, a);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, F});
    hlr_tensor *ya = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, H}),
               *yb = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, H});
    hlr_tensor *yc = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, H});
    test_fill(hlr_tensor_f32(x), N * T * F, 11, -1.0f, 1.0f);
    size_t bytes = sizeof(float) * N * T * H;
    forward_seq(a, x, ya, 0);
    forward_seq(b, x, yb, 1);
    ck_assert_msg(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), bytes) == 0, "dropout acted in inference");
    forward_seq(a, x, ya, 1);
    forward_seq(a, x, yc, 1);
    ck_assert_msg(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), bytes) != 0, "dropout did nothing in training");
    ck_assert_msg(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yc), bytes) != 0, "dropout drew the same mask twice");
    hlr_tensor_free(x);
    hlr_tensor_free(ya);
    hlr_tensor_free(yb);
    hlr_tensor_free(yc);
    hlr_model_free(a);
    hlr_model_free(b);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

START_TEST(test_rnn_rejects_bad_arguments_with_specific_messages)
{
    ck_assert_ptr_null(hlr_lstm(0, 4, 1, 0, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_gru(3, 4, 5, HLR_BIDIRECTIONAL, 0));
    ck_assert_error_mentions("num_layers 5 outside 1..4");
    ck_assert_ptr_null(hlr_lstm(3, 4, 1, 8, 0));
    ck_assert_error_mentions("unknown flags");
    ck_assert_ptr_null(hlr_gru(3, 4, 2, 0, 1.0f));
    ck_assert_error_mentions("dropout");
    ck_assert_ptr_null(hlr_embedding(10, 4, 10));
    ck_assert_error_mentions("padding_idx 10");

    hlr_layer *l = rnn(_i, 3, 4, 1, 0, 0);
    hlr_model *m = MODEL(l);
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){5, 2}), HLR_ESHAPE);
    ck_assert_error_mentions("input (5, 2) is not (steps, 3)");
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){5, 3}));
    hlr_tensor *h = tensor3(1, 2, 4, NULL), *bad = tensor3(2, 2, 4, NULL);
    ck_assert_status(hlr_rnn_final_state(l, h, NULL), HLR_ESTATE);
    ck_assert_status(hlr_rnn_set_initial_state(l, bad, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("h0 must be (1, N, 4)");
    if (_i) {
        ck_assert_status(hlr_rnn_set_initial_state(l, h, h), HLR_EINVAL);
        ck_assert_error_mentions("GRU has no cell state");
    } else {
        hlr_tensor *c3 = tensor3(1, 3, 4, NULL);
        ck_assert_status(hlr_rnn_set_initial_state(l, h, c3), HLR_ESHAPE);
        hlr_tensor_free(c3);
    }
    ck_assert_status(hlr_rnn_initial_state_grad(l, h, NULL), HLR_ESTATE);
    hlr_model *d = MODEL(hlr_dense(2, 2, 1));
    ck_assert_status(hlr_rnn_set_initial_state(hlr_model_layer(d, 0), h, NULL), HLR_EINVAL);
    ck_assert_error_mentions("dense layer has no recurrent state");
    ck_assert_status(hlr_rnn_final_state(NULL, h, NULL), HLR_EINVAL);
    hlr_model_free(d);
    hlr_tensor_free(h);
    hlr_tensor_free(bad);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_token_models_check_their_input)
{
    hlr_model *m = MODEL(hlr_dense(3, 3, 1), hlr_embedding(5, 3, -1));
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){3}), HLR_ESHAPE);
    ck_assert_error_mentions("embedding (layer 1): reads int32 token ids, so it must be the model's first layer");
    hlr_model_free(m);

    m = MODEL(hlr_embedding(5, 3, -1), hlr_seq_mean());
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    hlr_tensor *xf = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 4}), *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 3});
    hlr_tensor *x = hlr_tensor_from(HLR_I32, 2, (int64_t[]){2, 4}, (int32_t[]){0, 1, 2, 3, 4, 4, 5, 0});
    ck_assert_status(hlr_model_forward(m, xf, y, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_forward(m, x, y, 0), HLR_EINVAL);
    ck_assert_error_mentions("token id 5 (sample 1, position 2) outside [0, 5)");
    hlr_tensor_i32(x)[6] = 1;
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_status(hlr_model_backward(m, y, xf), HLR_EINVAL);
    ck_assert_error_mentions("token ids, which have no gradient");
    ck_assert_ok(hlr_model_backward(m, y, NULL));
    int32_t classes[2];
    hlr_tensor *probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 3});
    ck_assert_ok(hlr_model_predict(m, x, classes, probs));
    ck_assert_status(hlr_model_predict(m, xf, classes, probs), HLR_EINVAL);
    ck_assert_status(hlr_model_set_lengths(m, (int32_t[]){1, 0}, 2), HLR_EINVAL);
    ck_assert_error_mentions("length 0 of sequence 1 is below 1");
    ck_assert_status(hlr_model_set_lengths(m, (int32_t[]){1}, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_set_lengths(NULL, NULL, 0), HLR_EINVAL);
    /* lengths set between a training forward and its backward cancel that forward */
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_ok(hlr_model_set_lengths(m, (int32_t[]){1, 4}, 2));
    ck_assert_status(hlr_model_backward(m, y, NULL), HLR_ESTATE);
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    hlr_tensor_free(xf);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(probs);
    hlr_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Training end to end                                                       */
/* ------------------------------------------------------------------------ */

/*
 * Sequences of 1..8 tokens from 1..9, padded with 0 to 8; the class says
 * whether the token 7 occurs.  Embedding -> bidirectional GRU or LSTM ->
 * final states -> dense, trained by hlr_model_fit on a token data set with
 * lengths; the padding never carries the answer, so this only works when
 * the lengths are respected.
 */
static hlr_dataset *token_task(int64_t n, unsigned long long seed)
{
    enum { T = 8 };
    int32_t *ids = calloc((size_t)(n * T), sizeof *ids), *labels = malloc((size_t)n * sizeof *labels);
    int32_t *lengths = malloc((size_t)n * sizeof *lengths);
    unsigned long long s = seed;
    for (int64_t i = 0; i < n; i++) {
        lengths[i] = 1 + (int32_t)(test_rand(&s) * T);
        int want = test_rand(&s) < 0.5f, has = 0;
        for (int t = 0; t < lengths[i]; t++) {
            int32_t v = 1 + (int32_t)(test_rand(&s) * 8); /* 1..8, and 8 stands for 9 */
            v = v == 7 ? 9 : v;
            ids[i * T + t] = v;
        }
        if (want) {
            ids[i * T + (int)(test_rand(&s) * (float)lengths[i])] = 7;
            has = 1;
        }
        labels[i] = has;
    }
    hlr_dataset *d = hlr_dataset_from_tokens(1, (int64_t[]){T}, n, ids, labels, 2);
    ck_assert_ptr_nonnull(d);
    ck_assert_ok(hlr_dataset_set_lengths(d, lengths));
    free(ids);
    free(labels);
    free(lengths);
    return d;
}

START_TEST(test_fit_learns_token_sequences_with_lengths)
{
    hlr_dataset *train = token_task(2000, 21), *test = token_task(500, 22);
    hlr_model *m = MODEL(hlr_embedding(10, 8, 0), rnn(_i, 8, 12, 1, HLR_BIDIRECTIONAL, 0), hlr_dense(24, 2, 1));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){8}));
    hlr_optimizer *o = hlr_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.0f);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 6;
    fo.batch_size = 32;
    fo.validation_split = 0.1;
    ck_assert_ok(hlr_model_fit(m, o, train, &fo));
    hlr_metrics met;
    int64_t confusion[4];
    ck_assert_ok(hlr_model_evaluate(m, test, 64, 1, &met, confusion));
    ck_assert_msg(met.accuracy > 0.97, "test accuracy %.3f", met.accuracy);
    ck_assert_int_eq(confusion[0] + confusion[1] + confusion[2] + confusion[3], 500);
    /* the lengths were the data set's: a float model refuses these samples */
    hlr_model *f = MODEL(hlr_lstm(1, 2, 1, 0, 0));
    ck_assert_ok(hlr_model_build(f, 2, (int64_t[]){8, 1}));
    ck_assert_status(hlr_model_evaluate(f, test, 64, 1, &met, NULL), HLR_ESHAPE);
    hlr_model_free(f);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(train);
    hlr_dataset_free(test);
}
END_TEST

START_TEST(test_token_data_sets_keep_ids_and_lengths_together)
{
    enum { N = 40, T = 3 };
    int32_t ids[N * T], labels[N], lengths[N];
    for (int i = 0; i < N; i++) {
        for (int t = 0; t < T; t++)
            ids[i * T + t] = 100 * i + t;
        labels[i] = i % 4;
        lengths[i] = 1 + i % 3;
    }
    hlr_dataset *d = hlr_dataset_from_tokens(1, (int64_t[]){T}, N, ids, labels, 4);
    ck_assert_int_eq(hlr_dataset_dtype(d), HLR_I32);
    ck_assert_ptr_null(hlr_dataset_inputs(d));
    ck_assert_ptr_null(hlr_dataset_lengths(d));
    ck_assert_status(hlr_dataset_set_lengths(d, (int32_t[N]){0}), HLR_EINVAL);
    ck_assert_ok(hlr_dataset_set_lengths(d, lengths));
    ck_assert_ok(hlr_dataset_shuffle(d, 3));
    hlr_dataset *tail = hlr_dataset_split(d, 0.25);
    hlr_dataset *mid = hlr_dataset_slice(d, 5, 10);
    const hlr_dataset *parts[] = {d, tail, mid};
    for (int p = 0; p < 3; p++) {
        const int32_t *x = hlr_dataset_tokens(parts[p]), *y = hlr_dataset_labels(parts[p]);
        const int32_t *len = hlr_dataset_lengths(parts[p]);
        ck_assert_ptr_nonnull(len);
        for (int64_t i = 0; i < hlr_dataset_size(parts[p]); i++) {
            int orig = x[i * T] / 100;
            ck_assert_int_eq(x[i * T + 2], 100 * orig + 2);
            ck_assert_int_eq(y[i], orig % 4);
            ck_assert_int_eq(len[i], 1 + orig % 3);
        }
    }
    hlr_dataset *f = hlr_dataset_from(1, (int64_t[]){1}, 1, (float[]){1}, (int32_t[]){0}, 1);
    ck_assert_ptr_null(hlr_dataset_tokens(f));
    ck_assert_int_eq(hlr_dataset_dtype(f), HLR_F32);
    hlr_dataset_free(f);
    hlr_dataset_free(d);
    hlr_dataset_free(tail);
    hlr_dataset_free(mid);
}
END_TEST

START_TEST(test_recurrent_training_loop_allocates_nothing)
{
    enum { N = 8, T = 6 };
    hlr_model *m = MODEL(hlr_embedding(20, 5, 0), rnn(_i, 5, 6, 2, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.2f),
                         hlr_seq_max(), hlr_dense(12, 3, 1));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){T}));
    hlr_tensor *x = hlr_tensor_new(HLR_I32, 2, (int64_t[]){N, T}), *lab = hlr_tensor_new(HLR_I32, 1, (int64_t[]){N});
    int32_t lengths[N];
    for (int i = 0; i < N * T; i++)
        hlr_tensor_i32(x)[i] = 1 + i % 19;
    for (int i = 0; i < N; i++) {
        hlr_tensor_i32(lab)[i] = i % 3;
        lengths[i] = 1 + i % T;
    }
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    for (int k = 0; k < 2; k++) { /* warm up: buffers, optimizer state */
        ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
        ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
    }
    long before = atomic_load(&hlr__alloc_count);
    for (int k = 0; k < 5; k++) {
        lengths[k] = T - lengths[k] + 1;
        ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
        ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
    }
    ck_assert_int_eq(atomic_load(&hlr__alloc_count), before);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* Batches that do not go by units multiply by forms of the weights kept while they stay the same (rnn.h:
 * W_hh and W_ih packed where the CPU has FMA, else a transposed copy of W_hh; 16 in two parts of 8 on two
 * threads), a few sequences by units through the few-rows kernel on W_hh itself where the CPU has it
 * (through sgemv on the copy where not): they give what the same sequences give inside a batch of 32 and
 * what a model built afresh with the same weights gives (its forms made new), also after W_hh changes,
 * which the forms must follow.  Two layers, so that the second's input is the first's two directions. */
START_TEST(test_small_batches_follow_the_recurrent_weights)
{
    enum { B = 32, T = 6, F = 5, H = 9, OUT = 2 * H };
    static const int sizes[] = {1, 3, 15, 16};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int small = sizes[si];
        hlr_layer *rec = _i ? hlr_gru(F, H, 2, HLR_BIDIRECTIONAL, 0.0f) : hlr_lstm(F, H, 2, HLR_BIDIRECTIONAL, 0.0f);
        hlr_model *m = MODEL(rec);
        ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
        hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, T, F});
        hlr_tensor *xs = hlr_tensor_new(HLR_F32, 3, (int64_t[]){small, T, F});
        hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){B, OUT});
        hlr_tensor *ys = hlr_tensor_new(HLR_F32, 2, (int64_t[]){small, OUT});
        hlr_tensor *y_fresh = hlr_tensor_new(HLR_F32, 2, (int64_t[]){B, OUT});
        test_fill(hlr_tensor_f32(x), B * T * F, 17, -1.0f, 1.0f);
        memcpy(hlr_tensor_f32(xs), hlr_tensor_f32(x), (size_t)(small * T * F) * sizeof(float));
        float *w = hlr_tensor_f32(hlr_layer_param(rec, "weight_hh_l0_reverse"));
        float *w_in = hlr_tensor_f32(hlr_layer_param(rec, "weight_ih_l1")); /* the second layer's, 2H wide */
        for (int round = 0; round < 3; round++) {
            if (round > 0) /* a caller's write: the small batch must see it */
                (round == 1 ? w : w_in)[round * 7] += 0.5f;
            ck_assert_ok(hlr_model_forward(m, x, y, 0));
            ck_assert_ok(hlr_model_forward(m, xs, ys, 0));
            hlr_model *fresh = MODEL(_i ? hlr_gru(F, H, 2, HLR_BIDIRECTIONAL, 0.0f)
                                        : hlr_lstm(F, H, 2, HLR_BIDIRECTIONAL, 0.0f));
            ck_assert_ok(hlr_model_build(fresh, 2, (int64_t[]){T, F}));
            copy_params(fresh, m);
            ck_assert_ok(hlr_model_forward(fresh, x, y_fresh, 0));
            hlr_model_free(fresh);
            for (int i = 0; i < B * OUT; i++)
                ck_assert_msg(hlr_tensor_f32(y)[i] == hlr_tensor_f32(y_fresh)[i],
                              "%s, batch %d, round %d, output %d: %g, a fresh model %g", _i ? "gru" : "lstm", B, round,
                              i, hlr_tensor_f32(y)[i], hlr_tensor_f32(y_fresh)[i]);
            for (int i = 0; i < small * OUT; i++)
                ck_assert_msg(fabsf(hlr_tensor_f32(ys)[i] - hlr_tensor_f32(y)[i]) <= 1e-6f,
                              "%s, batch %d, round %d, output %d: %g against %g", _i ? "gru" : "lstm", small, round, i,
                              hlr_tensor_f32(ys)[i], hlr_tensor_f32(y)[i]);
        }
        hlr_tensor_free(x);
        hlr_tensor_free(xs);
        hlr_tensor_free(y);
        hlr_tensor_free(ys);
        hlr_tensor_free(y_fresh);
        hlr_model_free(m);
    }
}
END_TEST

/* One sequence goes by units (rnn.h, rnn_by_units): a step's hidden units shared among the threads in
 * blocks of 16, here 120 units (the last block half full), two bidirectional layers, a sequence that
 * ends before the last step.  One and two threads give the same bits, and both what the sequence gives
 * inside a batch of 32. */
START_TEST(test_one_sequence_steps_by_units_with_the_same_bits_on_any_thread_count)
{
    enum { B = 32, T = 6, F = 7, H = 120, OUT = 2 * H };
    const int threads = hlr_get_num_threads(), flags = HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES;
    hlr_layer *rec = _i ? hlr_gru(F, H, 2, flags, 0.0f) : hlr_lstm(F, H, 2, flags, 0.0f);
    hlr_model *m = MODEL(rec);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, T, F});
    hlr_tensor *x1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, F});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, T, OUT});
    hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, OUT});
    hlr_tensor *y2 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, OUT});
    ck_assert(x && x1 && y && y1 && y2);
    test_fill(hlr_tensor_f32(x), B * T * F, 19, -1.0f, 1.0f);
    memcpy(hlr_tensor_f32(x1), hlr_tensor_f32(x), (size_t)(T * F) * sizeof(float));
    int32_t lengths[B];
    for (int i = 0; i < B; i++)
        lengths[i] = T - i % 3;
    lengths[0] = T - 2;
    ck_assert_ok(hlr_model_set_lengths(m, lengths, B));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    for (int t = 1; t <= 2; t++) {
        ck_assert_ok(hlr_set_num_threads(t));
        ck_assert_ok(hlr_model_set_lengths(m, lengths, 1));
        ck_assert_ok(hlr_model_forward(m, x1, t == 1 ? y1 : y2, 0));
    }
    ck_assert_ok(hlr_set_num_threads(threads));
    ck_assert_msg(memcmp(hlr_tensor_f32(y1), hlr_tensor_f32(y2), (size_t)(T * OUT) * sizeof(float)) == 0,
                  "%s: one sequence on 1 and 2 threads differs", _i ? "gru" : "lstm");
    for (int i = 0; i < T * OUT; i++)
        ck_assert_msg(fabsf(hlr_tensor_f32(y1)[i] - hlr_tensor_f32(y)[i]) <= 1e-5f, "%s, output %d: %g against %g",
                      _i ? "gru" : "lstm", i, hlr_tensor_f32(y1)[i], hlr_tensor_f32(y)[i]);
    for (int i = (T - 2) * OUT; i < T * OUT; i++) /* past the sequence's end */
        ck_assert(hlr_tensor_f32(y1)[i] == 0.0f);
    hlr_tensor_free(x);
    hlr_tensor_free(x1);
    hlr_tensor_free(y);
    hlr_tensor_free(y1);
    hlr_tensor_free(y2);
    hlr_model_free(m);
}
END_TEST

/* On a CPU without FMA the products that libhlr's FMA kernels do on this one (the packed weights of the
 * recurrent steps and projections and of dense inference, the few-rows kernel, recurrent batches by
 * units) go to sgemm: those paths, forced by hlrk_no_fma_for_tests, give the same outputs within float
 * rounding, in inference and in a training pass, for an LSTM and a GRU (two bidirectional layers) and
 * dense layers over each step, at batches that take each path (1 and 3: by units or by rows; 12: the
 * LSTM's [x h] product without FMA; 24: by rows). */
START_TEST(test_paths_without_fma_give_the_same_outputs)
{
    enum { T = 5, F = 6, H = 9 };
    const int64_t batches[] = {1, 3, 12, 24};
    int64_t differ = 0; /* outputs whose bits differ: the other paths were taken */
    for (int kind = 0; kind < 3; kind++) {
        hlr_model *m = kind == 0   ? MODEL(hlr_lstm(F, H, 2, HLR_BIDIRECTIONAL, 0.0f))
                       : kind == 1 ? MODEL(hlr_gru(F, H, 2, HLR_BIDIRECTIONAL, 0.0f))
                                   : MODEL(hlr_dense(F, 16, 1), hlr_relu(), hlr_flatten(), hlr_dense(T * 16, 7, 1));
        ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
        int nd = 0;
        int64_t os[4];
        ck_assert_ok(hlr_model_output_shape(m, &nd, os + 1));
        for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
            const int64_t n = batches[bi], outs = n * os[1];
            os[0] = n;
            hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){n, T, F});
            hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, os), *z = hlr_tensor_new(HLR_F32, 2, os);
            ck_assert(x && y && z);
            test_fill(hlr_tensor_f32(x), n * T * F, 31 + (unsigned long long)n, -1.0f, 1.0f);
            for (int training = 0; training < 2; training++) {
                ck_assert_ok(hlr_model_forward(m, x, y, training));
                hlrk_no_fma_for_tests = 1;
                const hlr_status st = hlr_model_forward(m, x, z, training);
                hlrk_no_fma_for_tests = 0;
                ck_assert_ok(st);
                for (int64_t i = 0; i < outs; i++) {
                    const float a = hlr_tensor_f32(y)[i], b = hlr_tensor_f32(z)[i];
                    differ += a != b;
                    ck_assert_msg(fabsf(a - b) <= 1e-5f * (1.0f + fabsf(a)),
                                  "model %d, batch %d, training %d, output %d: %g with FMA's paths, %g without", kind,
                                  (int)n, training, (int)i, a, b);
                }
            }
            hlr_tensor_free(x);
            hlr_tensor_free(y);
            hlr_tensor_free(z);
        }
        hlr_model_free(m);
    }
    ck_assert_msg(differ > 0, "no output's bits changed: the paths without FMA were not taken");
}
END_TEST

Suite *suite_recurrent(void)
{
    Suite *s = suite_create("recurrent");
    TCase *t = tcase_create("torch");
    tcase_add_loop_test(t, test_rnn_matches_torch, 0, (int)(sizeof rnn_ref_cases / sizeof rnn_ref_cases[0]));
    suite_add_tcase(s, t);

    t = tcase_create("finite_differences");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_rnn_sequences_match_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_two_bidirectional_layers_match_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_last_step_matches_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_initial_state_matches_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_lengths_match_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_lengths_last_step_match_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_dropout_between_layers_matches_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_batch_of_one_and_one_step_match_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_rnn_wide_hidden_matches_finite_differences, 0, 2);
    tcase_add_loop_test(t, test_image_rows_then_rnn_matches_finite_differences, 0, 2);
    tcase_add_test(t, test_embedding_matches_finite_differences);
    tcase_add_loop_test(t, test_embedding_rnn_mean_with_lengths_matches_finite_differences, 0, 2);
    tcase_add_test(t, test_feature_map_rows_matches_finite_differences);
    tcase_add_test(t, test_feature_map_columns_is_the_permutation_and_matches_finite_differences);
    tcase_add_loop_test(t, test_sequence_reductions_match_finite_differences, 0, 2);
    tcase_add_test(t, test_seq_max_matches_finite_differences);
    suite_add_tcase(s, t);

    t = tcase_create("layers");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_rnn_parameters_have_torch_names_shapes_and_init, 0, 2);
    tcase_add_test(t, test_embedding_is_standard_normal_with_a_zero_padding_row);
    tcase_add_test(t, test_embedding_padding_row_gets_no_gradient);
    tcase_add_test(t, test_sequence_layers_configurations_round_trip);
    tcase_add_loop_test(t, test_rnn_lengths_equal_running_each_sequence_alone, 0, 2);
    tcase_add_test(t, test_sequence_reductions_read_only_valid_steps);
    tcase_add_test(t, test_feature_map_rows_is_torch_permute_and_image_rows_a_view);
    tcase_add_loop_test(t, test_rnn_initial_state_stays_until_cleared, 0, 2);
    tcase_add_loop_test(t, test_rnn_dropout_only_in_training, 0, 2);
    tcase_add_loop_test(t, test_rnn_rejects_bad_arguments_with_specific_messages, 0, 2);
    tcase_add_test(t, test_token_models_check_their_input);
    tcase_add_loop_test(t, test_fit_learns_token_sequences_with_lengths, 0, 2);
    tcase_add_test(t, test_token_data_sets_keep_ids_and_lengths_together);
    tcase_add_loop_test(t, test_recurrent_training_loop_allocates_nothing, 0, 2);
    tcase_add_loop_test(t, test_one_sequence_steps_by_units_with_the_same_bits_on_any_thread_count, 0, 2);
    tcase_add_loop_test(t, test_small_batches_follow_the_recurrent_weights, 0, 2);
    tcase_add_test(t, test_paths_without_fma_give_the_same_outputs);
    suite_add_tcase(s, t);
    return s;
}

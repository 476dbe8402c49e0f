/*
 * test_transformer.c -- the transformer layers: positional encodings, patch
 * embedding, class token, seq_first and the encoder block.  Values and
 * gradients against PyTorch (fixtures/transformer_ref.h, written by
 * fixtures/gen_transformer_ref.py), gradients against finite differences
 * for every layer and option, initialisation, dropout, errors,
 * configurations, files and clones.
 */
#include "testutil.h"
#include "fdcheck.h"

#include "fixtures/transformer_ref.h"
#include "testutil_internal.h" /* the model's generator, to replay dropout masks; configurations */
#include "../src/kernels/kernels.h"
#include "../src/kernels/exp_approx.h" /* compiled here for the x86-64 baseline */

#include <math.h>
#include <stdlib.h>

Suite *suite_transformer(void);

/* A model of the listed layers (testutil.h). */
#define MODEL(...) TEST_MODEL(2024, __VA_ARGS__)

static hlr_layer *encoder(int dim, int heads, int ff, int flags, float dropout)
{
    hlr_layer *l = hlr_transformer_encoder(dim, heads, ff, flags, dropout);
    ck_assert_msg(l != NULL, "%s", hlr_last_error());
    return l;
}

static void set_param(hlr_layer *l, const char *name, const float *v)
{
    hlr_tensor *p = hlr_layer_param(l, name);
    ck_assert_msg(p != NULL, "%s", hlr_last_error());
    memcpy(hlr_tensor_data(p), v, (size_t)hlr_tensor_numel(p) * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* Against PyTorch                                                           */
/* ------------------------------------------------------------------------ */

/* nn.TransformerEncoderLayer(norm_first=True, activation='gelu', dropout=0) with copied weights. */
START_TEST(test_encoder_matches_torch)
{
    const enc_ref_case *c = &enc_ref_cases[_i];
    int flags = (c->causal ? HLR_ATTN_CAUSAL : 0) | (c->lengths ? HLR_ATTN_KEY_PADDING : 0);
    torch_attention_fixture f = {c->name, c->N,       c->T,  c->E,     c->heads,  c->lengths, c->x,      c->dy,
                                 c->y,    c->weights, c->dx, c->names, c->params, c->grads,   c->nparams};
    expect_attention_matches_torch(encoder(c->E, c->heads, c->F, flags, 0.0f), &f, 1);
}
END_TEST

/* Conv2d(C, D, p, stride=p) followed by .flatten(2).transpose(1, 2). */
START_TEST(test_patch_embedding_matches_torch_conv2d)
{
    const patch_ref_case *c = &patch_ref_cases[_i];
    hlr_layer *l = hlr_patch_embedding(c->C, c->patch, c->D);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){c->C, c->H, c->W}));
    const int64_t P = (int64_t)(c->H / c->patch) * (c->W / c->patch), nx = (int64_t)c->N * c->C * c->H * c->W;
    const int64_t ny = c->N * P * c->D, nw = (int64_t)c->D * c->C * c->patch * c->patch;
    int yd;
    int64_t ys[HLR_MAX_DIMS];
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys));
    ck_assert_msg(yd == 2 && ys[0] == P && ys[1] == c->D, "%s: output is not (%lld, %d)", c->name, (long long)P, c->D);
    set_param(l, "weight", c->weight);
    set_param(l, "bias", c->bias);
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){c->N, c->C, c->H, c->W}, c->x);
    hlr_tensor *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){c->N, c->C, c->H, c->W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){c->N, P, c->D});
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, 3, (int64_t[]){c->N, P, c->D}, c->dy);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_torch_close(c->name, "y", hlr_tensor_f32(y), c->y, ny);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_torch_close(c->name, "dx", hlr_tensor_f32(dx), c->dx, nx);
    expect_torch_close(c->name, "dweight", hlr_tensor_f32(hlr_layer_grad(l, "weight")), c->dweight, nw);
    expect_torch_close(c->name, "dbias", hlr_tensor_f32(hlr_layer_grad(l, "bias")), c->dbias, c->D);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* A zero input shows the table; the layer has no parameters. */
START_TEST(test_sinusoidal_table_matches_torch)
{
    const sin_ref_case *c = &sin_ref_cases[_i];
    hlr_layer *l = hlr_positional_encoding(c->T + 3, c->D, HLR_POS_SINUSOIDAL);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){c->T, c->D}));
    ck_assert_int_eq(hlr_layer_param_count(l), 0);
    int64_t s[3] = {2, c->T, c->D}, n = (int64_t)c->T * c->D;
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, s), *y = hlr_tensor_new(HLR_F32, 3, s);
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    expect_torch_close(c->name, "pe (sample 0)", hlr_tensor_f32(y), c->table, n);
    expect_torch_close(c->name, "pe (sample 1)", hlr_tensor_f32(y) + n, c->table, n);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

/* Patch embedding, class token, learned positions, an encoder block, layer norm, the token's
 * output and a linear head, against the same network written with torch modules. */
START_TEST(test_vision_transformer_matches_torch)
{
    hlr_model *m =
        MODEL(hlr_patch_embedding(VIT_C, VIT_P, VIT_D), hlr_class_token(VIT_D),
              hlr_positional_encoding(VIT_MAX_LEN, VIT_D, HLR_POS_LEARNED), encoder(VIT_D, VIT_HEADS, VIT_F, 0, 0.0f),
              hlr_layernorm(VIT_D, 1e-5f), hlr_seq_first(), hlr_dense(VIT_D, VIT_CLASSES, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){VIT_C, VIT_H, VIT_W}));
    const int nref = (int)(sizeof vit_ref_params / sizeof vit_ref_params[0]);
    int total = 0;
    for (int li = 0; li < hlr_model_num_layers(m); li++)
        total += hlr_layer_param_count(hlr_model_layer(m, li));
    ck_assert_int_eq(total, nref);
    for (int k = 0; k < nref; k++) {
        const vit_ref_param *r = &vit_ref_params[k];
        hlr_layer *l = hlr_model_layer(m, r->layer);
        ck_assert_int_eq(hlr_tensor_numel(hlr_layer_param(l, r->name)), r->numel);
        set_param(l, r->name, r->value);
    }
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){VIT_N, VIT_C, VIT_H, VIT_W}, vit_x);
    hlr_tensor *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){VIT_N, VIT_C, VIT_H, VIT_W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){VIT_N, VIT_CLASSES});
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, 2, (int64_t[]){VIT_N, VIT_CLASSES}, vit_dy);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_torch_close("vit", "y", hlr_tensor_f32(y), vit_y, VIT_N * VIT_CLASSES);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_torch_close("vit", "dx", hlr_tensor_f32(dx), vit_dx, hlr_tensor_numel(dx));
    for (int k = 0; k < nref; k++) {
        const vit_ref_param *r = &vit_ref_params[k];
        char what[96];
        snprintf(what, sizeof what, "layer %d grad %s", r->layer, r->name);
        expect_torch_close("vit", what, hlr_tensor_f32(hlr_layer_grad(hlr_model_layer(m, r->layer), r->name)), r->grad,
                     r->numel);
    }
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

/* Finite differences: fd_gradcheck() in fdcheck.c. */

/* _i: 0, 1, 2 -> 1, 2 and 4 heads. */
START_TEST(test_encoder_matches_finite_differences)
{
    static const int heads[] = {1, 2, 4};
    fd_gradcheck(MODEL(encoder(8, heads[_i], 12, 0, 0.0f)), 2, (int64_t[]){5, 8}, 3, 1 + (unsigned)_i, NULL);
}
END_TEST

START_TEST(test_causal_encoder_matches_finite_differences)
{
    fd_gradcheck(MODEL(encoder(8, 2, 10, HLR_ATTN_CAUSAL, 0.0f)), 2, (int64_t[]){6, 8}, 2, 4, NULL);
}
END_TEST

START_TEST(test_key_padding_encoder_matches_finite_differences)
{
    static const int32_t lengths[] = {5, 2, 1};
    fd_gradcheck(MODEL(encoder(8, 2, 6, HLR_ATTN_KEY_PADDING, 0.0f)), 2, (int64_t[]){5, 8}, 3, 5, lengths);
    fd_gradcheck(MODEL(encoder(8, 4, 6, HLR_ATTN_KEY_PADDING | HLR_ATTN_CAUSAL, 0.0f)), 2, (int64_t[]){5, 8}, 3, 6,
              lengths);
}
END_TEST

/* The generator is replayed before each forward, so every dropout (attention, dropout1, the
 * feed-forward one, dropout2) draws the same mask in every evaluation. */
START_TEST(test_encoder_dropout_matches_finite_differences)
{
    fd_gradcheck(MODEL(encoder(8, 2, 12, HLR_ATTN_CAUSAL, 0.3f)), 2, (int64_t[]){5, 8}, 3, 7, NULL);
}
END_TEST

/* Two blocks in a row, so the second's dx reaches the first: a model of encoders stays a list. */
START_TEST(test_stacked_encoders_match_finite_differences)
{
    fd_gradcheck(MODEL(hlr_dense(3, 6, 1), encoder(6, 3, 8, 0, 0.0f), encoder(6, 2, 5, 0, 0.0f), hlr_seq_mean(),
                    hlr_dense(6, 2, 1)),
              2, (int64_t[]){4, 3}, 2, 8, NULL);
}
END_TEST

START_TEST(test_patch_embedding_matches_finite_differences)
{
    fd_gradcheck(MODEL(hlr_patch_embedding(2, 3, 4)), 3, (int64_t[]){2, 6, 9}, 2, 9, NULL);
    fd_gradcheck(MODEL(hlr_patch_embedding(1, 2, 5), hlr_tanh()), 3, (int64_t[]){1, 4, 8}, 3, 10, NULL);
    fd_gradcheck(MODEL(hlr_patch_embedding(3, 1, 2)), 3, (int64_t[]){3, 2, 3}, 2, 11, NULL);
}
END_TEST

/* Learned rows past T get no gradient, as finite differences agree; tanh makes the loss nonlinear. */
START_TEST(test_positional_encodings_match_finite_differences)
{
    fd_gradcheck(MODEL(hlr_positional_encoding(7, 5, HLR_POS_LEARNED), hlr_tanh()), 2, (int64_t[]){4, 5}, 3, 12, NULL);
    fd_gradcheck(MODEL(hlr_positional_encoding(4, 5, HLR_POS_SINUSOIDAL), hlr_tanh()), 2, (int64_t[]){4, 5}, 3, 13, NULL);
    fd_gradcheck(MODEL(hlr_positional_encoding(9, 3, HLR_POS_SINUSOIDAL), hlr_tanh()), 2, (int64_t[]){9, 3}, 2, 14, NULL);
}
END_TEST

/* The attention mixes the steps, so the token's output depends on every input. */
START_TEST(test_class_token_and_seq_first_match_finite_differences)
{
    fd_gradcheck(MODEL(hlr_dense(3, 6, 1), hlr_class_token(6), hlr_multihead_attention(6, 2, 0, 0.0f), hlr_seq_first(),
                    hlr_dense(6, 3, 1)),
              2, (int64_t[]){4, 3}, 3, 15, NULL);
    fd_gradcheck(MODEL(hlr_seq_first(), hlr_tanh()), 3, (int64_t[]){3, 2, 2}, 2, 16, NULL);
}
END_TEST

/* A whole small vision transformer, every layer at once. */
START_TEST(test_small_vision_transformer_matches_finite_differences)
{
    fd_gradcheck(MODEL(hlr_patch_embedding(1, 2, 8), hlr_class_token(8), hlr_positional_encoding(5, 8, HLR_POS_LEARNED),
                    encoder(8, 2, 12, 0, 0.0f), hlr_layernorm(8, 1e-5f), hlr_seq_first(), hlr_dense(8, 3, 1)),
              3, (int64_t[]){1, 4, 4}, 2, 17, NULL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Behaviour                                                                 */
/* ------------------------------------------------------------------------ */

/* Every value of t lies in [lo, hi], and (when spread) comes within 10% of both ends. */
static void expect_range(const char *what, const hlr_tensor *t, float lo, float hi, int spread)
{
    float mn = INFINITY, mx = -INFINITY;
    for (int64_t k = 0; k < hlr_tensor_numel(t); k++) {
        float v = hlr_tensor_f32(t)[k];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    ck_assert_msg(mn >= lo && mx <= hi, "%s spans [%g, %g], outside [%g, %g]", what, (double)mn, (double)mx, (double)lo,
                  (double)hi);
    if (spread)
        ck_assert_msg(mn < lo + 0.1f * (hi - lo) && mx > hi - 0.1f * (hi - lo), "%s spans only [%g, %g] of [%g, %g]",
                      what, (double)mn, (double)mx, (double)lo, (double)hi);
}

START_TEST(test_encoder_parameters_have_torch_names_shapes_and_init)
{
    const int E = 64, F = 96;
    hlr_layer *l = encoder(E, 4, F, 0, 0.0f);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, E}));
    static const char *const names[] = {"self_attn.in_proj_weight",
                                        "self_attn.in_proj_bias",
                                        "self_attn.out_proj.weight",
                                        "self_attn.out_proj.bias",
                                        "linear1.weight",
                                        "linear1.bias",
                                        "linear2.weight",
                                        "linear2.bias",
                                        "norm1.weight",
                                        "norm1.bias",
                                        "norm2.weight",
                                        "norm2.bias"};
    const int64_t shapes[][2] = {{3 * E, E}, {3 * E, 0}, {E, E}, {E, 0}, {F, E}, {F, 0},
                                 {E, F},     {E, 0},     {E, 0}, {E, 0}, {E, 0}, {E, 0}};
    const float xavier = sqrtf(6.0f / (4 * E)), bE = 1.0f / sqrtf((float)E), bF = 1.0f / sqrtf((float)F);
    /* lo, hi, spread: torch's xavier_uniform_, zeros, nn.Linear's U(+-1/sqrt(in)), ones */
    const float init[][3] = {{-xavier, xavier, 1}, {0, 0, 0},    {-bE, bE, 1}, {0, 0, 0}, {-bE, bE, 1}, {-bE, bE, 1},
                             {-bF, bF, 1},         {-bF, bF, 1}, {1, 1, 0},    {0, 0, 0}, {1, 1, 0},    {0, 0, 0}};
    ck_assert_int_eq(hlr_layer_param_count(l), 12);
    for (int p = 0; p < 12; p++) {
        ck_assert_str_eq(hlr_layer_param_name(l, p), names[p]);
        hlr_tensor *t = hlr_layer_param(l, names[p]);
        ck_assert_int_eq(hlr_tensor_ndim(t), shapes[p][1] ? 2 : 1);
        ck_assert_int_eq(hlr_tensor_dim(t, 0), shapes[p][0]);
        if (shapes[p][1])
            ck_assert_int_eq(hlr_tensor_dim(t, 1), shapes[p][1]);
        expect_range(names[p], t, init[p][0], init[p][1], init[p][2] != 0);
    }
    ck_assert_int_eq(hlr_model_param_count(m), 4 * E * E + 4 * E + 2 * E * F + F + E + 4 * E);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_new_layers_initialise_as_documented)
{
    hlr_layer *patch = hlr_patch_embedding(3, 4, 32), *cls = hlr_class_token(32);
    hlr_layer *pos = hlr_positional_encoding(200, 32, HLR_POS_LEARNED);
    hlr_model *m = MODEL(patch, cls, pos);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){3, 16, 8}));
    const float b = 1.0f / sqrtf(3 * 4 * 4);
    expect_range("patch weight", hlr_layer_param(patch, "weight"), -b, b, 1);
    expect_range("patch bias", hlr_layer_param(patch, "bias"), -b, b, 1);
    expect_range("cls_token", hlr_layer_param(cls, "cls_token"), 0, 0, 0);
    hlr_tensor *w = hlr_layer_param(pos, "weight");
    ck_assert_int_eq(hlr_tensor_dim(w, 0), 200);
    ck_assert_int_eq(hlr_tensor_dim(w, 1), 32);
    double sum = 0, sq = 0;
    int64_t n = hlr_tensor_numel(w);
    for (int64_t k = 0; k < n; k++) {
        sum += hlr_tensor_f32(w)[k];
        sq += (double)hlr_tensor_f32(w)[k] * hlr_tensor_f32(w)[k];
    }
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    ck_assert_msg(fabs(mean) < 0.002 && fabs(sd - 0.02) < 0.001,
                  "learned positions: mean %g, std %g; want N(0, 0.02^2)", mean, sd);
    hlr_model_free(m);
}
END_TEST

/* Learned rows at or past T are never used: their gradient is zero; dx is dy. */
START_TEST(test_learned_positions_beyond_the_input_get_no_gradient)
{
    const int64_t N = 3, T = 4, D = 5, L = 9;
    hlr_layer *pos = hlr_positional_encoding((int)L, (int)D, HLR_POS_LEARNED);
    hlr_model *m = MODEL(pos);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, D}));
    int64_t s[3] = {N, T, D};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, s), *y = hlr_tensor_new(HLR_F32, 3, s);
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 3, s), *dx = hlr_tensor_new(HLR_F32, 3, s);
    test_fill(hlr_tensor_f32(x), N * T * D, 31, -1, 1);
    test_fill(hlr_tensor_f32(dy), N * T * D, 32, -1, 1);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    const float *w = hlr_tensor_f32(hlr_layer_param(pos, "weight"));
    for (int64_t k = 0; k < N * T * D; k++)
        ck_assert_float_eq(hlr_tensor_f32(y)[k], hlr_tensor_f32(x)[k] + w[k % (T * D)]);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    const float *g = hlr_tensor_f32(hlr_layer_grad(pos, "weight"));
    for (int64_t k = 0; k < L * D; k++) {
        double want = 0;
        for (int64_t n = 0; k < T * D && n < N; n++)
            want += hlr_tensor_f32(dy)[n * T * D + k];
        ck_assert_close(g[k], want, 1e-6, 1e-6);
    }
    ck_assert(memcmp(hlr_tensor_data(dx), hlr_tensor_data(dy), (size_t)(N * T * D) * sizeof(float)) == 0);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(dx);
    hlr_model_free(m);
}
END_TEST

/* Dropout acts in training only: in inference a block with dropout 0.5 computes exactly what the same
 * block without dropout computes; in training it does not. */
START_TEST(test_encoder_dropout_only_in_training)
{
    const int64_t N = 3, T = 5, E = 8;
    hlr_layer *a = encoder((int)E, 2, 12, 0, 0.5f), *b = encoder((int)E, 2, 12, 0, 0.0f);
    hlr_model *ma = MODEL(a), *mb = MODEL(b);
    ck_assert_ok(hlr_model_build(ma, 2, (int64_t[]){T, E}));
    ck_assert_ok(hlr_model_build(mb, 2, (int64_t[]){T, E}));
    for (int p = 0; p < hlr_layer_param_count(a); p++)
        set_param(b, hlr_layer_param_name(a, p), hlr_tensor_f32(hlr_layer_param(a, hlr_layer_param_name(a, p))));
    int64_t s[3] = {N, T, E};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, s), *ya = hlr_tensor_new(HLR_F32, 3, s),
               *yb = hlr_tensor_new(HLR_F32, 3, s);
    test_fill(hlr_tensor_f32(x), N * T * E, 41, -1, 1);
    const size_t bytes = (size_t)(N * T * E) * sizeof(float);
    ck_assert_ok(hlr_model_forward(ma, x, ya, 0));
    ck_assert_ok(hlr_model_forward(mb, x, yb, 0));
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), bytes) == 0);
    ck_assert_ok(hlr_model_forward(mb, x, yb, 1));
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), bytes) == 0);
    ck_assert_ok(hlr_model_forward(ma, x, ya, 1));
    ck_assert_msg(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), bytes) != 0, "dropout 0.5 changed nothing");
    hlr_tensor_free(x);
    hlr_tensor_free(ya);
    hlr_tensor_free(yb);
    hlr_model_free(ma);
    hlr_model_free(mb);
}
END_TEST

/* With key padding (alone and with the causal mask), each sequence's valid steps equal those of the
 * sequence run alone, cut to its length. */
START_TEST(test_key_padding_encoder_equals_running_each_sequence_alone)
{
    static const int32_t lengths[] = {5, 2, 3};
    const int64_t N = 3, T = 5, E = 8;
    const int causal = _i ? HLR_ATTN_CAUSAL : 0;
    hlr_model *m = MODEL(encoder((int)E, 2, 10, HLR_ATTN_KEY_PADDING | causal, 0.0f));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, E}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E}),
               *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E});
    test_fill(hlr_tensor_f32(x), N * T * E, 21, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    hlr_layer *b = hlr_model_layer(m, 0);
    for (int64_t n = 0; n < N; n++) {
        int64_t L = lengths[n];
        hlr_model *alone = MODEL(encoder((int)E, 2, 10, causal, 0.0f));
        ck_assert_ok(hlr_model_build(alone, 2, (int64_t[]){L, E}));
        hlr_layer *a = hlr_model_layer(alone, 0);
        for (int p = 0; p < hlr_layer_param_count(b); p++)
            set_param(a, hlr_layer_param_name(b, p), hlr_tensor_f32(hlr_layer_param(b, hlr_layer_param_name(b, p))));
        hlr_tensor *xa = hlr_tensor_from(HLR_F32, 3, (int64_t[]){1, L, E}, hlr_tensor_f32(x) + n * T * E);
        hlr_tensor *ya = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, L, E});
        ck_assert_ok(hlr_model_forward(alone, xa, ya, 0));
        for (int64_t k = 0; k < L * E; k++)
            ck_assert_close(hlr_tensor_f32(y)[n * T * E + k], hlr_tensor_f32(ya)[k], 1e-5, 1e-6);
        hlr_tensor_free(xa);
        hlr_tensor_free(ya);
        hlr_model_free(alone);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_transformer_layers_reject_bad_arguments_with_specific_messages)
{
    ck_assert_ptr_null(hlr_transformer_encoder(10, 4, 16, 0, 0.0f));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("hlr_transformer_encoder: dim 10 must be >= 1 and divisible by heads 4");
    ck_assert_ptr_null(hlr_transformer_encoder(0, 1, 16, 0, 0.0f));
    ck_assert_ptr_null(hlr_transformer_encoder(8, 0, 16, 0, 0.0f));
    ck_assert_ptr_null(hlr_transformer_encoder(8, 2, 0, 0, 0.0f));
    ck_assert_error_mentions("ff_dim 0 >= 1");
    ck_assert_ptr_null(hlr_transformer_encoder(8, 2, 16, HLR_ATTN_NO_OUT_PROJ, 0.0f));
    ck_assert_error_mentions("unknown flags 0x4 (HLR_ATTN_CAUSAL and HLR_ATTN_KEY_PADDING only)");
    ck_assert_ptr_null(hlr_transformer_encoder(8, 2, 16, 0, 1.0f));
    ck_assert_error_mentions("dropout 1; expected 0 <= dropout < 1");
    ck_assert_ptr_null(hlr_transformer_encoder(8, 2, 16, 0, -0.1f));
    ck_assert_ptr_null(hlr_transformer_encoder(8, 2, 16, 0, NAN));

    ck_assert_ptr_null(hlr_positional_encoding(0, 8, HLR_POS_SINUSOIDAL));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("hlr_positional_encoding: max_len 0 and dim 8 must both be >= 1");
    ck_assert_ptr_null(hlr_positional_encoding(4, 0, HLR_POS_LEARNED));
    ck_assert_ptr_null(hlr_positional_encoding(4, 8, 2));
    ck_assert_error_mentions("kind 2 is neither HLR_POS_SINUSOIDAL (0) nor HLR_POS_LEARNED (1)");
    ck_assert_ptr_null(hlr_positional_encoding(4, 8, -1));

    ck_assert_ptr_null(hlr_patch_embedding(0, 4, 8));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("hlr_patch_embedding: in_channels 0, patch 4 and dim 8 must all be >= 1");
    ck_assert_ptr_null(hlr_patch_embedding(1, 0, 8));
    ck_assert_ptr_null(hlr_patch_embedding(1, 4, -3));

    ck_assert_ptr_null(hlr_class_token(0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("hlr_class_token: dim 0 must be >= 1");
}
END_TEST

/* Build a one- or two-layer model for `shape`; it must fail with HLR_ESHAPE and `message`. */
static void expect_build_error(hlr_model *m, int ndim, const int64_t *shape, const char *message)
{
    ck_assert_status(hlr_model_build(m, ndim, shape), HLR_ESHAPE);
    ck_assert_error_mentions(message);
    hlr_model_free(m);
}

START_TEST(test_transformer_build_errors_name_the_layer)
{
    expect_build_error(MODEL(hlr_dense(3, 5, 1), encoder(8, 2, 16, 0, 0.0f)), 2, (int64_t[]){4, 3},
                       "transformer_encoder (layer 1): input (4, 5) is not (steps, 8)");
    expect_build_error(MODEL(encoder(8, 2, 16, 0, 0.0f)), 1, (int64_t[]){8},
                       "transformer_encoder (layer 0): input (8) is not (steps, 8)");
    expect_build_error(MODEL(hlr_patch_embedding(1, 4, 8)), 3, (int64_t[]){1, 8, 6},
                       "patch_embedding (layer 0): input (1, 8, 6): height and width must be multiples of the "
                       "patch size 4");
    expect_build_error(MODEL(hlr_patch_embedding(3, 2, 8)), 3, (int64_t[]){1, 8, 8},
                       "patch_embedding (layer 0): input (1, 8, 8) is not (3, height, width)");
    expect_build_error(MODEL(hlr_flatten(), hlr_patch_embedding(1, 2, 8)), 3, (int64_t[]){1, 8, 8},
                       "patch_embedding (layer 1): input (64) is not (1, height, width)");
    expect_build_error(MODEL(hlr_dense(2, 8, 1), hlr_positional_encoding(6, 8, HLR_POS_SINUSOIDAL)), 2,
                       (int64_t[]){7, 2},
                       "positional_encoding (layer 1): input (7, 8) has 7 steps, more than max_len 6");
    expect_build_error(MODEL(hlr_positional_encoding(6, 8, HLR_POS_LEARNED)), 2, (int64_t[]){3, 4},
                       "positional_encoding (layer 0): input (3, 4) is not (steps, 8)");
    expect_build_error(MODEL(hlr_class_token(8)), 2, (int64_t[]){3, 4},
                       "class_token (layer 0): input (3, 4) is not (steps, 8)");
    expect_build_error(MODEL(hlr_flatten(), hlr_seq_first()), 2, (int64_t[]){3, 4},
                       "seq_first (layer 1): input (12) is not (steps, features...)");
    /* a build that fails after the block was built leaves it rebuildable for another shape */
    hlr_model *m = MODEL(hlr_class_token(4), encoder(4, 2, 6, 0, 0.0f), hlr_positional_encoding(4, 4, 0));
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){4, 4}), HLR_ESHAPE);
    ck_assert_error_mentions("positional_encoding (layer 2): input (5, 4) has 5 steps, more than max_len 4");
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, 4}));
    ck_assert_int_eq(hlr_layer_param_count(hlr_model_layer(m, 1)), 12);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 3, 4}),
               *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 4, 4});
    test_fill(hlr_tensor_f32(x), 24, 3, -1, 1);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    for (int k = 0; k < 32; k++)
        ck_assert(isfinite(hlr_tensor_f32(y)[k]));
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_transformer_configurations_round_trip)
{
    hlr_layer *ls[] = {hlr_transformer_encoder(12, 3, 20, HLR_ATTN_CAUSAL | HLR_ATTN_KEY_PADDING, 0.125f),
                       hlr_transformer_encoder(4, 1, 4, 0, 0.0f),
                       hlr_positional_encoding(50, 7, HLR_POS_SINUSOIDAL),
                       hlr_positional_encoding(9, 16, HLR_POS_LEARNED),
                       hlr_patch_embedding(3, 7, 64),
                       hlr_class_token(33),
                       hlr_seq_first()};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        assert_config_round_trips(ls[i]);
    hlr_config bad = {0};
    hlr__config_int(&bad, "dim", 10);
    hlr__config_int(&bad, "heads", 3);
    hlr__config_int(&bad, "ff_dim", 8);
    hlr__config_int(&bad, "causal", 0);
    hlr__config_int(&bad, "key_padding", 0);
    hlr__config_float(&bad, "dropout", 0.0);
    ck_assert_ptr_null(hlr__layer_ops_find("transformer_encoder")->from_config(&bad));
    ck_assert_error_mentions("divisible by heads 3");
    hlr_config kind = {0};
    hlr__config_int(&kind, "max_len", 10);
    hlr__config_int(&kind, "dim", 10);
    hlr__config_int(&kind, "kind", 5);
    ck_assert_ptr_null(hlr__layer_ops_find("positional_encoding")->from_config(&kind));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
}
END_TEST

static hlr_model *small_vit(uint64_t seed, float dropout)
{
    hlr_model *m = hlr_model_new(seed);
    hlr_layer *ls[] = {hlr_patch_embedding(1, 4, 16),
                       hlr_class_token(16),
                       hlr_positional_encoding(5, 16, HLR_POS_LEARNED),
                       hlr_positional_encoding(5, 16, HLR_POS_SINUSOIDAL),
                       encoder(16, 4, 24, 0, dropout),
                       encoder(16, 2, 24, HLR_ATTN_CAUSAL, dropout),
                       hlr_layernorm(16, 1e-5f),
                       hlr_seq_first(),
                       hlr_dense(16, 3, 1)};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        ck_assert_ok(hlr_model_add(m, ls[i]));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    return m;
}

/* A model with every new layer: trains, saves, loads with the same parameters and predictions, and
 * serves through a clone that shares its parameters. */
START_TEST(test_vision_transformer_saves_loads_and_clones)
{
    const int64_t N = 6;
    hlr_model *m = small_vit(5, 0.1f);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, 8, 8});
    hlr_tensor *lab = hlr_tensor_from(HLR_I32, 1, (int64_t[]){N}, (int32_t[]){0, 1, 2, 0, 1, 2});
    test_fill(hlr_tensor_f32(x), N * 64, 51, 0.0f, 1.0f);
    hlr_optimizer *o = hlr_adamw(1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f);
    for (int k = 0; k < 5; k++)
        ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
    void *buf;
    size_t len;
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    hlr_model *back = hlr_model_load_buffer(buf, len, NULL);
    ck_assert_msg(back != NULL, "%s", hlr_last_error());
    hlr_model *clone = hlr_model_clone_shared(m);
    ck_assert_msg(clone != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(hlr_model_num_layers(back), hlr_model_num_layers(m));
    for (int li = 0; li < hlr_model_num_layers(m); li++) {
        hlr_layer *a = hlr_model_layer(m, li), *b = hlr_model_layer(back, li);
        ck_assert_str_eq(hlr_layer_type(a), hlr_layer_type(b));
        ck_assert_int_eq(hlr_layer_param_count(a), hlr_layer_param_count(b));
        for (int p = 0; p < hlr_layer_param_count(a); p++) {
            const char *name = hlr_layer_param_name(a, p);
            ck_assert_str_eq(name, hlr_layer_param_name(b, p));
            hlr_tensor *ta = hlr_layer_param(a, name), *tb = hlr_layer_param(b, name);
            ck_assert(memcmp(hlr_tensor_data(ta), hlr_tensor_data(tb), (size_t)hlr_tensor_numel(ta) * 4) == 0);
        }
    }
    hlr_tensor *ya = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 3}), *yb = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 3}),
               *yc = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 3});
    ck_assert_ok(hlr_model_forward(m, x, ya, 0));
    ck_assert_ok(hlr_model_forward(back, x, yb, 0));
    ck_assert_ok(hlr_model_forward(clone, x, yc, 0));
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), (size_t)N * 3 * sizeof(float)) == 0);
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yc), (size_t)N * 3 * sizeof(float)) == 0);
    /* the clone reads the original's parameters as they change */
    ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
    ck_assert_ok(hlr_model_forward(m, x, ya, 0));
    ck_assert_ok(hlr_model_forward(clone, x, yc, 0));
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yc), (size_t)N * 3 * sizeof(float)) == 0);
    ck_assert(memcmp(hlr_tensor_data(ya), hlr_tensor_data(yb), (size_t)N * 3 * sizeof(float)) != 0);
    hlr_buffer_free(buf);
    hlr_tensor_free(ya);
    hlr_tensor_free(yb);
    hlr_tensor_free(yc);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_model_free(clone);
    hlr_model_free(back);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_transformer_training_loop_allocates_nothing)
{
    static int32_t lengths[] = {5, 3, 1, 4};
    const int64_t N = 4;
    hlr_model *m = small_vit(9, 0.1f);
    hlr_optimizer *o = hlr_adamw(3e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, 8, 8});
    hlr_tensor *lab = hlr_tensor_from(HLR_I32, 1, (int64_t[]){N}, (int32_t[]){0, 1, 2, 1});
    test_fill(hlr_tensor_f32(x), N * 64, 9, 0.0f, 1.0f);
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N)); /* unused by these blocks, harmless */
    expect_learns_without_allocating(m, o, x, lab, 40);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* The transformer's element-wise arithmetic computes e^x and erf in float (kernels/exp_approx.h): GELU, its
 * derivative, the softmax and layer norm's moments against double precision on a dense grid.  GELU's bound
 * is that of 0.5 x (1 + erf(x / sqrt 2)) in float with erf rounded correctly: 1 + erf cancels for x < 0,
 * so the error is absolute there (4.4e-7 at worst, scripts/fit-erf.py), relative (a few ulp) above. */
START_TEST(test_gelu_softmax_and_moments_are_accurate)
{
    enum { N = 12001 };
    static float x[N], y[N], dx[N], ones[N];
    for (int i = 0; i < N; i++) {
        x[i] = -6.0f + 12.0f * (float)i / (float)(N - 1);
        ones[i] = 1.0f;
    }
    hlrk_gelu(y, x, N);
    hlrk_gelu_backward(dx, x, ones, N);
    double worst = 0.0, worst_d = 0.0;
    for (int i = 0; i < N; i++) {
        const double v = x[i], cdf = 0.5 * (1.0 + erf(v / sqrt(2.0))), pdf = exp(-0.5 * v * v) / sqrt(2.0 * M_PI);
        const double tol = 5e-7 + 6e-7 * fabs(v * cdf);
        worst = fmax(worst, fabs(y[i] - v * cdf) / tol);
        worst_d = fmax(worst_d, fabs(dx[i] - (cdf + v * pdf)) / (5e-7 + 6e-7 * fabs(cdf + v * pdf)));
    }
    ck_assert_msg(worst <= 1.0, "GELU off by %.2f of its bound", worst);
    ck_assert_msg(worst_d <= 1.0, "GELU' off by %.2f of its bound", worst_d);
    /* softmax over rows of 1 to 70 scores, a -inf (a causal mask's) among them */
    float s[70], p[70];
    unsigned long long seed = 3;
    for (int cols = 1; cols <= 70; cols++) {
        for (int c = 0; c < cols; c++)
            s[c] = 20.0f * test_rand(&seed) - 10.0f;
        if (cols > 2)
            s[1] = -INFINITY;
        hlrk_softmax_rows(p, s, 1, cols);
        double mx = -INFINITY, sum = 0.0;
        for (int c = 0; c < cols; c++)
            mx = fmax(mx, s[c]);
        for (int c = 0; c < cols; c++)
            sum += exp((double)s[c] - mx);
        for (int c = 0; c < cols; c++) {
            /* s - max rounded to float moves e^(s - max) by up to |s - max| 2^-24 of itself */
            const double want = exp((double)s[c] - mx) / sum, d = fabs((double)s[c] - mx);
            if (isinf(s[c])) {
                ck_assert(p[c] == 0.0f);
                continue;
            }
            ck_assert_msg(fabs(p[c] - want) <= (5e-7 + 1.2e-7 * d) * want + 1e-30, "softmax of %d: %.9g, not %.9g",
                          cols, p[c], want);
        }
    }
    /* layer norm's moments in double: exact up to double's rounding */
    double mean, sq, m2 = 0.0, q2 = 0.0;
    hlrk_mean_sqdev(x, 99, &mean, &sq);
    for (int i = 0; i < 99; i++)
        m2 += x[i];
    m2 /= 99.0;
    for (int i = 0; i < 99; i++)
        q2 += (x[i] - m2) * (x[i] - m2);
    ck_assert(fabs(mean - m2) <= 1e-12 * fabs(m2) && fabs(sq - q2) <= 1e-12 * q2);
}
END_TEST

/* The kernels run the clone for this CPU (kernels.h: AVX-512 or AVX2); this file compiles exp_approx.h for
 * the x86-64 baseline.  Both must give the same bits, or a model would answer differently on an older CPU
 * (a multiply and add contracted into an FMA in one clone would break it): e^x through the CTC numerators,
 * sigmoid and tanh through an LSTM step's stored gates, erf through GELU. */
START_TEST(test_exp_erf_sigmoid_tanh_give_the_baseline_bits_in_every_clone)
{
    enum { N = 20001 };
    static float x[N], q[N], y[N], gates[4 * N], bias[4 * N], zero[N], h[N], c[N], tc[N];
    double sum;
    unsigned long long seed = 11;
    for (int i = 0; i < N; i++) {
        x[i] = i == 0 ? 0.0f : -87.0f * test_rand(&seed); /* row max 0: the kernel's x - max is x */
        const float v = 24.0f * test_rand(&seed) - 12.0f;
        gates[i] = v; /* i: sigmoid */
        gates[2 * N + i] = v; /* g: tanh, both sides of the clamp at |x| = 9 */
    }
    hlrk_exp_shifted_rows(q, &sum, x, 1, N);
    for (int i = 0; i < N; i++) {
        const float want = exp_approx(x[i]);
        ck_assert_msg(memcmp(&q[i], &want, sizeof want) == 0, "e^%.9g: %.9g, the baseline %.9g", x[i], q[i], want);
    }
    for (int i = 0; i < N; i++)
        x[i] = 12.0f * test_rand(&seed) - 6.0f;
    hlrk_gelu(y, x, N);
    for (int i = 0; i < N; i++) {
        const float want = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
        ck_assert_msg(memcmp(&y[i], &want, sizeof want) == 0, "gelu(%.9g): %.9g, the baseline %.9g", x[i], y[i], want);
    }
    float in_i[N], in_g[N];
    memcpy(in_i, gates, sizeof in_i);
    memcpy(in_g, gates + 2 * N, sizeof in_g);
    hlrk_lstm_step(gates, bias, zero, zero, h, c, tc, NULL, 1, N, 0, N);
    for (int i = 0; i < N; i++) {
        const float si = sigmoid_gate(in_i[i]), tg = tanh_gate(in_g[i]);
        ck_assert_msg(memcmp(&gates[i], &si, sizeof si) == 0, "sigmoid(%.9g): %.9g, the baseline %.9g", in_i[i],
                      gates[i], si);
        ck_assert_msg(memcmp(&gates[2 * N + i], &tg, sizeof tg) == 0, "tanh(%.9g): %.9g, the baseline %.9g", in_g[i],
                      gates[2 * N + i], tg);
    }
}
END_TEST

Suite *suite_transformer(void)
{
    Suite *s = suite_create("transformer");
    TCase *t = tcase_create("torch");
    tcase_add_loop_test(t, test_encoder_matches_torch, 0, (int)(sizeof enc_ref_cases / sizeof enc_ref_cases[0]));
    tcase_add_loop_test(t, test_patch_embedding_matches_torch_conv2d, 0,
                        (int)(sizeof patch_ref_cases / sizeof patch_ref_cases[0]));
    tcase_add_loop_test(t, test_sinusoidal_table_matches_torch, 0,
                        (int)(sizeof sin_ref_cases / sizeof sin_ref_cases[0]));
    tcase_add_test(t, test_vision_transformer_matches_torch);
    suite_add_tcase(s, t);

    t = tcase_create("finite_differences");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, test_encoder_matches_finite_differences, 0, 3);
    tcase_add_test(t, test_causal_encoder_matches_finite_differences);
    tcase_add_test(t, test_key_padding_encoder_matches_finite_differences);
    tcase_add_test(t, test_encoder_dropout_matches_finite_differences);
    tcase_add_test(t, test_stacked_encoders_match_finite_differences);
    tcase_add_test(t, test_patch_embedding_matches_finite_differences);
    tcase_add_test(t, test_positional_encodings_match_finite_differences);
    tcase_add_test(t, test_class_token_and_seq_first_match_finite_differences);
    tcase_add_test(t, test_small_vision_transformer_matches_finite_differences);
    suite_add_tcase(s, t);

    t = tcase_create("layers");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_encoder_parameters_have_torch_names_shapes_and_init);
    tcase_add_test(t, test_new_layers_initialise_as_documented);
    tcase_add_test(t, test_learned_positions_beyond_the_input_get_no_gradient);
    tcase_add_test(t, test_encoder_dropout_only_in_training);
    tcase_add_loop_test(t, test_key_padding_encoder_equals_running_each_sequence_alone, 0, 2);
    tcase_add_test(t, test_transformer_layers_reject_bad_arguments_with_specific_messages);
    tcase_add_test(t, test_transformer_build_errors_name_the_layer);
    tcase_add_test(t, test_transformer_configurations_round_trip);
    tcase_add_test(t, test_vision_transformer_saves_loads_and_clones);
    tcase_add_test(t, test_transformer_training_loop_allocates_nothing);
    tcase_add_test(t, test_gelu_softmax_and_moments_are_accurate);
    tcase_add_test(t, test_exp_erf_sigmoid_tanh_give_the_baseline_bits_in_every_clone);
    suite_add_tcase(s, t);
    return s;
}

/*
 * test_attention.c -- multi-head self-attention and layer norm: values,
 * attention weights and gradients against PyTorch (fixtures/attn_ref.h,
 * written by fixtures/gen_attn_ref.py), gradients against finite
 * differences for every option, masks that behave as running each sequence
 * alone, dropout, initialisation, configurations and the errors.
 */
#include "testutil.h"
#include "fdcheck.h"

#include "fixtures/attn_ref.h"
#include "testutil_internal.h" /* the model's generator, to replay a dropout mask; configurations */

#include <stdlib.h>

Suite *suite_attention(void);

/* A model of the listed layers (testutil.h). */
#define MODEL(...) TEST_MODEL(2024, __VA_ARGS__)

static hlr_layer *mha(int E, int heads, int flags, float dropout)
{
    hlr_layer *l = hlr_multihead_attention(E, heads, flags, dropout);
    ck_assert_msg(l != NULL, "%s", hlr_last_error());
    return l;
}

/* ------------------------------------------------------------------------ */
/* Against PyTorch                                                           */
/* ------------------------------------------------------------------------ */

START_TEST(test_multihead_attention_matches_torch)
{
    const mha_ref_case *c = &mha_ref_cases[_i];
    int flags = (c->causal ? HLR_ATTN_CAUSAL : 0) | (c->lengths ? HLR_ATTN_KEY_PADDING : 0) |
                (c->out_proj ? 0 : HLR_ATTN_NO_OUT_PROJ) | (c->bias ? 0 : HLR_ATTN_NO_BIAS);
    torch_attention_fixture f = {c->name, c->N,       c->T,  c->E,     c->heads,  c->lengths, c->x,      c->dy,
                                 c->y,    c->weights, c->dx, c->names, c->params, c->grads,   c->nparams};
    expect_attention_matches_torch(mha(c->E, c->heads, flags, 0.0f), &f, 0);
}
END_TEST

START_TEST(test_layernorm_matches_torch)
{
    const ln_ref_case *c = &ln_ref_cases[_i];
    hlr_layer *l = hlr_layernorm(c->D, 1e-5f);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){c->T, c->D}));
    memcpy(hlr_tensor_data(hlr_layer_param(l, "weight")), c->weight, (size_t)c->D * sizeof(float));
    memcpy(hlr_tensor_data(hlr_layer_param(l, "bias")), c->bias, (size_t)c->D * sizeof(float));
    int64_t s[3] = {c->N, c->T, c->D}, n = (int64_t)c->N * c->T * c->D;
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, s, c->x), *y = hlr_tensor_new(HLR_F32, 3, s);
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, 3, s, c->dy), *dx = hlr_tensor_new(HLR_F32, 3, s);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_torch_close(c->name, "y", hlr_tensor_f32(y), c->y, n);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_torch_close(c->name, "dx", hlr_tensor_f32(dx), c->dx, n);
    expect_torch_close(c->name, "dweight", hlr_tensor_f32(hlr_layer_grad(l, "weight")), c->dweight, c->D);
    expect_torch_close(c->name, "dbias", hlr_tensor_f32(hlr_layer_grad(l, "bias")), c->dbias, c->D);
    /* inference gives the same values: layer norm has no running statistics */
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    expect_torch_close(c->name, "y (inference)", hlr_tensor_f32(y), c->y, n);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(dx);
    hlr_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Finite differences                                                        */
/* ------------------------------------------------------------------------ */

/* Finite differences: fd_gradcheck() in fdcheck.c. */

/* _i: 0, 1, 2 -> 1, 2 and 4 heads. */
START_TEST(test_multihead_attention_matches_finite_differences)
{
    static const int heads[] = {1, 2, 4};
    fd_gradcheck(MODEL(mha(8, heads[_i], 0, 0.0f)), 2, (int64_t[]){5, 8}, 3, 1 + (unsigned)_i, NULL);
}
END_TEST

START_TEST(test_causal_attention_matches_finite_differences)
{
    fd_gradcheck(MODEL(mha(8, 2, HLR_ATTN_CAUSAL, 0.0f)), 2, (int64_t[]){6, 8}, 2, 4, NULL);
}
END_TEST

START_TEST(test_key_padding_matches_finite_differences)
{
    static const int32_t lengths[] = {5, 2, 1};
    fd_gradcheck(MODEL(mha(8, 2, HLR_ATTN_KEY_PADDING, 0.0f)), 2, (int64_t[]){5, 8}, 3, 5, lengths);
    fd_gradcheck(MODEL(mha(8, 4, HLR_ATTN_KEY_PADDING | HLR_ATTN_CAUSAL, 0.0f)), 2, (int64_t[]){5, 8}, 3, 6, lengths);
}
END_TEST

START_TEST(test_attention_without_projection_or_bias_matches_finite_differences)
{
    fd_gradcheck(MODEL(mha(6, 2, HLR_ATTN_NO_OUT_PROJ, 0.0f)), 2, (int64_t[]){4, 6}, 3, 7, NULL);
    fd_gradcheck(MODEL(mha(6, 3, HLR_ATTN_NO_BIAS, 0.0f)), 2, (int64_t[]){4, 6}, 2, 8, NULL);
    fd_gradcheck(MODEL(mha(6, 1, HLR_ATTN_NO_BIAS | HLR_ATTN_NO_OUT_PROJ, 0.0f)), 2, (int64_t[]){4, 6}, 2, 9, NULL);
}
END_TEST

START_TEST(test_attention_dropout_matches_finite_differences)
{
    fd_gradcheck(MODEL(mha(8, 2, HLR_ATTN_CAUSAL, 0.3f)), 2, (int64_t[]){5, 8}, 3, 10, NULL);
}
END_TEST

START_TEST(test_layernorm_matches_finite_differences)
{
    fd_gradcheck(MODEL(hlr_dense(5, 7, 1), hlr_layernorm(7, 1e-5f), hlr_tanh(), hlr_dense(7, 3, 1)), 2,
              (int64_t[]){3, 5}, 3, 11, NULL);
    fd_gradcheck(MODEL(hlr_layernorm(9, 1e-3f), hlr_dense(9, 2, 1)), 1, (int64_t[]){9}, 4, 12, NULL);
}
END_TEST

/* A small version of the hybrid model's tail: dense -> LSTM -> attention -> mean -> dense, with lengths. */
START_TEST(test_attention_in_a_sequence_model_matches_finite_differences)
{
    static const int32_t lengths[] = {4, 1, 3};
    fd_gradcheck(MODEL(hlr_lstm(3, 6, 1, HLR_RETURN_SEQUENCES, 0.0f),
                    mha(6, 2, HLR_ATTN_NO_OUT_PROJ | HLR_ATTN_KEY_PADDING, 0.0f), hlr_layernorm(6, 1e-5f),
                    hlr_seq_mean(), hlr_dense(6, 3, 1)),
              2, (int64_t[]){4, 3}, 3, 13, lengths);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Behaviour                                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(test_attention_parameters_have_torch_names_shapes_and_init)
{
    const int E = 64;
    hlr_layer *l = mha(E, 4, 0, 0.0f), *bare = mha(E, 4, HLR_ATTN_NO_BIAS | HLR_ATTN_NO_OUT_PROJ, 0.0f);
    hlr_model *m = MODEL(l, bare);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, E}));
    static const char *const names[] = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
    static const int64_t rows[] = {3 * E, 3 * E, E, E};
    const float bounds[] = {sqrtf(6.0f / (4 * E)), 0, 1.0f / sqrtf((float)E), 0};
    ck_assert_int_eq(hlr_layer_param_count(l), 4);
    for (int p = 0; p < 4; p++) {
        ck_assert_str_eq(hlr_layer_param_name(l, p), names[p]);
        hlr_tensor *t = hlr_layer_param(l, names[p]);
        ck_assert_int_eq(hlr_tensor_ndim(t), p % 2 ? 1 : 2);
        ck_assert_int_eq(hlr_tensor_dim(t, 0), rows[p]);
        if (p % 2 == 0)
            ck_assert_int_eq(hlr_tensor_dim(t, 1), E);
        float lo = 1, hi = -1;
        for (int64_t k = 0; k < hlr_tensor_numel(t); k++) {
            float v = hlr_tensor_f32(t)[k];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        float b = bounds[p];
        if (b == 0)
            ck_assert_msg(lo == 0 && hi == 0, "%s spans [%g, %g]; torch starts it at zero", names[p], (double)lo,
                          (double)hi);
        else
            ck_assert_msg(lo >= -b && hi <= b && lo < -0.9f * b && hi > 0.9f * b,
                          "%s spans [%g, %g]; torch draws U(-%g, %g)", names[p], (double)lo, (double)hi, (double)b,
                          (double)b);
    }
    ck_assert_int_eq(hlr_layer_param_count(bare), 1);
    ck_assert_str_eq(hlr_layer_param_name(bare, 0), "in_proj_weight");
    hlr_model_free(m);
}
END_TEST

/* With padding and causal masks, every row of weights sums to 1 over the keys it may see and is 0 elsewhere. */
START_TEST(test_attention_weights_are_masked_distributions)
{
    static const int32_t lengths[] = {6, 3, 1, 4};
    const int64_t N = 4, T = 6, E = 8, H = 2;
    hlr_layer *l = mha(E, H, HLR_ATTN_CAUSAL | HLR_ATTN_KEY_PADDING, 0.0f);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, E}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E}), *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E});
    test_fill(hlr_tensor_f32(x), N * T * E, 3, -2.0f, 2.0f);
    hlr_tensor *w = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, H, T, T});
    ck_assert_status(hlr_attention_weights(l, w), HLR_ESTATE);
    ck_assert_error_mentions("has not run a forward pass");
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
    int64_t shape[4];
    ck_assert_status(hlr_attention_weights_shape(l, shape), HLR_ESTATE);
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_attention_weights_shape(l, shape));
    ck_assert_msg(shape[0] == N && shape[1] == H && shape[2] == T && shape[3] == T, "shape (%lld, %lld, %lld, %lld)",
                  (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3]);
    ck_assert_status(hlr_attention_weights_shape(l, NULL), HLR_EINVAL);
    ck_assert_ok(hlr_attention_weights(l, w));
    const float *p = hlr_tensor_f32(w);
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                int64_t c = i + 1 < lengths[n] ? i + 1 : lengths[n];
                double sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    float v = p[((n * H + h) * T + i) * T + j];
                    if (j >= c)
                        ck_assert_msg(v == 0.0f, "sequence %lld head %lld query %lld key %lld: %g, expected 0",
                                      (long long)n, (long long)h, (long long)i, (long long)j, (double)v);
                    else
                        ck_assert_msg(v > 0.0f, "weight %g at a visible key", (double)v);
                    sum += v;
                }
                ck_assert_close(sum, 1.0, 1e-6, 0);
            }
    /* errors: wrong shape, dtype, layer type, NULL */
    hlr_tensor *small = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, H, T, T - 1});
    ck_assert_status(hlr_attention_weights(l, small), HLR_ESHAPE);
    ck_assert_error_mentions("(4, 2, 6, 6)");
    hlr_tensor *ints = hlr_tensor_new(HLR_I32, 4, (int64_t[]){N, H, T, T});
    ck_assert_status(hlr_attention_weights(l, ints), HLR_EINVAL);
    ck_assert_status(hlr_attention_weights(NULL, w), HLR_EINVAL);
    hlr_layer *d = hlr_dense(2, 2, 1);
    ck_assert_status(hlr_attention_weights(d, w), HLR_EINVAL);
    ck_assert_error_mentions("dense layer has no attention weights");
    hlr_layer_free(d);
    hlr_tensor_free(small);
    hlr_tensor_free(ints);
    hlr_tensor_free(w);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

/* Under either mask, each sequence's valid outputs equal those of the sequence run alone, cut to its length. */
START_TEST(test_key_padding_equals_running_each_sequence_alone)
{
    static const int32_t lengths[] = {5, 2, 3};
    const int64_t N = 3, T = 5, E = 8;
    hlr_model *m = MODEL(mha(E, 2, HLR_ATTN_KEY_PADDING | (_i ? HLR_ATTN_CAUSAL : 0), 0.0f));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, E}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E}), *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, E});
    test_fill(hlr_tensor_f32(x), N * T * E, 21, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    for (int64_t n = 0; n < N; n++) {
        int64_t L = lengths[n];
        hlr_model *alone = MODEL(mha(E, 2, _i ? HLR_ATTN_CAUSAL : 0, 0.0f));
        ck_assert_ok(hlr_model_build(alone, 2, (int64_t[]){L, E}));
        hlr_layer *a = hlr_model_layer(alone, 0), *b = hlr_model_layer(m, 0);
        for (int p = 0; p < hlr_layer_param_count(b); p++) {
            hlr_tensor *src = hlr_layer_param(b, hlr_layer_param_name(b, p));
            memcpy(hlr_tensor_data(hlr_layer_param(a, hlr_layer_param_name(b, p))), hlr_tensor_data(src),
                   (size_t)hlr_tensor_numel(src) * sizeof(float));
        }
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

START_TEST(test_attention_dropout_only_in_training)
{
    const int64_t N = 4, T = 6, E = 8;
    hlr_layer *l = mha(E, 2, 0, 0.5f);
    hlr_model *m = MODEL(l);
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, E}));
    int64_t s[3] = {N, T, E};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, s), *a = hlr_tensor_new(HLR_F32, 3, s), *b = hlr_tensor_new(HLR_F32, 3, s);
    test_fill(hlr_tensor_f32(x), N * T * E, 5, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(m, x, a, 0));
    ck_assert_ok(hlr_model_forward(m, x, b, 0));
    ck_assert(memcmp(hlr_tensor_data(a), hlr_tensor_data(b), (size_t)(N * T * E) * sizeof(float)) == 0);
    ck_assert_ok(hlr_model_forward(m, x, b, 1));
    ck_assert_msg(memcmp(hlr_tensor_data(a), hlr_tensor_data(b), (size_t)(N * T * E) * sizeof(float)) != 0,
                  "dropout 0.5 changed nothing in training");
    /* the weights read back are the probabilities before dropout: rows still sum to 1 */
    hlr_tensor *w = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 2, T, T});
    ck_assert_ok(hlr_attention_weights(l, w));
    for (int64_t r = 0; r < N * 2 * T; r++) {
        double sum = 0;
        for (int64_t j = 0; j < T; j++)
            sum += hlr_tensor_f32(w)[r * T + j];
        ck_assert_close(sum, 1.0, 1e-6, 0);
    }
    hlr_tensor_free(w);
    hlr_tensor_free(x);
    hlr_tensor_free(a);
    hlr_tensor_free(b);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_attention_layers_configurations_round_trip)
{
    hlr_layer *ls[] = {hlr_multihead_attention(12, 3, HLR_ATTN_CAUSAL | HLR_ATTN_NO_BIAS, 0.125f),
                       hlr_multihead_attention(4, 1, HLR_ATTN_KEY_PADDING | HLR_ATTN_NO_OUT_PROJ, 0.0f),
                       hlr_layernorm(7, 1e-3f)};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        assert_config_round_trips(ls[i]);
    hlr_config bad = {0};
    hlr__config_int(&bad, "embed_dim", 10);
    hlr__config_int(&bad, "num_heads", 3);
    hlr__config_int(&bad, "causal", 0);
    hlr__config_int(&bad, "key_padding", 0);
    hlr__config_int(&bad, "out_proj", 1);
    hlr__config_int(&bad, "bias", 1);
    hlr__config_float(&bad, "dropout", 0.0);
    ck_assert_ptr_null(hlr__layer_ops_find("multihead_attention")->from_config(&bad));
    ck_assert_error_mentions("divisible by num_heads 3");
}
END_TEST

START_TEST(test_attention_rejects_bad_arguments_with_specific_messages)
{
    ck_assert_ptr_null(hlr_multihead_attention(10, 4, 0, 0.0f));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("embed_dim 10 must be >= 1 and divisible by num_heads 4");
    ck_assert_ptr_null(hlr_multihead_attention(0, 1, 0, 0.0f));
    ck_assert_ptr_null(hlr_multihead_attention(8, 0, 0, 0.0f));
    ck_assert_ptr_null(hlr_multihead_attention(8, 2, 64, 0.0f));
    ck_assert_error_mentions("unknown flags 0x40");
    ck_assert_ptr_null(hlr_multihead_attention(8, 2, 0, 1.0f));
    ck_assert_error_mentions("dropout 1");
    ck_assert_ptr_null(hlr_multihead_attention(8, 2, 0, NAN));
    ck_assert_ptr_null(hlr_layernorm(0, 1e-5f));
    ck_assert_error_mentions("hlr_layernorm: dim 0");
    ck_assert_ptr_null(hlr_layernorm(4, 0.0f));
    ck_assert_ptr_null(hlr_layernorm(4, INFINITY));

    hlr_model *m = MODEL(hlr_dense(3, 5, 1), mha(8, 2, 0, 0.0f));
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){4, 3}), HLR_ESHAPE);
    ck_assert_error_mentions("multihead_attention (layer 1): input (4, 5) is not (steps, 8)");
    hlr_model_free(m);
    m = MODEL(mha(8, 2, 0, 0.0f));
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){8}), HLR_ESHAPE);
    hlr_model_free(m);
    m = MODEL(hlr_layernorm(6, 1e-5f));
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){6, 4}), HLR_ESHAPE);
    ck_assert_error_mentions("layernorm (layer 0): input (6, 4) does not end in 6 features");
    hlr_model_free(m);
}
END_TEST

START_TEST(test_attention_training_loop_allocates_nothing)
{
    static int32_t lengths[] = {5, 3, 1, 4};
    const int64_t N = 4, T = 5;
    hlr_model *m = MODEL(hlr_layernorm(6, 1e-5f), mha(6, 2, HLR_ATTN_CAUSAL | HLR_ATTN_KEY_PADDING, 0.2f),
                         hlr_seq_mean(), hlr_dense(6, 3, 1));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, 6}));
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, 6});
    hlr_tensor *lab = hlr_tensor_from(HLR_I32, 1, (int64_t[]){N}, (int32_t[]){0, 1, 2, 1});
    test_fill(hlr_tensor_f32(x), N * T * 6, 9, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_set_lengths(m, lengths, N));
    expect_learns_without_allocating(m, o, x, lab, 30);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

Suite *suite_attention(void)
{
    Suite *s = suite_create("attention");
    TCase *t = tcase_create("torch");
    tcase_add_loop_test(t, test_multihead_attention_matches_torch, 0,
                        (int)(sizeof mha_ref_cases / sizeof mha_ref_cases[0]));
    tcase_add_loop_test(t, test_layernorm_matches_torch, 0, (int)(sizeof ln_ref_cases / sizeof ln_ref_cases[0]));
    suite_add_tcase(s, t);

    t = tcase_create("finite_differences");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_multihead_attention_matches_finite_differences, 0, 3);
    tcase_add_test(t, test_causal_attention_matches_finite_differences);
    tcase_add_test(t, test_key_padding_matches_finite_differences);
    tcase_add_test(t, test_attention_without_projection_or_bias_matches_finite_differences);
    tcase_add_test(t, test_attention_dropout_matches_finite_differences);
    tcase_add_test(t, test_layernorm_matches_finite_differences);
    tcase_add_test(t, test_attention_in_a_sequence_model_matches_finite_differences);
    suite_add_tcase(s, t);

    t = tcase_create("layers");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_attention_parameters_have_torch_names_shapes_and_init);
    tcase_add_test(t, test_attention_weights_are_masked_distributions);
    tcase_add_loop_test(t, test_key_padding_equals_running_each_sequence_alone, 0, 2);
    tcase_add_test(t, test_attention_dropout_only_in_training);
    tcase_add_test(t, test_attention_layers_configurations_round_trip);
    tcase_add_test(t, test_attention_rejects_bad_arguments_with_specific_messages);
    tcase_add_test(t, test_attention_training_loop_allocates_nothing);
    suite_add_tcase(s, t);
    return s;
}

/*
 * test_layers.c -- layer constructors, shape inference, parameter names and
 * initialisation, and the forward values of the simple layers.
 */
#include "testutil.h"

#include <stdlib.h>

START_TEST(test_constructors_reject_impossible_hyper_parameters)
{
    hlr_layer_free(hlr_relu()); /* a success leaves the last status alone... */
    ck_assert_ptr_null(hlr_dense(0, 3, 1));
    ck_assert_error_mentions("hlr_dense");
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL); /* ...a failure sets it */
    ck_assert_ptr_null(hlr_dense(3, -1, 1));
    ck_assert_ptr_null(hlr_dropout(1.0f));
    ck_assert_error_mentions("0 <= p < 1");
    ck_assert_ptr_null(hlr_dropout(-0.1f));
    ck_assert_ptr_null(hlr_dropout(NAN));
    ck_assert_ptr_null(hlr_leaky_relu(INFINITY));
    ck_assert_ptr_null(hlr_leaky_relu(NAN));
}
END_TEST

START_TEST(test_layer_free_of_null_and_unused_layers)
{
    hlr_layer_free(NULL);
    hlr_layer_free(hlr_dense(4, 4, 1));
    hlr_layer_free(hlr_dropout(0.5f));
    ck_assert_str_eq(hlr_layer_type(NULL), "");
    ck_assert_int_eq(hlr_layer_param_count(NULL), 0);
}
END_TEST

START_TEST(test_type_names)
{
    struct {
        hlr_layer *l;
        const char *type;
    } cases[] = {{hlr_dense(2, 2, 1), "dense"}, {hlr_relu(), "relu"},       {hlr_leaky_relu(0.1f), "leaky_relu"},
                 {hlr_sigmoid(), "sigmoid"},    {hlr_tanh(), "tanh"},       {hlr_gelu(), "gelu"},
                 {hlr_softmax(), "softmax"},    {hlr_dropout(0.1f), "dropout"}, {hlr_flatten(), "flatten"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_str_eq(hlr_layer_type(cases[i].l), cases[i].type);
        hlr_layer_free(cases[i].l);
    }
}
END_TEST

START_TEST(test_dense_parameters_are_named_and_shaped_like_torch)
{
    hlr_model *m = hlr_model_new(0);
    hlr_layer *d = hlr_dense(5, 3, 1);
    ck_assert_ok(hlr_model_add(m, d));
    ck_assert_ptr_null(hlr_layer_param(d, "weight"));
    ck_assert_error_mentions("built");
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){5}));
    ck_assert_int_eq(hlr_layer_param_count(d), 2);
    ck_assert_str_eq(hlr_layer_param_name(d, 0), "weight");
    ck_assert_str_eq(hlr_layer_param_name(d, 1), "bias");
    ck_assert_ptr_null(hlr_layer_param_name(d, 2));
    hlr_tensor *w = hlr_layer_param(d, "weight");
    ck_assert_int_eq(hlr_tensor_ndim(w), 2);
    ck_assert_int_eq(hlr_tensor_dim(w, 0), 3);
    ck_assert_int_eq(hlr_tensor_dim(w, 1), 5);
    ck_assert_int_eq(hlr_tensor_dim(hlr_layer_grad(d, "bias"), 0), 3);
    hlr_tensor_free(w); /* a borrowed view: freeing it does nothing */
    ck_assert_ptr_nonnull(hlr_tensor_f32(hlr_layer_param(d, "weight")));
    ck_assert_ptr_null(hlr_layer_param(d, "gamma"));
    ck_assert_error_mentions("\"gamma\"");
    ck_assert_ptr_null(hlr_layer_param(NULL, "weight"));
    ck_assert_ptr_null(hlr_layer_param(d, NULL));
    hlr_model_free(m);

    m = hlr_model_new(0);
    d = hlr_dense(5, 3, 0);
    ck_assert_ok(hlr_model_add(m, d));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){5}));
    ck_assert_int_eq(hlr_layer_param_count(d), 1);
    ck_assert_ptr_null(hlr_layer_param(d, "bias"));
    hlr_model_free(m);
}
END_TEST

/* torch.nn.Linear: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)). */
START_TEST(test_dense_initialisation_follows_torch)
{
    hlr_model *m = hlr_model_new(7);
    hlr_layer *d = hlr_dense(400, 300, 1);
    ck_assert_ok(hlr_model_add(m, d));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){400}));
    const float *w = hlr_tensor_f32(hlr_layer_param(d, "weight"));
    double bound = 1.0 / sqrt(400.0), sum = 0, sq = 0;
    for (int i = 0; i < 120000; i++) {
        ck_assert_msg(fabs(w[i]) <= bound, "weight[%d] = %g outside +-%g", i, w[i], bound);
        sum += w[i];
        sq += (double)w[i] * w[i];
    }
    double mean = sum / 120000, var = sq / 120000 - mean * mean;
    ck_assert_close(mean, 0.0, 0, 0.002);
    ck_assert_close(var, bound * bound / 3.0, 0.03, 0); /* variance of U(-b, b) */
    const float *b = hlr_tensor_f32(hlr_layer_param(d, "bias"));
    for (int i = 0; i < 300; i++)
        ck_assert_msg(fabs(b[i]) <= bound, "bias[%d] = %g outside +-%g", i, b[i], bound);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_same_seed_gives_same_initialisation)
{
    float first[60];
    for (int round = 0; round < 3; round++) {
        hlr_model *m = hlr_model_new(round < 2 ? 11 : 12);
        hlr_layer *d = hlr_dense(6, 10, 1);
        ck_assert_ok(hlr_model_add(m, d));
        ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){6}));
        const float *w = hlr_tensor_f32(hlr_layer_param(d, "weight"));
        if (round == 0)
            memcpy(first, w, sizeof first);
        else if (round == 1)
            ck_assert_mem_eq(first, w, sizeof first);
        else
            ck_assert_msg(memcmp(first, w, sizeof first) != 0, "seeds 11 and 12 gave the same weights");
        hlr_model_free(m);
    }
}
END_TEST

START_TEST(test_build_reports_mismatch_by_layer_index_and_type)
{
    hlr_model *m = hlr_model_new(0);
    ck_assert_ok(hlr_model_add(m, hlr_flatten()));
    ck_assert_ok(hlr_model_add(m, hlr_dense(784, 10, 1)));
    ck_assert_ok(hlr_model_add(m, hlr_relu()));
    ck_assert_ok(hlr_model_add(m, hlr_dense(20, 10, 1)));
    ck_assert_status(hlr_model_build(m, 3, (int64_t[]){1, 28, 28}), HLR_ESHAPE);
    ck_assert_error_mentions("dense (layer 3)");
    ck_assert_error_mentions("10 features");
    ck_assert_error_mentions("expects 20");
    /* A failed build leaves the model unbuilt and without parameters. */
    ck_assert_int_eq(hlr_model_param_count(m), 0);
    ck_assert_ptr_null(hlr_layer_param(hlr_model_layer(m, 1), "weight"));
    hlr_model_free(m);
}
END_TEST

/* Run a built one-layer model forward on x (n samples), returning y (owned). */
static float *forward_one(hlr_layer *l, int ndim, const int64_t *shape, int64_t n, const float *x, int training,
                          uint64_t seed)
{
    hlr_model *m = hlr_model_new(seed);
    ck_assert_ok(hlr_model_add(m, l));
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    int64_t xs[8] = {n}, ys[8] = {n};
    memcpy(xs + 1, shape, (size_t)ndim * sizeof *shape);
    int yd;
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys + 1));
    hlr_tensor *xt = hlr_tensor_from(HLR_F32, ndim + 1, xs, x);
    hlr_tensor *yt = hlr_tensor_new(HLR_F32, yd + 1, ys);
    ck_assert_ok(hlr_model_forward(m, xt, yt, training));
    int64_t ny = hlr_tensor_numel(yt);
    float *y = malloc((size_t)ny * sizeof *y);
    memcpy(y, hlr_tensor_f32(yt), (size_t)ny * sizeof *y);
    hlr_tensor_free(xt);
    hlr_tensor_free(yt);
    hlr_model_free(m);
    return y;
}

START_TEST(test_softmax_rows_sum_to_one_even_for_huge_logits)
{
    float x[] = {1000, 999, -1000, 0, 1, 2, -5, -5, -5};
    float *y = forward_one(hlr_softmax(), 1, (int64_t[]){3}, 3, x, 0, 0);
    for (int r = 0; r < 3; r++) {
        double s = y[3 * r] + y[3 * r + 1] + y[3 * r + 2];
        ck_assert_close(s, 1.0, 1e-6, 0);
    }
    ck_assert_close(y[0], 1.0 / (1.0 + exp(-1.0)), 1e-6, 0);
    ck_assert_close(y[6], 1.0 / 3.0, 1e-6, 0);
    free(y);
}
END_TEST

START_TEST(test_flatten_keeps_the_data_and_flattens_the_shape)
{
    float x[2 * 24];
    for (int i = 0; i < 48; i++)
        x[i] = (float)i;
    float *y = forward_one(hlr_flatten(), 3, (int64_t[]){2, 3, 4}, 2, x, 0, 0);
    ck_assert_mem_eq(x, y, sizeof x);
    free(y);
}
END_TEST

START_TEST(test_dropout_is_identity_in_inference)
{
    float x[100];
    test_fill(x, 100, 3, -1, 1);
    float *y = forward_one(hlr_dropout(0.5f), 1, (int64_t[]){50}, 2, x, 0, 0);
    ck_assert_mem_eq(x, y, sizeof x);
    free(y);
}
END_TEST

START_TEST(test_dropout_drops_p_and_scales_the_rest_in_training)
{
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    float *y = forward_one(hlr_dropout(0.25f), 1, (int64_t[]){N}, 1, x, 1, 42);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        if (y[i] == 0.0f)
            zeros++;
        else
            ck_assert_msg(y[i] == 1.0f / 0.75f, "kept element %d is %g, expected %g", i, y[i], 1.0 / 0.75);
    }
    ck_assert_close(zeros / (double)N, 0.25, 0, 0.015);
    /* The same seed draws the same mask. */
    float *y2 = forward_one(hlr_dropout(0.25f), 1, (int64_t[]){N}, 1, x, 1, 42);
    ck_assert_mem_eq(y, y2, N * sizeof *y);
    free(x);
    free(y);
    free(y2);
}
END_TEST

Suite *suite_layers(void);
Suite *suite_layers(void)
{
    Suite *s = suite_create("layers");
    TCase *t = tcase_create("layers");
    tcase_add_test(t, test_constructors_reject_impossible_hyper_parameters);
    tcase_add_test(t, test_layer_free_of_null_and_unused_layers);
    tcase_add_test(t, test_type_names);
    tcase_add_test(t, test_dense_parameters_are_named_and_shaped_like_torch);
    tcase_add_test(t, test_dense_initialisation_follows_torch);
    tcase_add_test(t, test_same_seed_gives_same_initialisation);
    tcase_add_test(t, test_build_reports_mismatch_by_layer_index_and_type);
    tcase_add_test(t, test_softmax_rows_sum_to_one_even_for_huge_logits);
    tcase_add_test(t, test_flatten_keeps_the_data_and_flattens_the_shape);
    tcase_add_test(t, test_dropout_is_identity_in_inference);
    tcase_add_test(t, test_dropout_drops_p_and_scales_the_rest_in_training);
    suite_add_tcase(s, t);
    return s;
}

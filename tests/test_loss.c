/*
 * test_loss.c -- hlr_cross_entropy() and hlr_mse(): failure paths (NULL,
 * wrong dtype, labels out of range, shapes that disagree, smoothing outside
 * [0, 1)) and properties that hold without a reference: stability for huge
 * logits, log(C) for uniform logits, gradient rows summing to zero.
 * Agreement with torch's values is in test_torch.c.
 */
#include "testutil.h"

#include <float.h>
#include <stdint.h>

Suite *suite_loss(void);

/* ---- small tensor helpers ---- */

static hlr_tensor *f32_2d(int64_t rows, int64_t cols, const float *data)
{
    hlr_tensor *t = data ? hlr_tensor_from(HLR_F32, 2, (int64_t[]){rows, cols}, data)
                         : hlr_tensor_new(HLR_F32, 2, (int64_t[]){rows, cols});
    ck_assert_msg(t != NULL, "tensor (%lld, %lld): %s", (long long)rows, (long long)cols, hlr_last_error());
    return t;
}

static hlr_tensor *labels_of(int64_t n, const int32_t *labels)
{
    hlr_tensor *t = hlr_tensor_from(HLR_I32, 1, (int64_t[]){n}, labels);
    ck_assert_msg(t != NULL, "labels (%lld): %s", (long long)n, hlr_last_error());
    return t;
}

/* Every row of grad (rows, cols) sums to zero: softmax and the target both sum to one. */
static void expect_rows_sum_to_zero(const hlr_tensor *grad, int64_t rows, int64_t cols)
{
    const float *g = hlr_tensor_f32(grad);
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0.0, mag = 0.0;
        for (int64_t c = 0; c < cols; c++) {
            ck_assert_msg(isfinite(g[r * cols + c]), "grad[%lld][%lld] = %g", (long long)r, (long long)c,
                          (double)g[r * cols + c]);
            sum += g[r * cols + c];
            mag += fabs(g[r * cols + c]);
        }
        ck_assert_msg(fabs(sum) <= 1e-6 * (1.0 + mag), "grad row %lld sums to %.9g, expected 0", (long long)r, sum);
    }
}

/* ---- cross-entropy: failure paths ---- */

START_TEST(test_cross_entropy_rejects_null)
{
    float x[6] = {0}, loss = 0.0f;
    hlr_tensor *logits = f32_2d(2, 3, x);
    hlr_tensor *labels = labels_of(2, (int32_t[]){0, 2});
    ck_assert_status(hlr_cross_entropy(NULL, labels, 0.0f, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("logits");
    ck_assert_status(hlr_cross_entropy(logits, NULL, 0.0f, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("labels");
    ck_assert_status(hlr_cross_entropy(logits, labels, 0.0f, NULL, NULL), HLR_EINVAL);
    ck_assert_error_mentions("loss");
    /* grad NULL is allowed. */
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.0f, &loss, NULL));
    ck_assert_close(loss, log(3.0), 1e-6, 0.0);
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
}
END_TEST

START_TEST(test_cross_entropy_rejects_wrong_dtypes)
{
    float x[6] = {0}, loss = 0.0f;
    hlr_tensor *logits = f32_2d(2, 3, x);
    hlr_tensor *labels = labels_of(2, (int32_t[]){0, 2});
    hlr_tensor *int_logits = hlr_tensor_new(HLR_I32, 2, (int64_t[]){2, 3});
    hlr_tensor *float_labels = hlr_tensor_new(HLR_F32, 1, (int64_t[]){2});
    hlr_tensor *int_grad = hlr_tensor_new(HLR_I32, 2, (int64_t[]){2, 3});
    ck_assert(int_logits && float_labels && int_grad);
    ck_assert_status(hlr_cross_entropy(int_logits, labels, 0.0f, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("logits");
    ck_assert_status(hlr_cross_entropy(logits, float_labels, 0.0f, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("labels");
    ck_assert_status(hlr_cross_entropy(logits, labels, 0.0f, &loss, int_grad), HLR_EINVAL);
    ck_assert_error_mentions("grad");
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
    hlr_tensor_free(int_logits);
    hlr_tensor_free(float_labels);
    hlr_tensor_free(int_grad);
}
END_TEST

/* _i: the bad label, -1 or C (= 3), placed in the last row. */
START_TEST(test_cross_entropy_rejects_label_out_of_range)
{
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, loss = 123.0f;
    int32_t lab[3] = {0, 1, _i == 0 ? -1 : 3};
    hlr_tensor *logits = f32_2d(3, 3, x);
    hlr_tensor *labels = labels_of(3, lab);
    hlr_tensor *grad = f32_2d(3, 3, NULL);
    ck_assert_status(hlr_cross_entropy(logits, labels, 0.0f, &loss, grad), HLR_EINVAL);
    ck_assert_error_mentions("label");
    ck_assert_error_mentions(_i == 0 ? "-1" : "3");
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
    hlr_tensor_free(grad);
}
END_TEST

START_TEST(test_cross_entropy_rejects_disagreeing_shapes)
{
    float x[12] = {0}, loss = 0.0f;
    hlr_tensor *logits = f32_2d(3, 4, x);
    hlr_tensor *labels3 = labels_of(3, (int32_t[]){0, 1, 2});
    hlr_tensor *labels2 = labels_of(2, (int32_t[]){0, 1});
    hlr_tensor *flat = hlr_tensor_from(HLR_F32, 1, (int64_t[]){12}, x);
    hlr_tensor *cube = hlr_tensor_from(HLR_F32, 3, (int64_t[]){3, 2, 2}, x);
    hlr_tensor *labels_2d = hlr_tensor_from(HLR_I32, 2, (int64_t[]){3, 1}, (int32_t[]){0, 1, 2});
    hlr_tensor *grad_t = f32_2d(4, 3, NULL); /* transposed */
    hlr_tensor *grad_small = f32_2d(3, 3, NULL);
    ck_assert(flat && cube && labels_2d);
    ck_assert_status(hlr_cross_entropy(logits, labels2, 0.0f, &loss, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_cross_entropy(flat, labels3, 0.0f, &loss, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_cross_entropy(cube, labels3, 0.0f, &loss, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_cross_entropy(logits, labels_2d, 0.0f, &loss, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_cross_entropy(logits, labels3, 0.0f, &loss, grad_t), HLR_ESHAPE);
    ck_assert_error_mentions("grad");
    ck_assert_status(hlr_cross_entropy(logits, labels3, 0.0f, &loss, grad_small), HLR_ESHAPE);
    hlr_tensor_free(logits);
    hlr_tensor_free(labels3);
    hlr_tensor_free(labels2);
    hlr_tensor_free(flat);
    hlr_tensor_free(cube);
    hlr_tensor_free(labels_2d);
    hlr_tensor_free(grad_t);
    hlr_tensor_free(grad_small);
}
END_TEST

START_TEST(test_cross_entropy_rejects_smoothing_outside_0_1)
{
    float x[6] = {0}, loss = 0.0f;
    hlr_tensor *logits = f32_2d(2, 3, x);
    hlr_tensor *labels = labels_of(2, (int32_t[]){0, 2});
    const float bad[] = {-0.1f, -0.0001f, 1.0f, 1.5f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hlr_status st = hlr_cross_entropy(logits, labels, bad[i], &loss, NULL);
        ck_assert_msg(st == HLR_EINVAL, "label smoothing %g gave %d, expected HLR_EINVAL", (double)bad[i], (int)st);
        ck_assert_error_mentions("smoothing");
    }
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.0f, &loss, NULL));
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.999f, &loss, NULL));
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
}
END_TEST

/* ---- cross-entropy: properties ---- */

/* Uniform logits give probability 1/C everywhere: loss log(C), with or without smoothing. */
START_TEST(test_cross_entropy_of_uniform_logits_is_log_c)
{
    enum { N = 4, C = 10 };
    const float level[] = {0.0f, 5.0f, -300.0f, 1e4f};
    hlr_tensor *labels = labels_of(N, (int32_t[]){0, 9, 3, 3});
    hlr_tensor *grad = f32_2d(N, C, NULL);
    for (size_t k = 0; k < sizeof level / sizeof level[0]; k++) {
        float x[N * C];
        for (int i = 0; i < N * C; i++)
            x[i] = level[k];
        hlr_tensor *logits = f32_2d(N, C, x);
        for (int s = 0; s < 2; s++) {
            float smoothing = s ? 0.2f : 0.0f, loss = -1.0f;
            ck_assert_ok(hlr_cross_entropy(logits, labels, smoothing, &loss, grad));
            ck_assert_msg(fabs(loss - log((double)C)) <= 1e-6 * log((double)C),
                          "uniform logits %g, smoothing %g: loss %.9g, expected log(10) = %.9g", (double)level[k],
                          (double)smoothing, (double)loss, log((double)C));
            /* dL/dx = (1/C - target) / N: the label's entry is (1/C - (1-s) - s/C) / N. */
            const float *g = hlr_tensor_f32(grad);
            double want_label = (1.0 / C - (1.0 - smoothing) - smoothing / C) / N;
            ck_assert_close(g[1 * C + 9], want_label, 1e-5, 1e-7);
            ck_assert_close(g[1 * C + 0], (1.0 / C - smoothing / C) / N, 1e-5, 1e-7);
            expect_rows_sum_to_zero(grad, N, C);
        }
        hlr_tensor_free(logits);
    }
    hlr_tensor_free(labels);
    hlr_tensor_free(grad);
}
END_TEST

/*
 * Logits of +-1e4 (exp would overflow float and double): finite loss and
 * gradient.  Row 0: label on the max, loss 0.  Row 1: label on -1e4 with
 * the max at 1e4, loss 2e4.  Row 2: two maxima, label on one, loss log 2.
 */
START_TEST(test_cross_entropy_is_stable_for_huge_logits)
{
    const float x[3 * 4] = {
        1e4f, -1e4f, 0.0f, -1e4f, /* label 0 */
        1e4f, -1e4f, 0.0f, 5e3f,  /* label 1 */
        1e4f, -1e4f, 1e4f, -1e4f, /* label 2 */
    };
    hlr_tensor *logits = f32_2d(3, 4, x);
    hlr_tensor *labels = labels_of(3, (int32_t[]){0, 1, 2});
    hlr_tensor *grad = f32_2d(3, 4, NULL);
    float loss = -1.0f;
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.0f, &loss, grad));
    double want = (0.0 + 2e4 + log(2.0)) / 3.0;
    ck_assert_msg(isfinite(loss), "loss %g for logits of +-1e4", (double)loss);
    ck_assert_close(loss, want, 1e-6, 0.0);
    const float *g = hlr_tensor_f32(grad);
    ck_assert_close(g[0], 0.0, 0.0, 1e-7);               /* p = 1, target 1 */
    ck_assert_close(g[4 + 0], 1.0 / 3.0, 1e-6, 0.0);     /* p = 1, target 0 */
    ck_assert_close(g[4 + 1], -1.0 / 3.0, 1e-6, 0.0);    /* p = 0, target 1 */
    ck_assert_close(g[8 + 2], (0.5 - 1.0) / 3.0, 1e-6, 0.0);
    ck_assert_close(g[8 + 0], 0.5 / 3.0, 1e-6, 0.0);
    expect_rows_sum_to_zero(grad, 3, 4);
    /* With smoothing the loss grows by the spread but stays finite. */
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.1f, &loss, grad));
    ck_assert_msg(isfinite(loss) && loss > want, "smoothed loss %g for logits of +-1e4", (double)loss);
    expect_rows_sum_to_zero(grad, 3, 4);
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
    hlr_tensor_free(grad);
}
END_TEST

/* Even +-FLT_MAX, whose difference overflows float, is fine when the label is on the max. */
START_TEST(test_cross_entropy_handles_flt_max_logits)
{
    const float x[3] = {FLT_MAX, -FLT_MAX, 0.0f};
    hlr_tensor *logits = f32_2d(1, 3, x);
    hlr_tensor *labels = labels_of(1, (int32_t[]){0});
    hlr_tensor *grad = f32_2d(1, 3, NULL);
    float loss = -1.0f;
    ck_assert_ok(hlr_cross_entropy(logits, labels, 0.0f, &loss, grad));
    ck_assert_close(loss, 0.0, 0.0, 1e-7);
    expect_rows_sum_to_zero(grad, 1, 3);
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
    hlr_tensor_free(grad);
}
END_TEST

/*
 * Finite logits further apart than FLT_MAX (3e38 and -3e38): their difference
 * is taken in double.  In float it was -inf, and a smoothed target's share of
 * it made the loss inf where the exact value, 0.05 * 6e38, is a float.  On
 * the low logit's label the exact loss, 6e38, exceeds FLT_MAX: +inf, as
 * documented, but the gradient stays finite and exact.
 */
START_TEST(test_cross_entropy_is_finite_for_logits_further_apart_than_flt_max)
{
    const float x[2] = {3e38f, -3e38f};
    hlr_tensor *logits = f32_2d(1, 2, x);
    hlr_tensor *grad = f32_2d(1, 2, NULL);
    hlr_tensor *label0 = labels_of(1, (int32_t[]){0}), *label1 = labels_of(1, (int32_t[]){1});
    float loss = -1.0f;
    ck_assert_ok(hlr_cross_entropy(logits, label0, 0.1f, &loss, grad));
    ck_assert_msg(isfinite(loss), "smoothed loss %g for logits 3e38, -3e38", (double)loss);
    ck_assert_close(loss, 0.05 * 6e38, 1e-6, 0.0);
    const float *g = hlr_tensor_f32(grad);
    ck_assert_close(g[0], 1.0 - 0.95, 1e-6, 0.0); /* p - target: 1 - 0.95, 0 - 0.05 */
    ck_assert_close(g[1], -0.05, 1e-6, 0.0);
    ck_assert_ok(hlr_cross_entropy(logits, label0, 0.0f, &loss, grad));
    ck_assert_close(loss, 0.0, 0.0, 0.0);
    ck_assert_ok(hlr_cross_entropy(logits, label1, 0.0f, &loss, grad));
    ck_assert_msg(isinf(loss) && loss > 0, "loss %g, expected +inf (6e38 is no float)", (double)loss);
    ck_assert_close(g[0], 1.0, 0.0, 0.0);
    ck_assert_close(g[1], -1.0, 0.0, 0.0);
    hlr_tensor_free(logits);
    hlr_tensor_free(grad);
    hlr_tensor_free(label0);
    hlr_tensor_free(label1);
}
END_TEST

/* _i: 0 no smoothing, 1 smoothing 0.3. */
START_TEST(test_cross_entropy_gradient_rows_sum_to_zero)
{
    enum { N = 8, C = 13 };
    float x[N * C];
    test_fill(x, N * C, 11, -6.0f, 6.0f);
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = (i * 5) % C;
    hlr_tensor *logits = f32_2d(N, C, x);
    hlr_tensor *labels = labels_of(N, lab);
    hlr_tensor *grad = f32_2d(N, C, NULL);
    float loss = -1.0f;
    ck_assert_ok(hlr_cross_entropy(logits, labels, _i ? 0.3f : 0.0f, &loss, grad));
    ck_assert_msg(isfinite(loss) && loss > 0.0f, "loss %g", (double)loss);
    expect_rows_sum_to_zero(grad, N, C);
    /* Without smoothing only the label's entry is negative: softmax - onehot. */
    if (_i == 0) {
        const float *g = hlr_tensor_f32(grad);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < C; c++)
                ck_assert_msg(c == lab[r] ? g[r * C + c] < 0.0f : g[r * C + c] >= 0.0f,
                              "grad[%d][%d] = %g has the wrong sign (label %d)", r, c, (double)g[r * C + c], lab[r]);
    }
    hlr_tensor_free(logits);
    hlr_tensor_free(labels);
    hlr_tensor_free(grad);
}
END_TEST

/* ---- MSE ---- */

START_TEST(test_mse_rejects_null_dtype_and_shape)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, loss = 0.0f;
    hlr_tensor *p = f32_2d(2, 3, a), *t = f32_2d(2, 3, a);
    hlr_tensor *t_transposed = f32_2d(3, 2, a), *g_wrong = f32_2d(1, 6, NULL);
    hlr_tensor *ints = hlr_tensor_new(HLR_I32, 2, (int64_t[]){2, 3});
    ck_assert_ptr_nonnull(ints);
    ck_assert_status(hlr_mse(NULL, t, &loss, NULL), HLR_EINVAL);
    ck_assert_status(hlr_mse(p, NULL, &loss, NULL), HLR_EINVAL);
    ck_assert_status(hlr_mse(p, t, NULL, NULL), HLR_EINVAL);
    ck_assert_error_mentions("loss");
    ck_assert_status(hlr_mse(ints, t, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("pred");
    ck_assert_status(hlr_mse(p, ints, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("target");
    ck_assert_status(hlr_mse(p, t, &loss, ints), HLR_EINVAL);
    ck_assert_error_mentions("grad");
    /* Same element count, other shape: still a mismatch. */
    ck_assert_status(hlr_mse(p, t_transposed, &loss, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_mse(p, t, &loss, g_wrong), HLR_ESHAPE);
    hlr_tensor_free(p);
    hlr_tensor_free(t);
    hlr_tensor_free(t_transposed);
    hlr_tensor_free(g_wrong);
    hlr_tensor_free(ints);
}
END_TEST

START_TEST(test_mse_value_and_gradient)
{
    const float pred[4] = {1.0f, -2.0f, 0.5f, 3.0f}, target[4] = {1.0f, 0.0f, 1.5f, -1.0f};
    hlr_tensor *p = f32_2d(2, 2, pred), *t = f32_2d(2, 2, target), *g = f32_2d(2, 2, NULL);
    float loss = -1.0f;
    ck_assert_ok(hlr_mse(p, t, &loss, g));
    ck_assert_close(loss, (0.0 + 4.0 + 1.0 + 16.0) / 4.0, 1e-7, 0.0);
    const double want[4] = {0.0, -1.0, -0.5, 2.0}; /* 2 (p - t) / 4 */
    for (int i = 0; i < 4; i++)
        ck_assert_close(hlr_tensor_f32(g)[i], want[i], 1e-7, 0.0);
    /* Equal tensors: zero loss; grad NULL is allowed. */
    ck_assert_ok(hlr_mse(p, p, &loss, NULL));
    ck_assert_float_eq(loss, 0.0f);
    hlr_tensor_free(p);
    hlr_tensor_free(t);
    hlr_tensor_free(g);
}
END_TEST

Suite *suite_loss(void)
{
    Suite *s = suite_create("loss");

    TCase *tc = tcase_create("cross_entropy_errors");
    tcase_add_test(tc, test_cross_entropy_rejects_null);
    tcase_add_test(tc, test_cross_entropy_rejects_wrong_dtypes);
    tcase_add_loop_test(tc, test_cross_entropy_rejects_label_out_of_range, 0, 2);
    tcase_add_test(tc, test_cross_entropy_rejects_disagreeing_shapes);
    tcase_add_test(tc, test_cross_entropy_rejects_smoothing_outside_0_1);
    suite_add_tcase(s, tc);

    tc = tcase_create("cross_entropy_properties");
    tcase_add_test(tc, test_cross_entropy_of_uniform_logits_is_log_c);
    tcase_add_test(tc, test_cross_entropy_is_stable_for_huge_logits);
    tcase_add_test(tc, test_cross_entropy_handles_flt_max_logits);
    tcase_add_test(tc, test_cross_entropy_is_finite_for_logits_further_apart_than_flt_max);
    tcase_add_loop_test(tc, test_cross_entropy_gradient_rows_sum_to_zero, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("mse");
    tcase_add_test(tc, test_mse_rejects_null_dtype_and_shape);
    tcase_add_test(tc, test_mse_value_and_gradient);
    suite_add_tcase(s, tc);
    return s;
}

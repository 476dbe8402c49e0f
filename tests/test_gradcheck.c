/*
 * test_gradcheck.c -- every layer's backward pass against central finite
 * differences, for its input and for each of its parameters.
 *
 * The scalar checked is L = sum(y * r) for a fixed random r, so dL/dy = r.
 * Inputs avoid the kinks of ReLU-like layers (|x| >= 0.1 > eps), and sizes
 * are odd and unequal so that a swapped index shows.
 */
#include "testutil.h"

#include <stdlib.h>

#define EPS 1e-2
#define RTOL 2e-2
#define ATOL 2e-3

typedef struct gc {
    hlr_model *m;
    hlr_tensor *x, *y, *r, *dx;
    int64_t nx, ny;
} gc;

/* L for the current x, computed in double. */
static double loss_of(gc *g)
{
    ck_assert_ok(hlr_model_forward(g->m, g->x, g->y, 1));
    const float *y = hlr_tensor_f32(g->y), *r = hlr_tensor_f32(g->r);
    double l = 0;
    for (int64_t i = 0; i < g->ny; i++)
        l += (double)y[i] * r[i];
    return l;
}

static double numeric(gc *g, float *v)
{
    float keep = *v;
    *v = keep + (float)EPS;
    double lp = loss_of(g);
    *v = keep - (float)EPS;
    double lm = loss_of(g);
    *v = keep;
    return (lp - lm) / (2 * EPS);
}

static void compare(const char *what, int64_t i, double analytic, double num)
{
    double scale = fabs(analytic) > fabs(num) ? fabs(analytic) : fabs(num);
    ck_assert_msg(fabs(analytic - num) <= ATOL + RTOL * scale,
                  "%s[%lld]: backward gives %.6g, finite differences %.6g", what, (long long)i, analytic, num);
}

/*
 * Build m for one sample of `shape`, batch n; fill the input with values
 * whose magnitude is in [0.1, 1] (sign random), then check d/dx and every
 * parameter of every layer.
 */
static void gradcheck(hlr_model *m, int ndim, const int64_t *shape, int64_t n, unsigned long long seed)
{
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    gc g = {.m = m};
    int64_t xs[HLR_MAX_DIMS + 1] = {n}, ys[HLR_MAX_DIMS + 1] = {n};
    memcpy(xs + 1, shape, (size_t)ndim * sizeof *shape);
    int yd;
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys + 1));
    g.x = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    g.dx = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    g.y = hlr_tensor_new(HLR_F32, yd + 1, ys);
    g.r = hlr_tensor_new(HLR_F32, yd + 1, ys);
    ck_assert_ptr_nonnull(g.x);
    ck_assert_ptr_nonnull(g.y);
    g.nx = hlr_tensor_numel(g.x);
    g.ny = hlr_tensor_numel(g.y);
    float *x = hlr_tensor_f32(g.x);
    test_fill(x, (long)g.nx, seed, 0.1f, 1.0f);
    unsigned long long s = seed * 7 + 1;
    for (int64_t i = 0; i < g.nx; i++)
        if (test_rand(&s) < 0.5f)
            x[i] = -x[i];
    test_fill(hlr_tensor_f32(g.r), (long)g.ny, seed + 99, -1.0f, 1.0f);

    /* Analytic gradients, kept before the finite differences disturb the buffers. */
    ck_assert_ok(hlr_model_forward(m, g.x, g.y, 1));
    ck_assert_ok(hlr_model_backward(m, g.r, g.dx));
    float *dx = malloc((size_t)g.nx * sizeof *dx);
    memcpy(dx, hlr_tensor_f32(g.dx), (size_t)g.nx * sizeof *dx);
    int nl = hlr_model_num_layers(m);
    float *saved[16][HLR_MAX_DIMS] = {{0}};
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            hlr_tensor *gt = hlr_layer_grad(l, hlr_layer_param_name(l, p));
            saved[li][p] = malloc((size_t)hlr_tensor_numel(gt) * sizeof(float));
            memcpy(saved[li][p], hlr_tensor_f32(gt), (size_t)hlr_tensor_numel(gt) * sizeof(float));
        }
    }

    /* At most ~60 positions per tensor, spread over it, the ends included. */
    int64_t step = g.nx / 60 + 1;
    for (int64_t i = 0; i < g.nx; i += step)
        compare("dx", i, dx[i], numeric(&g, &x[i]));
    compare("dx", g.nx - 1, dx[g.nx - 1], numeric(&g, &x[g.nx - 1]));
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            const char *name = hlr_layer_param_name(l, p);
            hlr_tensor *pt = hlr_layer_param(l, name);
            float *pv = hlr_tensor_f32(pt);
            int64_t np = hlr_tensor_numel(pt), ps = np / 60 + 1;
            char what[96];
            snprintf(what, sizeof what, "layer %d (%s) d%s", li, hlr_layer_type(l), name);
            for (int64_t i = 0; i < np; i += ps)
                compare(what, i, saved[li][p][i], numeric(&g, &pv[i]));
            compare(what, np - 1, saved[li][p][np - 1], numeric(&g, &pv[np - 1]));
            free(saved[li][p]);
        }
    }
    free(dx);
    hlr_tensor_free(g.x);
    hlr_tensor_free(g.dx);
    hlr_tensor_free(g.y);
    hlr_tensor_free(g.r);
    hlr_model_free(m);
}

static hlr_model *model_of(hlr_layer *a, hlr_layer *b)
{
    hlr_model *m = hlr_model_new(1234);
    ck_assert_ok(hlr_model_add(m, a));
    if (b)
        ck_assert_ok(hlr_model_add(m, b));
    return m;
}

START_TEST(test_dense_backward_matches_finite_differences)
{
    gradcheck(model_of(hlr_dense(37, 23, 1), NULL), 1, (int64_t[]){37}, 5, 1);
}
END_TEST

START_TEST(test_dense_without_bias_matches_finite_differences)
{
    gradcheck(model_of(hlr_dense(13, 7, 0), NULL), 1, (int64_t[]){13}, 3, 2);
}
END_TEST

START_TEST(test_dense_on_rows_of_a_3d_input_matches_finite_differences)
{
    /* (N, 3, 11) -> (N, 3, 6): the layer applies to each of the 3 rows. */
    gradcheck(model_of(hlr_dense(11, 6, 1), NULL), 2, (int64_t[]){3, 11}, 4, 3);
}
END_TEST

START_TEST(test_dense_batch_of_one_matches_finite_differences)
{
    gradcheck(model_of(hlr_dense(9, 5, 1), NULL), 1, (int64_t[]){9}, 1, 4);
}
END_TEST

/* Activations sit after a dense layer so that their input gradient is
 * also checked through the dense parameters. */
static void check_activation(hlr_layer *act, unsigned long long seed)
{
    gradcheck(model_of(hlr_dense(8, 17, 1), act), 1, (int64_t[]){8}, 4, seed);
}

START_TEST(test_relu_backward_matches_finite_differences)
{
    gradcheck(model_of(hlr_relu(), NULL), 2, (int64_t[]){3, 7}, 3, 5);
}
END_TEST

START_TEST(test_leaky_relu_backward_matches_finite_differences)
{
    gradcheck(model_of(hlr_leaky_relu(0.2f), NULL), 2, (int64_t[]){3, 7}, 3, 6);
}
END_TEST

START_TEST(test_sigmoid_backward_matches_finite_differences) { check_activation(hlr_sigmoid(), 7); }
END_TEST

START_TEST(test_tanh_backward_matches_finite_differences) { check_activation(hlr_tanh(), 8); }
END_TEST

START_TEST(test_gelu_backward_matches_finite_differences) { check_activation(hlr_gelu(), 9); }
END_TEST

START_TEST(test_softmax_backward_matches_finite_differences)
{
    /* (N, 4, 9): softmax over each row of 9. */
    gradcheck(model_of(hlr_softmax(), NULL), 2, (int64_t[]){4, 9}, 3, 10);
}
END_TEST

START_TEST(test_flatten_then_dense_matches_finite_differences)
{
    gradcheck(model_of(hlr_flatten(), hlr_dense(24, 5, 1)), 3, (int64_t[]){2, 3, 4}, 3, 11);
}
END_TEST

START_TEST(test_whole_mlp_matches_finite_differences)
{
    hlr_model *m = hlr_model_new(99);
    hlr_layer *ls[] = {hlr_flatten(), hlr_dense(12, 10, 1), hlr_gelu(),  hlr_dense(10, 9, 1),
                       hlr_tanh(),    hlr_dense(9, 8, 0),   hlr_sigmoid(), hlr_dense(8, 5, 1),
                       hlr_softmax()};
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        ck_assert_ok(hlr_model_add(m, ls[i]));
    gradcheck(m, 2, (int64_t[]){3, 4}, 4, 12);
}
END_TEST

/* Dropout draws a new mask every forward, so finite differences do not
 * apply; its backward must multiply by exactly the mask the forward used. */
START_TEST(test_dropout_backward_uses_the_forward_mask)
{
    hlr_model *m = hlr_model_new(5);
    ck_assert_ok(hlr_model_add(m, hlr_dropout(0.3f)));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){50}));
    int64_t shape[] = {4, 50};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 2, shape), *y = hlr_tensor_new(HLR_F32, 2, shape);
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 2, shape), *dx = hlr_tensor_new(HLR_F32, 2, shape);
    test_fill(hlr_tensor_f32(x), 200, 1, 0.5f, 1.5f);
    test_fill(hlr_tensor_f32(dy), 200, 2, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    const float *xv = hlr_tensor_f32(x), *yv = hlr_tensor_f32(y), *dyv = hlr_tensor_f32(dy), *dxv = hlr_tensor_f32(dx);
    for (int i = 0; i < 200; i++) {
        float scale = yv[i] / xv[i]; /* 0 or 1/(1-p) */
        ck_assert_close(dxv[i], dyv[i] * scale, 1e-6, 1e-7);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dx);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* In inference dropout is the identity, so the usual check applies there
 * for p = 0 in training too. */
START_TEST(test_dropout_with_p_zero_matches_finite_differences)
{
    gradcheck(model_of(hlr_dense(6, 5, 1), hlr_dropout(0.0f)), 1, (int64_t[]){6}, 3, 13);
}
END_TEST

Suite *suite_gradcheck(void);
Suite *suite_gradcheck(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *t = tcase_create("finite_differences");
    tcase_add_test(t, test_dense_backward_matches_finite_differences);
    tcase_add_test(t, test_dense_without_bias_matches_finite_differences);
    tcase_add_test(t, test_dense_on_rows_of_a_3d_input_matches_finite_differences);
    tcase_add_test(t, test_dense_batch_of_one_matches_finite_differences);
    tcase_add_test(t, test_relu_backward_matches_finite_differences);
    tcase_add_test(t, test_leaky_relu_backward_matches_finite_differences);
    tcase_add_test(t, test_sigmoid_backward_matches_finite_differences);
    tcase_add_test(t, test_tanh_backward_matches_finite_differences);
    tcase_add_test(t, test_gelu_backward_matches_finite_differences);
    tcase_add_test(t, test_softmax_backward_matches_finite_differences);
    tcase_add_test(t, test_flatten_then_dense_matches_finite_differences);
    tcase_add_test(t, test_whole_mlp_matches_finite_differences);
    tcase_add_test(t, test_dropout_backward_uses_the_forward_mask);
    tcase_add_test(t, test_dropout_with_p_zero_matches_finite_differences);
    suite_add_tcase(s, t);
    return s;
}

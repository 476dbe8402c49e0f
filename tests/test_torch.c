/*
 * test_torch.c -- libhlr against PyTorch: optimizers (SGD, momentum,
 * Nesterov, weight decay, Adam, AdamW, gradient clipping), learning-rate
 * schedules, cross-entropy and MSE, the activations and nn.Linear.
 *
 * The reference values live in fixtures/torch_ref.h, written once by
 * fixtures/gen_torch_ref.py (torch is not needed to run these tests).
 *
 * Tolerance: libhlr computes in float32, so a value agrees when
 * |got - want| <= RTOL * |want| + ATOL with RTOL = 1e-5 (about 100 float32
 * ulps) and a small ATOL for values near zero, where a relative bound means
 * nothing (e.g. sigmoid(-100) = 3.7e-44, which float32 rounds to 0).
 */
#include "testutil.h"

#include "fixtures/torch_ref.h"

#include <stdint.h>

#define RTOL 1e-5
#define ATOL 1e-6 /* values of order one: parameters, gradients, losses */
#define LR_RTOL 1e-6 /* learning rates: computed in double, returned as float */

Suite *suite_torch(void);

/* ---- comparison helpers: fail naming what, where, and both numbers ---- */

static void expect_close_f32(const char *what, int step, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        ck_assert_msg(fabs(g - w) <= ATOL + RTOL * fabs(w), "%s (step %d) [%d]: libhlr %.9g, torch %.9g (diff %.3g)",
                      what, step, i, g, w, g - w);
    }
}

static void expect_close_f64(const char *what, const float *got, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        ck_assert_msg(fabs(g - w) <= ATOL + RTOL * fabs(w), "%s [%d]: libhlr %.9g, torch %.9g (diff %.3g)", what, i,
                      g, w, g - w);
    }
}

/* ---- a dense(4, 3) model with given parameters ---- */

static float *param_data(hlr_model *m, const char *name)
{
    float *p = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), name));
    ck_assert_msg(p != NULL, "parameter %s: %s", name, hlr_last_error());
    return p;
}

static float *grad_data(hlr_model *m, const char *name)
{
    float *g = hlr_tensor_f32(hlr_layer_grad(hlr_model_layer(m, 0), name));
    ck_assert_msg(g != NULL, "gradient %s: %s", name, hlr_last_error());
    return g;
}

/* weight (3, 4) and bias (3) copied in. */
static hlr_model *dense_model(const float *w, const float *b)
{
    hlr_model *m = hlr_model_new(7);
    ck_assert_ptr_nonnull(m);
    ck_assert_ok(hlr_model_add(m, hlr_dense(4, 3, 1)));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    memcpy(param_data(m, "weight"), w, 12 * sizeof(float));
    memcpy(param_data(m, "bias"), b, 3 * sizeof(float));
    return m;
}

/* ---- optimizers ---- */

static const torch_opt_case *find_case(const char *name)
{
    for (size_t i = 0; i < sizeof torch_opt_cases / sizeof torch_opt_cases[0]; i++)
        if (strcmp(torch_opt_cases[i].name, name) == 0)
            return &torch_opt_cases[i];
    return NULL;
}

static hlr_optimizer *make_optimizer(const torch_opt_case *c)
{
    switch (c->kind) {
    case 0: return hlr_sgd(c->lr, c->momentum, c->nesterov, c->weight_decay);
    case 1: return hlr_adam(c->lr, c->beta1, c->beta2, c->eps, c->weight_decay);
    default: return hlr_adamw(c->lr, c->beta1, c->beta2, c->eps, c->weight_decay);
    }
}

/*
 * Give the optimizer the stored gradient sequence for TORCH_OPT_STEPS steps;
 * after each, the gradients (clipped when the case clips) and the parameters
 * must match torch's.
 */
static void run_optimizer_case(const char *name)
{
    const torch_opt_case *c = find_case(name);
    ck_assert_msg(c != NULL, "no fixture case %s", name);
    hlr_model *m = dense_model(torch_opt_w0, torch_opt_b0);
    hlr_optimizer *o = make_optimizer(c);
    ck_assert_msg(o != NULL, "%s: %s", c->torch, hlr_last_error());
    if (c->clip > 0.0f)
        ck_assert_ok(hlr_optimizer_set_clip_norm(o, c->clip));
    char what[160];
    for (int s = 0; s < TORCH_OPT_STEPS; s++) {
        memcpy(grad_data(m, "weight"), torch_opt_grad_w[s], sizeof torch_opt_grad_w[s]);
        memcpy(grad_data(m, "bias"), torch_opt_grad_b[s], sizeof torch_opt_grad_b[s]);
        ck_assert_ok(hlr_optimizer_step(o, m));
        snprintf(what, sizeof what, "%s weight gradient", c->torch);
        expect_close_f32(what, s + 1, grad_data(m, "weight"), c->grad_w[s], 12);
        snprintf(what, sizeof what, "%s bias gradient", c->torch);
        expect_close_f32(what, s + 1, grad_data(m, "bias"), c->grad_b[s], 3);
        snprintf(what, sizeof what, "%s weight", c->torch);
        expect_close_f32(what, s + 1, param_data(m, "weight"), c->w[s], 12);
        snprintf(what, sizeof what, "%s bias", c->torch);
        expect_close_f32(what, s + 1, param_data(m, "bias"), c->b[s], 3);
    }
    ck_assert_int_eq(hlr_optimizer_steps(o), TORCH_OPT_STEPS);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}

START_TEST(test_sgd_matches_torch)
{
    run_optimizer_case("sgd");
}
END_TEST

START_TEST(test_sgd_momentum_matches_torch)
{
    run_optimizer_case("sgd_momentum");
}
END_TEST

START_TEST(test_sgd_nesterov_matches_torch)
{
    run_optimizer_case("sgd_nesterov");
}
END_TEST

START_TEST(test_sgd_weight_decay_matches_torch)
{
    run_optimizer_case("sgd_weight_decay");
}
END_TEST

START_TEST(test_sgd_momentum_weight_decay_matches_torch)
{
    run_optimizer_case("sgd_momentum_weight_decay");
}
END_TEST

/* Element (0, 0) of the weight gradient is 1e-8, so this also pins where eps enters. */
START_TEST(test_adam_matches_torch)
{
    run_optimizer_case("adam");
}
END_TEST

START_TEST(test_adam_custom_betas_eps_matches_torch)
{
    run_optimizer_case("adam_betas");
}
END_TEST

START_TEST(test_adam_l2_weight_decay_matches_torch)
{
    run_optimizer_case("adam_weight_decay");
}
END_TEST

START_TEST(test_adamw_matches_torch)
{
    run_optimizer_case("adamw");
}
END_TEST

/* Steps 1, 3, 5 and 6 exceed max_norm 1 and are clipped; steps 2 and 4 are not. */
START_TEST(test_clip_grad_norm_then_sgd_matches_torch)
{
    run_optimizer_case("sgd_clip");
}
END_TEST

/* ---- learning-rate schedules ---- */

static void expect_schedule(const char *what, hlr_optimizer *o, const double *want, int n)
{
    for (int t = 0; t < n; t++) {
        double got = hlr_optimizer_lr(o);
        ck_assert_msg(fabs(got - want[t]) <= LR_RTOL * fabs(want[t]), "%s: lr at position %d is %.9g, torch %.9g",
                      what, t, got, want[t]);
        ck_assert_ok(hlr_optimizer_schedule_step(o));
    }
}

static hlr_optimizer *sched_optimizer(void)
{
    hlr_optimizer *o = hlr_sgd((float)TORCH_SCHED_BASE_LR, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    return o;
}

START_TEST(test_step_lr_matches_torch)
{
    hlr_optimizer *o = sched_optimizer();
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, 0.5, 0, 1.0));
    expect_schedule("StepLR(step_size=3, gamma=0.5)", o, torch_sched_step, TORCH_SCHED_LEN);
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_cosine_annealing_lr_matches_torch)
{
    hlr_optimizer *o = sched_optimizer();
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, TORCH_COSINE_T, 0.001, 0, 1.0));
    expect_schedule("CosineAnnealingLR(T_max=10, eta_min=0.001)", o, torch_sched_cosine, TORCH_COSINE_T + 1);
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_linear_warmup_matches_torch_linear_lr)
{
    hlr_optimizer *o = sched_optimizer();
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 5, 0.1));
    expect_schedule("LinearLR(start_factor=0.1, total_iters=5)", o, torch_sched_linear, TORCH_SCHED_LEN);
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_warmup_with_step_decay_matches_torch_chained_scheduler)
{
    hlr_optimizer *o = sched_optimizer();
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, 0.5, 5, 0.1));
    expect_schedule("ChainedScheduler([LinearLR, StepLR])", o, torch_sched_chained, TORCH_SCHED_LEN);
    hlr_optimizer_free(o);
}
END_TEST

/* ---- losses ---- */

static void cross_entropy_case(float smoothing, double want_loss, const double *want_grad)
{
    int32_t labels[TORCH_CE_N];
    for (int i = 0; i < TORCH_CE_N; i++)
        labels[i] = torch_ce_labels[i];
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 2, (int64_t[]){TORCH_CE_N, TORCH_CE_C}, torch_ce_logits);
    hlr_tensor *y = hlr_tensor_from(HLR_I32, 1, (int64_t[]){TORCH_CE_N}, labels);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 2, (int64_t[]){TORCH_CE_N, TORCH_CE_C});
    ck_assert(x && y && g);
    float loss = -1.0f;
    ck_assert_ok(hlr_cross_entropy(x, y, smoothing, &loss, g));
    ck_assert_msg(fabs(loss - want_loss) <= RTOL * fabs(want_loss),
                  "cross_entropy(label_smoothing=%g) = %.9g, torch %.9g", (double)smoothing, (double)loss, want_loss);
    char what[64];
    snprintf(what, sizeof what, "cross_entropy(label_smoothing=%g) grad", (double)smoothing);
    expect_close_f64(what, hlr_tensor_f32(g), want_grad, TORCH_CE_N * TORCH_CE_C);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(g);
}

/* Row 3 holds logits of +-80 with the label on a -80: exp(160) would overflow float32. */
START_TEST(test_cross_entropy_matches_torch)
{
    cross_entropy_case(0.0f, torch_ce_loss, &torch_ce_grad[0][0]);
}
END_TEST

START_TEST(test_cross_entropy_label_smoothing_matches_torch)
{
    cross_entropy_case(TORCH_CE_SMOOTHING, torch_ce_smooth_loss, &torch_ce_smooth_grad[0][0]);
}
END_TEST

START_TEST(test_mse_matches_torch)
{
    hlr_tensor *p = hlr_tensor_from(HLR_F32, 2, (int64_t[]){3, 4}, torch_mse_pred);
    hlr_tensor *t = hlr_tensor_from(HLR_F32, 2, (int64_t[]){3, 4}, torch_mse_target);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 2, (int64_t[]){3, 4});
    ck_assert(p && t && g);
    float loss = -1.0f;
    ck_assert_ok(hlr_mse(p, t, &loss, g));
    ck_assert_msg(fabs(loss - torch_mse_loss) <= RTOL * torch_mse_loss, "mse_loss = %.9g, torch %.9g", (double)loss,
                  torch_mse_loss);
    expect_close_f64("mse_loss grad", hlr_tensor_f32(g), &torch_mse_grad[0][0], 12);
    hlr_tensor_free(p);
    hlr_tensor_free(t);
    hlr_tensor_free(g);
}
END_TEST

/* ---- activations ---- */

/* A one-layer model on samples of `cols` values, run on `rows` samples in inference. */
static void expect_layer_forward(const char *what, hlr_layer *layer, int rows, int cols, const float *x,
                                 const double *want)
{
    ck_assert_msg(layer != NULL, "%s: %s", what, hlr_last_error());
    hlr_model *m = hlr_model_new(1);
    ck_assert_ptr_nonnull(m);
    ck_assert_ok(hlr_model_add(m, layer));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){cols}));
    hlr_tensor *tx = hlr_tensor_from(HLR_F32, 2, (int64_t[]){rows, cols}, x);
    hlr_tensor *ty = hlr_tensor_new(HLR_F32, 2, (int64_t[]){rows, cols});
    ck_assert(tx && ty);
    ck_assert_ok(hlr_model_forward(m, tx, ty, 0));
    expect_close_f64(what, hlr_tensor_f32(ty), want, rows * cols);
    hlr_tensor_free(tx);
    hlr_tensor_free(ty);
    hlr_model_free(m);
}

START_TEST(test_relu_matches_torch)
{
    expect_layer_forward("relu", hlr_relu(), 1, TORCH_ACT_LEN, torch_act_x, torch_act_relu);
}
END_TEST

START_TEST(test_leaky_relu_matches_torch)
{
    expect_layer_forward("leaky_relu(0.01)", hlr_leaky_relu(0.01f), 1, TORCH_ACT_LEN, torch_act_x,
                         torch_act_leaky_relu);
}
END_TEST

START_TEST(test_sigmoid_matches_torch)
{
    expect_layer_forward("sigmoid", hlr_sigmoid(), 1, TORCH_ACT_LEN, torch_act_x, torch_act_sigmoid);
}
END_TEST

START_TEST(test_tanh_matches_torch)
{
    expect_layer_forward("tanh", hlr_tanh(), 1, TORCH_ACT_LEN, torch_act_x, torch_act_tanh);
}
END_TEST

START_TEST(test_gelu_matches_torch_exact_gelu)
{
    expect_layer_forward("gelu", hlr_gelu(), 1, TORCH_ACT_LEN, torch_act_x, torch_act_gelu);
}
END_TEST

/* Row 2 holds +-80: exp(80) overflows float32 without the max shift. */
START_TEST(test_softmax_matches_torch)
{
    expect_layer_forward("softmax", hlr_softmax(), 3, 5, &torch_softmax_x[0][0], &torch_softmax_y[0][0]);
}
END_TEST

/* ---- nn.Linear(4, 3) ---- */

START_TEST(test_dense_forward_backward_matches_torch_linear)
{
    hlr_model *m = dense_model(&torch_linear_w[0][0], torch_linear_b);
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 2, (int64_t[]){5, 4}, torch_linear_x);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){5, 3});
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, 2, (int64_t[]){5, 3}, torch_linear_dy);
    hlr_tensor *dx = hlr_tensor_new(HLR_F32, 2, (int64_t[]){5, 4});
    ck_assert(x && y && dy && dx);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_close_f64("Linear output", hlr_tensor_f32(y), &torch_linear_y[0][0], 15);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_close_f64("Linear grad input", hlr_tensor_f32(dx), &torch_linear_dx[0][0], 20);
    expect_close_f64("Linear grad weight", grad_data(m, "weight"), &torch_linear_dw[0][0], 12);
    expect_close_f64("Linear grad bias", grad_data(m, "bias"), torch_linear_db, 3);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(dx);
    hlr_model_free(m);
}
END_TEST

Suite *suite_torch(void)
{
    Suite *s = suite_create("torch");

    TCase *tc = tcase_create("optimizers");
    tcase_add_test(tc, test_sgd_matches_torch);
    tcase_add_test(tc, test_sgd_momentum_matches_torch);
    tcase_add_test(tc, test_sgd_nesterov_matches_torch);
    tcase_add_test(tc, test_sgd_weight_decay_matches_torch);
    tcase_add_test(tc, test_sgd_momentum_weight_decay_matches_torch);
    tcase_add_test(tc, test_adam_matches_torch);
    tcase_add_test(tc, test_adam_custom_betas_eps_matches_torch);
    tcase_add_test(tc, test_adam_l2_weight_decay_matches_torch);
    tcase_add_test(tc, test_adamw_matches_torch);
    tcase_add_test(tc, test_clip_grad_norm_then_sgd_matches_torch);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedules");
    tcase_add_test(tc, test_step_lr_matches_torch);
    tcase_add_test(tc, test_cosine_annealing_lr_matches_torch);
    tcase_add_test(tc, test_linear_warmup_matches_torch_linear_lr);
    tcase_add_test(tc, test_warmup_with_step_decay_matches_torch_chained_scheduler);
    suite_add_tcase(s, tc);

    tc = tcase_create("losses");
    tcase_add_test(tc, test_cross_entropy_matches_torch);
    tcase_add_test(tc, test_cross_entropy_label_smoothing_matches_torch);
    tcase_add_test(tc, test_mse_matches_torch);
    suite_add_tcase(s, tc);

    tc = tcase_create("layers");
    tcase_add_test(tc, test_relu_matches_torch);
    tcase_add_test(tc, test_leaky_relu_matches_torch);
    tcase_add_test(tc, test_sigmoid_matches_torch);
    tcase_add_test(tc, test_tanh_matches_torch);
    tcase_add_test(tc, test_gelu_matches_torch_exact_gelu);
    tcase_add_test(tc, test_softmax_matches_torch);
    tcase_add_test(tc, test_dense_forward_backward_matches_torch_linear);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * test_explain.c -- attribution maps: saliency is |d score / dx|; integrated
 * gradients add up to score(x) - score(baseline) within 1 % (completeness);
 * Grad-CAM equals its definition worked by hand on a model whose gradient at
 * the convolution is known; and the sanity checks of Adebayo et al. 2018:
 * maps of a trained model change materially (Spearman rank correlation below
 * 0.5) when its weights are randomised, top layer first then all, and when
 * it is trained on random labels instead.  And robustness: FGSM is the signed
 * gradient step worked by hand, PGD stays in its ball and raises the loss,
 * and adversarial training makes a model more robust than plain training.
 */
#include "testutil_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Suite *suite_explain(void);

/* The next number of a 64-bit LCG, and one in [0, 1). */
static uint64_t lcg(uint64_t *g)
{
    return *g = *g * 6364136223846793005ULL + 1442695040888963407ULL;
}

static float uniform(uint64_t *g) { return (float)((lcg(g) >> 11) * 0x1.0p-53); }

/* n images 1 x 8 x 8 and their 4 classes as a data set; frees x and y. */
static hlr_dataset *images(float *x, int32_t *y, int64_t n)
{
    hlr_dataset *d = hlr_dataset_from(3, (int64_t[]){1, 8, 8}, n, x, y, 4);
    free(x);
    free(y);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Images 1 x 8 x 8 of noise whose class (0..3) is the quadrant made brighter. */
static hlr_dataset *quadrants(int64_t n, uint64_t seed, int random_labels)
{
    float *x = malloc((size_t)n * 64 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    uint64_t g = seed;
    for (int64_t i = 0; i < n; i++) {
        int q = (int)(i % 4);
        for (int k = 0; k < 64; k++) {
            int quadrant = (k / 8 >= 4) * 2 + (k % 8 >= 4);
            x[i * 64 + k] = uniform(&g) * 0.5f + (quadrant == q ? 0.5f : 0.0f);
        }
        y[i] = random_labels ? (int32_t)((lcg(&g) >> 33) % 4) : q;
    }
    return images(x, y, n);
}

/* Images 1 x 8 x 8 of noise with one bright line of 4 pixels somewhere, its direction the class:
 * horizontal, vertical, diagonal, anti-diagonal. */
static hlr_dataset *lines(int64_t n, uint64_t seed, int random_labels)
{
    float *x = malloc((size_t)n * 64 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    uint64_t g = seed;
    for (int64_t i = 0; i < n; i++) {
        int q = (int)(i % 4);
        for (int k = 0; k < 64; k++)
            x[i * 64 + k] = uniform(&g) * 0.3f;
        lcg(&g);
        int r = (int)((g >> 33) % 5), c = (int)((g >> 40) % 5); /* the line's start, so that it fits */
        const int dr[4] = {0, 1, 1, 1}, dc[4] = {1, 0, 1, -1};
        if (q == 3)
            c += 3;
        for (int s = 0; s < 4; s++)
            x[i * 64 + (r + s * dr[q]) * 8 + c + s * dc[q]] = 1.0f;
        y[i] = random_labels ? (int32_t)((lcg(&g) >> 33) % 4) : q;
    }
    return images(x, y, n);
}

/* Two convolutions, global average pooling and a dense layer: Grad-CAM's own setting (its mean
 * gradients are the dense weights a GAP network gives each channel). */
static hlr_model *gap_cnn(uint64_t seed)
{
    hlr_model *m = TEST_MODEL(seed, hlr_conv2d(1, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                              hlr_conv2d(8, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                              hlr_global_avgpool2d(), hlr_dense(8, 4, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    return m;
}

static hlr_model *cnn(uint64_t seed)
{
    hlr_model *m = TEST_MODEL(seed, hlr_conv2d(1, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                              hlr_maxpool2d(2, 2, 0), hlr_flatten(), hlr_dense(6 * 16, 4, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    return m;
}

static void train(hlr_model *m, const hlr_dataset *d, int epochs)
{
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = epochs;
    fo.batch_size = 32;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    hlr_optimizer_free(o);
}

/* Ranks with ties averaged, then Pearson's correlation of the ranks. */
static void ranks(const float *v, int64_t n, double *r)
{
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int64_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (int64_t j = i; j > 0 && v[idx[j - 1]] > v[idx[j]]; j--) {
            int64_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        for (int64_t k = i; k <= j; k++)
            r[idx[k]] = (double)(i + j) / 2.0;
        i = j + 1;
    }
    free(idx);
}

static double spearman(const float *a, const float *b, int64_t n)
{
    double *ra = malloc((size_t)n * sizeof *ra), *rb = malloc((size_t)n * sizeof *rb);
    ranks(a, n, ra);
    ranks(b, n, rb);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) {
        ma += ra[i] / n;
        mb += rb[i] / n;
    }
    for (int64_t i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0.0;
}

/* The mean over the samples of the rank correlation between two models' maps of x. */
static double map_agreement(hlr_model *a, hlr_model *b, const hlr_tensor *x, hlr_explain_method method,
                            const int32_t *targets)
{
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    o.method = method;
    hlr_tensor *ma = hlr_tensor_new(HLR_F32, 4, x->shape), *mb = hlr_tensor_new(HLR_F32, 4, x->shape);
    ck_assert_ok(hlr_model_explain(a, x, targets, &o, ma));
    ck_assert_ok(hlr_model_explain(b, x, targets, &o, mb));
    double sum = 0;
    for (int64_t i = 0; i < x->shape[0]; i++)
        sum += spearman(hlr_tensor_f32(ma) + i * 64, hlr_tensor_f32(mb) + i * 64, 64);
    hlr_tensor_free(ma);
    hlr_tensor_free(mb);
    return sum / (double)x->shape[0];
}

/* The parameters of layer i of src into dst (same architecture). */
static void copy_layer(hlr_model *dst, hlr_model *src, int i)
{
    hlr_layer *a = hlr_model_layer(dst, i), *b = hlr_model_layer(src, i);
    for (int p = 0; p < hlr_layer_param_count(a); p++) {
        const char *name = hlr_layer_param_name(a, p);
        hlr_tensor *ta = hlr_layer_param(a, name), *tb = hlr_layer_param(b, name);
        memcpy(hlr_tensor_f32(ta), hlr_tensor_f32(tb), (size_t)hlr_tensor_numel(ta) * sizeof(float));
    }
}

START_TEST(test_saliency_is_the_absolute_input_gradient)
{
    hlr_set_num_threads(1);
    hlr_model *m = cnn(3);
    hlr_dataset *d = quadrants(8, 5, 0);
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){8, 1, 8, 8}, (void *)hlr_dataset_inputs(d));
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 4, x->shape), *map = hlr_tensor_new(HLR_F32, 4, x->shape);
    const int32_t t[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    ck_assert_ok(hlr_model_input_gradient(m, x, t, 0, g));
    ck_assert_ok(hlr_model_explain(m, x, t, NULL, map));
    for (int i = 0; i < 8 * 64; i++)
        ck_assert_float_eq(hlr_tensor_f32(map)[i], fabsf(hlr_tensor_f32(g)[i]));
    hlr_tensor_free(x);
    hlr_tensor_free(g);
    hlr_tensor_free(map);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* _i 0: a tanh MLP (smooth), 1: the ReLU CNN (piecewise linear). */
START_TEST(test_integrated_gradients_are_complete)
{
    hlr_set_num_threads(1);
    hlr_model *m = _i == 0 ? TEST_MODEL(4, hlr_flatten(), hlr_dense(64, 16, 1), hlr_tanh(), hlr_dense(16, 4, 1))
                           : cnn(4);
    if (_i == 0)
        ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    hlr_dataset *d = quadrants(6, 7, 0);
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){6, 1, 8, 8}, (void *)hlr_dataset_inputs(d));
    hlr_tensor *map = hlr_tensor_new(HLR_F32, 4, x->shape), *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){6, 4});
    hlr_tensor *zero = hlr_tensor_new(HLR_F32, 4, x->shape), *y0 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){6, 4});
    const int32_t t[6] = {0, 1, 2, 3, 2, 1};
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    o.method = HLR_EXPLAIN_INTEGRATED_GRADIENTS;
    o.steps = 256;
    ck_assert_ok(hlr_model_explain(m, x, t, &o, map));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_forward(m, zero, y0, 0));
    for (int i = 0; i < 6; i++) {
        double sum = 0, diff = hlr_tensor_f32(y)[i * 4 + t[i]] - hlr_tensor_f32(y0)[i * 4 + t[i]];
        for (int k = 0; k < 64; k++)
            sum += hlr_tensor_f32(map)[i * 64 + k];
        ck_assert_msg(fabs(sum - diff) <= 0.01 * fabs(diff) + 1e-6,
                      "sample %d: attributions add up to %g, the score moved by %g", i, sum, diff);
    }
    /* a baseline of one sample's shape serves every sample */
    hlr_tensor *b1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 8, 8});
    o.baseline = b1;
    hlr_tensor *map1 = hlr_tensor_new(HLR_F32, 4, x->shape);
    ck_assert_ok(hlr_model_explain(m, x, t, &o, map1));
    ck_assert_mem_eq(hlr_tensor_f32(map1), hlr_tensor_f32(map), 6 * 64 * sizeof(float));
    hlr_tensor_free(b1);
    hlr_tensor_free(map1);
    hlr_tensor_free(x);
    hlr_tensor_free(map);
    hlr_tensor_free(y);
    hlr_tensor_free(zero);
    hlr_tensor_free(y0);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* conv (same size) -> flatten -> dense: d score_c / dA = the dense weights' row c, so Grad-CAM is
 * ReLU(sum_k mean(W_c,k) A_k) at full resolution, A the convolution's output. */
START_TEST(test_gradcam_matches_its_definition)
{
    hlr_set_num_threads(1);
    hlr_model *m = TEST_MODEL(6, hlr_conv2d(1, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_flatten(),
                              hlr_dense(3 * 64, 4, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    hlr_model *conv = TEST_MODEL(1, hlr_conv2d(1, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1}));
    ck_assert_ok(hlr_model_build(conv, 3, (int64_t[]){1, 8, 8}));
    copy_layer(conv, m, 0);
    hlr_dataset *d = quadrants(4, 9, 0);
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){4, 1, 8, 8}, (void *)hlr_dataset_inputs(d));
    hlr_tensor *A = hlr_tensor_new(HLR_F32, 4, (int64_t[]){4, 3, 8, 8}), *map = hlr_tensor_new(HLR_F32, 4, x->shape);
    ck_assert_ok(hlr_model_forward(conv, x, A, 0));
    const int32_t t[4] = {3, 2, 1, 0};
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    o.method = HLR_EXPLAIN_GRADCAM;
    ck_assert_ok(hlr_model_explain(m, x, t, &o, map));
    const float *W = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 2), "weight"));
    for (int i = 0; i < 4; i++)
        for (int p = 0; p < 64; p++) {
            double cam = 0;
            for (int k = 0; k < 3; k++) {
                double a = 0;
                for (int q = 0; q < 64; q++)
                    a += W[t[i] * 192 + k * 64 + q] / 64.0;
                cam += a * hlr_tensor_f32(A)[(i * 3 + k) * 64 + p];
            }
            ck_assert_close(hlr_tensor_f32(map)[i * 64 + p], cam > 0 ? cam : 0, 1e-5, 1e-6);
        }
    /* not a convolution, no convolution: refused */
    o.layer = 1;
    ck_assert_status(hlr_model_explain(m, x, t, &o, map), HLR_EINVAL);
    hlr_model *mlp = TEST_MODEL(1, hlr_flatten(), hlr_dense(64, 4, 1));
    ck_assert_ok(hlr_model_build(mlp, 3, (int64_t[]){1, 8, 8}));
    o.layer = -1;
    ck_assert_status(hlr_model_explain(mlp, x, t, &o, map), HLR_ENOTFOUND);
    o.method = (hlr_explain_method)9;
    ck_assert_status(hlr_model_explain(mlp, x, t, &o, map), HLR_EINVAL);
    hlr_model_free(mlp);
    hlr_tensor_free(x);
    hlr_tensor_free(A);
    hlr_tensor_free(map);
    hlr_dataset_free(d);
    hlr_model_free(conv);
    hlr_model_free(m);
}
END_TEST

/* Adebayo et al. 2018.  _i 0: saliency of the quadrant CNN; 1: Grad-CAM of the GAP network's last
 * convolution (ReLU fused) on the lines.  (A network that flattens its feature maps into a dense
 * layer averages away where its weights look: its Grad-CAM maps are mostly empty.) */
START_TEST(test_sanity_checks_randomised_weights_and_labels)
{
    hlr_set_num_threads(1);
    const hlr_explain_method method = _i == 0 ? HLR_EXPLAIN_SALIENCY : HLR_EXPLAIN_GRADCAM;
    hlr_dataset *(*data)(int64_t, uint64_t, int) = _i == 0 ? quadrants : lines;
    hlr_model *(*arch)(uint64_t) = _i == 0 ? cnn : gap_cnn;
    hlr_dataset *d = data(1024, 11, 0), *noise = data(1024, 11, 1), *test = data(32, 12, 0);
    hlr_model *trained = arch(21), *shuffled = arch(21);
    train(trained, d, _i == 0 ? 4 : 12);
    train(shuffled, noise, _i == 0 ? 4 : 12);
    hlr_metrics met;
    ck_assert_ok(hlr_model_evaluate(trained, test, 32, 1, &met, NULL));
    ck_assert_msg(met.accuracy > 0.9, "the model learned too little to explain (%g)", met.accuracy);
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){32, 1, 8, 8}, (void *)hlr_dataset_inputs(test));
    const int32_t *t = hlr_dataset_labels(test);
    /* cascading randomisation: the top layer, then every layer (a model of fresh weights) */
    hlr_model *top = arch(77), *all = arch(78);
    for (int i = 0; i < hlr_model_num_layers(top) - 1; i++) /* all but the top (dense) layer trained */
        copy_layer(top, trained, i);
    double self = map_agreement(trained, trained, x, method, t);
    double r_top = map_agreement(trained, top, x, method, t), r_all = map_agreement(trained, all, x, method, t);
    double r_labels = map_agreement(trained, shuffled, x, method, t);
    ck_assert_msg(self > 0.999, "a model's maps disagree with themselves (%g)", self);
    ck_assert_msg(r_top < 0.5 && r_all < 0.5, "randomised weights: rank correlation %g (top layer), %g (all)",
                  r_top, r_all);
    ck_assert_msg(r_labels < 0.5, "random labels: rank correlation %g", r_labels);
    hlr_tensor_free(x);
    hlr_model_free(top);
    hlr_model_free(all);
    hlr_model_free(trained);
    hlr_model_free(shuffled);
    hlr_dataset_free(d);
    hlr_dataset_free(noise);
    hlr_dataset_free(test);
}
END_TEST

/* ---- robustness ---- */

/* FGSM on a linear model: d loss / dx = W^T (softmax(W x) - onehot(y)), so the adversarial example
 * is clip(x + eps sign(that)) exactly. */
START_TEST(test_fgsm_is_the_signed_gradient_step)
{
    hlr_set_num_threads(1);
    hlr_model *m = TEST_MODEL(2, hlr_flatten(), hlr_dense(64, 4, 0));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    hlr_dataset *d = quadrants(4, 3, 0);
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){4, 1, 8, 8}, (void *)hlr_dataset_inputs(d));
    hlr_tensor *adv = hlr_tensor_new(HLR_F32, 4, x->shape), *z = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 4});
    const int32_t *y = hlr_dataset_labels(d);
    hlr_attack_options o;
    hlr_attack_options_default(&o);
    o.eps = 0.05;
    ck_assert_ok(hlr_model_attack(m, x, y, &o, adv));
    ck_assert_ok(hlr_model_forward(m, x, z, 0));
    const float *W = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 1), "weight"));
    for (int i = 0; i < 4; i++) {
        double p[4], mx = -1e300, sum = 0;
        for (int c = 0; c < 4; c++)
            mx = fmax(mx, hlr_tensor_f32(z)[i * 4 + c]);
        for (int c = 0; c < 4; c++)
            sum += p[c] = exp(hlr_tensor_f32(z)[i * 4 + c] - mx);
        for (int k = 0; k < 64; k++) {
            double g = 0;
            for (int c = 0; c < 4; c++)
                g += W[c * 64 + k] * (p[c] / sum - (c == y[i]));
            float xv = hlr_tensor_f32(x)[i * 64 + k], want = xv + (g > 0 ? 0.05f : g < 0 ? -0.05f : 0.0f);
            want = want < 0 ? 0 : want > 1 ? 1 : want;
            ck_assert_float_eq_tol(hlr_tensor_f32(adv)[i * 64 + k], want, 1e-6);
        }
    }
    /* in place: the same */
    hlr_tensor *copy = hlr_tensor_from(HLR_F32, 4, x->shape, hlr_tensor_f32(x));
    ck_assert_ok(hlr_model_attack(m, copy, y, &o, copy));
    ck_assert_mem_eq(hlr_tensor_f32(copy), hlr_tensor_f32(adv), 4 * 64 * sizeof(float));
    /* refusals */
    o.eps = -1;
    ck_assert_status(hlr_model_attack(m, x, y, &o, adv), HLR_EINVAL);
    hlr_attack_options_default(&o);
    o.clip_min = 1;
    ck_assert_status(hlr_model_attack(m, x, y, &o, adv), HLR_EINVAL);
    ck_assert_status(hlr_model_attack(m, x, NULL, NULL, adv), HLR_EINVAL);
    hlr_tensor_free(copy);
    hlr_tensor_free(x);
    hlr_tensor_free(adv);
    hlr_tensor_free(z);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* PGD stays in the ball and the range, raises the loss, and eps 0 changes nothing; adversarial
 * training makes the model more robust than plain training. */
START_TEST(test_pgd_and_adversarial_training)
{
    hlr_set_num_threads(1);
    hlr_dataset *d = quadrants(1024, 31, 0), *test = quadrants(256, 32, 0);
    hlr_model *plain = cnn(5), *robust = cnn(5);
    train(plain, d, 3);
    hlr_attack_options o;
    hlr_attack_options_default(&o);
    o.eps = 0.2;
    o.steps = 10;
    o.random_start = 1;
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){256, 1, 8, 8}, (void *)hlr_dataset_inputs(test));
    hlr_tensor *adv = hlr_tensor_new(HLR_F32, 4, x->shape);
    const int32_t *y = hlr_dataset_labels(test);
    ck_assert_ok(hlr_model_attack(plain, x, y, &o, adv));
    for (int64_t i = 0; i < 256 * 64; i++) {
        float a = hlr_tensor_f32(adv)[i], v = hlr_tensor_f32(x)[i];
        ck_assert_msg(a >= v - 0.2f - 1e-6f && a <= v + 0.2f + 1e-6f && a >= 0 && a <= 1, "%g from %g", a, v);
    }
    hlr_metrics clean, attacked;
    hlr_dataset *ad = hlr_dataset_from(3, (int64_t[]){1, 8, 8}, 256, hlr_tensor_f32(adv), y, 4);
    ck_assert_ok(hlr_model_evaluate(plain, test, 64, 1, &clean, NULL));
    ck_assert_ok(hlr_model_evaluate(plain, ad, 64, 1, &attacked, NULL));
    ck_assert_msg(attacked.loss > clean.loss, "PGD lowered the loss: %g -> %g", clean.loss, attacked.loss);
    double r_plain, r_robust, r_zero;
    ck_assert_ok(hlr_model_robust_accuracy(plain, test, 64, &o, &r_plain));
    ck_assert_close(r_plain, attacked.accuracy, 0.05, 0); /* the same attack, other random starts */
    hlr_attack_options none = o;
    none.eps = 0;
    ck_assert_ok(hlr_model_robust_accuracy(plain, test, 64, &none, &r_zero));
    ck_assert_double_eq(r_zero, clean.accuracy);
    /* adversarial training: PGD of 5 steps on the whole batch */
    hlr_attack_options train_attack = o;
    train_attack.steps = 5;
    hlr_optimizer *opt = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 3;
    fo.batch_size = 32;
    fo.adversarial = &train_attack;
    fo.adversarial_fraction = 1.0;
    ck_assert_ok(hlr_model_fit(robust, opt, d, &fo));
    ck_assert_ok(hlr_model_robust_accuracy(robust, test, 64, &o, &r_robust));
    ck_assert_msg(r_robust > r_plain + 0.1, "robust accuracy: %g after adversarial training, %g without", r_robust,
                  r_plain);
    fo.adversarial_fraction = 0;
    ck_assert_status(hlr_model_fit(robust, opt, d, &fo), HLR_EINVAL);
    hlr_optimizer_free(opt);
    hlr_dataset_free(ad);
    hlr_tensor_free(x);
    hlr_tensor_free(adv);
    hlr_model_free(plain);
    hlr_model_free(robust);
    hlr_dataset_free(d);
    hlr_dataset_free(test);
}
END_TEST

Suite *suite_explain(void)
{
    Suite *s = suite_create("explain");
    TCase *t = tcase_create("maps");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_saliency_is_the_absolute_input_gradient);
    tcase_add_loop_test(t, test_integrated_gradients_are_complete, 0, 2);
    tcase_add_test(t, test_gradcam_matches_its_definition);
    tcase_add_loop_test(t, test_sanity_checks_randomised_weights_and_labels, 0, 2);
    suite_add_tcase(s, t);
    TCase *r = tcase_create("robustness");
    tcase_set_timeout(r, 120);
    tcase_add_test(r, test_fgsm_is_the_signed_gradient_step);
    tcase_add_test(r, test_pgd_and_adversarial_training);
    suite_add_tcase(s, r);
    return s;
}

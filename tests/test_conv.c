/*
 * test_conv.c -- the convolutional layers: conv2d (stride, padding,
 * dilation, groups, bias, non-square kernels), max, average and global
 * average pooling, batch norm 2d and 1d.
 *
 *   finite_differences  every backward pass against central differences,
 *                       for the input and each trained parameter;
 *   torch               forward and backward values against PyTorch, from
 *                       fixtures/conv_ref.h (written by
 *                       fixtures/gen_conv_ref.py; torch is not needed here);
 *   bad_configurations  constructor arguments (HLR_EINVAL) and shapes that
 *                       do not fit at build time (HLR_ESHAPE naming the layer);
 *   buffers             optimizers never touch batch norm's running
 *                       statistics; inference uses them and leaves them alone;
 *   training            a small CNN learns and allocates nothing per batch.
 */
#include "testutil.h"

#include "fixtures/conv_ref.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* The library's allocation counter (internal; tests link the static library). */
extern _Atomic long hlr__alloc_count;
/* Internal: keep every ReLU a layer of its own (no fusion into the layer before). */
void hlr__model_no_fusion(hlr_model *m);
/* Internal: compute a 3x3 conv2d by im2col even where it would use Winograd's algorithm. */
void hlr__conv2d_no_winograd(hlr_layer *l);
/* Internal (kernels.h): 8 or 16 runs the kernels' 8- or 16-float loops whatever the CPU; 0 lets it choose. */
extern int hlrk_width_for_tests;

Suite *suite_conv(void);

/* ---- small helpers ---- */

/* Layer li of m, its parameter `name`: the data, after checking it has numel elements. */
static float *param_of(hlr_model *m, int li, const char *name, int64_t numel)
{
    hlr_tensor *t = hlr_layer_param(hlr_model_layer(m, li), name);
    ck_assert_msg(t != NULL, "layer %d parameter %s: %s", li, name, hlr_last_error());
    ck_assert_msg(hlr_tensor_numel(t) == numel, "layer %d parameter %s has %lld elements, expected %lld", li, name,
                  (long long)hlr_tensor_numel(t), (long long)numel);
    return hlr_tensor_f32(t);
}

static float *grad_of(hlr_model *m, int li, const char *name, int64_t numel)
{
    hlr_tensor *t = hlr_layer_grad(hlr_model_layer(m, li), name);
    ck_assert_msg(t != NULL, "layer %d gradient %s: %s", li, name, hlr_last_error());
    ck_assert_msg(hlr_tensor_numel(t) == numel, "layer %d gradient %s has %lld elements, expected %lld", li, name,
                  (long long)hlr_tensor_numel(t), (long long)numel);
    return hlr_tensor_f32(t);
}

/* A model of the given layers (NULL-terminated), not built. */
static hlr_model *model_of(uint64_t seed, hlr_layer *const *layers)
{
    hlr_model *m = hlr_model_new(seed);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; layers[i]; i++)
        ck_assert_ok(hlr_model_add(m, layers[i]));
    return m;
}

/* A one-layer model built for samples of the given shape. */
static hlr_model *built_model_of(hlr_layer *l, int ndim, const int64_t *shape)
{
    ck_assert_msg(l != NULL, "constructor failed: %s", hlr_last_error());
    hlr_model *m = model_of(1, (hlr_layer *[]){l, NULL});
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    return m;
}

static int is_buffer(const char *name) { return strncmp(name, "running_", 8) == 0; }

/* Fill with NaN, so that a value the library should write but does not shows. */
static void fill_nan(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = NAN;
}

/* NaN into every trained parameter's gradient of m: backward must overwrite them all. */
static void poison_grads(hlr_model *m)
{
    for (int li = 0; li < hlr_model_num_layers(m); li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            const char *name = hlr_layer_param_name(l, p);
            if (!is_buffer(name)) {
                hlr_tensor *g = hlr_layer_grad(l, name);
                fill_nan(hlr_tensor_f32(g), hlr_tensor_numel(g));
            }
        }
    }
}

/* ====================================================================== */
/* Finite differences                                                      */
/* ====================================================================== */

/*
 * The scalar checked is L = sum(y * r) for a fixed random r, so dL/dy = r;
 * dL/dv for an input or parameter element v is compared with
 * (L(v + EPS) - L(v - EPS)) / (2 EPS), L summed in double.  Every layer here
 * is linear or smooth in the region a step of EPS covers: inputs of max
 * pooling are distinct values FD_SPACING apart, so no step reorders a window.
 */
#define FD_EPS 1e-2
#define FD_RTOL 2e-2
#define FD_ATOL 2e-3
#define FD_POINTS 80 /* positions checked per tensor at most, spread over it */
#define FD_SPACING 0.05f

typedef enum { FILL_SIGNED, FILL_DISTINCT } fill_kind;

static double fd_eps = FD_EPS; /* the step; a test may make it smaller */

typedef struct fd {
    hlr_model *m;
    hlr_tensor *x, *y, *r;
    int64_t nx, ny;
} fd;

static double fd_loss(fd *f)
{
    ck_assert_ok(hlr_model_forward(f->m, f->x, f->y, 1));
    const float *y = hlr_tensor_f32(f->y), *r = hlr_tensor_f32(f->r);
    double l = 0.0;
    for (int64_t i = 0; i < f->ny; i++)
        l += (double)y[i] * r[i];
    return l;
}

static double fd_slope(fd *f, float *v)
{
    float keep = *v;
    *v = keep + (float)fd_eps;
    double lp = fd_loss(f);
    *v = keep - (float)fd_eps;
    double lm = fd_loss(f);
    *v = keep;
    return (lp - lm) / (2.0 * fd_eps);
}

/* Compare the saved analytic gradient of v (n elements) at FD_POINTS positions, the last included. */
static void fd_compare_tensor(fd *f, const char *what, float *v, const float *analytic, int64_t n)
{
    int64_t step = n <= FD_POINTS ? 1 : n / FD_POINTS + 1;
    for (int64_t i = 0;; i += step) {
        if (i > n - 1)
            i = n - 1;
        double num = fd_slope(f, &v[i]), an = analytic[i];
        double scale = fabs(an) > fabs(num) ? fabs(an) : fabs(num);
        ck_assert_msg(fabs(an - num) <= FD_ATOL + FD_RTOL * scale,
                      "%s[%lld]: backward gives %.6g, finite differences %.6g (diff %.3g)", what, (long long)i, an,
                      num, an - num);
        if (i == n - 1)
            break;
    }
}

/* x: magnitudes in [0.1, 1] with random signs, or distinct values FD_SPACING apart in random order. */
static void fd_fill(float *x, int64_t n, fill_kind kind, unsigned long long seed)
{
    unsigned long long s = seed * 7 + 1;
    if (kind == FILL_SIGNED) {
        test_fill(x, (long)n, seed, 0.1f, 1.0f);
        for (int64_t i = 0; i < n; i++)
            if (test_rand(&s) < 0.5f)
                x[i] = -x[i];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = ((float)i - (float)n / 2) * FD_SPACING;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)(test_rand(&s) * (float)(i + 1));
        j = j > i ? i : j;
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

/* m with its layers, built for samples of `shape`. */
static hlr_model *built(const char *what, hlr_model *m, int ndim, const int64_t *shape)
{
    ck_assert_msg(hlr_model_build(m, ndim, shape) == HLR_OK, "%s: build: %s", what, hlr_last_error());
    return m;
}

/*
 * For the built model m, samples of `shape` and batch n: check d/dx and
 * d/dparam of every trained parameter of every layer.  Frees m.  `what`
 * names the case in failure messages.
 */
static void gradcheck(const char *what, hlr_model *m, int ndim, const int64_t *shape, int64_t n, fill_kind fill,
                      unsigned long long seed)
{
    fd f = {.m = m};
    int64_t xs[HLR_MAX_DIMS + 1] = {n}, ys[HLR_MAX_DIMS + 1] = {n};
    memcpy(xs + 1, shape, (size_t)ndim * sizeof *shape);
    int yd = 0;
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys + 1));
    f.x = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    f.y = hlr_tensor_new(HLR_F32, yd + 1, ys);
    f.r = hlr_tensor_new(HLR_F32, yd + 1, ys);
    hlr_tensor *dxt = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    ck_assert(f.x && f.y && f.r && dxt);
    f.nx = hlr_tensor_numel(f.x);
    f.ny = hlr_tensor_numel(f.y);
    float *x = hlr_tensor_f32(f.x);
    fd_fill(x, f.nx, fill, seed);
    test_fill(hlr_tensor_f32(f.r), (long)f.ny, seed + 99, -1.0f, 1.0f);

    /* Analytic gradients, copied before the finite differences run more passes;
     * NaN in what backward must overwrite. */
    ck_assert_ok(hlr_model_forward(m, f.x, f.y, 1));
    fill_nan(hlr_tensor_f32(dxt), f.nx);
    poison_grads(m);
    ck_assert_ok(hlr_model_backward(m, f.r, dxt));
    int nl = hlr_model_num_layers(m);
    ck_assert_int_le(nl, 16);
    float *saved[16][HLR_MAX_DIMS] = {{0}};
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            const char *name = hlr_layer_param_name(l, p);
            if (is_buffer(name))
                continue;
            hlr_tensor *g = hlr_layer_grad(l, name);
            size_t bytes = (size_t)hlr_tensor_numel(g) * sizeof(float);
            saved[li][p] = malloc(bytes);
            ck_assert_ptr_nonnull(saved[li][p]);
            memcpy(saved[li][p], hlr_tensor_f32(g), bytes);
        }
    }

    char label[160];
    snprintf(label, sizeof label, "%s: dx", what);
    fd_compare_tensor(&f, label, x, hlr_tensor_f32(dxt), f.nx);
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            if (!saved[li][p])
                continue;
            const char *name = hlr_layer_param_name(l, p);
            hlr_tensor *pt = hlr_layer_param(l, name);
            snprintf(label, sizeof label, "%s: layer %d (%s) d%s", what, li, hlr_layer_type(l), name);
            fd_compare_tensor(&f, label, hlr_tensor_f32(pt), saved[li][p], hlr_tensor_numel(pt));
            free(saved[li][p]);
        }
    }
    hlr_tensor_free(f.x);
    hlr_tensor_free(f.y);
    hlr_tensor_free(f.r);
    hlr_tensor_free(dxt);
    hlr_model_free(m);
}

/* The conv2d layer of a PyTorch fixture case. */
static hlr_layer *fixture_conv(const conv_ref_conv *c)
{
    return hlr_conv2d(c->cin, c->cout,
                      &(hlr_conv2d_options){.kernel_h = c->kh,
                                            .kernel_w = c->kw,
                                            .stride = c->stride,
                                            .padding = c->pad,
                                            .dilation = c->dil,
                                            .groups = c->groups,
                                            .no_bias = !c->bias});
}

/* Every conv2d configuration of the fixtures: stride, padding 1 and 2,
 * dilation, groups, depthwise, no bias, non-square kernels, batch 1. */
START_TEST(test_conv2d_backward_matches_finite_differences)
{
    const conv_ref_conv *c = &conv_ref_convs[_i];
    char what[96];
    snprintf(what, sizeof what, "conv2d %s", c->name);
    hlr_layer *l = fixture_conv(c);
    ck_assert_msg(l != NULL, "%s: %s", what, hlr_last_error());
    int64_t shape[] = {c->cin, c->h, c->w};
    gradcheck(what, built(what, model_of(11, (hlr_layer *[]){l, NULL}), 3, shape), 3, shape, c->n, FILL_SIGNED,
              (unsigned long long)(20 + _i));
}
END_TEST

/* A stride larger than the kernel skips input pixels: their gradient is 0. */
START_TEST(test_conv2d_stride_beyond_kernel_matches_finite_differences)
{
    const char *what = "conv2d 2x2 stride 3";
    int64_t shape[] = {2, 8, 7};
    hlr_model *m =
        model_of(12, (hlr_layer *[]){hlr_conv2d(2, 3, &(hlr_conv2d_options){.kernel = 2, .stride = 3}), NULL});
    gradcheck(what, built(what, m, 3, shape), 3, shape, 2, FILL_SIGNED, 40);
}
END_TEST

/* A fixture's pooling: a square window through hlr_maxpool2d / hlr_avgpool2d, a rectangle through the _hw forms. */
static hlr_layer *pool_of(const conv_ref_pool *c)
{
    if (c->kind == 2)
        return hlr_global_avgpool2d();
    if (c->kernel_h == c->kernel_w && c->stride_h == c->stride_w && c->pad_h == c->pad_w)
        return c->kind == 0 ? hlr_maxpool2d(c->kernel_h, c->stride_h, c->pad_h)
                            : hlr_avgpool2d(c->kernel_h, c->stride_h, c->pad_h);
    return c->kind == 0 ? hlr_maxpool2d_hw(c->kernel_h, c->kernel_w, c->stride_h, c->stride_w, c->pad_h, c->pad_w)
                        : hlr_avgpool2d_hw(c->kernel_h, c->kernel_w, c->stride_h, c->stride_w, c->pad_h, c->pad_w);
}

/* Every pooling configuration of the fixtures; max pooling on distinct inputs. */
START_TEST(test_pooling_backward_matches_finite_differences)
{
    const conv_ref_pool *c = &conv_ref_pools[_i];
    char what[96];
    snprintf(what, sizeof what, "pooling %s", c->name);
    hlr_layer *l = pool_of(c);
    ck_assert_msg(l != NULL, "%s: %s", what, hlr_last_error());
    int64_t shape[] = {c->c, c->h, c->w};
    gradcheck(what, built(what, model_of(13, (hlr_layer *[]){l, NULL}), 3, shape), 3, shape, c->n,
              c->kind == 0 ? FILL_DISTINCT : FILL_SIGNED, (unsigned long long)(50 + _i));
}
END_TEST

/* The poolings other than 2x2 split their planes across the pool: one thread and three give the same bits,
 * forward and backward (each plane is computed alone, so no sum is regrouped). */
static float *pools_run(int threads, int64_t *count)
{
    const int before = hlr_get_num_threads();
    ck_assert_ok(hlr_set_num_threads(threads));
    hlr_model *m = model_of(21, (hlr_layer *[]){hlr_maxpool2d_hw(2, 1, 0, 0, 0, 0), hlr_avgpool2d_hw(3, 2, 1, 2, 1, 1),
                                                hlr_maxpool2d(3, 1, 1), NULL});
    int64_t shape[] = {4, 32, 16};
    built("pools", m, 3, shape);
    const int64_t n = 48, xs = 4 * 32 * 16, ys = 4 * 16 * 9; /* (4, 16, 16) after the 2 x 1, then (4, 16, 9) */
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, 4, 32, 16}),
               *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, 4, 32, 16});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, 4, 16, 9}),
               *dy = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, 4, 16, 9});
    test_fill(hlr_tensor_f32(x), n * xs, 31, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), n * ys, 32, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    float *out = malloc((size_t)(n * (xs + ys)) * sizeof *out);
    ck_assert_ptr_nonnull(out);
    memcpy(out, hlr_tensor_f32(y), (size_t)(n * ys) * sizeof *out);
    memcpy(out + n * ys, hlr_tensor_f32(dx), (size_t)(n * xs) * sizeof *out);
    *count = n * (xs + ys);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
    ck_assert_ok(hlr_set_num_threads(before));
    return out;
}

START_TEST(test_poolings_give_the_same_bits_on_one_thread_and_three)
{
    int64_t n1, n3;
    float *a = pools_run(1, &n1), *b = pools_run(3, &n3);
    ck_assert_int_eq(n1, n3);
    test_expect_same_bits("poolings on 1 and 3 threads", b, a, n1);
    free(a);
    free(b);
}
END_TEST

/* One image on several threads: its convolutions' output channels are split among them (direct and Winograd,
 * with fused ReLU and pooling, and a batch norm folded in at inference).  Each channel is computed as it is
 * on one thread: the same bits forward (inference and training), and backward (dx and every gradient). */
static float *split_run(int threads, int64_t *count)
{
    const int before = hlr_get_num_threads();
    ck_assert_ok(hlr_set_num_threads(threads));
    hlr_model *m = model_of(23, (hlr_layer *[]){hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                                                hlr_relu(), hlr_maxpool2d(2, 0, 0),
                                                hlr_conv2d(32, 48, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                                                hlr_batchnorm2d(48, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 0, 0),
                                                hlr_conv2d(48, 40, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                                                hlr_relu(), hlr_flatten(), NULL});
    built("split", m, 3, (int64_t[]){1, 28, 28});
    const int64_t xs = 28 * 28, ys = 40 * 7 * 7;
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, 28, 28}),
               *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, 28, 28});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, ys}),
               *dy = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, ys});
    test_fill(hlr_tensor_f32(x), xs, 41, 0.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), ys, 42, -1.0f, 1.0f);
    int64_t grads = 0;
    for (int li = 0; li < hlr_model_num_layers(m); li++)
        for (int k = 0; k < 2; k++) {
            hlr_tensor *g = hlr_layer_grad(hlr_model_layer(m, li), k ? "bias" : "weight");
            grads += g ? hlr_tensor_numel(g) : 0;
        }
    float *out = malloc((size_t)(2 * ys + xs + grads) * sizeof *out), *o = out;
    ck_assert_ptr_nonnull(out);
    ck_assert_ok(hlr_model_forward(m, x, y, 1)); /* training: batch statistics, the winners kept */
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    memcpy(o, hlr_tensor_f32(y), (size_t)ys * sizeof *o), o += ys;
    memcpy(o, hlr_tensor_f32(dx), (size_t)xs * sizeof *o), o += xs;
    for (int li = 0; li < hlr_model_num_layers(m); li++)
        for (int k = 0; k < 2; k++) {
            hlr_tensor *g = hlr_layer_grad(hlr_model_layer(m, li), k ? "bias" : "weight");
            if (g)
                memcpy(o, hlr_tensor_f32(g), (size_t)hlr_tensor_numel(g) * sizeof *o), o += hlr_tensor_numel(g);
        }
    ck_assert_ok(hlr_model_forward(m, x, y, 0)); /* inference: the batch norm folded into its convolution */
    memcpy(o, hlr_tensor_f32(y), (size_t)ys * sizeof *o), o += ys;
    *count = o - out;
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
    ck_assert_ok(hlr_set_num_threads(before));
    return out;
}

START_TEST(test_one_image_split_among_threads_gives_the_same_bits)
{
    int64_t n1, n;
    float *a = split_run(1, &n1);
    for (int threads = 2; threads <= 4; threads++) {
        float *b = split_run(threads, &n);
        ck_assert_int_eq(n, n1);
        char what[64];
        snprintf(what, sizeof what, "one image on 1 and %d threads", threads);
        test_expect_same_bits(what, b, a, n1);
        free(b);
    }
    free(a);
}
END_TEST

/* Every training batch-norm case of the fixtures ((N, C, H, W), (N, C),
 * (N, C, L), batch 1), with weight and bias away from 1 and 0 so that they
 * scale the gradients. */
static int bn_training_cases(void)
{
    int n = 0;
    for (int i = 0; i < CONV_REF_NBN; i++)
        n += conv_ref_bns[i].training;
    return n;
}

/* The k-th training case of the fixtures. */
static const conv_ref_bn *bn_training_case(int k)
{
    for (int i = 0; i < CONV_REF_NBN; i++)
        if (conv_ref_bns[i].training && k-- == 0)
            return &conv_ref_bns[i];
    ck_abort_msg("no training case %d", k);
    return NULL;
}

START_TEST(test_batchnorm_training_backward_matches_finite_differences)
{
    const conv_ref_bn *c = bn_training_case(_i);
    int C = c->sample[0];
    hlr_layer *l = c->two_d ? hlr_batchnorm2d(C, c->eps, c->momentum) : hlr_batchnorm1d(C, c->eps, c->momentum);
    ck_assert_msg(l != NULL, "%s: %s", c->name, hlr_last_error());
    int64_t shape[3] = {c->sample[0], c->sample[1], c->sample[2]};
    hlr_model *m = built(c->name, model_of(14, (hlr_layer *[]){l, NULL}), c->sample_ndim, shape);
    test_fill(param_of(m, 0, "weight", C), C, 70 + (unsigned long long)_i, 0.5f, 1.5f);
    test_fill(param_of(m, 0, "bias", C), C, 80 + (unsigned long long)_i, -0.5f, 0.5f);
    gradcheck(c->name, m, c->sample_ndim, shape, c->n, FILL_SIGNED, (unsigned long long)(60 + _i));
}
END_TEST

/* The layers in a chain, so that each one's dx feeds another's backward:
 * conv (stride 2, padding 1) - batchnorm2d - tanh - avgpool (padding) -
 * grouped dilated conv - global average - dense - batchnorm1d. */
START_TEST(test_conv_chain_backward_matches_finite_differences)
{
    hlr_layer *ls[] = {
        hlr_conv2d(2, 4, &(hlr_conv2d_options){.kernel = 3, .stride = 2, .padding = 1}),
        hlr_batchnorm2d(4, 1e-5f, 0.1f),
        hlr_tanh(),
        hlr_avgpool2d(3, 1, 1),
        hlr_conv2d(4, 6, &(hlr_conv2d_options){.kernel_h = 2, .kernel_w = 3, .padding = 1, .dilation = 2, .groups = 2}),
        hlr_global_avgpool2d(),
        hlr_dense(6, 5, 1),
        hlr_batchnorm1d(5, 1e-5f, 0.1f),
        NULL};
    int64_t shape[] = {2, 11, 9};
    gradcheck("conv chain", built("conv chain", model_of(15, ls), 3, shape), 3, shape, 3, FILL_SIGNED, 90);
}
END_TEST

/* m, fused (the default) or with every layer on its own, built for (1, side, side). */
static hlr_model *fusion_twin(hlr_model *m, int fused, int64_t side)
{
    if (!fused)
        hlr__model_no_fusion(m);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, side, side}));
    return m;
}

/*
 * conv2d -> relu -> ... with the ReLUs (and the 2x2 max poolings after
 * them) fused into the conv2d and dense layers before them (the default) or
 * kept as layers of their own.  Each way of computing a convolution with
 * and without a fused pooling: the first conv2d (9 taps) runs the direct
 * kernel, the second and third Winograd's, the fourth (2 groups) im2col;
 * the last ReLU is the model's output.
 */
static hlr_model *relu_cnn(int fused)
{
    hlr_layer *ls[] = {hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 4x4x4 */
                       hlr_conv2d(4, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_relu(), /* 6x4x4 */
                       hlr_conv2d(6, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 8x2x2 */
                       hlr_conv2d(8, 8, &(hlr_conv2d_options){.kernel = 1, .groups = 2}),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 8x1x1 */
                       hlr_flatten(),
                       hlr_dense(8, 5, 1),
                       hlr_relu(),
                       hlr_dense(5, 3, 1),
                       hlr_relu(),
                       NULL};
    return fusion_twin(model_of(21, ls), fused, 8);
}

/* Without the max pool, whose choices flip under the finite differences' steps. */
START_TEST(test_fused_relus_backward_matches_finite_differences)
{
    hlr_layer *ls[] = {hlr_conv2d(1, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_relu(),
                       hlr_conv2d(3, 4, &(hlr_conv2d_options){.kernel = 3}),
                       hlr_relu(),
                       hlr_flatten(),
                       hlr_dense(4 * 4 * 4, 5, 1),
                       hlr_relu(),
                       hlr_dense(5, 3, 1),
                       NULL};
    int64_t shape[] = {1, 6, 6};
    fd_eps = 1e-3; /* ReLU's kink: a smaller step crosses it less often */
    gradcheck("fused relus", built("fused relus", model_of(23, ls), 3, shape), 3, shape, 3, FILL_SIGNED, 91);
    fd_eps = FD_EPS;
}
END_TEST

/*
 * m[0] fused and m[1] with separate layers, on the same batch x (N, 1, side,
 * side) and dy (N, 3): training output, dx and every gradient, then the
 * inference output (after the training pass, so with the running
 * statistics it left), bit for bit; returns how many gradients it compared.
 * With `folds`, m[0]'s inference folds batch norms into the convolutions
 * before them (hlr_layer_ops.fold), which is not bit-identical: its
 * inference output is then compared within float rounding.
 * Frees the models.
 */
static int expect_fused_bits(hlr_model *m[2], int64_t N, int64_t side, unsigned long long seed, int folds)
{
    const int64_t D = side * side;
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, side, side}), *dy = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 3});
    hlr_tensor *y[2], *dx[2];
    ck_assert(x && dy);
    test_fill(hlr_tensor_f32(x), N * D, seed, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), N * 3, seed + 1, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        y[k] = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 3});
        dx[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, side, side});
        ck_assert(y[k] && dx[k]);
        ck_assert_ok(hlr_model_forward(m[k], x, y[k], 1));
        ck_assert_ok(hlr_model_backward(m[k], dy, dx[k]));
    }
    test_expect_same_bits("training output", hlr_tensor_f32(y[0]), hlr_tensor_f32(y[1]), N * 3);
    test_expect_same_bits("dx", hlr_tensor_f32(dx[0]), hlr_tensor_f32(dx[1]), N * D);
    int checked = 0;
    for (int li = 0; li < hlr_model_num_layers(m[0]); li++) {
        hlr_layer *a = hlr_model_layer(m[0], li), *b = hlr_model_layer(m[1], li);
        for (int i = 0; i < hlr_layer_param_count(a); i++) {
            const char *name = hlr_layer_param_name(a, i);
            hlr_tensor *ga = hlr_layer_grad(a, name), *gb = hlr_layer_grad(b, name);
            ck_assert(ga && gb);
            test_expect_same_bits(name, hlr_tensor_f32(ga), hlr_tensor_f32(gb), hlr_tensor_numel(ga));
            checked++;
        }
    }
    for (int k = 0; k < 2; k++)
        ck_assert_ok(hlr_model_forward(m[k], x, y[k], 0));
    if (folds)
        for (int64_t i = 0; i < N * 3; i++)
            ck_assert_close(hlr_tensor_f32(y[0])[i], hlr_tensor_f32(y[1])[i], 1e-5, 1e-6);
    else
        test_expect_same_bits("inference output", hlr_tensor_f32(y[0]), hlr_tensor_f32(y[1]), N * 3);
    for (int k = 0; k < 2; k++) {
        hlr_tensor_free(y[k]);
        hlr_tensor_free(dx[k]);
        hlr_model_free(m[k]);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(dy);
    return checked;
}

/*
 * The kernels' 8-float loops (what a CPU without AVX-512 runs, kernels.h) give the bits of their 16-float
 * ones in whichever clone runs: a direct convolution (27 taps), Winograd convolutions, batch norms with a
 * fused ReLU and pooling and one with a fused ReLU alone, a training pass (output, dx, every gradient)
 * and then inference (the batch norms folded into the convolutions), at each width.  Batch norm planes
 * of 480, 120 and 30 floats (the last two with a tail after the last 16), pooled rows of 20 windows
 * (more than 16) and of 10.
 */
START_TEST(test_8_float_loops_give_the_bits_of_16_float_ones)
{
    enum { N = 3, C = 3, H = 12, W = 40, OUT = 3, NX = N * C * H * W };
    /* the gradients: conv2d weights, each batch norm's four parameters (two of them its statistics), dense */
    enum { NG = 8 * C * 9 + 4 * 8 + 6 * 8 * 9 + 4 * 6 + 5 * 6 * 9 + 4 * 5 + 5 * 3 * 10 * OUT + OUT };
    enum { NOUT = 2 * N * OUT + NX + NG };
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, C, H, W}), *dy = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, OUT});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, OUT}), *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, C, H, W});
    ck_assert(x && dy && y && dx);
    test_fill(hlr_tensor_f32(x), NX, 31, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), N * OUT, 32, -1.0f, 1.0f);
    static float got[2][NOUT];
    for (int k = 0; k < 2; k++) {
        hlrk_width_for_tests = k == 0 ? 16 : 8;
        hlr_layer *ls[] = {hlr_conv2d(C, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}), /* direct */
                           hlr_batchnorm2d(8, 1e-5f, 0.1f),
                           hlr_relu(),
                           hlr_maxpool2d(2, 0, 0), /* 8 x 6 x 20 */
                           hlr_conv2d(8, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                           hlr_batchnorm2d(6, 1e-5f, 0.1f),
                           hlr_relu(),
                           hlr_maxpool2d(2, 0, 0), /* 6 x 3 x 10 */
                           hlr_conv2d(6, 5, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                           hlr_batchnorm2d(5, 1e-5f, 0.1f),
                           hlr_relu(), /* fused into the batch norm without a pooling */
                           hlr_flatten(),
                           hlr_dense(5 * 3 * 10, OUT, 1),
                           NULL};
        hlr_model *m = model_of(41, ls);
        ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){C, H, W}));
        float *at = got[k];
        ck_assert_ok(hlr_model_forward(m, x, y, 1));
        ck_assert_ok(hlr_model_backward(m, dy, dx));
        memcpy(at, hlr_tensor_f32(y), sizeof(float) * N * OUT), at += N * OUT;
        memcpy(at, hlr_tensor_f32(dx), sizeof(float) * NX), at += NX;
        for (int li = 0; li < hlr_model_num_layers(m); li++) {
            hlr_layer *l = hlr_model_layer(m, li);
            for (int i = 0; i < hlr_layer_param_count(l); i++) {
                hlr_tensor *g = hlr_layer_grad(l, hlr_layer_param_name(l, i));
                ck_assert(g != NULL);
                memcpy(at, hlr_tensor_f32(g), sizeof(float) * (size_t)hlr_tensor_numel(g)), at += hlr_tensor_numel(g);
            }
        }
        ck_assert_ok(hlr_model_forward(m, x, y, 0));
        memcpy(at, hlr_tensor_f32(y), sizeof(float) * N * OUT), at += N * OUT;
        ck_assert_int_eq(at - got[k], NOUT);
        hlr_model_free(m);
    }
    hlrk_width_for_tests = 0;
    test_expect_same_bits("8-float against 16-float loops", got[1], got[0], NOUT);
    hlr_tensor_free(x);
    hlr_tensor_free(dy);
    hlr_tensor_free(y);
    hlr_tensor_free(dx);
}
END_TEST

START_TEST(test_fused_relus_give_the_bits_of_separate_layers)
{
    hlr_model *m[2] = {relu_cnn(1), relu_cnn(0)};
    ck_assert_int_eq(expect_fused_bits(m, 5, 8, 5, 0), 12); /* weight and bias of 4 conv2d and 2 dense layers */
}
END_TEST

/*
 * A fused pooling must break ties as the pooling layer does (the first
 * maximum; the gradient goes there): conv2d (1 -> 2, 1x1, weight 1 and 2,
 * no bias) -> relu -> maxpool 2 on small integers, where most windows hold
 * several equal maxima, fused and separate; rows of 4 windows and of 20
 * (more than the 16 the kernels take at once).
 */
START_TEST(test_fused_pooling_breaks_ties_as_the_pooling_layer)
{
    enum { N = 3, H = 6 };
    const int W = _i == 0 ? 8 : 40, P = 2 * H * W / 4;
    hlr_model *m[2];
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, H, W});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 2, H / 2, W / 2}), *y[2], *dx[2];
    ck_assert(x && dy);
    float *xd = hlr_tensor_f32(x);
    for (int i = 0; i < N * H * W; i++)
        xd[i] = (float)((i * 7 + i / 5) % 3) - (i % 11 == 0); /* 0, 1, 2 and a few -1 */
    test_fill(hlr_tensor_f32(dy), N * P, 9, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        m[k] = model_of(5, (hlr_layer *[]){hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 1, .no_bias = 1}),
                                           hlr_relu(), hlr_maxpool2d(2, 0, 0), NULL});
        if (k == 1)
            hlr__model_no_fusion(m[k]);
        ck_assert_ok(hlr_model_build(m[k], 3, (int64_t[]){1, H, W}));
        float *w = param_of(m[k], 0, "weight", 2);
        w[0] = 1.0f;
        w[1] = 2.0f;
        y[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 2, H / 2, W / 2});
        dx[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, H, W});
        ck_assert(y[k] && dx[k]);
        ck_assert_ok(hlr_model_forward(m[k], x, y[k], 1));
        ck_assert_ok(hlr_model_backward(m[k], dy, dx[k]));
    }
    test_expect_same_bits("output", hlr_tensor_f32(y[0]), hlr_tensor_f32(y[1]), N * P);
    test_expect_same_bits("dx", hlr_tensor_f32(dx[0]), hlr_tensor_f32(dx[1]), N * H * W);
    test_expect_same_bits("dweight", grad_of(m[0], 0, "weight", 2), grad_of(m[1], 0, "weight", 2), 2);
    for (int k = 0; k < 2; k++) {
        hlr_tensor_free(y[k]);
        hlr_tensor_free(dx[k]);
        hlr_model_free(m[k]);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(dy);
}
END_TEST

/*
 * Batch normalisation takes over the ReLU after it, and the 2x2 max pooling
 * after that where the map's sides are even: the same bits as separate
 * layers, forward and backward, in training and in inference.  Rows of 18
 * windows (more than the 16 the pooling kernels take at once) and of 9; the
 * third stage's pooling (9 -> 4, odd) stays a layer of its own, and the
 * second stage has no pooling.
 */
static hlr_model *bn_relu_cnn(int fused)
{
    hlr_layer *ls[] = {hlr_conv2d(1, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                       hlr_batchnorm2d(3, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 3x18x18 */
                       hlr_conv2d(3, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                       hlr_batchnorm2d(4, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 4x9x9 */
                       hlr_conv2d(4, 5, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_batchnorm2d(5, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* 5x4x4 */
                       hlr_flatten(),
                       hlr_dense(80, 6, 0),
                       hlr_batchnorm1d(6, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_dense(6, 3, 1),
                       NULL};
    return fusion_twin(model_of(29, ls), fused, 36);
}

START_TEST(test_fused_batchnorm_gives_the_bits_of_separate_layers)
{
    hlr_model *m[2] = {bn_relu_cnn(1), bn_relu_cnn(0)};
    /* 3 conv2d (one with a bias), 4 batch norms (weight, bias and their 2 buffers), 2 dense (one with a bias) */
    ck_assert_int_eq(expect_fused_bits(m, 4, 36, 15, 1), 23);
}
END_TEST

/*
 * Inference folds a batch norm into the convolution before it (its ReLU and
 * pooling too): within float rounding of the layers run one by one, for each
 * way of computing a convolution (direct, Winograd, im2col with groups) and
 * for a batch norm with and without a fused ReLU and pooling, with
 * statistics, scale and shift far from their initial values.  The folded
 * weights are kept between passes, so a change of the running statistics, of
 * the batch norm's weight or of the convolution's weights or bias (here a
 * caller's writes) must reach the next pass.
 */
static hlr_model *folding_cnn(int fused)
{
    hlr_layer *ls[] = {hlr_conv2d(2, 4, &(hlr_conv2d_options){.kernel = 2, .no_bias = 1}), /* direct: 4x11x11 */
                       hlr_batchnorm2d(4, 1e-5f, 0.1f),                                    /* nothing fused */
                       hlr_conv2d(4, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 2}), /* Winograd: 6x13x13 */
                       hlr_batchnorm2d(6, 1e-3f, 0.1f),
                       hlr_relu(), /* fused ReLU, odd sides: no pooling */
                       hlr_conv2d(6, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 2}), /* Winograd: 8x15x15 */
                       hlr_batchnorm2d(8, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 2, 0), /* odd: a layer of its own, 8x7x7 */
                       hlr_conv2d(8, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .groups = 2}), /* im2col */
                       hlr_batchnorm2d(8, 1e-5f, 0.1f),
                       hlr_relu(),                                                         /* 8x7x7 */
                       hlr_conv2d(8, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), /* Winograd: 6x7x7 */
                       hlr_relu(), /* conv2d's own ReLU: nothing to fold */
                       hlr_conv2d(6, 5, &(hlr_conv2d_options){.kernel = 1, .padding = 1}), /* direct: 5x9x9 -> 5x8x8 */
                       hlr_avgpool2d(2, 1, 0),
                       hlr_conv2d(5, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), /* Winograd */
                       hlr_batchnorm2d(4, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0),                               /* fused: 4x4x4 */
                       hlr_conv2d(4, 3, &(hlr_conv2d_options){.kernel = 1}), /* direct, 3 channels */
                       hlr_batchnorm2d(3, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0), /* fused: 3x2x2, the output */
                       NULL};
    hlr_model *m = model_of(37, ls);
    if (!fused)
        hlr__model_no_fusion(m);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){2, 12, 12}));
    return m;
}

/* Each batch norm's weight and bias set to the same values in both models, from seed, far from their initial 1
 * and 0 (the convolutions keep the initialisation both models share); then training passes over x, the same
 * bits in both, take the running statistics near x's. */
static void set_batchnorms(hlr_model *m[2], hlr_tensor *x, unsigned long long seed)
{
    for (int li = 0; li < hlr_model_num_layers(m[0]); li++) {
        if (hlr_layer_param_count(hlr_model_layer(m[0], li)) != 4) /* a batch norm's weight, bias, statistics */
            continue;
        for (int k = 0; k < 2; k++) {
            hlr_tensor *w = hlr_layer_param(hlr_model_layer(m[k], li), "weight"),
                       *b = hlr_layer_param(hlr_model_layer(m[k], li), "bias");
            test_fill(hlr_tensor_f32(w), hlr_tensor_numel(w), seed + (unsigned long long)li, 0.5f, 2.0f);
            for (int64_t i = 1; i < hlr_tensor_numel(w); i += 3)
                hlr_tensor_f32(w)[i] *= -1.0f;
            test_fill(hlr_tensor_f32(b), hlr_tensor_numel(b), seed + 50 + (unsigned long long)li, -0.5f, 0.5f);
        }
    }
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 4, (int64_t[]){hlr_tensor_dim(x, 0), 3, 2, 2});
    ck_assert(y != NULL);
    for (int pass = 0; pass < 30; pass++)
        for (int k = 0; k < 2; k++)
            ck_assert_ok(hlr_model_forward(m[k], x, y, 1));
    hlr_tensor_free(y);
}

/* The two models' inference outputs for x, within float rounding; the layer-by-layer one into ref. */
static void expect_folded_close(hlr_model *m[2], const hlr_tensor *x, const char *when, float *ref)
{
    enum { N = 7, OUT = 3 * 2 * 2 };
    hlr_tensor *y[2];
    for (int k = 0; k < 2; k++) {
        y[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 3, 2, 2});
        ck_assert(y[k] != NULL);
        ck_assert_ok(hlr_model_forward(m[k], x, y[k], 0));
    }
    const float *a = hlr_tensor_f32(y[0]), *b = hlr_tensor_f32(y[1]);
    int nonzero = 0;
    for (int64_t i = 0; i < N * OUT; i++) {
        ck_assert_msg(fabs((double)a[i] - b[i]) <= 1e-6 + 1e-5 * fabs((double)b[i]),
                      "%s: output [%lld] folded %.9g, layer by layer %.9g", when, (long long)i, (double)a[i],
                      (double)b[i]);
        nonzero += b[i] != 0.0f;
    }
    ck_assert_msg(nonzero > N * OUT / 4, "%s: only %d of %d outputs are nonzero", when, nonzero, N * OUT);
    memcpy(ref, b, N * OUT * sizeof *ref);
    for (int k = 0; k < 2; k++)
        hlr_tensor_free(y[k]);
}

START_TEST(test_inference_folds_batchnorm_into_the_convolution)
{
    enum { N = 7, OUT = 3 * 2 * 2 };
    hlr_model *m[2] = {folding_cnn(1), folding_cnn(0)};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 2, 12, 12});
    ck_assert(x != NULL);
    test_fill(hlr_tensor_f32(x), N * 2 * 144, 41, -1.0f, 1.0f);
    set_batchnorms(m, x, 43);
    float before[N * OUT], after[N * OUT];
    expect_folded_close(m, x, "first pass", before);
    /* each change alone (every other value from index), in both models, then another pass: a change the
     * output shows */
    static const struct {
        int layer;
        const char *param;
        int index;
        float by;
    } changes[] = {{1, "running_var", 1, 2.5f}, {3, "running_mean", 0, -1.75f}, {6, "weight", 0, -1.75f},
                   {10, "bias", 1, -1.75f},     {0, "weight", 1, -1.75f},       {2, "bias", 0, -1.75f},
                   {16, "weight", 1, -1.75f},   {21, "running_var", 0, 0.25f}};
    for (size_t c = 0; c < sizeof changes / sizeof changes[0]; c++) {
        for (int k = 0; k < 2; k++) {
            hlr_tensor *t = hlr_layer_param(hlr_model_layer(m[k], changes[c].layer), changes[c].param);
            for (int64_t i = changes[c].index; i < hlr_tensor_numel(t); i += 2)
                hlr_tensor_f32(t)[i] *= changes[c].by;
        }
        char when[64];
        snprintf(when, sizeof when, "after a change of layer %d's %s", changes[c].layer, changes[c].param);
        expect_folded_close(m, x, when, after);
        double moved = 0.0;
        for (int i = 0; i < N * OUT; i++)
            moved = fmax(moved, fabs((double)after[i] - before[i]));
        ck_assert_msg(moved > 1e-3, "%s: the output moved by %g only", when, moved);
        memcpy(before, after, sizeof before);
    }
    hlr_tensor_free(x);
    hlr_model_free(m[0]);
    hlr_model_free(m[1]);
}
END_TEST

/* Batch norms with their ReLUs fused, without poolings (whose choices flip under the steps). */
START_TEST(test_fused_batchnorm_relus_backward_matches_finite_differences)
{
    hlr_layer *ls[] = {hlr_conv2d(1, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                       hlr_batchnorm2d(3, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_flatten(),
                       hlr_dense(3 * 6 * 6, 5, 0),
                       hlr_batchnorm1d(5, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_dense(5, 3, 1),
                       NULL};
    int64_t shape[] = {1, 6, 6};
    fd_eps = 3e-4; /* the batch couples every value: 1e-3 crosses a kink here */
    gradcheck("fused batchnorm relus", built("fused batchnorm relus", model_of(31, ls), 3, shape), 3, shape, 4,
              FILL_SIGNED, 92);
    fd_eps = FD_EPS;
}
END_TEST

/* Inference computes each sample on its own, in parts shared among the
 * threads: one sample alone gives the bits it gets inside a batch. */
/* Winograd's transformed filters are kept between passes: a change of the weights (here a caller's write) must
 * reach the next pass, with the bits of a model that had those weights from the start. */
START_TEST(test_winograd_filters_follow_a_change_of_the_weights)
{
    hlr_model *a = TEST_MODEL(3, hlr_conv2d(16, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1})),
              *b = TEST_MODEL(3, hlr_conv2d(16, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}));
    ck_assert_ok(hlr_model_build(a, 3, (int64_t[]){16, 6, 6}));
    ck_assert_ok(hlr_model_build(b, 3, (int64_t[]){16, 6, 6}));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 16, 6, 6});
    hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 8, 6, 6}), *y2 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 8, 6, 6});
    hlr_tensor *y3 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 8, 6, 6});
    test_fill(hlr_tensor_f32(x), 2 * 16 * 36, 4, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(a, x, y1, 0));
    hlr_tensor_f32(hlr_layer_param(hlr_model_layer(a, 0), "weight"))[5] += 0.5f;
    hlr_tensor_f32(hlr_layer_param(hlr_model_layer(b, 0), "weight"))[5] += 0.5f;
    ck_assert_ok(hlr_model_forward(a, x, y2, 0));
    ck_assert_ok(hlr_model_forward(b, x, y3, 0));
    ck_assert(memcmp(hlr_tensor_f32(y1), hlr_tensor_f32(y2), 2 * 8 * 36 * sizeof(float)) != 0);
    test_expect_same_bits("after the change", hlr_tensor_f32(y2), hlr_tensor_f32(y3), 2 * 8 * 36);
    hlr_tensor_free(x);
    hlr_tensor_free(y1);
    hlr_tensor_free(y2);
    hlr_tensor_free(y3);
    hlr_model_free(a);
    hlr_model_free(b);
}
END_TEST

/*
 * The convolutions, poolings and fused ReLUs work sample by sample, so one
 * sample alone gets the bits it gets in a batch of 5.  The dense layers
 * after them need not: a single row goes through sgemv, a batch through
 * sgemm, which also sums in an order that depends on the rows (docs/design.md,
 * "Threads and determinism"); they agree to float rounding.
 */
START_TEST(test_inference_of_one_sample_gives_its_bits_in_a_batch)
{
    hlr_layer *convs[] = {hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                          hlr_relu(),
                          hlr_maxpool2d(2, 0, 0),
                          hlr_conv2d(4, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                          hlr_relu(),
                          hlr_conv2d(6, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                          hlr_relu(),
                          hlr_maxpool2d(2, 0, 0),
                          hlr_conv2d(8, 8, &(hlr_conv2d_options){.kernel = 1, .groups = 2}),
                          hlr_relu(),
                          hlr_flatten(), /* 32 features */
                          NULL};
    hlr_model *m[2] = {fusion_twin(model_of(21, convs), 1, 8), relu_cnn(1)};
    const int64_t N = 5, out[2] = {32, 3};
    for (int k = 0; k < 2; k++) {
        hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, 8, 8});
        hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, out[k]});
        hlr_tensor *x1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, 8, 8});
        hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, out[k]});
        ck_assert(x && y && x1 && y1);
        test_fill(hlr_tensor_f32(x), N * 64, 8, -1.0f, 1.0f);
        ck_assert_ok(hlr_model_forward(m[k], x, y, 0));
        for (int64_t n = 0; n < N; n++) {
            memcpy(hlr_tensor_f32(x1), hlr_tensor_f32(x) + n * 64, 64 * sizeof(float));
            ck_assert_ok(hlr_model_forward(m[k], x1, y1, 0));
            const float *a = hlr_tensor_f32(y1), *b = hlr_tensor_f32(y) + n * out[k];
            if (k == 0)
                test_expect_same_bits("one sample's convolutions", a, b, out[k]);
            else
                for (int64_t i = 0; i < out[k]; i++)
                    ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-6f * (1.0f + fabsf(b[i])),
                                  "one sample through the dense layers [%d]: %.9g against %.9g in the batch", (int)i,
                                  (double)a[i], (double)b[i]);
        }
        hlr_tensor_free(x);
        hlr_tensor_free(y);
        hlr_tensor_free(x1);
        hlr_tensor_free(y1);
        hlr_model_free(m[k]);
    }
}
END_TEST

/* ====================================================================== */
/* Against PyTorch                                                         */
/* ====================================================================== */

/*
 * libhlr computes in float32, torch's values are float64 from the same
 * float32 inputs: a value agrees when |got - want| <= RTOL |want| + ATOL,
 * RTOL about 100 float32 ulps, ATOL for sums that cancel to near zero.
 */
#define RTOL 1e-5
#define ATOL 1e-5

/* Compare n values of a tensor of dims d[0..3] (batch first; unused dims 1),
 * naming the case, the flat index and its coordinates on failure. */
static void expect_close(const char *what, const char *torch, const float *got, const double *want,
                         const int64_t d[4])
{
    int64_t n = d[0] * d[1] * d[2] * d[3];
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) ? isnan(g) : fabs(g - w) <= ATOL + RTOL * fabs(w)) /* NaN where torch has NaN */
            continue;
        ck_abort_msg("%s [%lld] = (%lld, %lld, %lld, %lld) of (%lld, %lld, %lld, %lld): libhlr %.9g, torch %.9g "
                     "(diff %.3g)\n  torch: %s",
                     what, (long long)i, (long long)(i / (d[1] * d[2] * d[3])), (long long)(i / (d[2] * d[3]) % d[1]),
                     (long long)(i / d[3] % d[2]), (long long)(i % d[3]), (long long)d[0], (long long)d[1],
                     (long long)d[2], (long long)d[3], g, w, g - w, torch);
    }
}

static hlr_tensor *tensor_4d(const int64_t d[4], const float *data)
{
    hlr_tensor *t = data ? hlr_tensor_from(HLR_F32, 4, d, data) : hlr_tensor_new(HLR_F32, 4, d);
    ck_assert_msg(t != NULL, "tensor: %s", hlr_last_error());
    return t;
}

static void expect_output_shape(const char *what, hlr_model *m, int ndim, const int64_t *want)
{
    int got_ndim = 0;
    int64_t got[HLR_MAX_DIMS] = {0};
    ck_assert_ok(hlr_model_output_shape(m, &got_ndim, got));
    ck_assert_msg(got_ndim == ndim, "%s: output has %d dimensions, torch %d", what, got_ndim, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_msg(got[i] == want[i], "%s: output dimension %d is %lld, torch %lld", what, i, (long long)got[i],
                      (long long)want[i]);
}

START_TEST(test_conv2d_matches_torch)
{
    const conv_ref_conv *c = &conv_ref_convs[_i];
    char what[128];
    hlr_model *m = built_model_of(fixture_conv(c), 3, (int64_t[]){c->cin, c->h, c->w});
    expect_output_shape(c->name, m, 3, (int64_t[]){c->cout, c->ho, c->wo});
    int64_t wd[4] = {c->cout, c->cin / c->groups, c->kh, c->kw}, bd[4] = {1, 1, 1, c->cout};
    int64_t xd[4] = {c->n, c->cin, c->h, c->w}, yd[4] = {c->n, c->cout, c->ho, c->wo};
    memcpy(param_of(m, 0, "weight", wd[0] * wd[1] * wd[2] * wd[3]), c->weight,
           (size_t)(wd[0] * wd[1] * wd[2] * wd[3]) * sizeof(float));
    if (c->bias)
        memcpy(param_of(m, 0, "bias", c->cout), c->bias_v, (size_t)c->cout * sizeof(float));
    else
        ck_assert_msg(hlr_layer_param(hlr_model_layer(m, 0), "bias") == NULL && hlr_last_status() == HLR_ENOTFOUND,
                      "%s: a conv2d without bias has a \"bias\" parameter", c->name);
    hlr_tensor *x = tensor_4d(xd, c->x), *dx = tensor_4d(xd, NULL);
    hlr_tensor *y = tensor_4d(yd, NULL), *dy = tensor_4d(yd, c->dy);
    fill_nan(hlr_tensor_f32(y), hlr_tensor_numel(y)); /* every output, input gradient and gradient is written */
    fill_nan(hlr_tensor_f32(dx), hlr_tensor_numel(dx));
    poison_grads(m);

    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    snprintf(what, sizeof what, "conv2d %s: output", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(y), c->y, yd);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    snprintf(what, sizeof what, "conv2d %s: grad input", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(dx), c->dx, xd);
    snprintf(what, sizeof what, "conv2d %s: grad weight", c->name);
    expect_close(what, c->torch, grad_of(m, 0, "weight", wd[0] * wd[1] * wd[2] * wd[3]), c->dweight, wd);
    if (c->bias) {
        snprintf(what, sizeof what, "conv2d %s: grad bias", c->name);
        expect_close(what, c->torch, grad_of(m, 0, "bias", c->cout), c->dbias, bd);
    }
    /* Inference gives the same output. */
    fill_nan(hlr_tensor_f32(y), hlr_tensor_numel(y));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    snprintf(what, sizeof what, "conv2d %s: inference output", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(y), c->y, yd);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* Max pooling (ties routed to the first maximum, as torch; a NaN wins its
 * window, the last of two as torch's scan keeps it), average pooling with
 * the padding counted, global average pooling. */
START_TEST(test_pooling_matches_torch)
{
    const conv_ref_pool *c = &conv_ref_pools[_i];
    char what[128];
    hlr_layer *l = pool_of(c);
    hlr_model *m = built_model_of(l, 3, (int64_t[]){c->c, c->h, c->w});
    int64_t xd[4] = {c->n, c->c, c->h, c->w}, yd[4] = {c->n, c->c, c->ho, c->wo};
    if (c->kind == 2)
        expect_output_shape(c->name, m, 1, (int64_t[]){c->c});
    else
        expect_output_shape(c->name, m, 3, (int64_t[]){c->c, c->ho, c->wo});
    hlr_tensor *x = tensor_4d(xd, c->x), *dx = tensor_4d(xd, NULL);
    hlr_tensor *y = c->kind == 2 ? hlr_tensor_new(HLR_F32, 2, (int64_t[]){c->n, c->c}) : tensor_4d(yd, NULL);
    hlr_tensor *dy = c->kind == 2 ? hlr_tensor_from(HLR_F32, 2, (int64_t[]){c->n, c->c}, c->dy) : tensor_4d(yd, c->dy);
    ck_assert(y && dy);
    fill_nan(hlr_tensor_f32(y), hlr_tensor_numel(y)); /* every output and input gradient is written */
    fill_nan(hlr_tensor_f32(dx), hlr_tensor_numel(dx));

    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    snprintf(what, sizeof what, "%s: output", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(y), c->y, yd);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    snprintf(what, sizeof what, "%s: grad input", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(dx), c->dx, xd);
    fill_nan(hlr_tensor_f32(y), hlr_tensor_numel(y));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    snprintf(what, sizeof what, "%s: inference output", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(y), c->y, yd);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_model_free(m);
}
END_TEST

/* BatchNorm2d and BatchNorm1d on (N, C) and (N, C, L): in training the
 * output, the gradients and the running statistics after one step; in eval
 * mode the output from the given running statistics, which stay. */
START_TEST(test_batchnorm_matches_torch)
{
    const conv_ref_bn *c = &conv_ref_bns[_i];
    char what[128];
    const int C = c->sample[0];
    int64_t shape[3] = {c->sample[0], c->sample[1], c->sample[2]};
    hlr_layer *l = c->two_d ? hlr_batchnorm2d(C, c->eps, c->momentum) : hlr_batchnorm1d(C, c->eps, c->momentum);
    hlr_model *m = built_model_of(l, c->sample_ndim, shape);
    memcpy(param_of(m, 0, "weight", C), c->weight, (size_t)C * sizeof(float));
    memcpy(param_of(m, 0, "bias", C), c->bias, (size_t)C * sizeof(float));
    memcpy(param_of(m, 0, "running_mean", C), c->running_mean, (size_t)C * sizeof(float));
    memcpy(param_of(m, 0, "running_var", C), c->running_var, (size_t)C * sizeof(float));
    int64_t full[4] = {c->n, 1, 1, 1}, cd[4] = {1, 1, 1, C};
    for (int i = 0; i < c->sample_ndim; i++)
        full[i + 1] = shape[i];
    int64_t ts[4] = {c->n, shape[0], shape[1], shape[2]};
    hlr_tensor *x = hlr_tensor_from(HLR_F32, c->sample_ndim + 1, ts, c->x);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, c->sample_ndim + 1, ts);
    ck_assert(x && y);
    fill_nan(hlr_tensor_f32(y), hlr_tensor_numel(y));
    poison_grads(m);

    ck_assert_ok(hlr_model_forward(m, x, y, c->training));
    snprintf(what, sizeof what, "%s: output", c->name);
    expect_close(what, c->torch, hlr_tensor_f32(y), c->y, full);
    snprintf(what, sizeof what, "%s: running_mean after the forward", c->name);
    expect_close(what, c->torch, param_of(m, 0, "running_mean", C), c->new_running_mean, cd);
    snprintf(what, sizeof what, "%s: running_var after the forward", c->name);
    expect_close(what, c->torch, param_of(m, 0, "running_var", C), c->new_running_var, cd);
    if (c->training) {
        hlr_tensor *dy = hlr_tensor_from(HLR_F32, c->sample_ndim + 1, ts, c->dy);
        hlr_tensor *dx = hlr_tensor_new(HLR_F32, c->sample_ndim + 1, ts);
        ck_assert(dy && dx);
        fill_nan(hlr_tensor_f32(dx), hlr_tensor_numel(dx));
        ck_assert_ok(hlr_model_backward(m, dy, dx));
        snprintf(what, sizeof what, "%s: grad input", c->name);
        expect_close(what, c->torch, hlr_tensor_f32(dx), c->dx, full);
        snprintf(what, sizeof what, "%s: grad weight", c->name);
        expect_close(what, c->torch, grad_of(m, 0, "weight", C), c->dweight, cd);
        snprintf(what, sizeof what, "%s: grad bias", c->name);
        expect_close(what, c->torch, grad_of(m, 0, "bias", C), c->dbias, cd);
        hlr_tensor_free(dy);
        hlr_tensor_free(dx);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

/*
 * A large batch is shared among the threads, each summing its own part of
 * the weight gradient: batch 160 of (8, 28, 28) must give what the same
 * layer gives one sample at a time; with 2 groups (im2col) and with 1
 * (Winograd, in blocks of 2 samples: 80 blocks per thread).
 */
START_TEST(test_conv2d_large_batch_matches_one_sample_at_a_time)
{
    enum { N = 160, CIN = 8, COUT = 16, H = 28, W = 28 };
    const int groups = _i == 0 ? 2 : 1, KW = COUT * (CIN / groups) * 9;
    const int64_t xs = CIN * H * W, ys = COUT * H * W;
    int64_t shape[] = {CIN, H, W};
    hlr_model *big = built_model_of(
        hlr_conv2d(CIN, COUT, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .groups = groups}), 3, shape);
    hlr_model *one = built_model_of(
        hlr_conv2d(CIN, COUT, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .groups = groups}), 3, shape);
    memcpy(param_of(one, 0, "weight", KW), param_of(big, 0, "weight", KW), KW * sizeof(float));
    memcpy(param_of(one, 0, "bias", COUT), param_of(big, 0, "bias", COUT), COUT * sizeof(float));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, CIN, H, W});
    hlr_tensor *dx = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, CIN, H, W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, COUT, H, W});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, COUT, H, W});
    ck_assert(x && dx && y && dy);
    test_fill(hlr_tensor_f32(x), (long)(N * xs), 5, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), (long)(N * ys), 6, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(big, x, y, 1));
    ck_assert_ok(hlr_model_backward(big, dy, dx));

    hlr_tensor *x1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, CIN, H, W});
    hlr_tensor *dx1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, CIN, H, W});
    hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, COUT, H, W});
    hlr_tensor *dy1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, COUT, H, W});
    ck_assert(x1 && dx1 && y1 && dy1);
    double *dw = calloc((size_t)KW, sizeof *dw), db[COUT] = {0};
    ck_assert_ptr_nonnull(dw);
    for (int64_t n = 0; n < N; n++) {
        memcpy(hlr_tensor_f32(x1), hlr_tensor_f32(x) + n * xs, (size_t)xs * sizeof(float));
        memcpy(hlr_tensor_f32(dy1), hlr_tensor_f32(dy) + n * ys, (size_t)ys * sizeof(float));
        ck_assert_ok(hlr_model_forward(one, x1, y1, 1));
        ck_assert_ok(hlr_model_backward(one, dy1, dx1));
        const float *yb = hlr_tensor_f32(y) + n * ys, *dxb = hlr_tensor_f32(dx) + n * xs;
        const float *ya = hlr_tensor_f32(y1), *dxa = hlr_tensor_f32(dx1);
        for (int64_t i = 0; i < ys; i++) /* ck_assert per element would cost a system call each */
            if (fabs(yb[i] - ya[i]) > 1e-5 + 1e-5 * fabs(ya[i]))
                ck_abort_msg("sample %lld output [%lld]: batch of %d gives %.9g, alone %.9g", (long long)n,
                             (long long)i, N, yb[i], ya[i]);
        for (int64_t i = 0; i < xs; i++)
            if (fabs(dxb[i] - dxa[i]) > 1e-5 + 1e-5 * fabs(dxa[i]))
                ck_abort_msg("sample %lld grad input [%lld]: batch of %d gives %.9g, alone %.9g", (long long)n,
                             (long long)i, N, dxb[i], dxa[i]);
        const float *gw = grad_of(one, 0, "weight", KW), *gb = grad_of(one, 0, "bias", COUT);
        for (int i = 0; i < KW; i++)
            dw[i] += gw[i];
        for (int i = 0; i < COUT; i++)
            db[i] += gb[i];
    }
    const float *gw = grad_of(big, 0, "weight", KW), *gb = grad_of(big, 0, "bias", COUT);
    for (int i = 0; i < KW; i++)
        if (fabs(gw[i] - dw[i]) > 1e-3 + 1e-4 * fabs(dw[i]))
            ck_abort_msg("grad weight [%d]: batch of %d gives %.9g, sum over samples %.9g", i, N, gw[i], dw[i]);
    for (int i = 0; i < COUT; i++)
        ck_assert_msg(fabs(gb[i] - db[i]) <= 1e-3 + 1e-4 * fabs(db[i]),
                      "grad bias [%d]: batch of %d gives %.9g, sum over samples %.9g", i, N, gb[i], db[i]);
    free(dw);
    hlr_tensor_free(x);
    hlr_tensor_free(dx);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(x1);
    hlr_tensor_free(dx1);
    hlr_tensor_free(y1);
    hlr_tensor_free(dy1);
    hlr_model_free(big);
    hlr_model_free(one);
}
END_TEST

/*
 * Winograd's F(2x2, 3x3) against im2col and GEMM for the same layer and
 * data: output, input gradient and parameter gradients, for batches of
 * several blocks, odd output sizes, padding 0 to 2 and a one-pixel output.
 */
static const struct wino_case {
    int64_t n, cin, cout, h, w, pad;
} wino_cases[] = {
    {9, 8, 16, 28, 28, 1}, /* 196 tiles: blocks of 2 samples */
    {40, 64, 10, 7, 7, 1}, /* 16 tiles, an overhanging row and column: blocks of 25 */
    {4, 5, 7, 5, 11, 0},  {2, 4, 3, 6, 6, 2}, {3, 4, 2, 3, 3, 0}, {3, 6, 5, 9, 40, 1},
    {1, 32, 37, 14, 14, 1}, /* 49 tiles, 37 channels: hlrk_wino_products, rows left over */
    {7, 12, 9, 7, 7, 1},    /* 16 tiles: blocks of 4 samples (64 columns) and fewer */
};

START_TEST(test_winograd_matches_im2col)
{
    const struct wino_case *c = &wino_cases[_i];
    const int64_t xs = c->cin * c->h * c->w, ho = c->h + 2 * c->pad - 2, wo = c->w + 2 * c->pad - 2;
    const int64_t ys = c->cout * ho * wo, nw = c->cout * c->cin * 9;
    hlr_model *m[2];
    hlr_tensor *y[2], *dx[2];
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){c->n, c->cin, c->h, c->w});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 4, (int64_t[]){c->n, c->cout, ho, wo});
    ck_assert(x && dy);
    test_fill(hlr_tensor_f32(x), (long)(c->n * xs), 7, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(dy), (long)(c->n * ys), 8, -1.0f, 1.0f);
    for (int k = 0; k < 2; k++) {
        hlr_layer *l =
            hlr_conv2d((int)c->cin, (int)c->cout, &(hlr_conv2d_options){.kernel = 3, .padding = (int)c->pad});
        ck_assert_msg(l != NULL, "%s", hlr_last_error());
        if (k == 1)
            hlr__conv2d_no_winograd(l);
        m[k] = model_of(31, (hlr_layer *[]){l, NULL}); /* the same seed: the same weights */
        ck_assert_ok(hlr_model_build(m[k], 3, (int64_t[]){c->cin, c->h, c->w}));
        y[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){c->n, c->cout, ho, wo});
        dx[k] = hlr_tensor_new(HLR_F32, 4, (int64_t[]){c->n, c->cin, c->h, c->w});
        ck_assert(y[k] && dx[k]);
        fill_nan(hlr_tensor_f32(y[k]), c->n * ys);
        fill_nan(hlr_tensor_f32(dx[k]), c->n * xs);
        ck_assert_ok(hlr_model_forward(m[k], x, y[k], 1));
        ck_assert_ok(hlr_model_backward(m[k], dy, dx[k]));
    }
    const struct {
        const char *what;
        const float *got, *want;
        int64_t n;
        double tol; /* relative to the largest magnitude */
    } checks[] = {
        {"output", hlr_tensor_f32(y[0]), hlr_tensor_f32(y[1]), c->n * ys, 1e-5},
        {"grad input", hlr_tensor_f32(dx[0]), hlr_tensor_f32(dx[1]), c->n * xs, 1e-5},
        {"grad weight", grad_of(m[0], 0, "weight", nw), grad_of(m[1], 0, "weight", nw), nw, 1e-5},
        {"grad bias", grad_of(m[0], 0, "bias", c->cout), grad_of(m[1], 0, "bias", c->cout), c->cout, 1e-6},
    };
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++) {
        double big = 0.0;
        for (int64_t i = 0; i < checks[k].n; i++)
            big = fmax(big, fabs(checks[k].want[i]));
        for (int64_t i = 0; i < checks[k].n; i++) /* ck_assert per element would cost a system call each */
            if (!(fabs(checks[k].got[i] - checks[k].want[i]) <= checks[k].tol * big))
                ck_abort_msg("case %d (%lld, %lld, %lld, %lld) -> %lld, pad %lld: %s [%lld]: Winograd %.9g, im2col "
                             "%.9g (largest %.3g)",
                             _i, (long long)c->n, (long long)c->cin, (long long)c->h, (long long)c->w,
                             (long long)c->cout, (long long)c->pad, checks[k].what, (long long)i, checks[k].got[i],
                             checks[k].want[i], big);
    }
    for (int k = 0; k < 2; k++) {
        hlr_tensor_free(y[k]);
        hlr_tensor_free(dx[k]);
        hlr_model_free(m[k]);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(dy);
}
END_TEST

/* ====================================================================== */
/* Bad configurations                                                      */
/* ====================================================================== */

/* A constructor's NULL with HLR_EINVAL and a message naming the function and the fault. */
static void expect_rejected(const char *call, hlr_layer *l, const char *fn, const char *fragment)
{
    if (l)
        hlr_layer_free(l);
    ck_assert_msg(l == NULL, "%s was accepted", call);
    ck_assert_msg(hlr_last_status() == HLR_EINVAL, "%s: status %d (%s), expected HLR_EINVAL", call,
                  (int)hlr_last_status(), hlr_strerror(hlr_last_status()));
    ck_assert_msg(strstr(hlr_last_error(), fn) && strstr(hlr_last_error(), fragment),
                  "%s: message \"%s\" does not name %s and \"%s\"", call, hlr_last_error(), fn, fragment);
}

static void expect_accepted(const char *call, hlr_layer *l)
{
    ck_assert_msg(l != NULL, "%s was refused: %s", call, hlr_last_error());
    hlr_layer_free(l);
}

#define REJECTED(call, fn, fragment) expect_rejected(#call, call, fn, fragment)
#define ACCEPTED(call) expect_accepted(#call, call)

START_TEST(test_conv2d_constructor_rejects_bad_arguments)
{
    /* hlr_conv2d(in, out, options): 0 is the default of every option but the kernel's size */
    REJECTED(hlr_conv2d(3, 4, &(hlr_conv2d_options){.kernel = 3, .groups = 2}), "hlr_conv2d", "groups 2 must divide");
    REJECTED(hlr_conv2d(4, 3, &(hlr_conv2d_options){.kernel = 3, .groups = 2}), "hlr_conv2d", "groups 2 must divide");
    REJECTED(hlr_conv2d(6, 4, &(hlr_conv2d_options){.kernel = 3, .groups = 3}), "hlr_conv2d", "groups 3 must divide");
    REJECTED(hlr_conv2d(1, 1, NULL), "hlr_conv2d", "options is NULL");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.padding = 1}), "hlr_conv2d", "no kernel size");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel_h = 0, .kernel_w = 3}), "hlr_conv2d", "no kernel size");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel_h = -1, .kernel_w = 3}), "hlr_conv2d", "kernel (-1, 3)");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel_h = 3, .kernel_w = -2}), "hlr_conv2d", "kernel (3, -2)");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel = -3}), "hlr_conv2d", "kernel (-3, -3)");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel = 3, .padding = -1}), "hlr_conv2d", "padding -1");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel = 3, .stride = -1}), "hlr_conv2d", "stride -1");
    REJECTED(hlr_conv2d(1, 1, &(hlr_conv2d_options){.kernel = 3, .dilation = -1}), "hlr_conv2d", "dilation -1");
    REJECTED(hlr_conv2d(2, 2, &(hlr_conv2d_options){.kernel = 3, .groups = -2}), "hlr_conv2d", "groups -2");
    REJECTED(hlr_conv2d(0, 2, &(hlr_conv2d_options){.kernel = 3}), "hlr_conv2d", "channels (0, 2)");
    REJECTED(hlr_conv2d(2, -1, &(hlr_conv2d_options){.kernel = 3}), "hlr_conv2d", "channels (2, -1)");
    ACCEPTED(hlr_conv2d(
        6, 9,
        &(hlr_conv2d_options){
            .kernel_h = 1, .kernel_w = 5, .stride = 4, .padding = 7, .dilation = 3, .groups = 3, .no_bias = 1}));
}
END_TEST

START_TEST(test_pool_constructors_reject_bad_arguments)
{
    REJECTED(hlr_maxpool2d(2, 2, 2), "hlr_maxpool2d", "padding 2");
    REJECTED(hlr_maxpool2d(3, 1, 2), "hlr_maxpool2d", "padding 2");
    REJECTED(hlr_avgpool2d(3, 2, 2), "hlr_avgpool2d", "padding 2");
    REJECTED(hlr_avgpool2d(5, 1, 3), "hlr_avgpool2d", "padding 3");
    REJECTED(hlr_maxpool2d(0, 1, 0), "hlr_maxpool2d", "kernel 0");
    REJECTED(hlr_avgpool2d(0, 0, 0), "hlr_avgpool2d", "kernel 0");
    REJECTED(hlr_maxpool2d(2, -1, 0), "hlr_maxpool2d", "stride -1");
    REJECTED(hlr_avgpool2d(2, 2, -1), "hlr_avgpool2d", "padding -1");
    ACCEPTED(hlr_maxpool2d(2, 2, 1)); /* padding = kernel / 2 is allowed, as in torch */
    ACCEPTED(hlr_avgpool2d(5, 0, 2));
    ACCEPTED(hlr_global_avgpool2d());
    REJECTED(hlr_maxpool2d_hw(2, 1, 2, 1, 0, 1), "hlr_maxpool2d_hw", "padding 0x1");
    REJECTED(hlr_maxpool2d_hw(2, 0, 2, 1, 0, 0), "hlr_maxpool2d_hw", "kernel 2x0");
    REJECTED(hlr_avgpool2d_hw(3, 2, 1, -2, 1, 1), "hlr_avgpool2d_hw", "stride 1x-2");
    REJECTED(hlr_avgpool2d_hw(3, 70000, 1, 1, 1, 0), "hlr_avgpool2d_hw", "kernel 3x70000");
    REJECTED(hlr_maxpool2d_hw(1, 3, 1, 2, -1, 1), "hlr_maxpool2d_hw", "padding -1x1");
    ACCEPTED(hlr_maxpool2d_hw(2, 1, 0, 0, 1, 0)); /* stride 0 is each axis's kernel */
    ACCEPTED(hlr_avgpool2d_hw(1, 5, 1, 3, 0, 2));
}
END_TEST

START_TEST(test_batchnorm_constructors_reject_bad_arguments)
{
    REJECTED(hlr_batchnorm2d(0, 1e-5f, 0.1f), "hlr_batchnorm2d", "num_features >= 1 (got 0)");
    REJECTED(hlr_batchnorm1d(-3, 1e-5f, 0.1f), "hlr_batchnorm1d", "num_features >= 1 (got -3)");
    REJECTED(hlr_batchnorm2d(3, 0.0f, 0.1f), "hlr_batchnorm2d", "eps > 0 (got 0)");
    REJECTED(hlr_batchnorm1d(3, -1e-5f, 0.1f), "hlr_batchnorm1d", "eps > 0 (got -1e-05)");
    REJECTED(hlr_batchnorm1d(3, NAN, 0.1f), "hlr_batchnorm1d", "eps > 0 (got nan)");
    REJECTED(hlr_batchnorm2d(3, INFINITY, 0.1f), "hlr_batchnorm2d", "eps > 0 (got inf)");
    REJECTED(hlr_batchnorm2d(3, 1e-5f, 1.5f), "hlr_batchnorm2d", "momentum in [0, 1] (got 1.5)");
    REJECTED(hlr_batchnorm1d(3, 1e-5f, -0.1f), "hlr_batchnorm1d", "momentum in [0, 1] (got -0.1)");
    REJECTED(hlr_batchnorm1d(3, 1e-5f, NAN), "hlr_batchnorm1d", "momentum in [0, 1] (got nan)");
    ACCEPTED(hlr_batchnorm2d(3, 1e-5f, 0.0f));
    ACCEPTED(hlr_batchnorm1d(3, 1e-3f, 1.0f));
}
END_TEST

/*
 * A model of `layers` (NULL-terminated) built for samples of `shape` fails
 * with HLR_ESHAPE, a message naming `layer` (e.g. "conv2d (layer 1)") and
 * containing `fragment`; the model is freed.
 */
static void expect_build_fails(hlr_layer *const *layers, int ndim, const int64_t *shape, const char *layer,
                               const char *fragment)
{
    hlr_model *m = model_of(3, layers);
    hlr_status st = hlr_model_build(m, ndim, shape);
    ck_assert_msg(st == HLR_ESHAPE, "building for %s: status %d (%s), expected HLR_ESHAPE; message: %s", layer,
                  (int)st, hlr_strerror(st), hlr_last_error());
    ck_assert_msg(strstr(hlr_last_error(), layer) && strstr(hlr_last_error(), fragment),
                  "build error \"%s\" does not name \"%s\" and \"%s\"", hlr_last_error(), layer, fragment);
    ck_assert_int_eq(hlr_model_param_count(m), 0);
    hlr_model_free(m);
}

START_TEST(test_conv2d_kernel_larger_than_padded_input_fails_at_build)
{
    /* padded 6 x 11 against a 7 x 3 kernel */
    expect_build_fails(
        (hlr_layer *[]){hlr_relu(), hlr_conv2d(2, 4, &(hlr_conv2d_options){.kernel_h = 7, .kernel_w = 3, .padding = 1}),
                        NULL},
        3, (int64_t[]){2, 4, 9}, "conv2d (layer 1)", "does not fit the padded input 6x11");
    /* dilation 3 spreads a 3 x 3 kernel over 7 x 7 */
    expect_build_fails((hlr_layer *[]){hlr_conv2d(2, 2, &(hlr_conv2d_options){.kernel = 3, .dilation = 3}), NULL}, 3,
                       (int64_t[]){2, 6, 9}, "conv2d (layer 0)", "does not fit");
    /* the first convolution shrinks 5 x 5 to 3 x 3, too small for the second's 5 x 5 */
    expect_build_fails((hlr_layer *[]){hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3}),
                                       hlr_conv2d(4, 4, &(hlr_conv2d_options){.kernel = 5}), NULL},
                       3, (int64_t[]){1, 5, 5}, "conv2d (layer 1)", "does not fit");
}
END_TEST

START_TEST(test_conv2d_wrong_channel_count_fails_at_build)
{
    expect_build_fails((hlr_layer *[]){hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                                       hlr_conv2d(3, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), NULL},
                       3, (int64_t[]){1, 8, 8}, "conv2d (layer 1)", "(3, H, W)");
    expect_build_fails((hlr_layer *[]){hlr_conv2d(3, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), NULL}, 3,
                       (int64_t[]){1, 28, 28}, "conv2d (layer 0)", "(1, 28, 28)");
    /* a flattened input has no channels to convolve */
    expect_build_fails(
        (hlr_layer *[]){hlr_flatten(), hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), NULL}, 3,
        (int64_t[]){1, 8, 8}, "conv2d (layer 1)", "(64)");
}
END_TEST

START_TEST(test_pooling_and_batchnorm_shape_errors_fail_at_build)
{
    expect_build_fails((hlr_layer *[]){hlr_relu(), hlr_maxpool2d(4, 1, 0), NULL}, 3, (int64_t[]){2, 3, 3},
                       "maxpool2d (layer 1)", "does not fit");
    expect_build_fails((hlr_layer *[]){hlr_relu(), hlr_avgpool2d(5, 1, 1), NULL}, 3, (int64_t[]){1, 2, 3},
                       "avgpool2d (layer 1)", "does not fit");
    expect_build_fails((hlr_layer *[]){hlr_flatten(), hlr_maxpool2d(2, 2, 0), NULL}, 3, (int64_t[]){1, 4, 4},
                       "maxpool2d (layer 1)", "(C, H, W)");
    expect_build_fails((hlr_layer *[]){hlr_flatten(), hlr_global_avgpool2d(), NULL}, 3, (int64_t[]){1, 4, 4},
                       "global_avgpool2d (layer 1)", "(C, H, W)");
    expect_build_fails((hlr_layer *[]){hlr_relu(), hlr_batchnorm2d(4, 1e-5f, 0.1f), NULL}, 3, (int64_t[]){3, 5, 5},
                       "batchnorm2d (layer 1)", "(3, 5, 5)");
    expect_build_fails((hlr_layer *[]){hlr_relu(), hlr_batchnorm2d(3, 1e-5f, 0.1f), NULL}, 2, (int64_t[]){3, 5},
                       "batchnorm2d (layer 1)", "(3, 5)");
    expect_build_fails((hlr_layer *[]){hlr_relu(), hlr_batchnorm1d(3, 1e-5f, 0.1f), NULL}, 3, (int64_t[]){3, 4, 4},
                       "batchnorm1d (layer 1)", "(3, 4, 4)");
    expect_build_fails((hlr_layer *[]){hlr_dense(6, 5, 1), hlr_batchnorm1d(4, 1e-5f, 0.1f), NULL}, 1,
                       (int64_t[]){6}, "batchnorm1d (layer 1)", "(5)");
}
END_TEST

/* ====================================================================== */
/* Batch norm's buffers                                                    */
/* ====================================================================== */

/* conv - batchnorm2d - flatten - dense - batchnorm1d on (2, 5, 5); layers 1 and 4 hold buffers. */
static hlr_model *bn_model(void)
{
    hlr_model *m = model_of(21, (hlr_layer *[]){hlr_conv2d(2, 3, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                                                hlr_batchnorm2d(3, 1e-5f, 0.1f), hlr_flatten(), hlr_dense(75, 4, 1),
                                                hlr_batchnorm1d(4, 1e-5f, 0.1f), NULL});
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){2, 5, 5}));
    return m;
}

static hlr_optimizer *optimizer_case(int i, const char **label)
{
    static const char *const labels[] = {"SGD(lr 0.1, momentum 0.9, weight decay 0.1)",
                                         "SGD(lr 0.1, Nesterov momentum 0.9)", "Adam(lr 0.01, weight decay 0.1)",
                                         "AdamW(lr 0.01, weight decay 0.01)",
                                         "SGD(lr 0.5) with gradient clipping at norm 1"};
    hlr_optimizer *o = NULL;
    switch (i) {
    case 0: o = hlr_sgd(0.1f, 0.9f, 0, 0.1f); break;
    case 1: o = hlr_sgd(0.1f, 0.9f, 1, 0.0f); break;
    case 2: o = hlr_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.1f); break;
    case 3: o = hlr_adamw(0.01f, 0.9f, 0.999f, 1e-8f, 0.01f); break;
    default:
        o = hlr_sgd(0.5f, 0.0f, 0, 0.0f);
        ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
        break;
    }
    ck_assert_ptr_nonnull(o);
    *label = labels[i];
    return o;
}

/*
 * The running statistics are buffers: with a gradient written into their
 * gradient views (which backward never fills), every optimizer steps the
 * weights and leaves the statistics bit for bit as the forward set them.
 */
START_TEST(test_optimizers_never_change_batchnorm_running_statistics)
{
    const char *label = NULL;
    hlr_optimizer *o = optimizer_case(_i, &label);
    hlr_model *m = bn_model();
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){4, 2, 5, 5});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 4});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 4});
    ck_assert(x && y && dy);
    test_fill(hlr_tensor_f32(x), 200, 31, -1.0f, 2.0f);
    test_fill(hlr_tensor_f32(dy), 16, 32, -1.0f, 1.0f);
    static const int bn_layer[2] = {1, 4}, channels[2] = {3, 4};
    static const char *const buffers[2] = {"running_mean", "running_var"};
    for (int step = 1; step <= 3; step++) {
        ck_assert_ok(hlr_model_forward(m, x, y, 1));
        ck_assert_ok(hlr_model_backward(m, dy, NULL));
        float before[2][2][4], weight_before[2][4];
        for (int b = 0; b < 2; b++) {
            memcpy(weight_before[b], param_of(m, bn_layer[b], "weight", channels[b]),
                   (size_t)channels[b] * sizeof(float));
            for (int k = 0; k < 2; k++) {
                memcpy(before[b][k], param_of(m, bn_layer[b], buffers[k], channels[b]),
                       (size_t)channels[b] * sizeof(float));
                float *g = grad_of(m, bn_layer[b], buffers[k], channels[b]);
                for (int c = 0; c < channels[b]; c++)
                    g[c] = 5.0f + (float)c;
            }
        }
        ck_assert_ok(hlr_optimizer_step(o, m));
        for (int b = 0; b < 2; b++) {
            const float *w = param_of(m, bn_layer[b], "weight", channels[b]);
            int moved = 0;
            for (int c = 0; c < channels[b]; c++)
                moved |= w[c] != weight_before[b][c];
            ck_assert_msg(moved, "%s step %d: layer %d weight did not change, so nothing was tested", label, step,
                          bn_layer[b]);
            for (int k = 0; k < 2; k++) {
                const float *v = param_of(m, bn_layer[b], buffers[k], channels[b]);
                for (int c = 0; c < channels[b]; c++)
                    ck_assert_msg(memcmp(&v[c], &before[b][k][c], sizeof(float)) == 0,
                                  "%s step %d: layer %d %s[%d] changed from %.9g to %.9g", label, step, bn_layer[b],
                                  buffers[k], c, before[b][k][c], v[c]);
            }
        }
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* Clipping measures the trained gradients only: huge gradients on the
 * buffers must not shrink a step whose real gradient norm is below max_norm. */
START_TEST(test_gradient_clipping_ignores_batchnorm_buffers)
{
    hlr_model *m = built_model_of(hlr_batchnorm1d(4, 1e-5f, 0.1f), 1, (int64_t[]){4});
    hlr_optimizer *o = hlr_sgd(1.0f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    float *gw = grad_of(m, 0, "weight", 4), *gb = grad_of(m, 0, "bias", 4);
    float *gm = grad_of(m, 0, "running_mean", 4), *gv = grad_of(m, 0, "running_var", 4);
    for (int c = 0; c < 4; c++) {
        gw[c] = 0.1f; /* with the bias: norm 0.22, no clipping */
        gb[c] = -0.05f;
        gm[c] = 1e6f;
        gv[c] = -1e6f;
    }
    ck_assert_ok(hlr_optimizer_step(o, m));
    const float *w = param_of(m, 0, "weight", 4), *b = param_of(m, 0, "bias", 4);
    const float *rm = param_of(m, 0, "running_mean", 4), *rv = param_of(m, 0, "running_var", 4);
    for (int c = 0; c < 4; c++) {
        ck_assert_close(w[c], 0.9, 1e-6, 1e-7);
        ck_assert_close(b[c], 0.05, 1e-6, 1e-7);
        ck_assert_msg(rm[c] == 0.0f && rv[c] == 1.0f, "running statistics [%d] moved to %.9g, %.9g", c, rm[c], rv[c]);
    }
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* hlr_model_param_count counts trainable scalars: batch norm contributes its
 * weight and bias (2 C), not its running statistics. */
START_TEST(test_param_count_leaves_out_batchnorm_buffers)
{
    hlr_model *m = bn_model();
    /* conv 3*2*3*3 + 3, batchnorm2d 2*3, dense 4*75 + 4, batchnorm1d 2*4 */
    int64_t want = 54 + 3 + 6 + 300 + 4 + 8;
    ck_assert_msg(hlr_model_param_count(m) == want, "hlr_model_param_count = %lld, expected %lld trainable scalars",
                  (long long)hlr_model_param_count(m), (long long)want);
    hlr_model_free(m);
}
END_TEST

/*
 * After a training batch, inference normalises with the running statistics
 * (y = weight (x - running_mean) / sqrt(running_var + eps) + bias) and
 * leaves them as they are.  Momentum 0 keeps the initial statistics through
 * training; momentum 1 replaces them with the batch's (unbiased variance).
 */
START_TEST(test_batchnorm_inference_uses_and_keeps_running_statistics)
{
    const float momenta[3] = {0.1f, 0.0f, 1.0f};
    enum { N = 4, C = 3, S = 16 };
    float xv[N * C * S], x2v[N * C * S];
    test_fill(xv, N * C * S, 41, -1.0f, 3.0f);
    test_fill(x2v, N * C * S, 42, -2.0f, 2.0f);
    for (int k = 0; k < 3; k++) {
        hlr_model *m = built_model_of(hlr_batchnorm2d(C, 1e-3f, momenta[k]), 3, (int64_t[]){C, 4, 4});
        test_fill(param_of(m, 0, "weight", C), C, 43, 0.5f, 1.5f);
        test_fill(param_of(m, 0, "bias", C), C, 44, -0.5f, 0.5f);
        hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){N, C, 4, 4}, xv);
        hlr_tensor *x2 = hlr_tensor_from(HLR_F32, 4, (int64_t[]){N, C, 4, 4}, x2v);
        hlr_tensor *y = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, C, 4, 4});
        ck_assert(x && x2 && y);
        ck_assert_ok(hlr_model_forward(m, x, y, 1));
        float rm[C], rv[C];
        memcpy(rm, param_of(m, 0, "running_mean", C), sizeof rm);
        memcpy(rv, param_of(m, 0, "running_var", C), sizeof rv);
        for (int c = 0; c < C; c++) {
            double sum = 0, sq = 0;
            for (int n = 0; n < N; n++)
                for (int s = 0; s < S; s++)
                    sum += xv[(n * C + c) * S + s];
            double mu = sum / (N * S);
            for (int n = 0; n < N; n++)
                for (int s = 0; s < S; s++)
                    sq += (xv[(n * C + c) * S + s] - mu) * (xv[(n * C + c) * S + s] - mu);
            double var = sq / (N * S - 1), mom = momenta[k];
            ck_assert_close(rm[c], (1 - mom) * 0.0 + mom * mu, 1e-5, 1e-6);
            ck_assert_close(rv[c], (1 - mom) * 1.0 + mom * var, 1e-5, 1e-6);
        }
        const float *w = param_of(m, 0, "weight", C), *b = param_of(m, 0, "bias", C);
        for (int rep = 0; rep < 2; rep++) {
            ck_assert_ok(hlr_model_forward(m, x2, y, 0));
            const float *yv = hlr_tensor_f32(y);
            for (int i = 0; i < N * C * S; i++) {
                int c = i / S % C;
                double want = w[c] * (x2v[i] - (double)rm[c]) / sqrt((double)rv[c] + 1e-3) + b[c];
                ck_assert_msg(fabs(yv[i] - want) <= 1e-5 + 1e-5 * fabs(want),
                              "momentum %g, inference output [%d]: %.9g, expected %.9g from the running statistics",
                              (double)momenta[k], i, yv[i], want);
            }
            for (int c = 0; c < C; c++)
                ck_assert_msg(param_of(m, 0, "running_mean", C)[c] == rm[c] &&
                                  param_of(m, 0, "running_var", C)[c] == rv[c],
                              "momentum %g: inference changed the running statistics of channel %d",
                              (double)momenta[k], c);
        }
        hlr_tensor_free(x);
        hlr_tensor_free(x2);
        hlr_tensor_free(y);
        hlr_model_free(m);
    }
}
END_TEST

/* ====================================================================== */
/* Training                                                                */
/* ====================================================================== */

enum { IMG = 12, NCLASS = 3, NTRAIN = 96 };

/* 12 x 12 images of a bar, horizontal (class 0), vertical (1) or diagonal
 * (2), at a random place, over noise in [0, 0.3). */
static void make_bars(float *x, int32_t *labels, int n, unsigned long long seed)
{
    unsigned long long s = seed;
    test_fill(x, (long)n * IMG * IMG, seed + 1, 0.0f, 0.3f);
    for (int i = 0; i < n; i++) {
        int cls = i % NCLASS, at = 2 + (int)(test_rand(&s) * (IMG - 4));
        float *img = x + (int64_t)i * IMG * IMG;
        for (int t = 0; t < IMG; t++) {
            int r = cls == 0 ? at : t, c = cls == 1 ? at : cls == 0 ? t : (t + at) % IMG;
            img[r * IMG + c] += 1.0f;
        }
        labels[i] = cls;
    }
}

/*
 * conv (3x3, pad 1) - bn2d - relu - maxpool 2 - grouped conv without bias -
 * bn2d - relu - avgpool (3, stride 2, pad 1) - dilated conv - relu - global
 * average - dense - bn1d - relu - dense: it learns the bars, and after the
 * first batch (which sizes the buffers and the optimizer state) training,
 * a smaller last batch, inference and prediction allocate nothing.
 */
START_TEST(test_cnn_trains_without_allocating_per_batch)
{
    hlr_layer *ls[] = {hlr_conv2d(1, 6, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                       hlr_batchnorm2d(6, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_maxpool2d(2, 0, 0),
                       hlr_conv2d(6, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .groups = 2, .no_bias = 1}),
                       hlr_batchnorm2d(8, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_avgpool2d(3, 2, 1),
                       hlr_conv2d(8, 12, &(hlr_conv2d_options){.kernel = 3, .padding = 2, .dilation = 2}),
                       hlr_relu(),
                       hlr_global_avgpool2d(),
                       hlr_dense(12, 16, 1),
                       hlr_batchnorm1d(16, 1e-5f, 0.1f),
                       hlr_relu(),
                       hlr_dense(16, NCLASS, 1),
                       NULL};
    hlr_model *m = model_of(5, ls);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, IMG, IMG}));
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);

    float *xv = malloc((size_t)NTRAIN * IMG * IMG * sizeof *xv);
    int32_t lv[NTRAIN];
    ck_assert_ptr_nonnull(xv);
    make_bars(xv, lv, NTRAIN, 77);
    hlr_dataset *d = hlr_dataset_from(3, (int64_t[]){1, IMG, IMG}, NTRAIN, xv, lv, NCLASS);
    ck_assert_ptr_nonnull(d);
    enum { B = 32 };
    hlr_tensor *xb[NTRAIN / B], *lb[NTRAIN / B];
    for (int k = 0; k < NTRAIN / B; k++) {
        xb[k] = hlr_tensor_from(HLR_F32, 4, (int64_t[]){B, 1, IMG, IMG}, xv + (int64_t)k * B * IMG * IMG);
        lb[k] = hlr_tensor_from(HLR_I32, 1, (int64_t[]){B}, lv + k * B);
        ck_assert(xb[k] && lb[k]);
    }
    hlr_tensor *xs = hlr_tensor_from(HLR_F32, 4, (int64_t[]){7, 1, IMG, IMG}, xv);
    hlr_tensor *ls7 = hlr_tensor_from(HLR_I32, 1, (int64_t[]){7}, lv);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){B, NCLASS});
    ck_assert(xs && ls7 && y);
    int32_t cls[B];

    hlr_metrics before;
    ck_assert_ok(hlr_model_evaluate(m, d, 32, 1, &before, NULL));
    float first = 0.0f, loss = 0.0f;
    ck_assert_ok(hlr_model_train_batch(m, o, xb[0], lb[0], &first)); /* sizes buffers and optimizer state */
    long allocs = atomic_load(&hlr__alloc_count);
    for (int round = 0; round < 15; round++) {
        for (int k = 0; k < NTRAIN / B; k++)
            ck_assert_ok(hlr_model_train_batch(m, o, xb[k], lb[k], &loss));
        ck_assert_ok(hlr_model_train_batch(m, o, xs, ls7, NULL)); /* a smaller last batch */
        ck_assert_ok(hlr_model_forward(m, xb[0], y, 0));
        ck_assert_ok(hlr_model_predict(m, xs, cls, NULL));
    }
    long spent = atomic_load(&hlr__alloc_count) - allocs;
    ck_assert_msg(spent == 0, "%ld allocations in 15 rounds of CNN training and inference", spent);

    hlr_metrics after;
    ck_assert_ok(hlr_model_evaluate(m, d, 32, 1, &after, NULL));
    ck_assert_msg(after.loss < 0.5 * before.loss && after.accuracy >= 0.9,
                  "the CNN did not learn the bars: loss %.4f -> %.4f (first batch %.4f, last %.4f), accuracy %.3f -> "
                  "%.3f",
                  before.loss, after.loss, (double)first, (double)loss, before.accuracy, after.accuracy);

    /* fit: its set-up allocates, its epochs do not, so 1 and 3 epochs allocate
     * alike (after a first fit, which may add what a model keeps for good). */
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.batch_size = B;
    fo.validation_split = 0.25;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    long counts[2];
    for (int k = 0; k < 2; k++) {
        fo.epochs = k == 0 ? 1 : 3;
        long b0 = atomic_load(&hlr__alloc_count);
        ck_assert_ok(hlr_model_fit(m, o, d, &fo));
        counts[k] = atomic_load(&hlr__alloc_count) - b0;
    }
    ck_assert_msg(counts[0] == counts[1], "fit allocated %ld times for 1 epoch, %ld for 3", counts[0], counts[1]);

    for (int k = 0; k < NTRAIN / B; k++) {
        hlr_tensor_free(xb[k]);
        hlr_tensor_free(lb[k]);
    }
    hlr_tensor_free(xs);
    hlr_tensor_free(ls7);
    hlr_tensor_free(y);
    hlr_dataset_free(d);
    free(xv);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* ====================================================================== */

Suite *suite_conv(void)
{
    Suite *s = suite_create("conv");

    TCase *tc = tcase_create("finite_differences");
    tcase_add_loop_test(tc, test_conv2d_backward_matches_finite_differences, 0, CONV_REF_NCONV);
    tcase_add_test(tc, test_conv2d_stride_beyond_kernel_matches_finite_differences);
    tcase_add_loop_test(tc, test_pooling_backward_matches_finite_differences, 0, CONV_REF_NPOOL);
    tcase_add_loop_test(tc, test_batchnorm_training_backward_matches_finite_differences, 0, bn_training_cases());
    tcase_add_test(tc, test_conv_chain_backward_matches_finite_differences);
    tcase_add_test(tc, test_fused_relus_backward_matches_finite_differences);
    tcase_add_test(tc, test_fused_batchnorm_relus_backward_matches_finite_differences);
    tcase_set_timeout(tc, 60); /* well under a second each, but sanitizer builds are slower */
    suite_add_tcase(s, tc);

    tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_conv2d_matches_torch, 0, CONV_REF_NCONV);
    tcase_add_loop_test(tc, test_pooling_matches_torch, 0, CONV_REF_NPOOL);
    tcase_add_loop_test(tc, test_batchnorm_matches_torch, 0, CONV_REF_NBN);
    tcase_add_loop_test(tc, test_conv2d_large_batch_matches_one_sample_at_a_time, 0, 2);
    tcase_add_loop_test(tc, test_winograd_matches_im2col, 0, (int)(sizeof wino_cases / sizeof wino_cases[0]));
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("fusion");
    tcase_add_test(tc, test_fused_relus_give_the_bits_of_separate_layers);
    tcase_add_test(tc, test_8_float_loops_give_the_bits_of_16_float_ones);
    tcase_add_loop_test(tc, test_fused_pooling_breaks_ties_as_the_pooling_layer, 0, 2);
    tcase_add_test(tc, test_inference_of_one_sample_gives_its_bits_in_a_batch);
    tcase_add_test(tc, test_winograd_filters_follow_a_change_of_the_weights);
    tcase_add_test(tc, test_fused_batchnorm_gives_the_bits_of_separate_layers);
    tcase_add_test(tc, test_inference_folds_batchnorm_into_the_convolution);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_configurations");
    tcase_add_test(tc, test_conv2d_constructor_rejects_bad_arguments);
    tcase_add_test(tc, test_pool_constructors_reject_bad_arguments);
    tcase_add_test(tc, test_batchnorm_constructors_reject_bad_arguments);
    tcase_add_test(tc, test_conv2d_kernel_larger_than_padded_input_fails_at_build);
    tcase_add_test(tc, test_conv2d_wrong_channel_count_fails_at_build);
    tcase_add_test(tc, test_pooling_and_batchnorm_shape_errors_fail_at_build);
    suite_add_tcase(s, tc);

    tc = tcase_create("buffers");
    tcase_add_loop_test(tc, test_optimizers_never_change_batchnorm_running_statistics, 0, 5);
    tcase_add_test(tc, test_gradient_clipping_ignores_batchnorm_buffers);
    tcase_add_test(tc, test_param_count_leaves_out_batchnorm_buffers);
    tcase_add_test(tc, test_batchnorm_inference_uses_and_keeps_running_statistics);
    suite_add_tcase(s, tc);

    tc = tcase_create("training");
    tcase_add_test(tc, test_cnn_trains_without_allocating_per_batch);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads"); /* also under ThreadSanitizer (make tsan) */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_poolings_give_the_same_bits_on_one_thread_and_three);
    tcase_add_test(tc, test_one_image_split_among_threads_gives_the_same_bits);
    suite_add_tcase(s, tc);
    return s;
}

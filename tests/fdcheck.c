/*
 * fdcheck.c -- the finite-difference gradient check of fdcheck.h (one copy
 * for the attention and transformer suites).
 */
#include "fdcheck.h"

#include "testutil.h"
#include "testutil_internal.h" /* the model's generator, to replay dropout masks */

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The library's allocation counter (internal; tests link the static library). */
extern _Atomic long hlr__alloc_count;

void expect_learns_without_allocating(hlr_model *m, hlr_optimizer *o, const hlr_tensor *x, const hlr_tensor *labels,
                                      int steps)
{
    ck_assert_ok(hlr_model_train_batch(m, o, x, labels, NULL));
    long before = atomic_load(&hlr__alloc_count);
    float first = 0, loss = 0;
    for (int k = 0; k < steps; k++) {
        ck_assert_ok(hlr_model_train_batch(m, o, x, labels, &loss));
        if (k == 0)
            first = loss;
    }
    ck_assert_int_eq(atomic_load(&hlr__alloc_count), before);
    ck_assert_msg(loss < 0.5f * first, "loss went from %g to %g in %d steps", (double)first, (double)loss, steps);
}

/*
 * L = sum(y * r) for a fixed random r, so dL/dy = r.  Before every forward
 * the model's generator goes back to where it was, so dropout draws the
 * same masks each time and finite differences apply.
 */
#define FD_EPS 1e-2
#define FD_RTOL 2e-2
#define FD_ATOL 2e-3
#define FD_POSITIONS 30 /* per tensor, spread over it, the last included */

typedef struct fd {
    hlr_model *m;
    hlr_tensor *x, *y, *r;
    hlr_rng rng;
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

static void fd_check_tensor(fd *g, const char *what, const float *analytic, float *v, int64_t n)
{
    int64_t step = n / FD_POSITIONS + 1;
    for (int64_t i = 0; i < n + step; i += step) {
        int64_t k = i < n ? i : n - 1;
        float keep = v[k];
        v[k] = keep + (float)FD_EPS;
        double up = fd_loss(g);
        v[k] = keep - (float)FD_EPS;
        double down = fd_loss(g);
        v[k] = keep;
        double num = (up - down) / (2 * FD_EPS), a = analytic[k];
        double scale = fabs(a) > fabs(num) ? fabs(a) : fabs(num);
        ck_assert_msg(fabs(a - num) <= FD_ATOL + FD_RTOL * scale,
                      "%s[%lld]: backward gives %.6g, finite differences %.6g", what, (long long)k, a, num);
    }
}

static float *copy_of(const hlr_tensor *t)
{
    float *c = malloc((size_t)hlr_tensor_numel(t) * sizeof *c);
    ck_assert_ptr_nonnull(c);
    memcpy(c, hlr_tensor_data(t), (size_t)hlr_tensor_numel(t) * sizeof *c);
    return c;
}

/* Build m for samples of `shape`, batch n, and check dL/dx and every parameter. */
void fd_gradcheck(hlr_model *m, int ndim, const int64_t *shape, int64_t n, unsigned long long seed,
                  const int32_t *lengths)
{
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    fd g = {.m = m};
    int64_t xs[HLR_MAX_DIMS + 1] = {n}, ys[HLR_MAX_DIMS + 1] = {n};
    memcpy(xs + 1, shape, (size_t)ndim * sizeof *shape);
    int yd;
    ck_assert_ok(hlr_model_output_shape(m, &yd, ys + 1));
    g.x = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    g.y = hlr_tensor_new(HLR_F32, yd + 1, ys);
    g.r = hlr_tensor_new(HLR_F32, yd + 1, ys);
    hlr_tensor *dx = hlr_tensor_new(HLR_F32, ndim + 1, xs);
    int64_t nx = hlr_tensor_numel(g.x);
    test_fill(hlr_tensor_f32(g.x), (long)nx, seed, -1.0f, 1.0f);
    test_fill(hlr_tensor_f32(g.r), (long)hlr_tensor_numel(g.r), seed + 99, -1.0f, 1.0f);
    if (lengths)
        ck_assert_ok(hlr_model_set_lengths(m, lengths, n));
    /* Give every parameter that starts constant (biases, norms, the class token) random values. */
    for (int li = 0; li < hlr_model_num_layers(m); li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            const char *name = hlr_layer_param_name(l, p);
            hlr_tensor *t = hlr_layer_param(l, name);
            if (strstr(name, "bias") || strstr(name, "cls_token"))
                test_fill(hlr_tensor_f32(t), (long)hlr_tensor_numel(t), seed + 7 + (unsigned)p, -0.5f, 0.5f);
            else if (strstr(name, "norm"))
                test_fill(hlr_tensor_f32(t), (long)hlr_tensor_numel(t), seed + 7 + (unsigned)p, 0.5f, 1.5f);
        }
    }

    g.rng = m->rng;
    fd_loss(&g);
    hlr_tensor *r = hlr_tensor_from(HLR_F32, yd + 1, ys, hlr_tensor_f32(g.r));
    ck_assert_ok(hlr_model_backward(m, r, dx));
    hlr_tensor_free(r);
    float *adx = copy_of(dx);
    int nl = hlr_model_num_layers(m);
    ck_assert_int_le(nl, 10);
    float *saved[10][HLR_MAX_PARAMS] = {{0}};
    for (int li = 0; li < nl; li++) {
        hlr_layer *l = hlr_model_layer(m, li);
        for (int p = 0; p < hlr_layer_param_count(l); p++)
            saved[li][p] = copy_of(hlr_layer_grad(l, hlr_layer_param_name(l, p)));
    }
    fd_check_tensor(&g, "dx", adx, hlr_tensor_f32(g.x), nx);
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
    hlr_tensor_free(g.x);
    hlr_tensor_free(dx);
    hlr_tensor_free(g.y);
    hlr_tensor_free(g.r);
    hlr_model_free(m);
}

void expect_attention_matches_torch(hlr_layer *l, const torch_attention_fixture *c, int inference)
{
    hlr_model *m = TEST_MODEL(2024, l);
    const int64_t N = c->N, T = c->T, E = c->E, H = c->heads;
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, E}));
    ck_assert_int_eq(hlr_layer_param_count(l), c->nparams);
    for (int i = 0; i < c->nparams; i++) {
        ck_assert_str_eq(hlr_layer_param_name(l, i), c->names[i]);
        hlr_tensor *p = hlr_layer_param(l, c->names[i]);
        ck_assert_msg(p != NULL, "%s", hlr_last_error());
        memcpy(hlr_tensor_data(p), c->params[i], (size_t)hlr_tensor_numel(p) * sizeof(float));
    }
    if (c->lengths)
        ck_assert_ok(hlr_model_set_lengths(m, c->lengths, N));
    int64_t s[3] = {N, T, E};
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, s, c->x), *y = hlr_tensor_new(HLR_F32, 3, s);
    hlr_tensor *dy = hlr_tensor_from(HLR_F32, 3, s, c->dy), *dx = hlr_tensor_new(HLR_F32, 3, s);
    hlr_tensor *w = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, H, T, T});
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    expect_torch_close(c->name, "y", hlr_tensor_f32(y), c->y, N * T * E);
    ck_assert_ok(hlr_attention_weights(l, w));
    expect_torch_close(c->name, "attention weights", hlr_tensor_f32(w), c->weights, N * H * T * T);
    ck_assert_ok(hlr_model_backward(m, dy, dx));
    expect_torch_close(c->name, "dx", hlr_tensor_f32(dx), c->dx, N * T * E);
    for (int i = 0; i < c->nparams; i++) {
        hlr_tensor *g = hlr_layer_grad(l, c->names[i]);
        char what[80];
        snprintf(what, sizeof what, "grad %s", c->names[i]);
        expect_torch_close(c->name, what, hlr_tensor_f32(g), c->grads[i], hlr_tensor_numel(g));
    }
    if (inference) { /* the same values: no dropout, no running statistics */
        ck_assert_ok(hlr_model_forward(m, x, y, 0));
        expect_torch_close(c->name, "y (inference)", hlr_tensor_f32(y), c->y, N * T * E);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(dx);
    hlr_tensor_free(w);
    hlr_model_free(m);
}

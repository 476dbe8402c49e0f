/*
 * seq_reduce.c -- the layers that reduce each sequence to one vector,
 * (N, T, F...) -> (N, F...), over the sequence's own length len_i
 * (hlr_model_set_lengths; T when none is set):
 *   seq_first  y[i] = x[i, 0], as torch's x[:, 0].  With class_token in front
 *              of a transformer, it reads the class token's output.  Step 0
 *              is valid in every sequence, so lengths do not matter.
 *   seq_last   y[i] = x[i, len_i - 1], as output[i, len_i - 1] of a padded
 *              batch in PyTorch.
 *   seq_mean   y[i] = (1 / len_i) sum_{t < len_i} x[i, t].
 *   seq_max    y[i, f] = max_{t < len_i} x[i, t, f]; the gradient goes to the
 *              step that gave the maximum (the first on ties); a NaN wins, as
 *              in torch.max.
 * Steps past a sequence's end neither count nor receive a gradient.
 */
#include "../internal.h"

#include <string.h>

typedef struct seq_reduce {
    hlr_layer base;
    int32_t *argmax;  /* seq_max: (N, F) the step chosen in the last forward */
    int64_t capacity; /* elements argmax holds */
} seq_reduce;

static hlr_status seq_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    if (in->ndim < 2 || in->d[0] > INT32_MAX) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, features...)", hlr__shape_str(in, s, sizeof s));
    }
    out->ndim = in->ndim - 1;
    for (int i = 1; i < in->ndim; i++)
        out->d[i - 1] = in->d[i];
    return HLR_OK;
}

/* The valid steps of sample i. */
static int64_t steps_of(const hlr_layer *l, const hlr_pass *p, int64_t i)
{
    int64_t T = l->in.d[0];
    return p->lengths && p->lengths[i] < T ? p->lengths[i] : T;
}

/* ---- seq_first and seq_last: one step of each sequence ---- */

extern const hlr_layer_ops hlr__seq_first_ops;

/* The step read for sample i. */
static int64_t step_of(const hlr_layer *l, const hlr_pass *p, int64_t i)
{
    return l->ops == &hlr__seq_first_ops ? 0 : steps_of(l, p, i) - 1;
}

static void step_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    int64_t F = l->out_size;
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(y + i * F, x + i * l->in_size + step_of(l, p, i) * F, (size_t)F * sizeof *y);
}

static void step_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx)
        return;
    int64_t F = l->out_size;
    memset(dx, 0, (size_t)(p->batch * l->in_size) * sizeof *dx);
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(dx + i * l->in_size + step_of(l, p, i) * F, dy + i * F, (size_t)F * sizeof *dx);
}

/* ---- seq_mean ---- */

static void mean_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    int64_t F = l->out_size;
    for (int64_t i = 0; i < p->batch; i++) {
        int64_t len = steps_of(l, p, i);
        const float *xi = x + i * l->in_size;
        float *yi = y + i * F;
        memcpy(yi, xi, (size_t)F * sizeof *yi);
        for (int64_t t = 1; t < len; t++)
            for (int64_t f = 0; f < F; f++)
                yi[f] += xi[t * F + f];
        float scale = 1.0f / (float)len;
        for (int64_t f = 0; f < F; f++)
            yi[f] *= scale;
    }
}

static void mean_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    if (!dx)
        return;
    int64_t F = l->out_size, T = l->in.d[0];
    for (int64_t i = 0; i < p->batch; i++) {
        int64_t len = steps_of(l, p, i);
        float scale = 1.0f / (float)len;
        float *dxi = dx + i * l->in_size;
        const float *dyi = dy + i * F;
        for (int64_t f = 0; f < F; f++)
            dxi[f] = dyi[f] * scale;
        for (int64_t t = 1; t < len; t++)
            memcpy(dxi + t * F, dxi, (size_t)F * sizeof *dxi);
        memset(dxi + len * F, 0, (size_t)((T - len) * F) * sizeof *dxi);
    }
}

/* ---- seq_max ---- */

static hlr_status max_plan(hlr_layer *l, int64_t max_batch)
{
    seq_reduce *s = (seq_reduce *)l;
    int64_t need = max_batch * l->out_size;
    if (need <= s->capacity)
        return HLR_OK;
    int32_t *a = hlr__alloc_or_fail((size_t)need, sizeof *a, "seq_max indices");
    if (!a)
        return HLR_ENOMEM;
    hlr__free(s->argmax);
    s->argmax = a;
    s->capacity = need;
    return HLR_OK;
}

static void max_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    seq_reduce *s = (seq_reduce *)l;
    int64_t F = l->out_size;
    for (int64_t i = 0; i < p->batch; i++) {
        int64_t len = steps_of(l, p, i);
        const float *xi = x + i * l->in_size;
        float *yi = y + i * F;
        int32_t *ai = s->argmax + i * F;
        memcpy(yi, xi, (size_t)F * sizeof *yi);
        memset(ai, 0, (size_t)F * sizeof *ai);
        for (int64_t t = 1; t < len; t++)
            for (int64_t f = 0; f < F; f++) {
                float v = xi[t * F + f];
                if (v > yi[f] || (v != v && yi[f] == yi[f])) {
                    yi[f] = v;
                    ai[f] = (int32_t)t;
                }
            }
    }
}

static void max_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    const seq_reduce *s = (const seq_reduce *)l;
    if (!dx)
        return;
    int64_t F = l->out_size;
    memset(dx, 0, (size_t)(p->batch * l->in_size) * sizeof *dx);
    for (int64_t i = 0; i < p->batch; i++)
        for (int64_t f = 0; f < F; f++)
            dx[i * l->in_size + (int64_t)s->argmax[i * F + f] * F + f] = dy[i * F + f];
}

static void max_destroy(hlr_layer *l)
{
    hlr__free(((seq_reduce *)l)->argmax);
}

/* ---- the four types ---- */

static hlr_layer *first_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_first();
}

static hlr_layer *last_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_last();
}

static hlr_layer *mean_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_mean();
}

static hlr_layer *max_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_max();
}

const hlr_layer_ops hlr__seq_first_ops = {
    .type = "seq_first",
    .build = seq_build,
    .forward = step_forward,
    .backward = step_backward,
    .from_config = first_from_config,
};

const hlr_layer_ops hlr__seq_last_ops = {
    .type = "seq_last",
    .build = seq_build,
    .forward = step_forward,
    .backward = step_backward,
    .from_config = last_from_config,
};

const hlr_layer_ops hlr__seq_mean_ops = {
    .type = "seq_mean",
    .build = seq_build,
    .forward = mean_forward,
    .backward = mean_backward,
    .from_config = mean_from_config,
};

const hlr_layer_ops hlr__seq_max_ops = {
    .type = "seq_max",
    .build = seq_build,
    .plan = max_plan,
    .forward = max_forward,
    .backward = max_backward,
    .destroy = max_destroy,
    .from_config = max_from_config,
};

hlr_layer *hlr_seq_first(void)
{
    return hlr__layer_alloc(&hlr__seq_first_ops, sizeof(seq_reduce));
}

hlr_layer *hlr_seq_last(void)
{
    return hlr__layer_alloc(&hlr__seq_last_ops, sizeof(seq_reduce));
}

hlr_layer *hlr_seq_mean(void)
{
    return hlr__layer_alloc(&hlr__seq_mean_ops, sizeof(seq_reduce));
}

hlr_layer *hlr_seq_max(void)
{
    return hlr__layer_alloc(&hlr__seq_max_ops, sizeof(seq_reduce));
}

/*
 * seq_max.c -- the maximum over the steps of each sequence, feature by
 * feature: (N, T, F...) -> (N, F...), y[i, f] = max_{t < len_i} x[i, t, f]
 * with len_i the sequence's length (hlr_model_set_lengths; T when none is
 * set).  The gradient goes to the step that gave the maximum (the first on
 * ties); a NaN wins, as in torch.max.
 */
#include "../internal.h"

#include <string.h>

typedef struct seq_max {
    hlr_layer base;
    int32_t *argmax;  /* (N, F) the step chosen in the last forward */
    int64_t capacity; /* elements argmax holds */
} seq_max;

static hlr_status seq_max_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    if (in->ndim < 2 || in->d[0] > INT32_MAX) {
        char s[96];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, features...)", hlr__shape_str(in, s, sizeof s));
    }
    out->ndim = in->ndim - 1;
    for (int i = 1; i < in->ndim; i++)
        out->d[i - 1] = in->d[i];
    return HLR_OK;
}

static hlr_status seq_max_plan(hlr_layer *l, int64_t max_batch)
{
    seq_max *s = (seq_max *)l;
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

static void seq_max_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    seq_max *s = (seq_max *)l;
    int64_t F = l->out_size, T = l->in.d[0];
    for (int64_t i = 0; i < p->batch; i++) {
        int64_t len = p->lengths && p->lengths[i] < T ? p->lengths[i] : T;
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

static void seq_max_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                             float *dx)
{
    (void)x;
    (void)y;
    const seq_max *s = (const seq_max *)l;
    if (!dx)
        return;
    int64_t F = l->out_size;
    memset(dx, 0, (size_t)(p->batch * l->in_size) * sizeof *dx);
    for (int64_t i = 0; i < p->batch; i++)
        for (int64_t f = 0; f < F; f++)
            dx[i * l->in_size + (int64_t)s->argmax[i * F + f] * F + f] = dy[i * F + f];
}

static void seq_max_destroy(hlr_layer *l)
{
    hlr__free(((seq_max *)l)->argmax);
}

static hlr_layer *seq_max_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_max();
}

const hlr_layer_ops hlr__seq_max_ops = {
    .type = "seq_max",
    .build = seq_max_build,
    .plan = seq_max_plan,
    .forward = seq_max_forward,
    .backward = seq_max_backward,
    .destroy = seq_max_destroy,
    .from_config = seq_max_from_config,
};

hlr_layer *hlr_seq_max(void)
{
    return hlr__layer_alloc(&hlr__seq_max_ops, sizeof(seq_max));
}

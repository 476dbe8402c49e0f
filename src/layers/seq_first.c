/*
 * seq_first.c -- the first step of each sequence: (N, T, F...) -> (N, F...),
 * y[i] = x[i, 0], as torch's x[:, 0].  With class_token in front of a
 * transformer, it reads the class token's output.  Step 0 is valid in every
 * sequence, so lengths do not matter.
 */
#include "../internal.h"

#include <string.h>

static hlr_status seq_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    if (in->ndim < 2) {
        char s[96];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, features...)", hlr__shape_str(in, s, sizeof s));
    }
    out->ndim = in->ndim - 1;
    for (int i = 1; i < in->ndim; i++)
        out->d[i - 1] = in->d[i];
    return HLR_OK;
}

static void seq_first_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    int64_t F = l->out_size;
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(y + i * F, x + i * l->in_size, (size_t)F * sizeof *y);
}

static void seq_first_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                               float *dx)
{
    (void)x;
    (void)y;
    if (!dx)
        return;
    int64_t F = l->out_size;
    memset(dx, 0, (size_t)(p->batch * l->in_size) * sizeof *dx);
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(dx + i * l->in_size, dy + i * F, (size_t)F * sizeof *dx);
}

static hlr_layer *seq_first_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_first();
}

const hlr_layer_ops hlr__seq_first_ops = {
    .type = "seq_first",
    .build = seq_build,
    .forward = seq_first_forward,
    .backward = seq_first_backward,
    .from_config = seq_first_from_config,
};

hlr_layer *hlr_seq_first(void)
{
    return hlr__layer_alloc(&hlr__seq_first_ops, sizeof(hlr_layer));
}

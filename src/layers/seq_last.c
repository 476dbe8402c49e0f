/*
 * seq_last.c -- the last step of each sequence: (N, T, F...) -> (N, F...),
 * y[i] = x[i, len_i - 1] with len_i the sequence's length
 * (hlr_model_set_lengths; T when none is set).  As output[i, len_i - 1] of
 * a padded batch in PyTorch.
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

/* The step index read for sample i. */
static int64_t last_step(const hlr_layer *l, const hlr_pass *p, int64_t i)
{
    int64_t T = l->in.d[0];
    return p->lengths && p->lengths[i] < T ? p->lengths[i] - 1 : T - 1;
}

static void seq_last_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    int64_t F = l->out_size;
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(y + i * F, x + i * l->in_size + last_step(l, p, i) * F, (size_t)F * sizeof *y);
}

static void seq_last_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                              float *dx)
{
    (void)x;
    (void)y;
    if (!dx)
        return;
    int64_t F = l->out_size;
    memset(dx, 0, (size_t)(p->batch * l->in_size) * sizeof *dx);
    for (int64_t i = 0; i < p->batch; i++)
        memcpy(dx + i * l->in_size + last_step(l, p, i) * F, dy + i * F, (size_t)F * sizeof *dx);
}

static hlr_layer *seq_last_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_last();
}

const hlr_layer_ops hlr__seq_last_ops = {
    .type = "seq_last",
    .build = seq_build,
    .forward = seq_last_forward,
    .backward = seq_last_backward,
    .from_config = seq_last_from_config,
};

hlr_layer *hlr_seq_last(void)
{
    return hlr__layer_alloc(&hlr__seq_last_ops, sizeof(hlr_layer));
}

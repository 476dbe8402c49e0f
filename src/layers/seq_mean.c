/*
 * seq_mean.c -- the mean over the steps of each sequence: (N, T, F...) ->
 * (N, F...), y[i] = (1 / len_i) sum_{t < len_i} x[i, t], with len_i the
 * sequence's length (hlr_model_set_lengths; T when none is set).  Steps
 * past the end neither count nor receive a gradient.
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

static int64_t steps_of(const hlr_layer *l, const hlr_pass *p, int64_t i)
{
    int64_t T = l->in.d[0];
    return p->lengths && p->lengths[i] < T ? p->lengths[i] : T;
}

static void seq_mean_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
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

static void seq_mean_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                              float *dx)
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

static hlr_layer *seq_mean_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_seq_mean();
}

const hlr_layer_ops hlr__seq_mean_ops = {
    .type = "seq_mean",
    .build = seq_build,
    .forward = seq_mean_forward,
    .backward = seq_mean_backward,
    .from_config = seq_mean_from_config,
};

hlr_layer *hlr_seq_mean(void)
{
    return hlr__layer_alloc(&hlr__seq_mean_ops, sizeof(hlr_layer));
}

/*
 * softmax.c -- softmax over the last dimension.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

static hlr_status softmax_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    if (in->ndim < 1)
        return hlr__layer_fail(l, HLR_ESHAPE, "input needs at least one dimension");
    *out = *in;
    return HLR_OK;
}

/* x, y (R, C) with C the last dimension and R = N * the rest. */
static void softmax_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    int64_t C = l->in.d[l->in.ndim - 1];
    hlrk_softmax_rows(y, x, p->batch * l->in_size / C, C);
}

static void softmax_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                             float *dx)
{
    (void)x;
    int64_t C = l->in.d[l->in.ndim - 1];
    if (dx)
        hlrk_softmax_rows_backward(dx, y, dy, p->batch * l->in_size / C, C);
}

static hlr_layer *softmax_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_softmax();
}

const hlr_layer_ops hlr__softmax_ops = {
    .type = "softmax",
    .per_sample = 1,
    .build = softmax_build,
    .from_config = softmax_from_config,
    .forward = softmax_forward,
    .backward = softmax_backward,
};

hlr_layer *hlr_softmax(void) { return hlr__layer_alloc(&hlr__softmax_ops, sizeof(hlr_layer)); }

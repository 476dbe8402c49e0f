/*
 * feature_map_rows.c -- a feature map as the sequence of its rows:
 * (N, C, H, W) -> (N, H, C W), channel-major within a step, as
 * x.permute(0, 2, 1, 3).reshape(N, H, C * W) in PyTorch.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

typedef struct feature_map_rows {
    hlr_layer base;
    int64_t C, H, W;
} feature_map_rows;

static hlr_status fmr_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    feature_map_rows *f = (feature_map_rows *)l;
    if (in->ndim != 3) {
        char s[96];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (C, H, W)", hlr__shape_str(in, s, sizeof s));
    }
    f->C = in->d[0];
    f->H = in->d[1];
    f->W = in->d[2];
    *out = (hlr_shape){.ndim = 2, .d = {f->H, f->C * f->W}};
    return HLR_OK;
}

/* per sample: x (C, H, W) -> y (H, C, W) */
static void fmr_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const feature_map_rows *f = (const feature_map_rows *)l;
    for (int64_t i = 0; i < p->batch; i++)
        hlrk_transpose_01(y + i * l->out_size, x + i * l->in_size, f->C, f->H, f->W);
}

/* per sample: dy (H, C, W) -> dx (C, H, W) */
static void fmr_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    const feature_map_rows *f = (const feature_map_rows *)l;
    if (!dx)
        return;
    for (int64_t i = 0; i < p->batch; i++)
        hlrk_transpose_01(dx + i * l->in_size, dy + i * l->out_size, f->H, f->C, f->W);
}

static hlr_layer *fmr_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_feature_map_rows();
}

const hlr_layer_ops hlr__feature_map_rows_ops = {
    .type = "feature_map_rows",
    .build = fmr_build,
    .forward = fmr_forward,
    .backward = fmr_backward,
    .from_config = fmr_from_config,
};

hlr_layer *hlr_feature_map_rows(void)
{
    return hlr__layer_alloc(&hlr__feature_map_rows_ops, sizeof(feature_map_rows));
}

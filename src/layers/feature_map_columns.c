/*
 * feature_map_columns.c -- a feature map as the sequence of its columns,
 * left to right, as a CRNN reads a line of writing: (N, C, H, W) ->
 * (N, W, C H), channel-major within a step, as
 * x.permute(0, 3, 1, 2).reshape(N, W, C * H) in PyTorch.  Per sample a
 * transpose of (C H, W).
 */
#include "../internal.h"
#include "../kernels/kernels.h"

typedef struct feature_map_columns {
    hlr_layer base;
    int64_t C, H, W;
} feature_map_columns;

static hlr_status fmc_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    feature_map_columns *f = (feature_map_columns *)l;
    if (in->ndim != 3) {
        char s[96];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (C, H, W)", hlr__shape_str(in, s, sizeof s));
    }
    f->C = in->d[0];
    f->H = in->d[1];
    f->W = in->d[2];
    *out = (hlr_shape){.ndim = 2, .d = {f->W, f->C * f->H}};
    return HLR_OK;
}

/* per sample: x (C H, W) -> y (W, C H) */
static void fmc_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const feature_map_columns *f = (const feature_map_columns *)l;
    for (int64_t i = 0; i < p->batch; i++)
        hlrk_transpose_01(y + i * l->out_size, x + i * l->in_size, f->C * f->H, f->W, 1);
}

/* per sample: dy (W, C H) -> dx (C H, W) */
static void fmc_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    const feature_map_columns *f = (const feature_map_columns *)l;
    if (!dx)
        return;
    for (int64_t i = 0; i < p->batch; i++)
        hlrk_transpose_01(dx + i * l->in_size, dy + i * l->out_size, f->W, f->C * f->H, 1);
}

static hlr_layer *fmc_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_feature_map_columns();
}

const hlr_layer_ops hlr__feature_map_columns_ops = {
    .type = "feature_map_columns",
    .build = fmc_build,
    .forward = fmc_forward,
    .backward = fmc_backward,
    .from_config = fmc_from_config,
};

hlr_layer *hlr_feature_map_columns(void)
{
    return hlr__layer_alloc(&hlr__feature_map_columns_ops, sizeof(feature_map_columns));
}

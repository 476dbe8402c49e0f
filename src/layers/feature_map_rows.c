/*
 * feature_map_rows.c -- a feature map as a sequence, two ways:
 *   feature_map_rows:    (N, C, H, W) -> (N, H, C W), its rows top to bottom,
 *                        as x.permute(0, 2, 1, 3).reshape(N, H, C * W);
 *   feature_map_columns: (N, C, H, W) -> (N, W, C H), its columns left to
 *                        right as a CRNN reads a line of writing, as
 *                        x.permute(0, 3, 1, 2).reshape(N, W, C * H).
 * Channel-major within a step either way; per sample one transpose.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

typedef struct feature_map_seq {
    hlr_layer base;
    int columns; /* 0: rows as steps, 1: columns */
    int64_t C, H, W;
} feature_map_seq;

static hlr_status fms_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    feature_map_seq *f = (feature_map_seq *)l;
    if (in->ndim != 3) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (C, H, W)", hlr__shape_str(in, s, sizeof s));
    }
    f->C = in->d[0];
    f->H = in->d[1];
    f->W = in->d[2];
    *out = f->columns ? (hlr_shape){.ndim = 2, .d = {f->W, f->C * f->H}}
                      : (hlr_shape){.ndim = 2, .d = {f->H, f->C * f->W}};
    return HLR_OK;
}

/* per sample, rows: x (C, H, W) -> y (H, C, W); columns: x (C H, W) -> y (W, C H) */
static void fms_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const feature_map_seq *f = (const feature_map_seq *)l;
    for (int64_t i = 0; i < p->batch; i++) {
        if (f->columns)
            hlrk_transpose_01(y + i * l->out_size, x + i * l->in_size, f->C * f->H, f->W, 1);
        else
            hlrk_transpose_01(y + i * l->out_size, x + i * l->in_size, f->C, f->H, f->W);
    }
}

/* the transposes back */
static void fms_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    const feature_map_seq *f = (const feature_map_seq *)l;
    if (!dx)
        return;
    for (int64_t i = 0; i < p->batch; i++) {
        if (f->columns)
            hlrk_transpose_01(dx + i * l->in_size, dy + i * l->out_size, f->W, f->C * f->H, 1);
        else
            hlrk_transpose_01(dx + i * l->in_size, dy + i * l->out_size, f->H, f->C, f->W);
    }
}

static hlr_layer *fmr_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_feature_map_rows();
}

static hlr_layer *fmc_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_feature_map_columns();
}

const hlr_layer_ops hlr__feature_map_rows_ops = {
    .type = "feature_map_rows",
    .per_sample = 1,
    .build = fms_build,
    .forward = fms_forward,
    .backward = fms_backward,
    .from_config = fmr_from_config,
};

const hlr_layer_ops hlr__feature_map_columns_ops = {
    .type = "feature_map_columns",
    .per_sample = 1,
    .build = fms_build,
    .forward = fms_forward,
    .backward = fms_backward,
    .from_config = fmc_from_config,
};

hlr_layer *hlr_feature_map_rows(void)
{
    return hlr__layer_alloc(&hlr__feature_map_rows_ops, sizeof(feature_map_seq));
}

hlr_layer *hlr_feature_map_columns(void)
{
    hlr_layer *l = hlr__layer_alloc(&hlr__feature_map_columns_ops, sizeof(feature_map_seq));
    if (l)
        ((feature_map_seq *)l)->columns = 1;
    return l;
}

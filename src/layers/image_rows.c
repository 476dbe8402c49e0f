/*
 * image_rows.c -- an image as the sequence of its rows: (N, 1, H, W) ->
 * (N, H, W), H steps of W features.  The data do not move.
 */
#include "../internal.h"

static hlr_status image_rows_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    if (in->ndim != 3 || in->d[0] != 1) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (1, H, W); for channels use feature_map_rows",
                               hlr__shape_str(in, s, sizeof s));
    }
    *out = (hlr_shape){.ndim = 2, .d = {in->d[1], in->d[2]}};
    return HLR_OK;
}

static hlr_layer *image_rows_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_image_rows();
}

const hlr_layer_ops hlr__image_rows_ops = {
    .type = "image_rows",
    .per_sample = 1,
    .alias = 1,
    .build = image_rows_build,
    .from_config = image_rows_from_config,
};

hlr_layer *hlr_image_rows(void)
{
    return hlr__layer_alloc(&hlr__image_rows_ops, sizeof(hlr_layer));
}

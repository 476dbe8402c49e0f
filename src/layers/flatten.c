/*
 * flatten.c -- (N, d1, d2, ...) -> (N, d1*d2*...): the data do not move.
 */
#include "../internal.h"

static hlr_status flatten_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)l;
    (void)rng;
    out->ndim = 1;
    out->d[0] = hlr__shape_numel(in);
    return HLR_OK;
}

static hlr_layer *flatten_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_flatten();
}

const hlr_layer_ops hlr__flatten_ops = {
    .type = "flatten",
    .per_sample = 1,
    .alias = 1,
    .build = flatten_build,
    .from_config = flatten_from_config,
};

hlr_layer *hlr_flatten(void) { return hlr__layer_alloc(&hlr__flatten_ops, sizeof(hlr_layer)); }

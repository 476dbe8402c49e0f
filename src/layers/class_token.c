/*
 * class_token.c -- a learned token prepended to every sequence, as the
 * class token of a vision transformer: (N, T, D) -> (N, T + 1, D),
 * y[n, 0] = cls_token, y[n, t + 1] = x[n, t].
 *   backward: dcls_token = sum_n dy[n, 0]; dx[n, t] = dy[n, t + 1].
 */
#include "../internal.h"

#include <string.h>

typedef struct class_token {
    hlr_layer base;
    int D;
} class_token;

static hlr_status cls_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    class_token *c = (class_token *)l;
    if (in->ndim != 2 || in->d[1] != c->D) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, %d)", hlr__shape_str(in, s, sizeof s), c->D);
    }
    *out = *in;
    out->d[0] = in->d[0] + 1;
    /* torchvision's VisionTransformer starts its class token at zero; parameters start zeroed. */
    return hlr__layer_add_param(l, "cls_token", 1, (int64_t[]){c->D});
}

static void cls_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const int64_t D = ((class_token *)l)->D, S = l->in_size;
    const float *tok = hlr__param(l, 0);
    for (int64_t n = 0; n < p->batch; n++) {
        float *yn = y + n * (S + D);
        memcpy(yn, tok, (size_t)D * sizeof *y);
        memcpy(yn + D, x + n * S, (size_t)S * sizeof *y);
    }
}

static void cls_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    const int64_t D = ((class_token *)l)->D, S = l->in_size;
    float *g = hlr__grad(l, 0);
    memset(g, 0, (size_t)D * sizeof *g);
    for (int64_t n = 0; n < p->batch; n++) {
        const float *dyn = dy + n * (S + D);
        for (int64_t k = 0; k < D; k++)
            g[k] += dyn[k];
        if (dx)
            memcpy(dx + n * S, dyn + D, (size_t)S * sizeof *dx);
    }
}

static void cls_get_config(const hlr_layer *l, hlr_config *c)
{
    hlr__config_int(c, "dim", ((const class_token *)l)->D);
}

static hlr_layer *cls_from_config(const hlr_config *c)
{
    int d;
    return hlr__config_int_in(c, "class_token", "dim", 1, INT32_MAX, &d) ? NULL : hlr_class_token(d);
}

const hlr_layer_ops hlr__class_token_ops = {
    .type = "class_token",
    .build = cls_build,
    .forward = cls_forward,
    .backward = cls_backward,
    .get_config = cls_get_config,
    .from_config = cls_from_config,
};

hlr_layer *hlr_class_token(int dim)
{
    if (dim < 1) {
        hlr__fail(HLR_EINVAL, "hlr_class_token: dim %d must be >= 1", dim);
        return NULL;
    }
    class_token *c = (class_token *)hlr__layer_alloc(&hlr__class_token_ops, sizeof *c);
    if (!c)
        return NULL;
    c->D = dim;
    return &c->base;
}

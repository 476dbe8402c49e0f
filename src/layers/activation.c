/*
 * activation.c -- the element-wise activations: ReLU, leaky ReLU, sigmoid,
 * tanh and GELU.  They share one shape rule (output = input) and differ only
 * in the kernel they call, so they live together.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>

typedef struct activation {
    hlr_layer base;
    float slope; /* leaky ReLU only */
} activation;

static hlr_status same_shape(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)l;
    (void)rng;
    *out = *in;
    return HLR_OK;
}

#define N_ELEMS(l, p) ((p)->batch * (l)->in_size)

static void relu_fwd(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    hlrk_par_unary(hlrk_relu, y, x, N_ELEMS(l, p));
}
static void relu_bwd(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    if (dx)
        hlrk_par_binary(hlrk_relu_backward, dx, y, dy, N_ELEMS(l, p));
}

static void leaky_fwd(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    hlrk_leaky_relu(y, x, N_ELEMS(l, p), ((activation *)l)->slope);
}
static void leaky_bwd(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    if (dx)
        hlrk_leaky_relu_backward(dx, x, dy, N_ELEMS(l, p), ((activation *)l)->slope);
}

static void sigmoid_fwd(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    hlrk_par_unary(hlrk_sigmoid, y, x, N_ELEMS(l, p));
}
static void sigmoid_bwd(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    if (dx)
        hlrk_par_binary(hlrk_sigmoid_backward, dx, y, dy, N_ELEMS(l, p));
}

static void tanh_fwd(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    hlrk_par_unary(hlrk_tanh, y, x, N_ELEMS(l, p));
}
static void tanh_bwd(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    if (dx)
        hlrk_par_binary(hlrk_tanh_backward, dx, y, dy, N_ELEMS(l, p));
}

static void gelu_fwd(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    hlrk_par_unary(hlrk_gelu, y, x, N_ELEMS(l, p));
}
static void gelu_bwd(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    if (dx)
        hlrk_par_binary(hlrk_gelu_backward, dx, x, dy, N_ELEMS(l, p));
}

static void leaky_get_config(const hlr_layer *l, hlr_config *c)
{
    hlr__config_float(c, "slope", ((const activation *)l)->slope);
}

static hlr_layer *leaky_from_config(const hlr_config *c)
{
    float slope;
    return hlr__config_float_of(c, "leaky_relu", "slope", &slope) ? NULL : hlr_leaky_relu(slope);
}

static hlr_layer *relu_from_config(const hlr_config *c);
static hlr_layer *sigmoid_from_config(const hlr_config *c);
static hlr_layer *tanh_from_config(const hlr_config *c);
static hlr_layer *gelu_from_config(const hlr_config *c);

const hlr_layer_ops hlr__relu_ops = {
    .type = "relu", .build = same_shape, .forward = relu_fwd, .backward = relu_bwd, .from_config = relu_from_config};
const hlr_layer_ops hlr__leaky_relu_ops = {.type = "leaky_relu",
                                           .build = same_shape,
                                           .forward = leaky_fwd,
                                           .backward = leaky_bwd,
                                           .get_config = leaky_get_config,
                                           .from_config = leaky_from_config};
const hlr_layer_ops hlr__sigmoid_ops = {.type = "sigmoid",
                                        .build = same_shape,
                                        .forward = sigmoid_fwd,
                                        .backward = sigmoid_bwd,
                                        .from_config = sigmoid_from_config};
const hlr_layer_ops hlr__tanh_ops = {
    .type = "tanh", .build = same_shape, .forward = tanh_fwd, .backward = tanh_bwd, .from_config = tanh_from_config};
const hlr_layer_ops hlr__gelu_ops = {
    .type = "gelu", .build = same_shape, .forward = gelu_fwd, .backward = gelu_bwd, .from_config = gelu_from_config};

static hlr_layer *make(const hlr_layer_ops *ops)
{
    return hlr__layer_alloc(ops, sizeof(activation));
}

hlr_layer *hlr_relu(void)
{
    return make(&hlr__relu_ops);
}
hlr_layer *hlr_sigmoid(void)
{
    return make(&hlr__sigmoid_ops);
}
hlr_layer *hlr_tanh(void)
{
    return make(&hlr__tanh_ops);
}
hlr_layer *hlr_gelu(void)
{
    return make(&hlr__gelu_ops);
}

hlr_layer *hlr_leaky_relu(float slope)
{
    if (!isfinite(slope)) {
        hlr__fail(HLR_EINVAL, "hlr_leaky_relu: slope must be finite");
        return NULL;
    }
    hlr_layer *l = make(&hlr__leaky_relu_ops);
    if (l)
        ((activation *)l)->slope = slope;
    return l;
}

static hlr_layer *relu_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_relu();
}
static hlr_layer *sigmoid_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_sigmoid();
}
static hlr_layer *tanh_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_tanh();
}
static hlr_layer *gelu_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_gelu();
}

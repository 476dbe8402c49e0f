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

/*
 * A ReLU after a layer that can apply it itself (conv2d, dense, batch norm) costs a pass
 * over the activations forward and one backward; fused, the layer applies it
 * while its output is still in cache and masks dy while it reads it anyway.
 * A 2x2 max pooling after such a ReLU (conv2d -> relu -> maxpool2d, every
 * small CNN's stage, or conv2d -> batchnorm2d -> relu -> maxpool2d) is taken
 * over too when the map's sides are even: the convolution (or batch norm)
 * pools each sample while it is in cache, its buffer holds the
 * pooled output, and the full-size map never goes to memory (for the cnn's
 * first stage, 6.4 MB per batch of 64 written and read three times).
 */
extern const hlr_layer_ops hlr__relu_ops;

int hlr__absorb_relu(hlr_layer *l, hlr_layer *const *next, int n, int can_pool)
{
    if (n < 1 || next[0]->ops != &hlr__relu_ops)
        return 0;
    l->fuse_relu = 1;
    if (n >= 2 && can_pool && hlr__pool2d_is_max2x2(next[1]) && l->out.ndim == 3 && l->out.d[1] % 2 == 0 &&
        l->out.d[2] % 2 == 0) {
        l->fuse_pool = 1;
        return 2;
    }
    return 1;
}

static hlr_layer *relu_from_config(const hlr_config *c);
static hlr_layer *sigmoid_from_config(const hlr_config *c);
static hlr_layer *tanh_from_config(const hlr_config *c);
static hlr_layer *gelu_from_config(const hlr_config *c);

const hlr_layer_ops hlr__relu_ops = {.type = "relu",
                                     .per_sample = 1,
                                     .build = same_shape,
                                     .forward = relu_fwd,
                                     .backward = relu_bwd,
                                     .from_config = relu_from_config};
const hlr_layer_ops hlr__leaky_relu_ops = {.type = "leaky_relu",
                                           .per_sample = 1,
                                           .build = same_shape,
                                           .forward = leaky_fwd,
                                           .backward = leaky_bwd,
                                           .get_config = leaky_get_config,
                                           .from_config = leaky_from_config};
const hlr_layer_ops hlr__sigmoid_ops = {.type = "sigmoid",
                                        .per_sample = 1,
                                        .build = same_shape,
                                        .forward = sigmoid_fwd,
                                        .backward = sigmoid_bwd,
                                        .from_config = sigmoid_from_config};
const hlr_layer_ops hlr__tanh_ops = {.type = "tanh",
                                     .per_sample = 1,
                                     .build = same_shape,
                                     .forward = tanh_fwd,
                                     .backward = tanh_bwd,
                                     .from_config = tanh_from_config};
const hlr_layer_ops hlr__gelu_ops = {.type = "gelu",
                                     .per_sample = 1,
                                     .build = same_shape,
                                     .forward = gelu_fwd,
                                     .backward = gelu_bwd,
                                     .from_config = gelu_from_config};

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

/*
 * dense.c -- fully connected layer, y = x W^T + b, as torch.nn.Linear.
 * Parameters: weight (out, in), bias (out).
 * With a fused ReLU (fuse_relu: the model's "relu" layer after this one),
 * y = max(x W^T + b, 0) in the same pass as the bias, and the backward
 * masks dy by y > 0 into its own buffer.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>

typedef struct dense {
    hlr_layer base;
    int in, out, has_bias;
    int64_t rows_per_sample; /* > 1 when the input is (N, ..., in) */
    float *dmask;            /* fused ReLU: dy masked by y > 0, (planned batch rows, out) */
    int64_t planned;
    /* W packed for hlrk_gemm_packed (where the CPU has FMA), made again when W changes: the copy it was
     * made from, and when it was last checked (internal.h, hlr__weights_changed) */
    float *packed, *packed_from;
    hlr_weights_seen packed_seen;
} dense;

static hlr_status dense_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    dense *d = (dense *)l;
    if (in->ndim < 1 || in->d[in->ndim - 1] != d->in) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s ends in %lld features, layer expects %d",
                               hlr__shape_str(in, s, sizeof s), in->ndim ? (long long)in->d[in->ndim - 1] : 0LL, d->in);
    }
    *out = *in;
    out->d[out->ndim - 1] = d->out;
    d->rows_per_sample = hlr__shape_numel(in) / d->in;

    hlr_status st = hlr__layer_add_param(l, "weight", 2, (int64_t[]){d->out, d->in});
    if (st == HLR_OK && d->has_bias)
        st = hlr__layer_add_param(l, "bias", 1, (int64_t[]){d->out});
    if (st != HLR_OK)
        return st;
    /* torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(in); the bias uses the same bound. */
    float bound = 1.0f / sqrtf((float)d->in);
    hlr__init_uniform(hlr__param(l, 0), (int64_t)d->out * d->in, bound, rng);
    if (d->has_bias)
        hlr__init_uniform(hlr__param(l, 1), d->out, bound, rng);
    return HLR_OK;
}

typedef struct dense_job {
    const dense *d;
    const float *x;
    float *y;
} dense_job;

/* Rows [a, b): their product, bias and fused ReLU, on one thread. */
static void dense_rows(void *ctx, int64_t a, int64_t b)
{
    const dense_job *j = ctx;
    const dense *d = j->d;
    const hlr_layer *l = &d->base;
    float *y = j->y + a * d->out;
    hlrk_gemm1(0, 1, b - a, d->out, d->in, 1.0f, j->x + a * d->in, d->in, hlr__param((hlr_layer *)l, 0), d->in,
               0.0f, y, d->out);
    if (d->has_bias || l->fuse_relu)
        hlrk_add_bias_rows(y, d->has_bias ? hlr__param((hlr_layer *)l, 1) : NULL, b - a, d->out, l->fuse_relu);
}

/* Fewer rows per thread, or fewer multiply-adds in all (as hlrk_gemm's
 * split), and one thread does the whole product. */
#define ROW_GRAIN 32
#define SERIAL_MACS ((int64_t)1 << 18)

/*
 * x (R, in), W (out, in), b (out) -> y (R, out) where R = N * rows_per_sample.
 * With at least as many rows as outputs, each pool thread takes its rows
 * through the product and the bias (and fused ReLU) in one hand-out, so the
 * element-wise pass does not run on one thread while the other waits.
 */
static void dense_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    dense *d = (dense *)l;
    int64_t R = p->batch * d->rows_per_sample;
    dense_job j = {d, x, y};
    const float *b = d->has_bias ? hlr__param(l, 1) : NULL;
    if (R >= hlrk_gemm_rows_min() && R <= hlrk_gemm_rows_max()) { /* a few rows: W read in place (kernels.h) */
        hlrk_gemm_rows_split(R, d->out, d->in, x, d->in, hlr__param(l, 0), d->in, y, d->out);
        if (d->has_bias || l->fuse_relu)
            hlrk_add_bias_rows(y, b, R, d->out, l->fuse_relu);
    } else if (R > hlrk_gemm_rows_max() && d->packed && !p->training && hlrk_fma_runs()) {
        /* more, in inference: W packed once (hlrk_gemm_packed), made again when it changes, the bias and
         * ReLU in the same pass.  Not in training, where W changes at every step and packing it (one
         * thread, values compared, copied and rearranged) cost more than sgemm's own copies: the mlp's
         * training at batch 64 went from about 117,000 img/s to 79,000. */
        const float *w = hlr__param(l, 0);
        if (hlr__weights_changed(l, &d->packed_seen, d->packed_from, w, (int64_t)d->out * d->in))
            hlrk_pack_weights(d->packed, w, d->out, d->in);
        hlrk_gemm_packed_split(R, d->out, d->in, x, d->in, d->packed, y, d->out, b, l->fuse_relu, 0);
    } else if (R * d->out * d->in < SERIAL_MACS)
        dense_rows(&j, 0, R);
    else if (R >= d->out) /* the longer side, as hlrk_gemm would split it */
        hlr__parallel_for(R, ROW_GRAIN, dense_rows, &j);
    else { /* split by columns: by rows, each thread would pack all of W (docs/design.md, Threads) */
        hlrk_gemm(0, 1, R, d->out, d->in, 1.0f, x, d->in, hlr__param(l, 0), d->in, 0.0f, y, d->out);
        if (d->has_bias || l->fuse_relu)
            hlrk_add_bias_rows(y, b, R, d->out, l->fuse_relu);
    }
}

static hlr_status dense_plan(hlr_layer *l, int64_t max_batch)
{
    dense *d = (dense *)l;
    if (!d->packed && hlrk_fma_runs() && max_batch * d->rows_per_sample > hlrk_gemm_rows_max()) {
        const int64_t n = (int64_t)d->out * d->in;
        d->packed = hlr__alloc_or_fail((size_t)hlrk_packed_floats(d->out, d->in), sizeof(float), "packed weights");
        d->packed_from = d->packed ? hlr__alloc_or_fail((size_t)n, sizeof(float), "packed weights' copy") : NULL;
        if (!d->packed_from) {
            hlr__free(d->packed);
            d->packed = NULL;
            return HLR_ENOMEM;
        }
        d->packed_seen.valid = 0;
    }
    if (!l->fuse_relu || max_batch <= d->planned)
        return HLR_OK;
    float *m = hlr__alloc_or_fail((size_t)(max_batch * l->out_size), sizeof *m, "dense masked gradient");
    if (!m)
        return HLR_ENOMEM;
    hlr__free(d->dmask);
    d->dmask = m;
    d->planned = max_batch;
    return HLR_OK;
}

static void dense_destroy(hlr_layer *l)
{
    dense *d = (dense *)l;
    hlr__free(d->dmask);
    hlr__free(d->packed);
    hlr__free(d->packed_from);
}

/* dW (out, in) = dy^T x;  db = sum over rows of dy;  dx (R, in) = dy W. */
static void dense_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    dense *d = (dense *)l;
    int64_t R = p->batch * d->rows_per_sample;
    if (l->fuse_relu) {
        hlrk_par_binary(hlrk_relu_backward, d->dmask, y, dy, R * d->out);
        dy = d->dmask;
    }
    hlrk_gemm(1, 0, d->out, d->in, R, 1.0f, dy, d->out, x, d->in, 0.0f, hlr__grad(l, 0), d->in);
    if (d->has_bias)
        hlrk_sum_rows(hlr__grad(l, 1), dy, R, d->out);
    if (dx)
        hlrk_gemm(0, 0, R, d->in, d->out, 1.0f, dy, d->out, hlr__param(l, 0), d->in, 0.0f, dx, d->in);
}

static void dense_get_config(const hlr_layer *l, hlr_config *c)
{
    const dense *d = (const dense *)l;
    hlr__config_int(c, "in", d->in);
    hlr__config_int(c, "out", d->out);
    hlr__config_int(c, "bias", d->has_bias);
}

static hlr_layer *dense_from_config(const hlr_config *c)
{
    int in, out, bias;
    if (hlr__config_int_in(c, "dense", "in", 1, INT32_MAX, &in) ||
        hlr__config_int_in(c, "dense", "out", 1, INT32_MAX, &out) ||
        hlr__config_int_in(c, "dense", "bias", 0, 1, &bias))
        return NULL;
    return hlr_dense(in, out, bias);
}

/* A ReLU after it (hlr__absorb_relu). */
static int dense_absorb(hlr_layer *l, hlr_layer *const *next, int n) { return hlr__absorb_relu(l, next, n, 0); }

const hlr_layer_ops hlr__dense_ops = {
    .type = "dense",
    .per_sample = 1,
    .absorb = dense_absorb,
    .build = dense_build,
    .plan = dense_plan,
    .forward = dense_forward,
    .backward = dense_backward,
    .destroy = dense_destroy,
    .get_config = dense_get_config,
    .from_config = dense_from_config,
};

hlr_layer *hlr_dense(int in, int out, int bias)
{
    if (in < 1 || out < 1) {
        hlr__fail(HLR_EINVAL, "hlr_dense: in %d and out %d must both be >= 1", in, out);
        return NULL;
    }
    dense *d = (dense *)hlr__layer_alloc(&hlr__dense_ops, sizeof *d);
    if (!d)
        return NULL;
    d->in = in;
    d->out = out;
    d->has_bias = bias != 0;
    return &d->base;
}

/*
 * patch_embedding.c -- an image as a sequence of projected patches, as
 * torch's Conv2d(C, D, kernel_size=p, stride=p)(x).flatten(2).transpose(1, 2).
 *
 * Shapes: x (N, C, H, W), y (N, P, D) with P = (H/p)(W/p) patches in
 * row-major order; weight (D, C, p, p) read as W (D, K), K = C p p; bias (D).
 *   cols (N P, K): row (n, ph, pw), column (c, i, j) = x[n, c, ph p + i, pw p + j]
 *   y = cols W^T + b                          one GEMM over the whole batch
 *   backward: dW = dy^T cols, db = sum_rows dy, dcols = dy W, scattered back
 *   into dx (the patches do not overlap, so every element is written once).
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>

typedef struct patch_embedding {
    hlr_layer base;
    int C, p, D;
    int64_t H, W, P, K;
    int64_t planned;
    float *cols, *dcols; /* (planned P, K) each, one allocation */
} patch_embedding;

enum { WEIGHT, BIAS };

static hlr_status patch_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    patch_embedding *e = (patch_embedding *)l;
    char s[HLR__SHAPE_STR];
    if (in->ndim != 3 || in->d[0] != e->C)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (%d, height, width)", hlr__shape_str(in, s, sizeof s),
                               e->C);
    if (in->d[1] % e->p || in->d[2] % e->p)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s: height and width must be multiples of the patch size %d",
                               hlr__shape_str(in, s, sizeof s), e->p);
    e->H = in->d[1];
    e->W = in->d[2];
    e->P = (e->H / e->p) * (e->W / e->p);
    e->K = (int64_t)e->C * e->p * e->p; /* <= C H W: p divides H and W */
    out->ndim = 2;
    out->d[0] = e->P;
    out->d[1] = e->D;
    hlr_status st = hlr__layer_add_param(l, "weight", 4, (int64_t[]){e->D, e->C, e->p, e->p});
    if (st == HLR_OK)
        st = hlr__layer_add_param(l, "bias", 1, (int64_t[]){e->D});
    if (st != HLR_OK)
        return st;
    /* nn.Conv2d: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in); the bias uses the same bound. */
    float bound = 1.0f / sqrtf((float)e->K);
    hlr__init_uniform(hlr__param(l, WEIGHT), e->D * e->K, bound, rng);
    hlr__init_uniform(hlr__param(l, BIAS), e->D, bound, rng);
    return HLR_OK;
}

static hlr_status patch_plan(hlr_layer *l, int64_t max_batch)
{
    patch_embedding *e = (patch_embedding *)l;
    if (max_batch <= e->planned)
        return HLR_OK;
    int64_t n;
    if (hlr__mul_overflows(max_batch * e->P, 2 * e->K, &n))
        return hlr__layer_fail(l, HLR_ENOMEM, "a batch of %lld images is too large", (long long)max_batch);
    float *cols = hlr__alloc_or_fail((size_t)n, sizeof(float), "patch embedding columns");
    if (!cols)
        return HLR_ENOMEM;
    hlr__free(e->cols);
    e->cols = cols;
    e->dcols = cols + max_batch * e->P * e->K;
    e->planned = max_batch;
    return HLR_OK;
}

static void patch_destroy(hlr_layer *l)
{
    hlr__free(((patch_embedding *)l)->cols);
}

typedef struct patch_job {
    const patch_embedding *e;
    const float *src;
    float *dst;
} patch_job;

/* Images [b, e): x (n, C, H, W) -> cols rows n P .. (n+1) P - 1. */
static void gather(void *ctx, int64_t b, int64_t end)
{
    const patch_job *j = ctx;
    const patch_embedding *e = j->e;
    const int64_t p = e->p, C = e->C, H = e->H, W = e->W, Wp = W / p, K = e->K;
    for (int64_t n = b; n < end; n++)
        for (int64_t r = 0; r < e->P; r++) {
            const int64_t ph = r / Wp, pw = r % Wp;
            float *row = j->dst + (n * e->P + r) * K;
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < p; i++) {
                    const float *src = j->src + ((n * C + c) * H + ph * p + i) * W + pw * p;
                    for (int64_t jj = 0; jj < p; jj++)
                        row[(c * p + i) * p + jj] = src[jj];
                }
        }
}

/* The adjoint of gather: dcols rows -> dx (n, C, H, W), each element written once. */
static void scatter(void *ctx, int64_t b, int64_t end)
{
    const patch_job *j = ctx;
    const patch_embedding *e = j->e;
    const int64_t p = e->p, C = e->C, H = e->H, W = e->W, Wp = W / p, K = e->K;
    for (int64_t n = b; n < end; n++)
        for (int64_t r = 0; r < e->P; r++) {
            const int64_t ph = r / Wp, pw = r % Wp;
            const float *row = j->src + (n * e->P + r) * K;
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < p; i++) {
                    float *dst = j->dst + ((n * C + c) * H + ph * p + i) * W + pw * p;
                    for (int64_t jj = 0; jj < p; jj++)
                        dst[jj] = row[(c * p + i) * p + jj];
                }
        }
}

static void patch_forward(hlr_layer *l, const hlr_pass *pass, const float *x, float *y)
{
    patch_embedding *e = (patch_embedding *)l;
    const int64_t R = pass->batch * e->P;
    patch_job j = {.e = e, .src = x, .dst = e->cols};
    hlr__parallel_for(pass->batch, 8, gather, &j);
    hlrk_broadcast_rows(y, hlr__param(l, BIAS), R, e->D);
    hlrk_gemm(0, 1, R, e->D, e->K, 1.0f, e->cols, e->K, hlr__param(l, WEIGHT), e->K, 1.0f, y, e->D);
}

static void patch_backward(hlr_layer *l, const hlr_pass *pass, const float *x, const float *y, const float *dy,
                           float *dx)
{
    (void)x;
    (void)y;
    patch_embedding *e = (patch_embedding *)l;
    const int64_t R = pass->batch * e->P;
    hlrk_gemm(1, 0, e->D, e->K, R, 1.0f, dy, e->D, e->cols, e->K, 0.0f, hlr__grad(l, WEIGHT), e->K);
    hlrk_sum_rows(hlr__grad(l, BIAS), dy, R, e->D);
    if (!dx)
        return;
    hlrk_gemm(0, 0, R, e->K, e->D, 1.0f, dy, e->D, hlr__param(l, WEIGHT), e->K, 0.0f, e->dcols, e->K);
    patch_job j = {.e = e, .src = e->dcols, .dst = dx};
    hlr__parallel_for(pass->batch, 8, scatter, &j);
}

static void patch_get_config(const hlr_layer *l, hlr_config *c)
{
    const patch_embedding *e = (const patch_embedding *)l;
    hlr__config_int(c, "in_channels", e->C);
    hlr__config_int(c, "patch", e->p);
    hlr__config_int(c, "dim", e->D);
}

static hlr_layer *patch_from_config(const hlr_config *c)
{
    const char *t = "patch_embedding";
    int C, p, D;
    if (hlr__config_int_in(c, t, "in_channels", 1, INT32_MAX, &C) ||
        hlr__config_int_in(c, t, "patch", 1, INT32_MAX, &p) || hlr__config_int_in(c, t, "dim", 1, INT32_MAX, &D))
        return NULL;
    return hlr_patch_embedding(C, p, D);
}

const hlr_layer_ops hlr__patch_embedding_ops = {
    .type = "patch_embedding",
    .build = patch_build,
    .plan = patch_plan,
    .forward = patch_forward,
    .backward = patch_backward,
    .destroy = patch_destroy,
    .get_config = patch_get_config,
    .from_config = patch_from_config,
};

hlr_layer *hlr_patch_embedding(int in_channels, int patch, int dim)
{
    if (in_channels < 1 || patch < 1 || dim < 1) {
        hlr__fail(HLR_EINVAL, "hlr_patch_embedding: in_channels %d, patch %d and dim %d must all be >= 1", in_channels,
                  patch, dim);
        return NULL;
    }
    patch_embedding *e = (patch_embedding *)hlr__layer_alloc(&hlr__patch_embedding_ops, sizeof *e);
    if (!e)
        return NULL;
    e->C = in_channels;
    e->p = patch;
    e->D = dim;
    return &e->base;
}

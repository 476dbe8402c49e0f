/*
 * batchnorm.c -- batch normalisation as torch.nn.BatchNorm1d / BatchNorm2d.
 *
 * Shapes: x, y (N, C, S) with S = H W (2d), L or 1 (1d); statistics per
 * channel c over the M = N S values x[., c, .].
 *   training:  mu = mean, var = biased variance, xhat = (x - mu) / sqrt(var + eps),
 *              y = weight xhat + bias;
 *              running_mean += momentum (mu - running_mean),
 *              running_var  += momentum (var M / (M - 1) - running_var)   (unbiased; M = 1 keeps var)
 *   inference: the running statistics replace mu and var.
 *   backward (training):  dbias = sum dy,  dweight = sum dy xhat,
 *              dx = weight / sqrt(var + eps) / M (M dy - dbias - xhat dweight).
 */
#include "../internal.h"

#include <math.h>
#include <string.h>

typedef struct batchnorm {
    hlr_layer base;
    int two_d;
    int C;
    float eps, momentum;
    int64_t S;
    float *xhat;    /* last training batch, (N, C, S) */
    float *inv_std; /* (C) of the last training batch */
    int64_t planned;
} batchnorm;

enum { WEIGHT, BIAS, RUNNING_MEAN, RUNNING_VAR };

static hlr_status bn_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    batchnorm *b = (batchnorm *)l;
    char s[96];
    int ok = b->two_d ? in->ndim == 3 : (in->ndim == 1 || in->ndim == 2);
    if (!ok || in->d[0] != b->C)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s; expected %s", hlr__shape_str(in, s, sizeof s),
                               b->two_d ? "(C, H, W) with C = num_features" : "(C) or (C, L) with C = num_features");
    b->S = hlr__shape_numel(in) / b->C;
    *out = *in;
    int64_t c = b->C;
    hlr_status st = hlr__layer_add_param(l, "weight", 1, &c);
    if (st == HLR_OK)
        st = hlr__layer_add_param(l, "bias", 1, &c);
    if (st == HLR_OK)
        st = hlr__layer_add_buffer(l, "running_mean", 1, &c);
    if (st == HLR_OK)
        st = hlr__layer_add_buffer(l, "running_var", 1, &c);
    if (st != HLR_OK)
        return st;
    for (int i = 0; i < b->C; i++) {
        hlr__param(l, WEIGHT)[i] = 1.0f;
        hlr__param(l, RUNNING_VAR)[i] = 1.0f;
    }
    return HLR_OK;
}

static hlr_status bn_plan(hlr_layer *l, int64_t max_batch)
{
    batchnorm *b = (batchnorm *)l;
    if (max_batch <= b->planned)
        return HLR_OK;
    float *xhat = hlr__alloc_or_fail((size_t)(max_batch * l->in_size), sizeof *xhat, "batchnorm");
    float *inv = xhat ? hlr__alloc_or_fail((size_t)b->C, sizeof *inv, "batchnorm") : NULL;
    if (!inv) {
        hlr__free(xhat);
        return HLR_ENOMEM;
    }
    hlr__free(b->xhat);
    hlr__free(b->inv_std);
    b->xhat = xhat;
    b->inv_std = inv;
    b->planned = max_batch;
    return HLR_OK;
}

/* Channels are independent: the pool takes them in contiguous ranges. */
typedef struct bn_job {
    batchnorm *b;
    const hlr_pass *p;
    const float *x, *dy;
    float *y, *dx;
} bn_job;

static void bn_forward_channels(void *ctx, int64_t c0, int64_t c1)
{
    const bn_job *j = ctx;
    batchnorm *b = j->b;
    hlr_layer *l = &b->base;
    const hlr_pass *p = j->p;
    const float *x = j->x;
    float *y = j->y;
    const int64_t N = p->batch, C = b->C, S = b->S, M = N * S;
    const float *w = hlr__param(l, WEIGHT), *bias = hlr__param(l, BIAS);
    float *rm = hlr__param(l, RUNNING_MEAN), *rv = hlr__param(l, RUNNING_VAR);
    for (int64_t c = c0; c < c1; c++) {
        float mean, inv;
        if (p->training) {
            double sum = 0.0, sq = 0.0;
            for (int64_t n = 0; n < N; n++) {
                const float *xc = x + (n * C + c) * S;
                for (int64_t s = 0; s < S; s++)
                    sum += xc[s];
            }
            double mu = sum / (double)M;
            for (int64_t n = 0; n < N; n++) {
                const float *xc = x + (n * C + c) * S;
                for (int64_t s = 0; s < S; s++)
                    sq += ((double)xc[s] - mu) * ((double)xc[s] - mu);
            }
            double var = sq / (double)M;
            mean = (float)mu;
            inv = (float)(1.0 / sqrt(var + (double)b->eps));
            b->inv_std[c] = inv;
            double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
            rm[c] = (1.0f - b->momentum) * rm[c] + b->momentum * mean;
            rv[c] = (1.0f - b->momentum) * rv[c] + b->momentum * (float)unbiased;
        } else {
            mean = rm[c];
            inv = 1.0f / sqrtf(rv[c] + b->eps);
        }
        for (int64_t n = 0; n < N; n++) {
            const float *xc = x + (n * C + c) * S;
            float *yc = y + (n * C + c) * S;
            float *hc = p->training ? b->xhat + (n * C + c) * S : NULL;
            for (int64_t s = 0; s < S; s++) {
                float h = (xc[s] - mean) * inv;
                if (hc)
                    hc[s] = h;
                yc[s] = w[c] * h + bias[c];
            }
        }
    }
}

static void bn_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    batchnorm *b = (batchnorm *)l;
    bn_job j = {b, p, x, NULL, y, NULL};
    hlr__parallel_for(b->C, 1, bn_forward_channels, &j);
}

static void bn_backward_channels(void *ctx, int64_t c0, int64_t c1)
{
    const bn_job *j = ctx;
    batchnorm *b = j->b;
    hlr_layer *l = &b->base;
    const float *dy = j->dy;
    float *dx = j->dx;
    const int64_t N = j->p->batch, C = b->C, S = b->S, M = N * S;
    const float *w = hlr__param(l, WEIGHT);
    float *dw = hlr__grad(l, WEIGHT), *db = hlr__grad(l, BIAS);
    for (int64_t c = c0; c < c1; c++) {
        double sdy = 0.0, sdyh = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *g = dy + (n * C + c) * S, *h = b->xhat + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++) {
                sdy += g[s];
                sdyh += (double)g[s] * h[s];
            }
        }
        db[c] = (float)sdy;
        dw[c] = (float)sdyh;
        if (!dx)
            continue;
        const float k = w[c] * b->inv_std[c] / (float)M;
        const float mdy = (float)sdy, mdyh = (float)sdyh;
        for (int64_t n = 0; n < N; n++) {
            const float *g = dy + (n * C + c) * S, *h = b->xhat + (n * C + c) * S;
            float *d = dx + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++)
                d[s] = k * ((float)M * g[s] - mdy - h[s] * mdyh);
        }
    }
}

static void bn_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    bn_job j = {(batchnorm *)l, p, NULL, dy, NULL, dx};
    hlr__parallel_for(((batchnorm *)l)->C, 1, bn_backward_channels, &j);
}

static void bn_destroy(hlr_layer *l)
{
    batchnorm *b = (batchnorm *)l;
    hlr__free(b->xhat);
    hlr__free(b->inv_std);
}

static void bn_get_config(const hlr_layer *l, hlr_config *c)
{
    const batchnorm *b = (const batchnorm *)l;
    hlr__config_int(c, "num_features", b->C);
    hlr__config_float(c, "eps", b->eps);
    hlr__config_float(c, "momentum", b->momentum);
}

static hlr_layer *bn_from_config(const hlr_config *c, int two_d)
{
    const char *type = two_d ? "batchnorm2d" : "batchnorm1d";
    int nf;
    float eps, mom;
    if (hlr__config_int_in(c, type, "num_features", 1, 1 << 24, &nf) || hlr__config_float_of(c, type, "eps", &eps) ||
        hlr__config_float_of(c, type, "momentum", &mom))
        return NULL;
    return two_d ? hlr_batchnorm2d(nf, eps, mom) : hlr_batchnorm1d(nf, eps, mom);
}

static hlr_layer *bn2d_from_config(const hlr_config *c) { return bn_from_config(c, 1); }
static hlr_layer *bn1d_from_config(const hlr_config *c) { return bn_from_config(c, 0); }

const hlr_layer_ops hlr__batchnorm2d_ops = {
    .type = "batchnorm2d",
    .build = bn_build,
    .plan = bn_plan,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .get_config = bn_get_config,
    .from_config = bn2d_from_config,
};

const hlr_layer_ops hlr__batchnorm1d_ops = {
    .type = "batchnorm1d",
    .build = bn_build,
    .plan = bn_plan,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .get_config = bn_get_config,
    .from_config = bn1d_from_config,
};

static hlr_layer *bn_new(const hlr_layer_ops *ops, int two_d, int nf, float eps, float momentum, const char *fn)
{
    if (nf < 1 || nf > (1 << 24) || !(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f)) {
        hlr__fail(HLR_EINVAL, "%s: need num_features >= 1 (got %d), eps > 0 (got %g), momentum in [0, 1] (got %g)",
                  fn, nf, (double)eps, (double)momentum);
        return NULL;
    }
    batchnorm *b = (batchnorm *)hlr__layer_alloc(ops, sizeof *b);
    if (!b)
        return NULL;
    b->two_d = two_d;
    b->C = nf;
    b->eps = eps;
    b->momentum = momentum;
    return &b->base;
}

hlr_layer *hlr_batchnorm2d(int num_features, float eps, float momentum)
{
    return bn_new(&hlr__batchnorm2d_ops, 1, num_features, eps, momentum, "hlr_batchnorm2d");
}

hlr_layer *hlr_batchnorm1d(int num_features, float eps, float momentum)
{
    return bn_new(&hlr__batchnorm1d_ops, 0, num_features, eps, momentum, "hlr_batchnorm1d");
}

/*
 * layernorm.c -- layer normalisation over the last dimension, as
 * torch.nn.LayerNorm(D, eps): each row of D features is normalised with its
 * own mean and biased variance, in training and inference alike.
 *
 * Shapes: x, y (R, D) with R = N times the leading dimensions of a sample.
 *   mu = mean(x), rstd = 1 / sqrt(var(x) + eps), xhat = (x - mu) rstd,
 *   y = weight xhat + bias.
 *   backward: dbias = sum_rows dy, dweight = sum_rows dy xhat, and with
 *   g = dy weight, per row dx = rstd (g - mean(g) - xhat mean(g xhat)).
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

typedef struct layernorm {
    hlr_layer base;
    int D;
    float eps;
    int64_t rows_per_sample;
    float *mean, *rstd; /* per row of the last forward */
    int64_t planned;
} layernorm;

enum { WEIGHT, BIAS };

static hlr_status ln_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    layernorm *n = (layernorm *)l;
    if (in->d[in->ndim - 1] != n->D) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s does not end in %d features", hlr__shape_str(in, s, sizeof s),
                               n->D);
    }
    *out = *in;
    n->rows_per_sample = hlr__shape_numel(in) / n->D;
    int64_t d = n->D;
    hlr_status st = hlr__layer_add_param(l, "weight", 1, &d);
    if (st == HLR_OK)
        st = hlr__layer_add_param(l, "bias", 1, &d);
    if (st != HLR_OK)
        return st;
    for (int i = 0; i < n->D; i++)
        hlr__param(l, WEIGHT)[i] = 1.0f;
    return HLR_OK;
}

static hlr_status ln_plan(hlr_layer *l, int64_t max_batch)
{
    layernorm *n = (layernorm *)l;
    if (max_batch <= n->planned)
        return HLR_OK;
    int64_t rows = max_batch * n->rows_per_sample;
    float *mean = hlr__alloc_or_fail((size_t)rows, sizeof(float), "layer norm statistics");
    float *rstd = hlr__alloc_or_fail((size_t)rows, sizeof(float), "layer norm statistics");
    if (!mean || !rstd) {
        hlr__free(mean);
        hlr__free(rstd);
        return HLR_ENOMEM;
    }
    hlr__free(n->mean);
    hlr__free(n->rstd);
    n->mean = mean;
    n->rstd = rstd;
    n->planned = max_batch;
    return HLR_OK;
}

static void ln_destroy(hlr_layer *l)
{
    layernorm *n = (layernorm *)l;
    hlr__free(n->mean);
    hlr__free(n->rstd);
}

typedef struct ln_job {
    layernorm *n;
    const float *x, *dy;
    float *y, *dx;
} ln_job;

/* Rows [b, e): statistics in double, then y. */
static void forward_rows(void *ctx, int64_t b, int64_t e)
{
    const ln_job *j = ctx;
    layernorm *n = j->n;
    const int64_t D = n->D;
    const float *w = hlr__param(&n->base, WEIGHT), *bias = hlr__param(&n->base, BIAS);
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        double mu, ss;
        hlrk_mean_sqdev(x, D, &mu, &ss);
        float rstd = (float)(1.0 / sqrt(ss / (double)D + (double)n->eps));
        float m = (float)mu;
        for (int64_t i = 0; i < D; i++)
            y[i] = (x[i] - m) * rstd * w[i] + bias[i];
        n->mean[r] = m;
        n->rstd[r] = rstd;
    }
}

static void ln_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    layernorm *n = (layernorm *)l;
    ln_job j = {.n = n, .x = x, .y = y};
    int64_t rows = p->batch * n->rows_per_sample;
    hlr__parallel_for(rows, 64, forward_rows, &j);
}

static void backward_rows(void *ctx, int64_t b, int64_t e)
{
    const ln_job *j = ctx;
    layernorm *n = j->n;
    const int64_t D = n->D;
    const float *w = hlr__param(&n->base, WEIGHT);
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D;
        const float m = n->mean[r], rstd = n->rstd[r];
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = 0; i < D; i++) {
            double g = (double)dy[i] * w[i], xh = (double)((x[i] - m) * rstd);
            sg += g;
            sgx += g * xh;
        }
        float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
        for (int64_t i = 0; i < D; i++)
            dx[i] = rstd * (dy[i] * w[i] - mg - (x[i] - m) * rstd * mgx);
    }
}

static void ln_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    layernorm *n = (layernorm *)l;
    const int64_t D = n->D, rows = p->batch * n->rows_per_sample;
    float *dw = hlr__grad(l, WEIGHT), *db = hlr__grad(l, BIAS);
    memset(dw, 0, (size_t)D * sizeof *dw);
    memset(db, 0, (size_t)D * sizeof *db);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        const float m = n->mean[r], rstd = n->rstd[r];
        for (int64_t i = 0; i < D; i++) {
            dw[i] += dyr[i] * ((xr[i] - m) * rstd);
            db[i] += dyr[i];
        }
    }
    if (dx) {
        ln_job j = {.n = n, .x = x, .dy = dy, .dx = dx};
        hlr__parallel_for(rows, 64, backward_rows, &j);
    }
}

static void ln_get_config(const hlr_layer *l, hlr_config *c)
{
    const layernorm *n = (const layernorm *)l;
    hlr__config_int(c, "dim", n->D);
    hlr__config_float(c, "eps", n->eps);
}

static hlr_layer *ln_from_config(const hlr_config *c)
{
    int d;
    float eps;
    if (hlr__config_int_in(c, "layernorm", "dim", 1, INT32_MAX, &d) ||
        hlr__config_float_of(c, "layernorm", "eps", &eps))
        return NULL;
    return hlr_layernorm(d, eps);
}

const hlr_layer_ops hlr__layernorm_ops = {
    .type = "layernorm",
    .per_sample = 1,
    .build = ln_build,
    .plan = ln_plan,
    .forward = ln_forward,
    .backward = ln_backward,
    .destroy = ln_destroy,
    .get_config = ln_get_config,
    .from_config = ln_from_config,
};

hlr_layer *hlr_layernorm(int dim, float eps)
{
    if (dim < 1 || !(eps > 0.0f) || !isfinite(eps)) {
        hlr__fail(HLR_EINVAL, "hlr_layernorm: dim %d must be >= 1 and eps %g finite and > 0", dim, (double)eps);
        return NULL;
    }
    layernorm *n = (layernorm *)hlr__layer_alloc(&hlr__layernorm_ops, sizeof *n);
    if (!n)
        return NULL;
    n->D = dim;
    n->eps = eps;
    return &n->base;
}

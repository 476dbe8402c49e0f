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
 * Synchronised (data-parallel training with hlr_distributed.sync_batchnorm,
 * as torch.nn.SyncBatchNorm): M, mu and var are over every process's batch
 * (all-reduces of the per-channel sums, then of the squared deviations from
 * the global mean), and backward's dx uses the all-reduced dbias and dweight
 * sums over that M; the parameters' own gradients stay this process's sums,
 * which the model's gradient all-reduce then averages.
 * A ReLU after the layer, and a 2x2 max pooling after that ReLU (2d, even
 * sides), are fused into it (hlr__absorb_relu in activation.c): forward writes the
 * ReLU's, or the pooling's, output; backward masks dy, or rebuilds the
 * plane's gradient from the pooled output and the winners.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

typedef struct batchnorm {
    hlr_layer base;
    int two_d;
    int C;
    float eps, momentum;
    int64_t S, H, W;  /* S = H W for 2d; S = L or 1, H = W = 0 for 1d */
    float *mean;      /* (C), the last training batch's */
    float *inv_std;   /* (C), the last training batch's */
    /* A fused 2x2 max pooling (fuse_pool; see hlr__absorb_relu in activation.c): */
    uint8_t *win;     /* (batch, C, S / 4), each window's winner */
    int64_t slots;    /* one plane of scratch per concurrent part of a pass */
    float *plane;     /* slots x (S + HLRK_POOL_SLACK): a plane before pooling, or its gradient */
    int64_t planned;  /* the batch win is sized for (0: nothing planned yet) */
    int eval_last;    /* the last forward used the running statistics (inference): backward follows it */
    double *sums;     /* (2C + 1): synchronised statistics' per-channel sums, all-reduced */
    double sync_M;    /* the last synchronised forward's M over all processes; 0: not synchronised */
} batchnorm;

enum { WEIGHT, BIAS, RUNNING_MEAN, RUNNING_VAR };

/* 1 / sqrt(running_var + eps) of channel c: inference's scale, in every pass that uses it (forward,
 * backward after an inference forward, the fold into a convolution) the same float. */
static inline float running_inv(hlr_layer *l, int64_t c)
{
    return 1.0f / sqrtf(hlr__param(l, RUNNING_VAR)[c] + ((const batchnorm *)l)->eps);
}

extern const hlr_layer_ops hlr__batchnorm2d_ops;

static hlr_status bn_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    batchnorm *b = (batchnorm *)l;
    char s[HLR__SHAPE_STR];
    int ok = b->two_d ? in->ndim == 3 : (in->ndim == 1 || in->ndim == 2);
    if (!ok || in->d[0] != b->C)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s; expected %s", hlr__shape_str(in, s, sizeof s),
                               b->two_d ? "(C, H, W) with C = num_features" : "(C) or (C, L) with C = num_features");
    b->S = hlr__shape_numel(in) / b->C;
    b->H = b->two_d ? in->d[1] : 0;
    b->W = b->two_d ? in->d[2] : 0;
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
    if (!b->mean) {
        int64_t slots = l->fuse_pool ? hlr__pool_threads() : 0;
        float *mean = hlr__alloc_or_fail((size_t)(2 * b->C), sizeof *mean, "batchnorm");
        float *plane = mean && slots ? hlr__alloc_or_fail((size_t)(slots * (b->S + HLRK_POOL_SLACK)), sizeof *plane, "batchnorm")
                                     : NULL;
        double *sums = mean ? hlr__alloc_or_fail((size_t)(2 * b->C + 1), sizeof *sums, "batchnorm") : NULL;
        if (!mean || (slots && !plane) || !sums) {
            hlr__free(mean);
            hlr__free(plane);
            hlr__free(sums);
            return HLR_ENOMEM;
        }
        b->sums = sums;
        b->mean = mean;
        b->inv_std = mean + b->C;
        b->plane = plane;
        b->slots = slots;
    }
    if (!l->fuse_pool || max_batch <= b->planned)
        return HLR_OK;
    uint8_t *w = hlr__alloc_or_fail((size_t)(max_batch * l->out_size / 4), 1, "batchnorm pooling winners");
    if (!w)
        return HLR_ENOMEM;
    hlr__free(b->win);
    b->win = w;
    b->planned = max_batch;
    return HLR_OK;
}

/*
 * Channels are independent: the pass is split into `parts` contiguous
 * ranges of channels, part s using slot s's plane (fused pooling).
 * Training computes each channel's mean and biased variance over its
 * N planes (kernels/batchnorm.c), then y = x a + b with a = weight / sqrt(var
 * + eps) and b = bias - mean a, as torch's CPU kernel does; a fused ReLU
 * follows at once, and a fused pooling takes each plane, written in split
 * rows to the slot's plane, to the output and the winners.
 */
typedef struct bn_job {
    batchnorm *b;
    const hlr_pass *p;
    const float *x, *y, *dy;
    float *out, *dx;
    int64_t parts;
    int phase; /* synchronised: forward 1 sums, 2 squared deviations, 3 apply; backward 1 sums, 2 dx */
} bn_job;

static void bn_forward_part(void *ctx, int64_t s0, int64_t s1)
{
    const bn_job *j = ctx;
    batchnorm *b = j->b;
    hlr_layer *l = &b->base;
    const hlr_pass *p = j->p;
    const int64_t N = p->batch, C = b->C, S = b->S, M = N * S, So = l->fuse_pool ? S / 4 : S;
    const float *w = hlr__param(l, WEIGHT), *bias = hlr__param(l, BIAS);
    float *rm = hlr__param(l, RUNNING_MEAN), *rv = hlr__param(l, RUNNING_VAR);
    for (int64_t s = s0; s < s1; s++)
        for (int64_t c = s * C / j->parts; c < (s + 1) * C / j->parts; c++) {
            const float *xc = j->x + c * S;
            float mean, inv;
            if (j->phase == 1) { /* synchronised: this process's sum, to be all-reduced */
                b->sums[c] = hlrk_bn_sum(xc, N, C * S, S);
                continue;
            }
            if (j->phase == 2) {
                b->sums[c] = hlrk_bn_sqdev(xc, N, C * S, S, b->mean[c]);
                continue;
            }
            if (j->phase == 3) {
                mean = b->mean[c];
                inv = b->inv_std[c];
            } else if (p->training) {
                mean = (float)(hlrk_bn_sum(xc, N, C * S, S) / (double)M);
                double var = hlrk_bn_sqdev(xc, N, C * S, S, mean) / (double)M;
                inv = (float)(1.0 / sqrt(var + (double)b->eps));
                b->mean[c] = mean;
                b->inv_std[c] = inv;
                double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
                rm[c] = (1.0f - b->momentum) * rm[c] + b->momentum * mean;
                rv[c] = (1.0f - b->momentum) * rv[c] + b->momentum * (float)unbiased;
            } else {
                mean = rm[c];
                inv = running_inv(l, c);
            }
            const float a = w[c] * inv, sh = bias[c] - mean * a;
            for (int64_t n = 0; n < N; n++) {
                const float *xp = xc + n * C * S;
                float *yp = j->out + (n * C + c) * So;
                if (l->fuse_pool) {
                    float *pl = b->plane + s * (S + HLRK_POOL_SLACK);
                    hlrk_bn_apply_split(pl, xp, b->H, b->W, a, sh);
                    hlrk_maxpool2x2_win(yp, !p->no_backward ? b->win + (n * C + c) * So : NULL, pl, 1, b->H, b->W);
                } else {
                    hlrk_bn_apply(yp, xp, S, a, sh, l->fuse_relu);
                }
            }
        }
}

/* Parts of a pass over a batch of N: one per thread (or slot), at most one per channel, and one alone
 * below HLR__SERIAL_FLOATS values.  Channels are computed alike whatever their part: the same bits. */
static int64_t parts_of(const batchnorm *b, int64_t N)
{
    if (N * b->C * b->S < HLR__SERIAL_FLOATS)
        return 1;
    int64_t t = b->base.fuse_pool ? b->slots : hlr__pool_threads();
    return t < b->C ? t : b->C;
}

/* A synchronised pass's all-reduce; 0, or -1 with the failure kept in the pass's status. */
static int all_reduce(const hlr_pass *p, double *v, int64_t n)
{
    hlr_status st = p->sync->allreduce_f64(v, n, p->sync->user);
    if (st == HLR_OK)
        return 0;
    if (p->sync_status && *p->sync_status == HLR_OK)
        *p->sync_status = hlr__dist_failed(st, "batchnorm", "all-reduce of the batch statistics");
    return -1;
}

static void bn_pass(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    batchnorm *b = (batchnorm *)l;
    b->eval_last = !p->training;
    bn_job j = {b, p, x, NULL, NULL, y, NULL, parts_of(b, p->batch), 0};
    b->sync_M = 0;
    if (p->training && p->sync && p->sync->size > 1) {
        /* Statistics over every process's batch: the sums, then the squared deviations from the global mean. */
        const int64_t C = b->C;
        j.phase = 1;
        hlr__parallel_for(j.parts, 1, bn_forward_part, &j);
        b->sums[C] = (double)(p->batch * b->S);
        if (all_reduce(p, b->sums, C + 1) != 0)
            return;
        const double M = b->sums[C];
        for (int64_t c = 0; c < C; c++)
            b->mean[c] = (float)(b->sums[c] / M);
        j.phase = 2;
        hlr__parallel_for(j.parts, 1, bn_forward_part, &j);
        if (all_reduce(p, b->sums, C) != 0)
            return;
        float *rm = hlr__param(l, RUNNING_MEAN), *rv = hlr__param(l, RUNNING_VAR);
        for (int64_t c = 0; c < C; c++) {
            double var = b->sums[c] / M, unbiased = M > 1 ? var * M / (M - 1) : var;
            b->inv_std[c] = (float)(1.0 / sqrt(var + (double)b->eps));
            rm[c] = (1.0f - b->momentum) * rm[c] + b->momentum * b->mean[c];
            rv[c] = (1.0f - b->momentum) * rv[c] + b->momentum * (float)unbiased;
        }
        b->sync_M = M;
        j.phase = 3;
    }
    hlr__parallel_for(j.parts, 1, bn_forward_part, &j);
}

static void bn_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    bn_pass(l, p, x, y);
    if (p->training)
        hlr__weights_written(); /* the running statistics, once written */
}

/*
 * Backward, per channel, with g the gradient at the normalised output (dy,
 * masked by a fused ReLU, sent through a fused pooling): dbias = sum g,
 * dweight = sum g xhat with xhat = (x - mean) inv, and
 *   dx = weight inv / M (M g - dbias - xhat dweight)
 *      = k g + (-k inv^2 / M sum g (x - mean)) (x - mean) - k / M dbias,  k = weight inv.
 * xhat is not kept: x and the batch's mean and inv give it again.
 */
static void bn_backward_part(void *ctx, int64_t s0, int64_t s1)
{
    const bn_job *j = ctx;
    batchnorm *b = j->b;
    hlr_layer *l = &b->base;
    const int64_t N = j->p->batch, C = b->C, S = b->S, M = N * S, So = l->fuse_pool ? S / 4 : S;
    const float *w = hlr__param(l, WEIGHT);
    float *dw = hlr__grad(l, WEIGHT), *db = hlr__grad(l, BIAS);
    const float *mask = l->fuse_relu && !l->fuse_pool ? j->y : NULL;
    for (int64_t s = s0; s < s1; s++) {
        float *pl = l->fuse_pool ? b->plane + s * (S + HLRK_POOL_SLACK) : NULL;
        for (int64_t c = s * C / j->parts; c < (s + 1) * C / j->parts; c++) {
            /* after an inference forward the statistics are the running ones, constants of x */
            const float *xc = j->x + c * S;
            const float mean = b->eval_last ? hlr__param(l, RUNNING_MEAN)[c] : b->mean[c],
                        inv = b->eval_last ? running_inv(l, c) : b->inv_std[c];
            double sg = 0.0, sgx = 0.0;
            if (l->fuse_pool && j->phase != 2)
                for (int64_t n = 0; n < N; n++) {
                    const int64_t o = (n * C + c) * So;
                    double a1, a2;
                    hlrk_maxpool2x2_relu_backward(pl, j->y + o, b->win + o, j->dy + o, 1, b->H, b->W);
                    hlrk_bn_grad_sums(pl, NULL, xc + n * C * S, 1, S, S, mean, &a1, &a2);
                    sg += a1;
                    sgx += a2;
                }
            else if (j->phase != 2)
                hlrk_bn_grad_sums(j->dy + c * S, mask ? mask + c * S : NULL, xc, N, C * S, S, mean, &sg, &sgx);
            if (j->phase != 2) {
                db[c] = (float)sg;
                dw[c] = (float)(sgx * inv);
            }
            if (j->phase == 1) { /* synchronised: this process's sums, to be all-reduced */
                b->sums[c] = sg;
                b->sums[C + c] = sgx;
                continue;
            }
            double Mx = (double)M;
            if (j->phase == 2) { /* everyone's sums over everyone's M */
                sg = b->sums[c];
                sgx = b->sums[C + c];
                Mx = b->sync_M;
            }
            if (!j->dx)
                continue;
            const float k = w[c] * inv, kb = b->eval_last ? 0.0f : (float)(-(double)k * inv * inv * sgx / Mx),
                        kc = b->eval_last ? 0.0f : (float)(-(double)k * sg / Mx);
            for (int64_t n = 0; n < N; n++) {
                const int64_t o = (n * C + c) * So, i = (n * C + c) * S;
                const float *g = j->dy + i, *gm = mask ? mask + i : NULL;
                if (l->fuse_pool) {
                    hlrk_maxpool2x2_relu_backward(pl, j->y + o, b->win + o, j->dy + o, 1, b->H, b->W);
                    g = pl;
                }
                hlrk_bn_dx(j->dx + i, g, gm, j->x + i, S, mean, k, kb, kc);
            }
        }
    }
}

static void bn_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    batchnorm *b = (batchnorm *)l;
    bn_job j = {b, p, x, y, dy, NULL, dx, parts_of(b, p->batch), 0};
    if (b->sync_M > 0 && !b->eval_last && p->sync && p->sync->size > 1) {
        j.phase = 1; /* this process's sums (and the parameters' own gradients) */
        hlr__parallel_for(j.parts, 1, bn_backward_part, &j);
        if (all_reduce(p, b->sums, 2 * (int64_t)b->C) != 0 || !dx)
            return;
        j.phase = 2;
    }
    hlr__parallel_for(j.parts, 1, bn_backward_part, &j);
}

static void bn_destroy(hlr_layer *l)
{
    batchnorm *b = (batchnorm *)l;
    hlr__free(b->mean); /* inv_std shares its allocation */
    hlr__free(b->sums);
    hlr__free(b->plane);
    hlr__free(b->win);
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

int hlr__batchnorm2d_channels(const hlr_layer *l)
{
    return l->ops == &hlr__batchnorm2d_ops ? ((const batchnorm *)l)->C : 0;
}

void hlr__batchnorm_affine(hlr_layer *l, float *a, float *shift)
{
    const batchnorm *b = (const batchnorm *)l;
    const float *w = hlr__param(l, WEIGHT), *bias = hlr__param(l, BIAS), *rm = hlr__param(l, RUNNING_MEAN);
    for (int c = 0; c < b->C; c++) { /* as bn_forward_part's inference */
        a[c] = w[c] * running_inv(l, c);
        shift[c] = bias[c] - rm[c] * a[c];
    }
}

/* A ReLU after it, and for a 2d layer a 2x2 max pooling after that (hlr__absorb_relu). */
static int bn_absorb(hlr_layer *l, hlr_layer *const *next, int n)
{
    return hlr__absorb_relu(l, next, n, ((const batchnorm *)l)->two_d);
}

const hlr_layer_ops hlr__batchnorm2d_ops = {
    .type = "batchnorm2d",
    .per_sample = 1,
    .build = bn_build,
    .plan = bn_plan,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .absorb = bn_absorb,
    .get_config = bn_get_config,
    .from_config = bn2d_from_config,
};

const hlr_layer_ops hlr__batchnorm1d_ops = {
    .type = "batchnorm1d",
    .per_sample = 1,
    .build = bn_build,
    .plan = bn_plan,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .absorb = bn_absorb,
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

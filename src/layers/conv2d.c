/*
 * conv2d.c -- 2-D convolution as torch.nn.Conv2d: weight (Cout, Cin/groups,
 * kh, kw), bias (Cout), computed as im2col + one GEMM per group over a chunk
 * of the batch.
 *
 * Shapes: x (N, Cin, H, W), y (N, Cout, Ho, Wo), P = Ho Wo, K = Cin/groups kh kw.
 * For a chunk of nb samples, cols (groups K, nb P) and
 *   forward:  tmp_g (Cout/groups, nb P) = W_g (Cout/groups, K) cols_g (K, nb P);  y[n][co][p] = tmp[co][n P + p] + b[co]
 *   backward: dtmp[co][n P + p] = dy[n][co][p];
 *             dW_g += dtmp_g cols_g^T;  db[co] = sum over n, p of dy;
 *             dcols_g = W_g^T dtmp_g, folded back into dx by col2im.
 * With a fused ReLU (fuse_relu: the model's "relu" layer after this one),
 * the forward applies it while moving tmp into y, and the backward masks dy
 * by y > 0 while moving it into dtmp.
 * A convolution with few taps (K <= DIRECT_MAX_K, stride 1, dilation 1, one
 * group: a first layer on a grey image) computes its forward pass directly,
 * sample by sample (kernels/conv_direct.c); its backward is the GEMM one.
 * Inference runs sample by sample too: im2col of one sample into a
 * per-thread scratch and GEMMs straight into y, all in cache, no layout copy.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

/* Largest column buffer (floats) before the batch is cut into chunks: 16 MiB. */
#define COLS_BUDGET ((int64_t)1 << 22)
/* Largest K computed directly: below it, packing dominates a GEMM. */
#define DIRECT_MAX_K HLRK_DIRECT_MAX_TAPS

typedef struct conv2d {
    hlr_layer base;
    int cin, cout, kh, kw, stride, pad, dil, groups, has_bias;
    hlrk_conv_geom g; /* over all input channels; groups are row blocks of cols */
    int64_t K, P;     /* per group: Cin/groups kh kw; Ho Wo */
    int64_t chunk;    /* samples per column buffer */
    float *cols, *tmp;
    int64_t planned;
    int cols_hold_batch; /* the last training forward's columns of the whole batch are still in cols */
    int direct;          /* forward by hlrk_conv_direct */
    float *scratch;      /* direct: `slots` scratch areas of slot_size floats, one per concurrent part */
    int64_t slots, slot_size;
} conv2d;

static hlr_status conv_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    conv2d *c = (conv2d *)l;
    char s[96];
    if (in->ndim != 3 || in->d[0] != c->cin)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s; expected (%d, H, W)", hlr__shape_str(in, s, sizeof s),
                               c->cin);
    int64_t H = in->d[1], W = in->d[2];
    int64_t ekh = (int64_t)c->dil * (c->kh - 1) + 1, ekw = (int64_t)c->dil * (c->kw - 1) + 1;
    if (H + 2 * c->pad < ekh || W + 2 * c->pad < ekw)
        return hlr__layer_fail(l, HLR_ESHAPE, "kernel %dx%d (dilation %d) does not fit the padded input %lldx%lld",
                               c->kh, c->kw, c->dil, (long long)(H + 2 * c->pad), (long long)(W + 2 * c->pad));
    c->g = (hlrk_conv_geom){.C = c->cin, .C_stride = c->cin, .H = H, .W = W, .kh = c->kh, .kw = c->kw,
                            .stride = c->stride, .pad = c->pad, .dil = c->dil};
    c->g.Ho = (H + 2 * c->pad - ekh) / c->stride + 1;
    c->g.Wo = (W + 2 * c->pad - ekw) / c->stride + 1;
    c->P = c->g.Ho * c->g.Wo;
    c->K = (int64_t)(c->cin / c->groups) * c->kh * c->kw;
    c->direct = c->groups == 1 && c->stride == 1 && c->dil == 1 && c->K <= DIRECT_MAX_K;
    *out = (hlr_shape){.ndim = 3, .d = {c->cout, c->g.Ho, c->g.Wo}};

    hlr_status st = hlr__layer_add_param(l, "weight", 4, (int64_t[]){c->cout, c->cin / c->groups, c->kh, c->kw});
    if (st == HLR_OK && c->has_bias)
        st = hlr__layer_add_param(l, "bias", 1, (int64_t[]){c->cout});
    if (st != HLR_OK)
        return st;
    float bound = 1.0f / sqrtf((float)c->K); /* kaiming_uniform_(a=sqrt(5)) and torch's bias bound */
    hlr__init_uniform(hlr__param(l, 0), c->cout * c->K, bound, rng);
    if (c->has_bias)
        hlr__init_uniform(hlr__param(l, 1), c->cout, bound, rng);
    return HLR_OK;
}

static hlr_status conv_plan(hlr_layer *l, int64_t max_batch)
{
    conv2d *c = (conv2d *)l;
    if (max_batch <= c->planned)
        return HLR_OK;
    int64_t rows = c->K * c->groups;
    int64_t chunk = COLS_BUDGET / (rows * c->P);
    chunk = chunk < 1 ? 1 : chunk > max_batch ? max_batch : chunk;
    float *cols = hlr__alloc_or_fail((size_t)(rows * chunk * c->P), sizeof(float), "conv2d columns");
    float *tmp = cols ? hlr__alloc_or_fail((size_t)(c->cout * chunk * c->P), sizeof(float), "conv2d output") : NULL;
    int64_t slots = hlr__pool_threads(),
            slot_size = c->direct ? hlrk_conv_direct_scratch(&c->g) : c->K * c->groups * c->P;
    float *scratch = tmp && slots ? hlr__alloc_or_fail((size_t)(slots * slot_size), sizeof(float), "conv2d scratch")
                                  : NULL;
    if (!tmp || (slots && !scratch)) {
        hlr__free(cols);
        hlr__free(tmp);
        return HLR_ENOMEM;
    }
    hlr__free(c->cols);
    hlr__free(c->tmp);
    hlr__free(c->scratch);
    c->cols = cols;
    c->tmp = tmp;
    c->scratch = scratch;
    c->slots = slots;
    c->slot_size = slot_size;
    c->chunk = chunk;
    c->planned = max_batch;
    return HLR_OK;
}

/* Moving between the GEMM's layout (Cout, nb P) and the tensor's (nb, Cout, P). */
typedef struct layout_job {
    const conv2d *c;
    float *y;         /* (nb, Cout, P) */
    float *tmp;       /* (Cout, nb P) */
    const float *mask; /* to_gemm: the forward's output when a ReLU is fused, else NULL */
    const float *b;   /* bias or NULL; to_tensor only */
    int64_t ld, size; /* nb P; Cout P */
} layout_job;

static void to_tensor(void *ctx, int64_t n0, int64_t n1)
{
    const layout_job *j = ctx;
    const int64_t P = j->c->P;
    const int relu = j->c->base.fuse_relu;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t co = 0; co < j->c->cout; co++)
            (relu ? hlrk_copy_add_relu : hlrk_copy_add)(j->y + n * j->size + co * P, j->tmp + co * j->ld + n * P,
                                                         j->b ? j->b[co] : 0.0f, P);
}

/* dy into the GEMM's layout; with a fused ReLU, masked by the output (mask) > 0. */
static void to_gemm(void *ctx, int64_t n0, int64_t n1)
{
    const layout_job *j = ctx;
    const int64_t P = j->c->P;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t co = 0; co < j->c->cout; co++) {
            float *t = j->tmp + co * j->ld + n * P;
            const float *dy = j->y + n * j->size + co * P;
            if (j->mask)
                hlrk_relu_backward(t, j->mask + n * j->size + co * P, dy, P);
            else
                memcpy(t, dy, (size_t)P * sizeof(float));
        }
}

/* Slots [s0, s1): slot s convolves its share of the samples, each with its
 * own im2col into the slot's scratch and GEMMs straight into y, then bias
 * and the fused ReLU while y is still in cache. */
static void per_sample_part(void *ctx, int64_t s0, int64_t s1);

typedef struct direct_job {
    conv2d *c;
    float *y;
    const float *x, *b;
    int64_t batch, parts; /* parts <= c->slots: slots [0, parts) share the batch */
} direct_job;

/* Slots [s0, s1): slot s computes its share of the samples in its own scratch. */
static void direct_part(void *ctx, int64_t s0, int64_t s1)
{
    const direct_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    for (int64_t s = s0; s < s1; s++)
        for (int64_t n = s * j->batch / j->parts; n < (s + 1) * j->batch / j->parts; n++)
            hlrk_conv_direct(j->y + n * l->out_size, j->x + n * l->in_size, hlr__param(&c->base, 0), j->b, c->cout,
                             l->fuse_relu, &c->g, c->scratch + s * c->slot_size);
}

static void per_sample_part(void *ctx, int64_t s0, int64_t s1)
{
    const direct_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t P = c->P, K = c->K, co_g = c->cout / c->groups;
    const float *w = hlr__param(&c->base, 0);
    for (int64_t s = s0; s < s1; s++) {
        float *cols = c->scratch + s * c->slot_size;
        for (int64_t n = s * j->batch / j->parts; n < (s + 1) * j->batch / j->parts; n++) {
            float *y = j->y + n * l->out_size;
            hlrk_im2col(cols, j->x + n * l->in_size, &c->g, 1);
            for (int grp = 0; grp < c->groups; grp++)
                hlrk_gemm1(0, 0, co_g, P, K, 1.0f, w + grp * co_g * K, K, cols + grp * K * P, P, 0.0f,
                           y + grp * co_g * P, P);
            for (int64_t co = 0; co < c->cout; co++)
                (l->fuse_relu ? hlrk_copy_add_relu : hlrk_copy_add)(y + co * P, y + co * P, j->b ? j->b[co] : 0.0f,
                                                                     P);
        }
    }
}

static void conv_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    conv2d *c = (conv2d *)l;
    const int64_t P = c->P, K = c->K, co_g = c->cout / c->groups;
    const float *w = hlr__param(l, 0), *b = c->has_bias ? hlr__param(l, 1) : NULL;
    if (c->direct) {
        c->cols_hold_batch = 0;
        direct_job j = {c, y, x, b, p->batch, c->slots < p->batch ? c->slots : p->batch};
        hlr__parallel_for(j.parts, 1, direct_part, &j);
        return;
    }
    if (!p->training) { /* measured: faster than one GEMM over the batch; training keeps that for its backward */
        c->cols_hold_batch = 0;
        direct_job j = {c, y, x, b, p->batch, c->slots < p->batch ? c->slots : p->batch};
        hlr__parallel_for(j.parts, 1, per_sample_part, &j);
        return;
    }
    /* When the whole batch fits one chunk, backward reuses these columns. */
    c->cols_hold_batch = p->training && p->batch <= c->chunk;
    for (int64_t s = 0; s < p->batch; s += c->chunk) {
        int64_t nb = p->batch - s < c->chunk ? p->batch - s : c->chunk, ld = nb * P;
        hlrk_im2col(c->cols, x + s * l->in_size, &c->g, nb);
        for (int grp = 0; grp < c->groups; grp++)
            hlrk_gemm(0, 0, co_g, ld, K, 1.0f, w + grp * co_g * K, K, c->cols + grp * K * ld, ld, 0.0f,
                      c->tmp + grp * co_g * ld, ld);
        layout_job j = {c, y + s * l->out_size, c->tmp, NULL, b, ld, l->out_size};
        hlr__parallel_for(nb, 1, to_tensor, &j);
    }
}

static void conv_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    conv2d *c = (conv2d *)l;
    const int64_t P = c->P, K = c->K, co_g = c->cout / c->groups;
    const float *w = hlr__param(l, 0);
    float *dw = hlr__grad(l, 0), *db = c->has_bias ? hlr__grad(l, 1) : NULL;
    if (db)
        memset(db, 0, (size_t)c->cout * sizeof *db);
    for (int64_t s = 0; s < p->batch; s += c->chunk) {
        int64_t nb = p->batch - s < c->chunk ? p->batch - s : c->chunk, ld = nb * P;
        layout_job j = {c, (float *)(dy + s * l->out_size), c->tmp, l->fuse_relu ? y + s * l->out_size : NULL, NULL,
                        ld, l->out_size}; /* y only read */
        hlr__parallel_for(nb, 1, to_gemm, &j);
        if (db) /* the (masked) dy, sample by sample in order */
            for (int64_t n = 0; n < nb; n++)
                for (int64_t co = 0; co < c->cout; co++)
                    db[co] += hlrk_sum(c->tmp + co * ld + n * P, P);
        if (!c->cols_hold_batch)
            hlrk_im2col(c->cols, x + s * l->in_size, &c->g, nb);
        c->cols_hold_batch = 0; /* from here on cols holds gradients */
        float beta = s == 0 ? 0.0f : 1.0f;
        for (int grp = 0; grp < c->groups; grp++)
            hlrk_gemm(0, 1, co_g, K, ld, 1.0f, c->tmp + grp * co_g * ld, ld, c->cols + grp * K * ld, ld, beta,
                      dw + grp * co_g * K, K);
        if (!dx)
            continue;
        for (int grp = 0; grp < c->groups; grp++)
            hlrk_gemm(1, 0, K, ld, co_g, 1.0f, w + grp * co_g * K, K, c->tmp + grp * co_g * ld, ld, 0.0f,
                      c->cols + grp * K * ld, ld);
        float *dxs = dx + s * l->in_size;
        memset(dxs, 0, (size_t)(nb * l->in_size) * sizeof *dxs);
        hlrk_col2im(dxs, c->cols, &c->g, nb);
    }
}

static void conv_destroy(hlr_layer *l)
{
    conv2d *c = (conv2d *)l;
    hlr__free(c->cols);
    hlr__free(c->tmp);
    hlr__free(c->scratch);
}

static void conv_get_config(const hlr_layer *l, hlr_config *cfg)
{
    const conv2d *c = (const conv2d *)l;
    hlr__config_int(cfg, "in_channels", c->cin);
    hlr__config_int(cfg, "out_channels", c->cout);
    hlr__config_int(cfg, "kernel_h", c->kh);
    hlr__config_int(cfg, "kernel_w", c->kw);
    hlr__config_int(cfg, "stride", c->stride);
    hlr__config_int(cfg, "padding", c->pad);
    hlr__config_int(cfg, "dilation", c->dil);
    hlr__config_int(cfg, "groups", c->groups);
    hlr__config_int(cfg, "bias", c->has_bias);
}

static hlr_layer *conv_from_config(const hlr_config *cfg)
{
    int v[9];
    static const char *const keys[9] = {"in_channels", "out_channels", "kernel_h", "kernel_w", "stride",
                                        "padding",     "dilation",     "groups",   "bias"};
    for (int i = 0; i < 9; i++)
        if (hlr__config_int_in(cfg, "conv2d", keys[i], 0, 1 << 20, &v[i]))
            return NULL;
    return hlr_conv2d(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
}

const hlr_layer_ops hlr__conv2d_ops = {
    .type = "conv2d",
    .fuses_relu = 1,
    .build = conv_build,
    .plan = conv_plan,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
    .get_config = conv_get_config,
    .from_config = conv_from_config,
};

hlr_layer *hlr_conv2d(int in_channels, int out_channels, int kernel_h, int kernel_w, int stride, int padding,
                      int dilation, int groups, int bias)
{
    const char *fn = "hlr_conv2d";
    if (in_channels < 1 || out_channels < 1 || kernel_h < 1 || kernel_w < 1 || stride < 1 || dilation < 1 ||
        groups < 1 || padding < 0) {
        hlr__fail(HLR_EINVAL,
                  "%s: channels (%d, %d), kernel (%d, %d), stride %d, dilation %d and groups %d must be >= 1, "
                  "padding %d >= 0",
                  fn, in_channels, out_channels, kernel_h, kernel_w, stride, dilation, groups, padding);
        return NULL;
    }
    if (in_channels % groups || out_channels % groups) {
        hlr__fail(HLR_EINVAL, "%s: groups %d must divide both channel counts (%d, %d)", fn, groups, in_channels,
                  out_channels);
        return NULL;
    }
    if (kernel_h > 65536 || kernel_w > 65536 || padding > 65536 || stride > 65536 || dilation > 65536 ||
        in_channels > (1 << 20) || out_channels > (1 << 20)) {
        hlr__fail(HLR_EINVAL, "%s: a size is beyond any image this library handles", fn);
        return NULL;
    }
    conv2d *c = (conv2d *)hlr__layer_alloc(&hlr__conv2d_ops, sizeof *c);
    if (!c)
        return NULL;
    c->cin = in_channels;
    c->cout = out_channels;
    c->kh = kernel_h;
    c->kw = kernel_w;
    c->stride = stride;
    c->pad = padding;
    c->dil = dilation;
    c->groups = groups;
    c->has_bias = bias != 0;
    return &c->base;
}

/*
 * conv2d.c -- 2-D convolution as torch.nn.Conv2d: weight (Cout, Cin/groups,
 * kh, kw), bias (Cout), computed sample by sample so that each sample's
 * columns stay in cache, the samples shared among the pool's threads.
 *
 * Shapes: x (N, Cin, H, W), y (N, Cout, Ho, Wo), P = Ho Wo, K = Cin/groups kh kw.
 * Per sample n, cols (groups K, P) = im2col(x[n]) and, per group g,
 *   forward:  y[n]_g (Cout/groups, P) = W_g (Cout/groups, K) cols_g (K, P), + b
 *   backward: dW_g += dy[n]_g cols_g^T;  db[co] += sum over p of dy[n][co];
 *             dcols_g = W_g^T dy[n]_g, folded back into dx[n] by col2im.
 * Each thread sums dW and db over its own samples; the partial sums are then
 * added in thread order (the same bits for a given thread count).
 * With a fused ReLU (fuse_relu: the model's "relu" layer after this one),
 * the forward applies it with the bias, and the backward masks dy by y > 0.
 * With a fused 2x2 max pooling after that ReLU (fuse_pool; direct and
 * Winograd convolutions), each sample's output goes to the slot's buffer,
 * in split rows, and is pooled from there into y, the winner of each
 * window kept (one byte); backward rebuilds the sample's masked dy from
 * the pooled y, dy and winners (kernels/pool.c).
 * A convolution with few taps (K <= DIRECT_MAX_K, stride 1, dilation 1, one
 * group: a first layer on a grey image) computes its forward pass directly
 * (kernels/conv_direct.c): a GEMM with K = 9 spends its time packing.
 * Any other 3x3 convolution with stride 1, dilation 1 and one group runs
 * Winograd's F(2x2, 3x3) (kernels/winograd.c): per block of samples, the
 * inputs' transformed patches V (16, Cin, tiles), 16 GEMMs
 * M[xi] = U[xi] V[xi] with the transformed filters U (16, Cout, Cin), and
 * the outputs' inverse transform; 2.25 times fewer multiply-adds than
 * im2col's GEMM.  Backward: dM from dy, dU[xi] += dM[xi] V[xi]^T (summed
 * per thread, then in thread order as dW), dV[xi] = U[xi]^T dM[xi] folded
 * back into dx.  V is computed again in the backward pass rather than kept.
 * A block of at most HLRK_WINO_SMALL_T tiles (one 14 x 14 image has 49)
 * multiplies by hlrk_wino_products instead of sgemm where the CPU has FMA,
 * from U transposed (Ut, made when a pass first needs it after U is made),
 * without sgemm's packing; a fused pooling in inference is done by the
 * output transform (hlrk_wino_output_pooled: a tile is a window).
 * Measured against one GEMM over the whole batch (columns of 64 samples,
 * 14 MB for the cnn's second layer, and a layout copy each way): faster,
 * and far less memory.
 * Inference folds a batch norm that follows (conv_fold, l->fold) into the
 * weights and bias: with the batch norm's y = x a + shift per channel,
 * W'[co] = a[co] W[co] and b'[co] = a[co] b[co] + shift[co], and the batch
 * norm's fused ReLU and pooling are applied here, so the convolution's own
 * output is never written (the batch norm's pass over it and its pooling
 * plane were 14 % of the cnn-bn's inference).  The folded weights (and
 * their Winograd transform) are made again whenever the weights, the bias
 * or the batch norm's a and shift change, as U is.
 * A batch smaller than the pool's threads (one image: predict, a live
 * service) would leave threads idle, so each sample's output channels are
 * split among them instead (channel_part), for direct and Winograd
 * convolutions worth it (CHANNEL_SPLIT_MACS a group): each group computes
 * the sample's V again, and its channels with the bits a whole sample's
 * pass gives them.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

/* Largest K computed directly: below it, packing dominates a GEMM. */
#define DIRECT_MAX_K HLRK_DIRECT_MAX_TAPS
/* Winograd tiles per block of samples: enough columns for the GEMMs to run
 * near full speed, few enough that V and M stay near the cache, and few
 * enough that each of the block's 16 products takes at most WINO_BLOCK_MACS
 * multiply-adds (Cout Cin tiles), which matters for wide layers (how both
 * were chosen: docs/design.md, Convolution). */
#define WINO_BLOCK_TILES 400
_Static_assert(WINO_BLOCK_TILES <= HLRK_WINO_SMALL_T, "a block of several samples' tiles fits hlrk_wino_products");
#define WINO_BLOCK_MACS 500000
/* A batch smaller than the pool's threads (one image) splits each sample's
 * output channels among them, in groups of at least this many
 * multiply-adds: below it the hand-off costs more than it saves. */
#define CHANNEL_SPLIT_MACS 100000

typedef struct conv2d {
    hlr_layer base;
    int cin, cout, kh, kw, stride, pad, dil, groups, has_bias;
    hlrk_conv_geom g; /* over all input channels; groups are row blocks of cols */
    int64_t K, P;     /* per group: Cin/groups kh kw; Ho Wo */
    int direct;       /* forward by hlrk_conv_direct */
    int wino, no_wino; /* Winograd F(2x2, 3x3); hlr__conv2d_no_winograd() */
    int64_t tiles, block, wcols; /* Winograd tiles per sample, samples per block, columns of a block's V and M */
    int64_t planned;
    /* Per slot (one per concurrent part of a pass, `slots` of them): */
    int64_t slots;
    float *scratch; /* slot_size floats: the direct kernel's padded planes */
    int64_t slot_size;
    float *cols1;     /* (groups K, P): one sample's columns, then their gradient */
    float *dy1;       /* (Cout, P): dy masked by a fused ReLU */
    float *dw1, *db1; /* partial weight and bias gradients (Winograd: dU) */
    float *V1, *M1;   /* Winograd: (16, Cin, wcols), (16, Cout, wcols) */
    float *U;         /* Winograd: the transformed filters (16, Cout, Cin), shared */
    float *Ut;        /* few tiles a sample (hlrk_wino_small): U transposed (16, Cin, Cout), when ut_ok */
    int ut_ok;
    float *w_seen;    /* Winograd: the weights U was made from (Cout, Cin, 3, 3) */
    hlr_weights_seen u_seen; /* U holds the transform of w_seen (internal.h) */
    float *yfull;     /* fused pooling: (Cout, P), one sample's output before pooling */
    uint8_t *win;     /* fused pooling: (batch, Cout, P / 4), each window's winner */
    int64_t win_planned;
    int64_t ystride;  /* floats per sample of y and dy: out_size, or the pooled size */
    int64_t ysz;      /* floats per slot of dy1 and yfull */
    /* Inference with the batch norm after it folded in (l->fold): */
    float *fw;    /* (Cout, K) W' then (Cout) b' */
    float *fU;    /* Winograd: W' transformed (16, Cout, Cin) */
    float *fUt;   /* and transposed, as Ut, when fut_ok */
    int fut_ok;
    float *fseen; /* what fw was made from: W (Cout K), then a, shift and b (3 Cout) */
    float *fnow;  /* this pass's a, shift and b (3 Cout) */
    hlr_weights_seen fw_seen, fab_seen; /* fw was made from fseen's two parts (internal.h) */
} conv2d;

extern const hlr_layer_ops hlr__conv2d_ops;

void hlr__conv2d_no_winograd(hlr_layer *l)
{
    if (l && l->ops == &hlr__conv2d_ops)
        ((conv2d *)l)->no_wino = 1;
}

static hlr_status conv_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    conv2d *c = (conv2d *)l;
    char s[HLR__SHAPE_STR];
    if (in->ndim != 3 || in->d[0] != c->cin)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s; expected (%d, H, W)", hlr__shape_str(in, s, sizeof s), c->cin);
    int64_t H = in->d[1], W = in->d[2];
    int64_t ekh = (int64_t)c->dil * (c->kh - 1) + 1, ekw = (int64_t)c->dil * (c->kw - 1) + 1;
    if (H + 2 * c->pad < ekh || W + 2 * c->pad < ekw)
        return hlr__layer_fail(l, HLR_ESHAPE, "kernel %dx%d (dilation %d) does not fit the padded input %lldx%lld",
                               c->kh, c->kw, c->dil, (long long)(H + 2 * c->pad), (long long)(W + 2 * c->pad));
    c->g = (hlrk_conv_geom){.C = c->cin,
                            .C_stride = c->cin,
                            .H = H,
                            .W = W,
                            .kh = c->kh,
                            .kw = c->kw,
                            .stride = c->stride,
                            .pad = c->pad,
                            .dil = c->dil};
    c->g.Ho = (H + 2 * c->pad - ekh) / c->stride + 1;
    c->g.Wo = (W + 2 * c->pad - ekw) / c->stride + 1;
    c->P = c->g.Ho * c->g.Wo;
    c->K = (int64_t)(c->cin / c->groups) * c->kh * c->kw;
    c->direct = c->groups == 1 && c->stride == 1 && c->dil == 1 && c->K <= DIRECT_MAX_K;
    c->wino = !c->direct && !c->no_wino && c->groups == 1 && c->stride == 1 && c->dil == 1 && c->kh == 3 &&
              c->kw == 3;
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

static hlr_status plan_slots(hlr_layer *l);

/* Free what plan_slots() allocated (NULL again, so a later plan can retry). */
static void free_slots(conv2d *c)
{
    float **bufs[] = {&c->scratch, &c->cols1, &c->dy1,   &c->dw1, &c->U,  &c->w_seen,
                      &c->V1,      &c->M1,    &c->yfull, &c->fw,  &c->fU, &c->fseen, &c->Ut, &c->fUt};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        hlr__free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

static hlr_status conv_plan(hlr_layer *l, int64_t max_batch)
{
    conv2d *c = (conv2d *)l;
    hlr_status st = c->planned ? HLR_OK : plan_slots(l);
    if (st != HLR_OK || !l->fuse_pool || max_batch <= c->win_planned)
        return st;
    uint8_t *w = hlr__alloc_or_fail((size_t)(max_batch * c->ystride), 1, "conv2d pooling winners");
    if (!w)
        return HLR_ENOMEM;
    hlr__free(c->win);
    c->win = w;
    c->win_planned = max_batch;
    return HLR_OK;
}

/* What does not grow with the batch: per slot scratch, Winograd's buffers. */
static hlr_status plan_slots(hlr_layer *l)
{
    conv2d *c = (conv2d *)l;
    int64_t slots = hlr__pool_threads(), KG = c->K * c->groups, wsize = c->cout * c->K;
    c->slot_size = c->direct ? hlrk_conv_direct_scratch(&c->g) : c->wino ? hlrk_wino_scratch(&c->g) : 0;
    c->scratch =
        c->slot_size ? hlr__alloc_or_fail((size_t)(slots * c->slot_size), sizeof(float), "conv2d scratch") : NULL;
    if (c->wino) {
        c->tiles = hlrk_wino_tiles(&c->g);
        int64_t most = WINO_BLOCK_MACS / ((int64_t)c->cout * c->cin); /* tiles */
        most = most < WINO_BLOCK_TILES ? most : WINO_BLOCK_TILES;
        c->block = c->tiles < most ? most / c->tiles : 1;
        c->wcols = hlrk_wino_small_ld(c->block * c->tiles); /* a block's columns, as hlrk_wino_products lays them */
        wsize = HLRK_WINO_POINTS * c->cout * c->cin;
        c->U = hlr__alloc_or_fail((size_t)wsize, sizeof(float), "conv2d Winograd filters");
        c->w_seen = hlr__alloc_or_fail((size_t)(c->cout * c->cin * 9), sizeof(float), "conv2d Winograd filters");
        c->u_seen.valid = 0;
        c->V1 = hlr__alloc_or_fail((size_t)(slots * HLRK_WINO_POINTS * c->cin * c->wcols), sizeof(float),
                                   "conv2d Winograd inputs");
        c->M1 = hlr__alloc_or_fail((size_t)(slots * HLRK_WINO_POINTS * c->cout * c->wcols), sizeof(float),
                                   "conv2d Winograd outputs");
        c->Ut = hlrk_wino_small(c->tiles) ? hlr__alloc_or_fail((size_t)wsize, sizeof(float), "conv2d Winograd filters")
                                          : NULL;
        c->ut_ok = 0;
    } else
        c->cols1 = hlr__alloc_or_fail((size_t)(slots * KG * c->P), sizeof(float), "conv2d columns");
    c->ysz = c->cout * c->P + HLRK_POOL_SLACK; /* the pooling kernels' slack */
    c->dy1 = l->fuse_relu ? hlr__alloc_or_fail((size_t)(slots * c->ysz), sizeof(float), "conv2d gradient") : NULL;
    c->dw1 = hlr__alloc_or_fail((size_t)(slots * (wsize + c->cout)), sizeof(float), "conv2d partial gradients");
    const int pools = l->fuse_pool || (l->fold && l->fold->fuse_pool);
    c->yfull = pools ? hlr__alloc_or_fail((size_t)(slots * c->ysz), sizeof(float), "conv2d output") : NULL;
    c->ystride = l->fuse_pool ? c->cout * c->P / 4 : l->out_size;
    const int64_t fwsize = c->cout * (c->K + 1), fsize = c->cout * (c->K + 6);
    if (l->fold) {
        c->fw = hlr__alloc_or_fail((size_t)fwsize, sizeof(float), "conv2d folded weights");
        c->fU = c->wino ? hlr__alloc_or_fail((size_t)(HLRK_WINO_POINTS * c->cout * c->cin), sizeof(float),
                                             "conv2d folded weights")
                        : NULL;
        c->fUt = c->Ut ? hlr__alloc_or_fail((size_t)(HLRK_WINO_POINTS * c->cout * c->cin), sizeof(float),
                                            "conv2d folded weights")
                       : NULL;
        c->fut_ok = 0;
        c->fseen = hlr__alloc_or_fail((size_t)fsize, sizeof(float), "conv2d folded weights");
        c->fnow = c->fseen ? c->fseen + c->cout * (c->K + 3) : NULL;
        c->fw_seen.valid = c->fab_seen.valid = 0;
    }
    if ((c->slot_size && !c->scratch) ||
        (c->wino ? !c->U || !c->w_seen || !c->V1 || !c->M1 || (hlrk_wino_small(c->tiles) && !c->Ut) : !c->cols1) ||
        (l->fuse_relu && !c->dy1) || !c->dw1 || (pools && !c->yfull) ||
        (l->fold && (!c->fw || (c->wino && !c->fU) || (c->Ut && !c->fUt) || !c->fseen))) {
        free_slots(c);
        return HLR_ENOMEM;
    }
    c->db1 = c->dw1 + slots * wsize;
    c->slots = slots;
    c->planned = 1;
    return HLR_OK;
}

typedef struct forward_job {
    conv2d *c;
    float *y;
    const float *x, *w, *b, *U; /* the weights, bias and Winograd filters: the layer's, or folded */
    const float *Ut;            /* U transposed, where a sample's products may go to hlrk_wino_products */
    int64_t batch, parts;       /* parts <= c->slots: slots [0, parts) share the batch */
    int64_t split;              /* > 1: part p is sample p / split's channel group p % split */
    int relu, pool;             /* the fused ReLU and pooling: the layer's, or the folded batch norm's */
    int64_t ystride;            /* floats per sample of y */
    int winners;                /* a fused pooling records its winners for backward */
} forward_job;

/* Where slot s computes sample n's output: y itself, or the slot's buffer
 * that pooled() then pools into y. */
static float *sample_y(const forward_job *j, int64_t s, int64_t n)
{
    const conv2d *c = j->c;
    return j->pool ? c->yfull + s * c->ysz : j->y + n * j->ystride;
}

/* Sample n's channels [c0, c0 + cn) pooled from slot s's buffer into y, and their winners kept. */
static void pooled(const forward_job *j, int64_t s, int64_t n, int64_t c0, int64_t cn)
{
    const conv2d *c = j->c;
    const int64_t at = n * j->ystride + c0 * c->P / 4;
    if (j->pool)
        hlrk_maxpool2x2_win(j->y + at, j->winners ? c->win + at : NULL, c->yfull + s * c->ysz + c0 * c->P, cn, c->g.Ho,
                            c->g.Wo);
}

/*
 * The forward products of nb samples from x: their transformed patches into V, side by side (a sample's
 * tiles after another's), and M = U V for cn output channels (U at their first), by hlrk_wino_products
 * for a few tiles, else by sgemm.  Returns the row length of V and M.
 */
static int64_t wino_products(const conv2d *c, float *M, const float *U, const float *Ut, float *V, const float *x,
                             int64_t cn, int64_t nb, float *plane)
{
    const int64_t ci = c->cin, T = nb * c->tiles, small = hlrk_wino_small(T), ld = small ? hlrk_wino_small_ld(T) : T;
    for (int64_t b = 0; b < nb; b++)
        hlrk_wino_input(V + b * c->tiles, ld, x + b * c->base.in_size, &c->g, plane);
    if (small)
        hlrk_wino_products(M, ld, Ut, c->cout, V, ld, cn, ci, T);
    else
        for (int xi = 0; xi < HLRK_WINO_POINTS; xi++)
            hlrk_gemm1(0, 0, cn, T, ci, 1.0f, U + xi * c->cout * ci, ci, V + xi * ci * T, T, 0.0f, M + xi * cn * T, T);
    return ld;
}

/*
 * Sample n's channels [c0, c0 + cn) from M (ld floats a row; bias b at their first): pooled straight into
 * y where the pooling is fused and keeps no winners (inference), returning 1; else into y_full (y, or
 * the slot's buffer for pooled()), returning 0.
 */
static int wino_output(const forward_job *j, int64_t n, int64_t c0, int64_t cn, const float *M, int64_t ld,
                       const float *b, float *y_full, float *plane)
{
    const conv2d *c = j->c;
    if (j->pool && !j->winners) {
        hlrk_wino_output_pooled(j->y + n * j->ystride + c0 * c->P / 4, M, ld, cn, b, j->relu, &c->g);
        return 1;
    }
    hlrk_wino_output(y_full, M, ld, cn, b, j->relu, j->pool, &c->g, plane);
    return 0;
}

/*
 * Channel groups start at multiples of group_align: 4 for a direct convolution and for Winograd products
 * by hlrk_wino_products (a sample's tiles are few: each row's bits are its own); for sgemm's, also of
 * the row cuts that keep its bits (hlrk_gemm_row_align: 4 on its SkylakeX kernel, 12 on Haswell and Zen,
 * where groups of 20 of a 40-channel layer had changed the bits), so that a channel has the bits of the
 * whole sample's pass.
 */
static int64_t group_align(const conv2d *c)
{
    return c->direct || hlrk_wino_small(c->tiles) ? 4 : hlrk_gemm_row_align(); /* a multiple of 4 (kernels.h) */
}

/* The first output channel of group grp of split (the nearest multiple of align; co for grp == split). */
static int64_t group_first(int64_t grp, int64_t split, int64_t co, int64_t align)
{
    return grp == split ? co : (grp * co / split + align / 2) / align * align;
}

/* Part (slot) s of a split batch: sample s / split's output channels [c0, c1), computed directly or by
 * Winograd as the whole sample would be (each channel's arithmetic does not depend on the others), into
 * the same places of y, the slot's buffer and the winners. */
static void channel_part(void *ctx, int64_t s0, int64_t s1)
{
    const forward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t co = c->cout, ci = c->cin, P = c->P;
    for (int64_t s = s0; s < s1; s++) {
        const int64_t n = s / j->split, grp = s % j->split;
        const int64_t align = group_align(c), c0 = group_first(grp, j->split, co, align),
                      cn = group_first(grp + 1, j->split, co, align) - c0;
        float *y = sample_y(j, s, n) + c0 * P, *plane = c->scratch + s * c->slot_size;
        const float *x = j->x + n * l->in_size, *b = j->b ? j->b + c0 : NULL;
        if (c->direct)
            hlrk_conv_direct(y, x, j->w + c0 * c->K, b, cn, j->relu, j->pool, &c->g, plane);
        else {
            float *V = c->V1 + s * HLRK_WINO_POINTS * ci * c->wcols, *M = c->M1 + s * HLRK_WINO_POINTS * co * c->wcols;
            const int64_t ld = wino_products(c, M, j->U + c0 * ci, j->Ut ? j->Ut + c0 : NULL, V, x, cn, 1, plane);
            if (wino_output(j, n, c0, cn, M, ld, b, y, plane))
                continue;
        }
        pooled(j, s, n, c0, cn);
    }
}

/* How many channel groups each sample's output is split into: the pool's threads per sample when the batch
 * is smaller than them, the layer computed directly or by Winograd, and each group worth a hand-off. */
static int64_t channel_split(const conv2d *c, int64_t batch)
{
    if (!(c->direct || c->wino) || batch >= c->slots)
        return 1;
    int64_t split = c->slots / batch;
    const int64_t macs = c->cout * c->K * c->P, align = group_align(c);
    while (split > 1 && (macs / split < CHANNEL_SPLIT_MACS || c->cout / split < align))
        split--;
    return split;
}

/* Slots [s0, s1): slot s computes its share of the samples directly, in its own scratch. */
static void direct_part(void *ctx, int64_t s0, int64_t s1)
{
    const forward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    for (int64_t s = s0; s < s1; s++)
        for (int64_t n = s * j->batch / j->parts; n < (s + 1) * j->batch / j->parts; n++) {
            hlrk_conv_direct(sample_y(j, s, n), j->x + n * l->in_size, j->w, j->b, c->cout, j->relu, j->pool, &c->g,
                             c->scratch + s * c->slot_size);
            pooled(j, s, n, 0, c->cout);
        }
}

/* Slots [s0, s1): slot s convolves its share of the samples, each with an
 * im2col into the slot's columns and GEMMs straight into y, then bias and
 * the fused ReLU while y is still in cache. */
static void per_sample_part(void *ctx, int64_t s0, int64_t s1)
{
    const forward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t P = c->P, K = c->K, co_g = c->cout / c->groups;
    const float *w = j->w;
    for (int64_t s = s0; s < s1; s++) {
        float *cols = c->cols1 + s * c->K * c->groups * P;
        for (int64_t n = s * j->batch / j->parts; n < (s + 1) * j->batch / j->parts; n++) {
            float *y =
                j->y + n * j->ystride; /* never pooled: conv_absorb and conv_fold pool for direct and Winograd only */
            hlrk_im2col(cols, j->x + n * l->in_size, &c->g, 1);
            for (int grp = 0; grp < c->groups; grp++)
                hlrk_gemm1(0, 0, co_g, P, K, 1.0f, w + grp * co_g * K, K, cols + grp * K * P, P, 0.0f,
                           y + grp * co_g * P, P);
            for (int64_t co = 0; co < c->cout; co++)
                (j->relu ? hlrk_copy_add_relu : hlrk_copy_add)(y + co * P, y + co * P, j->b ? j->b[co] : 0.0f, P);
        }
    }
}

/* Slots [s0, s1): slot s convolves its share of the samples by Winograd,
 * a block at a time. */
static void wino_part(void *ctx, int64_t s0, int64_t s1)
{
    const forward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t ci = c->cin, co = c->cout;
    for (int64_t s = s0; s < s1; s++) {
        float *V = c->V1 + s * HLRK_WINO_POINTS * ci * c->wcols, *M = c->M1 + s * HLRK_WINO_POINTS * co * c->wcols;
        float *plane = c->scratch + s * c->slot_size;
        for (int64_t n = s * j->batch / j->parts, n1 = (s + 1) * j->batch / j->parts; n < n1; n += c->block) {
            const int64_t nb = n1 - n < c->block ? n1 - n : c->block; /* samples */
            const int64_t ld = wino_products(c, M, j->U, j->Ut, V, j->x + n * l->in_size, co, nb, plane);
            for (int64_t b = 0; b < nb; b++)
                if (!wino_output(j, n + b, 0, co, M + b * c->tiles, ld, j->b, sample_y(j, s, n + b), plane))
                    pooled(j, s, n + b, 0, c->cout);
        }
    }
}

/* The folded weights W' and bias b' (conv2d.c's header says how), made again when what they come from
 * has changed. */
static void fold_weights(conv2d *c)
{
    hlr_layer *l = &c->base;
    const int64_t co = c->cout, K = c->K;
    float *a = c->fnow, *shift = a + co, *b = a + 2 * co;
    hlr__batchnorm_affine(l->fold, a, shift);
    for (int64_t i = 0; i < co; i++)
        b[i] = c->has_bias ? hlr__param(l, 1)[i] : 0.0f;
    const float *w = hlr__param(l, 0);
    /* both checked (and their copies kept) every time: | rather than ||; a, shift and b come from the batch
     * norm's tensors and this layer's bias, so a view of either's storage makes them compared */
    if (!(hlr__weights_changed(l, &c->fw_seen, c->fseen, w, co * K) |
          hlr__weights_changed(hlr__layer_exposed(l) ? l : l->fold, &c->fab_seen, c->fseen + co * K, c->fnow, 3 * co)))
        return;
    for (int64_t i = 0; i < co; i++) {
        for (int64_t k = 0; k < K; k++)
            c->fw[i * K + k] = w[i * K + k] * a[i];
        c->fw[co * K + i] = b[i] * a[i] + shift[i];
    }
    if (c->wino) {
        hlrk_wino_filter(c->fU, c->fw, co, c->cin);
        c->fut_ok = 0;
    }
}

static void conv_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    conv2d *c = (conv2d *)l;
    forward_job j = {.c = c,
                     .y = y,
                     .x = x,
                     .w = hlr__param(l, 0),
                     .b = c->has_bias ? hlr__param(l, 1) : NULL,
                     .U = c->U,
                     .batch = p->batch,
                     .parts = c->slots < p->batch ? c->slots : p->batch,
                     .relu = l->fuse_relu,
                     .pool = l->fuse_pool,
                     .ystride = c->ystride,
                     .winners = !p->no_backward};
    if (p->no_backward && l->fold) { /* y is the folded batch norm's output, its ReLU and pooling ours */
        const hlr_layer *bn = l->fold;
        fold_weights(c);
        j.w = c->fw;
        j.b = c->fw + c->cout * c->K;
        j.U = c->fU;
        j.relu = bn->fuse_relu;
        j.pool = bn->fuse_pool;
        j.ystride = bn->fuse_pool ? bn->out_size / 4 : bn->out_size;
    } else if (c->wino) {
        /* The transformed filters change only when the weights do (an optimizer step, a load, a caller's
         * or a clone's model's write): made again then, not on every pass, where at batch 1 the
         * transform of a wide layer's filters cost more than its convolution.  The same bits either way. */
        const float *w = hlr__param(l, 0);
        if (hlr__weights_changed(l, &c->u_seen, c->w_seen, w, c->cout * c->cin * 9)) {
            hlrk_wino_filter(c->U, w, c->cout, c->cin);
            c->ut_ok = 0;
        }
    }
    if (c->wino && c->Ut) { /* a sample's products by hlrk_wino_products: U transposed, made with U */
        const int folded = j.U == c->fU;
        int *ok = folded ? &c->fut_ok : &c->ut_ok;
        float *Ut = folded ? c->fUt : c->Ut;
        if (!*ok)
            hlrk_wino_transpose(Ut, j.U, c->cout, c->cin);
        *ok = 1;
        j.Ut = Ut;
    }
    if ((j.split = channel_split(c, p->batch)) > 1) {
        j.parts = p->batch * j.split;
        hlr__parallel_for(j.parts, 1, channel_part, &j);
        return;
    }
    hlr__parallel_for(j.parts, 1, c->direct ? direct_part : c->wino ? wino_part : per_sample_part, &j);
}

typedef struct backward_job {
    conv2d *c;
    const float *x, *y, *dy;
    float *dx;
    int64_t batch, parts;
} backward_job;

/* dy of sample n, masked by a fused ReLU into slot s's buffer; its sums
 * per channel added to db. */
static const float *sample_dy(const backward_job *j, int64_t s, int64_t n, float *db)
{
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const float *dyn = j->dy + n * c->ystride;
    if (l->fuse_relu) {
        float *m = c->dy1 + s * c->ysz;
        if (l->fuse_pool)
            hlrk_maxpool2x2_relu_backward(m, j->y + n * c->ystride, c->win + n * c->ystride, dyn, c->cout, c->g.Ho,
                                          c->g.Wo);
        else
            hlrk_relu_backward(m, j->y + n * c->ystride, dyn, c->cout * c->P);
        dyn = m;
    }
    if (c->has_bias)
        for (int64_t co = 0; co < c->cout; co++)
            db[co] += hlrk_sum(dyn + co * c->P, c->P);
    return dyn;
}

/* Slots [s0, s1): slot s takes its share of the samples, all in cache:
 * im2col of the sample, dy masked (fused ReLU), partial dW += dy cols^T and
 * db, dcols = W^T dy folded into dx by col2im. */
static void backward_part(void *ctx, int64_t s0, int64_t s1)
{
    const backward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t P = c->P, K = c->K, co_g = c->cout / c->groups, wsize = c->cout * K;
    const float *w = hlr__param(&c->base, 0);
    for (int64_t s = s0; s < s1; s++) {
        float *cols = c->cols1 + s * K * c->groups * P, *dw = c->dw1 + s * wsize, *db = c->db1 + s * c->cout;
        int64_t n0 = s * j->batch / j->parts, n1 = (s + 1) * j->batch / j->parts;
        memset(db, 0, (size_t)c->cout * sizeof *db);
        for (int64_t n = n0; n < n1; n++) {
            const float *dyn = sample_dy(j, s, n, db);
            hlrk_im2col(cols, j->x + n * l->in_size, &c->g, 1);
            for (int grp = 0; grp < c->groups; grp++)
                hlrk_gemm1(0, 1, co_g, K, P, 1.0f, dyn + grp * co_g * P, P, cols + grp * K * P, P,
                           n == n0 ? 0.0f : 1.0f, dw + grp * co_g * K, K);
            if (!j->dx)
                continue;
            for (int grp = 0; grp < c->groups; grp++)
                hlrk_gemm1(1, 0, K, P, co_g, 1.0f, w + grp * co_g * K, K, dyn + grp * co_g * P, P, 0.0f,
                           cols + grp * K * P, P);
            float *dxn = j->dx + n * l->in_size;
            memset(dxn, 0, (size_t)l->in_size * sizeof *dxn);
            hlrk_col2im(dxn, cols, &c->g, 1);
        }
    }
}

/* Slots [s0, s1): slot s takes its share of the samples a block at a time:
 * dM from dy, V again from x, partial dU += dM V^T, dV = U^T dM into dx. */
static void wino_backward_part(void *ctx, int64_t s0, int64_t s1)
{
    const backward_job *j = ctx;
    conv2d *c = j->c;
    const hlr_layer *l = &c->base;
    const int64_t ci = c->cin, co = c->cout, usize = HLRK_WINO_POINTS * co * ci;
    for (int64_t s = s0; s < s1; s++) {
        float *V = c->V1 + s * HLRK_WINO_POINTS * ci * c->wcols, *M = c->M1 + s * HLRK_WINO_POINTS * co * c->wcols;
        float *plane = c->scratch + s * c->slot_size, *dU = c->dw1 + s * usize, *db = c->db1 + s * co;
        memset(db, 0, (size_t)co * sizeof *db);
        float beta = 0.0f; /* the first block writes dU, the others add */
        for (int64_t n = s * j->batch / j->parts, n1 = (s + 1) * j->batch / j->parts; n < n1; n += c->block) {
            const int64_t nb = n1 - n < c->block ? n1 - n : c->block, T = nb * c->tiles; /* samples, tiles */
            for (int64_t b = 0; b < nb; b++) {
                hlrk_wino_output_backward(M + b * c->tiles, T, sample_dy(j, s, n + b, db), co, &c->g, plane);
                hlrk_wino_input(V + b * c->tiles, T, j->x + (n + b) * l->in_size, &c->g, plane);
            }
            for (int xi = 0; xi < HLRK_WINO_POINTS; xi++)
                hlrk_gemm1(0, 1, co, ci, T, 1.0f, M + xi * co * T, T, V + xi * ci * T, T, beta, dU + xi * co * ci, ci);
            beta = 1.0f;
            if (!j->dx)
                continue;
            for (int xi = 0; xi < HLRK_WINO_POINTS; xi++)
                hlrk_gemm1(1, 0, ci, T, co, 1.0f, c->U + xi * co * ci, ci, M + xi * co * T, T, 0.0f, V + xi * ci * T,
                           T);
            for (int64_t b = 0; b < nb; b++)
                hlrk_wino_input_backward(j->dx + (n + b) * l->in_size, V + b * c->tiles, T, &c->g, plane);
        }
    }
}

static void conv_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    conv2d *c = (conv2d *)l;
    const int64_t wsize = c->wino ? HLRK_WINO_POINTS * c->cout * c->cin : c->cout * c->K;
    backward_job j = {c, x, y, dy, dx, p->batch, c->slots < p->batch ? c->slots : p->batch};
    /* Winograd's U is still the forward pass's: the weights have not changed since. */
    hlr__parallel_for(j.parts, 1, c->wino ? wino_backward_part : backward_part, &j);
    /* The slots' partial sums, added in slot order: the same bits for a given thread count. */
    float *dw = c->wino ? c->dw1 : hlr__grad(l, 0);
    if (!c->wino)
        memcpy(dw, c->dw1, (size_t)wsize * sizeof *dw);
    for (int64_t s = 1; s < j.parts; s++)
        for (int64_t i = 0; i < wsize; i++)
            dw[i] += c->dw1[s * wsize + i];
    if (c->wino)
        hlrk_wino_filter_backward(hlr__grad(l, 0), c->dw1, c->cout, c->cin);
    if (c->has_bias) {
        float *db = hlr__grad(l, 1);
        memcpy(db, c->db1, (size_t)c->cout * sizeof *db);
        for (int64_t s = 1; s < j.parts; s++)
            for (int64_t co = 0; co < c->cout; co++)
                db[co] += c->db1[s * c->cout + co];
    }
}

static void conv_destroy(hlr_layer *l)
{
    conv2d *c = (conv2d *)l;
    free_slots(c);
    hlr__free(c->win);
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
    /* a file names every value: 0 is a default only for callers, never here (padding 0 and bias 0 aside) */
    for (int i = 0; i < 9; i++)
        if (hlr__config_int_in(cfg, "conv2d", keys[i], i == 5 || i == 8 ? 0 : 1, i == 8 ? 1 : 1 << 20, &v[i]))
            return NULL;
    hlr_conv2d_options o = {.kernel_h = v[2],
                            .kernel_w = v[3],
                            .stride = v[4],
                            .padding = v[5],
                            .dilation = v[6],
                            .groups = v[7],
                            .no_bias = !v[8]};
    return hlr_conv2d(v[0], v[1], &o);
}

/* Valid widths: the windows (dilation included) that start inside each sample's. */
static void conv_map_lengths(const hlr_layer *l, const int32_t *in, int32_t *out, int64_t n)
{
    const conv2d *c = (const conv2d *)l;
    for (int64_t i = 0; i < n; i++)
        out[i] = hlr__window_length(in[i], (int64_t)c->dil * (c->kw - 1) + 1, c->stride, c->pad, c->g.Wo);
}

/* A ReLU after it, and a 2x2 max pooling after that when the direct or Winograd kernels run: they
 * can write split rows (kernels/pool.c) (hlr__absorb_relu). */
static int conv_absorb(hlr_layer *l, hlr_layer *const *next, int n)
{
    const conv2d *c = (const conv2d *)l;
    return hlr__absorb_relu(l, next, n, c->direct || c->wino);
}

/* A batch norm right after it (no ReLU between), over its channels; one that pools too only when the
 * direct or Winograd kernels run (they write split rows for the pooling). */
static int conv_fold(hlr_layer *l, hlr_layer *next)
{
    const conv2d *c = (const conv2d *)l;
    return !l->absorbs && hlr__batchnorm2d_channels(next) == c->cout && (!next->fuse_pool || c->direct || c->wino);
}

const hlr_layer_ops hlr__conv2d_ops = {
    .type = "conv2d",
    .per_sample = 1,
    .map_lengths = conv_map_lengths,
    .absorb = conv_absorb,
    .fold = conv_fold,
    .build = conv_build,
    .plan = conv_plan,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = conv_destroy,
    .get_config = conv_get_config,
    .from_config = conv_from_config,
};

hlr_layer *hlr_conv2d(int in_channels, int out_channels, const hlr_conv2d_options *o)
{
    const char *fn = "hlr_conv2d";
    if (!o) {
        hlr__fail(HLR_EINVAL, "%s: options is NULL; it gives the kernel size (&(hlr_conv2d_options){.kernel = 3})", fn);
        return NULL;
    }
    if (o->kernel == 0 && (o->kernel_h == 0 || o->kernel_w == 0)) {
        hlr__fail(HLR_EINVAL, "%s: no kernel size: set options.kernel, or kernel_h and kernel_w", fn);
        return NULL;
    }
    /* 0 is torch's default for all but the kernel and the padding (whose default 0 is itself) */
    const int kernel_h = o->kernel_h ? o->kernel_h : o->kernel, kernel_w = o->kernel_w ? o->kernel_w : o->kernel,
              stride = o->stride ? o->stride : 1, dilation = o->dilation ? o->dilation : 1,
              groups = o->groups ? o->groups : 1, padding = o->padding, bias = !o->no_bias;
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

/*
 * attention.c -- multi-head self-attention as
 * torch.nn.MultiheadAttention(E, heads, batch_first=True) computes
 * mha(x, x, x): one fused input projection, scaled dot-product attention
 * per head (src/kernels/attention.c), the heads concatenated, an output
 * projection.
 *
 * Input (N, T, E), output (N, T, E).  Parameters, torch's names:
 * in_proj_weight (3E, E) [W_q; W_k; W_v], in_proj_bias (3E), out_proj.weight
 * (E, E), out_proj.bias (E); without HLR_ATTN_NO_BIAS / with
 * HLR_ATTN_NO_OUT_PROJ the biases / the output projection are absent.
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

#define KNOWN_FLAGS (HLR_ATTN_CAUSAL | HLR_ATTN_KEY_PADDING | HLR_ATTN_NO_OUT_PROJ | HLR_ATTN_NO_BIAS)

typedef struct mha {
    hlr_layer base;
    int E, heads, flags;
    float dropout;
    int64_t T;
    int iw, ib, ow, ob; /* parameter indices; -1 when absent */
    /* workspace for `planned` sequences, one arena */
    int64_t planned;
    float *arena;
    float *qkv;     /* (N T, 3E): q | k | v of every head */
    float *att;     /* (N T, E): the heads' outputs, before the output projection */
    float *probs;   /* (N, H, T, T) before dropout: what hlr_attention_weights reads */
    float *dropped; /* (N, H, T, T) after dropout */
    float *keep;    /* (N, H, T, T): 0 or 1/(1-p) */
    float *datt;    /* (N T, E) */
    float *dqkv;    /* (N T, 3E) */
    float *scratch; /* (N, H, T, T) */
    int64_t last_batch; /* of the last forward since planning; 0 when none */
    int used_dropout;
} mha;

static int has(const mha *a, int flag) { return (a->flags & flag) != 0; }

/* torch: xavier_uniform_(in_proj_weight), bound sqrt(6 / (E + 3E)); biases
 * zero; out_proj.weight as nn.Linear, U(-1/sqrt(E), 1/sqrt(E)). */
static hlr_status mha_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    mha *a = (mha *)l;
    if (in->ndim != 2 || in->d[1] != a->E) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, %d)", hlr__shape_str(in, s, sizeof s), a->E);
    }
    a->T = in->d[0];
    *out = *in;
    const int64_t E = a->E;
    a->iw = a->ib = a->ow = a->ob = -1;
    hlr_status st = hlr__layer_add_param(l, "in_proj_weight", 2, (int64_t[]){3 * E, E});
    a->iw = 0;
    if (st == HLR_OK && !has(a, HLR_ATTN_NO_BIAS)) {
        a->ib = l->nparams;
        st = hlr__layer_add_param(l, "in_proj_bias", 1, (int64_t[]){3 * E});
    }
    if (st == HLR_OK && !has(a, HLR_ATTN_NO_OUT_PROJ)) {
        a->ow = l->nparams;
        st = hlr__layer_add_param(l, "out_proj.weight", 2, (int64_t[]){E, E});
        if (st == HLR_OK && !has(a, HLR_ATTN_NO_BIAS)) {
            a->ob = l->nparams;
            st = hlr__layer_add_param(l, "out_proj.bias", 1, (int64_t[]){E});
        }
    }
    if (st != HLR_OK)
        return st;
    hlr__init_uniform(hlr__param(l, a->iw), 3 * E * E, sqrtf(6.0f / (float)(4 * E)), rng);
    if (a->ow >= 0)
        hlr__init_uniform(hlr__param(l, a->ow), E * E, 1.0f / sqrtf((float)E), rng);
    return HLR_OK; /* parameters start zeroed: the biases stay 0 */
}

/* Carve the arena for n sequences; with arena NULL only count the floats. */
static int64_t layout(mha *a, float *arena, int64_t n)
{
    const int64_t R = n * a->T, E = a->E, P = n * a->heads * a->T * a->T;
    hlr__carve c = {arena, 0};
    hlr__take(&c, &a->qkv, R * 3 * E);
    hlr__take(&c, &a->att, R * E);
    hlr__take(&c, &a->probs, P);
    hlr__take(&c, &a->dqkv, R * 3 * E);
    hlr__take(&c, &a->datt, R * E);
    hlr__take(&c, &a->scratch, P);
    if (a->dropout > 0.0f) {
        hlr__take(&c, &a->dropped, P);
        hlr__take(&c, &a->keep, P);
    }
    return c.used;
}

static hlr_status mha_plan(hlr_layer *l, int64_t max_batch)
{
    mha *a = (mha *)l;
    if (max_batch <= a->planned)
        return HLR_OK;
    int64_t tt, floats;
    if (hlr__mul_overflows(a->T, a->T, &tt) || hlr__mul_overflows(tt, (int64_t)a->heads * max_batch, &tt) ||
        (floats = layout(a, NULL, max_batch)) > INT64_MAX / 8)
        return hlr__layer_fail(l, HLR_ENOMEM, "a batch of %lld sequences is too large", (long long)max_batch);
    float *arena = hlr__alloc_or_fail((size_t)floats, sizeof(float), "attention workspace");
    if (!arena)
        return HLR_ENOMEM;
    hlr__free(a->arena);
    a->arena = arena;
    a->planned = max_batch;
    a->last_batch = 0;
    layout(a, arena, max_batch);
    return HLR_OK;
}

static void mha_destroy(hlr_layer *l) { hlr__free(((mha *)l)->arena); }

static hlrk_attention problem(const mha *a, const hlr_pass *p)
{
    return (hlrk_attention){.N = p->batch,
                            .H = a->heads,
                            .T = a->T,
                            .d = a->E / a->heads,
                            .ld_qkv = 3 * (int64_t)a->E,
                            .ld_o = a->E,
                            .scale = 1.0f / sqrtf((float)(a->E / a->heads)),
                            .causal = has(a, HLR_ATTN_CAUSAL),
                            .lengths = has(a, HLR_ATTN_KEY_PADDING) ? p->lengths : NULL};
}

/* x (N T, E) -> qkv (N T, 3E) = x W_in^T + b_in -> att (N T, E) -> y = att W_out^T + b_out. */
static void mha_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    mha *a = (mha *)l;
    const int64_t R = p->batch * a->T, E = a->E;
    float beta = 0.0f;
    if (a->ib >= 0) {
        hlrk_broadcast_rows(a->qkv, hlr__param(l, a->ib), R, 3 * E);
        beta = 1.0f;
    }
    hlrk_gemm(0, 1, R, 3 * E, E, 1.0f, x, E, hlr__param(l, a->iw), E, beta, a->qkv, 3 * E);

    const int drop = p->training && a->dropout > 0.0f;
    if (drop) {
        const float keep = 1.0f / (1.0f - a->dropout);
        int64_t count = p->batch * a->heads * a->T * a->T;
        for (int64_t i = 0; i < count; i++)
            a->keep[i] = hlr__rng_uniform(p->rng) < a->dropout ? 0.0f : keep;
    }
    hlrk_attention pr = problem(a, p);
    float *att = a->ow >= 0 ? a->att : y; /* without an output projection the heads are the output */
    hlrk_attention_forward(&pr, a->qkv, a->qkv + E, a->qkv + 2 * E, drop ? a->keep : NULL, a->probs,
                           drop ? a->dropped : NULL, att);
    if (a->ow >= 0) {
        beta = 0.0f;
        if (a->ob >= 0) {
            hlrk_broadcast_rows(y, hlr__param(l, a->ob), R, E);
            beta = 1.0f;
        }
        hlrk_gemm(0, 1, R, E, E, 1.0f, a->att, E, hlr__param(l, a->ow), E, beta, y, E);
    }
    a->last_batch = p->batch;
    a->used_dropout = drop;
}

/* dW_out = dy^T att, db_out = sum dy, datt = dy W_out; the attention's
 * backward gives dqkv; dW_in = dqkv^T x, db_in = sum dqkv, dx = dqkv W_in. */
static void mha_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                         float *dx)
{
    (void)y;
    mha *a = (mha *)l;
    const int64_t R = p->batch * a->T, E = a->E;
    const float *datt = dy;
    if (a->ow >= 0) {
        hlrk_gemm(1, 0, E, E, R, 1.0f, dy, E, a->att, E, 0.0f, hlr__grad(l, a->ow), E);
        if (a->ob >= 0)
            hlrk_sum_rows(hlr__grad(l, a->ob), dy, R, E);
        hlrk_gemm(0, 0, R, E, E, 1.0f, dy, E, hlr__param(l, a->ow), E, 0.0f, a->datt, E);
        datt = a->datt;
    }
    hlrk_attention pr = problem(a, p);
    const int drop = a->used_dropout;
    hlrk_attention_backward(&pr, a->qkv, a->qkv + E, a->qkv + 2 * E, drop ? a->keep : NULL, a->probs,
                            drop ? a->dropped : NULL, datt, a->scratch, a->dqkv, a->dqkv + E, a->dqkv + 2 * E);
    hlrk_gemm(1, 0, 3 * E, E, R, 1.0f, a->dqkv, 3 * E, x, E, 0.0f, hlr__grad(l, a->iw), E);
    if (a->ib >= 0)
        hlrk_sum_rows(hlr__grad(l, a->ib), a->dqkv, R, 3 * E);
    if (dx)
        hlrk_gemm(0, 0, R, E, 3 * E, 1.0f, a->dqkv, 3 * E, hlr__param(l, a->iw), E, 0.0f, dx, E);
}

static void mha_get_config(const hlr_layer *l, hlr_config *c)
{
    const mha *a = (const mha *)l;
    hlr__config_int(c, "embed_dim", a->E);
    hlr__config_int(c, "num_heads", a->heads);
    hlr__config_int(c, "causal", has(a, HLR_ATTN_CAUSAL));
    hlr__config_int(c, "key_padding", has(a, HLR_ATTN_KEY_PADDING));
    hlr__config_int(c, "out_proj", !has(a, HLR_ATTN_NO_OUT_PROJ));
    hlr__config_int(c, "bias", !has(a, HLR_ATTN_NO_BIAS));
    hlr__config_float(c, "dropout", a->dropout);
}

static hlr_layer *mha_from_config(const hlr_config *c)
{
    const char *t = "multihead_attention";
    int E, heads, causal, padding, proj, bias;
    float dropout;
    if (hlr__config_int_in(c, t, "embed_dim", 1, INT32_MAX, &E) ||
        hlr__config_int_in(c, t, "num_heads", 1, INT32_MAX, &heads) ||
        hlr__config_int_in(c, t, "causal", 0, 1, &causal) ||
        hlr__config_int_in(c, t, "key_padding", 0, 1, &padding) ||
        hlr__config_int_in(c, t, "out_proj", 0, 1, &proj) || hlr__config_int_in(c, t, "bias", 0, 1, &bias) ||
        hlr__config_float_of(c, t, "dropout", &dropout))
        return NULL;
    int flags = (causal ? HLR_ATTN_CAUSAL : 0) | (padding ? HLR_ATTN_KEY_PADDING : 0) |
                (proj ? 0 : HLR_ATTN_NO_OUT_PROJ) | (bias ? 0 : HLR_ATTN_NO_BIAS);
    return hlr_multihead_attention(E, heads, flags, dropout);
}

const hlr_layer_ops hlr__multihead_attention_ops = {
    .type = "multihead_attention",
    .build = mha_build,
    .plan = mha_plan,
    .forward = mha_forward,
    .backward = mha_backward,
    .destroy = mha_destroy,
    .get_config = mha_get_config,
    .from_config = mha_from_config,
};

hlr_layer *hlr_multihead_attention(int embed_dim, int num_heads, int flags, float dropout)
{
    const char *fn = "hlr_multihead_attention";
    if (embed_dim < 1 || num_heads < 1 || embed_dim % num_heads != 0 || embed_dim > INT32_MAX / 3) {
        hlr__fail(HLR_EINVAL, "%s: embed_dim %d must be >= 1 and divisible by num_heads %d (>= 1)", fn, embed_dim,
                  num_heads);
        return NULL;
    }
    if (hlr__check_flags_dropout(fn, flags, KNOWN_FLAGS,
                                 "HLR_ATTN_CAUSAL, HLR_ATTN_KEY_PADDING, HLR_ATTN_NO_OUT_PROJ and HLR_ATTN_NO_BIAS",
                                 dropout) != HLR_OK)
        return NULL;
    mha *a = (mha *)hlr__layer_alloc(&hlr__multihead_attention_ops, sizeof *a);
    if (!a)
        return NULL;
    a->E = embed_dim;
    a->heads = num_heads;
    a->flags = flags;
    a->dropout = dropout;
    return &a->base;
}

/* The layer, or NULL with HLR_EINVAL / HLR_ESTATE set. */
static const mha *weights_of(const hlr_layer *l, const char *fn)
{
    if (!l) {
        hlr__fail(HLR_EINVAL, "%s: layer is NULL", fn);
        return NULL;
    }
    if (l->ops != &hlr__multihead_attention_ops && l->ops->sublayer) { /* a block holding an attention layer */
        const hlr_layer *sub;
        for (int i = 0; (sub = l->ops->sublayer(l, i)) != NULL; i++)
            if (sub->ops == &hlr__multihead_attention_ops) {
                l = sub;
                break;
            }
    }
    if (l->ops != &hlr__multihead_attention_ops) {
        hlr__fail(HLR_EINVAL, "%s: a %s layer has no attention weights (multihead_attention, transformer_encoder)", fn,
                  l->ops->type);
        return NULL;
    }
    const mha *a = (const mha *)l;
    if (!a->last_batch) {
        hlr__fail(HLR_ESTATE, "%s: the layer has not run a forward pass since its buffers were planned", fn);
        return NULL;
    }
    return a;
}

hlr_status hlr_attention_weights_shape(const hlr_layer *l, int64_t shape[4])
{
    const char *fn = "hlr_attention_weights_shape";
    if (!shape)
        return hlr__fail(HLR_EINVAL, "%s: shape is NULL", fn);
    const mha *a = weights_of(l, fn);
    if (!a)
        return hlr_last_status();
    shape[0] = a->last_batch;
    shape[1] = a->heads;
    shape[2] = shape[3] = a->T;
    return HLR_OK;
}

hlr_status hlr_attention_weights(const hlr_layer *l, hlr_tensor *weights)
{
    const char *fn = "hlr_attention_weights";
    const mha *a = weights_of(l, fn);
    if (!a)
        return hlr_last_status();
    hlr_status st = hlr__check_tensor(weights, HLR_F32, fn);
    if (st != HLR_OK)
        return st;
    int64_t n = a->last_batch;
    if (weights->ndim != 4 || weights->shape[0] != n || weights->shape[1] != a->heads || weights->shape[2] != a->T ||
        weights->shape[3] != a->T)
        return hlr__fail(HLR_ESHAPE, "%s: weights must be (%lld, %d, %lld, %lld) (batch, heads, queries, keys)", fn,
                         (long long)n, a->heads, (long long)a->T, (long long)a->T);
    memcpy(weights->data, a->probs, (size_t)(n * a->heads * a->T * a->T) * sizeof(float));
    return HLR_OK;
}

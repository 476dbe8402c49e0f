/*
 * transformer_encoder.c -- one pre-norm encoder block, as torch 1.13's
 * nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, activation='gelu',
 * batch_first=True, norm_first=True) in training mode.  A composite layer:
 * it owns its sub-layers (the library's own multihead_attention, layernorm,
 * dense, gelu and dropout) and runs them on its own buffers, adding the two
 * residual connections, so a model stays a plain list of layers.
 *
 * Shapes, R = N T rows of E = dim features, F = ff_dim:
 *   h1 = norm1(x)                 (R, E)
 *   a  = dropout1(self_attn(h1))  (R, E)
 *   x1 = x + a                    (R, E)
 *   h2 = norm2(x1)                (R, E)
 *   f1 = linear1(h2)              (R, F)
 *   g  = dropout(gelu(f1))        (R, F)
 *   f2 = dropout2(linear2(g))     (R, E)
 *   y  = x1 + f2                  (R, E)
 * Backward runs the sub-layers' backward passes in reverse; the residuals
 * add the gradient that bypasses each branch:
 *   dx1 = dy + norm2'(linear1'(gelu'(dropout'(linear2'(dropout2'(dy))))))
 *   dx  = dx1 + norm1'(self_attn'(dropout1'(dx1)))
 *
 * Parameters.  The block holds all twelve under torch's state_dict names
 * ("self_attn.in_proj_weight", ..., "norm2.bias") and owns their memory, so
 * models, files, optimizers and clones see one ordinary layer.  Each
 * sub-layer keeps a view of its own parameters (its params[] entries, with
 * nparams 0 so that it never frees them); bind() points the views at the
 * block's tensors when it is built and again when a clone re-points the
 * block's parameters at another model's data (the params_moved hook).
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <stdio.h>
#include <string.h>

#define KNOWN_FLAGS (HLR_ATTN_CAUSAL | HLR_ATTN_KEY_PADDING)
#define NCHILD 9

typedef struct encoder {
    hlr_layer base;
    int E, heads, F, flags;
    float dropout;
    int64_t T;
    /* sub-layers, in torch's parameter order first; the dropouts are NULL when dropout is 0 */
    union {
        hlr_layer *child[NCHILD];
        struct {
            hlr_layer *attn, *linear1, *linear2, *norm1, *norm2, *gelu, *drop1, *drop, *drop2;
        };
    };
    /* block parameter k is parameter child_param[k] of child_of[k] */
    hlr_layer *child_of[HLR_MAX_PARAMS];
    int child_param[HLR_MAX_PARAMS];
    /* buffers for `planned` sequences, one arena */
    int64_t planned;
    float *arena;
    float *h1, *a, *ad, *x1, *h2, *f1, *g, *gd, *f2, *f2d; /* forward; ad, gd, f2d only with dropout */
    float *dtmp, *dh, *dx1, *dfa, *dfb;                    /* backward */
    int used_dropout;                                      /* in the last forward */
} encoder;

/* Point every sub-layer's parameter views at the block's tensors. */
static void bind(encoder *e)
{
    for (int k = 0; k < e->base.nparams; k++) {
        hlr_param *dst = &e->child_of[k]->params[e->child_param[k]];
        dst->value.data = e->base.params[k].value.data;
        dst->grad.data = e->base.params[k].grad.data;
        e->child_of[k]->origin = &e->base;
    }
}

/* Build sub-layer c for input `in` as a model would, then move its
 * parameters into the block under prefix + their names (the block owns them;
 * bind() points the sub-layers' views at them). */
static hlr_status build_child(encoder *e, hlr_layer *c, const char *prefix, const hlr_shape *in, hlr_rng *rng)
{
    hlr_layer *l = &e->base;
    hlr_shape out;
    hlr_status st = hlr__layer_build(c, in, &out, rng);
    if (st != HLR_OK)
        return st;
    for (int i = 0; i < c->nparams; i++) {
        int k = l->nparams++;
        l->params[k] = c->params[i];
        snprintf(l->params[k].name, sizeof l->params[k].name, "%s%s", prefix, c->params[i].name);
        e->child_of[k] = c;
        e->child_param[k] = i;
    }
    c->nparams = 0; /* the block owns the memory now */
    return HLR_OK;
}

static hlr_status enc_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    encoder *e = (encoder *)l;
    if (in->ndim != 2 || in->d[1] != e->E) {
        char s[HLR__SHAPE_STR];
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, %d)", hlr__shape_str(in, s, sizeof s), e->E);
    }
    e->T = in->d[0];
    *out = *in;
    hlr_shape wide = {.ndim = 2, .d = {e->T, e->F}};
    struct {
        hlr_layer *c;
        const char *prefix;
        const hlr_shape *in;
    } order[NCHILD] = {{e->attn, "self_attn.", in}, {e->linear1, "linear1.", in}, {e->linear2, "linear2.", &wide},
                       {e->norm1, "norm1.", in},    {e->norm2, "norm2.", in},     {e->gelu, "", &wide},
                       {e->drop1, "", in},          {e->drop, "", &wide},         {e->drop2, "", in}};
    hlr_status st = HLR_OK;
    for (int i = 0; i < NCHILD && st == HLR_OK; i++)
        if (order[i].c)
            st = build_child(e, order[i].c, order[i].prefix, order[i].in, rng);
    if (st != HLR_OK)
        return st; /* the model frees what the block holds */
    bind(e);
    return HLR_OK;
}

/* Carve the arena for n sequences; with arena NULL only count the floats. */
static int64_t layout(encoder *e, float *arena, int64_t n)
{
    const int64_t RE = n * e->T * e->E, RF = n * e->T * e->F;
    const int drop = e->drop1 != NULL;
    hlr__carve c = {arena, 0};
    hlr__take(&c, &e->h1, RE);
    hlr__take(&c, &e->a, RE);
    hlr__take(&c, &e->x1, RE);
    hlr__take(&c, &e->h2, RE);
    hlr__take(&c, &e->f1, RF);
    hlr__take(&c, &e->g, RF);
    hlr__take(&c, &e->f2, RE);
    hlr__take(&c, &e->dtmp, RE);
    hlr__take(&c, &e->dh, RE);
    hlr__take(&c, &e->dx1, RE);
    hlr__take(&c, &e->dfa, RF);
    hlr__take(&c, &e->dfb, RF);
    e->ad = e->gd = e->f2d = NULL;
    if (drop) {
        hlr__take(&c, &e->ad, RE);
        hlr__take(&c, &e->gd, RF);
        hlr__take(&c, &e->f2d, RE);
    }
    return c.used;
}

static hlr_status enc_plan(hlr_layer *l, int64_t max_batch)
{
    encoder *e = (encoder *)l;
    if (max_batch <= e->planned)
        return HLR_OK;
    int64_t rows;
    if (hlr__mul_overflows(max_batch, e->T, &rows) || hlr__mul_overflows(rows, 16 * ((int64_t)e->E + e->F), &rows))
        return hlr__layer_fail(l, HLR_ENOMEM, "a batch of %lld sequences is too large", (long long)max_batch);
    for (int i = 0; i < NCHILD; i++) {
        hlr_layer *c = e->child[i];
        if (c && c->ops->plan) {
            hlr_status st = c->ops->plan(c, max_batch);
            if (st != HLR_OK)
                return st;
        }
    }
    float *arena = hlr__alloc_or_fail((size_t)layout(e, NULL, max_batch), sizeof(float), "transformer workspace");
    if (!arena)
        return HLR_ENOMEM;
    hlr__free(e->arena);
    e->arena = arena;
    e->planned = max_batch;
    layout(e, arena, max_batch);
    return HLR_OK;
}

/* z = a + b over n floats. */
static void add(float *z, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = a[i] + b[i];
}

static void enc_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    encoder *e = (encoder *)l;
    const int64_t RE = p->batch * e->T * e->E;
    const int drop = p->training && e->drop1 != NULL;
    float *ad = drop ? e->ad : e->a, *gd = drop ? e->gd : e->g, *f2d = drop ? e->f2d : e->f2;

    e->norm1->ops->forward(e->norm1, p, x, e->h1);
    e->attn->ops->forward(e->attn, p, e->h1, e->a);
    if (drop)
        e->drop1->ops->forward(e->drop1, p, e->a, ad);
    add(e->x1, x, ad, RE);

    e->norm2->ops->forward(e->norm2, p, e->x1, e->h2);
    e->linear1->ops->forward(e->linear1, p, e->h2, e->f1);
    e->gelu->ops->forward(e->gelu, p, e->f1, e->g);
    if (drop)
        e->drop->ops->forward(e->drop, p, e->g, gd);
    e->linear2->ops->forward(e->linear2, p, gd, e->f2);
    if (drop)
        e->drop2->ops->forward(e->drop2, p, e->f2, f2d);
    add(y, e->x1, f2d, RE);
    e->used_dropout = drop;
}

static void enc_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    encoder *e = (encoder *)l;
    const int64_t RE = p->batch * e->T * e->E;
    const int drop = e->used_dropout;
    const float *gd = drop ? e->gd : e->g;

    /* feed-forward branch: dy -> d(linear2 out) -> dg -> df1 -> dh2 -> dx1 */
    const float *df2 = dy;
    if (drop) {
        e->drop2->ops->backward(e->drop2, p, NULL, NULL, dy, e->dtmp);
        df2 = e->dtmp;
    }
    e->linear2->ops->backward(e->linear2, p, gd, NULL, df2, e->dfa);
    const float *dg = e->dfa;
    float *df1 = e->dfb;
    if (drop) {
        e->drop->ops->backward(e->drop, p, NULL, NULL, e->dfa, e->dfb);
        dg = e->dfb;
        df1 = e->dfa;
    }
    e->gelu->ops->backward(e->gelu, p, e->f1, e->g, dg, df1);
    e->linear1->ops->backward(e->linear1, p, e->h2, NULL, df1, e->dh);
    e->norm2->ops->backward(e->norm2, p, e->x1, NULL, e->dh, e->dtmp);
    add(e->dx1, dy, e->dtmp, RE);

    /* attention branch: dx1 -> d(attention out) -> dh1 -> dx */
    const float *da = e->dx1;
    if (drop) {
        e->drop1->ops->backward(e->drop1, p, NULL, NULL, e->dx1, e->dtmp);
        da = e->dtmp;
    }
    e->attn->ops->backward(e->attn, p, e->h1, e->a, da, e->dh);
    e->norm1->ops->backward(e->norm1, p, x, NULL, e->dh, dx);
    if (dx)
        add(dx, dx, e->dx1, RE);
}

static void enc_destroy(hlr_layer *l)
{
    encoder *e = (encoder *)l;
    for (int i = 0; i < NCHILD; i++)
        hlr_layer_free(e->child[i]); /* nparams 0: the block frees the parameters */
    hlr__free(e->arena);
}

static void enc_get_config(const hlr_layer *l, hlr_config *c)
{
    const encoder *e = (const encoder *)l;
    hlr__config_int(c, "dim", e->E);
    hlr__config_int(c, "heads", e->heads);
    hlr__config_int(c, "ff_dim", e->F);
    hlr__config_int(c, "causal", (e->flags & HLR_ATTN_CAUSAL) != 0);
    hlr__config_int(c, "key_padding", (e->flags & HLR_ATTN_KEY_PADDING) != 0);
    hlr__config_float(c, "dropout", e->dropout);
}

static hlr_layer *enc_from_config(const hlr_config *c)
{
    const char *t = "transformer_encoder";
    int E, heads, F, causal, padding;
    float dropout;
    if (hlr__config_int_in(c, t, "dim", 1, INT32_MAX, &E) || hlr__config_int_in(c, t, "heads", 1, INT32_MAX, &heads) ||
        hlr__config_int_in(c, t, "ff_dim", 1, INT32_MAX, &F) || hlr__config_int_in(c, t, "causal", 0, 1, &causal) ||
        hlr__config_int_in(c, t, "key_padding", 0, 1, &padding) || hlr__config_float_of(c, t, "dropout", &dropout))
        return NULL;
    return hlr_transformer_encoder(E, heads, F, (causal ? HLR_ATTN_CAUSAL : 0) | (padding ? HLR_ATTN_KEY_PADDING : 0),
                                   dropout);
}

/* The i-th of the block's sub-layers that exist (the dropouts only with dropout > 0), attention first. */
static hlr_layer *enc_sublayer(const hlr_layer *l, int i)
{
    const encoder *e = (const encoder *)l;
    for (int k = 0; k < NCHILD; k++)
        if (e->child[k] && i-- == 0)
            return e->child[k];
    return NULL;
}

static void enc_params_moved(hlr_layer *l) { bind((encoder *)l); }

const hlr_layer_ops hlr__transformer_encoder_ops = {
    .type = "transformer_encoder",
    .sublayer = enc_sublayer,
    .params_moved = enc_params_moved,
    .build = enc_build,
    .plan = enc_plan,
    .forward = enc_forward,
    .backward = enc_backward,
    .destroy = enc_destroy,
    .get_config = enc_get_config,
    .from_config = enc_from_config,
};

hlr_layer *hlr_transformer_encoder(int dim, int heads, int ff_dim, int flags, float dropout)
{
    const char *fn = "hlr_transformer_encoder";
    if (dim < 1 || heads < 1 || dim % heads != 0 || dim > INT32_MAX / 3 || ff_dim < 1) {
        hlr__fail(HLR_EINVAL, "%s: dim %d must be >= 1 and divisible by heads %d (>= 1), and ff_dim %d >= 1", fn, dim,
                  heads, ff_dim);
        return NULL;
    }
    if (hlr__check_flags_dropout(fn, flags, KNOWN_FLAGS, "HLR_ATTN_CAUSAL and HLR_ATTN_KEY_PADDING", dropout) != HLR_OK)
        return NULL;
    encoder *e = (encoder *)hlr__layer_alloc(&hlr__transformer_encoder_ops, sizeof *e);
    if (!e)
        return NULL;
    e->E = dim;
    e->heads = heads;
    e->F = ff_dim;
    e->flags = flags;
    e->dropout = dropout;
    int ok = (e->attn = hlr_multihead_attention(dim, heads, flags, dropout)) &&
             (e->linear1 = hlr_dense(dim, ff_dim, 1)) && (e->linear2 = hlr_dense(ff_dim, dim, 1)) &&
             (e->norm1 = hlr_layernorm(dim, 1e-5f)) && (e->norm2 = hlr_layernorm(dim, 1e-5f)) && (e->gelu = hlr_gelu());
    if (ok && dropout > 0.0f)
        ok = (e->drop1 = hlr_dropout(dropout)) && (e->drop = hlr_dropout(dropout)) && (e->drop2 = hlr_dropout(dropout));
    if (!ok) {
        hlr_layer_free(&e->base);
        return NULL;
    }
    return &e->base;
}

/*
 * positional_encoding.c -- y[n, t] = x[n, t] + pe[t]: each step gets its
 * position's vector added.
 *
 * Shapes: x, y (N, T, D); pe (max_len, D), of which rows 0..T-1 are used.
 *   sinusoidal: pe[t, 2i] = sin(t / 10000^(2i/D)), pe[t, 2i+1] = cos(same),
 *               a fixed table of T rows computed at build time;
 *   learned:    pe is the parameter "weight" (max_len, D), N(0, 0.02^2).
 *   backward: dx = dy; dweight[t] = sum_n dy[n, t] for t < T, 0 beyond.
 */
#include "../internal.h"

#include <math.h>
#include <string.h>

typedef struct posenc {
    hlr_layer base;
    int max_len, D, kind;
    int64_t T;
    float *table; /* sinusoidal: (T, D); NULL for the learned kind */
} posenc;

#define LEARNED_STD 0.02

static hlr_status pe_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    posenc *e = (posenc *)l;
    char s[HLR__SHAPE_STR];
    if (in->ndim != 2 || in->d[1] != e->D)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s is not (steps, %d)", hlr__shape_str(in, s, sizeof s), e->D);
    if (in->d[0] > e->max_len)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s has %lld steps, more than max_len %d",
                               hlr__shape_str(in, s, sizeof s), (long long)in->d[0], e->max_len);
    *out = *in;
    e->T = in->d[0];
    const int64_t D = e->D;
    if (e->kind == HLR_POS_LEARNED) {
        hlr_status st = hlr__layer_add_param(l, "weight", 2, (int64_t[]){e->max_len, D});
        if (st != HLR_OK)
            return st;
        float *w = hlr__param(l, 0);
        for (int64_t i = 0; i < (int64_t)e->max_len * D; i++)
            w[i] = (float)(LEARNED_STD * hlr__rng_normal(rng));
        return HLR_OK;
    }
    float *t = hlr__alloc_or_fail((size_t)(e->T * D), sizeof *t, "positional encoding table");
    if (!t)
        return HLR_ENOMEM;
    hlr__free(e->table);
    e->table = t;
    for (int64_t pos = 0; pos < e->T; pos++)
        for (int64_t c = 0; c < D; c++) {
            double angle = (double)pos / pow(10000.0, (double)(c - c % 2) / (double)D);
            t[pos * D + c] = (float)(c % 2 ? cos(angle) : sin(angle));
        }
    return HLR_OK;
}

static const float *table_of(hlr_layer *l)
{
    posenc *e = (posenc *)l;
    return e->kind == HLR_POS_LEARNED ? hlr__param(l, 0) : e->table;
}

const float *hlr__positional_encoding_table(hlr_layer *l) { return table_of(l); }

static void pe_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const int64_t S = l->in_size; /* T D */
    const float *pe = table_of(l);
    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t k = 0; k < S; k++)
            y[n * S + k] = x[n * S + k] + pe[k];
}

static void pe_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy, float *dx)
{
    (void)x;
    (void)y;
    posenc *e = (posenc *)l;
    const int64_t S = l->in_size;
    if (dx)
        memcpy(dx, dy, (size_t)(p->batch * S) * sizeof *dx);
    if (e->kind != HLR_POS_LEARNED)
        return;
    float *g = hlr__grad(l, 0);
    memset(g, 0, (size_t)((int64_t)e->max_len * e->D) * sizeof *g);
    for (int64_t n = 0; n < p->batch; n++)
        for (int64_t k = 0; k < S; k++)
            g[k] += dy[n * S + k];
}

static void pe_destroy(hlr_layer *l)
{
    hlr__free(((posenc *)l)->table);
}

static void pe_get_config(const hlr_layer *l, hlr_config *c)
{
    const posenc *e = (const posenc *)l;
    hlr__config_int(c, "max_len", e->max_len);
    hlr__config_int(c, "dim", e->D);
    hlr__config_int(c, "kind", e->kind);
}

static hlr_layer *pe_from_config(const hlr_config *c)
{
    const char *t = "positional_encoding";
    int max_len, dim, kind;
    if (hlr__config_int_in(c, t, "max_len", 1, INT32_MAX, &max_len) ||
        hlr__config_int_in(c, t, "dim", 1, INT32_MAX, &dim) ||
        hlr__config_int_in(c, t, "kind", HLR_POS_SINUSOIDAL, HLR_POS_LEARNED, &kind))
        return NULL;
    return hlr_positional_encoding(max_len, dim, kind);
}

const hlr_layer_ops hlr__positional_encoding_ops = {
    .type = "positional_encoding",
    .build = pe_build,
    .forward = pe_forward,
    .backward = pe_backward,
    .destroy = pe_destroy,
    .get_config = pe_get_config,
    .from_config = pe_from_config,
};

hlr_layer *hlr_positional_encoding(int max_len, int dim, int kind)
{
    if (max_len < 1 || dim < 1) {
        hlr__fail(HLR_EINVAL, "hlr_positional_encoding: max_len %d and dim %d must both be >= 1", max_len, dim);
        return NULL;
    }
    if (kind != HLR_POS_SINUSOIDAL && kind != HLR_POS_LEARNED) {
        hlr__fail(HLR_EINVAL,
                  "hlr_positional_encoding: kind %d is neither HLR_POS_SINUSOIDAL (%d) nor HLR_POS_LEARNED (%d)", kind,
                  HLR_POS_SINUSOIDAL, HLR_POS_LEARNED);
        return NULL;
    }
    posenc *e = (posenc *)hlr__layer_alloc(&hlr__positional_encoding_ops, sizeof *e);
    if (!e)
        return NULL;
    e->max_len = max_len;
    e->D = dim;
    e->kind = kind;
    return &e->base;
}

/*
 * embedding.c -- token ids to vectors, as torch.nn.Embedding: y = W[id].
 * Input: int32 ids of any shape (...); output (..., dim).  Parameter
 * "weight" (num_embeddings, dim), N(0, 1) as torch; the row of the padding
 * index starts at zero and never receives a gradient.
 *
 * The model hands this layer its input bytes unchanged (ops.int_input), so
 * x is read through an int32_t pointer; check_pass has verified the ids.
 */
#include "../internal.h"

#include <string.h>

typedef struct embedding {
    hlr_layer base;
    int num, dim, padding_idx; /* padding_idx -1: none */
} embedding;

static hlr_status embedding_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    embedding *e = (embedding *)l;
    if (in->ndim > HLR_MAX_DIMS - 2)
        return hlr__layer_fail(l, HLR_ESHAPE, "input has %d dimensions; at most %d", in->ndim, HLR_MAX_DIMS - 2);
    *out = *in;
    out->d[out->ndim++] = e->dim;
    hlr_status st = hlr__layer_add_param(l, "weight", 2, (int64_t[]){e->num, e->dim});
    if (st != HLR_OK)
        return st;
    float *w = hlr__param(l, 0);
    for (int64_t i = 0; i < (int64_t)e->num * e->dim; i++)
        w[i] = (float)hlr__rng_normal(rng);
    if (e->padding_idx >= 0)
        memset(w + (int64_t)e->padding_idx * e->dim, 0, (size_t)e->dim * sizeof *w);
    return HLR_OK;
}

static hlr_status embedding_check_pass(const hlr_layer *l, int64_t batch, const void *input)
{
    const embedding *e = (const embedding *)l;
    const int32_t *ids = input;
    if (!ids)
        return HLR_OK;
    for (int64_t j = 0; j < batch * l->in_size; j++)
        if (ids[j] < 0 || ids[j] >= e->num)
            return hlr__layer_fail(l, HLR_EINVAL, "token id %d (sample %lld, position %lld) outside [0, %d)", ids[j],
                                   (long long)(j / l->in_size), (long long)(j % l->in_size), e->num);
    return HLR_OK;
}

/* ids (R) -> y (R, dim), R = N * in_size. */
static void embedding_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    const embedding *e = (const embedding *)l;
    const int32_t *ids = (const int32_t *)(const void *)x;
    const float *w = hlr__param(l, 0);
    const size_t row = (size_t)e->dim * sizeof *y;
    for (int64_t j = 0; j < p->batch * l->in_size; j++) {
        if (ids[j] >= 0 && ids[j] < e->num) /* checked before every forward; never read outside W */
            memcpy(y + j * e->dim, w + (int64_t)ids[j] * e->dim, row);
        else
            memset(y + j * e->dim, 0, row);
    }
}

/* dW[id] = sum of the dy rows of that id; ids have no gradient (dx stays NULL). */
static void embedding_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                               float *dx)
{
    (void)y;
    (void)dx;
    const embedding *e = (const embedding *)l;
    const int32_t *ids = (const int32_t *)(const void *)x;
    float *dw = hlr__grad(l, 0);
    memset(dw, 0, (size_t)((int64_t)e->num * e->dim) * sizeof *dw);
    for (int64_t j = 0; j < p->batch * l->in_size; j++) {
        int32_t id = ids[j];
        if (id < 0 || id >= e->num || id == e->padding_idx)
            continue;
        float *row = dw + (int64_t)id * e->dim;
        const float *g = dy + j * e->dim;
        for (int c = 0; c < e->dim; c++)
            row[c] += g[c];
    }
}

static void embedding_get_config(const hlr_layer *l, hlr_config *c)
{
    const embedding *e = (const embedding *)l;
    hlr__config_int(c, "num_embeddings", e->num);
    hlr__config_int(c, "dim", e->dim);
    hlr__config_int(c, "padding_idx", e->padding_idx);
}

static hlr_layer *embedding_from_config(const hlr_config *c)
{
    int num, dim, pad;
    if (hlr__config_int_in(c, "embedding", "num_embeddings", 1, INT32_MAX, &num) ||
        hlr__config_int_in(c, "embedding", "dim", 1, INT32_MAX, &dim) ||
        hlr__config_int_in(c, "embedding", "padding_idx", -1, INT32_MAX, &pad))
        return NULL;
    return hlr_embedding(num, dim, pad);
}

const hlr_layer_ops hlr__embedding_ops = {
    .type = "embedding",
    .int_input = 1,
    .build = embedding_build,
    .check_pass = embedding_check_pass,
    .forward = embedding_forward,
    .backward = embedding_backward,
    .get_config = embedding_get_config,
    .from_config = embedding_from_config,
};

hlr_layer *hlr_embedding(int num_embeddings, int dim, int padding_idx)
{
    if (num_embeddings < 1 || dim < 1) {
        hlr__fail(HLR_EINVAL, "hlr_embedding: num_embeddings %d and dim %d must both be >= 1", num_embeddings, dim);
        return NULL;
    }
    if (padding_idx < -1 || padding_idx >= num_embeddings) {
        hlr__fail(HLR_EINVAL, "hlr_embedding: padding_idx %d outside -1..%d (-1: none)", padding_idx,
                  num_embeddings - 1);
        return NULL;
    }
    embedding *e = (embedding *)hlr__layer_alloc(&hlr__embedding_ops, sizeof *e);
    if (!e)
        return NULL;
    e->num = num_embeddings;
    e->dim = dim;
    e->padding_idx = padding_idx;
    return &e->base;
}

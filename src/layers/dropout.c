/*
 * dropout.c -- inverted dropout: in training each element survives with
 * probability 1-p and is scaled by 1/(1-p); inference is the identity.
 */
#include "../internal.h"

#include <math.h>
#include <string.h>

typedef struct dropout {
    hlr_layer base;
    float p;
    float *scale;     /* per element of the last training batch: 0 or 1/(1-p) */
    int64_t capacity; /* elements scale can hold */
    int applied;      /* the last forward dropped (training): backward follows it */
} dropout;

static hlr_status dropout_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)l;
    (void)rng;
    *out = *in;
    return HLR_OK;
}

static hlr_status dropout_plan(hlr_layer *l, int64_t max_batch)
{
    dropout *d = (dropout *)l;
    int64_t need = max_batch * l->in_size;
    if (need <= d->capacity)
        return HLR_OK;
    float *s = hlr__alloc_or_fail((size_t)need, sizeof *s, "dropout mask");
    if (!s)
        return HLR_ENOMEM;
    hlr__free(d->scale);
    d->scale = s;
    d->capacity = need;
    return HLR_OK;
}

static void dropout_forward(hlr_layer *l, const hlr_pass *p, const float *x, float *y)
{
    dropout *d = (dropout *)l;
    int64_t n = p->batch * l->in_size;
    d->applied = p->training && d->p != 0.0f;
    if (!d->applied) {
        memcpy(y, x, (size_t)n * sizeof *y);
        return;
    }
    const float keep = 1.0f / (1.0f - d->p);
    for (int64_t i = 0; i < n; i++) {
        d->scale[i] = hlr__rng_uniform(p->rng) < d->p ? 0.0f : keep;
        y[i] = x[i] * d->scale[i];
    }
}

static void dropout_backward(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                             float *dx)
{
    (void)x;
    (void)y;
    dropout *d = (dropout *)l;
    int64_t n = p->batch * l->in_size;
    if (!dx)
        return;
    if (!d->applied) { /* after an inference forward (hlr_model_input_gradient): the identity */
        memcpy(dx, dy, (size_t)n * sizeof *dx);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dx[i] = dy[i] * d->scale[i];
}

static void dropout_destroy(hlr_layer *l)
{
    hlr__free(((dropout *)l)->scale);
}

static void dropout_get_config(const hlr_layer *l, hlr_config *c)
{
    hlr__config_float(c, "p", ((const dropout *)l)->p);
}

static hlr_layer *dropout_from_config(const hlr_config *c)
{
    float p;
    return hlr__config_float_of(c, "dropout", "p", &p) ? NULL : hlr_dropout(p);
}

const hlr_layer_ops hlr__dropout_ops = {
    .type = "dropout",
    .per_sample = 1,
    .build = dropout_build,
    .plan = dropout_plan,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
    .get_config = dropout_get_config,
    .from_config = dropout_from_config,
};

hlr_layer *hlr_dropout(float p)
{
    if (!(p >= 0.0f && p < 1.0f)) {
        hlr__fail(HLR_EINVAL, "hlr_dropout: p = %g; expected 0 <= p < 1", (double)p);
        return NULL;
    }
    dropout *d = (dropout *)hlr__layer_alloc(&hlr__dropout_ops, sizeof *d);
    if (!d)
        return NULL;
    d->p = p;
    return &d->base;
}

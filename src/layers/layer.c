/*
 * layer.c -- what every layer shares: allocation, named parameters, the
 * public accessors, and error messages that name the layer.
 */
#include "../internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hlr_layer *hlr__layer_alloc(const hlr_layer_ops *ops, size_t size)
{
    hlr_layer *l = hlr__alloc_or_fail(1, size, ops->type);
    if (l) {
        l->ops = ops;
        l->index = -1;
    }
    return l;
}

hlr_status hlr__layer_add_param(hlr_layer *l, const char *name, int ndim, const int64_t *shape)
{
    if (l->nparams == HLR_MAX_PARAMS)
        return hlr__layer_fail(l, HLR_EINVAL, "too many parameters");
    hlr_param *p = &l->params[l->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        p->value.shape[i] = p->grad.shape[i] = shape[i];
        if (hlr__mul_overflows(n, shape[i], &n))
            return hlr__layer_fail(l, HLR_EINVAL, "parameter %s is too large", name);
    }
    p->value.dtype = p->grad.dtype = HLR_F32;
    p->value.ndim = p->grad.ndim = ndim;
    p->value.numel = p->grad.numel = n;
    p->value.flags = p->grad.flags = HLR_TENSOR_BORROWED;
    p->value.data = hlr__alloc_or_fail((size_t)n, sizeof(float), name);
    p->grad.data = hlr__alloc_or_fail((size_t)n, sizeof(float), name);
    if (!p->value.data || !p->grad.data) {
        hlr__free(p->value.data);
        hlr__free(p->grad.data);
        return HLR_ENOMEM;
    }
    l->nparams++;
    return HLR_OK;
}

hlr_status hlr__layer_add_buffer(hlr_layer *l, const char *name, int ndim, const int64_t *shape)
{
    hlr_status st = hlr__layer_add_param(l, name, ndim, shape);
    if (st == HLR_OK)
        l->params[l->nparams - 1].buffer = 1;
    return st;
}

void hlr__init_uniform(float *w, int64_t n, float bound, hlr_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = (2.0f * hlr__rng_uniform(rng) - 1.0f) * bound;
}

hlr_status hlr__check_flags_dropout(const char *fn, int flags, int known, const char *known_names, float dropout)
{
    if (flags & ~known)
        return hlr__fail(HLR_EINVAL, "%s: unknown flags 0x%x (%s only)", fn, (unsigned)(flags & ~known), known_names);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return hlr__fail(HLR_EINVAL, "%s: dropout %g; expected 0 <= dropout < 1", fn, (double)dropout);
    return HLR_OK;
}

hlr_status hlr__layer_fail(const hlr_layer *l, hlr_status code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->index >= 0)
        return hlr__fail(code, "%s (layer %d): %s", l->ops->type, l->index, msg);
    return hlr__fail(code, "%s: %s", l->ops->type, msg);
}

hlr_status hlr__layer_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    *out = (hlr_shape){0};
    l->in = *in;
    l->in_size = hlr__shape_numel(in);
    hlr_status st = l->ops->build(l, in, out, rng);
    if (st == HLR_OK && (out->ndim < 1 || out->ndim > HLR_MAX_DIMS - 1 || hlr__shape_numel(out) < 1))
        st = hlr__layer_fail(l, HLR_ESHAPE, "produces an empty output");
    if (st != HLR_OK) {
        hlr__layer_clear_params(l);
        return st;
    }
    l->out = *out;
    l->out_size = hlr__shape_numel(out);
    l->built = 1;
    hlr__weights_written(); /* initial weights */
    return HLR_OK;
}

void hlr__layer_clear_params(hlr_layer *l)
{
    for (int i = 0; i < l->nparams; i++) {
        hlr__free(l->params[i].value.data);
        hlr__free(l->params[i].grad.data);
    }
    l->nparams = 0;
    l->built = 0;
}

void hlr_layer_free(hlr_layer *l)
{
    if (!l)
        return;
    hlr__layer_clear_params(l);
    if (l->ops->destroy)
        l->ops->destroy(l);
    hlr__free(l);
}

const char *hlr_layer_type(const hlr_layer *l) { return l ? l->ops->type : ""; }

int hlr_layer_param_count(const hlr_layer *l) { return l ? l->nparams : 0; }

hlr_status hlr_layer_set_trainable(hlr_layer *l, int trainable)
{
    if (!l)
        return hlr__fail(HLR_EINVAL, "hlr_layer_set_trainable: layer is NULL");
    l->frozen = !trainable;
    return HLR_OK;
}

int hlr_layer_trainable(const hlr_layer *l) { return l && !l->frozen; }

const char *hlr_layer_param_name(const hlr_layer *l, int i)
{
    if (!l) {
        hlr__fail(HLR_EINVAL, "hlr_layer_param_name: layer is NULL");
        return NULL;
    }
    if (i < 0 || i >= l->nparams) {
        hlr__fail(HLR_EINVAL, "hlr_layer_param_name: index %d outside 0..%d", i, l->nparams - 1);
        return NULL;
    }
    return l->params[i].name;
}

static hlr_param *find_param(hlr_layer *l, const char *name, const char *fn)
{
    if (!l || !name) {
        hlr__fail(HLR_EINVAL, "%s: %s is NULL", fn, l ? "name" : "layer");
        return NULL;
    }
    if (!l->built) {
        hlr__fail(HLR_ESTATE, "%s: %s layer has no parameters until its model is built", fn, l->ops->type);
        return NULL;
    }
    for (int i = 0; i < l->nparams; i++)
        if (strcmp(l->params[i].name, name) == 0)
            return &l->params[i];
    hlr__fail(HLR_ENOTFOUND, "%s: %s layer has no parameter \"%s\"", fn, l->ops->type, name);
    return NULL;
}

hlr_tensor *hlr__layer_param_value(hlr_layer *l, const char *name)
{
    hlr_param *p = find_param(l, name, "hlr_layer_param");
    return p ? &p->value : NULL;
}

hlr_tensor *hlr_layer_param(hlr_layer *l, const char *name)
{
    hlr_tensor *t = hlr__layer_param_value(l, name);
    /* the caller may write through the view at any time from now on: forms made from these weights are
     * checked against them on every pass (internal.h), in every layer sharing the storage */
    for (hlr_layer *o = t ? l : NULL; o; o = o->origin)
        atomic_store_explicit(&o->exposed, 1, memory_order_relaxed);
    return t;
}

hlr_tensor *hlr_layer_grad(hlr_layer *l, const char *name)
{
    hlr_param *p = find_param(l, name, "hlr_layer_grad");
    if (p && !p->grad.data) {
        hlr__fail(HLR_ESTATE, "hlr_layer_grad: this %s layer belongs to a clone made by hlr_model_clone_shared, which "
                  "serves inference only and keeps no gradients", l->ops->type);
        return NULL;
    }
    return p ? &p->grad : NULL;
}

/* Parts of a comparison: each thread compares its share of the weights (one image's pass compares a
 * few hundred KB, 12 % of the cnn-bn's time on one thread). */
typedef struct compare_job {
    const float *a, *b;
    _Atomic int differ;
} compare_job;

static void compare_part(void *ctx, int64_t b, int64_t e)
{
    compare_job *j = ctx;
    if (memcmp(j->a + b, j->b + b, (size_t)(e - b) * sizeof *j->a) != 0)
        atomic_store_explicit(&j->differ, 1, memory_order_relaxed);
}

int hlr__layer_exposed(const hlr_layer *l)
{
    for (; l; l = l->origin)
        if (atomic_load_explicit(&l->exposed, memory_order_relaxed))
            return 1;
    return 0;
}

int hlr__weights_changed(const hlr_layer *l, hlr_weights_seen *s, float *seen, const float *w, int64_t n)
{
    const uint64_t now = hlr__weights_generation();
    if (s->valid && s->generation == now && !hlr__layer_exposed(l)) {
#ifdef HLR_CHECK_WEIGHT_WRITES
        if (memcmp(seen, w, (size_t)n * sizeof *w) != 0) {
            fprintf(stderr, "libhlr: HLR_CHECK_WEIGHT_WRITES: the weights of %s layer %d changed without "
                            "hlr__weights_written()\n", l->ops->type, l->index);
            abort();
        }
#endif
        return 0;
    }
    s->generation = now;
    if (s->valid) {
        compare_job j = {seen, w, 0};
        hlr__parallel_for(n, HLR__SERIAL_FLOATS, compare_part, &j);
        if (!atomic_load_explicit(&j.differ, memory_order_relaxed))
            return 0;
    }
    memcpy(seen, w, (size_t)n * sizeof *w);
    s->valid = 1;
    return 1;
}

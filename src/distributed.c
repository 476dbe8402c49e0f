/*
 * distributed.c -- data-parallel training's two model operations: rank 0's
 * parameters to every process, and the mean of every process's gradients.
 * The transport is the caller's (hlr_distributed: libhlr-mpi gives MPI's);
 * the parameters travel in one fused buffer that the model keeps.
 */
#include "model.h"

#include <string.h>

hlr_status hlr__dist_check(const hlr_distributed *d, const char *fn)
{
    if (!d)
        return hlr__fail(HLR_EINVAL, "%s: the hlr_distributed is NULL", fn);
    if (d->size < 1 || d->rank < 0 || d->rank >= d->size)
        return hlr__fail(HLR_EINVAL, "%s: rank %d of %d processes is impossible", fn, d->rank, d->size);
    if (!d->allreduce_f32 || !d->allreduce_f64 || !d->broadcast)
        return hlr__fail(HLR_EINVAL, "%s: the hlr_distributed lacks %s", fn,
                         !d->allreduce_f32 ? "allreduce_f32" : !d->allreduce_f64 ? "allreduce_f64" : "broadcast");
    return HLR_OK;
}

hlr_status hlr__dist_failed(hlr_status st, const char *fn, const char *what)
{
    if (st == HLR_OK)
        return HLR_OK;
    return hlr__fail(st < 0 ? st : HLR_EIO, "%s: data-parallel training: the %s across processes failed (%s)", fn,
                     what, hlr_strerror(st < 0 ? st : HLR_EIO));
}

float *hlr__dist_fused(hlr_model *m, const char *fn)
{
    int64_t n = hlr__model_param_floats(m);
    if (n < 1)
        n = 1; /* a model without parameters still gets a buffer to point at */
    if (n > m->fused_cap) {
        float *f = hlr__alloc_or_fail((size_t)n, sizeof *f, fn);
        if (!f)
            return NULL;
        hlr__free(m->fused);
        m->fused = f;
        m->fused_cap = n;
    }
    return m->fused;
}

/* Which tensors travel: every parameter and buffer (broadcast), or the trainable ones' gradients. */
static int64_t pack(hlr_model *m, float *buf, int grads, int to_buf)
{
    int64_t n = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            if (grads && (l->params[j].buffer || l->frozen))
                continue;
            float *t = grads ? hlr__grad(l, j) : hlr__param(l, j);
            int64_t k = l->params[j].value.numel;
            if (to_buf)
                memcpy(buf + n, t, (size_t)k * sizeof *t);
            else
                memcpy(t, buf + n, (size_t)k * sizeof *t);
            n += k;
        }
    }
    if (!grads && !to_buf)
        hlr__weights_written();
    return n;
}

hlr_status hlr__dist_broadcast(hlr_model *m, const hlr_distributed *d, const char *fn)
{
    if (d->size == 1)
        return HLR_OK;
    float *buf = hlr__dist_fused(m, fn);
    if (!buf)
        return HLR_ENOMEM;
    int64_t n = pack(m, buf, 0, 1);
    hlr_status st = d->broadcast(buf, n * (int64_t)sizeof *buf, d->user);
    if (st != HLR_OK)
        return hlr__dist_failed(st, fn, "broadcast of the parameters");
    pack(m, buf, 0, 0);
    /* The generator too: the same shuffles, dropout masks and augmentation everywhere. */
    return hlr__dist_failed(d->broadcast(&m->rng, (int64_t)sizeof(hlr_rng), d->user), fn,
                            "broadcast of the generator");
}

hlr_status hlr__dist_allreduce_grads(hlr_model *m, const hlr_distributed *d, const char *fn)
{
    if (d->size == 1)
        return HLR_OK;
    float *buf = hlr__dist_fused(m, fn);
    if (!buf)
        return HLR_ENOMEM;
    int64_t n = pack(m, buf, 1, 1);
    if (n == 0)
        return HLR_OK;
    hlr_status st = d->allreduce_f32(buf, n, d->user);
    if (st != HLR_OK)
        return hlr__dist_failed(st, fn, "all-reduce of the gradients");
    const float inv = 1.0f / (float)d->size;
    for (int64_t i = 0; i < n; i++)
        buf[i] *= inv;
    pack(m, buf, 1, 0);
    return HLR_OK;
}

static hlr_status check(hlr_model *m, const hlr_distributed *d, const char *fn)
{
    if (!m)
        return hlr__fail(HLR_EINVAL, "%s: the model is NULL", fn);
    hlr_status st = hlr__dist_check(d, fn);
    if (st != HLR_OK)
        return st;
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    return hlr__model_check_trainable(m, fn);
}

hlr_status hlr_model_broadcast_parameters(hlr_model *m, const hlr_distributed *d)
{
    const char *fn = "hlr_model_broadcast_parameters";
    hlr_status st = check(m, d, fn);
    return st != HLR_OK ? st : hlr__dist_broadcast(m, d, fn);
}

hlr_status hlr_model_allreduce_gradients(hlr_model *m, const hlr_distributed *d)
{
    const char *fn = "hlr_model_allreduce_gradients";
    hlr_status st = check(m, d, fn);
    return st != HLR_OK ? st : hlr__dist_allreduce_grads(m, d, fn);
}

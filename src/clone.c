/*
 * clone.c -- inference clones that share a model's parameters: each clone
 * has its own layers (so its own per-batch buffers and workspaces) whose
 * parameter tensors point at the original's data, so several threads can
 * predict at once with one copy of the weights.
 */
#include "model.h"

#include <string.h>

hlr_model *hlr_model_clone_shared(const hlr_model *cm)
{
    const char *fn = "hlr_model_clone_shared";
    hlr_model *m = (hlr_model *)cm; /* only read */
    if (!m) {
        hlr__fail(HLR_EINVAL, "%s: model is NULL", fn);
        return NULL;
    }
    if (!m->built) {
        hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
        return NULL;
    }
    hlr_model *c = hlr_model_new(0);
    if (!c)
        return NULL;
    hlr_status st = HLR_OK;
    for (int i = 0; i < hlr_model_num_layers(m) && st == HLR_OK; i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        if (!l->ops->from_config) {
            st = hlr__fail(HLR_EUNSUPPORTED, "%s: layer %d (%s) cannot be rebuilt from its configuration", fn, i,
                           l->ops->type);
            break;
        }
        hlr_config cfg;
        memset(&cfg, 0, sizeof cfg);
        if (l->ops->get_config)
            l->ops->get_config(l, &cfg);
        hlr_layer *nl = l->ops->from_config(&cfg);
        st = nl ? hlr_model_add(c, nl) : hlr_last_status();
    }
    const hlr_shape *in = &m->in;
    if (st == HLR_OK)
        st = hlr_model_set_loss(c, m->loss, m->smoothing);
    c->temperature = m->temperature;
    if (st == HLR_OK)
        st = hlr_model_build(c, in->ndim, in->d);
    /* The rebuilt layers must hold the same tensors; then each takes the original's data. */
    for (int i = 0; i < hlr_model_num_layers(c) && st == HLR_OK; i++) {
        const hlr_layer *a = hlr_model_layer(m, i), *b = hlr_model_layer(c, i);
        int same = a->nparams == b->nparams;
        for (int j = 0; j < a->nparams && same; j++)
            same = !strcmp(a->params[j].name, b->params[j].name) && a->params[j].value.numel == b->params[j].value.numel;
        if (!same)
            st = hlr__fail(HLR_ESTATE, "%s: layer %d (%s) rebuilds with other tensors", fn, i, a->ops->type);
    }
    if (st != HLR_OK) {
        hlr_model_free(c);
        return NULL;
    }
    for (int i = 0; i < hlr_model_num_layers(c); i++) {
        hlr_layer *a = hlr_model_layer(m, i), *b = hlr_model_layer(c, i);
        for (int j = 0; j < a->nparams; j++) {
            hlr__free(b->params[j].value.data);
            hlr__free(b->params[j].grad.data);
            b->params[j].value.data = a->params[j].value.data;
            b->params[j].grad.data = NULL;
        }
        b->origin = a->origin ? a->origin : a; /* the storage's owner, whose exposure every sharer sees */
        if (b->ops->params_moved)
            b->ops->params_moved(b);
    }
    c->shared_from = m->shared_from ? m->shared_from : m;
    return c;
}

/*
 * attack.c -- L-infinity adversarial examples (hlr.h, "Robustness"): FGSM and
 * PGD on the cross-entropy loss's input gradient, with the model as predict
 * sees it.  x, adv (n, per):
 *   adv = x (+ U(-eps, eps) with a random start), then `steps` times
 *   adv = clip(proj_x,eps(adv + step sign(d loss / d adv)), clip_min, clip_max).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

void hlr_attack_options_default(hlr_attack_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->eps = 0.1;
    o->steps = 1;
    o->clip_min = 0.0;
    o->clip_max = 1.0;
}

hlr_status hlr__attack_check(const hlr_attack_options *o, const char *fn)
{
    if (!(o->eps >= 0 && o->eps <= 10) || o->steps < 1 || o->steps > 10000 || !(o->step_size >= 0) ||
        !isfinite(o->step_size) || !(o->clip_min < o->clip_max) || !isfinite(o->clip_min) || !isfinite(o->clip_max))
        return hlr__fail(HLR_EINVAL, "%s: the attack needs eps in [0, 10], steps in 1..10000, step_size >= 0 and "
                         "clip_min < clip_max (got %g, %d, %g, %g, %g)", fn, o->eps, o->steps, o->step_size,
                         o->clip_min, o->clip_max);
    return HLR_OK;
}

void hlr__attack(hlr_model *m, const float *x, int64_t n, int64_t per, const int32_t *labels,
                 const hlr_attack_options *o, float *adv, float *grad, hlr_rng *rng)
{
    const int64_t total = n * per;
    const float eps = (float)o->eps, lo = (float)o->clip_min, hi = (float)o->clip_max;
    const float step = (float)(o->step_size > 0 ? o->step_size : o->steps == 1 ? o->eps : 2.5 * o->eps / o->steps);
    memcpy(adv, x, (size_t)total * sizeof *adv); /* x and adv are distinct: the ball stays around x */
    for (int s = 0; s < o->steps; s++) {
        if (s == 0 && o->random_start)
            for (int64_t i = 0; i < total; i++) {
                float v = adv[i] + (float)((2.0 * ((hlr__rng_next(rng) >> 11) * 0x1.0p-53) - 1.0) * eps);
                adv[i] = v < lo ? lo : v > hi ? hi : v;
            }
        hlr__model_input_gradient_raw(m, adv, n, labels, 1, grad);
        for (int64_t i = 0; i < total; i++) { /* a signed step, then back into the ball and the range */
            float g = grad[i], c = x[i], v = adv[i] + (g > 0 ? step : g < 0 ? -step : 0.0f);
            v = v < c - eps ? c - eps : v > c + eps ? c + eps : v;
            adv[i] = v < lo ? lo : v > hi ? hi : v;
        }
    }
}

hlr_status hlr_model_attack(hlr_model *m, const hlr_tensor *x, const int32_t *labels, const hlr_attack_options *opt,
                            hlr_tensor *x_adv)
{
    const char *fn = "hlr_model_attack";
    hlr_attack_options o;
    hlr_attack_options_default(&o);
    if (opt)
        o = *opt;
    if (!m || !x || !labels || !x_adv)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    hlr_status st = hlr__attack_check(&o, fn);
    if (st != HLR_OK)
        return st;
    if (x_adv->dtype != HLR_F32 || x_adv->ndim != x->ndim ||
        memcmp(x_adv->shape, x->shape, (size_t)x->ndim * sizeof *x->shape) != 0)
        return hlr__fail(HLR_ESHAPE, "%s: x_adv must be a float32 tensor of x's shape", fn);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, x->ndim, x->shape); /* the input gradient of each step */
    if (!g)
        return hlr_last_status();
    float *x0 = NULL;
    if ((st = hlr__model_input_gradient_check(m, x, labels, 1, g, fn)) == HLR_OK && x_adv->data == x->data) {
        /* attacking in place: the ball is around the original x, kept aside */
        x0 = hlr__alloc_or_fail((size_t)x->numel, sizeof *x0, fn);
        if (!x0)
            st = HLR_ENOMEM;
        else
            memcpy(x0, x->data, (size_t)x->numel * sizeof *x0);
    }
    if (st == HLR_OK) {
        hlr_rng rng;
        hlr__rng_seed(&rng, o.seed);
        const int64_t n = x->shape[0];
        hlr__attack(m, x0 ? x0 : x->data, n, x->numel / n, labels, &o, x_adv->data, g->data, &rng);
    }
    hlr__free(x0);
    hlr_tensor_free(g);
    return st;
}

hlr_status hlr_model_robust_accuracy(hlr_model *m, const hlr_dataset *d, int batch_size, const hlr_attack_options *opt,
                                     double *accuracy)
{
    const char *fn = "hlr_model_robust_accuracy";
    if (!m || !d || !accuracy)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (batch_size < 1)
        return hlr__fail(HLR_EINVAL, "%s: batch_size %d must be >= 1", fn, batch_size);
    if (d->targets || !d->y)
        return hlr__fail(HLR_EINVAL, "%s: the data set needs class labels", fn);
    hlr_attack_options o;
    hlr_attack_options_default(&o);
    if (opt)
        o = *opt;
    const int64_t per = d->sample_size, batch = batch_size < d->n ? batch_size : d->n;
    int64_t shape[HLR_MAX_DIMS + 1] = {batch};
    for (int i = 0; i < d->sample.ndim; i++)
        shape[i + 1] = d->sample.d[i];
    hlr_tensor *adv = hlr_tensor_new(HLR_F32, d->sample.ndim + 1, shape);
    int32_t *cls = hlr__alloc_or_fail((size_t)batch, sizeof *cls, fn);
    hlr_status st = adv && cls ? HLR_OK : HLR_ENOMEM;
    int64_t right = 0;
    for (int64_t b = 0; b < d->n && st == HLR_OK; b += batch) {
        int64_t nb = d->n - b < batch ? d->n - b : batch;
        hlr_tensor xv = {.dtype = HLR_F32, .ndim = adv->ndim, .numel = nb * per, .data = d->x + b * per},
                   av = {.dtype = HLR_F32, .ndim = adv->ndim, .numel = nb * per, .data = adv->data};
        memcpy(xv.shape, shape, sizeof shape[0] * (size_t)adv->ndim);
        memcpy(av.shape, shape, sizeof shape[0] * (size_t)adv->ndim);
        xv.shape[0] = av.shape[0] = nb;
        o.seed = (opt ? opt->seed : 0) + (uint64_t)b; /* each batch its own random start, reproducibly */
        if ((st = hlr_model_attack(m, &xv, d->y + b, &o, &av)) != HLR_OK ||
            (st = hlr_model_predict(m, &av, cls, NULL)) != HLR_OK)
            break;
        for (int64_t i = 0; i < nb; i++)
            right += cls[i] == d->y[b + i];
    }
    hlr_tensor_free(adv);
    hlr__free(cls);
    if (st == HLR_OK)
        *accuracy = (double)right / (double)d->n;
    return st;
}

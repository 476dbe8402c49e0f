/*
 * optim.c -- SGD (momentum, Nesterov, weight decay), Adam and AdamW with the
 * update rules of torch.optim, global gradient-norm clipping and the
 * learning-rate schedules.
 */
#include "model.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

struct hlr_optimizer {
    hlr__opt_kind kind;
    float lr; /* base learning rate */
    float momentum, beta1, beta2, eps, weight_decay;
    int nesterov;
    float clip_norm;

    hlr_schedule_kind schedule;
    double sched_a, sched_b, warmup_start;
    int warmup_steps;
    int64_t sched_pos;

    int64_t steps;
    /* The model whose parameters the state below follows, by its serial
     * number (0: none yet): an address can be reused by a later model, a
     * serial never is. */
    uint64_t bound;
    int nstate;
    float **m1, **m2; /* per parameter: momentum buffer / first moment, second moment */
};

static hlr_optimizer *opt_new(hlr__opt_kind kind, float lr, const char *fn)
{
    if (!(lr > 0.0f) || !isfinite(lr)) {
        hlr__fail(HLR_EINVAL, "%s: learning rate %g must be positive and finite", fn, (double)lr);
        return NULL;
    }
    hlr_optimizer *o = hlr__alloc_or_fail(1, sizeof *o, fn);
    if (o) {
        o->kind = kind;
        o->lr = lr;
    }
    return o;
}

hlr_optimizer *hlr_sgd(float lr, float momentum, int nesterov, float weight_decay)
{
    const char *fn = "hlr_sgd";
    if (!(momentum >= 0.0f && momentum < 1.0f)) {
        hlr__fail(HLR_EINVAL, "%s: momentum %g outside [0, 1)", fn, (double)momentum);
        return NULL;
    }
    if (!(weight_decay >= 0.0f) || !isfinite(weight_decay)) {
        hlr__fail(HLR_EINVAL, "%s: weight decay %g must be >= 0 and finite", fn, (double)weight_decay);
        return NULL;
    }
    if (nesterov && momentum == 0.0f) {
        hlr__fail(HLR_EINVAL, "%s: Nesterov momentum needs momentum > 0", fn);
        return NULL;
    }
    hlr_optimizer *o = opt_new(HLR__OPT_SGD, lr, fn);
    if (o) {
        o->momentum = momentum;
        o->nesterov = nesterov != 0;
        o->weight_decay = weight_decay;
    }
    return o;
}

static hlr_optimizer *adam_new(hlr__opt_kind kind, float lr, float b1, float b2, float eps, float wd, const char *fn)
{
    if (!(b1 >= 0.0f && b1 < 1.0f) || !(b2 >= 0.0f && b2 < 1.0f)) {
        hlr__fail(HLR_EINVAL, "%s: betas (%g, %g) must lie in [0, 1)", fn, (double)b1, (double)b2);
        return NULL;
    }
    if (!(eps > 0.0f) || !isfinite(eps)) {
        hlr__fail(HLR_EINVAL, "%s: eps %g must be positive and finite", fn, (double)eps);
        return NULL;
    }
    if (!(wd >= 0.0f) || !isfinite(wd)) {
        hlr__fail(HLR_EINVAL, "%s: weight decay %g must be >= 0 and finite", fn, (double)wd);
        return NULL;
    }
    hlr_optimizer *o = opt_new(kind, lr, fn);
    if (o) {
        o->beta1 = b1;
        o->beta2 = b2;
        o->eps = eps;
        o->weight_decay = wd;
    }
    return o;
}

hlr_optimizer *hlr_adam(float lr, float beta1, float beta2, float eps, float weight_decay)
{
    return adam_new(HLR__OPT_ADAM, lr, beta1, beta2, eps, weight_decay, "hlr_adam");
}

hlr_optimizer *hlr_adamw(float lr, float beta1, float beta2, float eps, float weight_decay)
{
    return adam_new(HLR__OPT_ADAMW, lr, beta1, beta2, eps, weight_decay, "hlr_adamw");
}

static void free_state(hlr_optimizer *o)
{
    for (int i = 0; i < o->nstate; i++) {
        if (o->m1)
            hlr__free(o->m1[i]);
        if (o->m2)
            hlr__free(o->m2[i]);
    }
    hlr__free(o->m1);
    hlr__free(o->m2);
    o->m1 = o->m2 = NULL;
    o->nstate = 0;
}

void hlr_optimizer_free(hlr_optimizer *o)
{
    if (!o)
        return;
    free_state(o);
    hlr__free(o);
}

hlr_status hlr_optimizer_set_clip_norm(hlr_optimizer *o, float max_norm)
{
    if (!o)
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_set_clip_norm: optimizer is NULL");
    if (!(max_norm >= 0.0f) || !isfinite(max_norm))
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_set_clip_norm: max_norm %g must be >= 0 and finite",
                         (double)max_norm);
    o->clip_norm = max_norm;
    return HLR_OK;
}

hlr_status hlr_optimizer_set_schedule(hlr_optimizer *o, hlr_schedule_kind kind, double a, double b, int warmup_steps,
                                      double warmup_start)
{
    const char *fn = "hlr_optimizer_set_schedule";
    if (!o)
        return hlr__fail(HLR_EINVAL, "%s: optimizer is NULL", fn);
    switch (kind) {
    case HLR_SCHEDULE_CONSTANT:
        break;
    case HLR_SCHEDULE_STEP:
        /* gamma <= 1: the rate decays and stays finite (a gamma of 1e300 once drove it to inf) */
        if (!(a >= 1.0) || !(b > 0.0 && b <= 1.0) || !isfinite(a))
            return hlr__fail(HLR_EINVAL, "%s: step schedule needs step_size >= 1 and gamma in (0, 1] (got %g, %g)", fn,
                             a, b);
        break;
    case HLR_SCHEDULE_COSINE:
        if (!(a >= 1.0) || !(b >= 0.0 && b <= (double)o->lr) || !isfinite(a))
            return hlr__fail(HLR_EINVAL, "%s: cosine schedule needs T >= 1 and eta_min in [0, lr = %g] (got %g, %g)",
                             fn, (double)o->lr, a, b);
        break;
    default:
        return hlr__fail(HLR_EINVAL, "%s: unknown schedule %d", fn, (int)kind);
    }
    if (warmup_steps < 0 || (warmup_steps > 0 && !(warmup_start > 0.0 && warmup_start <= 1.0)))
        return hlr__fail(HLR_EINVAL, "%s: warm-up needs steps >= 0 and a start factor in (0, 1] (got %d, %g)", fn,
                         warmup_steps, warmup_start);
    o->schedule = kind;
    o->sched_a = a;
    o->sched_b = b;
    o->warmup_steps = warmup_steps;
    o->warmup_start = warmup_start;
    o->sched_pos = 0;
    return HLR_OK;
}

hlr_status hlr_optimizer_schedule_step(hlr_optimizer *o)
{
    if (!o)
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_schedule_step: optimizer is NULL");
    o->sched_pos++;
    return HLR_OK;
}

static double current_lr(const hlr_optimizer *o)
{
    double t = (double)o->sched_pos, lr = o->lr, factor = 1.0;
    if (o->warmup_steps > 0) {
        double w = t < o->warmup_steps ? t : o->warmup_steps;
        factor = o->warmup_start + (1.0 - o->warmup_start) * w / o->warmup_steps;
    }
    switch (o->schedule) {
    case HLR_SCHEDULE_STEP:
        lr *= pow(o->sched_b, floor(t / o->sched_a));
        break;
    case HLR_SCHEDULE_COSINE: {
        double tt = t < o->sched_a ? t : o->sched_a;
        lr = o->sched_b + (lr - o->sched_b) * (1.0 + cos(M_PI * tt / o->sched_a)) / 2.0;
        break;
    }
    default:
        break;
    }
    return lr * factor;
}

float hlr_optimizer_lr(const hlr_optimizer *o) { return o ? (float)current_lr(o) : 0.0f; }

float hlr_optimizer_base_lr(const hlr_optimizer *o) { return o ? o->lr : 0.0f; }

hlr_status hlr_optimizer_set_lr(hlr_optimizer *o, float lr)
{
    if (!o)
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_set_lr: optimizer is NULL");
    if (!(lr > 0.0f) || !isfinite(lr))
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_set_lr: learning rate %g must be positive and finite", (double)lr);
    if (o->schedule == HLR_SCHEDULE_COSINE && o->sched_b > (double)lr)
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_set_lr: %g is below the cosine schedule's eta_min %g", (double)lr,
                         o->sched_b);
    o->lr = lr;
    return HLR_OK;
}

int64_t hlr_optimizer_steps(const hlr_optimizer *o) { return o ? o->steps : 0; }

/* Count the model's parameters; allocate the state on the first step. */
static hlr_status bind(hlr_optimizer *o, hlr_model *m)
{
    int np = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++)
            np += !l->params[j].buffer;
    }
    if (o->bound) {
        if (o->bound != m->serial || np != o->nstate)
            return hlr__fail(HLR_ESTATE, "hlr_optimizer_step: this optimizer already trains another model");
        return HLR_OK;
    }
    int need2 = o->kind != HLR__OPT_SGD;
    if (o->kind == HLR__OPT_SGD && o->momentum == 0.0f) {
        o->bound = m->serial;
        o->nstate = np;
        return HLR_OK;
    }
    o->m1 = hlr__alloc_or_fail((size_t)np, sizeof *o->m1, "optimizer state");
    o->m2 = need2 ? hlr__alloc_or_fail((size_t)np, sizeof *o->m2, "optimizer state") : NULL;
    o->nstate = np;
    if (!o->m1 || (need2 && !o->m2)) {
        free_state(o);
        return HLR_ENOMEM;
    }
    int k = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            if (l->params[j].buffer)
                continue;
            o->m1[k] = hlr__alloc_or_fail((size_t)l->params[j].value.numel, sizeof(float), "optimizer state");
            if (need2)
                o->m2[k] = hlr__alloc_or_fail((size_t)l->params[j].value.numel, sizeof(float), "optimizer state");
            if (!o->m1[k] || (need2 && !o->m2[k])) {
                free_state(o);
                return HLR_ENOMEM;
            }
            k++;
        }
    }
    o->bound = m->serial;
    return HLR_OK;
}

/* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1. */
static hlr_status clip(hlr_optimizer *o, hlr_model *m)
{
    double sq = 0.0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            if (l->params[j].buffer || l->frozen)
                continue;
            const float *g = hlr__grad(l, j);
            for (int64_t e = 0; e < l->params[j].grad.numel; e++)
                sq += (double)g[e] * g[e];
        }
    }
    double norm = sqrt(sq);
    if (!isfinite(norm))
        return hlr__fail(HLR_ENUMERIC, "hlr_optimizer_step: the gradient norm is %g", norm);
    float coef = (float)(o->clip_norm / (norm + 1e-6));
    if (coef >= 1.0f)
        return HLR_OK;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            if (l->params[j].buffer || l->frozen)
                continue;
            float *g = hlr__grad(l, j);
            hlrk_scale(g, l->params[j].grad.numel, coef);
        }
    }
    return HLR_OK;
}

/* One Adam step over the pool: elements are independent. */
typedef struct adam_job {
    const hlr_optimizer *o;
    float *p, *m1, *m2;
    const float *g;
    float step_size, bc2_sqrt, l2, decay_mul;
} adam_job;

static void adam_part(void *ctx, int64_t b, int64_t e)
{
    const adam_job *j = ctx;
    hlrk_adam(j->p + b, j->g + b, j->m1 + b, j->m2 + b, e - b, j->o->beta1, j->o->beta2, j->step_size, j->bc2_sqrt,
              j->o->eps, j->l2, j->decay_mul);
}

hlr_status hlr_optimizer_step(hlr_optimizer *o, hlr_model *m)
{
    if (!o || !m)
        return hlr__fail(HLR_EINVAL, "hlr_optimizer_step: %s is NULL", o ? "model" : "optimizer");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_optimizer_step: the model is not built");
    if (hlr__model_check_trainable(m, "hlr_optimizer_step") != HLR_OK)
        return HLR_ESTATE;
    hlr_status st = bind(o, m);
    if (st != HLR_OK)
        return st;
    if (o->clip_norm > 0.0f && (st = clip(o, m)) != HLR_OK)
        return st;
    const float lr = (float)current_lr(o);
    const int64_t step = ++o->steps;
    /* Adam's bias corrections, in double as torch computes them. */
    const double bc1 = 1.0 - pow(o->beta1, (double)step), bc2 = 1.0 - pow(o->beta2, (double)step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float l2 = o->kind == HLR__OPT_ADAM ? o->weight_decay : 0.0f;
    const float decay_mul = o->kind == HLR__OPT_ADAMW ? 1.0f - lr * o->weight_decay : 1.0f;
    int k = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            if (l->params[j].buffer)
                continue;
            if (l->frozen) { /* its state slot stays, untouched: unfreezing later goes on from it */
                k++;
                continue;
            }
            int64_t n = l->params[j].value.numel;
            if (o->kind == HLR__OPT_SGD)
                hlrk_sgd(hlr__param(l, j), hlr__grad(l, j), o->m1 ? o->m1[k] : NULL, n, lr, o->weight_decay,
                         o->momentum, o->nesterov, step == 1);
            else {
                adam_job aj = {o,         hlr__param(l, j), o->m1[k], o->m2[k], hlr__grad(l, j),
                               step_size, bc2_sqrt,         l2,       decay_mul};
                hlr__parallel_for(n, 16384, adam_part, &aj);
            }
            k++;
        }
    }
    hlr__weights_written();
    return HLR_OK;
}

/* ---- state for model files ---- */

void hlr__optimizer_describe(const hlr_optimizer *o, hlr_optimizer_desc *d)
{
    memset(d, 0, sizeof *d);
    d->kind = o->kind;
    d->lr = o->lr;
    d->momentum = o->momentum;
    d->beta1 = o->beta1;
    d->beta2 = o->beta2;
    d->eps = o->eps;
    d->weight_decay = o->weight_decay;
    d->clip_norm = o->clip_norm;
    d->nesterov = o->nesterov;
    d->schedule = (int)o->schedule;
    d->warmup_steps = o->warmup_steps;
    d->sched_a = o->sched_a;
    d->sched_b = o->sched_b;
    d->warmup_start = o->warmup_start;
    d->sched_pos = o->sched_pos;
    d->steps = o->steps;
    d->bound = o->bound;
    d->nstate = o->bound ? o->nstate : 0;
    d->nmoments = o->m2 ? 2 : o->m1 ? 1 : 0;
    d->m1 = o->m1;
    d->m2 = o->m2;
}

hlr_status hlr__optimizer_restore(hlr_optimizer *o, hlr_model *m, int bound, int64_t steps, int64_t sched_pos)
{
    if (o->bound)
        return hlr__fail(HLR_ESTATE, "optimizer restore: the optimizer is in use already");
    hlr_status st = bound ? bind(o, m) : HLR_OK;
    if (st != HLR_OK)
        return st;
    o->steps = steps;
    o->sched_pos = sched_pos;
    return HLR_OK;
}

hlr_optimizer *hlr__optimizer_from_desc(const hlr_optimizer_desc *d)
{
    hlr_optimizer *o = NULL;
    switch (d->kind) {
    case HLR__OPT_SGD:
        o = hlr_sgd(d->lr, d->momentum, d->nesterov, d->weight_decay);
        break;
    case HLR__OPT_ADAM:
        o = hlr_adam(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay);
        break;
    case HLR__OPT_ADAMW:
        o = hlr_adamw(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay);
        break;
    default:
        hlr__fail(HLR_EINVAL, "unknown optimizer kind %d", d->kind);
        return NULL;
    }
    if (o && (hlr_optimizer_set_clip_norm(o, d->clip_norm) != HLR_OK ||
              hlr_optimizer_set_schedule(o, (hlr_schedule_kind)d->schedule, d->sched_a, d->sched_b, d->warmup_steps,
                                         d->warmup_start) != HLR_OK)) {
        hlr_optimizer_free(o);
        return NULL;
    }
    return o;
}

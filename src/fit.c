/*
 * fit.c -- training: one step (hlr_model_train_batch), the training loop
 * over a data set, and evaluation.  Buffers are allocated once before the
 * first batch; the loop itself allocates nothing.
 */
#include "model.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void hlr_fit_options_default(hlr_fit_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch_size = 64;
    o->shuffle = 1;
    o->reduce_lr.factor = 0.1;
    o->augment.elastic_sigma = 4.0;
    o->adversarial_fraction = 0.5;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The data set's samples must match the model's input, its classes its output. */
static hlr_status check_fit(const hlr_model *m, const hlr_dataset *d, const char *fn)
{
    const hlr_shape *in = &m->in;
    char a[HLR__SHAPE_STR], b[HLR__SHAPE_STR];
    const int ctc = m->loss == HLR_LOSS_CTC;
    hlr_status st = ctc ? hlr__model_check_ctc(m, fn) : hlr__model_check_classifier(m, fn);
    if (st != HLR_OK)
        return st;
    if (ctc != (d->targets != NULL))
        return hlr__fail(HLR_EINVAL, "%s: %s", fn, ctc ? "a CTC model needs a sequence data set "
                                                        "(hlr_dataset_from_sequences)"
                                                      : "a sequence data set needs a model with the CTC loss "
                                                        "(hlr_model_set_loss(m, HLR_LOSS_CTC, 0))");
    if (d->sample_size != m->in_size || d->sample.ndim != in->ndim ||
        memcmp(d->sample.d, in->d, (size_t)in->ndim * sizeof in->d[0]) != 0)
        return hlr__fail(HLR_ESHAPE, "%s: samples are %s, the model takes %s", fn,
                         hlr__shape_str(&d->sample, a, sizeof a), hlr__shape_str(in, b, sizeof b));
    if (d->dtype != hlr__model_in_dtype(m))
        return hlr__fail(HLR_EINVAL, "%s: samples are %s, the model takes %s", fn,
                         d->dtype == HLR_I32 ? "int32 token ids" : "float32",
                         d->dtype == HLR_I32 ? "float32" : "int32 token ids");
    if (ctc && d->num_classes != m->out.d[1])
        return hlr__fail(HLR_ESHAPE, "%s: the data set has %d classes (the blank included), the model scores %lld",
                         fn, d->num_classes, (long long)m->out.d[1]);
    if (!ctc && d->num_classes > m->out_size)
        return hlr__fail(HLR_ESHAPE, "%s: the data set has %d classes, the model outputs %lld", fn, d->num_classes,
                         (long long)m->out_size);
    return HLR_OK;
}

/* Copy the samples idx[0..n) into x (their bytes: floats or token ids), their
 * labels into y and, when the data set has them, their lengths into len. */
static void gather(const hlr_dataset *d, const int64_t *idx, int64_t n, float *x, int32_t *y, int32_t *len,
                   int32_t *targets)
{
    size_t bytes = (size_t)d->sample_size * sizeof(float);
    for (int64_t i = 0; i < n; i++) {
        memcpy(x + i * d->sample_size, d->x + idx[i] * d->sample_size, bytes);
        y[i] = d->y[idx[i]];
        if (d->lengths)
            len[i] = d->lengths[idx[i]];
        if (d->targets)
            memcpy(targets + i * d->max_target, d->targets + idx[i] * d->max_target,
                   (size_t)d->max_target * sizeof *targets);
    }
}

/*
 * Shift each (C, H, W) image of x (n of them) by (dy, dx) drawn uniformly
 * from [-max, max]^2, filling with zeros; tmp holds one image.
 */
static void augment_shift(float *x, int64_t n, const hlr_shape *s, int max, hlr_rng *rng, float *tmp)
{
    const int64_t C = s->d[0], H = s->d[1], W = s->d[2], size = C * H * W;
    for (int64_t i = 0; i < n; i++) {
        int64_t dy = (int64_t)hlr__rng_below(rng, (uint64_t)(2 * max + 1)) - max;
        int64_t dx = (int64_t)hlr__rng_below(rng, (uint64_t)(2 * max + 1)) - max;
        if (dy == 0 && dx == 0)
            continue;
        float *img = x + i * size;
        memcpy(tmp, img, (size_t)size * sizeof *tmp);
        memset(img, 0, (size_t)size * sizeof *img);
        /* out[h][w] = in[h - dy][w - dx] where that lies inside */
        int64_t w0 = dx > 0 ? dx : 0, w1 = dx < 0 ? W + dx : W;
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = dy > 0 ? dy : 0; h < (dy < 0 ? H + dy : H); h++)
                memcpy(img + (c * H + h) * W + w0, tmp + (c * H + h - dy) * W + w0 - dx,
                       (size_t)(w1 - w0) * sizeof *img);
    }
}

static int64_t count_correct(const float *logits, const int32_t *y, int64_t n, int64_t c)
{
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++)
        ok += hlrk_argmax(logits + i * c, c) == y[i];
    return ok;
}

/* Evaluate rows [start, start+n) of d: mean loss, accuracy. Uses the model's buffers. */
typedef struct eval_acc {
    double loss_sum;
    int64_t correct, top_k_correct, count;
    hlr__ctc_tally ctc; /* CTC models: best-path readings against the targets */
} eval_acc;

static hlr_status eval_range(hlr_model *m, const hlr_dataset *d, int64_t start, int64_t n, int64_t batch, int top_k,
                             eval_acc *acc, int64_t *confusion, const char *fn)
{
    double *work = d->targets ? hlr__model_ctc_work(m, batch, d->max_target, fn) : NULL;
    if (d->targets && !work)
        return HLR_ENOMEM;
    int64_t c = m->out_size;
    for (int64_t b = start; b < start + n; b += batch) {
        int64_t nb = start + n - b < batch ? start + n - b : batch;
        const float *x = d->x + b * d->sample_size;
        hlr_status st = hlr_model_set_lengths(m, d->lengths ? d->lengths + b : NULL, nb);
        if (st == HLR_OK)
            st = hlr__model_check_pass(m, nb, x, fn);
        if (st != HLR_OK)
            return st;
        const float *out = hlr__model_infer(m, x, nb);
        if (d->targets) { /* CTC: the loss and best-path readings (the gradient lands in the unused dy) */
            const hlr_shape *os = &m->out;
            const int32_t *il = hlr__model_out_lengths(m, nb), *tg = d->targets + b * d->max_target;
            acc->loss_sum += hlr__ctc_model_loss(out, nb, os->d[0], os->d[1], il, tg, d->max_target, work,
                                                 m->dy) * (double)nb;
            hlr__ctc_score(out, nb, os->d[0], os->d[1], il, tg, d->max_target, work, &acc->ctc);
            acc->correct = acc->ctc.right;
            acc->count += nb;
            continue;
        }
        const int32_t *y = d->y + b;
        acc->loss_sum += hlrk_cross_entropy(out, y, nb, c, 0.0f, NULL) * (double)nb;
        for (int64_t i = 0; i < nb; i++) {
            const float *row = out + i * c;
            int64_t pred = hlrk_argmax(row, c);
            /* A NaN score ranks nowhere: the row counts as wrong (comparisons
             * with NaN are false, so it once counted as a hit). */
            int64_t higher = 0, nans = 0; /* classes scoring above the true one */
            for (int64_t k = 0; k < c; k++) {
                higher += row[k] > row[y[i]];
                nans += isnan(row[k]);
            }
            acc->correct += pred == y[i] && !nans;
            acc->top_k_correct += higher < top_k && !nans;
            if (confusion)
                confusion[(int64_t)y[i] * d->num_classes + pred]++;
        }
        acc->count += nb;
    }
    return HLR_OK;
}

/* ---- training control: monitors, early stopping, plateaus, checkpoints, CSV ---- */

static const char *monitor_name(hlr_monitor k)
{
    static const char *const names[] = {"val_loss", "val_accuracy", "train_loss", "train_accuracy"};
    return names[k];
}

static double monitor_value(const hlr_epoch_stats *s, hlr_monitor k)
{
    switch (k) {
    case HLR_MONITOR_VAL_LOSS:
        return s->val_loss;
    case HLR_MONITOR_VAL_ACCURACY:
        return s->val_accuracy;
    case HLR_MONITOR_TRAIN_LOSS:
        return s->train_loss;
    default:
        return s->train_accuracy;
    }
}

/* One watched number: the best value so far and the epochs since it. */
typedef struct watch {
    hlr_monitor monitor;
    double min_delta, best;
    int best_epoch, wait;
} watch;

static void watch_init(watch *w, hlr_monitor k, double min_delta)
{
    *w = (watch){.monitor = k, .min_delta = min_delta, .best = NAN};
}

/* Record epoch e's value; 1 when it improved on the best by more than min_delta (NaN never does). */
static int watch_update(watch *w, const hlr_epoch_stats *s, int e)
{
    double v = monitor_value(s, w->monitor);
    int lower = w->monitor == HLR_MONITOR_VAL_LOSS || w->monitor == HLR_MONITOR_TRAIN_LOSS;
    int better = !isnan(v) && (isnan(w->best) || (lower ? v < w->best - w->min_delta : v > w->best + w->min_delta));
    if (better) {
        w->best = v;
        w->best_epoch = e;
        w->wait = 0;
    } else {
        w->wait++;
    }
    return better;
}

/* Every parameter and buffer of the model, copied in and out of one block. */
static void params_copy(hlr_model *m, float *block, int to_block)
{
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            size_t bytes = (size_t)l->params[j].value.numel * sizeof(float);
            if (to_block)
                memcpy(block, hlr__param(l, j), bytes);
            else
                memcpy(hlr__param(l, j), block, bytes);
            block += l->params[j].value.numel;
        }
    }
    if (!to_block)
        hlr__weights_written();
}

static hlr_status check_monitor(hlr_monitor k, int has_val, const char *what, const char *fn)
{
    if ((unsigned)k > HLR_MONITOR_TRAIN_ACCURACY)
        return hlr__fail(HLR_EINVAL, "%s: %s monitors an unknown value (%d)", fn, what, (int)k);
    if (!has_val && (k == HLR_MONITOR_VAL_LOSS || k == HLR_MONITOR_VAL_ACCURACY))
        return hlr__fail(HLR_EINVAL, "%s: %s monitors %s but there is no validation data (set validation_split or "
                         "validation_data, or monitor train_loss)", fn, what, monitor_name(k));
    return HLR_OK;
}

/* The options that need checking beyond the basic ones. */
static hlr_status check_control(const hlr_model *m, const hlr_dataset *train, const hlr_fit_options *opt,
                                float smoothing, const char *fn)
{
    int has_val = opt->validation_split > 0.0 || opt->validation_data;
    hlr_status st;
    if (opt->validation_data && opt->validation_split > 0.0)
        return hlr__fail(HLR_EINVAL, "%s: give validation_split or validation_data, not both", fn);
    if (opt->validation_data) {
        if ((st = check_fit(m, opt->validation_data, fn)) != HLR_OK)
            return st;
        if (opt->validation_data->dtype != train->dtype)
            return hlr__fail(HLR_EINVAL, "%s: validation_data holds other samples than the training set", fn);
    }
    if (opt->class_weight) {
        if (opt->class_weight_count != m->out_size)
            return hlr__fail(HLR_EINVAL, "%s: class_weight has %d entries, the model has %lld classes", fn,
                             opt->class_weight_count, (long long)m->out_size);
        for (int c = 0; c < opt->class_weight_count; c++)
            if (!(opt->class_weight[c] >= 0.0f) || !isfinite(opt->class_weight[c]))
                return hlr__fail(HLR_EINVAL, "%s: class_weight[%d] = %g; weights must be >= 0 and finite", fn, c,
                                 (double)opt->class_weight[c]);
        if (smoothing != 0.0f)
            return hlr__fail(HLR_EUNSUPPORTED, "%s: class_weight with label smoothing is not supported", fn);
    }
    const hlr_early_stopping *es = &opt->early_stopping;
    if (es->patience < 0 || !(es->min_delta >= 0.0) || !isfinite(es->min_delta))
        return hlr__fail(HLR_EINVAL, "%s: early_stopping needs patience >= 0 and min_delta >= 0 (got %d, %g)", fn,
                         es->patience, es->min_delta);
    if (es->patience > 0 && (st = check_monitor(es->monitor, has_val, "early_stopping", fn)) != HLR_OK)
        return st;
    const hlr_lr_plateau *rp = &opt->reduce_lr;
    if (rp->patience < 0 || (rp->patience > 0 && (!(rp->factor > 0.0 && rp->factor < 1.0) || !(rp->min_delta >= 0.0) ||
                                                  !isfinite(rp->min_delta) || !(rp->min_lr >= 0.0) ||
                                                  !isfinite(rp->min_lr))))
        return hlr__fail(HLR_EINVAL, "%s: reduce_lr needs patience >= 0, factor in (0, 1), min_delta >= 0 and "
                         "min_lr >= 0 (got %d, %g, %g, %g)", fn, rp->patience, rp->factor, rp->min_delta, rp->min_lr);
    if (rp->patience > 0 && (st = check_monitor(rp->monitor, has_val, "reduce_lr", fn)) != HLR_OK)
        return st;
    if (opt->checkpoint.path && (st = check_monitor(opt->checkpoint.monitor, has_val || !opt->checkpoint.best_only,
                                                    "checkpoint", fn)) != HLR_OK)
        return st;
    return HLR_OK;
}

/* A value, or nothing for NaN (no validation set). */
static void csv_field(FILE *f, double v)
{
    if (!isnan(v))
        fprintf(f, "%.9g", v);
}

static void csv_row(FILE *f, const hlr_epoch_stats *s)
{
    fprintf(f, "%d,%.9g,%.9g,", s->epoch, s->train_loss, s->train_accuracy);
    csv_field(f, s->val_loss);
    fputc(',', f);
    csv_field(f, s->val_accuracy);
    fprintf(f, ",%.9g,%.6f\n", s->lr, s->seconds);
}

/* A callback may run the model itself (a prediction, an evaluation) on more
 * samples, or CTC on longer targets, than the fit planned for: the model then
 * grows its buffers, and the addresses the fit holds would dangle.  Take them
 * again after each callback; with buffers at least as large as before this
 * allocates nothing. */
static void refresh_buffers(hlr_model *m, float **bx, double **ctc_work, int64_t batch, int64_t ctc_S, const char *fn)
{
    *bx = m->acts[0];
    if (ctc_work)
        *ctc_work = hlr__model_ctc_work(m, batch, ctc_S, fn);
}

/* Data-parallel: the sums of every process's figures, in place (nothing to do alone). */
static hlr_status sum_over_processes(const hlr_distributed *dist, double *v, int64_t n)
{
    return dist && dist->size > 1
               ? hlr__dist_failed(dist->allreduce_f64(v, n, dist->user), "hlr_model_fit", "sum of the figures")
               : HLR_OK;
}

static hlr_status sum_eval(const hlr_distributed *dist, eval_acc *acc)
{
    double v[8] = {acc->loss_sum,     (double)acc->correct,   (double)acc->top_k_correct, (double)acc->count,
                   (double)acc->ctc.edits, (double)acc->ctc.chars, (double)acc->ctc.right, (double)acc->ctc.strings};
    hlr_status st = sum_over_processes(dist, v, 8);
    if (st != HLR_OK)
        return st;
    *acc = (eval_acc){.loss_sum = v[0], .correct = (int64_t)v[1], .top_k_correct = (int64_t)v[2],
                      .count = (int64_t)v[3],
                      .ctc = {(int64_t)v[4], (int64_t)v[5], (int64_t)v[6], (int64_t)v[7]}};
    return HLR_OK;
}

/* Whether any process asked to stop (every process calls it, so that all stop together). */
static hlr_status any_process(const hlr_distributed *dist, int *flag)
{
    double v = *flag ? 1.0 : 0.0;
    hlr_status st = sum_over_processes(dist, &v, 1);
    *flag = v > 0.0;
    return st;
}

/* ---- one step, and fit's epochs of them ---- */

hlr_status hlr_model_train_batch(hlr_model *m, hlr_optimizer *o, const hlr_tensor *x, const hlr_tensor *target,
                                 float *loss)
{
    if (!m || !o || !x || !target)
        return hlr__fail(HLR_EINVAL, "hlr_model_train_batch: NULL argument");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_train_batch: the model is not built");
    if (hlr__model_check_trainable(m, "hlr_model_train_batch") != HLR_OK)
        return HLR_ESTATE;
    int64_t n = hlr__check_batch(x, hlr__model_in_dtype(m), &m->in, -1, "hlr_model_train_batch", "input");
    if (n < 0)
        return (hlr_status)n;
    hlr_status st = hlr__model_check_pass(m, n, x->data, "hlr_model_train_batch");
    if (st != HLR_OK)
        return st;
    if (m->loss == HLR_LOSS_CROSS_ENTROPY) {
        if ((st = hlr__model_check_classifier(m, "hlr_model_train_batch")) != HLR_OK)
            return st;
        if ((st = hlr__check_tensor(target, HLR_I32, "hlr_model_train_batch: target")) != HLR_OK)
            return st;
        if (target->ndim != 1 || target->shape[0] != n)
            return hlr__fail(HLR_ESHAPE, "hlr_model_train_batch: target must hold %lld labels", (long long)n);
        const int32_t *lab = target->data;
        for (int64_t i = 0; i < n; i++)
            if (lab[i] < 0 || lab[i] >= m->out_size)
                return hlr__fail(HLR_EINVAL, "hlr_model_train_batch: label %d at %lld outside [0, %lld)", lab[i],
                                 (long long)i, (long long)m->out_size);
    } else if (m->loss == HLR_LOSS_CTC) {
        if ((st = hlr__model_check_ctc(m, "hlr_model_train_batch")) != HLR_OK ||
            (st = hlr__check_tensor(target, HLR_I32, "hlr_model_train_batch: target")) != HLR_OK)
            return st;
        if (target->ndim != 2 || target->shape[0] != n || target->shape[1] < 1)
            return hlr__fail(HLR_ESHAPE, "hlr_model_train_batch: CTC targets must be (%lld, S): label sequences "
                             "padded with -1", (long long)n);
        if ((st = hlr__check_ctc_targets(target->data, n, target->shape[1], m->out.d[1],
                                         "hlr_model_train_batch")) != HLR_OK)
            return st;
        if (!hlr__model_ctc_work(m, n, target->shape[1], "hlr_model_train_batch"))
            return HLR_ENOMEM;
    } else {
        int64_t nt = hlr__check_batch(target, HLR_F32, &m->out, n, "hlr_model_train_batch", "target");
        if (nt < 0)
            return (hlr_status)nt;
    }
    if ((st = hlr__model_plan(m, n)) != HLR_OK)
        return st;
    const float *out = hlr__model_forward_raw(m, x->data, n, 1);
    double l;
    if (m->loss == HLR_LOSS_CROSS_ENTROPY) {
        l = hlrk_cross_entropy(out, target->data, n, m->out_size, m->smoothing, m->dy);
    } else if (m->loss == HLR_LOSS_CTC) {
        l = hlr__ctc_model_loss(out, n, m->out.d[0], m->out.d[1], hlr__model_out_lengths(m, n), target->data,
                                target->shape[1], m->ctc_work, m->dy);
    } else {
        l = hlrk_mse(out, target->data, n * m->out_size, m->dy);
    }
    if (loss)
        *loss = (float)l;
    if (!isfinite(l))
        return hlr__fail(HLR_ENUMERIC, "hlr_model_train_batch: the loss is %g; parameters left unchanged", l);
    hlr__model_backward_raw(m, m->dy, NULL);
    return hlr_optimizer_step(o, m);
}

hlr_status hlr_model_fit(hlr_model *m, hlr_optimizer *o, const hlr_dataset *train, const hlr_fit_options *opt)
{
    const char *fn = "hlr_model_fit";
    if (!m || !o || !train || !opt)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (hlr__model_check_trainable(m, fn) != HLR_OK)
        return HLR_ESTATE;
    if (opt->epochs < 1 || opt->batch_size < 1 || !(opt->validation_split >= 0.0 && opt->validation_split < 1.0))
        return hlr__fail(HLR_EINVAL, "%s: need epochs >= 1, batch_size >= 1, validation_split in [0, 1)", fn);
    if (opt->augment_shift < 0 || (opt->augment_shift > 0 && (train->sample.ndim != 3 ||
                                                              opt->augment_shift >= train->sample.d[1] ||
                                                              opt->augment_shift >= train->sample.d[2])))
        return hlr__fail(HLR_EINVAL, "%s: augment_shift %d needs (C, H, W) samples larger than the shift", fn,
                         opt->augment_shift);
    if (opt->augment_shift > 0 && train->dtype != HLR_F32)
        return hlr__fail(HLR_EINVAL, "%s: augment_shift applies to images, not token ids", fn);
    const hlr_augment *ag = &opt->augment;
    if (!hlr__augment_valid(ag))
        return hlr__fail(HLR_EINVAL, "%s: augment needs rotate in [0, 180], scale in [0, 0.9], shear in [0, 60], "
                         "elastic_alpha in [0, 1000] and elastic_sigma in (0, 64] (got %g, %g, %g, %g, %g)", fn,
                         ag->rotate, ag->scale, ag->shear, ag->elastic_alpha, ag->elastic_sigma);
    if (hlr__augment_active(ag) && (train->sample.ndim != 3 || train->dtype != HLR_F32))
        return hlr__fail(HLR_EINVAL, "%s: augment applies to (C, H, W) float images", fn);
    const float smoothing = m->smoothing;
    const hlr_loss_kind kind = m->loss;
    const int ctc = kind == HLR_LOSS_CTC;
    if ((kind != HLR_LOSS_CROSS_ENTROPY && !ctc) || m->out_size < 1)
        return hlr__fail(HLR_EINVAL, "%s: fitting a data set needs the cross-entropy or the CTC loss", fn);
    if (ctc && (opt->class_weight || opt->augment_shift || hlr__augment_active(&opt->augment)))
        return hlr__fail(HLR_EUNSUPPORTED, "%s: class_weight and augmentation are not supported with the CTC loss",
                         fn);
    hlr_status st = check_fit(m, train, fn);
    if (st != HLR_OK || (st = check_control(m, train, opt, smoothing, fn)) != HLR_OK)
        return st;
    const hlr_attack_options *adv = opt->adversarial;
    if (adv) {
        if ((st = hlr__attack_check(adv, fn)) != HLR_OK)
            return st;
        if (!(opt->adversarial_fraction > 0 && opt->adversarial_fraction <= 1))
            return hlr__fail(HLR_EINVAL, "%s: adversarial_fraction %g is outside (0, 1]", fn,
                             opt->adversarial_fraction);
        if (ctc || train->dtype != HLR_F32 || train->lengths)
            return hlr__fail(HLR_EUNSUPPORTED, "%s: adversarial training takes float samples of one size and "
                             "class labels (not token ids, sequences or CTC)", fn);
    }
    int64_t n_val = (int64_t)(opt->validation_split * (double)train->n + 0.5);
    int64_t n_train = train->n - n_val;
    if (n_train < 1)
        return hlr__fail(HLR_EINVAL, "%s: the validation split leaves no training samples", fn);

    /* Data-parallel: this process trains on n_local samples of each epoch's permutation (see hlr.h). */
    const hlr_distributed *dist = opt->distributed;
    if (dist && (st = hlr__dist_check(dist, fn)) != HLR_OK)
        return st;
    const int nproc = dist ? dist->size : 1, rank = dist ? dist->rank : 0, lead = rank == 0;
    const int64_t n_local = (n_train + nproc - 1) / nproc;
    int64_t batch = opt->batch_size < n_local ? opt->batch_size : n_local;
    const int64_t batches = (n_local + batch - 1) / batch;
    int64_t c = m->out_size;
    const hlr_early_stopping *es = &opt->early_stopping;
    int64_t *perm = hlr__alloc_or_fail((size_t)n_train, sizeof *perm, fn);
    int64_t *shard = nproc > 1 ? hlr__alloc_or_fail((size_t)n_local, sizeof *shard, fn) : perm;
    int32_t *by = hlr__alloc_or_fail((size_t)batch, sizeof *by, fn);
    int32_t *bl = train->lengths ? hlr__alloc_or_fail((size_t)batch, sizeof *bl, fn) : NULL;
    int32_t *bt = ctc ? hlr__alloc_or_fail((size_t)(batch * train->max_target), sizeof *bt, fn) : NULL;
    int64_t val_S = opt->validation_data ? opt->validation_data->max_target : 0;
    const int64_t ctc_S = train->max_target > val_S ? train->max_target : val_S;
    double *ctc_work = ctc ? hlr__model_ctc_work(m, batch, ctc_S, fn) : NULL;
    float *shift_tmp = opt->augment_shift ? hlr__alloc_or_fail((size_t)train->sample_size, sizeof(float), fn) : NULL;
    const int augmenting = hlr__augment_active(&opt->augment);
    float *aug_work = augmenting
                          ? hlr__alloc_or_fail((size_t)hlr__augment_work_floats(&train->sample, &opt->augment),
                                               sizeof(float), fn)
                          : NULL;
    /* Adversarial training: the clean part of the batch, the adversarial examples, the input gradient. */
    float *adv_work = adv ? hlr__alloc_or_fail((size_t)(3 * batch * train->sample_size), sizeof(float), fn) : NULL;
    float *best_params = es->patience > 0 && es->restore_best
                             ? hlr__alloc_or_fail((size_t)hlr__model_param_floats(m), sizeof(float), fn) : NULL;
    FILE *csv = NULL;
    watch stop_watch, lr_watch, ckpt_watch;
    watch_init(&stop_watch, es->monitor, es->min_delta);
    watch_init(&lr_watch, opt->reduce_lr.monitor, opt->reduce_lr.min_delta);
    watch_init(&ckpt_watch, opt->checkpoint.monitor, 0.0);
    int last_epoch = 0;
    if (!perm || !shard || !by || (opt->augment_shift && !shift_tmp) || (train->lengths && !bl) ||
        (augmenting && !aug_work) ||
        (ctc && (!bt || !ctc_work)) || (adv && !adv_work) ||
        (es->patience > 0 && es->restore_best && !best_params)) {
        st = HLR_ENOMEM;
        goto done;
    }
    if (opt->csv_log && lead) {
        int fresh = 1;
        if (opt->csv_append) {
            FILE *probe = fopen(opt->csv_log, "r");
            fresh = !probe || fgetc(probe) == EOF;
            if (probe)
                fclose(probe);
        }
        csv = fopen(opt->csv_log, opt->csv_append ? "a" : "w");
        if (!csv) {
            st = hlr__fail(HLR_EIO, "%s: cannot write the CSV log %s: %s", fn, opt->csv_log, strerror(errno));
            goto done;
        }
        if (fresh)
            fprintf(csv, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    }
    if ((st = hlr__model_plan(m, batch)) != HLR_OK)
        goto done;
    if (nproc > 1 && (!hlr__dist_fused(m, fn) || (st = hlr__dist_broadcast(m, dist, fn)) != HLR_OK)) {
        st = st != HLR_OK ? st : HLR_ENOMEM;
        goto done;
    }
    m->sync_status = HLR_OK;
    m->sync_bn = nproc > 1 && dist->sync_batchnorm ? dist : NULL; /* batch norm over all processes' batches */
    float *bx = m->acts[0]; /* gather straight into the model's input */
    hlr_rng *rng = &m->rng;
    const int64_t epochs_before = m->epochs_trained;
    if ((st = hlr__metadata_reserve_history(&m->meta, opt->epochs)) != HLR_OK) /* the epochs then allocate nothing */
        goto done;

    /* what a resumed fit needs to go on the same way (hlr_model_fit_settings, model files) */
    m->recipe = (hlr__fit_recipe){.batch_size = opt->batch_size, .shuffle = opt->shuffle != 0,
                                  .schedule_per_batch = opt->schedule_per_batch != 0,
                                  .augment_shift = opt->augment_shift, .validation_split = opt->validation_split,
                                  .augment = opt->augment};
    m->has_recipe = 1;
    for (int epoch = 1; epoch <= opt->epochs; epoch++) {
        double t0 = now_seconds(), loss_sum = 0.0;
        int64_t correct = 0;
        /* Each epoch shuffles the identity, so its order depends only on the
         * generator's state: a fit resumed from a file continues exactly. */
        for (int64_t i = 0; i < n_train; i++)
            perm[i] = i;
        if (opt->shuffle)
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)hlr__rng_below(rng, (uint64_t)i + 1), t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        /* DistributedSampler: the permutation padded with its first samples to nproc * n_local,
         * this process taking every nproc-th from its rank. */
        if (nproc > 1)
            for (int64_t i = 0; i < n_local; i++)
                shard[i] = perm[(rank + i * nproc) % n_train];
        for (int64_t b = 0; b < n_local; b += batch) {
            int64_t nb = n_local - b < batch ? n_local - b : batch;
            gather(train, shard + b, nb, bx, by, bl, bt);
            if ((st = hlr_model_set_lengths(m, bl, nb)) != HLR_OK ||
                (st = hlr__model_check_pass(m, nb, bx, fn)) != HLR_OK)
                goto done;
            if (opt->augment_shift)
                augment_shift(bx, nb, &train->sample, opt->augment_shift, rng, shift_tmp);
            if (augmenting)
                hlr__augment_images(bx, nb, &train->sample, &opt->augment, rng, aug_work);
            if (adv) { /* the first part of the batch replaced by its adversarial examples */
                const int64_t per = train->sample_size, k = (int64_t)ceil(opt->adversarial_fraction * (double)nb);
                float *clean = adv_work, *ax = clean + batch * per, *g = ax + batch * per;
                memcpy(clean, bx, (size_t)(k * per) * sizeof *clean);
                hlr__attack(m, clean, k, per, by, adv, ax, g, rng); /* its passes overwrite bx's first k */
                memcpy(bx, ax, (size_t)(k * per) * sizeof *bx);
            }
            const float *out = hlr__model_forward_raw(m, bx, nb, 1);
            if ((st = m->sync_status) != HLR_OK)
                goto done;
            double l;
            if (ctc) { /* the loss, then whole strings read right by best path: the accuracy */
                const hlr_shape *os = &m->out;
                const int32_t *il = hlr__model_out_lengths(m, nb);
                hlr__ctc_tally t = {0};
                l = hlr__ctc_model_loss(out, nb, os->d[0], os->d[1], il, bt, train->max_target, ctc_work,
                                        m->dy);
                hlr__ctc_score(out, nb, os->d[0], os->d[1], il, bt, train->max_target, ctc_work, &t);
                correct += t.right;
            } else {
                l = opt->class_weight
                        ? hlrk_cross_entropy_weighted(out, by, nb, c, opt->class_weight, m->dy)
                        : hlrk_cross_entropy(out, by, nb, c, smoothing, m->dy);
                correct += count_correct(out, by, nb, c);
            }
            if (!isfinite(l)) {
                st = hlr__fail(HLR_ENUMERIC, "%s: the loss became %g in epoch %d", fn, l, epoch);
                goto done;
            }
            loss_sum += l * (double)nb;
            hlr__model_backward_raw(m, m->dy, NULL);
            if ((st = m->sync_status) != HLR_OK) /* a synchronised batch norm's all-reduce failed */
                goto done;
            if (nproc > 1 && (st = hlr__dist_allreduce_grads(m, dist, fn)) != HLR_OK)
                goto done;
            if ((st = hlr_optimizer_step(o, m)) != HLR_OK)
                goto done;
            if (opt->schedule_per_batch)
                hlr_optimizer_schedule_step(o);
            int stop = 0;
            if (opt->on_batch) {
                int64_t done_n = b + nb;
                hlr_batch_stats bs = {.epoch = epoch, .epochs = opt->epochs, .batch = b / batch + 1,
                                      .batches = batches, .samples = done_n, .total = n_local,
                                      .loss = loss_sum / (double)done_n,
                                      .accuracy = (double)correct / (double)done_n, .seconds = now_seconds() - t0};
                stop = opt->on_batch(&bs, opt->user) != 0;
                refresh_buffers(m, &bx, ctc ? &ctc_work : NULL, batch, ctc_S, fn);
            }
            if (nproc > 1 && (st = any_process(dist, &stop)) != HLR_OK)
                goto done;
            if (stop) {
                st = hlr__fail(HLR_ECANCELLED, "%s: stopped by the batch callback%s in epoch %d", fn,
                               nproc > 1 ? " (of this or another process)" : "", epoch);
                goto done;
            }
        }
        hlr_epoch_stats s = {.epoch = epoch, .epochs = opt->epochs, .lr = hlr_optimizer_lr(o), .val_loss = NAN,
                             .val_accuracy = NAN, .val_cer = NAN}; /* NaN: no validation part (or not CTC) */
        double t_train = now_seconds() - t0;
        if (!opt->schedule_per_batch)
            hlr_optimizer_schedule_step(o);
        double sums[3] = {loss_sum, (double)correct, (double)n_local};
        if ((st = sum_over_processes(dist, sums, 3)) != HLR_OK)
            goto done;
        s.train_loss = sums[0] / sums[2];
        s.train_accuracy = sums[1] / sums[2];
        s.samples_per_second = sums[2] / (t_train > 0 ? t_train : 1e-9);
        if (n_val > 0 || opt->validation_data) {
            const hlr_dataset *vd = opt->validation_data ? opt->validation_data : train;
            eval_acc acc = {0};
            /* Each process evaluates its contiguous part; the sums are everyone's. */
            int64_t v0 = opt->validation_data ? 0 : n_train, vn = opt->validation_data ? vd->n : n_val;
            int64_t lo = vn * rank / nproc, hi = vn * (rank + 1) / nproc;
            if (hi > lo && (st = eval_range(m, vd, v0 + lo, hi - lo, batch, 1, &acc, NULL, fn)) != HLR_OK)
                goto done;
            if ((st = sum_eval(dist, &acc)) != HLR_OK)
                goto done;
            s.val_loss = acc.loss_sum / (double)acc.count;
            s.val_accuracy = (double)acc.correct / (double)acc.count;
            if (ctc)
                s.val_cer = (double)acc.ctc.edits / (double)(acc.ctc.chars > 0 ? acc.ctc.chars : 1);
        }
        s.seconds = now_seconds() - t0;
        m->epochs_trained++;
        m->batches_trained += batches;
        last_epoch = epoch;
        if (es->patience > 0) {
            if (watch_update(&stop_watch, &s, epoch) && best_params)
                params_copy(m, best_params, 1);
            s.best_epoch = stop_watch.best_epoch;
            s.stopping = stop_watch.wait >= es->patience && epoch < opt->epochs;
        }
        if (opt->reduce_lr.patience > 0 && !watch_update(&lr_watch, &s, epoch) &&
            lr_watch.wait >= opt->reduce_lr.patience) {
            double lr = hlr_optimizer_base_lr(o), next = lr * opt->reduce_lr.factor;
            next = next < opt->reduce_lr.min_lr ? opt->reduce_lr.min_lr : next;
            if (next < lr && next > 0.0 && hlr_optimizer_set_lr(o, (float)next) == HLR_OK)
                lr_watch.wait = 0;
        }
        hlr_epoch_stats rec = s;
        rec.epoch = (int)m->epochs_trained;
        rec.epochs = (int)(epochs_before + opt->epochs);
        if ((st = hlr__metadata_add_epoch(&m->meta, &rec)) != HLR_OK)
            goto done;
        if (opt->checkpoint.path) {
            int improved = watch_update(&ckpt_watch, &s, epoch);
            if (lead && (!opt->checkpoint.best_only || improved)) {
                hlr_save_options so;
                hlr_save_options_default(&so);
                so.optimizer = o;
                if ((st = hlr_model_save(m, opt->checkpoint.path, &so)) != HLR_OK)
                    goto done;
            }
        }
        if (csv) {
            csv_row(csv, &s);
            if (fflush(csv) != 0) {
                st = hlr__fail(HLR_EIO, "%s: cannot write the CSV log %s: %s", fn, opt->csv_log, strerror(errno));
                goto done;
            }
        }
        int stop = opt->on_epoch && opt->on_epoch(&s, opt->user);
        if (opt->on_epoch)
            refresh_buffers(m, &bx, ctc ? &ctc_work : NULL, batch, ctc_S, fn);
        if (nproc > 1 && (st = any_process(dist, &stop)) != HLR_OK)
            goto done;
        if (stop) {
            st = hlr__fail(HLR_ECANCELLED, "%s: stopped by the callback%s after epoch %d", fn,
                           nproc > 1 ? " (of this or another process)" : "", epoch);
            goto done;
        }
        if (s.stopping)
            break;
    }
done:
    m->sync_bn = NULL;
    /* The best epoch's parameters, when asked, once the fit has run its course
     * (to the end, stopped early, or cancelled by a callback). */
    if (best_params && stop_watch.best_epoch > 0 && stop_watch.best_epoch != last_epoch &&
        (st == HLR_OK || st == HLR_ECANCELLED))
        params_copy(m, best_params, 0);
    if (csv && fclose(csv) != 0 && st == HLR_OK)
        st = hlr__fail(HLR_EIO, "%s: cannot write the CSV log %s: %s", fn, opt->csv_log, strerror(errno));
    if (shard != perm)
        hlr__free(shard);
    hlr__free(perm);
    hlr__free(by);
    hlr__free(bl);
    hlr__free(bt);
    hlr__free(shift_tmp);
    hlr__free(best_params);
    hlr__free(aug_work);
    hlr__free(adv_work);
    hlr_model_set_lengths(m, NULL, 0);
    return st;
}

hlr_status hlr_model_evaluate(hlr_model *m, const hlr_dataset *d, int batch_size, int top_k, hlr_metrics *out,
                              int64_t *confusion)
{
    const char *fn = "hlr_model_evaluate";
    if (!m || !d || !out)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (batch_size < 1)
        return hlr__fail(HLR_EINVAL, "%s: batch_size %d must be >= 1", fn, batch_size);
    hlr_status st = check_fit(m, d, fn);
    if (st != HLR_OK)
        return st;
    int64_t c = d->targets ? 1 : m->out_size; /* CTC: top_k 1 only */
    if (top_k < 1 || top_k > c)
        return hlr__fail(HLR_EINVAL, "%s: top_k %d outside 1..%lld", fn, top_k, (long long)c);
    if (confusion && d->targets)
        return hlr__fail(HLR_EINVAL, "%s: a CTC model reads sequences; it has no confusion matrix", fn);
    if (confusion && d->num_classes != c)
        return hlr__fail(HLR_ESHAPE, "%s: a confusion matrix needs as many classes (%d) as outputs (%lld)", fn,
                         d->num_classes, (long long)c);
    int64_t batch = batch_size < d->n ? batch_size : d->n;
    if ((st = hlr__model_plan(m, batch)) != HLR_OK)
        return st;
    if (confusion)
        memset(confusion, 0, (size_t)(c * c) * sizeof *confusion);
    eval_acc acc = {0};
    st = eval_range(m, d, 0, d->n, batch, top_k, &acc, confusion, fn);
    hlr_model_set_lengths(m, NULL, 0);
    if (st != HLR_OK)
        return st;
    out->count = acc.count;
    out->loss = acc.loss_sum / (double)acc.count;
    out->accuracy = (double)acc.correct / (double)acc.count;
    out->top_k_accuracy = d->targets ? out->accuracy : (double)acc.top_k_correct / (double)acc.count;
    out->top_k = top_k;
    out->cer = d->targets ? (double)acc.ctc.edits / (double)(acc.ctc.chars > 0 ? acc.ctc.chars : 1) : NAN;
    return HLR_OK;
}

hlr_status hlr_classification_report(const int64_t *confusion, int classes, hlr_class_metrics *per_class,
                                     hlr_class_metrics *macro, hlr_class_metrics *weighted)
{
    const char *fn = "hlr_classification_report";
    if (!confusion || classes < 1)
        return hlr__fail(HLR_EINVAL, "%s: %s", fn, confusion ? "classes must be >= 1" : "confusion is NULL");
    int64_t total = 0;
    for (int64_t k = 0; k < (int64_t)classes * classes; k++) {
        if (confusion[k] < 0)
            return hlr__fail(HLR_EINVAL, "%s: confusion[%lld] = %lld is negative", fn, (long long)k,
                             (long long)confusion[k]);
        total += confusion[k];
    }
    hlr_class_metrics mac = {.support = total}, wei = {.support = total};
    for (int c = 0; c < classes; c++) {
        int64_t tp = confusion[(int64_t)c * classes + c], row = 0, col = 0;
        for (int k = 0; k < classes; k++) {
            row += confusion[(int64_t)c * classes + k];
            col += confusion[(int64_t)k * classes + c];
        }
        hlr_class_metrics m = {.precision = col ? (double)tp / (double)col : 0.0,
                               .recall = row ? (double)tp / (double)row : 0.0, .support = row};
        m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
        if (per_class)
            per_class[c] = m;
        mac.precision += m.precision / classes;
        mac.recall += m.recall / classes;
        mac.f1 += m.f1 / classes;
        double share = total ? (double)row / (double)total : 0.0;
        wei.precision += m.precision * share;
        wei.recall += m.recall * share;
        wei.f1 += m.f1 * share;
    }
    if (macro)
        *macro = mac;
    if (weighted)
        *weighted = wei;
    return HLR_OK;
}

/* ---- the settings of the last fit ---- */

hlr_status hlr_model_fit_settings(const hlr_model *m, hlr_fit_options *o)
{
    if (!m || !o)
        return hlr__fail(HLR_EINVAL, "hlr_model_fit_settings: NULL argument");
    hlr_fit_options_default(o);
    if (!m->has_recipe)
        return hlr__fail(HLR_ENOTFOUND, "hlr_model_fit_settings: the model has not been fitted (its file, if it "
                         "came from one, records no fit: saved before format 1.2, or trained batch by batch)");
    const hlr__fit_recipe *r = &m->recipe;
    o->batch_size = r->batch_size;
    o->shuffle = r->shuffle;
    o->schedule_per_batch = r->schedule_per_batch;
    o->augment_shift = r->augment_shift;
    o->validation_split = r->validation_split;
    o->augment = r->augment;
    return HLR_OK;
}

/*
 * fit.c -- the training loop over a data set, evaluation and prediction.
 * Buffers are allocated once before the first batch; the loop itself
 * allocates nothing.
 */
#include "internal.h"
#include "kernels/kernels.h"

#include <math.h>
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
    const hlr_shape *in = hlr__model_in_shape(m);
    char a[96], b[96];
    if (d->sample_size != hlr__model_in_size(m) || d->sample.ndim != in->ndim ||
        memcmp(d->sample.d, in->d, (size_t)in->ndim * sizeof in->d[0]) != 0)
        return hlr__fail(HLR_ESHAPE, "%s: samples are %s, the model takes %s", fn,
                         hlr__shape_str(&d->sample, a, sizeof a), hlr__shape_str(in, b, sizeof b));
    if (d->num_classes > hlr__model_out_size(m))
        return hlr__fail(HLR_ESHAPE, "%s: the data set has %d classes, the model outputs %lld", fn, d->num_classes,
                         (long long)hlr__model_out_size(m));
    return HLR_OK;
}

/* Copy the samples idx[0..n) into x and their labels into y. */
static void gather(const hlr_dataset *d, const int64_t *idx, int64_t n, float *x, int32_t *y)
{
    size_t bytes = (size_t)d->sample_size * sizeof(float);
    for (int64_t i = 0; i < n; i++) {
        memcpy(x + i * d->sample_size, d->x + idx[i] * d->sample_size, bytes);
        y[i] = d->y[idx[i]];
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
} eval_acc;

static void eval_range(hlr_model *m, const hlr_dataset *d, int64_t start, int64_t n, int64_t batch, int top_k,
                       eval_acc *acc, int64_t *confusion)
{
    int64_t c = hlr__model_out_size(m);
    for (int64_t b = start; b < start + n; b += batch) {
        int64_t nb = start + n - b < batch ? start + n - b : batch;
        const float *out = hlr__model_forward_raw(m, d->x + b * d->sample_size, nb, 0);
        const int32_t *y = d->y + b;
        acc->loss_sum += hlrk_cross_entropy(out, y, nb, c, 0.0f, NULL) * (double)nb;
        for (int64_t i = 0; i < nb; i++) {
            const float *row = out + i * c;
            int64_t pred = hlrk_argmax(row, c);
            acc->correct += pred == y[i];
            if (confusion)
                confusion[(int64_t)y[i] * d->num_classes + pred]++;
            int64_t higher = 0; /* classes scoring above the true one */
            for (int64_t k = 0; k < c; k++)
                higher += row[k] > row[y[i]];
            acc->top_k_correct += higher < top_k;
        }
        acc->count += nb;
    }
}

hlr_status hlr_model_fit(hlr_model *m, hlr_optimizer *o, const hlr_dataset *train, const hlr_fit_options *opt)
{
    const char *fn = "hlr_model_fit";
    if (!m || !o || !train || !opt)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!hlr__model_built(m))
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (opt->epochs < 1 || opt->batch_size < 1 || !(opt->validation_split >= 0.0 && opt->validation_split < 1.0))
        return hlr__fail(HLR_EINVAL, "%s: need epochs >= 1, batch_size >= 1, validation_split in [0, 1)", fn);
    float smoothing;
    if (hlr__model_loss(m, &smoothing) != HLR_LOSS_CROSS_ENTROPY || hlr__model_out_size(m) < 1)
        return hlr__fail(HLR_EINVAL, "%s: fitting a data set needs the cross-entropy loss", fn);
    hlr_status st = check_fit(m, train, fn);
    if (st != HLR_OK)
        return st;
    int64_t n_val = (int64_t)(opt->validation_split * (double)train->n + 0.5);
    int64_t n_train = train->n - n_val;
    if (n_train < 1)
        return hlr__fail(HLR_EINVAL, "%s: the validation split leaves no training samples", fn);

    int64_t batch = opt->batch_size < n_train ? opt->batch_size : n_train;
    int64_t c = hlr__model_out_size(m);
    int64_t *perm = hlr__alloc_or_fail((size_t)n_train, sizeof *perm, fn);
    int32_t *by = hlr__alloc_or_fail((size_t)batch, sizeof *by, fn);
    if (!perm || !by) {
        st = HLR_ENOMEM;
        goto done;
    }
    if ((st = hlr__model_plan(m, batch)) != HLR_OK)
        goto done;
    float *bx = hlr__model_input_buffer(m); /* gather straight into the model's input */
    for (int64_t i = 0; i < n_train; i++)
        perm[i] = i;
    hlr_rng *rng = hlr__model_rng(m);

    for (int epoch = 1; epoch <= opt->epochs; epoch++) {
        double t0 = now_seconds(), loss_sum = 0.0;
        int64_t correct = 0;
        if (opt->shuffle)
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)hlr__rng_below(rng, (uint64_t)i + 1), t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        for (int64_t b = 0; b < n_train; b += batch) {
            int64_t nb = n_train - b < batch ? n_train - b : batch;
            gather(train, perm + b, nb, bx, by);
            const float *out = hlr__model_forward_raw(m, bx, nb, 1);
            double l = hlrk_cross_entropy(out, by, nb, c, smoothing, hlr__model_dy(m));
            if (!isfinite(l)) {
                st = hlr__fail(HLR_ENUMERIC, "%s: the loss became %g in epoch %d", fn, l, epoch);
                goto done;
            }
            loss_sum += l * (double)nb;
            correct += count_correct(out, by, nb, c);
            hlr__model_backward_raw(m, hlr__model_dy(m), NULL);
            if ((st = hlr_optimizer_step(o, m)) != HLR_OK)
                goto done;
            if (opt->schedule_per_batch)
                hlr_optimizer_schedule_step(o);
        }
        hlr_epoch_stats s = {.epoch = epoch, .epochs = opt->epochs, .lr = hlr_optimizer_lr(o)};
        double t_train = now_seconds() - t0;
        if (!opt->schedule_per_batch)
            hlr_optimizer_schedule_step(o);
        s.train_loss = loss_sum / (double)n_train;
        s.train_accuracy = (double)correct / (double)n_train;
        s.samples_per_second = (double)n_train / (t_train > 0 ? t_train : 1e-9);
        if (n_val > 0) {
            eval_acc acc = {0};
            eval_range(m, train, n_train, n_val, batch, 1, &acc, NULL);
            s.val_loss = acc.loss_sum / (double)acc.count;
            s.val_accuracy = (double)acc.correct / (double)acc.count;
        }
        s.seconds = now_seconds() - t0;
        if (opt->on_epoch && opt->on_epoch(&s, opt->user)) {
            st = hlr__fail(HLR_ECANCELLED, "%s: stopped by the callback after epoch %d", fn, epoch);
            goto done;
        }
    }
done:
    hlr__free(perm);
    hlr__free(by);
    return st;
}

hlr_status hlr_model_evaluate(hlr_model *m, const hlr_dataset *d, int batch_size, int top_k, hlr_metrics *out,
                              int64_t *confusion)
{
    const char *fn = "hlr_model_evaluate";
    if (!m || !d || !out)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!hlr__model_built(m))
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (batch_size < 1)
        return hlr__fail(HLR_EINVAL, "%s: batch_size %d must be >= 1", fn, batch_size);
    int64_t c = hlr__model_out_size(m);
    if (top_k < 1 || top_k > c)
        return hlr__fail(HLR_EINVAL, "%s: top_k %d outside 1..%lld", fn, top_k, (long long)c);
    hlr_status st = check_fit(m, d, fn);
    if (st != HLR_OK)
        return st;
    if (confusion && d->num_classes != c)
        return hlr__fail(HLR_ESHAPE, "%s: a confusion matrix needs as many classes (%d) as outputs (%lld)", fn,
                         d->num_classes, (long long)c);
    int64_t batch = batch_size < d->n ? batch_size : d->n;
    if ((st = hlr__model_plan(m, batch)) != HLR_OK)
        return st;
    if (confusion)
        memset(confusion, 0, (size_t)(c * c) * sizeof *confusion);
    eval_acc acc = {0};
    eval_range(m, d, 0, d->n, batch, top_k, &acc, confusion);
    out->count = acc.count;
    out->loss = acc.loss_sum / (double)acc.count;
    out->accuracy = (double)acc.correct / (double)acc.count;
    out->top_k_accuracy = (double)acc.top_k_correct / (double)acc.count;
    out->top_k = top_k;
    return HLR_OK;
}

hlr_status hlr_model_predict(hlr_model *m, const hlr_tensor *x, int32_t *classes, hlr_tensor *probs)
{
    const char *fn = "hlr_model_predict";
    if (!m || !x)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!hlr__model_built(m))
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    int out_ndim;
    int64_t out_shape[HLR_MAX_DIMS];
    hlr_model_output_shape(m, &out_ndim, out_shape);
    if (out_ndim != 1)
        return hlr__fail(HLR_ESHAPE, "%s: the model's output is not (N, C)", fn);
    hlr_status st = hlr__check_tensor(x, HLR_F32, fn);
    if (st != HLR_OK)
        return st;
    const hlr_shape *in = hlr__model_in_shape(m);
    int ok = x->ndim == in->ndim + 1;
    for (int i = 0; ok && i < in->ndim; i++)
        ok = x->shape[i + 1] == in->d[i];
    if (!ok)
        return hlr__fail(HLR_ESHAPE, "%s: input does not have the model's input shape (plus a batch dimension)", fn);
    int64_t n = x->shape[0], c = out_shape[0];
    if (probs) {
        if ((st = hlr__check_tensor(probs, HLR_F32, fn)) != HLR_OK)
            return st;
        if (probs->ndim != 2 || probs->shape[0] != n || probs->shape[1] != c)
            return hlr__fail(HLR_ESHAPE, "%s: probs must be (%lld, %lld)", fn, (long long)n, (long long)c);
    }
    if ((st = hlr__model_plan(m, n)) != HLR_OK)
        return st;
    const float *out = hlr__model_forward_raw(m, x->data, n, 0);
    for (int64_t i = 0; i < n; i++)
        if (classes)
            classes[i] = (int32_t)hlrk_argmax(out + i * c, c);
    if (probs)
        hlrk_softmax_rows(probs->data, out, n, c);
    return HLR_OK;
}

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
    hlr_status st = hlr__model_check_classifier(m, fn);
    if (st != HLR_OK)
        return st;
    if (d->sample_size != hlr__model_in_size(m) || d->sample.ndim != in->ndim ||
        memcmp(d->sample.d, in->d, (size_t)in->ndim * sizeof in->d[0]) != 0)
        return hlr__fail(HLR_ESHAPE, "%s: samples are %s, the model takes %s", fn,
                         hlr__shape_str(&d->sample, a, sizeof a), hlr__shape_str(in, b, sizeof b));
    if (d->dtype != hlr__model_in_dtype(m))
        return hlr__fail(HLR_EINVAL, "%s: samples are %s, the model takes %s", fn,
                         d->dtype == HLR_I32 ? "int32 token ids" : "float32",
                         d->dtype == HLR_I32 ? "float32" : "int32 token ids");
    if (d->num_classes > hlr__model_out_size(m))
        return hlr__fail(HLR_ESHAPE, "%s: the data set has %d classes, the model outputs %lld", fn, d->num_classes,
                         (long long)hlr__model_out_size(m));
    return HLR_OK;
}

/* Copy the samples idx[0..n) into x (their bytes: floats or token ids), their
 * labels into y and, when the data set has them, their lengths into len. */
static void gather(const hlr_dataset *d, const int64_t *idx, int64_t n, float *x, int32_t *y, int32_t *len)
{
    size_t bytes = (size_t)d->sample_size * sizeof(float);
    for (int64_t i = 0; i < n; i++) {
        memcpy(x + i * d->sample_size, d->x + idx[i] * d->sample_size, bytes);
        y[i] = d->y[idx[i]];
        if (d->lengths)
            len[i] = d->lengths[idx[i]];
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
} eval_acc;

static hlr_status eval_range(hlr_model *m, const hlr_dataset *d, int64_t start, int64_t n, int64_t batch, int top_k,
                             eval_acc *acc, int64_t *confusion, const char *fn)
{
    int64_t c = hlr__model_out_size(m);
    for (int64_t b = start; b < start + n; b += batch) {
        int64_t nb = start + n - b < batch ? start + n - b : batch;
        const float *x = d->x + b * d->sample_size;
        hlr_status st = hlr_model_set_lengths(m, d->lengths ? d->lengths + b : NULL, nb);
        if (st == HLR_OK)
            st = hlr__model_check_pass(m, nb, x, fn);
        if (st != HLR_OK)
            return st;
        const float *out = hlr__model_forward_raw(m, x, nb, 0);
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

hlr_status hlr_model_fit(hlr_model *m, hlr_optimizer *o, const hlr_dataset *train, const hlr_fit_options *opt)
{
    const char *fn = "hlr_model_fit";
    if (!m || !o || !train || !opt)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!hlr__model_built(m))
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
    int32_t *bl = train->lengths ? hlr__alloc_or_fail((size_t)batch, sizeof *bl, fn) : NULL;
    float *shift_tmp = opt->augment_shift ? hlr__alloc_or_fail((size_t)train->sample_size, sizeof(float), fn) : NULL;
    if (!perm || !by || (opt->augment_shift && !shift_tmp) || (train->lengths && !bl)) {
        st = HLR_ENOMEM;
        goto done;
    }
    if ((st = hlr__model_plan(m, batch)) != HLR_OK)
        goto done;
    float *bx = hlr__model_input_buffer(m); /* gather straight into the model's input */
    hlr_rng *rng = hlr__model_rng(m);
    hlr_model_extra *ex = hlr__model_extra(m);
    const int64_t epochs_before = ex->epochs_trained;
    if ((st = hlr__metadata_reserve_history(&ex->meta, opt->epochs)) != HLR_OK) /* the epochs then allocate nothing */
        goto done;

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
        for (int64_t b = 0; b < n_train; b += batch) {
            int64_t nb = n_train - b < batch ? n_train - b : batch;
            gather(train, perm + b, nb, bx, by, bl);
            if ((st = hlr_model_set_lengths(m, bl, nb)) != HLR_OK ||
                (st = hlr__model_check_pass(m, nb, bx, fn)) != HLR_OK)
                goto done;
            if (opt->augment_shift)
                augment_shift(bx, nb, &train->sample, opt->augment_shift, rng, shift_tmp);
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
        hlr_epoch_stats s = {.epoch = epoch, .epochs = opt->epochs, .lr = hlr_optimizer_lr(o), .val_loss = NAN,
                             .val_accuracy = NAN}; /* NaN: no validation part */
        double t_train = now_seconds() - t0;
        if (!opt->schedule_per_batch)
            hlr_optimizer_schedule_step(o);
        s.train_loss = loss_sum / (double)n_train;
        s.train_accuracy = (double)correct / (double)n_train;
        s.samples_per_second = (double)n_train / (t_train > 0 ? t_train : 1e-9);
        if (n_val > 0) {
            eval_acc acc = {0};
            if ((st = eval_range(m, train, n_train, n_val, batch, 1, &acc, NULL, fn)) != HLR_OK)
                goto done;
            s.val_loss = acc.loss_sum / (double)acc.count;
            s.val_accuracy = (double)acc.correct / (double)acc.count;
        }
        s.seconds = now_seconds() - t0;
        ex->epochs_trained++;
        ex->batches_trained += (n_train + batch - 1) / batch;
        hlr_epoch_stats rec = s;
        rec.epoch = (int)ex->epochs_trained;
        rec.epochs = (int)(epochs_before + opt->epochs);
        if ((st = hlr__metadata_add_epoch(&ex->meta, &rec)) != HLR_OK)
            goto done;
        if (opt->on_epoch && opt->on_epoch(&s, opt->user)) {
            st = hlr__fail(HLR_ECANCELLED, "%s: stopped by the callback after epoch %d", fn, epoch);
            goto done;
        }
    }
done:
    hlr__free(perm);
    hlr__free(by);
    hlr__free(bl);
    hlr__free(shift_tmp);
    hlr_model_set_lengths(m, NULL, 0);
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
    hlr_status st = check_fit(m, d, fn);
    if (st != HLR_OK)
        return st;
    int64_t c = hlr__model_out_size(m);
    if (top_k < 1 || top_k > c)
        return hlr__fail(HLR_EINVAL, "%s: top_k %d outside 1..%lld", fn, top_k, (long long)c);
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
    hlr_status st = hlr__model_check_classifier(m, fn);
    if (st != HLR_OK)
        return st;
    int out_ndim;
    int64_t out_shape[HLR_MAX_DIMS];
    hlr_model_output_shape(m, &out_ndim, out_shape);
    int64_t n = hlr__check_batch(x, hlr__model_in_dtype(m), hlr__model_in_shape(m), -1, fn, "input");
    if (n < 0)
        return (hlr_status)n;
    int64_t c = out_shape[0];
    if (probs) {
        if ((st = hlr__check_tensor(probs, HLR_F32, fn)) != HLR_OK)
            return st;
        if (probs->ndim != 2 || probs->shape[0] != n || probs->shape[1] != c)
            return hlr__fail(HLR_ESHAPE, "%s: probs must be (%lld, %lld)", fn, (long long)n, (long long)c);
    }
    if ((st = hlr__model_check_pass(m, n, x->data, fn)) != HLR_OK || (st = hlr__model_plan(m, n)) != HLR_OK)
        return st;
    const float *out = hlr__model_forward_raw(m, x->data, n, 0);
    for (int64_t i = 0; i < n; i++)
        if (classes)
            classes[i] = (int32_t)hlrk_argmax(out + i * c, c);
    if (probs)
        hlrk_softmax_rows(probs->data, out, n, c);
    return HLR_OK;
}

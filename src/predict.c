/*
 * predict.c -- inference on a built model: class predictions and their
 * probabilities (softmax at the model's temperature), and the raw outputs
 * of a whole data set for the files that evaluate or calibrate on them.
 */
#include "kernels/kernels.h"
#include "model.h"

#include <string.h>

double hlr__model_temperature(const hlr_model *m)
{
    double t = m ? m->temperature : 0.0;
    return t > 0.0 ? t : 1.0;
}

double hlr_model_temperature(const hlr_model *m)
{
    return hlr__model_temperature(m);
}

void hlr__model_probabilities(const hlr_model *m, const float *logits, int64_t n, int64_t c, float *probs)
{
    const double t = hlr__model_temperature(m);
    if (t == 1.0) {
        hlrk_softmax_rows(probs, logits, n, c);
        return;
    }
    const float inv = (float)(1.0 / t); /* temperature scaling: softmax(logits / T) */
    for (int64_t i = 0; i < n * c; i++)
        probs[i] = logits[i] * inv;
    hlrk_softmax_rows(probs, probs, n, c);
}

hlr_status hlr_model_predict(hlr_model *m, const hlr_tensor *x, int32_t *classes, hlr_tensor *probs)
{
    const char *fn = "hlr_model_predict";
    if (!m || !x)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    hlr_status st = hlr__model_check_classifier(m, fn);
    if (st != HLR_OK)
        return st;
    int out_ndim;
    int64_t out_shape[HLR_MAX_DIMS];
    hlr_model_output_shape(m, &out_ndim, out_shape);
    int64_t n = hlr__check_batch(x, hlr__model_in_dtype(m), &m->in, -1, fn, "input");
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
    const float *out = hlr__model_infer(m, x->data, n);
    for (int64_t i = 0; i < n; i++)
        if (classes)
            classes[i] = (int32_t)hlrk_argmax(out + i * c, c);
    if (probs)
        hlr__model_probabilities(m, out, n, c, probs->data);
    return HLR_OK;
}

hlr_status hlr__model_logits(hlr_model *m, const hlr_dataset *d, int64_t batch, float *out, const char *fn)
{
    const int64_t c = m->out_size;
    hlr_status st = hlr__model_plan(m, batch);
    for (int64_t b = 0; b < d->n && st == HLR_OK; b += batch) {
        int64_t nb = d->n - b < batch ? d->n - b : batch;
        const float *x = d->x + b * d->sample_size;
        st = hlr_model_set_lengths(m, d->lengths ? d->lengths + b : NULL, nb);
        if (st == HLR_OK)
            st = hlr__model_check_pass(m, nb, x, fn);
        if (st == HLR_OK)
            memcpy(out + b * c, hlr__model_infer(m, x, nb), (size_t)(nb * c) * sizeof *out);
    }
    hlr_model_set_lengths(m, NULL, 0);
    return st;
}

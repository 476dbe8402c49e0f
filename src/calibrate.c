/*
 * calibrate.c -- calibrated confidence (Guo et al. 2017): ECE, MCE, NLL and
 * Brier score of a classifier's probabilities, and temperature scaling.
 *
 * probs (n, C), labels (n).  Confidence = max_c p_c, prediction its arg-max;
 * bin b of B holds confidences in ((b - 1)/B, b/B] (a confidence of 0 goes to
 * the first); ECE = sum_b n_b / n |acc_b - conf_b|, MCE = max_b over
 * non-empty bins.
 *
 * Temperature: with z the logits and beta = 1/T, the mean NLL is
 *   L(beta) = mean_i [ logsumexp(beta z_i) - beta z_i,y ],
 *   L'(beta) = mean_i [ E_p[z_i] - z_i,y ],   L''(beta) = mean_i Var_p[z_i] >= 0,
 * p = softmax(beta z_i): convex in beta, so Newton's method on beta, kept
 * inside a bracket [lo, hi] where L' changes sign, converges.
 */
#include "model.h"
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>

hlr_status hlr_calibration_metrics(const float *probs, const int32_t *labels, int64_t n, int classes, int bins,
                                   hlr_calibration *out, int64_t *bin_count, double *bin_confidence,
                                   double *bin_accuracy)
{
    const char *fn = "hlr_calibration_metrics";
    if (!probs || !labels || !out)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (n < 1 || classes < 2 || bins < 1 || bins > HLR_CALIBRATION_MAX_BINS)
        return hlr__fail(HLR_EINVAL, "%s: need n >= 1, classes >= 2 and bins in 1..%d (got %lld, %d, %d)", fn,
                         HLR_CALIBRATION_MAX_BINS, (long long)n, classes, bins);
    int64_t cnt[HLR_CALIBRATION_MAX_BINS] = {0};
    double conf[HLR_CALIBRATION_MAX_BINS] = {0}, hit[HLR_CALIBRATION_MAX_BINS] = {0};
    double nll = 0.0, brier = 0.0;
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + i * classes;
        if (labels[i] < 0 || labels[i] >= classes)
            return hlr__fail(HLR_EINVAL, "%s: label %d of sample %lld is outside [0, %d)", fn, labels[i],
                             (long long)i, classes);
        int best = 0;
        for (int c = 0; c < classes; c++) {
            if (!(p[c] >= 0.0f && p[c] <= 1.0f))
                return hlr__fail(HLR_EINVAL, "%s: probability %g (sample %lld, class %d) is outside [0, 1]", fn,
                                 (double)p[c], (long long)i, c);
            best = p[c] > p[best] ? c : best;
            double d = (double)p[c] - (c == labels[i]);
            brier += d * d;
        }
        double py = p[labels[i]] > FLT_MIN ? p[labels[i]] : FLT_MIN;
        nll -= log(py);
        int b = (int)ceil((double)p[best] * bins) - 1;
        b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
        cnt[b]++;
        conf[b] += p[best];
        hit[b] += best == labels[i];
        right += best == labels[i];
    }
    double ece = 0.0, mce = 0.0;
    for (int b = 0; b < bins; b++) {
        if (cnt[b] == 0)
            continue;
        double gap = fabs(hit[b] / (double)cnt[b] - conf[b] / (double)cnt[b]);
        ece += (double)cnt[b] / (double)n * gap;
        mce = gap > mce ? gap : mce;
    }
    *out = (hlr_calibration){.count = n, .bins = bins, .ece = ece, .mce = mce, .nll = nll / (double)n,
                             .brier = brier / (double)n, .accuracy = (double)right / (double)n};
    for (int b = 0; b < bins; b++) {
        if (bin_count)
            bin_count[b] = cnt[b];
        if (bin_confidence)
            bin_confidence[b] = cnt[b] ? conf[b] / (double)cnt[b] : 0.0;
        if (bin_accuracy)
            bin_accuracy[b] = cnt[b] ? hit[b] / (double)cnt[b] : 0.0;
    }
    return HLR_OK;
}

/* HLR_EUNSUPPORTED unless m's loss is cross-entropy (temperature scales a classifier's softmax). */
static hlr_status check_classifier_loss(const hlr_model *m, const char *fn)
{
    hlr_loss_kind k = m->loss;
    if (k != HLR_LOSS_CROSS_ENTROPY)
        return hlr__fail(HLR_EUNSUPPORTED, "%s: temperature scaling calibrates a classifier's softmax; this model's "
                         "loss is %s", fn, k == HLR_LOSS_CTC ? "CTC" : "mean squared error");
    return HLR_OK;
}

hlr_status hlr_model_set_temperature(hlr_model *m, double t)
{
    const char *fn = "hlr_model_set_temperature";
    if (!m)
        return hlr__fail(HLR_EINVAL, "%s: the model is NULL", fn);
    if (!(t >= 1e-3 && t <= 1e3))
        return hlr__fail(HLR_EINVAL, "%s: temperature %g is outside [0.001, 1000]", fn, t);
    hlr_status st = check_classifier_loss(m, fn);
    if (st != HLR_OK)
        return st;
    m->temperature = t;
    return HLR_OK;
}

/* The checks of the model-level functions; the logits of all of d in a new array (n x C). */
static float *logits_of(hlr_model *m, const hlr_dataset *d, int batch_size, const char *fn, hlr_status *st)
{
    *st = HLR_OK;
    if (!m || !d)
        *st = hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    else if (batch_size < 1)
        *st = hlr__fail(HLR_EINVAL, "%s: batch_size %d must be >= 1", fn, batch_size);
    else if (!m->built)
        *st = hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    else if (d->targets)
        *st = hlr__fail(HLR_EINVAL, "%s: a sequence data set has no class labels to calibrate against", fn);
    if (*st != HLR_OK || (*st = check_classifier_loss(m, fn)) != HLR_OK ||
        (*st = hlr__model_check_classifier(m, fn)) != HLR_OK)
        return NULL;
    const int64_t c = m->out_size;
    if (d->num_classes > c) {
        *st = hlr__fail(HLR_ESHAPE, "%s: the data set has %d classes, the model %lld", fn, d->num_classes,
                        (long long)c);
        return NULL;
    }
    float *z = hlr__alloc_or_fail((size_t)(d->n * c), sizeof *z, fn);
    if (!z) {
        *st = HLR_ENOMEM;
        return NULL;
    }
    int64_t batch = batch_size < d->n ? batch_size : d->n;
    if ((*st = hlr__model_logits(m, d, batch, z, fn)) != HLR_OK) {
        hlr__free(z);
        return NULL;
    }
    for (int64_t i = 0; i < d->n * c; i++)
        if (!isfinite(z[i])) {
            *st = hlr__fail(HLR_ENUMERIC, "%s: the model's output for sample %lld is not finite", fn,
                            (long long)(i / c));
            hlr__free(z);
            return NULL;
        }
    return z;
}

/* L'(beta) and L''(beta) of the header comment, over n rows of c logits. */
static void nll_derivatives(const float *z, const int32_t *y, int64_t n, int64_t c, double beta, double *d1,
                            double *d2)
{
    double g = 0.0, h = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * c;
        double mx = zi[0];
        for (int64_t k = 1; k < c; k++)
            mx = zi[k] > mx ? zi[k] : mx;
        double s = 0.0, e1 = 0.0, e2 = 0.0;
        for (int64_t k = 0; k < c; k++) {
            double w = exp(beta * (zi[k] - mx));
            s += w;
            e1 += w * zi[k];
            e2 += w * (double)zi[k] * zi[k];
        }
        e1 /= s;
        e2 /= s;
        g += e1 - zi[y[i]];
        h += e2 - e1 * e1;
    }
    *d1 = g / (double)n;
    *d2 = h / (double)n;
}

hlr_status hlr_model_fit_temperature(hlr_model *m, const hlr_dataset *val, int batch_size, double *t)
{
    const char *fn = "hlr_model_fit_temperature";
    hlr_status st;
    float *z = logits_of(m, val, batch_size, fn, &st);
    if (!z)
        return st;
    const int64_t n = val->n, c = m->out_size;
    /* Bracket the root of L'(beta): L' increases with beta (L'' >= 0). */
    double lo = 1e-3, hi = 1e3, beta = 1.0 / hlr__model_temperature(m), g, h;
    for (int it = 0; it < 200; it++) {
        nll_derivatives(z, val->y, n, c, beta, &g, &h);
        if (g > 0)
            hi = beta;
        else
            lo = beta;
        double next = h > 0 ? beta - g / h : 0.5 * (lo + hi);
        if (!(next > lo && next < hi)) /* outside the bracket: bisect instead */
            next = 0.5 * (lo + hi);
        if (fabs(next - beta) <= 1e-9 * beta || hi - lo <= 1e-9 * beta) {
            beta = next;
            break;
        }
        beta = next;
    }
    hlr__free(z);
    double temp = 1.0 / beta;
    temp = temp < 1e-3 ? 1e-3 : temp > 1e3 ? 1e3 : temp;
    m->temperature = temp;
    if (t)
        *t = temp;
    return HLR_OK;
}

hlr_status hlr_model_calibration(hlr_model *m, const hlr_dataset *d, int batch_size, int bins, hlr_calibration *out,
                                 int64_t *bin_count, double *bin_confidence, double *bin_accuracy)
{
    const char *fn = "hlr_model_calibration";
    if (!out)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (bins < 1 || bins > HLR_CALIBRATION_MAX_BINS)
        return hlr__fail(HLR_EINVAL, "%s: bins %d outside 1..%d", fn, bins, HLR_CALIBRATION_MAX_BINS);
    hlr_status st;
    float *z = logits_of(m, d, batch_size, fn, &st);
    if (!z)
        return st;
    const int64_t c = m->out_size;
    hlr__model_probabilities(m, z, d->n, c, z); /* the probabilities hlr_model_predict gives */
    st = hlr_calibration_metrics(z, d->y, d->n, (int)c, bins, out, bin_count, bin_confidence, bin_accuracy);
    hlr__free(z);
    return st;
}

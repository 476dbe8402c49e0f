/*
 * loss.c -- the public loss functions (the model's training step uses the
 * same kernels).
 */
#include "internal.h"
#include "kernels/kernels.h"

#include <string.h>

static int same_shape(const hlr_tensor *a, const hlr_tensor *b)
{
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
}

hlr_status hlr_cross_entropy(const hlr_tensor *logits, const hlr_tensor *labels, float label_smoothing,
                             float *loss, hlr_tensor *grad)
{
    const char *fn = "hlr_cross_entropy";
    hlr_status st;
    if (!loss)
        return hlr__fail(HLR_EINVAL, "%s: loss is NULL", fn);
    if ((st = hlr__check_tensor(logits, HLR_F32, "hlr_cross_entropy: logits")) != HLR_OK ||
        (st = hlr__check_tensor(labels, HLR_I32, "hlr_cross_entropy: labels")) != HLR_OK)
        return st;
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
        return hlr__fail(HLR_EINVAL, "%s: label smoothing %g outside [0, 1)", fn, (double)label_smoothing);
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return hlr__fail(HLR_ESHAPE, "%s: expected logits (N, C) and labels (N)", fn);
    if (grad && ((st = hlr__check_tensor(grad, HLR_F32, "hlr_cross_entropy: grad")) != HLR_OK))
        return st;
    if (grad && !same_shape(grad, logits))
        return hlr__fail(HLR_ESHAPE, "%s: grad must have the logits' shape", fn);
    int64_t n = logits->shape[0], c = logits->shape[1];
    const int32_t *lab = labels->data;
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= c)
            return hlr__fail(HLR_EINVAL, "%s: label %d at %lld outside [0, %lld)", fn, lab[i], (long long)i,
                             (long long)c);
    *loss = (float)hlrk_cross_entropy(logits->data, lab, n, c, label_smoothing, grad ? grad->data : NULL);
    return HLR_OK;
}

hlr_status hlr_mse(const hlr_tensor *pred, const hlr_tensor *target, float *loss, hlr_tensor *grad)
{
    const char *fn = "hlr_mse";
    hlr_status st;
    if (!loss)
        return hlr__fail(HLR_EINVAL, "%s: loss is NULL", fn);
    if ((st = hlr__check_tensor(pred, HLR_F32, "hlr_mse: pred")) != HLR_OK ||
        (st = hlr__check_tensor(target, HLR_F32, "hlr_mse: target")) != HLR_OK)
        return st;
    if (grad && (st = hlr__check_tensor(grad, HLR_F32, "hlr_mse: grad")) != HLR_OK)
        return st;
    if (!same_shape(pred, target) || (grad && !same_shape(pred, grad)))
        return hlr__fail(HLR_ESHAPE, "%s: pred, target and grad must have one shape", fn);
    *loss = (float)hlrk_mse(pred->data, target->data, pred->numel, grad ? grad->data : NULL);
    return HLR_OK;
}

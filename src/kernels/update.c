/*
 * update.c -- the optimizers' per-element parameter updates.
 */
#include "kernels.h"

#include <math.h>

HLR_KERNEL void hlrk_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2,
                           float step_size, float bc2_sqrt, float eps, float l2, float decay_mul)
{
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
    for (int64_t i = 0; i < n; i++) {
        float w = p[i] * decay_mul;
        float d = g[i] + l2 * w;
        float mi = b1 * m[i] + a1 * d;
        float vi = b2 * v[i] + a2 * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}

HLR_KERNEL void hlrk_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float wd, float mu, int nesterov,
                          int first)
{
    if (!buf) {
        for (int64_t i = 0; i < n; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        float b = first ? d : mu * buf[i] + d;
        buf[i] = b;
        p[i] -= lr * (nesterov ? d + mu * b : b);
    }
}

HLR_KERNEL void hlrk_scale(float *x, int64_t n, float a)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

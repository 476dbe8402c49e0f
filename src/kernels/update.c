/*
 * update.c -- the optimizers' per-element parameter updates.
 *
 * The moments and gradients are kept clear of subnormal numbers: on Intel CPUs every subnormal operand or
 * result of a multiply or add costs a microcode assist of a hundred cycles or more, and a fit whose
 * gradients fade (a converging model, units that stopped learning) fills the moments with them as they
 * decay by beta at each step.  The mlp's training on a repeated batch spent 46 % of its time in Adam and
 * ran at 50,638 img/s, against 91,156 with the flush below (a loop of hlr_model_train_batch, AVX2 build,
 * OpenBLAS's Haswell kernel, 2 threads).  Adam: a gradient below min(2^-55, eps 2^-29) counts as zero
 * ((1 - beta2) d^2 stays normal above 2^-55), a first moment below min(2^-100, eps 2^-32) becomes zero
 * (beta m stays normal above 2^-100), and the second moment becomes zero below hlrk_adam_v_tiny, where
 * sqrt(v) / bc2_sqrt + eps rounds to eps anyway.  Each of the first two changes a step by less than
 * step_size 2^-32, which any weight larger in magnitude than step_size / 256 rounds away; a weight that
 * small (a zero bias whose gradient stays tiny) may stay where torch's would creep.  SGD: a gradient below
 * 2^-55 counts as zero and a momentum buffer below 2^-100 becomes zero, less than lr 2^-55 a step.  A tiny
 * eps lowers Adam's thresholds into the subnormal range: exact, and slow again.
 */
#include "kernels.h"
#include "exp_approx.h" /* select_bits */

#include <math.h>

#define TINY_GRAD 0x1p-55f
#define TINY_MOMENT 0x1p-100f

/* x, or 0 where |x| < tiny: branch-free, so the loops vectorise; a subnormal x is compared, never
 * multiplied or added. */
static inline float flush(float x, float tiny)
{
    return select_bits(fabsf(x) < tiny, 0.0f, x);
}

HLR_KERNEL void hlrk_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2,
                           float step_size, float bc2_sqrt, float eps, float l2, float decay_mul)
{
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
    const float g_tiny = fminf(TINY_GRAD, eps * 0x1p-29f), m_tiny = fminf(TINY_MOMENT, eps * 0x1p-32f);
    const float v_tiny = hlrk_adam_v_tiny(eps, bc2_sqrt);
    for (int64_t i = 0; i < n; i++) {
        float w = p[i] * decay_mul;
        float d = flush(g[i], g_tiny) + l2 * w;
        float mi = flush(b1 * m[i] + a1 * d, m_tiny);
        float vi = flush(b2 * v[i] + a2 * d * d, v_tiny);
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
            p[i] -= lr * (flush(g[i], TINY_GRAD) + wd * p[i]);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float d = flush(g[i], TINY_GRAD) + wd * p[i];
        float b = flush(first ? d : mu * buf[i] + d, TINY_MOMENT);
        buf[i] = b;
        p[i] -= lr * (nesterov ? d + mu * b : b);
    }
}

HLR_KERNEL void hlrk_scale(float *x, int64_t n, float a)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

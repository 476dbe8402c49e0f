/*
 * eltwise.c -- element-wise loops: activations, their derivatives, row
 * broadcasts and column sums.  Plain loops the compiler vectorises.
 */
#include "../internal.h"
#include "exp_approx.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

void hlrk_broadcast_rows(float *y, const float *b, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        memcpy(y + r * cols, b, (size_t)cols * sizeof *y);
}

HLR_KERNEL void hlrk_sum_rows(float *out, const float *x, int64_t rows, int64_t cols)
{
    memset(out, 0, (size_t)cols * sizeof *out);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        for (int64_t c = 0; c < cols; c++)
            out[c] += xr[c];
    }
}

HLR_KERNEL void hlrk_copy_add(float *y, const float *x, float b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] + b;
}

HLR_KERNEL void hlrk_copy_add_relu(float *y, const float *x, float b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] + b;
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

HLR_KERNEL void hlrk_add_bias_rows(float *y, const float *b, int64_t rows, int64_t cols, int relu)
{
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * cols;
        if (relu)
            for (int64_t c = 0; c < cols; c++) {
                float v = b ? yr[c] + b[c] : yr[c];
                yr[c] = v < 0.0f ? 0.0f : v;
            }
        else if (b)
            for (int64_t c = 0; c < cols; c++)
                yr[c] += b[c];
    }
}

/* Eight running sums in a fixed order, then combined in a fixed order: the
 * same bits on every machine, and a loop the compiler can vectorise. */
HLR_KERNEL float hlrk_sum(const float *x, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    for (; i < n; i++)
        acc[i & 7] += x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

HLR_KERNEL void hlrk_mean_sqdev(const float *x, int64_t n, double *mean, double *sqdev)
{
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    for (; i < n; i++)
        acc[i & 7] += x[i];
    const double mu = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) / (double)n;
    for (int j = 0; j < 8; j++)
        acc[j] = 0.0;
    for (i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += (x[i + j] - mu) * (x[i + j] - mu);
    for (; i < n; i++)
        acc[i & 7] += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *sqdev = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

HLR_KERNEL void hlrk_relu(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays NaN, as in torch */
}

HLR_KERNEL void hlrk_relu_backward(float *dx, const float *y, const float *dy, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

HLR_KERNEL void hlrk_leaky_relu(float *y, const float *x, int64_t n, float slope)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

HLR_KERNEL void hlrk_leaky_relu_backward(float *dx, const float *x, const float *dy, int64_t n, float slope)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

HLR_KERNEL void hlrk_sigmoid(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

HLR_KERNEL void hlrk_sigmoid_backward(float *dx, const float *y, const float *dy, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

HLR_KERNEL void hlrk_tanh(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

HLR_KERNEL void hlrk_tanh_backward(float *dx, const float *y, const float *dy, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* GELU(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;
 * GELU'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi). */
HLR_KERNEL void hlrk_gelu(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
}

HLR_KERNEL void hlrk_gelu_backward(float *dx, const float *x, const float *dy, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * exp_approx(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
}

/* ---- element-wise loops over the pool ---- */

#define ELTWISE_GRAIN 16384 /* elements: a part costs well over the hand-off */

typedef struct unary_job {
    void (*k)(float *, const float *, int64_t);
    float *y;
    const float *x;
} unary_job;

static void unary_part(void *ctx, int64_t b, int64_t e)
{
    const unary_job *j = ctx;
    j->k(j->y + b, j->x + b, e - b);
}

void hlrk_par_unary(void (*k)(float *, const float *, int64_t), float *y, const float *x, int64_t n)
{
    unary_job j = {k, y, x};
    hlr__parallel_for(n, ELTWISE_GRAIN, unary_part, &j);
}

typedef struct binary_job {
    void (*k)(float *, const float *, const float *, int64_t);
    float *dx;
    const float *a, *b;
} binary_job;

static void binary_part(void *ctx, int64_t b, int64_t e)
{
    const binary_job *j = ctx;
    j->k(j->dx + b, j->a + b, j->b + b, e - b);
}

void hlrk_par_binary(void (*k)(float *, const float *, const float *, int64_t), float *dx, const float *a,
                     const float *b, int64_t n)
{
    binary_job j = {k, dx, a, b};
    hlr__parallel_for(n, ELTWISE_GRAIN, binary_part, &j);
}

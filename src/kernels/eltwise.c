/*
 * eltwise.c -- element-wise loops: activations, their derivatives, row
 * broadcasts and column sums.  Plain loops the compiler vectorises.
 */
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
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

HLR_KERNEL void hlrk_gelu_backward(float *dx, const float *x, const float *dy, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
}

/*
 * softmax.c -- row softmax, its backward, the fused softmax cross-entropy,
 * arg-max and the mean squared error.
 */
#include "kernels.h"
#include "exp_approx.h"

#include <math.h>

HLR_KERNEL void hlrk_softmax_rows(float *y, const float *x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float m8[8]; /* eight running maxima, vectorised (of numbers, a max in any order) */
        for (int j = 0; j < 8; j++)
            m8[j] = xr[0];
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8)
            for (int j = 0; j < 8; j++)
                m8[j] = xr[c + j] > m8[j] ? xr[c + j] : m8[j];
        for (; c < cols; c++)
            m8[0] = xr[c] > m8[0] ? xr[c] : m8[0];
        float mx = m8[0];
        for (int j = 1; j < 8; j++)
            mx = m8[j] > mx ? m8[j] : mx;
        for (c = 0; c < cols; c++) { /* vectorised: exp_approx, not a call to expf */
            float d = xr[c] - mx;
            yr[c] = select_bits(d < -87.0f, 0.0f, exp_approx(d));
        }
        const float sum = hlrk_sum(yr, cols);
        float inv = 1.0f / sum;
        for (c = 0; c < cols; c++)
            yr[c] *= inv;
    }
}

HLR_KERNEL void hlrk_exp_shifted_rows(float *q, double *sums, const float *x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *qr = q + r * cols, mx = xr[0];
        for (int64_t c = 1; c < cols; c++)
            mx = xr[c] > mx ? xr[c] : mx;
        for (int64_t c = 0; c < cols; c++) {
            float d = xr[c] - mx;
            qr[c] = select_bits(d < -87.0f, 0.0f, exp_approx(d));
        }
        double sum = 0.0;
        for (int64_t c = 0; c < cols; c++)
            sum += qr[c];
        sums[r] = sum;
    }
}

void hlrk_softmax_rows_backward(float *dx, const float *y, const float *dy, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        float dot = 0.0f;
        for (int64_t c = 0; c < cols; c++)
            dot += dyr[c] * yr[c];
        for (int64_t c = 0; c < cols; c++)
            dxr[c] = yr[c] * (dyr[c] - dot);
    }
}

/*
 * Per row with target t = (1-s) onehot(label) + s/C and log-softmax
 * l_c = x_c - max - log(sum exp(x - max)):
 *   loss = -sum_c t_c l_c,   dloss/dx_c = softmax_c - t_c   (then / rows).
 */
/* x - mx for x <= mx: in float, or in double where float overflows. */
static inline double shifted(float x, float mx)
{
    float d = x - mx;
    return isinf(d) ? (double)x - (double)mx : (double)d;
}

/* A row's maximum, and the log of sum exp(x - max) (so log-softmax(x_c) = shifted(x_c, max) - lse). */
static inline double row_lse(const float *xr, int64_t cols, float *max)
{
    float mx = xr[0];
    for (int64_t c = 1; c < cols; c++)
        mx = xr[c] > mx ? xr[c] : mx;
    double sum = 0.0;
    for (int64_t c = 0; c < cols; c++)
        sum += exp(shifted(xr[c], mx));
    *max = mx;
    return log(sum);
}

double hlrk_cross_entropy(const float *logits, const int32_t *labels, int64_t rows, int64_t cols,
                           float smoothing, float *grad)
{
    double total = 0.0;
    const double off = (double)smoothing / (double)cols;
    const double on = 1.0 - (double)smoothing + off;
    const float inv_rows = 1.0f / (float)rows;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = logits + r * cols;
        /* x - max in float, as torch's log_softmax; only where that
         * overflows (two finite floats can differ by more than FLT_MAX:
         * 3e38 - -3e38) is it taken in double instead. */
        float mx;
        const double lse = row_lse(xr, cols, &mx);
        double loss = 0.0;
        if (smoothing == 0.0f) {
            loss = -(shifted(xr[labels[r]], mx) - lse);
        } else {
            for (int64_t c = 0; c < cols; c++) {
                double t = c == labels[r] ? on : off;
                loss -= t * (shifted(xr[c], mx) - lse);
            }
        }
        total += loss;
        if (grad) {
            float *gr = grad + r * cols;
            for (int64_t c = 0; c < cols; c++) {
                double p = exp(shifted(xr[c], mx) - lse);
                double t = c == labels[r] ? on : off;
                gr[c] = (float)(p - t) * inv_rows;
            }
        }
    }
    return total / (double)rows;
}

double hlrk_cross_entropy_weighted(const float *logits, const int32_t *labels, int64_t rows, int64_t cols,
                                   const float *w, float *grad)
{
    double wsum = 0.0, total = 0.0;
    for (int64_t r = 0; r < rows; r++)
        wsum += w[labels[r]];
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = logits + r * cols;
        float mx;
        const double lse = row_lse(xr, cols, &mx), wr = w[labels[r]];
        if (wr != 0.0)
            total += wr * (lse - shifted(xr[labels[r]], mx));
        if (grad) {
            float *gr = grad + r * cols;
            double scale = wsum > 0.0 ? wr / wsum : 0.0;
            for (int64_t c = 0; c < cols; c++)
                gr[c] = (float)((exp(shifted(xr[c], mx) - lse) - (c == labels[r])) * scale);
        }
    }
    return wsum > 0.0 ? total / wsum : 0.0;
}

int64_t hlrk_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

double hlrk_mse(const float *p, const float *t, int64_t k, float *grad)
{
    double sum = 0.0;
    for (int64_t i = 0; i < k; i++) {
        float d = p[i] - t[i];
        sum += (double)d * d;
        if (grad)
            grad[i] = 2.0f * d / (float)k;
    }
    return sum / (double)k;
}

/*
 * kernels.h -- the library's heavy loops.  Layers express their arithmetic
 * through these, so a faster kernel speeds up every layer that uses it.
 * All matrices are row-major float32.
 */
#ifndef HLR_KERNELS_H
#define HLR_KERNELS_H

#include <stdint.h>

/*
 * HLR_KERNEL compiles an element-wise loop for several instruction sets
 * (AVX-512, AVX2, the x86-64 baseline) and picks one at load time, so the
 * library runs everywhere and uses the wide registers where they exist.
 * Element-wise loops give the same bits in every version: there is no
 * reassociation and no contraction into FMA (-std=c11 sets -ffp-contract=off).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) && \
    !defined(__SANITIZE_ADDRESS__)
#define HLR_KERNEL __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define HLR_KERNEL
#endif

/* C (M, N) = alpha * op(A) op(B) + beta * C, op(A) (M, K), op(B) (K, N);
 * trans_a / trans_b select the transpose.  Goes through cblas_sgemm. */
void hlrk_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* y (rows, cols): each row = b. */
void hlrk_broadcast_rows(float *y, const float *b, int64_t rows, int64_t cols);
/* out (cols) = sum over rows of x (rows, cols). */
void hlrk_sum_rows(float *out, const float *x, int64_t rows, int64_t cols);

/* Element-wise forward (y from x) and backward (dx from x, y, dy). */
void hlrk_relu(float *y, const float *x, int64_t n);
void hlrk_relu_backward(float *dx, const float *y, const float *dy, int64_t n);
void hlrk_leaky_relu(float *y, const float *x, int64_t n, float slope);
void hlrk_leaky_relu_backward(float *dx, const float *x, const float *dy, int64_t n, float slope);
void hlrk_sigmoid(float *y, const float *x, int64_t n);
void hlrk_sigmoid_backward(float *dx, const float *y, const float *dy, int64_t n);
void hlrk_tanh(float *y, const float *x, int64_t n);
void hlrk_tanh_backward(float *dx, const float *y, const float *dy, int64_t n);
void hlrk_gelu(float *y, const float *x, int64_t n);
void hlrk_gelu_backward(float *dx, const float *x, const float *dy, int64_t n);

/* Softmax over each row of x (rows, cols), stable for any finite input. */
void hlrk_softmax_rows(float *y, const float *x, int64_t rows, int64_t cols);
/* dx = y * (dy - sum(dy * y)) per row. */
void hlrk_softmax_rows_backward(float *dx, const float *y, const float *dy, int64_t rows, int64_t cols);

/* Softmax cross-entropy of logits (rows, cols) against labels; returns the
 * mean loss; grad (may be NULL) = (softmax - target) / rows.  Labels must
 * already be checked to lie in [0, cols). */
double hlrk_cross_entropy(const float *logits, const int32_t *labels, int64_t rows, int64_t cols,
                           float smoothing, float *grad);

/* One torch.optim.Adam/AdamW step over n elements, in torch's order:
 * p *= decay_mul (AdamW's decoupled decay; 1 for Adam); d = g + l2 * p;
 * m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
void hlrk_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float step_size,
                float bc2_sqrt, float eps, float l2, float decay_mul);
/* One torch.optim.SGD step: d = g + wd p; with momentum buf = mu buf + d
 * (buf = d when first), d = nesterov ? d + mu buf : buf; p -= lr d.
 * buf NULL means no momentum. */
void hlrk_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float wd, float mu, int nesterov,
               int first);
/* x *= a. */
void hlrk_scale(float *x, int64_t n, float a);

/* Index of the largest element of x[0..n) (first on ties). */
int64_t hlrk_argmax(const float *x, int64_t n);

#endif

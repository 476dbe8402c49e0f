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
    !defined(__SANITIZE_ADDRESS__) && defined(HLR_ISA_AVX2)
/* `make bench ISA=avx2`: a build capped at AVX2 (x86-64-v3), to measure that path on an AVX-512 machine. */
#define HLR_KERNEL __attribute__((target_clones("default", "avx2")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) && \
    !defined(__SANITIZE_ADDRESS__)
#define HLR_KERNEL __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define HLR_KERNEL
#endif

/* A product kernel (gemm_rows.c, wino_products.c, conv_direct.c): each multiply-add fused where the CPU
 * can.  A product's bits already depend on the CPU (OpenBLAS's kernels sum in different orders), so the
 * AVX2 path runs a clone built for FMA, whose sums are lane by lane those of the AVX-512 clone; a CPU
 * with neither (and the sanitizers' and clang's builds) multiplies and adds apart, and callers that
 * promise the same bits leave such CPUs to sgemm.  The AVX-512 clone is built for x86-64-v4, not
 * avx512f alone, which has no fused multiply-add on 8-float vectors: an 8-float loop in it multiplied
 * and added apart (conv_direct.c's, and wino_products.c's last 8 columns, which a test caught). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) &&                      \
    !defined(__SANITIZE_ADDRESS__) && defined(HLR_ISA_AVX2)
#define HLR_FMA_KERNEL __attribute__((target_clones("default", "fma"), optimize("fp-contract=fast")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) &&                    \
    !defined(__SANITIZE_ADDRESS__)
#define HLR_FMA_KERNEL __attribute__((target_clones("default", "fma", "arch=x86-64-v4"), optimize("fp-contract=fast")))
#else
#define HLR_FMA_KERNEL
#endif

/* 16 floats (one AVX-512 register, two AVX2 ones) and 16 int32 masks,
 * loadable from any float and allowed to alias it: for kernels written
 * with GCC's vector extension.  Check such a kernel's clones with objdump:
 * a compare of two shuffles of the same registers became 16 scalar
 * compares in a target_clones AVX-512 clone (pool.c). */
typedef float hlrk_v16 __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t hlrk_v16i __attribute__((vector_size(64), aligned(4), may_alias));
/* 8 floats and masks: one AVX2 register.  In a clone without AVX-512, GCC keeps a 16-float vector in
 * memory between operations (a compare and select on one took several times as long as the same
 * arithmetic on two 8-float vectors), so a kernel whose AVX2 clone runs such operations keeps an
 * 8-float version of its loop for it and picks one with hlrk_v16_fits(). */
typedef float hlrk_v8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t hlrk_v8i __attribute__((vector_size(32), aligned(4), may_alias));
/* A 2 x 2 pooling window's maximum, scanned in row-major order (the first largest value kept; a
 * compare with a NaN is false, so the scan keeps a value before it): hlrk_maxpool2x2's and the fused
 * poolings' (pool.c, winograd.c), so that they give the same bits. */
static inline float hlrk_window_max(float c0, float c1, float c2, float c3)
{
    float m = c1 > c0 ? c1 : c0;
    m = c2 > m ? c2 : m;
    return c3 > m ? c3 : m;
}
/* Whether this CPU runs the kernels' AVX-512 clones (never in the AVX2-capped build). */
static inline int hlrk_avx512_runs(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(HLR_ISA_AVX2)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}
/* The tests set this to take the paths a CPU without FMA takes (sgemm for the products that the FMA
 * kernels would do: hlrk_fma_runs() and hlrk_gemm_rows_max() then say 0), on CPUs that have it. */
extern int hlrk_no_fma_for_tests;
/* Whether this CPU runs HLR_FMA_KERNEL's fused clones (AVX2 with FMA, or AVX-512). */
static inline int hlrk_fma_runs(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (hlrk_no_fma_for_tests)
        return 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
/* Which loop such a kernel runs: the 16-float one where the AVX-512 clones run.  The tests set
 * hlrk_width_for_tests to 8 or 16 to run either version in whichever clone runs, and compare their
 * bits (0: the CPU decides). */
extern int hlrk_width_for_tests;
static inline int hlrk_v16_fits(void)
{
    if (hlrk_width_for_tests)
        return hlrk_width_for_tests == 16;
    return hlrk_avx512_runs();
}

/* C (M, N) = alpha * op(A) op(B) + beta * C, op(A) (M, K), op(B) (K, N);
 * trans_a / trans_b select the transpose.  Goes through cblas_sgemm. */
void hlrk_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* hlrk_gemm on the calling thread only: for work already split over the
 * pool (one product per sample, say). */
void hlrk_gemm1(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* C (M, N) = A (M, K) B^T (add: C += A B^T, each dot product added to C) for a few rows (M <=
 * HLRK_ROWS_MAX), B (N, K) read in place, without the copy into a packed layout that sgemm makes of B on
 * every call (gemm_rows.c); the same bits whatever splits the columns.  hlrk_gemm_rows_split is the
 * product of any number of rows: up to hlrk_gemm_rows_max() (AVX-512: 16, AVX2 with FMA: 8, else 0) the
 * kernel, its columns shared among the pool's threads, and hlrk_gemm (sgemm) for more. */
#define HLRK_ROWS_MAX 16
int hlrk_gemm_rows_max(void);
/* The fewest rows a dense layer gives the kernel rather than sgemv: 1 on AVX-512, where one row split
 * between the threads (from a quarter of the split's usual multiply-adds) took the mlp at batch 1 from
 * 82,524-85,570 to 132,986-139,706 img/s; 2 elsewhere (on the AVX2 path the cnn's 3136-wide row ran
 * 4-6 % slower in the kernel than in sgemv). */
int hlrk_gemm_rows_min(void);
void hlrk_gemm_rows(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                    int64_t ldc, int add);
/* Cutting C's rows (row-major, neither operand transposed) at multiples of this many (a multiple of 4)
 * keeps each row's bits in OpenBLAS's sgemm for the shapes it was measured on (once, gemm.c: 4 on its
 * SkylakeX kernel, 12 on Haswell and Zen); not for every shape. */
int hlrk_gemm_row_align(void);
/* Count a product of M x N x K done outside this file (hlrk_gemm_rows called directly) in the benchmarks'
 * tally of GEMM operations. */
void hlrk_gemm_count(int64_t M, int64_t N, int64_t K);
void hlrk_gemm_rows_split(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                          float *C, int64_t ldc);

/* Y (M, N) = X (M, K) W^T (with add, Y += X W^T), then the bias (or NULL) added and, with relu, the ReLU,
 * for a layer's W (N, K) packed by hlrk_pack_weights into hlrk_packed_floats(N, K) floats P
 * (gemm_packed.c): each element one chain of fused multiply-adds over k in order (from zero, or from Y's
 * value with add), so its bits depend on neither the blocking, the split of rows or columns, nor the
 * other rows.  For CPUs where hlrk_fma_runs(); others keep sgemm.
 * hlrk_gemm_packed runs on the calling thread; hlrk_gemm_packed_split shares rows (or, for few rows,
 * panels of columns) among the pool's threads. */
#define HLRK_PACK_PANEL 16
#define HLRK_PACK_KC 512
int64_t hlrk_packed_floats(int64_t N, int64_t K);
void hlrk_pack_weights(float *P, const float *W, int64_t N, int64_t K);
void hlrk_gemm_packed(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *P, float *Y,
                      int64_t ldy, const float *bias, int relu, int add);
void hlrk_gemm_packed_split(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *P, float *Y,
                            int64_t ldy, const float *bias, int relu, int add);

/* The geometry of a 2-D convolution over one group's input channels. */
typedef struct hlrk_conv_geom {
    int64_t C, H, W;    /* input channels (of one group), height, width */
    int64_t C_stride;   /* channels per sample in the tensor (C times the groups) */
    int64_t kh, kw;     /* kernel */
    int64_t stride, pad, dil;
    int64_t Ho, Wo;     /* output height, width */
} hlrk_conv_geom;

/* x (nb, C, H, W) -> cols (C kh kw, nb Ho Wo); see im2col.c for the layout. */
void hlrk_im2col(float *cols, const float *x, const hlrk_conv_geom *g, int64_t nb);
/* The adjoint: adds cols folded back into dx (nb, C, H, W); zero dx first. */
void hlrk_col2im(float *dx, const float *cols, const hlrk_conv_geom *g, int64_t nb);

/* One sample's convolution computed directly (conv_direct.c), for stride 1,
 * dilation 1, one group: y (cout, Ho, Wo) from x (C, H, W) and w (cout, C,
 * kh, kw), C kh kw <= HLRK_DIRECT_MAX_TAPS, plus bias (or NULL), then ReLU when relu != 0; with
 * split_rows, each plane's even rows, then its odd rows (for hlrk_maxpool2x2_win; Ho even).
 * scratch holds hlrk_conv_direct_scratch(g) floats. */
#define HLRK_DIRECT_MAX_TAPS 32 /* C kh kw at most */
int64_t hlrk_conv_direct_scratch(const hlrk_conv_geom *g);
void hlrk_conv_direct(float *y, const float *x, const float *w, const float *bias, int64_t cout, int relu,
                      int split_rows, const hlrk_conv_geom *g, float *scratch);
/* Winograd F(2x2, 3x3) for 3x3 convolutions with stride 1, dilation 1, one
 * group (winograd.c, which describes the layouts): U, dU (16, cout, cin);
 * V (16, C, ldv) and M (16, cout, ldm) hold one sample in the columns
 * [0, hlrk_wino_tiles(g)) from the pointer given; `scratch` holds
 * hlrk_wino_scratch(g) floats.  The caller multiplies M[xi] = U[xi] V[xi]
 * for each of the HLRK_WINO_POINTS (16) xi, the points of a 4x4 patch. */
#define HLRK_WINO_POINTS 16
int64_t hlrk_wino_tiles(const hlrk_conv_geom *g);
int64_t hlrk_wino_scratch(const hlrk_conv_geom *g);
/* The products for T <= HLRK_WINO_SMALL_T columns (a block of samples' tiles, conv2d.c) without sgemm
 * (wino_products.c), where hlrk_wino_small(T) says (not on a CPU without FMA): M[xi] (cn, T) = U[xi]
 * (cn, ci) V[xi] (ci, T) for the 16 xi, from U transposed, Ut (16, ci, ldu): point xi's (k, row r) at
 * Ut[(xi ci + k) ldu + r] (Ut points at M's first row); V's points ci ldv apart and M's cn ldm apart;
 * ldv, ldm >= hlrk_wino_small_ld(T), whose columns past T are computed too (V's read, M's written).
 * Each row's bits do not depend on cn or on the other rows.  hlrk_wino_transpose makes Ut from U. */
#define HLRK_WINO_SMALL_T 400
int hlrk_wino_small(int64_t T);
static inline int64_t hlrk_wino_small_ld(int64_t T) { return (T + 7) / 8 * 8; }
void hlrk_wino_products(float *M, int64_t ldm, const float *Ut, int64_t ldu, const float *V, int64_t ldv, int64_t cn,
                        int64_t ci, int64_t T);
void hlrk_wino_transpose(float *Ut, const float *U, int64_t cout, int64_t cin);
/* U from w (cout, cin, 3, 3), and its adjoint: dw from dU (written, not added). */
void hlrk_wino_filter(float *U, const float *w, int64_t cout, int64_t cin);
void hlrk_wino_filter_backward(float *dw, const float *dU, int64_t cout, int64_t cin);
/* V from one sample x (C, H, W), and its adjoint: dx (written) from dV. */
void hlrk_wino_input(float *V, int64_t ldv, const float *x, const hlrk_conv_geom *g, float *scratch);
void hlrk_wino_input_backward(float *dx, const float *dV, int64_t ldv, const hlrk_conv_geom *g, float *scratch);
/* One sample's y (cout, Ho, Wo) from M, plus bias (or NULL), then ReLU when
 * relu != 0, in split rows (as hlrk_conv_direct) when split_rows != 0; and
 * the adjoint without either: dM from dy (cout, Ho, Wo). */
void hlrk_wino_output(float *y, const float *M, int64_t ldm, int64_t cout, const float *bias, int relu,
                      int split_rows, const hlrk_conv_geom *g, float *scratch);
void hlrk_wino_output_backward(float *dM, int64_t ldm, const float *dy, int64_t cout, const hlrk_conv_geom *g,
                               float *scratch);
/* The same output (Ho and Wo even) max pooled 2 x 2 as hlrk_maxpool2x2 would (a window's last NaN, if
 * any, else its first largest value), into y (cout, Ho / 2, Wo / 2): each tile is a window. */
void hlrk_wino_output_pooled(float *y, const float *M, int64_t ldm, int64_t cout, const float *bias, int relu,
                             const hlrk_conv_geom *g);
/* y = max(x + b, 0) (a NaN stays NaN), i.e. hlrk_relu of hlrk_copy_add. */
void hlrk_copy_add_relu(float *y, const float *x, float b, int64_t n);
/* y (rows, cols) += b per row, then (relu != 0) max(y, 0). */
void hlrk_add_bias_rows(float *y, const float *b, int64_t rows, int64_t cols, int relu);

/* 2x2, stride-2 max pooling of x (planes, H, W) into y (planes, H/2, W/2).
 * See pool.c. */
void hlrk_maxpool2x2(float *y, const float *x, int64_t planes, int64_t H, int64_t W);
/* Its adjoint, from the forward's x and y: writes every element of dx
 * (planes, H, W). */
void hlrk_maxpool2x2_backward(float *dx, const float *x, const float *y, const float *dy, int64_t planes, int64_t H,
                              int64_t W);
/* hlrk_maxpool2x2 for even H and W, also writing which element of each window
 * won into win (planes, H/2, W/2): 0..3 in row-major order, unless win is
 * NULL (inference no backward follows).  Each plane of x holds its even rows, then its odd rows
 * ("split rows", see pool.c). */
void hlrk_maxpool2x2_win(float *y, uint8_t *win, const float *x, int64_t planes, int64_t H, int64_t W);
/* The adjoint of a ReLU then that pooling, from the pooled y and the
 * winners: dx (planes, H, W), all written, is dy at each window's winner
 * where y > 0, 0 elsewhere.  dx must have room for HLRK_POOL_SLACK floats past its end
 * (its last 16 windows are written as whole vectors). */
#define HLRK_POOL_SLACK 32
void hlrk_maxpool2x2_relu_backward(float *dx, const float *y, const uint8_t *win, const float *dy,
                                   int64_t planes, int64_t H, int64_t W);

/* Batch normalisation (batchnorm.c), over `planes` planes of S floats,
 * `stride` floats apart: sum x, and sum (x - mean)^2. */
double hlrk_bn_sum(const float *x, int64_t planes, int64_t stride, int64_t S);
double hlrk_bn_sqdev(const float *x, int64_t planes, int64_t stride, int64_t S, float mean);
/* y = x a + b over S floats, then max(y, 0) when relu != 0 (a NaN stays NaN). */
void hlrk_bn_apply(float *y, const float *x, int64_t S, float a, float b, int relu);
/* The same with the ReLU, for a plane of H rows of W, written in split rows
 * (its even rows, then its odd rows) for hlrk_maxpool2x2_win. */
void hlrk_bn_apply_split(float *y, const float *x, int64_t H, int64_t W, float a, float b);
/* With g = dy, or dy masked by y > 0 where y is not NULL (a fused ReLU):
 * *sg = sum g and *sgx = sum g (x - mean), over the planes. */
void hlrk_bn_grad_sums(const float *dy, const float *y, const float *x, int64_t planes, int64_t stride, int64_t S,
                       float mean, double *sg, double *sgx);
/* dx = a g + (b (x - mean) + c) over S floats, g as in hlrk_bn_grad_sums. */
void hlrk_bn_dx(float *dx, const float *dy, const float *y, const float *x, int64_t S, float mean, float a, float b,
                float c);

/* y (rows, cols): each row = b. */
void hlrk_broadcast_rows(float *y, const float *b, int64_t rows, int64_t cols);
/* out (cols) = sum over rows of x (rows, cols). */
void hlrk_sum_rows(float *out, const float *x, int64_t rows, int64_t cols);

/* y[i] = x[i] + b. */
void hlrk_copy_add(float *y, const float *x, float b, int64_t n);
/* The sum of x[0..n) in float, in a fixed order (eight interleaved partial sums). */
float hlrk_sum(const float *x, int64_t n);
/* The mean of x[0..n) and the sum of squared deviations from it, in double, each in a fixed order
 * (eight interleaved partial sums). */
void hlrk_mean_sqdev(const float *x, int64_t n, double *mean, double *sqdev);

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

/* Run an element-wise kernel over the pool: k(y, x, n) or k(dx, a, b, n)
 * on contiguous parts of the n elements. */
void hlrk_par_unary(void (*k)(float *, const float *, int64_t), float *y, const float *x, int64_t n);
void hlrk_par_binary(void (*k)(float *, const float *, const float *, int64_t), float *dx, const float *a,
                     const float *b, int64_t n);

/* Softmax over each row of x (rows, cols), stable for any finite input. */
void hlrk_softmax_rows(float *y, const float *x, int64_t rows, int64_t cols);
/* dx = y * (dy - sum(dy * y)) per row. */
void hlrk_softmax_rows_backward(float *dx, const float *y, const float *dy, int64_t rows, int64_t cols);

/* Per row of cols: q = e^(x - the row's max) within 2 ulp, 0 where x - max < -87 (below float's normal
 * range: the caller treats that as underflow), and sums[r] the row's sum of q, in double.  The softmax
 * numerators of the CTC loss. */
void hlrk_exp_shifted_rows(float *q, double *sums, const float *x, int64_t rows, int64_t cols);

/* Softmax cross-entropy of logits (rows, cols) against labels; returns the
 * mean loss; grad (may be NULL) = (softmax - target) / rows.  Labels must
 * already be checked to lie in [0, cols). */
double hlrk_cross_entropy(const float *logits, const int32_t *labels, int64_t rows, int64_t cols,
                           float smoothing, float *grad);
/* Mean squared error of k predictions p against targets t, summed in double;
 * grad (may be NULL) = 2 (p - t) / k. */
double hlrk_mse(const float *p, const float *t, int64_t k, float *grad);
/* The same with a weight per class, as torch's CrossEntropyLoss(weight=w):
 * sum_i w[y_i] loss_i / sum_i w[y_i], its gradient in grad (NULL: none);
 * 0 and a zero gradient when every w[y_i] is 0. */
double hlrk_cross_entropy_weighted(const float *logits, const int32_t *labels, int64_t rows, int64_t cols,
                                   const float *w, float *grad);

/* One torch.optim.Adam/AdamW step over n elements, in torch's order:
 * p *= decay_mul (AdamW's decoupled decay; 1 for Adam); d = g + l2 * p;
 * m = b1 m + (1-b1) d; v = b2 v + (1-b2) d^2;
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps).
 * Tiny gradients and moments become zero (update.c; v below hlrk_adam_v_tiny). */
void hlrk_adam(float *p, const float *g, float *m, float *v, int64_t n, float b1, float b2, float step_size,
                float bc2_sqrt, float eps, float l2, float decay_mul);
/* Adam's second moments below this become zero: sqrt(v) / bc2_sqrt is then below eps 2^-26, under a
 * quarter of eps's last bit, so that eps plus it rounds to eps and the step is the same; at most 2^-100. */
static inline float hlrk_adam_v_tiny(float eps, float bc2_sqrt)
{
    const double v_eps = (double)eps * bc2_sqrt * 0x1p-26, v = v_eps * v_eps;
    return (float)(v < 0x1p-100 ? v : 0x1p-100);
}
/* One torch.optim.SGD step: d = g + wd p; with momentum buf = mu buf + d
 * (buf = d when first), d = nesterov ? d + mu buf : buf; p -= lr d.
 * Tiny gradients and momenta become zero (update.c).
 * buf NULL means no momentum. */
void hlrk_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float wd, float mu, int nesterov,
               int first);
/* x *= a. */
void hlrk_scale(float *x, int64_t n, float a);

/* Index of the largest element of x[0..n) (first on ties). */
int64_t hlrk_argmax(const float *x, int64_t n);

/* ---- recurrent layers (recurrent.c) ----
 * One time step of N rows: gates (N, G*H) in torch's gate order, their
 * biases (G*H) added by the kernel, states (N, H).  Rows whose active[n] is 0 (their sequence has ended) carry their
 * state through unchanged and get zero gate gradients; active NULL means
 * every row.  dout (may be NULL) is this step's output gradient, rows
 * dout_stride apart; dh holds dL/dh_t on entry and, on return, the part of
 * dL/dh_{t-1} that does not pass through W_hh (the caller adds
 * dgates W_hh).  See recurrent.c for the equations.  The forward steps
 * take the hidden units j0 <= j < j1 of each row (0 and H: all; a row's
 * units are independent, so a step can be shared out by units). */
void hlrk_lstm_step(float *gates, const float *bias, const float *h_prev, const float *c_prev, float *h, float *c,
                    float *tanh_c, const unsigned char *active, int64_t N, int64_t H, int64_t j0, int64_t j1);
void hlrk_lstm_step_backward(float *dgates, float *dh, float *dc, const float *dout, int64_t dout_stride,
                             const float *gates, const float *c_prev, const float *tanh_c,
                             const unsigned char *active, int64_t N, int64_t H);
void hlrk_gru_step(float *gates, const float *bias, const float *hg, const float *b_hn, float *hn_out,
                   const float *h_prev, float *h, const unsigned char *active, int64_t N, int64_t H, int64_t j0,
                   int64_t j1);
void hlrk_gru_step_backward(float *dgi, float *dgh, float *dh, const float *dout, int64_t dout_stride,
                            const float *gates, const float *hn, const float *h_prev, const unsigned char *active,
                            int64_t N, int64_t H);
/* dst (B, A, C) = src (A, B, C) with the first two axes swapped. */
void hlrk_transpose_01(float *dst, const float *src, int64_t A, int64_t B, int64_t C);
/* Rows of C floats: dst row n = src row n where active[n] (NULL: all), else zeros. */
void hlrk_copy_rows_masked(float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                           const unsigned char *active, int64_t rows, int64_t C);

/* ---- attention (attention.c) ----
 * Scaled dot-product attention of N sequences x H heads, each a (T, d)
 * problem: q, k, v point at head 0 of sequence 0; head h starts h d floats
 * into a row, rows are ld_qkv apart (q, k, v and dq, dk, dv alike) and a
 * sequence is T rows; out and dout likewise with ld_o.  Query i sees keys
 * j < i + 1 when causal and j < lengths[n] when lengths is not NULL.  keep
 * (N H T T; NULL: no dropout) multiplies the probabilities; probs (N H T T)
 * receives them before dropout and dropped (only with keep) after.  The
 * backward writes dq, dk, dv in full and uses scratch (N H T T).  See
 * attention.c for the equations. */
typedef struct hlrk_attention {
    int64_t N, H, T, d;
    int64_t ld_qkv, ld_o;
    float scale;
    int causal;
    const int32_t *lengths;
} hlrk_attention;
void hlrk_attention_forward(const hlrk_attention *a, const float *q, const float *k, const float *v,
                            const float *keep, float *probs, float *dropped, float *out);
void hlrk_attention_backward(const hlrk_attention *a, const float *q, const float *k, const float *v,
                             const float *keep, const float *probs, const float *dropped, const float *dout,
                             float *scratch, float *dq, float *dk, float *dv);

#endif

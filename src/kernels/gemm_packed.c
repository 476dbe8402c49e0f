/*
 * gemm_packed.c -- Y = X W^T (+ bias, then ReLU) for a layer's weights W
 * (N, K), packed once: a dense layer's forward pass at more rows than
 * gemm_rows.c takes.  OpenBLAS's sgemm copies W into its packed layout
 * on every call, on each thread that shares the rows: at the mlp's first
 * layer (128 rows a thread, 784 -> 256) 18 % of its time; ONNX Runtime
 * packs a constant weight once.  Here W is packed when it changes
 * (the caller's weight checks, dense.c), and the kernel, in registers,
 * went faster than sgemm with its copies on one thread (scratch
 * measurements, Intel Xeon with AVX-512): 120 x 256 x 784 at 203 GFLOP/s
 * against 164, 12 x 256 x 784 at 175 against 90; on OpenBLAS's Haswell
 * kernel and this file's AVX2 clone 12 x 256 x 784 at 112 against 75,
 * 120 x 256 x 784 level (both near that path's peak).
 *
 * The packed W: panels of 16 of W's rows (Y's columns), panel p holding
 * for each k the 16 values W[16 p + j][k] side by side (zeros past N),
 * one panel K * 16 floats after the other.  X's rows are copied a block
 * at a time, at most HLRK_PACK_KC steps of k (on the stack: no
 * allocation), the block's values of each k side by side, so that the
 * block's multipliers are broadcast from one pointer.  Each element of Y
 * is one chain of fused multiply-adds over k in order from zero, or with
 * add from what Y held (kept in Y between blocks of k, exactly), then the
 * bias added and the ReLU's test (hlrk_add_bias_rows's operations): its bits depend neither on the
 * blocking of rows or columns, nor on the split among threads, nor on
 * the vector width (the AVX2 and AVX-512 clones run the same lanes'
 * operations), nor on the other rows (a sample's output is the same in
 * any batch of more than hlrk_gemm_rows_max() rows).
 *
 * Blocks, AVX-512: 12 rows by 2 panels (24 sums of its 32 registers), 8
 * by 3, 4 by 4, single rows by 8; AVX2 (8-float vectors, two a panel): 6
 * rows by one panel (12 of its 16), 4 by 1, 2 by 2, 1 by 4.  Panels left
 * over go one at a time.  Without FMA (hlrk_fma_runs) callers keep sgemm.
 */
#include "kernels.h"

#include <string.h>

typedef hlrk_v16 v16;
typedef hlrk_v8 v8;

#define PANEL HLRK_PACK_PANEL

int64_t hlrk_packed_floats(int64_t N, int64_t K)
{
    return (N + PANEL - 1) / PANEL * PANEL * K;
}

void hlrk_pack_weights(float *P, const float *W, int64_t N, int64_t K)
{
    for (int64_t p = 0; p < N; p += PANEL, P += PANEL * K) {
        const int64_t n = N - p < PANEL ? N - p : PANEL;
        for (int64_t j = 0; j < PANEL; j++) {
            const float *w = W + (p + j) * K;
            if (j < n)
                for (int64_t k = 0; k < K; k++)
                    P[k * PANEL + j] = w[k];
            else
                for (int64_t k = 0; k < K; k++)
                    P[k * PANEL + j] = 0.0f;
        }
    }
}

typedef float v4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef float v2 __attribute__((vector_size(8), aligned(4), may_alias));

/* Rows [0, rb) of X (ldx apart), steps [0, kc) of k, into a: a[k rb + r].  Four rows and four steps at a
 * time by a 4 x 4 transpose in registers, then two rows by a 2 x 4 one (a scalar copy had taken a tenth
 * of the mlp's time at 256). */
static inline __attribute__((always_inline)) void pack_rows(float *a, const float *X, int64_t ldx, int rb, int64_t kc)
{
    int r = 0;
    for (; r + 4 <= rb; r += 4) {
        const float *x = X + r * ldx;
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            v4 x0 = *(const v4 *)(x + k), x1 = *(const v4 *)(x + ldx + k), x2 = *(const v4 *)(x + 2 * ldx + k),
               x3 = *(const v4 *)(x + 3 * ldx + k);
            v4 t0 = __builtin_shufflevector(x0, x1, 0, 4, 1, 5), t1 = __builtin_shufflevector(x0, x1, 2, 6, 3, 7),
               t2 = __builtin_shufflevector(x2, x3, 0, 4, 1, 5), t3 = __builtin_shufflevector(x2, x3, 2, 6, 3, 7);
            *(v4 *)(a + k * rb + r) = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
            *(v4 *)(a + (k + 1) * rb + r) = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
            *(v4 *)(a + (k + 2) * rb + r) = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
            *(v4 *)(a + (k + 3) * rb + r) = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
        }
        for (; k < kc; k++)
            for (int q = 0; q < 4; q++)
                a[k * rb + r + q] = x[q * ldx + k];
    }
    for (; r + 2 <= rb; r += 2) {
        const float *x = X + r * ldx;
        int64_t k = 0;
        for (; k + 4 <= kc; k += 4) {
            v4 x0 = *(const v4 *)(x + k), x1 = *(const v4 *)(x + ldx + k);
            v4 lo = __builtin_shufflevector(x0, x1, 0, 4, 1, 5), hi = __builtin_shufflevector(x0, x1, 2, 6, 3, 7);
            *(v2 *)(a + k * rb + r) = __builtin_shufflevector(lo, lo, 0, 1);
            *(v2 *)(a + (k + 1) * rb + r) = __builtin_shufflevector(lo, lo, 2, 3);
            *(v2 *)(a + (k + 2) * rb + r) = __builtin_shufflevector(hi, hi, 0, 1);
            *(v2 *)(a + (k + 3) * rb + r) = __builtin_shufflevector(hi, hi, 2, 3);
        }
        for (; k < kc; k++)
            for (int q = 0; q < 2; q++)
                a[k * rb + r + q] = x[q * ldx + k];
    }
    for (; r < rb; r++)
        for (int64_t k = 0; k < kc; k++)
            a[k * rb + r] = X[r * ldx + k];
}

/*
 * Rows [0, RB) of C (ldc apart) by NV vectors of VW columns (NV VW / 16 panels, the first at b, the next
 * ps floats on), over kc steps of k: from zero when first, else from what C holds.  RB and NV are
 * constants where it is used: the sums stay in registers.  (Partial columns, the bias and the ReLU are
 * the caller's: with them in here GCC kept two of the 24 sums of the 12-row block in memory.)
 */
#define BLOCK(NAME, V, VW)                                                                                             \
    static inline __attribute__((always_inline)) void NAME(int RB, int NV, int64_t kc, const float *a,                 \
                                                           const float *b, int64_t ps, float *C, int64_t ldc,          \
                                                           int first)                                                  \
    {                                                                                                                  \
        V acc[12][8];                                                                                                  \
        _Pragma("GCC unroll 12") for (int i = 0; i < RB; i++)                                                          \
        {                                                                                                              \
            _Pragma("GCC unroll 8") for (int j = 0; j < NV; j++) acc[i][j] =                                           \
                first ? (V){0} : *(const V *)(C + i * ldc + j * VW);                                                   \
        }                                                                                                              \
        for (int64_t k = 0; k < kc; k++, a += RB) {                                                                    \
            V bv[8];                                                                                                   \
            _Pragma("GCC unroll 8") for (int j = 0; j < NV; j++) bv[j] =                                               \
                *(const V *)(b + (j * VW / PANEL) * ps + k * PANEL + (j * VW) % PANEL);                                \
            _Pragma("GCC unroll 12") for (int i = 0; i < RB; i++)                                                      \
            {                                                                                                          \
                const float s = a[i];                                                                                  \
                _Pragma("GCC unroll 8") for (int j = 0; j < NV; j++) acc[i][j] += s * bv[j];                           \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 12") for (int i = 0; i < RB; i++)                                                          \
        {                                                                                                              \
            _Pragma("GCC unroll 8") for (int j = 0; j < NV; j++)* (V *)(C + i * ldc + j * VW) = acc[i][j];            \
        }                                                                                                              \
    }
BLOCK(block16, v16, 16)
BLOCK(block8, v8, 8)
#undef BLOCK

/* The bias (or NULL) added to rows [0, rb) of Y's first n columns, then the ReLU with relu:
 * hlrk_add_bias_rows's operations, inline here while the block is in cache (calling hlrk_add_bias_rows on
 * each block instead made the mlp at 256 3-7 % slower, alternating, both paths). */
static inline __attribute__((always_inline)) void finish(float *Y, int64_t ldy, int rb, int64_t n, const float *bias,
                                                         int relu)
{
    for (int i = 0; i < rb; i++, Y += ldy) {
        if (bias)
            for (int64_t q = 0; q < n; q++)
                Y[q] += bias[q];
        if (relu)
            for (int64_t q = 0; q < n; q++)
                Y[q] = Y[q] < 0.0f ? 0.0f : Y[q];
    }
}

/* Steps [k0, k0 + kc) of one block of RB rows, at Yb: every panel, NV vectors at a time, then one panel
 * at a time (ONE vectors); the last columns, where N is not a multiple of 16, through the tile t. */
#define PANELS(F, VW, RB, NV, ONE)                                                                                     \
    do {                                                                                                               \
        int64_t c = 0;                                                                                                 \
        for (; c + (NV) * (VW) <= N; c += (NV) * (VW))                                                                 \
            F(RB, NV, kc, a, P + c * K + k0 * PANEL, PANEL * K, Yb + c, ldy, first);                                   \
        for (; c + PANEL <= N; c += PANEL)                                                                             \
            F(RB, ONE, kc, a, P + c * K + k0 * PANEL, PANEL * K, Yb + c, ldy, first);                                  \
        if (c < N) {                                                                                                   \
            for (int r = 0; r < (RB) && !first; r++)                                                                   \
                memcpy(t + r * PANEL, Yb + r * ldy + c, (size_t)(N - c) * sizeof *t);                                  \
            F(RB, ONE, kc, a, P + c * K + k0 * PANEL, PANEL * K, t, PANEL, first);                                     \
            for (int r = 0; r < (RB); r++)                                                                             \
                memcpy(Yb + r * ldy + c, t + r * PANEL, (size_t)(N - c) * sizeof *t);                                  \
        }                                                                                                              \
    } while (0)

HLR_FMA_KERNEL
void hlrk_gemm_packed(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *P, float *Y,
                      int64_t ldy, const float *bias, int relu, int add)
{
    float a[12 * HLRK_PACK_KC] __attribute__((aligned(64)));
    float t[12 * PANEL] __attribute__((aligned(64))) = {0}; /* its columns past N are computed, never read */
    const int wide = hlrk_v16_fits(); /* either loop gives the same bits: the tests run both */
    for (int64_t i = 0; i < M;) {
        const int64_t left = M - i;
        const int rb = wide ? (left >= 12 ? 12 : left >= 8 ? 8 : left >= 4 ? 4 : 1)
                            : (left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1);
        for (int64_t k0 = 0; k0 < K; k0 += HLRK_PACK_KC) {
            const int64_t kc = K - k0 < HLRK_PACK_KC ? K - k0 : HLRK_PACK_KC;
            const int first = k0 == 0 && !add, last = k0 + kc == K;
            pack_rows(a, X + i * ldx + k0, ldx, rb, kc);
            float *Yb = Y + i * ldy;
            if (wide)
                switch (rb) {
                case 12: PANELS(block16, 16, 12, 2, 1); break;
                case 8: PANELS(block16, 16, 8, 3, 1); break;
                case 4: PANELS(block16, 16, 4, 4, 1); break;
                default: PANELS(block16, 16, 1, 8, 1); break;
                }
            else
                switch (rb) {
                case 6: PANELS(block8, 8, 6, 2, 2); break;
                case 4: PANELS(block8, 8, 4, 2, 2); break;
                case 2: PANELS(block8, 8, 2, 4, 2); break;
                default: PANELS(block8, 8, 1, 8, 2); break;
                }
            if (last && (bias || relu))
                finish(Yb, ldy, rb, N, bias, relu);
        }
        i += rb;
    }
}
#undef PANELS

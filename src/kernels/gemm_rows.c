/*
 * gemm_rows.c -- C = A B^T for a few rows of A (M <= HLRK_ROWS_MAX), B
 * read in place: the input projection of a short sequence and a dense
 * layer's small batch, where OpenBLAS's sgemm copies the whole of B into
 * its packed layout on every call (the hybrid model's LSTM at batch 1: 7
 * rows against a 512 x 448 W_ih, 0.9 MB packed for 1.6 M multiply-adds, a
 * third of the model's time; docs/design.md, "Recurrent layers and
 * sequences").
 *
 * Each C[i][j] is a dot product of two rows.  Its terms go to 16 lanes by
 * k mod 16 (the last K mod 16 from copies padded with zeros), each lane
 * summing its terms in k order, and the 16 lane sums are then added in a
 * fixed tree: the same bits for every blocking of i and j, and so for
 * every split of the columns among threads.  With AVX-512, blocks of up
 * to 4 rows of A and 4 of B share each load, their 16 sums in registers;
 * with AVX2, blocks of 2 and 2, each sum's lanes 0-7 and 8-15 in two
 * 8-float registers.  Unlike the element-wise kernels, whose bits are the
 * same in every clone, a product's bits already depend on the CPU
 * (OpenBLAS's kernels sum in different orders), so each multiply-add is
 * fused where the CPU can (the AVX2 path runs the clone built for FMA):
 * lane by lane the same operations in both clones, and so the same bits.
 * A CPU with neither leaves these products to sgemm, and so does AVX2 for
 * more than 8 rows (hlrk_gemm_rows_max): there the rows no longer stay in
 * cache while each pair of B's rows passes, and sgemm was faster (the mlp
 * at batch 12 and 16, OpenBLAS's Haswell kernel, one thread: 95,023-
 * 113,358 img/s against 69,975-75,735; at batch 4, 45,805-47,479 against
 * 70,482-73,366).
 */
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) &&                      \
    !defined(__SANITIZE_ADDRESS__) && defined(HLR_ISA_AVX2)
#define ROWS_KERNEL __attribute__((target_clones("default", "fma"), optimize("fp-contract=fast")))
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) &&                    \
    !defined(__SANITIZE_ADDRESS__)
#define ROWS_KERNEL __attribute__((target_clones("default", "fma", "avx512f"), optimize("fp-contract=fast")))
#else
#define ROWS_KERNEL
#endif

typedef hlrk_v16 v16;
/* 8 floats: one AVX2 register.  GCC keeps a vector wider than the clone's registers in memory. */
typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));

/* AVX-512 (kernels.h picks the widest clone the CPU has; the AVX2-capped build has none wider). */
static int wide(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(HLR_ISA_AVX2)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

int hlrk_gemm_rows_max(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (wide())
        return HLRK_ROWS_MAX;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
#else
    return 0;
#endif
}

/* The 16 lanes' sums (s[16]) in a fixed order: lane l + 8 to lane l, then + 4, + 2, + 1. */
static inline __attribute__((always_inline)) float lanes_sum(float *s)
{
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            s[l] += s[l + w];
    return s[0];
}

/* Columns K16 .. K - 1 (fewer than 16) of n rows of X, ld apart, padded with zeros to 16 in t. */
static inline __attribute__((always_inline)) void tail(float (*t)[16], const float *X, int64_t ld, int64_t n,
                                                       int64_t K16, int64_t K)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < 16; c++)
            t[r][c] = K16 + c < K ? X[r * ld + K16 + c] : 0.0f;
}

/* 16 terms of ib rows of A and jb of B (ib, jb <= 4), rows sa and sb floats apart, into the sums. */
static inline __attribute__((always_inline)) void terms(v16 acc[4][4], int64_t ib, int64_t jb, const float *a0,
                                                        int64_t sa, const float *b0, int64_t sb)
{
    v16 a[4], b[4];
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) a[i] = *(const v16 *)(a0 + i * sa);
    _Pragma("GCC unroll 4") for (int64_t j = 0; j < jb; j++) b[j] = *(const v16 *)(b0 + j * sb);
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 4") for (int64_t j = 0; j < jb; j++)
        acc[i][j] += a[i] * b[j];
}

/* C's block of ib rows and jb columns. */
static inline __attribute__((always_inline)) void block(int64_t ib, int64_t jb, int64_t K, const float *A, int64_t lda,
                                                        const float *B, int64_t ldb, float *C, int64_t ldc)
{
    v16 acc[4][4];
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 4") for (int64_t j = 0; j < jb; j++)
        acc[i][j] = (v16){0};
    const int64_t K16 = K / 16 * 16;
    for (int64_t k = 0; k < K16; k += 16)
        terms(acc, ib, jb, A + k, lda, B + k, ldb);
    if (K16 < K) {
        float at[4][16], bt[4][16];
        tail(at, A, lda, ib, K16, K);
        tail(bt, B, ldb, jb, K16, K);
        terms(acc, ib, jb, at[0], 16, bt[0], 16);
    }
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 4") for (int64_t j = 0; j < jb; j++)
    {
        float s16[16];
        *(v16 *)s16 = acc[i][j];
        C[i * ldc + j] = lanes_sum(s16);
    }
}

/* The same in 8-float registers, ib, jb <= 2: each sum's lanes 0-7 in lo, 8-15 in hi. */
static inline __attribute__((always_inline)) void terms8(v8 lo[2][2], v8 hi[2][2], int64_t ib, int64_t jb,
                                                         const float *a0, int64_t sa, const float *b0, int64_t sb)
{
    v8 a[2], b[2];
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) a[i] = *(const v8 *)(a0 + i * sa);
    _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++) b[j] = *(const v8 *)(b0 + j * sb);
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
        lo[i][j] += a[i] * b[j];
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) a[i] = *(const v8 *)(a0 + i * sa + 8);
    _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++) b[j] = *(const v8 *)(b0 + j * sb + 8);
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
        hi[i][j] += a[i] * b[j];
}

static inline __attribute__((always_inline)) void block8(int64_t ib, int64_t jb, int64_t K, const float *A, int64_t lda,
                                                         const float *B, int64_t ldb, float *C, int64_t ldc)
{
    v8 lo[2][2], hi[2][2];
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
        lo[i][j] = hi[i][j] = (v8){0};
    const int64_t K16 = K / 16 * 16;
    for (int64_t k = 0; k < K16; k += 16)
        terms8(lo, hi, ib, jb, A + k, lda, B + k, ldb);
    if (K16 < K) {
        float at[2][16], bt[2][16];
        tail(at, A, lda, ib, K16, K);
        tail(bt, B, ldb, jb, K16, K);
        terms8(lo, hi, ib, jb, at[0], 16, bt[0], 16);
    }
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
    {
        float s16[16];
        *(v8 *)s16 = lo[i][j];
        *(v8 *)(s16 + 8) = hi[i][j];
        C[i * ldc + j] = lanes_sum(s16);
    }
}

/* The block shapes as constants, so that each one's loops unroll and its sums stay in registers. */
#define BLOCK(F, IB, JB) F(IB, JB, K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc)

ROWS_KERNEL void hlrk_gemm_rows(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                                int64_t ldb, float *C, int64_t ldc)
{
    const int w = wide();
    int64_t j = 0;
    if (w)
        for (; j + 4 <= N; j += 4) {
            int64_t i = 0;
            for (; i + 4 <= M; i += 4)
                BLOCK(block, 4, 4);
            for (; i + 2 <= M; i += 2)
                BLOCK(block, 2, 4);
            for (; i < M; i++)
                BLOCK(block, 1, 4);
        }
    else
        for (; j + 2 <= N; j += 2) {
            int64_t i = 0;
            for (; i + 2 <= M; i += 2)
                BLOCK(block8, 2, 2);
            for (; i < M; i++)
                BLOCK(block8, 1, 2);
        }
    for (; j < N; j++) /* the last columns one at a time, in the blocks' registers */
        for (int64_t i = 0; i < M; i++) {
            if (w)
                BLOCK(block, 1, 1);
            else
                BLOCK(block8, 1, 1);
        }
}

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
 * every split of the columns among threads.  Blocks of up to 4 rows of A
 * and 4 of B share each load, their 16 sums in AVX-512 registers.
 *
 * Measured faster than sgemm only with AVX-512 (hlrk_gemm_rows_wide): on
 * the AVX2 path, sums in pairs of 8-float registers ran no faster than
 * OpenBLAS's Haswell sgemm, copy included, so hlrk_gemm_rows_split leaves
 * that path to sgemm.  Unlike the element-wise kernels, whose bits are
 * the same in every clone, a product's bits already depend on the CPU
 * (OpenBLAS's kernels sum in different orders), so the AVX-512 clone fuses
 * each multiply-add.
 */
#include "kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HLR_NO_CLONES) &&                      \
    !defined(__SANITIZE_ADDRESS__) && !defined(HLR_ISA_AVX2)
#define ROWS_KERNEL __attribute__((target_clones("default", "avx512f"), optimize("fp-contract=fast")))
#else
#define ROWS_KERNEL
#endif

typedef hlrk_v16 v16;

int hlrk_gemm_rows_wide(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(HLR_ISA_AVX2)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

/* The 16 lanes' sums in a fixed order: lane l + 8 to lane l, then + 4, + 2, + 1. */
static inline __attribute__((always_inline)) float lanes_sum(v16 v)
{
    float s[16];
    *(v16 *)s = v;
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            s[l] += s[l + w];
    return s[0];
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
        for (int64_t i = 0; i < ib; i++)
            for (int64_t t = 0; t < 16; t++)
                at[i][t] = K16 + t < K ? A[i * lda + K16 + t] : 0.0f;
        for (int64_t j = 0; j < jb; j++)
            for (int64_t t = 0; t < 16; t++)
                bt[j][t] = K16 + t < K ? B[j * ldb + K16 + t] : 0.0f;
        terms(acc, ib, jb, at[0], 16, bt[0], 16);
    }
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 4") for (int64_t j = 0; j < jb; j++)
        C[i * ldc + j] = lanes_sum(acc[i][j]);
}

/* The block shapes as constants, so that each one's loops unroll and its sums stay in registers. */
#define BLOCK(IB, JB) block(IB, JB, K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc)

ROWS_KERNEL void hlrk_gemm_rows(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                                int64_t ldb, float *C, int64_t ldc)
{
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {
        int64_t i = 0;
        for (; i + 4 <= M; i += 4)
            BLOCK(4, 4);
        for (; i + 2 <= M; i += 2)
            BLOCK(2, 4);
        for (; i < M; i++)
            BLOCK(1, 4);
    }
    for (; j < N; j++)
        for (int64_t i = 0; i < M; i++)
            BLOCK(1, 1);
}

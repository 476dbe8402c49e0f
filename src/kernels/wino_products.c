/*
 * wino_products.c -- the 16 products M[xi] = U[xi] V[xi] of a Winograd
 * convolution (winograd.c) for a block of up to HLRK_WINO_SMALL_T tiles,
 * without sgemm.  For one small image's tiles (49 for a 14 x 14 output, 16
 * for 7 x 7) OpenBLAS's sgemm spent a third of its time packing U and V
 * into its layouts (the cnn-bn at batch 1 on its Haswell kernel: the
 * kernel proper 25 % of the model's time, the two copies 14 %), and its
 * row cuts must fall on multiples of 12 to keep the bits (kernels.h,
 * hlrk_gemm_row_align), which left one of two threads with 36 of 64
 * channels; at a few hundred tiles its Haswell kernel was still slower.
 *
 * V[xi] (Cin rows of ldv floats) and the rows of M[xi] are read and
 * written in place, a whole vector of tiles at a time: T's columns
 * rounded up to a multiple of 8 (hlrk_wino_small_ld), computed and never
 * read past T.  Each element of M is one chain of fused multiply-adds
 * over Cin in order, lane by lane, from zero: the same bits for any
 * blocking of rows and columns, any split of the rows among threads, and
 * either vector width (the AVX2 and AVX-512 clones run the same lanes'
 * operations), so a channel computed by one thread of a split sample
 * equals the whole sample's.  Column groups of 3 vectors (48 columns on
 * AVX-512, 24 on AVX2), each staying in L1 while every block of 8 rows
 * (AVX-512: 24 sums in its 32 registers; 4 rows had left the cnn at 256
 * 6-9 % slower) or 4 (AVX2's 16) passes over it, then blocks of 4 and
 * single rows for the rest; the last group 6 rows by 2 vectors or 8 by 1 when it
 * is narrower (enough independent chains to cover the multiply-add's
 * latency), and on AVX-512 a last vector of 8 floats where 8 columns or
 * fewer remain (49 tiles compute 56 columns, not 64).  U's element is
 * broadcast from memory, U transposed (each point's (Cin, Cout)) so that
 * a block's rows are side by side: with U's rows, 8 rows' addresses took
 * more registers than x86 has and the kernel spent a sixth of its time
 * moving them.  Without FMA the products stay with sgemm
 * (hlrk_wino_small).
 */
#include "kernels.h"

typedef hlrk_v16 v16;
typedef hlrk_v8 v8;

int hlrk_wino_small(int64_t T)
{
    return T <= HLRK_WINO_SMALL_T && hlrk_fma_runs();
}

/*
 * Rows [0, RB) of C = A^T B, A's column i for C's row i (A's rows lda apart: the RB multipliers of each
 * step k side by side, reached from one pointer), times CB vectors of B (VW floats each) and, with T8,
 * one more of 8 floats: the block's accumulators in registers (RB, CB and T8 are constants where it is
 * used).
 */
#define BLOCK(NAME, V, VW)                                                                                             \
    static inline __attribute__((always_inline)) void NAME(int RB, int CB, int T8, int64_t K, const float *A,          \
                                                           int64_t lda, const float *B, int64_t ldb, float *C,         \
                                                           int64_t ldc)                                                \
    {                                                                                                                  \
        V acc[8][3];                                                                                                   \
        v8 acc8[8];                                                                                                    \
        _Pragma("GCC unroll 8") for (int i = 0; i < RB; i++)                                                           \
        {                                                                                                              \
            _Pragma("GCC unroll 3") for (int j = 0; j < CB; j++) acc[i][j] = (V){0};                                   \
            acc8[i] = (v8){0};                                                                                         \
        }                                                                                                              \
        for (int64_t k = 0; k < K; k++) {                                                                              \
            const float *b = B + k * ldb;                                                                              \
            V bv[3];                                                                                                   \
            _Pragma("GCC unroll 3") for (int j = 0; j < CB; j++) bv[j] = *(const V *)(b + j * VW);                     \
            const v8 b8 = T8 ? *(const v8 *)(b + CB * VW) : (v8){0};                                                   \
            const float *a = A + k * lda;                                                                              \
            _Pragma("GCC unroll 8") for (int i = 0; i < RB; i++)                                                       \
            {                                                                                                          \
                const float ai = a[i];                                                                                 \
                _Pragma("GCC unroll 3") for (int j = 0; j < CB; j++) acc[i][j] += ai * bv[j];                          \
                if (T8)                                                                                                \
                    acc8[i] += ai * b8;                                                                                \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int i = 0; i < RB; i++)                                                           \
        {                                                                                                              \
            _Pragma("GCC unroll 3") for (int j = 0; j < CB; j++) * (V *)(C + i * ldc + j * VW) = acc[i][j];            \
            if (T8)                                                                                                    \
                *(v8 *)(C + i * ldc + CB * VW) = acc8[i];                                                              \
        }                                                                                                              \
    }
BLOCK(block16, v16, 16)
BLOCK(block8, v8, 8)
#undef BLOCK

/* The rows of one column group in blocks of RB, then (RB > 4) of 4, then one at a time. */
#define ROWS(F, RB, CB, T8)                                                                                            \
    do {                                                                                                               \
        int64_t i = 0;                                                                                                 \
        for (; i + (RB) <= cn; i += (RB))                                                                              \
            F(RB, CB, T8, ci, A + i, ldu, B + j, ldv, C + i * ldm + j, ldm);                                           \
        for (; (RB) > 4 && i + 4 <= cn; i += 4)                                                                        \
            F(4, CB, T8, ci, A + i, ldu, B + j, ldv, C + i * ldm + j, ldm);                                            \
        for (; i < cn; i++)                                                                                            \
            F(1, CB, T8, ci, A + i, ldu, B + j, ldv, C + i * ldm + j, ldm);                                            \
    } while (0)

HLR_FMA_KERNEL
void hlrk_wino_products(float *M, int64_t ldm, const float *Ut, int64_t ldu, const float *V, int64_t ldv, int64_t cn,
                        int64_t ci, int64_t T)
{
    const int wide = hlrk_avx512_runs();
    hlrk_gemm_count(HLRK_WINO_POINTS * cn, T, ci);
    for (int xi = 0; xi < HLRK_WINO_POINTS; xi++) {
        const float *A = Ut + xi * ci * ldu, *B = V + xi * ci * ldv;
        float *C = M + xi * cn * ldm;
        int64_t j = 0;
        if (wide) {
            for (; j + 48 < T; j += 48) /* 3 vectors, and the next column group starts past them */
                ROWS(block16, 8, 3, 0);
            const int64_t left = T - j; /* 1 .. 48 */
            if (left > 40)
                ROWS(block16, 8, 3, 0);
            else if (left > 32)
                ROWS(block16, 4, 2, 1);
            else if (left > 24)
                ROWS(block16, 6, 2, 0);
            else if (left > 16)
                ROWS(block16, 6, 1, 1);
            else if (left > 8)
                ROWS(block16, 8, 1, 0);
            else
                ROWS(block16, 8, 0, 1);
        } else {
            for (; j + 24 < T; j += 24)
                ROWS(block8, 4, 3, 0);
            const int64_t left = T - j; /* 1 .. 24 */
            if (left > 16)
                ROWS(block8, 4, 3, 0);
            else if (left > 8)
                ROWS(block8, 6, 2, 0);
            else
                ROWS(block8, 8, 1, 0);
        }
    }
}
#undef ROWS

void hlrk_wino_transpose(float *Ut, const float *U, int64_t cout, int64_t cin)
{
    for (int64_t xi = 0; xi < HLRK_WINO_POINTS; xi++, U += cout * cin, Ut += cout * cin)
        for (int64_t r = 0; r < cout; r++)
            for (int64_t k = 0; k < cin; k++)
                Ut[k * cout + r] = U[r * cin + k];
}

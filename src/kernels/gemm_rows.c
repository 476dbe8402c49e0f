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
 * to 4 rows of A and 4 of B share each load, their 16 sums in registers
 * (1 to 3 rows: 2 and 8, or 1 and 8, so that 8 or 16 sums' chains of adds
 * overlap); with AVX2, blocks of 2 and 2, each sum's lanes 0-7 and 8-15 in
 * two 8-float registers.  A block's sums go through the tree together
 * (sums16, sums8): adding each one's 16 lanes alone cost more than its
 * multiply-adds at K = 128 (16 rows x 512 x 128: 63 us, now 23).  With
 * add, each sum is added to what C held (a recurrent step's gates).
 *
 * Unlike the element-wise kernels, whose bits are the same in every
 * clone, a product's bits already depend on the CPU
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

typedef hlrk_v16 v16;
/* 8 floats: one AVX2 register (kernels.h: GCC keeps a vector wider than the clone's registers in memory). */
typedef hlrk_v8 v8;
typedef float v4 __attribute__((vector_size(16), aligned(4), may_alias));

/* AVX-512 (kernels.h picks the widest clone the CPU has; the AVX2-capped build has none wider).  Not
 * hlrk_v16_fits: the tests' width override would also move products between this kernel and sgemm. */
static int wide(void)
{
    return hlrk_avx512_runs();
}

int hlrk_gemm_rows_min(void)
{
    return wide() ? 1 : 2;
}

int hlrk_gemm_rows_max(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (hlrk_no_fma_for_tests)
        return 0;
    if (wide())
        return HLRK_ROWS_MAX;
    return hlrk_fma_runs() ? 8 : 0;
#else
    return 0;
#endif
}

/*
 * The 16 lanes of each of up to 16 sums added in a fixed tree: lane l + 8 to lane l, then + 4, + 2 and + 1.
 * Each level packs the partial sums of two vectors into one (two shuffles and an add), so that the
 * adds of several sums share an instruction: after the first level a vector holds 8 partials of each of
 * 2 sums, after the second 4 of each of 4, then 2 of 8, then 1 of 16, in the order the sums came in.
 * Every add pairs the same lanes as adding one sum's lanes alone would, so the bits do not depend on
 * how many sums share the work.  s[n..15] are taken as zero; out[i] = sum i, i < n.
 */
#define PICK(...) __builtin_shufflevector(a, b, __VA_ARGS__)
/* Each level writes to *r the adds of a and b's partials (r may be a or b). */
static inline __attribute__((always_inline)) void level8(v16 *r, v16 a, v16 b)
{
    *r = PICK(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
         PICK(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
}
static inline __attribute__((always_inline)) void level4(v16 *r, v16 a, v16 b)
{
    *r = PICK(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
         PICK(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}
static inline __attribute__((always_inline)) void level2(v16 *r, v16 a, v16 b)
{
    *r = PICK(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +
         PICK(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
}
static inline __attribute__((always_inline)) void level1(v16 *r, v16 a, v16 b)
{
    *r = PICK(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +
         PICK(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/* s[0 .. n-1] (n <= 16; s has room for 16, the rest taken as zero): out[i] = sum i. */
static inline __attribute__((always_inline)) void sums16(v16 *s, int n, float *out)
{
    _Pragma("GCC unroll 16") for (int i = n; i < 16; i++) s[i] = (v16){0};
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) if (2 * i < n) level8(&s[i], s[2 * i], s[2 * i + 1]);
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) if (4 * i < n) level4(&s[i], s[2 * i], s[2 * i + 1]);
    _Pragma("GCC unroll 2") for (int i = 0; i < 2; i++) if (8 * i < n) level2(&s[i], s[2 * i], s[2 * i + 1]);
    level1(&s[0], s[0], s[1]);
    *(v16 *)out = s[0];
}

/* The same levels in 8-float registers, for the AVX2 clone: a vector holds 4 partials of each of 2 sums,
 * then 2 of 4, then 1 of 8 (of which sums8's 4 are the first). */
static inline __attribute__((always_inline)) void level4_8(v8 *r, v8 a, v8 b)
{
    *r = PICK(0, 1, 2, 3, 8, 9, 10, 11) + PICK(4, 5, 6, 7, 12, 13, 14, 15);
}
static inline __attribute__((always_inline)) void level2_8(v8 *r, v8 a, v8 b)
{
    *r = PICK(0, 1, 4, 5, 8, 9, 12, 13) + PICK(2, 3, 6, 7, 10, 11, 14, 15);
}
static inline __attribute__((always_inline)) void level1_8(v8 *r, v8 a, v8 b)
{
    *r = PICK(0, 2, 4, 6, 8, 10, 12, 14) + PICK(1, 3, 5, 7, 9, 11, 13, 15);
}

/* Up to 4 sums whose lanes 0-7 are in lo[i] and 8-15 in hi[i] (the first level is lo + hi); out has room
 * for 8. */
static inline __attribute__((always_inline)) void sums8(const v8 *lo, const v8 *hi, int n, float *out)
{
    v8 p[4] = {{0}, {0}, {0}, {0}};
    _Pragma("GCC unroll 4") for (int i = 0; i < n; i++) p[i] = lo[i] + hi[i];
    level4_8(&p[0], p[0], p[1]);
    level4_8(&p[1], p[2], p[3]);
    level2_8(&p[0], p[0], p[1]);
    level1_8((v8 *)out, p[0], (v8){0});
}
#undef PICK

/* Columns K16 .. K - 1 (fewer than 16) of n rows of X, ld apart, padded with zeros to 16 in t. */
static inline __attribute__((always_inline)) void tail(float (*t)[16], const float *X, int64_t ld, int64_t n,
                                                       int64_t K16, int64_t K)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < 16; c++)
            t[r][c] = K16 + c < K ? X[r * ld + K16 + c] : 0.0f;
}

/* 16 terms of ib rows of A and jb of B (ib <= 4, jb <= 8, ib jb <= 16), rows sa and sb floats apart, into
 * the sums. */
static inline __attribute__((always_inline)) void terms(v16 acc[4][8], int64_t ib, int64_t jb, const float *a0,
                                                        int64_t sa, const float *b0, int64_t sb)
{
    v16 a[4], b[8];
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) a[i] = *(const v16 *)(a0 + i * sa);
    _Pragma("GCC unroll 8") for (int64_t j = 0; j < jb; j++) b[j] = *(const v16 *)(b0 + j * sb);
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 8") for (int64_t j = 0; j < jb; j++)
        acc[i][j] += a[i] * b[j];
}

/* C's block of ib rows and jb columns. */
static inline __attribute__((always_inline)) void block(int64_t ib, int64_t jb, int64_t K, const float *A, int64_t lda,
                                                        const float *B, int64_t ldb, float *C, int64_t ldc, int add)
{
    v16 acc[4][8];
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 8") for (int64_t j = 0; j < jb; j++)
        acc[i][j] = (v16){0};
    const int64_t K16 = K / 16 * 16;
    for (int64_t k = 0; k < K16; k += 16)
        terms(acc, ib, jb, A + k, lda, B + k, ldb);
    if (K16 < K) {
        float at[4][16], bt[8][16];
        tail(at, A, lda, ib, K16, K);
        tail(bt, B, ldb, jb, K16, K);
        terms(acc, ib, jb, at[0], 16, bt[0], 16);
    }
    v16 flat[16];
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 8") for (int64_t j = 0; j < jb; j++)
        flat[i * jb + j] = acc[i][j];
    float s[16];
    sums16(flat, (int)(ib * jb), s);
    if (jb % 4 == 0) { /* row i's sums are s[i jb ..], stored 4 at a time */
        _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb;
                                                                                              j += 4)
        {
            v4 *c = (v4 *)(C + i * ldc + j), v = *(const v4 *)(s + i * jb + j);
            if (add)
                v += *c;
            *c = v;
        }
        return;
    }
    _Pragma("GCC unroll 4") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 8") for (int64_t j = 0; j < jb; j++)
        C[i * ldc + j] = add ? C[i * ldc + j] + s[i * jb + j] : s[i * jb + j];
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
                                                         const float *B, int64_t ldb, float *C, int64_t ldc, int add)
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
    v8 l[4], h[4];
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
    {
        l[i * jb + j] = lo[i][j];
        h[i * jb + j] = hi[i][j];
    }
    float s[8];
    sums8(l, h, (int)(ib * jb), s);
    _Pragma("GCC unroll 2") for (int64_t i = 0; i < ib; i++) _Pragma("GCC unroll 2") for (int64_t j = 0; j < jb; j++)
        C[i * ldc + j] = add ? C[i * ldc + j] + s[i * jb + j] : s[i * jb + j];
}

/* The block shapes as constants, so that each one's loops unroll and its sums stay in registers. */
#define BLOCK(F, IB, JB) F(IB, JB, K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc, add)

HLR_FMA_KERNEL void hlrk_gemm_rows(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                                   int64_t ldb, float *C, int64_t ldc, int add)
{
    const int w = wide();
    int64_t j = 0;
    if (w && M < 4) /* 1 to 3 rows: 8 columns a block, so that 8 or 16 sums' chains of adds overlap */
        for (; j + 8 <= N; j += 8) {
            int64_t i = 0;
            for (; i + 2 <= M; i += 2)
                BLOCK(block, 2, 8);
            for (; i < M; i++)
                BLOCK(block, 1, 8);
        }
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

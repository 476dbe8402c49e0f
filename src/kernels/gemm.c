/*
 * gemm.c -- the one door to cblas_sgemm (OpenBLAS, single-threaded).
 *
 * A product large enough to be worth it is cut into blocks of C's rows or
 * columns, one per pool thread, each a single-threaded sgemm over the whole
 * of K.  The blocks depend only on the shape and the thread count, so a
 * fixed thread count gives the same bits every run.
 *
 * A product with one row of C (one sample through a dense layer, a batch-1
 * recurrent step) goes to cblas_sgemv instead: sgemm packs the whole of B
 * for it, and on OpenBLAS's Haswell kernel (the one AVX2-only CPUs run)
 * that costs 64 us for a 784 x 256 weight against 9 us for sgemv (figures
 * in docs/design.md, "Threads and determinism").  A row computed alone
 * need not have the bits it has inside a larger product; neither has it
 * with sgemm, whose summation order depends on M.
 */
#include "../internal.h"
#include "kernels.h"

#include <cblas.h>
#include <stdatomic.h>

/* Floating-point operations (2 M N K) of every product so far: benchmarks
 * read it to set measured speed against what the GEMMs alone would need. */
_Atomic int64_t hlr__gemm_flops;

/* Below this many multiply-adds a split costs more than it saves. */
#define SPLIT_MIN_MACS ((int64_t)1 << 18)

typedef struct gemm_job {
    int trans_a, trans_b, split_rows;
    int64_t M, N, K, lda, ldb, ldc, block;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    atomic_fetch_add_explicit(&hlr__gemm_flops, 2 * M * N * K, memory_order_relaxed);
    if (M == 1) { /* one row of C: B's matrix times A's row (a column of op(A) when trans_a, lda apart) */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, (blasint)(trans_b ? N : K),
                    (blasint)(trans_b ? K : N), alpha, B, (blasint)ldb, A, (blasint)(trans_a ? lda : 1), beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                (blasint)ldc);
}

/* Blocks [b, e) of `block` rows (or columns) each. */
static void gemm_part(void *ctx, int64_t b, int64_t e)
{
    const gemm_job *j = ctx;
    int64_t lo = b * j->block, hi = e * j->block;
    if (j->split_rows) {
        hi = hi < j->M ? hi : j->M;
        const float *A = j->trans_a ? j->A + lo : j->A + lo * j->lda;
        sgemm(j->trans_a, j->trans_b, hi - lo, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
              j->C + lo * j->ldc, j->ldc);
    } else {
        hi = hi < j->N ? hi : j->N;
        const float *B = j->trans_b ? j->B + lo * j->ldb : j->B + lo;
        sgemm(j->trans_a, j->trans_b, j->M, hi - lo, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta, j->C + lo,
              j->ldc);
    }
}

void hlrk_gemm_count(int64_t M, int64_t N, int64_t K)
{
    atomic_fetch_add_explicit(&hlr__gemm_flops, 2 * M * N * K, memory_order_relaxed);
}

void hlrk_gemm1(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void hlrk_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    int threads = hlr__pool_threads();
    if (threads < 2 || M * N * K < SPLIT_MIN_MACS) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C, in blocks that keep the kernel's tiles whole. */
    gemm_job j = {trans_a, trans_b, M >= N, M, N, K, lda, ldb, ldc, 0, alpha, beta, A, B, C};
    int64_t side = j.split_rows ? M : N, align = j.split_rows ? 8 : 16;
    int64_t block = (side + threads - 1) / threads;
    block = (block + align - 1) / align * align;
    j.block = block;
    hlr__parallel_for((side + block - 1) / block, 1, gemm_part, &j);
}

typedef struct rows_job {
    int64_t M, N, K, lda, ldb, ldc, block;
    const float *A, *B;
    float *C;
} rows_job;

static void rows_part(void *ctx, int64_t b, int64_t e)
{
    const rows_job *j = ctx;
    int64_t lo = b * j->block, hi = e * j->block < j->N ? e * j->block : j->N;
    hlrk_gemm_rows(j->M, hi - lo, j->K, j->A, j->lda, j->B + lo * j->ldb, j->ldb, j->C + lo, j->ldc, 0);
}

void hlrk_gemm_rows_split(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                          float *C, int64_t ldc)
{
    if (M > hlrk_gemm_rows_max()) {
        hlrk_gemm(0, 1, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
        return;
    }
    atomic_fetch_add_explicit(&hlr__gemm_flops, 2 * M * N * K, memory_order_relaxed);
    int threads = hlr__pool_threads();
    if (threads < 2 || M * N * K < SPLIT_MIN_MACS) {
        hlrk_gemm_rows(M, N, K, A, lda, B, ldb, C, ldc, 0);
        return;
    }
    int64_t block = (N + threads - 1) / threads;
    block = (block + 3) / 4 * 4; /* whole blocks of 4 columns */
    rows_job j = {M, N, K, lda, ldb, ldc, block, A, B, C};
    hlr__parallel_for((N + block - 1) / block, 1, rows_part, &j);
}

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
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

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

void hlrk_gemm_count(int64_t M, int64_t N, int64_t K)
{
    atomic_fetch_add_explicit(&hlr__gemm_flops, 2 * M * N * K, memory_order_relaxed);
}

static void sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    hlrk_gemm_count(M, N, K);
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
    hlrk_gemm_count(M, N, K);
    int threads = hlr__pool_threads();
    /* one row (a dense layer's single image on AVX-512, hlrk_gemm_rows_min) is shared from a quarter */
    if (threads < 2 || M * N * K < (M == 1 ? SPLIT_MIN_MACS / 4 : SPLIT_MIN_MACS)) {
        hlrk_gemm_rows(M, N, K, A, lda, B, ldb, C, ldc, 0);
        return;
    }
    int64_t block = (N + threads - 1) / threads;
    block = (block + 3) / 4 * 4; /* whole blocks of 4 columns */
    rows_job j = {M, N, K, lda, ldb, ldc, block, A, B, C};
    hlr__parallel_for((N + block - 1) / block, 1, rows_part, &j);
}

typedef struct packed_job {
    int split_rows;
    int64_t M, N, K, ldx, ldy, block;
    const float *X, *P, *bias;
    float *Y;
    int relu, add;
} packed_job;

static void packed_part(void *ctx, int64_t b, int64_t e)
{
    const packed_job *j = ctx;
    int64_t lo = b * j->block, hi = e * j->block;
    if (j->split_rows) {
        hi = hi < j->M ? hi : j->M;
        hlrk_gemm_packed(hi - lo, j->N, j->K, j->X + lo * j->ldx, j->ldx, j->P, j->Y + lo * j->ldy, j->ldy, j->bias,
                         j->relu, j->add);
    } else { /* whole panels: panel c / HLRK_PACK_PANEL starts c K floats into P */
        hi = hi < j->N ? hi : j->N;
        hlrk_gemm_packed(j->M, hi - lo, j->K, j->X, j->ldx, j->P + lo * j->K, j->Y + lo, j->ldy,
                         j->bias ? j->bias + lo : NULL, j->relu, j->add);
    }
}

/* Rows are shared while each thread gets at least PACKED_MIN_ROWS of them (every thread reads all of P,
 * from its own cache); fewer rows, and each thread takes its panels of columns, copying all of X's rows. */
#define PACKED_MIN_ROWS 24

void hlrk_gemm_packed_split(int64_t M, int64_t N, int64_t K, const float *X, int64_t ldx, const float *P, float *Y,
                            int64_t ldy, const float *bias, int relu, int add)
{
    hlrk_gemm_count(M, N, K);
    int threads = hlr__pool_threads();
    if (threads < 2 || M * N * K < SPLIT_MIN_MACS) {
        hlrk_gemm_packed(M, N, K, X, ldx, P, Y, ldy, bias, relu, add);
        return;
    }
    packed_job j = {M >= PACKED_MIN_ROWS * threads, M, N, K, ldx, ldy, 0, X, P, bias, Y, relu, add};
    int64_t side = j.split_rows ? M : N, align = j.split_rows ? 4 : HLRK_PACK_PANEL; /* 4: rows even on 2 threads */
    int64_t block = (side + threads - 1) / threads;
    j.block = (block + align - 1) / align * align;
    hlr__parallel_for((side + j.block - 1) / j.block, 1, packed_part, &j);
}

/*
 * Where C's rows (row-major, neither operand transposed) may be cut so that each row keeps the bits it
 * has in the whole product: OpenBLAS computes C in tiles, and a tile of fewer rows can round otherwise.
 * Which cuts keep the bits depends on OpenBLAS's kernel, so it is measured once: the smallest a of
 * ROW_ALIGNS whose cuts (in two at each multiple of a, and into parts of a rows) give two products'
 * bits exactly, a 48-row one and a 36-row one.  OpenBLAS 0.3.21's SkylakeX and Cooperlake kernels: 4;
 * Haswell and Zen (what AMD's Zen CPUs get): 12, where the convolutions' channel groups cut at 4 had
 * changed a channel's bits.  It is not a guarantee for every shape: OpenBLAS takes other paths for
 * some sizes (its small-matrix kernels): a 96 x 100 x 288 product cut at 4 rows on SkylakeX rounds
 * some rows otherwise.
 */
static const int ROW_ALIGNS[] = {4, 8, 12, 16, 24, 48}; /* multiples of 4, as kernels.h promises */
enum { PROBE_M = 48, PROBE_N = 49, PROBE_K = 37 };
static int row_align = 48;
static pthread_once_t row_align_once = PTHREAD_ONCE_INIT;

static float probe_a[PROBE_M * PROBE_K], probe_b[PROBE_K * PROBE_N], probe_c[PROBE_M * PROBE_N],
    probe_d[PROBE_M * PROBE_N];

/* Rows [r0, r1) of the probe's M x N x K product into out's same rows. */
static void probe_rows(int64_t r0, int64_t r1, int64_t N, int64_t K, float *out)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)(r1 - r0), (blasint)N, (blasint)K, 1.0f,
                probe_a + r0 * K, (blasint)K, probe_b, (blasint)N, 0.0f, out + r0 * N, (blasint)N);
}

/* Whether cutting an M-row product at multiples of a keeps its bits: into parts of a rows, and in two
 * at each multiple. */
static int cuts_keep_bits(int64_t M, int64_t N, int64_t K, int64_t a)
{
    const size_t bytes = (size_t)(M * N) * sizeof(float);
    probe_rows(0, M, N, K, probe_c);
    for (int64_t r = 0; r < M; r += a)
        probe_rows(r, r + a < M ? r + a : M, N, K, probe_d);
    if (memcmp(probe_c, probe_d, bytes) != 0)
        return 0;
    for (int64_t cut = a; cut < M; cut += a) {
        probe_rows(0, cut, N, K, probe_d);
        probe_rows(cut, M, N, K, probe_d);
        if (memcmp(probe_c, probe_d, bytes) != 0)
            return 0;
    }
    return 1;
}

static void probe_row_align(void)
{
    uint32_t s = 12345;
    for (int i = 0; i < PROBE_M * PROBE_K; i++)
        probe_a[i] = (float)((s = s * 1103515245u + 12345u) >> 9) / (float)(1u << 23) - 0.5f;
    for (int i = 0; i < PROBE_K * PROBE_N; i++)
        probe_b[i] = (float)((s = s * 1103515245u + 12345u) >> 9) / (float)(1u << 23) - 0.5f;
    for (size_t i = 0; i < sizeof ROW_ALIGNS / sizeof ROW_ALIGNS[0]; i++)
        if (cuts_keep_bits(PROBE_M, PROBE_N, PROBE_K, ROW_ALIGNS[i]) &&
            cuts_keep_bits(36, 16, 32, ROW_ALIGNS[i])) {
            row_align = ROW_ALIGNS[i];
            return;
        }
}

int hlrk_gemm_row_align(void)
{
    pthread_once(&row_align_once, probe_row_align);
    return row_align;
}

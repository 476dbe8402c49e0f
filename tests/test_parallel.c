/*
 * test_parallel.c -- the thread pool under the conditions that once broke
 * it (issue 23): more threads than cores, jobs with fewer parts than threads,
 * and pauses long enough for the workers to fall asleep between jobs.  A
 * worker that sat out one job must not run a part of the next one twice, and
 * hlr__parallel_for must not return before every part of its job has run.
 * `make tsan` runs this case under ThreadSanitizer.
 */
#include "kernels/kernels.h"
#include "testutil_internal.h"

#include <stdatomic.h>
#include <unistd.h>

Suite *suite_parallel(void);

/* A job whose context lives on its caller's stack, as the library's do. */
typedef struct count_job {
    int64_t n;
    int count[8]; /* each index's runs; each part writes only its own indices */
    int magic;
} count_job;

static _Atomic int dead_frames; /* parts that found their context overwritten */

static void count_part(void *ctx, int64_t b, int64_t e)
{
    count_job *j = ctx;
    if (j->magic != 0x5eed) { /* a late worker reading a dead frame (no ck_assert off the main thread) */
        atomic_fetch_add(&dead_frames, 1);
        return;
    }
    for (int64_t i = b; i < e; i++) {
        volatile float work = 0.0f; /* some microseconds, as a small element-wise kernel takes */
        for (int k = 0; k < 20000; k++)
            work += 1.0f;
        j->count[i] += work > 0.0f;
    }
}

/* Run one job of n one-index parts; return how many indices did not run exactly once. */
static __attribute__((noinline)) int run_count_job(int64_t n)
{
    count_job j = {.n = n, .magic = 0x5eed};
    hlr__parallel_for(n, 1, count_part, &j);
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += j.count[i] != 1;
    j.magic = 0; /* what a reused frame would hold */
    return bad;
}

/* Overwrite 16 KB of the stack below the caller, where run_count_job's frame was. */
static __attribute__((noinline)) void scribble_stack(void)
{
    volatile unsigned char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 131u);
}

START_TEST(test_pool_parts_run_once)
{
    int threads = hlr_get_num_threads();
    ck_assert_ok(hlr_set_num_threads(6)); /* more threads than this machine's cores */
    ck_assert_int_eq(hlr__pool_threads(), 6);
    int bad = 0;
    for (int k = 0; k < 300; k++) {
        /* After a pause the workers sleep; a job of 2 parts wakes them all, and
         * the job of 6 parts right after it starts while most are still waking. */
        usleep(2000);
        for (int64_t n = 2; n <= 6; n += 4) {
            bad += run_count_job(n);
            scribble_stack();
        }
    }
    ck_assert_msg(bad == 0, "%d indices ran other than once", bad);
    ck_assert_msg(atomic_load(&dead_frames) == 0, "%d parts ran on a finished job's context", atomic_load(&dead_frames));
    ck_assert_ok(hlr_set_num_threads(threads));
}
END_TEST

/*
 * A team (hlr__parallel_team) and its barrier: every part writes its slot for a phase, meets the others
 * at the barrier, and must then see every part's slot of that phase; 2 000 phases, with more threads
 * than cores (parts descheduled while others wait) and a pause first, so that the workers sleep.  Each
 * part runs once with the team's part count; a team asked for inside another job's part, or on one
 * thread, is the caller alone.
 */
typedef struct team_job {
    hlr_barrier bar;
    _Atomic int runs[8], stale, parts_seen;
    _Atomic int slot[8];
} team_job;

enum { PHASES = 2000 };

static void team_phases(void *ctx, int part, int parts)
{
    team_job *t = ctx;
    atomic_fetch_add(&t->runs[part], 1);
    atomic_store(&t->parts_seen, parts);
    for (int ph = 1; ph <= PHASES; ph++) {
        atomic_store_explicit(&t->slot[part], ph, memory_order_relaxed);
        hlr__barrier_wait(&t->bar, parts);
        for (int q = 0; q < parts; q++)
            if (atomic_load_explicit(&t->slot[q], memory_order_relaxed) != ph)
                atomic_fetch_add(&t->stale, 1);
        hlr__barrier_wait(&t->bar, parts); /* nobody writes the next phase before all have read this one */
    }
}

static void team_inside_a_part(void *ctx, int64_t b, int64_t e)
{
    if (b == 0 && e > 0)
        hlr__parallel_team(4, team_phases, ctx);
}

START_TEST(test_team_parts_meet_at_the_barrier)
{
    const int threads = hlr_get_num_threads();
    static const int counts[] = {4, 2, 1};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        ck_assert_ok(hlr_set_num_threads(counts[c]));
        usleep(5000);
        team_job t = {0};
        hlr__parallel_team(8, team_phases, &t);
        const int parts = atomic_load(&t.parts_seen);
        ck_assert_int_eq(parts, counts[c]);
        for (int q = 0; q < 8; q++)
            ck_assert_int_eq(atomic_load(&t.runs[q]), q < parts);
        ck_assert_msg(atomic_load(&t.stale) == 0, "%d threads: %d stale slots after the barrier", counts[c],
                      atomic_load(&t.stale));
    }
    ck_assert_ok(hlr_set_num_threads(2));
    team_job t = {0};
    hlr__parallel_for(2, 1, team_inside_a_part, &t); /* the team inside a part is its caller alone */
    ck_assert_int_eq(atomic_load(&t.parts_seen), 1);
    ck_assert_int_eq(atomic_load(&t.runs[0]), 1);
    ck_assert_int_eq(atomic_load(&t.stale), 0);
    ck_assert_ok(hlr_set_num_threads(threads));
}
END_TEST

/*
 * One sequence through an LSTM and a GRU of 128 units on two threads: the team shares each step's units
 * and meets at a barrier between steps (rnn.h, rnn_by_units); the outputs have the bits of one thread's.
 * Under `make tsan` a step that read the state before the other part had written it would be a race.
 */
START_TEST(test_one_sequence_shared_by_units_has_one_threads_bits)
{
    enum { T = 24, F = 16, H = 128 };
    const int threads = hlr_get_num_threads();
    for (int cell = 0; cell < 2; cell++) {
        hlr_model *m = TEST_MODEL(5, cell ? hlr_gru(F, H, 1, HLR_RETURN_SEQUENCES, 0.0f)
                                          : hlr_lstm(F, H, 1, HLR_RETURN_SEQUENCES, 0.0f));
        ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){T, F}));
        hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, F});
        hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, H});
        hlr_tensor *y2 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, H});
        ck_assert(x && y1 && y2);
        test_fill(hlr_tensor_f32(x), T * F, 23, -1.0f, 1.0f);
        ck_assert_ok(hlr_set_num_threads(1));
        ck_assert_ok(hlr_model_forward(m, x, y1, 0));
        ck_assert_ok(hlr_set_num_threads(2));
        for (int round = 0; round < 20; round++) {
            ck_assert_ok(hlr_model_forward(m, x, y2, 0));
            ck_assert_msg(memcmp(hlr_tensor_f32(y1), hlr_tensor_f32(y2), (size_t)(T * H) * sizeof(float)) == 0,
                          "%s, round %d: two threads differ from one", cell ? "gru" : "lstm", round);
        }
        hlr_tensor_free(x);
        hlr_tensor_free(y1);
        hlr_tensor_free(y2);
        hlr_model_free(m);
    }
    ck_assert_ok(hlr_set_num_threads(threads));
}
END_TEST

/*
 * The reproduction from the issue: element-wise Adam steps on a model whose
 * tensors split into 1, 2 and 4 parts, with pauses and stack scribbles
 * between the steps, give the same bits at 4 threads as at 1.
 */
static hlr_model *wide_model(void)
{
    hlr_layer *layers[] = {hlr_dense(2, 16384, 1), hlr_dense(16384, 32, 1)};
    hlr_model *m = test_model_of(7, layers, 2);
    int64_t in[] = {2};
    ck_assert_ok(hlr_model_build(m, 1, in));
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            hlr_tensor *g = hlr_layer_grad(l, hlr_layer_param_name(l, p));
            ck_assert_ptr_nonnull(g);
            test_fill(hlr_tensor_data(g), (long)hlr_tensor_numel(g), 100 + 10 * i + p, -1.0f, 1.0f);
        }
    }
    return m;
}

static void adam_steps(hlr_model *m, int steps, int pause_us)
{
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);
    for (int s = 0; s < steps; s++) {
        ck_assert_ok(hlr_optimizer_step(o, m));
        scribble_stack();
        if (pause_us)
            usleep((useconds_t)pause_us);
    }
    hlr_optimizer_free(o);
}

START_TEST(test_pool_adam_pauses_same_bits)
{
    int threads = hlr_get_num_threads();
    ck_assert_ok(hlr_set_num_threads(1));
    hlr_model *one = wide_model();
    adam_steps(one, 300, 0);
    ck_assert_ok(hlr_set_num_threads(4));
    hlr_model *four = wide_model();
    adam_steps(four, 300, 10000);
    for (int i = 0; i < 2; i++) {
        hlr_layer *a = hlr_model_layer(one, i), *b = hlr_model_layer(four, i);
        for (int p = 0; p < hlr_layer_param_count(a); p++) {
            const char *name = hlr_layer_param_name(a, p);
            hlr_tensor *ta = hlr_layer_param(a, name), *tb = hlr_layer_param(b, name);
            int64_t n = hlr_tensor_numel(ta), differ = 0;
            for (int64_t e = 0; e < n; e++)
                differ += memcmp(hlr_tensor_f32(ta) + e, hlr_tensor_f32(tb) + e, sizeof(float)) != 0;
            ck_assert_msg(differ == 0, "layer %d %s: %lld of %lld values differ between 1 and 4 threads", i, name,
                          (long long)differ, (long long)n);
        }
    }
    hlr_model_free(one);
    hlr_model_free(four);
    ck_assert_ok(hlr_set_num_threads(threads));
}
END_TEST

/*
 * hlrk_gemm with one row of C takes cblas_sgemv, the other shapes sgemm:
 * each transpose of A and B, alpha and beta, strides wider than the rows,
 * a product small enough for one thread and one large enough to be split
 * by columns, against a double-precision sum.
 */
START_TEST(test_gemm_one_row_and_many_agree_with_a_plain_sum)
{
    enum { PAD = 3 };
    const int64_t shapes[][3] = {{1, 5, 7}, {1, 300, 1000}, {3, 5, 7}, {2, 300, 1000}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                const int64_t lda = (ta ? M : K) + PAD, ldb = (tb ? K : N) + PAD, ldc = N + PAD;
                float *A = malloc((size_t)((ta ? K : M) * lda) * sizeof *A);
                float *B = malloc((size_t)((tb ? N : K) * ldb) * sizeof *B);
                float *C = malloc((size_t)(M * ldc) * sizeof *C);
                ck_assert(A && B && C);
                test_fill(A, (ta ? K : M) * lda, 3, -1.0f, 1.0f);
                test_fill(B, (tb ? N : K) * ldb, 4, -1.0f, 1.0f);
                test_fill(C, M * ldc, 5, -1.0f, 1.0f);
                float *C0 = malloc((size_t)(M * ldc) * sizeof *C0);
                ck_assert(C0);
                memcpy(C0, C, (size_t)(M * ldc) * sizeof *C);
                hlrk_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, ldc);
                for (int64_t i = 0; i < M; i++) {
                    for (int64_t j = 0; j < N; j++) {
                        double want = 0, mag = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double a = ta ? A[k * lda + i] : A[i * lda + k], b = tb ? B[j * ldb + k] : B[k * ldb + j];
                            want += a * b;
                            mag += fabs(a * b);
                        }
                        want = 0.5 * want + 2.0 * C0[i * ldc + j];
                        ck_assert_msg(fabs(C[i * ldc + j] - want) <= 1e-6 * (mag + fabs(want)),
                                      "M %d N %d K %d trans %d %d: C[%d][%d] = %.9g, expected %.9g", (int)M, (int)N,
                                      (int)K, ta, tb, (int)i, (int)j, (double)C[i * ldc + j], want);
                    }
                    for (int64_t j = N; j < ldc; j++) /* the padding is left alone */
                        ck_assert(memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof *C) == 0);
                }
                free(A);
                free(B);
                free(C);
                free(C0);
            }
}
END_TEST

/*
 * hlrk_gemm_rows (a few rows of A times B^T, B read in place): 1 to 16 rows, K with and without a tail
 * past a multiple of 16, N with a tail past a multiple of 4, strides wider than the rows, against a
 * double-precision sum; computed whole, in two column parts split at several points, and through
 * hlrk_gemm_rows_split on 1 and 2 threads (600 columns: split between them), the same bits each way; and
 * added to C (add 1), each sum's addition the same as adding the product afterwards.
 */
START_TEST(test_gemm_rows_agree_with_a_plain_sum_and_with_themselves_split)
{
    enum { PAD = 5 };
    const int64_t Ks[] = {3, 16, 37, 448};
    const int threads = hlr_get_num_threads();
    for (int64_t M = 1; M <= HLRK_ROWS_MAX; M += (M < 8 ? 1 : 4))
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            /* 600 columns for K 448: a product large enough to be shared among threads */
            const int64_t K = Ks[ki], N = K == 448 ? 600 : 23, lda = K + PAD, ldb = K + PAD, ldc = N + PAD;
            float *A = malloc((size_t)(M * lda) * sizeof *A), *B = malloc((size_t)(N * ldb) * sizeof *B);
            float *C = malloc((size_t)(M * ldc) * sizeof *C), *D = malloc((size_t)(M * ldc) * sizeof *D);
            ck_assert(A && B && C && D);
            test_fill(A, M * lda, 7, -1.0f, 1.0f);
            test_fill(B, N * ldb, 8, -1.0f, 1.0f);
            test_fill(C, M * ldc, 9, -1.0f, 1.0f);
            memcpy(D, C, (size_t)(M * ldc) * sizeof *C);
            double *tol = malloc((size_t)(M * N) * sizeof *tol);
            ck_assert(tol);
            hlrk_gemm_rows(M, N, K, A, lda, B, ldb, C, ldc, 0);
            for (int64_t i = 0; i < M; i++) {
                for (int64_t j = 0; j < N; j++) {
                    double want = 0, mag = 0;
                    for (int64_t k = 0; k < K; k++) {
                        want += (double)A[i * lda + k] * B[j * ldb + k];
                        mag += fabs((double)A[i * lda + k] * B[j * ldb + k]);
                    }
                    tol[i * N + j] = 1e-6 * (mag + fabs(want));
                    ck_assert_msg(fabs(C[i * ldc + j] - want) <= tol[i * N + j],
                                  "M %d K %d: C[%d][%d] = %.9g, expected %.9g", (int)M, (int)K, (int)i, (int)j,
                                  (double)C[i * ldc + j], want);
                }
                for (int64_t j = N; j < ldc; j++) /* the padding is left alone */
                    ck_assert(memcmp(&C[i * ldc + j], &D[i * ldc + j], sizeof *C) == 0);
            }
            /* add: each sum added to what C held, the same float additions as adding it afterwards */
            float *E = malloc((size_t)(M * ldc) * sizeof *E), *E0 = malloc((size_t)(M * ldc) * sizeof *E0);
            ck_assert(E && E0);
            test_fill(E0, M * ldc, 10, -1.0f, 1.0f);
            memcpy(E, E0, (size_t)(M * ldc) * sizeof *E);
            hlrk_gemm_rows(M, N, K, A, lda, B, ldb, E, ldc, 1);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < ldc; j++) {
                    const float want = j < N ? E0[i * ldc + j] + C[i * ldc + j] : E0[i * ldc + j];
                    ck_assert_msg(memcmp(&E[i * ldc + j], &want, sizeof want) == 0, "M %d K %d: add, C[%d][%d]",
                                  (int)M, (int)K, (int)i, (int)j);
                }
            free(E);
            free(E0);
            const int64_t cuts[] = {1, 2, 3, 4, 5, 7, 8, 9, N / 2, N - 1};
            for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) { /* columns [0, cut) and [cut, N) apart */
                const int64_t cut = cuts[ci];
                hlrk_gemm_rows(M, cut, K, A, lda, B, ldb, D, ldc, 0);
                hlrk_gemm_rows(M, N - cut, K, A, lda, B + cut * ldb, ldb, D + cut, ldc, 0);
                ck_assert_msg(memcmp(C, D, (size_t)(M * ldc) * sizeof *C) == 0, "M %d K %d: split at %d differs",
                              (int)M, (int)K, (int)cut);
            }
            for (int t = 1; t <= 2; t++) {
                ck_assert_ok(hlr_set_num_threads(t));
                memset(D, 0, (size_t)(M * ldc) * sizeof *D);
                hlrk_gemm_rows_split(M, N, K, A, lda, B, ldb, D, ldc);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        if (M <= hlrk_gemm_rows_max()) /* the kernel itself: its bits */
                            ck_assert(memcmp(&C[i * ldc + j], &D[i * ldc + j], sizeof *C) == 0);
                        else /* sgemm instead: within twice the kernel's bound of each other */
                            ck_assert(fabs(C[i * ldc + j] - D[i * ldc + j]) <= 2 * tol[i * N + j]);
            }
            ck_assert_ok(hlr_set_num_threads(threads));
            free(tol);
            free(A);
            free(B);
            free(C);
            free(D);
        }
}
END_TEST

/*
 * hlrk_wino_products: each element of M[xi] one chain of multiply-adds over Cin in order, from zero, fused
 * in the FMA clones (one rounding each, as fmaf) and unfused in a build without clones (ASan's): the same
 * chain for every column count (each branch of its column groups, and the most it takes), row count (blocks of
 * 4, 6 and 8 and the rows left over) and first row (a thread's channel group, Ut offset to it), so its
 * bits are those of a whole sample's pass.  The columns past T are written, the padding of M past ldm
 * is not.
 */
START_TEST(test_winograd_products_are_one_chain_per_element)
{
    ck_assert(!hlrk_wino_small(HLRK_WINO_SMALL_T + 1));
    if (!hlrk_wino_small(1)) { /* a CPU without FMA: sgemm instead, for every count */
        ck_assert(!hlrk_wino_small(16));
        return;
    }
    const int64_t Ts[] = {1,  7,  8,  9,  16, 17, 24, 25, 32, 33, 40,
                          41, 47, 48, 49, 56, 57, 64, 97, 196, HLRK_WINO_SMALL_T};
    const int64_t co = 21, cis[] = {1, 5, 32};
    for (size_t a = 0; a < sizeof cis / sizeof cis[0]; a++)
        for (size_t b = 0; b < sizeof Ts / sizeof Ts[0]; b++) {
            const int64_t ci = cis[a], T = Ts[b], ld = hlrk_wino_small_ld(T) + 8; /* 8 more: M's padding */
            float *U = malloc((size_t)(16 * co * ci) * sizeof *U), *Ut = malloc((size_t)(16 * co * ci) * sizeof *Ut);
            float *V = malloc((size_t)(16 * ci * ld) * sizeof *V), *M = malloc((size_t)(16 * co * ld) * sizeof *M);
            ck_assert(U && Ut && V && M);
            test_fill(U, 16 * co * ci, 11, -1.0f, 1.0f);
            test_fill(V, 16 * ci * ld, 12, -1.0f, 1.0f);
            hlrk_wino_transpose(Ut, U, co, ci);
            const int64_t firsts[] = {0, 4, 13}; /* all 21 rows, rows 4..20 and 13..20 (8, one block of 8) */
            for (size_t f = 0; f < sizeof firsts / sizeof firsts[0]; f++) {
                const int64_t c0 = firsts[f], cn = co - c0;
                for (int64_t i = 0; i < 16 * co * ld; i++)
                    M[i] = -77.0f;
                hlrk_wino_products(M, ld, Ut + c0, co, V, ld, cn, ci, T);
                int fused = 1, plain = 1;
                for (int xi = 0; xi < 16; xi++)
                    for (int64_t r = 0; r < cn; r++) {
                        for (int64_t t = 0; t < T; t++) {
                            float s = 0.0f, p = 0.0f;
                            for (int64_t k = 0; k < ci; k++) {
                                const float u = U[(xi * co + c0 + r) * ci + k], v = V[(xi * ci + k) * ld + t];
                                s = fmaf(u, v, s);
                                volatile float uv = u * v; /* rounded before the add */
                                p = p + uv;
                            }
                            const float got = M[(xi * cn + r) * ld + t];
                            fused &= memcmp(&got, &s, sizeof s) == 0;
                            plain &= memcmp(&got, &p, sizeof p) == 0;
                        }
                        for (int64_t t = hlrk_wino_small_ld(T); t < ld; t++)
                            ck_assert_msg(M[(xi * cn + r) * ld + t] == -77.0f, "T %d: M written past its columns",
                                          (int)T);
                    }
                ck_assert_msg(fused || plain, "Cin %d, T %d, rows from %d: not one chain per element", (int)ci, (int)T,
                              (int)c0);
            }
            free(U);
            free(Ut);
            free(V);
            free(M);
        }
}
END_TEST

/*
 * hlrk_gemm_packed (a dense layer's inference past hlrk_gemm_rows_max() rows): each element of Y one chain of
 * multiply-adds over k in order from zero (fused in the FMA clones, unfused without clones, as the Winograd
 * products), kept in Y across the blocks of HLRK_PACK_KC steps, then the bias added and the ReLU's test
 * (NaN and -0 kept), or with add from what Y held: for row counts reaching every block size of both paths and the rows left over,
 * column counts around the 16-column panels (partial panels, leftover panels), K across one and two
 * blocks of steps; nothing written past N; hlrk_pack_weights pads its last panel with zeros.  The
 * threads' split (rows, or for few rows panels of columns) gives the same bits on 1 and 2 threads.
 */
START_TEST(test_packed_products_are_one_chain_per_element)
{
    const int64_t Ms[] = {1, 2, 3, 5, 6, 7, 11, 12, 13, 17, 23, 37, 60}, Ns[] = {1, 15, 16, 17, 40, 100, 130};
    const int64_t Ks[] = {1, 9, HLRK_PACK_KC, HLRK_PACK_KC + 3, 2 * HLRK_PACK_KC + 1};
    enum { PAD = 3 };
    const int threads = hlr_get_num_threads();
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++) {
            const int64_t K = Ks[ki], N = Ns[ni], M = 60, ldx = K + PAD, ldy = N + PAD;
            const int64_t np = hlrk_packed_floats(N, K);
            ck_assert_int_eq(np, (N + HLRK_PACK_PANEL - 1) / HLRK_PACK_PANEL * HLRK_PACK_PANEL * K);
            float *X = malloc((size_t)(M * ldx) * sizeof *X), *W = malloc((size_t)(N * K) * sizeof *W);
            float *P = malloc((size_t)np * sizeof *P), *b = malloc((size_t)N * sizeof *b);
            float *Y = malloc((size_t)(M * ldy) * sizeof *Y), *Z = malloc((size_t)(M * ldy) * sizeof *Z);
            float *Y0 = malloc((size_t)(M * ldy) * sizeof *Y0);
            ck_assert(X && W && P && b && Y && Z && Y0);
            test_fill(Y0, M * ldy, 24, -1.0f, 1.0f);
            test_fill(X, M * ldx, 21, -1.0f, 1.0f);
            test_fill(W, N * K, 22, -1.0f, 1.0f);
            test_fill(b, N, 23, -1.0f, 1.0f);
            X[2 * ldx] = NAN; /* row 2's outputs all NaN: the ReLU keeps them */
            for (int64_t i = 0; i < np; i++)
                P[i] = -5.0f;
            hlrk_pack_weights(P, W, N, K);
            for (int64_t c = 0; c < np / K; c++) /* panel c / 16, k's 16 values side by side */
                for (int64_t k = 0; k < K; k++)
                    ck_assert(P[(c / 16) * 16 * K + k * 16 + c % 16] == (c < N ? W[c * K + k] : 0.0f));
            for (int variant = 0; variant < 4; variant++) { /* plain, bias, bias and ReLU, add */
                const float *bias = variant == 1 || variant == 2 ? b : NULL;
                const int relu = variant == 2, add = variant == 3;
                for (size_t mi = 0; mi < 2 * sizeof Ms / sizeof Ms[0]; mi++) {
                    const int64_t m = Ms[mi / 2];
                    hlrk_width_for_tests = mi % 2 ? 8 : 16; /* both paths' blocks, in the clone that runs */
                    memcpy(Y, Y0, (size_t)(M * ldy) * sizeof *Y);
                    hlrk_gemm_packed(m, N, K, X, ldx, P, Y, ldy, bias, relu, add);
                    int fused = 1, plain = 1;
                    for (int64_t i = 0; i < m; i++) {
                        for (int64_t j = 0; j < N; j++) {
                            float s = add ? Y0[i * ldy + j] : 0.0f, q = s;
                            for (int64_t k = 0; k < K; k++) {
                                const float x = X[i * ldx + k], w = W[j * K + k];
                                s = fmaf(x, w, s);
                                volatile float xw = x * w; /* rounded before the add */
                                q = q + xw;
                            }
                            if (bias) {
                                s += bias[j];
                                q += bias[j];
                            }
                            if (relu) {
                                s = s < 0.0f ? 0.0f : s;
                                q = q < 0.0f ? 0.0f : q;
                            }
                            const float got = Y[i * ldy + j];
                            if (isnan(s) || isnan(got)) { /* row 2: a NaN whatever its bits */
                                ck_assert_msg(isnan(s) && isnan(got), "M %d N %d K %d: Y[%d][%d] NaN", (int)m, (int)N,
                                              (int)K, (int)i, (int)j);
                                continue;
                            }
                            fused &= memcmp(&got, &s, sizeof s) == 0;
                            plain &= memcmp(&got, &q, sizeof q) == 0;
                        }
                        for (int64_t j = N; j < ldy; j++)
                            ck_assert_msg(Y[i * ldy + j] == Y0[i * ldy + j], "N %d: Y written past its columns", (int)N);
                    }
                    for (int64_t i = m * ldy; i < M * ldy; i++)
                        ck_assert_msg(Y[i] == Y0[i], "M %d: Y written past its rows", (int)m);
                    ck_assert_msg(fused || plain, "M %d N %d K %d variant %d width %d: not one chain per element",
                                  (int)m, (int)N, (int)K, variant, hlrk_width_for_tests);
                }
                hlrk_width_for_tests = 0;
                /* the split among threads: 60 rows by rows, 20 by panels of columns (two threads) */
                for (int64_t m = 20; m <= 60; m += 40) {
                    memcpy(Y, Y0, (size_t)(M * ldy) * sizeof *Y);
                    hlrk_gemm_packed(m, N, K, X, ldx, P, Y, ldy, bias, relu, add);
                    for (int t = 1; t <= 2; t++) {
                        ck_assert_ok(hlr_set_num_threads(t));
                        memcpy(Z, Y0, (size_t)(M * ldy) * sizeof *Y);
                        hlrk_gemm_packed_split(m, N, K, X, ldx, P, Z, ldy, bias, relu, add);
                        ck_assert_msg(memcmp(Y, Z, (size_t)(M * ldy) * sizeof *Y) == 0,
                                      "M %d N %d K %d on %d threads: other bits", (int)m, (int)N, (int)K, t);
                    }
                    ck_assert_ok(hlr_set_num_threads(threads));
                }
            }
            free(X);
            free(W);
            free(P);
            free(b);
            free(Y);
            free(Z);
            free(Y0);
        }
}
END_TEST

/*
 * hlrk_wino_output_pooled (inference with a fused 2 x 2 pooling) against the output it replaces, the
 * full map in split rows then hlrk_maxpool2x2_win: the same bits, with and without bias and ReLU, and
 * where M holds infinities and NaNs, so that some windows hold a NaN among finite values (the pooling
 * keeps a window's last NaN, where a scan for the largest would keep the first value).  A NaN is compared as a NaN
 * (which NaN an add returns may depend on its operands' order).
 */
START_TEST(test_pooled_winograd_output_is_the_output_then_the_pooling)
{
    const hlrk_conv_geom g = {.C = 1, .C_stride = 1, .H = 6, .W = 8, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
                              .dil = 1, .Ho = 6, .Wo = 8};
    const int64_t cout = 3, T = hlrk_wino_tiles(&g), ldm = T + 5, n = 16 * cout * ldm, P = g.Ho * g.Wo;
    float *M = malloc((size_t)n * sizeof *M), *full = malloc((size_t)(cout * P + 64) * sizeof *full);
    float *want = malloc((size_t)(cout * P / 4) * sizeof *want), *got = malloc((size_t)(cout * P / 4) * sizeof *got);
    float *scratch = malloc((size_t)hlrk_wino_scratch(&g) * sizeof *scratch);
    ck_assert(M && full && want && got && scratch);
    test_fill(M, n, 21, -1.0f, 1.0f);
    /* NaNs at grid points that reach some of a window's outputs and not its first: point 12 its third,
     * 13 its last two, 3 its second (M's point xi, channel k, tile t at (xi cout + k) ldm + t) */
    const uint32_t nans[] = {0x7fc00001u, 0xffc00002u, 0x7fc00003u};
    const int64_t at[] = {(12 * cout + 0) * ldm + 1, (13 * cout + 1) * ldm + 2, (3 * cout + 2) * ldm + 5};
    for (int i = 0; i < 3; i++)
        memcpy(&M[at[i]], &nans[i], sizeof nans[i]);
    M[(5 * cout + 0) * ldm + 4] = INFINITY;
    M[(6 * cout + 0) * ldm + 4] = INFINITY; /* inf - inf: a NaN the arithmetic makes, beside infinities */
    const float bias[] = {0.25f, -0.5f, 0.0f};
    for (int relu = 0; relu <= 1; relu++)
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            hlrk_wino_output(full, M, ldm, cout, with_bias ? bias : NULL, relu, 1, &g, scratch);
            hlrk_maxpool2x2_win(want, NULL, full, cout, g.Ho, g.Wo);
            hlrk_wino_output_pooled(got, M, ldm, cout, with_bias ? bias : NULL, relu, &g);
            int nan_windows = 0;
            for (int64_t i = 0; i < cout * P / 4; i++) {
                nan_windows += isnan(want[i]);
                ck_assert_msg(isnan(want[i]) ? isnan(got[i]) : memcmp(&got[i], &want[i], sizeof *got) == 0,
                              "relu %d, bias %d: window %d: %.9g, expected %.9g", relu, with_bias, (int)i,
                              (double)got[i], (double)want[i]);
            }
            ck_assert(nan_windows >= 3);
        }
    free(M);
    free(full);
    free(want);
    free(got);
    free(scratch);
}
END_TEST

/*
 * A large inference batch of per-sample layers runs a slice at a time
 * (model.c, hlr__model_infer): 16 samples a slice here, the first
 * convolution's output (with its ReLU; the pooling after it, 3x3 windows,
 * is a layer of its own) being 128 KB a sample, so 37 samples go as 16, 16
 * and 5; the batch norm is folded into the convolution before it.  Each row has the bits
 * of its sample run in a batch of its own slice, for 1 and 2 threads alike,
 * and those of the sample alone within the dense layer's rounding; predict
 * gives the rows' argmax.  A model with a recurrent layer is never sliced.
 */
START_TEST(test_a_large_inference_batch_runs_in_slices)
{
    const int64_t N = 37, D = 32 * 32, C = 5;
    hlr_model *m = hlr_model_new(5);
    ck_assert_ptr_nonnull(m);
    ck_assert_ok(hlr_model_add(m, hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1})));
    ck_assert_ok(hlr_model_add(m, hlr_relu()));
    ck_assert_ok(hlr_model_add(m, hlr_maxpool2d(3, 2, 1)));
    ck_assert_ok(hlr_model_add(m, hlr_conv2d(32, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1})));
    ck_assert_ok(hlr_model_add(m, hlr_batchnorm2d(4, 1e-5f, 0.1f)));
    ck_assert_ok(hlr_model_add(m, hlr_relu()));
    ck_assert_ok(hlr_model_add(m, hlr_flatten()));
    ck_assert_ok(hlr_model_add(m, hlr_dense(4 * 16 * 16, C, 1)));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 32, 32}));
    const int64_t S = hlr__model_infer_slice(m);
    ck_assert_int_eq(S, 16);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N, 1, 32, 32});
    hlr_tensor *y[2] = {hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, C}), hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, C})};
    ck_assert(x && y[0] && y[1]);
    test_fill(hlr_tensor_f32(x), N * D, 41, -1.0f, 1.0f);
    const int threads = hlr_get_num_threads();
    for (int t = 0; t < 2; t++) {
        ck_assert_ok(hlr_set_num_threads(t + 1));
        ck_assert_ok(hlr_model_forward(m, x, y[t], 0));
    }
    test_expect_same_bits("2 threads against 1", hlr_tensor_f32(y[1]), hlr_tensor_f32(y[0]), N * C);
    for (int64_t b = 0; b < N; b += S) {
        const int64_t nb = N - b < S ? N - b : S;
        hlr_tensor *xs = hlr_tensor_new(HLR_F32, 4, (int64_t[]){nb, 1, 32, 32});
        hlr_tensor *ys = hlr_tensor_new(HLR_F32, 2, (int64_t[]){nb, C});
        ck_assert(xs && ys);
        memcpy(hlr_tensor_f32(xs), hlr_tensor_f32(x) + b * D, (size_t)(nb * D) * sizeof(float));
        ck_assert_ok(hlr_model_forward(m, xs, ys, 0));
        test_expect_same_bits("a slice run alone", hlr_tensor_f32(y[1]) + b * C, hlr_tensor_f32(ys), nb * C);
        if (nb == 1 || b == S) { /* one sample alone: the dense layer may round otherwise */
            hlr_tensor *x1 = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, 32, 32}),
                       *y1 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, C});
            ck_assert(x1 && y1);
            memcpy(hlr_tensor_f32(x1), hlr_tensor_f32(xs), D * sizeof(float));
            ck_assert_ok(hlr_model_forward(m, x1, y1, 0));
            for (int64_t i = 0; i < C; i++) {
                const float a = hlr_tensor_f32(y1)[i], want = hlr_tensor_f32(y[1])[b * C + i];
                ck_assert_msg(fabsf(a - want) <= 1e-6f * (1.0f + fabsf(want)),
                              "sample %lld alone [%lld]: %.9g against %.9g", (long long)b, (long long)i, (double)a,
                              (double)want);
            }
            hlr_tensor_free(x1);
            hlr_tensor_free(y1);
        }
        hlr_tensor_free(xs);
        hlr_tensor_free(ys);
    }
    int32_t classes[37];
    ck_assert_ok(hlr_model_predict(m, x, classes, NULL));
    for (int64_t n = 0; n < N; n++) {
        const float *row = hlr_tensor_f32(y[1]) + n * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (row[c] > row[best])
                best = c;
        ck_assert_int_eq(classes[n], best);
    }
    ck_assert_ok(hlr_set_num_threads(threads));
    hlr_model *r = hlr_model_new(6);
    ck_assert_ptr_nonnull(r);
    ck_assert_ok(hlr_model_add(r, hlr_image_rows()));
    ck_assert_ok(hlr_model_add(r, hlr_lstm(32, 64, 1, 0, 0.0f)));
    ck_assert_ok(hlr_model_build(r, 3, (int64_t[]){1, 32, 32}));
    ck_assert(hlr__model_infer_slice(r) == INT64_MAX);
    hlr_model_free(r);
    hlr_tensor_free(x);
    hlr_tensor_free(y[0]);
    hlr_tensor_free(y[1]);
    hlr_model_free(m);
}
END_TEST

Suite *suite_parallel(void)
{
    Suite *s = suite_create("parallel");
    TCase *t = tcase_create("threads");
    tcase_set_timeout(t, 120); /* a few seconds; ThreadSanitizer is slower */
    tcase_add_test(t, test_pool_parts_run_once);
    tcase_add_test(t, test_pool_adam_pauses_same_bits);
    tcase_add_test(t, test_team_parts_meet_at_the_barrier);
    tcase_add_test(t, test_one_sequence_shared_by_units_has_one_threads_bits);
    tcase_add_test(t, test_gemm_one_row_and_many_agree_with_a_plain_sum);
    tcase_add_test(t, test_gemm_rows_agree_with_a_plain_sum_and_with_themselves_split);
    tcase_add_test(t, test_winograd_products_are_one_chain_per_element);
    tcase_add_test(t, test_packed_products_are_one_chain_per_element);
    tcase_add_test(t, test_pooled_winograd_output_is_the_output_then_the_pooling);
    tcase_add_test(t, test_a_large_inference_batch_runs_in_slices);
    suite_add_tcase(s, t);
    return s;
}

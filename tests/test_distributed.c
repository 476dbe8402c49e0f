/*
 * test_distributed.c -- data-parallel training (hlr_fit_options.distributed)
 * without MPI: N threads of this process play N processes, each with its
 * own model, joined by an hlr_distributed whose all-reduce and broadcast go
 * through shared memory and a barrier (rank 0 sums in rank order, so every
 * "process" gets the same bits, as MPI gives them).  tests/mpi/ runs the same
 * through libhlr-mpi and mpirun.
 */
#include "testutil_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

Suite *suite_distributed(void);

#define FEATURES TEST_RINGS_FEATURES
#define MAX_RANKS 4

typedef struct world {
    int size;
    pthread_barrier_t barrier;
    void *slot[MAX_RANKS]; /* each rank's buffer during a collective */
    double scratch[1 << 16];
    float scratch_f[1 << 16];
} world;

typedef struct member {
    world *w;
    int rank;
} member;

static hlr_status allreduce_f32(float *data, int64_t count, void *user)
{
    member *me = user;
    world *w = me->w;
    ck_assert_int_le(count, 1 << 16);
    w->slot[me->rank] = data;
    pthread_barrier_wait(&w->barrier);
    if (me->rank == 0)
        for (int64_t i = 0; i < count; i++) {
            float s = 0.0f;
            for (int r = 0; r < w->size; r++)
                s += ((float *)w->slot[r])[i];
            w->scratch_f[i] = s;
        }
    pthread_barrier_wait(&w->barrier);
    memcpy(data, w->scratch_f, (size_t)count * sizeof *data);
    pthread_barrier_wait(&w->barrier);
    return HLR_OK;
}

static hlr_status allreduce_f64(double *data, int64_t count, void *user)
{
    member *me = user;
    world *w = me->w;
    w->slot[me->rank] = data;
    pthread_barrier_wait(&w->barrier);
    if (me->rank == 0)
        for (int64_t i = 0; i < count; i++) {
            double s = 0.0;
            for (int r = 0; r < w->size; r++)
                s += ((double *)w->slot[r])[i];
            w->scratch[i] = s;
        }
    pthread_barrier_wait(&w->barrier);
    memcpy(data, w->scratch, (size_t)count * sizeof *data);
    pthread_barrier_wait(&w->barrier);
    return HLR_OK;
}

static hlr_status broadcast(void *data, int64_t bytes, void *user)
{
    member *me = user;
    world *w = me->w;
    w->slot[me->rank] = data;
    pthread_barrier_wait(&w->barrier);
    if (me->rank != 0)
        memcpy(data, w->slot[0], (size_t)bytes);
    pthread_barrier_wait(&w->barrier);
    return HLR_OK;
}

static hlr_model *mlp(uint64_t seed)
{
    hlr_layer *layers[] = {hlr_dense(FEATURES, 32, 1), hlr_relu(), hlr_dense(32, 4, 1)};
    hlr_model *m = test_model_of(seed, layers, 3);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){FEATURES}));
    return m;
}

/* The same with batch normalisation between the dense layers (the first without a bias, which batch
 * norm would cancel: its gradient is rounding noise, and Adam would follow the noise). */
static hlr_model *mlp_bn(uint64_t seed)
{
    hlr_layer *layers[] = {hlr_dense(FEATURES, 32, 0), hlr_batchnorm1d(32, 1e-5f, 0.1f), hlr_relu(),
                           hlr_dense(32, 4, 1)};
    hlr_model *m = test_model_of(seed, layers, 4);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){FEATURES}));
    return m;
}

/* A convolution, batch norm with its ReLU and 2x2 max pooling fused into it, on 1 x 8 x 8 images. */
static hlr_model *cnn_bn(uint64_t seed)
{
    hlr_layer *layers[] = {hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                           hlr_batchnorm2d(4, 1e-5f, 0.1f),
                           hlr_relu(),
                           hlr_maxpool2d(2, 2, 0),
                           hlr_flatten(),
                           hlr_dense(64, 4, 1)};
    hlr_model *m = test_model_of(seed, layers, 6);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    return m;
}

/* One "process" of a run: its model, options and results. */
typedef struct run {
    member me;
    hlr_distributed dist;
    const hlr_dataset *data;
    uint64_t seed;
    int batch, epochs, stop_rank;
    int bn, sync; /* batch norm in the model (1 dense, 2 convolutional); synchronised across the processes */
    double val_split;
    hlr_status status;
    hlr_epoch_stats ep[8];
    int nep;
    float *params;
    int64_t nparams;
} run;

static int record(const hlr_epoch_stats *s, void *user)
{
    run *r = user;
    r->ep[r->nep++ % 8] = *s;
    return r->me.rank == r->stop_rank && s->epoch == 1; /* this process asks to stop after epoch 1 */
}

static void *train(void *arg)
{
    run *r = arg;
    hlr_model *m = r->bn == 2 ? cnn_bn(r->seed) : r->bn ? mlp_bn(r->seed) : mlp(r->seed);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = r->epochs;
    fo.batch_size = r->batch;
    fo.validation_split = r->val_split;
    fo.on_epoch = record;
    fo.user = r;
    fo.distributed = r->dist.size > 0 ? &r->dist : NULL;
    r->status = hlr_model_fit(m, o, r->data, &fo);
    r->params = test_params_of(m, &r->nparams);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    return NULL;
}

/* size processes (threads) with the given per-process batch; size 0: one process, no hlr_distributed. */
static void run_world_bn(int size, int batch, const hlr_dataset *d, double val_split, int stop_rank, int bn,
                         int sync, run *runs)
{
    world *w = calloc(1, sizeof *w);
    w->size = size > 0 ? size : 1;
    pthread_barrier_init(&w->barrier, NULL, (unsigned)w->size);
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < w->size; r++) {
        runs[r] = (run){.me = {w, r}, .data = d, .seed = 100 + (uint64_t)r, /* seeds differ: the broadcast evens them */
                        .batch = batch, .epochs = 2, .stop_rank = stop_rank, .val_split = val_split, .bn = bn,
                        .sync = sync};
        if (size > 0)
            runs[r].dist = (hlr_distributed){.rank = r, .size = size, .allreduce_f32 = allreduce_f32,
                                             .allreduce_f64 = allreduce_f64, .broadcast = broadcast,
                                             .user = &runs[r].me, .sync_batchnorm = sync};
        else
            runs[r].seed = 100;
        ck_assert_int_eq(pthread_create(&th[r], NULL, train, &runs[r]), 0);
    }
    for (int r = 0; r < w->size; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&w->barrier);
    free(w);
}

static void run_world(int size, int batch, const hlr_dataset *d, double val_split, int stop_rank, run *runs)
{
    run_world_bn(size, batch, d, val_split, stop_rank, 0, 0, runs);
}

static double worst_relative(const float *a, const float *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double rel = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 1e-2);
        worst = rel > worst ? rel : worst;
    }
    return worst;
}

static void free_runs(run *runs, int n)
{
    for (int r = 0; r < n; r++)
        free(runs[r].params);
}

START_TEST(test_ranks_stay_identical_and_match_one_process_with_the_global_batch)
{
    hlr_set_num_threads(1);
    hlr_dataset *d = test_rings(512, 5);
    run one[1];
    run_world(0, 64, d, 0.25, -1, one); /* one process, batch 64 */
    ck_assert_ok(one[0].status);
    for (int size = 2; size <= 4; size += 2) {
        run runs[MAX_RANKS];
        run_world(size, 64 / size, d, 0.25, -1, runs); /* the same global batch of 64 */
        for (int r = 0; r < size; r++) {
            ck_assert_ok(runs[r].status);
            ck_assert_int_eq(runs[r].nparams, one[0].nparams);
            /* every process ends with the same bits */
            ck_assert_msg(memcmp(runs[r].params, runs[0].params, (size_t)runs[0].nparams * sizeof(float)) == 0,
                          "%d processes: rank %d's parameters differ from rank 0's", size, r);
            /* and every process saw the same epoch figures */
            for (int e = 0; e < 2; e++) {
                ck_assert_double_eq(runs[r].ep[e].train_loss, runs[0].ep[e].train_loss);
                ck_assert_double_eq(runs[r].ep[e].val_loss, runs[0].ep[e].val_loss);
            }
        }
        /* against one process with the global batch: the same training up to float rounding */
        double worst = 0;
        for (int64_t i = 0; i < one[0].nparams; i++) {
            double a = runs[0].params[i], b = one[0].params[i];
            double rel = fabs(a - b) / fmax(fabs(b), 1e-2);
            worst = rel > worst ? rel : worst;
        }
        ck_assert_msg(worst < 1e-5, "%d processes: parameters differ from one process's by %g (relative)", size,
                      worst);
        for (int e = 0; e < 2; e++) {
            ck_assert_close(runs[0].ep[e].train_loss, one[0].ep[e].train_loss, 1e-5, 0);
            ck_assert_close(runs[0].ep[e].train_accuracy, one[0].ep[e].train_accuracy, 1e-12, 0);
            ck_assert_close(runs[0].ep[e].val_loss, one[0].ep[e].val_loss, 1e-5, 0);
            ck_assert_close(runs[0].ep[e].val_accuracy, one[0].ep[e].val_accuracy, 1e-12, 0);
        }
        free_runs(runs, size);
    }
    free_runs(one, 1);
    hlr_dataset_free(d);
}
END_TEST

/* Synchronised batch norm: N processes with batch B train as one process with batch N B, running
 * statistics included; without it each process's statistics are its own batch's. */
/* _i: 1 dense and batchnorm1d, 2 conv2d and batchnorm2d with the fused ReLU and pooling. */
START_TEST(test_sync_batchnorm_trains_as_one_process_with_the_global_batch)
{
    hlr_set_num_threads(1);
    hlr_dataset *d = test_rings(512, 7);
    if (_i == 2) { /* images whose class is the brightest quadrant */
        hlr_dataset_free(d);
        float *x = malloc(512 * 64 * sizeof *x);
        int32_t y[512];
        unsigned long long g = 99;
        for (int i = 0; i < 512; i++) {
            y[i] = i % 4;
            for (int k = 0; k < 64; k++) {
                g = g * 6364136223846793005ULL + 1442695040888963407ULL;
                int quadrant = (k / 8 >= 4) * 2 + (k % 8 >= 4);
                x[i * 64 + k] = (float)((g >> 11) * 0x1.0p-53) + (quadrant == y[i] ? 0.5f : 0.0f);
            }
        }
        d = hlr_dataset_from(3, (int64_t[]){1, 8, 8}, 512, x, y, 4);
        free(x);
        ck_assert_ptr_nonnull(d);
    }
    run one[1], synced[2], apart[2];
    run_world_bn(0, 64, d, 0.25, -1, _i, 0, one);
    run_world_bn(2, 32, d, 0.25, -1, _i, 1, synced);
    run_world_bn(2, 32, d, 0.25, -1, _i, 0, apart);
    ck_assert_ok(one[0].status);
    for (int r = 0; r < 2; r++) {
        ck_assert_ok(synced[r].status);
        ck_assert_ok(apart[r].status);
        /* synchronised, even the running statistics are the same bits in every process */
        ck_assert_msg(memcmp(synced[r].params, synced[0].params, (size_t)synced[0].nparams * sizeof(float)) == 0,
                      "synchronised: rank %d differs", r);
    }
    double sync_diff = worst_relative(synced[0].params, one[0].params, one[0].nparams);
    double apart_diff = worst_relative(apart[0].params, one[0].params, one[0].nparams);
    ck_assert_msg(sync_diff < 1e-4, "synchronised batch norm against one process: %g (relative)", sync_diff);
    ck_assert_msg(apart_diff > 1e-3, "per-process batch norm matched one process too closely (%g)", apart_diff);
    for (int e = 0; e < 2; e++) {
        ck_assert_close(synced[0].ep[e].train_loss, one[0].ep[e].train_loss, 1e-4, 0);
        ck_assert_close(synced[0].ep[e].val_loss, one[0].ep[e].val_loss, 1e-4, 0);
    }
    free_runs(one, 1);
    free_runs(synced, 2);
    free_runs(apart, 2);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_a_callback_in_one_process_stops_them_all)
{
    hlr_set_num_threads(1);
    hlr_dataset *d = test_rings(256, 6);
    run runs[MAX_RANKS];
    run_world(3, 16, d, 0.0, 1, runs); /* rank 1 asks to stop after epoch 1 of 2 */
    for (int r = 0; r < 3; r++) {
        ck_assert_status(runs[r].status, HLR_ECANCELLED);
        ck_assert_int_eq(runs[r].nep, 1);
        ck_assert_msg(memcmp(runs[r].params, runs[0].params, (size_t)runs[0].nparams * sizeof(float)) == 0,
                      "rank %d differs", r);
    }
    free_runs(runs, 3);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_bad_hlr_distributed_is_refused)
{
    hlr_model *m = mlp(1);
    hlr_dataset *d = test_rings(64, 1);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    world w = {.size = 2};
    member me = {&w, 0};
    hlr_distributed good = {.rank = 0, .size = 2, .allreduce_f32 = allreduce_f32, .allreduce_f64 = allreduce_f64,
                            .broadcast = broadcast, .user = &me};
    hlr_distributed bad = good;
    bad.rank = 2;
    fo.distributed = &bad;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    ck_assert_error_mentions("rank 2 of 2");
    bad = good;
    bad.size = 0;
    ck_assert_status(hlr_model_allreduce_gradients(m, &bad), HLR_EINVAL);
    bad = good;
    bad.broadcast = NULL;
    ck_assert_status(hlr_model_broadcast_parameters(m, &bad), HLR_EINVAL);
    ck_assert_error_mentions("broadcast");
    ck_assert_status(hlr_model_broadcast_parameters(NULL, &good), HLR_EINVAL);
    ck_assert_status(hlr_model_allreduce_gradients(m, NULL), HLR_EINVAL);
    hlr_model *unbuilt = TEST_MODEL(1, hlr_dense(4, 2, 1));
    ck_assert_status(hlr_model_allreduce_gradients(unbuilt, &good), HLR_ESTATE);
    /* one process: both are no-ops that succeed */
    hlr_distributed alone = good;
    alone.size = 1;
    ck_assert_ok(hlr_model_broadcast_parameters(m, &alone));
    ck_assert_ok(hlr_model_allreduce_gradients(m, &alone));
    hlr_model_free(unbuilt);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* A broadcast into a model whose folded convolution was already made (an inference pass first): the next
 * pass uses the broadcast weights, rank 1's outputs then rank 0's bits. */
typedef struct bcast_run {
    member me;
    hlr_distributed dist;
    float y[2 * 4];
} bcast_run;

static void *broadcast_after_a_pass(void *arg)
{
    bcast_run *r = arg;
    hlr_model *m = cnn_bn(100 + (uint64_t)r->me.rank);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 1, 8, 8});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 4});
    test_fill(hlr_tensor_f32(x), 2 * 64, 5, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    pthread_barrier_wait(&r->me.w->barrier); /* both built and passed: nothing moves the generation now */
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_broadcast_parameters(m, &r->dist));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    memcpy(r->y, hlr_tensor_f32(y), sizeof r->y);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
    return NULL;
}

START_TEST(test_a_broadcast_reaches_the_forms_made_from_the_weights)
{
    world *w = calloc(1, sizeof *w);
    w->size = 2;
    pthread_barrier_init(&w->barrier, NULL, 2);
    bcast_run runs[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        runs[r] = (bcast_run){.me = {w, r}};
        runs[r].dist = (hlr_distributed){.rank = r, .size = 2, .allreduce_f32 = allreduce_f32,
                                         .allreduce_f64 = allreduce_f64, .broadcast = broadcast, .user = &runs[r].me};
        ck_assert_int_eq(pthread_create(&th[r], NULL, broadcast_after_a_pass, &runs[r]), 0);
    }
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    test_expect_same_bits("rank 1 after the broadcast", runs[1].y, runs[0].y, 2 * 4);
    pthread_barrier_destroy(&w->barrier);
    free(w);
}
END_TEST

Suite *suite_distributed(void)
{
    Suite *s = suite_create("distributed");
    TCase *t = tcase_create("threads as processes");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_ranks_stay_identical_and_match_one_process_with_the_global_batch);
    tcase_add_loop_test(t, test_sync_batchnorm_trains_as_one_process_with_the_global_batch, 1, 3);
    tcase_add_test(t, test_a_callback_in_one_process_stops_them_all);
    tcase_add_test(t, test_bad_hlr_distributed_is_refused);
    tcase_add_test(t, test_a_broadcast_reaches_the_forms_made_from_the_weights);
    suite_add_tcase(s, t);
    return s;
}

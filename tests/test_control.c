/*
 * test_control.c -- hlr_model_fit's training control (issue 15): the
 * per-batch progress callback, validation data, class weights, early
 * stopping with the best weights restored, reduce-on-plateau, checkpoints,
 * the CSV log and hlr_optimizer_set_lr.  Small generated data: the same
 * "rings" as test_train.c, in a few milliseconds per fit.
 */
#include "testutil_internal.h"

#include "kernels/kernels.h"

#include <stdlib.h>
#include <unistd.h>

Suite *suite_control(void);

#define FEATURES TEST_RINGS_FEATURES

static hlr_model *small_model(uint64_t seed)
{
    hlr_layer *layers[] = {hlr_dense(FEATURES, 32, 1), hlr_relu(), hlr_dense(32, 4, 1)};
    hlr_model *m = test_model_of(seed, layers, 3);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){FEATURES}));
    return m;
}

typedef struct fit_log {
    int batches, epochs, stop_at_batch;
    hlr_batch_stats last_batch;
    hlr_epoch_stats ep[16];
} fit_log;

static int on_batch(const hlr_batch_stats *s, void *user)
{
    fit_log *g = user;
    ck_assert_int_eq(s->batch, g->last_batch.epoch == s->epoch ? g->last_batch.batch + 1 : 1);
    ck_assert_int_ge(s->samples, s->batch);
    ck_assert_msg(s->samples <= s->total && s->loss > 0 && s->accuracy >= 0 && s->accuracy <= 1,
                  "batch %lld: samples %lld of %lld, loss %g, accuracy %g", (long long)s->batch, (long long)s->samples,
                  (long long)s->total, s->loss, s->accuracy);
    g->last_batch = *s;
    g->batches++;
    return g->stop_at_batch && g->batches >= g->stop_at_batch;
}

static int on_epoch(const hlr_epoch_stats *s, void *user)
{
    fit_log *g = user;
    g->ep[g->epochs < 16 ? g->epochs : 15] = *s;
    g->epochs++;
    return 0;
}

START_TEST(test_batch_callback_reports_progress_and_can_stop)
{
    hlr_dataset *d = test_rings(300, 1);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 2;
    fit_log g = {0};
    fo.on_batch = on_batch;
    fo.on_epoch = on_epoch;
    fo.user = &g;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(g.batches, 2 * 5); /* 300 samples in batches of 64 */
    ck_assert_int_eq(g.last_batch.batches, 5);
    ck_assert_int_eq(g.last_batch.samples, 300);
    /* the last batch's running figures are the epoch's */
    ck_assert_close(g.last_batch.loss, g.ep[1].train_loss, 1e-12, 0);
    ck_assert_close(g.last_batch.accuracy, g.ep[1].train_accuracy, 1e-12, 0);
    /* a nonzero return stops at once */
    g = (fit_log){.stop_at_batch = 3};
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_ECANCELLED);
    ck_assert_error_mentions("batch callback");
    ck_assert_int_eq(g.batches, 3);
    ck_assert_int_eq(g.epochs, 0);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
}
END_TEST

/* A callback that predicts on more samples than the fit's batch makes the model
 * grow its buffers; the fit must go on with the new ones (under ASan a stale
 * address is a use after free) and train exactly as without the callback. */
typedef struct predicting {
    hlr_model *m;
    hlr_tensor *x, *probs;
    int calls;
} predicting;

static int predict_in_callback(predicting *p)
{
    ck_assert_ok(hlr_model_predict(p->m, p->x, NULL, p->probs));
    p->calls++;
    return 0;
}

static int predict_on_batch(const hlr_batch_stats *s, void *user)
{
    (void)s;
    return predict_in_callback(user);
}

static int predict_on_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)s;
    return predict_in_callback(user);
}

START_TEST(test_callbacks_may_run_the_model_on_a_larger_batch)
{
    hlr_dataset *d = test_rings(200, 1), *big = test_rings(256, 9);
    int64_t count_a, count_b;
    float *want = NULL;
    for (int with = 0; with <= 1; with++) {
        hlr_model *m = small_model(2);
        hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
        hlr_fit_options fo;
        hlr_fit_options_default(&fo);
        fo.epochs = 2;
        fo.batch_size = 16;
        predicting p = {.m = m,
                        .x = hlr_tensor_wrap(HLR_F32, 2, (int64_t[]){256, FEATURES}, (void *)hlr_dataset_inputs(big)),
                        .probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){256, 4})};
        ck_assert_ptr_nonnull(p.x);
        ck_assert_ptr_nonnull(p.probs);
        if (with) {
            fo.on_batch = predict_on_batch;
            fo.on_epoch = predict_on_epoch;
            fo.user = &p;
        }
        ck_assert_ok(hlr_model_fit(m, o, d, &fo));
        ck_assert_int_eq(p.calls, with ? 2 * 13 + 2 : 0);
        float *got = test_params_of(m, with ? &count_b : &count_a);
        if (!with) {
            want = got;
        } else {
            ck_assert_int_eq(count_a, count_b);
            ck_assert_msg(memcmp(want, got, (size_t)count_a * sizeof *got) == 0,
                          "predicting in the callbacks changed what the fit learned");
            free(got);
        }
        hlr_tensor_free(p.x);
        hlr_tensor_free(p.probs);
        hlr_optimizer_free(o);
        hlr_model_free(m);
    }
    free(want);
    hlr_dataset_free(big);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_validation_data_is_evaluated_each_epoch)
{
    hlr_dataset *d = test_rings(256, 3), *v = test_rings(100, 4);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fit_log g = {0};
    fo.on_epoch = on_epoch;
    fo.user = &g;
    fo.validation_data = v;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    hlr_metrics met;
    ck_assert_ok(hlr_model_evaluate(m, v, 64, 1, &met, NULL));
    ck_assert_close(g.ep[0].val_loss, met.loss, 1e-12, 0);
    ck_assert_close(g.ep[0].val_accuracy, met.accuracy, 0, 0);
    fo.validation_split = 0.2;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    ck_assert_error_mentions("not both");
    hlr_dataset *wrong = hlr_dataset_from(1, (int64_t[]){3}, 2, (float[6]){0}, (int32_t[]){0, 1}, 2);
    fo.validation_split = 0;
    fo.validation_data = wrong;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_ESHAPE);
    hlr_dataset_free(wrong);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    hlr_dataset_free(v);
}
END_TEST

/* The weighted loss against its definition and its gradient against finite differences. */
START_TEST(test_weighted_cross_entropy_value_and_gradient)
{
    enum { N = 5, C = 4 };
    float x[N * C], g[N * C];
    test_fill(x, N * C, 7, -3, 3);
    const int32_t y[N] = {0, 3, 1, 3, 2};
    const float w[C] = {0.5f, 2.0f, 0.0f, 1.5f};
    double want = 0, wsum = 0;
    for (int i = 0; i < N; i++) {
        double mx = -INFINITY, s = 0;
        for (int c = 0; c < C; c++)
            mx = x[i * C + c] > mx ? x[i * C + c] : mx;
        for (int c = 0; c < C; c++)
            s += exp(x[i * C + c] - mx);
        want += w[y[i]] * (mx + log(s) - x[i * C + y[i]]);
        wsum += w[y[i]];
    }
    double got = hlrk_cross_entropy_weighted(x, y, N, C, w, g);
    ck_assert_close(got, want / wsum, 1e-6, 0); /* x - max in float, as the kernel takes it */
    for (int k = 0; k < N * C; k++) {
        float keep = x[k];
        const float h = 1e-2f;
        x[k] = keep + h;
        double up = hlrk_cross_entropy_weighted(x, y, N, C, w, NULL);
        x[k] = keep - h;
        double down = hlrk_cross_entropy_weighted(x, y, N, C, w, NULL);
        x[k] = keep;
        ck_assert_msg(fabs((up - down) / (2 * h) - g[k]) < 2e-4, "d/dx[%d]: finite differences %g, gradient %g", k,
                      (up - down) / (2 * h), (double)g[k]);
    }
    /* all ones: the unweighted loss */
    const float ones[C] = {1, 1, 1, 1};
    ck_assert_close(hlrk_cross_entropy_weighted(x, y, N, C, ones, NULL), hlrk_cross_entropy(x, y, N, C, 0, NULL),
                    1e-12, 0);
    /* every label's weight 0: no loss, no gradient */
    const float none[C] = {0, 0, 0, 0};
    ck_assert_close(hlrk_cross_entropy_weighted(x, y, N, C, none, g), 0.0, 0, 0);
    for (int k = 0; k < N * C; k++)
        ck_assert_msg(g[k] == 0.0f, "g[%d] = %g", k, (double)g[k]);
}
END_TEST

START_TEST(test_class_weight_in_fit)
{
    hlr_dataset *d = test_rings(256, 5);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 8;
    /* only class 2 counts: the model learns to say 2 for everything it can */
    const float w[4] = {0, 0, 1, 0};
    fo.class_weight = w;
    fo.class_weight_count = 4;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 2, (int64_t[]){hlr_dataset_size(d), FEATURES}, hlr_dataset_inputs(d));
    int32_t *cls = malloc((size_t)hlr_dataset_size(d) * sizeof *cls);
    ck_assert_ok(hlr_model_predict(m, x, cls, NULL));
    int twos = 0;
    for (int64_t i = 0; i < hlr_dataset_size(d); i++)
        twos += cls[i] == 2;
    ck_assert_msg(twos > 0.9 * hlr_dataset_size(d), "%d of %lld predicted 2", twos, (long long)hlr_dataset_size(d));
    free(cls);
    hlr_tensor_free(x);
    /* refusals */
    fo.class_weight_count = 3;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    ck_assert_error_mentions("class_weight has 3 entries");
    const float bad[4] = {1, -1, 1, 1}, nan[4] = {1, NAN, 1, 1};
    fo.class_weight_count = 4;
    fo.class_weight = bad;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    ck_assert_error_mentions("class_weight[1]");
    fo.class_weight = nan;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    fo.class_weight = w;
    ck_assert_ok(hlr_model_set_loss(m, HLR_LOSS_CROSS_ENTROPY, 0.1f));
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EUNSUPPORTED);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
}
END_TEST

/*
 * Early stopping that no later epoch can satisfy (min_delta 1e9): the fit
 * stops after 1 + patience epochs, and with restore_best the parameters are
 * bit for bit those of a twin trained for exactly one epoch.
 */
START_TEST(test_early_stopping_stops_and_restores_the_best_epoch)
{
    hlr_dataset *d = test_rings(256, 6);
    hlr_model *m = small_model(9), *twin = small_model(9);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0), *ot = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 10;
    fo.early_stopping = (hlr_early_stopping){.patience = 2, .monitor = HLR_MONITOR_TRAIN_LOSS, .min_delta = 1e9,
                                             .restore_best = 1};
    fit_log g = {0};
    fo.on_epoch = on_epoch;
    fo.user = &g;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(g.epochs, 3);
    ck_assert_int_eq(hlr_model_epochs_trained(m), 3);
    ck_assert_int_eq(g.ep[2].stopping, 1);
    ck_assert_int_eq(g.ep[2].best_epoch, 1);
    ck_assert_int_eq(g.ep[1].stopping, 0);
    hlr_fit_options one;
    hlr_fit_options_default(&one);
    ck_assert_ok(hlr_model_fit(twin, ot, d, &one));
    int64_t na, nb;
    float *a = test_params_of(m, &na), *b = test_params_of(twin, &nb);
    ck_assert_int_eq(na, nb);
    ck_assert_msg(memcmp(a, b, (size_t)na * sizeof *a) == 0, "the restored parameters are not epoch 1's");
    free(a);
    free(b);
    /* a val_* monitor needs validation data; bad settings are refused */
    fo.early_stopping.monitor = HLR_MONITOR_VAL_LOSS;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    ck_assert_error_mentions("no validation data");
    fo.early_stopping = (hlr_early_stopping){.patience = -1};
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    fo.early_stopping = (hlr_early_stopping){.patience = 1, .min_delta = NAN};
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    fo.early_stopping = (hlr_early_stopping){.patience = 1, .monitor = (hlr_monitor)7};
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    hlr_optimizer_free(o);
    hlr_optimizer_free(ot);
    hlr_model_free(m);
    hlr_model_free(twin);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_reduce_lr_on_plateau)
{
    hlr_dataset *d = test_rings(128, 7);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    ck_assert_close(fo.reduce_lr.factor, 0.1, 0, 0);
    fo.epochs = 6;
    fo.reduce_lr = (hlr_lr_plateau){.patience = 1, .monitor = HLR_MONITOR_TRAIN_LOSS, .factor = 0.5,
                                    .min_delta = 1e9, .min_lr = 0.02};
    fit_log g = {0};
    fo.on_epoch = on_epoch;
    fo.user = &g;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    /* epoch 1 sets the best; each later epoch is a plateau of 1: halve, down to min_lr */
    const double want[6] = {0.1, 0.1, 0.05, 0.025, 0.02, 0.02};
    for (int e = 0; e < 6; e++)
        ck_assert_msg(fabs(g.ep[e].lr - want[e]) < 1e-7, "epoch %d: lr %g, expected %g", e + 1, g.ep[e].lr, want[e]);
    ck_assert_close(hlr_optimizer_base_lr(o), 0.02, 1e-7, 0);
    fo.reduce_lr.factor = 1.0;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EINVAL);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_set_lr)
{
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    ck_assert_ok(hlr_optimizer_set_lr(o, 0.5f));
    ck_assert_close(hlr_optimizer_lr(o), 0.5, 0, 0);
    ck_assert_close(hlr_optimizer_base_lr(o), 0.5, 0, 0);
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 0.5, 0, 1));
    ck_assert_ok(hlr_optimizer_schedule_step(o));
    ck_assert_close(hlr_optimizer_lr(o), 0.25, 0, 0); /* the schedule multiplies the new base */
    ck_assert_status(hlr_optimizer_set_lr(o, 0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_lr(o, -1), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_lr(o, NAN), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_lr(NULL, 1), HLR_EINVAL);
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, 0.1, 0, 1));
    ck_assert_status(hlr_optimizer_set_lr(o, 0.05f), HLR_EINVAL); /* below eta_min */
    hlr_optimizer_free(o);
}
END_TEST

static char tmp_dir[64];

static void tmp_make(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hlr-control-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void tmp_remove(const char *a, const char *b)
{
    if (a)
        unlink(a);
    if (b)
        unlink(b);
    rmdir(tmp_dir);
}

/* The checkpoint holds the epoch with the best validation loss (best_only), or the last one. */
START_TEST(test_checkpoint_keeps_the_best_or_the_last_epoch)
{
    tmp_make();
    char path[128];
    snprintf(path, sizeof path, "%s/ckpt.hlr", tmp_dir);
    hlr_dataset *d = test_rings(256, 8), *v = test_rings(64, 9);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_sgd(0.3f, 0.9f, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 6;
    fo.validation_data = v;
    fo.checkpoint = (hlr_checkpoint){.path = path, .monitor = HLR_MONITOR_VAL_LOSS, .best_only = 1};
    fit_log g = {0};
    fo.on_epoch = on_epoch;
    fo.user = &g;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    int best = 0;
    for (int e = 1; e < 6; e++)
        best = g.ep[e].val_loss < g.ep[best].val_loss ? e : best;
    hlr_optimizer *back_o = NULL;
    hlr_model *back = hlr_model_load(path, &back_o);
    ck_assert_msg(back && back_o, "%s", hlr_last_error());
    ck_assert_int_eq(hlr_model_epochs_trained(back), best + 1);
    hlr_metrics met;
    ck_assert_ok(hlr_model_evaluate(back, v, 64, 1, &met, NULL));
    ck_assert_close(met.loss, g.ep[best].val_loss, 1e-12, 0);
    hlr_model_free(back);
    hlr_optimizer_free(back_o);
    /* every epoch: the last one */
    fo.checkpoint.best_only = 0;
    fo.epochs = 2;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    back = hlr_model_load(path, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(hlr_model_epochs_trained(back), 8);
    hlr_model_free(back);
    /* a folder that does not exist: the fit fails with HLR_EIO after its first epoch */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/ckpt.hlr", tmp_dir);
    fo.checkpoint.path = bad;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EIO);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    hlr_dataset_free(v);
    tmp_remove(path, NULL);
}
END_TEST

static int count_lines(const char *path, char *first, size_t cap)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (n == 0)
            snprintf(first, cap, "%s", line);
        n++;
    }
    fclose(f);
    return n;
}

START_TEST(test_csv_log)
{
    tmp_make();
    char path[128], first[512];
    snprintf(path, sizeof path, "%s/history.csv", tmp_dir);
    hlr_dataset *d = test_rings(128, 8);
    hlr_model *m = small_model(2);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 3;
    fo.csv_log = path;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(count_lines(path, first, sizeof first), 4);
    ck_assert_str_eq(first, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    FILE *f = fopen(path, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    int epoch;
    double loss, acc;
    char rest[256];
    ck_assert_int_eq(sscanf(line, "%d,%lf,%lf,%255s", &epoch, &loss, &acc, rest), 4);
    ck_assert_int_eq(epoch, 1);
    ck_assert_msg(strncmp(rest, ",,", 2) == 0, "no validation: empty fields expected, got %s", rest);
    /* append keeps the lines and adds no second header */
    fo.csv_append = 1;
    fo.validation_split = 0.25;
    fo.epochs = 2;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(count_lines(path, first, sizeof first), 6);
    /* without append it starts afresh */
    fo.csv_append = 0;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(count_lines(path, first, sizeof first), 3);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such.csv", tmp_dir);
    fo.csv_log = bad;
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_EIO);
    ck_assert_error_mentions("no/such.csv");
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    tmp_remove(path, NULL);
}
END_TEST

/* ---- input gradients in inference mode ---- */

/* The inference-mode score of sample i (logit t, or its loss) for input x, by a forward pass. */
static double score_of(hlr_model *m, hlr_tensor *x, int64_t n, int64_t c, int64_t i, int32_t t, int of_loss)
{
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){n, c});
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    const float *row = hlr_tensor_f32(y) + i * c;
    double v = row[t];
    if (of_loss) {
        double mx = row[0], s = 0;
        for (int64_t k = 1; k < c; k++)
            mx = row[k] > mx ? row[k] : mx;
        for (int64_t k = 0; k < c; k++)
            s += exp(row[k] - mx);
        v = mx + log(s) - row[t];
    }
    hlr_tensor_free(y);
    return v;
}

/*
 * The input gradient against central differences of the inference forward, for
 * 24 input positions; and nothing a prediction depends on moves (the outputs
 * before and after are the same bits, the generator is where it was).
 * Models: dropout + dense; conv + batch norm + ReLU + pooling (fused), after
 * a training batch moved the running statistics; an LSTM over image rows.
 */
static void check_input_gradient(hlr_model *m, int ndim, const int64_t *shape, int of_loss, const char *what)
{
    enum { N = 3 };
    int64_t full[HLR_MAX_DIMS] = {N}, per = 1;
    for (int i = 0; i < ndim; i++) {
        full[i + 1] = shape[i];
        per *= shape[i];
    }
    ck_assert_ok(hlr_model_build(m, ndim, shape));
    int out_nd;
    int64_t out_shape[HLR_MAX_DIMS];
    ck_assert_ok(hlr_model_output_shape(m, &out_nd, out_shape));
    const int64_t c = out_shape[0];
    hlr_tensor *x = hlr_tensor_new(HLR_F32, ndim + 1, full), *g = hlr_tensor_new(HLR_F32, ndim + 1, full);
    test_fill(hlr_tensor_f32(x), N * per, 17, 0, 1);
    /* one training step first: batch norm's running statistics leave their start */
    hlr_optimizer *o = hlr_sgd(0.05f, 0, 0, 0);
    hlr_tensor *lab = hlr_tensor_from(HLR_I32, 1, (int64_t[]){N}, (int32_t[]){0, 1, 2});
    ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
    hlr_tensor *before = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, c}), *after = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, c});
    ck_assert_ok(hlr_model_forward(m, x, before, 0));
    hlr_rng rng_before = m->rng;
    const int32_t targets[N] = {1, 0, 2};
    ck_assert_ok(hlr_model_input_gradient(m, x, targets, of_loss, g));
    ck_assert_mem_eq(&rng_before, &m->rng, sizeof rng_before);
    ck_assert_ok(hlr_model_forward(m, x, after, 0));
    ck_assert_msg(memcmp(hlr_tensor_f32(before), hlr_tensor_f32(after), (size_t)(N * c) * sizeof(float)) == 0,
                  "%s: predictions changed", what);
    const float *gd = hlr_tensor_f32(g);
    float *xd = hlr_tensor_f32(x);
    unsigned long long pick = 99;
    for (int k = 0; k < 24; k++) {
        int64_t at = (int64_t)(test_rand(&pick) * (float)(N * per)), i = at / per;
        const float keep = xd[at], h = 1e-3f; /* small: ReLU and max-pool kinks lie about */
        xd[at] = keep + h;
        double up = score_of(m, x, N, c, i, targets[i], of_loss);
        xd[at] = keep - h;
        double down = score_of(m, x, N, c, i, targets[i], of_loss);
        xd[at] = keep;
        double mid = score_of(m, x, N, c, i, targets[i], of_loss);
        /* Central differences, or at a ReLU or max-pool kink within h either one-sided one: the
         * gradient there is one side's derivative. */
        const double fds[3] = {(up - down) / (2 * h), (up - mid) / h, (mid - down) / h};
        double err = INFINITY;
        for (int q = 0; q < 3; q++) {
            double e = fabs(fds[q] - gd[at]) / (1e-2 + fabs(fds[q]));
            err = e < err ? e : err;
        }
        ck_assert_msg(err < 5e-2, "%s: dscore/dx[%lld]: finite differences %.6g (one-sided %.6g, %.6g), gradient %.6g",
                      what, (long long)at, fds[0], fds[1], fds[2], (double)gd[at]);
    }
    hlr_tensor_free(before);
    hlr_tensor_free(after);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_tensor_free(x);
    hlr_tensor_free(g);
    hlr_model_free(m);
}

START_TEST(test_input_gradient_matches_finite_differences)
{
    hlr_layer *mlp[] = {hlr_flatten(), hlr_dense(12, 16, 1), hlr_tanh(), hlr_dropout(0.5f), hlr_dense(16, 3, 1)};
    check_input_gradient(test_model_of(1, mlp, 5), 3, (int64_t[]){1, 3, 4}, _i, "dense + dropout");
    hlr_layer *cnn[] = {hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                        hlr_batchnorm2d(4, 1e-5f, 0.5f),
                        hlr_relu(),
                        hlr_maxpool2d(2, 2, 0),
                        hlr_flatten(),
                        hlr_dense(4 * 4 * 4, 3, 1)};
    check_input_gradient(test_model_of(2, cnn, 6), 3, (int64_t[]){1, 8, 8}, _i, "conv + batch norm + pool");
    hlr_layer *rnn[] = {hlr_image_rows(), hlr_lstm(5, 6, 1, 0, 0.0f), hlr_dense(6, 3, 1)};
    check_input_gradient(test_model_of(3, rnn, 3), 3, (int64_t[]){1, 4, 5}, _i, "lstm");
}
END_TEST

START_TEST(test_input_gradient_refusals)
{
    hlr_layer *mlp[] = {hlr_dense(4, 3, 1)};
    hlr_model *m = test_model_of(1, mlp, 1);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 4}), *g = hlr_tensor_new(HLR_F32, 2, (int64_t[]){2, 4});
    ck_assert_status(hlr_model_input_gradient(m, x, NULL, 0, g), HLR_ESTATE); /* not built */
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    ck_assert_ok(hlr_model_input_gradient(m, x, NULL, 0, g)); /* the predicted class */
    ck_assert_status(hlr_model_input_gradient(m, x, NULL, 1, g), HLR_EINVAL);
    ck_assert_status(hlr_model_input_gradient(m, x, (int32_t[]){0, 3}, 0, g), HLR_EINVAL);
    ck_assert_status(hlr_model_input_gradient(NULL, x, NULL, 0, g), HLR_EINVAL);
    hlr_tensor *wrong = hlr_tensor_new(HLR_F32, 2, (int64_t[]){3, 4});
    ck_assert_status(hlr_model_input_gradient(m, x, NULL, 0, wrong), HLR_ESHAPE);
    hlr_model *clone = hlr_model_clone_shared(m);
    ck_assert_status(hlr_model_input_gradient(clone, x, NULL, 0, g), HLR_ESTATE);
    ck_assert_error_mentions("clone");
    hlr_model_free(clone);
    hlr_tensor_free(wrong);
    hlr_tensor_free(x);
    hlr_tensor_free(g);
    hlr_model_free(m);
}
END_TEST

/* ---- augmentation ---- */

START_TEST(test_warp_identity_and_quarter_turn_are_exact)
{
    enum { C = 2, H = 5, W = 5 };
    float in[C * H * W], out[C * H * W];
    test_fill(in, C * H * W, 11, 0, 1);
    const double id[4] = {1, 0, 0, 1}, quarter[4] = {0, 1, -1, 0};
    hlr__warp_image(out, in, C, H, W, id, NULL, NULL);
    ck_assert_msg(memcmp(out, in, sizeof in) == 0, "the identity changed the image");
    hlr__warp_image(out, in, C, H, W, quarter, NULL, NULL);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                ck_assert_msg(out[(c * H + y) * W + x] == in[(c * H + (W - 1 - x)) * W + y], "(%d, %d, %d)", c, y, x);
    /* half a pixel to the right: each output the mean of two neighbours, zero past the edge */
    float row[W] = {1, 2, 3, 4, 5}, got[W];
    const double shrink[4] = {1, 0, 0, 1};
    float dx[W] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, dy[W] = {0};
    hlr__warp_image(got, row, 1, 1, W, shrink, dx, dy);
    const float want[W] = {1.5f, 2.5f, 3.5f, 4.5f, 2.5f};
    for (int x = 0; x < W; x++)
        ck_assert_msg(got[x] == want[x], "x %d: %g, expected %g", x, (double)got[x], (double)want[x]);
}
END_TEST

/* 8 x 8 images of a bar: rows 2..5 of one column chosen by the label. */
static hlr_dataset *bars(int64_t n)
{
    float *x = calloc((size_t)n * 64, sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 4);
        for (int r = 2; r < 6; r++)
            x[i * 64 + r * 8 + 1 + 2 * y[i]] = 1.0f;
    }
    hlr_dataset *d = hlr_dataset_from(3, (int64_t[]){1, 8, 8}, n, x, y, 4);
    free(x);
    free(y);
    ck_assert_ptr_nonnull(d);
    return d;
}

static float *fit_bars(const hlr_augment *a, int64_t *count)
{
    hlr_dataset *d = bars(64);
    hlr_layer *layers[] = {hlr_flatten(), hlr_dense(64, 4, 1)};
    hlr_model *m = test_model_of(3, layers, 2);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 2;
    fo.batch_size = 16;
    if (a)
        fo.augment = *a;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    float *p = test_params_of(m, count);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    return p;
}

START_TEST(test_augmentation_in_fit_is_reproducible)
{
    hlr_augment none = {.elastic_sigma = 4}, all = {.rotate = 15, .scale = 0.1, .shear = 10, .elastic_alpha = 2,
                                                    .elastic_sigma = 3};
    int64_t n0, n1, n2, n3;
    float *plain = fit_bars(NULL, &n0), *zero = fit_bars(&none, &n1), *a = fit_bars(&all, &n2), *b = fit_bars(&all, &n3);
    ck_assert_msg(memcmp(plain, zero, (size_t)n0 * sizeof *plain) == 0, "an all-zero augment changed training");
    ck_assert_msg(memcmp(a, b, (size_t)n2 * sizeof *a) == 0, "the same seed gave another augmentation");
    ck_assert_msg(memcmp(plain, a, (size_t)n0 * sizeof *a) != 0, "augmentation changed nothing");
    free(plain);
    free(zero);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_augmentation_keeps_values_in_range)
{
    enum { N = 3, H = 28, W = 28 };
    hlr_shape s = {.ndim = 3, .d = {1, H, W}};
    hlr_augment a = {.rotate = 30, .scale = 0.2, .shear = 20, .elastic_alpha = 6, .elastic_sigma = 4};
    float *x = malloc(N * H * W * sizeof *x), *orig = malloc(N * H * W * sizeof *x);
    test_fill(x, N * H * W, 4, 0, 1);
    memcpy(orig, x, N * H * W * sizeof *x);
    float *work = malloc((size_t)hlr__augment_work_floats(&s, &a) * sizeof *work);
    hlr_rng rng;
    hlr__rng_seed(&rng, 1);
    hlr__augment_images(x, N, &s, &a, &rng, work);
    int changed = 0;
    for (int i = 0; i < N * H * W; i++) {
        ck_assert_msg(x[i] >= 0.0f && x[i] <= 1.0f, "value %g outside the input's range", (double)x[i]);
        changed += x[i] != orig[i];
    }
    ck_assert_int_gt(changed, N * H * W / 2);
    free(x);
    free(orig);
    free(work);
}
END_TEST

START_TEST(test_augmentation_options_are_checked)
{
    hlr_dataset *img = bars(8), *flat = test_rings(16, 1);
    hlr_layer *layers[] = {hlr_flatten(), hlr_dense(64, 4, 1)};
    hlr_model *m = test_model_of(3, layers, 2);
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 8}));
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    ck_assert_close(fo.augment.elastic_sigma, 4.0, 0, 0);
    const hlr_augment bad[] = {{.rotate = -1}, {.rotate = 181}, {.scale = 0.95}, {.shear = NAN},
                               {.elastic_alpha = 1, .elastic_sigma = 0}, {.elastic_alpha = -2}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fo.augment = bad[k];
        ck_assert_status(hlr_model_fit(m, o, img, &fo), HLR_EINVAL);
        ck_assert_error_mentions("augment");
    }
    hlr_model *mf = small_model(2);
    fo.augment = (hlr_augment){.rotate = 5};
    ck_assert_status(hlr_model_fit(mf, o, flat, &fo), HLR_EINVAL); /* (8) samples are no images */
    hlr_model_free(mf);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(img);
    hlr_dataset_free(flat);
}
END_TEST

Suite *suite_control(void)
{
    Suite *s = suite_create("control");
    TCase *t = tcase_create("fit");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_batch_callback_reports_progress_and_can_stop);
    tcase_add_test(t, test_callbacks_may_run_the_model_on_a_larger_batch);
    tcase_add_test(t, test_validation_data_is_evaluated_each_epoch);
    tcase_add_test(t, test_weighted_cross_entropy_value_and_gradient);
    tcase_add_test(t, test_class_weight_in_fit);
    tcase_add_test(t, test_early_stopping_stops_and_restores_the_best_epoch);
    tcase_add_test(t, test_reduce_lr_on_plateau);
    tcase_add_test(t, test_set_lr);
    tcase_add_test(t, test_checkpoint_keeps_the_best_or_the_last_epoch);
    tcase_add_test(t, test_csv_log);
    suite_add_tcase(s, t);
    t = tcase_create("input_gradient");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, test_input_gradient_matches_finite_differences, 0, 2);
    tcase_add_test(t, test_input_gradient_refusals);
    suite_add_tcase(s, t);
    t = tcase_create("augment");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_warp_identity_and_quarter_turn_are_exact);
    tcase_add_test(t, test_augmentation_in_fit_is_reproducible);
    tcase_add_test(t, test_augmentation_keeps_values_in_range);
    tcase_add_test(t, test_augmentation_options_are_checked);
    suite_add_tcase(s, t);
    return s;
}

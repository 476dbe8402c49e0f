/*
 * test_model.c -- the model container: its failure paths, summary, forward
 * and backward, prediction, evaluation, custom losses, and the promise that
 * the per-batch loop allocates nothing.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>

/* The library's allocation counter (internal; tests link the static library). */
extern _Atomic long hlr__alloc_count;

static hlr_model *small_mlp(uint64_t seed)
{
    hlr_model *m = hlr_model_new(seed);
    ck_assert_ok(hlr_model_add(m, hlr_flatten()));
    ck_assert_ok(hlr_model_add(m, hlr_dense(12, 16, 1)));
    ck_assert_ok(hlr_model_add(m, hlr_relu()));
    ck_assert_ok(hlr_model_add(m, hlr_dropout(0.1f)));
    ck_assert_ok(hlr_model_add(m, hlr_dense(16, 4, 1)));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){3, 4}));
    return m;
}

START_TEST(test_null_handles_are_refused_not_crashed_on)
{
    hlr_model_free(NULL);
    ck_assert_status(hlr_model_add(NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_add(NULL, hlr_relu()), HLR_EINVAL); /* the layer is freed: no leak */
    ck_assert_status(hlr_model_build(NULL, 1, (int64_t[]){3}), HLR_EINVAL);
    ck_assert_status(hlr_model_forward(NULL, NULL, NULL, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_backward(NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_train_batch(NULL, NULL, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_summary(NULL, NULL, 0, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_set_loss(NULL, HLR_LOSS_MSE, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_fit(NULL, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_evaluate(NULL, NULL, 1, 1, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_predict(NULL, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_output_shape(NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_step(NULL, NULL), HLR_EINVAL);
    ck_assert_int_eq(hlr_model_num_layers(NULL), 0);
    ck_assert_int_eq(hlr_model_param_count(NULL), 0);
    ck_assert_ptr_null(hlr_model_layer(NULL, 0));
    hlr_fit_options_default(NULL);
}
END_TEST

START_TEST(test_add_and_build_enforce_their_order)
{
    hlr_model *m = hlr_model_new(0);
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){3}), HLR_EINVAL);
    ck_assert_error_mentions("no layers");
    ck_assert_ok(hlr_model_add(m, hlr_dense(3, 2, 1)));
    ck_assert_status(hlr_model_build(m, 0, (int64_t[]){3}), HLR_EINVAL);
    ck_assert_status(hlr_model_build(m, 1, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){0}), HLR_EINVAL);
    ck_assert_status(hlr_model_build(m, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}), HLR_EINVAL);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){3}));
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){3}), HLR_ESTATE);
    ck_assert_status(hlr_model_add(m, hlr_relu()), HLR_ESTATE); /* freed by the model */
    ck_assert_error_mentions("built");
    ck_assert_ptr_null(hlr_model_layer(m, 1));
    ck_assert_ptr_null(hlr_model_layer(m, -1));

    /* A layer owned by one model cannot join another (and stays with the first). */
    hlr_model *other = hlr_model_new(0);
    ck_assert_status(hlr_model_add(other, hlr_model_layer(m, 0)), HLR_ESTATE);
    ck_assert_int_eq(hlr_model_num_layers(other), 0);
    hlr_model_free(other);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_calls_before_build_give_state_errors)
{
    hlr_model *m = hlr_model_new(0);
    ck_assert_ok(hlr_model_add(m, hlr_dense(3, 2, 1)));
    int64_t s[] = {1, 3};
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 2, s);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, 2});
    char buf[64];
    int nd;
    int64_t shape[8];
    ck_assert_status(hlr_model_forward(m, x, y, 0), HLR_ESTATE);
    ck_assert_status(hlr_model_summary(m, buf, sizeof buf, NULL), HLR_ESTATE);
    ck_assert_status(hlr_model_output_shape(m, &nd, shape), HLR_ESTATE);
    ck_assert_status(hlr_model_predict(m, x, NULL, NULL), HLR_ESTATE);
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    ck_assert_status(hlr_optimizer_step(o, m), HLR_ESTATE);
    ck_assert_int_eq(hlr_model_param_count(m), 0);
    hlr_optimizer_free(o);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_forward_rejects_wrong_shapes_and_dtypes_with_clear_messages)
{
    hlr_model *m = small_mlp(0);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){5, 3, 4});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){5, 4});
    hlr_tensor *bad_x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){5, 4, 3});
    hlr_tensor *bad_y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){6, 4});
    hlr_tensor *int_x = hlr_tensor_new(HLR_I32, 3, (int64_t[]){5, 3, 4});
    ck_assert_status(hlr_model_forward(m, bad_x, y, 0), HLR_ESHAPE);
    ck_assert_error_mentions("(5, 4, 3)");
    ck_assert_error_mentions("expected (N, 3, 4)");
    ck_assert_status(hlr_model_forward(m, x, bad_y, 0), HLR_ESHAPE);
    ck_assert_error_mentions("expected (5, 4)");
    ck_assert_status(hlr_model_forward(m, int_x, y, 0), HLR_EINVAL);
    ck_assert_error_mentions("int32");
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    /* backward needs a training forward first */
    ck_assert_status(hlr_model_backward(m, y, NULL), HLR_ESTATE);
    ck_assert_ok(hlr_model_forward(m, x, y, 1));
    ck_assert_status(hlr_model_backward(m, bad_y, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_model_backward(m, y, bad_x), HLR_ESHAPE);
    ck_assert_ok(hlr_model_backward(m, y, x));
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(bad_x);
    hlr_tensor_free(bad_y);
    hlr_tensor_free(int_x);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_summary_lists_layers_shapes_and_totals)
{
    hlr_model *m = small_mlp(0);
    size_t need = 0;
    ck_assert_ok(hlr_model_summary(m, NULL, 0, &need));
    ck_assert_uint_gt(need, 100);
    char *buf = malloc(need + 1);
    size_t need2 = 0;
    ck_assert_ok(hlr_model_summary(m, buf, need + 1, &need2));
    ck_assert_uint_eq(need, need2);
    ck_assert_uint_eq(strlen(buf), need);
    ck_assert_ptr_nonnull(strstr(buf, "flatten"));
    ck_assert_ptr_nonnull(strstr(buf, "(12)"));
    ck_assert_ptr_nonnull(strstr(buf, "208")); /* 12*16 + 16 */
    ck_assert_ptr_nonnull(strstr(buf, "total parameters: 276")); /* 208 + 16*4 + 4 */
    /* A short buffer is cut and still terminated. */
    char small[10];
    ck_assert_ok(hlr_model_summary(m, small, sizeof small, &need2));
    ck_assert_uint_eq(strlen(small), 9);
    ck_assert_uint_eq(need2, need);
    ck_assert_status(hlr_model_summary(m, NULL, 5, NULL), HLR_EINVAL);
    ck_assert_int_eq(hlr_model_param_count(m), 276);
    int nd;
    int64_t shape[8];
    ck_assert_ok(hlr_model_output_shape(m, &nd, shape));
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(shape[0], 4);
    free(buf);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_predict_gives_argmax_and_probabilities)
{
    hlr_model *m = small_mlp(3);
    enum { N = 7 };
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, 3, 4});
    test_fill(hlr_tensor_f32(x), N * 12, 5, -2, 2);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 4});
    hlr_tensor *p = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 4});
    int32_t cls[N];
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_predict(m, x, cls, p));
    const float *yv = hlr_tensor_f32(y), *pv = hlr_tensor_f32(p);
    for (int i = 0; i < N; i++) {
        int best = 0;
        double sum = 0;
        for (int c = 0; c < 4; c++) {
            best = yv[i * 4 + c] > yv[i * 4 + best] ? c : best;
            sum += pv[i * 4 + c];
        }
        ck_assert_int_eq(cls[i], best);
        ck_assert_close(sum, 1.0, 1e-6, 0);
        ck_assert_msg(pv[i * 4 + best] >= pv[i * 4 + (best + 1) % 4], "probabilities do not follow the logits");
    }
    hlr_tensor *bad = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 5});
    ck_assert_status(hlr_model_predict(m, x, cls, bad), HLR_ESHAPE);
    ck_assert_ok(hlr_model_predict(m, x, NULL, NULL));
    hlr_tensor_free(bad);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(p);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_evaluate_counts_confusion_and_top_k)
{
    hlr_model *m = small_mlp(3);
    enum { N = 50 };
    float x[N * 12];
    int32_t lab[N];
    test_fill(x, N * 12, 8, -1, 1);
    for (int i = 0; i < N; i++)
        lab[i] = i % 4;
    hlr_dataset *d = hlr_dataset_from(2, (int64_t[]){3, 4}, N, x, lab, 4);
    hlr_metrics met;
    int64_t conf[16];
    ck_assert_ok(hlr_model_evaluate(m, d, 8, 2, &met, conf));
    int64_t total = 0, diag = 0;
    for (int i = 0; i < 16; i++)
        total += conf[i];
    for (int i = 0; i < 4; i++)
        diag += conf[i * 5];
    ck_assert_int_eq(total, N);
    ck_assert_int_eq(met.count, N);
    ck_assert_close(met.accuracy, diag / (double)N, 1e-12, 0);
    ck_assert_msg(met.top_k_accuracy >= met.accuracy, "top-2 %g < top-1 %g", met.top_k_accuracy, met.accuracy);
    ck_assert_int_eq(met.top_k, 2);
    ck_assert_msg(met.loss > 0 && isfinite(met.loss), "loss %g", met.loss);
    ck_assert_ok(hlr_model_evaluate(m, d, 1000, 4, &met, NULL));
    ck_assert_close(met.top_k_accuracy, 1.0, 0, 0);
    ck_assert_status(hlr_model_evaluate(m, d, 8, 5, &met, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_evaluate(m, d, 8, 0, &met, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_evaluate(m, d, 0, 1, &met, NULL), HLR_EINVAL);
    hlr_dataset *wrong = hlr_dataset_from(1, (int64_t[]){12}, N, x, lab, 4);
    ck_assert_status(hlr_model_evaluate(m, wrong, 8, 1, &met, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("(12)");
    hlr_dataset_free(wrong);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/*
 * A model whose output is (N, 2, 3), not (N, C): fit and evaluate used to
 * train and score it as 6 classes while predict and train_batch refused it.
 * All four refuse now, with one message.
 */
START_TEST(test_classifier_calls_refuse_an_output_that_is_not_n_by_c)
{
    hlr_model *m = hlr_model_new(1);
    ck_assert_ok(hlr_model_add(m, hlr_dense(4, 3, 1))); /* over the last axis of (2, 4) */
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){2, 4}));
    enum { N = 6 };
    float x[N * 8];
    int32_t lab[N];
    test_fill(x, N * 8, 3, -1, 1);
    for (int i = 0; i < N; i++)
        lab[i] = i % 3;
    hlr_dataset *d = hlr_dataset_from(2, (int64_t[]){2, 4}, N, x, lab, 3);
    ck_assert_ptr_nonnull(d);
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    ck_assert_status(hlr_model_fit(m, o, d, &fo), HLR_ESHAPE);
    ck_assert_error_mentions("hlr_model_fit");
    ck_assert_error_mentions("(2, 3)");
    ck_assert_int_eq(hlr_model_epochs_trained(m), 0);
    hlr_metrics met;
    ck_assert_status(hlr_model_evaluate(m, d, 4, 1, &met, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("(2, 3)");
    hlr_tensor *xt = hlr_tensor_from(HLR_F32, 3, (int64_t[]){N, 2, 4}, x);
    hlr_tensor *yt = hlr_tensor_from(HLR_I32, 1, (int64_t[]){N}, lab);
    int32_t classes[N];
    ck_assert_status(hlr_model_predict(m, xt, classes, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("(2, 3)");
    ck_assert_status(hlr_model_train_batch(m, o, xt, yt, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("(2, 3)");
    hlr_tensor_free(xt);
    hlr_tensor_free(yt);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* Scores of NaN rank nowhere: evaluate used to count them as top-1 and top-k
 * hits (every comparison with NaN is false), so a model of NaNs scored 1.0. */
START_TEST(test_evaluate_counts_nan_scores_as_wrong)
{
    hlr_model *m = small_mlp(3);
    enum { N = 20 };
    float x[N * 12];
    int32_t lab[N];
    test_fill(x, N * 12, 8, -1, 1);
    for (int i = 0; i < N; i++)
        lab[i] = 0; /* the class argmax picks when every score is NaN */
    hlr_dataset *d = hlr_dataset_from(2, (int64_t[]){3, 4}, N, x, lab, 4);
    hlr_tensor *b = hlr_layer_param(hlr_model_layer(m, 4), "bias");
    ck_assert_ptr_nonnull(b);
    float *bias = hlr_tensor_f32(b);
    for (int k = 0; k < 4; k++)
        bias[k] = NAN;
    hlr_metrics met;
    int64_t conf[16];
    ck_assert_ok(hlr_model_evaluate(m, d, 8, 2, &met, conf));
    ck_assert_int_eq(met.count, N);
    ck_assert_msg(met.accuracy == 0.0 && met.top_k_accuracy == 0.0, "a model of NaNs scored top-1 %g, top-2 %g",
                  met.accuracy, met.top_k_accuracy);
    ck_assert_msg(isnan(met.loss), "loss %g", met.loss);
    int64_t total = 0;
    for (int i = 0; i < 16; i++)
        total += conf[i];
    ck_assert_int_eq(total, N);
    /* One NaN score among finite ones is wrong too, even on a true class that would win. */
    bias[0] = 100.0f;
    bias[1] = bias[2] = 0.0f;
    ck_assert_ok(hlr_model_evaluate(m, d, 8, 1, &met, NULL));
    ck_assert_close(met.accuracy, 0.0, 0.0, 0.0);
    bias[3] = 0.0f;
    ck_assert_ok(hlr_model_evaluate(m, d, 8, 1, &met, NULL));
    ck_assert_close(met.accuracy, 1.0, 0.0, 0.0);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* A clone's layers share the parameters but have no gradients: hlr_layer_grad
 * used to return a view with numel 128 and NULL data. */
START_TEST(test_clone_layer_grad_is_refused)
{
    hlr_model *m = small_mlp(3);
    hlr_model *c = hlr_model_clone_shared(m);
    ck_assert_ptr_nonnull(c);
    hlr_layer *l = hlr_model_layer(c, 1);
    hlr_tensor *w = hlr_layer_param(l, "weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_eq(hlr_tensor_f32(w), hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 1), "weight")));
    ck_assert_ptr_null(hlr_layer_grad(l, "weight"));
    ck_assert_int_eq(hlr_last_status(), HLR_ESTATE);
    ck_assert_error_mentions("clone");
    ck_assert_ptr_nonnull(hlr_layer_grad(hlr_model_layer(m, 1), "weight")); /* the original keeps its own */
    hlr_model_free(c);
    hlr_model_free(m);
}
END_TEST

/* Issue 15, defect 2: hlr_model_add(m, hlr_dropout(1.5f)) got NULL and the
 * model then built without that layer.  Now the build refuses, naming the
 * position and the constructor's message. */
START_TEST(test_build_refuses_a_model_whose_add_got_null)
{
    hlr_model *m = hlr_model_new(1);
    ck_assert_ok(hlr_model_add(m, hlr_flatten()));
    ck_assert_status(hlr_model_add(m, hlr_dropout(1.5f)), HLR_EINVAL);
    ck_assert_ok(hlr_model_add(m, hlr_dense(12, 4, 1)));
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){3, 4}), HLR_EINVAL);
    ck_assert_error_mentions("layer 1 was never added");
    ck_assert_error_mentions("hlr_dropout: p = 1.5");
    /* still refused on a second try: the model stays incomplete */
    ck_assert_status(hlr_model_build(m, 2, (int64_t[]){3, 4}), HLR_EINVAL);
    hlr_model_free(m);
    /* A NULL with no failure before it says so too. */
    m = hlr_model_new(1);
    ck_assert_status(hlr_model_add(m, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_build(m, 1, (int64_t[]){4}), HLR_EINVAL);
    ck_assert_error_mentions("layer 0 was never added");
    hlr_model_free(m);
}
END_TEST

/* Issue 15, defect 6: predict's shape error gave neither shape. */
START_TEST(test_predict_shape_error_gives_both_shapes)
{
    hlr_model *m = small_mlp(3); /* takes (3, 4) */
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 4, 3});
    int32_t classes[2];
    ck_assert_status(hlr_model_predict(m, x, classes, NULL), HLR_ESHAPE);
    ck_assert_error_mentions("hlr_model_predict");
    ck_assert_error_mentions("(2, 4, 3)");
    ck_assert_error_mentions("(N, 3, 4)");
    hlr_tensor_free(x);
    hlr_model_free(m);
}
END_TEST

/* Issue 15, defect 7: without a validation part the history said val_loss 0,
 * val_accuracy 0; it says NaN (absent) now, in memory and in the file. */
START_TEST(test_history_without_validation_is_nan)
{
    hlr_model *m = small_mlp(3);
    enum { N = 40 };
    float x[N * 12];
    int32_t lab[N];
    test_fill(x, N * 12, 8, -1, 1);
    for (int i = 0; i < N; i++)
        lab[i] = i % 4;
    hlr_dataset *d = hlr_dataset_from(2, (int64_t[]){3, 4}, N, x, lab, 4);
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.batch_size = 8;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    fo.validation_split = 0.25;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    char path[] = "/tmp/hlr-history-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_ok(hlr_model_save(m, path, NULL));
    hlr_model *back = hlr_model_load(path, NULL);
    unlink(path);
    ck_assert_ptr_nonnull(back);
    for (int k = 0; k < 2; k++) {
        hlr_epoch_stats s[2];
        for (int e = 0; e < 2; e++)
            ck_assert_ok(hlr_metadata_history(hlr_model_metadata(k ? back : m), e, &s[e]));
        ck_assert_msg(isnan(s[0].val_loss) && isnan(s[0].val_accuracy), "%s: no validation, yet val_loss %g, "
                      "val_accuracy %g", k ? "loaded" : "in memory", s[0].val_loss, s[0].val_accuracy);
        ck_assert_msg(isfinite(s[1].val_loss) && s[1].val_accuracy >= 0.0 && s[1].val_accuracy <= 1.0,
                      "with validation: val_loss %g, val_accuracy %g", s[1].val_loss, s[1].val_accuracy);
    }
    hlr_model_free(back);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

/* Per-class precision, recall and F1 against hand-computed values (scikit-learn's, zero_division=0). */
START_TEST(test_classification_report)
{
    const int64_t conf[9] = {5, 1, 0, 2, 3, 1, 0, 0, 0}; /* class 2: never present, predicted once */
    hlr_class_metrics per[3], mac, wei;
    ck_assert_ok(hlr_classification_report(conf, 3, per, &mac, &wei));
    ck_assert_close(per[0].precision, 5.0 / 7, 1e-15, 0);
    ck_assert_close(per[0].recall, 5.0 / 6, 1e-15, 0);
    ck_assert_close(per[0].f1, 10.0 / 13, 1e-15, 0);
    ck_assert_close(per[1].precision, 0.75, 1e-15, 0);
    ck_assert_close(per[1].recall, 0.5, 1e-15, 0);
    ck_assert_close(per[1].f1, 0.6, 1e-15, 0);
    ck_assert_msg(per[2].precision == 0 && per[2].recall == 0 && per[2].f1 == 0 && per[2].support == 0,
                  "class 2: %g %g %g %lld", per[2].precision, per[2].recall, per[2].f1, (long long)per[2].support);
    ck_assert_int_eq(per[0].support, 6);
    ck_assert_close(mac.precision, (5.0 / 7 + 0.75) / 3, 1e-15, 0);
    ck_assert_close(mac.f1, (10.0 / 13 + 0.6) / 3, 1e-15, 0);
    ck_assert_close(wei.recall, (5.0 / 6 + 0.5) / 2, 1e-15, 0);
    ck_assert_close(wei.f1, (10.0 / 13 + 0.6) / 2, 1e-15, 0);
    ck_assert_int_eq(wei.support, 12);
    ck_assert_ok(hlr_classification_report(conf, 3, NULL, NULL, NULL));
    ck_assert_status(hlr_classification_report(NULL, 3, per, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_classification_report(conf, 0, per, NULL, NULL), HLR_EINVAL);
    const int64_t neg[1] = {-1};
    ck_assert_status(hlr_classification_report(neg, 1, per, NULL, NULL), HLR_EINVAL);
}
END_TEST

/* train_batch must equal forward + hlr_cross_entropy + backward + step. */
START_TEST(test_custom_loss_loop_equals_train_batch)
{
    hlr_model *a = small_mlp(21), *b = small_mlp(21);
    hlr_optimizer *oa = hlr_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0), *ob = hlr_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0);
    enum { N = 6 };
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, 3, 4});
    hlr_tensor *lab = hlr_tensor_new(HLR_I32, 1, (int64_t[]){N});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 4}), *dy = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N, 4});
    for (int step = 0; step < 5; step++) {
        test_fill(hlr_tensor_f32(x), N * 12, 100 + step, -1, 1);
        for (int i = 0; i < N; i++)
            hlr_tensor_i32(lab)[i] = (i + step) % 4;
        float la, lb;
        ck_assert_ok(hlr_model_train_batch(a, oa, x, lab, &la));
        ck_assert_ok(hlr_model_forward(b, x, y, 1));
        ck_assert_ok(hlr_cross_entropy(y, lab, 0, &lb, dy));
        ck_assert_ok(hlr_model_backward(b, dy, NULL));
        ck_assert_ok(hlr_optimizer_step(ob, b));
        ck_assert_msg(la == lb, "step %d: losses %.9g and %.9g differ", step, la, lb);
    }
    for (int li = 0; li < hlr_model_num_layers(a); li++) {
        hlr_layer *l1 = hlr_model_layer(a, li), *l2 = hlr_model_layer(b, li);
        for (int p = 0; p < hlr_layer_param_count(l1); p++) {
            hlr_tensor *t1 = hlr_layer_param(l1, hlr_layer_param_name(l1, p));
            hlr_tensor *t2 = hlr_layer_param(l2, hlr_layer_param_name(l2, p));
            ck_assert_mem_eq(hlr_tensor_data(t1), hlr_tensor_data(t2), (size_t)hlr_tensor_numel(t1) * 4);
        }
    }
    ck_assert_int_eq(hlr_optimizer_steps(oa), 5);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_optimizer_free(oa);
    hlr_optimizer_free(ob);
    hlr_model_free(a);
    hlr_model_free(b);
}
END_TEST

START_TEST(test_train_batch_validates_targets)
{
    hlr_model *m = small_mlp(0);
    hlr_optimizer *o = hlr_sgd(0.1f, 0.9f, 0, 0);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){3, 3, 4});
    hlr_tensor *lab = hlr_tensor_new(HLR_I32, 1, (int64_t[]){3});
    hlr_tensor *lab2 = hlr_tensor_new(HLR_I32, 1, (int64_t[]){2});
    hlr_tensor *flt = hlr_tensor_new(HLR_F32, 1, (int64_t[]){3});
    hlr_tensor_i32(lab)[1] = 4;
    ck_assert_status(hlr_model_train_batch(m, o, x, lab, NULL), HLR_EINVAL);
    ck_assert_error_mentions("label 4");
    hlr_tensor_i32(lab)[1] = -1;
    ck_assert_status(hlr_model_train_batch(m, o, x, lab, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_train_batch(m, o, x, lab2, NULL), HLR_ESHAPE);
    ck_assert_status(hlr_model_train_batch(m, o, x, flt, NULL), HLR_EINVAL);
    ck_assert_int_eq(hlr_optimizer_steps(o), 0);
    ck_assert_status(hlr_model_set_loss(m, (hlr_loss_kind)7, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_set_loss(m, HLR_LOSS_CROSS_ENTROPY, 1.0f), HLR_EINVAL);
    ck_assert_status(hlr_model_set_loss(m, HLR_LOSS_CROSS_ENTROPY, NAN), HLR_EINVAL);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_tensor_free(lab2);
    hlr_tensor_free(flt);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* A dense layer fits y = 2x0 - x1 + 0.5 with the MSE loss. */
START_TEST(test_mse_regression_learns_a_linear_map)
{
    hlr_model *m = hlr_model_new(4);
    hlr_layer *d = hlr_dense(2, 1, 1);
    ck_assert_ok(hlr_model_add(m, d));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){2}));
    ck_assert_ok(hlr_model_set_loss(m, HLR_LOSS_MSE, 0));
    hlr_optimizer *o = hlr_sgd(0.1f, 0.9f, 0, 0);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 2, (int64_t[]){16, 2});
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 2, (int64_t[]){16, 1});
    float loss = 0;
    for (int step = 0; step < 300; step++) {
        float *xv = hlr_tensor_f32(x), *tv = hlr_tensor_f32(t);
        test_fill(xv, 32, (unsigned long long)step + 1, -1, 1);
        for (int i = 0; i < 16; i++)
            tv[i] = 2 * xv[2 * i] - xv[2 * i + 1] + 0.5f;
        ck_assert_ok(hlr_model_train_batch(m, o, x, t, &loss));
    }
    const float *w = hlr_tensor_f32(hlr_layer_param(d, "weight")), *b = hlr_tensor_f32(hlr_layer_param(d, "bias"));
    ck_assert_close(w[0], 2.0, 0, 1e-3);
    ck_assert_close(w[1], -1.0, 0, 1e-3);
    ck_assert_close(b[0], 0.5, 0, 1e-3);
    ck_assert_msg(loss < 1e-6, "final loss %g", loss);
    hlr_tensor *wrong = hlr_tensor_new(HLR_F32, 2, (int64_t[]){16, 2});
    ck_assert_status(hlr_model_train_batch(m, o, x, wrong, NULL), HLR_ESHAPE);
    hlr_tensor_free(wrong);
    hlr_tensor_free(x);
    hlr_tensor_free(t);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_non_finite_loss_leaves_parameters_unchanged)
{
    hlr_model *m = small_mlp(0);
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){2, 3, 4});
    hlr_tensor *lab = hlr_tensor_new(HLR_I32, 1, (int64_t[]){2});
    hlr_tensor_f32(x)[5] = NAN;
    hlr_layer *d = hlr_model_layer(m, 1);
    float before[12 * 16];
    memcpy(before, hlr_tensor_f32(hlr_layer_param(d, "weight")), sizeof before);
    float loss;
    ck_assert_status(hlr_model_train_batch(m, o, x, lab, &loss), HLR_ENUMERIC);
    ck_assert_mem_eq(before, hlr_tensor_f32(hlr_layer_param(d, "weight")), sizeof before);
    ck_assert_int_eq(hlr_optimizer_steps(o), 0);
    hlr_tensor_free(x);
    hlr_tensor_free(lab);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* Once the buffers are planned, training and inference allocate nothing. */
START_TEST(test_per_batch_loop_allocates_nothing)
{
    hlr_model *m = small_mlp(1);
    hlr_optimizer *o = hlr_adamw(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){32, 3, 4});
    hlr_tensor *small = hlr_tensor_new(HLR_F32, 3, (int64_t[]){7, 3, 4});
    hlr_tensor *lab = hlr_tensor_new(HLR_I32, 1, (int64_t[]){32});
    hlr_tensor *lab7 = hlr_tensor_new(HLR_I32, 1, (int64_t[]){7});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){32, 4});
    test_fill(hlr_tensor_f32(x), 32 * 12, 1, -1, 1);
    test_fill(hlr_tensor_f32(small), 7 * 12, 2, -1, 1);
    int32_t cls[32];
    ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL)); /* plans buffers and optimizer state */
    long before = atomic_load(&hlr__alloc_count);
    for (int i = 0; i < 20; i++) {
        ck_assert_ok(hlr_model_train_batch(m, o, x, lab, NULL));
        ck_assert_ok(hlr_model_train_batch(m, o, small, lab7, NULL)); /* a smaller last batch */
        ck_assert_ok(hlr_model_forward(m, x, y, 0));
        ck_assert_ok(hlr_model_predict(m, small, cls, NULL));
    }
    long after = atomic_load(&hlr__alloc_count);
    ck_assert_msg(after == before, "%ld allocations in 20 rounds of training and inference", after - before);

    /* fit: its set-up allocates, its epochs do not: 1 and 4 epochs allocate alike. */
    float dx[200 * 12];
    int32_t dl[200];
    test_fill(dx, 200 * 12, 3, -1, 1);
    for (int i = 0; i < 200; i++)
        dl[i] = i % 4;
    hlr_dataset *d = hlr_dataset_from(2, (int64_t[]){3, 4}, 200, dx, dl, 4);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.batch_size = 32;
    fo.validation_split = 0.1;
    long counts[2];
    for (int k = 0; k < 2; k++) {
        fo.epochs = k == 0 ? 1 : 4;
        long b0 = atomic_load(&hlr__alloc_count);
        ck_assert_ok(hlr_model_fit(m, o, d, &fo));
        counts[k] = atomic_load(&hlr__alloc_count) - b0;
    }
    ck_assert_msg(counts[0] == counts[1], "fit allocated %ld times for 1 epoch, %ld for 4", counts[0], counts[1]);
    hlr_dataset_free(d);
    hlr_tensor_free(x);
    hlr_tensor_free(small);
    hlr_tensor_free(lab);
    hlr_tensor_free(lab7);
    hlr_tensor_free(y);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* ====================================================================== */
/* Forms kept from the weights (Winograd filters, folded batch norms,       */
/* W_hh^T): every writer must reach the next pass                           */
/* ====================================================================== */

/* The kinds of model with such forms (kind 0 to 3): convolutions (a batch norm folded into the first in
 * inference, its bias too, the second by Winograd's algorithm) on (4, 8, 8) images, an LSTM on (5, 6)
 * sequences, dense layers on the same sequences (each row of 6 through the first: packed weights in
 * inference past hlrk_gemm_rows_max() rows, kernels.h), and a GRU on them; 5 classes. */
static hlr_model *forms_model(int kind, uint64_t seed)
{
    hlr_model *m =
        kind == 3   ? TEST_MODEL(seed, hlr_gru(6, 8, 1, 0, 0.0f), hlr_dense(8, 5, 1))
        : kind == 2 ? TEST_MODEL(seed, hlr_dense(6, 16, 1), hlr_relu(), hlr_flatten(), hlr_dense(80, 5, 1))
        : kind      ? TEST_MODEL(seed, hlr_lstm(6, 8, 1, 0, 0.0f), hlr_dense(8, 5, 1))
                  : TEST_MODEL(seed, hlr_conv2d(4, 16, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                          hlr_batchnorm2d(16, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 2, 0),
                          hlr_conv2d(16, 16, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                          hlr_flatten(), hlr_dense(256, 5, 1));
    ck_assert_ok(kind ? hlr_model_build(m, 2, (int64_t[]){5, 6}) : hlr_model_build(m, 3, (int64_t[]){4, 8, 8}));
    ck_assert_ok(hlr_model_set_loss(m, HLR_LOSS_CROSS_ENTROPY, 0.0f));
    return m;
}

/* n samples for forms_model(kind), filled from seed. */
static hlr_tensor *forms_input(int kind, int64_t n, unsigned long long seed)
{
    hlr_tensor *x = kind ? hlr_tensor_new(HLR_F32, 3, (int64_t[]){n, 5, 6})
                         : hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, 4, 8, 8});
    ck_assert_ptr_nonnull(x);
    test_fill(hlr_tensor_f32(x), (long)hlr_tensor_numel(x), seed, -1.0f, 1.0f);
    return x;
}

/* m's inference on x has the bits of a copy of ref made from its file (forms made afresh); m then passes
 * once more, so that its forms are up to date with the generation. */
static void expect_predicts_as_fresh(const char *what, hlr_model *m, const hlr_model *ref, const hlr_tensor *x)
{
    const int64_t n = hlr_tensor_dim(x, 0);
    hlr_tensor *y1 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){n, 5}), *y2 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){n, 5});
    void *buf = NULL;
    size_t size = 0;
    ck_assert_ok(hlr_model_forward(m, x, y1, 0)); /* first: the load advances the weight generation */
    ck_assert_ok(hlr_model_save_buffer(ref, NULL, &buf, &size));
    hlr_model *fresh = hlr_model_load_buffer(buf, size, NULL);
    ck_assert_msg(fresh != NULL, "%s: %s", what, hlr_last_error());
    ck_assert_ok(hlr_model_forward(fresh, x, y2, 0));
    test_expect_same_bits(what, hlr_tensor_f32(y1), hlr_tensor_f32(y2), n * 5);
    /* m's forms checked at the generation the load left: the next writer alone must make them look again */
    ck_assert_ok(hlr_model_forward(m, x, y1, 0));
    hlr_buffer_free(buf);
    hlr_model_free(fresh);
    hlr_tensor_free(y1);
    hlr_tensor_free(y2);
}

/* The forms are used without comparing the weights while nothing can have written them (internal.h's
 * weight generation): each writer in turn, after a pass that made the forms, must reach the next pass.
 * Batches of 1 and 24 (an LSTM's one sequence and a batch take different paths). */
START_TEST(test_forms_kept_from_the_weights_follow_every_writer)
{
    const int kind = _i, lstm = kind == 1 || kind == 3; /* the recurrent ones: their parameters' names */
    const int32_t labels[24] = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3};
    hlr_model *m = forms_model(kind, 5);
    hlr_tensor *x = forms_input(kind, 24, 1), *x1 = forms_input(kind, 1, 2), *x2 = forms_input(kind, 24, 3);
    /* 12 sequences: by rows through the packed weights where the CPU has FMA, [W_ih; W_hh]^T where not (rnn.h,
     * RNN_JOINT_MAX) */
    hlr_tensor *x12 = forms_input(kind, 12, 8);
    hlr_tensor *y12 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){12, 5});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){24, 5});
    hlr_tensor *t = hlr_tensor_from(HLR_I32, 1, (int64_t[]){24}, labels);
    ck_assert_ptr_nonnull(t);
    expect_predicts_as_fresh("first passes", m, m, x);
    expect_predicts_as_fresh("first passes, one sample", m, m, x1);
    /* a training pass alone (batch norm's running statistics) */
    ck_assert_ok(hlr_model_forward(m, x2, y, 1));
    expect_predicts_as_fresh("after a training pass", m, m, x);
    expect_predicts_as_fresh("after a training pass, one sample", m, m, x1);
    /* an optimizer's step, the forms of 12 samples made just before it */
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    float loss;
    ck_assert_ok(hlr_model_forward(m, x12, y12, 0));
    ck_assert_ok(hlr_model_train_batch(m, o, x2, t, &loss));
    expect_predicts_as_fresh("after a step, 12 samples", m, m, x12);
    expect_predicts_as_fresh("after a step", m, m, x);
    expect_predicts_as_fresh("after a step, one sample", m, m, x1);
    /* inference clones sharing the weights: formed, then the original trains */
    hlr_model *c = hlr_model_clone_shared(m), *c2 = hlr_model_clone_shared(m);
    ck_assert(c && c2);
    expect_predicts_as_fresh("a clone", c, m, x);
    ck_assert_ok(hlr_model_forward(c, x12, y12, 0));
    ck_assert_ok(hlr_model_train_batch(m, o, x, t, &loss));
    expect_predicts_as_fresh("a clone after its original's step, 12 samples", c, m, x12);
    expect_predicts_as_fresh("a clone after its original's step", c, m, x);
    expect_predicts_as_fresh("a clone after its original's step, one sample", c, m, x1);
    /* a caller's writes through a view of one clone's layer reach the original's forms and the other
     * clone's: before each write every model's forms are brought up to date (a check's load moves the
     * generation), after it one model is checked */
    hlr_tensor *w = hlr_layer_param(hlr_model_layer(c, 0), lstm ? "weight_hh_l0" : "weight");
    ck_assert_ptr_nonnull(w);
    hlr_model *const sharing[3] = {m, c, c2};
    const char *const whose[3] = {"the original", "the clone written through", "another clone"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 3; i++)
            ck_assert_ok(hlr_model_forward(sharing[i], x, y, 0));
        hlr_tensor_f32(w)[3 + 4 * k] += 0.25f;
        expect_predicts_as_fresh(whose[k], sharing[k], m, x);
    }
    hlr_model_free(c);
    hlr_model_free(c2);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    /* a view taken before the first pass and written after it: W_hh or W_ih; the batch norm's scale, or
     * the convolution's bias, each folded with the other's tensors */
    for (int k = 0; k < 2; k++) {
        m = forms_model(kind, 6);
        hlr_tensor *v = lstm        ? hlr_layer_param(hlr_model_layer(m, 0), k ? "weight_ih_l0" : "weight_hh_l0")
                        : kind == 2 ? hlr_layer_param(hlr_model_layer(m, k ? 3 : 0), "weight")
                                    : hlr_layer_param(hlr_model_layer(m, k), k ? "weight" : "bias");
        ck_assert_ptr_nonnull(v);
        expect_predicts_as_fresh("before the write", m, m, x);
        expect_predicts_as_fresh("before the write, 12 samples", m, m, x12);
        hlr_tensor_f32(v)[1] += 0.5f;
        expect_predicts_as_fresh("after a write through a view taken before, 12 samples", m, m, x12);
        expect_predicts_as_fresh("after a write through a view taken before", m, m, x);
        hlr_model_free(m);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(x1);
    hlr_tensor_free(x2);
    hlr_tensor_free(x12);
    hlr_tensor_free(y12);
    hlr_tensor_free(y);
    hlr_tensor_free(t);
}
END_TEST

static int record_epoch(const hlr_epoch_stats *s, void *user)
{
    *(hlr_epoch_stats *)user = *s;
    return 0;
}

/* Early stopping's restore of the best epoch's weights after the last epoch's validation made the forms. */
START_TEST(test_forms_follow_the_restore_of_the_best_weights)
{
    const int kind = _i;
    enum { N = 80 };
    int32_t labels[N];
    for (int i = 0; i < N; i++)
        labels[i] = (i * 7) % 5;
    hlr_tensor *x = forms_input(kind, N, 4);
    hlr_dataset *d = kind ? hlr_dataset_from(2, (int64_t[]){5, 6}, N, hlr_tensor_f32(x), labels, 5)
                          : hlr_dataset_from(3, (int64_t[]){4, 8, 8}, N, hlr_tensor_f32(x), labels, 5);
    ck_assert_ptr_nonnull(d);
    hlr_model *m = forms_model(kind, 7);
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    hlr_epoch_stats last = {0};
    fo.epochs = 3;
    fo.batch_size = 16; /* validation batches of 16 and 4: an LSTM's [W_ih; W_hh]^T at 16 (rnn.h) */
    fo.validation_split = 0.25;
    fo.early_stopping = (hlr_early_stopping){.patience = 5, .monitor = HLR_MONITOR_VAL_LOSS, .min_delta = 1e9,
                                             .restore_best = 1}; /* only epoch 1 is ever the best */
    fo.on_epoch = record_epoch;
    fo.user = &last;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_int_eq(last.epoch, 3);
    ck_assert_int_eq(last.best_epoch, 1);
    hlr_tensor *x16 = forms_input(kind, 16, 9); /* no larger than the fit's batches: an LSTM plans afresh for more */
    expect_predicts_as_fresh("after the restore", m, m, x16);
    hlr_tensor_free(x16);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    hlr_tensor_free(x);
}
END_TEST

Suite *suite_model(void);
Suite *suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *t = tcase_create("model");
    tcase_add_test(t, test_null_handles_are_refused_not_crashed_on);
    tcase_add_test(t, test_add_and_build_enforce_their_order);
    tcase_add_test(t, test_calls_before_build_give_state_errors);
    tcase_add_test(t, test_forward_rejects_wrong_shapes_and_dtypes_with_clear_messages);
    tcase_add_test(t, test_summary_lists_layers_shapes_and_totals);
    tcase_add_test(t, test_predict_gives_argmax_and_probabilities);
    tcase_add_test(t, test_evaluate_counts_confusion_and_top_k);
    tcase_add_test(t, test_classifier_calls_refuse_an_output_that_is_not_n_by_c);
    tcase_add_test(t, test_evaluate_counts_nan_scores_as_wrong);
    tcase_add_test(t, test_clone_layer_grad_is_refused);
    tcase_add_test(t, test_build_refuses_a_model_whose_add_got_null);
    tcase_add_test(t, test_predict_shape_error_gives_both_shapes);
    tcase_add_test(t, test_history_without_validation_is_nan);
    tcase_add_test(t, test_classification_report);
    tcase_add_test(t, test_custom_loss_loop_equals_train_batch);
    tcase_add_test(t, test_train_batch_validates_targets);
    tcase_add_test(t, test_mse_regression_learns_a_linear_map);
    tcase_add_test(t, test_non_finite_loss_leaves_parameters_unchanged);
    tcase_add_test(t, test_per_batch_loop_allocates_nothing);
    tcase_add_loop_test(t, test_forms_kept_from_the_weights_follow_every_writer, 0, 4);
    tcase_add_loop_test(t, test_forms_follow_the_restore_of_the_best_weights, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

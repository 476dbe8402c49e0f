/*
 * test_calibrate.c -- calibrated confidence: ECE, MCE, NLL and Brier score on
 * hand-worked numbers, temperature scaling fitted to data drawn at a known
 * temperature, accuracy unchanged by construction, and the temperature in
 * model files (format 1.1, TEMP), clones and refusals.
 */
#include "testutil_internal.h"

#include "modelfile.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

Suite *suite_calibrate(void);

/* Four samples, two classes, confidences 0.875 (right), 0.75 (wrong), 0.625 (right), 0.5625 (right): with
 * ten bins each sits alone in its bin, so ECE = (0.125 + 0.75 + 0.375 + 0.4375) / 4 and MCE = 0.75. */
START_TEST(test_metrics_on_worked_numbers)
{
    const float probs[] = {0.875f, 0.125f, 0.25f, 0.75f, 0.625f, 0.375f, 0.4375f, 0.5625f};
    const int32_t labels[] = {0, 0, 0, 1};
    hlr_calibration c;
    int64_t cnt[10];
    double conf[10], acc[10];
    ck_assert_ok(hlr_calibration_metrics(probs, labels, 4, 2, 10, &c, cnt, conf, acc));
    ck_assert_int_eq(c.count, 4);
    ck_assert_int_eq(c.bins, 10);
    ck_assert_close(c.ece, (0.125 + 0.75 + 0.375 + 0.4375) / 4, 1e-12, 0);
    ck_assert_close(c.mce, 0.75, 1e-12, 0);
    ck_assert_close(c.accuracy, 0.75, 1e-12, 0);
    ck_assert_close(c.nll, -(log(0.875) + log(0.25) + log(0.625) + log(0.5625)) / 4, 1e-12, 0);
    double brier = (2 * 0.125 * 0.125 + 2 * 0.75 * 0.75 + 2 * 0.375 * 0.375 + 2 * 0.4375 * 0.4375) / 4;
    ck_assert_close(c.brier, brier, 1e-12, 0);
    const int64_t want[10] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 0}; /* bins (0.5, 0.6] ... (0.8, 0.9] */
    for (int b = 0; b < 10; b++)
        ck_assert_int_eq(cnt[b], want[b]);
    ck_assert_close(conf[7], 0.75, 1e-12, 0);
    ck_assert_close(acc[7], 0.0, 0, 0);
    ck_assert_close(acc[8], 1.0, 0, 0);
    /* one bin: ECE is |accuracy - mean confidence| */
    ck_assert_ok(hlr_calibration_metrics(probs, labels, 4, 2, 1, &c, NULL, NULL, NULL));
    ck_assert_close(c.ece, fabs(0.75 - (0.875 + 0.75 + 0.625 + 0.5625) / 4), 1e-12, 0);
}
END_TEST

START_TEST(test_metrics_refuse_bad_input)
{
    const float probs[] = {0.5f, 0.5f, 1.5f, -0.5f};
    const int32_t labels[] = {0, 1};
    hlr_calibration c;
    ck_assert_status(hlr_calibration_metrics(NULL, labels, 1, 2, 15, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_calibration_metrics(probs, labels, 0, 2, 15, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_calibration_metrics(probs, labels, 1, 1, 15, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_calibration_metrics(probs, labels, 1, 2, 0, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_calibration_metrics(probs, labels, 1, 2, HLR_CALIBRATION_MAX_BINS + 1, &c, NULL, NULL,
                                             NULL), HLR_EINVAL);
    ck_assert_status(hlr_calibration_metrics(probs, labels, 2, 2, 15, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_error_mentions("outside [0, 1]");
    const int32_t bad[] = {2};
    ck_assert_status(hlr_calibration_metrics(probs, bad, 1, 2, 15, &c, NULL, NULL, NULL), HLR_EINVAL);
    ck_assert_error_mentions("label 2");
}
END_TEST

/* A linear classifier (dense, no bias) with known weights, and n samples whose labels are drawn
 * from softmax(logits / t0): the temperature that fits them is t0, up to sampling noise. */
enum { F = 6, C = 4 };

static hlr_model *linear_model(void)
{
    hlr_model *m = TEST_MODEL(1, hlr_dense(F, C, 0));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){F}));
    float *w = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "weight"));
    for (int i = 0; i < C * F; i++)
        w[i] = (float)(((i * 7) % 11) - 5) * 0.6f;
    return m;
}

static hlr_dataset *drawn_at(hlr_model *m, int64_t n, double t0, uint64_t seed)
{
    float *x = malloc((size_t)n * F * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    const float *w = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "weight"));
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        double z[C], mx = -1e300, sum = 0;
        for (int f = 0; f < F; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i * F + f] = (float)((s >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
        }
        for (int c = 0; c < C; c++) {
            z[c] = 0;
            for (int f = 0; f < F; f++)
                z[c] += (double)w[c * F + f] * x[i * F + f];
            z[c] /= t0;
            mx = z[c] > mx ? z[c] : mx;
        }
        for (int c = 0; c < C; c++)
            sum += z[c] = exp(z[c] - mx);
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (s >> 11) * 0x1.0p-53 * sum;
        int c = 0;
        while (c < C - 1 && (u -= z[c]) > 0)
            c++;
        y[i] = c;
    }
    hlr_dataset *d = hlr_dataset_from(1, (int64_t[]){F}, n, x, y, C);
    free(x);
    free(y);
    ck_assert_ptr_nonnull(d);
    return d;
}

START_TEST(test_temperature_fits_the_temperature_the_labels_were_drawn_at)
{
    hlr_model *m = linear_model();
    const double t0 = _i == 0 ? 2.5 : 0.6; /* over- and under-confident logits */
    hlr_dataset *val = drawn_at(m, 20000, t0, 11), *test = drawn_at(m, 20000, t0, 12);
    hlr_calibration before, after;
    ck_assert_ok(hlr_model_calibration(m, test, 512, 15, &before, NULL, NULL, NULL));
    double t = 0;
    ck_assert_ok(hlr_model_fit_temperature(m, val, 512, &t));
    ck_assert_msg(fabs(t / t0 - 1) < 0.05, "fitted T = %g, the labels were drawn at %g", t, t0);
    ck_assert_double_eq(hlr_model_temperature(m), t);
    ck_assert_ok(hlr_model_calibration(m, test, 512, 15, &after, NULL, NULL, NULL));
    ck_assert_msg(after.ece < 0.02 && after.ece < before.ece / 2, "ECE %g before, %g after", before.ece, after.ece);
    ck_assert_msg(after.nll < before.nll, "NLL %g before, %g after", before.nll, after.nll);
    ck_assert_double_eq(after.accuracy, before.accuracy); /* the arg-max cannot change */
    /* predict applies it: its probabilities are softmax(logits / T), its classes unchanged */
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 2, (int64_t[]){8, F}, (void *)hlr_dataset_inputs(test));
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){8, C}), *p = hlr_tensor_new(HLR_F32, 2, (int64_t[]){8, C});
    int32_t cls[8];
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_predict(m, x, cls, p));
    for (int i = 0; i < 8; i++) {
        const float *z = hlr_tensor_f32(y) + i * C, *pi = hlr_tensor_f32(p) + i * C;
        double mx = z[0], sum = 0;
        int best = 0;
        for (int c = 1; c < C; c++) {
            mx = z[c] > mx ? z[c] : mx;
            best = z[c] > z[best] ? c : best;
        }
        for (int c = 0; c < C; c++)
            sum += exp((z[c] - mx) / t);
        for (int c = 0; c < C; c++)
            ck_assert_close(pi[c], exp((z[c] - mx) / t) / sum, 1e-5, 1e-6);
        ck_assert_int_eq(cls[i], best);
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(p);
    hlr_dataset_free(val);
    hlr_dataset_free(test);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_temperature_travels_in_files_and_clones)
{
    hlr_model *m = linear_model();
    void *buf;
    size_t len;
    /* 1.0 without a temperature */
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    ck_assert_int_eq(((unsigned char *)buf)[10], 0);
    hlr_buffer_free(buf);
    ck_assert_ok(hlr_model_set_temperature(m, 1.75));
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    ck_assert_int_eq(((unsigned char *)buf)[10], 1); /* format 1.1 */
    hlr_model *back = hlr_model_load_buffer(buf, len, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert_double_eq(hlr_model_temperature(back), 1.75);
    hlr_model_info *in = hlr_model_info_load_buffer(buf, len);
    hlr_file_summary s;
    ck_assert_ok(hlr_model_info_summary(in, &s, sizeof s));
    ck_assert_int_eq(s.format_minor, 1);
    ck_assert_double_eq(s.temperature, 1.75);
    hlr_model_info_free(in);
    hlr_buffer_free(buf);
    hlr_model *c = hlr_model_clone_shared(back);
    ck_assert_double_eq(hlr_model_temperature(c), 1.75);
    hlr_model_free(c);
    hlr_model_free(back);
    /* a hostile TEMP: a temperature out of range is refused, naming it */
    hlr_save_options so;
    hlr_save_options_default(&so);
    hlr_bytes b;
    uint32_t flags;
    ck_assert_ok(hlr__file_payload(m, &so, &b, &flags));
    unsigned char *tag = NULL;
    for (size_t i = 0; i + 4 <= b.len && !tag; i++)
        if (!memcmp(b.p + i, "TEMP", 4))
            tag = b.p + i;
    ck_assert_ptr_nonnull(tag);
    const double huge = 1e9;
    memcpy(tag + 12, &huge, 8); /* little-endian f64, as the writer puts it on this machine */
    void *f;
    size_t flen;
    ck_assert_ok(hlr__file_wrap_minor(b.p, b.len, 6, 1, flags, &f, &flen));
    ck_assert_ptr_null(hlr_model_load_buffer(f, flen, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("temperature");
    free(f);
    hlr__bytes_free(&b);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_temperature_refusals)
{
    hlr_model *m = linear_model();
    ck_assert_status(hlr_model_set_temperature(NULL, 2), HLR_EINVAL);
    ck_assert_status(hlr_model_set_temperature(m, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_set_temperature(m, NAN), HLR_EINVAL);
    ck_assert_status(hlr_model_set_temperature(m, 1e4), HLR_EINVAL);
    ck_assert_double_eq(hlr_model_temperature(m), 1.0);
    ck_assert_double_eq(hlr_model_temperature(NULL), 1.0);
    hlr_dataset *d = drawn_at(m, 64, 1.0, 3);
    ck_assert_status(hlr_model_fit_temperature(m, d, 0, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_fit_temperature(m, NULL, 16, NULL), HLR_EINVAL);
    hlr_calibration c;
    ck_assert_status(hlr_model_calibration(m, d, 16, 0, &c, NULL, NULL, NULL), HLR_EINVAL);
    hlr_model *mse = TEST_MODEL(1, hlr_dense(F, C, 1));
    ck_assert_ok(hlr_model_set_loss(mse, HLR_LOSS_MSE, 0));
    ck_assert_status(hlr_model_set_temperature(mse, 2), HLR_EUNSUPPORTED);
    ck_assert_ok(hlr_model_build(mse, 1, (int64_t[]){F}));
    ck_assert_status(hlr_model_fit_temperature(mse, d, 16, NULL), HLR_EUNSUPPORTED);
    hlr_model *unbuilt = TEST_MODEL(1, hlr_dense(F, C, 1));
    ck_assert_status(hlr_model_fit_temperature(unbuilt, d, 16, NULL), HLR_ESTATE);
    hlr_model_free(unbuilt);
    hlr_model_free(mse);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

Suite *suite_calibrate(void)
{
    Suite *s = suite_create("calibrate");
    TCase *t = tcase_create("temperature");
    tcase_add_test(t, test_metrics_on_worked_numbers);
    tcase_add_test(t, test_metrics_refuse_bad_input);
    tcase_add_loop_test(t, test_temperature_fits_the_temperature_the_labels_were_drawn_at, 0, 2);
    tcase_add_test(t, test_temperature_travels_in_files_and_clones);
    tcase_add_test(t, test_temperature_refusals);
    suite_add_tcase(s, t);
    return s;
}

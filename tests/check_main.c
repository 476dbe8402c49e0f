/*
 * check_main.c -- runs every Check suite of libhlr.  `bin/hlr-tests` runs
 * all; `CK_RUN_SUITE=name` or `CK_RUN_CASE=name` pick one (Check's own
 * variables).
 */
#include <check.h>
#include <stdlib.h>

Suite *suite_tensor(void);
Suite *suite_layers(void);
Suite *suite_gradcheck(void);
Suite *suite_loss(void);
Suite *suite_optim(void);
Suite *suite_torch(void);
Suite *suite_dataset(void);
Suite *suite_model(void);
Suite *suite_train(void);
Suite *suite_recurrent(void);
Suite *suite_format(void);
Suite *suite_conv(void);
Suite *suite_attention(void);
Suite *suite_transformer(void);
Suite *suite_parallel(void);
Suite *suite_image(void);
Suite *suite_control(void);
Suite *suite_ctc(void);
Suite *suite_distributed(void);
Suite *suite_calibrate(void);
Suite *suite_explain(void);
Suite *suite_onnx(void);

int main(void)
{
    SRunner *sr = srunner_create(suite_tensor());
    srunner_add_suite(sr, suite_layers());
    srunner_add_suite(sr, suite_gradcheck());
    srunner_add_suite(sr, suite_loss());
    srunner_add_suite(sr, suite_optim());
    srunner_add_suite(sr, suite_torch());
    srunner_add_suite(sr, suite_dataset());
    srunner_add_suite(sr, suite_model());
    srunner_add_suite(sr, suite_train());
    srunner_add_suite(sr, suite_recurrent());
    srunner_add_suite(sr, suite_format());
    srunner_add_suite(sr, suite_conv());
    srunner_add_suite(sr, suite_attention());
    srunner_add_suite(sr, suite_transformer());
    srunner_add_suite(sr, suite_parallel());
    srunner_add_suite(sr, suite_image());
    srunner_add_suite(sr, suite_control());
    srunner_add_suite(sr, suite_ctc());
    srunner_add_suite(sr, suite_distributed());
    srunner_add_suite(sr, suite_calibrate());
    srunner_add_suite(sr, suite_explain());
    srunner_add_suite(sr, suite_onnx());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * test_onnx.c -- hlr_model_export_onnx: the graph read back with protobuf-c (operators, shapes, opset,
 * parameters bit for bit, the LSTM's gates in ONNX's order), the file equal to the buffer, and every
 * refusal; an export imported back gives the same bits, and damaged files fail cleanly.  That ONNX Runtime computes what libhlr computes is tests/onnx/test_onnx.py's part.
 */
#include "testutil.h"

#include "../src/internal.h"
#include "onnx.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A small model of most importable layers, built and with batch norm statistics that are not the identity. */
static hlr_model *import_case(void)
{
    hlr_model *m =
        TEST_MODEL(7, hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                   hlr_batchnorm2d(4, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 2, 0), hlr_feature_map_columns(),
                   hlr_gru(8, 5, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.0f), hlr_dense(10, 3, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 4, 6}));
    float *mean = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 1), "running_mean"));
    float *var = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 1), "running_var"));
    for (int c = 0; c < 4; c++)
        mean[c] = 0.1f * (float)c - 0.1f, var[c] = 0.5f + 0.25f * (float)c;
    return m;
}

/* m and its imported twin give the same bits on one random batch x (xd) -> (yd, ynd dimensions). */
static void expect_same_outputs(hlr_model *m, hlr_model *back, const int64_t xd[4], int ynd, const int64_t *yd,
                                unsigned long long seed)
{
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, xd);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, ynd, yd), *z = hlr_tensor_new(HLR_F32, ynd, yd);
    ck_assert(x && y && z);
    test_fill(hlr_tensor_f32(x), hlr_tensor_numel(x), seed, -1.0f, 1.0f);
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_forward(back, x, z, 0));
    ck_assert(memcmp(hlr_tensor_f32(y), hlr_tensor_f32(z), (size_t)hlr_tensor_numel(y) * sizeof(float)) == 0);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(z);
}

START_TEST(test_an_export_imports_back_to_the_same_bits)
{
    hlr_model *m = import_case();
    void *data;
    size_t size;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &data, &size));
    hlr_model *back = hlr_model_import_onnx_buffer(data, size);
    ck_assert_msg(back != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(hlr_model_num_layers(back), hlr_model_num_layers(m));
    for (int i = 0; i < hlr_model_num_layers(m); i++)
        ck_assert_str_eq(hlr_layer_type(hlr_model_layer(back, i)), hlr_layer_type(hlr_model_layer(m, i)));
    expect_same_outputs(m, back, (int64_t[]){3, 1, 4, 6}, 3, (int64_t[]){3, 3, 3}, 5);
    hlr_model_free(back);
    hlr_buffer_free(data);
    hlr_model_free(m);
}
END_TEST

/* Rectangular poolings export with their per-axis kernel_shape, strides and pads and import back as the
 * same layers (the same layer table, output shapes included) with the same outputs. */
START_TEST(test_rectangular_poolings_export_and_import_back)
{
    hlr_model *m = TEST_MODEL(3, hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                              hlr_maxpool2d_hw(2, 1, 0, 0, 0, 0), hlr_avgpool2d_hw(3, 2, 1, 2, 1, 1), hlr_flatten(),
                              hlr_dense(2 * 4 * 4, 3, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 7}));
    void *data;
    size_t size;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &data, &size));
    hlr_model *back = hlr_model_import_onnx_buffer(data, size);
    ck_assert_msg(back != NULL, "%s", hlr_last_error());
    ck_assert_str_eq(hlr_layer_type(hlr_model_layer(back, 1)), "maxpool2d");
    ck_assert_str_eq(hlr_layer_type(hlr_model_layer(back, 2)), "avgpool2d");
    int64_t shape[HLR_MAX_DIMS];
    int nd;
    ck_assert_ok(hlr_model_output_shape(back, &nd, shape));
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(shape[0], 3);
    /* the same layers with the same output shapes: (2, 4, 7) after the 2 x 1, (2, 4, 4) after the 3 x 2 */
    char sa[2048], sb[2048];
    ck_assert_ok(hlr_model_summary(m, sa, sizeof sa, NULL));
    ck_assert_ok(hlr_model_summary(back, sb, sizeof sb, NULL));
    ck_assert_str_eq(sa, sb);
    ck_assert_msg(strstr(sa, "(2, 4, 7)") && strstr(sa, "(2, 4, 4)"), "%s", sa);
    expect_same_outputs(m, back, (int64_t[]){2, 1, 8, 7}, 2, (int64_t[]){2, 3}, 9);
    hlr_model_free(back);
    hlr_buffer_free(data);
    hlr_model_free(m);
}
END_TEST

/* A damaged file fails with a clear status, or (a change the parser cannot see, in a weight) imports to a
 * model that runs. */
static void import_damaged(const void *data, size_t size, int *failed)
{
    hlr_model *m = hlr_model_import_onnx_buffer(data, size);
    if (!m) {
        hlr_status st = hlr_last_status();
        ck_assert_msg(st == HLR_EFORMAT || st == HLR_EUNSUPPORTED || st == HLR_EINVAL || st == HLR_ESHAPE,
                      "status %d: %s", st, hlr_last_error());
        ck_assert(strstr(hlr_last_error(), "hlr_model_import_onnx") != NULL);
        (*failed)++;
        return;
    }
    int nd;
    int64_t shape[HLR_MAX_DIMS + 1] = {2};
    ck_assert_ok(hlr_model_input_shape(m, &nd, shape + 1));
    int64_t n = 2;
    for (int i = 1; i <= nd; i++)
        n *= shape[i];
    if (n <= 1 << 16) {
        /* zeros are valid token ids too: the model's own dtype */
        hlr_tensor *x = hlr_tensor_new(hlr_layer_type(hlr_model_layer(m, 0)) && !strcmp(hlr_layer_type(hlr_model_layer(m, 0)),
                                                                                        "embedding") ? HLR_I32 : HLR_F32,
                                       nd + 1, shape);
        int ond;
        int64_t os[HLR_MAX_DIMS + 1] = {2};
        hlr_model_output_shape(m, &ond, os + 1);
        hlr_tensor *y = hlr_tensor_new(HLR_F32, ond + 1, os);
        if (x && y)
            hlr_model_forward(m, x, y, 0);
        hlr_tensor_free(x);
        hlr_tensor_free(y);
    }
    hlr_model_free(m);
}

/* Models whose exports hold the composite patterns: attention and an encoder block; token ids and lengths
 * (a mean over each word's steps, and each word's last step). */
static hlr_model *composite_case(int which)
{
    hlr_model *m;
    if (which == 3) {
        m = TEST_MODEL(10, hlr_embedding(12, 4, 0), hlr_lstm(4, 3, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.0f),
                       hlr_seq_last(), hlr_dense(6, 2, 1));
        ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){5}));
    } else if (which == 1) {
        m = TEST_MODEL(8, hlr_image_rows(), hlr_positional_encoding(8, 4, HLR_POS_SINUSOIDAL),
                       hlr_transformer_encoder(4, 2, 8, HLR_ATTN_CAUSAL, 0.0f), hlr_multihead_attention(4, 2, 0, 0.0f),
                       hlr_seq_mean(), hlr_dense(4, 3, 1));
        ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 5, 4}));
    } else {
        m = TEST_MODEL(9, hlr_embedding(12, 4, 0), hlr_gru(4, 3, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.0f),
                       hlr_seq_mean(), hlr_dense(6, 2, 1));
        ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){5}));
    }
    return m;
}

/* seq_last after token ids: each sequence's own last step, through the export and back. */
START_TEST(test_the_last_step_of_each_length_imports_back)
{
    hlr_model *m = composite_case(3);
    void *data;
    size_t size;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &data, &size));
    hlr_model *back = hlr_model_import_onnx_buffer(data, size);
    ck_assert_msg(back != NULL, "%s", hlr_last_error());
    ck_assert_str_eq(hlr_layer_type(hlr_model_layer(back, 2)), "seq_last");
    const int32_t ids[4 * 5] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 0, 0, 0, 3, 0, 0, 0, 0};
    const int32_t lengths[4] = {5, 3, 2, 1};
    hlr_tensor *x = hlr_tensor_from(HLR_I32, 2, (int64_t[]){4, 5}, ids);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 2}), *z = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 2}),
               *full = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 2});
    ck_assert_ok(hlr_model_forward(m, x, full, 0)); /* every step read: the padding's last step */
    ck_assert_ok(hlr_model_set_lengths(m, lengths, 4));
    ck_assert_ok(hlr_model_set_lengths(back, lengths, 4));
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    ck_assert_ok(hlr_model_forward(back, x, z, 0));
    ck_assert(memcmp(hlr_tensor_f32(y), hlr_tensor_f32(z), 8 * sizeof(float)) == 0);
    ck_assert(memcmp(hlr_tensor_f32(y) + 2, hlr_tensor_f32(full) + 2, 6 * sizeof(float)) != 0);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(z);
    hlr_tensor_free(full);
    hlr_model_free(back);
    hlr_buffer_free(data);
    hlr_model_free(m);
}
END_TEST

/* Every truncation of the file's bytes, then `rounds` copies with 1 to 4 bytes flipped (seeded): each
 * imports to a working model or fails with a clean error.  The truncations that failed go to *failed. */
static void import_cut_and_flipped(const unsigned char *data, size_t size, int rounds, unsigned long long seed,
                                   int *failed)
{
    int flips_failed = 0;
    unsigned char *copy = malloc(size);
    ck_assert_ptr_nonnull(copy);
    for (size_t cut = 1; cut < size; cut++)
        import_damaged(data, cut, failed);
    for (int round = 0; round < rounds; round++) {
        memcpy(copy, data, size);
        int flips = 1 + (int)(test_rand(&seed) * 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(test_rand(&seed) * (float)size) % size;
            copy[at] ^= (unsigned char)(1 + test_rand(&seed) * 255);
        }
        import_damaged(copy, size, &flips_failed);
    }
    free(copy);
}

START_TEST(test_truncated_and_mutated_files_fail_cleanly)
{
    hlr_model *m = _i == 0 ? import_case() : composite_case(_i);
    void *data;
    size_t size;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &data, &size));
    int failed = 0;
    import_cut_and_flipped(data, size, 3000, 99, &failed);
    ck_assert_int_ge(failed, (int)(size - 1) * 9 / 10);
    ck_assert_ptr_null(hlr_model_import_onnx_buffer(NULL, 5));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_model_import_onnx_buffer("garbage!", 8));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_ptr_null(hlr_model_import_onnx("/nonexistent/model.onnx"));
    ck_assert_int_eq(hlr_last_status(), HLR_EIO);
    ck_assert_error_mentions("/nonexistent/model.onnx");
    hlr_buffer_free(data);
    hlr_model_free(m);
}
END_TEST

/* PyTorch's exports (tests/fixtures/onnx, read from the repository root where the suite runs): the
 * attention's shape arithmetic and the recurrent layers' patterns, cut short and with bytes flipped. */
START_TEST(test_damaged_pytorch_exports_fail_cleanly)
{
    static const char *const names[] = {"mha", "mha-nobias", "encoder", "bilstm", "embedding-gru"};
    char path[128];
    snprintf(path, sizeof path, "tests/fixtures/onnx/%s.onnx", names[_i]);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s (run the suite from the repository root)", path, strerror(errno));
    unsigned char data[1 << 15];
    size_t size = fread(data, 1, sizeof data, f);
    ck_assert(feof(f) && size > 0);
    fclose(f);
    hlr_model *m = hlr_model_import_onnx_buffer(data, size);
    ck_assert_msg(m != NULL, "%s: %s", path, hlr_last_error());
    hlr_model_free(m);
    int failed = 0;
    import_cut_and_flipped(data, size, 2000, 7 + (unsigned long long)_i, &failed);
    ck_assert_int_ge(failed, (int)(size - 1) * 9 / 10);
}
END_TEST

Suite *suite_onnx(void);

static Onnx__ModelProto *export_and_parse(hlr_model *m)
{
    void *data = NULL;
    size_t size = 0;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &data, &size));
    ck_assert_uint_gt(size, 0);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    ck_assert_msg(mp != NULL, "protobuf-c cannot read the exported bytes");
    hlr_buffer_free(data);
    return mp;
}

static const Onnx__TensorProto *initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    ck_abort_msg("no initializer %s", name);
    return NULL;
}

START_TEST(test_an_mlp_is_its_operators_with_its_parameters_bit_for_bit)
{
    hlr_model *m = TEST_MODEL(1, hlr_flatten(), hlr_dense(12, 5, 1), hlr_relu(), hlr_dense(5, 3, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 3, 4}));
    ck_assert_ok(hlr_metadata_set_class_names(hlr_model_metadata(m), 3, (const char *[]){"a", "b\"c", "d"}));
    Onnx__ModelProto *mp = export_and_parse(m);
    ck_assert_int_eq(mp->ir_version, 8);
    ck_assert_uint_eq(mp->n_opset_import, 1);
    ck_assert_int_eq(mp->opset_import[0]->version, HLR_ONNX_OPSET);
    ck_assert_str_eq(mp->producer_name, "libhlr");
    const Onnx__GraphProto *g = mp->graph;
    const char *ops[] = {"Reshape", "Gemm", "Relu", "Gemm", "Identity"};
    ck_assert_uint_eq(g->n_node, 5);
    for (size_t i = 0; i < g->n_node; i++)
        ck_assert_str_eq(g->node[i]->op_type, ops[i]);
    ck_assert_str_eq(g->node[4]->output[0], "logits");
    /* input (N, 1, 3, 4) with N named, output (N, 3) */
    const Onnx__TensorShapeProto *in = g->input[0]->type->tensor_type->shape, *out = g->output[0]->type->tensor_type->shape;
    ck_assert_str_eq(g->input[0]->name, "input");
    ck_assert_uint_eq(in->n_dim, 4);
    ck_assert_str_eq(in->dim[0]->dim_param, "N");
    ck_assert_int_eq(in->dim[3]->dim_value, 4);
    ck_assert_uint_eq(out->n_dim, 2);
    ck_assert_int_eq(out->dim[1]->dim_value, 3);
    /* the first dense layer's weight, (5, 12), as raw little-endian floats equal to the model's */
    const Onnx__TensorProto *w = initializer(g, "layer1.weight");
    ck_assert_uint_eq(w->n_dims, 2);
    ck_assert_int_eq(w->dims[0], 5);
    ck_assert_int_eq(w->dims[1], 12);
    const hlr_tensor *p = hlr_layer_param(hlr_model_layer(m, 1), "weight");
    ck_assert_uint_eq(w->raw_data.len, 60 * sizeof(float));
    ck_assert(memcmp(w->raw_data.data, hlr_tensor_f32(p), 60 * sizeof(float)) == 0);
    /* Gemm with transB, as torch.nn.Linear exports */
    ck_assert_str_eq(g->node[1]->attribute[0]->name, "transB");
    ck_assert_int_eq(g->node[1]->attribute[0]->i, 1);
    /* metadata: class names as a JSON array (quotes escaped), the temperature */
    int found = 0;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, "class_names")) {
            ck_assert_str_eq(mp->metadata_props[i]->value, "[\"a\",\"b\\\"c\",\"d\"]");
            found++;
        } else if (!strcmp(mp->metadata_props[i]->key, "temperature")) {
            ck_assert_str_eq(mp->metadata_props[i]->value, "1");
            found++;
        }
    ck_assert_int_eq(found, 2);
    onnx__model_proto__free_unpacked(mp, NULL);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_lstm_gates_are_reordered_into_onnx_order)
{
    const int H = 3, F = 2;
    hlr_model *m = TEST_MODEL(2, hlr_lstm(F, H, 1, 0, 0.0f));
    ck_assert_ok(hlr_model_build(m, 2, (int64_t[]){4, F}));
    Onnx__ModelProto *mp = export_and_parse(m);
    const Onnx__TensorProto *W = initializer(mp->graph, "layer0.W_l0"), *B = initializer(mp->graph, "layer0.B_l0");
    ck_assert_int_eq(W->dims[0], 1);
    ck_assert_int_eq(W->dims[1], 4 * H);
    ck_assert_int_eq(W->dims[2], F);
    const float *w = (const float *)W->raw_data.data, *b = (const float *)B->raw_data.data;
    const float *wih = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "weight_ih_l0"));
    const float *bhh = hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "bias_hh_l0"));
    /* ONNX i o f c <- PyTorch i f g o: block 1 is PyTorch's block 3, block 3 its block 2 */
    const int from[4] = {0, 3, 1, 2};
    for (int k = 0; k < 4; k++) {
        ck_assert(memcmp(w + k * H * F, wih + from[k] * H * F, (size_t)(H * F) * sizeof(float)) == 0);
        ck_assert(memcmp(b + 4 * H + k * H, bhh + from[k] * H, (size_t)H * sizeof(float)) == 0);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_the_file_holds_the_buffers_bytes_and_exports_repeat)
{
    hlr_model *m = TEST_MODEL(3, hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                              hlr_maxpool2d(2, 2, 0), hlr_flatten(), hlr_dense(8, 2, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 4, 4}));
    void *a, *b;
    size_t na, nb;
    ck_assert_ok(hlr_model_export_onnx_buffer(m, HLR_ONNX_OPSET, &a, &na));
    ck_assert_ok(hlr_model_export_onnx_buffer(m, 0, &b, &nb));
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(a, b, na) == 0);
    char path[] = "/tmp/hlr-test-onnx-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_ok(hlr_model_export_onnx(m, path, 0));
    FILE *f = fopen(path, "rb");
    char *c = malloc(na + 1);
    ck_assert_uint_eq(fread(c, 1, na + 1, f), na);
    fclose(f);
    ck_assert(memcmp(a, c, na) == 0);
    free(c);
    unlink(path);
    hlr_buffer_free(a);
    hlr_buffer_free(b);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_refusals_name_the_problem)
{
    void *data = (void *)1;
    size_t size = 7;
    ck_assert_status(hlr_model_export_onnx(NULL, "/tmp/x.onnx", 0), HLR_EINVAL);
    hlr_model *m = TEST_MODEL(4, hlr_flatten(), hlr_dense(4, 2, 1));
    ck_assert_status(hlr_model_export_onnx(m, NULL, 0), HLR_EINVAL);
    ck_assert_status(hlr_model_export_onnx_buffer(m, 0, NULL, &size), HLR_EINVAL);
    ck_assert_status(hlr_model_export_onnx_buffer(m, 0, &data, &size), HLR_ESTATE);
    ck_assert(data == NULL && size == 0);
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    ck_assert_status(hlr_model_export_onnx_buffer(m, 13, &data, &size), HLR_EUNSUPPORTED);
    ck_assert_error_mentions("opset 13");
    /* a folder that does not exist: nothing is left behind */
    ck_assert_status(hlr_model_export_onnx(m, "/nonexistent-folder/m.onnx", 0), HLR_EIO);
    ck_assert_error_mentions("/nonexistent-folder/m.onnx");
    hlr_model_free(m);
    /* a layer that needs sequence lengths */
    m = TEST_MODEL(6, hlr_image_rows(), hlr_multihead_attention(4, 2, HLR_ATTN_KEY_PADDING, 0.0f), hlr_seq_mean());
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 3, 4}));
    ck_assert_status(hlr_model_export_onnx_buffer(m, 0, &data, &size), HLR_EUNSUPPORTED);
    ck_assert_error_mentions("layer 1 (multihead_attention)");
    hlr_model_free(m);
}
END_TEST

Suite *suite_onnx(void)
{
    Suite *s = suite_create("onnx");
    TCase *tc = tcase_create("export");
    tcase_add_test(tc, test_an_mlp_is_its_operators_with_its_parameters_bit_for_bit);
    tcase_add_test(tc, test_lstm_gates_are_reordered_into_onnx_order);
    tcase_add_test(tc, test_the_file_holds_the_buffers_bytes_and_exports_repeat);
    tcase_add_test(tc, test_refusals_name_the_problem);
    suite_add_tcase(s, tc);
    tc = tcase_create("import");
    tcase_add_test(tc, test_an_export_imports_back_to_the_same_bits);
    tcase_add_test(tc, test_rectangular_poolings_export_and_import_back);
    tcase_add_test(tc, test_the_last_step_of_each_length_imports_back);
    tcase_add_loop_test(tc, test_truncated_and_mutated_files_fail_cleanly, 0, 4);
    tcase_add_loop_test(tc, test_damaged_pytorch_exports_fail_cleanly, 0, 5);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

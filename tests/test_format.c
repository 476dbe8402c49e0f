/*
 * test_format.c -- model files: every layer type round-trips with identical
 * predictions; optimizer state, training state and metadata survive; resumed
 * training is bit-exact; hostile files (truncated at every byte, every bit
 * flipped, tens of thousands of random mutations of the file and of the
 * payload re-wrapped in valid checksums) load or fail cleanly; a failed save
 * leaves the previous file intact; clones serve four threads at once.
 */
#include "testutil.h"

#include "../src/model.h"
#include "../src/modelfile.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* ---- models: one entry per architecture; extend the table for new layers ---- */

typedef struct model_case {
    const char *name;
    int ndim;
    int64_t shape[3]; /* one sample */
    int classes;
    hlr_layer *(*layers[24])(void);
    int vocabulary; /* > 0: the input is int32 token ids below it */
} model_case;

static hlr_layer *l_flatten(void) { return hlr_flatten(); }
static hlr_layer *l_dense_12_16(void) { return hlr_dense(12, 16, 1); }
static hlr_layer *l_relu(void) { return hlr_relu(); }
static hlr_layer *l_dropout(void) { return hlr_dropout(0.25f); }
static hlr_layer *l_dense_16_8_nobias(void) { return hlr_dense(16, 8, 0); }
static hlr_layer *l_leaky(void) { return hlr_leaky_relu(0.2f); }
static hlr_layer *l_dense_8_4(void) { return hlr_dense(8, 4, 1); }
static hlr_layer *l_dense_6_6(void) { return hlr_dense(6, 6, 1); }
static hlr_layer *l_dense_6_4(void) { return hlr_dense(6, 4, 1); }
static hlr_layer *l_sigmoid(void) { return hlr_sigmoid(); }
static hlr_layer *l_tanh(void) { return hlr_tanh(); }
static hlr_layer *l_gelu(void) { return hlr_gelu(); }
static hlr_layer *l_softmax(void) { return hlr_softmax(); }
static hlr_layer *l_bn1d_8(void) { return hlr_batchnorm1d(8, 1e-5f, 0.1f); }
static hlr_layer *l_conv_1_4(void)
{
    return hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1});
}
static hlr_layer *l_bn2d_4(void) { return hlr_batchnorm2d(4, 1e-3f, 0.2f); }
static hlr_layer *l_maxpool(void) { return hlr_maxpool2d(2, 0, 0); }
static hlr_layer *l_conv_4_6_grouped(void)
{
    return hlr_conv2d(4, 6,
                      &(hlr_conv2d_options){.kernel_h = 3, .kernel_w = 2, .padding = 1, .groups = 2, .no_bias = 1});
}
static hlr_layer *l_avgpool(void) { return hlr_avgpool2d(2, 1, 1); }
static hlr_layer *l_global_avg(void) { return hlr_global_avgpool2d(); }
static hlr_layer *l_maxpool_2x1(void) { return hlr_maxpool2d_hw(2, 1, 0, 0, 0, 0); }
static hlr_layer *l_avgpool_3x2(void) { return hlr_avgpool2d_hw(3, 2, 1, 1, 1, 1); }
static hlr_layer *l_dense_6_3(void) { return hlr_dense(6, 3, 1); }
static hlr_layer *l_image_rows(void) { return hlr_image_rows(); }
static hlr_layer *l_lstm_bi(void) { return hlr_lstm(6, 5, 2, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.1f); }
static hlr_layer *l_seq_mean(void) { return hlr_seq_mean(); }
static hlr_layer *l_dense_10_3(void) { return hlr_dense(10, 3, 1); }
static hlr_layer *l_conv_1_2(void)
{
    return hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 3, .padding = 1});
}
static hlr_layer *l_feature_rows(void) { return hlr_feature_map_rows(); }
static hlr_layer *l_feature_columns(void) { return hlr_feature_map_columns(); }
static hlr_layer *l_gru(void) { return hlr_gru(12, 4, 1, HLR_RETURN_SEQUENCES, 0.0f); }
static hlr_layer *l_seq_last(void) { return hlr_seq_last(); }
static hlr_layer *l_dense_4_3(void) { return hlr_dense(4, 3, 1); }
static hlr_layer *l_embedding(void) { return hlr_embedding(20, 6, 0); }
static hlr_layer *l_gru_final(void) { return hlr_gru(6, 6, 1, 0, 0.0f); }
static hlr_layer *l_seq_max(void) { return hlr_seq_max(); }
static hlr_layer *l_dense_6_8(void) { return hlr_dense(6, 8, 1); }
static hlr_layer *l_mha(void) { return hlr_multihead_attention(8, 2, HLR_ATTN_CAUSAL, 0.1f); }
static hlr_layer *l_layernorm_8(void) { return hlr_layernorm(8, 1e-5f); }
static hlr_layer *l_mha_bare(void) { return hlr_multihead_attention(8, 4, HLR_ATTN_NO_OUT_PROJ | HLR_ATTN_NO_BIAS, 0.0f); }
static hlr_layer *l_dense_8_3(void) { return hlr_dense(8, 3, 1); }
static hlr_layer *l_patches(void) { return hlr_patch_embedding(1, 4, 8); }
static hlr_layer *l_class_token(void) { return hlr_class_token(8); }
static hlr_layer *l_pos_learned(void) { return hlr_positional_encoding(6, 8, HLR_POS_LEARNED); }
static hlr_layer *l_pos_sinusoidal(void) { return hlr_positional_encoding(5, 8, HLR_POS_SINUSOIDAL); }
static hlr_layer *l_encoder(void) { return hlr_transformer_encoder(8, 2, 12, HLR_ATTN_CAUSAL, 0.1f); }
static hlr_layer *l_encoder_plain(void) { return hlr_transformer_encoder(8, 4, 6, 0, 0.0f); }
static hlr_layer *l_seq_first(void) { return hlr_seq_first(); }

static const model_case model_cases[] = {
    {"mlp", 2, {3, 4}, 4, {l_flatten, l_dense_12_16, l_relu, l_dropout, l_dense_16_8_nobias, l_leaky, l_dense_8_4}, 0},
    {"activations", 1, {6}, 4, {l_dense_6_6, l_sigmoid, l_dense_6_6, l_tanh, l_dense_6_6, l_gelu, l_dense_6_4,
                                l_softmax}, 0},
    {"mlp-bn", 2, {3, 4}, 4, {l_flatten, l_dense_12_16, l_relu, l_dense_16_8_nobias, l_bn1d_8, l_gelu, l_dense_8_4}, 0},
    {"cnn", 3, {1, 8, 8}, 3, {l_conv_1_4, l_bn2d_4, l_relu, l_maxpool, l_conv_4_6_grouped, l_avgpool, l_global_avg,
                              l_dense_6_3}, 0},
    {"lstm", 3, {1, 8, 6}, 3, {l_image_rows, l_lstm_bi, l_seq_mean, l_dense_10_3}, 0},
    {"cnn-gru", 3, {1, 6, 6}, 3, {l_conv_1_2, l_feature_rows, l_gru, l_seq_last, l_dense_4_3}, 0},
    {"tokens", 1, {5}, 3, {l_embedding, l_seq_max, l_relu, l_dense_6_3}, 20},
    {"tokens-gru", 1, {7}, 3, {l_embedding, l_gru_final, l_dense_6_3}, 20},
    {"attention", 3, {1, 5, 6}, 3, {l_image_rows, l_dense_6_8, l_mha, l_layernorm_8, l_mha_bare, l_seq_mean,
                                     l_dense_8_3}, 0},
    {"transformer", 3, {1, 8, 8}, 3, {l_patches, l_class_token, l_pos_learned, l_pos_sinusoidal, l_encoder,
                                       l_encoder_plain, l_layernorm_8, l_seq_first, l_dense_8_3}, 0},
    {"crnn-columns", 3, {1, 6, 6}, 3, {l_conv_1_2, l_feature_columns, l_gru, l_seq_last, l_dense_4_3}, 0},
    /* rectangular poolings: (2, 12, 5) -> 2 x 1 -> (2, 6, 5) -> 3 x 2, stride 1, padding 1 -> (2, 6, 6) */
    {"crnn-rect-pools", 3, {1, 12, 5}, 3, {l_conv_1_2, l_maxpool_2x1, l_avgpool_3x2, l_feature_columns, l_gru,
                                            l_seq_last, l_dense_4_3}, 0},
};
#define N_MODEL_CASES ((int)(sizeof model_cases / sizeof model_cases[0]))

static int64_t sample_size(const model_case *c)
{
    int64_t n = 1;
    for (int i = 0; i < c->ndim; i++)
        n *= c->shape[i];
    return n;
}

static hlr_model *make_case(const model_case *c, uint64_t seed)
{
    hlr_model *m = hlr_model_new(seed);
    for (int i = 0; c->layers[i]; i++)
        ck_assert_ok(hlr_model_add(m, c->layers[i]()));
    ck_assert_ok(hlr_model_build(m, c->ndim, c->shape));
    return m;
}

/* n random samples (floats, or token ids) for a case, labels in [0, classes). */
static void fill_input(const model_case *c, void *x, int64_t count, unsigned long long seed)
{
    if (c->vocabulary)
        for (int64_t i = 0; i < count; i++)
            ((int32_t *)x)[i] = (int32_t)(test_rand(&seed) * (float)c->vocabulary) % c->vocabulary;
    else
        test_fill(x, (long)count, seed, -1.0f, 1.0f);
}

static hlr_dataset *case_data(const model_case *c, int64_t n, unsigned long long seed)
{
    int64_t s = sample_size(c);
    float *x = malloc((size_t)(n * s) * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    fill_input(c, x, n * s, seed);
    for (int64_t i = 0; i < n; i++)
        y[i] = c->vocabulary ? ((int32_t *)x)[i * s] % c->classes
                             : (int32_t)((x[i * s] > 0) + (x[i * s + 1] > 0.3f)) % c->classes;
    hlr_dataset *d = c->vocabulary ? hlr_dataset_from_tokens(c->ndim, c->shape, n, (int32_t *)x, y, c->classes)
                                   : hlr_dataset_from(c->ndim, c->shape, n, x, y, c->classes);
    free(x);
    free(y);
    ck_assert_ptr_nonnull(d);
    return d;
}

static void fit_epochs(hlr_model *m, hlr_optimizer *o, const hlr_dataset *d, int epochs, int batch)
{
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = epochs;
    fo.batch_size = batch;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
}

/* A trained model of case c with metadata, and its Adam optimizer. */
static hlr_model *trained_case(const model_case *c, hlr_optimizer **opt)
{
    hlr_model *m = make_case(c, 7);
    hlr_dataset *d = case_data(c, 40, 11);
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 1e-4f);
    fit_epochs(m, o, d, 2, 16);
    hlr_metadata *md = hlr_model_metadata(m);
    const char *names[] = {"zero", "one", "two", "three"};
    ck_assert_ok(hlr_metadata_set_class_names(md, c->classes, names));
    ck_assert_ok(hlr_metadata_set_dataset(md, "generated"));
    ck_assert_ok(hlr_metadata_set(md, "case", c->name));
    hlr_dataset_free(d);
    if (opt)
        *opt = o;
    else
        hlr_optimizer_free(o);
    return m;
}

/* Inference outputs of m on n fixed samples (owned). */
static float *outputs(hlr_model *m, const model_case *c, int64_t n)
{
    int64_t s = sample_size(c);
    int64_t xs[4] = {n, c->shape[0], c->shape[1], c->shape[2]};
    hlr_tensor *x = hlr_tensor_new(c->vocabulary ? HLR_I32 : HLR_F32, c->ndim + 1, xs);
    fill_input(c, hlr_tensor_data(x), n * s, 99);
    int ond;
    int64_t os[HLR_MAX_DIMS + 1];
    ck_assert_ok(hlr_model_output_shape(m, &ond, os + 1));
    os[0] = n;
    hlr_tensor *y = hlr_tensor_new(HLR_F32, ond + 1, os);
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    float *out = malloc((size_t)hlr_tensor_numel(y) * sizeof *out);
    memcpy(out, hlr_tensor_f32(y), (size_t)hlr_tensor_numel(y) * sizeof *out);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    return out;
}

static int64_t output_numel(hlr_model *m, int64_t n)
{
    int ond;
    int64_t os[HLR_MAX_DIMS];
    ck_assert_ok(hlr_model_output_shape(m, &ond, os));
    for (int i = 0; i < ond; i++)
        n *= os[i];
    return n;
}

/* Same layers, configurations, tensors (bit for bit), loss and generator. */
static void assert_same_model(hlr_model *a, hlr_model *b, const char *what)
{
    ck_assert_int_eq(hlr_model_num_layers(a), hlr_model_num_layers(b));
    for (int i = 0; i < hlr_model_num_layers(a); i++) {
        hlr_layer *la = hlr_model_layer(a, i), *lb = hlr_model_layer(b, i);
        ck_assert_str_eq(hlr_layer_type(la), hlr_layer_type(lb));
        hlr_config ca = {0}, cb = {0};
        if (la->ops->get_config) {
            la->ops->get_config(la, &ca);
            lb->ops->get_config(lb, &cb);
        }
        ck_assert_int_eq(ca.n, cb.n);
        for (int k = 0; k < ca.n; k++) {
            ck_assert_str_eq(ca.item[k].key, cb.item[k].key);
            ck_assert_msg(ca.item[k].i == cb.item[k].i && ca.item[k].f == cb.item[k].f,
                          "%s: layer %d config %s differs", what, i, ca.item[k].key);
        }
        ck_assert_int_eq(la->nparams, lb->nparams);
        for (int j = 0; j < la->nparams; j++) {
            ck_assert_str_eq(la->params[j].name, lb->params[j].name);
            ck_assert_int_eq(la->params[j].buffer, lb->params[j].buffer);
            ck_assert_int_eq(la->params[j].value.numel, lb->params[j].value.numel);
            ck_assert_msg(memcmp(la->params[j].value.data, lb->params[j].value.data,
                                 (size_t)la->params[j].value.numel * sizeof(float)) == 0,
                          "%s: layer %d (%s) tensor %s differs", what, i, hlr_layer_type(la), la->params[j].name);
        }
    }
    ck_assert_int_eq(a->loss, b->loss);
    ck_assert(a->smoothing == b->smoothing);
}

START_TEST(test_every_layer_type_round_trips_with_identical_predictions)
{
    /* Every registered layer type must appear in model_cases: a new layer adds a case. */
    const hlr_layer_ops *ops;
    for (size_t t = 0; (ops = hlr__layer_ops_at(t)) != NULL; t++) {
        int found = 0;
        for (int c = 0; c < N_MODEL_CASES && !found; c++)
            for (int i = 0; model_cases[c].layers[i] && !found; i++) {
                hlr_layer *l = model_cases[c].layers[i]();
                found = !strcmp(hlr_layer_type(l), ops->type);
                hlr_layer_free(l);
            }
        ck_assert_msg(found, "no round-trip case in test_format.c uses layer type %s: add one to model_cases",
                      ops->type);
    }
    for (int c = 0; c < N_MODEL_CASES; c++) {
        const model_case *mc = &model_cases[c];
        hlr_model *m = trained_case(mc, NULL);
        float *want = outputs(m, mc, 9);
        void *buf;
        size_t len;
        ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
        hlr_model *back = hlr_model_load_buffer(buf, len, NULL);
        ck_assert_msg(back != NULL, "%s: %s", mc->name, hlr_last_error());
        assert_same_model(m, back, mc->name);
        float *got = outputs(back, mc, 9);
        test_expect_same_bits(mc->name, got, want, output_numel(m, 9));
        /* A file saved from the loaded model is the same file. */
        void *buf2;
        size_t len2;
        ck_assert_ok(hlr_model_save_buffer(back, NULL, &buf2, &len2));
        ck_assert_msg(len == len2 && memcmp(buf, buf2, len) == 0, "%s: a re-saved file differs", mc->name);
        free(want);
        free(got);
        hlr_buffer_free(buf);
        hlr_buffer_free(buf2);
        hlr_model_free(back);
        hlr_model_free(m);
    }
}
END_TEST

static char test_dir[256];

static void make_test_dir(void)
{
    snprintf(test_dir, sizeof test_dir, "/tmp/hlr-format-%ld", (long)getpid());
    mkdir(test_dir, 0700);
}

static void remove_test_dir(void)
{
    DIR *d = opendir(test_dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", test_dir, e->d_name);
                struct stat sb;
                if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                    chmod(p, 0700);
                    rmdir(p);
                } else {
                    unlink(p);
                }
            }
        closedir(d);
    }
    rmdir(test_dir);
}

/* Files in test_dir whose name contains frag. */
static int count_files(const char *dir, const char *frag)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, frag) != NULL;
    closedir(d);
    return n;
}

START_TEST(test_path_round_trip_keeps_metadata_history_and_training_state)
{
    make_test_dir();
    const model_case *mc = &model_cases[0];
    hlr_model *m = trained_case(mc, NULL);
    hlr_metadata *md = hlr_model_metadata(m);
    ck_assert_ok(hlr_metadata_set(md, "note", "a value with spaces, = signs and UTF-8: \xc3\xa9"));
    ck_assert_ok(hlr_metadata_set(md, "empty", ""));
    char path[300];
    snprintf(path, sizeof path, "%s/model.hlr", test_dir);
    ck_assert_ok(hlr_model_save(m, path, NULL));
    hlr_model *back = hlr_model_load(path, NULL);
    ck_assert_msg(back != NULL, "%s", hlr_last_error());
    assert_same_model(m, back, "path");
    ck_assert_mem_eq(m->rng.s, back->rng.s, sizeof(hlr_rng));
    ck_assert_int_eq(hlr_model_epochs_trained(back), 2);
    ck_assert_int_eq(back->batches_trained, 2 * 3); /* 40 samples in batches of 16 */
    hlr_metadata *bd = hlr_model_metadata(back);
    ck_assert_str_eq(hlr_metadata_dataset(bd), "generated");
    ck_assert_int_eq(hlr_metadata_num_classes(bd), 4);
    ck_assert_str_eq(hlr_metadata_class_name(bd, 3), "three");
    ck_assert_int_eq(hlr_metadata_count(bd), 3);
    ck_assert_str_eq(hlr_metadata_key(bd, 0), "case");
    ck_assert_str_eq(hlr_metadata_get(bd, "note"), "a value with spaces, = signs and UTF-8: \xc3\xa9");
    ck_assert_str_eq(hlr_metadata_get(bd, "empty"), "");
    ck_assert_ptr_null(hlr_metadata_get(bd, "absent"));
    ck_assert_int_eq(hlr_metadata_history_length(bd), 2);
    for (int i = 0; i < 2; i++) {
        hlr_epoch_stats a, b;
        ck_assert_ok(hlr_metadata_history(md, i, &a));
        ck_assert_ok(hlr_metadata_history(bd, i, &b));
        ck_assert_int_eq(b.epoch, i + 1);
        ck_assert_int_eq(b.epochs, 2);
        ck_assert(a.train_loss == b.train_loss && a.train_accuracy == b.train_accuracy && a.lr == b.lr &&
                  a.seconds == b.seconds);
    }
    ck_assert_status(hlr_metadata_history(bd, 2, &(hlr_epoch_stats){0}), HLR_EINVAL);
    /* The loaded model trains on: its history and epochs continue. */
    hlr_dataset *d = case_data(mc, 40, 11);
    hlr_optimizer *o = hlr_sgd(0.01f, 0.0f, 0, 0.0f);
    fit_epochs(back, o, d, 1, 16);
    ck_assert_int_eq(hlr_model_epochs_trained(back), 3);
    hlr_epoch_stats last;
    ck_assert_ok(hlr_metadata_history(bd, 2, &last));
    ck_assert_int_eq(last.epoch, 3);
    ck_assert_int_eq(last.epochs, 3);
    ck_assert_int_eq(count_files(test_dir, ".tmp"), 0);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(back);
    hlr_model_free(m);
    remove_test_dir();
}
END_TEST

START_TEST(test_metadata_setters_check_their_limits)
{
    hlr_model *m = make_case(&model_cases[0], 1);
    hlr_metadata *md = hlr_model_metadata(m);
    ck_assert_ptr_null(hlr_model_metadata(NULL));
    ck_assert_status(hlr_metadata_set(md, "", "x"), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set(md, NULL, "x"), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set(NULL, "k", "x"), HLR_EINVAL);
    char big[70000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_status(hlr_metadata_set(md, "k", big), HLR_EINVAL);
    big[256] = '\0';
    ck_assert_status(hlr_metadata_set(md, big, "v"), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set_dataset(md, big), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set_class_names(md, 2, (const char *[]){"a", ""}), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set_class_names(md, 2, (const char *[]){"a", NULL}), HLR_EINVAL);
    ck_assert_status(hlr_metadata_set_class_names(md, -1, NULL), HLR_EINVAL);
    ck_assert_ok(hlr_metadata_set(md, "a", "1"));
    ck_assert_ok(hlr_metadata_set(md, "b", "2"));
    ck_assert_ok(hlr_metadata_set(md, "a", "3"));
    ck_assert_int_eq(hlr_metadata_count(md), 2);
    ck_assert_str_eq(hlr_metadata_get(md, "a"), "3");
    ck_assert_ok(hlr_metadata_set(md, "a", NULL));
    ck_assert_int_eq(hlr_metadata_count(md), 1);
    ck_assert_str_eq(hlr_metadata_key(md, 0), "b");
    ck_assert_ptr_null(hlr_metadata_key(md, 1));
    ck_assert_ok(hlr_metadata_set_class_names(md, 2, (const char *[]){"x", "y"}));
    ck_assert_ok(hlr_metadata_set_class_names(md, 0, NULL));
    ck_assert_int_eq(hlr_metadata_num_classes(md), 0);
    ck_assert_ptr_null(hlr_metadata_class_name(md, 0));
    ck_assert_ok(hlr_metadata_set_dataset(md, NULL));
    ck_assert_str_eq(hlr_metadata_dataset(md), "");
    ck_assert_str_eq(hlr_metadata_dataset(NULL), "");
    ck_assert_int_eq(hlr_metadata_count(NULL), 0);
    hlr_model_free(m);
}
END_TEST

/* ---- optimizer state and resume ---- */

static void assert_same_optimizer(const hlr_optimizer *a, const hlr_optimizer *b, hlr_model *m)
{
    hlr_optimizer_desc x, y;
    hlr__optimizer_describe(a, &x);
    hlr__optimizer_describe(b, &y);
    ck_assert_int_eq(x.kind, y.kind);
    ck_assert(x.lr == y.lr && x.momentum == y.momentum && x.beta1 == y.beta1 && x.beta2 == y.beta2 &&
              x.eps == y.eps && x.weight_decay == y.weight_decay && x.clip_norm == y.clip_norm);
    ck_assert_int_eq(x.nesterov, y.nesterov);
    ck_assert_int_eq(x.schedule, y.schedule);
    ck_assert(x.sched_a == y.sched_a && x.sched_b == y.sched_b && x.warmup_start == y.warmup_start);
    ck_assert_int_eq(x.warmup_steps, y.warmup_steps);
    ck_assert_int_eq(x.sched_pos, y.sched_pos);
    ck_assert_int_eq(x.steps, y.steps);
    ck_assert_int_eq(x.nstate, y.nstate);
    ck_assert_int_eq(x.nmoments, y.nmoments);
    ck_assert(y.bound == (x.bound ? m->serial : 0));
    int k = 0;
    for (int i = 0; i < hlr_model_num_layers(m) && x.nmoments; i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++)
            if (!l->params[j].buffer) {
                size_t bytes = (size_t)l->params[j].value.numel * sizeof(float);
                ck_assert_mem_eq(x.m1[k], y.m1[k], bytes);
                if (x.nmoments == 2)
                    ck_assert_mem_eq(x.m2[k], y.m2[k], bytes);
                k++;
            }
    }
    ck_assert(hlr_optimizer_lr(a) == hlr_optimizer_lr(b));
}

START_TEST(test_optimizer_state_round_trips_for_every_kind)
{
    const model_case *mc = &model_cases[2]; /* has batch-norm buffers, which optimizers skip */
    hlr_dataset *d = case_data(mc, 40, 3);
    for (int kind = 0; kind < 6; kind++) {
        hlr_model *m = make_case(mc, 5);
        hlr_optimizer *o = kind == 0   ? hlr_sgd(0.1f, 0.0f, 0, 0.0f)
                           : kind == 1 ? hlr_sgd(0.1f, 0.9f, 1, 1e-3f)
                           : kind == 2 ? hlr_adam(1e-2f, 0.8f, 0.99f, 1e-7f, 1e-3f)
                           : kind == 3 ? hlr_adamw(1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f)
                                       : hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f);
        if (kind == 3) {
            ck_assert_ok(hlr_optimizer_set_clip_norm(o, 0.5f));
            ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, 1e-4, 3, 0.1));
        }
        if (kind == 1)
            ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 2, 0.5, 0, 1.0));
        if (kind < 4)
            fit_epochs(m, o, d, 2, 16);
        if (kind == 5)
            ck_assert_ok(hlr_optimizer_schedule_step(o)); /* unbound, with a schedule position */
        hlr_save_options so;
        hlr_save_options_default(&so);
        so.optimizer = o;
        void *buf;
        size_t len;
        ck_assert_ok(hlr_model_save_buffer(m, &so, &buf, &len));
        hlr_optimizer *back_o = NULL;
        hlr_model *back = hlr_model_load_buffer(buf, len, &back_o);
        ck_assert_msg(back && back_o, "optimizer kind %d: %s", kind, hlr_last_error());
        assert_same_model(m, back, "optimizer case");
        assert_same_optimizer(o, back_o, back);
        /* Loading without asking for the optimizer is fine too. */
        hlr_model *plain = hlr_model_load_buffer(buf, len, NULL);
        ck_assert_ptr_nonnull(plain);
        hlr_model_free(plain);
        hlr_buffer_free(buf);
        hlr_optimizer_free(back_o);
        hlr_model_free(back);
        hlr_optimizer_free(o);
        hlr_model_free(m);
    }
    /* A file without optimizer state gives NULL. */
    hlr_model *m = make_case(mc, 5);
    void *buf;
    size_t len;
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    hlr_optimizer *none = (hlr_optimizer *)1;
    hlr_model *back = hlr_model_load_buffer(buf, len, &none);
    ck_assert_ptr_nonnull(back);
    ck_assert_ptr_null(none);
    hlr_buffer_free(buf);
    hlr_model_free(back);
    hlr_model_free(m);
    hlr_dataset_free(d);
}
END_TEST

/* Resume: the model and optimizer a configuration trains with. */
typedef struct resume_case {
    const model_case *mc;
    int optimizer; /* 0 adam + cosine per epoch, 1 sgd nesterov + step per batch */
    int augment, per_batch;
    float smoothing;
    double validation;
} resume_case;

static hlr_optimizer *resume_optimizer(const resume_case *rc)
{
    hlr_optimizer *o;
    if (rc->optimizer == 0) {
        o = hlr_adam(5e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f);
        ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 4, 1e-4, 0, 1.0));
    } else {
        o = hlr_sgd(0.05f, 0.9f, 1, 1e-4f);
        ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, 0.7, 2, 0.5));
        ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    }
    return o;
}

static void resume_fit(const resume_case *rc, hlr_model *m, hlr_optimizer *o, const hlr_dataset *d, int epochs)
{
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = epochs;
    fo.batch_size = 12; /* 100 samples: the last batch is smaller */
    fo.augment_shift = rc->augment;
    fo.schedule_per_batch = rc->per_batch;
    fo.validation_split = rc->validation;
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
}

static void check_resume(const resume_case *rc)
{
    make_test_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/epoch1.hlr", test_dir);
    hlr_dataset *d = case_data(rc->mc, 100, 21);

    /* In a child process: one epoch, then save with optimizer and training state. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        hlr_model *m = make_case(rc->mc, 42);
        hlr_model_set_loss(m, HLR_LOSS_CROSS_ENTROPY, rc->smoothing);
        hlr_optimizer *o = resume_optimizer(rc);
        hlr_fit_options fo;
        hlr_fit_options_default(&fo);
        fo.epochs = 1;
        fo.batch_size = 12;
        fo.augment_shift = rc->augment;
        fo.schedule_per_batch = rc->per_batch;
        fo.validation_split = rc->validation;
        hlr_save_options so;
        hlr_save_options_default(&so);
        so.optimizer = o;
        int ok = hlr_model_fit(m, o, d, &fo) == HLR_OK && hlr_model_save(m, path, &so) == HLR_OK;
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not train and save");

    /* Here: two epochs in one go... */
    hlr_model *whole = make_case(rc->mc, 42);
    ck_assert_ok(hlr_model_set_loss(whole, HLR_LOSS_CROSS_ENTROPY, rc->smoothing));
    hlr_optimizer *wo = resume_optimizer(rc);
    resume_fit(rc, whole, wo, d, 2);

    /* ...against the child's epoch, loaded, and one more. */
    hlr_optimizer *ro = NULL;
    hlr_model *resumed = hlr_model_load(path, &ro);
    ck_assert_msg(resumed && ro, "%s", hlr_last_error());
    ck_assert_int_eq(hlr_model_epochs_trained(resumed), 1);
    resume_fit(rc, resumed, ro, d, 1);
    ck_assert_int_eq(hlr_model_epochs_trained(resumed), 2);
    assert_same_model(whole, resumed, "resumed training");
    assert_same_optimizer(wo, ro, resumed);
    ck_assert_mem_eq(whole->rng.s, resumed->rng.s, sizeof(hlr_rng));
    hlr_epoch_stats a, b;
    ck_assert_ok(hlr_metadata_history(hlr_model_metadata(whole), 1, &a));
    ck_assert_ok(hlr_metadata_history(hlr_model_metadata(resumed), 1, &b));
    /* bit for bit: val_loss is NaN (no validation part) in some cases */
    ck_assert_msg(a.train_loss == b.train_loss && memcmp(&a.val_loss, &b.val_loss, sizeof a.val_loss) == 0,
                  "epoch 2 loss %.17g vs %.17g, val_loss %.17g vs %.17g", a.train_loss, b.train_loss, a.val_loss,
                  b.val_loss);
    hlr_optimizer_free(ro);
    hlr_optimizer_free(wo);
    hlr_model_free(resumed);
    hlr_model_free(whole);
    hlr_dataset_free(d);
    remove_test_dir();
}

START_TEST(test_resume_in_a_new_process_is_bit_exact_adam_dropout_cosine)
{
    resume_case rc = {.mc = &model_cases[0], .optimizer = 0, .validation = 0.2};
    check_resume(&rc);
}
END_TEST

START_TEST(test_resume_in_a_new_process_is_bit_exact_sgd_batchnorm_augment)
{
    resume_case rc = {.mc = &model_cases[3], .optimizer = 1, .augment = 1, .per_batch = 1, .smoothing = 0.1f};
    check_resume(&rc);
}
END_TEST

/* ---- saving: arguments, layout, failures ---- */

START_TEST(test_save_checks_its_arguments)
{
    hlr_model *m = make_case(&model_cases[0], 1), *other = make_case(&model_cases[0], 2);
    void *buf = (void *)1;
    size_t len = 1;
    hlr_save_options so;
    hlr_save_options_default(&so);
    hlr_save_options_default(NULL);
    ck_assert_int_eq(so.compression, 6);
    ck_assert_int_eq(so.training_state, 1);
    ck_assert_ptr_null(so.optimizer);
    ck_assert_status(hlr_model_save(NULL, "/tmp/x.hlr", NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_save(m, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_save(m, "", NULL), HLR_EINVAL);
    ck_assert_status(hlr_model_save_buffer(m, NULL, NULL, &len), HLR_EINVAL);
    ck_assert_status(hlr_model_save_buffer(m, NULL, &buf, NULL), HLR_EINVAL);
    ck_assert_ptr_null(buf);
    so.compression = 10;
    ck_assert_status(hlr_model_save_buffer(m, &so, &buf, &len), HLR_EINVAL);
    ck_assert_error_mentions("compression");
    so.compression = -1;
    ck_assert_status(hlr_model_save_buffer(m, &so, &buf, &len), HLR_EINVAL);
    hlr_model *unbuilt = hlr_model_new(0);
    ck_assert_ok(hlr_model_add(unbuilt, hlr_relu()));
    ck_assert_status(hlr_model_save_buffer(unbuilt, NULL, &buf, &len), HLR_ESTATE);
    /* What a reader would refuse is refused when saving. */
    hlr_model *wide = hlr_model_new(0);
    ck_assert_ok(hlr_model_add(wide, hlr_relu()));
    ck_assert_ok(hlr_model_build(wide, 1, (int64_t[]){((int64_t)1 << 26) + 1}));
    ck_assert_status(hlr_model_save_buffer(wide, NULL, &buf, &len), HLR_EUNSUPPORTED);
    ck_assert_error_mentions("at most");
    hlr_model_free(wide);
    /* An optimizer bound to another model is refused. */
    hlr_dataset *d = case_data(&model_cases[0], 20, 1);
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    fit_epochs(other, o, d, 1, 10);
    hlr_save_options_default(&so);
    so.optimizer = o;
    ck_assert_status(hlr_model_save_buffer(m, &so, &buf, &len), HLR_ESTATE);
    ck_assert_error_mentions("another model");
    ck_assert_ptr_null(hlr_model_load(NULL, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_model_load_buffer(NULL, 10, NULL));
    ck_assert_ptr_null(hlr_model_info_load(NULL));
    ck_assert_ptr_null(hlr_model_info_load_buffer(NULL, 3));
    hlr_model_info_free(NULL);
    hlr_buffer_free(NULL);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(unbuilt);
    hlr_model_free(other);
    hlr_model_free(m);
}
END_TEST

static uint32_t crc_of(const unsigned char *p, size_t n) { return (uint32_t)crc32(0L, p, (uInt)n); }

/* The last fit's settings come back from a file (hlr_model_fit_settings); without a fit, or without the
 * training state, there are none and the file stays 1.0; a hostile FITS is refused, naming it. */
START_TEST(test_fit_settings_travel_in_files)
{
    const model_case *c = &model_cases[3]; /* cnn: (1, 8, 8) images, so augmentation applies */
    hlr_model *m = make_case(c, 7);
    hlr_fit_options got;
    ck_assert_status(hlr_model_fit_settings(m, &got), HLR_ENOTFOUND);
    ck_assert_int_eq(got.batch_size, 64); /* the defaults */
    ck_assert_status(hlr_model_fit_settings(NULL, &got), HLR_EINVAL);
    ck_assert_status(hlr_model_fit_settings(m, NULL), HLR_EINVAL);
    void *buf;
    size_t len;
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    ck_assert_int_eq(((unsigned char *)buf)[10], 0); /* never fitted: 1.0 */
    hlr_buffer_free(buf);

    hlr_dataset *d = case_data(c, 40, 11);
    hlr_optimizer *o = hlr_sgd(0.01f, 0.9f, 0, 0.0f);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 1;
    fo.batch_size = 7;
    fo.shuffle = 0;
    fo.validation_split = 0.25;
    fo.schedule_per_batch = 1;
    fo.augment_shift = 1;
    fo.augment = (hlr_augment){.rotate = 5, .scale = 0.1, .shear = 3, .elastic_alpha = 2, .elastic_sigma = 4};
    ck_assert_ok(hlr_model_fit(m, o, d, &fo));
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &len));
    ck_assert_int_eq(((unsigned char *)buf)[10], 2); /* format 1.2 */
    hlr_model *back = hlr_model_load_buffer(buf, len, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert_ok(hlr_model_fit_settings(back, &got));
    ck_assert_int_eq(got.batch_size, 7);
    ck_assert_int_eq(got.shuffle, 0);
    ck_assert(got.validation_split == 0.25);
    ck_assert_int_eq(got.schedule_per_batch, 1);
    ck_assert_int_eq(got.augment_shift, 1);
    ck_assert(got.augment.rotate == 5 && got.augment.scale == 0.1 && got.augment.shear == 3 &&
              got.augment.elastic_alpha == 2 && got.augment.elastic_sigma == 4);
    ck_assert_int_eq(got.epochs, 1); /* a call's own settings stay at their defaults */
    ck_assert(got.on_epoch == NULL);
    hlr_model_free(back);
    hlr_buffer_free(buf);

    /* without the training state there is no FITS either */
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.training_state = 0;
    ck_assert_ok(hlr_model_save_buffer(m, &so, &buf, &len));
    ck_assert_int_eq(((unsigned char *)buf)[10], 0);
    back = hlr_model_load_buffer(buf, len, NULL);
    ck_assert_status(hlr_model_fit_settings(back, &got), HLR_ENOTFOUND);
    hlr_model_free(back);
    hlr_buffer_free(buf);

    /* hostile: a batch size of 0, then a FITS without its TRST */
    hlr_save_options_default(&so);
    hlr_bytes b;
    uint32_t flags;
    ck_assert_ok(hlr__file_payload(m, &so, &b, &flags));
    unsigned char *tag = memmem(b.p, b.len, "FITS", 4);
    ck_assert_ptr_nonnull(tag);
    memset(tag + 12, 0, 4);
    void *f;
    size_t flen;
    ck_assert_ok(hlr__file_wrap_minor(b.p, b.len, 6, 2, flags, &f, &flen));
    ck_assert_ptr_null(hlr_model_load_buffer(f, flen, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("the fit's batch size");
    ck_assert_error_mentions("FITS");
    free(f);
    tag[12] = 7;
    unsigned char *trst = memmem(b.p, b.len, "TRST", 4);
    ck_assert_ptr_nonnull(trst);
    memcpy(trst, "XXXX", 4); /* an unknown chunk now: readers skip it */
    ck_assert_ok(hlr__file_wrap_minor(b.p, b.len, 6, 2, flags & ~HLR_FILE_FLAG_TRAINING, &f, &flen));
    ck_assert_ptr_null(hlr_model_load_buffer(f, flen, NULL));
    ck_assert_error_mentions("without the training state");
    free(f);
    hlr__bytes_free(&b);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_file_layout_is_the_documented_one)
{
    hlr_optimizer *o;
    hlr_model *m = trained_case(&model_cases[0], &o);
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.optimizer = o;
    unsigned char *f;
    size_t len;
    ck_assert_ok(hlr_model_save_buffer(m, &so, (void **)&f, &len));
    const unsigned char magic[8] = {0x89, 'H', 'L', 'R', 0x0D, 0x0A, 0x1A, 0x0A};
    ck_assert_mem_eq(f, magic, 8);
    ck_assert_int_eq(f[8] | f[9] << 8, 1);   /* major */
    ck_assert_int_eq(f[10] | f[11] << 8, 2); /* minor: 1.2, since the file records its fit (FITS) */
    ck_assert_uint_eq(hlr__get_u32(f + 12), 3); /* optimizer and training state */
    ck_assert_uint_eq(hlr__get_u64(f + 16), len - 40);
    ck_assert_uint_eq(hlr__get_u32(f + 36), crc_of(f, 36));
    ck_assert_int_eq(f[40], 0x78); /* a zlib stream */
    /* The payload's CRC, and its chunks in the documented order. */
    uint64_t usize = hlr__get_u64(f + 24);
    unsigned char *payload = malloc(usize);
    uLongf ul = (uLongf)usize;
    ck_assert_int_eq(uncompress(payload, &ul, f + 40, (uLong)(len - 40)), Z_OK);
    ck_assert_uint_eq(ul, usize);
    ck_assert_uint_eq(hlr__get_u32(f + 32), crc_of(payload, usize));
    char order[64] = "";
    for (size_t pos = 0; pos < usize;) {
        char tag[5] = {0};
        memcpy(tag, payload + pos, 4);
        size_t n = strlen(order); /* a run of PARM or OMOM chunks counts once */
        if (n < 4 || strcmp(order + n - 4, tag) != 0)
            strncat(order, tag, sizeof order - n - 1);
        pos += 12 + hlr__get_u64(payload + pos + 4);
    }
    ck_assert_str_eq(order, "ARCHPARMOPTMOMOMTRSTFITSMETAHIST");
    /* The same through the info API. */
    hlr_model_info *in = hlr_model_info_load_buffer(f, len);
    ck_assert_ptr_nonnull(in);
    hlr_file_summary s;
    ck_assert_ok(hlr_model_info_summary(in, &s, sizeof s));
    ck_assert_int_eq(s.format_major, 1);
    ck_assert_int_eq(s.uncompressed_size, usize);
    ck_assert_int_eq(s.crc_ok, 1);
    char tag[5];
    uint64_t off, clen;
    ck_assert_ok(hlr_model_info_chunk(in, 0, tag, &off, &clen));
    ck_assert_str_eq(tag, "ARCH");
    ck_assert_int_eq(off, 0);
    ck_assert_status(hlr_model_info_chunk(in, s.num_chunks, tag, &off, &clen), HLR_EINVAL);
    hlr_model_info_free(in);
    free(payload);
    hlr_buffer_free(f);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

static int read_whole(const char *path, unsigned char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *data = malloc((size_t)n + 1);
    *len = fread(*data, 1, (size_t)n, fp);
    fclose(fp);
    return 0;
}

START_TEST(test_failed_save_leaves_the_previous_file_intact)
{
    make_test_dir();
    char path[300], sub[300];
    snprintf(path, sizeof path, "%s/model.hlr", test_dir);
    hlr_model *small = make_case(&model_cases[0], 1);
    ck_assert_ok(hlr_model_save(small, path, NULL));
    unsigned char *before, *after;
    size_t nb, na;
    ck_assert_int_eq(read_whole(path, &before, &nb), 0);

    /* A full disk: writes beyond 2 KiB fail (RLIMIT_FSIZE gives EFBIG, as ENOSPC would fail them). */
    hlr_model *big = make_case(&model_cases[3], 2);
    hlr_model *bigger = hlr_model_new(0);
    ck_assert_ok(hlr_model_add(bigger, hlr_dense(64, 64, 1)));
    ck_assert_ok(hlr_model_build(bigger, 1, (int64_t[]){64}));
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 2048;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.compression = 0; /* 16 KiB of weights stay 16 KiB */
    hlr_status st = hlr_model_save(bigger, path, &so);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_eq(st, HLR_EIO);
    ck_assert_error_mentions(path);
    ck_assert_int_eq(read_whole(path, &after, &na), 0);
    ck_assert_msg(na == nb && memcmp(before, after, nb) == 0, "the previous file changed");
    free(after);
    ck_assert_int_eq(count_files(test_dir, ".tmp"), 0);
    hlr_model *still = hlr_model_load(path, NULL);
    ck_assert_ptr_nonnull(still);
    hlr_model_free(still);

    /* A folder that does not exist. */
    snprintf(sub, sizeof sub, "%s/no-such-folder/model.hlr", test_dir);
    ck_assert_status(hlr_model_save(big, sub, NULL), HLR_EIO);
    ck_assert_error_mentions("no-such-folder");

    /* The destination is a folder: the rename fails, the folder stays, nothing is left behind. */
    snprintf(sub, sizeof sub, "%s/a-folder", test_dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_status(hlr_model_save(big, sub, NULL), HLR_EIO);
    struct stat sb;
    ck_assert(stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode));
    ck_assert_int_eq(count_files(test_dir, ".tmp"), 0);

    /* An unwritable folder (root writes anyway, so only for other users). */
    if (geteuid() != 0) {
        snprintf(sub, sizeof sub, "%s/read-only", test_dir);
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        char inner[400];
        snprintf(inner, sizeof inner, "%s/model.hlr", sub);
        ck_assert_ok(hlr_model_save(small, inner, NULL));
        chmod(sub, 0500);
        ck_assert_status(hlr_model_save(big, inner, NULL), HLR_EIO);
        chmod(sub, 0700);
        ck_assert_int_eq(read_whole(inner, &after, &na), 0);
        ck_assert_msg(na == nb && memcmp(before, after, nb) == 0, "the previous file changed");
        free(after);
        ck_assert_int_eq(count_files(sub, ".tmp"), 0);
    }
    /* A successful save replaces it. */
    ck_assert_ok(hlr_model_save(big, path, NULL));
    ck_assert_int_eq(read_whole(path, &after, &na), 0);
    ck_assert(na != nb || memcmp(before, after, nb) != 0);
    free(after);
    free(before);
    hlr_model_free(bigger);
    hlr_model_free(big);
    hlr_model_free(small);
    remove_test_dir();
}
END_TEST

START_TEST(test_loading_missing_and_non_model_files_fails_cleanly)
{
    make_test_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/absent.hlr", test_dir);
    ck_assert_ptr_null(hlr_model_load(path, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EIO);
    ck_assert_error_mentions("absent.hlr");
    ck_assert_ptr_null(hlr_model_load(test_dir, NULL)); /* a folder */
    ck_assert_int_eq(hlr_last_status(), HLR_EIO);
    FILE *fp = fopen(path, "wb");
    fputs("hello, I am not a model\n", fp);
    fclose(fp);
    ck_assert_ptr_null(hlr_model_load(path, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("not a libhlr model");
    fp = fopen(path, "wb");
    fclose(fp);
    ck_assert_ptr_null(hlr_model_load(path, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_ptr_null(hlr_model_info_load(path));
    remove_test_dir();
}
END_TEST

/* A FIFO (or other special file) is refused at once: the loader used to
 * open it before checking what it was, and the open waited for a writer
 * forever (issue 23). */
START_TEST(test_loading_a_fifo_fails_without_blocking)
{
    make_test_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/pipe.hlr", test_dir);
    fifo_guard g;
    fifo_guard_start(&g, path);
    hlr_model *m = hlr_model_load(path, NULL);
    hlr_status st = hlr_last_status();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hlr_last_error());
    hlr_model_info *info = hlr_model_info_load(path);
    hlr_status st_info = hlr_last_status();
    int blocked = fifo_guard_stop(&g);
    hlr_model_free(m);
    hlr_model_info_free(info);
    ck_assert_msg(!blocked, "loading a FIFO blocked until a writer came");
    ck_assert_ptr_null(m);
    ck_assert_ptr_null(info);
    ck_assert_int_eq(st, HLR_EIO);
    ck_assert_int_eq(st_info, HLR_EIO);
    ck_assert_msg(strstr(msg, "not a regular file") && strstr(msg, "pipe.hlr"), "message: %s", msg);
    remove_test_dir();
}
END_TEST

/* ---- hostile files ---- */

/* The file every hostile test starts from: model, Adam state, metadata, history. */
static hlr_model *hostile_model;
static hlr_optimizer *hostile_opt;
static unsigned char *base_file, *base_payload;
static size_t base_len, base_plen;
static uint32_t base_flags;

static void hostile_setup(void)
{
    hlr_set_num_threads(1); /* thousands of tiny predictions: no thread pool to wake */
    hostile_model = trained_case(&model_cases[2], &hostile_opt);
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.optimizer = hostile_opt;
    ck_assert_ok(hlr_model_save_buffer(hostile_model, &so, (void **)&base_file, &base_len));
    hlr_bytes b;
    ck_assert_ok(hlr__file_payload(hostile_model, &so, &b, &base_flags));
    base_payload = b.p;
    base_plen = b.len;
}

static void hostile_teardown(void)
{
    hlr_buffer_free(base_file);
    hlr__free(base_payload);
    hlr_optimizer_free(hostile_opt);
    hlr_model_free(hostile_model);
}

typedef struct outcome {
    long loaded, failed;
} outcome;

/* Load a candidate file: it must load a usable model or fail with a clean
 * status and message.  (Plain ifs: each ck_assert writes to Check's pipe, and
 * this runs a hundred thousand times.) */
static void try_file(const unsigned char *f, size_t n, outcome *out, const char *what, long case_no)
{
    hlr_optimizer *o = NULL;
    hlr_model *m = hlr_model_load_buffer(f, n, &o);
    if (m) {
        /* Usable: it predicts on one sample of its input shape. */
        const hlr_shape *in = &m->in;
        int64_t xs[HLR_MAX_DIMS], ys[HLR_MAX_DIMS];
        int ond;
        xs[0] = ys[0] = 1;
        memcpy(xs + 1, in->d, (size_t)in->ndim * sizeof *xs);
        hlr_status st = hlr_model_output_shape(m, &ond, ys + 1);
        hlr_tensor *x = hlr_tensor_new(hlr__model_in_dtype(m), in->ndim + 1, xs); /* zeros: valid token ids too */
        hlr_tensor *y = st == HLR_OK ? hlr_tensor_new(HLR_F32, ond + 1, ys) : NULL;
        if (!x || !y || (st = hlr_model_forward(m, x, y, 0)) != HLR_OK)
            ck_abort_msg("%s %ld: the loaded model does not predict: %s", what, case_no, hlr_last_error());
        hlr_tensor_free(x);
        hlr_tensor_free(y);
        hlr_optimizer_free(o);
        hlr_model_free(m);
        out->loaded++;
    } else {
        hlr_status st = hlr_last_status();
        if (o)
            ck_abort_msg("%s %ld: an optimizer without a model", what, case_no);
        if (st != HLR_EFORMAT && st != HLR_EUNSUPPORTED)
            ck_abort_msg("%s %ld: status %d (%s): %s", what, case_no, (int)st, hlr_strerror(st), hlr_last_error());
        if (strncmp(hlr_last_error(), "model file", 10) != 0)
            ck_abort_msg("%s %ld: message \"%s\"", what, case_no, hlr_last_error());
        out->failed++;
    }
    /* The info reader meets the same bytes. */
    hlr_model_info *in = hlr_model_info_load_buffer(f, n);
    if (in) {
        hlr_file_summary s;
        if (hlr_model_info_summary(in, &s, sizeof s) != HLR_OK)
            ck_abort_msg("%s %ld: info summary: %s", what, case_no, hlr_last_error());
        for (int i = 0; i < s.num_layers; i++)
            if (hlr_model_info_layer(in, i, NULL, NULL, NULL, NULL, NULL) != HLR_OK)
                ck_abort_msg("%s %ld: info layer %d: %s", what, case_no, i, hlr_last_error());
        hlr_model_info_free(in);
    } else {
        hlr_status st = hlr_last_status();
        if (st != HLR_EFORMAT && st != HLR_EUNSUPPORTED)
            ck_abort_msg("%s %ld (info): status %d: %s", what, case_no, (int)st, hlr_last_error());
    }
}

/* Wrap a (mutated) payload in a valid header and checksums, then try it. */
static void try_payload(const unsigned char *p, size_t n, outcome *out, const char *what, long case_no)
{
    void *f;
    size_t fl;
    if (hlr__file_wrap(p, n, 0, base_flags, &f, &fl) != HLR_OK) /* stored: fast, same parser work */
        ck_abort_msg("%s %ld: cannot wrap: %s", what, case_no, hlr_last_error());
    try_file(f, fl, out, what, case_no);
    hlr__free(f);
}

START_TEST(test_file_truncated_at_every_byte_fails_cleanly)
{
    outcome out = {0};
    for (size_t n = 0; n < base_len; n++)
        try_file(base_file, n, &out, "file truncated to", (long)n);
    ck_assert_int_eq(out.loaded, 0);
    out = (outcome){0};
    try_file(base_file, base_len, &out, "whole file", 0);
    ck_assert_int_eq(out.loaded, 1);
}
END_TEST

START_TEST(test_payload_truncated_at_every_byte_fails_cleanly)
{
    outcome out = {0};
    for (size_t n = 0; n < base_plen; n++)
        try_payload(base_payload, n, &out, "payload truncated to", (long)n);
    /* Cut at a chunk boundary after the last required chunk, a shorter payload can be valid. */
    ck_assert_msg(out.failed >= (long)base_plen - 16, "%ld truncations loaded", out.loaded);
}
END_TEST

START_TEST(test_every_bit_flip_in_the_first_kilobytes_fails_or_loads_cleanly)
{
    outcome out = {0};
    unsigned char *f = malloc(base_len);
    size_t limit = base_len < 4096 ? base_len : 4096;
    for (size_t i = 0; i < limit; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(f, base_file, base_len);
            f[i] ^= (unsigned char)(1u << bit);
            try_file(f, base_len, &out, "file bit flip", (long)(i * 8 + (size_t)bit));
        }
    ck_assert_int_eq(out.loaded + out.failed, (long)limit * 8);
    free(f);
    /* In the payload under valid checksums the parser itself sees every flip. */
    out = (outcome){0};
    unsigned char *p = malloc(base_plen);
    limit = base_plen < 4096 ? base_plen : 4096;
    for (size_t i = 0; i < limit; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, base_payload, base_plen);
            p[i] ^= (unsigned char)(1u << bit);
            try_payload(p, base_plen, &out, "payload bit flip", (long)(i * 8 + (size_t)bit));
        }
    ck_assert_msg(out.loaded > 0 && out.failed > 0, "payload flips: %ld loaded, %ld failed", out.loaded, out.failed);
    free(p);
}
END_TEST

/* One random mutation of src into dst (capacity cap); returns the new length. */
static size_t mutate(const unsigned char *src, size_t n, unsigned char *dst, size_t cap, unsigned long long *rng)
{
    memcpy(dst, src, n);
    int kind = (int)(test_rand(rng) * 7);
    size_t at = (size_t)(test_rand(rng) * (float)n);
    if (at >= n)
        at = n - 1;
    switch (kind) {
    case 0: /* change 1 to 4 bytes */
    {
        int k = 1 + (int)(test_rand(rng) * 4);
        for (int i = 0; i < k && at + (size_t)i < n; i++)
            dst[at + (size_t)i] = (unsigned char)(test_rand(rng) * 256);
        return n;
    }
    case 1: /* insert 1 to 16 random bytes */
    {
        size_t k = 1 + (size_t)(test_rand(rng) * 16);
        if (n + k > cap)
            return n;
        memmove(dst + at + k, dst + at, n - at);
        for (size_t i = 0; i < k; i++)
            dst[at + i] = (unsigned char)(test_rand(rng) * 256);
        return n + k;
    }
    case 2: /* delete 1 to 16 bytes */
    {
        size_t k = 1 + (size_t)(test_rand(rng) * 16);
        if (k > n - at)
            k = n - at;
        memmove(dst + at, dst + at + k, n - at - k);
        return n - k;
    }
    case 3: /* a huge 32-bit length */
    case 4: /* a huge 64-bit length */
    {
        static const uint64_t huge[] = {0xFFFFFFFFFFFFFFFFull, 0x7FFFFFFFull, 0x80000000ull, 0xFFFFFFFFull,
                                        0x100000000ull, 0x7FFFFFFFFFFFFFFFull, 1ull << 40, 1ull << 20};
        uint64_t v = huge[(int)(test_rand(rng) * 8) & 7];
        int width = kind == 3 ? 4 : 8;
        for (int i = 0; i < width && at + (size_t)i < n; i++)
            dst[at + (size_t)i] = (unsigned char)(v >> (8 * i));
        return n;
    }
    case 5: /* a small count: 0, 1 or one off */
    {
        uint32_t v = (uint32_t)(test_rand(rng) * 3);
        if (at + 4 <= n) {
            uint32_t old = hlr__get_u32(dst + at);
            v = v == 2 ? old + 1 : v;
            for (int i = 0; i < 4; i++)
                dst[at + (size_t)i] = (unsigned char)(v >> (8 * i));
        }
        return n;
    }
    default: /* copy a block from elsewhere over this place */
    {
        size_t from = (size_t)(test_rand(rng) * (float)n), k = 1 + (size_t)(test_rand(rng) * 64);
        if (from >= n)
            from = 0;
        if (k > n - from)
            k = n - from;
        if (k > n - at)
            k = n - at;
        memmove(dst + at, src + from, k);
        return n;
    }
    }
}

START_TEST(test_ten_thousand_random_mutations_of_file_and_payload_fail_or_load_cleanly)
{
    /* 10,000 mutations of whole files and 10,000 of payloads (re-wrapped in valid
     * checksums), spread over four architectures so that every layer type's
     * configuration meets hostile values; all from one fixed seed. */
    static const int cases[] = {2, 3, 4, 7}; /* mlp-bn, cnn, lstm, tokens-gru */
    const int per_case = 10000 / (int)(sizeof cases / sizeof cases[0]);
    unsigned long long rng = 20240607;
    outcome file_out = {0}, payload_out = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hlr_optimizer *o;
        hlr_model *m = trained_case(&model_cases[cases[c]], &o);
        hlr_save_options so;
        hlr_save_options_default(&so);
        so.optimizer = o;
        unsigned char *file;
        size_t flen;
        hlr_bytes pl;
        uint32_t flags;
        ck_assert_ok(hlr_model_save_buffer(m, &so, (void **)&file, &flen));
        ck_assert_ok(hlr__file_payload(m, &so, &pl, &flags));
        base_flags = flags; /* try_payload wraps with these */
        size_t cap = (flen > pl.len ? flen : pl.len) + 64;
        unsigned char *buf = malloc(cap), *again = malloc(cap);
        for (int i = 0; i < per_case; i++) {
            size_t n = mutate(file, flen, buf, cap, &rng);
            try_file(buf, n, &file_out, model_cases[cases[c]].name, i);
        }
        for (int i = 0; i < per_case; i++) {
            size_t n = mutate(pl.p, pl.len, buf, cap, &rng);
            if (test_rand(&rng) < 0.25f) { /* now and then a second mutation on top */
                memcpy(again, buf, n);
                n = mutate(again, n, buf, cap, &rng);
            }
            try_payload(buf, n, &payload_out, model_cases[cases[c]].name, i);
        }
        free(buf);
        free(again);
        hlr__bytes_free(&pl);
        hlr_buffer_free(file);
        hlr_optimizer_free(o);
        hlr_model_free(m);
    }
    ck_assert_int_eq(file_out.loaded + file_out.failed, 10000);
    ck_assert_int_eq(payload_out.loaded + payload_out.failed, 10000);
    ck_assert_msg(payload_out.loaded > 0 && payload_out.failed > 5000, "payload mutations: %ld loaded, %ld failed",
                  payload_out.loaded, payload_out.failed);
}
END_TEST

/* Set the header's version and fix its CRC. */
static void set_version(unsigned char *f, unsigned major, unsigned minor, uint32_t flags)
{
    f[8] = (unsigned char)major;
    f[9] = (unsigned char)(major >> 8);
    f[10] = (unsigned char)minor;
    f[11] = (unsigned char)(minor >> 8);
    for (int i = 0; i < 4; i++)
        f[12 + i] = (unsigned char)(flags >> (8 * i));
    uint32_t crc = crc_of(f, 36);
    for (int i = 0; i < 4; i++)
        f[36 + i] = (unsigned char)(crc >> (8 * i));
}

START_TEST(test_versions_unknown_chunks_and_required_flags)
{
    unsigned char *f = malloc(base_len);
    memcpy(f, base_file, base_len);
    set_version(f, 2, 3, base_flags);
    ck_assert_ptr_null(hlr_model_load_buffer(f, base_len, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EUNSUPPORTED);
    ck_assert_error_mentions("2.3");
    ck_assert_error_mentions("1.x");
    set_version(f, 0, 9, base_flags);
    ck_assert_ptr_null(hlr_model_load_buffer(f, base_len, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    set_version(f, 1, 0, base_flags | 0x10000u);
    ck_assert_ptr_null(hlr_model_load_buffer(f, base_len, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EUNSUPPORTED);
    ck_assert_error_mentions("required");
    set_version(f, 1, 0, base_flags | 0x8000u); /* an informative bit: ignored */
    hlr_model *m = hlr_model_load_buffer(f, base_len, NULL);
    ck_assert_msg(m != NULL, "%s", hlr_last_error());
    hlr_model_free(m);
    set_version(f, 1, 0, base_flags & ~1u); /* says no optimizer, but there is one */
    ck_assert_ptr_null(hlr_model_load_buffer(f, base_len, NULL));
    ck_assert_error_mentions("flags");
    free(f);

    /* A minor version 1.7 with chunks this reader does not know: skipped. */
    hlr_bytes b = {0};
    hlr__put_raw(&b, base_payload, base_plen);
    size_t at = hlr__chunk_begin(&b, "ZZZZ");
    hlr__put_str(&b, "from the future");
    hlr__chunk_end(&b, at);
    at = hlr__chunk_begin(&b, "nEw!");
    hlr__chunk_end(&b, at);
    void *nf;
    size_t nlen;
    ck_assert_ok(hlr__file_wrap(b.p, b.len, 6, base_flags, &nf, &nlen));
    set_version(nf, 1, 7, base_flags);
    m = hlr_model_load_buffer(nf, nlen, NULL);
    ck_assert_msg(m != NULL, "%s", hlr_last_error());
    assert_same_model(hostile_model, m, "with unknown chunks");
    hlr_model_info *in = hlr_model_info_load_buffer(nf, nlen);
    hlr_file_summary s;
    ck_assert_ok(hlr_model_info_summary(in, &s, sizeof s));
    ck_assert_int_eq(s.format_minor, 7);
    char tag[5];
    ck_assert_ok(hlr_model_info_chunk(in, s.num_chunks - 1, tag, NULL, NULL));
    ck_assert_str_eq(tag, "nEw!");
    hlr_model_info_free(in);
    hlr_model_free(m);
    hlr__free(nf);
    hlr__bytes_free(&b);
}
END_TEST

/* A payload with one dense layer whose configuration says in x out while the
 * file declares and holds a (rows, cols) weight. */
static void dense_payload(hlr_bytes *b, int64_t in, int64_t out, int64_t rows, int64_t cols)
{
    int64_t stored = rows * cols;
    memset(b, 0, sizeof *b);
    size_t at = hlr__chunk_begin(b, "ARCH");
    hlr__put_u32(b, 1);
    hlr__put_u32(b, 1);
    hlr__put_u64(b, (uint64_t)in);
    hlr__put_u32(b, 0);
    hlr__put_f32(b, 0.0f);
    hlr__put_str(b, "dense");
    hlr__put_u32(b, 3);
    const char *keys[3] = {"in", "out", "bias"};
    int64_t vals[3] = {in, out, 0};
    for (int i = 0; i < 3; i++) {
        hlr__put_str(b, keys[i]);
        hlr__put_u8(b, 0);
        hlr__put_u64(b, (uint64_t)vals[i]);
    }
    hlr__put_u32(b, 1);
    hlr__put_u64(b, (uint64_t)out);
    hlr__put_u64(b, (uint64_t)stored);
    hlr__put_u32(b, 1);
    hlr__chunk_end(b, at);
    at = hlr__chunk_begin(b, "PARM");
    hlr__put_u32(b, 0);
    hlr__put_str(b, "weight");
    hlr__put_u32(b, 0);
    hlr__put_u32(b, 2);
    hlr__put_u64(b, (uint64_t)rows);
    hlr__put_u64(b, (uint64_t)cols);
    for (int64_t i = 0; i < stored; i++)
        hlr__put_f32(b, 0.5f);
    hlr__chunk_end(b, at);
}

START_TEST(test_hostile_sizes_are_refused_before_allocating)
{
    /* A 40-byte header announcing 2^40 bytes of payload. */
    unsigned char *f = malloc(base_len);
    memcpy(f, base_file, base_len);
    for (int i = 0; i < 8; i++)
        f[24 + i] = (unsigned char)(((uint64_t)1 << 40) >> (8 * i));
    set_version(f, 1, 0, base_flags);
    ck_assert_ptr_null(hlr_model_load_buffer(f, base_len, NULL));
    ck_assert_error_mentions("impossible");
    free(f);

    /* A dense layer of 2^30 x 2^20 weights (4 PiB) backed by 4 stored values. */
    hlr_bytes b;
    dense_payload(&b, (int64_t)1 << 30, (int64_t)1 << 20, 2, 2);
    void *nf;
    size_t nlen;
    ck_assert_ok(hlr__file_wrap(b.p, b.len, 6, 0, &nf, &nlen));
    ck_assert_ptr_null(hlr_model_load_buffer(nf, nlen, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("ARCH");
    hlr__free(nf);
    hlr__bytes_free(&b);

    /* Consistent but large enough to need more than the file justifies: 4096 x 4096 backed by 64 values. */
    dense_payload(&b, 4096, 4096, 8, 8);
    ck_assert_ok(hlr__file_wrap(b.p, b.len, 6, 0, &nf, &nlen));
    ck_assert_ptr_null(hlr_model_load_buffer(nf, nlen, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("justify");
    hlr__free(nf);
    hlr__bytes_free(&b);

    /* And the honest version of it loads. */
    dense_payload(&b, 4, 16, 16, 4);
    ck_assert_ok(hlr__file_wrap(b.p, b.len, 6, 0, &nf, &nlen));
    hlr_model *m = hlr_model_load_buffer(nf, nlen, NULL);
    ck_assert_msg(m != NULL, "%s", hlr_last_error());
    ck_assert_float_eq(hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "weight"))[63], 0.5f);
    hlr_model_free(m);
    hlr__free(nf);
    hlr__bytes_free(&b);

    /* A payload claiming a chunk longer than the payload; a chunk table of garbage tags. */
    unsigned char junk[40] = "ARCH";
    memset(junk + 4, 0xFF, 8);
    ck_assert_ok(hlr__file_wrap(junk, sizeof junk, 6, 0, &nf, &nlen));
    ck_assert_ptr_null(hlr_model_load_buffer(nf, nlen, NULL));
    ck_assert_error_mentions("claims");
    hlr__free(nf);
    junk[0] = 0x01;
    ck_assert_ok(hlr__file_wrap(junk, sizeof junk, 6, 0, &nf, &nlen));
    ck_assert_ptr_null(hlr_model_load_buffer(nf, nlen, NULL));
    ck_assert_error_mentions("printable");
    hlr__free(nf);
}
END_TEST

START_TEST(test_errors_name_the_chunk_and_offset)
{
    /* Rename a tensor in the payload: "weight" -> "weighx". */
    unsigned char *p = malloc(base_plen);
    memcpy(p, base_payload, base_plen);
    unsigned char *w = NULL;
    for (size_t i = 0; i + 6 < base_plen && !w; i++)
        if (!memcmp(p + i, "PARM", 4))
            w = memmem(p + i, base_plen - i, "weight", 6);
    ck_assert_ptr_nonnull(w);
    w[5] = 'x';
    void *f;
    size_t n;
    ck_assert_ok(hlr__file_wrap(p, base_plen, 6, base_flags, &f, &n));
    ck_assert_ptr_null(hlr_model_load_buffer(f, n, NULL));
    ck_assert_error_mentions("chunk PARM #1 at payload offset");
    ck_assert_error_mentions("weighx");
    hlr__free(f);
    free(p);

    /* A damaged payload CRC: load refuses, info reports it. */
    unsigned char *g = malloc(base_len);
    memcpy(g, base_file, base_len);
    g[32] ^= 0x55;
    set_version(g, 1, 0, base_flags);
    ck_assert_ptr_null(hlr_model_load_buffer(g, base_len, NULL));
    ck_assert_error_mentions("CRC-32");
    hlr_model_info *in = hlr_model_info_load_buffer(g, base_len);
    ck_assert_ptr_nonnull(in);
    hlr_file_summary s;
    ck_assert_ok(hlr_model_info_summary(in, &s, sizeof s));
    ck_assert_int_eq(s.crc_ok, 0);
    hlr_model_info_free(in);
    free(g);
}
END_TEST

/* ---- the info reader ---- */

START_TEST(test_info_reads_the_layer_table_and_metadata_without_weights)
{
    hlr_model_info *in = hlr_model_info_load_buffer(base_file, base_len);
    ck_assert_ptr_nonnull(in);
    hlr_file_summary s;
    ck_assert_status(hlr_model_info_summary(in, &s, 0), HLR_EINVAL);
    ck_assert_ok(hlr_model_info_summary(in, &s, sizeof s));
    ck_assert_int_eq(s.format_major, HLR_FORMAT_MAJOR);
    ck_assert_int_eq(s.format_minor, 2); /* 1.2: the file records the fit that trained it (FITS) */
    ck_assert_int_eq(s.file_size, base_len);
    ck_assert_int_eq(s.crc_ok, 1);
    ck_assert_str_eq(s.writer_version, HLR_VERSION_STRING);
    ck_assert_int_eq(s.num_layers, hlr_model_num_layers(hostile_model));
    ck_assert_int_eq(s.input_ndim, 2);
    ck_assert_int_eq(s.input_shape[1], 4);
    ck_assert_int_eq(s.param_count, hlr_model_param_count(hostile_model)); /* trainable */
    ck_assert_int_eq(s.buffer_count, 16); /* batch norm's running mean and variance of 8 features */
    ck_assert_int_eq(s.has_optimizer, 1);
    ck_assert_str_eq(s.optimizer, "adam");
    ck_assert(s.current_lr == hlr_optimizer_lr(hostile_opt));
    ck_assert_int_eq(s.optimizer_steps, hlr_optimizer_steps(hostile_opt));
    ck_assert_int_eq(s.has_training_state, 1);
    ck_assert_int_eq(s.epochs_trained, 2);
    const char *type, *config;
    int nd;
    int64_t shape[HLR_MAX_DIMS], scalars;
    ck_assert_ok(hlr_model_info_layer(in, 1, &type, &config, &nd, shape, &scalars));
    ck_assert_str_eq(type, "dense");
    ck_assert_str_eq(config, "in=12 out=16 bias=1");
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(shape[0], 16);
    ck_assert_int_eq(scalars, 12 * 16 + 16);
    ck_assert_ok(hlr_model_info_layer(in, 0, &type, &config, NULL, NULL, NULL));
    ck_assert_str_eq(config, "");
    ck_assert_ok(hlr_model_info_layer(in, 4, &type, &config, NULL, NULL, NULL));
    ck_assert_str_eq(config, "num_features=8 eps=9.99999975e-06 momentum=0.100000001");
    ck_assert_status(hlr_model_info_layer(in, 99, &type, NULL, NULL, NULL, NULL), HLR_EINVAL);
    const hlr_metadata *md = hlr_model_info_metadata(in);
    ck_assert_str_eq(hlr_metadata_dataset(md), "generated");
    ck_assert_str_eq(hlr_metadata_class_name(md, 1), "one");
    ck_assert_int_eq(hlr_metadata_history_length(md), 2);
    /* Equal weights, equal digest; a trained step changes it. */
    void *again;
    size_t alen;
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.compression = 9;
    so.training_state = 0;
    ck_assert_ok(hlr_model_save_buffer(hostile_model, &so, &again, &alen));
    hlr_model_info *in2 = hlr_model_info_load_buffer(again, alen);
    hlr_file_summary s2;
    ck_assert_ok(hlr_model_info_summary(in2, &s2, sizeof s2));
    ck_assert_uint_eq(s.weights_crc, s2.weights_crc);
    ck_assert_int_eq(s2.has_training_state, 0);
    ck_assert_int_eq(s2.has_optimizer, 0);
    ck_assert_uint_eq(s2.flags, 0);
    hlr_model_info_free(in2);
    hlr_buffer_free(again);
    /* A smaller struct (an older caller) gets only its fields. */
    int old[2] = {-1, -1};
    ck_assert_ok(hlr_model_info_summary(in, (hlr_file_summary *)old, sizeof(int)));
    ck_assert_int_eq(old[0], 1);
    ck_assert_int_eq(old[1], -1);
    hlr_model_info_free(in);
}
END_TEST

/* ---- clones and threads ---- */

#define N_THREADS 4
#define N_IMAGES 64

typedef struct worker {
    hlr_model *original;
    const hlr_tensor *x;
    int32_t classes[N_IMAGES];
    float probs[N_IMAGES * 3];
    int rounds;
    hlr_status status;
    char error[256];
} worker;

static void *serve(void *arg)
{
    worker *w = arg;
    hlr_model *mine = hlr_model_clone_shared(w->original);
    if (!mine) {
        w->status = hlr_last_status();
        snprintf(w->error, sizeof w->error, "%s", hlr_last_error());
        return NULL;
    }
    hlr_tensor *probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N_IMAGES, 3});
    for (int r = 0; r < w->rounds && w->status == HLR_OK; r++)
        if ((w->status = hlr_model_predict(mine, w->x, w->classes, probs)) != HLR_OK)
            snprintf(w->error, sizeof w->error, "%s", hlr_last_error());
    memcpy(w->probs, hlr_tensor_f32(probs), sizeof w->probs);
    hlr_tensor_free(probs);
    hlr_model_free(mine);
    return NULL;
}

START_TEST(test_four_threads_serve_one_loaded_model_through_clones)
{
    const model_case *mc = &model_cases[3]; /* convolutions (with per-layer workspaces) and batch norm */
    hlr_model *trained = trained_case(mc, NULL);
    void *buf;
    size_t len;
    ck_assert_ok(hlr_model_save_buffer(trained, NULL, &buf, &len));
    hlr_model *m = hlr_model_load_buffer(buf, len, NULL);
    ck_assert_ptr_nonnull(m);
    hlr_buffer_free(buf);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){N_IMAGES, 1, 8, 8});
    test_fill(hlr_tensor_f32(x), N_IMAGES * 64, 5, 0.0f, 1.0f);
    int32_t want[N_IMAGES];
    hlr_tensor *want_p = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N_IMAGES, 3});
    ck_assert_ok(hlr_model_predict(m, x, want, want_p));

    /* A clone shares the tensors (same addresses), not a copy. */
    hlr_model *c = hlr_model_clone_shared(m);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *a = hlr_model_layer(m, i), *b = hlr_model_layer(c, i);
        for (int j = 0; j < a->nparams; j++) {
            ck_assert_ptr_eq(a->params[j].value.data, b->params[j].value.data);
            ck_assert_ptr_null(b->params[j].grad.data);
        }
    }
    /* It refuses to train. */
    hlr_dataset *d = case_data(mc, 8, 1);
    hlr_optimizer *o = hlr_sgd(0.1f, 0, 0, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    ck_assert_status(hlr_model_fit(c, o, d, &fo), HLR_ESTATE);
    ck_assert_error_mentions("clone");
    ck_assert_status(hlr_optimizer_step(o, c), HLR_ESTATE);
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 2, (int64_t[]){N_IMAGES, 3});
    ck_assert_status(hlr_model_forward(c, x, y, 1), HLR_ESTATE);
    ck_assert_ok(hlr_model_forward(c, x, y, 0));
    hlr_tensor *labels = hlr_tensor_new(HLR_I32, 1, (int64_t[]){N_IMAGES});
    ck_assert_status(hlr_model_train_batch(c, o, x, labels, NULL), HLR_ESTATE);
    hlr_model *cc = hlr_model_clone_shared(c); /* a clone of a clone shares the first model's data */
    ck_assert_ptr_eq(hlr_model_layer(cc, 0)->params[0].value.data, hlr_model_layer(m, 0)->params[0].value.data);
    hlr_model_free(cc);
    hlr_model_free(c);
    ck_assert_ptr_null(hlr_model_clone_shared(NULL));
    hlr_model *unbuilt = hlr_model_new(0);
    ck_assert_ptr_null(hlr_model_clone_shared(unbuilt));
    ck_assert_int_eq(hlr_last_status(), HLR_ESTATE);
    hlr_model_free(unbuilt);

    /* Four threads, each with its own clone, while the original predicts too. */
    worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].original = m;
        w[t].x = x;
        w[t].rounds = 20;
        ck_assert_int_eq(pthread_create(&th[t], NULL, serve, &w[t]), 0);
    }
    int32_t again[N_IMAGES];
    for (int r = 0; r < 10; r++)
        ck_assert_ok(hlr_model_predict(m, x, again, NULL));
    for (int t = 0; t < N_THREADS; t++)
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < N_THREADS; t++) {
        ck_assert_msg(w[t].status == HLR_OK, "thread %d: %s", t, w[t].error);
        ck_assert_mem_eq(w[t].classes, want, sizeof want);
        test_expect_same_bits("a thread's probabilities", w[t].probs, hlr_tensor_f32(want_p), N_IMAGES * 3);
    }
    ck_assert_mem_eq(again, want, sizeof want);
    hlr_tensor_free(labels);
    hlr_tensor_free(y);
    hlr_optimizer_free(o);
    hlr_dataset_free(d);
    hlr_tensor_free(want_p);
    hlr_tensor_free(x);
    hlr_model_free(m);
    hlr_model_free(trained);
}
END_TEST

Suite *suite_format(void);
Suite *suite_format(void)
{
    Suite *s = suite_create("format");
    TCase *t = tcase_create("roundtrip");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_every_layer_type_round_trips_with_identical_predictions);
    tcase_add_test(t, test_path_round_trip_keeps_metadata_history_and_training_state);
    tcase_add_test(t, test_metadata_setters_check_their_limits);
    tcase_add_test(t, test_optimizer_state_round_trips_for_every_kind);
    tcase_add_test(t, test_resume_in_a_new_process_is_bit_exact_adam_dropout_cosine);
    tcase_add_test(t, test_resume_in_a_new_process_is_bit_exact_sgd_batchnorm_augment);
    suite_add_tcase(s, t);

    t = tcase_create("save");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_save_checks_its_arguments);
    tcase_add_test(t, test_file_layout_is_the_documented_one);
    tcase_add_test(t, test_fit_settings_travel_in_files);
    tcase_add_test(t, test_failed_save_leaves_the_previous_file_intact);
    tcase_add_test(t, test_loading_missing_and_non_model_files_fails_cleanly);
    tcase_add_test(t, test_loading_a_fifo_fails_without_blocking);
    suite_add_tcase(s, t);

    t = tcase_create("hostile");
    tcase_set_timeout(t, 300); /* minutes under sanitizers, seconds otherwise */
    tcase_add_checked_fixture(t, hostile_setup, hostile_teardown);
    tcase_add_test(t, test_file_truncated_at_every_byte_fails_cleanly);
    tcase_add_test(t, test_payload_truncated_at_every_byte_fails_cleanly);
    tcase_add_test(t, test_every_bit_flip_in_the_first_kilobytes_fails_or_loads_cleanly);
    tcase_add_test(t, test_ten_thousand_random_mutations_of_file_and_payload_fail_or_load_cleanly);
    tcase_add_test(t, test_versions_unknown_chunks_and_required_flags);
    tcase_add_test(t, test_hostile_sizes_are_refused_before_allocating);
    tcase_add_test(t, test_errors_name_the_chunk_and_offset);
    tcase_add_test(t, test_info_reads_the_layer_table_and_metadata_without_weights);
    suite_add_tcase(s, t);

    t = tcase_create("threads");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_four_threads_serve_one_loaded_model_through_clones);
    suite_add_tcase(s, t);
    return s;
}

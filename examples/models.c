/*
 * models.c -- the reference architectures, one function each.
 */
#include "models.h"

#include <string.h>

/* Add every layer in order; the model owns them all, even after a failure. */
static hlr_status add_layers(hlr_model *m, hlr_layer **layers, size_t n)
{
    hlr_status st = HLR_OK;
    for (size_t i = 0; i < n; i++)
        if (st == HLR_OK)
            st = hlr_model_add(m, layers[i]); /* a NULL layer (failed constructor) fails here */
        else
            hlr_layer_free(layers[i]);
    return st;
}

#define ADD(m, ...)                                                                                                \
    add_layers((m), (hlr_layer *[]){__VA_ARGS__}, sizeof((hlr_layer *[]){__VA_ARGS__}) / sizeof(hlr_layer *))

/* 784-256-ReLU-128-ReLU-10. */
static hlr_status mlp(hlr_model *m)
{
    return ADD(m, hlr_flatten(), hlr_dense(784, 256, 1), hlr_relu(), hlr_dense(256, 128, 1), hlr_relu(),
               hlr_dense(128, 10, 1));
}

/* conv(1->32, 3x3, pad 1)-ReLU-maxpool 2, conv(32->64, 3x3, pad 1)-ReLU-maxpool 2,
 * flatten (3136), dense 128-ReLU, dense 10. */
static hlr_status cnn(hlr_model *m)
{
    return ADD(m, hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
               hlr_maxpool2d(2, 2, 0), hlr_conv2d(32, 64, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
               hlr_maxpool2d(2, 2, 0), hlr_flatten(), hlr_dense(3136, 128, 1), hlr_relu(), hlr_dense(128, 10, 1));
}

/* Three conv-BN-ReLU-pool stages (28 -> 14 -> 7 -> 3), then dropout, a
 * batch-normalised dense layer and dropout again. */
static hlr_status cnn_bn(hlr_model *m)
{
    return ADD(m, hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
               hlr_batchnorm2d(32, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 2, 0),
               hlr_conv2d(32, 64, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
               hlr_batchnorm2d(64, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 2, 0),
               hlr_conv2d(64, 128, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
               hlr_batchnorm2d(128, 1e-5f, 0.1f), hlr_relu(), hlr_maxpool2d(2, 2, 0), hlr_flatten(), hlr_dropout(0.3f),
               hlr_dense(1152, 128, 0), hlr_batchnorm1d(128, 1e-5f, 0.1f), hlr_relu(), hlr_dropout(0.3f),
               hlr_dense(128, 10, 1));
}

/* Each image as a sequence of its 28 rows of 28 pixels: one recurrent layer
 * of 128, its state after the last row, dense 10. */
static hlr_status lstm(hlr_model *m)
{
    return ADD(m, hlr_image_rows(), hlr_lstm(28, 128, 1, 0, 0.0f), hlr_dense(128, 10, 1));
}

static hlr_status gru(hlr_model *m)
{
    return ADD(m, hlr_image_rows(), hlr_gru(28, 128, 1, 0, 0.0f), hlr_dense(128, 10, 1));
}

/* The seed's model: the CNN's two conv-ReLU-pool stages, the 7 rows of the
 * 64x7x7 map as a sequence of 448 features, an LSTM of 128 returning every
 * step, single-head self-attention with Q/K/V projections (with bias) and no
 * output projection, the mean over the steps, dense 10. */
static hlr_status hybrid(hlr_model *m)
{
    return ADD(m, hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
               hlr_maxpool2d(2, 2, 0), hlr_conv2d(32, 64, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
               hlr_maxpool2d(2, 2, 0), hlr_feature_map_rows(), hlr_lstm(448, 128, 1, HLR_RETURN_SEQUENCES, 0.0f),
               hlr_multihead_attention(128, 1, HLR_ATTN_NO_OUT_PROJ, 0.0f), hlr_seq_mean(), hlr_dense(128, 10, 1));
}

/* A small vision transformer: 4x4 patches (49 steps of 64 features), a
 * class token, learned positions, three pre-norm encoder blocks (4 heads,
 * feed-forward 128, GELU), a final layer norm, the class token's output,
 * dense 10. */
static hlr_status transformer(hlr_model *m)
{
    const int dim = 64, heads = 4, ff = 128;
    return ADD(m, hlr_patch_embedding(1, 4, dim), hlr_class_token(dim),
               hlr_positional_encoding(50, dim, HLR_POS_LEARNED), hlr_transformer_encoder(dim, heads, ff, 0, 0.0f), hlr_transformer_encoder(dim, heads, ff, 0, 0.0f),
               hlr_transformer_encoder(dim, heads, ff, 0, 0.0f), hlr_layernorm(dim, 1e-5f), hlr_seq_first(),
               hlr_dense(dim, 10, 1));
}

static const struct {
    const char *name;
    hlr_status (*add)(hlr_model *m);
} models[] = {
    {"mlp", mlp},
    {"cnn", cnn},
    {"cnn-bn", cnn_bn},
    {"lstm", lstm},
    {"gru", gru},
    {"hybrid", hybrid},
    {"transformer", transformer},
};

example_recipe example_model_recipe(const char *name)
{
    if (strcmp(name, "cnn-bn") == 0)
        return (example_recipe){.optimizer = "adam", .lr = 1e-3f, .cosine = 1, .augment = 2};
    /* Transformers want a warm-up; AdamW's decoupled decay as in ViT training. */
    if (strcmp(name, "transformer") == 0)
        return (example_recipe){.optimizer = "adamw", .lr = 1e-3f, .cosine = 1, .warmup_epochs = 0.5, .augment = 2};
    return (example_recipe){.optimizer = "adam", .lr = 1e-3f};
}

int example_model_wants_augmentation(const char *name) { return example_model_recipe(name).augment > 0; }

hlr_model *example_model(const char *name, uint64_t seed)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        if (strcmp(models[i].name, name) != 0)
            continue;
        hlr_model *m = hlr_model_new(seed);
        if (!m)
            return NULL;
        if (models[i].add(m) != HLR_OK || hlr_model_build(m, 3, (int64_t[]){1, 28, 28}) != HLR_OK) {
            hlr_model_free(m);
            return NULL;
        }
        return m;
    }
    return NULL;
}

int example_model_exists(const char *name)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (strcmp(models[i].name, name) == 0)
            return 1;
    return 0;
}

/* A 3 x 3 convolution (no bias when batch norm follows), its batch norm, a ReLU. */
static hlr_status conv_block(hlr_model *m, int in, int out, int bn)
{
    if (bn)
        return ADD(m, hlr_conv2d(in, out, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1}),
                   hlr_batchnorm2d(out, 1e-5f, 0.1f), hlr_relu());
    return ADD(m, hlr_conv2d(in, out, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu());
}

hlr_model *example_crnn(uint64_t seed, int height, int width, int classes, int channels, int convs, int pool_w, int bn,
                        int hidden, int layers, float dropout)
{
    hlr_model *m = hlr_model_new(seed);
    if (!m)
        return NULL;
    const int c = channels, rows = height / 4;
    hlr_status st = conv_block(m, 1, c, bn);                                       /* (c, H, W) */
    if (st == HLR_OK)
        st = ADD(m, hlr_maxpool2d(2, 2, 0));                                       /* (c, H/2, W/2) */
    if (st == HLR_OK)
        st = conv_block(m, c, 2 * c, bn);                                          /* (2c, H/2, W/2) */
    if (st == HLR_OK)
        st = ADD(m, pool_w == 2 ? hlr_maxpool2d(2, 2, 0)                            /* (2c, H/4, W/4) */
                                : hlr_maxpool2d_hw(2, pool_w, 2, pool_w, 0, 0));  /* (2c, H/4, W/2) */
    if (st == HLR_OK && convs >= 3)
        st = conv_block(m, 2 * c, 2 * c, bn);                                      /* a wider view per column */
    if (st == HLR_OK && convs >= 4)
        st = conv_block(m, 2 * c, 2 * c, bn);                                      /* wider again */
    if (st == HLR_OK)
        st = ADD(m, hlr_feature_map_columns());                      /* (W/4 or W/2 steps, 2c H/4) */
    if (st == HLR_OK && dropout > 0)
        st = ADD(m, hlr_dropout(dropout));                                         /* the LSTM's inputs, in training */
    if (st == HLR_OK)
        st = ADD(
            m,
            hlr_lstm(2 * c * rows, hidden, layers, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, dropout), /* (W/4, 2h) */
            hlr_dense(2 * hidden, classes, 1)); /* (W/4, classes) */
    if (st == HLR_OK)
        st = hlr_model_set_loss(m, HLR_LOSS_CTC, 0.0f);
    if (st == HLR_OK)
        st = hlr_model_build(m, 3, (int64_t[]){1, height, width});
    if (st != HLR_OK) {
        hlr_model_free(m);
        return NULL;
    }
    return m;
}

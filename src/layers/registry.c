/*
 * registry.c -- every layer type the library knows, by name.  A new layer
 * adds its line to each of the two lists below.
 */
#include "../internal.h"

#include <string.h>

extern const hlr_layer_ops hlr__dense_ops;
extern const hlr_layer_ops hlr__relu_ops;
extern const hlr_layer_ops hlr__leaky_relu_ops;
extern const hlr_layer_ops hlr__sigmoid_ops;
extern const hlr_layer_ops hlr__tanh_ops;
extern const hlr_layer_ops hlr__gelu_ops;
extern const hlr_layer_ops hlr__softmax_ops;
extern const hlr_layer_ops hlr__dropout_ops;
extern const hlr_layer_ops hlr__flatten_ops;
extern const hlr_layer_ops hlr__conv2d_ops;
extern const hlr_layer_ops hlr__maxpool2d_ops;
extern const hlr_layer_ops hlr__avgpool2d_ops;
extern const hlr_layer_ops hlr__global_avgpool2d_ops;
extern const hlr_layer_ops hlr__batchnorm2d_ops;
extern const hlr_layer_ops hlr__batchnorm1d_ops;
extern const hlr_layer_ops hlr__lstm_ops;
extern const hlr_layer_ops hlr__gru_ops;
extern const hlr_layer_ops hlr__embedding_ops;
extern const hlr_layer_ops hlr__image_rows_ops;
extern const hlr_layer_ops hlr__feature_map_rows_ops;
extern const hlr_layer_ops hlr__feature_map_columns_ops;
extern const hlr_layer_ops hlr__seq_last_ops;
extern const hlr_layer_ops hlr__seq_mean_ops;
extern const hlr_layer_ops hlr__seq_max_ops;
extern const hlr_layer_ops hlr__multihead_attention_ops;
extern const hlr_layer_ops hlr__layernorm_ops;
extern const hlr_layer_ops hlr__positional_encoding_ops;
extern const hlr_layer_ops hlr__patch_embedding_ops;
extern const hlr_layer_ops hlr__class_token_ops;
extern const hlr_layer_ops hlr__seq_first_ops;
extern const hlr_layer_ops hlr__transformer_encoder_ops;

static const hlr_layer_ops *const registry[] = {
    &hlr__dense_ops,
    &hlr__relu_ops,
    &hlr__leaky_relu_ops,
    &hlr__sigmoid_ops,
    &hlr__tanh_ops,
    &hlr__gelu_ops,
    &hlr__softmax_ops,
    &hlr__dropout_ops,
    &hlr__flatten_ops,
    &hlr__conv2d_ops,
    &hlr__maxpool2d_ops,
    &hlr__avgpool2d_ops,
    &hlr__global_avgpool2d_ops,
    &hlr__batchnorm2d_ops,
    &hlr__batchnorm1d_ops,
    &hlr__lstm_ops,
    &hlr__gru_ops,
    &hlr__embedding_ops,
    &hlr__image_rows_ops,
    &hlr__feature_map_rows_ops,
    &hlr__feature_map_columns_ops,
    &hlr__seq_last_ops,
    &hlr__seq_mean_ops,
    &hlr__seq_max_ops,
    &hlr__multihead_attention_ops,
    &hlr__layernorm_ops,
    &hlr__positional_encoding_ops,
    &hlr__patch_embedding_ops,
    &hlr__class_token_ops,
    &hlr__seq_first_ops,
    &hlr__transformer_encoder_ops,
};

const hlr_layer_ops *hlr__layer_ops_find(const char *type)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->type, type) == 0)
            return registry[i];
    return NULL;
}

const hlr_layer_ops *hlr__layer_ops_at(size_t i)
{
    return i < sizeof registry / sizeof registry[0] ? registry[i] : NULL;
}

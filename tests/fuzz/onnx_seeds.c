/*
 * onnx_seeds.c -- write a starting corpus for fuzz_onnx.c into a folder: libhlr's ONNX exports of a few
 * small models (dense; convolution, batch norm and pooling; a bidirectional GRU over feature-map
 * columns; attention and an encoder block; token ids with lengths, read by a max over the steps and
 * at each sequence's last step).
 */
#include "internal.h"

#include <stdio.h>

static hlr_model *model(int kind)
{
    hlr_model *m = hlr_model_new(1);
    hlr_status st = HLR_OK;
    switch (kind) {
    case 0:
        st = hlr_model_add(m, hlr_flatten()) || hlr_model_add(m, hlr_dense(12, 8, 1)) || hlr_model_add(m, hlr_relu()) ||
             hlr_model_add(m, hlr_dense(8, 3, 1)) || hlr_model_build(m, 3, (int64_t[]){1, 3, 4});
        break;
    case 1:
        st = hlr_model_add(m, hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1, .no_bias = 1})) ||
             hlr_model_add(m, hlr_batchnorm2d(4, 1e-5f, 0.1f)) || hlr_model_add(m, hlr_relu()) ||
             hlr_model_add(m, hlr_maxpool2d(2, 2, 0)) || hlr_model_add(m, hlr_feature_map_columns()) ||
             hlr_model_add(m, hlr_gru(8, 3, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.0f)) ||
             hlr_model_add(m, hlr_dense(6, 3, 1)) || hlr_model_build(m, 3, (int64_t[]){1, 4, 6});
        break;
    case 2:
        st = hlr_model_add(m, hlr_image_rows()) || hlr_model_add(m, hlr_positional_encoding(8, 4, HLR_POS_LEARNED)) ||
             hlr_model_add(m, hlr_transformer_encoder(4, 2, 8, HLR_ATTN_CAUSAL, 0.0f)) ||
             hlr_model_add(m, hlr_multihead_attention(4, 2, 0, 0.0f)) || hlr_model_add(m, hlr_seq_last()) ||
             hlr_model_add(m, hlr_dense(4, 3, 1)) || hlr_model_build(m, 3, (int64_t[]){1, 5, 4});
        break;
    case 3:
        st = hlr_model_add(m, hlr_embedding(12, 4, 0)) ||
             hlr_model_add(m, hlr_lstm(4, 3, 1, HLR_BIDIRECTIONAL | HLR_RETURN_SEQUENCES, 0.0f)) ||
             hlr_model_add(m, hlr_seq_max()) || hlr_model_add(m, hlr_dense(6, 2, 1)) ||
             hlr_model_build(m, 1, (int64_t[]){5});
        break;
    default: /* each sequence's last step after token ids */
        st = hlr_model_add(m, hlr_embedding(12, 4, 0)) ||
             hlr_model_add(m, hlr_gru(4, 3, 1, HLR_RETURN_SEQUENCES, 0.0f)) || hlr_model_add(m, hlr_seq_last()) ||
             hlr_model_add(m, hlr_dense(3, 2, 1)) || hlr_model_build(m, 1, (int64_t[]){5});
        break;
    }
    if (st != HLR_OK) {
        hlr_model_free(m);
        return NULL;
    }
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: onnx-seeds FOLDER\n");
        return 2;
    }
    for (int kind = 0; kind < 5; kind++) {
        hlr_model *m = model(kind);
        char path[4096];
        snprintf(path, sizeof path, "%s/export-%d.onnx", argv[1], kind);
        if (!m || hlr_model_export_onnx(m, path, 0) != HLR_OK) {
            fprintf(stderr, "onnx-seeds: model %d: %s\n", kind, hlr_last_error());
            hlr_model_free(m);
            return 1;
        }
        hlr_model_free(m);
    }
    return 0;
}

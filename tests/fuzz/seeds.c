/*
 * seeds.c -- write a starting corpus for fuzz_load.c into a folder: a few
 * small models (dense, convolutional and batch-normalised, recurrent) with and without
 * optimizer state and metadata, each as a whole file (first byte 0) and as
 * a bare payload (first byte 1 | flags << 1).
 */
#include "model.h"
#include "modelfile.h"

#include <stdio.h>
#include <string.h>

static int write_seed(const char *dir, const char *name, unsigned char first, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputc(first, f);
    fwrite(data, 1, len, f);
    return fclose(f);
}

static hlr_model *model(int kind)
{
    hlr_model *m = hlr_model_new(1);
    if (kind == 0) {
        hlr_model_add(m, hlr_flatten());
        hlr_model_add(m, hlr_dense(12, 8, 1));
        hlr_model_add(m, hlr_relu());
        hlr_model_add(m, hlr_dropout(0.1f));
        hlr_model_add(m, hlr_dense(8, 3, 0));
        hlr_model_build(m, 2, (int64_t[]){3, 4});
    } else if (kind == 2) {
        hlr_model_add(m, hlr_embedding(10, 4, 0));
        hlr_model_add(m, hlr_lstm(4, 3, 1, HLR_RETURN_SEQUENCES, 0.0f));
        hlr_model_add(m, hlr_seq_mean());
        hlr_model_add(m, hlr_dense(3, 3, 1));
        hlr_model_build(m, 1, (int64_t[]){5});
    } else {
        hlr_model_add(m, hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 3, .padding = 1}));
        hlr_model_add(m, hlr_batchnorm2d(2, 1e-5f, 0.1f));
        hlr_model_add(m, hlr_maxpool2d(2, 0, 0));
        hlr_model_add(m, hlr_flatten());
        hlr_model_add(m, hlr_batchnorm1d(8, 1e-5f, 0.1f));
        hlr_model_add(m, hlr_gelu());
        hlr_model_add(m, hlr_dense(8, 3, 1));
        hlr_model_build(m, 3, (int64_t[]){1, 4, 4});
    }
    return m;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hlr-fuzz-seeds DIR\n");
        return 2;
    }
    int n = 0;
    for (int kind = 0; kind < 3; kind++)
        for (int with_state = 0; with_state < 2; with_state++) {
            hlr_model *m = model(kind);
            hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
            if (with_state) {
                /* one step, so that the optimizer has moments */
                const hlr_shape *in = &m->in;
                int64_t xs[HLR_MAX_DIMS] = {2};
                memcpy(xs + 1, in->d, (size_t)in->ndim * sizeof *xs);
                hlr_tensor *x = hlr_tensor_new(hlr__model_in_dtype(m), in->ndim + 1, xs);
                hlr_tensor *y = hlr_tensor_from(HLR_I32, 1, (int64_t[]){2}, (int32_t[]){0, 2});
                hlr_model_train_batch(m, o, x, y, NULL);
                hlr_tensor_free(x);
                hlr_tensor_free(y);
                hlr_metadata *md = hlr_model_metadata(m);
                hlr_metadata_set_class_names(md, 3, (const char *[]){"a", "b", "c"});
                hlr_metadata_set_dataset(md, "seed");
                hlr_metadata_set(md, "key", "value");
            }
            hlr_save_options so;
            hlr_save_options_default(&so);
            so.optimizer = with_state ? o : NULL;
            so.training_state = with_state;
            void *file;
            size_t len;
            hlr_bytes payload;
            uint32_t flags;
            char name[64];
            if (hlr_model_save_buffer(m, &so, &file, &len) == HLR_OK &&
                hlr__file_payload(m, &so, &payload, &flags) == HLR_OK) {
                snprintf(name, sizeof name, "file-%d-%d", kind, with_state);
                n += write_seed(argv[1], name, 0, file, len) == 0;
                snprintf(name, sizeof name, "payload-%d-%d", kind, with_state);
                n += write_seed(argv[1], name, (unsigned char)(1 | flags << 1), payload.p, payload.len) == 0;
                hlr__bytes_free(&payload);
                hlr_buffer_free(file);
            }
            hlr_optimizer_free(o);
            hlr_model_free(m);
        }
    printf("%d seeds in %s\n", n, argv[1]);
    return n == 12 ? 0 : 1;
}

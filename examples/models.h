/*
 * models.h -- the reference architectures the example programs and the
 * benchmark share, by name.
 */
#ifndef HLR_EXAMPLES_MODELS_H
#define HLR_EXAMPLES_MODELS_H

#include <hlr/hlr.h>

/* The names example_model() knows, for usage messages. */
#define EXAMPLE_MODELS "mlp, cnn, cnn-bn, lstm, gru, hybrid, transformer"

/* Nonzero when example_model() knows the name. */
int example_model_exists(const char *name);

/*
 * A new, built model for (1, 28, 28) images and 10 classes, its weights
 * drawn from seed.  NULL for an unknown name, or with hlr_last_error()
 * saying why the library refused it.
 */
hlr_model *example_model(const char *name, uint64_t seed);

/* Nonzero for models that want shifted training images and a cosine
 * schedule (the batch-normalised CNN, the transformer). */
int example_model_wants_augmentation(const char *name);

/*
 * The CRNN of hlr-read and the benchmark: 3 x 3 convolutions of c, 2c (and
 * with convs 3 another 2c) channels, each followed by a batch norm when bn
 * (without a bias then) and a ReLU, a 2 x 2 max pooling after the first
 * two (2 x `pool_w` for the second: pool_w 1 keeps its width, a step per 2
 * pixel columns instead of 4, for narrow characters); the feature map's
 * columns as steps (one per 2 pool_w pixel columns); a
 * bidirectional LSTM of `hidden` in `layers` stacked layers (dropout on its
 * inputs and between its layers in training); dense to `classes` (the blank
 * 0 and the labels).  Built for (1, height, width) images, with the CTC loss.
 * NULL with hlr_last_error() saying why.
 */
hlr_model *example_crnn(uint64_t seed, int height, int width, int classes, int channels, int convs, int pool_w, int bn,
                        int hidden, int layers, float dropout);

/* How hlr-mnist trains a model unless told otherwise. */
typedef struct example_recipe {
    const char *optimizer; /* "adam" or "adamw" */
    float lr;              /* peak learning rate */
    int cosine;            /* cosine decay to 0 over the training */
    double warmup_epochs;  /* linear warm-up from lr/100 over this many epochs, per batch (0: none) */
    int augment;           /* random shifts of up to this many pixels (0: none) */
} example_recipe;
example_recipe example_model_recipe(const char *name);

#endif

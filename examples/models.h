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

/*
 * models.h -- the reference architectures the example programs and the
 * benchmark share, by name.
 */
#ifndef HLR_EXAMPLES_MODELS_H
#define HLR_EXAMPLES_MODELS_H

#include <hlr/hlr.h>

/* The names example_model() knows, for usage messages. */
#define EXAMPLE_MODELS "mlp, cnn, cnn-bn, lstm, gru, hybrid"

/* Nonzero when example_model() knows the name. */
int example_model_exists(const char *name);

/*
 * A new, built model for (1, 28, 28) images and 10 classes, its weights
 * drawn from seed.  NULL for an unknown name, or with hlr_last_error()
 * saying why the library refused it.
 */
hlr_model *example_model(const char *name, uint64_t seed);

/* Nonzero for models that want shifted training images and a cosine
 * schedule (the batch-normalised CNN). */
int example_model_wants_augmentation(const char *name);

#endif

/*
 * attention.h -- `hlr-mnist attention`: where a saved model looks
 * (examples/attention.c).
 */
#ifndef HLR_EXAMPLE_ATTENTION_H
#define HLR_EXAMPLE_ATTENTION_H

#include <hlr/hlr.h>

/* What to show. */
typedef struct attention_request {
    const char *path; /* the model's file, for the messages */
    long index;       /* the test image */
    const char *out;  /* the picture: .ppm, .png or .pgm (NULL: attention-INDEX.ppm) */
    long layer, head; /* -1: the last attention layer, the mean of the heads */
    int fashion;      /* the images are Fashion-MNIST's: print the class names */
} attention_request;

/* Test image r->index of te beside the attention weights m gives it: prints the attention matrix
 * and what each step receives, and writes the picture.  0, or 1 after a line on stderr. */
int attention_picture(hlr_model *m, const hlr_dataset *te, const attention_request *r);

#endif

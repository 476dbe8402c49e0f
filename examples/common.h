/*
 * common.h -- helpers the example programs share: finding and loading the
 * MNIST idx files, and printing a confusion matrix.
 */
#ifndef HLR_EXAMPLES_COMMON_H
#define HLR_EXAMPLES_COMMON_H

#include <hlr/hlr.h>
#include <stdio.h>

/* The data folder: --data DIR if given, else $HLR_DATA_DIR, else data/mnist. */
const char *data_dir(const char *from_option);

/* Load `<dir>/<prefix>-images-idx3-ubyte[.gz]` and its labels ("train" or "t10k").
 * On failure prints one line, starting with prog, and returns NULL. */
hlr_dataset *load_mnist_part(const char *prog, const char *dir, const char *prefix);

/* Print a classes x classes confusion matrix (rows: true class). */
void print_confusion(FILE *out, const int64_t *confusion, int classes, const char *const *names);

#endif

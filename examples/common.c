/*
 * common.c -- see common.h.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *data_dir(const char *from_option)
{
    if (from_option)
        return from_option;
    const char *env = getenv("HLR_DATA_DIR");
    return env && *env ? env : "data/mnist";
}

/* Prefer the gzipped file, fall back to the raw one. */
static void find_file(char *out, size_t cap, const char *dir, const char *prefix, const char *kind)
{
    snprintf(out, cap, "%s/%s-%s.gz", dir, prefix, kind);
    if (access(out, R_OK) == 0)
        return;
    snprintf(out, cap, "%s/%s-%s", dir, prefix, kind);
}

hlr_dataset *load_mnist_part(const char *prog, const char *dir, const char *prefix)
{
    char images[4096], labels[4096];
    find_file(images, sizeof images, dir, prefix, "images-idx3-ubyte");
    find_file(labels, sizeof labels, dir, prefix, "labels-idx1-ubyte");
    hlr_dataset *d = hlr_dataset_load_idx(images, labels);
    if (!d)
        fprintf(stderr, "%s: cannot load the %s data: %s (run `make data`, or pass --data DIR naming a folder of idx "
                "files)\n", prog, prefix, hlr_last_error());
    return d;
}

void print_confusion(FILE *out, const int64_t *confusion, int classes, const char *const *names)
{
    fprintf(out, "confusion matrix (rows: true class, columns: predicted)\n%12s", "");
    for (int j = 0; j < classes; j++)
        fprintf(out, " %6d", j);
    fprintf(out, "\n");
    for (int i = 0; i < classes; i++) {
        if (names)
            fprintf(out, "%9.9s %2d", names[i], i);
        else
            fprintf(out, "%12d", i);
        for (int j = 0; j < classes; j++)
            fprintf(out, " %6lld", (long long)confusion[i * classes + j]);
        fprintf(out, "\n");
    }
}

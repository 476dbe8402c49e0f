/*
 * hlr-inspect -- describe a model file without loading its weights:
 * format and writer versions, sizes, checksums, the layer table, optimizer
 * and training state, metadata and training history.
 *
 *   hlr-inspect [--chunks] FILE...
 *
 * Exit status 0 when every file was read, 1 otherwise.
 */
#include "common.h"
#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-inspect [--chunks] FILE...\n"
               "  --chunks  also list the payload's chunks (tag, offset, length), for reading a hex dump\n");
}

static const char *shape_text(int ndim, const int64_t *d, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, ")");
    return buf;
}

static int inspect(const char *path, int chunks)
{
    hlr_model_info *in = hlr_model_info_load(path);
    if (!in) {
        fprintf(stderr, "hlr-inspect: %s\n", hlr_last_error());
        return 1;
    }
    hlr_file_summary s;
    hlr_model_info_summary(in, &s, sizeof s);
    char buf[256];
    printf("file        %s (%llu bytes)\n", path, (unsigned long long)s.file_size);
    printf("format      %d.%d, written by libhlr %s (this is libhlr %s, reading format %d.x)\n", s.format_major,
           s.format_minor, s.writer_version[0] ? s.writer_version : "?", hlr_version(), HLR_FORMAT_MAJOR);
    printf("payload     %llu bytes compressed, %llu uncompressed (%.1f%%)\n", (unsigned long long)s.compressed_size,
           (unsigned long long)s.uncompressed_size,
           s.uncompressed_size ? 100.0 * (double)s.compressed_size / (double)s.uncompressed_size : 0.0);
    printf("checksum    CRC-32 %08x: %s\n", (unsigned)s.payload_crc,
           s.crc_ok ? "ok" : "MISMATCH (the payload is damaged; hlr_model_load refuses this file)");
    printf("flags       %08x%s%s\n", (unsigned)s.flags, s.flags & 1 ? " optimizer-state" : "",
           s.flags & 2 ? " training-state" : "");
    printf("input       %s\n", shape_text(s.input_ndim, s.input_shape, buf, sizeof buf));
    printf("loss        %s", s.loss == HLR_LOSS_CROSS_ENTROPY ? "cross-entropy"
                             : s.loss == HLR_LOSS_MSE        ? "mean squared error"
                             : s.loss == HLR_LOSS_CTC ? "CTC (label sequences, blank 0)"
                                                      : "?");
    if (s.label_smoothing > 0)
        printf(", label smoothing %g", s.label_smoothing);
    if (s.temperature != 1.0)
        printf("\ntemperature %.4g (temperature scaling: predictions are softmax(logits / T))", s.temperature);
    printf("\n\n  #  %-17s %-34s %-16s %10s\n", "layer", "configuration", "output shape", "scalars");
    for (int i = 0; i < s.num_layers; i++) {
        const char *type, *config;
        int nd;
        int64_t shape[HLR_MAX_DIMS], scalars;
        hlr_model_info_layer(in, i, &type, &config, &nd, shape, &scalars);
        printf("%3d  %-17s %-34s %-16s %10lld\n", i, type, config, shape_text(nd, shape, buf, sizeof buf),
               (long long)scalars);
    }
    printf("\nparameters  %lld trainable + %lld in buffers = %.1f KiB as float32; weights CRC-32 %08x\n",
           (long long)s.param_count, (long long)s.buffer_count,
           (double)(s.param_count + s.buffer_count) * 4.0 / 1024.0, (unsigned)s.weights_crc);
    if (s.has_optimizer)
        printf("optimizer   %s, base lr %g (next step %g), %lld steps, schedule position %lld\n", s.optimizer,
               s.base_lr, s.current_lr, (long long)s.optimizer_steps, (long long)s.schedule_position);
    else
        printf("optimizer   not saved (the file serves inference; training would start a new optimizer)\n");
    if (s.has_training_state)
        printf("training    %lld epochs, %lld batches; generator state saved\n", (long long)s.epochs_trained,
               (long long)s.batches_trained);
    else
        printf("training    state not saved\n");

    const hlr_metadata *md = hlr_model_info_metadata(in);
    if (*hlr_metadata_dataset(md))
        printf("data set    %s\n", hlr_metadata_dataset(md));
    if (hlr_metadata_num_classes(md)) {
        printf("classes     %d:", hlr_metadata_num_classes(md));
        for (int i = 0; i < hlr_metadata_num_classes(md); i++)
            printf(" %s", hlr_metadata_class_name(md, i));
        printf("\n");
    }
    for (int i = 0; i < hlr_metadata_count(md); i++) {
        const char *k = hlr_metadata_key(md, i);
        printf("%-11s %s = %s\n", i ? "" : "metadata", k, hlr_metadata_get(md, k));
    }
    int nh = hlr_metadata_history_length(md);
    if (nh) {
        printf("\nhistory     %5s %11s %10s %10s %9s %9s %8s\n", "epoch", "train loss", "train acc", "val loss",
               "val acc", "lr", "seconds");
        for (int i = 0; i < nh; i++) {
            hlr_epoch_stats e;
            hlr_metadata_history(md, i, &e);
            printf("            %5d %11.4f %9.2f%% ", e.epoch, e.train_loss, 100.0 * e.train_accuracy);
            if (!isnan(e.val_loss)) /* NaN: no validation part (0.0 in files before 2026-12-02) */
                printf("%10.4f %8.2f%% ", e.val_loss, 100.0 * e.val_accuracy);
            else
                printf("%10s %9s ", "-", "-");
            printf("%9.3g %8.2f\n", e.lr, e.seconds);
        }
    }
    if (chunks) {
        printf("\nchunks      %d (offsets within the inflated payload)\n", s.num_chunks);
        for (int i = 0; i < s.num_chunks; i++) {
            char tag[5];
            uint64_t off, len;
            hlr_model_info_chunk(in, i, tag, &off, &len);
            printf("            #%-4d %s at %10llu, %10llu bytes\n", i, tag, (unsigned long long)off,
                   (unsigned long long)len);
        }
    }
    hlr_model_info_free(in);
    return 0;
}

int main(int argc, char **argv)
{
    int chunks = 0, rc = 0, npos = 0;
    const opt_spec specs[] = {OPT_FLAG_("--chunks", &chunks)};
    const char **files = calloc((size_t)argc, sizeof *files);
    int parsed = files ? parse_options("hlr-inspect", argc, argv, 1, specs, 1, files, argc, &npos) : -1;
    if (parsed > 0)
        usage(stdout);
    else if (parsed == 0 && npos == 0)
        fprintf(stderr, "hlr-inspect: no model FILE given (see hlr-inspect --help)\n");
    if (parsed != 0 || npos == 0) {
        free(files);
        return parsed > 0 ? 0 : 2;
    }
    for (int i = 0; i < npos; i++) {
        if (i)
            printf("\n");
        rc |= inspect(files[i], chunks);
    }
    free(files);
    return rc;
}

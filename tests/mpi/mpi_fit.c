/*
 * mpi_fit.c -- one process of a data-parallel training through libhlr-mpi,
 * for tests/mpi/test_mpi.py: an MLP on generated "rings" (the same in every
 * process), trained with hlr_model_fit and hlr_fit_options.distributed, then
 * each process writes its parameters (raw float32) to OUT.RANK and its
 * epochs' training losses, one per line, to OUT.RANK.loss.
 *
 *   mpirun -np N mpi_fit OUT BATCH EPOCHS [DIE_RANK]
 *
 * Run alone it is one process of one.  DIE_RANK: that process exits (status
 * 3) in the middle of the second epoch, without a word to the others.
 */
#include <hlr/hlr.h>
#include <hlr/hlr_mpi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FEATURES 8

static int die_rank = -1, my_rank;

static int maybe_die(const hlr_batch_stats *s, void *user)
{
    (void)user;
    if (my_rank == die_rank && s->epoch == 2 && s->batch == 2)
        _exit(3);
    return 0;
}

int main(int argc, char **argv)
{
    hlr_distributed d;
    if (hlr_mpi_init(&argc, &argv, &d) != HLR_OK) {
        fprintf(stderr, "mpi_fit: MPI did not start\n");
        return 1;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: mpi_fit OUT BATCH EPOCHS [DIE_RANK]\n");
        return 2;
    }
    my_rank = d.rank;
    die_rank = argc > 4 ? atoi(argv[4]) : -1;
    hlr_set_num_threads(1);
    /* Rings: the class is which ring of radius 1..4 the point's first two coordinates lie near. */
    enum { N = 512 };
    static float x[N * FEATURES];
    static int32_t y[N];
    unsigned long long s = 12345;
    for (int i = 0; i < N; i++) {
        y[i] = i % 4;
        for (int f = 0; f < FEATURES; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i * FEATURES + f] = (float)((s >> 11) * 0x1.0p-53) - 0.5f;
        }
        double a = 6.283185307179586 * x[i * FEATURES];
        x[i * FEATURES] = (float)((1 + y[i]) * cos(a));
        x[i * FEATURES + 1] = (float)((1 + y[i]) * sin(a));
    }
    hlr_dataset *data = hlr_dataset_from(1, (int64_t[]){FEATURES}, N, x, y, 4);
    hlr_model *m = hlr_model_new(7 + (uint64_t)d.rank); /* seeds differ: rank 0's parameters are broadcast */
    hlr_model_add(m, hlr_dense(FEATURES, 32, 1));
    hlr_model_add(m, hlr_relu());
    hlr_model_add(m, hlr_dense(32, 4, 1));
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f);
    if (!data || hlr_model_build(m, 1, (int64_t[]){FEATURES}) != HLR_OK || !o) {
        fprintf(stderr, "mpi_fit: %s\n", hlr_last_error());
        return 1;
    }
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.batch_size = atoi(argv[2]);
    fo.epochs = atoi(argv[3]);
    fo.distributed = &d;
    fo.on_batch = maybe_die;
    if (hlr_model_fit(m, o, data, &fo) != HLR_OK) {
        fprintf(stderr, "mpi_fit: rank %d: %s\n", d.rank, hlr_last_error());
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", argv[1], d.rank);
    FILE *f = fopen(path, "wb");
    for (int i = 0; f && i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            hlr_tensor *t = hlr_layer_param(l, hlr_layer_param_name(l, p));
            fwrite(hlr_tensor_f32(t), sizeof(float), (size_t)hlr_tensor_numel(t), f);
        }
    }
    snprintf(path, sizeof path, "%s.%d.loss", argv[1], d.rank);
    FILE *g = fopen(path, "w");
    const hlr_metadata *md = hlr_model_metadata(m);
    for (int e = 0; g && e < hlr_metadata_history_length(md); e++) {
        hlr_epoch_stats st;
        if (hlr_metadata_history(md, e, &st) == HLR_OK)
            fprintf(g, "%.9g\n", st.train_loss);
    }
    int bad = !f || fclose(f) != 0 || !g || fclose(g) != 0;
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(data);
    hlr_mpi_finalize();
    if (bad) {
        fprintf(stderr, "mpi_fit: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

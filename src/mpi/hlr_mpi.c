/*
 * hlr_mpi.c -- libhlr-mpi: hlr_distributed's collectives over MPI_COMM_WORLD.
 * A separate library so that libhlr itself needs no MPI (see hlr_mpi.h).
 */
#include <hlr/hlr_mpi.h>

#include <mpi.h>

static int started;              /* hlr_mpi_init called MPI_Init_thread */
static int64_t stat_calls, stat_bytes;
static double stat_seconds;

/* counted: 1 for the gradients' float all-reduces, whose cost hlr_mpi_stats reports. */
static hlr_status reduce(void *data, int64_t count, MPI_Datatype type, int64_t size, int counted)
{
    double t0 = MPI_Wtime();
    /* MPI counts are int: reduce in chunks of at most 2^30 elements. */
    for (int64_t at = 0; at < count; at += (int64_t)1 << 30) {
        int64_t k = count - at < ((int64_t)1 << 30) ? count - at : ((int64_t)1 << 30);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)data + at * size, (int)k, type, MPI_SUM, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
            return HLR_EIO;
    }
    if (counted) {
        stat_calls++;
        stat_bytes += count * size;
        stat_seconds += MPI_Wtime() - t0;
    }
    return HLR_OK;
}

static hlr_status allreduce_f32(float *data, int64_t count, void *user)
{
    (void)user;
    return reduce(data, count, MPI_FLOAT, (int64_t)sizeof *data, 1);
}

static hlr_status allreduce_f64(double *data, int64_t count, void *user)
{
    (void)user;
    return reduce(data, count, MPI_DOUBLE, (int64_t)sizeof *data, 0);
}

static hlr_status broadcast(void *data, int64_t bytes, void *user)
{
    (void)user;
    for (int64_t at = 0; at < bytes; at += (int64_t)1 << 30) {
        int64_t k = bytes - at < ((int64_t)1 << 30) ? bytes - at : ((int64_t)1 << 30);
        if (MPI_Bcast((char *)data + at, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return HLR_EIO;
    }
    return HLR_OK;
}

hlr_status hlr_mpi_init(int *argc, char ***argv, hlr_distributed *d)
{
    if (!d)
        return HLR_EINVAL;
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return HLR_EIO;
        started = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS || MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS)
        return HLR_EIO;
    *d = (hlr_distributed){.rank = rank, .size = size, .allreduce_f32 = allreduce_f32,
                           .allreduce_f64 = allreduce_f64, .broadcast = broadcast, .user = NULL};
    return HLR_OK;
}

void hlr_mpi_stats(int64_t *calls, double *seconds, int64_t *bytes)
{
    if (calls)
        *calls = stat_calls;
    if (seconds)
        *seconds = stat_seconds;
    if (bytes)
        *bytes = stat_bytes;
}

void hlr_mpi_finalize(void)
{
    if (started) {
        MPI_Finalize();
        started = 0;
    }
}

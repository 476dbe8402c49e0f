/**
 * @file hlr_mpi.h
 * @brief libhlr-mpi: data-parallel training over MPI, the companion library
 * that gives hlr_fit_options::distributed its collective operations from
 * MPI_COMM_WORLD (Open MPI from Debian's libopenmpi-dev).  The core library
 * knows nothing of MPI; programs that want it link `-lhlr-mpi -lhlr` (built
 * by `make mpi`) and run under `mpirun`.
 *
 * @code
 *   hlr_distributed d;
 *   if (hlr_mpi_init(&argc, &argv, &d) != HLR_OK) { ... }
 *   fo.distributed = &d;               // every process: same options, same data
 *   hlr_model_fit(m, opt, train, &fo); // rank 0 alone writes checkpoints
 *   if (d.rank == 0) hlr_model_save(m, "model.hlr", NULL);
 *   hlr_mpi_finalize();
 * @endcode
 */
#ifndef HLR_HLR_MPI_H
#define HLR_HLR_MPI_H

#include <hlr/hlr.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Start MPI (MPI_Init_thread, MPI_THREAD_FUNNELED, unless the program
 * already has) and describe MPI_COMM_WORLD: this process's rank, the number
 * of processes, and collectives that call MPI_Allreduce (in place, MPI_SUM)
 * and MPI_Bcast (from rank 0) on it.  MPI errors are returned, not fatal:
 * a collective that fails gives HLR_EIO.  Run alone (no mpirun), the
 * program is one process of one.
 *
 * @param[in,out] argc  the program's argument count, as MPI_Init takes it.
 * @param[in,out] argv  the program's arguments, as MPI_Init takes them.
 * @param[out] d        receives the description; its `user` is unused.
 * @return HLR_OK, or HLR_EINVAL (d NULL) or HLR_EIO (MPI failed to start).
 * @errors HLR_EINVAL, HLR_EIO.
 * @ownership d is the caller's; the collectives need nothing freed.
 * @threadsafety call it once, from the main thread, before any other MPI
 *   use; the collectives are then called from that thread only (MPI's
 *   FUNNELED level), as hlr_model_fit() does.
 */
hlr_status hlr_mpi_init(int *argc, char ***argv, hlr_distributed *d);

/**
 * What the float all-reduces of this process (the gradients') have cost so
 * far; the small double ones (the epoch's figures, a stop flag per batch)
 * are not counted.
 *
 * @param[out] calls    the number of those all-reduce calls (may be NULL).
 * @param[out] seconds  their total wall time (may be NULL).
 * @param[out] bytes    the bytes they reduced in all (may be NULL).
 * @ownership nothing is retained.
 * @threadsafety reads counters that the collectives update: the same thread.
 */
void hlr_mpi_stats(int64_t *calls, double *seconds, int64_t *bytes);

/**
 * End MPI (MPI_Finalize) when hlr_mpi_init() started it; otherwise nothing.
 *
 * @threadsafety the thread that called hlr_mpi_init(), after the last
 *   collective.
 */
void hlr_mpi_finalize(void);

#ifdef __cplusplus
}
#endif

#endif /* HLR_HLR_MPI_H */

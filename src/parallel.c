/*
 * parallel.c -- libhlr's own threads: a small pool that runs a loop's
 * index range in contiguous parts, one per thread.
 *
 * OpenBLAS runs single-threaded inside these threads (core.c sets it so),
 * and hlrk_gemm splits large products into independent blocks of C; so the
 * library never runs more threads than hlr_set_num_threads() allows, and no
 * two thread pools compete for the cores.
 *
 * Every task writes disjoint outputs, each computed by one thread in one
 * fixed order, and the split depends only on the thread count: the same
 * thread count gives the same bits every run.  (Another thread count splits
 * products into blocks of other sizes, which OpenBLAS may round differently.)
 * One job at a time: a second application thread that calls in while the
 * pool is busy runs its loop on its own, serially.
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define MAX_WORKERS 63
/*
 * Polls (each with a CPU pause hint, some tens of nanoseconds) before a
 * thread sleeps on a condition variable.  A training step runs a dozen or so
 * jobs with short serial stretches between them; waking a sleeping thread
 * costs a system call and, in a virtual machine, an interrupt to the other
 * core (tens of microseconds: 20 % of the CPU time of a 2-thread mlp
 * training step went there when threads polled 4000 times without a pause
 * hint, a few microseconds).  So threads poll with the hint for about a
 * millisecond before they sleep: bench medians of 6 interleaved runs, mlp
 * training 81,785 -> 99,524 img/s, gru 9,583 -> 12,727.  They yield the core
 * every 64 polls: without that, two 2-thread trainings at once on 2 cores
 * fell to 6,300 img/s each (mlp), with it they run at 36,500 each, and a
 * quiet machine sees no difference.  HLR_SPIN (at build time) changes the
 * count.
 */
#ifndef HLR_SPIN
#define HLR_SPIN 30000
#endif
#define SPIN HLR_SPIN

/* One poll's wait: the pause hint, and every YIELD_EVERY-th poll a
 * sched_yield(), so that on a loaded machine (more runnable threads than
 * cores) the polling gives its core to whoever waits for it -- often the
 * very thread whose part it waits for. */
#define YIELD_EVERY 64
static inline void poll_wait(int spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (spins % YIELD_EVERY == YIELD_EVERY - 1)
        sched_yield();
}

static struct pool {
    pthread_mutex_t lock; /* guards the fields below and the condition variables */
    pthread_cond_t wake, done;
    pthread_mutex_t busy; /* held by the thread whose job is running */
    pthread_t thread[MAX_WORKERS];
    unsigned long start_gen[MAX_WORKERS]; /* the generation a worker was started in: jobs before it are not its */
    int workers; /* started */
    int target;  /* wanted (a forked child restarts its workers lazily) */
    int atfork;  /* the fork handler is registered */
    int stopping;
    /* the current job */
    hlr_task_fn fn;
    void *ctx;
    int64_t n;
    int parts;
    _Atomic unsigned long generation;
    _Atomic int remaining;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int inside_pool; /* nested parallel_for runs serially */

static void range_of(int64_t n, int parts, int k, int64_t *b, int64_t *e)
{
    *b = n * k / parts;
    *e = n * (k + 1) / parts;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1-based part index */
    unsigned long seen = pool.start_gen[id - 1]; /* set before the thread was created */
    inside_pool = 1;
    for (;;) {
        unsigned long g;
        int spins = 0;
        while ((g = atomic_load(&pool.generation)) == seen && spins < SPIN) {
            poll_wait(spins);
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((g = atomic_load(&pool.generation)) == seen && !pool.stopping)
                pthread_cond_wait(&pool.wake, &pool.lock);
            int stop = pool.stopping;
            pthread_mutex_unlock(&pool.lock);
            if (stop)
                return NULL;
        }
        seen = g;
        if (id < pool.parts) {
            int64_t b, e;
            range_of(pool.n, pool.parts, id, &b, &e);
            if (e > b)
                pool.fn(pool.ctx, b, e);
            if (atomic_fetch_sub(&pool.remaining, 1) == 1) {
                pthread_mutex_lock(&pool.lock);
                pthread_cond_signal(&pool.done);
                pthread_mutex_unlock(&pool.lock);
            }
        }
    }
}

/* A forked child has the pool's memory but not its threads: forget them,
 * reset the locks, and let the next job start new ones. */
static void after_fork_in_child(void)
{
    pool.target = pool.workers;
    pool.workers = 0;
    pool.stopping = 0;
    pthread_mutex_init(&pool.lock, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
}

/* Start or stop workers so that `threads` threads (the caller included) run jobs. */
void hlr__pool_resize(int threads)
{
    int want = threads - 1;
    want = want < 0 ? 0 : want > MAX_WORKERS ? MAX_WORKERS : want;
    pthread_mutex_lock(&pool.busy);
    if (!pool.atfork)
        pool.atfork = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    pool.target = want;
    if (want < pool.workers) {
        pthread_mutex_lock(&pool.lock);
        pool.stopping = 1;
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
        for (int i = 0; i < pool.workers; i++)
            pthread_join(pool.thread[i], NULL);
        pool.workers = 0;
        pool.stopping = 0;
    }
    while (pool.workers < want) {
        pool.start_gen[pool.workers] = atomic_load(&pool.generation); /* no job runs: we hold busy */
        if (pthread_create(&pool.thread[pool.workers], NULL, worker, (void *)(intptr_t)(pool.workers + 1)) != 0)
            break; /* fewer threads: still correct, only slower */
        pool.workers++;
    }
    pthread_mutex_unlock(&pool.busy);
}

int hlr__pool_threads(void) { return pool.workers + 1; }

void hlr__parallel_for(int64_t n, int64_t grain, hlr_task_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (pool.workers < pool.target && !inside_pool)
        hlr__pool_resize(pool.target + 1);
    int parts = pool.workers + 1;
    if (grain < 1)
        grain = 1;
    if ((int64_t)parts > n / grain)
        parts = (int)(n / grain);
    if (parts < 2 || inside_pool || pthread_mutex_trylock(&pool.busy) != 0) {
        fn(ctx, 0, n);
        return;
    }
    parts = parts > pool.workers + 1 ? pool.workers + 1 : parts;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = parts;
    atomic_store(&pool.remaining, parts - 1);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1); /* publishes the job */
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    int64_t b, e;
    range_of(n, parts, 0, &b, &e);
    inside_pool = 1;
    fn(ctx, b, e);
    inside_pool = 0;
    int spins = 0;
    while (atomic_load(&pool.remaining) > 0 && spins < SPIN) {
        poll_wait(spins);
        spins++;
    }
    if (atomic_load(&pool.remaining) > 0) {
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.remaining) > 0)
            pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.busy);
}

/* Join the workers when the library is unloaded, so leak checkers see no thread left. */
__attribute__((destructor)) static void pool_shutdown(void) { hlr__pool_resize(1); }

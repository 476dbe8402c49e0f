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
 * core (tens of microseconds).  So threads poll with the hint for about a
 * millisecond before they sleep, and yield the core every 64 polls so that
 * two processes on a loaded machine do not starve each other (the
 * measurements behind both: docs/design.md, "Threads and determinism").
 * HLR_SPIN (at build time) changes the count.
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

/*
 * How a job reaches the workers, and why no worker can touch a job that is
 * not its own (the memory-ordering argument):
 *
 * - Only the thread that holds `busy` writes a job: fn, ctx and n (plain
 *   fields), then `remaining`, then the word `job` = (generation << 8) |
 *   parts with a release store.  A worker reads `job` with an acquire load,
 *   so once it sees a generation it also sees that job's fields.
 * - The part count travels in the same word as the generation, so a worker
 *   learns from one atomic load both which job is current and whether it has
 *   a part in it.  A worker whose id is not below the job's part count takes
 *   no part and reads none of the plain fields: the caller does not wait for
 *   it, and may already be writing the next job's fields.
 * - A worker with a part in a job decrements `remaining` (acq_rel) only after
 *   its part has run, and the caller writes no field of a later job before it
 *   has seen `remaining` reach 0 (acquire).  So while that worker reads fn,
 *   ctx and n they are the job's whose word it loaded, and everything the
 *   part wrote is visible to the caller when hlr__parallel_for returns.
 * - A worker that loads a word sees the newest job or a newer one than it
 *   last ran; a job it has a part in cannot be overtaken, since the caller
 *   waits for that part.  Generations only grow (56 bits), so `seen` never
 *   matches a later job by accident.
 *
 * Before this scheme the generation and the part count were separate: a
 * worker that sat out one job could read the next job's part count under
 * the old generation, run a part of the next job, then run it again on
 * seeing the new generation; the extra decrement let the caller return
 * while the worker still used its (dead) stack context (issue 23).
 */
#define JOB_PARTS_BITS 8
#define JOB_PARTS(word) ((int)((word) & ((1u << JOB_PARTS_BITS) - 1)))
_Static_assert(MAX_WORKERS + 1 < (1 << JOB_PARTS_BITS), "a job's part count must fit its bits");

static struct pool {
    pthread_mutex_t lock; /* guards `stopping` and the condition variables */
    pthread_cond_t wake, done;
    pthread_mutex_t busy; /* held by the thread whose job is running, and by resizes */
    pthread_t thread[MAX_WORKERS];
    uint64_t start_job[MAX_WORKERS]; /* the job word when a worker started: jobs up to it are not its */
    _Atomic int workers;             /* started (written with busy held) */
    _Atomic int target;              /* wanted (a forked child restarts its workers lazily) */
    int atfork;                      /* the fork handler is registered */
    int stopping;
    /* the current job: written by the holder of busy before `job` is published */
    hlr_task_fn fn;
    void *ctx;
    int64_t n;
    _Atomic uint64_t job; /* (generation << JOB_PARTS_BITS) | parts */
    _Atomic int remaining; /* parts not yet done, the caller's own excluded */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int inside_pool; /* nested parallel_for runs serially */
/* The running job's part on this thread and its part count (hlr__parallel_team); 0 and 1 when serial. */
static _Thread_local int job_part, job_parts = 1;

static void range_of(int64_t n, int parts, int k, int64_t *b, int64_t *e)
{
    *b = n * k / parts;
    *e = n * (k + 1) / parts;
}

static inline uint64_t load_job(void) { return atomic_load_explicit(&pool.job, memory_order_acquire); }

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;             /* 1-based part index */
    uint64_t seen = pool.start_job[id - 1]; /* set before the thread was created */
    inside_pool = 1;
    for (;;) {
        uint64_t j;
        int spins = 0;
        while ((j = load_job()) == seen && spins < SPIN) {
            poll_wait(spins);
            spins++;
        }
        if (j == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((j = load_job()) == seen && !pool.stopping)
                pthread_cond_wait(&pool.wake, &pool.lock);
            int stop = pool.stopping;
            pthread_mutex_unlock(&pool.lock);
            if (stop)
                return NULL;
        }
        seen = j;
        int parts = JOB_PARTS(j);
        if (id >= parts)
            continue; /* not a part of this job: read nothing of it */
        int64_t b, e;
        range_of(pool.n, parts, id, &b, &e);
        job_part = id;
        job_parts = parts;
        if (e > b)
            pool.fn(pool.ctx, b, e);
        if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

/* A forked child has the pool's memory but not its threads: forget them,
 * reset the locks, and let the next job start new ones. */
static void after_fork_in_child(void)
{
    atomic_store_explicit(&pool.target, atomic_load_explicit(&pool.workers, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&pool.workers, 0, memory_order_relaxed);
    pool.stopping = 0;
    pthread_mutex_init(&pool.lock, NULL);
    pthread_mutex_init(&pool.busy, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
}

/* With busy held: stop every worker when there are more than `want`, then
 * start workers up to `want`. */
static void resize_locked(int want)
{
    int have = atomic_load_explicit(&pool.workers, memory_order_relaxed);
    if (want < have) {
        pthread_mutex_lock(&pool.lock);
        pool.stopping = 1;
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
        for (int i = 0; i < have; i++)
            pthread_join(pool.thread[i], NULL);
        have = 0;
        pool.stopping = 0;
    }
    while (have < want) {
        pool.start_job[have] = atomic_load_explicit(&pool.job, memory_order_relaxed); /* only busy's holder writes it */
        if (pthread_create(&pool.thread[have], NULL, worker, (void *)(intptr_t)(have + 1)) != 0)
            break; /* fewer threads: still correct, only slower */
        have++;
    }
    atomic_store_explicit(&pool.workers, have, memory_order_relaxed);
}

/* Start or stop workers so that `threads` threads (the caller included) run jobs. */
void hlr__pool_resize(int threads)
{
    int want = threads - 1;
    want = want < 0 ? 0 : want > MAX_WORKERS ? MAX_WORKERS : want;
    pthread_mutex_lock(&pool.busy);
    if (!pool.atfork)
        pool.atfork = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    atomic_store_explicit(&pool.target, want, memory_order_relaxed);
    resize_locked(want);
    pthread_mutex_unlock(&pool.busy);
}

int hlr__pool_threads(void) { return atomic_load_explicit(&pool.workers, memory_order_relaxed) + 1; }

/* The whole loop on the calling thread: a team of one (restored after, for a loop nested in a team's part). */
static void serial(hlr_task_fn fn, void *ctx, int64_t n)
{
    const int part = job_part, parts = job_parts;
    job_part = 0;
    job_parts = 1;
    fn(ctx, 0, n);
    job_part = part;
    job_parts = parts;
}

void hlr__parallel_for(int64_t n, int64_t grain, hlr_task_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    int64_t most = n / grain; /* parts of at least `grain` indices */
    if (most < 2 || inside_pool || atomic_load_explicit(&pool.target, memory_order_relaxed) == 0 ||
        pthread_mutex_trylock(&pool.busy) != 0) {
        serial(fn, ctx, n);
        return;
    }
    int target = atomic_load_explicit(&pool.target, memory_order_relaxed);
    if (atomic_load_explicit(&pool.workers, memory_order_relaxed) < target)
        resize_locked(target); /* a forked child's first job */
    int workers = atomic_load_explicit(&pool.workers, memory_order_relaxed);
    int parts = most < workers + 1 ? (int)most : workers + 1;
    if (parts < 2) {
        pthread_mutex_unlock(&pool.busy);
        serial(fn, ctx, n);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store_explicit(&pool.remaining, parts - 1, memory_order_relaxed); /* published by the release below */
    uint64_t generation = (atomic_load_explicit(&pool.job, memory_order_relaxed) >> JOB_PARTS_BITS) + 1;
    pthread_mutex_lock(&pool.lock);
    atomic_store_explicit(&pool.job, generation << JOB_PARTS_BITS | (uint64_t)parts, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    int64_t b, e;
    range_of(n, parts, 0, &b, &e);
    inside_pool = 1;
    job_part = 0;
    job_parts = parts;
    fn(ctx, b, e);
    job_parts = 1;
    inside_pool = 0;
    int spins = 0;
    while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0 && spins < SPIN) {
        poll_wait(spins);
        spins++;
    }
    if (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0) {
        pthread_mutex_lock(&pool.lock);
        while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0)
            pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.busy);
}

typedef struct team_job {
    hlr_team_fn fn;
    void *ctx;
} team_job;

/* One thread's part of a team: one index of the loop below each, or all of them when serial. */
static void team_part(void *ctx, int64_t b, int64_t e)
{
    (void)b;
    (void)e;
    const team_job *t = ctx;
    t->fn(t->ctx, job_part, job_parts);
}

void hlr__parallel_team(int want, hlr_team_fn fn, void *ctx)
{
    team_job t = {fn, ctx};
    hlr__parallel_for(want < 1 ? 1 : want, 1, team_part, &t);
}

/* A central barrier: the last part to arrive resets the count, then opens the next phase (release);
 * the others poll the phase (acquire), so each part's earlier writes are seen by all after it.  A part
 * reads the phase before it arrives, and the phase cannot move before every part has arrived. */
void hlr__barrier_wait(hlr_barrier *bar, int parts)
{
    if (parts < 2)
        return;
    const unsigned phase = atomic_load_explicit(&bar->phase, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&bar->arrived, 1, memory_order_acq_rel) == parts - 1) {
        atomic_store_explicit(&bar->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&bar->phase, phase + 1, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(&bar->phase, memory_order_acquire) == phase; spins++)
        poll_wait(spins);
}

/* Join the workers when the library is unloaded, so leak checkers see no thread left. */
__attribute__((destructor)) static void pool_shutdown(void) { hlr__pool_resize(1); }

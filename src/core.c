/*
 * core.c -- versions, status codes, the thread-local error message, the log
 * callback, the allocator hooks and the thread count.
 */
#include "internal.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *hlr_version(void) { return HLR_VERSION_STRING; }

int hlr_version_number(void) { return HLR_VERSION_NUMBER; }

const char *hlr_strerror(hlr_status code)
{
    switch (code) {
    case HLR_OK: return "success";
    case HLR_EINVAL: return "invalid argument";
    case HLR_ENOMEM: return "out of memory";
    case HLR_ESHAPE: return "shape mismatch";
    case HLR_EIO: return "input/output error";
    case HLR_EFORMAT: return "malformed file";
    case HLR_ESTATE: return "invalid state for this call";
    case HLR_ENOTFOUND: return "not found";
    case HLR_EUNSUPPORTED: return "not supported";
    case HLR_ENUMERIC: return "numerical failure (NaN or infinity)";
    case HLR_ECANCELLED: return "cancelled by callback";
    }
    return "unknown status";
}

/* ---- the thread-local message ---- */

static _Thread_local char last_error[512];
static _Thread_local hlr_status last_status;

const char *hlr_last_error(void) { return last_error; }

hlr_status hlr_last_status(void) { return last_status; }

static hlr_log_fn log_fn;
static void *log_user;

void hlr_set_log_callback(hlr_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

hlr_status hlr__fail(hlr_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = code;
    if (log_fn)
        log_fn(HLR_LOG_DEBUG, last_error, log_user);
    return code;
}

void hlr__log(hlr_log_level level, const char *fmt, ...)
{
    if (!log_fn)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}

/* ---- memory ---- */

_Atomic long hlr__alloc_count;

static _Thread_local size_t alloc_left; /* bytes the ceiling still allows */
static _Thread_local int alloc_limited, alloc_refused;

void hlr__alloc_limit(size_t bytes)
{
    alloc_limited = bytes > 0;
    alloc_left = bytes;
    alloc_refused = 0;
}

int hlr__alloc_limit_hit(void) { return alloc_refused; }

/* Under a ceiling: take n bytes from it, or refuse (0). */
static int alloc_allowed(size_t n)
{
    if (!alloc_limited)
        return 1;
    if (n > alloc_left) {
        alloc_refused = 1;
        return 0;
    }
    alloc_left -= n;
    return 1;
}

void *hlr__malloc(size_t n)
{
    atomic_fetch_add_explicit(&hlr__alloc_count, 1, memory_order_relaxed);
    if (!alloc_allowed(n))
        return NULL;
    return malloc(n ? n : 1);
}

void *hlr__calloc(size_t count, size_t size)
{
    atomic_fetch_add_explicit(&hlr__alloc_count, 1, memory_order_relaxed);
    if (alloc_limited && ((size && count > SIZE_MAX / size) || !alloc_allowed(count * size))) {
        alloc_refused = 1;
        return NULL;
    }
    return calloc(count ? count : 1, size ? size : 1);
}

void *hlr__realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&hlr__alloc_count, 1, memory_order_relaxed);
    return realloc(p, n ? n : 1);
}

void hlr__free(void *p) { free(p); }

void *hlr__alloc_or_fail(size_t count, size_t size, const char *what)
{
    if (size && count > SIZE_MAX / size) {
        hlr__fail(HLR_ENOMEM, "%s: %zu x %zu bytes overflows", what, count, size);
        return NULL;
    }
    void *p = hlr__calloc(count, size);
    if (!p)
        hlr__fail(HLR_ENOMEM, "%s: cannot allocate %zu bytes", what, count * size);
    return p;
}

int hlr__mul_overflows(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return 1;
    if (a != 0 && b > INT64_MAX / a)
        return 1;
    *out = a * b;
    return 0;
}

/* ---- threads ----
 * libhlr runs its arithmetic on its own pool (parallel.c), sized here;
 * OpenBLAS is kept single-threaded inside it, so the two never compete. */

static int num_threads;
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void threads_init_once(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("HLR_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 1024)
            n = v;
    }
    if (n < 1)
        n = 1;
    num_threads = (int)n;
    openblas_set_num_threads(1);
    hlr__pool_resize(num_threads);
}

void hlr__threads_init(void) { pthread_once(&threads_once, threads_init_once); }

hlr_status hlr_set_num_threads(int n)
{
    if (n < 1 || n > 1024)
        return hlr__fail(HLR_EINVAL, "hlr_set_num_threads: %d threads; expected 1 to 1024", n);
    hlr__threads_init();
    num_threads = n;
    hlr__pool_resize(n);
    return HLR_OK;
}

int hlr_get_num_threads(void)
{
    hlr__threads_init();
    return num_threads;
}

/* ---- opening files to read ---- */

int hlr__open_regular(const char *path, const char *fn, int64_t *size)
{
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, forever.  Regular files ignore the flag; it is cleared anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        char buf[128];
        int err = errno;
        hlr__fail(HLR_EIO, "%s: cannot open %s: %s", fn, path, strerror_r(err, buf, sizeof buf));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        char buf[128];
        int err = errno;
        hlr__fail(HLR_EIO, "%s: cannot read %s: %s", fn, path, strerror_r(err, buf, sizeof buf));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        hlr__fail(HLR_EIO, "%s: %s is not a regular file", fn, path);
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags != -1)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (size)
        *size = (int64_t)sb.st_size;
    return fd;
}

/* The weight generation (internal.h): one count for the process, which every writer of parameters
 * inside the library advances; a form made from the weights at a generation stays good while it has
 * not moved. */
static _Atomic uint64_t weights_generation = 1;

void hlr__weights_written(void) { atomic_fetch_add_explicit(&weights_generation, 1, memory_order_acq_rel); }

uint64_t hlr__weights_generation(void) { return atomic_load_explicit(&weights_generation, memory_order_acquire); }

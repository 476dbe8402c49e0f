/*
 * testutil.h -- what the Check suites share.  Each tests/test_*.c file
 * defines one `Suite *suite_NAME(void)` and lists it in check_main.c.
 */
#ifndef HLR_TESTUTIL_H
#define HLR_TESTUTIL_H

#include <check.h>
#include <fcntl.h>
#include <hlr/hlr.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Assert a status, printing the library's message when it differs. */
#define ck_assert_status(expr, want)                                                                             \
    do {                                                                                                         \
        hlr_status st_ = (expr);                                                                                 \
        ck_assert_msg(st_ == (want), "%s returned %d (%s), expected %d; last error: %s", #expr, (int)st_,        \
                      hlr_strerror(st_), (int)(want), hlr_last_error());                                         \
    } while (0)

#define ck_assert_ok(expr) ck_assert_status(expr, HLR_OK)

/* Assert |got - want| <= atol + rtol * |want|, naming both numbers. */
#define ck_assert_close(got, want, rtol, atol)                                                                   \
    do {                                                                                                         \
        double g_ = (double)(got), w_ = (double)(want);                                                          \
        ck_assert_msg(fabs(g_ - w_) <= (atol) + (rtol)*fabs(w_), "%s = %.9g, expected %.9g (%s)", #got, g_, w_,  \
                      #want);                                                                                    \
    } while (0)

/* Assert that the last error message contains a fragment. */
#define ck_assert_error_mentions(fragment)                                                                       \
    ck_assert_msg(strstr(hlr_last_error(), (fragment)) != NULL, "last error \"%s\" does not mention \"%s\"",     \
                  hlr_last_error(), (fragment))

/* A deterministic generator for test data (not the library's). */
static inline float test_rand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f; /* [0, 1) */
}

static inline void test_fill(float *x, long n, unsigned long long seed, float lo, float hi)
{
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * test_rand(&seed);
}

/* a and b, n floats, hold the same bits (fused / separate, alone / in a batch, saved / loaded);
 * `what` names the case in the failure message. */
static inline void test_expect_same_bits(const char *what, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof *a) == 0, "%s [%lld]: %.9g, expected the bits of %.9g", what,
                      (long long)i, (double)a[i], (double)b[i]);
}

/*
 * Values against a PyTorch fixture: float32 against torch's float64,
 * relative 1e-5 (the values agree to about 1e-7), with an absolute floor of
 * 1e-6 for values near zero, where a relative bound means nothing.  cname
 * names the fixture case, what the tensor.
 */
#define TORCH_RTOL 1e-5
#define TORCH_ATOL 1e-6

static inline void expect_torch_close(const char *cname, const char *what, const float *got, const float *want,
                                      int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        ck_assert_msg(fabs(g - w) <= TORCH_ATOL + TORCH_RTOL * fabs(w),
                      "%s: %s[%lld]: libhlr %.9g, torch %.9g (diff %.3g)", cname, what, (long long)i, g, w, g - w);
    }
}

/*
 * n points in the square [-1, 1]^2 with six noise features; class = (inside
 * the circle r < 0.65) * 2 + (x0 * x1 > 0), 4 classes.  No straight line
 * separates them, so a model must really learn (test_train.c, test_control.c).
 */
#define TEST_RINGS_FEATURES 8
static inline hlr_dataset *test_rings(int64_t n, unsigned long long seed)
{
    float *x = (float *)malloc((size_t)n * TEST_RINGS_FEATURES * sizeof *x);
    int32_t *y = (int32_t *)malloc((size_t)n * sizeof *y);
    ck_assert(x && y);
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * TEST_RINGS_FEATURES;
        for (int f = 0; f < TEST_RINGS_FEATURES; f++)
            xi[f] = 2 * test_rand(&seed) - 1;
        y[i] = (xi[0] * xi[0] + xi[1] * xi[1] < 0.65f * 0.65f) * 2 + (xi[0] * xi[1] > 0);
    }
    hlr_dataset *d = hlr_dataset_from(1, (int64_t[]){TEST_RINGS_FEATURES}, n, x, y, 4);
    free(x);
    free(y);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* MNIST's "train" or "t10k" part from $HLR_DATA_DIR (else data/mnist), gzipped or raw; the test
 * fails, naming the folder, when it is not there (`make data` fetches it). */
static inline hlr_dataset *test_load_mnist(const char *prefix)
{
    const char *dir = getenv("HLR_DATA_DIR");
    if (!dir || !*dir)
        dir = "data/mnist";
    char img[1024], lab[1024];
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    if (access(img, R_OK) != 0) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte", dir, prefix);
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte", dir, prefix);
    }
    hlr_dataset *d = hlr_dataset_load_idx(img, lab);
    ck_assert_msg(d != NULL, "cannot load MNIST from %s (%s); `make data` fetches it", dir, hlr_last_error());
    return d;
}

/* A model with the given seed of n layers, none of them NULL (a failed constructor's message is shown). */
static inline hlr_model *test_model_of(uint64_t seed, hlr_layer *const *layers, int n)
{
    hlr_model *m = hlr_model_new(seed);
    ck_assert_ptr_nonnull(m);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(layers[i] != NULL, "layer %d: %s", i, hlr_last_error());
        ck_assert_ok(hlr_model_add(m, layers[i]));
    }
    return m;
}
/* TEST_MODEL(seed, layer, layer, ...): test_model_of() over a literal list. */
#define TEST_MODEL(seed, ...)                                                                                    \
    test_model_of((seed), (hlr_layer *[]){__VA_ARGS__},                                                          \
                  (int)(sizeof((hlr_layer *[]){__VA_ARGS__}) / sizeof(hlr_layer *)))

/*
 * A FIFO that a call must refuse without blocking: fifo_guard_start() makes
 * it, and a watchdog thread that, should the call still be running after
 * three seconds, opens the FIFO's write end and closes it again (and again,
 * every 50 ms) so that a blocked open or read returns and the test can
 * fail instead of hanging.  fifo_guard_stop() removes the FIFO and returns
 * whether the watchdog had to do that.
 */
typedef struct fifo_guard {
    char path[512];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, unblocked;
} fifo_guard;

static inline void *fifo_guard_main(void *arg)
{
    fifo_guard *g = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    pthread_mutex_lock(&g->mu);
    while (!g->done && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
        ;
    while (!g->done) {
        g->unblocked = 1;
        pthread_mutex_unlock(&g->mu);
        int fd = open(g->path, O_WRONLY | O_NONBLOCK); /* fails (ENXIO) while no reader has it open */
        if (fd >= 0)
            close(fd);
        usleep(50000);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

static inline void fifo_guard_start(fifo_guard *g, const char *path)
{
    memset(g, 0, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s", path);
    unlink(path);
    ck_assert_msg(mkfifo(path, 0600) == 0, "mkfifo(%s) failed", path);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    ck_assert_int_eq(pthread_create(&g->thread, NULL, fifo_guard_main, g), 0);
}

static inline int fifo_guard_stop(fifo_guard *g)
{
    pthread_mutex_lock(&g->mu);
    g->done = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    unlink(g->path);
    return g->unblocked;
}

/* Every parameter and buffer (batch norm's running statistics) of m, in order, in a new array
 * (free it); *count receives its length. */
static inline float *test_params_of(hlr_model *m, int64_t *count)
{
    int64_t n = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int p = 0; p < hlr_layer_param_count(l); p++)
            n += hlr_tensor_numel(hlr_layer_param(l, hlr_layer_param_name(l, p)));
    }
    float *out = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof *out), *at = out;
    ck_assert_ptr_nonnull(out);
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        for (int p = 0; p < hlr_layer_param_count(l); p++) {
            hlr_tensor *t = hlr_layer_param(l, hlr_layer_param_name(l, p));
            memcpy(at, hlr_tensor_f32(t), (size_t)hlr_tensor_numel(t) * sizeof *at);
            at += hlr_tensor_numel(t);
        }
    }
    *count = n;
    return out;
}

#endif

/*
 * hlr-bench -- training and inference speed of one reference model, and
 * the matrix-product rate behind the convolutions.
 *
 *   hlr-bench --model NAME [--train-batch 64] [--infer-batch 256] [--windows 7] [--window-seconds 0.4]
 *   hlr-bench --gemm
 *   hlr-bench --ctc [--windows 7] [--window-seconds 0.4]
 *
 * NAME is one of the reference models (examples/models.c) for 28 x 28
 * images, or crnn: hlr-read's recogniser for 32 x 224 strings of digits,
 * trained with the CTC loss on label sequences of 1 to 8 digits.  --ctc
 * times hlr_ctc_loss alone, value and gradient, for a batch of 64 sequences
 * of 64 steps over 11, 40 and 80 classes with targets of 8, 16 and 24.
 *
 * Prints one JSON object.  Speed is the median over timed windows, after a
 * warm-up; peak RSS is the process's, so run one model per process
 * (bench/run.py does).  Data are random: speed does not depend on them.
 */
#include "../examples/models.h"
#include "../src/internal.h" /* hlr__*: linked statically, to time the library's own GEMM path */
#include "../src/kernels/kernels.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The clones libhlr's kernels run here: AVX-512, AVX2 (the AVX2 build's widest, kernels.h) or the baseline. */
static const char *kernel_isa(void)
{
    if (hlrk_avx512_runs())
        return "AVX-512";
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2"))
        return "AVX2";
#endif
    return "x86-64 baseline";
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(float *x, int64_t n, unsigned seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65536.0f;
    }
}

typedef int (*step_fn)(void *ctx);

/* Median samples per second of `windows` windows of at least `secs` each. */
static double measure(step_fn step, void *ctx, int64_t batch, int windows, double secs)
{
    double rates[64];
    for (int i = 0; i < 3; i++) /* warm-up: plans buffers, touches pages */
        if (step(ctx))
            return -1;
    for (int w = 0; w < windows; w++) {
        double t0 = now(), t;
        int64_t steps = 0;
        do {
            if (step(ctx))
                return -1;
            steps++;
            t = now() - t0;
        } while (t < secs);
        rates[w] = (double)(steps * batch) / t;
    }
    qsort(rates, (size_t)windows, sizeof rates[0], cmp_double);
    return rates[windows / 2];
}

typedef struct run {
    hlr_model *m;
    hlr_optimizer *o;
    hlr_tensor *x, *y, *labels;
} run;

static int train_step(void *p)
{
    run *r = p;
    return hlr_model_train_batch(r->m, r->o, r->x, r->labels, NULL) != HLR_OK;
}

static int infer_step(void *p)
{
    run *r = p;
    return hlr_model_forward(r->m, r->x, r->y, 0) != HLR_OK;
}

/* The library's count of GEMM floating-point operations (internal; the
 * benchmark links the static library). */
extern _Atomic int64_t hlr__gemm_flops;

/* GEMM floating-point operations of one step, per image. */
static double gemm_flops_per_image(int (*step)(void *), void *ctx, int64_t batch)
{
    atomic_store(&hlr__gemm_flops, 0);
    if (step(ctx))
        return -1.0;
    return (double)atomic_load(&hlr__gemm_flops) / (double)batch;
}

static hlr_tensor *images(const hlr_model *m, int64_t n, unsigned seed)
{
    int nd;
    int64_t s[HLR_MAX_DIMS + 1];
    hlr_model_input_shape(m, &nd, s + 1);
    s[0] = n;
    hlr_tensor *t = hlr_tensor_new(HLR_F32, nd + 1, s);
    if (t)
        fill(hlr_tensor_f32(t), hlr_tensor_numel(t), seed);
    return t;
}

static hlr_tensor *outputs(const hlr_model *m, int64_t n)
{
    int nd;
    int64_t s[HLR_MAX_DIMS + 1];
    hlr_model_output_shape(m, &nd, s + 1);
    s[0] = n;
    return hlr_tensor_new(HLR_F32, nd + 1, s);
}

#define CRNN_CLASSES 11
#define CRNN_MAX_LEN 8

/* Class labels i mod 10, or for the CRNN label sequences of 1..8 digits (1..10), -1 padded. */
static hlr_tensor *targets(int crnn, int64_t n)
{
    hlr_tensor *t = crnn ? hlr_tensor_new(HLR_I32, 2, (int64_t[]){n, CRNN_MAX_LEN})
                         : hlr_tensor_new(HLR_I32, 1, (int64_t[]){n});
    if (!t)
        return NULL;
    int32_t *v = hlr_tensor_i32(t);
    for (int64_t i = 0; i < n; i++) {
        if (!crnn) {
            v[i] = (int32_t)(i % 10);
            continue;
        }
        int len = 1 + (int)(i % CRNN_MAX_LEN);
        for (int k = 0; k < CRNN_MAX_LEN; k++)
            v[i * CRNN_MAX_LEN + k] = k < len ? 1 + (int32_t)((i * 7 + k * 3) % 10) : -1;
    }
    return t;
}

static int bench_model(const char *name, int64_t train_batch, int64_t infer_batch, int windows, double secs)
{
    run r = {0};
    const int crnn = !strcmp(name, "crnn");
    if (!crnn && !example_model_exists(name)) {
        fprintf(stderr, "hlr-bench: unknown model '%s' (%s, crnn)\n", name, EXAMPLE_MODELS);
        return 2;
    }
    /* hlr-read's default recogniser */
    r.m = crnn ? example_crnn(0, 32, 224, CRNN_CLASSES, 24, 4, 2, 1, 128, 2, 0.4f) : example_model(name, 0);
    r.o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    r.x = r.m ? images(r.m, train_batch, 1) : NULL;
    r.labels = targets(crnn, train_batch);
    if (!r.m || !r.o || !r.x || !r.labels) {
        fprintf(stderr, "hlr-bench: %s\n", hlr_last_error());
        return 1;
    }
    /* A fingerprint of the arithmetic: the untrained model's outputs for fixed
     * inputs, so runs under other OpenBLAS kernels can be compared. */
    hlr_tensor *probe_y = outputs(r.m, train_batch);
    double check = 0.0;
    if (probe_y && hlr_model_forward(r.m, r.x, probe_y, 0) == HLR_OK)
        for (int64_t i = 0; i < hlr_tensor_numel(probe_y); i++)
            check += hlr_tensor_f32(probe_y)[i] * (double)((i % 7) + 1);
    hlr_tensor_free(probe_y);
    double train = measure(train_step, &r, train_batch, windows, secs);
    double train_flops = gemm_flops_per_image(train_step, &r, train_batch);
    hlr_tensor_free(r.x);
    r.x = images(r.m, infer_batch, 2);
    r.y = outputs(r.m, infer_batch);
    double infer = measure(infer_step, &r, infer_batch, windows, secs);
    double infer_flops = gemm_flops_per_image(infer_step, &r, infer_batch);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char *core = openblas_get_corename();
    printf("{\"lib\": \"libhlr\", \"model\": \"%s\", \"train_img_s\": %.1f, \"infer_img_s\": %.1f, "
           "\"peak_rss_mib\": %.1f, \"threads\": %d, \"blas_core\": \"%s\", \"kernels\": \"%s\", \"params\": %lld, "
           "\"output_check\": %.9g, \"train_gemm_mflop_per_img\": %.3f, \"infer_gemm_mflop_per_img\": %.3f}\n",
           name, train, infer, (double)ru.ru_maxrss / 1024.0, hlr_get_num_threads(), core ? core : "?", kernel_isa(),
           (long long)hlr_model_param_count(r.m), check, train_flops / 1e6, infer_flops / 1e6);
    int rc = train < 0 || infer < 0;
    if (rc)
        fprintf(stderr, "hlr-bench: %s\n", hlr_last_error());
    hlr_tensor_free(r.x);
    hlr_tensor_free(r.y);
    hlr_tensor_free(r.labels);
    hlr_optimizer_free(r.o);
    hlr_model_free(r.m);
    return rc;
}

/* ---- the CTC loss alone ---- */

typedef struct ctc_ctx {
    hlr_tensor *x, *il, *tg, *tl, *g;
} ctc_ctx;

static int ctc_step(void *p)
{
    ctc_ctx *c = p;
    float loss;
    return hlr_ctc_loss(c->x, c->il, c->tg, c->tl, 0, HLR_REDUCTION_MEAN, 0, &loss, c->g) != HLR_OK;
}

/* Calls per second (a batch of N sequences each) for the sizes the issue names. */
static int bench_ctc(int windows, double secs)
{
    enum { N = 64, T = 64 };
    static const int sizes[3][2] = {{11, 8}, {40, 16}, {80, 24}}; /* C, S */
    printf("{\"lib\": \"libhlr\", \"ctc\": [");
    for (int k = 0; k < 3; k++) {
        const int C = sizes[k][0], S = sizes[k][1];
        ctc_ctx c = {hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, C}), hlr_tensor_new(HLR_I32, 1, (int64_t[]){N}),
                     hlr_tensor_new(HLR_I32, 2, (int64_t[]){N, S}), hlr_tensor_new(HLR_I32, 1, (int64_t[]){N}),
                     hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, C})};
        if (!c.x || !c.il || !c.tg || !c.tl || !c.g) {
            fprintf(stderr, "hlr-bench: %s\n", hlr_last_error());
            return 1;
        }
        fill(hlr_tensor_f32(c.x), N * T * C, 3);
        for (int n = 0; n < N; n++) { /* lengths and labels as bench/torch_bench.py draws them */
            hlr_tensor_i32(c.il)[n] = T - (n % 8);
            hlr_tensor_i32(c.tl)[n] = S - (n % 4);
            for (int s = 0; s < S; s++)
                hlr_tensor_i32(c.tg)[n * S + s] = 1 + (n * 31 + s * 7) % (C - 1);
        }
        double rate = measure(ctc_step, &c, 1, windows, secs);
        printf("%s{\"C\": %d, \"S\": %d, \"N\": %d, \"T\": %d, \"calls_s\": %.1f}", k ? ", " : "", C, S, N, T,
               rate);
        hlr_tensor_free(c.x);
        hlr_tensor_free(c.il);
        hlr_tensor_free(c.tg);
        hlr_tensor_free(c.tl);
        hlr_tensor_free(c.g);
        if (rate < 0) {
            fprintf(stderr, "hlr-bench: %s\n", hlr_last_error());
            return 1;
        }
    }
    printf("], \"threads\": %d}\n", hlr_get_num_threads());
    return 0;
}

/* ---- GEMM rates ---- */

typedef struct gemm_ctx {
    int M, N, K;
    float *a, *b, *c;
} gemm_ctx;

/* Through hlrk_gemm, as every layer calls it: split over the library's threads. */
static int gemm_step(void *p)
{
    gemm_ctx *g = p;
    hlrk_gemm(0, 0, g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->N, 0.0f, g->c, g->N);
    return 0;
}

/* GFLOP/s of C (M, N) = A (M, K) B (K, N). */
static double gemm_rate(int M, int N, int K)
{
    gemm_ctx g = {M, N, K, malloc(sizeof(float) * (size_t)M * K), malloc(sizeof(float) * (size_t)K * N),
                  malloc(sizeof(float) * (size_t)M * N)};
    fill(g.a, (int64_t)M * K, 1);
    fill(g.b, (int64_t)K * N, 2);
    double per_s = measure(gemm_step, &g, 1, 5, 0.3);
    free(g.a);
    free(g.b);
    free(g.c);
    return per_s * 2.0 * M * N * K / 1e9;
}

typedef struct conv_ctx {
    hlr_model *m;
    hlr_tensor *x, *y;
} conv_ctx;

static int conv_step(void *p)
{
    conv_ctx *c = p;
    return hlr_model_forward(c->m, c->x, c->y, 0) != HLR_OK;
}

/* One conv2d layer's forward pass at batch n, in GFLOP/s of a direct
 * convolution (2 Cout Cin 9 H W per sample): conv1 runs the direct kernel,
 * conv2 Winograd's F(2x2, 3x3), which does 2.25 times fewer multiplications,
 * so its figure can pass sgemm's. */
static double conv_rate(int cin, int cout, int hw, int n)
{
    conv_ctx c = {hlr_model_new(0), NULL, NULL};
    hlr_model_add(c.m, hlr_conv2d(cin, cout, &(hlr_conv2d_options){.kernel = 3, .padding = 1}));
    if (hlr_model_build(c.m, 3, (int64_t[]){cin, hw, hw}) != HLR_OK)
        return -1;
    c.x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, cin, hw, hw});
    c.y = hlr_tensor_new(HLR_F32, 4, (int64_t[]){n, cout, hw, hw});
    fill(hlr_tensor_f32(c.x), hlr_tensor_numel(c.x), 3);
    double per_s = measure(conv_step, &c, n, 5, 0.3);
    hlr_tensor_free(c.x);
    hlr_tensor_free(c.y);
    hlr_model_free(c.m);
    return per_s * 2.0 * cout * cin * 9.0 * hw * hw / 1e9;
}

static int bench_gemm(void)
{
    hlr_get_num_threads(); /* applies HLR_NUM_THREADS to OpenBLAS before the first product */
    double peak = gemm_rate(2048, 2048, 2048);
    /* The cnn's second convolution at batch 64: (64, 64*196) = (64, 288) x (288, 64*196). */
    double conv2_gemm = gemm_rate(64, 64 * 196, 288);
    double conv1 = conv_rate(1, 32, 28, 64), conv2 = conv_rate(32, 64, 14, 64);
    char *core = openblas_get_corename();
    printf("{\"lib\": \"libhlr\", \"sgemm_2048_gflops\": %.1f, \"conv2_shape_sgemm_gflops\": %.1f, "
           "\"conv1_layer_gflops\": %.1f, \"conv2_layer_gflops\": %.1f, \"threads\": %d, \"blas_core\": \"%s\", "
           "\"kernels\": \"%s\"}\n",
           peak, conv2_gemm, conv1, conv2, hlr_get_num_threads(), core ? core : "?", kernel_isa());
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int64_t train_batch = 64, infer_batch = 256;
    int windows = 7, gemm = 0, ctc = 0;
    double secs = 0.4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--gemm") || !strcmp(a, "--ctc")) {
            *(a[2] == 'g' ? &gemm : &ctc) = 1;
            continue;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--train-batch"))
            train_batch = atol(v);
        else if (!strcmp(a, "--infer-batch"))
            infer_batch = atol(v);
        else if (!strcmp(a, "--windows"))
            windows = atoi(v);
        else if (!strcmp(a, "--window-seconds"))
            secs = atof(v);
        else {
            fprintf(stderr, "usage: hlr-bench --model NAME [--train-batch 64] [--infer-batch 256] [--windows 7] "
                            "[--window-seconds 0.4] | --gemm | --ctc\n");
            return 2;
        }
        i++;
    }
    if (windows < 1 || windows > 64 || train_batch < 1 || infer_batch < 1 || secs <= 0) {
        fprintf(stderr, "hlr-bench: bad option value\n");
        return 2;
    }
    if (gemm)
        return bench_gemm();
    if (ctc)
        return bench_ctc(windows, secs);
    if (!model) {
        fprintf(stderr, "hlr-bench: --model NAME or --gemm\n");
        return 2;
    }
    return bench_model(model, train_batch, infer_batch, windows, secs);
}

/*
 * hlr-serve -- live recognition over HTTP: a page to write on, and a JSON API.
 *
 *   hlr-serve --model NAME=FILE [--model NAME=FILE ...] [--port 8080] [--bind 127.0.0.1] [--threads 2] ...
 *
 * HTTP is libmicrohttpd's (a thread pool polling with poll(); connection
 * limit and idle timeout are its own), JSON is cJSON's, PNG is libpng's
 * through hlr_image_decode().  Routes:
 *
 *   GET  /                         the page (served from this binary: it works offline)
 *   POST /v1/recognize?model=NAME  a PNG body (image/png) or JSON {"width", "height", "pixels"};
 *                                  &saliency=1 adds the saliency map of a classifier as a PNG
 *   GET  /v1/models                the models: kind, classes, input shape, file metadata
 *   GET  /healthz                  {"status": "ok", ...}
 *   GET  /metrics                  Prometheus' text format
 *
 * Each model file is loaded once.  A batcher thread per model gathers the
 * requests that arrive together into one batch (at most --batch of them,
 * waiting at most --wait-us for more after the first) and runs them through
 * its hlr_model_clone_shared() copy: on a CPU that is where a server's
 * throughput comes from.  The HTTP threads decode and preprocess pictures
 * and then suspend the connection; the batcher resumes it with the answer,
 * so no thread waits for another.
 *
 * Bad requests get a 4xx and a JSON {"error": ...} naming the problem, never
 * a file.  SIGTERM (or SIGINT) stops accepting, lets in-flight requests
 * finish (at most --drain seconds) and exits 0.  SIGHUP reloads every model
 * file: all or nothing, in-flight requests finish on the models they
 * started with, and a file that fails to load leaves the old models serving
 * (one line on stderr says why).
 */
#include "common.h"
#include "options.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The page, built into the binary (examples/serve/page.html). */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "serve_page:\n"
        ".incbin \"examples/serve/page.html\"\n"
        "serve_page_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char serve_page[], serve_page_end[];

#define PROG "hlr-serve"
#define MAX_MODELS 16
#define MAX_NAME 64
/* The largest picture a request may hold (a side, and in all): far above any canvas or phone photo
 * scaled for reading, far below what would let one request take the server's memory. */
#define MAX_SIDE 4096
#define MAX_PIXELS (4096 * 4096)
#define TOP_K 3

/* ---- options ---- */

static struct {
    const char *models[MAX_MODELS];
    int n_models;
    int port, threads, compute_threads, batch, wait_us, timeout, max_connections, drain;
    long max_body;
    const char *bind, *token_file;
    int verbose;
} opt = {.port = 8080, .threads = 2, .compute_threads = 0, .batch = 32, .wait_us = 1000, .timeout = 10,
         .max_connections = 512, .drain = 30, .max_body = 1 << 20, .bind = "127.0.0.1"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hlr-serve --model NAME=FILE [--model NAME=FILE ...] [options]\n"
            "  --model NAME=FILE      serve the model saved in FILE as NAME (letters, digits, - _ .); up to %d\n"
            "  --port N               the TCP port (default 8080; 0 picks a free one, printed at start)\n"
            "  --bind ADDRESS         the address to listen on, IPv4 or IPv6 (default 127.0.0.1)\n"
            "  --threads N            HTTP threads: they decode and preprocess pictures (default 2)\n"
            "  --compute-threads N    libhlr's threads for each batch (default: libhlr's, $HLR_NUM_THREADS or\n"
            "                         the cores)\n"
            "  --batch N              the largest batch of requests run together (default 32; 1: no batching)\n"
            "  --wait-us N            how long a batch waits for more requests after its first, in\n"
            "                         microseconds (default 1000)\n"
            "  --max-body BYTES       the largest request body (default 1048576); larger gets 413\n"
            "  --timeout SECONDS      close a connection idle this long (default 10)\n"
            "  --max-connections N    connections at once (default 512)\n"
            "  --drain SECONDS        on SIGTERM, how long in-flight requests may take to finish (default 30)\n"
            "  --token-file FILE      require 'Authorization: Bearer TOKEN' on /v1/ (TOKEN: the file's first line)\n"
            "  --verbose              log libmicrohttpd's messages (dropped connections, timeouts) on stderr\n"
            "Routes: GET / (the page), POST /v1/recognize?model=NAME[&saliency=1] (image/png, or\n"
            "application/json {\"width\", \"height\", \"pixels\"}), GET /v1/models, GET /healthz, GET /metrics.\n"
            "SIGTERM drains and exits 0; SIGHUP reloads the model files (all or nothing).\n",
            MAX_MODELS);
}

/* ---- clocks ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- metrics ---- */

enum route { R_PAGE, R_RECOGNIZE, R_MODELS, R_HEALTHZ, R_METRICS, R_OTHER, N_ROUTES };
static const char *const route_names[N_ROUTES] = {"/", "/v1/recognize", "/v1/models", "/healthz", "/metrics",
                                                  "other"};
static const int codes[] = {200, 400, 401, 404, 405, 413, 415, 500, 503};
#define N_CODES ((int)(sizeof codes / sizeof codes[0]))
static const double latency_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define N_LATENCY ((int)(sizeof latency_le / sizeof latency_le[0]))
static const int batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
#define N_BATCH ((int)(sizeof batch_le / sizeof batch_le[0]))

static struct {
    atomic_llong requests[N_ROUTES][N_CODES];
    atomic_llong latency[N_LATENCY + 1]; /* per bucket (not cumulative); the last: above all */
    atomic_llong latency_us_sum, latency_count;
    atomic_llong batches[N_BATCH + 1], batch_items;
    atomic_llong reloads_ok, reloads_failed;
    atomic_int inflight;
    atomic_int pending;  /* jobs handed to a batcher and not yet answered */
    atomic_int arriving; /* recognize requests being received or decoded: a batch waits only for them */
} M;

static void count_request(int route, int code, double seconds)
{
    int k = 0;
    while (k < N_CODES - 1 && codes[k] != code)
        k++;
    atomic_fetch_add(&M.requests[route][k], 1);
    int b = 0;
    while (b < N_LATENCY && seconds > latency_le[b])
        b++;
    atomic_fetch_add(&M.latency[b], 1);
    atomic_fetch_add(&M.latency_us_sum, (long long)(seconds * 1e6));
    atomic_fetch_add(&M.latency_count, 1);
}

static void count_batch(int n)
{
    int b = 0;
    while (b < N_BATCH && n > batch_le[b])
        b++;
    atomic_fetch_add(&M.batches[b], 1);
    atomic_fetch_add(&M.batch_items, n);
}

/* ---- models ---- */

enum kind { CLASSIFIER, TEXT };

typedef struct job job;

/* One model of one generation, with its batcher. */
typedef struct served {
    char name[MAX_NAME];
    const char *path;
    hlr_model *model, *clone; /* the loaded file (saliency), and the batcher's copy (predictions) */
    enum kind kind;
    int in_ndim;
    int64_t in_shape[HLR_MAX_DIMS + 1]; /* with the batch dimension first */
    int64_t in_numel, classes;
    int takes_mnist; /* a classifier of 28 x 28 values */
    /* TEXT: hlr-read's CTC models */
    const char *alphabet;
    int off[1025], chars, lines, T;
    int64_t H, W;
    /* the batcher */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int queued, stop;
    /* buffers for the largest batch, and tensors over them for every batch size (made once) */
    float *x, *y;
    hlr_tensor **xs, **ys;
    int32_t *cls, *widths, *steps, *labels;
    float *conf;
    job **jobs; /* the batch being run */
} served;

typedef struct generation {
    served m[MAX_MODELS];
    int n;
    int refs; /* S.lock: the server's (while current) and each request's */
} generation;

struct job {
    job *next;
    struct MHD_Connection *conn;
    double queued_at;
    float *input; /* in_numel values (the model's input for one sample) */
    int32_t width; /* TEXT lines: the picture's columns on the canvas */
    int cut;       /* TEXT: the picture was cut at the canvas's right */
    int saliency;
    /* the answer */
    hlr_status status;
    char error[256];
    float *probs;
    int32_t cls;
    char *text;
    float *char_conf;
    int len;
    double confidence;
    unsigned char *saliency_png, *overlay_png;
    size_t saliency_len, overlay_len;
    double place[4]; /* where the input's pixels came from in the picture (hlr_image_preprocess_mnist_placed) */
    int64_t pic_w, pic_h;
    int batch; /* the size of the batch it ran in */
    atomic_int done;
};

static struct {
    pthread_mutex_t lock;
    generation *current;
    char names[MAX_MODELS][MAX_NAME];
    const char *paths[MAX_MODELS];
    int n;
    char *token;
    struct MHD_Daemon *daemon;
    char mhd_error[256]; /* libmicrohttpd's last message, for a failed start */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *batcher(void *arg);

static void served_free(served *s)
{
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    for (int b = 0; b <= opt.batch; b++) {
        if (s->xs)
            hlr_tensor_free(s->xs[b]);
        if (s->ys)
            hlr_tensor_free(s->ys[b]);
    }
    free(s->xs);
    free(s->ys);
    free(s->x);
    free(s->y);
    free(s->cls);
    free(s->widths);
    free(s->steps);
    free(s->labels);
    free(s->conf);
    free(s->jobs);
    hlr_model_free(s->clone);
    hlr_model_free(s->model);
    memset(s, 0, sizeof *s);
}

static void generation_free(generation *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n; i++)
        served_free(&g->m[i]);
    free(g);
}

/* Load one model file and make its batcher; 0, or -1 with the reason in err. */
static int served_open(served *s, const char *name, const char *path, char *err, size_t cap)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->path = path;
    s->model = hlr_model_load(path, NULL);
    if (!s->model) {
        snprintf(err, cap, "%s", hlr_last_error());
        return -1;
    }
    int ond;
    int64_t os[HLR_MAX_DIMS];
    hlr_model_input_shape(s->model, &s->in_ndim, s->in_shape + 1);
    hlr_model_output_shape(s->model, &ond, os);
    s->in_numel = 1;
    for (int i = 1; i <= s->in_ndim; i++)
        s->in_numel *= s->in_shape[i];
    const hlr_metadata *md = hlr_model_metadata(s->model);
    s->alphabet = hlr_metadata_get(md, "alphabet");
    if (s->alphabet) {
        const char *task = hlr_metadata_get(md, "task");
        s->kind = TEXT;
        s->lines = task && !strcmp(task, "lines");
        s->chars = example_utf8_offsets(s->alphabet, s->off, 1024);
        if (s->in_ndim != 3 || s->in_shape[1] != 1 || ond != 2 || os[1] != s->chars) {
            snprintf(err, cap, "%s: has an alphabet but is not a model saved by hlr-read train", path);
            return -1;
        }
        s->H = s->in_shape[2], s->W = s->in_shape[3], s->T = (int)os[0];
        s->classes = os[1];
    } else if (ond == 1) {
        s->kind = CLASSIFIER;
        s->classes = os[0];
        s->takes_mnist = s->in_numel == 28 * 28;
    } else {
        snprintf(err, cap, "%s: neither a classifier (its output is not a vector of classes) nor a model of "
                           "hlr-read's", path);
        return -1;
    }
    s->clone = hlr_model_clone_shared(s->model);
    const int B = opt.batch;
    const int64_t out_numel = s->kind == TEXT ? (int64_t)s->T * s->classes : s->classes;
    s->x = malloc((size_t)(B * s->in_numel) * sizeof *s->x);
    s->y = malloc((size_t)(B * out_numel) * sizeof *s->y);
    s->xs = calloc((size_t)B + 1, sizeof *s->xs);
    s->ys = calloc((size_t)B + 1, sizeof *s->ys);
    s->cls = malloc((size_t)B * sizeof *s->cls);
    s->widths = malloc((size_t)B * sizeof *s->widths);
    s->steps = malloc((size_t)B * sizeof *s->steps);
    s->labels = malloc((size_t)(s->T + 1) * sizeof *s->labels);
    s->conf = malloc((size_t)(s->T + 1) * sizeof *s->conf);
    s->jobs = malloc((size_t)B * sizeof *s->jobs);
    if (!s->clone || !s->x || !s->y || !s->xs || !s->ys || !s->cls || !s->widths || !s->steps || !s->labels ||
        !s->conf || !s->jobs) {
        snprintf(err, cap, "%s: %s", path, s->clone ? "out of memory" : hlr_last_error());
        return -1;
    }
    for (int b = 1; b <= B; b++) {
        s->in_shape[0] = b;
        s->xs[b] = hlr_tensor_wrap(HLR_F32, s->in_ndim + 1, s->in_shape, s->x);
        int64_t ys[3] = {b, s->kind == TEXT ? s->T : s->classes, s->classes};
        s->ys[b] = hlr_tensor_wrap(HLR_F32, s->kind == TEXT ? 3 : 2, ys, s->y);
        if (!s->xs[b] || !s->ys[b]) {
            snprintf(err, cap, "%s: %s", path, hlr_last_error());
            return -1;
        }
    }
    s->in_shape[0] = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, batcher, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        snprintf(err, cap, "%s: cannot start its batcher thread", path);
        return -1;
    }
    s->started = 1;
    return 0;
}

/* Load every model file afresh: a new generation, or NULL with the reason in err. */
static generation *generation_load(char *err, size_t cap)
{
    generation *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    for (int i = 0; i < S.n; i++) {
        g->n = i + 1;
        if (served_open(&g->m[i], S.names[i], S.paths[i], err, cap) != 0) {
            generation_free(g);
            return NULL;
        }
    }
    g->refs = 1;
    return g;
}

static generation *generation_acquire(void)
{
    pthread_mutex_lock(&S.lock);
    generation *g = S.current;
    if (g)
        g->refs++;
    pthread_mutex_unlock(&S.lock);
    return g;
}

static void generation_release(generation *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&S.lock);
    int last = --g->refs == 0;
    pthread_mutex_unlock(&S.lock);
    if (last)
        generation_free(g);
}

/* ---- the batcher ---- */

static void job_fail(job *j, const char *what)
{
    j->status = hlr_last_status() != HLR_OK ? hlr_last_status() : HLR_EINVAL;
    snprintf(j->error, sizeof j->error, "%s: %s", what, hlr_last_error());
}

/* The saliency map drawn over the picture the request sent: RGBA of the picture's size (at most OVERLAY_SIDE a
 * side), transparent where the model did not look, red to yellow where it did; each picture pixel takes the
 * value of the input pixel it went into (j->place). */
#define OVERLAY_SIDE 560
static void overlay(job *j, const float *map, int64_t h, int64_t w)
{
    float top = 0;
    for (int64_t i = 0; i < h * w; i++)
        top = fabsf(map[i]) > top ? fabsf(map[i]) : top;
    const int64_t side = j->pic_w > j->pic_h ? j->pic_w : j->pic_h;
    const double k = side > OVERLAY_SIDE ? (double)side / OVERLAY_SIDE : 1.0; /* picture pixels per overlay pixel */
    const int W = (int)ceil((double)j->pic_w / k), H = (int)ceil((double)j->pic_h / k);
    unsigned char *px = calloc((size_t)W * H, 4);
    if (!px)
        return;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const double sx = (x + 0.5) * k, sy = (y + 0.5) * k;
            const int64_t c = (int64_t)floor((sx - j->place[0]) / j->place[2]),
                          r = (int64_t)floor((sy - j->place[1]) / j->place[3]);
            if (c < 0 || c >= w || r < 0 || r >= h || top <= 0)
                continue;
            const double t = fabs(map[r * w + c]) / top;
            unsigned char *o = px + 4 * ((size_t)y * W + x);
            o[0] = 255, o[1] = (unsigned char)(255 * fmin(1.0, fmax(0.0, 2 * t - 1))), o[2] = 0;
            o[3] = (unsigned char)(230 * fmin(1.0, 1.5 * t));
        }
    if (example_png_pixels(W, H, px, 4, &j->overlay_png, &j->overlay_len) != 0)
        j->overlay_png = NULL;
    free(px);
}

static void saliency(served *s, job *j)
{
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    o.method = HLR_EXPLAIN_SALIENCY;
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, s->in_ndim + 1, s->in_shape, j->input);
    hlr_tensor *map = hlr_tensor_new(HLR_F32, s->in_ndim + 1, s->in_shape);
    if (!x || !map || hlr_model_explain(s->model, x, &j->cls, &o, map) != HLR_OK) {
        job_fail(j, "saliency");
    } else {
        const int64_t h = s->in_ndim >= 2 ? s->in_shape[s->in_ndim - 1] : 1, w = s->in_shape[s->in_ndim];
        const int64_t C = s->in_numel / (h * w);
        const int zoom = h * w <= 64 * 64 ? 8 : 2;
        picture pic = {.w = (int)(w * zoom), .h = (int)(h * zoom)};
        pic.rgb = malloc((size_t)pic.w * pic.h * 3);
        if (pic.rgb) {
            example_draw_image(&pic, 0, j->input, hlr_tensor_f32(map), C, h, w, zoom);
            if (example_png_bytes(&pic, &j->saliency_png, &j->saliency_len) != 0)
                j->saliency_png = NULL;
        }
        if (j->saliency_png && s->in_ndim >= 2 && h * w == s->in_numel)
            overlay(j, hlr_tensor_f32(map), h, w);
        if (!j->saliency_png) {
            j->status = HLR_ENOMEM;
            snprintf(j->error, sizeof j->error, "saliency: out of memory for its picture");
        }
        free(pic.rgb);
    }
    hlr_tensor_free(map);
    hlr_tensor_free(x);
}

/* Run n jobs as one batch and store each one's answer. */
static void run_batch(served *s, job **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        memcpy(s->x + i * s->in_numel, jobs[i]->input, (size_t)s->in_numel * sizeof *s->x);
        s->widths[i] = jobs[i]->width;
    }
    count_batch(n);
    if (s->kind == CLASSIFIER) {
        if (hlr_model_predict(s->clone, s->xs[n], s->cls, s->ys[n]) != HLR_OK) {
            for (int i = 0; i < n; i++)
                job_fail(jobs[i], "prediction");
            return;
        }
        for (int i = 0; i < n; i++) {
            job *j = jobs[i];
            j->cls = s->cls[i];
            memcpy(j->probs, s->y + i * s->classes, (size_t)s->classes * sizeof *j->probs);
            j->confidence = j->probs[j->cls];
            j->batch = n;
            if (j->saliency)
                saliency(s, j);
        }
        return;
    }
    /* a lines model reads each picture's own columns (digits models were trained on whole canvases) */
    for (int i = 0; i < n; i++)
        s->steps[i] = s->T;
    if ((s->lines && (hlr_model_set_lengths(s->clone, s->widths, n) != HLR_OK ||
                      hlr_model_output_lengths(s->clone, s->steps, n) != HLR_OK)) ||
        hlr_model_forward(s->clone, s->xs[n], s->ys[n], 0) != HLR_OK) {
        for (int i = 0; i < n; i++)
            job_fail(jobs[i], "reading");
        return;
    }
    const int C = (int)s->classes;
    for (int i = 0; i < n; i++) {
        job *j = jobs[i];
        int len;
        double lp;
        j->batch = n;
        if (hlr_ctc_decode(s->y + (int64_t)i * s->T * C, s->steps[i], C, 0, 0, NULL, s->labels, s->conf, s->T, &len,
                           &lp) != HLR_OK) {
            job_fail(j, "decoding");
            continue;
        }
        j->confidence = example_ctc_text(s->alphabet, s->off, C, s->labels, s->conf, len, lp, j->text);
        memcpy(j->char_conf, s->conf, (size_t)len * sizeof *j->char_conf);
        j->len = len;
    }
}

static void *batcher(void *arg)
{
    served *s = arg;
    job **jobs = s->jobs;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->head) { /* stopping, and nothing is left to answer */
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* Wait for more while requests are on their way, until the batch is full or the first request
         * has waited --wait-us: a lone request runs at once. */
        if (s->queued < opt.batch && opt.wait_us > 0 && !s->stop && atomic_load(&M.arriving) > 0) {
            double due = s->head->queued_at + 1e-6 * opt.wait_us;
            struct timespec ts = {.tv_sec = (time_t)due, .tv_nsec = (long)((due - floor(due)) * 1e9)};
            while (s->queued < opt.batch && !s->stop && atomic_load(&M.arriving) > 0)
                if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                    break;
        }
        int n = 0;
        while (s->head && n < opt.batch) {
            jobs[n++] = s->head;
            s->head = s->head->next;
        }
        if (!s->head)
            s->tail = NULL;
        s->queued -= n;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, jobs, n);
        for (int i = 0; i < n; i++) {
            struct MHD_Connection *c = jobs[i]->conn;
            atomic_store(&jobs[i]->done, 1);
            MHD_resume_connection(c);
            atomic_fetch_sub(&M.pending, 1);
        }
    }
    return NULL;
}

/* ---- requests ---- */

enum state { RECEIVING, WAITING, REPLIED };

typedef struct request {
    enum route route;
    enum state state;
    int code; /* the status sent */
    int model; /* index into S.names */
    int json;  /* the body is JSON (else PNG) */
    double t0;
    char *body;
    size_t len, cap;
    size_t dropped; /* bytes read past --max-body (the answer will be 413) */
    int arriving;   /* counted in M.arriving */
    generation *gen; /* held while a job is out */
    job job;
} request;

static void request_free(request *r)
{
    if (r->arriving)
        atomic_fetch_sub(&M.arriving, 1);
    free(r->body);
    free(r->job.input);
    free(r->job.probs);
    free(r->job.text);
    free(r->job.char_conf);
    free(r->job.saliency_png);
    free(r->job.overlay_png);
    generation_release(r->gen);
    free(r);
}

static enum MHD_Result send_text(struct MHD_Connection *c, request *r, int code, const char *type, char *text,
                                 size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (code == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (code == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route == R_RECOGNIZE ? "POST" : "GET, HEAD");
    /* counted before the answer leaves: a client that reads /metrics next sees this request in it */
    count_request(r->route, code, now_s() - r->t0);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, resp);
    MHD_destroy_response(resp);
    r->code = code;
    r->state = REPLIED;
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, request *r, int code, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        static char oom[] = "{\"error\": \"out of memory\", \"status\": 500}";
        return send_text(c, r, 500, "application/json", oom, sizeof oom - 1, MHD_RESPMEM_PERSISTENT);
    }
    return send_text(c, r, code, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE);
}

/* {"error": "...", "status": code}; the message never names a file (the library's image messages call an
 * upload "the image data"). */
static enum MHD_Result send_error(struct MHD_Connection *c, request *r, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", msg);
        cJSON_AddNumberToObject(o, "status", code);
    }
    return send_json(c, r, code, o);
}

static enum route route_of(const char *url)
{
    for (int k = 0; k < R_OTHER; k++)
        if (!strcmp(url, route_names[k]))
            return (enum route)k;
    return R_OTHER;
}

/* Authorization: Bearer TOKEN, compared in time that does not depend on where it differs. */
static int authorized(struct MHD_Connection *c)
{
    if (!S.token)
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(S.token);
    unsigned diff = a != b;
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned)(unsigned char)S.token[i] ^ (unsigned)(unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

/* The media type of a Content-Type value, without parameters: is it `want`? */
static int media_is(const char *v, const char *want)
{
    size_t n = strlen(want);
    return v && !strncasecmp(v, want, n) && (v[n] == '\0' || v[n] == ';' || v[n] == ' ');
}

static int flag_arg(struct MHD_Connection *c, const char *key)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !*v);
}

/* ---- GET routes ---- */

/* Class k of a classifier: its name in the model's metadata, else its number. */
static cJSON *label_json(const served *s, int k)
{
    const hlr_metadata *md = hlr_model_metadata(s->model);
    const char *name = k < hlr_metadata_num_classes(md) ? hlr_metadata_class_name(md, k) : NULL;
    char num[24];
    snprintf(num, sizeof num, "%d", k);
    return cJSON_CreateString(name ? name : num);
}

static cJSON *shape_json(const int64_t *shape, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[i]));
    return a;
}

static enum MHD_Result models_route(struct MHD_Connection *c, request *r)
{
    generation *g = generation_acquire();
    cJSON *root = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(root, "models");
    for (int i = 0; g && list && i < g->n; i++) {
        served *s = &g->m[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "kind", s->kind == TEXT ? "text" : "classifier");
        cJSON_AddItemToObject(o, "input_shape", shape_json(s->in_shape + 1, s->in_ndim));
        const hlr_metadata *md = hlr_model_metadata(s->model);
        if (s->kind == TEXT) {
            cJSON_AddStringToObject(o, "alphabet", s->alphabet + s->off[1]); /* the blank is label 0 */
            cJSON_AddStringToObject(o, "task", s->lines ? "lines" : "digits");
        } else {
            cJSON *cl = cJSON_AddArrayToObject(o, "classes");
            for (int k = 0; cl && k < s->classes; k++)
                cJSON_AddItemToArray(cl, label_json(s, (int)k));
            cJSON_AddNumberToObject(o, "temperature", hlr_model_temperature(s->model));
        }
        if (hlr_metadata_dataset(md))
            cJSON_AddStringToObject(o, "dataset", hlr_metadata_dataset(md));
        cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
        for (int k = 0; meta && k < hlr_metadata_count(md); k++)
            cJSON_AddStringToObject(meta, hlr_metadata_key(md, k), hlr_metadata_get(md, hlr_metadata_key(md, k)));
        cJSON_AddNumberToObject(o, "parameters", (double)hlr_model_param_count(s->model));
    }
    generation_release(g);
    return send_json(c, r, 200, root);
}

static enum MHD_Result healthz_route(struct MHD_Connection *c, request *r)
{
    generation *g = generation_acquire();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", g ? "ok" : "no models");
    cJSON_AddNumberToObject(o, "models", g ? g->n : 0);
    cJSON_AddNumberToObject(o, "inflight", atomic_load(&M.inflight));
    generation_release(g);
    return send_json(c, r, g ? 200 : 503, o);
}

static enum MHD_Result metrics_route(struct MHD_Connection *c, request *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return send_error(c, r, 500, "out of memory");
    fprintf(f, "# HELP hlr_requests_total HTTP requests answered, by route and status.\n"
               "# TYPE hlr_requests_total counter\n");
    for (int k = 0; k < N_ROUTES; k++)
        for (int s = 0; s < N_CODES; s++) {
            long long v = atomic_load(&M.requests[k][s]);
            if (v)
                fprintf(f, "hlr_requests_total{route=\"%s\",code=\"%d\"} %lld\n", route_names[k], codes[s], v);
        }
    fprintf(f, "# HELP hlr_request_duration_seconds Time from a request's arrival to its answer.\n"
               "# TYPE hlr_request_duration_seconds histogram\n");
    long long cum = 0;
    for (int b = 0; b <= N_LATENCY; b++) {
        cum += atomic_load(&M.latency[b]);
        if (b < N_LATENCY)
            fprintf(f, "hlr_request_duration_seconds_bucket{le=\"%g\"} %lld\n", latency_le[b], cum);
        else
            fprintf(f, "hlr_request_duration_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
    }
    fprintf(f, "hlr_request_duration_seconds_sum %.6f\nhlr_request_duration_seconds_count %lld\n",
            1e-6 * (double)atomic_load(&M.latency_us_sum), atomic_load(&M.latency_count));
    fprintf(f, "# HELP hlr_batch_size Requests run together in one batch.\n# TYPE hlr_batch_size histogram\n");
    cum = 0;
    for (int b = 0; b <= N_BATCH; b++) {
        cum += atomic_load(&M.batches[b]);
        if (b < N_BATCH)
            fprintf(f, "hlr_batch_size_bucket{le=\"%d\"} %lld\n", batch_le[b], cum);
        else
            fprintf(f, "hlr_batch_size_bucket{le=\"+Inf\"} %lld\n", cum);
    }
    fprintf(f, "hlr_batch_size_sum %lld\nhlr_batch_size_count %lld\n", atomic_load(&M.batch_items), cum);
    generation *g = generation_acquire();
    fprintf(f, "# HELP hlr_models_loaded Models being served.\n# TYPE hlr_models_loaded gauge\nhlr_models_loaded %d\n",
            g ? g->n : 0);
    generation_release(g);
    fprintf(f, "# HELP hlr_reloads_total Model reloads (SIGHUP), by result.\n# TYPE hlr_reloads_total counter\n"
               "hlr_reloads_total{result=\"ok\"} %lld\nhlr_reloads_total{result=\"failed\"} %lld\n",
            atomic_load(&M.reloads_ok), atomic_load(&M.reloads_failed));
    fprintf(f, "# HELP hlr_inflight_requests Requests being answered now.\n# TYPE hlr_inflight_requests gauge\n"
               "hlr_inflight_requests %d\n",
            atomic_load(&M.inflight));
    if (fclose(f) != 0) {
        free(buf);
        return send_error(c, r, 500, "out of memory");
    }
    return send_text(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len, MHD_RESPMEM_MUST_FREE);
}

/* ---- POST /v1/recognize ---- */

static int64_t be32(const unsigned char *p)
{
    return (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | p[3];
}

/* The picture of a request's body: PNG, or JSON {"width", "height", "pixels"} (values in [0, 1], white 1).
 * NULL after filling why. */
static hlr_tensor *body_picture(const request *r, char *why, size_t cap)
{
    if (!r->json) {
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        const unsigned char *b = (const unsigned char *)r->body;
        if (r->len < 8 || memcmp(b, sig, 8) != 0) {
            snprintf(why, cap, "the body is not a PNG image (no PNG signature)");
            return NULL;
        }
        /* refuse an absurd size from the header, before decoding anything */
        if (r->len >= 24 && !memcmp(b + 12, "IHDR", 4)) {
            int64_t w = be32(b + 16), h = be32(b + 20);
            if (w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS) {
                snprintf(why, cap, "the PNG is %lld x %lld pixels; at most %d a side and %d in all", (long long)w,
                         (long long)h, MAX_SIDE, MAX_PIXELS);
                return NULL;
            }
        }
        hlr_tensor *img = hlr_image_decode(r->body, r->len, 0);
        if (!img)
            snprintf(why, cap, "%s", hlr_last_error());
        return img;
    }
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    hlr_tensor *img = NULL;
    if (!o) {
        snprintf(why, cap, "malformed JSON (or nested deeper than %d) near byte %lld", CJSON_NESTING_LIMIT,
                 cJSON_GetErrorPtr() ? (long long)(cJSON_GetErrorPtr() - r->body) : -1LL);
        return NULL;
    }
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "width"), *h = cJSON_GetObjectItemCaseSensitive(o, "height"),
                *px = cJSON_GetObjectItemCaseSensitive(o, "pixels");
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(w) || !cJSON_IsNumber(h) || !cJSON_IsArray(px)) {
        snprintf(why, cap, "the JSON body must be an object with numbers \"width\" and \"height\" and an array "
                           "\"pixels\"");
    } else if (w->valuedouble != floor(w->valuedouble) || h->valuedouble != floor(h->valuedouble) ||
               w->valuedouble < 1 || h->valuedouble < 1 || w->valuedouble > MAX_SIDE || h->valuedouble > MAX_SIDE ||
               w->valuedouble * h->valuedouble > MAX_PIXELS) {
        snprintf(why, cap, "width %g and height %g: whole numbers from 1 to %d, at most %d pixels in all",
                 w->valuedouble, h->valuedouble, MAX_SIDE, MAX_PIXELS);
    } else if ((double)cJSON_GetArraySize(px) != w->valuedouble * h->valuedouble) {
        snprintf(why, cap, "\"pixels\" has %d values; width x height is %.0f", cJSON_GetArraySize(px),
                 w->valuedouble * h->valuedouble);
    } else {
        int64_t W = (int64_t)w->valuedouble, H = (int64_t)h->valuedouble, i = 0;
        img = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, H, W});
        float *d = img ? hlr_tensor_f32(img) : NULL;
        const cJSON *v;
        cJSON_ArrayForEach(v, px)
        {
            if (!d)
                break;
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) {
                snprintf(why, cap, "pixel %lld is not a number from 0 to 1 (grey, 1 = white)", (long long)i);
                hlr_tensor_free(img);
                img = NULL;
                break;
            }
            d[i++] = (float)v->valuedouble;
        }
        if (!d)
            snprintf(why, cap, "out of memory");
    }
    cJSON_Delete(o);
    return img;
}

/* Turn the picture into the model's input for one sample (job->input); 0, or -1 after filling why. */
static int prepare(const served *s, const hlr_tensor *img, job *j, char *why, size_t cap)
{
    j->input = malloc((size_t)s->in_numel * sizeof *j->input);
    if (!j->input) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    const int64_t h = hlr_tensor_dim(img, 1), w = hlr_tensor_dim(img, 2);
    if (s->kind == TEXT) {
        int64_t width;
        j->cut = example_line_canvas(img, s->lines, s->H, s->W, 0, j->input, &width);
        if (j->cut < 0) {
            snprintf(why, cap, "%s", hlr_last_error());
            return -1;
        }
        j->width = (int32_t)width;
        j->text = malloc((size_t)s->T * 4 + 1);
        j->char_conf = malloc((size_t)(s->T + 1) * sizeof *j->char_conf);
        if (!j->text || !j->char_conf) {
            snprintf(why, cap, "out of memory");
            return -1;
        }
        return 0;
    }
    j->probs = malloc((size_t)s->classes * sizeof *j->probs);
    if (!j->probs) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    /* As hlr-predict: a 28 x 28 picture is used as it is (light ink on black, as MNIST); any other size
     * gets the MNIST preprocessing (ink made bright, cropped, scaled to 20 x 20, centred). */
    j->pic_w = w, j->pic_h = h;
    j->place[0] = j->place[1] = 0.0, j->place[2] = j->place[3] = 1.0; /* used as it is */
    if (s->takes_mnist && !(h == 28 && w == 28)) {
        hlr_tensor *pre = hlr_image_preprocess_mnist_placed(img, 0, j->place);
        if (!pre) {
            snprintf(why, cap, "%s", hlr_last_error());
            return -1;
        }
        memcpy(j->input, hlr_tensor_f32(pre), (size_t)s->in_numel * sizeof *j->input);
        hlr_tensor_free(pre);
        return 0;
    }
    if (h * w != s->in_numel) {
        snprintf(why, cap, "the picture is %lld x %lld; model '%s' takes %lld values", (long long)w, (long long)h,
                 s->name, (long long)s->in_numel);
        return -1;
    }
    memcpy(j->input, hlr_tensor_f32(img), (size_t)s->in_numel * sizeof *j->input);
    return 0;
}

static enum MHD_Result start_job(struct MHD_Connection *c, request *r)
{
    char why[512];
    if (r->arriving) { /* no longer on its way: a batch need not wait for it */
        atomic_fetch_sub(&M.arriving, 1);
        r->arriving = 0;
    }
    hlr_tensor *img = body_picture(r, why, sizeof why);
    if (!img)
        return send_error(c, r, 400, "%s", why);
    r->gen = generation_acquire();
    if (!r->gen) {
        hlr_tensor_free(img);
        return send_error(c, r, 503, "no models are loaded");
    }
    served *s = &r->gen->m[r->model];
    job *j = &r->job;
    j->saliency = flag_arg(c, "saliency");
    if (j->saliency && s->kind != CLASSIFIER) {
        hlr_tensor_free(img);
        return send_error(c, r, 400, "saliency is drawn for classifiers; model '%s' reads text", s->name);
    }
    int rc = prepare(s, img, j, why, sizeof why);
    hlr_tensor_free(img);
    free(r->body); /* done with it: a waiting request holds only its input */
    r->body = NULL;
    if (rc != 0)
        return send_error(c, r, 400, "%s", why);
    /* Suspend before the batcher can resume: then a resume always finds the connection suspended. */
    r->state = WAITING;
    j->conn = c;
    j->queued_at = now_s();
    MHD_suspend_connection(c);
    atomic_fetch_add(&M.pending, 1);
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_signal(&s->cv); /* a waiting batcher counts again */
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
}

/* A probability with the float's 6 significant digits (not 17 of the double it was widened to). */
static void add_probability(cJSON *o, const char *key, double v)
{
    char buf[32];
    if (isfinite(v))
        snprintf(buf, sizeof buf, "%.6g", v);
    else
        snprintf(buf, sizeof buf, "null");
    cJSON_AddRawToObject(o, key, buf);
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static enum MHD_Result answer(struct MHD_Connection *c, request *r)
{
    const served *s = &r->gen->m[r->model];
    const job *j = &r->job;
    if (j->status != HLR_OK)
        return send_error(c, r, j->status == HLR_ENOMEM ? 503 : 500, "%s", j->error);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", s->name);
    if (s->kind == CLASSIFIER) {
        cJSON_AddItemToObject(o, "class", label_json(s, j->cls));
        cJSON_AddNumberToObject(o, "index", j->cls);
        add_probability(o, "confidence", j->confidence);
        cJSON *top = cJSON_AddArrayToObject(o, "top");
        int used[TOP_K] = {0};
        for (int k = 0; top && k < TOP_K && k < s->classes; k++) {
            int best = -1;
            for (int i = 0; i < s->classes; i++) {
                int taken = 0;
                for (int q = 0; q < k; q++)
                    taken |= used[q] == i;
                if (!taken && (best < 0 || j->probs[i] > j->probs[best]))
                    best = i;
            }
            used[k] = best;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToObject(e, "label", label_json(s, best));
            add_probability(e, "probability", j->probs[best]);
            cJSON_AddItemToArray(top, e);
        }
        if (j->saliency_png) {
            char *b64 = base64(j->saliency_png, j->saliency_len);
            if (b64)
                cJSON_AddStringToObject(o, "saliency_png", b64);
            free(b64);
        }
        if (j->overlay_png) {
            char *b64 = base64(j->overlay_png, j->overlay_len);
            if (b64)
                cJSON_AddStringToObject(o, "saliency_overlay_png", b64);
            free(b64);
        }
    } else {
        cJSON_AddStringToObject(o, "text", j->text);
        add_probability(o, "confidence", j->confidence);
        cJSON *chars = cJSON_AddArrayToObject(o, "characters");
        for (int k = 0, at = 0; chars && k < j->len; k++) {
            int n = 1;
            while (j->text[at + n] && ((unsigned char)j->text[at + n] & 0xC0) == 0x80)
                n++;
            char one[8] = {0};
            memcpy(one, j->text + at, (size_t)n);
            at += n;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "label", one);
            add_probability(e, "probability", j->char_conf[k]);
            cJSON_AddItemToArray(chars, e);
        }
        cJSON_AddBoolToObject(o, "cut", j->cut);
    }
    cJSON_AddNumberToObject(o, "batch", j->batch);
    cJSON_AddNumberToObject(o, "ms", round((now_s() - r->t0) * 1e5) / 100);
    return send_json(c, r, 200, o);
}

/* What a request said, safe to quote in an answer: printable ASCII, at most MAX_NAME characters. */
static const char *echo(const char *v, char shown[MAX_NAME + 1])
{
    size_t k = 0;
    for (; v[k] && k < MAX_NAME; k++)
        shown[k] = (v[k] >= 0x20 && v[k] < 0x7F && v[k] != '\'') ? v[k] : '?';
    shown[k] = '\0';
    return shown;
}

/* The first call for a request: route, method, authorization, model, type and size; GET routes answer here. */
static enum MHD_Result begin(struct MHD_Connection *c, request *r, const char *method)
{
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    switch (r->route) {
    case R_PAGE:
        if (!get)
            return send_error(c, r, 405, "%s / : the page is read with GET", method);
        return send_text(c, r, 200, "text/html; charset=utf-8", (char *)serve_page,
                         (size_t)(serve_page_end - serve_page), MHD_RESPMEM_PERSISTENT);
    case R_HEALTHZ:
    case R_METRICS:
    case R_MODELS:
        if (!get)
            return send_error(c, r, 405, "%s %s: use GET", method, route_names[r->route]);
        if (r->route == R_MODELS && !authorized(c))
            return send_error(c, r, 401, "this server needs 'Authorization: Bearer TOKEN' on /v1/");
        return r->route == R_HEALTHZ ? healthz_route(c, r)
               : r->route == R_METRICS ? metrics_route(c, r)
                                       : models_route(c, r);
    case R_OTHER:
        return send_error(c, r, 404, "no such route; try GET /, POST /v1/recognize, GET /v1/models, GET /healthz, "
                                     "GET /metrics");
    default:
        break;
    }
    if (strcmp(method, "POST") != 0)
        return send_error(c, r, 405, "%s /v1/recognize: send the picture with POST", method);
    if (!authorized(c))
        return send_error(c, r, 401, "this server needs 'Authorization: Bearer TOKEN' on /v1/");
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    if (!name && S.n == 1)
        name = S.names[0];
    if (!name)
        return send_error(c, r, 400, "say which model with ?model=NAME (see GET /v1/models)");
    r->model = -1;
    for (int i = 0; i < S.n; i++)
        if (!strcmp(name, S.names[i]))
            r->model = i;
    char shown[MAX_NAME + 1];
    if (r->model < 0)
        return send_error(c, r, 404, "no model named '%s' (see GET /v1/models)", echo(name, shown));
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (media_is(type, "image/png"))
        r->json = 0;
    else if (media_is(type, "application/json"))
        r->json = 1;
    else
        return send_error(c, r, 415, "Content-Type must be image/png or application/json, not %s%s%s",
                          type ? "'" : "missing", type ? echo(type, shown) : "", type ? "'" : "");
    /* A body announced over the limit: far over, refused at once; a little over, read and dropped so
     * that a client that sends before it reads still gets the answer. */
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long announced = len ? strtoull(len, NULL, 10) : 0;
    if (announced > 16ULL * (unsigned long long)opt.max_body)
        return send_error(c, r, 413, "the body is %llu bytes; at most %ld", announced, opt.max_body);
    r->arriving = 1;
    atomic_fetch_add(&M.arriving, 1);
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->t0 = now_s();
        r->route = route_of(url);
        *con_cls = r;
        atomic_fetch_add(&M.inflight, 1);
        return begin(c, r, method);
    }
    if (r->state == REPLIED) { /* answered early (413, 415, ...): the rest of the body is dropped */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        /* Over the limit: read on and drop the rest, so that the client, still sending, gets the 413 (a
         * socket closed on unread data resets the connection, and the answer is lost); a client that
         * sends far more is cut off at once. */
        if (r->len + n > (size_t)opt.max_body || r->dropped) {
            r->dropped += n;
            if (r->dropped > 16 * (size_t)opt.max_body)
                return send_error(c, r, 413, "the body is longer than %ld bytes", opt.max_body);
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return send_error(c, r, 503, "out of memory for the body");
            r->body = b, r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->state == RECEIVING && r->dropped)
        return send_error(c, r, 413, "the body is %zu bytes; at most %ld", r->len + r->dropped, opt.max_body);
    if (r->state == RECEIVING)
        return start_job(c, r);
    if (atomic_load(&r->job.done))
        return answer(c, r);
    return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    request *r = *con_cls;
    if (!r)
        return;
    (void)why;
    atomic_fetch_sub(&M.inflight, 1);
    request_free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(S.mhd_error, sizeof S.mhd_error, fmt, copy);
    va_end(copy);
    size_t n = strlen(S.mhd_error);
    while (n && (S.mhd_error[n - 1] == '\n' || S.mhd_error[n - 1] == '.'))
        S.mhd_error[--n] = '\0';
    if (opt.verbose)
        fprintf(stderr, PROG ": libmicrohttpd: %s\n", S.mhd_error);
}

/* ---- start, signals, reload, drain ---- */

static int sig_pipe[2];

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write(sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full of signals already: the main thread will act on those */
    }
    errno = saved;
}

static int parse_models(void)
{
    for (int i = 0; i < opt.n_models; i++) {
        const char *a = opt.models[i], *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : 0;
        if (!eq || n == 0 || n >= MAX_NAME || !eq[1]) {
            fprintf(stderr, PROG ": --model '%s': expected NAME=FILE (a name of 1 to %d characters)\n", a,
                    MAX_NAME - 1);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            if (!(a[k] >= 'a' && a[k] <= 'z') && !(a[k] >= 'A' && a[k] <= 'Z') && !(a[k] >= '0' && a[k] <= '9') &&
                a[k] != '-' && a[k] != '_' && a[k] != '.') {
                fprintf(stderr, PROG ": --model '%s': a name has letters, digits, '-', '_' and '.' only\n", a);
                return -1;
            }
        memcpy(S.names[i], a, n);
        S.names[i][n] = '\0';
        for (int k = 0; k < i; k++)
            if (!strcmp(S.names[k], S.names[i])) {
                fprintf(stderr, PROG ": --model: the name '%s' is given twice\n", S.names[i]);
                return -1;
            }
        S.paths[i] = eq + 1;
    }
    S.n = opt.n_models;
    return 0;
}

static int read_token(void)
{
    FILE *f = fopen(opt.token_file, "r");
    if (!f) {
        fprintf(stderr, PROG ": cannot read --token-file %s: %s\n", opt.token_file, strerror(errno));
        return -1;
    }
    char line[1024];
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t n = ok ? strcspn(line, "\r\n") : 0;
    line[n] = '\0';
    for (size_t k = 0; k < n; k++)
        if (line[k] <= ' ' || line[k] == 0x7F)
            n = 0;
    if (n < 8) {
        fprintf(stderr, PROG ": --token-file %s: its first line must be a token of 8 or more printable characters "
                        "without spaces\n",
                opt.token_file);
        return -1;
    }
    S.token = strdup(line);
    return S.token ? 0 : -1;
}

static void reload(void)
{
    char err[600];
    generation *g = generation_load(err, sizeof err);
    if (!g) {
        atomic_fetch_add(&M.reloads_failed, 1);
        fprintf(stderr, PROG ": reload failed, still serving the models loaded before: %s\n", err);
        return;
    }
    pthread_mutex_lock(&S.lock);
    generation *old = S.current;
    S.current = g;
    pthread_mutex_unlock(&S.lock);
    generation_release(old); /* freed when its last in-flight request is answered */
    atomic_fetch_add(&M.reloads_ok, 1);
    fprintf(stderr, PROG ": reloaded %d model%s\n", g->n, g->n == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
    const opt_spec specs[] = {
        {.name = "--model", .type = OPT_APPEND, .dest = opt.models, .hi = MAX_MODELS, .rest_count = &opt.n_models},
        OPT_NUM("--port", OPT_INT, &opt.port, 0, 65535),
        OPT_STR("--bind", &opt.bind),
        OPT_NUM("--threads", OPT_INT, &opt.threads, 1, 256),
        OPT_NUM("--compute-threads", OPT_INT, &opt.compute_threads, 1, 256),
        OPT_NUM("--batch", OPT_INT, &opt.batch, 1, 256),
        OPT_NUM("--wait-us", OPT_INT, &opt.wait_us, 0, 1000000),
        OPT_NUM("--max-body", OPT_LONG, &opt.max_body, 1024, 64L << 20),
        OPT_NUM("--timeout", OPT_INT, &opt.timeout, 1, 3600),
        OPT_NUM("--max-connections", OPT_INT, &opt.max_connections, 1, 100000),
        OPT_NUM("--drain", OPT_INT, &opt.drain, 0, 3600),
        OPT_STR("--token-file", &opt.token_file),
        OPT_FLAG_("--verbose", &opt.verbose),
    };
    int rc = parse_options(PROG, argc, argv, 1, specs, (int)(sizeof specs / sizeof specs[0]), NULL, 0, NULL);
    if (rc > 0) {
        usage(stdout);
        return 0;
    }
    if (rc == 0 && opt.n_models == 0) {
        fprintf(stderr, PROG ": no --model NAME=FILE given (see hlr-serve --help)\n");
        rc = -1;
    }
    if (rc != 0 || parse_models() != 0 || (opt.token_file && read_token() != 0))
        return 2;

    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)opt.port)};
    int v6 = 0;
    if (inet_pton(AF_INET, opt.bind, &a4.sin_addr) != 1) {
        if (inet_pton(AF_INET6, opt.bind, &a6.sin6_addr) != 1) {
            fprintf(stderr, PROG ": --bind '%s' is not an IPv4 or IPv6 address\n", opt.bind);
            return 2;
        }
        v6 = 1;
    }

    /* Signals may land on any thread (OpenBLAS starts its own before main): each handler writes the
     * signal's number into a pipe, which the main thread reads. */
    if (pipe(sig_pipe) != 0) {
        fprintf(stderr, PROG ": cannot make a pipe for signals: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (opt.compute_threads && hlr_set_num_threads(opt.compute_threads) != HLR_OK) {
        fprintf(stderr, PROG ": %s\n", hlr_last_error());
        return 1;
    }
    char err[600];
    S.current = generation_load(err, sizeof err);
    if (!S.current) {
        fprintf(stderr, PROG ": %s\n", err);
        free(S.token);
        return 1;
    }
    /* poll(), not epoll: with epoll and internal threads, MHD_quiesce_daemon() (the drain on SIGTERM) races a
     * worker removing the listen socket from its epoll set, and libmicrohttpd 0.9.75 then aborts the process
     * ("Failed to remove listen FD from epoll set", seen once in CI); with poll() quiescing signals each
     * worker instead, and the sets are rebuilt on every round. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    S.daemon = MHD_start_daemon(
        flags, (uint16_t)opt.port, NULL, NULL, handle, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR,
        v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)opt.threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opt.timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)opt.max_connections, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (!S.daemon) {
        fprintf(stderr, PROG ": cannot listen on %s port %d: %s\n", opt.bind, opt.port,
                S.mhd_error[0] ? S.mhd_error : strerror(errno));
        generation_free(S.current);
        free(S.token);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : opt.port;
    printf("hlr-serve: listening on http://%s%s%s:%d/ with %d model%s:", v6 ? "[" : "", opt.bind, v6 ? "]" : "",
           port, S.n, S.n == 1 ? "" : "s");
    for (int i = 0; i < S.n; i++)
        printf(" %s (%s)", S.names[i], S.current->m[i].kind == TEXT ? "text" : "classifier");
    printf("\n");
    fflush(stdout);

    for (;;) {
        unsigned char sig;
        ssize_t got = read(sig_pipe[0], &sig, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 1 && sig == SIGHUP) {
            reload();
            continue;
        }
        break; /* SIGTERM, SIGINT (or the pipe failed: stop all the same) */
    }
    /* Drain: stop accepting, let the requests in flight finish, then stop. */
    MHD_socket listener = MHD_quiesce_daemon(S.daemon);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    const double until = now_s() + opt.drain;
    while (atomic_load(&M.inflight) > 0 && now_s() < until)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    int left = atomic_load(&M.inflight);
    /* a batcher must not resume a connection MHD_stop_daemon has closed: let the batches end first */
    while (atomic_load(&M.pending) > 0)
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    MHD_stop_daemon(S.daemon);
    generation_release(S.current);
    free(S.token);
    if (left)
        fprintf(stderr, PROG ": stopped with %d request%s unanswered after --drain %d s\n", left, left == 1 ? "" : "s",
                opt.drain);
    else
        fprintf(stderr, PROG ": stopped\n");
    return left ? 1 : 0;
}

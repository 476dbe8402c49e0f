/*
 * internal.h -- what the library's own files share.  Nothing here is part of
 * the public interface; none of these names is exported from libhlr.so.
 */
#ifndef HLR_INTERNAL_H
#define HLR_INTERNAL_H

#define HLR_BUILDING_LIBRARY 1
#include "hlr/hlr.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HLR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HLR_PRINTF(a, b)
#endif

/* ---- errors and logging (core.c) ---- */

/* Record a message for hlr_last_error() and return code. */
hlr_status hlr__fail(hlr_status code, const char *fmt, ...) HLR_PRINTF(2, 3);
/* Open path to read, refusing (HLR_EIO, naming fn and path) what is not a
 * regular file -- a folder, a device, a FIFO, whose open or read could block
 * forever -- without blocking; the descriptor is then blocking.  Returns the
 * descriptor (and the size when size is not NULL), or -1 with the error set. */
int hlr__open_regular(const char *path, const char *fn, int64_t *size);
/* Log through the caller's callback, if any. */
void hlr__log(hlr_log_level level, const char *fmt, ...) HLR_PRINTF(2, 3);
/* Read HLR_NUM_THREADS once and apply the thread count to OpenBLAS. */
void hlr__threads_init(void);

/* ---- threads (parallel.c) ---- */

/* Work on indices [begin, end) of a loop. */
typedef void (*hlr_task_fn)(void *ctx, int64_t begin, int64_t end);
/* Run fn over [0, n) split into contiguous parts of at least `grain`
 * indices, one per pool thread (the caller runs the first); returns when
 * all are done.  Serial when the pool has one thread, n is small, or the
 * pool is busy with another application thread's job. */
void hlr__parallel_for(int64_t n, int64_t grain, hlr_task_fn fn, void *ctx);
/* Memory-bound passes (pooling, batch norm) over fewer floats than this run on the calling thread: a
 * hand-off to the pool costs more (one image's batchnorm1d of 128 values, its last 7x7 pooling). */
#define HLR__SERIAL_FLOATS ((int64_t)1 << 14)
/* A team: fn(ctx, part, parts) on `parts` threads at once, part 0 .. parts - 1 (parts <= want, the
 * threads the pool gives; 1, the caller alone, when it runs serially, as hlr__parallel_for), for work
 * whose parts wait for one another at a barrier, such as a recurrent layer's steps. */
typedef void (*hlr_team_fn)(void *ctx, int part, int parts);
void hlr__parallel_team(int want, hlr_team_fn fn, void *ctx);
/* A barrier for the `parts` parts of one team, zero-initialised before the team starts: each part's
 * writes before hlr__barrier_wait are seen by every part after it.  Parts poll while they wait. */
typedef struct hlr_barrier {
    _Atomic int arrived;
    _Atomic unsigned phase;
} hlr_barrier;
void hlr__barrier_wait(hlr_barrier *b, int parts);
/* Make the pool `threads` threads strong (the caller counts as one). */
void hlr__pool_resize(int threads);
int hlr__pool_threads(void);

/* ---- memory (core.c) ----
 * Every allocation of the library goes through these, so a test can count
 * them (hlr__alloc_count) and prove the per-batch loop allocates nothing. */
void *hlr__malloc(size_t n);
void *hlr__calloc(size_t count, size_t size);
void *hlr__realloc(void *p, size_t n);
void hlr__free(void *p);
extern _Atomic long hlr__alloc_count;
/* Allocate and set HLR_ENOMEM with a message naming what was being allocated. */
void *hlr__alloc_or_fail(size_t count, size_t size, const char *what);
/* A ceiling, for the calling thread, on the bytes hlr__malloc and hlr__calloc
 * hand out from now on (0 lifts it).  The model-file reader sets it while it
 * builds layers from a file, so a small hostile file cannot make the library
 * allocate gigabytes.  hlr__alloc_limit_hit() tells whether the ceiling has
 * refused an allocation since it was set. */
void hlr__alloc_limit(size_t bytes);
int hlr__alloc_limit_hit(void);

/* Multiply with overflow check: returns 0 and sets *out on success. */
int hlr__mul_overflows(int64_t a, int64_t b, int64_t *out);

/* ---- random numbers (rng.c): xoshiro256**, seeded through splitmix64 ---- */

typedef struct hlr_rng {
    uint64_t s[4];
} hlr_rng;

void hlr__rng_seed(hlr_rng *r, uint64_t seed);
uint64_t hlr__rng_next(hlr_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float hlr__rng_uniform(hlr_rng *r);
/* Uniform integer in [0, n), unbiased. */
uint64_t hlr__rng_below(hlr_rng *r, uint64_t n);
/* Standard normal (Box-Muller, double precision). */
double hlr__rng_normal(hlr_rng *r);

/* ---- shapes and tensors (tensor.c) ---- */

typedef struct hlr_shape {
    int ndim;
    int64_t d[HLR_MAX_DIMS];
} hlr_shape;

int64_t hlr__shape_numel(const hlr_shape *s);
/* "(1, 28, 28)" into buf. */
const char *hlr__shape_str(const hlr_shape *s, char *buf, size_t cap);
/* Carving one allocation (an arena) into a layer's per-batch buffers: layout functions call
 * hlr__take for each buffer in turn, first with base NULL to count the floats, then with the
 * arena to set the pointers.  Each block starts 64 bytes after the last (16 floats), so every
 * block is aligned like the arena. */
typedef struct hlr__carve {
    float *base; /* NULL: only count */
    int64_t used;
} hlr__carve;
static inline void hlr__take(hlr__carve *c, float **ptr, int64_t count)
{
    *ptr = c->base ? c->base + c->used : NULL;
    c->used += (count + 15) / 16 * 16;
}

/* Room for any shape a model builds: dimensions of at most 10 digits (a sample holds at most
 * 2^31 values), so "(" + 7 x 10 digits + 6 x ", " + ")" = 84 characters and the NUL. */
#define HLR__SHAPE_STR 96

enum { HLR_TENSOR_OWNS_DATA = 1, HLR_TENSOR_BORROWED = 2 };

struct hlr_tensor {
    hlr_dtype dtype;
    int ndim;
    int64_t shape[HLR_MAX_DIMS];
    int64_t numel;
    void *data;
    unsigned flags;
};

/* Check that t is a float32 tensor of ndim dims; name is used in the message. */
hlr_status hlr__check_tensor(const hlr_tensor *t, hlr_dtype dtype, const char *name);

/* ---- layers (layers/layer.c) ---- */

#define HLR_MAX_PARAMS 32 /* a 4-layer bidirectional LSTM has 32 */
#define HLR_PARAM_NAME_MAX 48

typedef struct hlr_param {
    char name[HLR_PARAM_NAME_MAX];
    hlr_tensor value; /* borrowed view; data owned by the layer */
    hlr_tensor grad;  /* same shape */
    int buffer;       /* not trained (batch norm's running statistics): optimizers skip it */
} hlr_param;

/*
 * A layer's configuration: its hyper-parameters as named integers and
 * floats (doubles hold every float exactly).  Model files store it, and
 * from_config rebuilds the layer from it through the public constructor,
 * which validates every value.
 */
#define HLR_CONFIG_MAX 16
#define HLR_CONFIG_KEY_MAX 24
typedef struct hlr_config_item {
    char key[HLR_CONFIG_KEY_MAX];
    int is_float;
    int64_t i;
    double f;
} hlr_config_item;

typedef struct hlr_config {
    int n;
    hlr_config_item item[HLR_CONFIG_MAX];
} hlr_config;

void hlr__config_int(hlr_config *c, const char *key, int64_t v);
void hlr__config_float(hlr_config *c, const char *key, double v);
/* 0 and *v set when key exists with that type; -1 otherwise. */
int hlr__config_get_int(const hlr_config *c, const char *key, int64_t *v);
int hlr__config_get_float(const hlr_config *c, const char *key, double *v);
/* An int that must lie in [lo, hi]: 0 on success, else -1 with HLR_EFORMAT set. */
int hlr__config_int_in(const hlr_config *c, const char *type, const char *key, int64_t lo, int64_t hi, int *out);
/* A float config value: 0 on success, else -1 with HLR_EFORMAT set. */
int hlr__config_float_of(const hlr_config *c, const char *type, const char *key, float *out);

/* The valid length along an axis after a window of extent k (dilation
 * included) with this stride and padding, of one whose valid length before
 * is len: the windows that start inside it, in [1, out_max]. */
static inline int32_t hlr__window_length(int64_t len, int64_t k, int64_t stride, int64_t pad, int64_t out_max)
{
    int64_t n = len + 2 * pad >= k ? (len + 2 * pad - k) / stride + 1 : 1;
    return (int32_t)(n < 1 ? 1 : n > out_max ? out_max : n);
}

/* What a layer sees of the pass in progress. */
typedef struct hlr_pass {
    int64_t batch; /* N of this batch */
    int training;  /* dropout and friends active */
    int no_backward; /* inference no backward follows (hlr__model_infer): a layer may skip what only
                        backward reads (a fused pooling's winners), and a batch norm is folded into
                        the convolution before it (hlr_layer_ops.fold); hlr_model_input_gradient
                        differentiates an inference pass, which keeps every layer as it is */
    hlr_rng *rng;  /* the model's generator */
    const int32_t *lengths; /* per sample, its valid time steps (hlr_model_set_lengths); NULL: all */
    /* Data-parallel training with synchronised batch norm (hlr_distributed.sync_batchnorm): a
     * training pass's batch statistics are over every process's batch; a failed collective
     * leaves its code in *sync_status.  NULL: this process's batch alone. */
    const hlr_distributed *sync;
    hlr_status *sync_status;
} hlr_pass;

/*
 * The internal interface every layer implements.  Shapes leave out the batch
 * dimension; buffers hold pass->batch samples, contiguous.
 */
typedef struct hlr_layer_ops {
    const char *type;
    /* Nonzero when the output is the input reinterpreted (flatten): the
     * model passes the same buffer on, and forward/backward are not called. */
    int alias;
    /* Optional, for layers that can do the work of the layers after them
     * (fusion): called once every layer is built, with the n layers that
     * follow this one, it returns how many of them, from the first, this
     * layer takes over (0: none).  The model then treats those as aliases
     * (no buffer, forward or backward of their own), and this layer's
     * buffer holds the last one's output.  Results must be bit-identical
     * to running the layers one by one (hlr__model_no_fusion skips the
     * hook; tests compare both ways). */
    int (*absorb)(hlr_layer *l, hlr_layer *const *next, int n);
    /* Optional, for layers that can take the batch normalisation after them
     * into their own weights and bias in inference (conv2d): called once
     * every layer is built and fused, with the layer that follows; nonzero
     * when this layer will.  The model then sets l->fold and next->folded,
     * and an inference pass (hlr_pass.no_backward) calls this layer's
     * forward with the batch norm's output buffer (its fused ReLU and
     * pooling included) and skips the batch norm.  Unlike fusion this is
     * not bit-identical: the results equal the layer-by-layer pass within
     * float rounding (tests compare both ways).  Training, and inference
     * that a backward follows, compute the layers one by one. */
    int (*fold)(hlr_layer *l, hlr_layer *next);
    /* Nonzero when inference computes each sample's output from that sample
     * alone and leaves nothing a later call reads (a recurrent layer's final
     * state, attention weights): a model of such layers only may run a large
     * inference batch a slice at a time (hlr__model_infer). */
    int per_sample;
    /* Optional, for composite layers (transformer_encoder): the i-th layer
     * inside this one, NULL past the last. */
    hlr_layer *(*sublayer)(const hlr_layer *l, int i);
    /* Optional: the storage of params[].value/grad was re-pointed (an
     * inference clone sharing its original's parameters): a composite layer
     * whose sub-layers view that storage points them at it again. */
    void (*params_moved)(hlr_layer *l);
    /* Nonzero when the layer reads int32 token ids (embedding): it must be
     * the first layer, the model's input is then an HLR_I32 tensor, and its
     * bytes reach forward() unchanged (int32 and float are both 4 bytes;
     * the layer reads them through an int32_t pointer). */
    int int_input;
    /* Optional: check that a pass of `batch` samples can run (a caller's
     * initial state has that batch; token ids are in range).  input is the
     * model's input for the first layer, NULL for the others.  The model
     * calls it before every forward a caller starts; errors name the layer. */
    hlr_status (*check_pass)(const hlr_layer *l, int64_t batch, const void *input);
    /* Validate the input shape, set the output shape, create and initialise
     * parameters (hlr__layer_add_param).  Errors name the layer. */
    hlr_status (*build)(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng);
    /* Optional: size per-batch buffers for up to max_batch samples. */
    hlr_status (*plan)(hlr_layer *l, int64_t max_batch);
    void (*forward)(hlr_layer *l, const hlr_pass *p, const float *x, float *y);
    /* dy -> dx (dx NULL when nobody needs it) and parameter gradients
     * (overwritten, not accumulated).  x and y are the forward's. */
    void (*backward)(hlr_layer *l, const hlr_pass *p, const float *x, const float *y, const float *dy,
                     float *dx);
    /* Optional: free what the layer allocated beyond its parameters. */
    void (*destroy)(hlr_layer *l);
    /* Optional, for layers that shrink or stretch the time axis (a (C, H, W)
     * input's width: convolution, pooling): out[i] = the valid length after
     * the layer of a sample whose valid length before it is in[i], in
     * [1, the output's length]; in and out may be the same array.  NULL:
     * lengths pass through unchanged. */
    void (*map_lengths)(const hlr_layer *l, const int32_t *in, int32_t *out, int64_t n);
    /* Optional (none for layers without hyper-parameters): describe the
     * layer's configuration. */
    void (*get_config)(const hlr_layer *l, hlr_config *c);
    /* Make a new, unbuilt layer of this type from a configuration (NULL
     * with an error set when it is missing a key or holds a bad value). */
    hlr_layer *(*from_config)(const hlr_config *c);
} hlr_layer_ops;

struct hlr_layer {
    const hlr_layer_ops *ops;
    hlr_model *owner;   /* NULL until added to a model */
    int index;          /* position in the model */
    int built;
    hlr_shape in, out;  /* one sample */
    int absorbs;        /* how many of the following layers this one does (ops->absorb) */
    int absorbed;       /* done by a layer before this one (its ops->absorb): an alias */
    /* The absorb hook's state for the layers that apply a ReLU themselves
     * (hlr__absorb_relu: conv2d, dense, batch norm). */
    int fuse_relu;      /* this layer applies the next layer's ReLU and masks dy by y > 0 itself */
    int fuse_pool;      /* ... and the 2x2 max pooling after it: forward writes the pooled output
                         * (and which element of each window won), backward reads the pooled
                         * output and gradient */
    hlr_layer *fold;    /* the batch norm this layer folds into itself in inference (ops->fold) */
    int folded;         /* a batch norm the layer before folds in: no forward of its own in inference */
    int64_t in_size, out_size;
    int frozen;         /* hlr_layer_set_trainable(l, 0): optimizers leave its parameters alone */
    /* Whose parameter storage this layer's tensors view (a clone's layer: the original's; a block's
     * sub-layer: the block), NULL for its own.  hlr__layer_exposed() follows the chain. */
    hlr_layer *origin;
    _Atomic int exposed; /* hlr_layer_param() handed out a view of the storage: the caller may write it */
    int nparams;
    hlr_param params[HLR_MAX_PARAMS];
};

/* Allocate a layer struct of `size` bytes (>= sizeof(hlr_layer)), zeroed. */
hlr_layer *hlr__layer_alloc(const hlr_layer_ops *ops, size_t size);
/* Add a zeroed parameter and its gradient of the given shape. */
hlr_status hlr__layer_add_param(hlr_layer *l, const char *name, int ndim, const int64_t *shape);
/* Add a buffer: stored and loaded like a parameter, never trained. */
hlr_status hlr__layer_add_buffer(hlr_layer *l, const char *name, int ndim, const int64_t *shape);
/* Free every parameter (a failed build undoes itself with this). */
void hlr__layer_clear_params(hlr_layer *l);
/*
 * Forms a layer derives from its weights and keeps between passes (Winograd's transformed filters, a
 * folded batch norm, a transposed W_hh) are made again only when the weights change.  Two ways tell:
 *  - the weight generation, one count for the process, which every writer of parameters inside the
 *    library advances (hlr__weights_written: an optimizer step, batch norm's running statistics in
 *    training, a build, fit's restore of its best weights, a broadcast, a load or an import);
 *  - comparing the values with a copy of those the form was made from, which catches every writer.
 * A form made at generation g is used without a look while the generation is still g and nobody can
 * write the layer's storage behind the library's back (hlr__layer_exposed: a view from
 * hlr_layer_param()).  Otherwise the values are compared.
 */
typedef struct hlr_weights_seen {
    uint64_t generation; /* the weight generation when the copy was last checked */
    int valid;           /* the copy holds what the form was made from */
} hlr_weights_seen;
/* Advance the weight generation: called by a writer of parameters once it has written them (release
 * order: a pass that sees the new generation sees the writes; one running at the same time as the
 * writer is a data race the library's threading rules exclude anyway). */
void hlr__weights_written(void);
/* The weight generation now (core.c). */
uint64_t hlr__weights_generation(void);
/* Nonzero when a caller may hold a view of l's parameter storage (of its own, or of its origin's). */
int hlr__layer_exposed(const hlr_layer *l);
/* Nonzero when the form must be made again: s is not valid or w (n floats of layer l) differs from seen,
 * the copy of the weights the form was last made from; seen then takes w and s becomes valid.  Zero
 * without a look at the values when l is not exposed and the generation has not moved since s's last
 * check.  (Built with HLR_CHECK_WEIGHT_WRITES, as `make sanitize` builds, it looks anyway and stops the
 * process when a writer forgot hlr__weights_written.) */
int hlr__weights_changed(const hlr_layer *l, hlr_weights_seen *s, float *seen, const float *w, int64_t n);
/* hlr_layer_param() for the library's own writers (an import): no view leaves it, so l is not marked
 * exposed; the writer calls hlr__weights_written(). */
hlr_tensor *hlr__layer_param_value(hlr_layer *l, const char *name);
/* Build l for a sample of shape in, as a model does (and a composite layer for the layers inside it):
 * the shapes and sizes set, ops->build called, an empty or too many-dimensional output refused;
 * the output shape into *out.  On failure l holds no parameters. */
hlr_status hlr__layer_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng);
/* The data of parameter i and its gradient. */
static inline float *hlr__param(hlr_layer *l, int i) { return (float *)l->params[i].value.data; }
static inline float *hlr__grad(hlr_layer *l, int i) { return (float *)l->params[i].grad.data; }
/* Fill with U(-bound, bound). */
void hlr__init_uniform(float *w, int64_t n, float bound, hlr_rng *rng);
/* What the constructors of layers with flags and a dropout check (attention, transformer encoder,
 * LSTM, GRU): HLR_EINVAL naming fn for a flag outside known (known_names lists them) or a dropout
 * outside [0, 1). */
hlr_status hlr__check_flags_dropout(const char *fn, int flags, int known, const char *known_names, float dropout);
/* Fail with HLR_ESHAPE, naming the layer: "dense (layer 2): ...". */
hlr_status hlr__layer_fail(const hlr_layer *l, hlr_status code, const char *fmt, ...) HLR_PRINTF(3, 4);

/* The (steps, dim) table a built positional_encoding layer adds (layers/positional_encoding.c): its
 * learned weight's first rows, or the sinusoids; l must be one. */
const float *hlr__positional_encoding_table(hlr_layer *l);

/* The registry of layer types (layers/registry.c). */
const hlr_layer_ops *hlr__layer_ops_find(const char *type);
/* Registered type i (0-based), NULL past the last: tests check that each round-trips. */
const hlr_layer_ops *hlr__layer_ops_at(size_t i);

/* ---- model internals used by fit.c (model.c) ---- */

/* Before hlr_model_build(): keep every ReLU a layer of its own instead of
 * fusing it into the layer before (tests compare both ways). */
void hlr__model_no_fusion(hlr_model *m);
/* Before hlr_model_build(): compute this conv2d layer by im2col and GEMM
 * even where it would run Winograd's algorithm (tests compare both ways). */
void hlr__conv2d_no_winograd(hlr_layer *l);
/* Nonzero for a max pooling with a 2x2 window, stride 2 and no padding. */
int hlr__pool2d_is_max2x2(const hlr_layer *l);
/* The absorb hook of a layer that can apply a ReLU to its own output
 * (layers/activation.c): takes a "relu" layer that follows it (sets
 * l->fuse_relu), and when can_pool and its output is (C, H, W) with even H
 * and W, a 2x2 max pooling right after that ReLU too (l->fuse_pool).
 * Returns the number of layers taken, 0 to 2. */
int hlr__absorb_relu(hlr_layer *l, hlr_layer *const *next, int n, int can_pool);
/* The channels of a batchnorm2d layer, 0 for any other layer. */
int hlr__batchnorm2d_channels(const hlr_layer *l);
/* A batch norm's inference as y = x a + shift per channel (a = weight / sqrt(running_var + eps),
 * shift = bias - running_mean a), the same floats its own inference pass uses. */
void hlr__batchnorm_affine(hlr_layer *l, float *a, float *shift);
/* Make sure buffers hold `batch` samples (allocates only when it grows). */
hlr_status hlr__model_plan(hlr_model *m, int64_t batch);
/* Forward on raw input of `batch` samples; returns the output buffer (borrowed). */
const float *hlr__model_forward_raw(hlr_model *m, const float *x, int64_t batch, int training);
/* Inference on a planned batch, as hlr__model_forward_raw(m, x, batch, 0), a slice of the batch at a
 * time when that keeps the activations in cache (model.c says when); the layers' buffers then hold
 * the last slice only, so a caller that reads them after (hlr_model_input_gradient) must use
 * hlr__model_forward_raw. */
const float *hlr__model_infer(hlr_model *m, const float *x, int64_t batch);
/* Samples per slice of hlr__model_infer, or INT64_MAX: this model runs every batch whole. */
int64_t hlr__model_infer_slice(const hlr_model *m);
/* The valid lengths of the last forward's output sequences when lengths were set for its batch, else NULL. */
const int32_t *hlr__model_out_lengths(const hlr_model *m, int64_t batch);
/* Backward from dy (batch x out_size). */
void hlr__model_backward_raw(hlr_model *m, const float *dy, float *dx);
/* HLR_I32 when the first layer reads token ids, else HLR_F32. */
hlr_dtype hlr__model_in_dtype(const hlr_model *m);
/* Before a forward of `batch` samples of input x: the lengths set must be
 * for that batch, and every layer's check_pass must agree (fn names the caller). */
hlr_status hlr__model_check_pass(hlr_model *m, int64_t batch, const void *x, const char *fn);
/* HLR_ESHAPE, naming fn and the output shape, unless the built model's
 * output is one vector of class scores per sample, (N, C): what fit,
 * evaluate, predict and cross-entropy training need. */
hlr_status hlr__model_check_classifier(const hlr_model *m, const char *fn);
/* t must be dtype with shape (batch, *shape) (any batch when batch < 0):
 * returns the batch, or a negative status with a message giving both shapes
 * ("fn: what has shape (2, 5), expected (N, 4)"). */
int64_t hlr__check_batch(const hlr_tensor *t, hlr_dtype dtype, const hlr_shape *shape, int64_t batch, const char *fn,
                         const char *what);

/* ---- CTC (ctc.c) ---- */

/* *doubles = the workspace of the CTC loss over N samples of (T, C) logits and targets of S (-1 on overflow). */
int hlr__ctc_work_doubles(int64_t N, int64_t T, int64_t C, int64_t S, int64_t *doubles);
/* The model's CTC loss (HLR_LOSS_CTC) over out (N, T, C): blank 0, torch's mean reduction (each loss over
 * its target length, then the mean), zero_infinity; in_len NULL: T each; targets (N, S), each row's labels
 * (in [1, C), checked by the caller) then negative padding.  dy receives the gradient. */
double hlr__ctc_model_loss(const float *out, int64_t N, int64_t T, int64_t C, const int32_t *in_len,
                           const int32_t *targets, int64_t S, double *work, float *dy);
/* Best-path decodings against targets: label edits, reference labels, strings read right. */
typedef struct hlr__ctc_tally {
    int64_t edits, chars, right, strings;
} hlr__ctc_tally;
void hlr__ctc_score(const float *out, int64_t N, int64_t T, int64_t C, const int32_t *in_len, const int32_t *targets,
                    int64_t S, double *work, hlr__ctc_tally *tally);

/* HLR_ESHAPE naming fn unless the built model's output is (T, C) with C >= 2: what CTC needs. */
hlr_status hlr__model_check_ctc(const hlr_model *m, const char *fn);
/* The model's CTC workspace for batch samples and targets of S, grown when needed (NULL: HLR_ENOMEM set). */
double *hlr__model_ctc_work(hlr_model *m, int64_t batch, int64_t S, const char *fn);
/* HLR_EINVAL naming fn unless each of n rows of S is labels in [1, C) then only negative padding. */
hlr_status hlr__check_ctc_targets(const int32_t *t, int64_t n, int64_t S, int64_t C, const char *fn);

/* ---- model files, metadata, clones (modelfile.c, modelfile_read.c, metadata.c, clone.c) ---- */

struct hlr_metadata {
    char *dataset; /* NULL when none */
    int nclasses;
    char **classes;
    int nkeys, keys_cap;
    char **keys, **values;
    int nhistory, history_cap;
    hlr_epoch_stats *history;
};
void hlr__metadata_clear(hlr_metadata *md);
/* Make room for n more epoch records: one allocation, every time (fit's set-up). */
hlr_status hlr__metadata_reserve_history(hlr_metadata *md, int n);
/* Append one epoch record (hlr_model_fit calls it; no allocation after a reserve). */
hlr_status hlr__metadata_add_epoch(hlr_metadata *md, const hlr_epoch_stats *s);

/* The raw output (logits) of every sample of d, n x out_size floats into out, in inference passes
 * of batch samples (predict.c). */
hlr_status hlr__model_logits(hlr_model *m, const hlr_dataset *d, int64_t batch, float *out, const char *fn);
/* The temperature in force: 1 when never set (predict.c). */
double hlr__model_temperature(const hlr_model *m);
/* hlr_model_predict's probabilities of n rows of c logits: softmax(logits / T), T the model's
 * temperature (plain softmax at 1); probs may be logits (predict.c). */
void hlr__model_probabilities(const hlr_model *m, const float *logits, int64_t n, int64_t c, float *probs);
/* hlr_model_input_gradient's checks (m, x and grad not NULL): m a built classifier of float32 input that
 * keeps gradients, x and grad (N, input shape), targets in range; the buffers planned for N (model.c). */
hlr_status hlr__model_input_gradient_check(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int of_loss,
                                          const hlr_tensor *grad, const char *fn);
/* hlr_model_input_gradient's work, checks done and buffers planned for n (model.c). */
void hlr__model_input_gradient_raw(hlr_model *m, const float *x, int64_t n, const int32_t *targets, int of_loss,
                                   float *grad);
/* HLR_EINVAL naming fn unless o's values are in range (attack.c). */
hlr_status hlr__attack_check(const hlr_attack_options *o, const char *fn);
/* The attack of hlr_model_attack on n samples of per floats, checks done and buffers planned: x into adv,
 * grad a scratch of n * per floats, the random start from rng (attack.c). */
void hlr__attack(hlr_model *m, const float *x, int64_t n, int64_t per, const int32_t *labels,
                 const hlr_attack_options *o, float *adv, float *grad, hlr_rng *rng);
/* Grad-CAM's ingredients: an inference forward of x (n samples), then the gradient of each sample's
 * class score (targets[i], or the arg-max) back to layer k's output: that output into act, the
 * gradient into grad (n x the layer's buffer, a fused pooling's output for a layer that does one),
 * the per-sample shape of both into *shape (model.c). */
hlr_status hlr__model_layer_gradient(hlr_model *m, const float *x, int64_t n, const int32_t *targets, int k,
                                     float *act, float *grad, hlr_shape *shape, const char *fn);
/* The floats of every parameter and buffer of the model's layers. */
int64_t hlr__model_param_floats(const hlr_model *m);
/* ---- data-parallel training (distributed.c) ---- */

/* HLR_EINVAL naming fn unless d is complete and consistent. */
hlr_status hlr__dist_check(const hlr_distributed *d, const char *fn);
/* The model's fused buffer, large enough for every parameter (allocated once): NULL + HLR_ENOMEM. */
float *hlr__dist_fused(hlr_model *m, const char *fn);
/* hlr_model_broadcast_parameters / hlr_model_allreduce_gradients without the argument checks. */
hlr_status hlr__dist_broadcast(hlr_model *m, const hlr_distributed *d, const char *fn);
hlr_status hlr__dist_allreduce_grads(hlr_model *m, const hlr_distributed *d, const char *fn);
/* st unchanged when HLR_OK; otherwise an error naming fn and what failed (a collective's own code, or HLR_EIO). */
hlr_status hlr__dist_failed(hlr_status st, const char *fn, const char *what);

/* HLR_ESTATE, naming fn, when m is a clone (clones serve inference only). */
hlr_status hlr__model_check_trainable(const hlr_model *m, const char *fn);

/* ---- the settings a fit trained with (fit.c; model files keep them in FITS) ---- */

typedef struct hlr__fit_recipe {
    int batch_size, shuffle, schedule_per_batch, augment_shift;
    double validation_split;
    hlr_augment augment;
} hlr__fit_recipe;

/* ---- optimizer state for model files (optim.c) ---- */

/* The optimizers; the numbers are the ones model files store. */
typedef enum hlr__opt_kind { HLR__OPT_SGD = 0, HLR__OPT_ADAM = 1, HLR__OPT_ADAMW = 2 } hlr__opt_kind;

typedef struct hlr_optimizer_desc {
    hlr__opt_kind kind;
    float lr, momentum, beta1, beta2, eps, weight_decay, clip_norm;
    int nesterov;
    int schedule, warmup_steps;
    double sched_a, sched_b, warmup_start;
    int64_t sched_pos, steps;
    uint64_t bound;         /* the serial of the model it follows (hlr__model_serial), 0 until its first step */
    int nstate;             /* trainable tensors it keeps state for */
    int nmoments;           /* buffers per tensor: 0, 1 (SGD momentum) or 2 (Adam) */
    float *const *m1, *const *m2; /* per tensor, borrowed; NULL when absent */
} hlr_optimizer_desc;
void hlr__optimizer_describe(const hlr_optimizer *o, hlr_optimizer_desc *d);
/* A new optimizer with d's kind, hyper-parameters, clipping and schedule (NULL, error set, on a bad one):
 * what a model file's reader makes before hlr__optimizer_restore. */
hlr_optimizer *hlr__optimizer_from_desc(const hlr_optimizer_desc *d);
/* Set a fresh optimizer's counters and, when bound, bind it to m (allocating
 * zeroed state as a first step would); describe() then gives the buffers. */
hlr_status hlr__optimizer_restore(hlr_optimizer *o, hlr_model *m, int bound, int64_t steps, int64_t sched_pos);

/* ---- augmentation (augment.c) ---- */

/* Nonzero when a asks for anything. */
int hlr__augment_active(const hlr_augment *a);
/* Nonzero when a's values are ones hlr_model_fit accepts: rotate in [0, 180], scale in [0, 0.9], shear
 * in [0, 60], elastic_alpha in [0, 1000], and elastic_sigma in (0, 64] when elastic_alpha is above 0
 * (fit and the model-file reader's FITS check). */
int hlr__augment_valid(const hlr_augment *a);
/* Floats of work space hlr__augment_images needs for samples of shape s (C, H, W). */
int64_t hlr__augment_work_floats(const hlr_shape *s, const hlr_augment *a);
/* Augment n (C, H, W) images of x in place, drawing from rng. */
void hlr__augment_images(float *x, int64_t n, const hlr_shape *s, const hlr_augment *a, hlr_rng *rng, float *work);
/* out = in resampled at m (2 x 2, row-major: output offset from the centre -> input offset) plus the
 * displacements dx, dy per output pixel (NULL: none), bilinear, zero outside. */
void hlr__warp_image(float *out, const float *in, int64_t C, int64_t H, int64_t W, const double m[4], const float *dx,
                     const float *dy);

/* ---- datasets (dataset.c) ---- */

struct hlr_dataset {
    hlr_shape sample;
    int64_t sample_size;
    int64_t n;
    int num_classes;
    hlr_dtype dtype;  /* HLR_F32, or HLR_I32 when x holds token ids (same 4 bytes each) */
    float *x;
    int32_t *y;
    int32_t *lengths; /* per sample, its valid time steps; NULL when all are full */
    /* A sequence data set (hlr_dataset_from_sequences): targets (n, max_target), each row's labels then
     * -1 padding, and y holds each row's label count; NULL for a data set of class labels. */
    int32_t *targets;
    int64_t max_target;
};

#endif

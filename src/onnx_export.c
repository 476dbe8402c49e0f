/*
 * onnx_export.c -- hlr_model_export_onnx: a built model as an ONNX file.
 *
 * The graph is written through protobuf-c, with the message types that
 * protoc-c generates at build time from the onnx.proto Debian's libonnx-dev
 * installs (build/onnx/onnx.pb-c.h).  Every layer becomes the ONNX operators
 * that compute what it computes at inference (batch norm with its running
 * statistics, dropout as Identity), on a float input whose first dimension,
 * the batch, is named "N" (dynamic).  The layers follow PyTorch's
 * conventions, so the graph is what torch.onnx.export writes for the same
 * nn modules: recurrent weights are re-ordered into ONNX's gate order (LSTM
 * i o f c from PyTorch's i f g o, GRU z r h from r z n, with
 * linear_before_reset), the inputs of recurrent layers transposed to ONNX's
 * time-first layout and back.
 *
 * All the messages and copies live in one arena, freed when the file is
 * written; the model's own parameters are referenced, not copied.
 */
#include "model.h"
#include "onnx.pb-c.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN "hlr_model_export_onnx"
/* ONNX's IR version 8 goes with opset 17 (onnx 1.12, ONNX Runtime 1.12 and later). */
#define IR_VERSION 8

typedef struct ox {
    void **blocks;
    size_t nblocks, capblocks;
    Onnx__NodeProto **nodes;
    size_t nnodes, capnodes;
    Onnx__TensorProto **inits;
    size_t ninits, capinits;
    int counter;
    int oom;
    const char *lengths; /* the graph's "lengths" input (int32 (N)) of a model over token ids, else NULL */
} ox;

static void *ox_alloc(ox *o, size_t n)
{
    if (o->nblocks == o->capblocks) {
        size_t cap = o->capblocks ? 2 * o->capblocks : 256;
        void **b = hlr__realloc(o->blocks, cap * sizeof *b);
        if (!b) {
            o->oom = 1;
            return NULL;
        }
        o->blocks = b, o->capblocks = cap;
    }
    void *p = hlr__calloc(1, n ? n : 1);
    if (!p) {
        o->oom = 1;
        return NULL;
    }
    o->blocks[o->nblocks++] = p;
    return p;
}

static void ox_free(ox *o)
{
    for (size_t i = 0; i < o->nblocks; i++)
        hlr__free(o->blocks[i]);
    hlr__free(o->blocks);
    hlr__free(o->nodes);
    hlr__free(o->inits);
}

static char *ox_str(ox *o, const char *fmt, ...) HLR_PRINTF(2, 3);
static char *ox_str(ox *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ox_alloc(o, (size_t)n + 1);
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* A new name for an intermediate tensor. */
static char *ox_name(ox *o, const char *what) { return ox_str(o, "%s_%d", what, o->counter++); }

static int push(ox *o, void ***arr, size_t *n, size_t *cap, void *item)
{
    if (!item)
        return -1;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **a = hlr__realloc(*arr, c * sizeof *a);
        if (!a) {
            o->oom = 1;
            return -1;
        }
        *arr = a, *cap = c;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

/* ---- attributes ---- */

typedef Onnx__AttributeProto attr;

static attr *a_new(ox *o, const char *name, Onnx__AttributeProto__AttributeType type)
{
    attr *a = ox_alloc(o, sizeof *a);
    if (!a)
        return NULL;
    *a = (attr)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = ox_str(o, "%s", name);
    a->has_type = 1, a->type = type;
    return a;
}

static attr *a_int(ox *o, const char *name, int64_t v)
{
    attr *a = a_new(o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a)
        a->has_i = 1, a->i = v;
    return a;
}

static attr *a_float(ox *o, const char *name, float v)
{
    attr *a = a_new(o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a)
        a->has_f = 1, a->f = v;
    return a;
}

static attr *a_ints(ox *o, const char *name, int n, const int64_t *v)
{
    attr *a = a_new(o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = ox_alloc(o, (size_t)n * sizeof *copy);
    if (!a || !copy)
        return NULL;
    memcpy(copy, v, (size_t)n * sizeof *copy);
    a->n_ints = (size_t)n, a->ints = copy;
    return a;
}

static attr *a_string(ox *o, const char *name, const char *v)
{
    attr *a = a_new(o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *copy = ox_str(o, "%s", v);
    if (!a || !copy)
        return NULL;
    a->has_s = 1, a->s.data = (uint8_t *)copy, a->s.len = strlen(copy);
    return a;
}

/* ---- nodes and initializers ---- */

/* A node op(ins) with nout outputs (their names in outs, made when outs[k] is NULL); attrs end with NULL
 * (at most 8).  Returns the first output's name, NULL when out of memory. */
static const char *node_n(ox *o, const char *op, int nin, const char *const *ins, int nout, const char **outs,
                          attr *a0, attr *a1, attr *a2, attr *a3, attr *a4, attr *a5)
{
    Onnx__NodeProto *n = ox_alloc(o, sizeof *n);
    char **in = ox_alloc(o, (size_t)nin * sizeof *in), **out = ox_alloc(o, (size_t)nout * sizeof *out);
    attr **as = ox_alloc(o, 6 * sizeof *as);
    if (!n || !in || !out || !as)
        return NULL;
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    for (int k = 0; k < nin; k++)
        in[k] = ox_str(o, "%s", ins[k] ? ins[k] : "");
    for (int k = 0; k < nout; k++) {
        out[k] = outs && outs[k] ? ox_str(o, "%s", outs[k]) : ox_name(o, op);
        if (outs)
            outs[k] = out[k];
    }
    attr *all[6] = {a0, a1, a2, a3, a4, a5};
    size_t na = 0;
    for (int k = 0; k < 6 && all[k]; k++)
        as[na++] = all[k];
    n->op_type = ox_str(o, "%s", op);
    n->name = ox_str(o, "%s", out[0]);
    n->n_input = (size_t)nin, n->input = in;
    n->n_output = (size_t)nout, n->output = out;
    n->n_attribute = na, n->attribute = as;
    if (push(o, (void ***)&o->nodes, &o->nnodes, &o->capnodes, n) != 0 || o->oom)
        return NULL;
    return out[0];
}

#define NODE1(o, op, x, ...) node_n(o, op, 1, (const char *[]){x}, 1, NULL, __VA_ARGS__)
#define NODE2(o, op, x, y, ...) node_n(o, op, 2, (const char *[]){x, y}, 1, NULL, __VA_ARGS__)
#define NODE3(o, op, x, y, z, ...) node_n(o, op, 3, (const char *[]){x, y, z}, 1, NULL, __VA_ARGS__)

/* A float initializer of the given dims; data is referenced when keep is 1 (the model's own
 * parameters), copied otherwise. */
static const char *init_f32(ox *o, const char *name, int ndim, const int64_t *dims, const float *data)
{
    Onnx__TensorProto *t = ox_alloc(o, sizeof *t);
    int64_t *d = ox_alloc(o, (size_t)ndim * sizeof *d);
    if (!t || !d)
        return NULL;
    int64_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= dims[k], d[k] = dims[k];
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = ox_str(o, "%s", name);
    t->n_dims = (size_t)ndim, t->dims = d;
    t->has_data_type = 1, t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    /* raw_data is little-endian float32: the bytes as they are on every platform libhlr builds on */
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * sizeof(float);
    t->raw_data.data = (uint8_t *)data;
    if (push(o, (void ***)&o->inits, &o->ninits, &o->capinits, t) != 0)
        return NULL;
    return t->name;
}

static const char *init_i64(ox *o, const char *what, int n, const int64_t *v)
{
    Onnx__TensorProto *t = ox_alloc(o, sizeof *t);
    int64_t *d = ox_alloc(o, sizeof *d), *copy = ox_alloc(o, (size_t)n * sizeof *copy);
    if (!t || !d || !copy)
        return NULL;
    memcpy(copy, v, (size_t)n * sizeof *copy);
    *d = n;
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = ox_name(o, what);
    t->n_dims = 1, t->dims = d;
    t->has_data_type = 1, t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_int64_data = (size_t)n, t->int64_data = copy;
    if (push(o, (void ***)&o->inits, &o->ninits, &o->capinits, t) != 0)
        return NULL;
    return t->name;
}

/* A float scalar constant (an initializer of no dimensions). */
static const char *scalar_f32(ox *o, const char *what, float v)
{
    float *p = ox_alloc(o, sizeof *p);
    if (!p)
        return NULL;
    *p = v;
    return init_f32(o, ox_name(o, what), 0, NULL, p);
}

/* x reshaped to (N, dims of shape s): Reshape with 0 for the batch. */
static const char *reshape(ox *o, const char *x, const hlr_shape *s)
{
    int64_t d[HLR_MAX_DIMS + 1] = {0};
    for (int k = 0; k < s->ndim; k++)
        d[k + 1] = s->d[k];
    return NODE2(o, "Reshape", x, init_i64(o, "shape", s->ndim + 1, d), NULL, NULL, NULL, NULL, NULL, NULL);
}

static const char *transpose(ox *o, const char *x, int n, const int64_t *perm)
{
    return NODE1(o, "Transpose", x, a_ints(o, "perm", n, perm), NULL, NULL, NULL, NULL, NULL);
}

static const char *param_name(ox *o, const hlr_layer *l, int i)
{
    return ox_str(o, "layer%d.%s", l->index, l->params[i].name);
}

/* The model's parameter i of l as an initializer (referenced, not copied). */
static const char *param(ox *o, const hlr_layer *l, int i)
{
    const hlr_tensor *t = &l->params[i].value;
    return init_f32(o, param_name(o, l, i), t->ndim, t->shape, t->data);
}

static int find_param(const hlr_layer *l, const char *name)
{
    for (int i = 0; i < l->nparams; i++)
        if (!strcmp(l->params[i].name, name))
            return i;
    return -1;
}

/* A layer's configuration value (0 when it has no such key). */
static hlr_config config_of(const hlr_layer *l)
{
    hlr_config c = {0};
    if (l->ops->get_config)
        l->ops->get_config(l, &c);
    return c;
}

static int64_t cfg(const hlr_layer *l, const char *key)
{
    hlr_config c = config_of(l);
    int64_t v = 0;
    hlr__config_get_int(&c, key, &v);
    return v;
}

static double cfg_f(const hlr_layer *l, const char *key)
{
    hlr_config c = config_of(l);
    double v = 0;
    hlr__config_get_float(&c, key, &v);
    return v;
}

/* ---- layers ---- */

static const char *linear(ox *o, const hlr_layer *l, const char *x, const char *wname, const char *bname);

static const char *dense(ox *o, const hlr_layer *l, const char *x)
{
    const int w = find_param(l, "weight"), b = find_param(l, "bias");
    if (l->in.ndim == 1)
        return node_n(o, "Gemm", b >= 0 ? 3 : 2, (const char *[]){x, param(o, l, w), b >= 0 ? param(o, l, b) : NULL},
                      1, NULL, a_int(o, "transB", 1), NULL, NULL, NULL, NULL, NULL);
    return linear(o, l, x, "weight", "bias"); /* on every step of a sequence (N, T, in) */
}

static const char *conv2d(ox *o, const hlr_layer *l, const char *x)
{
    const int w = find_param(l, "weight"), b = find_param(l, "bias");
    const int64_t k[2] = {cfg(l, "kernel_h"), cfg(l, "kernel_w")}, s = cfg(l, "stride"), p = cfg(l, "padding"),
                  d = cfg(l, "dilation");
    return node_n(o, "Conv", b >= 0 ? 3 : 2, (const char *[]){x, param(o, l, w), b >= 0 ? param(o, l, b) : NULL}, 1,
                  NULL, a_ints(o, "kernel_shape", 2, k), a_ints(o, "strides", 2, (int64_t[]){s, s}),
                  a_ints(o, "pads", 4, (int64_t[]){p, p, p, p}), a_ints(o, "dilations", 2, (int64_t[]){d, d}),
                  a_int(o, "group", cfg(l, "groups")), NULL);
}

static const char *pool(ox *o, const hlr_layer *l, const char *x, const char *op)
{
    const int sq = cfg(l, "kernel") > 0; /* a square window's three keys, or a rectangle's six */
    const int64_t kh = cfg(l, sq ? "kernel" : "kernel_h"), kw = cfg(l, sq ? "kernel" : "kernel_w"),
                  sh = cfg(l, sq ? "stride" : "stride_h"), sw = cfg(l, sq ? "stride" : "stride_w"),
                  ph = cfg(l, sq ? "padding" : "padding_h"), pw = cfg(l, sq ? "padding" : "padding_w");
    return NODE1(o, op, x, a_ints(o, "kernel_shape", 2, (int64_t[]){kh, kw}),
                 a_ints(o, "strides", 2, (int64_t[]){sh, sw}), a_ints(o, "pads", 4, (int64_t[]){ph, pw, ph, pw}),
                 !strcmp(op, "AveragePool") ? a_int(o, "count_include_pad", 1) : NULL, NULL, NULL);
}

static const char *batchnorm(ox *o, const hlr_layer *l, const char *x)
{
    return node_n(o, "BatchNormalization", 5,
                  (const char *[]){x, param(o, l, find_param(l, "weight")), param(o, l, find_param(l, "bias")),
                                   param(o, l, find_param(l, "running_mean")), param(o, l, find_param(l, "running_var"))},
                  1, NULL, a_float(o, "epsilon", (float)cfg_f(l, "eps")), NULL, NULL, NULL, NULL, NULL);
}

/* Rows of a PyTorch gate stack (gates blocks of H rows, each of cols values) in ONNX's order: block k of the
 * result is block order[k] of the source.  Written to dst. */
static void reorder_gates(float *dst, const float *src, int gates, const int *order, int64_t H, int64_t cols)
{
    for (int k = 0; k < gates; k++)
        memcpy(dst + (int64_t)k * H * cols, src + (int64_t)order[k] * H * cols, (size_t)(H * cols) * sizeof *dst);
}

/* An LSTM or GRU layer: x (N, T, F) -> (N, T, D H) or (N, D H). */
static const char *recurrent(ox *o, const hlr_layer *l, const char *x, int lstm)
{
    const int64_t H = cfg(l, "hidden_size"), layers = cfg(l, "num_layers"), D = cfg(l, "bidirectional") ? 2 : 1;
    const int seqs = (int)cfg(l, "return_sequences"), G = lstm ? 4 : 3;
    static const int lstm_order[4] = {0, 3, 1, 2}; /* i o f c  <-  i f g o */
    static const int gru_order[3] = {1, 0, 2};     /* z r h    <-  r z n */
    const int *order = lstm ? lstm_order : gru_order;
    const char *seq = transpose(o, x, 3, (int64_t[]){1, 0, 2}); /* (T, N, F) */
    const char *last = NULL;
    for (int64_t k = 0; k < layers && seq; k++) {
        const int64_t F = k == 0 ? cfg(l, "input_size") : D * H;
        float *W = ox_alloc(o, (size_t)(D * G * H * F) * sizeof *W), *R = ox_alloc(o, (size_t)(D * G * H * H) * sizeof *R);
        float *B = ox_alloc(o, (size_t)(D * 2 * G * H) * sizeof *B);
        if (!W || !R || !B)
            return NULL;
        for (int64_t d = 0; d < D; d++) {
            char name[HLR_PARAM_NAME_MAX];
            const char *rev = d ? "_reverse" : "";
            snprintf(name, sizeof name, "weight_ih_l%lld%s", (long long)k, rev);
            reorder_gates(W + d * G * H * F, l->params[find_param(l, name)].value.data, G, order, H, F);
            snprintf(name, sizeof name, "weight_hh_l%lld%s", (long long)k, rev);
            reorder_gates(R + d * G * H * H, l->params[find_param(l, name)].value.data, G, order, H, H);
            snprintf(name, sizeof name, "bias_ih_l%lld%s", (long long)k, rev);
            reorder_gates(B + d * 2 * G * H, l->params[find_param(l, name)].value.data, G, order, H, 1);
            snprintf(name, sizeof name, "bias_hh_l%lld%s", (long long)k, rev);
            reorder_gates(B + d * 2 * G * H + G * H, l->params[find_param(l, name)].value.data, G, order, H, 1);
        }
        const char *ins[5] = {seq, init_f32(o, ox_str(o, "layer%d.W_l%lld", l->index, (long long)k), 3,
                                              (int64_t[]){D, G * H, F}, W),
                              init_f32(o, ox_str(o, "layer%d.R_l%lld", l->index, (long long)k), 3,
                                       (int64_t[]){D, G * H, H}, R),
                              init_f32(o, ox_str(o, "layer%d.B_l%lld", l->index, (long long)k), 2,
                                       (int64_t[]){D, 2 * G * H}, B),
                              o->lengths};
        const char *outs[2] = {NULL, NULL};
        if (!node_n(o, lstm ? "LSTM" : "GRU", o->lengths ? 5 : 4, ins, 2, outs, NULL, NULL, NULL, NULL, NULL, NULL))
            return NULL;
        /* attributes that depend on the kind and direction */
        Onnx__NodeProto *n = o->nodes[o->nnodes - 1];
        attr **as = ox_alloc(o, 3 * sizeof *as);
        if (!as)
            return NULL;
        size_t na = 0;
        as[na++] = a_int(o, "hidden_size", H);
        if (D == 2)
            as[na++] = a_string(o, "direction", "bidirectional");
        if (!lstm)
            as[na++] = a_int(o, "linear_before_reset", 1);
        n->n_attribute = na, n->attribute = as;
        /* Y (T, D, N, H) -> (T, N, D H) for the next layer or the output; else the final states Y_h (D, N, H) */
        if (k + 1 < layers || seqs) {
            const char *y = transpose(o, outs[0], 4, (int64_t[]){0, 2, 1, 3});
            seq = NODE2(o, "Reshape", y, init_i64(o, "shape", 3, (int64_t[]){0, 0, D * H}), NULL, NULL, NULL, NULL,
                        NULL, NULL);
        }
        last = outs[1];
    }
    if (seqs)
        return transpose(o, seq, 3, (int64_t[]){1, 0, 2}); /* (N, T, D H) */
    /* the final states (D, N, H) -> (N, D H): the forward one after the last step, the backward one after
     * the first, as the layer returns them */
    const char *h = transpose(o, last, 3, (int64_t[]){1, 0, 2});
    return NODE2(o, "Reshape", h, init_i64(o, "shape", 2, (int64_t[]){0, D * H}), NULL, NULL, NULL, NULL, NULL, NULL);
}

/* x W^T for W (rows, cols) row-major: a MatMul by W's transpose, stored as the initializer named name. */
static const char *matmul_t(ox *o, const char *x, const float *w, int64_t rows, int64_t cols, const char *name)
{
    float *wt = ox_alloc(o, (size_t)(rows * cols) * sizeof *wt);
    if (!wt)
        return NULL;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            wt[j * rows + i] = w[i * cols + j];
    return NODE2(o, "MatMul", x, init_f32(o, name, 2, (int64_t[]){cols, rows}, wt), NULL, NULL, NULL, NULL, NULL,
                 NULL);
}

/* Multi-head self-attention over x (N, T, E), as torch.nn.MultiheadAttention(x, x, x): W (3E, E) and B (3E)
 * the input projection, Wo (E, E) and Bo (E) the output projection (NULL: none); causal: keys after the
 * query are masked.  Names start with prefix. */
static const char *mha(ox *o, const char *prefix, const char *x, int64_t E, int64_t h, int64_t T, const float *W,
                       const float *B, const float *Wo, const float *Bo, int causal)
{
    const int64_t dh = E / h;
    const char *heads[3];
    for (int k = 0; k < 3; k++) { /* q, k, v: x W_k^T + b_k, as (N, h, T, dh); k as (N, h, dh, T) */
        const char *y = matmul_t(o, x, W + k * E * E, E, E, ox_str(o, "%s.in_proj_t%d", prefix, k));
        if (B)
            y = NODE2(o, "Add", y, init_f32(o, ox_str(o, "%s.in_proj_bias%d", prefix, k), 1, (int64_t[]){E}, B + k * E),
                      NULL, NULL, NULL, NULL, NULL, NULL);
        y = NODE2(o, "Reshape", y, init_i64(o, "shape", 4, (int64_t[]){0, 0, h, dh}), NULL, NULL, NULL, NULL, NULL, NULL);
        heads[k] = transpose(o, y, 4, k == 1 ? (int64_t[]){0, 2, 3, 1} : (int64_t[]){0, 2, 1, 3});
    }
    const char *s = NODE2(o, "MatMul", heads[0], heads[1], NULL, NULL, NULL, NULL, NULL, NULL); /* (N, h, T, T) */
    s = NODE2(o, "Mul", s, scalar_f32(o, "scale", 1.0f / sqrtf((float)dh)), NULL, NULL, NULL, NULL, NULL, NULL);
    if (causal) { /* -inf above the diagonal: softmax gives those keys exactly 0, as the layer does */
        float *mask = ox_alloc(o, (size_t)(T * T) * sizeof *mask);
        if (!mask)
            return NULL;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++)
                mask[i * T + j] = j > i ? -INFINITY : 0.0f;
        s = NODE2(o, "Add", s, init_f32(o, ox_str(o, "%s.causal_mask", prefix), 2, (int64_t[]){T, T}, mask), NULL,
                  NULL, NULL, NULL, NULL, NULL);
    }
    s = NODE1(o, "Softmax", s, a_int(o, "axis", -1), NULL, NULL, NULL, NULL, NULL);
    const char *y = NODE2(o, "MatMul", s, heads[2], NULL, NULL, NULL, NULL, NULL, NULL); /* (N, h, T, dh) */
    y = transpose(o, y, 4, (int64_t[]){0, 2, 1, 3});
    y = NODE2(o, "Reshape", y, init_i64(o, "shape", 3, (int64_t[]){0, 0, E}), NULL, NULL, NULL, NULL, NULL, NULL);
    if (!Wo)
        return y;
    y = matmul_t(o, y, Wo, E, E, ox_str(o, "%s.out_proj_t", prefix));
    if (Bo)
        y = NODE2(o, "Add", y, init_f32(o, ox_str(o, "%s.out_proj_bias", prefix), 1, (int64_t[]){E}, Bo), NULL, NULL,
                  NULL, NULL, NULL, NULL);
    return y;
}

static const float *param_data(const hlr_layer *l, const char *name)
{
    const int i = find_param(l, name);
    return i >= 0 ? l->params[i].value.data : NULL;
}

static const char *attention(ox *o, const hlr_layer *l, const char *x)
{
    return mha(o, ox_str(o, "layer%d", l->index), x, cfg(l, "embed_dim"), cfg(l, "num_heads"), l->in.d[0],
               param_data(l, "in_proj_weight"), param_data(l, "in_proj_bias"), param_data(l, "out_proj.weight"),
               param_data(l, "out_proj.bias"), (int)cfg(l, "causal"));
}

/* x W^T + b on the last axis of x, W (out, in) of layer l's parameter wname (and bname). */
static const char *linear(ox *o, const hlr_layer *l, const char *x, const char *wname, const char *bname)
{
    const hlr_tensor *W = &l->params[find_param(l, wname)].value;
    const char *y = matmul_t(o, x, W->data, W->shape[0], W->shape[1], ox_str(o, "layer%d.%s_t", l->index, wname));
    const int b = bname ? find_param(l, bname) : -1;
    return b >= 0 ? NODE2(o, "Add", y, param(o, l, b), NULL, NULL, NULL, NULL, NULL, NULL) : y;
}

static const char *layer_norm(ox *o, const hlr_layer *l, const char *x, const char *w, const char *b, float eps)
{
    return node_n(o, "LayerNormalization", 3, (const char *[]){x, param(o, l, find_param(l, w)), param(o, l, find_param(l, b))},
                  1, NULL, a_int(o, "axis", -1), a_float(o, "epsilon", eps), NULL, NULL, NULL, NULL);
}

static const char *gelu(ox *o, const char *x)
{
    const char *e = NODE1(o, "Erf", NODE2(o, "Mul", x, scalar_f32(o, "rsqrt2", 0.70710678118654752f), NULL, NULL, NULL,
                                           NULL, NULL, NULL),
                          NULL, NULL, NULL, NULL, NULL, NULL);
    e = NODE2(o, "Add", e, scalar_f32(o, "one", 1.0f), NULL, NULL, NULL, NULL, NULL, NULL);
    e = NODE2(o, "Mul", x, e, NULL, NULL, NULL, NULL, NULL, NULL);
    return NODE2(o, "Mul", e, scalar_f32(o, "half", 0.5f), NULL, NULL, NULL, NULL, NULL, NULL);
}

/* A pre-norm encoder block: x1 = x + attn(norm1(x)); y = x1 + linear2(gelu(linear1(norm2(x1)))). */
static const char *encoder_block(ox *o, const hlr_layer *l, const char *x)
{
    const char *h = layer_norm(o, l, x, "norm1.weight", "norm1.bias", 1e-5f);
    const char *a = mha(o, ox_str(o, "layer%d.self_attn", l->index), h, cfg(l, "dim"), cfg(l, "heads"), l->in.d[0],
                        param_data(l, "self_attn.in_proj_weight"), param_data(l, "self_attn.in_proj_bias"),
                        param_data(l, "self_attn.out_proj.weight"), param_data(l, "self_attn.out_proj.bias"),
                        (int)cfg(l, "causal"));
    const char *x1 = NODE2(o, "Add", x, a, NULL, NULL, NULL, NULL, NULL, NULL);
    const char *f = linear(o, l, layer_norm(o, l, x1, "norm2.weight", "norm2.bias", 1e-5f), "linear1.weight",
                           "linear1.bias");
    f = linear(o, l, gelu(o, f), "linear2.weight", "linear2.bias");
    return NODE2(o, "Add", x1, f, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* The learned class token in front of every sequence: Concat(Expand(token, (N, 1, D)), x) on the steps. */
static const char *class_token(ox *o, const hlr_layer *l, const char *x)
{
    const int64_t D = l->in.d[1];
    const hlr_tensor *t = &l->params[find_param(l, "cls_token")].value;
    const char *tok = init_f32(o, ox_str(o, "layer%d.cls_token", l->index), 3, (int64_t[]){1, 1, D}, t->data);
    const char *n = NODE2(o, "Gather", NODE1(o, "Shape", x, NULL, NULL, NULL, NULL, NULL, NULL),
                          init_i64(o, "batch_axis", 1, (int64_t[]){0}), a_int(o, "axis", 0), NULL, NULL, NULL, NULL, NULL);
    const char *shape = node_n(o, "Concat", 2, (const char *[]){n, init_i64(o, "one_d", 2, (int64_t[]){1, D})}, 1, NULL,
                               a_int(o, "axis", 0), NULL, NULL, NULL, NULL, NULL);
    const char *e = NODE2(o, "Expand", tok, shape, NULL, NULL, NULL, NULL, NULL, NULL);
    return node_n(o, "Concat", 2, (const char *[]){e, x}, 1, NULL, a_int(o, "axis", 1), NULL, NULL, NULL, NULL, NULL);
}

/* seq_mean, seq_max and seq_last over each sequence's own steps (x (N, T, F), the graph's lengths (N)), as
 * the layers read them with hlr_model_set_lengths(): mean and max keep the steps t < length by a mask
 * (Less), last keeps the one step t + 1 = length (Equal) and sums it out. */
typedef enum { MASKED_MEAN, MASKED_MAX, MASKED_LAST } masked_kind;

static const char *masked_pool(ox *o, const hlr_layer *l, const char *x, masked_kind kind)
{
    const int64_t T = l->in.d[0];
    if (l->in.ndim != 2) {
        hlr__fail(HLR_EUNSUPPORTED, "%s: layer %d (%s) after token ids reads (steps, features) only", FN, l->index,
                  l->ops->type);
        return NULL;
    }
    int32_t *steps = ox_alloc(o, (size_t)T * sizeof *steps);
    if (!steps)
        return NULL;
    for (int64_t t = 0; t < T; t++)
        steps[t] = (int32_t)t + (kind == MASKED_LAST); /* last: the length that ends at step t */
    Onnx__TensorProto *st = ox_alloc(o, sizeof *st);
    int64_t *dims = ox_alloc(o, sizeof *dims);
    if (!st || !dims)
        return NULL;
    *dims = T;
    *st = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    st->name = ox_str(o, "layer%d.steps", l->index);
    st->n_dims = 1, st->dims = dims;
    st->has_data_type = 1, st->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
    st->n_int32_data = (size_t)T, st->int32_data = steps;
    if (push(o, (void ***)&o->inits, &o->ninits, &o->capinits, st) != 0)
        return NULL;
    const char *len = NODE2(o, "Unsqueeze", o->lengths, init_i64(o, "axes", 1, (int64_t[]){1}), NULL, NULL, NULL, NULL,
                            NULL, NULL);                                                    /* (N, 1) */
    const char *mask = NODE2(o, kind == MASKED_LAST ? "Equal" : "Less", st->name, len, NULL, NULL, NULL, NULL, NULL,
                             NULL); /* (N, T) */
    mask = NODE2(o, "Unsqueeze", mask, init_i64(o, "axes", 1, (int64_t[]){2}), NULL, NULL, NULL, NULL, NULL, NULL);
    const char *axes = init_i64(o, "axes", 1, (int64_t[]){1});
    if (kind == MASKED_LAST) { /* the one step kept, the others 0: their sum is that step, exactly */
        const char *v = node_n(o, "Where", 3, (const char *[]){mask, x, scalar_f32(o, "zero", 0.0f)}, 1, NULL, NULL,
                               NULL, NULL, NULL, NULL, NULL);
        return node_n(o, "ReduceSum", 2, (const char *[]){v, axes}, 1, NULL, a_int(o, "keepdims", 0), NULL, NULL, NULL,
                      NULL, NULL);
    }
    if (kind == MASKED_MAX) {
        const char *v = node_n(o, "Where", 3, (const char *[]){mask, x, scalar_f32(o, "minus_inf", -INFINITY)}, 1, NULL,
                               NULL, NULL, NULL, NULL, NULL, NULL);
        return NODE1(o, "ReduceMax", v, a_ints(o, "axes", 1, (int64_t[]){1}), a_int(o, "keepdims", 0), NULL, NULL,
                     NULL, NULL);
    }
    const char *m = NODE1(o, "Cast", mask, a_int(o, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT), NULL, NULL, NULL, NULL,
                          NULL);
    const char *sum = node_n(o, "ReduceSum", 2, (const char *[]){NODE2(o, "Mul", x, m, NULL, NULL, NULL, NULL, NULL, NULL), axes},
                             1, NULL, a_int(o, "keepdims", 0), NULL, NULL, NULL, NULL, NULL);
    const char *n = NODE1(o, "Cast", len, a_int(o, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT), NULL, NULL, NULL, NULL,
                          NULL);
    return NODE2(o, "Div", sum, n, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* One layer: the name of its output, or NULL with an error set (unsupported, or out of memory). */
static const char *layer(ox *o, const hlr_layer *l, const char *x)
{
    const char *t = l->ops->type;
    if (!strcmp(t, "dense"))
        return dense(o, l, x);
    if (!strcmp(t, "conv2d"))
        return conv2d(o, l, x);
    if (!strcmp(t, "maxpool2d"))
        return pool(o, l, x, "MaxPool");
    if (!strcmp(t, "avgpool2d"))
        return pool(o, l, x, "AveragePool");
    if (!strcmp(t, "global_avgpool2d"))
        return reshape(o, NODE1(o, "GlobalAveragePool", x, NULL, NULL, NULL, NULL, NULL, NULL), &l->out);
    if (!strcmp(t, "batchnorm2d") || !strcmp(t, "batchnorm1d"))
        return batchnorm(o, l, x);
    if (!strcmp(t, "relu"))
        return NODE1(o, "Relu", x, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "leaky_relu"))
        return NODE1(o, "LeakyRelu", x, a_float(o, "alpha", (float)cfg_f(l, "slope")), NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "sigmoid"))
        return NODE1(o, "Sigmoid", x, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "tanh"))
        return NODE1(o, "Tanh", x, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "gelu")) /* x (1 + erf(x / sqrt 2)) / 2 (opset 17 has no Gelu) */
        return gelu(o, x);
    if (!strcmp(t, "softmax"))
        return NODE1(o, "Softmax", x, a_int(o, "axis", -1), NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "dropout"))
        return NODE1(o, "Identity", x, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!strcmp(t, "flatten") || !strcmp(t, "image_rows"))
        return reshape(o, x, &l->out);
    if (!strcmp(t, "feature_map_rows") || !strcmp(t, "feature_map_columns")) {
        const int cols = !strcmp(t, "feature_map_columns");
        return reshape(o, transpose(o, x, 4, cols ? (int64_t[]){0, 3, 1, 2} : (int64_t[]){0, 2, 1, 3}), &l->out);
    }
    if (!strcmp(t, "lstm") || !strcmp(t, "gru"))
        return recurrent(o, l, x, !strcmp(t, "lstm"));
    if (!strcmp(t, "multihead_attention") || !strcmp(t, "transformer_encoder")) {
        if (cfg(l, "key_padding")) {
            hlr__fail(HLR_EUNSUPPORTED, "%s: layer %d (%s): key-padding masks (sequence lengths) are not exported yet",
                      FN, l->index, t);
            return NULL;
        }
        return !strcmp(t, "multihead_attention") ? attention(o, l, x) : encoder_block(o, l, x);
    }
    if (!strcmp(t, "class_token"))
        return class_token(o, l, x);
    if (!strcmp(t, "positional_encoding")) {
        const float *table = hlr__positional_encoding_table((hlr_layer *)l);
        return NODE2(o, "Add", x, init_f32(o, ox_str(o, "layer%d.table", l->index), 2, (int64_t[]){l->in.d[0], l->in.d[1]},
                                           table),
                     NULL, NULL, NULL, NULL, NULL, NULL);
    }
    if (!strcmp(t, "patch_embedding")) { /* Conv(kernel p, stride p), flattened and turned patch-first */
        const int64_t pch = cfg(l, "patch"), D = cfg(l, "dim");
        const int b = find_param(l, "bias");
        const char *c = node_n(o, "Conv", b >= 0 ? 3 : 2,
                               (const char *[]){x, param(o, l, find_param(l, "weight")), b >= 0 ? param(o, l, b) : NULL},
                               1, NULL, a_ints(o, "kernel_shape", 2, (int64_t[]){pch, pch}),
                               a_ints(o, "strides", 2, (int64_t[]){pch, pch}), NULL, NULL, NULL, NULL);
        c = NODE2(o, "Reshape", c, init_i64(o, "shape", 3, (int64_t[]){0, D, -1}), NULL, NULL, NULL, NULL, NULL, NULL);
        return transpose(o, c, 3, (int64_t[]){0, 2, 1});
    }
    if (!strcmp(t, "embedding")) /* token ids (N, T) -> rows of the table (N, T, D) */
        return NODE2(o, "Gather", param(o, l, find_param(l, "weight")), x, a_int(o, "axis", 0), NULL, NULL, NULL, NULL,
                     NULL);
    if ((!strcmp(t, "seq_mean") || !strcmp(t, "seq_max") || !strcmp(t, "seq_last")) && o->lengths)
        return masked_pool(o, l, x, !strcmp(t, "seq_mean") ? MASKED_MEAN : !strcmp(t, "seq_max") ? MASKED_MAX : MASKED_LAST);
    if (!strcmp(t, "seq_mean") || !strcmp(t, "seq_max"))
        return NODE1(o, !strcmp(t, "seq_mean") ? "ReduceMean" : "ReduceMax", x, a_ints(o, "axes", 1, (int64_t[]){1}),
                     a_int(o, "keepdims", 0), NULL, NULL, NULL, NULL);
    if (!strcmp(t, "seq_first") || !strcmp(t, "seq_last")) {
        const int64_t at = !strcmp(t, "seq_first") ? 0 : l->in.d[0] - 1;
        const char *i = init_i64(o, "index", 1, (int64_t[]){at});
        const char *y = NODE2(o, "Gather", x, i, a_int(o, "axis", 1), NULL, NULL, NULL, NULL, NULL); /* (N, 1, F) */
        return reshape(o, y, &l->out);
    }
    if (!strcmp(t, "layernorm")) {
        const int w = find_param(l, "weight"), b = find_param(l, "bias");
        return node_n(o, "LayerNormalization", b >= 0 ? 3 : 2,
                      (const char *[]){x, param(o, l, w), b >= 0 ? param(o, l, b) : NULL}, 1, NULL,
                      a_int(o, "axis", -1), a_float(o, "epsilon", (float)cfg_f(l, "eps")), NULL, NULL, NULL, NULL);
    }
    hlr__fail(HLR_EUNSUPPORTED, "%s: layer %d (%s) has no ONNX export yet", FN, l->index, t);
    return NULL;
}

/* ---- the model ---- */

static Onnx__ValueInfoProto *value_info(ox *o, const char *name, const hlr_shape *s, int int32)
{
    Onnx__ValueInfoProto *v = ox_alloc(o, sizeof *v);
    Onnx__TypeProto *tp = ox_alloc(o, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox_alloc(o, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox_alloc(o, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = ox_alloc(o, (size_t)(s->ndim + 1) * sizeof *dims);
    if (!v || !tp || !tt || !sh || !dims)
        return NULL;
    for (int k = 0; k <= s->ndim; k++) {
        Onnx__TensorShapeProto__Dimension *d = ox_alloc(o, sizeof *d);
        if (!d)
            return NULL;
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (k == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ox_str(o, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->d[k - 1];
        }
        dims[k] = d;
    }
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh->n_dim = (size_t)s->ndim + 1, sh->dim = dims;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1, tt->shape = sh;
    tt->elem_type = int32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32 : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = ox_str(o, "%s", name), v->type = tp;
    return v;
}

static Onnx__StringStringEntryProto *entry(ox *o, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = ox_alloc(o, sizeof *e);
    if (!e)
        return NULL;
    *e = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    e->key = ox_str(o, "%s", key);
    e->value = ox_str(o, "%s", value);
    return e;
}

hlr_status hlr_model_export_onnx_buffer(hlr_model *m, int opset, void **data, size_t *size)
{
    if (!m || !data || !size)
        return hlr__fail(HLR_EINVAL, "%s: %s is NULL", FN, !m ? "model" : !data ? "data" : "size");
    *data = NULL;
    *size = 0;
    if (opset == 0)
        opset = HLR_ONNX_OPSET;
    if (opset != HLR_ONNX_OPSET)
        return hlr__fail(HLR_EUNSUPPORTED, "%s: opset %d; libhlr writes opset %d", FN, opset, HLR_ONNX_OPSET);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", FN);
    const int n = hlr_model_num_layers(m);
    const int int_input = hlr_model_layer(m, 0)->ops->int_input;
    ox o = {0};
    const char *x = "input";
    if (int_input) /* token ids come with each sequence's length, as hlr_model_set_lengths() gives them */
        o.lengths = "lengths";
    for (int i = 0; i < n && x; i++)
        x = layer(&o, hlr_model_layer(m, i), x);
    hlr_status st = HLR_OK;
    if (!x || o.oom) {
        st = o.oom || hlr_last_status() == HLR_OK ? hlr__fail(HLR_ENOMEM, "%s: out of memory", FN) : hlr_last_status();
        ox_free(&o);
        return st;
    }
    x = node_n(&o, "Identity", 1, (const char *[]){x}, 1, (const char *[]){"logits"}, NULL, NULL, NULL, NULL, NULL,
               NULL);
    const hlr_layer *first = hlr_model_layer(m, 0), *lastl = hlr_model_layer(m, n - 1);
    Onnx__ValueInfoProto *in = value_info(&o, "input", &first->in, int_input),
                         *out = value_info(&o, "logits", &lastl->out, 0);
    Onnx__GraphProto *g = ox_alloc(&o, sizeof *g);
    Onnx__ModelProto *mp = ox_alloc(&o, sizeof *mp);
    Onnx__OperatorSetIdProto *ops = ox_alloc(&o, sizeof *ops);
    Onnx__OperatorSetIdProto **opsv = ox_alloc(&o, sizeof *opsv);
    Onnx__ValueInfoProto **ins = ox_alloc(&o, 2 * sizeof *ins), **outs = ox_alloc(&o, sizeof *outs);
    Onnx__ValueInfoProto *lens = int_input ? value_info(&o, "lengths", &(hlr_shape){.ndim = 0}, 1) : NULL;
    /* metadata: the class names, the temperature, the file's own keys */
    hlr_metadata *md = hlr_model_metadata(m);
    const int nmeta = hlr_metadata_count(md), nclass = hlr_metadata_num_classes(md);
    Onnx__StringStringEntryProto **props = ox_alloc(&o, (size_t)(nmeta + 3) * sizeof *props);
    if (!x || !in || !out || !g || !mp || !ops || !opsv || !ins || !outs || !props || o.oom) {
        ox_free(&o);
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", FN);
    }
    size_t np = 0;
    for (int k = 0; k < nmeta; k++)
        props[np++] = entry(&o, hlr_metadata_key(md, k), hlr_metadata_get(md, hlr_metadata_key(md, k)));
    if (nclass > 0) { /* one JSON array of strings: ["0", "1", ...] */
        size_t len = 3;
        for (int k = 0; k < nclass; k++)
            len += 2 * strlen(hlr_metadata_class_name(md, k)) + 4;
        char *s = ox_alloc(&o, len), *p = s;
        if (s) {
            *p++ = '[';
            for (int k = 0; k < nclass; k++) {
                if (k)
                    *p++ = ',';
                *p++ = '"';
                for (const char *c = hlr_metadata_class_name(md, k); *c; c++) {
                    if (*c == '"' || *c == '\\')
                        *p++ = '\\';
                    *p++ = *c;
                }
                *p++ = '"';
            }
            *p++ = ']';
            *p = '\0';
            if (!hlr_metadata_get(md, "class_names"))
                props[np++] = entry(&o, "class_names", s);
        }
    }
    char temp[32];
    snprintf(temp, sizeof temp, "%.9g", hlr_model_temperature(m));
    if (!hlr_metadata_get(md, "temperature"))
        props[np++] = entry(&o, "temperature", temp);
    if (hlr_metadata_dataset(md) && !hlr_metadata_get(md, "dataset"))
        props[np++] = entry(&o, "dataset", hlr_metadata_dataset(md));
    *ops = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    ops->domain = o.oom ? NULL : ox_str(&o, "%s", "");
    ops->has_version = 1, ops->version = opset;
    opsv[0] = ops;
    ins[0] = in, outs[0] = out;
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    g->name = ox_str(&o, "libhlr");
    g->n_node = o.nnodes, g->node = o.nodes;
    g->n_initializer = o.ninits, g->initializer = o.inits;
    ins[1] = lens;
    g->n_input = lens ? 2 : 1, g->input = ins;
    g->n_output = 1, g->output = outs;
    *mp = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    mp->has_ir_version = 1, mp->ir_version = IR_VERSION;
    mp->n_opset_import = 1, mp->opset_import = opsv;
    mp->producer_name = ox_str(&o, "libhlr");
    mp->producer_version = ox_str(&o, "%s", hlr_version());
    mp->graph = g;
    mp->n_metadata_props = np, mp->metadata_props = props;
    if (o.oom) {
        ox_free(&o);
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", FN);
    }
    size_t len = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = hlr__malloc(len ? len : 1);
    if (!buf) {
        ox_free(&o);
        return hlr__fail(HLR_ENOMEM, "%s: out of memory for %zu bytes", FN, len);
    }
    onnx__model_proto__pack(mp, buf);
    ox_free(&o);
    *data = buf;
    *size = len;
    return st;
}

hlr_status hlr_model_export_onnx(hlr_model *m, const char *path, int opset)
{
    if (!path)
        return hlr__fail(HLR_EINVAL, "%s: path is NULL", FN);
    void *data;
    size_t size;
    hlr_status st = hlr_model_export_onnx_buffer(m, opset, &data, &size);
    if (st != HLR_OK)
        return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        hlr__free(data);
        return hlr__fail(HLR_EIO, "%s: cannot write %s: %s", FN, path, strerror(e));
    }
    size_t wrote = fwrite(data, 1, size, f);
    int closed = fclose(f);
    hlr__free(data);
    if (wrote != size || closed != 0) {
        remove(path);
        return hlr__fail(HLR_EIO, "%s: cannot write %s (disk full?)", FN, path);
    }
    return HLR_OK;
}

/*
 * onnx_import.c -- hlr_model_import_onnx: an ONNX model as a libhlr model.
 *
 * The file is hostile input: protobuf-c parses it (bounds-checked), then
 * every count, shape, attribute and data length is checked before use.  The
 * graph must be a chain of layers, the way torch.onnx.export writes an
 * nn.Sequential and the way hlr_model_export_onnx() writes: each node reads
 * the output of the layer before it (plus constants), from one float input
 * (N, ...) to one output.  Nodes map back to layers:
 *
 *   Gemm, MatMul [+ Add]            dense
 *   Conv                            conv2d
 *   MaxPool, AveragePool            maxpool2d, avgpool2d
 *   GlobalAveragePool + Flatten     global_avgpool2d
 *   BatchNormalization              batchnorm2d / batchnorm1d
 *   Relu, LeakyRelu, Sigmoid, Tanh, Softmax (last axis), Erf-GELU as exported
 *   Flatten, Reshape                flatten, image_rows, feature_map_rows/columns (after Transpose)
 *   Dropout, Identity               nothing (inference)
 *   Transpose, LSTM/GRU, Squeeze    lstm / gru (forward or bidirectional, zero initial state)
 *   Gather (axis 1)                 seq_first, seq_last
 *   ReduceMean, ReduceMax (axis 1)  seq_mean, seq_max
 *   LayerNormalization              layernorm
 *   torch's nn.MultiheadAttention   multihead_attention (onnx_torch.c: its
 *     (batch first, self-attention)  shape arithmetic evaluated, not run)
 *   ... inside torch's pre-norm GELU transformer_encoder
 *     nn.TransformerEncoderLayer
 *   Identity of a constant          that constant under another name
 *
 * plus the shape arithmetic exporters emit for initial states (Shape,
 * Gather, Unsqueeze, Concat, ConstantOfShape of zeros, Constant).  Anything
 * else is refused with a message naming the node and its operator.
 */
#include "onnx_import.h"
#include "modelfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IFN "hlr_model_import_onnx"
#define MAX_LAYERS 4096
/* Why an Add of the chain and another tensor is refused. */
#define RESIDUAL_READ                                                                                                  \
    "a residual connection is read only inside an encoder block as hlr_model_export_onnx() or PyTorch's "              \
    "nn.TransformerEncoderLayer(batch_first=True, norm_first=True, activation='gelu') writes it"

static hlr_status node_fail(imp *p, const Onnx__NodeProto *n, const char *fmt, ...) HLR_PRINTF(3, 4);
static hlr_status node_fail(imp *p, const Onnx__NodeProto *n, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return hlr__fail(HLR_EUNSUPPORTED, "%s: node %zu '%.64s' (%.32s): %s", IFN, p->at, s_(n->name), s_(n->op_type), why);
}

static hlr_status add_tensor(imp *p, const char *name, const Onnx__TensorProto *t)
{
    if (p->nk == p->capk) {
        int cap = p->capk ? 2 * p->capk : 64;
        konst *k = hlr__realloc(p->k, (size_t)cap * sizeof *k);
        if (!k)
            return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
        p->k = k, p->capk = cap;
    }
    konst *k = &p->k[p->nk];
    memset(k, 0, sizeof *k);
    k->name = s_(name);
    if (t->n_dims > 8)
        return hlr__fail(HLR_EFORMAT, "%s: tensor '%.64s' has %zu dimensions", IFN, k->name, t->n_dims);
    k->ndim = (int)t->n_dims;
    k->n = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0 || (t->dims[d] > 0 && k->n > (INT64_C(1) << 40) / t->dims[d]))
            return hlr__fail(HLR_EFORMAT, "%s: tensor '%.64s' has a bad dimension %lld", IFN, k->name,
                             (long long)t->dims[d]);
        k->dims[d] = t->dims[d];
        k->n *= t->dims[d];
    }
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        k->is_float = 1;
        if (t->has_raw_data && t->raw_data.len == (size_t)k->n * 4)
            k->f = (const float *)t->raw_data.data;
        else if (!t->has_raw_data && t->n_float_data == (size_t)k->n)
            k->f = t->float_data;
        else
            return hlr__fail(HLR_EFORMAT, "%s: tensor '%.64s' holds %zu bytes of data for %lld floats", IFN, k->name,
                             t->has_raw_data ? t->raw_data.len : t->n_float_data * 4, (long long)k->n);
        if ((uintptr_t)k->f % sizeof(float)) { /* raw bytes need not be aligned: copy them */
            k->f_owned = hlr__malloc((size_t)k->n * sizeof(float) + 1);
            if (!k->f_owned)
                return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
            memcpy(k->f_owned, k->f, (size_t)k->n * sizeof(float));
            k->f = k->f_owned;
        }
    } else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
        k->i = hlr__malloc((size_t)k->n * sizeof(int64_t) + 1);
        if (!k->i)
            return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
        if (t->has_raw_data && t->raw_data.len == (size_t)k->n * 8) {
            if (k->n) /* an empty tensor's data may be NULL */
                memcpy(k->i, t->raw_data.data, (size_t)k->n * 8);
        } else if (!t->has_raw_data && t->n_int64_data == (size_t)k->n) {
            if (k->n)
                memcpy(k->i, t->int64_data, (size_t)k->n * 8);
        } else {
            hlr__free(k->i);
            return hlr__fail(HLR_EFORMAT, "%s: tensor '%.64s' holds the wrong amount of data for %lld int64s", IFN,
                             k->name, (long long)k->n);
        }
    } else {
        /* other types (exporters' int32 / bool constants) are kept nameless: a node that needs one is refused */
        k->n = 0;
    }
    p->nk++;
    return HLR_OK;
}

/* Constant src under another name (an Identity's or an Expand's output): the same values, the float data
 * shared, the int64 data copied (each konst frees its own). */
static hlr_status add_alias(imp *p, const char *name, const konst *src)
{
    const konst copy = *src; /* add_tensor may move p->k */
    hlr_status st = add_tensor(p, name, &(Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT);
    if (st != HLR_OK)
        return st;
    konst *k = &p->k[p->nk - 1];
    const char *own = k->name;
    *k = copy;
    k->name = own, k->f_owned = NULL, k->i = NULL;
    if (copy.i && !(k->i = hlr__malloc((size_t)copy.n * sizeof *k->i + 1)))
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
    if (copy.i && copy.n)
        memcpy(k->i, copy.i, (size_t)copy.n * sizeof *k->i);
    return HLR_OK;
}

/* An INTS attribute, all of whose values equal one another (square kernels, symmetric pads): that value, or
 * dflt when absent; -1 when the values differ or there are not n of them. */
static int64_t attr_same(const Onnx__NodeProto *n, const char *name, size_t count, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a)
        return dflt;
    if (a->n_ints != count)
        return -1;
    for (size_t i = 1; i < count; i++)
        if (a->ints[i] != a->ints[0])
            return -1;
    return a->ints[0];
}

/* Is tensor name read by any node after the current one (or is it the graph's output)? */
static int used_later(const imp *p, const char *name)
{
    if (!*name)
        return 0;
    for (size_t j = p->at + 1; j < p->g->n_node; j++)
        for (size_t i = 0; i < p->g->node[j]->n_input; i++)
            if (!strcmp(s_(p->g->node[j]->input[i]), name))
                return 1;
    return p->g->n_output > 0 && !strcmp(s_(p->g->output[0]->name), name);
}

/* ---- layers ---- */

static hlr_status add_layer(imp *p, const Onnx__NodeProto *n, hlr_layer *l)
{
    if (!l)
        return hlr_last_status();
    if (p->nlayers == MAX_LAYERS) {
        hlr_layer_free(l);
        return node_fail(p, n, "more than %d layers", MAX_LAYERS);
    }
    hlr_status st = hlr_model_add(p->m, l);
    if (st != HLR_OK)
        return st;
    p->nlayers++;
    return HLR_OK;
}

/* Copy values (transposed from rows x cols when rows > 0) for parameter `name` of the last layer. */
static hlr_status pend(imp *p, const char *name, const float *src, int64_t n, int64_t rows, int64_t cols)
{
    if (p->npend == p->cappend) {
        int cap = p->cappend ? 2 * p->cappend : 32;
        struct pend *q = hlr__realloc(p->pend, (size_t)cap * sizeof *q);
        if (!q)
            return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
        p->pend = q, p->cappend = cap;
    }
    float *d = hlr__malloc((size_t)n * sizeof *d + 1);
    if (!d)
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
    if (rows > 0)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                d[c * rows + r] = src[r * cols + c];
    else
        memcpy(d, src, (size_t)n * sizeof *d);
    struct pend *q = &p->pend[p->npend++];
    q->layer = p->nlayers - 1, q->data = d, q->n = n;
    snprintf(q->param, sizeof q->param, "%s", name);
    return HLR_OK;
}

static int64_t numel(const hlr_shape *s)
{
    int64_t v = 1;
    for (int i = 0; i < s->ndim; i++)
        v *= s->d[i];
    return v;
}

#define NEED(cond, ...)                                                                                            \
    do {                                                                                                           \
        if (!(cond))                                                                                               \
            return node_fail(p, n, __VA_ARGS__);                                                                   \
    } while (0)

static hlr_status dense(imp *p, const Onnx__NodeProto *n, int gemm)
{
    const int64_t in = p->shape.d[p->shape.ndim - 1];
    const konst *W = fk(p, n, 1, 2), *B = NULL;
    NEED(W, "the weight must be a constant matrix");
    int trans = gemm ? (int)attr_i(n, "transB", 0) : 0; /* MatMul: W is (in, out) */
    if (gemm) {
        NEED(attr_f(n, "alpha", 1) == 1 && attr_f(n, "beta", 1) == 1 && !attr_i(n, "transA", 0),
             "only alpha 1, beta 1 and transA 0 are read");
        NEED(p->shape.ndim == 1, "Gemm on a %d-dimensional sample", p->shape.ndim);
        if (n->n_input > 2 && *in_(n, 2))
            B = fk(p, n, 2, -1);
        NEED(n->n_input <= 2 || !*in_(n, 2) || B, "the bias must be a constant");
    }
    const int64_t out = trans ? W->dims[0] : W->dims[1];
    NEED((trans ? W->dims[1] : W->dims[0]) == in, "the weight is %lldx%lld for %lld inputs", (long long)W->dims[0],
         (long long)W->dims[1], (long long)in);
    /* MatMul followed by Add of a constant vector: the bias */
    if (!gemm && p->at + 1 < p->g->n_node) {
        const Onnx__NodeProto *a = p->g->node[p->at + 1];
        const int first = !strcmp(in_(a, 0), out_(n, 0)); /* y + b or b + y */
        const konst *b = find_k(p, in_(a, first ? 1 : 0));
        if (!strcmp(s_(a->op_type), "Add") && a->n_input == 2 && (first || !strcmp(in_(a, 1), out_(n, 0))) && b &&
            b->is_float && b->n == out) {
            B = b;
            p->at++;
            n = a;
        }
    }
    NEED(!B || B->n == out, "the bias has %lld values for %lld outputs", (long long)B->n, (long long)out);
    NEED(in <= INT32_MAX && out <= INT32_MAX && out > 0, "too large");
    hlr_status st = add_layer(p, n, hlr_dense((int)in, (int)out, B != NULL));
    if (st == HLR_OK)
        st = trans ? pend(p, "weight", W->f, W->n, 0, 0) : pend(p, "weight", W->f, W->n, in, out);
    if (st == HLR_OK && B)
        st = pend(p, "bias", B->f, B->n, 0, 0);
    p->shape.d[p->shape.ndim - 1] = out;
    return st;
}

/* auto_pad absent, NOTSET, or VALID with no pads: the explicit pads are what counts. */
static int explicit_pads(const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (!ap || !ap->has_s || (ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6)))
        return 1;
    return ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5) && attr_same(n, "pads", 4, 0) == 0;
}

static hlr_status conv(imp *p, const Onnx__NodeProto *n)
{
    NEED(p->shape.ndim == 3, "the input is not (C, H, W)");
    const konst *W = fk(p, n, 1, 4), *B = n->n_input > 2 && *in_(n, 2) ? fk(p, n, 2, 1) : NULL;
    NEED(W, "the weight must be a constant (out, in / groups, kh, kw)");
    NEED(n->n_input <= 2 || !*in_(n, 2) || B, "the bias must be a constant vector");
    const int64_t s = attr_same(n, "strides", 2, 1), d = attr_same(n, "dilations", 2, 1), pad = attr_same(n, "pads", 4, 0),
                  g = attr_i(n, "group", 1);
    NEED(explicit_pads(n), "auto_pad SAME_UPPER / SAME_LOWER is not read");
    NEED(s >= 1 && d >= 1 && pad >= 0 && g >= 1, "strides, dilations and pads must be equal in both directions");
    NEED(g <= 65536 && W->dims[1] <= 65536, "too many groups or channels");
    const int64_t cout = W->dims[0], cin = W->dims[1] * g;
    NEED(cin == p->shape.d[0] && cout % g == 0, "the weight does not fit %lld input channels", (long long)p->shape.d[0]);
    NEED(!B || B->n == cout, "the bias has %lld values", (long long)(B ? B->n : 0));
    const int64_t kh = W->dims[2], kw = W->dims[3];
    NEED(cout <= 65536 && kh <= 4096 && kw <= 4096 && s <= 4096 && pad <= 4096 && d <= 4096, "too large");
    hlr_status st = add_layer(p, n,
                              hlr_conv2d((int)cin, (int)cout,
                                         &(hlr_conv2d_options){.kernel_h = (int)kh,
                                                               .kernel_w = (int)kw,
                                                               .stride = (int)s,
                                                               .padding = (int)pad,
                                                               .dilation = (int)d,
                                                               .groups = (int)g,
                                                               .no_bias = !(B != NULL)}));
    if (st == HLR_OK)
        st = pend(p, "weight", W->f, W->n, 0, 0);
    if (st == HLR_OK && B)
        st = pend(p, "bias", B->f, B->n, 0, 0);
    const int64_t H = (p->shape.d[1] + 2 * pad - d * (kh - 1) - 1) / s + 1, Wd = (p->shape.d[2] + 2 * pad - d * (kw - 1) - 1) / s + 1;
    p->shape = (hlr_shape){.ndim = 3, .d = {cout, H, Wd}};
    return st;
}

/* An INTS attribute of n values read as (h, w) pairs, [h, w] or ONNX's pads [h0, w0, h1, w1] with each axis
 * symmetric: 0 and v[0..1] set (dflt when absent), -1 otherwise. */
static int attr_hw(const Onnx__NodeProto *n, const char *name, size_t count, int64_t dflt, int64_t v[2])
{
    const Onnx__AttributeProto *a = attr(n, name);
    v[0] = v[1] = dflt;
    if (!a)
        return 0;
    if (a->n_ints != count || (count == 4 && (a->ints[0] != a->ints[2] || a->ints[1] != a->ints[3])))
        return -1;
    v[0] = a->ints[0];
    v[1] = a->ints[1];
    return 0;
}

static hlr_status pool(imp *p, const Onnx__NodeProto *n, int avg)
{
    NEED(p->shape.ndim == 3, "the input is not (C, H, W)");
    int64_t k[2], s[2], pad[2];
    NEED(!attr_hw(n, "kernel_shape", 2, -1, k) && !attr_hw(n, "strides", 2, 1, s) && !attr_hw(n, "pads", 4, 0, pad),
         "kernel_shape and strides must have two values and pads four, the same before and after");
    NEED(k[0] >= 1 && k[1] >= 1 && s[0] >= 1 && s[1] >= 1 && pad[0] >= 0 && pad[1] >= 0,
         "kernel_shape and strides must be >= 1 and pads >= 0");
    NEED(explicit_pads(n), "auto_pad SAME_UPPER / SAME_LOWER is not read");
    NEED(!attr_i(n, "ceil_mode", 0), "ceil_mode 1 is not read");
    NEED(attr_same(n, "dilations", 2, 1) == 1, "dilated pooling is not read");
    NEED(!avg || (pad[0] == 0 && pad[1] == 0) || attr_i(n, "count_include_pad", 0),
         "average pooling must count the padding");
    NEED(k[0] <= 4096 && k[1] <= 4096 && s[0] <= 4096 && s[1] <= 4096, "a kernel or stride over 4096");
    NEED(pad[0] <= k[0] / 2 && pad[1] <= k[1] / 2, "a pad over half the kernel");
    const int v[6] = {(int)k[0], (int)k[1], (int)s[0], (int)s[1], (int)pad[0], (int)pad[1]};
    hlr_status st = add_layer(p, n,
                              avg ? hlr_avgpool2d_hw(v[0], v[1], v[2], v[3], v[4], v[5])
                                  : hlr_maxpool2d_hw(v[0], v[1], v[2], v[3], v[4], v[5]));
    p->shape.d[1] = (p->shape.d[1] + 2 * pad[0] - k[0]) / s[0] + 1;
    p->shape.d[2] = (p->shape.d[2] + 2 * pad[1] - k[1]) / s[1] + 1;
    return st;
}

static hlr_status batchnorm(imp *p, const Onnx__NodeProto *n)
{
    const int64_t C = p->shape.d[0];
    const konst *k[4];
    for (int i = 0; i < 4; i++) {
        k[i] = fk(p, n, (size_t)i + 1, 1);
        NEED(k[i] && k[i]->n == C, "scale, bias, mean and variance must be constants of %lld values", (long long)C);
    }
    NEED(p->shape.ndim == 3 || p->shape.ndim == 1 || p->shape.ndim == 2, "a %d-dimensional sample", p->shape.ndim);
    NEED(!attr_i(n, "training_mode", 0), "training_mode 1 (statistics of the batch) is not read");
    NEED(C <= INT32_MAX, "too large");
    const float eps = attr_f(n, "epsilon", 1e-5f);
    hlr_status st = add_layer(p, n, p->shape.ndim == 3 ? hlr_batchnorm2d((int)C, eps, 0.1f)
                                                       : hlr_batchnorm1d((int)C, eps, 0.1f));
    static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4 && st == HLR_OK; i++)
        st = pend(p, names[i], k[i]->f, C, 0, 0);
    return st;
}

/* The shape a Reshape asks for, per sample: its constant target with 0 (copy) and -1 (the rest) resolved; the
 * batch must stay first.  0, or -1 when the target is not a constant or does not keep the batch. */
static int reshape_target(imp *p, const Onnx__NodeProto *n, hlr_shape *to)
{
    const konst *k = find_k(p, in_(n, 1));
    if (!k || !k->i || k->ndim != 1 || k->n < 2 || k->n > HLR_MAX_DIMS + 1)
        return -1;
    if (k->i[0] != 0 && k->i[0] != -1)
        return -1;
    to->ndim = (int)k->n - 1;
    int64_t known = 1, minus = -1;
    for (int i = 1; i < k->n; i++) {
        int64_t v = k->i[i];
        if (v == 0 && i - 1 < p->shape.ndim)
            v = p->shape.d[i - 1];
        if (v == -1 && minus < 0) {
            minus = i - 1;
            continue;
        }
        if (v <= 0)
            return -1;
        to->d[i - 1] = v;
        known *= v;
    }
    if (minus >= 0) {
        if (known <= 0 || numel(&p->shape) % known)
            return -1;
        to->d[minus] = numel(&p->shape) / known;
    }
    if (k->i[0] == -1 && numel(to) != numel(&p->shape))
        return -1;
    return numel(to) == numel(&p->shape) ? 0 : -1;
}

static int same_shape(const hlr_shape *a, const hlr_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

/* A recurrent node (X in the time-first layout): becomes an lstm or gru layer once its use is known. */
static hlr_status recurrent(imp *p, const Onnx__NodeProto *n, int lstm)
{
    NEED(p->layout == L_TIME && p->shape.ndim == 2, "its input is not a batch of sequences turned time-first");
    const int64_t H = attr_i(n, "hidden_size", 0), F = p->shape.d[1], G = lstm ? 4 : 3;
    const Onnx__AttributeProto *dir = attr(n, "direction");
    int64_t D = 1;
    if (dir && dir->has_s) {
        if (dir->s.len == 13 && !memcmp(dir->s.data, "bidirectional", 13))
            D = 2;
        else
            NEED(dir->s.len == 7 && !memcmp(dir->s.data, "forward", 7), "only forward and bidirectional are read");
    }
    NEED(H >= 1 && H <= 65536, "hidden_size %lld", (long long)H);
    NEED(!attr(n, "activations") && !attr(n, "clip") && !attr_i(n, "input_forget", 0) && !attr_i(n, "layout", 0),
         "custom activations, clip, input_forget and layout are not read");
    NEED(lstm || attr_i(n, "linear_before_reset", 0) == 1, "a GRU without linear_before_reset (PyTorch's) is not read");
    const konst *W = fk(p, n, 1, 3), *R = fk(p, n, 2, 3), *B = n->n_input > 3 && *in_(n, 3) ? fk(p, n, 3, 2) : NULL;
    NEED(W && R && W->dims[0] == D && W->dims[1] == G * H && W->dims[2] == F && R->dims[0] == D && R->dims[1] == G * H &&
             R->dims[2] == H,
         "W and R must be constants of (%lld, %lld, %lld) and (%lld, %lld, %lld)", (long long)D, (long long)(G * H),
         (long long)F, (long long)D, (long long)(G * H), (long long)H);
    NEED(!B || (B->dims[0] == D && B->dims[1] == 2 * G * H), "B must be a constant of (%lld, %lld)", (long long)D,
         (long long)(2 * G * H));
    NEED(!*in_(n, 4) || (p->lengths && !strcmp(in_(n, 4), p->lengths)),
         "per-sample sequence lengths are read only from the graph's lengths input");
    for (size_t i = 5; i < n->n_input && i < 8; i++) {
        const konst *z = find_k(p, in_(n, i));
        NEED(!*in_(n, i) || (z && z->zeros), "only zero initial states (and no peepholes) are read");
    }
    const int has_y = used_later(p, out_(n, 0)), has_h = used_later(p, out_(n, 1));
    NEED(has_y + has_h == 1 && !used_later(p, out_(n, 2)), "either Y or Y_h must be read on, not both, not Y_c");
    NEED(F <= INT32_MAX, "too large");
    hlr_status st = add_layer(p, n, lstm ? hlr_lstm((int)F, (int)H, 1, (has_y ? HLR_RETURN_SEQUENCES : 0) |
                                                                          (D == 2 ? HLR_BIDIRECTIONAL : 0), 0.0f)
                                         : hlr_gru((int)F, (int)H, 1, (has_y ? HLR_RETURN_SEQUENCES : 0) |
                                                                         (D == 2 ? HLR_BIDIRECTIONAL : 0), 0.0f));
    /* ONNX's gate order back to PyTorch's: LSTM i f g o <- i o f c, GRU r z n <- z r h */
    static const int lstm_from[4] = {0, 2, 3, 1}, gru_from[3] = {1, 0, 2};
    const int *from = lstm ? lstm_from : gru_from;
    static const char *const kinds[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    float *buf = hlr__malloc((size_t)(G * H * (F > H ? F : H)) * sizeof *buf + 1);
    if (!buf)
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
    for (int64_t d = 0; d < D && st == HLR_OK; d++)
        for (int kind = 0; kind < 4 && st == HLR_OK; kind++) {
            const int64_t cols = kind == 0 ? F : kind == 1 ? H : 1;
            const float *src = kind == 0 ? W->f + d * G * H * F
                               : kind == 1 ? R->f + d * G * H * H
                                           : B ? B->f + d * 2 * G * H + (kind == 3 ? G * H : 0) : NULL;
            for (int gte = 0; gte < G; gte++)
                for (int64_t r = 0; r < H * cols; r++)
                    buf[gte * H * cols + r] = src ? src[from[gte] * H * cols + r] : 0.0f;
            char name[HLR_PARAM_NAME_MAX];
            snprintf(name, sizeof name, "%s%s", kinds[kind], d ? "_reverse" : "");
            st = pend(p, name, buf, G * H * cols, 0, 0);
        }
    hlr__free(buf);
    p->rnn_dirs = D;
    if (has_y) {
        p->cur = out_(n, 0);
        p->layout = L_RNN_Y; /* (T, D, N, H) */
    } else {
        p->cur = out_(n, 1);
        p->layout = L_RNN_H; /* (D, N, H) */
    }
    p->shape = has_y ? (hlr_shape){.ndim = 2, .d = {p->shape.d[0], D * H}} : (hlr_shape){.ndim = 1, .d = {D * H}};
    return st;
}

/* The index of the first node after `from` that is not a Constant (constants are read first) nor a computation
 * on the lengths alone (marked first), or the count. */
static int derived(const imp *p, const char *t);

static size_t next_node(const imp *p, size_t from)
{
    size_t j = from + 1;
    while (j < p->g->n_node && p->g->node[j] &&
           (!strcmp(s_(p->g->node[j]->op_type), "Constant") ||
            (p->nderived && p->g->node[j]->n_output == 1 && derived(p, out_(p->g->node[j], 0)))))
        j++;
    return j;
}

/* GELU as exporters write it: x / sqrt 2 (or x * (1 / sqrt 2)), Erf, + 1, x * that, * 0.5 (in either operand
 * order; constants may stand between).  1 and *last, the index of its last node; or 0. */
static int gelu_at(imp *p, const Onnx__NodeProto *n, size_t *last)
{
    size_t idx[5] = {p->at};
    for (int k = 1; k < 5; k++) {
        idx[k] = next_node(p, idx[k - 1]);
        if (idx[k] >= p->g->n_node || !p->g->node[idx[k]])
            return 0;
    }
    Onnx__NodeProto *q[5];
    for (int k = 0; k < 5; k++)
        q[k] = p->g->node[idx[k]];
    float c;
    const char *x = in_(n, 0);
    const int div = !strcmp(s_(n->op_type), "Div");
    if (!scalar(p, in_(n, 1), &c) || fabsf(div ? c - 1.41421356f : c - 0.70710678f) > 1e-3f)
        return 0;
#define IS(k, name) (!strcmp(s_(q[k]->op_type), name))
#define READS(k, t) (!strcmp(in_(q[k], 0), t) || !strcmp(in_(q[k], 1), t))
    float one, half;
    const char *a = !strcmp(in_(q[2], 0), out_(q[1], 0)) ? in_(q[2], 1) : in_(q[2], 0);
    const char *h = !strcmp(in_(q[4], 0), out_(q[3], 0)) ? in_(q[4], 1) : in_(q[4], 0);
    *last = idx[4];
    return IS(1, "Erf") && !strcmp(in_(q[1], 0), out_(n, 0)) && IS(2, "Add") && READS(2, out_(q[1], 0)) &&
           scalar(p, a, &one) && one == 1.0f && IS(3, "Mul") && READS(3, x) && READS(3, out_(q[2], 0)) &&
           IS(4, "Mul") && READS(4, out_(q[3], 0)) && scalar(p, h, &half) && half == 0.5f;
#undef IS
#undef READS
}

/* ---- the composite patterns hlr_model_export_onnx() writes ---- */

static Onnx__NodeProto *next_is(const imp *p, size_t *at, const char *op, const char *t);

/* A Conv of kernel = stride, no padding, then Reshape (0, D, -1) and Transpose (0, 2, 1): a patch embedding.
 * 1 and *out (the Transpose's output) when it is one. */
static int patch_at(imp *p, const Onnx__NodeProto *n, const char **out)
{
    const konst *W = fk(p, n, 1, 4);
    if (!W || p->shape.ndim != 3 || W->dims[2] != W->dims[3] || W->dims[2] < 1)
        return 0;
    const int64_t k = W->dims[2];
    if (attr_same(n, "strides", 2, 1) != k || attr_same(n, "pads", 4, 0) != 0 || attr_same(n, "dilations", 2, 1) != 1 ||
        attr_i(n, "group", 1) != 1)
        return 0;
    size_t at = p->at;
    Onnx__NodeProto *r = next_is(p, &at, "Reshape", out_(n, 0));
    const konst *sh = r ? find_k(p, in_(r, 1)) : NULL;
    if (!sh || !sh->i || sh->n != 3 || sh->i[0] != 0 || sh->i[1] != W->dims[0] || sh->i[2] != -1)
        return 0;
    Onnx__NodeProto *t = next_is(p, &at, "Transpose", out_(r, 0));
    if (!t || !perm_is(t, 3, (int64_t[]){0, 2, 1}))
        return 0;
    *out = out_(t, 0);
    return 1;
}

static hlr_status patch_embedding(imp *p, const Onnx__NodeProto *n)
{
    const konst *W = fk(p, n, 1, 4), *B = n->n_input > 2 && *in_(n, 2) ? fk(p, n, 2, 1) : NULL;
    const int64_t D = W->dims[0], C = W->dims[1], k = W->dims[2];
    NEED(C == p->shape.d[0] && (!B || B->n == D) && D <= INT32_MAX && k <= 4096, "the weight does not fit the input");
    NEED(p->shape.d[1] % k == 0 && p->shape.d[2] % k == 0, "the patches do not tile the picture");
    hlr_status st = add_layer(p, n, hlr_patch_embedding((int)C, (int)k, (int)D));
    if (st == HLR_OK)
        st = pend(p, "weight", W->f, W->n, 0, 0);
    if (st == HLR_OK && B)
        st = pend(p, "bias", B->f, D, 0, 0);
    for (int i = 0; i < 2; i++) /* the Reshape and the Transpose */
        p->at = next_node(p, p->at);
    p->shape = (hlr_shape){.ndim = 2, .d = {(p->shape.d[1] / k) * (p->shape.d[2] / k), D}};
    return st;
}

/* The node after `from` (constants skipped), if it has op type op and reads t as one of its inputs. */
static Onnx__NodeProto *next_is(const imp *p, size_t *at, const char *op, const char *t)
{
    size_t j = next_node(p, *at);
    if (j >= p->g->n_node || !p->g->node[j] || strcmp(s_(p->g->node[j]->op_type), op))
        return NULL;
    Onnx__NodeProto *n = p->g->node[j];
    int reads = 0;
    for (size_t i = 0; i < n->n_input; i++)
        reads |= !strcmp(s_(n->input[i]), t);
    if (!reads)
        return NULL;
    *at = j;
    return n;
}

typedef struct mha_match {
    int64_t E, heads, T;
    int causal;
    const konst *w[3], *b[3], *wo, *bo; /* W_k^T (E, E), b_k (E); Wo^T, bo */
    const char *out;                    /* the attention's output tensor */
    size_t end;                         /* the index of its last node */
} mha_match;

/* Self-attention over x (N, T, E) as the export writes it (mha() in onnx_export.c), starting at node
 * index `at` - 1 (the first MatMul is the next node).  1 when it matches. */
static int match_mha(imp *p, size_t at, const char *x, int64_t T, int64_t E, mha_match *m)
{
    memset(m, 0, sizeof *m);
    m->E = E, m->T = T;
    const char *heads[3];
    for (int k = 0; k < 3; k++) {
        Onnx__NodeProto *n = next_is(p, &at, "MatMul", x);
        if (!n || strcmp(in_(n, 0), x) || !(m->w[k] = find_k(p, in_(n, 1))) || !m->w[k]->is_float ||
            m->w[k]->ndim != 2 || m->w[k]->dims[0] != E || m->w[k]->dims[1] != E)
            return 0;
        const char *y = out_(n, 0);
        size_t save = at;
        Onnx__NodeProto *a = next_is(p, &at, "Add", y);
        if (a && (m->b[k] = other_const(p, a, y)) && m->b[k]->is_float && m->b[k]->n == E)
            y = out_(a, 0);
        else
            at = save, m->b[k] = NULL;
        Onnx__NodeProto *r = next_is(p, &at, "Reshape", y);
        const konst *shape = r ? find_k(p, in_(r, 1)) : NULL;
        if (!shape || !shape->i || shape->n != 4 || shape->i[2] < 1 || E % shape->i[2] || shape->i[3] != E / shape->i[2])
            return 0;
        if (k == 0)
            m->heads = shape->i[2];
        else if (shape->i[2] != m->heads)
            return 0;
        Onnx__NodeProto *t = next_is(p, &at, "Transpose", out_(r, 0));
        if (!t || !perm_is(t, 4, k == 1 ? (int64_t[]){0, 2, 3, 1} : (int64_t[]){0, 2, 1, 3}))
            return 0;
        heads[k] = out_(t, 0);
    }
    if ((m->b[0] != NULL) != (m->b[1] != NULL) || (m->b[0] != NULL) != (m->b[2] != NULL))
        return 0;
    Onnx__NodeProto *n = next_is(p, &at, "MatMul", heads[0]);
    if (!n || strcmp(in_(n, 1), heads[1]))
        return 0;
    Onnx__NodeProto *sc = next_is(p, &at, "Mul", out_(n, 0));
    const konst *c = sc ? other_const(p, sc, out_(n, 0)) : NULL;
    if (!c || !c->is_float || c->n != 1 || fabsf(c->f[0] - 1.0f / sqrtf((float)(E / m->heads))) > 1e-6f)
        return 0;
    const char *y = out_(sc, 0);
    size_t save = at;
    Onnx__NodeProto *mask = next_is(p, &at, "Add", y);
    const konst *mk = mask ? other_const(p, mask, y) : NULL;
    if (mk && mk->is_float && mk->ndim == 2 && mk->dims[0] == T && mk->dims[1] == T) {
        for (int64_t i = 0; i < T; i++) /* only the causal triangle is read */
            for (int64_t j = 0; j < T; j++)
                if (j > i ? !isinf(mk->f[i * T + j]) || mk->f[i * T + j] > 0 : mk->f[i * T + j] != 0)
                    return 0;
        m->causal = 1;
        y = out_(mask, 0);
    } else {
        at = save;
    }
    Onnx__NodeProto *sm = next_is(p, &at, "Softmax", y);
    if (!sm || attr_i(sm, "axis", -1) != -1)
        return 0;
    n = next_is(p, &at, "MatMul", out_(sm, 0));
    if (!n || strcmp(in_(n, 1), heads[2]))
        return 0;
    Onnx__NodeProto *t = next_is(p, &at, "Transpose", out_(n, 0));
    if (!t || !perm_is(t, 4, (int64_t[]){0, 2, 1, 3}))
        return 0;
    Onnx__NodeProto *r = next_is(p, &at, "Reshape", out_(t, 0));
    if (!r)
        return 0;
    m->out = out_(r, 0);
    m->end = at;
    save = at;
    Onnx__NodeProto *o = next_is(p, &at, "MatMul", m->out);
    if (o && !strcmp(in_(o, 0), m->out) && (m->wo = find_k(p, in_(o, 1))) && m->wo->is_float && m->wo->ndim == 2 &&
        m->wo->dims[0] == E && m->wo->dims[1] == E) {
        m->out = out_(o, 0);
        m->end = at;
        Onnx__NodeProto *ab = next_is(p, &at, "Add", m->out);
        if (ab && (m->bo = other_const(p, ab, m->out)) && m->bo->is_float && m->bo->n == E) {
            m->out = out_(ab, 0);
            m->end = at;
        } else {
            m->bo = NULL;
        }
    } else {
        m->wo = NULL;
    }
    (void)save;
    return 1;
}

/* The attention's parameters into the last layer, named with prefix ("" or "self_attn."). */
static hlr_status pend_mha(imp *p, const mha_match *m, const char *prefix)
{
    const int64_t E = m->E;
    float *w = hlr__malloc((size_t)(3 * E * E) * sizeof *w), *b = hlr__malloc((size_t)(3 * E) * sizeof *b);
    hlr_status st = w && b ? HLR_OK : hlr__fail(HLR_ENOMEM, "%s: out of memory", IFN);
    for (int k = 0; st == HLR_OK && k < 3; k++) {
        for (int64_t i = 0; i < E; i++) /* W^T (E, E) back to the rows of in_proj_weight */
            for (int64_t j = 0; j < E; j++)
                w[(k * E + i) * E + j] = m->w[k]->f[j * E + i];
        if (m->b[k])
            memcpy(b + k * E, m->b[k]->f, (size_t)E * sizeof *b);
    }
    char name[HLR_PARAM_NAME_MAX];
    if (st == HLR_OK) {
        snprintf(name, sizeof name, "%sin_proj_weight", prefix);
        st = pend(p, name, w, 3 * E * E, 0, 0);
    }
    if (st == HLR_OK && m->b[0]) {
        snprintf(name, sizeof name, "%sin_proj_bias", prefix);
        st = pend(p, name, b, 3 * E, 0, 0);
    }
    if (st == HLR_OK && m->wo) {
        snprintf(name, sizeof name, "%sout_proj.weight", prefix);
        st = pend(p, name, m->wo->f, E * E, E, E);
    }
    if (st == HLR_OK && m->bo) {
        snprintf(name, sizeof name, "%sout_proj.bias", prefix);
        st = pend(p, name, m->bo->f, E, 0, 0);
    }
    hlr__free(w);
    hlr__free(b);
    return st;
}

/* PyTorch's attention's parameters into the last layer, named with prefix ("" or "self_attn."). */
static hlr_status pend_torch_mha(imp *p, const torch_mha *m, const char *prefix)
{
    const int64_t E = m->E;
    char name[HLR_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%sin_proj_weight", prefix);
    hlr_status st = pend(p, name, m->w_in->f, 3 * E * E, E, 3 * E); /* (E, 3E) back to (3E, E) */
    if (st == HLR_OK && m->b_in) {
        snprintf(name, sizeof name, "%sin_proj_bias", prefix);
        st = pend(p, name, m->b_in->f, 3 * E, 0, 0);
    }
    if (st == HLR_OK) {
        snprintf(name, sizeof name, "%sout_proj.weight", prefix);
        st = m->w_out_t ? pend(p, name, m->w_out->f, E * E, 0, 0) : pend(p, name, m->w_out->f, E * E, E, E);
    }
    if (st == HLR_OK && m->b_out) {
        snprintf(name, sizeof name, "%sout_proj.bias", prefix);
        st = pend(p, name, m->b_out->f, E, 0, 0);
    }
    return st;
}

/* A MatMul by a constant (in, out) and an Add of a constant (out) reading t: 1 with both, or 0. */
static int linear_at(imp *p, size_t *at, const char *t, const konst **w, const konst **b, const char **out)
{
    Onnx__NodeProto *n = next_is(p, at, "MatMul", t);
    if (!n || strcmp(in_(n, 0), t) || !(*w = find_k(p, in_(n, 1))) || !(*w)->is_float || (*w)->ndim != 2)
        return 0;
    Onnx__NodeProto *a = next_is(p, at, "Add", out_(n, 0));
    if (!a || !(*b = other_const(p, a, out_(n, 0))) || !(*b)->is_float || (*b)->n != (*w)->dims[1])
        return 0;
    *out = out_(a, 0);
    return 1;
}

/* A pre-norm encoder block as the export writes it (encoder_block() in onnx_export.c), starting at the
 * LayerNormalization n that reads x.  Adds the layer; 1 when it matched (p->at and the output set), 0 when
 * this is no block, -1 on error. */
static int encoder_block(imp *p, Onnx__NodeProto *n, const char *x)
{
    if (p->shape.ndim != 2)
        return 0;
    const int64_t T = p->shape.d[0], E = p->shape.d[1];
    const konst *n1w = fk(p, n, 1, 1), *n1b = n->n_input > 2 ? fk(p, n, 2, 1) : NULL;
    if (!n1w || !n1b || n1w->n != E || n1b->n != E)
        return 0;
    /* the attention: as hlr_model_export_onnx() writes it, or as torch.onnx.export writes
     * nn.TransformerEncoderLayer's (batch first, norm first, GELU) */
    mha_match m;
    torch_mha tm = {0};
    size_t at;
    const char *attn;
    if (match_mha(p, p->at, out_(n, 0), T, E, &m) && m.wo && m.bo) {
        at = m.end, attn = m.out;
    } else {
        const size_t j = next_node(p, p->at), save = p->at;
        Onnx__NodeProto *t = j < p->g->n_node ? p->g->node[j] : NULL;
        if (!t || strcmp(s_(t->op_type), "Transpose") || strcmp(in_(t, 0), out_(n, 0)))
            return 0;
        p->at = j;
        const int ok = hlr__onnx_match_torch_mha(p, t, &tm);
        p->at = save;
        if (!ok || !tm.b_in)
            return 0;
        m = (mha_match){.E = E, .heads = tm.heads};
        at = tm.end, attn = tm.out;
    }
    Onnx__NodeProto *r1 = next_is(p, &at, "Add", attn);
    if (!r1 || !((!strcmp(in_(r1, 0), x) && !strcmp(in_(r1, 1), attn)) ||
                 (!strcmp(in_(r1, 1), x) && !strcmp(in_(r1, 0), attn))))
        return 0;
    const char *x1 = out_(r1, 0);
    Onnx__NodeProto *n2 = next_is(p, &at, "LayerNormalization", x1);
    const konst *n2w = n2 ? fk(p, n2, 1, 1) : NULL, *n2b = n2 && n2->n_input > 2 ? fk(p, n2, 2, 1) : NULL;
    if (!n2w || !n2b || n2w->n != E || n2b->n != E)
        return 0;
    const konst *w1, *b1, *w2, *b2;
    const char *f;
    if (!linear_at(p, &at, out_(n2, 0), &w1, &b1, &f) || w1->dims[0] != E)
        return 0;
    const int64_t F = w1->dims[1];
    size_t save = p->at, gelu_end;
    p->at = next_node(p, at);
    if (p->at >= p->g->n_node || !gelu_at(p, p->g->node[p->at], &gelu_end) || strcmp(in_(p->g->node[p->at], 0), f)) {
        p->at = save;
        return 0;
    }
    at = gelu_end;
    p->at = save;
    if (!linear_at(p, &at, out_(p->g->node[gelu_end], 0), &w2, &b2, &f) || w2->dims[0] != F || w2->dims[1] != E)
        return 0;
    Onnx__NodeProto *r2 = next_is(p, &at, "Add", f);
    if (!r2 || !(!strcmp(in_(r2, 0), x1) || !strcmp(in_(r2, 1), x1)))
        return 0;
    if (E > INT32_MAX || F > INT32_MAX)
        return 0;
    if (add_layer(p, n, hlr_transformer_encoder((int)E, (int)m.heads, (int)F, m.causal ? HLR_ATTN_CAUSAL : 0, 0.0f)) !=
            HLR_OK ||
        (tm.w_in ? pend_torch_mha(p, &tm, "self_attn.") : pend_mha(p, &m, "self_attn.")) != HLR_OK ||
        pend(p, "linear1.weight", w1->f, E * F, E, F) != HLR_OK || pend(p, "linear1.bias", b1->f, F, 0, 0) != HLR_OK ||
        pend(p, "linear2.weight", w2->f, F * E, F, E) != HLR_OK || pend(p, "linear2.bias", b2->f, E, 0, 0) != HLR_OK ||
        pend(p, "norm1.weight", n1w->f, E, 0, 0) != HLR_OK || pend(p, "norm1.bias", n1b->f, E, 0, 0) != HLR_OK ||
        pend(p, "norm2.weight", n2w->f, E, 0, 0) != HLR_OK || pend(p, "norm2.bias", n2b->f, E, 0, 0) != HLR_OK)
        return -1;
    p->at = at;
    p->cur = out_(r2, 0);
    return 1;
}

/* 0: t is not computed from the lengths alone; 1: it is; 2: it is, through an Equal (a mask of the steps
 * where sequences end). */
static int derived(const imp *p, const char *t)
{
    if (p->lengths && !strcmp(t, p->lengths))
        return 1;
    for (int i = 0; i < p->nderived; i++)
        if (!strcmp(p->derived[i], t))
            return 1 + p->derived_ends[i];
    return 0;
}

/* Whether node n reads a tensor computed from the lengths (*from) and a tensor that is neither that nor a
 * constant (*other). */
static void lengths_inputs(const imp *p, const Onnx__NodeProto *n, int *from, int *other)
{
    *from = *other = 0;
    for (size_t i = 0; i < n->n_input; i++) {
        const char *t = in_(n, i);
        if (derived(p, t))
            *from = 1;
        else if (*t && !find_k(p, t))
            *other = 1;
    }
}

/* Mark the tensors computed from the lengths alone (Unsqueeze, Less, Equal and Cast of them and of
 * constants), wherever they stand in the graph. */
static hlr_status mark_derived(imp *p)
{
    for (size_t j = 0; j < p->g->n_node; j++) {
        const Onnx__NodeProto *n = p->g->node[j];
        const char *op = n ? s_(n->op_type) : "";
        if (strcmp(op, "Unsqueeze") && strcmp(op, "Less") && strcmp(op, "Equal") && strcmp(op, "Cast"))
            continue;
        int from, other, ends = !strcmp(op, "Equal");
        lengths_inputs(p, n, &from, &other);
        if (!from || other)
            continue;
        for (size_t i = 0; i < n->n_input; i++)
            ends |= derived(p, in_(n, i)) == 2;
        if (p->nderived == 32) {
            p->at = j;
            return node_fail(p, n, "too many tensors computed from the lengths");
        }
        p->derived_ends[p->nderived] = (unsigned char)ends;
        p->derived[p->nderived++] = out_(n, 0);
    }
    return HLR_OK;
}

/* The nodes around a graph's lengths input, as the export writes them (masked_pool() in onnx_export.c):
 * masks computed from the lengths (Unsqueeze, Less, Equal, Cast), and seq_max (Where, ReduceMax), seq_mean
 * (Mul, ReduceSum, Div) over each sequence's own steps, or seq_last (Where of the steps where sequences end,
 * ReduceSum).  1 when n was one of them (*st its outcome), else 0. */
static int lengths_node(imp *p, Onnx__NodeProto *n, hlr_status *st)
{
    const char *op = s_(n->op_type);
    int from_lengths, other;
    lengths_inputs(p, n, &from_lengths, &other);
    if (!from_lengths)
        return 0;
    if (!other && (!strcmp(op, "Unsqueeze") || !strcmp(op, "Less") || !strcmp(op, "Equal") || !strcmp(op, "Cast")))
        return 1; /* marked by mark_derived() */
    const int T = p->shape.ndim == 2, where = !strcmp(op, "Where") && !strcmp(in_(n, 1), p->cur),
              mul = !strcmp(op, "Mul") && (!strcmp(in_(n, 0), p->cur) || !strcmp(in_(n, 1), p->cur));
    if (!T || (!where && !mul))
        return 0; /* the LSTM's sequence_lens, or a node the chain refuses */
    /* Where keeps x where the mask holds: steps before the end (max), or the end's step alone (last). */
    const int last = where && derived(p, in_(n, 0)) == 2, max = where && !last;
    if (where) {
        const konst *fill = find_k(p, in_(n, 2));
        const float want = last ? 0.0f : -INFINITY;
        if (!fill || !fill->f || fill->n != 1 || fill->f[0] != want) {
            *st = node_fail(p, n, "a mask from the lengths keeps x where it holds and %s elsewhere",
                            last ? "0" : "-inf");
            return 1;
        }
    } else if (derived(p, in_(n, 0)) == 2 || derived(p, in_(n, 1)) == 2) {
        *st = node_fail(p, n, "a mean reads the steps before each sequence's end (Less), not its end (Equal)");
        return 1;
    }
    size_t at = p->at;
    Onnx__NodeProto *r = next_is(p, &at, max ? "ReduceMax" : "ReduceSum", out_(n, 0));
    if (!r) {
        *st = node_fail(p, n, "a mask from the lengths is read only before %s", max ? "ReduceMax" : "ReduceSum");
        return 1;
    }
    const konst *axes = max ? NULL : find_k(p, in_(r, 1)); /* ReduceMax-13 takes axes as an attribute */
    const int axis_ok = max ? attr_same(r, "axes", 1, -1) == 1 : axes && axes->i && axes->n == 1 && axes->i[0] == 1;
    if (!axis_ok || attr_i(r, "keepdims", 1)) {
        *st = node_fail(p, r, "only the steps of a sequence (axis 1, keepdims 0) are read");
        return 1;
    }
    const char *y = out_(r, 0);
    if (mul) {
        Onnx__NodeProto *d = next_is(p, &at, "Div", y);
        if (!d || strcmp(in_(d, 0), y) || !derived(p, in_(d, 1))) {
            *st = node_fail(p, r, "a masked sum is read only divided by the lengths (a mean)");
            return 1;
        }
        y = out_(d, 0);
    }
    *st = add_layer(p, n, last ? hlr_seq_last() : max ? hlr_seq_max() : hlr_seq_mean());
    p->shape = (hlr_shape){.ndim = 1, .d = {p->shape.d[1]}};
    p->at = at;
    p->cur = y;
    return 1;
}

/* The next node of the chain. */
static hlr_status node(imp *p, Onnx__NodeProto *n)
{
    const char *op = s_(n->op_type);
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return node_fail(p, n, "operators of domain '%.32s' are not read", n->domain);
    /* constants and the shape arithmetic of initial states */
    if (!strcmp(op, "Constant"))
        return HLR_OK; /* read in a first pass */
    if (!strcmp(op, "ConstantOfShape")) {
        const Onnx__AttributeProto *v = attr(n, "value");
        int zero = 1;
        if (v && v->t) {
            const Onnx__TensorProto *t = v->t;
            if (t->has_raw_data)
                for (size_t i = 0; i < t->raw_data.len; i++)
                    zero &= t->raw_data.data[i] == 0;
            for (size_t i = 0; i < t->n_float_data; i++)
                zero &= t->float_data[i] == 0;
        }
        NEED(zero, "only zeros are read");
        hlr_status st = add_tensor(p, out_(n, 0), &(Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT);
        if (st == HLR_OK)
            p->k[p->nk - 1].zeros = 1;
        return st;
    }
    int reads_cur = n->n_input > 0 && p->cur && !strcmp(in_(n, 0), p->cur);
    if (!strcmp(op, "Identity") && !reads_cur && n->n_input == 1 && find_k(p, in_(n, 0))) {
        /* another name for a constant (PyTorch writes one for each parameter equal to another) */
        return add_alias(p, out_(n, 0), find_k(p, in_(n, 0)));
    }
    if (p->lengths) {
        hlr_status st = HLR_OK;
        int r = lengths_node(p, n, &st);
        if (r)
            return st;
    }
    if (!strcmp(op, "Gather") && p->int_input && p->nlayers == 0 && n->n_input == 2 && p->cur &&
        !strcmp(in_(n, 1), p->cur)) { /* token ids into rows of a table: the embedding */
        const konst *w = fk(p, n, 0, 2);
        NEED(w && attr_i(n, "axis", 0) == 0 && w->dims[0] <= INT32_MAX && w->dims[1] <= INT32_MAX,
             "the table of an embedding must be a constant (num_embeddings, dim)");
        hlr_status st = add_layer(p, n, hlr_embedding((int)w->dims[0], (int)w->dims[1], -1));
        if (st == HLR_OK)
            st = pend(p, "weight", w->f, w->n, 0, 0);
        p->shape = (hlr_shape){.ndim = 2, .d = {p->shape.d[0], w->dims[1]}};
        p->cur = out_(n, 0);
        return st;
    }
    NEED(!p->int_input || p->nlayers > 0, "token ids are read only by an embedding (Gather of a table's rows)");
    if (!strcmp(op, "Concat") && n->n_input == 2 && p->cur && !strcmp(in_(n, 1), p->cur) && p->layout == L_BATCH) {
        /* the class token: Concat(Expand(token, (N, 1, D)), x) on the steps */
        const konst *tok = find_k(p, in_(n, 0));
        NEED(tok && tok->is_float && tok->ndim == 3 && p->shape.ndim == 2 && tok->n == p->shape.d[1] &&
                 (attr_i(n, "axis", 0) == 1 || attr_i(n, "axis", 0) == -2),
             "only a class token is read in front of the steps");
        hlr_status st = add_layer(p, n, hlr_class_token((int)p->shape.d[1]));
        if (st == HLR_OK)
            st = pend(p, "cls_token", tok->f, tok->n, 0, 0);
        p->shape.d[0] += 1;
        p->cur = out_(n, 0);
        return st;
    }
    if (!strcmp(op, "Expand") && !reads_cur) {
        /* a constant (1, 1, D) expanded over the batch: the class token, read by the Concat that follows */
        const konst *tok = find_k(p, in_(n, 0));
        NEED(tok && tok->is_float && tok->ndim == 3 && tok->dims[0] == 1 && tok->dims[1] == 1,
             "only a constant (1, 1, D) is expanded (a class token)");
        return add_alias(p, out_(n, 0), tok);
    }
    if (!reads_cur && (!strcmp(op, "Shape") || !strcmp(op, "Gather") || !strcmp(op, "Unsqueeze") ||
                       !strcmp(op, "Concat") || !strcmp(op, "Squeeze") || !strcmp(op, "Cast"))) {
        /* shape arithmetic off the chain: its results may only feed more of it or a ConstantOfShape */
        for (size_t i = 0; i < n->n_output; i++) {
            for (size_t j = p->at + 1; j < p->g->n_node; j++) {
                const Onnx__NodeProto *u = p->g->node[j];
                for (size_t q = 0; q < u->n_input; q++)
                    if (!strcmp(s_(u->input[q]), out_(n, i))) {
                        const char *uo = s_(u->op_type);
                        NEED(!strcmp(uo, "Shape") || !strcmp(uo, "Gather") || !strcmp(uo, "Unsqueeze") ||
                                 !strcmp(uo, "Concat") || !strcmp(uo, "Squeeze") || !strcmp(uo, "Cast") ||
                                 !strcmp(uo, "ConstantOfShape") || !strcmp(uo, "Expand"),
                             "shape arithmetic whose result feeds %.32s", uo);
                    }
            }
        }
        return HLR_OK;
    }
    NEED(reads_cur || strcmp(op, "Add") || !p->cur || strcmp(in_(n, 1), p->cur), RESIDUAL_READ);
    NEED(reads_cur, "it does not read the output of the layer before (only chains of layers are read)");
    if (!strcmp(op, "Shape"))
        return HLR_OK; /* of the chain's tensor, for an initial state: checked when used */
    hlr_status st = HLR_OK;
    const char *y = out_(n, 0);
    size_t gelu_end = 0;
    /* recurrent intermediates first: they change the layout, not the layers */
    if (p->layout != L_BATCH) {
        if (!strcmp(op, "LSTM") || !strcmp(op, "GRU")) {
            st = recurrent(p, n, !strcmp(op, "LSTM"));
            return st;
        }
        if (p->layout == L_TIME && !strcmp(op, "Transpose") && perm_is(n, 3, (int64_t[]){1, 0, 2}))
            p->layout = L_BATCH;
        else if (p->layout == L_RNN_Y && !strcmp(op, "Squeeze") && p->rnn_dirs == 1)
            p->layout = L_TIME;
        else if (p->layout == L_RNN_Y && !strcmp(op, "Transpose") && perm_is(n, 4, (int64_t[]){0, 2, 1, 3}))
            p->layout = L_RNN_Y2;
        else if (p->layout == L_RNN_Y2 && !strcmp(op, "Reshape"))
            p->layout = L_TIME; /* (T, N, D H) */
        else if (p->layout == L_RNN_H && !strcmp(op, "Transpose") && perm_is(n, 3, (int64_t[]){1, 0, 2}))
            p->layout = L_RNN_H2;
        else if ((p->layout == L_RNN_H2 || (p->layout == L_RNN_H && p->rnn_dirs == 1)) &&
                 (!strcmp(op, "Reshape") || !strcmp(op, "Squeeze") || !strcmp(op, "Flatten")))
            p->layout = L_BATCH;
        else
            return node_fail(p, n, "not one of the patterns around a recurrent layer that are read");
        p->cur = y;
        return HLR_OK;
    }
    torch_mha tm;
    if (!strcmp(op, "Transpose") && hlr__onnx_match_torch_mha(p, n, &tm)) {
        NEED(tm.E <= INT32_MAX && tm.heads <= INT32_MAX, "too large");
        st = add_layer(p, n, hlr_multihead_attention((int)tm.E, (int)tm.heads, tm.b_in ? 0 : HLR_ATTN_NO_BIAS, 0.0f));
        if (st == HLR_OK)
            st = pend_torch_mha(p, &tm, "");
        p->at = tm.end;
        p->cur = tm.out;
        return st;
    }
    if (!strcmp(op, "Transpose") && hlr__onnx_torch_mha_start(p, n))
        return node_fail(p, n,
                         "an nn.MultiheadAttention as torch.onnx.export writes it was not matched: "
                         "self-attention attn(x, x, x) of batch_first=True without masks, kdim, vdim, "
                         "add_bias_kv or add_zero_attn is read");
    mha_match mm;
    if (!strcmp(op, "LayerNormalization")) {
        int r = encoder_block(p, n, p->cur);
        if (r != 0)
            return r > 0 ? HLR_OK : hlr_last_status();
    }
    if (!strcmp(op, "MatMul") && p->shape.ndim == 2 && match_mha(p, p->at - 1, p->cur, p->shape.d[0], p->shape.d[1], &mm)) {
        /* match_mha starts after its argument: at - 1 (wrapping to SIZE_MAX at 0) makes this MatMul its first */
        NEED(p->shape.d[1] <= INT32_MAX, "too large");
        st = add_layer(p, n, hlr_multihead_attention((int)mm.E, (int)mm.heads, (mm.causal ? HLR_ATTN_CAUSAL : 0) |
                                                                         (mm.wo ? 0 : HLR_ATTN_NO_OUT_PROJ) |
                                                                         (mm.b[0] ? 0 : HLR_ATTN_NO_BIAS),
                                                     0.0f));
        if (st == HLR_OK)
            st = pend_mha(p, &mm, "");
        NEED(st != HLR_OK || !mm.bo || mm.wo, "an output bias without an output projection");
        p->at = mm.end;
        p->cur = mm.out;
        return st;
    }
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) {
        st = dense(p, p->g->node[p->at], !strcmp(op, "Gemm"));
        y = out_(p->g->node[p->at], 0); /* MatMul may have taken its Add */
    } else if (!strcmp(op, "Conv") && patch_at(p, n, &y)) {
        st = patch_embedding(p, n);
    } else if (!strcmp(op, "Conv")) {
        st = conv(p, n);
    } else if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        st = pool(p, n, !strcmp(op, "AveragePool"));
    } else if (!strcmp(op, "GlobalAveragePool")) {
        NEED(p->shape.ndim == 3, "the input is not (C, H, W)");
        Onnx__NodeProto *f = p->at + 1 < p->g->n_node ? p->g->node[p->at + 1] : NULL;
        NEED(f && (!strcmp(s_(f->op_type), "Flatten") || !strcmp(s_(f->op_type), "Reshape")) && !strcmp(in_(f, 0), y),
             "a GlobalAveragePool is read when a Flatten follows it");
        st = add_layer(p, n, hlr_global_avgpool2d());
        p->shape = (hlr_shape){.ndim = 1, .d = {p->shape.d[0]}};
        p->at++;
        y = out_(f, 0);
    } else if (!strcmp(op, "BatchNormalization")) {
        st = batchnorm(p, n);
    } else if ((!strcmp(op, "Mul") || !strcmp(op, "Div")) && gelu_at(p, n, &gelu_end)) {
        st = add_layer(p, n, hlr_gelu());
        p->at = gelu_end;
        y = out_(p->g->node[p->at], 0);
    } else if (!strcmp(op, "Relu")) {
        st = add_layer(p, n, hlr_relu());
    } else if (!strcmp(op, "LeakyRelu")) {
        st = add_layer(p, n, hlr_leaky_relu(attr_f(n, "alpha", 0.01f)));
    } else if (!strcmp(op, "Sigmoid")) {
        st = add_layer(p, n, hlr_sigmoid());
    } else if (!strcmp(op, "Tanh")) {
        st = add_layer(p, n, hlr_tanh());
    } else if (!strcmp(op, "Softmax")) {
        const int64_t axis = attr_i(n, "axis", -1);
        NEED(axis == -1 || axis == p->shape.ndim, "only the last axis is read");
        st = add_layer(p, n, hlr_softmax());
    } else if (!strcmp(op, "Add") && p->shape.ndim == 2) {
        const konst *t = find_k(p, in_(n, 1));
        NEED(t || find_k(p, in_(n, 0)), RESIDUAL_READ);
        NEED(t && t->is_float && t->ndim == 2 && t->dims[0] == p->shape.d[0] && t->dims[1] == p->shape.d[1],
             "only the addition of a (steps, features) table is read (positional encodings)");
        NEED(t->dims[0] <= INT32_MAX && t->dims[1] <= INT32_MAX, "too large");
        st = add_layer(p, n, hlr_positional_encoding((int)t->dims[0], (int)t->dims[1], HLR_POS_LEARNED));
        if (st == HLR_OK)
            st = pend(p, "weight", t->f, t->n, 0, 0);
    } else if (!strcmp(op, "Pad")) { /* exporters pad by nothing before an average pooling */
        const konst *k = find_k(p, in_(n, 1));
        const Onnx__AttributeProto *mode = attr(n, "mode");
        int zero = k && k->i;
        for (int64_t i = 0; zero && i < k->n; i++)
            zero = k->i[i] == 0;
        NEED(zero && (!mode || !mode->has_s || (mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8))),
             "only a Pad that pads nothing is read");
    } else if (!strcmp(op, "Dropout") || !strcmp(op, "Identity")) {
        /* inference: nothing */
    } else if (!strcmp(op, "Flatten")) {
        NEED(attr_i(n, "axis", 1) == 1, "only axis 1 is read");
        if (p->shape.ndim != 1)
            st = add_layer(p, n, hlr_flatten());
        p->shape = (hlr_shape){.ndim = 1, .d = {numel(&p->shape)}};
    } else if (!strcmp(op, "Reshape")) {
        hlr_shape to;
        NEED(reshape_target(p, n, &to) == 0, "the target shape must be constant, keep the batch and the size");
        if (to.ndim == 1 && p->shape.ndim > 1)
            st = add_layer(p, n, hlr_flatten());
        else if (p->shape.ndim == 3 && p->shape.d[0] == 1 && to.ndim == 2 && to.d[0] == p->shape.d[1])
            st = add_layer(p, n, hlr_image_rows());
        else
            NEED(same_shape(&to, &p->shape) || (to.ndim + 1 == p->shape.ndim && p->shape.d[0] == 1),
                 "a reshape to no layer's shape%s", p->shape.ndim == 2 && to.ndim == 3 ? " (attention heads? "
                 "multi-head attention is not read back)" : "");
        p->shape = to;
    } else if (!strcmp(op, "Transpose")) {
        if (p->shape.ndim == 2 && perm_is(n, 3, (int64_t[]){1, 0, 2})) {
            p->layout = L_TIME; /* into a recurrent node */
        } else if (p->shape.ndim == 3 && (perm_is(n, 4, (int64_t[]){0, 2, 1, 3}) || perm_is(n, 4, (int64_t[]){0, 3, 1, 2}))) {
            const int cols = perm_is(n, 4, (int64_t[]){0, 3, 1, 2});
            Onnx__NodeProto *r = p->at + 1 < p->g->n_node ? p->g->node[p->at + 1] : NULL;
            NEED(r && !strcmp(s_(r->op_type), "Reshape") && !strcmp(in_(r, 0), y),
                 "a feature map turned into a sequence must be reshaped next");
            st = add_layer(p, n, cols ? hlr_feature_map_columns() : hlr_feature_map_rows());
            const int64_t C = p->shape.d[0], H = p->shape.d[1], W = p->shape.d[2];
            p->shape = cols ? (hlr_shape){.ndim = 2, .d = {W, C * H}} : (hlr_shape){.ndim = 2, .d = {H, C * W}};
            p->at++;
            y = out_(r, 0);
        } else {
            return node_fail(p, n, "a transpose that is no layer's");
        }
    } else if (!strcmp(op, "ReduceMean") || !strcmp(op, "ReduceMax")) {
        NEED(p->shape.ndim == 2 && attr_same(n, "axes", 1, -1) == 1 && !attr_i(n, "keepdims", 1),
             "only the steps of a sequence (axes [1], keepdims 0) are read");
        st = add_layer(p, n, !strcmp(op, "ReduceMean") ? hlr_seq_mean() : hlr_seq_max());
        p->shape = (hlr_shape){.ndim = 1, .d = {p->shape.d[1]}};
    } else if (!strcmp(op, "Gather")) {
        const konst *k = find_k(p, in_(n, 1));
        NEED(p->shape.ndim == 2 && attr_i(n, "axis", 0) == 1 && k && k->i && k->n == 1,
             "only one step of a sequence is read");
        const int64_t T = p->shape.d[0], at = k->i[0] < 0 ? k->i[0] + T : k->i[0];
        NEED(at == 0 || at == T - 1, "only the first or the last step is read");
        st = add_layer(p, n, at == 0 ? hlr_seq_first() : hlr_seq_last());
        p->shape = (hlr_shape){.ndim = 1, .d = {p->shape.d[1]}};
        if (k->ndim == 1) /* (N, 1, F): a Reshape or Squeeze drops the step next */
            p->shape = (hlr_shape){.ndim = 2, .d = {1, p->shape.d[0]}};
    } else if (!strcmp(op, "Squeeze")) {
        NEED(p->shape.ndim == 2 && p->shape.d[0] == 1, "a squeeze that is no layer's");
        p->shape = (hlr_shape){.ndim = 1, .d = {p->shape.d[1]}};
    } else if (!strcmp(op, "LayerNormalization")) {
        const int64_t F = p->shape.d[p->shape.ndim - 1];
        const konst *w = fk(p, n, 1, 1), *b = n->n_input > 2 && *in_(n, 2) ? fk(p, n, 2, 1) : NULL;
        NEED(attr_i(n, "axis", -1) == -1 || attr_i(n, "axis", -1) == p->shape.ndim, "only the last axis is read");
        NEED(w && w->n == F && b && b->n == F, "scale and bias must be constants of %lld values", (long long)F);
        st = add_layer(p, n, hlr_layernorm((int)F, attr_f(n, "epsilon", 1e-5f)));
        if (st == HLR_OK)
            st = pend(p, "weight", w->f, F, 0, 0);
        if (st == HLR_OK)
            st = pend(p, "bias", b->f, F, 0, 0);
    } else if (!strcmp(op, "LSTM") || !strcmp(op, "GRU")) {
        return node_fail(p, n, "its input must be a batch of sequences (N, T, F) turned time-first by a Transpose "
                               "(perm 1, 0, 2)");
    } else {
        return node_fail(p, n, "this operator is not read");
    }
    p->cur = y;
    return st;
}

static void imp_free(imp *p)
{
    for (int i = 0; i < p->nk; i++) {
        hlr__free(p->k[i].f_owned);
        hlr__free(p->k[i].i);
    }
    hlr__free(p->k);
    for (int i = 0; i < p->npend; i++)
        hlr__free(p->pend[i].data);
    hlr__free(p->pend);
}

hlr_model *hlr_model_import_onnx_buffer(const void *data, size_t size)
{
    if (!data || !size) {
        hlr__fail(HLR_EINVAL, "%s: %s", IFN, !data ? "data is NULL" : "no bytes");
        return NULL;
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp) {
        hlr__fail(HLR_EFORMAT, "%s: not an ONNX model (protobuf cannot read its %zu bytes)", IFN, size);
        return NULL;
    }
    imp p = {0};
    hlr_status st = HLR_OK;
    Onnx__GraphProto *g = mp->graph;
    int64_t opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (mp->opset_import[i] && (!mp->opset_import[i]->domain || !*mp->opset_import[i]->domain ||
                                    !strcmp(mp->opset_import[i]->domain, "ai.onnx")))
            opset = mp->opset_import[i]->version;
    if (!g || g->n_output != 1 || !g->output[0])
        st = hlr__fail(HLR_EFORMAT, "%s: the model has %s", IFN, !g ? "no graph" : "not exactly one output");
    else if (opset < 9 || opset > 18)
        st = hlr__fail(HLR_EUNSUPPORTED, "%s: opset %lld; opsets 9 to 18 are read", IFN, (long long)opset);
    p.g = g;
    for (size_t i = 0; st == HLR_OK && i < g->n_initializer; i++)
        if (g->initializer[i])
            st = add_tensor(&p, g->initializer[i]->name, g->initializer[i]);
    /* the inputs that are not initializers: the data, and for token ids each sequence's length */
    const Onnx__ValueInfoProto *input = NULL, *lengths = NULL;
    for (size_t i = 0; st == HLR_OK && i < g->n_input; i++)
        if (g->input[i] && !find_k(&p, s_(g->input[i]->name))) {
            if (lengths)
                st = hlr__fail(HLR_EUNSUPPORTED, "%s: the graph has more than two inputs", IFN);
            else if (input)
                lengths = g->input[i];
            else
                input = g->input[i];
        }
    if (st == HLR_OK) {
        const Onnx__TypeProto *t = input ? input->type : NULL;
        const Onnx__TensorShapeProto *sh = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type
                                               ? t->tensor_type->shape
                                               : NULL;
        const Onnx__TypeProto *lt = lengths ? lengths->type : NULL;
        /* token ids: int32 as libhlr takes them, or int64 as PyTorch exports them (read as int32 here) */
        p.int_input = sh && (t->tensor_type->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
                             t->tensor_type->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        if (!input || !sh || (t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && !p.int_input) ||
            sh->n_dim < 2 || sh->n_dim > HLR_MAX_DIMS + 1)
            st = hlr__fail(HLR_EUNSUPPORTED, "%s: the input must be a float tensor (N, ...) of 2 to %d dimensions, or "
                                             "integer token ids (N, T)", IFN, HLR_MAX_DIMS + 1);
        else if (lengths && (!p.int_input || !lt || lt->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
                             !lt->tensor_type || lt->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT32))
            st = hlr__fail(HLR_EUNSUPPORTED, "%s: a second input is read only as the int32 lengths of token ids", IFN);
        else if (p.int_input && sh->n_dim != 2)
            st = hlr__fail(HLR_EUNSUPPORTED, "%s: token ids must be (N, T)", IFN);
        if (lengths)
            p.lengths = s_(lengths->name);
        for (size_t d = 1; st == HLR_OK && d < sh->n_dim; d++) {
            if (!sh->dim[d] || sh->dim[d]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                sh->dim[d]->dim_value < 1 || sh->dim[d]->dim_value > (1 << 24))
                st = hlr__fail(HLR_EUNSUPPORTED, "%s: the input's dimension %zu must be a fixed size", IFN, d);
            else
                p.shape.d[d - 1] = sh->dim[d]->dim_value;
        }
        if (st == HLR_OK) {
            p.shape.ndim = (int)sh->n_dim - 1;
            p.cur = s_(input->name);
            if (sh->dim[0] && sh->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                sh->dim[0]->dim_value >= 1 && sh->dim[0]->dim_value <= (1 << 24))
                p.batch0 = sh->dim[0]->dim_value; /* exported without a dynamic batch axis */
        }
    }
    /* constants first: exporters put them anywhere, also between the nodes of one pattern */
    for (size_t i = 0; st == HLR_OK && i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n || strcmp(s_(n->op_type), "Constant"))
            continue;
        const Onnx__AttributeProto *v = attr(n, "value");
        p.at = i;
        st = v && v->t && n->n_output == 1 ? add_tensor(&p, out_(n, 0), v->t)
                                          : node_fail(&p, n, "only tensor constants are read");
    }
    if (st == HLR_OK && p.lengths)
        st = mark_derived(&p);
    hlr_shape in_shape = p.shape;
    p.m = st == HLR_OK ? hlr_model_new(0) : NULL;
    if (st == HLR_OK && !p.m)
        st = hlr_last_status();
    for (p.at = 0; st == HLR_OK && p.at < g->n_node; p.at++) {
        if (!g->node[p.at])
            st = hlr__fail(HLR_EFORMAT, "%s: node %zu is empty", IFN, p.at);
        else
            st = node(&p, g->node[p.at]);
    }
    if (st == HLR_OK && (p.layout != L_BATCH || strcmp(p.cur, s_(g->output[0]->name))))
        st = hlr__fail(HLR_EUNSUPPORTED, "%s: the chain of layers does not end at the graph's output '%.64s'", IFN,
                       s_(g->output[0]->name));
    if (st == HLR_OK && p.nlayers == 0)
        st = hlr__fail(HLR_EUNSUPPORTED, "%s: the graph holds no layer", IFN);
    if (st == HLR_OK)
        st = hlr_model_build(p.m, in_shape.ndim, in_shape.d);
    for (int i = 0; st == HLR_OK && i < p.npend; i++) {
        hlr_tensor *t = hlr__layer_param_value(hlr_model_layer(p.m, p.pend[i].layer), p.pend[i].param);
        if (!t || hlr_tensor_numel(t) != p.pend[i].n)
            st = hlr__fail(HLR_EFORMAT, "%s: layer %d's %s does not take %lld values", IFN, p.pend[i].layer,
                           p.pend[i].param, (long long)p.pend[i].n);
        else
            memcpy(hlr_tensor_f32(t), p.pend[i].data, (size_t)p.pend[i].n * sizeof(float));
    }
    hlr__weights_written();
    if (st == HLR_OK) {
        hlr_metadata *md = hlr_model_metadata(p.m);
        for (size_t i = 0; st == HLR_OK && i < mp->n_metadata_props; i++) {
            const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
            if (!e || !e->key || !e->value)
                continue;
            if (!strcmp(e->key, "temperature")) {
                char *end;
                double tv = strtod(e->value, &end);
                if (*end || !(tv > 0) || hlr_model_set_temperature(p.m, tv) != HLR_OK)
                    st = hlr__fail(HLR_EFORMAT, "%s: metadata temperature '%.32s' is not a number > 0", IFN, e->value);
            } else if (!strcmp(e->key, "dataset")) {
                st = hlr_metadata_set_dataset(md, e->value);
            } else if (strcmp(e->key, "class_names")) {
                st = hlr_metadata_set(md, e->key, e->value);
            }
        }
    }
    imp_free(&p);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != HLR_OK) {
        /* a layer's own refusal (a value the checks above let through) still says who is speaking */
        if (strncmp(hlr_last_error(), IFN, strlen(IFN)) != 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", hlr_last_error());
            hlr__fail(st, "%s: %s", IFN, msg);
        }
        hlr_model_free(p.m);
        return NULL;
    }
    return p.m;
}

hlr_model *hlr_model_import_onnx(const char *path)
{
    if (!path) {
        hlr__fail(HLR_EINVAL, "%s: path is NULL", IFN);
        return NULL;
    }
    unsigned char *buf;
    size_t len;
    if (hlr__read_file(path, IFN, &buf, &len) != HLR_OK)
        return NULL;
    hlr_model *m = NULL;
    if (len == 0)
        hlr__fail(HLR_EFORMAT, "%s: %s is empty", IFN, path);
    else
        m = hlr_model_import_onnx_buffer(buf, len);
    if (!m && len) { /* name the file */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", hlr_last_error());
        const char *rest = strncmp(msg, IFN ": ", strlen(IFN) + 2) ? msg : msg + strlen(IFN) + 2;
        hlr__fail(hlr_last_status(), "%s: %s: %s", IFN, path, rest);
    }
    hlr__free(buf);
    return m;
}

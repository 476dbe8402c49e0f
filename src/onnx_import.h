/*
 * onnx_import.h -- what the ONNX importer's files share (private): the
 * named constants, the importer's state, and the small readers of nodes and
 * attributes.  onnx_import.c reads the graph; onnx_torch.c matches the
 * patterns only PyTorch's exporter writes.
 */
#ifndef HLR_ONNX_IMPORT_H
#define HLR_ONNX_IMPORT_H

#include "internal.h"
#include "onnx.pb-c.h"

#include <stdint.h>
#include <string.h>

static inline const char *s_(const char *s) { return s ? s : ""; }

/* A named constant tensor: an initializer or a Constant node. */
typedef struct konst {
    const char *name;
    int is_float, zeros; /* zeros: ConstantOfShape of 0 (shape unknown until run time) */
    int ndim;
    int64_t dims[8];
    int64_t n;
    const float *f; /* little-endian data inside the parsed message */
    float *f_owned;
    int64_t *i;
} konst;

typedef struct imp {
    konst *k;
    int nk, capk;
    Onnx__GraphProto *g;
    size_t at; /* the node being read */
    /* the chain */
    hlr_model *m;
    int nlayers;
    struct pend {
        int layer;
        char param[HLR_PARAM_NAME_MAX];
        float *data; /* owned */
        int64_t n;
    } *pend;
    int npend, cappend;
    /* the current tensor: its name and per-sample shape; layout of recurrent intermediates */
    const char *cur;
    hlr_shape shape;
    enum { L_BATCH, L_TIME, L_RNN_Y, L_RNN_Y2, L_RNN_H, L_RNN_H2 } layout;
    int64_t rnn_dirs;
    int int_input;       /* the graph's input holds token ids (an embedding comes first) */
    int64_t batch0;      /* the input's batch size when the file fixes it, else 0 */
    const char *lengths; /* the graph's second input: each sequence's length, or NULL */
    const char *derived[32]; /* tensors computed from the lengths alone (masks, their casts) */
    unsigned char derived_ends[32]; /* ... from an Equal: the mask of each sequence's last step */
    int nderived;
} imp;

static inline konst *find_k(const imp *p, const char *name)
{
    for (int i = 0; name && i < p->nk; i++)
        if (!strcmp(p->k[i].name, name))
            return &p->k[i];
    return NULL;
}

/* A TensorProto as a constant: float or int64, with its data's length checked against its dims. */

static inline const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i] && !strcmp(s_(n->attribute[i]->name), name))
            return n->attribute[i];
    return NULL;
}

static inline int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

static inline float attr_f(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

static inline const char *in_(const Onnx__NodeProto *n, size_t i) { return i < n->n_input ? s_(n->input[i]) : ""; }
static inline const char *out_(const Onnx__NodeProto *n, size_t i) { return i < n->n_output ? s_(n->output[i]) : ""; }

static inline const konst *fk(imp *p, const Onnx__NodeProto *n, size_t i, int ndim)
{
    const konst *k = find_k(p, in_(n, i));
    if (!k || !k->is_float || (ndim >= 0 && k->ndim != ndim))
        return NULL;
    return k;
}

static inline int perm_is(const Onnx__NodeProto *n, int count, const int64_t *want)
{
    const Onnx__AttributeProto *a = attr(n, "perm");
    if (!a || a->n_ints != (size_t)count)
        return 0;
    for (int i = 0; i < count; i++)
        if (a->ints[i] != want[i])
            return 0;
    return 1;
}

/* A constant scalar (one float) named name: 1 and its value, or 0. */
static inline int scalar(imp *p, const char *name, float *v)
{
    const konst *k = find_k(p, name);
    if (!k || !k->is_float || k->n != 1)
        return 0;
    *v = k->f[0];
    return 1;
}

/* The constant input of a binary node other than t. */
static inline const konst *other_const(imp *p, const Onnx__NodeProto *n, const char *t)
{
    return find_k(p, !strcmp(in_(n, 0), t) ? in_(n, 1) : in_(n, 0));
}

/* ---- onnx_torch.c ---- */

typedef struct torch_mha {
    int64_t E, heads;
    const konst *w_in, *b_in, *w_out, *b_out; /* (E, 3E) as MatMul reads it; (3E); (E, E) as Gemm or MatMul; (E) */
    int w_out_t;                              /* w_out is (out, in), Gemm's transB = 1 */
    const char *out;
    size_t end;
} torch_mha;

/*
 * Self-attention over the chain's (N, T, E) as torch.onnx.export (1.13) writes
 * nn.MultiheadAttention(batch_first=True) called as attn(x, x, x) without
 * masks, starting at the Transpose n (perm 1, 0, 2) at p->at.  1 when it
 * matches (m filled), 0 when not.
 */
int hlr__onnx_match_torch_mha(imp *p, Onnx__NodeProto *n, torch_mha *m);
/* Does Transpose n begin what looks like that attention (a MatMul by a constant (E, 3 E) reads it)? */
int hlr__onnx_torch_mha_start(imp *p, const Onnx__NodeProto *n);

#endif

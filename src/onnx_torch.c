/*
 * onnx_torch.c -- the patterns of torch.onnx.export (PyTorch 1.13) that are
 * not a chain of nodes: nn.MultiheadAttention, whose heads are split by
 * shape arithmetic computed at run time.  See onnx_import.h.
 */
#include "onnx_import.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * The exporter computes the heads' shapes at run time: Shape, Gather, Div, Cast, Unsqueeze, Concat and
 * integer arithmetic, feeding Slice bounds and Reshape targets.  sval evaluates such a tensor when every
 * value in it is a N + b for the batch size N (a, b known), or says it cannot; the tensors whose shape a
 * Shape may read are in a small table the match fills as it goes.
 */
#define SV_MAX 8
typedef struct sval {
    int n;
    int64_t a[SV_MAX], b[SV_MAX];
} sval;

typedef struct tshape {
    const char *name;
    int ndim;
    int64_t a[4], b[4]; /* each dimension a N + b */
} tshape;

typedef struct tmha {
    size_t lo; /* the span's first node: the Transpose into (T, N, E) */
    tshape shapes[8];
    int nshapes;
    size_t nodes[24]; /* the pattern's nodes */
    int nnodes;
    int budget; /* evaluations left: a hostile graph may share one input many times over */
} tmha;

#define SV_LIMIT ((int64_t)1 << 40)
#define TM_SPAN 1024 /* nodes: torch writes about a hundred */

static int sv_ok(int64_t v)
{
    return v > -SV_LIMIT && v < SV_LIMIT;
}

static int sval_of(imp *p, tmha *t, const char *name, size_t hi, sval *v, int depth);

/* Operand i of node n, evaluated; broadcast to count when it holds one value. */
static int sv_operand(imp *p, tmha *t, const Onnx__NodeProto *n, size_t i, size_t hi, int depth, sval *v)
{
    return i < n->n_input && sval_of(p, t, in_(n, i), hi, v, depth + 1);
}

static int sval_of(imp *p, tmha *t, const char *name, size_t hi, sval *v, int depth)
{
    memset(v, 0, sizeof *v);
    if (depth > 32 || !*name || t->budget-- <= 0)
        return 0;
    const konst *k = find_k(p, name);
    if (k) {
        if (!k->i || k->n > SV_MAX)
            return 0;
        v->n = (int)k->n;
        for (int i = 0; i < v->n; i++) {
            if (!sv_ok(k->i[i]))
                return 0;
            v->b[i] = k->i[i];
        }
        return 1;
    }
    for (int s = 0; s < t->nshapes; s++)
        if (!strcmp(t->shapes[s].name, name))
            return 0; /* a tensor of the chain is no shape */
    const Onnx__NodeProto *n = NULL;
    if (hi - t->lo > TM_SPAN)
        return 0;
    for (size_t j = hi; j-- > t->lo;) /* the node that writes it, inside the span */
        if (p->g->node[j]->n_output == 1 && !strcmp(out_(p->g->node[j], 0), name)) {
            n = p->g->node[j];
            hi = j;
            break;
        }
    if (!n)
        return 0;
    const char *op = s_(n->op_type);
    sval x, y;
    if (!strcmp(op, "Shape")) {
        if (n->n_attribute) /* start, end (opset 15) */
            return 0;
        for (int s = 0; s < t->nshapes; s++)
            if (!strcmp(t->shapes[s].name, in_(n, 0))) {
                v->n = t->shapes[s].ndim;
                memcpy(v->a, t->shapes[s].a, sizeof t->shapes[s].a);
                memcpy(v->b, t->shapes[s].b, sizeof t->shapes[s].b);
                return 1;
            }
        return 0;
    }
    if (!strcmp(op, "Cast")) {
        const int64_t to = attr_i(n, "to", 0);
        return (to == 6 || to == 7) && sv_operand(p, t, n, 0, hi, depth, v); /* int32, int64 */
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) { /* of a scalar or a one-value vector */
        if (!sv_operand(p, t, n, 0, hi, depth, v) || v->n != 1)
            return 0;
        return n->n_input < 2 || (sv_operand(p, t, n, 1, hi, depth, &y) && y.n == 1 && y.a[0] == 0 && y.b[0] == 0);
    }
    if (!strcmp(op, "Gather")) {
        if (attr_i(n, "axis", 0) != 0 || !sv_operand(p, t, n, 0, hi, depth, &x) ||
            !sv_operand(p, t, n, 1, hi, depth, &y))
            return 0;
        v->n = y.n;
        for (int i = 0; i < y.n; i++) {
            int64_t at = y.b[i] < 0 ? y.b[i] + x.n : y.b[i];
            if (y.a[i] || at < 0 || at >= x.n)
                return 0;
            v->a[i] = x.a[at], v->b[i] = x.b[at];
        }
        return 1;
    }
    if (!strcmp(op, "Concat")) {
        if (attr_i(n, "axis", 0) != 0)
            return 0;
        for (size_t i = 0; i < n->n_input; i++) {
            if (!sv_operand(p, t, n, i, hi, depth, &x) || v->n + x.n > SV_MAX)
                return 0;
            memcpy(v->a + v->n, x.a, (size_t)x.n * sizeof *x.a);
            memcpy(v->b + v->n, x.b, (size_t)x.n * sizeof *x.b);
            v->n += x.n;
        }
        return 1;
    }
    const int add = !strcmp(op, "Add"), sub = !strcmp(op, "Sub"), mul = !strcmp(op, "Mul"), div = !strcmp(op, "Div");
    if (!(add || sub || mul || div) || !sv_operand(p, t, n, 0, hi, depth, &x) || !sv_operand(p, t, n, 1, hi, depth, &y))
        return 0;
    if (x.n != y.n && x.n != 1 && y.n != 1)
        return 0;
    v->n = x.n > y.n ? x.n : y.n;
    for (int i = 0; i < v->n; i++) {
        const int64_t xa = x.a[x.n == 1 ? 0 : i], xb = x.b[x.n == 1 ? 0 : i];
        const int64_t ya = y.a[y.n == 1 ? 0 : i], yb = y.b[y.n == 1 ? 0 : i];
        if (add || sub) {
            v->a[i] = add ? xa + ya : xa - ya, v->b[i] = add ? xb + yb : xb - yb;
        } else if (mul) {
            int64_t u, w;
            if ((xa && ya) || __builtin_mul_overflow(xa, yb, &u) || __builtin_mul_overflow(ya, xb, &w) ||
                __builtin_mul_overflow(xb, yb, &v->b[i]))
                return 0; /* N squared, or out of range */
            v->a[i] = u + w;
        } else {
            if (ya || yb <= 0 || xa % yb || xb < 0)
                return 0; /* only N-free positive divisors of what they divide */
            v->a[i] = xa / yb, v->b[i] = xb / yb;
        }
        if (!sv_ok(v->a[i]) || !sv_ok(v->b[i]))
            return 0;
    }
    return 1;
}

/* Does v hold exactly the values want (count n, each a N + b)?  In a file that fixes the batch size N0, the
 * exporter has folded the arithmetic into constants for N0: the values are compared at N = N0. */
static int sval_is(const imp *p, const sval *v, int n, const int64_t *a, const int64_t *b)
{
    if (v->n != n)
        return 0;
    for (int i = 0; i < n; i++) {
        int64_t x, y;
        if (!p->batch0
                ? v->a[i] != a[i] || v->b[i] != b[i]
                : __builtin_mul_overflow(v->a[i], p->batch0, &x) || __builtin_mul_overflow(a[i], p->batch0, &y) ||
                      x + v->b[i] != y + b[i]) /* |b| < 2^40: no overflow in the sums */
            return 0;
    }
    return 1;
}

static int tm_shape(tmha *t, const char *name, int ndim, const int64_t *a, const int64_t *b)
{
    if (t->nshapes == (int)(sizeof t->shapes / sizeof t->shapes[0]))
        return 0;
    tshape *s = &t->shapes[t->nshapes++];
    s->name = name, s->ndim = ndim;
    memcpy(s->a, a, (size_t)ndim * sizeof *a);
    memcpy(s->b, b, (size_t)ndim * sizeof *b);
    return 1;
}

/* The first node after index `after` of type op that reads tensor x (as input i, or any when i < 0); it joins
 * the pattern's nodes. */
static Onnx__NodeProto *tm_reader(imp *p, tmha *t, size_t after, const char *op, const char *x, int i)
{
    if (t->nnodes == (int)(sizeof t->nodes / sizeof t->nodes[0]))
        return NULL;
    for (size_t j = after + 1; j < p->g->n_node; j++) {
        Onnx__NodeProto *n = p->g->node[j];
        if (strcmp(s_(n->op_type), op))
            continue;
        for (size_t q = 0; q < n->n_input; q++)
            if ((i < 0 || (size_t)i == q) && !strcmp(s_(n->input[q]), x)) {
                t->nodes[t->nnodes++] = j;
                return n;
            }
    }
    return NULL;
}

static size_t tm_last(const tmha *t)
{
    return t->nodes[t->nnodes - 1];
}

/* A Reshape of x to want (count, each a N + b), or NULL. */
static Onnx__NodeProto *tm_reshape(imp *p, tmha *t, const char *x, int count, const int64_t *a, const int64_t *b)
{
    Onnx__NodeProto *r = tm_reader(p, t, t->lo, "Reshape", x, 0);
    sval v;
    return r && !attr_i(r, "allowzero", 0) && sval_of(p, t, in_(r, 1), tm_last(t), &v, 0) && sval_is(p, &v, count, a, b)
               ? r
               : NULL;
}

/* A Transpose of x by perm, or NULL. */
static Onnx__NodeProto *tm_transpose(imp *p, tmha *t, const char *x, const int64_t *perm)
{
    Onnx__NodeProto *n = tm_reader(p, t, t->lo, "Transpose", x, 0);
    return n && perm_is(n, 3, perm) ? n : NULL;
}

/* A float scalar constant that x is multiplied by (Mul) or divided by (Div) at node n: the factor in *f. */
static int tm_scale(imp *p, const Onnx__NodeProto *n, const char *x, float *f)
{
    const int div = !strcmp(s_(n->op_type), "Div");
    float c;
    if (div ? strcmp(in_(n, 0), x) || !scalar(p, in_(n, 1), &c) || c == 0
            : !scalar(p, !strcmp(in_(n, 0), x) ? in_(n, 1) : in_(n, 0), &c))
        return 0;
    *f = div ? 1.0f / c : c;
    return 1;
}

/* The Div (x / c) or Mul (x c, either order) that reads *x, joined to the pattern: 1 when it scales by a
 * constant (*x becomes its output, *scale takes the factor), -1 when it does not, 0 when there is none. */
static int tm_scaled(imp *p, tmha *t, const char **x, float *scale)
{
    Onnx__NodeProto *n = tm_reader(p, t, t->lo, "Div", *x, 0);
    if (!n)
        n = tm_reader(p, t, t->lo, "Mul", *x, -1);
    float f;
    if (!n)
        return 0;
    if (!tm_scale(p, n, *x, &f))
        return -1;
    *scale *= f;
    *x = out_(n, 0);
    return 1;
}

/*
 * Self-attention over the chain's (N, T, E) as torch.onnx.export writes nn.MultiheadAttention(batch_first=True)
 * called as attn(x, x, x) without masks, starting at the Transpose n (perm 1, 0, 2) at p->at: the in-projection
 * (MatMul by in_proj_weight^T, Add of in_proj_bias), three Slices of the last axis, each Reshaped to
 * (T, N heads, E / heads), the query scaled by 1 / sqrt(E / heads), softmax(q k^T) v, back to (T N, E), the
 * out-projection (Gemm), back to (N, T, E).  Every other node between the first and the last must be shape
 * arithmetic that the bounds and targets are made of (or a Constant), and nothing after it may read what is
 * inside.  1 when it matches.
 */
int hlr__onnx_match_torch_mha(imp *p, Onnx__NodeProto *n, torch_mha *m)
{
    memset(m, 0, sizeof *m);
    if (p->shape.ndim != 2 || !perm_is(n, 3, (int64_t[]){1, 0, 2}))
        return 0;
    const int64_t T = p->shape.d[0], E = p->shape.d[1];
    tmha t = {.lo = p->at, .budget = 1 << 14};
    t.nodes[t.nnodes++] = p->at;
    const char *xt = out_(n, 0);
    if (!tm_shape(&t, xt, 3, (int64_t[]){0, 1, 0}, (int64_t[]){T, 0, E}))
        return 0;
    Onnx__NodeProto *mm = tm_reader(p, &t, t.lo, "MatMul", xt, 0);
    if (!mm || !(m->w_in = find_k(p, in_(mm, 1))) || !m->w_in->is_float || m->w_in->ndim != 2 ||
        m->w_in->dims[0] != E || m->w_in->dims[1] != 3 * E)
        return 0;
    const char *proj = out_(mm, 0);
    Onnx__NodeProto *ab = tm_reader(p, &t, t.lo, "Add", proj, -1);
    if (ab && (m->b_in = other_const(p, ab, proj)) && m->b_in->is_float && m->b_in->n == 3 * E)
        proj = out_(ab, 0);
    else if (ab) {
        return 0;
    }
    if (!tm_shape(&t, proj, 3, (int64_t[]){0, 1, 0}, (int64_t[]){T, 0, 3 * E}))
        return 0;
    /* q, k, v: the three slices of the last axis, in order */
    const char *part[3];
    int64_t from = 0;
    for (size_t after = t.lo, k = 0; k < 3; k++) {
        Onnx__NodeProto *s = tm_reader(p, &t, after, "Slice", proj, 0);
        sval b, e, ax;
        if (!s || s->n_input < 4 || s->n_input > 5 || !sval_of(p, &t, in_(s, 1), tm_last(&t), &b, 0) ||
            !sval_of(p, &t, in_(s, 2), tm_last(&t), &e, 0) || !sval_of(p, &t, in_(s, 3), tm_last(&t), &ax, 0) ||
            !sval_is(p, &b, 1, (int64_t[]){0}, (int64_t[]){from}) ||
            !sval_is(p, &e, 1, (int64_t[]){0}, (int64_t[]){from + E}) || ax.n != 1 || ax.a[0] ||
            (ax.b[0] != -1 && ax.b[0] != 2))
            return 0;
        if (s->n_input == 5) {
            sval st;
            if (!sval_of(p, &t, in_(s, 4), tm_last(&t), &st, 0) || !sval_is(p, &st, 1, (int64_t[]){0}, (int64_t[]){1}))
                return 0;
        }
        part[k] = out_(s, 0);
        if (!tm_shape(&t, part[k], 3, (int64_t[]){0, 1, 0}, (int64_t[]){T, 0, E}))
            return 0;
        after = tm_last(&t);
        from += E;
    }
    /* each to (T, N heads, E / heads): the head count from the query's target */
    Onnx__NodeProto *r = tm_reader(p, &t, t.lo, "Reshape", part[0], 0);
    sval v;
    if (!r || !sval_of(p, &t, in_(r, 1), tm_last(&t), &v, 0) || v.n != 3)
        return 0;
    if (p->batch0 && !v.a[1] && v.b[1] > 0 && v.b[1] % p->batch0 == 0) /* N0 heads, folded */
        v.a[1] = v.b[1] / p->batch0, v.b[1] = 0;
    if (v.b[1] || v.a[1] < 1 || E % v.a[1])
        return 0;
    t.nnodes--; /* tm_reshape takes it again, checked */
    m->E = E, m->heads = v.a[1];
    const int64_t h = m->heads, d = E / h;
    const char *heads[3];
    for (int k = 0; k < 3; k++) {
        Onnx__NodeProto *rk = tm_reshape(p, &t, part[k], 3, (int64_t[]){0, h, 0}, (int64_t[]){T, 0, d});
        if (!rk)
            return 0;
        Onnx__NodeProto *tk = tm_transpose(p, &t, out_(rk, 0), k == 1 ? (int64_t[]){1, 2, 0} : (int64_t[]){1, 0, 2});
        if (!tk)
            return 0;
        heads[k] = out_(tk, 0);
    }
    /* scores: the query (or the scores) scaled by 1 / sqrt(d) */
    float scale = 1.0f;
    const char *q = heads[0];
    const int q_scaled = tm_scaled(p, &t, &q, &scale);
    if (q_scaled < 0)
        return 0;
    Onnx__NodeProto *s = tm_reader(p, &t, t.lo, "MatMul", q, 0);
    if (!s || strcmp(in_(s, 1), heads[1]))
        return 0;
    const char *sc = out_(s, 0);
    if (!q_scaled && tm_scaled(p, &t, &sc, &scale) != 1)
        return 0;
    if (!(fabsf(scale * sqrtf((float)d) - 1.0f) <= 1e-5f)) /* NaN too */
        return 0;
    Onnx__NodeProto *sm = tm_reader(p, &t, t.lo, "Softmax", sc, 0);
    if (!sm || (attr_i(sm, "axis", -1) != -1 && attr_i(sm, "axis", -1) != 2))
        return 0;
    Onnx__NodeProto *o = tm_reader(p, &t, t.lo, "MatMul", out_(sm, 0), 0);
    if (!o || strcmp(in_(o, 1), heads[2]))
        return 0;
    Onnx__NodeProto *ot = tm_transpose(p, &t, out_(o, 0), (int64_t[]){1, 0, 2});
    if (!ot)
        return 0;
    /* (T N, E), the out-projection, (T, N, E), (N, T, E) */
    Onnx__NodeProto *flat = tm_reshape(p, &t, out_(ot, 0), 2, (int64_t[]){T, 0}, (int64_t[]){0, E});
    if (!flat)
        return 0;
    const char *y = out_(flat, 0);
    Onnx__NodeProto *g = tm_reader(p, &t, t.lo, "Gemm", y, 0);
    if (g) {
        if (attr_i(g, "transA", 0) || attr_i(g, "transB", 0) != 1 || attr_f(g, "alpha", 1.0f) != 1.0f ||
            attr_f(g, "beta", 1.0f) != 1.0f || !(m->w_out = fk(p, g, 1, 2)) || m->w_out->dims[0] != E ||
            m->w_out->dims[1] != E)
            return 0;
        m->w_out_t = 1;
        if (g->n_input > 2 && *in_(g, 2) && (!(m->b_out = fk(p, g, 2, 1)) || m->b_out->n != E))
            return 0;
        y = out_(g, 0);
    } else {
        Onnx__NodeProto *om = tm_reader(p, &t, t.lo, "MatMul", y, 0);
        if (!om || !(m->w_out = fk(p, om, 1, 2)) || m->w_out->dims[0] != E || m->w_out->dims[1] != E)
            return 0;
        y = out_(om, 0);
    }
    if (!tm_shape(&t, y, 2, (int64_t[]){T, 0}, (int64_t[]){0, E}))
        return 0;
    Onnx__NodeProto *back = tm_reshape(p, &t, y, 3, (int64_t[]){0, 1, 0}, (int64_t[]){T, 0, E});
    Onnx__NodeProto *bt = back ? tm_transpose(p, &t, out_(back, 0), (int64_t[]){1, 0, 2}) : NULL;
    if (!bt || (m->b_in != NULL) != (m->b_out != NULL))
        return 0;
    m->out = out_(bt, 0);
    /* the span: pattern nodes, constants and shape arithmetic only; nothing later reads inside it */
    size_t hi = t.lo;
    for (int i = 0; i < t.nnodes; i++)
        hi = t.nodes[i] > hi ? t.nodes[i] : hi;
    for (size_t j = t.lo; j <= hi; j++) {
        const Onnx__NodeProto *u = p->g->node[j];
        int in_pattern = 0;
        for (int i = 0; i < t.nnodes; i++)
            in_pattern |= t.nodes[i] == j;
        if (in_pattern || !strcmp(s_(u->op_type), "Constant"))
            continue;
        if (u->n_output != 1 || !sval_of(p, &t, out_(u, 0), j + 1, &v, 0))
            return 0;
    }
    for (size_t j = hi + 1; j < p->g->n_node; j++) {
        const Onnx__NodeProto *u = p->g->node[j];
        for (size_t i = 0; i < u->n_input; i++)
            for (size_t s2 = t.lo; s2 <= hi; s2++)
                if (p->g->node[s2]->n_output && !strcmp(s_(u->input[i]), out_(p->g->node[s2], 0)) &&
                    strcmp(out_(p->g->node[s2], 0), m->out))
                    return 0;
    }
    m->end = hi;
    return 1;
}

/* Does a MatMul by a constant (E, 3 E) read the output of Transpose n: the start of torch's attention? */
int hlr__onnx_torch_mha_start(imp *p, const Onnx__NodeProto *n)
{
    if (p->shape.ndim != 2 || !perm_is(n, 3, (int64_t[]){1, 0, 2}))
        return 0;
    for (size_t j = p->at + 1; j < p->g->n_node; j++) {
        const Onnx__NodeProto *u = p->g->node[j];
        if (!strcmp(s_(u->op_type), "MatMul") && !strcmp(in_(u, 0), out_(n, 0))) {
            const konst *w = find_k(p, in_(u, 1));
            return w && w->ndim == 2 && w->dims[0] == p->shape.d[1] && w->dims[1] == 3 * p->shape.d[1];
        }
    }
    return 0;
}

/*
 * model.c -- the sequential model: layers, build (shape inference) and
 * fusion, the buffers planned per batch size, forward and backward.
 * Training (fit.c), inference (predict.c) and files (modelfile*.c) build on
 * it; its fields are in model.h.
 */
#include "model.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Remember a failed add (the first only) and why; returns st, the failure already set. */
static hlr_status add_failed(hlr_model *m, const char *why, hlr_status st)
{
    if (!m->add_failed) {
        m->add_failed = 1;
        m->add_failed_at = m->nlayers;
        snprintf(m->add_failed_why, sizeof m->add_failed_why, "%s", why);
    }
    return st;
}

hlr_model *hlr_model_new(uint64_t seed)
{
    hlr__threads_init();
    hlr_model *m = hlr__alloc_or_fail(1, sizeof *m, "hlr_model_new");
    if (!m)
        return NULL;
    static _Atomic uint64_t next_serial = 1;
    m->serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed);
    hlr__rng_seed(&m->rng, seed);
    m->loss = HLR_LOSS_CROSS_ENTROPY;
    m->len_layers = -1;
    return m;
}


static void free_buffers(hlr_model *m)
{
    if (m->acts)
        for (int i = 0; i <= m->nlayers; i++)
            hlr__free(m->acts[i]);
    hlr__free(m->acts);
    hlr__free(m->x_of);
    hlr__free(m->y_of);
    m->x_of = NULL;
    m->y_of = NULL;
    hlr__free(m->grad[0]);
    hlr__free(m->grad[1]);
    hlr__free(m->dy);
    hlr__free(m->sliced_out);
    m->acts = NULL;
    m->grad[0] = m->grad[1] = m->dy = m->sliced_out = NULL;
    m->planned = 0;
}

hlr_status hlr__model_check_trainable(const hlr_model *m, const char *fn)
{
    if (m->shared_from)
        return hlr__fail(HLR_ESTATE, "%s: this model is a clone made by hlr_model_clone_shared and serves inference only",
                         fn);
    return HLR_OK;
}

void hlr_model_free(hlr_model *m)
{
    if (!m)
        return;
    hlr__metadata_clear(&m->meta);
    hlr__free(m->fused);
    if (m->shared_from) /* the parameter data belongs to the original: forget it before the layers are freed */
        for (int i = 0; i < m->nlayers; i++)
            for (int j = 0; j < m->layers[i]->nparams; j++)
                m->layers[i]->params[j].value.data = NULL;
    free_buffers(m);
    hlr__free(m->lengths);
    hlr__free(m->len_in);
    hlr__free(m->mapped);
    hlr__free(m->ctc_work);
    for (int i = 0; i < m->nlayers; i++)
        hlr_layer_free(m->layers[i]);
    hlr__free(m->layers);
    hlr__free(m);
}

hlr_status hlr_model_add(hlr_model *m, hlr_layer *l)
{
    if (!m) {
        if (l && !l->owner)
            hlr_layer_free(l);
        return hlr__fail(HLR_EINVAL, "hlr_model_add: model is NULL");
    }
    if (!l && !m->built) {
        /* Most often a constructor failed: keep its message for hlr_model_build. */
        char why[320];
        if (hlr_last_status() != HLR_OK)
            snprintf(why, sizeof why, "hlr_model_add got NULL, most likely from a constructor that failed with "
                     "\"%s\"", hlr_last_error());
        else
            snprintf(why, sizeof why, "hlr_model_add got NULL");
        return add_failed(m, why, hlr__fail(HLR_EINVAL, "hlr_model_add: layer is NULL"));
    }
    if (!l)
        return hlr__fail(HLR_EINVAL, "hlr_model_add: layer is NULL");
    if (l->owner)
        return add_failed(m, "it belonged to another model",
                          hlr__fail(HLR_ESTATE, "hlr_model_add: this %s layer already belongs to a model", l->ops->type));
    if (m->built) {
        hlr_layer_free(l);
        return hlr__fail(HLR_ESTATE, "hlr_model_add: the model is built; layers cannot be added any more");
    }
    if (m->nlayers == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        hlr_layer **ls = hlr__realloc(m->layers, (size_t)cap * sizeof *ls);
        if (!ls) {
            hlr_layer_free(l);
            return add_failed(m, "out of memory", hlr__fail(HLR_ENOMEM, "hlr_model_add: cannot grow the layer list"));
        }
        m->layers = ls;
        m->cap = cap;
    }
    l->owner = m;
    l->index = m->nlayers;
    m->layers[m->nlayers++] = l;
    return HLR_OK;
}

void hlr__model_no_fusion(hlr_model *m) { m->no_fusion = 1; }

/*
 * Fusion: each layer's absorb hook may take over the layers after it, which
 * then act as aliases (no buffer, forward or backward).  Today conv2d, dense
 * and batch norm take a ReLU after them, and a 2x2 max pooling after that
 * (hlr__absorb_relu in layers/activation.c says why it pays).  Results are
 * bit-identical (tests compare both ways).
 */
static void fuse_layers(hlr_model *m)
{
    if (m->no_fusion)
        return;
    for (int i = 0; i + 1 < m->nlayers; i++) {
        hlr_layer *l = m->layers[i];
        l->absorbs = l->ops->absorb ? l->ops->absorb(l, m->layers + i + 1, m->nlayers - i - 1) : 0;
        for (int k = 1; k <= l->absorbs; k++)
            m->layers[i + k]->absorbed = 1;
        i += l->absorbs;
    }
    /* Folding (hlr_layer_ops.fold), once the fused layers are known: inference only. */
    for (int i = 0; i + 1 < m->nlayers; i++) {
        hlr_layer *l = m->layers[i], *next = m->layers[i + 1];
        if (l->ops->fold && !l->absorbed && !next->absorbed && l->ops->fold(l, next)) {
            l->fold = next;
            next->folded = 1;
        }
    }
}

/* The layer's output is its input: no buffer, forward or backward of its own. */
static int is_alias(const hlr_layer *l) { return l->ops->alias || l->absorbed; }

/* Floats per sample of the layer's buffer: the output of the last layer it absorbed. */
static int64_t act_size(const hlr_model *m, const hlr_layer *l) { return m->layers[l->index + l->absorbs]->out_size; }

hlr_status hlr_model_build(hlr_model *m, int ndim, const int64_t *shape)
{
    if (!m)
        return hlr__fail(HLR_EINVAL, "hlr_model_build: model is NULL");
    if (m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_build: the model is built already");
    if (m->add_failed)
        return hlr__fail(HLR_EINVAL, "hlr_model_build: layer %d was never added (%s); the model would build without it",
                         m->add_failed_at, m->add_failed_why);
    if (m->nlayers == 0)
        return hlr__fail(HLR_EINVAL, "hlr_model_build: the model has no layers");
    if (ndim < 1 || ndim > HLR_MAX_DIMS - 1 || !shape)
        return hlr__fail(HLR_EINVAL, "hlr_model_build: input shape needs 1 to %d dimensions (batch excluded)",
                         HLR_MAX_DIMS - 1);
    hlr_shape cur = {.ndim = ndim};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1 || hlr__mul_overflows(n, shape[i], &n) || n > ((int64_t)1 << 31))
            return hlr__fail(HLR_EINVAL, "hlr_model_build: input dimension %d (%lld) is not in 1..2^31", i,
                             (long long)shape[i]);
        cur.d[i] = shape[i];
    }
    m->in = cur;
    m->in_size = m->max_size = n;
    for (int i = 0; i < m->nlayers; i++) {
        hlr_layer *l = m->layers[i];
        hlr_shape out;
        hlr_status st = l->ops->int_input && i > 0
                            ? hlr__layer_fail(l, HLR_ESHAPE, "reads int32 token ids, so it must be the model's first layer")
                            : hlr__layer_build(l, &cur, &out, &m->rng);
        if (st != HLR_OK) {
            for (int j = 0; j < i; j++) {
                hlr__layer_clear_params(m->layers[j]);
                m->layers[j]->built = 0;
            }
            return st;
        }
        if (l->out_size > m->max_size)
            m->max_size = l->out_size;
        cur = out;
    }
    m->out = cur;
    m->out_size = hlr__shape_numel(&cur);
    fuse_layers(m);
    m->built = 1;
    return HLR_OK;
}

int hlr_model_num_layers(const hlr_model *m) { return m ? m->nlayers : 0; }

hlr_layer *hlr_model_layer(hlr_model *m, int i)
{
    if (!m) {
        hlr__fail(HLR_EINVAL, "hlr_model_layer: model is NULL");
        return NULL;
    }
    if (i < 0 || i >= m->nlayers) {
        hlr__fail(HLR_EINVAL, "hlr_model_layer: index %d outside 0..%d", i, m->nlayers - 1);
        return NULL;
    }
    return m->layers[i];
}

static int64_t layer_param_count(const hlr_layer *l)
{
    int64_t n = 0;
    for (int j = 0; j < l->nparams; j++)
        if (!l->params[j].buffer) /* trainable scalars only: running statistics are not parameters */
            n += l->params[j].value.numel;
    return n;
}

int64_t hlr_model_param_count(const hlr_model *m)
{
    if (!m || !m->built)
        return 0;
    int64_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += layer_param_count(m->layers[i]);
    return n;
}

hlr_status hlr_model_output_shape(const hlr_model *m, int *ndim, int64_t *shape)
{
    if (!m || !ndim || !shape)
        return hlr__fail(HLR_EINVAL, "hlr_model_output_shape: NULL argument");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_output_shape: the model is not built");
    *ndim = m->out.ndim;
    memcpy(shape, m->out.d, (size_t)m->out.ndim * sizeof *shape);
    return HLR_OK;
}

hlr_status hlr_model_input_shape(const hlr_model *m, int *ndim, int64_t *shape)
{
    if (!m || !ndim || !shape)
        return hlr__fail(HLR_EINVAL, "hlr_model_input_shape: NULL argument");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_input_shape: the model is not built");
    *ndim = m->in.ndim;
    memcpy(shape, m->in.d, (size_t)m->in.ndim * sizeof *shape);
    return HLR_OK;
}

/* Append to buf like snprintf, tracking the full length even when cut. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...) HLR_PRINTF(4, 5);
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

hlr_status hlr_model_summary(const hlr_model *m, char *buf, size_t cap, size_t *needed)
{
    if (!m || (!buf && cap))
        return hlr__fail(HLR_EINVAL, "hlr_model_summary: %s is NULL", m ? "buf" : "model");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_summary: the model is not built");
    size_t len = 0;
    char s[HLR__SHAPE_STR];
    append(buf, cap, &len, "%-4s %-19s %-20s %12s\n", "#", "layer", "output shape", "parameters");
    append(buf, cap, &len, "%-4s %-19s %-20s %12s\n", "", "input", hlr__shape_str(&m->in, s, sizeof s), "");
    for (int i = 0; i < m->nlayers; i++) {
        const hlr_layer *l = m->layers[i];
        append(buf, cap, &len, "%-4d %-19s %-20s %12lld\n", i, l->ops->type, hlr__shape_str(&l->out, s, sizeof s),
               (long long)layer_param_count(l));
    }
    append(buf, cap, &len, "total parameters: %lld (%.1f KiB as float32)\n", (long long)hlr_model_param_count(m),
           (double)hlr_model_param_count(m) * 4.0 / 1024.0);
    if (cap)
        buf[len < cap ? len : cap - 1] = '\0';
    if (needed)
        *needed = len;
    return HLR_OK;
}

/* ---- buffers ---- */

/* The forward pass (hlr__model_forward_raw), no_backward as hlr_pass says. */
static const float *forward_pass(hlr_model *m, const float *x, int64_t batch, int training, int no_backward);

/*
 * Inference a slice at a time.  A large batch run layer by layer leaves each
 * layer's output in memory, not in cache: cnn-bn's first convolution writes
 * 25 MB for 256 images and its batch norm reads them back, and per image
 * batch 256 ran slower than batch 16 (349 against 201 us on one thread).
 * When every layer computes each sample alone (per_sample), the samples go
 * through the whole model in slices, each slice's layers reusing the start
 * of their buffers: the largest power of two of samples, at least SLICE_MIN,
 * whose largest buffer takes at most SLICE_BYTES, twice over.  On an Intel
 * Xeon (2 MB of L2 a core, 2 threads, img/s at batch 256): cnn-bn 7,611
 * whole, 9,600-9,930 in slices of 16 to 64; the cnn, whose first
 * convolution writes its pooled output directly, 21,341 whole, 20,457 in
 * slices of 64 and 18,404 in slices of 16 (hence 4 MiB: its slices are 64).
 * The slices depend on the shapes alone, so a fixed thread count still gives
 * the same bits every run; a sample's bits may differ from those of an
 * unsliced pass, as they may between batch sizes.
 */
#define SLICE_BYTES ((int64_t)1 << 22)
#define SLICE_MIN 16

int64_t hlr__model_infer_slice(const hlr_model *m)
{
    int64_t largest = m->in_size; /* floats a sample takes in the largest buffer a layer writes */
    for (int i = 0; i < m->nlayers; i++) {
        const hlr_layer *l = m->layers[i];
        if (!l->ops->per_sample)
            return INT64_MAX;
        if (!is_alias(l) && !l->fold && act_size(m, l) > largest) /* a folding layer's own buffer goes unused */
            largest = act_size(m, l);
    }
    int64_t s = SLICE_MIN;
    while (2 * 2 * s * largest * (int64_t)sizeof(float) <= SLICE_BYTES)
        s *= 2;
    return s;
}

const float *hlr__model_infer(hlr_model *m, const float *x, int64_t batch)
{
    const int64_t s = hlr__model_infer_slice(m);
    if (batch <= s || m->nlengths)
        return forward_pass(m, x, batch, 0, 1);
    for (int64_t b = 0; b < batch; b += s) {
        const int64_t nb = batch - b < s ? batch - b : s;
        const float *out = forward_pass(m, x + b * m->in_size, nb, 0, 1);
        memcpy(m->sliced_out + b * m->out_size, out, (size_t)(nb * m->out_size) * sizeof(float));
    }
    return m->sliced_out;
}

hlr_status hlr__model_plan(hlr_model *m, int64_t batch)
{
    if (batch <= m->planned)
        return HLR_OK;
    free_buffers(m);
    m->train_batch = 0;
    m->acts = hlr__alloc_or_fail((size_t)m->nlayers + 1, sizeof *m->acts, "activations");
    if (!m->acts)
        return HLR_ENOMEM;
    int64_t total;
    if (hlr__mul_overflows(batch, m->max_size, &total) || (uint64_t)total > SIZE_MAX / sizeof(float))
        return hlr__fail(HLR_ENOMEM, "batch of %lld samples is too large", (long long)batch);
    m->x_of = hlr__alloc_or_fail((size_t)m->nlayers, sizeof *m->x_of, "activations");
    m->y_of = hlr__alloc_or_fail((size_t)m->nlayers, sizeof *m->y_of, "activations");
    int ok = m->x_of && m->y_of;
    m->acts[0] = hlr__alloc_or_fail((size_t)(batch * m->in_size), sizeof(float), "input copy");
    ok = ok && m->acts[0];
    for (int i = 0; i < m->nlayers && ok; i++)
        if (!is_alias(m->layers[i])) {
            m->acts[i + 1] = hlr__alloc_or_fail((size_t)(batch * act_size(m, m->layers[i])), sizeof(float), "activation");
            ok = m->acts[i + 1] != NULL;
        }
    m->grad[0] = hlr__alloc_or_fail((size_t)total, sizeof(float), "gradient");
    m->grad[1] = hlr__alloc_or_fail((size_t)total, sizeof(float), "gradient");
    m->dy = hlr__alloc_or_fail((size_t)(batch * m->out_size), sizeof(float), "loss gradient");
    if (batch > hlr__model_infer_slice(m))
        ok = ok && (m->sliced_out = hlr__alloc_or_fail((size_t)(batch * m->out_size), sizeof(float), "outputs"));
    if (!ok || !m->grad[0] || !m->grad[1] || !m->dy) {
        free_buffers(m);
        return HLR_ENOMEM;
    }
    for (int i = 0; i < m->nlayers; i++) {
        hlr_layer *l = m->layers[i];
        if (l->ops->plan) {
            hlr_status st = l->ops->plan(l, batch);
            if (st != HLR_OK) {
                free_buffers(m);
                return st;
            }
        }
    }
    m->planned = batch;
    return HLR_OK;
}

const float *hlr__model_forward_raw(hlr_model *m, const float *x, int64_t batch, int training)
{
    return forward_pass(m, x, batch, training, 0);
}

static const float *forward_pass(hlr_model *m, const float *x, int64_t batch, int training, int no_backward)
{
    hlr_pass p = {.batch = batch,
                  .training = training,
                  .no_backward = no_backward,
                  .rng = &m->rng,
                  .sync = training ? m->sync_bn : NULL,
                  .sync_status = &m->sync_status};
    const int32_t *len = m->nlengths == batch ? m->lengths : NULL;
    const float *in = x;
    if (training && x != m->acts[0]) {
        /* Keep the input: backward needs it after the caller's buffer may have changed. */
        memcpy(m->acts[0], x, (size_t)(batch * m->in_size) * sizeof(float));
        in = m->acts[0];
    }
    for (int i = 0; i < m->nlayers; i++) {
        hlr_layer *l = m->layers[i];
        m->x_of[i] = in;
        p.lengths = len;
        if (len) {
            m->len_in[i] = len;
            if (l->ops->map_lengths) { /* the lengths after this layer, also for an alias (a fused pooling) */
                int32_t *out = m->mapped + (int64_t)i * m->lengths_cap;
                l->ops->map_lengths(l, len, out, batch);
                len = out;
            }
        }
        if (is_alias(l)) {
            m->y_of[i] = (float *)in; /* never written through: alias layers have no forward */
        } else {
            m->y_of[i] = m->acts[i + 1];
            /* inference folds a batch norm into the layer before: that layer writes the batch norm's buffer */
            if (!(no_backward && l->folded))
                l->ops->forward(l, &p, in, no_backward && l->fold ? m->acts[i + 2] : m->y_of[i]);
        }
        in = m->y_of[i];
    }
    if (len)
        m->len_in[m->nlayers] = len;
    m->train_batch = training ? batch : 0;
    return in;
}

static int has_trainable(const hlr_layer *l)
{
    for (int j = 0; j < l->nparams; j++)
        if (!l->params[j].buffer)
            return 1;
    return 0;
}

static void backward_pass(hlr_model *m, const float *dy, float *dx, int training, int capture, float *captured);

void hlr__model_backward_raw(hlr_model *m, const float *dy, float *dx) { backward_pass(m, dy, dx, 1, -1, NULL); }

/* Backward through the last forward: a training one, or (training 0) the inference forward of
 * hlr_model_input_gradient, whose layers then differentiate what inference computed.  With capture
 * >= 0, the gradient arriving at layer `capture`'s output buffer is copied to captured, and the pass
 * stops there. */
static void backward_pass(hlr_model *m, const float *dy, float *dx, int training, int capture, float *captured)
{
    hlr_pass p = {.batch = m->train_batch, .training = training, .rng = &m->rng,
                  .sync = training ? m->sync_bn : NULL, .sync_status = &m->sync_status};
    const int lengths = m->nlengths == p.batch; /* the forward left each layer's in len_in */
    /* Without a dx to return, the gradient stops at the first layer with
     * trainable parameters: nothing below it needs one (the mlp's first
     * dense layer, behind a flatten, then skips a third of its GEMMs). */
    int first = 0;
    if (!dx && capture < 0)
        while (first < m->nlayers && !has_trainable(m->layers[first]))
            first++;
    const float *cur = dy;
    for (int i = m->nlayers - 1; i >= first; i--) {
        hlr_layer *l = m->layers[i];
        p.lengths = lengths ? m->len_in[i] : NULL;
        if (is_alias(l)) {
            if (i == 0 && dx)
                memcpy(dx, cur, (size_t)(p.batch * l->in_size) * sizeof *dx);
            continue;
        }
        if (i == capture) {
            memcpy(captured, cur, (size_t)(p.batch * act_size(m, l)) * sizeof *captured);
            return;
        }
        /* Write into whichever ping-pong buffer does not hold dy. */
        float *out = i > first ? (cur == m->grad[0] ? m->grad[1] : m->grad[0]) : dx;
        l->ops->backward(l, &p, m->x_of[i], m->y_of[i], cur, out);
        cur = out;
    }
}


int64_t hlr__model_param_floats(const hlr_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int j = 0; j < m->layers[i]->nparams; j++)
            n += m->layers[i]->params[j].value.numel;
    return n;
}

/* ---- token ids and sequence lengths ---- */

hlr_dtype hlr__model_in_dtype(const hlr_model *m)
{
    return m->nlayers > 0 && m->layers[0]->ops->int_input ? HLR_I32 : HLR_F32;
}

hlr_status hlr__model_check_classifier(const hlr_model *m, const char *fn)
{
    if (m->out.ndim == 1 && m->out_size >= 1)
        return HLR_OK;
    char s[HLR__SHAPE_STR];
    return hlr__fail(HLR_ESHAPE, "%s: the model's output is %s per sample; classes need (N, C), one vector of scores "
                     "per sample (end with a dense layer, seq_last or seq_mean)", fn, hlr__shape_str(&m->out, s, sizeof s));
}

/* Size the per-layer lengths (len_in, mapped) for the model's layers and lengths_cap samples. */
static hlr_status size_layer_lengths(hlr_model *m, const char *fn)
{
    const int64_t rows = m->nlayers > 0 ? m->nlayers : 1;
    const int32_t **in = hlr__alloc_or_fail((size_t)m->nlayers + 1, sizeof *in, fn);
    int32_t *mapped = hlr__alloc_or_fail((size_t)(rows * m->lengths_cap), sizeof *mapped, fn);
    if (!in || !mapped) {
        hlr__free(in);
        hlr__free(mapped);
        return HLR_ENOMEM;
    }
    hlr__free(m->len_in);
    hlr__free(m->mapped);
    m->len_in = in;
    m->mapped = mapped;
    m->len_layers = m->nlayers;
    return HLR_OK;
}

hlr_status hlr__model_check_pass(hlr_model *m, int64_t batch, const void *x, const char *fn)
{
    if (m->nlengths && m->nlengths != batch)
        return hlr__fail(HLR_ESHAPE, "%s: lengths were set for %lld sequences, the batch has %lld", fn,
                         (long long)m->nlengths, (long long)batch);
    if (m->nlengths && m->len_layers != m->nlayers) { /* lengths set before the last layers were added */
        hlr_status st = size_layer_lengths(m, fn);
        if (st != HLR_OK)
            return st;
    }
    for (int i = 0; i < m->nlayers; i++) {
        hlr_layer *l = m->layers[i];
        hlr_status st = l->ops->check_pass ? l->ops->check_pass(l, batch, i == 0 ? x : NULL) : HLR_OK;
        if (st != HLR_OK)
            return st;
    }
    return HLR_OK;
}

hlr_status hlr_model_set_lengths(hlr_model *m, const int32_t *lengths, int64_t n)
{
    if (!m)
        return hlr__fail(HLR_EINVAL, "hlr_model_set_lengths: model is NULL");
    m->train_batch = 0; /* a training forward and its backward must see the same lengths */
    if (!lengths) {
        m->nlengths = 0;
        return HLR_OK;
    }
    if (n < 1)
        return hlr__fail(HLR_EINVAL, "hlr_model_set_lengths: n = %lld; expected >= 1", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (lengths[i] < 1)
            return hlr__fail(HLR_EINVAL, "hlr_model_set_lengths: length %d of sequence %lld is below 1", lengths[i],
                             (long long)i);
    if (n > m->lengths_cap) {
        int64_t cap = n > m->planned ? n : m->planned;
        int32_t *l = hlr__alloc_or_fail((size_t)cap, sizeof *l, "hlr_model_set_lengths");
        if (!l)
            return HLR_ENOMEM;
        hlr__free(m->lengths);
        m->lengths = l;
        m->lengths_cap = cap;
        m->len_layers = -1;
    }
    if (m->len_layers != m->nlayers) {
        hlr_status st = size_layer_lengths(m, "hlr_model_set_lengths");
        if (st != HLR_OK)
            return st;
    }
    memcpy(m->lengths, lengths, (size_t)n * sizeof *lengths);
    m->nlengths = n;
    return HLR_OK;
}

const int32_t *hlr__model_out_lengths(const hlr_model *m, int64_t batch)
{
    return m->nlengths == batch && m->len_layers == m->nlayers ? m->len_in[m->nlayers] : NULL;
}

hlr_status hlr_model_output_lengths(const hlr_model *m, int32_t *lengths, int64_t n)
{
    const char *fn = "hlr_model_output_lengths";
    if (!m || !lengths)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (m->nlengths == 0)
        return hlr__fail(HLR_ESTATE, "%s: no lengths are set (hlr_model_set_lengths)", fn);
    if (n != m->nlengths)
        return hlr__fail(HLR_ESHAPE, "%s: lengths were set for %lld samples, not %lld", fn, (long long)m->nlengths,
                         (long long)n);
    /* Map them now, in place: what a forward does, without one. */
    memcpy(lengths, m->lengths, (size_t)n * sizeof *lengths);
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i]->ops->map_lengths)
            m->layers[i]->ops->map_lengths(m->layers[i], lengths, lengths, n);
    return HLR_OK;
}

/* ---- public forward / backward ---- */

/* t must be (N, shape...) of dtype; returns N or a negative status. */
int64_t hlr__check_batch(const hlr_tensor *t, hlr_dtype dtype, const hlr_shape *shape, int64_t batch,
                           const char *fn, const char *what)
{
    hlr_status st = hlr__check_tensor(t, dtype, fn);
    if (st != HLR_OK)
        return st;
    int ok = t->ndim == shape->ndim + 1 && (batch < 0 || t->shape[0] == batch);
    for (int i = 0; ok && i < shape->ndim; i++)
        ok = t->shape[i + 1] == shape->d[i];
    if (!ok) {
        char want[HLR__SHAPE_STR], got[HLR__SHAPE_STR];
        hlr_shape g = {.ndim = t->ndim};
        memcpy(g.d, t->shape, sizeof g.d);
        hlr__shape_str(shape, want, sizeof want);
        if (batch >= 0)
            return hlr__fail(HLR_ESHAPE, "%s: %s has shape %s, expected (%lld, %s", fn, what,
                             hlr__shape_str(&g, got, sizeof got), (long long)batch, want + 1);
        return hlr__fail(HLR_ESHAPE, "%s: %s has shape %s, expected (N, %s", fn, what,
                         hlr__shape_str(&g, got, sizeof got), want + 1);
    }
    return t->shape[0];
}

hlr_status hlr_model_forward(hlr_model *m, const hlr_tensor *x, hlr_tensor *y, int training)
{
    if (!m || !x || !y)
        return hlr__fail(HLR_EINVAL, "hlr_model_forward: NULL argument");
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "hlr_model_forward: the model is not built");
    if (training && hlr__model_check_trainable(m, "hlr_model_forward") != HLR_OK)
        return HLR_ESTATE;
    int64_t n = hlr__check_batch(x, hlr__model_in_dtype(m), &m->in, -1, "hlr_model_forward", "input");
    if (n < 0)
        return (hlr_status)n;
    int64_t ny = hlr__check_batch(y, HLR_F32, &m->out, n, "hlr_model_forward", "output");
    if (ny < 0)
        return (hlr_status)ny;
    hlr_status st = hlr__model_check_pass(m, n, x->data, "hlr_model_forward");
    if (st == HLR_OK)
        st = hlr__model_plan(m, n);
    if (st != HLR_OK)
        return st;
    const float *out = training ? hlr__model_forward_raw(m, x->data, n, 1) : hlr__model_infer(m, x->data, n);
    memcpy(y->data, out, (size_t)(n * m->out_size) * sizeof(float));
    return HLR_OK;
}

hlr_status hlr_model_backward(hlr_model *m, const hlr_tensor *dy, hlr_tensor *dx)
{
    if (!m || !dy)
        return hlr__fail(HLR_EINVAL, "hlr_model_backward: NULL argument");
    if (!m->built || m->train_batch == 0)
        return hlr__fail(HLR_ESTATE, "hlr_model_backward: call hlr_model_forward with training=1 first");
    int64_t n = hlr__check_batch(dy, HLR_F32, &m->out, m->train_batch, "hlr_model_backward", "dy");
    if (n < 0)
        return (hlr_status)n;
    if (dx && hlr__model_in_dtype(m) == HLR_I32)
        return hlr__fail(HLR_EINVAL, "hlr_model_backward: the input is token ids, which have no gradient; "
                                     "pass dx NULL");
    if (dx) {
        int64_t nx = hlr__check_batch(dx, HLR_F32, &m->in, n, "hlr_model_backward", "dx");
        if (nx < 0)
            return (hlr_status)nx;
    }
    hlr__model_backward_raw(m, dy->data, dx ? dx->data : NULL);
    return HLR_OK;
}

/* ---- loss and one training step ---- */

hlr_status hlr_model_set_loss(hlr_model *m, hlr_loss_kind kind, float label_smoothing)
{
    if (!m)
        return hlr__fail(HLR_EINVAL, "hlr_model_set_loss: model is NULL");
    if (kind != HLR_LOSS_CROSS_ENTROPY && kind != HLR_LOSS_MSE && kind != HLR_LOSS_CTC)
        return hlr__fail(HLR_EINVAL, "hlr_model_set_loss: unknown loss %d", (int)kind);
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
        return hlr__fail(HLR_EINVAL, "hlr_model_set_loss: label smoothing %g outside [0, 1)", (double)label_smoothing);
    if (kind != HLR_LOSS_CROSS_ENTROPY && label_smoothing != 0.0f)
        return hlr__fail(HLR_EINVAL, "hlr_model_set_loss: label smoothing applies to cross-entropy only");
    m->loss = kind;
    m->smoothing = label_smoothing;
    return HLR_OK;
}

hlr_status hlr__model_check_ctc(const hlr_model *m, const char *fn)
{
    if (m->out.ndim == 2 && m->out.d[1] >= 2)
        return HLR_OK;
    char s[HLR__SHAPE_STR];
    return hlr__fail(HLR_ESHAPE, "%s: the model's output is %s per sample; CTC needs (T, C), a sequence of scores "
                     "over the blank and at least one label (end with a dense layer on a sequence)", fn,
                     hlr__shape_str(&m->out, s, sizeof s));
}

double *hlr__model_ctc_work(hlr_model *m, int64_t batch, int64_t S, const char *fn)
{
    int64_t need;
    if (hlr__ctc_work_doubles(batch, m->out.d[0], m->out.d[1], S, &need) != 0) {
        hlr__fail(HLR_ENOMEM, "%s: the CTC workspace overflows", fn);
        return NULL;
    }
    if (need > m->ctc_work_cap) {
        double *w = hlr__alloc_or_fail((size_t)need, sizeof *w, fn);
        if (!w)
            return NULL;
        hlr__free(m->ctc_work);
        m->ctc_work = w;
        m->ctc_work_cap = need;
    }
    return m->ctc_work;
}

hlr_status hlr__check_ctc_targets(const int32_t *t, int64_t n, int64_t S, int64_t C, const char *fn)
{
    for (int64_t i = 0; i < n; i++) {
        int padding = 0;
        for (int64_t k = 0; k < S; k++) {
            int32_t v = t[i * S + k];
            if (v < 0) {
                padding = 1;
            } else if (padding || v == 0 || v >= C) {
                return hlr__fail(HLR_EINVAL, "%s: target %lld, position %lld: %d is %s", fn, (long long)i,
                                 (long long)k, v, padding ? "a label after the -1 padding"
                                 : v == 0 ? "the blank (0), which is no label; pad with -1"
                                          : "outside the labels [1, C)");
            }
        }
    }
    return HLR_OK;
}

/* ---- input gradients in inference mode ---- */

hlr_status hlr_model_input_gradient(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int of_loss,
                                    hlr_tensor *grad)
{
    const char *fn = "hlr_model_input_gradient";
    if (!m || !x || !grad)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    hlr_status st = hlr__model_input_gradient_check(m, x, targets, of_loss, grad, fn);
    if (st == HLR_OK)
        hlr__model_input_gradient_raw(m, x->data, x->shape[0], targets, of_loss, grad->data);
    return st;
}

hlr_status hlr__model_input_gradient_check(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int of_loss,
                                          const hlr_tensor *grad, const char *fn)
{
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (m->shared_from)
        return hlr__fail(HLR_ESTATE, "%s: a clone made by hlr_model_clone_shared keeps no gradients; use the "
                         "model it was cloned from", fn);
    if (hlr__model_in_dtype(m) != HLR_F32)
        return hlr__fail(HLR_EUNSUPPORTED, "%s: the model takes token ids, which have no gradient", fn);
    hlr_status st = hlr__model_check_classifier(m, fn);
    if (st != HLR_OK)
        return st;
    int64_t n = hlr__check_batch(x, HLR_F32, &m->in, -1, fn, "input");
    if (n < 0)
        return (hlr_status)n;
    int64_t ng = hlr__check_batch(grad, HLR_F32, &m->in, n, fn, "grad");
    if (ng < 0)
        return (hlr_status)ng;
    if (of_loss && !targets)
        return hlr__fail(HLR_EINVAL, "%s: the loss's gradient needs the labels (targets)", fn);
    const int64_t c = m->out_size;
    for (int64_t i = 0; targets && i < n; i++)
        if (targets[i] < 0 || targets[i] >= c)
            return hlr__fail(HLR_EINVAL, "%s: target %d at %lld outside [0, %lld)", fn, targets[i], (long long)i,
                             (long long)c);
    if ((st = hlr__model_check_pass(m, n, x->data, fn)) != HLR_OK || (st = hlr__model_plan(m, n)) != HLR_OK)
        return st;
    return HLR_OK;
}

void hlr__model_input_gradient_raw(hlr_model *m, const float *x, int64_t n, const int32_t *targets, int of_loss,
                                   float *grad)
{
    const int64_t c = m->out_size;
    /* The inference forward on the model's own copy of x (backward reads layer inputs after it). */
    memcpy(m->acts[0], x, (size_t)(n * m->in_size) * sizeof(float));
    const float *out = hlr__model_forward_raw(m, m->acts[0], n, 0);
    for (int64_t i = 0; i < n; i++) {
        const float *row = out + i * c;
        float *d = m->dy + i * c;
        int64_t t = targets ? targets[i] : hlrk_argmax(row, c);
        if (of_loss) { /* d(-log softmax_t)/d logits = softmax - onehot, per sample (no mean over the batch) */
            hlrk_softmax_rows(d, row, 1, c);
            d[t] -= 1.0f;
        } else {
            memset(d, 0, (size_t)c * sizeof *d);
            d[t] = 1.0f;
        }
    }
    m->train_batch = n;
    backward_pass(m, m->dy, grad, 0, -1, NULL);
    m->train_batch = 0; /* hlr_model_backward still needs a training forward of its own */
}

hlr_status hlr__model_layer_gradient(hlr_model *m, const float *x, int64_t n, const int32_t *targets, int k,
                                     float *act, float *grad, hlr_shape *shape, const char *fn)
{
    hlr_layer *l = m->layers[k];
    if (is_alias(l))
        return hlr__fail(HLR_EINVAL, "%s: layer %d (%s) is done by the layer before it; pick that one", fn, k,
                         l->ops->type);
    hlr_status st = hlr__model_check_pass(m, n, x, fn);
    if (st != HLR_OK || (st = hlr__model_plan(m, n)) != HLR_OK)
        return st;
    memcpy(m->acts[0], x, (size_t)(n * m->in_size) * sizeof(float));
    const float *out = hlr__model_forward_raw(m, m->acts[0], n, 0);
    const int64_t c = m->out_size;
    for (int64_t i = 0; i < n; i++) { /* d(class score)/d logits: one-hot */
        float *d = m->dy + i * c;
        memset(d, 0, (size_t)c * sizeof *d);
        d[targets ? targets[i] : hlrk_argmax(out + i * c, c)] = 1.0f;
    }
    *shape = m->layers[k + l->absorbs]->out;
    memcpy(act, m->y_of[k], (size_t)(n * act_size(m, l)) * sizeof *act);
    m->train_batch = n;
    backward_pass(m, m->dy, NULL, 0, k, grad);
    m->train_batch = 0;
    return HLR_OK;
}

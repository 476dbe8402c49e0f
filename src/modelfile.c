/*
 * modelfile.c -- writing model files (docs/format.md): little-endian fields,
 * the chunks of the payload, the envelope (header, zlib, CRC-32), and the
 * atomic replacement of the destination file.
 */
#include "model.h"
#include "modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- little-endian fields ---- */

void hlr__bytes_free(hlr_bytes *b)
{
    hlr__free(b->p);
    memset(b, 0, sizeof *b);
}

static int reserve(hlr_bytes *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = hlr__realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void hlr__put_raw(hlr_bytes *b, const void *data, size_t n)
{
    if (n && reserve(b, n) == 0) {
        memcpy(b->p + b->len, data, n);
        b->len += n;
    }
}

void hlr__put_u8(hlr_bytes *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    hlr__put_raw(b, &c, 1);
}

void hlr__put_u32(hlr_bytes *b, uint32_t v)
{
    unsigned char c[4];
    for (int i = 0; i < 4; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    hlr__put_raw(b, c, 4);
}

void hlr__put_u64(hlr_bytes *b, uint64_t v)
{
    unsigned char c[8];
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    hlr__put_raw(b, c, 8);
}

void hlr__put_f32(hlr_bytes *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    hlr__put_u32(b, u);
}

void hlr__put_f64(hlr_bytes *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    hlr__put_u64(b, u);
}

void hlr__put_str(hlr_bytes *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    hlr__put_u32(b, (uint32_t)n);
    hlr__put_raw(b, s, n);
}

void hlr__put_f32s(hlr_bytes *b, const float *v, int64_t n)
{
    if (hlr__host_is_little_endian()) {
        hlr__put_raw(b, v, (size_t)n * sizeof *v);
        return;
    }
    if (reserve(b, (size_t)n * 4) != 0)
        return;
    for (int64_t i = 0; i < n; i++)
        hlr__put_f32(b, v[i]);
}

size_t hlr__chunk_begin(hlr_bytes *b, const char *tag)
{
    hlr__put_raw(b, tag, 4);
    size_t at = b->len;
    hlr__put_u64(b, 0);
    return at;
}

void hlr__chunk_end(hlr_bytes *b, size_t at)
{
    if (b->failed)
        return;
    uint64_t n = b->len - at - 8;
    for (int i = 0; i < 8; i++)
        b->p[at + (size_t)i] = (unsigned char)(n >> (8 * i));
}

/* ---- the envelope ---- */

static void put_header(unsigned char *h, int minor, uint32_t flags, uint64_t csize, uint64_t usize, uint32_t crc)
{
    hlr_bytes b = {.p = h, .cap = HLR_FILE_HEADER_SIZE}; /* fits: never reallocates */
    hlr__put_raw(&b, hlr__file_magic, 8);
    hlr__put_u8(&b, HLR_FORMAT_MAJOR & 0xFF);
    hlr__put_u8(&b, HLR_FORMAT_MAJOR >> 8);
    hlr__put_u8(&b, (unsigned)minor & 0xFF);
    hlr__put_u8(&b, (unsigned)minor >> 8);
    hlr__put_u32(&b, flags);
    hlr__put_u64(&b, csize);
    hlr__put_u64(&b, usize);
    hlr__put_u32(&b, crc);
    hlr__put_u32(&b, hlr__crc32(h, 36));
}

hlr_status hlr__file_wrap(const void *payload, size_t len, int level, uint32_t flags, void **out, size_t *outlen)
{
    return hlr__file_wrap_minor(payload, len, level, 0, flags, out, outlen);
}

hlr_status hlr__file_wrap_minor(const void *payload, size_t len, int level, int minor, uint32_t flags, void **out,
                                size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit(&z, level) != Z_OK)
        return hlr__fail(HLR_ENOMEM, "model file: cannot start zlib at level %d", level);
    uLong bound = deflateBound(&z, (uLong)len);
    unsigned char *file = bound <= SIZE_MAX - HLR_FILE_HEADER_SIZE
                              ? hlr__alloc_or_fail(HLR_FILE_HEADER_SIZE + (size_t)bound, 1, "model file")
                              : NULL;
    if (!file) {
        deflateEnd(&z);
        return HLR_ENOMEM;
    }
    const unsigned char *in = payload;
    size_t in_left = len, out_left = (size_t)bound;
    z.next_out = file + HLR_FILE_HEADER_SIZE;
    int zst = Z_OK;
    while (zst == Z_OK) {
        /* zlib counts in uInt: feed and drain at most 1 GiB at a time. */
        if (z.avail_in == 0 && in_left) {
            z.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            z.next_in = (unsigned char *)(uintptr_t)in;
            in += z.avail_in;
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0) {
            z.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            out_left -= z.avail_out;
        }
        zst = deflate(&z, in_left || z.avail_in ? Z_NO_FLUSH : Z_FINISH);
        if (zst == Z_BUF_ERROR && z.avail_out == 0 && out_left)
            zst = Z_OK; /* only needed more room */
    }
    size_t csize = (size_t)z.total_out;
    deflateEnd(&z);
    if (zst != Z_STREAM_END) {
        hlr__free(file);
        return hlr__fail(HLR_ENOMEM, "model file: zlib failed to compress (%d)", zst);
    }
    put_header(file, minor, flags, csize, len, hlr__crc32(payload, len));
    *out = file;
    *outlen = HLR_FILE_HEADER_SIZE + csize;
    return HLR_OK;
}

/* ---- the payload ---- */

static int trainable_count(hlr_model *m)
{
    int n = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++)
            n += !l->params[j].buffer;
    }
    return n;
}

static void put_shape(hlr_bytes *b, int ndim, const int64_t *d)
{
    hlr__put_u32(b, (uint32_t)ndim);
    for (int i = 0; i < ndim; i++)
        hlr__put_u64(b, (uint64_t)d[i]);
}

/* What the reader would refuse, refused when saving. */
static hlr_status check_limits(hlr_model *m)
{
    int n = hlr_model_num_layers(m);
    int64_t total = m->in_size;
    if (n > HLR_FILE_MAX_LAYERS)
        return hlr__fail(HLR_EUNSUPPORTED, "hlr_model_save: %d layers; model files hold at most %d", n,
                         HLR_FILE_MAX_LAYERS);
    if (total > HLR_FILE_MAX_INPUT)
        return hlr__fail(HLR_EUNSUPPORTED, "hlr_model_save: inputs of %lld values; model files allow at most %lld",
                         (long long)total, (long long)HLR_FILE_MAX_INPUT);
    for (int i = 0; i < n; i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        total += l->out_size;
        if (l->out_size > HLR_FILE_MAX_ACTIVATION || total > HLR_FILE_MAX_ACTIVATIONS)
            return hlr__fail(HLR_EUNSUPPORTED, "hlr_model_save: layer %d (%s) outputs %lld values per sample (%lld "
                                               "up to it); model files allow %lld per layer, %lld in all",
                             i, l->ops->type, (long long)l->out_size, (long long)total,
                             (long long)HLR_FILE_MAX_ACTIVATION, (long long)HLR_FILE_MAX_ACTIVATIONS);
    }
    return HLR_OK;
}

static hlr_status put_arch(hlr_bytes *b, hlr_model *m)
{
    hlr_status st = check_limits(m);
    if (st != HLR_OK)
        return st;
    size_t at = hlr__chunk_begin(b, "ARCH");
    int n = hlr_model_num_layers(m);
    hlr__put_u32(b, (uint32_t)n);
    const hlr_shape *in = &m->in;
    put_shape(b, in->ndim, in->d);
    hlr_loss_kind loss = m->loss;
    hlr__put_u32(b, (uint32_t)loss);
    hlr__put_f32(b, m->smoothing);
    for (int i = 0; i < n; i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        if (!l->ops->from_config || strlen(l->ops->type) > HLR_FILE_MAX_TYPE)
            return hlr__fail(HLR_EUNSUPPORTED, "hlr_model_save: layer %d (%s) cannot be saved: its type cannot be "
                                               "rebuilt from a configuration", i, l->ops->type);
        hlr_config c;
        memset(&c, 0, sizeof c);
        if (l->ops->get_config)
            l->ops->get_config(l, &c);
        hlr__put_str(b, l->ops->type);
        hlr__put_u32(b, (uint32_t)c.n);
        for (int k = 0; k < c.n; k++) {
            hlr__put_str(b, c.item[k].key);
            hlr__put_u8(b, (unsigned)c.item[k].is_float);
            if (c.item[k].is_float)
                hlr__put_f64(b, c.item[k].f);
            else
                hlr__put_u64(b, (uint64_t)c.item[k].i);
        }
        put_shape(b, l->out.ndim, l->out.d);
        uint64_t scalars = 0;
        for (int j = 0; j < l->nparams; j++)
            scalars += (uint64_t)l->params[j].value.numel;
        hlr__put_u64(b, scalars);
        hlr__put_u32(b, (uint32_t)l->nparams);
    }
    hlr__chunk_end(b, at);
    return HLR_OK;
}

static void put_params(hlr_bytes *b, hlr_model *m)
{
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            const hlr_param *p = &l->params[j];
            size_t at = hlr__chunk_begin(b, "PARM");
            hlr__put_u32(b, (uint32_t)i);
            hlr__put_str(b, p->name);
            hlr__put_u32(b, p->buffer ? 1u : 0u);
            put_shape(b, p->value.ndim, p->value.shape);
            hlr__put_f32s(b, p->value.data, p->value.numel);
            hlr__chunk_end(b, at);
        }
    }
}

static hlr_status put_optimizer(hlr_bytes *b, hlr_model *m, const hlr_optimizer *o)
{
    hlr_optimizer_desc d;
    hlr__optimizer_describe(o, &d);
    if (d.bound && d.bound != m->serial)
        return hlr__fail(HLR_ESTATE, "hlr_model_save: the optimizer trains another model");
    if (d.bound && d.nstate != trainable_count(m))
        return hlr__fail(HLR_ESTATE, "hlr_model_save: the optimizer follows %d tensors, the model has %d", d.nstate,
                         trainable_count(m));
    size_t at = hlr__chunk_begin(b, "OPTM");
    hlr__put_u32(b, (uint32_t)d.kind);
    hlr__put_f32(b, d.lr);
    hlr__put_f32(b, d.momentum);
    hlr__put_f32(b, d.beta1);
    hlr__put_f32(b, d.beta2);
    hlr__put_f32(b, d.eps);
    hlr__put_f32(b, d.weight_decay);
    hlr__put_u32(b, (uint32_t)d.nesterov);
    hlr__put_f32(b, d.clip_norm);
    hlr__put_u32(b, (uint32_t)d.schedule);
    hlr__put_f64(b, d.sched_a);
    hlr__put_f64(b, d.sched_b);
    hlr__put_u32(b, (uint32_t)d.warmup_steps);
    hlr__put_f64(b, d.warmup_start);
    hlr__put_u64(b, (uint64_t)d.sched_pos);
    hlr__put_u64(b, (uint64_t)d.steps);
    hlr__put_u32(b, d.bound ? 1u : 0u);
    hlr__put_u32(b, (uint32_t)d.nstate);
    hlr__put_u32(b, (uint32_t)d.nmoments);
    hlr__chunk_end(b, at);
    if (!d.bound || d.nmoments == 0)
        return HLR_OK;
    int k = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++) {
            const hlr_param *p = &l->params[j];
            if (p->buffer)
                continue;
            at = hlr__chunk_begin(b, "OMOM");
            hlr__put_u32(b, (uint32_t)k);
            hlr__put_u32(b, (uint32_t)i);
            hlr__put_str(b, p->name);
            hlr__put_u64(b, (uint64_t)p->value.numel);
            hlr__put_f32s(b, d.m1[k], p->value.numel);
            if (d.nmoments == 2)
                hlr__put_f32s(b, d.m2[k], p->value.numel);
            hlr__chunk_end(b, at);
            k++;
        }
    }
    return HLR_OK;
}

static void put_training_state(hlr_bytes *b, hlr_model *m)
{
    size_t at = hlr__chunk_begin(b, "TRST");
    const hlr_rng *r = &m->rng;
    for (int i = 0; i < 4; i++)
        hlr__put_u64(b, r->s[i]);
    hlr__put_u64(b, (uint64_t)m->epochs_trained);
    hlr__put_u64(b, (uint64_t)m->batches_trained);
    hlr__chunk_end(b, at);
}

static void put_fit_settings(hlr_bytes *b, const hlr__fit_recipe *r)
{
    size_t at = hlr__chunk_begin(b, "FITS");
    hlr__put_u32(b, (uint32_t)r->batch_size);
    hlr__put_u32(b, (uint32_t)r->shuffle);
    hlr__put_u32(b, (uint32_t)r->schedule_per_batch);
    hlr__put_u32(b, (uint32_t)r->augment_shift);
    hlr__put_f64(b, r->validation_split);
    const hlr_augment *a = &r->augment;
    const double g[5] = {a->rotate, a->scale, a->shear, a->elastic_alpha, a->elastic_sigma};
    for (int i = 0; i < 5; i++)
        hlr__put_f64(b, g[i]);
    hlr__chunk_end(b, at);
}

static void put_metadata(hlr_bytes *b, const hlr_metadata *md)
{
    size_t at = hlr__chunk_begin(b, "META");
    hlr__put_str(b, HLR_VERSION_STRING);
    hlr__put_u32(b, HLR_VERSION_NUMBER);
    hlr__put_str(b, md->dataset);
    hlr__put_u32(b, (uint32_t)md->nclasses);
    for (int i = 0; i < md->nclasses; i++)
        hlr__put_str(b, md->classes[i]);
    hlr__put_u32(b, (uint32_t)md->nkeys);
    for (int i = 0; i < md->nkeys; i++) {
        hlr__put_str(b, md->keys[i]);
        hlr__put_str(b, md->values[i]);
    }
    hlr__chunk_end(b, at);
    if (md->nhistory == 0)
        return;
    at = hlr__chunk_begin(b, "HIST");
    hlr__put_u32(b, (uint32_t)md->nhistory);
    for (int i = 0; i < md->nhistory; i++) {
        const hlr_epoch_stats *s = &md->history[i];
        hlr__put_u32(b, (uint32_t)s->epoch);
        hlr__put_u32(b, (uint32_t)s->epochs);
        hlr__put_f64(b, s->train_loss);
        hlr__put_f64(b, s->train_accuracy);
        hlr__put_f64(b, s->val_loss);
        hlr__put_f64(b, s->val_accuracy);
        hlr__put_f64(b, s->lr);
        hlr__put_f64(b, s->seconds);
        hlr__put_f64(b, s->samples_per_second);
    }
    hlr__chunk_end(b, at);
}

hlr_status hlr__file_payload(const hlr_model *cm, const hlr_save_options *opt, hlr_bytes *b, uint32_t *flags)
{
    hlr_model *m = (hlr_model *)cm; /* read only: the accessors are not const */
    memset(b, 0, sizeof *b);
    *flags = 0;
    hlr_status st = put_arch(b, m);
    if (st == HLR_OK)
        put_params(b, m);
    if (st == HLR_OK && opt->optimizer) {
        st = put_optimizer(b, m, opt->optimizer);
        *flags |= HLR_FILE_FLAG_OPTIMIZER;
    }
    if (st == HLR_OK && opt->training_state) {
        put_training_state(b, m);
        *flags |= HLR_FILE_FLAG_TRAINING;
        if (m->has_recipe) /* format 1.2: the last fit's settings */
            put_fit_settings(b, &m->recipe);
    }
    if (st == HLR_OK)
        put_metadata(b, &m->meta);
    if (st == HLR_OK && hlr__model_temperature(m) != 1.0) { /* format 1.1: temperature scaling */
        size_t at = hlr__chunk_begin(b, "TEMP");
        hlr__put_f64(b, hlr__model_temperature(m));
        hlr__chunk_end(b, at);
    }
    if (st == HLR_OK && b->failed)
        st = hlr__fail(HLR_ENOMEM, "hlr_model_save: cannot allocate %zu bytes for the payload", b->cap * 2);
    if (st != HLR_OK)
        hlr__bytes_free(b);
    return st;
}

/* ---- saving ---- */

void hlr_save_options_default(hlr_save_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->compression = 6;
    o->training_state = 1;
}

static hlr_status check_save(const hlr_model *m, const hlr_save_options *opt, const char *fn)
{
    if (!m)
        return hlr__fail(HLR_EINVAL, "%s: model is NULL", fn);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (opt->compression < 0 || opt->compression > 9)
        return hlr__fail(HLR_EINVAL, "%s: compression level %d outside 0..9", fn, opt->compression);
    return HLR_OK;
}

static hlr_status make_file(const hlr_model *m, const hlr_save_options *opt, void **file, size_t *size)
{
    hlr_bytes payload;
    uint32_t flags;
    hlr_status st = hlr__file_payload(m, opt, &payload, &flags);
    if (st != HLR_OK)
        return st;
    /* The smallest version that holds the contents: 1.2 for a fit's settings (FITS), 1.1 for a
     * temperature (TEMP). */
    const int minor = opt->training_state && m->has_recipe ? 2 : hlr__model_temperature(m) != 1.0 ? 1 : 0;
    st = hlr__file_wrap_minor(payload.p, payload.len, opt->compression, minor, flags, file, size);
    hlr__bytes_free(&payload);
    return st;
}

hlr_status hlr_model_save_buffer(const hlr_model *m, const hlr_save_options *opt, void **data, size_t *size)
{
    const char *fn = "hlr_model_save_buffer";
    if (data)
        *data = NULL;
    if (size)
        *size = 0;
    if (!data || !size)
        return hlr__fail(HLR_EINVAL, "%s: %s is NULL", fn, data ? "size" : "data");
    hlr_save_options defaults;
    hlr_save_options_default(&defaults);
    if (!opt)
        opt = &defaults;
    hlr_status st = check_save(m, opt, fn);
    return st != HLR_OK ? st : make_file(m, opt, data, size);
}

void hlr_buffer_free(void *data) { hlr__free(data); }

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/*
 * Write data to a new temporary file in path's folder, flush it, rename it
 * over path and flush the folder.  On failure nothing is left behind and
 * whatever path held stays as it was.
 */
static hlr_status replace_file(const char *path, const void *data, size_t size, const char *fn)
{
    static _Atomic unsigned counter;
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    size_t cap = dirlen + 80;
    char *tmp = hlr__alloc_or_fail(cap, 1, fn);
    if (!tmp)
        return HLR_ENOMEM;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1);
        snprintf(tmp, cap, "%.*s%s.hlr-save-%ld-%u.tmp", (int)dirlen, path, slash ? "/" : "", (long)getpid(), n);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        hlr_status st = hlr__io_fail(fn, "create a temporary file for", path, errno);
        hlr__free(tmp);
        return st;
    }
    const char *step = "write";
    int err = 0;
    if (write_all(fd, data, size) != 0)
        err = errno;
    else if (fsync(fd) != 0)
        err = errno, step = "flush";
    if (close(fd) != 0 && !err)
        err = errno, step = "close";
    if (!err && rename(tmp, path) != 0)
        err = errno, step = "rename a temporary file to";
    if (err) {
        unlink(tmp);
        hlr__free(tmp);
        return hlr__io_fail(fn, step, path, err);
    }
    hlr__free(tmp);
    /* Make the rename itself durable; some file systems refuse, which is harmless. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(dirlen ? dirlen : 1) : 1, slash ? path : ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return HLR_OK;
}

hlr_status hlr_model_save(const hlr_model *m, const char *path, const hlr_save_options *opt)
{
    const char *fn = "hlr_model_save";
    if (!path || !*path)
        return hlr__fail(HLR_EINVAL, "%s: path is %s", fn, path ? "empty" : "NULL");
    hlr_save_options defaults;
    hlr_save_options_default(&defaults);
    if (!opt)
        opt = &defaults;
    hlr_status st = check_save(m, opt, fn);
    void *file = NULL;
    size_t size = 0;
    if (st == HLR_OK)
        st = make_file(m, opt, &file, &size);
    if (st == HLR_OK)
        st = replace_file(path, file, size, fn);
    hlr__free(file);
    return st;
}

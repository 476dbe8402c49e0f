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

const unsigned char hlr__file_magic[8] = {0x89, 'H', 'L', 'R', '\r', '\n', 0x1A, '\n'};

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

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

void hlr__put_f32s(hlr_bytes *b, const float *v, int64_t n)
{
    if (host_is_little_endian()) {
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

uint32_t hlr__get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t hlr__get_u64(const unsigned char *p) { return hlr__get_u32(p) | (uint64_t)hlr__get_u32(p + 4) << 32; }

void hlr__get_f32s(float *dst, const unsigned char *src, int64_t n)
{
    if (host_is_little_endian()) {
        memcpy(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = hlr__get_u32(src + 4 * i);
        memcpy(dst + i, &u, 4);
    }
}

/* zlib's crc32() takes at most UINT_MAX bytes at a time. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
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
    hlr__put_u32(&b, crc32_of(h, 36));
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
    put_header(file, minor, flags, csize, len, crc32_of(payload, len));
    *out = file;
    *outlen = HLR_FILE_HEADER_SIZE + csize;
    return HLR_OK;
}

static hlr_status bad_file(const char *fmt, ...) HLR_PRINTF(1, 2);
static hlr_status bad_file(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hlr__fail(HLR_EFORMAT, "model file: %s", msg);
}

hlr_status hlr__file_unwrap(const void *data, size_t size, hlr_file_header *h, unsigned char **payload,
                            int tolerate_crc, int *crc_ok)
{
    const unsigned char *f = data;
    *payload = NULL;
    if (crc_ok)
        *crc_ok = 0;
    if (size < 8 || memcmp(f, hlr__file_magic, 8) != 0)
        return bad_file("not a libhlr model: the first bytes are not the magic 89 48 4C 52 0D 0A 1A 0A");
    if (size < HLR_FILE_HEADER_SIZE)
        return bad_file("truncated: %zu bytes, shorter than the %d-byte header", size, HLR_FILE_HEADER_SIZE);
    h->major = f[8] | (unsigned)f[9] << 8;
    h->minor = f[10] | (unsigned)f[11] << 8;
    h->flags = hlr__get_u32(f + 12);
    h->csize = hlr__get_u64(f + 16);
    h->usize = hlr__get_u64(f + 24);
    h->crc = hlr__get_u32(f + 32);
    uint32_t hcrc = hlr__get_u32(f + 36);
    if (crc32_of(f, 36) != hcrc)
        return bad_file("the header is damaged (its CRC-32 is %08x, the header says %08x)", crc32_of(f, 36), hcrc);
    if (h->major > HLR_FORMAT_MAJOR)
        return hlr__fail(HLR_EUNSUPPORTED,
                         "model file format %u.%u is newer than this library reads (%d.x; libhlr %s): "
                         "upgrade libhlr to read it",
                         h->major, h->minor, HLR_FORMAT_MAJOR, HLR_VERSION_STRING);
    if (h->major < 1)
        return bad_file("format version %u.%u does not exist (this library reads %d.x)", h->major, h->minor,
                        HLR_FORMAT_MAJOR);
    if (h->flags & HLR_FILE_FLAGS_REQUIRED)
        return hlr__fail(HLR_EUNSUPPORTED,
                         "model file: needs features this library (format %d.%d) lacks: required flags %08x",
                         HLR_FORMAT_MAJOR, HLR_FORMAT_MINOR, (unsigned)(h->flags & HLR_FILE_FLAGS_REQUIRED));
    size_t have = size - HLR_FILE_HEADER_SIZE;
    if (h->csize > have)
        return bad_file("truncated: the header announces %llu compressed bytes, the file holds %zu",
                        (unsigned long long)h->csize, have);
    if (h->csize < have)
        return bad_file("%zu unexpected bytes after the %llu-byte payload", have - (size_t)h->csize,
                        (unsigned long long)h->csize);
    if (h->usize < HLR_FILE_CHUNK_HEADER || h->usize > HLR_FILE_MAX_PAYLOAD ||
        h->usize > h->csize * HLR_FILE_MAX_RATIO + HLR_FILE_RATIO_SLACK || h->usize > SIZE_MAX)
        return bad_file("the header's uncompressed size %llu is impossible for %llu compressed bytes "
                        "(limits: 12 to min(2^36, 1032 x compressed + 1024))",
                        (unsigned long long)h->usize, (unsigned long long)h->csize);

    unsigned char *out = hlr__alloc_or_fail((size_t)h->usize, 1, "model file payload");
    if (!out)
        return HLR_ENOMEM;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        hlr__free(out);
        return hlr__fail(HLR_ENOMEM, "model file: cannot start zlib");
    }
    const unsigned char *in = f + HLR_FILE_HEADER_SIZE;
    size_t in_left = (size_t)h->csize, out_left = (size_t)h->usize;
    z.next_out = out;
    int zst = Z_OK;
    while (zst == Z_OK) {
        if (z.avail_in == 0 && in_left) {
            z.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            z.next_in = (unsigned char *)(uintptr_t)in;
            in += z.avail_in;
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0 && out_left) {
            z.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            out_left -= z.avail_out;
        }
        if (z.avail_in == 0 && z.avail_out == 0)
            break; /* the input is used up or the payload is full, and the stream has not ended */
        zst = inflate(&z, Z_NO_FLUSH);
        if (zst == Z_BUF_ERROR && ((z.avail_in == 0 && in_left) || (z.avail_out == 0 && out_left)))
            zst = Z_OK;
    }
    uint64_t produced = z.total_out, consumed = z.total_in;
    char zmsg[96];
    snprintf(zmsg, sizeof zmsg, "%s", z.msg ? z.msg : "");
    inflateEnd(&z);
    hlr_status st = HLR_OK;
    if (zst == Z_MEM_ERROR)
        st = hlr__fail(HLR_ENOMEM, "model file: zlib ran out of memory");
    else if (zst != Z_STREAM_END && zst != Z_OK && zst != Z_BUF_ERROR)
        st = bad_file("the payload does not inflate: zlib says \"%s\" near compressed byte %llu", zmsg[0] ? zmsg : "?",
                      (unsigned long long)consumed);
    else if (zst != Z_STREAM_END && produced >= h->usize)
        st = bad_file("the payload inflates to more than the %llu bytes the header announces",
                      (unsigned long long)h->usize);
    else if (zst != Z_STREAM_END)
        st = bad_file("truncated payload: the zlib stream stops after %llu of %llu bytes",
                      (unsigned long long)produced, (unsigned long long)h->usize);
    else if (produced != h->usize)
        st = bad_file("the payload inflates to %llu bytes, the header announces %llu", (unsigned long long)produced,
                      (unsigned long long)h->usize);
    else if (consumed != h->csize)
        st = bad_file("the zlib stream ends after %llu of the %llu compressed bytes", (unsigned long long)consumed,
                      (unsigned long long)h->csize);
    if (st == HLR_OK) {
        uint32_t crc = crc32_of(out, (size_t)h->usize);
        if (crc_ok)
            *crc_ok = crc == h->crc;
        if (crc != h->crc && !tolerate_crc)
            st = bad_file("the payload is damaged: its CRC-32 is %08x, the header says %08x", crc, h->crc);
    }
    if (st != HLR_OK) {
        hlr__free(out);
        return st;
    }
    *payload = out;
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
    /* The smallest version that holds the contents: 1.1 only for a temperature (TEMP). */
    const int minor = hlr__model_temperature(m) != 1.0 ? 1 : 0;
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

static hlr_status io_fail(const char *fn, const char *what, const char *path, int err)
{
    char buf[128];
    const char *why = strerror_r(err, buf, sizeof buf);
    return hlr__fail(HLR_EIO, "%s: cannot %s %s: %s", fn, what, path, why);
}

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
        hlr_status st = io_fail(fn, "create a temporary file for", path, errno);
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
        return io_fail(fn, step, path, err);
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

/* ---- reading a whole file ---- */

hlr_status hlr__read_file(const char *path, const char *fn, unsigned char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    int64_t file_size;
    int fd = hlr__open_regular(path, fn, &file_size); /* no FIFO or device: they could block forever */
    if (fd < 0)
        return HLR_EIO;
    if ((uint64_t)file_size > HLR_FILE_MAX_PAYLOAD + HLR_FILE_HEADER_SIZE || (uint64_t)file_size > SIZE_MAX) {
        close(fd);
        return hlr__fail(HLR_EFORMAT, "model file: %s has %lld bytes, more than any model file", path,
                         (long long)file_size);
    }
    size_t n = (size_t)file_size;
    unsigned char *buf = hlr__alloc_or_fail(n ? n : 1, 1, fn);
    if (!buf) {
        close(fd);
        return HLR_ENOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got > (1u << 30) ? (1u << 30) : n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int err = errno;
            close(fd);
            hlr__free(buf);
            return io_fail(fn, "read", path, err);
        }
        if (k == 0)
            break; /* the file shrank meanwhile: the format checks will say what is missing */
        got += (size_t)k;
    }
    close(fd);
    *data = buf;
    *size = got;
    return HLR_OK;
}

/* ---- optimizers from their description ---- */


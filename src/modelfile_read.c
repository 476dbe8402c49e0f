/*
 * modelfile_read.c -- reading model files (docs/format.md) as hostile input:
 * every field is checked against the bytes left and the format's limits
 * before anything is allocated or looped over, and every failure names the
 * chunk and the payload offset.  Then either the model is rebuilt
 * (hlr_model_load) or the file is described (hlr_model_info_load).
 */
#include "model.h"
#include "modelfile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- bytes, the envelope and whole files (the writer's counterparts are in modelfile.c) ---- */

uint32_t hlr__get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t hlr__get_u64(const unsigned char *p) { return hlr__get_u32(p) | (uint64_t)hlr__get_u32(p + 4) << 32; }

void hlr__get_f32s(float *dst, const unsigned char *src, int64_t n)
{
    if (hlr__host_is_little_endian()) {
        memcpy(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = hlr__get_u32(src + 4 * i);
        memcpy(dst + i, &u, 4);
    }
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
    if (hlr__crc32(f, 36) != hcrc)
        return bad_file("the header is damaged (its CRC-32 is %08x, the header says %08x)", hlr__crc32(f, 36), hcrc);
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
        uint32_t crc = hlr__crc32(out, (size_t)h->usize);
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
            return hlr__io_fail(fn, "read", path, err);
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


typedef struct chunk {
    char tag[5];
    size_t at;   /* payload offset of the chunk's header */
    size_t body; /* payload offset of its body */
    size_t len;  /* body length */
} chunk;

typedef struct file_layer {
    char type[HLR_FILE_MAX_TYPE + 1];
    hlr_config config;
    hlr_shape out;
    uint64_t scalars;
    uint32_t ntensors;
    uint32_t nparm; /* PARM chunks seen for it */
    int parm[HLR_FILE_MAX_TENSORS]; /* their places in parsed.parms */
    char *config_text; /* info only */
} file_layer;

typedef struct parm_ref {
    int chunk;
    uint32_t layer;
    char name[HLR_FILE_MAX_TENSOR_NAME + 1];
    int buffer;
    int ndim;
    int64_t shape[HLR_MAX_DIMS];
    int64_t numel;
    size_t data; /* payload offset of the values */
} parm_ref;

typedef struct omom_ref {
    int chunk;
    uint32_t slot, layer;
    char name[HLR_FILE_MAX_TENSOR_NAME + 1];
    int64_t numel;
    size_t data;
} omom_ref;

typedef struct parsed {
    hlr_file_header h;
    int crc_ok;
    uint64_t file_size;
    unsigned char *payload;
    size_t len;
    chunk *chunks;
    int nchunks;
    int arch, optm, trst, meta, hist, temp, fits; /* chunk numbers, -1 when absent */
    double temperature; /* TEMP (format 1.1), 1 without it */
    hlr__fit_recipe recipe; /* FITS (format 1.2) */

    int nlayers;
    file_layer *layers;
    hlr_shape input;
    uint32_t loss;
    float smoothing;

    int nparm;
    parm_ref *parms;
    int64_t param_count, buffer_count;
    uint32_t weights_crc;

    hlr_optimizer_desc od;
    uint32_t bound, slots, moments;
    hlr_optimizer *optimizer; /* made from OPTM's hyper-parameters, unbound */
    int nomom;
    omom_ref *omoms;
    int *slot_chunk; /* per slot: the OMOM chunk that gave it, -1 before */

    uint64_t rng[4];
    int64_t epochs, batches;

    hlr_metadata md;
    char writer[HLR_FILE_MAX_VERSION + 1];
} parsed;

/* A reader over one chunk's body; the first error sticks. */
typedef struct cursor {
    const parsed *p;
    int number; /* the chunk's position in the payload */
    size_t pos, end;
    hlr_status status; /* HLR_OK until something fails */
} cursor;

static void parsed_free(parsed *p)
{
    hlr__free(p->payload);
    hlr__free(p->chunks);
    if (p->layers)
        for (int i = 0; i < p->nlayers; i++)
            hlr__free(p->layers[i].config_text);
    hlr__free(p->layers);
    hlr__free(p->parms);
    hlr__free(p->omoms);
    hlr__free(p->slot_chunk);
    hlr_optimizer_free(p->optimizer);
    hlr__metadata_clear(&p->md);
    memset(p, 0, sizeof *p);
}

/* ---- errors that say where ---- */

static hlr_status vfail_at(const parsed *p, int number, size_t offset, hlr_status code, const char *fmt, va_list ap)
{
    char msg[384];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (number < 0)
        return hlr__fail(code, "model file: %s", msg);
    return hlr__fail(code, "model file: chunk %s #%d at payload offset %zu: %s", p->chunks[number].tag, number, offset,
                     msg);
}

static hlr_status fail_at(const parsed *p, int number, size_t offset, const char *fmt, ...) HLR_PRINTF(4, 5);
static hlr_status fail_at(const parsed *p, int number, size_t offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hlr_status st = vfail_at(p, number, offset, HLR_EFORMAT, fmt, ap);
    va_end(ap);
    return st;
}

static hlr_status bad(cursor *r, const char *fmt, ...) HLR_PRINTF(2, 3);
static hlr_status bad(cursor *r, const char *fmt, ...)
{
    if (r->status != HLR_OK)
        return r->status; /* keep the first message */
    va_list ap;
    va_start(ap, fmt);
    r->status = vfail_at(r->p, r->number, r->pos, HLR_EFORMAT, fmt, ap);
    va_end(ap);
    return r->status;
}

static cursor open_chunk(const parsed *p, int number)
{
    cursor r = {.p = p, .number = number, .pos = p->chunks[number].body};
    r.end = r.pos + p->chunks[number].len;
    return r;
}

static size_t left(const cursor *r) { return r->end - r->pos; }

/* 0 when n more bytes are there; else the error is set. */
static int need(cursor *r, uint64_t n, const char *what)
{
    if (r->status != HLR_OK)
        return -1;
    if (n > left(r)) {
        bad(r, "truncated: %s needs %llu bytes, the chunk has %zu left", what, (unsigned long long)n, left(r));
        return -1;
    }
    return 0;
}

static const unsigned char *take(cursor *r, size_t n, const char *what)
{
    if (need(r, n, what))
        return NULL;
    const unsigned char *q = r->p->payload + r->pos;
    r->pos += n;
    return q;
}

static unsigned get_u8(cursor *r, const char *what)
{
    const unsigned char *q = take(r, 1, what);
    return q ? q[0] : 0;
}

static uint32_t get_u32(cursor *r, const char *what)
{
    const unsigned char *q = take(r, 4, what);
    return q ? hlr__get_u32(q) : 0;
}

static uint64_t get_u64(cursor *r, const char *what)
{
    const unsigned char *q = take(r, 8, what);
    return q ? hlr__get_u64(q) : 0;
}

/* An i64 that must be >= 0. */
static int64_t get_count64(cursor *r, const char *what)
{
    size_t at = r->pos;
    uint64_t v = get_u64(r, what);
    if (v > (uint64_t)INT64_MAX) {
        r->pos = at;
        bad(r, "%s is negative (%lld)", what, (long long)v);
        return 0;
    }
    return (int64_t)v;
}

static float get_f32(cursor *r, const char *what)
{
    uint32_t u = get_u32(r, what);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double get_f64(cursor *r, const char *what)
{
    uint64_t u = get_u64(r, what);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* A u32 in [lo, hi]. */
static uint32_t get_u32_in(cursor *r, uint32_t lo, uint32_t hi, const char *what)
{
    size_t at = r->pos;
    uint32_t v = get_u32(r, what);
    if (r->status == HLR_OK && (v < lo || v > hi)) {
        r->pos = at;
        bad(r, "%s is %u; expected %u to %u", what, v, lo, hi);
        return lo;
    }
    return v;
}

/* A str of minlen..maxlen bytes without NUL, into buf (cap > maxlen), NUL-terminated. */
static int get_str(cursor *r, char *buf, size_t maxlen, size_t minlen, const char *what)
{
    buf[0] = '\0';
    size_t at = r->pos;
    uint32_t n = get_u32(r, what);
    if (r->status != HLR_OK)
        return -1;
    if (n < minlen || n > maxlen) {
        r->pos = at;
        bad(r, "%s has %u bytes; expected %zu to %zu", what, n, minlen, maxlen);
        return -1;
    }
    const unsigned char *q = take(r, n, what);
    if (!q)
        return -1;
    if (memchr(q, 0, n)) {
        r->pos = at;
        bad(r, "%s contains a NUL byte", what);
        return -1;
    }
    memcpy(buf, q, n);
    buf[n] = '\0';
    return 0;
}

/* The same, into a new string (hlr__free). */
static char *get_str_alloc(cursor *r, size_t maxlen, size_t minlen, const char *what)
{
    size_t at = r->pos;
    uint32_t n = get_u32(r, what);
    r->pos = at;
    if (r->status != HLR_OK || need(r, 4 + (uint64_t)n, what))
        return NULL;
    if (n > maxlen)
        n = 0; /* get_str reports the length */
    char *s = hlr__alloc_or_fail((size_t)n + 1, 1, "model file string");
    if (!s) {
        r->status = HLR_ENOMEM;
        return NULL;
    }
    if (get_str(r, s, maxlen, minlen, what)) {
        hlr__free(s);
        return NULL;
    }
    return s;
}

/* A shape of min_nd..max_nd dimensions, each >= 1, product <= max_numel. */
static int get_shape(cursor *r, int min_nd, int max_nd, int64_t max_numel, int *ndim, int64_t *d, int64_t *numel,
                     const char *what)
{
    size_t at = r->pos;
    uint32_t nd = get_u32(r, what);
    if (r->status != HLR_OK)
        return -1;
    if (nd < (uint32_t)min_nd || nd > (uint32_t)max_nd) {
        r->pos = at;
        bad(r, "%s has %u dimensions; expected %d to %d", what, nd, min_nd, max_nd);
        return -1;
    }
    int64_t n = 1;
    for (uint32_t i = 0; i < nd; i++) {
        size_t dat = r->pos;
        uint64_t v = get_u64(r, what);
        if (r->status != HLR_OK)
            return -1;
        if (v < 1 || v > (uint64_t)max_numel || hlr__mul_overflows(n, (int64_t)v, &n) || n > max_numel) {
            r->pos = dat;
            bad(r, "%s: dimension %u is %llu; dimensions are >= 1 and hold at most %lld elements together", what, i,
                (unsigned long long)v, (long long)max_numel);
            return -1;
        }
        d[i] = (int64_t)v;
    }
    *ndim = (int)nd;
    *numel = n;
    return 0;
}

static int finish(cursor *r)
{
    if (r->status == HLR_OK && r->pos != r->end)
        bad(r, "%zu bytes left over after the last field", left(r));
    return r->status == HLR_OK ? 0 : -1;
}

/* ---- the chunk table ---- */

static hlr_status index_chunks(parsed *p)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0;
        int k = 0;
        while (pos < p->len) {
            if (p->len - pos < HLR_FILE_CHUNK_HEADER)
                return fail_at(p, -1, 0, "payload offset %zu: %zu bytes left, too few for a chunk header", pos,
                               p->len - pos);
            const unsigned char *q = p->payload + pos;
            for (int i = 0; i < 4; i++)
                if (q[i] < 0x20 || q[i] > 0x7E)
                    return fail_at(p, -1, 0, "payload offset %zu: chunk tag %02x %02x %02x %02x is not printable ASCII",
                                   pos, q[0], q[1], q[2], q[3]);
            uint64_t len = hlr__get_u64(q + 4);
            if (len > p->len - pos - HLR_FILE_CHUNK_HEADER)
                return fail_at(p, -1, 0, "payload offset %zu: chunk %.4s claims %llu bytes, only %zu follow", pos, q,
                               (unsigned long long)len, p->len - pos - HLR_FILE_CHUNK_HEADER);
            if (pass == 1) {
                chunk *c = &p->chunks[k];
                memcpy(c->tag, q, 4);
                c->tag[4] = '\0';
                c->at = pos;
                c->body = pos + HLR_FILE_CHUNK_HEADER;
                c->len = (size_t)len;
            }
            k++;
            pos += HLR_FILE_CHUNK_HEADER + (size_t)len;
        }
        if (pass == 0) {
            n = k; /* at most len / 12 */
            p->chunks = hlr__alloc_or_fail((size_t)(n ? n : 1), sizeof *p->chunks, "model file chunk table");
            if (!p->chunks)
                return HLR_ENOMEM;
        }
    }
    p->nchunks = n;
    p->arch = p->optm = p->trst = p->meta = p->hist = p->temp = p->fits = -1;
    p->temperature = 1.0;
    for (int i = 0; i < n; i++) {
        int *slot = NULL;
        const char *t = p->chunks[i].tag;
        if (!strcmp(t, "ARCH"))
            slot = &p->arch;
        else if (!strcmp(t, "OPTM"))
            slot = &p->optm;
        else if (!strcmp(t, "TRST"))
            slot = &p->trst;
        else if (!strcmp(t, "META"))
            slot = &p->meta;
        else if (!strcmp(t, "HIST"))
            slot = &p->hist;
        else if (!strcmp(t, "TEMP"))
            slot = &p->temp;
        else if (!strcmp(t, "FITS"))
            slot = &p->fits;
        if (!slot)
            continue;
        if (*slot >= 0)
            return fail_at(p, i, p->chunks[i].at, "a second %s chunk (the first is #%d)", t, *slot);
        *slot = i;
    }
    if (n == 0 || p->arch != 0)
        return fail_at(p, -1, 0, "the payload does not start with an ARCH chunk (%s)",
                       n ? p->chunks[0].tag : "no chunks");
    return HLR_OK;
}

/* ---- ARCH ---- */

static hlr_status parse_arch(parsed *p)
{
    cursor r = open_chunk(p, p->arch);
    uint32_t n = get_u32_in(&r, 1, HLR_FILE_MAX_LAYERS, "the layer count");
    int64_t numel = 0;
    get_shape(&r, 1, HLR_MAX_DIMS - 1, HLR_FILE_MAX_INPUT, &p->input.ndim, p->input.d, &numel, "the input shape");
    p->loss = get_u32_in(&r, 0, 2, "the loss");
    size_t at = r.pos;
    p->smoothing = get_f32(&r, "the label smoothing");
    if (r.status == HLR_OK && !(p->smoothing >= 0.0f && p->smoothing < 1.0f)) {
        r.pos = at;
        bad(&r, "label smoothing %g outside [0, 1)", (double)p->smoothing);
    }
    /* Each layer record takes at least 33 bytes: check before allocating. */
    if (r.status == HLR_OK && (uint64_t)n * 33 > left(&r))
        bad(&r, "%u layers cannot fit in the %zu bytes left", n, left(&r));
    if (r.status != HLR_OK)
        return r.status;
    p->layers = hlr__alloc_or_fail(n, sizeof *p->layers, "model file layer table");
    if (!p->layers)
        return HLR_ENOMEM;
    p->nlayers = (int)n;
    char what[160];
    int64_t activations = numel; /* the input's, then every layer's output */
    for (int i = 0; i < p->nlayers && r.status == HLR_OK; i++) {
        file_layer *l = &p->layers[i];
        snprintf(what, sizeof what, "layer %d's type", i);
        get_str(&r, l->type, HLR_FILE_MAX_TYPE, 1, what);
        snprintf(what, sizeof what, "layer %d's configuration count", i);
        uint32_t k = get_u32_in(&r, 0, HLR_CONFIG_MAX, what);
        for (uint32_t j = 0; j < k && r.status == HLR_OK; j++) {
            hlr_config_item *it = &l->config.item[j];
            snprintf(what, sizeof what, "layer %d (%s) configuration key %u", i, l->type, j);
            size_t kat = r.pos;
            get_str(&r, it->key, HLR_FILE_MAX_KEY, 1, what);
            for (uint32_t q = 0; q < j && r.status == HLR_OK; q++)
                if (!strcmp(l->config.item[q].key, it->key)) {
                    r.pos = kat;
                    bad(&r, "layer %d (%s): configuration key \"%s\" appears twice", i, l->type, it->key);
                }
            unsigned kind = get_u8(&r, what);
            if (r.status == HLR_OK && kind > 1) {
                r.pos--;
                bad(&r, "layer %d (%s): configuration \"%s\" has kind %u; expected 0 (integer) or 1 (number)", i,
                    l->type, it->key, kind);
            }
            it->is_float = (int)kind;
            if (kind)
                it->f = get_f64(&r, what);
            else
                it->i = (int64_t)get_u64(&r, what);
        }
        l->config.n = (int)k;
        snprintf(what, sizeof what, "layer %d (%s) output shape", i, l->type);
        size_t at_shape = r.pos;
        get_shape(&r, 1, HLR_MAX_DIMS - 1, HLR_FILE_MAX_ACTIVATION, &l->out.ndim, l->out.d, &numel, what);
        activations += numel;
        if (r.status == HLR_OK && activations > HLR_FILE_MAX_ACTIVATIONS) {
            r.pos = at_shape;
            bad(&r, "the layers' outputs up to layer %d hold %lld values per sample, more than the %lld allowed", i,
                (long long)activations, (long long)HLR_FILE_MAX_ACTIVATIONS);
        }
        snprintf(what, sizeof what, "layer %d (%s) scalar count", i, l->type);
        l->scalars = get_u64(&r, what);
        snprintf(what, sizeof what, "layer %d (%s) tensor count", i, l->type);
        l->ntensors = get_u32_in(&r, 0, HLR_FILE_MAX_TENSORS, what);
    }
    finish(&r);
    return r.status;
}

/* ---- PARM ---- */

static hlr_status parse_parm(parsed *p, int number, parm_ref *t)
{
    cursor r = open_chunk(p, number);
    t->chunk = number;
    size_t at = r.pos;
    t->layer = get_u32(&r, "the layer index");
    if (r.status == HLR_OK && t->layer >= (uint32_t)p->nlayers) {
        r.pos = at;
        return bad(&r, "layer index %u, but the model has %d layers", t->layer, p->nlayers);
    }
    file_layer *l = &p->layers[t->layer];
    get_str(&r, t->name, HLR_FILE_MAX_TENSOR_NAME, 1, "the tensor name");
    if (r.status != HLR_OK)
        return r.status;
    if (l->nparm >= l->ntensors) {
        r.pos = at;
        return bad(&r, "layer %u (%s) has %u tensors, this is one more", t->layer, l->type, l->ntensors);
    }
    for (uint32_t i = 0; i < l->nparm; i++)
        if (!strcmp(p->parms[l->parm[i]].name, t->name)) {
            r.pos = at;
            return bad(&r, "layer %u (%s): tensor \"%s\" appears twice (first in chunk #%d)", t->layer, l->type,
                       t->name, p->parms[l->parm[i]].chunk);
        }
    t->buffer = (int)get_u32_in(&r, 0, 1, "the tensor flags");
    get_shape(&r, 0, HLR_MAX_DIMS, INT64_MAX / 8, &t->ndim, t->shape, &t->numel, "the tensor shape");
    if (r.status == HLR_OK && (uint64_t)t->numel * 4 != left(&r))
        return bad(&r, "layer %u (%s) tensor \"%s\": %lld values need %llu bytes, the chunk has %zu", t->layer,
                   l->type, t->name, (long long)t->numel, (unsigned long long)t->numel * 4, left(&r));
    if (r.status != HLR_OK)
        return r.status;
    t->data = r.pos;
    l->parm[l->nparm++] = p->nparm;
    if (t->buffer)
        p->buffer_count += t->numel;
    else
        p->param_count += t->numel;
    p->weights_crc = (uint32_t)crc32_z(p->weights_crc, p->payload + t->data, (z_size_t)t->numel * 4);
    return HLR_OK;
}

/* ---- OPTM, OMOM ---- */

static hlr_status parse_optm(parsed *p, int trainable)
{
    cursor r = open_chunk(p, p->optm);
    hlr_optimizer_desc *d = &p->od;
    memset(d, 0, sizeof *d);
    d->kind = (hlr__opt_kind)get_u32_in(&r, HLR__OPT_SGD, HLR__OPT_ADAMW, "the optimizer kind");
    d->lr = get_f32(&r, "the learning rate");
    d->momentum = get_f32(&r, "the momentum");
    d->beta1 = get_f32(&r, "beta1");
    d->beta2 = get_f32(&r, "beta2");
    d->eps = get_f32(&r, "eps");
    d->weight_decay = get_f32(&r, "the weight decay");
    d->nesterov = (int)get_u32_in(&r, 0, 1, "the Nesterov flag");
    d->clip_norm = get_f32(&r, "the clipping norm");
    d->schedule = (int)get_u32_in(&r, 0, 2, "the schedule");
    d->sched_a = get_f64(&r, "schedule a");
    d->sched_b = get_f64(&r, "schedule b");
    d->warmup_steps = (int)get_u32_in(&r, 0, INT32_MAX, "the warm-up steps");
    d->warmup_start = get_f64(&r, "the warm-up start");
    d->sched_pos = get_count64(&r, "the schedule position");
    d->steps = get_count64(&r, "the step count");
    size_t at = r.pos;
    p->bound = get_u32_in(&r, 0, 1, "the bound flag");
    p->slots = get_u32(&r, "the state slot count");
    p->moments = get_u32_in(&r, 0, 2, "the moment count");
    if (r.status == HLR_OK && !p->bound && (p->slots || p->moments || d->steps)) {
        r.pos = at;
        bad(&r, "an optimizer without state has %u slots, %u moments and %lld steps; expected none", p->slots,
            p->moments, (long long)d->steps);
    }
    if (r.status == HLR_OK && p->bound && p->slots != (uint32_t)trainable) {
        r.pos = at;
        bad(&r, "state for %u tensors, but the model has %d trainable tensors", p->slots, trainable);
    }
    if (finish(&r))
        return r.status;
    /* The public constructors and setters check every hyper-parameter. */
    p->optimizer = hlr__optimizer_from_desc(d);
    if (!p->optimizer) {
        char why[256];
        snprintf(why, sizeof why, "%s", hlr_last_error());
        return fail_at(p, p->optm, p->chunks[p->optm].body, "invalid optimizer: %s", why);
    }
    unsigned want = d->kind != 0 ? 2 : d->momentum != 0.0f ? 1 : 0;
    if (p->bound && p->moments != want)
        return fail_at(p, p->optm, p->chunks[p->optm].body, "%u moment buffers per tensor; this optimizer keeps %u",
                       p->moments, want);
    p->slot_chunk = hlr__alloc_or_fail(p->slots ? p->slots : 1, sizeof *p->slot_chunk, "model file slot table");
    if (!p->slot_chunk)
        return HLR_ENOMEM;
    for (uint32_t i = 0; i < p->slots; i++)
        p->slot_chunk[i] = -1;
    return HLR_OK;
}

static hlr_status parse_omom(parsed *p, int number, omom_ref *t)
{
    cursor r = open_chunk(p, number);
    t->chunk = number;
    if (p->optm < 0)
        return bad(&r, "moments without an OPTM chunk");
    size_t at = r.pos;
    t->slot = get_u32(&r, "the slot");
    if (r.status == HLR_OK && (p->moments == 0 || t->slot >= p->slots)) {
        r.pos = at;
        return bad(&r, "slot %u, but the optimizer has %u slots with %u moments", t->slot, p->slots, p->moments);
    }
    if (p->slot_chunk[t->slot] >= 0) {
        r.pos = at;
        return bad(&r, "slot %u appears twice (first in chunk #%d)", t->slot, p->slot_chunk[t->slot]);
    }
    p->slot_chunk[t->slot] = number;
    at = r.pos;
    t->layer = get_u32(&r, "the layer index");
    if (r.status == HLR_OK && t->layer >= (uint32_t)p->nlayers) {
        r.pos = at;
        return bad(&r, "layer index %u, but the model has %d layers", t->layer, p->nlayers);
    }
    get_str(&r, t->name, HLR_FILE_MAX_TENSOR_NAME, 1, "the tensor name");
    t->numel = get_count64(&r, "the element count");
    if (r.status == HLR_OK && (t->numel > INT64_MAX / 8 || (uint64_t)t->numel * 4 * p->moments != left(&r)))
        return bad(&r, "%lld elements x %u moments do not fill the %zu bytes left", (long long)t->numel, p->moments,
                   left(&r));
    if (r.status != HLR_OK)
        return r.status;
    t->data = r.pos;
    return HLR_OK;
}

/* ---- TRST, META, HIST, TEMP ---- */

/* TEMP (format 1.1): f64 temperature of hlr_model_predict's softmax, in [1e-3, 1e3]. */
static hlr_status parse_temp(parsed *p)
{
    cursor r = open_chunk(p, p->temp);
    size_t at = r.pos;
    double t = get_f64(&r, "the temperature");
    if (r.status == HLR_OK && !(t >= 1e-3 && t <= 1e3)) {
        r.pos = at;
        bad(&r, "the temperature %g is outside [0.001, 1000]", t);
    }
    finish(&r);
    if (r.status == HLR_OK && p->loss != 0)
        return fail_at(p, p->temp, p->chunks[p->temp].body, "a TEMP chunk in a model whose loss is not cross-entropy");
    p->temperature = t;
    return r.status;
}

/* FITS (format 1.2): the last fit's settings: u32 batch size, shuffle, per-batch schedule, shift; f64
 * validation split, rotate, scale, shear, elastic alpha and sigma.  Only beside a TRST. */
static hlr_status parse_fits(parsed *p)
{
    cursor r = open_chunk(p, p->fits);
    hlr__fit_recipe *s = &p->recipe;
    s->batch_size = (int)get_u32_in(&r, 1, INT32_MAX, "the fit's batch size");
    s->shuffle = (int)get_u32_in(&r, 0, 1, "the fit's shuffle flag");
    s->schedule_per_batch = (int)get_u32_in(&r, 0, 1, "the fit's per-batch schedule flag");
    s->augment_shift = (int)get_u32_in(&r, 0, INT32_MAX, "the fit's augmentation shift");
    size_t at = r.pos;
    s->validation_split = get_f64(&r, "the fit's validation split");
    s->augment.rotate = get_f64(&r, "the fit's rotation");
    s->augment.scale = get_f64(&r, "the fit's scaling");
    s->augment.shear = get_f64(&r, "the fit's shear");
    s->augment.elastic_alpha = get_f64(&r, "the fit's elastic alpha");
    s->augment.elastic_sigma = get_f64(&r, "the fit's elastic sigma");
    /* the integers were bounded as they were read; the doubles as hlr_model_fit bounds them */
    const hlr_augment *a = &s->augment;
    if (r.status == HLR_OK && !(s->validation_split >= 0.0 && s->validation_split < 1.0)) {
        r.pos = at;
        bad(&r, "the fit's settings: validation split %g out of range", s->validation_split);
    } else if (r.status == HLR_OK && !hlr__augment_valid(a)) {
        r.pos = at;
        bad(&r, "the fit's settings: augmentation (%g, %g, %g, %g, %g) out of range", a->rotate, a->scale, a->shear,
            a->elastic_alpha, a->elastic_sigma);
    }
    finish(&r);
    if (r.status == HLR_OK && p->trst < 0)
        return fail_at(p, p->fits, p->chunks[p->fits].body, "a FITS chunk without the training state (TRST)");
    return r.status;
}

static hlr_status parse_trst(parsed *p)
{
    cursor r = open_chunk(p, p->trst);
    for (int i = 0; i < 4; i++)
        p->rng[i] = get_u64(&r, "the generator state");
    if (r.status == HLR_OK && !(p->rng[0] | p->rng[1] | p->rng[2] | p->rng[3])) {
        r.pos -= 32;
        bad(&r, "the generator state is all zero, which xoshiro256** never reaches");
    }
    p->epochs = get_count64(&r, "the epoch count");
    p->batches = get_count64(&r, "the batch count");
    finish(&r);
    return r.status;
}

static hlr_status parse_meta(parsed *p)
{
    cursor r = open_chunk(p, p->meta);
    hlr_metadata *md = &p->md;
    get_str(&r, p->writer, HLR_FILE_MAX_VERSION, 0, "the writer version");
    (void)get_u32(&r, "the writer version number");
    md->dataset = get_str_alloc(&r, HLR_FILE_MAX_DATASET, 0, "the data set name");
    if (md->dataset && !md->dataset[0]) {
        hlr__free(md->dataset);
        md->dataset = NULL;
    }
    size_t at = r.pos;
    uint32_t n = get_u32_in(&r, 0, HLR_FILE_MAX_CLASSES, "the class count");
    if (r.status == HLR_OK && (uint64_t)n * 5 > left(&r)) {
        r.pos = at;
        bad(&r, "%u class names cannot fit in the %zu bytes left", n, left(&r));
    }
    if (r.status == HLR_OK && n) {
        md->classes = hlr__alloc_or_fail(n, sizeof *md->classes, "class names");
        if (!md->classes)
            return HLR_ENOMEM;
        for (uint32_t i = 0; i < n && r.status == HLR_OK; i++) {
            char what[48];
            snprintf(what, sizeof what, "class name %u", i);
            if ((md->classes[i] = get_str_alloc(&r, HLR_FILE_MAX_NAME, 1, what)) != NULL)
                md->nclasses++;
        }
    }
    at = r.pos;
    n = get_u32_in(&r, 0, HLR_FILE_MAX_KEYS, "the key count");
    if (r.status == HLR_OK && (uint64_t)n * 9 > left(&r)) {
        r.pos = at;
        bad(&r, "%u keys cannot fit in the %zu bytes left", n, left(&r));
    }
    for (uint32_t i = 0; i < n && r.status == HLR_OK; i++) {
        at = r.pos;
        char *key = get_str_alloc(&r, HLR_FILE_MAX_NAME, 1, "a metadata key");
        char *value = get_str_alloc(&r, HLR_FILE_MAX_VALUE, 0, "a metadata value");
        if (r.status == HLR_OK && hlr_metadata_get(md, key)) {
            r.pos = at;
            bad(&r, "metadata key \"%s\" appears twice", key);
        }
        if (r.status == HLR_OK && hlr_metadata_set(md, key, value) != HLR_OK)
            r.status = HLR_ENOMEM;
        hlr__free(key);
        hlr__free(value);
    }
    finish(&r);
    return r.status;
}

static double get_f64_raw(const unsigned char *q)
{
    uint64_t u = hlr__get_u64(q);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static hlr_status parse_hist(parsed *p)
{
    cursor r = open_chunk(p, p->hist);
    uint32_t n = get_u32_in(&r, 0, HLR_FILE_MAX_HISTORY, "the epoch count");
    if (r.status == HLR_OK && (uint64_t)n * HLR_FILE_HISTORY_RECORD != left(&r))
        bad(&r, "%u records need %llu bytes, the chunk has %zu", n, (unsigned long long)n * HLR_FILE_HISTORY_RECORD,
            left(&r));
    if (r.status != HLR_OK || n == 0)
        return r.status;
    hlr_metadata *md = &p->md;
    md->history = hlr__alloc_or_fail(n, sizeof *md->history, "history");
    if (!md->history)
        return HLR_ENOMEM;
    md->nhistory = md->history_cap = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *q = take(&r, HLR_FILE_HISTORY_RECORD, "a history record");
        hlr_epoch_stats *s = &md->history[i];
        s->epoch = (int)hlr__get_u32(q);
        s->epochs = (int)hlr__get_u32(q + 4);
        s->train_loss = get_f64_raw(q + 8);
        s->train_accuracy = get_f64_raw(q + 16);
        s->val_loss = get_f64_raw(q + 24);
        s->val_accuracy = get_f64_raw(q + 32);
        s->lr = get_f64_raw(q + 40);
        s->seconds = get_f64_raw(q + 48);
        s->samples_per_second = get_f64_raw(q + 56);
    }
    return HLR_OK;
}

/* ---- the whole payload ---- */

static hlr_status parse(parsed *p, const void *data, size_t size, int tolerate_crc)
{
    memset(p, 0, sizeof *p);
    p->file_size = size;
    hlr_status st = hlr__file_unwrap(data, size, &p->h, &p->payload, tolerate_crc, &p->crc_ok);
    if (st != HLR_OK)
        return st;
    p->len = (size_t)p->h.usize;
    if ((st = index_chunks(p)) != HLR_OK || (st = parse_arch(p)) != HLR_OK)
        return st;
    int nparm = 0, nomom = 0;
    for (int i = 0; i < p->nchunks; i++) {
        nparm += !strcmp(p->chunks[i].tag, "PARM");
        nomom += !strcmp(p->chunks[i].tag, "OMOM");
    }
    p->parms = hlr__alloc_or_fail((size_t)(nparm ? nparm : 1), sizeof *p->parms, "model file tensor table");
    p->omoms = hlr__alloc_or_fail((size_t)(nomom ? nomom : 1), sizeof *p->omoms, "model file moment table");
    if (!p->parms || !p->omoms)
        return HLR_ENOMEM;
    p->weights_crc = (uint32_t)crc32(0L, Z_NULL, 0);
    for (int i = 0; i < p->nchunks; i++)
        if (!strcmp(p->chunks[i].tag, "PARM")) {
            if ((st = parse_parm(p, i, &p->parms[p->nparm])) != HLR_OK)
                return st;
            p->nparm++;
        }
    int trainable = 0;
    for (int i = 0; i < p->nlayers; i++) {
        const file_layer *l = &p->layers[i];
        uint64_t scalars = 0;
        for (uint32_t j = 0; j < l->nparm; j++) {
            scalars += (uint64_t)p->parms[l->parm[j]].numel;
            trainable += !p->parms[l->parm[j]].buffer;
        }
        if (l->nparm != l->ntensors || scalars != l->scalars)
            return fail_at(p, p->arch, p->chunks[p->arch].body,
                           "layer %d (%s) should have %u tensors of %llu scalars; PARM chunks give %u of %llu", i,
                           l->type, l->ntensors, (unsigned long long)l->scalars, l->nparm,
                           (unsigned long long)scalars);
    }
    if (p->optm >= 0 && (st = parse_optm(p, trainable)) != HLR_OK)
        return st;
    for (int i = 0; i < p->nchunks; i++)
        if (!strcmp(p->chunks[i].tag, "OMOM")) {
            if ((st = parse_omom(p, i, &p->omoms[p->nomom])) != HLR_OK)
                return st;
            p->nomom++;
        }
    if (p->optm >= 0 && p->nomom != (int)(p->moments ? p->slots : 0))
        return fail_at(p, p->optm, p->chunks[p->optm].body, "%d OMOM chunks for %u slots with %u moments", p->nomom,
                       p->slots, p->moments);
    if ((p->trst >= 0 && (st = parse_trst(p)) != HLR_OK) || (p->meta >= 0 && (st = parse_meta(p)) != HLR_OK) ||
        (p->hist >= 0 && (st = parse_hist(p)) != HLR_OK) || (p->temp >= 0 && (st = parse_temp(p)) != HLR_OK) ||
        (p->fits >= 0 && (st = parse_fits(p)) != HLR_OK))
        return st;
    int has_opt = !!(p->h.flags & HLR_FILE_FLAG_OPTIMIZER), has_tr = !!(p->h.flags & HLR_FILE_FLAG_TRAINING);
    if (has_opt != (p->optm >= 0) || has_tr != (p->trst >= 0))
        return fail_at(p, -1, 0, "the header's flags %08x disagree with the chunks (optimizer state %s, training "
                                 "state %s)",
                       p->h.flags, p->optm >= 0 ? "present" : "absent", p->trst >= 0 ? "present" : "absent");
    return HLR_OK;
}

/* ---- loading a model ---- */

static int same_shape(int nd, const int64_t *d, int nd2, const int64_t *d2)
{
    if (nd != nd2)
        return 0;
    for (int i = 0; i < nd; i++)
        if (d[i] != d2[i])
            return 0;
    return 1;
}

static hlr_status build_model(parsed *p, hlr_model **out)
{
    *out = NULL;
    const size_t arch_at = p->chunks[p->arch].body;
    /* Building may allocate what the file's tensors justify (values and
     * gradients) and a little more, no matter what the configurations say. */
    uint64_t scalars = (uint64_t)p->param_count + (uint64_t)p->buffer_count;
    size_t ceiling = (size_t)(scalars * 2 * sizeof(float)) + (size_t)p->nlayers * 65536 + (1u << 20);
    hlr__alloc_limit(ceiling);
    hlr_model *m = hlr_model_new(0);
    hlr_status st = m ? HLR_OK : HLR_ENOMEM;
    char why[256] = "";
    for (int i = 0; i < p->nlayers && st == HLR_OK; i++) {
        const file_layer *fl = &p->layers[i];
        const hlr_layer_ops *ops = hlr__layer_ops_find(fl->type);
        if (!ops || !ops->from_config) {
            hlr__alloc_limit(0);
            hlr_model_free(m);
            return fail_at(p, p->arch, arch_at, "layer %d has type \"%s\", which this library (libhlr %s) does not "
                                                "know", i, fl->type, HLR_VERSION_STRING);
        }
        hlr_layer *l = ops->from_config(&fl->config);
        if (!l) {
            snprintf(why, sizeof why, "layer %d: %s", i, hlr_last_error());
            st = hlr_last_status() == HLR_ENOMEM && !hlr__alloc_limit_hit() ? HLR_ENOMEM : HLR_EFORMAT;
        } else {
            st = hlr_model_add(m, l);
        }
    }
    if (st == HLR_OK) {
        st = hlr_model_build(m, p->input.ndim, p->input.d);
        if (st != HLR_OK) {
            snprintf(why, sizeof why, "%s", hlr_last_error());
            if (st != HLR_ENOMEM || hlr__alloc_limit_hit())
                st = HLR_EFORMAT;
        }
    }
    int over = hlr__alloc_limit_hit();
    hlr__alloc_limit(0);
    if (st != HLR_OK) {
        hlr_model_free(m);
        if (st == HLR_ENOMEM && !over)
            return hlr__fail(HLR_ENOMEM, "model file: out of memory building the model: %s", why);
        if (over)
            return fail_at(p, p->arch, arch_at, "the layers ask for more memory than the file's %llu stored values "
                                                "justify (%s)", (unsigned long long)scalars, why);
        return fail_at(p, p->arch, arch_at, "the architecture does not build: %s", why);
    }
    if ((st = hlr_model_set_loss(m, (hlr_loss_kind)p->loss, p->smoothing)) != HLR_OK) {
        hlr_model_free(m);
        return fail_at(p, p->arch, arch_at, "%s", hlr_last_error());
    }
    /* The rebuilt layers must be what the file describes. */
    for (int i = 0; i < p->nlayers; i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        const file_layer *fl = &p->layers[i];
        uint64_t n = 0;
        for (int j = 0; j < l->nparams; j++)
            n += (uint64_t)l->params[j].value.numel;
        if (!same_shape(l->out.ndim, l->out.d, fl->out.ndim, fl->out.d) || n != fl->scalars ||
            (uint32_t)l->nparams != fl->ntensors) {
            char a[HLR__SHAPE_STR], b[HLR__SHAPE_STR];
            fail_at(p, p->arch, arch_at, "layer %d (%s) builds to output %s with %d tensors of %llu scalars; the file "
                                         "says %s, %u, %llu",
                    i, fl->type, hlr__shape_str(&l->out, a, sizeof a), l->nparams, (unsigned long long)n,
                    hlr__shape_str(&fl->out, b, sizeof b), fl->ntensors, (unsigned long long)fl->scalars);
            hlr_model_free(m);
            return HLR_EFORMAT;
        }
    }
    /* Every tensor: layer, name, kind and shape checked, then its values copied. */
    for (int k = 0; k < p->nparm; k++) {
        const parm_ref *t = &p->parms[k];
        hlr_layer *l = hlr_model_layer(m, (int)t->layer);
        hlr_param *dst = NULL;
        for (int j = 0; j < l->nparams && !dst; j++)
            if (!strcmp(l->params[j].name, t->name))
                dst = &l->params[j];
        const char *problem = !dst ? "the layer has no such tensor"
                              : dst->buffer != t->buffer ? (t->buffer ? "it is a parameter, not a buffer"
                                                                      : "it is a buffer, not a parameter")
                              : !same_shape(dst->value.ndim, dst->value.shape, t->ndim, t->shape) ? "its shape differs"
                                                                                                 : NULL;
        if (problem) {
            fail_at(p, t->chunk, p->chunks[t->chunk].body, "layer %u (%s) tensor \"%s\": %s", t->layer, l->ops->type,
                    t->name, problem);
            hlr_model_free(m);
            return HLR_EFORMAT;
        }
        hlr__get_f32s(dst->value.data, p->payload + t->data, t->numel);
    }
    hlr__weights_written();
    *out = m;
    return HLR_OK;
}

/* Bind the file's optimizer to m and fill its moments. */
static hlr_status restore_optimizer(parsed *p, hlr_model *m)
{
    hlr_optimizer *o = p->optimizer;
    hlr_status st = hlr__optimizer_restore(o, m, (int)p->bound, p->od.steps, p->od.sched_pos);
    if (st != HLR_OK)
        return st;
    hlr_optimizer_desc d;
    hlr__optimizer_describe(o, &d);
    if (p->bound && ((uint32_t)d.nstate != p->slots || (uint32_t)d.nmoments != p->moments))
        return fail_at(p, p->optm, p->chunks[p->optm].body, "state of %u x %u; the rebuilt optimizer keeps %d x %d",
                       p->slots, p->moments, d.nstate, d.nmoments);
    /* Slot k is the k-th trainable tensor in model order. */
    const hlr_param **slot_param = hlr__alloc_or_fail(p->slots ? p->slots : 1, sizeof *slot_param, "slots");
    int *slot_layer = hlr__alloc_or_fail(p->slots ? p->slots : 1, sizeof *slot_layer, "slots");
    if (!slot_param || !slot_layer) {
        hlr__free(slot_param);
        hlr__free(slot_layer);
        return HLR_ENOMEM;
    }
    uint32_t idx = 0;
    for (int i = 0; i < hlr_model_num_layers(m); i++) {
        const hlr_layer *l = hlr_model_layer(m, i);
        for (int j = 0; j < l->nparams; j++)
            if (!l->params[j].buffer && idx < p->slots) {
                slot_param[idx] = &l->params[j];
                slot_layer[idx++] = i;
            }
    }
    st = HLR_OK;
    for (int k = 0; k < p->nomom && st == HLR_OK; k++) {
        const omom_ref *t = &p->omoms[k];
        const hlr_param *tp = slot_param[t->slot];
        int layer = slot_layer[t->slot];
        if (layer != (int)t->layer || strcmp(tp->name, t->name) || tp->value.numel != t->numel) {
            st = fail_at(p, t->chunk, p->chunks[t->chunk].body,
                         "slot %u is layer %u tensor \"%s\" of %lld elements; the model's slot %u is layer %d "
                         "tensor \"%s\" of %lld",
                         t->slot, t->layer, t->name, (long long)t->numel, t->slot, layer, tp->name,
                         (long long)tp->value.numel);
            break;
        }
        hlr__get_f32s(d.m1[t->slot], p->payload + t->data, t->numel);
        if (p->moments == 2)
            hlr__get_f32s(d.m2[t->slot], p->payload + t->data + (size_t)t->numel * 4, t->numel);
    }
    hlr__free(slot_param);
    hlr__free(slot_layer);
    if (st == HLR_OK)
        p->optimizer = NULL; /* now the caller's */
    return st;
}

static hlr_model *load(const void *data, size_t size, hlr_optimizer **optimizer)
{
    parsed p;
    hlr_model *m = NULL;
    hlr_status st = parse(&p, data, size, 0);
    if (st == HLR_OK)
        st = build_model(&p, &m);
    if (st == HLR_OK) {
        if (p.trst >= 0) {
            memcpy(m->rng.s, p.rng, sizeof p.rng);
            m->epochs_trained = p.epochs;
            m->batches_trained = p.batches;
        }
        m->temperature = p.temperature;
        if (p.fits >= 0) {
            m->recipe = p.recipe;
            m->has_recipe = 1;
        }
        hlr__metadata_clear(&m->meta);
        m->meta = p.md; /* moved */
        memset(&p.md, 0, sizeof p.md);
        if (optimizer && p.optimizer) {
            hlr_optimizer *o = p.optimizer;
            if ((st = restore_optimizer(&p, m)) == HLR_OK)
                *optimizer = o;
        }
    }
    parsed_free(&p);
    if (st != HLR_OK) {
        hlr_model_free(m);
        return NULL;
    }
    return m;
}

hlr_model *hlr_model_load(const char *path, hlr_optimizer **optimizer)
{
    if (optimizer)
        *optimizer = NULL;
    if (!path) {
        hlr__fail(HLR_EINVAL, "hlr_model_load: path is NULL");
        return NULL;
    }
    unsigned char *data;
    size_t size;
    if (hlr__read_file(path, "hlr_model_load", &data, &size) != HLR_OK)
        return NULL;
    hlr_model *m = load(data, size, optimizer);
    hlr__free(data);
    if (!m) { /* say which file */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", hlr_last_error());
        hlr__fail(hlr_last_status(), "%s: %s", path, msg);
    }
    return m;
}

hlr_model *hlr_model_load_buffer(const void *data, size_t size, hlr_optimizer **optimizer)
{
    if (optimizer)
        *optimizer = NULL;
    if (!data) {
        hlr__fail(HLR_EINVAL, "hlr_model_load_buffer: data is NULL");
        return NULL;
    }
    return load(data, size, optimizer);
}

/* ---- describing a file ---- */

struct hlr_model_info {
    parsed p; /* without its payload */
    hlr_file_summary s;
};

static char *config_text(const hlr_config *c)
{
    char buf[HLR_CONFIG_MAX * 56 + 1];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->n && len < sizeof buf; i++) {
        const hlr_config_item *it = &c->item[i];
        int k = it->is_float ? snprintf(buf + len, sizeof buf - len, "%s%s=%.9g", i ? " " : "", it->key, it->f)
                             : snprintf(buf + len, sizeof buf - len, "%s%s=%lld", i ? " " : "", it->key,
                                        (long long)it->i);
        if (k > 0)
            len += (size_t)k;
    }
    size_t n = strlen(buf);
    char *s = hlr__alloc_or_fail(n + 1, 1, "configuration text");
    if (s)
        memcpy(s, buf, n + 1);
    return s;
}

static hlr_model_info *info(const void *data, size_t size)
{
    hlr_model_info *in = hlr__alloc_or_fail(1, sizeof *in, "hlr_model_info");
    if (!in)
        return NULL;
    parsed *p = &in->p;
    hlr_status st = parse(p, data, size, 1);
    for (int i = 0; i < p->nlayers && st == HLR_OK; i++)
        if (!(p->layers[i].config_text = config_text(&p->layers[i].config)))
            st = HLR_ENOMEM;
    if (st != HLR_OK) {
        parsed_free(p);
        hlr__free(in);
        return NULL;
    }
    hlr__free(p->payload); /* the weights are not kept */
    p->payload = NULL;
    hlr_file_summary *s = &in->s;
    s->format_major = (int)p->h.major;
    s->format_minor = (int)p->h.minor;
    s->temperature = p->temperature;
    s->flags = p->h.flags;
    s->file_size = p->file_size;
    s->compressed_size = p->h.csize;
    s->uncompressed_size = p->h.usize;
    s->payload_crc = p->h.crc;
    s->crc_ok = p->crc_ok;
    s->weights_crc = p->weights_crc;
    snprintf(s->writer_version, sizeof s->writer_version, "%s", p->writer);
    s->num_layers = p->nlayers;
    s->input_ndim = p->input.ndim;
    memcpy(s->input_shape, p->input.d, sizeof s->input_shape);
    s->param_count = p->param_count;
    s->buffer_count = p->buffer_count;
    s->loss = (int)p->loss;
    s->label_smoothing = p->smoothing;
    if (p->optimizer) {
        static const char *const names[] = {"sgd", "adam", "adamw"};
        s->has_optimizer = 1;
        snprintf(s->optimizer, sizeof s->optimizer, "%s", names[p->od.kind]);
        s->base_lr = p->od.lr;
        /* The schedule position decides the rate: ask the optimizer itself. */
        hlr__optimizer_restore(p->optimizer, NULL, 0, p->od.steps, p->od.sched_pos);
        s->current_lr = hlr_optimizer_lr(p->optimizer);
        s->optimizer_steps = p->od.steps;
        s->schedule_position = p->od.sched_pos;
    }
    s->has_training_state = p->trst >= 0;
    s->epochs_trained = p->epochs;
    s->batches_trained = p->batches;
    s->num_chunks = p->nchunks;
    return in;
}

hlr_model_info *hlr_model_info_load(const char *path)
{
    if (!path) {
        hlr__fail(HLR_EINVAL, "hlr_model_info_load: path is NULL");
        return NULL;
    }
    unsigned char *data;
    size_t size;
    if (hlr__read_file(path, "hlr_model_info_load", &data, &size) != HLR_OK)
        return NULL;
    hlr_model_info *in = info(data, size);
    hlr__free(data);
    if (!in) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", hlr_last_error());
        hlr__fail(hlr_last_status(), "%s: %s", path, msg);
    }
    return in;
}

hlr_model_info *hlr_model_info_load_buffer(const void *data, size_t size)
{
    if (!data) {
        hlr__fail(HLR_EINVAL, "hlr_model_info_load_buffer: data is NULL");
        return NULL;
    }
    return info(data, size);
}

void hlr_model_info_free(hlr_model_info *in)
{
    if (!in)
        return;
    parsed_free(&in->p);
    hlr__free(in);
}

hlr_status hlr_model_info_summary(const hlr_model_info *in, hlr_file_summary *out, size_t size)
{
    if (!in || !out || size == 0)
        return hlr__fail(HLR_EINVAL, "hlr_model_info_summary: %s", !in ? "info is NULL" : !out ? "out is NULL"
                                                                                                 : "size is 0");
    memcpy(out, &in->s, size < sizeof in->s ? size : sizeof in->s);
    return HLR_OK;
}

hlr_status hlr_model_info_layer(const hlr_model_info *in, int i, const char **type, const char **config, int *ndim,
                                int64_t *shape, int64_t *scalars)
{
    if (!in)
        return hlr__fail(HLR_EINVAL, "hlr_model_info_layer: info is NULL");
    if (i < 0 || i >= in->p.nlayers)
        return hlr__fail(HLR_EINVAL, "hlr_model_info_layer: index %d outside 0..%d", i, in->p.nlayers - 1);
    const file_layer *l = &in->p.layers[i];
    if (type)
        *type = l->type;
    if (config)
        *config = l->config_text;
    if (ndim)
        *ndim = l->out.ndim;
    if (shape)
        memcpy(shape, l->out.d, (size_t)l->out.ndim * sizeof *shape);
    if (scalars)
        *scalars = (int64_t)l->scalars;
    return HLR_OK;
}

hlr_status hlr_model_info_chunk(const hlr_model_info *in, int i, char tag[5], uint64_t *offset, uint64_t *length)
{
    if (!in)
        return hlr__fail(HLR_EINVAL, "hlr_model_info_chunk: info is NULL");
    if (i < 0 || i >= in->p.nchunks)
        return hlr__fail(HLR_EINVAL, "hlr_model_info_chunk: index %d outside 0..%d", i, in->p.nchunks - 1);
    const chunk *c = &in->p.chunks[i];
    if (tag)
        memcpy(tag, c->tag, 5);
    if (offset)
        *offset = c->at;
    if (length)
        *length = c->len;
    return HLR_OK;
}

const hlr_metadata *hlr_model_info_metadata(const hlr_model_info *in)
{
    if (!in) {
        hlr__fail(HLR_EINVAL, "hlr_model_info_metadata: info is NULL");
        return NULL;
    }
    return &in->p.md;
}

/*
 * dataset.c -- samples with class labels: idx files (raw or gzip, through
 * zlib), caller arrays, shuffling, splitting and slicing.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_ITEMS ((int64_t)100000000) /* 1e8 samples */
#define IDX_MAX_SIDE 4096

static hlr_dataset *dataset_alloc(const hlr_shape *sample, int64_t n, int num_classes, const char *fn)
{
    hlr_dataset *d = hlr__alloc_or_fail(1, sizeof *d, fn);
    if (!d)
        return NULL;
    d->sample = *sample;
    d->sample_size = hlr__shape_numel(sample);
    d->n = n;
    d->num_classes = num_classes;
    d->x = hlr__alloc_or_fail((size_t)(n * d->sample_size), sizeof(float), fn);
    d->y = hlr__alloc_or_fail((size_t)n, sizeof(int32_t), fn);
    if (!d->x || !d->y) {
        hlr_dataset_free(d);
        return NULL;
    }
    return d;
}

void hlr_dataset_free(hlr_dataset *d)
{
    if (!d)
        return;
    hlr__free(d->x);
    hlr__free(d->y);
    hlr__free(d->lengths);
    hlr__free(d->targets);
    hlr__free(d);
}

/*
 * idx files, raw or gzip (zlib reads both), are read header first: the
 * header says how many bytes follow, and no more than that (plus one, to see
 * whether the file is longer) is ever inflated or kept.  A small .gz file
 * holding a tiny header and a gigabyte of zeros costs a few kilobytes.
 */
static hlr_status idx_open(const char *path, gzFile *f)
{
    int fd = hlr__open_regular(path, "hlr_dataset_load_idx", NULL); /* no FIFO: it would block */
    if (fd < 0)
        return HLR_EIO;
    *f = gzdopen(fd, "rb");
    if (!*f) {
        close(fd);
        return hlr__fail(HLR_ENOMEM, "%s: out of memory for the decompressor", path);
    }
    return HLR_OK;
}

/* Read up to `want` bytes into buf; *got says how many came.  A short read
 * is not an error by itself (the caller compares with the header), but a
 * corrupt or truncated compressed stream is. */
static hlr_status idx_read(gzFile f, const char *path, unsigned char *buf, size_t want, size_t *got)
{
    size_t n = 0;
    while (n < want) {
        size_t chunk = want - n > (1u << 30) ? (1u << 30) : want - n;
        int k = gzread(f, buf + n, (unsigned)chunk);
        if (k < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            return zerr == Z_ERRNO ? hlr__fail(HLR_EIO, "%s: cannot read (%s)", path, strerror(errno))
                                   : hlr__fail(HLR_EFORMAT, "%s: corrupt compressed data after %zu bytes (%s)", path,
                                               n, msg);
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    *got = n;
    if (n < want) { /* gzread stops silently at a truncated gzip stream; gzerror tells */
        int zerr = Z_OK;
        gzerror(f, &zerr);
        if (zerr == Z_BUF_ERROR)
            return hlr__fail(HLR_EFORMAT, "%s: the compressed stream is truncated", path);
        if (zerr != Z_OK)
            return hlr__fail(HLR_EFORMAT, "%s: corrupt compressed data", path);
    }
    return HLR_OK;
}

/* The `promised` bytes after the header, into a buffer that grows with the
 * bytes actually present: a header that lies about its size costs nothing. */
static hlr_status idx_body(gzFile f, const char *path, uint64_t promised, const char *what, unsigned char **out)
{
    *out = NULL;
    if (promised >= SIZE_MAX)
        return hlr__fail(HLR_EFORMAT, "%s: header promises %llu %s, more than this machine can address", path,
                         (unsigned long long)promised, what);
    size_t want = (size_t)promised + 1, cap = want < ((size_t)1 << 16) ? want : (size_t)1 << 16, n = 0;
    unsigned char *buf = hlr__malloc(cap);
    if (!buf)
        return hlr__fail(HLR_ENOMEM, "%s: out of memory", path);
    for (;;) {
        size_t got;
        hlr_status st = idx_read(f, path, buf + n, cap - n, &got);
        if (st != HLR_OK) {
            hlr__free(buf);
            return st;
        }
        n += got;
        if (n < cap || cap == want)
            break; /* the file ended, or we hold one byte more than promised */
        size_t ncap = cap > want / 2 ? want : cap * 2;
        unsigned char *nb = hlr__realloc(buf, ncap);
        if (!nb) {
            hlr__free(buf);
            return hlr__fail(HLR_ENOMEM, "%s: out of memory after %zu bytes", path, n);
        }
        buf = nb;
        cap = ncap;
    }
    if (n != promised) {
        hlr__free(buf);
        if (n > promised)
            return hlr__fail(HLR_EFORMAT, "%s: longer than its header says (more than the %llu %s it promises)", path,
                             (unsigned long long)promised, what);
        return hlr__fail(HLR_EFORMAT, "%s: header promises %llu %s, file holds %zu", path,
                         (unsigned long long)promised, what, n);
    }
    *out = buf;
    return HLR_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

hlr_dataset *hlr_dataset_load_idx(const char *images_path, const char *labels_path)
{
    const char *fn = "hlr_dataset_load_idx";
    if (!images_path || !labels_path) {
        hlr__fail(HLR_EINVAL, "%s: %s path is NULL", fn, images_path ? "labels" : "images");
        return NULL;
    }
    gzFile fi = NULL, fl = NULL;
    unsigned char hi[16], hl[8], *img = NULL, *lab = NULL;
    size_t got = 0;
    hlr_dataset *d = NULL;
    if (idx_open(images_path, &fi) != HLR_OK || idx_read(fi, images_path, hi, sizeof hi, &got) != HLR_OK)
        goto done;
    if (got < sizeof hi || be32(hi) != 0x00000803) {
        hlr__fail(HLR_EFORMAT, "%s: not an idx image file (magic 0x00000803 and 3 dimensions expected)", images_path);
        goto done;
    }
    uint32_t n = be32(hi + 4), rows = be32(hi + 8), cols = be32(hi + 12);
    if (n < 1 || n > IDX_MAX_ITEMS || rows < 1 || rows > IDX_MAX_SIDE || cols < 1 || cols > IDX_MAX_SIDE) {
        hlr__fail(HLR_EFORMAT, "%s: implausible header: %u images of %u x %u", images_path, n, rows, cols);
        goto done;
    }
    if (idx_open(labels_path, &fl) != HLR_OK || idx_read(fl, labels_path, hl, sizeof hl, &got) != HLR_OK)
        goto done;
    if (got < sizeof hl || be32(hl) != 0x00000801) {
        hlr__fail(HLR_EFORMAT, "%s: not an idx label file (magic 0x00000801 and 1 dimension expected)", labels_path);
        goto done;
    }
    uint32_t nl = be32(hl + 4);
    if (nl != n) {
        hlr__fail(HLR_EFORMAT, "%s holds %u images but %s holds %u labels", images_path, n, labels_path, nl);
        goto done;
    }
    uint64_t pixels = (uint64_t)n * rows * cols;
    if (idx_body(fi, images_path, pixels, "pixel bytes", &img) != HLR_OK ||
        idx_body(fl, labels_path, n, "labels", &lab) != HLR_OK)
        goto done;
    int max_label = 0;
    for (uint32_t i = 0; i < n; i++)
        max_label = lab[i] > max_label ? lab[i] : max_label;
    hlr_shape s = {.ndim = 3, .d = {1, rows, cols}};
    d = dataset_alloc(&s, n, max_label + 1, fn);
    if (!d)
        goto done;
    for (uint64_t i = 0; i < pixels; i++)
        d->x[i] = (float)img[i] / 255.0f; /* exactly value/255, as torchvision's ToTensor */
    for (uint32_t i = 0; i < n; i++)
        d->y[i] = lab[i];
done:
    if (fi)
        gzclose(fi);
    if (fl)
        gzclose(fl);
    hlr__free(img);
    hlr__free(lab);
    return d;
}

/* hlr_dataset_from and _from_tokens: x holds 4-byte elements of dtype. */
static hlr_dataset *dataset_from(const char *fn, hlr_dtype dtype, int sample_ndim, const int64_t *sample_shape,
                                 int64_t n, const void *x, const int32_t *labels, int num_classes)
{
    if (!sample_shape || !x || !labels) {
        hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
        return NULL;
    }
    if (sample_ndim < 1 || sample_ndim > HLR_MAX_DIMS - 1 || n < 1 || num_classes < 1) {
        hlr__fail(HLR_EINVAL, "%s: need 1..%d sample dimensions, n >= 1 and num_classes >= 1", fn, HLR_MAX_DIMS - 1);
        return NULL;
    }
    hlr_shape s = {.ndim = sample_ndim};
    int64_t total = n;
    for (int i = 0; i < sample_ndim; i++) {
        if (sample_shape[i] < 1 || hlr__mul_overflows(total, sample_shape[i], &total) || total > INT64_MAX / 8) {
            hlr__fail(HLR_EINVAL, "%s: sample dimension %d (%lld) is invalid or too large", fn, i,
                      (long long)sample_shape[i]);
            return NULL;
        }
        s.d[i] = sample_shape[i];
    }
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= num_classes) {
            hlr__fail(HLR_EINVAL, "%s: label %d at %lld outside [0, %d)", fn, labels[i], (long long)i, num_classes);
            return NULL;
        }
    hlr_dataset *d = dataset_alloc(&s, n, num_classes, fn);
    if (!d)
        return NULL;
    d->dtype = dtype;
    memcpy(d->x, x, (size_t)total * sizeof(float));
    memcpy(d->y, labels, (size_t)n * sizeof(int32_t));
    return d;
}

hlr_dataset *hlr_dataset_from(int sample_ndim, const int64_t *sample_shape, int64_t n, const float *x,
                              const int32_t *labels, int num_classes)
{
    return dataset_from("hlr_dataset_from", HLR_F32, sample_ndim, sample_shape, n, x, labels, num_classes);
}

hlr_dataset *hlr_dataset_from_tokens(int sample_ndim, const int64_t *sample_shape, int64_t n, const int32_t *ids,
                                     const int32_t *labels, int num_classes)
{
    return dataset_from("hlr_dataset_from_tokens", HLR_I32, sample_ndim, sample_shape, n, ids, labels, num_classes);
}

hlr_dataset *hlr_dataset_from_sequences(int sample_ndim, const int64_t *sample_shape, int64_t n, const float *x,
                                        const int32_t *widths, const int32_t *targets, int max_target,
                                        int num_classes)
{
    const char *fn = "hlr_dataset_from_sequences";
    if (!targets) {
        hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
        return NULL;
    }
    if (max_target < 1 || num_classes < 2 || n < 1) {
        hlr__fail(HLR_EINVAL, "%s: need n >= 1, max_target >= 1 and num_classes >= 2 (the blank and a label)", fn);
        return NULL;
    }
    int64_t cells;
    if (hlr__mul_overflows(n, max_target, &cells)) {
        hlr__fail(HLR_EINVAL, "%s: %lld targets of %d are too many", fn, (long long)n, max_target);
        return NULL;
    }
    if (hlr__check_ctc_targets(targets, n, max_target, num_classes, fn) != HLR_OK)
        return NULL;
    int32_t *zeros = hlr__alloc_or_fail((size_t)n, sizeof *zeros, fn); /* dataset_from's labels: replaced below */
    if (!zeros)
        return NULL;
    hlr_dataset *d = dataset_from(fn, HLR_F32, sample_ndim, sample_shape, n, x, zeros, num_classes);
    hlr__free(zeros);
    if (!d)
        return NULL;
    if (!(d->targets = hlr__alloc_or_fail((size_t)cells, sizeof *d->targets, fn))) {
        hlr_dataset_free(d);
        return NULL;
    }
    memcpy(d->targets, targets, (size_t)cells * sizeof *targets);
    d->max_target = max_target;
    for (int64_t i = 0; i < n; i++) { /* y: each row's label count */
        int32_t k = 0;
        while (k < max_target && targets[i * max_target + k] >= 0)
            k++;
        d->y[i] = k;
    }
    if (widths) {
        const int64_t W = d->sample.d[d->sample.ndim - 1];
        for (int64_t i = 0; i < n; i++)
            if (widths[i] < 1 || widths[i] > W) {
                hlr__fail(HLR_EINVAL, "%s: width %d of sample %lld outside [1, %lld]", fn, widths[i], (long long)i,
                          (long long)W);
                hlr_dataset_free(d);
                return NULL;
            }
        if (hlr_dataset_set_lengths(d, widths) != HLR_OK) {
            hlr_dataset_free(d);
            return NULL;
        }
    }
    return d;
}

const int32_t *hlr_dataset_targets(const hlr_dataset *d, int *max_target)
{
    if (max_target)
        *max_target = d && d->targets ? (int)d->max_target : 0;
    return d ? d->targets : NULL;
}

hlr_status hlr_dataset_set_lengths(hlr_dataset *d, const int32_t *lengths)
{
    if (!d)
        return hlr__fail(HLR_EINVAL, "hlr_dataset_set_lengths: data set is NULL");
    if (!lengths) {
        hlr__free(d->lengths);
        d->lengths = NULL;
        return HLR_OK;
    }
    for (int64_t i = 0; i < d->n; i++)
        if (lengths[i] < 1)
            return hlr__fail(HLR_EINVAL, "hlr_dataset_set_lengths: length %d of sample %lld is below 1", lengths[i],
                             (long long)i);
    if (!d->lengths && !(d->lengths = hlr__alloc_or_fail((size_t)d->n, sizeof *d->lengths, "hlr_dataset_set_lengths")))
        return HLR_ENOMEM;
    memcpy(d->lengths, lengths, (size_t)d->n * sizeof *lengths);
    return HLR_OK;
}

hlr_status hlr_dataset_shuffle(hlr_dataset *d, uint64_t seed)
{
    if (!d)
        return hlr__fail(HLR_EINVAL, "hlr_dataset_shuffle: data set is NULL");
    const int64_t S = d->max_target;
    float *tmp = hlr__alloc_or_fail((size_t)(d->sample_size > S ? d->sample_size : S), sizeof(float),
                                    "hlr_dataset_shuffle");
    if (!tmp)
        return HLR_ENOMEM;
    hlr_rng r;
    hlr__rng_seed(&r, seed);
    size_t bytes = (size_t)d->sample_size * sizeof(float);
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)hlr__rng_below(&r, (uint64_t)i + 1);
        if (j == i)
            continue;
        memcpy(tmp, d->x + i * d->sample_size, bytes);
        memcpy(d->x + i * d->sample_size, d->x + j * d->sample_size, bytes);
        memcpy(d->x + j * d->sample_size, tmp, bytes);
        int32_t t = d->y[i];
        d->y[i] = d->y[j];
        d->y[j] = t;
        if (d->lengths) {
            t = d->lengths[i];
            d->lengths[i] = d->lengths[j];
            d->lengths[j] = t;
        }
        if (d->targets) { /* int32 through the float buffer: both 4 bytes, copied as bytes */
            size_t tb = (size_t)S * sizeof(int32_t);
            memcpy(tmp, d->targets + i * S, tb);
            memcpy(d->targets + i * S, d->targets + j * S, tb);
            memcpy(d->targets + j * S, tmp, tb);
        }
    }
    hlr__free(tmp);
    return HLR_OK;
}

hlr_dataset *hlr_dataset_slice(const hlr_dataset *d, int64_t start, int64_t count)
{
    if (!d) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_slice: data set is NULL");
        return NULL;
    }
    if (start < 0 || count < 1 || start > d->n || count > d->n - start) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_slice: [%lld, %lld + %lld) is not inside the %lld samples",
                  (long long)start, (long long)start, (long long)count, (long long)d->n);
        return NULL;
    }
    hlr_dataset *s = dataset_alloc(&d->sample, count, d->num_classes, "hlr_dataset_slice");
    if (!s)
        return NULL;
    memcpy(s->x, d->x + start * d->sample_size, (size_t)(count * d->sample_size) * sizeof(float));
    memcpy(s->y, d->y + start, (size_t)count * sizeof(int32_t));
    s->dtype = d->dtype;
    if (d->lengths && hlr_dataset_set_lengths(s, d->lengths + start) != HLR_OK) {
        hlr_dataset_free(s);
        return NULL;
    }
    if (d->targets) {
        size_t cells = (size_t)(count * d->max_target);
        if (!(s->targets = hlr__alloc_or_fail(cells, sizeof *s->targets, "hlr_dataset_slice"))) {
            hlr_dataset_free(s);
            return NULL;
        }
        memcpy(s->targets, d->targets + start * d->max_target, cells * sizeof *s->targets);
        s->max_target = d->max_target;
    }
    return s;
}

hlr_dataset *hlr_dataset_split(hlr_dataset *d, double fraction)
{
    if (!d) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_split: data set is NULL");
        return NULL;
    }
    if (!(fraction > 0.0 && fraction < 1.0)) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_split: fraction %g outside (0, 1)", fraction);
        return NULL;
    }
    int64_t tail = (int64_t)(fraction * (double)d->n + 0.5);
    if (tail < 1 || tail >= d->n) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_split: a fraction of %g of %lld samples leaves a part empty", fraction,
                  (long long)d->n);
        return NULL;
    }
    hlr_dataset *s = hlr_dataset_slice(d, d->n - tail, tail);
    if (s)
        d->n -= tail; /* the buffers keep their size; only the count shrinks */
    return s;
}

int64_t hlr_dataset_size(const hlr_dataset *d) { return d ? d->n : 0; }
int hlr_dataset_num_classes(const hlr_dataset *d) { return d ? d->num_classes : 0; }
int hlr_dataset_sample_ndim(const hlr_dataset *d) { return d ? d->sample.ndim : 0; }

int64_t hlr_dataset_sample_dim(const hlr_dataset *d, int i)
{
    return d && i >= 0 && i < d->sample.ndim ? d->sample.d[i] : 0;
}

const float *hlr_dataset_inputs(const hlr_dataset *d) { return d && d->dtype == HLR_F32 ? d->x : NULL; }
const int32_t *hlr_dataset_labels(const hlr_dataset *d) { return d && !d->targets ? d->y : NULL; }
hlr_dtype hlr_dataset_dtype(const hlr_dataset *d) { return d ? d->dtype : HLR_DTYPE_NONE; }
/* The token ids were stored through a const int32_t * (memcpy keeps their type). */
const int32_t *hlr_dataset_tokens(const hlr_dataset *d)
{
    return d && d->dtype == HLR_I32 ? (const int32_t *)(const void *)d->x : NULL;
}
const int32_t *hlr_dataset_lengths(const hlr_dataset *d) { return d ? d->lengths : NULL; }

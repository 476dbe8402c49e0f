/*
 * tensor.c -- n-dimensional float32 / int32 arrays and the shape helpers.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int64_t hlr__shape_numel(const hlr_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->d[i];
    return n;
}

const char *hlr__shape_str(const hlr_shape *s, char *buf, size_t cap)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, cap - used, "(");
    for (int i = 0; i < s->ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld", (long long)s->d[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ")");
    return buf;
}

static size_t dtype_size(hlr_dtype dtype) { return dtype == HLR_I32 ? sizeof(int32_t) : sizeof(float); }

/* Validate dtype and shape; on success fill t's header (no data). */
static hlr_status tensor_header(hlr_tensor *t, hlr_dtype dtype, int ndim, const int64_t *shape, const char *fn)
{
    if (dtype != HLR_F32 && dtype != HLR_I32)
        return hlr__fail(HLR_EINVAL, "%s: unknown dtype %d", fn, (int)dtype);
    if (ndim < 0 || ndim > HLR_MAX_DIMS)
        return hlr__fail(HLR_EINVAL, "%s: ndim %d outside 0..%d", fn, ndim, HLR_MAX_DIMS);
    if (ndim > 0 && !shape)
        return hlr__fail(HLR_EINVAL, "%s: shape is NULL", fn);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return hlr__fail(HLR_EINVAL, "%s: dimension %d is %lld; dimensions must be >= 1", fn, i,
                             (long long)shape[i]);
        if (hlr__mul_overflows(n, shape[i], &n) || n > INT64_MAX / 8)
            return hlr__fail(HLR_EINVAL, "%s: total size overflows", fn);
        t->shape[i] = shape[i];
    }
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = n;
    return HLR_OK;
}

static hlr_tensor *tensor_make(hlr_dtype dtype, int ndim, const int64_t *shape, const void *copy_from, void *wrap,
                               const char *fn)
{
    hlr_tensor head = {0};
    if (tensor_header(&head, dtype, ndim, shape, fn) != HLR_OK)
        return NULL;
    hlr_tensor *t = hlr__alloc_or_fail(1, sizeof *t, fn);
    if (!t)
        return NULL;
    *t = head;
    if (wrap) {
        t->data = wrap;
        return t;
    }
    t->data = hlr__alloc_or_fail((size_t)t->numel, dtype_size(dtype), fn);
    if (!t->data) {
        hlr__free(t);
        return NULL;
    }
    t->flags = HLR_TENSOR_OWNS_DATA;
    if (copy_from)
        memcpy(t->data, copy_from, (size_t)t->numel * dtype_size(dtype));
    return t;
}

hlr_tensor *hlr_tensor_new(hlr_dtype dtype, int ndim, const int64_t *shape)
{
    return tensor_make(dtype, ndim, shape, NULL, NULL, "hlr_tensor_new");
}

hlr_tensor *hlr_tensor_from(hlr_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    if (!data) {
        hlr__fail(HLR_EINVAL, "hlr_tensor_from: data is NULL");
        return NULL;
    }
    return tensor_make(dtype, ndim, shape, data, NULL, "hlr_tensor_from");
}

hlr_tensor *hlr_tensor_wrap(hlr_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    if (!data) {
        hlr__fail(HLR_EINVAL, "hlr_tensor_wrap: data is NULL");
        return NULL;
    }
    return tensor_make(dtype, ndim, shape, NULL, data, "hlr_tensor_wrap");
}

void hlr_tensor_free(hlr_tensor *t)
{
    if (!t || (t->flags & HLR_TENSOR_BORROWED))
        return;
    if (t->flags & HLR_TENSOR_OWNS_DATA)
        hlr__free(t->data);
    hlr__free(t);
}

int hlr_tensor_ndim(const hlr_tensor *t) { return t ? t->ndim : 0; }

int64_t hlr_tensor_dim(const hlr_tensor *t, int i)
{
    if (!t)
        return 0;
    if (i < 0)
        i += t->ndim;
    if (i < 0 || i >= t->ndim)
        return 0;
    return t->shape[i];
}

int64_t hlr_tensor_numel(const hlr_tensor *t) { return t ? t->numel : 0; }

hlr_dtype hlr_tensor_dtype(const hlr_tensor *t) { return t ? t->dtype : HLR_DTYPE_NONE; }

void *hlr_tensor_data(const hlr_tensor *t) { return t ? t->data : NULL; }

float *hlr_tensor_f32(const hlr_tensor *t)
{
    if (hlr__check_tensor(t, HLR_F32, "hlr_tensor_f32") != HLR_OK)
        return NULL;
    return t->data;
}

int32_t *hlr_tensor_i32(const hlr_tensor *t)
{
    if (hlr__check_tensor(t, HLR_I32, "hlr_tensor_i32") != HLR_OK)
        return NULL;
    return t->data;
}

hlr_status hlr__check_tensor(const hlr_tensor *t, hlr_dtype dtype, const char *name)
{
    if (!t)
        return hlr__fail(HLR_EINVAL, "%s: tensor is NULL", name);
    if (t->dtype != dtype)
        return hlr__fail(HLR_EINVAL, "%s: tensor is %s, expected %s", name, t->dtype == HLR_I32 ? "int32" : "float32",
                         dtype == HLR_I32 ? "int32" : "float32");
    return HLR_OK;
}

/*
 * pool2d.c -- max and average pooling over kh x kw windows, and global
 * average pooling: one family, one shape rule.
 *
 * Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = (H + 2 ph - kh) / sh + 1,
 * Wo = (W + 2 pw - kw) / sw + 1 (global: y (N, C)).  A rectangle such as 2 x 1
 * halves the height and keeps the width: a CRNN's columns stay 2 pixels apart.  Max pooling keeps, per output, the
 * index of the chosen input in its plane (first maximum on ties, last NaN, as torch), so backward routes dy there; the
 * 2x2, stride-2 case (every small CNN's) keeps none and finds the maxima again from x and y (kernels/pool.c).  Average
 * pooling divides by kh kw, the padding included (torch's count_include_pad=True).
 */
#include "../internal.h"
#include "../kernels/kernels.h"

#include <math.h>
#include <string.h>

typedef enum { POOL_MAX, POOL_AVG, POOL_GLOBAL_AVG } pool_kind;

typedef struct pool2d {
    hlr_layer base;
    pool_kind kind;
    int kh, kw, sh, sw, ph, pw;
    int64_t C, H, W, Ho, Wo;
    int32_t *argmax; /* max pooling: per output element, index into its H x W plane
                        (not for the 2x2 kernel, which needs none) */
    int64_t planned;
} pool2d;

static hlr_status pool_build(hlr_layer *l, const hlr_shape *in, hlr_shape *out, hlr_rng *rng)
{
    (void)rng;
    pool2d *p = (pool2d *)l;
    char s[HLR__SHAPE_STR];
    if (in->ndim != 3)
        return hlr__layer_fail(l, HLR_ESHAPE, "input %s; expected (C, H, W)", hlr__shape_str(in, s, sizeof s));
    p->C = in->d[0];
    p->H = in->d[1];
    p->W = in->d[2];
    if (p->kind == POOL_GLOBAL_AVG) {
        *out = (hlr_shape){.ndim = 1, .d = {p->C}};
        return HLR_OK;
    }
    if (p->H + 2 * p->ph < p->kh || p->W + 2 * p->pw < p->kw)
        return hlr__layer_fail(l, HLR_ESHAPE, "window %dx%d does not fit the padded input %lldx%lld", p->kh, p->kw,
                               (long long)(p->H + 2 * p->ph), (long long)(p->W + 2 * p->pw));
    p->Ho = (p->H + 2 * p->ph - p->kh) / p->sh + 1;
    p->Wo = (p->W + 2 * p->pw - p->kw) / p->sw + 1;
    *out = (hlr_shape){.ndim = 3, .d = {p->C, p->Ho, p->Wo}};
    return HLR_OK;
}

/* Valid widths: the windows that start inside each sample's. */
static void pool_map_lengths(const hlr_layer *l, const int32_t *in, int32_t *out, int64_t n)
{
    const pool2d *p = (const pool2d *)l;
    for (int64_t i = 0; i < n; i++)
        out[i] = hlr__window_length(in[i], p->kw, p->sw, p->pw, p->Wo);
}

static int is_2x2(const pool2d *p)
{
    return p->kind == POOL_MAX && p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 && p->ph == 0 && p->pw == 0;
}

/* Window oh's rows (or ow's columns) inside the plane: [*a, *b). */
static void window(int64_t o, int stride, int pad, int k, int64_t n, int64_t *a, int64_t *b)
{
    int64_t lo = o * stride - pad, hi = lo + k;
    *a = lo < 0 ? 0 : lo;
    *b = hi > n ? n : hi;
}

extern const hlr_layer_ops hlr__maxpool2d_ops;

int hlr__pool2d_is_max2x2(const hlr_layer *l) { return l->ops == &hlr__maxpool2d_ops && is_2x2((const pool2d *)l); }

static hlr_status pool_plan(hlr_layer *l, int64_t max_batch)
{
    pool2d *p = (pool2d *)l;
    if (p->kind != POOL_MAX || is_2x2(p) || max_batch <= p->planned)
        return HLR_OK;
    int32_t *a = hlr__alloc_or_fail((size_t)(max_batch * l->out_size), sizeof *a, "maxpool2d indices");
    if (!a)
        return HLR_ENOMEM;
    hlr__free(p->argmax);
    p->argmax = a;
    p->planned = max_batch;
    return HLR_OK;
}

typedef struct pool_job {
    pool2d *p;
    float *out;
    const float *in, *x, *y; /* backward: the forward's input and output */
} pool_job;

static void maxpool2x2_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    int64_t po = p->Ho * p->Wo, pi = p->H * p->W;
    hlrk_maxpool2x2(j->out + a * po, j->in + a * pi, b - a, p->H, p->W);
}

static void maxpool2x2_backward_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    int64_t po = p->Ho * p->Wo, pi = p->H * p->W;
    hlrk_maxpool2x2_backward(j->out + a * pi, j->x + a * pi, j->y + a * po, j->in + a * po, b - a, p->H, p->W);
}

/* Planes a thread takes at least: 4, and enough for HLR__SERIAL_FLOATS of input, so that a small pass
 * (one image's last pooling) runs on the calling thread. */
static int64_t plane_grain(const pool2d *p)
{
    const int64_t g = HLR__SERIAL_FLOATS / (p->H * p->W);
    return g > 4 ? g : 4;
}

/* Planes [a, b) of any max pooling but the 2x2 one: each output's maximum and, for backward, its index in
 * the plane. */
static void maxpool_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    const int64_t H = p->H, W = p->W;
    for (int64_t pl = a; pl < b; pl++) {
        const float *xp = j->in + pl * H * W;
        float *yp = j->out + pl * p->Ho * p->Wo;
        int32_t *ap = p->argmax + pl * p->Ho * p->Wo;
        for (int64_t oh = 0; oh < p->Ho; oh++) {
            int64_t h0, h1;
            window(oh, p->sh, p->ph, p->kh, H, &h0, &h1);
            for (int64_t ow = 0; ow < p->Wo; ow++) {
                int64_t w0, w1;
                window(ow, p->sw, p->pw, p->kw, W, &w0, &w1);
                float best = xp[h0 * W + w0];
                int64_t at = h0 * W + w0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float v = xp[ih * W + iw];
                        if (v > best || isnan(v)) { /* torch's scan: the last NaN wins */
                            best = v;
                            at = ih * W + iw;
                        }
                    }
                yp[oh * p->Wo + ow] = best;
                ap[oh * p->Wo + ow] = (int32_t)at;
            }
        }
    }
}

static void avgpool_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    const int64_t H = p->H, W = p->W;
    const float inv = 1.0f / (float)(p->kh * p->kw);
    for (int64_t pl = a; pl < b; pl++) {
        const float *xp = j->in + pl * H * W;
        float *yp = j->out + pl * p->Ho * p->Wo;
        for (int64_t oh = 0; oh < p->Ho; oh++) {
            int64_t h0, h1;
            window(oh, p->sh, p->ph, p->kh, H, &h0, &h1);
            for (int64_t ow = 0; ow < p->Wo; ow++) {
                int64_t w0, w1;
                window(ow, p->sw, p->pw, p->kw, W, &w0, &w1);
                float sum = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        sum += xp[ih * W + iw];
                yp[oh * p->Wo + ow] = sum * inv;
            }
        }
    }
}

/* x (planes, H, W) -> y (planes, Ho, Wo), the planes split across the pool (each plane is its own) */
static void pool_forward(hlr_layer *l, const hlr_pass *ps, const float *x, float *y)
{
    pool2d *p = (pool2d *)l;
    const int64_t planes = ps->batch * p->C, HW = p->H * p->W;
    if (p->kind == POOL_GLOBAL_AVG) {
        for (int64_t pl = 0; pl < planes; pl++) {
            float sum = 0.0f;
            for (int64_t i = 0; i < HW; i++)
                sum += x[pl * HW + i];
            y[pl] = sum / (float)HW;
        }
        return;
    }
    pool_job j = {p, y, x, NULL, NULL};
    hlr__parallel_for(planes, plane_grain(p),
                      is_2x2(p)             ? maxpool2x2_planes
                      : p->kind == POOL_MAX ? maxpool_planes
                                            : avgpool_planes,
                      &j);
}

/* Backward of planes [a, b): dy to each output's winner (max) or spread over its window (average). */
static void maxpool_backward_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    const int64_t HW = p->H * p->W, P = p->Ho * p->Wo;
    memset(j->out + a * HW, 0, (size_t)((b - a) * HW) * sizeof *j->out);
    for (int64_t pl = a; pl < b; pl++)
        for (int64_t o = 0; o < P; o++)
            j->out[pl * HW + p->argmax[pl * P + o]] += j->in[pl * P + o];
}

static void avgpool_backward_planes(void *ctx, int64_t a, int64_t b)
{
    const pool_job *j = ctx;
    const pool2d *p = j->p;
    const int64_t HW = p->H * p->W, P = p->Ho * p->Wo;
    const float inv = 1.0f / (float)(p->kh * p->kw);
    memset(j->out + a * HW, 0, (size_t)((b - a) * HW) * sizeof *j->out);
    for (int64_t pl = a; pl < b; pl++)
        for (int64_t oh = 0; oh < p->Ho; oh++) {
            int64_t h0, h1;
            window(oh, p->sh, p->ph, p->kh, p->H, &h0, &h1);
            for (int64_t ow = 0; ow < p->Wo; ow++) {
                int64_t w0, w1;
                window(ow, p->sw, p->pw, p->kw, p->W, &w0, &w1);
                float g = j->in[pl * P + oh * p->Wo + ow] * inv;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        j->out[pl * HW + ih * p->W + iw] += g;
            }
        }
}

static void pool_backward(hlr_layer *l, const hlr_pass *ps, const float *x, const float *y, const float *dy,
                          float *dx)
{
    pool2d *p = (pool2d *)l;
    if (!dx)
        return;
    const int64_t planes = ps->batch * p->C, HW = p->H * p->W;
    if (p->kind == POOL_GLOBAL_AVG) {
        for (int64_t pl = 0; pl < planes; pl++) {
            float g = dy[pl] / (float)HW;
            for (int64_t i = 0; i < HW; i++)
                dx[pl * HW + i] = g;
        }
        return;
    }
    pool_job j = {p, dx, dy, x, y};
    hlr__parallel_for(planes, plane_grain(p),
                      is_2x2(p)             ? maxpool2x2_backward_planes
                      : p->kind == POOL_MAX ? maxpool_backward_planes
                                            : avgpool_backward_planes,
                      &j);
}

static void pool_destroy(hlr_layer *l) { hlr__free(((pool2d *)l)->argmax); }

static const char *const rect_keys[6] = {"kernel_h", "kernel_w", "stride_h", "stride_w", "padding_h", "padding_w"};

/* A square window as three keys (kernel, stride, padding), as before rectangles existed, so that
 * older readers still load such models; a rectangle as six (kernel_h ... padding_w), which older
 * readers refuse for the missing "kernel" instead of misreading. */
static void pool_get_config(const hlr_layer *l, hlr_config *c)
{
    const pool2d *p = (const pool2d *)l;
    if (p->kh == p->kw && p->sh == p->sw && p->ph == p->pw) {
        hlr__config_int(c, "kernel", p->kh);
        hlr__config_int(c, "stride", p->sh);
        hlr__config_int(c, "padding", p->ph);
        return;
    }
    const int v[6] = {p->kh, p->kw, p->sh, p->sw, p->ph, p->pw};
    for (int i = 0; i < 6; i++)
        hlr__config_int(c, rect_keys[i], v[i]);
}

/* v: kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w; 0 on success */
static int pool_config(const hlr_config *c, const char *type, int v[6])
{
    int64_t unused;
    if (hlr__config_get_int(c, "kernel_h", &unused) == 0) {
        for (int i = 0; i < 6; i++)
            if (hlr__config_int_in(c, type, rect_keys[i], i < 4, 65536, &v[i]))
                return -1;
        return 0;
    }
    if (hlr__config_int_in(c, type, "kernel", 1, 65536, &v[0]) ||
        hlr__config_int_in(c, type, "stride", 1, 65536, &v[2]) ||
        hlr__config_int_in(c, type, "padding", 0, 65536, &v[4]))
        return -1;
    v[1] = v[0];
    v[3] = v[2];
    v[5] = v[4];
    return 0;
}

static hlr_layer *maxpool_from_config(const hlr_config *c)
{
    int v[6];
    return pool_config(c, "maxpool2d", v) ? NULL : hlr_maxpool2d_hw(v[0], v[1], v[2], v[3], v[4], v[5]);
}

static hlr_layer *avgpool_from_config(const hlr_config *c)
{
    int v[6];
    return pool_config(c, "avgpool2d", v) ? NULL : hlr_avgpool2d_hw(v[0], v[1], v[2], v[3], v[4], v[5]);
}

static hlr_layer *global_from_config(const hlr_config *c)
{
    (void)c;
    return hlr_global_avgpool2d();
}

const hlr_layer_ops hlr__maxpool2d_ops = {
    .type = "maxpool2d",
    .per_sample = 1,
    .build = pool_build,
    .plan = pool_plan,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = pool_destroy,
    .map_lengths = pool_map_lengths,
    .get_config = pool_get_config,
    .from_config = maxpool_from_config,
};

const hlr_layer_ops hlr__avgpool2d_ops = {
    .type = "avgpool2d",
    .per_sample = 1,
    .build = pool_build,
    .forward = pool_forward,
    .backward = pool_backward,
    .map_lengths = pool_map_lengths,
    .get_config = pool_get_config,
    .from_config = avgpool_from_config,
};

const hlr_layer_ops hlr__global_avgpool2d_ops = {
    .type = "global_avgpool2d",
    .per_sample = 1,
    .build = pool_build,
    .forward = pool_forward,
    .backward = pool_backward,
    .from_config = global_from_config,
};

static hlr_layer *pool_new(const hlr_layer_ops *ops, pool_kind kind, const int v[6], const char *fn)
{
    int kh = v[0], kw = v[1], sh = v[2] ? v[2] : kh, sw = v[3] ? v[3] : kw, ph = v[4], pw = v[5];
    if (kind != POOL_GLOBAL_AVG && (kh < 1 || kw < 1 || kh > 65536 || kw > 65536 || sh < 1 || sw < 1 || sh > 65536 ||
                                    sw > 65536 || ph < 0 || pw < 0 || ph > kh / 2 || pw > kw / 2)) {
        if (kh == kw && v[2] == v[3] && ph == pw)
            hlr__fail(HLR_EINVAL, "%s: kernel %d and stride %d must be >= 1 and padding %d in 0..kernel/2", fn, kh,
                      v[2], ph);
        else
            hlr__fail(HLR_EINVAL,
                      "%s: kernel %dx%d and stride %dx%d must be >= 1 and padding %dx%d in 0..kernel/2 on each axis",
                      fn, kh, kw, v[2], v[3], ph, pw);
        return NULL;
    }
    pool2d *p = (pool2d *)hlr__layer_alloc(ops, sizeof *p);
    if (!p)
        return NULL;
    p->kind = kind;
    p->kh = kh;
    p->kw = kw;
    p->sh = sh;
    p->sw = sw;
    p->ph = ph;
    p->pw = pw;
    return &p->base;
}

hlr_layer *hlr_maxpool2d(int kernel, int stride, int padding)
{
    return pool_new(&hlr__maxpool2d_ops, POOL_MAX, (const int[6]){kernel, kernel, stride, stride, padding, padding},
                    "hlr_maxpool2d");
}

hlr_layer *hlr_avgpool2d(int kernel, int stride, int padding)
{
    return pool_new(&hlr__avgpool2d_ops, POOL_AVG, (const int[6]){kernel, kernel, stride, stride, padding, padding},
                    "hlr_avgpool2d");
}

hlr_layer *hlr_maxpool2d_hw(int kernel_h, int kernel_w, int stride_h, int stride_w, int padding_h, int padding_w)
{
    return pool_new(&hlr__maxpool2d_ops, POOL_MAX,
                    (const int[6]){kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w}, "hlr_maxpool2d_hw");
}

hlr_layer *hlr_avgpool2d_hw(int kernel_h, int kernel_w, int stride_h, int stride_w, int padding_h, int padding_w)
{
    return pool_new(&hlr__avgpool2d_ops, POOL_AVG,
                    (const int[6]){kernel_h, kernel_w, stride_h, stride_w, padding_h, padding_w}, "hlr_avgpool2d_hw");
}

hlr_layer *hlr_global_avgpool2d(void)
{
    return pool_new(&hlr__global_avgpool2d_ops, POOL_GLOBAL_AVG, (const int[6]){0}, "hlr_global_avgpool2d");
}

/*
 * explain.c -- attribution maps (hlr.h, "Where the model looks"): saliency,
 * SmoothGrad and integrated gradients from hlr_model_input_gradient, and
 * Grad-CAM from a convolution's output and the gradient there
 * (hlr__model_layer_gradient in model.c).
 *
 * x (N, S) with S the sample's size; Grad-CAM: x (N, C, H, W), the layer's
 * output A (N, K, h, w), the gradient G there:
 *   a_k = mean_{h,w} G_k,  cam = ReLU(sum_k a_k A_k)  (h, w),
 * upsampled to (H, W) bilinearly with half-pixel centres (torch's
 * interpolate, align_corners=False), written to each of the C planes.
 */
#include "model.h"

#include <math.h>
#include <string.h>

void hlr_explain_options_default(hlr_explain_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->method = HLR_EXPLAIN_SALIENCY;
    o->steps = 32;
    o->noise = 0.15;
    o->layer = -1;
}

/* Bilinear resampling of one (h, w) plane to (H, W), half-pixel centres, edges clamped. */
static void upsample(const float *src, int64_t h, int64_t w, float *dst, int64_t H, int64_t W)
{
    for (int64_t y = 0; y < H; y++) {
        double sy = ((double)y + 0.5) * (double)h / (double)H - 0.5;
        sy = sy < 0 ? 0 : sy;
        int64_t y0 = (int64_t)sy, y1 = y0 + 1 < h ? y0 + 1 : y0;
        double fy = sy - (double)y0;
        for (int64_t x = 0; x < W; x++) {
            double sx = ((double)x + 0.5) * (double)w / (double)W - 0.5;
            sx = sx < 0 ? 0 : sx;
            int64_t x0 = (int64_t)sx, x1 = x0 + 1 < w ? x0 + 1 : x0;
            double fx = sx - (double)x0;
            double top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
            double bot = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
            dst[y * W + x] = (float)(top * (1 - fy) + bot * fy);
        }
    }
}

static hlr_status gradcam(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int layer, hlr_tensor *map,
                          const char *fn)
{
    const int nl = hlr_model_num_layers(m);
    if (layer < 0)
        for (int i = nl - 1; i >= 0 && layer < 0; i--)
            if (!strcmp(hlr_layer_type(hlr_model_layer(m, i)), "conv2d"))
                layer = i;
    if (layer < 0)
        return hlr__fail(HLR_ENOTFOUND, "%s: Grad-CAM needs a conv2d layer; the model has none", fn);
    if (layer >= nl || strcmp(hlr_layer_type(hlr_model_layer(m, layer)), "conv2d") != 0)
        return hlr__fail(HLR_EINVAL, "%s: Grad-CAM's layer %d is not a conv2d layer", fn, layer);
    if (x->ndim != 4)
        return hlr__fail(HLR_EINVAL, "%s: Grad-CAM needs images (N, C, H, W)", fn);
    const int64_t n = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const hlr_layer *l = hlr_model_layer(m, layer);
    const int64_t per = hlr_model_layer(m, layer + l->absorbs)->out_size; /* the buffer's floats per sample */
    float *act = hlr__alloc_or_fail((size_t)(2 * n * per + H * W), sizeof *act, fn);
    if (!act)
        return HLR_ENOMEM;
    float *grad = act + n * per, *cam = grad + n * per;
    hlr_shape s = {0};
    hlr_status st = hlr__model_layer_gradient(m, x->data, n, targets, layer, act, grad, &s, fn);
    if (st == HLR_OK && s.ndim != 3)
        st = hlr__fail(HLR_EINVAL, "%s: layer %d's output is not (C, H, W)", fn, layer);
    const int64_t K = s.d[0], hw = s.d[1] * s.d[2];
    float plane[4096];
    double *acc = NULL;
    if (st == HLR_OK && hw > 4096)
        st = hlr__fail(HLR_EINVAL, "%s: layer %d's maps are too large for Grad-CAM (%lld positions)", fn, layer,
                       (long long)hw);
    if (st == HLR_OK && !(acc = hlr__alloc_or_fail((size_t)hw, sizeof *acc, fn)))
        st = HLR_ENOMEM;
    for (int64_t i = 0; i < n && st == HLR_OK; i++) {
        const float *A = act + i * K * hw, *G = grad + i * K * hw;
        memset(acc, 0, (size_t)hw * sizeof *acc);
        for (int64_t k = 0; k < K; k++) {
            double a = 0;
            for (int64_t p = 0; p < hw; p++)
                a += G[k * hw + p];
            a /= (double)hw;
            for (int64_t p = 0; p < hw; p++)
                acc[p] += a * A[k * hw + p];
        }
        for (int64_t p = 0; p < hw; p++)
            plane[p] = acc[p] > 0 ? (float)acc[p] : 0.0f;
        upsample(plane, s.d[1], s.d[2], cam, H, W);
        for (int64_t c = 0; c < C; c++)
            memcpy((float *)map->data + (i * C + c) * H * W, cam, (size_t)(H * W) * sizeof *cam);
    }
    hlr__free(acc);
    hlr__free(act);
    return st;
}

hlr_status hlr_model_explain(hlr_model *m, const hlr_tensor *x, const int32_t *targets, const hlr_explain_options *opt,
                             hlr_tensor *map)
{
    const char *fn = "hlr_model_explain";
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    if (opt)
        o = *opt;
    if (!m || !x || !map)
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if ((unsigned)o.method > HLR_EXPLAIN_GRADCAM)
        return hlr__fail(HLR_EINVAL, "%s: unknown method %d", fn, (int)o.method);
    if (o.steps < 1 || o.steps > 4096 || !(o.noise >= 0 && o.noise <= 10))
        return hlr__fail(HLR_EINVAL, "%s: need steps in 1..4096 and noise in [0, 10] (got %d, %g)", fn, o.steps,
                         o.noise);
    if (!m->built)
        return hlr__fail(HLR_ESTATE, "%s: the model is not built", fn);
    if (x->dtype != HLR_F32 || map->dtype != HLR_F32)
        return hlr__fail(HLR_EINVAL, "%s: x and map must be float32", fn);
    if (map->ndim != x->ndim || memcmp(map->shape, x->shape, (size_t)x->ndim * sizeof *x->shape) != 0)
        return hlr__fail(HLR_ESHAPE, "%s: map must have x's shape", fn);
    const int64_t numel = x->numel, n = x->ndim > 0 ? x->shape[0] : 0, per = n > 0 ? numel / n : 0;
    hlr_tensor *g = hlr_tensor_new(HLR_F32, x->ndim, x->shape);
    if (!g)
        return hlr_last_status();
    /* hlr_model_input_gradient's checks (classifier, clone, shapes, targets), and its buffers planned. */
    hlr_status st = hlr__model_input_gradient_check(m, x, targets, 0, g, fn);
    /* Without targets, each sample's predicted class on x itself (a noisy copy or a point of the path
     * may predict another); saliency's one gradient takes the arg-max of that very forward pass. */
    int32_t *cls = NULL;
    if (st == HLR_OK && !targets && o.method != HLR_EXPLAIN_SALIENCY) {
        if (!(cls = hlr__alloc_or_fail((size_t)(n > 0 ? n : 1), sizeof *cls, fn)))
            st = HLR_ENOMEM;
        else if ((st = hlr_model_predict(m, x, cls, NULL)) == HLR_OK)
            targets = cls;
    }
    float *out = map->data;
    const float *gx = g->data, *xv = x->data;
    if (st == HLR_OK && o.method == HLR_EXPLAIN_SALIENCY) {
        hlr__model_input_gradient_raw(m, xv, n, targets, 0, g->data);
        for (int64_t i = 0; i < numel; i++)
            out[i] = fabsf(gx[i]);
    } else if (st == HLR_OK && o.method == HLR_EXPLAIN_GRADCAM) {
        st = gradcam(m, x, targets, o.layer, map, fn);
    } else if (st == HLR_OK) {
        const hlr_tensor *b = o.baseline;
        if (b && (b->dtype != HLR_F32 || (b->numel != numel && b->numel != per)))
            st = hlr__fail(HLR_ESHAPE, "%s: the baseline must be float32 with x's shape or one sample's", fn);
        hlr_tensor *xs = st == HLR_OK ? hlr_tensor_new(HLR_F32, x->ndim, x->shape) : NULL;
        if (st == HLR_OK && !xs)
            st = hlr_last_status();
        double *sum = st == HLR_OK ? hlr__alloc_or_fail((size_t)(numel + n), sizeof *sum, fn) : NULL, *sd = NULL;
        if (st == HLR_OK && !sum)
            st = HLR_ENOMEM;
        if (st == HLR_OK && o.method == HLR_EXPLAIN_SMOOTHGRAD) { /* each sample's noise: noise x its range */
            sd = sum + numel;
            for (int64_t i = 0; i < n; i++) {
                float lo = xv[i * per], hi = lo;
                for (int64_t j = 1; j < per; j++) {
                    lo = xv[i * per + j] < lo ? xv[i * per + j] : lo;
                    hi = xv[i * per + j] > hi ? xv[i * per + j] : hi;
                }
                sd[i] = o.noise * (double)(hi - lo);
            }
        }
        hlr_rng rng;
        hlr__rng_seed(&rng, o.seed);
        float *xn = xs ? xs->data : NULL;
        for (int s = 0; s < o.steps && st == HLR_OK; s++) {
            if (o.method == HLR_EXPLAIN_SMOOTHGRAD) {
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < per; j++)
                        xn[i * per + j] = (float)(xv[i * per + j] + sd[i] * hlr__rng_normal(&rng));
            } else { /* the path's midpoints: baseline + (s + 1/2) / steps (x - baseline) */
                const float f = (float)(((double)s + 0.5) / o.steps);
                for (int64_t i = 0; i < numel; i++) {
                    float b0 = b ? ((const float *)b->data)[b->numel == numel ? i : i % per] : 0.0f;
                    xn[i] = b0 + f * (xv[i] - b0);
                }
            }
            hlr__model_input_gradient_raw(m, xn, n, targets, 0, g->data); /* xs: x's shape, checked above */
            for (int64_t i = 0; i < numel; i++)
                sum[i] += o.method == HLR_EXPLAIN_SMOOTHGRAD ? fabsf(gx[i]) : gx[i];
        }
        for (int64_t i = 0; i < numel && st == HLR_OK; i++) {
            double mean = sum[i] / o.steps;
            if (o.method == HLR_EXPLAIN_INTEGRATED_GRADIENTS) {
                float b0 = b ? ((const float *)b->data)[b->numel == numel ? i : i % per] : 0.0f;
                mean *= (double)xv[i] - b0;
            }
            out[i] = (float)mean;
        }
        hlr__free(sum);
        hlr_tensor_free(xs);
    }
    hlr_tensor_free(g);
    hlr__free(cls);
    return st;
}

/*
 * augment.c -- geometric augmentation of training images inside
 * hlr_model_fit: random rotation, scaling and shear about the image's
 * centre, and elastic distortion (Simard, Steinkraus and Platt 2003: a
 * random displacement field smoothed by a Gaussian), applied together as one
 * resampling with bilinear interpolation, zero outside the image.  Every
 * random number comes from the model's generator, so a fit is reproducible;
 * the work buffers are sized once before the first batch.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* Gaussian radius for sigma: 3 sigma, at least 1. */
static int64_t radius_of(double sigma)
{
    int64_t r = (int64_t)ceil(3.0 * sigma);
    return r < 1 ? 1 : r;
}

int64_t hlr__augment_work_floats(const hlr_shape *s, const hlr_augment *a)
{
    const int64_t H = s->d[1], W = s->d[2], C = s->d[0];
    int64_t n = C * H * W; /* a copy of the image */
    if (a->elastic_alpha > 0)
        n += 3 * H * W + 2 * radius_of(a->elastic_sigma) + 1; /* dx, dy, a blur row/column, the kernel */
    return n;
}

int hlr__augment_valid(const hlr_augment *a)
{
    return a->rotate >= 0 && a->rotate <= 180 && a->scale >= 0 && a->scale <= 0.9 && a->shear >= 0 &&
           a->shear <= 60 && a->elastic_alpha >= 0 && a->elastic_alpha <= 1000 &&
           (a->elastic_alpha == 0 || (a->elastic_sigma > 0 && a->elastic_sigma <= 64));
}

int hlr__augment_active(const hlr_augment *a)
{
    return a->rotate > 0 || a->scale > 0 || a->shear > 0 || a->elastic_alpha > 0;
}

/* Blur an H x W field in place with a normalised Gaussian (separable, zero outside); tmp holds max(H, W). */
static void blur(float *f, int64_t H, int64_t W, const float *k, int64_t r, float *tmp)
{
    for (int64_t y = 0; y < H; y++) {
        float *row = f + y * W;
        for (int64_t x = 0; x < W; x++) {
            double s = 0;
            for (int64_t t = -r; t <= r; t++)
                if (x + t >= 0 && x + t < W)
                    s += (double)k[t + r] * row[x + t];
            tmp[x] = (float)s;
        }
        memcpy(row, tmp, (size_t)W * sizeof *row);
    }
    for (int64_t x = 0; x < W; x++) {
        for (int64_t y = 0; y < H; y++) {
            double s = 0;
            for (int64_t t = -r; t <= r; t++)
                if (y + t >= 0 && y + t < H)
                    s += (double)k[t + r] * f[(y + t) * W + x];
            tmp[y] = (float)s;
        }
        for (int64_t y = 0; y < H; y++)
            f[y * W + x] = tmp[y];
    }
}

void hlr__warp_image(float *out, const float *in, int64_t C, int64_t H, int64_t W, const double m[4], const float *dx,
                     const float *dy)
{
    const double cx = (double)(W - 1) / 2, cy = (double)(H - 1) / 2;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            const double u = (double)x - cx, v = (double)y - cy;
            double sx = m[0] * u + m[1] * v + cx, sy = m[2] * u + m[3] * v + cy;
            if (dx) {
                sx += dx[y * W + x];
                sy += dy[y * W + x];
            }
            const double fx = floor(sx), fy = floor(sy);
            const int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
            const double ax = sx - fx, ay = sy - fy;
            const double wts[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
            const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
            for (int64_t c = 0; c < C; c++) {
                const float *plane = in + c * H * W;
                double s = 0;
                for (int k = 0; k < 4; k++)
                    if (wts[k] != 0 && xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H)
                        s += wts[k] * plane[ys[k] * W + xs[k]];
                out[c * H * W + y * W + x] = (float)s;
            }
        }
}

void hlr__augment_images(float *x, int64_t n, const hlr_shape *s, const hlr_augment *a, hlr_rng *rng, float *work)
{
    const int64_t C = s->d[0], H = s->d[1], W = s->d[2], size = C * H * W;
    float *copy = work, *dx = NULL, *dy = NULL, *tmp = NULL, *kern = NULL;
    const int64_t r = a->elastic_alpha > 0 ? radius_of(a->elastic_sigma) : 0;
    if (a->elastic_alpha > 0) {
        dx = copy + size;
        dy = dx + H * W;
        tmp = dy + H * W;
        kern = tmp + (H > W ? H : W);
        double sum = 0;
        for (int64_t t = -r; t <= r; t++)
            sum += exp(-(double)(t * t) / (2 * a->elastic_sigma * a->elastic_sigma));
        for (int64_t t = -r; t <= r; t++)
            kern[t + r] = (float)(exp(-(double)(t * t) / (2 * a->elastic_sigma * a->elastic_sigma)) / sum);
    }
    for (int64_t i = 0; i < n; i++) {
        float *img = x + i * size;
        /* Parameters, always drawn in this order so that a setting of 0 changes no other draw. */
        const double theta = (2 * (double)hlr__rng_uniform(rng) - 1) * a->rotate * PI / 180;
        const double scale = 1 + (2 * (double)hlr__rng_uniform(rng) - 1) * a->scale;
        const double shear = tan((2 * (double)hlr__rng_uniform(rng) - 1) * a->shear * PI / 180);
        /* The forward map is rotation * shear * scale; sampling needs its inverse. */
        const double ct = cos(theta), st = sin(theta);
        const double f[4] = {ct * scale, (ct * shear - st) * scale, st * scale, (st * shear + ct) * scale};
        const double det = f[0] * f[3] - f[1] * f[2];
        const double m[4] = {f[3] / det, -f[1] / det, -f[2] / det, f[0] / det};
        if (a->elastic_alpha > 0) {
            for (int64_t k = 0; k < H * W; k++) {
                dx[k] = 2 * hlr__rng_uniform(rng) - 1;
                dy[k] = 2 * hlr__rng_uniform(rng) - 1;
            }
            blur(dx, H, W, kern, r, tmp);
            blur(dy, H, W, kern, r, tmp);
            for (int64_t k = 0; k < H * W; k++) {
                dx[k] *= (float)a->elastic_alpha;
                dy[k] *= (float)a->elastic_alpha;
            }
        }
        memcpy(copy, img, (size_t)size * sizeof *copy);
        hlr__warp_image(img, copy, C, H, W, m, dx, dy);
    }
}

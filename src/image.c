/*
 * image.c -- PNG (through libpng) and PGM files into grey float tensors,
 * and the preprocessing that turns a picture of one handwritten digit into
 * an MNIST-like 28 x 28 image.
 *
 * Files are read as hostile: the size a header declares is checked against
 * HLR_IMAGE_MAX_SIDE and HLR_IMAGE_MAX_PIXELS before anything is allocated
 * for it, every read is checked, and libpng reports through handlers that
 * record its message and jump back here (it never prints or aborts).  The
 * decoder keeps one row of the file's samples at a time: interlaced PNGs
 * are read pass by pass and each pass's pixels put in place here, so that
 * no whole-image buffer of raw samples is needed besides the result.
 */
#include "internal.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOAD_FN "hlr_image_load"
#define DECODE_FN "hlr_image_decode"
#define MNIST_FN "hlr_image_preprocess_mnist"

/* The flags hlr_image_load() knows. */
#define KNOWN_FLAGS (HLR_IMAGE_MNIST | HLR_IMAGE_DARK_INK | HLR_IMAGE_LIGHT_INK)

/* MNIST's geometry: the digit fits a 20 x 20 box, its centre of mass goes
 * to the centre of a 28 x 28 field. */
#define MNIST_SIDE 28
#define MNIST_BOX 20
/* Ink must differ from the paper by this much of the full scale, or the
 * picture counts as blank (noise and paper texture stay below it). */
#define MIN_CONTRAST 0.1f
/* After the contrast is stretched to [0, 1], pixels above this are ink:
 * they decide the bounding box. */
#define INK_LEVEL 0.1f

/* The size checks every decoder makes before allocating the image. */
static hlr_status check_size(const char *fn, const char *path, int64_t w, int64_t h)
{
    if (w < 1 || h < 1)
        return hlr__fail(HLR_EFORMAT, "%s: %s: the image is %lld x %lld pixels", fn, path, (long long)w,
                         (long long)h);
    if (w > HLR_IMAGE_MAX_SIDE || h > HLR_IMAGE_MAX_SIDE)
        return hlr__fail(HLR_EFORMAT, "%s: %s: the image is %lld x %lld pixels, more than %d a side", fn, path,
                         (long long)w, (long long)h, HLR_IMAGE_MAX_SIDE);
    if (w * h > HLR_IMAGE_MAX_PIXELS)
        return hlr__fail(HLR_EFORMAT, "%s: %s: the image is %lld x %lld pixels, more than %d in all", fn, path,
                         (long long)w, (long long)h, HLR_IMAGE_MAX_PIXELS);
    return HLR_OK;
}

static hlr_tensor *new_image(const char *fn, int64_t w, int64_t h)
{
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, h, w});
    if (!t)
        hlr__fail(HLR_ENOMEM, "%s: cannot allocate an image of %lld x %lld pixels", fn, (long long)w,
                  (long long)h);
    return t;
}

static int64_t be32(const unsigned char *p)
{
    return (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* ---- PNG ---- */

typedef struct png_job {
    FILE *f;
    const char *fn, *path; /* for messages: the public function, the file */
    char msg[160]; /* libpng's last error */
    int oom;       /* an allocation of libpng's failed */
    hlr_tensor *img;
    unsigned char *row; /* one row of samples as libpng hands them over */
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1); /* never return: libpng would print and abort */
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* the library is silent: a warning (a bad ancillary chunk) changes nothing we use */
}

static png_voidp png_on_malloc(png_structp png, png_alloc_size_t n)
{
    void *p = hlr__malloc(n);
    if (!p)
        ((png_job *)png_get_mem_ptr(png))->oom = 1;
    return p;
}

static void png_on_free(png_structp png, png_voidp p)
{
    (void)png;
    hlr__free(p);
}

static void png_on_read(png_structp png, png_bytep data, size_t n)
{
    png_job *j = png_get_io_ptr(png);
    if (fread(data, 1, n, j->f) != n)
        png_error(png, ferror(j->f) ? "read error" : "the file ends too early (truncated)");
}

/* One sample (channel c of pixel x) of a row of 8- or 16-bit samples, in [0, 1]. */
static float sample(const unsigned char *row, int64_t x, int channels, int c, int wide)
{
    int64_t i = x * channels + c;
    return wide ? (float)(row[2 * i] << 8 | row[2 * i + 1]) / 65535.0f : (float)row[i] / 255.0f;
}

/* Grey values of n pixels of a row into out[0], out[step], ...: colour to
 * luminance, alpha composited onto white paper. */
static void row_to_grey(const unsigned char *row, int64_t n, int channels, int wide, float *out, int64_t step)
{
    for (int64_t x = 0; x < n; x++) {
        float v, a = 1.0f;
        if (channels >= 3)
            v = 0.299f * sample(row, x, channels, 0, wide) + 0.587f * sample(row, x, channels, 1, wide) +
                0.114f * sample(row, x, channels, 2, wide);
        else
            v = sample(row, x, channels, 0, wide);
        if (channels == 2 || channels == 4)
            a = sample(row, x, channels, channels - 1, wide);
        out[x * step] = clamp01(a * v + (1.0f - a));
    }
}

/*
 * Decode into j->img.  Everything this allocates hangs off j, which lives
 * in the caller's frame, so after a longjmp the caller frees it all; no
 * local variable here is read after setjmp returns a second time.
 */
static hlr_status png_decode(png_job *j, png_structp png, png_infop info)
{
    if (setjmp(png_jmpbuf(png))) {
        if (j->oom)
            return hlr__fail(HLR_ENOMEM, "%s: %s: out of memory while decoding the PNG", j->fn, j->path);
        return hlr__fail(HLR_EFORMAT, "%s: %s: bad PNG: %s", j->fn, j->path, j->msg);
    }
    png_set_read_fn(png, j, png_on_read);
    /* libpng's own cap (a million a side) would speak first; let check_size() say it. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_read_info(png, info);
    int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    hlr_status st = check_size(j->fn, j->path, w, h);
    if (st != HLR_OK)
        return st;
    int color = png_get_color_type(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png); /* scaled to the full 8-bit range */
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info), wide = png_get_bit_depth(png, info) == 16;
    if (channels < 1 || channels > 4 || (!wide && png_get_bit_depth(png, info) != 8))
        return hlr__fail(HLR_EFORMAT, "%s: %s: unexpected PNG layout (%d channels of %d bits)", j->fn, j->path,
                         channels, png_get_bit_depth(png, info));
    j->img = new_image(j->fn, w, h);
    if (!j->img)
        return HLR_ENOMEM;
    j->row = hlr__alloc_or_fail(png_get_rowbytes(png, info), 1, j->fn);
    if (!j->row)
        return HLR_ENOMEM;
    float *out = hlr_tensor_f32(j->img);
    if (png_get_interlace_type(png, info) == PNG_INTERLACE_NONE) {
        for (int64_t y = 0; y < h; y++) {
            png_read_row(png, j->row, NULL);
            row_to_grey(j->row, w, channels, wide, out + y * w, 1);
        }
    } else {
        /* Without png_set_interlace_handling(), libpng hands over each
         * Adam7 pass as a small image of its own (skipping empty passes). */
        for (int pass = 0; pass < 7; pass++) {
            int64_t cols = PNG_PASS_COLS(w, pass), rows = PNG_PASS_ROWS(h, pass);
            if (cols == 0 || rows == 0)
                continue;
            for (int64_t r = 0; r < rows; r++) {
                png_read_row(png, j->row, NULL);
                int64_t y = PNG_ROW_FROM_PASS_ROW(r, pass);
                row_to_grey(j->row, cols, channels, wide, out + y * w + PNG_PASS_START_COL(pass),
                            (int64_t)PNG_PASS_COL_OFFSET(pass));
            }
        }
    }
    png_read_end(png, NULL); /* the rest of the file must be there too: catches truncation */
    return HLR_OK;
}

static hlr_tensor *load_png(FILE *f, const char *fn, const char *path)
{
    png_job j = {.f = f, .fn = fn, .path = path};
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning, &j,
                                               png_on_malloc, png_on_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    hlr_status st = info ? png_decode(&j, png, info)
                         : hlr__fail(HLR_ENOMEM, "%s: %s: out of memory for the PNG decoder", fn, path);
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    hlr__free(j.row);
    if (st != HLR_OK) {
        hlr_tensor_free(j.img);
        return NULL;
    }
    return j.img;
}

/* ---- PGM (P5 binary, P2 text) ---- */

/*
 * The next number of a PGM header (or, for P2, of its pixels), after white
 * space and # comments: >= 0, or -1 when the file ends first, -2 when
 * something else stands there, -3 when it has more than 9 digits.  The
 * character that ends the number is consumed (the single white space
 * between a P5 header and its pixels).
 */
static long pgm_number(FILE *f)
{
    int c = getc(f);
    for (;;) {
        if (c == '#')
            while (c != '\n' && c != '\r' && c != EOF)
                c = getc(f);
        else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            c = getc(f);
        else
            break;
    }
    if (c == EOF)
        return -1;
    if (c < '0' || c > '9')
        return -2;
    long v = 0;
    int digits = 0;
    for (; c >= '0' && c <= '9'; c = getc(f))
        if (++digits > 9)
            return -3;
        else
            v = v * 10 + (c - '0');
    if (c != EOF && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f' && c != '#')
        return -2;
    if (c == '#')
        ungetc(c, f);
    return v;
}

static hlr_tensor *load_pgm(FILE *f, const char *fn, const char *path, int binary)
{
    /* The magic ("P5" or "P2") has been read and must be followed by white space or a comment. */
    int c = getc(f);
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '#') {
        hlr__fail(HLR_EFORMAT, "%s: %s: not a PGM file: no white space after its magic number", fn, path);
        return NULL;
    }
    ungetc(c, f);
    static const char *const names[] = {"width", "height", "maxval"};
    long hdr[3];
    for (int i = 0; i < 3; i++) {
        hdr[i] = pgm_number(f);
        if (hdr[i] < 0) {
            if (hdr[i] == -1)
                hlr__fail(HLR_EFORMAT, "%s: %s: bad PGM header: the file ends before its %s (truncated)", fn, path,
                          names[i]);
            else
                hlr__fail(HLR_EFORMAT, "%s: %s: bad PGM header: %s %s", fn, path,
                          hdr[i] == -3 ? "too large a number for the" : "not a number where the header has its",
                          names[i]);
            return NULL;
        }
    }
    int64_t w = hdr[0], h = hdr[1];
    long maxval = hdr[2];
    if (check_size(fn, path, w, h) != HLR_OK)
        return NULL;
    if (maxval < 1 || maxval > 65535) {
        hlr__fail(HLR_EFORMAT, "%s: %s: bad PGM header: maxval %ld is outside 1..65535", fn, path, maxval);
        return NULL;
    }
    hlr_tensor *img = new_image(fn, w, h);
    if (!img)
        return NULL;
    float *out = hlr_tensor_f32(img);
    int wide = maxval > 255;
    unsigned char *row = binary ? hlr__alloc_or_fail((size_t)w, wide ? 2 : 1, fn) : NULL;
    if (binary && !row) {
        hlr_tensor_free(img);
        return NULL;
    }
    const char *bad = NULL;
    int64_t at = 0;
    long value = 0;
    for (int64_t y = 0; y < h && !bad; y++) {
        if (binary && fread(row, wide ? 2 : 1, (size_t)w, f) != (size_t)w) {
            at = y * w;
            bad = "truncated";
            break;
        }
        for (int64_t x = 0; x < w; x++) {
            value = binary ? (wide ? row[2 * x] << 8 | row[2 * x + 1] : row[x]) : pgm_number(f);
            if (value < 0 || value > maxval) {
                at = y * w + x;
                bad = value == -1 ? "truncated" : value < 0 ? "not a number" : "above maxval";
                break;
            }
            out[y * w + x] = (float)value / (float)maxval;
        }
    }
    hlr__free(row);
    if (!bad)
        return img;
    hlr_tensor_free(img);
    if (!strcmp(bad, "truncated"))
        hlr__fail(HLR_EFORMAT, "%s: %s: the file ends at pixel %lld of %lld x %lld (truncated)", fn, path,
                  (long long)at, (long long)w, (long long)h);
    else if (!strcmp(bad, "not a number"))
        hlr__fail(HLR_EFORMAT, "%s: %s: pixel %lld (row %lld, column %lld) is not a number", fn, path,
                  (long long)at, (long long)(at / w), (long long)(at % w));
    else
        hlr__fail(HLR_EFORMAT, "%s: %s: pixel %lld (row %lld, column %lld) is %ld, above maxval %ld", fn, path,
                  (long long)at, (long long)(at / w), (long long)(at % w), value, maxval);
    return NULL;
}

/* ---- MNIST-style preprocessing ---- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median of the pixels on the image's outer edge: the paper's brightness. */
static int border_median(const float *px, int64_t h, int64_t w, float *median, const char *fn)
{
    int64_t n = h == 1 || w == 1 ? h * w : 2 * w + 2 * (h - 2);
    float *b = hlr__alloc_or_fail((size_t)n, sizeof *b, fn);
    if (!b)
        return -1;
    int64_t k = 0;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            if (y == 0 || y == h - 1 || x == 0 || x == w - 1)
                b[k++] = px[y * w + x];
    qsort(b, (size_t)k, sizeof *b, cmp_float);
    *median = k % 2 ? b[k / 2] : 0.5f * (b[k / 2 - 1] + b[k / 2]);
    hlr__free(b);
    return 0;
}

/*
 * Resampling weights along one axis, from n_in samples to n_out: output o
 * is the sum over k < count[o] of weight[offset[o] + k] * in[start[o] + k].
 * Shrinking averages the area each output pixel covers; enlarging
 * interpolates linearly between the two nearest input pixels (centres
 * aligned).  Either way the weights of an output sum to 1.
 */
typedef struct taps {
    int64_t *start, *count, *offset;
    float *weight;
} taps;

/* Frees and forgets (a failed taps_make() frees, and its caller frees again). */
static void taps_free(taps *t)
{
    hlr__free(t->start);
    hlr__free(t->weight);
    t->start = NULL;
    t->weight = NULL;
}

static int taps_make(taps *t, int64_t n_in, int64_t n_out, const char *fn)
{
    t->start = hlr__alloc_or_fail((size_t)(3 * n_out), sizeof(int64_t), fn);
    t->weight = hlr__alloc_or_fail((size_t)(n_in + 2 * n_out + 2), sizeof(float), fn);
    if (!t->start || !t->weight) {
        taps_free(t);
        return -1;
    }
    t->count = t->start + n_out;
    t->offset = t->start + 2 * n_out;
    double f = (double)n_in / (double)n_out; /* input pixels per output pixel */
    int64_t used = 0;
    for (int64_t o = 0; o < n_out; o++) {
        t->offset[o] = used;
        if (f >= 1.0) {
            double a = o * f, b = (o + 1) * f;
            int64_t i0 = (int64_t)floor(a), i1 = (int64_t)ceil(b);
            if (i1 > n_in)
                i1 = n_in;
            t->start[o] = i0;
            t->count[o] = 0;
            for (int64_t i = i0; i < i1; i++) {
                double cover = fmin(b, (double)i + 1) - fmax(a, (double)i);
                t->weight[used + t->count[o]++] = (float)(cover > 0 ? cover / f : 0);
            }
        } else {
            double c = (o + 0.5) * f - 0.5;
            c = c < 0 ? 0 : c > (double)(n_in - 1) ? (double)(n_in - 1) : c;
            int64_t i0 = (int64_t)floor(c);
            float frac = (float)(c - (double)i0);
            t->start[o] = i0;
            t->count[o] = i0 + 1 < n_in ? 2 : 1;
            t->weight[used] = t->count[o] == 2 ? 1.0f - frac : 1.0f;
            if (t->count[o] == 2)
                t->weight[used + 1] = frac;
        }
        used += t->count[o];
    }
    return 0;
}

/* Resample the bw x bh region at (bx, by) of px (w wide) to ow x oh into out. */
static int resample(const float *px, int64_t w, int64_t bx, int64_t by, int64_t bw, int64_t bh, float *out, int64_t ow,
                    int64_t oh, const char *fn)
{
    taps tx = {0}, ty = {0};
    float *tmp = NULL;
    int rc = -1;
    if (taps_make(&tx, bw, ow, fn) != 0 || taps_make(&ty, bh, oh, fn) != 0)
        goto done;
    tmp = hlr__alloc_or_fail((size_t)(bh * ow), sizeof *tmp, fn);
    if (!tmp)
        goto done;
    for (int64_t y = 0; y < bh; y++) {
        const float *src = px + (by + y) * w + bx;
        for (int64_t o = 0; o < ow; o++) {
            float s = 0;
            for (int64_t k = 0; k < tx.count[o]; k++)
                s += tx.weight[tx.offset[o] + k] * src[tx.start[o] + k];
            tmp[y * ow + o] = s;
        }
    }
    for (int64_t o = 0; o < oh; o++)
        for (int64_t x = 0; x < ow; x++) {
            float s = 0;
            for (int64_t k = 0; k < ty.count[o]; k++)
                s += ty.weight[ty.offset[o] + k] * tmp[(ty.start[o] + k) * ow + x];
            out[o * ow + x] = clamp01(s);
        }
    rc = 0;
done:
    taps_free(&tx);
    taps_free(&ty);
    hlr__free(tmp);
    return rc;
}

/*
 * The MNIST recipe on an h x w grey image px (white = 1), in five steps:
 * polarity (ink made bright), contrast stretched between the paper and the
 * brightest ink, crop to the ink's bounding box, scale to fit 20 x 20 with
 * the aspect ratio kept, paste into 28 x 28 with the centre of mass of the
 * ink at (14, 14).  blank_code is the status for a picture without ink;
 * messages start with fn and, when path is not NULL, the path.
 */
/* The ink of an h x w grey image px (white = 1): polarity (ink made bright: guessed from the paper,
 * the median of the edge, unless flags say), contrast stretched between the paper (0) and the
 * brightest ink (1), and the bounding box of the pixels above INK_LEVEL.  Returns the h x w map
 * (free it), or NULL: no ink (blank_code) or no memory.  Messages as mnist()'s. */
static float *ink_map(const float *px, int64_t h, int64_t w, int flags, hlr_status blank_code, const char *fn,
                      const char *path, int64_t box[4])
{
    char where[4200] = "";
    if (path)
        snprintf(where, sizeof where, " %s:", path);
    float paper;
    if (border_median(px, h, w, &paper, fn) != 0)
        return NULL;
    int dark_ink = flags & HLR_IMAGE_DARK_INK ? 1 : flags & HLR_IMAGE_LIGHT_INK ? 0 : paper > 0.5f;
    float *v = hlr__alloc_or_fail((size_t)(h * w), sizeof *v, fn);
    if (!v)
        return NULL;
    float peak = 0;
    if (dark_ink)
        paper = 1.0f - paper;
    for (int64_t i = 0; i < h * w; i++) {
        v[i] = dark_ink ? 1.0f - clamp01(px[i]) : clamp01(px[i]);
        peak = v[i] > peak ? v[i] : peak;
    }
    if (peak - paper < MIN_CONTRAST) {
        hlr__free(v);
        hlr__fail(blank_code, "%s:%s no ink found: no pixel differs from the paper (brightness %.2f) by %.2f or more%s",
                  fn, where, dark_ink ? 1.0f - paper : paper, (double)MIN_CONTRAST,
                  flags & (HLR_IMAGE_DARK_INK | HLR_IMAGE_LIGHT_INK) ? " (is the ink's polarity right?)" : "");
        return NULL;
    }
    int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            float s = clamp01((v[y * w + x] - paper) / (peak - paper));
            v[y * w + x] = s;
            if (s > INK_LEVEL) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
        }
    box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
    return v;
}

static hlr_tensor *mnist(const float *px, int64_t h, int64_t w, int flags, hlr_status blank_code, const char *fn,
                         const char *path, double place[4])
{
    int64_t bb[4];
    float *v = ink_map(px, h, w, flags, blank_code, fn, path, bb);
    if (!v)
        return NULL;
    const int64_t x0 = bb[0], y0 = bb[1], x1 = bb[2], y1 = bb[3];
    int64_t bw = x1 - x0 + 1, bh = y1 - y0 + 1, side = bw > bh ? bw : bh;
    int64_t ow = (int64_t)llround((double)bw * MNIST_BOX / (double)side);
    int64_t oh = (int64_t)llround((double)bh * MNIST_BOX / (double)side);
    ow = ow < 1 ? 1 : ow;
    oh = oh < 1 ? 1 : oh;
    float box[MNIST_BOX * MNIST_BOX];
    int rc = resample(v, w, x0, y0, bw, bh, box, ow, oh, fn);
    hlr__free(v);
    if (rc != 0)
        return NULL;
    double mass = 0, mx = 0, my = 0;
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            double m = box[y * ow + x];
            mass += m;
            mx += m * (double)x;
            my += m * (double)y;
        }
    /* The centre of mass goes to pixel (14, 14), indices counted from 0, as in MNIST (where it sits at
     * 14.0 +- 0.5 in both directions).  mass > 0: the box holds at least one pixel above INK_LEVEL,
     * averaged with weights summing to 1. */
    int64_t dx = MNIST_SIDE / 2 - (int64_t)llround(mass > 0 ? mx / mass : (ow - 1) / 2.0);
    int64_t dy = MNIST_SIDE / 2 - (int64_t)llround(mass > 0 ? my / mass : (oh - 1) / 2.0);
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, MNIST_SIDE, MNIST_SIDE});
    if (!t)
        return NULL;
    if (place) { /* output pixel (i, j) covers the source's [x0 + (j - dx) bw / ow, ...) */
        place[2] = (double)bw / (double)ow;
        place[3] = (double)bh / (double)oh;
        place[0] = (double)x0 - (double)dx * place[2];
        place[1] = (double)y0 - (double)dy * place[3];
    }
    float *out = hlr_tensor_f32(t);
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            int64_t tx = x + dx, ty = y + dy; /* a lopsided digit may reach past the edge: clipped, as MNIST */
            if (tx >= 0 && tx < MNIST_SIDE && ty >= 0 && ty < MNIST_SIDE)
                out[ty * MNIST_SIDE + tx] = box[y * ow + x];
        }
    return t;
}

/* path: named in the message when not NULL. */
static hlr_status check_flags(int flags, const char *fn, const char *path)
{
    const char *sep = path ? ": " : "";
    path = path ? path : "";
    if (flags & ~KNOWN_FLAGS)
        return hlr__fail(HLR_EINVAL, "%s: %s%sunknown flags 0x%x", fn, path, sep, (unsigned)(flags & ~KNOWN_FLAGS));
    if ((flags & HLR_IMAGE_DARK_INK) && (flags & HLR_IMAGE_LIGHT_INK))
        return hlr__fail(HLR_EINVAL, "%s: %s%sHLR_IMAGE_DARK_INK and HLR_IMAGE_LIGHT_INK together", fn, path, sep);
    return HLR_OK;
}

hlr_tensor *hlr_image_preprocess_mnist_placed(const hlr_tensor *image, int flags, double place[4])
{
    if (!image) {
        hlr__fail(HLR_EINVAL, "%s: image is NULL", MNIST_FN);
        return NULL;
    }
    if (check_flags(flags, MNIST_FN, NULL) != HLR_OK)
        return NULL;
    if (image->dtype != HLR_F32 || !(image->ndim == 2 || (image->ndim == 3 && image->shape[0] == 1))) {
        hlr_shape s = {.ndim = image->ndim};
        memcpy(s.d, image->shape, sizeof s.d);
        char buf[160];
        hlr__fail(image->dtype != HLR_F32 ? HLR_EINVAL : HLR_ESHAPE,
                  "%s: the image must be float32 of shape (H, W) or (1, H, W), not %s %s", MNIST_FN,
                  image->dtype == HLR_F32 ? "float32" : "int32", hlr__shape_str(&s, buf, sizeof buf));
        return NULL;
    }
    const float *px = image->data;
    for (int64_t i = 0; i < image->numel; i++)
        if (!isfinite(px[i])) {
            hlr__fail(HLR_EINVAL, "%s: pixel %lld is %g; pixels must be finite", MNIST_FN, (long long)i, (double)px[i]);
            return NULL;
        }
    return mnist(px, image->shape[image->ndim - 2], image->shape[image->ndim - 1], flags, HLR_EINVAL, MNIST_FN, NULL,
                 place);
}

hlr_tensor *hlr_image_preprocess_mnist(const hlr_tensor *image, int flags)
{
    return hlr_image_preprocess_mnist_placed(image, flags, NULL);
}

/* ---- hlr_image_load ---- */

/*
 * Decode the PNG or PGM that f holds from its start, then preprocess it as
 * flags say.  Messages start with fn and name (a path, or what the caller
 * calls the bytes); f stays open.
 */
static hlr_tensor *decode_stream(FILE *f, const char *fn, const char *name, int flags)
{
    /* Enough for a PNG's signature and the size in its IHDR chunk. */
    unsigned char magic[24] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    hlr_tensor *img = NULL;
    if (ferror(f)) {
        hlr__fail(HLR_EIO, "%s: cannot read %s", fn, name);
    } else if (got == 0) {
        hlr__fail(HLR_EFORMAT, "%s: %s: the file is empty", fn, name);
    } else if (fseek(f, 0, SEEK_SET) != 0) {
        hlr__fail(HLR_EIO, "%s: cannot read %s (seek failed)", fn, name);
    } else if (got >= 8 && !png_sig_cmp(magic, 0, 8)) {
        /* A hostile size is refused here, before libpng reads on to the image data. */
        if (got < 24 || memcmp(magic + 12, "IHDR", 4) != 0 ||
            check_size(fn, name, be32(magic + 16), be32(magic + 20)) == HLR_OK)
            img = load_png(f, fn, name);
    } else if (got >= 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '2')) {
        fseek(f, 2, SEEK_SET);
        img = load_pgm(f, fn, name, magic[1] == '5');
    } else {
        hlr__fail(HLR_EFORMAT, "%s: %s: not a PNG or PGM (P5 or P2) image", fn, name);
    }
    if (!img)
        return NULL;
    if (flags & HLR_IMAGE_MNIST) {
        hlr_tensor *t = mnist(hlr_tensor_f32(img), img->shape[1], img->shape[2], flags, HLR_EFORMAT, fn, name, NULL);
        hlr_tensor_free(img);
        return t;
    }
    if (flags & HLR_IMAGE_DARK_INK) {
        float *px = hlr_tensor_f32(img);
        for (int64_t i = 0; i < img->numel; i++)
            px[i] = 1.0f - px[i];
    }
    return img;
}

hlr_tensor *hlr_image_load(const char *path, int flags)
{
    if (!path) {
        hlr__fail(HLR_EINVAL, "%s: path is NULL", LOAD_FN);
        return NULL;
    }
    if (check_flags(flags, LOAD_FN, path) != HLR_OK)
        return NULL;
    int fd = hlr__open_regular(path, LOAD_FN, NULL); /* no FIFO or device: it could block */
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        hlr__fail(HLR_ENOMEM, "%s: %s: cannot open a stream on the file", LOAD_FN, path);
        return NULL;
    }
    hlr_tensor *img = decode_stream(f, LOAD_FN, path, flags);
    fclose(f);
    return img;
}

/* What messages of hlr_image_decode() call the bytes: a request must never name a file. */
#define DECODE_NAME "the image data"

hlr_tensor *hlr_image_decode(const void *data, size_t size, int flags)
{
    if (!data && size) {
        hlr__fail(HLR_EINVAL, "%s: data is NULL", DECODE_FN);
        return NULL;
    }
    if (check_flags(flags, DECODE_FN, NULL) != HLR_OK)
        return NULL;
    if (size == 0) {
        hlr__fail(HLR_EFORMAT, "%s: no image data (0 bytes)", DECODE_FN);
        return NULL;
    }
    /* A read-only stream over the caller's bytes: the decoders read files and memory alike. */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) {
        hlr__fail(HLR_ENOMEM, "%s: cannot open a stream on %zu bytes of image data", DECODE_FN, size);
        return NULL;
    }
    hlr_tensor *img = decode_stream(f, DECODE_FN, DECODE_NAME, flags);
    fclose(f);
    return img;
}

/* ---- lines of writing, and data sets of them ---- */

#define LINE_FN "hlr_image_line"
#define DESKEW_MAX_DEG 10  /* HLR_IMAGE_PHOTO: the steepest line it straightens */
#define DESKEW_STEP_DEG 0.5
#define PHOTO_INK_LEVEL 0.25f /* HLR_IMAGE_PHOTO: the crop counts ink a quarter of the way from paper to the
                                * darkest ink, above what is left of the light's slopes and the paper's grain */
#define PHOTO_TRIM 0.002  /* HLR_IMAGE_PHOTO: the crop leaves out this share of the ink at each side */
#define DESKEW_GAIN 1.05   /* an angle must sharpen the rows' profile by 5 % over level to be used */

/*
 * Running maximum (or minimum) over a window of 2r + 1 along n values with stride s, into out, the
 * window clipped at the ends (van Herk / Gil-Werman: the values padded with the extreme's identity,
 * then, within blocks of 2r + 1, the extreme from each block's start and to each block's end: three
 * comparisons a value whatever r).  work: 3 (n + 2r) floats.
 */
static void run_extreme(const float *in, float *out, int64_t n, int64_t s, int64_t r, int max, float *work)
{
    const int64_t k = 2 * r + 1, m = n + 2 * r;
    const float pad = max ? -INFINITY : INFINITY;
    float *x = work, *g = work + m, *h = work + 2 * m;
    for (int64_t i = 0; i < m; i++)
        x[i] = i < r || i >= r + n ? pad : in[(i - r) * s];
    for (int64_t i = 0; i < m; i++) /* g: the extreme from the start of i's block to i */
        g[i] = i % k == 0 ? x[i] : max ? fmaxf(g[i - 1], x[i]) : fminf(g[i - 1], x[i]);
    for (int64_t i = m - 1; i >= 0; i--) /* h: from i to the end of its block */
        h[i] = i % k == k - 1 || i == m - 1 ? x[i] : max ? fmaxf(h[i + 1], x[i]) : fminf(h[i + 1], x[i]);
    for (int64_t i = 0; i < n; i++) /* the window [i, i + k) of x: h at its start, g at its end */
        out[i * s] = max ? fmaxf(h[i], g[i + k - 1]) : fminf(h[i], g[i + k - 1]);
}

/* Running mean over 2r + 1 values (the window clipped at the ends). */
static void run_mean(const float *in, float *out, int64_t n, int64_t s, int64_t r)
{
    double sum = 0;
    int64_t a = 0, b = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t na = i - r < 0 ? 0 : i - r, nb = i + r >= n ? n - 1 : i + r;
        while (b < nb)
            sum += in[++b * s];
        while (a < na)
            sum -= in[a++ * s];
        out[i * s] = (float)(sum / (double)(b - a + 1));
    }
}

/*
 * A photograph's uneven light flattened: the paper's brightness estimated at every pixel (a
 * closing over a window wider than a stroke, for dark ink: the brightest value around, then the
 * darkest of those; an opening for light ink; then smoothed) and each pixel divided by it (dark ink) or shifted by it (light ink), so that the
 * paper is even and the ink keeps its contrast to the paper around it (the grain and what is left of the
 * light's slopes stay, faint: ink_bulk_box() looks past them).  A new h x w image.
 */
static float *flatten_paper(const float *px, int64_t h, int64_t w, int dark_ink, const char *fn)
{
    const int64_t side = h < w ? h : w, r = side / 8 < 3 ? 3 : side / 8;
    float *a = hlr__alloc_or_fail((size_t)(h * w), sizeof *a, fn), *b = a ? hlr__alloc_or_fail((size_t)(h * w),
                                                                                                  sizeof *b, fn)
                                                                           : NULL;
    const int64_t longest = h > w ? h : w;
    float *work = b ? hlr__alloc_or_fail((size_t)(3 * (longest + 2 * r)), sizeof *work, fn) : NULL;
    if (!work) {
        hlr__free(a);
        hlr__free(b);
        return NULL;
    }
    for (int64_t i = 0; i < h * w; i++)
        a[i] = clamp01(px[i]);
    /* a closing (for dark ink; an opening for light): the extreme removes the strokes, the opposite
     * extreme brings the paper's slopes back to where they were */
    for (int pass = 0; pass < 2; pass++) {
        const int max = pass == 0 ? dark_ink : !dark_ink;
        for (int64_t y = 0; y < h; y++)
            run_extreme(a + y * w, b + y * w, w, 1, r, max, work);
        for (int64_t x = 0; x < w; x++)
            run_extreme(b + x, a + x, h, w, r, max, work);
    }
    for (int64_t y = 0; y < h; y++)
        run_mean(a + y * w, b + y * w, w, 1, r);
    for (int64_t x = 0; x < w; x++)
        run_mean(b + x, a + x, h, w, r);
    for (int64_t i = 0; i < h * w; i++) { /* a: the paper; b: the flattened picture */
        const float p = clamp01(px[i]);
        b[i] = dark_ink ? (a[i] > 1e-3f ? clamp01(p / a[i]) : 1.0f) : clamp01(p - a[i]);
    }
    hlr__free(work);
    hlr__free(a);
    return b;
}

/* The angle (radians) that levels the line of bright ink v (h x w): the rotation whose rows' ink
 * profile is sharpest (the largest sum of squared row sums), from -DESKEW_MAX_DEG to +DESKEW_MAX_DEG;
 * 0 unless it beats level by DESKEW_GAIN. */
static double skew_angle(const float *v, int64_t h, int64_t w, const char *fn)
{
    /* the ink (pixels above 0.3), found once: its coordinates and weights */
    int64_t n = 0;
    for (int64_t i = 0; i < h * w; i++)
        n += v[i] > 0.3f;
    /* a row index y cos t - x sin t + w lies in [0, h + 2 w] for |sin t| <= 1 */
    const int64_t bins = h + 2 * w + 2;
    double *row = hlr__alloc_or_fail((size_t)bins, sizeof *row, fn), best = -1, level = -1, angle = 0;
    int64_t *at = row && n ? hlr__alloc_or_fail((size_t)n, sizeof *at, fn) : NULL;
    if (!row || (n && !at)) {
        hlr__free(row);
        return 0;
    }
    for (int64_t i = 0, k = 0; i < h * w; i++)
        if (v[i] > 0.3f)
            at[k++] = i;
    for (double deg = -DESKEW_MAX_DEG; deg <= DESKEW_MAX_DEG + 1e-9; deg += DESKEW_STEP_DEG) {
        const double t = deg * M_PI / 180, c = cos(t), sn = sin(t);
        memset(row, 0, (size_t)bins * sizeof *row);
        for (int64_t j = 0; j < n; j++) { /* each ink pixel's row after turning the picture by -t */
            const int64_t y = at[j] / w, x = at[j] % w;
            row[llround((double)y * c - (double)x * sn + (double)w)] += v[at[j]];
        }
        double score = 0;
        for (int64_t k = 0; k < bins; k++)
            score += row[k] * row[k];
        if (fabs(deg) < 1e-9)
            level = score;
        if (score > best)
            best = score, angle = t;
    }
    hlr__free(at);
    hlr__free(row);
    return best > DESKEW_GAIN * level ? angle : 0;
}

/* The box of the bulk of the ink of v (h x w): the rows and columns between the first and the last
 * PHOTO_TRIM of the mass of the pixels above PHOTO_INK_LEVEL, so that specks and what is left of a shadow at the picture's edge
 * do not widen it (a photograph has both; a clean picture loses at most a faint tail). */
static void ink_bulk_box(const float *v, int64_t h, int64_t w, int64_t box[4], const char *fn)
{
    double *row = hlr__alloc_or_fail((size_t)(h + w), sizeof *row, fn), *col = row ? row + h : NULL, total = 0;
    if (!row)
        return; /* keep the box ink_map found */
    memset(row, 0, (size_t)(h + w) * sizeof *row);
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            const double m = v[y * w + x] > PHOTO_INK_LEVEL ? v[y * w + x] : 0;
            row[y] += m;
            col[x] += m;
            total += m;
        }
    if (total > 0) {
        const double *prof[2] = {col, row};
        const int64_t n[2] = {w, h};
        for (int k = 0; k < 2; k++) {
            double acc = 0;
            int64_t lo = 0, hi = n[k] - 1;
            for (int64_t i = 0; i < n[k]; i++) {
                acc += prof[k][i];
                if (acc > PHOTO_TRIM * total) {
                    lo = i;
                    break;
                }
            }
            acc = 0;
            for (int64_t i = n[k] - 1; i >= 0; i--) {
                acc += prof[k][i];
                if (acc > PHOTO_TRIM * total) {
                    hi = i;
                    break;
                }
            }
            if (lo <= hi)
                box[k] = lo, box[k + 2] = hi;
        }
    }
    hlr__free(row);
}

/* v (h x w) turned by -angle about its centre onto a canvas that holds all of it (bilinear; paper 0
 * outside): the new map, its size in *nh, *nw, and its ink's box. */
static float *deskew(const float *v, int64_t h, int64_t w, double angle, int64_t *nh, int64_t *nw, int64_t box[4],
                     const char *fn)
{
    const double c = cos(angle), sn = sin(angle);
    const int64_t W = (int64_t)ceil(fabs(c) * (double)w + fabs(sn) * (double)h),
                  H = (int64_t)ceil(fabs(sn) * (double)w + fabs(c) * (double)h);
    if (W > HLR_IMAGE_MAX_SIDE || H > HLR_IMAGE_MAX_SIDE || W * H > HLR_IMAGE_MAX_PIXELS) {
        hlr__fail(HLR_EINVAL, "%s: the straightened picture would be %lld x %lld pixels, more than %d a side or %d "
                              "in all", fn, (long long)W, (long long)H, HLR_IMAGE_MAX_SIDE, HLR_IMAGE_MAX_PIXELS);
        return NULL;
    }
    float *out = hlr__alloc_or_fail((size_t)(W * H), sizeof *out, fn);
    if (!out)
        return NULL;
    int64_t x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            /* output (x, y) comes from the source point turned by +angle about the centres */
            const double u = (double)x - W / 2.0, q = (double)y - H / 2.0;
            const double sx = c * u - sn * q + w / 2.0, sy = sn * u + c * q + h / 2.0;
            const int64_t ix = (int64_t)floor(sx), iy = (int64_t)floor(sy);
            const double ax = sx - (double)ix, ay = sy - (double)iy;
            double acc = 0;
            for (int k = 0; k < 4; k++) {
                const int64_t xx = ix + (k & 1), yy = iy + (k >> 1);
                if (xx >= 0 && xx < w && yy >= 0 && yy < h)
                    acc += (k & 1 ? ax : 1 - ax) * (k >> 1 ? ay : 1 - ay) * v[yy * w + xx];
            }
            const float m = (float)acc;
            out[y * W + x] = m;
            if (m > INK_LEVEL) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
        }
    if (x1 < 0) { /* the ink was fainter than INK_LEVEL everywhere after interpolation: keep the centre */
        x0 = x1 = W / 2;
        y0 = y1 = H / 2;
    }
    box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
    *nh = H;
    *nw = W;
    return out;
}

hlr_tensor *hlr_image_line(const hlr_tensor *image, int height, int pad, int flags)
{
    if (!image) {
        hlr__fail(HLR_EINVAL, "%s: image is NULL", LINE_FN);
        return NULL;
    }
    if ((flags & ~(HLR_IMAGE_DARK_INK | HLR_IMAGE_LIGHT_INK | HLR_IMAGE_PHOTO)) ||
        ((flags & HLR_IMAGE_DARK_INK) && (flags & HLR_IMAGE_LIGHT_INK))) {
        hlr__fail(HLR_EINVAL, "%s: flags %d: HLR_IMAGE_PHOTO and at most one of HLR_IMAGE_DARK_INK and "
                              "HLR_IMAGE_LIGHT_INK, or 0", LINE_FN, flags);
        return NULL;
    }
    if (height < 1 || height > 4096 || pad < 0 || 2 * pad >= height) {
        hlr__fail(HLR_EINVAL, "%s: height %d must be in 1..4096 and pad %d in 0..(height - 1) / 2", LINE_FN, height,
                  pad);
        return NULL;
    }
    if (image->dtype != HLR_F32 || !(image->ndim == 2 || (image->ndim == 3 && image->shape[0] == 1))) {
        hlr__fail(image->dtype != HLR_F32 ? HLR_EINVAL : HLR_ESHAPE,
                  "%s: the image must be float32 of shape (H, W) or (1, H, W)", LINE_FN);
        return NULL;
    }
    const float *px = image->data;
    for (int64_t i = 0; i < image->numel; i++)
        if (!isfinite(px[i])) {
            hlr__fail(HLR_EINVAL, "%s: pixel %lld is %g; pixels must be finite", LINE_FN, (long long)i, (double)px[i]);
            return NULL;
        }
    int64_t h = image->shape[image->ndim - 2], w = image->shape[image->ndim - 1];
    int64_t bb[4];
    float *v;
    if (flags & HLR_IMAGE_PHOTO) { /* the paper's light made even, the polarity then said */
        float paper;
        if (border_median(px, h, w, &paper, LINE_FN) != 0)
            return NULL;
        const int dark_ink = flags & HLR_IMAGE_DARK_INK ? 1 : flags & HLR_IMAGE_LIGHT_INK ? 0 : paper > 0.5f;
        float *flat = flatten_paper(px, h, w, dark_ink, LINE_FN);
        if (!flat)
            return NULL;
        float deepest = 0; /* the ink's contrast to its paper, which the flattening made 1 (dark ink) or 0 */
        for (int64_t i = 0; i < h * w; i++) {
            const float d = dark_ink ? 1.0f - flat[i] : flat[i];
            deepest = d > deepest ? d : deepest;
        }
        if (deepest < PHOTO_INK_LEVEL) {
            hlr__free(flat);
            hlr__fail(HLR_EINVAL, "%s: no ink found: with the light flattened, no pixel differs from the paper around "
                                  "it by %.0f %% or more", LINE_FN, 100.0 * PHOTO_INK_LEVEL);
            return NULL;
        }
        v = ink_map(flat, h, w, dark_ink ? HLR_IMAGE_DARK_INK : HLR_IMAGE_LIGHT_INK, HLR_EINVAL, LINE_FN, NULL, bb);
        hlr__free(flat);
        const double angle = v ? skew_angle(v, h, w, LINE_FN) : 0;
        if (v && angle != 0) {
            int64_t nh, nw;
            float *turned = deskew(v, h, w, angle, &nh, &nw, bb, LINE_FN);
            hlr__free(v);
            v = turned;
            h = nh;
            w = nw;
        }
        if (v)
            ink_bulk_box(v, h, w, bb, LINE_FN);
    } else {
        v = ink_map(px, h, w, flags, HLR_EINVAL, LINE_FN, NULL, bb);
    }
    if (!v)
        return NULL;
    const int64_t bw = bb[2] - bb[0] + 1, bh = bb[3] - bb[1] + 1, ih = height - 2 * pad;
    int64_t iw = (int64_t)llround((double)bw * (double)ih / (double)bh);
    iw = iw < 1 ? 1 : iw > HLR_IMAGE_MAX_SIDE ? HLR_IMAGE_MAX_SIDE : iw;
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, height, iw + 2 * pad});
    float *ink = t ? hlr__alloc_or_fail((size_t)(ih * iw), sizeof *ink, LINE_FN) : NULL;
    if (!ink || resample(v, w, bb[0], bb[1], bw, bh, ink, iw, ih, LINE_FN) != 0) {
        hlr__free(v);
        hlr__free(ink);
        hlr_tensor_free(t);
        return NULL;
    }
    float *out = hlr_tensor_f32(t); /* zeroed: the padding is paper */
    for (int64_t y = 0; y < ih; y++)
        memcpy(out + (y + pad) * (iw + 2 * pad) + pad, ink + y * iw, (size_t)iw * sizeof *out);
    hlr__free(v);
    hlr__free(ink);
    return t;
}

/* The next UTF-8 code point of s (advanced past it); -1 for a malformed sequence. */
static int32_t utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    int32_t c = p[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0)
        return -1;
    if (n > 0)
        c &= 0x3F >> n;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        c = (c << 6) | (p[i] & 0x3F);
    }
    *s += n + 1;
    return c;
}

#define LINES_FN "hlr_dataset_load_lines"
#define LINES_MAX 10000000

typedef struct line_item {
    hlr_tensor *img;
    int32_t *labels;
    int n;
} line_item;

/* IAM's index line "ID STATUS ..." (words.txt: 9 fields, the last the word; lines.txt: 9 fields, the last
 * the words joined by '|'): the picture's path under image_dir (ID a01-000u-00[-00] lives in
 * a01/a01-000u/) into path, the text into text ('|' as a space).  1: a line to load, 0: a line to skip
 * (status "err"), -1: not IAM's format. */
static int iam_line(char *line, const char *image_dir, char *path, size_t path_cap, char **text)
{
    char *field[9];
    int n = 0;
    for (char *t = strtok(line, " "); t && n < 9; t = strtok(NULL, " "))
        field[n++] = t;
    if (n < 9)
        return -1;
    char *rest = strtok(NULL, ""); /* a text with spaces (not IAM's, but keep it whole) */
    if (rest)
        field[8][strlen(field[8])] = ' ';
    if (strcmp(field[1], "ok") && strcmp(field[1], "err"))
        return -1;
    const char *id = field[0], *d1 = strchr(id, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    if (!d1 || !d2 || d1 == id || strchr(id, '/') || strstr(id, ".."))
        return -1;
    if (!strcmp(field[1], "err"))
        return 0;
    snprintf(path, path_cap, "%s/%.*s/%.*s/%s.png", image_dir, (int)(d1 - id), id, (int)(d2 - id), id, id);
    for (char *c = field[8]; *c; c++)
        if (*c == '|')
            *c = ' ';
    *text = field[8];
    return 1;
}

static hlr_dataset *load_lines(const char *fn, const char *labels_path, const char *iam_images, const char *alphabet,
                               int height, int pad, int width, int flags, int64_t *skipped);

hlr_dataset *hlr_dataset_load_lines(const char *labels_path, const char *alphabet, int height, int pad, int width,
                                    int flags)
{
    return load_lines(LINES_FN, labels_path, NULL, alphabet, height, pad, width, flags, NULL);
}

hlr_dataset *hlr_dataset_load_iam(const char *index_path, const char *image_dir, const char *alphabet, int height,
                                  int pad, int width, int flags, int64_t *skipped)
{
    if (!image_dir) {
        hlr__fail(HLR_EINVAL, "hlr_dataset_load_iam: NULL argument");
        return NULL;
    }
    return load_lines("hlr_dataset_load_iam", index_path, image_dir, alphabet, height, pad, width, flags, skipped);
}

static hlr_dataset *load_lines(const char *fn, const char *labels_path, const char *iam_images, const char *alphabet,
                               int height, int pad, int width, int flags, int64_t *skipped)
{
    if (skipped)
        *skipped = 0;
    if (!labels_path || !alphabet) {
        hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
        return NULL;
    }
    if (width < 0 || width > HLR_IMAGE_MAX_SIDE) {
        hlr__fail(HLR_EINVAL, "%s: width %d outside 0..%d (0: the widest image's)", fn, width,
                  HLR_IMAGE_MAX_SIDE);
        return NULL;
    }
    /* the alphabet's characters: label k + 1 for the k-th */
    int32_t cps[1024];
    int ncp = 0;
    for (const char *a = alphabet; *a;) {
        int32_t c = utf8_next(&a);
        if (c < 0 || ncp == 1024) {
            hlr__fail(HLR_EINVAL, "%s: the alphabet is %s", fn, c < 0 ? "not UTF-8" : "over 1024 characters");
            return NULL;
        }
        for (int k = 0; k < ncp; k++)
            if (cps[k] == c) {
                hlr__fail(HLR_EINVAL, "%s: the alphabet holds character %d twice", fn, k + 1);
                return NULL;
            }
        cps[ncp++] = c;
    }
    if (ncp == 0) {
        hlr__fail(HLR_EINVAL, "%s: the alphabet is empty", fn);
        return NULL;
    }
    int fd = hlr__open_regular(labels_path, fn, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            hlr__fail(HLR_ENOMEM, "%s: %s: cannot open a stream on the file", fn, labels_path);
        }
        return NULL;
    }
    /* folder of the labels file: the images' names are relative to it */
    const char *slash = strrchr(labels_path, '/');
    size_t dir_len = slash ? (size_t)(slash - labels_path + 1) : 0;
    line_item *items = NULL;
    int64_t n = 0, cap = 0, lineno = 0, widest = 0;
    int max_len = 1;
    char line[8192], path[8192 + 4096];
    hlr_dataset *d = NULL;
    int failed = 0;
    while (!failed && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            hlr__fail(HLR_EFORMAT, "%s: %s:%lld: the line is longer than %d bytes", fn, labels_path,
                      (long long)lineno, (int)sizeof line - 2);
            failed = 1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        const char *text;
        if (iam_images) {
            char *t = NULL;
            int r = iam_line(line, iam_images, path, sizeof path, &t);
            if (r < 0) {
                hlr__fail(HLR_EFORMAT, "%s: %s:%lld: expected IAM's ID STATUS ... TEXT (words.txt or lines.txt)",
                          fn, labels_path, (long long)lineno);
                failed = 1;
                break;
            }
            if (r == 0) {
                if (skipped)
                    (*skipped)++;
                continue;
            }
            text = t;
        } else {
            char *tab = strchr(line, '\t');
            if (!tab || tab == line) {
                hlr__fail(HLR_EFORMAT, "%s: %s:%lld: expected NAME<TAB>TEXT", fn, labels_path,
                          (long long)lineno);
                failed = 1;
                break;
            }
            *tab = '\0';
            text = tab + 1;
            snprintf(path, sizeof path, "%.*s%s", line[0] == '/' ? 0 : (int)dir_len, labels_path, line);
        }
        if (n == LINES_MAX) {
            hlr__fail(HLR_EFORMAT, "%s: %s: more than %d lines", fn, labels_path, LINES_MAX);
            failed = 1;
            break;
        }
        if (n == cap) {
            int64_t nc = cap ? 2 * cap : 64;
            line_item *ni = hlr__alloc_or_fail((size_t)nc, sizeof *ni, fn);
            if (!ni) {
                failed = 1;
                break;
            }
            if (items)
                memcpy(ni, items, (size_t)n * sizeof *ni);
            hlr__free(items);
            items = ni;
            cap = nc;
        }
        line_item *it = &items[n];
        memset(it, 0, sizeof *it);
        /* the text: each character a label */
        it->labels = hlr__alloc_or_fail(strlen(text) + 1, sizeof *it->labels, fn);
        if (!it->labels) {
            failed = 1;
            break;
        }
        n++; /* from here on the item is freed with the others */
        for (const char *t = text; *t;) {
            const char *at = t;
            int32_t c = utf8_next(&t), k = 0;
            while (c >= 0 && k < ncp && cps[k] != c)
                k++;
            if (c < 0 || k == ncp) {
                int bytes = c < 0 ? 1 : (int)(t - at);
                hlr__fail(HLR_EFORMAT, "%s: %s:%lld: %s '%.*s' (byte %d of the text)", fn, labels_path,
                          (long long)lineno, c < 0 ? "not UTF-8 at" : "a character outside the alphabet", bytes, at,
                          (int)(at - text) + 1);
                failed = 1;
                break;
            }
            it->labels[it->n++] = k + 1;
        }
        if (failed)
            break;
        max_len = it->n > max_len ? it->n : max_len;
        hlr_tensor *raw = hlr_image_load(path, 0);
        const int undecodable = !raw && hlr_last_status() == HLR_EFORMAT;
        it->img = raw ? hlr_image_line(raw, height, pad, flags) : NULL;
        hlr_tensor_free(raw);
        if (!it->img && iam_images && undecodable) {
            /* IAM ships a few empty pictures (a01-117-05-02, r06-022-03-05): skipped and counted */
            hlr__free(it->labels);
            n--;
            if (skipped)
                (*skipped)++;
            continue;
        }
        if (!it->img) {
            char why[1024];
            snprintf(why, sizeof why, "%s", hlr_last_error());
            hlr__fail(hlr_last_status(), "%s: %s:%lld: %s", fn, labels_path, (long long)lineno, why);
            failed = 1;
            break;
        }
        int64_t iw = it->img->shape[2];
        if (width > 0 && iw > width) {
            hlr__fail(HLR_EFORMAT, "%s: %s:%lld: %s is %lld pixels wide at height %d, more than the width %d",
                      fn, labels_path, (long long)lineno, path, (long long)iw, height, width);
            failed = 1;
            break;
        }
        widest = iw > widest ? iw : widest;
    }
    if (!failed && ferror(f)) {
        hlr__fail(HLR_EIO, "%s: cannot read %s", fn, labels_path);
        failed = 1;
    }
    if (!failed && n == 0) {
        hlr__fail(HLR_EFORMAT, "%s: %s names no image", fn, labels_path);
        failed = 1;
    }
    fclose(f);
    if (!failed) {
        const int64_t W = width > 0 ? width : widest;
        float *x = hlr__alloc_or_fail((size_t)(n * height * W), sizeof *x, fn);
        int32_t *widths = hlr__alloc_or_fail((size_t)n, sizeof *widths, fn);
        int32_t *targets = hlr__alloc_or_fail((size_t)(n * max_len), sizeof *targets, fn);
        if (x && widths && targets) {
            for (int64_t i = 0; i < n; i++) {
                const int64_t iw = items[i].img->shape[2];
                const float *src = hlr_tensor_f32(items[i].img);
                for (int64_t y = 0; y < height; y++)
                    memcpy(x + (i * height + y) * W, src + y * iw, (size_t)iw * sizeof *x);
                widths[i] = (int32_t)iw;
                for (int k = 0; k < max_len; k++)
                    targets[i * max_len + k] = k < items[i].n ? items[i].labels[k] : -1;
            }
            d = hlr_dataset_from_sequences(3, (int64_t[]){1, height, W}, n, x, widths, targets, max_len, ncp + 1);
        }
        hlr__free(x);
        hlr__free(widths);
        hlr__free(targets);
    }
    for (int64_t i = 0; i < n; i++) {
        hlr_tensor_free(items[i].img);
        hlr__free(items[i].labels);
    }
    hlr__free(items);
    return d;
}

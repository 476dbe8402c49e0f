/*
 * common.c -- see common.h.
 */
#include "common.h"

#include <dlfcn.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *data_dir(const char *from_option)
{
    if (from_option)
        return from_option;
    const char *env = getenv("HLR_DATA_DIR");
    return env && *env ? env : "data/mnist";
}

/* Prefer the gzipped file, fall back to the raw one. */
static void find_file(char *out, size_t cap, const char *dir, const char *prefix, const char *kind)
{
    snprintf(out, cap, "%s/%s-%s.gz", dir, prefix, kind);
    if (access(out, R_OK) == 0)
        return;
    snprintf(out, cap, "%s/%s-%s", dir, prefix, kind);
}

hlr_dataset *load_mnist_part(const char *prog, const char *dir, const char *prefix)
{
    char images[4096], labels[4096];
    find_file(images, sizeof images, dir, prefix, "images-idx3-ubyte");
    find_file(labels, sizeof labels, dir, prefix, "labels-idx1-ubyte");
    hlr_dataset *d = hlr_dataset_load_idx(images, labels);
    if (!d)
        fprintf(stderr, "%s: cannot load the %s data: %s (run `make data`, or pass --data DIR naming a folder of idx "
                "files)\n", prog, prefix, hlr_last_error());
    return d;
}

void print_confusion(FILE *out, const int64_t *confusion, int classes, const char *const *names)
{
    fprintf(out, "confusion matrix (rows: true class, columns: predicted)\n%12s", "");
    for (int j = 0; j < classes; j++)
        fprintf(out, " %6d", j);
    fprintf(out, "\n");
    for (int i = 0; i < classes; i++) {
        if (names)
            fprintf(out, "%9.9s %2d", names[i], i);
        else
            fprintf(out, "%12d", i);
        for (int j = 0; j < classes; j++)
            fprintf(out, " %6lld", (long long)confusion[i * classes + j]);
        fprintf(out, "\n");
    }
}

void print_class_report(FILE *out, const int64_t *confusion, int classes, const char *const *names)
{
    hlr_class_metrics per[256], mac, wei;
    if (classes > 256 || hlr_classification_report(confusion, classes, per, &mac, &wei) != HLR_OK)
        return;
    fprintf(out, "%12s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
    for (int c = 0; c < classes; c++) {
        char label[32];
        if (names)
            snprintf(label, sizeof label, "%.9s %d", names[c], c);
        else
            snprintf(label, sizeof label, "%d", c);
        fprintf(out, "%12s %9.4f %9.4f %9.4f %9lld\n", label, per[c].precision, per[c].recall, per[c].f1,
                (long long)per[c].support);
    }
    fprintf(out, "%12s %9.4f %9.4f %9.4f %9lld\n", "macro avg", mac.precision, mac.recall, mac.f1,
            (long long)mac.support);
    fprintf(out, "%12s %9.4f %9.4f %9.4f %9lld\n", "weighted avg", wei.precision, wei.recall, wei.f1,
            (long long)wei.support);
}

double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void draw_progress(FILE *out, const hlr_batch_stats *s)
{
    static double last;
    double now = monotonic_now();
    if (s->batch != s->batches && now - last < 0.1)
        return;
    last = now;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int done = (int)(WIDTH * s->samples / (s->total > 0 ? s->total : 1));
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < done ? '=' : '.';
    bar[WIDTH] = '\0';
    double rate = s->seconds > 0 ? (double)s->samples / s->seconds : 0.0;
    double left = rate > 0 ? (double)(s->total - s->samples) / rate : 0.0;
    fprintf(out, "\repoch %d/%d [%s] %lld/%lld  loss %.4f  accuracy %.2f%%  %.0f img/s  %.0f s left \033[K",
            s->epoch, s->epochs, bar, (long long)s->samples, (long long)s->total, s->loss, 100.0 * s->accuracy, rate,
            left);
    fflush(out);
}

/* One panel: the series of a quantity over the epochs, in a box at (x0, y0). */
static void svg_panel(FILE *f, double x0, double y0, double w, double h, const hlr_epoch_stats *e, int n,
                      int accuracy, const char *title)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v[2] = {accuracy ? e[i].train_accuracy : e[i].train_loss, accuracy ? e[i].val_accuracy : e[i].val_loss};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) {
                lo = v[k] < lo ? v[k] : lo;
                hi = v[k] > hi ? v[k] : hi;
            }
    }
    if (!(hi > lo)) {
        lo = isfinite(lo) ? lo - 0.5 : 0.0;
        hi = lo + 1.0;
    }
    double pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#888'/>\n", x0, y0, w, h);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='14' text-anchor='middle'>%s</text>\n", x0 + w / 2, y0 - 8, title);
    for (int t = 0; t <= 4; t++) {
        double v = lo + (hi - lo) * t / 4, y = y0 + h - h * t / 4;
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>%.*f</text>\n", x0 - 4, y + 3,
                accuracy ? 1 : 3, accuracy ? 100 * v : v);
    }
    for (int i = 0; i < n; i++) {
        double x = x0 + (n > 1 ? w * i / (n - 1) : w / 2);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle'>%d</text>\n", x, y0 + h + 14,
                e[i].epoch);
    }
    const char *colour[2] = {"#1f77b4", "#ff7f0e"};
    for (int k = 0; k < 2; k++) {
        int started = 0;
        for (int i = 0; i < n; i++) {
            double v = k == 0 ? (accuracy ? e[i].train_accuracy : e[i].train_loss)
                              : (accuracy ? e[i].val_accuracy : e[i].val_loss);
            if (!isfinite(v))
                continue;
            double x = x0 + (n > 1 ? w * i / (n - 1) : w / 2), y = y0 + h - h * (v - lo) / (hi - lo);
            if (!started)
                fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colour[k]);
            fprintf(f, "%.1f,%.1f ", x, y);
            started = 1;
        }
        if (started)
            fprintf(f, "'/>\n");
        for (int i = 0; i < n; i++) {
            double v = k == 0 ? (accuracy ? e[i].train_accuracy : e[i].train_loss)
                              : (accuracy ? e[i].val_accuracy : e[i].val_loss);
            if (isfinite(v))
                fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
                        x0 + (n > 1 ? w * i / (n - 1) : w / 2), y0 + h - h * (v - lo) / (hi - lo), colour[k]);
        }
    }
}

int write_curves_svg(const char *path, const hlr_epoch_stats *e, int n, const char *title)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int val = 0;
    for (int i = 0; i < n; i++)
        val |= isfinite(e[i].val_loss);
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='760' height='330' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n"
               "<text x='380' y='20' font-size='15' text-anchor='middle'>%s</text>\n", title);
    svg_panel(f, 60, 55, 280, 220, e, n, 0, "loss");
    svg_panel(f, 440, 55, 280, 220, e, n, 1, "accuracy (%)");
    fprintf(f, "<text x='380' y='305' font-size='11' text-anchor='middle'>epoch</text>\n"
               "<rect x='250' y='312' width='12' height='4' fill='#1f77b4'/><text x='266' y='318' font-size='11'>"
               "training</text>\n");
    if (val)
        fprintf(f, "<rect x='400' y='312' width='12' height='4' fill='#ff7f0e'/><text x='416' y='318' "
                   "font-size='11'>validation</text>\n");
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* A confusion matrix as a heat map: cell (true i, predicted j) shaded by the
 * fraction of class i's samples predicted j, on a square-root scale so that
 * a few errors still show beside the diagonal's thousands; each cell shows
 * its count.  The diagonal is blue, the errors orange. */
int write_confusion_svg(const char *path, const int64_t *confusion, int classes, const char *const *names,
                        const char *title)
{
    if (classes < 1 || classes > 256) {
        errno = EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const double cell = classes <= 10 ? 44 : 440.0 / classes, x0 = names ? 130 : 60, y0 = names ? 120 : 70;
    const double w = x0 + classes * cell + 20, h = y0 + classes * cell + 50;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n"
               "<text x='%.1f' y='22' font-size='15' text-anchor='middle'>%s</text>\n"
               "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>predicted class</text>\n",
            w, h, w / 2, title, x0 + classes * cell / 2, names ? 44.0 : 48.0);
    fprintf(f, "<text x='14' y='%.1f' font-size='12' text-anchor='middle' transform='rotate(-90 14 %.1f)'>"
               "true class</text>\n",
            y0 + classes * cell / 2, y0 + classes * cell / 2);
    char label[32];
    for (int i = 0; i < classes; i++) {
        const char *name = names ? names[i] : (snprintf(label, sizeof label, "%d", i), label);
        double cx = x0 + (i + 0.5) * cell;
        if (names) /* long names: slanted above their columns */
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' transform='rotate(-45 %.1f %.1f)'>%s</text>\n", cx,
                    y0 - 6, cx, y0 - 6, name);
        else
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%s</text>\n", cx, y0 - 6, name);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%s</text>\n", x0 - 6,
                y0 + (i + 0.5) * cell + 4, name);
    }
    for (int i = 0; i < classes; i++) {
        int64_t row = 0;
        for (int j = 0; j < classes; j++)
            row += confusion[(size_t)i * classes + j];
        for (int j = 0; j < classes; j++) {
            int64_t c = confusion[(size_t)i * classes + j];
            double t = row > 0 ? sqrt((double)c / (double)row) : 0.0; /* 0..1 */
            /* White to blue (#1f4e99) on the diagonal, white to orange (#d95f02) off it. */
            const int to[2][3] = {{31, 78, 153}, {217, 95, 2}};
            const int *k = to[i != j];
            int r = (int)lround(255 + (k[0] - 255) * t), g = (int)lround(255 + (k[1] - 255) * t),
                b = (int)lround(255 + (k[2] - 255) * t);
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#%02x%02x%02x' stroke='#ddd'/>\n",
                    x0 + j * cell, y0 + i * cell, cell, cell, r, g, b);
            if (c > 0 && cell >= 20)
                fprintf(f, "<text x='%.1f' y='%.1f' font-size='%d' text-anchor='middle' fill='%s'>%lld</text>\n",
                        x0 + (j + 0.5) * cell, y0 + (i + 0.5) * cell + 4, c >= 1000 ? 10 : 11,
                        t > 0.6 ? "white" : "black", (long long)c);
        }
    }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle' fill='#555'>shade: square root of the "
               "fraction of the true class; counts in the cells</text>\n</svg>\n",
            x0 + classes * cell / 2, y0 + classes * cell + 24);
    return fclose(f) == 0 ? 0 : -1;
}

int write_reliability_svg(const char *path, int bins, const int64_t *count, const double *confidence,
                          const double *accuracy, const int64_t *count0, const double *accuracy0,
                          const char *title)
{
    if (bins < 1 || bins > 1000) {
        errno = EINVAL;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const double x0 = 60, y0 = 50, w = 360, h = 300, hh = 70; /* the diagram, then the histogram below */
    int64_t n = 0, n0 = 0, most = 1;
    for (int b = 0; b < bins; b++) {
        n += count[b];
        most = count[b] > most ? count[b] : most;
        if (count0) {
            n0 += count0[b];
            most = count0[b] > most ? count0[b] : most;
        }
    }
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='460' height='%.0f' font-family='sans-serif'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n"
               "<text x='230' y='24' font-size='14' text-anchor='middle'>%s</text>\n"
               "<rect x='%.0f' y='%.0f' width='%.0f' height='%.0f' fill='none' stroke='#888'/>\n"
               "<line x1='%.0f' y1='%.0f' x2='%.0f' y2='%.0f' stroke='#aaa' stroke-dasharray='4 3'/>\n",
            y0 + h + hh + 70, title, x0, y0, w, h, x0, y0 + h, x0 + w, y0);
    for (int t = 0; t <= 4; t++) {
        double v = t / 4.0;
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>%.2f</text>\n", x0 - 4,
                y0 + h - h * v + 3, v);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle'>%.2f</text>\n", x0 + w * v,
                y0 + h + hh + 22, v);
    }
    const double bw = w / bins;
    for (int b = 0; b < bins; b++) {
        double x = x0 + b * bw;
        if (count[b] > 0) { /* accuracy bar, and the gap to the bin's mean confidence in red */
            double ya = y0 + h - h * accuracy[b], yc = y0 + h - h * confidence[b];
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#1f77b4' stroke='white'/>\n", x, ya,
                    bw, y0 + h - ya);
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#d62728' fill-opacity='0.35'/>\n",
                    x, ya < yc ? ya : yc, bw, fabs(yc - ya));
        }
        if (count0 && count0[b] > 0)
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#ff7f0e' "
                       "stroke-width='1.5'/>\n",
                    x + 1, y0 + h - h * accuracy0[b], bw - 2, h * accuracy0[b]);
        double bh = hh * (double)count[b] / (double)most;
        fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#1f77b4' stroke='white'/>\n", x,
                y0 + h + 10 + hh - bh, bw, bh);
        if (count0) {
            double bh0 = hh * (double)count0[b] / (double)most;
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#ff7f0e'/>\n", x + 1,
                    y0 + h + 10 + hh - bh0, bw - 2, bh0);
        }
    }
    fprintf(f, "<text x='16' y='%.1f' font-size='12' text-anchor='middle' transform='rotate(-90 16 %.1f)'>accuracy"
               "</text>\n<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>confidence (the largest "
               "probability)</text>\n<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>samples</text>\n",
            y0 + h / 2, y0 + h / 2, x0 + w / 2, y0 + h + hh + 40, x0 - 4, y0 + h + 10 + hh / 2);
    fprintf(f, "<rect x='%.0f' y='%.0f' width='12' height='8' fill='#1f77b4'/><text x='%.0f' y='%.0f' "
               "font-size='11'>accuracy%s (%lld samples)</text>\n",
            x0, y0 + h + hh + 52, x0 + 16, y0 + h + hh + 60, count0 ? " after" : "", (long long)n);
    if (count0)
        fprintf(f, "<rect x='%.0f' y='%.0f' width='12' height='8' fill='none' stroke='#ff7f0e'/><text x='%.0f' "
                   "y='%.0f' font-size='11'>before (%lld)</text>\n",
                x0 + 250, y0 + h + hh + 52, x0 + 266, y0 + h + hh + 60, (long long)n0);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- pictures ---- */

void example_put(picture *p, int x, int y, const unsigned char rgb[3])
{
    memcpy(p->rgb + 3 * ((size_t)y * p->w + x), rgb, 3);
}

/* libpng's errors jump back into write_png(), which reports the failure (libpng would print and abort). */
static void png_failed(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void png_warned(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* PNG, 8-bit RGB (channels 3) or RGBA (4), written by libpng; 0, or -1 when libpng failed (a write error, no
 * memory). */
static int write_png_px(FILE *f, int w, int h, const unsigned char *px, int channels)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_failed, png_warned);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        return -1;
    }
    /* png and info are not changed after this point, so they are intact after a longjmp. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 9);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)channels * (size_t)y * (size_t)w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int example_png_bytes(const picture *p, unsigned char **out, size_t *n)
{
    return example_png_pixels(p->w, p->h, p->rgb, 3, out, n);
}

int example_png_pixels(int w, int h, const unsigned char *px, int channels, unsigned char **out, size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return -1;
    int rc = write_png_px(f, w, h, px, channels);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        return -1;
    }
    *out = (unsigned char *)buf;
    *n = len;
    return 0;
}

void example_draw_image(picture *pic, int x0, const float *v, const float *a, int64_t C, int64_t h, int64_t w,
                        int zoom)
{
    float top = 0;
    for (int64_t i = 0; a && i < h * w * C; i++)
        top = fabsf(a[i]) > top ? fabsf(a[i]) : top;
    for (int64_t y = 0; y < h * zoom; y++)
        for (int64_t x = 0; x < w * zoom; x++) {
            int64_t i = (y / zoom) * w + x / zoom;
            double g = 0, t = 0; /* the mean over the channels */
            for (int64_t c = 0; c < C; c++) {
                g += v[c * h * w + i] / (double)C;
                t += (a && top > 0 ? fabsf(a[c * h * w + i]) / top : 0) / (double)C;
            }
            g = g < 0 ? 0 : g > 1 ? 1 : g;
            unsigned char rgb[3] = {(unsigned char)(255 * g), (unsigned char)(255 * g), (unsigned char)(255 * g)};
            if (a) { /* heat: dark red at small values to yellow at the largest, over a dimmed image */
                double r = 0.35 * g + 0.65 * fmin(1.0, 2 * t), gg = 0.35 * g + 0.65 * fmax(0.0, 2 * t - 1);
                rgb[0] = (unsigned char)(255 * r), rgb[1] = (unsigned char)(255 * gg);
                rgb[2] = (unsigned char)(255 * 0.35 * g);
            }
            example_put(pic, (int)(x0 + x), (int)y, rgb);
        }
}

static int write_png(FILE *f, const picture *p) { return write_png_px(f, p->w, p->h, p->rgb, 3); }

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Write the picture as PNG (.png), grey PGM P5 (.pgm) or PPM P6 (anything else). */
int example_write_picture(const char *prog, const char *path, const picture *p)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    int rc = 0;
    size_t n = (size_t)p->w * p->h;
    if (ends_with(path, ".png") || ends_with(path, ".PNG")) {
        rc = write_png(f, p);
    } else if (ends_with(path, ".pgm") || ends_with(path, ".PGM")) {
        fprintf(f, "P5\n%d %d\n255\n", p->w, p->h);
        for (size_t i = 0; i < n; i++) {
            const unsigned char *c = p->rgb + 3 * i;
            fputc((int)(0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2] + 0.5f), f);
        }
    } else {
        fprintf(f, "P6\n%d %d\n255\n", p->w, p->h);
        fwrite(p->rgb, 3, n, f);
    }
    if (ferror(f))
        rc = -1;
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "%s: cannot write %s\n", prog, path);
        return -1;
    }
    return 0;
}

/* ---- JSON output ---- */

/* The length of the valid UTF-8 sequence at p, or 0 when it is not one. */
static int utf8_length(const unsigned char *p)
{
    int n;
    unsigned long cp, least;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0)
        n = 2, cp = p[0] & 0x1F, least = 0x80;
    else if ((p[0] & 0xF0) == 0xE0)
        n = 3, cp = p[0] & 0x0F, least = 0x800;
    else if ((p[0] & 0xF8) == 0xF0)
        n = 4, cp = p[0] & 0x07, least = 0x10000;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* s as a JSON string.  A file name need not be UTF-8: a byte that is not
 * part of a valid sequence becomes U+FFFD, so the line stays valid JSON. */
void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        int n = utf8_length(p);
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            const char *esc = *p == '\n'   ? "\\n"
                              : *p == '\r' ? "\\r"
                              : *p == '\t' ? "\\t"
                              : *p == '\b' ? "\\b"
                              : *p == '\f' ? "\\f"
                                           : NULL;
            if (esc)
                fputs(esc, f);
            else
                fprintf(f, "\\u%04x", *p);
        } else if (n == 0) {
            fputs("\\ufffd", f);
            n = 1;
        } else {
            fwrite(p, 1, (size_t)n, f);
        }
        p += n ? n : 1;
    }
    fputc('"', f);
}

/* A probability as a JSON number (null should a model give NaN). */
void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

/* ---- --distributed ---- */

example_distributed example_dist = {.d = {.rank = 0, .size = 1}};

int example_start_distributed(const char *prog, int *argc, char ***argv)
{
    example_distributed *x = &example_dist;
    x->lib = dlopen("libhlr-mpi.so.0", RTLD_NOW | RTLD_LOCAL);
    hlr_status (*init)(int *, char ***, hlr_distributed *) = NULL;
    if (x->lib) {
        *(void **)&init = dlsym(x->lib, "hlr_mpi_init");
        *(void **)&x->stats = dlsym(x->lib, "hlr_mpi_stats");
        *(void **)&x->finalize = dlsym(x->lib, "hlr_mpi_finalize");
    }
    if (!init || !x->stats || !x->finalize) {
        const char *why = dlerror();
        fprintf(stderr, "%s: --distributed needs libhlr-mpi (build it with `make mpi`): %s\n", prog,
                why ? why : "a symbol is missing");
        x->lib = NULL;
        return 1;
    }
    if (init(argc, argv, &x->d) != HLR_OK) {
        fprintf(stderr, "%s: --distributed: MPI did not start\n", prog);
        x->lib = NULL;
        return 1;
    }
    if (x->d.rank != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "%s: rank %d: cannot silence standard output: %s\n", prog, x->d.rank, strerror(errno));
        return 1;
    }
    return 0;
}

void example_stop_distributed(void)
{
    if (example_dist.finalize)
        example_dist.finalize();
}

void example_print_distributed(int batch, int after)
{
    const example_distributed *x = &example_dist;
    if (x->d.size < 2)
        return;
    if (!after) {
        printf("data-parallel: %d processes x batch %d = global batch %d; gradients averaged after each batch\n",
               x->d.size, batch, x->d.size * batch);
        return;
    }
    int64_t calls = 0, bytes = 0;
    double seconds = 0;
    x->stats(&calls, &seconds, &bytes);
    if (calls > 0)
        printf("all-reduce (rank 0): %lld calls, %.3f ms and %.1f KiB each on average\n", (long long)calls,
               1e3 * seconds / (double)calls, (double)bytes / (double)calls / 1024.0);
}

/* ---- lines of writing ---- */

/* Digits models: the ink INK_H of the canvas's 32 pixels high, two columns in (a generated string's ink
 * spans about that much with its jitter: on 300 pictures of test strings, 22, 24, 26, 28 and 30 gave CER
 * 4.43, 3.00, 1.65, 1.35 and 1.50 %). */
#define INK_H 28
int example_line_canvas(const hlr_tensor *img, int lines, int64_t H, int64_t W, int flags, float *canvas,
                        int64_t *width)
{
    const int64_t x0 = lines ? 0 : 2;
    hlr_tensor *line = hlr_image_line(img, (int)H, lines ? 2 : (int)(H - INK_H) / 2, flags);
    if (!line)
        return -1;
    const int64_t w = hlr_tensor_dim(line, 2);
    const float *p = hlr_tensor_f32(line);
    memset(canvas, 0, (size_t)(H * W) * sizeof *canvas);
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < w && x + x0 < W; x++)
            canvas[y * W + x + x0] = p[y * w + x];
    hlr_tensor_free(line);
    *width = w + x0 < W ? w + x0 : W;
    return w + x0 > W;
}

int example_utf8_offsets(const char *a, int *off, int cap)
{
    int n = 0;
    for (int i = 0; a[i];) {
        unsigned char c = (unsigned char)a[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || n == cap)
            return -1;
        for (int k = 1; k < len; k++)
            if (((unsigned char)a[i + k] & 0xC0) != 0x80)
                return -1;
        off[n++] = i;
        i += len;
    }
    off[n] = (int)strlen(a);
    return n;
}

double example_ctc_text(const char *alphabet, const int *off, int C, const int32_t *labels, const float *conf, int len,
                        double lp, char *text)
{
    size_t at = 0;
    double least = 1.0;
    for (int k = 0; k < len; k++) {
        int c = labels[k] < C ? labels[k] : 0;
        memcpy(text + at, alphabet + off[c], (size_t)(off[c + 1] - off[c]));
        at += (size_t)(off[c + 1] - off[c]);
        least = conf[k] < least ? conf[k] : least;
    }
    text[at] = '\0';
    return len ? least : exp(lp);
}

int example_parse_views(const char *prog, const char *s, double *f)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        if (end == p || errno || !(v >= 0.5 && v <= 2.0) || (*end && *end != ',') || n == EXAMPLE_MAX_VIEWS - 1) {
            fprintf(stderr,
                    "%s: --views wants up to %d stretch factors between 0.5 and 2, comma-separated "
                    "(e.g. 1.15,1.35), not '%s'\n",
                    prog, EXAMPLE_MAX_VIEWS - 1, s);
            return -1;
        }
        f[n++] = v;
        p = *end ? end + 1 : end;
        if (*end && !*p) { /* a trailing comma */
            fprintf(stderr, "%s: --views ends with a comma: '%s'\n", prog, s);
            return -1;
        }
    }
    if (n == 0)
        fprintf(stderr, "%s: --views wants at least one stretch factor (e.g. 1.15,1.35)\n", prog);
    return n ? n : -1;
}

int64_t example_stretched_width(int64_t w, double f, int64_t W)
{
    const int64_t nw = (int64_t)floor(w * f + 0.5);
    return nw < 1 ? 1 : nw > W ? W : nw;
}

void example_stretch_columns(const float *src, int64_t src_stride, float *dst, int64_t H, int64_t W, int64_t w,
                             int64_t nw)
{
    for (int64_t y = 0; y < H; y++) {
        const float *s = src + y * src_stride;
        float *d = dst + y * W;
        for (int64_t x = 0; x < nw; x++) { /* the centre of column x, in the source's columns */
            const double sx = (x + 0.5) * (double)w / (double)nw - 0.5;
            const int64_t i = (int64_t)floor(sx);
            const double t = sx - (double)i;
            const float a = i >= 0 && i < w ? s[i] : 0.0f, b = i + 1 >= 0 && i + 1 < w ? s[i + 1] : 0.0f;
            d[x] = (float)((1.0 - t) * a + t * b);
        }
        for (int64_t x = nw; x < W; x++)
            d[x] = 0.0f;
    }
}

double example_ctc_log_likelihood(const float *logits, int T, int C, const int32_t *labels, int n)
{
    int32_t len = T, tl = n, dummy = 1;
    float loss = NAN;
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 3, (int64_t[]){1, T, C}, (void *)logits);
    hlr_tensor *il = hlr_tensor_wrap(HLR_I32, 1, (int64_t[]){1}, &len);
    hlr_tensor *tg = hlr_tensor_wrap(HLR_I32, 2, (int64_t[]){1, n > 0 ? n : 1}, n > 0 ? (void *)labels : &dummy);
    hlr_tensor *tlen = hlr_tensor_wrap(HLR_I32, 1, (int64_t[]){1}, &tl);
    const int ok =
        x && il && tg && tlen && hlr_ctc_loss(x, il, tg, tlen, 0, HLR_REDUCTION_SUM, 0, &loss, NULL) == HLR_OK;
    hlr_tensor_free(x);
    hlr_tensor_free(il);
    hlr_tensor_free(tg);
    hlr_tensor_free(tlen);
    return ok ? -(double)loss : NAN;
}

int example_ctc_views(const float *const *logits, const int *T, int views, int C, int32_t *labels, int *from)
{
    int maxT = 1;
    for (int v = 0; v < views; v++)
        maxT = T[v] > maxT ? T[v] : maxT;
    int32_t *cand = malloc((size_t)views * (size_t)maxT * sizeof *cand); /* a best path has at most T labels */
    int len[EXAMPLE_MAX_VIEWS], best = -1, rc = -1;
    double top = -INFINITY;
    if (!cand || views < 1 || views > EXAMPLE_MAX_VIEWS) {
        fprintf(stderr, "example_ctc_views: %s\n", cand ? "1 to EXAMPLE_MAX_VIEWS readings" : "out of memory");
        goto out;
    }
    for (int v = 0; v < views; v++) {
        int32_t *c = cand + (size_t)v * maxT;
        if (hlr_ctc_decode(logits[v], T[v], C, 0, 0, NULL, c, NULL, T[v], &len[v], NULL) != HLR_OK)
            goto out;
        int seen = 0; /* the same text from an earlier reading: scored already */
        for (int u = 0; u < v && !seen; u++)
            seen = len[u] == len[v] && !memcmp(cand + (size_t)u * maxT, c, (size_t)len[v] * sizeof *c);
        if (seen)
            continue;
        double sum = 0.0;
        for (int u = 0; u < views; u++) {
            const double lp = example_ctc_log_likelihood(logits[u], T[u], C, c, len[v]);
            if (isnan(lp))
                goto out;
            sum += lp;
        }
        if (best < 0 || sum > top)
            best = v, top = sum;
    }
    memcpy(labels, cand + (size_t)best * maxT, (size_t)len[best] * sizeof *labels);
    *from = best;
    rc = len[best];
out:
    free(cand);
    return rc;
}

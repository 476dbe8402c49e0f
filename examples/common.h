/*
 * common.h -- helpers the example programs share: finding and loading the
 * MNIST idx files, and printing a confusion matrix.
 */
#ifndef HLR_EXAMPLES_COMMON_H
#define HLR_EXAMPLES_COMMON_H

#include <hlr/hlr.h>
#include <stdio.h>

/* The data folder: --data DIR if given, else $HLR_DATA_DIR, else data/mnist. */
const char *data_dir(const char *from_option);

/* Load `<dir>/<prefix>-images-idx3-ubyte[.gz]` and its labels ("train" or "t10k").
 * On failure prints one line, starting with prog, and returns NULL. */
hlr_dataset *load_mnist_part(const char *prog, const char *dir, const char *prefix);

/* Print a classes x classes confusion matrix (rows: true class). */
void print_confusion(FILE *out, const int64_t *confusion, int classes, const char *const *names);

/* Print per-class precision, recall, F1 and support, and their macro and
 * weighted means, from a confusion matrix (hlr_classification_report). */
void print_class_report(FILE *out, const int64_t *confusion, int classes, const char *const *names);

/* Seconds on a monotonic clock, for timing. */
double monotonic_now(void);

/* s as a JSON string (a byte outside valid UTF-8 becomes U+FFFD, so the output stays valid JSON). */
void json_string(FILE *f, const char *s);
/* v as a JSON number (null when not finite). */
void json_number(FILE *f, double v);

/* A progress line for the per-batch callback on a terminal: bar, rate, time left
 * (redrawn in place with \r, at most ten times a second; cleared by the epoch's line). */
void draw_progress(FILE *out, const hlr_batch_stats *s);

/* Learning curves as an SVG picture: loss and accuracy per epoch, training and
 * (where present) validation.  0, or -1 with errno set. */
int write_curves_svg(const char *path, const hlr_epoch_stats *epochs, int n, const char *title);
/* A reliability diagram (Guo et al. 2017) as SVG: per confidence bin (bins equal-width bins), the accuracy as
 * a bar against the diagonal of perfect calibration, and the bin's share of the samples below; a second set
 * (count0, accuracy0; NULL for none) is drawn as outlines, e.g. before temperature scaling.  0, or -1 with errno. */
int write_reliability_svg(const char *path, int bins, const int64_t *count, const double *confidence,
                          const double *accuracy, const int64_t *count0, const double *accuracy0,
                          const char *title);
/* The confusion matrix (classes x classes, rows true) as an SVG heat map; names may be NULL (0, 1, ...).
 * 0, or -1 with errno set. */
int write_confusion_svg(const char *path, const int64_t *confusion, int classes, const char *const *names,
                        const char *title);

/* ---- --distributed: data-parallel training through libhlr-mpi, loaded at run time ---- */

/* The state of --distributed; .d is {rank 0, size 1} and .lib NULL when not distributed. */
typedef struct example_distributed {
    void *lib; /* libhlr-mpi, dlopen'ed */
    hlr_distributed d;
    void (*stats)(int64_t *calls, double *seconds, int64_t *bytes);
    void (*finalize)(void);
} example_distributed;
extern example_distributed example_dist;

/* Load libhlr-mpi and start MPI; ranks other than 0 print nothing on stdout.  0, or 1 after a line on stderr. */
int example_start_distributed(const char *prog, int *argc, char ***argv);
/* MPI_Finalize when example_start_distributed started it. */
void example_stop_distributed(void);
/* Before training (after 0): what each process does; after (1): what the gradient all-reduces cost. */
void example_print_distributed(int batch, int after);

/* ---- pictures ---- */

/* An 8-bit RGB picture, w x h, rows top down. */
typedef struct picture {
    int w, h;
    unsigned char *rgb;
} picture;
/* Set pixel (x, y) to rgb. */
void example_put(picture *p, int x, int y, const unsigned char rgb[3]);
/* Write the picture as PNG (.png, through libpng), grey PGM P5 (.pgm) or PPM P6 (anything else);
 * 0, or -1 after a line on stderr naming prog and the path. */
int example_write_picture(const char *prog, const char *path, const picture *p);
/* The picture as PNG bytes in memory (libpng): *out is malloc'ed (free it), *n its length; 0, or -1. */
int example_png_bytes(const picture *p, unsigned char **out, size_t *n);
/* w x h pixels of 3 (RGB) or 4 (RGBA) bytes as PNG bytes in memory, as example_png_bytes(). */
int example_png_pixels(int w, int h, const unsigned char *px, int channels, unsigned char **out, size_t *n);
/* Draw an image (C channels of h x w values in [0, 1], shown as their mean) zoomed by zoom at column x0:
 * grey, or with a (attribution values, any sign; NULL for none) as heat over the dimmed image, dark red at
 * small |a| to yellow at the largest. */
void example_draw_image(picture *pic, int x0, const float *v, const float *a, int64_t C, int64_t h, int64_t w,
                        int zoom);

/* ---- lines of writing (bin/hlr-read, bin/hlr-serve) ---- */

/* A picture (1, h, w), white = 1, as a CTC model of hlr-read's reads it, on its (1, H, W) canvas: the
 * line of ink (hlr_image_line: made bright, cropped, scaled, padded) from the left, cut at W.  lines:
 * a lines model (pad 2, as hlr_dataset_load_lines made its pictures); else a digits model (the ink 28 of
 * 32 pixels high, two columns in).  flags: hlr_image_line's (0, or HLR_IMAGE_PHOTO for a photograph).
 * *width: the line's columns on the canvas.  Returns 1 when it was cut, 0 when not, -1 on error
 * (hlr_last_error() says why). */
int example_line_canvas(const hlr_tensor *img, int lines, int64_t H, int64_t W, int flags, float *canvas,
                        int64_t *width);
/* The byte offset of each UTF-8 character of an alphabet (at most cap, off[count] = its length); the
 * count, or -1 when it is not UTF-8 or has more than cap characters. */
int example_utf8_offsets(const char *a, int *off, int cap);
/* The text of a CTC decoding (hlr_ctc_decode's len labels, each an index into the alphabet whose character
 * offsets are off, C of them; a label past them reads as the blank's) into text (at least 4 len + 1 bytes);
 * returns the confidence: the least sure character's, or exp(lp) for an empty reading. */
double example_ctc_text(const char *alphabet, const int *off, int C, const int32_t *labels, const float *conf, int len,
                        double lp, char *text);

/* Reading a picture more than one way (hlr-read --views): its line also stretched across, each reading's
 * best path a candidate, and the candidate all readings together find likeliest kept. */
#define EXAMPLE_MAX_VIEWS 5
/* Parses "F,F,..." (each factor in [0.5, 2], at most EXAMPLE_MAX_VIEWS - 1 of them) into f; the count, or
 * -1 (with one line on stderr naming prog) when it is not such a list. */
int example_parse_views(const char *prog, const char *s, double *f);
/* The width of a line of w columns stretched by f, within [1, W]. */
int64_t example_stretched_width(int64_t w, double f, int64_t W);
/* The first w columns of each of the H rows of src (rows src_stride floats apart) resampled linearly to
 * nw columns (nw <= W) of dst, a (H, W) canvas, the rest of dst zero. */
void example_stretch_columns(const float *src, int64_t src_stride, float *dst, int64_t H, int64_t W, int64_t w,
                             int64_t nw);
/* log p(labels | one reading's scores: T steps of C, the blank 0) under CTC (hlr_ctc_loss); -inf when no
 * alignment fits, NAN on an error (hlr_last_error() says why). */
double example_ctc_log_likelihood(const float *logits, int T, int C, const int32_t *labels, int n);
/* Of the best paths of `views` readings of one picture (logits[v]: T[v] steps of C scores, the blank 0),
 * the one with the largest CTC log-likelihood summed over all readings (each computed by hlr_ctc_loss).
 * Its labels go to labels (room for the largest T[v]), its number of labels is returned (-1 on an error:
 * hlr_last_error() says why); *from receives the first reading whose own best path it is. */
int example_ctc_views(const float *const *logits, const int *T, int views, int C, int32_t *labels, int *from);

#endif

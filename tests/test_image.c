/*
 * test_image.c -- hlr_image_load and hlr_image_preprocess_mnist: PNG files
 * of every colour type and bit depth (written here with libpng, interlaced
 * or not) and PGM files (written by hand) decode to the grey values they
 * hold; damaged, hostile and special files fail cleanly; the MNIST
 * preprocessing puts a digit where MNIST has it; and MNIST test digits
 * drawn large, off-centre and dark on light, as a user's picture would be,
 * are classified as well as the originals.
 */
#include "testutil_internal.h"

#include <dirent.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

Suite *suite_image(void);

/* ---- the temporary folder (an unchecked fixture: made and removed by the runner) ---- */

static char tmp_dir[64];

static void tmp_dir_create(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hlr-test-image-XXXXXX");
    if (!mkdtemp(tmp_dir))
        tmp_dir[0] = '\0';
}

static void tmp_dir_remove(void)
{
    if (!tmp_dir[0])
        return;
    DIR *dir = opendir(tmp_dir);
    if (dir) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
            if (unlink(path) != 0)
                rmdir(path);
        }
        closedir(dir);
    }
    rmdir(tmp_dir);
    tmp_dir[0] = '\0';
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    ck_assert_msg(tmp_dir[0] != '\0', "could not create a temporary folder under /tmp");
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_int_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n ? *n : 1);
    ck_assert_int_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* ---- writing PNG files with libpng ---- */

typedef struct png_spec {
    int w, h, color, depth, interlace;
    const unsigned *samples; /* w * h * channels values within the bit depth (palette: indices) */
    const png_color *palette;
    int npalette;
    const unsigned char *palette_alpha; /* tRNS of a palette image */
    int nalpha;
    const png_color_16 *trans_color; /* tRNS of a grey or RGB image */
} png_spec;

static int channels_of(int color)
{
    switch (color) {
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        return 2;
    case PNG_COLOR_TYPE_RGB:
        return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA:
        return 4;
    default:
        return 1;
    }
}

static void write_png(const char *path, const png_spec *s)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    int ch = channels_of(s->color);
    size_t bpr = (size_t)s->w * ch * (s->depth == 16 ? 2 : 1);
    unsigned char *row = malloc(bpr);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng could not write %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->color,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->palette_alpha || s->trans_color)
        png_set_tRNS(png, info, s->palette_alpha, s->palette_alpha ? s->nalpha : 1, s->trans_color);
    png_write_info(png, info);
    if (s->depth < 8)
        png_set_packing(png); /* one sample a byte in, packed in the file */
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < s->h; y++) {
            for (int i = 0; i < s->w * ch; i++) {
                unsigned v = s->samples[(size_t)y * s->w * ch + i];
                if (s->depth == 16) {
                    row[2 * i] = (unsigned char)(v >> 8);
                    row[2 * i + 1] = (unsigned char)v;
                } else {
                    row[i] = (unsigned char)v;
                }
            }
            png_write_row(png, row);
        }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    ck_assert_int_eq(fclose(f), 0);
}

/* An 8-bit grey PNG of px (w x h bytes). */
static void write_grey_png(const char *path, int w, int h, const unsigned char *px)
{
    unsigned *s = malloc((size_t)w * h * sizeof *s);
    for (int i = 0; i < w * h; i++)
        s[i] = px[i];
    write_png(path, &(png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = 8, .samples = s});
    free(s);
}

/* ---- what an image should decode to ---- */

static hlr_tensor *load_ok(const char *path, int flags)
{
    hlr_tensor *t = hlr_image_load(path, flags);
    ck_assert_msg(t != NULL, "hlr_image_load(%s, %d) failed: %s", path, flags, hlr_last_error());
    return t;
}

static void expect_image(const hlr_tensor *t, int w, int h, const double *want, const char *what)
{
    ck_assert_int_eq(hlr_tensor_dtype(t), HLR_F32);
    ck_assert_int_eq(hlr_tensor_ndim(t), 3);
    ck_assert_msg(hlr_tensor_dim(t, 0) == 1 && hlr_tensor_dim(t, 1) == h && hlr_tensor_dim(t, 2) == w,
                  "%s: shape (%lld, %lld, %lld), expected (1, %d, %d)", what, (long long)hlr_tensor_dim(t, 0),
                  (long long)hlr_tensor_dim(t, 1), (long long)hlr_tensor_dim(t, 2), h, w);
    const float *got = hlr_tensor_f32(t);
    for (int i = 0; i < w * h; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 2e-6, "%s: pixel %d (row %d, column %d) is %.7f, expected %.7f", what,
                      i, i / w, i % w, (double)got[i], want[i]);
}

/* Random samples for a w x h image of `channels` channels of `depth` bits. */
static unsigned *random_samples(int w, int h, int channels, int depth, unsigned long long seed)
{
    unsigned *s = malloc((size_t)w * h * channels * sizeof *s);
    unsigned top = depth == 16 ? 65535u : (1u << depth) - 1u;
    for (int i = 0; i < w * h * channels; i++)
        s[i] = (unsigned)(test_rand(&seed) * (float)(top + 1)) % (top + 1);
    return s;
}

static double lum(double r, double g, double b)
{
    return 0.299 * r + 0.587 * g + 0.114 * b;
}

/* Write, load (flags 0) and compare with the expected grey values. */
static void round_trip(const png_spec *s, const double *want, const char *what)
{
    char path[256], label[160];
    for (int interlace = 0; interlace < 2; interlace++) {
        png_spec t = *s;
        t.interlace = interlace;
        snprintf(label, sizeof label, "%s%s", what, interlace ? ", interlaced" : "");
        tmp_path(path, sizeof path, "round-trip.png");
        write_png(path, &t);
        hlr_tensor *img = load_ok(path, 0);
        expect_image(img, s->w, s->h, want, label);
        hlr_tensor_free(img);
    }
}

START_TEST(test_png_grey_every_bit_depth)
{
    static const int depths[] = {1, 2, 4, 8, 16};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        int d = depths[k], w = 13, h = 7;
        unsigned *s = random_samples(w, h, 1, d, 11 + k);
        double want[13 * 7];
        for (int i = 0; i < w * h; i++)
            want[i] = s[i] / (d == 16 ? 65535.0 : (double)((1 << d) - 1));
        char what[64];
        snprintf(what, sizeof what, "grey, %d bits", d);
        round_trip(&(png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = d, .samples = s}, want, what);
        free(s);
    }
}
END_TEST

START_TEST(test_png_grey_alpha_and_rgb_and_rgba_are_composited_onto_white)
{
    static const int colors[] = {PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    for (int c = 0; c < 3; c++)
        for (int d = 8; d <= 16; d += 8) {
            int w = 9, h = 6, ch = channels_of(colors[c]);
            unsigned *s = random_samples(w, h, ch, d, 100 + 10 * c + d);
            double top = d == 16 ? 65535.0 : 255.0, want[9 * 6];
            /* a fully transparent and a fully opaque pixel, whatever the random values */
            if (ch == 2 || ch == 4) {
                s[ch - 1] = 0;
                s[2 * ch - 1] = (unsigned)top;
            }
            for (int i = 0; i < w * h; i++) {
                const unsigned *p = s + i * ch;
                double v = ch >= 3 ? lum(p[0] / top, p[1] / top, p[2] / top) : p[0] / top;
                double a = ch == 2 || ch == 4 ? p[ch - 1] / top : 1.0;
                want[i] = a * v + (1 - a);
            }
            ck_assert_msg(fabs(want[0] - 1.0) < 1e-12 || ch == 3, "the transparent pixel is white");
            char what[64];
            snprintf(what, sizeof what, "colour type %d, %d bits", colors[c], d);
            round_trip(&(png_spec){.w = w, .h = h, .color = colors[c], .depth = d, .samples = s}, want, what);
            free(s);
        }
}
END_TEST

START_TEST(test_png_palette_every_bit_depth_with_and_without_transparency)
{
    static const int depths[] = {1, 2, 4, 8};
    png_color pal[256];
    unsigned char alpha[256];
    unsigned long long seed = 5;
    for (int i = 0; i < 256; i++) {
        pal[i].red = (png_byte)(test_rand(&seed) * 256);
        pal[i].green = (png_byte)(test_rand(&seed) * 256);
        pal[i].blue = (png_byte)(test_rand(&seed) * 256);
        alpha[i] = (unsigned char)(test_rand(&seed) * 256);
    }
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++)
        for (int with_alpha = 0; with_alpha < 2; with_alpha++) {
            int d = depths[k], w = 11, h = 5, n = 1 << d;
            unsigned *s = random_samples(w, h, 1, d, 200 + k);
            /* tRNS may be shorter than the palette: the rest is opaque */
            int nalpha = with_alpha ? (n > 2 ? n - 1 : n) : 0;
            double want[11 * 5];
            for (int i = 0; i < w * h; i++) {
                const png_color *c = &pal[s[i]];
                double a = (int)s[i] < nalpha ? alpha[s[i]] / 255.0 : 1.0;
                want[i] = a * lum(c->red / 255.0, c->green / 255.0, c->blue / 255.0) + (1 - a);
            }
            char what[64];
            snprintf(what, sizeof what, "palette, %d bits%s", d, with_alpha ? ", tRNS" : "");
            round_trip(&(png_spec){.w = w,
                                   .h = h,
                                   .color = PNG_COLOR_TYPE_PALETTE,
                                   .depth = d,
                                   .samples = s,
                                   .palette = pal,
                                   .npalette = n,
                                   .palette_alpha = with_alpha ? alpha : NULL,
                                   .nalpha = nalpha},
                       want, what);
            free(s);
        }
}
END_TEST

START_TEST(test_png_transparent_colour_of_grey_and_rgb_is_white)
{
    /* grey, 8 bits: value 77 is transparent */
    unsigned g[6] = {0, 77, 200, 77, 255, 10};
    png_color_16 tg = {.gray = 77};
    double wg[6] = {0, 1, 200 / 255.0, 1, 1, 10 / 255.0};
    round_trip(&(png_spec){.w = 3, .h = 2, .color = PNG_COLOR_TYPE_GRAY, .depth = 8, .samples = g, .trans_color = &tg},
               wg, "grey with a transparent value");
    /* RGB, 16 bits: (1000, 2000, 3000) is transparent */
    unsigned c[12] = {1000, 2000, 3000, 0, 0, 0, 65535, 0, 0, 1000, 2000, 3001};
    png_color_16 tc = {.red = 1000, .green = 2000, .blue = 3000};
    double wc[4] = {1, 0, 0.299, lum(1000 / 65535.0, 2000 / 65535.0, 3001 / 65535.0)};
    round_trip(&(png_spec){.w = 2, .h = 2, .color = PNG_COLOR_TYPE_RGB, .depth = 16, .samples = c, .trans_color = &tc},
               wc, "RGB with a transparent colour");
}
END_TEST

START_TEST(test_png_interlaced_images_of_awkward_sizes)
{
    static const int sizes[][2] = {{1, 1}, {2, 3}, {3, 2}, {5, 7}, {9, 17}, {33, 20}, {1, 40}, {40, 1}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        unsigned *s = random_samples(w, h, 1, 16, 300 + k);
        double *want = malloc((size_t)w * h * sizeof *want);
        for (int i = 0; i < w * h; i++)
            want[i] = s[i] / 65535.0;
        char what[64];
        snprintf(what, sizeof what, "grey 16 bits, %d x %d", w, h);
        round_trip(&(png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_GRAY, .depth = 16, .samples = s}, want, what);
        free(want);
        free(s);
    }
}
END_TEST

START_TEST(test_png_wide_image)
{
    int w = 3000, h = 2;
    unsigned *s = random_samples(w, h, 3, 8, 77);
    double *want = malloc((size_t)w * h * sizeof *want);
    for (int i = 0; i < w * h; i++)
        want[i] = lum(s[3 * i] / 255.0, s[3 * i + 1] / 255.0, s[3 * i + 2] / 255.0);
    round_trip(&(png_spec){.w = w, .h = h, .color = PNG_COLOR_TYPE_RGB, .depth = 8, .samples = s}, want,
               "RGB 3000 x 2");
    free(want);
    free(s);
}
END_TEST

/* ---- PGM ---- */

START_TEST(test_pgm_binary_8_and_16_bit_and_text)
{
    char path[256];
    tmp_path(path, sizeof path, "a.pgm");
    /* P5, maxval 255, a comment in the header */
    unsigned char p5[64];
    int n = snprintf((char *)p5, sizeof p5, "P5\n# made by hand\n3 2\n255\n");
    const unsigned char px[6] = {0, 1, 128, 254, 255, 10};
    memcpy(p5 + n, px, 6);
    write_bytes(path, p5, (size_t)n + 6);
    hlr_tensor *t = load_ok(path, 0);
    double want[6];
    for (int i = 0; i < 6; i++)
        want[i] = px[i] / 255.0;
    expect_image(t, 3, 2, want, "P5 maxval 255");
    hlr_tensor_free(t);

    /* P5, maxval 100 */
    n = snprintf((char *)p5, sizeof p5, "P5 2 2 100 ");
    const unsigned char q[4] = {0, 50, 99, 100};
    memcpy(p5 + n, q, 4);
    write_bytes(path, p5, (size_t)n + 4);
    t = load_ok(path, 0);
    expect_image(t, 2, 2, (double[]){0, 0.5, 0.99, 1}, "P5 maxval 100");
    hlr_tensor_free(t);

    /* P5, 16 bits: maxval 1000 and 65535, big-endian */
    static const long maxvals[] = {1000, 65535};
    for (int k = 0; k < 2; k++) {
        long mv = maxvals[k];
        unsigned vals[5] = {0, 1, (unsigned)mv / 3, (unsigned)mv - 1, (unsigned)mv};
        n = snprintf((char *)p5, sizeof p5, "P5\n5 1\n%ld\n", mv);
        for (int i = 0; i < 5; i++) {
            p5[n + 2 * i] = (unsigned char)(vals[i] >> 8);
            p5[n + 2 * i + 1] = (unsigned char)vals[i];
        }
        write_bytes(path, p5, (size_t)n + 10);
        t = load_ok(path, 0);
        double w16[5];
        for (int i = 0; i < 5; i++)
            w16[i] = vals[i] / (double)mv;
        expect_image(t, 5, 1, w16, "P5 16-bit");
        hlr_tensor_free(t);
    }

    /* P2 with comments and ragged white space */
    const char *p2 = "P2\n# a comment\n3 # width\n2\n15\n0 15 7\n  3\t# a comment among the pixels\n14\n\n1\n";
    write_bytes(path, p2, strlen(p2));
    t = load_ok(path, 0);
    expect_image(t, 3, 2, (double[]){0, 1, 7 / 15.0, 3 / 15.0, 14 / 15.0, 1 / 15.0}, "P2");
    hlr_tensor_free(t);

    /* P2 with a 16-bit maxval */
    p2 = "P2 2 1 65535 65535 32768";
    write_bytes(path, p2, strlen(p2));
    t = load_ok(path, 0);
    expect_image(t, 2, 1, (double[]){1, 32768 / 65535.0}, "P2 16-bit");
    hlr_tensor_free(t);

    /* the same pixels in PGM and PNG decode alike */
    unsigned char big[40 * 30];
    unsigned long long seed = 9;
    for (int i = 0; i < 40 * 30; i++)
        big[i] = (unsigned char)(test_rand(&seed) * 256);
    char png[256];
    tmp_path(png, sizeof png, "same.png");
    write_grey_png(png, 40, 30, big);
    FILE *f = fopen(path, "wb");
    fprintf(f, "P5\n40 30\n255\n");
    fwrite(big, 1, sizeof big, f);
    fclose(f);
    hlr_tensor *a = load_ok(path, 0), *b = load_ok(png, 0);
    ck_assert_int_eq(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), sizeof big * sizeof(float)), 0);
    hlr_tensor_free(a);
    hlr_tensor_free(b);
}
END_TEST

/* path must fail with `code`, and the message mention the path and `fragment` (unless NULL). */
static void expect_fails(const char *path, int flags, hlr_status code, const char *fragment)
{
    hlr_tensor *t = hlr_image_load(path, flags);
    ck_assert_msg(t == NULL, "%s loaded; expected status %d (%s)", path ? path : "NULL", code,
                  fragment ? fragment : "");
    ck_assert_msg(hlr_last_status() == code, "%s: status %d (%s), expected %d", path ? path : "NULL", hlr_last_status(),
                  hlr_last_error(), code);
    if (path)
        ck_assert_error_mentions(path);
    if (fragment)
        ck_assert_error_mentions(fragment);
}

static void expect_pgm_fails(const char *text, size_t n, const char *fragment)
{
    char path[256];
    tmp_path(path, sizeof path, "bad.pgm");
    write_bytes(path, text, n);
    expect_fails(path, 0, HLR_EFORMAT, fragment);
}

START_TEST(test_pgm_damaged_files_fail_naming_the_problem)
{
    expect_pgm_fails("P5 2 1 100 \x00\xC8", 13, "above maxval");
    expect_pgm_fails("P2 2 1 9 3 10", 13, "above maxval");
    expect_pgm_fails("P2 2 1 9 3 x", 12, "not a number");
    expect_pgm_fails("P2 2 1 9 3 -1", 13, "not a number");
    expect_pgm_fails("P5 2 1 0 \x00\x00", 11, "maxval 0");
    expect_pgm_fails("P5 2 1 70000 ", 13, "maxval 70000");
    expect_pgm_fails("P5 0 1 255 ", 11, "0 x 1");
    expect_pgm_fails("P5 100000 100000 255 ", 21, "more than 16384");
    expect_pgm_fails("P5 9999999999 1 255 ", 20, "too large");
    expect_pgm_fails("P5 8192 8193 255 ", 17, "in all");
    expect_pgm_fails("P5 2 x 255 ", 11, "height");
    expect_pgm_fails("P52 1 255 ", 10, "white space");
    expect_pgm_fails("P5 2", 4, "truncated");
    expect_pgm_fails("P6 1 1 255 \x00\x00\x00", 14, "not a PNG or PGM");

    /* P5 truncated at every byte: each shorter file fails */
    char full[64];
    int n = snprintf(full, sizeof full, "P5\n# c\n4 3\n65535\n");
    for (int i = 0; i < 24; i++)
        full[n + i] = (char)(i * 7);
    for (int cut = 0; cut < n + 24; cut++) {
        char path[256];
        tmp_path(path, sizeof path, "cut.pgm");
        write_bytes(path, full, (size_t)cut);
        expect_fails(path, 0, HLR_EFORMAT, NULL);
    }
    char path[256];
    tmp_path(path, sizeof path, "whole.pgm");
    write_bytes(path, full, (size_t)n + 24);
    hlr_tensor_free(load_ok(path, 0));
}
END_TEST

/* ---- damaged, hostile and special files ---- */

/* A PNG of a random RGBA image (incompressible: its IDAT is long). */
static unsigned char *random_png(size_t *n)
{
    char path[256];
    tmp_path(path, sizeof path, "random.png");
    unsigned *s = random_samples(23, 17, 4, 8, 4242);
    write_png(path, &(png_spec){.w = 23, .h = 17, .color = PNG_COLOR_TYPE_RGB_ALPHA, .depth = 8, .samples = s});
    free(s);
    return read_bytes(path, n);
}

START_TEST(test_png_truncated_at_every_offset_fails)
{
    size_t n;
    unsigned char *png = random_png(&n);
    ck_assert_uint_gt(n, 1000);
    char path[256];
    tmp_path(path, sizeof path, "truncated.png");
    for (size_t cut = 0; cut < n; cut++) {
        write_bytes(path, png, cut);
        expect_fails(path, 0, HLR_EFORMAT, NULL);
        if (cut > 8)
            ck_assert_error_mentions("PNG");
    }
    write_bytes(path, png, n);
    hlr_tensor_free(load_ok(path, HLR_IMAGE_MNIST | HLR_IMAGE_DARK_INK));
    free(png);
}
END_TEST

START_TEST(test_png_random_byte_flips_fail_cleanly_or_decode)
{
    size_t n;
    unsigned char *png = random_png(&n), *copy = malloc(n);
    char path[256];
    tmp_path(path, sizeof path, "flipped.png");
    unsigned long long seed = 31337;
    int failed = 0;
    for (int round = 0; round < 1500; round++) {
        memcpy(copy, png, n);
        int flips = 1 + (int)(test_rand(&seed) * 4);
        for (int k = 0; k < flips; k++) {
            /* half the flips in the first 100 bytes, where the headers are */
            size_t at = (size_t)(test_rand(&seed) * (float)(k % 2 ? n : 100)) % n;
            copy[at] ^= (unsigned char)(1 + test_rand(&seed) * 255);
        }
        write_bytes(path, copy, n);
        hlr_tensor *t = hlr_image_load(path, round % 2 ? HLR_IMAGE_MNIST : 0);
        if (!t) {
            ck_assert_msg(hlr_last_status() == HLR_EFORMAT, "round %d: status %d: %s", round, hlr_last_status(),
                          hlr_last_error());
            ck_assert_error_mentions(path);
            failed++;
            continue;
        }
        ck_assert_int_eq(hlr_tensor_ndim(t), 3);
        const float *px = hlr_tensor_f32(t);
        for (int64_t i = 0; i < hlr_tensor_numel(t); i++)
            ck_assert_msg(px[i] >= 0 && px[i] <= 1, "round %d: pixel %lld is %g", round, (long long)i, px[i]);
        hlr_tensor_free(t);
    }
    ck_assert_int_gt(failed, 1000); /* CRCs catch nearly every flip */
    free(copy);
    free(png);
}
END_TEST

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG that declares w x h pixels (grey, 8 bits) and holds no image data. */
static void write_png_header_only(const char *path, uint32_t w, uint32_t h)
{
    unsigned char b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    put_be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    b[24] = 8; /* depth; colour type, compression, filter, interlace 0 */
    put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
    put_be32(b + 33, 0);
    memcpy(b + 37, "IEND", 4);
    put_be32(b + 41, (uint32_t)crc32(0, b + 37, 4));
    write_bytes(path, b, sizeof b);
}

START_TEST(test_png_huge_declared_size_is_refused_before_allocating)
{
    char path[256];
    tmp_path(path, sizeof path, "huge.png");
    write_png_header_only(path, 100000, 1);
    expect_fails(path, 0, HLR_EFORMAT, "more than 16384 a side");
    write_png_header_only(path, 1, 2000000000);
    expect_fails(path, 0, HLR_EFORMAT, "more than 16384 a side");
    write_png_header_only(path, 16384, 16384);
    expect_fails(path, 0, HLR_EFORMAT, "in all");
    write_png_header_only(path, 0x80000000u, 1); /* beyond PNG's own limit */
    expect_fails(path, 0, HLR_EFORMAT, "more than 16384 a side");
    write_png_header_only(path, 0, 5);
    expect_fails(path, 0, HLR_EFORMAT, "0 x 5 pixels");
    /* a size that is allowed, with no data: the missing rows are reported */
    write_png_header_only(path, 300, 200);
    expect_fails(path, 0, HLR_EFORMAT, "bad PNG");
}
END_TEST

/* hlr_image_decode: the same pictures from memory, and hostile bytes refused without naming a file. */
START_TEST(test_decode_from_memory_equals_load_and_refuses_bad_bytes)
{
    size_t n;
    unsigned char *png = random_png(&n);
    char path[256];
    tmp_path(path, sizeof path, "memory.png");
    write_bytes(path, png, n);
    const int flags[] = {0, HLR_IMAGE_DARK_INK, HLR_IMAGE_MNIST | HLR_IMAGE_DARK_INK};
    for (int k = 0; k < 3; k++) {
        hlr_tensor *a = load_ok(path, flags[k]), *b = hlr_image_decode(png, n, flags[k]);
        ck_assert_msg(b != NULL, "hlr_image_decode(flags %d): %s", flags[k], hlr_last_error());
        ck_assert_int_eq(hlr_tensor_numel(a), hlr_tensor_numel(b));
        ck_assert(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), (size_t)hlr_tensor_numel(a) * sizeof(float)) == 0);
        hlr_tensor_free(a);
        hlr_tensor_free(b);
    }
    const unsigned char pgm[] = "P2\n2 1\n4\n0 4\n";
    hlr_tensor *t = hlr_image_decode(pgm, sizeof pgm - 1, 0);
    ck_assert_msg(t != NULL, "%s", hlr_last_error());
    ck_assert(hlr_tensor_f32(t)[0] == 0.0f && hlr_tensor_f32(t)[1] == 1.0f);
    hlr_tensor_free(t);
    /* every truncation fails, and no message names a file */
    for (size_t cut = 0; cut < n; cut += 7) {
        ck_assert_ptr_null(hlr_image_decode(png, cut, 0));
        ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
        ck_assert_msg(strstr(hlr_last_error(), "hlr_image_decode") && !strstr(hlr_last_error(), "/"),
                      "cut at %zu: %s", cut, hlr_last_error());
    }
    ck_assert_ptr_null(hlr_image_decode(NULL, 10, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_image_decode(png, n, HLR_IMAGE_DARK_INK | HLR_IMAGE_LIGHT_INK));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_image_decode("hello, world", 12, 0));
    ck_assert_error_mentions("not a PNG or PGM");
    unsigned char blank[28 * 28];
    memset(blank, 255, sizeof blank);
    char blank_path[256];
    tmp_path(blank_path, sizeof blank_path, "blank.png");
    write_grey_png(blank_path, 28, 28, blank);
    FILE *f = fopen(blank_path, "rb");
    unsigned char buf[4096];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_ptr_null(hlr_image_decode(buf, got, HLR_IMAGE_MNIST));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    free(png);
}
END_TEST

START_TEST(test_other_files_fail_naming_the_path)
{
    char path[256];
    tmp_path(path, sizeof path, "notes.txt");
    write_bytes(path, "hello, world\n", 13);
    expect_fails(path, 0, HLR_EFORMAT, "not a PNG or PGM");
    tmp_path(path, sizeof path, "images-idx3-ubyte");
    write_bytes(path, "\0\0\x08\x03\0\0\0\x01\0\0\0\x01\0\0\0\x01\x7f", 17);
    expect_fails(path, 0, HLR_EFORMAT, "not a PNG or PGM");
    tmp_path(path, sizeof path, "empty.png");
    write_bytes(path, "", 0);
    expect_fails(path, 0, HLR_EFORMAT, "empty");
    tmp_path(path, sizeof path, "no-such-file.png");
    expect_fails(path, 0, HLR_EIO, "cannot open");
    tmp_path(path, sizeof path, "a-folder.png");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    expect_fails(path, 0, HLR_EIO, "not a regular file");
    expect_fails(NULL, 0, HLR_EINVAL, "path is NULL");
    tmp_path(path, sizeof path, "ok.pgm");
    write_bytes(path, "P2 1 1 1 1", 10);
    expect_fails(path, 8, HLR_EINVAL, "unknown flags");
    expect_fails(path, HLR_IMAGE_DARK_INK | HLR_IMAGE_LIGHT_INK, HLR_EINVAL, "together");
}
END_TEST

START_TEST(test_fifo_is_refused_without_blocking)
{
    char pipe[256];
    tmp_path(pipe, sizeof pipe, "pipe.png");
    fifo_guard g;
    fifo_guard_start(&g, pipe);
    hlr_tensor *t = hlr_image_load(pipe, 0);
    hlr_status st = hlr_last_status();
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hlr_last_error());
    int blocked = fifo_guard_stop(&g);
    hlr_tensor_free(t);
    ck_assert_msg(!blocked, "a FIFO blocked hlr_image_load until a writer came");
    ck_assert_ptr_null(t);
    ck_assert_int_eq(st, HLR_EIO);
    ck_assert_msg(strstr(msg, "not a regular file") && strstr(msg, pipe), "message: %s", msg);
}
END_TEST

START_TEST(test_dark_ink_flag_inverts_the_raw_image)
{
    char path[256];
    tmp_path(path, sizeof path, "inv.pgm");
    write_bytes(path, "P2 3 1 4 0 1 4", 14);
    hlr_tensor *t = load_ok(path, HLR_IMAGE_DARK_INK);
    expect_image(t, 3, 1, (double[]){1, 0.75, 0}, "inverted");
    hlr_tensor_free(t);
    t = load_ok(path, HLR_IMAGE_LIGHT_INK); /* alone: the image as it is */
    expect_image(t, 3, 1, (double[]){0, 0.25, 1}, "as it is");
    hlr_tensor_free(t);
}
END_TEST

/* Every allocation, libpng's and zlib's included, refused in turn: each load fails with HLR_ENOMEM
 * (under AddressSanitizer: leaking nothing) until the budget suffices. */
static void expect_clean_out_of_memory(const char *path, int flags)
{
    for (size_t budget = 1;; budget += 61) {
        ck_assert_msg(budget < ((size_t)16 << 20), "%s still fails with %zu bytes", path, budget);
        hlr__alloc_limit(budget);
        hlr_tensor *t = hlr_image_load(path, flags);
        int refused = hlr__alloc_limit_hit();
        hlr__alloc_limit(0);
        if (t) {
            hlr_tensor_free(t);
            return;
        }
        ck_assert_msg(refused && hlr_last_status() == HLR_ENOMEM, "%s with %zu bytes: status %d: %s", path, budget,
                      hlr_last_status(), hlr_last_error());
    }
}

START_TEST(test_out_of_memory_at_every_step_fails_cleanly)
{
    char png[256], pgm[256];
    tmp_path(png, sizeof png, "oom.png");
    unsigned *s = random_samples(20, 9, 4, 16, 99);
    write_png(png, &(png_spec){
                       .w = 20, .h = 9, .color = PNG_COLOR_TYPE_RGB_ALPHA, .depth = 16, .samples = s, .interlace = 1});
    free(s);
    expect_clean_out_of_memory(png, 0);
    tmp_path(pgm, sizeof pgm, "oom.pgm");
    write_bytes(pgm, "P2 4 3 9  9 9 9 9  9 0 9 9  9 9 9 9", 35);
    expect_clean_out_of_memory(pgm, 0);
    expect_clean_out_of_memory(pgm, HLR_IMAGE_MNIST);
}
END_TEST

/* ---- MNIST preprocessing ---- */

/* A 90 x 60 picture of a "7", dark ink (value `ink`) on paper (value `paper`), right of centre. */
static void draw_seven(unsigned char *px, unsigned char paper, unsigned char ink)
{
    int w = 90, h = 60;
    memset(px, paper, (size_t)w * h);
    for (int y = 8; y < 14; y++) /* the bar: x 50..84 */
        for (int x = 50; x < 85; x++)
            px[y * w + x] = ink;
    for (int y = 14; y < 55; y++) /* the stem: from (80, 14) down-left to (62, 54), 6 wide */
        for (int x = 0; x < w; x++) {
            double cx = 80 - (y - 14) * 18.0 / 40.0;
            if (fabs(x - cx) < 3)
                px[y * w + x] = ink;
        }
}

/* Check what the preprocessing promises: (1, 28, 28) in [0, 1], ink bright on black, the ink's
 * box within 20 x 20, its centre of mass within a pixel of (14, 14) (row and column indices). */
static void expect_mnist_like(const hlr_tensor *t, const char *what)
{
    ck_assert_msg(hlr_tensor_ndim(t) == 3 && hlr_tensor_dim(t, 0) == 1 && hlr_tensor_dim(t, 1) == 28 &&
                      hlr_tensor_dim(t, 2) == 28,
                  "%s: not (1, 28, 28)", what);
    const float *px = hlr_tensor_f32(t);
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
    double mass = 0, mx = 0, my = 0, peak = 0;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            float v = px[y * 28 + x];
            ck_assert_msg(v >= 0 && v <= 1, "%s: pixel (%d, %d) is %g", what, x, y, v);
            if (v > 0) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
            mass += v, mx += v * x, my += v * y;
            peak = v > peak ? v : peak;
        }
    ck_assert_msg(peak > 0.9, "%s: the brightest ink is %g", what, peak);
    ck_assert_msg(px[0] == 0 && px[27] == 0 && px[27 * 28] == 0 && px[28 * 28 - 1] == 0, "%s: corners not black", what);
    ck_assert_msg(x1 - x0 + 1 <= 20 && y1 - y0 + 1 <= 20, "%s: the ink spans %d x %d pixels", what, x1 - x0 + 1,
                  y1 - y0 + 1);
    ck_assert_msg(x1 - x0 + 1 >= 19 || y1 - y0 + 1 >= 19, "%s: the ink spans only %d x %d pixels", what, x1 - x0 + 1,
                  y1 - y0 + 1);
    ck_assert_msg(fabs(mx / mass - 14) <= 1 && fabs(my / mass - 14) <= 1, "%s: centre of mass (%.2f, %.2f)", what,
                  mx / mass, my / mass);
}

/* The placement says where each result pixel came from: a dark 40 x 40 square at (10, 20) of a 100 x 100 white
 * picture becomes the 20 x 20 box (2 source pixels a result pixel), its centre moved to (14, 14). */
START_TEST(test_mnist_placement_maps_result_pixels_to_the_source)
{
    hlr_tensor *img = hlr_tensor_new(HLR_F32, 2, (int64_t[]){100, 100});
    float *px = hlr_tensor_f32(img);
    for (int y = 0; y < 100; y++)
        for (int x = 0; x < 100; x++)
            px[y * 100 + x] = x >= 10 && x < 50 && y >= 20 && y < 60 ? 0.0f : 1.0f;
    double place[4];
    hlr_tensor *t = hlr_image_preprocess_mnist_placed(img, 0, place);
    ck_assert_msg(t != NULL, "%s", hlr_last_error());
    ck_assert_double_eq(place[2], 2.0);
    ck_assert_double_eq(place[3], 2.0);
    ck_assert_double_eq(place[0], 2.0);  /* 10 - 4 * 2: the box's column 0 lands on column 4 */
    ck_assert_double_eq(place[1], 12.0); /* 20 - 4 * 2 */
    /* every result pixel is ink exactly where its source rectangle is */
    const float *out = hlr_tensor_f32(t);
    for (int i = 0; i < 28; i++)
        for (int j = 0; j < 28; j++) {
            double sx = place[0] + (j + 0.5) * place[2], sy = place[1] + (i + 0.5) * place[3];
            int ink = sx >= 10 && sx < 50 && sy >= 20 && sy < 60;
            ck_assert_msg((out[i * 28 + j] > 0.5f) == ink, "pixel (%d, %d) is %g", i, j, (double)out[i * 28 + j]);
        }
    /* the same result as without the placement */
    hlr_tensor *u = hlr_image_preprocess_mnist(img, 0);
    ck_assert(memcmp(hlr_tensor_f32(u), out, 28 * 28 * sizeof(float)) == 0);
    hlr_tensor_free(u);
    hlr_tensor_free(t);
    hlr_tensor_free(img);
}
END_TEST

START_TEST(test_mnist_preprocessing_of_a_dark_on_light_stroke)
{
    unsigned char px[90 * 60];
    draw_seven(px, 245, 20);
    char png[256], pgm[256];
    tmp_path(png, sizeof png, "seven.png");
    write_grey_png(png, 90, 60, px);
    hlr_tensor *a = load_ok(png, HLR_IMAGE_MNIST);
    expect_mnist_like(a, "dark on light PNG");
    /* the stem is taller than the bar is wide: 20 rows of ink */
    const float *v = hlr_tensor_f32(a);
    int rows = 0;
    for (int y = 0; y < 28; y++) {
        float s = 0;
        for (int x = 0; x < 28; x++)
            s += v[y * 28 + x];
        rows += s > 0;
    }
    ck_assert_int_eq(rows, 20);

    /* the same from a PGM, from memory, with the polarity said, and light on dark */
    tmp_path(pgm, sizeof pgm, "seven.pgm");
    FILE *f = fopen(pgm, "wb");
    fprintf(f, "P5 90 60 255\n");
    fwrite(px, 1, sizeof px, f);
    fclose(f);
    hlr_tensor *b = load_ok(pgm, HLR_IMAGE_MNIST);
    ck_assert_int_eq(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), 28 * 28 * sizeof(float)), 0);
    hlr_tensor_free(b);
    hlr_tensor *raw = load_ok(png, 0);
    b = hlr_image_preprocess_mnist(raw, 0);
    ck_assert_msg(b != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), 28 * 28 * sizeof(float)), 0);
    hlr_tensor_free(b);
    b = load_ok(png, HLR_IMAGE_MNIST | HLR_IMAGE_DARK_INK);
    ck_assert_int_eq(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), 28 * 28 * sizeof(float)), 0);
    hlr_tensor_free(b);
    /* (H, W) works as (1, H, W) */
    hlr_tensor *flat = hlr_tensor_from(HLR_F32, 2, (int64_t[]){60, 90}, hlr_tensor_f32(raw));
    b = hlr_image_preprocess_mnist(flat, 0);
    ck_assert_msg(b != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(memcmp(hlr_tensor_f32(a), hlr_tensor_f32(b), 28 * 28 * sizeof(float)), 0);
    hlr_tensor_free(b);
    hlr_tensor_free(flat);
    hlr_tensor_free(raw);

    for (int i = 0; i < 90 * 60; i++)
        px[i] = (unsigned char)(255 - px[i]);
    write_grey_png(png, 90, 60, px);
    b = load_ok(png, HLR_IMAGE_MNIST);
    expect_mnist_like(b, "light on dark PNG");
    for (int i = 0; i < 28 * 28; i++)
        ck_assert_msg(fabs(hlr_tensor_f32(a)[i] - hlr_tensor_f32(b)[i]) < 1e-5, "pixel %d differs", i);
    hlr_tensor_free(b);
    /* told the wrong polarity, it finds no ink and says why */
    expect_fails(png, HLR_IMAGE_MNIST | HLR_IMAGE_DARK_INK, HLR_EFORMAT, "polarity");
    hlr_tensor_free(a);
}
END_TEST

START_TEST(test_mnist_preprocessing_of_thin_small_and_grey_pictures)
{
    char path[256];
    tmp_path(path, sizeof path, "one.png");
    /* a "1": 3 pixels wide, 40 tall, near the left edge of a 70 x 50 picture */
    unsigned char one[70 * 50];
    memset(one, 255, sizeof one);
    for (int y = 5; y < 45; y++)
        for (int x = 3; x < 6; x++)
            one[y * 70 + x] = 0;
    write_grey_png(path, 70, 50, one);
    hlr_tensor *t = load_ok(path, HLR_IMAGE_MNIST);
    expect_mnist_like(t, "a thin 1");
    hlr_tensor_free(t);

    /* a dot of 2 x 2 pixels in a 5 x 4 picture: enlarged to 20 x 20 */
    unsigned char dot[5 * 4];
    memset(dot, 255, sizeof dot);
    dot[1 * 5 + 2] = dot[1 * 5 + 3] = dot[2 * 5 + 2] = dot[2 * 5 + 3] = 0;
    write_grey_png(path, 5, 4, dot);
    t = load_ok(path, HLR_IMAGE_MNIST);
    expect_mnist_like(t, "a small dot");
    hlr_tensor_free(t);

    /* grey paper (0.8), grey ink (0.3): the contrast is stretched, the ink reaches 1 */
    unsigned char seven[90 * 60];
    draw_seven(seven, 204, 77);
    write_grey_png(path, 90, 60, seven);
    t = load_ok(path, HLR_IMAGE_MNIST);
    expect_mnist_like(t, "grey ink on grey paper");
    hlr_tensor_free(t);

    /* an image already like MNIST's comes back like MNIST's */
    unsigned char m[28 * 28] = {0};
    for (int y = 4; y < 24; y++)
        for (int x = 11; x < 17; x++)
            m[y * 28 + x] = 255;
    write_grey_png(path, 28, 28, m);
    t = load_ok(path, HLR_IMAGE_MNIST);
    expect_mnist_like(t, "an MNIST-like bar");
    for (int i = 0; i < 28 * 28; i++)
        ck_assert_msg(fabs(hlr_tensor_f32(t)[i] - m[i] / 255.0) < 1e-6, "pixel %d moved", i);
    hlr_tensor_free(t);
}
END_TEST

START_TEST(test_mnist_preprocessing_refuses_blank_pictures_and_bad_tensors)
{
    char path[256];
    tmp_path(path, sizeof path, "blank.png");
    unsigned char px[30 * 20];
    memset(px, 250, sizeof px);
    px[5 * 30 + 7] = 240; /* a faint speck is not ink */
    write_grey_png(path, 30, 20, px);
    expect_fails(path, HLR_IMAGE_MNIST, HLR_EFORMAT, "no ink");
    hlr_tensor_free(load_ok(path, 0)); /* without the flag it is just a picture */

    hlr_tensor *blank = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 10, 10});
    ck_assert_ptr_null(hlr_image_preprocess_mnist(blank, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("no ink");
    hlr_tensor_f32(blank)[55] = NAN;
    ck_assert_ptr_null(hlr_image_preprocess_mnist(blank, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_error_mentions("finite");
    ck_assert_ptr_null(hlr_image_preprocess_mnist(NULL, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    hlr_tensor_f32(blank)[55] = 1;
    ck_assert_ptr_null(hlr_image_preprocess_mnist(blank, 64));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    hlr_tensor_free(blank);
    hlr_tensor *three = hlr_tensor_new(HLR_F32, 3, (int64_t[]){3, 10, 10});
    ck_assert_ptr_null(hlr_image_preprocess_mnist(three, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_ESHAPE);
    ck_assert_error_mentions("(3, 10, 10)");
    hlr_tensor_free(three);
    hlr_tensor *ints = hlr_tensor_new(HLR_I32, 2, (int64_t[]){10, 10});
    ck_assert_ptr_null(hlr_image_preprocess_mnist(ints, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    hlr_tensor_free(ints);
}
END_TEST

/* ---- MNIST digits drawn as a user's picture would be ---- */

#define PICTURES 500
#define CANVAS_W 120
#define CANVAS_H 110
#define ZOOM 3

/*
 * A small CNN trained for one epoch on 10,000 MNIST images classifies the
 * first 500 test digits; then the same digits, each drawn 3 times larger
 * (84 x 84), dark on light, at a different place in a 120 x 110 picture
 * and saved as PNG, are loaded with HLR_IMAGE_MNIST and classified again.
 * The two accuracies must agree within one percentage point.  Set
 * HLR_TEST_REPORT to a file name to have both appended to it.
 */
START_TEST(test_mnist_digits_as_pictures_are_classified_as_well_as_the_originals)
{
    hlr_dataset *full = test_load_mnist("train"), *tests = test_load_mnist("t10k");
    hlr_dataset *train = hlr_dataset_slice(full, 0, 10000), *test = hlr_dataset_slice(tests, 0, PICTURES);
    hlr_dataset_free(full);
    hlr_dataset_free(tests);
    ck_assert(train && test);
    hlr_model *m =
        TEST_MODEL(0, hlr_conv2d(1, 8, &(hlr_conv2d_options){.kernel = 3, .padding = 1}), hlr_relu(),
                   hlr_maxpool2d(2, 0, 0), hlr_conv2d(8, 16, &(hlr_conv2d_options){.kernel = 3, .padding = 1}),
                   hlr_relu(), hlr_maxpool2d(2, 0, 0), hlr_flatten(), hlr_dense(16 * 7 * 7, 10, 1));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 28, 28}));
    hlr_optimizer *o = hlr_adam(2e-3f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 1;
    fo.batch_size = 32;
    ck_assert_ok(hlr_model_fit(m, o, train, &fo));
    hlr_metrics original;
    ck_assert_ok(hlr_model_evaluate(m, test, 250, 1, &original, NULL));

    const float *x = hlr_dataset_inputs(test);
    float *pictures = malloc((size_t)PICTURES * 28 * 28 * sizeof *pictures);
    unsigned char *canvas = malloc(CANVAS_W * CANVAS_H);
    char path[256];
    tmp_path(path, sizeof path, "digit.png");
    for (int i = 0; i < PICTURES; i++) {
        const float *digit = x + (size_t)i * 28 * 28;
        int ox = (i * 7) % (CANVAS_W - 28 * ZOOM + 1), oy = (i * 11) % (CANVAS_H - 28 * ZOOM + 1);
        memset(canvas, 255, CANVAS_W * CANVAS_H);
        for (int y = 0; y < 28 * ZOOM; y++)
            for (int xx = 0; xx < 28 * ZOOM; xx++) {
                int v = (int)lroundf(255.0f * digit[(y / ZOOM) * 28 + xx / ZOOM]);
                canvas[(oy + y) * CANVAS_W + ox + xx] = (unsigned char)(255 - v);
            }
        write_grey_png(path, CANVAS_W, CANVAS_H, canvas);
        hlr_tensor *t = load_ok(path, HLR_IMAGE_MNIST);
        memcpy(pictures + (size_t)i * 28 * 28, hlr_tensor_f32(t), 28 * 28 * sizeof(float));
        hlr_tensor_free(t);
    }
    hlr_dataset *drawn = hlr_dataset_from(3, (int64_t[]){1, 28, 28}, PICTURES, pictures, hlr_dataset_labels(test), 10);
    ck_assert_ptr_nonnull(drawn);
    hlr_metrics redrawn;
    ck_assert_ok(hlr_model_evaluate(m, drawn, 250, 1, &redrawn, NULL));
    const char *report = getenv("HLR_TEST_REPORT");
    if (report && *report) {
        FILE *f = fopen(report, "a");
        if (f) {
            fprintf(f,
                    "first %d MNIST test digits: %.2f%% as they are, %.2f%% drawn 3x, dark on light, off-centre, "
                    "through PNG and HLR_IMAGE_MNIST\n",
                    PICTURES, 100 * original.accuracy, 100 * redrawn.accuracy);
            fclose(f);
        }
    }
    ck_assert_msg(original.accuracy > 0.9, "the model learnt too little: %.2f%%", 100 * original.accuracy);
    ck_assert_msg(fabs(original.accuracy - redrawn.accuracy) <= 0.01 + 1e-9,
                  "accuracy %.2f%% on the original digits, %.2f%% on the same digits drawn as pictures",
                  100 * original.accuracy, 100 * redrawn.accuracy);
    free(canvas);
    free(pictures);
    hlr_dataset_free(drawn);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(train);
    hlr_dataset_free(test);
}
END_TEST

/* ---- lines of writing and data sets of them (hlr_image_line, hlr_dataset_load_lines) ---- */

/* A w x h PGM of white paper with a black w_ink x h_ink block at (x, y). */
static void write_block_pgm(const char *name, int w, int h, int x, int y, int w_ink, int h_ink)
{
    char path[512], head[64];
    tmp_path(path, sizeof path, name);
    int n = snprintf(head, sizeof head, "P5 %d %d 255\n", w, h);
    unsigned char *buf = malloc((size_t)(n + w * h));
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, head, (size_t)n);
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++)
            buf[n + r * w + c] = r >= y && r < y + h_ink && c >= x && c < x + w_ink ? 0 : 255;
    write_bytes(path, buf, (size_t)(n + w * h));
    free(buf);
}

static void write_text(const char *name, const char *text)
{
    char path[512];
    tmp_path(path, sizeof path, name);
    write_bytes(path, text, strlen(text));
}

START_TEST(test_a_line_is_cropped_scaled_to_its_height_and_padded)
{
    write_block_pgm("block.pgm", 50, 30, 10, 5, 24, 12); /* ink 24 x 12: twice as wide as high */
    char path[512];
    tmp_path(path, sizeof path, "block.pgm");
    hlr_tensor *img = load_ok(path, 0);
    hlr_tensor *line = hlr_image_line(img, 16, 2, 0);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(hlr_tensor_dim(line, 1), 16);
    ck_assert_int_eq(hlr_tensor_dim(line, 2), 24 + 4); /* 12 rows of ink -> 12: 24 columns, 2 of paper each side */
    const float *p = hlr_tensor_f32(line);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 28; x++) {
            int ink = y >= 2 && y < 14 && x >= 2 && x < 26;
            ck_assert_msg(fabsf(p[y * 28 + x] - (ink ? 1.0f : 0.0f)) < 1e-6f, "pixel (%d, %d) = %g", y, x,
                          (double)p[y * 28 + x]);
        }
    ck_assert_ptr_null(hlr_image_line(img, 16, 8, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_ptr_null(hlr_image_line(img, 16, 1, HLR_IMAGE_MNIST));
    ck_assert_ptr_null(hlr_image_line(NULL, 16, 1, 0));
    hlr_tensor *blank = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 4, 4});
    ck_assert_ptr_null(hlr_image_line(blank, 16, 1, 0));
    ck_assert_error_mentions("no ink");
    hlr_tensor_free(blank);
    hlr_tensor_free(line);
    hlr_tensor_free(img);
}
END_TEST

START_TEST(test_lines_load_from_a_labels_file)
{
    write_block_pgm("one.pgm", 40, 20, 5, 4, 10, 10);  /* 1:1 -> 6 x 6 ink at height 8, pad 1: 8 wide */
    write_block_pgm("two.pgm", 60, 30, 2, 2, 30, 10);  /* 3:1 -> 18 x 6: 20 wide */
    write_block_pgm("three.pgm", 12, 12, 1, 1, 5, 10); /* 1:2 -> 3 x 6: 5 wide */
    write_text("labels.tsv", "# name, tab, text\none.pgm\tab\n\ntwo.pgm\tcab\r\nthree.pgm\t\xc3\xa9\n");
    char labels[512];
    tmp_path(labels, sizeof labels, "labels.tsv");
    hlr_dataset *d = hlr_dataset_load_lines(labels, "abc\xc3\xa9", 8, 1, 0, 0);
    ck_assert_msg(d != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(hlr_dataset_size(d), 3);
    ck_assert_int_eq(hlr_dataset_num_classes(d), 5); /* the blank and four characters */
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 1), 8);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 2), 20); /* the widest */
    const int32_t *w = hlr_dataset_lengths(d);
    ck_assert_int_eq(w[0], 8);
    ck_assert_int_eq(w[1], 20);
    ck_assert_int_eq(w[2], 5);
    int S;
    const int32_t *t = hlr_dataset_targets(d, &S);
    ck_assert_int_eq(S, 3);
    const int32_t want[9] = {1, 2, -1, 3, 1, 2, 4, -1, -1};
    ck_assert_mem_eq(t, want, sizeof want);
    const float *x = hlr_dataset_inputs(d);
    ck_assert(x[0 * 160 + 1 * 20 + 1] > 0.99f); /* ink bright, inside the padding */
    ck_assert(x[0 * 160 + 0 * 20 + 0] == 0.0f);
    for (int c = 8; c < 20; c++) /* narrower images padded with zeros */
        ck_assert(x[0 * 160 + 4 * 20 + c] == 0.0f);
    hlr_dataset_free(d);
    /* a fixed width narrower than an image, and the errors naming the file and line */
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abc\xc3\xa9", 8, 1, 10, 0));
    ck_assert_error_mentions("labels.tsv:4: ");
    ck_assert_error_mentions("more than the width 10");
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abc", 8, 1, 0, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("labels.tsv:5: a character outside the alphabet '\xc3\xa9'");
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abca", 8, 1, 0, 0));
    ck_assert_error_mentions("twice");
    write_text("bad.tsv", "one.pgm\tab\nmissing.pgm\tab\n");
    tmp_path(labels, sizeof labels, "bad.tsv");
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abc", 8, 1, 0, 0));
    ck_assert_int_eq(hlr_last_status(), HLR_EIO);
    ck_assert_error_mentions("bad.tsv:2: ");
    ck_assert_error_mentions("missing.pgm");
    write_text("notab.tsv", "one.pgm ab\n");
    tmp_path(labels, sizeof labels, "notab.tsv");
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abc", 8, 1, 0, 0));
    ck_assert_error_mentions("notab.tsv:1: expected NAME<TAB>TEXT");
    write_text("empty.tsv", "# nothing\n");
    tmp_path(labels, sizeof labels, "empty.tsv");
    ck_assert_ptr_null(hlr_dataset_load_lines(labels, "abc", 8, 1, 0, 0));
    ck_assert_error_mentions("names no image");
}
END_TEST

/* A photograph of a line: paper lit unevenly (0.45 on the left to 0.95 on the right) and a row of ink
 * blocks (each a quarter of the paper's light) tilted by `deg` degrees.  With HLR_IMAGE_PHOTO the light
 * is flattened and the line straightened, so the line comes out as long and as thin as when level. */
static hlr_tensor *photo_of_a_line(double deg)
{
    const int64_t h = 160, w = 480;
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, h, w});
    ck_assert_ptr_nonnull(t);
    float *p = hlr_tensor_f32(t);
    const double c = cos(deg * M_PI / 180), sn = sin(deg * M_PI / 180);
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            const double paper = 0.45 + 0.5 * (double)x / (double)(w - 1);
            /* the point in the line's own frame (level, centred) */
            const double u = c * ((double)x - w / 2.0) + sn * ((double)y - h / 2.0);
            const double v = -sn * ((double)x - w / 2.0) + c * ((double)y - h / 2.0);
            const int ink = fabs(v) < 10 && fabs(u) < 180 && fmod(u + 180, 30) < 22; /* 12 blocks 22 x 20 */
            p[y * w + x] = (float)(ink ? 0.25 * paper : paper);
        }
    return t;
}

START_TEST(test_photo_flag_flattens_the_light_and_straightens_the_line)
{
    /* level: 12 blocks of 22 with gaps of 8, 352 x 20 of ink; at height 24 less 2 x 2 of padding: 20 rows */
    for (int k = 0; k < 3; k++) {
        const double deg = (double[]){0, 6, -8}[k];
        hlr_tensor *img = photo_of_a_line(deg);
        hlr_tensor *line = hlr_image_line(img, 24, 2, HLR_IMAGE_PHOTO);
        ck_assert_msg(line != NULL, "%s", hlr_last_error());
        const int64_t w = hlr_tensor_dim(line, 2) - 4;
        ck_assert_msg(w > 330 && w < 375, "tilted %g degrees: %lld columns, want about 352", deg, (long long)w);
        /* the rows of ink are a band: the middle row inked along most of the line, the padding paper */
        const float *o = hlr_tensor_f32(line);
        const int64_t W = hlr_tensor_dim(line, 2);
        double mid = 0, top = 0;
        for (int64_t x = 0; x < W; x++)
            mid += o[12 * W + x], top += o[0 * W + x];
        ck_assert_msg(mid > 0.6 * (double)w && top == 0.0, "tilted %g: middle row %g, top row %g", deg, mid, top);
        hlr_tensor_free(line);
        if (deg != 0) { /* without the flag the tilt stays: the box is much taller for its length */
            line = hlr_image_line(img, 24, 2, HLR_IMAGE_DARK_INK);
            ck_assert_ptr_nonnull(line);
            ck_assert_int_lt(hlr_tensor_dim(line, 2) - 4, 250);
            hlr_tensor_free(line);
        }
        hlr_tensor_free(img);
    }
    /* the uneven light alone: without the flag the dark side of the paper is taken for ink */
    hlr_tensor *img = photo_of_a_line(0);
    hlr_tensor *line = hlr_image_line(img, 24, 2, 0);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_lt(hlr_tensor_dim(line, 2), 340); /* the box takes the left side's dark paper: 160 rows high */
    hlr_tensor_free(line);
    hlr_tensor_free(img);
    ck_assert_ptr_null(hlr_image_line(NULL, 24, 2, HLR_IMAGE_PHOTO));
    hlr_tensor *blank = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 80, 80});
    for (int i = 0; i < 6400; i++)
        hlr_tensor_f32(blank)[i] = 0.4f + 0.5f * (float)(i % 80) / 79.0f; /* uneven light, no ink */
    ck_assert_ptr_null(hlr_image_line(blank, 24, 2, HLR_IMAGE_PHOTO));
    ck_assert_error_mentions("no ink");
    hlr_tensor_free(blank);
    ck_assert_ptr_null(hlr_image_line(blank = photo_of_a_line(0), 24, 2, HLR_IMAGE_PHOTO | HLR_IMAGE_MNIST));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    hlr_tensor_free(blank);
}
END_TEST

/* A tiny copy of the IAM Handwriting Database's layout: ascii/words.txt and ascii/lines.txt, the pictures
 * under words/a01/a01-000u/ and lines/a01/a01-000u/ (real PNG files, dark ink on white). */
START_TEST(test_iam_words_and_lines_load_from_its_layout)
{
    static const char *dirs[] = {"ascii", "words", "words/a01", "words/a01/a01-000u", "lines", "lines/a01",
                                 "lines/a01/a01-000u"};
    char path[512], index[512], images[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        tmp_path(path, sizeof path, dirs[i]);
        ck_assert_int_eq(mkdir(path, 0700), 0);
    }
    unsigned char px[12 * 40];
    const struct {
        const char *name;
        int ink_w;
    } pics[] = {{"words/a01/a01-000u/a01-000u-00-00.png", 10}, {"words/a01/a01-000u/a01-000u-00-01.png", 30},
                {"lines/a01/a01-000u/a01-000u-00.png", 36}};
    for (size_t i = 0; i < 3; i++) {
        for (int r = 0; r < 12; r++)
            for (int c = 0; c < 40; c++)
                px[r * 40 + c] = r >= 1 && r < 11 && c >= 2 && c < 2 + pics[i].ink_w ? 0 : 255;
        tmp_path(path, sizeof path, pics[i].name);
        write_grey_png(path, 40, 12, px);
    }
    tmp_path(path, sizeof path, "words/a01/a01-000u/a01-000u-00-03.png"); /* IAM has two empty PNG files */
    write_bytes(path, "", 0);
    write_text("ascii/words.txt", "#--- words.txt ---\n#\n"
                                  "a01-000u-00-00 ok 154 408 768 27 51 AT ab\n"
                                  "a01-000u-00-01 ok 154 507 766 213 48 NN cab\n"
                                  "a01-000u-00-02 err 154 796 764 70 50 TO ba\n"
                                  "a01-000u-00-03 ok 154 919 757 166 78 VB ca\n");
    tmp_path(index, sizeof index, "ascii/words.txt");
    tmp_path(images, sizeof images, "words");
    int64_t skipped = -1;
    hlr_dataset *d = hlr_dataset_load_iam(index, images, "abc", 8, 1, 0, 0, &skipped);
    ck_assert_msg(d != NULL, "%s", hlr_last_error());
    ck_assert_int_eq(skipped, 2); /* the err line and the empty picture */
    ck_assert_int_eq(hlr_dataset_size(d), 2);
    ck_assert_int_eq(hlr_dataset_num_classes(d), 4);
    int S;
    const int32_t *t = hlr_dataset_targets(d, &S);
    ck_assert_int_eq(S, 3);
    const int32_t want[6] = {1, 2, -1, 3, 1, 2};
    ck_assert_mem_eq(t, want, sizeof want);
    const int32_t *w = hlr_dataset_lengths(d);
    ck_assert_int_eq(w[0], 6 + 2);  /* 10 x 10 ink -> 6 x 6 at height 8, pad 1 */
    ck_assert_int_eq(w[1], 18 + 2); /* 30 x 10 -> 18 x 6 */
    hlr_dataset_free(d);
    /* lines.txt: the words joined by '|', read as spaces */
    write_text("ascii/lines.txt", "a01-000u-00 ok 154 19 408 746 1661 89 ab|c\n");
    tmp_path(index, sizeof index, "ascii/lines.txt");
    tmp_path(images, sizeof images, "lines");
    d = hlr_dataset_load_iam(index, images, "abc ", 8, 1, 0, 0, NULL);
    ck_assert_msg(d != NULL, "%s", hlr_last_error());
    t = hlr_dataset_targets(d, &S);
    ck_assert_int_eq(S, 4);
    const int32_t want_line[4] = {1, 2, 4, 3};
    ck_assert_mem_eq(t, want_line, sizeof want_line);
    hlr_dataset_free(d);
    /* not IAM's format, a path out of the folder, a missing picture: errors naming the file and line */
    write_text("ascii/bad.txt", "a01-000u-00-00 ok 154 408 768 27 51 ab\n");
    tmp_path(index, sizeof index, "ascii/bad.txt");
    ck_assert_ptr_null(hlr_dataset_load_iam(index, images, "abc", 8, 1, 0, 0, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    ck_assert_error_mentions("bad.txt:1: expected IAM's");
    write_text("ascii/bad.txt", "a01-../x-00 ok 154 408 768 27 51 AT ab\n");
    ck_assert_ptr_null(hlr_dataset_load_iam(index, images, "abc", 8, 1, 0, 0, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EFORMAT);
    write_text("ascii/bad.txt", "# header\na01-000u-00-09 ok 154 408 768 27 51 AT ab\n");
    tmp_path(images, sizeof images, "words");
    ck_assert_ptr_null(hlr_dataset_load_iam(index, images, "abc", 8, 1, 0, 0, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EIO);
    ck_assert_error_mentions("bad.txt:2: ");
    ck_assert_error_mentions("a01-000u-00-09.png");
    ck_assert_ptr_null(hlr_dataset_load_iam(index, NULL, "abc", 8, 1, 0, 0, NULL));
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    /* the folders (tmp_dir_remove removes plain files only) */
    static const char *files[] = {"words/a01/a01-000u/a01-000u-00-00.png", "words/a01/a01-000u/a01-000u-00-01.png",
                                  "words/a01/a01-000u/a01-000u-00-03.png", "lines/a01/a01-000u/a01-000u-00.png",
                                  "ascii/words.txt", "ascii/lines.txt", "ascii/bad.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        tmp_path(path, sizeof path, files[i]);
        unlink(path);
    }
    for (size_t i = sizeof dirs / sizeof dirs[0]; i-- > 0;) {
        tmp_path(path, sizeof path, dirs[i]);
        rmdir(path);
    }
}
END_TEST

Suite *suite_image(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("decode");
    tcase_add_unchecked_fixture(tc, tmp_dir_create, tmp_dir_remove);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_png_grey_every_bit_depth);
    tcase_add_test(tc, test_png_grey_alpha_and_rgb_and_rgba_are_composited_onto_white);
    tcase_add_test(tc, test_png_palette_every_bit_depth_with_and_without_transparency);
    tcase_add_test(tc, test_png_transparent_colour_of_grey_and_rgb_is_white);
    tcase_add_test(tc, test_png_interlaced_images_of_awkward_sizes);
    tcase_add_test(tc, test_png_wide_image);
    tcase_add_test(tc, test_pgm_binary_8_and_16_bit_and_text);
    tcase_add_test(tc, test_dark_ink_flag_inverts_the_raw_image);
    suite_add_tcase(s, tc);

    tc = tcase_create("damaged");
    tcase_add_unchecked_fixture(tc, tmp_dir_create, tmp_dir_remove);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pgm_damaged_files_fail_naming_the_problem);
    tcase_add_test(tc, test_png_truncated_at_every_offset_fails);
    tcase_add_test(tc, test_png_random_byte_flips_fail_cleanly_or_decode);
    tcase_add_test(tc, test_png_huge_declared_size_is_refused_before_allocating);
    tcase_add_test(tc, test_decode_from_memory_equals_load_and_refuses_bad_bytes);
    tcase_add_test(tc, test_other_files_fail_naming_the_path);
    tcase_add_test(tc, test_fifo_is_refused_without_blocking);
    tcase_add_test(tc, test_out_of_memory_at_every_step_fails_cleanly);
    suite_add_tcase(s, tc);

    tc = tcase_create("mnist");
    tcase_add_unchecked_fixture(tc, tmp_dir_create, tmp_dir_remove);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_mnist_preprocessing_of_a_dark_on_light_stroke);
    tcase_add_test(tc, test_mnist_placement_maps_result_pixels_to_the_source);
    tcase_add_test(tc, test_mnist_preprocessing_of_thin_small_and_grey_pictures);
    tcase_add_test(tc, test_mnist_preprocessing_refuses_blank_pictures_and_bad_tensors);
    tcase_add_test(tc, test_mnist_digits_as_pictures_are_classified_as_well_as_the_originals);
    suite_add_tcase(s, tc);

    tc = tcase_create("lines");
    tcase_add_unchecked_fixture(tc, tmp_dir_create, tmp_dir_remove);
    tcase_add_test(tc, test_a_line_is_cropped_scaled_to_its_height_and_padded);
    tcase_add_test(tc, test_lines_load_from_a_labels_file);
    tcase_add_test(tc, test_iam_words_and_lines_load_from_its_layout);
    tcase_add_test(tc, test_photo_flag_flattens_the_light_and_straightens_the_line);
    suite_add_tcase(s, tc);
    return s;
}

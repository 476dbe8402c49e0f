/*
 * hlr-predict -- classify pictures with a saved model and print the three
 * most likely classes with their probabilities.
 *
 *   hlr-predict [--mnist | --raw] [--invert] [--json] MODEL IMAGE...
 *   hlr-predict --index 0-9,42 [--json] MODEL t10k-images-idx3-ubyte.gz
 *
 * Images are PNG or PGM files, read by hlr_image_load() (grey; colour
 * becomes luminance, transparency white paper), or, with --index, images
 * of an idx file (raw or gzip), picked by number.  For a model that takes
 * 28 x 28 images (MNIST's), a picture of any other size gets the library's
 * MNIST preprocessing (hlr_image_preprocess_mnist: ink made bright, cropped,
 * scaled to fit 20 x 20, centred by its centre of mass), so a photo or a
 * scan of one digit can be given as it is; --mnist applies it to every
 * image, --raw to none.  An image used raw must have the model's size and
 * be white ink on black, as MNIST; --invert says the ink is dark on light
 * paper (then the preprocessing does not guess the polarity either).
 * --json prints one JSON object per image and line instead of the table.
 * Every failure is one line on stderr; the exit status is 1 when an image
 * or the model failed, 2 for a usage mistake.
 */
#include "common.h"
#include "options.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-predict [--mnist | --raw] [--invert] [--json] [--index LIST] MODEL IMAGE...\n"
               "       hlr-predict --explain saliency|smoothgrad|ig|gradcam --out FILE.png MODEL IMAGE\n"
               "  IMAGE     a PNG or PGM (P5 or P2) file, or with --index an idx image file (raw or .gz)\n"
               "  --mnist   always apply the MNIST preprocessing: ink made bright, cropped, scaled to fit\n"
               "            20 x 20 and centred in 28 x 28 (the default for a 28 x 28 model and a picture\n"
               "            of another size)\n"
               "  --raw     never: the image must have the model's size and be light ink on black\n"
               "  --invert  the images are dark ink on light paper (raw: use 1 - pixel; with the\n"
               "            preprocessing: do not guess the polarity)\n"
               "  --json    one JSON object per image and line: file, class, probability, top 3\n"
               "  --index   which images of an idx file: numbers and ranges, e.g. 0-9,42\n"
               "  --explain where the model looks for the class it predicts, drawn into --out (PNG, PGM or\n"
               "            PPM by its name): the image the model saw, and the image under the attribution\n"
               "            map (saliency, smoothgrad, ig for integrated gradients, gradcam for the last\n"
               "            convolution); one IMAGE (or one --index)\n"
               "  --out     the picture --explain draws\n");
}

/* ---- idx ---- */

static int in_list(const char *list, long i)
{
    const char *p = list;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            return 0;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        if (i >= a && i <= b)
            return 1;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return 0;
    }
    return 0;
}

/* Check an --index list ("0-9,42"): numbers >= 0 and ranges a-b with a <= b,
 * separated by commas.  Returns the largest index, or -1 after a line on stderr. */
static long check_index_list(const char *list)
{
    long m = -1;
    const char *p = list;
    for (;;) {
        char *end;
        if (!isdigit((unsigned char)*p))
            goto bad;
        long a = strtol(p, &end, 10), b = a;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                goto bad;
            b = strtol(end + 1, &end, 10);
            if (b < a) {
                fprintf(stderr, "hlr-predict: --index '%s': the range %ld-%ld runs backwards (write %ld-%ld)\n", list,
                        a, b, b, a);
                return -1;
            }
        }
        m = b > m ? b : m;
        if (*end == '\0')
            return m;
        if (*end != ',')
            goto bad;
        p = end + 1;
    }
bad:
    fprintf(stderr, "hlr-predict: --index '%s' is not a list of numbers and ranges such as 0-9,42\n", list);
    return -1;
}

/* What to do with one image (1, H, W): file names it, index is its number in an idx file (-1: none). */
typedef int (*image_fn)(const hlr_tensor *img, const char *file, long index, void *user);

/* Call fn for each listed image of an idx file (gzip or raw). */
static int for_idx_images(const char *path, const char *list, image_fn fn, void *user)
{
    gzFile g = gzopen(path, "rb");
    if (!g) {
        fprintf(stderr, "hlr-predict: cannot open %s\n", path);
        return 1;
    }
    unsigned char hdr[16];
    if (gzread(g, hdr, 16) != 16 || hdr[0] || hdr[1] || hdr[2] != 0x08 || hdr[3] != 3) {
        fprintf(stderr, "hlr-predict: %s is not an idx image file (magic 00000803)\n", path);
        gzclose(g);
        return 1;
    }
    long count = (long)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7];
    long rows = (long)hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11];
    long cols = (long)hdr[12] << 24 | hdr[13] << 16 | hdr[14] << 8 | hdr[15];
    long last = check_index_list(list);
    if (rows < 1 || cols < 1 || rows > 4096 || cols > 4096 || last < 0 || last >= count) {
        fprintf(stderr, "hlr-predict: %s holds %ld images of %ldx%ld; --index %s is out of range\n", path, count, rows,
                cols, list);
        gzclose(g);
        return 1;
    }
    unsigned char *px = malloc((size_t)(rows * cols));
    hlr_tensor *img = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, rows, cols});
    if (!px || !img) {
        fprintf(stderr, "hlr-predict: out of memory\n");
        free(px);
        hlr_tensor_free(img);
        gzclose(g);
        return 1;
    }
    float *v = hlr_tensor_f32(img);
    int rc = 0;
    for (long i = 0; i <= last && rc == 0; i++) {
        if (gzread(g, px, (unsigned)(rows * cols)) != (int)(rows * cols)) {
            fprintf(stderr, "hlr-predict: %s is truncated at image %ld\n", path, i);
            rc = 1;
            break;
        }
        if (!in_list(list, i))
            continue;
        for (long k = 0; k < rows * cols; k++)
            v[k] = (float)px[k] / 255.0f;
        rc = fn(img, path, i, user);
    }
    free(px);
    hlr_tensor_free(img);
    gzclose(g);
    return rc;
}

/* Whether a file that is no image looks like an idx file (raw or gzip), for a hint. */
static int looks_like_idx(const char *path)
{
    FILE *f = fopen(path, "rb"); /* a regular file: hlr_image_load() has refused anything else */
    unsigned char b[4] = {0};
    int n = f ? (int)fread(b, 1, 4, f) : 0;
    if (f)
        fclose(f);
    return n >= 2 && ((b[0] == 0x1F && b[1] == 0x8B) || (n == 4 && !b[0] && !b[1] && b[2] == 8 && b[3] == 3));
}

/* ---- JSON ---- */

/* ---- classification ---- */

typedef struct predictor {
    hlr_model *model;
    const hlr_metadata *md;
    int64_t in_shape[HLR_MAX_DIMS + 1];
    int in_ndim;
    int64_t in_numel, classes;
    int takes_mnist;        /* the model's input is 28 x 28 values */
    int mnist, raw, invert; /* --mnist, --raw, --invert */
    int json;
    const char *explain, *out; /* --explain METHOD, --out FILE */
} predictor;

/* Class c by name when the model's metadata names its classes, else by number. */
static void print_class(const predictor *p, int c, int json)
{
    const char *name = c < hlr_metadata_num_classes(p->md) ? hlr_metadata_class_name(p->md, c) : NULL;
    if (name && json)
        json_string(stdout, name);
    else if (name)
        fputs(name, stdout);
    else
        printf("%d", c);
}

static void report(const predictor *p, const char *file, long index, const float *pr)
{
    int top[3] = {-1, -1, -1};
    for (int k = 0; k < 3 && k < p->classes; k++)
        for (int c = 0; c < p->classes; c++)
            if ((k < 1 || c != top[0]) && (k < 2 || c != top[1]) && (top[k] < 0 || pr[c] > pr[top[k]]))
                top[k] = c;
    if (p->json) {
        fputs("{\"file\": ", stdout);
        json_string(stdout, file);
        if (index >= 0)
            printf(", \"index\": %ld", index);
        fputs(", \"class\": ", stdout);
        print_class(p, top[0], 1);
        fputs(", \"probability\": ", stdout);
        json_number(stdout, pr[top[0]]);
        fputs(", \"top\": [", stdout);
        for (int k = 0; k < 3 && top[k] >= 0; k++) {
            fputs(k ? ", {\"class\": " : "{\"class\": ", stdout);
            print_class(p, top[k], 1);
            fputs(", \"probability\": ", stdout);
            json_number(stdout, pr[top[k]]);
            fputs("}", stdout);
        }
        fputs("]}\n", stdout);
        return;
    }
    if (index >= 0)
        printf("%s[%ld]:", file, index);
    else
        printf("%s:", file);
    for (int k = 0; k < 3 && top[k] >= 0; k++) {
        fputs("  ", stdout);
        print_class(p, top[k], 0);
        printf(" %.2f%%", 100.0 * pr[top[k]]);
    }
    printf("\n");
}

/* "PATH" or "PATH[I]" for messages. */
static const char *label_of(const char *file, long index, char *buf, size_t cap)
{
    if (index < 0)
        return file;
    snprintf(buf, cap, "%s[%ld]", file, index);
    return buf;
}

/* --explain: the model's input x (1, ...) of h x w pixels and the attribution map of class cls, side by side,
 * zoomed; the map (its absolute value, scaled to its largest) tints the grey image red to yellow. */
static int explain(const predictor *p, const hlr_tensor *x, int32_t cls, const char *label)
{
    static const struct { const char *name; hlr_explain_method m; } methods[] = {
        {"saliency", HLR_EXPLAIN_SALIENCY}, {"smoothgrad", HLR_EXPLAIN_SMOOTHGRAD},
        {"ig", HLR_EXPLAIN_INTEGRATED_GRADIENTS}, {"gradcam", HLR_EXPLAIN_GRADCAM}};
    hlr_explain_options o;
    hlr_explain_options_default(&o);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(p->explain, methods[i].name))
            o.method = methods[i].m;
    if (o.method == HLR_EXPLAIN_INTEGRATED_GRADIENTS)
        o.steps = 64;
    const int nd = hlr_tensor_ndim(x);
    const int64_t h = nd >= 3 ? hlr_tensor_dim(x, -2) : 1, w = hlr_tensor_dim(x, -1), C = hlr_tensor_numel(x) / (h * w);
    int64_t shape[HLR_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        shape[i] = hlr_tensor_dim(x, i);
    hlr_tensor *map = hlr_tensor_new(HLR_F32, nd, shape);
    if (!map || hlr_model_explain(p->model, x, &cls, &o, map) != HLR_OK) {
        fprintf(stderr, "hlr-predict: %s: --explain %s: %s\n", label, p->explain, hlr_last_error());
        hlr_tensor_free(map);
        return 1;
    }
    const float *v = hlr_tensor_f32(x), *a = hlr_tensor_f32(map);
    const int zoom = h * w <= 64 * 64 ? 8 : 2, gap = 8;
    picture pic = {.w = (int)(2 * w * zoom + gap), .h = (int)(h * zoom)};
    pic.rgb = calloc((size_t)pic.w * pic.h, 3);
    if (!pic.rgb) {
        fprintf(stderr, "hlr-predict: out of memory\n");
        hlr_tensor_free(map);
        return 1;
    }
    memset(pic.rgb, 64, (size_t)pic.w * pic.h * 3);
    example_draw_image(&pic, 0, v, NULL, C, h, w, zoom);
    example_draw_image(&pic, (int)(w * zoom + gap), v, a, C, h, w, zoom);
    int rc = example_write_picture("hlr-predict", p->out, &pic) != 0;
    if (!rc)
        printf("%s: %s for class %d drawn into %s\n", label, p->explain, cls, p->out);
    free(pic.rgb);
    hlr_tensor_free(map);
    return rc;
}

static int classify(const hlr_tensor *img, const char *file, long index, void *user)
{
    predictor *p = user;
    char lbuf[4200];
    const char *label = label_of(file, index, lbuf, sizeof lbuf);
    int64_t h = hlr_tensor_dim(img, 1), w = hlr_tensor_dim(img, 2);
    int preprocess = p->mnist || (!p->raw && p->takes_mnist && !(h == 28 && w == 28));
    hlr_tensor *pre = NULL;
    if (preprocess) {
        pre = hlr_image_preprocess_mnist(img, p->invert ? HLR_IMAGE_DARK_INK : 0);
        if (!pre) {
            fprintf(stderr, "hlr-predict: %s: %s\n", label, hlr_last_error());
            return 1;
        }
        img = pre;
        h = w = 28;
    } else if (h * w != p->in_numel) {
        fprintf(stderr, "hlr-predict: %s is %lldx%lld; the model takes %lld pixels%s\n", label, (long long)w,
                (long long)h, (long long)p->in_numel, p->raw ? " (and --raw keeps the picture as it is)" : "");
        return 1;
    }
    hlr_tensor *x = hlr_tensor_new(HLR_F32, p->in_ndim + 1, p->in_shape);
    hlr_tensor *probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, p->classes});
    int rc = 0;
    if (!x || !probs) {
        fprintf(stderr, "hlr-predict: %s\n", hlr_last_error());
        rc = 1;
    } else {
        float *xd = hlr_tensor_f32(x);
        const float *src = hlr_tensor_f32(img);
        int flip = p->invert && !preprocess; /* the preprocessing has made the ink bright already */
        for (int64_t i = 0; i < p->in_numel; i++)
            xd[i] = flip ? 1.0f - src[i] : src[i];
        int32_t cls;
        if (hlr_model_predict(p->model, x, &cls, probs) != HLR_OK) {
            fprintf(stderr, "hlr-predict: %s: %s\n", label, hlr_last_error());
            rc = 1;
        } else {
            report(p, file, index, hlr_tensor_f32(probs));
            if (p->explain && explain(p, x, cls, label) != 0)
                rc = 1;
        }
    }
    fflush(stdout);
    hlr_tensor_free(x);
    hlr_tensor_free(probs);
    hlr_tensor_free(pre);
    return rc;
}

static int classify_file(predictor *p, const char *path)
{
    hlr_tensor *img = hlr_image_load(path, 0);
    if (!img) {
        int idx = hlr_last_status() == HLR_EFORMAT && looks_like_idx(path);
        fprintf(stderr, "hlr-predict: %s%s\n", hlr_last_error(),
                idx ? "; for the images of an idx file, say which with --index" : "");
        return 1;
    }
    int rc = classify(img, path, -1, p);
    hlr_tensor_free(img);
    return rc;
}

int main(int argc, char **argv)
{
    predictor p = {0};
    const char *index = NULL;
    const opt_spec specs[] = {OPT_FLAG_("--invert", &p.invert), OPT_STR("--index", &index),
                              OPT_FLAG_("--mnist", &p.mnist), OPT_FLAG_("--raw", &p.raw), OPT_FLAG_("--json", &p.json),
                              OPT_STR("--explain", &p.explain), OPT_STR("--out", &p.out)};
    const char **pos = calloc((size_t)argc, sizeof *pos);
    int npos = 0;
    int rc = pos ? parse_options("hlr-predict", argc, argv, 1, specs, (int)(sizeof specs / sizeof specs[0]), pos, argc,
                                 &npos)
                 : -1;
    if (rc > 0)
        usage(stdout);
    if (rc == 0 && p.mnist && p.raw) {
        fprintf(stderr, "hlr-predict: --mnist and --raw contradict each other: give one of them\n");
        rc = -1;
    }
    if (rc == 0 && npos < 2) {
        fprintf(stderr, "hlr-predict: %s (see hlr-predict --help)\n", npos ? "no IMAGE given" : "no MODEL given");
        rc = -1;
    }
    if (rc == 0 && index && check_index_list(index) < 0)
        rc = -1;
    if (rc == 0 && p.explain) {
        const char *ok[] = {"saliency", "smoothgrad", "ig", "gradcam"};
        int known = 0;
        for (int i = 0; i < 4; i++)
            known |= !strcmp(p.explain, ok[i]);
        if (!known) {
            fprintf(stderr, "hlr-predict: --explain '%s': saliency, smoothgrad, ig or gradcam\n", p.explain);
            rc = -1;
        } else if (!p.out) {
            fprintf(stderr, "hlr-predict: --explain needs --out FILE.png for its picture\n");
            rc = -1;
        } else if (npos != 2 || (index && strpbrk(index, ",-"))) {
            fprintf(stderr, "hlr-predict: --explain draws one image: give one IMAGE (or one --index)\n");
            rc = -1;
        }
    } else if (rc == 0 && p.out) {
        fprintf(stderr, "hlr-predict: --out is for --explain\n");
        rc = -1;
    }
    if (rc != 0) {
        free(pos);
        return rc > 0 ? 0 : 2;
    }
    const char *model_path = pos[0];
    p.model = hlr_model_load(model_path, NULL);
    if (!p.model) {
        fprintf(stderr, "hlr-predict: %s\n", hlr_last_error());
        free(pos);
        return 1;
    }
    p.md = hlr_model_metadata(p.model);
    int ond;
    int64_t os[HLR_MAX_DIMS];
    hlr_model_input_shape(p.model, &p.in_ndim, p.in_shape + 1);
    hlr_model_output_shape(p.model, &ond, os);
    p.in_shape[0] = 1;
    p.in_numel = 1;
    for (int i = 0; i < p.in_ndim; i++)
        p.in_numel *= p.in_shape[i + 1];
    p.classes = os[0];
    p.takes_mnist = p.in_numel == 28 * 28;
    if (ond != 1) {
        fprintf(stderr, "hlr-predict: %s does not classify: its output is not a vector of classes\n", model_path);
        hlr_model_free(p.model);
        free(pos);
        return 1;
    }
    if (p.mnist && !p.takes_mnist) {
        fprintf(stderr, "hlr-predict: --mnist makes 28x28 images, and %s takes %lld values\n", model_path,
                (long long)p.in_numel);
        hlr_model_free(p.model);
        free(pos);
        return 1;
    }
    rc = 0;
    for (int i = 1; i < npos; i++)
        rc |= index ? for_idx_images(pos[i], index, classify, &p) : classify_file(&p, pos[i]);
    hlr_model_free(p.model);
    free(pos);
    return rc;
}

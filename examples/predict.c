/*
 * hlr-predict -- classify grey images with a saved model and print the
 * three most likely classes with their probabilities.
 *
 *   hlr-predict [--invert] MODEL IMAGE.pgm...
 *   hlr-predict --index 0-9,42 MODEL t10k-images-idx3-ubyte.gz
 *
 * Images are PGM files (P5 binary or P2 text, any maxval) or, with --index,
 * images of an idx file (raw or gzip), picked by number.  Pixels are scaled
 * to [0, 1] like the training data: white digits on black, as MNIST; pass
 * --invert for dark ink on light paper.
 */
#include "common.h"
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-predict [--invert] [--index LIST] MODEL IMAGE...\n"
               "  IMAGE     a PGM file (P5 or P2), or with --index an idx image file (raw or .gz)\n"
               "  --index   which images of an idx file: numbers and ranges, e.g. 0-9,42\n"
               "  --invert  the images are dark on light: use 1 - pixel\n");
}

/* ---- PGM ---- */

/* The next header number of a PGM, skipping white space and # comments. */
static long pgm_number(const unsigned char *p, size_t n, size_t *pos)
{
    while (*pos < n) {
        if (p[*pos] == '#')
            while (*pos < n && p[*pos] != '\n')
                (*pos)++;
        else if (isspace(p[*pos]))
            (*pos)++;
        else
            break;
    }
    if (*pos >= n || !isdigit(p[*pos]))
        return -1;
    long v = 0;
    while (*pos < n && isdigit(p[*pos]) && v < 1000000)
        v = v * 10 + (p[(*pos)++] - '0');
    return v;
}

/* Read a PGM into a new array of w*h values in [0, 1]; NULL with a message. */
static float *read_pgm(const char *path, long *w, long *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hlr-predict: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *data = malloc(1 << 24);
    size_t n = data ? fread(data, 1, 1 << 24, f) : 0;
    fclose(f);
    float *img = NULL;
    size_t pos = 2;
    int binary = n > 2 && data[0] == 'P' && data[1] == '5', text = n > 2 && data[0] == 'P' && data[1] == '2';
    long maxval = 0;
    if (binary || text) {
        *w = pgm_number(data, n, &pos);
        *h = pgm_number(data, n, &pos);
        maxval = pgm_number(data, n, &pos);
    }
    int idx = n > 4 && ((data[0] == 0x1F && data[1] == 0x8B) || (!data[0] && !data[1] && data[2] == 8 && data[3] == 3));
    if (!binary && !text) {
        fprintf(stderr, "hlr-predict: %s is not a PGM file (P5 or P2)%s\n", path,
                idx ? "; for the images of an idx file, say which with --index" : "");
    } else if (*w < 1 || *h < 1 || *w > 4096 || *h > 4096 || maxval < 1 || maxval > 65535) {
        fprintf(stderr, "hlr-predict: %s: bad PGM header\n", path);
    } else if ((img = malloc((size_t)(*w * *h) * sizeof *img)) != NULL) {
        pos++; /* the single white-space byte after maxval */
        int wide = maxval > 255;
        for (long i = 0; i < *w * *h; i++) {
            long v;
            if (text) {
                v = pgm_number(data, n, &pos);
            } else if (pos + (size_t)wide < n) {
                v = wide ? data[pos] << 8 | data[pos + 1] : data[pos];
                pos += 1 + (size_t)wide;
            } else {
                v = -1;
            }
            if (v < 0 || v > maxval) {
                fprintf(stderr, "hlr-predict: %s: truncated or bad pixel %ld\n", path, i);
                free(img);
                img = NULL;
                break;
            }
            img[i] = (float)v / (float)maxval;
        }
    }
    free(data);
    return img;
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

typedef int (*image_fn)(const float *img, long w, long h, const char *label, void *user);

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
    float *img = malloc((size_t)(rows * cols) * sizeof *img);
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
            img[k] = (float)px[k] / 255.0f;
        char label[4200];
        snprintf(label, sizeof label, "%s[%ld]", path, i);
        rc = fn(img, cols, rows, label, user);
    }
    free(px);
    free(img);
    gzclose(g);
    return rc;
}

/* ---- classification ---- */

typedef struct predictor {
    hlr_model *model;
    const hlr_metadata *md;
    int64_t in_shape[HLR_MAX_DIMS + 1];
    int in_ndim;
    int64_t in_numel, classes;
    int invert;
} predictor;

static int classify(const float *img, long w, long h, const char *label, void *user)
{
    predictor *p = user;
    if ((int64_t)w * h != p->in_numel) {
        fprintf(stderr, "hlr-predict: %s is %ldx%ld; the model takes %lld pixels\n", label, w, h,
                (long long)p->in_numel);
        return 1;
    }
    hlr_tensor *x = hlr_tensor_new(HLR_F32, p->in_ndim + 1, p->in_shape);
    hlr_tensor *probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, p->classes});
    if (!x || !probs) {
        fprintf(stderr, "hlr-predict: %s\n", hlr_last_error());
        return 1;
    }
    float *xd = hlr_tensor_f32(x);
    for (int64_t i = 0; i < p->in_numel; i++)
        xd[i] = p->invert ? 1.0f - img[i] : img[i];
    int32_t cls;
    int rc = 0;
    if (hlr_model_predict(p->model, x, &cls, probs) != HLR_OK) {
        fprintf(stderr, "hlr-predict: %s: %s\n", label, hlr_last_error());
        rc = 1;
    } else {
        const float *pr = hlr_tensor_f32(probs);
        int top[3] = {-1, -1, -1};
        for (int k = 0; k < 3 && k < p->classes; k++)
            for (int c = 0; c < p->classes; c++)
                if ((k < 1 || c != top[0]) && (k < 2 || c != top[1]) && (top[k] < 0 || pr[c] > pr[top[k]]))
                    top[k] = c;
        printf("%s:", label);
        for (int k = 0; k < 3 && top[k] >= 0; k++) {
            const char *name = top[k] < hlr_metadata_num_classes(p->md) ? hlr_metadata_class_name(p->md, top[k]) : NULL;
            if (name)
                printf("  %s %.2f%%", name, 100.0 * pr[top[k]]);
            else
                printf("  %d %.2f%%", top[k], 100.0 * pr[top[k]]);
        }
        printf("\n");
    }
    hlr_tensor_free(x);
    hlr_tensor_free(probs);
    return rc;
}

int main(int argc, char **argv)
{
    predictor p = {0};
    const char *index = NULL;
    const opt_spec specs[] = {OPT_FLAG_("--invert", &p.invert), OPT_STR("--index", &index)};
    const char **pos = calloc((size_t)argc, sizeof *pos);
    int npos = 0;
    int rc = pos ? parse_options("hlr-predict", argc, argv, 1, specs, 2, pos, argc, &npos) : -1;
    if (rc > 0)
        usage(stdout);
    if (rc == 0 && npos < 2)
        fprintf(stderr, "hlr-predict: %s (see hlr-predict --help)\n", npos ? "no IMAGE given" : "no MODEL given");
    if (rc == 0 && index && check_index_list(index) < 0)
        rc = -1;
    if (rc != 0 || npos < 2) {
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
    if (ond != 1) {
        fprintf(stderr, "hlr-predict: %s does not classify: its output is not a vector of classes\n", model_path);
        hlr_model_free(p.model);
        free(pos);
        return 1;
    }
    for (int i = 1; i < npos; i++) {
        if (index) {
            rc |= for_idx_images(pos[i], index, classify, &p);
        } else {
            long w = 0, h = 0;
            float *img = read_pgm(pos[i], &w, &h);
            if (!img) {
                rc = 1;
                continue;
            }
            rc |= classify(img, w, h, pos[i], &p);
            free(img);
        }
    }
    hlr_model_free(p.model);
    free(pos);
    return rc;
}

/*
 * attention.c -- what `hlr-mnist attention FILE` shows: a test image beside
 * the attention weights a saved model gives it, as text (the matrix, and
 * the attention each step receives) and as a picture (the image, the image
 * tinted by that attention, the matrix as a heat map).
 */
#include "attention.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Nonzero for a layer whose attention weights hlr_attention_weights()
 * reads: a multihead_attention layer, or a transformer_encoder block (its
 * self-attention).  The one place to name another attention layer type.
 */
static int is_attention_layer(const hlr_layer *l)
{
    const char *type = hlr_layer_type(l);
    return strcmp(type, "multihead_attention") == 0 || strcmp(type, "transformer_encoder") == 0;
}

/*
 * How attention steps lie on the image (h x w pixels):
 *   STEPS_ROWS     T divides h: step s is the band of rows [s*size, (s+1)*size)
 *                  (the hybrid model's 7 feature-map rows, an RNN's 28 image rows)
 *   STEPS_PATCHES  T - first = g*g with g dividing h = w: step s is patch
 *                  s - first in row-major order, size pixels square; first = 1
 *                  when a class token leads the sequence
 *   STEPS_NONE     neither: the picture has no overlay
 * Steps see more than their band or patch (a convolution's receptive field,
 * a recurrent state): the map says which pixels a step stands for.
 */
enum { STEPS_NONE, STEPS_ROWS, STEPS_PATCHES };
typedef struct step_map {
    int kind, size, first, grid;
} step_map;

static step_map map_steps(int T, int h, int w)
{
    if (T >= 1 && h % T == 0)
        return (step_map){.kind = STEPS_ROWS, .size = h / T, .grid = T};
    for (int first = 0; first <= 1 && h == w; first++)
        for (int g = 1; g * g <= T - first; g++)
            if (g * g == T - first && h % g == 0)
                return (step_map){.kind = STEPS_PATCHES, .size = h / g, .first = first, .grid = g};
    return (step_map){.kind = STEPS_NONE};
}

/* The step that stands for pixel (y, x), or -1 (no map). */
static int step_at(const step_map *sm, int y, int x)
{
    if (sm->kind == STEPS_ROWS)
        return y / sm->size;
    if (sm->kind == STEPS_PATCHES)
        return sm->first + (y / sm->size) * sm->grid + x / sm->size;
    return -1;
}

/* What step s stands for, as text ("rows 4-7"). */
static void describe_step(const step_map *sm, int s, char *buf, size_t cap)
{
    int p = s - sm->first, z = sm->size;
    if (sm->kind == STEPS_ROWS)
        snprintf(buf, cap, "rows %d-%d", s * z, s * z + z - 1);
    else if (sm->kind == STEPS_PATCHES && p < 0)
        snprintf(buf, cap, "class token");
    else if (sm->kind == STEPS_PATCHES)
        snprintf(buf, cap, "rows %d-%d, columns %d-%d", p / sm->grid * z, p / sm->grid * z + z - 1, p % sm->grid * z,
                 p % sm->grid * z + z - 1);
    else
        buf[0] = '\0';
}

/* Black, red, yellow, white as a goes from 0 to 1. */
static void heat(float a, unsigned char rgb[3])
{
    for (int c = 0; c < 3; c++) {
        float v = 3.0f * a - (float)c;
        rgb[c] = (unsigned char)(255.0f * (v < 0 ? 0 : v > 1 ? 1 : v) + 0.5f);
    }
}

/* An RGB picture, row-major, 3 bytes a pixel. */
#define ZOOM 8 /* screen pixels per image pixel */
#define GAP 8  /* between panels */

/*
 * Draw, left to right: image (h x w, values in [0, 1]) in grey, zoomed ZOOM
 * times; the image again, each step's pixels brightened and tinted orange
 * by the attention the step receives relative to the most attended step on
 * the image (left out when sm has no map); the T x T matrix att (rows: queries,
 * columns: keys) as square cells, black-red-yellow-white up to its
 * largest value.  p->rgb is allocated here; NULL when out of memory.
 */
static void draw(picture *p, const float *img, int h, int w, const float *att, const float *received, int T,
                 const step_map *sm)
{
    int zh = h * ZOOM, zw = w * ZOOM, cell = zh / T > 0 ? zh / T : 1, side = cell * T;
    int overlay = sm->kind != STEPS_NONE;
    p->w = zw + (overlay ? GAP + zw : 0) + GAP + side;
    p->h = zh > side ? zh : side;
    p->rgb = malloc(3 * (size_t)p->w * p->h);
    if (!p->rgb)
        return;
    memset(p->rgb, 48, 3 * (size_t)p->w * p->h); /* dark grey background and gaps */
    float amax = 0, rmax = 0;
    for (int i = 0; i < T * T; i++)
        amax = att[i] > amax ? att[i] : amax;
    for (int s = sm->first; s < T; s++) /* the steps on the image: not a class token */
        rmax = received[s] > rmax ? received[s] : rmax;
    for (int y = 0; y < zh; y++)
        for (int x = 0; x < zw; x++) {
            float v = img[(y / ZOOM) * w + x / ZOOM];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            unsigned char grey[3] = {(unsigned char)(255 * v + 0.5f), grey[0], grey[0]};
            example_put(p, x, y, grey);
            if (!overlay)
                continue;
            int s = step_at(sm, y / ZOOM, x / ZOOM);
            float a = rmax > 0 && s >= 0 && s < T ? received[s] / rmax : 0;
            /* strokes: grey to white as a grows; background: black to orange */
            float ink = v * (0.3f + 0.7f * a), tint = (1 - v) * 0.65f * a;
            unsigned char c[3] = {(unsigned char)(255 * (ink + tint * 1.0f) + 0.5f),
                                  (unsigned char)(255 * (ink + tint * 0.55f) + 0.5f),
                                  (unsigned char)(255 * (ink + tint * 0.1f) + 0.5f)};
            example_put(p, zw + GAP + x, y, c);
        }
    int x0 = zw + (overlay ? GAP + zw : 0) + GAP;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            unsigned char c[3];
            heat(amax > 0 ? att[i * T + j] / amax : 0, c);
            for (int y = i * cell; y < (i + 1) * cell; y++)
                for (int x = j * cell; x < (j + 1) * cell; x++)
                    example_put(p, x0 + x, y, c);
        }
}

/* The attention weights layer l gave the last forward pass: a new (N, heads, T, T) tensor, or NULL. */
static hlr_tensor *read_attention(const hlr_layer *l)
{
    int64_t shape[4];
    if (hlr_attention_weights_shape(l, shape) != HLR_OK)
        return NULL;
    hlr_tensor *w = hlr_tensor_new(HLR_F32, 4, shape);
    if (w && hlr_attention_weights(l, w) != HLR_OK) {
        hlr_tensor_free(w);
        return NULL;
    }
    return w;
}

int attention_picture(hlr_model *m, const hlr_dataset *te, const attention_request *o)
{
    const char *path = o->path;
    const int fashion = o->fashion;
    int rc = 1;
    hlr_tensor *x = NULL, *probs = NULL, *weights = NULL;
    float *att = NULL;
    picture pic = {0};
    char out[4096];

    /* The attention layers, by their numbers in the model's summary: the last one unless --layer. */
    int n = hlr_model_num_layers(m), chosen = -1;
    char list[256] = "";
    for (int i = 0; i < n; i++)
        if (is_attention_layer(hlr_model_layer(m, i))) {
            chosen = i;
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", i);
        }
    if (chosen < 0) {
        fprintf(stderr,
                "hlr-mnist: %s has no attention layer (multihead_attention or transformer_encoder); train one with "
                "--model hybrid or transformer\n",
                path);
        goto out;
    }
    if (o->layer >= 0) {
        if (o->layer >= n || !is_attention_layer(hlr_model_layer(m, (int)o->layer))) {
            if (o->layer >= n)
                fprintf(stderr, "hlr-mnist: %s has no layer %ld (attention layers: %s)\n", path, o->layer, list);
            else
                fprintf(stderr, "hlr-mnist: layer %ld of %s is %s, not an attention layer (attention layers: %s)\n",
                        o->layer, path, hlr_layer_type(hlr_model_layer(m, (int)o->layer)), list);
            goto out;
        }
        chosen = (int)o->layer;
    }
    hlr_layer *layer = hlr_model_layer(m, chosen);

    /* The test image: its values must be exactly the model's input. */
    int64_t size = hlr_dataset_size(te);
    if (o->index < 0 || o->index >= size) {
        fprintf(stderr, "hlr-mnist: --index %ld is out of range: the test set has %lld images (0 to %lld)\n", o->index,
                (long long)size, (long long)size - 1);
        goto out;
    }
    int img_h = (int)hlr_dataset_sample_dim(te, 1), img_w = (int)hlr_dataset_sample_dim(te, 2), pixels = img_h * img_w;
    int64_t in_shape[HLR_MAX_DIMS + 1] = {1}, in_size = 1;
    int in_ndim = 0;
    if (hlr_model_input_shape(m, &in_ndim, in_shape + 1) != HLR_OK)
        goto fail;
    for (int i = 1; i <= in_ndim; i++)
        in_size *= in_shape[i];
    if (in_size != pixels) {
        fprintf(stderr, "hlr-mnist: %s takes inputs of %lld values; the test images are %d x %d (%d values)\n", path,
                (long long)in_size, img_h, img_w, pixels);
        goto out;
    }
    const float *img = hlr_dataset_inputs(te) + o->index * pixels;
    int label = hlr_dataset_labels(te)[o->index];

    /* Classify it: the forward pass also leaves the attention weights in the layer. */
    int out_ndim = 0;
    int64_t out_shape[HLR_MAX_DIMS];
    if (hlr_model_output_shape(m, &out_ndim, out_shape) != HLR_OK)
        goto fail;
    if (out_ndim != 1) {
        fprintf(stderr, "hlr-mnist: %s does not output one score per class\n", path);
        goto out;
    }
    int32_t predicted = -1;
    if (!(x = hlr_tensor_new(HLR_F32, in_ndim + 1, in_shape)) ||
        !(probs = hlr_tensor_new(HLR_F32, 2, (int64_t[]){1, out_shape[0]})))
        goto fail;
    memcpy(hlr_tensor_data(x), img, (size_t)pixels * sizeof *img);
    if (hlr_model_predict(m, x, &predicted, probs) != HLR_OK || !(weights = read_attention(layer)))
        goto fail;
    int heads = (int)hlr_tensor_dim(weights, 1), T = (int)hlr_tensor_dim(weights, 2);
    if (o->head >= heads) {
        fprintf(stderr, "hlr-mnist: --head %ld: layer %d has %d head%s (0 to %d)\n", o->head, chosen, heads,
                heads == 1 ? "" : "s", heads - 1);
        goto out;
    }

    /* att (T, T): one head, or the mean of the heads; received[j]: the mean over queries of column j. */
    if (!(att = calloc((size_t)T * T + T, sizeof *att))) {
        fprintf(stderr, "hlr-mnist: out of memory\n");
        goto out;
    }
    float *received = att + (size_t)T * T;
    const float *w = hlr_tensor_data(weights); /* (1, heads, T, T) */
    int h0 = o->head >= 0 ? (int)o->head : 0, h1 = o->head >= 0 ? (int)o->head + 1 : heads;
    for (int h = h0; h < h1; h++)
        for (int i = 0; i < T * T; i++)
            att[i] += w[(size_t)h * T * T + i] / (float)(h1 - h0);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            received[j] += att[i * T + j] / (float)T;

    const hlr_metadata *md = hlr_model_metadata(m);
    const char *name = hlr_metadata_get(md, "model");
    const char *true_name = hlr_metadata_class_name(md, label), *pred_name = hlr_metadata_class_name(md, predicted);
    step_map sm = map_steps(T, img_h, img_w);
    printf("model: %s (%s), layer %d (%s): %d head%s, %d steps\n", path, name ? name : "model", chosen,
           hlr_layer_type(layer), heads, heads == 1 ? "" : "s", T);
    printf("image: %ld of %lld test images\n", o->index, (long long)size);
    printf("true label: %d%s%s%s\n", label, fashion ? " (" : "", fashion && true_name ? true_name : "",
           fashion ? ")" : "");
    printf("predicted: %d%s%s%s  probability %.4f\n", predicted, fashion ? " (" : "",
           fashion && pred_name ? pred_name : "", fashion ? ")" : "",
           (double)((float *)hlr_tensor_data(probs))[predicted]);
    if (o->head >= 0)
        printf("attention of head %ld (row: query step, column: key step; each row sums to 1):\n", o->head);
    else
        printf("attention, mean of %d head%s (row: query step, column: key step; each row sums to 1):\n", heads,
               heads == 1 ? "" : "s");
    for (int i = 0; i < T; i++) {
        printf("  q%-3d", i);
        for (int j = 0; j < T; j++)
            printf(" %.4f", (double)att[i * T + j]);
        printf("\n");
    }
    printf("attention received per step (mean over the queries; sums to 1):\n");
    float rmax = 0;
    for (int s = 0; s < T; s++)
        rmax = received[s] > rmax ? received[s] : rmax;
    for (int s = 0; s < T; s++) {
        char where[64];
        describe_step(&sm, s, where, sizeof where);
        int bar = rmax > 0 ? (int)(30 * received[s] / rmax + 0.5f) : 0;
        printf("  step %-3d %-25s %.4f%s%.*s\n", s, where, (double)received[s], bar ? " " : "", bar,
               "##############################");
    }

    draw(&pic, img, img_h, img_w, att, received, T, &sm);
    if (!pic.rgb) {
        fprintf(stderr, "hlr-mnist: out of memory\n");
        goto out;
    }
    if (o->out)
        snprintf(out, sizeof out, "%s", o->out);
    else
        snprintf(out, sizeof out, "attention-%ld.ppm", o->index);
    if (example_write_picture("hlr-mnist", out, &pic) != 0)
        goto out;
    printf("wrote %s: %d x %d pixels: the image | %sthe attention matrix%s\n", out, pic.w, pic.h,
           sm.kind != STEPS_NONE ? "the image tinted by the attention each step receives | " : "",
           sm.kind == STEPS_NONE ? " (its steps do not map onto the image)" : "");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
out:
    free(pic.rgb);
    free(att);
    hlr_tensor_free(weights);
    hlr_tensor_free(probs);
    hlr_tensor_free(x);
    return rc;
}

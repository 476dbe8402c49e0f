/*
 * hlr-read -- read handwritten digit strings: a CRNN (convolutions whose
 * columns become a sequence, a bidirectional LSTM) trained with CTC on
 * strings composed from real MNIST digits.
 *
 *   hlr-read train [--task digits] [--epochs N] [--seed S] [--save FILE] [--beam K]
 *                  [--train-strings N] [--test-strings N] [--min-len A] [--max-len B]
 *                  [--batch B] [--lr X] [--schedule cosine|none] [--hidden H] [--layers L]
 *                  [--convs 2-4] [--pool-width 1|2] [--channels C] [--batchnorm 0|1] [--shear S] [--elastic A]
 *                  [--dropout P] [--threads T] [--data DIR]
 *   hlr-read train --task lines --labels FILE --alphabet CHARS [--test-labels FILE] [--height 32]
 *                  [the model and optimiser options above]
 *   hlr-read train --task words [--langs en,es,de,nl,pl] [--words N] [--train-words N] [--test-words N]
 *                  [--width 256] [--langid FILE] [--langid-epochs N] [--langid-noise P] [--mix-fonts P]
 *                  [--hands P] [--splits FILE] [--views F,F...]
 *                  [the model and optimiser options above]
 *   hlr-read predict [--json] [--lexicon] [--views F,F...] FILE IMAGE...
 *   hlr-read evaluate FILE [--test-words N] [--beam K | --views F,F...] [--langid FILE] [--threads T]
 *   hlr-read generate --part train|val|test [options]
 *   hlr-read generate --task words --part train|test-training|test-held-out --out DIR [options]
 *
 * --task words reads handwritten words of five languages drawn in Debian's
 * handwriting fonts and names their language (words.c, docs/words.md).
 *
 * --task lines trains on your own pictures of lines (a labels file of
 * NAME<TAB>TEXT lines, hlr_dataset_load_lines) through hlr_model_fit with
 * the CTC loss: a tenth validates, --test-labels tests.
 *
 * Data: a seeded generator composes strings of A..B digits (default 1..8):
 * each MNIST digit cropped to its ink, scaled by 0.8..1.2, placed with a
 * gap of -3..+6 pixels after the previous one (overlaps included) and a
 * vertical jitter on a canvas 32 pixels high and CANVAS_W wide.  Training
 * strings use only training images, test strings only test images.  The
 * recogniser must find where the digits start and end by itself.
 *
 * Training is a plain loop over the library's pieces: forward, hlr_ctc_loss,
 * backward, an Adam step (cosine learning-rate decay by default).  One line
 * per epoch (loss, CER on 1,000 validation strings or --test-strings when
 * fewer, img/s), then the two lines scripts read: `test CER: 0.85%` and
 * `test string accuracy: 96.10%` (greedy decoding unless --beam).
 */
#include "common.h"
#include "models.h"
#include "options.h"
#include "words.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CANVAS_H 32
#define CANVAS_W 224
#define CLASSES 11 /* the blank (0) and the digits 0..9 as 1..10 */
#define MAX_DIGITS 16
#define MAX_STEPS (CANVAS_W / 2) /* a step per 4 pixel columns (56), or per 2 with --pool-width 1 (112) */

typedef struct options {
    const char *task, *save, *data, *schedule;
    int epochs, threads, beam, batch, min_len, max_len, hidden, layers, convs, pool_w, channels, batchnorm;
    long train_strings, test_strings;
    unsigned long long seed;
    float lr;
    double shear, elastic;
    float dropout;    /* --dropout: on the LSTM's inputs and between its layers */
    const char *part; /* generate: train, val or test */
    const char *labels, *test_labels, *alphabet; /* --task lines */
    int height;
    int distributed; /* --distributed: one of mpirun's processes (digits) */
    words_options w; /* --task words: the options of words.h */
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-read train [--task digits] [--epochs N] [--seed S] [--save FILE] [--beam K]\n"
               "                      [--train-strings N] [--test-strings N] [--min-len A] [--max-len B]\n"
               "                      [--batch B] [--lr X] [--schedule cosine|none] [--hidden H] [--layers L]\n"
               "                      [--convs 2-4] [--pool-width 1|2] [--channels C] [--batchnorm 0|1] [--shear S] "
               "[--elastic A]\n"
               "                      [--dropout P] [--threads T]\n"
               "                      [--data DIR]\n"
               "       hlr-read train --task lines --labels FILE --alphabet CHARS [--test-labels FILE]\n"
               "                      [--height 32] [the model and optimiser options]\n"
               "       hlr-read train --task words [--langs en,es,de,nl,pl] [--words N] [--train-words N]\n"
               "                      [--test-words N] [--width 256] [--langid FILE] [--langid-epochs N]\n"
               "                      [--langid-noise P] [--mix-fonts P] [--hands P] [--splits FILE]\n"
               "                      [--views F,F...]\n"
               "                      [the model and optimiser options]\n"
               "       hlr-read predict [--json] [--lexicon] [--views F,F...] FILE IMAGE...\n"
               "       hlr-read evaluate FILE [--test-words N] [--beam K | --views F,F...] [--langid FILE]\n"
               "                      [--threads T]\n"
               "       hlr-read generate --part train|val|test [the train options that shape the strings]\n"
               "       hlr-read generate --task words --part train|test-training|test-held-out --out DIR\n"
               "  --task           digits (default): strings of MNIST digits; lines: your pictures of lines;\n"
               "                   words: handwritten words of several languages (Debian's word lists drawn in\n"
               "                   its handwriting fonts), read and their language named\n"
               "  --labels         lines: a file of NAME<TAB>TEXT lines, pictures (PNG, PGM) relative to it\n"
               "  --alphabet       lines: the characters the texts use (UTF-8), each a label\n"
               "  --test-labels    lines: pictures to test on (default: the validation tenth)\n"
               "  --height         lines: the pictures' height on the canvas, a multiple of 4 (default 32)\n"
               "  --langs          words: two or more of en es de nl pl fr it pt sv (default en,es,de,nl,pl)\n"
               "  --words          words: at most this many words per language, a tenth held out (default 30000)\n"
               "  --train-words    words: words drawn per training epoch (default 40000)\n"
               "  --test-words     words: test words in each test set (default 2000)\n"
               "  --width          words: the pictures' width, a multiple of 4 (default 256; wider ones squeezed)\n"
               "  --langid FILE    words: name languages with this hlr-langid model instead of training one\n"
               "  --langid-epochs  words: epochs of the language model trained alongside (default 6)\n"
               "  --langid-noise P words: its training words also misread, each letter with probability P\n"
               "                   replaced, lost or doubled, as a recogniser misreads them (default 0.3)\n"
               "  --mix-fonts P    words: the share of training words drawn with a font per letter (default 0.25)\n"
               "  --hands P        words: the share of training words drawn by a hand of strokes (the Hershey\n"
               "                   fonts, every letter's shape, proportions and pen drawn anew; default 0.25)\n"
               "  --splits FILE    words: where the fonts and words of each split are written\n"
               "                   (default words-splits.txt)\n"
               "  --views F,F...   words (train, evaluate) and predict: read each picture also stretched\n"
               "                   across by these factors (0.5 to 2, up to 4; e.g. 1.15,1.35), each reading's\n"
               "                   best path a candidate, and keep the one all readings together find likeliest\n"
               "                   (its CTC log-likelihood summed over them); as many forward passes as\n"
               "                   readings (default: one reading, as drawn)\n"
               "  --out DIR        generate --task words: the folder for the pictures and labels.tsv\n");
    fprintf(f, "  --epochs         training epochs (default 10; words: 14)\n"
               "  --seed           seed of the strings, the initialisation and the order (default 0)\n"
               "  --save           write the trained model to FILE (read back by `predict`)\n"
               "  --beam           decode with a prefix beam search of K (default 0: best path)\n"
               "  --train-strings  strings per training epoch (default 60000, drawn anew each epoch)\n"
               "  --test-strings   test strings, from the test images (default 10000, fixed by the seed)\n"
               "  --min-len, --max-len  digits per string (default 1 and 8)\n"
               "  --batch          batch size (default 32)\n"
               "  --lr             Adam's learning rate (default 0.002)\n"
               "  --schedule       cosine (default: decay to 0 over all batches) or none\n"
               "  --hidden         the LSTM's hidden size per direction (default 128; lines: 96)\n"
               "  --layers         the bidirectional LSTM's stacked layers, 1 to 4 (default 2; lines: 1)\n"
               "  --convs          2, 3 or 4 convolutions before the LSTM (default 4; lines: 3)\n"
               "  --pool-width     the second pooling's width: 2 (default; words: 1), a step per 4 pixel columns,\n"
               "                   or 1, a step per 2 (twice the steps, for narrow characters)\n"
               "  --channels       the first convolution's channels C; the others have 2C (default 24; lines: 16)\n"
               "  --batchnorm      1 (default): batch normalisation after each convolution; 0: none\n"
               "  --shear          training digits slanted by up to this shear (x per y) either way, and\n"
               "                   their width scaled by 0.85..1.15 (default 0: off); never the test strings\n"
               "  --elastic        training digits warped smoothly by up to A pixels (default 0: off)\n"
               "  --dropout        dropout on the LSTM's inputs (and between its layers) in training\n"
               "                   (default 0.4; lines: 0, none)\n"
               "  --threads        threads for the arithmetic (default $HLR_NUM_THREADS or all cores)\n"
               "  --data           folder of MNIST idx files (default $HLR_DATA_DIR or data/mnist)\n"
               "  --distributed    digits: data-parallel training under mpirun: each process composes the\n"
               "                   global batch of processes x --batch strings and trains on its part, the\n"
               "                   gradients averaged after every batch (libhlr-mpi, `make mpi`); only\n"
               "                   rank 0 prints and saves\n"
               "  predict          read PNG or PGM pictures (either polarity): each line of ink is cropped and\n"
               "                   scaled (digits: to 28 of the canvas's 32 pixels); prints the text\n"
               "                   and its confidence (the least sure character's), or with --json one\n"
               "                   object per picture: file, text, confidence, characters, cut; a words\n"
               "                   model adds the three likeliest languages (\"languages\"); with --lexicon\n"
               "                   also the word of its word lists that fits best (\"lexicon\"), and the\n"
               "                   languages weighed by their best word's likelihood too\n"
               "  evaluate         a words model's test words read again: its seed, word count and languages\n"
               "                   from its file, the same lines as train --task words prints at the end\n"
               "  generate         write the strings `train` with the same options would see, to standard\n"
               "                   output: per string 16 int32 labels (digit + 1, -1 padded) and the\n"
               "                   32 x 224 float32 canvas (bench/torch_crnn.py trains PyTorch on them)\n");
}

/* ---- the generator ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t x = *s;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    return x ^ (x >> 33);
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

static int rng_between(uint64_t *s, int lo, int hi) { return lo + (int)(rng_uniform(s) * (hi - lo + 1)); }

/* The ink's bounding box of a 28 x 28 digit (pixels above 0.1). */
static void ink_box(const float *d, int *x0, int *y0, int *x1, int *y1)
{
    *x0 = *y0 = 28;
    *x1 = *y1 = -1;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            if (d[y * 28 + x] > 0.1f) {
                *x0 = x < *x0 ? x : *x0;
                *x1 = x > *x1 ? x : *x1;
                *y0 = y < *y0 ? y : *y0;
                *y1 = y > *y1 ? y : *y1;
            }
    if (*x1 < 0)
        *x0 = *y0 = 0, *x1 = *y1 = 27;
}

/* Bilinear sample of a 28 x 28 digit at (x, y), zero outside. */
static float sample(const float *d, double x, double y)
{
    int ix = (int)floor(x), iy = (int)floor(y);
    double ax = x - ix, ay = y - iy, s = 0;
    for (int k = 0; k < 4; k++) {
        int xx = ix + (k & 1), yy = iy + (k >> 1);
        double w = (k & 1 ? ax : 1 - ax) * (k >> 1 ? ay : 1 - ay);
        if (xx >= 0 && xx < 28 && yy >= 0 && yy < 28)
            s += w * d[yy * 28 + xx];
    }
    return (float)s;
}

/* Move (*x, *y) by the displacement field at (u, v), the point's place in the ink box (0..1). */
static void warp(double field[2][3][3], double u, double v, double *x, double *y)
{
    u = u < 0 ? 0 : u > 1 ? 2 : 2 * u;
    v = v < 0 ? 0 : v > 1 ? 2 : 2 * v;
    const int i = v >= 1 ? 1 : 0, j = u >= 1 ? 1 : 0;
    const double a = u - j, b = v - i;
    for (int c = 0; c < 2; c++) {
        double (*f)[3] = field[c];
        double d = (1 - b) * ((1 - a) * f[i][j] + a * f[i][j + 1]) + b * ((1 - a) * f[i + 1][j] + a * f[i + 1][j + 1]);
        *(c ? y : x) += d;
    }
}

/*
 * Compose one string from `digits` (n images of 28 x 28, labels) into canvas (CANVAS_H x
 * CANVAS_W, zeroed here): labels go to out (digit + 1, the blank being 0).  Returns the length.
 */
static int compose(uint64_t *s, const float *digits, const int32_t *labels, int64_t n, const options *o, int augment,
                   float *canvas, int32_t *out)
{
    float patch[CANVAS_H * 64]; /* an augmented digit before it is placed */
    for (;;) { /* draw until the string fits the canvas */
        memset(canvas, 0, CANVAS_H * CANVAS_W * sizeof *canvas);
        int len = rng_between(s, o->min_len, o->max_len), x = rng_between(s, 0, 6), fits = 1;
        for (int i = 0; i < len && fits; i++) {
            int64_t k = (int64_t)(rng_uniform(s) * (double)n);
            const float *d = digits + k * 784;
            int x0, y0, x1, y1;
            ink_box(d, &x0, &y0, &x1, &y1);
            double scale = 0.8 + 0.4 * rng_uniform(s), sx = scale, shear = 0;
            if (augment && o->shear > 0) { /* another hand: a slant of up to +-shear, width by 0.85..1.15 */
                sx *= 0.85 + 0.3 * rng_uniform(s);
                shear = o->shear * (2 * rng_uniform(s) - 1);
            }
            /* --elastic: a smooth random warp, displacements of up to +-elastic pixels of the 28 x 28
             * digit at a 3 x 3 grid over its ink box, interpolated bilinearly in between */
            double field[2][3][3] = {{{0}}};
            if (augment && o->elastic > 0)
                for (int c = 0; c < 18; c++)
                    field[c / 9][c / 3 % 3][c % 3] = o->elastic * (2 * rng_uniform(s) - 1);
            int h = (int)lround((y1 - y0 + 1) * scale);
            h = h > CANVAS_H - 2 ? CANVAS_H - 2 : h;
            int w = (int)lround((x1 - x0 + 1) * sx), from = 0;
            if (augment) {
                /* the slanted digit in a patch as wide as it can lean, then its ink's own columns */
                int pw = w + (int)ceil(fabs(shear) * h + 2 * o->elastic * scale) + 2, first = pw, last = -1;
                pw = pw > 64 ? 64 : pw;
                const double cx = x0 + (x1 - x0 + 1) / 2.0;
                for (int yy = 0; yy < h; yy++)
                    for (int xx = 0; xx < pw; xx++) {
                        double src_x = cx + (xx + 0.5 - pw / 2.0 - shear * (yy + 0.5 - h / 2.0)) / sx - 0.5;
                        double src_y = y0 + (yy + 0.5) / scale - 0.5;
                        if (o->elastic > 0)
                            warp(field, (src_x - x0) / (x1 - x0 + 1), (src_y - y0) / (y1 - y0 + 1), &src_x, &src_y);
                        float v = sample(d, src_x, src_y);
                        patch[yy * 64 + xx] = v;
                        if (v > 0.1f) {
                            first = xx < first ? xx : first;
                            last = xx > last ? xx : last;
                        }
                    }
                if (last < 0)
                    first = 0, last = pw - 1;
                from = first;
                w = last - first + 1;
            }
            int top = rng_between(s, 1, CANVAS_H - 1 - h);
            if (i > 0)
                x += rng_between(s, -3, 6);
            if (x < 0)
                x = 0;
            if (x + w > CANVAS_W) {
                fits = 0;
                break;
            }
            for (int yy = 0; yy < h; yy++)
                for (int xx = 0; xx < w; xx++) {
                    float v = augment ? patch[yy * 64 + from + xx]
                                      : sample(d, x0 + (xx + 0.5) / scale - 0.5, y0 + (yy + 0.5) / scale - 0.5);
                    float *c = &canvas[(top + yy) * CANVAS_W + x + xx];
                    *c = v > *c ? v : *c; /* overlapping strokes: the darker ink wins */
                }
            out[i] = labels[k] + 1;
            x += w;
        }
        if (fits)
            return len;
    }
}

/* ---- metrics ---- */

/* ---- the model ---- */

/* Read n canvases: CER numerator and denominator, whole strings right.  y: (batch, steps, CLASSES). */
typedef struct score {
    int64_t edits, chars, right, strings;
} score;

static int read_batch(hlr_model *m, hlr_tensor *x, hlr_tensor *y, const int32_t *truth, const int *lens, int n,
                      int beam, score *sc)
{
    if (hlr_model_forward(m, x, y, 0) != HLR_OK)
        return -1;
    const int steps = (int)hlr_tensor_dim(y, 1);
    for (int i = 0; i < n; i++) {
        int32_t got[MAX_STEPS];
        int len;
        if (hlr_ctc_decode(hlr_tensor_f32(y) + (int64_t)i * steps * CLASSES, steps, CLASSES, 0, beam, NULL, got, NULL,
                           MAX_STEPS, &len, NULL) != HLR_OK)
            return -1;
        int64_t e = hlr_edit_distance(truth + i * MAX_DIGITS, lens[i], got, len);
        if (e < 0)
            return -1;
        sc->edits += e;
        sc->chars += lens[i];
        sc->right += e == 0;
        sc->strings++;
    }
    return 0;
}

typedef struct batch_bufs {
    hlr_tensor *x, *y, *dy, *targets, *tlen, *ilen;
    int32_t truth[1024 * MAX_DIGITS];
    int lens[1024];
} batch_bufs;

static void free_bufs(batch_bufs *b)
{
    hlr_tensor_free(b->x);
    hlr_tensor_free(b->y);
    hlr_tensor_free(b->dy);
    hlr_tensor_free(b->targets);
    hlr_tensor_free(b->tlen);
    hlr_tensor_free(b->ilen);
}

/* Evaluate on `count` strings drawn from stream s (so the same strings every time for the same seed). */
static int evaluate(hlr_model *m, batch_bufs *b, int batch, uint64_t seed, const hlr_dataset *d, const options *o,
                    long count, int beam, score *sc)
{
    uint64_t s = seed;
    *sc = (score){0};
    for (long done = 0; done < count;) {
        int n = count - done < batch ? (int)(count - done) : batch;
        for (int i = 0; i < n; i++)
            b->lens[i] = compose(&s, hlr_dataset_inputs(d), hlr_dataset_labels(d), hlr_dataset_size(d), o, 0,
                                 hlr_tensor_f32(b->x) + (int64_t)i * CANVAS_H * CANVAS_W, b->truth + i * MAX_DIGITS);
        if (n < batch) { /* a short last batch: blank canvases, not scored */
            memset(hlr_tensor_f32(b->x) + (int64_t)n * CANVAS_H * CANVAS_W, 0,
                   (size_t)(batch - n) * CANVAS_H * CANVAS_W * sizeof(float));
        }
        if (read_batch(m, b->x, b->y, b->truth, b->lens, n, beam, sc) != 0)
            return -1;
        done += n;
    }
    return 0;
}

/* How the strings are drawn, one definition for train() and generate() (which must write exactly what
 * train sees): training strings from the first `pool` training images with the stream `stream`;
 * validation strings (val_count) from the last images (5,000, or a twelfth of a small set), which
 * the training strings never use, seeded val_seed; test strings from the test images, test_seed. */
typedef struct string_plan {
    int64_t pool;
    uint64_t stream, val_seed, test_seed;
    long val_count;
} string_plan;

/* The plan for these options and training images, and the validation images (NULL: error set). */
static hlr_dataset *plan_strings(const options *o, const hlr_dataset *tr, string_plan *p)
{
    const int64_t hold = hlr_dataset_size(tr) / 12 < 5000 ? hlr_dataset_size(tr) / 12 : 5000;
    p->pool = hlr_dataset_size(tr) - hold;
    p->stream = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    p->val_seed = o->seed * 31 + 7;
    p->test_seed = o->seed * 131 + 11;
    p->val_count = o->test_strings < 1000 ? o->test_strings : 1000;
    return hlr_dataset_slice(tr, p->pool, hold); /* refuses hold 0 */
}

static int train_lines(const options *o);

static int train(const options *o)
{
    if (!strcmp(o->task, "lines"))
        return train_lines(o);
    if (!strcmp(o->task, "words"))
        return words_train(&o->w);
    if (strcmp(o->task, "digits") != 0) {
        fprintf(stderr, "hlr-read: unknown task '%s' (digits, lines or words)\n", o->task);
        return 2;
    }
    if (o->labels || o->test_labels || o->alphabet) {
        fprintf(stderr, "hlr-read: --labels, --test-labels and --alphabet are for --task lines\n");
        return 2;
    }
    if (strcmp(o->schedule, "cosine") && strcmp(o->schedule, "none")) {
        fprintf(stderr, "hlr-read: --schedule '%s' is not a schedule: expected cosine or none\n", o->schedule);
        return 2;
    }
    if (o->min_len > o->max_len) {
        fprintf(stderr, "hlr-read: --min-len %d is above --max-len %d\n", o->min_len, o->max_len);
        return 2;
    }
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        return 1;
    }
    const char *dir = data_dir(o->data);
    hlr_dataset *tr = load_mnist_part("hlr-read", dir, "train"), *te = tr ? load_mnist_part("hlr-read", dir, "t10k")
                                                                             : NULL;
    hlr_model *m = NULL;
    hlr_dataset *val = NULL;
    hlr_optimizer *opt = NULL;
    static batch_bufs b; /* large (its label arrays): not on the stack */
    memset(&b, 0, sizeof b);
    int rc = 1;
    if (!tr || !te)
        goto out;
    if (!(m = example_crnn(o->seed, CANVAS_H, CANVAS_W, CLASSES, o->channels, o->convs, o->pool_w, o->batchnorm,
                           o->hidden, o->layers, o->dropout)) ||
        !(opt = hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f)))
        goto fail;
    /* --distributed: P processes each train on their B of every P B strings, which all of them compose */
    const hlr_distributed *dist = example_dist.lib ? &example_dist.d : NULL;
    const int P = dist ? dist->size : 1, rank = dist ? dist->rank : 0;
    if (dist && hlr_model_broadcast_parameters(m, dist) != HLR_OK)
        goto fail;
    /* cosine decay to 0 over all the batches of all the epochs, stepped per batch */
    if (!strcmp(o->schedule, "cosine") &&
        hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE,
                                   (double)(o->train_strings / ((long)o->batch * P)) * o->epochs, 0.0, 0,
                                   1.0) != HLR_OK)
        goto fail;
    const int B = o->batch;
    int out_nd;
    int64_t out_shape[HLR_MAX_DIMS];
    if (hlr_model_output_shape(m, &out_nd, out_shape) != HLR_OK)
        goto fail;
    const int steps = (int)out_shape[0]; /* the model's output: (steps, CLASSES) */
    b.x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){B, 1, CANVAS_H, CANVAS_W});
    b.y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, steps, CLASSES});
    b.dy = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, steps, CLASSES});
    b.targets = hlr_tensor_new(HLR_I32, 2, (int64_t[]){B, MAX_DIGITS});
    b.tlen = hlr_tensor_new(HLR_I32, 1, (int64_t[]){B});
    b.ilen = hlr_tensor_new(HLR_I32, 1, (int64_t[]){B});
    if (!b.x || !b.y || !b.dy || !b.targets || !b.tlen || !b.ilen)
        goto fail;
    for (int i = 0; i < B; i++)
        hlr_tensor_i32(b.ilen)[i] = steps;
    char summary[4096];
    if (hlr_model_summary(m, summary, sizeof summary, NULL) == HLR_OK)
        printf("%s", summary);
    printf("training a CRNN with CTC on %ld strings of %d-%d MNIST digits per epoch: %d epochs, batch %d, adam lr %g "
           "(%s), seed %llu, %d threads\n", o->train_strings, o->min_len, o->max_len, o->epochs, B, (double)o->lr,
           o->schedule, o->seed, hlr_get_num_threads());
    example_print_distributed(B, 0);
    fflush(stdout);
    string_plan plan;
    if (!(val = plan_strings(o, tr, &plan)))
        goto fail;
    uint64_t stream = plan.stream;
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = monotonic_now(), loss_sum = 0;
        long done = 0;
        int batches = 0;
        while (done + (long)B * P <= o->train_strings) {
            for (int g = 0; g < B * P; g++) { /* string g of the global batch: ours when g / B is our rank */
                int i = g - rank * B, mine = i >= 0 && i < B;
                static float other[CANVAS_H * CANVAS_W];
                int32_t other_t[MAX_DIGITS], *t = mine ? hlr_tensor_i32(b.targets) + i * MAX_DIGITS : other_t;
                memset(t, 0, MAX_DIGITS * sizeof *t);
                int len = compose(&stream, hlr_dataset_inputs(tr), hlr_dataset_labels(tr), plan.pool, o, o->shear > 0 || o->elastic > 0,
                                  mine ? hlr_tensor_f32(b.x) + (int64_t)i * CANVAS_H * CANVAS_W : other, t);
                if (mine)
                    hlr_tensor_i32(b.tlen)[i] = len;
            }
            float loss;
            if (hlr_model_forward(m, b.x, b.y, 1) != HLR_OK ||
                hlr_ctc_loss(b.y, b.ilen, b.targets, b.tlen, 0, HLR_REDUCTION_MEAN, 1, &loss, b.dy) != HLR_OK ||
                hlr_model_backward(m, b.dy, NULL) != HLR_OK ||
                (dist && hlr_model_allreduce_gradients(m, dist) != HLR_OK) || hlr_optimizer_step(opt, m) != HLR_OK ||
                hlr_optimizer_schedule_step(opt) != HLR_OK)
                goto fail;
            loss_sum += loss;
            batches++;
            done += (long)B * P;
        }
        if (dist && P > 1) { /* the mean over the processes' batches */
            if (dist->allreduce_f64(&loss_sum, 1, dist->user) != HLR_OK) {
                fprintf(stderr, "hlr-read: the sum of the losses across processes failed\n");
                goto out;
            }
            loss_sum /= P;
        }
        double secs = monotonic_now() - t0;
        score sc;
        if (evaluate(m, &b, B, plan.val_seed, val, o, plan.val_count, 0, &sc) != 0)
            goto fail;
        printf("epoch %d/%d  loss %.4f  validation CER %.2f%%  string accuracy %.2f%%  %.0f img/s  %.1f s\n", epoch,
               o->epochs, batches ? loss_sum / batches : 0.0, 100.0 * (double)sc.edits / (double)sc.chars,
               100.0 * (double)sc.right / (double)sc.strings, (double)done / secs, secs);
        fflush(stdout);
    }
    score sc;
    if (evaluate(m, &b, B, plan.test_seed, te, o, o->test_strings, o->beam, &sc) != 0)
        goto fail;
    printf("test strings: %lld, %lld digits, %s decoding\n", (long long)sc.strings, (long long)sc.chars,
           o->beam ? "beam" : "best-path");
    printf("test CER: %.2f%%\n", 100.0 * (double)sc.edits / (double)sc.chars);
    printf("test string accuracy: %.2f%%\n", 100.0 * (double)sc.right / (double)sc.strings);
    example_print_distributed(B, 1);
    if (o->save && rank == 0) {
        hlr_metadata *md = hlr_model_metadata(m);
        if (hlr_metadata_set(md, "task", "digits") != HLR_OK ||
            hlr_metadata_set(md, "alphabet", "-0123456789") != HLR_OK || hlr_model_save(m, o->save, NULL) != HLR_OK)
            goto fail;
        printf("saved %s\n", o->save);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
out:
    free_bufs(&b);
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    hlr_dataset_free(val);
    return rc;
}

/* ---- --task lines: pictures of lines and their texts, through hlr_model_fit ---- */

static int print_lines_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)user;
    printf("epoch %d/%d  loss %.4f  validation CER %.2f%%  string accuracy %.2f%%  %.0f img/s  %.1f s\n", s->epoch,
           s->epochs, s->train_loss, 100.0 * s->val_cer, 100.0 * s->val_accuracy, s->samples_per_second, s->seconds);
    fflush(stdout);
    return 0;
}

static int train_lines(const options *o)
{
    if (!o->labels || !o->alphabet) {
        fprintf(stderr, "hlr-read: --task lines needs --labels FILE and --alphabet CHARACTERS\n");
        return 2;
    }
    if (o->height % 4 != 0) {
        fprintf(stderr, "hlr-read: --height %d is not a multiple of 4 (two 2 x 2 poolings)\n", o->height);
        return 2;
    }
    if (strcmp(o->schedule, "cosine") && strcmp(o->schedule, "none")) {
        fprintf(stderr, "hlr-read: --schedule '%s' is not a schedule: expected cosine or none\n", o->schedule);
        return 2;
    }
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        return 1;
    }
    hlr_dataset *d = hlr_dataset_load_lines(o->labels, o->alphabet, o->height, 2, 0, 0), *val = NULL, *test = NULL;
    hlr_model *m = NULL;
    hlr_optimizer *opt = NULL;
    int rc = 1;
    if (!d || hlr_dataset_shuffle(d, o->seed) != HLR_OK)
        goto fail;
    const int64_t W = hlr_dataset_sample_dim(d, 2), n = hlr_dataset_size(d);
    const int C = hlr_dataset_num_classes(d);
    if (n < 10) {
        fprintf(stderr, "hlr-read: %s has %lld pictures; training needs at least 10 (a tenth validates)\n", o->labels,
                (long long)n);
        rc = 2;
        goto out;
    }
    if (!(val = hlr_dataset_split(d, 0.1)))
        goto fail;
    if (o->test_labels && !(test = hlr_dataset_load_lines(o->test_labels, o->alphabet, o->height, 2, (int)W, 0)))
        goto fail;
    if (!(m = example_crnn(o->seed, o->height, (int)W, C, o->channels, o->convs, o->pool_w, o->batchnorm, o->hidden,
                           o->layers, o->dropout)) ||
        !(opt = hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f)))
        goto fail;
    const int64_t batches = (hlr_dataset_size(d) + o->batch - 1) / o->batch;
    if (!strcmp(o->schedule, "cosine") &&
        hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, (double)(batches * o->epochs), 0.0, 0, 1.0) != HLR_OK)
        goto fail;
    printf("training a CRNN with CTC on %lld pictures of %s (%lld x %d, %d labels and the blank; %lld validate): "
           "%d epochs, batch %d, adam lr %g (%s), seed %llu, %d threads\n", (long long)hlr_dataset_size(d), o->labels,
           (long long)W, o->height, C - 1, (long long)hlr_dataset_size(val), o->epochs, o->batch, (double)o->lr,
           o->schedule, o->seed, hlr_get_num_threads());
    fflush(stdout);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = o->epochs;
    fo.batch_size = o->batch;
    fo.schedule_per_batch = 1;
    fo.validation_data = val;
    fo.on_epoch = print_lines_epoch;
    hlr_metrics met;
    if (hlr_model_fit(m, opt, d, &fo) != HLR_OK || hlr_model_evaluate(m, test ? test : val, 64, 1, &met, NULL) != HLR_OK)
        goto fail;
    const char *which = test ? "test" : "validation";
    printf("%s pictures: %lld, best-path decoding\n", which, (long long)met.count);
    printf("%s CER: %.2f%%\n", which, 100.0 * met.cer);
    printf("%s string accuracy: %.2f%%\n", which, 100.0 * met.accuracy);
    if (o->save) {
        char alphabet[4200];
        snprintf(alphabet, sizeof alphabet, "-%s", o->alphabet); /* index 0: the blank */
        hlr_metadata *md = hlr_model_metadata(m);
        if (hlr_metadata_set(md, "task", "lines") != HLR_OK || hlr_metadata_set(md, "alphabet", alphabet) != HLR_OK ||
            hlr_model_save(m, o->save, NULL) != HLR_OK)
            goto fail;
        printf("saved %s\n", o->save);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
out:
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(d);
    hlr_dataset_free(val);
    hlr_dataset_free(test);
    return rc;
}

/* ---- generate: the strings train() sees, for another program (bench/torch_crnn.py) ---- */

/* One record: MAX_DIGITS int32 labels (digit + 1, -1 padded), then the CANVAS_H x CANVAS_W float32
 * canvas; native byte order. */
static int write_record(const float *canvas, const int32_t *labels, int len)
{
    int32_t l[MAX_DIGITS];
    for (int k = 0; k < MAX_DIGITS; k++)
        l[k] = k < len ? labels[k] : -1;
    return fwrite(l, sizeof l, 1, stdout) != 1 || fwrite(canvas, sizeof(float), CANVAS_H * CANVAS_W, stdout) !=
                                                   CANVAS_H * CANVAS_W;
}

static int generate(const options *o)
{
    if (!strcmp(o->task, "words"))
        return words_generate(&o->w);
    if (strcmp(o->task, "digits") != 0) {
        fprintf(stderr, "hlr-read: generate makes --task digits or words, not '%s'\n", o->task);
        return 2;
    }
    if (strcmp(o->part, "train") && strcmp(o->part, "val") && strcmp(o->part, "test")) {
        fprintf(stderr, "hlr-read: --part '%s' is not a part: expected train, val or test\n", o->part);
        return 2;
    }
    const char *dir = data_dir(o->data);
    hlr_dataset *tr = load_mnist_part("hlr-read", dir, "train"), *te = tr ? load_mnist_part("hlr-read", dir, "t10k")
                                                                             : NULL;
    hlr_dataset *val = NULL;
    int rc = 1;
    if (!tr || !te)
        goto out;
    string_plan plan; /* as train()'s */
    if (!(val = plan_strings(o, tr, &plan))) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        goto out;
    }
    float canvas[CANVAS_H * CANVAS_W];
    int32_t labels[MAX_DIGITS];
    int failed = 0;
    if (!strcmp(o->part, "train")) {
        uint64_t stream = plan.stream;
        const long per_epoch = o->train_strings / o->batch * o->batch;
        for (long i = 0; i < per_epoch * o->epochs && !failed; i++) {
            int len = compose(&stream, hlr_dataset_inputs(tr), hlr_dataset_labels(tr), plan.pool, o, o->shear > 0 || o->elastic > 0,
                              canvas,
                              labels);
            failed = write_record(canvas, labels, len);
        }
    } else {
        const int is_val = !strcmp(o->part, "val");
        const hlr_dataset *d = is_val ? val : te;
        uint64_t s = is_val ? plan.val_seed : plan.test_seed;
        const long count = is_val ? plan.val_count : o->test_strings;
        for (long i = 0; i < count && !failed; i++) {
            int len = compose(&s, hlr_dataset_inputs(d), hlr_dataset_labels(d), hlr_dataset_size(d), o, 0, canvas,
                              labels);
            failed = write_record(canvas, labels, len);
        }
    }
    if (failed || fflush(stdout) != 0) {
        fprintf(stderr, "hlr-read: cannot write the strings to standard output: %s\n", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    hlr_dataset_free(val);
    return rc;
}

/* ---- predict ---- */

static int predict(const char *path, char **images, int n, int json, int lexicon, const double *views, int nviews)
{
    hlr_model *m = hlr_model_load(path, NULL);
    if (!m) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        return 1;
    }
    const hlr_metadata *md = hlr_model_metadata(m);
    const char *alphabet = hlr_metadata_get(md, "alphabet"), *task = hlr_metadata_get(md, "task");
    const int words = task && !strcmp(task, "words"), lines = words || (task && !strcmp(task, "lines"));
    words_langid *langs = NULL; /* a words model's language identifier, saved beside it (and the lexicon) */
    if (lexicon && !words) {
        fprintf(stderr, "hlr-read: --lexicon is for words models; %s is not one\n", path);
        hlr_model_free(m);
        return 1;
    }
    if (nviews && !lines) {
        fprintf(stderr, "hlr-read: --views is for words and lines models; %s is not one\n", path);
        hlr_model_free(m);
        return 1;
    }
    if (words && !(langs = words_langid_open(path, m, lexicon))) {
        hlr_model_free(m);
        return 1;
    }
    int in_nd, out_nd, off[1025], chars = -1;
    int64_t in_shape[HLR_MAX_DIMS], out_shape[HLR_MAX_DIMS];
    hlr_model_input_shape(m, &in_nd, in_shape);
    hlr_model_output_shape(m, &out_nd, out_shape);
    if (alphabet)
        chars = example_utf8_offsets(alphabet, off, 1024);
    if (!alphabet || in_nd != 3 || in_shape[0] != 1 || out_nd != 2 || out_shape[1] != chars ||
        (!lines && (in_shape[1] != CANVAS_H || in_shape[2] != CANVAS_W))) {
        fprintf(stderr, "hlr-read: %s is not a model saved by hlr-read train\n", path);
        words_langid_close(langs);
        hlr_model_free(m);
        return 1;
    }
    const int64_t H = in_shape[1], W = in_shape[2];
    const int T = (int)out_shape[0], C = (int)out_shape[1];
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, H, W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, C});
    int32_t *labels = malloc((size_t)T * sizeof *labels);
    float *conf = malloc((size_t)T * sizeof *conf);
    char *text = malloc((size_t)T * 4 + 1);
    /* --views: the picture also read stretched across by each factor, the readings' scores in ys[1..] */
    hlr_tensor *xs = nviews ? hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, H, W}) : NULL, *ys[EXAMPLE_MAX_VIEWS] = {y};
    int rc = 0, views_ok = !nviews || xs;
    for (int v = 1; v <= nviews && views_ok; v++)
        views_ok = (ys[v] = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, T, C})) != NULL;
    for (int i = 0; i < n && x && y && labels && conf && text && views_ok; i++) {
        hlr_tensor *img = hlr_image_load(images[i], 0);
        if (!img) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error()); /* the message names the picture */
            rc = 1;
            continue;
        }
        int64_t width = 0;
        /* a words model is for people's own pictures: a photograph's light is flattened, its line straightened */
        int cut = example_line_canvas(img, lines, H, W, words ? HLR_IMAGE_PHOTO : 0, hlr_tensor_f32(x), &width);
        hlr_tensor_free(img);
        int32_t wl = (int32_t)width, steps = T, vsteps[EXAMPLE_MAX_VIEWS] = {0};
        int len, from = 0;
        double lp;
        /* a lines model reads the picture's own columns (digits models were trained on whole canvases) */
        int ok = cut >= 0 && (!lines || (hlr_model_set_lengths(m, &wl, 1) == HLR_OK &&
                                         hlr_model_output_lengths(m, &vsteps[0], 1) == HLR_OK)) &&
                 hlr_model_forward(m, x, y, 0) == HLR_OK;
        for (int v = 1; ok && v <= nviews; v++) { /* the picture stretched across */
            int32_t sw = (int32_t)example_stretched_width(width, views[v - 1], W);
            example_stretch_columns(hlr_tensor_f32(x), W, hlr_tensor_f32(xs), H, W, width, sw);
            ok = hlr_model_set_lengths(m, &sw, 1) == HLR_OK && hlr_model_output_lengths(m, &vsteps[v], 1) == HLR_OK &&
                 hlr_model_forward(m, xs, ys[v], 0) == HLR_OK;
        }
        const float *rows[EXAMPLE_MAX_VIEWS]; /* the picture's readings */
        int tv[EXAMPLE_MAX_VIEWS];
        for (int v = 0; v <= nviews; v++)
            rows[v] = hlr_tensor_f32(ys[v]), tv[v] = lines ? vsteps[v] : T;
        /* the best path all readings together find likeliest; its characters' confidences from a reading whose
         * own best path it is */
        if (ok && nviews)
            ok = example_ctc_views(rows, tv, nviews + 1, C, labels, &from) >= 0;
        steps = tv[from];
        if (!ok || hlr_ctc_decode(hlr_tensor_f32(ys[from]), steps, C, 0, 0, NULL, labels, conf, T, &len, &lp) !=
                       HLR_OK) {
            fprintf(stderr, "hlr-read: %s: %s\n", images[i], hlr_last_error());
            rc = 1;
            continue;
        }
        const double confidence = example_ctc_text(alphabet, off, C, labels, conf, len, lp, text);
        const char *codes[3] = {NULL, NULL, NULL};
        float probs[3];
        char word[4 * 20 + 1] = ""; /* --lexicon: the word of the lists (WL_MAX_LEN characters at most) */
        if (langs && words_langid_read(langs, rows, tv, nviews + 1, C, text, word, codes, probs) != 0) {
            rc = 1;
            continue;
        }
        if (json) {
            printf("{\"file\": ");
            json_string(stdout, images[i]);
            printf(", \"text\": ");
            json_string(stdout, text);
            printf(", \"confidence\": ");
            json_number(stdout, confidence);
            printf(", \"characters\": [");
            for (int k = 0; k < len; k++) {
                printf("%s", k ? ", " : "");
                json_number(stdout, conf[k]);
            }
            printf("], \"cut\": %s", cut ? "true" : "false");
            if (lexicon) {
                printf(", \"lexicon\": ");
                json_string(stdout, word);
            }
            if (langs) {
                printf(", \"languages\": [");
                for (int k = 0; k < 3 && codes[k]; k++) {
                    printf("%s{\"language\": ", k ? ", " : "");
                    json_string(stdout, codes[k]);
                    printf(", \"probability\": ");
                    json_number(stdout, probs[k]);
                    printf("}");
                }
                printf("]");
            }
            printf("}\n");
        } else {
            printf("%s: %s  (confidence %.1f%%%s)", images[i], text, 100.0 * confidence,
                   cut ? "; cut at the right" : "");
            if (lexicon)
                printf("  lexicon: %s", word[0] ? word : "(none fits)");
            for (int k = 0; k < 3 && codes[k]; k++)
                printf("%s%s %.1f%%", k ? ", " : "  language: ", codes[k], 100.0 * probs[k]);
            printf("\n");
        }
    }
    if (!x || !y || !labels || !conf || !text || !views_ok) {
        fprintf(stderr, "hlr-read: %s\n", x && y && views_ok ? "out of memory" : hlr_last_error());
        rc = 1;
    }
    hlr_tensor_free(xs);
    for (int v = 1; v <= nviews; v++)
        hlr_tensor_free(ys[v]);
    free(labels);
    free(conf);
    free(text);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    words_langid_close(langs);
    hlr_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "hlr-read: which command: train or predict? (see hlr-read --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "predict")) {
        int json = 0, lexicon = 0, at = 2, nviews = 0;
        double views[EXAMPLE_MAX_VIEWS - 1];
        for (; at < argc && !strncmp(argv[at], "--", 2); at++) {
            if (!strcmp(argv[at], "--json"))
                json = 1;
            else if (!strcmp(argv[at], "--lexicon"))
                lexicon = 1;
            else if (!strcmp(argv[at], "--views") && at + 1 < argc) {
                if ((nviews = example_parse_views("hlr-read", argv[++at], views)) < 0)
                    return 2;
            } else {
                fprintf(stderr, "hlr-read: predict takes --json, --lexicon and --views F,F..., not '%s'\n", argv[at]);
                return 2;
            }
        }
        if (argc < at + 2) {
            fprintf(stderr, "hlr-read: predict needs a model FILE and at least one IMAGE\n");
            return 2;
        }
        setlocale(LC_CTYPE, "C.UTF-8"); /* --lexicon reads the word lists */
        return predict(argv[at], argv + at + 1, argc - at - 1, json, lexicon, views, nviews);
    }
    const int gen = !strcmp(argv[1], "generate"), eval = !strcmp(argv[1], "evaluate");
    if (strcmp(argv[1], "train") != 0 && !gen && !eval) {
        fprintf(stderr, "hlr-read: unknown command '%s' (train, predict, evaluate or generate)\n", argv[1]);
        return 2;
    }
    setlocale(LC_CTYPE, "C.UTF-8"); /* the word lists' letters (--task words) */
    options o = {.task = "digits",
                 .batch = 32,
                 .min_len = 1,
                 .max_len = 8,
                 .train_strings = 60000,
                 .test_strings = 10000,
                 .lr = 2e-3f,
                 .schedule = "cosine",
                 .dropout = -1, /* .layers, .convs too: the task's own default, set below */
                 .pool_w = 0, /* the task's own default, set below */
                 .batchnorm = 1,
                 .height = 32, /* .epochs, .hidden and .channels 0: the task's own default, set below */
                 .w = {.langs = "en,es,de,nl,pl",
                       .words = 30000,
                       .width = 256,
                       .train_words = 40000,
                       .test_words = 2000,
                       .langid_epochs = 6,
                       .langid_noise = 0.3,
                       .mix = 0.25,
                       .hands = 0.25}};
    const char *views = NULL; /* --views F,F...: the test pictures also read stretched across */
    const opt_spec specs[] = {
        OPT_STR("--task", &o.task),
        OPT_STR("--save", &o.save),
        OPT_STR("--data", &o.data),
        OPT_STR("--schedule", &o.schedule),
        OPT_NUM("--hidden", OPT_INT, &o.hidden, 1, 4096),
        OPT_NUM("--layers", OPT_INT, &o.layers, 1, 4),
        OPT_NUM("--convs", OPT_INT, &o.convs, 2, 4),
        OPT_NUM("--pool-width", OPT_INT, &o.pool_w, 1, 2),
        OPT_NUM("--channels", OPT_INT, &o.channels, 1, 256),
        OPT_NUM("--batchnorm", OPT_INT, &o.batchnorm, 0, 1),
        OPT_NUM("--shear", OPT_DOUBLE, &o.shear, 0, 1),
        OPT_NUM("--elastic", OPT_DOUBLE, &o.elastic, 0, 8),
        OPT_NUM("--dropout", OPT_FLOAT, &o.dropout, 0, 0.9),
        OPT_NUM("--epochs", OPT_INT, &o.epochs, 1, 10000),
        OPT_NUM("--threads", OPT_INT, &o.threads, 1, 1024),
        OPT_NUM("--beam", OPT_INT, &o.beam, 0, 4096),
        OPT_NUM("--batch", OPT_INT, &o.batch, 1, 1024),
        OPT_NUM("--min-len", OPT_INT, &o.min_len, 1, MAX_DIGITS),
        OPT_NUM("--max-len", OPT_INT, &o.max_len, 1, MAX_DIGITS),
        OPT_NUM("--train-strings", OPT_LONG, &o.train_strings, 1, 100000000),
        OPT_NUM("--test-strings", OPT_LONG, &o.test_strings, 1, 100000000),
        OPT_NUM("--seed", OPT_U64, &o.seed, 0, HUGE_VAL),
        OPT_POS_HINT("--lr", OPT_FLOAT, &o.lr, 1e3, "Adam's learning rate"),
        OPT_STR("--part", &o.part),
        OPT_STR("--labels", &o.labels),
        OPT_STR("--test-labels", &o.test_labels),
        OPT_STR("--alphabet", &o.alphabet),
        OPT_NUM("--height", OPT_INT, &o.height, 8, 256),
        OPT_FLAG_("--distributed", &o.distributed),
        OPT_STR("--langs", &o.w.langs),
        OPT_STR("--langid", &o.w.langid),
        OPT_STR("--splits", &o.w.splits),
        OPT_STR("--out", &o.w.out),
        OPT_NUM("--width", OPT_INT, &o.w.width, 8, 4096),
        OPT_NUM("--words", OPT_LONG, &o.w.words, 20, 100000000),
        OPT_NUM("--train-words", OPT_LONG, &o.w.train_words, 1, 100000000),
        OPT_NUM("--test-words", OPT_LONG, &o.w.test_words, 1, 10000000),
        OPT_NUM("--langid-epochs", OPT_INT, &o.w.langid_epochs, 1, 10000),
        OPT_NUM("--langid-noise", OPT_DOUBLE, &o.w.langid_noise, 0, 0.9),
        OPT_NUM("--mix-fonts", OPT_DOUBLE, &o.w.mix, 0, 1),
        OPT_NUM("--hands", OPT_DOUBLE, &o.w.hands, 0, 1),
        OPT_STR("--views", &views),
    };
    const char *model_file = NULL;
    int npos = 0;
    int rc = parse_options("hlr-read", argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]), &model_file,
                           eval ? 1 : 0, &npos);
    if (rc > 0)
        usage(stdout);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (eval) { /* a words model's test words read again: its own seed, words and languages */
        if (npos != 1) {
            fprintf(stderr, "hlr-read: evaluate needs the FILE of a words model\n");
            return 2;
        }
        o.task = "words";
        o.w.evaluate = model_file;
    }
    const int is_words = !strcmp(o.task, "words");
    if (!o.epochs)
        o.epochs = is_words ? 14 : 10;
    /* each task's own model unless told otherwise: digits and words the recipe that reads the test strings and
     * held-out fonts best (README, docs/words.md), lines the smaller one it had before */
    const int recipe = is_words || !strcmp(o.task, "digits");
    if (!o.hidden)
        o.hidden = recipe ? 128 : 96;
    if (!o.channels)
        o.channels = recipe ? 24 : 16;
    if (!o.layers)
        o.layers = recipe ? 2 : 1;
    if (!o.convs)
        o.convs = recipe ? 4 : 3;
    if (o.dropout < 0)
        o.dropout = recipe ? 0.4f : 0.0f;
    if (!o.pool_w) /* words: a step per 2 columns, for narrow scripts (docs/words.md) */
        o.pool_w = is_words ? 1 : 2;
    if (!is_words && (o.w.langid || o.w.splits || o.w.out || strcmp(o.w.langs, "en,es,de,nl,pl") || o.w.width != 256 ||
                      o.w.words != 30000 || o.w.train_words != 40000 || o.w.test_words != 2000 ||
                      o.w.langid_epochs != 6 || o.w.langid_noise != 0.3 || o.w.mix != 0.25 ||
                      o.w.hands != 0.25)) {
        fprintf(stderr, "hlr-read: --langs, --langid, --splits, --out, --width, --words, --train-words, --test-words, "
                        "--langid-epochs, --langid-noise, --mix-fonts and --hands are for --task words\n");
        return 2;
    }
    if (views && (!is_words || gen)) {
        fprintf(stderr, "hlr-read: --views is for train --task words, evaluate and predict\n");
        return 2;
    }
    if (views && o.beam) {
        fprintf(stderr, "hlr-read: --views reads by best path; it does not go with --beam\n");
        return 2;
    }
    if (views && (o.w.nviews = example_parse_views("hlr-read", views, o.w.views)) < 0)
        return 2;
    if (is_words) { /* the options words.c reads */
        o.w.epochs = o.epochs;
        o.w.batch = o.batch;
        o.w.hidden = o.hidden;
        o.w.layers = o.layers;
        o.w.dropout = o.dropout;
        o.w.convs = o.convs;
        o.w.pool_w = o.pool_w;
        o.w.channels = o.channels;
        o.w.batchnorm = o.batchnorm;
        o.w.beam = o.beam;
        o.w.threads = o.threads;
        o.w.seed = o.seed;
        o.w.lr = o.lr;
        o.w.schedule = o.schedule;
        o.w.save = o.save;
        o.w.part = o.part;
        if (strcmp(o.schedule, "cosine") && strcmp(o.schedule, "none")) {
            fprintf(stderr, "hlr-read: --schedule '%s' is not a schedule: expected cosine or none\n", o.schedule);
            return 2;
        }
        if (o.w.train_words < o.batch) {
            fprintf(stderr, "hlr-read: --train-words %ld is fewer than one batch of %d\n", o.w.train_words, o.batch);
            return 2;
        }
    }
    if (o.train_strings < o.batch) {
        fprintf(stderr, "hlr-read: --train-strings %ld is fewer than one batch of %d\n", o.train_strings, o.batch);
        return 2;
    }
    if (gen != (o.part != NULL)) {
        fprintf(stderr, "hlr-read: %s\n", gen ? "generate needs --part train, val or test" : "--part is for generate");
        return 2;
    }
    if (o.distributed && (gen || eval || strcmp(o.task, "digits") != 0)) {
        fprintf(stderr, "hlr-read: --distributed is for train --task digits\n");
        return 2;
    }
    if (o.distributed && example_start_distributed("hlr-read", &argc, &argv) != 0)
        return 1;
    rc = gen ? generate(&o) : train(&o);
    example_stop_distributed();
    return rc;
}

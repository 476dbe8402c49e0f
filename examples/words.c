/*
 * words.c -- hlr-read's words task.  See words.h and docs/words.md.
 *
 * Words: Debian's word lists through wordlang.c (lower case, letters only,
 * each word in one list only, a tenth of every language held out).
 * Pictures: each word drawn in a handwriting font that has all its letters
 * (handwriting.c), slanted, bent and dirtied anew every time it is drawn,
 * then cropped to its ink and scaled to 32 pixels high as any picture the
 * recogniser reads.  Training draws training words in the training fonts;
 * the test draws held-out words twice, in the training fonts and in the
 * held-out families.
 *
 * Model: example_crnn (convolutions, columns as steps, a bidirectional
 * LSTM, CTC over the alphabet of the training words), trained batch by
 * batch on freshly drawn words through hlr_model_train_batch with each
 * picture's width as its length.  The language of a reading is the
 * hlr-langid model's answer on its text; with the lexicon, the language
 * whose word list holds the best-scoring word.
 */
#include "words.h"
#include "common.h"
#include "handwriting.h"
#include "models.h"
#include "wordlang.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HEIGHT 32
#define LEX_BEAM 8

_Static_assert(sizeof((words_options *)0)->views / sizeof(double) == EXAMPLE_MAX_VIEWS - 1,
               "words_options holds every stretch factor --views takes");

/* The streams a seed gives: the training words' (train and generate --part train) and the test sets'. */
static uint64_t train_stream(unsigned long long seed)
{
    return seed * 0x9E3779B97F4A7C15ULL + 1;
}
static uint64_t test_stream(unsigned long long seed)
{
    return seed * 131 + 11;
}

/* ---- the alphabet: the characters of the training words, label = index + 1 ---- */

static int label_of(const wl_vocab *a, uint32_t c)
{
    int k = wl_vocab_index(a, c);
    return k < 0 ? -1 : k + 1;
}

/* A word's labels (WL_MAX_LEN, -1 padded); its length, or -1 when a character is not in the alphabet. */
static int word_labels(const wl_vocab *a, const char *word, int32_t *out)
{
    uint32_t cp[WL_MAX_LEN];
    int n = wl_utf8_decode((const unsigned char *)word, strlen(word), cp, WL_MAX_LEN);
    if (n < 1 || n > WL_MAX_LEN)
        return -1;
    for (int i = 0; i < WL_MAX_LEN; i++)
        out[i] = -1;
    for (int i = 0; i < n; i++)
        if ((out[i] = label_of(a, cp[i])) < 0)
            return -1;
    return n;
}

/* The alphabet as UTF-8, the blank first as '-' (hlr-read predict's "alphabet" metadata); malloc'ed. */
static char *alphabet_string(const wl_vocab *a)
{
    char *chars = wl_vocab_string(a), *s = chars ? malloc(strlen(chars) + 2) : NULL;
    if (s)
        sprintf(s, "-%s", chars);
    free(chars);
    return s;
}

/* ---- pictures ---- */

/* Draw the word (in font, or with letter_fonts each letter in its own) into a canvas of HEIGHT x W
 * (zeroed here): a picture wider than W is squeezed to W.
 * The picture's width (its length for the model), or -1 when the font cannot draw it. */
static int draw(const hw_fonts *fs, int font, const int *letter_fonts, const char *word, const hw_style *st,
                uint64_t *rng, int W, float *canvas)
{
    hlr_tensor *t = letter_fonts ? hw_render_letters(fs, letter_fonts, word, st, rng, HEIGHT)
                                 : hw_render(fs, font, word, st, rng, HEIGHT);
    if (!t)
        return -1;
    const int w = (int)hlr_tensor_dim(t, 2);
    const float *p = hlr_tensor_f32(t);
    if (w <= W) {
        memset(canvas, 0, (size_t)HEIGHT * W * sizeof *canvas);
        for (int y = 0; y < HEIGHT; y++)
            memcpy(canvas + (size_t)y * W, p + (size_t)y * w, (size_t)w * sizeof *p);
    } else { /* squeezed: its columns resampled linearly */
        example_stretch_columns(p, w, canvas, HEIGHT, W, w, W);
    }
    hlr_tensor_free(t);
    return w < W ? w : W;
}

/* A fixed set of test pictures. */
typedef struct wset {
    int64_t n;
    float *x;
    int32_t *widths, *targets; /* n, n x WL_MAX_LEN */
    int *lang, *font;
    const char **text;
} wset;

static void wset_free(wset *s)
{
    free(s->x);
    free(s->widths);
    free(s->targets);
    free(s->lang);
    free(s->font);
    free(s->text);
    memset(s, 0, sizeof *s);
}

/* Room for count pictures W wide (s->n 0); 0, or -1 when out of memory (wset_free() frees what was made). */
static int wset_alloc(wset *s, long count, int W)
{
    memset(s, 0, sizeof *s);
    s->x = malloc((size_t)count * HEIGHT * W * sizeof *s->x);
    s->widths = malloc((size_t)count * sizeof *s->widths);
    s->targets = malloc((size_t)count * WL_MAX_LEN * sizeof *s->targets);
    s->lang = malloc((size_t)count * sizeof *s->lang);
    s->font = malloc((size_t)count * sizeof *s->font);
    s->text = malloc((size_t)count * sizeof *s->text);
    return s->x && s->widths && s->targets && s->lang && s->font && s->text ? 0 : -1;
}

/* One training word as an epoch draws it from rng: a training word of a random language, in a random training
 * font that draws it (or, for --mix-fonts of them, a training font per letter; for --hands of them, a hand of
 * strokes), distorted, into canvas
 * (HEIGHT x W) and its labels into targets (WL_MAX_LEN).  Returns its width; its language, font and text
 * go to *lang, *font and *word. */
static int draw_training_word(const words_options *o, const wl_corpus *c, const wl_vocab *a, const hw_fonts *fs,
                              uint64_t *rng, int W, float *canvas, int32_t *targets, int *lang, int *font,
                              const char **word)
{
    for (;;) {
        const int l = (int)(hw_uniform(rng) * c->nlang);
        const char *w = c->words[l][(size_t)(hw_uniform(rng) * (double)c->ntrain)];
        int f = hw_pick_font(fs, 0, w, rng), letters[4 * WL_MAX_LEN];
        if (f < 0 || word_labels(a, w, targets) < 0)
            continue;
        const int hand = o->hands > 0 && hw_uniform(rng) < o->hands ? hw_pick_hand(fs, w, rng) : -1;
        if (hand >= 0)
            f = hand;
        const int mix = hand < 0 && o->mix > 0 && hw_uniform(rng) < o->mix && hw_pick_letter_fonts(fs, w, rng, letters) == 0;
        const int width = draw(fs, f, mix ? letters : NULL, w, &hw_style_default, rng, W, canvas);
        if (width > 0) {
            *lang = l;
            *font = f;
            *word = w;
            return width;
        }
    }
}

/* count test words (languages in turn) drawn in the held-out fonts or the training fonts, seeded. */
static int make_test_set(wset *s, const wl_corpus *c, const wl_vocab *a, const hw_fonts *fs, int held_out, long count,
                         uint64_t seed, int W)
{
    if (wset_alloc(s, count, W) != 0)
        return -1;
    uint64_t rng = seed;
    size_t next[WL_MAX_LANGS] = {0};
    for (long k = 0; k < count; k++) {
        const int l = (int)(k % c->nlang);
        for (; next[l] < c->ntest; next[l]++) { /* the next test word of language l that a font draws */
            const char *word = c->words[l][c->ntrain + next[l]];
            int32_t *t = s->targets + s->n * WL_MAX_LEN;
            int font = word_labels(a, word, t) > 0 ? hw_pick_font(fs, held_out, word, &rng) : -1;
            int w = font >= 0 ? draw(fs, font, NULL, word, &hw_style_default, &rng, W, s->x + s->n * HEIGHT * W) : -1;
            if (w < 0)
                continue;
            s->widths[s->n] = w;
            s->lang[s->n] = l;
            s->font[s->n] = font;
            s->text[s->n] = word;
            s->n++;
            next[l]++;
            break;
        }
    }
    return 0;
}

/* ---- reading a set ---- */

typedef struct result {
    int64_t edits, chars, right, lang_right, n;
    int64_t font_edits[HW_MAX_FONTS], font_chars[HW_MAX_FONTS]; /* best path, by font */
    int64_t lex_edits, lex_right, lex_lang_right;
    int64_t both_lang_right; /* the language with the best sum of the lexicon's log p and langid's log p */
    double seconds;          /* reading alone: the forward pass and best-path decoding */
} result;

/* Per-language lexicons of the corpus's words: its first `count` of each language (c->nlex: the closed lexicon,
 * training and test words and as many again of the list never drawn, up to WL_LEXICON_MAX a language;
 * c->ntrain: the training words alone, so that no test word is in them).  A word with a letter outside the
 * alphabet is left out. */
typedef struct lexicons {
    hlr_lexicon *lex[WL_MAX_LANGS];
    int n;
} lexicons;

static int build_lexicons(lexicons *L, const wl_corpus *c, const wl_vocab *a, size_t count)
{
    L->n = c->nlang;
    for (int l = 0; l < c->nlang; l++) {
        if (!(L->lex[l] = hlr_lexicon_new()))
            return -1;
        for (size_t k = 0; k < count; k++) {
            int32_t t[WL_MAX_LEN];
            int n = word_labels(a, c->words[l][k], t);
            if (n > 0 && hlr_lexicon_add(L->lex[l], t, n) != HLR_OK)
                return -1;
        }
    }
    return 0;
}

static void free_lexicons(lexicons *L)
{
    for (int l = 0; l < L->n; l++)
        hlr_lexicon_free(L->lex[l]);
    L->n = 0;
}

/* Each language's best word for the readings of one sample (logits[v]: T[v] steps of C; one reading, or more
 * with --views): beam search within its lexicon; with more readings than one, each reading's word a
 * candidate, the one with the largest CTC log-likelihood averaged over the readings kept.  The word's
 * log-likelihood (averaged) into lp[l] (-inf when no word fits), its labels into words[l], its length lens[l].
 * Returns -1 on an error (hlr_last_error() says why). */
static int lexicon_words(const lexicons *L, const float *const *logits, const int *T, int views, int C, double *lp,
                         int32_t (*words)[WL_MAX_LEN + 1], int *lens)
{
    for (int l = 0; l < L->n; l++) {
        lp[l] = -INFINITY;
        int32_t cand[WL_MAX_LEN + 1];
        for (int v = 0; v < views; v++) {
            int n;
            double score;
            hlr_status st =
                hlr_ctc_decode(logits[v], T[v], C, 0, LEX_BEAM, L->lex[l], cand, NULL, WL_MAX_LEN + 1, &n, &score);
            if (st == HLR_ENOTFOUND)
                continue;
            if (st != HLR_OK)
                return -1;
            if (views > 1) { /* the candidate by all readings */
                if (lp[l] > -INFINITY && n == lens[l] && !memcmp(cand, words[l], (size_t)n * sizeof *cand))
                    continue;
                score = 0;
                for (int u = 0; u < views; u++) {
                    const double x = example_ctc_log_likelihood(logits[u], T[u], C, cand, n);
                    if (isnan(x))
                        return -1;
                    score += x / views;
                }
            }
            if (score > lp[l]) {
                lp[l] = score;
                lens[l] = n;
                memcpy(words[l], cand, (size_t)n * sizeof *cand);
            }
        }
    }
    return 0;
}

/* labels -> UTF-8 text */
static void labels_text(const wl_vocab *a, const int32_t *labels, int len, char *text)
{
    char *q = text;
    for (int i = 0; i < len; i++)
        if (labels[i] >= 1 && labels[i] <= a->n)
            q += wl_utf8_encode(a->chars[labels[i] - 1], q);
    *q = '\0';
}

/* Read a test set: CER, word accuracy and language accuracy (langid, when given, on the text read by best
 * path, or by a prefix beam search of width beam; with lexicons, also the lexicon's word and its language). */
static int read_set(hlr_model *m, const wset *s, int batch, int W, int beam, const double *views, int nviews,
                    const wl_vocab *a, hlr_model *langid, const wl_vocab *lv, int nlang, const lexicons *L, result *r)
{
    memset(r, 0, sizeof *r);
    int in_nd, out_nd;
    int64_t in_shape[HLR_MAX_DIMS], out_shape[HLR_MAX_DIMS];
    hlr_model_input_shape(m, &in_nd, in_shape);
    hlr_model_output_shape(m, &out_nd, out_shape);
    const int T = (int)out_shape[0], C = (int)out_shape[1];
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){batch, T, C});
    int32_t *ilen = malloc((size_t)batch * sizeof *ilen), *got = malloc((size_t)(T + 1) * sizeof *got);
    char *texts = malloc((size_t)s->n * (4 * T + 1));
    const char **tp = malloc((size_t)s->n * sizeof *tp);
    float *probs = malloc((size_t)s->n * (size_t)(nlang > 0 ? nlang : 1) * sizeof *probs);
    const int nl = L ? L->n : 0;
    double *lexlp = malloc((size_t)s->n * (size_t)(nl > 0 ? nl : 1) * sizeof *lexlp);
    /* --views: each picture read once more per stretch factor, those readings' scores in ys[1..] */
    float *xs = nviews ? malloc((size_t)batch * HEIGHT * W * sizeof *xs) : NULL;
    hlr_tensor *ys[EXAMPLE_MAX_VIEWS] = {y};
    int32_t *vlen[EXAMPLE_MAX_VIEWS] = {ilen}, *vwidth = nviews ? malloc((size_t)batch * sizeof *vwidth) : NULL;
    int rc = -1, views_ok = !nviews || (xs && vwidth);
    for (int v = 1; v <= nviews && views_ok; v++) {
        ys[v] = hlr_tensor_new(HLR_F32, 3, (int64_t[]){batch, T, C});
        vlen[v] = malloc((size_t)batch * sizeof **vlen);
        views_ok = ys[v] && vlen[v];
    }
    if (!y || !ilen || !got || !texts || !tp || !probs || !lexlp || !views_ok) {
        fprintf(stderr, "hlr-read: out of memory reading the test pictures\n");
        goto out;
    }
    for (int64_t b = 0; b < s->n; b += batch) {
        const int nb = s->n - b < batch ? (int)(s->n - b) : batch;
        hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){nb, 1, HEIGHT, W}, s->x + b * HEIGHT * W);
        hlr_tensor *yv = hlr_tensor_wrap(HLR_F32, 3, (int64_t[]){nb, T, C}, hlr_tensor_f32(y));
        double t0 = monotonic_now();
        int ok = x && yv && hlr_model_set_lengths(m, s->widths + b, nb) == HLR_OK &&
                 hlr_model_output_lengths(m, ilen, nb) == HLR_OK && hlr_model_forward(m, x, yv, 0) == HLR_OK;
        for (int v = 1; ok && v <= nviews; v++) { /* the same pictures stretched across */
            for (int i = 0; i < nb; i++) {
                vwidth[i] = (int32_t)example_stretched_width(s->widths[b + i], views[v - 1], W);
                example_stretch_columns(s->x + (b + i) * HEIGHT * W, W, xs + (int64_t)i * HEIGHT * W, HEIGHT, W,
                                        s->widths[b + i], vwidth[i]);
            }
            hlr_tensor *xv = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){nb, 1, HEIGHT, W}, xs);
            hlr_tensor *yw = hlr_tensor_wrap(HLR_F32, 3, (int64_t[]){nb, T, C}, hlr_tensor_f32(ys[v]));
            ok = xv && yw && hlr_model_set_lengths(m, vwidth, nb) == HLR_OK &&
                 hlr_model_output_lengths(m, vlen[v], nb) == HLR_OK && hlr_model_forward(m, xv, yw, 0) == HLR_OK;
            hlr_tensor_free(xv);
            hlr_tensor_free(yw);
        }
        r->seconds += monotonic_now() - t0;
        for (int i = 0; ok && i < nb; i++) {
            const int64_t k = b + i;
            const float *logits = hlr_tensor_f32(y) + (int64_t)i * T * C;
            int len;
            const int32_t *truth = s->targets + k * WL_MAX_LEN;
            int tl = 0;
            while (tl < WL_MAX_LEN && truth[tl] >= 0)
                tl++;
            t0 = monotonic_now();
            const float *rows[EXAMPLE_MAX_VIEWS]; /* the sample's readings */
            int tv[EXAMPLE_MAX_VIEWS], from;
            for (int v = 0; v <= nviews; v++)
                rows[v] = hlr_tensor_f32(ys[v]) + (int64_t)i * T * C, tv[v] = vlen[v][i];
            if (nviews) { /* the best path all readings together find likeliest */
                if ((len = example_ctc_views(rows, tv, nviews + 1, C, got, &from)) < 0) {
                    ok = 0;
                    break;
                }
            } else if (hlr_ctc_decode(logits, ilen[i], C, 0, beam, NULL, got, NULL, T, &len, NULL) != HLR_OK) {
                ok = 0;
                break;
            }
            r->seconds += monotonic_now() - t0;
            int64_t e = hlr_edit_distance(truth, tl, got, len);
            r->edits += e;
            r->chars += tl;
            r->font_edits[s->font[k]] += e;
            r->font_chars[s->font[k]] += tl;
            r->right += e == 0;
            tp[k] = texts + k * (4 * T + 1);
            labels_text(a, got, len, (char *)tp[k]);
            if (L && L->n) { /* the best word of each language's lexicon; the best of those */
                int32_t words[WL_MAX_LANGS][WL_MAX_LEN + 1];
                int lens[WL_MAX_LANGS], best_l = -1;
                if (lexicon_words(L, rows, tv, nviews + 1, C, lexlp + k * nl, words, lens) != 0) {
                    ok = 0;
                    break;
                }
                for (int l = 0; l < L->n; l++)
                    if (lexlp[k * nl + l] > -INFINITY && (best_l < 0 || lexlp[k * nl + l] > lexlp[k * nl + best_l]))
                        best_l = l;
                int64_t le = best_l >= 0 ? hlr_edit_distance(truth, tl, words[best_l], lens[best_l]) : tl;
                r->lex_edits += le;
                r->lex_right += le == 0;
                r->lex_lang_right += best_l == s->lang[k];
            }
        }
        hlr_tensor_free(x);
        hlr_tensor_free(yv);
        if (!ok) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
            goto out;
        }
    }
    r->n = s->n;
    if (langid) {
        if (wl_langid_probs("hlr-read", langid, lv, nlang, tp, (int)s->n, probs) != 0)
            goto out;
        for (int64_t k = 0; k < s->n; k++) {
            int best = 0;
            for (int l = 1; l < nlang; l++)
                if (probs[k * nlang + l] > probs[k * nlang + best])
                    best = l;
            r->lang_right += best == s->lang[k];
            if (nl == nlang) { /* both: the image's likelihood of each language's best word, and the text's language */
                int both = -1;
                double top = -INFINITY;
                for (int l = 0; l < nlang; l++) {
                    const double v = lexlp[k * nl + l] + log((double)probs[k * nlang + l] + 1e-30);
                    if (v > top)
                        top = v, both = l;
                }
                r->both_lang_right += both == s->lang[k];
            }
        }
    }
    rc = 0;
out:
    hlr_model_set_lengths(m, NULL, 0);
    hlr_tensor_free(y);
    free(ilen);
    free(got);
    free(texts);
    free(tp);
    free(probs);
    free(lexlp);
    free(xs);
    free(vwidth);
    for (int v = 1; v <= nviews; v++) {
        hlr_tensor_free(ys[v]);
        free(vlen[v]);
    }
    return rc;
}

static double pct(int64_t a, int64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* ---- the splits file ---- */

static int write_splits(const char *path, const hw_fonts *fs, const wl_corpus *c, const wl_vocab *a)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hlr-read: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# hlr-read train --task words: the fonts and words of each split\n");
    fprintf(f, "# font\tfamily\tpackage\tsplit\tlanguages whose test words it can draw (share)\n");
    for (int i = 0; i < fs->n; i++) {
        fprintf(f, "%s\t%s\t%s\t%s\t", fs->font[i].path, fs->font[i].family, fs->font[i].package,
                fs->font[i].held_out ? "held-out (test only)" : "training");
        for (int l = 0; l < c->nlang; l++) {
            size_t ok = 0;
            for (size_t k = c->ntrain; k < c->per; k++)
                ok += hw_font_draws(fs, i, c->words[l][k]);
            fprintf(f, "%s%s %.0f%%", l ? ", " : "", wl_languages[c->lang[l]].code,
                    pct((int64_t)ok, (int64_t)c->ntest));
        }
        fprintf(f, "\n");
    }
    char *alpha = alphabet_string(a);
    fprintf(f, "# words per language: %zu training, %zu test (never drawn in training)\n", c->ntrain, c->ntest);
    fprintf(f, "# alphabet (%d characters and the blank '-'): %s\n", a->n, alpha ? alpha : "?");
    free(alpha);
    for (int l = 0; l < c->nlang; l++) {
        fprintf(f, "# %s test words begin:", wl_languages[c->lang[l]].code);
        for (size_t k = c->ntrain; k < c->ntrain + 8 && k < c->per; k++)
            fprintf(f, " %s", c->words[l][k]);
        fprintf(f, " ...\n");
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "hlr-read: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- train ---- */

static int on_langid_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)user;
    printf("  langid epoch %d/%d  loss %.4f  accuracy %.2f%%  validation %.2f%%  %.1f s\n", s->epoch, s->epochs,
           s->train_loss, 100.0 * s->train_accuracy, 100.0 * s->val_accuracy, s->seconds);
    fflush(stdout);
    return 0;
}

/* The langid model file written beside MODEL: MODEL without .hlr, then ".langid.hlr". */
static void langid_path(const char *model, char *out, size_t cap)
{
    size_t n = strlen(model);
    if (n > 4 && !strcmp(model + n - 4, ".hlr"))
        n -= 4;
    snprintf(out, cap, "%.*s.langid.hlr", (int)n, model);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The language model a words model names (metadata "words.langid", a file in the model's folder) into out;
 * 0, or -1 after a line on stderr. */
static int langid_beside(const char *model_path, hlr_model *m, char *out, size_t cap)
{
    const char *name = hlr_metadata_get(hlr_model_metadata(m), "words.langid");
    if (!name) {
        fprintf(stderr, "hlr-read: %s is a words model without its language model's name\n", model_path);
        return -1;
    }
    if (strchr(name, '/')) {
        fprintf(stderr, "hlr-read: %s names its language model '%s', not a file beside it\n", model_path, name);
        return -1;
    }
    const char *slash = strrchr(model_path, '/');
    snprintf(out, cap, "%.*s%s", slash ? (int)(slash - model_path + 1) : 0, model_path, name);
    return 0;
}

/* Train a new CRNN on freshly drawn training words (see the file's comment) into *out; progress on the first
 * 500 held-out words.  0, or -1 after a line on stderr. */
static int train_model(const words_options *o, const wl_corpus *cp, const wl_vocab *a, const hw_fonts *fsp,
                       int ntrain_fonts, const wset *held, hlr_model **out)
{
    const int W = o->width, B = o->batch;
    hlr_model *m = NULL;
    hlr_optimizer *opt = NULL;
    float *x = NULL;
    int32_t *targets = NULL, *widths = NULL;
    hlr_tensor *xt = NULL, *tt = NULL;
    *out = NULL;
    const int C = a->n + 1;
    if (!(m = example_crnn(o->seed, HEIGHT, W, C, o->channels, o->convs, o->pool_w, o->batchnorm, o->hidden, o->layers,
                           o->dropout)) ||
        !(opt = hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f))) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        goto fail;
    }
    const long per_epoch = o->train_words / B;
    if (!strcmp(o->schedule, "cosine") &&
        hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, (double)per_epoch * o->epochs, 0.0, 0, 1.0) != HLR_OK) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        goto fail;
    }
    char summary[4096];
    if (hlr_model_summary(m, summary, sizeof summary, NULL) == HLR_OK)
        printf("%s", summary);
    printf("training a CRNN with CTC on %ld words per epoch drawn in %d training fonts and hands (%.0f%% of them by a "
           "hand of strokes, %.0f%% of the others a font per letter; %d characters and the blank, %d x %d pictures): "
           "%d epochs, batch %d, adam lr %g (%s), seed %llu, %d threads\n",
           per_epoch * B, ntrain_fonts, 100.0 * o->hands, 100.0 * o->mix, a->n, HEIGHT, W, o->epochs, B, (double)o->lr,
           o->schedule,
           o->seed, hlr_get_num_threads());
    fflush(stdout);
    x = malloc((size_t)B * HEIGHT * W * sizeof *x);
    targets = malloc((size_t)B * WL_MAX_LEN * sizeof *targets);
    widths = malloc((size_t)B * sizeof *widths);
    if (!x || !targets || !widths || !(xt = hlr_tensor_wrap(HLR_F32, 4, (int64_t[]){B, 1, HEIGHT, W}, x)) ||
        !(tt = hlr_tensor_wrap(HLR_I32, 2, (int64_t[]){B, WL_MAX_LEN}, targets))) {
        fprintf(stderr, "hlr-read: out of memory\n");
        goto fail;
    }
    uint64_t rng = train_stream(o->seed);
    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        double t0 = monotonic_now(), draw_s = 0, loss_sum = 0;
        for (long b = 0; b < per_epoch; b++) {
            double d0 = monotonic_now();
            for (int i = 0; i < B; i++) {
                int lang, font;
                const char *word;
                widths[i] = draw_training_word(o, cp, a, fsp, &rng, W, x + (size_t)i * HEIGHT * W,
                                               targets + (size_t)i * WL_MAX_LEN, &lang, &font, &word);
            }
            draw_s += monotonic_now() - d0;
            float loss;
            if (hlr_model_set_lengths(m, widths, B) != HLR_OK ||
                hlr_model_train_batch(m, opt, xt, tt, &loss) != HLR_OK || hlr_optimizer_schedule_step(opt) != HLR_OK) {
                fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
                goto fail;
            }
            loss_sum += loss;
        }
        const double secs = monotonic_now() - t0;
        result r;
        wset val = *held; /* progress on the first 500 held-out words */
        val.n = held->n < 500 ? held->n : 500;
        if (read_set(m, &val, 64, W, 0, NULL, 0, a, NULL, NULL, 0, NULL, &r) != 0)
            goto fail;
        printf("epoch %d/%d  loss %.4f  held-out fonts CER %.2f%%  word accuracy %.2f%%  %.0f words/s "
               "(drawing %.0f%% of the time)  %.1f s\n",
               epoch, o->epochs, per_epoch ? loss_sum / per_epoch : 0.0, pct(r.edits, r.chars), pct(r.right, r.n),
               (double)(per_epoch * B) / secs, 100.0 * draw_s / secs, secs);
        fflush(stdout);
    }
    *out = m;
    m = NULL;
fail:
    hlr_tensor_free(xt);
    hlr_tensor_free(tt);
    free(x);
    free(targets);
    free(widths);
    hlr_optimizer_free(opt);
    hlr_model_free(m); /* NULL once trained */
    return *out ? 0 : -1;
}

int words_train(const words_options *o)
{
    wl_corpus c = {0};
    wl_vocab *a = calloc(1, sizeof *a), *lv = calloc(1, sizeof *lv);
    hw_fonts fs;
    int fonts_open = 0, rc = 1;
    hlr_model *m = NULL, *langid = NULL;
    hlr_dataset *ltest = NULL;
    wset held = {0}, seen = {0};
    lexicons L = {0}, Lopen = {0};
    int W = o->width;
    const char *codes[WL_MAX_LANGS], *langs = o->langs;
    int nlang = 0;
    long words = o->words;
    unsigned long long seed = o->seed;
    if (!a || !lv) {
        fprintf(stderr, "hlr-read: out of memory\n");
        goto out;
    }
    if (o->evaluate) { /* the model's own words, seed and languages: its test words are never its training words */
        if (!(m = hlr_model_load(o->evaluate, NULL))) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
            goto out;
        }
        const hlr_metadata *md = hlr_model_metadata(m);
        const char *task = hlr_metadata_get(md, "task"), *ml = hlr_metadata_get(md, "words.langs"),
                   *ms = hlr_metadata_get(md, "words.seed"), *mw = hlr_metadata_get(md, "words.count");
        int in_nd;
        int64_t in_shape[HLR_MAX_DIMS];
        hlr_model_input_shape(m, &in_nd, in_shape);
        if (!task || strcmp(task, "words") || !ml || !ms || !mw || in_nd != 3 || in_shape[1] != HEIGHT) {
            fprintf(stderr, "hlr-read: %s is not a words model saved by hlr-read train --task words\n", o->evaluate);
            goto out;
        }
        langs = ml;
        seed = strtoull(ms, NULL, 10);
        words = strtol(mw, NULL, 10);
        W = (int)in_shape[2];
    }
    if ((c.nlang = wl_parse_langs("hlr-read", langs, c.lang)) < 0) {
        rc = 2;
        goto out;
    }
    if (W % 4 != 0) {
        fprintf(stderr, "hlr-read: --width %d is not a multiple of 4 (two 2 x 2 poolings)\n", W);
        rc = 2;
        goto out;
    }
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        goto out;
    }
    if (wl_corpus_build(&c, "hlr-read", words, seed, 1) != 0 || hw_fonts_open(&fs, "hlr-read") != 0)
        goto out;
    fonts_open = 1;
    if (wl_vocab_build(a, &c) != 0) {
        fprintf(stderr, "hlr-read: out of memory\n");
        goto out;
    }
    if (o->evaluate) { /* the same alphabet, or the labels would mean other letters */
        char *alpha = alphabet_string(a);
        const char *ma = hlr_metadata_get(hlr_model_metadata(m), "alphabet");
        int same = alpha && ma && !strcmp(alpha, ma);
        free(alpha);
        if (!same) {
            fprintf(stderr, "hlr-read: %s reads another alphabet than the word lists here give (other word lists?)\n",
                    o->evaluate);
            goto out;
        }
    }
    int ntrain_fonts = 0;
    for (int i = 0; i < fs.n; i++)
        ntrain_fonts += !fs.font[i].held_out;
    printf("fonts: %d training, %d held out (", ntrain_fonts, fs.n - ntrain_fonts);
    const char *last = "";
    for (int i = 0, first = 1; i < fs.n; i++)
        if (fs.font[i].held_out && strcmp(fs.font[i].family, last)) {
            printf("%s%s", first ? "" : ", ", fs.font[i].family);
            last = fs.font[i].family;
            first = 0;
        }
    printf("); %d not installed\n", fs.missing);

    /* the language identifier: trained here on the same corpus (its test words are ours), or loaded */
    char beside[4096];
    if (o->evaluate && !o->langid && langid_beside(o->evaluate, m, beside, sizeof beside) != 0)
        goto out;
    if (o->langid || o->evaluate) {
        const char *lp = o->langid ? o->langid : beside;
        if (!(langid = wl_langid_load("hlr-read", lp, lv, codes, &nlang)))
            goto out;
        printf("language identifier: %s\n", lp);
    } else {
        if (wl_vocab_build(lv, &c) != 0)
            goto out;
        printf("training the language identifier (hlr-langid's model, %d epochs) on the training words", o->langid_epochs);
        if (o->langid_noise > 0)
            printf(", each also misread (%.0f%% of its letters)", 100.0 * o->langid_noise);
        printf("\n");
        fflush(stdout);
        if (!(langid = wl_langid_train(&c, lv, "gru", "mean", o->langid_epochs, o->langid_noise, o->seed,
                                       on_langid_epoch, &ltest))) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
            goto out;
        }
        hlr_metrics met;
        if (hlr_model_evaluate(langid, ltest, 256, 1, &met, NULL) != HLR_OK) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
            goto out;
        }
        printf("language identifier on the typed test words: %.2f%%\n", 100.0 * met.accuracy);
        nlang = c.nlang;
        for (int l = 0; l < nlang; l++)
            codes[l] = wl_languages[c.lang[l]].code;
    }
    if (nlang != c.nlang) {
        fprintf(stderr, "hlr-read: the language identifier knows %d languages, --langs names %d\n", nlang, c.nlang);
        rc = 2;
        goto out;
    }
    for (int l = 0; l < nlang; l++)
        if (strcmp(codes[l], wl_languages[c.lang[l]].code)) {
            fprintf(stderr, "hlr-read: the language identifier's language %d is %s, --langs says %s\n", l, codes[l],
                    wl_languages[c.lang[l]].code);
            rc = 2;
            goto out;
        }

    const char *splits = o->splits ? o->splits : "words-splits.txt";
    if (write_splits(splits, &fs, &c, a) != 0)
        goto out;
    printf("the fonts and words of each split: %s\n", splits);

    /* the test sets, fixed by the seed */
    /* seed: the model's own when evaluating, as the words are */
    if (make_test_set(&held, &c, a, &fs, 1, o->test_words, test_stream(seed), W) != 0 ||
        make_test_set(&seen, &c, a, &fs, 0, o->test_words, test_stream(seed) + 1, W) != 0) {
        fprintf(stderr, "hlr-read: out of memory drawing the test words\n");
        goto out;
    }
    printf("test words: %lld in held-out fonts, %lld in training fonts\n", (long long)held.n, (long long)seen.n);
    fflush(stdout);
    if (!o->evaluate && train_model(o, &c, a, &fs, ntrain_fonts, &held, &m) != 0)
        goto out;
    if (o->evaluate)
        printf(
            "evaluating %s on %lld test words in held-out fonts and %lld in training fonts (its seed %llu, %ld words "
            "per language, %s)\n",
            o->evaluate, (long long)held.n, (long long)seen.n, seed, words, langs);
    if (build_lexicons(&L, &c, a, c.nlex) != 0 || build_lexicons(&Lopen, &c, a, c.ntrain) != 0) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        goto out;
    }
    if (o->nviews) {
        printf("--views: each test picture read %d times, as drawn and stretched across by", o->nviews + 1);
        for (int v = 0; v < o->nviews; v++)
            printf("%s %g", v ? "," : "", o->views[v]);
        printf("; the text (and each language's word) all readings together find likeliest\n");
    }
    result rh, rs, ro;
    if (read_set(m, &held, 64, W, o->beam, o->views, o->nviews, a, langid, lv, nlang, &L, &rh) != 0 ||
        read_set(m, &seen, 64, W, o->beam, o->views, o->nviews, a, langid, lv, nlang, &L, &rs) != 0 ||
        read_set(m, &held, 64, W, o->beam, o->views, o->nviews, a, langid, lv, nlang, &Lopen, &ro) != 0)
        goto out;
    const char *how = o->beam ? "prefix beam search" : o->nviews ? "best path, with --views" : "best path";
    printf("held-out fonts, %s, by family:", o->beam ? "beam search" : how);
    for (int i = 0, first = 1; i < fs.n; i++) {
        if (!fs.font[i].held_out || (i > 0 && !strcmp(fs.font[i].family, fs.font[i - 1].family)))
            continue;
        int64_t e = 0, n = 0;
        for (int j = i; j < fs.n && !strcmp(fs.font[j].family, fs.font[i].family); j++)
            e += rh.font_edits[j], n += rh.font_chars[j];
        printf("%s %s CER %.2f%%", first ? "" : ",", fs.font[i].family, pct(e, n));
        first = 0;
    }
    printf("\n");
    printf("lexicon: the first %zu words per language of the shuffled lists (the %zu training and test words and "
           "%zu never drawn), beam %d\n",
           c.nlex, c.per, c.nlex - c.per, LEX_BEAM);
    printf("held-out fonts, lexicon: CER %.2f%%  word accuracy %.2f%%  language accuracy %.2f%%\n",
           pct(rh.lex_edits, rh.chars), pct(rh.lex_right, rh.n), pct(rh.lex_lang_right, rh.n));
    printf("training fonts, lexicon: CER %.2f%%  word accuracy %.2f%%  language accuracy %.2f%%\n",
           pct(rs.lex_edits, rs.chars), pct(rs.lex_right, rs.n), pct(rs.lex_lang_right, rs.n));
    printf(
        "held-out fonts, lexicon of the %zu training words per language alone (no test word in it): CER %.2f%%  word "
        "accuracy %.2f%%  language accuracy %.2f%%, with langid %.2f%%\n",
        c.ntrain, pct(ro.lex_edits, ro.chars), pct(ro.lex_right, ro.n), pct(ro.lex_lang_right, ro.n),
        pct(ro.both_lang_right, ro.n));
    printf(
        "language accuracy: langid on the text read %.2f%% (held-out fonts), %.2f%% (training fonts); the "
        "lexicon's word's language %.2f%%, %.2f%%; both (the lexicon's log-likelihood plus langid's log-probability) "
        "%.2f%%, %.2f%%\n",
        pct(rh.lang_right, rh.n), pct(rs.lang_right, rs.n), pct(rh.lex_lang_right, rh.n), pct(rs.lex_lang_right, rs.n),
        pct(rh.both_lang_right, rh.n), pct(rs.both_lang_right, rs.n));
    printf("reading (the forward pass and %s): %.2f s per 1000 words; the tests below read by %s\n",
           o->beam ? "beam search" : o->nviews ? "best path, every view" : "best path",
           1000.0 * rh.seconds / (double)rh.n, how);
    printf("test CER (training fonts): %.2f%%\n", pct(rs.edits, rs.chars));
    printf("test word accuracy (training fonts): %.2f%%\n", pct(rs.right, rs.n));
    printf("test language accuracy (training fonts): %.2f%%\n", pct(rs.lang_right, rs.n));
    printf("test CER (held-out fonts): %.2f%%\n", pct(rh.edits, rh.chars));
    printf("test word accuracy (held-out fonts): %.2f%%\n", pct(rh.right, rh.n));
    printf("test language accuracy (held-out fonts): %.2f%%\n", pct(rh.lang_right, rh.n));
    if (o->save) {
        char lpath[4096];
        langid_path(o->save, lpath, sizeof lpath);
        char *alpha = alphabet_string(a), seed_text[32], count_text[32];
        snprintf(seed_text, sizeof seed_text, "%llu", seed);
        snprintf(count_text, sizeof count_text, "%ld", words);
        hlr_metadata *md = hlr_model_metadata(m);
        if (!alpha || hlr_metadata_set(md, "task", "words") != HLR_OK ||
            hlr_metadata_set(md, "alphabet", alpha) != HLR_OK || hlr_metadata_set(md, "words.langs", langs) != HLR_OK ||
            hlr_metadata_set(md, "words.seed", seed_text) != HLR_OK ||
            hlr_metadata_set(md, "words.count", count_text) != HLR_OK ||
            hlr_metadata_set(md, "words.langid", base_name(lpath)) != HLR_OK ||
            hlr_metadata_set_dataset(md, "words drawn in Debian's handwriting fonts (hlr-read train --task words)") !=
                HLR_OK ||
            hlr_model_save(m, o->save, NULL) != HLR_OK ||
            (o->langid ? hlr_model_save(langid, lpath, NULL) : wl_langid_save(langid, &c, lv, lpath)) != 0) {
            free(alpha);
            fprintf(stderr, "hlr-read: cannot save %s: %s\n", o->save, hlr_last_error());
            goto out;
        }
        free(alpha);
        printf("saved %s and %s\n", o->save, lpath);
    }
    rc = 0;
out:
    free_lexicons(&L);
    free_lexicons(&Lopen);
    wset_free(&held);
    wset_free(&seen);
    hlr_dataset_free(ltest);
    hlr_model_free(m);
    hlr_model_free(langid);
    if (fonts_open)
        hw_fonts_close(&fs);
    wl_corpus_free(&c);
    free(a);
    free(lv);
    return rc;
}

/* ---- generate: the pictures as PNG files and a labels file ---- */

int words_generate(const words_options *o)
{
    const int held_out = !strcmp(o->part, "test-held-out"), training = !strcmp(o->part, "train");
    if (!held_out && !training && strcmp(o->part, "test-training")) {
        fprintf(stderr, "hlr-read: --part '%s' is not a words part: expected train, test-training or test-held-out\n",
                o->part);
        return 2;
    }
    if (!o->out) {
        fprintf(stderr, "hlr-read: generate --task words needs --out DIR for the pictures\n");
        return 2;
    }
    wl_corpus c = {0};
    wl_vocab *a = calloc(1, sizeof *a);
    hw_fonts fs;
    int fonts_open = 0, rc = 1;
    wset s = {0};
    FILE *f = NULL;
    if (!a) {
        fprintf(stderr, "hlr-read: out of memory\n");
        return 1;
    }
    if ((c.nlang = wl_parse_langs("hlr-read", o->langs, c.lang)) < 0) {
        free(a);
        return 2;
    }
    if (wl_corpus_build(&c, "hlr-read", o->words, o->seed, 0) != 0 || hw_fonts_open(&fs, "hlr-read") != 0)
        goto out;
    fonts_open = 1;
    if (wl_vocab_build(a, &c) != 0)
        goto out;
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "hlr-read: cannot make %s: %s\n", o->out, strerror(errno));
        goto out;
    }
    const int W = o->width;
    /* as train: the test sets exactly as train draws them; training pictures from train's stream */
    if (training) {
        if (wset_alloc(&s, o->test_words, W) != 0)
            goto oom;
        uint64_t rng = train_stream(o->seed);
        for (; s.n < o->test_words; s.n++)
            s.widths[s.n] = draw_training_word(o, &c, a, &fs, &rng, W, s.x + s.n * HEIGHT * W,
                                               s.targets + s.n * WL_MAX_LEN, &s.lang[s.n], &s.font[s.n], &s.text[s.n]);
    } else if (make_test_set(&s, &c, a, &fs, held_out, o->test_words, test_stream(o->seed) + !held_out, W) != 0) {
        goto oom;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/labels.tsv", o->out);
    if (!(f = fopen(path, "w"))) {
        fprintf(stderr, "hlr-read: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    fprintf(f, "# NAME\tTEXT\tLANGUAGE\tFONT (hlr-read generate --task words --part %s --seed %llu)\n", o->part,
            o->seed);
    for (int64_t k = 0; k < s.n; k++) {
        /* dark ink on white paper, as a scan would be; 3 paper pixels around */
        const int w = s.widths[k] + 6, h = HEIGHT + 6;
        picture pic = {w, h, calloc((size_t)w * h * 3, 1)};
        if (!pic.rgb)
            goto oom;
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                int sy = y - 3, sx = xx - 3;
                float v = sy >= 0 && sy < HEIGHT && sx >= 0 && sx < s.widths[k] ? s.x[(k * HEIGHT + sy) * W + sx] : 0;
                unsigned char g = (unsigned char)lround(255.0 * (1.0 - (v > 1 ? 1 : v)));
                const unsigned char rgb[3] = {g, g, g};
                example_put(&pic, xx, y, rgb);
            }
        char name[64];
        snprintf(name, sizeof name, "%06lld.png", (long long)k);
        snprintf(path, sizeof path, "%s/%s", o->out, name);
        int bad = example_write_picture("hlr-read", path, &pic);
        free(pic.rgb);
        if (bad)
            goto out;
        fprintf(f, "%s\t%s\t%s\t%s\n", name, s.text[k], wl_languages[c.lang[s.lang[k]]].code,
                base_name(fs.font[s.font[k]].path));
    }
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "hlr-read: cannot write %s/labels.tsv: %s\n", o->out, strerror(errno));
        goto out;
    }
    f = NULL;
    printf("%lld pictures and labels.tsv in %s\n", (long long)s.n, o->out);
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "hlr-read: out of memory\n");
out:
    if (f)
        fclose(f);
    wset_free(&s);
    if (fonts_open)
        hw_fonts_close(&fs);
    wl_corpus_free(&c);
    free(a);
    return rc;
}

/* ---- predict's languages (and, with the lexicon, its word) ---- */

struct words_langid {
    hlr_model *m;
    wl_vocab v;
    const char *codes[WL_MAX_LANGS];
    int nlang;
    /* --lexicon: the model's corpus, alphabet and a lexicon per language, in the language model's order */
    wl_corpus c;
    wl_vocab a;
    lexicons L;
};

words_langid *words_langid_open(const char *model_path, hlr_model *model, int lexicon)
{
    const hlr_metadata *md = hlr_model_metadata(model);
    char path[4096];
    if (langid_beside(model_path, model, path, sizeof path) != 0)
        return NULL;
    words_langid *w = calloc(1, sizeof *w);
    if (!w) {
        fprintf(stderr, "hlr-read: out of memory\n");
        return NULL;
    }
    if (!(w->m = wl_langid_load("hlr-read", path, &w->v, w->codes, &w->nlang))) {
        free(w);
        return NULL;
    }
    if (!lexicon)
        return w;
    /* the model's own word lists: its languages, seed and word count */
    const char *langs = hlr_metadata_get(md, "words.langs"), *seed = hlr_metadata_get(md, "words.seed"),
               *count = hlr_metadata_get(md, "words.count"), *alphabet = hlr_metadata_get(md, "alphabet");
    if (!langs || !seed || !count || !alphabet) {
        fprintf(stderr,
                "hlr-read: %s does not say which word lists it was trained on (words.langs, words.seed, "
                "words.count): --lexicon needs them\n",
                model_path);
        words_langid_close(w);
        return NULL;
    }
    if ((w->c.nlang = wl_parse_langs("hlr-read", langs, w->c.lang)) < 0 ||
        wl_corpus_build(&w->c, "hlr-read", strtol(count, NULL, 10), strtoull(seed, NULL, 10), 0) != 0) {
        words_langid_close(w);
        return NULL;
    }
    char *alpha = wl_vocab_build(&w->a, &w->c) == 0 ? alphabet_string(&w->a) : NULL;
    int same = alpha && !strcmp(alpha, alphabet) && w->c.nlang == w->nlang;
    for (int l = 0; same && l < w->nlang; l++)
        same = !strcmp(wl_languages[w->c.lang[l]].code, w->codes[l]);
    free(alpha);
    if (!same) {
        fprintf(stderr,
                "hlr-read: the word lists here give %s another alphabet or other languages than it was "
                "trained on: --lexicon cannot be used\n",
                model_path);
        words_langid_close(w);
        return NULL;
    }
    if (build_lexicons(&w->L, &w->c, &w->a, w->c.nlex) != 0) {
        fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
        words_langid_close(w);
        return NULL;
    }
    return w;
}

int words_langid_read(words_langid *w, const float *const *logits, const int *T, int views, int C, const char *text,
                      char *word, const char *codes[3], float probs[3])
{
    float p[WL_MAX_LANGS];
    const char *words[1] = {text};
    if (wl_langid_probs("hlr-read", w->m, &w->v, w->nlang, words, 1, p) != 0)
        return -1;
    if (w->L.n) { /* each language's best word; the languages by the word's likelihood times langid's probability */
        double score[WL_MAX_LANGS], top = -INFINITY;
        int32_t found[WL_MAX_LANGS][WL_MAX_LEN + 1];
        int lens[WL_MAX_LANGS], best = -1;
        if (lexicon_words(&w->L, logits, T, views, C, score, found, lens) != 0) {
            fprintf(stderr, "hlr-read: %s\n", hlr_last_error());
            return -1;
        }
        for (int l = 0; l < w->nlang; l++) {
            score[l] += log((double)p[l] + 1e-30);
            if (score[l] > top) {
                top = score[l];
                best = l;
            }
        }
        if (best < 0) { /* no word of any list fits: the text's languages alone */
            strcpy(word, "");
        } else {
            double sum = 0;
            for (int l = 0; l < w->nlang; l++)
                sum += exp(score[l] - top);
            for (int l = 0; l < w->nlang; l++)
                p[l] = (float)(exp(score[l] - top) / sum);
            labels_text(&w->a, found[best], lens[best], word);
        }
    }
    wl_top_languages(p, w->nlang, w->codes, 3, codes, probs);
    return 0;
}

void words_langid_close(words_langid *w)
{
    if (!w)
        return;
    hlr_model_free(w->m);
    free_lexicons(&w->L);
    wl_corpus_free(&w->c);
    free(w);
}

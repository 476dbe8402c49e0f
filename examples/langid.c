/*
 * hlr-langid -- which language is a word in?  A character-level recurrent
 * network trained on Debian's word lists (/usr/share/dict).
 *
 *   hlr-langid train [--langs en,es,de,nl,pl] [--epochs N] [--seed S] [--words N]
 *                    [--cell gru|lstm] [--pool mean|last] [--threads T] [--save FILE] [--try word...]
 *   hlr-langid predict FILE word...
 *
 * Data: each list is read (UTF-8, or Latin-1 where a line is not UTF-8),
 * lower-cased, and reduced to words of letters only, at most MAX_LEN
 * characters; words found in more than one language's list are dropped;
 * every language then keeps the same number of words, drawn at random, the
 * last tenth of them held out as the test set (words never seen in
 * training).  Characters become ids (0 pads, 1 is a character the training
 * words never had), and every word keeps its length, so the network reads
 * exactly its characters.
 *
 * Model: embedding (32) -> bidirectional GRU or LSTM (64 per direction) ->
 * the mean of its outputs over the word, or its final states -> dense.
 *
 * The progress lines, the confusion matrix and `test accuracy: NN.NN%` go
 * to stdout; --try prints each word's three likeliest languages.
 */
#include "common.h"
#include "options.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#define MAX_LEN 20 /* characters per word, the sequence length */
#define MAX_LANGS 9
#define EMBED_DIM 32
#define HIDDEN 64
#define TEST_FRACTION 10 /* one word in ten is held out */

typedef struct language {
    const char *code, *name, *file, *package;
} language;

static const language languages[MAX_LANGS] = {
    {"en", "English", "/usr/share/dict/american-english", "wamerican"},
    {"es", "Spanish", "/usr/share/dict/spanish", "wspanish"},
    {"de", "German", "/usr/share/dict/ngerman", "wngerman"},
    {"nl", "Dutch", "/usr/share/dict/dutch", "wdutch"},
    {"pl", "Polish", "/usr/share/dict/polish", "wpolish"},
    {"fr", "French", "/usr/share/dict/french", "wfrench"},
    {"it", "Italian", "/usr/share/dict/italian", "witalian"},
    {"pt", "Portuguese", "/usr/share/dict/portuguese", "wportuguese"},
    {"sv", "Swedish", "/usr/share/dict/swedish", "wswedish"},
};

typedef struct options {
    const char *langs, *cell, *pool, *save;
    int epochs, threads;
    long words;
    unsigned long long seed;
    char **try_words;
    int ntry;
} options;

/* ---- text: UTF-8, lower case, letters only ---- */

/* Decode one UTF-8 line into code points; -1 when it is not valid UTF-8. */
static int utf8_decode(const unsigned char *s, size_t len, uint32_t *out, int cap)
{
    int n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = s[i];
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (extra < 0 || i + (size_t)extra >= len)
            return -1;
        if (extra > 0)
            c &= 0x3Fu >> extra;
        for (int k = 1; k <= extra; k++) {
            if ((s[i + (size_t)k] & 0xC0) != 0x80)
                return -1;
            c = (c << 6) | (s[i + (size_t)k] & 0x3F);
        }
        static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
        if (c < least[extra] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return -1;
        if (n == cap)
            return cap + 1; /* too long; the caller drops it */
        out[n++] = c;
        i += (size_t)extra + 1;
    }
    return n;
}

static size_t utf8_encode(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/*
 * A word as the network sees it: lower-cased code points, letters only.
 * Returns the count, or -1 when the text has a non-letter or more than cap
 * characters.  Invalid UTF-8 is read as Latin-1 (Debian's Swedish list).
 */
static int normalise(const char *text, size_t len, uint32_t *cp, int cap)
{
    int n = utf8_decode((const unsigned char *)text, len, cp, cap);
    if (n < 0) {
        if (len > (size_t)cap)
            return -1;
        n = (int)len;
        for (int i = 0; i < n; i++)
            cp[i] = (unsigned char)text[i];
    }
    if (n < 1 || n > cap)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!iswalpha((wint_t)cp[i]))
            return -1;
        cp[i] = (uint32_t)towlower((wint_t)cp[i]);
    }
    return n;
}

/* ---- the words of every list: a hash set of strings with a language mask ---- */

typedef struct entry {
    uint32_t off;  /* into the pool; 0 marks an empty slot */
    uint16_t len;  /* bytes */
    uint16_t mask; /* the languages whose list has the word */
} entry;

typedef struct wordset {
    char *pool;
    size_t pool_len, pool_cap;
    entry *slots;
    size_t cap, count;
} wordset;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int wordset_grow(wordset *w)
{
    size_t cap = w->cap ? 2 * w->cap : 1 << 20;
    entry *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < w->cap; i++) {
        entry e = w->slots[i];
        if (!e.off)
            continue;
        size_t j = hash_bytes(w->pool + e.off, e.len) & (cap - 1);
        while (s[j].off)
            j = (j + 1) & (cap - 1);
        s[j] = e;
    }
    free(w->slots);
    w->slots = s;
    w->cap = cap;
    return 0;
}

/* Add the word (UTF-8 bytes) for language `lang`. */
static int wordset_add(wordset *w, const char *s, size_t n, int lang)
{
    if (2 * (w->count + 1) > w->cap && wordset_grow(w) != 0)
        return -1;
    size_t j = hash_bytes(s, n) & (w->cap - 1);
    for (; w->slots[j].off; j = (j + 1) & (w->cap - 1)) {
        entry *e = &w->slots[j];
        if (e->len == n && memcmp(w->pool + e->off, s, n) == 0) {
            e->mask |= (uint16_t)(1u << lang);
            return 0;
        }
    }
    if (w->pool_len + n + 1 > w->pool_cap) {
        size_t cap = w->pool_cap ? 2 * w->pool_cap : 1 << 24;
        while (cap < w->pool_len + n + 1)
            cap *= 2;
        char *p = cap <= UINT32_MAX ? realloc(w->pool, cap) : NULL; /* offsets are 32-bit */
        if (!p)
            return -1;
        w->pool = p;
        w->pool_cap = cap;
        if (w->pool_len == 0)
            w->pool_len = 1; /* offset 0 means empty */
    }
    memcpy(w->pool + w->pool_len, s, n);
    w->pool[w->pool_len + n] = '\0';
    w->slots[j] = (entry){(uint32_t)w->pool_len, (uint16_t)n, (uint16_t)(1u << lang)};
    w->pool_len += n + 1;
    w->count++;
    return 0;
}

static int read_list(wordset *w, const language *l, int lang, long *kept)
{
    FILE *f = fopen(l->file, "rb");
    if (!f) {
        fprintf(stderr, "hlr-langid: cannot read %s: install the Debian package %s (`make data` does, as root)\n",
                l->file, l->package);
        return -1;
    }
    char line[1024], word[4 * MAX_LEN + 1];
    uint32_t cp[MAX_LEN];
    *kept = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        int n = normalise(line, len, cp, MAX_LEN);
        if (n < 0)
            continue;
        size_t bytes = 0;
        for (int i = 0; i < n; i++)
            bytes += utf8_encode(cp[i], word + bytes);
        if (wordset_add(w, word, bytes, lang) != 0) {
            fclose(f);
            fprintf(stderr, "hlr-langid: out of memory reading %s\n", l->file);
            return -1;
        }
        (*kept)++;
    }
    fclose(f);
    return 0;
}

/* ---- the data set ---- */

typedef struct vocab {
    uint32_t chars[4096]; /* id - 2 -> code point, sorted */
    int n;
} vocab;

static int vocab_id(const vocab *v, uint32_t c)
{
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v->chars[mid] == c)
            return mid + 2;
        if (v->chars[mid] < c)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 1; /* unknown */
}

/* Token ids (MAX_LEN, zero-padded) and the length of one UTF-8 word. */
static int encode(const vocab *v, const char *text, int32_t *ids, int32_t *length)
{
    uint32_t cp[4 * MAX_LEN];
    int n = utf8_decode((const unsigned char *)text, strlen(text), cp, 4 * MAX_LEN);
    if (n < 1 || n > 4 * MAX_LEN)
        return -1;
    memset(ids, 0, MAX_LEN * sizeof *ids);
    int len = n < MAX_LEN ? n : MAX_LEN; /* a longer word is read up to MAX_LEN characters */
    for (int i = 0; i < len; i++)
        ids[i] = vocab_id(v, (uint32_t)towlower((wint_t)cp[i]));
    *length = len;
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

typedef struct corpus {
    int nlang, lang[MAX_LANGS];
    vocab v;
    hlr_dataset *train, *test;
} corpus;

/* Build the training and test sets as the header comment describes. */
static int build_corpus(corpus *c, const options *o)
{
    wordset w = {0};
    int rc = -1;
    uint32_t **words = NULL; /* per language: offsets of its own words */
    size_t count[MAX_LANGS] = {0};
    int32_t *ids = NULL, *len = NULL, *lab = NULL;
    for (int i = 0; i < c->nlang; i++) {
        long kept;
        if (read_list(&w, &languages[c->lang[i]], i, &kept) != 0)
            goto out;
        printf("%-10s %s: %ld words of letters only, up to %d characters\n", languages[c->lang[i]].name,
               languages[c->lang[i]].file, kept, MAX_LEN);
    }
    words = calloc((size_t)c->nlang, sizeof *words);
    for (int i = 0; words && i < c->nlang; i++)
        words[i] = malloc(w.count * sizeof **words);
    for (int i = 0; words && i < c->nlang; i++)
        if (!words[i])
            goto out;
    if (!words)
        goto out;
    size_t shared = 0;
    for (size_t j = 0; j < w.cap; j++) {
        entry e = w.slots[j];
        if (!e.off)
            continue;
        if (e.mask & (e.mask - 1)) {
            shared++;
            continue;
        }
        int i = __builtin_ctz(e.mask);
        words[i][count[i]++] = e.off;
    }
    size_t per = (size_t)o->words;
    for (int i = 0; i < c->nlang; i++)
        per = count[i] < per ? count[i] : per;
    if (per < 20) {
        fprintf(stderr, "hlr-langid: too few words left (%zu per language)\n", per);
        goto out;
    }
    printf("%zu words are in more than one list and dropped; %zu words per language, %zu of them for the test\n",
           shared, per, per / TEST_FRACTION);

    /* Shuffle each language's words (Fisher-Yates, seeded), keep the first `per`. */
    uint64_t s = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < c->nlang; i++)
        for (size_t k = count[i] - 1; k > 0; k--) {
            size_t j = (size_t)(splitmix(&s) % (k + 1));
            uint32_t t = words[i][k];
            words[i][k] = words[i][j];
            words[i][j] = t;
        }
    size_t ntest = per / TEST_FRACTION, ntrain = per - ntest;

    /* The characters of the training words, in code point order: ids 2, 3, ... */
    unsigned char *seen = calloc(0x110000 / 8, 1);
    if (!seen)
        goto out;
    c->v.n = 0;
    for (int i = 0; i < c->nlang; i++)
        for (size_t k = 0; k < ntrain; k++) {
            const char *t = w.pool + words[i][k];
            uint32_t cp[MAX_LEN];
            int n = utf8_decode((const unsigned char *)t, strlen(t), cp, MAX_LEN);
            for (int q = 0; q < n; q++)
                seen[cp[q] / 8] |= (unsigned char)(1u << (cp[q] % 8));
        }
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        if ((seen[cp / 8] >> (cp % 8) & 1) && c->v.n < (int)(sizeof c->v.chars / sizeof c->v.chars[0]))
            c->v.chars[c->v.n++] = cp;
    free(seen);

    /* Both sets, languages interleaved. */
    hlr_dataset **out[2] = {&c->train, &c->test};
    size_t first[2] = {0, ntrain}, size[2] = {ntrain, ntest};
    for (int part = 0; part < 2; part++) {
        size_t n = size[part] * (size_t)c->nlang;
        ids = malloc(n * MAX_LEN * sizeof *ids);
        len = malloc(n * sizeof *len);
        lab = malloc(n * sizeof *lab);
        if (!ids || !len || !lab)
            goto out;
        size_t r = 0;
        for (size_t k = 0; k < size[part]; k++)
            for (int i = 0; i < c->nlang; i++, r++) {
                encode(&c->v, w.pool + words[i][first[part] + k], ids + r * MAX_LEN, &len[r]);
                lab[r] = i;
            }
        *out[part] = hlr_dataset_from_tokens(1, (int64_t[]){MAX_LEN}, (int64_t)n, ids, lab, c->nlang);
        if (!*out[part] || hlr_dataset_set_lengths(*out[part], len) != HLR_OK) {
            fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
            goto out;
        }
        free(ids);
        free(len);
        free(lab);
        ids = len = lab = NULL;
    }
    printf("%d characters; %lld training and %lld test words\n", c->v.n, (long long)hlr_dataset_size(c->train),
           (long long)hlr_dataset_size(c->test));
    rc = 0;
out:
    for (int i = 0; words && i < c->nlang; i++)
        free(words[i]);
    free(words);
    free(ids);
    free(len);
    free(lab);
    free(w.pool);
    free(w.slots);
    return rc;
}

/* ---- the model ---- */

static hlr_model *make_model(const options *o, int vocab_size, int nlang)
{
    int mean = !strcmp(o->pool, "mean"), gru = !strcmp(o->cell, "gru");
    int flags = HLR_BIDIRECTIONAL | (mean ? HLR_RETURN_SEQUENCES : 0);
    hlr_model *m = hlr_model_new(o->seed);
    if (!m)
        return NULL;
    hlr_layer *rnn = gru ? hlr_gru(EMBED_DIM, HIDDEN, 1, flags, 0.0f) : hlr_lstm(EMBED_DIM, HIDDEN, 1, flags, 0.0f);
    hlr_layer *layers[] = {hlr_embedding(vocab_size, EMBED_DIM, 0), rnn, mean ? hlr_seq_mean() : NULL,
                           hlr_dense(2 * HIDDEN, nlang, 1)};
    hlr_status st = HLR_OK;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (layers[i] && st == HLR_OK)
            st = hlr_model_add(m, layers[i]);
        else if (layers[i])
            hlr_layer_free(layers[i]);
    if (st == HLR_OK)
        st = hlr_model_build(m, 1, (int64_t[]){MAX_LEN});
    if (st != HLR_OK) {
        fprintf(stderr, "hlr-langid: cannot build the model: %s\n", hlr_last_error());
        hlr_model_free(m);
        return NULL;
    }
    return m;
}

/* Print the three likeliest languages of each word; names[i] labels class i. */
static int try_words(hlr_model *m, const vocab *v, const char *const *names, int nlang, char **words, int n)
{
    if (n < 1)
        return 0;
    int32_t *ids = calloc((size_t)n * MAX_LEN, sizeof *ids), *len = calloc((size_t)n, sizeof *len);
    hlr_tensor *x = hlr_tensor_wrap(HLR_I32, 2, (int64_t[]){n, MAX_LEN}, ids);
    hlr_tensor *p = hlr_tensor_new(HLR_F32, 2, (int64_t[]){n, nlang});
    int rc = -1;
    if (!ids || !len || !x || !p)
        goto out;
    for (int i = 0; i < n; i++)
        if (encode(v, words[i], ids + i * MAX_LEN, &len[i]) != 0) {
            fprintf(stderr, "hlr-langid: '%s' is not a word in UTF-8\n", words[i]);
            goto out;
        }
    if (hlr_model_set_lengths(m, len, n) != HLR_OK || hlr_model_predict(m, x, NULL, p) != HLR_OK) {
        fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
        goto out;
    }
    hlr_model_set_lengths(m, NULL, 0);
    const float *prob = hlr_tensor_f32(p);
    for (int i = 0; i < n; i++) {
        printf("%s:", words[i]);
        int used[MAX_LANGS] = {0};
        for (int k = 0; k < 3 && k < nlang; k++) {
            int best = -1;
            for (int j = 0; j < nlang; j++)
                if (!used[j] && (best < 0 || prob[i * nlang + j] > prob[i * nlang + best]))
                    best = j;
            used[best] = 1;
            printf("  %s %.1f%%", names[best], 100.0 * prob[i * nlang + best]);
        }
        printf("\n");
    }
    rc = 0;
out:
    hlr_tensor_free(x);
    hlr_tensor_free(p);
    free(ids);
    free(len);
    return rc;
}

/* The vocabulary as one UTF-8 string (model files keep it as metadata). */
static char *vocab_string(const vocab *v)
{
    char *s = malloc((size_t)v->n * 4 + 1), *q = s;
    if (!s)
        return NULL;
    for (int i = 0; i < v->n; i++)
        q += utf8_encode(v->chars[i], q);
    *q = '\0';
    return s;
}

static int vocab_from_string(vocab *v, const char *s)
{
    int n = utf8_decode((const unsigned char *)s, strlen(s), v->chars, (int)(sizeof v->chars / sizeof v->chars[0]));
    if (n < 0 || n > (int)(sizeof v->chars / sizeof v->chars[0]))
        return -1;
    v->n = n;
    return 0;
}

static int save_model(hlr_model *m, const corpus *c, const char *path)
{
    hlr_metadata *md = hlr_model_metadata(m);
    const char *names[MAX_LANGS];
    for (int i = 0; i < c->nlang; i++)
        names[i] = languages[c->lang[i]].code;
    char *chars = vocab_string(&c->v);
    char maxlen[16];
    snprintf(maxlen, sizeof maxlen, "%d", MAX_LEN);
    int ok = md && chars && hlr_metadata_set_class_names(md, c->nlang, names) == HLR_OK &&
             hlr_metadata_set_dataset(md, "Debian word lists (/usr/share/dict)") == HLR_OK &&
             hlr_metadata_set(md, "langid.characters", chars) == HLR_OK &&
             hlr_metadata_set(md, "langid.max_length", maxlen) == HLR_OK && hlr_model_save(m, path, NULL) == HLR_OK;
    free(chars);
    if (!ok) {
        fprintf(stderr, "hlr-langid: cannot save %s: %s\n", path, hlr_last_error());
        return -1;
    }
    printf("saved %s\n", path);
    return 0;
}

/* ---- commands ---- */

static int on_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)user;
    printf("epoch %d/%d  loss %.4f  accuracy %.2f%%  validation %.2f%%  %.0f words/s  %.2f s\n", s->epoch, s->epochs,
           s->train_loss, 100.0 * s->train_accuracy, 100.0 * s->val_accuracy, s->samples_per_second, s->seconds);
    fflush(stdout);
    return 0;
}

static int parse_langs(const char *list, corpus *c)
{
    c->nlang = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = -1;
        for (int i = 0; i < MAX_LANGS; i++)
            if (!strcmp(languages[i].code, tok))
                found = i;
        for (int i = 0; i < c->nlang; i++)
            if (c->lang[i] == found)
                found = -2;
        if (found < 0 || c->nlang == MAX_LANGS) {
            fprintf(stderr, "hlr-langid: '%s' is %s (known: en, es, de, nl, pl, fr, it, pt, sv)\n", tok,
                    found == -2 ? "given twice" : "not a language this program knows");
            return -1;
        }
        c->lang[c->nlang++] = found;
    }
    if (c->nlang < 2) {
        fprintf(stderr, "hlr-langid: --langs needs at least two languages\n");
        return -1;
    }
    return 0;
}

static int train(const options *o)
{
    corpus c = {0};
    hlr_model *m = NULL;
    hlr_optimizer *opt = NULL;
    int rc = 1;
    if (parse_langs(o->langs, &c) != 0)
        return 2;
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
        return 1;
    }
    if (build_corpus(&c, o) != 0)
        goto out;
    if (!(m = make_model(o, c.v.n + 2, c.nlang)))
        goto out;
    char summary[4096];
    if (hlr_model_summary(m, summary, sizeof summary, NULL) == HLR_OK)
        printf("%s", summary);
    printf("training a bidirectional %s (%s) for %d epochs, batch 64, adam lr 0.002, seed %llu, %d threads\n", o->cell,
           o->pool, o->epochs, o->seed, hlr_get_num_threads());
    if (!(opt = hlr_adam(2e-3f, 0.9f, 0.999f, 1e-8f, 0.0f)))
        goto fail;
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = o->epochs;
    fo.batch_size = 64;
    fo.validation_split = 0.05;
    fo.on_epoch = on_epoch;
    if (hlr_model_fit(m, opt, c.train, &fo) != HLR_OK)
        goto fail;
    hlr_metrics met;
    int64_t confusion[MAX_LANGS * MAX_LANGS];
    if (hlr_model_evaluate(m, c.test, 256, 2, &met, confusion) != HLR_OK)
        goto fail;
    const char *names[MAX_LANGS];
    for (int i = 0; i < c.nlang; i++)
        names[i] = languages[c.lang[i]].name;
    print_confusion(stdout, confusion, c.nlang, names);
    printf("test loss: %.4f  top-2 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
    for (int i = 0; i < c.nlang; i++)
        names[i] = languages[c.lang[i]].code;
    if (try_words(m, &c.v, names, c.nlang, o->try_words, o->ntry) != 0)
        goto out;
    if (o->save && save_model(m, &c, o->save) != 0)
        goto out;
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
out:
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(c.train);
    hlr_dataset_free(c.test);
    return rc;
}

static int predict(const char *path, char **words, int n)
{
    hlr_model *m = hlr_model_load(path, NULL);
    if (!m) {
        fprintf(stderr, "hlr-langid: cannot load %s: %s\n", path, hlr_last_error());
        return 1;
    }
    int rc = 1;
    vocab v;
    hlr_metadata *md = hlr_model_metadata(m);
    const char *chars = md ? hlr_metadata_get(md, "langid.characters") : NULL;
    const char *maxlen = md ? hlr_metadata_get(md, "langid.max_length") : NULL;
    int nlang = md ? hlr_metadata_num_classes(md) : 0;
    if (!chars || !maxlen || atoi(maxlen) != MAX_LEN || nlang < 2 || nlang > MAX_LANGS ||
        vocab_from_string(&v, chars) != 0) {
        fprintf(stderr, "hlr-langid: %s is not a model saved by hlr-langid train --save\n", path);
        goto out;
    }
    const char *names[MAX_LANGS];
    for (int i = 0; i < nlang; i++)
        names[i] = hlr_metadata_class_name(md, i);
    rc = try_words(m, &v, names, nlang, words, n) == 0 ? 0 : 1;
out:
    hlr_model_free(m);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-langid train [--langs en,es,de,nl,pl] [--epochs N] [--seed S] [--words N]\n"
               "                        [--cell gru|lstm] [--pool mean|last] [--threads T] [--save FILE]\n"
               "                        [--try word...]\n"
               "       hlr-langid predict FILE word...\n"
               "  --langs    two or more of en es de nl pl fr it pt sv (default en,es,de,nl,pl)\n"
               "  --epochs   training epochs (default 6)\n"
               "  --seed     seed of the word sample, initialisation and shuffling (default 0)\n"
               "  --words    at most this many words per language, a tenth held out (default 30000)\n"
               "  --cell     the bidirectional recurrent layer: gru (default) or lstm\n"
               "  --pool     mean of its outputs over the word (default) or last: its final states\n"
               "  --threads  threads for the arithmetic (default $HLR_NUM_THREADS or all cores)\n"
               "  --save     write the trained model to FILE (read back by `predict`)\n"
               "  --try      after training, the three likeliest languages of each word that follows\n");
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.langs = "en,es,de,nl,pl", .cell = "gru", .pool = "mean", .epochs = 6, .words = 30000};
    const opt_spec specs[] = {
        OPT_STR("--langs", &o->langs),
        OPT_STR("--cell", &o->cell),
        OPT_STR("--pool", &o->pool),
        OPT_STR("--save", &o->save),
        OPT_NUM("--epochs", OPT_INT, &o->epochs, 1, 100000),
        OPT_NUM("--threads", OPT_INT, &o->threads, 1, 1024),
        OPT_NUM_HINT("--words", OPT_LONG, &o->words, 20, 100000000, "a tenth of them are held out"),
        OPT_NUM("--seed", OPT_U64, &o->seed, 0, HUGE_VAL),
        {.name = "--try", .type = OPT_REST, .dest = &o->try_words, .rest_count = &o->ntry},
    };
    int rc = parse_options("hlr-langid", argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]), NULL, 0, NULL);
    if (rc != 0)
        return rc;
    if (strcmp(o->cell, "gru") && strcmp(o->cell, "lstm")) {
        fprintf(stderr, "hlr-langid: --cell '%s' is not a recurrent layer: expected gru or lstm\n", o->cell);
        return -1;
    }
    if (strcmp(o->pool, "mean") && strcmp(o->pool, "last")) {
        fprintf(stderr, "hlr-langid: --pool '%s' is not a pooling: expected mean or last\n", o->pool);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    setlocale(LC_CTYPE, "C.UTF-8"); /* towlower and iswalpha for every script */
    if (argc < 2) {
        fprintf(stderr, "hlr-langid: which command: train or predict? (see hlr-langid --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "predict")) {
        if (argc < 4) {
            fprintf(stderr, "hlr-langid: predict needs a model FILE and at least one WORD\n");
            return 2;
        }
        return predict(argv[2], argv + 3, argc - 3);
    }
    if (strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "hlr-langid: unknown command '%s' (train or predict)\n", argv[1]);
        return 2;
    }
    options o;
    int rc = parse(argc, argv, &o);
    if (rc > 0)
        usage(stdout);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return train(&o);
}

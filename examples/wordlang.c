/*
 * wordlang.c -- Debian's word lists as a corpus, and the character-level
 * language identifier trained on it (hlr-langid, hlr-read's words task).
 * See wordlang.h.
 */
#include "wordlang.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#define EMBED_DIM 32
#define HIDDEN 64

const wl_language wl_languages[WL_MAX_LANGS] = {
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

void wl_top_languages(const float *p, int nlang, const char *const *codes, int k, const char **top_codes,
                      float *top_probs)
{
    int used[WL_MAX_LANGS] = {0};
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int j = 0; j < nlang; j++)
            if (!used[j] && (best < 0 || p[j] > p[best]))
                best = j;
        top_codes[r] = best >= 0 ? codes[best] : NULL;
        top_probs[r] = best >= 0 ? p[best] : 0.0f;
        if (best >= 0)
            used[best] = 1;
    }
}

const char *wl_language_name(const char *code)
{
    for (int i = 0; i < WL_MAX_LANGS; i++)
        if (!strcmp(wl_languages[i].code, code))
            return wl_languages[i].name;
    return code;
}

/* ---- text: UTF-8, lower case, letters only ---- */

/* Decode one UTF-8 line into code points; -1 when it is not valid UTF-8. */
int wl_utf8_decode(const unsigned char *s, size_t len, uint32_t *out, int cap)
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

size_t wl_utf8_encode(uint32_t c, char *out)
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
    int n = wl_utf8_decode((const unsigned char *)text, len, cp, cap);
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

static int read_list(const char *prog, wordset *w, const wl_language *l, int lang, long *kept)
{
    FILE *f = fopen(l->file, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read %s: install the Debian package %s (`make data` does, as root)\n", prog,
                l->file, l->package);
        return -1;
    }
    char line[1024], word[4 * WL_MAX_LEN + 1];
    uint32_t cp[WL_MAX_LEN];
    *kept = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        int n = normalise(line, len, cp, WL_MAX_LEN);
        if (n < 0)
            continue;
        size_t bytes = 0;
        for (int i = 0; i < n; i++)
            bytes += wl_utf8_encode(cp[i], word + bytes);
        if (wordset_add(w, word, bytes, lang) != 0) {
            fclose(f);
            fprintf(stderr, "%s: out of memory reading %s\n", prog, l->file);
            return -1;
        }
        (*kept)++;
    }
    fclose(f);
    return 0;
}

int wl_vocab_index(const wl_vocab *v, uint32_t c)
{
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v->chars[mid] == c)
            return mid;
        if (v->chars[mid] < c)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* A character's token id: 2 + its index, 1 when the vocabulary does not have it. */
static int vocab_id(const wl_vocab *v, uint32_t c)
{
    int k = wl_vocab_index(v, c);
    return k < 0 ? 1 : k + 2;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int wl_parse_langs(const char *prog, const char *list, int *lang)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = -1;
        for (int i = 0; i < WL_MAX_LANGS; i++)
            if (!strcmp(wl_languages[i].code, tok))
                found = i;
        for (int i = 0; i < n; i++)
            if (lang[i] == found)
                found = -2;
        if (found < 0 || n == WL_MAX_LANGS) {
            fprintf(stderr, "%s: '%s' is %s (known: en, es, de, nl, pl, fr, it, pt, sv)\n", prog, tok,
                    found == -2 ? "given twice" : "not a language this program knows");
            return -1;
        }
        lang[n++] = found;
    }
    if (n < 2) {
        fprintf(stderr, "%s: --langs needs at least two languages\n", prog);
        return -1;
    }
    return n;
}

/* ---- the corpus ---- */

int wl_corpus_build(wl_corpus *c, const char *prog, long words_per_lang, uint64_t seed, int verbose)
{
    wordset w = {0};
    int rc = -1;
    uint32_t *offs[WL_MAX_LANGS] = {0}; /* per language: offsets of its own words */
    size_t count[WL_MAX_LANGS] = {0};
    for (int i = 0; i < c->nlang; i++) {
        long kept;
        if (read_list(prog, &w, &wl_languages[c->lang[i]], i, &kept) != 0)
            goto out;
        if (verbose)
            printf("%-10s %s: %ld words of letters only, up to %d characters\n", wl_languages[c->lang[i]].name,
                   wl_languages[c->lang[i]].file, kept, WL_MAX_LEN);
    }
    for (int i = 0; i < c->nlang; i++)
        if (!(offs[i] = malloc((w.count ? w.count : 1) * sizeof **offs))) {
            fprintf(stderr, "%s: out of memory building the word lists\n", prog);
            goto out;
        }
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
        offs[i][count[i]++] = e.off;
    }
    size_t per = (size_t)words_per_lang;
    for (int i = 0; i < c->nlang; i++)
        per = count[i] < per ? count[i] : per;
    if (per < 20) {
        fprintf(stderr, "%s: too few words left (%zu per language)\n", prog, per);
        goto out;
    }
    if (verbose)
        printf("%zu words are in more than one list and dropped; %zu words per language, %zu of them for the test\n",
               shared, per, per / WL_TEST_FRACTION);
    /* The closed lexicon: as many words of every language's list, the corpus's among them. */
    size_t nlex = WL_LEXICON_MAX;
    for (int i = 0; i < c->nlang; i++)
        nlex = count[i] < nlex ? count[i] : nlex;
    nlex = nlex > per ? nlex : per;
    /* Shuffle each language's words (Fisher-Yates, seeded), keep the first `nlex`: the corpus is the first
     * `per` of them, whatever nlex. */
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < c->nlang; i++) {
        for (size_t k = count[i] - 1; k > 0; k--) {
            size_t j = (size_t)(splitmix(&s) % (k + 1));
            uint32_t t = offs[i][k];
            offs[i][k] = offs[i][j];
            offs[i][j] = t;
        }
        if (!(c->words[i] = malloc(nlex * sizeof *c->words[i]))) {
            fprintf(stderr, "%s: out of memory building the word lists\n", prog);
            goto out;
        }
        for (size_t k = 0; k < nlex; k++)
            c->words[i][k] = w.pool + offs[i][k];
    }
    c->per = per;
    c->nlex = nlex;
    c->ntest = per / WL_TEST_FRACTION;
    c->ntrain = per - c->ntest;
    c->pool = w.pool;
    w.pool = NULL;
    rc = 0;
out:
    for (int i = 0; i < c->nlang; i++)
        free(offs[i]);
    if (rc != 0)
        for (int i = 0; i < c->nlang; i++) {
            free(c->words[i]);
            c->words[i] = NULL;
        }
    free(w.pool);
    free(w.slots);
    return rc;
}

void wl_corpus_free(wl_corpus *c)
{
    for (int i = 0; i < c->nlang; i++) {
        free(c->words[i]);
        c->words[i] = NULL;
    }
    free(c->pool);
    c->pool = NULL;
}

/* ---- the identifier ---- */

int wl_vocab_build(wl_vocab *v, const wl_corpus *c)
{
    unsigned char *seen = calloc(0x110000 / 8, 1);
    if (!seen)
        return -1;
    v->n = 0;
    for (int i = 0; i < c->nlang; i++)
        for (size_t k = 0; k < c->ntrain; k++) {
            const char *t = c->words[i][k];
            uint32_t cp[WL_MAX_LEN];
            int n = wl_utf8_decode((const unsigned char *)t, strlen(t), cp, WL_MAX_LEN);
            for (int q = 0; q < n; q++)
                seen[cp[q] / 8] |= (unsigned char)(1u << (cp[q] % 8));
        }
    for (uint32_t cp = 0; cp < 0x110000; cp++)
        if ((seen[cp / 8] >> (cp % 8) & 1) && v->n < (int)(sizeof v->chars / sizeof v->chars[0]))
            v->chars[v->n++] = cp;
    free(seen);
    return 0;
}

int wl_encode(const wl_vocab *v, const char *text, int32_t *ids, int32_t *length)
{
    uint32_t cp[4 * WL_MAX_LEN];
    int n = wl_utf8_decode((const unsigned char *)text, strlen(text), cp, 4 * WL_MAX_LEN);
    if (n < 1)
        return -1;
    memset(ids, 0, WL_MAX_LEN * sizeof *ids);
    int len = n < WL_MAX_LEN ? n : WL_MAX_LEN; /* a longer word is read up to WL_MAX_LEN characters */
    for (int i = 0; i < len; i++)
        ids[i] = vocab_id(v, (uint32_t)towlower((wint_t)cp[i]));
    *length = len;
    return 0;
}

void wl_misread(const wl_vocab *v, const int32_t *ids, int32_t len, double rate, uint64_t *rng, int32_t *out,
                int32_t *out_len)
{
    int32_t n = 0;
    for (int32_t i = 0; i < len; i++) {
        const double u = (double)(splitmix(rng) >> 11) * 0x1.0p-53;
        const int32_t other = 2 + (int32_t)(splitmix(rng) % (uint64_t)(v->n > 0 ? v->n : 1));
        if (u >= rate) { /* read right */
            if (n < WL_MAX_LEN)
                out[n++] = ids[i];
        } else if (u < rate / 2) { /* another letter */
            if (n < WL_MAX_LEN)
                out[n++] = other;
        } else if (u < 3 * rate / 4) { /* lost */
            continue;
        } else { /* an extra letter after it */
            if (n < WL_MAX_LEN)
                out[n++] = ids[i];
            if (n < WL_MAX_LEN)
                out[n++] = other;
        }
    }
    if (n == 0) /* everything lost: the first letter stays */
        out[n++] = ids[0];
    for (int32_t i = n; i < WL_MAX_LEN; i++)
        out[i] = 0;
    *out_len = n;
}

int wl_datasets(const wl_corpus *c, const wl_vocab *v, double noise, uint64_t seed, hlr_dataset **train,
                hlr_dataset **test)
{
    hlr_dataset **out[2] = {train, test};
    size_t first[2] = {0, c->ntrain}, size[2] = {c->ntrain, c->ntest};
    uint64_t rng = seed * 0xD1B54A32D192ED03ULL + 7;
    *train = *test = NULL;
    for (int part = 0; part < 2; part++) {
        /* with noise, each training word twice: as written, then misread */
        const int copies = part == 0 && noise > 0 ? 2 : 1;
        size_t n = size[part] * (size_t)c->nlang * (size_t)copies;
        int32_t *ids = malloc(n * WL_MAX_LEN * sizeof *ids), *len = malloc(n * sizeof *len),
                *lab = malloc(n * sizeof *lab);
        int ok = ids && len && lab;
        size_t r = 0;
        for (size_t k = 0; ok && k < size[part]; k++)
            for (int i = 0; i < c->nlang; i++, r++) {
                wl_encode(v, c->words[i][first[part] + k], ids + r * WL_MAX_LEN, &len[r]);
                lab[r] = i;
                if (copies == 2) {
                    r++;
                    wl_misread(v, ids + (r - 1) * WL_MAX_LEN, len[r - 1], noise, &rng, ids + r * WL_MAX_LEN, &len[r]);
                    lab[r] = i;
                }
            }
        if (ok)
            *out[part] = hlr_dataset_from_tokens(1, (int64_t[]){WL_MAX_LEN}, (int64_t)n, ids, lab, c->nlang);
        ok = ok && *out[part] && hlr_dataset_set_lengths(*out[part], len) == HLR_OK;
        free(ids);
        free(len);
        free(lab);
        if (!ok) {
            hlr_dataset_free(*train);
            hlr_dataset_free(*test);
            *train = *test = NULL;
            return -1;
        }
    }
    return 0;
}

hlr_model *wl_langid_model(uint64_t seed, const char *cell, const char *pool, int vocab_size, int nlang)
{
    int mean = !strcmp(pool, "mean"), gru = !strcmp(cell, "gru");
    int flags = HLR_BIDIRECTIONAL | (mean ? HLR_RETURN_SEQUENCES : 0);
    hlr_model *m = hlr_model_new(seed);
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
        st = hlr_model_build(m, 1, (int64_t[]){WL_MAX_LEN});
    if (st != HLR_OK) {
        hlr_model_free(m);
        return NULL;
    }
    return m;
}

char *wl_vocab_string(const wl_vocab *v)
{
    char *s = malloc((size_t)v->n * 4 + 1), *q = s;
    if (!s)
        return NULL;
    for (int i = 0; i < v->n; i++)
        q += wl_utf8_encode(v->chars[i], q);
    *q = '\0';
    return s;
}

int wl_langid_save(hlr_model *m, const wl_corpus *c, const wl_vocab *v, const char *path)
{
    hlr_metadata *md = hlr_model_metadata(m);
    const char *names[WL_MAX_LANGS];
    for (int i = 0; i < c->nlang; i++)
        names[i] = wl_languages[c->lang[i]].code;
    char *chars = wl_vocab_string(v);
    char maxlen[16];
    snprintf(maxlen, sizeof maxlen, "%d", WL_MAX_LEN);
    int ok = md && chars && hlr_metadata_set_class_names(md, c->nlang, names) == HLR_OK &&
             hlr_metadata_set_dataset(md, "Debian word lists (/usr/share/dict)") == HLR_OK &&
             hlr_metadata_set(md, "langid.characters", chars) == HLR_OK &&
             hlr_metadata_set(md, "langid.max_length", maxlen) == HLR_OK &&
             (!path || hlr_model_save(m, path, NULL) == HLR_OK);
    free(chars);
    return ok ? 0 : -1;
}

hlr_model *wl_langid_load(const char *prog, const char *path, wl_vocab *v, const char **codes, int *nlang)
{
    hlr_model *m = hlr_model_load(path, NULL);
    if (!m) {
        fprintf(stderr, "%s: cannot load %s: %s\n", prog, path, hlr_last_error());
        return NULL;
    }
    hlr_metadata *md = hlr_model_metadata(m);
    const char *chars = md ? hlr_metadata_get(md, "langid.characters") : NULL;
    const char *maxlen = md ? hlr_metadata_get(md, "langid.max_length") : NULL;
    int n = md ? hlr_metadata_num_classes(md) : 0;
    int got = chars ? wl_utf8_decode((const unsigned char *)chars, strlen(chars), v->chars,
                                     (int)(sizeof v->chars / sizeof v->chars[0]))
                    : -1;
    if (!chars || !maxlen || atoi(maxlen) != WL_MAX_LEN || n < 2 || n > WL_MAX_LANGS || got < 0 ||
        got > (int)(sizeof v->chars / sizeof v->chars[0])) {
        fprintf(stderr, "%s: %s is not a model saved by hlr-langid train --save\n", prog, path);
        hlr_model_free(m);
        return NULL;
    }
    v->n = got;
    for (int i = 0; i < n; i++)
        codes[i] = hlr_metadata_class_name(md, i);
    *nlang = n;
    return m;
}

int wl_langid_probs(const char *prog, hlr_model *m, const wl_vocab *v, int nlang, const char *const *words, int n,
                    float *probs)
{
    if (n < 1)
        return 0;
    int32_t *ids = calloc((size_t)n * WL_MAX_LEN, sizeof *ids), *len = calloc((size_t)n, sizeof *len);
    hlr_tensor *x = ids ? hlr_tensor_wrap(HLR_I32, 2, (int64_t[]){n, WL_MAX_LEN}, ids) : NULL;
    hlr_tensor *p = hlr_tensor_wrap(HLR_F32, 2, (int64_t[]){n, nlang}, probs);
    int rc = -1;
    if (!ids || !len || !x || !p) {
        fprintf(stderr, "%s: %s\n", prog, ids && len ? hlr_last_error() : "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (wl_encode(v, words[i], ids + i * WL_MAX_LEN, &len[i]) != 0) { /* nothing read: one unknown character */
            ids[i * WL_MAX_LEN] = 1;
            len[i] = 1;
        }
    if (hlr_model_set_lengths(m, len, n) != HLR_OK || hlr_model_predict(m, x, NULL, p) != HLR_OK) {
        fprintf(stderr, "%s: %s\n", prog, hlr_last_error());
        hlr_model_set_lengths(m, NULL, 0);
        goto out;
    }
    hlr_model_set_lengths(m, NULL, 0);
    rc = 0;
out:
    hlr_tensor_free(x);
    hlr_tensor_free(p);
    free(ids);
    free(len);
    return rc;
}

hlr_model *wl_langid_train(const wl_corpus *c, const wl_vocab *v, const char *cell, const char *pool, int epochs,
                           double noise, uint64_t seed, hlr_epoch_fn on_epoch, hlr_dataset **test)
{
    hlr_dataset *train = NULL;
    hlr_model *m = NULL;
    hlr_optimizer *opt = NULL;
    *test = NULL;
    if (wl_datasets(c, v, noise, seed, &train, test) != 0 ||
        !(m = wl_langid_model(seed, cell, pool, v->n + 2, c->nlang)) ||
        !(opt = hlr_adam(2e-3f, 0.9f, 0.999f, 1e-8f, 0.0f)))
        goto fail;
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = epochs;
    fo.batch_size = 64;
    fo.validation_split = 0.05;
    fo.on_epoch = on_epoch;
    if (hlr_model_fit(m, opt, train, &fo) != HLR_OK)
        goto fail;
    hlr_optimizer_free(opt);
    hlr_dataset_free(train);
    return m;
fail:
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(train);
    hlr_dataset_free(*test);
    *test = NULL;
    return NULL;
}

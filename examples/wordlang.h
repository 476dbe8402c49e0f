/*
 * wordlang.h -- the words of Debian's word lists and the language identifier
 * trained on them, shared by hlr-langid and hlr-read's words task.
 *
 * Each list is read (UTF-8, or Latin-1 where a line is not UTF-8),
 * lower-cased and reduced to words of letters only, at most WL_MAX_LEN
 * characters; words found in more than one language's list are dropped;
 * every language then keeps the same number of words, drawn at random from
 * the seed, the last tenth of them held out for tests (words never seen in
 * training).  Two programs given the same languages, word count and seed
 * hold out exactly the same words.
 */
#ifndef HLR_EXAMPLES_WORDLANG_H
#define HLR_EXAMPLES_WORDLANG_H

#include <hlr/hlr.h>
#include <stddef.h>
#include <stdint.h>

#define WL_MAX_LEN 20 /* characters per word */
#define WL_MAX_LANGS 9
#define WL_TEST_FRACTION 10 /* one word in ten is held out */
#define WL_LEXICON_MAX 100000 /* the most words a language's closed lexicon holds */

typedef struct wl_language {
    const char *code, *name, *file, *package;
} wl_language;
extern const wl_language wl_languages[WL_MAX_LANGS];

/* Decode UTF-8 into at most cap code points: the count, cap + 1 when longer, -1 when not UTF-8. */
int wl_utf8_decode(const unsigned char *s, size_t len, uint32_t *out, int cap);
/* Encode one code point; returns its bytes (1..4). */
size_t wl_utf8_encode(uint32_t c, char *out);

/* The languages of a comma-separated list of codes into lang (indices into wl_languages);
 * their count, or -1 after a line on stderr naming prog. */
int wl_parse_langs(const char *prog, const char *list, int *lang);

/* The words, per language, split into training and test words. */
typedef struct wl_corpus {
    int nlang, lang[WL_MAX_LANGS];
    size_t per, ntrain, ntest;        /* words per language: the first ntrain train, the next ntest test */
    size_t nlex;                      /* words per language in words[]: the per words, then words of the list
                                       * never drawn, as many for every language, at most WL_LEXICON_MAX */
    const char **words[WL_MAX_LANGS]; /* per language: nlex words (UTF-8, lower case) */
    char *pool;
} wl_corpus;

/* Build the corpus of at most `words` words per language (nlang languages already set in c).
 * verbose: a line per list and the totals on stdout.  0, or -1 after a line on stderr naming prog. */
int wl_corpus_build(wl_corpus *c, const char *prog, long words, uint64_t seed, int verbose);
void wl_corpus_free(wl_corpus *c);

/* ---- the language identifier: characters -> embedding -> bidirectional GRU/LSTM -> dense ---- */

typedef struct wl_vocab {
    uint32_t chars[4096]; /* id - 2 -> code point, sorted (0 pads, 1 is an unknown character) */
    int n;
} wl_vocab;

/* The characters of the corpus's training words. */
int wl_vocab_build(wl_vocab *v, const wl_corpus *c);
/* The index of code point c among the vocabulary's sorted characters, or -1. */
int wl_vocab_index(const wl_vocab *v, uint32_t c);
/* The vocabulary's characters as one UTF-8 string (model files keep it as metadata); malloc'ed, NULL when
 * out of memory. */
char *wl_vocab_string(const wl_vocab *v);
/* Token ids (WL_MAX_LEN, zero-padded) and the length of one UTF-8 word (lower-cased here; a longer
 * word is read up to WL_MAX_LEN characters); 0, or -1 when it is not UTF-8 or empty. */
int wl_encode(const wl_vocab *v, const char *text, int32_t *ids, int32_t *length);

/* A word of len token ids as a reader might misread it: each letter, with probability rate, read as another
 * letter of the vocabulary (half of those times), lost (a quarter) or followed by an extra letter (a quarter);
 * at most WL_MAX_LEN ids (zero-padded) into out, at least one, their count into *out_len.  Draws from rng. */
void wl_misread(const wl_vocab *v, const int32_t *ids, int32_t len, double rate, uint64_t *rng, int32_t *out,
                int32_t *out_len);

/* The training and test sets of token ids, languages interleaved.  With noise > 0 each training word comes
 * twice, as written and misread at that rate (wl_misread, seeded by seed); the test words as written.
 * 0, or -1 (hlr_last_error()). */
int wl_datasets(const wl_corpus *c, const wl_vocab *v, double noise, uint64_t seed, hlr_dataset **train,
                hlr_dataset **test);

/* An untrained identifier: cell "gru" or "lstm", pool "mean" or "last". NULL: hlr_last_error(). */
hlr_model *wl_langid_model(uint64_t seed, const char *cell, const char *pool, int vocab_size, int nlang);

/* Train an identifier on the corpus's training words through hlr_model_fit (batch 64, Adam 0.002, 5 %
 * validation; on_epoch may be NULL), with misread copies of them when noise > 0 (wl_datasets); *test
 * receives the test words' data set.  NULL: hlr_last_error(). */
hlr_model *wl_langid_train(const wl_corpus *c, const wl_vocab *v, const char *cell, const char *pool, int epochs,
                           double noise, uint64_t seed, hlr_epoch_fn on_epoch, hlr_dataset **test);

/* Set the metadata predict needs (class names are the language codes) and save to path (NULL: only set).
 * 0, or -1 (hlr_last_error()). */
int wl_langid_save(hlr_model *m, const wl_corpus *c, const wl_vocab *v, const char *path);
/* Load a model wl_langid_save() wrote: its vocabulary into v, its languages' codes into codes (borrowed
 * from the model).  NULL after a line on stderr naming prog. */
hlr_model *wl_langid_load(const char *prog, const char *path, wl_vocab *v, const char **codes, int *nlang);

/* Each of n words' probabilities of the nlang languages into probs (n x nlang). 0, or -1 after a line
 * on stderr naming prog.  A word with no letter the vocabulary knows still gets an answer. */
int wl_langid_probs(const char *prog, hlr_model *m, const wl_vocab *v, int nlang, const char *const *words, int n,
                    float *probs);

/* The k likeliest of nlang languages (probabilities p, language i named codes[i]), likeliest first, into
 * top_codes and top_probs; fewer than k when nlang is smaller (the rest NULL and 0). */
void wl_top_languages(const float *p, int nlang, const char *const *codes, int k, const char **top_codes,
                      float *top_probs);

/* The name of a language code ("en" -> "English"), or the code itself. */
const char *wl_language_name(const char *code);

#endif

/*
 * words.h -- hlr-read's words task: handwritten words of several languages
 * (rendered from Debian's handwriting fonts, handwriting.h), read by a CRNN
 * with CTC, their language named by hlr-langid's model (wordlang.h).
 */
#ifndef HLR_EXAMPLES_WORDS_H
#define HLR_EXAMPLES_WORDS_H

#include <hlr/hlr.h>

typedef struct words_options {
    const char *langs, *save, *langid, *splits, *schedule, *out, *part;
    const char *evaluate; /* hlr-read evaluate FILE: test this words model instead of training one */
    int epochs, batch, hidden, layers, convs, pool_w, channels, batchnorm, beam, threads, width, langid_epochs;
    long words, train_words, test_words;
    unsigned long long seed;
    float lr, dropout; /* dropout: on the LSTM's inputs and between its layers */
    double mix;   /* the share of training words drawn with a font per letter */
    double hands; /* the share of training words drawn by a hand of strokes (hw_pick_hand) */
    double langid_noise; /* the language model's training words also misread, each letter with this probability */
    double views[4];     /* --views: the test pictures also read stretched across by these factors (nviews of them) */
    int nviews;
} words_options;

/* hlr-read train --task words (or, with o->evaluate, hlr-read evaluate FILE: the model's test words read
 * again): 0, 1 (a failure, after a line on stderr), 2 (a usage mistake). */
int words_train(const words_options *o);
/* hlr-read generate --task words --part train|test-training|test-held-out --out DIR: the pictures as PNG
 * files and DIR/labels.tsv (NAME<TAB>TEXT<TAB>LANGUAGE<TAB>FONT). */
int words_generate(const words_options *o);
/* Languages of a words model's readings: its langid model (metadata "words.langid", a file beside the
 * model at model_path) loaded once; with lexicon, also the model's word lists (its metadata's languages, seed
 * and word count) as a lexicon per language.  NULL after a line on stderr. */
typedef struct words_langid words_langid;
words_langid *words_langid_open(const char *model_path, hlr_model *model, int lexicon);
/* A picture's reading: the three likeliest languages of text (the text read from its readings' scores,
 * logits[v] T[v] x C, views of them: one, or more with --views).  With the lexicon, word (4 WL_MAX_LEN + 1
 * bytes) receives the best word of the lists (empty when none fits; with more readings than one, the word
 * likeliest on average over them) and the languages are scored by their best word's likelihood times
 * langid's probability of text.  0, or -1 after a
 * line on stderr. */
int words_langid_read(words_langid *w, const float *const *logits, const int *T, int views, int C, const char *text,
                      char *word, const char *codes[3], float probs[3]);
void words_langid_close(words_langid *w);

#endif

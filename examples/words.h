/*
 * words.h -- hlr-read's words task: handwritten words of several languages
 * (rendered from Debian's handwriting fonts, handwriting.h), read by a CRNN
 * with CTC, their language named by hlr-langid's model (wordlang.h).
 */
#ifndef HLR_EXAMPLES_WORDS_H
#define HLR_EXAMPLES_WORDS_H

typedef struct words_options {
    const char *langs, *save, *langid, *splits, *schedule, *out, *part;
    const char *evaluate; /* hlr-read evaluate FILE: test this words model instead of training one */
    int epochs, batch, hidden, convs, channels, batchnorm, beam, threads, width, langid_epochs;
    long words, train_words, test_words;
    unsigned long long seed;
    float lr;
    double mix; /* the share of training words drawn with a font per letter */
} words_options;

/* hlr-read train --task words (or, with o->evaluate, hlr-read evaluate FILE: the model's test words read
 * again): 0, 1 (a failure, after a line on stderr), 2 (a usage mistake). */
int words_train(const words_options *o);
/* hlr-read generate --task words --part train|test-training|test-held-out --out DIR: the pictures as PNG
 * files and DIR/labels.tsv (NAME<TAB>TEXT<TAB>LANGUAGE<TAB>FONT). */
int words_generate(const words_options *o);
/* Languages of a words model's readings: its langid model (metadata "words.langid", a file beside the
 * model) loaded once; for one text, the three likeliest languages.  0, or -1 after a line on stderr. */
typedef struct words_langid words_langid;
words_langid *words_langid_open(const char *model_path, const char *langid_name);
int words_langid_top3(words_langid *w, const char *text, const char *codes[3], float probs[3]);
void words_langid_close(words_langid *w);

#endif

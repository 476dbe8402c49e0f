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
#include "wordlang.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct options {
    const char *langs, *cell, *pool, *save;
    int epochs, threads;
    long words;
    double noise;
    unsigned long long seed;
    char **try_words;
    int ntry;
} options;

/* Print the three likeliest languages of each word; codes[i] labels class i. */
static int try_words(hlr_model *m, const wl_vocab *v, const char *const *codes, int nlang, char **words, int n)
{
    if (n < 1)
        return 0;
    float *prob = malloc((size_t)n * (size_t)nlang * sizeof *prob);
    if (!prob) {
        fprintf(stderr, "hlr-langid: out of memory\n");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int32_t ids[WL_MAX_LEN], len;
        if (wl_encode(v, words[i], ids, &len) != 0) {
            fprintf(stderr, "hlr-langid: '%s' is not a word in UTF-8\n", words[i]);
            free(prob);
            return -1;
        }
    }
    if (wl_langid_probs("hlr-langid", m, v, nlang, (const char *const *)words, n, prob) != 0) {
        free(prob);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *top[3];
        float tp[3];
        wl_top_languages(prob + (size_t)i * nlang, nlang, codes, 3, top, tp);
        printf("%s:", words[i]);
        for (int k = 0; k < 3 && top[k]; k++)
            printf("  %s %.1f%%", top[k], 100.0 * tp[k]);
        printf("\n");
    }
    free(prob);
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

static int train(const options *o)
{
    wl_corpus c = {0};
    wl_vocab *v = malloc(sizeof *v);
    hlr_model *m = NULL;
    hlr_dataset *test = NULL;
    int rc = 1;
    if (!v) {
        fprintf(stderr, "hlr-langid: out of memory\n");
        return 1;
    }
    if ((c.nlang = wl_parse_langs("hlr-langid", o->langs, c.lang)) < 0) {
        free(v);
        return 2;
    }
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
        free(v);
        return 1;
    }
    if (wl_corpus_build(&c, "hlr-langid", o->words, o->seed, 1) != 0)
        goto out;
    if (wl_vocab_build(v, &c) != 0) {
        fprintf(stderr, "hlr-langid: out of memory\n");
        goto out;
    }
    printf("%d characters; %lld training and %lld test words\n", v->n, (long long)(c.ntrain * (size_t)c.nlang),
           (long long)(c.ntest * (size_t)c.nlang));
    printf("training a bidirectional %s (%s) for %d epochs, batch 64, adam lr 0.002, seed %llu, %d threads\n", o->cell,
           o->pool, o->epochs, o->seed, hlr_get_num_threads());
    if (o->noise > 0)
        printf("each training word also misread: %.0f%% of its letters replaced, lost or doubled by another\n",
               100.0 * o->noise);
    fflush(stdout);
    if (!(m = wl_langid_train(&c, v, o->cell, o->pool, o->epochs, o->noise, o->seed, on_epoch, &test)))
        goto fail;
    hlr_metrics met;
    int64_t confusion[WL_MAX_LANGS * WL_MAX_LANGS];
    if (hlr_model_evaluate(m, test, 256, 2, &met, confusion) != HLR_OK)
        goto fail;
    const char *names[WL_MAX_LANGS];
    for (int i = 0; i < c.nlang; i++)
        names[i] = wl_languages[c.lang[i]].name;
    print_confusion(stdout, confusion, c.nlang, names);
    printf("test loss: %.4f  top-2 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
    for (int i = 0; i < c.nlang; i++)
        names[i] = wl_languages[c.lang[i]].code;
    if (try_words(m, v, names, c.nlang, o->try_words, o->ntry) != 0)
        goto out;
    if (o->save) {
        if (wl_langid_save(m, &c, v, o->save) != 0) {
            fprintf(stderr, "hlr-langid: cannot save %s: %s\n", o->save, hlr_last_error());
            goto out;
        }
        printf("saved %s\n", o->save);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-langid: %s\n", hlr_last_error());
out:
    hlr_model_free(m);
    hlr_dataset_free(test);
    wl_corpus_free(&c);
    free(v);
    return rc;
}

static int predict(const char *path, char **words, int n)
{
    wl_vocab *v = malloc(sizeof *v);
    const char *codes[WL_MAX_LANGS];
    int nlang;
    if (!v) {
        fprintf(stderr, "hlr-langid: out of memory\n");
        return 1;
    }
    hlr_model *m = wl_langid_load("hlr-langid", path, v, codes, &nlang);
    int rc = m && try_words(m, v, codes, nlang, words, n) == 0 ? 0 : 1;
    hlr_model_free(m);
    free(v);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-langid train [--langs en,es,de,nl,pl] [--epochs N] [--seed S] [--words N]\n"
               "                        [--cell gru|lstm] [--pool mean|last] [--noise P] [--threads T]\n"
               "                        [--save FILE] [--try word...]\n"
               "       hlr-langid predict FILE word...\n"
               "  --langs    two or more of en es de nl pl fr it pt sv (default en,es,de,nl,pl)\n"
               "  --epochs   training epochs (default 6)\n"
               "  --seed     seed of the word sample, initialisation and shuffling (default 0)\n"
               "  --words    at most this many words per language, a tenth held out (default 30000)\n"
               "  --cell     the bidirectional recurrent layer: gru (default) or lstm\n"
               "  --pool     mean of its outputs over the word (default) or last: its final states\n"
               "  --noise    also train on each word misread: a letter in P replaced by another, lost or\n"
               "             followed by an extra one, for text a recogniser read (default 0: as written)\n"
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
        OPT_NUM("--noise", OPT_DOUBLE, &o->noise, 0, 0.9),
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

/*
 * hlr-mnist -- train a network on MNIST and report its test accuracy.
 *
 *   hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]
 *                   [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]
 *                   [--threads T] [--limit N] [--test-limit N] [--save FILE]
 *   hlr-mnist eval FILE [--data DIR] [--test-limit N]
 *   hlr-mnist resume FILE --epochs N [--save OUT] [--data DIR] [--threads T]
 *
 * One progress line per epoch, then the confusion matrix and the line
 * `test accuracy: NN.NN%`, which scripts read.
 */
#include "common.h"
#include "models.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct options {
    const char *model, *optimizer, *data;
    int epochs, batch, threads;
    long limit, test_limit;
    int augment;          /* -1: the model's default */
    const char *schedule; /* NULL: the model's default */
    const char *dataset;  /* "mnist" or "fashion" */
    float lr;
    unsigned long long seed;
    const char *save; /* --save FILE: the model, optimizer and training state after training */
    int stop_after;   /* --stop-after N: stop (and save) after N of the epochs, as an interruption would */
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]\n"
               "                       [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]\n"
               "                       [--threads T] [--limit N] [--test-limit N]\n"
               "  --model      " EXAMPLE_MODELS " (default mlp; see examples/models.c)\n"
               "  --epochs     training epochs (default 3)\n"
               "  --batch      batch size (default 64)\n"
               "  --lr         learning rate (default 0.001 for adam/adamw, 0.05 for sgd)\n"
               "  --optimizer  adam (default), adamw (weight decay 0.01) or sgd (momentum 0.9)\n"
               "  --seed       seed of initialisation, shuffling and dropout (default 0)\n"
               "  --data       folder of MNIST idx files, raw or .gz (default $HLR_DATA_DIR or data/mnist)\n"
               "  --threads    threads for the arithmetic (default $HLR_NUM_THREADS or all cores)\n"
               "  --limit      train on the first N training images only\n"
               "  --test-limit evaluate on the first N test images only\n"
               "  --augment    shift training images by up to N pixels (default 2 for cnn-bn, else 0)\n"
               "  --schedule   none or cosine learning-rate decay over the epochs (default cosine for cnn-bn)\n"
               "  --dataset    mnist (default) or fashion: Fashion-MNIST, whose default --data is\n"
               "               /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)\n"
               "  --save       write the trained model, with optimizer and training state, to FILE\n"
               "  --stop-after stop after N of the --epochs (the schedule still spans them all), then save\n"
               "       hlr-mnist eval FILE [--data DIR] [--test-limit N]\n"
               "  load a saved model and print its test accuracy (the same line training printed)\n"
               "       hlr-mnist resume FILE --epochs N [--save OUT] [--data DIR] [--threads T]\n"
               "  continue a saved training for N more epochs, bit for bit as if never stopped (same\n"
               "  thread count); batch size, augmentation, data set and limits come from FILE\n");
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.model = "mlp", .optimizer = "adam", .epochs = 3, .batch = 64, .lr = 0.0f, .augment = -1,
                   .dataset = "mnist", .limit = -1, .test_limit = -1};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "hlr-mnist: %s needs a value\n", a);
            return -1;
        }
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--optimizer"))
            o->optimizer = v;
        else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--epochs"))
            o->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--batch"))
            o->batch = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--threads"))
            o->threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--limit"))
            o->limit = strtol(v, &end, 10);
        else if (!strcmp(a, "--test-limit"))
            o->test_limit = strtol(v, &end, 10);
        else if (!strcmp(a, "--augment"))
            o->augment = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--schedule"))
            o->schedule = v;
        else if (!strcmp(a, "--dataset"))
            o->dataset = v;
        else if (!strcmp(a, "--lr"))
            o->lr = strtof(v, &end);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--stop-after"))
            o->stop_after = (int)strtol(v, &end, 10);
        else {
            fprintf(stderr, "hlr-mnist: unknown option %s\n", a);
            return -1;
        }
        if (end && *end) {
            fprintf(stderr, "hlr-mnist: %s: '%s' is not a number\n", a, v);
            return -1;
        }
        i++;
    }
    if (o->lr == 0.0f)
        o->lr = !strcmp(o->optimizer, "sgd") ? 0.05f : 1e-3f;
    return 0;
}

/* Build the named architecture (examples/models.c holds them all); NULL
 * with a message on failure. */
static hlr_model *make_model(const char *name, unsigned long long seed)
{
    if (!example_model_exists(name)) {
        fprintf(stderr, "hlr-mnist: unknown model '%s' (available: %s)\n", name, EXAMPLE_MODELS);
        return NULL;
    }
    hlr_model *m = example_model(name, seed);
    if (!m)
        fprintf(stderr, "hlr-mnist: cannot build %s: %s\n", name, hlr_last_error());
    return m;
}

static hlr_optimizer *make_optimizer(const options *o)
{
    if (!strcmp(o->optimizer, "adam"))
        return hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f);
    if (!strcmp(o->optimizer, "adamw"))
        return hlr_adamw(o->lr, 0.9f, 0.999f, 1e-8f, 0.01f);
    if (!strcmp(o->optimizer, "sgd"))
        return hlr_sgd(o->lr, 0.9f, 0, 0.0f);
    fprintf(stderr, "hlr-mnist: unknown optimizer '%s' (adam, adamw or sgd)\n", o->optimizer);
    return NULL;
}

/* What on_epoch needs: epochs trained before this fit (a resumed one), and where to stop. */
typedef struct progress {
    int before, stop_after;
} progress;

static int on_epoch(const hlr_epoch_stats *s, void *user)
{
    const progress *p = user;
    int before = p ? p->before : 0;
    printf("epoch %d/%d  loss %.4f  accuracy %.2f%%  lr %.2g  %.0f img/s  %.2f s\n", before + s->epoch,
           before + s->epochs, s->train_loss, 100.0 * s->train_accuracy, s->lr, s->samples_per_second, s->seconds);
    fflush(stdout);
    return p && p->stop_after > 0 && s->epoch >= p->stop_after;
}

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
static const char *const fashion_classes[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Boot"};

/* Replace *d by its first n samples when 0 < n < its size. */
static int keep_first(hlr_dataset **d, long n)
{
    if (n <= 0 || n >= hlr_dataset_size(*d))
        return 0;
    hlr_dataset *sub = hlr_dataset_slice(*d, 0, n);
    if (!sub)
        return -1;
    hlr_dataset_free(*d);
    *d = sub;
    return 0;
}

/* Record what resume and eval need in the model's metadata, then save it with its optimizer. */
static hlr_status save_model(hlr_model *m, hlr_optimizer *opt, const options *o, int fashion, int augment,
                             const char *path)
{
    static const char *const digits[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    hlr_metadata *md = hlr_model_metadata(m);
    char batch[24], aug[24], limit[24], test_limit[24], seed[24];
    snprintf(batch, sizeof batch, "%d", o->batch);
    snprintf(aug, sizeof aug, "%d", augment);
    snprintf(limit, sizeof limit, "%ld", o->limit);
    snprintf(test_limit, sizeof test_limit, "%ld", o->test_limit);
    snprintf(seed, sizeof seed, "%llu", o->seed);
    const char *keys[][2] = {{"model", o->model},   {"optimizer", o->optimizer}, {"batch", batch},
                             {"augment", aug},      {"limit", limit},            {"test_limit", test_limit},
                             {"seed", seed},        {"dataset", o->dataset}};
    hlr_status st = hlr_metadata_set_dataset(md, fashion ? "Fashion-MNIST" : "MNIST");
    if (st == HLR_OK)
        st = hlr_metadata_set_class_names(md, 10, fashion ? fashion_classes : digits);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && st == HLR_OK; i++)
        st = hlr_metadata_set(md, keys[i][0], keys[i][1]);
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.optimizer = opt;
    if (st == HLR_OK)
        st = hlr_model_save(m, path, &so);
    struct stat sb;
    if (st == HLR_OK && stat(path, &sb) == 0)
        printf("saved %s: %lld bytes with optimizer state (%lld parameters, %lld bytes as raw float32)\n", path,
               (long long)sb.st_size, (long long)hlr_model_param_count(m), (long long)hlr_model_param_count(m) * 4);
    return st;
}

/* The saved training's setting `key`, as a number (fallback when absent). */
static long saved_number(hlr_model *m, const char *key, long fallback)
{
    const char *v = hlr_metadata_get(hlr_model_metadata(m), key);
    return v ? strtol(v, NULL, 10) : fallback;
}

/* Load the test (and, when tr is not NULL, training) images a saved model was trained on. */
static int load_saved_data(hlr_model *m, const options *o, hlr_dataset **tr, hlr_dataset **te, int *fashion)
{
    const char *ds = hlr_metadata_get(hlr_model_metadata(m), "dataset");
    *fashion = ds && !strcmp(ds, "fashion");
    const char *dir = *fashion && !o->data ? FASHION_DIR : data_dir(o->data);
    long test_limit = o->test_limit >= 0 ? o->test_limit : saved_number(m, "test_limit", -1);
    if ((tr && !(*tr = load_mnist_part(dir, "train"))) || !(*te = load_mnist_part(dir, "t10k")))
        return -1;
    if ((tr && keep_first(tr, saved_number(m, "limit", -1)) != 0) || keep_first(te, test_limit) != 0) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return -1;
    }
    return 0;
}

/* Evaluate on the test set and print what training prints. */
static int report(hlr_model *m, const hlr_dataset *te, int fashion)
{
    hlr_metrics met;
    int64_t confusion[10 * 10];
    if (hlr_model_evaluate(m, te, 256, 3, &met, confusion) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    print_confusion(stdout, confusion, 10, fashion ? fashion_classes : NULL);
    printf("test loss: %.4f  top-3 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
    return 0;
}

/* hlr-mnist eval FILE: the saved model's test accuracy. */
static int eval_file(const char *path, const options *o)
{
    hlr_model *m = hlr_model_load(path, NULL);
    if (!m) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    hlr_dataset *te = NULL;
    int fashion, rc = 1;
    if (load_saved_data(m, o, NULL, &te, &fashion) == 0) {
        const char *name = hlr_metadata_get(hlr_model_metadata(m), "model");
        printf("evaluating %s (%s, %lld epochs) on %lld test images\n", path, name ? name : "model",
               (long long)hlr_model_epochs_trained(m), (long long)hlr_dataset_size(te));
        rc = report(m, te, fashion);
    }
    hlr_dataset_free(te);
    hlr_model_free(m);
    return rc;
}

/* hlr-mnist resume FILE --epochs N: continue the saved training exactly. */
static int resume_file(const char *path, const options *o)
{
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    hlr_optimizer *opt = NULL;
    hlr_model *m = hlr_model_load(path, &opt);
    if (!m) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    hlr_dataset *tr = NULL, *te = NULL;
    int fashion, rc = 1;
    if (!opt) {
        fprintf(stderr, "hlr-mnist: %s holds no optimizer state to resume from (save with train --save)\n", path);
        goto out;
    }
    if (load_saved_data(m, o, &tr, &te, &fashion) != 0)
        goto out;
    options saved = *o; /* the settings the training started with */
    saved.batch = (int)saved_number(m, "batch", 64);
    saved.limit = saved_number(m, "limit", -1);
    saved.test_limit = o->test_limit >= 0 ? o->test_limit : saved_number(m, "test_limit", -1);
    saved.seed = (unsigned long long)saved_number(m, "seed", 0);
    const char *v;
    if ((v = hlr_metadata_get(hlr_model_metadata(m), "model")) != NULL)
        saved.model = v;
    if ((v = hlr_metadata_get(hlr_model_metadata(m), "optimizer")) != NULL)
        saved.optimizer = v;
    if ((v = hlr_metadata_get(hlr_model_metadata(m), "dataset")) != NULL)
        saved.dataset = v;
    int before = (int)hlr_model_epochs_trained(m);
    printf("resuming %s (%s) after %d epochs: %d more on %lld images, batch %d, %d threads\n", path, saved.model,
           before, o->epochs, (long long)hlr_dataset_size(tr), saved.batch, hlr_get_num_threads());
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = o->epochs;
    fo.batch_size = saved.batch;
    fo.augment_shift = (int)saved_number(m, "augment", 0);
    fo.on_epoch = on_epoch;
    progress prog = {.before = before, .stop_after = o->stop_after};
    fo.user = &prog;
    hlr_status st = hlr_model_fit(m, opt, tr, &fo);
    if (st != HLR_OK && !(st == HLR_ECANCELLED && o->stop_after > 0)) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        goto out;
    }
    if (report(m, te, fashion) != 0)
        goto out;
    if (o->save && save_model(m, opt, &saved, fashion, fo.augment_shift, o->save) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        goto out;
    }
    rc = 0;
out:
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    return rc;
}

static int train(const options *o)
{
    int rc = 1;
    hlr_dataset *tr = NULL, *te = NULL;
    hlr_model *m = NULL;
    hlr_optimizer *opt = NULL;
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    int fashion = !strcmp(o->dataset, "fashion");
    if (!fashion && strcmp(o->dataset, "mnist") != 0) {
        fprintf(stderr, "hlr-mnist: unknown dataset '%s' (mnist or fashion)\n", o->dataset);
        return 2;
    }
    const char *dir = fashion && !o->data ? FASHION_DIR : data_dir(o->data);
    if (!(tr = load_mnist_part(dir, "train")) || !(te = load_mnist_part(dir, "t10k")))
        goto out;
    if (keep_first(&tr, o->limit) != 0 || keep_first(&te, o->test_limit) != 0)
        goto fail;
    if (!(m = make_model(o->model, o->seed)) || !(opt = make_optimizer(o)))
        goto out;
    char summary[4096];
    if (hlr_model_summary(m, summary, sizeof summary, NULL) == HLR_OK)
        printf("%s", summary);
    printf("training %s on %lld images: %d epochs, batch %d, %s lr %g, seed %llu, %d threads\n", o->model,
           (long long)hlr_dataset_size(tr), o->epochs, o->batch, o->optimizer, (double)o->lr, o->seed,
           hlr_get_num_threads());
    int wants = example_model_wants_augmentation(o->model);
    const char *schedule = o->schedule ? o->schedule : wants ? "cosine" : "none";
    if (!strcmp(schedule, "cosine")) {
        if (hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, o->epochs, 0.0, 0, 1.0) != HLR_OK)
            goto fail;
    } else if (strcmp(schedule, "none") != 0) {
        fprintf(stderr, "hlr-mnist: unknown schedule '%s' (none or cosine)\n", schedule);
        goto out;
    }
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = o->epochs;
    fo.batch_size = o->batch;
    fo.augment_shift = o->augment >= 0 ? o->augment : wants ? 2 : 0;
    fo.on_epoch = on_epoch;
    progress prog = {.stop_after = o->stop_after};
    fo.user = &prog;
    hlr_status fit_st = hlr_model_fit(m, opt, tr, &fo);
    if (fit_st != HLR_OK && !(fit_st == HLR_ECANCELLED && o->stop_after > 0))
        goto fail;
    hlr_metrics met;
    int64_t confusion[10 * 10];
    if (hlr_model_evaluate(m, te, 256, 3, &met, confusion) != HLR_OK)
        goto fail;
    print_confusion(stdout, confusion, 10, fashion ? fashion_classes : NULL);
    printf("test loss: %.4f  top-3 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
    if (o->save && save_model(m, opt, o, fashion, fo.augment_shift, o->save) != HLR_OK)
        goto fail;
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
out:
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    int eval = !strcmp(argv[1], "eval"), resume = !strcmp(argv[1], "resume");
    if (strcmp(argv[1], "train") != 0 && !eval && !resume) {
        fprintf(stderr, "hlr-mnist: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if ((eval || resume) && (argc < 3 || argv[2][0] == '-')) {
        fprintf(stderr, "hlr-mnist: %s needs a model FILE\n", argv[1]);
        return 2;
    }
    options o;
    /* eval and resume: FILE comes first; the options follow it. */
    if ((eval || resume) ? parse(argc - 1, argv + 1, &o) != 0 : parse(argc, argv, &o) != 0)
        return 2;
    if (eval)
        return eval_file(argv[2], &o);
    if (resume)
        return o.epochs < 1 ? 2 : resume_file(argv[2], &o);
    if (o.epochs < 1 || o.batch < 1) {
        fprintf(stderr, "hlr-mnist: --epochs and --batch must be >= 1\n");
        return 2;
    }
    return train(&o);
}

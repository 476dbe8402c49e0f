/*
 * hlr-mnist -- train a network on MNIST and report its test accuracy.
 *
 *   hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]
 *                   [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]
 *                   [--threads T] [--limit N] [--test-limit N]
 *
 * One progress line per epoch, then the confusion matrix and the line
 * `test accuracy: NN.NN%`, which scripts read.
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>

typedef struct options {
    const char *model, *optimizer, *data;
    int epochs, batch, threads;
    long limit, test_limit;
    float lr;
    unsigned long long seed;
} options;

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]\n"
               "                       [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]\n"
               "                       [--threads T] [--limit N] [--test-limit N]\n"
               "  --model      mlp: 784-256-ReLU-128-ReLU-10 (default)\n"
               "  --epochs     training epochs (default 3)\n"
               "  --batch      batch size (default 64)\n"
               "  --lr         learning rate (default 0.001 for adam/adamw, 0.05 for sgd)\n"
               "  --optimizer  adam (default), adamw (weight decay 0.01) or sgd (momentum 0.9)\n"
               "  --seed       seed of initialisation, shuffling and dropout (default 0)\n"
               "  --data       folder of MNIST idx files, raw or .gz (default $HLR_DATA_DIR or data/mnist)\n"
               "  --threads    threads for the arithmetic (default $HLR_NUM_THREADS or all cores)\n"
               "  --limit      train on the first N training images only\n"
               "  --test-limit evaluate on the first N test images only\n");
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.model = "mlp", .optimizer = "adam", .epochs = 3, .batch = 64, .lr = 0.0f};
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
        else if (!strcmp(a, "--lr"))
            o->lr = strtof(v, &end);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
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

/* Build the named architecture; NULL with a message on failure. */
static hlr_model *make_model(const char *name, unsigned long long seed)
{
    hlr_model *m = hlr_model_new(seed);
    if (!m)
        return NULL;
    hlr_status st = HLR_OK;
    if (!strcmp(name, "mlp")) {
        hlr_layer *layers[] = {hlr_flatten(), hlr_dense(784, 256, 1), hlr_relu(),
                               hlr_dense(256, 128, 1), hlr_relu(), hlr_dense(128, 10, 1)};
        for (size_t i = 0; i < sizeof layers / sizeof layers[0] && st == HLR_OK; i++)
            st = hlr_model_add(m, layers[i]);
    } else {
        fprintf(stderr, "hlr-mnist: unknown model '%s' (available: mlp)\n", name);
        hlr_model_free(m);
        return NULL;
    }
    if (st == HLR_OK)
        st = hlr_model_build(m, 3, (int64_t[]){1, 28, 28});
    if (st != HLR_OK) {
        fprintf(stderr, "hlr-mnist: cannot build %s: %s\n", name, hlr_last_error());
        hlr_model_free(m);
        return NULL;
    }
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

static int on_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)user;
    printf("epoch %d/%d  loss %.4f  accuracy %.2f%%  lr %.2g  %.0f img/s  %.2f s\n", s->epoch, s->epochs,
           s->train_loss, 100.0 * s->train_accuracy, s->lr, s->samples_per_second, s->seconds);
    fflush(stdout);
    return 0;
}

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
    const char *dir = data_dir(o->data);
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
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = o->epochs;
    fo.batch_size = o->batch;
    fo.on_epoch = on_epoch;
    if (hlr_model_fit(m, opt, tr, &fo) != HLR_OK)
        goto fail;
    hlr_metrics met;
    int64_t confusion[10 * 10];
    if (hlr_model_evaluate(m, te, 256, 3, &met, confusion) != HLR_OK)
        goto fail;
    print_confusion(stdout, confusion, 10, NULL);
    printf("test loss: %.4f  top-3 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
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
    if (strcmp(argv[1], "train") != 0) {
        fprintf(stderr, "hlr-mnist: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    options o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    if (o.epochs < 1 || o.batch < 1) {
        fprintf(stderr, "hlr-mnist: --epochs and --batch must be >= 1\n");
        return 2;
    }
    return train(&o);
}

/*
 * hlr-mnist -- train a network on MNIST and report its test accuracy.
 *
 *   hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]
 *                   [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]
 *                   [--threads T] [--limit N] [--test-limit N] [--save FILE]
 *   hlr-mnist eval FILE [--data DIR] [--test-limit N]
 *   hlr-mnist resume FILE --epochs N [--save OUT] [--data DIR] [--threads T]
 *   hlr-mnist attention FILE [--index I] [--out PICTURE] [--layer K] [--head H] [--data DIR]
 *     (drawn by attention.c)
 *
 * One progress line per epoch, then the confusion matrix and the line
 * `test accuracy: NN.NN%`, which scripts read.  `attention` draws test
 * image I beside the attention weights a saved model gives it.
 */
#include "attention.h"
#include "common.h"
#include "models.h"
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    double target;    /* --target-accuracy P: test after every epoch, stop at P % (0: never stop; -1: off) */
    long index;       /* attention --index I: which test image */
    const char *out;  /* attention --out FILE: the picture (NULL: attention-I.ppm) */
    long layer, head; /* attention --layer K, --head H (-1: the last attention layer, the mean of the heads) */
    double val_split;  /* --val-split F: the last fraction of the training images held out for validation */
    int early_stopping; /* --early-stopping P: stop after P epochs without improvement (0: off) */
    const char *adversarial; /* train --adversarial fgsm|pgd */
    double eps, step_size, adv_fraction; /* --eps E, --step-size S, --adv-fraction F */
    int steps;              /* attack --steps K, train --adv-steps K (0: the method's default) */
    const char *checkpoint; /* --checkpoint FILE: saved after every epoch, resumable */
    const char *plot;       /* --plot FILE.svg: learning curves */
    const char *confusion;  /* --confusion FILE.svg: the test set's confusion matrix as a heat map */
    const char *reliability; /* --reliability FILE.svg: eval and calibrate's reliability diagram */
    int distributed;        /* --distributed: one of mpirun's processes (libhlr-mpi) */
    int sync_bn;            /* --sync-batchnorm: batch norm's statistics over all the processes' batches */
    hlr_augment geo;        /* --rotate, --scale, --shear, --elastic */
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
               "  --optimizer  adam (default; adamw for transformer), adamw (weight decay 0.01) or sgd\n"
               "               (momentum 0.9)\n"
               "  --seed       seed of initialisation, shuffling and dropout (default 0)\n"
               "  --data       folder of MNIST idx files, raw or .gz (default $HLR_DATA_DIR or data/mnist)\n"
               "  --threads    threads for the arithmetic (default $HLR_NUM_THREADS or all cores)\n"
               "  --limit      train on the first N training images only\n"
               "  --test-limit evaluate on the first N test images only\n"
               "  --augment    shift training images by up to N pixels (default 2 for cnn-bn and transformer,\n"
               "               else 0)\n"
               "  --schedule   none or cosine learning-rate decay over the epochs (default cosine for cnn-bn;\n"
               "               for transformer, cosine per batch after a half-epoch linear warm-up)\n"
               "  --dataset    mnist (default) or fashion: Fashion-MNIST, whose default --data is\n"
               "               /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)\n"
               "  --save       write the trained model, with optimizer and training state, to FILE\n"
               "  --stop-after stop after N of the --epochs (the schedule still spans them all), then save\n"
               "  --val-split F  hold out the last fraction F of the training images; each epoch reports\n"
               "               val_loss and val_accuracy on them\n"
               "  --early-stopping P  stop after P epochs in a row without a better validation loss (the\n"
               "               training loss without --val-split) and keep the best epoch's weights\n"
               "  --checkpoint FILE  save the model after every epoch (with optimizer state: resumable)\n");
    fprintf(f, "  --plot FILE.svg  draw the learning curves (loss and accuracy per epoch) into FILE.svg\n"
               "  --confusion FILE.svg  draw the test set's confusion matrix as a heat map into FILE.svg\n"
               "  --distributed  data-parallel training under mpirun (train, resume): each process trains on\n"
               "               its shard with --batch, the gradients averaged after every batch (libhlr-mpi,\n"
               "               built by `make mpi`); only rank 0 prints and saves\n"
               "  --sync-batchnorm  with --distributed: batch norm's training statistics over all the\n"
               "               processes' batches (as torch.nn.SyncBatchNorm; default: each process's own)\n"
               "  --rotate D, --scale F, --shear D, --elastic A  augment each training image: rotate by up\n"
               "               to D degrees, scale by 1 +- F, shear by up to D degrees, elastic distortion of\n"
               "               about A pixels (sigma 4); after --augment's shift\n"
               "  --target-accuracy P  evaluate on the test set after every epoch, printing the accuracy and\n"
               "               the training time so far (evaluation excluded), and stop once it reaches P %%\n"
               "               (0: evaluate only; the schedule still spans all --epochs)\n"
               "       hlr-mnist eval FILE [--data DIR] [--test-limit N] [--confusion FILE.svg]\n"
               "                      [--reliability FILE.svg]\n"
               "  load a saved model and print its test accuracy (the same line training printed) and\n"
               "  its expected calibration error (test ECE, 15 bins, with the model's temperature)\n"
               "  --adversarial fgsm|pgd  adversarial training: the first --adv-fraction F of each batch (default\n"
               "               0.5) replaced by adversarial examples within --eps E (default 0.1): fgsm with a\n"
               "               random start and a step of 1.25 E, or pgd of --adv-steps K (default 7) steps of\n"
               "               2.5 E / K from a random start (--step-size S overrides the step)\n"
               "       hlr-mnist attack FILE [--eps 0.1] [--steps 20] [--step-size S] [--data DIR] [--test-limit N]\n"
               "  robust accuracy on the test images under an L-infinity attack: FGSM for --steps 1, else\n"
               "  PGD from a random start with steps of S (default 2.5 E / steps); prints `robust accuracy:`\n"
               "       hlr-mnist calibrate FILE [--val-split F] [--save OUT] [--data DIR] [--reliability FILE.svg]\n"
               "  fit the temperature that calibrates the model's probabilities (temperature scaling) on the\n"
               "  last fraction F of the training images it used (default: its own --val-split, else 0.1),\n"
               "  print the test ECE before and after, and save it into FILE (or OUT); eval then prints\n"
               "  `test ECE:` with it, and --reliability draws the reliability diagram into FILE.svg\n"
               "       hlr-mnist resume FILE --epochs N [--save OUT] [--data DIR] [--threads T]\n"
               "  continue a saved training for N more epochs, bit for bit as if never stopped (same\n"
               "  thread count); batch size, augmentation, data set and limits come from FILE; a file\n"
               "  saved otherwise (from Python, say) does not record them: --batch, --limit, --augment\n"
               "  give them, and a note says which the file could not tell\n"
               "       hlr-mnist attention FILE [--index I] [--out PICTURE] [--layer K] [--head H] [--data DIR]\n"
               "                       [--threads T]\n"
               "  where the saved model looks: prints test image I's true and predicted class, the\n"
               "  attention matrix and the attention each step receives, and draws the image, the image\n"
               "  tinted by that attention and the matrix side by side into PICTURE\n"
               "  --index      the test image (default 0)\n"
               "  --out        the picture: .ppm (default attention-I.ppm), .png or .pgm (grey)\n"
               "  --layer      which attention layer, by its number in the summary (default the last)\n"
               "  --head       one attention head (default the mean over the heads)\n");
}

/* Parse the options from argv[first] on; the one positional argument (the
 * model FILE of eval, resume and attention) goes to *file.  0, 1 (--help
 * was printed) or -1 (a line on stderr said what is wrong). */
static int parse(int argc, char **argv, int first, options *o, const char **file)
{
    *o = (options){.model = "mlp", .optimizer = NULL, .epochs = 3, .batch = 64, .lr = 0.0f, .augment = -1,
                   .dataset = "mnist", .limit = -1, .test_limit = -1, .layer = -1, .head = -1, .target = -1,
                   .geo = {.elastic_sigma = 4.0}, .eps = 0.1, .adv_fraction = 0.5};
    const opt_spec specs[] = {
        OPT_STR("--model", &o->model),
        OPT_STR("--optimizer", &o->optimizer),
        OPT_STR("--data", &o->data),
        OPT_NUM("--epochs", OPT_INT, &o->epochs, 1, 100000),
        OPT_NUM("--batch", OPT_INT, &o->batch, 1, 1000000),
        OPT_NUM("--threads", OPT_INT, &o->threads, 1, 1024),
        OPT_NUM_HINT("--limit", OPT_LONG, &o->limit, 1, 100000000, "leave --limit out for all training images"),
        OPT_NUM_HINT("--test-limit", OPT_LONG, &o->test_limit, 1, 100000000,
                     "leave --test-limit out for all test images"),
        OPT_NUM("--augment", OPT_INT, &o->augment, 0, 13),
        OPT_STR("--schedule", &o->schedule),
        OPT_STR("--dataset", &o->dataset),
        OPT_POS_HINT("--lr", OPT_FLOAT, &o->lr, 1e3, "leave --lr out for the optimizer's default"),
        OPT_NUM("--seed", OPT_U64, &o->seed, 0, HUGE_VAL),
        OPT_STR("--save", &o->save),
        OPT_NUM("--stop-after", OPT_INT, &o->stop_after, 1, 100000),
        OPT_NUM_HINT("--target-accuracy", OPT_DOUBLE, &o->target, 0, 100,
                     "a percentage; 0 evaluates after each epoch without stopping"),
        OPT_NUM("--index", OPT_LONG, &o->index, 0, 100000000),
        OPT_STR("--out", &o->out),
        OPT_NUM("--layer", OPT_LONG, &o->layer, 0, 100000),
        OPT_NUM("--head", OPT_LONG, &o->head, 0, 100000),
        OPT_NUM_HINT("--val-split", OPT_DOUBLE, &o->val_split, 0, 0.9, "a fraction of the training images"),
        OPT_NUM("--early-stopping", OPT_INT, &o->early_stopping, 1, 100000),
        OPT_STR("--adversarial", &o->adversarial),
        OPT_NUM("--eps", OPT_DOUBLE, &o->eps, 0, 1),
        OPT_NUM("--step-size", OPT_DOUBLE, &o->step_size, 0, 1),
        OPT_NUM("--adv-fraction", OPT_DOUBLE, &o->adv_fraction, 0.01, 1),
        OPT_NUM("--steps", OPT_INT, &o->steps, 1, 10000),
        OPT_NUM("--adv-steps", OPT_INT, &o->steps, 1, 10000),
        OPT_STR("--checkpoint", &o->checkpoint),
        OPT_STR("--plot", &o->plot),
        OPT_STR("--confusion", &o->confusion),
        OPT_STR("--reliability", &o->reliability),
        OPT_FLAG_("--distributed", &o->distributed),
        OPT_FLAG_("--sync-batchnorm", &o->sync_bn),
        OPT_NUM("--rotate", OPT_DOUBLE, &o->geo.rotate, 0, 180),
        OPT_NUM("--scale", OPT_DOUBLE, &o->geo.scale, 0, 0.9),
        OPT_NUM("--shear", OPT_DOUBLE, &o->geo.shear, 0, 60),
        OPT_NUM("--elastic", OPT_DOUBLE, &o->geo.elastic_alpha, 0, 1000),
    };
    const char *pos[1] = {NULL};
    int npos = 0;
    int rc = parse_options("hlr-mnist", argc, argv, first, specs, (int)(sizeof specs / sizeof specs[0]), pos,
                           file ? 1 : 0, &npos);
    if (rc != 0)
        return rc;
    if (file) {
        if (npos < 1) {
            fprintf(stderr, "hlr-mnist: %s needs a model FILE\n", argv[1]);
            return -1;
        }
        *file = pos[0];
    }
    /* Names are usage mistakes (exit 2), told before any data is read. */
    if (!example_model_exists(o->model)) {
        fprintf(stderr, "hlr-mnist: unknown model '%s' (available: %s)\n", o->model, EXAMPLE_MODELS);
        return -1;
    }
    if (o->optimizer && strcmp(o->optimizer, "adam") && strcmp(o->optimizer, "adamw") && strcmp(o->optimizer, "sgd")) {
        fprintf(stderr, "hlr-mnist: unknown optimizer '%s' (adam, adamw or sgd)\n", o->optimizer);
        return -1;
    }
    if (o->adversarial && strcmp(o->adversarial, "fgsm") && strcmp(o->adversarial, "pgd")) {
        fprintf(stderr, "hlr-mnist: unknown --adversarial '%s' (fgsm or pgd)\n", o->adversarial);
        return -1;
    }
    if (o->schedule && strcmp(o->schedule, "none") && strcmp(o->schedule, "cosine")) {
        fprintf(stderr, "hlr-mnist: unknown schedule '%s' (none or cosine)\n", o->schedule);
        return -1;
    }
    example_recipe r = example_model_recipe(o->model);
    if (!o->optimizer)
        o->optimizer = r.optimizer;
    if (o->lr == 0.0f) /* not given: the optimizer's default */
        o->lr = !strcmp(o->optimizer, "sgd") ? 0.05f : r.lr;
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

/* The optimizer --optimizer names; NULL with a line on stderr. */
static hlr_optimizer *make_optimizer(const options *o)
{
    hlr_optimizer *opt;
    if (!strcmp(o->optimizer, "adam"))
        opt = hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f);
    else if (!strcmp(o->optimizer, "adamw"))
        opt = hlr_adamw(o->lr, 0.9f, 0.999f, 1e-8f, 0.01f);
    else if (!strcmp(o->optimizer, "sgd"))
        opt = hlr_sgd(o->lr, 0.9f, 0, 0.0f);
    else {
        fprintf(stderr, "hlr-mnist: unknown optimizer '%s' (adam, adamw or sgd)\n", o->optimizer);
        return NULL;
    }
    if (!opt)
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
    return opt;
}

/* What on_epoch needs: epochs trained before this fit (a resumed one), and where to stop; with
 * --target-accuracy, the model and test set to evaluate after each epoch and what that found. */
typedef struct progress {
    int before, stop_after;
    hlr_model *m;          /* NULL: no evaluation between epochs */
    const hlr_dataset *te;
    int eval_batch;        /* the fit's batch: evaluating with it needs no larger buffers */
    double target, train_seconds;
    int reached, failed;
    int tty;                 /* standard output is a terminal: draw a progress bar */
    hlr_epoch_stats *curve;  /* --plot: every epoch's figures (capacity ncurve_cap) */
    int ncurve, ncurve_cap;
} progress;

static int on_batch(const hlr_batch_stats *s, void *user)
{
    (void)user;
    draw_progress(stdout, s);
    return 0;
}

static int on_epoch(const hlr_epoch_stats *s, void *user)
{
    progress *p = user;
    int before = p ? p->before : 0;
    char val[96] = "";
    if (!isnan(s->val_loss))
        snprintf(val, sizeof val, "  val_loss %.4f  val_accuracy %.2f%%", s->val_loss, 100.0 * s->val_accuracy);
    printf("%sepoch %d/%d  loss %.4f  accuracy %.2f%%%s  lr %.2g  %.0f img/s  %.2f s\n", p && p->tty ? "\r\033[K" : "",
           before + s->epoch, before + s->epochs, s->train_loss, 100.0 * s->train_accuracy, val, s->lr,
           s->samples_per_second, s->seconds);
    if (s->stopping)
        printf("early stopping: no improvement since epoch %d, whose weights the model keeps\n",
               before + s->best_epoch);
    if (p && p->curve && p->ncurve < p->ncurve_cap) {
        p->curve[p->ncurve] = *s;
        p->curve[p->ncurve++].epoch = before + s->epoch;
    }
    if (p && p->m) {
        hlr_metrics met;
        p->train_seconds += s->seconds; /* the epochs' own time: this evaluation is not in it */
        if (hlr_model_evaluate(p->m, p->te, p->eval_batch, 1, &met, NULL) != HLR_OK) {
            fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
            p->failed = 1;
            return 1;
        }
        printf("epoch %d: test accuracy %.2f%% (training time so far %.2f s)\n", before + s->epoch,
               100.0 * met.accuracy, p->train_seconds);
        p->reached = p->target > 0 && 100.0 * met.accuracy >= p->target - 1e-9;
        if (p->reached)
            printf("reached %.2f%% test accuracy after %d epochs, %.2f s of training\n", p->target, before + s->epoch,
                   p->train_seconds);
    }
    fflush(stdout);
    return p && ((p->stop_after > 0 && s->epoch >= p->stop_after) || p->reached);
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

/* What a saved model records besides what the library keeps (the fit's settings: hlr_model_fit_settings):
 * which architecture and images, so that `resume`, `eval` and `calibrate` find the same data. */
static hlr_status set_training_metadata(hlr_model *m, const options *o, int fashion)
{
    static const char *const digits[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    hlr_metadata *md = hlr_model_metadata(m);
    char limit[24], test_limit[24], seed[24];
    snprintf(limit, sizeof limit, "%ld", o->limit);
    snprintf(test_limit, sizeof test_limit, "%ld", o->test_limit);
    snprintf(seed, sizeof seed, "%llu", o->seed);
    const char *keys[][2] = {{"model", o->model}, {"optimizer", o->optimizer}, {"limit", limit},
                             {"test_limit", test_limit}, {"seed", seed}, {"dataset", o->dataset}};
    hlr_status st = hlr_metadata_set_dataset(md, fashion ? "Fashion-MNIST" : "MNIST");
    if (st == HLR_OK)
        st = hlr_metadata_set_class_names(md, 10, fashion ? fashion_classes : digits);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && st == HLR_OK; i++)
        st = hlr_metadata_set(md, keys[i][0], keys[i][1]);
    return st;
}

static hlr_status save_model(hlr_model *m, hlr_optimizer *opt, const options *o, int fashion, const char *path)
{
    hlr_status st = set_training_metadata(m, o, fashion);
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
    if ((tr && !(*tr = load_mnist_part("hlr-mnist", dir, "train"))) || !(*te = load_mnist_part("hlr-mnist", dir, "t10k")))
        return -1;
    if ((tr && keep_first(tr, o->limit) != 0) || keep_first(te, test_limit) != 0) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return -1;
    }
    return 0;
}

/* Evaluate on the test set and print what training prints; with --confusion, draw the matrix. */
static int report(hlr_model *m, const hlr_dataset *te, int fashion, const options *o)
{
    hlr_metrics met;
    int64_t confusion[10 * 10];
    if (hlr_model_evaluate(m, te, 256, 3, &met, confusion) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    print_confusion(stdout, confusion, 10, fashion ? fashion_classes : NULL);
    print_class_report(stdout, confusion, 10, fashion ? fashion_classes : NULL);
    printf("test loss: %.4f  top-3 accuracy: %.2f%%\n", met.loss, 100.0 * met.top_k_accuracy);
    printf("test accuracy: %.2f%%\n", 100.0 * met.accuracy);
    hlr_calibration cal;
    int64_t cnt[15];
    double conf[15], acc[15];
    if (hlr_model_calibration(m, te, 256, 15, &cal, cnt, conf, acc) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    printf("test ECE: %.2f%% (15 bins; temperature %.3f)\n", 100.0 * cal.ece, hlr_model_temperature(m));
    if (o->reliability) {
        char title[160];
        snprintf(title, sizeof title, "%s, temperature %.3f: test ECE %.2f%%",
                 hlr_metadata_get(hlr_model_metadata(m), "model") ? hlr_metadata_get(hlr_model_metadata(m), "model")
                                                                   : "model",
                 hlr_model_temperature(m), 100.0 * cal.ece);
        if (write_reliability_svg(o->reliability, 15, cnt, conf, acc, NULL, NULL, title) != 0) {
            fprintf(stderr, "hlr-mnist: cannot write %s: %s\n", o->reliability, strerror(errno));
            return 1;
        }
        printf("reliability diagram: %s\n", o->reliability);
    }
    if (o->confusion) {
        char title[160];
        const char *name = hlr_metadata_get(hlr_model_metadata(m), "model");
        snprintf(title, sizeof title, "%s on %lld %s test images: %.2f%% right", name ? name : "model",
                 (long long)met.count, fashion ? "Fashion-MNIST" : "MNIST", 100.0 * met.accuracy);
        if (write_confusion_svg(o->confusion, confusion, 10, fashion ? fashion_classes : NULL, title) != 0) {
            fprintf(stderr, "hlr-mnist: cannot write %s: %s\n", o->confusion, strerror(errno));
            return 1;
        }
        printf("confusion matrix: %s\n", o->confusion);
    }
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
        rc = report(m, te, fashion, o);
    }
    hlr_dataset_free(te);
    hlr_model_free(m);
    return rc;
}

/* The model at path, after --threads is set; NULL after a line on stderr. */
static hlr_model *load_with_threads(const char *path, const options *o)
{
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return NULL;
    }
    hlr_model *m = hlr_model_load(path, NULL);
    if (!m)
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
    return m;
}

/* hlr-mnist attack FILE: robust accuracy on the test images. */
static int attack_file(const char *path, const options *o)
{
    hlr_model *m = load_with_threads(path, o);
    if (!m)
        return 1;
    hlr_dataset *te = NULL;
    int fashion, rc = 1;
    if (load_saved_data(m, o, NULL, &te, &fashion) == 0) {
        hlr_attack_options a;
        hlr_attack_options_default(&a);
        a.eps = o->eps;
        a.steps = o->steps > 0 ? o->steps : 20;
        a.random_start = a.steps > 1;
        a.step_size = o->step_size > 0 ? o->step_size : a.steps == 1 ? o->eps : 2.5 * o->eps / a.steps;
        printf("attacking %s on %lld test images: %s, eps %g, %d step%s of %g%s\n", path,
               (long long)hlr_dataset_size(te), a.steps == 1 ? "FGSM" : "PGD", a.eps, a.steps, a.steps > 1 ? "s" : "",
               a.step_size, a.random_start ? ", random start" : "");
        hlr_metrics met;
        double robust;
        if (hlr_model_evaluate(m, te, 256, 1, &met, NULL) != HLR_OK ||
            hlr_model_robust_accuracy(m, te, 256, &a, &robust) != HLR_OK) {
            fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        } else {
            printf("clean accuracy: %.2f%%\n", 100.0 * met.accuracy);
            printf("robust accuracy: %.2f%%\n", 100.0 * robust);
            rc = 0;
        }
    }
    hlr_dataset_free(te);
    hlr_model_free(m);
    return rc;
}

/* hlr-mnist calibrate FILE: temperature scaling on the tail of the training images. */
static int calibrate_file(const char *path, const options *o)
{
    hlr_optimizer *opt = NULL;
    hlr_model *m = hlr_model_load(path, &opt);
    if (!m) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return 1;
    }
    hlr_dataset *tr = NULL, *te = NULL, *val = NULL;
    int fashion, rc = 1;
    options lim = *o;
    lim.limit = o->limit >= 0 ? o->limit : saved_number(m, "limit", -1); /* the images it trained on */
    if (load_saved_data(m, &lim, &tr, &te, &fashion) != 0)
        goto out;
    hlr_fit_options trained;
    hlr_model_fit_settings(m, &trained); /* the defaults (no split) when the file does not say */
    double trained_split = trained.validation_split,
           split = o->val_split > 0 ? o->val_split : trained_split > 0 ? trained_split : 0.1;
    int64_t n = hlr_dataset_size(tr), nv = (int64_t)(split * (double)n + 0.5);
    if (nv < 1 || !(val = hlr_dataset_slice(tr, n - nv, nv)))
        goto fail;
    printf("calibrating %s on the last %lld of its %lld training images%s\n", path, (long long)nv, (long long)n,
           split <= trained_split + 1e-12 && trained_split > 0
               ? " (its validation part: unseen in training)"
               : " (note: the model trained on them; train with --val-split for an unseen part)");
    hlr_calibration before, after;
    int64_t c0[15], c1[15];
    double f0[15], a0[15], f1[15], a1[15], t = 0;
    hlr_calibration vb, va;
    if (hlr_model_calibration(m, te, 256, 15, &before, c0, f0, a0) != HLR_OK ||
        hlr_model_calibration(m, val, 256, 15, &vb, NULL, NULL, NULL) != HLR_OK ||
        hlr_model_fit_temperature(m, val, 256, &t) != HLR_OK ||
        hlr_model_calibration(m, val, 256, 15, &va, NULL, NULL, NULL) != HLR_OK ||
        hlr_model_calibration(m, te, 256, 15, &after, c1, f1, a1) != HLR_OK)
        goto fail;
    printf("temperature: %.4f (validation NLL %.4f -> %.4f)\n", t, vb.nll, va.nll);
    printf("test ECE: %.2f%% -> %.2f%%, MCE %.2f%% -> %.2f%%, NLL %.4f -> %.4f, Brier %.4f -> %.4f\n",
           100 * before.ece, 100 * after.ece, 100 * before.mce, 100 * after.mce, before.nll, after.nll, before.brier,
           after.brier);
    printf("test accuracy: %.2f%% (unchanged by temperature scaling: %.2f%% before)\n", 100 * after.accuracy,
           100 * before.accuracy);
    if (o->reliability) {
        char title[160];
        snprintf(title, sizeof title, "temperature %.3f: test ECE %.2f%% -> %.2f%%", t, 100 * before.ece,
                 100 * after.ece);
        if (write_reliability_svg(o->reliability, 15, c1, f1, a1, c0, a0, title) != 0) {
            fprintf(stderr, "hlr-mnist: cannot write %s: %s\n", o->reliability, strerror(errno));
            goto out;
        }
        printf("reliability diagram: %s\n", o->reliability);
    }
    hlr_save_options so;
    hlr_save_options_default(&so);
    so.optimizer = opt;
    const char *out = o->save ? o->save : path;
    if (hlr_model_save(m, out, &so) != HLR_OK)
        goto fail;
    printf("saved %s (temperature %.4f)\n", out, t);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
out:
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    hlr_dataset_free(val);
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    return rc;
}

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
    options saved = *o; /* what the file says of the data the training used */
    const char *v = hlr_metadata_get(hlr_model_metadata(m), "model");
    saved.model = v ? v : "a model the file does not name";
    saved.limit = o->limit >= 0 ? o->limit : saved_number(m, "limit", -1);
    if (o->limit < 0 && !hlr_metadata_get(hlr_model_metadata(m), "limit"))
        printf("note: %s does not record how many training images it used (it was not saved by hlr-mnist "
               "train): using all of them (--limit N to choose)\n", path);
    saved.test_limit = o->test_limit >= 0 ? o->test_limit : saved_number(m, "test_limit", -1);
    saved.seed = (unsigned long long)saved_number(m, "seed", 0);
    if (load_saved_data(m, &saved, &tr, &te, &fashion) != 0)
        goto out;
    if ((v = hlr_metadata_get(hlr_model_metadata(m), "optimizer")) != NULL)
        saved.optimizer = v;
    if ((v = hlr_metadata_get(hlr_model_metadata(m), "dataset")) != NULL)
        saved.dataset = v;
    /* Resuming is load and fit: with the batches, split and augmentation the training had. */
    hlr_fit_options fo;
    if (hlr_model_fit_settings(m, &fo) != HLR_OK) {
        fo.batch_size = o->batch;
        fo.augment_shift = o->augment < 0 ? 0 : o->augment;
        fo.validation_split = o->val_split;
        fo.augment = o->geo;
        printf("note: %s records no fit (it was not trained by hlr_model_fit): using --batch %d and the "
               "command line's augmentation\n", path, o->batch);
    }
    int before = (int)hlr_model_epochs_trained(m);
    printf("resuming %s (%s) after %d epochs: %d more on %lld images, batch %d, %d threads\n", path, saved.model,
           before, o->epochs, (long long)hlr_dataset_size(tr), fo.batch_size, hlr_get_num_threads());
    fo.epochs = o->epochs;
    fo.on_epoch = on_epoch;
    progress prog = {.before = before, .stop_after = o->stop_after};
    fo.user = &prog;
    fo.distributed = example_dist.lib ? &example_dist.d : NULL; /* NULL: this process alone */
    example_print_distributed(fo.batch_size, 0);
    hlr_status st = hlr_model_fit(m, opt, tr, &fo);
    if (st != HLR_OK && !(st == HLR_ECANCELLED && o->stop_after > 0)) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        goto out;
    }
    example_print_distributed(fo.batch_size, 1);
    if (report(m, te, fashion, o) != 0)
        goto out;
    if (o->save && example_dist.d.rank == 0 &&
        save_model(m, opt, &saved, fashion, o->save) != HLR_OK) {
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
    progress prog = {0};
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
    if (!(tr = load_mnist_part("hlr-mnist", dir, "train")) || !(te = load_mnist_part("hlr-mnist", dir, "t10k")))
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
    example_recipe recipe = example_model_recipe(o->model);
    const char *schedule = o->schedule ? o->schedule : recipe.cosine ? "cosine" : "none";
    int per_batch = 0;
    if (!strcmp(schedule, "cosine") && recipe.warmup_epochs > 0) {
        /* per batch: a linear warm-up from lr/100, then cosine decay to 0 at the last batch */
        int64_t global = (int64_t)o->batch * example_dist.d.size; /* per process: its shard in batches of --batch */
        int64_t batches = (hlr_dataset_size(tr) + global - 1) / global;
        per_batch = 1;
        if (hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, (double)(batches * o->epochs), 0.0,
                                       (int)(recipe.warmup_epochs * (double)batches), 0.01) != HLR_OK)
            goto fail;
    } else if (!strcmp(schedule, "cosine")) {
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
    fo.augment_shift = o->augment >= 0 ? o->augment : recipe.augment;
    fo.schedule_per_batch = per_batch;
    fo.on_epoch = on_epoch;
    fo.validation_split = o->val_split;
    fo.augment = o->geo;
    hlr_attack_options adv;
    if (o->adversarial) {
        hlr_attack_options_default(&adv);
        adv.eps = o->eps;
        adv.random_start = 1;
        int pgd = !strcmp(o->adversarial, "pgd");
        adv.steps = pgd ? (o->steps > 0 ? o->steps : 7) : 1;
        adv.step_size = o->step_size > 0 ? o->step_size : pgd ? 2.5 * o->eps / adv.steps : 1.25 * o->eps;
        fo.adversarial = &adv;
        fo.adversarial_fraction = o->adv_fraction;
        printf("adversarial training: %s, eps %g, %d step%s of %g, random start, %g of each batch\n",
               o->adversarial, adv.eps, adv.steps, adv.steps > 1 ? "s" : "", adv.step_size, o->adv_fraction);
    }
    hlr_monitor monitor = o->val_split > 0 ? HLR_MONITOR_VAL_LOSS : HLR_MONITOR_TRAIN_LOSS;
    if (o->early_stopping > 0)
        fo.early_stopping = (hlr_early_stopping){.patience = o->early_stopping, .monitor = monitor, .restore_best = 1};
    if (o->checkpoint)
        fo.checkpoint = (hlr_checkpoint){.path = o->checkpoint, .monitor = monitor};
    prog.stop_after = o->stop_after;
    prog.tty = isatty(STDOUT_FILENO);
    if (prog.tty)
        fo.on_batch = on_batch;
    if (o->plot && !(prog.curve = calloc((size_t)o->epochs, sizeof *prog.curve))) {
        fprintf(stderr, "hlr-mnist: out of memory\n");
        goto out;
    }
    prog.ncurve_cap = o->plot ? o->epochs : 0;
    if (o->target >= 0) {
        prog.m = m, prog.te = te, prog.target = o->target;
        prog.eval_batch = (int)(o->batch < hlr_dataset_size(tr) ? o->batch : hlr_dataset_size(tr));
    }
    fo.user = &prog;
    fo.distributed = example_dist.lib ? &example_dist.d : NULL; /* NULL: this process alone */
    example_print_distributed(o->batch, 0);
    if (set_training_metadata(m, o, fashion) != HLR_OK) /* checkpoints carry it too */
        goto fail;
    hlr_status fit_st = hlr_model_fit(m, opt, tr, &fo);
    if (prog.failed)
        goto out;
    if (fit_st != HLR_OK && !(fit_st == HLR_ECANCELLED && (o->stop_after > 0 || prog.reached)))
        goto fail;
    if (o->plot) {
        char title[160];
        snprintf(title, sizeof title, "%s on %s, %d epochs", o->model, fashion ? "Fashion-MNIST" : "MNIST",
                 prog.ncurve);
        if (write_curves_svg(o->plot, prog.curve, prog.ncurve, title) != 0) {
            fprintf(stderr, "hlr-mnist: cannot write %s: %s\n", o->plot, strerror(errno));
            goto out;
        }
        printf("learning curves: %s\n", o->plot);
    }
    example_print_distributed(o->batch, 1);
    if (report(m, te, fashion, o) != 0)
        goto out;
    if (o->save && example_dist.d.rank == 0 &&
        save_model(m, opt, o, fashion, o->save) != HLR_OK)
        goto fail;
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
out:
    free(prog.curve);
    hlr_optimizer_free(opt);
    hlr_model_free(m);
    hlr_dataset_free(tr);
    hlr_dataset_free(te);
    return rc;
}

/* hlr-mnist attention FILE: test image o->index beside the attention weights the model gives it
 * (examples/attention.c). */
static int attention(const char *path, const options *o)
{
    hlr_model *m = load_with_threads(path, o);
    if (!m)
        return 1;
    hlr_dataset *te = NULL;
    int fashion, rc = 1;
    options full = *o;
    full.test_limit = 0; /* the whole test set, whatever the training evaluated */
    if (load_saved_data(m, &full, NULL, &te, &fashion) == 0) {
        attention_request r = {.path = path, .index = o->index, .out = o->out, .layer = o->layer, .head = o->head,
                               .fashion = fashion};
        rc = attention_picture(m, te, &r);
    }
    hlr_dataset_free(te);
    hlr_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "hlr-mnist: which command: train, eval, calibrate, attack, resume or attention? (see hlr-mnist "
                        "--help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    int eval = !strcmp(argv[1], "eval"), resume = !strcmp(argv[1], "resume"), attend = !strcmp(argv[1], "attention"),
        calib = !strcmp(argv[1], "calibrate"), attack = !strcmp(argv[1], "attack");
    if (strcmp(argv[1], "train") != 0 && !eval && !resume && !attend && !calib && !attack) {
        fprintf(stderr, "hlr-mnist: unknown command '%s' (train, eval, calibrate, attack, resume or attention)\n",
                argv[1]);
        return 2;
    }
    options o;
    const char *file = NULL;
    /* eval, resume and attention take a model FILE; train takes none. */
    int rc = parse(argc, argv, 2, &o, (eval || resume || attend || calib || attack) ? &file : NULL);
    if (rc != 0) {
        if (rc > 0)
            usage(stdout);
        return rc > 0 ? 0 : 2;
    }
    if (attend)
        return attention(file, &o);
    if (eval)
        return eval_file(file, &o);
    if (calib)
        return calibrate_file(file, &o);
    if (attack)
        return attack_file(file, &o);
    if (o.sync_bn && !o.distributed) {
        fprintf(stderr, "hlr-mnist: --sync-batchnorm needs --distributed\n");
        return 2;
    }
    if (o.distributed && example_start_distributed("hlr-mnist", &argc, &argv) != 0)
        return 1;
    example_dist.d.sync_batchnorm = o.sync_bn;
    rc = resume ? resume_file(file, &o) : train(&o);
    example_stop_distributed();
    return rc;
}

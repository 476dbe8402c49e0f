/*
 * hlr-mnist -- train a network on MNIST and report its test accuracy.
 *
 *   hlr-mnist train [--model mlp] [--epochs N] [--batch B] [--lr X]
 *                   [--optimizer adam|sgd|adamw] [--seed S] [--data DIR]
 *                   [--threads T] [--limit N] [--test-limit N] [--save FILE]
 *   hlr-mnist eval FILE [--data DIR] [--test-limit N]
 *   hlr-mnist resume|calibrate|attack|attention FILE ...  (mnist_saved.c)
 *
 * One progress line per epoch, then the confusion matrix and the line
 * `test accuracy: NN.NN%`, which scripts read.  This file is the training
 * and evaluation a program of your own would copy: load the images
 * (common.c), build a model (models.c), make the optimizer
 * (mnist_options.c, from the command line), hlr_model_fit, evaluate, save.
 */
#include "mnist.h"
#include "common.h"
#include "models.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int on_batch(const hlr_batch_stats *s, void *user)
{
    (void)user;
    draw_progress(stdout, s);
    return 0;
}

/* One line per epoch; with --target-accuracy, the test accuracy after it.  Non-zero stops the fit. */
int on_epoch(const hlr_epoch_stats *s, void *user)
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

const char *const fashion_classes[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
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

hlr_status save_model(hlr_model *m, hlr_optimizer *opt, const options *o, int fashion, const char *path)
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

long saved_number(hlr_model *m, const char *key, long fallback)
{
    const char *v = hlr_metadata_get(hlr_model_metadata(m), key);
    return v ? strtol(v, NULL, 10) : fallback;
}

int load_saved_data(hlr_model *m, const options *o, hlr_dataset **tr, hlr_dataset **te, int *fashion)
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

int report(hlr_model *m, const hlr_dataset *te, int fashion, const options *o)
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

/* hlr-mnist train: load the images, build the model and its optimizer, fit, report, save. */
static int train(const options *o)
{
    int rc = 1;
    progress prog = {.stop_after = o->stop_after, .tty = isatty(STDOUT_FILENO)};
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
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    if (!(m = make_model(o->model, o->seed)) ||
        !(opt = make_optimizer(o, hlr_dataset_size(tr), &fo.schedule_per_batch)))
        goto out;
    char summary[4096];
    if (hlr_model_summary(m, summary, sizeof summary, NULL) == HLR_OK)
        printf("%s", summary);
    printf("training %s on %lld images: %d epochs, batch %d, %s lr %g, seed %llu, %d threads\n", o->model,
           (long long)hlr_dataset_size(tr), o->epochs, o->batch, o->optimizer, (double)o->lr, o->seed,
           hlr_get_num_threads());
    fo.epochs = o->epochs;
    fo.batch_size = o->batch;
    fo.augment_shift = o->augment >= 0 ? o->augment : example_model_recipe(o->model).augment;
    fo.augment = o->geo;
    fo.validation_split = o->val_split;
    fo.on_epoch = on_epoch;
    fo.on_batch = prog.tty ? on_batch : NULL;
    fo.user = &prog;
    fo.distributed = example_dist.lib ? &example_dist.d : NULL; /* NULL: this process alone */
    hlr_attack_options adv;
    if (o->adversarial) {
        int pgd = !strcmp(o->adversarial, "pgd");
        adv = attack_options(o, pgd, pgd ? (o->steps > 0 ? o->steps : 7) : 1, 1, 1.25);
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
    if (o->plot && !(prog.curve = calloc((size_t)o->epochs, sizeof *prog.curve))) {
        fprintf(stderr, "hlr-mnist: out of memory\n");
        goto out;
    }
    prog.ncurve_cap = o->plot ? o->epochs : 0;
    if (o->target >= 0) {
        prog.m = m, prog.te = te, prog.target = o->target;
        prog.eval_batch = (int)(o->batch < hlr_dataset_size(tr) ? o->batch : hlr_dataset_size(tr));
    }
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
    if (o->save && example_dist.d.rank == 0 && save_model(m, opt, o, fashion, o->save) != HLR_OK)
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

int main(int argc, char **argv)
{
    static const char *const commands[] = {"train", "eval", "calibrate", "attack", "resume", "attention"};
    int cmd = 0, ncmd = (int)(sizeof commands / sizeof commands[0]);
    if (argc < 2) {
        fprintf(stderr, "hlr-mnist: which command: train, eval, calibrate, attack, resume or attention? (see hlr-mnist "
                        "--help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    while (cmd < ncmd && strcmp(argv[1], commands[cmd]) != 0)
        cmd++;
    if (cmd == ncmd) {
        fprintf(stderr, "hlr-mnist: unknown command '%s' (train, eval, calibrate, attack, resume or attention)\n",
                argv[1]);
        return 2;
    }
    options o;
    const char *file = NULL;
    int rc = parse(argc, argv, 2, &o, cmd > 0 ? &file : NULL); /* all but train take a model FILE */
    if (rc != 0) {
        if (rc > 0)
            usage(stdout);
        return rc > 0 ? 0 : 2;
    }
    switch (cmd) {
    case 1:
        return eval_file(file, &o);
    case 2:
        return calibrate_file(file, &o);
    case 3:
        return attack_file(file, &o);
    case 5:
        return attention_file(file, &o);
    default:
        break; /* train and resume, which may run under mpirun */
    }
    if (o.sync_bn && !o.distributed) {
        fprintf(stderr, "hlr-mnist: --sync-batchnorm needs --distributed\n");
        return 2;
    }
    if (o.distributed && example_start_distributed("hlr-mnist", &argc, &argv) != 0)
        return 1;
    example_dist.d.sync_batchnorm = o.sync_bn;
    rc = cmd == 4 ? resume_file(file, &o) : train(&o);
    example_stop_distributed();
    return rc;
}

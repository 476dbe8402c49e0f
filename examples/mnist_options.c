/*
 * mnist_options.c -- hlr-mnist's command line: the options (one table, parsed by options.c),
 * the usage text, and the optimizer, schedule and attack settings they make.
 */
#include "common.h"
#include "mnist.h"
#include "models.h"
#include "options.h"

#include <math.h>
#include <string.h>

void usage(FILE *f)
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

int parse(int argc, char **argv, int first, options *o, const char **file)
{
    *o = (options){.model = "mlp",
                   .optimizer = NULL,
                   .epochs = 3,
                   .batch = 64,
                   .lr = 0.0f,
                   .augment = -1,
                   .dataset = "mnist",
                   .limit = -1,
                   .test_limit = -1,
                   .layer = -1,
                   .head = -1,
                   .target = -1,
                   .geo = {.elastic_sigma = 4.0},
                   .eps = 0.1,
                   .adv_fraction = 0.5};
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

hlr_optimizer *make_optimizer(const options *o, int64_t n, int *per_batch)
{
    hlr_optimizer *opt;
    if (!strcmp(o->optimizer, "adam"))
        opt = hlr_adam(o->lr, 0.9f, 0.999f, 1e-8f, 0.0f);
    else if (!strcmp(o->optimizer, "adamw"))
        opt = hlr_adamw(o->lr, 0.9f, 0.999f, 1e-8f, 0.01f);
    else
        opt = hlr_sgd(o->lr, 0.9f, 0, 0.0f); /* parse() let no other name through */
    example_recipe recipe = example_model_recipe(o->model);
    const char *schedule = o->schedule ? o->schedule : recipe.cosine ? "cosine" : "none";
    hlr_status st = opt ? HLR_OK : HLR_ENOMEM;
    *per_batch = 0;
    if (opt && !strcmp(schedule, "cosine") && recipe.warmup_epochs > 0) {
        /* per batch: a linear warm-up from lr/100, then cosine decay to 0 at the last batch */
        int64_t global = (int64_t)o->batch * example_dist.d.size; /* per process: its shard in batches of --batch */
        int64_t batches = (n + global - 1) / global;
        *per_batch = 1;
        st = hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, (double)(batches * o->epochs), 0.0,
                                        (int)(recipe.warmup_epochs * (double)batches), 0.01);
    } else if (opt && !strcmp(schedule, "cosine")) {
        st = hlr_optimizer_set_schedule(opt, HLR_SCHEDULE_COSINE, o->epochs, 0.0, 0, 1.0);
    }
    if (st != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        hlr_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

hlr_attack_options attack_options(const options *o, int pgd, int steps, int random_start, double fgsm_step)
{
    hlr_attack_options a;
    hlr_attack_options_default(&a);
    a.eps = o->eps;
    a.steps = steps;
    a.random_start = random_start;
    a.step_size = o->step_size > 0 ? o->step_size : pgd ? 2.5 * o->eps / steps : fgsm_step * o->eps;
    return a;
}

/*
 * mnist.h -- what the three files of hlr-mnist share:
 *   mnist.c          training and evaluation, the part to copy into a program of your own;
 *   mnist_options.c  the command line: its options, usage and the settings they make;
 *   mnist_saved.c    the commands that start from a saved model: resume, calibrate, attack,
 *                    attention.
 */
#ifndef HLR_EXAMPLE_MNIST_H
#define HLR_EXAMPLE_MNIST_H

#include <hlr/hlr.h>

#include <stdio.h>

typedef struct options {
    const char *model, *optimizer, *data;
    int epochs, batch, threads;
    long limit, test_limit;
    int augment;          /* -1: the model's default */
    const char *schedule; /* NULL: the model's default */
    const char *dataset;  /* "mnist" or "fashion" */
    float lr;
    unsigned long long seed;
    const char *save;        /* --save FILE: the model, optimizer and training state after training */
    int stop_after;          /* --stop-after N: stop (and save) after N of the epochs, as an interruption would */
    double target;           /* --target-accuracy P: test after every epoch, stop at P % (0: never stop; -1: off) */
    long index;              /* attention --index I: which test image */
    const char *out;         /* attention --out FILE: the picture (NULL: attention-I.ppm) */
    long layer, head;        /* attention --layer K, --head H (-1: the last attention layer, the mean of the heads) */
    double val_split;        /* --val-split F: the last fraction of the training images held out for validation */
    int early_stopping;      /* --early-stopping P: stop after P epochs without improvement (0: off) */
    const char *adversarial; /* train --adversarial fgsm|pgd */
    double eps, step_size, adv_fraction; /* --eps E, --step-size S, --adv-fraction F */
    int steps;                           /* attack --steps K, train --adv-steps K (0: the method's default) */
    const char *checkpoint;              /* --checkpoint FILE: saved after every epoch, resumable */
    const char *plot;                    /* --plot FILE.svg: learning curves */
    const char *confusion;               /* --confusion FILE.svg: the test set's confusion matrix as a heat map */
    const char *reliability;             /* --reliability FILE.svg: eval and calibrate's reliability diagram */
    int distributed;                     /* --distributed: one of mpirun's processes (libhlr-mpi) */
    int sync_bn;                         /* --sync-batchnorm: batch norm's statistics over all the processes' batches */
    hlr_augment geo;                     /* --rotate, --scale, --shear, --elastic */
} options;

/* What on_epoch needs: epochs trained before this fit (a resumed one), and where to stop; with
 * --target-accuracy, the model and test set to evaluate after each epoch and what that found. */
typedef struct progress {
    int before, stop_after;
    hlr_model *m; /* NULL: no evaluation between epochs */
    const hlr_dataset *te;
    int eval_batch; /* the fit's batch: evaluating with it needs no larger buffers */
    double target, train_seconds;
    int reached, failed;
    int tty;                /* standard output is a terminal: draw a progress bar */
    hlr_epoch_stats *curve; /* --plot: every epoch's figures (capacity ncurve_cap) */
    int ncurve, ncurve_cap;
} progress;

/* mnist_options.c */
void usage(FILE *f);
/* Parse the options from argv[first] on; the one positional argument (the model FILE of eval,
 * resume, calibrate, attack and attention) goes to *file.  0, 1 (--help was printed) or -1 (a line
 * on stderr said what is wrong). */
int parse(int argc, char **argv, int first, options *o, const char **file);
/* The optimizer --optimizer names, with the learning-rate schedule the options and the model's
 * recipe ask for over n training images; *per_batch says whether it steps per batch.  NULL after a
 * line on stderr. */
hlr_optimizer *make_optimizer(const options *o, int64_t n, int *per_batch);
/* The attack --eps and --step-size describe: PGD (pgd != 0) of `steps` steps of 2.5 eps / steps,
 * or FGSM's one step of fgsm_step eps; --step-size overrides either step. */
hlr_attack_options attack_options(const options *o, int pgd, int steps, int random_start, double fgsm_step);

/* mnist.c */
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
extern const char *const fashion_classes[10];
int on_epoch(const hlr_epoch_stats *s, void *user);
/* Load the test (and, when tr is not NULL, training) images a saved model was trained on. */
int load_saved_data(hlr_model *m, const options *o, hlr_dataset **tr, hlr_dataset **te, int *fashion);
/* The saved training's setting `key` (from its metadata), as a number (fallback when absent). */
long saved_number(hlr_model *m, const char *key, long fallback);
/* Evaluate on the test set and print what training prints; --confusion and --reliability drawn. */
int report(hlr_model *m, const hlr_dataset *te, int fashion, const options *o);
/* Save the model with its optimizer state and the metadata that says which data it trained on. */
hlr_status save_model(hlr_model *m, hlr_optimizer *opt, const options *o, int fashion, const char *path);

/* mnist_saved.c: the commands on a saved FILE; each returns the exit status. */
int resume_file(const char *path, const options *o);
int calibrate_file(const char *path, const options *o);
int attack_file(const char *path, const options *o);
int attention_file(const char *path, const options *o);

#endif

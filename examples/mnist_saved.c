/*
 * mnist_saved.c -- the hlr-mnist commands that start from a saved model: resume (load, then fit
 * on), calibrate (temperature scaling), attack (robust accuracy) and attention (drawn by
 * attention.c).
 */
#include "attention.h"
#include "common.h"
#include "mnist.h"

#include <errno.h>
#include <string.h>

/* The model at path, after --threads is set, and its optimizer's state when opt is not NULL; NULL
 * after a line on stderr. */
static hlr_model *load_saved(const char *path, const options *o, hlr_optimizer **opt)
{
    if (o->threads > 0 && hlr_set_num_threads(o->threads) != HLR_OK) {
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
        return NULL;
    }
    hlr_model *m = hlr_model_load(path, opt);
    if (!m)
        fprintf(stderr, "hlr-mnist: %s\n", hlr_last_error());
    return m;
}

/* hlr-mnist attack FILE: robust accuracy on the test images. */
int attack_file(const char *path, const options *o)
{
    hlr_model *m = load_saved(path, o, NULL);
    if (!m)
        return 1;
    hlr_dataset *te = NULL;
    int fashion, rc = 1;
    if (load_saved_data(m, o, NULL, &te, &fashion) == 0) {
        int steps = o->steps > 0 ? o->steps : 20;
        hlr_attack_options a = attack_options(o, steps > 1, steps, steps > 1, 1.0);
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
int calibrate_file(const char *path, const options *o)
{
    hlr_optimizer *opt = NULL;
    hlr_model *m = load_saved(path, o, &opt);
    if (!m)
        return 1;
    hlr_dataset *tr = NULL, *te = NULL, *val = NULL;
    int fashion, rc = 1;
    options lim = *o;
    lim.limit = o->limit >= 0 ? o->limit : saved_number(m, "limit", -1); /* the images it trained on */
    if (load_saved_data(m, &lim, &tr, &te, &fashion) != 0)
        goto out;
    hlr_fit_options trained;
    hlr_model_fit_settings(m, &trained); /* the defaults (no split) when the file does not say */
    double trained_split = trained.validation_split, split = o->val_split > 0    ? o->val_split
                                                             : trained_split > 0 ? trained_split
                                                                                 : 0.1;
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
    printf("test ECE: %.2f%% -> %.2f%%, MCE %.2f%% -> %.2f%%, NLL %.4f -> %.4f, Brier %.4f -> %.4f\n", 100 * before.ece,
           100 * after.ece, 100 * before.mce, 100 * after.mce, before.nll, after.nll, before.brier, after.brier);
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

/* hlr-mnist resume FILE: load, then fit for --epochs more with the settings of the file's last fit. */
int resume_file(const char *path, const options *o)
{
    hlr_optimizer *opt = NULL;
    hlr_model *m = load_saved(path, o, &opt);
    if (!m)
        return 1;
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
               "train): using all of them (--limit N to choose)\n",
               path);
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
               "command line's augmentation\n",
               path, o->batch);
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
    if (o->save && example_dist.d.rank == 0 && save_model(m, opt, &saved, fashion, o->save) != HLR_OK) {
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

/* hlr-mnist attention FILE: test image o->index beside the attention weights the model gives it
 * (examples/attention.c). */
int attention_file(const char *path, const options *o)
{
    hlr_model *m = load_saved(path, o, NULL);
    if (!m)
        return 1;
    hlr_dataset *te = NULL;
    int fashion, rc = 1;
    options full = *o;
    full.test_limit = 0; /* the whole test set, whatever the training evaluated */
    if (load_saved_data(m, &full, NULL, &te, &fashion) == 0) {
        attention_request r = {
            .path = path, .index = o->index, .out = o->out, .layer = o->layer, .head = o->head, .fashion = fashion};
        rc = attention_picture(m, te, &r);
    }
    hlr_dataset_free(te);
    hlr_model_free(m);
    return rc;
}

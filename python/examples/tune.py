#!/usr/bin/env python3
"""Hyperparameter search for the batch-normalised CNN with Optuna (Debian's python3-optuna).

    python3 python/examples/tune.py [--trials 20] [--subset 10000] [--epochs 4] [--final-epochs 3]
                                    [--data data/mnist] [--seed 0] [--threads N] [--final-limit N]

Each trial builds cnn-bn (bin/hlr-mnist's: three conv - batch norm - ReLU - max-pool stages, dropout,
a batch-normalised dense layer, dense 10) with the trial's first-convolution width, dense width and
dropout, and trains it as bin/hlr-mnist's recipe does (images shifted by up to 2 pixels, a cosine
decay of the learning rate over the epochs) with AdamW at the trial's learning rate, weight decay
and batch size, on the first 90 % of the first --subset training images, evaluating the last 10 %
after every epoch.  The first trial is bin/hlr-mnist's own recipe (lr 1e-3, batch 64, width 32,
dense 128, dropout 0.3, no weight decay to speak of), so the search starts from it.  The
per-epoch callback reports that validation accuracy to Optuna, whose median pruner stops trials
that fall behind the others at the same epoch; early stopping (patience 2) ends a trial that stops
improving.  The TPE sampler is seeded, so a search repeats.  The best trial's settings are then
trained on all the training images (or the first --final-limit) for --final-epochs epochs and
evaluated on the test images: the last line is `test accuracy: NN.NN%`.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hlr  # noqa: E402

try:
    import optuna
except ImportError:
    sys.exit("tune.py: needs Optuna: apt-get install python3-optuna (scripts/install-deps.sh installs it)")


def build(width, dense, dropout, seed):
    """cnn-bn with the first convolution `width` wide (then 2 and 4 times that) and a dense layer of `dense`."""
    w = width
    return hlr.Model([
        hlr.Conv2d(1, w, 3, padding=1, bias=False), hlr.BatchNorm2d(w), hlr.ReLU(), hlr.MaxPool2d(2),
        hlr.Conv2d(w, 2 * w, 3, padding=1, bias=False), hlr.BatchNorm2d(2 * w), hlr.ReLU(), hlr.MaxPool2d(2),
        hlr.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), hlr.BatchNorm2d(4 * w), hlr.ReLU(), hlr.MaxPool2d(2),
        hlr.Flatten(), hlr.Dropout(dropout),
        hlr.Dense(4 * w * 3 * 3, dense, bias=False), hlr.BatchNorm1d(dense), hlr.ReLU(), hlr.Dropout(dropout),
        hlr.Dense(dense, 10),
    ], input_shape=(1, 28, 28), seed=seed)


def suggest(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "batch": trial.suggest_categorical("batch", [32, 64, 128]),
        "width": trial.suggest_categorical("width", [16, 32, 48]),
        "dense": trial.suggest_categorical("dense", [64, 128, 256]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
    }


def train(p, x, y, epochs, seed, callback=None, validation=None):
    model = build(p["width"], p["dense"], p["dropout"], seed)
    opt = hlr.AdamW(p["lr"], weight_decay=p["weight_decay"])
    opt.set_schedule("cosine", T_max=epochs)  # decays to 0 over the epochs, stepped once per epoch
    cbs = [hlr.callbacks.EarlyStopping(monitor="val_accuracy", patience=2)] if validation else None
    model.fit(x, y, epochs=epochs, batch_size=p["batch"], optimizer=opt, augment_shift=2, verbose=0,
              validation_data=validation, callback=callback, callbacks=cbs)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--subset", type=int, default=10000, help="training images the search uses")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per trial (fewer when pruned or stopped)")
    ap.add_argument("--final-epochs", type=int, default=3)
    ap.add_argument("--final-limit", type=int, default=0, help="train the best on the first N images (0: all)")
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", "data/mnist"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        hlr.set_num_threads(args.threads)
    (x, y), (xt, yt) = hlr.load_mnist(args.data)
    n = min(args.subset, len(y))
    cut = n * 9 // 10
    xs, ys, xv, yv = x[:cut], y[:cut], x[cut:n], y[cut:n]
    print("search: %d trials on %d training and %d validation images, up to %d epochs each"
          % (args.trials, cut, n - cut, args.epochs))

    def objective(trial):
        p = suggest(trial)

        def report(stats):
            trial.report(stats["val_accuracy"], stats["epoch"])
            return trial.should_prune()  # True stops the fit

        t0 = time.time()
        model = train(p, xs, ys, args.epochs, args.seed, report, (xv, yv))
        acc = model.evaluate(xv, yv)["accuracy"]
        pruned = trial.should_prune()
        print("trial %d: validation accuracy %.2f%% in %.0f s%s  %s" % (
            trial.number, 100 * acc, time.time() - t0, " (pruned)" if pruned else "",
            " ".join("%s=%.3g" % kv if isinstance(kv[1], float) else "%s=%s" % kv for kv in sorted(p.items()))),
            flush=True)
        if pruned:
            raise optuna.TrialPruned()
        return acc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    study.enqueue_trial({"lr": 1e-3, "batch": 64, "width": 32, "dense": 128, "dropout": 0.3, "weight_decay": 1e-6})
    study.optimize(objective, n_trials=args.trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    best = study.best_trial
    print("best trial %d of %d (%d pruned): validation accuracy %.2f%%" % (best.number, len(study.trials), pruned,
                                                                          100 * best.value))
    print("best settings: " + " ".join("%s=%.3g" % kv if isinstance(kv[1], float) else "%s=%s" % kv
                                         for kv in sorted(best.params.items())))
    m = args.final_limit or len(y)
    t0 = time.time()
    model = train(best.params, x[:m], y[:m], args.final_epochs, args.seed)
    print("trained the best settings on %d images for %d epochs in %.0f s" % (m, args.final_epochs, time.time() - t0))
    print("test accuracy: %.2f%%" % (100 * model.evaluate(xt, yt)["accuracy"]))


if __name__ == "__main__":
    main()

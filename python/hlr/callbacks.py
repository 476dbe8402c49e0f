"""Training control for Model.fit(callbacks=[...]), with Keras's names and arguments.

EarlyStopping, ModelCheckpoint, ReduceLROnPlateau and CSVLogger are carried out by the library
(hlr_fit_options), not in Python: they behave the same from C and from Python, and cost nothing
per batch.  Give at most one of each kind.  History is what fit() returns.  ProgressBar is what
fit(verbose=1) uses.  Any other object with an `on_epoch_end(epoch, logs)` method (logs: the
epoch's dict) runs after each epoch, in Python; returning True stops training.
"""

import math
import os
import sys
import time

from . import _check

_MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy", "train_loss", "train_accuracy")


def _monitor(name):
    m = _check.choice(name, "monitor", _MONITORS)
    return {"loss": "train_loss", "accuracy": "train_accuracy"}.get(m, m)


class Callback:
    """Base class for Python callbacks: override on_epoch_end (return True to stop)."""

    def on_epoch_end(self, epoch, logs):
        return False


class EarlyStopping:
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs (Keras's
    EarlyStopping; patience 0 stops at the first epoch without improvement, as 1 does).
    restore_best_weights: end with the best epoch's parameters."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, restore_best_weights=False):
        self.monitor = _monitor(monitor)
        self.min_delta = _check.real(min_delta, "min_delta", 0.0)
        self.patience = _check.integer(patience, "patience", lo=0)
        self.restore_best_weights = _check.boolean(restore_best_weights, "restore_best_weights")


class ModelCheckpoint:
    """Save the model (with the optimizer's state) to filepath after every epoch, or only when
    `monitor` improved (save_best_only).  Each save is atomic."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False):
        if not isinstance(filepath, (str, bytes, os.PathLike)):
            raise TypeError("filepath must be a path, not %s" % type(filepath).__name__)
        self.filepath = os.fsencode(filepath)
        self.monitor = _monitor(monitor)
        self.save_best_only = _check.boolean(save_best_only, "save_best_only")


class ReduceLROnPlateau:
    """Multiply the learning rate by factor after `patience` epochs without an improvement of
    `monitor` by more than min_delta, not below min_lr (Keras's ReduceLROnPlateau)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, min_lr=0.0):
        self.monitor = _monitor(monitor)
        self.factor = _check.real(factor, "factor", 0.0, 1.0, lo_open=True, hi_open=True)
        self.patience = _check.integer(patience, "patience", lo=1)
        self.min_delta = _check.real(min_delta, "min_delta", 0.0)
        self.min_lr = _check.real(min_lr, "min_lr", 0.0)


class CSVLogger:
    """Write one CSV line per epoch to filename (epoch, train_loss, train_accuracy, val_loss,
    val_accuracy, lr, seconds); append keeps what the file holds."""

    def __init__(self, filename, append=False):
        if not isinstance(filename, (str, bytes, os.PathLike)):
            raise TypeError("filename must be a path, not %s" % type(filename).__name__)
        self.filename = os.fsencode(filename)
        self.append = _check.boolean(append, "append")


class History(list):
    """What fit() returns: one dict per epoch (a list, as before), and Keras's view of it."""

    @property
    def history(self):
        """{key: [value per epoch]}, as Keras's History.history."""
        keys = self[0].keys() if self else ()
        return {k: [e[k] for e in self] for k in keys}

    def plot(self, path=None):
        """Loss and accuracy per epoch, training and validation, through matplotlib (Debian's
        python3-matplotlib).  Saves the figure to path when given; returns the figure."""
        try:
            import matplotlib
            if path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib (Debian: apt-get install python3-matplotlib)") from None
        epochs = [e["epoch"] for e in self]
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
            ax.plot(epochs, [e["train_" + key] for e in self], marker="o", label="training")
            val = [e["val_" + key] for e in self]
            if any(v is not None for v in val):
                ax.plot(epochs, [math.nan if v is None else v for v in val], marker="o", label="validation")
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig


class ProgressBar:
    """fit(verbose=1): a bar with rate and time left on a terminal, one line per epoch otherwise;
    verbose=2: one line per epoch."""

    def __init__(self, verbose=1, stream=None):
        self.stream = stream if stream is not None else sys.stdout
        self.bar = verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0

    def on_batch(self, s):
        if not self.bar:
            return
        now = time.monotonic()
        if s.batch != s.batches and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        done = int(width * s.samples / s.total)
        rate = s.samples / s.seconds if s.seconds > 0 else 0.0
        left = (s.total - s.samples) / rate if rate > 0 else 0.0
        self.stream.write("\rEpoch %d/%d [%s%s] %d/%d  loss %.4f  accuracy %.2f%%  %.0f samples/s  %.0f s left "
                          % (s.epoch, s.epochs, "=" * done, "." * (width - done), s.samples, s.total, s.loss,
                             100 * s.accuracy, rate, left))
        self.stream.flush()

    def on_epoch(self, e):
        val = ""
        if e["val_loss"] is not None:
            val = "  val_loss %.4f  val_accuracy %.2f%%" % (e["val_loss"], 100 * e["val_accuracy"])
        end = "  (early stopping: best epoch %d)" % e["best_epoch"] if e.get("stopping") else ""
        self.stream.write("%sEpoch %d/%d  loss %.4f  accuracy %.2f%%%s  lr %.3g  %.1f s%s\n"
                          % ("\r" if self.bar else "", e["epoch"], e["epochs"], e["train_loss"],
                             100 * e["train_accuracy"], val, e["lr"], e["seconds"], end))
        self.stream.flush()


__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "CSVLogger", "History",
           "ProgressBar"]

"""The sequential Model: layers, build, forward/backward, training,
evaluation and prediction."""

import ctypes
import os
import weakref

from . import _arrays, _check
from ._arrays import Buf, Tensors, as_batch, as_input, empty, shape_arg
from ._capi import (BATCH_FN, ENUMS, EPOCH_FN, HLR_ECANCELLED, HLR_F32, HLR_I32, MAX_DIMS, AttackOptions,
                    Calibration, ExplainOptions, FitOptions, Metrics, SaveOptions, lib)
from ._errors import check, check_ptr
from ._handle import Owner
from .layers import Layer, _wrap
from .optim import Adam, Optimizer

_LOSSES = {
    "cross_entropy": ENUMS["hlr_loss_kind"]["HLR_LOSS_CROSS_ENTROPY"],
    "mse": ENUMS["hlr_loss_kind"]["HLR_LOSS_MSE"],
    "ctc": ENUMS["hlr_loss_kind"]["HLR_LOSS_CTC"],
}


def _fit_loss(loss):
    """fit's and evaluate's loss: "cross_entropy", "ctc" or an hlr.CTCLoss (blank 0, mean reduction)."""
    from .functional import CTCLoss
    if isinstance(loss, CTCLoss):
        if loss.blank != 0 or loss.reduction != "mean":
            raise ValueError("a model's CTC loss has blank 0 and reduction \"mean\" (got blank %d, %r)"
                             % (loss.blank, loss.reduction))
        return "ctc"
    return _check.choice(loss, "loss", ("cross_entropy", "ctc"))
_ELEM = 4  # bytes per float32 or int32 element



def _check_labels(yb, classes, where):
    """ValueError naming the first label outside [0, classes), in the caller's terms."""
    n = yb.shape[0]
    if n == 0:
        return
    values = (ctypes.c_int32 * n).from_address(yb.addr)
    if _arrays.HAVE_NUMPY:
        a = _arrays.np.frombuffer(values, dtype=_arrays.np.int32)
        bad = _arrays.np.flatnonzero((a < 0) | (a >= classes))
        first = int(bad[0]) if bad.size else -1
    else:
        first = next((i for i, v in enumerate(values) if v < 0 or v >= classes), -1)
    if first >= 0:
        raise ValueError("%s: y[%d] = %d is outside [0, %d), the model's %d classes"
                         % (where, first, values[first], classes, classes))

def _attack_options(settings, what):
    """An AttackOptions from a dict: eps, steps, step_size, random_start, clip (lo, hi), seed."""
    known = ("eps", "steps", "step_size", "random_start", "clip", "seed")
    for key in settings:
        if key not in known:
            raise ValueError("%s: unknown attack setting %r (%s)" % (what, key, ", ".join(known)))
    o = AttackOptions()
    lib.hlr_attack_options_default(ctypes.byref(o))
    o.eps = _check.real(settings.get("eps", 0.1), "eps", 0.0)
    o.steps = _check.integer(settings.get("steps", 1), "steps")
    o.step_size = _check.real(settings.get("step_size", 0.0), "step_size", 0.0)
    o.random_start = int(bool(settings.get("random_start", False)))
    lo, hi = settings.get("clip", (0.0, 1.0))
    o.clip_min, o.clip_max = float(lo), float(hi)
    o.seed = _check.integer(settings.get("seed", 0), "seed", lo=0, hi=2**64 - 1)
    return o


class Model:
    """A sequential model (torch.nn.Sequential plus Keras-style training).

        model = hlr.Model([hlr.Flatten(), hlr.Dense(784, 10)], input_shape=(1, 28, 28))

    layers: layers to add in order (the model takes ownership of each);
    input_shape: the shape of one sample, without the batch; when given the
    model is built at once, otherwise by build() or the first training or
    inference call; seed: seeds initialisation, dropout and shuffling.

    The C model is freed by close(), a `with` block or garbage collection;
    parameter views returned by params()/state_dict() keep its memory alive
    until they are gone too.
    """

    def __init__(self, layers=None, input_shape=None, seed=0):
        seed = _check.integer(seed, "seed", lo=0, hi=2**64 - 1)
        if layers is None:
            layers = []
        elif isinstance(layers, Layer) or not hasattr(layers, "__iter__"):
            raise TypeError("layers must be a list of hlr layers, not %s" % type(layers).__name__)
        layers = list(layers)
        for i, l in enumerate(layers):
            if not isinstance(l, Layer):
                raise TypeError("layers[%d] is %s, not an hlr layer" % (i, type(l).__name__))
            if l._model is not None or l.closed:
                raise ValueError("layers[%d] (%s) is closed or belongs to a model" % (i, type(l).__name__))
            if any(l is other for other in layers[:i]):
                raise ValueError("layers[%d] (%s) appears twice" % (i, type(l).__name__))
        if input_shape is not None:
            input_shape = _check.shape(input_shape, "input_shape")
        self._h = Owner(check_ptr(lib.hlr_model_new(seed)), lib.hlr_model_free)
        self._layer_meta = []  # per layer: (class, configuration, C type) to rebuild its Python object
        self._layer_refs = []  # per layer: a weak reference to its Python object
        self._built = False
        self._input_shape = None
        self._loss = (_LOSSES["cross_entropy"], 0.0)  # what the C model is set to
        self._lengths_set = False  # whether the C model has sequence lengths in force
        self._last_batch = None  # the size of the last batch that went through
        for l in layers:
            self.add(l)
        if input_shape is not None:
            self.build(input_shape)

    @classmethod
    def _adopt(cls, ptr):
        """A Model object for a built C model (hlr_model_load's result)."""
        self = cls.__new__(cls)
        self._h = Owner(ptr, lib.hlr_model_free)
        self._built = True
        self._input_shape = None
        if lib.has("hlr_model_input_shape"):
            self._input_shape = self._shape_of(lib.hlr_model_input_shape)
        self._loss = None  # unknown: set before training
        self._lengths_set = False
        self._last_batch = None
        self._layer_meta = []
        self._layer_refs = []
        for i in range(lib.hlr_model_num_layers(ptr)):
            layer = _wrap(check_ptr(lib.hlr_model_layer(ptr, i)), self)
            self._layer_meta.append((type(layer), None, layer.type))
            self._layer_refs.append(weakref.ref(layer))
        return self

    # -- ownership ----------------------------------------------------------

    def _handle(self):
        if self._h is None:
            raise ValueError("the model is closed")
        return self._h

    @property
    def _ptr(self):
        return self._handle().ptr

    def close(self):
        """Free the C model and its layers (deferred while parameter views exist)."""
        self._h = None

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- structure ----------------------------------------------------------

    def add(self, layer):
        """Append a layer; the model owns it from now on.  Returns the model.

        If the library refuses it (e.g. the model is built) it frees the
        layer, which is then closed, and HlrError is raised.
        """
        if not isinstance(layer, Layer):
            raise TypeError("add() needs an hlr layer, not %s" % type(layer).__name__)
        if layer._model is not None:
            raise ValueError("this %s already belongs to a model" % type(layer).__name__)
        ptr = self._ptr
        ctype = layer.type
        lptr = layer._give_to(self)
        status = lib.hlr_model_add(ptr, lptr)
        if status < 0:
            layer._lost()
            check(status)
        self._layer_meta.append((type(layer), layer._config, ctype))
        self._layer_refs.append(weakref.ref(layer))
        return self

    append = add

    def build(self, input_shape):
        """Create the parameters for samples of input_shape (no batch dimension)."""
        shape = _check.shape(input_shape, "input_shape")
        if len(shape) > MAX_DIMS - 1:
            raise ValueError("input_shape has %d dimensions; at most %d" % (len(shape), MAX_DIMS - 1))
        check(lib.hlr_model_build(self._ptr, len(shape), shape_arg(shape)), "build")
        self._built = True
        self._input_shape = shape
        return self

    @property
    def built(self):
        return self._built

    def _layer(self, i):
        # The model refers to its layer objects weakly and they refer to it
        # strongly: no reference cycle, so dropping the last reference frees
        # the C model at once.  A layer object that is gone is made again.
        layer = self._layer_refs[i]()
        if layer is None or layer._model is not self:
            cls, config, _ = self._layer_meta[i]
            layer = cls._wrap_borrowed(check_ptr(lib.hlr_model_layer(self._ptr, i)), self)
            layer._config = config
            self._layer_refs[i] = weakref.ref(layer)
        return layer

    @property
    def layers(self):
        """The layers, in order (the objects that were added while they are referenced)."""
        return [self._layer(i) for i in range(len(self._layer_refs))]

    def __len__(self):
        return len(self._layer_refs)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    @property
    def input_shape(self):
        """The shape of one input sample, or None while unknown."""
        return self._input_shape

    def _shape_of(self, fn):
        ndim = ctypes.c_int()
        shape = (ctypes.c_int64 * MAX_DIMS)()
        check(fn(self._ptr, ctypes.byref(ndim), shape))
        return tuple(shape[i] for i in range(ndim.value))

    @property
    def output_shape(self):
        """The shape of one output sample (after build)."""
        return self._shape_of(lib.hlr_model_output_shape)

    @property
    def param_count(self):
        """The number of trainable scalars (0 before build)."""
        return lib.hlr_model_param_count(self._ptr)

    def summary(self):
        """The layer table (type, output shape, parameters) and totals, as text."""
        ptr = self._ptr
        needed = ctypes.c_size_t()
        check(lib.hlr_model_summary(ptr, None, 0, ctypes.byref(needed)))
        buf = ctypes.create_string_buffer(needed.value + 1)
        check(lib.hlr_model_summary(ptr, buf, len(buf), ctypes.byref(needed)))
        return buf.value.decode()

    def state_dict(self):
        """{"<layer index>.<name>": writable view}, as torch.nn.Sequential names them."""
        out = {}
        for i, layer in enumerate(self.layers):
            if layer.param_names():
                for name, v in layer.params().items():
                    out["%d.%s" % (i, name)] = v
        return out

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters named as state_dict() names them.

        With strict, the keys must match exactly (ValueError otherwise).
        """
        if not isinstance(state, dict):
            raise TypeError("state must be a dict, not %s" % type(state).__name__)
        mine = self.state_dict()
        missing = sorted(set(mine) - set(state))
        unexpected = sorted(set(state) - set(mine))
        if strict and (missing or unexpected):
            raise ValueError("load_state_dict: missing keys %s, unexpected keys %s" % (missing, unexpected))
        for key, value in state.items():
            if key not in mine:
                continue
            dst = _arrays.as_input(mine[key], HLR_F32, key)  # the view itself: no copy
            src = as_input(value, HLR_F32, key)
            if src.shape != dst.shape:
                raise ValueError("load_state_dict: %s has shape %s, the model's is %s" % (key, src.shape, dst.shape))
            ctypes.memmove(dst.addr, src.addr, src.numel * _ELEM)

    def __repr__(self):
        if self._h is None:
            return "Model(<closed>)"
        lines = ["  (%d): %r" % (i, l) for i, l in enumerate(self.layers)]
        return "Model(\n%s\n)" % "\n".join(lines) if lines else "Model()"

    # -- running ------------------------------------------------------------

    def _input_dtype(self):
        """int32 token ids when the first layer is an embedding, else float32."""
        return HLR_I32 if self._layer_meta and self._layer_meta[0][2] == "embedding" else HLR_F32

    def _input(self, x, what="x"):
        buf = as_batch(x, self._input_shape, what, self._input_dtype())
        if len(buf.shape) < 2:
            raise ValueError("%s must have a batch dimension and sample dimensions (got shape %s); build the model "
                             "first to pass flat data" % (what, buf.shape))
        if not self._built:
            self.build(buf.shape[1:])
        return buf

    def _ran(self, buf):
        """After the library accepted buf: remember its sample shape and batch size."""
        if self._input_shape is None:
            self._input_shape = buf.shape[1:]
        self._last_batch = buf.shape[0]

    def _lengths_arg(self, lengths, n):
        """lengths as an int32 Buf of n values (or None)."""
        if lengths is None:
            return None
        lb = as_input(lengths, HLR_I32, "lengths")
        if lb.shape != (n,):
            raise ValueError("lengths must hold one length per sample: %d samples, lengths has shape %s"
                             % (n, lb.shape))
        return lb

    def _apply_lengths(self, lb, n):
        """Give the C model these per-sequence lengths (None: clear them if set)."""
        if lb is None:
            if self._lengths_set:
                check(lib.hlr_model_set_lengths(self._ptr, None, 0))
                self._lengths_set = False
            return
        check(lib.hlr_model_set_lengths(self._ptr, lb.addr, n))
        self._lengths_set = True

    def forward(self, x, training=False, lengths=None):
        """Run a batch x (N, *input_shape) through the model; returns (N, *output_shape).

        With training=True dropout is active and the activations are kept for
        backward().  lengths: for sequence models, each sample's number of
        valid steps (torch's packed sequences); None means all steps.  A
        model that is not built yet is built for x's samples.
        """
        training = _check.boolean(training, "training")
        xb = self._input(x)
        lb = self._lengths_arg(lengths, xb.shape[0])
        ptr = self._ptr
        y, yb = empty((xb.shape[0],) + self.output_shape)
        self._apply_lengths(lb, xb.shape[0])
        with Tensors() as t:
            check(lib.hlr_model_forward(ptr, t.wrap(xb), t.wrap(yb), int(training)), "forward")
        self._ran(xb)
        return y

    __call__ = forward

    def output_lengths(self, lengths):
        """Each sample's valid steps at the output for these input lengths (for images, their widths):
        after every convolution and pooling that shrinks the time axis, as a CTC decoder reads them.
        Returns int32 (N) (a list without NumPy)."""
        if not self.built:
            raise ValueError("output_lengths: the model is not built")
        lb = as_input(lengths, HLR_I32, "lengths")
        if len(lb.shape) != 1 or lb.shape[0] < 1:
            raise ValueError("lengths must be one length per sample, got shape %s" % (lb.shape,))
        n = lb.shape[0]
        out, ob = empty((n,), HLR_I32)
        self._apply_lengths(lb, n)
        check(lib.hlr_model_output_lengths(self._ptr, ob.addr, n), "output_lengths")
        return out

    def backward(self, grad_output):
        """After forward(x, training=True): propagate dLoss/dOutput, fill every
        layer's gradients (overwriting them) and return dLoss/dInput (None for
        a model that takes token ids, which have no gradient)."""
        gb = as_input(grad_output, HLR_F32, "grad_output")
        if self._input_shape is None or self._input_dtype() == HLR_I32:
            with Tensors() as t:  # no input gradient (or no forward yet: the library's HLR_ESTATE)
                check(lib.hlr_model_backward(self._ptr, t.wrap(gb), None), "backward")
            return None
        dx, dxb = empty((gb.shape[0],) + tuple(self._input_shape))
        with Tensors() as t:
            check(lib.hlr_model_backward(self._ptr, t.wrap(gb), t.wrap(dxb)), "backward")
        return dx

    def _set_loss(self, kind, smoothing):
        """Set the C model's loss; smoothing None keeps the current one when the kind is unchanged."""
        if smoothing is None:
            if self._loss is None or self._loss[0] == kind:
                return  # unknown (a loaded model keeps its file's loss) or already this kind
            smoothing = 0.0
        if self._loss != (kind, smoothing):
            check(lib.hlr_model_set_loss(self._ptr, kind, smoothing))
            self._loss = (kind, smoothing)

    def train_batch(self, optimizer, x, y, loss="cross_entropy", label_smoothing=0.0, lengths=None):
        """One step: forward (training), loss, backward, optimizer step.  Returns the loss.

        loss="cross_entropy": y holds int labels (N); "mse": y holds float
        targets shaped like the output.  lengths as in forward().
        """
        if not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be an hlr optimizer, not %s" % type(optimizer).__name__)
        kind = _LOSSES[_check.choice(loss, "loss", tuple(_LOSSES))]
        smoothing = _check.real(label_smoothing, "label_smoothing", 0.0, 1.0, hi_open=True)
        xb = self._input(x)
        yb = as_input(y, HLR_I32 if loss == "cross_entropy" else HLR_F32, "y")
        if loss == "cross_entropy" and len(yb.shape) == 1:
            _check_labels(yb, self._classes(), "train_batch")
        lb = self._lengths_arg(lengths, xb.shape[0])
        optimizer._bind(self)
        self._set_loss(kind, smoothing)
        self._apply_lengths(lb, xb.shape[0])
        value = ctypes.c_float()
        with Tensors() as t:
            check(lib.hlr_model_train_batch(self._ptr, optimizer._ptr, t.wrap(xb), t.wrap(yb), ctypes.byref(value)), "train_batch")
        self._ran(xb)
        return value.value

    def _classes(self):
        out = self.output_shape
        if len(out) != 1:
            raise ValueError("the model's output is %s per sample; classification needs (classes,)" % (out,))
        return out[0]

    def _dataset(self, xb, y, lengths, where, ctc=False):
        """An hlr_dataset (a copy) of xb and labels y, with the model's output width as classes (ctc:
        label sequences y (N, S) padded with -1, lengths the samples' widths)."""
        yb = as_input(y, HLR_I32, "y")
        n = xb.shape[0]
        if ctc:
            out = self.output_shape
            if len(out) != 2:
                raise ValueError("%s: the model's output is %s per sample; CTC needs (T, C)" % (where, out))
            if len(yb.shape) != 2 or yb.shape[0] != n or yb.shape[1] < 1:
                raise ValueError("%s: y must hold one label sequence per sample, (%d, S) padded with -1; got "
                                 "shape %s" % (where, n, yb.shape))
            if xb.dtype == HLR_I32:
                raise ValueError("%s: CTC reads images or feature sequences, not token ids" % where)
            lb = self._lengths_arg(lengths, n)
            sample = xb.shape[1:]
            return Owner(check_ptr(lib.hlr_dataset_from_sequences(len(sample), shape_arg(sample), n, xb.addr,
                                                                  lb.addr if lb is not None else None, yb.addr,
                                                                  yb.shape[1], out[1])), lib.hlr_dataset_free)
        if yb.shape != (n,):
            raise ValueError("%s: y must hold one label per sample: x has %d samples, y has shape %s"
                             % (where, n, yb.shape))
        _check_labels(yb, self._classes(), where)
        lb = self._lengths_arg(lengths, n)
        sample = xb.shape[1:]
        make = lib.hlr_dataset_from_tokens if xb.dtype == HLR_I32 else lib.hlr_dataset_from
        data = Owner(check_ptr(make(len(sample), shape_arg(sample), n, xb.addr, yb.addr, self._classes())),
                     lib.hlr_dataset_free)
        if lb is not None:
            check(lib.hlr_dataset_set_lengths(data.ptr, lb.addr))
        return data

    def fit(self, x, y, epochs=1, batch_size=64, optimizer=None, validation_split=0.0, callback=None,
            shuffle=True, label_smoothing=None, augment_shift=0, lengths=None, *, validation_data=None,
            class_weight=None, callbacks=None, verbose=1, augment=None, loss="cross_entropy", adversarial=None,
            adversarial_fraction=0.5):
        """Train with softmax cross-entropy on labels y for `epochs` epochs.

        loss="ctc" (or an hlr.CTCLoss()) trains a sequence model, output
        (T, C), with CTC instead: y holds label sequences (N, S) in 1..C-1
        padded with -1 (0 is the blank), lengths each image's valid width
        (hlr.load_lines gives all three); accuracies are then fractions of
        whole sequences read right (best path), and each epoch's dict has
        val_cer, the validation character error rate.

        optimizer: an hlr optimizer (default: a new Adam(1e-3)).
        validation_split: the last fraction of (x, y) held out and evaluated
        after each epoch; or validation_data=(x_val, y_val[, lengths]).
        callback(stats) runs after each epoch with a dict (epoch, epochs,
        train_loss, train_accuracy, val_loss, val_accuracy, lr, seconds,
        samples_per_second, best_epoch, stopping; val_loss and val_accuracy
        are None without validation); returning True stops training.
        callbacks: hlr.callbacks.EarlyStopping, ModelCheckpoint,
        ReduceLROnPlateau, CSVLogger (carried out by the library, at most one
        of each) and objects with on_epoch_end(epoch, logs).
        class_weight: {class: weight} (others 1) or one weight per class,
        weighing the training loss as torch's CrossEntropyLoss(weight=).
        augment: {"rotate": degrees, "scale": fraction, "shear": degrees,
        "elastic_alpha": pixels, "elastic_sigma": pixels} (any subset) for
        (C, H, W) images: random, reproducible, after augment_shift.
        adversarial: adversarial training, a dict of attack() settings (eps,
        steps, step_size, random_start, clip); the first adversarial_fraction
        of each batch is replaced by its adversarial examples.
        verbose: 0 silent; 1 (default) a progress bar on a terminal, else one
        line per epoch; 2 one line per epoch (to standard output).
        label_smoothing: torch's CrossEntropyLoss(label_smoothing); None keeps
        the model's (0, or what a loaded file says).  augment_shift: shift
        training images by up to this many pixels.  lengths: each sequence's
        valid steps, for sequence models.
        Returns a History: the list of those per-epoch dicts (.history gives
        Keras's dict of lists, .plot() draws the curves).
        """
        from . import callbacks as cbs

        epochs = _check.integer(epochs, "epochs")
        batch_size = _check.integer(batch_size, "batch_size")
        validation_split = _check.real(validation_split, "validation_split", 0.0, 1.0, hi_open=True)
        shuffle = _check.boolean(shuffle, "shuffle")
        smoothing = None if label_smoothing is None else _check.real(label_smoothing, "label_smoothing", 0.0, 1.0,
                                                                     hi_open=True)
        shift = _check.integer(augment_shift, "augment_shift", lo=0)
        verbose = _check.integer(verbose, "verbose", 0, 2)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        if optimizer is None:
            optimizer = Adam()
        elif not isinstance(optimizer, Optimizer):
            raise TypeError("optimizer must be an hlr optimizer, not %s" % type(optimizer).__name__)
        callbacks = list(callbacks or [])
        by_kind = {}
        python_cbs = []
        for c in callbacks:
            kind = next((k for k in (cbs.EarlyStopping, cbs.ModelCheckpoint, cbs.ReduceLROnPlateau, cbs.CSVLogger)
                         if isinstance(c, k)), None)
            if kind is None:
                if not callable(getattr(c, "on_epoch_end", None)):
                    raise TypeError("callbacks[%d]: %s has no on_epoch_end method" % (len(python_cbs),
                                                                                      type(c).__name__))
                python_cbs.append(c)
            elif kind in by_kind:
                raise ValueError("fit: give at most one %s" % kind.__name__)
            else:
                by_kind[kind] = c
        if validation_data is not None:
            if validation_split:
                raise ValueError("fit: give validation_split or validation_data, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data must be (x_val, y_val) or (x_val, y_val, lengths_val)")
        loss = _fit_loss(loss)
        ctc = loss == "ctc"
        if ctc and smoothing:
            raise ValueError("fit: label_smoothing applies to cross-entropy, not CTC")
        xb = self._input(x)
        data = self._dataset(xb, y, lengths, "fit", ctc)
        val = None
        if validation_data is not None:
            vx = self._input(validation_data[0], "validation_data[0]")
            val = self._dataset(vx, validation_data[1], validation_data[2] if len(validation_data) == 3 else None,
                                "fit: validation_data", ctc)
        weights = self._class_weights(class_weight) if class_weight is not None else None
        optimizer._bind(self)
        self._set_loss(_LOSSES[loss], 0.0 if ctc else smoothing)

        history, failure, stopped = cbs.History(), [], []
        progress = cbs.ProgressBar(verbose) if verbose else None

        def on_epoch(stats, _user):
            try:
                record = stats.contents.as_dict()
                history.append(record)
                if progress is not None:
                    progress.on_epoch(record)
                stop = bool(callback is not None and callback(dict(record)))
                for c in python_cbs:
                    stop = bool(c.on_epoch_end(record["epoch"], dict(record))) or stop
                if stop:
                    stopped.append(True)
                return int(stop)
            except BaseException as e:  # carried out of C and raised below
                failure.append(e)
                return 1

        def on_batch(stats, _user):
            try:
                progress.on_batch(stats.contents)
                return 0
            except BaseException as e:
                failure.append(e)
                return 1

        opts = FitOptions()
        lib.hlr_fit_options_default(ctypes.byref(opts))
        opts.epochs = epochs
        opts.batch_size = batch_size
        opts.shuffle = int(shuffle)
        opts.validation_split = validation_split
        opts.augment_shift = shift
        cb = EPOCH_FN(on_epoch)
        opts.on_epoch = cb
        bcb = BATCH_FN(on_batch)
        if progress is not None and progress.bar:
            opts.on_batch = bcb
        if val is not None:
            opts.validation_data = val.ptr
        if weights is not None:
            opts.class_weight = weights
            opts.class_weight_count = len(weights)
        monitors = ENUMS["hlr_monitor"]
        es = by_kind.get(cbs.EarlyStopping)
        if es is not None:
            opts.early_stopping.patience = max(es.patience, 1)
            opts.early_stopping.monitor = monitors["HLR_MONITOR_" + es.monitor.upper()]
            opts.early_stopping.min_delta = es.min_delta
            opts.early_stopping.restore_best = int(es.restore_best_weights)
        rp = by_kind.get(cbs.ReduceLROnPlateau)
        if rp is not None:
            opts.reduce_lr.patience = rp.patience
            opts.reduce_lr.monitor = monitors["HLR_MONITOR_" + rp.monitor.upper()]
            opts.reduce_lr.factor = rp.factor
            opts.reduce_lr.min_delta = rp.min_delta
            opts.reduce_lr.min_lr = rp.min_lr
        mc = by_kind.get(cbs.ModelCheckpoint)
        if mc is not None:
            opts.checkpoint.path = mc.filepath
            opts.checkpoint.monitor = monitors["HLR_MONITOR_" + mc.monitor.upper()]
            opts.checkpoint.best_only = int(mc.save_best_only)
        if augment is not None:
            if not isinstance(augment, dict):
                raise TypeError("augment must be a dict, not %s" % type(augment).__name__)
            for key, value in augment.items():
                if key not in ("rotate", "scale", "shear", "elastic_alpha", "elastic_sigma"):
                    raise ValueError("augment: unknown key %r (rotate, scale, shear, elastic_alpha, elastic_sigma)"
                                     % (key,))
                setattr(opts.augment, key, _check.real(value, "augment[%r]" % key, 0.0))
        if adversarial is not None:
            if not isinstance(adversarial, dict):
                raise TypeError("adversarial must be a dict of attack settings, not %s" % type(adversarial).__name__)
            attack_opts = _attack_options(adversarial, "fit")
            opts.adversarial = ctypes.pointer(attack_opts)
            opts.adversarial_fraction = _check.real(adversarial_fraction, "adversarial_fraction", 0.0)
        csv = by_kind.get(cbs.CSVLogger)
        if csv is not None:
            opts.csv_log = csv.filename
            opts.csv_append = int(csv.append)
        try:
            status = lib.hlr_model_fit(self._ptr, optimizer._ptr, data.ptr, ctypes.byref(opts))
        finally:
            data.release()
            if val is not None:
                val.release()
            self._lengths_set = False  # fit returns with none set
        if failure:
            raise failure[0]
        if not (status == HLR_ECANCELLED and stopped):
            check(status, "fit")
        self._ran(xb)
        self._last_batch = None  # fit's last batch size is not known here
        return history

    def _class_weights(self, class_weight):
        """class_weight ({class: weight} or a sequence) as a ctypes float array, one per class."""
        n = self._classes()
        if isinstance(class_weight, dict):
            w = [1.0] * n
            for k, v in class_weight.items():
                k = _check.integer(k, "class_weight key", 0, n - 1)
                w[k] = _check.real(v, "class_weight[%d]" % k, 0.0)
        else:
            try:
                items = list(class_weight)
            except TypeError:
                raise TypeError("class_weight must be a dict or a sequence of weights") from None
            if len(items) != n:
                raise ValueError("class_weight has %d weights, the model has %d classes" % (len(items), n))
            w = [_check.real(v, "class_weight[%d]" % i, 0.0) for i, v in enumerate(items)]
        return (ctypes.c_float * n)(*w)

    @property
    def temperature(self):
        """The temperature predict() divides the logits by (1: none; see fit_temperature)."""
        return lib.hlr_model_temperature(self._ptr)

    @temperature.setter
    def temperature(self, t):
        check(lib.hlr_model_set_temperature(self._ptr, float(t)), "temperature")

    def fit_temperature(self, x, y, batch_size=256):
        """Temperature scaling (Guo et al. 2017): fit T on held-out (x, y) by minimising the NLL of
        softmax(logits / T), set it (predict() applies it, save() keeps it) and return it.  The
        classes predict() gives, so the accuracy, do not change."""
        batch_size = _check.integer(batch_size, "batch_size")
        xb = self._input(x)
        data = self._dataset(xb, y, None, "fit_temperature", False)
        t = ctypes.c_double()
        try:
            check(lib.hlr_model_fit_temperature(self._ptr, data.ptr, batch_size, ctypes.byref(t)), "fit_temperature")
        finally:
            data.release()
        self._ran(xb)
        self._last_batch = None
        return t.value

    def calibration(self, x, y, batch_size=256, bins=15):
        """The calibration of predict()'s probabilities on (x, y), the temperature applied: a dict as
        hlr.metrics.calibration gives (ece, mce, nll, brier, accuracy, count and the bins)."""
        from .metrics import _calibration_dict
        batch_size = _check.integer(batch_size, "batch_size")
        bins = _check.integer(bins, "bins")
        if not 1 <= bins <= 100:
            raise ValueError("calibration: bins must be in 1..100, got %d" % bins)
        xb = self._input(x)
        data = self._dataset(xb, y, None, "calibration", False)
        c = Calibration()
        counts, conf, acc = (ctypes.c_int64 * bins)(), (ctypes.c_double * bins)(), (ctypes.c_double * bins)()
        try:
            check(lib.hlr_model_calibration(self._ptr, data.ptr, batch_size, bins, ctypes.byref(c), counts, conf, acc),
                  "calibration")
        finally:
            data.release()
        self._ran(xb)
        self._last_batch = None
        return _calibration_dict(c, counts, conf, acc)

    def evaluate(self, x, y, batch_size=256, top_k=1, lengths=None, *, loss="cross_entropy"):
        """Inference on (x, y): a dict with loss (mean cross-entropy), accuracy,
        top_k_accuracy, top_k, count and confusion (classes x classes counts,
        row = true class, column = predicted).  loss="ctc" (y label sequences
        padded with -1, lengths the widths, as fit): loss (mean CTC loss),
        accuracy (whole sequences read right by best path), cer (character
        error rate) and count."""
        batch_size = _check.integer(batch_size, "batch_size")
        top_k = _check.integer(top_k, "top_k")
        ctc = _fit_loss(loss) == "ctc"
        xb = self._input(x)
        data = self._dataset(xb, y, lengths, "evaluate", ctc)
        if ctc:
            self._set_loss(_LOSSES["ctc"], 0.0)
            confusion, caddr = None, None
        else:
            c = self._classes()
            confusion, caddr = _arrays.empty_int64((c, c))
        m = Metrics()
        try:
            check(lib.hlr_model_evaluate(self._ptr, data.ptr, batch_size, top_k, ctypes.byref(m), caddr), "evaluate")
        finally:
            data.release()
            self._lengths_set = False
        self._ran(xb)
        self._last_batch = None
        if ctc:
            return {"loss": m.loss, "accuracy": m.accuracy, "cer": m.cer, "count": m.count}
        return {"loss": m.loss, "accuracy": m.accuracy, "top_k_accuracy": m.top_k_accuracy, "top_k": m.top_k,
                "count": m.count, "confusion": confusion}

    def _predict(self, x, batch_size, want_probs, want_classes, lengths):
        batch_size = _check.integer(batch_size, "batch_size")
        xb = self._input(x)
        n = xb.shape[0]
        lb = self._lengths_arg(lengths, n)
        c = self._classes()
        probs, pb = empty((n, c)) if want_probs else (None, None)
        classes, kb = empty((n,), HLR_I32) if want_classes else (None, None)
        per = xb.numel // n
        ptr = self._ptr
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            if lb is not None:
                self._apply_lengths(Buf(lb.addr + start * _ELEM, (m,), HLR_I32, lb.keep), m)
            else:
                self._apply_lengths(None, m)
            with Tensors() as t:
                xt = t.wrap(Buf(xb.addr + start * per * _ELEM, (m,) + xb.shape[1:], xb.dtype, xb.keep))
                pt = t.wrap(Buf(pb.addr + start * c * _ELEM, (m, c), HLR_F32, pb.keep)) if want_probs else None
                kaddr = kb.addr + start * _ELEM if want_classes else None
                check(lib.hlr_model_predict(ptr, xt, kaddr, pt), "predict")
            self._ran(Buf(0, (m,) + xb.shape[1:], xb.dtype, None))
        return probs, classes

    def predict(self, x, batch_size=256, lengths=None):
        """Softmax probabilities (N, classes) for a batch x, computed batch_size samples at a time."""
        return self._predict(x, batch_size, True, False, lengths)[0]

    def predict_classes(self, x, batch_size=256, lengths=None):
        """The arg-max class (int32, N) for each sample of x."""
        return self._predict(x, batch_size, False, True, lengths)[1]

    # -- files, metadata, serving --------------------------------------------

    def _save_options(self, optimizer, compression, training_state):
        from .optim import Optimizer as _Opt

        compression = _check.integer(compression, "compression", lo=0, hi=9)
        training_state = _check.boolean(training_state, "training_state")
        opts = SaveOptions()
        lib.hlr_save_options_default(ctypes.byref(opts))
        opts.compression = compression
        opts.training_state = int(training_state)
        if optimizer is not None:
            if not isinstance(optimizer, _Opt):
                raise TypeError("optimizer must be an hlr optimizer, not %s" % type(optimizer).__name__)
            if optimizer._model_h is not None and optimizer._model_h is not self._handle():
                raise ValueError("the optimizer trains another model")
            opts.optimizer = optimizer._ptr
        return opts

    def save(self, path, optimizer=None, compression=6, training_state=True):
        """Write the built model to path (docs/format.md), atomically: a crash
        leaves the old file or none, never a partial one.

        optimizer: also save its state, so training can resume after
        hlr.load(path, return_optimizer=True).  compression: zlib level
        0-9.  training_state: also save the random generator and epoch
        counters.
        """
        opts = self._save_options(optimizer, compression, training_state)
        check(lib.hlr_model_save(self._ptr, _path(path), ctypes.byref(opts)), "save")

    def export_onnx(self, path=None):
        """The built model as ONNX (opset 17, hlr_model_export_onnx): written to path, or returned as bytes
        when path is None.  Input "input" (N, input_shape), output "logits"; the metadata holds the class
        names and the temperature.  Raises HlrError EUNSUPPORTED naming a layer that has no export yet.
        """
        if path is not None:
            check(lib.hlr_model_export_onnx(self._ptr, _path(path), 0), "export_onnx")
            return None
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(lib.hlr_model_export_onnx_buffer(self._ptr, 0, ctypes.byref(data), ctypes.byref(size)), "export_onnx")
        try:
            return ctypes.string_at(data, size.value)
        finally:
            lib.hlr_buffer_free(data)

    def input_gradient(self, x, target=None, loss=False):
        """d(score)/dx for a batch x, with the model as predict() sees it (batch norm's running
        statistics, no dropout; nothing a prediction depends on changes).  The score is the logit
        of `target` (a class index, or one per sample; None: each sample's predicted class), or
        with loss=True the sample's cross-entropy loss against label `target`.  Returns an array
        shaped like x.  For saliency maps and adversarial examples."""
        xb = self._input(x)
        n = xb.shape[0]
        targets = None
        if target is not None:
            if isinstance(target, int) and not isinstance(target, bool):
                target = [target] * n
            tb = as_input(target, HLR_I32, "target")
            if tb.shape != (n,):
                raise ValueError("input_gradient: target must be a class or one per sample (%d), got shape %s"
                                 % (n, tb.shape))
            _check_labels(tb, self._classes(), "input_gradient")
            targets = ctypes.cast(tb.addr, ctypes.POINTER(ctypes.c_int32))
            keep = tb  # alive through the call
        elif loss:
            raise ValueError("input_gradient: loss=True needs the labels as target")
        out, gb = empty(xb.shape)
        with Tensors() as t:
            check(lib.hlr_model_input_gradient(self._ptr, t.wrap(xb), targets, int(bool(loss)), t.wrap(gb)),
                  "input_gradient")
        if target is not None:
            del keep
        return out

    def attack(self, x, y, eps=0.1, steps=1, step_size=0.0, random_start=False, clip=(0.0, 1.0), seed=0):
        """Adversarial examples of (x, y) within the L-infinity ball of radius eps and the range clip:
        FGSM for steps=1, else PGD (step_size 0: 2.5 eps / steps), from a random point of the ball
        with random_start.  Returns an array shaped like x."""
        xb = self._input(x)
        yb = as_input(y, HLR_I32, "y")
        if yb.shape != (xb.shape[0],):
            raise ValueError("attack: y must hold one label per sample (%d), got shape %s" % (xb.shape[0], yb.shape))
        _check_labels(yb, self._classes(), "attack")
        o = _attack_options(dict(eps=eps, steps=steps, step_size=step_size, random_start=random_start, clip=clip,
                                 seed=seed), "attack")
        out, ab = empty(xb.shape)
        with Tensors() as t:
            check(lib.hlr_model_attack(self._ptr, t.wrap(xb), ctypes.cast(yb.addr, ctypes.POINTER(ctypes.c_int32)),
                                       ctypes.byref(o), t.wrap(ab)), "attack")
        del yb
        return out

    def robust_accuracy(self, x, y, eps=0.1, steps=20, step_size=0.0, random_start=True, clip=(0.0, 1.0), seed=0,
                        batch_size=256):
        """The fraction of (x, y) still classified right under attack() with these settings."""
        batch_size = _check.integer(batch_size, "batch_size")
        o = _attack_options(dict(eps=eps, steps=steps, step_size=step_size, random_start=random_start, clip=clip,
                                 seed=seed), "robust_accuracy")
        xb = self._input(x)
        data = self._dataset(xb, y, None, "robust_accuracy", False)
        acc = ctypes.c_double()
        try:
            check(lib.hlr_model_robust_accuracy(self._ptr, data.ptr, batch_size, ctypes.byref(o), ctypes.byref(acc)),
                  "robust_accuracy")
        finally:
            data.release()
        self._ran(xb)
        self._last_batch = None
        return acc.value

    _EXPLAIN = {"saliency": 0, "smoothgrad": 1, "integrated_gradients": 2, "ig": 2, "gradcam": 3}

    def explain(self, x, target=None, method="saliency", steps=32, noise=0.15, baseline=None, layer=-1, seed=0):
        """Where the model looks: an attribution map shaped like x, for the logit of `target` (a class,
        or one per sample; None: each sample's predicted class).  method: "saliency" (|d score/dx|),
        "smoothgrad" (its mean over `steps` copies with noise of `noise` times the sample's range),
        "integrated_gradients" or "ig" (from `baseline`, zeros by default, over `steps` path points:
        they add up to score(x) - score(baseline)), "gradcam" (conv2d layer `layer`, -1 the last,
        upsampled to the input and repeated over its channels)."""
        if method not in self._EXPLAIN:
            raise ValueError("explain: method must be one of %s, got %r" % (sorted(self._EXPLAIN), method))
        xb = self._input(x)
        n = xb.shape[0]
        targets, keep = None, []
        if target is not None:
            if isinstance(target, int) and not isinstance(target, bool):
                target = [target] * n
            tb = as_input(target, HLR_I32, "target")
            if tb.shape != (n,):
                raise ValueError("explain: target must be a class or one per sample (%d), got shape %s"
                                 % (n, tb.shape))
            _check_labels(tb, self._classes(), "explain")
            targets = ctypes.cast(tb.addr, ctypes.POINTER(ctypes.c_int32))
            keep.append(tb)
        o = ExplainOptions()
        lib.hlr_explain_options_default(ctypes.byref(o))
        o.method = self._EXPLAIN[method]
        o.steps = _check.integer(steps, "steps")
        o.noise = float(noise)
        o.layer = _check.integer(layer, "layer", lo=-1)
        o.seed = _check.integer(seed, "seed", lo=0, hi=2**64 - 1)
        out, mb = empty(xb.shape)
        with Tensors() as t:
            if baseline is not None:
                bb = as_input(baseline, HLR_F32, "baseline")
                keep.append(bb)
                o.baseline = t.wrap(bb)
            check(lib.hlr_model_explain(self._ptr, t.wrap(xb), targets, ctypes.byref(o), t.wrap(mb)), "explain")
        del keep
        return out

    def __reduce__(self):
        """pickle (and copy.deepcopy) through the model file format: architecture, parameters,
        batch-norm statistics, metadata and training state, not an optimizer (save one with
        save(path, optimizer=...)).  Frozen layers come back trainable, as in a file."""
        if not self._built:
            raise TypeError("cannot pickle an unbuilt Model: build it first (input_shape=...)")
        from .files import load_bytes

        return (load_bytes, (self.to_bytes(),))

    def to_bytes(self, optimizer=None, compression=6, training_state=True):
        """The bytes save() would write (hlr.load_bytes reads them)."""
        opts = self._save_options(optimizer, compression, training_state)
        data = ctypes.c_void_p()
        size = ctypes.c_size_t()
        check(lib.hlr_model_save_buffer(self._ptr, ctypes.byref(opts), ctypes.byref(data), ctypes.byref(size)))
        try:
            return ctypes.string_at(data.value, size.value)
        finally:
            lib.hlr_buffer_free(data)

    @property
    def metadata(self):
        """The model's metadata (data set, class names, key/value strings, history); saved with it."""
        from .files import Metadata

        self._handle()
        return Metadata(self)

    def fit_settings(self):
        """The settings of the last fit() (also through a file, format 1.2): a dict of batch_size,
        shuffle, validation_split, augment_shift and augment (rotate, scale, shear, elastic_alpha,
        elastic_sigma), which fit() takes back to resume alike; None when the model has not been
        fitted."""
        o = FitOptions()
        st = lib.hlr_model_fit_settings(self._ptr, ctypes.byref(o))
        if st == ENUMS["hlr_status"]["HLR_ENOTFOUND"]:
            return None
        check(st)
        a = o.augment
        return {"batch_size": o.batch_size, "shuffle": bool(o.shuffle), "validation_split": o.validation_split,
                "augment_shift": o.augment_shift,
                "augment": {"rotate": a.rotate, "scale": a.scale, "shear": a.shear, "elastic_alpha": a.elastic_alpha,
                            "elastic_sigma": a.elastic_sigma}}

    @property
    def epochs_trained(self):
        """Epochs fit() has completed on this model, earlier processes included (through files)."""
        return lib.hlr_model_epochs_trained(self._ptr)

    def clone_shared(self):
        """An inference-only model sharing this model's weights (no copy), with its
        own buffers: one per thread lets several threads predict at once.  It
        keeps this model's memory alive; do not train this model while clones
        are in use."""
        clone = Model._adopt(check_ptr(lib.hlr_model_clone_shared(self._ptr)))
        clone._h._after = self._handle()  # freed after the clone, as the C API requires
        return clone


def _path(path, what="path"):
    if isinstance(path, bytes):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError("%s must be a str or os.PathLike, not %s" % (what, type(path).__name__))
    return os.fsencode(path)


__all__ = ["Model"]

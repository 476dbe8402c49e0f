"""Optimizers with torch.optim's names, arguments and update rules.

An optimizer keeps per-parameter state for the first model it steps and
refuses any other (ValueError); create one per model.  It keeps that model's
memory alive, so the state can never point at a freed model.
"""

from . import _check
from ._capi import ENUMS, lib
from ._errors import check, check_ptr
from ._handle import Owner

_SCHEDULES = {
    "constant": ENUMS["hlr_schedule_kind"]["HLR_SCHEDULE_CONSTANT"],
    "step": ENUMS["hlr_schedule_kind"]["HLR_SCHEDULE_STEP"],
    "cosine": ENUMS["hlr_schedule_kind"]["HLR_SCHEDULE_COSINE"],
}


class Optimizer:
    """Base class: SGD, Adam and AdamW."""

    def __init__(self, ptr, **config):
        self._h = Owner(check_ptr(ptr), lib.hlr_optimizer_free)
        self._config = config
        self._model_h = None  # the Owner of the model it steps, once bound

    @classmethod
    def _adopt(cls, ptr, model):
        """An Optimizer object for a C optimizer bound to model (from a model file)."""
        self = cls.__new__(cls)
        self._h = Owner(ptr, lib.hlr_optimizer_free)
        self._config = {}
        self._model_h = model._handle()
        return self

    @property
    def _ptr(self):
        if self._h is None or self._h.ptr is None:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._h.ptr

    def _bind(self, model):
        """Check that model is the one this optimizer steps (binding it on first use)."""
        h = model._handle()
        if self._model_h is None:
            self._model_h = h
        elif self._model_h is not h:
            raise ValueError("%s already steps another model; create one optimizer per model" % type(self).__name__)

    def step(self, model):
        """Update every parameter of model from its gradient (after Model.backward)."""
        self._bind(model)
        check(lib.hlr_optimizer_step(self._ptr, model._ptr))

    def zero_grad(self):
        """Nothing to do: the library's backward pass overwrites gradients.  Here for torch habits."""

    @property
    def lr(self):
        """The learning rate the next step will use (after schedule and warm-up).  Setting it
        changes the base rate (the constructor's), which a schedule still multiplies."""
        return lib.hlr_optimizer_lr(self._ptr)

    @lr.setter
    def lr(self, value):
        check(lib.hlr_optimizer_set_lr(self._ptr, _check.real(value, "lr", 0.0, lo_open=True)))

    @property
    def steps(self):
        """How many updates it has made."""
        return lib.hlr_optimizer_steps(self._ptr)

    def clip_grad_norm(self, max_norm):
        """Clip the global L2 norm of all gradients to max_norm before each step (0 disables)."""
        m = _check.real(max_norm, "max_norm", 0.0)
        check(lib.hlr_optimizer_set_clip_norm(self._ptr, m))
        return self

    def set_schedule(self, kind, step_size=None, gamma=0.1, T_max=None, eta_min=0.0, warmup_steps=0,
                     warmup_start=1.0):
        """Learning-rate schedule: 'constant', 'step' (StepLR: step_size, gamma) or
        'cosine' (CosineAnnealingLR: T_max, eta_min), times a linear warm-up from
        warmup_start to 1 over warmup_steps.  fit() advances it once per epoch;
        schedule_step() advances it by hand."""
        kind = _check.choice(kind, "kind", tuple(_SCHEDULES))
        a = b = 0.0
        if kind == "step":
            if step_size is None:
                raise TypeError("set_schedule('step') needs step_size")
            a = _check.integer(step_size, "step_size")
            b = _check.real(gamma, "gamma", 0.0, lo_open=True)
        elif kind == "cosine":
            if T_max is None:
                raise TypeError("set_schedule('cosine') needs T_max")
            a = _check.integer(T_max, "T_max")
            b = _check.real(eta_min, "eta_min", 0.0)
        w = _check.integer(warmup_steps, "warmup_steps", lo=0)
        ws = _check.real(warmup_start, "warmup_start", 0.0, 1.0, lo_open=True)
        check(lib.hlr_optimizer_set_schedule(self._ptr, _SCHEDULES[kind], float(a), float(b), w, ws))
        return self

    def schedule_step(self):
        """Advance the schedule by one position."""
        check(lib.hlr_optimizer_schedule_step(self._ptr))

    def close(self):
        """Free the optimizer now (also done by `with` and garbage collection)."""
        if self._h is not None:
            self._h.release()
            self._h = None
        self._model_h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self._config.items()))


class SGD(Optimizer):
    """torch.optim.SGD: momentum, Nesterov and L2 weight decay."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        lr = _check.real(lr, "lr", 0.0, lo_open=True)
        mom = _check.real(momentum, "momentum", 0.0, 1.0, hi_open=True)
        nest = _check.boolean(nesterov, "nesterov")
        wd = _check.real(weight_decay, "weight_decay", 0.0)
        if nest and mom == 0.0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        super().__init__(lib.hlr_sgd(lr, mom, int(nest), wd), lr=lr, momentum=mom, nesterov=nest, weight_decay=wd)


def _adam_args(lr, betas, eps, weight_decay):
    lr = _check.real(lr, "lr", 0.0, lo_open=True)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError("betas must be a pair of numbers, e.g. (0.9, 0.999)")
    b1 = _check.real(betas[0], "betas[0]", 0.0, 1.0, hi_open=True)
    b2 = _check.real(betas[1], "betas[1]", 0.0, 1.0, hi_open=True)
    eps = _check.real(eps, "eps", 0.0, lo_open=True)
    wd = _check.real(weight_decay, "weight_decay", 0.0)
    return lr, b1, b2, eps, wd


class Adam(Optimizer):
    """torch.optim.Adam (weight decay added to the gradient)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        lr, b1, b2, eps, wd = _adam_args(lr, betas, eps, weight_decay)
        super().__init__(lib.hlr_adam(lr, b1, b2, eps, wd), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)


class AdamW(Optimizer):
    """torch.optim.AdamW (decoupled weight decay; torch's default 0.01)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        lr, b1, b2, eps, wd = _adam_args(lr, betas, eps, weight_decay)
        super().__init__(lib.hlr_adamw(lr, b1, b2, eps, wd), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]

"""Losses as functions (torch.nn.functional's names)."""

import ctypes

from . import _check
from ._arrays import Tensors, as_input, empty
from ._capi import HLR_F32, HLR_I32, lib
from ._errors import check


def cross_entropy(logits, labels, label_smoothing=0.0, return_grad=False):
    """Softmax cross-entropy of logits (N, C) against int labels (N), mean over N,
    as torch.nn.functional.cross_entropy.  With return_grad, returns
    (loss, dloss/dlogits)."""
    smoothing = _check.real(label_smoothing, "label_smoothing", 0.0, 1.0, hi_open=True)
    return_grad = _check.boolean(return_grad, "return_grad")
    lb = as_input(logits, HLR_F32, "logits")
    yb = as_input(labels, HLR_I32, "labels")
    loss = ctypes.c_float()
    grad, gb = empty(lb.shape) if return_grad else (None, None)
    with Tensors() as t:
        check(lib.hlr_cross_entropy(t.wrap(lb), t.wrap(yb), smoothing, ctypes.byref(loss),
                                    t.wrap(gb) if return_grad else None))
    return (loss.value, grad) if return_grad else loss.value


def mse_loss(input, target, return_grad=False):
    """Mean over all elements of (input - target)^2, as torch.nn.functional.mse_loss.
    With return_grad, returns (loss, dloss/dinput)."""
    return_grad = _check.boolean(return_grad, "return_grad")
    pb = as_input(input, HLR_F32, "input")
    tb = as_input(target, HLR_F32, "target")
    loss = ctypes.c_float()
    grad, gb = empty(pb.shape) if return_grad else (None, None)
    with Tensors() as t:
        check(lib.hlr_mse(t.wrap(pb), t.wrap(tb), ctypes.byref(loss), t.wrap(gb) if return_grad else None))
    return (loss.value, grad) if return_grad else loss.value


__all__ = ["cross_entropy", "mse_loss"]

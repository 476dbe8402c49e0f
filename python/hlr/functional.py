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


_REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}


def _int_rows(values, what):
    buf = as_input(values, HLR_I32, what)
    return buf, (ctypes.c_int32 * buf.numel).from_address(buf.addr) if buf.numel else []


def ctc_loss(logits, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False,
             return_grad=False):
    """Connectionist Temporal Classification, as torch.nn.functional.ctc_loss with the
    log-softmax done here and the batch first: logits (N, T, C); targets (N, S) padded, or one
    sequence of all targets concatenated (as torch accepts); input_lengths and target_lengths one
    per sample.  reduction "mean" (torch's: each loss over its target length, then the mean),
    "sum" or "none" (an array of N losses).  With return_grad, returns (loss, dloss/dlogits) (for
    "none" the gradient of the sum)."""
    red = _REDUCTIONS[_check.choice(reduction, "reduction", tuple(_REDUCTIONS))]
    zero_infinity = _check.boolean(zero_infinity, "zero_infinity")
    return_grad = _check.boolean(return_grad, "return_grad")
    blank = _check.integer(blank, "blank", lo=0)
    lb = as_input(logits, HLR_F32, "logits")
    if len(lb.shape) != 3:
        raise ValueError("logits must be (N, T, C), got shape %s" % (lb.shape,))
    n = lb.shape[0]
    ilb = as_input(input_lengths, HLR_I32, "input_lengths")
    tlb, tl = _int_rows(target_lengths, "target_lengths")
    if ilb.shape != (n,) or tlb.shape != (n,):
        raise ValueError("input_lengths and target_lengths must hold one length per sample (%d)" % n)
    tb = as_input(targets, HLR_I32, "targets")
    if len(tb.shape) == 1:  # concatenated: pad into (N, S)
        flat = (ctypes.c_int32 * tb.numel).from_address(tb.addr) if tb.numel else []
        if sum(tl) != tb.numel:
            raise ValueError("targets holds %d labels, target_lengths add up to %d" % (tb.numel, sum(tl)))
        s = max(max(tl), 1)
        padded, at = [], 0
        for k in tl:
            padded.append(list(flat[at:at + k]) + [0] * (s - k))
            at += k
        tb = as_input(padded, HLR_I32, "targets")
    out, ob = empty((n,) if red == 0 else (1,))
    grad, gb = empty(lb.shape) if return_grad else (None, None)
    with Tensors() as t:
        check(lib.hlr_ctc_loss(t.wrap(lb), t.wrap(ilb), t.wrap(tb), t.wrap(tlb), blank, red, int(zero_infinity),
                               ctypes.cast(ob.addr, ctypes.POINTER(ctypes.c_float)),
                               t.wrap(gb) if return_grad else None), "ctc_loss")
    loss = out if red == 0 else float(out[0])
    return (loss, grad) if return_grad else loss


class Lexicon:
    """A word list for ctc_decode: words as strings (each character's label is its index in
    alphabet) or as sequences of labels."""

    def __init__(self, words=(), alphabet=None):
        from ._handle import Owner
        from ._errors import check_ptr
        self.alphabet = alphabet
        self._h = Owner(check_ptr(lib.hlr_lexicon_new()), lib.hlr_lexicon_free)
        for w in words:
            self.add(w)

    def add(self, word):
        labels = _labels_of(word, self.alphabet, "word")
        arr = (ctypes.c_int32 * max(len(labels), 1))(*labels)
        check(lib.hlr_lexicon_add(self._h.ptr, arr, len(labels)), "Lexicon.add")

    def __len__(self):
        return lib.hlr_lexicon_size(self._h.ptr)


def _labels_of(word, alphabet, what):
    if isinstance(word, str):
        if alphabet is None:
            raise TypeError("%s %r is text: give the alphabet that maps characters to labels" % (what, word))
        try:
            return [alphabet.index(ch) for ch in word]
        except ValueError:
            raise ValueError("%s %r has a character that is not in the alphabet" % (what, word)) from None
    return [_check.integer(v, what + " label", lo=0) for v in word]


def ctc_decode(logits, blank=0, beam_width=0, lexicon=None, alphabet=None):
    """Read one sample's logits (T, C), or each of a batch (N, T, C): beam_width 0 (the default)
    is best path, >= 1 prefix beam search, with a Lexicon only its words.  Returns (labels,
    confidences) per sample, labels as a str when alphabet is given (alphabet[k]: label k's
    character), confidences one per label in (0, 1]."""
    beam_width = _check.integer(beam_width, "beam_width", lo=0)
    blank = _check.integer(blank, "blank", lo=0)
    if lexicon is not None and not isinstance(lexicon, Lexicon):
        raise TypeError("lexicon must be a hlr.functional.Lexicon")
    lb = as_input(logits, HLR_F32, "logits")
    if len(lb.shape) not in (2, 3):
        raise ValueError("logits must be (T, C) or (N, T, C), got shape %s" % (lb.shape,))
    batch = len(lb.shape) == 3
    n = lb.shape[0] if batch else 1
    T, C = lb.shape[-2], lb.shape[-1]
    cap = T
    out, conf, length = (ctypes.c_int32 * cap)(), (ctypes.c_float * cap)(), ctypes.c_int()
    results = []
    for i in range(n):
        addr = lb.addr + i * T * C * 4
        check(lib.hlr_ctc_decode(addr, T, C, blank, beam_width, lexicon._h.ptr if lexicon else None, out, conf,
                                 cap, ctypes.byref(length), None), "ctc_decode")
        labels = list(out[:length.value])
        text = "".join(alphabet[k] for k in labels) if alphabet is not None else labels
        results.append((text, list(conf[:length.value])))
    return results if batch else results[0]


__all__ = ["cross_entropy", "mse_loss", "ctc_loss", "ctc_decode", "Lexicon"]


class CTCLoss:
    """torch.nn.CTCLoss's counterpart: CTCLoss(blank=0, reduction="mean", zero_infinity=False)(logits,
    targets, input_lengths, target_lengths) is ctc_loss(...) with those settings (logits (N, T, C),
    batch first, raw scores).  Model.fit(..., loss=hlr.CTCLoss()) trains a model with it (blank 0,
    reduction "mean"; a model's CTC loss always zeroes impossible alignments, as zero_infinity)."""

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        self.blank = _check.integer(blank, "blank", lo=0)
        self.reduction = _check.choice(reduction, "reduction", tuple(_REDUCTIONS))
        self.zero_infinity = _check.boolean(zero_infinity, "zero_infinity")

    def __call__(self, logits, targets, input_lengths, target_lengths, return_grad=False):
        return ctc_loss(logits, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity, return_grad)

    def __repr__(self):
        return "CTCLoss(blank=%d, reduction=%r, zero_infinity=%s)" % (self.blank, self.reduction, self.zero_infinity)

"""Per-class precision, recall and F1 (the library's hlr_classification_report), as
scikit-learn's classification_report with zero_division=0."""

import ctypes

from ._arrays import HLR_F32, HLR_I32, as_input
from ._capi import Calibration, ClassMetrics, lib
from ._errors import check


def confusion_matrix(y_true, y_pred, num_classes=None):
    """classes x classes counts as nested lists, row = true class, column = predicted."""
    t = as_input(y_true, HLR_I32, "y_true")
    p = as_input(y_pred, HLR_I32, "y_pred")
    if len(t.shape) != 1 or t.shape != p.shape:
        raise ValueError("y_true and y_pred must be two 1-D sequences of one length, got shapes %s and %s"
                         % (t.shape, p.shape))
    n = t.shape[0]
    tv = (ctypes.c_int32 * n).from_address(t.addr)
    pv = (ctypes.c_int32 * n).from_address(p.addr)
    top = max(max(tv), max(pv)) + 1
    c = top if num_classes is None else num_classes
    if min(min(tv), min(pv)) < 0 or top > c:
        raise ValueError("labels must lie in [0, %d)" % c)
    conf = [[0] * c for _ in range(c)]
    for a, b in zip(tv, pv):
        conf[a][b] += 1
    return conf


def classification_report(y_true=None, y_pred=None, *, confusion=None, target_names=None, output_dict=False,
                          digits=2):
    """Per-class precision, recall, F1 and support, with accuracy, macro and weighted averages.

    Give y_true and y_pred (class indices), or confusion (classes x classes counts, rows = true
    class, as Model.evaluate() returns it).  Returns scikit-learn's text table, or with
    output_dict its dict: {name: {"precision", "recall", "f1-score", "support"}, "accuracy": ...,
    "macro avg": {...}, "weighted avg": {...}}.
    """
    if confusion is None:
        if y_true is None or y_pred is None:
            raise TypeError("give y_true and y_pred, or confusion")
        confusion = confusion_matrix(y_true, y_pred, len(target_names) if target_names is not None else None)
    rows = [list(map(int, r)) for r in confusion]
    c = len(rows)
    if c == 0 or any(len(r) != c for r in rows):
        raise ValueError("confusion must be a square, non-empty matrix of counts")
    names = [str(k) for k in range(c)] if target_names is None else [str(n) for n in target_names]
    if len(names) != c:
        raise ValueError("target_names has %d names for %d classes" % (len(names), c))
    flat = (ctypes.c_int64 * (c * c))(*[v for r in rows for v in r])
    per = (ClassMetrics * c)()
    mac, wei = ClassMetrics(), ClassMetrics()
    check(lib.hlr_classification_report(flat, c, per, ctypes.byref(mac), ctypes.byref(wei)),
          "classification_report")
    total = sum(sum(r) for r in rows)

    def entry(m):
        return {"precision": m.precision, "recall": m.recall, "f1-score": m.f1, "support": m.support}

    report = {names[k]: entry(per[k]) for k in range(c)}
    report["accuracy"] = sum(rows[k][k] for k in range(c)) / total if total else 0.0
    report["macro avg"] = entry(mac)
    report["weighted avg"] = entry(wei)
    if output_dict:
        return report
    width = max(max(len(n) for n in names), len("weighted avg"), digits)
    head = "%*s %9s %9s %9s %9s\n\n" % (width, "", "precision", "recall", "f1-score", "support")
    line = "%*s %9.*f %9.*f %9.*f %9d\n"
    body = "".join(line % (width, n, digits, report[n]["precision"], digits, report[n]["recall"], digits,
                           report[n]["f1-score"], report[n]["support"]) for n in names)
    acc = "\n%*s %9s %9s %9.*f %9d\n" % (width, "accuracy", "", "", digits, report["accuracy"], total)
    avgs = "".join(line % (width, n, digits, report[n]["precision"], digits, report[n]["recall"], digits,
                           report[n]["f1-score"], report[n]["support"]) for n in ("macro avg", "weighted avg"))
    return head + body + acc + avgs


def edit_distance(reference, hypothesis):
    """Levenshtein distance between two sequences (str, or sequences of ints or of words)."""
    ids = {}

    def encode(seq):
        return [ids.setdefault(v, len(ids)) for v in seq]

    a, b = encode(reference), encode(hypothesis)
    ra = (ctypes.c_int32 * max(len(a), 1))(*a)
    rb = (ctypes.c_int32 * max(len(b), 1))(*b)
    d = lib.hlr_edit_distance(ra, len(a), rb, len(b))
    if d < 0:
        from ._errors import HlrError, last_error
        raise HlrError(-2, last_error())
    return d


def _pairs(references, hypotheses):
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError("%d references for %d hypotheses" % (len(references), len(hypotheses)))
    return list(zip(references, hypotheses))


def cer(references, hypotheses):
    """Character error rate: the summed edit distances over the references' total length."""
    pairs = _pairs(references, hypotheses)
    total = sum(len(r) for r, _ in pairs)
    return sum(edit_distance(r, h) for r, h in pairs) / total if total else 0.0


def wer(references, hypotheses):
    """Word error rate: cer over whitespace-separated words."""
    return cer([r.split() for r, _ in _pairs(references, hypotheses)], [h.split() for h in hypotheses])


def string_accuracy(references, hypotheses):
    """The fraction of hypotheses equal to their reference."""
    pairs = _pairs(references, hypotheses)
    return sum(list(r) == list(h) for r, h in pairs) / len(pairs) if pairs else 0.0


__all__ = ["classification_report", "confusion_matrix", "edit_distance", "cer", "wer", "string_accuracy"]


def _calibration_dict(c, counts, conf, acc):
    return {"ece": c.ece, "mce": c.mce, "nll": c.nll, "brier": c.brier, "accuracy": c.accuracy, "count": c.count,
            "bins": c.bins, "bin_count": list(counts), "bin_confidence": list(conf), "bin_accuracy": list(acc)}


def calibration(probs, labels, bins=15):
    """How well probabilities (n, C) match the labels (n): a dict with ece and mce (expected and maximum
    calibration error over `bins` equal-width confidence bins, Guo et al. 2017), nll, brier, accuracy,
    count, and the reliability diagram's bin_count, bin_confidence and bin_accuracy."""
    p = as_input(probs, HLR_F32, "probs")
    y = as_input(labels, HLR_I32, "labels")
    if len(p.shape) != 2 or len(y.shape) != 1 or p.shape[0] != y.shape[0]:
        raise ValueError("calibration: probs must be (n, C) and labels (n,), got shapes %s and %s" % (p.shape, y.shape))
    if not isinstance(bins, int) or not 1 <= bins <= 100:
        raise ValueError("calibration: bins must be an integer in 1..100, got %r" % (bins,))
    c = Calibration()
    counts, conf, acc = (ctypes.c_int64 * bins)(), (ctypes.c_double * bins)(), (ctypes.c_double * bins)()
    check(lib.hlr_calibration_metrics(p.addr, y.addr, p.shape[0], p.shape[1], bins, ctypes.byref(c), counts, conf,
                                      acc), "calibration")
    return _calibration_dict(c, counts, conf, acc)

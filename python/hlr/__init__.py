"""hlr -- Python bindings of libhlr, a C library for training and running
neural networks for handwriting recognition.

    import hlr
    (x, y), (xt, yt) = hlr.load_mnist("data/mnist")
    model = hlr.Model([hlr.Flatten(), hlr.Dense(784, 128), hlr.ReLU(), hlr.Dense(128, 10)],
                      input_shape=(1, 28, 28), seed=0)
    model.fit(x, y, epochs=1, batch_size=64, optimizer=hlr.Adam(1e-3))
    print(model.evaluate(xt, yt)["accuracy"])

Names follow PyTorch (layers, optimizers, state_dict names); training
follows Keras (fit, evaluate, predict).  The library is found through
$HLR_LIBRARY, then the build tree (../../lib from this package), then the
system.  NumPy arrays pass without a copy when they are C-contiguous
float32 (int32 for labels); without NumPy the package takes array.array,
memoryviews and nested lists and returns memoryviews.
"""

from . import _capi
from ._arrays import HAVE_NUMPY
from ._capi import ENUMS as _ENUMS
from ._capi import LOG_FN as _LOG_FN
from ._capi import lib as _lib
from ._errors import HlrError, last_error, strerror
from .data import decode_image, load_iam, load_idx, load_image, load_lines, load_mnist
from .files import Metadata, import_onnx, inspect, load, load_bytes
from .functional import CTCLoss, Lexicon, cross_entropy, ctc_decode, ctc_loss, mse_loss
from .layers import (GELU, GRU, LSTM, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Dropout, Embedding,
                     FeatureMapColumns, FeatureMapRows, Flatten, GlobalAvgPool2d, ImageRows, Layer, LayerNorm, LeakyReLU, Linear,
                     MaxPool2d, MultiheadAttention, ReLU, SeqLast, SeqMax, SeqMean, Sigmoid, Softmax, Tanh,
                     PositionalEncoding, PatchEmbedding, ClassToken, SeqFirst, TransformerEncoderLayer)
from .model import Model
from .metrics import calibration, cer, classification_report, confusion_matrix, edit_distance, string_accuracy, wer
from . import callbacks
from .callbacks import History
from .optim import SGD, Adam, AdamW, Optimizer
from . import _check

__version__ = _lib.hlr_version().decode()

# Status codes: hlr.EINVAL, hlr.ESHAPE, ... (HlrError.code is one of them).
for _name, _value in _ENUMS["hlr_status"].items():
    globals()[_name[len("HLR_"):]] = _value
del _name, _value

library_path = _lib.path


def version():
    """The version string of the loaded libhlr."""
    return _lib.hlr_version().decode()


def set_num_threads(n):
    """Threads for the library's arithmetic (OpenBLAS's pool); global."""
    from ._errors import check

    check(_lib.hlr_set_num_threads(_check.integer(n, "n", 1, 1024)))


def get_num_threads():
    return _lib.hlr_get_num_threads()


_log_callback = None  # the ctypes function object must outlive its installation


def set_log_callback(fn):
    """Receive the library's log messages as fn(level, message) (level 0 debug,
    1 info, 2 warning); None removes it.  Exceptions in fn are ignored."""
    global _log_callback
    if fn is None:
        _lib.hlr_set_log_callback(_LOG_FN(), None)
        _log_callback = None
        return
    if not callable(fn):
        raise TypeError("fn must be callable or None")

    def trampoline(level, message, _user):
        try:
            fn(level, message.decode("utf-8", "replace"))
        except Exception:
            pass

    cb = _LOG_FN(trampoline)
    _lib.hlr_set_log_callback(cb, None)
    _log_callback = cb


__all__ = [
    "HlrError", "strerror", "last_error", "version", "set_num_threads", "get_num_threads", "set_log_callback",
    "HAVE_NUMPY", "library_path",
    "Layer", "Dense", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout", "Flatten",
    "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "BatchNorm2d", "BatchNorm1d", "LSTM", "GRU", "Embedding",
    "ImageRows", "FeatureMapRows", "FeatureMapColumns", "SeqLast", "SeqMean", "SeqMax", "MultiheadAttention", "LayerNorm",
    "PositionalEncoding", "PatchEmbedding", "ClassToken", "SeqFirst", "TransformerEncoderLayer",
    "Model", "callbacks", "History", "calibration", "classification_report", "confusion_matrix", "edit_distance", "cer", "wer", "string_accuracy", "Optimizer", "SGD", "Adam", "AdamW",
    "load_idx", "load_mnist", "load_image", "decode_image", "cross_entropy", "mse_loss", "ctc_loss", "ctc_decode", "Lexicon", "CTCLoss", "load_lines", "load_iam", "load", "load_bytes", "import_onnx", "inspect", "Metadata",
] + [n[len("HLR_"):] for n in _ENUMS["hlr_status"]]

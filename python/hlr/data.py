"""Data sets: MNIST's idx files (raw or gzipped) into arrays."""

import ctypes
import os

from ._arrays import empty
from ._capi import HLR_I32, lib
from ._errors import check_ptr
from ._handle import Owner


def _fspath(path, what):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("%s must be a str or os.PathLike, not %s" % (what, type(path).__name__))
    return os.fsencode(path)


def load_idx(images_path, labels_path):
    """Read an idx image file and its idx label file (each raw or .gz).

    Returns (x, y): x float32 (N, 1, rows, cols) scaled to [0, 1], y int32
    (N).  Raises HlrError (EIO, EFORMAT) for missing or malformed files.
    """
    ip = _fspath(images_path, "images_path")
    lp = _fspath(labels_path, "labels_path")
    d = Owner(check_ptr(lib.hlr_dataset_load_idx(ip, lp)), lib.hlr_dataset_free)
    try:
        n = lib.hlr_dataset_size(d.ptr)
        sample = tuple(lib.hlr_dataset_sample_dim(d.ptr, i) for i in range(lib.hlr_dataset_sample_ndim(d.ptr)))
        x, xb = empty((n,) + sample)
        y, yb = empty((n,), HLR_I32)
        ctypes.memmove(xb.addr, lib.hlr_dataset_inputs(d.ptr), xb.numel * 4)
        ctypes.memmove(yb.addr, lib.hlr_dataset_labels(d.ptr), n * 4)
    finally:
        d.release()
    return x, y


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return os.path.join(directory, stem + ".gz")  # the library reports it missing (EIO)


def load_mnist(directory=None):
    """MNIST from a folder of its four idx files (raw or .gz), as Keras returns it:

        (x_train, y_train), (x_test, y_test) = hlr.load_mnist("data/mnist")

    x: float32 (N, 1, 28, 28) in [0, 1]; y: int32 (N).  The folder defaults
    to $HLR_DATA_DIR, else data/mnist.
    """
    if directory is None:
        directory = os.environ.get("HLR_DATA_DIR") or "data/mnist"
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise TypeError("directory must be a str or os.PathLike, not %s" % type(directory).__name__)
    directory = os.fsdecode(directory)
    train = load_idx(_find(directory, "train-images-idx3-ubyte"), _find(directory, "train-labels-idx1-ubyte"))
    test = load_idx(_find(directory, "t10k-images-idx3-ubyte"), _find(directory, "t10k-labels-idx1-ubyte"))
    return train, test


__all__ = ["load_idx", "load_mnist"]

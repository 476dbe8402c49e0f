"""Data sets: MNIST's idx files (raw or gzipped) into arrays; pictures (PNG, PGM) into images."""

import ctypes
import os

from . import _check
from ._arrays import empty
from ._capi import DEFINES, HLR_I32, lib
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


def load_lines(labels_path, alphabet, height=32, pad=2, width=0, ink=None):
    """Read a labels file of lines NAME<TAB>TEXT (images relative to its folder) for a CTC model.

    Each PNG or PGM picture is made ink-bright, cropped to its ink, scaled
    to height - 2 pad pixels high (aspect kept) and given pad pixels of
    paper around; pictures narrower than width (0: the widest) are padded
    on the right.  Each character of TEXT becomes label k + 1 for the k-th
    character of alphabet (0 is the blank).  Returns (x, targets, widths):
    x float32 (N, 1, height, width), targets int32 (N, S) padded with -1,
    widths int32 (N), what fit(..., loss="ctc", lengths=widths) takes.
    Raises HlrError naming the file and line (EIO, EFORMAT).
    """
    lp = _fspath(labels_path, "labels_path")
    args = _line_args(alphabet, height, pad, width, ink)
    return _sequences(lib.hlr_dataset_load_lines(lp, *args))


def load_iam(index_path, image_dir, alphabet, height=32, pad=2, width=0, ink=None):
    """Read the IAM Handwriting Database's words or lines for a CTC model.

    index_path is IAM's ascii/words.txt or ascii/lines.txt, image_dir its
    words/ or lines/ folder (the picture of a01-000u-00-00 is
    image_dir/a01/a01-000u/a01-000u-00-00.png); the '|' between the words
    of lines.txt reads as a space.  Lines marked err and pictures that cannot
    be decoded are skipped.  The pictures and texts become what load_lines
    gives.  Returns (x, targets, widths, skipped).  docs/words.md has the
    recipe; IAM itself is free for research after registering.
    """
    ip = _fspath(index_path, "index_path")
    dp = _fspath(image_dir, "image_dir")
    args = _line_args(alphabet, height, pad, width, ink)
    skipped = ctypes.c_int64()
    x, targets, widths = _sequences(lib.hlr_dataset_load_iam(ip, dp, *args, ctypes.byref(skipped)))
    return x, targets, widths, skipped.value


def _line_args(alphabet, height, pad, width, ink):
    if not isinstance(alphabet, str):
        raise TypeError("alphabet must be a str, not %s" % type(alphabet).__name__)
    height = _check.integer(height, "height", 1, 4096)
    pad = _check.integer(pad, "pad", lo=0)
    width = _check.integer(width, "width", lo=0)
    if ink is not None:
        _check.choice(ink, "ink", ("dark", "light"))
    return alphabet.encode("utf-8"), height, pad, width, _INK_FLAGS[ink]


def _sequences(ptr):
    """A sequence data set's (x, targets, widths), copied out; the data set is freed."""
    d = Owner(check_ptr(ptr), lib.hlr_dataset_free)
    try:
        n = lib.hlr_dataset_size(d.ptr)
        sample = tuple(lib.hlr_dataset_sample_dim(d.ptr, i) for i in range(lib.hlr_dataset_sample_ndim(d.ptr)))
        s = ctypes.c_int()
        taddr = lib.hlr_dataset_targets(d.ptr, ctypes.byref(s))
        x, xb = empty((n,) + sample)
        targets, tb = empty((n, s.value), HLR_I32)
        widths, wb = empty((n,), HLR_I32)
        ctypes.memmove(xb.addr, lib.hlr_dataset_inputs(d.ptr), xb.numel * 4)
        ctypes.memmove(tb.addr, taddr, tb.numel * 4)
        ctypes.memmove(wb.addr, lib.hlr_dataset_lengths(d.ptr), n * 4)
    finally:
        d.release()
    return x, targets, widths


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


_INK_FLAGS = {None: 0, "dark": DEFINES["HLR_IMAGE_DARK_INK"], "light": DEFINES["HLR_IMAGE_LIGHT_INK"]}


def load_image(path, mnist=False, ink=None):
    """Read a PNG or PGM picture as one grey image, float32 (1, H, W) in [0, 1], white = 1.

    PNG of any colour type and bit depth, PGM P5 or P2: colour becomes
    luminance (0.299 R + 0.587 G + 0.114 B), transparency white paper.
    With mnist=True the picture of one digit is made to look like MNIST's
    images, for a model trained on them: ink bright on black, cropped to
    the ink, scaled to fit 20 x 20 and put in 28 x 28 with its centre of
    mass in the middle, so the result is (1, 28, 28).  The polarity is
    guessed from the picture's edge (the paper); ink="dark" says the ink is
    dark on light paper (without mnist: the image is inverted), "light"
    that it is light on dark.

    Raises HlrError: EIO (missing, unreadable, not a regular file), EFORMAT
    (neither PNG nor PGM, damaged, larger than 16384 pixels a side; with
    mnist, a blank picture).
    """
    p = _fspath(path, "path")
    return _image(lambda flags: lib.hlr_image_load(p, flags), mnist, ink)


def decode_image(data, mnist=False, ink=None):
    """A PNG or PGM picture held in memory (bytes, e.g. an upload), as load_image reads a file:
    float32 (1, H, W) in [0, 1], white = 1, or (1, 28, 28) with mnist=True.

    The bytes are hostile input to the library: the same limits and checks as
    a file, and messages that call them "the image data".

    Raises HlrError: EFORMAT (empty, neither PNG nor PGM, damaged, too large;
    with mnist, a blank picture); TypeError when data is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("data must be bytes, not %s" % type(data).__name__)
    raw = bytes(data)
    return _image(lambda flags: lib.hlr_image_decode(raw, len(raw), flags), mnist, ink)


def _image(call, mnist, ink):
    flags = DEFINES["HLR_IMAGE_MNIST"] if _check.boolean(mnist, "mnist") else 0
    if ink is not None:
        _check.choice(ink, "ink", ("dark", "light"))
    flags |= _INK_FLAGS[ink]
    t = Owner(check_ptr(call(flags)), lib.hlr_tensor_free)
    try:
        x, xb = empty(tuple(lib.hlr_tensor_dim(t.ptr, i) for i in range(3)))
        ctypes.memmove(xb.addr, lib.hlr_tensor_f32(t.ptr), xb.numel * 4)
    finally:
        t.release()
    return x


__all__ = ["load_idx", "load_mnist", "load_image", "decode_image"]

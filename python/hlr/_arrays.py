"""Arrays in and out of C, with NumPy or without it.

Inputs: a C-contiguous, aligned float32 ndarray (int32 for labels) is
handed to C in place, through hlr_tensor_wrap(); anything else is converted
once.  Without NumPy (not installed, or HLR_NO_NUMPY=1 in the environment)
the same holds for buffer objects such as array.array('f') and typed
memoryviews, and nested lists are converted once.

Outputs are NumPy arrays, or without NumPy memoryviews of the right format
and shape (they index as m[i, j], convert with .tolist(), and pass back in
without a copy).
"""

import array
import ctypes
import os

from . import _capi
from ._capi import HLR_F32, HLR_I32, MAX_DIMS, lib
from ._errors import check_ptr

np = None
if os.environ.get("HLR_NO_NUMPY", "") in ("", "0"):
    try:
        import numpy as np
    except ImportError:
        np = None

HAVE_NUMPY = np is not None

# How many inputs had to be converted (copied) on the way to C.  Tests read
# it to prove that the zero-copy path copies nothing.
conversions = 0

_CTYPE = {HLR_F32: ctypes.c_float, HLR_I32: ctypes.c_int32}
_FORMAT = {HLR_F32: "f", HLR_I32: "i"}  # struct/array codes; 'i' is 32-bit on every platform Python runs here
_NAME = {HLR_F32: "float32", HLR_I32: "int32"}
if HAVE_NUMPY:
    _NP = {HLR_F32: np.float32, HLR_I32: np.int32}

assert array.array("i").itemsize == 4 and array.array("f").itemsize == 4


class Buf:
    """Row-major data at `addr` of `shape` and `dtype`, alive while `keep` is."""

    __slots__ = ("addr", "shape", "dtype", "keep")

    def __init__(self, addr, shape, dtype, keep):
        self.addr = addr
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.keep = keep

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def reshaped(self, shape):
        return Buf(self.addr, shape, self.dtype, self.keep)


def _counted_conversion():
    global conversions
    conversions += 1


# ---------------------------------------------------------------------------
# Inputs


def as_input(x, dtype, what):
    """x as a Buf of dtype (HLR_F32 or HLR_I32); converts only when needed."""
    if x is None or isinstance(x, (int, float, bool, str, bytes, dict, set)):
        raise TypeError("%s must be an array (ndarray, array.array, memoryview or nested list), not %s"
                        % (what, type(x).__name__))
    buf = _as_input_numpy(x, dtype, what) if HAVE_NUMPY else _as_input_plain(x, dtype, what)
    if len(buf.shape) > MAX_DIMS:
        raise ValueError("%s has %d dimensions; at most %d are supported" % (what, len(buf.shape), MAX_DIMS))
    if buf.numel == 0:
        raise ValueError("%s is empty (shape %s)" % (what, buf.shape))
    return buf


def _as_input_numpy(x, dtype, what):
    want = _NP[dtype]
    if isinstance(x, np.ndarray) and x.dtype == want and x.flags.c_contiguous and x.flags.aligned:
        return Buf(x.ctypes.data, x.shape, dtype, x)
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)  # a buffer of the right type stays in place
        except (ValueError, TypeError) as e:
            raise ValueError("%s cannot be read as an array: %s" % (what, e)) from None
        if x.dtype == want and x.flags.c_contiguous and x.flags.aligned:
            return Buf(x.ctypes.data, x.shape, dtype, x)
    kind = x.dtype.kind
    if dtype == HLR_F32 and kind not in "biuf":
        raise TypeError("%s must hold numbers, not %s" % (what, x.dtype))
    if dtype == HLR_I32:
        if kind not in "biu":
            raise TypeError("%s must hold integers (class labels), not %s" % (what, x.dtype))
        if x.size and (x.min() < -2**31 or x.max() > 2**31 - 1):
            raise ValueError("%s holds values outside the int32 range" % what)
    converted = np.require(x, dtype=want, requirements=["C_CONTIGUOUS", "ALIGNED"])
    _counted_conversion()
    return Buf(converted.ctypes.data, converted.shape, dtype, converted)


def _buffer_format(mv):
    return mv.format.lstrip("@=<")


def _as_input_plain(x, dtype, what):
    try:
        mv = memoryview(x)
    except TypeError:
        mv = None
    if mv is not None:
        fmt = _buffer_format(mv)
        if fmt == _FORMAT[dtype] and mv.c_contiguous and mv.itemsize == 4:
            shape = mv.shape if mv.ndim else (1,)
            if mv.nbytes == 0:
                return Buf(0, shape, dtype, x)
            if not mv.readonly:
                c = (ctypes.c_char * mv.nbytes).from_buffer(mv)
                if ctypes.addressof(c) % 4 == 0:
                    return Buf(ctypes.addressof(c), shape, dtype, (c, mv, x))
            # Read-only or misaligned: one copy into aligned memory.
            flat = (_CTYPE[dtype] * (mv.nbytes // 4)).from_buffer_copy(mv)
            _counted_conversion()
            return Buf(ctypes.addressof(flat), shape, dtype, flat)
        if fmt not in ("b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d", "?", "e", "n", "N"):
            raise TypeError("%s has element format %r, expected numbers" % (what, mv.format))
        values = mv.tolist()
        shape = mv.shape
    elif isinstance(x, (list, tuple)):
        values = x
        shape = None
    else:
        raise TypeError("%s must be an array (array.array, memoryview or nested list), not %s"
                        % (what, type(x).__name__))
    flat, found = _flatten(values, what, dtype)
    out = array.array(_FORMAT[dtype], flat)
    _counted_conversion()
    shape = shape if shape is not None else found
    if len(out) == 0:
        return Buf(0, shape, dtype, out)
    addr, _ = out.buffer_info()
    return Buf(addr, shape, dtype, out)


def _flatten(values, what, dtype):
    """Nested sequences -> (flat list, shape); checks they are rectangular."""
    shape = []
    level = values
    while isinstance(level, (list, tuple)):
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    flat = []

    def walk(v, depth):
        if depth == len(shape):
            if isinstance(v, (list, tuple)):
                raise ValueError("%s is ragged (nested deeper in some places)" % what)
            if dtype == HLR_I32:
                if isinstance(v, float) or not isinstance(v, int):
                    raise TypeError("%s must hold integers (class labels), not %s" % (what, type(v).__name__))
                if not -2**31 <= v < 2**31:
                    raise ValueError("%s holds %d, outside the int32 range" % (what, v))
            elif not isinstance(v, (int, float)):
                raise TypeError("%s must hold numbers, not %s" % (what, type(v).__name__))
            flat.append(v)
            return
        if not isinstance(v, (list, tuple)) or len(v) != shape[depth]:
            raise ValueError("%s is ragged: expected %d items at depth %d" % (what, shape[depth], depth))
        for item in v:
            walk(item, depth + 1)

    walk(values, 0)
    return flat, tuple(shape)


def _scale_uint8(x):
    """uint8 pixels -> float32 value / 255; anything else unchanged."""
    if HAVE_NUMPY and isinstance(x, np.ndarray):
        if x.dtype == np.uint8:
            _counted_conversion()
            return x.astype(np.float32) / np.float32(255)
        return x
    if isinstance(x, (bytes, bytearray, list, tuple, str)) or x is None:
        return x  # bytes are refused by as_input; lists of ints are numbers, not pixels
    try:
        mv = memoryview(x)
    except TypeError:
        return x
    if _buffer_format(mv) != "B":
        return x
    if HAVE_NUMPY:
        _counted_conversion()
        return np.frombuffer(mv.tobytes(), dtype=np.uint8).reshape(mv.shape).astype(np.float32) / np.float32(255)
    out = array.array("f", [v / 255 for v in mv.cast("B").tolist()])  # double, then rounded: the same floats
    _counted_conversion()
    return memoryview(out).cast("B").cast("f", mv.shape) if mv.ndim > 1 else out


def as_batch(x, sample_shape, what="input", dtype=HLR_F32):
    """A float32 (or int32 token) input for a model taking samples of sample_shape.

    A one-dimensional input is read as flat row-major data of whole samples:
    (N * prod(sample_shape),) becomes (N, *sample_shape).  uint8 data (a
    NumPy uint8 array, or a buffer of format "B") is taken as 0-255 pixels
    and scaled to [0, 1] exactly as the C loaders scale idx files: value / 255
    in float32.
    """
    if dtype == HLR_F32:
        x = _scale_uint8(x)
    buf = as_input(x, dtype, what)
    if len(buf.shape) == 1 and sample_shape is not None:
        size = 1
        for d in sample_shape:
            size *= d
        if buf.shape[0] % size:
            raise ValueError("%s holds %d values, not a whole number of samples of shape %s (%d values)"
                             % (what, buf.shape[0], tuple(sample_shape), size))
        buf = buf.reshaped((buf.shape[0] // size,) + tuple(sample_shape))
    return buf


# ---------------------------------------------------------------------------
# Outputs and views


def empty(shape, dtype=HLR_F32):
    """A new array of shape and dtype: (array object, Buf)."""
    shape = tuple(int(d) for d in shape)
    if HAVE_NUMPY:
        a = np.empty(shape, dtype=_NP[dtype])
        return a, Buf(a.ctypes.data, shape, dtype, a)
    n = 1
    for d in shape:
        n *= d
    c = (_CTYPE[dtype] * max(n, 1))()
    mv = memoryview(c).cast("B").cast(_FORMAT[dtype], shape) if n else memoryview(c).cast("B")[:0]
    return mv, Buf(ctypes.addressof(c), shape, dtype, c)


def empty_int64(shape):
    """A new int64 array (confusion matrices)."""
    shape = tuple(int(d) for d in shape)
    if HAVE_NUMPY:
        a = np.zeros(shape, dtype=np.int64)
        return a, a.ctypes.data
    n = 1
    for d in shape:
        n *= d
    c = (ctypes.c_int64 * n)()
    return memoryview(c).cast("B").cast("q", shape), ctypes.addressof(c)


_VIEW_TYPES = {}


def view(addr, shape, dtype, keep):
    """A writable array over C memory at addr that keeps `keep` alive."""
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape:
        n *= d

    kind = _VIEW_TYPES.get((dtype, n))
    if kind is None:
        kind = type("BorrowedMemory", (_CTYPE[dtype] * n,), {"__doc__": "C memory kept alive by .owner"})
        _VIEW_TYPES[(dtype, n)] = kind
    mem = kind.from_address(addr)
    mem.owner = keep
    if HAVE_NUMPY:
        return np.frombuffer(mem, dtype=_NP[dtype]).reshape(shape)
    return memoryview(mem).cast("B").cast(_FORMAT[dtype], shape)


def tolist(a):
    """Nested lists from an ndarray or memoryview."""
    return a.tolist()


def shape_arg(shape):
    """A C int64_t[] for a shape."""
    return (ctypes.c_int64 * max(len(shape), 1))(*shape)


class Tensors:
    """Temporary tensor handles over Bufs for one call; freed on exit."""

    def __init__(self):
        self._ptrs = []
        self._keep = []

    def __enter__(self):
        return self

    def wrap(self, buf):
        shape = shape_arg(buf.shape)
        ptr = check_ptr(lib.hlr_tensor_wrap(buf.dtype, len(buf.shape), shape, buf.addr))
        self._ptrs.append(ptr)
        self._keep.append(buf)
        return ptr

    def __exit__(self, *exc):
        for p in self._ptrs:
            lib.hlr_tensor_free(p)
        self._ptrs.clear()
        self._keep.clear()
        return False


def is_array(x):
    """True when x looks like array data (used to tell arguments apart)."""
    if HAVE_NUMPY and isinstance(x, np.ndarray):
        return True
    return isinstance(x, (list, tuple, memoryview, array.array))


__all__ = ["HAVE_NUMPY", "as_input", "as_batch", "empty", "view", "Tensors", "Buf", "_capi"]

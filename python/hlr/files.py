"""Model files (docs/format.md): loading, inspecting, and a model's metadata.

    model.save("mnist.hlr")                 # Model.save / Model.to_bytes
    model = hlr.load("mnist.hlr")           # hlr.load / hlr.load_bytes
    info = hlr.inspect("mnist.hlr")         # header, layers, chunks, metadata; no weights kept
"""

import ctypes
import os

from ._capi import EpochStats, FileSummary, lib
from ._errors import check, check_ptr
from ._handle import Owner


def _fspath(path, what="path"):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("%s must be a str, bytes or os.PathLike, not %s" % (what, type(path).__name__))
    return os.fsencode(path)


def _text(value, what, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    data = value.encode("utf-8")
    if b"\0" in data:
        raise ValueError("%s must not contain NUL characters" % what)
    return data


def _decode(b):
    return None if b is None else b.decode("utf-8", "replace")


def _bytes_arg(data):
    """A readable buffer's (address holder, size) for C, without copying bytes-like input."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        mv = memoryview(data).cast("B")
    else:
        try:
            mv = memoryview(data).cast("B")
        except TypeError:
            raise TypeError("data must be bytes-like, not %s" % type(data).__name__) from None
    if mv.readonly:
        holder = ctypes.c_char_p(mv.tobytes()) if not isinstance(data, bytes) else ctypes.c_char_p(data)
    else:
        holder = (ctypes.c_char * mv.nbytes).from_buffer(mv)
    return holder, mv.nbytes


def _history(md):
    out = []
    for i in range(lib.hlr_metadata_history_length(md)):
        s = EpochStats()
        check(lib.hlr_metadata_history(md, i, ctypes.byref(s)))
        out.append(s.as_dict())
    return out


def _metadata_dict(md):
    return {
        "dataset": _decode(lib.hlr_metadata_dataset(md)),
        "class_names": [_decode(check_ptr(lib.hlr_metadata_class_name(md, i)))
                        for i in range(lib.hlr_metadata_num_classes(md))],
        "keys": {_decode(k): _decode(lib.hlr_metadata_get(md, k))
                 for k in (check_ptr(lib.hlr_metadata_key(md, i)) for i in range(lib.hlr_metadata_count(md)))},
        "history": _history(md),
    }


class Metadata:
    """A model's metadata, kept in its files: data set name, class names, free
    key/value strings (a mapping: md["author"] = "me") and the per-epoch
    history fit() records.  Holds the model alive."""

    def __init__(self, model):
        self._model = model

    @property
    def _ptr(self):
        return check_ptr(lib.hlr_model_metadata(self._model._ptr))

    @property
    def dataset(self):
        """The data set's name ('' when none); assign a str, or None to clear."""
        return _decode(lib.hlr_metadata_dataset(self._ptr))

    @dataset.setter
    def dataset(self, name):
        check(lib.hlr_metadata_set_dataset(self._ptr, _text(name, "dataset", allow_none=True)))

    @property
    def class_names(self):
        """The class names, a list of str; assign a list (or [] to clear)."""
        md = self._ptr
        return [_decode(check_ptr(lib.hlr_metadata_class_name(md, i))) for i in range(lib.hlr_metadata_num_classes(md))]

    @class_names.setter
    def class_names(self, names):
        if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
            raise TypeError("class_names must be a list of str")
        encoded = [_text(n, "class_names[%d]" % i) for i, n in enumerate(names)]
        arr = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
        check(lib.hlr_metadata_set_class_names(self._ptr, len(encoded), arr))

    @property
    def history(self):
        """One dict per epoch fit() completed on this model (and, through files, before)."""
        return _history(self._ptr)

    def clear_history(self):
        check(lib.hlr_metadata_clear_history(self._ptr))

    # -- the key/value strings, as a mapping -------------------------------

    def keys(self):
        md = self._ptr
        return [_decode(check_ptr(lib.hlr_metadata_key(md, i))) for i in range(lib.hlr_metadata_count(md))]

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def __getitem__(self, key):
        value = lib.hlr_metadata_get(self._ptr, _text(key, "key"))
        if value is None:
            raise KeyError(key)
        return _decode(value)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key, value):
        check(lib.hlr_metadata_set(self._ptr, _text(key, "key"), _text(value, "value")))

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        check(lib.hlr_metadata_set(self._ptr, _text(key, "key"), None))

    def __contains__(self, key):
        return isinstance(key, str) and lib.hlr_metadata_get(self._ptr, _text(key, "key")) is not None

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return lib.hlr_metadata_count(self._ptr)

    def to_dict(self):
        return _metadata_dict(self._ptr)

    def __repr__(self):
        return "Metadata(%r)" % (self.to_dict(),)


def _loaded(ptr, opt_ptr, return_optimizer):
    from .model import Model
    from .optim import Optimizer

    model = Model._adopt(ptr)
    opt = Optimizer._adopt(opt_ptr.value, model) if opt_ptr.value else None
    return (model, opt) if return_optimizer else model


def load(path, return_optimizer=False):
    """Load a model file written by Model.save() (or hlr_model_save()).

    With return_optimizer, returns (model, optimizer): the saved optimizer,
    bound to the model with its moments and schedule, or None when the file
    has none; fit() with it continues where the saved training stopped.
    Raises HlrError: EIO, EFORMAT (the message names the chunk and offset),
    EUNSUPPORTED.
    """
    p = _fspath(path)
    opt = ctypes.c_void_p()
    ptr = check_ptr(lib.hlr_model_load(p, ctypes.byref(opt)))
    return _loaded(ptr, opt, return_optimizer)


def load_bytes(data, return_optimizer=False):
    """load() from a file's whole contents (bytes-like), e.g. Model.to_bytes()."""
    holder, size = _bytes_arg(data)
    addr = ctypes.cast(holder, ctypes.c_void_p)
    opt = ctypes.c_void_p()
    ptr = check_ptr(lib.hlr_model_load_buffer(addr, size, ctypes.byref(opt)))
    return _loaded(ptr, opt, return_optimizer)


def import_onnx(source):
    """An ONNX model (a path, or its bytes) as a built Model (hlr_model_import_onnx): a chain of layers as
    torch.onnx.export writes an nn.Sequential, or anything Model.export_onnx() writes (a model over token
    ids takes its lengths through forward(x, lengths=...)).  Raises HlrError:
    EUNSUPPORTED naming the node and operator that is not read, EFORMAT for a damaged file, EIO.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        holder, size = _bytes_arg(source)
        ptr = check_ptr(lib.hlr_model_import_onnx_buffer(ctypes.cast(holder, ctypes.c_void_p), size))
    else:
        ptr = check_ptr(lib.hlr_model_import_onnx(_fspath(source)))
    return _loaded(ptr, ctypes.c_void_p(), False)


def inspect(source):
    """What a model file holds, without building the model: a dict with
    'summary' (format version, sizes, CRCs, input shape, parameter counts,
    loss, optimizer and training state), 'layers' (type, config, output
    shape, scalars), 'chunks' (tag, offset, length) and 'metadata'.

    source: a path, or the file's bytes.  A damaged payload CRC is reported
    (summary['crc_ok'] False) rather than refused.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        holder, size = _bytes_arg(source)
        ptr = lib.hlr_model_info_load_buffer(ctypes.cast(holder, ctypes.c_void_p), size)
    else:
        ptr = lib.hlr_model_info_load(_fspath(source, "source"))
    info = Owner(check_ptr(ptr), lib.hlr_model_info_free)
    try:
        s = FileSummary()
        check(lib.hlr_model_info_summary(info.ptr, ctypes.byref(s), ctypes.sizeof(s)))
        summary = {}
        for name, _ in FileSummary._fields_:
            v = getattr(s, name)
            if isinstance(v, bytes):
                v = _decode(v)
            summary[name] = v
        summary["input_shape"] = tuple(s.input_shape[i] for i in range(s.input_ndim))
        summary["crc_ok"] = bool(s.crc_ok)
        summary["has_optimizer"] = bool(s.has_optimizer)
        summary["has_training_state"] = bool(s.has_training_state)
        layers = []
        for i in range(s.num_layers):
            t, c = ctypes.c_char_p(), ctypes.c_char_p()
            nd = ctypes.c_int()
            shape = (ctypes.c_int64 * 8)()
            scalars = ctypes.c_int64()
            check(lib.hlr_model_info_layer(info.ptr, i, ctypes.byref(t), ctypes.byref(c), ctypes.byref(nd), shape,
                                           ctypes.byref(scalars)))
            layers.append({"type": _decode(t.value), "config": _decode(c.value) or "",
                           "output_shape": tuple(shape[j] for j in range(nd.value)), "scalars": scalars.value})
        chunks = []
        for i in range(s.num_chunks):
            tag = ctypes.create_string_buffer(5)
            off, length = ctypes.c_uint64(), ctypes.c_uint64()
            check(lib.hlr_model_info_chunk(info.ptr, i, tag, ctypes.byref(off), ctypes.byref(length)))
            chunks.append({"tag": _decode(tag.value), "offset": off.value, "length": length.value})
        md = check_ptr(lib.hlr_model_info_metadata(info.ptr))
        return {"summary": summary, "layers": layers, "chunks": chunks, "metadata": _metadata_dict(md)}
    finally:
        info.release()


__all__ = ["load", "load_bytes", "import_onnx", "inspect", "Metadata"]

"""Layers, named and parametrised as their torch.nn counterparts.

A layer is created on its own and owned by Python until it is added to a
Model: from then on the C model owns it (hlr_model_add() takes ownership),
and the layer object borrows it, keeping the model alive while referenced.
Its parameters exist once the model is built; params() and grads() return
writable views into the model's memory, named as torch's state_dict names
them.
"""

import ctypes
from ctypes import c_int64

from . import _arrays, _capi, _check
from ._capi import DEFINES, HLR_F32, lib
from ._errors import check, check_ptr
from ._handle import Owner

_BY_TYPE = {}  # C type name -> class, to wrap the layers of a loaded model


def _registers(c_type):
    def deco(cls):
        cls._c_type = c_type
        _BY_TYPE[c_type] = cls
        return cls

    return deco


class Layer:
    """Base class of every layer; see the module documentation for ownership."""

    _c_type = None

    def __init__(self, ptr, **config):
        self._h = Owner(check_ptr(ptr), lib.hlr_layer_free)
        self._model = None
        self._borrowed_ptr = None
        self._config = config

    @classmethod
    def _wrap_borrowed(cls, ptr, model):
        """A layer object for a C layer that `model` already owns."""
        obj = cls.__new__(cls)
        obj._h = None
        obj._model = model
        obj._borrowed_ptr = ptr
        obj._config = None
        return obj

    # -- ownership ----------------------------------------------------------

    @property
    def _ptr(self):
        if self._model is not None:
            if self._model._h is None:
                raise ValueError("%s: its model is closed" % type(self).__name__)
            return self._borrowed_ptr
        if self._h is None or self._h.ptr is None:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._h.ptr

    def _give_to(self, model):
        """Hand the C layer to model (before hlr_model_add, which takes it in every case)."""
        ptr = self._ptr
        self._h.detach()
        self._h = None
        self._model = model
        self._borrowed_ptr = ptr
        return ptr

    def _lost(self):
        """hlr_model_add failed and freed the C layer: this object is now closed."""
        self._model = None
        self._borrowed_ptr = None

    @property
    def model(self):
        """The Model that owns this layer, or None."""
        return self._model

    @property
    def closed(self):
        if self._model is not None:
            return self._model._h is None
        return self._h is None or self._h.ptr is None

    def close(self):
        """Free a layer no model owns; for a model's layer, just let go of the model."""
        if self._model is not None:
            self._model = None
            self._borrowed_ptr = None
        elif self._h is not None:
            self._h.release()
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._model is None:
            self.close()
        return False

    # -- inspection ---------------------------------------------------------

    @property
    def type(self):
        """The library's name for the layer type ("dense", "conv2d", ...)."""
        return lib.hlr_layer_type(self._ptr).decode()

    def param_names(self):
        """Parameter (and buffer) names, in the library's order."""
        ptr = self._ptr
        return [check_ptr(lib.hlr_layer_param_name(ptr, i)).decode() for i in range(lib.hlr_layer_param_count(ptr))]

    def _views(self, getter):
        ptr = self._ptr
        if self._model is None or not self._model._built:
            check_ptr(getter(ptr, b"weight"))  # the library's own HLR_ESTATE: no parameters before build
        out = {}
        for name in self.param_names():
            t = check_ptr(getter(ptr, name.encode()))
            shape = tuple(lib.hlr_tensor_dim(t, i) for i in range(lib.hlr_tensor_ndim(t)))
            out[name] = _arrays.view(lib.hlr_tensor_data(t), shape, HLR_F32, self._model._h)
        return out

    def params(self):
        """{name: writable array view} of the parameters; writing changes the model.

        The views keep the model's memory alive.  Raises HlrError (ESTATE)
        before the model is built.
        """
        return self._views(lib.hlr_layer_param)

    def grads(self):
        """{name: writable array view} of the gradients of the last backward pass."""
        return self._views(lib.hlr_layer_grad)

    @property
    def trainable(self):
        """False once frozen: optimizers then leave its parameters alone (Keras's layer.trainable)."""
        return bool(lib.hlr_layer_trainable(self._ptr))

    @trainable.setter
    def trainable(self, value):
        check(lib.hlr_layer_set_trainable(self._ptr, int(_check.boolean(value, "trainable"))))

    def requires_grad_(self, requires_grad=True):
        """torch's module.requires_grad_(False): freeze the layer (see trainable); returns it."""
        self.trainable = requires_grad
        return self

    def __repr__(self):
        name = type(self).__name__
        if self._config is None:
            return "%s(<from model>)" % name
        return "%s(%s)" % (name, ", ".join("%s=%r" % kv for kv in self._config.items()))


@_registers("dense")
class Dense(Layer):
    """Fully connected y = x W^T + b, as torch.nn.Linear: weight (out, in), bias (out)."""

    def __init__(self, in_features, out_features, bias=True):
        i = _check.integer(in_features, "in_features")
        o = _check.integer(out_features, "out_features")
        b = _check.boolean(bias, "bias")
        super().__init__(lib.hlr_dense(i, o, int(b)), in_features=i, out_features=o, bias=b)


Linear = Dense


@_registers("relu")
class ReLU(Layer):
    def __init__(self):
        super().__init__(lib.hlr_relu())


@_registers("leaky_relu")
class LeakyReLU(Layer):
    def __init__(self, negative_slope=0.01):
        s = _check.real(negative_slope, "negative_slope")
        super().__init__(lib.hlr_leaky_relu(s), negative_slope=s)


@_registers("sigmoid")
class Sigmoid(Layer):
    def __init__(self):
        super().__init__(lib.hlr_sigmoid())


@_registers("tanh")
class Tanh(Layer):
    def __init__(self):
        super().__init__(lib.hlr_tanh())


@_registers("gelu")
class GELU(Layer):
    """x * Phi(x), the exact form (torch's approximate='none')."""

    def __init__(self):
        super().__init__(lib.hlr_gelu())


@_registers("softmax")
class Softmax(Layer):
    """Softmax over the last dimension (dim=-1 is the only one supported)."""

    def __init__(self, dim=-1):
        d = _check.integer(dim, "dim", lo=-(2**31))
        if d != -1:
            raise ValueError("Softmax: only dim=-1 (the last dimension) is supported, got %d" % d)
        super().__init__(lib.hlr_softmax(), dim=-1)


@_registers("dropout")
class Dropout(Layer):
    """Inverted dropout in training, identity in inference; 0 <= p < 1."""

    def __init__(self, p=0.5):
        p = _check.real(p, "p", 0.0, 1.0, hi_open=True)
        super().__init__(lib.hlr_dropout(p), p=p)


@_registers("flatten")
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), torch.nn.Flatten's default."""

    def __init__(self):
        super().__init__(lib.hlr_flatten())


@_registers("conv2d")
class Conv2d(Layer):
    """2-D convolution as torch.nn.Conv2d: weight (out, in/groups, kh, kw), bias (out).

    kernel_size may be an int or a pair; stride, padding and dilation an
    int or a pair of equal ints; padding may also be 'valid' (0) or 'same'
    (stride 1 and an odd kernel).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        ic = _check.integer(in_channels, "in_channels")
        oc = _check.integer(out_channels, "out_channels")
        kh, kw = _check.pair(kernel_size, "kernel_size")
        s, _ = _check.pair(stride, "stride", same=True)
        d, _ = _check.pair(dilation, "dilation", same=True)
        if isinstance(padding, str):
            _check.choice(padding, "padding", ("valid", "same"))
            if padding == "valid":
                p = 0
            else:
                if s != 1 or kh != kw or kh % 2 == 0:
                    raise ValueError("Conv2d: padding='same' needs stride 1 and a square, odd kernel")
                p = d * (kh - 1) // 2
        else:
            p, _ = _check.pair(padding, "padding", lo=0, same=True)
        g = _check.integer(groups, "groups")
        if ic % g or oc % g:
            raise ValueError("Conv2d: groups (%d) must divide in_channels (%d) and out_channels (%d)" % (g, ic, oc))
        b = _check.boolean(bias, "bias")
        o = _capi.Conv2dOptions(kernel_h=kh, kernel_w=kw, stride=s, padding=p, dilation=d, groups=g, no_bias=int(not b))
        super().__init__(lib.hlr_conv2d(ic, oc, ctypes.byref(o)), in_channels=ic, out_channels=oc,
                         kernel_size=(kh, kw), stride=s, padding=p, dilation=d, groups=g, bias=b)


class _Pool2d(Layer):
    _ctor = None     # square windows: hlr_maxpool2d(k, s, p)
    _ctor_hw = None  # rectangles: hlr_maxpool2d_hw(kh, kw, sh, sw, ph, pw)

    def __init__(self, kernel_size, stride=None, padding=0):
        name = type(self).__name__
        k = _check.pair(kernel_size, "kernel_size")
        s = (0, 0) if stride is None else _check.pair(stride, "stride")
        p = _check.pair(padding, "padding", lo=0)
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ValueError("%s: padding %r must be at most kernel_size / 2 on each axis (kernel_size %r)"
                             % (name, padding, kernel_size))
        s = (s[0] or k[0], s[1] or k[1])
        if k[0] == k[1] and s[0] == s[1] and p[0] == p[1]:
            super().__init__(type(self)._ctor(k[0], s[0], p[0]), kernel_size=k[0], stride=s[0], padding=p[0])
        else:
            super().__init__(type(self)._ctor_hw(k[0], k[1], s[0], s[1], p[0], p[1]), kernel_size=k, stride=s,
                             padding=p)


@_registers("maxpool2d")
class MaxPool2d(_Pool2d):
    """Max over windows as torch.nn.MaxPool2d: kernel_size, stride (default: the kernel) and padding are ints or
    (height, width) pairs, e.g. MaxPool2d((2, 1)) halves the height and keeps the width."""

    _ctor = staticmethod(lambda k, s, p: lib.hlr_maxpool2d(k, s, p))
    _ctor_hw = staticmethod(lambda kh, kw, sh, sw, ph, pw: lib.hlr_maxpool2d_hw(kh, kw, sh, sw, ph, pw))


@_registers("avgpool2d")
class AvgPool2d(_Pool2d):
    """Mean over windows as torch.nn.AvgPool2d (padding counted in the divisor); ints or (height, width) pairs."""

    _ctor = staticmethod(lambda k, s, p: lib.hlr_avgpool2d(k, s, p))
    _ctor_hw = staticmethod(lambda kh, kw, sh, sw, ph, pw: lib.hlr_avgpool2d_hw(kh, kw, sh, sw, ph, pw))


@_registers("global_avgpool2d")
class GlobalAvgPool2d(Layer):
    """(C, H, W) -> (C): the mean of each channel (torch: AdaptiveAvgPool2d(1) then flatten)."""

    def __init__(self):
        super().__init__(lib.hlr_global_avgpool2d())


class _BatchNorm(Layer):
    _ctor = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        n = _check.integer(num_features, "num_features")
        e = _check.real(eps, "eps", 0.0, lo_open=True)
        m = _check.real(momentum, "momentum", 0.0, 1.0)
        super().__init__(type(self)._ctor(n, e, m), num_features=n, eps=e, momentum=m)


@_registers("batchnorm2d")
class BatchNorm2d(_BatchNorm):
    """torch.nn.BatchNorm2d: weight, bias, running_mean, running_var (C each)."""

    _ctor = staticmethod(lambda n, e, m: lib.hlr_batchnorm2d(n, e, m))


@_registers("batchnorm1d")
class BatchNorm1d(_BatchNorm):
    """torch.nn.BatchNorm1d over (C) or (C, L) samples."""

    _ctor = staticmethod(lambda n, e, m: lib.hlr_batchnorm1d(n, e, m))


class _Recurrent(Layer):
    """LSTM and GRU: torch.nn.LSTM / GRU, with torch's positional arguments
    (input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional) and batch_first=True, the only layout the library has.

    Input (T, input_size) per sample.  By default the output is the final
    state, (D * hidden_size), as the C layer's (so LSTM(28, 16) can feed
    Dense(16, 10)); return_sequences=True (keyword only) gives every step of
    the last layer, (T, D * hidden_size), as torch's `output`.  D is 2 when
    bidirectional.  bias=False is not supported (the layer always has
    biases).  Parameters are named as torch names them (weight_ih_l0,
    bias_hh_l1_reverse, ...).
    """

    _ctor = None
    _cell = False  # LSTM: also a cell state

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True, dropout=0.0,
                 bidirectional=False, *, return_sequences=False):
        i = _check.integer(input_size, "input_size")
        h = _check.integer(hidden_size, "hidden_size")
        if _check.boolean(bias, "bias") is not True:
            raise ValueError("%s: bias=False is not supported; the layer always has biases" % type(self).__name__)
        if _check.boolean(batch_first, "batch_first") is not True:
            raise ValueError("%s: batch_first=False is not supported; sequences are (N, T, features)"
                             % type(self).__name__)
        b = _check.boolean(bidirectional, "bidirectional")
        n = _check.integer(num_layers, "num_layers", 1, 4 if b else 8)
        rs = _check.boolean(return_sequences, "return_sequences")
        d = _check.real(dropout, "dropout", 0.0, 1.0, hi_open=True)
        flags = (DEFINES["HLR_RETURN_SEQUENCES"] if rs else 0) | (DEFINES["HLR_BIDIRECTIONAL"] if b else 0)
        super().__init__(type(self)._ctor(i, h, n, flags, d), input_size=i, hidden_size=h, num_layers=n,
                         dropout=d, bidirectional=b, return_sequences=rs)

    def _state_shape(self, batch):
        """(num_layers * D, batch, hidden_size), read from the built parameters."""
        names = self.param_names()
        if not names:
            check_ptr(lib.hlr_layer_param(self._ptr, b"weight_hh_l0"))  # the library's HLR_ESTATE
        layers = sum(1 for n in names if n.startswith("weight_hh_l") and not n.endswith("_reverse"))
        dirs = 2 if any(n.endswith("_reverse") for n in names) else 1
        # the shape from the gradient's view: a view of the weights would make the library compare what
        # it keeps made from them on every pass from then on (docs/api.md); a clone's layer has no
        # gradients, and its weights' view is the way left
        t = lib.hlr_layer_grad(self._ptr, b"weight_hh_l0") or check_ptr(lib.hlr_layer_param(self._ptr, b"weight_hh_l0"))
        hidden = lib.hlr_tensor_dim(t, 1)
        if batch is None:
            batch = self._model._last_batch if self._model is not None else None
            if batch is None:
                raise ValueError("pass batch=: the model has not run a batch whose size is known")
        return (layers * dirs, _check.integer(batch, "batch"), hidden)

    def set_initial_state(self, h0=None, c0=None):
        """Start every sequence from h0 (and, for an LSTM, c0), each
        (num_layers * D, N, hidden_size), instead of zeros; both None clears it.
        Every forward pass must then have a batch of exactly N."""
        if c0 is not None and not self._cell:
            raise ValueError("GRU has no cell state (c0)")
        with _arrays.Tensors() as t:
            hp = t.wrap(_arrays.as_input(h0, HLR_F32, "h0")) if h0 is not None else None
            cp = t.wrap(_arrays.as_input(c0, HLR_F32, "c0")) if c0 is not None else None
            check(lib.hlr_rnn_set_initial_state(self._ptr, hp, cp))

    def _state_pair(self, fn, batch):
        shape = self._state_shape(batch)
        h, hb = _arrays.empty(shape)
        c, cb = _arrays.empty(shape) if self._cell else (None, None)
        with _arrays.Tensors() as t:
            check(fn(self._ptr, t.wrap(hb), t.wrap(cb) if self._cell else None))
        return (h, c) if self._cell else h

    def final_state(self, batch=None):
        """The state after the last forward pass, as torch's h_n (and c_n for an
        LSTM: returns (h_n, c_n)).  batch defaults to the model's last batch size."""
        return self._state_pair(lib.hlr_rnn_final_state, batch)

    def initial_state_grad(self, batch=None):
        """After backward(): dLoss/dh0 (and dLoss/dc0 for an LSTM) for the initial state used."""
        return self._state_pair(lib.hlr_rnn_initial_state_grad, batch)


@_registers("lstm")
class LSTM(_Recurrent):
    _ctor = staticmethod(lambda i, h, n, f, d: lib.hlr_lstm(i, h, n, f, d))
    _cell = True


@_registers("gru")
class GRU(_Recurrent):
    _ctor = staticmethod(lambda i, h, n, f, d: lib.hlr_gru(i, h, n, f, d))


@_registers("embedding")
class Embedding(Layer):
    """torch.nn.Embedding: int token ids (...) -> (..., embedding_dim); weight
    (num_embeddings, embedding_dim).  It must be the model's first layer, and
    the model then takes int32 ids (anything else integer is converted once).
    padding_idx: that row starts at zero and gets no gradient (negative counts
    from the end, as torch)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        n = _check.integer(num_embeddings, "num_embeddings")
        d = _check.integer(embedding_dim, "embedding_dim")
        if padding_idx is None:
            p = -1
        else:
            p = _check.integer(padding_idx, "padding_idx", lo=-n, hi=n - 1)
            if p < 0:
                p += n
        super().__init__(lib.hlr_embedding(n, d, p), num_embeddings=n, embedding_dim=d,
                         padding_idx=None if p < 0 else p)


@_registers("image_rows")
class ImageRows(Layer):
    """(1, H, W) -> (H, W): an image as H steps of its rows (no copy)."""

    def __init__(self):
        super().__init__(lib.hlr_image_rows())


@_registers("feature_map_columns")
class FeatureMapColumns(Layer):
    """(C, H, W) -> (W, C*H): a feature map as W steps, left to right, as a CRNN reads a line
    (torch: x.permute(0, 3, 1, 2).reshape(N, W, -1))."""

    def __init__(self):
        super().__init__(lib.hlr_feature_map_columns())


@_registers("feature_map_rows")
class FeatureMapRows(Layer):
    """(C, H, W) -> (H, C*W): a feature map as H steps (torch: x.permute(0, 2, 1, 3).reshape(N, H, -1))."""

    def __init__(self):
        super().__init__(lib.hlr_feature_map_rows())


@_registers("seq_last")
class SeqLast(Layer):
    """(T, F...) -> (F...): each sequence's last valid step."""

    def __init__(self):
        super().__init__(lib.hlr_seq_last())


@_registers("seq_mean")
class SeqMean(Layer):
    """(T, F...) -> (F...): the mean over each sequence's valid steps."""

    def __init__(self):
        super().__init__(lib.hlr_seq_mean())


@_registers("seq_max")
class SeqMax(Layer):
    """(T, F...) -> (F...): the maximum over each sequence's valid steps."""

    def __init__(self):
        super().__init__(lib.hlr_seq_max())


@_registers("multihead_attention")
class MultiheadAttention(Layer):
    """Self-attention as torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, batch_first=True)
    computes mha(x, x, x): (T, embed_dim) -> (T, embed_dim).  Parameters in_proj_weight (3E, E), in_proj_bias
    (3E), out_proj.weight (E, E), out_proj.bias (E).  causal: query i sees keys 0..i; key_padding: keys past
    each sequence's length (Model.set_lengths) are masked; out_proj=False leaves out the output projection."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, causal=False, key_padding=False, out_proj=True):
        e = _check.integer(embed_dim, "embed_dim")
        h = _check.integer(num_heads, "num_heads")
        if e % h:
            raise ValueError("MultiheadAttention: embed_dim (%d) must be divisible by num_heads (%d)" % (e, h))
        d = _check.real(dropout, "dropout", 0.0, 1.0, hi_open=True)
        b = _check.boolean(bias, "bias")
        c = _check.boolean(causal, "causal")
        k = _check.boolean(key_padding, "key_padding")
        o = _check.boolean(out_proj, "out_proj")
        flags = ((DEFINES["HLR_ATTN_CAUSAL"] if c else 0) | (DEFINES["HLR_ATTN_KEY_PADDING"] if k else 0) |
                 (0 if o else DEFINES["HLR_ATTN_NO_OUT_PROJ"]) | (0 if b else DEFINES["HLR_ATTN_NO_BIAS"]))
        super().__init__(lib.hlr_multihead_attention(e, h, flags, d), embed_dim=e, num_heads=h, dropout=d, bias=b,
                         causal=c, key_padding=k, out_proj=o)

    def attention_weights(self):
        """The attention probabilities of the last forward pass, (N, num_heads, T, T), before dropout:
        row i of head h is how query step i weighs the key steps (zero where masked)."""
        shape = (c_int64 * 4)()
        check(lib.hlr_attention_weights_shape(self._ptr, shape))
        out, buf = _arrays.empty(tuple(shape))
        with _arrays.Tensors() as t:
            check(lib.hlr_attention_weights(self._ptr, t.wrap(buf)))
        return out


@_registers("layernorm")
class LayerNorm(Layer):
    """torch.nn.LayerNorm(normalized_shape, eps) over the last dimension: weight (ones), bias (zeros)."""

    def __init__(self, normalized_shape, eps=1e-5):
        d = _check.integer(normalized_shape, "normalized_shape")
        e = _check.real(eps, "eps", 0.0, lo_open=True)
        super().__init__(lib.hlr_layernorm(d, e), normalized_shape=d, eps=e)


@_registers("positional_encoding")
class PositionalEncoding(Layer):
    """(T, dim) -> (T, dim): x + pe[:T] for T <= max_len.  kind "sinusoidal": the fixed table of "Attention
    is all you need" (no parameters); "learned": parameter weight (max_len, dim), initialised N(0, 0.02^2)."""

    _KINDS = {"sinusoidal": "HLR_POS_SINUSOIDAL", "learned": "HLR_POS_LEARNED"}

    def __init__(self, max_len, dim, kind="sinusoidal"):
        n = _check.integer(max_len, "max_len")
        d = _check.integer(dim, "dim")
        if kind not in self._KINDS:
            raise ValueError("PositionalEncoding: kind must be 'sinusoidal' or 'learned', not %r" % (kind,))
        super().__init__(lib.hlr_positional_encoding(n, d, DEFINES[self._KINDS[kind]]), max_len=n, dim=d, kind=kind)


@_registers("patch_embedding")
class PatchEmbedding(Layer):
    """(C, H, W) -> (H/patch * W/patch, dim): non-overlapping patches projected to dim features, exactly
    torch.nn.Conv2d(in_channels, dim, patch, stride=patch)(x).flatten(2).transpose(1, 2).  Parameters weight
    (dim, C, patch, patch) and bias (dim), initialised as Conv2d.  H and W must be multiples of patch."""

    def __init__(self, in_channels, patch_size, dim):
        c = _check.integer(in_channels, "in_channels")
        p = _check.integer(patch_size, "patch_size")
        d = _check.integer(dim, "dim")
        super().__init__(lib.hlr_patch_embedding(c, p, d), in_channels=c, patch_size=p, dim=d)


@_registers("class_token")
class ClassToken(Layer):
    """(T, dim) -> (T + 1, dim): a learned token cls_token (dim), initialised to zeros, prepended at step 0
    (a vision transformer's class token; SeqFirst reads its output)."""

    def __init__(self, dim):
        d = _check.integer(dim, "dim")
        super().__init__(lib.hlr_class_token(d), dim=d)


@_registers("seq_first")
class SeqFirst(Layer):
    """(T, F...) -> (F...): the first step of each sequence (torch: x[:, 0])."""

    def __init__(self):
        super().__init__(lib.hlr_seq_first())


@_registers("transformer_encoder")
class TransformerEncoderLayer(Layer):
    """torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation='gelu',
    batch_first=True, norm_first=True): (T, d_model) -> (T, d_model),
    x = x + dropout1(self_attn(norm1(x))); y = x + dropout2(linear2(dropout(gelu(linear1(norm2(x)))))).
    Parameters under torch's state_dict names (self_attn.in_proj_weight, ..., norm2.bias) and initialisation.
    causal and key_padding are given to the attention, as in MultiheadAttention."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, causal=False, key_padding=False):
        e = _check.integer(d_model, "d_model")
        h = _check.integer(nhead, "nhead")
        if e % h:
            raise ValueError("TransformerEncoderLayer: d_model (%d) must be divisible by nhead (%d)" % (e, h))
        f = _check.integer(dim_feedforward, "dim_feedforward")
        d = _check.real(dropout, "dropout", 0.0, 1.0, hi_open=True)
        c = _check.boolean(causal, "causal")
        k = _check.boolean(key_padding, "key_padding")
        flags = (DEFINES["HLR_ATTN_CAUSAL"] if c else 0) | (DEFINES["HLR_ATTN_KEY_PADDING"] if k else 0)
        super().__init__(lib.hlr_transformer_encoder(e, h, f, flags, d), d_model=e, nhead=h, dim_feedforward=f,
                         dropout=d, causal=c, key_padding=k)

    def attention_weights(self):
        """The self-attention probabilities of the last forward pass, (N, nhead, T, T), before dropout."""
        return MultiheadAttention.attention_weights(self)


def _wrap(ptr, model):
    """The Python object for layer ptr of model (a generic Layer for an unknown type)."""
    cls = _BY_TYPE.get(lib.hlr_layer_type(ptr).decode(), Layer)
    return cls._wrap_borrowed(ptr, model)


__all__ = ["Layer", "Dense", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout",
           "Flatten", "Conv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "BatchNorm2d", "BatchNorm1d", "LSTM", "GRU",
           "Embedding", "ImageRows", "FeatureMapRows", "FeatureMapColumns", "SeqLast", "SeqMean", "SeqMax", "MultiheadAttention", "LayerNorm",
           "PositionalEncoding", "PatchEmbedding", "ClassToken", "SeqFirst", "TransformerEncoderLayer"]

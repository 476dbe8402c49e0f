"""Attention and layer norm: MultiheadAttention (heads, masks, no output
projection), its attention weights, LayerNorm, against NumPy implementations
written here; saving and loading keeps the classes."""

import os
import tempfile
import unittest

from helpers import has, hlr, np

needs = unittest.skipUnless(np is not None and has("hlr_multihead_attention"),
                            "NumPy or the attention layers are not available")


def softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mha_ref(x, p, heads, causal=False, lengths=None):
    """torch.nn.MultiheadAttention(batch_first=True)(x, x, x): (y, weights (N, heads, T, T))."""
    n, t, e = x.shape
    d = e // heads
    qkv = x @ p["in_proj_weight"].T + p.get("in_proj_bias", 0)
    q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(n, t, heads, d).transpose(0, 2, 1, 3) for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    mask = np.zeros((n, 1, t, t), dtype=bool)
    if causal:
        mask |= np.triu(np.ones((t, t), dtype=bool), 1)
    if lengths is not None:
        mask |= (np.arange(t)[None, :] >= np.asarray(lengths)[:, None])[:, None, None, :]
    w = softmax(np.where(mask, -np.inf, s))
    att = (w @ v).transpose(0, 2, 1, 3).reshape(n, t, e)
    if "out_proj.weight" in p:
        att = att @ p["out_proj.weight"].T + p.get("out_proj.bias", 0)
    return att, w


@needs
class TestAttention(unittest.TestCase):
    def setUp(self):
        self.x = np.random.default_rng(1).standard_normal((3, 5, 8)).astype(np.float32)

    def check(self, layer, heads, causal=False, lengths=None):
        m = hlr.Model([layer], input_shape=(5, 8), seed=4)
        p = m.layers[0].params()
        rng = np.random.default_rng(2)
        for name in p:
            if "bias" in name:
                p[name][...] = rng.standard_normal(p[name].shape)
        y = m.forward(self.x, lengths=lengths)
        ref, w = mha_ref(self.x.astype(np.float64), {k: v.astype(np.float64) for k, v in p.items()}, heads, causal,
                         lengths)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m.layers[0].attention_weights(), w, rtol=1e-4, atol=1e-6)

    def test_heads_and_masks_match_numpy(self):
        self.check(hlr.MultiheadAttention(8, 1), 1)
        self.check(hlr.MultiheadAttention(8, 2, causal=True), 2, causal=True)
        self.check(hlr.MultiheadAttention(8, 4, key_padding=True), 4, lengths=[5, 2, 3])
        self.check(hlr.MultiheadAttention(8, 2, out_proj=False, bias=False, causal=True, key_padding=True), 2,
                   causal=True, lengths=[1, 5, 4])

    def test_parameters_follow_torch(self):
        m = hlr.Model([hlr.MultiheadAttention(8, 2)], input_shape=(5, 8))
        shapes = {k: tuple(v.shape) for k, v in m.layers[0].params().items()}
        self.assertEqual(shapes, {"in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8),
                                  "out_proj.bias": (8,)})
        self.assertEqual(list(m.layers[0].params()), ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                      "out_proj.bias"])
        m = hlr.Model([hlr.MultiheadAttention(8, 2, out_proj=False, bias=False)], input_shape=(5, 8))
        self.assertEqual(list(m.layers[0].params()), ["in_proj_weight"])

    def test_argument_errors(self):
        with self.assertRaises(ValueError):
            hlr.MultiheadAttention(10, 4)
        with self.assertRaises(ValueError):
            hlr.MultiheadAttention(8, 2, dropout=1.0)
        with self.assertRaises(ValueError):
            hlr.LayerNorm(4, eps=0)
        layer = hlr.MultiheadAttention(8, 2)
        with self.assertRaises(hlr.HlrError):
            layer.attention_weights()  # never ran
        layer.close()

    def test_layernorm_matches_numpy(self):
        m = hlr.Model([hlr.LayerNorm(8)], input_shape=(5, 8))
        p = m.layers[0].params()
        rng = np.random.default_rng(3)
        p["weight"][...] = rng.standard_normal(8)
        p["bias"][...] = rng.standard_normal(8)
        x = self.x.astype(np.float64)
        ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * p["weight"] + p["bias"]
        np.testing.assert_allclose(m.forward(self.x), ref, rtol=1e-4, atol=1e-5)

    @unittest.skipUnless(has("hlr_model_save"), "the loaded library cannot save models yet")
    def test_saved_attention_model_predicts_the_same(self):
        m = hlr.Model([hlr.ImageRows(), hlr.Dense(4, 8), hlr.MultiheadAttention(8, 2, causal=True), hlr.LayerNorm(8),
                       hlr.SeqMean(), hlr.Dense(8, 3)], input_shape=(1, 5, 4), seed=3)
        x = np.random.default_rng(5).standard_normal((7, 1, 5, 4)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "attention.hlr")
            m.save(path)
            again = hlr.load(path)
        np.testing.assert_array_equal(again.predict(x), m.predict(x))
        self.assertIsInstance(again.layers[2], hlr.MultiheadAttention)
        self.assertIsInstance(again.layers[3], hlr.LayerNorm)
        self.assertEqual(again.layers[2].attention_weights().shape, (7, 2, 5, 5))


if __name__ == "__main__":
    unittest.main()

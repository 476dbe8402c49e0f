"""Transformer layers: TransformerEncoderLayer (heads, masks), PatchEmbedding,
PositionalEncoding, ClassToken and SeqFirst against NumPy implementations
written here; parameter names; saving and loading keeps the classes."""

import math
import os
import tempfile
import unittest

from helpers import has, hlr, np
from test_attention import mha_ref

needs = unittest.skipUnless(np is not None and has("hlr_transformer_encoder"),
                            "NumPy or the transformer layers are not available")

ENCODER_NAMES = ["self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                 "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                 "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]


def layernorm(x, w, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def encoder_ref(x, p, heads, causal=False, lengths=None):
    """torch.nn.TransformerEncoderLayer(norm_first=True, activation='gelu', dropout=0, batch_first=True)."""
    attn = {k[len("self_attn."):]: v for k, v in p.items() if k.startswith("self_attn.")}
    a, w = mha_ref(layernorm(x, p["norm1.weight"], p["norm1.bias"]), attn, heads, causal, lengths)
    x = x + a
    h = layernorm(x, p["norm2.weight"], p["norm2.bias"])
    f = gelu(h @ p["linear1.weight"].T + p["linear1.bias"]) @ p["linear2.weight"].T + p["linear2.bias"]
    return x + f, w


def sinusoidal(t, d):
    pe = np.zeros((t, d))
    for pos in range(t):
        for c in range(d):
            angle = pos / 10000 ** ((c - c % 2) / d)
            pe[pos, c] = math.cos(angle) if c % 2 else math.sin(angle)
    return pe


@needs
class TestTransformer(unittest.TestCase):
    def setUp(self):
        self.x = np.random.default_rng(1).standard_normal((3, 5, 8)).astype(np.float32)

    def check_encoder(self, layer, heads, causal=False, lengths=None):
        m = hlr.Model([layer], input_shape=(5, 8), seed=4)
        p = m.layers[0].params()
        self.assertEqual(list(p), ENCODER_NAMES)
        rng = np.random.default_rng(2)
        for name in p:
            if "bias" in name or "norm" in name:
                p[name][...] += 0.3 * rng.standard_normal(p[name].shape)
        y = m.forward(self.x, lengths=lengths)
        ref, w = encoder_ref(self.x.astype(np.float64), {k: v.astype(np.float64) for k, v in p.items()}, heads,
                             causal, lengths)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m.layers[0].attention_weights(), w, rtol=1e-4, atol=1e-6)

    def test_encoder_matches_numpy(self):
        self.check_encoder(hlr.TransformerEncoderLayer(8, 1, 12, dropout=0.0), 1)
        self.check_encoder(hlr.TransformerEncoderLayer(8, 2, 16, dropout=0.0, causal=True), 2, causal=True)
        self.check_encoder(hlr.TransformerEncoderLayer(8, 4, 10, dropout=0.0, key_padding=True), 4,
                           lengths=[5, 2, 3])

    def test_patch_embedding_matches_numpy(self):
        m = hlr.Model([hlr.PatchEmbedding(2, 3, 5)], input_shape=(2, 6, 9), seed=1)
        p = m.layers[0].params()
        self.assertEqual({k: tuple(v.shape) for k, v in p.items()}, {"weight": (5, 2, 3, 3), "bias": (5,)})
        x = np.random.default_rng(3).standard_normal((4, 2, 6, 9)).astype(np.float32)
        patches = x.reshape(4, 2, 2, 3, 3, 3).transpose(0, 2, 4, 1, 3, 5).reshape(4, 6, 18)  # (n, ph, pw), (c, i, j)
        ref = patches.astype(np.float64) @ p["weight"].reshape(5, 18).T.astype(np.float64) + p["bias"]
        np.testing.assert_allclose(m.forward(x), ref, rtol=1e-5, atol=1e-5)

    def test_positions_class_token_and_seq_first(self):
        m = hlr.Model([hlr.PositionalEncoding(7, 5)], input_shape=(6, 5))
        self.assertEqual(list(m.layers[0].params()), [])
        x = np.zeros((2, 6, 5), dtype=np.float32)
        np.testing.assert_allclose(m.forward(x)[1], sinusoidal(6, 5), atol=1e-6)
        m = hlr.Model([hlr.ClassToken(5), hlr.PositionalEncoding(8, 5, kind="learned"), hlr.SeqFirst()],
                      input_shape=(6, 5), seed=2)
        token = m.layers[0].params()["cls_token"]
        pos = m.layers[1].params()["weight"]
        self.assertEqual(pos.shape, (8, 5))
        np.testing.assert_array_equal(token, np.zeros(5))
        token[...] = np.arange(5)
        y = m.forward(np.random.default_rng(4).standard_normal((3, 6, 5)).astype(np.float32))
        np.testing.assert_allclose(y, np.tile(np.arange(5) + pos[0], (3, 1)), rtol=1e-6)

    def test_argument_errors(self):
        with self.assertRaises(ValueError):
            hlr.TransformerEncoderLayer(10, 4)
        with self.assertRaises(ValueError):
            hlr.TransformerEncoderLayer(8, 2, dropout=1.0)
        with self.assertRaises(ValueError):
            hlr.PositionalEncoding(4, 8, kind="rotary")
        with self.assertRaises(ValueError):
            hlr.PatchEmbedding(1, 0, 8)
        with self.assertRaises(hlr.HlrError) as e:
            hlr.Model([hlr.PatchEmbedding(1, 4, 8)], input_shape=(1, 6, 8))
        self.assertIn("patch_embedding (layer 0)", str(e.exception))

    @unittest.skipUnless(has("hlr_model_save"), "the loaded library cannot save models yet")
    def test_saved_vision_transformer_predicts_the_same(self):
        m = hlr.Model([hlr.PatchEmbedding(1, 4, 8), hlr.ClassToken(8), hlr.PositionalEncoding(5, 8, kind="learned"),
                       hlr.TransformerEncoderLayer(8, 2, 16, dropout=0.1), hlr.LayerNorm(8), hlr.SeqFirst(),
                       hlr.Dense(8, 3)], input_shape=(1, 8, 8), seed=3)
        x = np.random.default_rng(5).standard_normal((7, 1, 8, 8)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "vit.hlr")
            m.save(path)
            again = hlr.load(path)
        np.testing.assert_array_equal(again.predict(x), m.predict(x))
        for i, cls in enumerate([hlr.PatchEmbedding, hlr.ClassToken, hlr.PositionalEncoding,
                                 hlr.TransformerEncoderLayer, hlr.LayerNorm, hlr.SeqFirst, hlr.Dense]):
            self.assertIsInstance(again.layers[i], cls)
        self.assertEqual(again.layers[3].attention_weights().shape, (7, 2, 5, 5))


if __name__ == "__main__":
    unittest.main()

"""Recurrent and sequence layers: LSTM, GRU, Embedding, the bridging layers,
lengths and states, against NumPy implementations written here."""

import os
import tempfile
import unittest

from helpers import has, hlr, np
from hlr import _arrays

needs = unittest.skipUnless(np is not None and has("hlr_lstm") and has("hlr_embedding"),
                            "NumPy or the recurrent layers are not available")


def sig(v):
    return 1 / (1 + np.exp(-v))


def lstm_ref(x, p, h=None, c=None, suffix="l0"):
    """torch.nn.LSTM, one layer, one direction: x (N, T, F) -> (out (N, T, H), h, c)."""
    wih, whh = p["weight_ih_" + suffix], p["weight_hh_" + suffix]
    b = p["bias_ih_" + suffix] + p["bias_hh_" + suffix]
    n, t_steps, _ = x.shape
    hid = whh.shape[1]
    h = np.zeros((n, hid)) if h is None else h
    c = np.zeros((n, hid)) if c is None else c
    out = []
    for t in range(t_steps):
        i, f, g, o = np.split(x[:, t] @ wih.T + h @ whh.T + b, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1), h, c


def gru_ref(x, p, h=None):
    wih, whh, bih, bhh = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    n, t_steps, _ = x.shape
    h = np.zeros((n, whh.shape[1])) if h is None else h
    out = []
    for t in range(t_steps):
        xr, xz, xn = np.split(x[:, t] @ wih.T + bih, 3, axis=1)
        hr, hz, hn = np.split(h @ whh.T + bhh, 3, axis=1)
        r, z = sig(xr + hr), sig(xz + hz)
        h = (1 - z) * np.tanh(xn + r * hn) + z * h
        out.append(h)
    return np.stack(out, axis=1), h


@needs
class TestRecurrent(unittest.TestCase):
    def setUp(self):
        self.x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)

    def test_lstm_names_and_shapes_follow_torch(self):
        m = hlr.Model([hlr.LSTM(3, 4, num_layers=2, bidirectional=True, return_sequences=True)], input_shape=(5, 3))
        p = m.layers[0].params()
        expect = {"weight_ih_l0": (16, 3), "weight_hh_l0": (16, 4), "bias_ih_l0": (16,), "bias_hh_l0": (16,),
                  "weight_ih_l1": (16, 8), "weight_hh_l1": (16, 4)}
        for name, shape in expect.items():
            self.assertEqual(tuple(p[name].shape), shape, name)
            self.assertEqual(tuple(p[name + "_reverse"].shape), shape, name)
        self.assertEqual(len(p), 16)
        self.assertEqual(m.output_shape, (5, 8))
        self.assertEqual(repr(m.layers[0]), "LSTM(input_size=3, hidden_size=4, num_layers=2, dropout=0.0, "
                                            "bidirectional=True, return_sequences=True)")

    def test_lstm_matches_numpy(self):
        m = hlr.Model([hlr.LSTM(3, 4, return_sequences=True)], input_shape=(5, 3))
        p = m.layers[0].params()
        out, h, c = lstm_ref(self.x.astype(np.float64), p)
        np.testing.assert_allclose(m.forward(self.x), out, rtol=1e-4, atol=1e-5)
        h_n, c_n = m.layers[0].final_state()
        np.testing.assert_allclose(h_n[0], h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(c_n[0], c, rtol=1e-4, atol=1e-5)

    def test_lstm_initial_state(self):
        m = hlr.Model([hlr.LSTM(3, 4, return_sequences=True)], input_shape=(5, 3))
        lstm = m.layers[0]
        rng = np.random.default_rng(2)
        h0 = rng.standard_normal((1, 2, 4)).astype(np.float32)
        c0 = rng.standard_normal((1, 2, 4)).astype(np.float32)
        lstm.set_initial_state(h0, c0)
        out, _, _ = lstm_ref(self.x.astype(np.float64), lstm.params(), h0[0], c0[0])
        np.testing.assert_allclose(m.forward(self.x), out, rtol=1e-4, atol=1e-5)
        with self.assertRaises(hlr.HlrError) as cm:
            m.forward(self.x[:1])  # the state is for batches of 2
        self.assertEqual(cm.exception.code, hlr.ESHAPE)
        y = m.forward(self.x, training=True)
        m.backward(np.ones_like(y))
        dh0, dc0 = lstm.initial_state_grad()
        self.assertEqual(dh0.shape, (1, 2, 4))
        self.assertTrue(np.abs(dh0).sum() > 0)
        lstm.set_initial_state()
        np.testing.assert_allclose(m.forward(self.x[:1]), lstm_ref(self.x[:1].astype(np.float64), lstm.params())[0],
                                   rtol=1e-4, atol=1e-5)

    def test_defaults_and_positional_arguments_follow_torch_and_c(self):
        # Issue 15, defect 11: Python returned sequences by default while C returns the last state, and
        # torch's positional order put `bidirectional` where torch has `bias`.
        m = hlr.Model([hlr.LSTM(28, 16), hlr.Dense(16, 10)], input_shape=(5, 28))
        self.assertEqual(m.output_shape, (10,))
        g = hlr.GRU(3, 4, 2, True, True, 0.25, True)  # torch: (in, hidden, num_layers, bias, batch_first, dropout, bidir)
        self.assertEqual(repr(g), "GRU(input_size=3, hidden_size=4, num_layers=2, dropout=0.25, bidirectional=True, "
                                  "return_sequences=False)")
        self.assertEqual(hlr.Model([g], input_shape=(5, 3)).output_shape, (8,))
        with self.assertRaisesRegex(ValueError, "bias=False"):
            hlr.LSTM(3, 4, 1, False)
        with self.assertRaisesRegex(ValueError, "batch_first=False"):
            hlr.LSTM(3, 4, batch_first=False)
        with self.assertRaises(TypeError):
            hlr.LSTM(3, 4, 1, True, True, 0.0, False, True)  # return_sequences is keyword-only
        # the C layer's default is the same
        c = hlr.Model([hlr.LSTM(3, 4)], input_shape=(5, 3))
        self.assertEqual(c.output_shape, (4,))

    def test_gru_matches_numpy(self):
        m = hlr.Model([hlr.GRU(3, 4, return_sequences=False)], input_shape=(5, 3))
        _, h = gru_ref(self.x.astype(np.float64), m.layers[0].params())
        np.testing.assert_allclose(m.forward(self.x), h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m.layers[0].final_state()[0], h, rtol=1e-4, atol=1e-5)
        with self.assertRaises(ValueError):
            m.layers[0].set_initial_state(np.zeros((1, 2, 4), np.float32), np.zeros((1, 2, 4), np.float32))

    def test_lengths_act_as_packed_sequences(self):
        m = hlr.Model([hlr.LSTM(3, 4, return_sequences=True), hlr.SeqLast()], input_shape=(5, 3))
        lengths = np.array([3, 5], np.int32)
        y = m.forward(self.x, lengths=lengths)
        _, h_short, _ = lstm_ref(self.x[:1, :3].astype(np.float64), m.layers[0].params())
        np.testing.assert_allclose(y[0], h_short[0], rtol=1e-4, atol=1e-5)
        garbage = self.x.copy()
        garbage[0, 3:] = 100.0  # past the end: ignored
        np.testing.assert_allclose(m.forward(garbage, lengths=lengths), y, rtol=1e-6)
        self.assertEqual(m.predict(self.x, lengths=lengths, batch_size=1).shape, (2, 4))
        with self.assertRaises(ValueError):
            m.forward(self.x, lengths=[3])
        with self.assertRaises(hlr.HlrError):
            m.forward(self.x, lengths=[0, 5])
        y_all = m.forward(self.x)  # lengths cleared again
        np.testing.assert_allclose(y_all[1], y[1], rtol=1e-6)

    def test_argument_errors(self):
        for f in (lambda: hlr.LSTM(3, 0), lambda: hlr.LSTM(3, 4, num_layers=5, bidirectional=True),
                  lambda: hlr.GRU(3, 4, num_layers=9), lambda: hlr.GRU(3, 4, dropout=1.0),
                  lambda: hlr.Embedding(10, 4, padding_idx=10), lambda: hlr.Embedding(0, 4)):
            with self.assertRaises(ValueError):
                f()
        with self.assertRaises(TypeError):
            hlr.LSTM(3, 4, bidirectional="yes")
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.LSTM(3, 4).final_state(batch=2)  # no model, no parameters
        self.assertEqual(cm.exception.code, hlr.ESTATE)


@needs
class TestTokensAndBridges(unittest.TestCase):
    def test_embedding_takes_int32_ids_in_place(self):
        m = hlr.Model([hlr.Embedding(10, 3, padding_idx=-1)], input_shape=(4,))
        w = m.layers[0].params()["weight"]
        np.testing.assert_array_equal(w[9], 0.0)  # padding row (-1 counts from the end)
        ids = np.array([[1, 2, 3, 9], [0, 0, 5, 1]], np.int32)
        before = _arrays.conversions
        y = m.forward(ids)
        self.assertEqual(_arrays.conversions, before)
        np.testing.assert_array_equal(y, w[ids])
        np.testing.assert_array_equal(m.forward(ids.astype(np.int64)), y)
        self.assertEqual(_arrays.conversions, before + 1)
        with self.assertRaises(TypeError):
            m.forward(ids.astype(np.float32))
        with self.assertRaises(hlr.HlrError) as cm:
            m.forward(np.array([[1, 2, 3, 10]], np.int32))
        self.assertEqual(cm.exception.code, hlr.EINVAL)

    def test_token_model_trains_with_lengths(self):
        rng = np.random.default_rng(3)
        n, t = 64, 6
        ids = rng.integers(1, 8, (n, t)).astype(np.int32)
        lengths = rng.integers(1, t + 1, n).astype(np.int32)
        y = (ids[np.arange(n), lengths - 1] > 4).astype(np.int32)  # the last valid token decides
        m = hlr.Model([hlr.Embedding(8, 8, padding_idx=0), hlr.GRU(8, 16, return_sequences=True), hlr.SeqLast(), hlr.Dense(16, 2)],
                      input_shape=(t,), seed=2)
        opt = hlr.Adam(0.02)
        hist = m.fit(ids, y, epochs=15, batch_size=16, optimizer=opt, lengths=lengths, verbose=0)
        self.assertGreater(hist[-1]["train_accuracy"], 0.9)
        r = m.evaluate(ids, y, lengths=lengths)
        self.assertGreater(r["accuracy"], 0.9)
        loss = m.train_batch(opt, ids[:8], y[:8], lengths=lengths[:8])
        self.assertLess(loss, 1.0)
        out = m.forward(ids[:8], training=True, lengths=lengths[:8])
        self.assertIsNone(m.backward(np.ones_like(out)))  # token ids have no gradient
        self.assertEqual(m.layers[1].grads()["weight_hh_l0"].shape, (48, 16))

    def test_bridging_layers(self):
        rng = np.random.default_rng(4)
        img = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
        m = hlr.Model([hlr.ImageRows()], input_shape=(1, 3, 4))
        np.testing.assert_array_equal(m.forward(img), img[:, 0])
        fm = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
        m = hlr.Model([hlr.FeatureMapRows()], input_shape=(2, 3, 4))
        np.testing.assert_array_equal(m.forward(fm), fm.transpose(0, 2, 1, 3).reshape(2, 3, 8))
        seq = rng.standard_normal((2, 5, 3)).astype(np.float32)
        for layer, ref in ((hlr.SeqMean(), seq.mean(axis=1)), (hlr.SeqMax(), seq.max(axis=1)),
                           (hlr.SeqLast(), seq[:, -1])):
            m = hlr.Model([layer], input_shape=(5, 3))
            np.testing.assert_allclose(m.forward(seq), ref, rtol=1e-5, atol=1e-6)
        m = hlr.Model([hlr.SeqMean()], input_shape=(5, 3))
        np.testing.assert_allclose(m.forward(seq, lengths=[2, 5]), [seq[0, :2].mean(axis=0), seq[1].mean(axis=0)],
                                   rtol=1e-5, atol=1e-6)

    @unittest.skipUnless(has("hlr_model_save"), "the loaded library cannot save models yet")
    def test_saved_recurrent_model_predicts_the_same(self):
        m = hlr.Model([hlr.ImageRows(), hlr.LSTM(4, 6, bidirectional=True, return_sequences=False),
                       hlr.Dense(12, 3)], input_shape=(1, 5, 4), seed=3)
        x = np.random.default_rng(5).standard_normal((7, 1, 5, 4)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rnn.hlr")
            m.save(path)
            again = hlr.load(path)
        np.testing.assert_array_equal(again.predict(x), m.predict(x))
        self.assertIsInstance(again.layers[1], hlr.LSTM)
        self.assertEqual(again.layers[1].final_state(batch=7)[0].shape, (2, 7, 6))


if __name__ == "__main__":
    unittest.main()

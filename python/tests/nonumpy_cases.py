"""The package without NumPy: run by test_no_numpy.py in a child interpreter
with HLR_NO_NUMPY=1 (or one where NumPy is not installed)."""

import array
import gzip
import os
import struct
import sys
import tempfile
import unittest

from helpers import hlr
from hlr import _arrays
from hlr._capi import HLR_F32, lib


class TestWithoutNumpy(unittest.TestCase):
    def test_numpy_is_not_used(self):
        self.assertFalse(hlr.HAVE_NUMPY)

    def test_lists_in_memoryviews_out(self):
        m = hlr.Model([hlr.Dense(2, 1, bias=False)], input_shape=(2,))
        w = m.layers[0].params()["weight"]
        self.assertIsInstance(w, memoryview)
        self.assertEqual(w.shape, (1, 2))
        w[0, 0] = 1.0
        w[0, 1] = 2.0
        y = m.forward([[1.0, 3.0], [2, 5]])
        self.assertIsInstance(y, memoryview)
        self.assertEqual(y.shape, (2, 1))
        self.assertEqual(y.tolist(), [[7.0], [12.0]])

    def test_uint8_buffers_are_pixels_scaled_by_1_over_255(self):
        m = hlr.Model([hlr.Flatten(), hlr.Dense(4, 2)], input_shape=(2, 2), seed=1)
        pixels = array.array("B", [0, 51, 128, 255, 7, 200, 99, 1])
        scaled = [[[v / 255 for v in pixels[k:k + 2]] for k in (i, i + 2)] for i in (0, 4)]
        self.assertEqual(m.forward(pixels).tolist(), m.forward(scaled).tolist())

    def test_label_errors_in_the_callers_terms(self):
        m = hlr.Model([hlr.Dense(2, 3)], input_shape=(2,))
        with self.assertRaisesRegex(ValueError, r"^fit: y\[1\] = 7 is outside \[0, 3\)"):
            m.fit([[0.0, 1.0], [1.0, 0.0]], [0, 7], verbose=0)

    def test_array_array_passes_without_copy(self):
        m = hlr.Model([hlr.Flatten(), hlr.Dense(4, 2)], input_shape=(2, 2))
        x = array.array("f", range(8))
        before = _arrays.conversions
        buf = _arrays.as_batch(x, (2, 2))
        with _arrays.Tensors() as t:
            self.assertEqual(lib.hlr_tensor_data(t.wrap(buf)), x.buffer_info()[0])
        y = m.forward(x)  # flat data of two samples
        self.assertEqual(_arrays.conversions, before)
        self.assertEqual(y.shape, (2, 2))
        y2 = m.forward(memoryview(x).cast("B").cast("f", (2, 2, 2)))
        self.assertEqual(y.tolist(), y2.tolist())
        self.assertEqual(_arrays.conversions, before)
        # An output passes back in as it is.
        m2 = hlr.Model([hlr.Dense(2, 2)], input_shape=(2,))
        m2.forward(y)
        self.assertEqual(_arrays.conversions, before)
        m.forward(array.array("d", range(8)))  # doubles: one conversion
        self.assertEqual(_arrays.conversions, before + 1)

    def test_misaligned_and_read_only_buffers_are_copied_once(self):
        before = _arrays.conversions
        odd = memoryview(bytearray(17))[1:].cast("f")
        ro = memoryview(bytes(16)).cast("f")
        for mv in (odd, ro):
            buf = _arrays.as_input(mv, HLR_F32, "x")
            self.assertEqual(buf.addr % 4, 0)
            self.assertEqual(buf.shape, (4,))
        self.assertEqual(_arrays.conversions, before + 2)

    def test_training_and_evaluation(self):
        x = [[2.0, 0.0], [0.0, 2.0], [2.1, 0.1], [0.1, 2.1]] * 8
        y = array.array("i", [0, 1, 0, 1] * 8)
        m = hlr.Model([hlr.Dense(2, 8), hlr.ReLU(), hlr.Dense(8, 2)], input_shape=(2,), seed=1)
        opt = hlr.Adam(0.05)
        first = m.train_batch(opt, x, y)
        hist = m.fit(x, y, epochs=5, batch_size=8, optimizer=opt, verbose=0)
        self.assertEqual(len(hist), 5)
        self.assertLess(hist[-1]["train_loss"], first)
        r = m.evaluate(x, list(y))
        self.assertEqual(r["accuracy"], 1.0)
        self.assertIsInstance(r["confusion"], memoryview)
        self.assertEqual(r["confusion"].tolist(), [[16, 0], [0, 16]])
        p = m.predict(x)
        self.assertEqual(p.shape, (32, 2))
        self.assertAlmostEqual(sum(p.tolist()[0]), 1.0, places=5)
        self.assertEqual(m.predict_classes(x, batch_size=5).tolist(), list(y))
        self.assertEqual(m.predict_classes(x)[:4].tolist(), [0, 1, 0, 1])  # as the README's snippet does
        self.assertEqual(m.predict(x).shape, (32, 2))
        out = m.forward(x, training=True)
        dx = m.backward([[1.0, 0.0]] * 32)
        self.assertEqual(dx.shape, (32, 2))
        self.assertEqual(out.shape, (32, 2))
        g = m.layers[0].grads()["weight"]
        self.assertEqual(g.shape, (8, 2))

    def test_losses(self):
        loss, grad = hlr.mse_loss([1.0, 2.0], [0.0, 4.0], return_grad=True)
        self.assertAlmostEqual(loss, 2.5, places=6)
        self.assertEqual(grad.tolist(), [1.0, -2.0])

    def test_wrong_arguments(self):
        m = hlr.Model([hlr.Dense(2, 1)], input_shape=(2,))
        with self.assertRaises(TypeError):
            m.forward("ab")
        with self.assertRaises(TypeError):
            m.forward([["a", "b"]])
        with self.assertRaises(ValueError):
            m.forward([[1.0, 2.0], [3.0]])
        with self.assertRaises(TypeError):
            m.fit([[1.0, 2.0]], [0.5], verbose=0)

    def test_load_idx(self):
        with tempfile.TemporaryDirectory() as tmp:
            images = os.path.join(tmp, "img.gz")
            labels = os.path.join(tmp, "lab")
            with gzip.open(images, "wb") as f:
                f.write(struct.pack(">IIII", 0x803, 2, 2, 3) + bytes([0, 255, 51, 102, 153, 204] * 2))
            with open(labels, "wb") as f:
                f.write(struct.pack(">II", 0x801, 2) + bytes([7, 3]))
            x, y = hlr.load_idx(images, labels)
        self.assertEqual(x.shape, (2, 1, 2, 3))
        self.assertEqual(y.tolist(), [7, 3])
        self.assertEqual([round(v, 3) for v in x.tolist()[0][0][0]], [0.0, 1.0, 0.2])

    def test_views_are_writable_and_shared(self):
        m = hlr.Model([hlr.Dense(3, 2)], input_shape=(3,))
        a = m.layers[0].params()["bias"]
        b = m.state_dict()["0.bias"]
        a[1] = 4.5
        self.assertEqual(b[1], 4.5)
        self.assertEqual(_arrays.as_input(a, HLR_F32, "a").addr, _arrays.as_input(b, HLR_F32, "b").addr)


def tearDownModule():
    assert "numpy" not in sys.modules, "numpy was imported"


if __name__ == "__main__":
    unittest.main()

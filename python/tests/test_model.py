"""Model: structure, forward/backward, training, evaluation, prediction, errors."""

import os
import subprocess
import sys
import tempfile
import unittest

import helpers
from helpers import hlr, np

needs_numpy = unittest.skipIf(np is None, "NumPy is not available")


def blobs(n=200, seed=0):
    """Three separable clusters in 4-D: (x float32 (n, 4), y int32 (n))."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    x = centres[y] + 0.3 * rng.standard_normal((n, 4)).astype(np.float32)
    return x, y


class TestStructure(unittest.TestCase):
    def test_build_and_shapes(self):
        m = hlr.Model(seed=1)
        self.assertFalse(m.built)
        m.add(hlr.Flatten()).add(hlr.Dense(6, 4))
        m.append(hlr.ReLU())
        m.build((2, 3))
        self.assertTrue(m.built)
        self.assertEqual(m.input_shape, (2, 3))
        self.assertEqual(m.output_shape, (4,))
        self.assertEqual(len(m), 3)
        self.assertEqual([l.type for l in m], ["flatten", "dense", "relu"])
        self.assertIs(m[1].model, m)
        self.assertEqual(m.param_count, 28)

    def test_summary(self):
        s = helpers.mlp().summary()
        self.assertIn("dense", s)
        self.assertIn("total parameters: 67", s)

    def test_repr_lists_layers(self):
        self.assertIn("(1): ReLU()", repr(helpers.mlp()))

    def test_state_dict_names_follow_sequential(self):
        m = helpers.mlp()
        self.assertEqual(list(m.state_dict()), ["0.weight", "0.bias", "2.weight", "2.bias"])
        other = helpers.mlp(seed=5)
        other.load_state_dict(m.state_dict())
        for k, v in other.state_dict().items():
            self.assertEqual(hlr._arrays.tolist(v), hlr._arrays.tolist(m.state_dict()[k]), k)
        with self.assertRaises(ValueError):
            other.load_state_dict({"0.weight": m.state_dict()["0.weight"]})
        with self.assertRaises(ValueError):
            other.load_state_dict({"0.bias": [1.0, 2.0]}, strict=False)  # wrong shape

    def test_argument_errors(self):
        with self.assertRaises(TypeError):
            hlr.Model([hlr.Dense(2, 2), "relu"])
        with self.assertRaises(TypeError):
            hlr.Model(hlr.Dense(2, 2))
        with self.assertRaises(ValueError):
            hlr.Model(seed=-1)
        with self.assertRaises(TypeError):
            hlr.Model(seed=1.5)
        m = hlr.Model()
        with self.assertRaises(TypeError):
            m.add("dense")
        with self.assertRaises(ValueError):
            m.build((0, 2))
        with self.assertRaises(TypeError):
            m.build("28x28")
        d = hlr.Dense(2, 2)
        m.add(d)
        with self.assertRaises(ValueError):
            hlr.Model().add(d)  # belongs to m already
        with self.assertRaises(ValueError):
            m.add(d)
        r = hlr.ReLU()
        with self.assertRaises(ValueError):
            hlr.Model([r, hlr.Tanh(), r])
        self.assertIsNone(r.model)  # refused before anything was handed over
        with self.assertRaises(ValueError):
            hlr.Model([d])

    def test_library_errors(self):
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.Model().build((3,))
        self.assertEqual(cm.exception.code, hlr.EINVAL)
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.Model([hlr.Dense(5, 2)], input_shape=(4,))
        self.assertEqual(cm.exception.code, hlr.ESHAPE)
        self.assertIn("dense (layer 0)", cm.exception.message)
        self.assertIn("shape mismatch", str(cm.exception))
        self.assertEqual(cm.exception.name, hlr.strerror(hlr.ESHAPE))
        m = helpers.mlp()
        with self.assertRaises(hlr.HlrError) as cm:
            m.build((4,))
        self.assertEqual(cm.exception.code, hlr.ESTATE)
        with self.assertRaises(hlr.HlrError) as cm:
            m.forward([[1.0, 2.0, 3.0]])
        self.assertEqual(cm.exception.code, hlr.ESHAPE)
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.Model([hlr.Dense(2, 2)]).output_shape
        self.assertEqual(cm.exception.code, hlr.ESTATE)

    def test_adding_to_a_built_model_frees_the_layer(self):
        m = helpers.mlp()
        r = hlr.ReLU()
        with self.assertRaises(hlr.HlrError) as cm:
            m.add(r)
        self.assertEqual(cm.exception.code, hlr.ESTATE)
        self.assertTrue(r.closed)  # the library freed it, as hlr_model_add documents
        with self.assertRaises(ValueError):
            r.type
        self.assertEqual(len(m), 3)


@needs_numpy
class TestRunning(unittest.TestCase):
    def test_forward_and_call(self):
        m = helpers.mlp()
        x = np.ones((2, 4), np.float32)
        np.testing.assert_array_equal(m(x), m.forward(x))

    def test_lazy_build_from_the_first_batch(self):
        m = hlr.Model([hlr.Flatten(), hlr.Dense(6, 2)])
        y = m.forward(np.zeros((3, 2, 3), np.float32))
        self.assertEqual(y.shape, (3, 2))
        self.assertEqual(m.input_shape, (2, 3))

    def test_backward_matches_the_chain_rule(self):
        m = hlr.Model([hlr.Dense(3, 2)], input_shape=(3,))
        p = m.layers[0].params()
        x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], np.float32)
        m.forward(x, training=True)
        dy = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
        dx = m.backward(dy)
        g = m.layers[0].grads()
        np.testing.assert_allclose(dx, dy @ p["weight"], rtol=1e-5)
        np.testing.assert_allclose(g["weight"], dy.T @ x, rtol=1e-5)
        np.testing.assert_allclose(g["bias"], dy.sum(axis=0), rtol=1e-5)

    def test_backward_without_training_forward(self):
        m = helpers.mlp()
        with self.assertRaises(hlr.HlrError) as cm:
            m.backward(np.ones((1, 3), np.float32))
        self.assertEqual(cm.exception.code, hlr.ESTATE)
        m.forward(np.ones((1, 4), np.float32))  # inference only
        with self.assertRaises(hlr.HlrError):
            m.backward(np.ones((1, 3), np.float32))

    def test_manual_training_loop_with_optimizer_step(self):
        m = hlr.Model([hlr.Dense(1, 1, bias=False)], input_shape=(1,))
        m.layers[0].params()["weight"][:] = 1.0
        opt = hlr.SGD(lr=0.1)
        m.forward(np.array([[2.0]], np.float32), training=True)
        m.backward(np.array([[1.0]], np.float32))  # dL/dw = 2
        opt.zero_grad()
        opt.step(m)
        self.assertAlmostEqual(float(m.layers[0].params()["weight"][0, 0]), 0.8, places=6)
        self.assertEqual(opt.steps, 1)

    def test_train_batch_lowers_the_loss(self):
        x, y = blobs(64)
        m = helpers.mlp(seed=2)
        opt = hlr.Adam(0.05)
        first = m.train_batch(opt, x, y)
        for _ in range(30):
            last = m.train_batch(opt, x, y)
        self.assertIsInstance(first, float)
        self.assertLess(last, first / 2)

    def test_train_batch_mse(self):
        m = hlr.Model([hlr.Dense(2, 1)], input_shape=(2,), seed=1)
        opt = hlr.SGD(0.1)
        x = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
        t = np.array([[1.0], [2.0], [3.0]], np.float32)
        losses = [m.train_batch(opt, x, t, loss="mse") for _ in range(200)]
        self.assertLess(losses[-1], 1e-2)
        self.assertLess(m.train_batch(opt, x, [0, 0, 0], loss="cross_entropy", label_smoothing=0.1), 100)

    def test_train_batch_argument_errors(self):
        m = helpers.mlp()
        x, y = blobs(8)
        with self.assertRaises(TypeError):
            m.train_batch("adam", x, y)
        with self.assertRaises(ValueError):
            m.train_batch(hlr.SGD(0.1), x, y, loss="hinge")
        with self.assertRaises(TypeError):
            m.train_batch(hlr.SGD(0.1), x, y.astype(np.float32))
        with self.assertRaisesRegex(ValueError, r"^train_batch: y\[0\] = \d+ is outside \[0, 3\)"):
            m.train_batch(hlr.SGD(0.1), x, y + 5)  # labels out of range, said in the caller's terms

    def test_errors_are_said_in_the_callers_terms(self):
        # Issue 15, defect 10: messages named C functions ("hlr_dataset_from: label 10 at 3 ...").
        m = helpers.mlp()
        x, y = blobs(8)
        y[3] = 10
        for call, where in ((lambda: m.fit(x, y, verbose=0), "fit"), (lambda: m.evaluate(x, y), "evaluate")):
            with self.assertRaises(ValueError) as cm:
                call()
            self.assertEqual(str(cm.exception), "%s: y[3] = 10 is outside [0, 3), the model's 3 classes" % where)
        y[3] = -1
        with self.assertRaisesRegex(ValueError, r"^fit: y\[3\] = -1 is outside"):
            m.fit(x, y, verbose=0)
        with self.assertRaises(hlr.HlrError) as cm:
            m.forward(np.zeros((2, 5), np.float32))
        self.assertEqual(cm.exception.code, hlr.ESHAPE)
        self.assertTrue(cm.exception.message.startswith("forward: input has shape (2, 5)"), cm.exception.message)
        with self.assertRaises(hlr.HlrError) as cm:
            m.fit(x, np.zeros(8, np.int32), batch_size=8, validation_split=0.99, verbose=0)
        self.assertTrue(cm.exception.message.startswith("fit: "), cm.exception.message)
        self.assertNotIn("hlr_", cm.exception.message)

    def test_fit_returns_history_and_learns(self):
        x, y = blobs(300)
        m = helpers.mlp(seed=4)
        seen = []
        hist = m.fit(x, y, epochs=3, batch_size=32, optimizer=hlr.Adam(0.02), validation_split=0.2,
                     callback=seen.append, verbose=0)
        self.assertEqual([h["epoch"] for h in hist], [1, 2, 3])
        self.assertEqual(seen, hist)
        self.assertGreater(hist[-1]["train_accuracy"], 0.9)
        self.assertGreater(hist[-1]["val_accuracy"], 0.9)
        self.assertGreater(hist[-1]["samples_per_second"], 0)
        r = m.evaluate(x, y)
        self.assertGreater(r["accuracy"], 0.9)

    def test_fit_without_validation_records_it_as_absent(self):
        # Issue 15, defect 7: the history used to say val_loss 0.0, val_accuracy 0.0.
        x, y = blobs(100)
        m = helpers.mlp(seed=2)
        hist = m.fit(x, y, epochs=2, batch_size=20, verbose=0)
        self.assertEqual([(h["val_loss"], h["val_accuracy"]) for h in hist], [(None, None)] * 2)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.hlr")
            m.save(path)
            saved = hlr.load(path).metadata.history
        self.assertEqual([(h["val_loss"], h["val_accuracy"]) for h in saved], [(None, None)] * 2)
        self.assertEqual([h["train_loss"] for h in saved], [h["train_loss"] for h in hist])

    def test_fit_default_optimizer_and_stopping_callback(self):
        x, y = blobs(100)
        m = helpers.mlp()
        hist = m.fit(x, y, epochs=5, batch_size=20, callback=lambda s: s["epoch"] == 2, verbose=0)
        self.assertEqual(len(hist), 2)

    def test_fit_callback_exception_propagates(self):
        x, y = blobs(50)

        def boom(stats):
            raise RuntimeError("stop here")

        with self.assertRaisesRegex(RuntimeError, "stop here"):
            helpers.mlp().fit(x, y, epochs=3, callback=boom, verbose=0)

    def test_fit_argument_errors(self):
        x, y = blobs(20)
        m = helpers.mlp()
        for kwargs, exc in [({"epochs": 0}, ValueError), ({"batch_size": 1.5}, TypeError),
                            ({"validation_split": 1.0}, ValueError), ({"optimizer": "sgd"}, TypeError),
                            ({"callback": 3}, TypeError)]:
            with self.assertRaises(exc, msg=kwargs):
                m.fit(x, y, **kwargs, verbose=0)
        with self.assertRaises(ValueError):
            m.fit(x, y[:10], verbose=0)
        with self.assertRaises(hlr.HlrError):
            m.fit(x, y, validation_split=0.99, verbose=0)  # nothing left to train on: the library says so

    def test_evaluate_confusion_and_top_k(self):
        x, y = blobs(90)
        m = helpers.mlp(seed=6)
        m.fit(x, y, epochs=5, batch_size=16, optimizer=hlr.Adam(0.02), verbose=0)
        r = m.evaluate(x, y, batch_size=7, top_k=2)
        c = r["confusion"]
        self.assertEqual(c.shape, (3, 3))
        self.assertEqual(int(c.sum()), 90)
        np.testing.assert_array_equal(c.sum(axis=1), np.bincount(y, minlength=3))
        self.assertAlmostEqual(r["accuracy"], np.trace(c) / 90)
        self.assertGreaterEqual(r["top_k_accuracy"], r["accuracy"])
        self.assertEqual(r["top_k"], 2)
        self.assertEqual(r["count"], 90)
        with self.assertRaises(hlr.HlrError):
            m.evaluate(x, y, top_k=4)

    def test_predict_probabilities_in_batches(self):
        x, _ = blobs(50)
        m = helpers.mlp(seed=3)
        p = m.predict(x)
        self.assertEqual(p.shape, (50, 3))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(m.predict(x, batch_size=7), p, rtol=1e-6)
        logits = m.forward(x)
        np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), rtol=1e-5)
        np.testing.assert_array_equal(m.predict_classes(x, batch_size=9), p.argmax(axis=1))
        self.assertEqual(m.predict_classes(x).dtype, np.int32)

    def test_uint8_images_are_pixels_scaled_by_1_over_255(self):
        # Issue 15, defect 8: uint8 used to be taken as floats 0..255 (saturated probabilities).
        m = hlr.Model([hlr.Flatten(), hlr.Dense(12, 3)], input_shape=(1, 3, 4), seed=1)
        pixels = (np.arange(24) * 11 % 256).astype(np.uint8).reshape(2, 1, 3, 4)
        scaled = pixels.astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(m.forward(pixels), m.forward(scaled))
        np.testing.assert_array_equal(m.predict(pixels), m.predict(scaled))
        np.testing.assert_array_equal(m.predict(memoryview(pixels.tobytes()).cast("B", (2, 1, 3, 4))),
                                      m.predict(scaled))
        y = np.array([0, 2], np.int32)
        ea, eb = m.evaluate(pixels, y), m.evaluate(scaled, y)
        self.assertEqual((ea["loss"], ea["accuracy"]), (eb["loss"], eb["accuracy"]))
        # the same training either way
        a = hlr.Model([hlr.Flatten(), hlr.Dense(12, 3)], input_shape=(1, 3, 4), seed=1)
        b = hlr.Model([hlr.Flatten(), hlr.Dense(12, 3)], input_shape=(1, 3, 4), seed=1)
        ha = a.fit(pixels, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
        hb = b.fit(scaled, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
        self.assertEqual([h["train_loss"] for h in ha], [h["train_loss"] for h in hb])
        # other integer types are numbers, not pixels
        np.testing.assert_array_equal(m.forward(pixels.astype(np.int32)), m.forward(pixels.astype(np.float32)))

    def test_predict_needs_a_class_output(self):
        m = hlr.Model([hlr.Dense(2, 3)], input_shape=(2, 2))  # output (2, 3) per sample
        with self.assertRaises(ValueError):
            m.predict(np.zeros((1, 2, 2), np.float32))


class TestFunctional(unittest.TestCase):
    @needs_numpy
    def test_cross_entropy_matches_numpy(self):
        logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], np.float32)
        labels = np.array([1, 2], np.int32)
        loss, grad = hlr.cross_entropy(logits, labels, return_grad=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        self.assertAlmostEqual(loss, float(-np.log(p[[0, 1], labels]).mean()), places=5)
        onehot = np.eye(3)[labels]
        np.testing.assert_allclose(grad, (p - onehot) / 2, rtol=1e-5, atol=1e-6)
        self.assertGreater(hlr.cross_entropy(logits, labels, label_smoothing=0.2), loss)

    def test_mse_loss(self):
        self.assertAlmostEqual(hlr.mse_loss([[1.0, 2.0]], [[0.0, 4.0]]), 2.5, places=6)
        loss, grad = hlr.mse_loss([[1.0, 2.0]], [[0.0, 4.0]], return_grad=True)
        self.assertEqual(hlr._arrays.tolist(grad), [[1.0, -2.0]])
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.mse_loss([[1.0, 2.0]], [[1.0]])
        self.assertEqual(cm.exception.code, hlr.ESHAPE)
        with self.assertRaises(ValueError):
            hlr.cross_entropy([[1.0]], [0], label_smoothing=1.0)


class TestGlobals(unittest.TestCase):
    def test_threads(self):
        # In a child process: the thread count is global, and a crash there
        # (a library bug) fails this test instead of the whole run.
        code = (
            "import hlr\n"
            "n = hlr.get_num_threads()\n"
            "m = hlr.Model([hlr.Dense(64, 64), hlr.ReLU(), hlr.Dense(64, 2)], input_shape=(64,))\n"
            "x = [[0.5] * 64] * 256\n"
            "before = m.forward(x).tolist()\n"
            "m.close()\n"
            "hlr.set_num_threads(1)\n"
            "assert hlr.get_num_threads() == 1\n"
            "m = hlr.Model([hlr.Dense(64, 64), hlr.ReLU(), hlr.Dense(64, 2)], input_shape=(64,))\n"
            "one = m.forward(x).tolist()\n"
            "hlr.set_num_threads(n)\n"
            "assert m.forward(x).tolist() == before, 'same seed and thread count, different results'\n"
            "assert max(abs(a - b) for r, s in zip(one, before) for a, b in zip(r, s)) < 1e-5\n"
            "try:\n"
            "    hlr.set_num_threads(0)\n"
            "except ValueError:\n"
            "    print('ok')\n"
        )
        r = subprocess.run([sys.executable, "-c", code], env=helpers.env_for_subprocess(), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"), r.stderr[-2000:])

    def test_log_callback_receives_failures(self):
        got = []
        hlr.set_log_callback(lambda level, msg: got.append((level, msg)))
        try:
            with self.assertRaises(hlr.HlrError):
                hlr.Model().build((1,))
        finally:
            hlr.set_log_callback(None)
        self.assertTrue(any("no layers" in msg for _, msg in got), got)
        with self.assertRaises(TypeError):
            hlr.set_log_callback(5)

    def test_strerror_and_last_error(self):
        self.assertEqual(hlr.strerror(hlr.OK), "success")
        self.assertEqual(hlr.strerror(hlr.ENOMEM), "out of memory")
        with self.assertRaises(hlr.HlrError):
            hlr.Model().build((1,))
        self.assertIn("no layers", hlr.last_error())


if __name__ == "__main__":
    unittest.main()

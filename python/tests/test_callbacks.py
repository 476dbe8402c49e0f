"""fit's training control from Python: Keras's callbacks, validation_data, class_weight, the
progress display, the History it returns, and opt.lr."""

import csv
import io
import os
import tempfile
import unittest

import helpers
from helpers import hlr, np

needs_numpy = unittest.skipUnless(hlr.HAVE_NUMPY, "needs NumPy")


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], np.float32)
    x = centres[y] + 0.6 * rng.standard_normal((n, 4)).astype(np.float32)
    return x, y


def params(m):
    return {k: np.array(v) for k, v in m.state_dict().items()}


@needs_numpy
class TestCallbacks(unittest.TestCase):
    def test_early_stopping_restores_the_best_weights(self):
        x, y = blobs(200)
        m, twin = helpers.mlp(seed=5), helpers.mlp(seed=5)
        es = hlr.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=2, restore_best_weights=True)
        hist = m.fit(x, y, epochs=10, batch_size=32, optimizer=hlr.Adam(1e-2), callbacks=[es], verbose=0)
        self.assertEqual(len(hist), 3)
        self.assertEqual((hist[-1]["stopping"], hist[-1]["best_epoch"]), (1, 1))
        twin.fit(x, y, epochs=1, batch_size=32, optimizer=hlr.Adam(1e-2), verbose=0)
        for k, v in params(twin).items():
            np.testing.assert_array_equal(params(m)[k], v, err_msg=k)
        # Keras's patience 0 stops at the first epoch without improvement, as 1 does
        hist = helpers.mlp().fit(x, y, epochs=10, callbacks=[hlr.callbacks.EarlyStopping("loss", 1e9, 0)],
                                 verbose=0)
        self.assertEqual(len(hist), 2)
        with self.assertRaises(hlr.HlrError) as cm:  # val_loss without validation data
            helpers.mlp().fit(x, y, callbacks=[hlr.callbacks.EarlyStopping()], verbose=0)
        self.assertIn("no validation data", cm.exception.message)
        with self.assertRaises(ValueError):
            hlr.callbacks.EarlyStopping(monitor="val_los")
        with self.assertRaises(ValueError):
            helpers.mlp().fit(x, y, callbacks=[hlr.callbacks.CSVLogger("a"), hlr.callbacks.CSVLogger("b")], verbose=0)

    def test_validation_data_checkpoint_and_csv(self):
        x, y = blobs(200, 1)
        xv, yv = blobs(60, 2)
        with tempfile.TemporaryDirectory() as d:
            ckpt, log = os.path.join(d, "best.hlr"), os.path.join(d, "log.csv")
            m = helpers.mlp(seed=1)
            hist = m.fit(x, y, epochs=4, batch_size=20, optimizer=hlr.SGD(0.2, momentum=0.9),
                         validation_data=(xv, yv), verbose=0,
                         callbacks=[hlr.callbacks.ModelCheckpoint(ckpt, monitor="val_loss", save_best_only=True),
                                    hlr.callbacks.CSVLogger(log)])
            self.assertAlmostEqual(hist[-1]["val_loss"], m.evaluate(xv, yv)["loss"], places=9)
            best = min(range(4), key=lambda e: hist[e]["val_loss"])
            saved = hlr.load(ckpt)
            self.assertAlmostEqual(saved.evaluate(xv, yv)["loss"], hist[best]["val_loss"], places=9)
            with open(log) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual([int(r["epoch"]) for r in rows], [1, 2, 3, 4])
            self.assertAlmostEqual(float(rows[2]["val_accuracy"]), hist[2]["val_accuracy"], places=6)
        self.assertEqual(hist.history["epoch"], [1, 2, 3, 4])
        with self.assertRaises(ValueError):
            m.fit(x, y, validation_split=0.1, validation_data=(xv, yv), verbose=0)

    def test_reduce_lr_and_the_lr_property(self):
        x, y = blobs(100)
        opt = hlr.SGD(0.1)
        rp = hlr.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9, min_lr=0.03)
        hist = helpers.mlp().fit(x, y, epochs=5, optimizer=opt, callbacks=[rp], verbose=0)
        np.testing.assert_allclose([h["lr"] for h in hist], [0.1, 0.1, 0.05, 0.03, 0.03], rtol=1e-6)
        opt.lr = 0.5
        self.assertAlmostEqual(opt.lr, 0.5)
        with self.assertRaises(ValueError):
            opt.lr = 0
        with self.assertRaises(ValueError):
            hlr.callbacks.ReduceLROnPlateau(factor=1.0)

    def test_class_weight(self):
        x, y = blobs(150, 3)
        m = helpers.mlp(seed=2)
        m.fit(x, y, epochs=15, batch_size=30, optimizer=hlr.Adam(2e-2), class_weight={0: 0.0, 1: 1.0, 2: 0.0},
              verbose=0)
        self.assertGreater((m.predict_classes(x) == 1).mean(), 0.9)
        with self.assertRaises(ValueError):
            m.fit(x, y, class_weight=[1.0, 1.0], verbose=0)
        with self.assertRaises(ValueError):
            m.fit(x, y, class_weight={5: 1.0}, verbose=0)
        with self.assertRaises(ValueError):
            m.fit(x, y, class_weight={0: -1.0}, verbose=0)

    def test_python_callbacks_and_progress_lines(self):
        x, y = blobs(64)
        seen = []

        class Recorder(hlr.callbacks.Callback):
            def on_epoch_end(self, epoch, logs):
                seen.append((epoch, logs["train_loss"]))
                return epoch == 2

        buf = io.StringIO()
        progress = hlr.callbacks.ProgressBar(1, stream=buf)  # not a terminal: one line per epoch
        self.assertFalse(progress.bar)
        m = helpers.mlp()
        hist = m.fit(x, y, epochs=5, callbacks=[Recorder()], verbose=0)
        self.assertEqual([e for e, _ in seen], [1, 2])
        self.assertEqual(len(hist), 2)
        # verbose=2 writes one line per epoch to standard output
        import contextlib
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            helpers.mlp().fit(x, y, epochs=3, validation_split=0.25, verbose=2)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertRegex(lines[0], r"^Epoch 1/3  loss \d+\.\d{4}  accuracy \d+\.\d\d%  val_loss ")

    def test_progress_bar_on_a_terminal(self):
        class Tty(io.StringIO):
            def isatty(self):
                return True

        x, y = blobs(256)
        buf = Tty()
        import contextlib
        with contextlib.redirect_stdout(buf):
            helpers.mlp().fit(x, y, epochs=1, batch_size=16, verbose=1)
        text = buf.getvalue()
        self.assertIn("\rEpoch 1/1 [", text)
        self.assertIn("256/256", text)
        self.assertIn("s left", text)
        self.assertTrue(text.endswith("\n"))

    def test_history_plot(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("matplotlib is not installed (python3-matplotlib)")
        x, y = blobs(64)
        hist = helpers.mlp().fit(x, y, epochs=2, validation_split=0.25, verbose=0)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "curves.png")
            hist.plot(path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()


@needs_numpy
class TestFineTuningAndPickle(unittest.TestCase):
    def test_frozen_layers_keep_their_weights(self):
        x, y = blobs(64)
        m = helpers.mlp(seed=3)
        first = m.layers[0]
        self.assertTrue(first.trainable)
        self.assertIs(first.requires_grad_(False), first)
        self.assertFalse(first.trainable)
        before = {k: np.array(v) for k, v in first.params().items()}
        m.fit(x, y, epochs=2, optimizer=hlr.AdamW(1e-2, weight_decay=0.1), verbose=0)
        for k, v in first.params().items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)
        self.assertFalse(np.array_equal(np.array(m.layers[2].params()["weight"]), helpers.mlp(seed=3).layers[2]
                                        .params()["weight"]))
        first.trainable = True
        with self.assertRaises(TypeError):
            first.trainable = "no"

    def test_models_pickle_through_the_file_format(self):
        import copy
        import pickle
        x, y = blobs(40)
        m = helpers.mlp(seed=8)
        m.fit(x, y, epochs=1, verbose=0)
        back = pickle.loads(pickle.dumps(m))
        np.testing.assert_array_equal(back.predict(x), m.predict(x))
        self.assertEqual(len(back.metadata.history), 1)
        twin = copy.deepcopy(m)
        np.testing.assert_array_equal(twin.forward(x), m.forward(x))
        with self.assertRaises(TypeError):
            pickle.dumps(hlr.Model([hlr.Dense(2, 2)]))


@needs_numpy
class TestAugment(unittest.TestCase):
    def test_augment_is_reproducible_and_checked(self):
        rng = np.random.default_rng(0)
        x = rng.random((32, 1, 8, 8), dtype=np.float32)
        y = (np.arange(32) % 3).astype(np.int32)

        def run(aug):
            m = hlr.Model([hlr.Flatten(), hlr.Dense(64, 3)], input_shape=(1, 8, 8), seed=1)
            m.fit(x, y, epochs=2, batch_size=8, optimizer=hlr.SGD(0.1), augment=aug, verbose=0)
            return np.array(m.layers[1].params()["weight"])

        a = run({"rotate": 10, "scale": 0.1, "shear": 5, "elastic_alpha": 2})
        np.testing.assert_array_equal(a, run({"rotate": 10, "scale": 0.1, "shear": 5, "elastic_alpha": 2}))
        self.assertFalse(np.array_equal(a, run(None)))
        with self.assertRaises(ValueError):
            run({"rotation": 10})
        with self.assertRaises(hlr.HlrError):
            run({"rotate": 500})


@needs_numpy
class TestInputGradient(unittest.TestCase):
    def test_matches_finite_differences_and_changes_nothing(self):
        m = hlr.Model([hlr.Flatten(), hlr.Dense(12, 8), hlr.Tanh(), hlr.Dropout(0.5), hlr.Dense(8, 3)],
                      input_shape=(1, 3, 4), seed=4)
        x = np.random.default_rng(1).random((2, 1, 3, 4), dtype=np.float32)
        before = m.predict(x)
        g = m.input_gradient(x, target=[2, 0])
        self.assertEqual(g.shape, x.shape)
        np.testing.assert_array_equal(m.predict(x), before)
        h = 1e-3
        for idx in [(0, 0, 1, 2), (1, 0, 2, 3), (1, 0, 0, 0)]:
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            k = 2 if idx[0] == 0 else 0
            fd = (m.forward(xp)[idx[0], k] - m.forward(xm)[idx[0], k]) / (2 * h)
            self.assertAlmostEqual(fd, g[idx], delta=2e-3 + 2e-2 * abs(fd))
        # one class for all, the predicted class, and the loss
        np.testing.assert_array_equal(m.input_gradient(x, target=1)[0], m.input_gradient(x, target=[1, 1])[0])
        self.assertEqual(m.input_gradient(x).shape, x.shape)
        self.assertEqual(m.input_gradient(x, target=[0, 1], loss=True).shape, x.shape)
        with self.assertRaises(ValueError):
            m.input_gradient(x, loss=True)
        with self.assertRaises(ValueError):
            m.input_gradient(x, target=[0, 5])

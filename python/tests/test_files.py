"""Model files from Python: save/load, bytes, metadata, inspect, clones; and
identical predictions from C++ (examples/cpp) and Python for one saved model."""

import os
import re
import subprocess
import tempfile
import threading
import unittest

import helpers
from helpers import has, hlr, np

needs_files = unittest.skipUnless(has("hlr_model_save") and has("hlr_model_load"),
                                  "the loaded library cannot save models yet")
needs_numpy = unittest.skipIf(np is None, "NumPy is not available")


def trained_mlp(seed=0, n=200):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    m = helpers.mlp(seed=seed)
    opt = hlr.Adam(0.01)
    m.fit(x, y, epochs=2, batch_size=32, optimizer=opt, verbose=0)
    return m, opt, x, y


@needs_files
@needs_numpy
class TestSaveLoad(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "m.hlr")

    def tearDown(self):
        self.tmp.cleanup()

    def test_round_trip_gives_identical_predictions(self):
        m, _, x, _ = trained_mlp()
        m.save(self.path)
        again = hlr.load(self.path)
        np.testing.assert_array_equal(again.predict(x), m.predict(x))
        self.assertEqual([l.type for l in again.layers], ["dense", "relu", "dense"])
        self.assertEqual(again.input_shape, (4,))
        self.assertEqual(again.output_shape, (3,))
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(again.state_dict()[k], v, err_msg=k)
        self.assertEqual(again.epochs_trained, 2)
        self.assertIn("dense", again.summary())

    def test_fit_settings_come_back_from_the_file(self):
        self.assertIsNone(helpers.mlp().fit_settings())  # never fitted
        m, opt, x, y = trained_mlp()
        want = {"batch_size": 32, "shuffle": True, "validation_split": 0.0, "augment_shift": 0,
                "augment": {"rotate": 0.0, "scale": 0.0, "shear": 0.0, "elastic_alpha": 0.0, "elastic_sigma": 4.0}}
        self.assertEqual(m.fit_settings(), want)
        m.save(self.path, optimizer=opt)
        m2, opt2 = hlr.load(self.path, return_optimizer=True)
        got = m2.fit_settings()
        self.assertEqual(got, want)
        # resuming alike: the settings go back into fit(), and both models take the same steps
        m.fit(x, y, epochs=1, optimizer=opt, verbose=0, **want)
        m2.fit(x, y, epochs=1, optimizer=opt2, verbose=0, **got)
        np.testing.assert_array_equal(m2.state_dict()["0.weight"], m.state_dict()["0.weight"])

    def test_bytes_round_trip(self):
        m, _, x, _ = trained_mlp()
        data = m.to_bytes(compression=0)
        self.assertIsInstance(data, bytes)
        np.testing.assert_array_equal(hlr.load_bytes(data).forward(x), m.forward(x))
        np.testing.assert_array_equal(hlr.load_bytes(bytearray(data)).forward(x), m.forward(x))
        m.save(self.path, compression=0)
        with open(self.path, "rb") as f:
            self.assertEqual(len(f.read()), len(data))

    def test_training_resumes_from_the_saved_optimizer(self):
        m, opt, x, y = trained_mlp()
        m.save(self.path, optimizer=opt)
        m2, opt2 = hlr.load(self.path, return_optimizer=True)
        self.assertIsNotNone(opt2)
        self.assertEqual(opt2.steps, opt.steps)
        # The same next step on both gives the same weights.
        m.train_batch(opt, x[:16], y[:16])
        m2.train_batch(opt2, x[:16], y[:16])
        np.testing.assert_array_equal(m2.state_dict()["0.weight"], m.state_dict()["0.weight"])
        with self.assertRaises(ValueError):
            m.train_batch(opt2, x[:16], y[:16])  # bound to m2
        m.save(self.path)
        self.assertIsNone(hlr.load(self.path, return_optimizer=True)[1])

    def test_metadata(self):
        m, _, _, _ = trained_mlp()
        md = m.metadata
        md.dataset = "blobs"
        md.class_names = ["zero", "one", "two"]
        md["author"] = "tests"
        md["note"] = "ünïcode"
        self.assertEqual(md["author"], "tests")
        self.assertIn("note", md)
        del md["note"]
        self.assertNotIn("note", md)
        with self.assertRaises(KeyError):
            md["missing"]
        self.assertEqual(md.get("missing", 5), 5)
        self.assertEqual(len(md.history), 2)
        self.assertEqual(md.history[-1]["epoch"], 2)
        m.save(self.path)
        loaded = hlr.load(self.path).metadata
        self.assertEqual(loaded.dataset, "blobs")
        self.assertEqual(loaded.class_names, ["zero", "one", "two"])
        self.assertEqual(dict(loaded.items()), {"author": "tests"})
        self.assertEqual(len(loaded.history), 2)
        loaded.clear_history()
        self.assertEqual(loaded.history, [])
        with self.assertRaises(TypeError):
            md.class_names = "abc"
        with self.assertRaises(TypeError):
            md["k"] = 5
        with self.assertRaises(hlr.HlrError):
            md[""] = "empty key"

    def test_inspect(self):
        m, opt, _, _ = trained_mlp()
        m.metadata.class_names = ["a", "b", "c"]
        m.save(self.path, optimizer=opt)
        info = hlr.inspect(self.path)
        s = info["summary"]
        self.assertEqual(s["input_shape"], (4,))
        self.assertEqual(s["param_count"], m.param_count)
        self.assertTrue(s["crc_ok"])
        self.assertTrue(s["has_optimizer"])
        self.assertEqual(s["optimizer"], "adam")
        self.assertEqual(s["writer_version"], hlr.version())
        self.assertEqual([l["type"] for l in info["layers"]], ["dense", "relu", "dense"])
        self.assertEqual(info["layers"][2]["output_shape"], (3,))
        self.assertTrue(all(len(c["tag"]) == 4 for c in info["chunks"]))
        self.assertEqual(info["metadata"]["class_names"], ["a", "b", "c"])
        with open(self.path, "rb") as f:
            self.assertEqual(hlr.inspect(f.read())["summary"]["param_count"], m.param_count)

    def test_errors(self):
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load(os.path.join(self.tmp.name, "missing.hlr"))
        self.assertEqual(cm.exception.code, hlr.EIO)
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_bytes(b"not a model file at all")
        self.assertEqual(cm.exception.code, hlr.EFORMAT)
        m, _, _, _ = trained_mlp()
        data = bytearray(m.to_bytes())
        data[len(data) // 2] ^= 0x40  # flip one bit of the payload
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_bytes(bytes(data))
        self.assertEqual(cm.exception.code, hlr.EFORMAT)
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.Model([hlr.Dense(2, 2)]).save(self.path)  # not built
        self.assertEqual(cm.exception.code, hlr.ESTATE)
        with self.assertRaises(hlr.HlrError) as cm:
            m.save(os.path.join(self.tmp.name, "no", "such", "dir", "m.hlr"))
        self.assertEqual(cm.exception.code, hlr.EIO)
        with self.assertRaises(TypeError):
            m.save(5)
        with self.assertRaises(ValueError):
            m.save(self.path, compression=10)
        with self.assertRaises(TypeError):
            hlr.load_bytes(12)
        self.assertFalse(os.path.exists(self.path))


@unittest.skipUnless(has("hlr_model_clone_shared"), "the loaded library has no shared clones yet")
@needs_numpy
class TestCloneShared(unittest.TestCase):
    def test_clones_predict_in_threads(self):
        m, _, x, _ = trained_mlp()
        want = m.predict(x)
        clones = [m.clone_shared() for _ in range(2)]
        del m  # the clones keep it alive
        got = [None, None]

        def work(i):
            for _ in range(20):
                got[i] = clones[i].predict(x)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for g in got:
            np.testing.assert_array_equal(g, want)
        with self.assertRaises(hlr.HlrError) as cm:
            clones[0].train_batch(hlr.SGD(0.1), x[:4], [0, 1, 2, 0])
        self.assertEqual(cm.exception.code, hlr.ESTATE)


def cpp_example():
    path = os.environ.get("HLR_CPP_EXAMPLE") or os.path.join(helpers.ROOT, "bin", "hlr-classify-cpp")
    return path if os.path.exists(path) else None


def mnist_test_files():
    for images, labels in (("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
                           ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
        ip, lp = os.path.join(helpers.DATA_DIR, images), os.path.join(helpers.DATA_DIR, labels)
        if os.path.exists(ip) and os.path.exists(lp):
            return ip, lp
    return None


@needs_files
@needs_numpy
@unittest.skipUnless(cpp_example(), "the C++ example is not built (make test builds bin/hlr-classify-cpp)")
@unittest.skipUnless(mnist_test_files(), "MNIST is not in %s (make data)" % helpers.DATA_DIR)
class TestCppAgrees(unittest.TestCase):
    def test_cpp_and_python_predict_the_same(self):
        images, labels = mnist_test_files()
        xt, yt = hlr.load_idx(images, labels)
        n = 300
        m = hlr.Model([hlr.Flatten(), hlr.Dense(784, 32), hlr.ReLU(), hlr.Dense(32, 10)], input_shape=(1, 28, 28),
                      seed=1)
        m.fit(xt[:2000], yt[:2000], epochs=1, batch_size=50, optimizer=hlr.Adam(2e-3), verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "mlp.hlr")
            m.save(path)
            r = subprocess.run([cpp_example(), path, images, labels, "--limit", str(n), "--all", "--probs"],
                               capture_output=True, text=True, timeout=60)
            py = hlr.load(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = re.findall(r"^image (\d+): predicted (\d+), label (\d+), probs (.*)$", r.stdout, flags=re.M)
        self.assertEqual(len(rows), n)
        cpp_classes = np.array([int(c) for _, c, _, _ in rows])
        cpp_probs = np.array([[float(v) for v in p.split()] for _, _, _, p in rows], np.float32)
        probs = py.predict(xt[:n])
        np.testing.assert_array_equal(cpp_classes, probs.argmax(axis=1))
        np.testing.assert_array_equal(cpp_classes, py.predict_classes(xt[:n]))
        np.testing.assert_array_equal(cpp_probs, probs)  # %.9g round-trips float32 exactly
        acc = float((cpp_classes == yt[:n]).mean())
        self.assertIn("accuracy: %.2f%% (%d images)" % (100 * acc, n), r.stdout)

    def test_cpp_reports_errors(self):
        images, labels = mnist_test_files()
        r = subprocess.run([cpp_example(), "/nonexistent.hlr", images, labels], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("hlr_model_load", r.stderr)
        self.assertIn("/nonexistent.hlr", r.stderr)
        r = subprocess.run([cpp_example()], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)


if __name__ == "__main__":
    unittest.main()

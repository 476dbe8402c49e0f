"""Trust from Python: hlr.calibration on hand-worked numbers, a model's
fit_temperature / temperature / calibration (the C side is checked in tests/test_calibrate.c)."""

import math
import os
import tempfile
import unittest

import helpers  # noqa: F401 (finds the package)
from helpers import hlr, np

needs_numpy = unittest.skipUnless(hlr.HAVE_NUMPY, "needs NumPy")


class TestMetrics(unittest.TestCase):
    def test_worked_numbers(self):
        # confidences 0.875 (right), 0.75 (wrong), 0.625 (right), 0.5625 (right): one per bin of ten
        probs = [[0.875, 0.125], [0.25, 0.75], [0.625, 0.375], [0.4375, 0.5625]]
        c = hlr.calibration(probs, [0, 0, 0, 1], bins=10)
        self.assertAlmostEqual(c["ece"], (0.125 + 0.75 + 0.375 + 0.4375) / 4)
        self.assertAlmostEqual(c["mce"], 0.75)
        self.assertAlmostEqual(c["accuracy"], 0.75)
        self.assertAlmostEqual(c["nll"], -(math.log(0.875) + math.log(0.25) + math.log(0.625) + math.log(0.5625)) / 4)
        self.assertEqual(c["bin_count"], [0, 0, 0, 0, 0, 1, 1, 1, 1, 0])
        self.assertEqual(c["count"], 4)

    def test_refusals(self):
        with self.assertRaises(ValueError):
            hlr.calibration([[0.5, 0.5]], [0], bins=0)
        with self.assertRaises(hlr.HlrError) as e:
            hlr.calibration([[0.5, 1.5]], [0])
        self.assertIn("outside [0, 1]", str(e.exception))


@needs_numpy
class TestTemperature(unittest.TestCase):
    def test_fit_temperature_calibrates_without_changing_classes(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3000, 5)).astype(np.float32)
        w = rng.standard_normal((5, 3)).astype(np.float32)
        # labels drawn from softmax(x w / 3): logits of x w are three times too sure
        z = x @ w / 3
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([rng.choice(3, p=row) for row in p], np.int32)
        m = hlr.Model([hlr.Dense(5, 3, bias=False)], input_shape=(5,))
        m.load_state_dict({"0.weight": w.T.copy()})
        self.assertEqual(m.temperature, 1.0)
        before = m.calibration(x[2000:], y[2000:])
        classes = m.predict(x[2000:]).argmax(1)
        t = m.fit_temperature(x[:2000], y[:2000])
        self.assertAlmostEqual(t, 3.0, delta=0.3)
        self.assertEqual(m.temperature, t)
        after = m.calibration(x[2000:], y[2000:])
        self.assertLess(after["ece"], before["ece"])
        self.assertLess(after["nll"], before["nll"])
        self.assertEqual(after["accuracy"], before["accuracy"])
        self.assertTrue((m.predict(x[2000:]).argmax(1) == classes).all())
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.hlr")
            m.save(path)
            self.assertAlmostEqual(hlr.load(path).temperature, t)
        with self.assertRaises(hlr.HlrError):
            m.temperature = 0


@needs_numpy
class TestExplain(unittest.TestCase):
    def test_maps(self):
        rng = np.random.default_rng(1)
        m = hlr.Model([hlr.Conv2d(1, 4, 3, padding=1), hlr.ReLU(), hlr.Flatten(), hlr.Dense(4 * 36, 3)],
                      input_shape=(1, 6, 6))
        x = rng.random((4, 1, 6, 6), dtype=np.float32)
        sal = m.explain(x, target=1)
        self.assertEqual(sal.shape, x.shape)
        np.testing.assert_array_equal(sal, np.abs(m.input_gradient(x, target=1)))
        ig = m.explain(x, target=[0, 1, 2, 0], method="ig", steps=256)
        logits, base = m.forward(x), m.forward(np.zeros_like(x))
        for i, t in enumerate([0, 1, 2, 0]):
            diff = logits[i, t] - base[i, t]
            self.assertAlmostEqual(float(ig[i].sum()), float(diff), delta=0.01 * abs(diff) + 1e-6)
        cam = m.explain(x, method="gradcam")
        self.assertTrue((cam >= 0).all())
        sg = m.explain(x, method="smoothgrad", steps=4, seed=3)
        np.testing.assert_array_equal(sg, m.explain(x, method="smoothgrad", steps=4, seed=3))
        with self.assertRaises(ValueError):
            m.explain(x, method="lime")


@needs_numpy
class TestRobustness(unittest.TestCase):
    def test_attacks_and_adversarial_training(self):
        rng = np.random.default_rng(2)
        y = np.arange(400, dtype=np.int32) % 2
        x = (rng.random((400, 1, 4, 4)) * 0.5).astype(np.float32)
        x[y == 1, :, :2, :] += 0.5  # class 1: the top half brighter
        m = hlr.Model([hlr.Flatten(), hlr.Dense(16, 2)], input_shape=(1, 4, 4))
        m.fit(x, y, epochs=5, batch_size=20, optimizer=hlr.Adam(1e-2), verbose=0)
        adv = m.attack(x[:50], y[:50], eps=0.1)
        self.assertEqual(adv.shape, (50, 1, 4, 4))
        self.assertLessEqual(float(np.abs(adv - x[:50]).max()), 0.1 + 1e-6)
        self.assertTrue(((adv >= 0) & (adv <= 1)).all())
        clean = m.evaluate(x, y)["accuracy"]
        self.assertEqual(m.robust_accuracy(x, y, eps=0.0), clean)
        self.assertLess(m.robust_accuracy(x, y, eps=0.25, steps=10), clean)
        m2 = hlr.Model([hlr.Flatten(), hlr.Dense(16, 2)], input_shape=(1, 4, 4))
        m2.fit(x, y, epochs=5, batch_size=20, optimizer=hlr.Adam(1e-2), verbose=0,
               adversarial={"eps": 0.25, "steps": 5, "random_start": True}, adversarial_fraction=1.0)
        self.assertGreaterEqual(m2.robust_accuracy(x, y, eps=0.25, steps=10), m.robust_accuracy(x, y, eps=0.25,
                                                                                                 steps=10))
        with self.assertRaises(ValueError):
            m.fit(x, y, adversarial={"epsilon": 1})

"""Optimizers: arguments, torch's update rules, schedules, clipping, binding."""

import math
import unittest

import helpers
from helpers import hlr


def one_weight(w=1.0):
    """A model y = w x with one weight, and a way to set its gradient to g."""
    m = hlr.Model([hlr.Dense(1, 1, bias=False)], input_shape=(1,))
    m.layers[0].params()["weight"][0, 0] = w

    def step(opt, g):
        m.forward([[1.0]], training=True)
        m.backward([[g]])  # dL/dw = g * x = g
        opt.step(m)
        return m.layers[0].params()["weight"][0, 0]

    return m, step


class TestOptimizers(unittest.TestCase):
    def test_sgd_momentum_nesterov_weight_decay(self):
        _, step = one_weight(1.0)
        opt = hlr.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.5)
        # torch: g = 2 + 0.5 * 1 = 2.5; v = 2.5; p -= 0.1 * (g + 0.9 v) = 0.1 * 4.75
        self.assertAlmostEqual(step(opt, 2.0), 1.0 - 0.475, places=6)
        self.assertEqual(repr(opt), "SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5)")

    def test_adam_first_step_moves_by_lr(self):
        _, step = one_weight(1.0)
        self.assertAlmostEqual(step(hlr.Adam(0.01), 3.0), 0.99, places=6)
        _, step = one_weight(1.0)
        # AdamW: p -= lr * wd * p first, then the Adam step of size lr.
        self.assertAlmostEqual(step(hlr.AdamW(0.01, weight_decay=0.1), 3.0), 1.0 - 0.001 - 0.01, places=6)

    def test_argument_errors(self):
        for f in (lambda: hlr.SGD(), lambda: hlr.SGD("0.1"), lambda: hlr.Adam(betas=0.9),
                  lambda: hlr.Adam(betas=("a", 0.9)), lambda: hlr.SGD(0.1, nesterov="yes")):
            with self.assertRaises(TypeError):
                f()
        for f in (lambda: hlr.SGD(0.0), lambda: hlr.SGD(0.1, momentum=1.0), lambda: hlr.SGD(0.1, nesterov=True),
                  lambda: hlr.Adam(-1.0), lambda: hlr.Adam(betas=(0.9, 1.0)), lambda: hlr.AdamW(eps=0.0),
                  lambda: hlr.AdamW(weight_decay=-0.1), lambda: hlr.SGD(float("inf"))):
            with self.assertRaises(ValueError):
                f()

    def test_schedules(self):
        opt = hlr.SGD(1.0).set_schedule("step", step_size=2, gamma=0.5)
        lrs = []
        for _ in range(5):
            lrs.append(opt.lr)
            opt.schedule_step()
        self.assertEqual(lrs, [1.0, 1.0, 0.5, 0.5, 0.25])
        opt = hlr.Adam(1.0).set_schedule("cosine", T_max=4, eta_min=0.0, warmup_steps=2, warmup_start=0.5)
        self.assertAlmostEqual(opt.lr, 0.5, places=6)
        opt.schedule_step()
        self.assertAlmostEqual(opt.lr, 0.75 * (1 + math.cos(math.pi / 4)) / 2, places=6)
        with self.assertRaises(TypeError):
            opt.set_schedule("step")
        with self.assertRaises(ValueError):
            opt.set_schedule("linear")
        with self.assertRaises(ValueError):
            opt.set_schedule("cosine", T_max=0)

    def test_clip_grad_norm(self):
        _, step = one_weight(1.0)
        opt = hlr.SGD(1.0).clip_grad_norm(0.5)
        self.assertAlmostEqual(step(opt, 10.0), 0.5, places=4)
        with self.assertRaises(ValueError):
            opt.clip_grad_norm(-1)

    def test_one_optimizer_per_model(self):
        opt = hlr.SGD(0.1)
        a, b = helpers.mlp(), helpers.mlp()
        x, y = [[0.0, 1.0, 2.0, 3.0]], [1]
        a.train_batch(opt, x, y)
        with self.assertRaises(ValueError):
            b.train_batch(opt, x, y)
        with self.assertRaises(ValueError):
            opt.step(b)

    def test_optimizer_keeps_its_model_memory(self):
        # The C optimizer remembers its model by address; the Python object
        # keeps that model alive so the address cannot be reused.
        opt = hlr.SGD(0.1)
        m = helpers.mlp()
        m.train_batch(opt, [[0.0, 1.0, 2.0, 3.0]], [1])
        live = hlr._handle.live_handles()
        m.close()
        self.assertEqual(hlr._handle.live_handles(), live)
        opt.close()
        self.assertEqual(hlr._handle.live_handles(), live - 2)


if __name__ == "__main__":
    unittest.main()

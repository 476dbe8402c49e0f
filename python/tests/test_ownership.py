"""Handles are freed exactly once (close, with, garbage collection); a model's
layers and parameter views keep it alive; no leaks over 10,000 cycles."""

import gc
import unittest

import helpers
from helpers import hlr, np
from hlr._handle import live_handles


class Live:
    """The change in owned handles across a with-block."""

    def __enter__(self):
        gc.collect()
        self.before = live_handles()
        return self

    @property
    def delta(self):
        return live_handles() - self.before

    def __exit__(self, *exc):
        return False


class TestFreedOnce(unittest.TestCase):
    def test_close_is_idempotent(self):
        with Live() as live:
            m = helpers.mlp()
            self.assertEqual(live.delta, 1)  # the layers belong to the model
            m.close()
            self.assertEqual(live.delta, 0)
            m.close()
            self.assertEqual(live.delta, 0)
            self.assertTrue(m.closed)
            with self.assertRaises(ValueError):
                m.forward([[1.0, 2.0, 3.0, 4.0]])
            self.assertEqual(repr(m), "Model(<closed>)")

    def test_with_block(self):
        with Live() as live:
            with hlr.Model([hlr.Dense(2, 2)], input_shape=(2,)) as m, hlr.Adam() as opt, hlr.ReLU() as r:
                self.assertEqual(live.delta, 3)
            self.assertEqual(live.delta, 0)
            self.assertTrue(m.closed and r.closed)
            with self.assertRaises(ValueError):
                opt.lr

    def test_garbage_collection(self):
        with Live() as live:
            m = helpers.mlp()
            opt = hlr.SGD(0.1)
            d = hlr.Dense(3, 3)
            self.assertEqual(live.delta, 3)
            del m, opt, d
            self.assertEqual(live.delta, 0)  # reference counting frees at once

    def test_layer_is_owned_by_the_model_once_added(self):
        with Live() as live:
            d = hlr.Dense(2, 2)
            self.assertEqual(live.delta, 1)
            m = hlr.Model([d], input_shape=(2,))
            self.assertEqual(live.delta, 1)  # only the model: it owns d now
            d.close()  # lets go of the model; frees nothing
            self.assertEqual(live.delta, 1)
            self.assertEqual(len(m.layers), 1)
            m.close()
            self.assertEqual(live.delta, 0)

    def test_a_layer_keeps_its_model_alive(self):
        with Live() as live:
            m = hlr.Model([hlr.Dense(2, 3)], input_shape=(2,))
            layer = m.layers[0]
            del m
            gc.collect()
            self.assertEqual(live.delta, 1)
            self.assertEqual(layer.type, "dense")
            self.assertEqual(len(layer.params()["bias"]), 3)
            self.assertEqual(layer.model.output_shape, (3,))
            del layer
            gc.collect()
            self.assertEqual(live.delta, 0)

    def test_views_keep_the_memory_after_close(self):
        with Live() as live:
            m = hlr.Model([hlr.Dense(2, 3)], input_shape=(2,))
            layer = m.layers[0]
            w = layer.params()["weight"]
            m.close()
            self.assertEqual(live.delta, 1)  # deferred: the view still reads the model's memory
            with self.assertRaises(ValueError):
                layer.params()  # the layer follows its model's closing
            w[0, 0] = 5.0
            self.assertEqual(w[0, 0], 5.0)
            del w
            self.assertEqual(live.delta, 0)

    def test_closing_a_layer_twice(self):
        with Live() as live:
            r = hlr.ReLU()
            r.close()
            r.close()
            self.assertEqual(live.delta, 0)
            with self.assertRaises(ValueError):
                hlr.Model().add(r)


class TestNoLeaks(unittest.TestCase):
    def cycle(self, x, y):
        with hlr.Model([hlr.Dense(4, 8), hlr.ReLU(), hlr.Dropout(0.1), hlr.Dense(8, 3)],
                       input_shape=(4,)) as m, hlr.SGD(0.01, momentum=0.9) as opt:
            m.forward(x)
            m.train_batch(opt, x, y)
            m.layers[0].params()
        stray = hlr.Dense(2, 2)  # freed by garbage collection
        del stray

    def test_ten_thousand_create_free_cycles(self):
        x = [[0.5, -1.0, 2.0, 0.0]] * 4
        y = [0, 1, 2, 1]
        if np is not None:
            x, y = np.array(x, np.float32), np.array(y, np.int32)
        for _ in range(500):  # warm up allocator pools and caches
            self.cycle(x, y)
        gc.collect()
        handles, rss = live_handles(), helpers.rss_kib()
        for _ in range(10000):
            self.cycle(x, y)
        gc.collect()
        grown = helpers.rss_kib() - rss
        self.assertEqual(live_handles(), handles)
        # Each cycle allocates a few KiB in C; a leak of even one tensor
        # handle per cycle would add > 1 MiB.
        self.assertLess(grown, 1024, "RSS grew by %d KiB over 10,000 cycles" % grown)


if __name__ == "__main__":
    unittest.main()

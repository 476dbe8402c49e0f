"""Every layer class: construction, argument checks, parameter names and shapes, values."""

import math
import unittest

import helpers
from helpers import has, hlr, np

needs_numpy = unittest.skipIf(np is None, "NumPy is not available")
needs_conv = unittest.skipUnless(has("hlr_conv2d") and has("hlr_maxpool2d") and has("hlr_batchnorm2d"),
                                 "the loaded library has no convolution layers yet")


def run(layer, x, input_shape=None, training=False):
    """Build a one-layer model for x's samples and forward x."""
    m = hlr.Model([layer], input_shape=input_shape or x.shape[1:], seed=3)
    return m, m.forward(x, training=training)


class TestConstruction(unittest.TestCase):
    def test_types_and_reprs(self):
        cases = [
            (hlr.Dense(3, 2), "dense", "Dense(in_features=3, out_features=2, bias=True)"),
            (hlr.Linear(3, 2, bias=False), "dense", "Dense(in_features=3, out_features=2, bias=False)"),
            (hlr.ReLU(), "relu", "ReLU()"),
            (hlr.LeakyReLU(0.2), "leaky_relu", "LeakyReLU(negative_slope=0.2)"),
            (hlr.Sigmoid(), "sigmoid", "Sigmoid()"),
            (hlr.Tanh(), "tanh", "Tanh()"),
            (hlr.GELU(), "gelu", "GELU()"),
            (hlr.Softmax(), "softmax", "Softmax(dim=-1)"),
            (hlr.Dropout(0.25), "dropout", "Dropout(p=0.25)"),
            (hlr.Flatten(), "flatten", "Flatten()"),
        ]
        for layer, ctype, text in cases:
            with layer:
                self.assertEqual(layer.type, ctype)
                self.assertEqual(repr(layer), text)
                self.assertIsNone(layer.model)

    @needs_conv
    def test_conv_types_and_reprs(self):
        cases = [
            (hlr.Conv2d(1, 4, 3, padding=1), "conv2d"),
            (hlr.MaxPool2d(2), "maxpool2d"),
            (hlr.AvgPool2d(2, stride=1), "avgpool2d"),
            (hlr.GlobalAvgPool2d(), "global_avgpool2d"),
            (hlr.BatchNorm2d(4), "batchnorm2d"),
            (hlr.BatchNorm1d(4), "batchnorm1d"),
        ]
        for layer, ctype in cases:
            with layer:
                self.assertEqual(layer.type, ctype)
        self.assertEqual(repr(hlr.Conv2d(2, 4, (3, 5), stride=2, padding=1, groups=2, bias=False)),
                         "Conv2d(in_channels=2, out_channels=4, kernel_size=(3, 5), stride=2, padding=1, dilation=1, "
                         "groups=2, bias=False)")
        self.assertEqual(repr(hlr.MaxPool2d(3)), "MaxPool2d(kernel_size=3, stride=3, padding=0)")
        self.assertEqual(repr(hlr.MaxPool2d((2, 1))), "MaxPool2d(kernel_size=(2, 1), stride=(2, 1), padding=(0, 0))")

    def test_wrong_arguments_raise_before_c(self):
        type_errors = [
            lambda: hlr.Dense(3.0, 2), lambda: hlr.Dense("3", 2), lambda: hlr.Dense(True, 2),
            lambda: hlr.Dense(3, 2, bias="yes"), lambda: hlr.LeakyReLU("x"), lambda: hlr.Dropout(None),
            lambda: hlr.Conv2d(1, 2, 3.5), lambda: hlr.MaxPool2d(None),
            lambda: hlr.BatchNorm2d(4, eps="small"),
        ]
        value_errors = [
            lambda: hlr.Dense(0, 2), lambda: hlr.Dense(3, -1), lambda: hlr.Dense(2**31, 2),
            lambda: hlr.Dropout(1.0), lambda: hlr.Dropout(-0.1), lambda: hlr.LeakyReLU(float("nan")),
            lambda: hlr.Softmax(dim=0),
            lambda: hlr.Conv2d(3, 4, 3, groups=2), lambda: hlr.Conv2d(1, 2, 3, stride=(1, 2)),
            lambda: hlr.Conv2d(1, 2, 3, padding=-1), lambda: hlr.Conv2d(1, 2, 3, padding="full"),
            lambda: hlr.Conv2d(1, 2, 4, padding="same"), lambda: hlr.Conv2d(1, 2, (1, 2, 3)),
            lambda: hlr.MaxPool2d(2, padding=2), lambda: hlr.AvgPool2d(0), lambda: hlr.MaxPool2d((2, 1), padding=(0, 1)),
            lambda: hlr.AvgPool2d((2, 0)), lambda: hlr.MaxPool2d((1, 2, 3)),
            lambda: hlr.BatchNorm2d(0), lambda: hlr.BatchNorm1d(3, eps=0.0), lambda: hlr.BatchNorm1d(3, momentum=2),
        ]
        for f in type_errors:
            with self.assertRaises(TypeError):
                f()
        for f in value_errors:
            with self.assertRaises(ValueError):
                f()

    def test_params_before_build_are_an_hlr_error(self):
        with hlr.Dense(3, 2) as d:
            with self.assertRaises(hlr.HlrError) as cm:
                d.params()
            self.assertEqual(cm.exception.code, hlr.ESTATE)
            self.assertIn("built", cm.exception.message)


class TestParameters(unittest.TestCase):
    def test_dense_names_and_shapes_follow_torch(self):
        m = hlr.Model([hlr.Dense(3, 2), hlr.Dense(2, 5, bias=False)], input_shape=(3,))
        p0, p1 = m.layers[0].params(), m.layers[1].params()
        self.assertEqual(list(p0), ["weight", "bias"])
        self.assertEqual(tuple(p0["weight"].shape), (2, 3))
        self.assertEqual(tuple(p0["bias"].shape), (2,))
        self.assertEqual(list(p1), ["weight"])
        self.assertEqual(m.layers[0].param_names(), ["weight", "bias"])
        self.assertEqual(list(m.layers[0].grads()), ["weight", "bias"])
        self.assertEqual(m.param_count, 2 * 3 + 2 + 5 * 2)
        bound = 1 / math.sqrt(3)
        for v in helpers.hlr._arrays.tolist(p0["weight"]):
            for w in v:
                self.assertLessEqual(abs(w), bound)

    @needs_numpy
    def test_views_write_through(self):
        m = hlr.Model([hlr.Dense(2, 1)], input_shape=(2,))
        p = m.layers[0].params()
        p["weight"][...] = [[2.0, -1.0]]
        p["bias"][0] = 0.5
        np.testing.assert_allclose(m.forward(np.array([[1.0, 1.0]], np.float32)), [[1.5]])
        self.assertTrue(np.shares_memory(p["weight"], m.layers[0].params()["weight"]))

    @needs_conv
    def test_conv_and_batchnorm_names_follow_torch(self):
        m = hlr.Model([hlr.Conv2d(2, 4, 3, groups=2), hlr.BatchNorm2d(4), hlr.Flatten(), hlr.BatchNorm1d(4 * 3 * 3)],
                      input_shape=(2, 5, 5))
        conv, bn = m.layers[0].params(), m.layers[1].params()
        self.assertEqual(list(conv), ["weight", "bias"])
        self.assertEqual(tuple(conv["weight"].shape), (4, 1, 3, 3))
        self.assertEqual(sorted(bn), ["bias", "running_mean", "running_var", "weight"])
        self.assertEqual(tuple(bn["running_var"].shape), (4,))
        self.assertEqual(helpers.hlr._arrays.tolist(bn["running_var"]), [1.0] * 4)
        self.assertEqual(m.output_shape, (36,))


@needs_numpy
class TestValues(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(7)

    def test_dense_is_x_wt_plus_b(self):
        x = self.rng.standard_normal((4, 3)).astype(np.float32)
        m, y = run(hlr.Dense(3, 2), x)
        p = m.layers[0].params()
        np.testing.assert_allclose(y, x @ p["weight"].T + p["bias"], rtol=1e-5, atol=1e-6)

    def test_activations(self):
        x = self.rng.standard_normal((3, 5)).astype(np.float32)
        erf = np.vectorize(math.erf)
        expected = {
            "ReLU": np.maximum(x, 0),
            "LeakyReLU": np.where(x > 0, x, 0.1 * x),
            "Sigmoid": 1 / (1 + np.exp(-x)),
            "Tanh": np.tanh(x),
            "GELU": x * 0.5 * (1 + erf(x / math.sqrt(2))),
            "Softmax": np.exp(x) / np.exp(x).sum(axis=1, keepdims=True),
            "Dropout": x,  # inference: identity
            "Flatten": x,
        }
        layers = {"ReLU": hlr.ReLU(), "LeakyReLU": hlr.LeakyReLU(0.1), "Sigmoid": hlr.Sigmoid(), "Tanh": hlr.Tanh(),
                  "GELU": hlr.GELU(), "Softmax": hlr.Softmax(), "Dropout": hlr.Dropout(0.5), "Flatten": hlr.Flatten()}
        for name, layer in layers.items():
            _, y = run(layer, x)
            np.testing.assert_allclose(y, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)

    def test_dropout_in_training_zeroes_and_scales(self):
        x = np.ones((1, 1000), np.float32)
        _, y = run(hlr.Dropout(0.5), x, training=True)
        self.assertTrue(set(np.unique(y)) <= {0.0, 2.0})
        self.assertTrue(300 < np.count_nonzero(y) < 700)

    @needs_conv
    def test_conv2d_matches_a_direct_convolution(self):
        x = self.rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
        m, y = run(hlr.Conv2d(3, 4, (3, 2), stride=2, padding=1), x)
        p = m.layers[0].params()
        w, b = p["weight"], p["bias"]
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        ho, wo = (6 + 2 - 3) // 2 + 1, (5 + 2 - 2) // 2 + 1
        ref = np.zeros((2, 4, ho, wo), np.float32)
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2]
                ref[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)

    @needs_conv
    def test_pools(self):
        x = self.rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
        _, y = run(hlr.MaxPool2d(2), x)
        np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5)))
        _, y = run(hlr.AvgPool2d(2), x)
        np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5)), rtol=1e-5, atol=1e-6)
        _, y = run(hlr.GlobalAvgPool2d(), x)
        np.testing.assert_allclose(y, x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
        # (height, width) pairs: 2 x 1 halves the height only; 1 x 3 windows, stride 1 x 2, padding 0 x 1
        _, y = run(hlr.MaxPool2d((2, 1)), x)
        np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 6).max(axis=3))
        _, y = run(hlr.AvgPool2d((2, 1)), x)
        np.testing.assert_allclose(y, x.reshape(2, 3, 2, 2, 6).mean(axis=3), rtol=1e-5, atol=1e-6)
        _, y = run(hlr.MaxPool2d((1, 3), stride=(1, 2), padding=(0, 1)), x)
        xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1)), constant_values=-np.inf)
        np.testing.assert_allclose(y, np.stack([xp[..., 2 * j:2 * j + 3].max(axis=-1) for j in range(3)], axis=-1))

    @needs_conv
    def test_batchnorm_inference_uses_running_statistics(self):
        x = self.rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
        m = hlr.Model([hlr.BatchNorm2d(2, eps=1e-5)], input_shape=(2, 2, 2))
        p = m.layers[0].params()
        p["running_mean"][:] = [1.0, -1.0]
        p["running_var"][:] = [4.0, 0.25]
        p["weight"][:] = [2.0, 1.0]
        p["bias"][:] = [0.0, 3.0]
        mean = np.array([1.0, -1.0]).reshape(1, 2, 1, 1)
        var = np.array([4.0, 0.25]).reshape(1, 2, 1, 1)
        ref = (x - mean) / np.sqrt(var + 1e-5) * np.array([2.0, 1.0]).reshape(1, 2, 1, 1) + \
            np.array([0.0, 3.0]).reshape(1, 2, 1, 1)
        np.testing.assert_allclose(m.forward(x), ref, rtol=1e-5, atol=1e-5)

    @needs_conv
    def test_conv_shape_mismatch_names_the_layer(self):
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.Model([hlr.Flatten(), hlr.Conv2d(3, 4, 3)], input_shape=(3, 8, 8))
        self.assertIn("conv2d (layer 1)", cm.exception.message)


if __name__ == "__main__":
    unittest.main()

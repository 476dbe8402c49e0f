"""Arrays into C: zero-copy for C-contiguous float32 / int32, one conversion otherwise."""

import array
import ctypes
import unittest

import helpers
from helpers import hlr, np
from hlr import _arrays
from hlr._capi import HLR_F32, HLR_I32, lib


def c_address(buf):
    """The data address C sees when the package wraps buf."""
    with _arrays.Tensors() as t:
        return lib.hlr_tensor_data(t.wrap(buf))


class Converted:
    """Counts the conversions made inside a with-block."""

    def __enter__(self):
        self.before = _arrays.conversions
        return self

    def __exit__(self, *exc):
        self.count = _arrays.conversions - self.before
        return False


@unittest.skipIf(np is None, "NumPy is not available (the no-NumPy path is tested by test_no_numpy)")
class TestZeroCopyNumpy(unittest.TestCase):
    def test_c_sees_the_callers_float32_buffer(self):
        x = np.zeros((2, 3), dtype=np.float32)
        with Converted() as c:
            buf = _arrays.as_input(x, HLR_F32, "x")
        self.assertEqual(c.count, 0)
        self.assertEqual(c_address(buf), x.ctypes.data)
        # Write from Python, read through the tensor C made: same memory.
        with _arrays.Tensors() as t:
            ptr = lib.hlr_tensor_f32(t.wrap(buf))
            x[1, 2] = 42.5
            self.assertEqual(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float))[5], 42.5)

    def test_forward_reads_the_callers_memory_without_copying(self):
        m = hlr.Model([hlr.Dense(3, 1, bias=False)], input_shape=(3,))
        m.layers[0].params()["weight"][:] = [[1.0, 10.0, 100.0]]
        x = np.ones((1, 3), dtype=np.float32)
        with Converted() as c:
            self.assertAlmostEqual(float(m.forward(x)[0, 0]), 111.0, places=4)
            x[0, 2] = 2.0  # mutate the caller's array: the next forward sees it
            self.assertAlmostEqual(float(m.forward(x)[0, 0]), 211.0, places=4)
        self.assertEqual(c.count, 0)

    def test_int32_labels_pass_in_place(self):
        y = np.array([0, 2, 1], dtype=np.int32)
        with Converted() as c:
            buf = _arrays.as_input(y, HLR_I32, "y")
        self.assertEqual(c.count, 0)
        self.assertEqual(c_address(buf), y.ctypes.data)

    def test_other_arrays_are_converted_once(self):
        cases = [
            np.zeros((2, 3), dtype=np.float64),
            np.zeros((3, 2), dtype=np.float32).T,  # not C-contiguous
            np.zeros((2, 6), dtype=np.float32)[:, ::2],  # strided
            [[0.0, 1.0, 2.0], [3, 4, 5]],
        ]
        for x in cases:
            with Converted() as c:
                buf = _arrays.as_input(x, HLR_F32, "x")
            self.assertEqual(c.count, 1, repr(x))
            self.assertEqual(buf.shape, (2, 3))
        with Converted() as c:
            _arrays.as_input(np.array([1, 2], dtype=np.int64), HLR_I32, "y")
        self.assertEqual(c.count, 1)
        odd = np.frombuffer(bytearray(17), dtype=np.float32, offset=1)  # misaligned
        with Converted() as c:
            buf = _arrays.as_input(odd, HLR_F32, "x")
        self.assertEqual((c.count, buf.addr % 4), (1, 0))

    def test_converted_values_are_right(self):
        m = hlr.Model([hlr.Dense(2, 1, bias=False)], input_shape=(2,))
        m.layers[0].params()["weight"][:] = [[1.0, 2.0]]
        x = np.array([[1.0, 3.0], [2.0, 5.0]])  # float64
        np.testing.assert_allclose(m.forward(x), [[7.0], [12.0]])
        np.testing.assert_allclose(m.forward(np.asfortranarray(x.astype(np.float32))), [[7.0], [12.0]])

    def test_array_array_passes_in_place(self):
        a = array.array("f", [1.0, 2.0, 3.0, 4.0])
        with Converted() as c:
            buf = _arrays.as_input(a, HLR_F32, "x")
        self.assertEqual(c.count, 0)
        self.assertEqual(c_address(buf), a.buffer_info()[0])

    def test_wrong_types_raise_before_c(self):
        for bad in (None, 3, 2.5, "abc", {"a": 1}):
            with self.assertRaises(TypeError):
                _arrays.as_input(bad, HLR_F32, "x")
        with self.assertRaises(TypeError):
            _arrays.as_input(np.array(["a", "b"]), HLR_F32, "x")
        with self.assertRaises(TypeError):
            _arrays.as_input(np.array([0.5, 1.0]), HLR_I32, "y")  # float labels
        with self.assertRaises(ValueError):
            _arrays.as_input(np.array([2**40]), HLR_I32, "y")
        with self.assertRaises(ValueError):
            _arrays.as_input(np.zeros((0, 3), np.float32), HLR_F32, "x")
        with self.assertRaises(ValueError):
            _arrays.as_input(np.zeros((1,) * 9, np.float32), HLR_F32, "x")
        with self.assertRaises(ValueError):
            _arrays.as_input([[1.0, 2.0], [3.0]], HLR_F32, "x")  # ragged

    def test_flat_input_is_read_as_whole_samples(self):
        m = hlr.Model([hlr.Flatten(), hlr.Dense(4, 2)], input_shape=(2, 2))
        flat = np.arange(8, dtype=np.float32)
        np.testing.assert_allclose(m.forward(flat), m.forward(flat.reshape(2, 2, 2)))
        with self.assertRaises(ValueError):
            m.forward(np.arange(7, dtype=np.float32))

    def test_outputs_are_numpy_float32(self):
        m = helpers.mlp()
        y = m.forward(np.zeros((5, 4), np.float32))
        self.assertIsInstance(y, np.ndarray)
        self.assertEqual(y.dtype, np.float32)
        self.assertEqual(y.shape, (5, 3))


class TestPlainBuffers(unittest.TestCase):
    """What works the same with and without NumPy."""

    def test_nested_lists(self):
        buf = _arrays.as_input([[1, 2, 3], [4, 5, 6]], HLR_F32, "x")
        self.assertEqual(buf.shape, (2, 3))
        buf = _arrays.as_input([1, 2], HLR_I32, "y")
        self.assertEqual(buf.shape, (2,))

    def test_view_keeps_its_owner_alive(self):
        class Owner:
            pass

        c = (ctypes.c_float * 4)(1, 2, 3, 4)
        owner = Owner()
        owner.c = c
        v = _arrays.view(ctypes.addressof(c), (2, 2), HLR_F32, owner)
        del owner, c
        self.assertEqual(_arrays.tolist(v), [[1.0, 2.0], [3.0, 4.0]])


if __name__ == "__main__":
    unittest.main()

"""load_idx and load_mnist."""

import gzip
import os
import struct
import tempfile
import unittest

import helpers
from helpers import hlr, np


def write_idx(folder, n=3, rows=2, cols=2, gz=False, bad_magic=False, truncate=0):
    pixels = bytes((i * 37) % 256 for i in range(n * rows * cols))
    images = struct.pack(">IIII", 0x804 if bad_magic else 0x803, n, rows, cols) + pixels
    labels = struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))
    if truncate:
        images = images[:-truncate]
    ip, lp = os.path.join(folder, "images"), os.path.join(folder, "labels")
    opener = gzip.open if gz else open
    with opener(ip + (".gz" if gz else ""), "wb") as f:
        f.write(images)
    with open(lp, "wb") as f:
        f.write(labels)
    return ip + (".gz" if gz else ""), lp, pixels


class TestLoadIdx(unittest.TestCase):
    def test_raw_and_gzip(self):
        for gz in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                ip, lp, pixels = write_idx(tmp, gz=gz)
                x, y = hlr.load_idx(ip, lp)
            self.assertEqual(tuple(x.shape), (3, 1, 2, 2))
            self.assertEqual(hlr._arrays.tolist(y), [0, 1, 2])
            flat = [v for img in hlr._arrays.tolist(x) for row in img[0] for v in row]
            for got, p in zip(flat, pixels):
                self.assertAlmostEqual(got, p / 255.0, places=6)

    def test_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(hlr.HlrError) as cm:
                hlr.load_idx(os.path.join(tmp, "missing"), os.path.join(tmp, "missing"))
            self.assertEqual(cm.exception.code, hlr.EIO)
            self.assertIn("missing", cm.exception.message)
            ip, lp, _ = write_idx(tmp, bad_magic=True)
            with self.assertRaises(hlr.HlrError) as cm:
                hlr.load_idx(ip, lp)
            self.assertEqual(cm.exception.code, hlr.EFORMAT)
            ip, lp, _ = write_idx(tmp, truncate=1)
            with self.assertRaises(hlr.HlrError) as cm:
                hlr.load_idx(ip, lp)
            self.assertEqual(cm.exception.code, hlr.EFORMAT)
        with self.assertRaises(TypeError):
            hlr.load_idx(None, "x")
        with self.assertRaises(TypeError):
            hlr.load_mnist(5)


class TestLoadMnist(unittest.TestCase):
    def test_finds_the_four_files_raw_or_gzipped(self):
        with tempfile.TemporaryDirectory() as tmp:
            for stem, gz, n in (("train", True, 5), ("t10k", False, 3)):
                ip, lp, _ = write_idx(tmp, n=n, gz=gz)
                os.rename(ip, os.path.join(tmp, stem + "-images-idx3-ubyte" + (".gz" if gz else "")))
                os.rename(lp, os.path.join(tmp, stem + "-labels-idx1-ubyte"))
            (x, y), (xt, yt) = hlr.load_mnist(tmp)
            self.assertEqual(tuple(x.shape), (5, 1, 2, 2))
            self.assertEqual(tuple(xt.shape), (3, 1, 2, 2))
            os.remove(os.path.join(tmp, "t10k-labels-idx1-ubyte"))
            with self.assertRaises(hlr.HlrError) as cm:
                hlr.load_mnist(tmp)
            self.assertEqual(cm.exception.code, hlr.EIO)

    @unittest.skipUnless(os.path.exists(os.path.join(helpers.DATA_DIR, "t10k-labels-idx1-ubyte.gz")),
                         "MNIST is not in %s (make data)" % helpers.DATA_DIR)
    def test_mnist_test_set(self):
        d = helpers.DATA_DIR
        xt, yt = hlr.load_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"), os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
        self.assertEqual(tuple(xt.shape), (10000, 1, 28, 28))
        self.assertEqual(hlr._arrays.tolist(yt[:3]), [7, 2, 1])
        if np is not None:
            self.assertEqual(xt.dtype, np.float32)
            self.assertEqual(yt.dtype, np.int32)
            self.assertTrue(0.0 <= float(xt.min()) and float(xt.max()) <= 1.0)
            np.testing.assert_array_equal(np.bincount(yt), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


if __name__ == "__main__":
    unittest.main()

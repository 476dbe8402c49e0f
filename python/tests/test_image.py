"""hlr.load_image: PNG files written here with zlib and struct, PGM files by hand."""

import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import helpers
from helpers import hlr


def write_png(path, w, h, color, rows, depth=8):
    """A PNG of colour type `color` whose rows are lists of samples (channels interleaved)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    fmt = ">%dH" if depth == 16 else "%dB"
    raw = b"".join(b"\0" + struct.pack(fmt % len(r), *r) for r in rows)  # filter 0 on every row
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_pgm(path, w, h, values, maxval=255, binary=True):
    with open(path, "wb") as f:
        if binary:
            f.write(b"P5\n# written by test_image.py\n%d %d\n%d\n" % (w, h, maxval))
            f.write(struct.pack(">%d%s" % (len(values), "H" if maxval > 255 else "B"), *values))
        else:
            f.write(b"P2\n%d %d\n%d\n" % (w, h, maxval) + " ".join(str(v) for v in values).encode() + b"\n")


def flat(image):
    """The pixels of a (1, H, W) image as one list."""
    return [v for row in hlr._arrays.tolist(image)[0] for v in row]


def shape(image):
    return tuple(image.shape)


def seven(w=90, h=60, paper=245, ink=20):
    """A "7" right of centre in a w x h picture, as rows of grey values."""
    rows = [[paper] * w for _ in range(h)]
    for y in range(8, 14):
        for x in range(50, 85):
            rows[y][x] = ink
    for y in range(14, 55):
        cx = 80 - (y - 14) * 18.0 / 40.0
        for x in range(w):
            if abs(x - cx) < 3:
                rows[y][x] = ink
    return rows


class TestLoadImage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assert_pixels(self, image, want, places=6):
        got = flat(image)
        self.assertEqual(len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertAlmostEqual(g, w, places=places, msg="pixel %d" % i)

    def test_png_grey_colour_and_alpha(self):
        p = self.path("a.png")
        write_png(p, 3, 1, 0, [[0, 128, 255]])
        x = hlr.load_image(p)
        self.assertEqual(shape(x), (1, 1, 3))
        if helpers.np is not None:
            self.assertEqual(x.dtype, helpers.np.float32)
        self.assert_pixels(x, [0, 128 / 255, 1])

        write_png(p, 2, 1, 0, [[0, 65535]], depth=16)
        self.assert_pixels(hlr.load_image(p), [0, 1])

        write_png(p, 2, 1, 2, [[255, 0, 0, 10, 20, 30]])  # RGB
        self.assert_pixels(hlr.load_image(p), [0.299, (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255])

        write_png(p, 2, 1, 6, [[0, 0, 0, 0, 0, 0, 0, 255]])  # RGBA: transparent black is white paper
        self.assert_pixels(hlr.load_image(p), [1, 0])

        write_png(p, 1, 2, 4, [[100, 51], [100, 255]])  # grey + alpha
        a = 51 / 255
        self.assert_pixels(hlr.load_image(p), [a * 100 / 255 + 1 - a, 100 / 255])

    def test_decode_image_from_bytes_equals_load_image(self):
        p = self.path("b.png")
        write_png(p, 3, 2, 0, [[0, 128, 255], [255, 0, 9]])
        with open(p, "rb") as f:
            data = f.read()
        self.assertEqual(flat(hlr.decode_image(data)), flat(hlr.load_image(p)))
        self.assertEqual(flat(hlr.decode_image(bytearray(data), ink="dark")), flat(hlr.load_image(p, ink="dark")))
        for bad in (b"", data[:20], b"hello"):
            with self.assertRaises(hlr.HlrError) as e:
                hlr.decode_image(bad)
            self.assertIn("hlr_image_decode", str(e.exception))
            self.assertNotIn(self.tmp.name, str(e.exception))
        with self.assertRaises(TypeError):
            hlr.decode_image(p)

    def test_pgm_binary_16_bit_and_text(self):
        p = self.path("a.pgm")
        write_pgm(p, 2, 2, [0, 50, 99, 100], maxval=100)
        x = hlr.load_image(p)
        self.assertEqual(shape(x), (1, 2, 2))
        self.assert_pixels(x, [0, 0.5, 0.99, 1])
        write_pgm(p, 3, 1, [0, 1000, 65535], maxval=65535)
        self.assert_pixels(hlr.load_image(p), [0, 1000 / 65535, 1])
        write_pgm(p, 3, 1, [0, 7, 15], maxval=15, binary=False)
        self.assert_pixels(hlr.load_image(p), [0, 7 / 15, 1])
        self.assert_pixels(hlr.load_image(p, ink="dark"), [1, 8 / 15, 0])
        self.assert_pixels(hlr.load_image(p, ink="light"), [0, 7 / 15, 1])

    def test_mnist_preprocessing(self):
        p = self.path("seven.png")
        rows = seven()
        write_png(p, 90, 60, 0, rows)
        x = hlr.load_image(p, mnist=True)
        self.assertEqual(shape(x), (1, 28, 28))
        px = hlr._arrays.tolist(x)[0]
        self.assertGreater(max(max(r) for r in px), 0.9)  # the ink is bright ...
        self.assertEqual(px[0][0], 0.0)                    # ... on black
        ink = [(r, c) for r in range(28) for c in range(28) if px[r][c] > 0]
        self.assertLessEqual(max(r for r, _ in ink) - min(r for r, _ in ink) + 1, 20)
        self.assertLessEqual(max(c for _, c in ink) - min(c for _, c in ink) + 1, 20)
        mass = sum(px[r][c] for r, c in ink)
        self.assertLess(abs(sum(px[r][c] * r for r, c in ink) / mass - 14), 1)
        self.assertLess(abs(sum(px[r][c] * c for r, c in ink) / mass - 14), 1)

        # the same picture as a PGM, and light on dark, give the same digit
        q = self.path("seven.pgm")
        write_pgm(q, 90, 60, [v for r in rows for v in r])
        self.assertEqual(flat(hlr.load_image(q, mnist=True)), flat(x))
        self.assertEqual(flat(hlr.load_image(p, mnist=True, ink="dark")), flat(x))
        write_png(p, 90, 60, 0, [[255 - v for v in r] for r in rows])
        self.assert_pixels(hlr.load_image(p, mnist=True), flat(x), places=5)

    def test_errors(self):
        missing = self.path("no-such.png")
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_image(missing)
        self.assertEqual(cm.exception.code, hlr.EIO)
        self.assertIn(missing, cm.exception.message)

        text = self.path("notes.txt")
        with open(text, "w") as f:
            f.write("not a picture\n")
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_image(text)
        self.assertEqual(cm.exception.code, hlr.EFORMAT)
        self.assertIn("not a PNG or PGM", cm.exception.message)

        blank = self.path("blank.png")
        write_png(blank, 4, 4, 0, [[250] * 4] * 4)
        self.assertEqual(shape(hlr.load_image(blank)), (1, 4, 4))
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_image(blank, mnist=True)
        self.assertEqual(cm.exception.code, hlr.EFORMAT)
        self.assertIn("no ink", cm.exception.message)

        broken = self.path("broken.png")
        write_png(broken, 8, 8, 0, [[v * 30 % 256 for v in range(8)]] * 8)
        with open(broken, "rb") as f:
            data = f.read()
        with open(broken, "wb") as f:
            f.write(data[:-20])
        with self.assertRaises(hlr.HlrError) as cm:
            hlr.load_image(broken)
        self.assertEqual(cm.exception.code, hlr.EFORMAT)
        self.assertIn(broken, cm.exception.message)

        with self.assertRaises(TypeError):
            hlr.load_image(None)
        with self.assertRaises(TypeError):
            hlr.load_image(text, mnist="yes")
        with self.assertRaises(ValueError):
            hlr.load_image(text, ink="grey")

    def test_without_numpy_returns_a_memoryview(self):
        p = self.path("a.pgm")
        write_pgm(p, 2, 1, [0, 255])
        code = ("import hlr; x = hlr.load_image(%r); print(type(x).__name__, x.format, x.shape, x.tolist())" % p)
        r = subprocess.run([sys.executable, "-c", code], env=helpers.env_for_subprocess(HLR_NO_NUMPY="1"),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "memoryview f (1, 1, 2) [[[0.0, 1.0]]]")


if __name__ == "__main__":
    unittest.main()

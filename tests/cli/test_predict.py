"""bin/hlr-predict on pictures: PNG and PGM files, the MNIST preprocessing, --json, and its failures.

Needs no MNIST: it trains the MLP for one short epoch on a small synthetic idx set (bars), then
classifies pictures written here (PNG with zlib and struct, PGM by hand).  Run by `make cli-test`
(part of `make test`):

    HLR_BIN=bin python3 tests/cli/test_predict.py
"""
import json
import os
import re
import struct
import subprocess
import tempfile
import unittest
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("HLR_BIN") or os.path.join(ROOT, "bin"))


def run(program, *args):
    p = subprocess.run([os.path.join(BIN, program)] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def write_idx(folder, prefix, n):
    """n 28x28 images whose label is the row of a bright bar."""
    with open(os.path.join(folder, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        for i in range(n):
            px = bytearray(28 * 28)
            for x in range(4, 24):
                px[(2 + 2 * (i % 10)) * 28 + x] = 255
            f.write(bytes(px))
    with open(os.path.join(folder, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(i % 10 for i in range(n)))


def write_png(path, rows, color=0):
    """An 8-bit PNG (grey, or RGB with color=2) of rows of samples."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    w = len(rows[0]) // (3 if color == 2 else 1)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, len(rows), 8, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_pgm(path, rows):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (len(rows[0]), len(rows)))
        f.write(b"".join(bytes(r) for r in rows))


def mnist_like_bar():
    """28x28, white on black: a 6 x 20 bar whose box and centre of mass are where MNIST puts a digit's,
    so the MNIST preprocessing gives it back unchanged."""
    return [[255 if 11 <= x < 17 and 4 <= y < 24 else 0 for x in range(28)] for y in range(28)]


def drawn(rows, zoom=3, width=150, height=100, at=(50, 7)):
    """rows drawn zoom times larger, dark on light paper, at `at` in a width x height picture."""
    out = [[250] * width for _ in range(height)]
    for y in range(len(rows) * zoom):
        for x in range(len(rows[0]) * zoom):
            out[at[1] + y][at[0] + x] = 250 - rows[y // zoom][x // zoom] * 230 // 255
    return out


class Predict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        write_idx(d, "train", 200)
        write_idx(d, "t10k", 50)
        cls.model = os.path.join(d, "mlp.hlr")
        rc, out, err = run("hlr-mnist", "train", "--model", "mlp", "--epochs", "1", "--data", d, "--save", cls.model)
        assert rc == 0, err
        cls.bar = os.path.join(d, "bar.pgm")
        write_pgm(cls.bar, mnist_like_bar())
        cls.picture = os.path.join(d, "picture.png")
        write_png(cls.picture, drawn(mnist_like_bar()))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def json_lines(self, *args):
        rc, out, err = run("hlr-predict", "--json", *args)
        self.assertEqual((rc, err), (0, ""))
        return [json.loads(line) for line in out.splitlines()]

    def test_json_lines(self):
        lines = self.json_lines(self.model, self.bar, self.picture)
        self.assertEqual([o["file"] for o in lines], [self.bar, self.picture])
        for o in lines:
            self.assertEqual(sorted(o), ["class", "file", "probability", "top"])
            self.assertEqual(len(o["top"]), 3)
            self.assertEqual(o["top"][0], {"class": o["class"], "probability": o["probability"]})
            probs = [t["probability"] for t in o["top"]]
            self.assertEqual(probs, sorted(probs, reverse=True))
            self.assertLessEqual(sum(probs), 1.0 + 1e-5)
            self.assertIsInstance(o["class"], str)  # hlr-mnist names the classes "0" to "9"
        # The picture, drawn 3 times larger, dark on light and elsewhere, is preprocessed back into the
        # 28 x 28 bar: the same answer with the same probabilities.
        a, b = lines
        self.assertEqual(a["class"], b["class"])
        for ta, tb in zip(a["top"], b["top"]):
            self.assertEqual(ta["class"], tb["class"])
            self.assertAlmostEqual(ta["probability"], tb["probability"], places=4)

    def test_index_images_in_json_have_their_number(self):
        idx = self.path("t10k-images-idx3-ubyte")
        lines = self.json_lines("--index", "3-4", self.model, idx)
        self.assertEqual([(o["file"], o["index"]) for o in lines], [(idx, 3), (idx, 4)])

    def test_text_output_and_colour_png(self):
        rgb = self.path("rgb.png")
        write_png(rgb, [[v for p in row for v in (p, p, p)] for row in drawn(mnist_like_bar())], color=2)
        rc, out, err = run("hlr-predict", self.model, self.picture, rgb)
        self.assertEqual((rc, err), (0, ""))
        a, b = out.splitlines()
        self.assertTrue(a.startswith(self.picture + ":  "), a)
        self.assertEqual(a[len(self.picture):], b[len(rgb):])

    def test_explain_draws_each_method(self):
        cnn = self.path("cnn.hlr")
        rc, out, err = run("hlr-mnist", "train", "--model", "cnn", "--epochs", "1", "--data", self.tmp.name,
                           "--save", cnn)
        self.assertEqual(rc, 0, err)
        for method in ("saliency", "smoothgrad", "ig", "gradcam"):
            pic = self.path("explain-%s.png" % method)
            rc, out, err = run("hlr-predict", "--explain", method, "--out", pic, cnn, self.bar)
            self.assertEqual((rc, err), (0, ""))
            self.assertRegex(out, r"(?m)^%s: %s for class \d drawn into %s$" % (re.escape(self.bar), method,
                                                                                   re.escape(pic)))
            with open(pic, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
            w, h = struct.unpack(">II", head[16:24])
            self.assertEqual((w, h), (2 * 28 * 8 + 8, 28 * 8))  # the image and the map, side by side
        # an MLP has no convolution for Grad-CAM: one line naming it
        rc, out, err = run("hlr-predict", "--explain", "gradcam", "--out", self.path("x.png"), self.model, self.bar)
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^hlr-predict: .*--explain gradcam: .*conv2d.*\n$")
        for args, says in ((["--explain", "lime", "--out", "x.png"], "saliency, smoothgrad, ig or gradcam"),
                           (["--explain", "ig"], "needs --out"),
                           (["--out", "x.png"], "--out is for --explain")):
            rc, out, err = run("hlr-predict", *args, self.model, self.bar)
            self.assertEqual(rc, 2, err)
            self.assertIn(says, err)
        rc, out, err = run("hlr-predict", "--explain", "ig", "--out", "x.png", self.model, self.bar, self.bar)
        self.assertEqual(rc, 2)
        self.assertIn("one IMAGE", err)

    def test_mnist_raw_and_invert(self):
        # --mnist on the 28 x 28 bar changes nothing (it is MNIST-like already)
        self.assertEqual(self.json_lines("--mnist", self.model, self.bar)[0]["top"],
                         self.json_lines(self.model, self.bar)[0]["top"])
        # --invert with the preprocessing: the polarity is said, the answer is the same
        self.assertEqual(self.json_lines("--invert", self.model, self.picture)[0]["top"],
                         self.json_lines(self.model, self.picture)[0]["top"])
        # --raw: the picture must have the model's size
        rc, out, err = run("hlr-predict", "--raw", self.model, self.picture)
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("150x100", err)

    def test_json_escapes_file_names(self):
        name = self.path('a "quoted"\\name\t\x01\xe9.pgm')
        write_pgm(name, mnist_like_bar())
        raw = os.fsencode(self.tmp.name) + b'/b\xff\xfe.pgm'  # not UTF-8
        write_pgm(raw, mnist_like_bar())
        rc, out, err = run("hlr-predict", "--json", self.model, name, os.fsdecode(raw))
        self.assertEqual((rc, err), (0, ""))
        first, second = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(first["file"], name)
        self.assertEqual(second["file"], self.tmp.name + "/b\ufffd\ufffd.pgm")
        self.assertIn('\\"quoted\\"\\\\name\\t\\u0001', out)

    def test_failures_are_one_line_each(self):
        text = self.path("notes.txt")
        with open(text, "w") as f:
            f.write("not a picture\n")
        blank = self.path("blank.png")
        write_png(blank, [[250] * 40 for _ in range(30)])
        missing = self.path("missing.png")
        # the good picture is still classified; each bad one is named on a line of its own
        rc, out, err = run("hlr-predict", self.model, text, self.picture, blank, missing)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out.splitlines()), 1)
        lines = err.splitlines()
        self.assertEqual(len(lines), 3, err)
        for line, what, words in zip(lines, (text, blank, missing), ("not a PNG or PGM", "no ink", "cannot open")):
            self.assertTrue(line.startswith("hlr-predict: "), line)
            self.assertIn(what, line)
            self.assertIn(words, line)
        idx = self.path("t10k-images-idx3-ubyte")
        rc, out, err = run("hlr-predict", self.model, idx)
        self.assertEqual(rc, 1)
        self.assertIn("say which with --index", err)
        rc, out, err = run("hlr-predict", "--mnist", "--raw", self.model, self.picture)
        self.assertEqual((rc, len(err.splitlines())), (2, 1))
        self.assertIn("--mnist and --raw", err)


if __name__ == "__main__":
    unittest.main()

"""bin/hlr-mnist attention: the picture and the numbers it prints, and its failures.

Needs no MNIST: it writes a small synthetic data set in the idx format (digits
drawn as bars), trains the hybrid model on it for one short epoch, and builds
the other models it needs (two attention layers, no attention layer, another
input size) with the Python package.  Run by `make cli-test` (part of
`make test`):

    HLR_MNIST=bin/hlr-mnist HLR_LIBRARY=lib/libhlr.so.0 PYTHONPATH=python \
        python3 tests/cli/test_mnist_attention.py
"""
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST = os.path.abspath(os.environ.get("HLR_MNIST") or os.path.join(ROOT, "bin", "hlr-mnist"))
sys.path.insert(0, os.path.join(ROOT, "python"))

TRAIN, TEST = 320, 20
ZOOM, GAP = 8, 8


def image(label, rng):
    """A 28x28 picture of `label`: a bar whose row and length depend on it, some noise, zeros elsewhere."""
    px = bytearray(28 * 28)
    top = 2 + 2 * label
    for y in range(top, top + 3):
        for x in range(4, 10 + label + label // 2):
            px[y * 28 + x] = 200 + rng.randrange(56)
    for _ in range(20):
        px[rng.randrange(28 * 28)] = rng.randrange(1, 120)
    return bytes(px)


def write_idx(folder, prefix, n, rng):
    labels = [i % 10 for i in range(n)]
    rng.shuffle(labels)
    pixels = [image(l, rng) for l in labels]
    with open(os.path.join(folder, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        f.write(b"".join(pixels))
    with open(os.path.join(folder, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(labels))
    return labels, pixels


def run(*args, cwd=None):
    p = subprocess.run([MNIST] + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def read_pnm(path):
    """(magic, width, height, pixel bytes) of a binary PGM or PPM with maxval 255."""
    with open(path, "rb") as f:
        data = f.read()
    m = re.match(rb"(P[56])\n(\d+) (\d+)\n255\n", data)
    assert m, "%s: not a P5/P6 header: %r" % (path, data[:20])
    return m.group(1).decode(), int(m.group(2)), int(m.group(3)), data[m.end():]


def parse(out):
    """The matrix rows, the attention received per step, the labels, the probability and the picture path."""
    matrix = [[float(v) for v in line.split()[1:]] for line in out.splitlines() if re.match(r"  q\d+ ", line)]
    received = [float(m.group(1)) for m in re.finditer(r"^  step \d+ .*?(\d\.\d{4})", out, re.M)]
    true = int(re.search(r"^true label: (\d+)", out, re.M).group(1))
    pred, prob = re.search(r"^predicted: (\d+)\s+probability ([\d.]+)", out, re.M).groups()
    wrote = re.search(r"^wrote (.+?): (\d+) x (\d+) pixels", out, re.M)
    return matrix, received, true, int(pred), float(prob), wrote


class AttentionCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(MNIST, os.X_OK):
            raise unittest.SkipTest("%s is not built (make)" % MNIST)
        cls.tmp = tempfile.mkdtemp(prefix="hlr-attention-")
        cls.data = os.path.join(cls.tmp, "data")
        os.mkdir(cls.data)
        rng = random.Random(6)
        write_idx(cls.data, "train", TRAIN, rng)
        cls.labels, cls.pixels = write_idx(cls.data, "t10k", TEST, rng)
        cls.hybrid = os.path.join(cls.tmp, "hybrid.hlr")
        rc, out, err = run("train", "--model", "hybrid", "--epochs", "1", "--batch", "32", "--data", cls.data,
                           "--threads", "1", "--save", cls.hybrid)
        if rc != 0:
            raise AssertionError("training the hybrid model failed (%d):\n%s%s" % (rc, out, err))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def attention(self, *args, model=None, cwd=None):
        return run("attention", model or self.hybrid, "--data", self.data, *args, cwd=cwd)

    def test_prints_labels_rows_that_sum_to_one_and_the_attention_received(self):
        out_path = os.path.join(self.tmp, "three.ppm")
        rc, out, err = self.attention("--index", 3, "--out", out_path)
        self.assertEqual(rc, 0, err)
        matrix, received, true, pred, prob, wrote = parse(out)
        self.assertEqual(true, self.labels[3])
        self.assertIn(pred, range(10))
        self.assertTrue(0.1 <= prob <= 1.0, prob)
        self.assertEqual(wrote.group(1), out_path)
        self.assertEqual(len(matrix), 7, out)  # the hybrid model's 7 feature-map rows
        for i, row in enumerate(matrix):
            self.assertEqual(len(row), 7, row)
            self.assertAlmostEqual(sum(row), 1.0, delta=1e-3, msg="query %d: %s" % (i, row))
            self.assertTrue(all(0 <= v <= 1 for v in row), row)
        self.assertEqual(len(received), 7, out)
        self.assertAlmostEqual(sum(received), 1.0, delta=1e-3, msg=received)
        for j in range(7):  # the mean of column j over the queries
            self.assertAlmostEqual(received[j], sum(r[j] for r in matrix) / 7, delta=2e-4, msg="step %d" % j)
        self.assertIn("rows 4-7", out)

    def test_prediction_is_the_models_own_on_a_whole_batch(self):
        try:
            import hlr
        except Exception as e:  # the package or its library is missing
            self.skipTest("the Python package cannot load libhlr: %s" % e)
        x, _ = hlr.load_idx(os.path.join(self.data, "t10k-images-idx3-ubyte"),
                            os.path.join(self.data, "t10k-labels-idx1-ubyte"))
        probs = hlr.load(self.hybrid).predict(x)  # all TEST images in one batch
        for index in (0, 7):
            rc, out, err = self.attention("--index", index, "--out", os.path.join(self.tmp, "p.ppm"))
            self.assertEqual(rc, 0, err)
            _, _, _, pred, prob, _ = parse(out)
            row = [float(v) for v in probs[index]]
            self.assertEqual(pred, row.index(max(row)), "image %d: printed %d %.4f, batch %s" % (index, pred, prob, row))
            self.assertAlmostEqual(prob, max(row), delta=2e-4, msg="image %d" % index)

    def test_picture_shows_the_image_the_tint_and_the_matrix(self):
        out_path = os.path.join(self.tmp, "five.ppm")
        rc, out, err = self.attention("--index", 5, "--out", out_path)
        self.assertEqual(rc, 0, err)
        matrix, received, _, _, _, wrote = parse(out)
        magic, w, h, px = read_pnm(out_path)
        side, cell = 28 * ZOOM, 28 * ZOOM // 7
        self.assertEqual((magic, w, h), ("P6", side + GAP + side + GAP + 7 * cell, side))
        self.assertEqual((int(wrote.group(2)), int(wrote.group(3))), (w, h))
        self.assertEqual(len(px), w * h * 3)

        def rgb(x, y):
            return tuple(px[3 * (y * w + x):3 * (y * w + x) + 3])

        img = self.pixels[5]
        for y in range(28):  # panel 1: the image itself, zoomed, in grey
            for x in range(28):
                v = img[y * 28 + x]
                self.assertEqual(rgb(x * ZOOM + ZOOM // 2, y * ZOOM + ZOOM // 2), (v, v, v), (x, y))
        # panel 2: the background of each 4-row band is tinted in proportion to the attention it receives
        top = max(received)
        for s in range(7):
            y, x = 4 * s, next((x for x in range(28) if all(img[(4 * s + k) * 28 + x] == 0 for k in range(4))), None)
            if x is None:
                continue
            r = rgb(side + GAP + x * ZOOM + 1, y * ZOOM + 1)[0]
            self.assertAlmostEqual(r, 255 * 0.65 * received[s] / top, delta=0.02 * 255 + 1, msg="step %d" % s)
        # panel 3: the largest matrix entry is the brightest cell (white)
        i, j = max(((i, j) for i in range(7) for j in range(7)), key=lambda ij: matrix[ij[0]][ij[1]])
        self.assertEqual(rgb(2 * side + 2 * GAP + j * cell + cell // 2, i * cell + cell // 2), (255, 255, 255))

    def test_default_name_and_other_formats(self):
        cwd = os.path.join(self.tmp, "cwd")
        os.makedirs(cwd, exist_ok=True)
        rc, out, err = self.attention("--index", 2, cwd=cwd)
        self.assertEqual(rc, 0, err)
        self.assertEqual(read_pnm(os.path.join(cwd, "attention-2.ppm"))[0], "P6")
        self.assertIn("wrote attention-2.ppm", out)

        pgm = os.path.join(self.tmp, "grey.pgm")
        self.assertEqual(self.attention("--out", pgm)[0], 0)
        magic, w, h, px = read_pnm(pgm)
        self.assertEqual((magic, len(px)), ("P5", w * h))

        png = os.path.join(self.tmp, "a.png")
        self.assertEqual(self.attention("--out", png)[0], 0)
        with open(png, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        pos, chunks = 8, {}
        while pos < len(data):
            n, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body, crc = data[pos + 8:pos + 8 + n], struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
            self.assertEqual(zlib.crc32(kind + body) & 0xFFFFFFFF, crc, kind)
            chunks[kind] = chunks.get(kind, b"") + body  # the image data may be split over several IDATs
            pos += 12 + n
        w, h, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
        self.assertEqual((depth, colour), (8, 2))
        self.assertEqual(len(zlib.decompress(chunks[b"IDAT"])), h * (1 + 3 * w))
        self.assertIn(b"IEND", chunks)

    def test_failures_say_why_and_exit_nonzero(self):
        missing = os.path.join(self.tmp, "missing.ppm")
        for args, code, words in [
            (("--index", TEST, "--out", missing), 1, "out of range"),
            (("--index", -1, "--out", missing), 2, "out of range"),  # a usage mistake, found before loading
            (("--layer", 7, "--out", missing), 1, "lstm, not an attention layer"),
            (("--layer", 99, "--out", missing), 1, "no layer 99"),
            (("--head", 1, "--out", missing), 1, "1 head"),
            (("--index", "x"), 2, "not a whole number"),
        ]:
            rc, out, err = self.attention(*args)
            self.assertEqual(rc, code, (args, out, err))
            self.assertIn(words, err, args)
        self.assertFalse(os.path.exists(missing))
        rc, _, err = self.attention(model=os.path.join(self.tmp, "no-such-model.hlr"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot open", err)
        rc, _, err = run("attention")
        self.assertEqual(rc, 2)
        self.assertIn("needs a model FILE", err)


class OtherModels(unittest.TestCase):
    """Models built with the Python package: several attention layers, none, another input size."""

    @classmethod
    def setUpClass(cls):
        if not os.access(MNIST, os.X_OK):
            raise unittest.SkipTest("%s is not built (make)" % MNIST)
        try:
            import hlr
        except Exception as e:  # the package or its library is missing
            raise unittest.SkipTest("the Python package cannot load libhlr: %s" % e)
        cls.tmp = tempfile.mkdtemp(prefix="hlr-attention-")
        write_idx(cls.tmp, "t10k", TEST, random.Random(1))
        cls.paths = {}
        for name, layers, shape in [
            ("two", [hlr.ImageRows(), hlr.MultiheadAttention(28, 2), hlr.MultiheadAttention(28, 4), hlr.SeqMean(),
                     hlr.Dense(28, 10)], (1, 28, 28)),
            ("none", [hlr.Flatten(), hlr.Dense(784, 10)], (1, 28, 28)),
            ("small", [hlr.ImageRows(), hlr.MultiheadAttention(10, 1), hlr.SeqMean(), hlr.Dense(10, 10)], (1, 10, 10)),
        ]:
            cls.paths[name] = os.path.join(cls.tmp, name + ".hlr")
            hlr.Model(layers, input_shape=shape, seed=0).save(cls.paths[name])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def attention(self, name, *args):
        return run("attention", self.paths[name], "--data", self.tmp, "--out", os.path.join(self.tmp, "a.ppm"), *args)

    def test_the_last_attention_layer_unless_told(self):
        rc, out, err = self.attention("two")
        self.assertEqual(rc, 0, err)
        self.assertIn("layer 2 (multihead_attention): 4 heads, 28 steps", out)
        matrix, received, _, _, _, _ = parse(out)
        self.assertEqual((len(matrix), len(received)), (28, 28))
        for row in matrix:
            self.assertAlmostEqual(sum(row), 1.0, delta=3e-3)
        self.assertIn("rows 27-27", out)  # one image row a step
        rc, out, err = self.attention("two", "--layer", 1, "--head", 1)
        self.assertEqual(rc, 0, err)
        self.assertIn("layer 1 (multihead_attention): 2 heads", out)
        self.assertIn("attention of head 1", out)
        rc, _, err = self.attention("two", "--layer", 0)
        self.assertEqual(rc, 1)
        self.assertIn("image_rows, not an attention layer (attention layers: 1, 2)", err)

    def test_a_model_without_attention_or_for_other_images_is_refused(self):
        rc, _, err = self.attention("none")
        self.assertEqual(rc, 1)
        self.assertIn("has no attention layer", err)
        rc, _, err = self.attention("small")
        self.assertEqual(rc, 1)
        self.assertIn("takes inputs of 100 values; the test images are 28 x 28", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

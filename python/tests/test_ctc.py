"""CTC from Python: ctc_loss (the C library's, checked against torch in tests/test_ctc.c) with
torch's argument names, and ctc_decode with an alphabet and a lexicon."""

import math
import unittest

import helpers
from helpers import hlr, np

needs_numpy = unittest.skipUnless(hlr.HAVE_NUMPY, "needs NumPy")


@needs_numpy
class TestCtc(unittest.TestCase):
    def test_two_steps_are_analytic(self):
        a = np.array([[[0.1, 0.6, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.1, 0.1]]], np.float32)
        loss = hlr.ctc_loss(a, [[1, 2]], [2], [2], reduction="sum")
        y = math.exp(0.6) / (4 * math.exp(0.1) + math.exp(0.6))
        self.assertAlmostEqual(loss, -2 * math.log(y), places=5)

    def test_padded_and_concatenated_targets_agree_and_grad_matches_differences(self):
        rng = np.random.default_rng(2)
        x = rng.standard_normal((2, 7, 5)).astype(np.float32)
        padded = np.array([[1, 2, 2], [3, 4, 0]], np.int32)
        flat = [1, 2, 2, 3, 4]
        a, g = hlr.ctc_loss(x, padded, [7, 6], [3, 2], return_grad=True)
        b = hlr.ctc_loss(x, flat, [7, 6], [3, 2])
        self.assertEqual(a, b)
        self.assertEqual(g.shape, x.shape)
        none = hlr.ctc_loss(x, padded, [7, 6], [3, 2], reduction="none")
        self.assertEqual(none.shape, (2,))
        self.assertAlmostEqual(float(none[0] / 3 + none[1] / 2) / 2, a, places=5)
        h = 1e-2
        for idx in [(0, 0, 1), (0, 3, 2), (1, 5, 0), (1, 2, 4)]:
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            fd = (hlr.ctc_loss(xp, padded, [7, 6], [3, 2]) - hlr.ctc_loss(xm, padded, [7, 6], [3, 2])) / (2 * h)
            self.assertAlmostEqual(fd, g[idx], delta=2e-3 + 2e-2 * abs(fd))
        with self.assertRaises(hlr.HlrError):
            hlr.ctc_loss(x, padded, [8, 6], [3, 2])  # longer than T
        with self.assertRaises(ValueError):
            hlr.ctc_loss(x, padded, [7, 6], [3, 2], reduction="avg")

    def test_decode_with_alphabet_and_lexicon(self):
        alphabet = "-abc"  # label 0 is the blank
        steps = [1, 1, 0, 2, 3, 3, 0]  # "abc"
        x = np.full((7, 4), -2.0, np.float32)
        x[np.arange(7), steps] = 2.0
        text, conf = hlr.ctc_decode(x, alphabet=alphabet)
        self.assertEqual(text, "abc")
        self.assertEqual(len(conf), 3)
        self.assertTrue(all(0 < c <= 1 for c in conf))
        self.assertEqual(hlr.ctc_decode(x, beam_width=5, alphabet=alphabet)[0], "abc")
        lex = hlr.Lexicon(["cab", "ab"], alphabet=alphabet)
        self.assertEqual(len(lex), 2)
        self.assertIn(hlr.ctc_decode(x, beam_width=8, lexicon=lex, alphabet=alphabet)[0], ("cab", "ab"))
        batch = hlr.ctc_decode(np.stack([x, x]), alphabet=alphabet)
        self.assertEqual([t for t, _ in batch], ["abc", "abc"])
        with self.assertRaises(ValueError):
            hlr.Lexicon(["xyz"], alphabet=alphabet)
        with self.assertRaises(TypeError):
            hlr.Lexicon(["ab"])


def bar_strings(n, seed, max_len=5, height=8):
    """n strings of 1..max_len labels in 1..3, label k a bar on rows 2k-1, 2k of a 4-column cell:
    images (n, 1, height, 4 max_len), targets (n, max_len) padded with -1, widths 4 L."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, height, 4 * max_len), np.float32)
    t = np.full((n, max_len), -1, np.int32)
    w = np.zeros(n, np.int32)
    for i in range(n):
        k = int(rng.integers(1, max_len + 1))
        t[i, :k] = rng.integers(1, 4, k)
        for j, lab in enumerate(t[i, :k]):
            x[i, 0, 2 * lab - 1:2 * lab + 1, 4 * j:4 * j + 2] = 0.6 + 0.4 * rng.random((2, 2))
        w[i] = 4 * k
    return x, t, w


@needs_numpy
class TestCtcModels(unittest.TestCase):
    def model(self):
        return hlr.Model([hlr.Conv2d(1, 4, 3, padding=1), hlr.ReLU(), hlr.MaxPool2d(2), hlr.FeatureMapColumns(),
                          hlr.GRU(16, 16, bidirectional=True, return_sequences=True), hlr.Linear(32, 4)],
                         input_shape=(1, 8, 20), seed=5)

    def test_fit_and_evaluate_with_the_ctc_loss(self):
        x, t, w = bar_strings(768, 3)
        vx, vt, vw = bar_strings(200, 4)
        m = self.model()
        before = m.evaluate(vx, vt, lengths=vw, loss="ctc")
        hist = m.fit(x, t, epochs=12, batch_size=32, optimizer=hlr.Adam(1e-2), lengths=w, loss=hlr.CTCLoss(),
                     validation_data=(vx, vt, vw), verbose=0)
        after = m.evaluate(vx, vt, lengths=vw, loss="ctc")
        self.assertEqual(set(after), {"loss", "accuracy", "cer", "count"})
        self.assertLess(after["loss"], 0.2 * before["loss"])
        self.assertLess(after["cer"], 0.03)
        self.assertGreater(after["accuracy"], 0.9)
        self.assertAlmostEqual(hist[-1]["val_cer"], after["cer"], places=12)
        # evaluate's accuracy is best path over each image's own columns (its width / 2)
        steps = m.forward(vx, lengths=vw)
        cols = m.output_lengths(vw)
        self.assertEqual(list(cols), [w // 2 for w in vw])
        right = 0
        for i in range(len(vx)):
            text, _ = hlr.ctc_decode(steps[i, :cols[i]], alphabet="-abc")
            right += text == "".join("-abc"[k] for k in vt[i] if k > 0)
        self.assertEqual(right / len(vx), after["accuracy"])
        with self.assertRaises(ValueError):
            m.fit(x, t[:, 0], loss="ctc", verbose=0)  # one label per sample is no sequence
        with self.assertRaises(ValueError):
            m.fit(x, t, loss=hlr.CTCLoss(blank=3), verbose=0)
        with self.assertRaises(ValueError):
            m.fit(x, t, loss="hinge", verbose=0)

    def test_ctc_loss_object_is_the_function(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 6, 4)).astype(np.float32)
        crit = hlr.CTCLoss(reduction="sum")
        self.assertEqual(crit(x, [[1, 2], [3, -1]], [6, 5], [2, 1]), hlr.ctc_loss(x, [[1, 2], [3, -1]], [6, 5], [2, 1],
                                                                                   reduction="sum"))
        self.assertIn("reduction='sum'", repr(crit))

    def test_load_lines_reads_a_labels_file(self):
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            for name, (h, w) in {"a.pgm": (10, 20), "b.pgm": (10, 40)}.items():
                px = np.full((h, w), 255, np.uint8)
                px[2:8, 3:3 + (w // 2)] = 0
                with open(os.path.join(d, name), "wb") as f:
                    f.write(b"P5 %d %d 255\n" % (w, h) + px.tobytes())
            with open(os.path.join(d, "labels.tsv"), "w", encoding="utf-8") as f:
                f.write("a.pgm\tab\nb.pgm\tba\u00e9\n")
            x, t, w = hlr.load_lines(os.path.join(d, "labels.tsv"), "ab\u00e9", height=8, pad=1)
            self.assertEqual(x.shape, (2, 1, 8, int(w.max())))
            self.assertEqual(t.tolist(), [[1, 2, -1], [2, 1, 3]])
            self.assertEqual(w.tolist(), [2 + round(10 * 6 / 6), 2 + round(20 * 6 / 6)])
            with self.assertRaises(hlr.HlrError) as e:
                hlr.load_lines(os.path.join(d, "labels.tsv"), "ab")
            self.assertIn("labels.tsv:2:", str(e.exception))

    def test_load_iam_reads_its_layout(self):
        import os
        import struct
        import tempfile
        import zlib

        def png(path, px):  # 8-bit grey PNG, no filtering
            h, w = px.shape
            raw = b"".join(b"\0" + px[r].tobytes() for r in range(h))

            def chunk(kind, data):
                return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            with open(path, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        with tempfile.TemporaryDirectory() as d:
            pics = os.path.join(d, "words", "a01", "a01-000u")
            os.makedirs(pics)
            os.makedirs(os.path.join(d, "ascii"))
            for i, w in enumerate((10, 20)):
                px = np.full((10, 30), 255, np.uint8)
                px[2:8, 3:3 + w] = 0
                png(os.path.join(pics, "a01-000u-00-%02d.png" % i), px)
            with open(os.path.join(d, "ascii", "words.txt"), "w") as f:
                f.write("#--- words.txt ---\na01-000u-00-00 ok 154 408 768 27 51 AT ab\n"
                        "a01-000u-00-01 ok 154 507 766 213 48 NN ba\na01-000u-00-02 err 154 796 764 70 50 TO a\n")
            x, t, w, skipped = hlr.load_iam(os.path.join(d, "ascii", "words.txt"), os.path.join(d, "words"), "ab",
                                            height=8, pad=1)
            self.assertEqual(skipped, 1)
            self.assertEqual(t.tolist(), [[1, 2], [2, 1]])
            self.assertEqual(x.shape, (2, 1, 8, int(w.max())))
            self.assertEqual(w.tolist(), [2 + 10, 2 + 20])
            with self.assertRaises(hlr.HlrError) as e:
                hlr.load_iam(os.path.join(d, "ascii", "words.txt"), os.path.join(d, "nowhere"), "ab")
            self.assertIn("words.txt:2:", str(e.exception))


if __name__ == "__main__":
    unittest.main()

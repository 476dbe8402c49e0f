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


if __name__ == "__main__":
    unittest.main()

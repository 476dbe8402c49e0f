"""classification_report and confusion_matrix against hand-computed figures (scikit-learn's)."""

import unittest

import helpers  # noqa: F401 (finds the package)
from helpers import hlr


class TestReport(unittest.TestCase):
    def test_figures_match_hand_computed_ones(self):
        y_true = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
        y_pred = [0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 2]
        conf = hlr.confusion_matrix(y_true, y_pred)
        self.assertEqual(conf, [[5, 1, 0], [2, 3, 1], [0, 0, 0]])
        r = hlr.classification_report(y_true, y_pred, output_dict=True)
        self.assertAlmostEqual(r["0"]["precision"], 5 / 7)
        self.assertAlmostEqual(r["0"]["recall"], 5 / 6)
        self.assertAlmostEqual(r["0"]["f1-score"], 10 / 13)
        self.assertEqual((r["1"]["precision"], r["1"]["recall"], r["1"]["f1-score"]), (0.75, 0.5, 0.6))
        self.assertEqual(r["2"], {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        self.assertAlmostEqual(r["accuracy"], 8 / 12)
        self.assertAlmostEqual(r["macro avg"]["f1-score"], (10 / 13 + 0.6) / 3)
        self.assertAlmostEqual(r["weighted avg"]["precision"], (5 / 7 + 0.75) / 2)
        self.assertEqual(r["weighted avg"]["support"], 12)
        same = hlr.classification_report(confusion=conf, output_dict=True)
        self.assertEqual(same, r)

    def test_text_table(self):
        text = hlr.classification_report([0, 1, 1], [0, 1, 0], target_names=["zero", "one"])
        lines = text.splitlines()
        self.assertEqual(lines[0].split(), ["precision", "recall", "f1-score", "support"])
        self.assertEqual(lines[2].split(), ["zero", "0.50", "1.00", "0.67", "1"])
        self.assertEqual(lines[3].split(), ["one", "1.00", "0.50", "0.67", "2"])
        self.assertEqual(lines[5].split(), ["accuracy", "0.67", "3"])
        self.assertEqual(lines[6].split()[:2], ["macro", "avg"])

    def test_error_rates(self):
        self.assertEqual(hlr.edit_distance("kitten", "sitting"), 3)
        self.assertEqual(hlr.edit_distance([1, 2, 3], []), 3)
        self.assertAlmostEqual(hlr.cer(["31415", "27"], ["3145", "27"]), 1 / 7)
        self.assertAlmostEqual(hlr.wer(["the cat sat", "on a mat"], ["the cat sat", "on the mat"]), 1 / 6)
        self.assertEqual(hlr.string_accuracy(["12", "34"], ["12", "43"]), 0.5)
        with self.assertRaises(ValueError):
            hlr.cer(["1"], [])

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            hlr.classification_report(confusion=[[1, 2]])
        with self.assertRaises(ValueError):
            hlr.classification_report([0, 1], [0, 1], target_names=["a"])
        with self.assertRaises(TypeError):
            hlr.classification_report([0, 1])
        with self.assertRaises(hlr.HlrError):
            hlr.classification_report(confusion=[[1, -2], [0, 1]])
        with self.assertRaises(ValueError):
            hlr.confusion_matrix([0, 1], [0])


if __name__ == "__main__":
    unittest.main()

"""bin/hlr-mnist train's training control and reports, on a small synthetic idx set (no MNIST):
--val-split, --early-stopping, --checkpoint (resumable), --plot (an SVG), the per-class table
after the confusion matrix, --confusion (the matrix as an SVG heat map, from train and eval), and
calibrate (temperature scaling; eval's `test ECE` line and --reliability diagrams).  Run by `make cli-test`."""
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_errors import BIN, write_idx  # noqa: E402


def run(*args):
    p = subprocess.run([os.path.join(BIN, "hlr-mnist")] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class TrainOptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = cls.tmp.name
        write_idx(cls.data, "train", 300)
        write_idx(cls.data, "t10k", 60)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_validation_checkpoint_plot_and_report(self):
        ckpt, svg = os.path.join(self.data, "ckpt.hlr"), os.path.join(self.data, "curves.svg")
        rc, out, err = run("train", "--epochs", "4", "--val-split", "0.2", "--early-stopping", "2",
                           "--checkpoint", ckpt, "--plot", svg, "--data", self.data)
        self.assertEqual(rc, 0, err)
        epochs = re.findall(r"^epoch (\d+)/4 .* val_loss (\d+\.\d+)  val_accuracy (\d+\.\d+)%", out, re.M)
        self.assertGreaterEqual(len(epochs), 3)  # early stopping may end it after epoch 3
        self.assertIn("training mlp on 300 images", out)
        # the per-class table: one line per class, then the averages
        self.assertRegex(out, r"(?m)^\s+class precision\s+recall\s+f1\s+support$")
        self.assertRegex(out, r"(?m)^\s+9 +\d\.\d{4} +\d\.\d{4} +\d\.\d{4} +\d+$")
        self.assertRegex(out, r"(?m)^weighted avg +\d\.\d{4}")
        # the picture: two panels, a training and a validation line in each
        root = ET.parse(svg).getroot()
        lines = root.findall("{http://www.w3.org/2000/svg}polyline")
        self.assertEqual(len(lines), 4)
        self.assertEqual(len(lines[0].get("points").split()), len(epochs))
        # the checkpoint resumes, with the training's own settings
        rc, out, err = run("resume", ckpt, "--epochs", "1", "--data", self.data)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("does not record", out)
        self.assertRegex(out, r"val_loss \d")

    def test_confusion_heat_map(self):
        model, svg = os.path.join(self.data, "conf.hlr"), os.path.join(self.data, "conf.svg")
        rc, out, err = run("train", "--epochs", "1", "--data", self.data, "--save", model)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("eval", model, "--data", self.data, "--confusion", svg)
        self.assertEqual(rc, 0, err)
        self.assertIn("confusion matrix: " + svg, out)
        # the printed matrix's counts are the ones drawn in the cells
        printed = [[int(v) for v in line.split()[1:]] for line in out.split("\n")
                   if re.match(r"^\s+\d\s+(\d+\s+){9}\d+$", line)]
        self.assertEqual(len(printed), 10, out)
        ns = "{http://www.w3.org/2000/svg}"
        root = ET.parse(svg).getroot()
        cells = [r for r in root.findall(ns + "rect") if r.get("stroke") == "#ddd"]
        self.assertEqual(len(cells), 100)
        drawn = {}
        for t in root.findall(ns + "text"):
            if t.get("fill") in ("black", "white"):
                drawn[(float(t.get("y")), float(t.get("x")))] = int(t.text)
        nonzero = sum(1 for row in printed for v in row if v)
        self.assertEqual(len(drawn), nonzero)
        self.assertEqual(sum(drawn.values()), sum(map(sum, printed)))
        self.assertEqual(sum(map(sum, printed)), 60)
        # a folder that does not exist: one line on stderr, exit 1
        rc, out, err = run("eval", model, "--data", self.data, "--confusion", os.path.join(self.data, "no", "c.svg"))
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"^hlr-mnist: cannot write .*no/c\.svg: No such file or directory\n$")

    def test_calibrate_fits_saves_and_eval_reports_ece(self):
        model, out = os.path.join(self.data, "cal.hlr"), os.path.join(self.data, "cal2.hlr")
        svg = os.path.join(self.data, "rel.svg")
        rc, o, err = run("train", "--epochs", "2", "--val-split", "0.2", "--data", self.data, "--save", model)
        self.assertEqual(rc, 0, err)
        self.assertRegex(o, r"(?m)^test ECE: \d+\.\d\d% \(15 bins; temperature 1\.000\)$")
        rc, o, err = run("calibrate", model, "--data", self.data, "--save", out, "--reliability", svg)
        self.assertEqual(rc, 0, err)
        self.assertIn("on the last 60 of its 300 training images (its validation part: unseen in training)", o)
        t = float(re.search(r"(?m)^temperature: (\d+\.\d+) \(validation NLL", o).group(1))
        acc = re.search(r"(?m)^test accuracy: (\d+\.\d\d)% \(unchanged by temperature scaling: (\d+\.\d\d)%", o)
        self.assertEqual(acc.group(1), acc.group(2))
        self.assertIn("saved " + out, o)
        # the reliability diagram: bars drawn, before (outlines) and after
        root = ET.parse(svg).getroot()
        self.assertGreater(len(root.findall("{http://www.w3.org/2000/svg}rect")), 15)
        # hlr-inspect shows it
        p = subprocess.run([os.path.join(BIN, "hlr-inspect"), out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^temperature %s \(temperature scaling" % re.escape("%.4g" % t))
        # eval applies the saved temperature
        rc, o, err = run("eval", out, "--data", self.data)
        self.assertEqual(rc, 0, err)
        got = float(re.search(r"(?m)^test ECE: \d+\.\d\d% \(15 bins; temperature (\d+\.\d+)\)$", o).group(1))
        self.assertAlmostEqual(got, t, places=3)
        # a missing file name is a usage mistake
        rc, o, err = run("calibrate")
        self.assertEqual(rc, 2)
        self.assertIn("calibrate needs a model FILE", err)

    def test_adversarial_training_and_attack(self):
        model = os.path.join(self.data, "adv.hlr")
        rc, o, err = run("train", "--epochs", "1", "--adversarial", "pgd", "--eps", "0.1", "--adv-steps", "3",
                         "--data", self.data, "--save", model)
        self.assertEqual(rc, 0, err)
        self.assertIn("adversarial training: pgd, eps 0.1, 3 steps of 0.0833333, random start, 0.5 of each batch", o)
        rc, o, err = run("attack", model, "--eps", "0.1", "--steps", "5", "--data", self.data)
        self.assertEqual(rc, 0, err)
        self.assertIn("PGD, eps 0.1, 5 steps of 0.05, random start", o)
        clean = float(re.search(r"(?m)^clean accuracy: (\d+\.\d\d)%$", o).group(1))
        robust = float(re.search(r"(?m)^robust accuracy: (\d+\.\d\d)%$", o).group(1))
        self.assertLessEqual(robust, clean)
        rc, o, err = run("attack", model, "--eps", "0", "--steps", "1", "--data", self.data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(re.search(r"(?m)^robust accuracy: (.*)$", o).group(1),
                         re.search(r"(?m)^clean accuracy: (.*)$", o).group(1))
        rc, o, err = run("train", "--adversarial", "cw", "--data", self.data)
        self.assertEqual(rc, 2)
        self.assertIn("unknown --adversarial 'cw' (fgsm or pgd)", err)

    def test_early_stopping_stops(self):
        # random pictures with random labels: the model can only memorise the training part, so the
        # validation loss soon stops improving and early stopping ends the 30 epochs long before
        noise = os.path.join(self.data, "noise")
        os.makedirs(noise)
        rng = random.Random(5)
        for prefix, n in (("train", 400), ("t10k", 50)):
            with open(os.path.join(noise, prefix + "-images-idx3-ubyte"), "wb") as f:
                f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(rng.randrange(256) for _ in range(n * 784)))
            with open(os.path.join(noise, prefix + "-labels-idx1-ubyte"), "wb") as f:
                f.write(struct.pack(">II", 0x801, n) + bytes(rng.randrange(10) for _ in range(n)))
        rc, out, err = run("train", "--epochs", "30", "--val-split", "0.25", "--early-stopping", "2", "--data", noise)
        self.assertEqual(rc, 0, err)
        m = re.search(r"early stopping: no improvement since epoch (\d+)", out)
        self.assertIsNotNone(m, out)
        last = int(re.findall(r"^epoch (\d+)/30", out, re.M)[-1])
        self.assertLess(last, 30)
        self.assertEqual(last, int(m.group(1)) + 2)  # patience 2


if __name__ == "__main__":
    unittest.main()

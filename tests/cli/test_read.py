"""bin/hlr-read on a small synthetic idx set (no MNIST): train, save, predict, and its failures.
It checks the program's plumbing; the accuracy on real MNIST strings is measured by running it
(see README).  Run by `make cli-test`."""
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_errors import BIN, write_idx  # noqa: E402


def run(*args):
    p = subprocess.run([os.path.join(BIN, "hlr-read")] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class Read(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = cls.tmp.name
        write_idx(cls.data, "train", 240)
        write_idx(cls.data, "t10k", 60)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_train_save_predict(self):
        model = os.path.join(self.data, "read.hlr")
        rc, out, err = run("train", "--epochs", "2", "--train-strings", "64", "--test-strings", "40", "--max-len", "3",
                           "--data", self.data, "--save", model)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(re.findall(r"(?m)^epoch \d/2  loss \d+\.\d{4}  validation CER \d+\.\d\d%", out)), 2)
        self.assertRegex(out, r"(?m)^test CER: \d+\.\d\d%$")
        self.assertRegex(out, r"(?m)^test string accuracy: \d+\.\d\d%$")
        # a picture of a string: three bars of the synthetic digits side by side, dark on light
        w, h = 90, 28
        px = bytearray([255] * (w * h))
        for i, label in enumerate((1, 4, 7)):
            for y in range(2 + 2 * label, 5 + 2 * label):
                for x in range(4 + 28 * i, 24 + 28 * i):
                    px[y * w + x] = 0
        img = os.path.join(self.data, "string.pgm")
        with open(img, "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (w, h) + bytes(px))
        rc, out, err = run("predict", model, img)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^%s: \d*  \(confidence \d+\.\d%%\)\n$" % re.escape(img))
        rc, out, err = run("predict", "--json", model, img)
        self.assertEqual(rc, 0, err)
        got = json.loads(out)
        self.assertEqual(set(got), {"file", "text", "confidence", "characters", "cut"})
        self.assertEqual(got["file"], img)
        self.assertRegex(got["text"], r"^\d*$")
        self.assertEqual(len(got["characters"]), len(got["text"]))
        self.assertFalse(got["cut"])
        # a blank picture: one line naming it, exit 1, and the next picture still read
        blank = os.path.join(self.data, "blank.pgm")
        with open(blank, "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (w, h) + bytes([255] * (w * h)))
        rc, out, err = run("predict", model, blank, img)
        self.assertEqual(rc, 1)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("blank.pgm: hlr_image_line: no ink", err)
        self.assertIn(img + ": ", out)

    def test_lines_from_a_labels_file(self):
        """--task lines: pictures of bar strings (label k a bar at height k, dark on light, sizes and margins
        varying) and their texts in a labels file; train through fit, save, read a picture back."""
        d = os.path.join(self.data, "lines")
        os.makedirs(d, exist_ok=True)
        rnd = random.Random(4)
        rows = []
        for i in range(120):
            text = "".join(rnd.choice("abc") for _ in range(rnd.randint(1, 4)))
            cell, h = rnd.randint(7, 9), 26
            w = 6 + cell * len(text) + 4
            px = bytearray([240] * (w * h))
            for j, ch in enumerate(text):
                k = "abc".index(ch)
                for y in range(3 + 6 * k, 3 + 6 * k + 4):
                    for x in range(6 + cell * j, 6 + cell * j + cell // 2):
                        px[y * w + x] = 20
            px[0] = px[(h - 1) * w] = 20  # specks in two corners: the crop to the ink keeps the bars' heights
            name = "w%03d.pgm" % i
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"P5\n%d %d\n255\n" % (w, h) + bytes(px))
            rows.append("%s\t%s" % (name, text))
        with open(os.path.join(d, "labels.tsv"), "w") as f:
            f.write("\n".join(rows[:100]) + "\n")
        with open(os.path.join(d, "test.tsv"), "w") as f:
            f.write("\n".join(rows[100:]) + "\n")
        model = os.path.join(self.data, "lines.hlr")
        rc, out, err = run("train", "--task", "lines", "--labels", os.path.join(d, "labels.tsv"), "--alphabet", "abc",
                           "--test-labels", os.path.join(d, "test.tsv"), "--height", "16", "--epochs", "3",
                           "--batch", "16", "--channels", "4", "--hidden", "16", "--save", model)
        self.assertEqual(rc, 0, err)
        self.assertIn("training a CRNN with CTC on 90 pictures", out)
        self.assertEqual(len(re.findall(r"(?m)^epoch \d/3  loss \d+\.\d{4}  validation CER \d+\.\d\d%", out)), 3)
        self.assertRegex(out, r"(?m)^test pictures: 20, best-path decoding$")
        self.assertRegex(out, r"(?m)^test CER: \d+\.\d\d%$")
        rc, out, err = run("predict", "--json", model, os.path.join(d, "w100.pgm"))
        self.assertEqual(rc, 0, err)
        self.assertRegex(json.loads(out)["text"], r"^[abc]*$")
        for args, says in [(("train", "--task", "lines", "--alphabet", "abc"), "needs --labels"),
                           (("train", "--task", "lines", "--labels", os.path.join(d, "labels.tsv"), "--alphabet", "ab"),
                            "outside the alphabet"),
                           (("train", "--task", "lines", "--labels", os.path.join(d, "labels.tsv"), "--alphabet", "abc",
                             "--height", "18"), "multiple of 4"),
                           (("train", "--alphabet", "abc"), "for --task lines")]:
            rc, out, err = run(*args)
            self.assertNotEqual(rc, 0, args)
            self.assertEqual(len(err.splitlines()), 1, (args, err))
            self.assertIn(says, err)

    def test_generate_writes_the_strings_train_sees(self):
        p = subprocess.run([os.path.join(BIN, "hlr-read"), "generate", "--part", "train", "--train-strings", "70",
                            "--batch", "32", "--epochs", "2", "--max-len", "3", "--data", self.data],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        record = 16 * 4 + 32 * 224 * 4
        self.assertEqual(len(p.stdout), 2 * 64 * record)  # whole batches of 32 per epoch, as train
        labels = struct.unpack("16i", p.stdout[:64])
        n = sum(1 for v in labels if v >= 0)
        self.assertTrue(1 <= n <= 3 and all(1 <= v <= 10 for v in labels[:n]) and all(v == -1 for v in labels[n:]))
        q = subprocess.run([os.path.join(BIN, "hlr-read"), "generate", "--part", "test", "--test-strings", "5",
                            "--data", self.data], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(q.returncode, 0, q.stderr)
        self.assertEqual(len(q.stdout), 5 * record)

    def test_failures_are_one_line(self):
        for args, code, says in [(("train", "--task", "words"), 2, "unknown task"),
                                 (("train", "--min-len", "5", "--max-len", "2"), 2, "--min-len 5"),
                                 (("train", "--beam", "-1"), 2, "--beam"),
                                 (("train", "--convs", "4"), 2, "--convs 4"),
                                 (("train", "--schedule", "step"), 2, "--schedule 'step'"),
                                 (("predict", os.path.join(self.data, "none.hlr"), "x.png"), 1, "none.hlr"),
                                 (("frob",), 2, "unknown command"),
                                 (("generate",), 2, "generate needs --part"),
                                 (("generate", "--part", "dev"), 2, "--part 'dev'"),
                                 (("train", "--part", "train"), 2, "--part is for generate"),
                                 (("train", "--data", os.path.join(self.data, "nowhere")), 1, "cannot load")]:
            rc, out, err = run(*args)
            self.assertEqual(rc, code, (args, err))
            self.assertEqual(len(err.splitlines()), 1, (args, err))
            self.assertIn(says, err)


if __name__ == "__main__":
    unittest.main()

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
from test_errors import BIN, ROOT, write_idx  # noqa: E402


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
                           "--batch", "16", "--channels", "4", "--hidden", "16", "--layers", "2", "--dropout", "0.1",
                           "--save", model)
        self.assertEqual(rc, 0, err)
        self.assertIn("training a CRNN with CTC on 90 pictures", out)
        shown = subprocess.run([os.path.join(BIN, "hlr-inspect"), model], capture_output=True, text=True)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertRegex(shown.stdout, r"lstm +input_size=\d+ hidden_size=16 num_layers=2 .*dropout=0\.1")
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
                           (("train", "--alphabet", "abc"), "for --task lines"),
                           (("train", "--layers", "5"), "--layers")]:
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
        for args, code, says in [(("train", "--task", "sentences"), 2, "unknown task"),
                                 (("train", "--min-len", "5", "--max-len", "2"), 2, "--min-len 5"),
                                 (("train", "--beam", "-1"), 2, "--beam"),
                                 (("train", "--convs", "5"), 2, "--convs 5"),
                                 (("train", "--pool-width", "3"), 2, "--pool-width 3"),
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


HELD_OUT_FONTS = {"KaushanScript-Regular.otf", "Kristi.ttf", "DancingScript-Regular.otf", "DancingScript-Bold.otf"}
HANDS = {"scripts", "scriptc", "cursive", "futural", "rowmans", "timesi"}  # drawn by strokes (Hershey fonts)
SMALL = ("--words", "300", "--test-words", "20")


class Words(unittest.TestCase):
    """--task words: Debian's word lists drawn in its handwriting fonts (scripts/install-deps.sh installs both);
    a tiny run checks the plumbing, the splits and the failures, not the accuracy (README and docs/words.md
    give the real run's figures)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate(self, part, out, *extra):
        rc, text, err = run("generate", "--task", "words", "--part", part, "--out", out, *(SMALL + extra))
        self.assertEqual(rc, 0, err)
        with open(os.path.join(out, "labels.tsv"), encoding="utf-8") as f:
            return [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]

    def test_train_save_predict(self):
        model, splits = os.path.join(self.dir, "words.hlr"), os.path.join(self.dir, "splits.txt")
        rc, out, err = run("train", "--task", "words", "--epochs", "1", "--train-words", "32", "--batch", "16",
                           "--langid-epochs", "1", "--channels", "4", "--hidden", "16", "--splits", splits,
                           "--save", model, *SMALL)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^fonts: \d+ training, 4 held out \(Kaushan Script, Kristi, Dancing Script\); "
                              r"0 not installed$")
        self.assertIn("the fonts and words of each split: %s\n" % splits, out)
        self.assertIn("on the training words, each also misread (30% of its letters)\n", out)
        self.assertRegex(out, r"(?m)^test words: 20 in held-out fonts, 20 in training fonts$")
        self.assertEqual(len(re.findall(r"(?m)^epoch 1/1  loss \d+\.\d{4}  held-out fonts CER \d+\.\d\d%", out)), 1)
        for what in ("CER", "word accuracy", "language accuracy"):
            for fonts in ("training fonts", "held-out fonts"):
                self.assertRegex(out, r"(?m)^test %s \(%s\): \d+\.\d\d%%$" % (what, fonts))
        # the closed lexicon: the corpus's 300 words a language and more of each list, never drawn
        lex = re.search(r"(?m)^lexicon: the first (\d+) words per language of the shuffled lists \(the 300 training and "
                        r"test words and (\d+) never drawn\), beam 8$", out)
        self.assertIsNotNone(lex, out)
        self.assertEqual(int(lex.group(1)), 300 + int(lex.group(2)))
        self.assertGreater(int(lex.group(2)), 1000)
        self.assertRegex(out, r"(?m)^held-out fonts, lexicon: CER \d+\.\d\d%  word accuracy")
        # the open-vocabulary reading: a lexicon of the training words alone (300 words a language, 270 of them train)
        self.assertRegex(out, r"(?m)^held-out fonts, lexicon of the 270 training words per language alone \(no test "
                              r"word in it\): CER \d+\.\d\d%  word accuracy \d+\.\d\d%  language accuracy "
                              r"\d+\.\d\d%, with langid \d+\.\d\d%$")
        self.assertTrue(os.path.exists(os.path.join(self.dir, "words.langid.hlr")))
        # evaluate: the saved model's own test words (seed, word count and languages from its metadata), read
        # again to the same figures
        rc, again, err = run("evaluate", model, "--test-words", "20", "--splits", splits)
        self.assertEqual(rc, 0, err)
        self.assertIn("evaluating %s on 20 test words in held-out fonts and 20 in training fonts (its seed 0, 300 "
                      "words per language, en,es,de,nl,pl)" % model, again)
        self.assertEqual(re.findall(r"(?m)^test .*$", again), re.findall(r"(?m)^test .*$", out))
        self.assertEqual(len(re.findall(r"(?m)^test .*$", out)), 7)  # "test words: ..." and the six figures
        # the splits: every font in one split only, and no family on both sides
        with open(splits, encoding="utf-8") as f:
            rows = [line.split("\t") for line in f if not line.startswith("#")]
        held = {r[1] for r in rows if r[3].startswith("held-out")}
        trained = {r[1] for r in rows if r[3] == "training"}
        self.assertEqual(held, {"Kaushan Script", "Kristi", "Dancing Script"})
        self.assertFalse(held & trained)
        # a generated test picture read back: the text, and three languages, likeliest first
        pics = os.path.join(self.dir, "predict")
        self.generate("test-held-out", pics)
        img = os.path.join(pics, "000000.png")
        rc, out, err = run("predict", model, img)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^%s: .*  \(confidence \d+\.\d%%\)  language: (en|es|de|nl|pl) \d+\.\d%%, "
                              r"\w\w \d+\.\d%%, \w\w \d+\.\d%%\n$" % re.escape(img))
        rc, out, err = run("predict", "--json", model, img)
        self.assertEqual(rc, 0, err)
        langs = json.loads(out)["languages"]
        self.assertEqual(len(langs), 3)
        p = [x["probability"] for x in langs]
        self.assertEqual(p, sorted(p, reverse=True))
        self.assertLessEqual(sum(p), 1.0 + 1e-6)
        self.assertEqual(len({x["language"] for x in langs}), 3)
        # --lexicon: the word of the model's own word lists that fits best, and the languages weighed by it
        rc, out, err = run("predict", "--json", "--lexicon", model, img)
        self.assertEqual(rc, 0, err)
        got = json.loads(out)
        self.assertRegex(got["lexicon"], r"^[^\W\d_]*$")  # a word of the lists (letters), or "" when none fits
        self.assertEqual(len(got["languages"]), 3)
        rc, out, err = run("predict", "--lexicon", "--json", model, img)  # flags in either order
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["lexicon"], got["lexicon"])
        # --views: the picture read again stretched across; a stretch of 1 is the same reading again, so the
        # text is the plain reading's
        rc, plain, err = run("predict", "--json", model, img)
        self.assertEqual(rc, 0, err)
        rc, once_more, err = run("predict", "--json", "--views", "1", model, img)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(once_more)["text"], json.loads(plain)["text"])
        self.assertEqual(json.loads(once_more)["characters"], json.loads(plain)["characters"])
        rc, out, err = run("predict", "--json", "--views", "1.15,1.35", "--lexicon", model, img)
        self.assertEqual(rc, 0, err)
        got = json.loads(out)
        self.assertRegex(got["lexicon"], r"^[^\W\d_]*$")
        self.assertEqual(len(got["languages"]), 3)
        for bad, says in (("1.15,x", "'1.15,x'"), ("1.15,", "ends with a comma"), ("2.5", "'2.5'")):
            rc, out, err = run("predict", "--views", bad, model, img)
            self.assertEqual((rc, out), (2, ""), bad)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(says, err)
        # evaluate --views: says how it read; with a stretch of 1 the same figures as one reading
        rc, views, err = run("evaluate", model, "--test-words", "20", "--views", "1.15,1.35", "--splits", splits)
        self.assertEqual(rc, 0, err)
        self.assertIn("--views: each test picture read 3 times, as drawn and stretched across by 1.15, 1.35; ", views)
        self.assertEqual(len(re.findall(r"(?m)^test .*$", views)), 7)
        rc, views, err = run("evaluate", model, "--test-words", "20", "--views", "1", "--splits", splits)
        self.assertEqual(rc, 0, err)
        self.assertEqual(re.findall(r"(?m)^test .*$", views), re.findall(r"(?m)^test .*$", again))
        rc, out, err = run("predict", "--frob", model, img)
        self.assertEqual(rc, 2)
        self.assertIn("'--frob'", err)
        # the language model beside the model is required
        os.rename(os.path.join(self.dir, "words.langid.hlr"), os.path.join(self.dir, "gone.hlr"))
        try:
            rc, out, err = run("predict", model, img)
        finally:
            os.rename(os.path.join(self.dir, "gone.hlr"), os.path.join(self.dir, "words.langid.hlr"))
        self.assertEqual(rc, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("words.langid.hlr", err)

    def test_generate_is_seeded_and_keeps_the_splits_apart(self):
        a = self.generate("test-held-out", os.path.join(self.dir, "a"))
        b = self.generate("test-held-out", os.path.join(self.dir, "b"))
        c = self.generate("test-held-out", os.path.join(self.dir, "c"), "--seed", "1")
        self.assertEqual(a, b)
        with open(os.path.join(self.dir, "a", "000003.png"), "rb") as f, \
                open(os.path.join(self.dir, "b", "000003.png"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertNotEqual([r[1] for r in a], [r[1] for r in c])
        self.assertEqual(len(a), 20)
        self.assertEqual({r[2] for r in a}, {"en", "es", "de", "nl", "pl"})  # languages in turn
        self.assertTrue({r[3] for r in a} <= HELD_OUT_FONTS, a)
        seen = self.generate("test-training", os.path.join(self.dir, "s"))
        self.assertEqual([r[1] for r in seen], [r[1] for r in a])  # the same test words, other hands
        self.assertFalse({r[3] for r in seen} & HELD_OUT_FONTS)
        train = self.generate("train", os.path.join(self.dir, "t"), "--test-words", "200")
        self.assertFalse({r[3] for r in train} & HELD_OUT_FONTS)
        self.assertFalse({r[1] for r in train} & {r[1] for r in a})  # test words are never trained on
        for row in train:
            self.assertRegex(row[1], r"^[^\W\d_]+$")  # letters only
            self.assertEqual(row[1], row[1].lower())

    def test_hands_of_strokes(self):
        """--hands P: that share of the training words drawn by a hand of strokes (Debian's Hershey fonts, each
        letter's shape and the pen drawn anew), accented letters of every language included; never a test word."""
        hands = self.generate("train", os.path.join(self.dir, "h"), "--test-words", "60", "--hands", "1")
        again = self.generate("train", os.path.join(self.dir, "h2"), "--test-words", "60", "--hands", "1")
        self.assertEqual(hands, again)
        self.assertEqual(len(hands), 60)
        self.assertTrue({r[3] for r in hands} <= HANDS, hands)
        self.assertEqual({r[2] for r in hands}, {"en", "es", "de", "nl", "pl"})
        self.assertTrue([r for r in hands if set(r[1]) & set("ąęłżźćńś")], hands)  # the marks drawn by strokes
        for name in ("000000.png", "000007.png"):
            with open(os.path.join(self.dir, "h", name), "rb") as f, open(os.path.join(self.dir, "h2", name), "rb") as g:
                self.assertEqual(f.read(), g.read())
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import hlr  # its PNG reader (libpng), grey in [0, 1], white = 1
        for row in hands[:12]:  # dark ink on light paper: some ink, mostly paper
            px = hlr.load_image(os.path.join(self.dir, "h", row[0])).tolist()[0]
            ink = sum(v < 0.5 for line in px for v in line) / (len(px) * len(px[0]))
            self.assertTrue(0.02 < ink < 0.6, (row, ink))
        fonts = self.generate("train", os.path.join(self.dir, "f"), "--test-words", "60", "--hands", "0")
        self.assertFalse({r[3] for r in fonts} & HANDS)
        mixed = self.generate("train", os.path.join(self.dir, "m"), "--test-words", "200")  # default 0.25
        share = sum(r[3] in HANDS for r in mixed) / len(mixed)
        self.assertTrue(0.1 < share < 0.4, share)
        for part in ("test-training", "test-held-out"):
            self.assertFalse({r[3] for r in self.generate(part, os.path.join(self.dir, part))} & HANDS)

    def test_failures_are_one_line(self):
        for args, code, says in [(("train", "--task", "words", "--width", "30"), 2, "--width 30"),
                                 (("train", "--task", "words", "--langs", "en,xx"), 2, "'xx'"),
                                 (("train", "--task", "words", "--langs", "en"), 2, "at least two"),
                                 (("train", "--task", "words", "--train-words", "8"), 2, "--train-words 8"),
                                 (("train", "--task", "words", "--langid", os.path.join(self.dir, "no.hlr")) + SMALL,
                                  1, "no.hlr"),
                                 (("train", "--task", "words", "--langid-noise", "0.95"), 2, "--langid-noise"),
                                 (("train", "--langs", "en,es"), 2, "for --task words"),
                                 (("train", "--langid-noise", "0.1"), 2, "for --task words"),
                                 (("train", "--hands", "0.5"), 2, "for --task words"),
                                 (("train", "--task", "words", "--hands", "1.5"), 2, "--hands"),
                                 (("generate", "--task", "words", "--part", "train"), 2, "needs --out"),
                                 (("generate", "--task", "words", "--part", "dev", "--out", self.dir), 2,
                                  "--part 'dev'"),
                                 (("generate", "--task", "lines", "--part", "train"), 2, "not 'lines'"),
                                 (("evaluate",), 2, "evaluate needs the FILE"),
                                 (("evaluate", "w.hlr", "--views", "1.2", "--beam", "4"), 2, "not go with --beam"),
                                 (("train", "--views", "1.2"), 2, "--views is for"),
                                 (("generate", "--task", "words", "--part", "train", "--out", self.dir, "--views",
                                   "1.2"), 2, "--views is for"),
                                 (("train", "--task", "words", "--views", "0.2"), 2, "'0.2'"),
                                 (("evaluate", os.path.join(self.dir, "no.hlr")), 1, "no.hlr")]:
            rc, out, err = run(*args)
            self.assertEqual(rc, code, (args, err))
            self.assertEqual(len(err.splitlines()), 1, (args, err))
            self.assertIn(says, err)


if __name__ == "__main__":
    unittest.main()

"""Every failure of every program: one line on stderr naming what is wrong, and a non-zero exit.

Usage mistakes (an unknown option, a missing or out-of-range value, a bad --index list) exit 2;
failures at run time (a missing file, a data folder without MNIST) exit 1.  --help prints the
usage to standard output and exits 0.  Needs no MNIST: the training runs use a small synthetic
idx set.  Run by `make cli-test` (part of `make test`):

    HLR_BIN=bin python3 tests/cli/test_errors.py
"""
import os
import struct
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("HLR_BIN") or os.path.join(ROOT, "bin"))


def run(program, *args):
    p = subprocess.run([os.path.join(BIN, program)] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


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


class Errors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = cls.tmp.name
        write_idx(cls.data, "train", 200)
        write_idx(cls.data, "t10k", 50)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def fails(self, code, program, *args, says=()):
        """Run; expect exit `code` and exactly one stderr line that contains each of `says`."""
        rc, out, err = run(program, *args)
        what = "%s %s" % (program, " ".join(str(a) for a in args))
        self.assertEqual(rc, code, "%s: exit %d, expected %d; stderr: %r" % (what, rc, code, err))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "%s: expected one line on stderr, got %r" % (what, err))
        self.assertTrue(lines[0].startswith(program + ": "), "%s: %r does not name the program" % (what, lines[0]))
        for s in says:
            self.assertIn(s, lines[0], "%s: %r does not say %r" % (what, lines[0], s))
        return lines[0]

    # Issue 15, defect 1: a refused hyper-parameter used to exit 1 in silence.
    def test_negative_learning_rate_is_named(self):
        self.fails(2, "hlr-mnist", "train", "--lr", "-1", "--limit", "100", "--test-limit", "100", "--epochs", "1",
                   "--data", self.data, says=("--lr", "-1"))

    # Defect 4: 0 and negative limits silently meant "all", --lr 0 silently meant the default.
    def test_out_of_range_numbers_are_refused(self):
        for opt, value in (("--limit", "0"), ("--limit", "-5"), ("--test-limit", "0"), ("--lr", "0"),
                           ("--epochs", "0"), ("--batch", "-3"), ("--threads", "0"), ("--target-accuracy", "101")):
            self.fails(2, "hlr-mnist", "train", opt, value, "--data", self.data, says=(opt, value))
        line = self.fails(2, "hlr-mnist", "train", "--limit", "0", says=("--limit",))
        self.assertIn("leave --limit out", line)  # what means "all" is said

    # Unknown names are usage mistakes too, told before any data is read (they used to exit 1 after
    # MNIST had loaded).
    def test_unknown_names_exit_2_before_reading_data(self):
        missing = os.path.join(self.data, "no-such-folder")
        self.fails(2, "hlr-mnist", "train", "--model", "resnet", "--data", missing, says=("unknown model 'resnet'",))
        self.fails(2, "hlr-mnist", "train", "--optimizer", "rmsprop", "--data", missing,
                   says=("unknown optimizer 'rmsprop'",))
        self.fails(2, "hlr-mnist", "train", "--schedule", "step", "--data", missing, says=("unknown schedule 'step'",))

    def test_values_that_are_not_numbers(self):
        self.fails(2, "hlr-mnist", "train", "--epochs", "three", says=("--epochs", "'three'"))
        self.fails(2, "hlr-mnist", "train", "--lr", "1e-3x", says=("--lr", "1e-3x"))
        self.fails(2, "hlr-mnist", "train", "--lr", "nan", says=("--lr", "nan"))

    # Defect 5: an unknown option used to be reported as "needs a value".
    def test_unknown_options_are_named(self):
        self.fails(2, "hlr-mnist", "train", "--bogusflag", says=("unknown option", "--bogusflag"))
        self.fails(2, "hlr-predict", "--bogusflag", "m.hlr", "x.pgm", says=("unknown option", "--bogusflag"))
        self.fails(2, "hlr-langid", "train", "--bogusflag", says=("unknown option", "--bogusflag"))
        self.fails(2, "hlr-inspect", "--bogusflag", "m.hlr", says=("unknown option", "--bogusflag"))
        self.fails(2, "hlr-mnist", "frob", says=("unknown command", "frob"))

    def test_missing_values_are_named(self):
        self.fails(2, "hlr-mnist", "train", "--epochs", says=("--epochs", "needs a value"))
        self.fails(2, "hlr-mnist", "train", "--data", "--epochs", "1", says=("--data", "needs a value"))
        self.fails(2, "hlr-predict", "m.hlr", "--index", says=("--index", "needs a value"))
        self.fails(2, "hlr-predict", "--index", says=("--index", "needs a value"))
        self.fails(2, "hlr-mnist", "eval", says=("eval needs a model FILE",))
        self.fails(2, "hlr-mnist", says=("which command",))
        self.fails(2, "hlr-inspect", says=("no model FILE",))
        self.fails(2, "hlr-predict", "m.hlr", says=("no IMAGE",))

    # Defect 5, hlr-langid: its one combined message did not say which value was wrong.
    def test_langid_names_the_wrong_value(self):
        self.fails(2, "hlr-langid", "train", "--cell", "rnn", says=("--cell", "'rnn'"))
        self.fails(2, "hlr-langid", "train", "--pool", "max", says=("--pool", "'max'"))
        self.fails(2, "hlr-langid", "train", "--words", "5", says=("--words", "5"))
        self.fails(2, "hlr-langid", "train", "--epochs", "0", says=("--epochs", "0"))

    # Defect 3: --index 5-2 used to exit 0 with no output.
    def test_predict_index_lists(self):
        for bad in ("5-2", "1,,2", "x", "3-", "-3", "1;2"):
            self.fails(2, "hlr-predict", "--index", bad, "m.hlr", "images.gz", says=("--index",))
        self.fails(2, "hlr-predict", "--index", "5-2", "m.hlr", "x", says=("5-2", "backwards"))

    def test_run_time_failures_say_one_line(self):
        missing = os.path.join(self.data, "no-such.hlr")
        self.fails(1, "hlr-mnist", "train", "--epochs", "1", "--data", os.path.join(self.data, "nowhere"),
                   says=("cannot load", "nowhere"))
        self.fails(1, "hlr-mnist", "eval", missing, "--data", self.data, says=("no-such.hlr",))
        self.fails(1, "hlr-predict", missing, "x.pgm", says=("no-such.hlr",))
        self.fails(1, "hlr-inspect", missing, says=("no-such.hlr",))

    def test_help_goes_to_stdout_and_exits_0(self):
        for program, args in (("hlr-mnist", ["--help"]), ("hlr-mnist", ["train", "--help"]),
                              ("hlr-predict", ["--help"]), ("hlr-langid", ["--help"]), ("hlr-inspect", ["-h"])):
            rc, out, err = run(program, *args)
            self.assertEqual((rc, err), (0, ""), "%s %s" % (program, args))
            self.assertIn("usage:", out)

    # Issue 15, defect 9: resuming a model saved from Python printed "mlp" and the whole training set.
    def test_resume_of_a_file_saved_elsewhere_says_what_it_cannot_know(self):
        import sys
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import hlr
        (x, y), _ = hlr.load_mnist(self.data)
        m = hlr.Model([hlr.Flatten(), hlr.Dense(784, 10)], input_shape=(1, 28, 28))
        opt = hlr.Adam(1e-3)
        m.fit(x[:120], y[:120], epochs=1, batch_size=32, optimizer=opt, verbose=0)
        path = os.path.join(self.data, "from-python.hlr")
        m.save(path, optimizer=opt)
        rc, out, err = run("hlr-mnist", "resume", path, "--epochs", "1", "--data", self.data)
        self.assertEqual(rc, 0, err)
        resuming = [l for l in out.splitlines() if l.startswith("resuming")][0]
        self.assertNotIn("mlp", resuming)
        self.assertIn("a model the file does not name", resuming)
        self.assertIn("batch 32", resuming)  # the fit's settings travel in the file (format 1.2)
        self.assertIn("does not record how many training images it used", out)
        rc, out, err = run("hlr-mnist", "resume", path, "--epochs", "1", "--batch", "32", "--limit", "120",
                           "--data", self.data)
        self.assertEqual(rc, 0, err)
        self.assertIn("1 more on 120 images, batch 32", out)
        self.assertIn("test accuracy:", out)

    def test_a_valid_run_still_trains(self):
        rc, out, err = run("hlr-mnist", "train", "--epochs", "1", "--limit", "100", "--test-limit", "50",
                           "--data", self.data)
        self.assertEqual(rc, 0, err)
        self.assertIn("training mlp on 100 images", out)
        self.assertIn("test accuracy:", out)


if __name__ == "__main__":
    unittest.main()

"""bin/hlr-langid train on a few hundred words of Debian's lists: --noise (each training word also misread)
is seeded, changes what is learnt, and its model is saved and read back.  Run by `make cli-test`."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_errors import BIN  # noqa: E402

SMALL = ["--words", "300", "--epochs", "1", "--threads", "1", "--langs", "en,es,de,nl,pl"]


def run(*args):
    p = subprocess.run([os.path.join(BIN, "hlr-langid")] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def figures(out):
    """The epoch and test lines: loss, accuracies (not the timings)."""
    return (re.findall(r"(?m)^epoch 1/1  loss \d+\.\d{4}  accuracy \d+\.\d\d%  validation \d+\.\d\d%", out) +
            re.findall(r"(?m)^test .*$", out))


class Noise(unittest.TestCase):
    def test_noise_is_seeded_changes_training_and_saves(self):
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, "noisy.hlr")
            rc, clean, err = run("train", *SMALL)
            self.assertEqual(rc, 0, err)
            self.assertNotIn("misread", clean)
            rc, noisy, err = run("train", "--noise", "0.2", "--save", model, *SMALL)
            self.assertEqual(rc, 0, err)
            self.assertIn("each training word also misread: 20% of its letters replaced, lost or doubled by another\n",
                          noisy)
            self.assertEqual(len(figures(noisy)), 3, noisy)  # the epoch, test loss and test accuracy lines
            self.assertRegex(noisy, r"(?m)^test accuracy: \d+\.\d\d%$")
            # the misread copies are trained on: the epoch's loss is not the clean run's
            self.assertNotEqual(figures(noisy)[0], figures(clean)[0])
            # and drawn from the seed: the same command gives the same figures
            rc, again, err = run("train", "--noise", "0.2", *SMALL)
            self.assertEqual(rc, 0, err)
            self.assertEqual(figures(again), figures(noisy))
            rc, out, err = run("predict", model, "straße", "huis")
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(re.findall(r"(?m)^(straße|huis): ", out)), 2, out)

    def test_noise_out_of_range_is_one_line(self):
        for bad in ("1", "-0.1", "x"):
            rc, out, err = run("train", "--noise", bad)
            self.assertEqual(rc, 2)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("--noise", err)


if __name__ == "__main__":
    unittest.main()

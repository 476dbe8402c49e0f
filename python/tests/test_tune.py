"""python/examples/tune.py (Optuna's search over cnn-bn) on a tiny budget: it runs its trials, names
the best and trains it, as docs/python.md says.  Needs MNIST (make test fetches it) and Optuna
(scripts/install-deps.sh installs python3-optuna)."""

import os
import re
import subprocess
import sys
import unittest

import helpers  # noqa: F401 (finds the package)

HERE = os.path.dirname(os.path.abspath(__file__))
TUNE = os.path.join(HERE, "..", "examples", "tune.py")
DATA = os.environ.get("HLR_DATA_DIR", os.path.join(HERE, "..", "..", "data", "mnist"))


def have_optuna():
    try:
        import optuna  # noqa: F401
        return True
    except ImportError:
        return False


@unittest.skipUnless(os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")), "no MNIST in " + DATA)
@unittest.skipUnless(have_optuna(), "no Optuna (apt-get install python3-optuna)")
class TestTune(unittest.TestCase):
    def test_a_tiny_search(self):
        p = subprocess.run([sys.executable, TUNE, "--trials", "4", "--subset", "600", "--epochs", "2",
                            "--final-epochs", "1", "--final-limit", "1000", "--data", DATA, "--threads", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        trials = re.findall(r"(?m)^trial (\d+): validation accuracy (\d+\.\d\d)% in \d+ s( \(pruned\))?", p.stdout)
        self.assertEqual([int(t) for t, _, _ in trials], [0, 1, 2, 3])
        best = re.search(r"(?m)^best trial (\d+) of 4 \(\d+ pruned\): validation accuracy (\d+\.\d\d)%$", p.stdout)
        self.assertIsNotNone(best, p.stdout)
        self.assertEqual(float(best.group(2)), max(float(a) for _, a, pruned in trials if not pruned))
        self.assertRegex(p.stdout, r"(?m)^best settings: batch=\d+ dense=\d+ dropout=\S+ lr=\S+ weight_decay=\S+ "
                                   r"width=\d+$")
        self.assertRegex(p.stdout, r"(?m)^test accuracy: \d+\.\d\d%$")

"""The package without NumPy: nonumpy_cases.py in a child interpreter that
cannot use NumPy (HLR_NO_NUMPY=1, and an interpreter without NumPy when
this machine has one)."""

import os
import shutil
import subprocess
import sys
import unittest

import helpers


def run_cases(python, **env):
    return subprocess.run([python, "-m", "unittest", "nonumpy_cases"], cwd=helpers.HERE,
                          env=helpers.env_for_subprocess(**env), capture_output=True, text=True, timeout=120)


class TestNoNumpy(unittest.TestCase):
    def check(self, r):
        self.assertEqual(r.returncode, 0, "no-NumPy cases failed:\n" + r.stderr[-4000:])
        self.assertIn("OK", r.stderr)

    def test_with_numpy_disabled(self):
        self.check(run_cases(sys.executable, HLR_NO_NUMPY="1"))

    def test_with_an_interpreter_that_lacks_numpy(self):
        for name in ("python3", "python3.11", "python3.12"):
            python = shutil.which(name)
            if not python or os.path.realpath(python) == os.path.realpath(sys.executable):
                continue
            if subprocess.run([python, "-c", "pass"], capture_output=True).returncode != 0:
                continue  # e.g. a pyenv shim for a version that is not active
            if subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode != 0:
                self.check(run_cases(python))
                return
        self.skipTest("no other Python without NumPy on PATH (HLR_NO_NUMPY=1 covers the path)")


if __name__ == "__main__":
    unittest.main()

"""The README's Python snippet runs as written."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

import helpers
from helpers import has


def readme_snippet():
    with open(os.path.join(helpers.ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


class TestReadme(unittest.TestCase):
    def run_snippet(self, **env):
        code = readme_snippet()
        with tempfile.TemporaryDirectory() as tmp:
            # Run where the snippet's relative paths work: data/mnist, and
            # mlp.hlr written into the temporary folder, not the tree.
            os.makedirs(os.path.join(tmp, "data"))
            os.symlink(helpers.DATA_DIR, os.path.join(tmp, "data", "mnist"))
            r = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=helpers.env_for_subprocess(**env),
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.exists(os.path.join(tmp, "mlp.hlr")))
        acc = float(re.search(r"test accuracy (\S+)", r.stdout).group(1))
        self.assertGreater(acc, 0.9)
        self.assertIn("[7, 2, 1, 0, 4]", r.stdout)  # the true labels of the first test images
        self.assertIn("(10000, 10)", r.stdout)
        self.assertIn("(128, 784)", r.stdout)

    @unittest.skipUnless(has("hlr_model_save"), "the loaded library cannot save models yet")
    @unittest.skipUnless(os.path.isdir(helpers.DATA_DIR), "MNIST is not in %s (make data)" % helpers.DATA_DIR)
    def test_python_snippet_runs(self):
        # With NumPy when this interpreter has it; nonumpy_cases checks the
        # same calls on memoryviews.
        self.run_snippet()


if __name__ == "__main__":
    unittest.main()

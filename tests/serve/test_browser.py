"""The page of bin/hlr-serve in a real browser (tests/serve/browser.cjs: Debian's Chromium, headless,
driven by playwright-core): digits written on the canvas with pointer events are read back right.

Trains the MLP for two epochs on MNIST (about 97 %), serves it on a free loopback port and runs the
browser script against it; the screenshot lands in build/serve-browser.png.  Run by `make serve-test`
(part of `make test`), which installs playwright-core into build/node first:

    HLR_BIN=bin HLR_DATA_DIR=data/mnist HLR_NODE_PATH=build/node/node_modules python3 tests/serve/test_browser.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_serve import BIN, DATA, ROOT, Server, run  # noqa: E402

NODE_PATH = os.path.abspath(os.environ.get("HLR_NODE_PATH") or os.path.join(ROOT, "build", "node", "node_modules"))
SHOT = os.path.abspath(os.environ.get("HLR_SCREENSHOT") or os.path.join(ROOT, "build", "serve-browser.png"))


class Browser(unittest.TestCase):
    def test_digits_written_on_the_page_are_read(self):
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, "mlp.hlr")
            rc, out, err = run("hlr-mnist", "train", "--model", "mlp", "--epochs", "2", "--seed", "0", "--data", DATA,
                               "--save", model)
            self.assertEqual(rc, 0, err)
            s = Server("--model", "digits=" + model)
            try:
                os.makedirs(os.path.dirname(SHOT), exist_ok=True)
                p = subprocess.run(["node", os.path.join(ROOT, "tests", "serve", "browser.cjs"),
                                    "http://127.0.0.1:%d/" % s.port, SHOT],
                                   env=dict(os.environ, NODE_PATH=NODE_PATH), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=300)
                print(p.stdout.decode(), end="", file=sys.stderr)
                self.assertEqual(p.returncode, 0, p.stderr.decode())
                self.assertTrue(os.path.getsize(SHOT) > 1000)
            finally:
                rc, err = s.stop()
            self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

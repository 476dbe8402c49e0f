"""docs/tutorial.md, run as a reader runs it, so that the tutorial cannot lie.

The ```sh blocks run in order, as one bash script (`set -euo pipefail`: the first failing command
fails the test), in a scratch folder whose entries are symbolic links to the repository's own
(`make` there is the repository's `make`, `bin/`, `lib/` and `data/` are the built ones) with HOME
pointing at the scratch folder, so `make install PREFIX=$HOME/.local` installs into it. A ```c or
```python block under `<!-- file: NAME -->` is written to NAME first, as the tutorial asks the
reader to do. Blocks indented rather than fenced (`make demo`, `make test`: what `make test` itself
is running) are not run. Besides the exit status, the output must show what the text says it
shows.

Run by `make docs-test` (part of `make test`):

    python3 tests/docs/check_tutorial.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIAL = os.path.join(ROOT, "docs", "tutorial.md")


def blocks(text):
    """(kind, file name or None, code) of each fenced block, in order."""
    out = []
    for m in re.finditer(r"(?:<!--\s*file:\s*(\S+)\s*-->\n)?```(\w+)\n(.*?)\n```", text, re.S):
        out.append((m.group(2), m.group(1), m.group(3)))
    return out


class Tutorial(unittest.TestCase):
    def test_every_command_runs(self):
        with open(TUTORIAL) as f:
            parts = blocks(f.read())
        self.assertTrue(any(k == "sh" for k, _, _ in parts), "no sh block in docs/tutorial.md")
        with tempfile.TemporaryDirectory() as tmp:
            for name in os.listdir(ROOT):
                if name != ".git":
                    os.symlink(os.path.join(ROOT, name), os.path.join(tmp, name))
            script = ["set -euo pipefail"]
            for n, (kind, name, code) in enumerate(parts, 1):
                if name:
                    self.assertNotIn(os.sep, name)
                    with open(os.path.join(tmp, name), "w") as f:
                        f.write(code + "\n")
                elif kind == "sh":
                    script.append("echo '### tutorial block %d'" % n)
                    script.append(code)
                else:
                    self.fail("block %d (%s) is neither a command nor a file to write" % (n, kind))
            # The reader's python3 is the interpreter running this test (Debian's, with NumPy, under
            # `make test`), whatever else PATH holds.
            py = os.path.join(tmp, ".python")
            os.mkdir(py)
            os.symlink(sys.executable, os.path.join(py, "python3"))
            env = dict(os.environ, HOME=tmp, HLR_NUM_THREADS="2", PATH=py + os.pathsep + os.environ["PATH"])
            for var in ("HLR_LIBRARY", "PYTHONPATH", "PKG_CONFIG_PATH", "LD_LIBRARY_PATH", "MAKEFLAGS", "MAKELEVEL"):
                env.pop(var, None)
            p = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=900)
            out = p.stdout
            if p.returncode != 0:
                self.fail("docs/tutorial.md: a command failed (exit %d); the end of its output:\n%s"
                          % (p.returncode, out[-4000:]))
            # What the text says the commands show.
            acc = re.search(r"test accuracy: (\d+\.\d+)%", out)
            self.assertIsNotNone(acc, out[-3000:])
            self.assertGreater(float(acc.group(1)), 95.0, "cnn-bn after one short epoch: about 98 %")
            self.assertRegex(out, r"(?m)^libhlr\(3\) +libhlr Manual", "man -l did not show the installed libhlr(3)")
            c_lines = re.findall(r"^image (\d): (\d) \(p = [01]\.\d{3}\), label \d$", out, re.M)
            self.assertEqual([int(i) for i, _ in c_lines], list(range(8)), out[-3000:])
            py = re.search(r"^classes: \[([\d, ]+)\]$", out, re.M)
            self.assertIsNotNone(py, out[-3000:])
            self.assertEqual([int(c) for _, c in c_lines], [int(v) for v in py.group(1).split(",")],
                             "the C program and the Python script disagree")
            self.assertRegex(out, r"wrote number\.pgm: 012")
            self.assertRegex(out, r"number\.pgm: \d*  \(confidence")
            self.assertRegex(out, r"digits\.hlr: 19 layers written to digits\.onnx \(ONNX opset 17\)")
            self.assertIn("digits.onnx: a valid ONNX model", out)
            for f in ("include/hlr/hlr.h", "lib/libhlr.so", "lib/pkgconfig/hlr.pc", "bin/hlr-mnist",
                      "share/man/man1/hlr-mnist.1", "share/man/man3/libhlr.3"):
                self.assertTrue(os.path.exists(os.path.join(tmp, ".local", f)), "make install left out " + f)


if __name__ == "__main__":
    unittest.main(verbosity=2)

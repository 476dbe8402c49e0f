"""The documentation's code, compiled and run, so that it cannot drift from the library.

- Every ```c block of README.md, docs/*.md and docs/reference/*.md: a whole program (one with `int main`) is compiled
  against this build and, in README.md, run from the repository root (it trains on MNIST, which
  `make test` has fetched); a fragment is compiled inside a function, after the declarations that
  an HTML comment just above it gives (`<!-- snippet: hlr_model *m = NULL; -->`, unseen on a
  rendered page).  Function definitions in a fragment (lines from `static ...(...)` to `}`) are
  moved before that function.  A fragment whose comment says `<!-- snippet: skip -->` is not
  compiled (none do today).
- The overview example of include/hlr/hlr.h ("A typical program"), compiled the same way.
- docs/python.md's `>>>` examples, run by doctest against this build.
- The accuracy README.md says `make demo` prints, against the demo's own command.

Run by `make docs-test` (part of `make test`):

    HLR_LIBRARY=lib/libhlr.so.0 PYTHONPATH=python python3 tests/docs/check_snippets.py
"""
import doctest
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CC = os.environ.get("CC", "cc")
WARN = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
        "-Wno-unused-parameter", "-Wno-unused-function", "-Wno-uninitialized", "-Wno-maybe-uninitialized"]


def blocks(path):
    """(line number, context or None, code) of each ```c block; context from the comment above it."""
    out = []
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```c":
            context = None
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            m = re.match(r"<!--\s*snippet:(.*)-->\s*$", lines[k].strip()) if k >= 0 else None
            if m:
                context = m.group(1).strip()
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((i + 1, context, "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return out


def split_functions(code):
    """Function definitions at column 0 (`static ... (...)` up to a `}` line) and the other lines."""
    funcs, body, inside = [], [], False
    for line in code.split("\n"):
        if not inside and re.match(r"^(static\s+)?(const\s+)?\w+[\s\*]+\w+\([^;]*\)\s*$", line) and not line.startswith(" "):
            inside = True
        (funcs if inside else body).append(line)
        if inside and line == "}":
            inside = False
    return "\n".join(funcs), "\n".join(body)


def fragment_source(context, code):
    funcs, body = split_functions(code)
    return ("#include <hlr/hlr.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n\n%s\n\n"
            "void snippet(void);\nvoid snippet(void)\n{\n%s\n%s\n}\n" % (funcs, context or "", body))


def header_example():
    with open(os.path.join(ROOT, "include", "hlr", "hlr.h")) as f:
        text = f.read()
    start = text.index(" * A typical program")
    start = text.index("\n *\n", start) + 4
    end = text.index("\n *\n", start)
    return "\n".join(line[5:] if line.startswith(" *   ") else "" for line in text[start:end].split("\n"))


class Snippets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compile(self, source, name, link=False):
        src = os.path.join(self.tmp.name, name + ".c")
        with open(src, "w") as f:
            f.write(source)
        out = os.path.join(self.tmp.name, name)
        cmd = [CC, "-std=c11", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include")] + WARN
        if link:
            lib = os.path.join(ROOT, "lib")
            cmd += [src, "-L" + lib, "-lhlr", "-Wl,-rpath," + lib, "-o", out]
        else:
            cmd += ["-c", src, "-o", out + ".o"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        self.assertEqual(p.returncode, 0, "%s does not compile:\n%s\n--- source ---\n%s" % (name, p.stdout, source))
        return out

    def test_c_blocks_of_the_docs_compile(self):
        count = 0
        for path in [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))) + \
                sorted(glob.glob(os.path.join(ROOT, "docs", "reference", "*.md"))):
            for line, context, code in blocks(path):
                name = "%s-%d" % (os.path.basename(path).replace(".", "-"), line)
                with self.subTest(block="%s:%d" % (os.path.relpath(path, ROOT), line)):
                    if context == "skip":
                        continue
                    if re.search(r"\bint main\s*\(", code):
                        exe = self.compile(code, name, link=True)
                        if path.endswith("README.md"):
                            self.run_program(exe, name)
                    else:
                        self.assertIsNotNone(context, "%s:%d: a fragment needs a `<!-- snippet: ... -->` comment "
                                             "above it" % (path, line))
                        self.compile(fragment_source(context, code), name)
                    count += 1
        self.assertGreaterEqual(count, 8)

    def run_program(self, exe, name):
        p = subprocess.run([exe], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=600)
        self.assertEqual(p.returncode, 0, "%s exited %d: %s" % (name, p.returncode, p.stderr))
        self.assertRegex(p.stdout, r"training accuracy \d+\.\d\d%")

    def test_the_header_overview_example_compiles(self):
        self.compile(fragment_source("hlr_dataset *train = NULL;", header_example()), "header-overview")

    def test_python_md_examples_run(self):
        failures, tried = doctest.testfile(os.path.join(ROOT, "docs", "python.md"), module_relative=False,
                                           optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        self.assertGreater(tried, 0)
        self.assertEqual(failures, 0)

    def test_the_demo_prints_the_readme_figure(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        m = re.search(r"`make demo` trains .*?`test accuracy: (\d+\.\d\d)%` \(seed 0([^)]*)\)", readme, re.S)
        self.assertIsNotNone(m, "README.md no longer says what accuracy `make demo` prints")
        # the figure, and those it gives "where" OpenBLAS picks another kernel
        figures = {m.group(1)} | set(re.findall(r"(\d+\.\d\d) % where", m.group(2)))
        data = os.environ.get("HLR_DATA_DIR", os.path.join(ROOT, "data", "mnist"))
        p = subprocess.run([os.path.join(ROOT, "bin", "hlr-mnist"), "train", "--model", "mlp", "--data", data],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = re.findall(r"^test accuracy: (\d+\.\d\d)%$", p.stdout, re.M)
        self.assertEqual(len(got), 1)
        self.assertIn(got[0], figures, "the demo's training printed %s%%, README.md says %s" % (got[0], figures))


if __name__ == "__main__":
    unittest.main()

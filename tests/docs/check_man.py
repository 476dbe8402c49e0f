"""The man pages: docs/man/NAME.scd (scdoc source), built by `make man` into build/man/NAME.

For every page: the built page is there and not older than its source, renders with
`man --warnings -l` (and groff -ww) without a single warning, and shows its NAME line.  For every
program's page: the long options in the OPTIONS section are exactly those the program's --help
prints, every command the usage names (train, eval, ...) is in the SYNOPSIS and the other way
round, and the EXAMPLES use no option the program does not know.  Every program the Makefile
builds for users has a page, every page lists libhlr(3) and the other installed programs (the
Makefile's EXAMPLES) under SEE ALSO, and the example program of libhlr(3) compiles against
include/.  Needs man-db and groff; no MNIST.

    make man all bin/hlr-bench && HLR_BIN=bin HLR_MAN_DIR=build/man python3 tests/docs/check_man.py
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("HLR_BIN") or os.path.join(ROOT, "bin"))
MAN_DIR = os.path.abspath(os.environ.get("HLR_MAN_DIR") or os.path.join(ROOT, "build", "man"))
SRC_DIR = os.path.join(ROOT, "docs", "man")
CC = os.environ.get("CC", "cc")
# man and groff read the pages as UTF-8 (hlr-langid's examples have words such as straße), 80 columns.
ENV = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8", MANWIDTH="80")

# Programs the Makefile puts in bin/ that are not commands for users, so have no page.
NOT_COMMANDS = {"hlr-tests": "the Check suite's runner", "hlr-classify-cpp": "the C++ example (examples/cpp)"}
# Programs whose --help is not an option: the usage goes to stderr with exit status 2.
HELP_ON_STDERR = {"hlr-bench"}

LONG_OPTION = re.compile(r"(?<![\w-])--[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def sources():
    return sorted(glob.glob(os.path.join(SRC_DIR, "*.scd")))


def page_name(src):
    return os.path.basename(src)[:-len(".scd")]


def sections(src):
    """{SECTION: text} of an scd file; a `## subsection` stays inside its section."""
    out, current, literal = {}, None, False
    with open(src, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if line.strip() == "```":
                literal = not literal
            m = None if literal else re.match(r"^# (.+)$", line)
            if m:
                current = m.group(1).strip()
                out[current] = []
            elif current:
                out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def plain(text):
    """scd text without its markup (bold, underline, escapes), whitespace collapsed."""
    return " ".join(re.sub(r"[*_\\]", "", text).split())


def literal_lines(text):
    """The lines of the ``` blocks of text, continuation lines (ending in \\) joined."""
    out, literal, pending = [], False, ""
    for line in text.split("\n"):
        if line.strip() == "```":
            literal = not literal
            continue
        if literal:
            line = line.strip().replace("\\\\", "\\")
            if line.endswith("\\"):
                pending += line[:-1] + " "
            else:
                out.append(pending + line)
                pending = ""
    return out


def long_options(text):
    return set(LONG_OPTION.findall(text))


def makefile_programs():
    """Every bin/hlr-NAME the Makefile names (EXAMPLES, hlr-bench's rule, ...)."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        return set(re.findall(r"\$\(BINOUT\)/(hlr-[a-z0-9][a-z0-9-]*)", f.read()))


def installed_programs():
    """The programs `make install` installs with their pages: the Makefile's EXAMPLES."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"(?m)^EXAMPLES\s*:?=(.*)$", f.read())
    return set(re.findall(r"\$\(BINOUT\)/(hlr-[a-z0-9][a-z0-9-]*)", m.group(1))) if m else None


def bin_programs():
    return {os.path.basename(p) for p in glob.glob(os.path.join(BIN, "hlr-*")) if os.access(p, os.X_OK)}


def commands():
    """The programs that need a page: those in bin/ and those the Makefile builds, less NOT_COMMANDS."""
    return sorted((makefile_programs() | bin_programs()) - set(NOT_COMMANDS))


def run_help(program):
    """(exit status, the usage text, stderr) of `program --help`."""
    p = subprocess.run([os.path.join(BIN, program), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    return p.returncode, p.stdout if p.returncode == 0 else p.stderr, p.stderr


def subcommands(program, usage):
    """The commands the usage names: `hlr-mnist train ...`, `       hlr-mnist eval FILE ...`."""
    return set(re.findall(r"(?m)^(?:usage:)?\s*%s\s+([a-z][a-z-]*)\b" % re.escape(program), usage))


def normalise_rendered(text):
    """Rendered text with hyphenation undone and whitespace collapsed, for comparing with the source."""
    text = re.sub("[\u2010\u00ad]\n\\s*", "", text)  # a word hyphenated at the end of a line
    text = re.sub("(?<=\\w)-\n\\s*", "-", text)  # a line broken after a real hyphen in a word
    return " ".join(text.replace("\u2010", "-").replace("\u2212", "-").split())


class Pages(unittest.TestCase):
    def test_there_are_pages(self):
        names = [page_name(s) for s in sources()]
        self.assertIn("libhlr.3", names, "docs/man/libhlr.3.scd is missing")
        self.assertGreaterEqual(len(names), 2)

    def built(self, src):
        page = os.path.join(MAN_DIR, page_name(src))
        self.assertTrue(os.path.exists(page), "%s is not built: run `make man` (HLR_MAN_DIR=%s)" % (page, MAN_DIR))
        if os.path.getmtime(page) < os.path.getmtime(src):
            self.fail("%s is older than %s: run `make man`" % (page, os.path.relpath(src, ROOT)))
        return page

    def test_every_page_renders_without_warnings(self):
        if not shutil.which("man"):
            self.skipTest("man (man-db) is not installed")
        for src in sources():
            with self.subTest(page=page_name(src)):
                page = self.built(src)
                p = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   universal_newlines=True, env=ENV, timeout=60)
                self.assertEqual(p.returncode, 0, "man -l %s exited %d: %s" % (page, p.returncode, p.stderr))
                if p.stderr:
                    self.fail("man --warnings -l %s warns:\n%s" % (page, p.stderr))
                self.assertTrue(p.stdout.strip(), "man -l %s shows nothing" % page)
                name, section = re.match(r"(.+)\.(\w+)$", page_name(src)).groups()
                self.assertIn("%s(%s)" % (name, section), p.stdout.split("\n", 1)[0], "the page's title line")
                name_line = plain(sections(src).get("NAME", ""))
                self.assertTrue(name_line.startswith(name + " - "), "%s: NAME must read `%s - what it is`, not %r"
                                % (os.path.relpath(src, ROOT), name, name_line))
                self.assertIn("NAME " + name_line, normalise_rendered(p.stdout),
                              "man -l %s does not show the NAME line %r" % (page, name_line))

    def test_every_page_passes_groff_ww(self):
        if not shutil.which("groff"):
            self.skipTest("groff is not installed")
        for src in sources():
            with self.subTest(page=page_name(src)):
                page = self.built(src)
                # -k: preconv, as man runs it, so that UTF-8 text is read as such
                p = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-ww", "-z", page], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, universal_newlines=True, env=ENV, timeout=60)
                if (p.returncode, p.stderr) != (0, ""):
                    self.fail("groff -ww on %s: exit %d, warnings:\n%s" % (page, p.returncode, p.stderr))

    def test_see_also_lists_the_library_and_every_installed_program(self):
        # Not a program left in the tree (hlr-bench): an installed page would point nowhere.
        pages = {page_name(s): s for s in sources()}
        installed = installed_programs()
        self.assertTrue(installed, "the Makefile's EXAMPLES (the installed programs) not found")
        programs = sorted(p for p in installed if p + ".1" in pages)
        for name, src in sorted(pages.items()):
            with self.subTest(page=name):
                see_also = plain(sections(src).get("SEE ALSO", ""))
                wanted = ["libhlr(3)"] + ["%s(1)" % p for p in programs]
                missing = [w for w in wanted if w != "%s(%s)" % tuple(name.rsplit(".", 1)) and w not in see_also]
                if missing:
                    self.fail("%s: SEE ALSO lacks %s" % (os.path.relpath(src, ROOT), ", ".join(missing)))


class Programs(unittest.TestCase):
    def test_every_program_has_a_page(self):
        pages = {page_name(s) for s in sources()}
        progs = commands()
        self.assertTrue(progs, "no program found in %s or the Makefile" % BIN)
        missing = [p for p in progs if p + ".1" not in pages]
        if missing:
            self.fail("programs without a man page (write docs/man/NAME.1.scd, or add them to NOT_COMMANDS in "
                      "tests/docs/check_man.py if they are not for users): %s" % ", ".join(missing))
        stale = sorted(n[:-2] for n in pages if n.endswith(".1") and n[:-2] not in progs)
        if stale:
            self.fail("man pages of programs that neither bin/ nor the Makefile has: %s" % ", ".join(stale))

    def program_pages(self):
        for src in sources():
            name = page_name(src)
            if name.endswith(".1"):
                program = name[:-2]
                self.assertTrue(os.access(os.path.join(BIN, program), os.X_OK),
                                "%s/%s is not built: run `make all bin/hlr-bench` (HLR_BIN=%s)" % (BIN, program, BIN))
                yield program, src

    def usage(self, program):
        rc, usage, err = run_help(program)
        if program in HELP_ON_STDERR:
            self.assertIn(rc, (0, 2), "%s --help exited %d: %s" % (program, rc, err))
        else:
            self.assertEqual((rc, err), (0, ""), "%s --help: exit %d, stderr %r" % (program, rc, err))
        self.assertIn("usage:", usage, "%s --help prints no usage" % program)
        return rc, usage

    def test_options_match_help(self):
        for program, src in self.program_pages():
            with self.subTest(program=program):
                rc, usage = self.usage(program)
                options = sections(src).get("OPTIONS")
                self.assertIsNotNone(options, "%s has no OPTIONS section" % os.path.relpath(src, ROOT))
                in_help, in_page = long_options(usage) - {"--help"}, long_options(options) - {"--help"}
                if "--help" in long_options(options):
                    self.assertEqual(rc, 0, "the page documents --help, but %s --help exits %d" % (program, rc))
                if in_page != in_help:
                    self.fail("%s: the long options of --help and of the page's OPTIONS differ:\n"
                              "  in --help, not in %s: %s\n  in the page, not in --help: %s"
                              % (program, os.path.relpath(src, ROOT), " ".join(sorted(in_help - in_page)) or "-",
                                 " ".join(sorted(in_page - in_help)) or "-"))

    def test_synopsis_names_every_command(self):
        for program, src in self.program_pages():
            with self.subTest(program=program):
                _, usage = self.usage(program)
                synopsis = sections(src).get("SYNOPSIS")
                self.assertIsNotNone(synopsis, "%s has no SYNOPSIS section" % os.path.relpath(src, ROOT))
                in_help = subcommands(program, usage)
                in_page = set(re.findall(r"(?m)^%s\s+([a-z][a-z-]*)\b" % re.escape(program),
                                         "\n".join(plain(p) for p in synopsis.split("\n\n"))))
                if in_page != in_help:
                    self.fail("%s: the commands of --help's usage and of the page's SYNOPSIS differ:\n"
                              "  in --help, not in the SYNOPSIS: %s\n  in the SYNOPSIS, not in --help: %s"
                              % (program, " ".join(sorted(in_help - in_page)) or "-",
                                 " ".join(sorted(in_page - in_help)) or "-"))

    def test_examples_use_known_options(self):
        known = {}
        for program, src in self.program_pages():
            known[program] = long_options(self.usage(program)[1]) | {"--help"}
        for src in sources():
            with self.subTest(page=page_name(src)):
                for line in literal_lines(sections(src).get("EXAMPLES", "")):
                    words = line.split()
                    while words and re.match(r"^[A-Z_]+=", words[0]):  # HLR_NUM_THREADS=1 hlr-bench ...
                        words.pop(0)
                    if not words or words[0] not in known:
                        continue
                    unknown = long_options(" ".join(words)) - known[words[0]]
                    if unknown:
                        self.fail("%s EXAMPLES: %r uses %s, which %s --help does not list"
                                  % (os.path.relpath(src, ROOT), line, " ".join(sorted(unknown)), words[0]))


class LibraryPage(unittest.TestCase):
    def test_the_example_program_compiles(self):
        if not shutil.which(CC):
            self.skipTest("no C compiler (%s)" % CC)
        src = os.path.join(SRC_DIR, "libhlr.3.scd")
        blocks, block, literal = [], [], False
        with open(src, encoding="utf-8") as f:
            for line in f.read().split("\n"):
                if line.strip() == "```":
                    if literal:
                        blocks.append("\n".join(block))
                    literal, block = not literal, []
                elif literal:
                    block.append(line.replace("\\\\", "\\"))  # scdoc reads \\ as one backslash
        programs = [b for b in blocks if re.search(r"\bint main\s*\(", b)]
        self.assertEqual(len(programs), 1, "libhlr.3.scd should hold one complete example program")
        with tempfile.TemporaryDirectory() as tmp:
            c = os.path.join(tmp, "example.c")
            with open(c, "w") as f:
                f.write(programs[0] + "\n")
            p = subprocess.run([CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                                "-I" + os.path.join(ROOT, "include"), c], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
            self.assertEqual(p.returncode, 0, "the example of libhlr.3.scd does not compile:\n%s\n--- source ---\n%s"
                             % (p.stdout, programs[0]))


if __name__ == "__main__":
    unittest.main()

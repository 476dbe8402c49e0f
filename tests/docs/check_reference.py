"""Every public function's comment block has the paragraphs the header promises (STYLE.md: what it
does, Returns, Errors, Ownership, Thread-safety), beyond what Doxygen itself checks (a @param for
each parameter, a @return for each non-void function, every macro, type and member documented):

- a block of its own, directly above the declaration (`/** ... */`);
- @threadsafety, always;
- @errors when it returns an hlr_status and takes arguments (it can fail);
- @ownership when it returns a pointer or takes one besides its first argument (the handle it
  works on: a function that takes nothing else has nothing to say about ownership).

Run by `make docs-check` (part of `make test`) after Doxygen:

    python3 tests/docs/check_reference.py [include/hlr/hlr.h]
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def functions(text):
    """(name, declaration, doc block or None, line) of each HLR_API function."""
    out = []
    for m in re.finditer(r"^HLR_API\s[^;]*?(\w+)\s*\(([^;]*?)\)\s*;", text, re.M | re.S):
        before = text[:m.start()].rstrip()
        doc = None
        if before.endswith("*/"):
            start = before.rfind("/*")
            if before[start:start + 3] == "/**":
                doc = before[start:]
        out.append((m.group(1), m.group(0), doc, text.count("\n", 0, m.start()) + 1))
    return out


def problems(path):
    with open(path) as f:
        text = f.read()
    found = functions(text)
    bad = []
    for name, decl, doc, line in found:
        where = "%s:%d: %s" % (os.path.relpath(path, ROOT), line, name)
        if doc is None:
            bad.append(where + ": no /** */ block of its own directly above it")
            continue
        if "@threadsafety" not in doc:
            bad.append(where + ": no @threadsafety")
        head, _, params = decl.partition("(")
        params = [a.strip() for a in params.rsplit(")", 1)[0].split(",")]
        if head.startswith("HLR_API hlr_status") and params != ["void"] and "@errors" not in doc:
            bad.append(where + ": returns hlr_status but has no @errors")
        if ("*" in head or any("*" in a or "[" in a for a in params[1:])) and "@ownership" not in doc:
            bad.append(where + ": returns a pointer or takes one besides the handle, but has no @ownership")
    return found, bad


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "include", "hlr", "hlr.h")
    found, bad = problems(path)
    if len(found) < 100:
        print("check_reference: only %d HLR_API functions found in %s: is the parser broken?" % (len(found), path),
              file=sys.stderr)
        return 1
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print("check_reference: %d of %d functions lack a paragraph STYLE.md asks for" % (len(bad), len(found)),
              file=sys.stderr)
        return 1
    print("reference: %d functions, each with Thread-safety, and Errors and Ownership where they apply" % len(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())

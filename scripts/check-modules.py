#!/usr/bin/env python3
"""check-modules.py -- no two of the library's source files depend on each other.

Run from the repository root.  A file depends on another when its object file uses a symbol the other
defines (read with nm, so a call through a header's inline function or a
macro is not a dependency, and a call is one whether or not a header
declares it).  A cycle -- a.c calls b.c, which calls a.c back, directly or
through others -- fails the check with the symbols that make it.

    scripts/check-modules.py BUILD_DIR [DOC]    check; with DOC (docs/design.md),
                                                also that its list is this graph
    scripts/check-modules.py --graph BUILD_DIR  print each file's dependencies
    scripts/check-modules.py --write BUILD_DIR DOC  put them into DOC's list
"""
import collections
import os
import subprocess
import sys


def symbols(obj):
    """(defined global symbols, undefined symbols) of one object file."""
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "TDBRCVi":  # i: a target_clones function (GNU ifunc)
            defined.add(fields[2])
        elif len(fields) == 2 and fields[0] == "U":
            used.add(fields[1])
    return defined, used


def load(build):
    root = os.path.join(build, "src")
    objects = {}
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            name = os.path.relpath(path, root)[:-2]
            if n.endswith(".o") and os.path.exists(os.path.join("src", name + ".c")):  # not a stale object
                objects[name] = symbols(path)
    owner = {s: name for name, (defined, _) in objects.items() for s in defined}
    deps = {name: collections.defaultdict(set) for name in objects}
    for name, (_, used) in objects.items():
        for s in used:
            if s in owner and owner[s] != name:
                deps[name][owner[s]].add(s)
    return deps


def cycles(deps):
    """The strongly connected components with more than one file (Tarjan, iterative)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = 0
    for start in sorted(deps):
        if start in index:
            continue
        work = [(start, iter(sorted(deps[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(deps[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


MARK = "<!-- scripts/check-modules.py --graph build -->"


def documented(doc):
    """The lines of the fenced block after MARK in doc, or None."""
    lines = open(doc, encoding="utf-8").read().splitlines()
    if MARK not in lines:
        return None
    i = lines.index(MARK) + 1
    if i >= len(lines) or not lines[i].startswith("```"):
        return None
    end = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("```")), None)
    return None if end is None else lines[i + 1:end]


def render(deps):
    return [f"{name}: {' '.join(sorted(deps[name])) or '-'}" for name in sorted(deps)]


def main(argv):
    graph, write = "--graph" in argv, "--write" in argv
    args = [a for a in argv if a not in ("--graph", "--write")]
    if not 1 <= len(args) <= 2 or (graph and len(args) != 1) or (write and len(args) != 2):
        print("usage: check-modules.py BUILD_DIR [DOC] | --graph BUILD_DIR | --write BUILD_DIR DOC", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.join(args[0], "src")):
        print(f"check-modules: {args[0]}/src does not exist: build the library first", file=sys.stderr)
        return 2
    deps = load(args[0])
    if graph:
        print("\n".join(render(deps)))
        return 0
    bad = cycles(deps)
    for comp in bad:
        print(f"check-modules: these files depend on each other: {', '.join(comp)}", file=sys.stderr)
        for a in comp:
            for b in sorted(deps[a]):
                if b in comp:
                    print(f"    {a} uses {', '.join(sorted(deps[a][b]))} from {b}", file=sys.stderr)
    if write:
        text = open(args[1], encoding="utf-8").read()
        if documented(args[1]) is None:
            print(f"check-modules: {args[1]} has no fenced block after '{MARK}'", file=sys.stderr)
            return 1
        start = text.index(MARK + "\n") + len(MARK) + 1
        start = text.index("\n", start) + 1
        end = text.index("```", start)
        with open(args[1], "w", encoding="utf-8") as out:
            out.write(text[:start] + "\n".join(render(deps)) + "\n" + text[end:])
    if len(args) == 2:
        doc = documented(args[1])
        if doc is None:
            print(f"check-modules: {args[1]} has no fenced block after '{MARK}'", file=sys.stderr)
            return 1
        if doc != render(deps):
            print(f"check-modules: {args[1]}'s list of dependencies is not the code's; replace its block with "
                  f"the output of scripts/check-modules.py --graph {args[0]} (--write {args[0]} {args[1]} does it)", file=sys.stderr)
            return 1
    if bad:
        return 1
    print(f"modules: passed ({len(deps)} files, no file depends on one that depends on it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

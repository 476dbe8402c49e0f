"""The package's declarations against include/hlr/hlr.h, and how the library is found.

The header is parsed here (prototypes marked HLR_API, enums, numeric
macros, structs, callback typedefs) and compared with hlr/_capi.py, so a
change on either side that the other does not follow fails this test.
"""

import ctypes
import os
import re
import subprocess
import sys
import tempfile
import unittest

import helpers
from helpers import hlr
from hlr import _capi

# ---------------------------------------------------------------------------
# A small parser for the header's C.


def _read_header():
    with open(helpers.HEADER) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return text


def _norm(t):
    t = re.sub(r"\s+", " ", t).strip()
    t = re.sub(r"\s*\*\s*", " *", t)
    t = t.replace("* *", "**")
    return t.strip()


def header_defines(text):
    out = {}
    for name, value in re.findall(r"^\s*#\s*define\s+(HLR_\w+)\s+(-?\d+)\s*$", text, flags=re.M):
        out[name] = int(value)
    return out


def _code(text):
    """The header without preprocessor lines."""
    return "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))


def header_enums(text):
    out = {}
    for body, name in re.findall(r"typedef\s+enum\s+\w*\s*\{(.*?)\}\s*(\w+)\s*;", _code(text), flags=re.S):
        values, nxt = {}, 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" in item:
                k, v = (s.strip() for s in item.split("=", 1))
                nxt = int(v, 0)
            else:
                k = item
            values[k] = nxt
            nxt += 1
        out[name] = values
    return out


def _split_decl(decl):
    """'const int64_t *shape' -> ('const int64_t *', 'shape'); arrays keep their size: ('int64_t[8]', name)."""
    decl = decl.strip()
    m = re.match(r"^(.*?)(\w+)\s*(\[\s*(\w+)\s*\])?$", decl)
    if not m:
        raise ValueError("cannot parse declaration %r" % decl)
    ctype = _norm(m.group(1))
    if m.group(3):
        ctype += "[%s]" % m.group(4)
    return ctype, m.group(2)


def header_functions(text):
    out = {}
    pattern = r"HLR_API\s+([^;{}()]*?)\b(hlr_\w+)\s*\(([^;{}]*?)\)\s*;"
    for ret, name, params in re.findall(pattern, _code(text), flags=re.S):
        params = params.strip()
        args = [] if params in ("void", "") else [_split_decl(p)[0] for p in params.split(",")]
        args = [re.sub(r"\[\w*\]$", " *", a).replace("  ", " ") for a in args]  # array parameters are pointers
        out[name] = (_norm(ret), args)
    return out


def header_structs(text):
    out = {}
    for body, name in re.findall(r"typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", _code(text), flags=re.S):
        fields = []
        for stmt in body.split(";"):
            stmt = stmt.strip()
            if not stmt:
                continue
            fp = re.match(r"^(.*?)\(\s*\*\s*(\w+)\s*\)\s*\((.*)\)$", stmt, flags=re.S)
            if fp:  # a function pointer member: "fn:" return type and argument types
                args = [_split_decl(a)[0] for a in fp.group(3).split(",")]
                fields.append((fp.group(2), "fn:" + _norm(fp.group(1)) + "|" + "|".join(args)))
                continue
            first, *more = [s.strip() for s in stmt.split(",")]
            ctype, fname = _split_decl(first)
            fields.append((fname, ctype))
            base = re.sub(r"\[\w+\]$", "", ctype).rstrip(" *")
            for extra in more:  # "int a, b;" declares b with a's base type
                t2, n2 = _split_decl(base + " " + extra)
                fields.append((n2, t2))
        out[name] = fields
    return out


def header_callbacks(text):
    out = {}
    for ret, name, params in re.findall(r"typedef\s+([\w\s\*]+?)\s*\(\s*\*\s*(\w+)\s*\)\s*\(([^)]*)\)\s*;", _code(text)):
        out[name] = (_norm(ret), [_split_decl(p)[0] for p in params.split(",")])
    return out


def header_handles(text):
    return set(re.findall(r"typedef\s+struct\s+(\w+)\s+\1\s*;", _code(text)))


# ---------------------------------------------------------------------------
# C types -> the ctypes declarations that are acceptable for them.

_SCALARS = {
    "int": ctypes.c_int, "int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64, "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32, "float": ctypes.c_float, "double": ctypes.c_double, "size_t": ctypes.c_size_t,
    "char": ctypes.c_char,
}


def acceptable(ctype, enums, handles, structs, callbacks):
    """The set of ctypes types that correctly declare C type `ctype`."""
    if ctype.startswith("fn:"):  # a function pointer: the CFUNCTYPEs of _capi whose signature fits
        ret, *args = ctype[3:].split("|")
        return {f for f in vars(_capi).values()
                if isinstance(f, type) and issubclass(f, ctypes._CFuncPtr) and f is not ctypes._CFuncPtr
                and f._restype_ in acceptable(ret, enums, handles, structs, callbacks)
                and len(f._argtypes_) == len(args)
                and all(a in acceptable(c, enums, handles, structs, callbacks) for a, c in zip(f._argtypes_, args))}
    t = ctype.replace("const ", "").replace("struct ", "").strip()
    m = re.match(r"^(.*)\[(\w+)\]$", t)
    if m:  # an array field
        n = int(m.group(2)) if m.group(2).isdigit() else _capi.DEFINES[m.group(2)]
        return {elem * n for elem in acceptable(m.group(1).strip(), enums, handles, structs, callbacks)}
    if t == "void":
        return {None}
    if t in enums:
        return {ctypes.c_int}
    if t in _SCALARS:
        return {_SCALARS[t]}
    if t in callbacks:
        return {{"hlr_epoch_fn": _capi.EPOCH_FN, "hlr_batch_fn": _capi.BATCH_FN, "hlr_log_fn": _capi.LOG_FN}[t]}
    if t in structs:  # a struct field held by value
        return {_capi.STRUCTS[t]}
    if t == "char **":
        return {ctypes.POINTER(ctypes.c_char_p)}
    if t.endswith("**"):
        return {ctypes.POINTER(ctypes.c_void_p)}
    if t.endswith("*"):
        base = t[:-1].strip()
        if base == "char":
            return {ctypes.c_char_p, ctypes.POINTER(ctypes.c_char)} if "const" in ctype else {
                ctypes.POINTER(ctypes.c_char), ctypes.c_char_p}
        if base == "void" or base in handles:
            return {ctypes.c_void_p}
        if base in structs:
            return {ctypes.POINTER(_capi.STRUCTS[base])}
        if base in _SCALARS:
            return {ctypes.POINTER(_SCALARS[base]), ctypes.c_void_p}
    raise AssertionError("the test does not know C type %r; teach acceptable() about it" % ctype)


class TestDeclarationsMatchHeader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        text = _read_header()
        cls.text = text
        cls.functions = header_functions(text)
        cls.enums = header_enums(text)
        cls.structs = header_structs(text)
        cls.callbacks = header_callbacks(text)
        cls.handles = header_handles(text)
        cls.defines = header_defines(text)

    def accept(self, ctype):
        return acceptable(ctype, self.enums, self.handles, self.structs, self.callbacks)

    def test_parser_sees_the_header(self):
        self.assertGreater(len(self.functions), 70)
        self.assertIn("hlr_model_forward", self.functions)
        self.assertEqual(self.functions["hlr_tensor_new"], ("hlr_tensor *", ["hlr_dtype", "int", "const int64_t *"]))
        self.assertIn("hlr_status", self.enums)
        self.assertIn("hlr_fit_options", self.structs)

    def test_every_header_function_is_declared(self):
        missing = sorted(set(self.functions) - set(_capi.FUNCTIONS))
        self.assertEqual(missing, [], "hlr.h declares functions hlr/_capi.py FUNCTIONS lacks: %s" % missing)

    def test_every_declared_function_is_in_the_header(self):
        extra = sorted(set(_capi.FUNCTIONS) - set(self.functions))
        self.assertEqual(extra, [], "hlr/_capi.py declares functions hlr.h does not: %s" % extra)

    def test_signatures_match(self):
        wrong = []
        for name, (ret, args) in sorted(self.functions.items()):
            if name not in _capi.FUNCTIONS:
                continue
            restype, argtypes = _capi.FUNCTIONS[name]
            if restype not in self.accept(ret):
                wrong.append("%s returns %s, declared %s" % (name, ret, restype))
            if len(args) != len(argtypes):
                wrong.append("%s takes %d arguments, declared %d" % (name, len(args), len(argtypes)))
                continue
            for i, (a, t) in enumerate(zip(args, argtypes)):
                if t not in self.accept(a):
                    wrong.append("%s argument %d is %s, declared %s" % (name, i, a, t))
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_enums_match(self):
        self.assertEqual(_capi.ENUMS, self.enums)

    def test_defines_match(self):
        numeric = {k: v for k, v in self.defines.items() if not k.startswith("HLR_VERSION_")}
        self.assertEqual(_capi.DEFINES, numeric)

    def test_structs_match(self):
        self.assertEqual(sorted(_capi.STRUCTS), sorted(self.structs))
        for name, fields in self.structs.items():
            mine = _capi.STRUCTS[name]._fields_
            self.assertEqual([f for f, _ in mine], [f for f, _ in fields], "fields of %s" % name)
            for (fname, ctype), (_, t) in zip(fields, mine):
                self.assertIn(t, self.accept(ctype), "%s.%s is %s, declared %s" % (name, fname, ctype, t))

    def test_callback_types_match(self):
        mine = {"hlr_epoch_fn": _capi.EPOCH_FN, "hlr_batch_fn": _capi.BATCH_FN, "hlr_log_fn": _capi.LOG_FN}
        self.assertEqual(sorted(mine), sorted(self.callbacks))
        for name, (ret, args) in self.callbacks.items():
            fn = mine[name]
            self.assertIn(fn._restype_, self.accept(ret), name)
            self.assertEqual(len(fn._argtypes_), len(args), name)
            for a, t in zip(args, fn._argtypes_):
                self.assertIn(t, self.accept(a), "%s: %s" % (name, a))

    def test_major_version_matches_header_and_library(self):
        self.assertEqual(self.defines["HLR_VERSION_MAJOR"], _capi.ABI_MAJOR)
        self.assertEqual(_capi.lib.hlr_version_number() // 10000, _capi.ABI_MAJOR)
        self.assertEqual(hlr.__version__, hlr.version())
        self.assertRegex(hlr.version(), r"^\d+\.\d+\.\d+$")

    def test_status_constants_are_exported(self):
        for name, value in self.enums["hlr_status"].items():
            self.assertEqual(getattr(hlr, name[len("HLR_"):]), value)


class TestEveryCallIsDeclared(unittest.TestCase):
    def test_package_calls_only_declared_functions(self):
        pkg = os.path.dirname(hlr.__file__)
        called = set()
        for fname in os.listdir(pkg):
            if fname.endswith(".py"):
                with open(os.path.join(pkg, fname)) as f:
                    called |= set(re.findall(r"\blib\.(hlr_\w+)", f.read()))
        self.assertTrue(called)
        self.assertEqual(sorted(called - set(_capi.FUNCTIONS)), [])

    def test_loaded_functions_have_types(self):
        for name in _capi.FUNCTIONS:
            if not _capi.lib.has(name):
                continue
            fn = getattr(_capi.lib, name)
            self.assertIsNotNone(fn.argtypes, name)
            self.assertEqual(fn.restype, _capi.FUNCTIONS[name][0], name)

    def test_undeclared_name_is_refused(self):
        with self.assertRaises(AttributeError):
            _capi.lib.hlr_no_such_function


class TestLoading(unittest.TestCase):
    def run_child(self, code, **env):
        return subprocess.run([sys.executable, "-c", code], env=helpers.env_for_subprocess(**env),
                              capture_output=True, text=True, timeout=60)

    def test_hlr_library_is_used(self):
        r = self.run_child("import hlr; print(hlr.library_path)")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), hlr.library_path)

    def test_bad_hlr_library_is_an_import_error(self):
        r = self.run_child("import hlr", HLR_LIBRARY="/nonexistent/libhlr.so.0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("/nonexistent/libhlr.so.0", r.stderr)

    def test_build_tree_is_found_without_hlr_library(self):
        tree = os.path.join(helpers.ROOT, "lib", "libhlr.so.0")
        if not os.path.exists(tree):
            self.skipTest("no lib/libhlr.so.0 in the build tree (run make)")
        env = helpers.env_for_subprocess()
        del env["HLR_LIBRARY"]
        r = subprocess.run([sys.executable, "-c", "import hlr; print(hlr.library_path)"], env=env,
                           capture_output=True, text=True, timeout=60, cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.realpath(r.stdout.strip()), os.path.realpath(tree))

    def test_other_major_version_is_refused(self):
        cc = "cc"
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "fake.c")
            lib = os.path.join(tmp, "libfake.so")
            with open(src, "w") as f:
                f.write('int hlr_version_number(void) { return 10000; }\n'
                        'const char *hlr_version(void) { return "1.0.0"; }\n')
            try:
                subprocess.run([cc, "-shared", "-fPIC", "-o", lib, src], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError) as e:
                self.skipTest("no C compiler to build a fake library: %s" % e)
            r = self.run_child("import hlr", HLR_LIBRARY=lib)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("major 1", r.stderr)
        self.assertIn("needs major %d" % _capi.ABI_MAJOR, r.stderr)


if __name__ == "__main__":
    unittest.main()

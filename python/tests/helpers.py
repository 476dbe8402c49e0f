"""What the test modules share: the package on sys.path, paths, small models."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(PYTHON_DIR)
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

import hlr  # noqa: E402
from hlr import _arrays  # noqa: E402

np = _arrays.np  # None when the package runs without NumPy
HEADER = os.path.join(ROOT, "include", "hlr", "hlr.h")
DATA_DIR = os.environ.get("HLR_DATA_DIR") or os.path.join(ROOT, "data", "mnist")
if not os.path.isabs(DATA_DIR):
    DATA_DIR = os.path.join(ROOT, DATA_DIR)


def has(name):
    """True when the loaded library exports C function `name`."""
    return hlr._capi.lib.has(name)


def mlp(seed=0, hidden=8, inputs=4, classes=3):
    """A small built classifier: (inputs) -> hidden -> ReLU -> classes."""
    return hlr.Model([hlr.Dense(inputs, hidden), hlr.ReLU(), hlr.Dense(hidden, classes)], input_shape=(inputs,),
                     seed=seed)


def rss_kib():
    """This process's resident set size in KiB (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def env_for_subprocess(**extra):
    """The environment for a child Python running the package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["HLR_LIBRARY"] = hlr.library_path
    env.update(extra)
    return env

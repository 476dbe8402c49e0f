#!/usr/bin/env python3
"""ONNX's own backend conformance cases (Debian's libonnx-testdata, ONNX 1.12) for the operators
hlr_model_import_onnx reads.

Each case is one node with its inputs and expected outputs.  libhlr reads parameters as constants,
so the harness turns every input after the first into an initializer holding the case's own data
(ONNX's backend tests feed them at run time; the numbers are the same), imports the model, runs
the first input through it (its first dimension as the batch) and compares with ONNX's expected
output at the backend tests' tolerances (rtol 1e-3, atol 1e-5).

A case ends one of three ways: "pass"; "refused" (the import says which node, attribute or shape it
does not read: an operator of the list used in a way no libhlr layer computes, such as a pooling
with ceil_mode, a softmax over a leading axis, a weight given at run time as data); or "wrong" (it
imported, and the numbers differ): never allowed.  docs/onnx-conformance.md lists every case and
its end; the test fails when a run disagrees with it.

    python3 tests/onnx/conformance.py              check against docs/onnx-conformance.md
    python3 tests/onnx/conformance.py --write      rewrite docs/onnx-conformance.md from this run
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import hlr  # noqa: E402

CASES = "/usr/share/libonnx-testdata/data/node"
DOC = os.path.join(ROOT, "docs", "onnx-conformance.md")
# the operators the importer reads (and the cases that test them, by name)
PREFIXES = ("test_relu", "test_leakyrelu", "test_sigmoid", "test_tanh", "test_softmax_", "test_gemm_", "test_matmul_",
            "test_conv_", "test_basic_conv", "test_maxpool_", "test_averagepool_", "test_globalaveragepool",
            "test_batchnorm_", "test_flatten_", "test_reshape_", "test_dropout_default", "test_identity",
            "test_lstm_", "test_gru_", "test_layer_normalization_", "test_reduce_mean_", "test_reduce_max_")


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run_case(folder):
    """("pass" | "refused" | "wrong", detail)."""
    model = onnx.load(os.path.join(folder, "model.onnx"))
    data = os.path.join(folder, "test_data_set_0")
    try:
        inputs = [load_pb(os.path.join(data, "input_%d.pb" % i)) for i in range(len(model.graph.input))
                  if os.path.exists(os.path.join(data, "input_%d.pb" % i))]
        outputs = [load_pb(os.path.join(data, "output_%d.pb" % i)) for i in range(len(model.graph.output))]
    except (ValueError, onnx.onnx_cpp2py_export.checker.ValidationError if hasattr(onnx, "onnx_cpp2py_export")
            else ValueError):
        return "refused", "its data are not plain tensors (optional or sequence types)"
    if len(inputs) != len(model.graph.input) or not inputs or inputs[0].dtype != np.float32:
        return "refused", "its inputs are not one float tensor plus constants"
    g = model.graph
    for inp, value in zip(list(g.input[1:]), inputs[1:]):
        g.initializer.append(numpy_helper.from_array(value, inp.name))
        g.input.remove(inp)
    if len(g.output) != 1:  # e.g. LSTM's Y and Y_h: compare the first, drop the others
        keep = g.output[0]
        del g.output[:]
        g.output.append(keep)
    with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
        f.write(model.SerializeToString())
        f.flush()
        try:
            m = hlr.import_onnx(f.name)
        except hlr.HlrError as e:
            return "refused", str(e).split(": ", 2)[-1].replace(" [not supported]", "")
    x = inputs[0]
    if x.ndim < 2:
        return "refused", "a sample must have a batch dimension"
    y = m.forward(x)
    want = outputs[0]
    if y.shape != want.shape:
        return "wrong", "shape %s, expected %s" % (y.shape, want.shape)
    if not np.allclose(y, want, rtol=1e-3, atol=1e-5):
        return "wrong", "max |difference| %.3g" % float(np.max(np.abs(y - want)))
    return "pass", "max |difference| %.2g" % float(np.max(np.abs(y - want)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite docs/onnx-conformance.md")
    a = ap.parse_args()
    if not os.path.isdir(CASES):
        print("conformance: skipped, %s is missing (Debian's libonnx-testdata; scripts/install-deps.sh installs it)"
              % CASES)
        return 0
    names = sorted(n for n in os.listdir(CASES) if n.startswith(PREFIXES) and "expanded" not in n)
    results = []
    for n in names:
        end, detail = run_case(os.path.join(CASES, n))
        results.append((n, end, detail))
    counts = {e: sum(1 for _, x, _ in results if x == e) for e in ("pass", "refused", "wrong")}
    lines = ["# ONNX conformance of the importer", "",
             "ONNX's own backend test cases (Debian's libonnx-testdata, ONNX 1.12) for the operators",
             "`hlr_model_import_onnx` reads, run by `tests/onnx/conformance.py` (part of `make onnx-test`): each",
             "case's weights become constants, its first input the batch, and the output is compared with",
             "ONNX's at the backend tests' tolerances (rtol 1e-3, atol 1e-5). \"refused\" cases use an operator",
             "in a way no libhlr layer computes; the import says so, naming the node. No case may import and",
             "give other numbers.", "",
             "%d cases: %d pass, %d refused, %d wrong." % (len(results), counts["pass"], counts["refused"],
                                                           counts["wrong"]), "",
             "| case | end | detail |", "| --- | --- | --- |"]
    for n, end, detail in results:
        lines.append("| %s | %s | %s |" % (n, end, detail.replace("|", "/") if end != "pass" else ""))
    text = "\n".join(lines) + "\n"
    for n, end, detail in results:
        if end == "wrong":
            print("conformance: %s imported and gave other numbers: %s" % (n, detail), file=sys.stderr)
    print("conformance: %d cases, %d pass, %d refused, %d wrong" % (len(results), counts["pass"], counts["refused"],
                                                                    counts["wrong"]))
    if a.write:
        with open(DOC, "w") as f:
            f.write(text)
        return 1 if counts["wrong"] else 0
    with open(DOC) as f:
        recorded = f.read()
    if recorded != text:
        import difflib
        sys.stderr.writelines(difflib.unified_diff(recorded.splitlines(True), text.splitlines(True), DOC, "this run"))
        print("conformance: the cases end differently from docs/onnx-conformance.md (--write to record)",
              file=sys.stderr)
        return 1
    return 1 if counts["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())

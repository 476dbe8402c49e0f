#!/usr/bin/python3
"""Export the reference models of `make bench` (bench/torch_bench.py's PyTorch twins of
examples/models.c) to ONNX with torch.onnx.export, a dynamic batch dimension, opset 13, for
ONNX Runtime's side of `make bench-ort`.  Inference speed does not depend on the weights, so the
models keep PyTorch's initial ones.

    bench/export_onnx.py OUTDIR [--models mlp,cnn,cnn-bn,lstm,gru,hybrid]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import MODELS  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--models", default="mlp,cnn,cnn-bn,lstm,gru,hybrid")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    torch.manual_seed(0)
    for name in a.models.split(","):
        model = MODELS[name]().eval()
        x = torch.rand(2, 1, 28, 28)
        path = os.path.join(a.outdir, name + ".onnx")
        with torch.no_grad():
            torch.onnx.export(model, x, path, input_names=["x"], output_names=["y"], opset_version=13,
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        print("exported %s" % path)


if __name__ == "__main__":
    main()

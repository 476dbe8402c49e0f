#!/usr/bin/env python3
"""Load a saved libhlr model and classify MNIST test images.

    python3 python/examples/predict.py [MODEL] [--data data/mnist] [--count 10] [--show 1]

MODEL defaults to build/models/mnist_cnn.hlr, which mnist_cnn.py writes.
Prints each prediction with its probability, draws the first --show images
as text, and reports the accuracy over the whole test set.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hlr  # noqa: E402


def first(a, n):
    """The first n samples of an ndarray, or (without NumPy) of a memoryview, flattened."""
    if not isinstance(a, memoryview):
        return a[:n]
    per = len(a.cast("B")) // a.itemsize // a.shape[0]
    return a.cast("B").cast(a.format)[:n * per]


def draw(pixels, width=28):
    """A row-major image with values in [0, 1] as text."""
    shades = " .:-=+*#%@"
    flat = [float(v) for v in pixels]
    return "\n".join("".join(shades[min(int(v * len(shades)), len(shades) - 1)] for v in flat[r:r + width])
                     for r in range(0, len(flat), width))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default="build/models/mnist_cnn.hlr")
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", "data/mnist"))
    ap.add_argument("--count", type=int, default=10, help="images to list")
    ap.add_argument("--show", type=int, default=1, help="images to draw")
    args = ap.parse_args()

    try:
        model = hlr.load(args.model)
    except hlr.HlrError as e:
        sys.exit("predict.py: %s (train one with python/examples/mnist_cnn.py)" % e)
    names = model.metadata.class_names or [str(c) for c in range(model.output_shape[0])]
    _, (xt, yt) = hlr.load_mnist(args.data)

    probs = model.predict(first(xt, args.count))
    images = first(xt, args.show)
    per = 28 * 28
    for i, row in enumerate(probs.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        if i < args.show:
            print(draw(list(images[i * per:(i + 1) * per]) if isinstance(images, memoryview) else images[i].ravel()))
        print("image %d: %s (p = %.4f), label %s" % (i, names[best], row[best], names[int(yt[i])]))

    result = model.evaluate(xt, yt)
    print("test accuracy: %.2f%% (%d images)" % (100 * result["accuracy"], result["count"]))


if __name__ == "__main__":
    main()

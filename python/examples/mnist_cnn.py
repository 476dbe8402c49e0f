#!/usr/bin/env python3
"""Train a small CNN on MNIST with libhlr and save it.

    python3 python/examples/mnist_cnn.py [--epochs 2] [--limit N] [--data data/mnist]
                                         [--out build/models/mnist_cnn.hlr] [--seed 0]

The network, in PyTorch's terms:

    Conv2d(1, 32, 3, padding=1) - ReLU - MaxPool2d(2)      (32, 14, 14)
    Conv2d(32, 64, 3, padding=1) - ReLU - MaxPool2d(2)     (64, 7, 7)
    Flatten - Linear(3136, 128) - ReLU - Linear(128, 10)

trained with Adam (lr 1e-3, batch 64).  python/examples/predict.py loads the
saved file and classifies test images; so does the C++ example
(bin/hlr-classify-cpp).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hlr  # noqa: E402


def build_cnn(seed):
    return hlr.Model([
        hlr.Conv2d(1, 32, 3, padding=1), hlr.ReLU(), hlr.MaxPool2d(2),
        hlr.Conv2d(32, 64, 3, padding=1), hlr.ReLU(), hlr.MaxPool2d(2),
        hlr.Flatten(),
        hlr.Dense(64 * 7 * 7, 128), hlr.ReLU(),
        hlr.Dense(128, 10),
    ], input_shape=(1, 28, 28), seed=seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", "data/mnist"))
    ap.add_argument("--out", default="build/models/mnist_cnn.hlr")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    (x, y), (xt, yt) = hlr.load_mnist(args.data)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    model = build_cnn(args.seed)
    print(model.summary(), end="")

    def report(s):
        print("epoch %d/%d  loss %.4f  accuracy %.2f%%  validation %.2f%%  %.1f s (%.0f images/s)"
              % (s["epoch"], s["epochs"], s["train_loss"], 100 * s["train_accuracy"], 100 * s["val_accuracy"],
                 s["seconds"], s["samples_per_second"]), flush=True)

    opt = hlr.Adam(args.lr)
    t0 = time.time()
    model.fit(x, y, epochs=args.epochs, batch_size=args.batch, optimizer=opt, validation_split=0.05,
              callback=report)
    result = model.evaluate(xt, yt)
    print("trained in %.1f s; test accuracy: %.2f%%" % (time.time() - t0, 100 * result["accuracy"]))

    model.metadata.dataset = "mnist"
    model.metadata.class_names = [str(d) for d in range(10)]
    model.metadata["example"] = "python/examples/mnist_cnn.py"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    model.save(args.out, optimizer=opt)
    print("saved %s" % args.out)


if __name__ == "__main__":
    main()

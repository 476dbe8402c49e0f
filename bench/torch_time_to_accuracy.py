#!/usr/bin/python3
"""The PyTorch side of `make bench-accuracy`: `bin/hlr-mnist train --model cnn-bn
--target-accuracy P` in PyTorch, with the same model, data, recipe and output lines.

  /usr/bin/python3 bench/torch_time_to_accuracy.py [--epochs 10] [--target 99.0] [--threads 2]
        [--seed 0] [--data data/mnist] [--limit N] [--test-limit N]

The same as libhlr's side (examples/models.c, examples/mnist.c):
- the model: bench/torch_bench.py's cnn_bn (three conv-BN-ReLU-maxpool stages without conv bias,
  dropout 0.3, dense 1152->128 without bias, BN, ReLU, dropout 0.3, dense 10), PyTorch's default
  initialisation (libhlr's is the same: kaiming_uniform_(a=sqrt(5)) bounds, BN weight 1 and bias 0,
  eps 1e-5, momentum 0.1);
- pixels / 255 from the same gzipped idx files, no normalisation;
- Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay), batch 64 (the last one smaller),
  a new shuffle every epoch, cross-entropy;
- the learning rate decays as a cosine over all --epochs to 0, stepped once per epoch
  (CosineAnnealingLR(T_max=epochs)), as hlr_optimizer_set_schedule(COSINE, epochs, 0);
- each training image is shifted by (dy, dx) drawn uniformly from [-2, 2]^2, per image and per
  epoch, zero-filled: one crop of the zero-padded image per sample, gathered with one indexing
  operation per batch;
- after every epoch the test set is evaluated (eval mode, no autograd) and the line
  `epoch E: test accuracy X% (training time so far S s)` printed; training stops once X >= target.
  The training time is the sum of the epochs' times (shuffle, augmentation, forward, backward,
  optimizer step); evaluation is not in it.

Run it as bench/time_to_accuracy.py does, with PyTorch's best settings here (those of `make bench`):
torch.set_num_threads(--threads), OPENBLAS_NUM_THREADS=1 and glibc malloc settings that keep freed
memory in the process (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_).
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import cnn_bn  # noqa: E402  the same definition `make bench` times

SHIFT = 2  # example_model_recipe("cnn-bn").augment


def read_idx(path, offset):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def find(data, name):
    for p in (os.path.join(data, name + ".gz"), os.path.join(data, name)):
        if os.path.exists(p):
            return p
    sys.exit(f"torch_time_to_accuracy.py: no {name}[.gz] in {data}")


def load(data, prefix, limit):
    x = read_idx(find(data, f"{prefix}-images-idx3-ubyte"), 16).reshape(-1, 1, 28, 28)
    y = read_idx(find(data, f"{prefix}-labels-idx1-ubyte"), 8)
    if limit and 0 < limit < len(y):
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.astype(np.float32) / np.float32(255.0)), torch.from_numpy(y.astype(np.int64))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for b in range(0, len(y), batch):
            correct += (model(x[b:b + batch]).argmax(1) == y[b:b + batch]).sum().item()
    model.train()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10, help="the most epochs; the cosine spans them all")
    ap.add_argument("--target", type=float, default=99.0, help="stop at this test accuracy in %% (0: never)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", "data/mnist"))
    ap.add_argument("--limit", type=int, default=0, help="train on the first N training images only")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images only")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "t10k", a.test_limit)
    n = len(ytr)
    # Zero-padded once (data preparation, like libhlr's loading): a shift is then a crop.
    xpad = F.pad(xtr, (SHIFT, SHIFT, SHIFT, SHIFT))[:, 0].contiguous()  # (n, 32, 32)
    ar = torch.arange(28)

    model = cnn_bn()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs, eta_min=0.0)
    loss_fn = nn.CrossEntropyLoss()
    print(f"training cnn-bn (PyTorch {torch.__version__}) on {n} images: {a.epochs} epochs, batch {a.batch}, "
          f"adam lr {a.lr:g}, cosine, shifts up to {SHIFT}, seed {a.seed}, {torch.get_num_threads()} threads")
    sys.stdout.flush()

    model.train()
    train_seconds, acc = 0.0, None
    for epoch in range(1, a.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        # Crop offsets 0..2*SHIFT in the padded image: out[h][w] = in[h - dy][w - dx], dy = SHIFT - offset.
        oy = torch.randint(0, 2 * SHIFT + 1, (n,))
        ox = torch.randint(0, 2 * SHIFT + 1, (n,))
        loss_sum, correct = 0.0, 0
        for b in range(0, n, a.batch):
            idx = perm[b:b + a.batch]
            rows = (oy[b:b + a.batch, None] + ar)[:, :, None]  # (B, 28, 1)
            cols = (ox[b:b + a.batch, None] + ar)[:, None, :]  # (B, 1, 28)
            xb = xpad[idx[:, None, None], rows, cols].unsqueeze(1)  # (B, 1, 28, 28)
            yb = ytr[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        sched.step()
        secs = time.perf_counter() - t0
        train_seconds += secs
        print(f"epoch {epoch}/{a.epochs}  loss {loss_sum / n:.4f}  accuracy {100.0 * correct / n:.2f}%  "
              f"lr {lr:.2g}  {n / secs:.0f} img/s  {secs:.2f} s")
        acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}: test accuracy {100.0 * acc:.2f}% (training time so far {train_seconds:.2f} s)")
        sys.stdout.flush()
        if a.target > 0 and 100.0 * acc >= a.target - 1e-9:
            print(f"reached {a.target:.2f}% test accuracy after {epoch} epochs, {train_seconds:.2f} s of training")
            break
    print(f"test accuracy: {100.0 * acc:.2f}%")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""PyTorch's twin of `bin/hlr-read train`: the same CRNN (examples/models.c, example_crnn), the same
initialisation scheme (torch's defaults, which libhlr's layers follow), the same recipe (Adam, cosine
decay per batch to 0, CTC with blank 0, torch's mean reduction and zero_infinity) and the very same
strings: `hlr-read generate` writes the training stream, the validation and the test strings that
`hlr-read train` would see with these options, and this script trains on them as they come.

  bench/torch_crnn.py [--hlr-read bin/hlr-read] [--epochs 10] [--seed 0] [--threads 2] [--batchnorm 0|1]
                      [--shear S] [--channels 16] [--hidden 96] [--layers 1] [--dropout P] [--lr 0.002] [--train-strings 60000]
                      [--test-strings 10000] [--data DIR] [--json FILE]

Prints a line per epoch (loss, validation CER, img/s) and ends with `test CER: x%` and
`test string accuracy: y%` (best path), as hlr-read does; --json writes them too.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

# PyTorch's threads only (torch.set_num_threads): an OpenBLAS thread pool of its own spins in sched_yield and,
# on a busy machine, starves the process (bench/run.py sets the same for its PyTorch side).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

H, W, CLASSES, MAX_DIGITS = 32, 224, 11, 16
RECORD = MAX_DIGITS * 4 + H * W * 4


class CRNN(nn.Module):
    def __init__(self, channels, hidden, convs, bn, dropout=0.0, num_layers=1, pool_w=2):
        super().__init__()
        c = channels

        def block(i, o):
            if bn:
                return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o, eps=1e-5, momentum=0.1), nn.ReLU()]
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]

        layers = block(1, c) + [nn.MaxPool2d(2)] + block(c, 2 * c) + [nn.MaxPool2d((2, pool_w))]
        for _ in range(convs - 2):                                         # --convs 3 or 4: more at H/4
            layers += block(2 * c, 2 * c)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)                                 # on the LSTM's inputs, as --dropout
        self.lstm = nn.LSTM(2 * c * (H // 4), hidden, num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)   # and between its layers
        self.fc = nn.Linear(2 * hidden, CLASSES)

    def forward(self, x):
        f = self.features(x)                                               # (N, C, H/4, W/4)
        seq = f.permute(0, 3, 1, 2).reshape(x.shape[0], f.shape[3], -1)   # columns, channel-major
        h, _ = self.lstm(self.dropout(seq))
        return self.fc(h)                                                  # (N, T, classes)


def records(args, part):
    """Yield (labels int32 (16,), canvas float32 (32, 224)) from `hlr-read generate`."""
    cmd = [args.hlr_read, "generate", "--part", part, "--seed", str(args.seed), "--epochs", str(args.epochs),
           "--train-strings", str(args.train_strings), "--test-strings", str(args.test_strings),
           "--batch", str(args.batch), "--shear", str(args.shear), "--min-len", str(args.min_len),
           "--max-len", str(args.max_len)]
    if args.data:
        cmd += ["--data", args.data]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=1 << 20)
    finished = False
    try:
        while True:
            buf = p.stdout.read(RECORD)
            if not buf:
                finished = True
                break
            if len(buf) != RECORD:
                sys.exit("torch_crnn.py: a truncated record from hlr-read generate")
            yield (np.frombuffer(buf, np.int32, MAX_DIGITS),
                   np.frombuffer(buf, np.float32, H * W, MAX_DIGITS * 4).reshape(H, W))
    finally:
        p.stdout.close()
        if not finished:
            p.kill()
        if p.wait() != 0 and finished:
            sys.exit("torch_crnn.py: hlr-read generate failed")


def batches(it, n):
    xs, ys = [], []
    for lab, img in it:
        xs.append(img)
        ys.append(lab)
        if len(xs) == n:
            yield np.stack(xs), np.stack(ys)
            xs, ys = [], []
    if xs:
        yield np.stack(xs), np.stack(ys)


def best_path(out):
    """Greedy decodings of (N, T, C) scores: argmax, repeats merged, blanks dropped."""
    k = out.argmax(-1).numpy()
    res = []
    for row in k:
        s, prev = [], -1
        for v in row:
            if v != 0 and v != prev:
                s.append(int(v))
            prev = v
        res.append(s)
    return res


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            up = row[j]
            row[j] = min(diag + (a[i - 1] != b[j - 1]), up + 1, row[j - 1] + 1)
            diag = up
    return row[len(b)]


def score(model, args, part):
    model.eval()
    edits = chars = right = strings = 0
    with torch.inference_mode():
        for x, y in batches(records(args, part), 256):
            got = best_path(model(torch.from_numpy(x).unsqueeze(1)))
            for g, lab in zip(got, y):
                ref = [int(v) for v in lab if v >= 0]
                e = edit_distance(ref, g)
                edits += e
                chars += len(ref)
                right += e == 0
                strings += 1
    model.train()
    return edits / max(chars, 1), right / max(strings, 1), strings


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--hlr-read", default=os.path.join(root, "bin", "hlr-read"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batchnorm", type=int, choices=(0, 1), default=1)
    ap.add_argument("--shear", type=float, default=0.0)
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--convs", type=int, default=4)
    ap.add_argument("--pool-width", type=int, default=2, choices=(1, 2))
    ap.add_argument("--dropout", type=float, default=0.4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-len", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=8)
    ap.add_argument("--train-strings", type=int, default=60000)
    ap.add_argument("--test-strings", type=int, default=10000)
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = CRNN(a.channels, a.hidden, a.convs, a.batchnorm, a.dropout, a.layers, a.pool_width)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    per_epoch = a.train_strings // a.batch
    total = per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
    params = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__} CRNN, {params} parameters, {a.threads} threads, seed {a.seed}: "
          f"{a.epochs} epochs of {per_epoch * a.batch} strings from {a.hlr_read} generate")
    sys.stdout.flush()
    stream = batches(records(a, "train"), a.batch)
    il = torch.full((a.batch,), W // (2 * a.pool_width), dtype=torch.long)  # steps: a column per 2 pool_w pixels
    for epoch in range(1, a.epochs + 1):
        t0, loss_sum = time.perf_counter(), 0.0
        for _ in range(per_epoch):
            x, y = next(stream)
            tl = torch.from_numpy((y >= 0).sum(1).astype(np.int64))
            tg = torch.from_numpy(np.where(y >= 0, y, 0).astype(np.int64))
            lp = model(torch.from_numpy(x).unsqueeze(1)).log_softmax(-1).transpose(0, 1)
            loss = torch.nn.functional.ctc_loss(lp, tg, il, tl, 0, "mean", True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        secs = time.perf_counter() - t0
        cer, acc, _ = score(model, a, "val")
        print(f"epoch {epoch}/{a.epochs}  loss {loss_sum / per_epoch:.4f}  validation CER {100 * cer:.2f}%  "
              f"string accuracy {100 * acc:.2f}%  {per_epoch * a.batch / secs:.0f} img/s  {secs:.1f} s")
        sys.stdout.flush()
    cer, acc, n = score(model, a, "test")
    print(f"test strings: {n}, best-path decoding")
    print(f"test CER: {100 * cer:.2f}%")
    print(f"test string accuracy: {100 * acc:.2f}%")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"lib": "pytorch", "seed": a.seed, "test_cer": cer, "test_string_accuracy": acc,
                       "threads": a.threads, "params": params}, f)


if __name__ == "__main__":
    sys.exit(main())

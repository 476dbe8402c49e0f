#!/usr/bin/python3
"""The PyTorch side of `make bench`: the same reference models, the same
batch sizes, the same timing method (median of timed windows after a
warm-up) as bin/hlr-bench.  Prints one JSON object.

Run it the way bench/run.py does, with PyTorch's best settings on this
machine: torch.set_num_threads(N), OPENBLAS_NUM_THREADS=1 and glibc malloc
settings that keep freed memory in the process.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn_bn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(1152, 128, bias=False),
                         nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))


class ImageRows(nn.Module):
    """Each image as the sequence of its 28 rows: one LSTM or GRU layer of 128, its last step, dense 10."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        out, _ = self.rnn(x.squeeze(1))
        return self.fc(out[:, -1])


class Hybrid(nn.Module):
    """The seed's model: two conv-ReLU-pool stages, the 7 rows of the 64x7x7 map as 448 features, an LSTM of 128
    returning every step, single-head scaled dot-product self-attention (Q/K/V projections with bias, no output
    projection), the mean over the steps, dense 10."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.lstm = nn.LSTM(448, 128, batch_first=True)
        self.q, self.k, self.v = nn.Linear(128, 128), nn.Linear(128, 128), nn.Linear(128, 128)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        f = self.features(x)                                     # (N, 64, 7, 7)
        seq = f.permute(0, 2, 1, 3).reshape(x.shape[0], 7, 448)  # rows, channel-major
        h, _ = self.lstm(seq)
        q, k, v = self.q(h), self.k(h), self.v(h)
        w = torch.softmax(q @ k.transpose(1, 2) / 128 ** 0.5, dim=-1)
        return self.fc((w @ v).mean(dim=1))


class CRNN(nn.Module):
    """hlr-read's digit-string recogniser (examples/models.c, example_crnn with `hlr-read train`'s defaults): conv 24,
    BN, pool, conv 48, BN, pool, conv 48, BN, conv 48, BN (3x3, padding 1, no bias, ReLU), the 56 columns of the
    (48, 8, 56) map as steps of 384 features (channel-major), dropout 0.4, a two-layer bidirectional LSTM of 128
    (dropout 0.4 between the layers), dense 11 (the blank and ten digits) per step."""

    def __init__(self, channels=24, hidden=128, classes=11, layers=2, dropout=0.4):
        super().__init__()
        c = channels

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.features = nn.Sequential(*block(1, c), nn.MaxPool2d(2), *block(c, 2 * c), nn.MaxPool2d(2),
                                      *block(2 * c, 2 * c), *block(2 * c, 2 * c))
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(2 * c * 8, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        f = self.features(x)                                         # (N, C, H, W)
        seq = f.permute(0, 3, 1, 2).reshape(x.shape[0], f.shape[3], -1)  # columns, channel-major
        h, _ = self.lstm(self.dropout(seq))
        return self.fc(h)                                            # (N, W, classes)


MODELS = {"mlp": mlp, "cnn": cnn, "cnn-bn": cnn_bn, "lstm": lambda: ImageRows(nn.LSTM),
          "gru": lambda: ImageRows(nn.GRU), "hybrid": Hybrid, "crnn": CRNN}


def crnn_targets(n):
    """hlr-bench's: sequences of 1..8 labels in 1..10, the same for both sides."""
    lengths = [1 + i % 8 for i in range(n)]
    t = torch.full((n, 8), 0, dtype=torch.long)
    for i in range(n):
        for k in range(lengths[i]):
            t[i, k] = 1 + (i * 7 + k * 3) % 10
    return t, torch.tensor(lengths)


def bench_ctc(windows, secs):
    """torch.nn.functional.ctc_loss on log_softmax(logits) (what hlr_ctc_loss fuses), value and gradient, as
    hlr-bench --ctc: N 64, T 64, (C, S) in (11, 8), (40, 16), (80, 24)."""
    out = []
    N, T = 64, 64
    for C, S in ((11, 8), (40, 16), (80, 24)):
        x = torch.rand(N, T, C, requires_grad=True)
        il = torch.tensor([T - n % 8 for n in range(N)])
        tl = torch.tensor([S - n % 4 for n in range(N)])
        tg = torch.tensor([[1 + (n * 31 + s * 7) % (C - 1) for s in range(S)] for n in range(N)])

        def step():
            x.grad = None
            lp = x.log_softmax(-1).transpose(0, 1)
            torch.nn.functional.ctc_loss(lp, tg, il, tl, 0, "mean", False).backward()

        out.append({"C": C, "S": S, "N": N, "T": T, "calls_s": round(measure(step, 1, windows, secs), 1)})
    return out


def measure(step, batch, windows, secs):
    for _ in range(3):
        step()
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        steps = 0
        while True:
            step()
            steps += 1
            t = time.perf_counter() - t0
            if t >= secs:
                break
        rates.append(steps * batch / t)
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS))
    ap.add_argument("--ctc", action="store_true", help="time the CTC loss alone")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--windows", type=int, default=7)
    ap.add_argument("--window-seconds", type=float, default=0.4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.ctc:
        print(json.dumps({"lib": "pytorch", "ctc": bench_ctc(a.windows, a.window_seconds), "threads": a.threads,
                          "torch": torch.__version__}))
        return 0
    if not a.model:
        ap.error("--model NAME or --ctc")
    model = MODELS[a.model]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    crnn = a.model == "crnn"
    shape = (1, 32, 224) if crnn else (1, 28, 28)
    x = torch.rand(a.train_batch, *shape)
    y = torch.arange(a.train_batch) % 10
    if crnn:
        targets, target_lengths = crnn_targets(a.train_batch)

        def loss_fn(out, _y):  # noqa: F811 -- CTC on the per-step scores, every image all 56 steps
            lp = out.log_softmax(-1).transpose(0, 1)
            il = torch.full((out.shape[0],), out.shape[1], dtype=torch.long)
            return torch.nn.functional.ctc_loss(lp, targets, il, target_lengths, 0, "mean", True)

    def train_step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    model.train()
    train = measure(train_step, a.train_batch, a.windows, a.window_seconds)
    xi = torch.rand(a.infer_batch, *shape)
    model.eval()

    def infer_step():
        with torch.inference_mode():
            model(xi)

    infer = measure(infer_step, a.infer_batch, a.windows, a.window_seconds)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"lib": "pytorch", "model": a.model, "train_img_s": round(train, 1),
                      "infer_img_s": round(infer, 1), "peak_rss_mib": round(rss, 1), "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())

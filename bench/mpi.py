#!/usr/bin/env python3
"""Data-parallel training against one process, side by side (`make bench-mpi`).

For each model: `bin/hlr-mnist train` alone with --threads T*N and batch B*N, and
`mpirun -np N bin/hlr-mnist train --distributed` with --threads T and batch B per process (the
same global batch, the same images, the same number of cores), alternating the two sides,
each side's best of --rounds.  Prints training img/s (the epoch's, over all processes), their
ratio, the time and size of one gradient all-reduce (rank 0's mean), the test accuracy of each
side, and the CPU and the kernel each side ran (the same library).

    bench/mpi.py [--models cnn,lstm] [--np 2] [--threads 1] [--batch 32] [--limit 12000] [--rounds 2]
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH = re.compile(r"epoch (\d+)/\d+  loss \S+  accuracy \S+%  (?:val_\w+ \S+  )*lr \S+  (\d+) img/s")
REDUCE = re.compile(r"all-reduce \(rank 0\): (\d+) calls, ([\d.]+) ms and ([\d.]+) KiB each")
ACC = re.compile(r"(?m)^test accuracy: ([\d.]+)%$")


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1)
        flags = re.search(r"flags\s*:\s*(.*)", text).group(1).split()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
        return "%s (%s)" % (model, isa)
    except (OSError, AttributeError):
        return "unknown CPU"


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit("bench/mpi.py: %s failed (exit %d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()[-500:]))
    out = p.stdout.replace("\r", "\n")
    rate = [int(m.group(2)) for m in EPOCH.finditer(out)]
    red = REDUCE.search(out)
    acc = ACC.search(out)
    if not rate or not acc:
        sys.exit("bench/mpi.py: no epoch line or accuracy in the output of %s" % " ".join(cmd))
    return {"rate": max(rate), "acc": float(acc.group(1)),
            "reduce_ms": float(red.group(2)) if red else None, "reduce_kib": float(red.group(3)) if red else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="cnn,lstm")
    ap.add_argument("--np", type=int, default=2, help="processes")
    ap.add_argument("--threads", type=int, default=1, help="threads per process")
    ap.add_argument("--batch", type=int, default=32, help="batch per process")
    ap.add_argument("--limit", type=int, default=12000, help="training images")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", "data/mnist"))
    args = ap.parse_args()
    mnist = os.path.join(ROOT, "bin", "hlr-mnist")
    common = ["--epochs", str(args.epochs), "--limit", str(args.limit), "--test-limit", "2000", "--data", args.data]
    n, t, b = args.np, args.threads, args.batch
    print("CPU: %s; OPENBLAS_CORETYPE=%s; both sides run the same libhlr" % (
        cpu(), os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    print("one process: --threads %d --batch %d; mpirun -np %d: --threads %d --batch %d each (global batch %d)"
          % (n * t, n * b, n, t, b, n * b))
    print("%-8s %12s %12s %7s %14s %14s %9s %9s" % ("model", "alone img/s", "mpi img/s", "ratio", "all-reduce ms",
                                                   "KiB/reduce", "acc alone", "acc mpi"))
    for model in args.models.split(","):
        best = {}
        for _ in range(args.rounds):
            alone = run([mnist, "train", "--model", model, "--threads", str(n * t), "--batch", str(n * b)] + common)
            dist = run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(n), mnist, "train",
                        "--distributed", "--model", model, "--threads", str(t), "--batch", str(b)] + common)
            for side, r in (("alone", alone), ("mpi", dist)):
                if side not in best or r["rate"] > best[side]["rate"]:
                    best[side] = r
        a, d = best["alone"], best["mpi"]
        print("%-8s %12d %12d %6.2fx %14.3f %14.1f %8.2f%% %8.2f%%" % (
            model, a["rate"], d["rate"], d["rate"] / a["rate"], d["reduce_ms"] or 0, d["reduce_kib"] or 0,
            a["acc"], d["acc"]))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""`make bench-accuracy`: time to a test accuracy (99 %) on MNIST with the cnn-bn model, libhlr
(`hlr-mnist train --model cnn-bn --target-accuracy P`) first, then PyTorch
(bench/torch_time_to_accuracy.py: the same model, recipe and data), in the same run and under the
same OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the caller's; then a table, written also as JSON.

  /usr/bin/python3 bench/time_to_accuracy.py [--hlr-mnist bin/hlr-mnist] [--epochs 10] [--target 99.0]
        [--threads 2] [--seed 0] [--data data/mnist] [--json build/time_to_accuracy.json]
        [--limit N] [--test-limit N] [--only libhlr|pytorch]

Both sides evaluate the test set after every epoch and stop at the target; --epochs caps the run
and is the length of the cosine schedule on both sides.  The training time is the sum of the
epochs' own times (evaluation excluded).  The load average before each run is recorded, and each
process's wall and CPU seconds (loading and tests included): on a busy machine the times are
disturbed, PyTorch's two threads most of all (they wait for each other at every operation).
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# PyTorch's best settings here, as `make bench` runs it (bench/run.py).
TORCH_ENV = {"OPENBLAS_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "33554432",
             "MALLOC_TRIM_THRESHOLD_": "17179869184", "MALLOC_TOP_PAD_": "268435456"}

EPOCH_RE = re.compile(r"^epoch (\d+): test accuracy ([\d.]+)% \(training time so far ([\d.]+) s\)")
FINAL_RE = re.compile(r"^test accuracy: ([\d.]+)%")


def run(side, cmd, env, target):
    """Run one side, echoing its output; return what its lines say."""
    load = os.getloadavg()
    print(f"== {side}: {' '.join(cmd)}\n   load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
    epochs, final = [], None
    for line in p.stdout:
        if re.match(r"^ +\d", line) or line.startswith("confusion matrix"):
            continue  # libhlr's confusion matrix
        sys.stdout.write("   " + line)
        sys.stdout.flush()
        m = EPOCH_RE.match(line)
        if m:
            epochs.append({"epoch": int(m.group(1)), "test_accuracy": float(m.group(2)),
                           "train_seconds": float(m.group(3))})
        m = FINAL_RE.match(line)
        if m:
            final = float(m.group(1))
    rc = p.wait()
    wall, ru1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)  # the whole process: load, train, tests
    if rc != 0:
        sys.exit(f"time_to_accuracy.py: {side} failed (exit status {rc})")
    hit = next((e for e in epochs if target > 0 and e["test_accuracy"] >= target - 1e-9), None)
    return {"side": side, "command": cmd, "load_average_before": [round(x, 2) for x in load],
            "load_average_after": [round(x, 2) for x in os.getloadavg()], "epochs": epochs,
            "epochs_to_target": hit["epoch"] if hit else None,
            "train_seconds_to_target": hit["train_seconds"] if hit else None,
            "final_test_accuracy": final, "process_wall_seconds": round(wall, 2),
            "process_cpu_seconds": round(cpu, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hlr-mnist", default=os.path.join(ROOT, "bin", "hlr-mnist"), help="the hlr-mnist binary")
    ap.add_argument("--epochs", type=int, default=10, help="the most epochs (and the cosine's length)")
    ap.add_argument("--target", type=float, default=99.0, help="test accuracy in %% to reach")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", os.path.join(ROOT, "data", "mnist")))
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "time_to_accuracy.json"))
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (a smoke test)")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images only")
    ap.add_argument("--only", choices=("libhlr", "pytorch"), help="run one side only")
    a = ap.parse_args()

    base = dict(os.environ)
    core = base.get("OPENBLAS_CORETYPE", "(unset: OpenBLAS picks)")
    l2 = base.get("OPENBLAS_L2_SIZE", "(unset)")
    limits = (["--limit", str(a.limit)] if a.limit > 0 else []) + \
             (["--test-limit", str(a.test_limit)] if a.test_limit > 0 else [])
    sides = []
    if a.only in (None, "libhlr"):
        cmd = [a.hlr_mnist, "train", "--model", "cnn-bn", "--epochs", str(a.epochs), "--threads", str(a.threads),
               "--seed", str(a.seed), "--data", a.data, "--target-accuracy", str(a.target)] + limits
        sides.append(run("libhlr", cmd, dict(base, HLR_NUM_THREADS=str(a.threads)), a.target))
    if a.only in (None, "pytorch"):
        cmd = [TORCH_PY, os.path.join(HERE, "torch_time_to_accuracy.py"), "--epochs", str(a.epochs),
               "--threads", str(a.threads), "--seed", str(a.seed), "--data", a.data, "--target", str(a.target)] + limits
        sides.append(run("pytorch", cmd, dict(base, **TORCH_ENV), a.target))

    print(f"\ncnn-bn on MNIST to {a.target:.2f}% test accuracy (at most {a.epochs} epochs, {a.threads} threads, "
          f"OPENBLAS_CORETYPE={core}, OPENBLAS_L2_SIZE={l2})")
    head = f"{'side':8} {'epochs':>6} {'train s':>9} {'final acc':>9}   {'per-epoch test accuracy':30}  " \
           f"{'wall s':>7} {'cpu s':>7}  load avg before"
    print(head)
    print("-" * len(head))
    for s in sides:
        ep = "-" if s["epochs_to_target"] is None else str(s["epochs_to_target"])
        sec = "-" if s["train_seconds_to_target"] is None else f"{s['train_seconds_to_target']:.1f}"
        fin = "-" if s["final_test_accuracy"] is None else f"{s['final_test_accuracy']:.2f}%"
        accs = " ".join(f"{e['test_accuracy']:.2f}" for e in s["epochs"])
        la = " ".join(f"{x:.2f}" for x in s["load_average_before"])
        print(f"{s['side']:8} {ep:>6} {sec:>9} {fin:>9}   {accs:30}  {s['process_wall_seconds']:7.1f} "
              f"{s['process_cpu_seconds']:7.1f}  {la}")
    result = {"model": "cnn-bn", "target": a.target, "max_epochs": a.epochs, "threads": a.threads, "seed": a.seed,
              "openblas_coretype": core, "openblas_l2_size": l2, "limit": a.limit, "test_limit": a.test_limit,
              "sides": sides}
    h = next((s for s in sides if s["side"] == "libhlr"), None)
    t = next((s for s in sides if s["side"] == "pytorch"), None)
    if h and t and h["train_seconds_to_target"] and t["train_seconds_to_target"]:
        ratio = h["train_seconds_to_target"] / t["train_seconds_to_target"]
        result["libhlr_over_pytorch_seconds"] = round(ratio, 3)
        print(f"time to {a.target:.2f}%: libhlr / PyTorch = {ratio:.2f}")
    elif h and t:
        print(f"time to {a.target:.2f}%: no ratio (a side did not reach the target in {a.epochs} epochs)")
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written: {a.json}")


if __name__ == "__main__":
    sys.exit(main())

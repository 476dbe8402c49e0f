#!/usr/bin/python3
"""`make bench-accuracy`: time to a test accuracy (99 %) on MNIST with the cnn-bn model, libhlr
(`hlr-mnist train --model cnn-bn --target-accuracy P`) first, then PyTorch
(bench/torch_time_to_accuracy.py: the same model, recipe and data), in the same run and under the
same OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the caller's, for each seed; then a table and a
summary, written also as JSON.

  /usr/bin/python3 bench/time_to_accuracy.py [--hlr-mnist bin/hlr-mnist] [--epochs 10] [--target 99.0]
        [--threads 2] [--seeds 0,1,2] [--data data/mnist] [--json build/time_to_accuracy.json]
        [--limit N] [--test-limit N] [--only libhlr|pytorch]

Both sides evaluate the test set after every epoch and stop at the target; --epochs caps the run
and is the length of the cosine schedule on both sides.  The training time is the sum of the
epochs' own times (evaluation excluded).  Which epoch first reaches the target depends on the seed
(the initial weights and the order of the data) more than on the library, so one seed decides
little: the summary gives the mean time to the target over the seeds, on how many seeds each side
got there first, and the mean time of an epoch.  The load average before each run is recorded, and
each process's wall and CPU seconds (loading and tests included): on a busy machine the times are
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


def seed_list(text):
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}")
    if not seeds:
        raise argparse.ArgumentTypeError("no seed")
    return seeds


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hlr-mnist", default=os.path.join(ROOT, "bin", "hlr-mnist"), help="the hlr-mnist binary")
    ap.add_argument("--epochs", type=int, default=10, help="the most epochs (and the cosine's length)")
    ap.add_argument("--target", type=float, default=99.0, help="test accuracy in %% to reach")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=seed_list, default=[0, 1, 2], help="comma-separated seeds, one run per side each")
    ap.add_argument("--seed", type=int, help="one seed (the same as --seeds S)")
    ap.add_argument("--data", default=os.environ.get("HLR_DATA_DIR", os.path.join(ROOT, "data", "mnist")))
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "time_to_accuracy.json"))
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only (a smoke test)")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images only")
    ap.add_argument("--only", choices=("libhlr", "pytorch"), help="run one side only")
    a = ap.parse_args()
    seeds = [a.seed] if a.seed is not None else a.seeds

    base = dict(os.environ)
    core = base.get("OPENBLAS_CORETYPE", "(unset: OpenBLAS picks)")
    l2 = base.get("OPENBLAS_L2_SIZE", "(unset)")
    limits = (["--limit", str(a.limit)] if a.limit > 0 else []) + \
             (["--test-limit", str(a.test_limit)] if a.test_limit > 0 else [])
    runs = []
    for seed in seeds:
        sides = []
        if a.only in (None, "libhlr"):
            cmd = [a.hlr_mnist, "train", "--model", "cnn-bn", "--epochs", str(a.epochs), "--threads", str(a.threads),
                   "--seed", str(seed), "--data", a.data, "--target-accuracy", str(a.target)] + limits
            sides.append(run("libhlr", cmd, dict(base, HLR_NUM_THREADS=str(a.threads)), a.target))
        if a.only in (None, "pytorch"):
            cmd = [TORCH_PY, os.path.join(HERE, "torch_time_to_accuracy.py"), "--epochs", str(a.epochs),
                   "--threads", str(a.threads), "--seed", str(seed), "--data", a.data, "--target", str(a.target)] + limits
            sides.append(run("pytorch", cmd, dict(base, **TORCH_ENV), a.target))
        runs.append({"seed": seed, "sides": sides})

    print(f"\ncnn-bn on MNIST to {a.target:.2f}% test accuracy (at most {a.epochs} epochs, {a.threads} threads, "
          f"OPENBLAS_CORETYPE={core}, OPENBLAS_L2_SIZE={l2})")
    head = f"{'seed':>4} {'side':8} {'epochs':>6} {'train s':>9} {'s/epoch':>7} {'final acc':>9}   " \
           f"{'per-epoch test accuracy':30}  {'wall s':>7} {'cpu s':>7}  load avg before"
    print(head)
    print("-" * len(head))
    for r in runs:
        for s in r["sides"]:
            ep = "-" if s["epochs_to_target"] is None else str(s["epochs_to_target"])
            sec = "-" if s["train_seconds_to_target"] is None else f"{s['train_seconds_to_target']:.1f}"
            fin = "-" if s["final_test_accuracy"] is None else f"{s['final_test_accuracy']:.2f}%"
            accs = " ".join(f"{e['test_accuracy']:.2f}" for e in s["epochs"])
            la = " ".join(f"{x:.2f}" for x in s["load_average_before"])
            s["seconds_per_epoch"] = round(s["epochs"][-1]["train_seconds"] / len(s["epochs"]), 2) if s["epochs"] else None
            spe = "-" if s["seconds_per_epoch"] is None else f"{s['seconds_per_epoch']:.1f}"
            print(f"{r['seed']:>4} {s['side']:8} {ep:>6} {sec:>9} {spe:>7} {fin:>9}   {accs:30}  "
                  f"{s['process_wall_seconds']:7.1f} {s['process_cpu_seconds']:7.1f}  {la}")
    result = {"model": "cnn-bn", "target": a.target, "max_epochs": a.epochs, "threads": a.threads, "seeds": seeds,
              "openblas_coretype": core, "openblas_l2_size": l2, "limit": a.limit, "test_limit": a.test_limit,
              "runs": runs}

    def side_of(r, name):
        return next((s for s in r["sides"] if s["side"] == name), None)

    both = [(side_of(r, "libhlr"), side_of(r, "pytorch")) for r in runs]
    both = [(h, t) for h, t in both if h and t]
    if both:
        reached = [(h, t) for h, t in both if h["train_seconds_to_target"] and t["train_seconds_to_target"]]
        summary = {"seeds_compared": len(both), "seeds_both_reached": len(reached)}
        if reached:
            mh = mean([h["train_seconds_to_target"] for h, _ in reached])
            mt = mean([t["train_seconds_to_target"] for _, t in reached])
            wins = sum(h["train_seconds_to_target"] < t["train_seconds_to_target"] for h, t in reached)
            summary.update({"libhlr_mean_seconds_to_target": round(mh, 2), "pytorch_mean_seconds_to_target": round(mt, 2),
                            "libhlr_over_pytorch_mean_seconds": round(mh / mt, 3), "libhlr_first_on_seeds": wins,
                            "libhlr_mean_epochs": round(mean([h["epochs_to_target"] for h, _ in reached]), 2),
                            "pytorch_mean_epochs": round(mean([t["epochs_to_target"] for _, t in reached]), 2)})
            print(f"time to {a.target:.2f}%, mean over the {len(reached)} seed(s) both sides reached it: libhlr {mh:.1f} s "
                  f"({summary['libhlr_mean_epochs']:.2f} epochs), PyTorch {mt:.1f} s "
                  f"({summary['pytorch_mean_epochs']:.2f} epochs); libhlr / PyTorch = {mh / mt:.2f}; "
                  f"libhlr first on {wins} of {len(reached)}")
        if len(reached) < len(both):
            print(f"{len(both) - len(reached)} seed(s) where a side did not reach {a.target:.2f}% in {a.epochs} epochs")
        eh = mean([h["seconds_per_epoch"] for h, _ in both if h["seconds_per_epoch"]])
        et = mean([t["seconds_per_epoch"] for _, t in both if t["seconds_per_epoch"]])
        if eh and et:
            summary.update({"libhlr_mean_seconds_per_epoch": round(eh, 2), "pytorch_mean_seconds_per_epoch": round(et, 2)})
            print(f"seconds per epoch, mean: libhlr {eh:.1f}, PyTorch {et:.1f} (PyTorch / libhlr = {et / eh:.2f})")
        result["summary"] = summary
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written: {a.json}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`make bench`: each reference model through bin/hlr-bench and through
bench/torch_bench.py in the same run, one process per model and library,
under the same OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the caller's; then
the table of ratios (libhlr / PyTorch), written also as JSON.

  bench/run.py [--models mlp,cnn] [--threads 2] [--json build/bench.json] [--no-torch]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
# PyTorch's best settings here: its own threads only, and malloc that keeps memory.
TORCH_ENV = {"OPENBLAS_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "33554432",
             "MALLOC_TRIM_THRESHOLD_": "17179869184", "MALLOC_TOP_PAD_": "268435456"}


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "bench.json"))
    ap.add_argument("--no-torch", action="store_true", help="measure libhlr only")
    ap.add_argument("--window-seconds", default="0.4")
    a = ap.parse_args()
    base = dict(os.environ)
    core = base.get("OPENBLAS_CORETYPE", "(unset: OpenBLAS picks)")
    hlr_env = dict(base, HLR_NUM_THREADS=str(a.threads))
    torch_env = dict(base, **TORCH_ENV)
    bench = os.path.join(ROOT, "bin", "hlr-bench")
    rows = []
    for model in a.models.split(","):
        h = run_json([bench, "--model", model, "--window-seconds", a.window_seconds], hlr_env)
        t = None if a.no_torch else run_json(
            [TORCH_PY, os.path.join(HERE, "torch_bench.py"), "--model", model, "--threads", str(a.threads),
             "--window-seconds", a.window_seconds], torch_env)
        rows.append({"model": model, "libhlr": h, "pytorch": t})
    gemm = run_json([bench, "--gemm"], hlr_env)

    print(f"OPENBLAS_CORETYPE={core}; libhlr's OpenBLAS kernel: {gemm['blas_core']}; threads: {a.threads}")
    head = f"{'model':8} {'train img/s':>12} {'torch':>9} {'ratio':>6}   {'infer img/s':>12} {'torch':>9} {'ratio':>6}" \
           f"   {'RSS MiB':>8} {'torch':>7} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        h, t = r["libhlr"], r["pytorch"]
        if t:
            r["train_ratio"] = round(h["train_img_s"] / t["train_img_s"], 2)
            r["infer_ratio"] = round(h["infer_img_s"] / t["infer_img_s"], 2)
            r["rss_ratio"] = round(h["peak_rss_mib"] / t["peak_rss_mib"], 3)
            print(f"{r['model']:8} {h['train_img_s']:12.0f} {t['train_img_s']:9.0f} {r['train_ratio']:6.2f}   "
                  f"{h['infer_img_s']:12.0f} {t['infer_img_s']:9.0f} {r['infer_ratio']:6.2f}   "
                  f"{h['peak_rss_mib']:8.1f} {t['peak_rss_mib']:7.1f} {r['rss_ratio']:6.3f}")
        else:
            print(f"{r['model']:8} {h['train_img_s']:12.0f} {'-':>9} {'-':>6}   {h['infer_img_s']:12.0f} {'-':>9} "
                  f"{'-':>6}   {h['peak_rss_mib']:8.1f}")
    print(f"sgemm 2048^3: {gemm['sgemm_2048_gflops']:.1f} GFLOP/s; sgemm of the cnn conv2 shape: "
          f"{gemm['conv2_shape_sgemm_gflops']:.1f} GFLOP/s; conv layers (im2col included): "
          f"conv1 {gemm['conv1_layer_gflops']:.1f}, conv2 {gemm['conv2_layer_gflops']:.1f} GFLOP/s")
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"openblas_coretype": core, "threads": a.threads, "models": rows, "gemm": gemm}, f, indent=2)
    print(f"written: {a.json}")


if __name__ == "__main__":
    sys.exit(main())

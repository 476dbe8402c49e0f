#!/usr/bin/env python3
"""`make bench`: each reference model through bin/hlr-bench and through
bench/torch_bench.py in the same run, one process per model and library,
under the same OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as the caller's; then
the table of ratios (libhlr / PyTorch), written also as JSON.

  bench/run.py [--models mlp,cnn] [--threads 2] [--json build/bench.json] [--no-torch] [--also-unset]
               [--scaling] [--rounds 2] [--no-ctc]

Models: the reference models of examples/models.c and crnn (hlr-read's recogniser, 32 x 224 images,
trained with the CTC loss on sequences of 1 to 8 digits).  Then the CTC loss alone (hlr-bench --ctc
against torch's ctc_loss on log_softmax, value and gradient) unless --no-ctc.

Each side of each model runs --rounds times, libhlr and PyTorch alternating, and keeps its best
speed (timings on a shared VM drift by a fifth from one minute to the next; a slow minute then
falls on both sides, and a round it spoiled is dropped).  Peak memory is the pair least favourable
to libhlr: libhlr's largest, PyTorch's smallest.

--also-unset repeats the whole run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed for both sides (OpenBLAS then picks its kernel for this CPU), names
the kernel each run used, and checks that libhlr's outputs agree.
--scaling measures both sides again with one thread and reports each one's
speed-up from 1 to --threads threads.
"""
import argparse
import json
import os
import re
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


def best_of(runs, side):
    """One side's figures from several rounds: the best speed of each kind, and the peak memory least
    favourable to libhlr (libhlr's largest, PyTorch's smallest)."""
    best = dict(runs[0])
    for r in runs[1:]:
        for k in ("train_img_s", "infer_img_s"):
            best[k] = max(best[k], r[k])
        best["peak_rss_mib"] = (max if side == "libhlr" else min)(best["peak_rss_mib"], r["peak_rss_mib"])
    best["rounds"] = [{k: r[k] for k in ("train_img_s", "infer_img_s", "peak_rss_mib")} for r in runs]
    if side == "libhlr":
        checks = {r["output_check"] for r in runs}
        if len(checks) > 1:
            sys.exit(f"run.py: libhlr's output differs between rounds of the same run: {sorted(checks)}")
    return best


HLR_BENCH = os.path.join(ROOT, "bin", "hlr-bench")


def cpu_isa():
    """The CPU's model name and widest vector extension, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return "an unknown CPU"
    m = re.search(r"model name\s*:\s*(.*)", text)
    flags = (re.search(r"flags\s*:\s*(.*)", text) or re.search(r"()", "")).group(1).split()
    return "%s, %s" % (m.group(1) if m else "unknown", "AVX-512" if "avx512f" in flags else
                       "AVX2" if "avx2" in flags else "no AVX2")


def one_run(models, threads, secs, env_base, no_torch, rounds):
    """Each model: libhlr, then PyTorch, `rounds` times over, alternating, so that a slow minute of the
    machine falls on both sides; each side keeps its best round."""
    hlr_env = dict(env_base, HLR_NUM_THREADS=str(threads))
    torch_env = dict(env_base, **TORCH_ENV)
    bench = HLR_BENCH
    rows = []
    for model in models:
        hs, ts = [], []
        for _ in range(rounds):
            hs.append(run_json([bench, "--model", model, "--window-seconds", secs], hlr_env))
            if not no_torch:
                ts.append(run_json([TORCH_PY, os.path.join(HERE, "torch_bench.py"), "--model", model, "--threads",
                                    str(threads), "--window-seconds", secs], torch_env))
        rows.append({"model": model, "libhlr": best_of(hs, "libhlr"), "pytorch": best_of(ts, "pytorch") if ts else None})
    gemm = run_json([bench, "--gemm"], hlr_env)
    return rows, gemm


def report(title, rows, gemm, threads):
    print(f"{title}; libhlr's kernels: {gemm.get('kernels', '?')} clones, its OpenBLAS kernel: {gemm['blas_core']}; "
          f"threads: {threads}")
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
    peak = gemm["sgemm_2048_gflops"]
    print(f"GEMM ceiling: the img/s if every GEMM ran at sgemm 2048^3's {peak:.0f} GFLOP/s and nothing else took time")
    for r in rows:
        h = r["libhlr"]
        ct, ci = peak * 1e3 / h["train_gemm_mflop_per_img"], peak * 1e3 / h["infer_gemm_mflop_per_img"]
        r["train_gemm_ceiling_img_s"], r["infer_gemm_ceiling_img_s"] = round(ct), round(ci)
        line = f"  {r['model']:8} GEMM MFLOP/img train {h['train_gemm_mflop_per_img']:7.3f} infer " \
               f"{h['infer_gemm_mflop_per_img']:7.3f}; ceiling train {ct:8.0f} img/s (reached {h['train_img_s'] / ct:4.0%})" \
               f", infer {ci:8.0f} img/s (reached {h['infer_img_s'] / ci:4.0%})"
        if r["pytorch"]:
            line += f"; ceiling / PyTorch: train {ct / r['pytorch']['train_img_s']:.2f}, " \
                    f"infer {ci / r['pytorch']['infer_img_s']:.2f}"
        print(line)
    print(f"sgemm 2048^3 (through libhlr's split, {threads} threads): {gemm['sgemm_2048_gflops']:.1f} GFLOP/s; "
          f"sgemm of the cnn conv2 shape (im2col's GEMM): {gemm['conv2_shape_sgemm_gflops']:.1f} GFLOP/s; conv layers "
          f"forward, in a direct convolution's FLOPs: conv1 (direct kernel) {gemm['conv1_layer_gflops']:.1f}, "
          f"conv2 (Winograd, 2.25x fewer multiplications) {gemm['conv2_layer_gflops']:.1f} GFLOP/s")


def ctc_run(threads, secs, env_base, no_torch, rounds):
    """hlr_ctc_loss alone against torch.nn.functional.ctc_loss (value and gradient), rounds alternating, each
    size's best rate per side."""
    hs, ts = [], []
    for _ in range(rounds):
        hs.append(run_json([HLR_BENCH, "--ctc", "--window-seconds", secs],
                           dict(env_base, HLR_NUM_THREADS=str(threads))))
        if not no_torch:
            ts.append(run_json([TORCH_PY, os.path.join(HERE, "torch_bench.py"), "--ctc", "--threads", str(threads),
                                "--window-seconds", secs], dict(env_base, **TORCH_ENV)))
    rows = []
    for k, size in enumerate(hs[0]["ctc"]):
        row = dict(size, libhlr_calls_s=max(h["ctc"][k]["calls_s"] for h in hs))
        del row["calls_s"]
        if ts:
            row["pytorch_calls_s"] = max(t["ctc"][k]["calls_s"] for t in ts)
            row["ratio"] = round(row["libhlr_calls_s"] / row["pytorch_calls_s"], 2)
        rows.append(row)
    print(f"CTC loss alone, value and gradient (calls/s of a batch; hlr_ctc_loss vs torch ctc_loss on log_softmax), "
          f"{threads} threads")
    for r in rows:
        tail = f"  PyTorch {r['pytorch_calls_s']:8.1f}  ratio {r['ratio']:5.2f}" if ts else ""
        print(f"  N {r['N']} T {r['T']} C {r['C']:3d} S {r['S']:2d}: libhlr {r['libhlr_calls_s']:8.1f}{tail}")
    return rows


def report_scaling(rows1, rows, threads):
    print(f"thread scaling: img/s with 1 thread and with {threads}, and the speed-up")
    head = f"{'model':8} {'side':8} {'train 1':>9} {'train ' + str(threads):>9} {'x':>5}   " \
           f"{'infer 1':>9} {'infer ' + str(threads):>9} {'x':>5}"
    print(head)
    print("-" * len(head))
    out = []
    for r1, r in zip(rows1, rows):
        for side in ("libhlr", "pytorch"):
            a, b = r1[side], r[side]
            if not a or not b:
                continue
            st, si = b["train_img_s"] / a["train_img_s"], b["infer_img_s"] / a["infer_img_s"]
            print(f"{r['model']:8} {side:8} {a['train_img_s']:9.0f} {b['train_img_s']:9.0f} {st:5.2f}   "
                  f"{a['infer_img_s']:9.0f} {b['infer_img_s']:9.0f} {si:5.2f}")
            out.append({"model": r["model"], "side": side, "one_thread": a, "train_speedup": round(st, 2),
                        "infer_speedup": round(si, 2)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "bench.json"))
    ap.add_argument("--no-torch", action="store_true", help="measure libhlr only")
    ap.add_argument("--no-ctc", action="store_true", help="skip the CTC loss benchmark")
    ap.add_argument("--also-unset", action="store_true",
                    help="repeat with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both sides")
    ap.add_argument("--scaling", action="store_true", help="also measure with 1 thread and report the speed-up")
    ap.add_argument("--window-seconds", default="0.4")
    ap.add_argument("--hlr-bench", default=os.path.join(ROOT, "bin", "hlr-bench"), help="libhlr's side")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native",
                    help="avx2: cap both sides at AVX2 (OPENBLAS_CORETYPE=Haswell, ONEDNN_MAX_CPU_ISA=AVX2; "
                         "--hlr-bench built with HLR_ISA_AVX2, as `make bench ISA=avx2` does)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="measure each side this many times, alternating, and keep each side's best")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    models = a.models.split(",")
    global HLR_BENCH
    HLR_BENCH = a.hlr_bench
    base = dict(os.environ)
    if a.isa == "avx2":
        base.update(OPENBLAS_CORETYPE="Haswell", ONEDNN_MAX_CPU_ISA="AVX2")
        print("ISA capped at AVX2: libhlr's kernels built without their AVX-512 clones (%s), OpenBLAS's Haswell "
              "kernel, PyTorch's oneDNN at AVX2, on a CPU that has %s" % (a.hlr_bench, cpu_isa()))
        if a.also_unset:
            print("(--also-unset is ignored with --isa avx2: unsetting OPENBLAS_CORETYPE would lift the cap)")
            a.also_unset = False
    else:
        print("ISA: native (%s); libhlr picks its AVX-512 or AVX2 clones at load time" % cpu_isa())
    core = base.get("OPENBLAS_CORETYPE", "(unset: OpenBLAS picks)")
    rows, gemm = one_run(models, a.threads, a.window_seconds, base, a.no_torch, a.rounds)
    report(f"OPENBLAS_CORETYPE={core}", rows, gemm, a.threads)
    result = {"openblas_coretype": core, "threads": a.threads, "rounds": a.rounds, "models": rows, "gemm": gemm}
    if not a.no_ctc:
        print()
        result["ctc_loss"] = ctc_run(a.threads, a.window_seconds, base, a.no_torch, a.rounds)
    if a.scaling:
        rows1, _ = one_run(models, 1, a.window_seconds, base, a.no_torch, a.rounds)
        print()
        result["scaling"] = report_scaling(rows1, rows, a.threads)
    if a.also_unset:
        unset = {k: v for k, v in base.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        rows2, gemm2 = one_run(models, a.threads, a.window_seconds, unset, a.no_torch, a.rounds)
        print()
        report("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset", rows2, gemm2, a.threads)
        agree = []
        for r1, r2 in zip(rows, rows2):
            c1, c2 = r1["libhlr"]["output_check"], r2["libhlr"]["output_check"]
            ok = abs(c1 - c2) <= 1e-4 * max(1.0, abs(c1))
            agree.append(ok)
            print(f"{r1['model']}: libhlr output fingerprint {c1:.9g} ({gemm['blas_core']}) vs {c2:.9g} "
                  f"({gemm2['blas_core']}): {'agree' if ok else 'DIFFER'}")
        result["unset"] = {"models": rows2, "gemm": gemm2, "outputs_agree": all(agree)}
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written: {a.json}")


if __name__ == "__main__":
    sys.exit(main())

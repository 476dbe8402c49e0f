#!/usr/bin/python3
"""libhlr against ONNX Runtime for inference (`make bench-ort`): the reference models of `make bench`
at batch 1, 16 and 256, the two sides alternating, each the best of --rounds, the same thread count.
ONNX Runtime runs libhlr's own export of each model (--export hlr, the default: hlr-mnist trains it
briefly, hlr-export writes it; the weights do not change the speed) or bench/torch_bench.py's
PyTorch twins exported by bench/export_onnx.py (--export torch, which needs python3-torch).
Prints the CPU and its instruction set, OpenBLAS's kernel for libhlr and ONNX Runtime's version, a
table of img/s and the ratios libhlr / ONNX Runtime, and writes it all to build/bench-ort.json.

With --ort-isa avx2 (`make bench-ort ISA=avx2`, with libhlr's AVX2 build as --hlr-bench) ONNX
Runtime's process runs with --cpuid-cap (bench/cpuid_avx2.c) preloaded, which hides AVX-512 from
its CPUID, so that it picks its AVX2 kernels; the bench checks that the cap answered ONNX Runtime's
feature queries and stops, saying why, where this machine cannot fault CPUID.

    bench/ort.py --onnx build/ort-models --node-path build/node/node_modules [--models mlp,cnn,...] [--rounds 2]
                 [--export hlr|torch] [--ort-isa avx2 --cpuid-cap build/cpuid_avx2.so]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu():
    with open("/proc/cpuinfo") as f:
        text = f.read()
    model = re.search(r"model name\s*:\s*(.*)", text).group(1)
    flags = re.search(r"flags\s*:\s*(.*)", text).group(1).split()
    return model, "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)
    if p.returncode != 0:
        sys.exit("bench/ort.py: %s failed: %s" % (" ".join(cmd), p.stderr.strip()[-400:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_ort(cmd, env, cap):
    """ONNX Runtime's side; with cap (the preload's path), shown a CPU without AVX-512."""
    if not cap:
        return run(cmd, env)
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "cpuid-avx2.report")
        o = run(cmd, dict(env, LD_PRELOAD=cap, CPUID_AVX2_REPORT=report))
        text = open(report).read().split() if os.path.exists(report) else []
    if text[:1] == ["unsupported"]:
        sys.exit("bench/ort.py: cannot show ONNX Runtime a CPU without AVX-512 here: this kernel or hypervisor "
                 "does not fault CPUID (no cpuid_fault in /proc/cpuinfo); run without ISA=avx2")
    if len(text) < 4 or int(text[3]) == 0:
        sys.exit("bench/ort.py: ONNX Runtime's process never asked CPUID for its features under %s: "
                 "its instruction set is unknown" % cap)
    o["cpuid_answered"] = int(text[1])
    return o


def run_plain(cmd):
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        sys.exit("bench/ort.py: %s failed: %s" % (" ".join(cmd), p.stderr.strip()[-400:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", default=os.path.join(ROOT, "build", "onnx"))
    ap.add_argument("--node-path", default=os.path.join(ROOT, "build", "node", "node_modules"))
    ap.add_argument("--models", default="mlp,cnn,cnn-bn,lstm,gru,hybrid,transformer")
    ap.add_argument("--batches", default="1,16,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--window-seconds", type=float, default=0.4)
    ap.add_argument("--export", choices=("hlr", "torch"), default="hlr")
    ap.add_argument("--hlr-bench", default=os.path.join(ROOT, "bin", "hlr-bench"),
                    help="libhlr's side (make bench ISA=avx2 passes its AVX2 build)")
    ap.add_argument("--ort-isa", choices=("native", "avx2"), default="native",
                    help="avx2: ONNX Runtime shown a CPU without AVX-512 (needs --cpuid-cap)")
    ap.add_argument("--cpuid-cap", default=os.path.join(ROOT, "build", "cpuid_avx2.so"),
                    help="bench/cpuid_avx2.c built as a preload (make builds build/cpuid_avx2.so)")
    a = ap.parse_args()
    cap = None
    if a.ort_isa == "avx2":
        cap = os.path.abspath(a.cpuid_cap)
        if not os.path.exists(cap):
            sys.exit("bench/ort.py: --ort-isa avx2 needs %s (make %s)" % (cap, os.path.relpath(cap, ROOT)))
    batches = [int(b) for b in a.batches.split(",")]
    os.makedirs(a.onnx, exist_ok=True)
    for m in a.models.split(","):
        path = os.path.join(a.onnx, "%s-%s.onnx" % (m, a.export))
        if os.path.exists(path):
            continue
        if a.export == "torch":
            run_plain(["/usr/bin/python3", os.path.join(ROOT, "bench", "export_onnx.py"), a.onnx])
            for name in a.models.split(","):
                if os.path.exists(os.path.join(a.onnx, name + ".onnx")):
                    os.replace(os.path.join(a.onnx, name + ".onnx"), os.path.join(a.onnx, name + "-torch.onnx"))
        else:
            model = os.path.join(a.onnx, m + ".hlr")
            run_plain([os.path.join(ROOT, "bin", "hlr-mnist"), "train", "--model", m, "--epochs", "1", "--limit",
                       "256", "--test-limit", "100", "--save", model])
            run_plain([os.path.join(ROOT, "bin", "hlr-export"), model, path])
    env = dict(os.environ, HLR_NUM_THREADS=str(a.threads), NODE_PATH=a.node_path)
    model_name, isa = cpu()
    print("CPU: %s (%s); %d threads each side; OPENBLAS_CORETYPE=%s" % (model_name, isa, a.threads,
                                                                        os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    rows, meta = [], {}
    for m in a.models.split(","):
        best = {}
        for _ in range(a.rounds):
            for b in batches:
                h = run([a.hlr_bench, "--model", m, "--infer-batch", str(b),
                         "--windows", str(a.windows), "--window-seconds", str(a.window_seconds)], env)
                meta["blas_core"] = h.get("blas_core")
                meta["hlr_kernels"] = h.get("kernels")
                best[("hlr", b)] = max(best.get(("hlr", b), 0), h["infer_img_s"])
            o = run_ort(["node", os.path.join(ROOT, "bench", "ort_bench.js"),
                         os.path.join(a.onnx, "%s-%s.onnx" % (m, a.export)), str(a.threads), a.batches, str(a.windows),
                         str(a.window_seconds)], env, cap)
            meta["onnxruntime"] = o["version"]
            for b in batches:
                best[("ort", b)] = max(best.get(("ort", b), 0), o["infer_img_s"][str(b)])
        rows.append((m, best))
    ort_isa = ("AVX2 (AVX-512 hidden from its CPUID by %s)" % os.path.basename(cap) if cap
               else "its own choice for this CPU (%s)" % isa)
    meta["onnxruntime_isa"] = "avx2" if cap else "native"
    print("libhlr: %s, its kernels' %s clones, OpenBLAS kernel %s; ONNX Runtime %s (onnxruntime-node, CPU) on %s's "
          "export, ISA %s" % (os.path.relpath(os.path.abspath(a.hlr_bench), ROOT), meta.get("hlr_kernels"),
                              meta.get("blas_core"), meta.get("onnxruntime"),
                              "libhlr" if a.export == "hlr" else "PyTorch", ort_isa))
    head = "%-12s" % "model" + "".join("  %10s %10s %6s" % ("hlr b%d" % b, "ort b%d" % b, "ratio") for b in batches)
    print(head)
    out = []
    for m, best in rows:
        line = "%-12s" % m
        rec = {"model": m}
        for b in batches:
            h, o = best[("hlr", b)], best[("ort", b)]
            line += "  %10.0f %10.0f %6.2f" % (h, o, h / o)
            rec["b%d" % b] = {"libhlr": h, "onnxruntime": o, "ratio": round(h / o, 2)}
        print(line)
        out.append(rec)
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "bench-ort.json"), "w") as f:
        json.dump({"cpu": model_name, "isa": isa, "threads": a.threads, "export": a.export, **meta, "rows": out}, f,
                  indent=1)


if __name__ == "__main__":
    main()

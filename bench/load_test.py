#!/usr/bin/env python3
"""make load-test: bin/hlr-serve under load, then under a burst of malformed requests.

1. Serve a model (--model FILE; by default cnn-bn trained for one epoch, seed 0, kept in build/load-test).
2. Check the answers: the first 1,000 MNIST test digits, one PNG request each, against their labels.
3. wrk (Debian's) at 64 connections for --seconds (30) on those PNGs, after a 5-second warm-up:
   requests/s, p50/p99 latency, failed requests (non-2xx, socket errors), resident memory after the
   warm-up and after the run.
4. A burst of malformed requests (random bytes, truncated PNGs, huge declared sizes, deep and broken
   JSON, wrong types, bodies over the limit), each kind counted by status; then /healthz.
5. The same wrk run on a server started with --batch 1: batching's gain in the same run.

Not part of make test (it takes about a minute and a half and loads both cores).  Prints the CPU and
one summary line per figure; exits 1 when a valid request failed or a malformed one got other than 4xx.
"""
import argparse
import concurrent.futures
import gzip
import http.client
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png(rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, binary, model, *extra):
        self.p = subprocess.Popen([binary, "--model", "digits=" + model, "--port", "0"] + list(extra),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        m = re.search(r"127\.0\.0\.1:(\d+)/", line)
        if not m:
            sys.exit("load-test: hlr-serve did not start: " + line + self.p.stderr.read().decode())
        self.port = int(m.group(1))

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException) as e:
            return "error: " + type(e).__name__, b""
        finally:
            c.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)
        return self.p.returncode, self.p.stderr.read().decode().strip()


def wrk(port, seconds, pngs_list):
    env = dict(os.environ, HLR_LOAD_PNGS=pngs_list)
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "--timeout", "10s", "-s",
                          os.path.join(ROOT, "bench", "load_test.lua"),
                          "http://127.0.0.1:%d/v1/recognize?model=digits" % port],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout.decode()

    def ms(label):
        m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    n = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "requests": n,
            "p50": ms("50%"), "p99": ms("99%"), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, sock.groups())) if sock else 0}


def malformed(s, per_kind):
    """(kind, {status: count}) for each kind of bad request, per_kind of each, 16 at a time."""
    rng = random.Random(0)
    good = png([[(x * y) % 256 for x in range(28)] for y in range(28)])
    kinds = {
        "random bytes": lambda: (bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000))), "image/png"),
        "truncated PNG": lambda: (good[:rng.randint(0, len(good) - 1)], "image/png"),
        "huge declared size": lambda: (good[:16] + struct.pack(">II", rng.randint(5000, 2 ** 31 - 1),
                                                               rng.randint(5000, 2 ** 31 - 1)) + good[24:],
                                       "image/png"),
        "flipped PNG bytes": lambda: (bytes(b ^ (rng.getrandbits(8) if rng.random() < 0.02 else 0) for b in good),
                                      "image/png"),
        "deep JSON": lambda: (b"[" * rng.randint(1001, 200000), "application/json"),
        "broken JSON": lambda: (b'{"width": 28, "height": 28, "pixels": [' + b"0," * rng.randint(0, 800),
                                "application/json"),
        "wrong type": lambda: (good, rng.choice(["text/plain", "image/jpeg", "multipart/form-data", ""])),
        "over the limit": lambda: (b"\x89PNG" + b"\0" * (1 << 20), "image/png"),
    }
    results = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for kind, make in kinds.items():
            bodies = [make() for _ in range(per_kind)]
            statuses = pool.map(lambda b: s.request("POST", "/v1/recognize?model=digits", b[0],
                                                    {"Content-Type": b[1]} if b[1] else {})[0], bodies)
            counts = {}
            for st in statuses:
                counts[st] = counts.get(st, 0) + 1
            results.append((kind, counts))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "load-test"))
    ap.add_argument("--model", help="the model file to serve (default: cnn-bn, 1 epoch, seed 0, trained here)")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--malformed", type=int, default=500, help="requests of each malformed kind")
    ap.add_argument("--serve-args", default="", help="more options for hlr-serve, e.g. '--batch 64'")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    model = a.model or os.path.join(a.work, "cnn-bn.hlr")
    if not os.path.exists(model):
        print("training cnn-bn for one epoch (seed 0) into %s ..." % model, flush=True)
        subprocess.run([os.path.join(a.bin, "hlr-mnist"), "train", "--model", "cnn-bn", "--epochs", "1", "--seed", "0",
                        "--data", a.data, "--save", model], check=True, stdout=subprocess.DEVNULL)
    with gzip.open(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")) as f:
        px = f.read(16 + 784 * 1000)[16:]
    with gzip.open(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = list(f.read(8 + 1000)[8:])
    pngs, names = [], []
    os.makedirs(os.path.join(a.work, "pngs"), exist_ok=True)
    for i in range(1000):
        pngs.append(png([px[i * 784 + r * 28:i * 784 + r * 28 + 28] for r in range(28)]))
        names.append(os.path.join(a.work, "pngs", "%d.png" % i))
        with open(names[-1], "wb") as f:
            f.write(pngs[-1])
    listing = os.path.join(a.work, "pngs.txt")
    with open(listing, "w") as f:
        f.write("\n".join(names) + "\n")

    serve = os.path.join(a.bin, "hlr-serve")
    extra = a.serve_args.split()
    print("CPU: %s, %d cores; OPENBLAS_CORETYPE=%s" % (cpu_model(), os.cpu_count(),
                                                       os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    s = Server(serve, model, *extra)
    right = sum(json.loads(s.request("POST", "/v1/recognize?model=digits", b, {"Content-Type": "image/png"})[1])
                ["index"] == y for b, y in zip(pngs, labels))
    print("answers: %d of the first 1000 MNIST test digits read right (%.1f%%)" % (right, right / 10), flush=True)
    wrk(s.port, 5, listing)
    rss_warm = rss_mib(s.p.pid)
    r = wrk(s.port, a.seconds, listing)
    rss_after = rss_mib(s.p.pid)
    failed = r["non2xx"] + r["socket_errors"]
    print("batched (%s): %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d requests in %d s, %d failed "
          "(non-2xx %d, socket errors %d)" % (" ".join(["--batch 32 --wait-us 1000"] + extra), r["rps"], r["p50"],
                                             r["p99"], r["requests"], a.seconds, failed, r["non2xx"],
                                             r["socket_errors"]), flush=True)
    print("resident memory: %.1f MiB after warm-up, %.1f MiB after the run" % (rss_warm, rss_after), flush=True)
    not4xx = 0
    for burst in (1, 2):  # twice: the second shows whether memory keeps growing
        bad = malformed(s, a.malformed)
        for kind, counts in bad:
            print("malformed %d, %-18s: %s" % (burst, kind, ", ".join("%s x %d" % kv
                                                                     for kv in sorted(counts.items(), key=str))))
            not4xx += sum(n for st, n in counts.items() if not (isinstance(st, int) and 400 <= st < 500))
        health = s.request("GET", "/healthz")
        print("after burst %d of %d malformed requests: /healthz %s %s, resident memory %.1f MiB"
              % (burst, a.malformed * len(bad), health[0], health[1].decode(), rss_mib(s.p.pid)), flush=True)
    print("malformed requests not answered with a 4xx: %d" % not4xx)
    rc, err = s.stop()
    print("SIGTERM: exit %d (%s)" % (rc, err))

    s1 = Server(serve, model, "--batch", "1", *extra)
    wrk(s1.port, 3, listing)
    r1 = wrk(s1.port, max(10, a.seconds // 2), listing)
    s1.stop()
    print("batch of one (--batch 1): %.0f requests/s, p50 %.2f ms, p99 %.2f ms, %d failed"
          % (r1["rps"], r1["p50"], r1["p99"], r1["non2xx"] + r1["socket_errors"]))
    print("batching: %.2fx the requests/s of batch-of-one" % (r["rps"] / r1["rps"]))
    ok = failed == 0 and not4xx == 0 and health[0] == 200 and rc == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

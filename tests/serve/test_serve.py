"""bin/hlr-serve through its HTTP API: every route, every error status, batching, metrics, tokens,
reload (SIGHUP), drain (SIGTERM), slow clients and start-up failures.

Each test class starts the server on a free loopback port (--port 0; the port is read from the line
the server prints).  Models: the MLP trained for one short epoch on 5,000 MNIST images (two seeds, for
the reload tests) and a tiny hlr-read CRNN.  Run by `make serve-test` (part of `make test`):

    HLR_BIN=bin HLR_DATA_DIR=data/mnist python3 tests/serve/test_serve.py
"""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(os.environ.get("HLR_BIN") or os.path.join(ROOT, "bin"))
DATA = os.path.abspath(os.environ.get("HLR_DATA_DIR") or os.path.join(ROOT, "data", "mnist"))


def run(program, *args):
    p = subprocess.run([os.path.join(BIN, program)] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def png(rows, color=0):
    """An 8-bit PNG (grey) of rows of samples, as bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_header_only(w, h):
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


def mnist_digits(n):
    """The first n MNIST test images as rows of bytes, and their labels."""
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        px = f.read(16 + 784 * n)[16:]
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = list(f.read(8 + n)[8:])
    return [[px[i * 784 + r * 28:i * 784 + r * 28 + 28] for r in range(28)] for i in range(n)], labels


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """bin/hlr-serve in the background on a free port; stop() sends SIGTERM and returns (rc, stderr)."""

    def __init__(self, *args):
        wrapper = os.environ.get("HLR_SERVE_WRAPPER", "").split()  # e.g. valgrind (make valgrind)
        self.p = subprocess.Popen(wrapper + [os.path.join(BIN, "hlr-serve"), "--port", "0"] + [str(a) for a in args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        if "listening on" not in line:
            self.p.kill()
            raise AssertionError("hlr-serve did not start: " + line + self.p.stderr.read().decode())
        self.port = int(line.split("127.0.0.1:")[1].split("/")[0])
        self.banner = line

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        return status, json.loads(data)

    def recognize(self, body, model="digits", ctype="image/png", query=""):
        return self.json("POST", "/v1/recognize?model=%s%s" % (model, query), body, {"Content-Type": ctype})

    def metric(self, line_start):
        _, _, text = self.request("GET", "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(line_start + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        err = self.p.stderr.read().decode()
        self.p.stdout.close()
        self.p.stderr.close()
        return self.p.returncode, err


class Models:
    """Trained once for every test class."""
    tmp = None

    @classmethod
    def get(cls):
        if cls.tmp is None:
            cls.tmp = tempfile.TemporaryDirectory()
            d = cls.tmp.name
            for seed in (0, 1):
                rc, out, err = run("hlr-mnist", "train", "--model", "mlp", "--epochs", "1", "--limit", "5000",
                                   "--seed", seed, "--data", DATA, "--save", os.path.join(d, "mlp%d.hlr" % seed))
                assert rc == 0, err
            rc, out, err = run("hlr-read", "train", "--epochs", "1", "--train-strings", "64", "--test-strings", "16",
                               "--max-len", "3", "--data", DATA, "--save", os.path.join(d, "read.hlr"))
            assert rc == 0, err
        return cls.tmp.name


class Api(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = Models.get()
        cls.model = os.path.join(cls.dir, "mlp0.hlr")
        cls.digits, cls.labels = mnist_digits(64)
        # --wait-us 20000: concurrent requests surely meet in one batch
        cls.s = Server("--model", "digits=" + cls.model, "--model", "reader=" + os.path.join(cls.dir, "read.hlr"),
                       "--max-body", 65536, "--wait-us", 20000, "--batch", 16, "--timeout", 2)

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.s.stop()
        assert rc == 0 and "stopped" in err, (rc, err)

    def test_page_health_models(self):
        status, h, page = self.s.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(h["Content-Type"].startswith("text/html"))
        self.assertIn(b"<canvas", page)
        self.assertNotIn(b"http://", page.replace(b"http://www.w3.org", b""))  # nothing fetched from elsewhere
        status, health = self.s.json("GET", "/healthz")
        self.assertEqual((status, health["status"], health["models"]), (200, "ok", 2))
        self.assertGreaterEqual(health["inflight"], 1)  # itself, and any request not yet wound up
        status, m = self.s.json("GET", "/v1/models")
        self.assertEqual(status, 200)
        by = {x["name"]: x for x in m["models"]}
        self.assertEqual(by["digits"]["kind"], "classifier")
        self.assertEqual(by["digits"]["classes"], [str(k) for k in range(10)])
        self.assertEqual(by["digits"]["input_shape"], [1, 28, 28])
        self.assertEqual(by["digits"]["dataset"], "MNIST")
        self.assertEqual(by["digits"]["metadata"]["model"], "mlp")
        self.assertEqual(by["reader"]["kind"], "text")
        self.assertEqual(by["reader"]["alphabet"], "0123456789")

    def test_png_answers_as_hlr_predict_does(self):
        d = tempfile.mkdtemp(dir=self.dir)
        files = []
        for i in range(8):
            files.append(os.path.join(d, "%d.png" % i))
            with open(files[-1], "wb") as f:
                f.write(png(self.digits[i]))
        rc, out, err = run("hlr-predict", "--json", self.model, *files)
        self.assertEqual(rc, 0, err)
        for path, line in zip(files, out.splitlines()):
            want = json.loads(line)
            with open(path, "rb") as f:
                status, got = self.s.recognize(f.read())
            self.assertEqual(status, 200, got)
            self.assertEqual(got["model"], "digits")
            self.assertEqual(got["class"], want["class"])
            self.assertEqual([t["label"] for t in got["top"]], [t["class"] for t in want["top"]])
            for a, b in zip(got["top"], want["top"]):
                # Both print 6 decimals.  Under `make valgrind` the server runs in valgrind, whose CPU has no
                # AVX-512, and hlr-predict natively: their kernels may round a float otherwise, and the
                # printed values then differ by one in the last decimal.
                self.assertAlmostEqual(a["probability"], b["probability"], delta=1.5e-6)
            self.assertEqual(got["confidence"], got["top"][0]["probability"])
            self.assertGreater(got["ms"], 0)
        shutil.rmtree(d)

    def test_json_pixels_answer_as_the_png(self):
        rows = self.digits[3]
        _, a = self.s.recognize(png(rows))
        body = json.dumps({"width": 28, "height": 28, "pixels": [v / 255 for r in rows for v in r]})
        status, b = self.s.recognize(body.encode(), ctype="application/json; charset=utf-8")
        self.assertEqual(status, 200, b)
        self.assertEqual(a["top"], b["top"])

    def test_a_drawing_on_paper_is_preprocessed(self):
        # the digit 3 times larger, dark ink on light paper, off centre: MNIST preprocessing finds it
        rows = self.digits[0]
        big = [[250] * 120 for _ in range(100)]
        for y in range(84):
            for x in range(84):
                big[8 + y][30 + x] = 250 - rows[y // 3][x // 3] * 230 // 255
        status, got = self.s.recognize(png(big))
        self.assertEqual((status, got["class"]), (200, str(self.labels[0])))

    def test_saliency_is_a_png(self):
        status, got = self.s.recognize(png(self.digits[1]), query="&saliency=1")
        self.assertEqual(status, 200, got)
        import base64
        pic = base64.b64decode(got["saliency_png"])
        self.assertEqual(pic[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(struct.unpack(">II", pic[16:24]), (224, 224))
        # over the picture as it was sent: RGBA of its size, here the 28 x 28 digit itself
        over = base64.b64decode(got["saliency_overlay_png"])
        self.assertEqual(struct.unpack(">IIBB", over[16:26]), (28, 28, 8, 6))
        # a drawing on paper: the overlay has the drawing's size, and is opaque only near the ink
        big = [[250] * 120 for _ in range(100)]
        for y in range(84):
            for x in range(84):
                big[8 + y][30 + x] = 250 - self.digits[1][y // 3][x // 3] * 230 // 255
        got = self.s.recognize(png(big), query="&saliency=1")[1]
        over = base64.b64decode(got["saliency_overlay_png"])
        self.assertEqual(struct.unpack(">II", over[16:24]), (120, 100))
        status, got = self.s.recognize(png(self.digits[1]), model="reader", query="&saliency=1")
        self.assertEqual(status, 400)
        self.assertIn("classifiers", got["error"])

    def test_text_model_reads_a_number(self):
        # three MNIST digits side by side: the tiny CRNN's answer is text of digits, with confidences
        rows = [b"".join(self.digits[i][r] for i in (0, 1, 2)) for r in range(28)]
        status, got = self.s.recognize(png(rows), model="reader")
        self.assertEqual(status, 200, got)
        self.assertTrue(all(c in "0123456789" for c in got["text"]), got)
        self.assertEqual(len(got["characters"]), len(got["text"]))
        self.assertIn("cut", got)

    def test_concurrent_requests_are_batched_and_answered_as_alone(self):
        alone = {}
        for i in range(16):
            alone[i] = self.s.recognize(png(self.digits[i]))[1]["top"]
        before = self.s.metric("hlr_batch_size_count"), self.s.metric("hlr_batch_size_sum")
        got, errors = {}, []

        def one(i):
            try:
                status, r = self.s.recognize(png(self.digits[i % 16]))
                got[i] = (status, r)
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for i, (status, r) in got.items():
            self.assertEqual(status, 200)
            # the same answer in a batch as alone (OpenBLAS's sgemm blocks by the batch: the last bits move)
            self.assertEqual([t["label"] for t in r["top"]], [t["label"] for t in alone[i % 16]])
            for a, b in zip(r["top"], alone[i % 16]):
                self.assertAlmostEqual(a["probability"], b["probability"], delta=1e-5)
        batches = self.s.metric("hlr_batch_size_count") - before[0]
        items = self.s.metric("hlr_batch_size_sum") - before[1]
        self.assertEqual(items, 48)
        self.assertLess(batches, 48)  # some requests ran together
        self.assertTrue(any(r["batch"] > 1 for _, r in got.values()))

    def errors(self):
        """(what, status, body) for every kind of bad request."""
        ok = png(self.digits[0])
        deep = b"[" * 5000 + b"]" * 5000
        cases = [
            ("unknown model", "POST", "/v1/recognize?model=nope", ok, "image/png", 404, "no model named 'nope'"),
            ("no model named", "POST", "/v1/recognize", ok, "image/png", 400, "?model=NAME"),
            ("wrong type", "POST", "/v1/recognize?model=digits", ok, "text/plain", 415, "'text/plain'"),
            ("no type", "POST", "/v1/recognize?model=digits", ok, None, 415, "missing"),
            ("not a PNG", "POST", "/v1/recognize?model=digits", b"GIF89a....", "image/png", 400, "PNG signature"),
            ("truncated PNG", "POST", "/v1/recognize?model=digits", ok[:60], "image/png", 400, "truncated"),
            ("corrupt PNG", "POST", "/v1/recognize?model=digits", ok[:40] + b"\xff" * 8 + ok[48:], "image/png", 400,
             "bad PNG"),
            ("huge PNG", "POST", "/v1/recognize?model=digits", png_header_only(100000, 100000), "image/png", 400,
             "100000 x 100000"),
            ("empty body", "POST", "/v1/recognize?model=digits", b"", "image/png", 400, "PNG signature"),
            ("blank picture", "POST", "/v1/recognize?model=digits", png([[255] * 40] * 30), "image/png", 400, "ink"),
            ("wrong size", "POST", "/v1/recognize?model=reader", png([[255] * 4] * 4), "image/png", 400, "ink"),
            ("malformed JSON", "POST", "/v1/recognize?model=digits", b'{"width": 2,', "application/json", 400,
             "malformed JSON"),
            ("deep JSON", "POST", "/v1/recognize?model=digits", deep, "application/json", 400, "malformed JSON"),
            ("JSON not an object", "POST", "/v1/recognize?model=digits", b"[1, 2]", "application/json", 400,
             "an object"),
            ("JSON size", "POST", "/v1/recognize?model=digits", b'{"width": 1e9, "height": 1, "pixels": []}',
             "application/json", 400, "whole numbers"),
            ("JSON count", "POST", "/v1/recognize?model=digits", b'{"width": 2, "height": 2, "pixels": [0, 1]}',
             "application/json", 400, "has 2 values"),
            ("JSON pixel", "POST", "/v1/recognize?model=digits", b'{"width": 2, "height": 1, "pixels": [0, 7]}',
             "application/json", 400, "pixel 1"),
            ("GET recognize", "GET", "/v1/recognize?model=digits", None, None, 405, "POST"),
            ("POST models", "POST", "/v1/models", b"{}", "application/json", 405, "GET"),
            ("no route", "GET", "/admin", None, None, 404, "no such route"),
            ("too long", "POST", "/v1/recognize?model=digits", b"\x89PNG" + b"\0" * 70000, "image/png", 413,
             "at most 65536"),
        ]
        for what, method, path, body, ctype, want, words in cases:
            headers = {"Content-Type": ctype} if ctype else {}
            status, h, data = self.s.request(method, path, body, headers)
            yield what, status, want, data, words

    def test_bad_requests_get_a_4xx_naming_the_problem_and_no_file(self):
        before = self.s.metric('hlr_requests_total{route="/v1/recognize",code="400"}')
        for what, status, want, data, words in self.errors():
            self.assertEqual(status, want, (what, data))
            err = json.loads(data)
            self.assertEqual(err["status"], want)
            self.assertIn(words, err["error"], what)
            self.assertNotIn(self.dir, err["error"])
            self.assertNotIn(".hlr", err["error"])
        self.assertGreater(self.s.metric('hlr_requests_total{route="/v1/recognize",code="400"}'), before)
        # still healthy, and still right
        self.assertEqual(self.s.json("GET", "/healthz")[0], 200)
        self.assertEqual(self.s.recognize(png(self.digits[0]))[0], 200)

    def test_a_body_over_the_limit_announced_or_streamed_gets_413(self):
        # announced: Content-Length over the limit is refused before the body is read
        c = socket.create_connection(("127.0.0.1", self.s.port), timeout=10)
        c.sendall(b"POST /v1/recognize?model=digits HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 999999999\r\n\r\n")
        reply = c.recv(4096)
        c.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply)
        # streamed in chunks with no length: refused once it passes the limit
        c = socket.create_connection(("127.0.0.1", self.s.port), timeout=10)
        c.sendall(b"POST /v1/recognize?model=digits HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(40):  # 160 KiB: read and dropped past the 64 KiB limit
            c.sendall(b"1000\r\n" + b"\0" * 4096 + b"\r\n")
        c.sendall(b"0\r\n\r\n")
        reply = c.recv(4096)
        c.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply)
        self.assertEqual(self.s.json("GET", "/healthz")[0], 200)

    def test_a_stalled_client_is_timed_out(self):
        c = socket.create_connection(("127.0.0.1", self.s.port), timeout=10)
        c.sendall(b"POST /v1/recognize?model=digits HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 1000\r\n\r\n\x89PNG")
        t0 = time.monotonic()
        self.assertEqual(c.recv(4096), b"")  # closed by the server (--timeout 2), not by us
        self.assertLess(time.monotonic() - t0, 8)
        c.close()
        self.assertEqual(self.s.json("GET", "/healthz")[0], 200)

    def test_metrics_count_routes_statuses_latency_and_models(self):
        before = self.s.metric('hlr_requests_total{route="/healthz",code="200"}')
        for _ in range(3):
            self.s.request("GET", "/healthz")
        self.assertEqual(self.s.metric('hlr_requests_total{route="/healthz",code="200"}'), before + 3)
        _, h, text = self.s.request("GET", "/metrics")
        self.assertTrue(h["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = text.decode()
        for name in ("hlr_request_duration_seconds_bucket{le=\"+Inf\"}", "hlr_request_duration_seconds_sum",
                     "hlr_batch_size_bucket{le=\"1\"}", "hlr_models_loaded 2", "hlr_reloads_total{result=\"ok\"} 0",
                     "# TYPE hlr_request_duration_seconds histogram"):
            self.assertIn(name, text)
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
        self.assertEqual(values['hlr_request_duration_seconds_bucket{le="+Inf"}'],
                         values["hlr_request_duration_seconds_count"])
        self.assertEqual(values['hlr_batch_size_bucket{le="+Inf"}'], values["hlr_batch_size_count"])


class Token(unittest.TestCase):
    def test_the_api_needs_the_token_and_health_does_not(self):
        d = Models.get()
        token = os.path.join(d, "token")
        with open(token, "w") as f:
            f.write("s3cret-token-42\n")
        s = Server("--model", "digits=" + os.path.join(d, "mlp0.hlr"), "--token-file", token)
        try:
            self.assertEqual(s.json("GET", "/v1/models")[0], 401)
            status, h, _ = s.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong-token-42"})
            self.assertEqual((status, h.get("WWW-Authenticate")), (401, "Bearer"))
            self.assertEqual(s.json("GET", "/v1/models", headers={"Authorization": "Bearer s3cret-token-42"})[0], 200)
            body = png(mnist_digits(1)[0][0])
            self.assertEqual(s.recognize(body)[0], 401)
            status, r = s.json("POST", "/v1/recognize", body, {"Content-Type": "image/png",
                                                               "Authorization": "Bearer s3cret-token-42"})
            self.assertEqual(status, 200, r)  # one model: ?model= may be left out
            self.assertEqual(s.json("GET", "/healthz")[0], 200)
        finally:
            s.stop()


def on_its_way(port):
    """A recognize request whose body has not arrived yet (a socket to close): while it is on its way, a
    batch waits for it up to --wait-us, so that another request is held in flight that long."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\n")
    time.sleep(0.05)
    return c


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.dir = Models.get()
        self.live = os.path.join(self.dir, "live.hlr")
        shutil.copy(os.path.join(self.dir, "mlp0.hlr"), self.live)
        self.body = png(mnist_digits(1)[0][0])

    def test_sighup_reloads_all_or_nothing_and_in_flight_requests_finish(self):
        s = Server("--model", "digits=" + self.live, "--wait-us", 300000)  # each batch waits 0.3 s
        try:
            first = s.recognize(self.body)[1]["top"]
            shutil.copy(os.path.join(self.dir, "mlp1.hlr"), self.live)
            slow = {}
            waiting = on_its_way(s.port)
            t = threading.Thread(target=lambda: slow.update(r=s.recognize(self.body)))
            t.start()
            time.sleep(0.1)  # the request waits in its batch ...
            s.p.send_signal(signal.SIGHUP)  # ... while the models are swapped
            t.join()
            waiting.close()
            self.assertEqual(slow["r"][0], 200)
            self.assertEqual(slow["r"][1]["top"], first)  # answered by the model it started with
            for _ in range(100):
                if s.metric('hlr_reloads_total{result="ok"}') == 1:
                    break
                time.sleep(0.05)
            second = s.recognize(self.body)[1]["top"]
            self.assertNotEqual(second, first)
            # a damaged file: the reload fails, the models loaded before keep serving
            with open(self.live, "r+b") as f:
                f.seek(100)
                f.write(b"\xff" * 64)
            s.p.send_signal(signal.SIGHUP)
            for _ in range(100):
                if s.metric('hlr_reloads_total{result="failed"}') == 1:
                    break
                time.sleep(0.05)
            self.assertEqual(s.metric('hlr_reloads_total{result="failed"}'), 1)
            self.assertEqual(s.recognize(self.body)[1]["top"], second)
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("reloaded 1 model", err)
        self.assertIn("reload failed, still serving the models loaded before", err)

    def test_sigterm_drains_in_flight_requests_and_exits_0(self):
        s = Server("--model", "digits=" + self.live, "--wait-us", 500000)
        got = {}
        waiting = on_its_way(s.port)
        t = threading.Thread(target=lambda: got.update(r=s.recognize(self.body)))
        t.start()
        time.sleep(0.15)  # in its batch, waiting
        s.p.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        waiting.close()  # the other client gives up
        rc, err = s.stop()
        t.join()
        self.assertEqual(got["r"][0], 200)
        self.assertEqual((rc, err.strip()), (0, "hlr-serve: stopped"))

    def test_start_up_failures_are_one_line_and_non_zero(self):
        cases = [
            (["--model", "digits"], 2, "expected NAME=FILE"),
            (["--model", "a b=x.hlr"], 2, "letters, digits"),
            (["--model", "a=" + self.live, "--model", "a=" + self.live], 2, "given twice"),
            ([], 2, "no --model"),
            (["--model", "a=/nonexistent/m.hlr"], 1, "/nonexistent/m.hlr"),
            (["--model", "a=" + self.live, "--bind", "localhost"], 2, "not an IPv4 or IPv6 address"),
            (["--model", "a=" + self.live, "--batch", "0"], 2, "--batch 0 is out of range"),
            (["--model", "a=" + self.live, "--token-file", "/nonexistent"], 2, "cannot read --token-file"),
        ]
        for args, want, words in cases:
            rc, out, err = run("hlr-serve", "--port", "0", *args)
            self.assertEqual(rc, want, (args, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(words, err)
        # a port in use
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        rc, out, err = run("hlr-serve", "--model", "a=" + self.live, "--port", busy.getsockname()[1])
        busy.close()
        self.assertEqual(rc, 1)
        self.assertIn("cannot listen on 127.0.0.1 port", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

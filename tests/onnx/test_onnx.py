"""ONNX export and import: every bin/hlr-mnist model, the CRNN of bin/hlr-read and models of the remaining layers,
exported by bin/hlr-export or Model.export_onnx, pass Debian's python3-onnx checker (with shape
inference) and give, in ONNX Runtime (npm onnxruntime-node, CPU), the logits libhlr gives within 1e-4
(max abs) on 1,000 MNIST test images (200 random inputs for the synthetic models); every exported file
without attention imports back (hlr.import_onnx) to the same logits bit for bit, and the PyTorch exports
in tests/fixtures/onnx import to PyTorch's outputs within 1e-5 relative.

Run by `make onnx-test` (part of `make test`), which installs onnxruntime-node into build/node; without
node the ONNX Runtime half is skipped with a printed reason:

    HLR_BIN=bin HLR_LIBRARY=lib/libhlr.so.0 HLR_DATA_DIR=data/mnist HLR_NODE_PATH=build/node/node_modules \\
        PYTHONPATH=python python3 tests/onnx/test_onnx.py
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import hlr  # noqa: E402

BIN = os.path.abspath(os.environ.get("HLR_BIN") or os.path.join(ROOT, "bin"))
DATA = os.path.abspath(os.environ.get("HLR_DATA_DIR") or os.path.join(ROOT, "data", "mnist"))
NODE_PATH = os.path.abspath(os.environ.get("HLR_NODE_PATH") or os.path.join(ROOT, "build", "node", "node_modules"))
TOLERANCE = 1e-4

try:
    import onnx
    import onnx.checker
except ImportError:  # scripts/install-deps.sh installs python3-onnx
    onnx = None


def run(program, *args):
    p = subprocess.run([os.path.join(BIN, program)] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    return p.returncode, p.stdout.decode(), p.stderr.decode("utf-8", "replace")


def mnist_images(n):
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        px = np.frombuffer(f.read(16 + 784 * n)[16:], dtype=np.uint8)
    return (px.astype(np.float32) / 255).reshape(n, 1, 28, 28)


def node_reason():
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.path.isdir(os.path.join(NODE_PATH, "onnxruntime-node")):
        return "onnxruntime-node is not in %s (make onnx-test installs it)" % NODE_PATH
    return None


class Export(unittest.TestCase):
    """Collects (name, onnx file, input, libhlr's logits), then runs ONNX Runtime once for all."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.cases = []
        cls.dtypes = {}
        cls.lengths = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def add_case(self, name, model, x, onnx_path=None, lengths=None):
        if onnx_path is None:
            onnx_path = self.path(name + ".onnx")
            model.export_onnx(onnx_path)
        y = model.forward(x, lengths=lengths)
        if lengths is not None:
            np.ascontiguousarray(lengths, dtype=np.int32).tofile(self.path(name + ".len"))
            self.lengths[name] = self.path(name + ".len")
        if onnx is not None:
            m = onnx.load(onnx_path)
            onnx.checker.check_model(m, full_check=True)
            self.assertEqual([o.name for o in m.graph.output], ["logits"])
            self.assertEqual(m.graph.input[0].type.tensor_type.shape.dim[0].dim_param, "N")
        np.ascontiguousarray(x).tofile(self.path(name + ".in"))
        self.cases.append((name, onnx_path, tuple(x.shape), y))

    def test_1_mnist_models_through_hlr_export(self):
        x = mnist_images(1000)
        for name in ("mlp", "cnn", "cnn-bn", "lstm", "gru", "hybrid", "transformer"):
            model_file = self.path(name + ".hlr")
            rc, out, err = run("hlr-mnist", "train", "--model", name, "--epochs", "1", "--limit", "1000",
                               "--test-limit", "100", "--seed", "0", "--data", DATA, "--save", model_file)
            self.assertEqual(rc, 0, err)
            rc, out, err = run("hlr-export", model_file, self.path(name + ".onnx"))
            self.assertEqual(rc, 0, err)
            self.assertIn("ONNX opset 17", out)
            model = hlr.load(model_file)
            self.add_case(name, model, x, self.path(name + ".onnx"))
            if onnx is not None:
                meta = {p.key: p.value for p in onnx.load(self.path(name + ".onnx")).metadata_props}
                self.assertEqual(json.loads(meta["class_names"]), [str(k) for k in range(10)])
                self.assertEqual(float(meta["temperature"]), 1.0)
                self.assertEqual(meta["model"], name)

    def test_2_the_crnn_of_hlr_read(self):
        model_file = self.path("crnn.hlr")
        rc, out, err = run("hlr-read", "train", "--epochs", "1", "--train-strings", "64", "--test-strings", "16",
                           "--max-len", "3", "--data", DATA, "--save", model_file)
        self.assertEqual(rc, 0, err)
        model = hlr.load(model_file)
        shape = model.input_shape
        rng = np.random.default_rng(1)
        self.add_case("crnn", model, rng.random((50,) + tuple(shape), dtype=np.float32))

    def test_2b_the_language_identifier_of_hlr_langid(self):
        model_file = self.path("langid.hlr")
        rc, out, err = run("hlr-langid", "train", "--epochs", "1", "--words", "2000", "--save", model_file)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("hlr-export", model_file, self.path("langid.onnx"))
        self.assertEqual(rc, 0, err)
        model = hlr.load(model_file)
        vocab = model.state_dict()["0.weight"].shape[0]
        T = model.input_shape[0]
        rng = np.random.default_rng(3)
        lengths = rng.integers(1, T + 1, 300).astype(np.int32)
        x = rng.integers(1, vocab, (300, T)).astype(np.int32)
        x[np.arange(T)[None, :] >= lengths[:, None]] = 0  # padded as hlr-langid pads
        self.add_case("langid", model, x, self.path("langid.onnx"), lengths=lengths)
        self.dtypes["langid"] = "int32"

    def test_3_the_other_layers(self):
        L = hlr.layers
        rng = np.random.default_rng(0)
        models = {
            # convolutions with stride, dilation and groups; both pools; leaky ReLU, GELU, sigmoid, tanh
            "conv-variants": ([L.Conv2d(1, 8, 3, stride=2, padding=1), L.LeakyReLU(0.1), L.Conv2d(8, 8, 3, padding=2,
                                                                                                   dilation=2, groups=4),
                               L.BatchNorm2d(8), L.GELU(), L.AvgPool2d(3, stride=2, padding=1), L.Conv2d(8, 6, 1),
                               L.Sigmoid(), L.GlobalAvgPool2d(), L.Dense(6, 5), L.Tanh(), L.Dense(5, 4),
                               L.Softmax()], (1, 12, 12)),
            # a stacked bidirectional GRU's final states; an LSTM's last step
            "bigru": ([L.ImageRows(), L.GRU(10, 6, num_layers=2, bidirectional=True), L.Dense(12, 3)], (1, 7, 10)),
            "lstm-steps": ([L.ImageRows(), L.LSTM(10, 5, num_layers=2, return_sequences=True), L.SeqLast(),
                            L.Dense(5, 3)], (1, 7, 10)),
            # multi-head attention with its output projection, layer norm, max and first step
            "attention": ([L.ImageRows(), L.MultiheadAttention(8, 2), L.LayerNorm(8), L.SeqMax(), L.Dense(8, 3)],
                          (1, 6, 8)),
            "attention-first": ([L.FeatureMapRows(), L.MultiheadAttention(8, 4, bias=False, out_proj=False),
                                 L.SeqFirst(), L.Dense(8, 2)], (2, 5, 4)),
            # rectangular poolings (a CRNN's 2 x 1; a 3 x 2 average with per-axis stride and padding), columns
            "rect-pools": ([L.Conv2d(1, 4, 3, padding=1), L.ReLU(), L.MaxPool2d((2, 1)),
                            L.AvgPool2d((3, 2), stride=(1, 2), padding=(1, 1)), L.FeatureMapColumns(),
                            L.Dense(20, 3)], (1, 10, 9)),
            "columns-dense": ([L.FeatureMapColumns(), L.Dense(6, 4), L.SeqMean(), L.BatchNorm1d(4), L.ReLU(),
                               L.Dropout(0.5), L.Dense(4, 2)], (2, 3, 5)),
        }
        for name, (layers, shape) in models.items():
            model = hlr.Model(layers, input_shape=shape, seed=3)
            # batch norm with statistics that are not the identity: a few training steps move them
            if any(isinstance(l, (L.BatchNorm1d, L.BatchNorm2d)) for l in layers):
                xs = rng.random((64,) + shape, dtype=np.float32)
                model.fit(xs, rng.integers(0, model.output_shape[-1], 64).astype(np.int32), epochs=2,
                          batch_size=16, verbose=0)
            self.add_case(name, model, rng.standard_normal((200,) + shape).astype(np.float32))
            data = model.export_onnx()  # the same bytes in memory
            with open(self.path(name + ".onnx"), "rb") as f:
                self.assertEqual(data, f.read())

    def test_4_token_ids_and_masks(self):
        L = hlr.layers
        rng = np.random.default_rng(2)
        # the language identifier's two shapes: token ids of words of 2 to 9 letters, an embedding, a
        # bidirectional GRU read at each word's end, or an LSTM's steps averaged over each word's letters
        x = rng.integers(0, 30, (200, 9)).astype(np.int32)
        lengths = rng.integers(2, 10, 200).astype(np.int32)
        m = hlr.Model([L.Embedding(30, 8, padding_idx=0), L.GRU(8, 6, bidirectional=True), L.Dense(12, 5)],
                      input_shape=(9,), seed=4)
        self.add_case("tokens-bigru", m, x, lengths=lengths)
        m = hlr.Model([L.Embedding(30, 8, padding_idx=0), L.LSTM(8, 6, bidirectional=True, return_sequences=True),
                       L.SeqMean(), L.Dense(12, 5)], input_shape=(9,), seed=6)
        self.add_case("tokens-mean", m, x, lengths=lengths)
        m = hlr.Model([L.Embedding(30, 8), L.Dense(8, 8), L.SeqMax(), L.Dense(8, 5)], input_shape=(9,), seed=7)
        self.add_case("tokens-max", m, x, lengths=lengths)
        # each word's last letter after a bidirectional LSTM (one-letter words included)
        m = hlr.Model([L.Embedding(30, 8, padding_idx=0), L.LSTM(8, 6, bidirectional=True, return_sequences=True),
                       L.SeqLast(), L.Dense(12, 5)], input_shape=(9,), seed=8)
        self.add_case("tokens-last", m, x, lengths=np.where(np.arange(200) % 7 == 0, 1, lengths).astype(np.int32))
        for name in ("tokens-bigru", "tokens-mean", "tokens-max", "tokens-last"):
            self.dtypes[name] = "int32"
        # causal self-attention, alone and in an encoder block, after sinusoidal positions
        m = hlr.Model([L.ImageRows(), L.PositionalEncoding(16, 8, kind="sinusoidal"),
                       L.MultiheadAttention(8, 2, causal=True), L.TransformerEncoderLayer(8, 2, 16, causal=True),
                       L.SeqLast(), L.Dense(8, 3)], input_shape=(1, 7, 8), seed=5)
        self.add_case("causal", m, rng.standard_normal((200, 1, 7, 8)).astype(np.float32))
        # a layer that needs lengths is refused by name, and nothing is written
        m = hlr.Model([L.ImageRows(), L.MultiheadAttention(8, 2, key_padding=True), L.SeqMean()], input_shape=(1, 4, 8))
        with self.assertRaises(hlr.HlrError) as e:
            m.export_onnx(self.path("no.onnx"))
        self.assertIn("layer 1 (multihead_attention): key-padding masks", str(e.exception))
        self.assertFalse(os.path.exists(self.path("no.onnx")))

    def test_5_exported_files_import_back_to_the_same_outputs(self):
        self.assertGreaterEqual(len(self.cases), 20)
        for name, path, shape, want in self.cases:
            dtype = np.int32 if self.dtypes.get(name) == "int32" else np.float32
            x = np.fromfile(self.path(name + ".in"), dtype=dtype).reshape(shape)
            lengths = np.fromfile(self.lengths[name], dtype=np.int32) if name in self.lengths else None
            with open(path, "rb") as f:
                for source in (path, f.read()):
                    model = hlr.import_onnx(source)
                    got = model.forward(x, lengths=lengths)
                    # the same layers with the same parameters: the same bits
                    self.assertEqual(np.max(np.abs(got - want)), 0.0, name)
            print("%-16s imported back: the same logits, bit for bit" % name, file=sys.stderr)

    def test_6_pytorch_exports_import(self):
        """Fixtures from tests/fixtures/make_onnx_fixtures.py: torch.onnx.export (PyTorch 1.13) of small
        models, with PyTorch's own outputs."""
        folder = os.path.join(ROOT, "tests", "fixtures", "onnx")
        names = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".onnx"))
        self.assertEqual(names, ["bilstm", "cnn", "embedding-gru", "encoder", "encoder-static", "gelu-layernorm-mean",
                                 "gru", "lstm", "mha", "mha-nobias", "mlp"])
        for name in names:
            with open(os.path.join(folder, name + ".json")) as f:
                shapes = json.load(f)
            dtype = np.int64 if shapes.get("dtype") == "int64" else np.float32
            x = np.fromfile(os.path.join(folder, name + ".in"), dtype=dtype).reshape(shapes["input"])
            if dtype == np.int64:
                x = x.astype(np.int32)  # libhlr's token ids are int32
            want = np.fromfile(os.path.join(folder, name + ".out"), dtype=np.float32).reshape(shapes["output"])
            got = hlr.import_onnx(os.path.join(folder, name + ".onnx")).forward(x)
            self.assertEqual(got.shape, want.shape, name)
            bad = np.abs(got - want) > 1e-5 * np.abs(want) + 1e-6
            self.assertFalse(bad.any(), "%s: %s" % (name, np.argwhere(bad)[:5]))
            print("%-20s from PyTorch %s: max |libhlr - PyTorch| = %.2e" % (name, shapes["torch"],
                                                                         float(np.max(np.abs(got - want)))),
                  file=sys.stderr)

    def test_6b_pytorch_attention_near_misses_are_refused(self):
        """nn.MultiheadAttention is read from the exporter's whole pattern: a file whose scale, slices or
        head split differ from attention's is refused with a message naming the node, never read wrongly."""
        if onnx is None:
            self.skipTest("python3-onnx is not installed")
        from onnx import numpy_helper
        path = os.path.join(ROOT, "tests", "fixtures", "onnx", "mha.onnx")

        def scalar_feeding(g, op):  # the Constant node read as the second input of the first `op`
            node = next(n for n in g.node if n.op_type == op and n.name.startswith("/a/"))
            return next(c for c in g.node if c.op_type == "Constant" and c.output[0] == node.input[1])

        def refused(change, why):
            m = onnx.load(path)
            change(m.graph)
            with self.assertRaises(hlr.HlrError, msg=why) as e:
                hlr.import_onnx(m.SerializeToString())
            self.assertIn("nn.MultiheadAttention", str(e.exception), why)
            self.assertIn("node ", str(e.exception), why)

        def set_const(node, value):
            t = node.attribute[0].t
            t.CopyFrom(numpy_helper.from_array(np.array(value, dtype=numpy_helper.to_array(t).dtype), t.name))

        # the query scaled by 1/3 instead of 1/sqrt(4)
        refused(lambda g: set_const(next(c for c in g.node if c.op_type == "Constant" and
                                         numpy_helper.to_array(c.attribute[0].t).dtype == np.float32),
                                    3.0), "scale")
        # two heads of 4 computed as four of 2: E / 4 in the head size
        refused(lambda g: set_const(scalar_feeding(g, "Div"), 4), "head split")
        # the query slice ends one column late
        refused(lambda g: set_const(next(c for c in g.node if c.op_type == "Constant" and c.output[0] ==
                                         next(n for n in g.node if n.op_type == "Add" and "Gather" in n.input[0])
                                         .input[1]), 5), "slices")

    def test_7_onnx_runtime_agrees(self):
        reason = node_reason()
        if reason:
            print("ONNX Runtime comparison skipped: " + reason, file=sys.stderr)
            self.skipTest(reason)
        self.assertGreaterEqual(len(self.cases), 20)
        jobs = [{"model": path, "input": self.path(name + ".in"), "shape": list(shape),
                 "output": self.path(name + ".out"), "dtype": self.dtypes.get(name, "float32"),
                 "lengths": self.lengths.get(name)}
                for name, path, shape, _ in self.cases]
        with open(self.path("jobs.json"), "w") as f:
            json.dump(jobs, f)
        p = subprocess.run(["node", os.path.join(ROOT, "tests", "onnx", "ort_run.cjs"), self.path("jobs.json")],
                           env=dict(os.environ, NODE_PATH=NODE_PATH), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        for name, _, shape, want in self.cases:
            with open(self.path(name + ".out.json")) as f:
                dims = json.load(f)
            got = np.fromfile(self.path(name + ".out"), dtype=np.float32).reshape(dims)
            self.assertEqual(got.shape, want.shape, name)
            err = float(np.max(np.abs(got - want)))
            print("%-16s %5d inputs: max |ONNX Runtime - libhlr| = %.2e" % (name, shape[0], err), file=sys.stderr)
            self.assertLessEqual(err, TOLERANCE, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)

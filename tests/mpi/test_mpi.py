"""Data-parallel training through libhlr-mpi under Open MPI's mpirun (`make mpi-test`, part of
`make test` when Open MPI is installed).

- tests/mpi/mpi_fit.c (an MLP on generated data) with 2 and 4 processes: every rank ends with
  bit-identical parameters, and against one process with the same global batch the parameters
  agree within 1e-5 (relative) and the loss curves match;
- a rank that dies in the middle of training ends the job with an error, without a hang;
- `mpirun -np 2 bin/hlr-mnist train --distributed` on small synthetic idx files: rank 0 alone
  prints and saves, and the saved file resumes with another number of processes;
- `mpirun -np 2 bin/hlr-read train --distributed` (a hand-written loop: the C API's broadcast
  and all-reduce), on MNIST when `make test` has fetched it.
"""
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
from test_errors import write_idx  # noqa: E402

MPI_FIT = os.environ.get("HLR_MPI_FIT", os.path.join(ROOT, "build", "mpi", "mpi_fit"))
BIN = os.environ.get("HLR_BIN", os.path.join(ROOT, "bin"))
# As root (CI, containers) Open MPI wants to be told; more processes than cores is fine here.
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]


def mpirun(n, *args, timeout=120):
    cmd = (MPIRUN + ["-np", str(n)] if n else []) + [str(a) for a in args]
    env = dict(os.environ, HLR_NUM_THREADS="1")
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, env=env)


def floats(path):
    with open(path, "rb") as f:
        raw = f.read()
    return struct.unpack("%df" % (len(raw) // 4), raw)


def losses(path):
    with open(path) as f:
        return [float(v) for v in f.read().split()]


class DataParallel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_ranks_agree_bit_for_bit_and_with_one_process(self):
        one = os.path.join(self.tmp.name, "one")
        p = mpirun(0, MPI_FIT, one, 64, 3)  # alone: one process of one, batch 64
        self.assertEqual(p.returncode, 0, p.stderr)
        ref, ref_loss = floats(one + ".0"), losses(one + ".0.loss")
        self.assertEqual(len(ref_loss), 3)
        for n in (2, 4):
            out = os.path.join(self.tmp.name, "np%d" % n)
            p = mpirun(n, MPI_FIT, out, 64 // n, 3)  # the same global batch of 64
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out + ".0", "rb") as f:
                rank0 = f.read()
            for r in range(1, n):
                with open("%s.%d" % (out, r), "rb") as f:
                    self.assertEqual(f.read(), rank0, "%d processes: rank %d's parameters differ from rank 0's"
                                     % (n, r))
            got = floats(out + ".0")
            self.assertEqual(len(got), len(ref))
            worst = max(abs(a - b) / max(abs(b), 1e-2) for a, b in zip(got, ref))
            self.assertLess(worst, 1e-5, "%d processes against one: relative difference %g" % (n, worst))
            for a, b in zip(losses(out + ".0.loss"), ref_loss):
                self.assertAlmostEqual(a, b, delta=1e-5 * abs(b), msg="%d processes: loss curve" % n)

    def test_a_dead_rank_ends_the_job(self):
        out = os.path.join(self.tmp.name, "dead")
        p = mpirun(2, MPI_FIT, out, 32, 3, 1, timeout=60)  # rank 1 exits in epoch 2; must not hang
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("exited with non-zero status", p.stdout + p.stderr)
        self.assertFalse(os.path.exists(out + ".0"), "rank 0 finished training without rank 1")

    def test_hlr_mnist_distributed_prints_once_saves_once_and_resumes(self):
        data = os.path.join(self.tmp.name, "idx")
        os.mkdir(data)
        write_idx(data, "train", 400)
        write_idx(data, "t10k", 100)
        model = os.path.join(self.tmp.name, "d.hlr")
        hlr_mnist = os.path.join(BIN, "hlr-mnist")
        p = mpirun(2, hlr_mnist, "train", "--distributed", "--epochs", "2", "--batch", "16", "--data", data,
                   "--save", model)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.count("test accuracy:"), 1, p.stdout)  # rank 0 alone prints
        self.assertIn("data-parallel: 2 processes x batch 16 = global batch 32", p.stdout)
        self.assertRegex(p.stdout, r"all-reduce \(rank 0\): \d+ calls")
        self.assertEqual(p.stdout.count("saved "), 1)
        self.assertTrue(os.path.exists(model))
        # resume with 4 processes, then alone
        p = mpirun(4, hlr_mnist, "resume", model, "--distributed", "--epochs", "1", "--data", data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("data-parallel: 4 processes", p.stdout)
        self.assertRegex(p.stdout, r"(?m)^test accuracy: \d+\.\d\d%$")
        p = mpirun(0, hlr_mnist, "resume", model, "--epochs", "1", "--data", data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("data-parallel", p.stdout)
        # batch norm synchronised over the processes (the convolutional model, its pooling fused)
        p = mpirun(2, hlr_mnist, "train", "--distributed", "--sync-batchnorm", "--model", "cnn-bn", "--epochs", "1",
                   "--batch", "16", "--data", data)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^test accuracy: \d+\.\d\d%$")

    def test_hlr_read_distributed(self):
        data = os.environ.get("HLR_DATA_DIR", os.path.join(ROOT, "data", "mnist"))
        if not os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")):
            self.skipTest("no MNIST in %s (make data)" % data)
        model = os.path.join(self.tmp.name, "r.hlr")
        p = mpirun(2, os.path.join(BIN, "hlr-read"), "train", "--distributed", "--train-strings", "256",
                   "--test-strings", "32", "--epochs", "1", "--batch", "16", "--max-len", "3", "--data", data,
                   "--save", model, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("data-parallel: 2 processes x batch 16 = global batch 32", p.stdout)
        self.assertEqual(p.stdout.count("test CER:"), 1, p.stdout)
        self.assertEqual(p.stdout.count("saved "), 1)
        self.assertRegex(p.stdout, r"all-reduce \(rank 0\): 8 calls")  # 256 strings / 32 a step
        p = mpirun(0, os.path.join(BIN, "hlr-read"), "generate", "--part", "test", "--distributed")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--distributed is for train --task digits", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Shared helpers of the peer benchmarks (bench/peers/*.py): options, timing
(the same scheme as bench/steps.c: warm-up, then the median of `samples`
samples, each repeating the step until `min_time` seconds have passed),
OpenBLAS thread control and identification, MNIST IDX loading, peak RSS.

Benchmark-only code: nothing in the library depends on it."""
import argparse
import ctypes
import ctypes.util
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np

DX, DH = 784, 1000
LAMBDA = 0.1      # CAE penalty weight (our default)
NOISE = 0.25      # DAE-b: fraction of inputs zeroed (our default)
STEP_LR = 1e-4    # SGD rate of the timed steps (as bench/steps.c)
EPOCH_LR = 0.01   # SGD rate of the epoch (as bench/steps.c --epoch)


def init_range():
    """U(+-4 sqrt(6/(dx+dh))): our initialisation of a sigmoid layer."""
    return 4.0 * (6.0 / (DX + DH)) ** 0.5


def parse_args(prog, models, doc):
    ap = argparse.ArgumentParser(prog=prog, description=doc)
    ap.add_argument("--steps", action="store_true", help="time the training steps")
    ap.add_argument("--epoch", action="store_true", help="one epoch of CAE pretraining on MNIST")
    ap.add_argument("--check", nargs="?", const="", metavar="DIR",
                    help="correctness checks (DIR: a bench/steps --dump directory)")
    ap.add_argument("--quick", action="store_true",
                    help="5 samples of >= 2 ms; epoch limited to 2000 examples")
    ap.add_argument("--batches", default="1,10,20,100,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default=",".join(models))
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--min-time", type=float, default=0.0)
    ap.add_argument("--limit", type=int, default=-1, help="epoch: first N examples (0 = all)")
    ap.add_argument("--machine", action="store_true", help="print '@' lines for report.py")
    a = ap.parse_args()
    a.batches = [int(v) for v in a.batches.split(",") if v]
    a.threads = [int(v) for v in a.threads.split(",") if v]
    a.models = [m for m in a.models.split(",") if m]
    for m in a.models:
        if m not in models:
            ap.error("unknown model %r (have %s)" % (m, ", ".join(models)))
    if not (a.steps or a.epoch or a.check is not None):
        a.steps = a.epoch = True
    samples, min_time, limit = 7, 0.1, 0
    if a.quick:
        samples, min_time, limit = 5, 0.002, 2000
    a.samples = a.samples or samples
    a.min_time = a.min_time or min_time
    a.limit = limit if a.limit < 0 else a.limit
    return a


def time_call(f, samples, min_time):
    """Median seconds per call of f() over `samples` samples after 3 warm-up calls."""
    for _ in range(3):
        f()
    ts = []
    for _ in range(samples):
        reps = 0
        t0 = time.perf_counter()
        while True:
            f()
            reps += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        ts.append(el / reps)
    ts.sort()
    return ts[len(ts) // 2]


_openblas = None


def openblas():
    """The OpenBLAS library this process uses (NumPy's and torch's BLAS on
    Debian: libblas.so.3 is a wrapper over libopenblas.so.0), or None."""
    global _openblas
    if _openblas is None:
        for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                _openblas = lib
                break
            except (OSError, AttributeError):
                continue
        else:
            _openblas = False
    return _openblas or None


def set_blas_threads(n):
    lib = openblas()
    if lib:
        lib.openblas_set_num_threads(int(n))


def blas_info():
    lib = openblas()
    if not lib:
        return "BLAS: OpenBLAS not found"
    return "OpenBLAS kernel %s (%s), OPENBLAS_CORETYPE=%s" % (
        lib.openblas_get_corename().decode(), lib.openblas_get_config().decode(),
        os.environ.get("OPENBLAS_CORETYPE", "(unset)"))


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def mnist_train(limit=0):
    """The first 50 000 MNIST training images (our "train" split) as float32
    in [0,1], n x 784, from $CAE_DATA_DIR or ./data (mnist/ under it)."""
    d = os.environ.get("CAE_DATA_DIR") or "data"
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        p = os.path.join(d, "mnist", name)
        if os.path.exists(p):
            break
    else:
        sys.exit("%s: no MNIST under %s/mnist (scripts/fetch-data.sh, or set CAE_DATA_DIR)"
                 % (sys.argv[0], d))
    img = _read_idx(p)[:50000]
    if limit:
        img = img[:limit]
    return (img.reshape(len(img), DX).astype(np.float32) / np.float32(255))


def rel_err(a, b):
    """||a - b|| / ||b|| (|a - b| for a zero b)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    nb = np.linalg.norm(b)
    d = np.linalg.norm(a - b)
    return d / nb if nb > 0 else d


def emit_step(args, peer, model, B, thr, sec):
    if args.machine:
        print("@step\t%s\t%s\t%d\t%d\t%.3f\t%.3f" % (peer, model, B, thr, B / sec, sec * 1e6))
    else:
        print("%-8s %5d %4d %10.1f %11.0f" % (model, B, thr, sec * 1e6, B / sec))
    sys.stdout.flush()


def emit_rss(args, peer):
    if args.machine:
        print("@rss\t%s\t%d" % (peer, peak_rss_kb()))
    else:
        print("# peak RSS of this process: %.1f MiB" % (peak_rss_kb() / 1024))

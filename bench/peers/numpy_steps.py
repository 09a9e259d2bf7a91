#!/usr/bin/python3
"""bench/peers/numpy_steps.py - the CAE (and plain AE) training step in NumPy
with hand-derived gradients, plain SGD; W is 784 x 1000 and tied (a = x W + b,
logits = h W^T + c), as in our library and torch_steps.py.

Forward, for a batch x (B x 784):
  a = x W + b,  h = sigmoid(a),  z = h W^T + c,  s = h (1 - h),  n_j = sum_i W_ij^2
  rec = sum(softplus(z) - x z) / B         (BCE with logits, summed over pixels)
  pen = sum(s^2 n) / B                      (mean over the batch of ||J_f(x)||_F^2)
  loss = rec + lambda pen
Backward:
  dz = (sigmoid(z) - x) / B;   dc = sum_b dz
  dh = dz W + lambda (2/B) s (1 - 2h) n     (decoder path + penalty through s)
  da = dh s;                   db = sum_b da
  dW = x^T da                  (encoder use of W)
     + dz^T h                  (decoder use of W: the tied weight's 2nd term)
     + lambda (2/B) W diag(sum_b s^2)       (penalty through n_j)

Sections (--steps when none is named):
  --steps       samples/s at each B and thread count (step + SGD update)
  --check [DIR] the gradients against central finite differences (float64),
                against torch autograd (if torch is installed) and, with DIR
                (bench/steps --dump DIR), against our library's gradients
Threads: the BLAS products use OpenBLAS's threads (OPENBLAS_NUM_THREADS, or set
here through openblas_set_num_threads); element-wise NumPy runs on one thread.
"""
import sys

import numpy as np

import common as C

MODELS = ("cae", "ae")


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def forward_backward(W, b, c, x, lam):
    """Loss and (dW, db, dc) of the CAE objective (lam = 0: the plain AE)."""
    B = x.shape[0]
    h = sigmoid(x @ W + b)
    z = h @ W.T + c
    rec = (np.logaddexp(0, z) - x * z).sum() / B
    dz = (sigmoid(z) - x) / B
    dh = dz @ W
    dW = dz.T @ h
    loss = rec
    if lam:
        s = h * (1 - h)
        n = (W * W).sum(0)
        s2 = s * s
        loss = rec + lam * (s2 @ n).sum() / B
        dh += (2 * lam / B) * s * (1 - 2 * h) * n
        dW += (2 * lam / B) * W * s2.sum(0)
    da = dh * (h * (1 - h))
    dW += x.T @ da
    return loss, dW, da.sum(0), dz.sum(0)


def make_step(model, W, b, c, lr):
    lam = C.LAMBDA if model == "cae" else 0.0

    def step(x):
        nonlocal W, b, c
        loss, dW, db, dc = forward_backward(W, b, c, x, lam)
        W -= lr * dW
        b -= lr * db
        c -= lr * dc
        return loss

    return step


def new_layer(rng, dtype=np.float32):
    r = C.init_range()
    return (rng.uniform(-r, r, (C.DX, C.DH)).astype(dtype), np.zeros(C.DH, dtype),
            np.zeros(C.DX, dtype))


def run_steps(args):
    rng = np.random.default_rng(1)
    xs = rng.random((max(args.batches), C.DX), dtype=np.float32)
    if not args.machine:
        print("# numpy %s: %s" % (np.__version__, C.blas_info()))
        print("# median of %d samples of >= %g s" % (args.samples, args.min_time))
        print("%-8s %5s %4s %10s %11s" % ("model", "B", "thr", "us/step", "samples/s"))
    for thr in args.threads:
        C.set_blas_threads(thr)
        for B in args.batches:
            x = np.ascontiguousarray(xs[:B])
            for model in args.models:
                step = make_step(model, *new_layer(rng), C.STEP_LR)
                sec = C.time_call(lambda: step(x), args.samples, args.min_time)
                C.emit_step(args, "numpy", model, B, thr, sec)


def check(args, tol=1e-4):
    """Returns the number of failed comparisons."""
    fails = 0
    rng = np.random.default_rng(5)
    B = 8
    W, b, c = new_layer(rng, np.float64)
    b = rng.uniform(-0.5, 0.5, C.DH)
    c = rng.uniform(-0.5, 0.5, C.DX)
    x = rng.random((B, C.DX))
    print("check: numpy's hand-derived gradients (B=%d, float64), relative errors, "
          "tolerance %g" % (B, tol))
    for model, lam in (("cae", C.LAMBDA), ("ae", 0.0)):
        loss, dW, db, dc = forward_backward(W, b, c, x, lam)
        # central finite differences at 12 coordinates of each tensor
        worst = 0.0
        for P, G in ((W, dW), (b, db), (c, dc)):
            flat, gflat = P.reshape(-1), G.reshape(-1)
            for k in rng.choice(flat.size, 12, replace=False):
                keep, eps = flat[k], 1e-5
                flat[k] = keep + eps
                lp = forward_backward(W, b, c, x, lam)[0]
                flat[k] = keep - eps
                lm = forward_backward(W, b, c, x, lam)[0]
                flat[k] = keep
                fd = (lp - lm) / (2 * eps)
                worst = max(worst, abs(fd - gflat[k]) / max(abs(fd), abs(gflat[k]), 1e-3))
        ok = worst <= tol
        fails += not ok
        print("  %-4s vs finite differences (36 coordinates): worst rel %.1e  %s"
              % (model, worst, "ok" if ok else "FAIL"))
        try:
            import torch
            import torch_steps as T
        except ImportError:
            print("  %-4s vs torch autograd: skipped (no torch)" % model)
            continue
        L = T.Layer(dtype=torch.float64, W=torch.from_numpy(W), b=torch.from_numpy(b),
                    c=torch.from_numpy(c))
        loss_t, g_t = T.grads(T.LOSSES[model], L, torch.from_numpy(x))
        errs = [C.rel_err(loss, loss_t)] + [C.rel_err(a, e) for a, e in zip((dW, db, dc), g_t)]
        ok = all(e <= tol for e in errs)
        fails += not ok
        print("  %-4s vs torch autograd: loss %.1e dW %.1e db %.1e dc %.1e  %s"
              % (model, *errs, "ok" if ok else "FAIL"))
    if args.check:
        d = args.check
        ld = lambda name: np.load("%s/%s.npy" % (d, name))
        for ours, model, lam in (("cae-fused", "cae", C.LAMBDA), ("ae", "ae", 0.0)):
            got = forward_backward(ld("W"), ld("b"), ld("c"), ld("x"), lam)
            want = [ld(ours + ".loss")[0], ld(ours + ".dW"), ld(ours + ".db"), ld(ours + ".dc")]
            errs = [C.rel_err(a, e) for a, e in zip(got, want)]
            ok = all(e <= tol for e in errs)
            fails += not ok
            print("  %-4s (float32) vs our %s: loss %.1e dW %.1e db %.1e dc %.1e  %s"
                  % (model, ours, *errs, "ok" if ok else "FAIL"))
    return fails


def main():
    args = C.parse_args("numpy_steps.py", MODELS, __doc__.split("\n")[0])
    if "--epoch" in sys.argv:
        sys.exit("numpy_steps.py: no epoch section (the epoch is ours vs torch)")
    if args.check is not None and check(args):
        sys.exit(1)
    if args.steps:
        run_steps(args)
        C.emit_rss(args, "numpy")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""bench/peers/torch_steps.py - the pretraining steps of bench/steps.c written
in PyTorch the way users write them: tied W (784 x 1000, a = x W + b), sigmoid
encoder and decoder, BCE-with-logits summed over pixels and averaged over the
batch, the CAE penalty by its closed form, gradients by autograd, plain SGD
(torch.optim.SGD).

  cae    rec + lambda * mean_b sum_j (h(1-h))^2_bj sum_i W_ij^2, lambda = 0.1
  ae     rec
  dae-b  rec of the clean x from x with 25% of the pixels zeroed
  rbm    CD-1: F(v0) - F(vk) averaged over the batch, vk a Gibbs sample drawn
         under no_grad (so detached)

Sections (all of --steps and --epoch when none is named):
  --steps       samples/s at each B and thread count (step + SGD update)
  --epoch       one epoch of CAE pretraining on MNIST (50 000, B = 20, lr 0.01)
  --check DIR   our loss and gradients (bench/steps --dump DIR) against
                autograd on the same batch and W, in float32 and float64
Run with Debian's /usr/bin/python3 (python3-torch, scripts/install-bench-deps.sh).
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import common as C

# The name this run reports under: "torch" as configured by default, or run.sh's
# label for the tuned configuration (OMP_WAIT_POLICY=PASSIVE, a malloc that keeps memory).
PEER = os.environ.get("CAE_PEER_LABEL", "torch")

MODELS = ("cae", "ae", "dae-b", "rbm", "mlp")


class Layer:
    """One tied layer: W (784 x 1000), b (1000), c (784)."""

    def __init__(self, rbm=False, dtype=torch.float32, W=None, b=None, c=None):
        if W is None:
            if rbm:
                W = 0.01 * torch.randn(C.DX, C.DH, dtype=dtype)
            else:
                r = C.init_range()
                W = torch.empty(C.DX, C.DH, dtype=dtype).uniform_(-r, r)
            b = torch.zeros(C.DH, dtype=dtype)
            c = torch.zeros(C.DX, dtype=dtype)
        self.W = W.clone().requires_grad_()
        self.b = b.clone().requires_grad_()
        self.c = c.clone().requires_grad_()

    def params(self):
        return [self.W, self.b, self.c]


def reconstruction(L, x_in, x):
    h = torch.sigmoid(x_in @ L.W + L.b)
    logits = h @ L.W.t() + L.c
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    return h, rec


def cae_loss(L, x, lam=C.LAMBDA):
    h, rec = reconstruction(L, x, x)
    penalty = ((h * (1 - h)) ** 2 @ (L.W ** 2).sum(0)).mean()
    return rec + lam * penalty


def ae_loss(L, x):
    return reconstruction(L, x, x)[1]


def dae_b_loss(L, x, noise=C.NOISE):
    mask = (torch.rand_like(x) >= noise).to(x.dtype)
    return reconstruction(L, x * mask, x)[1]


def free_energy(L, v):
    return -(v @ L.c) - F.softplus(v @ L.W + L.b).sum(1)


def rbm_loss(L, v0):
    with torch.no_grad():
        h0 = torch.bernoulli(torch.sigmoid(v0 @ L.W + L.b))
        vk = torch.bernoulli(torch.sigmoid(h0 @ L.W.t() + L.c))
    return (free_energy(L, v0) - free_energy(L, vk)).mean()


class MLP:
    """Fine-tuning, as bench/steps' mlp: 784-1000-10, sigmoid, softmax
    cross-entropy, momentum 0.9; labels 0..9 in turn."""

    def __init__(self, dtype=torch.float32):
        r = C.init_range()
        self.W = torch.empty(C.DX, C.DH, dtype=dtype).uniform_(-r, r).requires_grad_()
        self.b = torch.zeros(C.DH, dtype=dtype, requires_grad=True)
        self.V = torch.empty(C.DH, 10, dtype=dtype).uniform_(-0.1, 0.1).requires_grad_()
        self.c = torch.zeros(10, dtype=dtype, requires_grad=True)
        self.y = {}

    def params(self):
        return [self.W, self.b, self.V, self.c]

    def labels(self, B):
        if B not in self.y:
            self.y[B] = torch.arange(B) % 10
        return self.y[B]


def mlp_loss(M, x):
    logits = torch.sigmoid(x @ M.W + M.b) @ M.V + M.c
    return F.cross_entropy(logits, M.labels(x.shape[0]))


LOSSES = {"cae": cae_loss, "ae": ae_loss, "dae-b": dae_b_loss, "rbm": rbm_loss, "mlp": mlp_loss}


def make_step(model, L, lr):
    loss_fn = LOSSES[model]
    opt = torch.optim.SGD(L.params(), lr=lr, momentum=0.9 if model == "mlp" else 0)

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(L, x)
        loss.backward()
        opt.step()
        return loss

    return step


def set_threads(n):
    torch.set_num_threads(n)
    C.set_blas_threads(n)  # torch's matmuls go to OpenBLAS (Debian's build)


def run_steps(args):
    torch.manual_seed(1)
    xs = torch.rand(max(args.batches), C.DX)
    if not args.machine:
        print("# torch %s: %s" % (torch.__version__, C.blas_info()))
        print("# median of %d samples of >= %g s" % (args.samples, args.min_time))
        print("%-8s %5s %4s %10s %11s" % ("model", "B", "thr", "us/step", "samples/s"))
    for thr in args.threads:
        set_threads(thr)
        for B in args.batches:
            x = xs[:B].contiguous()
            for model in args.models:
                L = MLP() if model == "mlp" else Layer(rbm=model == "rbm")
                step = make_step(model, L, C.STEP_LR)
                sec = C.time_call(lambda: step(x), args.samples, args.min_time)
                C.emit_step(args, PEER, model, B, thr, sec)


def run_epoch(args):
    data = torch.from_numpy(C.mnist_train(args.limit))
    n, B = data.shape[0], 20
    for thr in args.threads:
        set_threads(thr)
        torch.manual_seed(1)
        step = make_step("cae", Layer(), C.EPOCH_LR)
        t0 = time.perf_counter()
        total = 0.0
        perm = torch.randperm(n)
        for s in range(0, n, B):
            x = data[perm[s:s + B]]
            total += float(step(x)) * x.shape[0]
        wall = time.perf_counter() - t0
        if args.machine:
            print("@epoch\t" + PEER + "\t%d\t%d\t%.4f\t%.6f\t%d"
                  % (thr, n, wall, total / n, C.peak_rss_kb()))
        else:
            print("epoch  torch cae B=20 thr=%d: %d examples in %.3f s (%.0f samples/s; "
                  "50k-epoch %.2f s), objective %.4f, peak RSS %.1f MiB"
                  % (thr, n, wall, n / wall, wall * 50000 / n, total / n,
                     C.peak_rss_kb() / 1024))
        sys.stdout.flush()


def grads(loss_fn, L, x):
    loss = loss_fn(L, x)
    loss.backward()
    return float(loss), [p.grad.detach().numpy().copy() for p in L.params()]


def run_check(args, tol=1e-4):
    """Our loss and gradients (dumped by bench/steps --dump) against autograd
    on the same float32 batch and W; returns the number of failures."""
    d = args.check
    ld = lambda name: np.load("%s/%s.npy" % (d, name))
    x32 = torch.from_numpy(ld("x"))
    fails = 0
    print("check: our step vs torch autograd on the same batch (B=%d) and W; "
          "relative errors, tolerance %g" % (x32.shape[0], tol))
    for ours, model in (("cae-fused", "cae"), ("cae-composed", "cae"), ("ae", "ae")):
        loss_ours = float(ld(ours + ".loss")[0])
        g_ours = [ld(ours + ".dW"), ld(ours + ".db"), ld(ours + ".dc")]
        for dtype in (torch.float32, torch.float64):
            L = Layer(dtype=dtype, W=torch.from_numpy(ld("W")).to(dtype),
                      b=torch.from_numpy(ld("b")).to(dtype), c=torch.from_numpy(ld("c")).to(dtype))
            loss_t, g_t = grads(LOSSES[model], L, x32.to(dtype))
            errs = [C.rel_err(loss_ours, loss_t)] + [C.rel_err(a, b) for a, b in zip(g_ours, g_t)]
            ok = all(e <= tol for e in errs)
            fails += not ok
            print("  %-13s vs torch %-7s loss %.6f / %.6f  rel: loss %.1e dW %.1e db %.1e "
                  "dc %.1e  %s" % (ours, str(dtype).replace("torch.", ""), loss_ours, loss_t,
                                   *errs, "ok" if ok else "FAIL"))
    return fails


def main():
    args = C.parse_args("torch_steps.py", MODELS, __doc__.split("\n")[0])
    if args.check is not None:
        if not args.check:
            sys.exit("torch_steps.py: --check needs the directory written by bench/steps --dump")
        fails = run_check(args)
        if fails:
            sys.exit(1)
    if args.steps:
        run_steps(args)
    if args.epoch:
        run_epoch(args)
    if args.steps or args.epoch:
        C.emit_rss(args, PEER)


if __name__ == "__main__":
    main()

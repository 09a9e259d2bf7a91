#!/usr/bin/env python3
"""The floating-point operations of the products a finished `cae reproduce`
directory's runs did, from the epochs each pretraining, fine-tuning and
refit recorded (DIR/runs/NAME/pretrain.txt, ft-lrX/result.txt,
ft-lrX/refit/result.txt), with the validation passes and the softmax layer;
and the minutes they take at a GEMM rate. docs/REPRODUCE.md, "The time
targets", quotes it.

  scripts/count-operations.py DIR [--wide N] [--log LOG] [--rate GFLOPS]

--wide: units of the first layer on the variations (the full budget: 2000;
default 1000). --log: the output of `cae reproduce` run again on the
finished DIR (everything cached): only the runs it lists count, not those
an older protocol left in DIR. --rate: GFLOP/s of the machine (default 226,
two cores measured here)."""
import argparse
import os
import re

SIZES = {"mnist": (50000, 10000), "fashion": (50000, 10000), "rect": (1000, 200)}
VARIATIONS = ("bg-img-rot", "bg-img", "bg-rand", "rect-img", "basic", "rot", "rect")


def kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 2:
                out[p[0]] = p[1]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--wide", type=int, default=1000)
    ap.add_argument("--log")
    ap.add_argument("--rate", type=float, default=226)
    a = ap.parse_args()
    runs_dir = os.path.join(a.dir, "runs")
    used = None  # run name -> fine-tuning rates used (None: every run, every rate)
    if a.log:
        used = {}
        with open(a.log) as f:
            for line in f:
                p = line.split()
                if "cached" not in p:
                    continue
                used.setdefault(p[0], set())
                if len(p) > 2 and p[1] == "lr":
                    used[p[0]].add(p[2])
        for name in list(used):  # a stack's lower layers are trained too
            for m in re.finditer(r"-L\d", name):
                used.setdefault(name[:m.start()], set())
    tot = {"pretraining": 0.0, "fine-tuning": 0.0, "refits": 0.0, "validation": 0.0}
    for name in sorted(os.listdir(runs_dir)):
        if used is not None and name not in used:
            continue
        data = next((v for v in VARIATIONS if name.startswith(v + "-")), name.split("-")[0])
        n, nv = SIZES.get(data, (10000, 2000))
        layers = 3 if "-L3" in name else 2 if "-L2" in name else 1
        widths = [784, 1000] if data in ("mnist", "fashion") else [784, a.wide] + [1000] * (layers - 1)
        pre = os.path.join(runs_dir, name, "pretrain.txt")
        if os.path.exists(pre):
            ep = int(kv(pre).get("pretrain_epochs", 0))
            din, dout = widths[-2], widths[-1]
            tot["pretraining"] += ep * n * 5 * 2 * din * dout  # five products a step
            tot["validation"] += ep * nv * 2 * 2 * din * dout  # encode and decode
        dims = widths + [10]
        fwd = sum(2 * dims[i] * dims[i + 1] for i in range(len(dims) - 1))
        down = sum(2 * dims[i] * dims[i + 1] for i in range(1, len(dims) - 1))  # no input gradient
        step = 2 * fwd + down
        for ft in sorted(os.listdir(os.path.join(runs_dir, name))):
            if not ft.startswith("ft-lr") or (used is not None and ft[5:] not in used[name]):
                continue
            res = os.path.join(runs_dir, name, ft, "result.txt")
            if os.path.exists(res):
                ep = int(kv(res)["epochs_ft"])
                tot["fine-tuning"] += ep * n * step
                tot["validation"] += ep * nv * fwd
            refit = os.path.join(runs_dir, name, ft, "refit", "result.txt")
            if os.path.exists(refit):
                tot["refits"] += int(kv(refit)["epochs"]) * (n + nv) * step
    total = sum(tot.values())
    for k, v in tot.items():
        print("%-12s %8.0f TFLOP" % (k, v / 1e12))
    print("%-12s %8.0f TFLOP: %.1f minutes at %g GFLOP/s" % ("total", total / 1e12, total / (a.rate * 1e9) / 60,
                                                          a.rate))


if __name__ == "__main__":
    main()

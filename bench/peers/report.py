#!/usr/bin/python3
"""bench/peers/report.py RAW - the one table of bench/peers/run.sh, from the
'@' lines that bench/steps --machine, torch_steps.py --machine and
numpy_steps.py --machine printed (collected in RAW by run.sh):

  @gemm  product B thr GFLOP/s          @flops model B gemm_flops elem_flops
  @step  peer model B thr samples/s us  @epoch peer thr examples seconds objective rss_kb
  @rss   peer rss_kb                    @block name thr B   (run.sh: the process that follows)

Standard library only."""
import collections
import sys


def main(path):
    best = collections.defaultdict(float)                 # thr -> best GEMM GFLOP/s
    rate = collections.defaultdict(float)                 # (product, B, thr) -> GFLOP/s
    flops = {}                                            # (model, B) -> (gemm, elem)
    sps = {}                                              # (peer, model, B, thr) -> samples/s
    epochs = {}                                           # (peer, thr) -> tuple
    rss = collections.defaultdict(int)                    # peer -> max over step processes
    block = None
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if not f or not f[0].startswith("@"):
            continue
        tag = f[0]
        if tag == "@block":
            block = f[1]
        elif tag == "@gemm":
            key = (f[1], int(f[2]), int(f[3]))
            rate[key] = max(rate[key], float(f[4]))      # best of the runs
            best[int(f[3])] = max(best[int(f[3])], float(f[4]))
        elif tag == "@flops":
            flops[(f[1], int(f[2]))] = (float(f[3]), float(f[4]))
        elif tag == "@step":                              # the better of the rounds
            key = (f[1], f[2], int(f[3]), int(f[4]))
            sps[key] = max(sps.get(key, 0.0), float(f[5]))
        elif tag == "@epoch":                             # the fastest of the rounds
            key, e = (f[1], int(f[2])), (int(f[3]), float(f[4]), float(f[5]), int(f[6]))
            if key not in epochs or e[1] < epochs[key][1]:
                epochs[key] = e
        elif tag == "@rss" and block != "epoch":
            rss[f[1]] = max(rss[f[1]], int(f[2]))

    batches = sorted({k[2] for k in sps})
    threads = sorted({k[3] for k in sps})

    def cell(v, fmt="%9.0f"):
        return fmt % v if v is not None else "%9s" % "-"

    def ratio(a, b):
        return "%7.2f" % (a / b) if a and b else "%7s" % "-"

    print("samples/s (higher is better); torch = PyTorch as configured by default, torch* = "
          "tuned (OMP_WAIT_POLICY=PASSIVE, malloc keeping memory); ratios = ours-fused / peer, "
          "/torch against the faster of the two; %roof = step time at the best GEMM rate of this "
          "run / measured time (ours-fused)")
    for thr in threads:
        print("# best GEMM rate through cae_gemm, %d thread(s): %.1f GFLOP/s" % (thr, best[thr]))
    hdr = "%-6s %5s %4s | %9s %9s %9s %9s %9s | %7s %7s | %9s %6s %6s" % (
        "model", "B", "thr", "ours-fus", "ours-comp", "torch", "torch*", "numpy", "/torch", "/numpy",
        "roof/s", "%roof", "%roofB")
    print(hdr)
    print("-" * len(hdr))
    rows = (("cae", "cae-fused", "cae-composed"), ("ae", "ae", None), ("dae-b", "dae-b", None),
            ("rbm", "rbm", None), ("mlp", "mlp", None))
    for thr in threads:
        for B in batches:
            for model, ours, comp in rows:
                o = sps.get(("ours", ours, B, thr))
                oc = sps.get(("ours", comp, B, thr)) if comp else None
                t = sps.get(("torch", model, B, thr))
                tt = sps.get(("torch-tuned", model, B, thr))
                tbest = max(t or 0, tt or 0) or None
                n = sps.get(("numpy", model, B, thr))
                if o is None and t is None and tt is None and n is None:
                    continue
                roof = pct = pctb = None
                fl = flops.get((ours, B))
                if fl and best[thr]:
                    roof = B * best[thr] * 1e9 / (fl[0] + fl[1])
                    pct = 100 * o / roof if o else None
                    r = lambda p: rate.get((p, B, thr), 0.0)
                    one = 2.0 * B * 784 * 1000 * 1e-9
                    wg = max(r("weights"), r("weights2B"))
                    dec = max(r("decoder"), r("decoderT"))
                    bestb = max(r("encoder"), dec, wg)
                    # as bench/steps: x W and dz W at the encoder's rate, h W^T at
                    # the better decoder's (the MLP: its two large products)
                    if ours == "mlp" and r("encoder") and r("weights"):
                        t_b = (one / r("encoder") + one / r("weights")
                               + (fl[0] - 2 * one * 1e9 + fl[1]) * 1e-9 / bestb)
                        pctb = 100 * o * t_b / B if o else None
                    elif r("encoder") and dec and wg:
                        t_b = (2 * one / r("encoder") + one / dec + 2 * one / wg
                               + fl[1] * 1e-9 / bestb)
                        pctb = 100 * o * t_b / B if o else None
                print("%-6s %5d %4d | %s %s %s %s %s | %s %s | %s %s %s" % (
                    model, B, thr, cell(o), cell(oc), cell(t), cell(tt), cell(n), ratio(o, tbest),
                    ratio(o, n), cell(roof), cell(pct, "%5.1f%%"), cell(pctb, "%5.1f%%")))
        print("-" * len(hdr))

    if epochs:
        print("\nwhole epoch of CAE pretraining on MNIST (B = 20, lr 0.01, one epoch; "
              "seconds scaled to 50 000 examples when the run was limited)")
        print("%-11s %4s %8s %9s %11s %10s %12s" % ("peer", "thr", "examples", "seconds",
                                                   "50k-epoch s", "samples/s", "peak RSS MiB"))
        for (peer, thr), (n, sec, obj, kb) in sorted(epochs.items(), key=lambda kv: (kv[0][1], kv[0][0] != "ours")):
            print("%-11s %4d %8d %9.3f %11.2f %10.0f %12.1f" % (
                peer, thr, n, sec, sec * 50000 / n, n / sec, kb / 1024))
        for thr in sorted({k[1] for k in epochs}):
            a = epochs.get(("ours", thr))
            for peer in ("torch", "torch-tuned"):
                b = epochs.get((peer, thr))
                if a and b:
                    print("# %d thread(s): ours is %.2fx %s's speed over the epoch"
                          % (thr, (a[0] / a[1]) / (b[0] / b[1]), peer))
    if rss:
        print("\npeak RSS of the step processes (max over blocks): " +
              ", ".join("%s %.1f MiB" % (p, kb / 1024) for p, kb in sorted(rss.items())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RAW")
    main(sys.argv[1])

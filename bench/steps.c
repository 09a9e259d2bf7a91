/* bench/steps — samples/s of whole training steps (pretraining: 784 -> 1000,
 * tied, sigmoid, cross-entropy; fine-tuning: the 784-1000-10 MLP), of
 * evaluation (the measurements of `cae eval`), the whole-epoch time of CAE
 * pretraining on MNIST, and the GEMM roofline of each, all in one run.
 *
 * A step is forward, backward and a plain SGD update over the task's
 * tensors in one pass (cae_task_step_sgd, rate 1e-4, as cae_train runs it),
 * on a fixed batch x ~ U(0,1):
 *   cae-fused      CAE, lambda 0.1, the fused penalty op
 *   cae-composed   CAE, lambda 0.1, the penalty composed from ops
 *   ae             plain AE
 *   dae-b          masking noise, 25% of the inputs zeroed
 *   rbm            binary RBM, CD-1 (free-energy gap, Gibbs sample constant)
 *   mlp            fine-tuning: 784-1000-10, sigmoid, softmax cross-entropy,
 *                  momentum 0.9 (as cae reproduce fine-tunes), labels 0..9
 * Each cell is the median of `samples` timed samples after a warm-up; a
 * sample repeats the step until min_time has passed.
 *
 * Roofline. FLOPs of one step = 5 products of 2 B 784 1000 each (encoder,
 * decoder, the decoder's input gradient, the two weight gradients; a minimal
 * CD-1 has 5 too: v0 W, h Wt, vk W and two weight gradients; the MLP has 2
 * of those and 3 of 2 B 1000 10) plus the element-wise work counted in
 * elem_flops() below (exp, log, division and each add or multiply are one
 * FLOP). The roofline time is those FLOPs at the best GEMM rate measured in
 * this run through cae_gemm (the products of bench/matmul, plus the weight
 * gradient fused over K = 2B and h W^T over a transposed copy of W);
 * "%roof" is roofline time / measured time. "%roofB" uses, for each
 * product, the rate measured for its own shape at that B (and the best rate
 * at that B for the element-wise work): how close a step is to its kernels
 * at that size.
 *
 * Evaluation (--eval): what `cae eval` measures, over MNIST's 10 000
 * validation examples in batches of 500 (cae_metrics_compute: ||J||, SAT,
 * the reconstruction, of a 784-1000 CAE layer) and the MLP's test error
 * over the 10 000 test examples (cae_classify_error); samples/s and %roof
 * (2 products of 2 784 1000 per example for the metrics, 2 784 1000 +
 * 2 1000 10 for the error, plus the element-wise work, at the best rate).
 *
 * Sections (all four when none is named):
 *   --gemm           GFLOP/s of the step's products at each B and thread count
 *   --steps          samples/s of every model at each B and thread count
 *   --epoch          one epoch of CAE pretraining on MNIST (50 000 examples,
 *                    B = 20, lr 0.01, via cae_train) from $CAE_DATA_DIR or
 *                    ./data, at each thread count, and the peak RSS
 *   --eval           evaluation as above, at each thread count
 *   --dump DIR       one CAE/AE step's inputs, loss and gradients as .npy
 *                    files (for bench/peers/torch_steps.py --check)
 * Options: --quick (5 samples of >= 2 ms, epoch limited to 2000 examples),
 *   --batches 1,10,20,100,256  --threads 1,2  --models cae-fused,...
 *   --samples N  --min-time S  --limit N (epoch examples)
 *   --machine (print "@" lines for bench/peers/report.py instead of tables)
 * Usage: steps [sections] [options] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <omp.h>

#include "bench.h"

#include "cae/checkpoint.h"
#include "cae/data.h"
#include "cae/gemm.h"
#include "cae/metrics.h"
#include "cae/model.h"
#include "cae/train.h"

enum { DX = 784, DH = 1000, MAXB = 256, MAXLIST = 16 };

static int samples = 7;
static double min_time = 0.1;
static int machine = 0;

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* kilobytes on Linux */
}

/* ------------------------------------------------------------ models */

enum { M_CAE_FUSED, M_CAE_COMPOSED, M_AE, M_DAE_B, M_RBM, M_MLP, M_COUNT };
static const char *const model_names[M_COUNT] = {"cae-fused", "cae-composed", "ae", "dae-b",
                                                 "rbm", "mlp"};
enum { NCLASS = 10 };

static void model_config(int m, cae_layer_config *lc)
{
    static const cae_model_kind kinds[M_COUNT] = {CAE_MODEL_CAE, CAE_MODEL_CAE, CAE_MODEL_AE,
                                                  CAE_MODEL_DAE_B, CAE_MODEL_RBM, CAE_MODEL_AE};
    cae_layer_config_default(lc, kinds[m], DX, DH); /* lambda 0.1, noise 0.25, CD-1 */
    lc->composed = m == M_CAE_COMPOSED;
}

static const cae_mlp_config mlp_config = {.n_layers = 1, .sizes = {DX, DH},
                                          .act = {CAE_ACT_SIGMOID}, .n_classes = NCLASS};

/* The products of a step: 5 of 2 B DX DH FLOPs each; the MLP's 2 of those
 * (x W, dW) and 3 of 2 B DH NCLASS (h V, dV, dh). */
static double gemm_flops(int m, int64_t B)
{
    const double one = 2.0 * (double)B * DX * DH;
    return m == M_MLP ? 2 * one + 3 * 2.0 * (double)B * DH * NCLASS : 5 * one;
}

/* Element-wise FLOPs of one step (see the header; bench/peers/README.md
 * has the same table). Per example, then per step (independent of B). */
static double elem_flops(int m, int64_t B)
{
    const double D = DX, H = DH, b = (double)B;
    const double sgd = 2.0 * (D * H + H + D); /* w -= lr g */
    /* AE per example: encoder bias + sigmoid 4H; decoder bias D;
     * cross-entropy with logits 8D; dz = (sigmoid(z) - x) / B 5D and dc D;
     * dA = dH h (1 - h) 3H and db H. */
    const double ae = 8 * H + 15 * D;
    switch (m) {
    case M_CAE_FUSED:
    case M_CAE_COMPOSED:
        /* + penalty forward 5H (s = h(1-h), s^2, times n_j, sum), its dA
         * term 6H, sum over the batch of s^2 H; per step: n_j = sum_i W_ij^2
         * 2DH and the weight term dW_ij += c_j W_ij 2DH. */
        return b * (ae + 12 * H) + 4 * D * H + sgd;
    case M_AE: return b * ae + sgd;
    case M_DAE_B: return b * (ae + 2 * D) + sgd; /* draw-and-compare, multiply */
    case M_RBM:
        /* Gibbs up/down: bias, sigmoid, sample 5H + 5D; two free energies:
         * bias, softplus, sums 5H + 2D each; their gradients 5H each
         * (sigmoid, scale, db), dc 2D. */
        return b * (25 * H + 11 * D) + sgd;
    case M_MLP: {
        /* encoder bias + sigmoid 4H, output bias C, softmax cross-entropy
         * (max, exp, sum, log) 4C, its gradient 3C, dc C, da = dh h(1-h) 3H,
         * db H; per step momentum SGD: v = m v - lr g, w += v, 3 per value. */
        const double C = NCLASS;
        return b * (8 * H + 9 * C) + 3.0 * (D * H + H + H * C + C);
    }
    }
    return 0;
}

/* Evaluation, per example: the metrics (encoder bias + sigmoid 4H, decoder
 * bias D, cross-entropy 8D, the Jacobian norm phi'^2 n_j summed 5H, SAT 2H,
 * and n_j = sum_i W_ij^2 once per batch of 500: 2 DH / 500) and the MLP's
 * error (4H, C, argmax C). */
static double eval_flops(int mlp)
{
    const double D = DX, H = DH, C = NCLASS;
    if (mlp) return 2.0 * (D * H + H * C) + 4 * H + 2 * C;
    return 4.0 * D * H + 11 * H + 9 * D + 2 * D * H / 500;
}

/* --------------------------------------------------------------- gemm */

/* Products of a step, as bench/matmul: encoder B x DX . DX x DH; decoder
 * B x DH . (DX x DH)^T (h W^T); weights (B x DX)^T . B x DH, and the two
 * weight gradients of a tied layer fused over K = 2B; decoderT: h W^T over
 * a transposed copy of W (B x DH . DH x DX), as training steps run it. */
enum { G_ENC, G_DEC, G_WGT, G_WGT2, G_DECT, G_COUNT };
static const char *const gemm_names[G_COUNT] = {"encoder", "decoder", "weights", "weights2B",
                                                "decoderT"};

typedef struct gemm_ctx {
    cae_gemm p;
    const cae_real *a, *b;
    cae_real *c, *scratch;
    int threads;
} gemm_ctx;

static void gemm_run(void *vctx)
{
    gemm_ctx *c = vctx;
    cae_gemm_run(&c->p, c->a, c->b, c->c, c->scratch, c->threads);
}

/* GFLOP/s of product s at batch B. */
static double gemm_rate(int s, int64_t B, int threads, const cae_real *a, const cae_real *b,
                        cae_real *c)
{
    int64_t m, n, k;
    int ta = 0, tb = 0;
    switch (s) {
    case G_ENC: m = B, n = DH, k = DX; break;
    case G_DEC: m = B, n = DX, k = DH, tb = 1; break;
    case G_WGT: m = DX, n = DH, k = B, ta = 1; break;
    case G_DECT: m = B, n = DX, k = DH; break;
    default: m = DX, n = DH, k = 2 * B, ta = 1; break;
    }
    gemm_ctx ctx = {.a = a, .b = b, .c = c, .threads = threads};
    if (cae_gemm_plan(&ctx.p, m, n, k, ta, tb, 0) ||
        !(ctx.scratch = cae_alloc_reals(ctx.p.scratch_reals ? ctx.p.scratch_reals : 1))) {
        fprintf(stderr, "steps: no GEMM kernel for %s at B=%lld\n", gemm_names[s], (long long)B);
        exit(1);
    }
    omp_set_num_threads(threads);
    const double t = bench_time_call(gemm_run, &ctx, samples, min_time);
    cae_free(ctx.scratch);
    return 2.0 * (double)m * (double)n * (double)k / t * 1e-9;
}

/* ---------------------------------------------------------------- steps */


/* Seconds per step of model m at batch B, on a fresh copy of the layer. */
static double step_time(int m, int64_t B, int threads, const cae_real *x, const int32_t *y)
{
    cae_layer_config lc;
    model_config(m, &lc);
    cae_params *p = cae_params_new();
    cae_error err;
    const int mlp = m == M_MLP;
    if (!p || (mlp ? cae_mlp_params(p, &mlp_config, 1, &err) : cae_layer_params(p, 1, &lc, 1, &err))) {
        fprintf(stderr, "steps: %s\n", p ? err.msg : "out of memory");
        exit(1);
    }
    cae_task *t = mlp ? cae_task_finetune(p, &mlp_config, B, 1, threads, &err)
                      : cae_task_pretrain(p, 1, &lc, B, 1, threads, &err);
    if (!t) {
        fprintf(stderr, "steps: %s: %s\n", model_names[m], err.msg);
        exit(1);
    }
    omp_set_num_threads(threads);
    bench_step c = {.t = t, .x = x, .rows = B, .y = mlp ? y : NULL};
    enum { MAXP = 8 };
    cae_real *vel[MAXP] = {0};
    if (mlp) { /* fine-tuning's momentum, as cae reproduce runs it */
        if (cae_task_n_params(t) > MAXP) {
            fprintf(stderr, "steps: mlp: more than %d tensors\n", MAXP);
            exit(1);
        }
        for (int i = 0; i < cae_task_n_params(t); i++)
            if (!(vel[i] = cae_alloc_reals((size_t)cae_task_param(t, i)->size))) exit(1);
        c.sgd.momentum = 0.9;
        c.sgd.velocity = vel;
    }
    double obj;
    if (cae_task_step(t, x, c.y, B, &obj) || isnan(obj)) {
        fprintf(stderr, "steps: %s: %s\n", model_names[m], cae_task_error(t));
        exit(1);
    }
    const double s = bench_time_call(bench_step_run, &c, samples, min_time);
    for (int i = 0; i < MAXP; i++) cae_free(vel[i]);
    cae_task_free(t);
    cae_params_free(p);
    return s;
}

/* ----------------------------------------------------------------- eval */

/* Samples/s of cae_metrics_compute (a 784-1000 CAE layer, the validation
 * split) and of cae_classify_error (the MLP, the test split). */
static int run_eval(int threads, int64_t limit, const double *best)
{
    const char *dir = getenv("CAE_DATA_DIR");
    if (!dir || !*dir) dir = "data";
    cae_error err;
    cae_splits *s = NULL;
    if (cae_splits_load(dir, "mnist", &s, &err) != CAE_OK) {
        fprintf(stderr, "steps: eval: %s\n", err.msg);
        return -1;
    }
    cae_layer_config lc;
    model_config(M_CAE_FUSED, &lc);
    cae_params *p = cae_params_new();
    cae_task *t = NULL;
    cae_dataset *test = NULL;
    int rc = -1;
    if (!p || cae_layer_params(p, 1, &lc, 1, &err) || cae_mlp_params(p, &mlp_config, 1, &err) ||
        !(t = cae_task_finetune(p, &mlp_config, 20, 1, threads, &err))) {
        fprintf(stderr, "steps: eval: %s\n", p ? err.msg : "out of memory");
        goto done;
    }
    omp_set_num_threads(threads);
    cae_metrics_config mc;
    cae_metrics_config_default(&mc);
    mc.threads = threads;
    mc.limit = limit;
    const int64_t nm = limit > 0 && limit < s->valid->n ? limit : s->valid->n;
    test = cae_dataset_view(s->test, 0, limit > 0 && limit < s->test->n ? limit : s->test->n);
    for (int which = 0; which < 2 && test; which++) {
        double ts[64];
        const int64_t n = which ? test->n : nm;
        for (int r = -1; r < samples; r++) {
            const double t0 = bench_now();
            cae_metrics m;
            double e, iv;
            if (which ? cae_classify_error(t, test, &e, &iv)
                      : cae_metrics_compute(p, 1, &lc, s->valid, &mc, &m, &err)) {
                fprintf(stderr, "steps: eval: %s\n", which ? cae_task_error(t) : err.msg);
                goto done;
            }
            if (r >= 0) ts[r] = bench_now() - t0;
        }
        const double sec = bench_median(ts, samples), sps = (double)n / sec;
        const double pct = best[0] > 0 ? 100 * eval_flops(which) * sps / (best[0] * 1e9) : 0;
        if (machine)
            printf("@eval\tours\t%s\t%d\t%lld\t%.3f\t%.0f\n", which ? "mlp-error" : "metrics",
                   threads, (long long)n, sps, eval_flops(which));
        else {
            printf("eval   %-9s thr=%d: %lld examples in %.4f s, %.0f samples/s",
                   which ? "mlp-error" : "metrics", threads, (long long)n, sec, sps);
            if (pct > 0) printf(", %%roof %.1f%%", pct); /* with --gemm */
            printf("\n");
        }
        fflush(stdout);
    }
    rc = test ? 0 : -1;
done:
    cae_dataset_free(test);
    cae_task_free(t);
    cae_params_free(p);
    cae_splits_free(s);
    return rc;
}

/* ---------------------------------------------------------------- epoch */

typedef struct epoch_ctx {
    double seconds;
    double objective;
} epoch_ctx;

static int on_epoch(const cae_epoch_report *r, void *vctx)
{
    epoch_ctx *c = vctx;
    c->seconds = r->seconds;
    c->objective = r->objective;
    return 0;
}

static int run_epoch(int threads, int64_t limit)
{
    const char *dir = getenv("CAE_DATA_DIR");
    if (!dir || !*dir) dir = "data";
    cae_error err;
    cae_splits *s = NULL;
    if (cae_splits_load(dir, "mnist", &s, &err) != CAE_OK) {
        fprintf(stderr, "steps: epoch: %s (fetch MNIST with scripts/fetch-data.sh or set "
                        "CAE_DATA_DIR)\n", err.msg);
        return -1;
    }
    cae_layer_config lc;
    model_config(M_CAE_FUSED, &lc);
    cae_params *p = cae_params_new();
    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    if (!p || cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "steps: epoch: %s\n", p ? err.msg : "out of memory");
        cae_splits_free(s);
        return -1;
    }
    cae_task *t = cae_task_pretrain(p, 1, &lc, 20, 1, threads, &err);
    if (!t) {
        fprintf(stderr, "steps: epoch: %s\n", err.msg);
        cae_params_free(p);
        cae_splits_free(s);
        return -1;
    }
    omp_set_num_threads(threads);
    cae_train_config cfg;
    cae_train_config_default(&cfg);
    cfg.epochs = 1;
    cfg.lr = 0.01;
    cfg.limit = limit;
    epoch_ctx ec = {0, 0};
    cae_train_hooks hooks = {on_epoch, NULL, &ec};
    cae_train_result res;
    const int64_t n = limit > 0 && limit < s->train->n ? limit : s->train->n;
    const double t0 = bench_now();
    const int rc = cae_train(t, s->train, NULL, &cfg, &hooks, &res, &err);
    const double wall = bench_now() - t0;
    if (rc) fprintf(stderr, "steps: epoch: %s\n", err.msg);
    else if (machine)
        printf("@epoch\tours\t%d\t%lld\t%.4f\t%.6f\t%ld\n", threads, (long long)n, wall,
               ec.objective, peak_rss_kb());
    else
        printf("epoch  cae-fused B=20 thr=%d: %lld examples in %.3f s (%.0f samples/s; "
               "50k-epoch %.2f s), objective %.4f, peak RSS %.1f MiB\n",
               threads, (long long)n, wall, (double)n / wall, wall * 50000.0 / (double)n,
               ec.objective, (double)peak_rss_kb() / 1024);
    fflush(stdout);
    cae_task_free(t);
    cae_params_free(p);
    cae_splits_free(s);
    return rc;
}

/* ----------------------------------------------------------------- dump */

/* One step (no update) of cae-fused, cae-composed and ae on a fixed batch:
 * DIR/{x,W,b,c}.npy and DIR/<model>.{loss,dW,db,dc}.npy. */
static int run_dump(const char *dir)
{
    enum { B = 20, NM = 3 };
    const int models[NM] = {M_CAE_FUSED, M_CAE_COMPOSED, M_AE};
    static const char *const what[3] = {"dW", "db", "dc"};
    cae_params *p = cae_params_new(), *out = cae_params_new();
    cae_layer_config lc;
    model_config(M_CAE_FUSED, &lc);
    cae_rng r;
    cae_rng_seed(&r, 7, 0);
    char name[64];
    cae_error err;
    if (!p || !out || cae_layer_params(p, 1, &lc, 1, &err)) {
        fprintf(stderr, "steps: dump: %s\n", p && out ? err.msg : "out of memory");
        return -1;
    }
    cae_tensor *src[3] = {cae_layer_tensor(p, 1, "W"), cae_layer_tensor(p, 1, "b"),
                          cae_layer_tensor(p, 1, "c")};
    cae_tensor_uniform(src[1], 0.5f, &r);
    cae_tensor_uniform(src[2], 0.5f, &r);
    /* Every output tensor first (adding moves the store's blocks), then fill. */
    int ok = cae_params_add(out, "x", 2, (int64_t[]){B, DX}) != NULL;
    ok = ok && cae_params_add(out, "W", 2, (int64_t[]){DX, DH}) != NULL;
    ok = ok && cae_params_add(out, "b", 1, (int64_t[]){DH}) != NULL;
    ok = ok && cae_params_add(out, "c", 1, (int64_t[]){DX}) != NULL;
    for (int mi = 0; mi < NM && ok; mi++) {
        snprintf(name, sizeof name, "%s.loss", model_names[models[mi]]);
        ok = cae_params_add(out, name, 1, (int64_t[]){1}) != NULL;
        for (int k = 0; k < 3 && ok; k++) {
            snprintf(name, sizeof name, "%s.%s", model_names[models[mi]], what[k]);
            ok = cae_params_add(out, name, src[k]->rank, src[k]->shape) != NULL;
        }
    }
    if (!ok) {
        fprintf(stderr, "steps: dump: out of memory\n");
        return -1;
    }
    cae_tensor *x = cae_params_get(out, "x");
    for (int64_t i = 0; i < x->size; i++) x->data[i] = (cae_real)cae_rng_uniform(&r);
    static const char *const vname[3] = {"W", "b", "c"};
    for (int k = 0; k < 3; k++)
        memcpy(cae_params_get(out, vname[k])->data, src[k]->data,
               (size_t)src[k]->size * sizeof(cae_real));
    for (int mi = 0; mi < NM; mi++) {
        const int m = models[mi];
        model_config(m, &lc);
        cae_task *t = cae_task_pretrain(p, 1, &lc, B, 1, 1, &err);
        if (!t) {
            fprintf(stderr, "steps: dump: %s\n", err.msg);
            return -1;
        }
        double loss;
        cae_task_step(t, x->data, NULL, B, &loss);
        snprintf(name, sizeof name, "%s.loss", model_names[m]);
        cae_params_get(out, name)->data[0] = (cae_real)loss;
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "%s.%s", model_names[m], what[k]);
            memcpy(cae_params_get(out, name)->data, src[k]->grad,
                   (size_t)src[k]->size * sizeof(cae_real));
        }
        cae_task_free(t);
    }
    const int rc = cae_export_npy(out, dir, &err);
    if (rc) fprintf(stderr, "steps: dump: %s\n", err.msg);
    else if (!machine) printf("dump: wrote %d tensors to %s\n", cae_params_count(out), dir);
    cae_params_free(out);
    cae_params_free(p);
    return rc;
}

/* ----------------------------------------------------------------- main */

static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1) return -1;
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int usage(void)
{
    fprintf(stderr, "usage: steps [--gemm] [--steps] [--epoch] [--eval] [--dump DIR] [--quick] "
                    "[--batches LIST] [--threads LIST] [--models LIST] [--samples N] "
                    "[--min-time S] [--limit N] [--machine]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int do_gemm = 0, do_steps = 0, do_epoch = 0, do_eval = 0, quick = 0;
    const char *dump_dir = NULL;
    int64_t batches[MAXLIST] = {1, 10, 20, 100, 256}, threads[MAXLIST] = {1, 2};
    int nb = 5, nt = 2;
    int use_model[M_COUNT] = {1, 1, 1, 1, 1, 1};
    int64_t limit = -1;
    int set_samples = 0;
    double set_min_time = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--gemm")) do_gemm = 1;
        else if (!strcmp(a, "--steps")) do_steps = 1;
        else if (!strcmp(a, "--epoch")) do_epoch = 1;
        else if (!strcmp(a, "--eval")) do_eval = 1;
        else if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--machine")) machine = 1;
        else if (!v) return usage();
        else if (!strcmp(a, "--dump")) dump_dir = v, i++;
        else if (!strcmp(a, "--batches")) {
            if ((nb = parse_list(v, batches, MAXLIST)) < 1) return usage();
            for (int k = 0; k < nb; k++)
                if (batches[k] > MAXB) {
                    fprintf(stderr, "steps: batch at most %d\n", MAXB);
                    return 2;
                }
            i++;
        } else if (!strcmp(a, "--threads")) {
            if ((nt = parse_list(v, threads, MAXLIST)) < 1) return usage();
            i++;
        } else if (!strcmp(a, "--models")) {
            memset(use_model, 0, sizeof use_model);
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                int found = 0;
                for (int m = 0; m < M_COUNT; m++)
                    if (!strcmp(tok, model_names[m])) use_model[m] = found = 1;
                if (!found) {
                    fprintf(stderr, "steps: unknown model '%s'\n", tok);
                    return 2;
                }
            }
            i++;
        } else if (!strcmp(a, "--samples")) set_samples = atoi(v), i++;
        else if (!strcmp(a, "--min-time")) set_min_time = atof(v), i++;
        else if (!strcmp(a, "--limit")) limit = atoll(v), i++;
        else return usage();
    }
    if (quick) {
        samples = 5;
        min_time = 0.002;
        if (limit < 0) limit = 2000;
    }
    if (set_samples) samples = set_samples;
    if (set_min_time > 0) min_time = set_min_time;
    if (samples < 1 || samples > 64) {
        fprintf(stderr, "steps: samples must be in 1..64\n");
        return 2;
    }
    if (limit < 0) limit = 0;
    if (!do_gemm && !do_steps && !do_epoch && !do_eval && !dump_dir)
        do_gemm = do_steps = do_epoch = do_eval = 1;

    if (dump_dir && run_dump(dump_dir)) return 1;

    cae_rng r;
    cae_rng_seed(&r, 1, 0);
    const size_t abn = (size_t)2 * MAXB * DH + (size_t)DX * DH;
    cae_real *x = cae_alloc_reals((size_t)MAXB * DX);
    int32_t y[MAXB];
    for (int i = 0; i < MAXB; i++) y[i] = (int32_t)(cae_rng_next(&r) % NCLASS);
    cae_real *ga = cae_alloc_reals(abn), *gb = cae_alloc_reals(abn);
    cae_real *gc = cae_alloc_reals((size_t)DX * DH);
    if (!x || !ga || !gb || !gc) {
        fprintf(stderr, "steps: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)MAXB * DX; i++) x[i] = (cae_real)cae_rng_uniform(&r);
    for (size_t i = 0; i < abn; i++) {
        ga[i] = (cae_real)cae_rng_uniform(&r);
        gb[i] = (cae_real)cae_rng_uniform(&r);
    }

    if (!machine && (do_gemm || do_steps))
        printf("# cae bench/steps: 784 -> 1000 tied sigmoid; median of %d samples of >= %g s; "
               "%s precision\n",
               samples, min_time, sizeof(cae_real) == 4 ? "single" : "double");

    /* rate[thread][batch][product], GFLOP/s */
    static double rate[MAXLIST][MAXLIST][G_COUNT];
    double best[MAXLIST] = {0};
    if (do_gemm) {
        if (!machine) printf("%-9s %5s %4s %9s\n", "product", "B", "thr", "GFLOP/s");
        for (int ti = 0; ti < nt; ti++)
            for (int bi = 0; bi < nb; bi++)
                for (int s = 0; s < G_COUNT; s++) {
                    const double g = gemm_rate(s, batches[bi], (int)threads[ti], ga, gb, gc);
                    rate[ti][bi][s] = g;
                    if (g > best[ti]) best[ti] = g;
                    if (machine)
                        printf("@gemm\t%s\t%lld\t%lld\t%.3f\n", gemm_names[s],
                               (long long)batches[bi], (long long)threads[ti], g);
                    else
                        printf("%-9s %5lld %4lld %9.1f\n", gemm_names[s], (long long)batches[bi],
                               (long long)threads[ti], g);
                    fflush(stdout);
                }
        if (!machine)
            for (int ti = 0; ti < nt; ti++)
                printf("# best GEMM rate, %lld thread(s): %.1f GFLOP/s\n", (long long)threads[ti],
                       best[ti]);
    }

    if (do_steps) {
        if (machine) {
            for (int m = 0; m < M_COUNT; m++)
                if (use_model[m])
                    for (int bi = 0; bi < nb; bi++)
                        printf("@flops\t%s\t%lld\t%.0f\t%.0f\n", model_names[m],
                               (long long)batches[bi], gemm_flops(m, batches[bi]),
                               elem_flops(m, batches[bi]));
        } else {
            printf("%-13s %5s %4s %10s %11s %9s %7s %7s\n", "model", "B", "thr", "us/step",
                   "samples/s", "MFLOP", do_gemm ? "%roof" : "", do_gemm ? "%roofB" : "");
        }
        for (int ti = 0; ti < nt; ti++)
            for (int bi = 0; bi < nb; bi++)
                for (int m = 0; m < M_COUNT; m++) {
                    if (!use_model[m]) continue;
                    const int64_t B = batches[bi];
                    const double s = step_time(m, B, (int)threads[ti], x, y);
                    const double fg = gemm_flops(m, B), fe = elem_flops(m, B);
                    if (machine) {
                        printf("@step\tours\t%s\t%lld\t%lld\t%.3f\t%.3f\n", model_names[m],
                               (long long)B, (long long)threads[ti], (double)B / s, s * 1e6);
                    } else if (do_gemm) {
                        const double *rt = rate[ti][bi];
                        double bestB = 0;
                        for (int k = 0; k < G_COUNT; k++) bestB = rt[k] > bestB ? rt[k] : bestB;
                        const double one = 2.0 * (double)B * DX * DH * 1e-9; /* GFLOP */
                        const double wg = rt[G_WGT2] > rt[G_WGT] ? rt[G_WGT2] : rt[G_WGT];
                        const double dec = rt[G_DECT] > rt[G_DEC] ? rt[G_DECT] : rt[G_DEC];
                        const double t_roof = (fg + fe) * 1e-9 / best[ti];
                        /* x W and dz W at the encoder's rate, h W^T at the
                         * better decoder's, the weight gradients at the
                         * better of K = B and 2B (the MLP: one at K = B,
                         * its small products with the element-wise work) */
                        const double t_roofB =
                            m == M_MLP ? one / rt[G_ENC] + one / rt[G_WGT] +
                                             (fg - 2 * one * 1e9 + fe) * 1e-9 / bestB
                                       : 2 * one / rt[G_ENC] + one / dec + 2 * one / wg +
                                             fe * 1e-9 / bestB;
                        printf("%-13s %5lld %4lld %10.1f %11.0f %9.2f %6.1f%% %6.1f%%\n",
                               model_names[m], (long long)B, (long long)threads[ti], s * 1e6,
                               (double)B / s, (fg + fe) * 1e-6, 100 * t_roof / s,
                               100 * t_roofB / s);
                    } else {
                        printf("%-13s %5lld %4lld %10.1f %11.0f %9.2f\n", model_names[m],
                               (long long)B, (long long)threads[ti], s * 1e6, (double)B / s,
                               (fg + fe) * 1e-6);
                    }
                    fflush(stdout);
                }
    }

    int rc = 0;
    if (do_epoch)
        for (int ti = 0; ti < nt && !rc; ti++) rc = run_epoch((int)threads[ti], limit);
    if (do_eval)
        for (int ti = 0; ti < nt && !rc; ti++)
            rc = run_eval((int)threads[ti], quick ? 2000 : 0, do_gemm ? &best[ti] : (double[]){0});

    if (machine) printf("@rss\tours\t%ld\n", peak_rss_kb());
    else printf("# peak RSS of this process: %.1f MiB\n", (double)peak_rss_kb() / 1024);
    cae_free(x);
    cae_free(ga);
    cae_free(gb);
    cae_free(gc);
    return rc ? 1 : 0;
}

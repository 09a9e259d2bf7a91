/* Data-parallel cae_train: the gradient sum, the parameter hash, and making
 * every failure the same on every rank (lib/models/train_internal.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "models/train_internal.h"

int64_t cae_comm_slice(int64_t m, int rank, int size, int64_t *begin)
{
    *begin = m * rank / size;
    return m * (rank + 1) / size - *begin;
}

cae_status train_dist_init(train_dist *d, const cae_train_config *cfg, cae_task *t, cae_error *err)
{
    memset(d, 0, sizeof *d);
    const cae_comm *c = cfg->comm;
    if (!c) return CAE_OK;
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size || !c->allreduce || !c->broadcast)
        return cae_error_set(err, CAE_ERR_ARG, "train: a communicator of rank %d of %d%s", c->rank,
                             c->size, c->allreduce && c->broadcast ? "" : " without collectives");
    if (cfg->check_every < 0) return cae_error_set(err, CAE_ERR_ARG, "train: check_every < 0");
    if (c->size == 1) return CAE_OK;
    const int64_t B = cae_task_batch(t);
    if (B < c->size)
        return cae_error_set(err, CAE_ERR_ARG, "train: the batch of %lld is smaller than the %d "
                             "ranks: every rank needs rows of it", (long long)B, c->size);
    cae_params *buf = cae_task_buffers(t);
    if (cae_params_count(buf) > 0)
        return cae_error_set(err, CAE_ERR_ARG, "train: the %s task keeps state of its own ('%s', "
                             "e.g. a PCD chain) that cannot be split across ranks: train it in "
                             "one process", cae_task_name(t), cae_params_at(buf, 0)->name);
    cae_status rc = cae_task_set_part(t, c->rank, c->size);
    if (rc) return cae_error_set(err, rc, "train: %s", cae_task_error(t));
    /* The one range of the store's gradient block the trained tensors span
     * (padding, and a tensor between them that is not trained, are summed
     * too: no copy is worth saving those few values). */
    cae_real *lo = NULL, *hi = NULL;
    for (int i = 0; i < cae_task_n_params(t); i++) {
        cae_tensor *p = cae_task_param(t, i);
        if (!lo || p->grad < lo) lo = p->grad;
        if (!hi || p->grad + p->size > hi) hi = p->grad + p->size;
    }
    if (!(d->flags = calloc((size_t)c->size + 1, sizeof *d->flags)))
        return cae_error_set(err, CAE_ERR_NOMEM, "train: out of memory");
    d->c = c;
    d->rank = c->rank;
    d->size = c->size;
    d->grads = lo;
    d->n_grads = lo ? hi - lo : 0;
    return CAE_OK;
}

void train_dist_free(train_dist *d)
{
    free(d->flags);
    d->flags = NULL;
}

static cae_status sum(train_dist *d, void *buf, int64_t n, cae_comm_type type, cae_error *err)
{
    cae_error e;
    cae_status rc = d->c->allreduce(buf, n, type, d->c->ctx, &e);
    return rc ? cae_error_set(err, rc, "train: %s", e.msg) : CAE_OK;
}

cae_status train_dist_bcast(train_dist *d, void *buf, size_t bytes, cae_error *err)
{
    cae_error e;
    cae_status rc = d->c->broadcast(buf, bytes, 0, d->c->ctx, &e);
    return rc ? cae_error_set(err, rc, "train: %s", e.msg) : CAE_OK;
}

cae_status train_dist_grads(train_dist *d, cae_task *t, int64_t rows, int64_t m, int bad,
                            cae_error *err)
{
    if (bad) {
        d->grads[0] = (cae_real)NAN;
    } else if (rows != m) {
        /* The loss averages over this rank's rows: its share of the batch's
         * mean is rows / m of it (an empty part's gradient is zero). */
        const cae_real s = (cae_real)((double)rows / (double)m);
        cae_real *g = d->grads;
        const int64_t n = d->n_grads;
        int th = cae_task_threads(t);
        if (th <= 0) th = omp_get_max_threads();
#pragma omp parallel for simd schedule(static) num_threads(th) if (n >= 65536)
        for (int64_t i = 0; i < n; i++) g[i] *= s;
    }
    return sum(d, d->grads, d->n_grads, CAE_COMM_REAL, err);
}

/* Rank `from`'s status and message (st, msg: this rank's own when it is
 * `from`) to every rank, as err "PREFIX rank FROM: MSG". */
static cae_status relay(const cae_comm *c, int from, cae_status st, const char *msg,
                        const char *prefix, cae_error *err)
{
    struct { int32_t status; char msg[CAE_ERR_LEN]; } w;
    memset(&w, 0, sizeof w);
    if (from == c->rank) {
        w.status = (int32_t)st;
        snprintf(w.msg, sizeof w.msg, "%s", msg ? msg : "failed");
    }
    cae_error e;
    cae_status rc = c->broadcast(&w, sizeof w, from, c->ctx, &e);
    if (rc) return cae_error_set(err, rc, "%s%s", prefix, e.msg);
    w.msg[sizeof w.msg - 1] = '\0';
    const cae_status ws = w.status > 0 && w.status < CAE_ERR_COUNT ? (cae_status)w.status
                                                                    : CAE_ERR_ARG;
    return cae_error_set(err, ws, "%srank %d: %s", prefix, from, w.msg);
}

cae_status cae_task_evaluate_comm(cae_task *t, const cae_dataset *d, const cae_comm *c,
                                  double *loss, double *metric, cae_error *err)
{
    if (!c || c->size <= 1) {
        const cae_status rc = cae_task_evaluate(t, d, loss, metric);
        return rc ? cae_error_set(err, rc, "%s", cae_task_error(t)) : CAE_OK;
    }
    /* v: the two sums, then which ranks failed */
    double stack[16], *v = c->size + 2 <= 16 ? stack : calloc((size_t)c->size + 2, sizeof *v);
    if (!v) return cae_error_set(err, CAE_ERR_NOMEM, "evaluate: out of memory");
    memset(v, 0, ((size_t)c->size + 2) * sizeof *v);
    const cae_status st = cae_task_evaluate_sums(t, d, c->rank, c->size, v);
    if (st) v[0] = v[1] = 0;
    v[2 + c->rank] = st != CAE_OK;
    cae_error e;
    cae_status rc = c->allreduce(v, c->size + 2, CAE_COMM_DOUBLE, c->ctx, &e);
    if (rc) {
        cae_error_set(err, rc, "%s", e.msg);
    } else {
        int failed = -1;
        for (int r = c->size - 1; r >= 0; r--)
            if (v[2 + r] != 0) failed = r;
        if (failed >= 0) {
            rc = relay(c, failed, st, cae_task_error(t), "", err);
        } else { /* rank 0's figures (the same bits, unless the sum is not exact) */
            double f[2] = {d->n ? v[0] / (double)d->n : 0, d->n ? v[1] / (double)d->n : 0};
            if ((rc = c->broadcast(f, sizeof f, 0, c->ctx, &e))) {
                cae_error_set(err, rc, "%s", e.msg);
            } else {
                *loss = f[0];
                *metric = f[1];
            }
        }
    }
    if (v != stack) free(v);
    return rc;
}

/* "1, 3" for the ranks whose flag is `code` (at most a line of them). */
static void rank_list(const double *flags, int size, int code, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int r = 0; r < size && off + 16 < len; r++)
        if (flags[r] == code) off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? ", " : "", r);
}

cae_status train_dist_fail(train_dist *d, int code, cae_status st, const char *msg,
                           const char *tensor, int epoch, long long step, cae_error *err)
{
    memset(d->flags, 0, (size_t)d->size * sizeof *d->flags);
    d->flags[d->rank] = code;
    cae_status rc = sum(d, d->flags, d->size, CAE_COMM_DOUBLE, err);
    if (rc) return rc;
    for (int r = 0; r < d->size; r++)
        if (d->flags[r] == 2) {
            char prefix[96];
            snprintf(prefix, sizeof prefix, "train: at epoch %d, step %lld, ", epoch, step);
            return relay(d->c, r, st, msg, prefix, err);
        }
    char who[128];
    rank_list(d->flags, d->size, 1, who, sizeof who);
    if (who[0])
        return cae_error_set(err, CAE_ERR_NUMERIC, "train: the objective is not finite on rank %s "
                             "at epoch %d, step %lld: stopped (lower the learning rate?)", who,
                             epoch, step);
    return cae_error_set(err, CAE_ERR_NUMERIC, "train: the gradient of '%s' is not finite at "
                         "epoch %d, step %lld: stopped (lower the learning rate?)", tensor, epoch,
                         step);
}

/* A 64-bit hash of the bytes of the task's trained tensors: four lanes of
 * xxHash64's round, so 3 MB take a fraction of a millisecond. */
static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t round64(uint64_t h, uint64_t w)
{
    return rotl(h + w * 0xC2B2AE3D27D4EB4Full, 31) * 0x9E3779B185EBCA87ull;
}
static uint64_t params_hash(const cae_task *t)
{
    uint64_t h[4] = {1, 2, 3, 4};
    for (int i = 0; i < cae_task_n_params(t); i++) {
        const cae_tensor *p = cae_task_param(t, i);
        const unsigned char *b = (const unsigned char *)p->data;
        const size_t n = (size_t)p->size * sizeof(cae_real);
        size_t k = 0;
        for (; k + 32 <= n; k += 32) {
            uint64_t w[4];
            memcpy(w, b + k, sizeof w);
            for (int l = 0; l < 4; l++) h[l] = round64(h[l], w[l]);
        }
        for (; k < n; k++) h[0] = round64(h[0], b[k]);
        h[1] = round64(h[1], (uint64_t)n);
    }
    return cae_rng_mix64(h[0] ^ rotl(h[1], 7) ^ rotl(h[2], 12) ^ rotl(h[3], 18));
}

cae_status train_dist_check(train_dist *d, cae_task *t, const uint64_t *run, int n_run,
                            double *sums, int n, const char *when, cae_error *err)
{
    uint64_t mine = params_hash(t);
    for (int i = 0; i < n_run; i++) mine = round64(mine, run[i]);
    uint64_t root = mine;
    cae_status rc = train_dist_bcast(d, &root, sizeof root, err);
    if (rc) return rc;
    /* flags[0..size-1]: which ranks differ; then the sums. */
    double stack[8], *v = d->size + n <= 8 ? stack : NULL;
    if (!v && !(v = malloc((size_t)(d->size + n) * sizeof *v)))
        return cae_error_set(err, CAE_ERR_NOMEM, "train: out of memory");
    memset(v, 0, (size_t)d->size * sizeof *v);
    v[d->rank] = mine != root;
    for (int i = 0; i < n; i++) v[d->size + i] = sums[i];
    rc = sum(d, v, d->size + n, CAE_COMM_DOUBLE, err);
    char who[128];
    if (!rc) {
        for (int i = 0; i < n; i++) sums[i] = v[d->size + i];
        rank_list(v, d->size, 1, who, sizeof who);
        if (who[0])
            rc = cae_error_set(err, CAE_ERR_MISMATCH, "train: the parameters%s of rank %s differ "
                               "from rank 0's %s: %s, stopped", n_run ? " or the run" : "", who,
                               when, n_run ? "the ranks do not run the same training"
                                           : "the ranks have diverged");
    }
    if (v != stack) free(v);
    return rc;
}

/* Who writes each gradient, and finishing parameters' gradients.
 *
 * Compile runs the analysis once the gradient buffers are known:
 *
 *  - Write events. Nodes run from the loss down the tape; each writes the
 *    gradients of its inputs. A parameter's gradient may also come as a
 *    column-scaled copy of its values handed to the finish (defers), or as
 *    part of one product over several nodes' rows (merges: the last of them
 *    to run writes for all). The first event on a buffer stores when its
 *    node can (lib/shared.h), and the buffer is then not zeroed.
 *  - The finisher of each parameter: the last node to run in backward that
 *    reads or writes it. After it, the gradient is final and nothing reads
 *    the values again, so the finish runs there: the handed-over terms are
 *    added, and in a training step (cae/sgd.h) the values are updated and
 *    the copies the forward reads (transpose, partial column norms) are
 *    rewritten. The finisher may do it in its own product's tiles
 *    (cae_node_finish), else the graph does it in one pass after it.
 *
 * The finish is the same code in both places (fin_tile): per element, in
 * one order, so where it runs never changes a bit. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "cae/sgd.h"
#include "graph/internal.h"

static int is_param(const cae_node *n) { return node_of(n)->kind == NODE_PARAM; }
static int runs_backward(const cae_node *n)
{
    return node_of(n)->kind == NODE_OP && n->out.grad && n->op->backward;
}
static int writes_grad_of(const cae_node *n, int k)
{
    return n->in[k]->out.grad && !((node_of(n)->no_grad >> k) & 1u);
}
static int uses_of(const cae_node *n, const cae_real *buf)
{
    int uses = 0;
    for (int q = 0; q < n->n_in; q++) uses += writes_grad_of(n, q) && n->in[q]->out.grad == buf;
    return uses;
}
/* A parameter's values as a matrix: rows x cols (cols the last dimension). */
static int64_t cols_of(const cae_tensor *t) { return t->rank ? t->shape[t->rank - 1] : 1; }
static int64_t rows_of(const cae_tensor *t) { return t->size / (cols_of(t) ? cols_of(t) : 1); }

void cae_finish_release(cae_graph *g)
{
    free(g->fins);
    free(g->groups);
    cae_free(g->derived);
    g->fins = NULL;
    g->groups = NULL;
    g->derived = NULL;
    g->n_fins = g->n_groups = 0;
    g->derived_ok = 0;
}

/* Whether node n writes input k's gradient at its own place on the tape
 * (not handed over, not left to another member of its group). */
static int own_event(const cae_node *n, int k)
{
    const node_priv *p = node_of(n);
    if (p->defer_ok[k]) return 0;
    if (p->group[k] >= 0) {
        const merge_group *gr = &n->graph->groups[p->group[k]];
        return gr->member[0] == n;
    }
    return 1;
}

int cae_finish_analyze(cae_graph *g, cae_node *loss)
{
    cae_finish_release(g);
    int start = -1, nparams = 0;
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        node_priv *p = node_of(n);
        memset(p->store_now, 0, sizeof p->store_now);
        memset(p->store_first, 0, sizeof p->store_first);
        p->written = 0;
        p->fin = -1;
        for (int k = 0; k < CAE_MAX_IN; k++) {
            p->finishes[k] = p->group[k] = -1;
            p->defer_ok[k] = p->asked[k] = 0;
        }
        if (n == loss) start = i;
        if (is_param(n) && n->out.grad) nparams++;
    }
    g->fins = calloc((size_t)nparams + 1, sizeof *g->fins);
    g->groups = calloc((size_t)nparams + 1, sizeof *g->groups);
    const cae_real **seen = calloc((size_t)g->n_tape + 1, sizeof *seen);
    const cae_real **stored = calloc((size_t)g->n_tape + 1, sizeof *stored);
    if (!g->fins || !g->groups || !seen || !stored) {
        free(seen);
        free(stored);
        return -1;
    }
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        if (!is_param(n) || !n->out.grad) continue;
        node_of(n)->fin = g->n_fins;
        param_fin *f = &g->fins[g->n_fins++];
        f->param = n;
        f->upd = -1;
        /* The finisher: the consumer lowest on the tape whose backward runs. */
        for (int j = 0; j < g->n_tape && !f->finisher; j++) {
            cae_node *c = g->tape[j];
            if (!runs_backward(c)) continue;
            for (int k = 0; k < c->n_in && !f->finisher; k++)
                if (c->in[k] == n) {
                    f->finisher = c;
                    f->input = k;
                    node_of(c)->finishes[k] = g->n_fins - 1;
                }
        }
    }
    /* Handed-over terms, and merge groups (nodes from the loss down). */
    for (int i = start; i >= 0; i--) {
        cae_node *n = g->tape[i];
        if (!runs_backward(n)) continue;
        node_priv *p = node_of(n);
        for (int k = 0; k < n->n_in; k++) {
            cae_node *in = n->in[k];
            if (!writes_grad_of(n, k) || !is_param(in)) continue;
            param_fin *f = &g->fins[node_of(in)->fin];
            if (((p->defers >> k) & 1u) && f->n_terms < MAX_TERMS && uses_of(n, in->out.grad) == 1) {
                p->defer_ok[k] = 1;
                f->n_terms++;
                node_of(in)->written = 1;
                continue;
            }
            if (!((p->merges >> k) & 1u) || uses_of(n, in->out.grad) != 1 ||
                cols_of(&in->out) < 1)
                continue;
            /* Join the group of this parameter (made by its first candidate). */
            int gi = -1;
            for (int q = 0; q < g->n_groups && gi < 0; q++)
                if (g->groups[q].member[0]->in[g->groups[q].input[0]] == in) gi = q;
            if (gi < 0) gi = g->n_groups++;
            merge_group *gr = &g->groups[gi];
            if (gr->count == MAX_GROUP) continue;
            /* Keep the members ordered by tape position, lowest first. */
            int at = gr->count++;
            for (; at > 0 && node_of(gr->member[at - 1])->id > p->id; at--) {
                gr->member[at] = gr->member[at - 1];
                gr->input[at] = gr->input[at - 1];
                gr->k[at] = gr->k[at - 1];
            }
            gr->member[at] = n;
            gr->input[at] = k;
            gr->k[at] = n->out.shape[0];
        }
    }
    /* A group of one is no group. */
    for (int q = 0; q < g->n_groups; q++) {
        merge_group *gr = &g->groups[q];
        if (gr->count < 2) continue;
        for (int m = 0; m < gr->count; m++) node_of(gr->member[m])->group[gr->input[m]] = q;
    }
    /* Write events from the loss down: the first on each buffer may store. */
    int n_seen = 0, n_stored = 0;
    for (int i = start; i >= 0; i--) {
        cae_node *n = g->tape[i];
        if (!runs_backward(n)) continue;
        for (int k = 0; k < n->n_in; k++) {
            if (!writes_grad_of(n, k)) continue;
            node_of(n->in[k])->written = 1;
            if (!own_event(n, k)) continue;
            const cae_real *buf = n->in[k]->out.grad;
            int known = 0;
            for (int q = 0; q < n_seen && !known; q++) known = seen[q] == buf;
            if (known) continue;
            seen[n_seen++] = buf;
            if (uses_of(n, buf) == 1 && n->in[k] != loss && ((node_of(n)->stores >> k) & 1u)) {
                node_of(n)->store_first[k] = 1;
                stored[n_stored++] = buf;
            }
        }
    }
    /* A parameter nothing writes but whose terms are handed over: the finish
     * stores them. Zero each buffer whose first writer adds, once (the first
     * node on the tape that views it). */
    for (int q = 0; q < g->n_fins; q++) {
        param_fin *f = &g->fins[q];
        int known = 0;
        for (int s = 0; s < n_seen && !known; s++) known = seen[s] == f->param->out.grad;
        f->store_terms = !known && f->n_terms > 0;
        if (f->store_terms) stored[n_stored++] = f->param->out.grad;
    }
    for (int i = 0; i < g->n_tape; i++) {
        cae_node *n = g->tape[i];
        node_priv *p = node_of(n);
        p->grad_zero = 0;
        if (!n->out.grad) continue;
        int st = 0, dup = 0;
        for (int q = 0; q < n_stored && !st; q++) st = stored[q] == n->out.grad;
        for (int j = 0; j < i && !dup; j++) dup = g->tape[j]->out.grad == n->out.grad;
        p->grad_zero = !st && !dup;
    }
    free(seen);
    free(stored);
    return 0;
}

int cae_finish_alloc(cae_graph *g)
{
    size_t len = 0;
    const size_t line = CAE_ALIGN / sizeof(cae_real);
    for (int q = 0; q < g->n_fins; q++) {
        const cae_tensor *t = &g->fins[q].param->out;
        const int64_t R = rows_of(t), S = cols_of(t);
        if (g->fins[q].want_norms)
            len += cae_round_up((size_t)(((R + CAE_NORM_ROWS - 1) / CAE_NORM_ROWS) * S), line);
        if (g->fins[q].want_t) len += cae_round_up((size_t)t->size, line);
    }
    g->derived_ok = 0;
    if (!len) return 0;
    if (!(g->derived = cae_alloc_reals(len))) return -1;
    size_t off = 0;
    for (int q = 0; q < g->n_fins; q++) {
        param_fin *f = &g->fins[q];
        const cae_tensor *t = &f->param->out;
        const int64_t R = rows_of(t), S = cols_of(t);
        if (f->want_norms) {
            f->norm_part = g->derived + off;
            off += cae_round_up((size_t)(((R + CAE_NORM_ROWS - 1) / CAE_NORM_ROWS) * S), line);
        }
        if (f->want_t) {
            f->wt = g->derived + off;
            off += cae_round_up((size_t)t->size, line);
        }
    }
    return 0;
}

/* ------------------------------------------------ for built-in ops */

void cae_node_builtin_bits(cae_node *n, unsigned merges, unsigned defers)
{
    if (!n) return;
    node_of(n)->merges = merges;
    node_of(n)->defers = defers;
}

int cae_node_merge(const cae_node *n, int i, int *exec, int64_t *k_total)
{
    const int q = node_of(n)->group[i];
    if (q < 0) return 0;
    const merge_group *gr = &n->graph->groups[q];
    *exec = gr->member[0] == n;
    *k_total = 0;
    for (int m = 0; m < gr->count; m++) *k_total += gr->k[m];
    return gr->count;
}

void cae_node_merge_put(cae_node *n, int i, const cae_real *x, const cae_real *y)
{
    merge_group *gr = &n->graph->groups[node_of(n)->group[i]];
    for (int m = 1; m < gr->count; m++)
        if (gr->member[m] == n) {
            gr->x[m] = x;
            gr->y[m] = y;
            gr->got |= 1 << m;
        }
}

int cae_node_merge_take(const cae_node *n, int i, const cae_real **x, const cae_real **y,
                        int64_t *k, cae_node **node)
{
    const merge_group *gr = &n->graph->groups[node_of(n)->group[i]];
    int c = 0;
    for (int m = 1; m < gr->count; m++)
        if ((gr->got >> m) & 1) {
            x[c] = gr->x[m];
            y[c] = gr->y[m];
            k[c] = gr->k[m];
            node[c++] = gr->member[m];
        }
    return c;
}

int cae_node_defers(const cae_node *n, int i) { return node_of(n)->defer_ok[i]; }

void cae_node_defer(cae_node *n, int i, const cae_real *col, cae_real scale)
{
    param_fin *f = &n->graph->fins[node_of(n->in[i])->fin];
    CAE_ASSERT(node_of(n)->defer_ok[i] && f->got < MAX_TERMS, "defer: not granted");
    f->col[f->got] = col;
    f->scale[f->got++] = scale;
}

static param_fin *fin_of_input(const cae_node *n, int i)
{
    const cae_node *in = n->in[i];
    return is_param(in) && node_of(in)->fin >= 0 ? &n->graph->fins[node_of(in)->fin] : NULL;
}

int cae_node_want_transpose(cae_node *n, int i)
{
    param_fin *f = fin_of_input(n, i);
    if (!f || f->param->out.rank != 2) return -1;
    f->want_t = 1;
    return 0;
}

int cae_node_want_norms(cae_node *n, int i)
{
    param_fin *f = fin_of_input(n, i);
    if (!f || f->param->out.rank != 2) return -1;
    f->want_norms = 1;
    return 0;
}

const cae_real *cae_node_param_transpose(const cae_node *n, int i)
{
    const param_fin *f = n->graph->sgd ? fin_of_input(n, i) : NULL;
    return f ? f->wt : NULL;
}

const cae_real *cae_node_param_norms(const cae_node *n, int i)
{
    const param_fin *f = n->graph->sgd ? fin_of_input(n, i) : NULL;
    return f ? f->norm_part : NULL;
}

int cae_graph_merge_count(const cae_node *n, int i)
{
    const int q = node_of(n)->group[i];
    return q < 0 ? 0 : n->graph->groups[q].count;
}

const cae_node *cae_graph_finisher(const cae_node *p)
{
    const int q = node_of(p)->fin;
    return q < 0 ? NULL : p->graph->fins[q].finisher;
}

/* ------------------------------------------------------ the finish */

/* part (cols) = the sums of squares of x's rows (rows x cols, row stride
 * ld) in order. */
static void block_norms(const cae_real *x, int64_t ld, int64_t rows, int64_t cols,
                        cae_real *part)
{
    for (int64_t j = 0; j < cols; j++) part[j] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const cae_real *xr = x + r * ld;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) part[j] = CAE_FMA(xr[j], xr[j], part[j]);
    }
}

void cae_colnorm_partials(const cae_real *x, int64_t rows, int64_t cols, cae_real *part,
                          int threads)
{
    const int64_t blocks = (rows + CAE_NORM_ROWS - 1) / CAE_NORM_ROWS;
    if (threads <= 0) threads = omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (rows * cols >= 65536)
    for (int64_t q = 0; q < blocks; q++) {
        const int64_t r0 = q * CAE_NORM_ROWS;
        const int64_t nr = r0 + CAE_NORM_ROWS < rows ? CAE_NORM_ROWS : rows - r0;
        block_norms(x + r0 * cols, cols, nr, cols, part + q * cols);
    }
}

/* One row of an update in one loop: the gradient's element (the tile's,
 * plus at most one handed-over term), the update (with momentum or not)
 * and the partial column norm, while it is in registers. Inlined with
 * constant flags, each combination is its own vectorized loop. */
static inline __attribute__((always_inline)) cae_real
fin_row(const cae_real *restrict gr, cae_real *restrict w, cae_real *restrict v,
        cae_real *restrict pb, const cae_real *restrict cs, int64_t n, cae_real lr,
        cae_real mom, const int term, const int momentum, const int norms)
{
    cae_real bad = 0;
#pragma omp simd reduction(+ : bad)
    for (int64_t j = 0; j < n; j++) {
        const cae_real gj = term ? CAE_FMA(cs[j], w[j], gr[j]) : gr[j];
        bad += gj * 0;
        cae_real nw;
        if (momentum) {
            const cae_real vj = CAE_FMA(mom, v[j], -(lr * gj));
            v[j] = vj;
            nw = w[j] + vj;
        } else {
            nw = CAE_FMA(-lr, gj, w[j]);
        }
        w[j] = nw;
        if (norms) pb[j] = CAE_FMA(nw, nw, pb[j]);
    }
    return bad;
}

/* The stages of fin_tile one loop each over every row: the terms (or the
 * stored gradient), then, when upd, the update and the partial norms
 * (part: NULL for none, else zeroed). */
static void fin_stages(const param_fin *f, cae_real *c, int64_t ldc, int64_t i0, int64_t j0,
                       int64_t rows, int64_t cols, int upd, cae_real *vel, cae_real lr,
                       cae_real mom, cae_real *part, cae_real *bad)
{
    const cae_tensor *P = &f->param->out;
    const int64_t S = cols_of(P);
    const int nt = f->got, store = f->store_now;
    cae_real b = 0;
    for (int64_t r = 0; r < rows; r++) {
        cae_real *gr = c + r * ldc, *w = P->data + (i0 + r) * S + j0;
        if (nt || store) {
            const cae_real *c0 = nt ? f->col[0] + j0 : NULL;
            const cae_real s0 = nt ? f->scale[0] : 0;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                cae_real v = store ? 0 : gr[j];
                if (c0) v = store ? s0 * c0[j] * w[j] : CAE_FMA(s0 * c0[j], w[j], v);
                gr[j] = v;
            }
            for (int t = 1; t < nt; t++) {
                const cae_real *ct = f->col[t] + j0, st = f->scale[t];
#pragma omp simd
                for (int64_t j = 0; j < cols; j++) gr[j] = CAE_FMA(st * ct[j], w[j], gr[j]);
            }
        }
        if (!upd) continue;
        if (vel) {
            cae_real *v = vel + (i0 + r) * S + j0;
#pragma omp simd reduction(+ : b)
            for (int64_t j = 0; j < cols; j++) {
                b += gr[j] * 0;
                v[j] = CAE_FMA(mom, v[j], -(lr * gr[j]));
                w[j] += v[j];
            }
        } else {
#pragma omp simd reduction(+ : b)
            for (int64_t j = 0; j < cols; j++) {
                b += gr[j] * 0;
                w[j] = CAE_FMA(-lr, gr[j], w[j]);
            }
        }
        if (part) {
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) part[j] = CAE_FMA(w[j], w[j], part[j]);
        }
    }
    *bad += b;
}

/* The finish of rows i0.. (rows of them) x cols j0.. of parameter f's
 * gradient, given at c (row stride ldc). See the file's comment.
 *
 * An update with one handed-over term or the norms or both (the CAE's W,
 * with the fused penalty's term and norms; an op that defers a
 * column-scaled term, cae/op.h) runs fin_row, one loop per row, instead of
 * a loop per stage (the CAE's B = 1 encoder backward with its update:
 * 214 -> 152 us on one thread, 218 -> 146 on two, bench/profile; W stays in
 * L3 and the loops, not its traffic, set the time), with the term's column
 * scale multiplied once per block of FIN_COLS columns, not once per row.
 * The same operations per element in the same order: bit for bit the
 * stages' (test_sgd's cae_step_at_batch_one compares the step with
 * backward + update), and the gradient is left unwritten (cae/sgd.h:
 * undefined after an update). A plain update (the MLP's W, the RBM's) keeps
 * its one stage, which ran 7-12% faster at B = 1 than fin_row. */
enum { FIN_COLS = 512 };
static void fin_tile(void *ctx, cae_real *c, int64_t ldc, int64_t i0, int64_t j0, int64_t rows,
                     int64_t cols, double *acc)
{
    param_fin *f = ctx;
    const cae_graph *g = f->param->graph;
    const cae_tensor *P = &f->param->out;
    const int64_t S = cols_of(P), R = rows_of(P);
    const cae_sgd *u = g->sgd && f->upd >= 0 ? g->sgd : NULL;
    const cae_real lr = u ? (cae_real)u->lr : 0, mom = u ? (cae_real)u->momentum : 0;
    cae_real *vel = u && u->velocity ? u->velocity[f->upd] : NULL;
    const int norms = u && f->norm_part, trans = u && f->wt;
    const int nt = f->got, store = f->store_now;
    cae_real bad = 0; /* g * 0: NaN for an infinite or NaN gradient, else 0 */
    if (norms)
        CAE_ASSERT(i0 % CAE_NORM_ROWS == 0 && rows <= CAE_NORM_ROWS,
                   "finish: a tile of %lld rows at row %lld", (long long)rows, (long long)i0);
    cae_real *part = norms ? f->norm_part + (i0 / CAE_NORM_ROWS) * S + j0 : NULL;
    if (u && nt <= 1 && !store && (nt || norms)) { /* one loop per row */
        cae_real cs[FIN_COLS] __attribute__((aligned(64)));
        for (int64_t b0 = 0; b0 < cols; b0 += FIN_COLS) {
            const int64_t bn = b0 + FIN_COLS < cols ? FIN_COLS : cols - b0;
            if (nt) {
                const cae_real *ct = f->col[0] + j0 + b0, st = f->scale[0];
#pragma omp simd
                for (int64_t j = 0; j < bn; j++) cs[j] = st * ct[j];
            }
            cae_real *pb = part ? part + b0 : NULL;
            if (pb)
                for (int64_t j = 0; j < bn; j++) pb[j] = 0;
            for (int64_t r = 0; r < rows; r++) {
                const cae_real *gr = c + r * ldc + b0;
                cae_real *w = P->data + (i0 + r) * S + j0 + b0;
                cae_real *v = vel ? vel + (i0 + r) * S + j0 + b0 : NULL;
#define FIN_ROW(T, M, N) fin_row(gr, w, v, pb, cs, bn, lr, mom, T, M, N)
                switch (nt << 2 | (vel != NULL) << 1 | norms) { /* a term or norms */
                case 1: bad += FIN_ROW(0, 0, 1); break;
                case 3: bad += FIN_ROW(0, 1, 1); break;
                case 4: bad += FIN_ROW(1, 0, 0); break;
                case 5: bad += FIN_ROW(1, 0, 1); break;
                case 6: bad += FIN_ROW(1, 1, 0); break;
                default: bad += FIN_ROW(1, 1, 1); break;
                }
#undef FIN_ROW
            }
        }
    } else { /* a loop per stage */
        if (norms)
            for (int64_t j = 0; j < cols; j++) part[j] = 0;
        fin_stages(f, c, ldc, i0, j0, rows, cols, u != NULL, vel, lr, mom, part, &bad);
    }
    if (trans) cae_transpose_tile(f->wt + j0 * R + i0, R, P->data + i0 * S + j0, S, rows, cols);
    *acc += (double)bad;
}

/* Whether finishing f does anything in this pass. */
static int fin_work(const param_fin *f)
{
    return f->got || f->store_now || (f->param->graph->sgd && f->upd >= 0);
}

/* Row block q of the finish as one pass over the gradient. */
static void fin_block(param_fin *f, int64_t q, double *bad)
{
    const cae_tensor *P = &f->param->out;
    const int64_t R = rows_of(P), S = cols_of(P), r0 = q * CAE_NORM_ROWS;
    const int64_t nr = r0 + CAE_NORM_ROWS < R ? CAE_NORM_ROWS : R - r0;
    fin_tile(f, P->grad + r0 * S, S, r0, 0, nr, S, bad);
}

/* The finish as one pass over the gradient, in blocks of CAE_NORM_ROWS
 * rows; 2 threads take the blocks on either side of the owner split, as
 * the weight gradient's tiles do (cae/gemm.h cae_gemm_owner_split). */
static void fin_pass(param_fin *f)
{
    const cae_tensor *P = &f->param->out;
    const int64_t R = rows_of(P), blocks = (R + CAE_NORM_ROWS - 1) / CAE_NORM_ROWS;
    const int threads = cae_node_threads(f->param);
    const int64_t own = P->rank == 2 ? cae_gemm_owner_split(R) / CAE_NORM_ROWS : 0;
    double bad = 0;
#pragma omp parallel num_threads(threads) reduction(+ : bad) if (threads > 1 && P->size >= 65536)
    {
        if (own && omp_get_num_threads() == 2) {
            const int side = omp_get_thread_num();
            for (int64_t q = side ? own : 0; q < (side ? blocks : own); q++) fin_block(f, q, &bad);
        } else {
#pragma omp for schedule(static)
            for (int64_t q = 0; q < blocks; q++) fin_block(f, q, &bad);
        }
    }
    f->check = bad;
}

const cae_gemm_epilogue *cae_node_finish(cae_node *n, int i)
{
    node_priv *p = node_of(n);
    const int q = p->finishes[i];
    if (q < 0 || !writes_grad_of(n, i) || !own_event(n, i)) return NULL;
    param_fin *f = &n->graph->fins[q];
    if (f->done || !fin_work(f)) return NULL;
    p->asked[i] = 1;
    f->epi.tile = fin_tile;
    f->epi.ctx = f;
    /* In a training step nobody reads an updated tensor's gradient: the
     * product may keep its tiles in scratch (cae/sgd.h). */
    f->epi.c_discard = n->graph->sgd && f->upd >= 0;
    return &f->epi;
}

void cae_node_finish_end(cae_node *n, int i, double acc)
{
    node_priv *p = node_of(n);
    CAE_ASSERT(p->asked[i], "finish_end without cae_node_finish");
    param_fin *f = &n->graph->fins[p->finishes[i]];
    f->check = acc;
    f->done = 1;
}

void cae_finish_pass_begin(cae_graph *g, int from_loss)
{
    g->from_loss = from_loss;
    for (int q = 0; q < g->n_fins; q++) {
        param_fin *f = &g->fins[q];
        f->got = f->done = 0;
        f->check = 0;
        f->store_now = from_loss && f->store_terms;
        f->upd = -1;
        if (g->sgd)
            for (int e = 0; e < g->sgd->n; e++)
                if (g->sgd->tensors[e] == node_of(f->param)->param) f->upd = e;
    }
    for (int q = 0; q < g->n_groups; q++) g->groups[q].got = 0;
    for (int i = 0; i < g->n_tape; i++) memset(node_of(g->tape[i])->asked, 0, sizeof node_of(g->tape[i])->asked);
}

void cae_finish_after(cae_graph *g, cae_node *n)
{
    const node_priv *p = node_of(n);
    for (int k = 0; k < n->n_in; k++) {
        if (p->finishes[k] < 0) continue;
        param_fin *f = &g->fins[p->finishes[k]];
        if (f->done) continue;
        if (fin_work(f)) fin_pass(f);
        f->done = 1;
    }
}

void cae_finish_pass_end(cae_graph *g)
{
    const cae_sgd *s = g->sgd;
    if (!s || !s->grad_check) return;
    for (int e = 0; e < s->n; e++) s->grad_check[e] = 0;
    for (int q = 0; q < g->n_fins; q++)
        if (g->fins[q].upd >= 0) s->grad_check[g->fins[q].upd] = g->fins[q].check;
}

/* ------------------------------------------------- a training step */

/* The copies a step's forward reads, from the values as they are. */
static void refresh_derived(cae_graph *g)
{
    for (int q = 0; q < g->n_fins; q++) {
        param_fin *f = &g->fins[q];
        const cae_tensor *P = &f->param->out;
        const int th = cae_node_threads(f->param);
        if (f->norm_part) cae_colnorm_partials(P->data, rows_of(P), cols_of(P), f->norm_part, th);
        if (f->wt) cae_transpose(f->wt, P->data, rows_of(P), cols_of(P), th);
    }
    g->derived_ok = 1;
}

int cae_graph_step_sgd(cae_graph *g, const cae_sgd *s)
{
    CAE_ASSERT(g && g->compiled, "graph used before a successful cae_graph_compile");
    CAE_ASSERT(s && s->lr > 0 && s->momentum >= 0 && s->momentum < 1 && s->n >= 0 &&
                   (s->n == 0 || s->tensors),
               "step_sgd: a bad update (lr > 0, 0 <= momentum < 1, n tensors)");
    CAE_ASSERT(s->momentum == 0 || s->velocity, "step_sgd: momentum without velocities");
    if (!s->continues || !g->derived_ok) refresh_derived(g);
    g->sgd = s;
    cae_graph_forward(g);
    const double loss = (double)g->loss->out.data[0];
    if (!isfinite(loss)) {
        g->sgd = NULL;
        return 1;
    }
    cae_graph_backward(g);
    g->sgd = NULL;
    return 0;
}

/* Training steps in one pass (cae/sgd.h): each parameter updated by the
 * node that finishes its gradient. A step must equal backward followed by
 * the update of every tensor, whoever finishes (a built-in product in its
 * tiles, the graph after a user's op, a user's op that asks to), and must
 * not depend on reusing the copies the graph keeps (continues) nor on the
 * thread count (tiles kept in scratch on 2 threads among them). Also the
 * analysis behind it: merge groups, finishers, the penalty's handed-over
 * term, the Gibbs sampler that starts from the model's affine node, and the
 * check of non-finite gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cae/op.h"
#include "cae/ops.h"
#include "cae/penalty.h"
#include "cae/sgd.h"
#include "cae/task.h"
#include "graph/internal.h" /* the analysis: merge groups, finishers */
#include "shared.h"         /* CAE_FMA: the update's own rounding */
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define CLOSE 1e-12
#else
#define CLOSE 2e-5
#endif

/* The update as cae/sgd.h defines it, one tensor. */
static void update(cae_tensor *t, cae_real *v, cae_real lr, cae_real mom)
{
    for (int64_t i = 0; i < t->size; i++) {
        const cae_real g = t->grad[i];
        if (v) {
            v[i] = CAE_FMA(mom, v[i], -(lr * g));
            t->data[i] += v[i];
        } else {
            t->data[i] = CAE_FMA(-lr, g, t->data[i]);
        }
    }
}

static cae_params *clone_store(const cae_params *src)
{
    cae_params *p = cae_params_new();
    for (int i = 0; i < cae_params_count(src); i++) {
        const cae_tensor *a = cae_params_at(src, i);
        cae_tensor *b = cae_params_add(p, a->name, a->rank, a->shape);
        ck_assert(b != NULL);
        memcpy(b->data, a->data, (size_t)a->size * sizeof(cae_real));
    }
    return p;
}

/* Every tensor of a and b agrees: bit for bit (tol 0) or to tol relative. */
static void same_stores(const char *what, const cae_params *a, const cae_params *b, double tol)
{
    for (int i = 0; i < cae_params_count(a); i++) {
        const cae_tensor *x = cae_params_at(a, i), *y = cae_params_at(b, i);
        for (int64_t k = 0; k < x->size; k++) {
            const double u = x->data[k], v = y->data[k];
            if (tol == 0)
                ck_assert_msg(!memcmp(&x->data[k], &y->data[k], sizeof(cae_real)),
                              "%s: %s[%lld] = %.17g vs %.17g", what, x->name, (long long)k, u, v);
            else
                ck_assert_msg(fabs(u - v) <= tol * (1 + fabs(u)), "%s: %s[%lld] = %.17g vs %.17g",
                              what, x->name, (long long)k, u, v);
        }
    }
}

enum { D = 37, H = 29, B = 6, STEPS = 3, N_EX = 4 * B };

static void fill_batch(cae_real *x, int32_t *y, int step)
{
    tu_fill_uniform(x, B * D, 0, 1, 100 + (uint64_t)step);
    for (int i = 0; i < B; i++) y[i] = (step + i) % 3;
}

/* A task of kind m (d inputs, h units, batch b) on a fresh store from the seed. */
static cae_task *make_task_of(int m, cae_params *p, int fresh, int threads, int64_t d, int64_t h,
                              int64_t b)
{
    cae_error err;
    cae_task *t;
    if (m == CAE_MODEL_MLP) {
        cae_mlp_config c = {.n_layers = 1, .sizes = {d, h}, .act = {CAE_ACT_SIGMOID},
                            .n_classes = 3, .wd = 1e-3};
        ck_assert_msg(!fresh || !cae_mlp_params(p, &c, 5, &err), "%s", err.msg);
        t = cae_task_finetune(p, &c, b, 5, threads, &err);
    } else {
        cae_layer_config c;
        cae_layer_config_default(&c, m < 0 ? CAE_MODEL_CAE : (cae_model_kind)m, d, h);
        c.composed = m < 0;
        ck_assert_msg(!fresh || !cae_layer_params(p, 1, &c, 5, &err), "%s", err.msg);
        t = cae_task_pretrain(p, 1, &c, b, 5, threads, &err);
    }
    ck_assert_msg(t != NULL, "%s", err.msg);
    return t;
}

static cae_task *make_task(int m, cae_params *p, int fresh, int threads)
{
    return make_task_of(m, p, fresh, threads, D, H, B);
}

static const int kinds[] = {CAE_MODEL_CAE, -1 /* composed */, CAE_MODEL_AE, CAE_MODEL_DAE_B,
                            CAE_MODEL_RBM, CAE_MODEL_AE_WD, CAE_MODEL_MLP};

/* STEPS steps of cae_task_step_sgd against cae_task_step + the update, from
 * the same store and seed: the same tensors. Bit for bit where the forward
 * is the same products in both (no h W^T: the step reads W^T from the
 * graph's copy, cae_task_step transposes the product instead). */
START_TEST(step_is_backward_then_update)
{
    const int m = kinds[_i / 2];
    const double mom = _i % 2 ? 0.5 : 0;
    const cae_real lr = (cae_real)0.05;
    cae_params *p = cae_params_new();
    cae_task *t = make_task(m, p, 1, 1);
    cae_params *q = clone_store(p);
    cae_task *u = make_task(m, q, 0, 1);
    const int np = cae_task_n_params(t);
    cae_real *vel[8] = {0}, *vref[8] = {0};
    double ss[8];
    for (int i = 0; i < np; i++) {
        vel[i] = cae_alloc_reals((size_t)cae_task_param(t, i)->size);
        vref[i] = cae_alloc_reals((size_t)cae_task_param(t, i)->size);
    }
    cae_sgd s = {.lr = lr, .momentum = mom, .velocity = mom > 0 ? vel : NULL, .grad_check = ss};
    cae_real x[B * D];
    int32_t y[B];
    for (int step = 0; step < STEPS; step++) {
        fill_batch(x, y, step);
        double o1, o2;
        ck_assert_int_eq(cae_task_step_sgd(t, x, y, B, &s, &o1), CAE_OK);
        s.continues = 1;
        ck_assert_int_eq(cae_task_step(u, x, y, B, &o2), CAE_OK);
        for (int i = 0; i < np; i++) {
            ck_assert_msg(ss[i] == 0, "kind %d: grad_check[%d] = %g", m, i, ss[i]);
            update(cae_task_param(u, i), mom > 0 ? vref[i] : NULL, lr, (cae_real)mom);
        }
        ck_assert_msg(fabs(o1 - o2) <= CLOSE * (1 + fabs(o2)), "kind %d: objective %g vs %g", m,
                      o1, o2);
    }
    const int exact = m == CAE_MODEL_MLP;
    same_stores("step vs backward + update", p, q, exact ? 0 : CLOSE * 10);
    for (int i = 0; i < np; i++) {
        cae_free(vel[i]);
        cae_free(vref[i]);
    }
    cae_task_free(t);
    cae_task_free(u);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* A weight gradient big enough for a team of 2 threads, at K = B: the
 * finishing product keeps its tiles in per-thread scratch (the gradient is
 * never written out); still backward + update, bit for bit (the MLP's
 * forward is the same products in both). On one thread the tiles stay in
 * scratch at any K: the second case has K = 24, above the two-thread
 * threshold of 16 (lib/ops/matmul.c). */
START_TEST(tiles_in_scratch)
{
    enum { DW = 300, HW = 200, BMAX = 24 };
    const int threads = _i ? 1 : 2, bb = _i ? BMAX : B;
    const cae_mlp_config c = {.n_layers = 1, .sizes = {DW, HW}, .act = {CAE_ACT_SIGMOID},
                              .n_classes = 3};
    cae_error err;
    cae_params *p = cae_params_new();
    ck_assert_msg(!cae_mlp_params(p, &c, 5, &err), "%s", err.msg);
    cae_params *q = clone_store(p);
    cae_task *t = cae_task_finetune(p, &c, bb, 5, threads, &err);
    ck_assert_msg(t != NULL, "%s", err.msg);
    cae_task *u = cae_task_finetune(q, &c, bb, 5, threads, &err);
    ck_assert_msg(u != NULL, "%s", err.msg);
    cae_real *x = cae_alloc_reals((size_t)BMAX * DW);
    int32_t y[BMAX];
    cae_sgd s = {.lr = 0.05};
    for (int step = 0; step < STEPS; step++) {
        tu_fill_uniform(x, bb * DW, 0, 1, 200 + (uint64_t)step);
        for (int i = 0; i < bb; i++) y[i] = (step + i) % 3;
        double o1, o2;
        ck_assert_int_eq(cae_task_step_sgd(t, x, y, bb, &s, &o1), CAE_OK);
        s.continues = 1;
        ck_assert_int_eq(cae_task_step(u, x, y, bb, &o2), CAE_OK);
        for (int i = 0; i < cae_task_n_params(u); i++)
            update(cae_task_param(u, i), NULL, (cae_real)s.lr, 0);
        ck_assert(o1 == o2);
    }
    same_stores(_i ? "step vs backward + update, 1 thread, K = 24"
                   : "step vs backward + update, 2 threads",
                p, q, 0);
    cae_free(x);
    cae_task_free(t);
    cae_task_free(u);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* The CAE at B = 1, where the step reads no transposed copy (h W^T is the
 * same dot products over W in both): a step is backward + update bit for
 * bit, so the one-loop finish of W (the penalty's handed-over term, the
 * update and the column norms the next step's penalty reads) rounds as the
 * three loops over the gradient do. On 1 and 2 threads, W big enough for a
 * team and the owner split. */
START_TEST(cae_step_at_batch_one)
{
    enum { DC = 400, HC = 200 };
    const int threads = _i + 1;
    const cae_real lr = (cae_real)0.05;
    cae_params *p = cae_params_new();
    cae_task *t = make_task_of(CAE_MODEL_CAE, p, 1, threads, DC, HC, 1);
    cae_params *q = clone_store(p);
    cae_task *u = make_task_of(CAE_MODEL_CAE, q, 0, threads, DC, HC, 1);
    cae_real x[DC];
    cae_sgd s = {.lr = lr};
    for (int step = 0; step < 4; step++) {
        tu_fill_uniform(x, DC, 0, 1, 300 + (uint64_t)step);
        double o1, o2;
        ck_assert_int_eq(cae_task_step_sgd(t, x, NULL, 1, &s, &o1), CAE_OK);
        s.continues = 1;
        ck_assert_int_eq(cae_task_step(u, x, NULL, 1, &o2), CAE_OK);
        for (int i = 0; i < cae_task_n_params(u); i++) update(cae_task_param(u, i), NULL, lr, 0);
        ck_assert_msg(o1 == o2, "step %d: objective %.17g vs %.17g", step, o1, o2);
    }
    same_stores("CAE step at B = 1 vs backward + update", p, q, 0);
    cae_task_free(t);
    cae_task_free(u);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* A one-column weight under a transposed operand: its gradient is a
 * batch-of-one product (dot products, no tiles), which keeps nothing in
 * scratch; the graph compiles and a step is backward + update. */
START_TEST(one_column_weight)
{
    cae_params *p = cae_params_new();
    tu_fill_uniform(cae_params_add(p, "w", 2, (int64_t[]){D, 1})->data, D, -0.3, 0.3, 3);
    cae_params *q = clone_store(p);
    cae_graph *g[2];
    cae_node *x[2];
    for (int k = 0; k < 2; k++) {
        g[k] = cae_graph_new(k ? q : p, B);
        x[k] = cae_input(g[k], "x", 2, (int64_t[]){D, B});
        cae_node *w = cae_param(g[k], cae_params_get(k ? q : p, "w"));
        cae_node *loss = cae_sum(g[k], cae_square(g[k], cae_matmul(g[k], x[k], w, 1, 0)));
        ck_assert_msg(!cae_graph_compile(g[k], loss), "%s", cae_graph_error(g[k]));
        tu_fill_uniform(cae_node_value(x[k])->data, D * B, 0, 1, 4);
    }
    cae_tensor *ts[1] = {cae_params_get(p, "w")};
    cae_sgd s = {.lr = 0.01, .n = 1, .tensors = ts};
    ck_assert_int_eq(cae_graph_step_sgd(g[0], &s), 0);
    cae_graph_forward(g[1]);
    cae_graph_backward(g[1]);
    update(cae_params_get(q, "w"), NULL, (cae_real)0.01, 0);
    same_stores("one column: step vs backward + update", p, q, 0);
    for (int k = 0; k < 2; k++) cae_graph_free(g[k]);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* The copies kept between steps (W^T, partial column norms) give what
 * fresh ones give, bit for bit; and 1 thread gives what 2 give. */
START_TEST(continues_and_threads_change_nothing)
{
    const int m = kinds[_i];
    cae_params *p[3];
    cae_task *t[3];
    p[0] = cae_params_new();
    t[0] = make_task(m, p[0], 1, 1);
    for (int k = 1; k < 3; k++) {
        p[k] = clone_store(p[0]);
        t[k] = make_task(m, p[k], 0, k == 2 ? 2 : 1);
    }
    cae_sgd s[3] = {{.lr = 0.05}, {.lr = 0.05}, {.lr = 0.05}};
    cae_real x[B * D];
    int32_t y[B];
    for (int step = 0; step < STEPS; step++) {
        fill_batch(x, y, step);
        for (int k = 0; k < 3; k++) {
            double o;
            s[k].continues = k != 1 && step > 0; /* task 1 never reuses */
            ck_assert_int_eq(cae_task_step_sgd(t[k], x, y, B, &s[k], &o), CAE_OK);
        }
    }
    same_stores("continues vs afresh", p[0], p[1], 0);
    same_stores("1 thread vs 2", p[0], p[2], 0);
    for (int k = 0; k < 3; k++) {
        cae_task_free(t[k]);
        cae_params_free(p[k]);
    }
}
END_TEST

/* Weights large enough for the step's split between 2 threads (cae/gemm.h
 * cae_gemm_owner_split: 200 rows split at 96; x W cut along K there, the
 * finish and h W^T over W^T on either side of it, and for B = 1 the dot
 * products over W's rows): 1, 2 and 3 threads give the same parameters,
 * bit for bit, at B = 20 and B = 1, with momentum. */
enum { LD = 200, LH = 400 };
START_TEST(threads_agree_on_split_weights)
{
    const int m = kinds[_i / 2];
    const int64_t b = _i % 2 ? 1 : 20;
    int team = 0;
#pragma omp parallel num_threads(3)
#pragma omp single
    team = omp_get_num_threads();
    ck_assert_msg(team == 3, "OpenMP gave a team of %d threads for 3: nothing would be compared",
                  team);
    cae_params *p[3];
    cae_task *t[3];
    cae_real *vel[3][8] = {{0}};
    cae_sgd s[3];
    p[0] = cae_params_new();
    for (int k = 0; k < 3; k++) {
        if (k) p[k] = clone_store(p[0]);
        t[k] = make_task_of(m, p[k], k == 0, k + 1, LD, LH, b);
        for (int i = 0; i < cae_task_n_params(t[k]); i++)
            vel[k][i] = cae_alloc_reals((size_t)cae_task_param(t[k], i)->size);
        s[k] = (cae_sgd){.lr = 0.05, .momentum = 0.5, .velocity = vel[k]};
    }
    cae_real *x = cae_alloc_reals((size_t)(b * LD));
    int32_t y[20];
    for (int step = 0; step < STEPS; step++) {
        tu_fill_uniform(x, b * LD, 0, 1, 300 + (uint64_t)step);
        for (int i = 0; i < b; i++) y[i] = (step + i) % 3;
        for (int k = 0; k < 3; k++) {
            double o;
            s[k].continues = step > 0;
            ck_assert_int_eq(cae_task_step_sgd(t[k], x, y, b, &s[k], &o), CAE_OK);
        }
    }
    same_stores("1 thread vs 2, split weights", p[0], p[1], 0);
    same_stores("1 thread vs 3, split weights", p[0], p[2], 0);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 8; i++) cae_free(vel[k][i]);
        cae_task_free(t[k]);
        cae_params_free(p[k]);
    }
    cae_free(x);
}
END_TEST

/* ---- users' ops: y = x^3 that only adds, and sum(x^2) whose backward asks
 * to finish its input's gradient itself (cae/op.h). */
static int same_infer(cae_node *n) { return cae_node_same_shape(n, 0); }
static void cube_forward(cae_node *n)
{
    const cae_real *x = n->in[0]->out.data;
    for (int64_t i = 0; i < n->out.size; i++) n->out.data[i] = x[i] * x[i] * x[i];
}
static void cube_backward(cae_node *n)
{
    cae_tensor *x = &n->in[0]->out;
    if (!x->grad) return;
    for (int64_t i = 0; i < n->out.size; i++)
        x->grad[i] += 3 * x->data[i] * x->data[i] * n->out.grad[i];
}
static const cae_op cube_op = {.name = "cube", .n_in = 1, .infer = same_infer,
                               .forward = cube_forward, .backward = cube_backward};

static int sumsq_infer(cae_node *n) { return cae_node_scalar(n); }
static void sumsq_forward(cae_node *n)
{
    double s = 0;
    const cae_tensor *x = &n->in[0]->out;
    for (int64_t i = 0; i < x->size; i++) s += (double)x->data[i] * x->data[i];
    n->out.data[0] = (cae_real)s;
}
static void sumsq_backward(cae_node *n)
{
    cae_tensor *x = &n->in[0]->out;
    if (!x->grad) return;
    /* Ask before writing: the finish changes the values this reads. */
    const cae_gemm_epilogue *e = n->iattr[0] ? cae_node_finish(n, 0) : NULL;
    const cae_real g = 2 * n->out.grad[0];
    for (int64_t i = 0; i < x->size; i++) x->grad[i] += g * x->data[i];
    if (!e) return;
    const int64_t cols = x->shape[x->rank - 1], rows = x->size / cols;
    double acc = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += CAE_GEMM_EPILOGUE_ROWS) {
        const int64_t nr = r0 + CAE_GEMM_EPILOGUE_ROWS < rows ? CAE_GEMM_EPILOGUE_ROWS : rows - r0;
        e->tile(e->ctx, x->grad + r0 * cols, cols, r0, 0, nr, cols, &acc);
    }
    cae_node_finish_end(n, 0, acc);
}
static const cae_op sumsq_op = {.name = "sumsq", .n_in = 1, .infer = sumsq_infer,
                                .forward = sumsq_forward, .backward = sumsq_backward};

/* loss = bce(sigmoid(x W + b) W^T + c, x) + 0.3 sum(W^3) (+ 0.2 sum(W^2)):
 * the users' ops are lowest on the tape when `low`, so one of them
 * finishes W (the graph after the cube; the sum of squares itself when it
 * asks); else the built-in affine does. */
static cae_graph *user_graph(cae_params *p, int low, int asks, cae_node **xn)
{
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *W = cae_param(g, cae_params_get(p, "W"));
    cae_node *reg = NULL, *cu = NULL, *sq = NULL;
    cae_attr at = {.i = {asks}};
    /* Created in this order (the lowest on the tape finishes W): sumsq first
     * when it asks, else the cube. */
    if (low && asks) sq = cae_node_new_attr(g, &sumsq_op, &W, &at, "sumsq");
    if (low) cu = cae_node_new(g, &cube_op, &W, "cube");
    if (low && !asks) sq = cae_node_new_attr(g, &sumsq_op, &W, &at, "sumsq");
    if (low) reg = cae_add(g, cae_scale(g, cae_sum(g, cu), 0.3f), cae_scale(g, sq, 0.2f));
    cae_node *a = cae_affine(g, x, W, cae_param(g, cae_params_get(p, "b")), 0);
    cae_node *z = cae_affine(g, cae_sigmoid(g, a), W, cae_param(g, cae_params_get(p, "c")), 1);
    cae_node *loss = cae_bce_logits(g, z, x);
    if (!low) {
        cu = cae_node_new(g, &cube_op, &W, "cube");
        sq = cae_node_new_attr(g, &sumsq_op, &W, &at, "sumsq");
        reg = cae_add(g, cae_scale(g, cae_sum(g, cu), 0.3f), cae_scale(g, sq, 0.2f));
    }
    ck_assert_msg(!cae_graph_compile(g, cae_add(g, loss, reg)), "%s", cae_graph_error(g));
    *xn = x;
    return g;
}

static cae_params *user_store_of(int64_t d, int64_t h)
{
    cae_params *p = cae_params_new();
    tu_fill_uniform(cae_params_add(p, "W", 2, (int64_t[]){d, h})->data, d * h, -0.3, 0.3, 7);
    tu_fill_uniform(cae_params_add(p, "b", 1, (int64_t[]){h})->data, h, -0.1, 0.1, 8);
    tu_fill_uniform(cae_params_add(p, "c", 1, (int64_t[]){d})->data, d, -0.1, 0.1, 9);
    return p;
}

static cae_params *user_store(void) { return user_store_of(D, H); }

/* Whoever finishes W — the graph after a user's op, a user's op that asks,
 * or the built-in product — a step is backward + update; and the users'
 * ops train as well as the built-ins (the objective goes down). */
START_TEST(users_ops_finish_as_well)
{
    const int low = _i / 2, asks = _i % 2;
    cae_params *p = user_store(), *q = clone_store(p);
    cae_node *x1, *x2;
    cae_graph *g = user_graph(p, low, asks, &x1), *h = user_graph(q, low, asks, &x2);
    cae_node *W = NULL;
    for (int i = 0; i < cae_graph_tape_length(g) && !W; i++)
        if (cae_node_param(cae_graph_tape_at(g, i)) == cae_params_get(p, "W"))
            W = cae_graph_tape_at(g, i);
    const char *fin = cae_node_op_name(cae_graph_finisher(W));
    ck_assert_msg(!strcmp(fin, !low ? "affine" : asks ? "sumsq" : "cube"), "W is finished by '%s'",
                  fin);
    cae_tensor *ts[3] = {cae_params_get(p, "W"), cae_params_get(p, "b"), cae_params_get(p, "c")};
    cae_sgd s = {.lr = 0.02, .n = 3, .tensors = ts};
    double first = 0, last = 0;
    for (int step = 0; step < 2 * STEPS; step++) {
        tu_fill_uniform(cae_node_value(x1)->data, B * D, 0, 1, 50 + (uint64_t)(step % 2));
        memcpy(cae_node_value(x2)->data, cae_node_value(x1)->data, B * D * sizeof(cae_real));
        ck_assert_int_eq(cae_graph_step_sgd(g, &s), 0);
        s.continues = 1;
        cae_graph_forward(h);
        cae_graph_backward(h);
        for (int i = 0; i < cae_params_count(q); i++) update(cae_params_at(q, i), NULL, (cae_real)0.02, 0);
        const double o = cae_node_value(cae_graph_loss(g))->data[0];
        if (step == 0) first = o;
        last = o;
    }
    same_stores("users' ops", p, q, CLOSE * 10);
    ck_assert_msg(last < first, "the objective went from %g to %g", first, last);
    cae_graph_free(g);
    cae_graph_free(h);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* A tied layer: its two weight gradients form one group run by the encoder
 * (the last to run), which also finishes W and stores its gradient; the
 * fused penalty hands its W term over. A pass from h (only the encoder's
 * product runs) still gives the right dW. */
START_TEST(merge_groups_and_finishers)
{
    cae_params *p = user_store();
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *W = cae_param(g, cae_params_get(p, "W"));
    cae_node *a = cae_affine(g, x, W, cae_param(g, cae_params_get(p, "b")), 0);
    cae_node *hn = cae_sigmoid(g, a);
    cae_node *z = cae_affine(g, hn, W, cae_param(g, cae_params_get(p, "c")), 1);
    cae_node *pen = cae_contractive_penalty(g, a, hn, W, CAE_ACT_SIGMOID, CAE_W_IN_UNITS);
    cae_node *loss = cae_add(g, cae_bce_logits(g, z, x), cae_scale(g, pen, 0.1f));
    ck_assert_msg(!cae_graph_compile(g, loss), "%s", cae_graph_error(g));
    ck_assert_int_eq(cae_graph_merge_count(a, 1), 2);
    ck_assert_int_eq(cae_graph_merge_count(z, 1), 2);
    ck_assert_ptr_eq(cae_graph_finisher(W), a);
    ck_assert_int_eq(cae_graph_grad_zeroed(W), 0);
    ck_assert_int_eq(cae_node_defers(pen, 2), 1);
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 3);
    cae_graph_forward(g);
    cae_real seed[B * H];
    tu_fill_uniform(seed, B * H, -1, 1, 4);
    cae_graph_backward_from(g, hn, seed);
    const cae_real *xv = cae_node_value(x)->data, *hv = cae_node_value(hn)->data;
    const cae_tensor *w = cae_params_get(p, "W");
    for (int i = 0; i < D; i++)
        for (int j = 0; j < H; j++) {
            double want = 0;
            for (int r = 0; r < B; r++)
                want += (double)xv[r * D + i] * seed[r * H + j] * hv[r * H + j] * (1 - hv[r * H + j]);
            ck_assert_msg(fabs(w->grad[i * H + j] - want) <= 1e-5 * (1 + fabs(want)),
                          "dW[%d][%d] = %g, want %g", i, j, (double)w->grad[i * H + j], want);
        }
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* cae_gibbs_pre samples what cae_gibbs samples, bit for bit, from the data
 * and from a persistent chain: on a small W, and on one whose products are
 * cut along K (cae_node_owner_rows) in both nodes, on 2 threads. */
START_TEST(gibbs_from_the_affine_node)
{
    const int64_t d = _i ? 200 : 37, h = _i ? 400 : 29, bs = _i ? 20 : 6;
    cae_params *p = user_store_of(d, h);
    cae_params *bufs = cae_params_new();
    cae_tensor *chain[2], *steps[2];
    for (int k = 0; k < 2; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "chain%d", k);
        chain[k] = cae_params_add(bufs, nm, 2, (int64_t[]){bs, d});
        snprintf(nm, sizeof nm, "steps%d", k);
        steps[k] = cae_params_add(bufs, nm, 1, (int64_t[]){1});
    }
    cae_graph *g[2];
    cae_node *vk[2], *x[2];
    for (int k = 0; k < 2; k++) {
        g[k] = cae_graph_new(p, bs);
        cae_graph_set_threads(g[k], 2);
        x[k] = cae_input(g[k], "x", 2, (int64_t[]){bs, d});
        cae_node *W = cae_param(g[k], cae_params_get(p, "W"));
        cae_node *b = cae_param(g[k], cae_params_get(p, "b"));
        cae_node *c = cae_param(g[k], cae_params_get(p, "c"));
        vk[k] = k ? cae_gibbs_pre(g[k], cae_affine(g[k], x[k], W, b, 0), W, b, c, 2, chain[k], steps[k])
                  : cae_gibbs(g[k], x[k], W, b, c, 2, chain[k], steps[k]);
        ck_assert_msg(!cae_graph_compile(g[k], cae_sum(g[k], vk[k])), "%s", cae_graph_error(g[k]));
        tu_fill_uniform(cae_node_value(x[k])->data, bs * d, 0, 1, 77);
        cae_graph_seed(g[k], 9);
    }
    for (int pass = 0; pass < 3; pass++) { /* the data, then the chain */
        for (int k = 0; k < 2; k++) cae_graph_forward(g[k]);
        ck_assert(!memcmp(cae_node_value(vk[0])->data, cae_node_value(vk[1])->data,
                          bs * d * sizeof(cae_real)));
    }
    for (int k = 0; k < 2; k++) cae_graph_free(g[k]);
    cae_params_free(bufs);
    cae_params_free(p);
}
END_TEST

/* A user's op whose output is 0 and whose backward adds an infinite term
 * to one element of its input's gradient. */
static void inf_forward(cae_node *n)
{
    for (int64_t i = 0; i < n->out.size; i++) n->out.data[i] = 0;
}
static void inf_backward(cae_node *n)
{
    cae_tensor *x = &n->in[0]->out;
    if (x->grad) x->grad[3] += (cae_real)INFINITY;
}
static const cae_op inf_op = {.name = "inf", .n_in = 1, .infer = same_infer,
                              .forward = inf_forward, .backward = inf_backward};

/* A finite loss with an infinite term in W's gradient: grad_check says so
 * for W alone, whoever finishes W (the built-in product in its tiles when
 * the op is higher on the tape, the graph's pass after the op when it is
 * the lowest). */
START_TEST(infinite_gradient_is_reported)
{
    const int low = _i;
    cae_params *p = user_store();
    cae_graph *g = cae_graph_new(p, B);
    cae_node *x = cae_input(g, "x", 2, (int64_t[]){B, D});
    cae_node *W = cae_param(g, cae_params_get(p, "W"));
    cae_node *bad = low ? cae_node_new(g, &inf_op, &W, "inf") : NULL;
    cae_node *a = cae_affine(g, x, W, cae_param(g, cae_params_get(p, "b")), 0);
    cae_node *z = cae_affine(g, cae_sigmoid(g, a), W, cae_param(g, cae_params_get(p, "c")), 1);
    if (!low) bad = cae_node_new(g, &inf_op, &W, "inf");
    ck_assert_msg(!cae_graph_compile(g, cae_add(g, cae_bce_logits(g, z, x), cae_sum(g, bad))),
                  "%s", cae_graph_error(g));
    ck_assert_str_eq(cae_node_op_name(cae_graph_finisher(W)), low ? "inf" : "affine");
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 1);
    cae_tensor *ts[3] = {cae_params_get(p, "W"), cae_params_get(p, "b"), cae_params_get(p, "c")};
    double check[3] = {1, 1, 1};
    cae_sgd s = {.lr = 0.02, .n = 3, .tensors = ts, .grad_check = check};
    ck_assert_int_eq(cae_graph_step_sgd(g, &s), 0);
    ck_assert_msg(isnan(check[0]) && check[1] == 0 && check[2] == 0,
                  "grad_check: W %g, b %g, c %g", check[0], check[1], check[2]);
    cae_graph_free(g);
    cae_params_free(p);
}
END_TEST

/* A task split into parts (data-parallel) must sum its gradients before
 * the update: the one-pass step refuses it and updates nothing. */
START_TEST(split_task_refuses_one_pass)
{
    cae_params *p = cae_params_new();
    cae_task *t = make_task(CAE_MODEL_AE, p, 1, 1);
    cae_params *q = clone_store(p);
    ck_assert_int_eq(cae_task_set_part(t, 0, 2), CAE_OK);
    cae_real x[B * D];
    int32_t y[B];
    fill_batch(x, y, 0);
    cae_sgd s = {.lr = 0.05};
    double o;
    ck_assert_int_eq(cae_task_step_sgd(t, x, y, B / 2, &s, &o), CAE_ERR_ARG);
    ck_assert_msg(strstr(cae_task_error(t), "part 0 of 2"), "%s", cae_task_error(t));
    same_stores("a refused step", p, q, 0);
    cae_task_free(t);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

/* A step whose loss is not finite changes nothing and says so. */
START_TEST(nan_loss_updates_nothing)
{
    cae_params *p = user_store(), *q = clone_store(p);
    cae_node *x;
    cae_graph *g = user_graph(p, 0, 0, &x);
    tu_fill_uniform(cae_node_value(x)->data, B * D, 0, 1, 1);
    cae_node_value(x)->data[5] = NAN;
    cae_tensor *ts[3] = {cae_params_get(p, "W"), cae_params_get(p, "b"), cae_params_get(p, "c")};
    cae_sgd s = {.lr = 0.02, .n = 3, .tensors = ts};
    ck_assert_int_eq(cae_graph_step_sgd(g, &s), 1);
    same_stores("after a NaN loss", p, q, 0);
    cae_graph_free(g);
    cae_params_free(p);
    cae_params_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sgd");
    TCase *tc = tcase_create("sgd");
    tcase_set_timeout(tc, 120);
    const int nk = (int)(sizeof kinds / sizeof kinds[0]);
    tcase_add_loop_test(tc, step_is_backward_then_update, 0, 2 * nk);
    tcase_add_loop_test(tc, continues_and_threads_change_nothing, 0, nk);
    tcase_add_loop_test(tc, threads_agree_on_split_weights, 0, 2 * nk);
    tcase_add_loop_test(tc, users_ops_finish_as_well, 0, 4);
    tcase_add_test(tc, merge_groups_and_finishers);
    tcase_add_loop_test(tc, gibbs_from_the_affine_node, 0, 2);
    tcase_add_loop_test(tc, tiles_in_scratch, 0, 2);
    tcase_add_loop_test(tc, cae_step_at_batch_one, 0, 2);
    tcase_add_test(tc, one_column_weight);
    tcase_add_loop_test(tc, infinite_gradient_is_reported, 0, 2);
    tcase_add_test(tc, split_task_refuses_one_pass);
    tcase_add_test(tc, nan_loss_updates_nothing);
    suite_add_tcase(s, tc);
    return tu_run(s);
}

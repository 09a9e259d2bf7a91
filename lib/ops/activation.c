/* Element-wise activations: sigmoid, tanh, relu, softplus, exp, log and
 * step. sigmoid and softplus are written to be finite for any finite x:
 * neither ever evaluates e^x for a large positive x. Math goes through
 * ops/vmath.h (vectorizable exp and log; libm in the double build). */
#include <tgmath.h>

#include "cae/kernels.h"
#include "cae/op.h"
#include "cae/ops.h"
#include "ops/ewise.h"
#include "ops/vmath.h"

/* ------------------------------------------------------------ kernels */

void caek_sigmoid_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = cae_vsigmoid(x[i]));
}

/* dx (+)= dout out (1 - out); store: = (lib/shared.h). */
static void sigmoid_grad(cae_real *dx, const cae_real *dout, const cae_real *out, int64_t n,
                         int nt, int store)
{   /* dx, dout, out: n */
    CAEK_PUT(n, nt, store, dx, dout[i] * out[i] * (1 - out[i]));
}

void caek_sigmoid_backward(cae_real *dx, const cae_real *dout,
                           const cae_real *out, int64_t n, int nt)
{   /* dx, dout, out: n */
    sigmoid_grad(dx, dout, out, n, nt, 0);
}

void caek_tanh_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = tanh(x[i]));
}

static void tanh_grad(cae_real *dx, const cae_real *dout, const cae_real *out, int64_t n, int nt,
                      int store)
{   /* dx, dout, out: n */
    CAEK_PUT(n, nt, store, dx, dout[i] * (1 - out[i] * out[i]));
}

void caek_tanh_backward(cae_real *dx, const cae_real *dout,
                        const cae_real *out, int64_t n, int nt)
{   /* dx, dout, out: n */
    tanh_grad(dx, dout, out, n, nt, 0);
}

void caek_relu_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] > 0 ? x[i] : 0);
}

static void relu_grad(cae_real *dx, const cae_real *dout, const cae_real *x, int64_t n, int nt,
                      int store)
{   /* dx, dout, x: n */
    CAEK_PUT(n, nt, store, dx, x[i] > 0 ? dout[i] : 0);
}

void caek_relu_backward(cae_real *dx, const cae_real *dout,
                        const cae_real *x, int64_t n, int nt)
{   /* dx, dout, x: n */
    relu_grad(dx, dout, x, n, nt, 0);
}

void caek_softplus_forward(cae_real *out, const cae_real *x, int64_t n,
                           int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = cae_vsoftplus_e(x[i], cae_vexp(-fabs(x[i]))));
}

static void softplus_grad(cae_real *dx, const cae_real *dout, const cae_real *x, int64_t n, int nt,
                          int store)
{   /* dx, dout, x: n */
    CAEK_PUT(n, nt, store, dx, dout[i] * cae_vsigmoid(x[i]));
}

void caek_softplus_backward(cae_real *dx, const cae_real *dout,
                            const cae_real *x, int64_t n, int nt)
{   /* dx, dout, x: n */
    softplus_grad(dx, dout, x, n, nt, 0);
}

void caek_exp_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = cae_vexp(x[i]));
}

static void exp_grad(cae_real *dx, const cae_real *dout, const cae_real *out, int64_t n, int nt,
                     int store)
{   /* dx, dout, out: n */
    CAEK_PUT(n, nt, store, dx, dout[i] * out[i]);
}

void caek_exp_backward(cae_real *dx, const cae_real *dout,
                       const cae_real *out, int64_t n, int nt)
{   /* dx, dout, out: n */
    exp_grad(dx, dout, out, n, nt, 0);
}

void caek_log_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = cae_vlog(x[i]));
}

static void log_grad(cae_real *dx, const cae_real *dout, const cae_real *x, int64_t n, int nt,
                     int store)
{   /* dx, dout, x: n */
    CAEK_PUT(n, nt, store, dx, dout[i] / x[i]);
}

void caek_log_backward(cae_real *dx, const cae_real *dout, const cae_real *x,
                       int64_t n, int nt)
{   /* dx, dout, x: n */
    log_grad(dx, dout, x, n, nt, 0);
}

void caek_step_forward(cae_real *out, const cae_real *x, int64_t n, int nt)
{   /* out, x: n */
    CAEK_FOR(n, nt, out[i] = x[i] > 0 ? 1 : 0);
}

/* -------------------------------------------------------------- nodes */

#define IN0(n) (&(n)->in[0]->out)
#define NT(n) cae_node_threads(n)

/* ------------------------------------------------------ tangent rules */
/* phi(x)' = phi'(x) x', with phi'(x) as nodes, from the output h where
 * that is cheaper (cae/op.h, cae/jvp.h). */

static cae_node *times_tangent(cae_graph *g, cae_node *n, cae_node *d, cae_node *t)
{
    return cae_mul(g, cae_tangent_lift(g, d, cae_tangent_dirs(n->in[0], t)), t);
}
static cae_node *sigmoid_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* h (1 - h) */
    return times_tangent(g, n, cae_mul(g, n, cae_add_scalar(g, cae_scale(g, n, -1), 1)), t[0]);
}
static cae_node *tanh_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* 1 - h^2 */
    return times_tangent(g, n, cae_add_scalar(g, cae_scale(g, cae_square(g, n), -1), 1), t[0]);
}
static cae_node *relu_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* [x > 0] */
    return times_tangent(g, n, cae_step(g, n->in[0]), t[0]);
}
static cae_node *softplus_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* sigmoid(x) */
    return times_tangent(g, n, cae_sigmoid(g, n->in[0]), t[0]);
}
static cae_node *exp_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* e^x = h */
    return times_tangent(g, n, n, t[0]);
}
static cae_node *log_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* 1 / x = e^-h */
    return times_tangent(g, n, cae_exp(g, cae_scale(g, n, -1)), t[0]);
}
static cae_node *step_tan(cae_graph *g, cae_node *n, cae_node *const *t)
{   /* zero almost everywhere */
    (void)g;
    (void)n;
    (void)t;
    return NULL;
}

/* One adapter pair per activation; BY is the buffer the derivative is
 * computed from: IN0(n)->data (the input) or n->out.data (the output).
 * The backward may store (the first writer of its input's gradient). */
#define ACTIVATION(op, BY)                                                  \
    static void op##_fwd(cae_node *n)                                       \
    {                                                                       \
        caek_##op##_forward(n->out.data, IN0(n)->data, n->out.size, NT(n)); \
    }                                                                       \
    static void op##_bwd(cae_node *n)                                       \
    {                                                                       \
        if (cae_needs_grad(n->in[0]))                                       \
            op##_grad(IN0(n)->grad, n->out.grad, BY, n->out.size, NT(n),    \
                      cae_node_stores(n, 0));                               \
    }                                                                       \
    static const cae_op op##_op = {.name = #op, .n_in = 1, .infer = act_infer, \
                                   .forward = op##_fwd, .backward = op##_bwd, \
                                   .tangent = op##_tan};

static int act_infer(cae_node *n) { return cae_node_same_shape(n, 0); }

ACTIVATION(sigmoid, n->out.data)
ACTIVATION(tanh, n->out.data)
ACTIVATION(relu, IN0(n)->data)
ACTIVATION(softplus, IN0(n)->data)
ACTIVATION(exp, n->out.data)
ACTIVATION(log, IN0(n)->data)

/* step's gradient is zero almost everywhere: a NULL backward tells the
 * tape that no gradient flows through it (the node keeps none), which is
 * exact, and a graph that differentiates through step (the relu encoder's
 * contractive penalty) still compiles. */
static void step_fwd(cae_node *n)
{
    caek_step_forward(n->out.data, IN0(n)->data, n->out.size, NT(n));
}
static const cae_op step_op = {.name = "step", .n_in = 1, .infer = act_infer, .forward = step_fwd,
                               .tangent = step_tan};

/* ------------------------------------------------------- constructors */

static cae_node *unary(cae_graph *g, const cae_op *op, cae_node *x)
{
    return cae_node_new_builtin(g, op, (cae_node *[]){x}, NULL, NULL, 1u, 0);
}

cae_node *cae_sigmoid(cae_graph *g, cae_node *x) { return unary(g, &sigmoid_op, x); }
cae_node *cae_tanh(cae_graph *g, cae_node *x) { return unary(g, &tanh_op, x); }
cae_node *cae_relu(cae_graph *g, cae_node *x) { return unary(g, &relu_op, x); }
cae_node *cae_softplus(cae_graph *g, cae_node *x) { return unary(g, &softplus_op, x); }
cae_node *cae_exp(cae_graph *g, cae_node *x) { return unary(g, &exp_op, x); }
cae_node *cae_log(cae_graph *g, cae_node *x) { return unary(g, &log_op, x); }
cae_node *cae_step(cae_graph *g, cae_node *x) { return cae_node_new(g, &step_op, (cae_node *[]){x}, NULL); }

/*
 * cae/mtc.h — the Manifold Tangent Classifier (Rifai, Dauphin, Vincent,
 * Bengio, Muller; NIPS 2011): what a contractive encoder knows about the
 * directions in which the data vary, given to the classifier.
 *
 * 1. Tangents. At each training example, the leading d right singular
 *    vectors of the encoder's Jacobian J(x) (H x D for one layer, the
 *    end-to-end Jacobian of a stack): the directions in input space the
 *    encoder is most sensitive to, its estimate of the manifold's tangent
 *    plane. Computed by subspace iteration on J^T J — J^T J Q as a forward
 *    (J Q, cae/jvp.h) then a reverse chain, for a block of examples at once,
 *    every product one GEMM — and LAPACK for each example's small
 *    eigenproblem; stored in float16 (50 000 x 15 x 784 values: 1.2 GB
 *    instead of 2.4).
 * 2. Tangent propagation. Fine-tuning adds beta sum_u ||(d o / d x) u||^2
 *    over the example's tangents u, o = softmax(logits), averaged over the
 *    batch: one forward-mode product with the d tangents as d directions,
 *    differentiated by the reverse pass like any node.
 *
 * cae_mtc_task builds the task; a cae_mtc supplies the tangents to
 * cae_train (cae_train_config.aux = cae_mtc_aux, aux_ctx = the cae_mtc),
 * computed once from the encoder as training starts or, with `every`,
 * again from the fine-tuned encoder every `every` epochs. The encoder they
 * came from is kept in the task's buffers, so a resumed run recomputes
 * exactly the same tangents. The buffer "mtc:config" (the optimizer store
 * of a checkpoint holds it) says what the run is: the tangents per example,
 * beta (as a real) and every.
 */
#ifndef CAE_MTC_H
#define CAE_MTC_H

#include <stdint.h>

#include "cae/data.h"
#include "cae/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_tangent_config {
    int dims;       /* tangents per example (d_M) */
    int oversample; /* extra directions in the iteration (default 8) */
    int iterations; /* subspace iterations (default 6) */
    uint64_t seed;  /* the iteration's random start, per example */
    int threads;    /* 0: OpenMP's default */
} cae_tangent_config;

void cae_tangent_config_default(cae_tangent_config *c); /* dims 10 */

/* The leading c->dims right singular vectors of the Jacobian of layers
 * 1..depth of p (activations act) at examples [0, n) of d: out receives n x
 * dims x d->dim float16 values (IEEE half bits), example-major, orthonormal
 * for each example, in decreasing order of the singular values, which go to
 * sv (n x dims, may be NULL). */
cae_status cae_tangents(cae_params *p, int depth, const cae_act *act, const cae_dataset *d,
                        int64_t n, const cae_tangent_config *c, uint16_t *out, cae_real *sv,
                        cae_error *err);

/* IEEE binary16 <-> float, rounding to nearest even. */
uint16_t cae_float_to_half(float f);
float cae_half_to_float(uint16_t h);

/* ------------------------------------------------ the tangent classifier */

/* The builder: the MLP's objective (cae_mlp_task_build) plus, in training
 * graphs, beta times the tangent propagation penalty over io->aux, `dims`
 * tangents per example ((dims rows) x n_in, direction-major); it keeps
 * "mtc:period", "mtc:config" and the encoder's copy in io->buffers. ctx: a
 * cae_mtc_task_ctx. */
typedef struct cae_mtc_task_ctx {
    cae_mlp_config m;
    int dims;
    double beta;
} cae_mtc_task_ctx;
int cae_mtc_task_build(cae_graph *g, cae_task_io *io, const void *ctx);
/* A task of that builder (cae_task_spec.aux_rows = dims). */
cae_task *cae_mtc_task(cae_params *p, const cae_mlp_config *m, int dims, double beta,
                       int64_t batch, uint64_t seed, int threads, cae_error *err);

typedef struct cae_mtc cae_mtc;

/* The tangents of training set `train` (its first `limit` examples, 0 =
 * all) for task t (from cae_mtc_task, over store p whose hidden layers the
 * MLP m has), computed from the hidden layers as they are when training
 * reaches epoch 0 and, when every > 0, epochs every, 2 every, .... */
cae_mtc *cae_mtc_new(cae_task *t, cae_params *p, const cae_mlp_config *m,
                     const cae_dataset *train, int64_t limit, const cae_tangent_config *c,
                     int every, cae_error *err);
void cae_mtc_free(cae_mtc *mtc);
/* For cae_train_config.aux (ctx: the cae_mtc). */
cae_status cae_mtc_aux(void *mtc, int epoch, const int64_t *index, int64_t rows, cae_real *out,
                       cae_error *err);
/* Seconds spent computing tangents so far. */
double cae_mtc_seconds(const cae_mtc *mtc);

#ifdef __cplusplus
}
#endif
#endif

/* Helpers shared by the chart examples (contraction_curves.c,
 * jacobian_spectrum.c): train a small tied sigmoid layer or load a
 * `cae pretrain` checkpoint, and run one of the gnuplot scripts in plots/.
 * Header-only: each example is built on its own from one .c file. */
#ifndef CAE_EXAMPLES_CHARTS_H
#define CAE_EXAMPLES_CHARTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cae/checkpoint.h"
#include "cae/train.h"

#ifndef CAE_PLOTS_DIR
#define CAE_PLOTS_DIR "plots"
#endif
#define MAX_MODELS 8

typedef struct model {
    char name[64];
    cae_params *p;
    int n_layers;
    cae_act act[CAE_MAX_LAYERS];
} model;

/* Train one tied sigmoid layer of `kind` on the first n training examples. */
static inline cae_status train_model(model *m, cae_model_kind kind, const cae_dataset *train,
                                     int64_t n, int64_t hidden, int epochs, cae_error *err)
{
    cae_layer_config c;
    cae_layer_config_default(&c, kind, train->dim, hidden); /* cae: lambda 0.1 */
    snprintf(m->name, sizeof m->name, "%s", kind == CAE_MODEL_CAE ? "CAE" : "AE");
    m->n_layers = 1;
    m->act[0] = c.act;
    if (!(m->p = cae_params_new())) return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    cae_status rc = cae_layer_params(m->p, 1, &c, 1, err); /* initialised from seed 1 */
    if (rc) return rc;
    cae_task *t = cae_task_pretrain(m->p, 1, &c, 20, 1, 0, err);
    if (!t) return err->status;
    cae_train_config tc;
    cae_train_config_default(&tc);
    tc.epochs = epochs;
    tc.lr = 0.01;
    tc.limit = n;
    cae_train_result res;
    rc = cae_train(t, train, NULL, &tc, NULL, &res, err);
    if (!rc) printf("trained %s: 784-%lld, %d epoch(s) on %lld examples, objective %.2f\n", m->name,
                    (long long)hidden, epochs, (long long)n, res.last_objective);
    cae_task_free(t);
    return rc;
}

/* A checkpoint written by `cae pretrain` (its whole encoder stack). */
static inline cae_status load_model(model *m, const char *path, cae_error *err)
{
    cae_model_info info;
    cae_status rc = cae_checkpoint_load(path, &info, &m->p, NULL, err);
    if (rc) return rc;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(m->name, sizeof m->name, "%.*s", (int)strcspn(base, "._ "), base); /* one word */
    if (!m->name[0]) snprintf(m->name, sizeof m->name, "model");
    m->n_layers = info.n_layers; /* 0 for a checkpoint without layers: the analysis says so */
    for (int k = 0; k < info.n_layers; k++) m->act[k] = info.layer[k].act;
    return CAE_OK;
}

/* gnuplot -e VARS plots/SCRIPT. Returns 0 drawn, 1 gnuplot failed, 2 no gnuplot. */
static inline int run_gnuplot(const char *script, const char *vars)
{
    const char *dir = getenv("CAE_PLOTS_DIR") && *getenv("CAE_PLOTS_DIR") ? getenv("CAE_PLOTS_DIR") : CAE_PLOTS_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, script);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", "-e", vars, path, (char *)NULL);
        _exit(127); /* not installed */
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) return 1;
    return WEXITSTATUS(st) == 127 ? 2 : WEXITSTATUS(st) != 0;
}

#endif

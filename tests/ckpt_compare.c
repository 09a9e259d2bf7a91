/* ckpt_compare — the largest difference between the model tensors of two
 * checkpoints, for tests/test_mpi.sh.
 *
 *   ckpt_compare A B --same             every value bit for bit
 *   ckpt_compare A B --tol X            max |a - b| <= X
 *   ckpt_compare A B --order STEPS LR MOMENTUM BATCH DATA LIMIT
 *       max |a - b| within what the order of the sums explains (the bound
 *       of tests/test_dist.c):  2 S (lr (B + 2) u T / (1 - momentum)
 *       + 2 u max|w|), T the largest per-example gradient element over the
 *       first LIMIT training examples of DATA ($CAE_DATA_DIR) at A's
 *       parameters, u the unit roundoff of the real type.
 *
 * Prints one line (the difference, where, and the bound); exits 0 when it
 * holds, 1 when not, 2 on a usage or load error. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/checkpoint.h"
#include "cae/data.h"
#include "cae/task.h"

#ifdef CAE_REAL_DOUBLE
#define UNIT_ROUNDOFF (DBL_EPSILON / 2)
#else
#define UNIT_ROUNDOFF (FLT_EPSILON / 2)
#endif

static int load(const char *path, cae_model_info *info, cae_params **p)
{
    cae_error err;
    if (cae_checkpoint_load(path, info, p, NULL, &err)) {
        fprintf(stderr, "ckpt_compare: %s\n", err.msg);
        return 2;
    }
    return 0;
}

/* The largest per-example gradient element of the model in (info, p) over
 * the first limit training examples of data; -1 on failure. */
static double max_example_grad(const cae_model_info *info, cae_params *p, const char *data,
                               long limit)
{
    const char *dir = getenv("CAE_DATA_DIR");
    cae_splits *s = NULL;
    cae_error err;
    if (cae_splits_load(dir && *dir ? dir : "data", data, &s, &err)) {
        fprintf(stderr, "ckpt_compare: %s\n", err.msg);
        return -1;
    }
    cae_task *t;
    if (info->kind == CAE_MODEL_MLP) {
        cae_mlp_config m;
        cae_model_info_mlp(info, &m);
        t = cae_task_finetune(p, &m, 1, 1, 1, &err);
    } else {
        t = cae_task_pretrain_stack(p, info, 1, 1, 1, &err);
    }
    const cae_dataset *d = s->train;
    cae_real *x = cae_alloc_reals((size_t)d->dim);
    double T = -1, obj;
    if (!t || !x) {
        fprintf(stderr, "ckpt_compare: %s\n", t ? "out of memory" : err.msg);
        goto done;
    }
    T = 0;
    for (long i = 0; i < limit && i < d->n; i++) {
        cae_dataset_copy_rows(d, i, 1, x);
        if (cae_task_step(t, x, d->y + i, 1, &obj)) {
            fprintf(stderr, "ckpt_compare: %s\n", cae_task_error(t));
            T = -1;
            goto done;
        }
        for (int k = 0; k < cae_task_n_params(t); k++) {
            const cae_tensor *w = cae_task_param(t, k);
            for (int64_t j = 0; j < w->size; j++) T = fmax(T, fabs((double)w->grad[j]));
        }
    }
done:
    cae_free(x);
    cae_task_free(t);
    cae_splits_free(s);
    return T;
}

static int compare(char **argv, int argc, const cae_model_info *ia, cae_params *a, cae_params *b);

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ckpt_compare A B --same | --tol X | --order STEPS LR MOMENTUM "
                        "BATCH DATA LIMIT\n");
        return 2;
    }
    cae_model_info ia, ib;
    cae_params *a = NULL, *b = NULL;
    int rc = load(argv[1], &ia, &a) || load(argv[2], &ib, &b) ? 2 : compare(argv, argc, &ia, a, b);
    cae_params_free(a);
    cae_params_free(b);
    return rc;
}

/* 0 when a and b agree as argv[3..] asks, 1 when not, 2 on a usage error. */
static int compare(char **argv, int argc, const cae_model_info *ia, cae_params *a, cae_params *b)
{
    double diff = 0, wmax = 0;
    const char *where = "-";
    long long at = -1;
    int same = 1;
    for (int i = 0; i < cae_params_count(a); i++) {
        const cae_tensor *x = cae_params_at(a, i), *y = cae_params_get(b, x->name);
        if (!y || y->size != x->size) {
            printf("tensor '%s' %s in %s\n", x->name, y ? "has another size" : "is missing",
                   argv[2]);
            return 1;
        }
        same &= !memcmp(x->data, y->data, (size_t)x->size * sizeof(cae_real));
        for (int64_t k = 0; k < x->size; k++) {
            wmax = fmax(wmax, fabs((double)x->data[k]));
            const double d = fabs((double)x->data[k] - (double)y->data[k]);
            if (d > diff || isnan(d)) {
                diff = isnan(d) ? INFINITY : d;
                where = x->name;
                at = (long long)k;
            }
        }
    }
    if (cae_params_count(b) != cae_params_count(a)) {
        printf("%s has %d tensors, %s %d\n", argv[1], cae_params_count(a), argv[2],
               cae_params_count(b));
        return 1;
    }
    double bound;
    const char *mode = argv[3];
    if (!strcmp(mode, "--same")) {
        printf("max |a - b| = %g (%s[%lld]): %s\n", diff, where, at,
               same ? "identical" : "NOT identical");
        return same ? 0 : 1;
    } else if (!strcmp(mode, "--tol") && argc == 5) {
        bound = atof(argv[4]);
    } else if (!strcmp(mode, "--order") && argc == 10) {
        const double steps = atof(argv[4]), lr = atof(argv[5]), mom = atof(argv[6]);
        const double B = atof(argv[7]), u = UNIT_ROUNDOFF;
        const double T = max_example_grad(ia, a, argv[8], atol(argv[9]));
        if (T < 0) return 2;
        bound = 2 * steps * (lr * (B + 2) * u * T / (1 - mom) + 2 * u * wmax);
        printf("(T = %g, max|w| = %g, u = %g) ", T, wmax, u);
    } else {
        fprintf(stderr, "ckpt_compare: bad mode '%s'\n", mode);
        return 2;
    }
    const int ok = diff <= bound;
    printf("max |a - b| = %g (%s[%lld]) %s %g\n", diff, where, at, ok ? "<=" : "EXCEEDS", bound);
    return ok ? 0 : 1;
}

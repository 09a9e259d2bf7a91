/* Sampling (cae/sample.h): the chain's J J^T e by a reverse/forward pair
 * against the closed form diag(s) W^T W diag(s) e of one sigmoid layer and
 * against brute-force Jacobians of a stack; a noise-free chain is the
 * decoder of the encoder, step after step; chains are reproducible from the
 * seed; the Parzen window against its definition computed directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cae/jacobian.h"
#include "cae/ops.h"
#include "cae/sample.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define TOL 1e-10
#else
#define TOL 2e-5
#endif

enum { C = 3, D = 8 };

/* A stack of depth layers (D -> 6 -> 5), tied, activations act. */
static cae_params *stack(int depth, const cae_act *act, cae_model_info *info)
{
    static const int64_t sizes[3] = {D, 6, 5};
    cae_params *p = cae_params_new();
    memset(info, 0, sizeof *info);
    cae_error err;
    for (int l = 0; l < depth; l++) {
        cae_layer_config c;
        cae_layer_config_default(&c, CAE_MODEL_CAE, sizes[l], sizes[l + 1]);
        c.act = act[l];
        ck_assert_msg(!cae_stack_push(p, info, &c, 7, &err), "%s", err.msg);
        tu_fill_uniform(cae_layer_tensor(p, l + 1, "b")->data, sizes[l + 1], -0.5, 0.5, 10 + (uint64_t)l);
        tu_fill_uniform(cae_layer_tensor(p, l + 1, "c")->data, sizes[l], -0.5, 0.5, 20 + (uint64_t)l);
    }
    return p;
}

/* J J^T e of the chain's step against J from reverse mode (one backward
 * per output unit), for one layer and for a stack of two. */
START_TEST(jjte_is_exact)
{
    const cae_act act[2] = {CAE_ACT_SIGMOID, CAE_ACT_TANH};
    for (int depth = 1; depth <= 2; depth++) {
        cae_model_info info;
        cae_params *p = stack(depth, act, &info);
        const int64_t H = info.layer[depth - 1].n_hidden;
        cae_graph *g = cae_graph_new(p, C);
        cae_node *x = cae_input(g, "x", 2, (int64_t[]){C, D});
        cae_input_requires_grad(x);
        cae_node *e = cae_input(g, "e", 2, (int64_t[]){C, H}), *jj = NULL;
        cae_node *mean = cae_sample_step(g, p, &info, x, e, &jj);
        ck_assert_msg(mean && jj, "%s", cae_graph_error(g));
        cae_node *h = x; /* the encoder again, for the brute-force Jacobian */
        for (int l = 1; l <= depth; l++) h = cae_encoder(g, p, l, act[l - 1], h, NULL);
        cae_graph_output(g, jj);
        cae_graph_output(g, h);
        ck_assert_msg(!cae_graph_compile(g, mean), "%s", cae_graph_error(g));
        tu_fill_uniform(cae_node_value(x)->data, C * D, 0, 1, 30);
        tu_fill_uniform(cae_node_value(e)->data, C * H, -1, 1, 31);
        cae_real *J = malloc((size_t)(C * H * D) * sizeof *J);
        cae_error err;
        ck_assert_msg(!cae_jacobian_graph(g, x, h, J, &err), "%s", err.msg); /* runs forward too */
        for (int b = 0; b < C; b++) {
            const cae_real *Jb = J + b * H * D, *eb = cae_node_value(e)->data + b * H;
            for (int j = 0; j < H; j++) {
                double want = 0;
                for (int i = 0; i < D; i++) {
                    double jte = 0; /* (J^T e)_i */
                    for (int k = 0; k < H; k++) jte += (double)Jb[k * D + i] * eb[k];
                    want += (double)Jb[j * D + i] * jte;
                }
                const double got = cae_node_value(jj)->data[b * H + j];
                ck_assert_msg(fabs(got - want) <= TOL * (1 + fabs(want)),
                              "depth %d, chain %d, unit %d: J J^T e = %.12g, by reverse mode %.12g",
                              depth, b, j, got, want);
            }
        }
        if (depth == 1) { /* and the closed form diag(s) W^T W diag(s) e of a sigmoid layer */
            const cae_tensor *W = cae_layer_tensor(p, 1, "W");
            const cae_real *hv = cae_node_value(h)->data;
            for (int b = 0; b < C; b++)
                for (int j = 0; j < H; j++) {
                    double want = 0;
                    for (int l = 0; l < H; l++) {
                        double wtw = 0;
                        for (int i = 0; i < D; i++) wtw += (double)W->data[i * H + j] * W->data[i * H + l];
                        const double sj = hv[b * H + j] * (1 - hv[b * H + j]);
                        const double sl = hv[b * H + l] * (1 - hv[b * H + l]);
                        want += sj * wtw * sl * cae_node_value(e)->data[b * H + l];
                    }
                    ck_assert_msg(fabs(cae_node_value(jj)->data[b * H + j] - want) <= TOL * (1 + fabs(want)),
                                  "closed form: unit %d of chain %d", j, b);
                }
        }
        free(J);
        cae_graph_free(g);
        cae_params_free(p);
    }
}
END_TEST

/* sigma = 0: each step is x <- g(f(x)) through the stack's decoders. */
START_TEST(noise_free_chain_is_decode_encode)
{
    const cae_act act[2] = {CAE_ACT_SIGMOID, CAE_ACT_SIGMOID};
    cae_model_info info;
    cae_params *p = stack(2, act, &info);
    cae_sample_config c;
    cae_sample_config_default(&c);
    c.chains = C;
    c.steps = 3;
    c.every = 1;
    c.sigma = 0;
    cae_real start[C * D], out[3 * C * D];
    tu_fill_uniform(start, C * D, 0, 1, 40);
    cae_error err;
    ck_assert_msg(!cae_sample(p, &info, start, &c, out, &err), "%s", err.msg);
    /* by hand, in double */
    double x[C * D];
    for (int i = 0; i < C * D; i++) x[i] = start[i];
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < C; b++) {
            double h1[6], h2[5], z1[6], z0[D];
            const cae_tensor *W1 = cae_layer_tensor(p, 1, "W"), *W2 = cae_layer_tensor(p, 2, "W");
            const cae_real *b1 = cae_layer_tensor(p, 1, "b")->data, *b2 = cae_layer_tensor(p, 2, "b")->data;
            const cae_real *c1 = cae_layer_tensor(p, 1, "c")->data, *c2 = cae_layer_tensor(p, 2, "c")->data;
            for (int j = 0; j < 6; j++) {
                double a = b1[j];
                for (int i = 0; i < D; i++) a += x[b * D + i] * W1->data[i * 6 + j];
                h1[j] = 1 / (1 + exp(-a));
            }
            for (int j = 0; j < 5; j++) {
                double a = b2[j];
                for (int i = 0; i < 6; i++) a += h1[i] * W2->data[i * 5 + j];
                h2[j] = 1 / (1 + exp(-a));
            }
            for (int i = 0; i < 6; i++) {
                double a = c2[i];
                for (int j = 0; j < 5; j++) a += h2[j] * W2->data[i * 5 + j];
                z1[i] = 1 / (1 + exp(-a));
            }
            for (int i = 0; i < D; i++) {
                double a = c1[i];
                for (int j = 0; j < 6; j++) a += z1[j] * W1->data[i * 6 + j];
                z0[i] = 1 / (1 + exp(-a));
            }
            for (int i = 0; i < D; i++) {
                const double got = out[(s * C + b) * D + i];
                ck_assert_msg(fabs(got - z0[i]) <= 10 * TOL, "step %d chain %d pixel %d: %.10g, by hand %.10g",
                              s + 1, b, i, got, z0[i]);
                x[b * D + i] = z0[i];
            }
        }
    cae_params_free(p);
}
END_TEST

/* The same seed, the same chains; another seed, others; an rbm's records
 * are probabilities. */
START_TEST(chains_follow_the_seed)
{
    const cae_act act[1] = {CAE_ACT_SIGMOID};
    cae_model_info info;
    cae_params *p = stack(1, act, &info);
    cae_sample_config c;
    cae_sample_config_default(&c);
    c.chains = C;
    c.steps = 6;
    c.every = 2;
    c.sigma = 0.5;
    c.bernoulli = 1;
    cae_real start[C * D], a[3 * C * D], b[3 * C * D], e[3 * C * D];
    tu_fill_uniform(start, C * D, 0, 1, 50);
    cae_error err;
    ck_assert(!cae_sample(p, &info, start, &c, a, &err));
    ck_assert(!cae_sample(p, &info, start, &c, b, &err));
    ck_assert(!memcmp(a, b, sizeof a));
    c.seed = 2;
    ck_assert(!cae_sample(p, &info, start, &c, e, &err));
    ck_assert(memcmp(a, e, sizeof a));
    info.layer[0].kind = CAE_MODEL_RBM;
    ck_assert(!cae_sample(p, &info, start, &c, e, &err));
    for (int i = 0; i < 3 * C * D; i++) ck_assert(e[i] >= 0 && e[i] <= 1);
    info.n_classes = 10;
    ck_assert_int_eq(cae_sample(p, &info, start, &c, e, &err), CAE_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "classifier"), "%s", err.msg);
    cae_params_free(p);
}
END_TEST

/* The Parzen log-likelihood against its definition, in double by hand. */
START_TEST(parzen_matches_definition)
{
    enum { N = 70, M = 150, DD = 5 };
    cae_real *S = malloc(N * DD * sizeof *S);
    cae_dataset d = {.n = M, .dim = DD, .rows = DD, .cols = 1};
    d.x = malloc(M * DD * sizeof *d.x);
    tu_fill_uniform(S, N * DD, 0, 1, 60);
    tu_fill_uniform(d.x, M * DD, 0, 1, 61);
    const double sig[3] = {0.05, 0.2, 1.0};
    double mean[3], se[3], m1[3], s1[3];
    cae_error err;
    ck_assert_msg(!cae_parzen(S, N, &d, 0, sig, 3, 2, mean, se, &err), "%s", err.msg);
    ck_assert(!cae_parzen(S, N, &d, 0, sig, 3, 1, m1, s1, &err));
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(mean[k] == m1[k] && se[k] == s1[k], "threads change the result");
        double sum = 0, sum2 = 0;
        for (int r = 0; r < M; r++) {
            double acc = 0;
            for (int i = 0; i < N; i++) {
                double dist = 0;
                for (int j = 0; j < DD; j++) dist += pow((double)d.x[r * DD + j] - S[i * DD + j], 2);
                acc += exp(-dist / (2 * sig[k] * sig[k])) / pow(2 * M_PI * sig[k] * sig[k], DD / 2.0);
            }
            const double ll = log(acc / N);
            sum += ll;
            sum2 += ll * ll;
        }
        const double want = sum / M, wse = sqrt((sum2 / M - want * want) / M);
        ck_assert_msg(fabs(mean[k] - want) <= 1e-4 * (1 + fabs(want)), "sigma %g: %.10g, by hand %.10g",
                      sig[k], mean[k], want);
        ck_assert_msg(fabs(se[k] - wse) <= 1e-3 * wse, "sigma %g: se %.10g, by hand %.10g", sig[k], se[k], wse);
    }
    const double bad = -1;
    ck_assert_int_eq(cae_parzen(S, N, &d, 0, &bad, 1, 1, mean, se, &err), CAE_ERR_ARG);
    free(S);
    free(d.x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sample");
    TCase *t = tcase_create("sample");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, jjte_is_exact);
    tcase_add_test(t, noise_free_chain_is_decode_encode);
    tcase_add_test(t, chains_follow_the_seed);
    tcase_add_test(t, parzen_matches_definition);
    suite_add_tcase(s, t);
    return tu_run(s);
}

/* Analysis: contraction curves, distance statistics, Jacobian spectra,
 * checked against properties that hold exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/analysis.h"
#include "testutil.h"

#ifdef CAE_REAL_DOUBLE
#define TOL 1e-9
#else
#define TOL 2e-4
#endif

/* A store with one layer L1 (D x H) filled from seed. */
static cae_params *one_layer(int64_t D, int64_t H, uint64_t seed)
{
    cae_params *p = cae_params_new();
    cae_tensor *W = cae_params_add(p, "L1.W", 2, (int64_t[]){D, H});
    cae_tensor *b = cae_params_add(p, "L1.b", 1, (int64_t[]){H});
    tu_fill_uniform(W->data, W->size, -0.5, 0.5, seed);
    tu_fill_uniform(b->data, b->size, -0.2, 0.2, seed + 1);
    return p;
}

static cae_dataset *random_set(int64_t n, int64_t D, uint64_t seed)
{
    cae_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->dim = D;
    d->rows = (int)D;
    d->cols = 1;
    d->owns = 1;
    d->x = cae_alloc_reals((size_t)(n * D));
    d->y = calloc((size_t)n, sizeof *d->y);
    tu_fill_uniform(d->x, n * D, 0, 1, seed);
    return d;
}

START_TEST(linear_contraction_is_flat_and_exact)
{
    /* f(x) = x W + b: ||f(x0) - f(x0 + r u)|| / r = ||u W|| for every r. */
    const int64_t D = 9, H = 5;
    cae_params *p = one_layer(D, H, 3);
    cae_dataset *d = random_set(40, D, 4);
    cae_act lin = CAE_ACT_LINEAR;
    cae_error err;
    cae_encoder_net *e = cae_encoder_net_new(p, 1, &lin, 7, 1, &err);
    ck_assert_msg(e != NULL, "%s", err.msg);
    const double radii[3] = {0.1, 1, 30};
    double mean[3], sd[3];
    ck_assert_msg(!cae_contraction_curve(e, d, 40, radii, 3, 9, mean, sd, &err), "%s", err.msg);
    ck_assert_msg(fabs(mean[0] - mean[2]) < 1e3 * TOL * mean[0], "linear: %g at r=0.1, %g at r=30",
                  mean[0], mean[2]);
    /* The ratio never exceeds the top singular value of W. */
    double sm[9], ss[9];
    int64_t nv;
    ck_assert_msg(!cae_jacobian_spectrum(p, 1, &lin, d, 3, sm, ss, &nv, &err), "%s", err.msg);
    ck_assert_int_eq(nv, 5);
    ck_assert_msg(mean[1] <= sm[0] * (1 + 1e-4), "ratio %g above sigma_max %g", mean[1], sm[0]);
    cae_encoder_net_free(e);
    cae_dataset_free(d);
    cae_params_free(p);
}
END_TEST

START_TEST(spectrum_matches_frobenius_norm)
{
    /* sum of squared singular values = ||J||_F^2 = sum_j phi'(a_j)^2 n_j;
     * for one example the sd is 0 and values are sorted decreasingly. */
    const int64_t D = 12, H = 7;
    cae_params *p = one_layer(D, H, 5);
    cae_dataset *d = random_set(1, D, 6);
    cae_act act = CAE_ACT_SIGMOID;
    double sm[12], ss[12];
    int64_t nv;
    cae_error err;
    ck_assert_msg(!cae_jacobian_spectrum(p, 1, &act, d, 1, sm, ss, &nv, &err), "%s", err.msg);
    const cae_tensor *W = cae_layer_tensor(p, 1, "W"), *b = cae_layer_tensor(p, 1, "b");
    double want = 0;
    for (int64_t j = 0; j < H; j++) {
        double a = b->data[j], n = 0;
        for (int64_t i = 0; i < D; i++) {
            a += d->x[i] * W->data[i * H + j];
            n += (double)W->data[i * H + j] * W->data[i * H + j];
        }
        const double s = 1 / (1 + exp(-a)), dphi = s * (1 - s);
        want += dphi * dphi * n;
    }
    double got = 0;
    for (int64_t i = 0; i < nv; i++) {
        got += sm[i] * sm[i];
        ck_assert(ss[i] < 1e-6);
        if (i) ck_assert_msg(sm[i] <= sm[i - 1] * (1 + 1e-6), "not sorted at %lld", (long long)i);
    }
    ck_assert_msg(fabs(got - want) < 1e2 * TOL * want, "sum s^2 = %g, ||J||^2 = %g", got, want);
    cae_dataset_free(d);
    cae_params_free(p);
}
END_TEST

START_TEST(two_layer_spectrum_is_product)
{
    /* Two linear layers: J = W1^T-side product; its Frobenius norm is
     * ||W1 W2||_F (x W1 W2 as row vectors). */
    const int64_t D = 6, H1 = 5, H2 = 4;
    cae_params *p = cae_params_new();
    cae_tensor *W1 = cae_params_add(p, "L1.W", 2, (int64_t[]){D, H1});
    cae_params_add(p, "L1.b", 1, (int64_t[]){H1});
    cae_tensor *W2 = cae_params_add(p, "L2.W", 2, (int64_t[]){H1, H2});
    cae_params_add(p, "L2.b", 1, (int64_t[]){H2});
    tu_fill_uniform(W1->data, W1->size, -1, 1, 1);
    tu_fill_uniform(W2->data, W2->size, -1, 1, 2);
    cae_dataset *d = random_set(2, D, 3);
    cae_act lin[2] = {CAE_ACT_LINEAR, CAE_ACT_LINEAR};
    double sm[6], ss[6];
    int64_t nv;
    cae_error err;
    ck_assert_msg(!cae_jacobian_spectrum(p, 2, lin, d, 2, sm, ss, &nv, &err), "%s", err.msg);
    ck_assert_int_eq(nv, 4);
    double fro = 0;
    for (int64_t i = 0; i < D; i++)
        for (int64_t k = 0; k < H2; k++) {
            double s = 0;
            for (int64_t j = 0; j < H1; j++) s += (double)W1->data[i * H1 + j] * W2->data[j * H2 + k];
            fro += s * s;
        }
    double got = 0;
    for (int64_t i = 0; i < nv; i++) got += sm[i] * sm[i];
    ck_assert_msg(fabs(got - fro) < 1e2 * TOL * fro, "sum s^2 = %g, ||W1 W2||^2 = %g", got, fro);
    cae_dataset_free(d);
    cae_params_free(p);
}
END_TEST

START_TEST(distances_of_known_points)
{
    /* Points 0, 1, 3 on a line: distances 1, 2, 3. */
    cae_dataset *d = random_set(3, 2, 1);
    const cae_real pts[6] = {0, 0, 1, 0, 3, 0};
    memcpy(d->x, pts, sizeof pts);
    double mn, md, mx;
    cae_error err;
    ck_assert(!cae_distance_stats(d, 3, 1, &mn, &md, &mx, &err));
    ck_assert(fabs(mn - 1) < 1e-6 && fabs(md - 2) < 1e-6 && fabs(mx - 3) < 1e-6);
    ck_assert_int_ne(cae_distance_stats(d, 1, 1, &mn, &md, &mx, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "at least 2"));
    cae_dataset_free(d);
}
END_TEST

START_TEST(errors_are_reported)
{
    cae_params *p = one_layer(4, 3, 1);
    cae_act act = CAE_ACT_SIGMOID;
    cae_error err;
    ck_assert_ptr_null(cae_encoder_net_new(p, 2, (cae_act[]){act, act}, 4, 1, &err));
    ck_assert_msg(strstr(err.msg, "layer 2") != NULL, "%s", err.msg);
    cae_encoder_net *e = cae_encoder_net_new(p, 1, &act, 4, 1, &err);
    cae_dataset *d = random_set(5, 6, 1); /* wrong width */
    double m, s, r = 1;
    ck_assert_int_ne(cae_contraction_curve(e, d, 5, &r, 1, 1, &m, &s, &err), 0);
    ck_assert_msg(strstr(err.msg, "6 inputs") != NULL, "%s", err.msg);
    cae_encoder_net_free(e);
    cae_dataset_free(d);
    cae_params_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analysis");
    TCase *t = tcase_create("analysis");
    tcase_add_test(t, linear_contraction_is_flat_and_exact);
    tcase_add_test(t, spectrum_matches_frobenius_norm);
    tcase_add_test(t, two_layer_spectrum_is_product);
    tcase_add_test(t, distances_of_known_points);
    tcase_add_test(t, errors_are_reported);
    suite_add_tcase(s, t);
    return tu_run(s);
}

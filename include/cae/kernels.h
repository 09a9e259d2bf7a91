/*
 * cae/kernels.h — the raw kernels behind the ops of cae/ops.h (matmul
 * aside), usable without a graph. Each op has a caek_<op>_forward and a
 * caek_<op>_backward over raw row-major pointers; the comment on every
 * buffer gives its shape.
 *
 * Conventions:
 *  - forward writes (=) its output; backward accumulates (+=) into the
 *    gradients it is given, and skips a gradient pointer that is NULL.
 *  - nt is the thread count (0 = OpenMP default). Element-wise loops use
 *    threads only from 32768 elements on; results never depend on nt
 *    (reductions sum fixed chunks in double, in a fixed order).
 *  - "B x N" is B rows of N; losses sum over the N features and average
 *    over the B rows; g is the upstream gradient of a scalar output.
 *  - part is caller scratch of caek_sum_parts(n) (sum) or B (losses)
 *    doubles; nothing here allocates.
 *
 *   caek_sigmoid_forward(h, a, B * N, 0);      // h = sigmoid(a)
 *   caek_sigmoid_backward(da, dh, h, B * N, 0); // da += dh * h (1 - h)
 */
#ifndef CAE_KERNELS_H
#define CAE_KERNELS_H

#include <stdint.h>

#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- element-wise, all buffers n elements */
/* out = a + b;  da += dout, db += dout */
void caek_add_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt);
void caek_add_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       int64_t n, int nt);
/* out = a - b;  da += dout, db -= dout */
void caek_sub_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt);
void caek_sub_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       int64_t n, int nt);
/* out = a * b;  da += dout * b, db += dout * a */
void caek_mul_forward(cae_real *out, const cae_real *a, const cae_real *b,
                      int64_t n, int nt);
void caek_mul_backward(cae_real *da, cae_real *db, const cae_real *dout,
                       const cae_real *a, const cae_real *b, int64_t n,
                       int nt);
/* out = c x;  dx += c dout */
void caek_scale_forward(cae_real *out, const cae_real *x, cae_real c,
                        int64_t n, int nt);
void caek_scale_backward(cae_real *dx, const cae_real *dout, cae_real c,
                         int64_t n, int nt);
/* out = x + c;  dx += dout (also the backward of every identity-like op) */
void caek_add_scalar_forward(cae_real *out, const cae_real *x, cae_real c,
                             int64_t n, int nt);
void caek_add_scalar_backward(cae_real *dx, const cae_real *dout, int64_t n,
                              int nt);
/* out = x^2;  dx += 2 x dout */
void caek_square_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_square_backward(cae_real *dx, const cae_real *dout,
                          const cae_real *x, int64_t n, int nt);

/* ---- row broadcast: x, out, dx, dout B x N; v, dv N */
/* out[b,j] = x[b,j] + v[j];  dx += dout, dv[j] += sum_b dout[b,j] */
void caek_bias_add_forward(cae_real *out, const cae_real *x,
                           const cae_real *v, int64_t B, int64_t N, int nt);
void caek_bias_add_backward(cae_real *dx, cae_real *dv, const cae_real *dout,
                            int64_t B, int64_t N, int nt);
/* out[b,j] = x[b,j] v[j];  dx += dout v, dv[j] += sum_b dout[b,j] x[b,j] */
void caek_mul_row_forward(cae_real *out, const cae_real *x,
                          const cae_real *v, int64_t B, int64_t N, int nt);
void caek_mul_row_backward(cae_real *dx, cae_real *dv, const cae_real *dout,
                           const cae_real *x, const cae_real *v, int64_t B,
                           int64_t N, int nt);

/* ---- reductions */
/* Doubles of scratch caek_sum_forward needs for n elements (>= 1). */
int64_t caek_sum_parts(int64_t n);
/* out[0] = sum of x (n); part: caek_sum_parts(n) doubles.  dx += g (n) */
void caek_sum_forward(cae_real *out, const cae_real *x, int64_t n,
                      double *part, int nt);
void caek_sum_backward(cae_real *dx, cae_real g, int64_t n, int nt);
/* out[0] = sum of x_i^2 (n); part as caek_sum_forward.  dx += 2 g x (n) */
void caek_sum_squares_forward(cae_real *out, const cae_real *x, int64_t n,
                              double *part, int nt);
void caek_sum_squares_backward(cae_real *dx, const cae_real *x, cae_real g,
                               int64_t n, int nt);
/* out[b] = sum_j x[b,j]: x B x N, out B.  dx[b,j] += dout[b] */
void caek_sum_rows_forward(cae_real *out, const cae_real *x, int64_t B,
                           int64_t N, int nt);
void caek_sum_rows_backward(cae_real *dx, const cae_real *dout, int64_t B,
                            int64_t N, int nt);
/* out[j] = sum_b x[b,j]: x B x N, out N.  dx[b,j] += dout[j] */
void caek_sum_cols_forward(cae_real *out, const cae_real *x, int64_t B,
                           int64_t N, int nt);
void caek_sum_cols_backward(cae_real *dx, const cae_real *dout, int64_t B,
                            int64_t N, int nt);

/* ---- activations, all buffers n elements; backward takes whichever of
 * x (the input) or out (the output) its derivative is cheapest from */
/* out = 1 / (1 + e^-x), stable;  dx += dout out (1 - out) */
void caek_sigmoid_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_sigmoid_backward(cae_real *dx, const cae_real *dout,
                           const cae_real *out, int64_t n, int nt);
/* out = tanh x;  dx += dout (1 - out^2) */
void caek_tanh_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_tanh_backward(cae_real *dx, const cae_real *dout,
                        const cae_real *out, int64_t n, int nt);
/* out = max(x, 0);  dx += dout [x > 0] */
void caek_relu_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_relu_backward(cae_real *dx, const cae_real *dout,
                        const cae_real *x, int64_t n, int nt);
/* out = max(x, 0) + log1p(e^-|x|);  dx += dout sigmoid(x) */
void caek_softplus_forward(cae_real *out, const cae_real *x, int64_t n,
                           int nt);
void caek_softplus_backward(cae_real *dx, const cae_real *dout,
                            const cae_real *x, int64_t n, int nt);
/* out = e^x;  dx += dout out */
void caek_exp_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_exp_backward(cae_real *dx, const cae_real *dout,
                       const cae_real *out, int64_t n, int nt);
/* out = log x;  dx += dout / x */
void caek_log_forward(cae_real *out, const cae_real *x, int64_t n, int nt);
void caek_log_backward(cae_real *dx, const cae_real *dout, const cae_real *x,
                       int64_t n, int nt);
/* out = [x > 0]; its gradient is zero, so it has no backward kernel */
void caek_step_forward(cae_real *out, const cae_real *x, int64_t n, int nt);

/* ---- losses -> out[0]; z, t, dz, dt B x N; part B doubles */
/* (1/B) sum max(z,0) - z t + log1p(e^-|z|) (BCE of sigmoid(z) vs t);
 * dz += g (sigmoid(z) - t) / B,  dt += -g z / B */
void caek_bce_logits_forward(cae_real *out, const cae_real *z,
                             const cae_real *t, int64_t B, int64_t N,
                             double *part, int nt);
void caek_bce_logits_backward(cae_real *dz, cae_real *dt, cae_real g,
                              const cae_real *z, const cae_real *t,
                              int64_t B, int64_t N, int nt);
/* (1/B) sum (y - t)^2;  dy += 2 g (y - t) / B,  dt -= 2 g (y - t) / B */
void caek_sq_error_forward(cae_real *out, const cae_real *y,
                           const cae_real *t, int64_t B, int64_t N,
                           double *part, int nt);
void caek_sq_error_backward(cae_real *dy, cae_real *dt, cae_real g,
                            const cae_real *y, const cae_real *t, int64_t B,
                            int64_t N, int nt);
/* z B x C logits, labels B class indices in 0..C-1 (stored as reals; any
 * other value aborts), lse B = log sum_c e^z[b,c] (written by forward,
 * read by backward).  out = (1/B) sum_b lse[b] - z[b, label_b];
 * dz += g (softmax(z) - onehot(label)) / B */
void caek_softmax_xent_forward(cae_real *out, cae_real *lse,
                               const cae_real *z, const cae_real *labels,
                               int64_t B, int64_t C, int nt);
void caek_softmax_xent_backward(cae_real *dz, cae_real g, const cae_real *z,
                                const cae_real *labels, const cae_real *lse,
                                int64_t B, int64_t C, int nt);

/* ---- noise: element i's draw is a pure function of (key, i) */
/* out = x + sigma N(0,1)_i;  the backward is caek_add_scalar_backward */
void caek_gaussian_noise_forward(cae_real *out, const cae_real *x,
                                 cae_real sigma, uint64_t key, int64_t n,
                                 int nt);
/* mask_i = [U(0,1)_i >= nu], out = x mask;  dx += dout mask (all n) */
void caek_mask_noise_forward(cae_real *out, cae_real *mask, const cae_real *x,
                             cae_real nu, uint64_t key, int64_t n, int nt);
void caek_mask_noise_backward(cae_real *dx, const cae_real *dout,
                              const cae_real *mask, int64_t n, int nt);

#ifdef __cplusplus
}
#endif
#endif

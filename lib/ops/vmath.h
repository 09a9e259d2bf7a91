/* Vectorizable exp / log for the element-wise kernels (private to lib).
 *
 * glibc's expf and log1pf are scalar calls unless the whole program is
 * built with -ffast-math, which would also break our NaN/Inf checks. These
 * inline versions are plain arithmetic on the float's bits, so `omp simd`
 * loops vectorize them. Float build: Cody-Waite range reduction and the
 * classic minimax polynomials (Cephes' single-precision coefficients),
 * relative error about 1e-7 over the whole range, inputs clamped so no
 * intermediate overflows; NaN propagates. The double build (used for tight
 * gradient tests) calls libm. */
#ifndef CAE_OPS_VMATH_H
#define CAE_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cae/graph.h"

/* Float arithmetic on the bits, in both builds (the double build uses it
 * for draws that must be the same bits in both: lib/ops/vnormal.h). */
/* Type punning through a union (defined in C; memcpy here defeats GCC's
 * vectorizer). */
typedef union cae_fbits {
    float f;
    uint32_t u;
} cae_fbits;

static inline float cae_bits_to_float(uint32_t u)
{
    cae_fbits b = {.u = u};
    return b.f;
}

static inline uint32_t cae_float_to_bits(float f)
{
    cae_fbits b = {.f = f};
    return b.u;
}

/* log(v 2^-scale), v the positive normal float with bits u: v = 2^e m
 * with m in [sqrt(1/2), sqrt(2)); log(m) by a degree-9 polynomial in m - 1
 * (Cephes' single-precision coefficients). */
static inline float cae_vlog_bits(uint32_t u, int32_t scale)
{
    int32_t e = (int32_t)((u >> 23) & 0xff) - 126 - scale;
    float m = cae_bits_to_float((u & 0x007fffffu) | 0x3f000000u); /* [0.5, 1) */
    const int small = m < 0.707106781186547524f;
    e -= small;
    m = small ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    float y = m * z * p;
    const float fe = (float)e;
    y += fe * -2.12194440e-4f;
    y += -0.5f * z;
    float r = m + y;
    r += fe * 0.693359375f;
    return r;
}

#ifdef CAE_REAL_DOUBLE

static inline double cae_vexp(double x) { return exp(x); }
static inline double cae_vlog(double x) { return log(x); }
static inline double cae_vlog1p(double x) { return log1p(x); }
static inline double cae_vlog1p01(double x) { return log1p(x); }

#else

/* e^x: x = n ln2 + r, |r| <= ln2/2; e^r by a degree-6 polynomial; 2^n from
 * the exponent bits. Below -87.3 the result flushes to 0, above 88.7 +inf. */
static inline float cae_vexp(float x)
{
    const float hi = 88.7228394f, lo = -87.3365479f;
    const int over = x > hi, under = x < lo;
    float xc = x > hi ? hi : (x < lo ? lo : x);
    xc = x != x ? 0.0f : xc; /* NaN: converting it to int below is undefined */
    /* Round to nearest by the 1.5 * 2^23 trick (floorf does not vectorize). */
    const float fn = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - fn * 0.693359375f;
    r = r + fn * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t n = (int32_t)fn;
    const float scale = cae_bits_to_float((uint32_t)(n + 127) << 23);
    float y = p * scale;
    y = over ? INFINITY : y;
    y = under ? 0.0f : y;
    return x != x ? x : y;
}

/* log(x), x > 0 finite (subnormals scaled into range first); x <= 0 gives
 * NaN / -inf as libm. */
static inline float cae_vlog(float x)
{
    const int sub = x < 1.17549435e-38f; /* subnormal: scale into range */
    const float xs = x * 8388608.0f;
    float r = cae_vlog_bits(cae_float_to_bits(sub ? xs : x), sub ? 23 : 0);
    /* Special cases: zero, negative, subnormal-free inputs are what we see;
     * keep libm's answers for the rest. */
    r = x == 0.0f ? -INFINITY : r;
    r = ((x < 0.0f) | (x != x)) ? NAN : r; /* '|': no branch */
    r = x == INFINITY ? INFINITY : r;
    return r;
}

/* log(1 + x) for x >= 0 (the softplus / cross-entropy tail): log(u) with
 * u = 1 + x, corrected for the rounding of u. */
static inline float cae_vlog1p(float x)
{
    const float u = 1.0f + x;
    const float d = u - 1.0f;
    /* Both arms computed unconditionally (no branch: the loop vectorizes). */
    const float r = cae_vlog(u) * (x / (d == 0.0f ? 1.0f : d));
    return d == 0.0f ? x : r;
}

/* log(1 + x) for x in [0, 1] (the softplus tail log1p(e^-|z|)), without
 * cae_vlog1p's division and special cases: u = 1 + x is in [1, 2], its log
 * by cae_vlog's reduction and polynomial, plus the rounding of u,
 * (x - (u - 1)) / u, with 1/u taken as 1.5 - 0.5 u (exact at u = 1, where
 * the term matters; elsewhere it is below half an ulp of the result).
 * u >= 1 is normal, so cae_vlog_bits needs no scaling.
 * Relative error under 1.3e-7 over [0, 1] (measured against double log1p);
 * NaN propagates through the last term. */
static inline float cae_vlog1p01(float x)
{
    const float u = 1.0f + x;
    const float r = cae_vlog_bits(cae_float_to_bits(u), 0);
    return r + (x - (u - 1.0f)) * (1.5f - 0.5f * u);
}

#endif
/* sigmoid(x) from e = e^-|x|, and from x: 1 / (1 + e^-x) without overflow
 * for any x and without 1 - (1 - tiny). */
static inline cae_real cae_vsigmoid_e(cae_real x, cae_real e)
{
    return (x >= 0 ? 1 : e) / (1 + e);
}

/* softplus(x) = log(1 + e^x) from e = e^-|x|: finite for any finite x. */
static inline cae_real cae_vsoftplus_e(cae_real x, cae_real e)
{
    return (x > 0 ? x : 0) + cae_vlog1p01(e);
}

static inline cae_real cae_vsigmoid(cae_real x)
{
    return cae_vsigmoid_e(x, cae_vexp(x < 0 ? x : -x)); /* e^-|x| */
}

#endif

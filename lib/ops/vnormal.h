/* Counter-based standard normal draws that vectorize (private to lib).
 *
 * Element i of the draw for key k is a pure function of (k, i): elements
 * 2j and 2j+1 are the two outputs of one Box-Muller pair,
 *   r = sqrt(-2 log u1), theta = 2 pi u2:  r cos(theta), r sin(theta),
 * with u1 in (0, 1] and u2 in [0, 1) the top two 24-bit fields of one
 * 64-bit hash of (k, j). Everything is float arithmetic on the bits
 * (lib/ops/vmath.h's log, a quarter-turn reduction and Cephes' minimax
 * sine and cosine on [-pi/4, pi/4]), the same in the float and the double
 * build, so one seed gives the same noise in both.
 *
 * The 24-bit u1 bounds |z| by sqrt(48 log 2) = 5.77 (probability 8e-9 of
 * exceeding it under a true normal); the 24-bit angle is far finer than
 * anything the draws feed. */
#ifndef CAE_OPS_VNORMAL_H
#define CAE_OPS_VNORMAL_H

#include <math.h>
#include <stdint.h>

#include "cae/rng.h"
#include "ops/vmath.h"

/* cos(2 pi t) for t in [-0.25, 1). */
static inline float cae_vcos_turns(float t)
{
    /* t = q/4 + r, q the nearest integer to 4t, |r| <= 1/8. */
    const float q = (t * 4.0f + 12582912.0f) - 12582912.0f;
    const float x = (t - 0.25f * q) * 6.28318530717958647692f;
    const float x2 = x * x;
    const float s = x + x * x2 * (-1.6666654611e-1f + x2 * (8.3321608736e-3f + x2 * -1.9515295891e-4f));
    const float c = 1.0f - 0.5f * x2 +
                    x2 * x2 * (4.166664568298827e-2f + x2 * (-1.388731625493765e-3f + x2 * 2.443315711809948e-5f));
    /* cos(q pi/2 + x): q mod 4 = 0: c, 1: -s, 2: -c, 3: s. */
    const int k = (int)q & 3;
    const float v = (k & 1) ? s : c;
    return ((k + 1) & 2) ? -v : v;
}

static inline float cae_vnormal(uint64_t key, uint64_t i)
{
    const uint64_t j = i >> 1;
    const uint64_t z = cae_rng_mix64(cae_rng_mix64(key ^ (j * 0xD1B54A32D192ED03ull)) + 0x9E3779B97F4A7C15ull);
    const float u1 = (float)((uint32_t)(z >> 40) + 1u) * 0x1.0p-24f;          /* (0, 1] */
    const float u2 = (float)((uint32_t)(z >> 16) & 0xffffffu) * 0x1.0p-24f;   /* [0, 1) */
    const float l = cae_vlog_bits(cae_float_to_bits(u1), 0);                  /* <= 0 */
    const float r = __builtin_sqrtf(-2.0f * l);
    /* sin(2 pi u2) = cos(2 pi (u2 - 1/4)) for the odd element. */
    return r * cae_vcos_turns(u2 - 0.25f * (float)(i & 1));
}

#endif

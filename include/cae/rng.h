/*
 * cae/rng.h — explicit-state random numbers (xoshiro256**). There is no
 * global generator: whoever draws owns the state. cae_rng_seed(r, seed,
 * stream) gives independent streams for one seed (one per thread, per
 * layer, per purpose); the same (seed, stream) always gives the same
 * sequence on every machine.
 *
 * For element-wise noise that must not depend on the thread count, draw one
 * key per use with cae_rng_next and compute element i's value with the
 * counter-based cae_rng_hash_uniform(key, i).
 */
#ifndef CAE_RNG_H
#define CAE_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_rng {
    uint64_t s[4];
} cae_rng;

void cae_rng_seed(cae_rng *r, uint64_t seed, uint64_t stream);
uint64_t cae_rng_next(cae_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double cae_rng_uniform(cae_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t cae_rng_below(cae_rng *r, uint64_t n);
/* Standard normal (Box-Muller; no cached second value, so the state is the
 * whole state). */
double cae_rng_normal(cae_rng *r);
/* Fisher-Yates shuffle of idx[0..n-1]. */
void cae_rng_shuffle(cae_rng *r, int64_t *idx, int64_t n);

/* Counter-based draws: a pure function of (key, i). Inline, so element-wise
 * loops that draw from it vectorize. */
static inline uint64_t cae_rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline double cae_rng_hash_uniform(uint64_t key, uint64_t i)
{
    const uint64_t z = cae_rng_mix64(cae_rng_mix64(key ^ (i * 0xD1B54A32D192ED03ull)) +
                                     0x9E3779B97F4A7C15ull);
    return (double)(z >> 11) * 0x1.0p-53;
}

/* Counter-based standard normal: elements 2j and 2j+1 are the cosine and
 * sine halves of one Box-Muller pair drawn from one hash of (key, j), in
 * float arithmetic (24-bit uniforms, so |z| <= 5.77), the same bits in the
 * float and the double build. The element-wise noise ops draw the same
 * values inline. */
double cae_rng_hash_normal(uint64_t key, uint64_t i);

#ifdef __cplusplus
}
#endif
#endif

/* xoshiro256** (Blackman & Vigna) seeded through splitmix64, plus a
 * counter-based hash for noise that must not depend on thread count. */
#include <math.h>

#include "cae/rng.h"
#include "ops/vnormal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t z) { return cae_rng_mix64(z); }

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cae_rng_seed(cae_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ mix64(stream + 0x632BE59BD9B4E019ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1; /* never all zero */
}

uint64_t cae_rng_next(cae_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cae_rng_uniform(cae_rng *r) { return (double)(cae_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t cae_rng_below(cae_rng *r, uint64_t n)
{
    /* Rejection of the partial last bucket: no modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = cae_rng_next(r);
    while (x >= limit);
    return x % n;
}

static double box_muller(double u1, double u2)
{
    /* u1 in (0, 1]: log never sees 0. */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double cae_rng_normal(cae_rng *r)
{
    double u1 = 1.0 - cae_rng_uniform(r);
    double u2 = cae_rng_uniform(r);
    return box_muller(u1, u2);
}

void cae_rng_shuffle(cae_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)cae_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

double cae_rng_hash_normal(uint64_t key, uint64_t i) { return (double)cae_vnormal(key, i); }

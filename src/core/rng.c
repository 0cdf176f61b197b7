/* A portable seeded PRNG and the initialisers built on it.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64.  Normal
 * variates use Marsaglia's polar method with a logarithm written here from
 * + − × ÷ only, so the stream is bit-identical on every IEEE-754 machine
 * (libm's log may differ in the last bit between platforms). */
#include "core.h"

#include <math.h>

#ifdef __clang__ /* gcc in -std=c11 mode never contracts a·b+c into an FMA */
#pragma STDC FP_CONTRACT OFF
#endif

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *rng, uint64_t seed)
{
    if (!rng)
        return;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

uint64_t tg_rng_next(tg_rng *rng)
{
    if (!rng)
        return 0;
    uint64_t *s = rng->s;
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

double tg_rng_uniform(tg_rng *rng)
{
    return (double)(tg_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t tg_rng_below(tg_rng *rng, uint64_t n)
{
    if (n == 0 || !rng)
        return 0;
    /* reject the top partial block so every residue is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = tg_rng_next(rng);
    while (x >= limit);
    return x % n;
}

/* ln(x) for x > 0 from basic operations only: x = m·2^e with m in
 * [√½, √2), ln m = 2·atanh(s) = 2(s + s³/3 + s⁵/5 + ...), s = (m−1)/(m+1). */
static double portable_log(double x)
{
    int e;
    double m = frexp(x, &e); /* exact */
    if (m < 0.70710678118654752440) {
        m *= 2;
        e -= 1;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, sum = 0;
    for (int k = 25; k >= 1; k -= 2) /* |s| < 0.172: 13 terms reach 1e-20 */
        sum = sum * s2 + 1.0 / k;
    const double ln2_hi = 6.93147180369123816490e-01; /* fdlibm's split of ln 2 */
    const double ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + (2 * s * sum + (double)e * ln2_lo);
}

double tg_rng_normal(tg_rng *rng)
{
    if (!rng)
        return 0;
    for (;;) {
        double u = 2 * tg_rng_uniform(rng) - 1;
        double v = 2 * tg_rng_uniform(rng) - 1;
        double s = u * u + v * v;
        if (s > 0 && s < 1)
            return u * sqrt(-2 * portable_log(s) / s);
    }
}

/* ---- initialisers -------------------------------------------------------- */

static int need_float(tg_tensor *t, tg_rng *rng, const char *fn)
{
    if (!t)
        return TG_ERR;
    if (!rng)
        return tg_error(t->tape, "%s: rng is NULL", fn);
    if (t->dtype != TG_F32 && t->dtype != TG_F64)
        return tg_error(t->tape, "%s: '%s' must be f32 or f64, not %s", fn,
                        tg_label(t),
                        tg_dtype_name((tg_dtype)t->dtype));
    return tg_write_leaf(t, fn);
}

static void put(tg_tensor *t, size_t i, double v)
{
    if (t->dtype == TG_F32)
        ((float *)t->data)[i] = (float)v;
    else
        ((double *)t->data)[i] = v;
}

int tg_init_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi)
{
    if (need_float(t, rng, "init_uniform"))
        return TG_ERR;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return tg_error(t->tape, "init_uniform: bad range [%g, %g)", lo, hi);
    for (size_t i = 0; i < t->size; i++)
        put(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
    return TG_OK;
}

int tg_init_normal(tg_tensor *t, tg_rng *rng, double mean, double stddev)
{
    if (need_float(t, rng, "init_normal"))
        return TG_ERR;
    if (!(stddev >= 0) || !isfinite(stddev) || !isfinite(mean))
        return tg_error(t->tape, "init_normal: bad mean %g or stddev %g", mean, stddev);
    for (size_t i = 0; i < t->size; i++)
        put(t, i, mean + stddev * tg_rng_normal(rng));
    return TG_OK;
}

static void fans(const tg_tensor *t, double *fan_in, double *fan_out)
{
    if (t->rank == 0) {
        *fan_in = *fan_out = 1;
    } else if (t->rank == 1) {
        *fan_in = *fan_out = (double)t->shape[0];
    } else {
        double receptive = 1;
        for (int i = 2; i < t->rank; i++)
            receptive *= (double)t->shape[i];
        bool conv = t->rank > 2; /* [out, in, k...] as tg_conv2d's weight */
        *fan_in = (double)t->shape[conv ? 1 : 0] * receptive;
        *fan_out = (double)t->shape[conv ? 0 : 1] * receptive;
    }
}

int tg_init_xavier(tg_tensor *t, tg_rng *rng)
{
    if (need_float(t, rng, "init_xavier"))
        return TG_ERR;
    double fi, fo;
    fans(t, &fi, &fo);
    double a = sqrt(6.0 / (fi + fo));
    return tg_init_uniform(t, rng, -a, a);
}

int tg_init_he(tg_tensor *t, tg_rng *rng)
{
    if (need_float(t, rng, "init_he"))
        return TG_ERR;
    double fi, fo;
    fans(t, &fi, &fo);
    return tg_init_normal(t, rng, 0, sqrt(2.0 / fi));
}

/* Single-precision elementary functions that compilers vectorise: written
 * with + − × and bit operations only, no branches and no calls, so a loop
 * over them becomes SIMD code (libm's expf is a scalar call).  Used by the
 * f32 kernels of sigmoid, softmax and softmax cross-entropy; f64 kernels
 * call libm. */
#ifndef TG_VMATH_H
#define TG_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float tg_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t tg_bits_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/*
 * e^x for f32, within 1 ulp of the exact value (0.98 at worst, tested) on the range
 * where the result is a normal float (x in [−87.3, 88.0]); inputs beyond are
 * clamped to that range (so e^x saturates at e^88 ≈ 1.65e38 and at 2^−126
 * instead of overflowing or going subnormal); NaN stays NaN.
 *
 * x = n·ln2 + r with n = round(x/ln2) and |r| <= ln2/2 (Cody–Waite: ln2
 * split in a part with few bits, so n·ln2_hi is exact), e^r by a degree-6
 * polynomial (Cephes' expf coefficients), and 2^n put into the exponent
 * bits.  n is found with the 1.5·2^23 rounding trick and read from the bits,
 * so no float→int conversion can overflow on NaN.
 */
static inline float tg_expf(float x)
{
    const float hi = 88.0f, lo = -87.3f;
    x = x > hi ? hi : x; /* written so that NaN passes through */
    x = x < lo ? lo : x;
    const float magic = 12582912.0f; /* 1.5·2^23 */
    float t = x * 1.44269504088896341f + magic;
    int32_t n = (int32_t)(tg_bits_from_f32(t) - tg_bits_from_f32(magic));
    float nf = t - magic;
    float r = x - nf * 0.693359375f;  /* ln2_hi: 9 bits, so nf·ln2_hi is exact */
    r = r - nf * -2.12194440e-4f;     /* ln2_lo */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    return y * tg_f32_from_bits((uint32_t)(n + 127) << 23);
}

/* σ(x) = 1 / (1 + e^−x) for f32 on tg_expf. */
static inline float tg_sigmoidf(float x) { return 1.0f / (1.0f + tg_expf(-x)); }

#endif

/* x86 helpers shared by the AVX2 and AVX-512 kernel files (both compiled
 * with at least -mavx2 -mfma): block transposes for packing. */
#ifndef TG_GEMM_X86_H
#define TG_GEMM_X86_H

#include <immintrin.h>
#include <stddef.h>

/* 8×8 f32 transpose: d[q·ldd + r] = s[r·lds + q].  Rows a..h are
 * interleaved in pairs (unpack), then in fours (shuffle), then the 128-bit
 * halves are exchanged (permute2f128). */
static inline void tg_tp8_f32(const float *s, size_t lds, float *d, size_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(s + 0 * lds), r1 = _mm256_loadu_ps(s + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    /* u0 = a0 b0 c0 d0 | a4 b4 c4 d4, u1 = column 1|5, u2 = 2|6, u3 = 3|7 */
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(d + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 4×4 f64 transpose: d[q·ldd + r] = s[r·lds + q]. */
static inline void tg_tp4_f64(const double *s, size_t lds, double *d, size_t ldd)
{
    __m256d r0 = _mm256_loadu_pd(s + 0 * lds), r1 = _mm256_loadu_pd(s + 1 * lds);
    __m256d r2 = _mm256_loadu_pd(s + 2 * lds), r3 = _mm256_loadu_pd(s + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1); /* a0 b0 | a2 b2 */
    __m256d t1 = _mm256_unpackhi_pd(r0, r1); /* a1 b1 | a3 b3 */
    __m256d t2 = _mm256_unpacklo_pd(r2, r3); /* c0 d0 | c2 d2 */
    __m256d t3 = _mm256_unpackhi_pd(r2, r3); /* c1 d1 | c3 d3 */
    _mm256_storeu_pd(d + 0 * ldd, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(d + 1 * ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(d + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(d + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

#endif

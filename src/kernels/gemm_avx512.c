/*
 * AVX-512 GEMM kernels (zmm), compiled with -mavx512f -mavx512dq -mavx512vl
 * -mavx512bw -mavx2 -mfma (see meson.build) and called only when cpu.c found
 * the CPU and the OS ready for them.
 *
 * Micro-tiles: f32 8 × 48 (8 rows × 3 zmm of 16), f64 8 × 24 (3 zmm of 8):
 * 24 accumulators + 3 B vectors + 1 broadcast of the 32 zmm registers; per
 * p, 24 FMAs against 3 vector loads and 8 broadcasts, which keeps both FMA
 * pipes busy with enough independent chains to hide their latency.  Partial
 * vectors use AVX-512 masks.
 */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include "gemm_x86.h"

/* ---- f32 dot-product form (narrow C) ------------------------------------ */

/* Sixteen vectors x[q] → one vector whose lane q is the sum of x[q]'s lanes:
 * a transpose-and-add tree (pairs within 64-bit, then 128-bit, then across
 * 128-bit lanes), 45 instructions for 16 sums. */
static inline __m512 reduce16(const __m512 x[16])
{
    __m512 y[8], z[4], w[2];
    for (int q = 0; q < 8; q++) /* lane L: x2q, x2q+1 partials, twice */
        y[q] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * q], x[2 * q + 1]),
                             _mm512_unpackhi_ps(x[2 * q], x[2 * q + 1]));
    for (int q = 0; q < 4; q++) { /* 128-bit lane L: x4q .. x4q+3 partials */
        __m512d u = _mm512_castps_pd(y[2 * q]), v = _mm512_castps_pd(y[2 * q + 1]);
        z[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(u, v)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(u, v)));
    }
    for (int q = 0; q < 2; q++) /* halves of z2q and z2q+1 summed */
        w[q] = _mm512_add_ps(
            _mm512_shuffle_f32x4(z[2 * q], z[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(z[2 * q], z[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/*
 * C[i, j] = alpha·Σ_p A[i, p]·Bt[j, p] + beta·C[i, j] (see tg_gemm_dot), in
 * tiles of 8 rows of A × 2 rows of Bt: 16 accumulators,
 *     acc[2r + j] += A[i0+r, p .. p+15] · Bt[j0+j, p .. p+15]
 * (10 loads for 16 FMAs, every lane useful whatever n is), the last p < 16
 * with masked loads, then reduce16 gives the tile in one vector.  Rows past
 * m or n repeat the last one (computed, never stored).
 */
static void avx512_dot_f32(const tg_gemm_dot *d)
{
    const float *A = d->a, *Bt = d->bt;
    float *C = d->c;
    const size_t m = d->m, n = d->n, kc = d->kc, kv = kc / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (kc - kv)) - 1);
    const float alpha = (float)d->alpha, beta = (float)d->beta;
    for (size_t i0 = 0; i0 < m; i0 += 8) {
        const float *ar[8];
        for (size_t r = 0; r < 8; r++)
            ar[r] = A + (i0 + r < m ? i0 + r : m - 1) * d->lda;
        for (size_t j0 = 0; j0 < n; j0 += 2) {
            const float *b0 = Bt + j0 * d->ldbt;
            const float *b1 = Bt + (j0 + 1 < n ? j0 + 1 : j0) * d->ldbt;
            __m512 acc[16];
            for (int q = 0; q < 16; q++)
                acc[q] = _mm512_setzero_ps();
            for (size_t p = 0; p < kv; p += 16) {
                __m512 u0 = _mm512_loadu_ps(b0 + p), u1 = _mm512_loadu_ps(b1 + p);
                for (int r = 0; r < 8; r++) {
                    __m512 x = _mm512_loadu_ps(ar[r] + p);
                    acc[2 * r] = _mm512_fmadd_ps(x, u0, acc[2 * r]);
                    acc[2 * r + 1] = _mm512_fmadd_ps(x, u1, acc[2 * r + 1]);
                }
            }
            if (tail) {
                __m512 u0 = _mm512_maskz_loadu_ps(tail, b0 + kv);
                __m512 u1 = _mm512_maskz_loadu_ps(tail, b1 + kv);
                for (int r = 0; r < 8; r++) {
                    __m512 x = _mm512_maskz_loadu_ps(tail, ar[r] + kv);
                    acc[2 * r] = _mm512_fmadd_ps(x, u0, acc[2 * r]);
                    acc[2 * r + 1] = _mm512_fmadd_ps(x, u1, acc[2 * r + 1]);
                }
            }
            float out[16];
            _mm512_storeu_ps(out, reduce16(acc));
            for (size_t r = 0; r < 8 && i0 + r < m; r++)
                for (size_t j = 0; j < 2 && j0 + j < n; j++) {
                    float *c = C + (i0 + r) * d->ldc + j0 + j;
                    float s = alpha * out[2 * r + j];
                    *c = beta == 0 ? s : s + beta * *c;
                }
        }
    }
}

/* ---- f32 ---------------------------------------------------------------- */
#define DOT avx512_dot_f32
#define DOT_NMAX 12
#define T float
#define V __m512
#define VL 16
#define MR 8
#define NV 3
#define KC 384
#define NC 480
#define MC 1536
#define PFX avx512_f32
#define KERN tg_gemm_avx512_f32
#define ISA_NAME "avx512"
#define M16(n) ((__mmask16)((1u << (n)) - 1))
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADN(p, n) _mm512_maskz_loadu_ps(M16(n), p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, M16(n), v)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define TB 8
#define TP tg_tp8_f32
#define M8(n) ((__mmask8)((1u << (n)) - 1))
#define SV __m256
#define SVL 8
#define SVZERO() _mm256_setzero_ps()
#define SVLOAD(p) _mm256_loadu_ps(p)
#define SVLOADN(p, n) _mm256_maskz_loadu_ps(M8(n), p)
#define SVSTORE(p, v) _mm256_storeu_ps(p, v)
#define SVSTOREN(p, v, n) _mm256_mask_storeu_ps(p, M8(n), v)
#define SVBCAST(x) _mm256_set1_ps(x)
#define SVFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SVMUL(a, b) _mm256_mul_ps(a, b)
#define SVADD(a, b) _mm256_add_ps(a, b)
#define SMR 8
#include "gemm_tmpl.h"

/* ---- f64 ---------------------------------------------------------------- */
#define T double
#define V __m512d
#define VL 8
#define MR 8
#define NV 3
#define KC 256
#define NC 360
#define MC 1024
#define PFX avx512_f64
#define KERN tg_gemm_avx512_f64
#define ISA_NAME "avx512"
#define M8(n) ((__mmask8)((1u << (n)) - 1))
#define VZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_loadu_pd(p)
#define VLOADN(p, n) _mm512_maskz_loadu_pd(M8(n), p)
#define VSTORE(p, v) _mm512_storeu_pd(p, v)
#define VSTOREN(p, v, n) _mm512_mask_storeu_pd(p, M8(n), v)
#define VBCAST(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VADD(a, b) _mm512_add_pd(a, b)
#define TB 4
#define TP tg_tp4_f64
#define M4(n) ((__mmask8)((1u << (n)) - 1))
#define SV __m256d
#define SVL 4
#define SVZERO() _mm256_setzero_pd()
#define SVLOAD(p) _mm256_loadu_pd(p)
#define SVLOADN(p, n) _mm256_maskz_loadu_pd(M4(n), p)
#define SVSTORE(p, v) _mm256_storeu_pd(p, v)
#define SVSTOREN(p, v, n) _mm256_mask_storeu_pd(p, M4(n), v)
#define SVBCAST(x) _mm256_set1_pd(x)
#define SVFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define SVMUL(a, b) _mm256_mul_pd(a, b)
#define SVADD(a, b) _mm256_add_pd(a, b)
#define SMR 8
#include "gemm_tmpl.h"

#else
typedef int tg_gemm_avx512_unused; /* not an x86 target: nothing to build */
#endif

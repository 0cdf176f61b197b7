/*
 * AVX2+FMA GEMM kernels (ymm), compiled with -mavx2 -mfma (see meson.build)
 * and called only when cpu.c found the CPU and the OS ready for them.
 *
 * Micro-tiles: f32 6 × 16 (6 rows × 2 ymm of 8), f64 6 × 8 (2 ymm of 4):
 * 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
 * Partial vectors use maskload/maskstore.
 */
#include "gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include "gemm_x86.h"

/* maskload/maskstore masks: the first n lanes of 8 (f32) or 4 (f64). */
static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                     0,  0,  0,  0,  0,  0,  0,  0};
#define MASK32(n) _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - (n)))
#define MASK64(n) _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - 2 * (n)))

/* ---- f32 ---------------------------------------------------------------- */
#define T float
#define V __m256
#define VL 8
#define MR 6
#define NV 2
#define KC 256
#define NC 512
#define MC 1536
#define PFX avx2_f32
#define KERN tg_gemm_avx2_f32
#define ISA_NAME "avx2"
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADN(p, n) _mm256_maskload_ps(p, MASK32(n))
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VSTOREN(p, v, n) _mm256_maskstore_ps(p, MASK32(n), v)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define TB 8
#define TP tg_tp8_f32
#include "gemm_tmpl.h"

/* ---- f64 ---------------------------------------------------------------- */
#define T double
#define V __m256d
#define VL 4
#define MR 6
#define NV 2
#define KC 256
#define NC 256
#define MC 1024
#define PFX avx2_f64
#define KERN tg_gemm_avx2_f64
#define ISA_NAME "avx2"
#define VZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_loadu_pd(p)
#define VLOADN(p, n) _mm256_maskload_pd(p, MASK64(n))
#define VSTORE(p, v) _mm256_storeu_pd(p, v)
#define VSTOREN(p, v, n) _mm256_maskstore_pd(p, MASK64(n), v)
#define VBCAST(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VADD(a, b) _mm256_add_pd(a, b)
#define TB 4
#define TP tg_tp4_f64
#include "gemm_tmpl.h"

#else
typedef int tg_gemm_avx2_unused; /* not an x86 target: nothing to build */
#endif

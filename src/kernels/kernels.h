/* The kernels layer (src/kernels/): GEMM for each ISA, the thread pool, CPU
 * dispatch, vector math.  Uses the core layer's allocator only; ops, io and
 * train use it.  Not installed. */
#ifndef TG_KERNELS_H
#define TG_KERNELS_H

#include "core.h"

/* ---- GEMM (src/kernels/gemm.c) ----------------------------------------- */
/* C[m×n] = alpha·op(A)·op(B) + beta·C, row-major; op(A) is m×k.  beta is 0
 * (C is overwritten, never read) or 1 (accumulate). */
void tg_gemm_f32(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                 const float *a, size_t lda, const float *b, size_t ldb,
                 float beta, float *c, size_t ldc);
void tg_gemm_f64(bool ta, bool tb, size_t m, size_t n, size_t k,
                 double alpha, const double *a, size_t lda, const double *b,
                 size_t ldb, double beta, double *c, size_t ldc);

/* ---- threads and CPU dispatch (src/kernels/threads.c, cpu.c) ------------ */
/* Run fn over [0, n) split into contiguous pieces of >= grain elements
 * (about 4 per thread), handed out one at a time to the thread pool (the
 * caller takes part); returns when all are done.  Runs fn(ctx, 0, n) inline
 * when threads == 1, n < 2·grain, the pool is busy with another caller, or
 * the caller is a pool worker.  Where the pieces are cut and which thread
 * runs one varies, so fn's result must not depend on either (split only
 * along axes that are not summed). */
typedef void (*tg_range_fn)(void *ctx, size_t begin, size_t end);
void tg_parallel_for(size_t n, size_t grain, tg_range_fn fn, void *ctx);

/* Elements per piece when an elementwise op or an optimizer update is split
 * over the pool (below 2 pieces it runs inline): 32 KiB of f32, an L1 data
 * cache, so that a 128×512 activation gives 8 threads a piece (at 2 threads
 * 8192 and 32768 timed the same on the MLP steps).  Elementwise work never
 * changes a result when split; reductions are split only along axes that
 * are not summed, so they keep their order too. */
#define TG_ELEM_GRAIN ((size_t)1 << 13)

/* The active kernel path (tg_isa()) as a number. */
enum { TG_ISA_GENERIC = 0, TG_ISA_AVX2 = 1, TG_ISA_AVX512 = 2 };
int tg_cpu_isa(void);

#endif

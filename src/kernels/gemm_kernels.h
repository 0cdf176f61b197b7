/*
 * GEMM kernels: the interface between the blocking driver (src/gemm.c) and
 * the per-ISA kernel files (src/gemm_generic.c, src/gemm_avx2.c,
 * src/gemm_avx512.c), which all instantiate src/gemm_tmpl.h.  Private to
 * those files.
 *
 * Terms (row-major C[m×n] = alpha·op(A)·op(B) + beta·C):
 *  - micro-tile: MR rows × NR columns of C, held in vector registers while
 *    the micro-kernel runs over kc values of the inner index p:
 *        acc[r][c] = Σ_p A(r, p)·B(p, c),   then  C = alpha·acc + beta·C.
 *  - sliver: the part of A (MR rows × kc) or of B (kc × NR columns) one
 *    micro-tile reads.
 *  - packed B block: kc × nc of op(B) stored sliver after sliver, each
 *    sliver p-major (row p of a sliver is NR contiguous values; the last
 *    sliver is only as wide as the vectors it needs, rounded up to whole
 *    vectors and zero-padded).  Sliver t starts at t·NR·kc.
 *  - A is either packed the same way (MR-row slivers, p-major, rows past m
 *    zero), or read in place from the caller's matrix.
 */
#ifndef TG_GEMM_KERNELS_H
#define TG_GEMM_KERNELS_H

#include "kernels.h"

/* One block for the macro-kernel: C[m×n] = alpha·A[m×kc]·B[kc×n] + beta·C.
 * A's sliver s (rows s·MR ..) starts at a + s·a_step; inside it
 *   element (r, p) = arow ? a_s[r·lda + p]   (rows contiguous: A in place)
 *                         : a_s[p·lda + r]   (columns contiguous: packed A
 *                                             with lda = MR, or Aᵀ in place).
 * a_padded: rows past m in the last sliver may be read (packed A); if not,
 * the macro-kernel copies that sliver first.
 * B is packed (b_inplace false: sliver t at b + t·NR·kc) or read in place
 * (element (p, j) at b[p·ldb + j]).
 * ctrans: the block is of Cᵀ: element (i, j) is stored at c[j·ldc + i]. */
typedef struct tg_gemm_blk {
    size_t m, n, kc;
    const void *a;
    size_t a_step, lda;
    bool arow, a_padded;
    const void *b;
    size_t ldb;
    bool b_inplace, ctrans;
    void *c;
    size_t ldc;
    double alpha, beta; /* exact for f32 values too */
} tg_gemm_blk;

/* Dot-product form for a narrow C (few columns):
 *   C[i, j] = alpha·Σ_p A[i, p]·Bt[j, p] + beta·C[i, j]
 * with A's rows (a + i·lda) and Bt's rows (bt + j·ldbt) contiguous in p. */
typedef struct tg_gemm_dot {
    size_t m, n, kc;
    const void *a;
    size_t lda;
    const void *bt;
    size_t ldbt;
    void *c;
    size_t ldc;
    double alpha, beta;
} tg_gemm_dot;

/* A whole small GEMM for the direct path (operands as in tg_gemm_f32). */
typedef struct tg_gemm_small {
    bool ta, tb;
    size_t m, n, k;
    const void *a;
    size_t lda;
    const void *b;
    size_t ldb;
    void *c;
    size_t ldc;
    double alpha, beta;
} tg_gemm_small;

/* The direct path takes problems of at most TG_GEMM_SMALL_FMAS
 * multiply-adds (below which GEMM is never threaded either: a few µs of
 * work) whose op(B) has at most TG_GEMM_SMALL_KN elements, or
 * TG_GEMM_SMALL_KNT when B is transposed (it is copied to the stack). */
#define TG_GEMM_SMALL_FMAS (1 << 19)
#define TG_GEMM_SMALL_KN 16384
#define TG_GEMM_SMALL_KNT 2048

/* A kernel set for one ISA and dtype. */
typedef struct tg_gemm_kern {
    const char *isa;
    size_t es;           /* element size in bytes                        */
    size_t mr, nr, vl;   /* micro-tile rows and columns, vector lanes    */
    size_t kc, nc, mc;   /* largest K block, N block (packed B, kept in
                            L2) and M block (packed A, kept in L3)       */
    /* Pack op(A)[0..mc, 0..kc] (a points at its first element; A(i,p) =
     * ta ? a[p·lda + i] : a[i·lda + p]) into MR-row slivers. */
    void (*pack_a)(bool ta, size_t mc, size_t kc, const void *a, size_t lda,
                   void *dst);
    /* Pack op(B)[0..kc, 0..nc] (B(p,j) = tb ? b[j·ldb + p] : b[p·ldb + j])
     * into NR-column slivers. */
    void (*pack_b)(bool tb, size_t kc, size_t nc, const void *b, size_t ldb,
                   void *dst);
    /* Run the micro-kernel over every micro-tile of one block. */
    void (*macro)(const tg_gemm_blk *blk);
    /* Transpose B[kc × n] (B(p,j) = b[p·ldb + j]) into dst[j·kc + p]. */
    void (*pack_bt)(size_t kc, size_t n, const void *b, size_t ldb, void *dst);
    /* The direct path for tiny problems: no packing, no blocking. */
    void (*small)(const tg_gemm_small *s);
    /* The dot-product form (NULL where the ISA has none), and the widest C
     * it is used for. */
    void (*dot)(const tg_gemm_dot *d);
    size_t dot_nmax;
} tg_gemm_kern;

extern const tg_gemm_kern tg_gemm_generic_f32, tg_gemm_generic_f64;
#if defined(__x86_64__) || defined(__i386__)
extern const tg_gemm_kern tg_gemm_avx2_f32, tg_gemm_avx2_f64;
extern const tg_gemm_kern tg_gemm_avx512_f32, tg_gemm_avx512_f64;
#endif

/* Packed widths: a full sliver is NR wide; the last one of a block only
 * covers the vectors it needs. */
static inline size_t tg_round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

#endif

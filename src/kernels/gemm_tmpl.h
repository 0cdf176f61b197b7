/*
 * GEMM kernel template: micro-kernel, macro-kernel and packing for one ISA
 * and one dtype.  A kernel file defines the parameters below and includes
 * this file (once per dtype); the result is the descriptor KERN (see
 * gemm_kernels.h).  No include guard on purpose; every parameter is
 * #undef'd at the end, ready for the next instantiation.
 *
 * Parameters
 *   T        element type                 V, VL   vector type and its lanes
 *   MR, NV   micro-tile: MR rows × NV vectors (NR = NV·VL columns), NV <= 4
 *   KC, NC, MC   blocking (see tg_gemm_kern)
 *   TB       size of the square block TP transposes (0: no TP)
 *   PFX      prefix for this instantiation's static names
 *   KERN, ISA_NAME   descriptor name and ISA string
 *   Vector operations (u = unaligned, n = first n lanes only, rest zero):
 *   VZERO() VLOAD(p) VLOADN(p,n) VSTORE(p,v) VSTOREN(p,v,n) VBCAST(x)
 *   VFMA(a,b,c) = a·b + c   VMUL(a,b)   VADD(a,b)
 *   TP(s, lds, d, ldd): d[q·ldd + r] = s[r·lds + q] for r, q < TB
 */

#define TMPL_CAT2(a, b) a##_##b
#define TMPL_CAT(a, b) TMPL_CAT2(a, b)
#define F(name) TMPL_CAT(PFX, name)
#define NR (NV * VL)

#ifndef TMPL_INLINE
#if defined(__GNUC__) && !defined(__clang__)
/* one copy, not one per constant argument (gcc 12 also warns wrongly about
 * the specialised copies) */
#define TMPL_NOCLONE __attribute__((noinline, noclone))
#else
#define TMPL_NOCLONE
#endif
/* The loop over p is unrolled a little (clang does it by itself). */
#if defined(__GNUC__) && !defined(__clang__)
#define TMPL_UNROLL4 _Pragma("GCC unroll 4")
#else
#define TMPL_UNROLL4
#endif
/* Loops over the registers of a tile are written out by the preprocessor,
 * X(0, ...) .. X(7, ...), each guarded by its bound (a compile-time
 * constant, so the compiler drops what is out of range).  The tile must
 * stay in registers, and compilers do not unroll such loops reliably
 * themselves: clang first turns them into memset/memcpy on the array. */
#define TMPL_R8(X, ...)                                                        \
    X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__)    \
    X(4, __VA_ARGS__) X(5, __VA_ARGS__) X(6, __VA_ARGS__) X(7, __VA_ARGS__)
#define TMPL_V4(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__)
#define TMPL_H4(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__)
#if defined(__GNUC__)
#define TMPL_INLINE inline __attribute__((always_inline))
#define TMPL_PREFETCH(p) __builtin_prefetch(p)
#else
#define TMPL_INLINE inline
#define TMPL_PREFETCH(p) ((void)(p))
#endif
#endif

/* The micro-kernel's operands. */
typedef struct F(ukr_args) {
    size_t kc;
    const T *a; /* A sliver: (r, p) at arow ? a[r·lda + p] : a[p·lda + r] */
    size_t lda;
    const T *b; /* B sliver: (p, c) at b[p·ldb + c]                        */
    size_t ldb;
    T *c;       /* C tile: (r, c) at c[r·ldc + c], or c[c·ldc + r] (Cᵀ)    */
    size_t ldc;
    size_t mr;    /* rows of the tile to store (the rest are padding)      */
    size_t nlast; /* columns of the last vector to store                   */
    T alpha, beta;
    bool arow;    /* (macro-kernel bookkeeping)                            */
    T *tbuf;      /* Cᵀ tiles: 2·MR·NR values of scratch                   */
} F(ukr_args);

/*
 * Stores a tile of Cᵀ held in t (row r at t + r·NR, alpha applied):
 * element (r, c) goes to C[c·ldc + r] as t + beta·C.  The tile is first
 * transposed into u (column c at u + c·MR), TB × TB blocks at a time with
 * TP, so that each row of C receives `rows` contiguous values.
 */
static TMPL_NOCLONE void F(store_t)(const T *t, T *u, size_t rows, size_t cols,
                                    const F(ukr_args) *x)
{
    rows = rows < MR ? rows : MR; /* (they are: this tells the compiler) */
    cols = cols < NR ? cols : NR;
    size_t r0 = 0;
#if TB
    for (; r0 + TB <= rows; r0 += TB)
        for (size_t c0 = 0; c0 < cols; c0 += TB)
            TP(t + r0 * NR + c0, NR, u + c0 * MR + r0, MR);
#endif
    for (; r0 < rows; r0++)
        for (size_t c = 0; c < cols; c++)
            u[c * MR + r0] = t[r0 * NR + c];
    const T beta = x->beta;
    for (size_t c = 0; c < cols; c++) {
        T *cr = x->c + c * x->ldc;
        const T *uc = u + c * MR;
        if (beta == 0)
            for (size_t r = 0; r < rows; r++)
                cr[r] = uc[r];
        else
            for (size_t r = 0; r < rows; r++)
                cr[r] = uc[r] + beta * cr[r];
    }
}

/* One vector of C: cv = s + beta·cv (mode: beta == 0, C not read; beta == 1;
 * any other beta), only the first nl lanes when `part`. */
static TMPL_INLINE void F(store1)(const int mode, const bool part, T *cv, V s, V vb, size_t nl)
{
    if (!part) {
        if (mode == 0)
            VSTORE(cv, s);
        else if (mode == 1)
            VSTORE(cv, VADD(VLOAD(cv), s));
        else
            VSTORE(cv, VFMA(vb, VLOAD(cv), s));
    } else {
        if (mode == 0)
            VSTOREN(cv, s, nl);
        else if (mode == 1)
            VSTOREN(cv, VADD(VLOADN(cv, nl), s), nl);
        else
            VSTOREN(cv, VFMA(vb, VLOADN(cv, nl), s), nl);
    }
}

/*
 * C = alpha·acc + beta·C for one tile, row by row, one copy per beta mode.
 * A full tile stores MR rows of whole vectors; otherwise only the first mr
 * rows and the first nlast lanes of the last vector.  alpha is applied
 * even when it is 1 (exactly then): a plain copy of acc out to C is what
 * clang turns into a memcpy, which puts acc in memory.
 */
#define TMPL_ST1(v, r)                                                         \
    if (v < nv)                                                                \
        F(store1)(mode, !full && v == nv - 1 && nl != VL, c + r * ldc + v * VL, \
                  VMUL(va, acc[r][v]), vb, nl);
#define TMPL_STR(r, _)                                                         \
    if (r < mrc && (full || (size_t)r < mr)) {                                 \
        TMPL_V4(TMPL_ST1, r)                                                   \
    }
static TMPL_INLINE void F(store_c)(const int mode, const bool full, const int mrc,
                                   const int nv, V acc[8][4], const F(ukr_args) *x)
{
    const V va = VBCAST(x->alpha), vb = VBCAST(x->beta);
    const size_t mr = x->mr, nl = x->nlast, ldc = x->ldc;
    T *c = x->c;
    TMPL_R8(TMPL_STR, _)
}
#undef TMPL_ST1
#undef TMPL_STR

/*
 * Micro-kernel: an mrc × (nv·VL) tile in registers,
 *     acc[r][v] = Σ_{p < kc} bcast(A(r, p)) · B(p, v·VL .. v·VL+VL−1)
 * (one broadcast of A and nv vector loads of B feed mrc·nv independent FMAs
 * per p), then C = alpha·acc + beta·C, where beta == 0 never reads C.
 * Every tile, full or at an edge, runs this same sequence of operations on
 * each element, so splitting C differently cannot change a result.
 * mrc, nv, arow, ctrans, bmask and full are compile-time constants in
 * each instance.  full: all MR rows and whole vectors are stored.
 * ctrans: the tile is of Cᵀ (stored transposed, see store_t).
 * bmask: B is read in place, so its last vector is loaded with only its
 * nlast valid lanes.
 */
#define TMPL_ZERO1(v, r)                                                       \
    if (r < mrc && v < nv)                                                     \
        acc[r][v] = VZERO();
#define TMPL_ZEROR(r, _) TMPL_V4(TMPL_ZERO1, r)
#define TMPL_PREF(r, _)                                                        \
    if (r < mrc && (full || (size_t)r < x->mr)) {                              \
        TMPL_PREFETCH(x->c + r * x->ldc);                                      \
        TMPL_PREFETCH(x->c + r * x->ldc + nv * VL - 1);                        \
    }
#define TMPL_LDB(v, _)                                                         \
    if (v < nv)                                                                \
        bv[v] = bmask && v == nv - 1 ? VLOADN(b + v * VL, nlast) : VLOAD(b + v * VL);
#define TMPL_FMA1(v, r)                                                        \
    if (v < nv)                                                                \
        acc[r][v] = VFMA(ar, bv[v], acc[r][v]);
#define TMPL_FMAR(r, _)                                                        \
    if (r < mrc) {                                                             \
        const V ar = VBCAST(arow ? a[r * lda] : a[r]);                         \
        TMPL_V4(TMPL_FMA1, r)                                                  \
    }
#define TMPL_TST1(v, r)                                                        \
    if (r < mrc && v < nv)                                                     \
        VSTORE(t + r * NR + v * VL, VMUL(va, acc[r][v]));
#define TMPL_TSTR(r, _) TMPL_V4(TMPL_TST1, r)
static TMPL_INLINE void F(ukr_body)(const int mrc, const int nv, const bool arow,
                                    const bool ctrans, const bool bmask, const bool full,
                                    const F(ukr_args) *x)
{
    V acc[8][4]; /* [MR][NV] used */
    TMPL_R8(TMPL_ZEROR, _)

    /* The tile of C is needed at the end: start bringing it in now. */
    if (!ctrans) {
        TMPL_R8(TMPL_PREF, _)
    }

    const T *a = x->a, *b = x->b;
    const size_t lda = x->lda, ldb = x->ldb, kc = x->kc, nlast = x->nlast;
    TMPL_UNROLL4
    for (size_t p = 0; p < kc; p++) {
        V bv[4];
        TMPL_V4(TMPL_LDB, _)
        TMPL_R8(TMPL_FMAR, _)
        a += arow ? 1 : lda;
        b += ldb;
    }

    if (ctrans) { /* t = alpha·acc, then transposed into C */
        T *t = x->tbuf;
        const V va = VBCAST(x->alpha);
        TMPL_R8(TMPL_TSTR, _)
        F(store_t)(t, t + MR * NR, (size_t)mrc, (size_t)(nv - 1) * VL + x->nlast, x);
        return;
    }

    if (x->beta == 0)
        F(store_c)(0, full, mrc, nv, acc, x);
    else if (x->beta == 1)
        F(store_c)(1, full, mrc, nv, acc, x);
    else
        F(store_c)(2, full, mrc, nv, acc, x);
}
#undef TMPL_ZERO1
#undef TMPL_ZEROR
#undef TMPL_PREF
#undef TMPL_LDB
#undef TMPL_FMA1
#undef TMPL_FMAR
#undef TMPL_TST1
#undef TMPL_TSTR

/* Instances.  C tiles: MR rows, nv vectors, A rows or columns contiguous
 * (ukr_<nv>_<arow>).  Cᵀ tiles: exactly mr rows (ukr_t_<mr>_<nv>), because
 * there the rows are C's few columns and padding them would waste work. */
#define TMPL_UKR(nv, arow)                                                     \
    static void F(ukr_##nv##_##arow)(const F(ukr_args) * x)                    \
    {                                                                          \
        F(ukr_body)(MR, nv, arow, false, false, false, x);                     \
    }                                                                          \
    static void F(ukr_f##nv##_##arow)(const F(ukr_args) * x)                   \
    {                                                                          \
        F(ukr_body)(MR, nv, arow, false, false, true, x);                      \
    }
#define TMPL_UKR_T(mr, nv)                                                     \
    static void F(ukr_t_##mr##_##nv)(const F(ukr_args) * x)                    \
    {                                                                          \
        F(ukr_body)(mr, nv, false, true, false, false, x);                     \
    }
#define TMPL_UKR_TM(mr)                                                        \
    static void F(ukr_tm_##mr)(const F(ukr_args) * x)                          \
    {                                                                          \
        F(ukr_body)(mr, 1, false, true, true, false, x);                       \
    }
#if NV >= 2
#define TMPL_NV2(X, a) X(a, 2)
#define TMPL_NV2E(X, a) , X(a, 2)
#else
#define TMPL_NV2(X, a)
#define TMPL_NV2E(X, a)
#endif
#if NV >= 3
#define TMPL_NV3(X, a) X(a, 3)
#define TMPL_NV3E(X, a) , X(a, 3)
#else
#define TMPL_NV3(X, a)
#define TMPL_NV3E(X, a)
#endif
#if NV >= 4
#define TMPL_NV4(X, a) X(a, 4)
#define TMPL_NV4E(X, a) , X(a, 4)
#else
#define TMPL_NV4(X, a)
#define TMPL_NV4E(X, a)
#endif
/* X(a, nv) for nv = 1..NV, as definitions or as a list */
#define TMPL_ALL_NV(X, a) X(a, 1) TMPL_NV2(X, a) TMPL_NV3(X, a) TMPL_NV4(X, a)
#define TMPL_LIST_NV(X, a) X(a, 1) TMPL_NV2E(X, a) TMPL_NV3E(X, a) TMPL_NV4E(X, a)
#define TMPL_UKR_R(arow, nv) TMPL_UKR(nv, arow)
TMPL_ALL_NV(TMPL_UKR_R, 0)
TMPL_ALL_NV(TMPL_UKR_R, 1)
TMPL_ALL_NV(TMPL_UKR_T, 1)
TMPL_UKR_TM(1)
#if MR >= 2
TMPL_ALL_NV(TMPL_UKR_T, 2)
TMPL_UKR_TM(2)
#endif
#if MR >= 3
TMPL_ALL_NV(TMPL_UKR_T, 3)
TMPL_UKR_TM(3)
#endif
#if MR >= 4
TMPL_ALL_NV(TMPL_UKR_T, 4)
TMPL_UKR_TM(4)
#endif
#if MR >= 5
TMPL_ALL_NV(TMPL_UKR_T, 5)
TMPL_UKR_TM(5)
#endif
#if MR >= 6
TMPL_ALL_NV(TMPL_UKR_T, 6)
TMPL_UKR_TM(6)
#endif
#if MR >= 7
TMPL_ALL_NV(TMPL_UKR_T, 7)
TMPL_UKR_TM(7)
#endif
#if MR >= 8
TMPL_ALL_NV(TMPL_UKR_T, 8)
TMPL_UKR_TM(8)
#endif
#if MR > 8
#error "gemm_tmpl.h: MR > 8 needs more Cᵀ instances"
#endif

typedef void (*F(ukr_fn))(const F(ukr_args) *);
#define TMPL_PAIR(nv, x) {F(ukr_##nv##_0), F(ukr_##nv##_1)}
#define TMPL_PAIR_R(x, nv) TMPL_PAIR(nv, x)
#define TMPL_FPAIR(nv, x) {F(ukr_f##nv##_0), F(ukr_f##nv##_1)}
#define TMPL_FPAIR_R(x, nv) TMPL_FPAIR(nv, x)
/* [vectors − 1][arow]: edge tiles, and full ones */
static const F(ukr_fn) F(ukr_tab)[NV][2] = {TMPL_LIST_NV(TMPL_PAIR_R, 0)};
static const F(ukr_fn) F(ukr_full_tab)[NV][2] = {TMPL_LIST_NV(TMPL_FPAIR_R, 0)};
#define TMPL_T(mr, nv) F(ukr_t_##mr##_##nv)
#define TMPL_TROW(mr) {TMPL_LIST_NV(TMPL_T, mr)}
/* [rows − 1][vectors − 1] */
static const F(ukr_fn) F(ukr_t_tab)[MR][NV] = {
    TMPL_TROW(1),
#if MR >= 2
    TMPL_TROW(2),
#endif
#if MR >= 3
    TMPL_TROW(3),
#endif
#if MR >= 4
    TMPL_TROW(4),
#endif
#if MR >= 5
    TMPL_TROW(5),
#endif
#if MR >= 6
    TMPL_TROW(6),
#endif
#if MR >= 7
    TMPL_TROW(7),
#endif
#if MR >= 8
    TMPL_TROW(8),
#endif
};

/* [rows − 1]: one vector, B loaded masked */
static const F(ukr_fn) F(ukr_tm_tab)[MR] = {
    F(ukr_tm_1),
#if MR >= 2
    F(ukr_tm_2),
#endif
#if MR >= 3
    F(ukr_tm_3),
#endif
#if MR >= 4
    F(ukr_tm_4),
#endif
#if MR >= 5
    F(ukr_tm_5),
#endif
#if MR >= 6
    F(ukr_tm_6),
#endif
#if MR >= 7
    F(ukr_tm_7),
#endif
#if MR >= 8
    F(ukr_tm_8),
#endif
};

/*
 * Macro-kernel: every micro-tile of one block.  For C tiles, A slivers are
 * outer (one stays in L1 while it meets every B sliver of the block, which
 * stream from L2).  For Cᵀ tiles (few rows, B read in place) B slivers are
 * outer, so that each is read from memory once for all the A slivers.
 * An A sliver whose rows are contiguous is first copied (zero-padded) into
 * the column-contiguous form when it is the last one and short (the C
 * kernels compute MR rows and must not read past A), or for Cᵀ tiles (whose
 * kernels only take that form).
 */
static void F(macro)(const tg_gemm_blk *blk)
{
    const size_t m = blk->m, n = blk->n, kc = blk->kc;
    const bool ct = blk->ctrans;
    _Alignas(64) T edge[MR * KC], tbuf[2 * MR * NR];
    F(ukr_args) x;
    x.tbuf = tbuf;
    x.kc = kc;
    x.ldc = blk->ldc;
    x.alpha = (T)blk->alpha;
    x.beta = (T)blk->beta;
    const size_t outer = ct ? n : m, inner = ct ? m : n;
    const size_t ostep = ct ? NR : MR, istep = ct ? MR : NR;
    for (size_t o = 0; o < outer; o += ostep) {
        for (size_t in = 0; in < inner; in += istep) {
            size_t i = ct ? in : o, j = ct ? o : in;
            if (ct || in == 0) { /* set up the A sliver of rows i .. */
                const T *a = (const T *)blk->a + i / MR * blk->a_step;
                size_t lda = blk->lda;
                bool arow = blk->arow;
                x.mr = m - i < MR ? m - i : MR;
                if (arow ? x.mr < MR || ct : !ct && x.mr < MR && !blk->a_padded) {
                    for (size_t p = 0; p < kc; p++)
                        for (size_t r = 0; r < MR; r++)
                            edge[p * MR + r] = r >= x.mr ? 0
                                               : arow    ? a[r * lda + p]
                                                         : a[p * lda + r];
                    a = edge;
                    lda = MR;
                    arow = false;
                }
                x.a = a;
                x.lda = lda;
                x.arow = arow;
            }
            size_t w = n - j < NR ? n - j : NR, nv = (w + VL - 1) / VL;
            x.b = (const T *)blk->b + (blk->b_inplace ? j : j * kc);
            x.ldb = blk->b_inplace ? blk->ldb : nv * VL;
            x.nlast = w - (nv - 1) * VL;
            if (ct) {
                /* B is read in place: a partial last vector takes its own
                 * call, with masked loads (keeping the mask out of the
                 * wide kernels' loop). */
                x.c = (T *)blk->c + j * blk->ldc + i;
                if (x.nlast < VL) {
                    if (nv > 1) {
                        x.nlast = VL;
                        F(ukr_t_tab)[x.mr - 1][nv - 2](&x);
                        x.nlast = w - (nv - 1) * VL;
                    }
                    x.b += (nv - 1) * VL;
                    x.c += (nv - 1) * VL * blk->ldc;
                    F(ukr_tm_tab)[x.mr - 1](&x);
                } else {
                    F(ukr_t_tab)[x.mr - 1][nv - 1](&x);
                }
            } else {
                x.c = (T *)blk->c + i * blk->ldc + j;
                if (x.mr == MR && x.nlast == VL)
                    F(ukr_full_tab)[nv - 1][x.arow](&x);
                else
                    F(ukr_tab)[nv - 1][x.arow](&x);
            }
        }
    }
}

/* Transpose op(B)[kc × n] (B(p, j) = b[p·ldb + j]) into dst[j·kc + p], for
 * the dot-product form.  When n >= TB the last column block overlaps the
 * previous one instead of falling back to single elements. */
static void F(pack_bt)(size_t kc, size_t n, const void *src, size_t ldb, void *dstv)
{
    const T *b = src;
    T *dst = dstv;
    size_t p = 0;
#if TB
    if (n >= TB)
        for (; p + TB <= kc; p += TB)
            for (size_t j = 0; j < n; j += TB) {
                size_t j0 = j + TB <= n ? j : n - TB;
                TP(b + p * ldb + j0, ldb, dst + j0 * kc + p, kc);
            }
#endif
    for (; p < kc; p++)
        for (size_t j = 0; j < n; j++)
            dst[j * kc + p] = b[p * ldb + j];
}

/* Pack op(A)[mc × kc] into MR-row slivers, p-major: dst[s·MR·kc + p·MR + r]
 * = A(s·MR + r, p), rows past mc zero. */
static void F(pack_a)(bool ta, size_t mc, size_t kc, const void *src,
                      size_t lda, void *dstv)
{
    const T *a = src;
    T *dst = dstv;
    for (size_t i = 0; i < mc; i += MR, dst += MR * kc) {
        size_t mr = mc - i < MR ? mc - i : MR;
        if (ta) { /* A(i+r, p) = a[p·lda + i + r]: a plain copy per p */
            const T *s = a + i;
            for (size_t p = 0; p < kc; p++) {
                if (mr == MR) {
                    memcpy(dst + p * MR, s + p * lda, MR * sizeof(T));
                } else {
                    for (size_t r = 0; r < MR; r++)
                        dst[p * MR + r] = r < mr ? s[p * lda + r] : 0;
                }
            }
        } else { /* A(i+r, p) = a[(i+r)·lda + p]: a transpose */
            const T *s = a + i * lda;
            size_t p = 0;
#if TB
            if (mr == MR && MR % TB == 0)
                for (; p + TB <= kc; p += TB)
                    for (size_t r = 0; r < MR; r += TB)
                        TP(s + r * lda + p, lda, dst + p * MR + r, MR);
#endif
            for (; p < kc; p++)
                for (size_t r = 0; r < MR; r++)
                    dst[p * MR + r] = r < mr ? s[r * lda + p] : 0;
        }
    }
}

/* Pack op(B)[kc × nc] into NR-column slivers, p-major: sliver t at
 * dst + t·NR·kc holds B(p, t·NR + c) at [p·w + c], w = NR, or for the last
 * sliver its width rounded up to whole vectors (zero-padded). */
static void F(pack_b)(bool tb, size_t kc, size_t nc, const void *src,
                      size_t ldb, void *dstv)
{
    const T *b = src;
    T *dst = dstv;
    for (size_t j = 0; j < nc; j += NR) {
        size_t w = nc - j < NR ? nc - j : NR, wp = tg_round_up(w, VL);
        T *d = dst + j * kc;
        if (!tb) { /* B(p, j+c) = b[p·ldb + j + c]: a plain copy per p */
            const T *s = b + j;
            for (size_t p = 0; p < kc; p++) {
                if (w == NR) {
                    memcpy(d + p * NR, s + p * ldb, NR * sizeof(T));
                } else {
                    memcpy(d + p * wp, s + p * ldb, w * sizeof(T));
                    for (size_t c = w; c < wp; c++)
                        d[p * wp + c] = 0;
                }
            }
        } else { /* B(p, j+c) = b[(j+c)·ldb + p]: a transpose */
            const T *s = b + j * ldb;
            size_t p = 0;
#if TB
            for (; p + TB <= kc; p += TB) {
                size_t c = 0;
                for (; c + TB <= w; c += TB)
                    TP(s + c * ldb + p, ldb, d + p * wp + c, wp);
                for (; c < wp; c++)
                    for (size_t q = 0; q < TB; q++)
                        d[(p + q) * wp + c] = c < w ? s[c * ldb + p + q] : 0;
            }
#endif
            for (; p < kc; p++)
                for (size_t c = 0; c < wp; c++)
                    d[p * wp + c] = c < w ? s[c * ldb + p] : 0;
        }
    }
}

/*
 * Direct path for small problems (the 4-5-3 MLP's GEMMs and up to a few
 * dozen rows and columns): no packing, no blocking, no edge copies, B read
 * in place (op(B) copied first when transposed).  Rows of C in groups of
 * SMR, 4, then 1; columns nvs = 2 (or 1) vectors of SVL lanes at a time:
 *     acc[r][v][h] = Σ_{p ≡ h mod split} bcast(A(i+r, p)) · B(p, j+v·SVL ..)
 * With few rows the sum over p is split into interleaved partial sums, so
 * that there are always about 8 independent FMA chains (a chain waits for
 * its previous FMA); C = alpha·Σ_h acc[r][v][h] + beta·C.
 * The vectors may be narrower than the tiles' (SV, default V): on cores
 * that split 512-bit FMAs in two, 256 bits give the same peak with less
 * waste on a few columns.
 */
#ifndef SV
#define SV V
#define SVL VL
#define SVZERO VZERO
#define SVLOAD VLOAD
#define SVLOADN VLOADN
#define SVSTORE VSTORE
#define SVSTOREN VSTOREN
#define SVBCAST VBCAST
#define SVFMA VFMA
#define SVMUL VMUL
#define SVADD VADD
#endif
#ifndef SMR
#define SMR 4 /* rows per group: 2·SMR accumulators must fit the registers */
#endif

/* The last vector is full (its loads and stores need no mask). */
static TMPL_INLINE SV F(sload)(const bool whole, const T *p, size_t nl)
{
    return whole ? SVLOAD(p) : SVLOADN(p, nl);
}

#define TMPL_SZ(h, r, v)                                                       \
    if (r < rows && v < nvs && h < split)                                      \
        acc[r][v][h] = SVZERO();
#define TMPL_SZV(v, r) TMPL_H4(TMPL_SZ, r, v)
#define TMPL_SZR(r, _) TMPL_V4(TMPL_SZV, r)
#define TMPL_SLD(v, q)                                                         \
    if (v < nvs)                                                               \
        bv[v] = F(sload)(full || v < nvs - 1, b + (q) * ldb + v * SVL, nl);
#define TMPL_SFMA1(v, r, h)                                                    \
    if (v < nvs)                                                               \
        acc[r][v][h] = SVFMA(ar, bv[v], acc[r][v][h]);
#define TMPL_SFMAR(r, q, h)                                                    \
    if (r < rows) {                                                            \
        const SV ar = SVBCAST(ta ? a[(q) * lda + r] : a[r * lda + (q)]);       \
        TMPL_V4(TMPL_SFMA1, r, h)                                              \
    }
#define TMPL_SSTEP(h, p)                                                       \
    if (h < split) {                                                           \
        SV bv[4];                                                              \
        TMPL_V4(TMPL_SLD, (p) + h)                                             \
        TMPL_R8(TMPL_SFMAR, (p) + h, h)                                        \
    }
#define TMPL_SSUM(h, r, v)                                                     \
    if (r < rows && v < nvs && h > 0 && h < split)                             \
        acc[r][v][0] = SVADD(acc[r][v][0], acc[r][v][h]);
#define TMPL_SST1(v, r)                                                        \
    if (r < rows && v < nvs) {                                                 \
        TMPL_H4(TMPL_SSUM, r, v)                                               \
        T *cv = x->c + r * x->ldc + v * SVL;                                   \
        SV s = SVMUL(va, acc[r][v][0]); /* (see store_c) */                    \
        if (full || v < nvs - 1) {                                             \
            if (beta == 0)                                                     \
                SVSTORE(cv, s);                                                \
            else if (beta == 1)                                                \
                SVSTORE(cv, SVADD(SVLOAD(cv), s));                             \
            else                                                               \
                SVSTORE(cv, SVFMA(vb, SVLOAD(cv), s));                         \
        } else {                                                               \
            if (beta == 0)                                                     \
                SVSTOREN(cv, s, nl);                                           \
            else if (beta == 1)                                                \
                SVSTOREN(cv, SVADD(SVLOADN(cv, nl), s), nl);                   \
            else                                                               \
                SVSTOREN(cv, SVFMA(vb, SVLOADN(cv, nl), s), nl);               \
        }                                                                      \
    }
#define TMPL_SSTR(r, _) TMPL_V4(TMPL_SST1, r)
static TMPL_INLINE void F(small_rows)(const int rows, const int nvs, const bool ta,
                                      const bool full, const F(ukr_args) *x)
{
    const int split = rows * nvs >= 8 ? 1 : rows * nvs >= 4 ? 2 : 4;
    SV acc[8][4][4]; /* [rows][nvs][split] used */
    TMPL_R8(TMPL_SZR, _)
    const T *a = x->a, *b = x->b;
    const size_t lda = x->lda, ldb = x->ldb, kc = x->kc, nl = x->nlast;
    size_t p = 0;
    for (; p + (size_t)split <= kc; p += (size_t)split) {
        TMPL_H4(TMPL_SSTEP, p)
    }
    for (; p < kc; p++) {
        SV bv[4];
        TMPL_V4(TMPL_SLD, p)
        TMPL_R8(TMPL_SFMAR, p, 0)
    }
    const T beta = x->beta;
    const SV va = SVBCAST(x->alpha), vb = SVBCAST(beta);
    TMPL_R8(TMPL_SSTR, _)
}
#undef TMPL_SZ
#undef TMPL_SZV
#undef TMPL_SZR
#undef TMPL_SLD
#undef TMPL_SFMA1
#undef TMPL_SFMAR
#undef TMPL_SSTEP
#undef TMPL_SSUM
#undef TMPL_SST1
#undef TMPL_SSTR

/* All rows for one chunk of nvs vectors of columns. */
#define TMPL_SMALL(ta, nvs, full)                                              \
    static void F(small_##ta##nvs##full)(F(ukr_args) * x, size_t m)           \
    {                                                                          \
        const T *a = x->a;                                                     \
        T *c = x->c;                                                           \
        size_t i = 0, step = ta ? 1 : x->lda;                                  \
        for (; i + SMR <= m; i += SMR) {                                       \
            x->a = a + i * step;                                               \
            x->c = c + i * x->ldc;                                             \
            F(small_rows)(SMR, nvs, ta, full, x);                              \
        }                                                                      \
        for (; SMR > 4 && i + 4 <= m; i += 4) {                                \
            x->a = a + i * step;                                               \
            x->c = c + i * x->ldc;                                             \
            F(small_rows)(4, nvs, ta, full, x);                                \
        }                                                                      \
        for (; i < m; i++) {                                                   \
            x->a = a + i * step;                                               \
            x->c = c + i * x->ldc;                                             \
            F(small_rows)(1, nvs, ta, full, x);                                \
        }                                                                      \
    }
TMPL_SMALL(0, 1, 0)
TMPL_SMALL(0, 1, 1)
TMPL_SMALL(0, 2, 0)
TMPL_SMALL(0, 2, 1)
TMPL_SMALL(1, 1, 0)
TMPL_SMALL(1, 1, 1)
TMPL_SMALL(1, 2, 0)
TMPL_SMALL(1, 2, 1)
#undef TMPL_SMALL

/* [ta][vectors − 1][last vector full] */
static void (*const F(small_tab)[2][2][2])(F(ukr_args) *, size_t) = {
    {{F(small_010), F(small_011)}, {F(small_020), F(small_021)}},
    {{F(small_110), F(small_111)}, {F(small_120), F(small_121)}},
};

static void F(small)(const tg_gemm_small *s)
{
    T bt[TG_GEMM_SMALL_KNT];
    const T *b = s->b;
    size_t ldb = s->ldb;
    if (s->tb) { /* op(B)[p, j] = b[j·ldb + p] → bt[p·n + j] */
        for (size_t j = 0; j < s->n; j++)
            for (size_t p = 0; p < s->k; p++)
                bt[p * s->n + j] = b[j * ldb + p];
        b = bt;
        ldb = s->n;
    }
    F(ukr_args) x;
    x.kc = s->k;
    x.lda = s->lda;
    x.ldb = ldb;
    x.ldc = s->ldc;
    x.alpha = (T)s->alpha;
    x.beta = (T)s->beta;
    for (size_t j = 0; j < s->n;) {
        size_t left = s->n - j, nvs = left > SVL ? 2 : 1;
        size_t w = left < nvs * SVL ? left : nvs * SVL; /* columns in this chunk */
        x.a = s->a;
        x.b = b + j;
        x.c = (T *)s->c + j;
        x.nlast = w - (nvs - 1) * SVL;
        F(small_tab)[s->ta][nvs - 1][x.nlast == SVL](&x, s->m);
        j += w;
    }
}

#ifndef DOT
#define DOT NULL
#define DOT_NMAX 0
#endif
const tg_gemm_kern KERN = {ISA_NAME, sizeof(T),  MR, NR,       VL,
                           KC,       NC,         MC, F(pack_a), F(pack_b),
                           F(macro), F(pack_bt), F(small), DOT,     DOT_NMAX};

#undef TMPL_CAT2
#undef TMPL_CAT
#undef F
#undef NR
#undef DOT
#undef DOT_NMAX
#undef TMPL_UKR
#undef TMPL_UKR_T
#undef TMPL_UKR_TM
#undef TMPL_UKR_R
#undef TMPL_NV2
#undef TMPL_NV2E
#undef TMPL_NV3
#undef TMPL_NV3E
#undef TMPL_NV4
#undef TMPL_NV4E
#undef TMPL_ALL_NV
#undef TMPL_LIST_NV
#undef TMPL_PAIR
#undef TMPL_PAIR_R
#undef TMPL_FPAIR
#undef TMPL_FPAIR_R
#undef TMPL_T
#undef TMPL_TROW
#undef SV
#undef SVL
#undef SVZERO
#undef SVLOAD
#undef SVLOADN
#undef SVSTORE
#undef SVSTOREN
#undef SVBCAST
#undef SVFMA
#undef SVMUL
#undef SVADD
#undef SMR
/* The template consumes its parameters: the next instantiation defines them anew. */
#undef T
#undef V
#undef VL
#undef MR
#undef NV
#undef KC
#undef NC
#undef MC
#undef PFX
#undef KERN
#undef ISA_NAME
#undef VZERO
#undef VLOAD
#undef VLOADN
#undef VSTORE
#undef VSTOREN
#undef VBCAST
#undef VFMA
#undef VMUL
#undef VADD
#undef TB
#undef TP

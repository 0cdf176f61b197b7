/* conv2d: y = x ⋆ w (+ b), PyTorch's Conv2d (a cross-correlation), groups G:
 *   x [N,C,H,W], w [O,Cg,kH,kW] with Cg = C/G, b [O], y [N,O,Ho,Wo],
 *   y[n,o,i,j] = b[o] + Σ_{c,p,q} w[o,c,p,q] · x[n, g·Cg + c, i·sh + p·dh − ph,
 *                                                    j·sw + q·dw − pw]
 * (g = o / (O/G), x zero outside [0,H)×[0,W)).  With col = im2col(x_n, g),
 * the [Cg·kH·kW, Ho·Wo] matrix of the input taps of every output position,
 * each sample and group is one GEMM, and so is each gradient:
 *   y_n,g = W_g · col            W_g = w[g·Og .. , :] as [Og, Cg·kH·kW]
 *   dW_g += dY_n,g · colᵀ        (summed over the samples)
 *   dx_n  = col2im(W_gᵀ · dY_n,g) (the transpose of im2col: a scatter-add)
 *   db[o] = Σ_{n,i,j} dY[n,o,i,j]
 * A 1×1 kernel with stride 1 and no padding needs no im2col: col is x_n.
 *
 * Work is split into `lanes` (a number fixed by the shapes alone, never by
 * the thread count): lane l takes a contiguous range of samples and has its
 * own column buffers and its own partial dW in the node's scratch; the
 * lanes run on the pool (their GEMMs then run inline), and the partial dWs
 * are added in lane order.  Every value is thus computed by the same
 * operations in the same order whatever the thread count.  An output
 * position block (whole output rows) is sized so that a column buffer stays
 * near COL_BYTES (cache-resident), so memory does not grow with the image. */
#include "op.h"

#include <stdint.h>

typedef struct conv_attr {
    int stride[2], pad[2], dil[2], groups; /* setup turns 0 into 1 */
} conv_attr;
TG_ATTR_FITS(conv_attr);
#define CA(n) ATTR(n, conv_attr)

#define COL_BYTES ((size_t)256 << 10) /* a column buffer's target size        */
#define MAX_LANES 16                   /* lanes: at most this many ...          */
#define LANE_BUDGET ((size_t)64 << 20) /* ... and together at most this (bytes) */

/* The shapes and the plan, derived from the inputs and the attributes. */
typedef struct geom {
    size_t n, c, h, w, o, kh, kw, ho, wo;
    size_t sh, sw, ph, pw, dh, dw;
    size_t g, cg, og, kk;  /* groups, Cg, Og, Cg·kH·kW (a GEMM's K)          */
    size_t hw, howo;
    bool direct;           /* 1×1, stride 1, no padding: col is x_n itself  */
    size_t rows, blocks;   /* output rows per block, blocks per sample       */
    size_t colcap;         /* elements of one column buffer (0: direct)      */
    size_t lanes, lane_elems; /* lanes, elements of scratch per lane         */
    size_t es;             /* bytes per element                              */
} geom;

static bool mul_ok(size_t a, size_t b, size_t *r)
{
    if (b && a > SIZE_MAX / b)
        return false;
    *r = a * b;
    return true;
}

/* The plan from the inputs and attributes that setup checked; false when a
 * size overflows (setup then refuses, so forward and backward never see it). */
static bool plan(const tg_tensor *x, const tg_tensor *w, const conv_attr *a, geom *G)
{
    G->n = x->shape[0], G->c = x->shape[1], G->h = x->shape[2], G->w = x->shape[3];
    G->o = w->shape[0], G->kh = w->shape[2], G->kw = w->shape[3];
    G->sh = (size_t)a->stride[0], G->sw = (size_t)a->stride[1];
    G->ph = (size_t)a->pad[0], G->pw = (size_t)a->pad[1];
    G->dh = (size_t)a->dil[0], G->dw = (size_t)a->dil[1];
    G->g = (size_t)a->groups;
    G->cg = G->c / G->g, G->og = G->o / G->g;
    G->es = x->dtype == TG_F32 ? sizeof(float) : sizeof(double);
    /* extents: kernel (dilated) and padded input, checked in setup */
    size_t eh = G->dh * (G->kh - 1) + 1, ew = G->dw * (G->kw - 1) + 1;
    G->ho = (G->h + 2 * G->ph - eh) / G->sh + 1;
    G->wo = (G->w + 2 * G->pw - ew) / G->sw + 1;
    G->hw = G->h * G->w;
    G->direct = G->kh == 1 && G->kw == 1 && G->sh == 1 && G->sw == 1 && !G->ph && !G->pw;
    size_t kk, row, howo;
    if (!mul_ok(G->cg, G->kh * G->kw, &kk) || !mul_ok(kk, G->wo, &row) ||
        !mul_ok(G->ho, G->wo, &howo))
        return false;
    G->kk = kk;
    G->howo = howo;
    if (G->direct) {
        G->rows = G->ho, G->blocks = 1, G->colcap = 0;
    } else {
        size_t fit = COL_BYTES / G->es / row; /* whole rows in COL_BYTES */
        fit = fit < 1 ? 1 : fit > G->ho ? G->ho : fit;
        G->blocks = (G->ho + fit - 1) / fit;
        G->rows = (G->ho + G->blocks - 1) / G->blocks;
        if (!mul_ok(row, G->rows, &G->colcap))
            return false;
    }
    /* per lane: the columns, their gradient, a partial dW and db; 64-byte
     * multiples */
    size_t wsize = w->size + G->o, per = 2 * G->colcap;
    if (per > SIZE_MAX - wsize)
        return false;
    per += wsize;
    size_t unit = TG_ALIGN / G->es, bytes;
    per = (per + unit - 1) / unit * unit;
    if (!mul_ok(per, G->es, &bytes))
        return false;
    G->lane_elems = per;
    size_t lanes = G->n < MAX_LANES ? G->n : MAX_LANES;
    while (lanes > 1 && bytes > LANE_BUDGET / lanes)
        lanes--;
    G->lanes = lanes;
    return true;
}

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    const conv_attr *a = CA((tg_node *)n);
    const tg_tensor *w = IN(n, n->op == &tg_op_conv2d_weight_grad ? 2 : 1); /* (x, g, w) */
    snprintf(buf, len, "k=%zux%zu stride=%dx%d pad=%dx%d dil=%dx%d groups=%d",
             w->rank == 4 ? w->shape[2] : 0, w->rank == 4 ? w->shape[3] : 0, a->stride[0],
             a->stride[1], a->pad[0], a->pad[1], a->dil[0], a->dil[1], a->groups);
}

/* The checks of x = input xi and w = input wi and the attributes (made
 * normal), and the plan into *G. */
static int check(tg_node *n, int xi, int wi, geom *G)
{
    if (tg_need_float(n, xi) || tg_need_float(n, wi) || tg_need_same_dtype(n, xi, wi))
        return TG_ERR;
    tg_tensor *x = IN(n, xi), *w = IN(n, wi);
    conv_attr *a = CA(n);
    if (x->rank != 4)
        return tg_fail(n, "input must be 4-D [N,C,H,W], got %s", tg_shp_of(x).s);
    if (w->rank != 4)
        return tg_fail(n, "weight must be 4-D [O,C/groups,kH,kW], got %s", tg_shp_of(w).s);
    if (a->stride[0] < 0 || a->stride[1] < 0)
        return tg_fail(n, "stride %dx%d is negative (0 means 1)", a->stride[0], a->stride[1]);
    if (a->dil[0] < 0 || a->dil[1] < 0)
        return tg_fail(n, "dilation %dx%d is negative (0 means 1)", a->dil[0], a->dil[1]);
    if (a->pad[0] < 0 || a->pad[1] < 0)
        return tg_fail(n, "padding %dx%d is negative", a->pad[0], a->pad[1]);
    if (a->groups < 0)
        return tg_fail(n, "groups %d is negative (0 means 1)", a->groups);
    for (int i = 0; i < 2; i++) {
        a->stride[i] += !a->stride[i];
        a->dil[i] += !a->dil[i];
    }
    a->groups += !a->groups;
    size_t g = (size_t)a->groups, c = x->shape[1], o = w->shape[0];
    if (c % g)
        return tg_fail(n, "input %s has %zu channels, not divisible by groups %d", tg_shp_of(x).s,
                       c, a->groups);
    if (o % g)
        return tg_fail(n, "weight %s has %zu output channels, not divisible by groups %d",
                       tg_shp_of(w).s, o, a->groups);
    if (w->shape[1] != c / g)
        return tg_fail(n, "weight %s must have %zu input channels (C/groups) for input %s and "
                       "groups %d", tg_shp_of(w).s, c / g, tg_shp_of(x).s, a->groups);
    for (int i = 0; i < 2; i++) {
        size_t k = w->shape[2 + i], d = (size_t)a->dil[i], in = x->shape[2 + i];
        size_t padded = in + 2 * (size_t)a->pad[i]; /* sizes < 2^62: no overflow */
        if (k - 1 > (padded - 1) / d)               /* d·(k − 1) + 1 > padded */
            return tg_fail(n, "kernel %zux%zu with dilation %dx%d is larger than the padded "
                           "input (%s padded by %dx%d)", w->shape[2], w->shape[3], a->dil[0],
                           a->dil[1], tg_shp_of(x).s, a->pad[0], a->pad[1]);
    }
    if (!plan(x, w, a, G))
        return tg_fail(n, "sizes overflow: output %zux%zu per channel (input %s, weight %s, "
                       "padding %dx%d)", G->ho, G->wo, tg_shp_of(x).s, tg_shp_of(w).s, a->pad[0],
                       a->pad[1]);
    if (!mul_ok(G->lanes, G->lane_elems * G->es, &n->scratch_bytes))
        return tg_fail(n, "sizes overflow (input %s, weight %s)", tg_shp_of(x).s,
                       tg_shp_of(w).s);
    return TG_OK;
}

static int setup(tg_node *n)
{
    geom G;
    if (check(n, 0, 1, &G))
        return TG_ERR;
    if (n->n_in == 3) {
        tg_tensor *b = IN(n, 2);
        if (tg_need_float(n, 2) || tg_need_same_dtype(n, 0, 2))
            return TG_ERR;
        if (b->rank != 1 || b->shape[0] != G.o)
            return tg_fail(n, "bias must be [%zu] for weight %s, got %s", G.o,
                           tg_shp_of(IN(n, 1)).s, tg_shp_of(b).s);
    }
    tg_tensor *y = OUT(n);
    y->dtype = IN(n, 0)->dtype;
    y->rank = 4;
    y->shape[0] = G.n, y->shape[1] = G.o, y->shape[2] = G.ho, y->shape[3] = G.wo;
    return TG_OK;
}

/* ---- typed kernels -------------------------------------------------------- */

/* The output columns j whose input column j·s + off − p lies in [0, W):
 * [*lo, *hi). */
static void span(size_t wo, size_t s, size_t off, size_t p, size_t w, size_t *lo, size_t *hi)
{
    size_t a = off >= p ? 0 : (p - off + s - 1) / s;
    size_t b = w - 1 + p < off ? 0 : (w - 1 + p - off) / s + 1;
    *lo = a < wo ? a : wo;
    *hi = b < *lo ? *lo : b < wo ? b : wo;
}

/* The output rows i of [r0, r1) whose input row i·s + off − p lies in
 * [0, H): [*a, *b). */
static void rows_in(const geom *G, size_t r0, size_t r1, size_t off, size_t *a, size_t *b)
{
    size_t lo, hi;
    span(G->ho, G->sh, off, G->ph, G->h, &lo, &hi);
    *a = lo < r0 ? r0 : lo > r1 ? r1 : lo;
    *b = hi < *a ? *a : hi > r1 ? r1 : hi;
}

/* im2col of one group of one sample (x: its Cg channels) for output rows
 * [r0, r1) into col [Cg·kH·kW, (r1 − r0)·Wo]; col2im adds such a matrix back
 * into dx (x's layout), and zeroes the entries of col that fall into the
 * padding.  Each row of col is x's channel shifted by the tap and cut at
 * the edges: with unit strides and Wo = W (PyTorch's "same" padding) the
 * rows of the shifted channel are contiguous in both, so the valid part is
 * one copy (or one sum) and only the edge columns are fixed up; otherwise
 * row by row. */
#define KERNELS(T, S)                                                          \
    static void im2col_##S(const geom *G, const T *x, size_t r0, size_t r1, T *col) \
    {                                                                          \
        size_t wo = G->wo, ncols = (r1 - r0) * wo;                             \
        bool flat = G->sh == 1 && G->sw == 1 && G->w == wo;                    \
        for (size_t c = 0; c < G->cg; c++)                                     \
            for (size_t p = 0; p < G->kh; p++) {                               \
                size_t ra, rb;                                                 \
                rows_in(G, r0, r1, p * G->dh, &ra, &rb);                       \
                for (size_t q = 0; q < G->kw; q++) {                           \
                    T *d = col + ((c * G->kh + p) * G->kw + q) * ncols;        \
                    size_t lo, hi, off = q * G->dw, ia = ra, ib = rb;          \
                    span(wo, G->sw, off, G->pw, G->w, &lo, &hi);               \
                    if (lo == hi)                                              \
                        ia = ib = r1; /* no valid column: all zero */          \
                    for (size_t j = 0; j < (ia - r0) * wo; j++)                \
                        d[j] = 0;                                              \
                    for (size_t j = (ib - r0) * wo; j < ncols; j++)            \
                        d[j] = 0;                                              \
                    if (ia == ib)                                              \
                        continue;                                              \
                    const T *s = x + (c * G->h + ia * G->sh + p * G->dh - G->ph) * G->w + \
                                 lo * G->sw + off - G->pw;                     \
                    d += (ia - r0) * wo;                                       \
                    if (flat) {                                                \
                        memcpy(d + lo, s, ((ib - ia - 1) * wo + hi - lo) * sizeof(T)); \
                        for (size_t i = ia; i < ib; i++, d += wo) {            \
                            for (size_t j = 0; j < lo; j++)                    \
                                d[j] = 0;                                      \
                            for (size_t j = hi; j < wo; j++)                   \
                                d[j] = 0;                                      \
                        }                                                      \
                        continue;                                              \
                    }                                                          \
                    for (size_t i = ia; i < ib; i++, d += wo, s += G->sh * G->w) { \
                        for (size_t j = 0; j < lo; j++)                        \
                            d[j] = 0;                                          \
                        if (G->sw == 1)                                        \
                            memcpy(d + lo, s, (hi - lo) * sizeof(T));          \
                        else                                                   \
                            for (size_t j = lo; j < hi; j++)                   \
                                d[j] = s[(j - lo) * G->sw];                    \
                        for (size_t j = hi; j < wo; j++)                       \
                            d[j] = 0;                                          \
                    }                                                          \
                }                                                              \
            }                                                                  \
    }                                                                          \
    static void col2im_##S(const geom *G, T *col, size_t r0, size_t r1, T *dx) \
    {                                                                          \
        size_t wo = G->wo, ncols = (r1 - r0) * wo;                             \
        bool flat = G->sh == 1 && G->sw == 1 && G->w == wo;                    \
        for (size_t c = 0; c < G->cg; c++)                                     \
            for (size_t p = 0; p < G->kh; p++) {                               \
                size_t ia, ib;                                                 \
                rows_in(G, r0, r1, p * G->dh, &ia, &ib);                       \
                for (size_t q = 0; q < G->kw; q++) {                           \
                    T *d = col + ((c * G->kh + p) * G->kw + q) * ncols + (ia - r0) * wo; \
                    size_t lo, hi, off = q * G->dw;                            \
                    span(wo, G->sw, off, G->pw, G->w, &lo, &hi);               \
                    if (lo == hi || ia == ib)                                  \
                        continue;                                              \
                    T *s = dx + (c * G->h + ia * G->sh + p * G->dh - G->ph) * G->w + \
                           lo * G->sw + off - G->pw;                           \
                    if (flat) { /* the edges of col are padding: zero them */  \
                        T *e = d;                                              \
                        for (size_t i = ia; i < ib; i++, e += wo) {            \
                            for (size_t j = 0; j < lo; j++)                    \
                                e[j] = 0;                                      \
                            for (size_t j = hi; j < wo; j++)                   \
                                e[j] = 0;                                      \
                        }                                                      \
                        size_t len = (ib - ia - 1) * wo + hi - lo;             \
                        T *restrict sr = s;                                    \
                        const T *restrict dr = d + lo;                         \
                        for (size_t j = 0; j < len; j++)                       \
                            sr[j] += dr[j];                                    \
                        continue;                                              \
                    }                                                          \
                    for (size_t i = ia; i < ib; i++, d += wo, s += G->sh * G->w) { \
                        if (G->sw == 1)                                        \
                            for (size_t j = lo; j < hi; j++)                   \
                                s[j - lo] += d[j];                             \
                        else                                                   \
                            for (size_t j = lo; j < hi; j++)                   \
                                s[(j - lo) * G->sw] += d[j];                   \
                    }                                                          \
                }                                                              \
            }                                                                  \
    }                                                                          \
    /* y[o, j] += b[o] over `rows` rows of length len (row stride ld) */      \
    static void add_bias_##S(size_t rows, size_t len, size_t ld, const T *b, T *y) \
    {                                                                          \
        for (size_t o = 0; o < rows; o++, y += ld)                             \
            for (size_t j = 0; j < len; j++)                                   \
                y[j] += b[o];                                                  \
    }                                                                          \
    /* Σ of v[0..len) in a fixed order: 16 interleaved partial sums (so the   \
     * loop vectorises without reassociation), then those in order. */        \
    static T sum_##S(const T *v, size_t len)                                   \
    {                                                                          \
        T acc[16] = {0};                                                       \
        size_t j = 0;                                                          \
        for (; j + 16 <= len; j += 16)                                         \
            for (int k = 0; k < 16; k++)                                       \
                acc[k] += v[j + k];                                            \
        for (int k = 0; j < len; j++, k++)                                     \
            acc[k] += v[j];                                                    \
        T s = 0;                                                               \
        for (int k = 0; k < 16; k++)                                           \
            s += acc[k];                                                       \
        return s;                                                              \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void im2col(const geom *G, const void *x, size_t r0, size_t r1, void *col)
{
    if (G->es == sizeof(float))
        im2col_f32(G, x, r0, r1, col);
    else
        im2col_f64(G, x, r0, r1, col);
}

static void col2im(const geom *G, void *col, size_t r0, size_t r1, void *dx)
{
    if (G->es == sizeof(float))
        col2im_f32(G, col, r0, r1, dx);
    else
        col2im_f64(G, col, r0, r1, dx);
}

/* One GEMM of either dtype: C = op(A)·op(B) (+ C when acc). */
static void gemm(const geom *G, bool ta, bool tb, size_t m, size_t nn, size_t k, const void *a,
                 size_t lda, const void *b, size_t ldb, int acc, void *c, size_t ldc)
{
    if (G->es == sizeof(float))
        tg_gemm_f32(ta, tb, m, nn, k, 1, a, lda, b, ldb, (float)acc, c, ldc);
    else
        tg_gemm_f64(ta, tb, m, nn, k, 1, a, lda, b, ldb, acc, c, ldc);
}

/* ---- the lanes ------------------------------------------------------------- */

/* What the lanes read and write.  fwd: y (+)= x ⋆ w (+ b); bwd: from dy,
 * dx (+)= the transposed convolution of dy by w, dw (+)= the correlation of
 * x with dy, db (+)= Σ dy (each NULL when not wanted).  The same lanes
 * compute conv2d and its two gradient ops, with other tensors in the
 * slots. */
typedef struct conv_ctx {
    tg_node *n;         /* whose scratch the lanes use */
    geom G;
    const void *x, *w, *b, *dy;
    void *y, *dx, *dw, *db;
    int acc_y, acc_x, acc_w, acc_b; /* add to it (1) or overwrite (0) */
} conv_ctx;

#define AT(p, i, es) ((char *)(p) + (size_t)(i) * (es)) /* element i of p */
/* the same for a tensor the op may not read (NULL: x when only dX is wanted) */
#define AT_OR_NULL(p, i, es) ((p) ? AT(p, i, es) : NULL)

/* Lane l's samples: [*s0, *s1). */
static void lane_range(const geom *G, size_t l, size_t *s0, size_t *s1)
{
    *s0 = l * G->n / G->lanes;
    *s1 = (l + 1) * G->n / G->lanes;
}

static void fwd_lanes(void *vctx, size_t l0, size_t l1)
{
    conv_ctx *cx = vctx;
    const geom *G = &cx->G;
    tg_node *n = cx->n;
    size_t es = G->es, kkw = G->og * G->kk; /* elements of W_g */
    for (size_t l = l0; l < l1; l++) {
        void *col = AT(n->scratch, l * G->lane_elems, es);
        size_t s0, s1;
        lane_range(G, l, &s0, &s1);
        for (size_t s = s0; s < s1; s++)
            for (size_t g = 0; g < G->g; g++) {
                const void *xs = AT(cx->x, (s * G->c + g * G->cg) * G->hw, es);
                void *ys = AT(cx->y, (s * G->o + g * G->og) * G->howo, es);
                const void *wg = AT(cx->w, g * kkw, es);
                for (size_t r0 = 0; r0 < G->ho; r0 += G->rows) {
                    size_t r1 = r0 + G->rows < G->ho ? r0 + G->rows : G->ho;
                    size_t nc = (r1 - r0) * G->wo;
                    const void *b = xs;
                    size_t ldb = G->hw;
                    if (!G->direct) {
                        im2col(G, xs, r0, r1, col);
                        b = col, ldb = nc;
                    }
                    gemm(G, false, false, G->og, nc, G->kk, wg, G->kk, b, ldb, cx->acc_y,
                         AT(ys, r0 * G->wo, es), G->howo);
                }
            }
        if (cx->b) {
            const void *bias = cx->b;
            for (size_t s = s0; s < s1; s++) {
                void *ys = AT(cx->y, s * G->o * G->howo, es);
                if (es == sizeof(float))
                    add_bias_f32(G->o, G->howo, G->howo, bias, ys);
                else
                    add_bias_f64(G->o, G->howo, G->howo, bias, ys);
            }
        }
    }
}

static void conv_fwd(conv_ctx *cx) { tg_parallel_for(cx->G.lanes, 1, fwd_lanes, cx); }

/* Lane l of backward: its samples' dx, and its partial dW and db (first
 * contribution overwrites) at the end of its scratch. */
static void bwd_lanes(void *vctx, size_t l0, size_t l1)
{
    conv_ctx *cx = vctx;
    const geom *G = &cx->G;
    tg_node *n = cx->n;
    size_t es = G->es, kkw = G->og * G->kk, wsize = G->o * G->kk;
    for (size_t l = l0; l < l1; l++) {
        void *col = AT(n->scratch, l * G->lane_elems, es);
        void *dcol = AT(col, G->colcap, es);
        void *pw = AT(dcol, G->colcap, es); /* partial dW: w's layout */
        void *pb = AT(pw, wsize, es);       /* partial db */
        size_t s0, s1;
        lane_range(G, l, &s0, &s1);
        for (size_t s = s0; s < s1; s++) {
            for (size_t o = 0; cx->db && o < G->o; o++) {
                size_t at = (s * G->o + o) * G->howo;
                if (es == sizeof(float)) {
                    float v = sum_f32((const float *)cx->dy + at, G->howo);
                    ((float *)pb)[o] = s > s0 ? ((float *)pb)[o] + v : v;
                } else {
                    double v = sum_f64((const double *)cx->dy + at, G->howo);
                    ((double *)pb)[o] = s > s0 ? ((double *)pb)[o] + v : v;
                }
            }
            if (cx->dx && !G->direct && !cx->acc_x)
                memset(AT(cx->dx, s * G->c * G->hw, es), 0, G->c * G->hw * es);
            for (size_t g = 0; g < G->g; g++) {
                size_t xo = (s * G->c + g * G->cg) * G->hw;
                const void *xs = AT_OR_NULL(cx->x, xo, es);
                const void *dys = AT(cx->dy, (s * G->o + g * G->og) * G->howo, es);
                const void *wg = AT_OR_NULL(cx->w, g * kkw, es);
                for (size_t r0 = 0; r0 < G->ho; r0 += G->rows) {
                    size_t r1 = r0 + G->rows < G->ho ? r0 + G->rows : G->ho;
                    size_t nc = (r1 - r0) * G->wo;
                    const void *dyb = AT(dys, r0 * G->wo, es);
                    if (cx->dw) { /* dW_g += dY_b · colᵀ */
                        const void *b = xs;
                        size_t ldb = G->hw;
                        if (!G->direct) {
                            im2col(G, xs, r0, r1, col);
                            b = col, ldb = nc;
                        }
                        gemm(G, false, true, G->og, G->kk, nc, dyb, G->howo, b, ldb,
                             s > s0 || r0 > 0, AT(pw, g * kkw, es), G->kk);
                    }
                    if (cx->dx) { /* dcol = W_gᵀ · dY_b, added into dx */
                        if (G->direct) {
                            gemm(G, true, false, G->cg, nc, G->og, wg, G->kk, dyb, G->howo,
                                 cx->acc_x, AT(cx->dx, xo, es), G->hw);
                        } else {
                            gemm(G, true, false, G->kk, nc, G->og, wg, G->kk, dyb, G->howo,
                                 0, dcol, nc);
                            col2im(G, dcol, r0, r1, AT(cx->dx, xo, es));
                        }
                    }
                }
            }
        }
    }
}

/* d = (d if acc) + Σ_l partial_l (in lane order) for elements [i0, i1) of
 * a gradient whose partials start at element `off` of each lane. */
typedef struct red_ctx {
    const conv_ctx *cx;
    void *d;
    size_t off;
    int acc;
} red_ctx;

static void reduce_lanes(void *vctx, size_t i0, size_t i1)
{
    const red_ctx *rc = vctx;
    const geom *G = &rc->cx->G;
    for (size_t l = 0; l < G->lanes; l++) {
        bool first = l == 0 && !rc->acc;
        const char *p = AT(rc->cx->n->scratch, l * G->lane_elems + rc->off, G->es);
        if (G->es == sizeof(float)) {
            const float *src = (const float *)p;
            float *d = rc->d;
            for (size_t i = i0; i < i1; i++)
                d[i] = first ? src[i] : d[i] + src[i];
        } else {
            const double *src = (const double *)p;
            double *d = rc->d;
            for (size_t i = i0; i < i1; i++)
                d[i] = first ? src[i] : d[i] + src[i];
        }
    }
}

/* The lanes of bwd, then their partial dW and db added up. */
static void conv_bwd(conv_ctx *cx)
{
    size_t wsize = cx->G.o * cx->G.kk; /* w's elements */
    if (cx->dx || cx->dw || cx->db)
        tg_parallel_for(cx->G.lanes, 1, bwd_lanes, cx);
    if (cx->dw) {
        red_ctx rc = {cx, cx->dw, 2 * cx->G.colcap, cx->acc_w};
        tg_parallel_for(wsize, TG_ELEM_GRAIN, reduce_lanes, &rc);
    }
    if (cx->db) {
        red_ctx rc = {cx, cx->db, 2 * cx->G.colcap + wsize, cx->acc_b};
        reduce_lanes(&rc, 0, cx->G.o);
    }
}

/* A context for node n with x = input xi and w = input wi. */
static conv_ctx ctx_of(tg_node *n, int xi, int wi)
{
    conv_ctx cx = {.n = n};
    plan(IN(n, xi), IN(n, wi), CA(n), &cx.G);
    return cx;
}

static int forward(tg_node *n)
{
    conv_ctx cx = ctx_of(n, 0, 1);
    cx.x = IN(n, 0)->data, cx.w = IN(n, 1)->data, cx.y = OUT(n)->data;
    cx.b = n->n_in == 3 ? IN(n, 2)->data : NULL;
    conv_fwd(&cx);
    return TG_OK;
}

static void backward(tg_node *n)
{
    conv_ctx cx = ctx_of(n, 0, 1);
    tg_tensor *x = IN(n, 0), *w = IN(n, 1), *b = n->n_in == 3 ? IN(n, 2) : NULL;
    cx.x = x->data, cx.w = w->data, cx.dy = OUT(n)->grad;
    if (tg_wants_grad(x))
        cx.dx = tg_grad_acc(x, &cx.acc_x);
    if (tg_wants_grad(w))
        cx.dw = tg_grad_acc(w, &cx.acc_w); /* after x's: w may be x */
    if (b && tg_wants_grad(b))
        cx.db = tg_grad_acc(b, &cx.acc_b);
    conv_bwd(&cx);
}

/* Recorded: dx = conv2d_input_grad(dy, w, x), dw = conv2d_weight_grad(x,
 * dy, w), db = Σ dy over N, Ho, Wo. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    conv_attr at = *CA(n);
    tg_tensor *x = IN(n, 0), *w = IN(n, 1);
    if ((need & 1) &&
        !(gx[0] = tg_record(&tg_op_conv2d_input_grad, 3, (tg_tensor *[]){gy, w, x}, &at)))
        return TG_ERR;
    if ((need & 2) &&
        !(gx[1] = tg_record(&tg_op_conv2d_weight_grad, 3, (tg_tensor *[]){x, gy, w}, &at)))
        return TG_ERR;
    if (need & 4) {
        size_t s3[3] = {gy->shape[0], gy->shape[1], gy->shape[2] * gy->shape[3]};
        gx[2] = tg_sum_axis(tg_sum_axis(tg_reshape(gy, 3, s3), 2, false), 0, false);
        if (!gx[2])
            return TG_ERR;
    }
    return TG_OK;
}

const tg_op tg_op_conv2d = {.name = "conv2d", .grad_reads = 0x3, .attr_size = sizeof(conv_attr),
                            .setup = setup, .forward = forward, .backward = backward,
                            .attr_str = attr_str, .vjp = vjp};

static conv_attr attr_of(const tg_conv2d_opts *opts)
{
    conv_attr at = {{0, 0}, {0, 0}, {0, 0}, 0};
    if (opts) {
        for (int i = 0; i < 2; i++) {
            at.stride[i] = opts->stride[i];
            at.pad[i] = opts->padding[i];
            at.dil[i] = opts->dilation[i];
        }
        at.groups = opts->groups;
    }
    return at;
}

tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias, const tg_conv2d_opts *opts)
{
    conv_attr at = attr_of(opts);
    if (bias)
        return tg_record(&tg_op_conv2d, 3, (tg_tensor *[]){x, w, bias}, &at);
    return tg_record(&tg_op_conv2d, 2, (tg_tensor *[]){x, w}, &at);
}

/* ---- the two gradient ops --------------------------------------------------
 * conv2d_input_grad(g, w, x):  dx = the transposed convolution of g [N,O,Ho,Wo]
 *   by w, x's shape (x: its shape only), conv2d's gradient for x;
 * conv2d_weight_grad(x, g, w): dw = the correlation of x with g, w's shape
 *   (w: its shape only), conv2d's gradient for w.
 * With conv(x, w) = conv2d without bias, ⟨h, input_grad(g, w)⟩ =
 * ⟨conv(h, w), g⟩ = ⟨weight_grad(h, g), w⟩: each op's gradients are the
 * other two (and conv2d's are these), so all three are differentiable any
 * number of times.  They run conv2d's lanes (same scratch plan). */

/* Setup of both: x = input xi, w = input wi checked as by conv2d, g =
 * input gi of the output's shape; the output is shaped as input 2 (x for
 * input_grad, w for weight_grad: their shapes only). */
static int grad_setup(tg_node *n, int xi, int wi, int gi)
{
    geom G;
    if (check(n, xi, wi, &G) || tg_need_float(n, gi) || tg_need_same_dtype(n, gi, xi))
        return TG_ERR;
    const tg_tensor *g = IN(n, gi);
    if (g->rank != 4 || g->shape[0] != G.n || g->shape[1] != G.o || g->shape[2] != G.ho ||
        g->shape[3] != G.wo)
        return tg_fail(n, "gradient %s must be the output shape [%zu,%zu,%zu,%zu] of input %s "
                       "and weight %s", tg_shp_of(g).s, G.n, G.o, G.ho, G.wo,
                       tg_shp_of(IN(n, xi)).s, tg_shp_of(IN(n, wi)).s);
    tg_out_like(n, 2);
    return TG_OK;
}

static int igrad_setup(tg_node *n) { return grad_setup(n, 2, 1, 0); } /* (g, w, x) */

static int igrad_forward(tg_node *n)
{
    conv_ctx cx = ctx_of(n, 2, 1);
    cx.dy = IN(n, 0)->data, cx.w = IN(n, 1)->data, cx.dx = OUT(n)->data;
    conv_bwd(&cx);
    return TG_OK;
}

/* h = dout: dg (+)= conv(h, w), dw (+)= weight_grad(h, g) */
static void igrad_backward(tg_node *n)
{
    tg_tensor *g = IN(n, 0), *w = IN(n, 1);
    conv_ctx cx = ctx_of(n, 2, 1);
    const void *h = OUT(n)->grad;
    if (tg_wants_grad(g))
        cx.y = tg_grad_acc(g, &cx.acc_y);
    if (tg_wants_grad(w))
        cx.dw = tg_grad_acc(w, &cx.acc_w); /* after g's: w may be g */
    cx.x = h, cx.w = w->data, cx.dy = g->data;
    if (cx.y)
        conv_fwd(&cx);
    conv_bwd(&cx);
}

static int igrad_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    conv_attr at = *CA(n);
    tg_tensor *g = IN(n, 0), *w = IN(n, 1);
    if ((need & 1) && !(gx[0] = tg_record(&tg_op_conv2d, 2, (tg_tensor *[]){gy, w}, &at)))
        return TG_ERR;
    if ((need & 2) &&
        !(gx[1] = tg_record(&tg_op_conv2d_weight_grad, 3, (tg_tensor *[]){gy, g, w}, &at)))
        return TG_ERR;
    return TG_OK;
}

static int wgrad_setup(tg_node *n) { return grad_setup(n, 0, 2, 1); } /* (x, g, w) */

static int wgrad_forward(tg_node *n)
{
    conv_ctx cx = ctx_of(n, 0, 2);
    cx.x = IN(n, 0)->data, cx.dy = IN(n, 1)->data, cx.dw = OUT(n)->data;
    conv_bwd(&cx);
    return TG_OK;
}

/* k = dout: dx (+)= input_grad(g, k), dg (+)= conv(x, k) */
static void wgrad_backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *g = IN(n, 1);
    conv_ctx cx = ctx_of(n, 0, 2);
    if (tg_wants_grad(x))
        cx.dx = tg_grad_acc(x, &cx.acc_x);
    if (tg_wants_grad(g))
        cx.y = tg_grad_acc(g, &cx.acc_y); /* after x's: g may be x */
    cx.x = x->data, cx.w = OUT(n)->grad, cx.dy = g->data;
    conv_bwd(&cx);
    if (cx.y)
        conv_fwd(&cx);
}

static int wgrad_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    conv_attr at = *CA(n);
    tg_tensor *x = IN(n, 0), *g = IN(n, 1);
    if ((need & 1) &&
        !(gx[0] = tg_record(&tg_op_conv2d_input_grad, 3, (tg_tensor *[]){g, gy, x}, &at)))
        return TG_ERR;
    if ((need & 2) && !(gx[1] = tg_record(&tg_op_conv2d, 2, (tg_tensor *[]){x, gy}, &at)))
        return TG_ERR;
    return TG_OK;
}

const tg_op tg_op_conv2d_input_grad = {.name = "conv2d_input_grad", .grad_reads = 0x3,
                                       .attr_size = sizeof(conv_attr), .setup = igrad_setup,
                                       .forward = igrad_forward, .backward = igrad_backward,
                                       .attr_str = attr_str, .vjp = igrad_vjp};
const tg_op tg_op_conv2d_weight_grad = {.name = "conv2d_weight_grad", .grad_reads = 0x3,
                                        .attr_size = sizeof(conv_attr), .setup = wgrad_setup,
                                        .forward = wgrad_forward, .backward = wgrad_backward,
                                        .attr_str = attr_str, .vjp = wgrad_vjp};

tg_tensor *tg_conv2d_input_grad(tg_tensor *g, tg_tensor *w, tg_tensor *x,
                                const tg_conv2d_opts *opts)
{
    conv_attr at = attr_of(opts);
    return tg_record(&tg_op_conv2d_input_grad, 3, (tg_tensor *[]){g, w, x}, &at);
}

tg_tensor *tg_conv2d_weight_grad(tg_tensor *x, tg_tensor *g, tg_tensor *w,
                                 const tg_conv2d_opts *opts)
{
    conv_attr at = attr_of(opts);
    return tg_record(&tg_op_conv2d_weight_grad, 3, (tg_tensor *[]){x, g, w}, &at);
}

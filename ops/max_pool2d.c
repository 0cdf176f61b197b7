/* max_pool2d: x [N,C,H,W] → y [N,C,Ho,Wo] (geometry in pool.h)
 *   y[o] = max of x over window o (padding is −∞: never the maximum)
 *   dx[argmax(o)] += dy[o]      (overlapping windows add up)
 * Ties: the argmax is the FIRST maximum in row-major order within the window
 * (a constant input sends each window's gradient to its top-left element).
 * NaN: a NaN in a window is its maximum (as PyTorch): y is NaN and the
 * gradient goes to the first NaN of the window.
 * Forward stores each output's argmax (its index in the plane, int32) in
 * scratch, so backward never reads x (grad_reads 0): the gradient is that of
 * the values forward saw.  Backward writes each plane of dx once (zeroed
 * first when acc is 0), planes split over the pool: the order of the sums
 * is the same for any thread count.  Kernel 2, stride 2, no padding (the
 * CNN case) has its own loops. */
#include "pool.h"

#include <limits.h>

void tg_pool_attr_str(const tg_node *n, char *buf, size_t len, bool show_cip)
{
    const pool_attr *a = PA(n);
    snprintf(buf, len, "kernel=%dx%d stride=%dx%d pad=%dx%d%s", a->kernel[0], a->kernel[1],
             a->stride[0], a->stride[1], a->padding[0], a->padding[1],
             show_cip && a->count_include_pad ? " count_include_pad" : "");
}

int tg_pool_setup(tg_node *n)
{
    pool_attr *a = PA(n);
    if (a->no_opts)
        return tg_fail(n, "opts is NULL (the kernel size has no default)");
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    if (x->rank != 4)
        return tg_fail(n, "input must be 4-D [N,C,H,W], got %s", tg_shp_of(x).s);
    const int *k = a->kernel, *s = a->stride, *p = a->padding;
    if (k[0] < 1 || k[1] < 1)
        return tg_fail(n, "kernel %dx%d must be >= 1", k[0], k[1]);
    if (s[0] < 0 || s[1] < 0)
        return tg_fail(n, "stride %dx%d must be >= 0 (0: the kernel size)", s[0], s[1]);
    if (p[0] < 0 || p[1] < 0 || p[0] > k[0] / 2 || p[1] > k[1] / 2)
        return tg_fail(n, "padding %dx%d must be between 0 and half the kernel %dx%d", p[0],
                       p[1], k[0], k[1]);
    for (int i = 0; i < 2; i++) {
        size_t len = x->shape[2 + i], padded = len + 2 * (size_t)p[i];
        if (padded < (size_t)k[i])
            return tg_fail(n, "kernel %dx%d is larger than the input %s padded by %dx%d", k[0],
                           k[1], tg_shp_of(x).s, p[0], p[1]);
        if (s[i] == 0)
            a->stride[i] = k[i];
        y->shape[2 + i] = (padded - (size_t)k[i]) / (size_t)a->stride[i] + 1;
    }
    y->dtype = x->dtype;
    y->rank = 4;
    y->shape[0] = x->shape[0];
    y->shape[1] = x->shape[1];
    return TG_OK;
}

static int setup(tg_node *n)
{
    if (tg_pool_setup(n))
        return TG_ERR;
    const tg_tensor *x = IN(n, 0);
    if (x->shape[2] > INT32_MAX / x->shape[3])
        return tg_fail(n, "a plane of %zux%zu has more than 2^31 - 1 elements (input %s)",
                       x->shape[2], x->shape[3], tg_shp_of(x).s);
    size_t outs; /* output elements (y->size is set after setup) */
    if (tg_shape_size(4, OUT(n)->shape, &outs) || outs > SIZE_MAX / sizeof(int32_t))
        return tg_fail(n, "output shape overflows");
    n->scratch_bytes = outs * sizeof(int32_t);
    return TG_OK;
}

/* take v over the running maximum m: v > m, or v NaN while m is not */
#define TAKES(v, m) (((m) == (m)) & !((v) <= (m)))

/* One window of kernel 2, stride 2 (fwd2 below): its four values a, b, c, d
 * in row-major order, i and m the first maximum by >, j the first NaN or i. */
#define WINDOW2(T)                                                             \
    T a = r0[2 * ow], b = r0[2 * ow + 1];                                      \
    T c = r1[2 * ow], d = r1[2 * ow + 1];                                      \
    int32_t at = base + 2 * (int32_t)ow, i = at;                               \
    T m = a;                                                                   \
    i = b > m ? at + 1 : i;                                                    \
    m = b > m ? b : m;                                                         \
    i = c > m ? at + w : i;                                                    \
    m = c > m ? c : m;                                                         \
    i = d > m ? at + w + 1 : i;                                                \
    m = d > m ? d : m;                                                         \
    int32_t j = d != d ? at + w + 1 : i;                                       \
    j = c != c ? at + w : j;                                                   \
    j = b != b ? at + 1 : j;                                                   \
    j = a != a ? at : j

#define KERNELS(T, S)                                                          \
    static void fwd_##S(const pool_geom *g, const T *x, T *y, int32_t *arg)    \
    {                                                                          \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            size_t h0, h1;                                                     \
            tg_pool_span(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);             \
            for (size_t ow = 0; ow < g->Wo; ow++) {                            \
                size_t w0, w1;                                                 \
                tg_pool_span(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);         \
                size_t best = h0 * g->W + w0;                                  \
                T m = x[best];                                                 \
                for (size_t h = h0; h < h1; h++)                               \
                    for (size_t w = w0; w < w1; w++) {                         \
                        T v = x[h * g->W + w];                                 \
                        if (TAKES(v, m))                                       \
                            m = v, best = h * g->W + w;                        \
                    }                                                          \
                y[oh * g->Wo + ow] = m;                                        \
                arg[oh * g->Wo + ow] = (int32_t)best;                          \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    /* kernel 2, stride 2, no padding, as selects that vectorise (a NaN     \
     * window gives s, NaN, or m when m is that NaN).  The last Wo % 8        \
     * windows of a row go through the same loop on a copy padded to 8 (a    \
     * scalar loop there would branch, and mispredict on random data). */    \
    static void row2_##S(size_t n, const T *restrict r0, const T *restrict r1, \
                         int32_t base, int32_t w, T *restrict yr,              \
                         int32_t *restrict ar)                                 \
    {                                                                          \
        for (size_t ow = 0; ow < n; ow++) {                                    \
            WINDOW2(T);                                                        \
            T s = a + b + c + d;                                               \
            yr[ow] = j != i ? s : m;                                           \
            ar[ow] = j;                                                        \
        }                                                                      \
    }                                                                          \
    static void fwd2_##S(const pool_geom *g, const T *x, T *y, int32_t *arg)   \
    {                                                                          \
        size_t W = g->W, Wo = g->Wo, Wv = Wo & ~(size_t)7, rest = Wo - Wv;     \
        int32_t w = (int32_t)W;                                                \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            const T *r0 = x + 2 * oh * W, *r1 = r0 + W;                        \
            int32_t base = (int32_t)(2 * oh * W);                              \
            row2_##S(Wv, r0, r1, base, w, y + oh * Wo, arg + oh * Wo);         \
            if (rest) {                                                        \
                T t0[16] = {0}, t1[16] = {0}, ty[8];                           \
                int32_t ta[8];                                                 \
                memcpy(t0, r0 + 2 * Wv, 2 * rest * sizeof(T));                 \
                memcpy(t1, r1 + 2 * Wv, 2 * rest * sizeof(T));                 \
                row2_##S(8, t0, t1, base + 2 * (int32_t)Wv, w, ty, ta);        \
                memcpy(y + oh * Wo + Wv, ty, rest * sizeof(T));                \
                memcpy(arg + oh * Wo + Wv, ta, rest * sizeof(int32_t));        \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(const pool_geom *g, const T *dy, const int32_t *arg,   \
                        T *dx, int acc)                                        \
    {                                                                          \
        if (!acc)                                                              \
            memset(dx, 0, g->H * g->W * sizeof(T));                            \
        for (size_t o = 0; o < g->Ho * g->Wo; o++)                             \
            dx[arg[o]] += dy[o];                                               \
    }                                                                          \
    /* kernel 2, stride 2, no padding, overwriting: each element written once \
     * (the argmax relative to the window's top-left: 0, 1, W or W + 1) */    \
    static void bwd2_##S(const pool_geom *g, const T *dy, const int32_t *arg,  \
                         T *dx)                                                \
    {                                                                          \
        size_t W = g->W, Wo = g->Wo;                                           \
        int32_t w = (int32_t)W;                                                \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            T *restrict r0 = dx + 2 * oh * W, *restrict r1 = r0 + W;           \
            const T *restrict gr = dy + oh * Wo;                               \
            const int32_t *restrict ar = arg + oh * Wo;                        \
            int32_t base = (int32_t)(2 * oh * W);                              \
            for (size_t ow = 0; ow < Wo; ow++) {                               \
                int32_t at = ar[ow] - base - 2 * (int32_t)ow;                  \
                T v = gr[ow];                                                  \
                r0[2 * ow] = at == 0 ? v : 0;                                  \
                r0[2 * ow + 1] = at == 1 ? v : 0;                              \
                r1[2 * ow] = at == w ? v : 0;                                  \
                r1[2 * ow + 1] = at == w + 1 ? v : 0;                          \
            }                                                                  \
            if (W & 1)                                                         \
                r0[W - 1] = r1[W - 1] = 0;                                     \
        }                                                                      \
        if (g->H & 1)                                                          \
            memset(dx + (g->H - 1) * W, 0, W * sizeof(T));                     \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static bool is_k2s2(const pool_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0;
}

static void fwd_range(void *ctx, size_t b, size_t e)
{
    tg_node *n = ((tg_elem_ctx *)ctx)->n;
    pool_geom g = tg_pool_geom_of(n);
    size_t in = g.H * g.W, out = g.Ho * g.Wo;
    int32_t *arg = n->scratch;
    bool k2 = is_k2s2(&g);
    for (size_t p = b; p < e; p++) {
        if (OUT(n)->dtype == TG_F32) {
            const float *x = (const float *)IN(n, 0)->data + p * in;
            float *y = (float *)OUT(n)->data + p * out;
            (k2 ? fwd2_f32 : fwd_f32)(&g, x, y, arg + p * out);
        } else {
            const double *x = (const double *)IN(n, 0)->data + p * in;
            double *y = (double *)OUT(n)->data + p * out;
            (k2 ? fwd2_f64 : fwd_f64)(&g, x, y, arg + p * out);
        }
    }
}

static int forward(tg_node *n)
{
    pool_geom g = tg_pool_geom_of(n);
    tg_elem_ctx c = {n, NULL, 0};
    tg_parallel_for(g.planes, tg_pool_grain(&g), fwd_range, &c);
    return TG_OK;
}

static void bwd_range(void *ctx, size_t b, size_t e)
{
    tg_elem_ctx *c = ctx;
    tg_node *n = c->n;
    pool_geom g = tg_pool_geom_of(n);
    size_t in = g.H * g.W, out = g.Ho * g.Wo;
    const int32_t *arg = n->scratch;
    bool k2 = is_k2s2(&g) && !c->acc;
    for (size_t p = b; p < e; p++) {
        if (OUT(n)->dtype == TG_F32) {
            const float *dy = (const float *)OUT(n)->grad + p * out;
            float *dx = (float *)c->dx + p * in;
            if (k2)
                bwd2_f32(&g, dy, arg + p * out, dx);
            else
                bwd_f32(&g, dy, arg + p * out, dx, c->acc);
        } else {
            const double *dy = (const double *)OUT(n)->grad + p * out;
            double *dx = (double *)c->dx + p * in;
            if (k2)
                bwd2_f64(&g, dy, arg + p * out, dx);
            else
                bwd_f64(&g, dy, arg + p * out, dx, c->acc);
        }
    }
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    pool_geom g = tg_pool_geom_of(n);
    tg_elem_ctx c = {n, NULL, 0};
    c.dx = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(g.planes, tg_pool_grain(&g), bwd_range, &c);
}

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    tg_pool_attr_str(n, buf, len, false);
}

const tg_op tg_op_max_pool2d = {.name = "max_pool2d", .grad_reads = 0,
                                .attr_size = sizeof(pool_attr), .setup = setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str};

tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_max_pool2d, 1, &x, &at);
}

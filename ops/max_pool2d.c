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
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    if (tg_pool_check(n, 0, y->shape + 2))
        return TG_ERR;
    y->dtype = x->dtype;
    y->rank = 4;
    y->shape[0] = x->shape[0];
    y->shape[1] = x->shape[1];
    return TG_OK;
}

int tg_pool_adj_setup(tg_node *n, bool gather)
{
    size_t p[4];
    if (tg_need_float(n, 0) || tg_pool_check(n, 1, p + 2) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    tg_tensor *t = IN(n, 0), *x = IN(n, 1);
    p[0] = x->shape[0], p[1] = x->shape[1];
    const size_t *want = gather ? x->shape : p;
    if (t->rank != 4 || memcmp(t->shape, want, sizeof p))
        return tg_fail(n, "%s must be %s [%zu,%zu,%zu,%zu] for input %s, got %s",
                       gather ? "t" : "g", gather ? "shaped as x" : "x pooled", want[0],
                       want[1], want[2], want[3], tg_shp_of(x).s, tg_shp_of(t).s);
    if (gather) {
        tg_tensor *y = OUT(n);
        y->dtype = x->dtype;
        y->rank = 4;
        memcpy(y->shape, p, sizeof p);
    } else {
        tg_out_like(n, 1);
    }
    return TG_OK;
}

int tg_pool_check(tg_node *n, int xi, size_t *ho_wo)
{
    pool_attr *a = PA(n);
    if (a->no_opts)
        return tg_fail(n, "opts is NULL (the kernel size has no default)");
    if (tg_need_float(n, xi))
        return TG_ERR;
    tg_tensor *x = IN(n, xi);
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
        ho_wo[i] = (padded - (size_t)k[i]) / (size_t)a->stride[i] + 1;
    }
    return TG_OK;
}

/* Scratch: `yb` bytes of maxima (the scatter op's, which has no output of
 * the pooled shape), then the argmax of each output, int32. */
static int scratch(tg_node *n, int xi, const size_t *pooled, bool yb)
{
    const tg_tensor *x = IN(n, xi);
    if (x->shape[2] > INT32_MAX / x->shape[3])
        return tg_fail(n, "a plane of %zux%zu has more than 2^31 - 1 elements (input %s)",
                       x->shape[2], x->shape[3], tg_shp_of(x).s);
    size_t outs, per = sizeof(int32_t) + (yb ? tg_dtype_size((tg_dtype)x->dtype) : 0);
    if (tg_shape_size(4, pooled, &outs) || outs > SIZE_MAX / per)
        return tg_fail(n, "output shape overflows");
    n->scratch_bytes = outs * per;
    return TG_OK;
}

static int setup(tg_node *n)
{
    return tg_pool_setup(n) ? TG_ERR : scratch(n, 0, OUT(n)->shape, false);
}

static int scatter_setup(tg_node *n)
{
    return tg_pool_adj_setup(n, false) ? TG_ERR : scratch(n, 1, IN(n, 0)->shape, true);
}

static int gather_setup(tg_node *n)
{
    return tg_pool_adj_setup(n, true) ? TG_ERR : scratch(n, 1, OUT(n)->shape, false);
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
    static void take_##S(const pool_geom *g, const T *t, const int32_t *arg,   \
                         T *out, int acc)                                      \
    {                                                                          \
        for (size_t o = 0; o < g->Ho * g->Wo; o++)                             \
            out[o] = acc ? out[o] + t[arg[o]] : t[arg[o]];                     \
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

/* What a range of planes does, in this order (each a bit of `what`):
 * FIND the maxima of x into y and their positions into arg; SCATTER
 * dst (+)= src sent to those positions (src pooled-shaped, dst x-shaped);
 * TAKE dst (+)= src at those positions (src x-shaped, dst pooled-shaped). */
enum { FIND = 1, SCATTER = 2, TAKE = 4 };
typedef struct mp_ctx {
    pool_geom g;
    bool f32;
    int what, acc;
    const void *x, *src;
    void *y, *dst;
    int32_t *arg;
} mp_ctx;

#define PLANES(T, S)                                                           \
    static void planes_##S(const mp_ctx *c, size_t b, size_t e)               \
    {                                                                          \
        const pool_geom *g = &c->g;                                            \
        size_t in = g->H * g->W, out = g->Ho * g->Wo;                          \
        bool k2 = is_k2s2(g);                                                  \
        for (size_t p = b; p < e; p++) {                                       \
            int32_t *arg = c->arg + p * out;                                   \
            if (c->what & FIND)                                                \
                (k2 ? fwd2_##S : fwd_##S)(g, (const T *)c->x + p * in,         \
                                          (T *)c->y + p * out, arg);           \
            if ((c->what & SCATTER) && k2 && !c->acc)                          \
                bwd2_##S(g, (const T *)c->src + p * out, arg, (T *)c->dst + p * in); \
            else if (c->what & SCATTER)                                        \
                bwd_##S(g, (const T *)c->src + p * out, arg, (T *)c->dst + p * in, c->acc); \
            if (c->what & TAKE)                                                \
                take_##S(g, (const T *)c->src + p * in, arg, (T *)c->dst + p * out, c->acc); \
        }                                                                      \
    }
PLANES(float, f32)
PLANES(double, f64)

static void range(void *ctx, size_t b, size_t e)
{
    const mp_ctx *c = ctx;
    if (c->f32)
        planes_f32(c, b, e);
    else
        planes_f64(c, b, e);
}

static void run(mp_ctx *c, const tg_node *n)
{
    c->f32 = OUT(n)->dtype == TG_F32;
    tg_parallel_for(c->g.planes, tg_pool_grain(&c->g), range, c);
}

static int forward(tg_node *n)
{
    mp_ctx c = {.g = tg_pool_geom_of(n), .what = FIND, .x = IN(n, 0)->data,
                .y = OUT(n)->data, .arg = n->scratch};
    run(&c, n);
    return TG_OK;
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    mp_ctx c = {.g = tg_pool_geom_of(n), .what = SCATTER, .src = OUT(n)->grad,
                .arg = n->scratch};
    c.dst = tg_grad_acc(IN(n, 0), &c.acc);
    run(&c, n);
}

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    tg_pool_attr_str(n, buf, len, false);
}

/* Recorded: dx = max_pool2d_scatter(dy, x) (the maxima found again in x at
 * each replay, with the same rule). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    pool_attr at = *PA(n);
    gx[0] = tg_record(&tg_op_max_pool2d_scatter, 2, (tg_tensor *[]){gy, IN(n, 0)}, &at);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_max_pool2d = {.name = "max_pool2d", .grad_reads = 0,
                                .attr_size = sizeof(pool_attr), .setup = setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_max_pool2d, 1, &x, &at);
}

/* max_pool2d_scatter(g, x): dx = g sent to the maxima of x's windows (added
 * where windows overlap): max_pool2d's gradient, as an op.  Forward finds
 * the maxima (kept in scratch with the maxima's values), backward gathers:
 * dg (+)= dout at those positions (max_pool2d_gather); neither reads x
 * (grad_reads 0), whose own gradient is zero (the positions move only by
 * jumps).  max_pool2d_gather(t, x): y[o] = t at the maximum of window o:
 * the directional derivative of max_pool2d (its JVP), the scatter's adjoint,
 * and the other way round. */
static int scatter_forward(tg_node *n)
{
    pool_geom g = tg_pool_adj_geom(n, false);
    size_t out = g.planes * g.Ho * g.Wo;
    mp_ctx c = {.g = g, .what = FIND | SCATTER, .x = IN(n, 1)->data, .y = n->scratch,
                .src = IN(n, 0)->data, .dst = OUT(n)->data,
                .arg = (int32_t *)(void *)((char *)n->scratch +
                                           out * tg_dtype_size((tg_dtype)OUT(n)->dtype))};
    run(&c, n);
    return TG_OK;
}

static void scatter_backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    pool_geom g = tg_pool_adj_geom(n, false);
    size_t out = g.planes * g.Ho * g.Wo;
    mp_ctx c = {.g = g, .what = TAKE, .src = OUT(n)->grad,
                .arg = (int32_t *)(void *)((char *)n->scratch +
                                           out * tg_dtype_size((tg_dtype)OUT(n)->dtype))};
    c.dst = tg_grad_acc(IN(n, 0), &c.acc);
    run(&c, n);
}

static int gather_forward(tg_node *n)
{
    mp_ctx c = {.g = tg_pool_adj_geom(n, true), .what = FIND | TAKE, .x = IN(n, 1)->data,
                .y = OUT(n)->data, .src = IN(n, 0)->data, .dst = OUT(n)->data,
                .arg = n->scratch};
    run(&c, n);
    return TG_OK;
}

static void gather_backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    mp_ctx c = {.g = tg_pool_adj_geom(n, true), .what = SCATTER, .src = OUT(n)->grad,
                .arg = n->scratch};
    c.dst = tg_grad_acc(IN(n, 0), &c.acc);
    run(&c, n);
}

/* Recorded: each is the other's adjoint in its first input; x: zero. */
static int scatter_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    pool_attr at = *PA(n);
    if (need & 1)
        gx[0] = tg_record(&tg_op_max_pool2d_gather, 2, (tg_tensor *[]){gy, IN(n, 1)}, &at);
    return (need & 1) && !gx[0] ? TG_ERR : TG_OK;
}

static int gather_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    pool_attr at = *PA(n);
    if (need & 1)
        gx[0] = tg_record(&tg_op_max_pool2d_scatter, 2, (tg_tensor *[]){gy, IN(n, 1)}, &at);
    return (need & 1) && !gx[0] ? TG_ERR : TG_OK;
}

const tg_op tg_op_max_pool2d_scatter = {.name = "max_pool2d_scatter", .grad_reads = 0,
                                        .attr_size = sizeof(pool_attr),
                                        .setup = scatter_setup, .forward = scatter_forward,
                                        .backward = scatter_backward, .attr_str = attr_str,
                                        .vjp = scatter_vjp};
const tg_op tg_op_max_pool2d_gather = {.name = "max_pool2d_gather", .grad_reads = 0,
                                       .attr_size = sizeof(pool_attr), .setup = gather_setup,
                                       .forward = gather_forward, .backward = gather_backward,
                                       .attr_str = attr_str, .vjp = gather_vjp};

tg_tensor *tg_max_pool2d_scatter(tg_tensor *g, tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_max_pool2d_scatter, 2, (tg_tensor *[]){g, x}, &at);
}

tg_tensor *tg_max_pool2d_gather(tg_tensor *t, tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_max_pool2d_gather, 2, (tg_tensor *[]){t, x}, &at);
}

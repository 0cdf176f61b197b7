/* avg_pool2d: x [N,C,H,W] → y [N,C,Ho,Wo] (geometry in pool.h)
 *   y[o] = (Σ of x over window o) / d(o)      dx[i] += dy[o] / d(o), i in o
 * d(o) is kh·kw with count_include_pad (the padded zeros count; windows
 * never reach past the padding, there is no ceil mode), else the number of
 * the window's elements inside the input.  Overlapping windows add up.
 * Backward reads neither x nor y (grad_reads 0) and writes each plane of dx
 * once (zeroed first when acc is 0), planes split over the pool: the order
 * of the sums is the same for any thread count.  Kernel 2, stride 2, no
 * padding (the CNN case) has its own loops. */
#include "pool.h"

#define KERNELS(T, S)                                                          \
    static T divisor_##S(const pool_geom *g, bool cip, size_t h0, size_t h1,   \
                         size_t w0, size_t w1)                                 \
    {                                                                          \
        return cip ? (T)g->kh * (T)g->kw : (T)(h1 - h0) * (T)(w1 - w0);        \
    }                                                                          \
    static void fwd_##S(const pool_geom *g, bool cip, const T *x, T *y, int acc) \
    {                                                                          \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            size_t h0, h1;                                                     \
            tg_pool_span(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);             \
            for (size_t ow = 0; ow < g->Wo; ow++) {                            \
                size_t w0, w1;                                                 \
                tg_pool_span(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);         \
                T s = 0;                                                       \
                for (size_t h = h0; h < h1; h++)                               \
                    for (size_t w = w0; w < w1; w++)                           \
                        s += x[h * g->W + w];                                  \
                T v = s / divisor_##S(g, cip, h0, h1, w0, w1);                 \
                y[oh * g->Wo + ow] = acc ? y[oh * g->Wo + ow] + v : v;         \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    /* kernel 2, stride 2, no padding: (a + b + c + d) / 4 */                  \
    static void fwd2_##S(const pool_geom *g, const T *x, T *y)                 \
    {                                                                          \
        size_t W = g->W;                                                       \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            const T *r0 = x + 2 * oh * W, *r1 = r0 + W;                        \
            T *yr = y + oh * g->Wo;                                            \
            for (size_t ow = 0; ow < g->Wo; ow++)                              \
                yr[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] +           \
                          r1[2 * ow + 1]) / 4;                                 \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(const pool_geom *g, bool cip, const T *dy, T *dx,      \
                        int acc)                                               \
    {                                                                          \
        if (!acc)                                                              \
            memset(dx, 0, g->H * g->W * sizeof(T));                            \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            size_t h0, h1;                                                     \
            tg_pool_span(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);             \
            for (size_t ow = 0; ow < g->Wo; ow++) {                            \
                size_t w0, w1;                                                 \
                tg_pool_span(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);         \
                T v = dy[oh * g->Wo + ow] / divisor_##S(g, cip, h0, h1, w0, w1); \
                for (size_t h = h0; h < h1; h++)                               \
                    for (size_t w = w0; w < w1; w++)                           \
                        dx[h * g->W + w] += v;                                 \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    /* kernel 2, stride 2, no padding, overwriting: each element written once */ \
    static void bwd2_##S(const pool_geom *g, const T *dy, T *dx)               \
    {                                                                          \
        size_t W = g->W;                                                       \
        for (size_t oh = 0; oh < g->Ho; oh++) {                                \
            T *r0 = dx + 2 * oh * W, *r1 = r0 + W;                             \
            const T *gr = dy + oh * g->Wo;                                     \
            for (size_t ow = 0; ow < g->Wo; ow++) {                            \
                T v = gr[ow] / 4;                                              \
                r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = v; \
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

/* A range of planes: dst (+)= the pooling of src (pool: src x-shaped, dst
 * pooled-shaped), or of its adjoint (src pooled-shaped, dst x-shaped). */
typedef struct ap_ctx {
    pool_geom g;
    bool pool, cip, f32;
    const void *src;
    void *dst;
    int acc;
} ap_ctx;

#define PLANES(T, S)                                                           \
    static void planes_##S(const ap_ctx *c, size_t b, size_t e)               \
    {                                                                          \
        const pool_geom *g = &c->g;                                            \
        size_t in = g->H * g->W, out = g->Ho * g->Wo;                          \
        bool k2 = is_k2s2(g) && !c->acc;                                       \
        for (size_t p = b; p < e; p++) {                                       \
            if (c->pool && k2)                                                 \
                fwd2_##S(g, (const T *)c->src + p * in, (T *)c->dst + p * out); \
            else if (c->pool)                                                  \
                fwd_##S(g, c->cip, (const T *)c->src + p * in, (T *)c->dst + p * out, c->acc); \
            else if (k2)                                                       \
                bwd2_##S(g, (const T *)c->src + p * out, (T *)c->dst + p * in); \
            else                                                               \
                bwd_##S(g, c->cip, (const T *)c->src + p * out, (T *)c->dst + p * in, c->acc); \
        }                                                                      \
    }
PLANES(float, f32)
PLANES(double, f64)

static void range(void *ctx, size_t b, size_t e)
{
    const ap_ctx *c = ctx;
    if (c->f32)
        planes_f32(c, b, e);
    else
        planes_f64(c, b, e);
}

/* dst (+)= the pooling (or its adjoint) of src, planes over the pool */
static void run(const tg_node *n, pool_geom g, bool pool, const void *src, void *dst, int acc)
{
    ap_ctx c = {g, pool, PA((tg_node *)n)->count_include_pad, OUT(n)->dtype == TG_F32, src,
                dst, acc};
    tg_parallel_for(g.planes, tg_pool_grain(&g), range, &c);
}

static int forward(tg_node *n)
{
    run(n, tg_pool_geom_of(n), true, IN(n, 0)->data, OUT(n)->data, 0);
    return TG_OK;
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    run(n, tg_pool_geom_of(n), false, OUT(n)->grad, dx, acc);
}

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    tg_pool_attr_str(n, buf, len, true);
}

/* Recorded: dx = avg_pool2d_scatter(dy, x), the adjoint (linear in dy). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    pool_attr at = *PA(n);
    gx[0] = tg_record(&tg_op_avg_pool2d_scatter, 2, (tg_tensor *[]){gy, IN(n, 0)}, &at);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_avg_pool2d = {.name = "avg_pool2d", .grad_reads = 0,
                                .attr_size = sizeof(pool_attr), .setup = tg_pool_setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_avg_pool2d, 1, &x, &at);
}

/* avg_pool2d_scatter(g, x): avg_pool2d's adjoint (its gradient, as an op),
 *   dx[i] = Σ_{o ∋ i} g[o] / d(o)   (x: its shape only, never its values),
 * whose own gradient is avg_pool2d again: dg (+)= avg_pool2d(dout). */
static int scatter_setup(tg_node *n) { return tg_pool_adj_setup(n, false); }

static int scatter_forward(tg_node *n)
{
    run(n, tg_pool_adj_geom(n, false), false, IN(n, 0)->data, OUT(n)->data, 0);
    return TG_OK;
}

static void scatter_backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    int acc;
    void *dg = tg_grad_acc(IN(n, 0), &acc);
    run(n, tg_pool_adj_geom(n, false), true, OUT(n)->grad, dg, acc);
}

/* Recorded: dg = avg_pool2d(dy); x: zero. */
static int scatter_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    pool_attr at = *PA(n);
    if (need & 1)
        gx[0] = tg_record(&tg_op_avg_pool2d, 1, &gy, &at);
    return (need & 1) && !gx[0] ? TG_ERR : TG_OK;
}

const tg_op tg_op_avg_pool2d_scatter = {.name = "avg_pool2d_scatter", .grad_reads = 0,
                                        .attr_size = sizeof(pool_attr),
                                        .setup = scatter_setup, .forward = scatter_forward,
                                        .backward = scatter_backward, .attr_str = attr_str,
                                        .vjp = scatter_vjp};

tg_tensor *tg_avg_pool2d_scatter(tg_tensor *g, tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_avg_pool2d_scatter, 2, (tg_tensor *[]){g, x}, &at);
}

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
    static void fwd_##S(const pool_geom *g, bool cip, const T *x, T *y)        \
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
                y[oh * g->Wo + ow] = s / divisor_##S(g, cip, h0, h1, w0, w1);  \
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

static void fwd_range(void *ctx, size_t b, size_t e)
{
    tg_node *n = ((tg_elem_ctx *)ctx)->n;
    pool_geom g = tg_pool_geom_of(n);
    size_t in = g.H * g.W, out = g.Ho * g.Wo;
    bool k2 = is_k2s2(&g), cip = PA(n)->count_include_pad;
    for (size_t p = b; p < e; p++) {
        if (OUT(n)->dtype == TG_F32) {
            const float *x = (const float *)IN(n, 0)->data + p * in;
            float *y = (float *)OUT(n)->data + p * out;
            if (k2)
                fwd2_f32(&g, x, y);
            else
                fwd_f32(&g, cip, x, y);
        } else {
            const double *x = (const double *)IN(n, 0)->data + p * in;
            double *y = (double *)OUT(n)->data + p * out;
            if (k2)
                fwd2_f64(&g, x, y);
            else
                fwd_f64(&g, cip, x, y);
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
    bool k2 = is_k2s2(&g) && !c->acc, cip = PA(n)->count_include_pad;
    for (size_t p = b; p < e; p++) {
        if (OUT(n)->dtype == TG_F32) {
            const float *dy = (const float *)OUT(n)->grad + p * out;
            float *dx = (float *)c->dx + p * in;
            if (k2)
                bwd2_f32(&g, dy, dx);
            else
                bwd_f32(&g, cip, dy, dx, c->acc);
        } else {
            const double *dy = (const double *)OUT(n)->grad + p * out;
            double *dx = (double *)c->dx + p * in;
            if (k2)
                bwd2_f64(&g, dy, dx);
            else
                bwd_f64(&g, cip, dy, dx, c->acc);
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
    tg_pool_attr_str(n, buf, len, true);
}

const tg_op tg_op_avg_pool2d = {.name = "avg_pool2d", .grad_reads = 0,
                                .attr_size = sizeof(pool_attr), .setup = tg_pool_setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str};

tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_opts *opts)
{
    pool_attr at = tg_pool_attr_of(opts);
    return tg_record(&tg_op_avg_pool2d, 1, &x, &at);
}

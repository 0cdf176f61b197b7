/* clamp(x, lo, hi), lo <= hi (either may be infinite, neither NaN):
 *   y = lo where x < lo, hi where x > hi, else x (NaN stays NaN);
 *   dx = dy where lo <= x <= hi (the bounds included, as PyTorch), else 0
 *   (0 where x is NaN). */
#include "op.h"

#include <math.h>

typedef struct clamp_attr {
    double lo, hi;
} clamp_attr;
TG_ATTR_FITS(clamp_attr);
#define CA(n) ATTR(n, clamp_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "lo=%g hi=%g", CA(n)->lo, CA(n)->hi);
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    double lo = CA(n)->lo, hi = CA(n)->hi;
    if (isnan(lo) || isnan(hi) || lo > hi)
        return tg_fail(n, "bounds lo %g, hi %g are not lo <= hi (input %s)", lo, hi,
                       tg_shp_of(IN(n, 0)).s);
    tg_out_like(n, 0);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t b, size_t e, const T *x, T *y, T lo, T hi)      \
    {                                                                          \
        for (size_t i = b; i < e; i++)                                         \
            y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];                     \
    }                                                                          \
    static void bwd_##S(size_t b, size_t e, const T *x, const T *g, T *dx,     \
                        int acc, T lo, T hi)                                   \
    {                                                                          \
        for (size_t i = b; i < e; i++) {                                       \
            T d = x[i] >= lo && x[i] <= hi ? g[i] : 0;                         \
            dx[i] = acc ? dx[i] + d : d;                                       \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void fwd_range(void *ctx, size_t b, size_t e)
{
    tg_node *n = ((tg_elem_ctx *)ctx)->n;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    double lo = CA(n)->lo, hi = CA(n)->hi;
    if (y->dtype == TG_F32) /* ±∞ and FLT_MAX-exceeding bounds round to ±∞ */
        fwd_f32(b, e, x->data, y->data, (float)lo, (float)hi);
    else
        fwd_f64(b, e, x->data, y->data, lo, hi);
}

static int forward(tg_node *n)
{
    tg_elem_ctx c = {n, NULL, 0};
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, fwd_range, &c);
    return TG_OK;
}

static void bwd_range(void *ctx, size_t b, size_t e)
{
    tg_elem_ctx *c = ctx;
    tg_tensor *x = IN(c->n, 0), *y = OUT(c->n);
    double lo = CA(c->n)->lo, hi = CA(c->n)->hi;
    if (y->dtype == TG_F32)
        bwd_f32(b, e, x->data, y->grad, c->dx, c->acc, (float)lo, (float)hi);
    else
        bwd_f64(b, e, x->data, y->grad, c->dx, c->acc, lo, hi);
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    tg_elem_ctx c = {n, NULL, 0};
    c.dx = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, bwd_range, &c);
}

/* Recorded: dx = dy ⊙ step(x − lo, 1) ⊙ step(hi − x, 1) (bounds included;
 * a bound of −∞ / +∞ leaves its factor out).  Where x is NaN it is NaN
 * (backward's is 0). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *g = gy;
    double lo = CA(n)->lo, hi = CA(n)->hi;
    if (isfinite(lo) || lo > 0)
        g = tg_mul(g, tg_step(tg_add_scalar(x, -lo), 1));
    if (isfinite(hi) || hi < 0)
        g = tg_mul(g, tg_step(tg_add_scalar(tg_neg(x), hi), 1));
    gx[0] = g;
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_clamp = {.name = "clamp", .vjp = vjp, .grad_reads = 1, .attr_size = sizeof(clamp_attr),
                           .setup = setup, .forward = forward, .backward = backward,
                           .attr_str = attr_str};

tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi)
{
    clamp_attr at = {lo, hi};
    return tg_record(&tg_op_clamp, 1, &x, &at);
}

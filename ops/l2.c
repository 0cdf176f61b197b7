/* l2: L = λ/2 · Σ w²  (λ = lambda);   dw = λ w · dL */
#include "op.h"

#include <math.h>

typedef struct l2_attr {
    double lambda;
} l2_attr;
TG_ATTR_FITS(l2_attr);
#define LAMBDA(n) (ATTR(n, l2_attr)->lambda)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "lambda=%g", LAMBDA(n));
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    if (!isfinite(LAMBDA(n)))
        return tg_fail(n, "lambda %g is not finite", LAMBDA(n));
    tg_out_scalar(n, IN(n, 0)->dtype);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t len, const T *w, T *y, double lambda)           \
    {                                                                          \
        double sum = 0;                                                        \
        for (size_t i = 0; i < len; i++)                                       \
            sum += (double)w[i] * (double)w[i];                                \
        *y = (T)(lambda / 2 * sum);                                            \
    }                                                                          \
    static void bwd_##S(size_t len, const T *w, const T *g, T *dw, int acc,    \
                        double lambda)                                         \
    {                                                                          \
        T k = (T)(lambda * (double)*g);                                        \
        for (size_t i = 0; i < len; i++)                                       \
            dw[i] = acc ? dw[i] + k * w[i] : k * w[i];                         \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    TG_DISPATCH(OUT(n), fwd, IN(n, 0)->size, IN(n, 0)->data, OUT(n)->data, LAMBDA(n));
    return TG_OK;
}

static void backward(tg_node *n)
{
    int acc;
    void *dw = tg_grad_acc(IN(n, 0), &acc);
    TG_DISPATCH(OUT(n), bwd, IN(n, 0)->size, IN(n, 0)->data, OUT(n)->grad, dw, acc,
                LAMBDA(n));
}

/* Recorded: dw = λ w · dL. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(tg_scale(IN(n, 0), LAMBDA(n)), gy);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_l2 = {.name = "l2", .vjp = vjp, .grad_reads = 0x1, .attr_size = sizeof(l2_attr),
                        .setup = setup, .forward = forward, .backward = backward,
                        .attr_str = attr_str};

tg_tensor *tg_l2(tg_tensor *w, double lambda)
{
    l2_attr at = {lambda};
    return tg_record(&tg_op_l2, 1, &w, &at);
}

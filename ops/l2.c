/* l2: L = λ/2 · Σ w²  (λ = attr f[0]);   dw = λ w · dL */
#include "internal.h"

#include <math.h>

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    if (!isfinite(n->attr.f[0]))
        return tg_fail(n, "lambda %g is not finite", n->attr.f[0]);
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
    TG_DISPATCH(OUT(n), fwd, IN(n, 0)->size, IN(n, 0)->data, OUT(n)->data, n->attr.f[0]);
    return TG_OK;
}

static void backward(tg_node *n)
{
    int acc;
    void *dw = tg_grad_acc(IN(n, 0), &acc);
    TG_DISPATCH(OUT(n), bwd, IN(n, 0)->size, IN(n, 0)->data, OUT(n)->grad, dw, acc,
                n->attr.f[0]);
}

const tg_op tg_op_l2 = {"l2", setup, forward, backward};

tg_tensor *tg_l2(tg_tensor *w, double lambda)
{
    tg_attrs at = {{0}, {lambda, 0}};
    return tg_record(&tg_op_l2, 1, &w, &at);
}

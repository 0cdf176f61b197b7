/* trace: y = Σ_i X[i,i] for a square X;   dX = dy · I */
#include "op.h"

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0);
    if (x->rank != 2 || x->shape[0] != x->shape[1])
        return tg_fail(n, "input must be a square matrix, got %s", tg_shp_of(x).s);
    tg_out_scalar(n, x->dtype);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t d, const T *x, T *y)                            \
    {                                                                          \
        T s = 0;                                                               \
        for (size_t i = 0; i < d; i++)                                         \
            s += x[i * d + i];                                                 \
        *y = s;                                                                \
    }                                                                          \
    static void bwd_##S(size_t d, const T *g, T *dx, int acc)                  \
    {                                                                          \
        for (size_t i = 0; i < d; i++)                                         \
            for (size_t j = 0; j < d; j++) {                                   \
                T v = i == j ? *g : 0;                                         \
                dx[i * d + j] = acc ? dx[i * d + j] + v : v;                   \
            }                                                                  \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    TG_DISPATCH(OUT(n), fwd, IN(n, 0)->shape[0], IN(n, 0)->data, OUT(n)->data);
    return TG_OK;
}

static void backward(tg_node *n)
{
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    TG_DISPATCH(OUT(n), bwd, IN(n, 0)->shape[0], OUT(n)->grad, dx, acc);
}

/* Recorded: dX = dY · I (a constant identity). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *eye = tg_const_like(IN(n, 0), 0);
    if (!eye)
        return TG_ERR;
    size_t d = eye->shape[0];
    for (size_t i = 0; i < d; i++)
        tg_set(eye, i * d + i, 1);
    gx[0] = tg_mul(eye, gy);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_trace = {.name = "trace", .setup = setup, .forward = forward,
                           .backward = backward, .vjp = vjp};

tg_tensor *tg_trace(tg_tensor *x) { return tg_record(&tg_op_trace, 1, &x, NULL); }

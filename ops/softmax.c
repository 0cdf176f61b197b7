/* softmax and log_softmax along the last axis, for each row x:
 *   softmax:      y = e^(x−m) / Σ e^(x−m), m = max x    dx = y ⊙ (dy − ⟨dy, y⟩)
 *   log_softmax:  y = x − m − log Σ e^(x−m)            dx = dy − softmax(x) · Σ dy
 * Subtracting the max keeps every exponent ≤ 0, so any finite x is safe. */
#include "op.h"

#include "vmath.h"

#include <tgmath.h>

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    if (IN(n, 0)->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    tg_out_like(n, 0);
    return TG_OK;
}

#define KERNELS(T, S, EXP)                                                     \
    static void fwd_##S(size_t rows, size_t d, const T *x, T *y, bool logsm)   \
    {                                                                          \
        for (size_t r = 0; r < rows; r++, x += d, y += d) {                    \
            T m = x[0], s = 0;                                                 \
            for (size_t j = 1; j < d; j++)                                     \
                m = x[j] > m ? x[j] : m;                                       \
            for (size_t j = 0; j < d; j++)                                     \
                s += EXP(x[j] - m);                                            \
            T ls = log(s);                                                     \
            for (size_t j = 0; j < d; j++)                                     \
                y[j] = logsm ? x[j] - m - ls : EXP(x[j] - m - ls);             \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(size_t rows, size_t d, const T *y, const T *g, T *dx,  \
                        int acc, bool logsm)                                   \
    {                                                                          \
        for (size_t r = 0; r < rows; r++, y += d, g += d, dx += d) {           \
            T dot = 0;                                                         \
            for (size_t j = 0; j < d; j++)                                     \
                dot += logsm ? g[j] : g[j] * y[j];                             \
            for (size_t j = 0; j < d; j++) {                                   \
                T v = logsm ? g[j] - EXP(y[j]) * dot : y[j] * (g[j] - dot);    \
                dx[j] = acc ? dx[j] + v : v;                                   \
            }                                                                  \
        }                                                                      \
    }
KERNELS(float, f32, tg_expf) /* vectorisable */
KERNELS(double, f64, exp)

#define LOGSM(n) ((n)->op == &tg_op_log_softmax)

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    size_t d = x->shape[x->rank - 1];
    TG_DISPATCH(y, fwd, y->size / d, d, x->data, y->data, LOGSM(n));
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    size_t d = x->shape[x->rank - 1];
    int acc;
    void *dx = tg_grad_acc(x, &acc);
    TG_DISPATCH(y, bwd, y->size / d, d, y->data, y->grad, dx, acc, LOGSM(n));
}

const tg_op tg_op_softmax = {.name = "softmax", .setup = setup, .forward = forward,
                             .backward = backward};
const tg_op tg_op_log_softmax = {.name = "log_softmax", .setup = setup, .forward = forward,
                                 .backward = backward};

tg_tensor *tg_softmax(tg_tensor *x)
{
    return tg_record(&tg_op_softmax, 1, &x, NULL);
}

tg_tensor *tg_log_softmax(tg_tensor *x)
{
    return tg_record(&tg_op_log_softmax, 1, &x, NULL);
}

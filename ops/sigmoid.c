/* sigmoid: y = 1 / (1 + e^−x);  dx = dy · y (1 − y)
 * (f32 through tg_sigmoidf, which vectorises; f64 through libm's exp) */
#include "unary.h"

UNARY_OP_T(sigmoid, tg_sigmoidf(x), 1 / (1 + exp(-x)), g * y * (1 - y), 0, 0, NULL)

tg_tensor *tg_sigmoid(tg_tensor *x) { return tg_record(&tg_op_sigmoid, 1, &x, NULL); }

/* recorded: gx = gy ⊙ y(1 − y) */
static int sigmoid_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *y = OUT(n);
    gx[0] = tg_mul(gy, tg_mul(y, tg_add_scalar(tg_neg(y), 1)));
    return gx[0] ? TG_OK : TG_ERR;
}

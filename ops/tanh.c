/* tanh: y = tanh x;  dx = dy · (1 − y²) */
#include "unary.h"

UNARY_OP(tanh, tanh(x), g * (1 - y * y), 0)

tg_tensor *tg_tanh(tg_tensor *x) { return tg_record(&tg_op_tanh, 1, &x, NULL); }

/* recorded: gx = gy ⊙ (1 − y²) */
static int tanh_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *y = OUT(n);
    gx[0] = tg_mul(gy, tg_add_scalar(tg_neg(tg_mul(y, y)), 1));
    return gx[0] ? TG_OK : TG_ERR;
}

/* exp: y = e^x;  dx = dy · y */
#include "unary.h"

UNARY_OP(exp, exp(x), g * y, 0)

tg_tensor *tg_exp(tg_tensor *x) { return tg_record(&tg_op_exp, 1, &x, NULL); }

/* recorded: gx = gy ⊙ y */
static int exp_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(gy, OUT(n));
    return gx[0] ? TG_OK : TG_ERR;
}

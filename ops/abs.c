/* abs: y = |x|;  dx = dy·sign(x), 0 at x = 0 (PyTorch); NaN where x is NaN. */
#include "unary.h"

UNARY_OP(abs, fabs(x), x > 0 ? g : x < 0 ? -g : x == 0 ? 0 : x, 1)

tg_tensor *tg_abs(tg_tensor *x) { return tg_record(&tg_op_abs, 1, &x, NULL); }

/* recorded: gx = gy ⊙ sign(x), sign(x) = 2·step(x, ½) − 1 (0 at 0, as backward) */
static int abs_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(gy, tg_add_scalar(tg_scale(tg_step(IN(n, 0), 0.5), 2), -1));
    return gx[0] ? TG_OK : TG_ERR;
}

/* relu: y = max(x, 0);  dx = dy where x > 0, else 0 (slope 0 at the kink) */
#include "unary.h"

UNARY_OP(relu, x > 0 ? x : 0, x > 0 ? g : 0, 1)

tg_tensor *tg_relu(tg_tensor *x) { return tg_record(&tg_op_relu, 1, &x, NULL); }

/* recorded: gx = gy ⊙ step(x) (0 at 0, as backward) */
static int relu_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(gy, tg_step(IN(n, 0), 0));
    return gx[0] ? TG_OK : TG_ERR;
}

/* log: y = ln x;  dx = dy / x */
#include "unary.h"

UNARY_OP(log, log(x), g / x, 1)

tg_tensor *tg_log(tg_tensor *x) { return tg_record(&tg_op_log, 1, &x, NULL); }

/* recorded: gx = gy / x */
static int log_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_div(gy, IN(n, 0));
    return gx[0] ? TG_OK : TG_ERR;
}

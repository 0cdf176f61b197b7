/* sqrt: y = √x;  dx = dy / (2y) (from y alone, as PyTorch): at x = 0 the
 * gradient is +∞ (for dy > 0; dy = 0 gives NaN, 0/0), for x < 0 both y and
 * dx are NaN. */
#include "unary.h"

UNARY_OP(sqrt, sqrt(x), g / (2 * y), 0)

tg_tensor *tg_sqrt(tg_tensor *x) { return tg_record(&tg_op_sqrt, 1, &x, NULL); }

/* recorded: gx = gy / 2y */
static int sqrt_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_div(tg_scale(gy, 0.5), OUT(n));
    return gx[0] ? TG_OK : TG_ERR;
}

/* add_scalar: y = x + c (c: unary_attr, a plain number; c = ±∞ is
 * accepted, NaN refused);  dx = dy.  Multiplying by a number is tg_scale. */
#include "unary.h"

static int add_scalar_setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    double c = ATTR(n, unary_attr)->c;
    if (isnan(c))
        return tg_fail(n, "c is NaN (input %s)", tg_shp_of(IN(n, 0)).s);
    tg_out_like(n, 0);
    return TG_OK;
}

UNARY_OP_S(add_scalar, x + c, x + c, g, 0, sizeof(unary_attr), tg_unary_attr_str,
           add_scalar_setup)

tg_tensor *tg_add_scalar(tg_tensor *x, double c)
{
    unary_attr at = {c};
    return tg_record(&tg_op_add_scalar, 1, &x, &at);
}

/* recorded: gx = gy */
static int add_scalar_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)need;
    gx[0] = gy;
    return gx[0] ? TG_OK : TG_ERR;
}

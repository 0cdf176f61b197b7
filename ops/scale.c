/* scale: y = c·x (c: unary_attr);  dx = c · dy.   neg: y = −x = scale by −1. */
#include "unary.h"

UNARY_OP_C(scale, c * x, c * g, 0)

tg_tensor *tg_scale(tg_tensor *x, double c)
{
    unary_attr at = {c};
    return tg_record(&tg_op_scale, 1, &x, &at);
}

UNARY_OP(neg, -x, -g, 0)

tg_tensor *tg_neg(tg_tensor *x) { return tg_record(&tg_op_neg, 1, &x, NULL); }

/* recorded: gx = c·gy, and −gy */
static int scale_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_scale(gy, ATTR(n, unary_attr)->c);
    return gx[0] ? TG_OK : TG_ERR;
}

static int neg_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)need;
    gx[0] = tg_neg(gy);
    return gx[0] ? TG_OK : TG_ERR;
}

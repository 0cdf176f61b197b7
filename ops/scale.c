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

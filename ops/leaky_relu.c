/* leaky_relu: y = x where x > 0, else slope·x  (slope: unary_attr c; any
 * value, PyTorch's default is 0.01);  dx = dy where x > 0, else slope·dy.
 * At x = 0 exactly the gradient takes the slope side (PyTorch's
 * x > 0 ? g : g·slope).  NaN stays NaN (slope·NaN). */
#include "unary.h"

UNARY_OP_C(leaky_relu, x > 0 ? x : c * x, x > 0 ? g : c * g, 1)

tg_tensor *tg_leaky_relu(tg_tensor *x, double slope)
{
    unary_attr at = {slope};
    return tg_record(&tg_op_leaky_relu, 1, &x, &at);
}

/* recorded: gx = gy ⊙ (c + (1 − c)·step(x)) */
static int leaky_relu_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    double c = ATTR(n, unary_attr)->c;
    gx[0] = tg_mul(gy, tg_add_scalar(tg_scale(tg_step(IN(n, 0), 0), 1 - c), c));
    return gx[0] ? TG_OK : TG_ERR;
}

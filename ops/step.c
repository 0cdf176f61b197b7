/* step (Heaviside): y = 1 where x > 0, 0 where x < 0, c where x = 0 (c:
 * unary_attr, finite), NaN where x is NaN;  dx = 0 (its derivative is zero
 * wherever it has one).  The masks of the recorded backward rules (relu,
 * abs, clamp, maximum ...) are made of it. */
#include "unary.h"

static int step_setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    double c = ATTR(n, unary_attr)->c;
    if (!isfinite(c))
        return tg_fail(n, "the value at 0, %g, is not finite (input %s)", c,
                       tg_shp_of(IN(n, 0)).s);
    tg_out_like(n, 0);
    return TG_OK;
}

UNARY_OP_S(step, x > 0 ? 1 : x < 0 ? 0 : x == 0 ? c : x, x > 0 ? 1 : x < 0 ? 0 : x == 0 ? c : x,
           ((void)g, 0), 0, sizeof(unary_attr), tg_unary_attr_str, step_setup)

tg_tensor *tg_step(tg_tensor *x, double at0)
{
    unary_attr at = {at0};
    return tg_record(&tg_op_step, 1, &x, &at);
}

/* recorded: zero (gx[0] left NULL) */
static int step_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)gy, (void)need, (void)gx;
    return TG_OK;
}

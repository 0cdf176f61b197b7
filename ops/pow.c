/* pow with a constant exponent p (unary_attr c):  y = x^p (C's pow);
 *   dx = dy·p·x^(p−1);  p = 0: y = 1 everywhere (NaN included), dx = 0.
 * x < 0 with a non-integer p gives NaN (y and dx); x = 0 with p < 1 gives
 * an infinite gradient (p = 0.5: +∞, p = −1: y = +∞, dx = −∞).  For f32
 * p is rounded to float.  p must be finite. */
#include "unary.h"

static int pow_setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    double p = ATTR(n, unary_attr)->c;
    if (!isfinite(p))
        return tg_fail(n, "exponent p %g is not finite (input %s)", p, tg_shp_of(IN(n, 0)).s);
    tg_out_like(n, 0);
    return TG_OK;
}

static void pow_attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "p=%g", ATTR(n, unary_attr)->c);
}

UNARY_OP_S(pow, pow(x, c), pow(x, c), c == 0 ? 0 : g * c * pow(x, c - 1), 1,
           sizeof(unary_attr), pow_attr_str, pow_setup)

tg_tensor *tg_pow(tg_tensor *x, double p)
{
    unary_attr at = {p};
    return tg_record(&tg_op_pow, 1, &x, &at);
}

/* recorded: gx = gy ⊙ c·x^(c−1) (nothing for c = 0) */
static int pow_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    double c = ATTR(n, unary_attr)->c;
    if (c == 0)
        return TG_OK;
    gx[0] = tg_mul(gy, tg_scale(tg_pow(IN(n, 0), c - 1), c));
    return gx[0] ? TG_OK : TG_ERR;
}

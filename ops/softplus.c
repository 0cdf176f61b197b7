/* softplus: y = log(1 + e^x), computed as max(x, 0) + log1p(e^(−|x|))
 * (no overflow for large x, full precision for x ≪ 0; no threshold: exact
 * everywhere);  dx = dy·σ(x), σ from e^(−|x|) as well.  NaN stays NaN. */
#include "unary.h"

#define SOFTPLUS_FNS(T, S)                                                     \
    static inline T softplus_y_##S(T x)                                        \
    {                                                                          \
        return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));                         \
    }                                                                          \
    static inline T softplus_d_##S(T x)                                        \
    {                                                                          \
        if (x >= 0)                                                            \
            return 1 / (1 + exp(-x));                                          \
        T e = exp(x);                                                          \
        return e / (1 + e);                                                    \
    }
SOFTPLUS_FNS(float, f32)
SOFTPLUS_FNS(double, f64)
#define SOFTPLUS_Y(x) _Generic((x), float: softplus_y_f32, default: softplus_y_f64)(x)
#define SOFTPLUS_D(x) _Generic((x), float: softplus_d_f32, default: softplus_d_f64)(x)

UNARY_OP(softplus, SOFTPLUS_Y(x), g * SOFTPLUS_D(x), 1)

tg_tensor *tg_softplus(tg_tensor *x) { return tg_record(&tg_op_softplus, 1, &x, NULL); }

/* recorded: gx = gy ⊙ σ(x) */
static int softplus_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(gy, tg_sigmoid(IN(n, 0)));
    return gx[0] ? TG_OK : TG_ERR;
}

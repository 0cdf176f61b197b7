/* silu (swish): y = x·σ(x);   dx = dy·σ(x)·(1 + x·(1 − σ(x))).
 * σ(x) and 1 − σ(x) = σ(−x) each come from e^(−|x|) (no overflow, no
 * cancellation), and x·σ(x), x·σ(−x) are 0 where the σ factor is 0, so
 * ±∞ and large |x| give the limits (y(−∞) = 0, y(+∞) = +∞, dx → 0 or dy)
 * instead of NaN.  NaN stays NaN. */
#include "unary.h"

#define SILU_FNS(T, S)                                                         \
    static inline T silu_sig_##S(T x)                                          \
    {                                                                          \
        if (x >= 0)                                                            \
            return 1 / (1 + exp(-x));                                          \
        T e = exp(x);                                                          \
        return e / (1 + e);                                                    \
    }                                                                          \
    static inline T silu_y_##S(T x)                                            \
    {                                                                          \
        T s = silu_sig_##S(x);                                                 \
        return s == 0 ? 0 : x * s;                                             \
    }                                                                          \
    static inline T silu_d_##S(T x)                                            \
    {                                                                          \
        T s = silu_sig_##S(x), t = silu_sig_##S(-x);                           \
        return s == 0 ? 0 : s * (1 + (t == 0 ? 0 : x * t));                    \
    }
SILU_FNS(float, f32)
SILU_FNS(double, f64)
#define SILU_Y(x) _Generic((x), float: silu_y_f32, default: silu_y_f64)(x)
#define SILU_D(x) _Generic((x), float: silu_d_f32, default: silu_d_f64)(x)

UNARY_OP(silu, SILU_Y(x), g * SILU_D(x), 1)

tg_tensor *tg_silu(tg_tensor *x) { return tg_record(&tg_op_silu, 1, &x, NULL); }

/* recorded: gx = gy ⊙ σ(x)(1 + x(1 − σ(x))) */
static int silu_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *s = tg_sigmoid(x);
    gx[0] = tg_mul(gy, tg_mul(s, tg_add_scalar(tg_mul(x, tg_add_scalar(tg_neg(s), 1)), 1)));
    return gx[0] ? TG_OK : TG_ERR;
}

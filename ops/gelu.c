/* gelu, the exact (erf) form, PyTorch's default nn.GELU():
 *   y = x·Φ(x) = ½·x·(1 + erf(x/√2)),   computed as x·½·erfc(−x/√2)
 *       (no cancellation of 1 + erf for x ≪ 0);
 *   dx = dy·(Φ(x) + x·φ(x)),  φ(x) = e^(−x²/2)/√(2π).
 * Where Φ(x) underflows to 0 (x ≪ 0, −∞ included) y is 0, and x·φ(x) is 0
 * where φ underflows (|x| large, ±∞ included), so neither makes a NaN;
 * NaN stays NaN. */
#include "unary.h"

#define GELU_FNS(T, S)                                                         \
    static inline T gelu_cdf_##S(T x) { return (T)0.5 * erfc(-x * (T)0.70710678118654752440); } \
    static inline T gelu_y_##S(T x)                                            \
    {                                                                          \
        T p = gelu_cdf_##S(x);                                                 \
        return p == 0 ? 0 : x * p;                                             \
    }                                                                          \
    static inline T gelu_d_##S(T x)                                            \
    {                                                                          \
        T e = exp((T)-0.5 * x * x);                                            \
        return gelu_cdf_##S(x) + (e == 0 ? 0 : x * e * (T)0.39894228040143267794); \
    }
GELU_FNS(float, f32)
GELU_FNS(double, f64)
#define GELU_Y(x) _Generic((x), float: gelu_y_f32, default: gelu_y_f64)(x)
#define GELU_D(x) _Generic((x), float: gelu_d_f32, default: gelu_d_f64)(x)

UNARY_OP(gelu, GELU_Y(x), g * GELU_D(x), 1)

tg_tensor *tg_gelu(tg_tensor *x) { return tg_record(&tg_op_gelu, 1, &x, NULL); }

/* abs: y = |x|;  dx = dy·sign(x), 0 at x = 0 (PyTorch); NaN where x is NaN. */
#include "unary.h"

UNARY_OP(abs, fabs(x), x > 0 ? g : x < 0 ? -g : x == 0 ? 0 : x, 1)

tg_tensor *tg_abs(tg_tensor *x) { return tg_record(&tg_op_abs, 1, &x, NULL); }

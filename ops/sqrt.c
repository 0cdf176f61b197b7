/* sqrt: y = √x;  dx = dy / (2y) (from y alone, as PyTorch): at x = 0 the
 * gradient is +∞ (for dy > 0; dy = 0 gives NaN, 0/0), for x < 0 both y and
 * dx are NaN. */
#include "unary.h"

UNARY_OP(sqrt, sqrt(x), g / (2 * y), 0)

tg_tensor *tg_sqrt(tg_tensor *x) { return tg_record(&tg_op_sqrt, 1, &x, NULL); }

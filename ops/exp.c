/* exp: y = e^x;  dx = dy · y */
#include "unary.h"

UNARY_OP(exp, exp(x), g * y, 0)

tg_tensor *tg_exp(tg_tensor *x) { return tg_record(&tg_op_exp, 1, &x, NULL); }

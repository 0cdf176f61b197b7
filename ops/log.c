/* log: y = ln x;  dx = dy / x */
#include "unary.h"

UNARY_OP(log, log(x), g / x, 1)

tg_tensor *tg_log(tg_tensor *x) { return tg_record(&tg_op_log, 1, &x, NULL); }

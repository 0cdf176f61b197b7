/* relu: y = max(x, 0);  dx = dy where x > 0, else 0 (slope 0 at the kink) */
#include "unary.h"

UNARY_OP(relu, x > 0 ? x : 0, x > 0 ? g : 0, 1)

tg_tensor *tg_relu(tg_tensor *x) { return tg_record(&tg_op_relu, 1, &x, NULL); }

/* sigmoid: y = 1 / (1 + e^−x);  dx = dy · y (1 − y) */
#include "unary.h"

UNARY_OP(sigmoid, 1 / (1 + exp(-x)), g * y * (1 - y))

tg_tensor *tg_sigmoid(tg_tensor *x) { return tg_record(&tg_op_sigmoid, 1, &x, NULL); }

/* tanh: y = tanh x;  dx = dy · (1 − y²) */
#include "unary.h"

UNARY_OP(tanh, tanh(x), g * (1 - y * y), 0)

tg_tensor *tg_tanh(tg_tensor *x) { return tg_record(&tg_op_tanh, 1, &x, NULL); }

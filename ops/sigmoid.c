/* sigmoid: y = 1 / (1 + e^−x);  dx = dy · y (1 − y)
 * (f32 through tg_sigmoidf, which vectorises; f64 through libm's exp) */
#include "unary.h"

UNARY_OP_T(sigmoid, tg_sigmoidf(x), 1 / (1 + exp(-x)), g * y * (1 - y), 0, 0, NULL)

tg_tensor *tg_sigmoid(tg_tensor *x) { return tg_record(&tg_op_sigmoid, 1, &x, NULL); }

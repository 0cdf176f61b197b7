/* transpose: swap the last two axes, Y[..., j, i] = X[..., i, j];
 *   dX = transpose(dY) */
#include "op.h"

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    if (x->rank < 2)
        return tg_fail(n, "input must have rank >= 2, got %s", tg_shp_of(x).s);
    tg_out_like(n, 0);
    y->shape[x->rank - 2] = x->shape[x->rank - 1];
    y->shape[x->rank - 1] = x->shape[x->rank - 2];
    return TG_OK;
}

/* out[b][j][i] (+)= in[b][i][j] for `batch` matrices of rows × cols */
#define KERNELS(T, S)                                                          \
    static void swap_##S(size_t batch, size_t rows, size_t cols, const T *in,  \
                         T *out, int acc)                                      \
    {                                                                          \
        for (size_t b = 0; b < batch; b++, in += rows * cols, out += rows * cols) \
            for (size_t i = 0; i < rows; i++)                                  \
                for (size_t j = 0; j < cols; j++) {                            \
                    T v = in[i * cols + j];                                    \
                    out[j * rows + i] = acc ? out[j * rows + i] + v : v;       \
                }                                                              \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0);
    size_t rows = x->shape[x->rank - 2], cols = x->shape[x->rank - 1];
    TG_DISPATCH(x, swap, x->size / (rows * cols), rows, cols, x->data, OUT(n)->data, 0);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    size_t rows = y->shape[y->rank - 2], cols = y->shape[y->rank - 1];
    int acc;
    void *dx = tg_grad_acc(x, &acc);
    TG_DISPATCH(x, swap, y->size / (rows * cols), rows, cols, y->grad, dx, acc);
}

/* Recorded: dX = transpose(dY). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)need;
    gx[0] = tg_transpose(gy);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_transpose = {.name = "transpose", .vjp = vjp, .setup = setup, .forward = forward,
                               .backward = backward};

tg_tensor *tg_transpose(tg_tensor *x) { return tg_record(&tg_op_transpose, 1, &x, NULL); }

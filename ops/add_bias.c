/* add_bias: Y = X + 1·bᵀ, X [n,d], b [d] or [1,d] added to every row.
 *   dX = dY        db = Σ_rows dY */
#include "internal.h"

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1) ||
        tg_need_rank(n, 0, 2))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *b = IN(n, 1);
    bool row = (b->rank == 1 && b->shape[0] == x->shape[1]) ||
               (b->rank == 2 && b->shape[0] == 1 && b->shape[1] == x->shape[1]);
    if (!row)
        return tg_fail(n, "bias must be [%zu] or [1,%zu] for input %s, got %s", x->shape[1],
                       x->shape[1], tg_shp_of(x).s, tg_shp_of(b).s);
    tg_out_like(n, 0);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t rows, size_t d, const T *x, const T *b, T *y)   \
    {                                                                          \
        for (size_t i = 0; i < rows; i++)                                      \
            for (size_t j = 0; j < d; j++)                                     \
                y[i * d + j] = x[i * d + j] + b[j];                            \
    }                                                                          \
    static void dbias_##S(size_t rows, size_t d, const T *dy, T *db, int acc)  \
    {                                                                          \
        if (!acc)                                                              \
            for (size_t j = 0; j < d; j++)                                     \
                db[j] = 0;                                                     \
        for (size_t i = 0; i < rows; i++)                                      \
            for (size_t j = 0; j < d; j++)                                     \
                db[j] += dy[i * d + j];                                        \
    }                                                                          \
    static void pass_##S(size_t len, const T *dy, T *dx, int acc)              \
    {                                                                          \
        for (size_t i = 0; i < len; i++)                                       \
            dx[i] = acc ? dx[i] + dy[i] : dy[i];                               \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *b = IN(n, 1), *y = OUT(n);
    TG_DISPATCH(y, fwd, x->shape[0], x->shape[1], x->data, b->data, y->data);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *b = IN(n, 1), *y = OUT(n);
    int acc;
    if (tg_wants_grad(x)) {
        void *dx = tg_grad_acc(x, &acc);
        TG_DISPATCH(y, pass, y->size, y->grad, dx, acc);
    }
    if (tg_wants_grad(b)) {
        void *db = tg_grad_acc(b, &acc);
        TG_DISPATCH(y, dbias, x->shape[0], x->shape[1], y->grad, db, acc);
    }
}

const tg_op tg_op_add_bias = {"add_bias", setup, forward, backward};

tg_tensor *tg_add_bias(tg_tensor *x, tg_tensor *b)
{
    return tg_record(&tg_op_add_bias, 2, (tg_tensor *[]){x, b}, NULL);
}

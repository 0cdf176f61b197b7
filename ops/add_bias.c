/* add_bias: Y = X + 1·bᵀ, X [n,d], b [d] or [1,d] added to every row.
 *   dX = dY        db = Σ_rows dY  (row by row, so each sum keeps its order) */
#include "op.h"

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
    static void pass_##S(size_t len, const T *dy, T *dx, int acc)              \
    {                                                                          \
        for (size_t i = 0; i < len; i++)                                       \
            dx[i] = acc ? dx[i] + dy[i] : dy[i];                               \
    }
KERNELS(float, f32)
KERNELS(double, f64)

/* Large inputs are split over the thread pool: the forward by rows,
 * dX by elements, db by columns (each column's sum over the rows keeps its order). */
#define AT(p, T, off) ((T *)(p) + (off))

static void fwd_rows(void *c, size_t b, size_t e)
{
    tg_node *n = ((tg_elem_ctx *)c)->n;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    size_t d = x->shape[1];
    if (y->dtype == TG_F32)
        fwd_f32(e - b, d, AT(x->data, const float, b * d), IN(n, 1)->data, AT(y->data, float, b * d));
    else
        fwd_f64(e - b, d, AT(x->data, const double, b * d), IN(n, 1)->data,
                AT(y->data, double, b * d));
}

static int forward(tg_node *n)
{
    tg_elem_ctx c = {n, NULL, 0};
    size_t d = IN(n, 0)->shape[1];
    tg_parallel_for(IN(n, 0)->shape[0], TG_ELEM_GRAIN / d + 1, fwd_rows, &c);
    return TG_OK;
}

static void pass_range(void *cv, size_t b, size_t e)
{
    tg_elem_ctx *c = cv;
    tg_tensor *y = OUT(c->n);
    if (y->dtype == TG_F32)
        pass_f32(e - b, AT(y->grad, const float, b), AT(c->dx, float, b), c->acc);
    else
        pass_f64(e - b, AT(y->grad, const double, b), AT(c->dx, double, b), c->acc);
}

/* columns [b, e) of db: the kernel sees a matrix of e − b columns whose rows
 * are d apart, so it is called row by row on the slice */
static void dbias_cols(void *cv, size_t b, size_t e)
{
    tg_elem_ctx *c = cv;
    tg_tensor *x = IN(c->n, 0), *y = OUT(c->n);
    size_t rows = x->shape[0], d = x->shape[1];
    for (size_t i = 0; i < rows; i++) {
        int acc = i ? 1 : c->acc; /* row 0 overwrites when db held nothing */
        if (y->dtype == TG_F32)
            pass_f32(e - b, AT(y->grad, const float, i * d + b), AT(c->dx, float, b), acc);
        else
            pass_f64(e - b, AT(y->grad, const double, i * d + b), AT(c->dx, double, b), acc);
    }
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *b = IN(n, 1), *y = OUT(n);
    tg_elem_ctx c = {n, NULL, 0};
    if (tg_wants_grad(x)) {
        c.dx = tg_grad_acc(x, &c.acc);
        tg_parallel_for(y->size, TG_ELEM_GRAIN, pass_range, &c);
    }
    if (tg_wants_grad(b)) {
        c.dx = tg_grad_acc(b, &c.acc);
        tg_parallel_for(x->shape[1], TG_ELEM_GRAIN / x->shape[0] + 1, dbias_cols, &c);
    }
}

/* Recorded: dX = dY, db = Σ_rows dY (tg_sum_axis), in b's shape. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *b = IN(n, 1);
    if (need & 1)
        gx[0] = gy;
    if (need & 2)
        gx[1] = tg_reshape(tg_sum_axis(gy, 0, false), b->rank, b->shape);
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_add_bias = {.name = "add_bias", .setup = setup, .forward = forward,
                              .backward = backward, .vjp = vjp};

tg_tensor *tg_add_bias(tg_tensor *x, tg_tensor *b)
{
    return tg_record(&tg_op_add_bias, 2, (tg_tensor *[]){x, b}, NULL);
}

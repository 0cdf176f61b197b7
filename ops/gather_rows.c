/* gather_rows: Y[i] = X[idx_i]   (X [r,...], idx i32 [k], Y [k,...]);
 *   dX[idx_i] += dY[i]   (a scatter-add: a row picked twice gets both)
 * Forward checks the indices and keeps a copy of them in scratch; backward
 * scatters with that copy, so indices changed after the last forward (e.g.
 * out of range, which the next replay refuses) are never used.  Recorded
 * backward: tg_scatter_rows (twice differentiable and more: its own is a
 * gather). */
#include "op.h"

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_i32(n, 1))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *idx = IN(n, 1), *y = OUT(n);
    if (x->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    if (idx->rank != 1)
        return tg_fail(n, "indices must be 1-D, got %s", tg_shp_of(idx).s);
    tg_out_like(n, 0);
    y->shape[0] = idx->shape[0];
    n->scratch_bytes = idx->size * sizeof(int32_t);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t k, size_t w, const T *x, const int32_t *idx, T *y) \
    {                                                                          \
        for (size_t i = 0; i < k; i++)                                         \
            memcpy(y + i * w, x + (size_t)idx[i] * w, w * sizeof(T));          \
    }                                                                          \
    static void bwd_##S(size_t k, size_t w, const T *dy, const int32_t *idx,   \
                        T *dx)                                                 \
    {                                                                          \
        for (size_t i = 0; i < k; i++)                                         \
            for (size_t j = 0; j < w; j++)                                     \
                dx[(size_t)idx[i] * w + j] += dy[i * w + j];                   \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    const int32_t *idx = IN(n, 1)->data;
    size_t k = IN(n, 1)->size, rows = x->shape[0];
    for (size_t i = 0; i < k; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= rows)
            return tg_fail(n, "index %d at position %zu is outside [0, %zu)", (int)idx[i],
                           i, rows);
    memcpy(n->scratch, idx, k * sizeof(int32_t));
    TG_DISPATCH(y, fwd, k, x->size / rows, x->data, idx, y->data);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    void *dx = tg_grad_sum(x);
    TG_DISPATCH(y, bwd, IN(n, 1)->size, x->size / x->shape[0], y->grad, n->scratch, dx);
}

/* Recorded: dX = tg_scatter_rows(dY, idx, r), which reads idx when it runs
 * (indices may change between replays); idx gets no gradient. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_scatter_rows(gy, IN(n, 1), IN(n, 0)->shape[0]);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_gather_rows = {.name = "gather_rows", .setup = setup, .forward = forward,
                                 .backward = backward, .vjp = vjp};

tg_tensor *tg_gather_rows(tg_tensor *x, tg_tensor *idx)
{
    return tg_record(&tg_op_gather_rows, 2, (tg_tensor *[]){x, idx}, NULL);
}

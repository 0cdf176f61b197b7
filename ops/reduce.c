/* sum and mean, of all elements or along one axis.
 * Seeing x as [outer, len, inner] around the reduced axis (the whole tensor
 * is outer = inner = 1):
 *   y[o,i] = s · Σ_k x[o,k,i]       dx[o,k,i] = s · dy[o,i]
 * with s = 1 for sum and 1/len for mean. */
#include "internal.h"

#define ALL_AXES(n) ((n)->attr.i[2] != 0)

/* outer, len, inner of x around the node's axis */
static void split(const tg_node *n, size_t *outer, size_t *len, size_t *inner)
{
    const tg_tensor *x = IN(n, 0);
    if (ALL_AXES(n)) {
        *outer = *inner = 1;
        *len = x->size;
        return;
    }
    int axis = (int)n->attr.i[0];
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= x->shape[i];
    for (int i = axis + 1; i < x->rank; i++)
        *inner *= x->shape[i];
    *len = x->shape[axis];
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    y->dtype = x->dtype;
    if (ALL_AXES(n)) {
        y->rank = 0;
    } else {
        int axis = (int)n->attr.i[0], keep = (int)n->attr.i[1];
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank)
            return tg_fail(n, "axis %d out of range for %s", (int)n->attr.i[0],
                           tg_shp_of(x).s);
        n->attr.i[0] = axis;
        int r = 0;
        for (int i = 0; i < x->rank; i++) {
            if (i != axis)
                y->shape[r++] = x->shape[i];
            else if (keep)
                y->shape[r++] = 1;
        }
        y->rank = (uint8_t)r;
    }
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    n->attr.f[0] = n->attr.i[3] ? 1.0 / (double)len : 1.0; /* i[3]: mean */
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t outer, size_t len, size_t inner, const T *x,    \
                        T *y, T s)                                             \
    {                                                                          \
        for (size_t o = 0; o < outer; o++) {                                   \
            T *yo = y + o * inner;                                             \
            for (size_t i = 0; i < inner; i++)                                 \
                yo[i] = 0;                                                     \
            for (size_t k = 0; k < len; k++)                                   \
                for (size_t i = 0; i < inner; i++)                             \
                    yo[i] += x[(o * len + k) * inner + i];                     \
            for (size_t i = 0; i < inner; i++)                                 \
                yo[i] *= s;                                                    \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(size_t outer, size_t len, size_t inner, const T *g,    \
                        T *dx, int acc, T s)                                   \
    {                                                                          \
        for (size_t o = 0; o < outer; o++)                                     \
            for (size_t k = 0; k < len; k++)                                   \
                for (size_t i = 0; i < inner; i++) {                           \
                    size_t at = (o * len + k) * inner + i;                     \
                    T v = s * g[o * inner + i];                                \
                    dx[at] = acc ? dx[at] + v : v;                             \
                }                                                              \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    if (OUT(n)->dtype == TG_F32)
        fwd_f32(outer, len, inner, IN(n, 0)->data, OUT(n)->data, (float)n->attr.f[0]);
    else
        fwd_f64(outer, len, inner, IN(n, 0)->data, OUT(n)->data, n->attr.f[0]);
    return TG_OK;
}

static void backward(tg_node *n)
{
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    if (OUT(n)->dtype == TG_F32)
        bwd_f32(outer, len, inner, OUT(n)->grad, dx, acc, (float)n->attr.f[0]);
    else
        bwd_f64(outer, len, inner, OUT(n)->grad, dx, acc, n->attr.f[0]);
}

const tg_op tg_op_sum = {"sum", setup, forward, backward};
const tg_op tg_op_mean = {"mean", setup, forward, backward};

/* attr i: [axis, keepdim, all axes, mean] */
static tg_tensor *reduce(const tg_op *op, tg_tensor *x, int axis, bool keep, bool all)
{
    tg_attrs at = {{axis, keep, all, op == &tg_op_mean}, {0, 0}};
    return tg_record(op, 1, &x, &at);
}

tg_tensor *tg_sum(tg_tensor *x) { return reduce(&tg_op_sum, x, 0, false, true); }
tg_tensor *tg_mean(tg_tensor *x) { return reduce(&tg_op_mean, x, 0, false, true); }
tg_tensor *tg_sum_axis(tg_tensor *x, int axis, bool keepdim)
{
    return reduce(&tg_op_sum, x, axis, keepdim, false);
}
tg_tensor *tg_mean_axis(tg_tensor *x, int axis, bool keepdim)
{
    return reduce(&tg_op_mean, x, axis, keepdim, false);
}

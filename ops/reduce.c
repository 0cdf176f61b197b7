/* sum and mean, of all elements or along one axis.
 * Seeing x as [outer, len, inner] around the reduced axis (the whole tensor
 * is outer = inner = 1):
 *   y[o,i] = s · Σ_k x[o,k,i]       dx[o,k,i] = s · dy[o,i]
 * with s = 1 for sum and 1/len for mean.  A contiguous sum (inner = 1: the
 * whole tensor, or the last axis) adds in 8 lanes fixed by the index, so it
 * vectorises; the result does not depend on the thread count. */
#include "op.h"

typedef struct reduce_attr {
    int axis;     /* the reduced axis; setup makes a negative one positive */
    bool keepdim; /* keep the reduced axis with size 1                      */
    bool all;     /* reduce every element to a scalar (axis, keepdim unused) */
    double scale; /* setup: 1 (sum) or 1/len (mean)                          */
} reduce_attr;
TG_ATTR_FITS(reduce_attr);
#define RA(n) ATTR(n, reduce_attr)
#define ALL_AXES(n) (RA(n)->all)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    if (ALL_AXES(n))
        buf[0] = 0;
    else
        snprintf(buf, len, "axis=%d%s", RA(n)->axis, RA(n)->keepdim ? " keepdim" : "");
}

/* outer, len, inner of x around the node's axis */
static void split(const tg_node *n, size_t *outer, size_t *len, size_t *inner)
{
    const tg_tensor *x = IN(n, 0);
    if (ALL_AXES(n)) {
        *outer = *inner = 1;
        *len = x->size;
        return;
    }
    int axis = RA(n)->axis;
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
        int axis = RA(n)->axis;
        bool keep = RA(n)->keepdim;
        if (axis < 0)
            axis += x->rank;
        if (axis < 0 || axis >= x->rank)
            return tg_fail(n, "axis %d out of range for %s", RA(n)->axis, tg_shp_of(x).s);
        RA(n)->axis = axis;
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
    RA(n)->scale = n->op == &tg_op_mean ? 1.0 / (double)len : 1.0;
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t outer, size_t len, size_t inner, const T *x,    \
                        T *y, T s)                                             \
    {                                                                          \
        if (inner == 1) { /* rows: 8 fixed lanes, then their sum in order */  \
            for (size_t o = 0; o < outer; o++, x += len) {                     \
                T l[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t = 0;                      \
                size_t k = 0;                                                  \
                for (; k + 8 <= len; k += 8)                                   \
                    for (int j = 0; j < 8; j++)                                \
                        l[j] += x[k + (size_t)j];                              \
                for (; k < len; k++)                                           \
                    l[k % 8] += x[k];                                          \
                for (int j = 0; j < 8; j++)                                    \
                    t += l[j];                                                 \
                y[o] = t * s;                                                  \
            }                                                                  \
            return;                                                            \
        }                                                                      \
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
        fwd_f32(outer, len, inner, IN(n, 0)->data, OUT(n)->data, (float)RA(n)->scale);
    else
        fwd_f64(outer, len, inner, IN(n, 0)->data, OUT(n)->data, RA(n)->scale);
    return TG_OK;
}

static void backward(tg_node *n)
{
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    if (OUT(n)->dtype == TG_F32)
        bwd_f32(outer, len, inner, OUT(n)->grad, dx, acc, (float)RA(n)->scale);
    else
        bwd_f64(outer, len, inner, OUT(n)->grad, dx, acc, RA(n)->scale);
}

/* Recorded: dX = s·dY broadcast back over the reduced axis. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *g = RA(n)->scale == 1 ? gy : tg_scale(gy, RA(n)->scale);
    if (g && !ALL_AXES(n) && !RA(n)->keepdim) { /* put the reduced axis back, size 1 */
        size_t s[TG_MAX_RANK];
        for (int i = 0; i < x->rank; i++)
            s[i] = i == RA(n)->axis ? 1 : x->shape[i];
        g = tg_reshape(g, x->rank, s);
    }
    gx[0] = tg_expand_to(g, x);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_sum = {.name = "sum", .attr_size = sizeof(reduce_attr), .setup = setup,
                         .forward = forward, .backward = backward, .attr_str = attr_str,
                         .vjp = vjp};
const tg_op tg_op_mean = {.name = "mean", .attr_size = sizeof(reduce_attr), .setup = setup,
                          .forward = forward, .backward = backward, .attr_str = attr_str,
                          .vjp = vjp};

static tg_tensor *reduce(const tg_op *op, tg_tensor *x, int axis, bool keep, bool all)
{
    reduce_attr at = {axis, keep, all, 0};
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

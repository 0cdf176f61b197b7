/* max_axis: the maximum along one axis.  Seeing x as [outer, len, inner]
 * around the axis:
 *   y[o,i] = x[o,k*,i],  k* = the FIRST k with the maximal value, or the
 *            first NaN when the slice holds one (torch.max(x, dim)'s index)
 *   dx[o,k,i] = dy[o,i] at k = k*, 0 elsewhere
 * Forward keeps k* of every output element in scratch (recomputed on every
 * forward); backward reads only that, not x. */
#include "op.h"

typedef struct max_axis_attr {
    int axis;     /* setup makes a negative one positive */
    bool keepdim; /* keep the axis with size 1 */
} max_axis_attr;
TG_ATTR_FITS(max_axis_attr);
#define MA(n) ATTR(n, max_axis_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d%s", MA(n)->axis, MA(n)->keepdim ? " keepdim" : "");
}

static void split(const tg_node *n, size_t *outer, size_t *len, size_t *inner)
{
    const tg_tensor *x = IN(n, 0);
    int axis = MA(n)->axis;
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
    int axis = MA(n)->axis;
    if (axis < 0 && axis >= -(int)x->rank)
        axis += x->rank;
    if (axis < 0 || axis >= x->rank)
        return tg_fail(n, "axis %d out of range for %s", MA(n)->axis,
                       x->rank ? tg_shp_of(x).s : "a scalar");
    MA(n)->axis = axis;
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            y->shape[r++] = x->shape[i];
        else if (MA(n)->keepdim)
            y->shape[r++] = 1;
    }
    y->rank = (uint8_t)r;
    y->dtype = x->dtype;
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    n->scratch_bytes = outer * inner * sizeof(size_t); /* k* per output element */
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t outer, size_t len, size_t inner, const T *x,    \
                        T *y, size_t *arg)                                     \
    {                                                                          \
        for (size_t o = 0; o < outer; o++, x += len * inner, y += inner,       \
                    arg += inner) {                                            \
            for (size_t i = 0; i < inner; i++) {                               \
                y[i] = x[i];                                                   \
                arg[i] = 0;                                                    \
            }                                                                  \
            for (size_t k = 1; k < len; k++)                                   \
                for (size_t i = 0; i < inner; i++) {                           \
                    T v = x[k * inner + i], cur = y[i];                        \
                    /* strictly larger, or the first NaN; a NaN stays */       \
                    if (cur == cur && (v > cur || v != v)) {                   \
                        y[i] = v;                                              \
                        arg[i] = k;                                            \
                    }                                                          \
                }                                                              \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(size_t outer, size_t len, size_t inner, const T *g,    \
                        const size_t *arg, T *dx)                              \
    {                                                                          \
        for (size_t o = 0; o < outer; o++, dx += len * inner, g += inner,      \
                    arg += inner)                                              \
            for (size_t i = 0; i < inner; i++)                                 \
                dx[arg[i] * inner + i] += g[i];                                \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    TG_DISPATCH(OUT(n), fwd, outer, len, inner, IN(n, 0)->data, OUT(n)->data, n->scratch);
    return TG_OK;
}

static void backward(tg_node *n)
{
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    void *dx = tg_grad_sum(IN(n, 0)); /* zeroed unless another node wrote it */
    TG_DISPATCH(OUT(n), bwd, outer, len, inner, OUT(n)->grad, n->scratch, dx);
}

const tg_op tg_op_max_axis = {.name = "max_axis", .attr_size = sizeof(max_axis_attr),
                              .setup = setup, .forward = forward, .backward = backward,
                              .attr_str = attr_str};

tg_tensor *tg_max_axis(tg_tensor *x, int axis, bool keepdim)
{
    max_axis_attr at = {axis, keepdim};
    return tg_record(&tg_op_max_axis, 1, &x, &at);
}

/* max_axis: the maximum along one axis.  Seeing x as [outer, len, inner]
 * around the axis:
 *   y[o,i] = x[o,k*,i],  k* = the FIRST k with the maximal value, or the
 *            first NaN when the slice holds one (torch.max(x, dim)'s index)
 *   dx[o,k,i] = dy[o,i] at k = k*, 0 elsewhere
 * Forward keeps k* of every output element in scratch (recomputed on every
 * forward); backward reads only that, not x.
 * max_mask (below): the 0/1 mask of k* along the axis, of x's shape, with
 * derivative 0; max_axis's recorded backward is dy ⊙ max_mask(x), so it is
 * differentiable to any order (its second derivative is 0). */
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

/* x float, the axis in range (made positive) */
static int check_axis(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0);
    int axis = MA(n)->axis;
    if (axis < 0 && axis >= -(int)x->rank)
        axis += x->rank;
    if (axis < 0 || axis >= x->rank)
        return tg_fail(n, "axis %d out of range for %s", MA(n)->axis,
                       x->rank ? tg_shp_of(x).s : "a scalar");
    MA(n)->axis = axis;
    return TG_OK;
}

static int setup(tg_node *n)
{
    if (check_axis(n))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    int axis = MA(n)->axis;
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
    }                                                                          \
    static void mask_##S(size_t outer, size_t len, size_t inner,               \
                         const size_t *arg, T *y)                              \
    {                                                                          \
        memset(y, 0, outer * len * inner * sizeof(T));                         \
        for (size_t o = 0; o < outer; o++, y += len * inner, arg += inner)     \
            for (size_t i = 0; i < inner; i++)                                 \
                y[arg[i] * inner + i] = 1;                                     \
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

/* Recorded: dx = max_mask(x) ⊙ dy, dy given its size-1 axis back. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *g = gy;
    if (!MA(n)->keepdim) {
        size_t s[TG_MAX_RANK];
        for (int i = 0; i < x->rank; i++)
            s[i] = i == MA(n)->axis ? 1 : x->shape[i];
        g = tg_reshape(gy, x->rank, s);
    }
    gx[0] = tg_mul(tg_max_mask(x, MA(n)->axis), g);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_max_axis = {.name = "max_axis", .attr_size = sizeof(max_axis_attr),
                              .setup = setup, .forward = forward, .backward = backward,
                              .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_max_axis(tg_tensor *x, int axis, bool keepdim)
{
    max_axis_attr at = {axis, keepdim};
    return tg_record(&tg_op_max_axis, 1, &x, &at);
}

/* max_mask: y of x's shape, 1 at max_axis's k* of every slice, 0 elsewhere;
 * dx = 0.  Scratch: k* per slice, then the maxima (forward's kernel). */
static int mask_setup(tg_node *n)
{
    if (check_axis(n))
        return TG_ERR;
    MA(n)->keepdim = false;
    tg_out_like(n, 0);
    size_t outer, len, inner;
    split(n, &outer, &len, &inner);
    n->scratch_bytes = outer * inner * (sizeof(size_t) + sizeof(double));
    return TG_OK;
}

static int mask_forward(tg_node *n)
{
    size_t outer, len, inner, *arg = n->scratch;
    split(n, &outer, &len, &inner);
    TG_DISPATCH(OUT(n), fwd, outer, len, inner, IN(n, 0)->data, (void *)(arg + outer * inner),
                arg);
    TG_DISPATCH(OUT(n), mask, outer, len, inner, arg, OUT(n)->data);
    return TG_OK;
}

static void mask_backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0);
    int acc;
    if (!tg_wants_grad(x))
        return;
    void *dx = tg_grad_acc(x, &acc);
    if (!acc)
        memset(dx, 0, x->size * (x->dtype == TG_F32 ? sizeof(float) : sizeof(double)));
}

/* recorded: zero (gx[0] left NULL) */
static int mask_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)gy, (void)need, (void)gx;
    return TG_OK;
}

const tg_op tg_op_max_mask = {.name = "max_mask", .attr_size = sizeof(max_axis_attr),
                              .setup = mask_setup, .forward = mask_forward,
                              .backward = mask_backward, .attr_str = attr_str,
                              .vjp = mask_vjp};

tg_tensor *tg_max_mask(tg_tensor *x, int axis)
{
    max_axis_attr at = {axis, false};
    return tg_record(&tg_op_max_mask, 1, &x, &at);
}

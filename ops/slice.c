/* slice: the window [start, start+len) of one axis.  Seeing x as
 * [outer, dim, inner] around the axis and y as [outer, len, inner]:
 *   y[o, k, i] = x[o, start+k, i]
 *   dx[o, start+k, i] (+)= dy[o, k, i], and dx = 0 outside the window when
 *   dx is overwritten (acc = 0); added to, it is left alone there.
 * Each o is a contiguous block copy; blocks are split over the pool. */
#include "op.h"

#include <stdio.h>

typedef struct slice_attr {
    int axis;     /* setup makes a negative one positive */
    size_t start; /* first index of the window           */
    size_t len;   /* its length, >= 1                    */
} slice_attr;
TG_ATTR_FITS(slice_attr);
#define SA(n) ATTR(n, slice_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d start=%zu len=%zu", SA(n)->axis, SA(n)->start, SA(n)->len);
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    slice_attr *a = SA(n);
    if (x->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    int axis = a->axis < 0 ? a->axis + x->rank : a->axis;
    if (axis < 0 || axis >= x->rank)
        return tg_fail(n, "axis %d out of range for %s", a->axis, tg_shp_of(x).s);
    size_t dim = x->shape[axis];
    if (a->len == 0)
        return tg_fail(n, "length 0 along axis %d of %s", a->axis, tg_shp_of(x).s);
    if (a->start >= dim || a->len > dim - a->start)
        return tg_fail(n, "window start %zu length %zu is beyond axis %d of %s (size %zu)",
                       a->start, a->len, a->axis, tg_shp_of(x).s, dim);
    a->axis = axis;
    tg_out_like(n, 0);
    y->shape[axis] = a->len;
    return TG_OK;
}

typedef struct slice_job {
    size_t dim, inner, start, len;
    const void *src;
    void *dst;
    bool back;
    int acc;
} slice_job;

static void sizes(const tg_node *n, slice_job *j)
{
    const tg_tensor *x = IN(n, 0);
    const slice_attr *a = SA(n);
    j->inner = 1;
    for (int i = a->axis + 1; i < x->rank; i++)
        j->inner *= x->shape[i];
    j->dim = x->shape[a->axis];
    j->start = a->start;
    j->len = a->len;
}

#define KERNELS(T, S)                                                          \
    static void blocks_##S(void *ctx, size_t begin, size_t end)                \
    {                                                                          \
        const slice_job *j = ctx;                                              \
        size_t in = j->inner, w = j->len * in;                                 \
        for (size_t o = begin; o < end; o++) {                                 \
            if (!j->back) {                                                    \
                const T *x = (const T *)j->src + (o * j->dim + j->start) * in; \
                memcpy((T *)j->dst + o * w, x, w * sizeof(T));                 \
                continue;                                                      \
            }                                                                  \
            T *xo = (T *)j->dst + o * j->dim * in;                             \
            const T *g = (const T *)j->src + o * w;                            \
            T *win = xo + j->start * in;                                       \
            if (j->acc) {                                                      \
                for (size_t i = 0; i < w; i++)                                 \
                    win[i] += g[i];                                            \
                continue;                                                      \
            }                                                                  \
            memset(xo, 0, j->start * in * sizeof(T));                          \
            memcpy(win, g, w * sizeof(T));                                     \
            memset(win + w, 0, (j->dim - j->start - j->len) * in * sizeof(T)); \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void run(slice_job *j, const tg_tensor *x)
{
    size_t outer = x->size / (j->dim * j->inner);
    size_t grain = TG_ELEM_GRAIN / (j->dim * j->inner) + 1;
    tg_parallel_for(outer, grain, x->dtype == TG_F32 ? blocks_f32 : blocks_f64, j);
}

static int forward(tg_node *n)
{
    slice_job j;
    sizes(n, &j);
    j.src = IN(n, 0)->data;
    j.dst = OUT(n)->data;
    j.back = false;
    j.acc = 0;
    run(&j, IN(n, 0));
    return TG_OK;
}

static void backward(tg_node *n)
{
    slice_job j;
    sizes(n, &j);
    j.src = OUT(n)->grad;
    j.dst = tg_grad_acc(IN(n, 0), &j.acc);
    j.back = true;
    run(&j, IN(n, 0));
}

/* A zero constant of x's shape with `len` along axis (dropped with the
 * graph, like tg_const_like), or NULL with the tape's error set. */
static tg_tensor *zeros(const tg_tensor *x, int axis, size_t len)
{
    size_t s[TG_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        s[i] = i == axis ? len : x->shape[i];
    tg_tensor *t = tg_leaf_new(x->tape, TG_CONST, NULL, (tg_dtype)x->dtype, x->rank, s,
                               &x->tape->graph_arena);
    if (!t)
        tg_error(x->tape, "grad_graph: out of memory");
    return t;
}

/* Recorded: dx = concat(0 [start], dy, 0 [dim − start − len]) along the
 * axis (the zero blocks left out where empty). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *parts[3];
    const slice_attr *a = SA(n);
    size_t after = x->shape[a->axis] - a->start - a->len;
    int m = 0;
    if (a->start && !(parts[m++] = zeros(x, a->axis, a->start)))
        return TG_ERR;
    parts[m++] = gy;
    if (after && !(parts[m++] = zeros(x, a->axis, after)))
        return TG_ERR;
    gx[0] = m == 1 ? gy : tg_concat(m, parts, a->axis);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_slice = {.name = "slice", .attr_size = sizeof(slice_attr), .setup = setup,
                           .forward = forward, .backward = backward, .attr_str = attr_str,
                           .vjp = vjp};

tg_tensor *tg_slice(tg_tensor *x, int axis, size_t start, size_t length)
{
    slice_attr at = {axis, start, length};
    return tg_record(&tg_op_slice, 1, &x, &at);
}

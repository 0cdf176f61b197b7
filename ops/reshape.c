/* reshape: the same elements under a new shape (rank, shape).
 * The output shares the input's data, so forward has nothing to do; the
 * gradient is copied back:  dX = dY (same elements, the input's shape). */
#include "op.h"

#include <stdio.h>

typedef struct reshape_attr {
    int rank;                   /* 0..TG_MAX_RANK, checked by tg_reshape */
    size_t shape[TG_MAX_RANK];  /* as given                             */
} reshape_attr;
TG_ATTR_FITS(reshape_attr);

/* "2x3x4" (the sizes as given) into buf */
static void shape_text(const reshape_attr *a, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < a->rank && at < len; i++) {
        int w = snprintf(buf + at, len - at, i ? "x%zu" : "%zu", a->shape[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    char s[128];
    shape_text(ATTR(n, reshape_attr), s, sizeof s);
    snprintf(buf, len, "shape=%s", ATTR(n, reshape_attr)->rank ? s : "scalar");
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    const reshape_attr *a = ATTR(n, reshape_attr);
    char given[128];
    shape_text(a, given, sizeof given);
    size_t size = 1;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] == 0)
            return tg_fail(n, "size 0 of axis %d is not valid", i);
    for (int i = 0; i < a->rank; i++) {
        if (a->shape[i] > SIZE_MAX / size)
            return tg_fail(n, "the shape %s has more elements than SIZE_MAX", given);
        y->shape[i] = a->shape[i];
        size *= a->shape[i];
    }
    if (size != x->size)
        return tg_fail(n, "cannot reshape %s (%zu elements) to %zu elements (%s)",
                       tg_shp_of(x).s, x->size, size, a->rank ? given : "scalar");
    y->dtype = x->dtype;
    y->rank = (uint8_t)a->rank;
    n->view = 1;
    return TG_OK;
}

static int forward(tg_node *n)
{
    (void)n;
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void copy_##S(size_t len, const T *g, T *dx, int acc)               \
    {                                                                          \
        for (size_t i = 0; i < len; i++)                                       \
            dx[i] = acc ? dx[i] + g[i] : g[i];                                 \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void backward(tg_node *n)
{
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    TG_DISPATCH(OUT(n), copy, OUT(n)->size, OUT(n)->grad, dx, acc);
}

/* Recorded: dX = dY in X's shape. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_reshape(gy, IN(n, 0)->rank, IN(n, 0)->shape);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_reshape = {.name = "reshape", .vjp = vjp, .attr_size = sizeof(reshape_attr), .setup = setup,
                             .forward = forward, .backward = backward, .attr_str = attr_str};

tg_tensor *tg_reshape(tg_tensor *x, int rank, const size_t *shape)
{
    if (x && (rank < 0 || rank > TG_MAX_RANK || (rank > 0 && !shape))) {
        tg_error(x->tape, "reshape: rank %d outside 0..%d, or shape NULL", rank, TG_MAX_RANK);
        return NULL;
    }
    reshape_attr at = {rank, {0}};
    for (int i = 0; x && i < rank; i++)
        at.shape[i] = shape[i];
    return tg_record(&tg_op_reshape, 1, &x, &at);
}

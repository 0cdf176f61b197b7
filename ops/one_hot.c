/* one_hot: Y[..., j] = 1 where labels[...] = j, else 0, for labels (i32, any
 * shape) and j in [0, classes); Y is f32 or f64 (attr dtype), shape
 * labels.shape + [classes].  With an ignore index (tg_one_hot_ignore) the
 * rows whose label is that index are all 0.  A label outside [0, classes)
 * (other than the ignored one) fails forward, naming it and its position.
 * No gradient flows to the labels (they are integers): backward does
 * nothing, and so does the recorded backward.  The recorded gradients of
 * softmax_ce are made of it. */
#include "op.h"

#include <stdio.h>

typedef struct one_hot_attr {
    int classes;     /* >= 1                                  */
    int dtype;       /* TG_F32 or TG_F64                      */
    bool has_ignore; /* rows labelled `ignore` are all zero   */
    int32_t ignore;
} one_hot_attr;
TG_ATTR_FITS(one_hot_attr);
#define OA(n) ATTR(n, one_hot_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    if (OA(n)->has_ignore)
        snprintf(buf, len, "classes=%d ignore=%d", OA(n)->classes, (int)OA(n)->ignore);
    else
        snprintf(buf, len, "classes=%d", OA(n)->classes);
}

static int setup(tg_node *n)
{
    if (tg_need_i32(n, 0))
        return TG_ERR;
    tg_tensor *l = IN(n, 0), *y = OUT(n);
    const one_hot_attr *a = OA(n);
    if (a->classes < 1)
        return tg_fail(n, "classes must be >= 1, got %d (labels %s)", a->classes,
                       tg_shp_of(l).s);
    if (a->dtype != TG_F32 && a->dtype != TG_F64)
        return tg_fail(n, "dtype must be f32 or f64, got %d (labels %s)", a->dtype,
                       tg_shp_of(l).s);
    if (l->rank >= TG_MAX_RANK)
        return tg_fail(n, "labels %s have rank %d; the output adds an axis (at most %d)",
                       tg_shp_of(l).s, l->rank, TG_MAX_RANK);
    y->dtype = (uint8_t)a->dtype;
    y->rank = (uint8_t)(l->rank + 1);
    for (int i = 0; i < l->rank; i++)
        y->shape[i] = l->shape[i];
    y->shape[l->rank] = (size_t)a->classes;
    return TG_OK;
}

static int forward(tg_node *n)
{
    const int32_t *lab = IN(n, 0)->data;
    tg_tensor *y = OUT(n);
    size_t rows = IN(n, 0)->size, c = (size_t)OA(n)->classes;
    memset(y->data, 0, y->size * tg_dtype_size((tg_dtype)y->dtype));
    for (size_t i = 0; i < rows; i++) {
        int32_t v = lab[i];
        if (OA(n)->has_ignore && v == OA(n)->ignore)
            continue;
        if (v < 0 || (size_t)v >= c)
            return tg_fail(n, "label %d at position %zu is outside [0, %zu)", (int)v, i, c);
        if (y->dtype == TG_F32)
            ((float *)y->data)[i * c + (size_t)v] = 1;
        else
            ((double *)y->data)[i * c + (size_t)v] = 1;
    }
    return TG_OK;
}

static void backward(tg_node *n) { (void)n; /* integer labels: no gradient */ }

static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)n, (void)gy, (void)need, (void)gx;
    return TG_OK;
}

const tg_op tg_op_one_hot = {.name = "one_hot", .attr_size = sizeof(one_hot_attr),
                             .setup = setup, .forward = forward, .backward = backward,
                             .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_one_hot(tg_tensor *labels, int classes, tg_dtype dtype)
{
    one_hot_attr at = {classes, (int)dtype, false, 0};
    return tg_record(&tg_op_one_hot, 1, &labels, &at);
}

tg_tensor *tg_one_hot_ignore(tg_tensor *labels, int classes, int ignore_index, tg_dtype dtype)
{
    one_hot_attr at = {classes, (int)dtype, true, ignore_index};
    return tg_record(&tg_op_one_hot, 1, &labels, &at);
}

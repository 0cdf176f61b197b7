/* concat: inputs x_0..x_{m-1} (m = 1..TG_MAX_IN) joined along one axis.
 * Seeing x_i as [outer, L_i, inner] and y as [outer, ΣL, inner], with
 * off_i = Σ_{j<i} L_j:
 *   y[o, off_i + k, i'] = x_i[o, k, i']
 *   dx_i[o, k, i'] (+)= dy[o, off_i + k, i']   (a block copy per (o, i))
 * Every element of dx_i is written, so acc = 0 overwrites.  The same tensor
 * in two slots gets both blocks (the second tg_grad_acc says acc = 1).
 * tg_concat records a tree of these nodes for more than TG_MAX_IN inputs,
 * and tg_stack reshapes its inputs and calls tg_concat. */
#include "op.h"

#include <stdio.h>

typedef struct concat_attr {
    int axis; /* setup makes a negative one positive */
} concat_attr;
TG_ATTR_FITS(concat_attr);

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "axis=%d", ATTR(n, concat_attr)->axis);
}

/* Whether xs[0..m) can be joined along axis (negative: from the end): 0 and
 * *out_axis the axis made positive, or -1 with the reason in msg.  Input
 * numbers in msg are offset by `base` (their place in the caller's list). */
static int check(tg_tensor *const *xs, int m, int axis, int base, int *out_axis, char *msg,
                 size_t len)
{
    const tg_tensor *x0 = xs[0];
    if (x0->rank < 1) {
        snprintf(msg, len, "input %d must have rank >= 1, got a scalar", base);
        return -1;
    }
    int a = axis < 0 ? axis + x0->rank : axis;
    if (a < 0 || a >= x0->rank) {
        snprintf(msg, len, "axis %d out of range for %s", axis, tg_shp_of(x0).s);
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < m; i++) {
        const tg_tensor *x = xs[i];
        bool same = x->rank == x0->rank && x->dtype == x0->dtype;
        for (int k = 0; same && k < x->rank; k++)
            same = k == a || x->shape[k] == x0->shape[k];
        if (!same) {
            snprintf(msg, len, "input %d (%s %s) does not match input %d (%s %s) off axis %d",
                     base + i, tg_dtype_name((tg_dtype)x->dtype), tg_shp_of(x).s, base,
                     tg_dtype_name((tg_dtype)x0->dtype), tg_shp_of(x0).s, axis);
            return -1;
        }
        if (x->shape[a] > SIZE_MAX - total) {
            snprintf(msg, len, "the joined axis %d overflows", axis);
            return -1;
        }
        total += x->shape[a];
    }
    *out_axis = a;
    return 0;
}

static int setup(tg_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (tg_need_float(n, i))
            return TG_ERR;
    char msg[256];
    int axis;
    if (check(n->in, n->n_in, ATTR(n, concat_attr)->axis, 0, &axis, msg, sizeof msg))
        return tg_fail(n, "%s", msg);
    ATTR(n, concat_attr)->axis = axis;
    tg_out_like(n, 0);
    for (int i = 1; i < n->n_in; i++)
        OUT(n)->shape[axis] += IN(n, i)->shape[axis];
    return TG_OK;
}

/* outer (axes before), inner (after) and the joined length of the output */
static void sizes(const tg_node *n, size_t *outer, size_t *inner, size_t *total)
{
    const tg_tensor *y = OUT(n);
    int axis = ATTR(n, concat_attr)->axis;
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= y->shape[i];
    for (int i = axis + 1; i < y->rank; i++)
        *inner *= y->shape[i];
    *total = y->shape[axis];
}

#define KERNELS(T, S)                                                          \
    /* y's row o, at column off, holds len elements of x's row o */            \
    static void put_##S(size_t outer, size_t w, size_t yw, size_t off,         \
                        const T *x, T *y)                                      \
    {                                                                          \
        for (size_t o = 0; o < outer; o++)                                     \
            memcpy(y + o * yw + off, x + o * w, w * sizeof(T));                \
    }                                                                          \
    static void get_##S(size_t outer, size_t w, size_t yw, size_t off,         \
                        const T *g, T *dx, int acc)                            \
    {                                                                          \
        for (size_t o = 0; o < outer; o++) {                                   \
            const T *go = g + o * yw + off;                                    \
            T *d = dx + o * w;                                                 \
            if (acc)                                                           \
                for (size_t i = 0; i < w; i++)                                 \
                    d[i] += go[i];                                             \
            else                                                               \
                memcpy(d, go, w * sizeof(T));                                  \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    size_t outer, inner, total, off = 0;
    sizes(n, &outer, &inner, &total);
    int axis = ATTR(n, concat_attr)->axis;
    for (int i = 0; i < n->n_in; i++) {
        size_t w = IN(n, i)->shape[axis] * inner;
        TG_DISPATCH(OUT(n), put, outer, w, total * inner, off, IN(n, i)->data, OUT(n)->data);
        off += w;
    }
    return TG_OK;
}

static void backward(tg_node *n)
{
    size_t outer, inner, total, off = 0;
    sizes(n, &outer, &inner, &total);
    int axis = ATTR(n, concat_attr)->axis;
    for (int i = 0; i < n->n_in; i++) {
        tg_tensor *x = IN(n, i);
        size_t w = x->shape[axis] * inner;
        if (tg_wants_grad(x)) {
            int acc;
            void *dx = tg_grad_acc(x, &acc);
            TG_DISPATCH(x, get, outer, w, total * inner, off, OUT(n)->grad, dx, acc);
        }
        off += w;
    }
}

/* Recorded: dx_i = the slice [off_i, off_i + L_i) of dy along the axis
 * (dy itself for a single input); a tensor in two slots gets both. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    int axis = ATTR(n, concat_attr)->axis;
    size_t off = 0, total = OUT(n)->shape[axis];
    for (int i = 0; i < n->n_in; i++) {
        size_t len = IN(n, i)->shape[axis];
        if (need >> i & 1) {
            gx[i] = len == total ? gy : tg_slice(gy, axis, off, len);
            if (!gx[i])
                return TG_ERR;
        }
        off += len;
    }
    return TG_OK;
}

const tg_op tg_op_concat = {.name = "concat", .attr_size = sizeof(concat_attr), .setup = setup,
                            .forward = forward, .backward = backward, .attr_str = attr_str,
                            .vjp = vjp};

/* xs[0..m) joined along axis, every input first viewed with a size-1 axis
 * inserted at `insert` when insert >= 0 (tg_stack): one node for m <= 5,
 * else parts of 5^k inputs (the largest k with 5^k < m) each joined the
 * same way, then those (at most 5) joined.  The inputs are checked. */
static tg_tensor *join(int m, tg_tensor *const *xs, int axis, int insert)
{
    if (m == 1 && insert < 0)
        return xs[0];
    tg_tensor *parts[TG_MAX_IN];
    int np = 0;
    if (m <= TG_MAX_IN) {
        for (int i = 0; i < m; i++) {
            tg_tensor *x = xs[i];
            if (insert >= 0) {
                size_t s[TG_MAX_RANK];
                for (int k = 0, j = 0; k <= x->rank; k++)
                    s[k] = k == insert ? 1 : x->shape[j++];
                x = tg_reshape(x, x->rank + 1, s);
                if (!x)
                    return NULL;
            }
            parts[np++] = x;
        }
        if (m == 1)
            return parts[0]; /* tg_stack of one: the reshape alone */
    } else {
        int p = 1;
        while (p * TG_MAX_IN < m)
            p *= TG_MAX_IN;
        for (int i = 0; i < m; i += p)
            if (!(parts[np++] = join(m - i < p ? m - i : p, xs + i, axis, insert)))
                return NULL;
    }
    concat_attr at = {axis};
    return tg_record(&tg_op_concat, np, parts, &at);
}

/* The checks shared by tg_concat and tg_stack: the tape of the first input
 * that is not NULL, or NULL (xs NULL or every input NULL: no tape to tell). */
static tg_tape *first_tape(const char *fn, int n, tg_tensor *const *xs, int *bad)
{
    *bad = 1;
    if (!xs || n < 1)
        return NULL;
    tg_tape *tape = NULL;
    for (int i = 0; i < n && !tape; i++)
        tape = xs[i] ? xs[i]->tape : NULL;
    if (!tape)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (!xs[i]) {
            tg_error(tape, "%s: input %d is NULL", fn, i);
            return tape;
        }
        if (xs[i]->tape != tape) {
            tg_error(tape, "%s: inputs belong to different tapes", fn);
            return tape;
        }
        if (tg_check_alive(xs[i], fn))
            return tape;
        if (xs[i]->dtype != TG_F32 && xs[i]->dtype != TG_F64) {
            tg_error(tape, "%s: input %d must be f32 or f64, got %s %s", fn, i,
                     tg_dtype_name((tg_dtype)xs[i]->dtype), tg_shp_of(xs[i]).s);
            return tape;
        }
    }
    *bad = 0;
    return tape;
}

tg_tensor *tg_concat(int n, tg_tensor *const *xs, int axis)
{
    int bad;
    tg_tape *tape = first_tape("concat", n, xs, &bad);
    if (bad)
        return NULL;
    if (n > TG_MAX_IN) { /* check the whole list first: the tree then records whole */
        char msg[256];
        int a;
        if (check(xs, n, axis, 0, &a, msg, sizeof msg)) {
            tg_error(tape, "concat: %s", msg);
            return NULL;
        }
    }
    if (n == 1) { /* one input: a copy node */
        concat_attr at = {axis};
        return tg_record(&tg_op_concat, 1, xs, &at);
    }
    return join(n, xs, axis, -1);
}

tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis)
{
    int bad;
    tg_tape *tape = first_tape("stack", n, xs, &bad);
    if (bad)
        return NULL;
    int r = xs[0]->rank;
    if (r + 1 > TG_MAX_RANK) {
        tg_error(tape, "stack: inputs of %s would give rank %d (above %d)", tg_shp_of(xs[0]).s,
                 r + 1, TG_MAX_RANK);
        return NULL;
    }
    int a = axis < 0 ? axis + r + 1 : axis;
    if (a < 0 || a > r) {
        tg_error(tape, "stack: axis %d out of range for inputs %s (stacked rank %d)", axis,
                 tg_shp_of(xs[0]).s, r + 1);
        return NULL;
    }
    for (int i = 1; i < n; i++) {
        bool same = xs[i]->rank == r && xs[i]->dtype == xs[0]->dtype;
        for (int k = 0; same && k < r; k++)
            same = xs[i]->shape[k] == xs[0]->shape[k];
        if (!same) {
            tg_error(tape, "stack: input %d (%s %s) differs from input 0 (%s %s)", i,
                     tg_dtype_name((tg_dtype)xs[i]->dtype), tg_shp_of(xs[i]).s,
                     tg_dtype_name((tg_dtype)xs[0]->dtype), tg_shp_of(xs[0]).s);
            return NULL;
        }
    }
    return join(n, xs, a, a);
}

/* maximum, minimum: elementwise with NumPy broadcasting (ops/bcast.h).
 *   maximum: y = a > b ? a : b     da = dy·wa, db = dy·wb
 *   minimum: y = a < b ? a : b
 * The larger (maximum) or smaller (minimum) input gets dy and the other 0;
 * at a tie (a = b) each gets dy/2 (torch.maximum / torch.minimum).  NaN in
 * either input gives NaN, and then both inputs get dy: the weights are
 * torch 1.13's, wa = !(a < b), wb = !(a > b) for maximum (swapped for
 * minimum), both false comparisons with NaN.  Each da, db is summed over
 * the axes along which its input was broadcast. */
#include "bcast.h"

extern const tg_op tg_op_maximum;
#define MAX(n) ((n)->op == &tg_op_maximum)

static int setup(tg_node *n) { return tg_bcast_setup(n); }

/* the result (NaN when x or z is) and the weights of x and z in the gradient */
#define PICK(x, z, mx) (((mx) ? (x) > (z) : (x) < (z)) || (x) != (x) ? (x) : (z))
#define WEIGHT(x, z, mx) ((x) == (z) ? 0.5 : ((mx) ? !((x) < (z)) : !((x) > (z))))

#define KERNELS(T, S)                                                          \
    static void fwd_##S(const tg_bcast *p, const T *a, const T *b, T *y, bool mx) \
    {                                                                          \
        size_t len = p->dim[0] * p->dim[1] * p->dim[2] * p->dim[3];            \
        if (p->same) {                                                         \
            for (size_t o = 0; o < len; o++)                                   \
                y[o] = PICK(a[o], b[o], mx);                                   \
        } else {                                                               \
            EACH(p, { y[o] = PICK(a[ia], b[ib], mx); })                        \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(const tg_bcast *p, const T *a, const T *b, const T *dy, \
                        T *da, T *db, bool mx)                                 \
    {                                                                          \
        EACH(p, {                                                              \
            T x = a[ia], z = b[ib], g = dy[o];                                 \
            if (da)                                                            \
                da[ia] += g * (T)WEIGHT(x, z, mx);                             \
            if (db)                                                            \
                db[ib] += g * (T)WEIGHT(z, x, mx);                             \
        })                                                                     \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_bcast p;
    tg_bcast_plan(IN(n, 0), IN(n, 1), &p);
    TG_DISPATCH(OUT(n), fwd, &p, IN(n, 0)->data, IN(n, 1)->data, OUT(n)->data, MAX(n));
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1), *y = OUT(n);
    tg_bcast p;
    tg_bcast_plan(a, b, &p);
    void *da = tg_wants_grad(a) ? tg_grad_sum(a) : NULL;
    void *db = tg_wants_grad(b) && b != a ? tg_grad_sum(b) : NULL;
    if (a == b && tg_wants_grad(a)) /* maximum(x, x): both halves land in one buffer */
        db = da;
    TG_DISPATCH(y, bwd, &p, a->data, b->data, y->grad, da, db, MAX(n));
}

/* Recorded: wa = step(a − b, ½) for maximum (step(b − a, ½) for minimum),
 * wb = 1 − wa; da = dy·wa, db = dy·wb summed to each input's shape.  Where a
 * or b is NaN the weights are NaN (backward's are 1). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    tg_tensor *wa = tg_step(MAX(n) ? tg_sub(a, b) : tg_sub(b, a), 0.5);
    if (need & 1)
        gx[0] = tg_sum_to(tg_mul(gy, wa), a);
    if (need & 2)
        gx[1] = tg_sum_to(tg_mul(gy, tg_add_scalar(tg_neg(wa), 1)), b);
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_maximum = {.name = "maximum", .grad_reads = 0x3, .setup = setup,
                             .forward = forward, .backward = backward, .vjp = vjp};
const tg_op tg_op_minimum = {.name = "minimum", .grad_reads = 0x3, .setup = setup,
                             .forward = forward, .backward = backward, .vjp = vjp};

tg_tensor *tg_maximum(tg_tensor *a, tg_tensor *b)
{
    return tg_record(&tg_op_maximum, 2, (tg_tensor *[]){a, b}, NULL);
}

tg_tensor *tg_minimum(tg_tensor *a, tg_tensor *b)
{
    return tg_record(&tg_op_minimum, 2, (tg_tensor *[]){a, b}, NULL);
}

/* add, sub, mul, div with NumPy broadcasting.
 *   y = a + b:  da = dy          db = dy
 *   y = a − b:  da = dy          db = −dy
 *   y = a · b:  da = dy·b        db = dy·a
 *   y = a / b:  da = dy / b      db = −dy·a / b²
 * Each da, db is summed over the axes along which its input was broadcast. */
#include "bcast.h"

static int setup(tg_node *n) { return tg_bcast_setup(n); }

/* Forward y = F(x, z) and backward da += GA, db += GB, with g = dy,
 * x = a, z = b, v = y at the element. */
#define BINARY(NAME, T, S, F, GA, GB)                                          \
    static void NAME##_fwd_##S(const tg_bcast *p, const T *a, const T *b, T *y) \
    {                                                                          \
        size_t len = p->dim[0] * p->dim[1] * p->dim[2] * p->dim[3];            \
        if (p->same) {                                           \
            for (size_t o = 0; o < len; o++) {                                 \
                T x = a[o], z = b[o];                                          \
                y[o] = F;                                                      \
            }                                                                  \
        } else {                                                               \
            EACH(p, { T x = a[ia], z = b[ib]; y[o] = F; })                     \
        }                                                                      \
    }                                                                          \
    static void NAME##_bwd_##S(const tg_bcast *p, const T *a, const T *b,      \
                               const T *y, const T *dy, T *da, T *db)          \
    {                                                                          \
        EACH(p, {                                                              \
            T x = a[ia], z = b[ib], v = y[o], g = dy[o];                       \
            (void)x, (void)z, (void)v;                                         \
            if (da) da[ia] += GA;                                              \
            if (db) db[ib] += GB;                                              \
        })                                                                     \
    }

#define ALL(T, S)                                                              \
    BINARY(add, T, S, x + z, g, g)                                             \
    BINARY(sub, T, S, x - z, g, -g)                                            \
    BINARY(mul, T, S, x * z, g * z, g * x)                                     \
    BINARY(div, T, S, x / z, g / z, -g * v / z)
ALL(float, f32)
ALL(double, f64)

#define DEFINE_OP(NAME, READS)                                                 \
    static int NAME##_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx); \
    static int NAME##_forward(tg_node *n)                                      \
    {                                                                          \
        tg_bcast p;                                                            \
        tg_bcast_plan(IN(n, 0), IN(n, 1), &p);                                 \
        TG_DISPATCH(OUT(n), NAME##_fwd, &p, IN(n, 0)->data, IN(n, 1)->data,    \
                    OUT(n)->data);                                             \
        return TG_OK;                                                          \
    }                                                                          \
    static void NAME##_backward(tg_node *n)                                    \
    {                                                                          \
        tg_tensor *a = IN(n, 0), *b = IN(n, 1), *y = OUT(n);                   \
        tg_bcast p;                                                            \
        tg_bcast_plan(a, b, &p);                                               \
        void *da = tg_wants_grad(a) ? tg_grad_sum(a) : NULL;                   \
        void *db = tg_wants_grad(b) && b != a ? tg_grad_sum(b) : NULL;         \
        if (a == b && tg_wants_grad(a)) /* x∘x: both slots feed one buffer */  \
            db = da;                                                           \
        TG_DISPATCH(y, NAME##_bwd, &p, a->data, b->data, y->data, y->grad, da, \
                    db);                                                       \
    }                                                                          \
    const tg_op tg_op_##NAME = {.name = #NAME, .grad_reads = READS,          \
                                .setup = setup,                                \
                                .forward = NAME##_forward,                    \
                                .backward = NAME##_backward,                  \
                                .vjp = NAME##_vjp};                           \
    tg_tensor *tg_##NAME(tg_tensor *a, tg_tensor *b)                           \
    {                                                                          \
        return tg_record(&tg_op_##NAME, 2, (tg_tensor *[]){a, b}, NULL);       \
    }
DEFINE_OP(add, 0)
DEFINE_OP(sub, 0)
DEFINE_OP(mul, 0x3)
DEFINE_OP(div, 0x2)

/* Recorded: the same rules with tg_ ops, each summed back to its input's
 * shape (tg_sum_to).  Returns TG_ERR when a needed gradient failed. */
static int done(unsigned need, tg_tensor **gx)
{
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

static int add_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    for (int i = 0; i < 2; i++)
        if (need >> i & 1)
            gx[i] = tg_sum_to(gy, IN(n, i));
    return done(need, gx);
}

static int sub_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    if (need & 1)
        gx[0] = tg_sum_to(gy, IN(n, 0));
    if (need & 2)
        gx[1] = tg_sum_to(tg_neg(gy), IN(n, 1));
    return done(need, gx);
}

static int mul_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    if (need & 1)
        gx[0] = tg_sum_to(tg_mul(gy, b), a);
    if (need & 2)
        gx[1] = tg_sum_to(tg_mul(gy, a), b);
    return done(need, gx);
}

static int div_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    if (need & 1)
        gx[0] = tg_sum_to(tg_div(gy, b), a);
    if (need & 2) /* −dy·y / b */
        gx[1] = tg_sum_to(tg_neg(tg_div(tg_mul(gy, OUT(n)), b)), b);
    return done(need, gx);
}

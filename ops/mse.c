/* mse: L = s · Σ (p − t)², s = (½ if TG_HALF) / (1, count or batch by flags)
 *   dp = 2s (p − t) · dL        dt = −2s (p − t) · dL */
#include "loss.h"

static int setup(tg_node *n) { return tg_setup_pair_loss(n, "prediction", TG_HALF); }

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t len, const T *p, const T *t, T *y, double s)    \
    {                                                                          \
        double sum = 0;                                                        \
        for (size_t i = 0; i < len; i++)                                       \
            sum += (double)(p[i] - t[i]) * (double)(p[i] - t[i]);              \
        *y = (T)(s * sum);                                                     \
    }                                                                          \
    static void bwd_##S(size_t len, const T *p, const T *t, T k, T *d, int acc) \
    {                                                                          \
        for (size_t i = 0; i < len; i++) {                                     \
            T v = k * (p[i] - t[i]);                                           \
            d[i] = acc ? d[i] + v : v;                                         \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    TG_DISPATCH(OUT(n), fwd, IN(n, 0)->size, IN(n, 0)->data, IN(n, 1)->data, OUT(n)->data,
                LOSS(n)->scale);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *p = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    double g = y->dtype == TG_F32 ? *(float *)y->grad : *(double *)y->grad;
    double k = 2 * LOSS(n)->scale * g;
    int acc;
    for (int side = 0; side < 2; side++) { /* side 1: the target, sign flipped */
        tg_tensor *x = IN(n, side);
        if (!tg_wants_grad(x))
            continue;
        void *d = tg_grad_acc(x, &acc);
        double ks = side ? -k : k;
        if (y->dtype == TG_F32)
            bwd_f32(p->size, p->data, t->data, (float)ks, d, acc);
        else
            bwd_f64(p->size, p->data, t->data, ks, d, acc);
    }
}

/* Recorded: dp = 2s (p − t) · dL, dt = −dp. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *d = tg_mul(tg_scale(tg_sub(IN(n, 0), IN(n, 1)), 2 * LOSS(n)->scale), gy);
    if (need & 1)
        gx[0] = d;
    if (need & 2)
        gx[1] = tg_neg(d);
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_mse = {.name = "mse", .vjp = vjp, .grad_reads = 0x3, .attr_size = sizeof(loss_attr),
                         .setup = setup, .forward = forward, .backward = backward,
                         .attr_str = tg_loss_attr_str};

tg_tensor *tg_mse(tg_tensor *pred, tg_tensor *target, int flags)
{
    loss_attr at = {flags, 0};
    return tg_record(&tg_op_mse, 2, (tg_tensor *[]){pred, target}, &at);
}

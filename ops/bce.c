/* Binary cross-entropy, elementwise over same-shaped p (or z) and t:
 *   bce on probabilities:  L = −s Σ t·ln⁺p + (1−t)·ln⁺(1−p),  ln⁺ = max(ln, −100)
 *     dp = s (p − t) / max(p(1−p), 1e-12) · dL     dt = s (ln⁺(1−p) − ln⁺p) · dL
 *   bce on logits:         L = s Σ max(z,0) − z·t + ln(1 + e^−|z|)
 *     dz = s (σ(z) − t) · dL                       dt = −s z · dL
 * The clamps (as in PyTorch) keep p = 0 and p = 1 finite.  A probability
 * outside [0, 1] (or NaN) is refused by forward, at record and at replay:
 * it would give a meaningless, even negative, loss. */
#include "loss.h"

#include <tgmath.h>

extern const tg_op tg_op_bce_logits;
#define LOGITS(n) ((n)->op == &tg_op_bce_logits)

static int setup(tg_node *n) { return tg_setup_pair_loss(n, "input", 0); }

#define KERNELS(T, S)                                                          \
    static T ln_##S(T x) { T l = log(x); return l > -100 ? l : -100; }         \
    static double fwd_##S(size_t len, const T *x, const T *t, bool logits)     \
    {                                                                          \
        double sum = 0;                                                        \
        for (size_t i = 0; i < len; i++) {                                     \
            T v = x[i];                                                        \
            sum += logits ? (double)((v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)))) \
                          : -(double)(t[i] * ln_##S(v) + (1 - t[i]) * ln_##S(1 - v)); \
        }                                                                      \
        return sum;                                                            \
    }                                                                          \
    static void dx_##S(size_t len, const T *x, const T *t, T k, T *d, int acc, \
                       bool logits)                                            \
    {                                                                          \
        for (size_t i = 0; i < len; i++) {                                     \
            T v = x[i], den = v * (1 - v);                                     \
            T g = logits ? k * (1 / (1 + exp(-v)) - t[i])                      \
                         : k * (v - t[i]) / (den > (T)1e-12 ? den : (T)1e-12); \
            d[i] = acc ? d[i] + g : g;                                         \
        }                                                                      \
    }                                                                          \
    static void dt_##S(size_t len, const T *x, T k, T *d, int acc, bool logits) \
    {                                                                          \
        for (size_t i = 0; i < len; i++) {                                     \
            T v = x[i];                                                        \
            T g = logits ? -k * v : k * (ln_##S(1 - v) - ln_##S(v));           \
            d[i] = acc ? d[i] + g : g;                                         \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

/* The index of the first element of p outside [0, 1] or NaN, else SIZE_MAX. */
static size_t first_improbable(const tg_tensor *p)
{
    for (size_t i = 0; i < p->size; i++) {
        double v = p->dtype == TG_F32 ? ((const float *)p->data)[i] : ((const double *)p->data)[i];
        if (!(v >= 0 && v <= 1))
            return i;
    }
    return SIZE_MAX;
}

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    size_t bad = LOGITS(n) ? SIZE_MAX : first_improbable(x);
    if (bad != SIZE_MAX)
        return tg_fail(n, "probability %g at element %zu of %s is outside [0, 1]",
                       x->dtype == TG_F32 ? (double)((const float *)x->data)[bad]
                                          : ((const double *)x->data)[bad],
                       bad, tg_shp_of(x).s);
    if (y->dtype == TG_F32)
        *(float *)y->data = (float)(LOSS(n)->scale * fwd_f32(x->size, x->data, t->data, LOGITS(n)));
    else
        *(double *)y->data = LOSS(n)->scale * fwd_f64(x->size, x->data, t->data, LOGITS(n));
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    bool f32 = y->dtype == TG_F32;
    double k = LOSS(n)->scale * (f32 ? *(float *)y->grad : *(double *)y->grad);
    int acc;
    if (tg_wants_grad(x)) {
        void *d = tg_grad_acc(x, &acc);
        if (f32)
            dx_f32(x->size, x->data, t->data, (float)k, d, acc, LOGITS(n));
        else
            dx_f64(x->size, x->data, t->data, k, d, acc, LOGITS(n));
    }
    if (tg_wants_grad(t)) {
        void *d = tg_grad_acc(t, &acc);
        if (f32)
            dt_f32(x->size, x->data, (float)k, d, acc, LOGITS(n));
        else
            dt_f64(x->size, x->data, k, d, acc, LOGITS(n));
    }
}

/* Recorded, as backward (dL = gy):
 *   bce:        dp = s (p − t) / clamp(p − p², 1e-12, ∞) dL,
 *               dt = s (ln⁺(1 − p) − ln⁺ p) dL,  ln⁺ = clamp(log, −100, ∞)
 *   bce_logits: dz = s (σ(z) − t) dL,  dt = −s z dL */
static tg_tensor *ln_plus(tg_tensor *x) { return tg_clamp(tg_log(x), -100, INFINITY); }

static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *x = IN(n, 0), *t = IN(n, 1);
    double s = LOSS(n)->scale;
    if (LOGITS(n)) {
        if (need & 1)
            gx[0] = tg_mul(tg_scale(tg_sub(tg_sigmoid(x), t), s), gy);
        if (need & 2)
            gx[1] = tg_mul(tg_scale(x, -s), gy);
    } else {
        if (need & 1)
            gx[0] = tg_mul(tg_scale(tg_div(tg_sub(x, t),
                                           tg_clamp(tg_sub(x, tg_mul(x, x)), 1e-12, INFINITY)),
                                    s),
                           gy);
        if (need & 2)
            gx[1] = tg_mul(tg_scale(tg_sub(ln_plus(tg_add_scalar(tg_neg(x), 1)), ln_plus(x)), s),
                           gy);
    }
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_bce = {.name = "bce", .vjp = vjp, .grad_reads = 0x3, .attr_size = sizeof(loss_attr),
                         .setup = setup, .forward = forward, .backward = backward,
                         .attr_str = tg_loss_attr_str};
const tg_op tg_op_bce_logits = {.name = "bce_logits", .vjp = vjp, .grad_reads = 0x3,
                                .attr_size = sizeof(loss_attr), .setup = setup, .forward = forward,
                                .backward = backward, .attr_str = tg_loss_attr_str};

tg_tensor *tg_bce(tg_tensor *prob, tg_tensor *target, int flags)
{
    loss_attr at = {flags, 0};
    return tg_record(&tg_op_bce, 2, (tg_tensor *[]){prob, target}, &at);
}

tg_tensor *tg_bce_logits(tg_tensor *logits, tg_tensor *target, int flags)
{
    loss_attr at = {flags, 0};
    return tg_record(&tg_op_bce_logits, 2, (tg_tensor *[]){logits, target}, &at);
}

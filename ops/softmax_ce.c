/* Softmax cross-entropy on logits Z [n,c], fused and stable.  Per row i,
 * with P = softmax(Z) and lse_i = log Σ_j e^{z_ij} (max-subtracted):
 *   labels (i32 [n]):   L = s Σ_i (lse_i − z_{i,t_i})
 *                       dZ = s (P − onehot(t)) · dL
 *   targets T [n,c]:    L = s Σ_ij t_ij (lse_i − z_ij)
 *                       dZ = s (P ⊙ Σ_j t_ij − T) · dL,   dT = s (lse − Z) · dL
 * s = 1 (TG_SUM) or 1/n (TG_MEAN, TG_BATCH_MEAN).  Scratch keeps P and lse
 * and, with labels, a copy of the labels forward checked: backward uses
 * those, never labels changed since (out of range until a replay refuses
 * them), as gather_rows and class_means do. */
#include "loss.h"

#include "vmath.h"

#include <tgmath.h>

extern const tg_op tg_op_softmax_ce;
#define LABELS(n) ((n)->op == &tg_op_softmax_ce)

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_rank(n, 0, 2))
        return TG_ERR;
    tg_tensor *z = IN(n, 0), *t = IN(n, 1);
    size_t rows = z->shape[0], c = z->shape[1];
    if (LABELS(n)) {
        if (tg_need_i32(n, 1))
            return TG_ERR;
        if (t->rank != 1 || t->shape[0] != rows)
            return tg_fail(n, "labels must be [%zu] for logits %s, got %s", rows,
                           tg_shp_of(z).s, tg_shp_of(t).s);
    } else {
        if (tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
            return TG_ERR;
        if (t->rank != 2 || t->shape[0] != rows || t->shape[1] != c)
            return tg_fail(n, "targets must be %s like the logits, got %s", tg_shp_of(z).s,
                           tg_shp_of(t).s);
    }
    tg_out_scalar(n, z->dtype);
    /* P [rows, c], lse [rows], then the labels of the last forward */
    n->scratch_bytes = (rows * c + rows) * tg_dtype_size((tg_dtype)z->dtype) +
                       (LABELS(n) ? rows * sizeof(int32_t) : 0);
    return tg_loss_scale(n, 0, rows, rows);
}

/* The copy of the labels that forward checked, after P and lse in scratch. */
static int32_t *saved_labels(const tg_node *n)
{
    const tg_tensor *z = IN(n, 0);
    size_t floats = z->shape[0] * z->shape[1] + z->shape[0];
    return (int32_t *)(void *)((char *)n->scratch + floats * tg_dtype_size((tg_dtype)z->dtype));
}

#define KERNELS(T, S, EXP)                                                     \
    /* P and lse of every row; returns Σ_i loss_i (labels or targets) */       \
    static double fwd_##S(size_t rows, size_t c, const T *z, const int32_t *lab, \
                          const T *tgt, T *p, T *lse)                          \
    {                                                                          \
        double total = 0;                                                      \
        for (size_t i = 0; i < rows; i++, z += c, p += c) {                    \
            T m = z[0], s = 0;                                                 \
            for (size_t j = 1; j < c; j++)                                     \
                m = z[j] > m ? z[j] : m;                                       \
            for (size_t j = 0; j < c; j++)                                     \
                s += (p[j] = EXP(z[j] - m));                                   \
            for (size_t j = 0; j < c; j++)                                     \
                p[j] /= s;                                                     \
            lse[i] = m + log(s);                                               \
            if (lab) {                                                         \
                total += (double)(lse[i] - z[lab[i]]);                         \
            } else {                                                           \
                for (size_t j = 0; j < c; j++)                                 \
                    total += (double)tgt[i * c + j] * (double)(lse[i] - z[j]); \
            }                                                                  \
        }                                                                      \
        return total;                                                          \
    }                                                                          \
    static void dz_##S(size_t rows, size_t c, const T *p, const int32_t *lab,  \
                       const T *tgt, T k, T *dz, int acc)                      \
    {                                                                          \
        for (size_t i = 0; i < rows; i++, p += c, dz += c) {                   \
            T tsum = 1;                                                        \
            if (!lab) {                                                        \
                tsum = 0;                                                      \
                for (size_t j = 0; j < c; j++)                                 \
                    tsum += tgt[i * c + j];                                    \
            }                                                                  \
            for (size_t j = 0; j < c; j++) {                                   \
                T t = lab ? (T)((size_t)lab[i] == j) : tgt[i * c + j];         \
                T v = k * (p[j] * tsum - t);                                   \
                dz[j] = acc ? dz[j] + v : v;                                   \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void dt_##S(size_t rows, size_t c, const T *z, const T *lse, T k,   \
                       T *dt, int acc)                                         \
    {                                                                          \
        for (size_t i = 0; i < rows; i++)                                      \
            for (size_t j = 0; j < c; j++) {                                   \
                T v = k * (lse[i] - z[i * c + j]);                             \
                dt[i * c + j] = acc ? dt[i * c + j] + v : v;                   \
            }                                                                  \
    }
KERNELS(float, f32, tg_expf) /* vectorisable */
KERNELS(double, f64, exp)

static int forward(tg_node *n)
{
    tg_tensor *z = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    size_t rows = z->shape[0], c = z->shape[1];
    const int32_t *lab = LABELS(n) ? t->data : NULL;
    for (size_t i = 0; lab && i < rows; i++)
        if (lab[i] < 0 || (size_t)lab[i] >= c)
            return tg_fail(n, "label %d at row %zu is outside [0, %zu)", (int)lab[i], i, c);
    if (lab)
        memcpy(saved_labels(n), lab, rows * sizeof(int32_t));
    double s = LOSS(n)->scale;
    if (y->dtype == TG_F32) {
        float *p = n->scratch;
        *(float *)y->data = (float)(s * fwd_f32(rows, c, z->data, lab, t->data, p, p + rows * c));
    } else {
        double *p = n->scratch;
        *(double *)y->data = s * fwd_f64(rows, c, z->data, lab, t->data, p, p + rows * c);
    }
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *z = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    size_t rows = z->shape[0], c = z->shape[1];
    const int32_t *lab = LABELS(n) ? saved_labels(n) : NULL;
    bool f32 = y->dtype == TG_F32;
    double k = LOSS(n)->scale * (f32 ? *(float *)y->grad : *(double *)y->grad);
    int acc;
    if (tg_wants_grad(z)) {
        void *dz = tg_grad_acc(z, &acc);
        if (f32)
            dz_f32(rows, c, n->scratch, lab, t->data, (float)k, dz, acc);
        else
            dz_f64(rows, c, n->scratch, lab, t->data, k, dz, acc);
    }
    if (!lab && tg_wants_grad(t)) {
        void *dt = tg_grad_acc(t, &acc);
        if (f32)
            dt_f32(rows, c, z->data, (float *)n->scratch + rows * c, (float)k, dt, acc);
        else
            dt_f64(rows, c, z->data, (double *)n->scratch + rows * c, k, dt, acc);
    }
}

const tg_op tg_op_softmax_ce = {.name = "softmax_ce", .attr_size = sizeof(loss_attr),
                                .setup = setup, .forward = forward, .backward = backward,
                                .attr_str = tg_loss_attr_str};
const tg_op tg_op_softmax_ce_onehot = {.name = "softmax_ce_onehot", .grad_reads = 0x3,
                                       .attr_size = sizeof(loss_attr), .setup = setup,
                                       .forward = forward, .backward = backward,
                                       .attr_str = tg_loss_attr_str};

tg_tensor *tg_softmax_ce(tg_tensor *logits, tg_tensor *labels, int flags)
{
    loss_attr at = {flags, 0};
    return tg_record(&tg_op_softmax_ce, 2, (tg_tensor *[]){logits, labels}, &at);
}

tg_tensor *tg_softmax_ce_onehot(tg_tensor *logits, tg_tensor *targets, int flags)
{
    loss_attr at = {flags, 0};
    return tg_record(&tg_op_softmax_ce_onehot, 2, (tg_tensor *[]){logits, targets}, &at);
}
